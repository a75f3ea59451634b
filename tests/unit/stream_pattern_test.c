/* stream_pattern_test.c — patterns (stream/pattern.h) on hand-worked cases,
 * through the engine: time order out of order, arrival order and the
 * pattern.NAME flag, strict vs relaxed contiguity, times / one_or_more /
 * optional, a not step in the middle (blocking, and a loop unblocking it),
 * a trailing not confirmed by a tick and killed up to its deadline,
 * within, matches() counts, state counted and released with the TTL; and
 * the checkpoint encoding of a key's and a partition's pattern state
 * (round trip: the restored state finds the same matches; corrupt bytes
 * are refused), also through the engine's own checkpoint encoding
 * (engine_state.h); overlapping runs sharing their events (linear state,
 * the same after a checkpoint round trip). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "spec/spec.h"
#include "stream/engine.h"
#include "stream/engine_state.h"
#include "stream/pattern.h"

#define S 1000
#define M (60 * S)

static const char head[] = "pipeline: t\n"
                           "sources:\n"
                           "  s:\n"
                           "    key: k\n"
                           "    time: ts\n"
                           "    lateness: 10s\n"
                           "    fields: {k: string, kind: string, v: int, ts: time}\n";

typedef struct match {
    char pattern[16], key[8], events[64];
    int64_t start, time, wm;
    size_t lowered; /* emit fields that are equal lower-case strings: their length */
} match_t;

typedef struct fixture {
    spec_t *spec;
    engine_t *eng;
    engine_part_t *part;
    match_t out[1024];
    int nout;
    uint64_t offset;
} fixture_t;

static void on_window(void *ctx, uint32_t part, const spec_aggregate_t *agg, weir_slice_t key,
                      int64_t start, int64_t end, int partial, const expr_value_t *vals)
{
    (void)part;
    assert_int_equal(partial, 0); /* no reload here: every window saw every event */
    fixture_t *f = ctx;
    const spec_pattern_t *p = spec_pattern_of(f->spec, agg);
    assert_non_null(p);
    assert_true(f->nout < 1024);
    match_t *m = &f->out[f->nout++];
    snprintf(m->pattern, sizeof m->pattern, "%s", p->name);
    snprintf(m->key, sizeof m->key, "%.*s", (int)key.len, key.ptr);
    const expr_value_t *evs = &vals[p->out.nselect];
    snprintf(m->events, sizeof m->events, "%.*s", (int)evs->as.s.len, evs->as.s.ptr);
    m->start = start;
    m->time = end;
    m->wm = vals[p->out.nselect + 1].as.i;
    if (p->out.nselect == 2 && vals[0].type == EXPR_STRING && vals[1].type == EXPR_STRING &&
        vals[0].as.s.len == vals[1].as.s.len &&
        !memcmp(vals[0].as.s.ptr, vals[1].as.s.ptr, vals[0].as.s.len)) {
        m->lowered = vals[0].as.s.len;
        for (size_t i = 0; i < vals[0].as.s.len; i++)
            if (vals[0].as.s.ptr[i] != 'x') m->lowered = 0;
    }
}

/* The spec of head + body. */
static spec_t *load_spec(const char *body)
{
    char text[4096], err[512];
    snprintf(text, sizeof text, "%s%s", head, body);
    spec_t *spec;
    if (spec_load_string(text, strlen(text), "t.yaml", &spec, err, sizeof err) != 0)
        fail_msg("spec: %s", err);
    return spec;
}

static fixture_t *open_spec(const char *body)
{
    static fixture_t f;
    memset(&f, 0, sizeof f);
    char err[512];
    f.spec = load_spec(body);
    if (engine_new(f.spec, &f.eng, err, sizeof err) != 0) fail_msg("engine: %s", err);
    engine_sink_t sink = {on_window, NULL, &f, NULL};
    f.part = engine_part_new(f.eng, 0, &sink);
    return &f;
}

static void close_spec(fixture_t *f)
{
    engine_part_free(f->part);
    engine_free(f->eng);
    spec_free(f->spec);
}

static engine_result_t ev(fixture_t *f, const char *k, const char *kind, int64_t v, int64_t ts)
{
    expr_value_t fields[4] = {expr_string(k, strlen(k)), expr_string(kind, strlen(kind)),
                              expr_int(v), expr_time(ts)};
    engine_result_t res;
    char err[256];
    assert_int_equal(engine_part_event(f->part, f->offset++, fields, (weir_slice_t){"{}", 2}, &res,
                                       err, sizeof err),
                     0);
    return res;
}

