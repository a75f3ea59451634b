/* engine_state.c — a partition's engine state to bytes and back (see
 * engine_state.h for what is saved and the format). */
#include "stream/engine_state.h"

#include <inttypes.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/hash.h"
#include "stream/codec.h"
#include "stream/engine_int.h"

#define STATE_MAGIC   "WENG"
/* 2: the head ends with each on-close aggregate's PARTIAL WINDOWS mark
 * (engine.c); a version 1 state (weir before it) is read with none. */
#define STATE_VERSION 2

/* ---- fingerprint ---- */

/* The plan's hash; with_fields: the source's fields and their types too,
 * which decide what each logged event is read as (plans of weir before
 * 2026-11-27 did not have them). */
static uint64_t plan_hash(const engine_t *e, int with_fields)
{
    const spec_t *s = e->spec;
    weir_buf_t b = WEIR_BUF_INIT;
    /* The plan, not the layout of a key's value in memory (its size): the
     * state is written by value, and a build that lays it out otherwise
     * (a window's inline room) restores it. */
    buf_appendf(&b, "partitions %u key %s lateness %" PRId64 " ttl %" PRId64 "\n", s->partitions,
                e->src->fields[e->src->key_slot].name, e->src->lateness_ms, e->ttl);
    for (uint32_t i = 0; with_fields && i < e->src->nfields; i++)
        buf_appendf(&b, "field %s %s\n", e->src->fields[i].name,
                    expr_type_name(e->src->fields[i].type));
    for (uint32_t g = 0; g < e->ngroups; g++) {
        const group_t *gr = &e->groups[g];
        buf_appendf(&b, "group %s %" PRId64 " %" PRId64 " %u %d\n",
                    gr->arg ? expr_text(gr->arg) : "", gr->conf.range, gr->conf.every,
                    gr->conf.kinds, gr->conf.ids);
    }
    for (uint32_t i = 0; i < e->nprev; i++)
        buf_appendf(&b, "last %s\n", s->aggs.v[e->prev_slots[i]].text);
    for (uint32_t a = 0; a < s->naggregates; a++) {
        const spec_aggregate_t *ag = &s->aggregates[a];
        buf_appendf(&b, "aggregate %s %d %" PRId64 " %" PRId64 " %" PRId64, ag->name,
                    (int)ag->window, ag->size_ms, ag->every_ms, ag->gap_ms);
        for (uint32_t i = 0; i < ag->aggs.n; i++) buf_appendf(&b, " [%s]", ag->aggs.v[i].text);
        buf_append(&b, "\n", 1);
    }
    pattern_plan_text(s, &b); /* patterns (CEP): see stream/pattern.h */
    /* Only with an id: the plans (and checkpoints) of specs without one are
     * those of weir before it. */
    if (e->dedup)
        buf_appendf(&b, "id %s dedup %" PRId64 "\n", e->src->fields[e->src->id_slot].name,
                    e->dedup);
    uint64_t h = weir_hash64(b.data, b.len);
    buf_free(&b);
    return h;
}

uint64_t engine_fingerprint(const engine_t *e)
{
    return plan_hash(e, 1);
}

int engine_fingerprint_fits(const engine_t *e, uint64_t fp)
{
    /* A checkpoint of an older weir is still restored (without it, a log
     * that retention has cut could not rebuild its state), its fields taken
     * on trust as before. */
    return fp == engine_fingerprint(e) || fp == plan_hash(e, 0);
}

/* ---- encoding ---- */

typedef struct enc_ctx {
    const engine_t *e;
    engine_state_flush_cb flush;
    void *ctx;
    int rc;
} enc_ctx_t;

static void prev_encode(const prev_t *pv, weir_buf_t *b)
{
    codec_put_u(b, pv->type);
    switch ((expr_type_t)pv->type) {
    case EXPR_BOOL: codec_put_u(b, pv->as.b); break;
    case EXPR_INT:
    case EXPR_TIME:
    case EXPR_DURATION: codec_put_i(b, pv->as.i); break;
    case EXPR_FLOAT: codec_put_f64(b, pv->as.f); break;
    case EXPR_STRING:
        codec_put_u(b, pv->len);
        buf_append(b, pv->len <= PREV_INLINE ? pv->as.s : pv->str, pv->len);
        break;
    default: break;
    }
}

