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

#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/memlimit.h"
#include "base/error.h"
#include "base/hash.h"
#include "decide/decision_log.h"
#include "decide/model_ledger.h"
#include "decide/outputs.h"
#include "decide/outputs_dir.h"
#include "decide/pipeline.h"
#include "serve/checkpointer.h"
#include "serve/kafka_sink.h"
#include "serve/kafka_source.h"
#include "serve/online_store.h"
#include "base/numfmt.h"
#include "stream/engine_state.h"

#define STATS_EVERY_MS       2000      /* state gauges: a walk over every key at most this often */
#define STATS_SLICE          512       /* keys walked per hold of a partition's lock (~50 us) */
#define STATS_GAP_US         20        /* and the gap between two holds */
#define CLOSE_SLICE          256       /* due windows emitted per hold of a partition's lock */
#define CLOSER_EVERY_MS      100       /* and how often the closer looks, unless woken */

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

void runtime_out_write_part(runtime_t *rt, rt_part_t *p)
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
    if (p->olines && p->oagg != agg) runtime_out_write_part(rt, p);
    p->oagg = agg;
    return &p->oline;
}

static void out_line_done(runtime_t *rt, rt_part_t *p)
{
    p->olines++;
    if (!p->obatch || p->oline.len >= OUT_BATCH_BYTES) runtime_out_write_part(rt, p);
}

void runtime_sink_window(void *ctx, uint32_t part, const spec_aggregate_t *agg, weir_slice_t key,
                         int64_t start, int64_t end, int partial, const expr_value_t *vals)
{
    runtime_t *rt = ctx;
    rt_part_t *p = &rt->parts[part];
    outputs_window_line(rt->out, out_line(rt, p, agg), &p->ospan, part, agg, key, start, end,
                        partial, vals);
    out_line_done(rt, p);
}

/* A key whose features changed without an event of its own (its state
 * expired, a pattern matched at the watermark) is written to the online
 * store again (or deleted). */
void runtime_sink_changed(void *ctx, uint32_t part, weir_slice_t key)
{
    runtime_t *rt = ctx;
    if (rt->online) online_store_changed(rt->online, part, key);
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
                       weir_buf_t *marks, weir_buf_t *extra, char *err, size_t errlen);
