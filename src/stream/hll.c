/* hll.c — HyperLogLog with Ertl's improved estimator (see hll.h). */
#include "stream/hll.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "stream/codec.h"

int hll_init(hll_t *h, int p)
{
    h->reg = NULL;
    h->p = 0;
    if (p < HLL_MIN_P || p > HLL_MAX_P) return WEIR_EINVAL;
    h->p = (uint8_t)p;
    h->reg = weir_calloc((size_t)1 << p, 1);
    return 0;
}

void hll_free(hll_t *h)
{
    weir_free(h->reg);
    h->reg = NULL;
}

void hll_clear(hll_t *h)
{
    memset(h->reg, 0, hll_bytes(h));
}

void hll_add_hash(hll_t *h, uint64_t hash)
{
    uint32_t idx = (uint32_t)(hash >> (64 - h->p));
    uint64_t rest = hash << h->p;
    /* rank of the first 1 in the remaining 64 - p bits, 64 - p + 1 if none */
    uint8_t r = rest ? (uint8_t)(__builtin_clzll(rest) + 1) : (uint8_t)(64 - h->p + 1);
    if (r > h->reg[idx]) h->reg[idx] = r;
}

void hll_add_id(hll_t *h, uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    hll_add_hash(h, x);
}

int hll_merge(hll_t *h, const hll_t *o)
{
    if (h->p != o->p) return WEIR_EINVAL;
    size_t m = hll_bytes(h);
    for (size_t i = 0; i < m; i++)
        if (o->reg[i] > h->reg[i]) h->reg[i] = o->reg[i];
    return 0;
}

static double sigma(double x)
{
    if (x == 1) return INFINITY;
    double y = 1, z = x, zp;
    do {
        x *= x;
        zp = z;
        z += x * y;
        y += y;
    } while (z != zp);
    return z;
}

static double tau(double x)
{
    if (x == 0 || x == 1) return 0;
    double y = 1, z = 1 - x, zp;
    do {
        x = sqrt(x);
        zp = z;
        y *= 0.5;
        z -= (1 - x) * (1 - x) * y;
    } while (z != zp);
    return z / 3;
}

double hll_estimate(const hll_t *h)
{
    int q = 64 - h->p;
    uint32_t c[66] = {0};
    size_t m = hll_bytes(h);
    for (size_t i = 0; i < m; i++) c[h->reg[i]]++;
    double md = (double)m;
    double z = md * tau(1 - c[q + 1] / md);
    for (int k = q; k >= 1; k--) z = 0.5 * (z + c[k]);
    z += md * sigma(c[0] / md);
    if (isinf(z)) return 0;
    return md * md / (2 * log(2)) / z;
}

double hll_std_error(const hll_t *h)
{
    return 1.04 / sqrt((double)hll_bytes(h));
}

void hll_encode(const hll_t *h, weir_buf_t *b)
{
    codec_put_u(b, h->p);
    buf_append(b, h->reg, hll_bytes(h));
}

int hll_decode(hll_t *h, codec_rd_t *r)
{
    uint64_t p = codec_get_u(r);
    h->reg = NULL;
    if (r->bad || p < HLL_MIN_P || p > HLL_MAX_P || codec_left(r) < ((size_t)1 << p))
        return WEIR_ECORRUPT;
    hll_init(h, (int)p);
    size_t m = hll_bytes(h);
    for (size_t i = 0; i < m; i++) {
        if (r->p[i] > 64 - p + 1) {
            hll_free(h);
            return WEIR_ECORRUPT;
        }
    }
    memcpy(h->reg, r->p, m);
    r->p += m;
    return 0;
}