/* One key's value, as keymap_encode's callbacks write it. */
static void value_put(const engine_t *e, const void *v, weir_buf_t *b)
{
    void *mv = (void *)v; /* the accessors take a mutable pointer; nothing is written */
    uint8_t inited = *key_inited(e, mv);
    codec_put_u(b, inited);
    if (inited) {
        for (uint32_t g = 0; g < e->ngroups; g++) win_encode(&key_wins(mv)[g], b);
        for (uint32_t i = 0; i < e->nprev; i++) prev_encode(&key_prevs(e, mv)[i], b);
        for (uint32_t a = 0; a < e->spec->naggregates; a++) oc_key_encode(key_oc(e, mv)[a], b);
        if (e->spec->npatterns) pattern_key_encode(e->spec, *key_pat(e, mv), b);
        if (e->dedup) dedup_encode(*key_dedup(e, mv), b);
    }
}

static void value_encode(const void *v, weir_buf_t *b, void *arg)
{
    enc_ctx_t *c = arg;
    value_put(c->e, v, b);
    /* Between keys nothing refers back into b: a full buffer can go out. */
    if (c->flush && c->rc == 0 && b->len > ENGINE_STATE_CHUNK) {
        c->rc = c->flush(c->ctx, b);
        buf_reset(b);
    }
}

static void encode_head(const engine_part_t *p, weir_buf_t *b)
{
    buf_append(b, STATE_MAGIC, 4);
    buf_append(b, (const char[]){STATE_VERSION}, 1);
    codec_put_u64(b, engine_fingerprint(p->e));
    codec_put_i(b, p->max_time);
    codec_put_i(b, p->wm);
    codec_put_u(b, p->seq);
    codec_put_u(b, p->st.events);
    codec_put_u(b, p->st.late);
    codec_put_u(b, p->st.ticks);
    codec_put_u(b, p->st.windows_emitted);
    codec_put_u(b, p->st.evicted);
    if (p->e->dedup) codec_put_u(b, p->st.duplicates); /* (a plan with an id: see plan_hash) */
    for (uint32_t a = 0; a < p->e->spec->naggregates; a++)
        codec_put_i(b, p->agg_since[a]);
}

int engine_part_encode(const engine_part_t *p, weir_buf_t *b, engine_state_flush_cb flush,
                       void *ctx)
{
    enc_ctx_t c = {p->e, flush, ctx, 0};
    encode_head(p, b);
    keymap_encode(&p->km, b, value_encode, &c);
    oc_timers_encode(p->timers, b);
    if (p->pat) pattern_part_encode(p->pat, b);
    return c.rc;
}

/* ---- snapshots ---- */

struct engine_snap {
    const engine_t *e;
    keymap_snap_t ks;
    weir_buf_t out;    /* written, not yet taken by engine_part_snap_step */
    weir_buf_t timers; /* the written keys' timers (oc_key_timers_encode) */
    uint64_t ntimers;
    weir_buf_t tail;   /* pattern state, as of the moment */
};

/* keymap snapshot callback: the value, and its windows' timers aside (the
 * heap itself changes while the snapshot runs; its live timers are a
 * function of the keys' open windows, onclose.h). */
static void snap_value_encode(const void *v, weir_buf_t *b, void *arg)
{
    engine_snap_t *s = arg;
    const engine_t *e = s->e;
    value_put(e, v, b);
    void *mv = (void *)v;
    if (!*key_inited(e, mv)) return;
    size_t klen;
    const void *kb = keymap_key(v, &klen);
    for (uint32_t a = 0; a < e->spec->naggregates; a++)
        s->ntimers += oc_key_timers_encode(key_oc(e, mv)[a], a, (weir_slice_t){kb, klen}, &s->timers);
}

engine_snap_t *engine_part_snap_begin(engine_part_t *p)
{
    engine_snap_t *s = weir_calloc(1, sizeof *s);
    s->e = p->e;
    s->ks.enc = snap_value_encode;
    s->ks.arg = s;
    s->ks.out = &s->out;
    encode_head(p, &s->out);
    keymap_snap_begin(&p->km, &s->ks, &s->out);
    if (p->pat) pattern_part_encode(p->pat, &s->tail);
    return s;
}

