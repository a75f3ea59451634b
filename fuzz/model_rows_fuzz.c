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
    for (int fmt = MODEL_ROWS_AUTO; fmt <= MODEL_ROWS_LIBSVM; fmt++) {
        model_rows_t rows;
        if (model_rows_parse(text, size, (model_rows_format_t)fmt, NAN, &rows, err, sizeof err) == 0) {
            if (rows.ncols) model_rows_drop_column(&rows, 0);
            model_rows_free(&rows);
        }
    }
    weir_free(text);
    return 0;
}
