/* engine.c — the stream engine (see engine.h for the per-event algorithm).
 *
 * THE PLAN. The spec's aggregate slots (expr.h) are grouped into window
 * groups: slots with the same argument text, range D and bucket H share one
 * win_t per key, which maintains all their kinds at once (count() is a group
 * whose argument is a constant). last(x) slots (PREV) keep the previous
 * event's value per key; matches(P) over D slots read the key's pattern
 * state. A key's state is one keymap value laid out as
 *     [win_t × groups][prev_t × prev slots][oc_key_t * × on-close aggregates]
 *     [pattern_key_t * (if the spec has patterns)][dedup_t * (if the source
 *     has an id)][inited]
 * so a key costs one allocation plus what its windows hold.
 *
 * PATTERNS (pattern.h) run after the windows of each event, before the
 * features, so matches() and pattern.NAME see what this event completed.
 * The watermark's pattern work (held events released, trailing `not`s
 * confirmed) is done with the on-close windows, before the event's key is
 * looked up: a key that the lookup resets as stale has its last matches
 * confirmed first. Pattern outputs go through the sink's window callback
 * (spec_pattern_t.out), pattern.NAME into features[nfeatures + i].
 *
 * TTL. ttl = the longest feature window or on-close window/gap, plus the
 * lateness. A key whose newest applied event is older than W − ttl cannot be
 * in any window a later query sees, and has no open on-close window, so it
 * is stale: keymap_put resets it on its next event (the same point in the
 * log however far the background sweep got), late events treat it as
 * absent, and a small sweep per event returns idle keys' memory. One
 * consequence, as DESIGN.md states: last(x) forgets a key idle for longer
 * than ttl; a source's `ttl: D` makes ttl at least D. With patterns, ttl also covers the longest
 * `within` (plus the longest window, for the match times matches() counts): a run waiting on a
 * trailing `not` is confirmed before its key can go stale. */
#include "stream/engine.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/hash.h"
#include "spec/decode.h"
#include "stream/aggval.h"
#include "stream/engine_int.h"

#define SWEEP_BUDGET 2 /* keymap slots looked at per event for TTL eviction: a full pass every cap/2 events */

/* ---- plan ------------------------------------------------------------------ */

static uint32_t group_for(engine_t *e, const expr_agg_t *a)
{
    const char *text = a->arg ? expr_text(a->arg) : "";
    for (uint32_t g = 0; g < e->ngroups; g++) {
        group_t *gr = &e->groups[g];
        const char *gt = gr->arg ? expr_text(gr->arg) : "";
        if (gr->conf.range == a->window_ms && gr->conf.every == a->every_ms && !strcmp(gt, text))
            return g;
    }
    e->groups = weir_realloc(e->groups, (e->ngroups + 1) * sizeof *e->groups);
    group_t *gr = &e->groups[e->ngroups];
    memset(gr, 0, sizeof *gr);
    gr->arg = a->arg;
    gr->conf.range = a->window_ms;
    gr->conf.every = a->every_ms;
    gr->conf.ids = a->arg && aggval_is_id(a->arg_type);
    return e->ngroups++;
}

int engine_new(const spec_t *spec, engine_t **out, char *err, size_t errlen)
{
    engine_t *e = weir_calloc(1, sizeof *e);
    e->spec = spec;
    e->src = &spec->sources[0];
    uint32_t n = spec->aggs.n;
    e->slot_group = weir_malloc((n ? n : 1) * sizeof *e->slot_group);
    e->prev_slots = weir_malloc((n ? n : 1) * sizeof *e->prev_slots);
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        const expr_agg_t *a = &spec->aggs.v[i];
        if (a->kind == EXPR_AGG_MATCHES) {
            e->slot_group[i] = NO_GROUP;
            e->match_slots = weir_realloc(e->match_slots, (e->nmatch + 1) * sizeof *e->match_slots);
            e->match_slots[e->nmatch++] = i;
            continue;
        }
        if (a->kind == EXPR_AGG_PREV) {
            e->slot_group[i] = NO_GROUP;
            e->prev_slots[e->nprev++] = i;
            continue;
        }
        rc = aggval_check(a, err, errlen);
        if (rc) break;
        uint32_t g = group_for(e, a);
        group_t *gr = &e->groups[g];
        gr->asks = weir_realloc(gr->asks, (gr->nasks + 1) * sizeof *gr->asks);
        gr->slots = weir_realloc(gr->slots, (gr->nasks + 1) * sizeof *gr->slots);
        gr->types = weir_realloc(gr->types, (gr->nasks + 1) * sizeof *gr->types);
        gr->types[gr->nasks] = a->type;
        gr->asks[gr->nasks] = (win_ask_t){aggval_kind(a->kind), a->q};
        gr->slots[gr->nasks++] = i;
        gr->conf.kinds |= AGG_BIT(aggval_kind(a->kind));
        e->slot_group[i] = g;
    }
    for (uint32_t g = 0; g < e->ngroups && rc == 0; g++) {
        group_t *gr = &e->groups[g];
        char why[200];
        if (win_conf_init(&gr->conf, gr->conf.range, gr->conf.every, gr->conf.kinds, gr->conf.ids, 0,
                          why, sizeof why) != 0)
            rc = weir_errf(err, errlen, WEIR_EINVAL, "%s: %s", spec->aggs.v[gr->slots[0]].text, why);
    }
    if (rc) {
        engine_free(e);
        return rc;
    }
    int64_t longest = spec->max_window_ms;
    for (uint32_t a = 0; a < spec->naggregates; a++) {
        const spec_aggregate_t *ag = &spec->aggregates[a];
        int64_t span = ag->window == SPEC_WINDOW_SESSION ? ag->gap_ms : ag->size_ms;
        if (span > longest) longest = span;
    }
    if (spec->npatterns) longest += spec->max_within_ms;
    e->ttl = longest + e->src->lateness_ms;
    /* The source's ttl: a key kept longer than its windows need, for
     * last(x) across a dormant spell (a card back after a month). */
    if (e->src->ttl_ms > e->ttl) e->ttl = e->src->ttl_ms;
    /* A key keeps its ids as long as they count (dedup past the watermark). */
    e->dedup = e->src->has_id ? e->src->dedup_ms : 0;
    if (e->dedup && e->dedup + e->src->lateness_ms > e->ttl)
        e->ttl = e->dedup + e->src->lateness_ms;
    /* The windows' areas (win.h) follow their headers in the same block:
     * a key's state is one allocation, a few contiguous cache lines. */
    e->off_area = weir_malloc((e->ngroups ? e->ngroups : 1) * sizeof *e->off_area);
    size_t off = e->ngroups * sizeof(win_t);
    for (uint32_t g = 0; g < e->ngroups; g++) {
        e->off_area[g] = off;
        off += (e->groups[g].conf.area_size + 7) & ~(size_t)7;
    }
    e->off_prev = off;
    e->off_oc = e->off_prev + e->nprev * sizeof(prev_t);
    e->off_pat = e->off_oc + spec->naggregates * sizeof(oc_key_t *);
    e->off_dedup = e->off_pat + (spec->npatterns ? sizeof(pattern_key_t *) : 0);
    e->off_inited = e->off_dedup + (e->dedup ? sizeof(dedup_t *) : 0);
    e->vsize = e->off_inited + 8;
    *out = e;
    return 0;
}

