/* cmd_backfill.c — `weir backfill SPEC --data DIR --out FILE`: replays the
 * log through the same engine that serves live traffic and writes one row
 * per event — the point-in-time features a model is trained on, exactly as
 * they were (or would have been) served. Rows go partition by partition,
 * each in offset order; --from/--to filter rows by event time (and matches
 * by match time), while the replay itself always starts at the beginning
 * (state needs the history).
 * With patterns, rows also carry pattern.NAME (arrival-order patterns: did
 * this event complete a match) and --matches FILE gets every match with
 * emit:, as `weir ingest` / `weir run` write them to DATA/outputs/. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/fileio.h"
#include "base/numfmt.h"
#include "cli/cli.h"
#include "decide/decide.h"
#include "decide/labels.h"
#include "decide/pipeline.h"
#include "decide/outputs.h"

static const char backfill_usage[] =
    "usage: weir backfill SPEC --data DIR --out FILE [--format csv|ndjson] [--from T] [--to T]\n"
    "                     [--with FIELD,...] [--labels FILE] [--decisions] [--matches FILE]\n"
    "\n"
    "Replays the log of the spec's source in DIR through the engine and writes one\n"
    "row per event: partition, offset, key, time, late, then every feature in\n"
    "declared order, then each model input that is an event field (not a\n"
    "feature), as the model is given it (so the rows score as they are: weir model\n"
    "predict), then the raw event fields named by --with (e.g. a label).\n"
    "--decisions adds score, decision and rule before them: the event scored and\n"
    "decided by the spec's model and rules, as weir run decides it (weir verify\n"
    "compares them with the decision log).\n"
    "--labels FILE joins labels that arrive apart from the events (a chargeback):\n"
    "CSV with a header naming the key field, the time field and label columns; a\n"
    "row gets the label columns, last, of the line with its key and event time\n"
    "(empty, or null, when none). Lines that match no row are counted on stderr.\n"
    "A column named twice, or like a column the rows have, is refused.\n"
    "--from/--to keep rows whose event time, and matches whose match time, is in\n"
    "[from, to) (epoch ms or RFC 3339).\n"
    "CSV: a header line; floats in the shortest form that reads back exactly;\n"
    "bools as 1/0; null as an empty cell (an empty string too: NDJSON tells them\n"
    "apart). NDJSON: one object per row.\n"
    "Arrival-order patterns add a column pattern.NAME (the event completed a match).\n"
    "--matches FILE: the matches of patterns with emit:, one JSON object per line, as\n"
    "weir ingest and weir run write them to DATA/outputs/<pattern>.ndjson.\n"
    "\n"
    "FILE is written whole or not at all: as .FILE.tmp.PID beside it, fsynced, then\n"
    "renamed over FILE; on an error FILE keeps what it held. SIGTERM or SIGINT stops\n"
    "the replay, removes the temporary files, says FILE was not written and exits\n"
    "128 + the signal (143, 130); a second signal ends weir at once. '--out -'\n"
    "writes to stdout, and a FILE that is no regular file (/dev/null) is written\n"
    "in place.\n";

typedef struct backfill {
    weir_outfile_t out;
    int csv;
    int64_t from, to;
    char **with;
    size_t nwith;
    const spec_t *spec;
    weir_buf_t row;
    uint64_t rows;
    weir_outfile_t matches; /* --matches FILE; .path NULL without it */
    int write_errno;        /* a row's write failed with it (0: none) */
    const ckpt_t *start;    /* retention: the checkpoint the replay starts at (NULL: offset 0) */
    weir_buf_t mline;
    decide_t *decide; /* --decisions: the spec's model and rules */
    labels_t *labels; /* --labels FILE */
    decide_scratch_t lower;
} backfill_t;

static void on_match(void *ctx, uint32_t part, const spec_aggregate_t *agg, weir_slice_t key,
                     int64_t start, int64_t end, int partial, const expr_value_t *vals)
{
    (void)partial; /* (a match's is 0; a replay of the log marks no window) */
    backfill_t *bf = ctx;
    const spec_pattern_t *p = spec_pattern_of(bf->spec, agg);
    if (!p) return; /* an aggregate's window: not this command's output */
    if (end < bf->from || end >= bf->to) return; /* its match time, as a row's event time */
    buf_reset(&bf->mline);
    outputs_match_line(&bf->mline, bf->spec, part, p, key, start, end, vals);
    buf_append(&bf->mline, "\n", 1);
    fwrite(bf->mline.data, 1, bf->mline.len, bf->matches.f);
}