static void snap_free(engine_snap_t *s)
{
    buf_free(&s->out);
    buf_free(&s->timers);
    buf_free(&s->tail);
    weir_free(s);
}

int engine_part_snap_step(engine_part_t *p, engine_snap_t *s, uint32_t budget,
                          const atomic_uint *stop, weir_buf_t *out)
{
    size_t left = keymap_snap_step(&p->km, budget, stop);
    buf_append(out, s->out.data, s->out.len);
    buf_reset(&s->out);
    if (left) return 0;
    keymap_snap_end(&p->km);
    codec_put_u(out, s->ntimers);
    buf_append(out, s->timers.data, s->timers.len);
    buf_append(out, s->tail.data, s->tail.len);
    snap_free(s);
    return 1;
}

void engine_part_snap_abort(engine_part_t *p, engine_snap_t *s)
{
    keymap_snap_end(&p->km);
    snap_free(s);
}

/* ---- decoding ---- */

typedef struct dec_ctx {
    const engine_t *e;
    engine_part_t *p;
    const char *why;
} dec_ctx_t;

/* keymap free callback for a failed decode: what a value holds (the
 * engine's own release; the partition is left empty anyway). */
static void value_free(void *v, void *arg)
{
    engine_key_release(v, ((dec_ctx_t *)arg)->p);
}

static int prev_decode(prev_t *pv, codec_rd_t *r)
{
    uint64_t type = codec_get_u(r);
    pv->type = (uint8_t)type;
    switch (type) {
    case EXPR_NULL: break;
    case EXPR_BOOL: pv->as.b = codec_get_u(r) != 0; break;
    case EXPR_INT:
    case EXPR_TIME:
    case EXPR_DURATION: pv->as.i = codec_get_i(r); break;
    case EXPR_FLOAT: pv->as.f = codec_get_f64(r); break;
    case EXPR_STRING: {
        uint64_t len = codec_get_u(r);
        if (r->bad || len > codec_left(r) || len > UINT32_MAX) return -1;
        pv->len = (uint32_t)len;
        if (len <= PREV_INLINE) {
            memcpy(pv->as.s, r->p, len);
        } else {
            pv->str = weir_malloc(len);
            pv->cap = (uint32_t)len;
            memcpy(pv->str, r->p, len);
        }
        r->p += len;
        break;
    }
    default: return -1;
    }
    return r->bad ? -1 : 0;
}

static int value_decode(void *v, const unsigned char *data, size_t len, size_t *used, void *arg)
{
    dec_ctx_t *c = arg;
    const engine_t *e = c->e;
    codec_rd_t r = {data, data + len, 0};
    uint64_t inited = codec_get_u(&r);
    if (r.bad || inited > 1) {
        c->why = "key header";
        return -1;
    }
    if (!inited) {
        *used = (size_t)(r.p - data);
        return 0;
    }
    /* Every window starts valid (empty) so that a failure anywhere leaves a
     * value value_free can release. */
    for (uint32_t g = 0; g < e->ngroups; g++)
        win_init_in(&key_wins(v)[g], &e->groups[g].conf, (char *)v + e->off_area[g]);
    *key_inited(e, v) = 1;
    for (uint32_t g = 0; g < e->ngroups; g++) {
        win_t *w = &key_wins(v)[g];
        win_free(w);
        size_t n = 0;
        char why[160];
        if (win_decode_in(w, &e->groups[g].conf, (char *)v + e->off_area[g], r.p, codec_left(&r),
                          &n, why, sizeof why) != 0) {
            c->why = "window";
            return -1;
        }
        r.p += n;
    }
    for (uint32_t i = 0; i < e->nprev; i++)
        if (prev_decode(&key_prevs(e, v)[i], &r) != 0) {
            c->why = "last() value";
            return -1;
        }
    for (uint32_t a = 0; a < e->spec->naggregates; a++)
        if (oc_key_decode(&key_oc(e, v)[a], &e->spec->aggregates[a], &r, &c->why) != 0) return -1;
    char pwhy[160];
    if (e->spec->npatterns && pattern_key_decode(e->spec, &r, key_pat(e, v), pwhy, sizeof pwhy) != 0) {
        c->why = "pattern state";
        return -1;
    }
    /* no more ids than the bytes left could hold (dedup_decode checks) */
    if (e->dedup && dedup_decode(key_dedup(e, v), &r, UINT32_MAX) != 0) {
        c->why = "event ids";
        return -1;
    }
    *used = (size_t)(r.p - data);
    return 0;
}

