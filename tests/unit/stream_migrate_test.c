/* stream_migrate_test.c — a partition's state moved to a reloaded spec's
 * plan (engine_migrate.h). The property, on random streams with
 * out-of-order and late events, ticks and a TTL-long gap: run spec A up to
 * a cut, migrate to spec B, continue; then
 *   - every feature, aggregate output and pattern match of B whose state
 *     A had unchanged equals, bit for bit, B run over the whole stream
 *     (from the cut on);
 *   - every one B adds or changes equals B run over only the events after
 *     the cut (a fresh partition brought to the same watermark by a tick):
 *     its state starts empty;
 *   - what B removed is gone, and nothing leaks (ASan build).
 * Migrating to the same spec loaded again loses nothing at all: the output
 * and the final checkpoint bytes equal the unbroken run's. And
 * engine_migrate_check refuses what needs a restart, saying what. */
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
#include "stream/engine.h"
#include "stream/engine_migrate.h"
#include "stream/engine_state.h"

#define SOURCE                                                                                     \
    "pipeline: t\n"                                                                                \
    "sources:\n"                                                                                   \
    "  s:\n"                                                                                       \
    "    key: k\n"                                                                                 \
    "    time: ts\n"                                                                               \
    "    lateness: 10s\n"                                                                          \
    "    fields: {k: string, kind: string, x: float, v: int, ts: time}\n"

/* Patterns both specs have unchanged (B changes rise's emit only, which
 * keeps its runs). */
#define STOP                                                                                       \
    "  stop:\n"                                                                                    \
    "    sequence:\n"                                                                              \
    "      - a: kind == \"a\"\n"                                                                   \
    "      - c:\n"                                                                                 \
    "          when: kind == \"c\"\n"                                                              \
    "          gap: 30s\n"                                                                         \
    "      - none:\n"                                                                              \
    "          not: kind == \"d\"\n"                                                               \
    "          gap: 20s\n"                                                                         \
    "    within: 2m\n"                                                                             \
    "    emit: {cv: c.v}\n"
#define ARRIVE                                                                                     \
    "  arrive:\n"                                                                                  \
    "    sequence:\n"                                                                              \
    "      - a: kind == \"a\" and v > 5\n"                                                         \
    "      - b:\n"                                                                                 \
    "          when: kind == \"b\"\n"                                                              \
    "          one_or_more: true\n"                                                                \
    "    within: 1m\n"                                                                             \
    "    order: arrival\n"                                                                         \
    "    emit: {av: a.v}\n"
#define RISE_STEPS                                                                                 \
    "  rise:\n"                                                                                    \
    "    sequence:\n"                                                                              \
    "      - a: kind == \"a\"\n"                                                                   \
    "      - b: kind == \"b\" and v > a.v\n"                                                       \
    "    within: 1m\n"

/* Features both specs have. */
#define KEPT_FEATURES                                                                              \
    "features:\n"                                                                                  \
    "  n_1m: count() over 1m\n"                                                                    \
    "  sum_5m: sum(x) over 5m\n"                                                                   \
    "  avg_5m: avg(x) over 5m\n"                                                                   \
    "  d_1m: distinct(kind) over 1m\n"                                                             \
    "  prev_x: last(x)\n"                                                                          \
    "  avg_h: avg(x) over 1h every 1m\n"

static const char spec_a[] =
    SOURCE KEPT_FEATURES "  gone_max: max(x) over 2m\n"
                         "  gone_prev: last(kind)\n"
                         "  m_rise: matches(rise) over 10m\n"
                         "  m_gone: matches(gone) over 10m\n"
                         "aggregates:\n"
                         "  tumble:\n"
                         "    window: tumbling 1m\n"
                         "    select: {n: count(), total: sum(x)}\n"
                         "  sess:\n"
                         "    window: session gap 30s\n"
                         "    select: {n: count(), last_x: last(x)}\n"
                         "  gone_hop:\n"
                         "    window: hopping 2m every 1m\n"
                         "    select: {n: count()}\n"
                         "patterns:\n" RISE_STEPS "    emit: {av: a.v}\n" STOP
                         /* a strict step: A holds every event for time order, B does not */
                         "  gone:\n"
                         "    sequence:\n"
                         "      - c: kind == \"c\"\n"
                         "      - d:\n"
                         "          when: kind == \"d\"\n"
                         "          contiguity: strict\n"
                         "    within: 1m\n" ARRIVE "  chg:\n"
                         "    sequence:\n"
                         "      - b: kind == \"b\"\n"
                         "      - c: kind == \"c\"\n"
                         "    within: 1m\n"
                         "    emit: {bv: b.v}\n";

