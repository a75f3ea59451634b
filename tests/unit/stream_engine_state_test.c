/* stream_engine_state_test.c — a partition's state through bytes and back
 * (engine_state.h): a stream processed in one go and the same stream
 * processed up to a random point, encoded, decoded into a fresh partition
 * and continued give bit-identical features, late verdicts and window
 * outputs, and equal state bytes at the end; so does a snapshot taken
 * while the partition goes on; corrupt or foreign state is
 * refused without a crash (run under ASan by CTest too). The same with the
 * source's `id` (the merchant: many events are duplicates, engine.h step 4),
 * whose ids go through the bytes with the keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "spec/spec.h"
#include "stream/engine.h"
#include "stream/engine_state.h"

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
    "  min_1m: min(x) over 1m\n"
    "  max_1m: max(x) over 1m\n"
    "  sd_5m: stddev(x) over 5m\n"
    "  distinct_m: distinct(m) over 1m\n"
    "  q_5m: approx_quantile(x, 0.9) over 5m\n"
    "  prev_x: last(x)\n"
    "  prev_m: last(m)\n"
    "  avg_h: avg(x) over 1h every 1m\n"
    "  d_h: distinct(m) over 1h every 1m\n"
    "aggregates:\n"
    "  tumble:\n"
    "    window: tumbling 1m\n"
    "    select: {n: count(), total: sum(x)}\n"
    "  hop:\n"
    "    window: hopping 2m every 1m\n"
    "    select: {n: count(), hi: max(x)}\n"
    "  sess:\n"
    "    window: session gap 30s\n"
    "    select: {n: count(), first_x: first(x), last_x: last(x)}\n";

/* The spec in use: spec_text, or it with an id (use_ids). */
static const char *spec_now = spec_text;
static char spec_ids[sizeof spec_text + 64];

static void use_ids(int on)
{
    const char *at = strstr(spec_text, "    lateness: 10s\n") + strlen("    lateness: 10s\n");
    snprintf(spec_ids, sizeof spec_ids, "%.*s    id: m\n    dedup: 2m\n%s", (int)(at - spec_text),
             spec_text, at);
    spec_now = on ? spec_ids : spec_text;
}

#define NEVENTS 6000

typedef struct run {
    spec_t *spec;
    engine_t *eng;
    engine_part_t *part;
    weir_buf_t out; /* every result and window output, as text */
} run_t;

static void on_window(void *ctx, uint32_t part, const spec_aggregate_t *agg, weir_slice_t key,
                      int64_t start, int64_t end, int partial, const expr_value_t *vals)
{
    (void)part;
    run_t *r = ctx;
    buf_appendf(&r->out, "W %s %.*s %lld %lld%s", agg->name, (int)key.len, key.ptr,
                (long long)start, (long long)end, partial ? " partial" : "");
    for (uint32_t i = 0; i < agg->nselect; i++)
        buf_appendf(&r->out, " %d:%llx", vals[i].type, (unsigned long long)vals[i].as.i);
    buf_append(&r->out, "\n", 1);
}

static void on_late(void *ctx, uint32_t part, uint64_t offset, weir_slice_t key, int64_t time,
                    int64_t watermark, weir_slice_t event)
{
    (void)part, (void)event;
    run_t *r = ctx;
    buf_appendf(&r->out, "L %llu %.*s %lld %lld\n", (unsigned long long)offset, (int)key.len,
                key.ptr, (long long)time, (long long)watermark);
}

static void run_open(run_t *r)
{
    char err[512];
    memset(r, 0, sizeof *r);
    if (spec_load_string(spec_now, strlen(spec_now), "t.yaml", &r->spec, err, sizeof err) ||
        engine_new(r->spec, &r->eng, err, sizeof err))
        fail_msg("%s", err);
    engine_sink_t sink = {on_window, on_late, r, NULL};
    r->part = engine_part_new(r->eng, 0, &sink);
}

static void run_close(run_t *r)
{
    engine_part_free(r->part);
    engine_free(r->eng);
    spec_free(r->spec);
    buf_free(&r->out);
}

/* Event i of the stream (a function of i and the seed): 60 keys, times
 * mostly increasing with jitter beyond the lateness (some late events),
 * idle stretches (TTL resets), and a tick every 500 events. */