static int is_flag_column(const spec_t *s, uint32_t i)
{
    return s->patterns[i].order == SPEC_ORDER_ARRIVAL;
}

static void csv_string(weir_buf_t *b, const char *s, size_t n)
{
    int quote = n == 0 ? 0 : (memchr(s, ',', n) || memchr(s, '"', n) || memchr(s, '\n', n) || memchr(s, '\r', n));
    if (!quote) {
        buf_append(b, s, n);
        return;
    }
    buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') buf_append(b, "\"", 1);
        buf_append(b, &s[i], 1);
    }
    buf_append(b, "\"", 1);
}

static void csv_value(weir_buf_t *b, const expr_value_t *v)
{
    switch ((expr_type_t)v->type) {
    case EXPR_NULL: break;
    case EXPR_BOOL: buf_append_str(b, v->as.b ? "1" : "0"); break;
    case EXPR_STRING: csv_string(b, v->as.s.ptr, v->as.s.len); break;
    default: outputs_json_value(b, v); break;
    }
}

/* A raw --with field, taken from the event JSON as is. */
static void raw_field(backfill_t *bf, const cJSON *doc, const char *name)
{
    weir_buf_t *b = &bf->row;
    const cJSON *j = doc ? cJSON_GetObjectItemCaseSensitive(doc, name) : NULL;
    if (!j || cJSON_IsNull(j)) {
        if (!bf->csv) buf_append_str(b, "null");
    } else if (cJSON_IsBool(j)) {
        buf_append_str(b, bf->csv ? (cJSON_IsTrue(j) ? "1" : "0") : (cJSON_IsTrue(j) ? "true" : "false"));
    } else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9007199254740992.0) buf_appendf(b, "%" PRId64, (int64_t)d);
        else numfmt_append_shortest(b, d);
    } else if (cJSON_IsString(j)) {
        if (bf->csv) csv_string(b, j->valuestring, strlen(j->valuestring));
        else buf_append_json_string(b, j->valuestring, strlen(j->valuestring));
    } else {
        char *txt = cJSON_PrintUnformatted(j);
        if (bf->csv) csv_string(b, txt, strlen(txt));
        else buf_append_str(b, txt);
        free(txt);
    }
}

static void column_name(backfill_t *bf, const char *name, int first)
{
    if (!first) buf_append(&bf->row, bf->csv ? "," : ",", 1);
    if (bf->csv) {
        csv_string(&bf->row, name, strlen(name));
    } else {
        buf_append_json_string(&bf->row, name, strlen(name));
        buf_append(&bf->row, ":", 1);
    }
}

/* --decisions: score, decision and rule of the event, decided offline by
 * the spec's model and rules (a score that is not finite is null). */
static void decision_columns(backfill_t *bf, const engine_result_t *res)
{
    decision_t d;
    decide_event_in(bf->decide, &bf->lower, res->raw.len, res->fields, res->features, 0, &d);
    expr_value_t score = isfinite(d.score) ? expr_float(d.score) : expr_null();
    weir_buf_t *b = &bf->row;
    if (bf->csv) {
        buf_append(b, ",", 1);
        csv_value(b, &score);
        buf_append(b, ",", 1);
        if (d.decision) csv_string(b, d.decision, strlen(d.decision));
        buf_appendf(b, ",%d", d.rule);
    } else {
        buf_append_str(b, ",\"score\":");
        outputs_json_value(b, &score);
        buf_append_str(b, ",\"decision\":");
        if (d.decision)
            buf_append_json_string(b, d.decision, strlen(d.decision));
        else
            buf_append_str(b, "null");
        buf_appendf(b, ",\"rule\":%d", d.rule);
    }
}

/* --labels: the label cells of the event's key and time, as text (CSV),
 * or a JSON number when the whole cell is one, else a string (NDJSON). */
static void label_columns(backfill_t *bf, const engine_result_t *res)
{
    weir_buf_t *b = &bf->row;
    const char *const *cells = labels_find(bf->labels, res->key, res->time);
    for (uint32_t i = 0; i < labels_ncols(bf->labels); i++) {
        if (bf->csv) {
            buf_append(b, ",", 1);
            if (cells) csv_string(b, cells[i], strlen(cells[i]));
            continue;
        }
        column_name(bf, labels_col_name(bf->labels, i), 0);
        char *end;
        double d = cells && cells[i][0] ? strtod(cells[i], &end) : 0;
        if (!cells || !cells[i][0])
            buf_append_str(b, "null");
        else if (!*end && isfinite(d) && !isspace((unsigned char)cells[i][0]))
            numfmt_append_shortest(b, d);
        else
            buf_append_json_string(b, cells[i], strlen(cells[i]));
    }
}

