/* runtime.c — the server's pipeline, decision layer and logs (see
 * runtime.h).
 *
 * THREADS: who touches what.
 *   rt_part_t (one per partition): everything in it, and the engine
 *     partition it points to, only while holding its `lock` — HTTP workers
 *     (runtime_process, runtime_features), the control thread (ticks, the
 *     stats cache) and, before `ready`, the recovery threads (one per
 *     partition at a time). `max_time` and `last_ms` are also read without
 *     the lock (atomics) to pick idle partitions.
 *   outputs (aggregates on close, late events): one outputs_t; engine sinks
 *     (inside partition locks) format a line in their partition's buffer
 *     and write it under `out_lock` (the lock order is partition → outputs).
 *   decide: thread-safe by itself (the model slot swaps atomically).
 *   metrics: atomics.
 *   logs: each log partition has its own lock inside log_append; we append
 *     to a partition only under our partition lock anyway.
 *   the decision flusher (one thread, from ready to close): takes a
 *     partition's lock to write its buffered decisions; peeks at `dpending`
 *     (atomic) without the lock to skip partitions with nothing buffered.
 *
 * DECISIONS ARE WRITTEN IN BATCHES. The decision log is derived data: the
 * event log is the source of truth, and a decision is a deterministic
 * function of the logged events before it (principle 2). So a partition's
 * decision records are buffered (dbuf) and appended to the decision log in
 * one write when `decision_flush_ms` has passed (the flusher thread), when
 * the buffer holds DECISION_BATCH_MAX records or DECISION_BATCH_BYTES, when
 * /metrics is scraped, and at close. No guarantee weakens:
 *   - an event is acknowledged after its event log append (ack mode), as
 *     before; its decision was never part of the acknowledgement's
 *     durability (a crash between the two appends was always possible);
 *   - records are appended in input-offset order under the partition lock,
 *     so the decision log is always a prefix of the decided events: after
 *     a crash (kill -9 loses the buffer) runtime_recover finds the last
 *     decided input offset and decides exactly the events after it — none
 *     twice, none missing (DESIGN.md "exactly-once decisions");
 *   - what recovery decides is what the lost buffer held: the same state
 *     (rebuilt from the log) and the same event give the same features and
 *     score. The one input outside the log is the model file: a decision
 *     lost in a crash is re-made with the model on disk at restart, which
 *     differs only if it was replaced and reloaded in the last few
 *     milliseconds before the crash (the same window the unbatched log had
 *     between its two appends, a few ms wider).
 * Decision batches are appended with ack `written` in every mode: a power
 * loss that drops their tail is repaired by the same re-decision, and
 * fsyncing derived data under a partition lock would only stall requests.
 * With decision_flush_ms = 0 each request's decisions are written before it
 * is answered (the unbatched behaviour). */
#include "serve/runtime.h"
#include "serve/runtime_int.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/hash.h"
#include "decide/decision_log.h"
#include "decide/model_ledger.h"
#include "decide/outputs.h"
#include "decide/outputs_dir.h"
#include "decide/pipeline.h"
#include "serve/checkpointer.h"
#include "base/numfmt.h"
#include "stream/engine_state.h"

#define STATS_EVERY_MS       2000      /* state gauges: a walk over every key at most this often */
#define STATS_SLICE          512       /* keys walked per hold of a partition's lock (~50 us) */
#define STATS_GAP_US         20        /* and the gap between two holds */
#define CLOSE_SLICE          256       /* due windows emitted per hold of a partition's lock */
#define CLOSER_EVERY_MS      100       /* and how often the closer looks, unless woken */
#define DECISION_BATCH_MAX   1024      /* buffered decisions that force a write */
#define DECISION_BATCH_BYTES (1 << 20) /* buffered bytes that force a write */


/* ---- sinks: outputs are shared by all partitions ---- */

/* SINKS. The engine's sinks run inside their partition's lock: the line is
 * formatted into the partition's own buffer, and only its write takes
 * out_lock. While serving, each line is written at once. While recovering
 * (p->obatch), a partition gathers its lines, up to OUT_BATCH_BYTES for
 * one file, and writes them in one hold of out_lock: a replay closes a
 * window for most events, and two replay threads taking out_lock per line
 * spent a tenth of the replay's CPU in futex calls. The order of lines
 * within a file is kept (a line for another file writes the gathered ones
 * first), and recover_part writes what is left before it lets go of the
 * partition — no checkpoint can freeze the partition in between. */
#define OUT_BATCH_BYTES (256 << 10)

static void out_write_part(runtime_t *rt, rt_part_t *p)
{
    if (!p->olines) return;
    pthread_mutex_lock(&rt->out_lock);
    outputs_write_lines(rt->out, p->oagg, &p->oline, p->olines);
    pthread_mutex_unlock(&rt->out_lock);
    buf_reset(&p->oline);
    p->olines = 0;
}

/* The buffer to append a line for agg's file (NULL: late.ndjson) to. */
static weir_buf_t *out_line(runtime_t *rt, rt_part_t *p, const spec_aggregate_t *agg)
{
    if (p->olines && p->oagg != agg) out_write_part(rt, p);
    p->oagg = agg;
    return &p->oline;
}

static void out_line_done(runtime_t *rt, rt_part_t *p)
{
    p->olines++;
    if (!p->obatch || p->oline.len >= OUT_BATCH_BYTES) out_write_part(rt, p);
}

void runtime_sink_window(void *ctx, uint32_t part, const spec_aggregate_t *agg, weir_slice_t key,
                        int64_t start, int64_t end, const expr_value_t *vals)
{
    runtime_t *rt = ctx;
    rt_part_t *p = &rt->parts[part];
    outputs_window_line(rt->out, out_line(rt, p, agg), &p->ospan, part, agg, key, start, end, vals);
    out_line_done(rt, p);
}

void runtime_sink_late(void *ctx, uint32_t part, uint64_t offset, weir_slice_t key, int64_t time,
                      int64_t watermark, weir_slice_t event)
{
    runtime_t *rt = ctx;
    rt_part_t *p = &rt->parts[part];
    outputs_late_line(rt->out, out_line(rt, p, NULL), part, offset, key, time, watermark, event);
    out_line_done(rt, p);
}

/* CLOSER. Once ready, the on-close windows an event's watermark step makes
 * due are not emitted inside that event (engine.h, DEFERRED CLOSES): at a
 * million keys the step past a tumbling hour closes ~110 k windows, 14 k
 * per partition, and emitting them inside the request that made the step
 * held its partition for 50-100 ms each, one partition after another:
 * requests waited up to 0.8 s (measured under `weir bench recovery`'s
 * load, whose event time runs 60x the wall clock). The closer thread emits
 * them CLOSE_SLICE at a time per hold of a partition's lock, going round
 * the partitions, so a request waits for one slice at most. A request that
 * leaves windows due wakes it. Recovery closes windows inside each event,
 * as every offline path does; shutdown and a spec reload first emit
 * everything due. */
static void closer_tick(void *arg)
{
    runtime_t *rt = arg;
    int more;
    do {
        more = 0;
        for (uint32_t i = 0; i < rt->nparts; i++) {
            rt_part_t *p = &rt->parts[i];
            pthread_mutex_lock(&p->lock);
            if (engine_part_close_due(p->engine, CLOSE_SLICE) == CLOSE_SLICE) more = 1;
            pthread_mutex_unlock(&p->lock);
        }
    } while (more);
}

/* ---- open / close ---- */

static int ckpt_freeze(void *ctx, uint64_t *log_off, uint64_t *dec_off, int64_t *decided,
                       weir_buf_t *extra, char *err, size_t errlen);
static void ckpt_thaw(void *ctx);
static int ckpt_sync_outputs(void *ctx, char *err, size_t errlen);
static engine_part_t *ckpt_part_state(void *ctx, uint32_t i);
static void ckpt_lock_part(void *ctx, uint32_t i);
static void ckpt_unlock_part(void *ctx, uint32_t i);
static const atomic_uint *ckpt_part_waiting(void *ctx, uint32_t i);