static void step(run_t *r, uint64_t seed, int i)
{
    uint64_t h = (seed + (uint64_t)i) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    int64_t ts = 1000000 + (int64_t)i * 900 - (int64_t)(h % 14000);
    if (i > NEVENTS / 2) ts += 4 * 3600 * 1000; /* a gap longer than the TTL */
    if (i % 500 == 499) {
        engine_part_tick(r->part, ts + 20000);
        buf_appendf(&r->out, "T %lld\n", (long long)ts);
        return;
    }
    char key[16], m[32];
    snprintf(key, sizeof key, "key%u", (unsigned)((h >> 8) % 60));
    snprintf(m, sizeof m, (h >> 20) % 3 ? "m%u" : "a-longer-merchant-%u", (unsigned)((h >> 24) % 9));
    expr_value_t fields[4] = {expr_string(key, strlen(key)),
                              (h >> 40) % 17 ? expr_float((double)((h >> 12) % 100000) / 7.0)
                                             : expr_null(),
                              expr_string(m, strlen(m)), expr_time(ts)};
    engine_result_t res;
    char err[256];
    assert_int_equal(engine_part_event(r->part, (uint64_t)i, fields, (weir_slice_t){"{}", 2}, &res,
                                       err, sizeof err),
                     0);
    if (res.duplicate) buf_appendf(&r->out, "D %d %llu\n", i, (unsigned long long)res.duplicate_of);
    buf_appendf(&r->out, "E %d %d", i, res.late);
    if (!res.features) { /* engine_part_features_from */
        buf_append(&r->out, " -\n", 3);
        return;
    }
    for (uint32_t f = 0; f < r->spec->nfeatures; f++) {
        const expr_value_t *v = &res.features[f];
        if (v->type == EXPR_STRING)
            buf_appendf(&r->out, " s:%.*s", (int)v->as.s.len, v->as.s.ptr);
        else
            buf_appendf(&r->out, " %d:%llx", v->type, (unsigned long long)v->as.i);
    }
    buf_append(&r->out, "\n", 1);
}

/* Both partitions have counted the same events, windows, keys, watermark. */
static void assert_same_stats(run_t *a, run_t *b)
{
    engine_stats_t sa, sb;
    engine_part_stats(a->part, &sa);
    engine_part_stats(b->part, &sb);
    assert_true(sa.events == sb.events && sa.late == sb.late && sa.ticks == sb.ticks &&
                sa.duplicates == sb.duplicates &&
                sa.windows_emitted == sb.windows_emitted && sa.keys == sb.keys &&
                sa.watermark == sb.watermark);
}

static void encode(run_t *r, weir_buf_t *b)
{
    buf_reset(b);
    assert_int_equal(engine_part_encode(r->part, b, NULL, NULL), 0);
}

/* engine_part_features_from: the events below the offset get no features
 * (late ones excepted) and leave exactly the state and the outputs they
 * leave with them — compared as encoded state every 1000 events, and line
 * by line over every result, window and late event. */
static void features_from_changes_no_state(void **state)
{
    (void)state;
    run_t a, b;
    run_open(&a);
    run_open(&b);
    const int from = NEVENTS / 2 + 100;
    engine_part_features_from(b.part, (uint64_t)from);
    weir_buf_t ea = WEIR_BUF_INIT, eb = WEIR_BUF_INIT;
    for (int i = 0; i < NEVENTS; i++) {
        step(&a, 11, i);
        step(&b, 11, i);
        if (i % 1000 == 999 || i == NEVENTS - 1) {
            encode(&a, &ea);
            encode(&b, &eb);
            assert_int_equal(ea.len, eb.len);
            assert_memory_equal(ea.data, eb.data, ea.len);
        }
    }
    assert_same_stats(&a, &b);
    buf_append(&a.out, "", 1);
    buf_append(&b.out, "", 1);
    char *sa = a.out.data, *sb = b.out.data;
    int skipped = 0;
    while (*sa && *sb) {
        char *na = strchr(sa, '\n'), *nb = strchr(sb, '\n');
        assert_non_null(na);
        assert_non_null(nb);
        *na = *nb = 0;
        int i, late;
        if (strcmp(sa, sb) != 0) {
            /* only a non-late event below `from`, without its features */
            assert_int_equal(sscanf(sb, "E %d 0 -", &i), 1);
            assert_true(i < from);
            assert_true(strncmp(sa, sb, (size_t)(strrchr(sb, ' ') - sb)) == 0);
            skipped++;
        } else if (sscanf(sa, "E %d %d", &i, &late) == 2 && i < from) {
            assert_int_equal(late, 1); /* features as of the watermark, whatever the offset */
        }
        sa = na + 1;
        sb = nb + 1;
    }
    assert_true(!*sa && !*sb);
    assert_true(skipped > NEVENTS / 3);
    buf_free(&ea);
    buf_free(&eb);
    run_close(&a);
    run_close(&b);
}