void engine_free(engine_t *e)
{
    if (!e) return;
    for (uint32_t g = 0; g < e->ngroups; g++) {
        weir_free(e->groups[g].asks);
        weir_free(e->groups[g].slots);
        weir_free(e->groups[g].types);
    }
    weir_free(e->groups);
    weir_free(e->off_area);
    weir_free(e->slot_group);
    weir_free(e->prev_slots);
    weir_free(e->match_slots);
    weir_free(e);
}

const spec_t *engine_spec(const engine_t *e)
{
    return e->spec;
}

/* ---- per-key state ------------------------------------------------------------ */

void engine_key_init(const engine_t *e, void *v)
{
    for (uint32_t g = 0; g < e->ngroups; g++)
        win_init_in(&key_wins(v)[g], &e->groups[g].conf, (char *)v + e->off_area[g]);
    *key_inited(e, v) = 1;
}

/* keymap callback: releases what a key's value points to. */
void engine_key_release(void *v, void *arg)
{
    engine_part_t *p = arg;
    const engine_t *e = p->e;
    if (!*key_inited(e, v)) return;
    for (uint32_t g = 0; g < e->ngroups; g++) win_free(&key_wins(v)[g]);
    for (uint32_t i = 0; i < e->nprev; i++) weir_free(key_prevs(e, v)[i].str);
    for (uint32_t a = 0; a < e->spec->naggregates; a++) oc_key_free(key_oc(e, v)[a]);
    if (e->spec->npatterns) {
        pattern_key_free(e->spec, *key_pat(e, v));
        *key_pat(e, v) = NULL;
    }
    if (e->dedup) {
        dedup_free(*key_dedup(e, v));
        *key_dedup(e, v) = NULL;
    }
    *key_inited(e, v) = 0;
    p->st.evicted++;
}

static size_t key_bytes(const engine_t *e, void *v)
{
    size_t b = 0;
    for (uint32_t g = 0; g < e->ngroups; g++) b += win_bytes(&key_wins(v)[g]);
    for (uint32_t i = 0; i < e->nprev; i++) b += key_prevs(e, v)[i].cap;
    for (uint32_t a = 0; a < e->spec->naggregates; a++) b += oc_key_bytes(key_oc(e, v)[a]);
    if (e->spec->npatterns) b += pattern_key_bytes(e->spec, *key_pat(e, v));
    if (e->dedup) b += dedup_bytes(*key_dedup(e, v));
    return b;
}

static expr_value_t prev_value(const prev_t *pv, engine_part_t *p)
{
    switch ((expr_type_t)pv->type) {
    case EXPR_BOOL: return expr_bool(pv->as.b);
    case EXPR_INT: return expr_int(pv->as.i);
    case EXPR_TIME: return expr_time(pv->as.i);
    case EXPR_DURATION: return expr_duration(pv->as.i);
    case EXPR_FLOAT: return expr_float(pv->as.f);
    case EXPR_STRING: {
        /* A copy: the key's buffer is overwritten with this event's value
         * while results may still point at the previous one. */
        size_t at = p->prevcopy.len;
        buf_append(&p->prevcopy, pv->len <= PREV_INLINE ? pv->as.s : pv->str, pv->len);
        return expr_string(p->prevcopy.data + at, pv->len);
    }
    default: return expr_null();
    }
}

static void prev_store(prev_t *pv, const expr_value_t *x)
{
    pv->type = x->type;
    switch ((expr_type_t)x->type) {
    case EXPR_BOOL: pv->as.b = x->as.b; break;
    case EXPR_INT:
    case EXPR_TIME:
    case EXPR_DURATION: pv->as.i = x->as.i; break;
    case EXPR_FLOAT: pv->as.f = x->as.f; break;
    case EXPR_STRING:
        if (x->as.s.len <= PREV_INLINE) {
            if (x->as.s.len) memcpy(pv->as.s, x->as.s.ptr, x->as.s.len);
            pv->len = (uint32_t)x->as.s.len;
            break;
        }
        if (x->as.s.len > pv->cap) {
            pv->cap = (uint32_t)x->as.s.len;
            pv->str = weir_realloc(pv->str, pv->cap);
        }
        if (x->as.s.len) memcpy(pv->str, x->as.s.ptr, x->as.s.len);
        pv->len = (uint32_t)x->as.s.len;
        break;
    default: break;
    }
}