int runtime_open(const runtime_config_t *cfg, runtime_t **out, char *err, size_t errlen)
{
    /* Keyed state grows by gigabytes at recovery, from the recovery threads'
     * malloc arenas: glibc's default 128 KiB top pad costs an mprotect call
     * per 128 KiB of growth there (a sixth of a restore's time). */
    mallopt(M_TOP_PAD, 64 << 20);
    runtime_t *rt = weir_calloc(1, sizeof *rt);
    rt->cfg = *cfg;
    pthread_mutex_init(&rt->out_lock, NULL);
    pthread_mutex_init(&rt->err_lock, NULL);
    int rc = pipeline_open(&rt->pl, cfg->spec_path, cfg->datadir, NULL, 1, err, errlen);
    if (rc) {
        weir_free(rt);
        return rc;
    }
    const spec_t *s = rt->pl.spec;
    rt->nparts = rt->pl.nparts;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/decisions", cfg->datadir);
    log_config_t lc;
    log_config_defaults(&lc);
    if ((rc = log_open_dir(dir, &lc, &rt->dlog, err, errlen)) != 0) goto fail;
    if ((rc = log_topic_open(rt->dlog, rt->pl.src->name, rt->nparts, &rt->dtopic, err, errlen)) !=
        0)
        goto fail;
    pipeline_log_recovery("weir run: decision log", rt->dtopic);
    decide_ledger_t ledger = {.datadir = cfg->datadir, .add = 1};
    if (s->has_model &&
        !model_ledger_exists(cfg->datadir)) { /* THE FIRST LEDGER (model_ledger.h) */
        /* Once per directory, and a whole read of the decision log (about
         * 9 s for 3 GB on the 2-core VM): said, so that a slow first start
         * after an upgrade is not a mystery. */
        uint64_t t0 = weir_mono_ns(), records = 0;
        for (uint32_t i = 0; i < rt->nparts; i++) {
            log_part_stat_t st;
            log_part_stat(log_topic_part(rt->dtopic, i), &st);
            records += st.next_offset - st.start_offset;
        }
        if (records)
            fprintf(stderr,
                    "weir run: model ledger: none yet beside %" PRIu64 " decisions: reading them "
                    "for the largest model version they name, to number models above it (once)\n",
                    records);
        for (uint32_t i = 0; i < rt->nparts && rc == 0 && records; i++)
            rc = decision_log_max_model(log_topic_part(rt->dtopic, i), &ledger.floor, err, errlen);
        if (records && rc == 0)
            fprintf(stderr, "weir run: model ledger: the largest is %" PRIu64 " (read in %.1f s)\n",
                    ledger.floor, (double)(weir_mono_ns() - t0) / 1e9);
    }
    if (rc || (rc = decide_new(s, &ledger, &rt->decide, err, errlen)) != 0) goto fail;
    atomic_store(&rt->model_version, decide_model_version(rt->decide));
    if ((rc = outputs_open(cfg->datadir, s, &rt->out, err, errlen)) != 0) goto fail;
    rt->outcomes = weir_calloc(s->ndecisions + 1, sizeof *rt->outcomes);
    for (uint32_t i = 0; i < s->ndecisions; i++)
        rt->outcomes[i] = s->decisions[i].then;
    metrics_init(&rt->m, rt->pl.src->name, rt->outcomes, s->ndecisions);
    rt->parts = weir_calloc(rt->nparts, sizeof *rt->parts);
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        pthread_mutex_init(&p->lock, NULL);
        p->id = i;
        p->engine = rt->pl.parts[i];
        p->log = log_topic_part(rt->pl.topic, i);
        p->dlog = log_topic_part(rt->dtopic, i);
        p->max_time = INT64_MIN;
        p->last_ms = weir_wall_ms();
    }
    if ((rc = runtime_reload_init(rt, err, errlen)) != 0) {
        runtime_close(rt, NULL, 0);
        return rc;
    }
    ckptr_source_t cs = {.nparts = rt->nparts,
                         .pipeline = s->pipeline,
                         .fingerprint = engine_fingerprint(rt->pl.engine),
                         .spec = rt->spec_text.data,
                         .spec_len = rt->spec_text.len,
                         .freeze = ckpt_freeze,
                         .thaw = ckpt_thaw,
                         .part = ckpt_part_state,
                         .lock = ckpt_lock_part,
                         .unlock = ckpt_unlock_part,
                         .waiting = ckpt_part_waiting,
                         .sync = ckpt_sync_outputs,
                         .ctx = rt};
    if ((rc = checkpointer_open(cfg->datadir, &cs, &rt->ckptr, err, errlen)) != 0) {
        runtime_close(rt, NULL, 0);
        return rc;
    }
    *out = rt;
    return 0;
fail:
    if (rt->dlog) log_close(rt->dlog);
    decide_free(rt->decide);
    pipeline_close(&rt->pl);
    weir_free(rt);
    return rc;
}

static int flush_decisions(runtime_t *rt, rt_part_t *p);

int runtime_close(runtime_t *rt, char *err, size_t errlen)
{
    if (!rt) return 0;
    weir_ticker_stop(&rt->gauges);
    weir_ticker_stop(&rt->flusher);
    weir_ticker_stop(&rt->closer);
    int rc = 0;
    /* What is due goes out before the shutdown checkpoint and the outputs'
     * close (CLOSER). */
    if (runtime_ready(rt)) closer_tick(rt);
    if (rt->ckptr) checkpointer_stop(rt->ckptr);
    if (rt->ckptr && runtime_ready(rt)) {
        /* The checkpoint at clean shutdown: the next start replays nothing. */
        ckptr_result_t res;
        char cerr[1024];
        if (checkpointer_take(rt->ckptr, &res, cerr, sizeof cerr) != 0)
            fprintf(stderr, "weir run: shutdown %s\n", cerr);
        else
            fprintf(stderr, "weir run: checkpoint %" PRIu64 " written at shutdown (%" PRIu64 " bytes)\n",
                    res.id, res.bytes);
    }
    checkpointer_close(rt->ckptr);
    rt->ckptr = NULL;
    if (rt->cut_remover_on) pthread_join(rt->cut_remover, NULL);
    rt->cut_remover_on = 0;
    if (rt->out) rc = outputs_close(rt->out, err, errlen);
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        pthread_mutex_lock(&p->lock);
        int frc = flush_decisions(rt, p);
        pthread_mutex_unlock(&p->lock);
        if (frc && rc == 0) rc = weir_errf(err, errlen, frc, "%s", p->dfail_err);
    }
    log_close(rt->dlog); /* syncs every partition */
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        pthread_mutex_destroy(&p->lock);
        buf_free(&p->scratch);
        buf_free(&p->dscratch);
        buf_free(&p->dbuf);
        buf_free(&p->feat);
        buf_free(&p->oline);
        weir_free(p->recs);
        weir_free(p->drecs);
        weir_free(p->dpend);
        decide_scratch_free(&p->lower);
    }
    weir_free(rt->parts);
    pipeline_close(&rt->pl); /* closes (and syncs) the event log */
    runtime_reload_free(rt);
    decide_free(rt->decide);
    metrics_free(&rt->m);
    weir_free(rt->outcomes);
    pthread_mutex_destroy(&rt->out_lock);
    pthread_mutex_destroy(&rt->err_lock);
    weir_free(rt);
    return rc;
}

const spec_t *runtime_spec(const runtime_t *rt)
{
    return rt->pl.spec;
}

const spec_source_t *runtime_source(const runtime_t *rt)
{
    return rt->pl.src;
}

uint32_t runtime_partitions(const runtime_t *rt)
{
    return rt->nparts;
}

metrics_t *runtime_metrics(runtime_t *rt)
{
    return &rt->m;
}

int runtime_ready(const runtime_t *rt)
{
    return atomic_load(&rt->ready);
}

int runtime_failed(runtime_t *rt, char *why, size_t whylen)
{
    for (uint32_t i = 0; i < rt->nparts; i++) {
        int ev = log_part_failed(rt->parts[i].log), dec = log_part_failed(rt->parts[i].dlog);
        if (ev || dec)
            return weir_errf(why, whylen, WEIR_EIO,
                             "partition %u's %s log refuses appends after a write or fsync failure "
                             "(a full disk?): restart weir once its cause is fixed",
                             i, ev ? "event" : "decision");
    }
    return 0;
}

uint32_t runtime_partition_of(const runtime_t *rt, weir_slice_t key)
{
    return (uint32_t)(weir_hash64(key.ptr, key.len) % rt->nparts);
}

uint64_t runtime_model_version(runtime_t *rt)
{
    return atomic_load(&rt->model_version);
}

const char *runtime_model_digest(const runtime_t *rt)
{
    return decide_model_digest(rt->decide);
}

/* ---- per-event pieces ---- */

/* outputs_json_value's text (what backfill writes), without printf. */
static void json_value(weir_buf_t *b, const expr_value_t *v)
{
    switch ((expr_type_t)v->type) {
    case EXPR_INT:
    case EXPR_TIME:
    case EXPR_DURATION:
        numfmt_append_i64(b, v->as.i);
        break;
    case EXPR_FLOAT:
        numfmt_append_json(b, v->as.f);
        break;
    default:
        outputs_json_value(b, v);
        break;
    }
}

void runtime_features_json(const spec_t *spec, const expr_value_t *features, weir_buf_t *b)
{
    buf_append(b, "{", 1);
    for (uint32_t i = 0; i < spec->nfeatures; i++) {
        if (i) buf_append(b, ",", 1);
        buf_append_json_string(b, spec->features[i].name, strlen(spec->features[i].name));
        buf_append(b, ":", 1);
        json_value(b, &features[i]);
    }
    buf_append(b, "}", 1);
}

