/* cmd_verify.c — `weir verify SPEC --data DIR`: recomputes, offline, every
 * decision the server logged, and reports any difference (DESIGN.md).
 *
 * The event log is replayed through the same engine as backfill and
 * recovery; each event's features are scored and decided by the spec's
 * model and rules, exactly as the server decides (runtime.c runtime_decide_one);
 * and the result is compared with the event's record in the decision log,
 * read in step (records are in input-offset order per partition):
 * decision, rule, score (bit for bit: the record's number is the shortest
 * text that reads back to the same double), the late flag, and the
 * features (byte for byte, in the server's own JSON: runtime_features_json).
 *
 * What is not a difference: events at the end of a partition that have no
 * decision yet (a server stopped by a crash decides them at its next
 * start), and, under at_least_once, a second record of an event, if it is
 * equal too. What is: an event without a decision before a decided one, a
 * record of an event the log does not hold, and every unequal value. A
 * spec or model changed since the server decided shows as differences —
 * verify checks the decision log against the spec and model it is given,
 * which is the point of running it after a change — except a reload of the
 * model or of the rules, checked with what decided (below).
 *
 * THE MODEL THAT DECIDED. A record names the version of the model that
 * decided it, a number of the data directory's model ledger (DATA/models,
 * decide/model_ledger.h), which also says where that model's file was
 * first loaded from and the digest of its bytes. When a record's version
 * is not offline's and that file is still there with that digest, the
 * record is recomputed with it (same spec and rules otherwise), so that a
 * model reload is not a difference; when the file changed or is gone, the
 * record is recomputed with offline's, and a difference says which
 * version decided. The summary counts the records checked each way.
 *
 * THE SPEC THAT DECIDED. A record also names the version of the spec text
 * it was decided under (spec_ledger.h: DATA/specs, the texts kept in
 * DATA/specs.d). When the spec verify is given decided here too (it is in
 * the ledger: an audit after reloads, not a what-if of a draft, which is
 * checked against every record), and that text is kept and has the same
 * feature plan (fingerprint) and the same fields and features (name, type,
 * definition, order) — a reload of rules or thresholds — the record is
 * recomputed with its rules (and the model version that decided it, as
 * above) on this replay's features, which are compared with the record's
 * all the same. Otherwise (other fields, features or definitions: its
 * rules may read what this replay does not compute; its text gone) it is
 * checked against this spec's rules, and a difference names the version
 * and where its text is. The summary counts both, so that a reload's new
 * rules read as the reload, not as a fault.
 *
 * RUNS. Records are in input-offset order, except after a restart under
 * at_least_once, which decides the events after the checkpoint again and
 * appends those records after the others: the offsets fall back. So a
 * first pass reads only each record's offset and cuts the partition's
 * decision log into runs, each in order; then the replay walks every run at
 * once (a merge: an event is compared with its record in each run).
 *
 * WHERE IT STARTS. With the whole event log, at its start: everything is
 * checked. When retention deleted the log's start, the state of the events
 * before it is only in a checkpoint: verify then restores the oldest one
 * that verifies and that recovery could take, and checks the events after
 * it (the most it can). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/error.h"
#include "cli/cli.h"
#include "decide/decide.h"
#include "decide/decision_log.h"
#include "decide/model_ledger.h"
#include "decide/spec_ledger.h"
#include "decide/pipeline.h"
#include "log/checkpoint.h"
#include "serve/online_store.h"
#include "serve/runtime.h"
#include "stream/engine_state.h"

static const char verify_usage[] =
    "usage: weir verify SPEC --data DIR [--show N] [--skip-bad-events] [--no-online-store]\n"
    "\n"
    "Replays the event log of the spec's source in DIR, scores and decides every\n"
    "event offline with the spec's model and rules, and compares the result with\n"
    "the decision the server logged for it (DIR/decisions): decision, rule, score\n"
    "(bit for bit), late flag and every feature value. Prints the first N\n"
    "differences (default 10), then a summary per partition. Events at the end of\n"
    "a partition without a decision yet (a crashed server decides them when it\n"
    "starts again) are counted, not differences. When retention deleted the start\n"
    "of the event log, the oldest usable checkpoint is restored and the events\n"
    "after it are checked. Beside a running server, it checks what is written so far.\n"
    "An event in the log the spec cannot read is an error, unless --skip-bad-events\n"
    "(give it when the server had it) leaves it out.\n"
    "With an online_store: in the spec, the state the replay ends with then gives\n"
    "every key's value (what weir run writes to Redis), compared with Redis's:\n"
    "run it once the server has stopped and written everything\n"
    "(weir_online_store_pending 0); a key Redis holds otherwise is a difference,\n"
    "and one it lacks where it keeps keys (ttl: 0s). --no-online-store skips it.\n"
    "Exit status: 0 when every decision (and online store value) is equal, 1 when\n"
    "any differs, 2 on error.\n";

/* A run of the decision log: records in input-offset order (RUNS). */
typedef struct run {
    log_reader_t *r;
    uint64_t left;  /* records of the run not read yet */
    cJSON *rec;     /* its current record, parsed; NULL past its end */
    weir_buf_t raw; /* that record's text (its features are compared as text) */
    int64_t off;    /* the input offset it decides */
} run_t;