/* ---- partition ------------------------------------------------------------------ */

engine_part_t *engine_part_new(const engine_t *e, uint32_t part, const engine_sink_t *sink)
{
    engine_part_t *p = weir_calloc(1, sizeof *p);
    const spec_t *s = e->spec;
    p->e = e;
    p->part = part;
    if (sink) p->sink = *sink;
    keymap_init(&p->km, (uint32_t)e->vsize);
    p->timers = oc_timers_new();
    p->max_time = p->wm = INT64_MIN;
    p->agg_since = weir_malloc((s->naggregates + 1) * sizeof *p->agg_since);
    for (uint32_t a = 0; a < s->naggregates; a++)
        p->agg_since[a] = INT64_MIN;
    p->fields = weir_calloc(e->src->nfields + 1, sizeof *p->fields);
    p->aggvals = weir_calloc(s->aggs.n + 1, sizeof *p->aggvals);
    /* pattern.NAME flags follow the features (spec.h). */
    p->features = weir_calloc(s->nfeatures + s->npatterns + 1, sizeof *p->features);
    if (s->npatterns) {
        p->pat = pattern_part_new(s);
        p->pflags = weir_calloc(s->npatterns, 1);
    }
    uint32_t nsel = 1, nask = 1;
    for (uint32_t a = 0; a < s->naggregates; a++)
        if (s->aggregates[a].nselect > nsel) nsel = s->aggregates[a].nselect;
    for (uint32_t g = 0; g < e->ngroups; g++)
        if (e->groups[g].nasks > nask) nask = e->groups[g].nasks;
    p->selvals = weir_calloc(nsel, sizeof *p->selvals);
    p->results = weir_calloc(nask, sizeof *p->results);
    p->in = weir_calloc(e->ngroups + 1, sizeof *p->in);
    p->has_in = weir_calloc(e->ngroups + 1, sizeof *p->has_in);
    p->st.watermark = INT64_MIN;
    return p;
}

void engine_part_free(engine_part_t *p)
{
    if (!p) return;
    keymap_free(&p->km, engine_key_release, p);
    oc_timers_free(p->timers);
    weir_free(p->agg_since);
    pattern_part_free(p->pat);
    weir_free(p->pflags);
    weir_free(p->fields);
    weir_free(p->aggvals);
    weir_free(p->features);
    weir_free(p->selvals);
    weir_free(p->results);
    weir_free(p->in);
    weir_free(p->has_in);
    buf_free(&p->scratch);
    buf_free(&p->prevcopy);
    buf_free(&p->rscratch);
    buf_free(&p->closekeys[0]);
    buf_free(&p->closekeys[1]);
    cJSON_Delete(p->doc);
    weir_free(p);
}

void engine_part_set_sink(engine_part_t *p, const engine_sink_t *sink)
{
    memset(&p->sink, 0, sizeof p->sink);
    if (sink) p->sink = *sink;
}

weir_slice_t engine_event_key(const spec_source_t *src, const expr_value_t *fields, char *tmp)
{
    const expr_value_t *k = &fields[src->key_slot];
    if (k->type == EXPR_STRING) return k->as.s;
    int n = snprintf(tmp, 24, "%" PRId64, k->as.i);
    return (weir_slice_t){tmp, (size_t)n};
}

/* The event's id (engine.h step 4): an int's value, a string's XXH64 (dedup.h);
 * 0 for an event without one (null), which is never a duplicate. */
static int event_id(const engine_t *e, const expr_value_t *fields, uint64_t *id)
{
    const expr_value_t *x = &fields[e->src->id_slot];
    if (x->type == EXPR_STRING)
        *id = weir_hash64(x->as.s.ptr, x->as.s.len);
    else if (x->type == EXPR_INT)
        *id = (uint64_t)x->as.i;
    else
        return 0;
    return 1;
}

static int64_t cutoff_of(const engine_part_t *p)
{
    /* Times are at most 2^62 in magnitude (decode limits them to 2^53), so
     * this cannot overflow once a watermark exists. */
    return p->wm == INT64_MIN ? INT64_MIN : p->wm - p->e->ttl;
}

static void advance(engine_part_t *p, int64_t t)
{
    if (t <= p->max_time) return;
    p->max_time = t;
    p->wm = t - p->e->src->lateness_ms;
    p->st.watermark = p->wm;
}

/* PARTIAL WINDOWS. An on-close aggregate a reload adds or changes starts
 * empty (engine_migrate.h): the events applied before it are not in its
 * windows. agg_since[a] is the partition's max time (events and ticks) when it began
 * (INT64_MIN: it has seen every event, from the log's start or a replay of
 * it). A window starting at or before that may lack events (a tumbling
 * hour open across the reload holds only the events after it), and so may
 * a session starting less than its gap after it (it would have merged with
 * them): such a window's line says "partial": true, rather than passing a
 * sum of part of an hour for the hour's. The mark is state: checkpointed
 * (engine_state.c), so a restart that restores the state marks the same
 * windows; a full replay of the log computes them whole, unmarked. */
static int window_partial(const engine_part_t *p, const spec_aggregate_t *agg, uint32_t ai,
                          int64_t start)
{
    int64_t since = p->agg_since[ai];
    if (since == INT64_MIN) return 0;
    return start < since + (agg->window == SPEC_WINDOW_SESSION ? agg->gap_ms : 1);
}

/* Closes due's window in the key's on-close state (of due->ai) and emits
 * it; scratch backs lower() in its select. 0 if the window was gone
 * (merged, reset, or closed already). */
static int close_one(engine_part_t *p, oc_key_t *state, const oc_due_t *due, weir_buf_t *scratch)
{
    const spec_aggregate_t *agg = &p->e->spec->aggregates[due->ai];
    buf_reserve(scratch, 4096);
    if (!oc_close(state, agg, due, p->selvals, scratch)) return 0;
    p->st.windows_emitted++;
    if (p->sink.window)
        p->sink.window(p->sink.ctx, p->part, agg, due->key, due->start, due->end,
                       window_partial(p, agg, due->ai, due->start), p->selvals);
    return 1;
}

