/* qsketch.c — DDSketch with exact removal (see qsketch.h). */
#include "stream/qsketch.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "stream/codec.h"

int qsketch_init(qsketch_t *s, double alpha)
{
    memset(s, 0, sizeof *s);
    /* below 1e-6, bin indexes would leave int32 (and gamma would round to 1) */
    if (!(alpha >= QSKETCH_MIN_ALPHA && alpha <= 0.5)) return WEIR_EINVAL;
    s->alpha = alpha;
    s->gamma = (1 + alpha) / (1 - alpha);
    s->inv_ln_gamma = 1.0 / log(s->gamma);
    return 0;
}

static void side_free(qsketch_side_t *d)
{
    weir_free(d->c);
    memset(d, 0, sizeof *d);
}

void qsketch_free(qsketch_t *s)
{
    side_free(&s->pos);
    side_free(&s->neg);
    s->n = s->zero = 0;
}

void qsketch_clear(qsketch_t *s)
{
    qsketch_free(s);
}

static inline int32_t index_of(const qsketch_t *s, double a)
{
    return (int32_t)ceil(log(a) * s->inv_ln_gamma);
}

/* Re-lays the side over [off, off + len), keeping the counts inside it. */
static void relayout(qsketch_side_t *d, int32_t off, uint32_t len)
{
    uint32_t *c = NULL;
    if (len) {
        c = weir_calloc(len, sizeof *c);
        for (uint32_t i = 0; i < d->len; i++) {
            int64_t j = (int64_t)d->off + i - off;
            if (j >= 0 && j < len) c[j] = d->c[i];
        }
    }
    weir_free(d->c);
    d->c = c;
    d->off = off;
    d->len = d->alloc = len;
}

/* Makes bin i addressable; returns the (possibly clamped) array position. */
static uint32_t side_slot(qsketch_side_t *d, int32_t i)
{
    if (d->len == 0) {
        relayout(d, i - 4, 9); /* a little room both ways */
        return 4;
    }
    if (i < d->off && d->collapsed) i = d->off;
    if (i >= d->off && i < d->off + (int64_t)d->len) return (uint32_t)(i - d->off);
    /* The collapse decision looks at the occupied bins only, not at the
     * slack of the layout, so that it is the same after a decode. */
    uint32_t a = 0, b = d->len;
    while (a < b && d->c[a] == 0) a++;
    while (b > a && d->c[b - 1] == 0) b--;
    int64_t lo = d->off + (int64_t)a, hi = d->off + (int64_t)b;
    if (a == b) lo = hi = i;
    if (i < lo) lo = i;
    if (i + 1 > hi) hi = i + 1;
    if (hi - lo > QSKETCH_MAX_BINS) {
        /* Collapse: keep the top MAX_BINS bins, fold the rest into the lowest. */
        int32_t new_off = (int32_t)(hi - QSKETCH_MAX_BINS);
        uint64_t folded = 0;
        for (uint32_t k = 0; k < d->len && d->off + (int64_t)k < new_off; k++) folded += d->c[k];
        relayout(d, new_off, QSKETCH_MAX_BINS);
        weir_assert(folded <= UINT32_MAX - d->c[0]);
        d->c[0] += (uint32_t)folded;
        d->collapsed = 1;
        if (i < new_off) i = new_off;
        return (uint32_t)(i - d->off);
    }
    /* Grow with slack on the side that grew, within MAX_BINS. */
    int64_t slack = (hi - lo) / 4 + 4;
    if (i < d->off)
        lo = lo - slack < hi - QSKETCH_MAX_BINS ? hi - QSKETCH_MAX_BINS : lo - slack;
    else
        hi = hi + slack > lo + QSKETCH_MAX_BINS ? lo + QSKETCH_MAX_BINS : hi + slack;
    relayout(d, (int32_t)lo, (uint32_t)(hi - lo));
    return (uint32_t)(i - d->off);
}

/* Bin i's array position if it holds counts (clamping when collapsed),
 * else -1. */
static int64_t side_find(const qsketch_side_t *d, int32_t i)
{
    if (d->len == 0) return -1;
    if (i < d->off && d->collapsed) i = d->off;
    if (i < d->off || i >= d->off + (int64_t)d->len) return -1;
    return i - d->off;
}