int engine_part_decode(engine_part_t *p, const void *data, size_t len, char *err, size_t errlen)
{
    const engine_t *e = p->e;
    codec_rd_t r = {data, (const unsigned char *)data + len, 0};
    if (len < 5 || memcmp(data, STATE_MAGIC, 4) != 0 || r.p[4] < 1 || r.p[4] > STATE_VERSION)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "engine state: bad magic or version");
    int version = r.p[4];
    r.p += 5;
    uint64_t fp = codec_get_u64(&r);
    if (!r.bad && !engine_fingerprint_fits(e, fp))
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "engine state: written for another feature plan (the spec's windows, "
                         "aggregates, patterns, lateness, key, fields or partitions changed)");
    int64_t max_time = codec_get_i(&r), wm = codec_get_i(&r);
    uint64_t seq = codec_get_u(&r);
    engine_stats_t st = {0};
    st.events = codec_get_u(&r);
    st.late = codec_get_u(&r);
    st.ticks = codec_get_u(&r);
    st.windows_emitted = codec_get_u(&r);
    st.evicted = codec_get_u(&r);
    if (e->dedup) st.duplicates = codec_get_u(&r);
    /* the marks are read again into p once the whole state has decoded; a
     * mark is none or a time the partition had reached (window_partial adds
     * a gap to it: no larger value is trusted) */
    codec_rd_t marks = r;
    int bad_mark = 0;
    for (uint32_t a = 0; version >= 2 && a < e->spec->naggregates; a++) {
        int64_t m = codec_get_i(&r);
        bad_mark |= m != INT64_MIN && m > max_time;
    }
    if (r.bad) return weir_errf(err, errlen, WEIR_ECORRUPT, "engine state: truncated header");
    if (bad_mark)
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "engine state: a partial-window mark past its time");
    if ((max_time == INT64_MIN) != (wm == INT64_MIN) ||
        (max_time != INT64_MIN && wm != max_time - e->src->lateness_ms))
        return weir_errf(err, errlen, WEIR_ECORRUPT, "engine state: watermark does not follow max time");
    dec_ctx_t c = {e, p, "value"};
    keymap_free(&p->km, NULL, NULL); /* empty: p has processed nothing */
    size_t used = 0;
    char why[256];
    int rc = keymap_decode(&p->km, (uint32_t)e->vsize, r.p, codec_left(&r), &used, value_decode,
                           value_free, &c, why, sizeof why);
    if (rc)
        return weir_errf(err, errlen, rc, "engine state: %s (%s)", why, c.why);
    r.p += used;
    const char *twhy = NULL;
    char pwhy[160];
    int bad = oc_timers_decode(p->timers, e->spec->naggregates, &r, &twhy) != 0;
    if (!bad && p->pat && pattern_part_decode(p->pat, &r, pwhy, sizeof pwhy) != 0) {
        bad = 1;
        twhy = "pattern state";
    }
    if (bad || codec_left(&r) != 0) {
        size_t off = (size_t)(r.p - (const unsigned char *)data);
        keymap_free(&p->km, value_free, &c);
        keymap_init(&p->km, (uint32_t)e->vsize);
        oc_timers_free(p->timers);
        p->timers = oc_timers_new();
        if (p->pat) {
            pattern_part_free(p->pat);
            p->pat = pattern_part_new(e->spec);
        }
        return weir_errf(err, errlen, WEIR_ECORRUPT, "engine state: %s at byte %zu of %zu",
                         twhy ? twhy : "bytes after the end", off, len);
    }
    for (uint32_t a = 0; a < e->spec->naggregates; a++)
        p->agg_since[a] = version >= 2 ? codec_get_i(&marks) : INT64_MIN;
    p->max_time = max_time;
    p->wm = wm;
    p->seq = seq;
    st.watermark = wm;
    p->st = st;
    return 0;
}

int64_t engine_part_watermark(const engine_part_t *p)
{
    return p->wm;
}