/* Output of `whole` from the byte where `tail` began: they must agree. */
static void continues_identically(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        run_t whole, first, second;
        run_open(&whole);
        run_open(&first);
        run_open(&second);
        int cut = (int)((seed * 977) % NEVENTS);
        for (int i = 0; i < NEVENTS; i++) step(&whole, seed, i);
        for (int i = 0; i < cut; i++) step(&first, seed, i);
        weir_buf_t b = WEIR_BUF_INIT, b2 = WEIR_BUF_INIT;
        encode(&first, &b);
        char err[512];
        if (engine_part_decode(second.part, b.data, b.len, err, sizeof err) != 0)
            fail_msg("decode: %s", err);
        encode(&second, &b2); /* decoding loses nothing the encoder writes */
        assert_int_equal(b.len, b2.len);
        assert_memory_equal(b.data, b2.data, b.len);
        for (int i = cut; i < NEVENTS; i++) step(&second, seed, i);
        /* first's output + second's output == whole's output */
        assert_true(first.out.len + second.out.len == whole.out.len);
        assert_memory_equal(whole.out.data, first.out.data, first.out.len);
        assert_memory_equal(whole.out.data + first.out.len, second.out.data, second.out.len);
        assert_same_stats(&whole, &second);
        encode(&whole, &b);
        encode(&second, &b2);
        assert_int_equal(b.len, b2.len);
        assert_memory_equal(b.data, b2.data, b.len);
        buf_free(&b);
        buf_free(&b2);
        run_close(&whole);
        run_close(&first);
        run_close(&second);
    }
}

/* A snapshot taken while the partition goes on (engine_part_snap_*): begun
 * after `cut` events, finished a step of two keys every third event later
 * (TTL resets and expiries in between for some seeds), it decodes to a
 * partition that continues exactly as the one that never stopped; and the
 * partition it was taken from is not disturbed by it. */
static void snapshot_while_running(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        run_t whole, first, second;
        run_open(&whole);
        run_open(&first);
        run_open(&second);
        int cut = seed % 2 ? (int)((seed * 977) % NEVENTS) : NEVENTS / 2 - 40 + (int)seed;
        for (int i = 0; i < NEVENTS; i++) step(&whole, seed, i);
        for (int i = 0; i < cut; i++) step(&first, seed, i);
        size_t at_cut = first.out.len;
        weir_buf_t b = WEIR_BUF_INIT;
        engine_snap_t *s = engine_part_snap_begin(first.part);
        int done = 0, i = cut;
        for (; i < NEVENTS; i++) {
            step(&first, seed, i);
            if (!done && i % 3 == 0) done = engine_part_snap_step(first.part, s, 2, NULL, &b);
        }
        while (!done) done = engine_part_snap_step(first.part, s, 2, NULL, &b);
        assert_int_equal(first.out.len, whole.out.len);
        assert_memory_equal(first.out.data, whole.out.data, whole.out.len);
        char err[512];
        if (engine_part_decode(second.part, b.data, b.len, err, sizeof err) != 0)
            fail_msg("decode: %s", err);
        for (int j = cut; j < NEVENTS; j++) step(&second, seed, j);
        assert_int_equal(at_cut + second.out.len, whole.out.len);
        assert_memory_equal(whole.out.data + at_cut, second.out.data, second.out.len);
        assert_same_stats(&whole, &second);
        buf_free(&b);
        run_close(&whole);
        run_close(&first);
        run_close(&second);
    }
}

typedef struct chunks {
    weir_buf_t all;
    int calls;
} chunks_t;

static int collect(void *ctx, weir_buf_t *b)
{
    chunks_t *c = ctx;
    buf_append(&c->all, b->data, b->len);
    c->calls++;
    return 0;
}

/* Streaming through the flush callback gives the same bytes. */
static void streams_in_chunks(void **state)
{
    (void)state;
    run_t r;
    run_open(&r);
    for (int i = 0; i < NEVENTS; i++) step(&r, 7, i);
    weir_buf_t whole = WEIR_BUF_INIT, tail = WEIR_BUF_INIT;
    encode(&r, &whole);
    chunks_t c = {WEIR_BUF_INIT, 0};
    assert_int_equal(engine_part_encode(r.part, &tail, collect, &c), 0);
    buf_append(&c.all, tail.data, tail.len);
    assert_int_equal(c.all.len, whole.len);
    assert_memory_equal(c.all.data, whole.data, whole.len);
    buf_free(&whole);
    buf_free(&tail);
    buf_free(&c.all);
    run_close(&r);
}