static void tick(fixture_t *f, int64_t t)
{
    engine_part_tick(f->part, t);
    f->offset++;
}

/* kind a then kind b with b.v > a.v, within 1m, emitting a.v. */
#define RISE(order)                                                                                \
    "patterns:\n"                                                                                  \
    "  rise:\n"                                                                                    \
    "    sequence:\n"                                                                              \
    "      - a: kind == \"a\"\n"                                                                   \
    "      - b: kind == \"b\" and v > a.v\n"                                                       \
    "    within: 1m\n"                                                                             \
    "    order: " order "\n"                                                                       \
    "    emit: {av: a.v}\n"

static void time_order_sorts_events_within_the_lateness(void **state)
{
    (void)state;
    fixture_t *f = open_spec(RISE("time"));
    ev(f, "k", "b", 5, 105 * S);  /* offset 0: arrives first, happens second */
    ev(f, "k", "a", 1, 100 * S);  /* offset 1 */
    assert_int_equal(f->nout, 0); /* held: W = 95 s */
    ev(f, "x", "z", 0, 114 * S);  /* W = 104 s: releases a (100 s) only */
    assert_int_equal(f->nout, 0);
    ev(f, "x", "z", 0, 115 * S); /* W = 105 s: b is released and completes */
    assert_int_equal(f->nout, 1);
    assert_string_equal(f->out[0].events, "[1,0]");
    assert_int_equal(f->out[0].start, 100 * S);
    assert_int_equal(f->out[0].time, 105 * S);
    assert_int_equal(f->out[0].wm, 105 * S);
    close_spec(f);
}

static void arrival_order_decides_the_completing_event(void **state)
{
    (void)state;
    fixture_t *f = open_spec(RISE("arrival") "    then: block\n"
                                             "decisions:\n"
                                             "  - then: allow\n");
    assert_string_equal(f->spec->decisions[0].then, "block"); /* the pattern's rule comes first */
    uint32_t flag = f->spec->nfeatures;
    engine_result_t r = ev(f, "k", "b", 5, 105 * S); /* before its a in arrival order: no match */
    assert_false(r.features[flag].as.b);
    r = ev(f, "k", "a", 1, 100 * S);
    assert_false(r.features[flag].as.b);
    r = ev(f, "k", "b", 0, 101 * S); /* v not above a.v */
    assert_false(r.features[flag].as.b);
    r = ev(f, "k", "b", 2, 102 * S);
    assert_true(r.features[flag].as.b);
    assert_int_equal(f->nout, 1);
    assert_string_equal(f->out[0].events, "[1,3]");
    r = ev(f, "k", "b", 3, 103 * S); /* the run is used up */
    assert_false(r.features[flag].as.b);
    close_spec(f);
}

static void strict_needs_the_very_next_event(void **state)
{
    (void)state;
    fixture_t *f = open_spec("patterns:\n"
                             "  pair:\n"
                             "    sequence:\n"
                             "      - a: kind == \"a\"\n"
                             "      - b:\n"
                             "          when: kind == \"b\"\n"
                             "          contiguity: strict\n"
                             "    within: 1m\n"
                             "    order: arrival\n"
                             "    emit: {av: a.v}\n");
    ev(f, "k", "a", 1, 1 * S); /* 0 */
    ev(f, "k", "x", 1, 2 * S); /* 1: interrupts */
    ev(f, "k", "b", 1, 3 * S); /* 2: not next */
    assert_int_equal(f->nout, 0);
    ev(f, "j", "a", 1, 4 * S); /* 3: another key does not interrupt k */
    ev(f, "k", "a", 1, 5 * S); /* 4 */
    ev(f, "j", "b", 1, 6 * S); /* 5: completes j's */
    ev(f, "k", "b", 1, 7 * S); /* 6 */
    assert_int_equal(f->nout, 2);
    assert_string_equal(f->out[0].events, "[3,5]");
    assert_string_equal(f->out[1].events, "[4,6]");
    close_spec(f);
}

