/* cmd_log.c — `weir log append|read|check|stat`: the log from the command
 * line. append turns NDJSON on stdin into records (partition = XXH64 of the
 * key field's value mod N, or round-robin); read prints records as NDJSON;
 * check verifies everything read-only; stat summarises each partition. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/hash.h"
#include "cli/cli.h"
#include "decide/decision_log.h"
#include "decide/pipeline.h"
#include "log/checkpoint.h"
#include "log/log.h"

#define APPEND_MAX_LINE (1u << 20)      /* bytes per NDJSON line */
#define APPEND_BATCH_BYTES (256u << 10) /* flush a partition's batch at this size */

static const char append_usage[] =
    "usage: weir log append DIR --topic T [--partitions N] [--key FIELD] [--ack written|durable]\n"
    "                       [--batch N] [--segment-bytes B] [--segment-ms MS]\n"
    "                       [--retention-ms MS] [--retention-bytes B]\n"
    "\n"
    "Appends NDJSON events from stdin to topic T of the log in DIR. Each line must be\n"
    "a JSON object of at most 1 MiB (empty lines are skipped). With --key, the event\n"
    "goes to partition XXH64(value of FIELD) mod N (FIELD must be a string or an\n"
    "integer); without it, partitions take lines in turn. A new topic gets N\n"
    "partitions (default 1); an existing one must match N if given.\n"
    "On a bad line, the lines before it are appended, nothing after it is, and the\n"
    "exit status is 1. Prints the count appended and each partition's last offset.\n"
    "  --ack written   return once the OS has the bytes; fsync every 100 ms (default)\n"
    "  --ack durable   fdatasync each batch before going on\n"
    "  --batch N       records per batch (default 1024)\n"
    "Retention deletes closed segments, oldest first (never a partition's last,\n"
    "active one), before the command exits (with no input too: weir log append\n"
    "DIR --topic T --retention-bytes B < /dev/null applies it), and prints what it\n"
    "deleted. In a server's data directory (with a decision log of T) it keeps\n"
    "every segment holding an event after the oldest usable checkpoint or not yet\n"
    "decided, and says so.\n";

static const char read_usage[] =
    "usage: weir log read DIR --topic T [--partition P] [--from-offset O | --from-time MS]\n"
    "                     [--limit N] [--decisions]\n"
    "\n"
    "Prints one JSON object per record, partition by partition in offset order:\n"
    "{\"partition\", \"offset\", \"ts\", \"key\", \"value\"} where value is the event as\n"
    "appended. --from-time starts at the first record whose append time is >= MS.\n"
    "--decisions reads the decision log a server keeps beside the events\n"
    "(DIR/decisions): value is the decision record (offset: the event's).\n"
    "Exits non-zero, naming the file and byte offset, if a batch fails verification.\n"
    "Read-only, like stat: it takes no lock and changes nothing, so it can follow a\n"
    "live server's log (what was appended when it opened); a torn tail is not\n"
    "printed and is left for the next writer to cut.\n";

static const char check_usage[] =
    "usage: weir log check DIR\n"
    "\n"
    "Reads and verifies every batch of every segment of the log in DIR, and of its\n"
    "decision log (DIR/decisions) when a server made one, read-only.\n"
    "Exits 0 when all is valid; otherwise prints each bad file and byte offset and\n"
    "exits 1. A torn tail of an active segment (left by a crash, truncated by the\n"
    "next open) and a stale index (rebuilt by the next open) are notes, not errors.\n";

static const char stat_usage[] =
    "usage: weir log stat DIR\n"
    "\n"
    "Prints, per topic and partition: segments, first and last offset, bytes, first\n"
    "and last append timestamp (ms). Read-only, like check: it takes no lock and\n"
    "changes nothing, so it can run beside a live writer; a torn tail of an active\n"
    "segment is reported on stderr (its bytes not counted) and left for the next\n"
    "writer to cut.\n";

typedef struct log_opts {
    const char *dir, *topic, *key;
    uint64_t partitions, batch, partition, from_offset, limit;
    int64_t from_time;
    int has_partition, has_offset, has_time, has_limit;
    int decisions; /* read: DIR/decisions, not DIR/log */
    log_ack_t ack;
    log_config_t cfg;
} log_opts_t;

