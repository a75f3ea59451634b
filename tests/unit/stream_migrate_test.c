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

#define A_AGGREGATES                                                                               \
    "aggregates:\n"                                                                                \
    "  tumble:\n"                                                                                  \
    "    window: tumbling 1m\n"                                                                    \
    "    select: {n: count(), total: sum(x)}\n"                                                    \
    "  sess:\n"                                                                                    \
    "    window: session gap 30s\n"                                                                \
    "    select: {n: count(), last_x: last(x)}\n"                                                  \
    "  gone_hop:\n"                                                                                \
    "    window: hopping 2m every 1m\n"                                                            \
    "    select: {n: count()}\n"

/* A's patterns; gone has a strict step: A holds every event for time
 * order, B does not. */
#define A_PATTERNS                                                                                 \
    "patterns:\n" RISE_STEPS "    emit: {av: a.v}\n" STOP "  gone:\n"                              \
    "    sequence:\n"                                                                              \
    "      - c: kind == \"c\"\n"                                                                   \
    "      - d:\n"                                                                                 \
    "          when: kind == \"d\"\n"                                                              \
    "          contiguity: strict\n"                                                               \
    "    within: 1m\n" ARRIVE "  chg:\n"                                                           \
    "    sequence:\n"                                                                              \
    "      - b: kind == \"b\"\n"                                                                   \
    "      - c: kind == \"c\"\n"                                                                   \
    "    within: 1m\n"                                                                             \
    "    emit: {bv: b.v}\n"

static const char spec_a[] =
    SOURCE KEPT_FEATURES "  gone_max: max(x) over 2m\n"
                         "  gone_prev: last(kind)\n"
                         "  m_rise: matches(rise) over 10m\n"
                         "  m_gone: matches(gone) over 10m\n" A_AGGREGATES A_PATTERNS;

/* A in another order: the same state, laid out otherwise (window groups
 * and last(x) slots in the order features name them; aggregates). */
static const char spec_a_shuffled[] = SOURCE "features:\n"
                                             "  gone_prev: last(kind)\n"
                                             "  m_gone: matches(gone) over 10m\n"
                                             "  avg_h: avg(x) over 1h every 1m\n"
                                             "  gone_max: max(x) over 2m\n"
                                             "  d_1m: distinct(kind) over 1m\n"
                                             "  prev_x: last(x)\n"
                                             "  avg_5m: avg(x) over 5m\n"
                                             "  n_1m: count() over 1m\n"
                                             "  m_rise: matches(rise) over 10m\n"
                                             "  sum_5m: sum(x) over 5m\n"
                                             "aggregates:\n"
                                             "  gone_hop:\n"
                                             "    window: hopping 2m every 1m\n"
                                             "    select: {n: count()}\n"
                                             "  sess:\n"
                                             "    window: session gap 30s\n"
                                             "    select: {n: count(), last_x: last(x)}\n"
                                             "  tumble:\n"
                                             "    window: tumbling 1m\n"
                                             "    select: {n: count(), total: sum(x)}\n" A_PATTERNS;

/* B's patterns: rise with another emit (its runs are kept), stop and
 * arrive unchanged, fresh new, chg changed (within), gone removed. */
#define B_PATTERNS                                                                                 \
    "patterns:\n" RISE_STEPS "    emit: {av2: a.v * 2}\n" STOP ARRIVE "  fresh:\n"                 \
    "    sequence:\n"                                                                              \
    "      - b: kind == \"b\"\n"                                                                   \
    "      - a: kind == \"a\" and v < b.v\n"                                                       \
    "    within: 1m\n"                                                                             \
    "    emit: {bv: b.v}\n"                                                                        \
    "  chg:\n"                                                                                     \
    "    sequence:\n"                                                                              \
    "      - b: kind == \"b\"\n"                                                                   \
    "      - c: kind == \"c\"\n"                                                                   \
    "    within: 90s\n"                                                                            \
    "    emit: {bv: b.v}\n"

/* The same TTL as A (longest window 1h, longest within 2m), so that keys
 * live equally long under both. */
static const char spec_b[] = SOURCE KEPT_FEATURES "  new_min: min(x) over 3m\n"
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
                                                  "    select: {n: count()}\n" B_PATTERNS;