/* Whether model input i is an event field written as a column of its own
 * (INPUT FIELDS): not a feature, and not also a --with field (which is
 * written raw, as asked). */
static int input_column(const backfill_t *bf, uint32_t i)
{
    const spec_input_t *in = &bf->spec->model.inputs[i];
    if (in->kind != SPEC_INPUT_FIELD) return 0;
    for (size_t k = 0; k < bf->nwith; k++)
        if (!strcmp(bf->with[k], in->name)) return 0;
    return 1;
}

static int write_row(void *ctx, uint32_t part, uint64_t offset, const engine_result_t *res)
{
    backfill_t *bf = ctx;
    /* A stop signal ends the replay here (a non-zero return); the output
     * is then removed, not renamed over the target. */
    if (cli_stop_signal()) return -1;
    if (res->time < bf->from || res->time >= bf->to) return 0;
    /* A duplicate (a retry: engine.h step 4) is its first event again:
     * a row of its own would count that event twice in the training set. */
    if (res->duplicate) return 0;
    weir_buf_t *b = &bf->row;
    buf_reset(b);
    const spec_t *s = bf->spec;
    if (bf->csv) {
        buf_appendf(b, "%u,%" PRIu64 ",", part, offset);
        csv_string(b, res->key.ptr, res->key.len);
        buf_appendf(b, ",%" PRId64 ",%d", res->time, res->late);
        for (uint32_t i = 0; i < s->nfeatures; i++) {
            buf_append(b, ",", 1);
            csv_value(b, &res->features[i]);
        }
        for (uint32_t i = 0; i < s->npatterns; i++)
            if (is_flag_column(s, i))
                buf_append_str(b, res->features[s->nfeatures + i].as.b ? ",1" : ",0");
        for (uint32_t i = 0; i < s->model.ninputs; i++) {
            if (!input_column(bf, i)) continue;
            buf_append(b, ",", 1);
            csv_value(b, &res->fields[s->model.inputs[i].slot]);
        }
        if (bf->decide) decision_columns(bf, res);
        for (size_t i = 0; i < bf->nwith; i++) {
            buf_append(b, ",", 1);
            raw_field(bf, res->json, bf->with[i]);
        }
        if (bf->labels) label_columns(bf, res);
    } else {
        buf_appendf(b, "{\"partition\":%u,\"offset\":%" PRIu64 ",\"key\":", part, offset);
        outputs_json_key(b, &s->sources[0], res->key);
        buf_appendf(b, ",\"time\":%" PRId64 ",\"late\":%s", res->time, res->late ? "true" : "false");
        for (uint32_t i = 0; i < s->nfeatures; i++) {
            column_name(bf, s->features[i].name, 0);
            outputs_json_value(b, &res->features[i]);
        }
        for (uint32_t i = 0; i < s->npatterns; i++) {
            if (!is_flag_column(s, i)) continue;
            buf_append_str(b, ",\"pattern.");
            buf_append_str(b, s->patterns[i].name);
            buf_append_str(b, res->features[s->nfeatures + i].as.b ? "\":true" : "\":false");
        }
        for (uint32_t i = 0; i < s->model.ninputs; i++) {
            if (!input_column(bf, i)) continue;
            column_name(bf, s->model.inputs[i].name, 0);
            outputs_json_value(b, &res->fields[s->model.inputs[i].slot]);
        }
        if (bf->decide) decision_columns(bf, res);
        for (size_t i = 0; i < bf->nwith; i++) {
            column_name(bf, bf->with[i], 0);
            raw_field(bf, res->json, bf->with[i]);
        }
        if (bf->labels) label_columns(bf, res);
        buf_append(b, "}", 1);
    }
    buf_append(b, "\n", 1);
    bf->rows++;
    if (fwrite(b->data, 1, b->len, bf->out.f) == b->len) return 0;
    bf->write_errno = errno ? errno : EIO; /* (said by backfill_write: a full disk) */
    return -1;
}

static void report_bad(void *ctx, const char *why)
{
    (void)ctx;
    fprintf(stderr, "weir backfill: %s (skipped)\n", why);
}

