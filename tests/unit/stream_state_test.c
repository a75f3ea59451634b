/* stream_state_test.c — the structures of src/stream composed the way the
 * engine will compose them, for the fraud feature set of DESIGN.md:
 *
 *   txn_count_1h:   count() over 1h
 *   amount_sum_24h: sum(amount) over 24h
 *   amount_avg_7d:  avg(amount) over 7d every 1h
 *   merchants_24h:  distinct(merchant) over 24h
 *   last(country), last(ts)                      (previous event, log order)
 *
 * One partition: a keymap whose value is the key's windows plus the last
 * values; events at ~20 per key per day, 30 s lateness with out-of-order
 * times, over 8 days (so the 7-day window is full). It measures and checks
 * bytes of state per key, the cost per event of the whole feature set, that
 * TTL eviction returns idle keys' memory, and that a checkpoint (keymap +
 * windows encoded, decoded) continues bit-identically.
 *
 * WEIR_TEST_SCALE scales the number of keys (default 20,000; 0.25 under ASan). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/hash.h"
#include "stream/codec.h"
#include "stream/keymap.h"
#include "stream/win.h"

static double scale(void)
{
    const char *s = getenv("WEIR_TEST_SCALE");
    if (s) return atof(s);
#if defined(__SANITIZE_ADDRESS__)
    return 0.25;
#else
    return 1;
#endif
}

#define HOUR 3600000LL
#define DAY (24 * HOUR)
#define LATENESS 30000LL
#define NWIN 4

typedef struct fraud {
    win_conf_t conf[NWIN];
    win_ask_t ask[NWIN];
} fraud_t;

static void fraud_init(fraud_t *f)
{
    assert_int_equal(win_conf_init(&f->conf[0], HOUR, 0, AGG_BIT(AGG_COUNT), 0, 0, NULL, 0), 0);
    assert_int_equal(win_conf_init(&f->conf[1], DAY, 0, AGG_BIT(AGG_SUM), 0, 0, NULL, 0), 0);
    assert_int_equal(win_conf_init(&f->conf[2], 7 * DAY, HOUR, AGG_BIT(AGG_AVG), 0, 0, NULL, 0), 0);
    assert_int_equal(win_conf_init(&f->conf[3], DAY, 0, AGG_BIT(AGG_DISTINCT), 1, 0, NULL, 0), 0);
    f->ask[0] = (win_ask_t){AGG_COUNT, 0};
    f->ask[1] = (win_ask_t){AGG_SUM, 0};
    f->ask[2] = (win_ask_t){AGG_AVG, 0};
    f->ask[3] = (win_ask_t){AGG_DISTINCT, 0};
}

/* The per-key value in the keymap. */
typedef struct key_state {
    win_t w[NWIN];
    uint64_t last_country; /* hash of the previous event's country */
    int64_t last_ts;
    uint8_t has_last;
} key_state_t;

static const fraud_t *cb_fraud; /* for the callbacks; set by each test */

static void ks_free(void *v, void *arg)
{
    (void)arg;
    key_state_t *s = v;
    for (int i = 0; i < NWIN; i++)
        if (s->w[i].conf) win_free(&s->w[i]);
}

static void ks_encode(const void *v, weir_buf_t *b, void *arg)
{
    (void)arg;
    const key_state_t *s = v;
    for (int i = 0; i < NWIN; i++) win_encode(&s->w[i], b);
    codec_put_u(b, s->has_last);
    codec_put_u64(b, s->last_country);
    codec_put_i(b, s->last_ts);
}

static int ks_decode(void *v, const unsigned char *p, size_t len, size_t *used, void *arg)
{
    const fraud_t *f = arg;
    key_state_t *s = v;
    size_t off = 0;
    for (int i = 0; i < NWIN; i++) {
        size_t u = 0;
        if (win_decode(&s->w[i], &f->conf[i], p + off, len - off, &u, NULL, 0) != 0) {
            for (int j = i + 1; j < NWIN; j++) win_init(&s->w[j], &f->conf[j]);
            return -1;
        }
        off += u;
    }
    codec_rd_t r = {p + off, p + len, 0};
    s->has_last = (uint8_t)(codec_get_u(&r) & 1);
    s->last_country = codec_get_u64(&r);
    s->last_ts = codec_get_i(&r);
    if (r.bad) return -1;
    *used = (size_t)(r.p - p);
    return 0;
}