static void quantifiers_and_optional_steps(void **state)
{
    (void)state;
    fixture_t *f = open_spec("patterns:\n"
                             "  q:\n"
                             "    sequence:\n"
                             "      - a: kind == \"a\"\n"
                             "      - b:\n"
                             "          when: kind == \"b\"\n"
                             "          times: 2\n"
                             "      - c:\n"
                             "          when: kind == \"c\"\n"
                             "          optional: true\n"
                             "      - d:\n"
                             "          when: kind == \"d\" and (is_null(d.v) or v > d.v)\n"
                             "          one_or_more: true\n"
                             "    within: 1m\n"
                             "    order: arrival\n"
                             "    emit: {cv: c.v}\n");
    ev(f, "k", "a", 0, 1 * S); /* 0 */
    ev(f, "k", "b", 0, 2 * S); /* 1 */
    ev(f, "k", "d", 5, 3 * S); /* 2: b has 1 of 2: skipped */
    ev(f, "k", "b", 0, 4 * S); /* 3 */
    ev(f, "k", "d", 5, 5 * S); /* 4: c skipped, d's first: a match at once */
    assert_int_equal(f->nout, 1);
    assert_string_equal(f->out[0].events, "[0,1,3,4]");
    ev(f, "k", "a", 0, 6 * S);  /* 5 */
    ev(f, "k", "b", 0, 7 * S);  /* 6 */
    ev(f, "k", "b", 0, 8 * S);  /* 7 */
    ev(f, "k", "c", 9, 9 * S);  /* 8: the optional step taken */
    ev(f, "k", "d", 1, 10 * S); /* 9 */
    assert_int_equal(f->nout, 2);
    assert_string_equal(f->out[1].events, "[5,6,7,8,9]");
    close_spec(f);
}

static void middle_not_blocks_until_the_loop_takes_again(void **state)
{
    (void)state;
    fixture_t *f = open_spec("patterns:\n"
                             "  m:\n"
                             "    sequence:\n"
                             "      - a:\n"
                             "          when: kind == \"a\"\n"
                             "          one_or_more: true\n"
                             "      - x:\n"
                             "          not: kind == \"x\"\n"
                             "      - b: kind == \"b\"\n"
                             "    within: 1m\n"
                             "    order: arrival\n"
                             "    emit: {av: a.v}\n");
    ev(f, "k", "a", 1, 1 * S); /* 0: run r0 */
    ev(f, "k", "x", 0, 2 * S); /* 1: blocks r0 */
    ev(f, "k", "b", 0, 3 * S); /* 2: r0 blocked: no match */
    assert_int_equal(f->nout, 0);
    ev(f, "k", "a", 2, 4 * S); /* 3: r0 takes it (unblocked), r1 starts */
    ev(f, "k", "b", 0, 5 * S); /* 4: both complete */
    assert_int_equal(f->nout, 2);
    assert_string_equal(f->out[0].events, "[0,3,4]");
    assert_string_equal(f->out[1].events, "[3,4]");
    close_spec(f);
}

#define ABANDON                                                                                    \
    "patterns:\n"                                                                                  \
    "  abandon:\n"                                                                                 \
    "    sequence:\n"                                                                              \
    "      - cart: kind == \"cart\"\n"                                                             \
    "      - none:\n"                                                                              \
    "          not: kind == \"buy\" and v == cart.v\n"                                             \
    "          gap: 10m\n"                                                                         \
    "    within: 1h\n"                                                                             \
    "    emit: {item: cart.v}\n"                                                                   \
    "features:\n"                                                                                  \
    "  n_abandoned: matches(abandon) over 1h\n"

static void trailing_not_is_confirmed_by_the_watermark(void **state)
{
    (void)state;
    fixture_t *f = open_spec(ABANDON);
    ev(f, "k", "cart", 7, 0);         /* 0: deadline 10m */
    ev(f, "j", "cart", 8, 1 * S);     /* 1: deadline 10m 1s */
    ev(f, "j", "buy", 8, 10 * M + S); /* 2: at j's deadline: kills it */
    ev(f, "k", "buy", 9, 5 * M);      /* 3: another item */
    tick(f, 10 * M + 10 * S);         /* W = 10m: not past k's deadline yet */
    assert_int_equal(f->nout, 0);
    tick(f, 10 * M + 10 * S + 1); /* W past 10m: confirmed */
    assert_int_equal(f->nout, 1);
    assert_string_equal(f->out[0].key, "k");
    assert_string_equal(f->out[0].events, "[0]");
    assert_int_equal(f->out[0].time, 10 * M);
    assert_int_equal(f->out[0].wm, 10 * M + 1);
    engine_result_t r = ev(f, "k", "z", 0, 11 * M);
    assert_int_equal(r.features[0].as.i, 1); /* matches(abandon) over 1h */
    r = ev(f, "k", "z", 0, 70 * M + 1);
    assert_int_equal(r.features[0].as.i, 0); /* the match time left the hour */
    close_spec(f);
}

