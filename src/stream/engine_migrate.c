/* engine_migrate.c — a partition's state from one plan to another (see
 * engine_migrate.h for what moves and why).
 *
 * HOW. Four maps from the new plan's indexes to the old one's (window
 * groups, last(x) slots, on-close aggregates, patterns; NONE where the new
 * plan's item is new or changed) are built once per call. Then each live
 * key of the old partition gets a value in the new partition's layout:
 * windows go through their checkpoint codec (win_encode / win_decode_in,
 * bit-exact, and the one way to re-seat a window whose records may sit in
 * the key block's inline area), last(x) values, on-close states and
 * pattern runs move by pointer. When the key layout is the same in both
 * plans (no window group, last(x) or on-close aggregate added, removed or
 * changed — a reload of patterns, derived features, rules or the model),
 * the table itself moves instead and no key block is copied. The old
 * partition is freed at the end, releasing whatever did not move. Reload
 * is rare and runs under the partition's lock: a pass over the keys.
 * Measured on the 2-core build machine with 200,000 keys of ~3.7 KB (the
 * unit test's specs A to B, and A to A2 with only patterns changed):
 * about 7 us per key key by key (mostly allocating and freeing the key
 * blocks), 1.5 us per key in place. */
#include "stream/engine_migrate.h"

#include <inttypes.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "stream/engine_int.h"

#define NONE UINT32_MAX

/* ---- what must not change ---- */

int engine_migrate_check(const engine_t *from, const engine_t *to, char *why, size_t whylen)
{
    const spec_t *a = from->spec, *b = to->spec;
    const spec_source_t *sa = from->src, *sb = to->src;
    static const char restart[] =
        "; the source's name, fields (names, types, order), key, time field and lateness and the "
        "partition count define what the log means and how keys are partitioned: changing them "
        "needs a restart, not a reload";
    if (a->nsources != b->nsources)
        return weir_errf(why, whylen, WEIR_EINVAL, "the number of sources changed (%u to %u)%s",
                         a->nsources, b->nsources, restart);
    if (strcmp(sa->name, sb->name) != 0)
        return weir_errf(why, whylen, WEIR_EINVAL, "the source's name changed (%s to %s)%s",
                         sa->name, sb->name, restart);
    if (a->partitions != b->partitions)
        return weir_errf(why, whylen, WEIR_EINVAL, "partitions changed (%u to %u)%s", a->partitions,
                         b->partitions, restart);
    if (sa->nfields != sb->nfields)
        return weir_errf(why, whylen, WEIR_EINVAL,
                         "source %s: the number of fields changed (%u to %u)%s", sa->name,
                         sa->nfields, sb->nfields, restart);
    for (uint32_t i = 0; i < sa->nfields; i++) {
        const spec_field_t *fa = &sa->fields[i], *fb = &sb->fields[i];
        if (strcmp(fa->name, fb->name) != 0)
            return weir_errf(why, whylen, WEIR_EINVAL,
                             "source %s: field %u changed from %s to %s%s", sa->name, i + 1,
                             fa->name, fb->name, restart);
        if (fa->type != fb->type)
            return weir_errf(why, whylen, WEIR_EINVAL,
                             "source %s: field %s changed type from %s to %s%s", sa->name, fa->name,
                             expr_type_name(fa->type), expr_type_name(fb->type), restart);
    }
    if (sa->key_slot != sb->key_slot)
        return weir_errf(why, whylen, WEIR_EINVAL, "source %s: the key changed from %s to %s%s",
                         sa->name, sa->fields[sa->key_slot].name, sb->fields[sb->key_slot].name,
                         restart);
    if (sa->time_slot != sb->time_slot)
        return weir_errf(why, whylen, WEIR_EINVAL,
                         "source %s: the time field changed from %s to %s%s", sa->name,
                         sa->fields[sa->time_slot].name, sb->fields[sb->time_slot].name, restart);
    if (sa->lateness_ms != sb->lateness_ms)
        return weir_errf(why, whylen, WEIR_EINVAL,
                         "source %s: lateness changed from %" PRId64 " ms to %" PRId64 " ms%s",
                         sa->name, sa->lateness_ms, sb->lateness_ms, restart);
    /* The ids decide which logged events count (engine.h step 4): as
     * the key and the lateness, what the log means. */
    if (sa->has_id != sb->has_id ||
        (sa->has_id && (sa->id_slot != sb->id_slot || sa->dedup_ms != sb->dedup_ms)))
        return weir_errf(why, whylen, WEIR_EINVAL,
                         "source %s: its id or dedup changed; which logged events are duplicates "
                         "depends on them, so changing them needs a restart, not a reload",
                         sa->name);
    return 0;
}