enum {
    OPT_TOPIC = 1,
    OPT_PARTS,
    OPT_KEY,
    OPT_ACK,
    OPT_BATCH,
    OPT_SEGB,
    OPT_SEGMS,
    OPT_RETMS,
    OPT_RETB,
    OPT_PART,
    OPT_FROMO,
    OPT_FROMT,
    OPT_LIMIT,
    OPT_DECISIONS
};

static const struct option long_opts[] = {
    {"topic", required_argument, 0, OPT_TOPIC},
    {"partitions", required_argument, 0, OPT_PARTS},
    {"key", required_argument, 0, OPT_KEY},
    {"ack", required_argument, 0, OPT_ACK},
    {"batch", required_argument, 0, OPT_BATCH},
    {"segment-bytes", required_argument, 0, OPT_SEGB},
    {"segment-ms", required_argument, 0, OPT_SEGMS},
    {"retention-ms", required_argument, 0, OPT_RETMS},
    {"retention-bytes", required_argument, 0, OPT_RETB},
    {"partition", required_argument, 0, OPT_PART},
    {"from-offset", required_argument, 0, OPT_FROMO},
    {"from-time", required_argument, 0, OPT_FROMT},
    {"limit", required_argument, 0, OPT_LIMIT},
    {"decisions", no_argument, 0, OPT_DECISIONS},
    {0, 0, 0, 0},
};

/* Parses the options every log sub-verb shares; `allowed` lists the option
 * codes this sub-verb accepts. Returns 0, or prints the reason and returns 1. */
static int parse_opts(const char *prefix, int argc, char **argv, const char *allowed,
                      log_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 1024;
    log_config_defaults(&o->cfg);
    optind = 1;
    opterr = 0;
    int c, li = -1;
    while ((li = -1, c = getopt_long(argc, argv, "", long_opts, &li)) != -1) {
        /* Name the option itself: argv[optind - 1] may be its value. */
        if (c == '?' || c == ':') {
            for (const struct option *lo = long_opts; lo->name; lo++)
                if (optopt && lo->val == optopt)
                    return cli_fail(prefix, "option '--%s' needs a value (see --help)", lo->name);
            return cli_fail(prefix, "unknown option '%s' (see --help)", argv[optind - 1]);
        }
        if (!strchr(allowed, c))
            return cli_fail(prefix, "option '--%s' does not apply here (see --help)", long_opts[li].name);
        uint64_t u = 0;
        int64_t s = 0;
        int bad = 0;
        switch (c) {
        case OPT_TOPIC: o->topic = optarg; break;
        case OPT_DECISIONS:
            o->decisions = 1;
            break;
        case OPT_KEY: o->key = optarg; break;
        case OPT_ACK:
            if (!strcmp(optarg, "written")) o->ack = LOG_ACK_WRITTEN;
            else if (!strcmp(optarg, "durable")) o->ack = LOG_ACK_DURABLE;
            else return cli_fail(prefix, "--ack must be 'written' or 'durable', not '%s'", optarg);
            break;
        case OPT_FROMT:
            bad = cli_parse_i64(optarg, &s);
            o->from_time = s;
            o->has_time = 1;
            break;
        default:
            bad = cli_parse_u64(optarg, &u);
            if (c == OPT_PARTS) o->partitions = u, bad |= u == 0;
            if (c == OPT_BATCH) o->batch = u, bad |= u == 0;
            if (c == OPT_SEGB) o->cfg.segment_bytes = u;
            if (c == OPT_SEGMS) o->cfg.segment_ms = (int64_t)u;
            if (c == OPT_RETMS) o->cfg.retention_ms = (int64_t)u;
            if (c == OPT_RETB) o->cfg.retention_bytes = u;
            if (c == OPT_PART) o->partition = u, o->has_partition = 1;
            if (c == OPT_FROMO) o->from_offset = u, o->has_offset = 1;
            if (c == OPT_LIMIT) o->limit = u, o->has_limit = 1;
        }
        if (bad) return cli_fail(prefix, "bad value '%s' for --%s", optarg, long_opts[li].name);
    }
    if (optind != argc - 1)
        return cli_fail(prefix, optind >= argc ? "missing DIR (see --help)" : "unexpected argument '%s'",
                        argv[optind + (optind < argc - 1)]);
    o->dir = argv[optind];
    if (strchr(allowed, OPT_TOPIC) && !o->topic) return cli_fail(prefix, "--topic is required");
    return 0;
}