/* CLOSES IN BATCHES. Windows close in bursts (every key's hourly window
 * when the watermark passes the hour), each close on a key that is cold at
 * a million keys: its on-close state and that state's arrays, two waits one
 * after the other — four, with the key's slot and entry, for a timer that
 * must find its state by key (one from a checkpoint, or any while a
 * snapshot runs: the lookup is what captures the key before the close
 * changes it, keymap.h). Due timers are popped CLOSE_BATCH at a time, in
 * the heap's order, which is the order they are closed in; two batches are
 * in flight: while one is closed, the next one's memory is on its way.
 *     pop batch 0, ask for its states (or slots)
 *     loop: ask for batch i's arrays (or entries, then states and arrays)
 *           pop batch i+1, ask for its states
 *           close batch i */
#define CLOSE_BATCH 32

typedef struct close_batch {
    oc_due_t due[CLOSE_BATCH];
    uint64_t h[CLOSE_BATCH]; /* the key's hash, for a due found by key */
    size_t n;
    int by_key; /* some due must be found by key */
} close_batch_t;

/* Found by key: it knows no state, or a snapshot runs (see above). */
static inline int due_by_key(const engine_part_t *p, const oc_due_t *d)
{
    return !d->state || p->km.snap;
}

/* Pops up to `limit` due timers into cb (keys copied to keys: a popped key
 * lives in the heap only until the next pop) and asks for their first
 * cache line. */
static void batch_pop(engine_part_t *p, close_batch_t *cb, weir_buf_t *keys, size_t limit)
{
    size_t b = 0;
    buf_reset(keys);
    buf_reserve(keys, 64); /* never NULL, even when every key of the batch is empty ("") */
    while (b < CLOSE_BATCH && b < limit && oc_timers_pop(p->timers, p->wm, &cb->due[b])) {
        size_t at = keys->len;
        buf_append(keys, cb->due[b].key.ptr, cb->due[b].key.len);
        cb->due[b++].key.ptr = (const char *)(uintptr_t)at;
    }
    cb->n = b;
    cb->by_key = 0;
    for (size_t i = 0; i < b; i++) {
        oc_due_t *d = &cb->due[i];
        d->key.ptr = keys->data + (uintptr_t)d->key.ptr;
        if (!due_by_key(p, d)) {
            oc_key_prefetch(d->state, 0);
            continue;
        }
        cb->h[i] = keymap_hash(d->key.ptr, d->key.len);
        cb->by_key = 1;
        if (b > 1) keymap_prefetch(&p->km, cb->h[i]);
    }
}

/* Asks for what the closes of cb read next: a known state's arrays; for a
 * due found by key, its entry, then its state and that state's arrays. */
static void batch_ask(engine_part_t *p, close_batch_t *cb)
{
    const engine_t *e = p->e;
    void *v[CLOSE_BATCH] = {0}; /* a due found by key: its value, once peeked */
    if (cb->n < 2) return;
    if (cb->by_key) {
        for (size_t i = 0; i < cb->n; i++)
            if (due_by_key(p, &cb->due[i])) keymap_prefetch_entry(&p->km, cb->h[i]);
        /* (nothing changes the map until the batch is closed) */
        for (size_t i = 0; i < cb->n; i++) {
            oc_due_t *d = &cb->due[i];
            void *pv = due_by_key(p, d) ? (void *)keymap_peek(&p->km, cb->h[i], d->key.ptr, d->key.len) : NULL;
            v[i] = pv && *key_inited(e, pv) ? pv : NULL;
            if (v[i]) oc_key_prefetch(key_oc(e, v[i])[d->ai], 0);
        }
    }
    for (size_t i = 0; i < cb->n; i++) {
        const oc_due_t *d = &cb->due[i];
        if (!due_by_key(p, d)) oc_key_prefetch(d->state, 1);
        else if (v[i]) oc_key_prefetch(key_oc(e, v[i])[d->ai], 1);
    }
}

static void batch_close(engine_part_t *p, close_batch_t *cb)
{
    const engine_t *e = p->e;
    for (size_t i = 0; i < cb->n; i++) {
        oc_due_t *d = &cb->due[i];
        int by_key = due_by_key(p, d);
        if (d->state) {
            oc_key_t *st = oc_due_state(d);
            if (!st) continue; /* its key was released: no window left */
            if (!by_key) {
                close_one(p, st, d, &p->scratch);
                continue;
            }
        }
        void *v = keymap_get_hashed(&p->km, cb->h[i], d->key.ptr, d->key.len);
        if (v && *key_inited(e, v)) close_one(p, key_oc(e, v)[d->ai], d, &p->scratch);
    }
}

size_t engine_part_close_due(engine_part_t *p, size_t max)
{
    close_batch_t cb[2];
    batch_pop(p, &cb[0], &p->closekeys[0], max);
    size_t n = cb[0].n;
    for (int cur = 0; cb[cur].n; cur ^= 1) {
        batch_ask(p, &cb[cur]);
        batch_pop(p, &cb[cur ^ 1], &p->closekeys[cur ^ 1], max - n);
        n += cb[cur ^ 1].n;
        batch_close(p, &cb[cur]);
    }
    return n;
}

void engine_part_defer_closes(engine_part_t *p, int defer)
{
    p->defer_closes = defer;
}

int engine_part_has_due(const engine_part_t *p)
{
    return oc_timers_next(p->timers) <= p->wm;
}

/* keymap_free_cb for a key reset or expired while the partition runs: with
 * closes deferred, its due windows go out first (their timers, left in the
 * heap, find no window when they come up). It runs inside keymap_put, in
 * the middle of an event whose lower() results live in p->scratch (and
 * whose argenv points there): the closes use a scratch of their own. */
