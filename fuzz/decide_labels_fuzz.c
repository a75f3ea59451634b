/* decide_labels_fuzz.c — fuzz target for the labels file of `weir backfill
 * --labels` (labels_parse, a CSV reader): any bytes are parsed against a
 * schema whose key is card_id and time ts; what parses is looked up (keys
 * of its own lines and others) and freed. Nothing may crash, leak, read
 * out of bounds or trip UBSan; a refusal must say why. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "decide/labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static spec_t *schema(void)
{
    static const char text[] = "pipeline: p\n"
                               "sources:\n"
                               "  tx:\n"
                               "    key: card_id\n"
                               "    time: ts\n"
                               "    fields: {card_id: string, amount: float, ts: time}\n";
    spec_t *s = NULL;
    char err[256];
    if (spec_load_string(text, sizeof text - 1, "labels.yaml", &s, err, sizeof err)) {
        fprintf(stderr, "labels fuzz schema: %s\n", err);
        abort();
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static spec_t *spec;
    if (!spec) spec = schema(); /* one schema for the whole run */
    /* An exact-size copy so that a read past the end is caught. */
    char *text = weir_malloc(size ? size : 1);
    if (size) memcpy(text, data, size);
    labels_t *l = NULL;
    char err[512] = "";
    if (labels_parse(text, size, "fuzz.csv", &spec->sources[0], &l, err, sizeof err) == 0) {
        for (uint32_t i = 0; i < labels_ncols(l); i++) weir_assert(labels_col_name(l, i) != NULL);
        static const char *keys[] = {"c1", "", "card_id", "c\"1"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            for (int64_t t = -1; t <= 6; t++) {
                const char *const *cells =
                    labels_find(l, (weir_slice_t){keys[k], strlen(keys[k])}, t);
                for (uint32_t i = 0; cells && i < labels_ncols(l); i++) weir_assert(cells[i] != NULL);
            }
        (void)labels_unused(l, INT64_MIN, INT64_MAX);
        labels_free(l);
    } else {
        weir_assert(err[0] != '\0');
    }
    weir_free(text);
    return 0;
}