static void replay_source(void *ctx, uint32_t part, uint64_t offset, weir_slice_t value);
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
    decide_ledger_t ledger = {.datadir = cfg->datadir,
                              .add = 1,
                              .spec_text = rt->pl.spec_text.data,
                              .spec_len = rt->pl.spec_text.len,
                              .spec_path = cfg->spec_path};
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
    atomic_store(&rt->spec_version, decide_spec_version(rt->decide));
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
        p->dfind = DECISION_FINDER_INIT(p->dlog);
        p->max_time = INT64_MIN;
        p->last_ms = weir_wall_ms();
    }
    if (rt->pl.src->kafka.brokers) {
        /* (a copy: a reload frees the spec; one changing kafka: is refused) */
        rt->ktopic = weir_strdup(rt->pl.src->kafka.topic);
        rt->pl.on_source = replay_source;
        rt->pl.source_ctx = rt;
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
    if (s->online.redis) {
        int64_t ttl = s->online.ttl_ms;
        if (ttl == SPEC_ONLINE_TTL_STATE) ttl = engine_ttl(rt->pl.engine);
        const char *password = s->online.password_env ? getenv(s->online.password_env) : NULL;
        if (s->online.password_env && !password) {
            rc = weir_errf(err, errlen, WEIR_EINVAL,
                           "online_store: password_env names %s, which is not set in weir run's "
                           "environment",
                           s->online.password_env);
            runtime_close(rt, NULL, 0); /* (frees s: the message first) */
            return rc;
        }
        rt->online = online_store_new(rt, &s->online, ttl, password);
    }
    if ((rt->ktopic && !(rt->kafka = kafka_source_new(rt, rt->pl.src, err, errlen))) ||
        (s->decisions_kafka.brokers &&
         !(rt->ksink = kafka_sink_new(rt, &s->decisions_kafka, cfg->datadir, err, errlen)))) {
        rc = WEIR_EINVAL;
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

int runtime_close(runtime_t *rt, char *err, size_t errlen)
{
    if (!rt) return 0;
    /* (first: its rounds go through the partitions) */
    kafka_source_free(rt->kafka);
    rt->kafka = NULL;
    /* (before the decision logs close: it reads them) */
    kafka_sink_free(rt->ksink);
    rt->ksink = NULL;
    weir_ticker_stop(&rt->gauges);
    weir_ticker_stop(&rt->flusher);
    weir_ticker_stop(&rt->closer);
    /* (its last pass reads the partitions, which are still whole) */
    online_store_free(rt->online);
    rt->online = NULL;
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
        int frc = runtime_flush_decisions(rt, p);
        pthread_mutex_unlock(&p->lock);
        if (frc && rc == 0) rc = weir_errf(err, errlen, frc, "%s", p->dfail_err);
    }
    for (uint32_t i = 0; i < rt->nparts; i++)
        decision_finder_close(&rt->parts[i].dfind);
    log_close(rt->dlog); /* syncs every partition */
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        pthread_mutex_destroy(&p->lock);
        buf_free(&p->scratch);
        buf_free(&p->dscratch);
        buf_free(&p->dbuf);
        buf_free(&p->feat);
        buf_free(&p->duprec);
        buf_free(&p->dupdec);
        buf_free(&p->oline);
        buf_free(&p->krecs);
        kafka_marks_free(&p->kmarks);
        weir_free(p->recs);
        weir_free(p->drecs);
        weir_free(p->dpend);
        decide_scratch_free(&p->lower);
    }
    weir_free(rt->parts);
    weir_free(rt->ktopic);
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

log_part_t *runtime_decision_log(runtime_t *rt, uint32_t p)
{
    return rt->parts[p].dlog;
}

log_part_t *runtime_event_log(runtime_t *rt, uint32_t p)
{
    return rt->parts[p].log;
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
            return weir_errf(
                why, whylen, WEIR_EIO,
                "partition %u's %s log refuses appends after a write or fsync failure "
                "(a full disk, an I/O error: stderr says): restart weir once its cause "
                "is fixed",
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

uint64_t runtime_spec_version(runtime_t *rt)
{
    return atomic_load(&rt->spec_version);
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
int runtime_decide_one(runtime_t *rt, rt_part_t *p, const engine_result_t *res, size_t raw_len,
                       int contribs, decision_t *d)
{
    if (res->duplicate && runtime_as_first(rt, p, res->duplicate_of, d)) return 1;
    decide_event_in(rt->decide, &p->lower, raw_len, res->fields, res->features, contribs, d);
    /* A duplicate's action was taken for its first: it is not emitted again
     * (nor by a replay, which writes emits from the record). */
    if (res->duplicate) d->emit = NULL;
    return 0;
}

/* Buffers one decision record (value, then key) in p's pending batch. */
void runtime_decision_record(rt_part_t *p, uint64_t offset, weir_slice_t key,
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
    buf_append_str(b, ",\"spec\":");
    numfmt_append_u64(b, d->spec_version);
    buf_append_str(b, res && res->late ? ",\"late\":true" : ",\"late\":false");
    /* only for a duplicate: the records of a source without an id are as
     * before (its decision is its first's: duplicates.c) */
    if (res && res->duplicate) {
        buf_append_str(b, ",\"duplicate_of\":");
        numfmt_append_u64(b, res->duplicate_of);
    }
    buf_append_str(b, ",\"features\":");
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
int runtime_flush_decisions(runtime_t *rt, rt_part_t *p)
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

/* MEMORY BUDGET: the anonymous resident figure, read from /proc by
 * housekeeping (every 250 ms) and at ready, never on a request's path
 * (the read is some 10 us, and a request holds its partition's lock). */
static void sample_resident(runtime_t *rt)
{
    uint64_t anon;
    weir_memory_resident(&anon);
    atomic_store_explicit(&rt->rss_anon, anon, memory_order_relaxed);
}

uint64_t runtime_memory_used(runtime_t *rt)
{
    uint64_t heap = weir_alloc_used();
    uint64_t anon = atomic_load_explicit(&rt->rss_anon, memory_order_relaxed);
    return heap > anon ? heap : anon;
}

/* MEMORY BUDGET: 0 when events are taken, 1 when those of new keys are
 * refused (the memory used is over the budget), 2 when all are (the heap
 * alone is over it and an eighth: the held keys' own state grew). Not the
 * resident figure for 2: what malloc keeps beyond the heap would refuse
 * the very events whose time lets keys expire, for good. */
static int memory_level(runtime_t *rt, uint64_t *used)
{
    uint64_t max = rt->cfg.max_memory;
    *used = 0;
    if (!max) return 0;
    *used = runtime_memory_used(rt);
    if (*used <= max) return 0;
    return weir_alloc_used() > RUNTIME_MEMORY_HARD(max) ? 2 : 1;
}

/* MEMORY BUDGET: freed memory back to the kernel (housekeeping's, every
 * 250 ms) when the heap fell by an eighth from its peak since the last
 * time (keys expired, a reload dropped state), or at most every
 * TRIM_OVER_NS while weir is over the budget with the resident figure a
 * sixteenth of it above the heap (what malloc keeps free is counted
 * there: a checkpoint's buffers, freed, left it 10 MiB higher each time in
 * a 192 MiB cgroup). malloc_trim walks the arenas' free memory under their
 * locks, so not more often than that. */
#define TRIM_OVER_NS (5 * 1000000000ull)
#define TRIM_OVER_MAX_NS (300 * 1000000000ull)

static void trim_freed(runtime_t *rt)
{
    sample_resident(rt);
    uint64_t heap = weir_alloc_used(), max = rt->cfg.max_memory, now = weir_mono_ns();
    if (heap > rt->trim_peak) rt->trim_peak = heap;
    if (!rt->trim_gap_ns) rt->trim_gap_ns = TRIM_OVER_NS;
    int fell = heap + rt->trim_peak / 8 <= rt->trim_peak;
    uint64_t used = runtime_memory_used(rt);
    int over =
        max && used > max && used - heap > max / 16 && now - rt->trim_at_ns > rt->trim_gap_ns;
    if (!fell && !over) return;
    malloc_trim(0);
    rt->trim_peak = heap;
    rt->trim_at_ns = now;
    sample_resident(rt); /* (what the trim gave back) */
    /* A trim that gave back little (memory in huge pages, or in use after
     * all) is not tried again as often: the gap doubles, up to 5 minutes. */
    uint64_t after = runtime_memory_used(rt);
    if (over && after + max / 64 > used)
        rt->trim_gap_ns =
            rt->trim_gap_ns * 2 < TRIM_OVER_MAX_NS ? rt->trim_gap_ns * 2 : TRIM_OVER_MAX_NS;
    else
        rt->trim_gap_ns = TRIM_OVER_NS;
}

/* MEMORY BUDGET: a change of level said on stderr, once a minute at most
 * (a level flapping at the budget's edge is said by the metric). */
#define MEMORY_SAY_NS (60 * 1000000000ull)

static void say_memory(runtime_t *rt)
{
    uint64_t used, now = weir_mono_ns(), max = rt->cfg.max_memory;
    int level = memory_level(rt, &used);
    if (level == rt->mem_said || (rt->mem_said_ns && now - rt->mem_said_ns < MEMORY_SAY_NS)) return;
    if (level == 0)
        fprintf(stderr,
                "weir run: memory: under the budget again (%.1f of %.1f MiB): events are taken\n",
                (double)used / (1 << 20), (double)max / (1 << 20));
    else if (level == 1)
        fprintf(stderr,
                "weir run: memory: weir uses %.1f MiB, over the budget (--max-memory, %.1f MiB): "
                "events of keys without state are refused (503 memory_full) until keys expire "
                "(ttl); raise --max-memory to take them\n",
                (double)used / (1 << 20), (double)max / (1 << 20));
    else
        fprintf(
            stderr,
            "weir run: memory: the heap holds %.1f MiB, over the budget (--max-memory, %.1f "
            "MiB) and an eighth: every event is refused (503 memory_full) until state is freed; "
            "raise --max-memory to take them\n",
            (double)weir_alloc_used() / (1 << 20), (double)max / (1 << 20));
    rt->mem_said = level;
    rt->mem_said_ns = now;
}

/* A SOURCE record met by the replay (pipeline.h): the Kafka marks it
 * carries, in its partition (whose lock the replay holds). */
static void replay_source(void *ctx, uint32_t part, uint64_t offset, weir_slice_t value)
{
    runtime_t *rt = ctx;
    char why[128];
    if (kafka_marks_apply(&rt->parts[part].kmarks, rt->ktopic, value, why, sizeof why) != 0)
        fprintf(stderr, "weir run: replay: partition %u offset %" PRIu64 ": %s (skipped)\n", part,
                offset, why);
}

void runtime_trim_after_recovery(runtime_t *rt)
{
    malloc_trim(0);
    rt->trim_peak = weir_alloc_used();
    sample_resident(rt);
}

/* Whether Kafka partition k is among refused[0..n): a Kafka message
 * refused in a call makes the later ones of its Kafka partition refused
 * with it: one logged after it would raise the weir partition's mark past
 * the refused one, which the consumer's retry would then skip as logged
 * (kafka_source.h). */
static int kafka_refused_before(const int32_t *refused, size_t n, int32_t k)
{
    for (size_t j = 0; j < n; j++)
        if (refused[j] == k) return 1;
    return 0;
}

/* MEMORY BUDGET (runtime.h): takes out of evs[0..n), all of partition p
 * (whose lock is held, so the key lookup holds until the events are
 * applied), the events the budget refuses, telling cb of each; returns how
 * many are left, in their order. */
static size_t refuse_over_budget(runtime_t *rt, rt_part_t *p, runtime_event_t *evs, size_t n,
                                 runtime_outcome_cb cb, void *ctx)
{
    uint64_t max = rt->cfg.max_memory, used;
    int level = memory_level(rt, &used);
    if (level == 0) return n;
    int every = level == 2;
    char why[400];
    snprintf(why, sizeof why,
             every ? "weir's heap holds %.1f MiB, over --max-memory (%.1f MiB) and "
                     "an eighth more: every event is refused until state is freed (keys expire "
                     "by their ttl) or the limit is raised; nothing was logged"
                   : "weir uses %.1f MiB, over --max-memory (%.1f MiB): "
                     "events of keys it holds no state for are refused until keys expire (ttl) "
                     "or the limit is raised; nothing was logged",
             (double)(every ? weir_alloc_used() : used) / (1 << 20), (double)max / (1 << 20));
    size_t kept = 0, nref = 0;
    /* (the Kafka partitions refused so far: evs is compacted in place) */
    int32_t *refused = rt->ktopic ? weir_malloc(n * sizeof *refused) : NULL;
    for (size_t i = 0; i < n; i++) {
        int kafka = evs[i].from_kafka;
        if (!every && engine_part_holds(p->engine, evs[i].key) &&
            !(kafka && kafka_refused_before(refused, nref, evs[i].kpart))) {
            evs[kept++] = evs[i];
            continue;
        }
        if (kafka) refused[nref++] = evs[i].kpart;
        metrics_add(&metrics_shard(&rt->m)->rejected[METRICS_REJ_MEMORY_FULL], 1);
        runtime_outcome_t o = {.ev = &evs[i], .why = why, .refused = 1};
        if (cb) cb(ctx, &o);
    }
    weir_free(refused);
    return kept;
}

/* KAFKA (kafka_source.h): takes out of evs[0..n), all of partition p,
 * the Kafka messages p logged already (read again after a crash, a
 * rebalance or a retry), telling cb of each; returns how many are left. */
static size_t skip_logged(rt_part_t *p, runtime_event_t *evs, size_t n, runtime_outcome_cb cb,
                          void *ctx)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (!evs[i].from_kafka || evs[i].koff > kafka_marks_get(&p->kmarks, evs[i].kpart)) {
            evs[kept++] = evs[i];
            continue;
        }
        runtime_outcome_t o = {.ev = &evs[i], .logged_before = 1};
        if (cb) cb(ctx, &o);
    }
    return kept;
}

/* KAFKA: the SOURCE records of the Kafka messages among evs[0..n) (one
 * per Kafka partition, its newest offset: kafka_marks.h) into p->recs from
 * index n, their values in p->krecs; how many. The marks go in the
 * events' batch, so that both are logged or neither. */
static size_t kafka_records(runtime_t *rt, rt_part_t *p, const runtime_event_t *evs, size_t n,
                            int64_t now)
{
    kafka_marks_t newest = {0};
    for (size_t i = 0; i < n; i++)
        if (evs[i].from_kafka) kafka_marks_raise(&newest, evs[i].kpart, evs[i].koff);
    size_t nk = 0;
    for (uint32_t k = 0; k < newest.n; k++)
        nk += newest.off[k] != KAFKA_MARKS_NONE;
    grow(p, n + nk);
    buf_reset(&p->krecs);
    size_t j = n, at = 0;
    for (uint32_t k = 0; k < newest.n; k++) {
        if (newest.off[k] == KAFKA_MARKS_NONE) continue;
        kafka_marks_record(&p->krecs, rt->ktopic, rt->kcluster, (int32_t)k, newest.off[k]);
        /* (an offset for now: the buffer may move while it grows) */
        p->recs[j++] = (log_rec_t){0, now, LOG_REC_SOURCE, {NULL, 0}, {NULL, p->krecs.len - at}};
        at = p->krecs.len;
    }
    for (size_t i = n, off = 0; i < j; off += p->recs[i++].value.len)
        p->recs[i].value.ptr = p->krecs.data + off;
    kafka_marks_free(&newest);
    return nk;
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
    if (rt->ktopic && (n = skip_logged(p, evs, n, cb, ctx)) == 0) return 0;
    if ((n = refuse_over_budget(rt, p, evs, n, cb, ctx)) == 0) return 0;
    int64_t now = weir_wall_ms();
    size_t nk = rt->ktopic ? kafka_records(rt, p, evs, n, now) : 0;
    grow(p, n + nk);
    for (size_t i = 0; i < n; i++)
        p->recs[i] = (log_rec_t){0, now, LOG_REC_EVENT, evs[i].key, evs[i].raw};
    /* Stage times chain: each stage's end is the next one's start (the
     * clock is read 5 times per event, not twice per stage). */
    uint64_t first, t0 = weir_mono_ns(), t1;
    int rc = log_append(p->log, p->recs, n + nk, nk ? LOG_ACK_DURABLE : rt->cfg.ack, &p->scratch,
                        &first, err, errlen);
    t1 = weir_mono_ns();
    metrics_observe(&rt->m, METRICS_STAGE_LOG_APPEND, t1 - t0);
    if (rc) return rc;
    for (size_t i = 0; nk && i < n; i++)
        if (evs[i].from_kafka) kafka_marks_raise(&p->kmarks, evs[i].kpart, evs[i].koff);
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
            int have_features = runtime_decide_one(rt, p, &res, evs[i].raw.len, contribs, &d);
            t0 = weir_mono_ns();
            metrics_observe(&rt->m, METRICS_STAGE_MODEL, t0 - t1);
            if (!have_features) runtime_features_json(s, res.features, &p->feat);
            o.res = &res;
            o.features_json = (weir_slice_t){p->feat.data, p->feat.len};
            metrics_shard_t *ms = metrics_shard(&rt->m);
            metrics_add(&ms->accepted, 1);
            if (res.late) metrics_add(&ms->late, 1);
            if (res.duplicate) metrics_add(&ms->duplicates, 1);
            /* (a late event, or a duplicate behind the watermark, applies
             * nothing but reads the key's windows at the watermark, which
             * they answer nothing below from then on: the key's value moves
             * to that time, engine_part_lookup_newest) */
            if (rt->online) online_store_mark_hashed(rt->online, p->id, res.key_hash, evs[i].key);
            /* a duplicate's is its first's, counted once (and its rule number
             * is of the spec that decided it) */
            if (!res.duplicate) metrics_decision(&rt->m, d.rule);
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
        runtime_decision_record(p, first + i, evs[i].key, o.res, &d, o.features_json);
        metrics_observe(&rt->m, METRICS_STAGE_DECISION_LOG, weir_mono_ns() - t0);
        if (cb) cb(ctx, &o);
    }
    if (rt->cfg.decision_flush_ms == 0 || p->ndpend >= DECISION_BATCH_MAX ||
        p->dbuf.len >= DECISION_BATCH_BYTES) {
        rc = runtime_flush_decisions(rt, p);
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
        if (rt->online) online_store_kick(rt->online);
        if (due && rt->closer.started) weir_ticker_wake(&rt->closer); /* CLOSER */
        if (rc) return rc;
        i = j;
    }
    return 0;
}

void runtime_kafka_span(runtime_t *rt, int32_t k, int64_t *lo, int64_t *hi)
{
    *lo = INT64_MAX;
    *hi = KAFKA_MARKS_NONE;
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        pthread_mutex_lock(&p->lock);
        int64_t o = kafka_marks_get(&p->kmarks, k);
        pthread_mutex_unlock(&p->lock);
        if (o < *lo) *lo = o;
        if (o > *hi) *hi = o;
    }
}

uint32_t runtime_kafka_cluster(runtime_t *rt, const char *cluster)
{
    if (!cluster || !*cluster) {
        /* not known now: the records go on naming the marks' cluster, so
         * that a replay does not take them for another's */
        for (uint32_t i = 0; i < rt->nparts && !*rt->kcluster; i++) {
            rt_part_t *p = &rt->parts[i];
            pthread_mutex_lock(&p->lock);
            snprintf(rt->kcluster, sizeof rt->kcluster, "%s", p->kmarks.cluster);
            pthread_mutex_unlock(&p->lock);
        }
        return 0;
    }
    snprintf(rt->kcluster, sizeof rt->kcluster, "%s", cluster);
    uint32_t dropped = 0;
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        pthread_mutex_lock(&p->lock);
        dropped += (uint32_t)kafka_marks_adopt(&p->kmarks, rt->kcluster);
        pthread_mutex_unlock(&p->lock);
    }
    return dropped;
}

