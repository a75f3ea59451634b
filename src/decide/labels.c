/* labels.c — see labels.h. The lines live in one open-addressing table
 * keyed by (key, time); the file's text is parsed once into it. */
#include "decide/labels.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/fileio.h"
#include "base/hash.h"
#include "decide/pipeline.h"
#include "spec/decode.h"

#define LABELS_MAX_FILE (1ul << 30)

typedef struct line {
    char *key;
    size_t klen;
    int64_t time;
    size_t no;    /* its line number in the file */
    char **cells; /* ncols label cells */
    int used;
} line_t;

struct labels {
    uint32_t ncols;
    char **names;
    line_t *lines;
    size_t nlines;
    uint32_t *slot; /* index + 1 into lines; 0 = empty */
    size_t cap;     /* a power of two, over twice nlines */
};

/* ---- CSV ------------------------------------------------------------------ */

typedef struct csv {
    const char *path; /* for messages */
    const char *s;
    size_t n, i;
    size_t line; /* where reading is, from 1 */
    size_t rec;  /* the line the last record read starts on */
} csv_t;

/* Past a line end at c->i: \n, \r\n or a lone \r (old Mac files). */
static void csv_eol(csv_t *c)
{
    if (c->s[c->i] == '\r' && c->i + 1 < c->n && c->s[c->i + 1] == '\n') c->i++;
    c->i++;
    c->line++;
}

/* Reads the next record's cells into cells (emptied first). 1, 0 at the
 * end of the text, or an error naming the line. A quoted cell may hold
 * commas, newlines and doubled quotes. */