/* The same TTL as A (longest window 1h, longest within 2m), so that keys
 * live equally long under both. */
static const char spec_b[] = SOURCE KEPT_FEATURES
    "  new_min: min(x) over 3m\n"
    "  new_n2m: count() over 2m\n"
    "  new_prev: last(v)\n"
    "  m_rise: matches(rise) over 10m\n"
    "  m_fresh: matches(fresh) over 10m\n"
    "  combo: sum_5m + n_1m\n"
    "aggregates:\n"
    "  tumble:\n"
    "    window: tumbling 1m\n"
    "    select: {n: count(), total2: sum(x) * 2}\n"
    "  sess:\n"
    "    window: session gap 30s\n"
    "    select: {n: count(), first_x: first(x)}\n"
    "  new_tumb:\n"
    "    window: tumbling 30s\n"
    "    select: {n: count()}\n"
    "patterns:\n" RISE_STEPS "    emit: {av2: a.v * 2}\n" STOP ARRIVE "  fresh:\n"
    "    sequence:\n"
    "      - b: kind == \"b\"\n"
    "      - a: kind == \"a\" and v < b.v\n"
    "    within: 1m\n"
    "    emit: {bv: b.v}\n"
    "  chg:\n"
    "    sequence:\n"
    "      - b: kind == \"b\"\n"
    "      - c: kind == \"c\"\n"
    "    within: 90s\n"
    "    emit: {bv: b.v}\n";

/* What of B exists unchanged in A (compared with B over the whole stream)
 * and what is new or changed (compared with B over the events after the
 * cut). Features are "F:name", pattern.NAME flags "G:name", on-close
 * outputs "A:name", pattern matches "P:name", late events "L". combo is
 * a new feature, but made of kept aggregates only: it is exact at once. */
static const char *const kept_b[] = {
    "F:n_1m", "F:sum_5m", "F:avg_5m", "F:d_1m",   "F:prev_x", "F:avg_h", "F:m_rise", "F:combo",
    "G:rise", "G:stop",   "G:arrive", "A:tumble", "P:rise",   "P:stop",  "P:arrive", "L"};
static const char *const new_b[] = {"F:new_min", "F:new_n2m", "F:new_prev", "F:m_fresh", "G:fresh",
                                    "G:chg",     "A:sess",    "A:new_tumb", "P:fresh",   "P:chg"};

#define NEVENTS 6000
#define NKEYS   25

typedef struct run {
    spec_t *spec;
    engine_t *eng;
    engine_part_t *part;
    int at;         /* the record being processed: tags output lines */
    weir_buf_t out; /* "tag name payload\n" per output */
} run_t;

static void put_value(weir_buf_t *b, const expr_value_t *v)
{
    if (v->type == EXPR_STRING)
        buf_appendf(b, " s:%.*s", (int)v->as.s.len, v->as.s.ptr);
    else
        buf_appendf(b, " %d:%llx", v->type, (unsigned long long)v->as.i);
}

static void on_window(void *ctx, uint32_t part, const spec_aggregate_t *agg, weir_slice_t key,
                      int64_t start, int64_t end, const expr_value_t *vals)
{
    (void)part;
    run_t *r = ctx;
    const spec_pattern_t *p = spec_pattern_of(r->spec, agg);
    buf_appendf(&r->out, "%d %s:%s %.*s %lld %lld", r->at, p ? "P" : "A", agg->name, (int)key.len,
                key.ptr, (long long)start, (long long)end);
    uint32_t n = agg->nselect + (p ? 2 : 0); /* a match: + its events and watermark */
    for (uint32_t i = 0; i < n; i++)
        put_value(&r->out, &vals[i]);
    buf_append(&r->out, "\n", 1);
}