/* A partition's pending records: line bytes copied into data, records
 * pointing into it by offset until the flush (data may move as it grows). */
typedef struct pending {
    weir_buf_t data;
    size_t *starts, *lens, *kstarts, *klens;
    size_t n, cap;
} pending_t;

static void pending_add(pending_t *pd, const char *line, size_t len, const char *key, size_t klen)
{
    if (pd->n == pd->cap) {
        pd->cap = pd->cap ? pd->cap * 2 : 256;
        pd->starts = weir_realloc(pd->starts, pd->cap * sizeof(size_t));
        pd->lens = weir_realloc(pd->lens, pd->cap * sizeof(size_t));
        pd->kstarts = weir_realloc(pd->kstarts, pd->cap * sizeof(size_t));
        pd->klens = weir_realloc(pd->klens, pd->cap * sizeof(size_t));
    }
    pd->starts[pd->n] = pd->data.len;
    pd->lens[pd->n] = len;
    buf_append(&pd->data, line, len);
    pd->kstarts[pd->n] = pd->data.len;
    pd->klens[pd->n] = klen;
    buf_append(&pd->data, key, klen);
    pd->n++;
}

static int pending_flush(log_part_t *part, pending_t *pd, log_ack_t ack, weir_buf_t *scratch,
                         log_rec_t **recs, size_t *rcap, char *err, size_t errlen)
{
    if (pd->n == 0) return 0;
    if (*rcap < pd->n) {
        *rcap = pd->n;
        *recs = weir_realloc(*recs, *rcap * sizeof **recs);
    }
    int64_t now = weir_wall_ms();
    for (size_t i = 0; i < pd->n; i++) {
        (*recs)[i] = (log_rec_t){0, now, LOG_REC_EVENT,
                                 {pd->data.data + pd->kstarts[i], pd->klens[i]},
                                 {pd->data.data + pd->starts[i], pd->lens[i]}};
    }
    uint64_t first;
    int rc = log_append(part, *recs, pd->n, ack, scratch, &first, err, errlen);
    pd->n = 0;
    buf_reset(&pd->data);
    return rc;
}

/* Extracts the partitioning key of an event: a string's bytes or an
 * integer's decimal digits. Returns 0 or fills why. */
static int event_key(const cJSON *obj, const char *field, char *tmp, size_t tmplen, const char **key,
                     size_t *klen, char *why, size_t whylen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!v || cJSON_IsNull(v)) return weir_errf(why, whylen, WEIR_EINVAL, "missing key field '%s'", field);
    if (cJSON_IsString(v)) {
        *key = v->valuestring;
        *klen = strlen(v->valuestring);
        return 0;
    }
    if (cJSON_IsNumber(v) && v->valuedouble == (double)(int64_t)v->valuedouble &&
        v->valuedouble > -9e15 && v->valuedouble < 9e15) {
        *klen = (size_t)snprintf(tmp, tmplen, "%" PRId64, (int64_t)v->valuedouble);
        *key = tmp;
        return 0;
    }
    return weir_errf(why, whylen, WEIR_EINVAL, "key field '%s' must be a string or an integer", field);
}

static void print_partition_offsets(log_topic_t *topic)
{
    for (uint32_t i = 0; i < log_topic_partitions(topic); i++) {
        log_part_stat_t st;
        log_part_stat(log_topic_part(topic, i), &st);
        if (st.next_offset == st.start_offset)
            printf("partition %u: empty\n", i);
        else
            printf("partition %u: last offset %" PRIu64 "\n", i, st.next_offset - 1);
    }
}

/* Opens the log and the topic. With create, a missing topic is created with
 * `partitions` partitions, or 1 if that is 0; an existing one keeps its
 * count (and must match `partitions` if given). */
static int open_topic(const char *prefix, const log_opts_t *o, uint32_t partitions, int create,
                      log_t **log, log_topic_t **topic)
{
    char err[512], ddir[4096];
    snprintf(ddir, sizeof ddir, "%s/decisions", o->dir);
    if ((o->decisions ? log_open_dir(ddir, &o->cfg, log, err, sizeof err)
                      : log_open(o->dir, &o->cfg, log, err, sizeof err)) != 0)
        return cli_fail(prefix, "%s", err);
    int rc = log_topic_open(*log, o->topic, partitions, topic, err, sizeof err);
    if (rc == WEIR_ENOENT && create && !partitions)
        rc = log_topic_open(*log, o->topic, 1, topic, err, sizeof err);
    if (rc != 0) {
        log_close(*log);
        return cli_fail(prefix, "%s", err);
    }
    pipeline_log_recovery(prefix, *topic);
    return 0;
}

