/* pattern.c — the pattern automata (semantics in pattern.h).
 *
 * STATE. A key's pattern_key_t holds, per pattern, its runs in creation
 * order and its recent match times (sorted; only for patterns that a
 * matches() feature counts, trimmed below W − the longest such window). It
 * is allocated when a key first starts a run or records a match and freed
 * when it holds neither, so keys that never start a pattern cost one NULL
 * pointer. A run keeps its step, count, flags, first/previous/deadline
 * times, the events it took and the values of the STEP.field binds
 * (strings copied into buffers the run owns).
 *
 * The events a run took are held once per key and pattern, shared by the
 * runs that took them (pattern_events.h, SHARED EVENTS).
 *
 * The partition holds what is not a key's: events waiting for the
 * watermark (time order), as a min-heap on (time, offset), and deadlines of
 * runs waiting on a trailing `not`, as a min-heap on (deadline, push order).
 * A deadline entry names the key and pattern; when it is due, every run of
 * that key and pattern whose deadline has passed is confirmed, so an entry
 * whose run died meanwhile costs nothing but its pop.
 *
 * CONDITIONS. A step condition that names no step depends on the event
 * only: it is evaluated at most once per event, when first needed (the
 * result is kept with a held event) — per run only when it reads
 * STEP.field. An event that no step of any time-order pattern can be
 * affected by (every condition false, none reading steps, and no strict
 * step that it would interrupt) is not held at all: a run would skip it.
 *
 * Why a held event may not be dropped when its key has no run yet: an
 * event of the same key with an earlier time can still arrive (within the
 * lateness) and start one, which the held event would then extend. */
#include "stream/pattern.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "stream/pattern_events.h"

enum { RUN_CONTINUE, RUN_DEAD, RUN_COMPLETE, RUN_WAITING };

/* A step condition's result for one event: evaluated when first needed
 * (most events meet only the first step of any pattern), kept for the
 * other runs; PER_RUN when it reads steps. COND_SKIP, on a held event's
 * first step of a pattern only: the pattern does not see the event — it
 * was added by a reload after the event arrived (pattern_part_move), and
 * a new pattern's state begins with the events after the reload. */
enum { COND_NO = 0, COND_YES = 1, COND_PER_RUN = 2, COND_UNKNOWN = 3, COND_SKIP = 4 };

/* A bound string: up to BSTR_INLINE bytes in place, longer ones on the
 * heap (cap bytes, kept for reuse). */
#define BSTR_INLINE 16
typedef struct bstr {
    char *p;
    uint32_t cap;
    char in[BSTR_INLINE];
} bstr_t;

typedef struct run {
    uint32_t step, count;
    uint8_t blocked, skipped, waiting;
    int64_t first, last, deadline;
    pev_list_t ev; /* the events taken (pattern_events.h) */
    /* then: expr_value_t binds[nbinds], bstr_t strs[nbinds] */
} run_t;

static inline expr_value_t *run_binds(run_t *r)
{
    return (expr_value_t *)(r + 1);
}
static inline bstr_t *run_strs(run_t *r, uint32_t nbinds)
{
    return (bstr_t *)(run_binds(r) + nbinds);
}

typedef struct pat_one {
    run_t **runs; /* = inl until more than 2 runs */
    uint32_t nruns, capruns;
    run_t *inl[2];
    int64_t *mt; /* match times, ascending */
    uint32_t nmt, capmt;
    uint64_t nnodes; /* the runs' nodes, for pattern_key_bytes */
} pat_one_t;

struct pattern_key {
    uint32_t n; /* patterns */
    pat_one_t one[];
};

/* An event held for time order. */
typedef struct held {
    int64_t t;
    uint64_t off;
    uint32_t klen;
    uint32_t bytes;
    expr_value_t *fields;
    uint8_t *conds; /* per global step */
    char *key;
    /* The key's state slot, or NULL (held events restored from a
     * checkpoint): looked up at release then. Stable while the event is
     * held: the key's newest time is at least the event's, so the key
     * cannot expire before the watermark passes it (TTL >= lateness). */
    pattern_key_t **slot;
} held_t;

typedef struct due {
    int64_t d;
    uint64_t seq;
    uint32_t pi, klen;
    char *key;
} due_t;

/* A heap entry of a held event. */
typedef struct held_ref {
    int64_t t;
    uint64_t off;
    held_t *h;
} held_ref_t;

/* One event as the automata see it. */
typedef struct ev {
    int64_t t;
    uint64_t off;
    const expr_value_t *fields;
    uint8_t *conds; /* per global step, filled in as needed */
} ev_t;

struct pattern_part {
    const spec_t *s;
    uint32_t nsteps; /* over all patterns */
    uint32_t *base;  /* global index of pattern i's step 0 */
    uint32_t maxbinds, maxsel;
    int time_strict; /* a time-order pattern has a strict step: hold every event */
    int any_time;
    int64_t *maxd;    /* per pattern: longest matches() window, 0 if none */
    held_ref_t *held; /* the heap; its order keys inline, no pointer chasing */
    uint32_t nheld, capheld;
    size_t held_bytes;
    /* Blocks of HELD_BLOCK bytes for held events that fit, kept for reuse:
     * every event may be held, so malloc per event would cost more than the
     * patterns themselves. At most HELD_SPARE wait here unused (events are
     * released and held one record at a time: a few spares carry the churn). */
    void **spare;
    uint32_t nspare;
    due_t *due;
    uint32_t ndue, capdue;
    uint64_t dseq;
    uint8_t *conds; /* this event's condition results */
    pev_map_t share; /* during a feed: a run's tail -> the node of the event after it */
    uint64_t *offs; /* a run's offsets in order (matched) */
    uint32_t capoffs;
    expr_value_t *nullbinds;
    expr_value_t *vals;
    weir_buf_t scratch, evbuf;
    int64_t wm;
    uint64_t matches;
};

/* ---- held events' memory ------------------------------------------------------ */

#define HELD_BLOCK 256
#define HELD_SPARE 256

static held_t *held_alloc(pattern_part_t *pp, size_t bytes)
{
    if (bytes > HELD_BLOCK) return weir_malloc(bytes);
    if (pp->nspare) return pp->spare[--pp->nspare];
    return weir_malloc(HELD_BLOCK);
}

static void held_release(pattern_part_t *pp, held_t *h)
{
    if (h->bytes <= HELD_BLOCK && pp->nspare < HELD_SPARE) {
        if (!pp->spare) pp->spare = weir_malloc(HELD_SPARE * sizeof *pp->spare);
        pp->spare[pp->nspare++] = h;
        return;
    }
    weir_free(h);
}

/* ---- heaps ------------------------------------------------------------------ */

static int held_less(const held_ref_t *a, const held_ref_t *b)
{
    return a->t < b->t || (a->t == b->t && a->off < b->off);
}