/* One event through the feature set, as the engine will do it; returns a
 * hash of the features (for bit-identical comparisons). */
typedef struct event {
    uint32_t key;
    int64_t t;
    double amount;
    uint64_t merchant, country;
} event_t;

typedef struct part {
    keymap_t km;
    int64_t maxt, wm;
} part_t;

/* watermark - ttl: keys whose newest event is older are gone */
static int64_t cutoff(const part_t *p, int64_t ttl)
{
    return p->wm == INT64_MIN ? INT64_MIN : p->wm - ttl;
}

static uint64_t process(part_t *p, const fraud_t *f, const event_t *e, int64_t ttl)
{
    char k[32];
    int klen = snprintf(k, sizeof k, "card-%08u", e->key);
    agg_result_t out[NWIN];
    uint64_t h = 0;
    if (p->wm != INT64_MIN && e->t < p->wm) { /* late: features as of the watermark, state unchanged */
        key_state_t *s = keymap_get(&p->km, k, (size_t)klen);
        if (s && keymap_newest(s) >= cutoff(p, ttl))
            for (int i = 0; i < NWIN; i++) {
                win_query(&s->w[i], p->wm, &f->ask[i], 1, &out[i]);
                h = h * 31 + out[i].id;
            }
        return h;
    }
    int created;
    key_state_t *s = keymap_put(&p->km, k, (size_t)klen, cutoff(p, ttl), ks_free, NULL, &created);
    if (created)
        for (int i = 0; i < NWIN; i++) win_init(&s->w[i], &f->conf[i]);
    keymap_touch(s, e->t);
    win_add(&s->w[0], e->t, win_num(0));
    win_add(&s->w[1], e->t, win_num(e->amount));
    win_add(&s->w[2], e->t, win_num(e->amount));
    win_add(&s->w[3], e->t, win_id(e->merchant));
    for (int i = 0; i < NWIN; i++) {
        int rc = win_query(&s->w[i], e->t, &f->ask[i], 1, &out[i]);
        assert_int_equal(rc, 0);
        h = h * 31 + out[i].id;
    }
    int new_country = s->has_last && s->last_country != e->country;
    double secs_since = s->has_last ? (double)(e->t - s->last_ts) / 1000 : NAN;
    uint64_t secs_bits; /* its bits: a NaN has no integer value */
    memcpy(&secs_bits, &secs_since, sizeof secs_bits);
    h = h * 31 + (uint64_t)new_country + secs_bits;
    s->last_country = e->country;
    s->last_ts = e->t;
    s->has_last = 1;
    if (e->t > p->maxt) p->maxt = e->t;
    p->wm = p->maxt - LATENESS;
    for (int i = 0; i < NWIN; i++) win_expire(&s->w[i], p->wm);
    keymap_expire(&p->km, cutoff(p, ttl), 8, ks_free, NULL);
    return h;
}

/* Events in log order: per-key Poisson at `rate` per day over `days`; 20%
 * of events up to 30 s out of order; 1% later than the lateness. */
typedef struct gen {
    uint64_t s;
    uint32_t keys;
    double mean_gap_ms;
    double clock;
} gen_t;

