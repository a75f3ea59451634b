/* reload.c — SIGHUP and POST /v1/admin/reload: the model, or the whole
 * spec, replaced without a restart (issue: patterns and features can be
 * added, changed or removed live, keeping the state of what did not change).
 *
 * WHAT A RELOAD DOES. It reads the spec file again.
 *   - The same bytes as the running spec: only the model file is loaded
 *     again (decide_reload: in-flight decisions finish on the old model).
 *   - Another spec: it is loaded and checked completely before anything
 *     changes — the spec itself, its engine plan, that the running state
 *     can move to it (engine_migrate_check: the source, its schema, key,
 *     time, lateness, the partitions and the pipeline name must stay; they
 *     define the log and the checkpoints), its model and its outputs. Any
 *     failure leaves the running spec and model in place and says why.
 *     Then the swap: checkpoints are held off, every partition's lock is
 *     taken (requests wait), each partition's state moves to the new plan
 *     (engine_migrate.h: what is unchanged keeps its state, what is new
 *     starts empty), the decision layer, outputs and per-rule metrics are
 *     replaced, and everything is let go. The pause is the state's move,
 *     1.5 µs per key when only patterns, derived features, rules
 *     or the model changed (the key table moves in place), ~7 µs per key
 *     when the windows changed (engine_part_migrate). Events logged
 *     after the swap are processed by the new spec. Then a checkpoint of
 *     the new plan is taken before the reload answers, so that a crash
 *     recovers the state as served. A replay of the whole log with the
 *     spec on disk (no usable checkpoint) differs from what was served
 *     only in the state the new spec adds (it then sees the whole log, not
 *     just what came after the reload).
 * Replaced specs stay allocated until the runtime closes: request threads
 * decode events at the edge by the source schema (unchanged) without
 * holding a partition lock, and may still hold a pointer into the old spec. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "serve/online_store.h"
#include "serve/runtime_int.h"
#include "stream/engine_migrate.h"
#include "stream/engine_state.h"

int runtime_reload_init(runtime_t *rt, char *err, size_t errlen)
{
    pthread_mutex_init(&rt->reload_lock, NULL);
    (void)err;
    (void)errlen;
    /* The text the running spec was loaded from, not the file read again
     * (it may have changed since): what reloads compare with and what the
     * checkpoints carry must be that spec's. */
    buf_append(&rt->spec_text, rt->pl.spec_text.data, rt->pl.spec_text.len);
    return 0;
}

void runtime_reload_free(runtime_t *rt)
{
    for (size_t i = 0; i < rt->nretired; i++) {
        spec_free(rt->retired[i].spec);
        weir_free(rt->retired[i].outcomes);
    }
    weir_free(rt->retired);
    buf_free(&rt->spec_text);
    pthread_mutex_destroy(&rt->reload_lock);
}

/* Whether two kafka: are the same (both absent, or every key). */
static int kafka_same(const spec_kafka_t *a, const spec_kafka_t *b)
{
    if (!a->brokers || !b->brokers) return !a->brokers && !b->brokers;
    if (strcmp(a->brokers, b->brokers) || strcmp(a->topic, b->topic) ||
        strcmp(a->group, b->group) || a->nconfig != b->nconfig)
        return 0;
    for (uint32_t i = 0; i < 2 * a->nconfig; i++)
        if (strcmp(a->config[i], b->config[i])) return 0;
    return 1;
}

/* What a new spec brings, built and checked before the swap. */
typedef struct staged {
    spec_t *spec;
    engine_t *engine;
    decide_t *decide;
    outputs_t *out;
    const char **outcomes;
} staged_t;

static void staged_free(staged_t *st)
{
    if (st->out) outputs_close(st->out, NULL, 0);
    decide_free(st->decide);
    engine_free(st->engine);
    spec_free(st->spec);
    weir_free(st->outcomes);
}