/* After counts fell: drops empty edge bins and gives memory back. */
static void side_trim(qsketch_side_t *d)
{
    uint32_t a = 0, b = d->len;
    while (a < b && d->c[a] == 0) a++;
    while (b > a && d->c[b - 1] == 0) b--;
    if (a == b) {
        side_free(d);
        return;
    }
    if (a > 0) d->collapsed = 0; /* nothing clamped remains */
    if ((b - a) * 2 < d->alloc && d->alloc > 16) relayout(d, d->off + (int32_t)a, b - a);
}

void qsketch_add(qsketch_t *s, double x)
{
    s->n++;
    double a = fabs(x);
    if (!(a >= QSKETCH_MIN_ABS)) {
        s->zero++;
        return;
    }
    qsketch_side_t *d = x > 0 ? &s->pos : &s->neg;
    uint32_t k = side_slot(d, index_of(s, a));
    weir_assert(d->c[k] < UINT32_MAX);
    d->c[k]++;
}

int qsketch_remove(qsketch_t *s, double x)
{
    double a = fabs(x);
    if (!(a >= QSKETCH_MIN_ABS)) {
        if (!s->zero) return WEIR_ENOENT;
        s->zero--;
        s->n--;
        return 0;
    }
    qsketch_side_t *d = x > 0 ? &s->pos : &s->neg;
    int64_t k = side_find(d, index_of(s, a));
    if (k < 0 || d->c[k] == 0) return WEIR_ENOENT;
    d->c[k]--;
    s->n--;
    if (d->c[k] == 0 && (k == 0 || k == (int64_t)d->len - 1)) side_trim(d);
    return 0;
}

static int side_can_sub(const qsketch_side_t *d, const qsketch_side_t *o)
{
    /* Bins clamped together must be checked together: sum what o puts in
     * each of d's bins. Sides are small, so do it bin by bin. */
    uint64_t clamped = 0;
    for (uint32_t i = 0; i < o->len; i++) {
        if (!o->c[i]) continue;
        int64_t k = side_find(d, o->off + (int32_t)i);
        if (k < 0) return 0;
        if (k == 0 && d->collapsed)
            clamped += o->c[i];
        else if (d->c[k] < o->c[i])
            return 0;
    }
    return clamped == 0 || (d->len && d->c[0] >= clamped);
}

int qsketch_merge(qsketch_t *s, const qsketch_t *o, int sign)
{
    if (s->gamma != o->gamma) return WEIR_EINVAL;
    if (sign < 0) {
        if (o->n > s->n || o->zero > s->zero || !side_can_sub(&s->pos, &o->pos) ||
            !side_can_sub(&s->neg, &o->neg))
            return WEIR_ENOENT;
    }
    const qsketch_side_t *os[2] = {&o->pos, &o->neg};
    qsketch_side_t *ds[2] = {&s->pos, &s->neg};
    for (int side = 0; side < 2; side++) {
        const qsketch_side_t *src = os[side];
        qsketch_side_t *d = ds[side];
        for (uint32_t i = 0; i < src->len; i++) {
            if (!src->c[i]) continue;
            int32_t idx = src->off + (int32_t)i;
            if (sign > 0) {
                uint32_t k = side_slot(d, idx);
                weir_assert(d->c[k] <= UINT32_MAX - src->c[i]);
                d->c[k] += src->c[i];
            } else {
                d->c[side_find(d, idx)] -= src->c[i];
            }
        }
        if (sign < 0 && d->len) side_trim(d);
    }
    if (sign > 0) {
        s->n += o->n;
        s->zero += o->zero;
    } else {
        s->n -= o->n;
        s->zero -= o->zero;
    }
    return 0;
}

static double bin_value(const qsketch_t *s, int32_t idx, int neg)
{
    double v = 2 * pow(s->gamma, idx) / (s->gamma + 1);
    return neg ? -v : v;
}