/* A with B's patterns: the same windows, last(x) slots and aggregates, so
 * the key layout does not change and the table moves in place. */
static const char spec_a2[] =
    SOURCE KEPT_FEATURES "  gone_max: max(x) over 2m\n"
                         "  gone_prev: last(kind)\n"
                         "  m_rise: matches(rise) over 10m\n"
                         "  m_fresh: matches(fresh) over 10m\n" A_AGGREGATES B_PATTERNS;

/* What of B exists unchanged in A (compared with B over the whole stream)
 * and what is new or changed (compared with B over the events after the
 * cut). Features are "F:name", pattern.NAME flags "G:name", on-close
 * outputs "A:name", pattern matches "P:name", late events "L". combo is
 * a new feature, but made of kept aggregates only: it is exact at once. */
static const char *const kept_b[] = {
    "F:n_1m", "F:sum_5m", "F:avg_5m", "F:d_1m",   "F:prev_x", "F:avg_h", "F:m_rise", "F:combo",
    "G:rise", "G:stop",   "G:arrive", "A:tumble", "P:rise",   "P:stop",  "P:arrive", "L"};
static const char *const new_b[] = {"F:new_n2m", "F:new_min", "F:new_prev", "F:m_fresh", "G:fresh",
                                    "G:chg",     "A:sess",    "A:new_tumb", "P:fresh",   "P:chg"};
/* A to A2: only patterns change. */
static const char *const kept_a2[] = {
    "F:n_1m",      "F:sum_5m", "F:avg_5m", "F:d_1m",   "F:prev_x", "F:avg_h",  "F:gone_max",
    "F:gone_prev", "F:m_rise", "G:rise",   "G:stop",   "G:arrive", "A:tumble", "A:sess",
    "A:gone_hop",  "P:rise",   "P:stop",   "P:arrive", "L"};
static const char *const new_a2[] = {"F:m_fresh", "G:fresh", "G:chg", "P:fresh", "P:chg"};

#define NEVENTS 6000
#define NKEYS   25

typedef struct run {
    spec_t *spec;
    engine_t *eng;
    engine_part_t *part;
    int at;         /* the record being processed: tags output lines */
    weir_buf_t out; /* "tag name payload\n" per output */
    weir_buf_t wins; /* "name start partial reach\n" per aggregate window (PARTIAL WINDOWS) */
} run_t;

static void put_value(weir_buf_t *b, const expr_value_t *v)
{
    if (v->type == EXPR_STRING)
        buf_appendf(b, " s:%.*s", (int)v->as.s.len, v->as.s.ptr);
    else
        buf_appendf(b, " %d:%llx", v->type, (unsigned long long)v->as.i);
}

static void on_window(void *ctx, uint32_t part, const spec_aggregate_t *agg, weir_slice_t key,
                      int64_t start, int64_t end, int partial, const expr_value_t *vals)
{
    (void)part;
    run_t *r = ctx;
    const spec_pattern_t *p = spec_pattern_of(r->spec, agg);
    buf_appendf(&r->out, "%d %s:%s %.*s %lld %lld", r->at, p ? "P" : "A", agg->name, (int)key.len,
                key.ptr, (long long)start, (long long)end);
    /* (partial apart: a fresh partition never marks one, the moved one may) */
    if (!p)
        buf_appendf(&r->wins, "A:%s %lld %d %lld\n", agg->name, (long long)start, partial,
                    (long long)(agg->window == SPEC_WINDOW_SESSION ? agg->gap_ms : 1));
    else
        assert_int_equal(partial, 0);
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
    return (engine_sink_t){on_window, on_late, r, NULL};
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
    buf_free(&r->wins);
}

/* PARTIAL WINDOWS (engine.c): after a reload whose partition had applied
 * events up to `since`, a window of an added aggregate is marked partial
 * exactly when it may lack them (its start at or before since; a session's
 * less than its gap after), and no window of a kept aggregate is; a
 * partition that saw every event marks none. Returns the partial count. */
