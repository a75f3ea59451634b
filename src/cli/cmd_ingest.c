/* cmd_ingest.c — `weir ingest SPEC --data DIR [--source NAME] < NDJSON`:
 * bulk append + process, no server. Each line is decoded by the source's
 * schema at the edge; a bad line is reported (line number, field) and never
 * reaches the log or the state. Good events are appended to the source's
 * topic in input order per partition and then processed from the log by
 * the engine — the same call that backfill's replay makes. State is first
 * rebuilt by replaying the existing log (OUTPUTS OF THE EXISTING LOG,
 * below). At the end of the input every partition gets a tick at the
 * largest event time seen, so idle partitions' watermarks (and their
 * windows) advance too. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/memlimit.h"
#include "cli/cli.h"
#include "decide/pipeline.h"
#include "decide/outputs.h"
#include "serve/runtime.h"
#include "spec/decode.h"

#define INGEST_MAX_LINE (1u << 20)
#define INGEST_BATCH 1024 /* events per partition per log batch */
#define INGEST_BATCH_BYTES (16u << 20) /* bytes of a partition's pending batch */

/* OUTPUTS OF THE EXISTING LOG. The window and late lines of the events
 * already logged were written by whoever processed them — unless that run
 * died before its buffered lines reached the files, leaving them short or
 * a line torn. A clean ingest leaves DATA/outputs/INGEST_MARK holding the
 * log's end offsets, and removes it before writing anything: when it is
 * there and the log still ends there, the outputs are whole and the
 * existing log is replayed without writing them; otherwise those files are
 * emptied and the replay writes them all again (the same lines: outputs
 * are a function of the log). A log grown by `weir run` is rewritten too:
 * its own outputs follow its checkpoints, not this mark. */
#define INGEST_MARK ".ingest-complete"

/* The log's end offsets, "n0,n1,...\n". */
static void log_ends(pipeline_t *pl, weir_buf_t *b)
{
    buf_reset(b);
    for (uint32_t p = 0; p < pl->nparts; p++) {
        log_part_stat_t st;
        log_part_stat(log_topic_part(pl->topic, p), &st);
        buf_appendf(b, "%s%" PRIu64, p ? "," : "", st.next_offset);
    }
    buf_append(b, "\n", 1);
}

/* 1 if the mark in data says the outputs are whole for a log ending at ends. */
static int mark_matches(const char *path, const weir_buf_t *ends)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return n == ends->len && memcmp(buf, ends->data, n) == 0;
}

/* Writes the mark (a new file renamed over the old: never half a mark). */
static int mark_write(const char *path, const weir_buf_t *ends)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    int ok = fwrite(ends->data, 1, ends->len, f) == ends->len;
    ok &= fclose(f) == 0;
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static const char ingest_usage[] =
    "usage: weir ingest SPEC --data DIR [--source NAME] [--ack written|durable]\n"
    "                   [--skip-bad-events] [--max-memory SIZE|none] < NDJSON\n"
    "\n"
    "Decodes each NDJSON line by the spec's source schema, appends the good ones to\n"
    "the log in DIR (topic = the source's name, the spec's partitions, partition =\n"
    "XXH64(key) mod N) and processes them: features, late events\n"
    "(DIR/outputs/late.ndjson) and aggregates on window close\n"
    "(DIR/outputs/<aggregate>.ndjson). A bad line (not a JSON object, missing key or\n"
    "time, a field of the wrong type, over 1 MiB) is reported on stderr with its line\n"
    "number and never reaches the log; the others are processed. Exit status 1 if\n"
    "any line was rejected. At the end, every partition gets a tick at the largest\n"
    "event time seen, so idle partitions close their windows too.\n"
    "SIGTERM or SIGINT stops reading at a line boundary and ends as at the end of\n"
    "the input (every line read is appended or rejected, ticks, outputs, the log\n"
    "synced); stderr then says how many input lines were read and appended and\n"
    "where to resume (tail -n +K), and the exit status is 128 + the signal (143,\n"
    "130). A second signal ends weir at once.\n"
    "--max-memory (default 5/8 of the machine's or its cgroup's memory, as weir run):\n"
    "once weir holds more (the heap, or its anonymous resident memory), reading stops\n"
    "at a line boundary in the same way, with exit status 1: a log whose keys' state\n"
    "does not fit could not be replayed by weir run either.\n"
    "Before the input, the log is replayed; an event in it this spec cannot read\n"
    "(appended by weir log append, or under another schema) stops the ingest, naming\n"
    "it, unless --skip-bad-events leaves such events out (each named).\n";