static void within_bounds_the_whole_match(void **state)
{
    (void)state;
    fixture_t *f = open_spec(RISE("arrival"));
    ev(f, "k", "a", 1, 0);
    ev(f, "k", "b", 5, 1 * M + 1); /* 60.001 s after a */
    assert_int_equal(f->nout, 0);
    ev(f, "k", "a", 1, 2 * M);
    ev(f, "k", "b", 5, 3 * M); /* exactly 1 m: inside */
    assert_int_equal(f->nout, 1);
    close_spec(f);
}

static void partial_matches_are_counted_and_released(void **state)
{
    (void)state;
    fixture_t *f = open_spec(RISE("time"));
    engine_stats_t st;
    engine_part_stats(f->part, &st);
    uint64_t empty = st.state_bytes;
    char key[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ev(f, key, "a", 1, 1000 + i); /* starts a run that never completes */
    }
    tick(f, 20 * S); /* releases them all */
    engine_part_stats(f->part, &st);
    assert_int_equal(st.partial, 1000);
    assert_int_equal(st.held, 0);
    assert_true(st.state_bytes > empty + 1000 * 64);
    uint64_t full = st.state_bytes;
    tick(f, 10 * M); /* W far past every within + TTL */
    engine_part_stats(f->part, &st);
    assert_int_equal(st.partial, 0);
    assert_int_equal(st.keys, 0);
    /* What stays is tables' capacity, not the keys' runs. */
    print_message("state bytes: empty %llu, 1000 runs %llu, evicted %llu\n",
                  (unsigned long long)empty, (unsigned long long)full,
                  (unsigned long long)st.state_bytes);
    assert_true(st.state_bytes - empty < (full - empty) / 2);
    close_spec(f);
}

/* Emit fields share the scratch for lower(): when a long string makes it
 * grow, the fields evaluated before must not point into the old buffer. */
static void emit_lower_of_long_strings(void **state)
{
    (void)state;
    fixture_t *f = open_spec("patterns:\n"
                             "  shout:\n"
                             "    sequence:\n"
                             "      - a: v == 1\n"
                             "    within: 1m\n"
                             "    order: arrival\n"
                             "    emit: {l1: lower(a.kind), l2: lower(a.kind)}\n");
    static char big[5001];
    memset(big, 'X', sizeof big - 1);
    ev(f, "k", big, 1, 1 * S);
    assert_int_equal(f->nout, 1);
    assert_int_equal(f->out[0].lowered, 5000);
    close_spec(f);
}

/* ---- checkpoint encoding, on the pattern module directly ---- */

typedef struct side {
    pattern_part_t *pp;
    pattern_key_t *slots[2]; /* keys "k0" and "k1" */
    char log[4096];
} side_t;

static pattern_key_t **side_slot(void *ctx, weir_slice_t key)
{
    side_t *s = ctx;
    return &s->slots[key.ptr[1] - '0'];
}

static void side_match(void *ctx, const spec_pattern_t *p, weir_slice_t key, int64_t start,
                       int64_t time, const expr_value_t *vals)
{
    side_t *s = ctx;
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof s->log - n, "%s %.*s %lld %lld %.*s %lld|", p->name, (int)key.len,
             key.ptr, (long long)start, (long long)time, (int)vals[p->out.nselect].as.s.len,
             vals[p->out.nselect].as.s.ptr, (long long)vals[0].as.i);
}

static void side_event(side_t *s, const spec_t *spec, int k, const char *kind, int64_t v,
                       int64_t ts, uint64_t off, int64_t wm)
{
    char key[3] = {'k', (char)('0' + k), 0};
    expr_value_t fields[4] = {expr_string(key, 2), expr_string(kind, strlen(kind)), expr_int(v),
                              expr_time(ts)};
    uint8_t flags[8];
    pattern_io_t io = {side_slot, side_match, s, 0, NULL};
    pattern_watermark(s->pp, wm, &io);
    pattern_event(s->pp, &s->slots[k], (weir_slice_t){key, 2}, ts, off, fields, wm, flags, &io);
    (void)spec;
}

