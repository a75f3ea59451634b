/* pattern.c — the pattern automata (semantics in pattern.h).
 *
 * STATE. A key's pattern_key_t holds, per pattern, its runs in creation
 * order and its recent match times (sorted; only for patterns that a
 * matches() feature counts, trimmed below W − the longest such window). It
 * is allocated when a key first starts a run or records a match and freed
 * when it holds neither, so keys that never start a pattern cost one NULL
 * pointer. A run keeps its step, count, flags, first/previous/deadline
 * times, the offsets of the events it took and the values of the
 * STEP.field binds (strings copied into buffers the run owns).
 *
 * The partition holds what is not a key's: events waiting for the
 * watermark (time order), as a min-heap on (time, offset), and deadlines of
 * runs waiting on a trailing `not`, as a min-heap on (deadline, push order).
 * A deadline entry names the key and pattern; when it is due, every run of
 * that key and pattern whose deadline has passed is confirmed, so an entry
 * whose run died meanwhile costs nothing but its pop.
 *
 * CONDITIONS. A step condition that names no step depends on the event
 * only: it is evaluated once per event (for a held event, once on arrival,
 * the results held with it) — per run only when it reads STEP.field. An
 * event that no step of any time-order pattern can be affected by (every
 * condition false, and no strict step that it would interrupt) is not
 * held at all. */
#include "stream/pattern.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"

enum { RUN_CONTINUE, RUN_DEAD, RUN_COMPLETE, RUN_WAITING };
enum { COND_NO = 0, COND_YES = 1, COND_PER_RUN = 2 };

typedef struct bstr {
    char *p;
    uint32_t cap;
} bstr_t;

typedef struct run {
    uint32_t step, count;
    uint8_t blocked, skipped, waiting;
    int64_t first, last, deadline;
    uint64_t *offs;
    uint32_t noffs, capoffs;
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
    run_t **runs;
    uint32_t nruns, capruns;
    int64_t *mt; /* match times, ascending */
    uint32_t nmt, capmt;
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
} held_t;

typedef struct due {
    int64_t d;
    uint64_t seq;
    uint32_t pi, klen;
    char *key;
} due_t;

/* One event as the automata see it. */
typedef struct ev {
    int64_t t;
    uint64_t off;
    const expr_value_t *fields;
    const uint8_t *conds; /* per global step */
} ev_t;

struct pattern_part {
    const spec_t *s;
    uint32_t nsteps; /* over all patterns */
    uint32_t *base;  /* global index of pattern i's step 0 */
    uint32_t maxbinds, maxsel;
    int time_strict; /* a time-order pattern has a strict step: hold every event */
    int any_time;
    int64_t *maxd; /* per pattern: longest matches() window, 0 if none */
    held_t **held;
    uint32_t nheld, capheld;
    size_t held_bytes;
    due_t *due;
    uint32_t ndue, capdue;
    uint64_t dseq;
    uint8_t *conds; /* this event's condition results */
    expr_value_t *nullbinds;
    expr_value_t *vals;
    weir_buf_t scratch, evbuf;
    int64_t wm;
    uint64_t matches, runs;
};

/* ---- heaps ------------------------------------------------------------------ */

static int held_less(const held_t *a, const held_t *b)
{
    return a->t < b->t || (a->t == b->t && a->off < b->off);
}

static void held_push(pattern_part_t *pp, held_t *h)
{
    if (pp->nheld == pp->capheld) {
        pp->capheld = pp->capheld ? pp->capheld * 2 : 64;
        pp->held = weir_realloc(pp->held, pp->capheld * sizeof *pp->held);
    }
    uint32_t i = pp->nheld++;
    while (i > 0) {
        uint32_t up = (i - 1) / 2;
        if (!held_less(h, pp->held[up])) break;
        pp->held[i] = pp->held[up];
        i = up;
    }
    pp->held[i] = h;
}