static void on_late(void *ctx, uint32_t part, uint64_t offset, weir_slice_t key, int64_t time,
                    int64_t watermark, weir_slice_t event)
{
    (void)part, (void)event;
    run_t *r = ctx;
    buf_appendf(&r->out, "%d L %llu %.*s %lld %lld\n", r->at, (unsigned long long)offset,
                (int)key.len, key.ptr, (long long)time, (long long)watermark);
}

static engine_sink_t sink_of(run_t *r)
{
    return (engine_sink_t){on_window, on_late, r};
}

static void load(const char *text, spec_t **spec, engine_t **eng)
{
    char err[512];
    if (spec_load_string(text, strlen(text), "t.yaml", spec, err, sizeof err) ||
        engine_new(*spec, eng, err, sizeof err))
        fail_msg("%s", err);
}

static void run_open(run_t *r, const char *text)
{
    memset(r, 0, sizeof *r);
    load(text, &r->spec, &r->eng);
    engine_sink_t sink = sink_of(r);
    r->part = engine_part_new(r->eng, 0, &sink);
    r->at = -1;
}

static void run_close(run_t *r)
{
    engine_part_free(r->part);
    engine_free(r->eng);
    spec_free(r->spec);
    buf_free(&r->out);
}

/* The reload: the spec `text` takes over r's partition, as the server
 * does it (check, migrate, then the old plan and spec can go). */
static void reload(run_t *r, const char *text, engine_migrate_stats_t *st)
{
    spec_t *spec;
    engine_t *eng;
    char err[512];
    load(text, &spec, &eng);
    if (engine_migrate_check(r->eng, eng, err, sizeof err) != 0) fail_msg("%s", err);
    spec_t *old_spec = r->spec;
    r->spec = spec; /* the sink names outputs by the running spec */
    engine_sink_t sink = sink_of(r);
    r->part = engine_part_migrate(r->part, eng, &sink, st);
    engine_free(r->eng);
    spec_free(old_spec);
    r->eng = eng;
}

static uint64_t mix(uint64_t seed, int i)
{
    uint64_t h = (seed + (uint64_t)i) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return h;
}

static int64_t time_of(uint64_t seed, int i)
{
    int64_t ts = 1000000 + (int64_t)i * 700 - (int64_t)(mix(seed, i) % 14000);
    if (i > NEVENTS * 3 / 4) ts += 4 * 3600 * 1000; /* longer than the TTL: every key resets */
    return ts;
}

/* Record i of the stream: an event of one of NKEYS keys (times jittered
 * beyond the lateness: some are late), or every 400th a tick. */
static void step(run_t *r, uint64_t seed, int i)
{
    uint64_t h = mix(seed, i);
    int64_t ts = time_of(seed, i);
    r->at = i;
    if (i % 400 == 399) {
        engine_part_tick(r->part, ts + 15000);
        return;
    }
    static const char *const kinds[] = {"a", "a", "b", "b", "c", "c", "d", "z"};
    char key[16];
    snprintf(key, sizeof key, "key%u", (unsigned)((h >> 8) % NKEYS));
    const char *kind = kinds[(h >> 16) % 8];
    expr_value_t fields[5] = {expr_string(key, strlen(key)), expr_string(kind, strlen(kind)),
                              (h >> 40) % 13 ? expr_float((double)((h >> 12) % 100000) / 7.0)
                                             : expr_null(),
                              expr_int((int64_t)((h >> 24) % 10)), expr_time(ts)};
    engine_result_t res;
    char err[256];
    assert_int_equal(engine_part_event(r->part, (uint64_t)i, fields, (weir_slice_t){"{}", 2}, &res,
                                       err, sizeof err),
                     0);
    const spec_t *s = r->spec;
    for (uint32_t f = 0; f < s->nfeatures; f++) {
        buf_appendf(&r->out, "%d F:%s", i, s->features[f].name);
        put_value(&r->out, &res.features[f]);
        buf_append(&r->out, "\n", 1);
    }
    for (uint32_t p = 0; p < s->npatterns; p++)
        buf_appendf(&r->out, "%d G:%s %d\n", i, s->patterns[p].name,
                    res.features[s->nfeatures + p].as.b);
}

/* Records [from, to) of the stream. */
static void steps(run_t *r, uint64_t seed, int from, int to)
{
    for (int i = from; i < to; i++)
        step(r, seed, i);
}