static int stage(runtime_t *rt, const weir_buf_t *text, staged_t *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    char why[1024];
    /* From the text read once, the text the checkpoints will carry (runtime.c
     * PLAN CHANGED SINCE THE CHECKPOINT): not the file again, which may
     * have changed since. */
    int rc = spec_load_string(text->data ? text->data : "", text->len, rt->cfg.spec_path, &st->spec,
                              why, sizeof why);
    if (rc) return weir_errf(err, errlen, rc, "the new spec does not load: %s", why);
    const spec_t *s = st->spec;
    if (strcmp(s->pipeline, rt->pl.spec->pipeline) != 0)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "the pipeline is renamed ('%s' to '%s'): that needs a restart (its "
                         "checkpoints carry the name)",
                         rt->pl.spec->pipeline, s->pipeline);
    const spec_online_store_t *was = &rt->pl.spec->online, *now = &s->online;
    if (!!was->redis != !!now->redis || (rt->online && !online_store_same(rt->online, now)))
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "the online_store changed: that needs a restart (its writer is set up "
                         "at start)");
    if (!kafka_same(&rt->pl.src->kafka, &s->sources[0].kafka))
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "source '%s' kafka changed: that needs a restart (its consumer is set "
                         "up at start)",
                         s->sources[0].name);
    if (!kafka_same(&rt->pl.spec->decisions_kafka, &s->decisions_kafka))
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "sinks decisions kafka changed: that needs a restart (its producer is "
                         "set up at start)");
    if ((rc = engine_new(s, &st->engine, why, sizeof why)) != 0)
        return weir_errf(err, errlen, rc, "the new spec: %s", why);
    if ((rc = engine_migrate_check(rt->pl.engine, st->engine, why, sizeof why)) != 0)
        return weir_errf(err, errlen, rc, "%s", why);
    decide_ledger_t ledger = {.datadir = rt->cfg.datadir,
                              .add = 1,
                              .spec_text = text->data,
                              .spec_len = text->len,
                              .spec_path = rt->cfg.spec_path};
    if ((rc = decide_new(s, &ledger, &st->decide, why, sizeof why)) != 0)
        return weir_errf(err, errlen, rc, "the new spec: %s", why);
    if ((rc = outputs_open(rt->cfg.datadir, s, &st->out, why, sizeof why)) != 0)
        return weir_errf(err, errlen, rc, "the new spec's outputs: %s", why);
    st->outcomes = weir_calloc(s->ndecisions + 1, sizeof *st->outcomes);
    for (uint32_t i = 0; i < s->ndecisions; i++)
        st->outcomes[i] = s->decisions[i].then;
    return 0;
}

/* Moves every partition to the staged spec; holding nothing on entry. */
static void swap_in(runtime_t *rt, staged_t *st, const weir_buf_t *text)
{
    checkpointer_hold(rt->ckptr);
    for (uint32_t i = 0; i < rt->nparts; i++) pthread_mutex_lock(&rt->parts[i].lock);
    atomic_store(&rt->gauges_done_ms, 0); /* state gauges again at the next scrape */
    engine_migrate_stats_t total = {0};
    weir_buf_t fresh = WEIR_BUF_INIT;
    engine_migrate_describe_new(rt->pl.spec, st->spec, &fresh);
    uint64_t t0 = weir_mono_ns();
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        engine_migrate_stats_t ms;
        engine_sink_t sink = {runtime_sink_window, runtime_sink_late, rt, runtime_sink_changed};
        /* Windows already due go out under the spec that closed them, as
         * they would have without deferred closes (runtime.c, CLOSER). */
        engine_part_close_due(p->engine, SIZE_MAX);
        p->engine = rt->pl.parts[i] = engine_part_migrate(p->engine, st->engine, &sink, &ms);
        /* The kept/new/dropped counts are the plans', the same for every
         * partition; keys add up. */
        if (i == 0)
            total = ms;
        else
            total.keys_moved += ms.keys_moved;
    }
    /* Everything that reads the spec under a partition lock changes now. */
    rt->retired = weir_realloc(rt->retired, (rt->nretired + 1) * sizeof *rt->retired);
    rt->retired[rt->nretired++] = (rt_retired_t){rt->pl.spec, rt->outcomes};
    engine_t *old_engine = rt->pl.engine;
    decide_t *old_decide = rt->decide;
    rt->pl.spec = st->spec;
    rt->pl.src = &st->spec->sources[0];
    rt->pl.engine = st->engine;
    rt->decide = st->decide;
    rt->outcomes = st->outcomes;
    pthread_mutex_lock(&rt->out_lock);
    outputs_t *old_out = rt->out;
    rt->out = st->out;
    pthread_mutex_unlock(&rt->out_lock);
    metrics_set_rules(&rt->m, st->outcomes, st->spec->ndecisions); /* under reload_lock too */
    /* The old streams' buffered lines (the closes above among them) reach
     * their files before a checkpoint can look: one waiting for the release
     * below records the files' ends, and lines written after that were cut
     * at recovery and never written again. */
    char oerr[256];
    int failure = outputs_failure(old_out);
    if (outputs_close(old_out, oerr, sizeof oerr) != 0) {
        fprintf(stderr, "weir run: reload: closing the old outputs: %s\n", oerr);
        if (!failure) failure = EIO;
    }
    /* Sticky (outputs.h): the old streams' failure, their last flush's
     * included, is the new ones' — before any checkpoint can look. */
    outputs_keep_failure(rt->out, failure);
    double ms = (double)(weir_mono_ns() - t0) / 1e6;
    for (uint32_t i = rt->nparts; i-- > 0;) pthread_mutex_unlock(&rt->parts[i].lock);
    if (rt->online) online_store_resync(rt->online); /* every key's features may have changed */
    checkpointer_release(rt->ckptr, engine_fingerprint(st->engine), text->data, text->len);
    engine_free(old_engine);
    decide_free(old_decide);
    fprintf(stderr,
            "weir run: reload: spec replaced in %.1f ms: %" PRIu64 " keys moved; window groups "
            "%u kept (%u rebuilt from their values for other aggregates), %u new, %u dropped; "
            "patterns %u kept, %u new, %u dropped; aggregates %u "
            "kept, %u new, %u dropped (new state starts empty)\n",
            ms, total.keys_moved, total.groups_kept, total.groups_rebuilt, total.groups_new,
            total.groups_dropped, total.patterns_kept, total.patterns_new, total.patterns_dropped,
            total.aggregates_kept, total.aggregates_new, total.aggregates_dropped);
    if (fresh.len)
        fprintf(stderr,
                "weir run: reload: starting empty, new or changed (a pattern's definition is "
                "its steps, order, within and the step fields its emit and then read): %.*s\n",
                (int)fresh.len, fresh.data);
    buf_free(&fresh);
    memset(st, 0, sizeof *st); /* the runtime owns it all now */
}