static void encoding_round_trips(void **state)
{
    (void)state;
    char err[512];
    spec_t *spec = load_spec("patterns:\n"
                             "  rise:\n"
                             "    sequence:\n"
                             "      - a:\n"
                             "          when: kind == \"a\"\n"
                             "          one_or_more: true\n"
                             "      - b: kind == \"b\" and v > a.v\n"
                             "      - none:\n"
                             "          not: kind == \"c\" and k == a.k\n"
                             "          gap: 20s\n"
                             "    within: 1m\n"
                             "    emit: {av: a.v}\n"
                             "features:\n  n: matches(rise) over 1h\n");
    side_t a = {.pp = pattern_part_new(spec)}, b = {.pp = pattern_part_new(spec)};
    /* A prefix that leaves runs, held events, a waiting run and match times. */
    static const struct {
        int k;
        const char *kind;
        int64_t v, ts;
    } evs[] = {{0, "a", 1, 1000},   {1, "a", 2, 1500},  {0, "a", 3, 2000},  {0, "b", 9, 12500},
               {1, "b", 1, 3000},   {1, "b", 7, 13000}, {0, "a", 4, 24000}, {1, "c", 0, 22000},
               {0, "b", 8, 30000},  {1, "a", 1, 31000}, {0, "c", 0, 40000}, {1, "b", 5, 60000},
               {0, "a", 2, 61000},  {1, "a", 1, 62000}, {0, "b", 9, 70000}, {1, "c", 0, 75000},
               {0, "x", 0, 120000}, {1, "x", 0, 121000}};
    size_t n = sizeof evs / sizeof evs[0], cut = 9;
    int64_t maxt = 0;
    for (size_t i = 0; i < cut; i++) {
        if (evs[i].ts > maxt) maxt = evs[i].ts;
        side_event(&a, spec, evs[i].k, evs[i].kind, evs[i].v, evs[i].ts, i, maxt - 10 * S);
    }
    weir_buf_t buf = WEIR_BUF_INIT;
    pattern_part_encode(a.pp, &buf);
    for (int k = 0; k < 2; k++)
        pattern_key_encode(spec, a.slots[k], &buf);
    codec_rd_t rd = {(const unsigned char *)buf.data, (const unsigned char *)buf.data + buf.len, 0};
    assert_int_equal(pattern_part_decode(b.pp, &rd, err, sizeof err), 0);
    for (int k = 0; k < 2; k++)
        assert_int_equal(pattern_key_decode(spec, &rd, &b.slots[k], err, sizeof err), 0);
    assert_true(rd.p == rd.end);
    pattern_stats_t sa, sb;
    pattern_part_stats(a.pp, &sa);
    pattern_part_stats(b.pp, &sb);
    assert_true(sa.held > 0);
    assert_int_equal(sa.held, sb.held);
    assert_int_equal(pattern_key_runs(a.slots[0]) + pattern_key_runs(a.slots[1]),
                     pattern_key_runs(b.slots[0]) + pattern_key_runs(b.slots[1]));
    /* Re-encoding the decoded state gives the same bytes. */
    weir_buf_t again = WEIR_BUF_INIT;
    pattern_part_encode(b.pp, &again);
    for (int k = 0; k < 2; k++)
        pattern_key_encode(spec, b.slots[k], &again);
    assert_int_equal(again.len, buf.len);
    assert_memory_equal(again.data, buf.data, buf.len);
    a.log[0] = '\0';
    for (size_t i = cut; i < n; i++) {
        if (evs[i].ts > maxt) maxt = evs[i].ts;
        side_event(&a, spec, evs[i].k, evs[i].kind, evs[i].v, evs[i].ts, i, maxt - 10 * S);
        side_event(&b, spec, evs[i].k, evs[i].kind, evs[i].v, evs[i].ts, i, maxt - 10 * S);
    }
    assert_true(strlen(a.log) > 0);
    assert_string_equal(a.log, b.log);
    /* Every truncation and a flipped count are refused, never a crash. */
    for (size_t len = 0; len < buf.len; len++) {
        side_t c = {.pp = pattern_part_new(spec)};
        codec_rd_t r2 = {(const unsigned char *)buf.data, (const unsigned char *)buf.data + len, 0};
        int rc = pattern_part_decode(c.pp, &r2, err, sizeof err);
        for (int k = 0; rc == 0 && k < 2; k++)
            rc = pattern_key_decode(spec, &r2, &c.slots[k], err, sizeof err);
        assert_int_not_equal(rc, 0);
        for (int k = 0; k < 2; k++)
            pattern_key_free(spec, c.slots[k]);
        pattern_part_free(c.pp);
    }
    buf_free(&again);
    buf_free(&buf);
    for (int k = 0; k < 2; k++) {
        pattern_key_free(spec, a.slots[k]);
        pattern_key_free(spec, b.slots[k]);
    }
    pattern_part_free(a.pp);
    pattern_part_free(b.pp);
    spec_free(spec);
}

