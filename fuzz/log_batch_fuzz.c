/* log_batch_fuzz.c — fuzz target for the batch validator and iterator, the
 * code that reads log bytes from disk: any input must be rejected or
 * iterated without reading outside it. */
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "batch_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *b = weir_malloc(size ? size : 1); /* exact size: overreads are caught */
    if (size) memcpy(b, data, size);
    walk_batches(b, size, 0);
    weir_free(b);
    return 0;
}