/* RETENTION ON A SERVER'S DATA DIRECTORY (a topic with a decision log,
 * which the server makes at its first start): retention keeps what the server's recovery
 * needs, per partition the events from the oldest usable checkpoint's
 * offset on (recovery falls back to it if the newest fails; with none, all
 * of them) and every event not yet decided. The log is opened with
 * retention held (log_config_t.retain_held) until these floors are set. */
static int is_server_dir(const char *dir, const char *topic)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/decisions/%s", dir, topic);
    return stat(path, &st) == 0;
}

static int set_server_floors(const char *prefix, const char *dir, const char *topic_name,
                             log_topic_t *topic)
{
    uint32_t n = log_topic_partitions(topic);
    uint64_t *floor = weir_malloc(n * sizeof *floor);
    char err[512];
    int rc = 0, any = 0;
    ckpt_store_t *cs;
    ckpt_info_t *list = NULL;
    size_t nl = 0;
    if ((rc = ckpt_store_open(dir, CKPT_READ_ONLY, &cs, err, sizeof err)) == 0) {
        rc = ckpt_list(cs, CKPT_CHECK_QUICK, &list, &nl, err, sizeof err);
        ckpt_store_close(cs);
    }
    for (uint32_t p = 0; p < n; p++)
        floor[p] = UINT64_MAX;
    for (size_t i = 0; rc == 0 && i < nl; i++) {
        if (list[i].status != 0 || !list[i].parts || list[i].partitions != n) continue;
        any = 1;
        for (uint32_t p = 0; p < n; p++)
            if (list[i].parts[p].log_offset < floor[p]) floor[p] = list[i].parts[p].log_offset;
    }
    ckpt_list_free(list, nl);
    for (uint32_t p = 0; rc == 0 && !any && p < n; p++)
        floor[p] = 0;
    char ddir[4096];
    if (rc == 0) {
        snprintf(ddir, sizeof ddir, "%s/decisions", dir);
        log_config_t dc;
        log_config_defaults(&dc);
        log_t *dlog;
        log_topic_t *dt;
        if ((rc = log_open_dir(ddir, &dc, &dlog, err, sizeof err)) == 0) {
            if ((rc = log_topic_open(dlog, topic_name, n, &dt, err, sizeof err)) == 0) {
                for (uint32_t p = 0; rc == 0 && p < n; p++) {
                    int64_t last;
                    rc = decision_log_last_input(log_topic_part(dt, p), p, &last, err, sizeof err);
                    if (rc == 0 && (uint64_t)(last + 1) < floor[p]) floor[p] = (uint64_t)(last + 1);
                }
            }
            log_close(dlog);
        }
    }
    if (rc == 0)
        for (uint32_t p = 0; p < n; p++) {
            log_part_retain_floor(log_topic_part(topic, p), floor[p]);
            if (floor[p] != UINT64_MAX)
                fprintf(stderr,
                        "%s: partition %u: retention keeps offsets from %" PRIu64
                        " on (a server's recovery needs them)\n",
                        prefix, p, floor[p]);
        }
    weir_free(floor);
    return rc ? cli_fail(prefix, "retention on a server's data directory: %s", err) : 0;
}

/* Retention once more before exit: the log applies it at a segment roll
 * (bytes) and on its flusher's round (time), which a short run may never
 * reach; `--retention-bytes B < /dev/null` deleted nothing and said so
 * nowhere. */
static void apply_retention(log_topic_t *topic)
{
    uint64_t segs = 0, bytes = 0;
    for (uint32_t p = 0; p < log_topic_partitions(topic); p++) {
        log_part_t *part = log_topic_part(topic, p);
        log_part_retain(part);
        log_part_stat_t st; /* what this run deleted: at its rolls and now */
        log_part_stat(part, &st);
        segs += st.deleted_segments;
        bytes += st.deleted_bytes;
    }
    printf("retention deleted %" PRIu64 " segments (%" PRIu64 " bytes)\n", segs, bytes);
}