/* ---- overlapping runs share the events they took (pattern_events.h, SHARED EVENTS) ---- */

#define OVERLAP_N 400

/* Key "k"'s pattern state; event i (offset i) at (i + 1) s. */
typedef struct overlap {
    pattern_key_t *slot;
    int nmatch[2]; /* grow, tri */
    char want[8 * OVERLAP_N];
} overlap_t;

static pattern_key_t **overlap_slot(void *ctx, weir_slice_t key)
{
    (void)key;
    return &((overlap_t *)ctx)->slot;
}

/* Checks each match's events: grow's run from event i took i .. the last
 * `a` and then the `b`; tri's from i took i, i + 1, i + 2. */
static void overlap_match(void *ctx, const spec_pattern_t *p, weir_slice_t key, int64_t start,
                          int64_t time, const expr_value_t *vals)
{
    (void)key;
    overlap_t *o = ctx;
    int tri = p->name[0] == 't';
    int64_t first = start / S - 1, last = time / S - 1;
    size_t n = 0;
    for (int64_t i = first; i <= last; i++)
        n += (size_t)snprintf(o->want + n, sizeof o->want - n, "%s%lld", i > first ? "," : "[",
                              (long long)i);
    snprintf(o->want + n, sizeof o->want - n, "]");
    const expr_value_t *evs = &vals[p->out.nselect];
    assert_int_equal(evs->as.s.len, strlen(o->want));
    assert_memory_equal(evs->as.s.ptr, o->want, evs->as.s.len);
    if (tri)
        assert_int_equal(last - first, 2);
    else
        assert_int_equal(last, OVERLAP_N); /* the `b` */
    o->nmatch[tri]++;
}

static void overlap_event(pattern_part_t *pp, overlap_t *o, const char *kind, uint64_t off)
{
    int64_t ts = (int64_t)(off + 1) * S;
    expr_value_t fields[4] = {expr_string("k", 1), expr_string(kind, 1), expr_int((int64_t)off),
                              expr_time(ts)};
    uint8_t flags[2];
    pattern_io_t io = {overlap_slot, overlap_match, o, 0, NULL};
    pattern_event(pp, &o->slot, (weir_slice_t){"k", 1}, ts, off, fields, ts - 10 * S, flags, &io);
}

/* Every `a` opens a run of grow that every open run extends (the state that
 * used to grow with the square of the events), and tri's runs complete as
 * the next ones take the same event (a node its maker's end must not take
 * with it). The state grows linearly; the checkpoint encoding decodes to
 * the same sharing and the runs go on to the same matches. */
