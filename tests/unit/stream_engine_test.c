/* stream_engine_test.c — the engine on hand-computed cases: features as of
 * each event (out-of-order within lateness), late events scored as of the
 * watermark and not applied, last(x), TTL reset, ticks, and aggregates on
 * close (tumbling, hopping, session) emitted when the watermark passes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spec/spec.h"
#include "stream/aggval.h"
#include "stream/engine.h"

static const char spec_text[] =
    "pipeline: t\n"
    "sources:\n"
    "  s:\n"
    "    key: k\n"
    "    time: ts\n"
    "    lateness: 10s\n"
    "    fields: {k: string, x: float, m: string, ts: time}\n"
    "features:\n"
    "  n_1m: count() over 1m\n"
    "  sum_1m: sum(x) over 1m\n"
    "  max_1m: max(x) over 1m\n"
    "  distinct_m: distinct(m) over 1m\n"
    "  prev_x: last(x)\n"
    "  avg_h: avg(x) over 1h every 1m\n"
    "aggregates:\n"
    "  tumble:\n"
    "    window: tumbling 1m\n"
    "    select: {n: count(), total: sum(x), long_m: max(len(lower(m)))}\n"
    "  hop:\n"
    "    window: hopping 2m every 1m\n"
    "    select: {n: count()}\n"
    "  sess:\n"
    "    window: session gap 30s\n"
    "    select: {n: count(), first_x: first(x), last_x: last(x)}\n";

enum { F_N, F_SUM, F_MAX, F_DISTINCT, F_PREV, F_AVG };

typedef struct emitted {
    char agg[16], key[16];
    int64_t start, end;
    int64_t n;
    double v1, v2;
} emitted_t;

typedef struct fixture {
    spec_t *spec;
    engine_t *eng;
    engine_part_t *part;
    emitted_t out[64];
    int nout;
    int nlate;
    int64_t late_wm;
    uint64_t offset;
} fixture_t;

static void on_window(void *ctx, uint32_t part, const spec_aggregate_t *agg, weir_slice_t key,
                      int64_t start, int64_t end, int partial, const expr_value_t *vals)
{
    (void)part;
    assert_int_equal(partial, 0); /* no reload here: every window saw every event */
    fixture_t *f = ctx;
    emitted_t *e = &f->out[f->nout++];
    snprintf(e->agg, sizeof e->agg, "%s", agg->name);
    snprintf(e->key, sizeof e->key, "%.*s", (int)key.len, key.ptr);
    e->start = start;
    e->end = end;
    e->n = vals[0].as.i;
    e->v1 = agg->nselect > 1 ? vals[1].as.f : 0;
    e->v2 = agg->nselect > 2 ? vals[2].as.f : 0;
}

static void on_late(void *ctx, uint32_t part, uint64_t offset, weir_slice_t key, int64_t time,
                    int64_t watermark, weir_slice_t event)
{
    (void)part, (void)offset, (void)key, (void)time, (void)event;
    fixture_t *f = ctx;
    f->nlate++;
    f->late_wm = watermark;
}

static int setup(void **state)
{
    static fixture_t f;
    memset(&f, 0, sizeof f);
    char err[512];
    if (spec_load_string(spec_text, sizeof spec_text - 1, "t.yaml", &f.spec, err, sizeof err) != 0)
        fail_msg("spec: %s", err);
    if (engine_new(f.spec, &f.eng, err, sizeof err) != 0) fail_msg("engine: %s", err);
    engine_sink_t sink = {on_window, on_late, &f, NULL};
    f.part = engine_part_new(f.eng, 0, &sink);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    engine_part_free(f->part);
    engine_free(f->eng);
    spec_free(f->spec);
    return 0;
}

/* Processes one event; returns the result. */
static engine_result_t ev(fixture_t *f, const char *k, double x, const char *m, int64_t ts)
{
    expr_value_t fields[4] = {expr_string(k, strlen(k)), expr_float(x), expr_string(m, strlen(m)),
                              expr_time(ts)};
    engine_result_t res;
    char err[256];
    assert_int_equal(engine_part_event(f->part, f->offset++, fields, (weir_slice_t){"{}", 2}, &res, err,
                                       sizeof err),
                     0);
    return res;
}

#define S 1000
#define M (60 * S)

