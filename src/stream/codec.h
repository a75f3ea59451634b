/* codec.h — little helpers shared by the encoders and decoders of src/stream
 * (windows, sketches, multisets, keymap). Internal to the layer.
 *
 * Encoding: unsigned varints (base/varint.h) for counts and lengths, zigzag
 * varints for times and deltas, 8-byte little-endian for doubles and raw
 * 64-bit values (bit-exact, so a decoded state computes bit-identical
 * results). Decoding reads from a cursor over untrusted bytes: every read is
 * bounds-checked and a failed read latches `bad`, so a decoder can do a run of
 * reads and check once. Nothing here allocates. */
#ifndef WEIR_STREAM_CODEC_H
#define WEIR_STREAM_CODEC_H

#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/varint.h"

typedef struct codec_rd {
    const unsigned char *p, *end;
    int bad; /* latched: a read ran past the end or a varint was malformed */
} codec_rd_t;

static inline void codec_put_u(weir_buf_t *b, uint64_t v)
{
    unsigned char tmp[VARINT_MAX];
    buf_append(b, tmp, varint_put(tmp, v));
}

static inline void codec_put_i(weir_buf_t *b, int64_t v)
{
    unsigned char tmp[VARINT_MAX];
    buf_append(b, tmp, varint_put_signed(tmp, v));
}

static inline void codec_put_u64(weir_buf_t *b, uint64_t v)
{
    unsigned char tmp[8];
    for (int i = 0; i < 8; i++) tmp[i] = (unsigned char)(v >> (8 * i));
    buf_append(b, tmp, 8);
}

static inline void codec_put_f64(weir_buf_t *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    codec_put_u64(b, v);
}

static inline uint64_t codec_get_u(codec_rd_t *r)
{
    uint64_t v = 0;
    size_t n = r->bad ? 0 : varint_get(r->p, r->end, &v);
    if (!n) {
        r->bad = 1;
        return 0;
    }
    r->p += n;
    return v;
}

static inline int64_t codec_get_i(codec_rd_t *r)
{
    int64_t v = 0;
    size_t n = r->bad ? 0 : varint_get_signed(r->p, r->end, &v);
    if (!n) {
        r->bad = 1;
        return 0;
    }
    r->p += n;
    return v;
}

static inline uint64_t codec_get_u64(codec_rd_t *r)
{
    if (r->bad || r->end - r->p < 8) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    return v;
}

static inline double codec_get_f64(codec_rd_t *r)
{
    uint64_t v = codec_get_u64(r);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

static inline size_t codec_left(const codec_rd_t *r)
{
    return r->bad ? 0 : (size_t)(r->end - r->p);
}

#endif
