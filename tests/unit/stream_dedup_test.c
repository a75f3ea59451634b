/* stream_dedup_test.c — a key's recent ids (dedup.h) against a plain list:
 * random adds (some out of order), lookups with a cutoff that moves, across
 * the linear scan and the multiset (a busy key), and the codec: a decoded set
 * answers as the original, and damaged bytes are refused, not trusted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stream/codec.h"
#include "stream/dedup.h"

#define MAXREF 4096

typedef struct ref {
    int64_t t[MAXREF];
    uint64_t id[MAXREF], off[MAXREF];
    int n;
} ref_t;

/* The offset of the event that brought id, or -1. */
static int64_t ref_seen(ref_t *r, uint64_t id, int64_t cutoff)
{
    int k = 0;
    for (int i = 0; i < r->n; i++)
        if (r->t[i] > cutoff) r->t[k] = r->t[i], r->id[k] = r->id[i], r->off[k] = r->off[i], k++;
    r->n = k;
    for (int i = 0; i < r->n; i++)
        if (r->id[i] == id) return (int64_t)r->off[i];
    return -1;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* Events of one key: times rising with jitter below the lateness, ids from a
 * pool small enough that some repeat (retries). The window and the pace set
 * how many ids are live: a few, or hundreds (the multiset). */
static void run(int64_t window, int64_t step, uint64_t pool, int events)
{
    ref_t *r = calloc(1, sizeof *r);
    dedup_t *d = NULL;
    int64_t now = 1000000;
    int dups = 0;
    for (int i = 0; i < events; i++) {
        now += (int64_t)(next() % (uint64_t)step);
        int64_t t = now - (int64_t)(next() % 50); /* out of order within 50 ms */
        int64_t cutoff = now - 50 - window;       /* the watermark minus dedup */
        uint64_t id = next() % pool;
        int64_t want = ref_seen(r, id, cutoff);
        assert_int_equal(dedup_seen(&d, id, cutoff), want);
        if (want >= 0) {
            dups++;
            continue;
        }
        uint64_t off = 1000 + 3 * (uint64_t)i; /* the event's log offset */
        dedup_add(&d, id, t, off);
        assert_true(r->n < MAXREF);
        r->t[r->n] = t, r->id[r->n] = id, r->off[r->n] = off, r->n++;
        assert_int_equal(dedup_count(d), (uint32_t)r->n);
        if (i % 97 == 0) { /* through the codec: the copy answers the same */
            weir_buf_t b = WEIR_BUF_INIT;
            dedup_encode(d, &b);
            codec_rd_t rd = {(const unsigned char *)b.data, (const unsigned char *)b.data + b.len,
                             0};
            dedup_t *copy = NULL;
            assert_int_equal(dedup_decode(&copy, &rd, UINT32_MAX), 0);
            assert_int_equal(codec_left(&rd), 0);
            assert_int_equal(dedup_count(copy), dedup_count(d));
            for (uint64_t probe = 0; probe < pool; probe += 1 + pool / 64)
                assert_int_equal(dedup_seen(&copy, probe, cutoff), ref_seen(r, probe, cutoff));
            dedup_free(copy);
            buf_free(&b);
        }
    }
    assert_true(dups > 0); /* the pool made retries */
    dedup_free(d);
    free(r);
}

static void few_ids(void **state)
{
    (void)state;
    run(10000, 3000, 20, 5000); /* a handful live: the linear scan */
}

static void busy_key(void **state)
{
    (void)state;
    run(100000, 100, 5000, 20000); /* ~2000 live: the multiset, on and off */
}

static void forgets_everything(void **state)
{
    (void)state;
    dedup_t *d = NULL;
    for (uint64_t i = 0; i < 40; i++)
        dedup_add(&d, i, (int64_t)i, 100 + i);
    assert_int_equal(dedup_seen(&d, 39, 38), 139);
    assert_int_equal(dedup_seen(&d, 5, 38), -1); /* at or before the cutoff: gone */
    assert_int_equal(dedup_seen(&d, 39, 39), -1);
    assert_null(d); /* nothing left: freed */
}

/* dedup_decode of two entries: (t0, id0, offset 1), (t0 + dt, id1, offset 2). */
static int decode_two(int64_t t0, uint64_t id0, int64_t dt, uint64_t id1, dedup_t **out)
{
    weir_buf_t t = WEIR_BUF_INIT;
    codec_put_u(&t, 2);
    codec_put_i(&t, t0), codec_put_u64(&t, id0), codec_put_u(&t, 1);
    codec_put_i(&t, dt), codec_put_u64(&t, id1), codec_put_u(&t, 2);
    codec_rd_t rd = {(const unsigned char *)t.data, (const unsigned char *)t.data + t.len, 0};
    int rc = dedup_decode(out, &rd, UINT32_MAX);
    buf_free(&t);
    return rc;
}

static void refuses_damaged_bytes(void **state)
{
    (void)state;
    dedup_t *d = NULL;
    for (uint64_t i = 0; i < 30; i++)
        dedup_add(&d, i * 7, 1000 + (int64_t)i, i);
    weir_buf_t b = WEIR_BUF_INIT;
    dedup_encode(d, &b);
    /* every truncation is refused */
    for (size_t len = 0; len < b.len; len++) {
        codec_rd_t rd = {(const unsigned char *)b.data, (const unsigned char *)b.data + len, 0};
        dedup_t *c = (dedup_t *)1;
        assert_int_equal(dedup_decode(&c, &rd, UINT32_MAX), -1);
        assert_null(c);
    }
    /* more ids than allowed */
    codec_rd_t rd = {(const unsigned char *)b.data, (const unsigned char *)b.data + b.len, 0};
    dedup_t *c = NULL;
    assert_int_equal(dedup_decode(&c, &rd, 29), -1);
    /* two entries written by hand: an id twice, times out of order, a delta
     * past any time; and the same with a good second entry, which decodes
     * (the refusals are for what they name) */
    assert_int_equal(decode_two(5, 42, 1, 42, &c), -1);
    assert_int_equal(decode_two(5, 1, -1, 2, &c), -1);
    assert_int_equal(decode_two(INT64_MAX - 1, 1, 5, 2, &c), -1);
    assert_int_equal(decode_two(5, 1, 0, 2, &c), 0);
    assert_int_equal(dedup_seen(&c, 2, 0), 2);
    dedup_free(c);
    buf_free(&b);
    dedup_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(few_ids),
        cmocka_unit_test(busy_key),
        cmocka_unit_test(forgets_everything),
        cmocka_unit_test(refuses_damaged_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