static int check_partials(const weir_buf_t *wins, const char *const *added, size_t nadded,
                          int64_t since)
{
    int partials = 0;
    const char *p = wins->data, *end = wins->data + wins->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        char name[64];
        long long start, reach;
        int partial, is_added = 0;
        assert_int_equal(sscanf(p, "%63s %lld %d %lld", name, &start, &partial, &reach), 4);
        for (size_t k = 0; k < nadded; k++)
            is_added |= !strcmp(added[k], name);
        int want = since != INT64_MIN && is_added && start < since + reach;
        if (partial != want)
            fail_msg("%s window at %lld: partial %d, want %d", name, start, partial, want);
        partials += partial;
        p = eol + 1;
    }
    return partials;
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

/* A reload from spec `from` to spec `to`: what of `to` is kept (to be
 * compared with `to` over the whole stream) and what is added or changed
 * (compared with `to` over the events after the cut); added[0] must have
 * had something to lose. */
typedef struct reload_case {
    const char *from, *to;
    const char *const *kept, *const *added;
    size_t nkept, nadded;
} reload_case_t;

/* The property of the file's header over six cuts. *last gets the last
 * reload's counts; moved[] the held events, deadlines and timers moved. */
static void check_reload(const reload_case_t *c, engine_migrate_stats_t *last, uint64_t moved[3])
{
    memset(moved, 0, 3 * sizeof *moved);
    int total_partials = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int cut = 500 + (int)((seed * 977) % (NEVENTS - 1000));
        run_t whole, mig, fresh;
        run_open(&whole, c->to);
        run_open(&mig, c->from);
        run_open(&fresh, c->to);
        steps(&whole, seed, 0, NEVENTS);
        steps(&mig, seed, 0, cut);

        engine_stats_t before, after;
        engine_part_stats(mig.part, &before);
        weir_buf_t pre = WEIR_BUF_INIT; /* the output before the reload: kept apart */
        buf_append(&pre, mig.out.data, mig.out.len);
        buf_reset(&mig.out);
        assert_int_equal(check_partials(&mig.wins, c->added, c->nadded, INT64_MIN), 0);
        buf_reset(&mig.wins);
        reload(&mig, c->to, last);
        assert_int_equal(last->keys_moved + last->keys_dropped, before.keys);
        moved[0] += last->held_kept;
        moved[1] += last->deadlines_kept;
        moved[2] += last->timers_kept;
        engine_part_stats(mig.part, &after);
        assert_true(after.events == before.events && after.late == before.late &&
                    after.watermark == before.watermark);

        /* The reloaded state through a checkpoint's bytes: it marks the same
         * windows partial (the marks are state). */
        run_t restored;
        run_open(&restored, c->to);
        weir_buf_t ck = WEIR_BUF_INIT;
        char err[512];
        assert_int_equal(engine_part_encode(mig.part, &ck, NULL, NULL), 0);
        if (engine_part_decode(restored.part, ck.data, ck.len, err, sizeof err) != 0)
            fail_msg("decode: %s", err);
        buf_free(&ck);
        steps(&restored, seed, cut, NEVENTS);

        /* `to` over the events after the cut only, from the same watermark. */
        engine_part_tick(fresh.part, after.watermark + 10000); /* + the lateness */
        steps(&mig, seed, cut, NEVENTS);
        steps(&fresh, seed, cut, NEVENTS);
        assert_int_equal(restored.wins.len, mig.wins.len);
        assert_memory_equal(restored.wins.data, mig.wins.data, mig.wins.len);
        run_close(&restored);
        /* the newest time applied before the reload: watermark + lateness */
        int partials = check_partials(&mig.wins, c->added, c->nadded, after.watermark + 10000);
        total_partials += partials;
        assert_int_equal(check_partials(&fresh.wins, c->added, c->nadded, INT64_MIN), 0);
        assert_int_equal(check_partials(&whole.wins, c->added, c->nadded, INT64_MIN), 0);
        int nonempty = 0; /* each is compared on something */
        for (size_t k = 0; k < c->nkept; k++)
            same_lines(&mig.out, &whole.out, c->kept[k], 0, cut, &nonempty);
        assert_int_equal(nonempty, c->nkept);
        nonempty = 0;
        for (size_t k = 0; k < c->nadded; k++)
            same_lines(&mig.out, &fresh.out, c->added[k], 0, 0, &nonempty);
        assert_int_equal(nonempty, c->nadded);
        /* The added state did start empty: over the whole stream it differs. */
        weir_buf_t x = WEIR_BUF_INIT, y = WEIR_BUF_INIT;
        lines_of(&mig.out, c->added[0], 0, &x);
        lines_of(&whole.out, c->added[0], cut, &y);
        assert_false(x.len == y.len && !memcmp(x.data, y.data, x.len));
        /* What the reload removed is gone; it was there up to the cut. */
        lines_of(&pre, "F:m_gone", 0, &y);
        assert_true(y.len > 0);
        lines_of(&mig.out, "F:m_gone", 0, &x);
        assert_int_equal(x.len, 0);
        buf_free(&x);
        buf_free(&y);
        buf_free(&pre);
        run_close(&whole);
        run_close(&mig);
        run_close(&fresh);
    }
    /* The cuts met events held for time order, trailing-not deadlines and
     * open on-close windows: they were moved, not just absent. */
    print_message("moved: %llu held events, %llu deadlines, %llu timers; %d partial windows\n",
                  (unsigned long long)moved[0], (unsigned long long)moved[1],
                  (unsigned long long)moved[2], total_partials);
    assert_true(moved[0] > 0 && moved[1] > 0);
}