static void held_push(pattern_part_t *pp, held_t *h)
{
    if (pp->nheld == pp->capheld) {
        pp->capheld = pp->capheld ? pp->capheld * 2 : 64;
        pp->held = weir_realloc(pp->held, pp->capheld * sizeof *pp->held);
    }
    held_ref_t e = {h->t, h->off, h};
    uint32_t i = pp->nheld++;
    while (i > 0) {
        uint32_t up = (i - 1) / 2;
        if (!held_less(&e, &pp->held[up])) break;
        pp->held[i] = pp->held[up];
        i = up;
    }
    pp->held[i] = e;
}

static held_t *held_pop(pattern_part_t *pp)
{
    held_t *top = pp->held[0].h;
    held_ref_t last = pp->held[--pp->nheld];
    uint32_t i = 0, n = pp->nheld;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && held_less(&pp->held[c + 1], &pp->held[c])) c++;
        if (!held_less(&pp->held[c], &last)) break;
        pp->held[i] = pp->held[c];
        i = c;
    }
    if (n) pp->held[i] = last;
    return top;
}

static int due_less(const due_t *a, const due_t *b)
{
    return a->d < b->d || (a->d == b->d && a->seq < b->seq);
}

static void due_push(pattern_part_t *pp, due_t d)
{
    if (pp->ndue == pp->capdue) {
        pp->capdue = pp->capdue ? pp->capdue * 2 : 64;
        pp->due = weir_realloc(pp->due, pp->capdue * sizeof *pp->due);
    }
    uint32_t i = pp->ndue++;
    while (i > 0) {
        uint32_t up = (i - 1) / 2;
        if (!due_less(&d, &pp->due[up])) break;
        pp->due[i] = pp->due[up];
        i = up;
    }
    pp->due[i] = d;
}

static due_t due_pop(pattern_part_t *pp)
{
    due_t top = pp->due[0], last = pp->due[--pp->ndue];
    uint32_t i = 0, n = pp->ndue;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && due_less(&pp->due[c + 1], &pp->due[c])) c++;
        if (!due_less(&pp->due[c], &last)) break;
        pp->due[i] = pp->due[c];
        i = c;
    }
    if (n) pp->due[i] = last;
    return top;
}

/* ---- partition ---------------------------------------------------------------- */

pattern_part_t *pattern_part_new(const spec_t *s)
{
    pattern_part_t *pp = weir_calloc(1, sizeof *pp);
    pp->s = s;
    pp->wm = INT64_MIN;
    pp->base = weir_calloc(s->npatterns + 1, sizeof *pp->base);
    pp->maxd = weir_calloc(s->npatterns + 1, sizeof *pp->maxd);
    uint32_t maxsel = 0;
    for (uint32_t i = 0; i < s->npatterns; i++) {
        const spec_pattern_t *p = &s->patterns[i];
        pp->base[i] = pp->nsteps;
        pp->nsteps += p->nsteps;
        if (p->nbinds > pp->maxbinds) pp->maxbinds = p->nbinds;
        if (p->out.nselect > maxsel) maxsel = p->out.nselect;
        if (p->order == SPEC_ORDER_TIME) {
            pp->any_time = 1;
            for (uint32_t j = 0; j < p->nsteps; j++)
                pp->time_strict |= p->steps[j].strict;
        }
    }
    for (uint32_t a = 0; a < s->aggs.n; a++)
        if (s->aggs.v[a].kind == EXPR_AGG_MATCHES &&
            s->aggs.v[a].window_ms > pp->maxd[s->aggs.v[a].pattern])
            pp->maxd[s->aggs.v[a].pattern] = s->aggs.v[a].window_ms;
    pp->maxsel = maxsel;
    pp->conds = weir_calloc(pp->nsteps + 1, 1);
    pp->nullbinds = weir_calloc(pp->maxbinds + 1, sizeof *pp->nullbinds);
    pp->vals = weir_calloc(maxsel + 2, sizeof *pp->vals);
    buf_reserve(&pp->scratch, 256);
    return pp;
}

void pattern_part_free(pattern_part_t *pp)
{
    if (!pp) return;
    for (uint32_t i = 0; i < pp->nheld; i++)
        weir_free(pp->held[i].h);
    for (uint32_t i = 0; i < pp->nspare; i++)
        weir_free(pp->spare[i]);
    weir_free(pp->spare);
    for (uint32_t i = 0; i < pp->ndue; i++)
        weir_free(pp->due[i].key);
    weir_free(pp->held);
    weir_free(pp->due);
    weir_free(pp->base);
    weir_free(pp->maxd);
    weir_free(pp->conds);
    pev_map_free(&pp->share);
    weir_free(pp->offs);
    weir_free(pp->nullbinds);
    weir_free(pp->vals);
    buf_free(&pp->scratch);
    buf_free(&pp->evbuf);
    weir_free(pp);
}

size_t pattern_part_bytes(const pattern_part_t *pp)
{
    size_t b = pp->capheld * sizeof *pp->held + pp->held_bytes + pp->capdue * sizeof *pp->due +
               (size_t)pp->nspare * HELD_BLOCK + (pp->spare ? HELD_SPARE * sizeof *pp->spare : 0) +
               pev_map_bytes(&pp->share);
    for (uint32_t i = 0; i < pp->ndue; i++)
        b += pp->due[i].klen;
    return b;
}

void pattern_part_stats(const pattern_part_t *pp, pattern_stats_t *out)
{
    out->matches = pp->matches;
    out->held = pp->nheld;
}

/* ---- conditions -------------------------------------------------------------- */

/* Evaluates a condition; lower() results go to the scratch, which grows
 * until they fit (WEIR_ETOOBIG is the only failure of expr_eval). */
static expr_value_t eval(pattern_part_t *pp, const expr_t *x, const expr_value_t *fields,
                         const expr_value_t *binds)
{
    for (;;) {
        expr_env_t env = {.fields = fields,
                          .extras = binds,
                          .scratch = pp->scratch.data,
                          .scratch_cap = pp->scratch.cap};
        expr_value_t v;
        if (expr_eval(x, &env, &v) == 0) return v;
        buf_reserve(&pp->scratch, pp->scratch.cap * 2);
    }
}

/* Evaluates pattern p's emit fields into pp->vals. They share the scratch
 * (one may hold another's lower() result), so when it has to grow, all of
 * them are evaluated again: the old results pointed into the old buffer. */
static void eval_emit(pattern_part_t *pp, const spec_pattern_t *p, const expr_value_t *binds)
{
    for (;;) {
        expr_env_t env = {
            .extras = binds, .scratch = pp->scratch.data, .scratch_cap = pp->scratch.cap};
        uint32_t i = 0;
        while (i < p->out.nselect && expr_eval(p->out.select[i].expr, &env, &pp->vals[i]) == 0)
            i++;
        if (i == p->out.nselect) return;
        buf_reserve(&pp->scratch, pp->scratch.cap * 2);
    }
}