static void features_as_of_each_event(void **state)
{
    fixture_t *f = *state;
    engine_result_t r = ev(f, "a", 1, "m1", 100 * S);
    assert_int_equal(r.late, 0);
    assert_int_equal(r.features[F_N].as.i, 1);
    assert_true(r.features[F_SUM].as.f == 1);
    assert_int_equal(r.features[F_PREV].type, EXPR_NULL);
    r = ev(f, "a", 2, "m2", 130 * S);
    assert_int_equal(r.features[F_N].as.i, 2);
    assert_true(r.features[F_SUM].as.f == 3);
    assert_true(r.features[F_MAX].as.f == 2);
    assert_int_equal(r.features[F_DISTINCT].as.i, 2);
    assert_true(r.features[F_PREV].as.f == 1);
    /* Out of order within the lateness (W = 130 - 10 = 120 s): t = 125 s.
     * Its window (65, 125] holds 100 and 125, not 130. */
    r = ev(f, "a", 4, "m1", 125 * S);
    assert_int_equal(r.late, 0);
    assert_int_equal(r.features[F_N].as.i, 2);
    assert_true(r.features[F_SUM].as.f == 5);
    assert_true(r.features[F_MAX].as.f == 4);
    assert_int_equal(r.features[F_DISTINCT].as.i, 1);
    assert_true(r.features[F_PREV].as.f == 2); /* previous in log order */
    /* 161 s: window (101, 161] drops the event at 100 s. */
    r = ev(f, "a", 8, "m3", 161 * S);
    assert_int_equal(r.features[F_N].as.i, 3);
    assert_true(r.features[F_SUM].as.f == 14);
    /* Bucketed: 1 h in 1 m buckets, t's bucket [120, 180) includes 125, 130, 161;
     * the 100 s event is in bucket [60, 120), also within the hour. */
    assert_true(r.features[F_AVG].as.f == (1 + 2 + 4 + 8) / 4.0);
}

static void late_events_are_scored_not_applied(void **state)
{
    fixture_t *f = *state;
    ev(f, "b", 10, "m", 200 * S);
    ev(f, "b", 20, "m", 230 * S); /* W = 220 s */
    engine_result_t r = ev(f, "b", 1000, "m", 205 * S);
    assert_int_equal(r.late, 1);
    assert_int_equal(r.watermark, 220 * S);
    /* As of W = 220 s: window (160, 220] holds 200 only (230 is after W). */
    assert_int_equal(r.features[F_N].as.i, 1);
    assert_true(r.features[F_SUM].as.f == 10);
    assert_true(r.features[F_PREV].as.f == 20);
    assert_int_equal(f->nlate, 1);
    assert_int_equal(f->late_wm, 220 * S);
    /* Not applied: the next event does not see 1000. */
    r = ev(f, "b", 1, "m", 231 * S);
    assert_int_equal(r.features[F_N].as.i, 3);
    assert_true(r.features[F_SUM].as.f == 31);
    assert_true(r.features[F_MAX].as.f == 20);
    assert_true(r.features[F_PREV].as.f == 20);
    /* A late event of a key never seen: an empty state. */
    r = ev(f, "zz", 5, "m", 1 * S);
    assert_int_equal(r.late, 1);
    assert_int_equal(r.features[F_N].as.i, 0);
    assert_true(r.features[F_SUM].as.f == 0);
    assert_int_equal(r.features[F_MAX].type, EXPR_NULL);
    assert_int_equal(r.features[F_PREV].type, EXPR_NULL);
}

static void ttl_resets_idle_keys(void **state)
{
    fixture_t *f = *state;
    ev(f, "c", 3, "m", 300 * S);
    /* ttl = longest window (1 h) + lateness (10 s). Another key moves time on. */
    ev(f, "d", 1, "m", 300 * S + 60 * M + 30 * S); /* cutoff = W - ttl = 310 s > 300 s */
    engine_result_t r = ev(f, "c", 4, "m", 300 * S + 60 * M + 30 * S);
    assert_int_equal(r.features[F_N].as.i, 1);
    assert_int_equal(r.features[F_PREV].type, EXPR_NULL); /* forgotten with the key */
    engine_stats_t st;
    engine_part_stats(f->part, &st);
    assert_true(st.evicted >= 1);
}

/* The prefetch stages' hint: stage 3 takes the value stage 2 found, but not
 * once a key has been freed in between (it may be that key's): it looks
 * again. A stale value read here is a use after free (ASan, make unit-asan). */