/* The lines of out named `name` with tag >= from, tags dropped. */
static void lines_of(const weir_buf_t *out, const char *name, int from, weir_buf_t *dst)
{
    buf_reset(dst);
    size_t nl = strlen(name);
    const char *p = out->data, *end = out->data + out->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        int tag = atoi(p);
        const char *nm = strchr(p, ' ') + 1;
        if (tag >= from && (size_t)(eol - nm) >= nl && !memcmp(nm, name, nl) &&
            (nm[nl] == ' ' || nm[nl] == '\n'))
            buf_append(dst, nm, (size_t)(eol - nm) + 1);
        p = eol + 1;
    }
}

static void same_lines(const weir_buf_t *x, const weir_buf_t *y, const char *name, int from_x,
                       int from_y, int *nonempty)
{
    weir_buf_t a = WEIR_BUF_INIT, b = WEIR_BUF_INIT;
    lines_of(x, name, from_x, &a);
    lines_of(y, name, from_y, &b);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
        fail_msg("%s differs after the reload: %zu vs %zu bytes", name, a.len, b.len);
    *nonempty += a.len > 0;
    buf_free(&a);
    buf_free(&b);
}

static void unchanged_state_moves_and_new_state_starts_empty(void **state)
{
    (void)state;
    uint64_t held = 0, deadlines = 0, timers = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int cut = 500 + (int)((seed * 977) % (NEVENTS - 1000));
        run_t whole_b, mig, fresh_b;
        run_open(&whole_b, spec_b);
        run_open(&mig, spec_a);
        run_open(&fresh_b, spec_b);
        steps(&whole_b, seed, 0, NEVENTS);
        steps(&mig, seed, 0, cut);

        engine_stats_t before;
        engine_part_stats(mig.part, &before);
        weir_buf_t pre = WEIR_BUF_INIT; /* A's output: kept apart */
        buf_append(&pre, mig.out.data, mig.out.len);
        buf_reset(&mig.out);
        engine_migrate_stats_t st;
        reload(&mig, spec_b, &st);
        /* groups: A {"",1m} {x,5m sum+avg} {kind,1m} {x,1h/1m} {x,2m max};
         * B keeps the first four and adds {x,3m min} {"",2m}. */
        assert_int_equal(st.groups_kept, 4);
        assert_int_equal(st.groups_new, 2);
        assert_int_equal(st.groups_dropped, 1);
        assert_int_equal(st.lasts_kept, 1);
        assert_int_equal(st.lasts_new, 1);
        assert_int_equal(st.lasts_dropped, 1);
        assert_int_equal(st.aggregates_kept, 1);
        assert_int_equal(st.aggregates_new, 2);
        assert_int_equal(st.aggregates_dropped, 2);
        assert_int_equal(st.patterns_kept, 3);
        assert_int_equal(st.patterns_new, 2);
        assert_int_equal(st.patterns_dropped, 2);
        assert_int_equal(st.keys_moved + st.keys_dropped, before.keys);
        held += st.held_kept;
        deadlines += st.deadlines_kept;
        timers += st.timers_kept;
        engine_stats_t after;
        engine_part_stats(mig.part, &after);
        assert_true(after.events == before.events && after.late == before.late &&
                    after.watermark == before.watermark);

        /* B over the events after the cut only, from the same watermark. */
        engine_part_tick(fresh_b.part, after.watermark + 10000); /* + the lateness */
        steps(&mig, seed, cut, NEVENTS);
        steps(&fresh_b, seed, cut, NEVENTS);
        int nonempty = 0;
        for (size_t k = 0; k < sizeof kept_b / sizeof *kept_b; k++)
            same_lines(&mig.out, &whole_b.out, kept_b[k], 0, cut, &nonempty);
        /* each was compared on something */
        assert_int_equal(nonempty, sizeof kept_b / sizeof *kept_b);
        nonempty = 0;
        for (size_t k = 0; k < sizeof new_b / sizeof *new_b; k++)
            same_lines(&mig.out, &fresh_b.out, new_b[k], 0, 0, &nonempty);
        assert_int_equal(nonempty, sizeof new_b / sizeof *new_b);
        /* The new ones did start empty: over the whole stream B differs. */
        weir_buf_t x = WEIR_BUF_INIT, y = WEIR_BUF_INIT;
        lines_of(&mig.out, "F:new_n2m", 0, &x);
        lines_of(&whole_b.out, "F:new_n2m", cut, &y);
        assert_false(x.len == y.len && !memcmp(x.data, y.data, x.len));
        /* What B removed is gone; A had it up to the cut. */
        lines_of(&pre, "A:gone_hop", 0, &y);
        assert_true(y.len > 0);
        lines_of(&mig.out, "A:gone_hop", 0, &x);
        assert_int_equal(x.len, 0);
        lines_of(&mig.out, "F:gone_max", 0, &x);
        assert_int_equal(x.len, 0);
        buf_free(&x);
        buf_free(&y);
        buf_free(&pre);
        run_close(&whole_b);
        run_close(&mig);
        run_close(&fresh_b);
    }
    /* The cuts met events held for time order, trailing-not deadlines and
     * open on-close windows: they were moved, not just absent. */
    print_message("moved: %llu held events, %llu deadlines, %llu timers\n",
                  (unsigned long long)held, (unsigned long long)deadlines,
                  (unsigned long long)timers);
    assert_true(held > 0 && deadlines > 0 && timers > 0);
}