static void split_with(backfill_t *bf, const char *list)
{
    char *copy = weir_strdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        bf->with = weir_realloc(bf->with, (bf->nwith + 1) * sizeof *bf->with);
        bf->with[bf->nwith++] = weir_strdup(tok);
    }
    weir_free(copy);
}

/* The columns --decisions adds (decision_columns writes them). */
static const char *const decided_columns[] = {"score", "decision", "rule"};

static int decided_column(const char *name)
{
    for (size_t i = 0; i < sizeof decided_columns / sizeof decided_columns[0]; i++)
        if (!strcmp(name, decided_columns[i])) return 1;
    return 0;
}

static void write_header(backfill_t *bf, const spec_t *spec)
{
    buf_append_str(&bf->row, "partition,offset,key,time,late");
    for (uint32_t i = 0; i < spec->nfeatures; i++)
        column_name(bf, spec->features[i].name, 0);
    for (uint32_t i = 0; i < spec->npatterns; i++) {
        if (!is_flag_column(spec, i)) continue;
        char col[256];
        snprintf(col, sizeof col, "pattern.%s", spec->patterns[i].name);
        column_name(bf, col, 0);
    }
    for (uint32_t i = 0; i < spec->model.ninputs; i++)
        if (input_column(bf, i)) column_name(bf, spec->model.inputs[i].name, 0);
    for (size_t i = 0; bf->decide && i < sizeof decided_columns / sizeof decided_columns[0]; i++)
        column_name(bf, decided_columns[i], 0);
    for (size_t i = 0; i < bf->nwith; i++)
        column_name(bf, bf->with[i], 0);
    for (uint32_t i = 0; bf->labels && i < labels_ncols(bf->labels); i++)
        column_name(bf, labels_col_name(bf->labels, i), 0);
    buf_append(&bf->row, "\n", 1);
    fwrite(bf->row.data, 1, bf->row.len, bf->out.f);
}

/* Whether a row already has a column called name (a label column of that
 * name would make the CSV header ambiguous and the NDJSON object repeat a
 * member, which JSON readers resolve differently): engine_column, of the
 * columns before the fields; column_taken, of them all. */
/* The columns every row starts with. */
static int engine_column(const backfill_t *bf, const char *name)
{
    if (spec_row_column(name, strlen(name))) return 1;
    if (bf->decide && decided_column(name)) return 1;
    for (uint32_t i = 0; i < bf->spec->nfeatures; i++)
        if (!strcmp(name, bf->spec->features[i].name)) return 1;
    for (uint32_t i = 0; i < bf->spec->npatterns; i++)
        if (is_flag_column(bf->spec, i) && !strncmp(name, "pattern.", 8) &&
            !strcmp(name + 8, bf->spec->patterns[i].name))
            return 1;
    return 0;
}

static int column_taken(const backfill_t *bf, const char *name)
{
    if (engine_column(bf, name)) return 1;
    for (uint32_t i = 0; i < bf->spec->model.ninputs; i++)
        if (input_column(bf, i) && !strcmp(name, bf->spec->model.inputs[i].name)) return 1;
    for (size_t i = 0; i < bf->nwith; i++)
        if (!strcmp(name, bf->with[i])) return 1;
    return 0;
}

/* Whether the columns --decisions and --labels add are new to the rows;
 * 0, or 1 with the reason printed. */
static int columns_new(const backfill_t *bf, const char *labelpath)
{
    const char *prefix = "weir backfill";
    /* A feature or --with field named decision or rule ("score" is
     * reserved by the spec). */
    for (uint32_t i = 0; bf->decide && i < bf->spec->nfeatures; i++)
        if (decided_column(bf->spec->features[i].name))
            return cli_fail(
                prefix, "--decisions adds a column '%s', and the spec has a feature of that name",
                bf->spec->features[i].name);
    for (size_t i = 0; bf->decide && i < bf->nwith; i++)
        if (decided_column(bf->with[i]))
            return cli_fail(prefix, "--decisions adds a column '%s', and --with names it too",
                            bf->with[i]);
    for (uint32_t i = 0; i < bf->spec->model.ninputs; i++)
        if (input_column(bf, i) && engine_column(bf, bf->spec->model.inputs[i].name))
            return cli_fail(prefix,
                            "model input '%s' is an event field named like a column the rows "
                            "have (it would repeat it); rename the field",
                            bf->spec->model.inputs[i].name);
    /* A --with field named like a column the rows have, or twice: the CSV
     * header would be ambiguous, and an NDJSON object repeat a member. */
    for (size_t i = 0; i < bf->nwith; i++) {
        int twice = 0;
        for (size_t k = 0; k < i; k++)
            twice |= !strcmp(bf->with[k], bf->with[i]);
        if (twice || engine_column(bf, bf->with[i]))
            return cli_fail(prefix, "--with %s would repeat a column of the rows", bf->with[i]);
    }
    for (uint32_t i = 0; bf->labels && i < labels_ncols(bf->labels); i++)
        if (column_taken(bf, labels_col_name(bf->labels, i)))
            return cli_fail(prefix, "%s: label column '%.100s' would repeat a column of the rows",
                            labelpath, labels_col_name(bf->labels, i));
    return 0;
}