static held_t *held_pop(pattern_part_t *pp)
{
    held_t *top = pp->held[0], *last = pp->held[--pp->nheld];
    uint32_t i = 0, n = pp->nheld;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && held_less(pp->held[c + 1], pp->held[c])) c++;
        if (!held_less(pp->held[c], last)) break;
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
        weir_free(pp->held[i]);
    for (uint32_t i = 0; i < pp->ndue; i++)
        weir_free(pp->due[i].key);
    weir_free(pp->held);
    weir_free(pp->due);
    weir_free(pp->base);
    weir_free(pp->maxd);
    weir_free(pp->conds);
    weir_free(pp->nullbinds);
    weir_free(pp->vals);
    buf_free(&pp->scratch);
    buf_free(&pp->evbuf);
    weir_free(pp);
}

size_t pattern_part_bytes(const pattern_part_t *pp)
{
    size_t b = pp->capheld * sizeof *pp->held + pp->held_bytes + pp->capdue * sizeof *pp->due;
    for (uint32_t i = 0; i < pp->ndue; i++)
        b += pp->due[i].klen;
    return b;
}

void pattern_part_stats(const pattern_part_t *pp, pattern_stats_t *out)
{
    out->matches = pp->matches;
    out->runs = pp->runs;
    out->held = pp->nheld;
}

/* ---- conditions -------------------------------------------------------------- */

/* Evaluates expression x; lower() results go to the scratch, which grows
 * until they fit (WEIR_ETOOBIG is the only failure of expr_eval). */
static expr_value_t eval(pattern_part_t *pp, const expr_t *x, const expr_value_t *fields,
                         const expr_value_t *binds, size_t *used)
{
    for (;;) {
        expr_env_t env = {.fields = fields,
                          .extras = binds,
                          .scratch = pp->scratch.data,
                          .scratch_cap = pp->scratch.cap,
                          .scratch_used = used ? *used : 0};
        expr_value_t v;
        if (expr_eval(x, &env, &v) == 0) {
            if (used) *used = env.scratch_used;
            return v;
        }
        buf_reserve(&pp->scratch, pp->scratch.cap * 2);
    }
}

static int truth(const expr_value_t *v)
{
    return v->type == EXPR_BOOL && v->as.b;
}

/* The event-only conditions of pattern pi's steps into conds[base..]. */
static int eval_conds(pattern_part_t *pp, uint32_t pi, const expr_value_t *fields, uint8_t *conds)
{
    const spec_pattern_t *p = &pp->s->patterns[pi];
    int any = 0;
    for (uint32_t j = 0; j < p->nsteps; j++) {
        uint8_t c = COND_PER_RUN;
        if (!p->steps[j].refs) {
            expr_value_t v = eval(pp, p->steps[j].cond, fields, pp->nullbinds, NULL);
            c = truth(&v) ? COND_YES : COND_NO;
        }
        conds[pp->base[pi] + j] = c;
        any |= c != COND_NO;
    }
    return any;
}

static int cond(pattern_part_t *pp, uint32_t pi, uint32_t j, const ev_t *e,
                const expr_value_t *binds)
{
    uint8_t c = e->conds[pp->base[pi] + j];
    if (c != COND_PER_RUN) return c;
    expr_value_t v = eval(pp, pp->s->patterns[pi].steps[j].cond, e->fields, binds, NULL);
    return truth(&v);
}

/* ---- runs ------------------------------------------------------------------------- */

static size_t run_size(uint32_t nbinds)
{
    return sizeof(run_t) + nbinds * (sizeof(expr_value_t) + sizeof(bstr_t));
}

static run_t *run_new(pattern_part_t *pp, const spec_pattern_t *p)
{
    run_t *r = weir_calloc(1, run_size(p->nbinds));
    for (uint32_t b = 0; b < p->nbinds; b++)
        run_binds(r)[b] = expr_null();
    pp->runs++;
    return r;
}

static void run_free(pattern_part_t *pp, const spec_pattern_t *p, run_t *r)
{
    bstr_t *st = run_strs(r, p->nbinds);
    for (uint32_t b = 0; b < p->nbinds; b++)
        weir_free(st[b].p);
    weir_free(r->offs);
    weir_free(r);
    if (pp) pp->runs--;
}