typedef struct verify {
    const spec_t *spec;
    const engine_t *engine; /* its plan (THE SPEC THAT DECIDED: same_inputs) */
    weir_slice_t spec_text; /* what spec was loaded from: its version (THE SPEC THAT DECIDED) */
    const char *data;
    int skip_bad; /* --skip-bad-events, as the server was started with */
    decide_t *decide;
    /* THE MODEL THAT DECIDED: a decider per version met (NULL: its file is
     * gone or changed), and the records checked with such a one */
    struct {
        uint64_t version;
        decide_t *decide;
    } * models;
    size_t nmodels;
    uint64_t by_own_model;
    uint64_t by_other_spec; /* THE SPEC THAT DECIDED: records of another spec version */
    /* a decider per (spec version, model version) met (NULL: cannot be
     * had), and the records recomputed with such a one */
    struct {
        uint64_t sv, mv;
        spec_t *spec;
        decide_t *decide;
    } * specs;
    size_t nspecs;
    uint64_t by_own_spec;
    uint32_t part;
    run_t *runs;
    uint32_t nruns;
    /* The partition's replayed events: [from, end). Records of events
     * before from (decided before the checkpoint verify starts at; under
     * at_least_once some follow its decision offset) are not checked, nor
     * those at or past end (written after verify opened the event log,
     * by a running server). */
    int64_t from, end;
    int err_rc; /* a read error of the decision log, in err */
    char err[1024];
    weir_buf_t feat;
    decide_scratch_t lower;
    decision_finder_t dfind; /* a duplicate's first's record (compare) */
    weir_buf_t firstrec;
    uint64_t show, shown;
    uint64_t oshown; /* online store differences shown (verify_online) */
    /* per partition */
    uint64_t events, checked, unequal, differ, undecided_run;
    int64_t undecided_first;
} verify_t;

static int not_a_record(verify_t *v, uint64_t at)
{
    return v->err_rc = weir_errf(
               v->err, sizeof v->err, WEIR_ECORRUPT,
               "decision log partition %u offset %" PRIu64 ": not a decision record", v->part, at);
}

/* Moves run u to its next record; NULL rec at its end. */
static int next_record(verify_t *v, run_t *u)
{
    cJSON_Delete(u->rec);
    u->rec = NULL;
    if (!u->left) return 0;
    u->left--;
    log_rec_t r;
    int n = log_reader_next(u->r, &r, v->err, sizeof v->err);
    if (n <= 0) return v->err_rc = n ? n : not_a_record(v, 0);
    buf_reset(&u->raw);
    buf_append(&u->raw, r.value.ptr, r.value.len);
    u->off = decision_record_input(r.value.ptr, r.value.len);
    if (u->off < 0 || !(u->rec = cJSON_ParseWithLength(u->raw.data, u->raw.len)))
        return not_a_record(v, r.offset);
    return 1;
}

/* Cuts the partition's decision log, from decision offset `from`, into runs
 * and opens a reader on each (RUNS). */
static int open_runs(verify_t *v, log_part_t *dp, uint64_t from)
{
    log_reader_t *r;
    if (log_reader_open(dp, from, &r, v->err, sizeof v->err) != 0) return v->err_rc = -1;
    int64_t prev = -1;
    uint64_t *starts = NULL, *counts = NULL;
    log_rec_t rec;
    int n;
    while ((n = log_reader_next(r, &rec, v->err, sizeof v->err)) == 1) {
        int64_t off = decision_record_input(rec.value.ptr, rec.value.len);
        if (off < 0) {
            n = not_a_record(v, rec.offset);
            break;
        }
        if (off <= prev || !v->nruns) {
            starts = weir_realloc(starts, (v->nruns + 1) * sizeof *starts);
            counts = weir_realloc(counts, (v->nruns + 1) * sizeof *counts);
            starts[v->nruns] = rec.offset;
            counts[v->nruns++] = 0;
        }
        counts[v->nruns - 1]++;
        prev = off;
    }
    log_reader_close(r);
    v->runs = weir_calloc(v->nruns ? v->nruns : 1, sizeof *v->runs);
    for (uint32_t k = 0; k < v->nruns && n == 0; k++) {
        run_t *u = &v->runs[k];
        u->raw = (weir_buf_t)WEIR_BUF_INIT;
        u->left = counts[k];
        if (log_reader_open(dp, starts[k], &u->r, v->err, sizeof v->err) != 0 ||
            next_record(v, u) < 0)
            n = -1;
    }
    weir_free(starts);
    weir_free(counts);
    return n < 0 ? (v->err_rc = n) : 0;
}