static int log_append_cmd(int argc, char **argv)
{
    const char *prefix = "weir log append";
    if (cli_wants_help(argc, argv)) return fputs(append_usage, stdout), 0;
    log_opts_t o;
    const char allowed[] = {OPT_TOPIC, OPT_PARTS, OPT_KEY, OPT_ACK, OPT_BATCH, OPT_SEGB, OPT_SEGMS,
                            OPT_RETMS, OPT_RETB, 0};
    if (parse_opts(prefix, argc, argv, allowed, &o)) return 1;
    log_t *log;
    log_topic_t *topic;
    char err[512];
    int server =
        (o.cfg.retention_ms > 0 || o.cfg.retention_bytes > 0) && is_server_dir(o.dir, o.topic);
    o.cfg.retain_held = server;
    if (open_topic(prefix, &o, (uint32_t)o.partitions, 1, &log, &topic) != 0) return 1;
    if (server && set_server_floors(prefix, o.dir, o.topic, topic) != 0) {
        log_close(log);
        return 1;
    }
    uint32_t nparts = log_topic_partitions(topic);
    pending_t *pend = weir_calloc(nparts, sizeof *pend);
    weir_buf_t scratch = WEIR_BUF_INIT;
    log_rec_t *recs = NULL;
    size_t rcap = 0;

    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    uint64_t lineno = 0, appended = 0, rr = 0;
    int rc = 0;
    char why[256] = "";
    while ((len = getline(&line, &linecap, stdin)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        if (len == 0) continue;
        if ((size_t)len > APPEND_MAX_LINE) {
            snprintf(why, sizeof why, "line %" PRIu64 ": longer than %u bytes", lineno, APPEND_MAX_LINE);
            break;
        }
        /* The record holds the object without surrounding whitespace, so
         * what is stored is exactly one JSON object. */
        char *start = line;
        while (len > 0 && (*start == ' ' || *start == '\t')) start++, len--;
        while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t')) len--;
        const char *end = NULL;
        if (len == 0) continue;
        cJSON *obj = cJSON_ParseWithLengthOpts(start, (size_t)len, &end, 0);
        if (!obj || !cJSON_IsObject(obj) || end != start + len) {
            snprintf(why, sizeof why, "line %" PRIu64 ": not a JSON object", lineno);
            cJSON_Delete(obj);
            break;
        }
        const char *key = "";
        size_t klen = 0;
        char tmp[32], kwhy[200];
        uint32_t part;
        if (o.key) {
            if (event_key(obj, o.key, tmp, sizeof tmp, &key, &klen, kwhy, sizeof kwhy) != 0) {
                snprintf(why, sizeof why, "line %" PRIu64 ": %s", lineno, kwhy);
                cJSON_Delete(obj);
                break;
            }
            part = (uint32_t)(weir_hash64(key, klen) % nparts);
        } else {
            part = (uint32_t)(rr++ % nparts);
        }
        pending_add(&pend[part], start, (size_t)len, key, klen);
        cJSON_Delete(obj);
        if (pend[part].n >= o.batch || pend[part].data.len >= APPEND_BATCH_BYTES) {
            appended += pend[part].n;
            if (pending_flush(log_topic_part(topic, part), &pend[part], o.ack, &scratch, &recs, &rcap,
                              err, sizeof err) != 0) {
                rc = cli_fail(prefix, "%s", err);
                goto done;
            }
        }
    }
    for (uint32_t i = 0; i < nparts; i++) {
        appended += pend[i].n;
        if (pending_flush(log_topic_part(topic, i), &pend[i], o.ack, &scratch, &recs, &rcap, err,
                          sizeof err) != 0) {
            rc = cli_fail(prefix, "%s", err);
            goto done;
        }
    }
    printf("appended %" PRIu64 " events to topic %s\n", appended, o.topic);
    if (o.cfg.retention_ms > 0 || o.cfg.retention_bytes > 0) apply_retention(topic);
    print_partition_offsets(topic);
    if (why[0]) rc = cli_fail(prefix, "%s", why);
done:
    for (uint32_t i = 0; i < nparts; i++) {
        buf_free(&pend[i].data);
        weir_free(pend[i].starts);
        weir_free(pend[i].lens);
        weir_free(pend[i].kstarts);
        weir_free(pend[i].klens);
    }
    weir_free(pend);
    weir_free(recs);
    buf_free(&scratch);
    free(line);
    log_close(log);
    return rc;
}

static void format_record(weir_buf_t *out, uint32_t part, const log_rec_t *r)
{
    buf_appendf(out, "{\"partition\":%u,\"offset\":%" PRIu64 ",\"ts\":%" PRId64 ",", part, r->offset, r->ts);
    if (r->type == LOG_REC_TICK) buf_append_str(out, "\"type\":\"tick\",");
    if (r->type == LOG_REC_SOURCE) buf_append_str(out, "\"type\":\"source\",");
    buf_append_str(out, "\"key\":");
    if (r->key.len) buf_append_json_string(out, r->key.ptr, r->key.len);
    else buf_append_str(out, "null");
    buf_append_str(out, ",\"value\":");
    /* Events were checked to be JSON objects when appended; anything else
     * (tick payloads) prints as a string. */
    if (r->value.len && r->value.ptr[0] == '{') buf_append(out, r->value.ptr, r->value.len);
    else buf_append_json_string(out, r->value.ptr, r->value.len);
    buf_append_str(out, "}\n");
}

static int log_read_cmd(int argc, char **argv)
{
    const char *prefix = "weir log read";
    if (cli_wants_help(argc, argv)) return fputs(read_usage, stdout), 0;
    log_opts_t o;
    const char allowed[] = {OPT_TOPIC, OPT_PART, OPT_FROMO, OPT_FROMT, OPT_LIMIT, OPT_DECISIONS, 0};
    if (parse_opts(prefix, argc, argv, allowed, &o)) return 1;
    if (o.has_offset && o.has_time) return cli_fail(prefix, "give --from-offset or --from-time, not both");
    /* Reading must not create anything: look before opening (which creates DIR/log). */
    char **names;
    size_t nnames, found = 0;
    char lerr[512], ddir[4096];
    snprintf(ddir, sizeof ddir, "%s/decisions", o.dir);
    if ((o.decisions ? log_topic_list_dir(ddir, &names, &nnames, lerr, sizeof lerr)
                     : log_topic_list(o.dir, &names, &nnames, lerr, sizeof lerr)) != 0)
        return cli_fail(prefix, "%s%s", lerr,
                        o.decisions ? " (no decision log: weir run makes one)" : "");
    for (size_t i = 0; i < nnames; i++) {
        found |= !strcmp(names[i], o.topic);
        weir_free(names[i]);
    }
    weir_free(names);
    if (!found) return cli_fail(prefix, "no topic '%s' in %s", o.topic, o.decisions ? ddir : o.dir);
    log_t *log;
    log_topic_t *topic;
    /* A look, as Kafka's console consumer is: it must work beside a live
     * server, whose lock a writer's open would wait for, and never cut a
     * tail that may be the server's write in progress. */
    o.cfg.read_only = 1;
    if (open_topic(prefix, &o, 0, 0, &log, &topic) != 0) return 1;
    uint32_t nparts = log_topic_partitions(topic);
    if (o.has_partition && o.partition >= nparts) {
        log_close(log);
        return cli_fail(prefix, "topic %s has %u partitions; there is no partition %" PRIu64, o.topic,
                        nparts, o.partition);
    }
    static char outbuf[1 << 20];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    weir_buf_t out = WEIR_BUF_INIT;
    char err[512];
    int rc = 0;
    uint64_t printed = 0;
    for (uint32_t p = 0; p < nparts && rc == 0; p++) {
        if (o.has_partition && p != o.partition) continue;
        log_part_t *part = log_topic_part(topic, p);
        log_reader_t *r;
        int orc = o.has_time ? log_reader_open_time(part, o.from_time, &r, err, sizeof err)
                             : log_reader_open(part, o.has_offset ? o.from_offset : 0, &r, err, sizeof err);
        if (orc == WEIR_ERANGE && !o.has_offset) { /* retention moved the start */
            log_part_stat_t st;
            log_part_stat(part, &st);
            orc = log_reader_open(part, st.start_offset, &r, err, sizeof err);
        }
        if (orc != 0) {
            rc = cli_fail(prefix, "%s", err);
            break;
        }
        log_rec_t rec;
        int n = 0;
        while ((!o.has_limit || printed < o.limit) && (n = log_reader_next(r, &rec, err, sizeof err)) == 1) {
            buf_reset(&out);
            format_record(&out, p, &rec);
            if (fwrite(out.data, 1, out.len, stdout) != out.len) {
                n = 0;
                rc = 1; /* stdout closed: stop quietly */
                break;
            }
            printed++;
        }
        if (n < 0 && (!o.has_limit || printed < o.limit)) {
            fflush(stdout);
            rc = cli_fail(prefix, "%s", err);
        }
        log_reader_close(r);
    }
    fflush(stdout);
    buf_free(&out);
    log_close(log);
    return rc;
}

static void check_print(void *ctx, int severity, const char *msg)
{
    (void)ctx;
    fprintf(severity ? stdout : stderr, "%s: %s\n", severity ? "error" : "note", msg);
}

static int log_check_cmd(int argc, char **argv)
{
    const char *prefix = "weir log check";
    if (cli_wants_help(argc, argv)) return fputs(check_usage, stdout), 0;
    log_opts_t o;
    if (parse_opts(prefix, argc, argv, "", &o)) return 1;
    log_check_totals_t t;
    int errors = log_check(o.dir, check_print, NULL, &t);
    if (errors < 0) return cli_fail(prefix, "cannot read the log in %s", o.dir);
    printf("checked %" PRIu64 " segments, %" PRIu64 " batches, %" PRIu64 " records, %" PRIu64 " bytes: %s\n",
           t.segments, t.batches, t.records, t.bytes, errors ? "DAMAGED" : "ok");
    if (errors) return cli_fail(prefix, "%d error(s) found", errors);
    return 0;
}

static void print_ts(int64_t ts)
{
    if (ts == INT64_MIN) printf(" %15s", "-");
    else printf(" %15" PRId64, ts);
}

static int log_stat_cmd(int argc, char **argv)
{
    const char *prefix = "weir log stat";
    if (cli_wants_help(argc, argv)) return fputs(stat_usage, stdout), 0;
    log_opts_t o;
    if (parse_opts(prefix, argc, argv, "", &o)) return 1;
    char err[512];
    char **names;
    size_t n;
    if (log_topic_list(o.dir, &names, &n, err, sizeof err) != 0) return cli_fail(prefix, "%s", err);
    log_t *log;
    int rc = 0;
    o.cfg.read_only = 1; /* a look, not a repair: nothing on disk changes */
    if (log_open(o.dir, &o.cfg, &log, err, sizeof err) != 0) {
        rc = cli_fail(prefix, "%s", err);
        n = 0;
        log = NULL;
    }
    if (n) printf("%-16s %5s %8s %12s %12s %14s %15s %15s\n", "topic", "part", "segments", "first_offset",
                  "last_offset", "bytes", "first_ts", "last_ts");
    for (size_t i = 0; i < n && rc == 0; i++) {
        o.topic = names[i];
        log_topic_t *topic;
        if (log_topic_open(log, names[i], 0, &topic, err, sizeof err) != 0) {
            rc = cli_fail(prefix, "%s", err);
            break;
        }
        pipeline_log_recovery(prefix, topic);
        for (uint32_t p = 0; p < log_topic_partitions(topic); p++) {
            log_part_stat_t st;
            log_part_stat(log_topic_part(topic, p), &st);
            printf("%-16s %5u %8u %12" PRIu64, names[i], p, st.segments, st.start_offset);
            if (st.next_offset > st.start_offset) printf(" %12" PRIu64, st.next_offset - 1);
            else printf(" %12s", "-");
            printf(" %14" PRIu64, st.bytes);
            print_ts(st.first_ts);
            print_ts(st.max_ts);
            printf("\n");
        }
    }
    for (size_t i = 0; i < n; i++) weir_free(names[i]);
    weir_free(names);
    log_close(log);
    return rc;
}

int cmd_log(int argc, char **argv)
{
    static const cli_verb_t sub[] = {
        {"append", log_append_cmd, "append NDJSON events from stdin to a topic"},
        {"read", log_read_cmd, "print records as NDJSON, from an offset or a time"},
        {"check", log_check_cmd, "verify every batch and index, read-only"},
        {"stat", log_stat_cmd, "segments, offsets, bytes and timestamps per partition"},
    };
    return cli_dispatch("weir log", sub, 4, argc - 1, argv + 1);
}
