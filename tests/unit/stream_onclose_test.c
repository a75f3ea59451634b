/* stream_onclose_test.c — the on-close timer heap (src/stream/onclose.c):
 * timers pop in the order end, key bytes (memcmp, then the shorter key
 * first), aggregate, start — whatever the keys' lengths and bytes, zero
 * bytes and 0xff included, since the heap compares an 8-byte key prefix
 * before the keys themselves; short keys (kept in the timer) and long ones
 * (allocated) alike, and none leaked (ASan). Timers go in through
 * oc_timers_decode (the heap's only bulk entry point) in a shuffled order.
 *
 * And the timers' references to their keys' states (TIMERS KNOW THEIR
 * STATE): a timer pushed by oc_add hands its state to the due; one whose
 * state was freed meanwhile hands NULL, and the last reference frees the
 * state, whichever goes first (ASan: no leak, no use after free); decoded
 * timers know no state. And a state that outgrows its inline room (more
 * open windows and events than it holds) closes every window right, as
 * does its checkpoint copy. */
#include <float.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "spec/spec.h"
#include "stream/agg.h"
#include "stream/codec.h"
#include "stream/onclose.h"

#define NTIMERS 4000
#define MAXKEY  24 /* keys kept in the timer (<= 16 bytes) and malloc'd ones */

typedef struct timer {
    int64_t end, start;
    uint32_t ai, klen;
    unsigned char key[MAXKEY];
} timer_t_;

/* The order the heap must follow, written out directly. */
static int ref_cmp(const timer_t_ *a, const timer_t_ *b)
{
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    uint32_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->key, b->key, n);
    if (c) return c;
    if (a->klen != b->klen) return a->klen < b->klen ? -1 : 1;
    if (a->ai != b->ai) return a->ai < b->ai ? -1 : 1;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    return 0;
}

static int due_cmp(const oc_due_t *d, const timer_t_ *t)
{
    timer_t_ x = {.end = d->end, .start = d->start, .ai = d->ai, .klen = (uint32_t)d->key.len};
    memcpy(x.key, d->key.ptr, d->key.len);
    return ref_cmp(&x, t);
}

static void put_timers(weir_buf_t *b, const timer_t_ *v, int n, uint64_t gen0)
{
    codec_put_u(b, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        codec_put_i(b, v[i].end);
        codec_put_i(b, v[i].start);
        codec_put_u(b, gen0 + (uint64_t)i);
        codec_put_u(b, v[i].ai);
        codec_put_u(b, v[i].klen);
        buf_append(b, v[i].key, v[i].klen);
    }
}

static void push_timers(oc_timers_t *t, const timer_t_ *v, int n, uint64_t gen0)
{
    weir_buf_t b = WEIR_BUF_INIT;
    put_timers(&b, v, n, gen0);
    codec_rd_t r = {(const unsigned char *)b.data, (const unsigned char *)b.data + b.len, 0};
    const char *why = NULL;
    assert_int_equal(oc_timers_decode(t, 2, &r, &why), 0);
    buf_free(&b);
}

/* A heap decoded from t's encoding. */
static oc_timers_t *copy_timers(const oc_timers_t *t)
{
    weir_buf_t enc = WEIR_BUF_INIT;
    oc_timers_encode(t, &enc);
    oc_timers_t *t2 = oc_timers_new();
    codec_rd_t r = {(const unsigned char *)enc.data, (const unsigned char *)enc.data + enc.len, 0};
    const char *why = NULL;
    assert_int_equal(oc_timers_decode(t2, 2, &r, &why), 0);
    buf_free(&enc);
    return t2;
}

static void test_pop_order(void **state)
{
    (void)state;
    /* Bytes that stress a prefix compare: zero (the padding's value), a
     * low, a high and 0xff; a few ends, so most timers tie on end. */
    static const unsigned char alphabet[] = {0x00, 0x01, 'c', '0', 0x7f, 0x80, 0xff};
    static timer_t_ v[NTIMERS];
    srand(7);
    for (int i = 0; i < NTIMERS; i++) {
        timer_t_ *t = &v[i];
        t->end = 3600000 * (1 + rand() % 3);
        t->start = t->end - 3600000 * (1 + rand() % 2);
        t->ai = (uint32_t)(rand() % 2);
        t->klen = (uint32_t)(rand() % (MAXKEY + 1));
        for (uint32_t k = 0; k < t->klen; k++) t->key[k] = alphabet[rand() % sizeof alphabet];
        /* Many keys sharing their first 8 bytes, differing after them. */
        if (i % 3 == 0 && t->klen > 8) memcpy(t->key, "c0000000", 8);
    }
    oc_timers_t *t = oc_timers_new();
    push_timers(t, v, NTIMERS, 1);
    qsort(v, NTIMERS, sizeof v[0], (int (*)(const void *, const void *))ref_cmp);
    oc_due_t d;
    for (int i = 0; i < NTIMERS; i++) {
        assert_int_equal(oc_timers_pop(t, INT64_MAX / 2, &d), 1);
        assert_int_equal(due_cmp(&d, &v[i]), 0);
    }
    assert_int_equal(oc_timers_pop(t, INT64_MAX / 2, &d), 0);
    oc_timers_free(t);
}

