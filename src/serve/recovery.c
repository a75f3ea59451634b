/* recovery.c — recovery at start (runtime_recover): the newest checkpoint
 * that fits restored (or one of another plan moved to this spec's: PLAN
 * CHANGED SINCE THE CHECKPOINT), each partition's log replayed from it
 * through the engine on recovery threads, the events a crash left
 * undecided decided, and the outputs cut back and written again (OUTPUTS
 * ACROSS CRASHES, decide/outputs_dir.h). Before `ready` the recovery
 * threads hold the partitions (runtime.c, THREADS). */
#include "serve/runtime.h"
#include "serve/runtime_int.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "decide/decision_log.h"
#include "decide/outputs.h"
#include "decide/outputs_dir.h"
#include "decide/pipeline.h"
#include "serve/checkpointer.h"
#include "stream/engine_migrate.h"
#include "stream/engine_state.h"

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
    int have_features = runtime_decide_one(rt, p, res, res->raw.len, 0, &d);
    /* An event decided now for the first time: its emit is written now
     * or never, whether or not the replay rewrites the others'. */
    if (d.emit && (rt->replay_outputs || !decided))
        outputs_emit(rt->out, d.emit, p->id, offset, res->key, d.decision, d.rule, d.score,
                     res->raw);
    if (decided) return 0;
    /* Logged, never decided: a crash came between the two appends (or took
     * the buffered batch). */
    if (!have_features) {
        buf_reset(&p->feat);
        runtime_features_json(rt->pl.spec, res->features, &p->feat);
    }
    runtime_decision_record(p, offset, res->key, res, &d,
                            (weir_slice_t){p->feat.data, p->feat.len});
    metrics_add(&rt->m.redecided, 1);
    if (!res->duplicate) metrics_decision(&rt->m, d.rule); /* counted with its first */
    if (p->ndpend >= DECISION_BATCH_MAX || p->dbuf.len >= DECISION_BATCH_BYTES)
        return runtime_flush_decisions(rt, p) ? 1 : 0;
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
    engine_sink_t sink = {runtime_sink_window, runtime_sink_late, rt, runtime_sink_changed};
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
    runtime_out_write_part(rt, p);
    if (rc == 0 && runtime_flush_decisions(rt, p) != 0) rc = p->dfail;
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
    weir_slice_t marks;
    if (rt->ktopic && ckpt_kv_find(cp->meta, cp->nmeta, "kafka", &marks) &&
        kafka_marks_decode(&p->kmarks, rt->ktopic, marks, why, sizeof why) != 0)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "partition %u: %s", p->id, why);
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

/* Deletes the outputs a replay of the whole log retired (outputs_dir.h),
 * off the path to ready. */
static void *remove_retired_main(void *arg)
{
    outputs_dir_remove_retired(((runtime_t *)arg)->cfg.datadir);
    return NULL;
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
    kafka_marks_clear(&rt->parts[i].kmarks);
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
        for (uint32_t i = 0; i < rt->nparts; i++)
            reset_part(rt, i);
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
        fprintf(stderr,
                "weir run: recovery: checkpoint %" PRIu64 ": replaying from offsets [%.*s]\n",
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
    runtime_start_tickers(rt);
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
    runtime_trim_after_recovery(rt); /* MEMORY BUDGET (runtime.h) */
    atomic_store(&rt->ready, 1);
    checkpointer_start(rt->ckptr, rt->pl.spec->checkpoint_interval_ms);
    return 0;
}