static void grow(rt_part_t *p, size_t n)
{
    if (p->rcap >= n) return;
    p->rcap = n < 16 ? 16 : n;
    p->recs = weir_realloc(p->recs, p->rcap * sizeof *p->recs);
}

/* Scores and decides, in the partition's lower() scratch. */
static void decide_one(runtime_t *rt, rt_part_t *p, const engine_result_t *res, size_t raw_len,
                       int contribs, decision_t *d)
{
    decide_event_in(rt->decide, &p->lower, raw_len, res->fields, res->features, contribs, d);
}

/* Buffers one decision record (value, then key) in p's pending batch. */
static void decision_record(rt_part_t *p, uint64_t offset, weir_slice_t key,
                            const engine_result_t *res, const decision_t *d,
                            weir_slice_t features_json)
{
    weir_buf_t *b = &p->dbuf;
    if (p->ndpend == p->dcap) {
        p->dcap = p->dcap ? 2 * p->dcap : 64;
        p->dpend = weir_realloc(p->dpend, p->dcap * sizeof *p->dpend);
        p->drecs = weir_realloc(p->drecs, p->dcap * sizeof *p->drecs);
    }
    size_t at = b->len;
    buf_append_str(b, "{\"offset\":");
    numfmt_append_u64(b, offset);
    buf_append_str(b, ",\"decision\":");
    if (d->decision)
        buf_append_json_string(b, d->decision, strlen(d->decision));
    else
        buf_append_str(b, "null");
    buf_append_str(b, ",\"rule\":");
    numfmt_append_i64(b, d->rule);
    /* Always there, so that a replay can write the emit again from the
     * record instead of deciding again (EMITS FROM THE DECISION LOG). */
    buf_append_str(b, ",\"emit\":");
    if (d->emit)
        buf_append_json_string(b, d->emit, strlen(d->emit));
    else
        buf_append_str(b, "null");
    buf_append_str(b, ",\"score\":");
    numfmt_append_json(b, d->score);
    buf_append_str(b, ",\"model\":");
    numfmt_append_u64(b, d->model_version);
    buf_append_str(b, res && res->late ? ",\"late\":true,\"features\":"
                                       : ",\"late\":false,\"features\":");
    if (features_json.len)
        buf_append(b, features_json.ptr, features_json.len);
    else
        buf_append_str(b, "null");
    buf_append(b, "}", 1);
    size_t vlen = b->len - at;
    buf_append(b, key.ptr, key.len);
    p->dpend[p->ndpend++] = (rt_pending_t){at, (uint32_t)vlen, (uint32_t)key.len};
    p->decided = (int64_t)offset;
    atomic_store_explicit(&p->dpending, p->ndpend, memory_order_relaxed);
}

/* Appends p's buffered decisions to the decision log in one batch; holding
 * p's lock. A failed append is kept in p->dfail: the partition then
 * refuses events (their decisions could not be logged), and what was
 * buffered is dropped — the decision log stays a prefix of the decided
 * events, and the next start decides the rest (recovery). */
static int flush_decisions(runtime_t *rt, rt_part_t *p)
{
    size_t n = p->ndpend;
    if (n == 0 || p->dfail) goto done;
    int64_t now = weir_wall_ms();
    for (size_t i = 0; i < n; i++) {
        const rt_pending_t *e = &p->dpend[i];
        const char *v = p->dbuf.data + e->at;
        p->drecs[i] = (log_rec_t){0, now, LOG_REC_EVENT, {v + e->vlen, e->klen}, {v, e->vlen}};
    }
    uint64_t t0 = weir_mono_ns();
    /* ack `written` whatever the mode: see DECISIONS ARE WRITTEN IN BATCHES. */
    int rc = log_append(p->dlog, p->drecs, n, LOG_ACK_WRITTEN, &p->dscratch, NULL, p->dfail_err,
                        sizeof p->dfail_err);
    metrics_observe(&rt->m, METRICS_STAGE_DECISION_FLUSH, weir_mono_ns() - t0);
    if (rc) {
        p->dfail = rc;
        fprintf(stderr, "weir run: decision log partition %u: %s\n", p->id, p->dfail_err);
    }
done:
    buf_reset(&p->dbuf);
    p->ndpend = 0;
    atomic_store_explicit(&p->dpending, 0, memory_order_relaxed);
    return p->dfail;
}

/* Processes evs[0..n), all of partition p, holding p's lock. */
static int process_part(runtime_t *rt, rt_part_t *p, runtime_event_t *evs, size_t n, int contribs,
                        runtime_outcome_cb cb, void *ctx, char *err, size_t errlen)
{
    const spec_t *s = rt->pl.spec;
    if (p->dfail)
        return weir_errf(err, errlen, p->dfail,
                         "decision log partition %u refuses appends after: %s", p->id,
                         p->dfail_err);
    int64_t now = weir_wall_ms();
    grow(p, n);
    for (size_t i = 0; i < n; i++)
        p->recs[i] = (log_rec_t){0, now, LOG_REC_EVENT, evs[i].key, evs[i].raw};
    /* Stage times chain: each stage's end is the next one's start (the
     * clock is read 5 times per event, not twice per stage). */
    uint64_t first, t0 = weir_mono_ns(), t1;
    int rc = log_append(p->log, p->recs, n, rt->cfg.ack, &p->scratch, &first, err, errlen);
    t1 = weir_mono_ns();
    metrics_observe(&rt->m, METRICS_STAGE_LOG_APPEND, t1 - t0);
    if (rc) return rc;
    t0 = t1;
    atomic_store_explicit(&p->last_ms, now, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        engine_result_t res;
        char why[512];
        decision_t d;
        runtime_outcome_t o = {.ev = &evs[i], .offset = first + i, .decision = &d};
        if (i) t0 = weir_mono_ns(); /* after the previous event's callback */
        rc = engine_part_event(p->engine, first + i, evs[i].fields, evs[i].raw, &res, why,
                               sizeof why);
        t1 = weir_mono_ns();
        metrics_observe(&rt->m, METRICS_STAGE_FEATURES, t1 - t0);
        t0 = t1;
        buf_reset(&p->feat);
        if (rc == 0) {
            decide_one(rt, p, &res, evs[i].raw.len, contribs, &d);
            t0 = weir_mono_ns();
            metrics_observe(&rt->m, METRICS_STAGE_MODEL, t0 - t1);
            runtime_features_json(s, res.features, &p->feat);
            o.res = &res;
            o.features_json = (weir_slice_t){p->feat.data, p->feat.len};
            metrics_shard_t *ms = metrics_shard(&rt->m);
            metrics_add(&ms->accepted, 1);
            if (res.late) metrics_add(&ms->late, 1);
            metrics_decision(&rt->m, d.rule);
            if (d.emit)
                outputs_emit(rt->out, d.emit, p->id, first + i, evs[i].key, d.decision, d.rule, d.score,
                             evs[i].raw);
            int64_t mt =
                res.watermark == INT64_MIN ? INT64_MIN : res.watermark + rt->pl.src->lateness_ms;
            if (mt > atomic_load_explicit(&p->max_time, memory_order_relaxed))
                atomic_store_explicit(&p->max_time, mt, memory_order_relaxed);
        } else {
            /* Logged but not applied (replay does the same): no features, and
             * the decision of an event without them is no rule's. */
            memset(&d, 0, sizeof d);
            d.score = NAN;
            d.rule = -1;
            o.why = why;
            metrics_add(&metrics_shard(&rt->m)->rejected[METRICS_REJ_PROCESSING], 1);
        }
        decision_record(p, first + i, evs[i].key, o.res, &d, o.features_json);
        metrics_observe(&rt->m, METRICS_STAGE_DECISION_LOG, weir_mono_ns() - t0);
        if (cb) cb(ctx, &o);
    }
    if (rt->cfg.decision_flush_ms == 0 || p->ndpend >= DECISION_BATCH_MAX ||
        p->dbuf.len >= DECISION_BATCH_BYTES) {
        rc = flush_decisions(rt, p);
        if (rc) return weir_errf(err, errlen, rc, "%s", p->dfail_err);
    }
    return 0;
}

/* A request's hold of its partition. When the lock is taken, the request
 * says so (p->waiting) and spins briefly before sleeping: the holder is
 * most often a checkpoint's writer, which steps aside after the key it is
 * encoding (a few microseconds) once it sees a waiter — less than a futex
 * sleep and wake-up take on a VM. Another request holding it (hundreds of
 * microseconds) sends the waiter to sleep after PART_SPIN_NS. */