/* ---- maps: new plan's index -> old plan's index, or NONE ---- */

static const char *group_text(const group_t *g)
{
    return g->arg ? expr_text(g->arg) : "";
}

/* rebuilt[g]: new group g is old group m[g] with other aggregates, made
 * from the values it holds (win_rebuild) rather than moved as it is. */
static uint32_t *map_groups(const engine_t *from, const engine_t *to, uint8_t **rebuilt)
{
    uint32_t *m = weir_malloc((to->ngroups + 1) * sizeof *m);
    *rebuilt = weir_calloc(to->ngroups + 1, 1);
    for (uint32_t g = 0; g < to->ngroups; g++) {
        const group_t *n = &to->groups[g];
        m[g] = NONE;
        for (uint32_t f = 0; f < from->ngroups && m[g] == NONE; f++) {
            const group_t *o = &from->groups[f];
            if (o->conf.range != n->conf.range || o->conf.every != n->conf.every ||
                o->conf.ids != n->conf.ids || strcmp(group_text(o), group_text(n)) != 0)
                continue;
            /* The same argument over the same window: one of the plan's
             * groups (engine.c THE PLAN). Its aggregates changed if kinds
             * did (sum(x) over 1h, then max(x) over 1h added beside it). */
            if (o->conf.kinds == n->conf.kinds) {
                m[g] = f;
            } else if (win_rebuildable(&o->conf, &n->conf)) {
                m[g] = f;
                (*rebuilt)[g] = 1;
            }
        }
    }
    return m;
}

static uint32_t *map_lasts(const engine_t *from, const engine_t *to)
{
    uint32_t *m = weir_malloc((to->nprev + 1) * sizeof *m);
    for (uint32_t i = 0; i < to->nprev; i++) {
        const char *t = to->spec->aggs.v[to->prev_slots[i]].text;
        m[i] = NONE;
        for (uint32_t k = 0; k < from->nprev && m[i] == NONE; k++)
            if (!strcmp(from->spec->aggs.v[from->prev_slots[k]].text, t)) m[i] = k;
    }
    return m;
}

/* Same name and the same state: window kind, sizes and the slots its
 * events keep values for (engine_fingerprint's definition). The select
 * expressions may differ: they only combine the slots at close. */
static int same_aggregate(const spec_aggregate_t *a, const spec_aggregate_t *b)
{
    if (strcmp(a->name, b->name) != 0 || a->window != b->window || a->size_ms != b->size_ms ||
        a->every_ms != b->every_ms || a->gap_ms != b->gap_ms || a->aggs.n != b->aggs.n)
        return 0;
    for (uint32_t i = 0; i < a->aggs.n; i++)
        if (strcmp(a->aggs.v[i].text, b->aggs.v[i].text) != 0) return 0;
    return 1;
}

static uint32_t *map_aggregates(const spec_t *from, const spec_t *to)
{
    uint32_t *m = weir_malloc((to->naggregates + 1) * sizeof *m);
    for (uint32_t a = 0; a < to->naggregates; a++) {
        m[a] = NONE;
        for (uint32_t b = 0; b < from->naggregates && m[a] == NONE; b++)
            if (same_aggregate(&from->aggregates[b], &to->aggregates[a])) m[a] = b;
    }
    return m;
}