/* Every truncation and many byte flips: an error or a valid state, never a
 * crash or a leak (ASan); a fresh partition is left empty on error. */
static void corrupt_state_is_refused(void **state)
{
    (void)state;
    run_t r;
    run_open(&r);
    for (int i = 0; i < 400; i++) step(&r, 3, i);
    weir_buf_t b = WEIR_BUF_INIT;
    encode(&r, &b);
    char err[512];
    for (size_t len = 0; len < b.len; len += 1 + len / 64) {
        run_t t;
        run_open(&t);
        assert_int_not_equal(engine_part_decode(t.part, b.data, len, err, sizeof err), 0);
        engine_stats_t st;
        engine_part_stats(t.part, &st);
        assert_int_equal(st.keys, 0);
        run_close(&t);
    }
    for (size_t at = 0; at < b.len; at += 1 + at / 32) {
        run_t t;
        run_open(&t);
        b.data[at] ^= 0x5a;
        (void)engine_part_decode(t.part, b.data, b.len, err, sizeof err);
        b.data[at] ^= 0x5a;
        for (int i = 400; i < 420; i++) step(&t, 3, i); /* usable either way */
        run_close(&t);
    }
    buf_free(&b);
    run_close(&r);
}

/* A state written for other windows is refused by its fingerprint. */
static void other_plan_is_refused(void **state)
{
    (void)state;
    run_t r;
    run_open(&r);
    for (int i = 0; i < 100; i++) step(&r, 5, i);
    weir_buf_t b = WEIR_BUF_INIT;
    encode(&r, &b);
    static const char other[] = "pipeline: t\n"
                                "sources:\n"
                                "  s:\n"
                                "    key: k\n"
                                "    time: ts\n"
                                "    lateness: 10s\n"
                                "    fields: {k: string, x: float, m: string, ts: time}\n"
                                "features:\n"
                                "  n_2m: count() over 2m\n";
    spec_t *s;
    engine_t *e;
    char err[512];
    assert_int_equal(spec_load_string(other, sizeof other - 1, "o.yaml", &s, err, sizeof err), 0);
    assert_int_equal(engine_new(s, &e, err, sizeof err), 0);
    engine_part_t *p = engine_part_new(e, 0, NULL);
    assert_int_not_equal(engine_part_decode(p, b.data, b.len, err, sizeof err), 0);
    assert_non_null(strstr(err, "another feature plan"));
    engine_part_free(p);
    engine_free(e);
    spec_free(s);
    buf_free(&b);
    run_close(&r);
}

/* With ids: many duplicates (the merchant repeats within 2m), and their ids
 * kept through encode, decode and snapshots. */
static void with_ids(void **state)
{
    use_ids(1);
    run_t r;
    run_open(&r);
    for (int i = 0; i < NEVENTS; i++) step(&r, 2, i);
    engine_stats_t st;
    engine_part_stats(r.part, &st);
    assert_true(st.duplicates > NEVENTS / 10 && st.events > NEVENTS / 10);
    run_close(&r);
    continues_identically(state);
    snapshot_while_running(state);
    streams_in_chunks(state);
    corrupt_state_is_refused(state);
}

static int ids_off(void **state)
{
    (void)state;
    use_ids(0); /* (a teardown: the tests after run without ids even if this one failed) */
    return 0;
}

/* A state of the plan without ids is refused by the plan with them (and the
 * other way): which events are duplicates is part of the plan. */
static void ids_are_part_of_the_plan(void **state)
{
    (void)state;
    run_t r, s;
    run_open(&r);
    for (int i = 0; i < 100; i++) step(&r, 5, i);
    weir_buf_t b = WEIR_BUF_INIT;
    encode(&r, &b);
    use_ids(1);
    run_open(&s);
    use_ids(0);
    char err[512];
    assert_int_not_equal(engine_part_decode(s.part, b.data, b.len, err, sizeof err), 0);
    assert_non_null(strstr(err, "another feature plan"));
    buf_free(&b);
    run_close(&r);
    run_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(with_ids, ids_off),
        cmocka_unit_test(ids_are_part_of_the_plan),
        cmocka_unit_test(continues_identically),
        cmocka_unit_test(snapshot_while_running),
        cmocka_unit_test(features_from_changes_no_state),
        cmocka_unit_test(streams_in_chunks),
        cmocka_unit_test(corrupt_state_is_refused),
        cmocka_unit_test(other_plan_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
