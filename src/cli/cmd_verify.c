/* cmd_verify.c — `weir verify SPEC --data DIR`: recomputes, offline, every
 * decision the server logged, and reports any difference (DESIGN.md).
 *
 * The event log is replayed through the same engine as backfill and
 * recovery; each event's features are scored and decided by the spec's
 * model and rules, exactly as the server decides (runtime.c decide_one);
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
 * spec or model changed since the server decided (a reload, a new model
 * file) shows as differences: verify checks the decision log against the
 * spec and model it is given, which is the point of running it after one.
 * A record names the model version it was decided by; a difference in one
 * decided by another version than offline's says so. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/error.h"
#include "cli/cli.h"
#include "decide/decide.h"
#include "decide/pipeline.h"
#include "serve/runtime.h"

static const char verify_usage[] =
    "usage: weir verify SPEC --data DIR [--show N]\n"
    "\n"
    "Replays the event log of the spec's source in DIR, scores and decides every\n"
    "event offline with the spec's model and rules, and compares the result with\n"
    "the decision the server logged for it (DIR/decisions): decision, rule, score\n"
    "(bit for bit), late flag and every feature value. Prints the first N\n"
    "differences (default 10), then a summary per partition. Events at the end of\n"
    "a partition without a decision yet (a crashed server decides them when it\n"
    "starts again) are counted, not differences. The data directory must not be in\n"
    "use by a running server.\n"
    "Exit status: 0 when every decision is equal, 1 when any differs, 2 on error.\n";

/* A difference's text is at most this long (values are cut to fit). */
#define DIFF_MAX 1024

typedef struct verify {
    const spec_t *spec;
    decide_t *decide;
    uint32_t part;
    log_reader_t *dr;  /* the partition's decision log */
    cJSON *rec;        /* its current record, parsed; NULL past its end */
    weir_buf_t recraw; /* that record's text (its features are compared as text) */
    int64_t rec_off;   /* the input offset it decides */
    int err_rc;        /* a read error of the decision log, in err */
    char err[1024];
    weir_buf_t feat;
    decide_scratch_t lower;
    uint64_t show, shown;
    /* per partition */
    uint64_t events, checked, unequal, differ, undecided_run;
    int64_t undecided_first;
} verify_t;

/* Moves to the partition's next decision record; NULL rec at its end. */
static int next_record(verify_t *v)
{
    cJSON_Delete(v->rec);
    v->rec = NULL;
    log_rec_t r;
    int n = log_reader_next(v->dr, &r, v->err, sizeof v->err);
    if (n <= 0) return v->err_rc = n;
    buf_reset(&v->recraw);
    buf_append(&v->recraw, r.value.ptr, r.value.len);
    v->rec = cJSON_ParseWithLength(v->recraw.data, v->recraw.len);
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(v->rec, "offset");
    if (!cJSON_IsNumber(off) || off->valuedouble < 0)
        return v->err_rc =
                   weir_errf(v->err, sizeof v->err, WEIR_ECORRUPT,
                             "decision log partition %u offset %" PRIu64 ": not a decision record",
                             v->part, r.offset);
    v->rec_off = (int64_t)off->valuedouble;
    return 1;
}

static void say(verify_t *v, uint64_t offset, const char *what)
{
    if (v->shown++ < v->show)
        printf("partition %u offset %" PRIu64 ": %s\n", v->part, offset, what);
}

/* The record's features: the text after `,"features":` up to its closing
 * brace (the last member; a string value cannot hold that quote unescaped). */