static int truth(const expr_value_t *v)
{
    return v->type == EXPR_BOOL && v->as.b;
}

/* Condition of step j of pattern pi for event e, given a run's binds. */
static int cond(pattern_part_t *pp, uint32_t pi, uint32_t j, const ev_t *e,
                const expr_value_t *binds)
{
    const spec_step_t *st = &pp->s->patterns[pi].steps[j];
    uint8_t *c = &e->conds[pp->base[pi] + j];
    if (*c == COND_UNKNOWN) {
        if (st->refs) {
            *c = COND_PER_RUN;
        } else {
            expr_value_t v = eval(pp, st->cond, e->fields, pp->nullbinds);
            *c = truth(&v) ? COND_YES : COND_NO;
        }
    }
    if (*c != COND_PER_RUN) return *c;
    expr_value_t v = eval(pp, st->cond, e->fields, binds);
    return truth(&v);
}

/* Whether pattern pi may have a use for event e (time order, held until
 * then): a step reading other steps may, whatever runs the key will have
 * when e's turn comes; otherwise only if some step's condition holds. */
static int may_use(pattern_part_t *pp, uint32_t pi, const ev_t *e)
{
    const spec_pattern_t *p = &pp->s->patterns[pi];
    for (uint32_t j = 0; j < p->nsteps; j++)
        if (p->steps[j].refs || cond(pp, pi, j, e, pp->nullbinds)) return 1;
    return 0;
}

/* ---- runs ------------------------------------------------------------------------- */

static size_t run_size(uint32_t nbinds)
{
    return sizeof(run_t) + nbinds * (sizeof(expr_value_t) + sizeof(bstr_t));
}

static run_t *run_new(const spec_pattern_t *p)
{
    run_t *r = weir_calloc(1, run_size(p->nbinds));
    for (uint32_t b = 0; b < p->nbinds; b++)
        run_binds(r)[b] = expr_null();
    return r;
}

/* Frees run r of pattern p, whose nodes are in o. */
static void run_free(const spec_pattern_t *p, pat_one_t *o, run_t *r)
{
    bstr_t *st = run_strs(r, p->nbinds);
    for (uint32_t b = 0; b < p->nbinds; b++)
        if (st[b].p != st[b].in) weir_free(st[b].p);
    pev_drop(&o->nnodes, &r->ev);
    weir_free(r);
}

static void bind_store(run_t *r, uint32_t nbinds, uint32_t b, const expr_value_t *x)
{
    expr_value_t *v = &run_binds(r)[b];
    if (x->type != EXPR_STRING) {
        *v = *x;
        return;
    }
    bstr_t *s = &run_strs(r, nbinds)[b];
    if (!s->p) {
        s->p = s->in;
        s->cap = BSTR_INLINE;
    }
    if (x->as.s.len > s->cap) {
        if (s->p == s->in) s->p = NULL;
        s->cap = (uint32_t)x->as.s.len;
        s->p = weir_realloc(s->p, s->cap);
    }
    if (x->as.s.len) memcpy(s->p, x->as.s.ptr, x->as.s.len);
    *v = expr_string(s->p, x->as.s.len);
}

/* Step j of pattern p takes event e into run r (o: the pattern's state in
 * the key being fed). */
static void take(pattern_part_t *pp, pat_one_t *o, const spec_pattern_t *p, run_t *r, uint32_t j,
                 const ev_t *e)
{
    if (j != r->step) {
        r->step = j;
        r->count = 1;
    } else {
        r->count++;
    }
    r->last = e->t;
    r->skipped = 0;
    r->blocked = 0;
    pev_take(&pp->share, &o->nnodes, &r->ev, e->off);
    for (uint32_t b = 0; b < p->nbinds; b++)
        if (p->binds[b].step == j) bind_store(r, p->nbinds, b, &e->fields[p->binds[b].field]);
}

static uint32_t next_pos(const spec_pattern_t *p, uint32_t j)
{
    for (j++; j < p->nsteps && p->steps[j].negated; j++) {
    }
    return j;
}

/* Whether a step that took count events may be left: it has its min, and
 * an optional `times: n` has none or all n (spec_step_t.full). */
static inline int step_done(const spec_step_t *st, uint32_t count)
{
    return count >= st->min && (count == 0 || count >= st->full);
}

/* The steps that may take the run's next event, in the order they try. */
static uint32_t candidates(const spec_pattern_t *p, const run_t *r, uint32_t *c)
{
    uint32_t n = 0;
    const spec_step_t *cur = &p->steps[r->step];
    if (r->count < cur->max) c[n++] = r->step;
    if (step_done(cur, r->count) && !r->blocked) {
        for (uint32_t j = next_pos(p, r->step); j < p->nsteps; j = next_pos(p, j)) {
            c[n++] = j;
            if (p->steps[j].min > 0) break;
        }
    }
    return n;
}

/* Whether time t is within the pattern's `within` of the run's first event
 * and within step st's gap of its previous one. In arrival order an event
 * may be earlier than those: the bounds hold on either side (a small buy at
 * 12:20 then a big one stamped 12:00 matched within 2m, and a buy stamped
 * two hours before a cart cancelled its trailing not: the differences were
 * negative). In time order they never are. */
static int in_bounds(const spec_pattern_t *p, const run_t *r, const spec_step_t *st, int64_t t)
{
    return llabs(t - r->first) <= p->within_ms && (!st->gap_ms || llabs(t - r->last) <= st->gap_ms);
}

static int can_fill(pattern_part_t *pp, uint32_t pi, const run_t *r, uint32_t j, const ev_t *e)
{
    const spec_pattern_t *p = &pp->s->patterns[pi];
    const spec_step_t *st = &p->steps[j];
    if (!in_bounds(p, r, st, e->t) || (st->strict && r->skipped)) return 0;
    return cond(pp, pi, j, e, run_binds((run_t *)r));
}

/* After a take: is the run a match, waiting on a trailing not, or going on? */
static int after_take(const spec_pattern_t *p, run_t *r)
{
    if (!step_done(&p->steps[r->step], r->count)) return RUN_CONTINUE;
    for (uint32_t j = next_pos(p, r->step); j < p->nsteps; j = next_pos(p, j))
        if (p->steps[j].min > 0) return RUN_CONTINUE;
    const spec_step_t *last = &p->steps[p->nsteps - 1];
    if (!last->negated) return RUN_COMPLETE;
    r->waiting = 1;
    r->deadline = r->first + p->within_ms;
    if (last->gap_ms && r->last + last->gap_ms < r->deadline) r->deadline = r->last + last->gap_ms;
    return RUN_WAITING;
}