static void key_retire(void *v, void *arg)
{
    engine_part_t *p = arg;
    const engine_t *e = p->e;
    if (*key_inited(e, v)) {
        size_t klen;
        const void *kb = keymap_key(v, &klen);
        weir_slice_t key = {kb, klen};
        if (p->sink.changed) p->sink.changed(p->sink.ctx, p->part, key);
        oc_due_t due;
        for (uint32_t a = 0; p->defer_closes && a < e->spec->naggregates; a++)
            while (oc_key_take_due(key_oc(e, v)[a], a, key, p->wm, &due) &&
                   close_one(p, key_oc(e, v)[a], &due, &p->rscratch)) {
            }
    }
    engine_key_release(v, p);
}

/* ---- patterns ------------------------------------------------------------------ */

static pattern_key_t **pat_slot(void *ctx, weir_slice_t key)
{
    engine_part_t *p = ctx;
    void *v = keymap_get(&p->km, key.ptr, key.len);
    return v && *key_inited(p->e, v) ? key_pat(p->e, v) : NULL;
}

static void pat_match(void *ctx, const spec_pattern_t *sp, weir_slice_t key, int64_t start,
                      int64_t time, const expr_value_t *vals)
{
    engine_part_t *p = ctx;
    if (p->sink.window) p->sink.window(p->sink.ctx, p->part, &sp->out, key, start, time, 0, vals);
}

static void pat_key_matched(void *ctx, weir_slice_t key)
{
    engine_part_t *p = ctx;
    if (p->sink.changed) p->sink.changed(p->sink.ctx, p->part, key);
}

static pattern_io_t pat_io(engine_part_t *p)
{
    return (pattern_io_t){pat_slot, pat_match, p, p->km.snap != NULL, pat_key_matched};
}

/* The watermark's work: on-close windows, then held events and deadlines. */
static void watermark_due(engine_part_t *p)
{
    if (!p->defer_closes) engine_part_close_due(p, SIZE_MAX);
    if (p->pat) {
        pattern_io_t io = pat_io(p);
        pattern_watermark(p->pat, p->wm, &io);
    }
}

/* matches() slots of key value v (NULL: absent) as of t; pattern.NAME
 * flags into the features after the declared ones. */
static void read_pattern_slots(engine_part_t *p, void *v, int64_t t, const uint8_t *flags)
{
    const engine_t *e = p->e;
    const spec_t *s = e->spec;
    for (uint32_t i = 0; i < e->nmatch; i++) {
        const expr_agg_t *a = &s->aggs.v[e->match_slots[i]];
        p->aggvals[e->match_slots[i]] =
            expr_int(v ? pattern_count(*key_pat(e, v), a->pattern, t, a->window_ms) : 0);
    }
    for (uint32_t i = 0; i < s->npatterns; i++)
        p->features[s->nfeatures + i] = expr_bool(flags && flags[i]);
}

/* Makes the lower() scratch big enough for this event (see expr.h). */
static void size_scratch(engine_part_t *p, const expr_value_t *fields)
{
    uint32_t calls = p->e->spec->lower_calls;
    if (!calls) return;
    size_t longest = p->prevcopy.len + 64;
    for (uint32_t i = 0; i < p->e->src->nfields; i++)
        if (fields[i].type == EXPR_STRING && fields[i].as.s.len > longest) longest = fields[i].as.s.len;
    buf_reserve(&p->scratch, calls * longest);
}

/* Reserves room for this call's copies of the key's last(x) strings up
 * front: the slices read_slots hands out must not move afterwards. */
static void reserve_prev_copies(engine_part_t *p, void *v)
{
    size_t need = 1;
    for (uint32_t i = 0; v && i < p->e->nprev; i++) need += key_prevs(p->e, v)[i].len;
    buf_reset(&p->prevcopy);
    buf_reserve(&p->prevcopy, need);
}

/* Fills the aggregate slots of key value v (NULL: an absent key) as of time t. */
static void read_slots(engine_part_t *p, void *v, int64_t t, int peek)
{
    const engine_t *e = p->e;
    for (uint32_t g = 0; g < e->ngroups; g++) {
        const group_t *gr = &e->groups[g];
        if (v && peek) {
            win_peek(&key_wins(v)[g], t, gr->asks, gr->nasks, p->results);
        } else if (v) {
            win_query(&key_wins(v)[g], t, gr->asks, gr->nasks, p->results);
        } else {
            for (uint32_t k = 0; k < gr->nasks; k++) p->results[k] = (agg_result_t){1, 0, 0};
        }
        for (uint32_t k = 0; k < gr->nasks; k++)
            p->aggvals[gr->slots[k]] = aggval_to_value_fast(&p->results[k], gr->asks[k].kind, gr->types[k]);
    }
    for (uint32_t i = 0; i < e->nprev; i++)
        p->aggvals[e->prev_slots[i]] = v ? prev_value(&key_prevs(e, v)[i], p) : expr_null();
    if (e->spec->npatterns) read_pattern_slots(p, v, t, NULL);
}

static size_t eval_features(engine_part_t *p, const expr_value_t *fields, size_t scratch_at);

/* The features of `key` as of time t without applying anything: a stale
 * key counts as absent. `logged`: the read is in the log (a late event), so
 * it may expire old records, as its replay will; otherwise (a GET) the
 * windows are only peeked at. Returns the key's value or NULL. */
static void *features_as_of(engine_part_t *p, weir_slice_t key, int64_t t,
                            const expr_value_t *fields, int logged)
{
    const engine_t *e = p->e;
    void *v = keymap_get(&p->km, key.ptr, key.len);
    if (v && (!*key_inited(e, v) || keymap_newest(v) < cutoff_of(p))) v = NULL;
    if (v && logged)
        for (uint32_t g = 0; g < e->ngroups; g++) win_expire(&key_wins(v)[g], p->wm);
    reserve_prev_copies(p, v);
    read_slots(p, v, t, !logged);
    size_scratch(p, fields);
    eval_features(p, fields, 0);
    return v;
}