int runtime_kafka_forget(runtime_t *rt, int32_t k, char *err, size_t errlen)
{
    int rc = 0;
    for (uint32_t i = 0; i < rt->nparts && rc == 0; i++) {
        rt_part_t *p = &rt->parts[i];
        pthread_mutex_lock(&p->lock);
        /* logged (durably) before it is dropped: a replay drops it too */
        buf_reset(&p->krecs);
        kafka_marks_record(&p->krecs, rt->ktopic, rt->kcluster, k, KAFKA_MARKS_NONE);
        log_rec_t rec = {
            0, weir_wall_ms(), LOG_REC_SOURCE, {NULL, 0}, {p->krecs.data, p->krecs.len}};
        uint64_t at;
        rc = log_append(p->log, &rec, 1, LOG_ACK_DURABLE, &p->scratch, &at, err, errlen);
        if (rc == 0) kafka_marks_set(&p->kmarks, k, KAFKA_MARKS_NONE);
        pthread_mutex_unlock(&p->lock);
    }
    return rc;
}

void runtime_features(runtime_t *rt, weir_slice_t key, weir_buf_t *out)
{
    uint32_t pi = runtime_partition_of(rt, key);
    rt_part_t *p = &rt->parts[pi];
    part_lock_request(p);
    engine_result_t res;
    int found = engine_part_lookup(p->engine, key, &res);
    buf_append_str(out, "{\"key\":");
    outputs_json_key(out, rt->pl.src, key); /* (an int key's text was checked: api.c) */
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

/* ---- from ready on (recovery.c starts them) ---- */

/* Writes every partition's buffered decisions each decision_flush_ms. */
static void flush_tick(void *arg)
{
    runtime_t *rt = arg;
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        if (atomic_load_explicit(&p->dpending, memory_order_relaxed) == 0) continue;
        pthread_mutex_lock(&p->lock);
        runtime_flush_decisions(rt, p);
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

/* What runs from ready on: the decision flusher, the state gauges and the
 * closer, which from now on emits due windows off the request path (CLOSER);
 * woken once for what a checkpoint at the log's end left due. */
void runtime_start_tickers(runtime_t *rt)
{
    if (rt->cfg.decision_flush_ms > 0)
        weir_ticker_start(&rt->flusher, rt->cfg.decision_flush_ms, flush_tick, rt);
    weir_ticker_start(&rt->gauges, STATS_EVERY_MS, gauges_tick, rt);
    for (uint32_t i = 0; i < rt->nparts; i++) engine_part_defer_closes(rt->parts[i].engine, 1);
    weir_ticker_start(&rt->closer, CLOSER_EVERY_MS, closer_tick, rt);
    if (rt->online) online_store_start(rt->online);
    if (rt->kafka) kafka_source_start(rt->kafka); /* the marks are rebuilt: it may read */
    if (rt->ksink) kafka_sink_start(rt->ksink);
    weir_ticker_wake(&rt->closer); /* what a checkpoint at the log's end left due */
}

/* ---- checkpoints ---- */

/* checkpointer.h step 1: every partition locked, in order (the only place
 * that holds more than one), its decisions written under exactly_once, its
 * logs' positions noted, the outputs flushed and their ends noted. */
static int ckpt_freeze(void *ctx, uint64_t *log_off, uint64_t *dec_off, int64_t *decided,
                       weir_buf_t *marks, weir_buf_t *extra, char *err, size_t errlen)
{
    runtime_t *rt = ctx;
    int exactly_once = rt->pl.spec->guarantee == SPEC_EXACTLY_ONCE;
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        pthread_mutex_lock(&p->lock);
        int rc = exactly_once ? runtime_flush_decisions(rt, p) : p->dfail;
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
        if (rt->ktopic) kafka_marks_encode(&p->kmarks, rt->ktopic, &marks[i]);
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
    trim_freed(rt);
    say_memory(rt);
    pthread_mutex_lock(&rt->out_lock);
    char err[512];
    /* Once: a failed output write is sticky (lines may be missing after
     * it), and it was said at every tick (43 lines in 10 s of a full disk). */
    if (outputs_flush(rt->out, err, sizeof err) != 0 && !rt->out_said) {
        rt->out_said = 1;
        fprintf(stderr,
                "weir run: %s/outputs: %s; lines after it may be missing from the output files "
                "until a restart writes them again from the last checkpoint (checkpoints fail "
                "meanwhile)\n",
                rt->cfg.datadir, err);
    }
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

/* A gauge without labels: its HELP and TYPE lines, then its sample. */
static void gauge_u64(weir_buf_t *b, const char *name, const char *help, uint64_t v)
{
    metrics_header(b, name, "gauge", help);
    metrics_sample_u64(b, name, NULL, v);
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
            runtime_flush_decisions(rt, p);
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
    uint64_t failed = 0;
    for (uint32_t i = 0; i < rt->nparts; i++)
        failed += log_part_failed(rt->parts[i].log) || log_part_failed(rt->parts[i].dlog);
    gauge_u64(b, "weir_ready",
              "1 when /readyz answers 200: the log has been replayed and no partition's log "
              "refuses appends.",
              (uint64_t)(runtime_ready(rt) && !failed));
    gauge_u64(b, "weir_log_failed_partitions",
              "Partitions whose event or decision log refuses appends after a write or fsync "
              "failure (until a restart; stderr says which and why).",
              failed);
    gauge_u64(b, "weir_model_version",
              "Version of the live model, from the data directory's model ledger "
              "(DATA/models: one per model file content; 0 = none).",
              runtime_model_version(rt));
    gauge_u64(b, "weir_spec_version",
              "Version of the live spec, from the data directory's spec ledger "
              "(DATA/specs: one per spec text, kept in DATA/specs.d).",
              runtime_spec_version(rt));
    ckptr_stats_t cs;
    checkpointer_stats(rt->ckptr, &cs);
    metrics_header(b, "weir_checkpoints_total", "counter", "Checkpoints taken, by result.");
    metrics_sample_u64(b, "weir_checkpoints_total", "result=\"ok\"", cs.ok);
    metrics_sample_u64(b, "weir_checkpoints_total", "result=\"failed\"", cs.failed);
    gauge_u64(b, "weir_checkpoint_last_id", "Id of the newest checkpoint written (0: none yet).",
              cs.last_id);
    gauge_u64(b, "weir_checkpoint_last_bytes", "State bytes of the newest checkpoint.",
              cs.last_bytes);
    metrics_header(b, "weir_checkpoint_last_seconds", "gauge", "Time the newest checkpoint took, end to end.");
    metrics_sample_f64(b, "weir_checkpoint_last_seconds", NULL, cs.last_seconds);
    metrics_header(b, "weir_checkpoint_pause_seconds", "gauge",
                   "How long the newest checkpoint held every partition at once (its freeze).");
    metrics_sample_f64(b, "weir_checkpoint_pause_seconds", NULL, cs.last_pause_s);
    gauge_u64(b, "weir_recovery_checkpoint_id",
              "Checkpoint the last start recovered from (0: none, the whole log was replayed).",
              rt->recovered_from);
    metrics_header(b, "weir_recovery_seconds", "gauge", "Time from start to ready (restore and replay).");
    metrics_sample_f64(b, "weir_recovery_seconds", NULL, rt->recovery_s);
    gauge_u64(b, "weir_heap_bytes", "Bytes allocated by weir on the heap.",
              (uint64_t)weir_alloc_used());
    uint64_t used = runtime_memory_used(rt), max = rt->cfg.max_memory;
    gauge_u64(b, "weir_memory_budget_bytes",
              "--max-memory: over it, events of new keys are refused (0: no budget).", max);
    gauge_u64(b, "weir_memory_used_bytes",
              "What the memory budget holds against: the heap or the anonymous resident "
              "memory, whichever is more.",
              used);
    gauge_u64(b, "weir_memory_refusing",
              "0: events accepted; 1: over the budget, events of new keys refused; 2: over "
              "it and an eighth more, every event refused.",
              (uint64_t)memory_level(rt, &used));
    gauge_u64(b, "process_resident_memory_bytes", "Resident memory size in bytes.",
              weir_memory_resident(NULL));

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
    if (rt->online) online_store_metrics(rt->online, b);
    if (rt->kafka) kafka_source_metrics(rt->kafka, b);
    if (rt->ksink) kafka_sink_metrics(rt->ksink, b);
    metrics_header(b, "weir_event_time_seconds", "gauge",
                   "Newest event time applied per partition (Unix seconds).");
    for (uint32_t i = 0; i < rt->nparts; i++) {
        int64_t t = atomic_load_explicit(&rt->parts[i].max_time, memory_order_relaxed);
        if (t == INT64_MIN) continue;
        snprintf(lab, sizeof lab, "partition=\"%u\"", i);
        metrics_sample_f64(b, "weir_event_time_seconds", lab, (double)t / 1000.0);
    }
}