int runtime_reload(runtime_t *rt, const char *via, uint64_t *version, uint64_t *spec_version,
                   int *spec_changed, char *err, size_t errlen)
{
    pthread_mutex_lock(&rt->reload_lock);
    if (!runtime_ready(rt)) { /* recovery writes the state without locks (api.c) */
        *spec_changed = 0;
        *version = decide_model_version(rt->decide);
        *spec_version = decide_spec_version(rt->decide);
        pthread_mutex_unlock(&rt->reload_lock);
        return weir_errf(err, errlen, WEIR_EINVAL, "not ready: the log is being replayed");
    }
    weir_buf_t text = WEIR_BUF_INIT;
    uint64_t fp_before = 0;
    int plan_changed = 0;
    int rc = spec_read_file(rt->cfg.spec_path, &text, err, errlen);
    /* (a spec file that cannot be read counts as changed: a bad spec) */
    *spec_changed = rc != 0 || (text.len != rt->spec_text.len ||
                                memcmp(text.data, rt->spec_text.data, text.len) != 0);
    int nothing = 0;
    if (rc == 0 && !*spec_changed) {
        /* The same spec: the model file is what changed — or, without a
         * model, nothing did (a SIGHUP from a config watcher): a success
         * that changes nothing, not a failure (it answered 409 and said
         * "reload failed"). */
        const spec_t *s = rt->pl.spec;
        if (s->has_model)
            rc = decide_reload(rt->decide, s->model.resolved, err, errlen);
        else
            nothing = 1;
    } else if (rc == 0) {
        fp_before = engine_fingerprint(rt->pl.engine);
        staged_t st;
        rc = stage(rt, &text, &st, err, errlen);
        if (rc) {
            staged_free(&st);
        } else {
            swap_in(rt, &st, &text);
            plan_changed = engine_fingerprint(rt->pl.engine) != fp_before;
            buf_reset(&rt->spec_text);
            buf_append(&rt->spec_text, text.data, text.len);
            atomic_fetch_add(&rt->spec_reloads, 1);
        }
    }
    buf_free(&text);
    metrics_add(rc ? &rt->m.reload_failures : &rt->m.reloads, 1);
    *version = decide_model_version(rt->decide);
    atomic_store(&rt->model_version, *version);
    *spec_version = decide_spec_version(rt->decide); /* (under the lock: not a later reload's) */
    atomic_store(&rt->spec_version, *spec_version);
    /* Every outcome said, whatever asked: a model that changed the
     * decisions must leave a trace besides a counter. */
    const char *digest = decide_model_digest(rt->decide);
    if (rc == 0 && nothing)
        fprintf(stderr,
                "weir run: reload (%s): nothing to do (the spec is unchanged and has no "
                "model)\n",
                via);
    else if (rc == 0)
        fprintf(stderr, "weir run: reload (%s): %s; model %" PRIu64 "%s%s%s; spec %" PRIu64 "\n",
                via, *spec_changed ? "spec replaced" : "model reloaded", *version,
                *digest ? " (" : "", digest, *digest ? ")" : "", decide_spec_version(rt->decide));
    else
        fprintf(stderr,
                "weir run: reload (%s) failed; the running spec and model %" PRIu64
                " stay live: %s\n",
                via, *version, err);
    pthread_mutex_unlock(&rt->reload_lock);
    if (rc == 0 && plan_changed) {
        /* The new plan's first checkpoint, before the answer (as Flink
         * upgrades from a savepoint): without it a crash before the next
         * periodic one recovers from one of the old plan, which does not
         * fit, and replays the whole log under the new spec, whose new
         * state then differs from what was served (it would see the whole
         * log, not start at the reload). Only when the plan changed (not
         * the rules, the model or a comment: the old checkpoints still
         * fit). Outside reload_lock: /metrics takes it; the HTTP reload
         * runs on a thread of its own (api.c). A failure does not undo the
         * reload; it is said. */
        ckptr_result_t res;
        char cerr[512];
        if (checkpointer_take(rt->ckptr, &res, cerr, sizeof cerr) != 0)
            fprintf(stderr, "weir run: reload: the checkpoint after it failed: %s\n", cerr);
    }
    return rc;
}