/* Evaluates the features; lower() results go to the scratch from byte
 * scratch_at on (aggregate arguments of the same event may sit before it).
 * Returns the scratch bytes used up to the end. */
static size_t eval_features(engine_part_t *p, const expr_value_t *fields, size_t scratch_at)
{
    const spec_t *s = p->e->spec;
    expr_env_t env = {.fields = fields, .features = p->features, .aggs = p->aggvals,
                      .scratch = p->scratch.data, .scratch_cap = p->scratch.cap,
                      .scratch_used = scratch_at};
    for (uint32_t k = 0; k < s->nfeatures; k++) {
        uint32_t i = s->feature_order[k];
        /* The scratch is sized for every lower() of the event, so this
         * cannot fail; a null is the safe answer if it ever did. */
        if (expr_eval(s->features[i].expr, &env, &p->features[i]) != 0) p->features[i] = expr_null();
    }
    return env.scratch_used;
}

void engine_part_features_from(engine_part_t *p, uint64_t from)
{
    p->features_from = from;
}

/* DUPLICATES (engine.h step 4): nothing of the key changes. Its features are
 * the key's state read as of `at` (its time, or the watermark for one behind
 * it), which a server answers with its first's decision instead
 * (serve/duplicates.c). */
static int as_duplicate(engine_part_t *p, engine_result_t *res, weir_slice_t key, int64_t at,
                        const expr_value_t *fields, int64_t first, int features)
{
    p->st.duplicates++;
    features_as_of(p, key, at, fields, 1);
    if (!features) res->features = NULL;
    res->duplicate = 1;
    res->duplicate_of = (uint64_t)first;
    res->watermark = p->wm;
    return 0;
}

/* The log offset of the event that brought this event's id to key state v,
 * if v holds it at the watermark, else -1; *id is the event's id when it has
 * one (*has_id). */
static int64_t key_first(engine_part_t *p, void *v, const expr_value_t *fields, uint64_t *id,
                         int *has_id)
{
    const engine_t *e = p->e;
    *has_id = e->dedup && event_id(e, fields, id);
    return *has_id ? dedup_seen(key_dedup(e, v), *id, p->wm - e->dedup) : -1;
}

/* key_first for an event behind the watermark, whose key (live, not stale)
 * is looked up here: -1 if it has none. */
static int64_t late_first(engine_part_t *p, weir_slice_t key, uint64_t h,
                          const expr_value_t *fields)
{
    const engine_t *e = p->e;
    if (!e->dedup) return -1;
    void *v = keymap_get_hashed(&p->km, h, key.ptr, key.len);
    if (!v || !*key_inited(e, v) || keymap_newest(v) < cutoff_of(p)) return -1;
    uint64_t id;
    int has_id;
    return key_first(p, v, fields, &id, &has_id);
}

int engine_part_event(engine_part_t *p, uint64_t offset, const expr_value_t *fields,
                      weir_slice_t raw, engine_result_t *res, char *err, size_t errlen)
{
    return engine_part_event_hashed(p, offset, fields, engine_event_hash(p, fields), raw, res, err,
                                    errlen);
}

