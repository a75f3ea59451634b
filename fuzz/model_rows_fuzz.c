/* model_rows_fuzz.c — fuzz target of the CSV/TSV/libsvm row reader used by
 * `weir model predict`: any input parses or fails with an error, never
 * crashes or reads out of bounds. Corpus: fuzz/corpus/model_rows/. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "model/model_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = weir_malloc(size ? size : 1);
    if (size) memcpy(text, data, size);
    char err[256];
    /* Every column; then a label column and only two names read, as
     * `weir model predict --label-col 0` with a named model does. */
    static const char *const names[] = {"a", "b"};
    const model_rows_pick_t picks[] = {{NULL, 0, -1, 1024}, {names, 2, 0, 4}};
    for (int fmt = MODEL_ROWS_AUTO; fmt <= MODEL_ROWS_LIBSVM; fmt++)
        for (size_t k = 0; k < sizeof picks / sizeof picks[0]; k++) {
            model_rows_t rows;
            if (model_rows_parse(text, size, (model_rows_format_t)fmt, NAN, &picks[k], &rows, err,
                                 sizeof err) == 0)
                model_rows_free(&rows);
        }
    weir_free(text);
    return 0;
}