int qsketch_quantile(const qsketch_t *s, double q, double *out)
{
    if (s->n == 0) return 0;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    uint64_t rank = (uint64_t)floor(q * (double)(s->n - 1));
    uint64_t seen = 0;
    const qsketch_side_t *ng = &s->neg, *ps = &s->pos;
    if (rank < s->n / 2) {
        /* Ascending: most negative first (neg side from its high index
         * down), then zero, then positive (low index up). */
        for (uint32_t i = ng->len; i-- > 0;)
            if ((seen += ng->c[i]) > rank) return *out = bin_value(s, ng->off + (int32_t)i, 1), 1;
        if ((seen += s->zero) > rank) return *out = 0, 1;
        for (uint32_t i = 0; i < ps->len; i++)
            if ((seen += ps->c[i]) > rank) return *out = bin_value(s, ps->off + (int32_t)i, 0), 1;
    } else {
        /* Descending from the largest, for the rank counted from the top. */
        uint64_t top = s->n - 1 - rank;
        for (uint32_t i = ps->len; i-- > 0;)
            if ((seen += ps->c[i]) > top) return *out = bin_value(s, ps->off + (int32_t)i, 0), 1;
        if ((seen += s->zero) > top) return *out = 0, 1;
        for (uint32_t i = 0; i < ng->len; i++)
            if ((seen += ng->c[i]) > top) return *out = bin_value(s, ng->off + (int32_t)i, 1), 1;
    }
    weir_assert(0 && "qsketch counts do not add up");
    return 0;
}

size_t qsketch_bytes(const qsketch_t *s)
{
    return ((size_t)s->pos.alloc + s->neg.alloc) * sizeof(uint32_t);
}

/* Only the occupied bins [first nonzero, last nonzero] are written. */
static void side_encode(const qsketch_side_t *d, weir_buf_t *b)
{
    uint32_t a = 0, e = d->len;
    while (a < e && d->c[a] == 0) a++;
    while (e > a && d->c[e - 1] == 0) e--;
    weir_assert(!d->collapsed || a == 0);
    codec_put_u(b, (uint64_t)(d->collapsed && a < e));
    codec_put_i(b, d->off + (int32_t)a);
    codec_put_u(b, e - a);
    for (uint32_t i = a; i < e; i++) codec_put_u(b, d->c[i]);
}

void qsketch_encode(const qsketch_t *s, weir_buf_t *b)
{
    codec_put_f64(b, s->alpha);
    codec_put_u(b, s->zero);
    side_encode(&s->pos, b);
    side_encode(&s->neg, b);
}

static int side_decode(qsketch_side_t *d, codec_rd_t *r, uint64_t *total)
{
    memset(d, 0, sizeof *d);
    uint64_t collapsed = codec_get_u(r);
    int64_t off = codec_get_i(r);
    uint64_t len = codec_get_u(r);
    if (r->bad || collapsed > 1 || len > QSKETCH_MAX_BINS || len > codec_left(r) ||
        off < -(1 << 30) || off > (1 << 30))
        return WEIR_ECORRUPT;
    if (len == 0) return collapsed ? WEIR_ECORRUPT : 0;
    relayout(d, (int32_t)off, (uint32_t)len);
    d->collapsed = (int)collapsed;
    for (uint64_t i = 0; i < len; i++) {
        uint64_t c = codec_get_u(r);
        if (r->bad || c > UINT32_MAX) return WEIR_ECORRUPT;
        d->c[i] = (uint32_t)c;
        *total += c;
    }
    if (d->c[0] == 0 || d->c[len - 1] == 0) return WEIR_ECORRUPT; /* not trimmed */
    return 0;
}

int qsketch_decode(qsketch_t *s, codec_rd_t *r)
{
    double alpha = codec_get_f64(r);
    if (r->bad || qsketch_init(s, alpha) != 0) {
        memset(s, 0, sizeof *s);
        return WEIR_ECORRUPT;
    }
    uint64_t total = codec_get_u(r);
    s->zero = total;
    if (r->bad || side_decode(&s->pos, r, &total) || side_decode(&s->neg, r, &total) ||
        total > (1ULL << 53)) {
        qsketch_free(s);
        return WEIR_ECORRUPT;
    }
    s->n = total;
    return 0;
}