static void close_runs(verify_t *v)
{
    for (uint32_t k = 0; k < v->nruns; k++) {
        cJSON_Delete(v->runs[k].rec);
        buf_free(&v->runs[k].raw);
        if (v->runs[k].r) log_reader_close(v->runs[k].r);
    }
    weir_free(v->runs);
    v->runs = NULL;
    v->nruns = 0;
}

static void say(verify_t *v, uint64_t offset, const char *what)
{
    if (v->shown++ < v->show)
        printf("partition %u offset %" PRIu64 ": %s\n", v->part, offset, what);
}

/* Moves run u past its records of input offsets below `below`: decisions
 * of no replayed event, each a difference (`what`) unless it is before the
 * replayed range (see verify_t.from). */
static int pass_records(verify_t *v, run_t *u, int64_t below, const char *what)
{
    while (u->rec && u->off < below) {
        if (u->off >= v->from) {
            v->differ++;
            say(v, (uint64_t)u->off, what);
        }
        if (next_record(v, u) < 0) return -1;
    }
    return 0;
}

/* The record's features: the text after `,"features":` up to its closing
 * brace (the last member; a string value cannot hold that quote unescaped). */
static weir_slice_t record_features(const run_t *u)
{
    static const char mark[] = ",\"features\":";
    const char *at = memmem(u->raw.data, u->raw.len, mark, sizeof mark - 1);
    if (!at) return (weir_slice_t){"", 0};
    at += sizeof mark - 1;
    return (weir_slice_t){at, (size_t)(u->raw.data + u->raw.len - 1 - at)};
}

/* Appends the first feature whose value differs between the two objects. */
static void feature_diff(weir_buf_t *b, const verify_t *v, weir_slice_t online)
{
    cJSON *on = cJSON_ParseWithLength(online.ptr, online.len);
    cJSON *off = cJSON_ParseWithLength(v->feat.data, v->feat.len);
    int found = 0;
    for (uint32_t i = 0; i < v->spec->nfeatures && !found; i++) {
        const char *name = v->spec->features[i].name;
        char *a = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(on, name));
        char *o = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(off, name));
        if (!a || !o || strcmp(a, o) != 0) {
            buf_appendf(b, "; feature %s: %.100s online, %.100s offline", name, a ? a : "(absent)",
                        o ? o : "(absent)");
            found = 1;
        }
        cJSON_free(a);
        cJSON_free(o);
    }
    if (!found)
        buf_appendf(b, "; features: %.200s online, %.200s offline", online.ptr, v->feat.data);
    cJSON_Delete(on);
    cJSON_Delete(off);
}

/* Whether a duplicate's record u repeats its first's (at input offset
 * `first`): decision, rule, score, versions and features. Says how not in
 * what, else leaves it empty. */
static void first_differs(verify_t *v, const run_t *u, uint64_t first, char *what, size_t cap)
{
    char why[512];
    int rc = decision_find(&v->dfind, first, &v->firstrec, why, sizeof why);
    if (rc != 1) {
        snprintf(what, cap, "its first's decision (offset %" PRIu64 ") %s", first,
                 rc < 0 ? "cannot be read" : "is not in the decision log");
        return;
    }
    cJSON *f = cJSON_ParseWithLength(v->firstrec.data, v->firstrec.len);
    static const char *const same[] = {"decision", "rule", "score", "model", "spec", "features"};
    for (size_t i = 0; i < sizeof same / sizeof *same && !*what; i++)
        if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(f, same[i]),
                           cJSON_GetObjectItemCaseSensitive(u->rec, same[i]), 1))
            snprintf(what, cap, "a duplicate whose %s is not its first's (offset %" PRIu64 ")",
                     same[i], first);
    cJSON_Delete(f);
}