static int csv_record(csv_t *c, char ***cells, uint32_t *n, weir_buf_t *cell, char *err,
                      size_t errlen)
{
    for (uint32_t k = 0; k < *n; k++)
        weir_free((*cells)[k]);
    *n = 0;
    /* (a blank line is no record) */
    while (c->i < c->n && (c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        csv_eol(c);
    if (c->i >= c->n) return 0;
    size_t start_line = c->rec = c->line;
    for (;;) {
        buf_reset(cell);
        if (c->i < c->n && c->s[c->i] == '"') {
            c->i++;
            for (;;) {
                if (c->i >= c->n)
                    return weir_errf(err, errlen, WEIR_EPARSE,
                                     "%s line %zu: a quoted cell is not closed", c->path,
                                     start_line);
                char ch = c->s[c->i++];
                if (ch == '"' && c->i < c->n && c->s[c->i] == '"') {
                    c->i++;
                } else if (ch == '"') {
                    break;
                } else if (ch == '\n') {
                    c->line++;
                }
                buf_append(cell, &ch, 1);
            }
        } else {
            while (c->i < c->n && c->s[c->i] != ',' && c->s[c->i] != '\n' && c->s[c->i] != '\r') {
                if (c->s[c->i] == '"')
                    return weir_errf(err, errlen, WEIR_EPARSE,
                                     "%s line %zu: a quote inside an unquoted cell", c->path,
                                     c->line);
                buf_append(cell, &c->s[c->i++], 1);
            }
        }
        /* grown by doubling (the array is kept from record to record): a
         * realloc per cell made a header of 40,000 columns take seconds */
        if ((*n & (*n - 1)) == 0)
            *cells = weir_realloc(*cells, (*n ? 2 * (size_t)*n : 1) * sizeof **cells);
        (*cells)[(*n)++] = weir_strndup(cell->len ? cell->data : "", cell->len);
        if (c->i < c->n && c->s[c->i] == ',') {
            c->i++;
            continue;
        }
        if (c->i < c->n && c->s[c->i] != '\n' && c->s[c->i] != '\r')
            return weir_errf(err, errlen, WEIR_EPARSE, "%s line %zu: text after a quoted cell",
                             c->path, c->line);
        if (c->i < c->n) csv_eol(c);
        return 1;
    }
}

/* ---- the table ------------------------------------------------------------ */

static uint64_t line_hash(const char *key, size_t klen, int64_t time)
{
    return weir_hash64(key, klen) ^ ((uint64_t)time * 0x9e3779b97f4a7c15u);
}

/* The slot of (key, time): its line's, or the empty one where it goes. */
static size_t find_slot(const labels_t *l, const char *key, size_t klen, int64_t time)
{
    size_t i = (size_t)line_hash(key, klen, time) & (l->cap - 1);
    for (;; i = (i + 1) & (l->cap - 1)) {
        uint32_t s = l->slot[i];
        if (!s) return i;
        const line_t *e = &l->lines[s - 1];
        if (e->time == time && e->klen == klen && !memcmp(e->key, key, klen)) return i;
    }
}

static void rehash(labels_t *l)
{
    weir_free(l->slot);
    l->cap = l->cap ? l->cap * 2 : 1024;
    l->slot = weir_calloc(l->cap, sizeof *l->slot);
    for (size_t k = 0; k < l->nlines; k++) {
        const line_t *e = &l->lines[k];
        l->slot[find_slot(l, e->key, e->klen, e->time)] = (uint32_t)k + 1;
    }
}

/* ---- loading -------------------------------------------------------------- */

static int column_of(char **cells, uint32_t n, const char *name)
{
    for (uint32_t k = 0; k < n; k++)
        if (!strcmp(cells[k], name)) return (int)k;
    return -1;
}

typedef struct named {
    const char *name;
    uint32_t at;
} named_t;

static int by_name(const void *a, const void *b)
{
    const named_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->at > y->at) - (x->at < y->at);
}

/* The first column (in file order) whose name an earlier column has, or -1:
 * sorted, not pairwise (a header of 40,000 columns took 20 s pairwise). */
static long first_repeat(char **names, uint32_t n)
{
    named_t *v = weir_malloc((n ? n : 1) * sizeof *v);
    for (uint32_t k = 0; k < n; k++)
        v[k] = (named_t){names[k], k};
    qsort(v, n, sizeof *v, by_name);
    long first = -1;
    for (uint32_t k = 1; k < n; k++)
        if (!strcmp(v[k - 1].name, v[k].name) && (first < 0 || v[k].at < (uint32_t)first))
            first = v[k].at;
    weir_free(v);
    return first;
}

/* Adds the record cells (of line `no`) to l, by the header's columns. */
static int add_line(labels_t *l, char **cells, uint32_t n, uint32_t nhead, int kcol, int tcol,
                    int int_key, size_t no, const char *path, char *err, size_t errlen)
{
    if (n != nhead)
        return weir_errf(err, errlen, WEIR_EPARSE, "%s line %zu: %u cells, the header has %u", path,
                         no, n, nhead);
    int64_t t;
    if (pipeline_parse_time(cells[tcol], &t) != 0)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "%s line %zu, column %d: '%.40s' is not a time (epoch ms or RFC 3339)",
                         path, no, tcol + 1, cells[tcol]);
    const char *key = cells[kcol];
    size_t klen = strlen(key);
    if (!klen)
        return weir_errf(err, errlen, WEIR_EINVAL, "%s line %zu, column %d: the key is empty", path,
                         no, kcol + 1);
    /* An int key as its events' key text is written (decimal, no sign or
     * zeros ahead): "08" or "+8" matched no row of key 8, silently. */
    char canon[24];
    if (int_key) {
        char *end;
        errno = 0;
        long long v = strtoll(key, &end, 10);
        if (*end || errno || v > SPEC_MAX_INT || v < -SPEC_MAX_INT)
            return weir_errf(err, errlen, WEIR_EINVAL,
                             "%s line %zu, column %d: '%.40s' is not an int, and the key field is",
                             path, no, kcol + 1, key);
        klen = (size_t)snprintf(canon, sizeof canon, "%lld", v);
        key = canon;
    }
    if (2 * (l->nlines + 1) > l->cap) rehash(l);
    size_t s = find_slot(l, key, klen, t);
    if (l->slot[s])
        return weir_errf(
            err, errlen, WEIR_EINVAL,
            "%s line %zu: a second label line for key '%.100s' at time %lld (line %zu)", path, no,
            key, (long long)t, l->lines[l->slot[s] - 1].no);
    if (l->nlines >= UINT32_MAX - 1)
        return weir_errf(err, errlen, WEIR_ETOOBIG, "%s: too many lines", path);
    l->lines = weir_realloc(l->lines, (l->nlines + 1) * sizeof *l->lines);
    line_t *e = &l->lines[l->nlines];
    *e = (line_t){.key = weir_strdup(key),
                  .klen = klen,
                  .time = t,
                  .no = no,
                  .cells = weir_malloc((l->ncols ? l->ncols : 1) * sizeof *e->cells)};
    for (uint32_t k = 0, j = 0; k < n; k++)
        if ((int)k != kcol && (int)k != tcol) e->cells[j++] = weir_strdup(cells[k]);
    l->slot[s] = (uint32_t)++l->nlines;
    return 0;
}