static void overlapping_runs_share_their_events(void **state)
{
    (void)state;
    char err[512];
    spec_t *spec = load_spec("patterns:\n"
                             "  grow:\n"
                             "    sequence:\n"
                             "      - a:\n"
                             "          when: kind == \"a\"\n"
                             "          one_or_more: true\n"
                             "      - b: kind == \"b\"\n"
                             "    within: 1h\n"
                             "    order: arrival\n"
                             "    emit: {av: a.v}\n"
                             "  tri:\n"
                             "    sequence:\n"
                             "      - s: kind == \"a\"\n"
                             "      - x:\n"
                             "          when: kind == \"a\"\n"
                             "          times: 2\n"
                             "    within: 1h\n"
                             "    order: arrival\n"
                             "    emit: {xv: x.v}\n");
    pattern_part_t *pp = pattern_part_new(spec);
    static overlap_t a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    size_t half = 0;
    for (uint64_t i = 0; i < OVERLAP_N; i++) {
        if (i == OVERLAP_N / 2) half = pattern_key_bytes(spec, a.slot);
        overlap_event(pp, &a, "a", i);
    }
    size_t full = pattern_key_bytes(spec, a.slot);
    print_message("pattern state: %zu bytes at %d events, %zu at %d\n", half, OVERLAP_N / 2, full,
                  OVERLAP_N);
    assert_int_equal(pattern_key_runs(a.slot), OVERLAP_N + 2); /* grow's, tri's last two */
    assert_int_equal(a.nmatch[1], OVERLAP_N - 2);
    assert_true(full < half * 22 / 10); /* a list per run: about 4 times */

    weir_buf_t buf = WEIR_BUF_INIT, again = WEIR_BUF_INIT;
    pattern_key_encode(spec, a.slot, &buf);
    codec_rd_t rd = {(const unsigned char *)buf.data, (const unsigned char *)buf.data + buf.len, 0};
    assert_int_equal(pattern_key_decode(spec, &rd, &b.slot, err, sizeof err), 0);
    assert_true(rd.p == rd.end);
    /* (less by the runs array's spare capacity: decoded to fit) */
    assert_true(pattern_key_bytes(spec, b.slot) <= full);
    assert_true(pattern_key_bytes(spec, b.slot) > full * 9 / 10);
    pattern_key_encode(spec, b.slot, &again);
    assert_int_equal(again.len, buf.len);
    assert_memory_equal(again.data, buf.data, buf.len);

    pattern_part_t *pp2 = pattern_part_new(spec);
    overlap_event(pp, &a, "b", OVERLAP_N);
    overlap_event(pp2, &b, "b", OVERLAP_N);
    assert_int_equal(a.nmatch[0], OVERLAP_N);
    assert_int_equal(b.nmatch[0], OVERLAP_N);
    /* grow's runs are gone, and their events with them */
    assert_int_equal(pattern_key_runs(a.slot), 2);
    assert_int_equal(pattern_key_runs(b.slot), 2);
    assert_true(pattern_key_bytes(spec, a.slot) < full / 8);
    assert_true(pattern_key_bytes(spec, b.slot) < full / 8);
    buf_free(&buf);
    buf_free(&again);
    pattern_key_free(spec, a.slot);
    pattern_key_free(spec, b.slot);
    pattern_part_free(pp);
    pattern_part_free(pp2);
    spec_free(spec);
}

/* Event i of checkpoint_keeps_pattern_state's stream into f; its pattern
 * features and flag into feat. */
static void pattern_event_at(fixture_t *f, int i, uint32_t r, int64_t ts, int64_t feat[3])
{
    static const char *const kinds[] = {"a", "b", "c", "x"};
    static const char *const keys[] = {"k0", "k1", "k2"};
    f->offset = (uint64_t)i;
    engine_result_t res = ev(f, keys[r % 3], kinds[(r >> 3) % 4], (r >> 6) % 100, ts);
    feat[0] = res.features[0].as.i;
    feat[1] = res.features[1].as.i;
    feat[2] = res.features[f->spec->nfeatures + 1].as.b;
}

/* Through engine_part_encode/decode: a partition restored mid-stream finds
 * the same matches, features and flags as the one that went on. With
 * `snapshot`, the state is a snapshot begun at the cut and finished a key
 * per 40 events later (engine_part_snap_*), while the partition goes on: a
 * tick at once releases the held events of keys not written yet; the
 * restored partition then takes the tick and the events since the cut and
 * goes on beside the other. */