/* Compares run u's current record with the offline decision d of the event. */
static void compare(verify_t *v, const run_t *u, uint64_t offset, const engine_result_t *res,
                    const decision_t *d)
{
    /* A duplicate's record repeats its first's decision (serve/duplicates.c),
     * which is checked at the first's offset: here, that it is a duplicate of
     * the same first, and repeats that first's record. */
    const cJSON *dup = cJSON_GetObjectItemCaseSensitive(u->rec, "duplicate_of");
    if (dup || res->duplicate) {
        int64_t online = cJSON_IsNumber(dup) && dup->valuedouble >= 0 && dup->valuedouble < 1e15
                             ? (int64_t)dup->valuedouble
                             : -1;
        int64_t offline = res->duplicate ? (int64_t)res->duplicate_of : -1;
        v->checked++;
        char what[200] = "";
        if (online != offline) {
            char on[40] = "no event", off[40] = "no event";
            if (online >= 0) snprintf(on, sizeof on, "offset %" PRId64, online);
            if (offline >= 0) snprintf(off, sizeof off, "offset %" PRId64, offline);
            snprintf(what, sizeof what, "a duplicate of %s online, of %s offline%s", on, off,
                     online < 0 ? " (was the source's id added since?)" : "");
        } else {
            first_differs(v, u, (uint64_t)online, what, sizeof what);
        }
        if (*what) {
            v->unequal++;
            v->differ++;
            say(v, offset, what);
        }
        return;
    }
    weir_buf_t b = WEIR_BUF_INIT;
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(u->rec, "decision");
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(u->rec, "rule");
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(u->rec, "score");
    const cJSON *late = cJSON_GetObjectItemCaseSensitive(u->rec, "late");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(u->rec, "model");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(u->rec, "spec");
    /* (a damaged record's number is checked before it is cast) */
    int other_spec = cJSON_IsNumber(spec) && spec->valuedouble >= 0 && spec->valuedouble < 1e15 &&
                     (uint64_t)spec->valuedouble != d->spec_version;
    v->by_other_spec += other_spec;
    const char *on_dec = cJSON_IsString(dec) ? dec->valuestring : NULL;
    if (!(on_dec && d->decision ? !strcmp(on_dec, d->decision) : on_dec == d->decision))
        buf_appendf(&b, "; decision %s online, %s offline", on_dec ? on_dec : "null",
                    d->decision ? d->decision : "null");
    if (!cJSON_IsNumber(rule) || (int)rule->valuedouble != d->rule)
        buf_appendf(&b, "; rule %d online, %d offline",
                    cJSON_IsNumber(rule) ? (int)rule->valuedouble : -2, d->rule);
    /* Non-finite scores are logged as null. */
    int same_score = cJSON_IsNull(score) ? !isfinite(d->score)
                                         : cJSON_IsNumber(score) && score->valuedouble == d->score;
    if (!same_score)
        buf_appendf(&b, "; score %.17g online, %.17g offline",
                    cJSON_IsNumber(score) ? score->valuedouble : NAN, d->score);
    if (!cJSON_IsBool(late) || cJSON_IsTrue(late) != (res->late != 0))
        buf_appendf(&b, "; late %s online, %s offline", cJSON_IsTrue(late) ? "true" : "false",
                    res->late ? "true" : "false");
    buf_reset(&v->feat);
    runtime_features_json(v->spec, res->features, &v->feat);
    weir_slice_t online = record_features(u);
    if (online.len != v->feat.len || memcmp(online.ptr, v->feat.data, online.len) != 0)
        feature_diff(&b, v, online);
    v->checked++;
    if (b.len) {
        v->unequal++;
        v->differ++;
        /* Versions are the data directory's model ledger's: the same
         * number is the same model file, across restarts. */
        if (cJSON_IsNumber(model) && (uint64_t)model->valuedouble != d->model_version) {
            if (d->model_version)
                buf_appendf(&b, " (decided by model version %.0f; offline is version %" PRIu64 ")",
                            model->valuedouble, d->model_version);
            else
                buf_appendf(&b,
                            " (decided by model version %.0f; the offline model never decided "
                            "here: it is not in %s/" MODEL_LEDGER_FILE ")",
                            model->valuedouble, v->data);
        }
        if (other_spec) {
            char copy[4200], where[4300], offline[64] = "the offline spec never decided here";
            if (spec_ledger_copy(v->data, (uint64_t)spec->valuedouble, copy, sizeof copy) &&
                access(copy, R_OK) == 0)
                snprintf(where, sizeof where, "its text in %s", copy);
            else
                snprintf(where, sizeof where, "%s/" SPEC_COPIES_DIR " has no text of it", v->data);
            if (d->spec_version)
                snprintf(offline, sizeof offline, "offline is version %" PRIu64, d->spec_version);
            buf_appendf(&b, " (decided under spec version %.0f, %s; %s)", spec->valuedouble, where,
                        offline);
        }
        /* recomputed with the spec that decided (spec_of): say so */
        if (!other_spec && d->spec_version != decide_spec_version(v->decide))
            buf_appendf(&b, " (decided under spec version %" PRIu64 ", recomputed with its rules)",
                        d->spec_version);
        say(v, offset, b.data + 2);
    }
    buf_free(&b);
}