static int step_run(pattern_part_t *pp, uint32_t pi, pat_one_t *o, run_t *r, const ev_t *e)
{
    const spec_pattern_t *p = &pp->s->patterns[pi];
    if (r->waiting) {
        uint32_t n = p->nsteps - 1;
        /* (within its bounds, t is at or before the deadline: after_take) */
        if (in_bounds(p, r, &p->steps[n], e->t) && cond(pp, pi, n, e, run_binds(r)))
            return RUN_DEAD;
        return RUN_CONTINUE;
    }
    uint32_t c[64];
    uint32_t n = candidates(p, r, c);
    for (uint32_t k = 0; k < n; k++) {
        if (!can_fill(pp, pi, r, c[k], e)) continue;
        take(pp, o, p, r, c[k], e);
        return after_take(p, r);
    }
    r->skipped = 1;
    const spec_step_t *cur = &p->steps[r->step];
    uint32_t nx = r->step + 1;
    if (step_done(cur, r->count) && nx + 1 < p->nsteps && p->steps[nx].negated) {
        const spec_step_t *ns = &p->steps[nx];
        if ((!ns->gap_ms || llabs(e->t - r->last) <= ns->gap_ms) &&
            cond(pp, pi, nx, e, run_binds(r)))
            r->blocked = 1;
    }
    n = candidates(p, r, c);
    for (uint32_t k = 0; k < n; k++)
        if (!p->steps[c[k]].strict) return RUN_CONTINUE;
    return RUN_DEAD;
}

/* ---- keys --------------------------------------------------------------------------- */

static pattern_key_t *key_new(const spec_t *s)
{
    pattern_key_t *k = weir_calloc(1, sizeof *k + s->npatterns * sizeof(pat_one_t));
    k->n = s->npatterns;
    return k;
}

void pattern_key_free(const spec_t *s, pattern_key_t *k)
{
    if (!k) return;
    for (uint32_t i = 0; i < k->n; i++) {
        pat_one_t *o = &k->one[i];
        for (uint32_t j = 0; j < o->nruns; j++)
            run_free(&s->patterns[i], o, o->runs[j]);
        weir_assert(o->nnodes == 0); /* every node is some run's */
        if (o->runs != o->inl) weir_free(o->runs);
        weir_free(o->mt);
    }
    weir_free(k);
}

/* Frees a key's state once it holds nothing. */
static void key_tidy(pattern_part_t *pp, pattern_key_t **slot)
{
    pattern_key_t *k = *slot;
    if (!k) return;
    for (uint32_t i = 0; i < k->n; i++)
        if (k->one[i].nruns || k->one[i].nmt) return;
    pattern_key_free(pp->s, k);
    *slot = NULL;
}

uint64_t pattern_key_runs(const pattern_key_t *k)
{
    uint64_t n = 0;
    for (uint32_t i = 0; k && i < k->n; i++)
        n += k->one[i].nruns;
    return n;
}

size_t pattern_key_bytes(const spec_t *s, const pattern_key_t *k)
{
    if (!k) return 0;
    size_t b = sizeof *k + k->n * sizeof(pat_one_t);
    for (uint32_t i = 0; i < k->n; i++) {
        const pat_one_t *o = &k->one[i];
        uint32_t nb = s->patterns[i].nbinds;
        b += (o->runs != o->inl ? o->capruns * sizeof *o->runs : 0) + o->capmt * sizeof *o->mt +
             o->nnodes * pev_node_bytes();
        for (uint32_t j = 0; j < o->nruns; j++) {
            run_t *r = o->runs[j];
            b += run_size(nb);
            for (uint32_t x = 0; x < nb; x++)
                if (run_strs(r, nb)[x].p != run_strs(r, nb)[x].in) b += run_strs(r, nb)[x].cap;
        }
    }
    return b;
}

static void record_time(pattern_part_t *pp, pat_one_t *o, uint32_t pi, int64_t t)
{
    int64_t d = pp->maxd[pi];
    if (!d) return;
    /* Trim what no later query can count: queries are at times >= W, or
     * (engine_part_lookup_newest, the online store) at the key's newest
     * match at least, which a match found at the watermark puts below W. */
    int64_t q = pp->wm < t ? pp->wm : t;
    uint32_t drop = 0;
    while (drop < o->nmt && pp->wm != INT64_MIN && o->mt[drop] <= q - d)
        drop++;
    if (drop) {
        memmove(o->mt, o->mt + drop, (o->nmt - drop) * sizeof *o->mt);
        o->nmt -= drop;
    }
    if (o->nmt == o->capmt) {
        o->capmt = o->capmt ? o->capmt * 2 : 4;
        o->mt = weir_realloc(o->mt, o->capmt * sizeof *o->mt);
    }
    uint32_t i = o->nmt;
    while (i > 0 && o->mt[i - 1] > t) {
        o->mt[i] = o->mt[i - 1];
        i--;
    }
    o->mt[i] = t;
    o->nmt++;
}

int64_t pattern_count(const pattern_key_t *k, uint32_t pi, int64_t t, int64_t d)
{
    if (!k) return 0;
    const pat_one_t *o = &k->one[pi];
    int64_t n = 0;
    for (uint32_t i = o->nmt; i > 0 && o->mt[i - 1] > t - d; i--)
        if (o->mt[i - 1] <= t) n++;
    return n;
}

int64_t pattern_newest_match(const pattern_key_t *k)
{
    int64_t t = INT64_MIN;
    for (uint32_t i = 0; k && i < k->n; i++)
        if (k->one[i].nmt && k->one[i].mt[k->one[i].nmt - 1] > t)
            t = k->one[i].mt[k->one[i].nmt - 1];
    return t;
}

/* A match of run r: counted, its time recorded, its emit written. */
static void matched(pattern_part_t *pp, uint32_t pi, pat_one_t *o, run_t *r, weir_slice_t key,
                    int64_t time, const pattern_io_t *io)
{
    const spec_pattern_t *p = &pp->s->patterns[pi];
    pp->matches++;
    record_time(pp, o, pi, time);
    /* (a pattern no matches() counts changes no feature) */
    if (pp->maxd[pi] && io->key_matched) io->key_matched(io->ctx, key);
    if (!p->has_emit || !io->match) return;
    eval_emit(pp, p, run_binds(r));
    buf_reset(&pp->evbuf);
    buf_append(&pp->evbuf, "[", 1);
    const uint64_t *offs = pev_offsets(&r->ev, &pp->offs, &pp->capoffs);
    for (uint32_t i = 0; i < r->ev.n; i++)
        buf_appendf(&pp->evbuf, "%s%" PRIu64, i ? "," : "", offs[i]);
    buf_append(&pp->evbuf, "]", 1);
    pp->vals[p->out.nselect] = expr_string(pp->evbuf.data, pp->evbuf.len);
    pp->vals[p->out.nselect + 1] = expr_int(pp->wm);
    io->match(io->ctx, p, key, r->first, time, pp->vals);
}

