/* model_data.h — reading rows to score from text: CSV (with or without a
 * header), TSV, or libsvm. Used by `weir model predict` and the benchmarks;
 * the engine itself feeds models from features, not files. */
#ifndef WEIR_MODEL_MODEL_DATA_H
#define WEIR_MODEL_MODEL_DATA_H

#include <stddef.h>

typedef enum model_rows_format {
    MODEL_ROWS_AUTO = 0, /* libsvm if the first row has idx:value, TSV if it has tabs, else CSV */
    MODEL_ROWS_CSV,
    MODEL_ROWS_TSV,
    MODEL_ROWS_LIBSVM,
} model_rows_format_t;

typedef struct model_rows {
    double *x;     /* nrows * ncols, row-major; NaN = missing */
    size_t nrows, ncols;
    char **names;  /* [ncols] header names, or NULL when the file has no header */
} model_rows_t;

/* Parses text[len]. A first CSV/TSV line with a field that is not a number
 * (nor a missing marker: empty, NA, NaN, nan, null, ?) is a header. libsvm
 * lines are "label idx:value ..." with 0-based indices; a feature absent
 * from a line gets `absent` (NaN for XGBoost, 0 for LightGBM). Errors name
 * the line and column. *out is owned by the caller: model_rows_free. */
int model_rows_parse(const char *text, size_t len, model_rows_format_t fmt, double absent,
                     model_rows_t *out, char *err, size_t errlen);
int model_rows_read_file(const char *path, model_rows_format_t fmt, double absent, model_rows_t *out,
                         char *err, size_t errlen);

/* Removes column c (a label column) from rows and names. */
void model_rows_drop_column(model_rows_t *rows, size_t c);

void model_rows_free(model_rows_t *rows);

#endif