/* The decider of model version mv (THE MODEL THAT DECIDED), or NULL. */
static decide_t *model_of(verify_t *v, uint64_t mv)
{
    for (size_t i = 0; i < v->nmodels; i++)
        if (v->models[i].version == mv) return v->models[i].decide;
    decide_t *d = NULL;
    char path[4096], err[1024];
    if (model_ledger_path(v->data, mv, path, sizeof path) &&
        decide_new(v->spec,
                   &(decide_ledger_t){.datadir = v->data,
                                      .spec_text = v->spec_text.ptr,
                                      .spec_len = v->spec_text.len},
                   &d, err, sizeof err) == 0 &&
        (decide_reload(d, path, err, sizeof err) != 0 || decide_model_version(d) != mv)) {
        decide_free(d); /* changed since (its digest is another), or no longer fits */
        d = NULL;
    }
    v->models = weir_realloc(v->models, (v->nmodels + 1) * sizeof *v->models);
    v->models[v->nmodels].version = mv;
    v->models[v->nmodels++].decide = d;
    return d;
}

/* Whether rules written for spec b read what spec a's replay gives: the same
 * feature plan (windows, aggregates, patterns, source: the fingerprint),
 * the same source fields and features by name, type and definition, in the
 * same order — so that pattern.NAME flags, which records do not hold,
 * come from the same definitions too. */
static int same_inputs(const spec_t *a, const engine_t *ea, const spec_t *b)
{
    engine_t *eb = NULL;
    char err[512];
    if (engine_new(b, &eb, err, sizeof err) != 0) return 0;
    int same = engine_fingerprint(ea) == engine_fingerprint(eb);
    engine_free(eb);
    if (!same) return 0;
    const spec_source_t *x = &a->sources[0], *y = &b->sources[0];
    if (x->nfields != y->nfields || a->nfeatures != b->nfeatures || a->npatterns != b->npatterns)
        return 0;
    for (uint32_t i = 0; i < x->nfields; i++)
        if (strcmp(x->fields[i].name, y->fields[i].name) || x->fields[i].type != y->fields[i].type)
            return 0;
    for (uint32_t i = 0; i < a->nfeatures; i++)
        if (strcmp(a->features[i].name, b->features[i].name) ||
            a->features[i].type != b->features[i].type ||
            strcmp(expr_text(a->features[i].expr), expr_text(b->features[i].expr)))
            return 0;
    for (uint32_t i = 0; i < a->npatterns; i++)
        if (strcmp(a->patterns[i].name, b->patterns[i].name)) return 0;
    return 1;
}

/* The decider of spec version sv with model version mv (THE SPEC THAT
 * DECIDED), or NULL: its text gone, not loading, or reading other inputs;
 * its model's file gone or changed. */
static decide_t *spec_of(verify_t *v, uint64_t sv, uint64_t mv)
{
    for (size_t i = 0; i < v->nspecs; i++)
        if (v->specs[i].sv == sv && v->specs[i].mv == mv) return v->specs[i].decide;
    char copy[4096], origin[4096], model[4096], err[1024];
    weir_buf_t text = WEIR_BUF_INIT;
    spec_t *s = NULL;
    decide_t *d = NULL;
    if (spec_ledger_copy(v->data, sv, copy, sizeof copy) &&
        spec_ledger_origin(v->data, sv, origin, sizeof origin) &&
        spec_read_file(copy, &text, err, sizeof err) == 0 &&
        spec_load_string(text.data, text.len, origin, &s, err, sizeof err) == 0 &&
        same_inputs(v->spec, v->engine, s)) {
        int fits = 1;
        if (s->has_model) { /* the model that decided, not what the old path holds now */
            fits = mv && model_ledger_path(v->data, mv, model, sizeof model);
            if (fits) {
                weir_free(s->model.resolved);
                s->model.resolved = weir_strdup(model);
            }
        }
        if (fits &&
            decide_new(s,
                       &(decide_ledger_t){
                           .datadir = v->data, .spec_text = text.data, .spec_len = text.len},
                       &d, err, sizeof err) == 0 &&
            (decide_spec_version(d) != sv || decide_model_version(d) != mv)) {
            decide_free(d); /* the text or the model file is not the one that decided */
            d = NULL;
        }
    }
    buf_free(&text);
    if (!d) {
        spec_free(s);
        s = NULL;
    }
    v->specs = weir_realloc(v->specs, (v->nspecs + 1) * sizeof *v->specs);
    v->specs[v->nspecs].sv = sv;
    v->specs[v->nspecs].mv = mv;
    v->specs[v->nspecs].spec = s;
    v->specs[v->nspecs++].decide = d;
    return d;
}

/* pipeline_replay's row callback: one replayed event, against its record
 * in each run. */