/* A partition's events waiting for their batch: [line][key] bytes per
 * event in data, with where each starts (offsets: data may move as it grows). */
typedef struct pending {
    weir_buf_t data;
    size_t *starts, *lens, *klens;
    uint64_t first_line; /* the input line of the first event waiting */
    size_t n, cap;
} pending_t;

typedef struct ingest {
    pipeline_t pl;
    pending_t *pend;
    weir_buf_t scratch;
    log_rec_t *recs;
    size_t rcap;
    log_ack_t ack;
    uint64_t appended;
} ingest_t;

static void pending_add(pending_t *pd, const char *line, size_t len, weir_slice_t key,
                        uint64_t lineno)
{
    if (pd->n == 0) pd->first_line = lineno;
    if (pd->n == pd->cap) {
        pd->cap = pd->cap ? pd->cap * 2 : 256;
        pd->starts = weir_realloc(pd->starts, pd->cap * sizeof(size_t));
        pd->lens = weir_realloc(pd->lens, pd->cap * sizeof(size_t));
        pd->klens = weir_realloc(pd->klens, pd->cap * sizeof(size_t));
    }
    pd->starts[pd->n] = pd->data.len;
    pd->lens[pd->n] = len;
    pd->klens[pd->n] = key.len;
    buf_append(&pd->data, line, len);
    buf_append(&pd->data, key.ptr, key.len);
    pd->n++;
}

/* Appends partition p's pending events as one batch, then processes them
 * from what was logged. */
static int flush_partition(ingest_t *in, uint32_t p, int64_t now, char *err, size_t errlen)
{
    pending_t *pd = &in->pend[p];
    if (pd->n == 0) return 0;
    if (in->rcap < pd->n) {
        in->rcap = pd->n;
        in->recs = weir_realloc(in->recs, in->rcap * sizeof *in->recs);
    }
    for (size_t i = 0; i < pd->n; i++) {
        const char *line = pd->data.data + pd->starts[i];
        in->recs[i] = (log_rec_t){0, now, LOG_REC_EVENT, {line + pd->lens[i], pd->klens[i]},
                                  {line, pd->lens[i]}};
    }
    uint64_t first;
    int rc = log_append(log_topic_part(in->pl.topic, p), in->recs, pd->n, in->ack, &in->scratch, &first,
                        err, errlen);
    if (rc) return rc;
    engine_result_t res;
    for (size_t i = 0; i < pd->n; i++) {
        rc = engine_part_record(in->pl.parts[p], first + i, 0, in->recs[i].value, &res, err, errlen);
        if (rc < 0) return rc; /* decoded at the edge already: cannot happen */
    }
    in->appended += pd->n;
    pd->n = 0;
    buf_reset(&pd->data);
    return 0;
}

/* MEMORY BUDGET (serve/runtime.h, as weir run counts it): the heap, or the
 * anonymous resident memory, whichever is over budget (the heap first),
 * else 0. Memory malloc holds free (keys expired) is given back before the
 * resident figure counts. */
static uint64_t memory_over(uint64_t budget)
{
    uint64_t heap = weir_alloc_used(), anon = 0;
    if (heap > budget) return heap;
    weir_memory_resident(&anon);
    if (anon > budget) {
        malloc_trim(0);
        weir_memory_resident(&anon);
    }
    return anon > budget ? anon : 0;
}

static void report_bad(void *ctx, const char *why)
{
    (void)ctx;
    fprintf(stderr, "weir ingest: replay: %s (skipped: --skip-bad-events)\n", why);
}

