/* buf.h — a growable byte buffer and a {ptr, len} slice (h2o's iovec).
 * Slices are how bytes travel on hot paths: no NUL terminator, no copy. */
#ifndef WEIR_BASE_BUF_H
#define WEIR_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct weir_slice {
    const char *ptr;
    size_t len;
} weir_slice_t;

typedef struct weir_buf {
    char *data;
    size_t len;
    size_t cap;
} weir_buf_t;

#define WEIR_BUF_INIT {NULL, 0, 0}

/* Makes room for `extra` more bytes (the slow half of buf_reserve). */
void buf_grow(weir_buf_t *b, size_t extra);

/* Inline: output lines are built from a dozen small appends each, and a
 * replay writes ten million of them; the call was a fifth of their cost. */
static inline void buf_reserve(weir_buf_t *b, size_t extra)
{
    if (b->len + extra > b->cap) buf_grow(b, extra);
}

static inline void buf_append(weir_buf_t *b, const void *p, size_t n)
{
    if (n == 0) return; /* p may be NULL then, which memcpy must not see */
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void buf_append_str(weir_buf_t *b, const char *s);
void buf_appendf(weir_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included, escaping as RFC 8259. */
void buf_append_json_string(weir_buf_t *b, const char *s, size_t n);
static inline void buf_reset(weir_buf_t *b)
{
    b->len = 0;
}
void buf_free(weir_buf_t *b);

#endif