/* Timers by end (onclose.c, TIMERS BY END) under pushes between pops: a
 * heap half popped takes more timers, some into the end being popped
 * (inserted in their place), some at ends before it (popped next), some
 * at ends of their own (session-like); its encoding then decodes to a heap
 * that pops the same. Every pop is checked against the order written out. */
static void test_pop_order_with_pushes_between(void **state)
{
    (void)state;
    static timer_t_ v[NTIMERS];
    srand(11);
    for (int i = 0; i < NTIMERS; i++) {
        timer_t_ *t = &v[i];
        /* Three shared ends; one timer in eight at an end of its own. */
        t->end = i % 8 == 0 ? 1000 + rand() % 7200000 : 3600000 * (1 + rand() % 3);
        t->start = t->end - 1000;
        t->ai = (uint32_t)(rand() % 2);
        t->klen = (uint32_t)(3 + rand() % (MAXKEY - 2));
        for (uint32_t k = 0; k < t->klen; k++) t->key[k] = (unsigned char)('a' + rand() % 3);
    }
    enum { FIRST = NTIMERS / 2, POPPED = NTIMERS / 4 };
    oc_timers_t *t = oc_timers_new();
    push_timers(t, v, FIRST, 1);
    qsort(v, FIRST, sizeof v[0], (int (*)(const void *, const void *))ref_cmp);
    oc_due_t d;
    for (int i = 0; i < POPPED; i++) {
        assert_int_equal(oc_timers_pop(t, INT64_MAX / 2, &d), 1);
        assert_int_equal(due_cmp(&d, &v[i]), 0);
    }
    /* What is left of the first half, and the second half, pushed now. */
    push_timers(t, v + FIRST, NTIMERS - FIRST, FIRST + 1);
    qsort(v + POPPED, NTIMERS - POPPED, sizeof v[0], (int (*)(const void *, const void *))ref_cmp);
    oc_timers_t *t2 = copy_timers(t);
    for (int i = POPPED; i < NTIMERS; i++) {
        assert_int_equal(oc_timers_pop(t, INT64_MAX / 2, &d), 1);
        assert_int_equal(due_cmp(&d, &v[i]), 0);
        assert_int_equal(oc_timers_pop(t2, INT64_MAX / 2, &d), 1);
        assert_int_equal(due_cmp(&d, &v[i]), 0);
    }
    assert_int_equal(oc_timers_pop(t, INT64_MAX / 2, &d), 0);
    assert_int_equal(oc_timers_pop(t2, INT64_MAX / 2, &d), 0);
    assert_int_equal(oc_timers_next(t), INT64_MAX);
    oc_timers_free(t);
    oc_timers_free(t2);
}

static const char spec_text[] =
    "pipeline: t\n"
    "sources:\n"
    "  s:\n"
    "    key: k\n"
    "    time: ts\n"
    "    fields: {k: string, ts: time}\n"
    "aggregates:\n"
    "  tumble:\n"
    "    window: tumbling 1m\n"
    "    select: {n: count()}\n"
    "  hop:\n"
    "    window: hopping 2m every 1m\n"
    "    select: {n: count()}\n"
    "  sess:\n"
    "    window: session gap 30s\n"
    "    select: {n: count()}\n";

#define MIN_MS 60000

static void add(oc_key_t **st, const spec_t *s, uint32_t ai, const char *key, int64_t t,
                oc_timers_t *timers)
{
    expr_env_t env = {0}; /* count() reads no field */
    static uint64_t seq;
    oc_add(st, &s->aggregates[ai], ai, (weir_slice_t){key, strlen(key)}, t, ++seq, &env, timers);
}

static spec_t *load_spec(void)
{
    spec_t *s = NULL;
    char err[512];
    if (spec_load_string(spec_text, sizeof spec_text - 1, "t.yaml", &s, err, sizeof err) != 0)
        fail_msg("spec: %s", err);
    return s;
}

/* A window of one value: its sum is what the moments give for it, to the
 * bit (oc_close's shortcut), -0 and the extremes included. */