static void prefetch_hint_dropped_when_a_key_is_freed(void **state)
{
    fixture_t *f = *state;
    ev(f, "c", 3, "m", 300 * S);
    expr_value_t fields[4] = {expr_string("c", 1), expr_float(1), expr_string("m", 1), expr_time(300 * S)};
    uint64_t h = engine_event_hash(f->part, fields);
    engine_hint_t hint = {NULL, 0};
    engine_part_prefetch(f->part, fields, h, 2, &hint);
    const void *found = hint.value;
    assert_non_null(found);
    engine_part_prefetch(f->part, fields, h, 3, &hint); /* nothing freed: kept */
    assert_ptr_equal(hint.value, found);
    /* Past the TTL, a tick sweeps the idle key away. */
    ev(f, "d", 1, "m", 300 * S + 60 * M + 30 * S);
    engine_part_tick(f->part, 300 * S + 60 * M + 30 * S);
    engine_stats_t st;
    engine_part_stats(f->part, &st);
    assert_true(st.evicted >= 1);
    engine_part_prefetch(f->part, fields, h, 3, &hint);
    assert_null(hint.value);
}

/* The gauges' walk a slice at a time gives the whole walk's figures, and
 * keys added between slices (the caller unlocks there) keep it in bounds. */
static void stats_walk_in_slices(void **state)
{
    fixture_t *f = *state;
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ev(f, key, i, "m", 10 * S + i);
    }
    engine_stats_t whole, sliced;
    engine_part_stats(f->part, &whole);
    for (uint32_t budget = 1; budget <= 301; budget += 50) {
        engine_stats_walk_t w = ENGINE_STATS_WALK_INIT;
        int steps = 0;
        while (!engine_part_stats_step(f->part, &w, budget, &sliced)) steps++;
        assert_int_equal(steps, 300 / budget);
        assert_int_equal(sliced.keys, whole.keys);
        assert_int_equal(sliced.state_bytes, whole.state_bytes);
        assert_int_equal(sliced.events, whole.events);
    }
    /* new keys between slices (fewer than a slice walks, or it would not
     * end), enough to grow the table mid-walk */
    engine_stats_walk_t w = ENGINE_STATS_WALK_INIT;
    int n = 300;
    while (!engine_part_stats_step(f->part, &w, 7, &sliced)) {
        for (int j = 0; j < 3; j++, n++) {
            snprintf(key, sizeof key, "k%d", n);
            ev(f, key, n, "m", 10 * S + n);
        }
        assert_true(n < 2000);
    }
    engine_part_stats(f->part, &whole);
    assert_int_equal(sliced.keys, whole.keys);
    assert_true(sliced.state_bytes > 0);
}

static const emitted_t *find(fixture_t *f, const char *agg, const char *key, int64_t start)
{
    for (int i = 0; i < f->nout; i++)
        if (!strcmp(f->out[i].agg, agg) && !strcmp(f->out[i].key, key) && f->out[i].start == start)
            return &f->out[i];
    return NULL;
}

static void windows_close_on_watermark(void **state)
{
    fixture_t *f = *state;
    ev(f, "w", 1, "m", 10 * S);
    ev(f, "w", 2, "m", 50 * S);
    ev(f, "w", 4, "m", 70 * S); /* W = 60 s: [0, 60) closes */
    const emitted_t *e = find(f, "tumble", "w", 0);
    assert_non_null(e);
    assert_int_equal(e->end, 60 * S);
    assert_int_equal(e->n, 2);
    assert_true(e->v1 == 3);
    assert_null(find(f, "tumble", "w", 60 * S));
    /* Hopping 2m every 1m: [-60, 60) closed with 2 events; [0, 120) still open. */
    e = find(f, "hop", "w", -60 * S);
    assert_non_null(e);
    assert_int_equal(e->n, 2);
    assert_null(find(f, "hop", "w", 0));
    /* Session gap 30 s: 10 and 50 are 40 s apart, so [10, 40) is its own
     * session, closed at W = 60; 50 and 70 chain into [50, 100). */
    e = find(f, "sess", "w", 10 * S);
    assert_non_null(e);
    assert_int_equal(e->end, 40 * S);
    assert_int_equal(e->n, 1);
    /* An event at 45 s (W = 60: late) must not join anything. */
    engine_result_t r = ev(f, "w", 100, "m", 45 * S);
    assert_int_equal(r.late, 1);
    /* A tick moves time to 200 s: everything up to 190 s closes. */
    engine_part_tick(f->part, 200 * S);
    e = find(f, "tumble", "w", 60 * S);
    assert_non_null(e);
    assert_int_equal(e->n, 1);
    e = find(f, "hop", "w", 0);
    assert_non_null(e);
    assert_int_equal(e->n, 3);
    assert_true(e->v1 == 0);
    e = find(f, "sess", "w", 50 * S);
    assert_non_null(e);
    assert_int_equal(e->end, 100 * S);
    assert_int_equal(e->n, 2);
    assert_true(e->v1 == 2 && e->v2 == 4); /* first and last by time */
}

