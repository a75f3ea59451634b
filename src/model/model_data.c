/* model_data.c — CSV / TSV / libsvm rows for scoring (see model_data.h).
 * Numbers are read with strtod, so a value printed with %.17g (or numpy's
 * repr) reads back to the same double the training framework saw. */
#include "model/model_data.h"

#include <errno.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"

#define MAX_COLUMNS (1u << 24)
/* libsvm rows are sparse and are made dense (rows x the largest index + 1):
 * a few kilobytes naming a large index on many lines would otherwise ask
 * for terabytes, and the allocation would end the process. */
#define MAX_DENSE_VALUES (UINT64_C(1) << 28) /* 2 GiB of doubles */

typedef struct span {
    const char *p;
    size_t len;
} span_t;

static span_t trim(const char *p, size_t n)
{
    while (n && (*p == ' ' || *p == '\t' || *p == '\r')) p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\r' || p[n - 1] == '\t')) n--;
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"') p++, n -= 2;
    return (span_t){p, n};
}

static int is_missing(span_t s)
{
    static const char *const words[] = {"", "NA", "NaN", "nan", "null", "?", "N/A", "-nan"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (s.len == strlen(words[i]) && !memcmp(s.p, words[i], s.len)) return 1;
    return 0;
}

/* 0 and *out on success, -1 if s is not a number. */
static int parse_number(span_t s, double *out)
{
    if (is_missing(s)) {
        *out = NAN;
        return 0;
    }
    char tok[128];
    if (s.len >= sizeof tok) return -1;
    memcpy(tok, s.p, s.len);
    tok[s.len] = '\0';
    char *end;
    errno = 0;
    double d = strtod(tok, &end);
    if (end == tok || *end) return -1;
    *out = d;
    return 0;
}

static size_t count_fields(const char *p, size_t n, char sep)
{
    size_t k = 1;
    for (size_t i = 0; i < n; i++) k += p[i] == sep;
    return k;
}

typedef struct grow {
    double *x;
    size_t len, cap;
} grow_t;

static void grow_push(grow_t *g, double v)
{
    if (g->len == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 4096;
        g->x = weir_realloc(g->x, g->cap * sizeof *g->x);
    }
    g->x[g->len++] = v;
}

/* 1 if name is one of pick's names; with no names given, every name is. */
static int picked_name(const model_rows_pick_t *pick, span_t name)
{
    if (!pick || !pick->names) return 1;
    for (size_t i = 0; i < pick->nnames; i++)
        if (strlen(pick->names[i]) == name.len && !memcmp(pick->names[i], name.p, name.len))
            return 1;
    return 0;
}

/* The field of line ls[n] that starts at *i (its separator passed over). */
static span_t next_field(const char *ls, size_t n, char sep, size_t *i)
{
    size_t j = *i;
    while (j < n && ls[j] != sep)
        j++;
    span_t s = trim(ls + *i, j - *i);
    *i = j + 1;
    return s;
}

static int parse_delimited(const char *text, size_t len, char sep, const model_rows_pick_t *pick,
                           model_rows_t *out, char *err, size_t errlen)
{
    grow_t g = {0};
    size_t pos = 0, lineno = 0, ncols = 0, nrows = 0;
    long skip = pick ? pick->skip : -1;
    unsigned char *keep = NULL; /* [file columns]: read this column */
    int first = 1, rc = 0;
    /* Some writers (numpy.savetxt with a tab) end every row with the
     * separator: when every row does, that last empty field is not a column. */
    int trailing = 1, lines = 0;
    for (size_t q = 0; q < len && trailing;) {
        const char *nl = memchr(text + q, '\n', len - q);
        size_t n = nl ? (size_t)(nl - text - q) : len - q;
        while (n && (text[q + n - 1] == '\r' || text[q + n - 1] == ' ')) n--;
        if (n) trailing = text[q + n - 1] == sep, lines++;
        q = nl ? (size_t)(nl - text) + 1 : len;
    }
    trailing = trailing && lines > 0;
    while (pos < len && rc == 0) {
        const char *ls = text + pos;
        const char *nl = memchr(ls, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - ls) : len - pos;
        pos += n + (nl != NULL);
        lineno++;
        span_t whole = trim(ls, n);
        if (whole.len == 0) continue;
        if (n && ls[n - 1] == '\r') n--;
        if (trailing && n && ls[n - 1] == sep) n--;
        size_t k = count_fields(ls, n, sep);
        if (first) {
            if (k > MAX_COLUMNS) {
                rc = weir_errf(err, errlen, WEIR_ETOOBIG, "line %zu: more than %u columns", lineno,
                               MAX_COLUMNS);
                break;
            }
            first = 0;
            out->file_cols = k;
            keep = weir_malloc(k);
            /* Header if any field is not a number; the skipped column does
             * not count, so a label written as a word is no header. */
            int header = 0;
            double d;
            size_t i = 0;
            for (size_t c = 0; c < k; c++) {
                span_t s = next_field(ls, n, sep, &i);
                keep[c] = (long)c != skip;
                if (keep[c] && parse_number(s, &d)) header = 1;
            }
            if (header) {
                i = 0;
                for (size_t c = 0; c < k; c++) {
                    span_t s = next_field(ls, n, sep, &i);
                    keep[c] = keep[c] && picked_name(pick, s);
                }
            }
            for (size_t c = 0; c < k; c++)
                ncols += keep[c];
            if (header) {
                out->names = weir_calloc(ncols ? ncols : 1, sizeof *out->names);
                out->ncols = 0; /* counts the names made, so that model_rows_free frees them */
                i = 0;
                for (size_t c = 0; c < k; c++) {
                    span_t s = next_field(ls, n, sep, &i);
                    if (keep[c]) out->names[out->ncols++] = weir_strndup(s.p, s.len);
                }
                continue;
            }
        }
        if (k != out->file_cols) {
            rc = weir_errf(err, errlen, WEIR_EINVAL, "line %zu: %zu fields, expected %zu", lineno,
                           k, out->file_cols);
            break;
        }
        size_t i = 0;
        for (size_t c = 0; c < k && rc == 0; c++) {
            span_t s = next_field(ls, n, sep, &i);
            double d;
            if (!keep[c]) continue; /* not an input: never parsed */
            if (parse_number(s, &d))
                rc = weir_errf(err, errlen, WEIR_EINVAL,
                               "line %zu, column %zu: \"%.*s\" is not a number", lineno, c + 1,
                               (int)(s.len > 40 ? 40 : s.len), s.p);
            else
                grow_push(&g, d);
        }
        nrows++;
    }
    weir_free(keep);
    if (rc) {
        weir_free(g.x);
        return rc;
    }
    out->x = g.x ? g.x : weir_calloc(1, sizeof(double));
    out->ncols = ncols;
    out->nrows = nrows;
    return 0;
}

static int parse_libsvm(const char *text, size_t len, double absent, size_t max_cols,
                        model_rows_t *out, char *err, size_t errlen)
{
    /* Pass 1: rows and the largest index; pass 2: fill. */
    size_t maxidx = 0, rows = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t pos = 0, lineno = 0, r = 0;
        size_t ncols = maxidx + 1;
        if (pass == 1) {
            if ((uint64_t)rows * ncols > MAX_DENSE_VALUES)
                return weir_errf(err, errlen, WEIR_ETOOBIG,
                                 "%zu rows with indexes up to %zu would be %llu values once dense; "
                                 "at most %llu",
                                 rows, maxidx, (unsigned long long)rows * ncols,
                                 (unsigned long long)MAX_DENSE_VALUES);
            out->x = weir_malloc((rows ? rows : 1) * ncols * sizeof(double));
            for (size_t i = 0; i < rows * ncols; i++) out->x[i] = absent;
            out->ncols = ncols;
            out->nrows = rows;
        }
        while (pos < len) {
            const char *ls = text + pos;
            const char *nl = memchr(ls, '\n', len - pos);
            size_t n = nl ? (size_t)(nl - ls) : len - pos;
            pos += n + (nl != NULL);
            lineno++;
            if (trim(ls, n).len == 0 || ls[0] == '#') continue;
            size_t i = 0, tokno = 0;
            while (i < n) {
                while (i < n && (ls[i] == ' ' || ls[i] == '\t' || ls[i] == '\r')) i++;
                if (i >= n) break;
                size_t j = i;
                while (j < n && ls[j] != ' ' && ls[j] != '\t' && ls[j] != '\r') j++;
                const char *colon = memchr(ls + i, ':', j - i);
                if (tokno++ == 0 && !colon) { /* the label */
                    i = j;
                    continue;
                }
                if (!colon) {
                    if (pass == 1) weir_free(out->x), out->x = NULL;
                    return weir_errf(err, errlen, WEIR_EINVAL, "line %zu: \"%.*s\" is not index:value", lineno,
                                     (int)(j - i > 40 ? 40 : j - i), ls + i);
                }
                if (colon - (ls + i) == 3 && !memcmp(ls + i, "qid", 3)) {
                    i = j;
                    continue;
                }
                double idx, v;
                if (parse_number((span_t){ls + i, (size_t)(colon - (ls + i))}, &idx) || !(idx >= 0) ||
                    idx >= MAX_COLUMNS || idx != floor(idx) ||
                    parse_number((span_t){colon + 1, (size_t)(ls + j - colon - 1)}, &v)) {
                    if (pass == 1) weir_free(out->x), out->x = NULL;
                    return weir_errf(err, errlen, WEIR_EINVAL, "line %zu: \"%.*s\" is not index:value (index < %u)",
                                     lineno, (int)(j - i > 40 ? 40 : j - i), ls + i, MAX_COLUMNS);
                }
                if (pass == 0) {
                    if (max_cols && idx >= (double)max_cols)
                        return weir_errf(err, errlen, WEIR_EINVAL,
                                         "line %zu: index %.0f is out of range: the model's "
                                         "rows have indexes below %zu",
                                         lineno, idx, max_cols);
                    if ((size_t)idx > maxidx) maxidx = (size_t)idx;
                } else {
                    out->x[r * ncols + (size_t)idx] = v;
                }
                i = j;
            }
            r++;
        }
        rows = r;
    }
    return 0;
}