int cmd_ingest(int argc, char **argv)
{
    const char *prefix = "weir ingest";
    if (cli_wants_help(argc, argv)) return fputs(ingest_usage, stdout), 0;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},       {"source", required_argument, 0, 's'},
        {"ack", required_argument, 0, 'a'},        {"skip-bad-events", no_argument, 0, 'S'},
        {"max-memory", required_argument, 0, 'm'}, {0, 0, 0, 0},
    };
    const char *limit_of;
    uint64_t budget = RUNTIME_MEMORY_DEFAULT(weir_memory_limit(&limit_of));
    const char *data = NULL, *source = NULL;
    log_ack_t ack = LOG_ACK_WRITTEN;
    int c, skip_bad = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'd') data = optarg;
        else if (c == 's') source = optarg;
        else if (c == 'm') {
            if (cli_parse_memory(prefix, optarg, &budget) != 0) return 1;
        } else if (c == 'S')
            skip_bad = 1;
        else if (c == 'a' && !strcmp(optarg, "written")) ack = LOG_ACK_WRITTEN;
        else if (c == 'a' && !strcmp(optarg, "durable")) ack = LOG_ACK_DURABLE;
        else if (c == 'a') return cli_fail(prefix, "--ack must be 'written' or 'durable', not '%s'", optarg);
        else return cli_fail(prefix, "unknown option or missing value '%s' (see --help)", argv[optind - 1]);
    }
    if (optind != argc - 1) return cli_fail(prefix, "give one SPEC file (see --help)");
    if (!data) return cli_fail(prefix, "--data DIR is required");

    ingest_t in = {.ack = ack};
    char err[1024];
    cli_stop_hold(); /* before pipeline_open starts the log's thread */
    if (pipeline_open(&in.pl, argv[optind], data, source, 1, err, sizeof err) != 0)
        return cli_fail(prefix, "%s", err);
    /* A stop signal from here on is only noted: the replay below must end
     * (it rewrites outputs), and the input loop stops at its next line. */
    cli_stop_listen();
    pipeline_t *pl = &in.pl;
    int rc = 0;
    outputs_t *out = NULL;
    if (outputs_open(data, pl->spec, &out, err, sizeof err) != 0) {
        pipeline_close(pl);
        return cli_fail(prefix, "%s", err);
    }
    char mark[4096];
    snprintf(mark, sizeof mark, "%s/outputs/" INGEST_MARK, data);
    weir_buf_t ends = WEIR_BUF_INIT;
    log_ends(pl, &ends);
    /* (files set aside: a writer, this or weir run, stopped rebuilding them) */
    int whole = mark_matches(mark, &ends) && !outputs_any_aside(out);
    /* Rebuilt from the log only while it has every event: after retention
     * the files would lose what the deleted events made. They are left as
     * they are then (as weir run leaves them), and what follows is added. */
    int rebuild = !whole && !pipeline_log_start_deleted(pl);
    if (!whole && !rebuild)
        fprintf(stderr,
                "%s: retention deleted the log's start: the outputs are left as they are, "
                "not rebuilt from what is left\n",
                prefix);
    if (unlink(mark) != 0 && errno != ENOENT) rc = cli_fail(prefix, "cannot remove %s: %s", mark, strerror(errno));
    if (rc == 0 && rebuild && outputs_set_aside_sink_files(out, err, sizeof err) != 0)
        rc = cli_fail(prefix, "%s", err);
    engine_sink_t sink = outputs_sink(out);
    for (uint32_t p = 0; p < pl->nparts; p++)
        engine_part_set_sink(pl->parts[p], rebuild ? &sink : NULL);
    for (uint32_t p = 0; p < pl->nparts && rc == 0; p++)
        if (pipeline_replay(pl, p, NULL, NULL, skip_bad ? report_bad : NULL, NULL, err,
                            sizeof err) != 0)
            rc = cli_fail(prefix, "replaying the log: %s", err);
    /* Rebuilt: a new generation (outputs.c), then what was set aside goes;
     * refused: as they were. */
    if (rebuild && rc == 0 && outputs_new_generation(out, err, sizeof err) != 0)
        rc = cli_fail(prefix, "%s", err);
    if (rebuild) outputs_end_aside_sink_files(out, rc != 0);
    if (rc) {
        outputs_close(out, NULL, 0);
        buf_free(&ends);
        pipeline_close(pl);
        return rc;
    }
    for (uint32_t p = 0; p < pl->nparts; p++) engine_part_set_sink(pl->parts[p], &sink);

    in.pend = weir_calloc(pl->nparts, sizeof *in.pend);
    expr_value_t *fields = weir_calloc(pl->src->nfields + 1, sizeof *fields);
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    uint64_t lineno = 0, rejected = 0;
    int64_t now = weir_wall_ms();
    /* STOPPING. On SIGTERM/SIGINT the loop ends at a line boundary and
     * everything after it is the normal end of input (the pending batches,
     * ticks, outputs, the mark, the log synced at close): lines 1..lineno
     * are then all appended or rejected, and none after, so the input can
     * be resumed at lineno + 1 without appending a line twice. A line cut short by the
     * signal (getline gives what it had when the read failed with EINTR)
     * is not one of them. A signal in the instant between the check and a
     * read that then waits is seen at the next line or the end of input
     * (or a second signal ends weir). */
    uint64_t over = 0; /* the memory used when the budget stopped the input (MEMORY BUDGET) */
    while (rc == 0 && !cli_stop_signal() && (len = getline(&line, &linecap, stdin)) >= 0) {
        if (cli_stop_signal() && line[len - 1] != '\n') break;
        /* MEMORY BUDGET: as a stop signal, at a line boundary, before the
         * line is read as one (a few thousand lines apart: /proc is read) */
        if ((lineno & 0xfff) == 0xfff && budget && (over = memory_over(budget)) != 0) break;
        lineno++;
        char *s = line;
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
        while (len > 0 && (*s == ' ' || *s == '\t')) s++, len--;
        if (len == 0) continue;
        char why[512];
        cJSON *doc = NULL;
        const char *end = NULL;
        long pos; /* of a NUL escape or a byte that is not UTF-8 */
        /* The edge refuses a declared field named twice; the replay above
         * does not: it rebuilds what older binaries accepted (decode.h). */
        if ((size_t)len > INGEST_MAX_LINE) {
            snprintf(why, sizeof why, "longer than %u bytes", INGEST_MAX_LINE);
        } else if ((pos = spec_text_utf8_bad(s, (size_t)len)) >= 0) {
            snprintf(why, sizeof why, "not UTF-8 at byte %ld (JSON text is UTF-8)", pos);
        } else if (!(doc = cJSON_ParseWithLengthOpts(s, (size_t)len, &end, 0)) || end != s + len) {
            const char *at = doc ? end : cJSON_GetErrorPtr();
            if (!doc && spec_text_too_deep(s, (size_t)len))
                snprintf(why, sizeof why, "arrays or objects nested deeper than %d levels",
                         SPEC_MAX_NESTING);
            else
                snprintf(why, sizeof why, "malformed JSON near byte %zu",
                         at && at >= s && at <= s + len ? (size_t)(at - s) : (size_t)0);
        } else if (!cJSON_IsObject(doc)) {
            snprintf(why, sizeof why, "not a JSON object");
        } else if ((pos = spec_text_nul(s, (size_t)len)) >= 0) {
            snprintf(why, sizeof why,
                     "a string holds \\u0000 (NUL) or a raw control byte at byte %ld, which weir's "
                     "strings do not take",
                     pos);
        } else if (spec_decode_event_edge(pl->src, doc, fields, why, sizeof why) == 0 &&
                   !spec_edge_refuses(pl->src, fields, weir_wall_ms(), why, sizeof why)) {
            why[0] = '\0';
        }
        if (why[0]) {
            fprintf(stderr, "%s: line %" PRIu64 ": %s\n", prefix, lineno, why);
            rejected++;
            cJSON_Delete(doc);
            continue;
        }
        char keytmp[32];
        weir_slice_t key = engine_event_key(pl->src, fields, keytmp);
        uint32_t p = (uint32_t)(weir_hash64(key.ptr, key.len) % pl->nparts);
        /* A batch is at most INGEST_BATCH events and INGEST_BATCH_BYTES
         * (well under the log's 64 MiB batch limit, with 1 MiB lines). */
        if (in.pend[p].data.len + (size_t)len + key.len > INGEST_BATCH_BYTES &&
            flush_partition(&in, p, now, err, sizeof err) != 0)
            rc = cli_fail(prefix, "%s", err);
        pending_add(&in.pend[p], s, (size_t)len, key, lineno); /* key may point into doc */
        cJSON_Delete(doc);
        if (rc == 0 && in.pend[p].n >= INGEST_BATCH && flush_partition(&in, p, now, err, sizeof err) != 0)
            rc = cli_fail(prefix, "%s", err);
        if ((lineno & 0xffff) == 0) now = weir_wall_ms();
    }
    for (uint32_t p = 0; p < pl->nparts && rc == 0; p++)
        if (flush_partition(&in, p, now, err, sizeof err) != 0) rc = cli_fail(prefix, "%s", err);
    if (rc) {
        /* An append failed (a full disk): the events of the failed batch
         * and of those still waiting are not in the log; other partitions'
         * batches went out before, with later lines among them. */
        uint64_t k = lineno + 1;
        for (uint32_t p = 0; p < pl->nparts; p++)
            if (in.pend[p].n && in.pend[p].first_line < k) k = in.pend[p].first_line;
        fprintf(stderr,
                "%s: input lines 1..%" PRIu64 " are in the log or were rejected; of the lines "
                "from %" PRIu64 " to %" PRIu64 ", some are in the log too (their partitions' "
                "batches went first): resuming at line %" PRIu64 " appends those again\n",
                prefix, k - 1, k, lineno, k);
    }

    /* Ticks: every partition's time reaches the largest event time seen. */
    int64_t tmax = INT64_MIN;
    for (uint32_t p = 0; p < pl->nparts; p++) {
        engine_stats_t st;
        engine_part_stats(pl->parts[p], &st);
        int64_t mt = st.watermark == INT64_MIN ? INT64_MIN : st.watermark + pl->src->lateness_ms;
        if (mt > tmax) tmax = mt;
    }
    weir_buf_t tick = WEIR_BUF_INIT;
    if (rc == 0 && tmax != INT64_MIN) {
        engine_tick_value(&tick, tmax);
        for (uint32_t p = 0; p < pl->nparts && rc == 0; p++) {
            log_rec_t r = {0, now, LOG_REC_TICK, {NULL, 0}, {tick.data, tick.len}};
            if (log_append(log_topic_part(pl->topic, p), &r, 1, ack, &in.scratch, NULL, err, sizeof err) != 0)
                rc = cli_fail(prefix, "%s", err);
            else
                engine_part_tick(pl->parts[p], tmax);
        }
    }
    if (outputs_close(out, err, sizeof err) != 0 && rc == 0) rc = cli_fail(prefix, "%s", err);
    log_ends(pl, &ends);
    if (rc == 0 && mark_write(mark, &ends) != 0)
        fprintf(stderr, "%s: cannot write %s: %s (the next ingest writes the outputs again)\n", prefix,
                mark, strerror(errno));
    buf_free(&ends);

    if (rc == 0) {
        engine_stats_t tot = {0}, st;
        for (uint32_t p = 0; p < pl->nparts; p++) {
            engine_part_stats(pl->parts[p], &st);
            tot.late += st.late;
            tot.duplicates += st.duplicates;
            tot.windows_emitted += st.windows_emitted;
            tot.keys += st.keys;
            tot.state_bytes += st.state_bytes;
            tot.matches += st.matches;
            tot.partial += st.partial;
            tot.held += st.held;
        }
        printf("ingested %" PRIu64 " events into %s (source %s, %u partitions); rejected %" PRIu64 "\n",
               in.appended, data, pl->src->name, pl->nparts, rejected);
        printf("late: %" PRIu64 " (all time, replay included); windows emitted: %" PRIu64 "\n", tot.late,
               tot.windows_emitted);
        if (pl->src->has_id)
            printf("duplicates: %" PRIu64 " (logged, not applied: their id was; replay included)\n",
                   tot.duplicates);
        printf("state: %" PRIu64 " keys, %" PRIu64 " bytes\n", tot.keys, tot.state_bytes);
        if (pl->spec->npatterns)
            printf("patterns: %" PRIu64 " matches (replay included), %" PRIu64
                   " partial matches, %" PRIu64 " events held for time order\n",
                   tot.matches, tot.partial, tot.held);
        if (rejected) rc = 1;
        fflush(stdout); /* the summary before the stop line, when both go to one terminal */
        if (over)
            rc = cli_fail(prefix,
                          "weir uses %.1f MiB, over --max-memory (%.1f MiB): read %" PRIu64
                          " input lines (%" PRIu64 " events appended, %" PRIu64
                          " rejected) and stopped there, the line after not read; the keys' "
                          "state must fit for weir run to replay this log: raise --max-memory "
                          "(or the memory) and resume with tail -n +%" PRIu64,
                          (double)over / (1 << 20), (double)budget / (1 << 20), lineno, in.appended,
                          rejected, lineno + 1);
        else if (cli_stop_signal())
            rc = cli_stopped(prefix,
                             "read %" PRIu64 " input lines (%" PRIu64 " events appended, %" PRIu64
                             " rejected) and stopped there; resume with tail -n +%" PRIu64,
                             lineno, in.appended, rejected, lineno + 1);
    }
    buf_free(&tick);
    for (uint32_t p = 0; p < pl->nparts; p++) {
        buf_free(&in.pend[p].data);
        weir_free(in.pend[p].starts);
        weir_free(in.pend[p].lens);
        weir_free(in.pend[p].klens);
    }
    weir_free(in.pend);
    weir_free(in.recs);
    weir_free(fields);
    buf_free(&in.scratch);
    free(line);
    pipeline_close(pl);
    return rc;
}