static void test_one_value_sum_is_the_moments(void **state)
{
    (void)state;
    static const char text[] = "pipeline: t\n"
                               "sources:\n"
                               "  s:\n"
                               "    key: k\n"
                               "    time: ts\n"
                               "    fields: {k: string, x: float, ts: time}\n"
                               "aggregates:\n"
                               "  tumble:\n"
                               "    window: tumbling 1m\n"
                               "    select: {total: sum(x)}\n";
    spec_t *s = NULL;
    char err[512];
    if (spec_load_string(text, sizeof text - 1, "t.yaml", &s, err, sizeof err) != 0) fail_msg("spec: %s", err);
    const double xs[] = {-0.0, 0.0, 5e-324, -5e-324, DBL_MIN, DBL_MAX, -DBL_MAX, 0.1, -3.75, 1.0 / 3, 1e15 + 0.3, 389.23};
    weir_buf_t scratch = WEIR_BUF_INIT;
    buf_reserve(&scratch, 256);
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) {
        oc_timers_t *t = oc_timers_new();
        oc_key_t *k = NULL;
        expr_value_t fields[3] = {expr_string("a", 1), expr_float(xs[i]), expr_time(10)};
        expr_env_t env = {.fields = fields};
        oc_add(&k, &s->aggregates[0], 0, (weir_slice_t){"a", 1}, 10, 1, &env, t);
        oc_due_t d;
        assert_int_equal(oc_timers_pop(t, MIN_MS, &d), 1);
        expr_value_t vals[1];
        assert_int_equal(oc_close(oc_due_state(&d), &s->aggregates[0], &d, vals, &scratch), 1);
        agg_moments_t m;
        agg_moments_init(&m, 0);
        agg_moments_add(&m, xs[i], 1);
        double want = agg_moments_sum(&m);
        assert_int_equal(vals[0].type, EXPR_FLOAT);
        assert_memory_equal(&vals[0].as.f, &want, sizeof want);
        oc_key_free(k);
        oc_timers_free(t);
    }
    buf_free(&scratch);
    spec_free(s);
}

static void test_timers_know_their_state(void **state)
{
    (void)state;
    spec_t *s = load_spec();
    oc_timers_t *t = oc_timers_new();
    oc_key_t *a = NULL, *b = NULL, *c = NULL, *h = NULL;
    add(&a, s, 0, "a", 10, t);
    add(&a, s, 0, "a", 20, t);          /* same window: no second timer */
    add(&b, s, 0, "b", 30, t);
    add(&c, s, 0, "c", MIN_MS + 5, t);  /* a window of the next minute */
    add(&h, s, 1, "h", 40, t);          /* hopping: two windows, two timers */
    /* a and h go with their keys while their timers are pending. */
    oc_key_free(a);
    oc_key_free(h);

    oc_due_t d;
    expr_value_t vals[1];
    weir_buf_t scratch = WEIR_BUF_INIT;
    buf_reserve(&scratch, 256);
    assert_int_equal(oc_timers_pop(t, MIN_MS, &d), 1);
    assert_true(d.key.len == 1 && d.key.ptr[0] == 'a' && d.state != NULL);
    assert_null(oc_due_state(&d)); /* freed: nothing to close; the state goes now */
    assert_null(d.state);
    assert_int_equal(oc_timers_pop(t, MIN_MS, &d), 1);
    assert_true(d.key.ptr[0] == 'b');
    assert_ptr_equal(oc_due_state(&d), b);
    assert_int_equal(oc_close(b, &s->aggregates[0], &d, vals, &scratch), 1);
    assert_int_equal(vals[0].as.i, 1);
    assert_int_equal(oc_timers_pop(t, MIN_MS, &d), 1); /* h's first window, ending at 1m */
    assert_true(d.key.ptr[0] == 'h' && d.ai == 1);
    assert_null(oc_due_state(&d)); /* its other timer still holds the state */
    assert_int_equal(oc_timers_pop(t, MIN_MS, &d), 0);

    /* The heap encoded and decoded: its timers know only their keys. */
    oc_timers_t *t2 = copy_timers(t);
    int n = 0;
    while (oc_timers_pop(t2, 3 * MIN_MS, &d)) {
        assert_null(d.state);
        n++;
    }
    assert_int_equal(n, 2); /* c's window and h's second one */
    oc_timers_free(t2);

    /* The heap goes before the states it points at (h's last timer, c's):
     * h, dead, is freed with it; c stays its key's, and is freed with it. */
    oc_timers_free(t);
    assert_int_equal(oc_key_idle(c), 0);
    oc_key_free(c);
    oc_key_free(b);
    buf_free(&scratch);
    spec_free(s);
}