static void bind_store(run_t *r, uint32_t nbinds, uint32_t b, const expr_value_t *x)
{
    expr_value_t *v = &run_binds(r)[b];
    if (x->type != EXPR_STRING) {
        *v = *x;
        return;
    }
    bstr_t *s = &run_strs(r, nbinds)[b];
    if (x->as.s.len > s->cap) {
        s->cap = (uint32_t)x->as.s.len;
        s->p = weir_realloc(s->p, s->cap);
    }
    if (x->as.s.len) memcpy(s->p, x->as.s.ptr, x->as.s.len);
    *v = expr_string(s->p, x->as.s.len);
}

static void take(const spec_pattern_t *p, run_t *r, uint32_t j, const ev_t *e)
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
    if (r->noffs == r->capoffs) {
        r->capoffs = r->capoffs ? r->capoffs * 2 : 4;
        r->offs = weir_realloc(r->offs, r->capoffs * sizeof *r->offs);
    }
    r->offs[r->noffs++] = e->off;
    for (uint32_t b = 0; b < p->nbinds; b++)
        if (p->binds[b].step == j) bind_store(r, p->nbinds, b, &e->fields[p->binds[b].field]);
}

static uint32_t next_pos(const spec_pattern_t *p, uint32_t j)
{
    for (j++; j < p->nsteps && p->steps[j].negated; j++) {
    }
    return j;
}

/* The steps that may take the run's next event, in the order they try. */
static uint32_t candidates(const spec_pattern_t *p, const run_t *r, uint32_t *c)
{
    uint32_t n = 0;
    const spec_step_t *cur = &p->steps[r->step];
    if (r->count < cur->max) c[n++] = r->step;
    if (r->count >= cur->min && !r->blocked) {
        for (uint32_t j = next_pos(p, r->step); j < p->nsteps; j = next_pos(p, j)) {
            c[n++] = j;
            if (p->steps[j].min > 0) break;
        }
    }
    return n;
}

static int can_fill(pattern_part_t *pp, uint32_t pi, const run_t *r, uint32_t j, const ev_t *e)
{
    const spec_pattern_t *p = &pp->s->patterns[pi];
    const spec_step_t *st = &p->steps[j];
    if (e->t - r->first > p->within_ms) return 0;
    if (st->strict && r->skipped) return 0;
    if (st->gap_ms && e->t - r->last > st->gap_ms) return 0;
    return cond(pp, pi, j, e, run_binds((run_t *)r));
}

/* After a take: is the run a match, waiting on a trailing not, or going on? */
static int after_take(const spec_pattern_t *p, run_t *r)
{
    if (r->count < p->steps[r->step].min) return RUN_CONTINUE;
    for (uint32_t j = next_pos(p, r->step); j < p->nsteps; j = next_pos(p, j))
        if (p->steps[j].min > 0) return RUN_CONTINUE;
    const spec_step_t *last = &p->steps[p->nsteps - 1];
    if (!last->negated) return RUN_COMPLETE;
    r->waiting = 1;
    r->deadline = r->first + p->within_ms;
    if (last->gap_ms && r->last + last->gap_ms < r->deadline) r->deadline = r->last + last->gap_ms;
    return RUN_WAITING;
}