#define PART_SPIN_NS 20000

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void part_lock_request(rt_part_t *p)
{
    if (pthread_mutex_trylock(&p->lock) == 0) return;
    atomic_fetch_add_explicit(&p->waiting, 1, memory_order_relaxed);
    uint64_t until = weir_mono_ns() + PART_SPIN_NS;
    int got = 0;
    for (unsigned n = 1; !got; n++) {
        cpu_relax();
        if ((got = pthread_mutex_trylock(&p->lock) == 0)) break;
        if (n % 64 == 0 && weir_mono_ns() > until) break;
    }
    if (!got) pthread_mutex_lock(&p->lock);
    atomic_fetch_sub_explicit(&p->waiting, 1, memory_order_relaxed);
}

int runtime_process(runtime_t *rt, runtime_event_t *evs, size_t n, int want_contribs,
                    runtime_outcome_cb cb, void *ctx, char *err, size_t errlen)
{
    /* Group by partition, keeping each partition's events in request order
     * (insertion sort: stable, and requests are small or already grouped). */
    for (size_t i = 1; i < n; i++) {
        runtime_event_t e = evs[i];
        size_t j = i;
        while (j > 0 && evs[j - 1].part > e.part) {
            evs[j] = evs[j - 1];
            j--;
        }
        evs[j] = e;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && evs[j].part == evs[i].part)
            j++;
        rt_part_t *p = &rt->parts[evs[i].part];
        part_lock_request(p);
        int rc = process_part(rt, p, evs + i, j - i, want_contribs, cb, ctx, err, errlen);
        int due = engine_part_has_due(p->engine);
        pthread_mutex_unlock(&p->lock);
        if (due && rt->closer.started) weir_ticker_wake(&rt->closer); /* CLOSER */
        if (rc) return rc;
        i = j;
    }
    return 0;
}

void runtime_features(runtime_t *rt, weir_slice_t key, weir_buf_t *out)
{
    uint32_t pi = runtime_partition_of(rt, key);
    rt_part_t *p = &rt->parts[pi];
    part_lock_request(p);
    engine_result_t res;
    int found = engine_part_lookup(p->engine, key, &res);
    buf_append_str(out, "{\"key\":");
    buf_append_json_string(out, key.ptr, key.len);
    buf_appendf(out, ",\"partition\":%u,\"found\":%s,\"watermark\":", pi, found ? "true" : "false");
    if (res.watermark == INT64_MIN)
        buf_append_str(out, "null");
    else
        buf_appendf(out, "%" PRId64, res.watermark);
    buf_append_str(out, ",\"features\":");
    runtime_features_json(rt->pl.spec, res.features, out);
    buf_append_str(out, "}\n");
    pthread_mutex_unlock(&p->lock);
}


/* ---- recovery ---- */

typedef struct replay_ctx {
    runtime_t *rt;
    rt_part_t *p;
    int64_t decided;   /* last input offset with a decision */
    int emits;         /* decided events' emits are written again (recover_part) */
    uint64_t replayed; /* not yet added to the shared counter */
    log_reader_t *dr;  /* the decision log from the replay's start, for emits; NULL: none */
    int dr_said;       /* a problem with it was reported (once per partition) */
    weir_buf_t drec;   /* its record read ahead (drec_off >= 0: for that input offset) */
    int64_t drec_off;
} replay_ctx_t;

/* The replay threads add to the shared counter every REPLAYED_FLUSH events,
 * not at every event: an atomic add per event on a cache line the other
 * replay thread writes too was 2-3% of a full replay's CPU (perf). */
#define REPLAYED_FLUSH 4096

static void replayed_flush(replay_ctx_t *c)
{
    metrics_add(&c->rt->m.replayed, c->replayed);
    c->replayed = 0;
}

/* EMITS FROM THE DECISION LOG. An event decided before a crash has its
 * emit cut from the output with everything after the checkpoint (OUTPUTS
 * ACROSS CRASHES), and the replay writes it again. Emits are the one output
 * that depends on something outside the log: the rules and the model in
 * force when the event was decided, which a live reload may have changed
 * since. So the emit is written from the event's decision record, which
 * names it ("emit"): the line is the one the live server wrote. Only a
 * record without that field (written by a weir before it) is decided again
 * under the spec and model on disk. 1: written from the record (or the
 * record says no emit); 0: decide it again. */
static int emit_logged(replay_ctx_t *c, uint64_t offset, const engine_result_t *res)
{
    while (c->dr && c->drec_off < (int64_t)offset) {
        log_rec_t rec;
        char why[256];
        int k = log_reader_next(c->dr, &rec, why, sizeof why);
        if (k != 1) {
            /* The end, or a record that cannot be read: what is left is
             * decided again, as without records. */
            if (k < 0)
                fprintf(stderr,
                        "weir run: replay: decision log partition %u: %s; the emits of the events "
                        "after it are decided again\n",
                        c->p->id, why);
            log_reader_close(c->dr);
            c->dr = NULL;
            c->drec_off = -1;
            break;
        }
        buf_reset(&c->drec);
        buf_append(&c->drec, rec.value.ptr, rec.value.len);
        c->drec_off = decision_record_input(c->drec.data, c->drec.len);
    }
    if (c->drec_off != (int64_t)offset) return 0;
    /* Only the record's head is read: what decision_record writes before
     * "model" (offset, decision, rule, emit, score), not the features that
     * follow — parsing whole records was most of a replay's time. A record
     * with no "emit" there was written by an older weir. */
    const char *p = c->drec.data;
    const char *m = memmem(p, c->drec.len, ",\"model\":", 9);
    if (!m) return 0;
    size_t head = (size_t)(m - p);
    const char *e = memmem(p, head, ",\"emit\":", 8);
    if (!e) return 0;
    if (head - (size_t)(e + 8 - p) >= 4 && memcmp(e + 8, "null", 4) == 0) return 1;
    c->drec.data[head] = '}'; /* the head alone, as an object (drec is ours) */
    cJSON *doc = cJSON_ParseWithLength(c->drec.data, head + 1);
    const cJSON *emit = cJSON_GetObjectItemCaseSensitive(doc, "emit");
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(doc, "decision");
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(doc, "rule");
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(doc, "score");
    int done = cJSON_IsString(emit) && cJSON_IsString(dec) && cJSON_IsNumber(rule);
    /* The score was written in its shortest form that reads back exactly. */
    double sc = cJSON_IsNumber(score) ? score->valuedouble : NAN;
    if (done &&
        outputs_emit(c->rt->out, emit->valuestring, c->p->id, offset, res->key, dec->valuestring,
                     (int)rule->valuedouble, sc, res->raw) != 0 &&
        !c->dr_said++)
        fprintf(stderr,
                "weir run: replay: partition %u offset %" PRIu64 ": cannot write its emit to "
                "'%s' again (and perhaps others after it)\n",
                c->p->id, offset, emit->valuestring);
    cJSON_Delete(doc);
    return done;
}

static int replay_row(void *ctx, uint32_t part, uint64_t offset, const engine_result_t *res)
{
    (void)part;
    replay_ctx_t *c = ctx;
    runtime_t *rt = c->rt;
    rt_part_t *p = c->p;
    if (++c->replayed == REPLAYED_FLUSH) replayed_flush(c);
    int64_t mt = res->watermark == INT64_MIN ? INT64_MIN : res->watermark + rt->pl.src->lateness_ms;
    if (mt > p->max_time) p->max_time = mt;
    int decided = (int64_t)offset <= c->decided;
    if (decided && (!c->emits || emit_logged(c, offset, res))) return 0;
    decision_t d;
    decide_one(rt, p, res, res->raw.len, 0, &d);
    /* An event decided now for the first time: its emit is written now
     * or never, whether or not the replay rewrites the others'. */
    if (d.emit && (rt->replay_outputs || !decided))
        outputs_emit(rt->out, d.emit, p->id, offset, res->key, d.decision, d.rule, d.score, res->raw);
    if (decided) return 0;
    /* Logged, never decided: a crash came between the two appends (or took
     * the buffered batch). */
    buf_reset(&p->feat);
    runtime_features_json(rt->pl.spec, res->features, &p->feat);
    decision_record(p, offset, res->key, res, &d, (weir_slice_t){p->feat.data, p->feat.len});
    metrics_add(&rt->m.redecided, 1);
    metrics_decision(&rt->m, d.rule);
    if (p->ndpend >= DECISION_BATCH_MAX || p->dbuf.len >= DECISION_BATCH_BYTES)
        return flush_decisions(rt, p) ? 1 : 0;
    return 0;
}

static void replay_bad(void *ctx, const char *why)
{
    (void)ctx;
    fprintf(stderr, "weir run: replay: %s (skipped: --skip-bad-events)\n", why);
}