static int on_event(void *ctx, uint32_t part, uint64_t offset, const engine_result_t *res)
{
    verify_t *v = ctx;
    (void)part;
    v->events++;
    int decided = 0;
    for (uint32_t k = 0; k < v->nruns; k++) {
        run_t *u = &v->runs[k];
        if (pass_records(v, u, (int64_t)offset,
                         "a decision of an event the log does not hold (or one it could not "
                         "replay)") < 0)
            return -1;
        decided |= u->rec && u->off == (int64_t)offset;
    }
    if (!decided) {
        if (!v->undecided_run++) v->undecided_first = (int64_t)offset;
        return 0;
    }
    if (v->undecided_run) { /* decided events after undecided ones: a gap */
        char what[160];
        snprintf(what, sizeof what,
                 "%" PRIu64 " events from here have no decision, though later ones do",
                 v->undecided_run);
        v->differ += v->undecided_run;
        say(v, (uint64_t)v->undecided_first, what);
        v->undecided_run = 0;
    }
    decision_t d = {0}; /* as the server decides (runtime.c runtime_decide_one) */
    /* (a duplicate's decision is its first's: compare reads its record instead) */
    if (!res->duplicate)
        decide_event_in(v->decide, &v->lower, res->raw.len, res->fields, res->features, 0, &d);
    for (uint32_t k = 0; k < v->nruns; k++) {
        run_t *u = &v->runs[k];
        while (u->rec && u->off == (int64_t)offset) {
            /* a duplicate's record is checked against its first's (compare),
             * whatever decided it */
            if (res->duplicate || cJSON_GetObjectItemCaseSensitive(u->rec, "duplicate_of")) {
                compare(v, u, offset, res, &d);
                if (next_record(v, u) < 0) return -1;
                continue;
            }
            const cJSON *model = cJSON_GetObjectItemCaseSensitive(u->rec, "model");
            const cJSON *spec = cJSON_GetObjectItemCaseSensitive(u->rec, "spec");
            uint64_t mv =
                cJSON_IsNumber(model) && model->valuedouble >= 1 ? (uint64_t)model->valuedouble : 0;
            uint64_t sv = cJSON_IsNumber(spec) && spec->valuedouble >= 1 && spec->valuedouble < 1e15
                              ? (uint64_t)spec->valuedouble
                              : 0;
            /* (a spec that never decided here is a what-if: everything is
             * checked against it) */
            decide_t *by_spec =
                sv && d.spec_version && sv != d.spec_version ? spec_of(v, sv, mv) : NULL;
            decide_t *own = !by_spec && mv && mv != d.model_version ? model_of(v, mv) : NULL;
            if (by_spec) {
                decision_t od;
                decide_event_in(by_spec, &v->lower, res->raw.len, res->fields, res->features, 0,
                                &od);
                v->by_own_spec++;
                compare(v, u, offset, res, &od);
            } else if (own) {
                decision_t od;
                decide_event_in(own, &v->lower, res->raw.len, res->fields, res->features, 0, &od);
                v->by_own_model++;
                compare(v, u, offset, res, &od);
            } else {
                compare(v, u, offset, res, &d);
            }
            if (next_record(v, u) < 0) return -1;
        }
    }
    return 0;
}

static void on_bad(void *ctx, const char *why)
{
    (void)ctx;
    fprintf(stderr, "weir verify: %s (skipped: --skip-bad-events, as the server was told)\n", why);
}

/* The online store's differences, the first `show` of them. */
static void show_online(void *ctx, weir_slice_t key, const char *what, weir_slice_t have,
                        weir_slice_t want)
{
    verify_t *v = ctx;
    if (v->oshown++ >= v->show) return;
    weir_buf_t b = WEIR_BUF_INIT;
    buf_append_json_string(&b, key.ptr, key.len); /* (a key may hold a newline) */
    printf("online store: key %.*s %s: ", (int)b.len, b.data, what);
    if (have.ptr)
        printf("Redis holds %.*s, the replay gives %.*s\n", (int)have.len, have.ptr, (int)want.len,
               want.ptr);
    else
        printf("the replay gives %.*s\n", (int)want.len, want.ptr);
    buf_free(&b);
}

/* weir verify's online store check (online_store.h); 0, 1 (differences) or 2.
 * A key missing in Redis is a difference only where Redis keeps keys
 * (ttl: 0s): with a ttl, Redis drops a key not written again for that long
 * by the wall clock, which the log knows nothing of. */
static int verify_online(verify_t *v, pipeline_t *pl, const char *prefix)
{
    online_check_t oc;
    char err[1024];
    if (online_store_check(pl->spec, pl->parts, pl->nparts, &oc, show_online, v, err, sizeof err) !=
        0) {
        cli_fail(prefix, "the online store: %s", err);
        return 2;
    }
    int ttl = pl->spec->online.ttl_ms != 0;
    printf("online store redis %s: %" PRIu64 " keys checked: %" PRIu64 " equal, %" PRIu64
           " different, %" PRIu64 " missing%s; %" PRIu64
           " keys there hold no state here (expired: deleted when weir's sweep reaches them, or "
           "by Redis's ttl)%s\n",
           pl->spec->online.redis, oc.keys, oc.equal, oc.differ, oc.missing,
           ttl && oc.missing ? " (not counted as differences: Redis's ttl drops keys by the wall "
                               "clock)"
                             : "",
           oc.extra,
           v->oshown > v->show ? " (the first differences shown above; --show N for more)" : "");
    uint64_t bad = oc.differ + (ttl ? 0 : oc.missing);
    if (bad == 0) return 0;
    cli_fail(prefix,
             "%" PRIu64 " online store values differ from a replay (a server killed before its "
             "writer caught up leaves them: its next start's full sync writes them)",
             bad);
    return 1;
}