static int step_run(pattern_part_t *pp, uint32_t pi, run_t *r, const ev_t *e)
{
    const spec_pattern_t *p = &pp->s->patterns[pi];
    if (r->waiting) {
        uint32_t n = p->nsteps - 1;
        if (e->t <= r->deadline && cond(pp, pi, n, e, run_binds(r))) return RUN_DEAD;
        return RUN_CONTINUE;
    }
    uint32_t c[64];
    uint32_t n = candidates(p, r, c);
    for (uint32_t k = 0; k < n; k++) {
        if (!can_fill(pp, pi, r, c[k], e)) continue;
        take(p, r, c[k], e);
        return after_take(p, r);
    }
    r->skipped = 1;
    const spec_step_t *cur = &p->steps[r->step];
    uint32_t nx = r->step + 1;
    if (r->count >= cur->min && nx + 1 < p->nsteps && p->steps[nx].negated) {
        const spec_step_t *ns = &p->steps[nx];
        if ((!ns->gap_ms || e->t - r->last <= ns->gap_ms) && cond(pp, pi, nx, e, run_binds(r)))
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
            run_free(NULL, &s->patterns[i], o->runs[j]);
        weir_free(o->runs);
        weir_free(o->mt);
    }
    weir_free(k);
}

/* The partition's count of live runs follows the key's own. */
static void key_drop(pattern_part_t *pp, pattern_key_t **slot)
{
    pattern_key_t *k = *slot;
    for (uint32_t i = 0; i < k->n; i++)
        pp->runs -= k->one[i].nruns;
    pattern_key_free(pp->s, k);
    *slot = NULL;
}

/* Frees a key's state once it holds nothing. */
static void key_tidy(pattern_part_t *pp, pattern_key_t **slot)
{
    pattern_key_t *k = *slot;
    if (!k) return;
    for (uint32_t i = 0; i < k->n; i++)
        if (k->one[i].nruns || k->one[i].nmt) return;
    key_drop(pp, slot);
}

size_t pattern_key_bytes(const spec_t *s, const pattern_key_t *k)
{
    if (!k) return 0;
    size_t b = sizeof *k + k->n * sizeof(pat_one_t);
    for (uint32_t i = 0; i < k->n; i++) {
        const pat_one_t *o = &k->one[i];
        uint32_t nb = s->patterns[i].nbinds;
        b += o->capruns * sizeof *o->runs + o->capmt * sizeof *o->mt;
        for (uint32_t j = 0; j < o->nruns; j++) {
            run_t *r = o->runs[j];
            b += run_size(nb) + r->capoffs * sizeof *r->offs;
            for (uint32_t x = 0; x < nb; x++)
                b += run_strs(r, nb)[x].cap;
        }
    }
    return b;
}

static void record_time(pattern_part_t *pp, pat_one_t *o, uint32_t pi, int64_t t)
{
    int64_t d = pp->maxd[pi];
    if (!d) return;
    /* Trim what no later query can count: queries are at times >= W. */
    uint32_t drop = 0;
    while (drop < o->nmt && pp->wm != INT64_MIN && o->mt[drop] <= pp->wm - d)
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

/* A match of run r: counted, its time recorded, its emit written. */
static void matched(pattern_part_t *pp, uint32_t pi, pat_one_t *o, run_t *r, weir_slice_t key,
                    int64_t time, const pattern_io_t *io)
{
    const spec_pattern_t *p = &pp->s->patterns[pi];
    pp->matches++;
    record_time(pp, o, pi, time);
    if (!p->has_emit || !io->match) return;
    size_t used = 0;
    for (uint32_t i = 0; i < p->out.nselect; i++)
        pp->vals[i] = eval(pp, p->out.select[i].expr, NULL, run_binds(r), &used);
    buf_reset(&pp->evbuf);
    buf_append(&pp->evbuf, "[", 1);
    for (uint32_t i = 0; i < r->noffs; i++)
        buf_appendf(&pp->evbuf, "%s%" PRIu64, i ? "," : "", r->offs[i]);
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
    if (o->nruns == o->capruns) {
        o->capruns = o->capruns ? o->capruns * 2 : 4;
        o->runs = weir_realloc(o->runs, o->capruns * sizeof *o->runs);
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
            int res =
                !r->waiting && r->first + p->within_ms < bound ? RUN_DEAD : step_run(pp, pi, r, e);
            if (res == RUN_COMPLETE) {
                matched(pp, pi, o, r, key, e->t, io);
                done = 1;
            }
            if (res == RUN_DEAD || res == RUN_COMPLETE) {
                run_free(pp, p, r);
                continue;
            }
            if (res == RUN_WAITING) push_due(pp, pi, r, key);
            o->runs[w++] = r;
        }
        o->nruns = w;
    }
    if (cond(pp, pi, 0, e, pp->nullbinds)) {
        run_t *r = run_new(pp, p);
        r->first = e->t;
        take(p, r, 0, e);
        int res = after_take(p, r);
        if (!*slot) *slot = key_new(pp->s);
        pat_one_t *o = &(*slot)->one[pi];
        if (res == RUN_COMPLETE) {
            matched(pp, pi, o, r, key, e->t, io);
            run_free(pp, p, r);
            done = 1;
        } else {
            if (res == RUN_WAITING) push_due(pp, pi, r, key);
            run_append(o, r);
        }
    }
    key_tidy(pp, slot);
    return done;
}