static int recover_part(runtime_t *rt, rt_part_t *p, char *err, size_t errlen)
{
    replay_ctx_t c = {
        .rt = rt, .p = p, .decided = p->decided, .drec = WEIR_BUF_INIT, .drec_off = -1};
    /* at_least_once: the events after the checkpoint are decided again,
     * whether or not their decisions made it to the log (spec.h). */
    if (rt->pl.spec->guarantee == SPEC_AT_LEAST_ONCE && rt->recovered_from)
        c.decided = (int64_t)p->from - 1;
    pthread_mutex_lock(&p->lock);
    /* Replay writes the outputs again when they were cut back to where the
     * replay starts (OUTPUTS ACROSS CRASHES, decide/outputs_dir.h); from then on, always. */
    engine_sink_t sink = {runtime_sink_window, runtime_sink_late, rt};
    engine_part_set_sink(p->engine, rt->replay_outputs ? &sink : NULL);
    p->obatch = 1;
    /* Emits to write again: of this spec, or of one run here before (a
     * reload may have removed them all since). Without, replay_row reads no
     * features of an event decided already: those are applied without;
     * with, it may decide one again for its emit (emit_logged). */
    c.emits = rt->replay_outputs && outputs_emits_ever(rt->out);
    if (!c.emits && c.decided >= 0) engine_part_features_from(p->engine, (uint64_t)c.decided + 1);
    if (c.emits && c.decided >= (int64_t)p->from) {
        /* Where the decided events' records start (EMITS FROM THE DECISION
         * LOG); if they cannot be read, they are decided again. */
        log_part_stat_t st;
        log_part_stat(p->dlog, &st);
        char why[256];
        if (log_reader_open(p->dlog, p->dfrom > st.start_offset ? p->dfrom : st.start_offset, &c.dr,
                            why, sizeof why) != 0)
            c.dr = NULL;
    }
    int rc = pipeline_replay_from(&rt->pl, p->id, p->from, replay_row, &c,
                                  rt->cfg.skip_bad ? replay_bad : NULL, NULL, err, errlen);
    if (c.dr) log_reader_close(c.dr);
    buf_free(&c.drec);
    engine_part_features_from(p->engine, 0);
    p->obatch = 0;
    replayed_flush(&c);
    out_write_part(rt, p);
    if (rc == 0 && flush_decisions(rt, p) != 0) rc = p->dfail;
    if (p->dfail) rc = weir_errf(err, errlen, p->dfail, "%s", p->dfail_err);
    engine_part_set_sink(p->engine, &sink);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* Decodes partition p's state from the checkpoint being restored; one of
 * another plan into that plan, then moved to this spec's (PLAN CHANGED
 * SINCE THE CHECKPOINT). */
static int restore_part(runtime_t *rt, rt_part_t *p, char *err, size_t errlen)
{
    const ckpt_part_t *cp = ckpt_part(rt->restoring, p->id);
    char why[512];
    engine_part_t *into =
        rt->restoring_plan ? engine_part_new(rt->restoring_plan, p->id, NULL) : p->engine;
    int rc = engine_part_decode(into, cp->blob.ptr, cp->blob.len, why, sizeof why);
    if (rc) {
        if (into != p->engine) engine_part_free(into);
        return weir_errf(err, errlen, rc, "partition %u: %s", p->id, why);
    }
    if (into != p->engine) {
        engine_part_free(p->engine);
        p->engine = rt->pl.parts[p->id] =
            engine_part_migrate(into, rt->pl.engine, NULL, &rt->moved[p->id]);
    }
    int64_t wm = engine_part_watermark(p->engine);
    p->max_time = wm == INT64_MIN ? INT64_MIN : wm + rt->pl.src->lateness_ms;
    p->from = cp->log_offset;
    p->dfrom = cp->decision_offset;
    return 0;
}

/* The work of one recovery thread: partitions taken from a shared counter. */
typedef int (*part_job_fn)(runtime_t *rt, rt_part_t *p, char *err, size_t errlen);
typedef struct part_jobs {
    runtime_t *rt;
    part_job_fn fn;
} part_jobs_t;

static void *recover_main(void *arg)
{
    part_jobs_t *jobs = arg;
    runtime_t *rt = jobs->rt;
    uint32_t i;
    char err[1024];
    while ((i = atomic_fetch_add(&rt->next_part, 1)) < rt->nparts &&
           atomic_load(&rt->recover_rc) == 0) {
        int rc = jobs->fn(rt, &rt->parts[i], err, sizeof err);
        if (rc) {
            pthread_mutex_lock(&rt->err_lock);
            if (atomic_load(&rt->recover_rc) == 0) {
                snprintf(rt->recover_err, sizeof rt->recover_err, "%s", err);
                atomic_store(&rt->recover_rc, rc);
            }
            pthread_mutex_unlock(&rt->err_lock);
        }
    }
    return NULL;
}

/* Writes every partition's buffered decisions each decision_flush_ms. */
static void flush_tick(void *arg)
{
    runtime_t *rt = arg;
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        if (atomic_load_explicit(&p->dpending, memory_order_relaxed) == 0) continue;
        pthread_mutex_lock(&p->lock);
        flush_decisions(rt, p);
        pthread_mutex_unlock(&p->lock);
    }
}

/* STATE GAUGES. weir_state_bytes and the partial matches' count need a
 * walk over every key: a cache miss each, ~100 ms at a million keys. It
 * runs here, not in the scrape: an HTTP worker busy walking would hold up
 * every request on its connections. A scrape asks (gauges_asked_ms) and
 * reads the last walk's figures; this thread walks when asked and the last
 * walk is STATS_EVERY_MS old, so the gauges lag by at most that and cost
 * nothing when nobody looks. The walk holds a partition's lock for
 * STATS_SLICE keys at a time. The other gauges (events, keys, watermark,
 * ...) are counters, read by the scrape itself. */
/* Deletes the outputs a replay of the whole log retired (outputs_dir.h),
 * off the path to ready. */
static void *remove_retired_main(void *arg)
{
    outputs_dir_remove_retired(((runtime_t *)arg)->cfg.datadir);
    return NULL;
}

static void gauges_walk(runtime_t *rt)
{
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        engine_stats_walk_t w = ENGINE_STATS_WALK_INIT;
        engine_stats_t st;
        pthread_mutex_lock(&p->lock);
        const engine_part_t *walked = p->engine;
        while (!engine_part_stats_step(p->engine, &w, STATS_SLICE, &st)) {
            pthread_mutex_unlock(&p->lock);
            /* A waiter woken by the unlock needs a moment to run: relocking
             * at once would take the lock again first. */
            usleep(STATS_GAP_US);
            pthread_mutex_lock(&p->lock);
            if (p->engine != walked) { /* a reload moved the state: start over */
                w = (engine_stats_walk_t)ENGINE_STATS_WALK_INIT;
                walked = p->engine;
            }
        }
        p->stats = st;
        pthread_mutex_unlock(&p->lock);
    }
}

/* Walks when a scrape asked since the last walk began and that one is
 * STATS_EVERY_MS old (or a reload reset it). */
static void gauges_tick(void *arg)
{
    runtime_t *rt = arg;
    int64_t asked = atomic_load(&rt->gauges_asked_ms), done = atomic_load(&rt->gauges_done_ms);
    int64_t now = weir_wall_ms();
    if (!asked || (done && (asked < done || now - done < STATS_EVERY_MS))) return;
    atomic_store(&rt->gauges_done_ms, now);
    gauges_walk(rt);
}