static void sessions_merge_when_bridged(void **state)
{
    fixture_t *f = *state;
    ev(f, "s", 1, "m", 1000 * S);
    ev(f, "s", 2, "m", 1040 * S); /* two sessions: [1000,1030) and [1040,1070) */
    ev(f, "s", 3, "m", 1045 * S); /* W = 1035: the first has closed already */
    ev(f, "t", 0, "m", 1052 * S); /* W = 1042 */
    ev(f, "s", 4, "m", 1043 * S); /* in time, extends the open session */
    engine_part_tick(f->part, 2000 * S);
    const emitted_t *a = find(f, "sess", "s", 1000 * S), *b = find(f, "sess", "s", 1040 * S);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->n, 1);
    assert_int_equal(b->n, 3);
    assert_int_equal(b->end, 1075 * S);
    assert_true(b->v1 == 2 && b->v2 == 3); /* first by time 1040, last by time 1045 */
}

static void strings_refused_where_unsupported(void **state)
{
    (void)state;
    static const char bad[] =
        "pipeline: t\nsources:\n  s:\n    key: k\n    time: ts\n    lateness: 1s\n"
        "    fields: {k: string, m: string, ts: time}\n"
        "features:\n  f: first(m) over 1m\n";
    spec_t *s;
    char err[512];
    /* Refused where the spec is read, with the position of the call. */
    assert_int_not_equal(spec_load_string(bad, sizeof bad - 1, "bad.yaml", &s, err, sizeof err), 0);
    assert_non_null(strstr(err, "bad.yaml:9:6: first over a window of strings is not supported yet"));
}

/* GET /v1/features is not in the log: looking keys up between events must
 * leave every later result bit-identical (principle 2). */
static void lookups_change_nothing(void **state)
{
    (void)state;
    static fixture_t fa, fb;
    fixture_t *a = &fa, *b = &fb;
    char err[512];
    for (fixture_t *f = a; f; f = f == a ? b : NULL) {
        memset(f, 0, sizeof *f);
        if (spec_load_string(spec_text, sizeof spec_text - 1, "t.yaml", &f->spec, err, sizeof err) ||
            engine_new(f->spec, &f->eng, err, sizeof err))
            fail_msg("%s", err);
        f->part = engine_part_new(f->eng, 0, NULL); /* no sink: thousands of windows close */
    }
    uint64_t rng = 12345;
    char key[8];
    for (int i = 0; i < 3000; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        snprintf(key, sizeof key, "k%d", (int)((rng >> 33) % 40));
        double x = (double)((rng >> 20) % 100000) / 7.0;
        int64_t ts = 1000000 + (int64_t)i * 700 - (int64_t)((rng >> 40) % 9000);
        engine_result_t ra = ev(a, key, x, key, ts), rb = ev(b, key, x, key, ts);
        assert_int_equal(ra.late, rb.late);
        for (int f = 0; f <= F_AVG; f++) {
            assert_int_equal(ra.features[f].type, rb.features[f].type);
            assert_memory_equal(&ra.features[f].as, &rb.features[f].as, sizeof ra.features[f].as);
        }
        char other[8];
        snprintf(other, sizeof other, "k%d", (int)((rng >> 13) % 40));
        engine_result_t lk;
        engine_part_lookup(b->part, (weir_slice_t){other, strlen(other)}, &lk);
    }
    engine_stats_t sa, sb;
    engine_part_stats(a->part, &sa);
    engine_part_stats(b->part, &sb);
    assert_true(sa.events == sb.events && sa.late == sb.late && sa.windows_emitted == sb.windows_emitted);
    engine_part_free(a->part);
    engine_part_free(b->part);
    engine_free(a->eng);
    engine_free(b->eng);
    spec_free(a->spec);
    spec_free(b->spec);
}