static void push_due(pattern_part_t *pp, uint32_t pi, const run_t *r, weir_slice_t key)
{
    char *kc = weir_malloc(key.len ? key.len : 1);
    if (key.len) memcpy(kc, key.ptr, key.len);
    due_push(pp, (due_t){r->deadline, pp->dseq++, pi, (uint32_t)key.len, kc});
}

static void run_append(pat_one_t *o, run_t *r)
{
    if (!o->runs) {
        o->runs = o->inl;
        o->capruns = 2;
    }
    if (o->nruns == o->capruns) {
        o->capruns *= 2;
        if (o->runs == o->inl) {
            o->runs = weir_malloc(o->capruns * sizeof *o->runs);
            memcpy(o->runs, o->inl, sizeof o->inl);
        } else {
            o->runs = weir_realloc(o->runs, o->capruns * sizeof *o->runs);
        }
    }
    o->runs[o->nruns++] = r;
}

/* Feeds event e to pattern pi of the key at slot. bound: runs whose
 * within ended before it cannot take this or any later fed event. Returns
 * 1 if e completed a match. */
static int feed(pattern_part_t *pp, uint32_t pi, pattern_key_t **slot, weir_slice_t key,
                const ev_t *e, int64_t bound, const pattern_io_t *io)
{
    const spec_pattern_t *p = &pp->s->patterns[pi];
    int done = 0;
    if (*slot) {
        pat_one_t *o = &(*slot)->one[pi];
        uint32_t w = 0;
        for (uint32_t i = 0; i < o->nruns; i++) {
            run_t *r = o->runs[i];
            int res = !r->waiting && r->first + p->within_ms < bound ? RUN_DEAD
                                                                     : step_run(pp, pi, o, r, e);
            if (res == RUN_COMPLETE) {
                matched(pp, pi, o, r, key, e->t, io);
                done = 1;
            }
            if (res == RUN_DEAD || res == RUN_COMPLETE) {
                run_free(p, o, r);
                continue;
            }
            if (res == RUN_WAITING) push_due(pp, pi, r, key);
            o->runs[w++] = r;
        }
        o->nruns = w;
    }
    if (cond(pp, pi, 0, e, pp->nullbinds)) {
        run_t *r = run_new(p);
        r->first = e->t;
        if (!*slot) *slot = key_new(pp->s);
        pat_one_t *o = &(*slot)->one[pi];
        take(pp, o, p, r, 0, e);
        int res = after_take(p, r);
        if (res == RUN_COMPLETE) {
            matched(pp, pi, o, r, key, e->t, io);
            run_free(p, o, r);
            done = 1;
        } else {
            if (res == RUN_WAITING) push_due(pp, pi, r, key);
            run_append(o, r);
        }
    }
    /* (a map with nodes means the key had runs: *slot is set) */
    if (pp->share.n) pev_feed_end(&pp->share, &(*slot)->one[pi].nnodes);
    key_tidy(pp, slot);
    return done;
}

/* ---- events and the watermark ---------------------------------------------------- */

static held_t *held_make(pattern_part_t *pp, int64_t t, uint64_t off, weir_slice_t key,
                         const uint8_t *conds, const expr_value_t *fields);

void pattern_event(pattern_part_t *pp, pattern_key_t **slot, weir_slice_t key, int64_t time,
                   uint64_t offset, const expr_value_t *fields, int64_t wm, uint8_t *flags,
                   const pattern_io_t *io)
{
    const spec_t *s = pp->s;
    pp->wm = wm;
    memset(pp->conds, COND_UNKNOWN, pp->nsteps);
    ev_t e = {time, offset, fields, pp->conds};
    int hold = 0;
    for (uint32_t pi = 0; pi < s->npatterns; pi++) {
        const spec_pattern_t *p = &s->patterns[pi];
        flags[pi] = 0;
        if (p->order == SPEC_ORDER_TIME) {
            if (time <= wm) {
                feed(pp, pi, slot, key, &e, time, io);
            } else if (!hold) {
                hold = may_use(pp, pi, &e);
            }
            continue;
        }
        /* Nothing to do for a key with no run that this event cannot start. */
        if ((!*slot || !(*slot)->one[pi].nruns) && !cond(pp, pi, 0, &e, pp->nullbinds)) continue;
        flags[pi] = (uint8_t)feed(pp, pi, slot, key, &e, wm, io);
    }
    if (!(hold || (pp->time_strict && time > wm))) return;
    held_t *h = held_make(pp, time, offset, key, pp->conds, fields);
    h->slot = slot;
    held_push(pp, h);
}

/* Held until the watermark reaches it: one block with the fields, the
 * condition results, the key and the strings. */
static held_t *held_make(pattern_part_t *pp, int64_t t, uint64_t off, weir_slice_t key,
                         const uint8_t *conds, const expr_value_t *fields)
{
    const spec_source_t *src = &pp->s->sources[0];
    size_t strbytes = 0;
    for (uint32_t i = 0; i < src->nfields; i++)
        if (fields[i].type == EXPR_STRING) strbytes += fields[i].as.s.len;
    size_t fsz = src->nfields * sizeof(expr_value_t);
    size_t bytes = sizeof(held_t) + fsz + pp->nsteps + key.len + strbytes;
    if (bytes < HELD_BLOCK) bytes = HELD_BLOCK; /* what it costs (held_alloc) */
    held_t *h = held_alloc(pp, bytes);
    h->t = t;
    h->off = off;
    h->klen = (uint32_t)key.len;
    h->bytes = (uint32_t)bytes;
    h->fields = (expr_value_t *)(h + 1);
    h->conds = (uint8_t *)h->fields + fsz;
    memcpy(h->conds, conds, pp->nsteps);
    h->key = (char *)h->conds + pp->nsteps;
    h->slot = NULL;
    if (key.len) memcpy(h->key, key.ptr, key.len);
    char *sp = h->key + key.len;
    for (uint32_t i = 0; i < src->nfields; i++) {
        h->fields[i] = fields[i];
        if (fields[i].type != EXPR_STRING) continue;
        if (fields[i].as.s.len) memcpy(sp, fields[i].as.s.ptr, fields[i].as.s.len);
        h->fields[i].as.s.ptr = sp;
        sp += fields[i].as.s.len;
    }
    pp->held_bytes += bytes;
    return h;
}