/* Removes column c from libsvm rows (which have no names). */
static void drop_column(model_rows_t *rows, size_t c)
{
    size_t k = 0;
    for (size_t r = 0; r < rows->nrows; r++)
        for (size_t j = 0; j < rows->ncols; j++)
            if (j != c) rows->x[k++] = rows->x[r * rows->ncols + j];
    rows->ncols--;
}

int model_rows_parse(const char *text, size_t len, model_rows_format_t fmt, double absent,
                     const model_rows_pick_t *pick, model_rows_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (fmt == MODEL_ROWS_AUTO) {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl ? (size_t)(nl - text) : len;
        if (memchr(text, ':', n) && !memchr(text, ',', n))
            fmt = MODEL_ROWS_LIBSVM;
        else if (memchr(text, '\t', n))
            fmt = MODEL_ROWS_TSV;
        else
            fmt = MODEL_ROWS_CSV;
    }
    int rc;
    if (fmt == MODEL_ROWS_LIBSVM) {
        rc = parse_libsvm(text, len, absent, pick ? pick->max_cols : 0, out, err, errlen);
        out->file_cols = out->ncols;
        /* libsvm has no column to leave unparsed: every value is index:number. */
        if (rc == 0 && pick && pick->skip >= 0 && (size_t)pick->skip < out->ncols)
            drop_column(out, (size_t)pick->skip);
    } else {
        rc = parse_delimited(text, len, fmt == MODEL_ROWS_TSV ? '\t' : ',', pick, out, err, errlen);
    }
    if (rc)
        model_rows_free(out);
    else
        out->fmt = fmt;
    return rc;
}

int model_rows_read_file(const char *path, model_rows_format_t fmt, double absent,
                         const model_rows_pick_t *pick, model_rows_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return weir_errf(err, errlen, WEIR_EIO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = weir_malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) buf = weir_realloc(buf, cap *= 2);
    }
    int bad = ferror(f) ? errno : 0; /* why (a directory: EISDIR), before fclose */
    if (f != stdin) fclose(f);
    if (bad) {
        weir_free(buf);
        return weir_errf(err, errlen, WEIR_EIO, "%s: cannot read: %s", path, strerror(bad));
    }
    char inner[256];
    int rc = model_rows_parse(buf, len, fmt, absent, pick, out, inner, sizeof inner);
    weir_free(buf);
    if (rc) return weir_errf(err, errlen, rc, "%s: %s", path, inner);
    return 0;
}

void model_rows_free(model_rows_t *rows)
{
    if (rows->names)
        for (size_t c = 0; c < rows->ncols; c++) weir_free(rows->names[c]);
    weir_free(rows->names);
    weir_free(rows->x);
    memset(rows, 0, sizeof *rows);
}