static uint32_t *map_patterns(const spec_t *from, const spec_t *to)
{
    uint32_t *m = weir_malloc((to->npatterns + 1) * sizeof *m);
    weir_buf_t x = WEIR_BUF_INIT, y = WEIR_BUF_INIT;
    for (uint32_t j = 0; j < to->npatterns; j++) {
        m[j] = NONE;
        buf_reset(&y);
        pattern_def_text(to, j, &y);
        for (uint32_t i = 0; i < from->npatterns && m[j] == NONE; i++) {
            buf_reset(&x);
            pattern_def_text(from, i, &x);
            if (x.len == y.len && !memcmp(x.data, y.data, x.len)) m[j] = i;
        }
    }
    buf_free(&x);
    buf_free(&y);
    return m;
}

void engine_migrate_describe_new(const spec_t *from, const spec_t *to, weir_buf_t *b)
{
    uint32_t *pm = map_patterns(from, to), *am = map_aggregates(from, to);
    for (uint32_t j = 0; j < to->npatterns; j++)
        if (pm[j] == NONE)
            buf_appendf(b, "%spattern '%s'", b->len ? ", " : "", to->patterns[j].name);
    for (uint32_t a = 0; a < to->naggregates; a++)
        if (am[a] == NONE)
            buf_appendf(b, "%saggregate '%s'", b->len ? ", " : "", to->aggregates[a].name);
    weir_free(pm);
    weir_free(am);
}

/* The inverse of a map (old index -> new index, or NONE). */
static uint32_t *invert(const uint32_t *m, uint32_t nto, uint32_t nfrom)
{
    uint32_t *inv = weir_malloc((nfrom + 1) * sizeof *inv);
    for (uint32_t i = 0; i < nfrom; i++)
        inv[i] = NONE;
    for (uint32_t j = 0; j < nto; j++)
        if (m[j] != NONE) inv[m[j]] = j;
    return inv;
}

/* kept / new / dropped counts of a map. */
static void count_map(const uint32_t *m, uint32_t nto, uint32_t nfrom, uint32_t *kept,
                      uint32_t *added, uint32_t *dropped)
{
    *kept = 0;
    for (uint32_t j = 0; j < nto; j++)
        *kept += m[j] != NONE;
    *added = nto - *kept;
    *dropped = nfrom - *kept;
}

/* ---- the move ---- */

typedef struct maps {
    uint32_t *groups, *lasts, *aggs, *pats;
    uint8_t *rebuilt; /* map_groups' */
} maps_t;

/* Fills the new key value nv (initialized, empty) from the old value ov,
 * taking ownership of what moves by pointer (ov's pointers are cleared so
 * that freeing ov later releases only what stayed). */
static void move_key(const engine_t *from, void *ov, engine_part_t *q, void *nv, const maps_t *m,
                     weir_buf_t *tmp)
{
    const engine_t *to = q->e;
    for (uint32_t g = 0; g < to->ngroups; g++) {
        if (m->groups[g] == NONE) continue;
        win_t *w = &key_wins(nv)[g];
        if (m->rebuilt[g]) {
            win_rebuild(w, &key_wins(ov)[m->groups[g]]); /* into engine_key_init's empty window */
            continue;
        }
        buf_reset(tmp);
        win_encode(&key_wins(ov)[m->groups[g]], tmp);
        win_free(w); /* the empty window engine_key_init made */
        size_t used = 0;
        char why[160];
        int rc = win_decode_in(w, &to->groups[g].conf, (char *)nv + to->off_area[g], tmp->data,
                               tmp->len, &used, why, sizeof why);
        /* Same definition, same conf: the codec's own output decodes. */
        weir_assert(rc == 0 && used == tmp->len);
    }
    for (uint32_t i = 0; i < to->nprev; i++) {
        if (m->lasts[i] == NONE) continue;
        prev_t *o = &key_prevs(from, ov)[m->lasts[i]];
        key_prevs(to, nv)[i] = *o; /* a long string's buffer moves with it */
        memset(o, 0, sizeof *o);
    }
    for (uint32_t a = 0; a < to->spec->naggregates; a++) {
        if (m->aggs[a] == NONE) continue;
        key_oc(to, nv)[a] = key_oc(from, ov)[m->aggs[a]];
        key_oc(from, ov)[m->aggs[a]] = NULL;
    }
    if (q->pat && from->spec->npatterns) {
        *key_pat(to, nv) = pattern_key_move(q->pat, from->spec, *key_pat(from, ov), m->pats);
        *key_pat(from, ov) = NULL; /* consumed by pattern_key_move */
    }
    if (to->dedup) { /* the same id and dedup in both (engine_migrate_check) */
        *key_dedup(to, nv) = *key_dedup(from, ov);
        *key_dedup(from, ov) = NULL;
    }
}