int engine_part_event_hashed(engine_part_t *p, uint64_t offset, const expr_value_t *fields,
                             uint64_t h, weir_slice_t raw, engine_result_t *res, char *err,
                             size_t errlen)
{
    (void)err, (void)errlen;
#ifdef WEIR_CHECKED
    /* The sanitizer build checks the caller's hash (a second hash of the
     * key, which the release build is spared): a wrong one would file the
     * key's state where no lookup finds it. */
    weir_assert(h == engine_event_hash(p, fields));
#endif
    const engine_t *e = p->e;
    const spec_t *s = e->spec;
    int64_t t = fields[e->src->time_slot].as.i;
    weir_slice_t key = engine_event_key(e->src, fields, p->keytmp);
    buf_reset(&p->prevcopy);
    p->seq++;
    memset(res, 0, sizeof *res);
    res->time = t;
    res->key = key;
    res->key_hash = h;
    res->fields = fields;
    res->features = p->features;
    res->raw = raw;

    if (p->wm != INT64_MIN && t < p->wm) {
        /* A retry behind the watermark is a duplicate all the same: it
         * carries its first's time, and other keys' events move W. */
        int64_t first = late_first(p, key, h, fields);
        if (first >= 0)
            return as_duplicate(p, res, key, p->wm, fields, first, offset >= p->features_from);
        /* Late: read-only, as of the watermark. */
        p->st.late++;
        features_as_of(p, key, p->wm, fields, 1);
        res->late = 1;
        res->watermark = p->wm;
        if (p->sink.late) p->sink.late(p->sink.ctx, p->part, offset, key, t, p->wm, raw);
        return 0;
    }

    int features = offset >= p->features_from;
    if (!features) res->features = NULL;
    /* The key's slot is a cache miss at a million keys: ask for it first,
     * and do the work that needs no state (the windows' inputs) meanwhile. */
    keymap_prefetch(&p->km, h);
    advance(p, t);
    /* Windows the new watermark closes (and matches it confirms) go out
     * before a TTL reset of this very key (in keymap_put) could drop them. */
    watermark_due(p);
    /* Aggregate arguments may call lower(): they share the event's scratch
     * with the features, each in its own part of it (see size_scratch). They
     * read the event's fields only (expr.h), so they can go before the key's
     * state is at hand. */
    size_scratch(p, fields);
    expr_env_t argenv = {.fields = fields, .scratch = p->scratch.data, .scratch_cap = p->scratch.cap};
    for (uint32_t g = 0; g < e->ngroups; g++) {
        if (!e->groups[g].arg) {
            /* count(): every event counts. (Set here, not through a fresh
             * expr_int(0): its byte-wide type store, read back at once as
             * part of 16 bytes, stalled the loop on store forwarding.) */
            p->in[g] = win_num(0.0);
            p->has_in[g] = 1;
            continue;
        }
        expr_value_t x = expr_int(0);
        expr_eval(e->groups[g].arg, &argenv, &x);
        p->has_in[g] = (uint8_t)aggval_from_value(&x, &p->in[g]);
    }
    int created;
    void *v = keymap_put_hashed(&p->km, h, key.ptr, key.len, cutoff_of(p), key_retire, p,
                                &created);
    if (created || !*key_inited(e, v)) engine_key_init(e, v);
    uint64_t id;
    int has_id;
    int64_t first = key_first(p, v, fields, &id, &has_id);
    /* A duplicate's time has moved the watermark, as any logged event's
     * (the windows that closed are emitted already): a retry's time is its
     * first's, so in practice nothing moves. */
    if (first >= 0) return as_duplicate(p, res, key, t, fields, first, features);
    p->st.events++;
    keymap_touch(v, t);
    /* A key's pattern state is its own block, cold at a million keys: ask
     * for it now, the windows' work below hides the wait. */
    if (p->pat && *key_pat(e, v)) __builtin_prefetch(*key_pat(e, v));
    /* Per window: add, query as of t, then expire below W (win_step). The
     * expiry comes after the add and the query (t >= W): they have already
     * moved the window to t, so expiring only drops old records — expiring
     * first would move the window twice (to W, then t). Nothing expired is
     * in (t - D, t], so no answer changes. */
    for (uint32_t g = 0; g < e->ngroups; g++) {
        const group_t *gr = &e->groups[g];
        /* Without features no answer is computed: the state the step leaves
         * is the same either way (win_step). */
        win_step(&key_wins(v)[g], t, p->has_in[g] ? &p->in[g] : NULL, gr->asks, features ? gr->nasks : 0,
                 p->results, p->wm);
        for (uint32_t k = 0; features && k < gr->nasks; k++)
            p->aggvals[gr->slots[k]] = aggval_to_value_fast(&p->results[k], gr->asks[k].kind, gr->types[k]);
    }
    if (p->pat) {
        pattern_io_t io = pat_io(p);
        pattern_event(p->pat, key_pat(e, v), key, t, offset, fields, p->wm, p->pflags, &io);
        if (features) read_pattern_slots(p, v, t, p->pflags);
    }
    if (features) {
        reserve_prev_copies(p, v);
        for (uint32_t i = 0; i < e->nprev; i++)
            p->aggvals[e->prev_slots[i]] = prev_value(&key_prevs(e, v)[i], p);
        argenv.scratch_used = eval_features(p, fields, argenv.scratch_used);
    }
    for (uint32_t i = 0; i < e->nprev; i++) {
        const expr_agg_t *a = &s->aggs.v[e->prev_slots[i]];
        expr_value_t x;
        if (expr_eval(a->arg, &argenv, &x) != 0) x = expr_null();
        prev_store(&key_prevs(e, v)[i], &x);
    }
    for (uint32_t a = 0; a < s->naggregates; a++)
        oc_add(&key_oc(e, v)[a], &s->aggregates[a], a, key, t, p->seq, &argenv, p->timers);
    if (has_id) dedup_add(key_dedup(e, v), id, t, offset);
    keymap_expire(&p->km, cutoff_of(p), SWEEP_BUDGET, key_retire, p);
    res->watermark = p->wm;
    return 0;
}

uint64_t engine_event_hash(const engine_part_t *p, const expr_value_t *fields)
{
    char tmp[32];
    weir_slice_t key = engine_event_key(p->e->src, fields, tmp);
    return keymap_hash(key.ptr, key.len);
}

/* Stages 2 and 3 of engine_part_prefetch for the live key value v. */
static void key_prefetch(const engine_t *e, void *v, int stage)
{
    if (!*key_inited(e, v)) return;
    if (stage == 2) {
        for (uint32_t g = 0; g < e->ngroups; g++) win_prefetch(&key_wins(v)[g]);
        if (e->spec->npatterns && *key_pat(e, v)) __builtin_prefetch(*key_pat(e, v));
    }
    for (uint32_t a = 0; a < e->spec->naggregates; a++) oc_key_prefetch(key_oc(e, v)[a], stage - 2);
}

void engine_part_prefetch(const engine_part_t *p, const expr_value_t *fields, uint64_t h, int stage,
                          engine_hint_t *hint)
{
    if (stage == 0) {
        keymap_prefetch(&p->km, h);
    } else if (stage == 1) {
        keymap_prefetch_entry(&p->km, h);
    } else {
        /* Stage 3 takes the value stage 2 found while no entry has been freed
         * since (so it still is the key's: entries do not move): a second
         * lookup was 1.5% of a replay's instructions. A key created in
         * between is looked up again. */
        const void *v = hint->value;
        if (stage == 2 || !v || hint->frees != keymap_frees(&p->km)) {
            char tmp[32];
            weir_slice_t key = engine_event_key(p->e->src, fields, tmp);
            v = keymap_peek(&p->km, h, key.ptr, key.len);
            *hint = (engine_hint_t){v, keymap_frees(&p->km)};
        }
        if (v) key_prefetch(p->e, (void *)v, stage);
    }
}

/* engine_part_lookup's, as of time t. */
static int lookup_at(engine_part_t *p, weir_slice_t key, int64_t t, engine_result_t *res)
{
    const engine_t *e = p->e;
    memset(res, 0, sizeof *res);
    for (uint32_t i = 0; i < e->src->nfields; i++)
        p->fields[i] = expr_null();
    /* Not logged: must leave the state exactly as it was (principle 2). */
    void *v = features_as_of(p, key, t, p->fields, 0);
    res->time = t;
    res->watermark = p->wm;
    res->key = key;
    res->fields = p->fields;
    res->features = p->features;
    return v != NULL;
}

