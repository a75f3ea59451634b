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
    size_t file_cols; /* columns in the file, read or not (ncols counts those read) */
    model_rows_format_t fmt; /* the file's format (MODEL_ROWS_AUTO resolved) */
} model_rows_t;

/* Which columns to read. A column left out is never parsed, so it may hold
 * anything: a key, a time in RFC 3339, a label spelled as a word (what
 * `weir backfill` writes beside the features). */
typedef struct model_rows_pick {
    /* With a CSV/TSV header, only the columns named here are read (the
     * model's inputs); NULL reads them all, as does a file without header. */
    const char *const *names;
    size_t nnames;
    /* A 0-based column left out whatever the file (a label), or -1. In
     * libsvm it is feature index `skip`, removed after parsing. */
    long skip;
    /* libsvm: an index at or past this is refused while the file is read,
     * before rows are made dense (a 153-byte file of 12 lines
     * "0 16000000:1" took 1.7 GB for a model of 8 features); 0: none. */
    size_t max_cols;
} model_rows_pick_t;

/* Parses text[len]. A first CSV/TSV line with a field that is not a number
 * (nor a missing marker: empty, NA, NaN, nan, null, ?), the skipped column
 * aside, is a header. libsvm lines are "label idx:value ..." with 0-based
 * indices; a feature absent from a line gets `absent` (NaN for XGBoost, 0
 * for LightGBM). pick may be NULL (every column). Errors name the line and
 * the column in the file. *out is owned by the caller: model_rows_free. */
int model_rows_parse(const char *text, size_t len, model_rows_format_t fmt, double absent,
                     const model_rows_pick_t *pick, model_rows_t *out, char *err, size_t errlen);
int model_rows_read_file(const char *path, model_rows_format_t fmt, double absent,
                         const model_rows_pick_t *pick, model_rows_t *out, char *err,
                         size_t errlen);

void model_rows_free(model_rows_t *rows);

#endif