/* ---- events and the watermark ---------------------------------------------------- */

void pattern_event(pattern_part_t *pp, pattern_key_t **slot, weir_slice_t key, int64_t time,
                   uint64_t offset, const expr_value_t *fields, int64_t wm, uint8_t *flags,
                   const pattern_io_t *io)
{
    const spec_t *s = pp->s;
    pp->wm = wm;
    ev_t e = {time, offset, fields, pp->conds};
    int hold = 0;
    for (uint32_t pi = 0; pi < s->npatterns; pi++) {
        const spec_pattern_t *p = &s->patterns[pi];
        flags[pi] = 0;
        int any = eval_conds(pp, pi, fields, pp->conds);
        if (p->order == SPEC_ORDER_TIME) {
            if (time <= wm) {
                feed(pp, pi, slot, key, &e, time, io);
            } else {
                hold |= any;
            }
            continue;
        }
        /* Nothing to do for a key with no run that this event cannot start. */
        if (!any && (!*slot || !(*slot)->one[pi].nruns)) continue;
        flags[pi] = (uint8_t)feed(pp, pi, slot, key, &e, wm, io);
    }
    if (!(hold || (pp->time_strict && time > wm))) return;
    /* Held until the watermark reaches it: one block with the fields, the
     * condition results, the key and the strings. */
    const spec_source_t *src = &s->sources[0];
    size_t strbytes = 0;
    for (uint32_t i = 0; i < src->nfields; i++)
        if (fields[i].type == EXPR_STRING) strbytes += fields[i].as.s.len;
    size_t fsz = src->nfields * sizeof(expr_value_t);
    size_t bytes = sizeof(held_t) + fsz + pp->nsteps + key.len + strbytes;
    held_t *h = weir_malloc(bytes);
    h->t = time;
    h->off = offset;
    h->klen = (uint32_t)key.len;
    h->bytes = (uint32_t)bytes;
    h->fields = (expr_value_t *)(h + 1);
    h->conds = (uint8_t *)h->fields + fsz;
    memcpy(h->conds, pp->conds, pp->nsteps);
    h->key = (char *)h->conds + pp->nsteps;
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
    held_push(pp, h);
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
            run_free(pp, p, r);
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
    while (pp->nheld && pp->held[0]->t <= wm) {
        held_t *h = held_pop(pp);
        weir_slice_t key = {h->key, h->klen};
        pattern_key_t **slot = io->slot(io->ctx, key);
        ev_t e = {h->t, h->off, h->fields, h->conds};
        for (uint32_t pi = 0; slot && pi < pp->s->npatterns; pi++)
            if (pp->s->patterns[pi].order == SPEC_ORDER_TIME) feed(pp, pi, slot, key, &e, h->t, io);
        pp->held_bytes -= h->bytes;
        weir_free(h);
    }
    while (pp->ndue && pp->due[0].d < wm) {
        due_t d = due_pop(pp);
        weir_slice_t key = {d.key, d.klen};
        pattern_key_t **slot = io->slot(io->ctx, key);
        if (slot) confirm(pp, d.pi, slot, key, io);
        weir_free(d.key);
    }
}