static void test_inline_room_outgrown(void **state)
{
    (void)state;
    spec_t *s = load_spec();
    const spec_aggregate_t *hop = &s->aggregates[1];
    oc_timers_t *t = oc_timers_new();
    oc_key_t *k = NULL;
    /* Ten events over four minutes: five open windows of 2m every 1m. */
    int64_t times[10];
    for (int i = 0; i < 10; i++) {
        times[i] = 25000 * (int64_t)i;
        add(&k, s, 1, "key", times[i], t);
    }
    size_t grown = oc_key_bytes(k);
    weir_buf_t enc = WEIR_BUF_INIT;
    oc_key_encode(k, &enc);
    codec_rd_t r = {(const unsigned char *)enc.data, (const unsigned char *)enc.data + enc.len, 0};
    const char *why = NULL;
    oc_key_t *copy = NULL;
    assert_int_equal(oc_key_decode(&copy, hop, &r, &why), 0);
    /* Both hold more than a state of one event and two windows: out of
     * their inline room. */
    oc_timers_t *t1 = oc_timers_new();
    oc_key_t *one = NULL;
    add(&one, s, 1, "one", 0, t1);
    assert_true(grown > oc_key_bytes(one) && oc_key_bytes(copy) > oc_key_bytes(one));
    oc_timers_free(t1);
    oc_key_free(one);

    oc_due_t d;
    expr_value_t a[1], b[1];
    weir_buf_t scratch = WEIR_BUF_INIT;
    buf_reserve(&scratch, 256);
    int closed = 0;
    while (oc_timers_pop(t, 10 * MIN_MS, &d)) {
        assert_ptr_equal(oc_due_state(&d), k);
        assert_int_equal(oc_close(k, hop, &d, a, &scratch), 1);
        assert_int_equal(oc_close(copy, hop, &d, b, &scratch), 1);
        int64_t want = 0;
        for (int i = 0; i < 10; i++) want += times[i] >= d.start && times[i] < d.end;
        assert_int_equal(a[0].as.i, want);
        assert_int_equal(b[0].as.i, want);
        closed++;
    }
    assert_int_equal(closed, 5); /* windows starting at -1m, 0, 1m, 2m, 3m */
    assert_true(oc_key_idle(k) && oc_key_idle(copy));
    oc_key_free(k);
    oc_key_free(copy);
    oc_timers_free(t);
    buf_free(&enc);
    buf_free(&scratch);
    spec_free(s);
}

/* The queue's memory stays bounded when tumbling windows (thousands of
 * timers at one end) and sessions (an end each) share it: an hour's
 * emptied bucket must not leave its big array in a slot that a session
 * takes next, one more every hour. Two hours of minutes here (the same
 * with minutes), closed as a watermark 30 s behind passes them. */
static void test_memory_bounded_with_sessions(void **state)
{
    (void)state;
    spec_t *s = load_spec();
    enum { KEYS = 300, MINUTES = 120 };
    static oc_key_t *tum[KEYS], *ses[KEYS];
    oc_timers_t *t = oc_timers_new();
    oc_due_t d;
    expr_value_t vals[1];
    weir_buf_t scratch = WEIR_BUF_INIT;
    buf_reserve(&scratch, 256);
    size_t early = 0;
    uint64_t closed = 0;
    for (int m = 0; m < MINUTES; m++) {
        for (int k = 0; k < KEYS; k++) {
            char key[16];
            snprintf(key, sizeof key, "k%05d", k);
            int64_t at = (int64_t)m * MIN_MS + k * (MIN_MS / KEYS);
            add(&tum[k], s, 0, key, at, t);
            add(&ses[k], s, 2, key, at, t);
            /* the watermark 30 s behind: a minute's bucket opens before
             * the one before it is done */
            while (oc_timers_pop(t, at - 30000, &d)) {
                oc_key_t *st = oc_due_state(&d);
                if (st) closed += (uint64_t)oc_close(st, &s->aggregates[d.ai], &d, vals, &scratch);
            }
        }
        if (m == 10) early = oc_timers_bytes(t);
    }
    assert_true(closed >= (uint64_t)KEYS * (MINUTES - 2) * 2);
    assert_true(oc_timers_bytes(t) < 2 * early);
    oc_timers_free(t);
    for (int k = 0; k < KEYS; k++) {
        oc_key_free(tum[k]);
        oc_key_free(ses[k]);
    }
    buf_free(&scratch);
    spec_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pop_order),
        cmocka_unit_test(test_pop_order_with_pushes_between),
        cmocka_unit_test(test_timers_know_their_state),
        cmocka_unit_test(test_one_value_sum_is_the_moments),
        cmocka_unit_test(test_inline_room_outgrown),
        cmocka_unit_test(test_memory_bounded_with_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