/* Every live key, into a new value of q's layout. */
static void move_by_key(engine_part_t *p, engine_part_t *q, const maps_t *m, int64_t cutoff,
                        engine_migrate_stats_t *st)
{
    const engine_t *from = p->e, *to = q->e;
    weir_buf_t tmp = WEIR_BUF_INIT;
    keymap_iter_t it = KEYMAP_ITER_INIT;
    void *ov;
    while ((ov = keymap_next(&p->km, &it))) {
        int64_t newest = keymap_newest(ov);
        if (!*key_inited(from, ov)) continue; /* holds nothing */
        if (newest < cutoff) {
            st->keys_dropped++; /* evicted now rather than at its next event or sweep */
            if (p->sink.changed) {
                size_t klen;
                const void *k = keymap_key(ov, &klen);
                p->sink.changed(p->sink.ctx, p->part, (weir_slice_t){k, klen});
            }
            continue;
        }
        /* Every live key moves, even one whose moved state is empty: it
         * holds the key's newest time (TTL), and an event held for time
         * order finds its key's pattern state through it at release. */
        size_t klen;
        const void *k = keymap_key(ov, &klen);
        int created;
        void *nv = keymap_put(&q->km, k, klen, INT64_MIN, NULL, NULL, &created);
        weir_assert(created);
        engine_key_init(to, nv);
        keymap_touch(nv, newest);
        move_key(from, ov, q, nv, m, &tmp);
        st->keys_moved++;
    }
    buf_free(&tmp);
}

/* The new plan lays a key's value out exactly as the old one: the same
 * window groups, last(x) slots and on-close aggregates in the same order,
 * and patterns in both or in neither (engine.c THE PLAN). Then only what
 * points at the old plan changes (a reload that touches patterns,
 * features made of existing aggregates, rules or the model). */
static int same_layout(const engine_t *from, const engine_t *to, const maps_t *m)
{
    if (from->ngroups != to->ngroups || from->nprev != to->nprev ||
        from->spec->naggregates != to->spec->naggregates ||
        !from->spec->npatterns != !to->spec->npatterns)
        return 0;
    for (uint32_t g = 0; g < to->ngroups; g++)
        if (m->groups[g] != g || m->rebuilt[g]) return 0;
    for (uint32_t i = 0; i < to->nprev; i++)
        if (m->lasts[i] != i) return 0;
    for (uint32_t a = 0; a < to->spec->naggregates; a++)
        if (m->aggs[a] != a) return 0;
    weir_assert(from->vsize == to->vsize && from->off_pat == to->off_pat);
    return 1;
}

/* The whole table moves to q as it is: each live key's windows are told
 * their new (equal) conf and its pattern state is renumbered; a stale key
 * is emptied where it stands (its entry goes with the next sweep or put).
 * No key block is copied, so the pause is a pass over the keys. */
static void move_in_place(engine_part_t *p, engine_part_t *q, const maps_t *m, int64_t cutoff,
                          engine_migrate_stats_t *st)
{
    const engine_t *from = p->e, *to = q->e;
    keymap_iter_t it = KEYMAP_ITER_INIT;
    void *v;
    while ((v = keymap_next(&p->km, &it))) {
        if (!*key_inited(from, v)) continue;
        if (keymap_newest(v) < cutoff) {
            /* With p's plan (it counts the eviction in p); then zeroed, as
             * keymap_put leaves a reset value, for the key's next event. */
            engine_key_release(v, p);
            memset(v, 0, from->vsize);
            st->keys_dropped++;
            continue;
        }
        for (uint32_t g = 0; g < to->ngroups; g++)
            key_wins(v)[g].conf = &to->groups[g].conf;
        if (q->pat)
            *key_pat(to, v) = pattern_key_move(q->pat, from->spec, *key_pat(from, v), m->pats);
        st->keys_moved++;
    }
    keymap_free(&q->km, NULL, NULL); /* empty */
    q->km = p->km;
    keymap_init(&p->km, (uint32_t)from->vsize);
}