/* Runs fn over every partition on `threads` threads; the first error wins. */
static int for_each_part(runtime_t *rt, unsigned threads, part_job_fn fn, char *err, size_t errlen)
{
    if (threads == 0) threads = 1;
    if (threads > rt->nparts) threads = rt->nparts;
    part_jobs_t jobs = {rt, fn};
    atomic_store(&rt->next_part, 0);
    atomic_store(&rt->recover_rc, 0);
    pthread_t *th = weir_calloc(threads, sizeof *th);
    for (unsigned i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, recover_main, &jobs);
    for (unsigned i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    weir_free(th);
    int rc = atomic_load(&rt->recover_rc);
    if (rc) return weir_errf(err, errlen, rc, "%s", rt->recover_err);
    return 0;
}

/* Gives partition i a fresh, empty engine partition (a restore failed). */
static void reset_part(runtime_t *rt, uint32_t i)
{
    engine_part_free(rt->pl.parts[i]);
    rt->pl.parts[i] = rt->parts[i].engine = engine_part_new(rt->pl.engine, i, NULL);
    rt->parts[i].from = rt->parts[i].dfrom = 0;
    rt->parts[i].max_time = INT64_MIN;
}

/* PLAN CHANGED SINCE THE CHECKPOINT. A checkpoint holds the state of its
 * feature plan and carries the text of the spec that plan is of ("spec",
 * checkpointer.h). When no checkpoint fits this spec's plan (a window, an
 * aggregate or a pattern changed while the server was down), recovery can
 * do what a live reload would have done at the checkpoint: build the
 * checkpoint's plan from the spec it carries (checked against its
 * fingerprint), restore into that plan, move each partition to this spec's
 * plan (engine_migrate.h: what did not change keeps its state bit for bit,
 * what is new starts empty at the checkpoint), and replay the log from the
 * checkpoint under this spec. It does so:
 *   - when retention deleted the log's start: a replay of what is left
 *     would serve state without the deleted events (so this start used to
 *     be refused, with a live reload as the way out: this is that reload);
 *   - when asked, --migrate-state: a long log's full replay takes minutes,
 *     the move seconds; the price is new windows that cover the events
 *     from the checkpoint on, not the whole log (as after a live reload).
 * Otherwise the whole log is replayed under the new spec, every window
 * computed from every event, as before. Only when no checkpoint fits as it
 * is, and then the newest that fits otherwise; one written by a weir
 * before this (no spec in it) cannot move. */
typedef struct restore_ctx {
    runtime_t *rt;
    unsigned threads;
    int may_move;     /* a checkpoint of another plan may move (see above) */
    uint64_t movable; /* the newest such checkpoint that could, once the first pass is done */
    uint64_t moving;  /* the second pass: move this one */
    int moved;        /* it was moved */
} restore_ctx_t;

typedef struct ckpt_plan {
    spec_t *spec;
    engine_t *engine;
} ckpt_plan_t;

static void ckpt_plan_free(ckpt_plan_t *plan)
{
    engine_free(plan->engine);
    spec_free(plan->spec);
    memset(plan, 0, sizeof *plan);
}

/* The plan checkpoint ck was written for, built from the spec it carries,
 * and able to move to this spec's plan; 0, or why not. */
static int ckpt_plan_of(runtime_t *rt, const ckpt_t *ck, ckpt_plan_t *plan, char *why,
                        size_t whylen)
{
    const ckpt_info_t *info = ckpt_info(ck);
    memset(plan, 0, sizeof *plan);
    weir_slice_t text;
    if (!ckpt_kv_find(info->meta, info->nmeta, "spec", &text) || text.len == 0)
        return weir_errf(why, whylen, WEIR_EINVAL,
                         "it carries no spec (written by an older weir), so its state cannot "
                         "move to this plan");
    char inner[1024];
    uint64_t fp;
    int rc =
        spec_load_string(text.ptr, text.len, rt->cfg.spec_path, &plan->spec, inner, sizeof inner);
    if (rc == 0) rc = engine_new(plan->spec, &plan->engine, inner, sizeof inner);
    if (rc == 0 &&
        (!pipeline_checkpoint_fingerprint(ck, &fp) || !engine_fingerprint_fits(plan->engine, fp)))
        rc = weir_errf(inner, sizeof inner, WEIR_ECORRUPT, "it is not the spec of its plan");
    if (rc == 0) rc = engine_migrate_check(plan->engine, rt->pl.engine, inner, sizeof inner);
    if (rc) {
        ckpt_plan_free(plan);
        return weir_errf(why, whylen, rc,
                         "its state cannot move to this spec's plan: the spec it carries: %s",
                         inner);
    }
    return 0;
}

/* checkpointer_recover's callback: whether checkpoint ck fits this server
 * and its logs (checkpointer.h RECOVERY), then every partition decoded. */
static int restore_checkpoint(void *ctx, const ckpt_t *ck, char *why, size_t whylen)
{
    restore_ctx_t *c = ctx;
    runtime_t *rt = c->rt;
    const ckpt_info_t *info = ckpt_info(ck);
    int64_t *decided = weir_malloc(rt->nparts * sizeof *decided);
    for (uint32_t i = 0; i < rt->nparts; i++)
        decided[i] = rt->parts[i].decided;
    ckpt_plan_t plan = {0};
    int fits =
        c->moving ? PIPELINE_OTHER_PLAN
                  : pipeline_checkpoint_fits_plan(&rt->pl, rt->pl.engine, ck, decided, why, whylen);
    if (fits == PIPELINE_OTHER_PLAN && (c->moving || !c->movable)) {
        char whynot[1024];
        int rc = ckpt_plan_of(rt, ck, &plan, whynot, sizeof whynot);
        if (rc == 0)
            rc = pipeline_checkpoint_fits_plan(&rt->pl, plan.engine, ck, decided, whynot,
                                               sizeof whynot);
        if (c->moving) {
            fits = rc;
            if (rc) weir_errf(why, whylen, rc, "%s", whynot);
        } else {
            if (rc == 0) c->movable = ckpt_info(ck)->id;
            size_t n = strlen(why);
            snprintf(why + n, whylen - n, "%s%s", rc ? "; " : "",
                     rc            ? whynot
                     : c->may_move ? " (its state can move to it, if none fits as it is)"
                                   : " (its state could move to it: --migrate-state; without, the "
                                     "whole log is replayed)");
            ckpt_plan_free(&plan);
        }
    }
    weir_free(decided);
    if (fits == PIPELINE_OTHER_PLAN) fits = WEIR_EINVAL;
    if (fits) {
        ckpt_plan_free(&plan);
        return fits;
    }
    weir_slice_t positions;
    int has_positions = ckpt_kv_find(info->meta, info->nmeta, "outputs", &positions);
    /* Its outputs, to cut the files back to: only if they are the files it
     * saw (OUTPUTS GENERATION in outputs.c), as long as they were (outputs
     * shorter than it recorded lost lines written before it: a disk that
     * lost them). Otherwise, while the log has every event, it is skipped:
     * the whole log rebuilds them; without, its state is restored and the
     * files are left as they are (as with no checkpoint). */
    int foreign = has_positions && !outputs_same_generation(rt->out, positions.ptr, positions.len);
    if (has_positions && !pipeline_log_start_deleted(&rt->pl)) {
        if (foreign)
            fits = weir_errf(why, whylen, WEIR_EINVAL,
                             "the output files were rewritten whole since (a replay of the whole "
                             "log, an ingest): its ends are not theirs (the whole log rebuilds "
                             "them)");
        else
            fits = outputs_dir_short(rt->cfg.datadir, positions, why, whylen);
        if (fits) {
            ckpt_plan_free(&plan);
            return fits;
        }
    }
    rt->restoring = ck;
    rt->restoring_plan = plan.engine;
    rt->moved = plan.engine ? weir_calloc(rt->nparts, sizeof *rt->moved) : NULL;
    int rc = for_each_part(rt, c->threads, restore_part, why, whylen);
    rt->restoring = NULL;
    rt->restoring_plan = NULL;
    if (rc == 0 && plan.engine) {
        c->moved = 1;
        /* The kept/new/dropped counts are the plans', the same in every
         * partition; keys add up. */
        engine_migrate_stats_t t = rt->moved[0];
        for (uint32_t i = 1; i < rt->nparts; i++)
            t.keys_moved += rt->moved[i].keys_moved;
        fprintf(stderr,
                "weir run: recovery: checkpoint %" PRIu64 " was written for another plan: its "
                "state moved to this spec's as a live reload moves it: %" PRIu64
                " keys; window groups %u kept (%u rebuilt from their values for other "
                "aggregates), %u new, %u dropped; patterns %u kept, %u new, %u "
                "dropped; aggregates %u kept, %u new, %u dropped (new state starts empty at the "
                "checkpoint)\n",
                ckpt_info(ck)->id, t.keys_moved, t.groups_kept, t.groups_rebuilt, t.groups_new,
                t.groups_dropped, t.patterns_kept, t.patterns_new, t.patterns_dropped,
                t.aggregates_kept, t.aggregates_new, t.aggregates_dropped);
    }
    weir_free(rt->moved);
    rt->moved = NULL;
    ckpt_plan_free(&plan); /* (after the moves: they read the old plan) */
    if (rc) {
        for (uint32_t i = 0; i < rt->nparts; i++) reset_part(rt, i);
        return rc;
    }
    if (has_positions && !foreign) /* (only truncates: cannot fail) */
        outputs_dir_cut(rt->cfg.datadir, rt->out, &positions, NULL, 0);
    rt->outputs_foreign = foreign;
    return 0;
}

static int read_decided(runtime_t *rt, rt_part_t *p, char *err, size_t errlen)
{
    (void)rt;
    return decision_log_last_input(p->dlog, p->id, &p->decided, err, errlen);
}

int runtime_recover(runtime_t *rt, unsigned threads, char *err, size_t errlen)
{
    uint64_t t0 = weir_mono_ns();
    int rc = for_each_part(rt, threads, read_decided, err, errlen);
    if (rc == 0) rc = outputs_dir_put_back(rt->cfg.datadir, rt->out, err, errlen);
    if (rc) return rc;
    int whole = !pipeline_log_start_deleted(&rt->pl);
    restore_ctx_t rc_ctx = {rt, threads, .may_move = rt->cfg.migrate_state || !whole};
    size_t listed;
    rt->recovered_from = checkpointer_recover(rt->ckptr, restore_checkpoint, &rc_ctx, 0, &listed);
    if (!rt->recovered_from && rc_ctx.movable &&
        rc_ctx.may_move) { /* PLAN CHANGED SINCE THE CHECKPOINT */
        rc_ctx.moving = rc_ctx.movable;
        rt->recovered_from =
            checkpointer_recover(rt->ckptr, restore_checkpoint, &rc_ctx, rc_ctx.moving, &listed);
    }
    /* (before the replay writes a line: checkpointer.h) */
    if (rt->recovered_from) checkpointer_drop_newer(rt->ckptr, rt->recovered_from);
    if (!rt->recovered_from)
        fprintf(stderr, "weir run: recovery: %s; replaying the whole log\n",
                listed ? "no usable checkpoint" : "no checkpoint");
    if (rt->recovered_from) {
        weir_buf_t b = WEIR_BUF_INIT;
        for (uint32_t i = 0; i < rt->nparts; i++)
            buf_appendf(&b, "%s%" PRIu64, i ? "," : "", rt->parts[i].from);
        fprintf(stderr, "weir run: recovery: checkpoint %" PRIu64 ": replaying from offsets [%.*s]\n",
                rt->recovered_from, (int)b.len, b.data);
        buf_free(&b);
        rt->replay_outputs = !rt->outputs_foreign;
        if (rt->outputs_foreign)
            fprintf(stderr,
                    "weir run: recovery: the output files were rewritten whole after "
                    "checkpoint %" PRIu64 " and the log no longer has every event: "
                    "they are left as they are, and the replay writes none\n",
                    rt->recovered_from);
    } else {
        /* No checkpoint fits and retention deleted the log's start: the
         * state of the deleted events is nowhere, and a replay of what is
         * left would serve features without them (a spec whose plan changed
         * since the checkpoints, or checkpoints that do not verify). Refused,
         * as Flink refuses a savepoint that does not match, unless asked. */
        if (!whole && !rt->cfg.partial_state)
            return weir_errf(err, errlen, WEIR_EINVAL,
                             "no checkpoint fits or can move to this spec's plan (see above) and "
                             "retention deleted the start of the log: the state of the deleted "
                             "events is lost, and a replay of the rest would serve features "
                             "without them. Start with the spec the checkpoints were written for "
                             "(a changed window or aggregate can then be reloaded live, keeping "
                             "the rest), or with --allow-partial-state to serve state rebuilt "
                             "from what is left");
        rt->replay_outputs = whole;
        if (whole && (rc = outputs_dir_cut(rt->cfg.datadir, rt->out, NULL, err, errlen)) != 0)
            return rc;
    }
    int rewritten = !rt->recovered_from && rt->replay_outputs;
    rc = for_each_part(rt, threads, recover_part, err, errlen);
    /* Rebuilt whole: a new generation before the old files are let go, so
     * that a crash from here on never cuts them by an older checkpoint. */
    if (rc == 0 && rewritten) rc = outputs_new_generation(rt->out, err, errlen);
    if (rc) {
        /* Refused: the outputs as they were (what else it wrote goes with
         * them: the next start cuts back to what the checkpoints say). */
        char perr[256];
        outputs_dir_put_back(rt->cfg.datadir, rt->out, perr, sizeof perr);
        return rc;
    }
    outputs_dir_retire(rt->cfg.datadir);
    rt->cut_remover_on = pthread_create(&rt->cut_remover, NULL, remove_retired_main, rt) == 0;
    rt->recovery_s = (double)(weir_mono_ns() - t0) / 1e9;
    if (rt->cfg.decision_flush_ms > 0) {
        weir_ticker_start(&rt->flusher, rt->cfg.decision_flush_ms, flush_tick, rt);
    }
    weir_ticker_start(&rt->gauges, STATS_EVERY_MS, gauges_tick, rt);
    for (uint32_t i = 0; i < rt->nparts; i++) engine_part_defer_closes(rt->parts[i].engine, 1);
    weir_ticker_start(&rt->closer, CLOSER_EVERY_MS, closer_tick, rt);
    weir_ticker_wake(&rt->closer); /* what a checkpoint at the log's end left due */
    if (rc_ctx.moved) {
        /* This plan's first checkpoint before anything is served, as after
         * a live reload that changed the plan: a crash before the next one
         * would otherwise find only the old plan's, and a start without
         * the move's conditions would replay the whole log into state
         * other than what was served. */
        ckptr_result_t res;
        char cerr[1024];
        if (checkpointer_take(rt->ckptr, &res, cerr, sizeof cerr) != 0)
            fprintf(stderr, "weir run: recovery: the moved state's checkpoint failed: %s\n", cerr);
        else
            fprintf(stderr,
                    "weir run: recovery: checkpoint %" PRIu64 " of this spec's plan written\n",
                    res.id);
    }
    atomic_store(&rt->ready, 1);
    checkpointer_start(rt->ckptr, rt->pl.spec->checkpoint_interval_ms);
    return 0;
}

/* ---- checkpoints ---- */

/* checkpointer.h step 1: every partition locked, in order (the only place
 * that holds more than one), its decisions written under exactly_once, its
 * logs' positions noted, the outputs flushed and their ends noted. */
static int ckpt_freeze(void *ctx, uint64_t *log_off, uint64_t *dec_off, int64_t *decided,
                       weir_buf_t *extra, char *err, size_t errlen)
{
    runtime_t *rt = ctx;
    int exactly_once = rt->pl.spec->guarantee == SPEC_EXACTLY_ONCE;
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        pthread_mutex_lock(&p->lock);
        int rc = exactly_once ? flush_decisions(rt, p) : p->dfail;
        if (rc) {
            int code = weir_errf(err, errlen, rc, "checkpoint: decision log partition %u: %s", i,
                                 p->dfail_err);
            for (uint32_t j = i + 1; j-- > 0;) pthread_mutex_unlock(&rt->parts[j].lock);
            return code;
        }
        log_part_stat_t st;
        log_part_stat(p->log, &st);
        log_off[i] = st.next_offset;
        log_part_stat(p->dlog, &st);
        dec_off[i] = st.next_offset;
        decided[i] = p->decided;
    }
    /* No partition can emit now: the files end exactly at the frozen state. */
    pthread_mutex_lock(&rt->out_lock);
    char oerr[512];
    int rc = outputs_flush(rt->out, oerr, sizeof oerr);
    pthread_mutex_unlock(&rt->out_lock);
    if (rc) {
        ckpt_thaw(rt);
        return weir_errf(err, errlen, rc, "checkpoint: %s", oerr);
    }
    outputs_ends(rt->out, extra);
    return 0;
}