/* Reloading the very same spec keeps everything: the output is the
 * unbroken run's, and so is the checkpoint image at the end. */
static void same_spec_loses_nothing(void **state)
{
    (void)state;
    for (uint64_t seed = 11; seed <= 14; seed++) {
        int cut = 300 + (int)((seed * 1733) % (NEVENTS - 600));
        run_t whole, mig;
        run_open(&whole, spec_a);
        run_open(&mig, spec_a);
        steps(&whole, seed, 0, NEVENTS);
        steps(&mig, seed, 0, cut);
        engine_migrate_stats_t st;
        reload(&mig, spec_a, &st);
        assert_int_equal(st.groups_new + st.lasts_new + st.aggregates_new + st.patterns_new, 0);
        assert_int_equal(st.held_dropped + st.deadlines_dropped, 0);
        steps(&mig, seed, cut, NEVENTS);
        assert_int_equal(mig.out.len, whole.out.len);
        assert_memory_equal(mig.out.data, whole.out.data, whole.out.len);
        /* A tick sweeps stale keys from both tables (a sweep's progress is
         * not state), then the images must be equal byte for byte. */
        int64_t end = time_of(seed, NEVENTS - 1) + 1;
        engine_part_tick(whole.part, end);
        engine_part_tick(mig.part, end);
        weir_buf_t a = WEIR_BUF_INIT, b = WEIR_BUF_INIT;
        assert_int_equal(engine_part_encode(whole.part, &a, NULL, NULL), 0);
        assert_int_equal(engine_part_encode(mig.part, &b, NULL, NULL), 0);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        buf_free(&a);
        buf_free(&b);
        run_close(&whole);
        run_close(&mig);
    }
}

/* From a spec without patterns or on-close aggregates to one with them,
 * and back: the new parts work from the reload on. */
static void patterns_appear_and_disappear(void **state)
{
    (void)state;
    static const char plain[] = SOURCE "features:\n  n_1m: count() over 1m\n";
    run_t r;
    run_open(&r, plain);
    steps(&r, 21, 0, 2000);
    engine_migrate_stats_t st;
    reload(&r, spec_b, &st);
    assert_int_equal(st.patterns_new, 5);
    assert_int_equal(st.groups_kept, 1);
    buf_reset(&r.out);
    steps(&r, 21, 2000, 3990); /* not up to the tick at 3999 */
    weir_buf_t x = WEIR_BUF_INIT;
    lines_of(&r.out, "P:rise", 0, &x);
    assert_true(x.len > 0);
    lines_of(&r.out, "A:tumble", 0, &x);
    assert_true(x.len > 0);
    engine_stats_t ps;
    engine_part_stats(r.part, &ps);
    assert_true(ps.held > 0 && ps.partial > 0);
    /* ... and back, with held events, runs and timers to drop; one key's
     * event 5 hours on makes the others stale: they are not moved. */
    char err2[256];
    engine_result_t res;
    expr_value_t f[5] = {expr_string("key0", 4), expr_string("z", 1), expr_null(), expr_int(0),
                         expr_time(time_of(21, 3989) + 5 * 3600 * 1000)};
    assert_int_equal(
        engine_part_event(r.part, 3990, f, (weir_slice_t){"{}", 2}, &res, err2, sizeof err2), 0);
    engine_part_stats(r.part, &ps);
    reload(&r, plain, &st);
    assert_int_equal(st.keys_moved, 1);
    assert_int_equal(st.keys_dropped, ps.keys - 1);
    assert_true(st.keys_dropped > 0);
    assert_int_equal(st.patterns_dropped, 5);
    assert_int_equal(st.aggregates_dropped, 3);
    assert_int_equal(st.groups_kept, 1);
    assert_true(st.held_dropped > 0);
    buf_reset(&r.out);
    steps(&r, 21, 3991, 4500); /* late now, still scored */
    lines_of(&r.out, "F:n_1m", 0, &x);
    assert_true(x.len > 0);
    buf_free(&x);
    run_close(&r);
}