engine_part_t *engine_part_migrate(engine_part_t *p, const engine_t *to, const engine_sink_t *sink,
                                   engine_migrate_stats_t *st)
{
    const engine_t *from = p->e;
    char why[512];
    weir_assert(engine_migrate_check(from, to, why, sizeof why) == 0);
    engine_migrate_stats_t local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    const spec_t *fs = from->spec, *ts = to->spec;
    maps_t m = {NULL, map_lasts(from, to), map_aggregates(fs, ts), map_patterns(fs, ts), NULL};
    m.groups = map_groups(from, to, &m.rebuilt);
    count_map(m.groups, to->ngroups, from->ngroups, &st->groups_kept, &st->groups_new,
              &st->groups_dropped);
    for (uint32_t g = 0; g < to->ngroups; g++)
        st->groups_rebuilt += m.rebuilt[g];
    count_map(m.lasts, to->nprev, from->nprev, &st->lasts_kept, &st->lasts_new, &st->lasts_dropped);
    count_map(m.aggs, ts->naggregates, fs->naggregates, &st->aggregates_kept, &st->aggregates_new,
              &st->aggregates_dropped);
    count_map(m.pats, ts->npatterns, fs->npatterns, &st->patterns_kept, &st->patterns_new,
              &st->patterns_dropped);

    engine_part_t *q = engine_part_new(to, p->part, sink);
    q->defer_closes = p->defer_closes;
    /* A key is stale (its state already gone) below either plan's cutoff:
     * under the old one it would be reset at its next event, under the new
     * one too (engine.c TTL). */
    int64_t cutoff = INT64_MIN;
    if (p->wm != INT64_MIN) {
        int64_t co = p->wm - from->ttl, cn = p->wm - to->ttl;
        cutoff = co > cn ? co : cn;
    }
    if (same_layout(from, to, &m)) {
        st->in_place = 1;
        move_in_place(p, q, &m, cutoff, st);
    } else {
        move_by_key(p, q, &m, cutoff, st);
    }

    uint32_t *ai_inv = invert(m.aggs, ts->naggregates, fs->naggregates);
    st->timers_kept = oc_timers_move(q->timers, p->timers, ai_inv);
    weir_free(ai_inv);
    if (q->pat && p->pat) {
        pattern_move_stats_t ps;
        pattern_part_move(q->pat, p->pat, m.pats, &ps);
        st->held_kept = ps.held_kept;
        st->held_dropped = ps.held_dropped;
        st->deadlines_kept = ps.due_kept;
        st->deadlines_dropped = ps.due_dropped;
    } else if (p->pat) {
        pattern_stats_t ps;
        pattern_part_stats(p->pat, &ps);
        st->held_dropped = ps.held;
    }

    /* PARTIAL WINDOWS (engine.c): a kept aggregate keeps its mark; one that
     * starts empty here misses the events applied so far */
    for (uint32_t a = 0; a < ts->naggregates; a++)
        q->agg_since[a] = m.aggs[a] != NONE ? p->agg_since[m.aggs[a]] : p->max_time;
    q->max_time = p->max_time;
    q->wm = p->wm;
    q->seq = p->seq;
    uint64_t evicted = p->st.evicted;
    q->st = p->st;
    weir_free(m.groups);
    weir_free(m.rebuilt);
    weir_free(m.lasts);
    weir_free(m.aggs);
    weir_free(m.pats);
    /* Freeing p counts its keys as evicted in p; q counts only the stale
     * ones, which a run under either spec would have evicted too (the
     * in-place move counted them in p already). */
    engine_part_free(p);
    q->st.evicted = evicted + (st->in_place ? 0 : st->keys_dropped);
    return q;
}
