/* buf.c — growable byte buffer (see buf.h). */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/swar.h"

void buf_grow(weir_buf_t *b, size_t extra)
{
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    b->data = weir_realloc(b->data, cap);
    b->cap = cap;
}

void buf_append_str(weir_buf_t *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_appendf(weir_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_append_json_string(weir_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_reserve(b, n + 2);
    b->data[b->len++] = '"';
    size_t i = 0;
    for (;;) {
        /* A run of bytes that need no escape is copied in one piece (it is
         * found eight bytes at a time: a window line's key, an event). */
        size_t run = swar_plain_end(s, i, n);
        buf_append(b, s + i, run - i);
        if (run == n) break;
        unsigned char c = (unsigned char)s[run];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            buf_append(b, e, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(b, e, 6);
        }
        i = run + 1;
    }
    buf_reserve(b, 1);
    b->data[b->len++] = '"';
}

void buf_free(weir_buf_t *b)
{
    weir_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