/* Whether DATA/decisions holds the source's decision log. */
static int has_decisions(const char *data, const char *source)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/decisions/%s", data, source);
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Verifies partition v->part from event offset `from` and decision offset
 * dfrom (0 and 0, or a restored checkpoint's); adds its counts to tot[3]
 * (checked, unequal, differences). */
static int verify_part(verify_t *v, pipeline_t *pl, log_topic_t *dtopic, uint64_t from,
                       uint64_t dfrom, uint64_t *tot, const char *prefix)
{
    v->events = v->checked = v->unequal = v->differ = v->undecided_run = 0;
    v->err_rc = 0;
    log_part_stat_t st;
    log_part_stat(log_topic_part(pl->topic, v->part), &st);
    v->from = (int64_t)from;
    v->end = (int64_t)st.next_offset;
    char err[1024];
    v->dfind = DECISION_FINDER_INIT(log_topic_part(dtopic, v->part));
    int rc = open_runs(v, log_topic_part(dtopic, v->part), dfrom);
    if (rc == 0 && pipeline_replay_from(pl, v->part, from, on_event, v, v->skip_bad ? on_bad : NULL,
                                        NULL, err, sizeof err) != 0)
        rc = v->err_rc < 0 ? -1 : cli_fail(prefix, "%s", err);
    for (uint32_t k = 0; rc == 0 && k < v->nruns; k++) /* decisions past the replayed events */
        rc = pass_records(v, &v->runs[k], v->end, "a decision of an event the log does not hold");
    if (v->err_rc < 0) rc = cli_fail(prefix, "%s", v->err);
    close_runs(v);
    decision_finder_close(&v->dfind);
    if (rc) return rc;
    printf("  partition %u: %" PRIu64 " events, %" PRIu64 " decisions checked, %" PRIu64
           " different",
           v->part, v->events, v->checked, v->differ);
    if (v->undecided_run)
        printf(", the last %" PRIu64 " not decided yet (from offset %" PRId64 ")", v->undecided_run,
               v->undecided_first);
    printf("\n");
    tot[0] += v->checked;
    tot[1] += v->unequal;
    tot[2] += v->differ;
    return 0;
}

/* WHERE IT STARTS (pipeline_restore_oldest): the decided offsets are
 * those of the decision log in dtopic. */
static int restore_oldest(pipeline_t *pl, log_topic_t *dtopic, const char *data,
                          ckpt_store_t **store, ckpt_t **ck, char *err, size_t errlen)
{
    int64_t *decided = weir_calloc(pl->nparts, sizeof *decided);
    int rc = 0;
    for (uint32_t p = 0; rc == 0 && p < pl->nparts; p++)
        rc = decision_log_last_input(log_topic_part(dtopic, p), p, &decided[p], err, errlen);
    if (rc == 0) rc = pipeline_restore_oldest(pl, data, decided, store, ck, err, errlen);
    weir_free(decided);
    return rc;
}

int cmd_verify(int argc, char **argv)
{
    const char *prefix = "weir verify";
    if (cli_wants_help(argc, argv)) return fputs(verify_usage, stdout), 0;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"show", required_argument, 0, 'n'},
        {"skip-bad-events", no_argument, 0, 'S'},
        {"no-online-store", no_argument, 0, 'O'},
        {0, 0, 0, 0},
    };
    const char *data = NULL;
    int no_online = 0; /* --no-online-store: the decisions only (no Redis, no password needed) */
    verify_t v = {.feat = WEIR_BUF_INIT, .show = 10};
    int c, rc = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'S':
            v.skip_bad = 1;
            break;
        case 'O':
            no_online = 1;
            break;
        case 'n':
            v.show = strtoull(optarg, &end, 10);
            if (!*optarg || *end || optarg[0] == '-')
                rc = cli_fail(prefix, "--show wants a count, not '%s'", optarg);
            break;
        default:
            rc = cli_fail(prefix, "unknown option or missing value '%s' (see --help)",
                          argv[optind - 1]);
        }
    }
    if (rc == 0 && optind != argc - 1) rc = cli_fail(prefix, "give one SPEC file (see --help)");
    if (rc == 0 && !data) rc = cli_fail(prefix, "--data DIR is required");
    if (rc) return 2;
    pipeline_t pl;
    char err[1024];
    if (pipeline_open(&pl, argv[optind], data, NULL, 0, err, sizeof err) != 0)
        return cli_fail(prefix, "%s", err), 2;
    v.spec = pl.spec;
    v.engine = pl.engine;
    v.data = data;
    v.spec_text = (weir_slice_t){pl.spec_text.data, pl.spec_text.len};
    log_t *dlog = NULL;
    log_topic_t *dtopic = NULL;
    char ddir[4096];
    snprintf(ddir, sizeof ddir, "%s/decisions", data);
    log_config_t lc;
    log_config_defaults(&lc);
    lc.read_only = 1; /* as the event log (pipeline_open for a reader) */
    if (!has_decisions(data, pl.src->name))
        rc = cli_fail(prefix,
                      "%s has no decision log of source '%s': nothing to verify (weir run "
                      "writes one; weir ingest does not decide)",
                      data, pl.src->name);
    else if (decide_new(pl.spec,
                        &(decide_ledger_t){.datadir = data,
                                           .spec_text = pl.spec_text.data,
                                           .spec_len = pl.spec_text.len},
                        &v.decide, err, sizeof err) != 0 ||
             log_open_dir(ddir, &lc, &dlog, err, sizeof err) != 0 ||
             log_topic_open(dlog, pl.src->name, pl.nparts, &dtopic, err, sizeof err) != 0)
        rc = cli_fail(prefix, "%s", err);
    ckpt_store_t *store = NULL;
    ckpt_t *ck = NULL;
    if (rc == 0 && pipeline_log_start_deleted(&pl) &&
        restore_oldest(&pl, dtopic, data, &store, &ck, err, sizeof err) != 0)
        rc = cli_fail(prefix,
                      "retention deleted the start of the event log, so the state before it "
                      "must come from a checkpoint, and none fits: %s",
                      err);
    uint64_t tot[3] = {0, 0, 0}, events = 0; /* checked, unequal, differences */
    if (rc == 0 && ck)
        printf("weir verify: the decision log of %s after checkpoint %" PRIu64
               " (retention deleted the log's start) against a replay from it\n",
               data, ckpt_info(ck)->id);
    else if (rc == 0)
        printf("weir verify: the decision log of %s against a replay of its event log\n", data);
    for (uint32_t p = 0; rc == 0 && p < pl.nparts; p++) {
        v.part = p;
        const ckpt_part_t *cp = ck ? ckpt_part(ck, p) : NULL;
        rc = verify_part(&v, &pl, dtopic, cp ? cp->log_offset : 0, cp ? cp->decision_offset : 0,
                         tot, prefix);
        events += v.events;
    }
    if (ck) ckpt_close(ck);
    if (store) ckpt_store_close(store);
    if (rc == 0) {
        printf("%" PRIu64 " events, %" PRIu64 " decisions checked: %" PRIu64 " equal, %" PRIu64
               " different%s\n",
               events, tot[0], tot[0] - tot[1], tot[2],
               v.shown > v.show ? " (the first shown above; --show N for more)" : "");
        if (v.by_other_spec) {
            char sv[64] = "a text that never decided here";
            if (decide_spec_version(v.decide))
                snprintf(sv, sizeof sv, "version %" PRIu64, decide_spec_version(v.decide));
            printf("%" PRIu64 " of the decisions checked were made under another spec version "
                   "than %s (%s): checked against its rules and features all the same; the text "
                   "each was decided under is in %s/" SPEC_COPIES_DIR "\n",
                   v.by_other_spec, argv[optind], sv, data);
        }
        if (v.by_own_spec)
            printf("%" PRIu64 " of them decided under another spec version whose fields and "
                   "features are this spec's, recomputed with its rules (its text in "
                   "%s/" SPEC_COPIES_DIR ")\n",
                   v.by_own_spec, data);
        if (v.by_own_model)
            printf("%" PRIu64 " of them decided by another model version than the spec's file "
                   "(%" PRIu64 "), recomputed with the model that decided them (its file, as "
                   "%s/" MODEL_LEDGER_FILE " names it)\n",
                   v.by_own_model, decide_model_version(v.decide), data);
        if (tot[2]) {
            cli_fail(prefix, "%" PRIu64 " differences between the decision log and a replay",
                     tot[2]);
            rc = 1;
        }
        if (pl.spec->online.redis && !no_online) {
            int orc = verify_online(&v, &pl, prefix);
            if (orc > rc) rc = orc;
        }
    } else {
        rc = 2;
    }
    if (dlog) log_close(dlog);
    if (v.decide) decide_free(v.decide);
    for (size_t i = 0; i < v.nmodels; i++)
        decide_free(v.models[i].decide);
    weir_free(v.models);
    for (size_t i = 0; i < v.nspecs; i++) {
        decide_free(v.specs[i].decide);
        spec_free(v.specs[i].spec);
    }
    weir_free(v.specs);
    pipeline_close(&pl);
    buf_free(&v.feat);
    buf_free(&v.firstrec);
    decide_scratch_free(&v.lower);
    return rc;
}