#define N(a) (sizeof(a) / sizeof *(a))

static void unchanged_state_moves_and_new_state_starts_empty(void **state)
{
    (void)state;
    reload_case_t c = {spec_a, spec_b, kept_b, new_b, N(kept_b), N(new_b)};
    engine_migrate_stats_t st;
    uint64_t moved[3];
    check_reload(&c, &st, moved);
    assert_true(moved[2] > 0);
    assert_false(st.in_place);
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
}

/* Only patterns change: the key table moves as it is. */
static void patterns_change_in_place(void **state)
{
    (void)state;
    reload_case_t c = {spec_a, spec_a2, kept_a2, new_a2, N(kept_a2), N(new_a2)};
    engine_migrate_stats_t st;
    uint64_t moved[3];
    check_reload(&c, &st, moved);
    assert_true(st.in_place);
    assert_int_equal(st.groups_kept + st.lasts_kept + st.aggregates_kept, 5 + 2 + 3);
    assert_int_equal(st.groups_new + st.lasts_new + st.aggregates_new, 0);
    assert_int_equal(st.patterns_kept, 3);
    assert_int_equal(st.patterns_new, 2);
    assert_int_equal(st.patterns_dropped, 2);
}

/* Reloading the same spec keeps everything: the output after the reload
 * is the unbroken run's, and so is the checkpoint image at the end. With
 * the same text the table moves in place; in another order (the same
 * state in another key layout) key by key. */
static void same_state_loses_nothing(const char *to, int in_place)
{
    for (uint64_t seed = 11; seed <= 14; seed++) {
        int cut = 300 + (int)((seed * 1733) % (NEVENTS - 600));
        run_t whole, mig;
        run_open(&whole, to);
        run_open(&mig, spec_a);
        steps(&whole, seed, 0, NEVENTS);
        steps(&mig, seed, 0, cut);
        buf_reset(&mig.out);
        engine_migrate_stats_t st;
        reload(&mig, to, &st);
        assert_int_equal(st.in_place, in_place);
        assert_int_equal(st.groups_new + st.lasts_new + st.aggregates_new + st.patterns_new, 0);
        assert_int_equal(st.held_dropped + st.deadlines_dropped, 0);
        steps(&mig, seed, cut, NEVENTS);
        const char *p = whole.out.data;
        while (atoi(p) < cut)
            p = strchr(p, '\n') + 1; /* whole's output from the cut */
        assert_int_equal(mig.out.len, whole.out.len - (size_t)(p - whole.out.data));
        assert_memory_equal(mig.out.data, p, mig.out.len);
        /* A tick sweeps stale keys from both tables (a sweep's progress is
         * not state), then the images must be equal byte for byte — in
         * another layout except for the on-close timer heap, whose array
         * order depends on the aggregates' indexes when each timer was
         * pushed (it pops in the same order). A tick far on drains it: the
         * last windows and matches come out equal, then the images are. */
        int64_t end = time_of(seed, NEVENTS - 1) + 1;
        for (int round = 0; round < 2; round++) {
            whole.at = mig.at = NEVENTS + round;
            buf_reset(&whole.out);
            buf_reset(&mig.out);
            engine_part_tick(whole.part, end);
            engine_part_tick(mig.part, end);
            assert_int_equal(mig.out.len, whole.out.len);
            assert_memory_equal(mig.out.data, whole.out.data, mig.out.len);
            weir_buf_t a = WEIR_BUF_INIT, b = WEIR_BUF_INIT;
            assert_int_equal(engine_part_encode(whole.part, &a, NULL, NULL), 0);
            assert_int_equal(engine_part_encode(mig.part, &b, NULL, NULL), 0);
            if (in_place || round == 1) {
                assert_int_equal(a.len, b.len);
                assert_memory_equal(a.data, b.data, a.len);
            }
            buf_free(&a);
            buf_free(&b);
            end += 10 * 3600 * 1000;
        }
        run_close(&whole);
        run_close(&mig);
    }
}