/* checkpointer.h step 3 (outputs_dir_sync). */
static int ckpt_sync_outputs(void *ctx, char *err, size_t errlen)
{
    return outputs_dir_sync(((runtime_t *)ctx)->cfg.datadir, err, errlen);
}

static void ckpt_thaw(void *ctx)
{
    runtime_t *rt = ctx;
    for (uint32_t i = rt->nparts; i-- > 0;) pthread_mutex_unlock(&rt->parts[i].lock);
}

static engine_part_t *ckpt_part_state(void *ctx, uint32_t i)
{
    return ((runtime_t *)ctx)->parts[i].engine;
}

static void ckpt_lock_part(void *ctx, uint32_t i)
{
    pthread_mutex_lock(&((runtime_t *)ctx)->parts[i].lock);
}

static void ckpt_unlock_part(void *ctx, uint32_t i)
{
    pthread_mutex_unlock(&((runtime_t *)ctx)->parts[i].lock);
}

static const atomic_uint *ckpt_part_waiting(void *ctx, uint32_t i)
{
    return &((runtime_t *)ctx)->parts[i].waiting;
}

int runtime_checkpoint(runtime_t *rt, weir_buf_t *json, char *err, size_t errlen)
{
    if (!runtime_ready(rt))
        return weir_errf(err, errlen, WEIR_EINVAL, "not ready: the log is being replayed");
    ckptr_result_t res;
    int rc = checkpointer_take(rt->ckptr, &res, err, errlen);
    if (rc) return rc;
    buf_appendf(json, "{\"checkpoint\":%" PRIu64 ",\"offsets\":[", res.id);
    for (uint32_t i = 0; i < rt->nparts; i++)
        buf_appendf(json, "%s%" PRIu64, i ? "," : "", res.offsets[i]);
    buf_appendf(json, "],\"bytes\":%" PRIu64 ",\"ms\":%.3f,\"pause_ms\":%.3f}\n", res.bytes,
                res.seconds * 1e3, res.pause_s * 1e3);
    return 0;
}

/* ---- control thread ---- */