static uint64_t grnd(gen_t *g)
{
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double gunif(gen_t *g)
{
    return (double)(grnd(g) >> 11) * 0x1p-53;
}

static void gen_next(gen_t *g, event_t *e)
{
    g->clock += -log(1 - gunif(g)) * g->mean_gap_ms;
    e->key = (uint32_t)(grnd(g) % g->keys);
    int64_t t = 1700000000000LL + (int64_t)g->clock;
    uint64_t r = grnd(g) % 100;
    if (r < 20) t -= (int64_t)(grnd(g) % LATENESS);
    else if (r == 20) t -= LATENESS + (int64_t)(grnd(g) % 600000);
    e->t = t;
    e->amount = round(exp(gunif(g) * 8) * 100) / 100; /* 1 .. 3000 */
    /* 70% of purchases at one of the card's 5 usual merchants */
    uint64_t m = grnd(g) % 100 < 70 ? e->key * 5ULL + grnd(g) % 5 : 1000000 + grnd(g) % 10000;
    e->merchant = weir_hash64(&m, sizeof m);
    uint64_t c = grnd(g) % 100 < 95 ? e->key % 40 : grnd(g) % 200;
    e->country = weir_hash64(&c, sizeof c);
}

static void test_fraud_state(void **state)
{
    (void)state;
    fraud_t f;
    fraud_init(&f);
    cb_fraud = &f;
    size_t base = weir_alloc_used();
    uint32_t keys = (uint32_t)(20000 * scale());
    if (keys < 500) keys = 500;
    const double per_key_per_day = 20;
    const int days = 8;
    int64_t ttl = 7 * DAY + LATENESS; /* longest window + lateness */
    part_t p;
    keymap_init(&p.km, sizeof(key_state_t));
    p.maxt = INT64_MIN;
    p.wm = INT64_MIN;
    gen_t g = {42, keys, (double)DAY / (per_key_per_day * keys), 0};
    uint64_t nevents = (uint64_t)(per_key_per_day * keys * days);
    event_t e;
    uint64_t t0 = weir_mono_ns(), h = 0;
    for (uint64_t i = 0; i < nevents; i++) {
        gen_next(&g, &e);
        h ^= process(&p, &f, &e, ttl);
    }
    double ns = (double)(weir_mono_ns() - t0) / (double)nevents;
    size_t used = weir_alloc_used() - base;
    size_t wb[NWIN] = {0};
    keymap_iter_t it = KEYMAP_ITER_INIT;
    void *v;
    while ((v = keymap_next(&p.km, &it))) {
        key_state_t *s = v;
        for (int i = 0; i < NWIN; i++) wb[i] += win_bytes(&s->w[i]);
    }
    size_t nk = keymap_count(&p.km);
    printf("  fraud feature set, %zu keys, %.0f events/key/day, %d days, %llu events:\n", nk,
           per_key_per_day, days, (unsigned long long)nevents);
    printf("    %.0f ns/event for the whole set (keymap + 4 windows + last values + expiry,\n"
           "    event generation included)\n", ns);
    printf("    %.0f bytes of state per key (weir_alloc_used), of which:\n", (double)used / nk);
    printf("      keymap slots + entry (header, key_state_t %zu B, key): %.0f\n",
           sizeof(key_state_t), (double)keymap_bytes(&p.km) / nk);
    const char *names[NWIN] = {"count 1h", "sum 24h", "avg 7d every 1h", "distinct 24h"};
    for (int i = 0; i < NWIN; i++)
        printf("      %-16s heap: %.0f\n", names[i], (double)wb[i] / nk);
    /* What a key costs must stay in the range the README will state. */
    assert_true(used / nk < 12000);
    assert_true(nk > keys * 0.99);

    /* Checkpoint: encode the partition, decode it, continue both; every
     * feature of every later event must be bit-identical. */
    weir_buf_t buf = WEIR_BUF_INIT;
    keymap_encode(&p.km, &buf, ks_encode, NULL);
    part_t q;
    char err[200];
    size_t usedb;
    assert_int_equal(keymap_decode(&q.km, sizeof(key_state_t), buf.data, buf.len, &usedb,
                                   ks_decode, ks_free, &f, err, sizeof err), 0);
    q.maxt = p.maxt;
    q.wm = p.wm;
    printf("    checkpoint: %.0f bytes per key encoded\n", (double)buf.len / nk);
    weir_buf_t buf2 = WEIR_BUF_INIT;
    keymap_encode(&q.km, &buf2, ks_encode, NULL);
    assert_int_equal(buf2.len, buf.len);
    assert_memory_equal(buf2.data, buf.data, buf.len);
    buf_free(&buf2);
    buf_free(&buf);
    for (uint64_t i = 0; i < nevents / 8; i++) {
        gen_next(&g, &e);
        uint64_t a = process(&p, &f, &e, ttl), b = process(&q, &f, &e, ttl);
        assert_true(a == b);
    }
    keymap_free(&q.km, ks_free, NULL);

    /* TTL: eight idle days later (ticks move the watermark), sweeping
     * evicts every key and returns the memory. */
    p.wm += 8 * DAY;
    for (int i = 0; i < 1000000 && keymap_count(&p.km); i++)
        keymap_expire(&p.km, p.wm - ttl, 1024, ks_free, NULL);
    assert_int_equal(keymap_count(&p.km), 0);
    size_t left = weir_alloc_used() - base;
    printf("    after TTL eviction of all keys: %zu bytes left (the empty table)\n", left);
    assert_true(left <= keymap_bytes(&p.km) + 64);
    keymap_free(&p.km, ks_free, NULL);
    assert_int_equal(weir_alloc_used(), base);
    (void)h;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fraud_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