/* Replays every partition into outpath (and the matches into matchpath),
 * each file whole or not at all (weir_outfile_t): after an error or a stop
 * signal, neither target has changed. Returns the exit status. */
static int backfill_write(backfill_t *bf, pipeline_t *pl, const char *outpath,
                          const char *matchpath)
{
    const char *prefix = "weir backfill";
    char err[1024];
    int rc = 0;
    pl->need_json = bf->nwith > 0; /* --with reads the event's own JSON */
    if (weir_outfile_open(&bf->out, outpath, err, sizeof err) != 0 ||
        (matchpath && weir_outfile_open(&bf->matches, matchpath, err, sizeof err) != 0))
        rc = cli_fail(prefix, "%s", err);
    if (rc == 0 && bf->csv) write_header(bf, pl->spec);
    engine_sink_t sink = {on_match, NULL, bf, NULL};
    for (uint32_t p = 0; rc == 0 && matchpath && p < pl->nparts; p++)
        engine_part_set_sink(pl->parts[p], &sink);
    uint64_t bad = 0;
    for (uint32_t p = 0; p < pl->nparts && rc == 0; p++)
        if (pipeline_replay_from(pl, p, bf->start ? ckpt_part(bf->start, p)->log_offset : 0,
                                 write_row, bf, report_bad, &bad, err, sizeof err) != 0)
            rc = cli_stop_signal() ? 1
                 : bf->write_errno ? cli_fail(prefix, "%s; writing %s failed: %s", err, outpath,
                                              strerror(bf->write_errno))
                                   : cli_fail(prefix, "%s", err);
    int stop = cli_stop_signal();
    /* Both files complete before either is renamed: a failed write of one
     * leaves both targets as they were. (The renames are one after the
     * other: if the second fails, on an I/O error, --out is new and
     * --matches old; the error says so.) */
    if (rc == 0 && !stop &&
        (weir_outfile_close(&bf->out, err, sizeof err) != 0 ||
         (matchpath && weir_outfile_close(&bf->matches, err, sizeof err) != 0) ||
         weir_outfile_commit(&bf->out, err, sizeof err) != 0 ||
         (matchpath && weir_outfile_commit(&bf->matches, err, sizeof err) != 0)))
        rc = cli_fail(prefix, "%s", err);
    int in_place = bf->out.f && !bf->out.tmp; /* stdout, /dev/null: rows went out as made */
    weir_outfile_abort(&bf->out);             /* nothing left to do after a commit */
    weir_outfile_abort(&bf->matches);
    if (stop) {
        char what[4200];
        snprintf(what, sizeof what,
                 in_place ? "the rows written to %s stop short%s" : "%s was not written%s",
                 strcmp(outpath, "-") ? outpath : "stdout", matchpath ? " (nor --matches)" : "");
        return cli_stopped(prefix, "%s", what);
    }
    if (rc == 0 && strcmp(outpath, "-"))
        fprintf(stderr, "weir backfill: wrote %" PRIu64 " rows to %s%s\n", bf->rows, outpath,
                bad ? " (some records skipped, see above)" : "");
    return rc;
}