static void checkpoint_keeps_pattern_state(int snapshot)
{
    static const char body[] = "patterns:\n"
                               "  rise:\n"
                               "    sequence:\n"
                               "      - a: kind == \"a\"\n"
                               "      - b:\n"
                               "          when: kind == \"b\" and v > a.v\n"
                               "          one_or_more: true\n"
                               "      - c: kind == \"c\"\n"
                               "    within: 2m\n"
                               "    emit: {av: a.v}\n"
                               "  quick:\n"
                               "    sequence:\n"
                               "      - a: kind == \"a\"\n"
                               "      - b:\n"
                               "          when: kind == \"b\"\n"
                               "          contiguity: strict\n"
                               "    within: 1m\n"
                               "    order: arrival\n"
                               "    then: review\n"
                               "    emit: {av: a.v}\n"
                               "  quiet:\n"
                               "    sequence:\n"
                               "      - c: kind == \"c\"\n"
                               "      - none:\n"
                               "          not: kind == \"a\"\n"
                               "          gap: 40s\n"
                               "    within: 2m\n"
                               "    emit: {cv: c.v}\n"
                               "features:\n"
                               "  n_rise: matches(rise) over 10m\n"
                               "  n_quiet: matches(quiet) over 10m\n";
    fixture_t *a = open_spec(body);
    static fixture_t b;
    char err[512];
    b = *a;
    b.nout = 0;
    if (engine_new(a->spec, &b.eng, err, sizeof err) != 0) fail_msg("engine: %s", err);
    uint64_t rng = 42;
    int64_t t = 0;
    const int n = 3000, cut = 1700;
    static int64_t feats[2][3000][3];
    static uint32_t rs[3000];
    static int64_t tss[3000];
    engine_snap_t *snap = NULL;
    weir_buf_t sbuf = WEIR_BUF_INIT;
    int both_from = cut; /* b takes events from here on */
    for (int i = 0; i < n; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(rng >> 33);
        t += 1000 + r % 4000;
        if (i == cut && snapshot) {
            snap = engine_part_snap_begin(a->part);
            a->nout = 0;
            both_from = n;
            /* A tick right away releases every held event before any key
             * is written (the events' keys are not touched by it). */
            engine_part_tick(a->part, t + 10 * S);
        } else if (i == cut) {
            weir_buf_t buf = WEIR_BUF_INIT;
            assert_int_equal(engine_part_encode(a->part, &buf, NULL, NULL), 0);
            engine_sink_t sink = {on_window, NULL, &b, NULL};
            b.part = engine_part_new(b.eng, 0, &sink);
            assert_int_equal(engine_part_decode(b.part, buf.data, buf.len, err, sizeof err), 0);
            a->nout = 0;
            /* Corrupt bytes are refused, leaving an empty partition. */
            buf.data[buf.len - 1] ^= 0x55;
            engine_part_t *c = engine_part_new(b.eng, 0, NULL);
            assert_int_not_equal(engine_part_decode(c, buf.data, buf.len - 1, err, sizeof err), 0);
            engine_part_free(c);
            buf_free(&buf);
        }
        rs[i] = r;
        tss[i] = t - (int64_t)((r >> 12) % 9000);
        for (int side = 0; side < (i >= both_from ? 2 : 1); side++)
            pattern_event_at(side ? &b : a, i, rs[i], tss[i], feats[side][i]);
        if (snap && i % 40 == 0 && engine_part_snap_step(a->part, snap, 1, NULL, &sbuf)) {
            snap = NULL;
            engine_sink_t sink = {on_window, NULL, &b, NULL};
            b.part = engine_part_new(b.eng, 0, &sink);
            assert_int_equal(engine_part_decode(b.part, sbuf.data, sbuf.len, err, sizeof err), 0);
            engine_part_tick(b.part, tss[cut] + (int64_t)((rs[cut] >> 12) % 9000) + 10 * S);
            for (int j = cut; j <= i; j++) pattern_event_at(&b, j, rs[j], tss[j], feats[1][j]);
            both_from = i + 1;
        }
    }
    assert_null(snap);
    buf_free(&sbuf);
    engine_part_tick(a->part, t + 10 * M);
    engine_part_tick(b.part, t + 10 * M);
    assert_true(a->nout > 10);
    assert_int_equal(a->nout, b.nout);
    for (int i = 0; i < a->nout; i++) {
        assert_string_equal(a->out[i].pattern, b.out[i].pattern);
        assert_string_equal(a->out[i].events, b.out[i].events);
        assert_int_equal(a->out[i].time, b.out[i].time);
        assert_int_equal(a->out[i].wm, b.out[i].wm);
    }
    for (int i = cut; i < n; i++)
        assert_memory_equal(feats[0][i], feats[1][i], sizeof feats[0][i]);
    engine_part_free(b.part);
    engine_free(b.eng);
    close_spec(a);
}

static void engine_checkpoint_keeps_pattern_state(void **state)
{
    (void)state;
    checkpoint_keeps_pattern_state(0);
}

static void engine_snapshot_keeps_pattern_state(void **state)
{
    (void)state;
    checkpoint_keeps_pattern_state(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(time_order_sorts_events_within_the_lateness),
        cmocka_unit_test(arrival_order_decides_the_completing_event),
        cmocka_unit_test(strict_needs_the_very_next_event),
        cmocka_unit_test(quantifiers_and_optional_steps),
        cmocka_unit_test(middle_not_blocks_until_the_loop_takes_again),
        cmocka_unit_test(trailing_not_is_confirmed_by_the_watermark),
        cmocka_unit_test(within_bounds_the_whole_match),
        cmocka_unit_test(partial_matches_are_counted_and_released),
        cmocka_unit_test(emit_lower_of_long_strings),
        cmocka_unit_test(encoding_round_trips),
        cmocka_unit_test(overlapping_runs_share_their_events),
        cmocka_unit_test(engine_checkpoint_keeps_pattern_state),
        cmocka_unit_test(engine_snapshot_keeps_pattern_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