static weir_slice_t record_features(const verify_t *v)
{
    static const char mark[] = ",\"features\":";
    const char *at = memmem(v->recraw.data, v->recraw.len, mark, sizeof mark - 1);
    if (!at) return (weir_slice_t){"", 0};
    at += sizeof mark - 1;
    return (weir_slice_t){at, (size_t)(v->recraw.data + v->recraw.len - 1 - at)};
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

/* Compares the current record with the offline decision d of the event. */
static void compare(verify_t *v, uint64_t offset, const engine_result_t *res, const decision_t *d)
{
    weir_buf_t b = WEIR_BUF_INIT;
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(v->rec, "decision");
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(v->rec, "rule");
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(v->rec, "score");
    const cJSON *late = cJSON_GetObjectItemCaseSensitive(v->rec, "late");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(v->rec, "model");
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
    weir_slice_t online = record_features(v);
    if (online.len != v->feat.len || memcmp(online.ptr, v->feat.data, online.len) != 0)
        feature_diff(&b, v, online);
    v->checked++;
    if (b.len) {
        v->unequal++;
        v->differ++;
        if (cJSON_IsNumber(model) && (uint64_t)model->valuedouble != d->model_version)
            buf_appendf(&b, " (decided by model version %.0f; offline is version %" PRIu64 ")",
                        model->valuedouble, d->model_version);
        say(v, offset, b.data + 2);
    }
    buf_free(&b);
}

/* pipeline_replay's row callback: one replayed event. */
static int on_event(void *ctx, uint32_t part, uint64_t offset, const engine_result_t *res)
{
    verify_t *v = ctx;
    (void)part;
    v->events++;
    while (v->rec && v->rec_off < (int64_t)offset) { /* a decision of no replayed event */
        v->differ++;
        say(v, (uint64_t)v->rec_off,
            "a decision of an event the log does not hold (or one it could not replay)");
        if (next_record(v) < 0) return -1;
    }
    if (!v->rec || v->rec_off > (int64_t)offset) {
        if (!v->undecided_run++) v->undecided_first = (int64_t)offset;
        return v->err_rc < 0 ? -1 : 0;
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
    decision_t d; /* as the server decides (runtime.c decide_one) */
    decide_event_in(v->decide, &v->lower, res->raw.len, res->fields, res->features, 0, &d);
    while (v->rec && v->rec_off == (int64_t)offset) { /* (twice under at_least_once) */
        compare(v, offset, res, &d);
        if (next_record(v) < 0) return -1;
    }
    return 0;
}

static void on_bad(void *ctx, const char *why)
{
    (void)ctx;
    fprintf(stderr, "weir verify: %s (skipped, as the server skips it)\n", why);
}

/* Whether DATA/decisions holds the source's decision log. */
static int has_decisions(const char *data, const char *source)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/decisions/%s", data, source);
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Verifies partition v->part; adds its counts to tot[3] (checked,
 * unequal, differences). */
static int verify_part(verify_t *v, pipeline_t *pl, log_topic_t *dtopic, uint64_t *tot,
                       const char *prefix)
{
    v->events = v->checked = v->unequal = v->differ = v->undecided_run = 0;
    v->err_rc = 0;
    if (log_reader_open(log_topic_part(dtopic, v->part), 0, &v->dr, v->err, sizeof v->err) != 0)
        return cli_fail(prefix, "%s", v->err);
    char err[1024];
    int rc = next_record(v) < 0 ? -1 : 0;
    if (rc == 0 && pipeline_replay(pl, v->part, on_event, v, on_bad, NULL, err, sizeof err) != 0)
        rc = v->err_rc < 0 ? -1 : cli_fail(prefix, "%s", err);
    while (rc == 0 && v->rec) { /* decisions past the replayed events */
        v->differ++;
        say(v, (uint64_t)v->rec_off, "a decision of an event the log does not hold");
        if (next_record(v) < 0) rc = -1;
    }
    if (v->err_rc < 0) rc = cli_fail(prefix, "%s", v->err);
    cJSON_Delete(v->rec);
    v->rec = NULL;
    log_reader_close(v->dr);
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

int cmd_verify(int argc, char **argv)
{
    const char *prefix = "weir verify";
    if (cli_wants_help(argc, argv)) return fputs(verify_usage, stdout), 0;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"show", required_argument, 0, 'n'},
        {0, 0, 0, 0},
    };
    const char *data = NULL;
    verify_t v = {.feat = WEIR_BUF_INIT, .recraw = WEIR_BUF_INIT, .show = 10};
    int c, rc = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'd':
            data = optarg;
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
    log_t *dlog = NULL;
    log_topic_t *dtopic = NULL;
    char ddir[4096];
    snprintf(ddir, sizeof ddir, "%s/decisions", data);
    log_config_t lc;
    log_config_defaults(&lc);
    if (!has_decisions(data, pl.src->name))
        rc = cli_fail(prefix,
                      "%s has no decision log of source '%s': nothing to verify (weir run "
                      "writes one; weir ingest does not decide)",
                      data, pl.src->name);
    else if (decide_new(pl.spec, &v.decide, err, sizeof err) != 0 ||
             log_open_dir(ddir, &lc, &dlog, err, sizeof err) != 0 ||
             log_topic_open(dlog, pl.src->name, pl.nparts, &dtopic, err, sizeof err) != 0)
        rc = cli_fail(prefix, "%s", err);
    uint64_t tot[3] = {0, 0, 0}, events = 0; /* checked, unequal, differences */
    if (rc == 0)
        printf("weir verify: the decision log of %s against a replay of its event log\n", data);
    for (uint32_t p = 0; rc == 0 && p < pl.nparts; p++) {
        v.part = p;
        rc = verify_part(&v, &pl, dtopic, tot, prefix);
        events += v.events;
    }
    if (rc == 0) {
        printf("%" PRIu64 " events, %" PRIu64 " decisions checked: %" PRIu64 " equal, %" PRIu64
               " different%s\n",
               events, tot[0], tot[0] - tot[1], tot[2],
               v.shown > v.show ? " (the first shown above; --show N for more)" : "");
        if (tot[2]) {
            cli_fail(prefix, "%" PRIu64 " differences between the decision log and a replay",
                     tot[2]);
            rc = 1;
        }
    } else {
        rc = 2;
    }
    if (dlog) log_close(dlog);
    if (v.decide) decide_free(v.decide);
    pipeline_close(&pl);
    buf_free(&v.feat);
    buf_free(&v.recraw);
    decide_scratch_free(&v.lower);
    return rc;
}