int engine_part_lookup(engine_part_t *p, weir_slice_t key, engine_result_t *res)
{
    return lookup_at(p, key, p->max_time == INT64_MIN ? 0 : p->max_time, res);
}

int engine_part_lookup_newest(engine_part_t *p, weir_slice_t key, engine_result_t *res)
{
    const engine_t *e = p->e;
    /* (only read here: key_wins and the like take a writable value) */
    void *v = (void *)keymap_peek(&p->km, keymap_hash(key.ptr, key.len), key.ptr, key.len);
    int64_t t = v ? keymap_newest(v) : INT64_MIN;
    if (t == INT64_MIN) return engine_part_lookup(p, key, res); /* (nothing applied: not found) */
    if (*key_inited(e, v)) {
        for (uint32_t g = 0; g < e->ngroups; g++)
            if (key_wins(v)[g].floor > t) t = key_wins(v)[g].floor;
        if (e->spec->npatterns) {
            int64_t m = pattern_newest_match(*key_pat(e, v));
            if (m > t) t = m;
        }
    }
    return lookup_at(p, key, t, res);
}

int engine_part_holds(const engine_part_t *p, weir_slice_t key)
{
    return keymap_peek(&p->km, keymap_hash(key.ptr, key.len), key.ptr, key.len) != NULL;
}

int64_t engine_ttl(const engine_t *e)
{
    return e->ttl;
}

void engine_part_each_key(const engine_part_t *p, void (*cb)(void *ctx, weir_slice_t key),
                          void *ctx)
{
    keymap_iter_t it = KEYMAP_ITER_INIT;
    void *v;
    while ((v = keymap_next(&p->km, &it))) {
        size_t klen;
        const void *k = keymap_key(v, &klen);
        cb(ctx, (weir_slice_t){k, klen});
    }
}

void engine_part_tick(engine_part_t *p, int64_t time)
{
    p->st.ticks++;
    advance(p, time);
    watermark_due(p);
    /* Ticks are rare and are what moves an idle partition's time: sweep the
     * whole table, so idle keys' memory comes back without new events. A
     * call's budget also pays for what it drops and for finishing a resize
     * the drops may start, so go on until a call finds nothing to do. */
    for (int round = 0; round < 64; round++) {
        size_t dropped = keymap_expire(&p->km, cutoff_of(p), p->km.cur.cap + p->km.old.cap + 64, key_retire, p);
        if (dropped == 0 && !p->km.old.slots) break;
    }
}

void engine_tick_value(weir_buf_t *b, int64_t time)
{
    buf_appendf(b, "{\"time\":%" PRId64 "}", time);
}

int engine_tick_parse(weir_slice_t value, int64_t *time)
{
    char buf[64];
    if (value.len >= sizeof buf) return WEIR_EINVAL;
    memcpy(buf, value.ptr, value.len);
    buf[value.len] = '\0';
    long long t;
    char tail;
    if (sscanf(buf, "{\"time\":%lld}%c", &t, &tail) != 1) return WEIR_EINVAL;
    *time = t;
    return 0;
}

int engine_part_record(engine_part_t *p, uint64_t offset, int tick, weir_slice_t value,
                       engine_result_t *res, char *err, size_t errlen)
{
    if (tick) {
        int64_t t;
        if (engine_tick_parse(value, &t) != 0)
            return weir_errf(err, errlen, WEIR_EINVAL, "offset %" PRIu64 ": bad tick record", offset);
        engine_part_tick(p, t);
        return 0;
    }
    cJSON_Delete(p->doc); /* the previous event's strings are no longer referenced */
    p->doc = cJSON_ParseWithLength(value.ptr, value.len);
    if (!p->doc || !cJSON_IsObject(p->doc))
        return weir_errf(err, errlen, WEIR_EINVAL, "offset %" PRIu64 ": not a JSON object", offset);
    char why[256];
    if (spec_decode_event(p->e->src, p->doc, p->fields, why, sizeof why) != 0)
        return weir_errf(err, errlen, WEIR_EINVAL, "offset %" PRIu64 ": %s", offset, why);
    int rc = engine_part_event(p, offset, p->fields, value, res, err, errlen);
    res->json = p->doc;
    return rc ? rc : 1;
}

void engine_part_stats(const engine_part_t *p, engine_stats_t *out)
{
    engine_stats_walk_t w = ENGINE_STATS_WALK_INIT;
    while (!engine_part_stats_step(p, &w, UINT32_MAX, out)) {
    }
}

int engine_part_stats_step(const engine_part_t *p, engine_stats_walk_t *w, uint32_t budget,
                           engine_stats_t *out)
{
    void *v;
    uint32_t n = 0;
    while ((v = keymap_next(&p->km, &w->it))) {
        if (*key_inited(p->e, v)) {
            w->bytes += key_bytes(p->e, v);
            if (p->pat) w->partial += pattern_key_runs(*key_pat(p->e, v));
        }
        if (++n >= budget) return 0;
    }
    engine_part_counters(p, out);
    out->state_bytes = w->bytes + keymap_bytes(&p->km) + oc_timers_bytes(p->timers) +
                       (p->pat ? pattern_part_bytes(p->pat) : 0);
    out->partial += w->partial;
    return 1;
}

void engine_part_counters(const engine_part_t *p, engine_stats_t *out)
{
    *out = p->st;
    out->keys = keymap_count(&p->km);
    if (p->pat) {
        pattern_stats_t ps;
        pattern_part_stats(p->pat, &ps);
        out->matches = ps.matches;
        out->held = ps.held;
    }
}