static void same_spec_loses_nothing(void **state)
{
    (void)state;
    same_state_loses_nothing(spec_a, 1);
}

static void same_state_in_another_layout_loses_nothing(void **state)
{
    (void)state;
    same_state_loses_nothing(spec_a_shuffled, 0);
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

/* A key whose state the old TTL has ended stays ended under a new spec
 * with a longer TTL (here a longer `within`), whether or not the old
 * spec's sweep had reached it: results never depend on the sweep. */
static void a_longer_ttl_revives_nothing(void **state)
{
    (void)state;
#define TTL_SPEC(within)                                                                           \
    SOURCE "features:\n"                                                                           \
           "  prev_x: last(x)\n"                                                                   \
           "  n_1m: count() over 1m\n"                                                             \
           "patterns:\n"                                                                           \
           "  p:\n"                                                                                \
           "    sequence:\n"                                                                       \
           "      - a: kind == \"a\"\n"                                                            \
           "      - b: kind == \"b\"\n"                                                            \
           "    within: " within "\n"
    run_t r;
    run_open(&r, TTL_SPEC("1m"));
    char key[16], err[256];
    engine_result_t res;
    /* Many keys, so that the sweep (two slots per event) reaches few. */
    for (int i = 0; i <= 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        int64_t t = i == 5000 ? 10 * 60 * 1000 : 1000; /* the last: 10 minutes on */
        expr_value_t f[5] = {expr_string(key, strlen(key)), expr_string("z", 1), expr_float(5),
                             expr_int(0), expr_time(t)};
        assert_int_equal(engine_part_event(r.part, (uint64_t)i, f, (weir_slice_t){"{}", 2}, &res,
                                           err, sizeof err),
                         0);
    }
    engine_migrate_stats_t st;
    reload(&r, TTL_SPEC("2h"), &st); /* TTL 2m10s -> 2h1m10s, the same key layout */
    assert_true(st.in_place);
    assert_int_equal(st.keys_moved, 1);
    assert_int_equal(st.keys_dropped, 5000);
    expr_value_t f[5] = {expr_string("k7", 2), expr_string("z", 1), expr_float(6), expr_int(0),
                         expr_time(10 * 60 * 1000 + 1)};
    assert_int_equal(
        engine_part_event(r.part, 5001, f, (weir_slice_t){"{}", 2}, &res, err, sizeof err), 0);
    assert_int_equal(res.features[0].type, EXPR_NULL); /* k7's last(x) was forgotten */
    run_close(&r);
#undef TTL_SPEC
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
        cmocka_unit_test(patterns_change_in_place),
        cmocka_unit_test(same_spec_loses_nothing),
        cmocka_unit_test(same_state_in_another_layout_loses_nothing),
        cmocka_unit_test(patterns_appear_and_disappear),
        cmocka_unit_test(a_longer_ttl_revives_nothing),
        cmocka_unit_test(check_refuses_what_needs_a_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