/* The events of deferred_closes_emit_the_same: a's and b's windows become
 * due (c's event at 2 h moves the watermark), then a's next event finds a
 * stale (idle longer than the TTL, 1 h 10 s) and resets it. The reset's
 * closes run in the middle of that event and evaluate lower() (tumble's
 * long_m): under ASan this caught them reallocating the event's scratch. */
static void reset_case(fixture_t *f, int defer)
{
    engine_part_defer_closes(f->part, defer);
    ev(f, "a", 1, "m1", 10 * S);
    ev(f, "a", 2, "m1", 20 * S);
    ev(f, "b", 5, "m1", 30 * S);
    ev(f, "c", 6, "m1", 120 * M);
    if (defer) {
        assert_int_equal(f->nout, 0); /* due, not emitted */
        assert_true(engine_part_has_due(f->part));
    }
    ev(f, "a", 3, "m1", 120 * M + 1);
    if (defer) {
        /* a's reset emitted a's due windows, and only those */
        assert_true(f->nout > 0);
        for (int i = 0; i < f->nout; i++) assert_string_equal(f->out[i].key, "a");
        int before = f->nout;
        assert_int_equal(engine_part_close_due(f->part, 1), 1); /* one at a time */
        assert_true(f->nout <= before + 1);
        while (engine_part_close_due(f->part, 2) > 0) {
        }
        assert_false(engine_part_has_due(f->part));
    }
}

static int emitted_cmp(const void *a, const void *b)
{
    const emitted_t *x = a, *y = b;
    int c = strcmp(x->agg, y->agg);
    if (!c) c = strcmp(x->key, y->key);
    if (!c) c = x->start < y->start ? -1 : x->start > y->start;
    if (!c) c = x->end < y->end ? -1 : x->end > y->end;
    return c;
}

/* CLOSES IN BATCHES (engine.c): when hundreds of windows fall due at once,
 * the engine pops them 32 at a time. The order and the values must be the
 * heap's whatever the batch: run the same events three times, closing
 * inside the event (whole batches), and deferred, drained one at a time
 * (no batch) and seven at a time; keys longer than a timer keeps inline
 * are in the mix. Every window's (key, start, n, total) line is compared. */
typedef struct lines {
    weir_buf_t b;
    size_t n;
} lines_t;

static void on_line(void *ctx, uint32_t part, const spec_aggregate_t *agg, weir_slice_t key,
                    int64_t start, int64_t end, int partial, const expr_value_t *vals)
{
    (void)part;
    assert_int_equal(partial, 0);
    lines_t *l = ctx;
    if (strcmp(agg->name, "tumble") != 0) return;
    buf_appendf(&l->b, "%.*s %lld %lld %lld %.17g\n", (int)key.len, key.ptr, (long long)start,
                (long long)end, (long long)vals[0].as.i, vals[1].as.f);
    l->n++;
}

/* A partition of spec_text whose "tumble" windows go to l as lines. */
static void lines_open(fixture_t *f, lines_t *l)
{
    memset(f, 0, sizeof *f);
    char err[512];
    if (spec_load_string(spec_text, sizeof spec_text - 1, "t.yaml", &f->spec, err, sizeof err) ||
        engine_new(f->spec, &f->eng, err, sizeof err))
        fail_msg("%s", err);
    engine_sink_t sink = {on_line, NULL, l, NULL};
    f->part = engine_part_new(f->eng, 0, &sink);
}

static void lines_close(fixture_t *f)
{
    engine_part_free(f->part);
    engine_free(f->eng);
    spec_free(f->spec);
}

static void batch_case(lines_t *l, size_t drain)
{
    fixture_t f;
    lines_open(&f, l);
    engine_part_defer_closes(f.part, drain > 0);
    char key[64];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 300; i++) {
            /* some keys share their first 8 bytes (the timer's prefix) */
            snprintf(key, sizeof key, i % 3 ? "key-%d" : "a-much-longer-customer-key-%05d", (i * 7919) % 300);
            ev(&f, key, i + round * 0.5, "m", (int64_t)round * 10 * S + i * 100);
        }
    ev(&f, "late-comer", 1, "m", 5 * M);
    if (drain)
        while (engine_part_close_due(f.part, drain) > 0) {
        }
    assert_false(engine_part_has_due(f.part));
    lines_close(&f);
}

