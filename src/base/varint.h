/* varint.h — LEB128 unsigned varints and zigzag signed varints, as in
 * protobuf and Kafka's record format. Decoders are bounds-checked: they are
 * used on bytes read from disk. */
#ifndef WEIR_BASE_VARINT_H
#define WEIR_BASE_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define VARINT_MAX 10 /* bytes for a 64-bit value */

static inline size_t varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

static inline size_t varint_put_signed(unsigned char *p, int64_t v)
{
    return varint_put(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* Decodes from [p, end). Returns bytes consumed, or 0 if the varint is
 * truncated or longer than 10 bytes. */
static inline size_t varint_get(const unsigned char *p, const unsigned char *end, uint64_t *v)
{
    if (p < end && p[0] < 0x80) { /* one byte: most of a record's fields */
        *v = p[0];
        return 1;
    }
    uint64_t r = 0;
    for (size_t i = 0; i < VARINT_MAX && p + i < end; i++) {
        r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

static inline size_t varint_get_signed(const unsigned char *p, const unsigned char *end,
                                       int64_t *v)
{
    uint64_t u;
    size_t n = varint_get(p, end, &u);
    if (n) *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return n;
}

#endif