/* Confirms the waiting runs of pattern pi at slot whose deadline < W. */
static void confirm(pattern_part_t *pp, uint32_t pi, pattern_key_t **slot, weir_slice_t key,
                    const pattern_io_t *io)
{
    if (!*slot) return;
    const spec_pattern_t *p = &pp->s->patterns[pi];
    pat_one_t *o = &(*slot)->one[pi];
    uint32_t w = 0;
    for (uint32_t i = 0; i < o->nruns; i++) {
        run_t *r = o->runs[i];
        if (r->waiting && r->deadline < pp->wm) {
            matched(pp, pi, o, r, key, r->deadline, io);
            run_free(p, o, r);
            continue;
        }
        o->runs[w++] = r;
    }
    o->nruns = w;
    key_tidy(pp, slot);
}

void pattern_watermark(pattern_part_t *pp, int64_t wm, const pattern_io_t *io)
{
    pp->wm = wm;
    while (pp->nheld && pp->held[0].t <= wm) {
        held_t *h = held_pop(pp);
        weir_slice_t key = {h->key, h->klen};
        pattern_key_t **slot = h->slot && !io->lookup_held ? h->slot : io->slot(io->ctx, key);
        ev_t e = {h->t, h->off, h->fields, h->conds};
        for (uint32_t pi = 0; slot && pi < pp->s->npatterns; pi++)
            if (pp->s->patterns[pi].order == SPEC_ORDER_TIME && h->conds[pp->base[pi]] != COND_SKIP)
                feed(pp, pi, slot, key, &e, h->t, io);
        pp->held_bytes -= h->bytes;
        held_release(pp, h);
    }
    while (pp->ndue && pp->due[0].d < wm) {
        due_t d = due_pop(pp);
        weir_slice_t key = {d.key, d.klen};
        pattern_key_t **slot = io->slot(io->ctx, key);
        if (slot) confirm(pp, d.pi, slot, key, io);
        weir_free(d.key);
    }
}

/* ---- reload: moving state to another spec's patterns ----------------------------------
 *
 * A reloaded spec keeps the state of every pattern whose definition
 * (pattern_def_text) did not change. Such a pattern's runs and match times
 * mean the same under the new spec — same steps, conditions and binds, so
 * the same run layout and extras — and move as they are: only the index of
 * the pattern changes. A new or changed pattern starts with no runs, and
 * sees only events that arrive after the reload (COND_SKIP on held ones). */

pattern_key_t *pattern_key_move(const pattern_part_t *to, const spec_t *from, pattern_key_t *k,
                                const uint32_t *map)
{
    if (!k) return NULL;
    pattern_key_t *nk = key_new(to->s);
    int any = 0;
    for (uint32_t j = 0; j < nk->n; j++) {
        if (map[j] == PATTERN_NONE) continue;
        pat_one_t *o = &k->one[map[j]], *no = &nk->one[j];
        *no = *o;
        if (o->runs == o->inl) no->runs = no->inl; /* the inline array moved with the struct */
        memset(o, 0, sizeof *o);
        /* Match times serve matches() only: without such a feature in the
         * new spec nothing reads them (record_time would not have kept them). */
        if (!to->maxd[j]) {
            weir_free(no->mt);
            no->mt = NULL;
            no->nmt = no->capmt = 0;
        }
        any |= no->nruns || no->nmt;
    }
    pattern_key_free(from, k);
    if (any) return nk;
    pattern_key_free(to->s, nk);
    return NULL;
}

void pattern_part_move(pattern_part_t *to, pattern_part_t *from, const uint32_t *map,
                       pattern_move_stats_t *st)
{
    const spec_t *ts = to->s;
    weir_assert(to->nheld == 0 && to->ndue == 0);
    memset(st, 0, sizeof *st);
    to->wm = from->wm;
    to->matches = from->matches;
    to->dseq = from->dseq; /* deadlines keep their seq: equal deadlines confirm in the same order */
    uint32_t nfrom = from->s->npatterns;
    uint32_t *inv = weir_malloc((nfrom + 1) * sizeof *inv);
    for (uint32_t i = 0; i < nfrom; i++)
        inv[i] = PATTERN_NONE;
    int kept_time = 0;
    for (uint32_t j = 0; j < ts->npatterns; j++) {
        if (map[j] == PATTERN_NONE) continue;
        inv[map[j]] = j;
        kept_time |= ts->patterns[j].order == SPEC_ORDER_TIME;
    }
    /* Held events: each goes on for the kept time-order patterns, with the
     * condition results already known for them, if the new spec would have
     * held it (one of them may use it, or a strict step makes every event
     * count); new patterns skip it. */
    uint8_t *conds = weir_malloc(to->nsteps + 1);
    for (uint32_t h = 0; h < from->nheld; h++) {
        const held_t *ho = from->held[h].h;
        int keep = 0;
        if (kept_time) {
            for (uint32_t j = 0; j < ts->npatterns; j++) {
                uint32_t n = ts->patterns[j].nsteps;
                if (map[j] != PATTERN_NONE) {
                    memcpy(conds + to->base[j], ho->conds + from->base[map[j]], n);
                } else {
                    memset(conds + to->base[j], COND_UNKNOWN, n);
                    if (n) conds[to->base[j]] = COND_SKIP;
                }
            }
            ev_t e = {ho->t, ho->off, ho->fields, conds};
            for (uint32_t j = 0; j < ts->npatterns && !keep; j++)
                keep = map[j] != PATTERN_NONE && ts->patterns[j].order == SPEC_ORDER_TIME &&
                       conds[to->base[j]] != COND_SKIP && /* new at an earlier reload */
                       (to->time_strict || may_use(to, j, &e));
        }
        if (!keep) {
            st->held_dropped++;
            continue;
        }
        held_push(to, held_make(to, ho->t, ho->off, (weir_slice_t){ho->key, ho->klen}, conds,
                                ho->fields));
        st->held_kept++;
    }
    weir_free(conds);
    /* Deadlines: the key's bytes move with the entry. */
    for (uint32_t i = 0; i < from->ndue; i++) {
        due_t d = from->due[i];
        if (inv[d.pi] == PATTERN_NONE) {
            weir_free(d.key);
            st->due_dropped++;
            continue;
        }
        d.pi = inv[d.pi];
        due_push(to, d);
        st->due_kept++;
    }
    from->ndue = 0;
    weir_free(inv);
}

/* ---- checkpoint encoding ------------------------------------------------------------
 *
 * key:  u npatterns (0: no state), per pattern: u runs, per run: u step,
 *       u count, u flags (1 blocked, 2 skipped, 4 waiting), i first, i last,
 *       i deadline, u events, u offset each, per bind a value; u match
 *       times, i each.
 * part: i watermark, u matches found, u next deadline seq, u held events,
 *       per held: i time, u offset, u key length, key, u8 per global step,
 *       a value per source field; u deadlines, per: i time, u seq, u
 *       pattern, u key length, key.
 * value: u8 type, then i (int, time, duration), u (bool), raw 64 bits
 *       (float), u length + bytes (string), nothing (null). */