int labels_load(const char *path, const spec_source_t *src, labels_t **out, char *err,
                size_t errlen)
{
    weir_buf_t text = WEIR_BUF_INIT;
    int rc = weir_read_file(path, LABELS_MAX_FILE, &text, err, errlen);
    if (rc == 0) rc = labels_parse(text.data, text.len, path, src, out, err, errlen);
    buf_free(&text);
    return rc;
}

int labels_parse(const char *text, size_t len, const char *path, const spec_source_t *src,
                 labels_t **out, char *err, size_t errlen)
{
    weir_buf_t cell = WEIR_BUF_INIT;
    int rc = 0;
    labels_t *l = weir_calloc(1, sizeof *l);
    /* A UTF-8 byte order mark (spreadsheets write one) is not part of the
     * first column's name. */
    size_t bom = len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3) ? 3 : 0;
    csv_t c = {path, text, len, bom, 1, 1};
    char **cells = NULL, **head = NULL;
    uint32_t n = 0, nhead = 0;
    const char *kname = src->fields[src->key_slot].name, *tname = src->fields[src->time_slot].name;
    int kcol = -1, tcol = -1;
    rc = csv_record(&c, &head, &nhead, &cell, err, errlen);
    if (rc == 0)
        rc = weir_errf(err, errlen, WEIR_EPARSE, "%s: empty (it needs a header line)", path);
    if (rc == 1) {
        rc = 0;
        kcol = column_of(head, nhead, kname);
        tcol = column_of(head, nhead, tname);
        if (kcol < 0 || tcol < 0 || nhead < 3)
            rc = weir_errf(err, errlen, WEIR_EINVAL,
                           "%s line 1: the header must name the key column '%s', the time column "
                           "'%s' and at least one label column",
                           path, kname, tname);
        long dup = rc == 0 ? first_repeat(head, nhead) : -1;
        if (dup >= 0)
            rc = weir_errf(err, errlen, WEIR_EINVAL, "%s line 1: column '%.100s' is named twice",
                           path, head[dup]);
    }
    if (rc == 0) {
        l->ncols = nhead - 2;
        l->names = weir_malloc(l->ncols * sizeof *l->names);
        for (uint32_t k = 0, j = 0; k < nhead; k++)
            if ((int)k != kcol && (int)k != tcol) l->names[j++] = weir_strdup(head[k]);
        rehash(l);
    }
    while (rc == 0) {
        int r = csv_record(&c, &cells, &n, &cell, err, errlen);
        if (r <= 0) {
            rc = r;
            break;
        }
        rc = add_line(l, cells, n, nhead, kcol, tcol, src->fields[src->key_slot].type == EXPR_INT,
                      c.rec, path, err, errlen);
    }
    for (uint32_t k = 0; k < n; k++)
        weir_free(cells[k]);
    for (uint32_t k = 0; k < nhead; k++)
        weir_free(head[k]);
    weir_free(cells);
    weir_free(head);
    buf_free(&cell);
    if (rc) {
        labels_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void labels_free(labels_t *l)
{
    if (!l) return;
    for (size_t k = 0; k < l->nlines; k++) {
        for (uint32_t j = 0; j < l->ncols; j++)
            weir_free(l->lines[k].cells[j]);
        weir_free(l->lines[k].cells);
        weir_free(l->lines[k].key);
    }
    for (uint32_t j = 0; l->names && j < l->ncols; j++)
        weir_free(l->names[j]);
    weir_free(l->names);
    weir_free(l->lines);
    weir_free(l->slot);
    weir_free(l);
}

uint32_t labels_ncols(const labels_t *l)
{
    return l->ncols;
}

const char *labels_col_name(const labels_t *l, uint32_t i)
{
    return l->names[i];
}

const char *const *labels_find(labels_t *l, weir_slice_t key, int64_t time)
{
    uint32_t s = l->slot[find_slot(l, key.ptr, key.len, time)];
    if (!s) return NULL;
    line_t *e = &l->lines[s - 1];
    e->used = 1;
    return (const char *const *)e->cells;
}

uint64_t labels_unused(const labels_t *l, int64_t from, int64_t to)
{
    uint64_t n = 0;
    for (size_t k = 0; k < l->nlines; k++)
        n += !l->lines[k].used && l->lines[k].time >= from && l->lines[k].time < to;
    return n;
}