/* The empty key is a key: its window closes and is emitted with an empty
 * key (a batch of closes holding only it once handed out a NULL key,
 * which ASan's run of this test caught). */
static void empty_key_closes(void **state)
{
    (void)state;
    lines_t l = {WEIR_BUF_INIT, 0};
    fixture_t f;
    lines_open(&f, &l);
    ev(&f, "", 2, "m", 10 * S);
    ev(&f, "", 3, "m", 20 * S);
    ev(&f, "", 4, "m", 5 * M);
    assert_int_equal(l.n, 1);
    buf_append(&l.b, "", 1);
    assert_string_equal(l.b.data, " 0 60000 2 5\n");
    lines_close(&f);
    buf_free(&l.b);
}

static void closes_in_batches_keep_the_order(void **state)
{
    (void)state;
    lines_t inline_ = {WEIR_BUF_INIT, 0}, one = {WEIR_BUF_INIT, 0}, seven = {WEIR_BUF_INIT, 0};
    batch_case(&inline_, 0);
    batch_case(&one, 1);
    batch_case(&seven, 7);
    assert_true(inline_.n >= 300); /* every key's minute-0 window, at once */
    assert_int_equal(one.n, inline_.n);
    assert_int_equal(seven.n, inline_.n);
    assert_int_equal(one.b.len, inline_.b.len);
    assert_memory_equal(one.b.data, inline_.b.data, one.b.len);
    assert_memory_equal(seven.b.data, inline_.b.data, seven.b.len);
    buf_free(&inline_.b);
    buf_free(&one.b);
    buf_free(&seven.b);
}

/* Closes deferred (engine.h, DEFERRED CLOSES) emit the same windows with
 * the same values as closes inside each event, a key reset included. */
static void deferred_closes_emit_the_same(void **state)
{
    fixture_t *f = *state;
    reset_case(f, 0);
    int n = f->nout;
    emitted_t *sync = malloc((size_t)n * sizeof *sync);
    memcpy(sync, f->out, (size_t)n * sizeof *sync);
    teardown(state);
    setup(state);
    f = *state;
    reset_case(f, 1);
    assert_int_equal(f->nout, n);
    qsort(sync, (size_t)n, sizeof *sync, emitted_cmp);
    qsort(f->out, (size_t)n, sizeof *f->out, emitted_cmp);
    for (int i = 0; i < n; i++) {
        assert_string_equal(f->out[i].agg, sync[i].agg);
        assert_string_equal(f->out[i].key, sync[i].key);
        assert_int_equal(f->out[i].start, sync[i].start);
        assert_int_equal(f->out[i].end, sync[i].end);
        assert_int_equal(f->out[i].n, sync[i].n);
        assert_true(f->out[i].v1 == sync[i].v1 && f->out[i].v2 == sync[i].v2);
    }
    free(sync);
}

/* aggval_kind maps the expression's aggregate kinds to the window's: the
 * same kind by name for every one a window computes (the two enums order
 * stddev and variance differently). */
static void aggregate_kinds_map_by_name(void **state)
{
    (void)state;
    for (int k = EXPR_AGG_COUNT; k < EXPR_AGG_PREV; k++) {
        const char *name = expr_agg_kind_name((expr_agg_kind_t)k);
        agg_kind_t kind = aggval_kind((expr_agg_kind_t)k);
        assert_int_equal(agg_kind_parse(name, strlen(name)), kind);
        assert_string_equal(agg_kind_name(kind), name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(features_as_of_each_event, setup, teardown),
        cmocka_unit_test_setup_teardown(late_events_are_scored_not_applied, setup, teardown),
        cmocka_unit_test_setup_teardown(ttl_resets_idle_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(prefetch_hint_dropped_when_a_key_is_freed, setup, teardown),
        cmocka_unit_test_setup_teardown(stats_walk_in_slices, setup, teardown),
        cmocka_unit_test_setup_teardown(windows_close_on_watermark, setup, teardown),
        cmocka_unit_test_setup_teardown(sessions_merge_when_bridged, setup, teardown),
        cmocka_unit_test_setup_teardown(deferred_closes_emit_the_same, setup, teardown),
        cmocka_unit_test(closes_in_batches_keep_the_order),
        cmocka_unit_test(empty_key_closes),
        cmocka_unit_test(strings_refused_where_unsupported),
        cmocka_unit_test(lookups_change_nothing),
        cmocka_unit_test(aggregate_kinds_map_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