int cmd_backfill(int argc, char **argv)
{
    const char *prefix = "weir backfill";
    if (cli_wants_help(argc, argv)) return fputs(backfill_usage, stdout), 0;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"out", required_argument, 0, 'o'},
        {"format", required_argument, 0, 'f'},
        {"from", required_argument, 0, 'F'},
        {"to", required_argument, 0, 'T'},
        {"with", required_argument, 0, 'w'},
        {"source", required_argument, 0, 's'},
        {"matches", required_argument, 0, 'm'},
        {"decisions", no_argument, 0, 'D'},
        {"labels", required_argument, 0, 'L'},
        {0, 0, 0, 0},
    };
    backfill_t bf = {.csv = 1, .from = INT64_MIN, .to = INT64_MAX};
    const char *data = NULL, *outpath = NULL, *source = NULL, *matchpath = NULL, *labelpath = NULL;
    int c, rc = 0, decisions = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'o': outpath = optarg; break;
        case 's': source = optarg; break;
        case 'm':
            matchpath = optarg;
            break;
        case 'w': split_with(&bf, optarg); break;
        case 'L': labelpath = optarg; break;
        case 'D':
            decisions = 1;
            break;
        case 'f':
            if (!strcmp(optarg, "csv")) bf.csv = 1;
            else if (!strcmp(optarg, "ndjson")) bf.csv = 0;
            else rc = cli_fail(prefix, "--format must be csv or ndjson, not '%s'", optarg);
            break;
        case 'F':
        case 'T':
            if (pipeline_parse_time(optarg, c == 'F' ? &bf.from : &bf.to) != 0)
                rc = cli_fail(prefix, "bad time '%s' for --%s (epoch ms or RFC 3339)", optarg,
                              c == 'F' ? "from" : "to");
            break;
        default: rc = cli_fail(prefix, "unknown option or missing value '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (rc == 0 && optind != argc - 1) rc = cli_fail(prefix, "give one SPEC file (see --help)");
    if (rc == 0 && (!data || !outpath)) rc = cli_fail(prefix, "--data DIR and --out FILE are required");
    if (rc == 0 && bf.from >= bf.to)
        rc = cli_fail(prefix,
                      "--from %" PRId64 " is not before --to %" PRId64
                      ": no row would be in [from, to)",
                      bf.from, bf.to);
    if (rc == 0 && matchpath && !strcmp(matchpath, outpath))
        rc = cli_fail(prefix, "--out and --matches name the same file, %s", outpath);
    pipeline_t pl;
    char err[1024];
    if (rc == 0) {
        cli_stop_hold(); /* before pipeline_open starts the log's thread */
        if (pipeline_open(&pl, argv[optind], data, source, 0, err, sizeof err) != 0) {
            rc = cli_fail(prefix, "%s", err);
        } else {
            cli_stop_listen();
            if (decisions && decide_new(pl.spec, NULL, &bf.decide, err, sizeof err) != 0)
                rc = cli_fail(prefix, "%s", err);
            if (rc == 0 && labelpath &&
                labels_load(labelpath, pl.src, &bf.labels, err, sizeof err) != 0)
                rc = cli_fail(prefix, "%s", err);
            bf.spec = pl.spec;
            /* Retention deleted the log's start: the state of those events
             * is in a checkpoint, where the rows start (as verify does);
             * without one, the windows of the first rows miss them. */
            ckpt_store_t *store = NULL;
            ckpt_t *ck = NULL;
            if (rc == 0 && pipeline_log_start_deleted(&pl)) {
                if (pipeline_restore_oldest(&pl, data, NULL, &store, &ck, err, sizeof err) == 0) {
                    bf.start = ck;
                    fprintf(
                        stderr,
                        "weir backfill: retention deleted the log's start: rows from checkpoint "
                        "%" PRIu64 " on, its state restored\n",
                        ckpt_info(ck)->id);
                } else {
                    fprintf(
                        stderr,
                        "weir backfill: retention deleted the log's start and no checkpoint "
                        "fits (%s): the first rows' windows and last() miss the deleted events\n",
                        err);
                }
            }
            if (rc == 0) rc = columns_new(&bf, labelpath);
            if (rc == 0) rc = backfill_write(&bf, &pl, outpath, matchpath);
            uint64_t unused = bf.labels ? labels_unused(bf.labels, bf.from, bf.to) : 0;
            if (rc == 0 && unused)
                fprintf(stderr,
                        "weir backfill: %" PRIu64
                        " lines of %s matched no row (by key and event time)\n",
                        unused, labelpath);
            labels_free(bf.labels);
            if (ck) ckpt_close(ck);
            if (store) ckpt_store_close(store);
            if (bf.decide) decide_free(bf.decide);
            decide_scratch_free(&bf.lower);
            pipeline_close(&pl);
        }
    }
    buf_free(&bf.row);
    buf_free(&bf.mline);
    for (size_t i = 0; i < bf.nwith; i++) weir_free(bf.with[i]);
    weir_free(bf.with);
    return rc;
}