void runtime_housekeep(runtime_t *rt, int64_t now_ms)
{
    if (!runtime_ready(rt)) return;
    int64_t newest = INT64_MIN;
    for (uint32_t i = 0; i < rt->nparts; i++) {
        int64_t t = atomic_load_explicit(&rt->parts[i].max_time, memory_order_relaxed);
        if (t > newest) newest = t;
    }
    weir_buf_t tick = WEIR_BUF_INIT;
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        int idle = rt->cfg.tick_idle_ms > 0 && newest != INT64_MIN &&
                   now_ms - atomic_load_explicit(&p->last_ms, memory_order_relaxed) >=
                       rt->cfg.tick_idle_ms &&
                   atomic_load_explicit(&p->max_time, memory_order_relaxed) < newest;
        if (!idle) continue;
        pthread_mutex_lock(&p->lock);
        if (idle && p->max_time < newest) {
            /* Time advances without events (principle 2): logged, so replay
             * closes the same windows at the same point. */
            buf_reset(&tick);
            engine_tick_value(&tick, newest);
            log_rec_t r = {0, now_ms, LOG_REC_TICK, {NULL, 0}, {tick.data, tick.len}};
            char err[512];
            if (log_append(p->log, &r, 1, rt->cfg.ack, &p->scratch, NULL, err, sizeof err) == 0) {
                engine_part_tick(p->engine, newest);
                p->max_time = newest;
                p->last_ms = now_ms;
                p->tick_failing = 0;
            } else if (!p->tick_failing) { /* once, not at every tick while it fails */
                p->tick_failing = 1;
                fprintf(stderr, "weir run: tick for partition %u: %s\n", i, err);
            }
        }
        pthread_mutex_unlock(&p->lock);
    }
    buf_free(&tick);
    pthread_mutex_lock(&rt->out_lock);
    char err[512];
    if (outputs_flush(rt->out, err, sizeof err) != 0) fprintf(stderr, "weir run: %s\n", err);
    pthread_mutex_unlock(&rt->out_lock);
}

/* One sample per partition of the uint64_t field at `field` of engine_stats_t. */
static void part_gauge(weir_buf_t *b, const char *name, const char *type, const char *help,
                       const engine_stats_t *es, uint32_t nparts, size_t field)
{
    char lab[64];
    metrics_header(b, name, type, help);
    for (uint32_t i = 0; i < nparts; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&es[i] + field, sizeof v);
        snprintf(lab, sizeof lab, "partition=\"%u\"", i);
        metrics_sample_u64(b, name, lab, v);
    }
}

void runtime_render_metrics(runtime_t *rt, weir_buf_t *b)
{
    /* A scrape sees the decision log with every decision made so far, the
     * engine's counters as they are, and the state gauges of the last walk
     * (STATE GAUGES), which it asks for. */
    engine_stats_t *es = weir_calloc(rt->nparts, sizeof *es);
    int64_t now = weir_wall_ms();
    atomic_store(&rt->gauges_asked_ms, now);
    if (now - atomic_load(&rt->gauges_done_ms) >= STATS_EVERY_MS) weir_ticker_wake(&rt->gauges);
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        pthread_mutex_lock(&p->lock);
        if (runtime_ready(rt)) {
            flush_decisions(rt, p);
            engine_part_counters(p->engine, &es[i]);
            es[i].state_bytes = p->stats.state_bytes;
            es[i].partial = p->stats.partial;
        }
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_lock(&rt->reload_lock); /* not while a reload swaps the rules' counters */
    metrics_render(&rt->m, b);
    pthread_mutex_unlock(&rt->reload_lock);
    metrics_header(b, "weir_spec_reloads_total", "counter",
                   "Reloads that replaced the spec (the others reloaded the model only).");
    metrics_sample_u64(b, "weir_spec_reloads_total", NULL, atomic_load(&rt->spec_reloads));
    char lab[128];
    metrics_header(b, "weir_ready", "gauge",
                   "1 once the log has been replayed and the server takes traffic.");
    metrics_sample_u64(b, "weir_ready", NULL, (uint64_t)runtime_ready(rt));
    metrics_header(b, "weir_model_version", "gauge",
                   "Version of the live model, from the data directory's model ledger "
                   "(DATA/models: one per model file content; 0 = none).");
    metrics_sample_u64(b, "weir_model_version", NULL, runtime_model_version(rt));
    ckptr_stats_t cs;
    checkpointer_stats(rt->ckptr, &cs);
    metrics_header(b, "weir_checkpoints_total", "counter", "Checkpoints taken, by result.");
    metrics_sample_u64(b, "weir_checkpoints_total", "result=\"ok\"", cs.ok);
    metrics_sample_u64(b, "weir_checkpoints_total", "result=\"failed\"", cs.failed);
    metrics_header(b, "weir_checkpoint_last_id", "gauge", "Id of the newest checkpoint written (0: none yet).");
    metrics_sample_u64(b, "weir_checkpoint_last_id", NULL, cs.last_id);
    metrics_header(b, "weir_checkpoint_last_bytes", "gauge", "State bytes of the newest checkpoint.");
    metrics_sample_u64(b, "weir_checkpoint_last_bytes", NULL, cs.last_bytes);
    metrics_header(b, "weir_checkpoint_last_seconds", "gauge", "Time the newest checkpoint took, end to end.");
    metrics_sample_f64(b, "weir_checkpoint_last_seconds", NULL, cs.last_seconds);
    metrics_header(b, "weir_checkpoint_pause_seconds", "gauge",
                   "How long the newest checkpoint held every partition at once (its freeze).");
    metrics_sample_f64(b, "weir_checkpoint_pause_seconds", NULL, cs.last_pause_s);
    metrics_header(b, "weir_recovery_checkpoint_id", "gauge",
                   "Checkpoint the last start recovered from (0: none, the whole log was replayed).");
    metrics_sample_u64(b, "weir_recovery_checkpoint_id", NULL, rt->recovered_from);
    metrics_header(b, "weir_recovery_seconds", "gauge", "Time from start to ready (restore and replay).");
    metrics_sample_f64(b, "weir_recovery_seconds", NULL, rt->recovery_s);
    metrics_header(b, "weir_heap_bytes", "gauge", "Bytes allocated by weir on the heap.");
    metrics_sample_u64(b, "weir_heap_bytes", NULL, (uint64_t)weir_alloc_used());

    static const char *const logs[2] = {"events", "decisions"};
    log_part_stat_t st[2];
    metrics_header(b, "weir_log_bytes", "gauge", "Bytes stored per log partition.");
    for (int l = 0; l < 2; l++)
        for (uint32_t i = 0; i < rt->nparts; i++) {
            log_part_stat(l ? rt->parts[i].dlog : rt->parts[i].log, &st[0]);
            snprintf(lab, sizeof lab, "log=\"%s\",partition=\"%u\"", logs[l], i);
            metrics_sample_u64(b, "weir_log_bytes", lab, st[0].bytes);
        }
    metrics_header(b, "weir_log_next_offset", "gauge",
                   "Offset the next record of a log partition gets.");
    for (int l = 0; l < 2; l++)
        for (uint32_t i = 0; i < rt->nparts; i++) {
            log_part_stat(l ? rt->parts[i].dlog : rt->parts[i].log, &st[1]);
            snprintf(lab, sizeof lab, "log=\"%s\",partition=\"%u\"", logs[l], i);
            metrics_sample_u64(b, "weir_log_next_offset", lab, st[1].next_offset);
        }
    part_gauge(b, "weir_live_keys", "gauge", "Keys with state per partition.",
               es, rt->nparts, offsetof(engine_stats_t, keys));
    part_gauge(b, "weir_state_bytes", "gauge",
               "Heap bytes of keyed state per partition (a background walk while scraped: at most 2 s old).", es, rt->nparts,
               offsetof(engine_stats_t, state_bytes));
    if (rt->pl.spec->npatterns) {
        part_gauge(b, "weir_pattern_matches_total", "counter",
                   "Pattern matches found per partition since start (replay included).",
                   es, rt->nparts, offsetof(engine_stats_t, matches));
        part_gauge(b, "weir_pattern_partial_matches", "gauge",
                   "Partial matches (runs) alive per partition (a background walk while scraped: "
                   "at most 2 s old).",
                   es,
                   rt->nparts, offsetof(engine_stats_t, partial));
        part_gauge(b, "weir_pattern_held_events", "gauge",
                   "Events held for patterns' event-time order per partition.",
                   es, rt->nparts, offsetof(engine_stats_t, held));
    }
    part_gauge(b, "weir_late_events_partition_total", "counter",
               "Late events per partition, as its state counts them (from the checkpoint "
               "restored, then replayed and live).",
               es, rt->nparts, offsetof(engine_stats_t, late));
    weir_free(es);
    metrics_header(b, "weir_event_time_seconds", "gauge",
                   "Newest event time applied per partition (Unix seconds).");
    for (uint32_t i = 0; i < rt->nparts; i++) {
        int64_t t = atomic_load_explicit(&rt->parts[i].max_time, memory_order_relaxed);
        if (t == INT64_MIN) continue;
        snprintf(lab, sizeof lab, "partition=\"%u\"", i);
        metrics_sample_f64(b, "weir_event_time_seconds", lab, (double)t / 1000.0);
    }
}