/* What defines the log and its partitioning cannot change live. */
static void check_refuses_what_needs_a_restart(void **state)
{
    (void)state;
    static const struct {
        const char *source, *says;
    } cases[] = {
        {"pipeline: t\nsources:\n  s:\n    key: k\n    time: ts\n    lateness: 20s\n"
         "    fields: {k: string, kind: string, x: float, v: int, ts: time}\n",
         "lateness changed"},
        {"pipeline: t\nsources:\n  s:\n    key: k\n    time: ts\n    lateness: 10s\n"
         "    fields: {k: string, kind: string, x: int, v: int, ts: time}\n",
         "field x changed type from float to int"},
        {"pipeline: t\nsources:\n  s:\n    key: kind\n    time: ts\n    lateness: 10s\n"
         "    fields: {k: string, kind: string, x: float, v: int, ts: time}\n",
         "the key changed from k to kind"},
        {"pipeline: t\nsources:\n  s:\n    key: k\n    time: ts\n    lateness: 10s\n"
         "    fields: {k: string, kind: string, x: float, v: int, w: int, ts: time}\n",
         "number of fields changed"},
        {"pipeline: t\nsources:\n  s:\n    key: k\n    time: ts\n    lateness: 10s\n"
         "    fields: {k: string, kind: string, v: int, x: float, ts: time}\n",
         "field 3 changed from x to v"},
        {"pipeline: t\nsources:\n  other:\n    key: k\n    time: ts\n    lateness: 10s\n"
         "    fields: {k: string, kind: string, x: float, v: int, ts: time}\n",
         "source's name changed"},
        {"pipeline: t\npartitions: 2\nsources:\n  s:\n    key: k\n    time: ts\n    lateness: 10s\n"
         "    fields: {k: string, kind: string, x: float, v: int, ts: time}\n",
         "partitions changed"},
    };
    spec_t *sa;
    engine_t *ea;
    char err[512];
    static const char plain[] = SOURCE "features:\n  n_1m: count() over 1m\n";
    load(plain, &sa, &ea);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char text[1024];
        snprintf(text, sizeof text, "%sfeatures:\n  n_1m: count() over 1m\n", cases[c].source);
        spec_t *sb;
        engine_t *eb;
        load(text, &sb, &eb);
        char why[512] = "";
        assert_int_not_equal(engine_migrate_check(ea, eb, why, sizeof why), 0);
        if (!strstr(why, cases[c].says) || !strstr(why, "needs a restart"))
            fail_msg("case %zu: \"%s\" does not say \"%s\" and restart", c, why, cases[c].says);
        engine_free(eb);
        spec_free(sb);
    }
    /* Everything else may change: features, aggregates, patterns, rules. */
    spec_t *sb;
    engine_t *eb;
    load(spec_b, &sb, &eb);
    assert_int_equal(engine_migrate_check(ea, eb, err, sizeof err), 0);
    engine_free(eb);
    spec_free(sb);
    engine_free(ea);
    spec_free(sa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unchanged_state_moves_and_new_state_starts_empty),
        cmocka_unit_test(same_spec_loses_nothing),
        cmocka_unit_test(patterns_appear_and_disappear),
        cmocka_unit_test(check_refuses_what_needs_a_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
