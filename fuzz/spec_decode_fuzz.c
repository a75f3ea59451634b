/* spec_decode_fuzz.c — fuzz target for the direct event decoder
 * (spec_decode_text): any bytes are decoded directly and, where that
 * succeeds, by cJSON + spec_decode_event too; the two must agree value for
 * value (spec_decode_diff.h). Nothing may crash, read out of bounds or
 * trip UBSan. The corpus (fuzz/corpus/spec_decode/) holds events the
 * direct decoder takes and near misses it must leave to cJSON: escapes,
 * numbers at the edges of the fast conversion, duplicates, nesting. */
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "spec_decode_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static spec_t *spec;
    if (!spec) spec = decode_diff_spec(); /* one schema for the whole run */
    /* An exact-size copy so that a read past the end is caught. */
    char *text = weir_malloc(size ? size : 1);
    if (size) memcpy(text, data, size);
    decode_diff(&spec->sources[0], text, size);
    weir_free(text);
    return 0;
}