static void put_value(weir_buf_t *b, const expr_value_t *v)
{
    buf_append(b, &(uint8_t){(uint8_t)v->type}, 1);
    switch ((expr_type_t)v->type) {
    case EXPR_NULL:
        break;
    case EXPR_BOOL:
        codec_put_u(b, v->as.b);
        break;
    case EXPR_INT:
    case EXPR_TIME:
    case EXPR_DURATION:
        codec_put_i(b, v->as.i);
        break;
    case EXPR_FLOAT:
        codec_put_f64(b, v->as.f);
        break;
    case EXPR_STRING:
        codec_put_u(b, v->as.s.len);
        buf_append(b, v->as.s.ptr, v->as.s.len);
        break;
    }
}

static const unsigned char *get_bytes(codec_rd_t *r, uint64_t n)
{
    if (r->bad || (uint64_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *at = r->p;
    r->p += n;
    return at;
}

/* A value; a string's bytes stay in the input (*v points there). */
static int get_value(codec_rd_t *r, expr_value_t *v)
{
    const unsigned char *t = get_bytes(r, 1);
    if (!t) return -1;
    switch (*t) {
    case EXPR_NULL:
        *v = expr_null();
        break;
    case EXPR_BOOL: {
        uint64_t x = codec_get_u(r);
        if (x > 1) return -1;
        *v = expr_bool(x == 1);
        break;
    }
    case EXPR_INT:
        *v = expr_int(codec_get_i(r));
        break;
    case EXPR_TIME:
        *v = expr_time(codec_get_i(r));
        break;
    case EXPR_DURATION:
        *v = expr_duration(codec_get_i(r));
        break;
    case EXPR_FLOAT:
        *v = expr_float(codec_get_f64(r));
        break;
    case EXPR_STRING: {
        uint64_t n = codec_get_u(r);
        const unsigned char *at = get_bytes(r, n);
        if (!at) return -1;
        *v = expr_string((const char *)at, (size_t)n);
        break;
    }
    default:
        return -1;
    }
    return r->bad ? -1 : 0;
}

void pattern_key_encode(const spec_t *s, const pattern_key_t *k, weir_buf_t *b)
{
    if (!k) {
        codec_put_u(b, 0);
        return;
    }
    codec_put_u(b, k->n);
    uint64_t *offs = NULL;
    uint32_t cap = 0;
    for (uint32_t i = 0; i < k->n; i++) {
        const pat_one_t *o = &k->one[i];
        uint32_t nb = s->patterns[i].nbinds;
        codec_put_u(b, o->nruns);
        for (uint32_t j = 0; j < o->nruns; j++) {
            run_t *r = o->runs[j];
            codec_put_u(b, r->step);
            codec_put_u(b, r->count);
            codec_put_u(b, (uint64_t)r->blocked | (uint64_t)r->skipped << 1 |
                               (uint64_t)r->waiting << 2);
            codec_put_i(b, r->first);
            codec_put_i(b, r->last);
            codec_put_i(b, r->deadline);
            codec_put_u(b, r->ev.n);
            pev_offsets(&r->ev, &offs, &cap);
            for (uint32_t x = 0; x < r->ev.n; x++)
                codec_put_u(b, offs[x]);
            for (uint32_t x = 0; x < nb; x++)
                put_value(b, &run_binds(r)[x]);
        }
        codec_put_u(b, o->nmt);
        for (uint32_t x = 0; x < o->nmt; x++)
            codec_put_i(b, o->mt[x]);
    }
    weir_free(offs);
}

#define MAX_DECODED_ITEMS (1u << 28) /* counts above this are corrupt, not big */

static int corrupt(codec_rd_t *r, const unsigned char *start, const char *what, char *err,
                   size_t errlen)
{
    return weir_errf(err, errlen, WEIR_ECORRUPT, "pattern state: %s at byte %zu", what,
                     (size_t)(r->p - start));
}

/* What decoding a key's runs keeps between them: the nodes made (the map
 * of pev_decode), a run's offsets as read. */
typedef struct kdec {
    pev_map_t made;
    uint64_t *offs;
    uint32_t cap;
} kdec_t;

static int decode_run(const spec_pattern_t *p, pat_one_t *o, kdec_t *d, codec_rd_t *r, run_t **out)
{
    run_t *run = run_new(p);
    uint64_t step = codec_get_u(r), count = codec_get_u(r), flags = codec_get_u(r);
    run->first = codec_get_i(r);
    run->last = codec_get_i(r);
    run->deadline = codec_get_i(r);
    uint64_t n = codec_get_u(r);
    int ok = !r->bad && step < p->nsteps && !p->steps[step].negated && count >= 1 &&
             count <= p->steps[step].max && flags < 8 && n >= 1 && n <= codec_left(r) &&
             n <= MAX_DECODED_ITEMS;
    run->step = (uint32_t)step;
    run->count = (uint32_t)count;
    run->blocked = flags & 1;
    run->skipped = (flags >> 1) & 1;
    run->waiting = (flags >> 2) & 1;
    if (ok && n > d->cap) {
        d->cap = (uint32_t)n;
        d->offs = weir_realloc(d->offs, n * sizeof *d->offs);
    }
    for (uint32_t x = 0; ok && x < n; x++)
        d->offs[x] = codec_get_u(r);
    for (uint32_t x = 0; ok && x < p->nbinds; x++) {
        expr_value_t v;
        ok = get_value(r, &v) == 0;
        if (ok) bind_store(run, p->nbinds, x, &v);
    }
    if (!ok || r->bad) {
        run_free(p, o, run);
        return -1;
    }
    pev_decode(&d->made, &o->nnodes, &run->ev, d->offs, (uint32_t)n);
    *out = run;
    return 0;
}

int pattern_key_decode(const spec_t *s, codec_rd_t *r, pattern_key_t **out, char *err,
                       size_t errlen)
{
    const unsigned char *start = r->p;
    *out = NULL;
    uint64_t n = codec_get_u(r);
    if (r->bad) return corrupt(r, start, "truncated", err, errlen);
    if (n == 0) return 0;
    if (n != s->npatterns)
        return corrupt(r, start, "pattern count does not fit the spec", err, errlen);
    pattern_key_t *k = key_new(s);
    kdec_t d = {0};
    for (uint32_t i = 0; i < k->n; i++) {
        pat_one_t *o = &k->one[i];
        /* (nodes are shared within a pattern's runs only) */
        pev_map_clear(&d.made);
        uint64_t nr = codec_get_u(r);
        if (r->bad || nr > codec_left(r) || nr > MAX_DECODED_ITEMS) goto bad;
        o->runs = o->inl;
        o->capruns = 2;
        if (nr > 2) {
            o->runs = weir_malloc(nr * sizeof *o->runs);
            o->capruns = (uint32_t)nr;
        }
        for (; o->nruns < nr; o->nruns++)
            if (decode_run(&s->patterns[i], o, &d, r, &o->runs[o->nruns]) != 0) goto bad;
        uint64_t nm = codec_get_u(r);
        if (r->bad || nm > codec_left(r) || nm > MAX_DECODED_ITEMS) goto bad;
        o->mt = weir_malloc((nm ? nm : 1) * sizeof *o->mt);
        o->capmt = (uint32_t)(nm ? nm : 1);
        for (; o->nmt < nm; o->nmt++) {
            o->mt[o->nmt] = codec_get_i(r);
            if (o->nmt && o->mt[o->nmt] < o->mt[o->nmt - 1]) goto bad;
        }
        if (r->bad) goto bad;
    }
    pev_map_free(&d.made);
    weir_free(d.offs);
    *out = k;
    return 0;
bad:
    pev_map_free(&d.made);
    weir_free(d.offs);
    pattern_key_free(s, k);
    return corrupt(r, start, "a run or match time does not decode", err, errlen);
}

void pattern_part_encode(const pattern_part_t *pp, weir_buf_t *b)
{
    const spec_source_t *src = &pp->s->sources[0];
    codec_put_i(b, pp->wm);
    codec_put_u(b, pp->matches);
    codec_put_u(b, pp->dseq);
    codec_put_u(b, pp->nheld);
    for (uint32_t i = 0; i < pp->nheld; i++) {
        const held_t *h = pp->held[i].h;
        codec_put_i(b, h->t);
        codec_put_u(b, h->off);
        codec_put_u(b, h->klen);
        buf_append(b, h->key, h->klen);
        buf_append(b, h->conds, pp->nsteps);
        for (uint32_t f = 0; f < src->nfields; f++)
            put_value(b, &h->fields[f]);
    }
    codec_put_u(b, pp->ndue);
    for (uint32_t i = 0; i < pp->ndue; i++) {
        const due_t *d = &pp->due[i];
        codec_put_i(b, d->d);
        codec_put_u(b, d->seq);
        codec_put_u(b, d->pi);
        codec_put_u(b, d->klen);
        buf_append(b, d->key, d->klen);
    }
}

int pattern_part_decode(pattern_part_t *pp, codec_rd_t *r, char *err, size_t errlen)
{
    const unsigned char *start = r->p;
    const spec_source_t *src = &pp->s->sources[0];
    weir_assert(pp->nheld == 0 && pp->ndue == 0);
    pp->wm = codec_get_i(r);
    pp->matches = codec_get_u(r);
    pp->dseq = codec_get_u(r);
    uint64_t n = codec_get_u(r);
    if (r->bad || n > codec_left(r))
        return corrupt(r, start, "held events do not decode", err, errlen);
    expr_value_t *fields = weir_calloc(src->nfields + 1, sizeof *fields);
    int ok = 1;
    for (uint64_t i = 0; ok && i < n; i++) {
        int64_t t = codec_get_i(r);
        uint64_t off = codec_get_u(r), klen = codec_get_u(r);
        const unsigned char *key = get_bytes(r, klen), *conds = get_bytes(r, pp->nsteps);
        for (uint32_t f = 0; ok && f < src->nfields; f++) {
            ok = get_value(r, &fields[f]) == 0;
            /* The engine hands patterns decoded events: a field is its
             * declared type or null. */
            if (ok && fields[f].type != EXPR_NULL) ok = fields[f].type == src->fields[f].type;
        }
        for (uint32_t g = 0; ok && conds && g < pp->nsteps; g++)
            ok = conds[g] <= COND_SKIP;
        ok = ok && !r->bad;
        if (ok)
            held_push(pp, held_make(pp, t, off, (weir_slice_t){(const char *)key, (size_t)klen},
                                    conds, fields));
    }
    weir_free(fields);
    uint64_t nd = ok ? codec_get_u(r) : 0;
    if (ok && (r->bad || nd > codec_left(r))) ok = 0;
    for (uint64_t i = 0; ok && i < nd; i++) {
        due_t d = {.d = codec_get_i(r), .seq = codec_get_u(r)};
        uint64_t pi = codec_get_u(r), klen = codec_get_u(r);
        const unsigned char *key = get_bytes(r, klen);
        ok = !r->bad && pi < pp->s->npatterns;
        if (!ok) break;
        d.pi = (uint32_t)pi;
        d.klen = (uint32_t)klen;
        d.key = weir_malloc(klen ? klen : 1);
        if (klen) memcpy(d.key, key, klen);
        due_push(pp, d);
    }
    if (ok) return 0;
    for (uint32_t i = 0; i < pp->nheld; i++)
        weir_free(pp->held[i].h);
    for (uint32_t i = 0; i < pp->ndue; i++)
        weir_free(pp->due[i].key);
    pp->nheld = pp->ndue = 0;
    pp->held_bytes = 0;
    return corrupt(r, start, "held events or deadlines do not decode", err, errlen);
}

/* Pattern i's definition as pattern_plan_text writes it; counted: the
 * longest matches() window over it (-1: leave it out, pattern_def_text). */
static void def_text(const spec_t *s, uint32_t i, int64_t counted, weir_buf_t *b)
{
    const spec_pattern_t *p = &s->patterns[i];
    buf_appendf(b, "pattern %s %d %" PRId64, p->name, (int)p->order, p->within_ms);
    if (counted >= 0) buf_appendf(b, " counted %" PRId64, counted);
    buf_append(b, "\n", 1);
    for (uint32_t j = 0; j < p->nsteps; j++) {
        const spec_step_t *st = &p->steps[j];
        buf_appendf(b, " step %s %d %u %u %d %" PRId64 " [%s]\n", st->name, st->negated, st->min,
                    st->max, st->strict, st->gap_ms, expr_text(st->cond));
        /* (only where it is set: every other pattern keeps its text, and so
         * its state across this change of weir) */
        if (st->full) buf_appendf(b, "  full %u\n", st->full);
    }
    for (uint32_t x = 0; x < p->nbinds; x++)
        buf_appendf(b, " bind %u %u\n", p->binds[x].step, p->binds[x].field);
}

void pattern_plan_text(const spec_t *s, weir_buf_t *b)
{
    for (uint32_t i = 0; i < s->npatterns; i++) {
        int64_t maxd = 0;
        for (uint32_t a = 0; a < s->aggs.n; a++)
            if (s->aggs.v[a].kind == EXPR_AGG_MATCHES && s->aggs.v[a].pattern == i &&
                s->aggs.v[a].window_ms > maxd)
                maxd = s->aggs.v[a].window_ms;
        def_text(s, i, maxd, b);
    }
}

void pattern_def_text(const spec_t *s, uint32_t i, weir_buf_t *b)
{
    def_text(s, i, -1, b);
}
