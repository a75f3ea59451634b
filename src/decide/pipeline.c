/* pipeline.c — see pipeline.h. */
#include "decide/pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/fileio.h"
#include "base/hash.h"
#include "log/checkpoint.h"
#include "stream/engine_state.h"
#include "spec/decode.h"
#include "spec/value.h"

/* ONE PIPELINE A DATA DIRECTORY. A data directory's outputs, decision log
 * and checkpoints are its pipeline's. A writer of another spec there would
 * skip the checkpoints as not its own, replay its own source from the
 * start, and empty every output file of the directory to rebuild it: the
 * other pipeline's files too, for good. So the first writer names the
 * directory's pipeline in DATA/pipeline, and a writer of another pipeline
 * is refused before it touches anything. A directory written before the
 * mark existed is claimed, unless it holds checkpoints and none of them is
 * this pipeline's. Readers (backfill) are not refused: replaying a new
 * spec over a pipeline's log is how its training data is made. */
#define OWNER_NAME "pipeline"

static int owner_refuse(const char *datadir, const char *owner, const char *why,
                        const char *pipeline, char *err, size_t errlen)
{
    return weir_errf(err, errlen, WEIR_EEXIST,
                     "%s is the data directory of pipeline '%.200s' (%s), not of '%.200s' (this "
                     "spec's): its outputs, decisions and checkpoints are that pipeline's; give "
                     "this one its own --data directory (or, to hand the directory over, write "
                     "'%.200s' into %s/" OWNER_NAME
                     ": its output files are then rebuilt from the new spec's log, and the old "
                     "ones lost)",
                     datadir, owner, why, pipeline, pipeline, datadir);
}

/* The name in DATA/pipeline into *name (weir_malloc'd): 1, or 0 if there
 * is no such file, or an error. */
static int owner_read(const char *path, char **name, char *err, size_t errlen)
{
    if (access(path, F_OK) != 0 && errno == ENOENT) return 0;
    weir_buf_t b = WEIR_BUF_INIT;
    int rc = weir_read_file(path, 1u << 20, &b, err, errlen);
    size_t n = b.len;
    while (rc == 0 && n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r'))
        n--;
    if (rc == 0 && (n == 0 || memchr(b.data, '\n', n) || memchr(b.data, '\0', n)))
        rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                       "%s should hold the name of the directory's pipeline, one line", path);
    if (rc == 0) *name = weir_strndup(b.data, n);
    buf_free(&b);
    return rc ? rc : 1;
}

/* The pipeline of checkpoints in datadir, if there are checkpoints and
 * none is `pipeline`'s (weir_malloc'd), else NULL. */
static char *owner_from_checkpoints(const char *datadir, const char *pipeline)
{
    ckpt_store_t *s;
    ckpt_info_t *list;
    size_t n;
    char ignore[256], *other = NULL;
    if (ckpt_store_open(datadir, CKPT_READ_ONLY, &s, ignore, sizeof ignore) != 0) return NULL;
    if (ckpt_list(s, CKPT_CHECK_QUICK, &list, &n, ignore, sizeof ignore) == 0) {
        int mine = 0;
        for (size_t i = 0; i < n; i++) {
            if (!list[i].pipeline || !list[i].pipeline[0]) continue;
            if (!strcmp(list[i].pipeline, pipeline))
                mine = 1;
            else if (!other)
                other = weir_strdup(list[i].pipeline);
        }
        if (mine) {
            weir_free(other);
            other = NULL;
        }
        ckpt_list_free(list, n);
    }
    ckpt_store_close(s);
    return other;
}

/* Writes DATA/pipeline whole or not at all (a new file, synced, renamed in,
 * the rename synced). */
static int owner_write(const char *path, const char *pipeline, char *err, size_t errlen)
{
    weir_outfile_t o;
    int rc = weir_outfile_open(&o, path, err, errlen);
    if (rc) return rc;
    fprintf(o.f, "%s\n", pipeline);
    return weir_outfile_commit(&o, err, errlen);
}

/* Checks that datadir is this pipeline's, claiming it if it is no one's
 * (ONE PIPELINE A DATA DIRECTORY). The file, when there is one, decides:
 * writing a name into it is how a directory is handed over (a renamed
 * pipeline, whose old checkpoints it then skips). Called with the log's
 * lock held, so two writers cannot both claim it. */
static int owner_claim(const char *datadir, const char *pipeline, char *err, size_t errlen)
{
    char path[4096], *owner = NULL;
    snprintf(path, sizeof path, "%s/" OWNER_NAME, datadir);
    int rc = owner_read(path, &owner, err, errlen);
    if (rc == 1) {
        rc = strcmp(owner, pipeline)
                 ? owner_refuse(datadir, owner, "named in its " OWNER_NAME " file", pipeline, err,
                                errlen)
                 : 0;
    } else if (rc == 0 && (owner = owner_from_checkpoints(datadir, pipeline))) {
        rc = owner_refuse(datadir, owner, "its checkpoints say so", pipeline, err, errlen);
    } else if (rc == 0) {
        rc = owner_write(path, pipeline, err, errlen);
    }
    weir_free(owner);
    return rc;
}

int pipeline_open(pipeline_t *pl, const char *spec_path, const char *datadir, const char *source,
                  int create, char *err, size_t errlen)
{
    memset(pl, 0, sizeof *pl);
    int rc = spec_read_file(spec_path, &pl->spec_text, err, errlen);
    if (rc == 0)
        rc = spec_load_string(pl->spec_text.data ? pl->spec_text.data : "", pl->spec_text.len,
                              spec_path, &pl->spec, err, errlen);
    if (rc) {
        buf_free(&pl->spec_text);
        return rc;
    }
    pl->src = &pl->spec->sources[0];
    if (source && strcmp(source, pl->src->name) != 0) {
        rc = weir_errf(err, errlen, WEIR_ENOENT, "%s has no source '%s' (its source is '%s')",
                       spec_path, source, pl->src->name);
        goto fail;
    }
    if ((rc = engine_new(pl->spec, &pl->engine, err, errlen)) != 0) goto fail;
    log_config_t cfg;
    log_config_defaults(&cfg);
    /* A reader (backfill, verify) opens the log read-only: it changes
     * nothing there (a torn tail is left to the writer) and takes no lock,
     * so it may read beside a running server, up to what is written. */
    cfg.read_only = !create;
    if (!create) {
        /* Replaying must not create a log where there is none. */
        char **names;
        size_t n, found = 0;
        if ((rc = log_topic_list(datadir, &names, &n, err, errlen)) != 0) goto fail;
        for (size_t i = 0; i < n; i++) {
            found |= !strcmp(names[i], pl->src->name);
            weir_free(names[i]);
        }
        weir_free(names);
        if (!found) {
            rc = weir_errf(err, errlen, WEIR_ENOENT, "no events of source '%s' in %s", pl->src->name,
                           datadir);
            goto fail;
        }
    }
    if ((rc = log_open(datadir, &cfg, &pl->log, err, errlen)) != 0) goto fail;
    if (create && (rc = owner_claim(datadir, pl->spec->pipeline, err, errlen)) != 0) goto fail;
    if ((rc = log_topic_open(pl->log, pl->src->name, pl->spec->partitions, &pl->topic, err,
                             errlen)) != 0) {
        /* The log's partitioning is fixed by its events (a key's events live
         * in one partition): say whose number differs and what to do. */
        if (rc == WEIR_EEXIST) {
            char why[512];
            snprintf(why, sizeof why, "%s", err);
            rc = weir_errf(err, errlen, rc,
                           "%s: %s in %s: a log's partitions cannot change (its keys' events "
                           "would move); set partitions back, or replay into a new data "
                           "directory",
                           spec_path, why, datadir);
        }
        goto fail;
    }
    if (create) pipeline_log_recovery("weir", pl->topic); /* what the writer's open cut */
    pl->nparts = log_topic_partitions(pl->topic);
    pl->parts = weir_calloc(pl->nparts, sizeof *pl->parts);
    for (uint32_t i = 0; i < pl->nparts; i++) pl->parts[i] = engine_part_new(pl->engine, i, NULL);
    return 0;
fail:
    pipeline_close(pl);
    return rc;
}

void pipeline_log_recovery(const char *prefix, log_topic_t *topic)
{
    for (uint32_t i = 0; i < log_topic_partitions(topic); i++) {
        log_recovery_t rec;
        log_part_recovery(log_topic_part(topic, i), &rec);
        /* Read-only (stat), what recovery found is left for the next
         * writer; a torn tail may also be a live writer's batch in flight. */
        if (rec.dropped_bytes && rec.read_only)
            fprintf(stderr,
                    "%s: %s: torn tail of %" PRIu64 " bytes at byte offset %" PRIu64
                    "; the next writer cuts it (unless it is a write in progress)\n",
                    prefix, rec.file, rec.dropped_bytes, rec.at);
        else if (rec.dropped_bytes)
            fprintf(stderr,
                    "%s: recovery: %s: truncated a torn tail of %" PRIu64
                    " bytes at byte offset %" PRIu64 "\n",
                    prefix, rec.file, rec.dropped_bytes, rec.at);
        if (rec.indexes_rebuilt && rec.read_only)
            fprintf(stderr,
                    "%s: partition %u: %u index file(s) missing or stale; the next writer "
                    "rebuilds them\n",
                    prefix, i, rec.indexes_rebuilt);
        else if (rec.indexes_rebuilt)
            fprintf(stderr, "%s: recovery: partition %u: rebuilt %u index file(s)\n", prefix, i,
                    rec.indexes_rebuilt);
    }
}

void pipeline_close(pipeline_t *pl)
{
    for (uint32_t i = 0; pl->parts && i < pl->nparts; i++) engine_part_free(pl->parts[i]);
    weir_free(pl->parts);
    log_close(pl->log);
    engine_free(pl->engine);
    if (pl->spec) spec_free(pl->spec);
    buf_free(&pl->spec_text);
    memset(pl, 0, sizeof *pl);
}

int pipeline_replay(pipeline_t *pl, uint32_t part, pipeline_row_cb row, void *ctx,
                    void (*bad)(void *ctx, const char *why), uint64_t *bad_count, char *err,
                    size_t errlen)
{
    return pipeline_replay_from(pl, part, 0, row, ctx, bad, bad_count, err, errlen);
}

/* REPLAY LOOKAHEAD. At a million keys nearly every replayed event's key
 * state is cold: its slot, its entry, then the blocks the entry points to,
 * each a wait on memory (about 0.4 us on the VM this was measured on), one
 * after another, event after event. Replay knows what comes next, so it
 * reads LOOKAHEAD records ahead of the one it applies and asks for each
 * one's memory in stages (engine_part_prefetch): its key's slot when it is
 * read, then every STAGE_GAP records the next level of what it points to.
 * The waits of several events then overlap. A record is copied out of the
 * reader (whose slices live until its next call) and decoded once, when
 * read. Measured on a full replay of 10 M events over 1 M keys (2 cores):
 * 15-20% less time than without; 32 ahead did better than 8 and than 64.
 * Once replay stopped computing window answers for events already decided
 * (less work between a record's stages), 48 did better than 32: 3-4% less
 * CPU in eight alternating pairs, 64 no better than 48. The prefetches are
 * hints: what a record's own processing finds is what it would have found
 * without them. */
#define LOOKAHEAD 48
#define STAGE_GAP (LOOKAHEAD / 4) /* records between two stages of one record */

typedef struct ahead {
    log_rec_t rec;        /* value: val's bytes */
    weir_buf_t val;
    expr_value_t *fields; /* decoded, when direct */
    int direct;           /* decoded straight from the text (else the tree path) */
    uint64_t hash;        /* engine_event_hash, when direct */
    engine_hint_t hint;   /* engine_part_prefetch's, from stage 2 to 3 */
} ahead_t;

/* KEYED LOGS. A key's state is built from its partition's events alone, so
 * the log must be partitioned by the spec's key, as every writer that knows
 * the spec does it (hash of the key mod partitions). A log appended
 * round-robin, or by another field (`weir log append --key`, or a spec
 * whose key changed since), would split keys across partitions and give
 * wrong features without a word: replay refuses it at its first misplaced
 * event. (With the hash it already has, a remainder an event.) */
static int misplaced(const pipeline_t *pl, uint32_t part, uint64_t offset, weir_slice_t key,
                     char *err, size_t errlen)
{
    const char *field = pl->src->fields[pl->src->key_slot].name;
    return weir_errf(err, errlen, WEIR_EINVAL,
                     "partition %u offset %" PRIu64 ": the event's key '%.*s' (field '%s', the "
                     "spec's key) belongs in partition %u of %u: the log of source '%s' is not "
                     "partitioned by '%s' (it was appended round-robin, or by another key), so "
                     "a key's events would be split across partitions and its features would be "
                     "wrong; append the events again keyed by '%s' (weir ingest, or weir log "
                     "append --key %s)",
                     part, offset, key.len > 100 ? 100 : (int)key.len, key.ptr, field,
                     (uint32_t)(weir_hash64(key.ptr, key.len) % pl->nparts), pl->nparts,
                     pl->src->name, field, field, field);
}

int pipeline_replay_from(pipeline_t *pl, uint32_t part, uint64_t from, pipeline_row_cb row,
                         void *ctx, void (*bad)(void *ctx, const char *why), uint64_t *bad_count,
                         char *err, size_t errlen)
{
    log_reader_t *r;
    log_part_stat_t end;
    log_part_stat(log_topic_part(pl->topic, part), &end);
    if (from > 0 && from == end.next_offset) return 0; /* a checkpoint at the end: nothing to read */
    int rc = log_reader_open(log_topic_part(pl->topic, part), from, &r, err, errlen);
    if (rc == WEIR_ERANGE && from == 0) {
        /* Retention deleted the start: replay what is stored, and say so. */
        log_part_stat_t st;
        log_part_stat(log_topic_part(pl->topic, part), &st);
        fprintf(stderr,
                "weir: partition %u: the log starts at offset %" PRIu64
                " (retention deleted the rest); state is rebuilt from there\n",
                part, st.start_offset);
        rc = log_reader_open(log_topic_part(pl->topic, part), st.start_offset, &r, err, errlen);
    }
    if (rc) return rc;
    engine_part_t *ep = pl->parts[part];
    ahead_t ring[LOOKAHEAD];
    for (size_t i = 0; i < LOOKAHEAD; i++)
        ring[i] = (ahead_t){.val = WEIR_BUF_INIT,
                            .fields = weir_calloc(pl->src->nfields + 1, sizeof(expr_value_t))};
    size_t head = 0, count = 0;
    engine_result_t res;
    char why[512];
    int n = 1;
    for (;;) {
        /* Read up to LOOKAHEAD records ahead; ask for each one's key slot. */
        while (n == 1 && count < LOOKAHEAD) {
            log_rec_t rec;
            if ((n = log_reader_next(r, &rec, err, errlen)) != 1) break;
            ahead_t *a = &ring[(head + count++) % LOOKAHEAD];
            buf_reset(&a->val);
            buf_append(&a->val, rec.value.ptr, rec.value.len);
            a->rec = rec;
            a->rec.key = (weir_slice_t){NULL, 0}; /* not kept: nothing here reads it */
            a->rec.value = (weir_slice_t){a->val.data, rec.value.len};
            /* The direct decoder gives exactly what the tree path would, or
             * declines (decode.h); what it declines, the tree path decides. */
            a->direct = !pl->need_json && rec.type == LOG_REC_EVENT &&
                        spec_decode_text(pl->src, a->val.data, rec.value.len, a->fields) == 0;
            if (a->direct) {
                a->hash = engine_event_hash(ep, a->fields);
                a->hint = (engine_hint_t){NULL, 0};
                engine_part_prefetch(ep, a->fields, a->hash, 0, &a->hint);
            }
        }
        if (count == 0) break; /* the end, or an error after everything before it */
        for (int st = 1; st <= 3; st++) {
            size_t d = STAGE_GAP * (size_t)(4 - st);
            if (count > d) {
                ahead_t *m = &ring[(head + d) % LOOKAHEAD];
                if (m->direct) engine_part_prefetch(ep, m->fields, m->hash, st, &m->hint);
            }
        }
        const ahead_t *a = &ring[head];
        head = (head + 1) % LOOKAHEAD;
        count--;
        if (a->rec.type == LOG_REC_SOURCE) {
            if (pl->on_source) pl->on_source(pl->source_ctx, part, a->rec.offset, a->rec.value);
            continue;
        }
        int k;
        if (a->direct) {
            if (a->hash % pl->nparts != part) {
                char tmp[32];
                n = misplaced(pl, part, a->rec.offset, engine_event_key(pl->src, a->fields, tmp),
                              err, errlen);
                break;
            }
            k = engine_part_event_hashed(ep, a->rec.offset, a->fields, a->hash, a->rec.value, &res,
                                         why, sizeof why);
            if (k == 0) k = 1;
        } else {
            k = engine_part_record(ep, a->rec.offset, a->rec.type == LOG_REC_TICK, a->rec.value, &res,
                                   why, sizeof why);
            /* (checked once applied: the replay fails, so the state it left is dropped) */
            if (k == 1 && weir_hash64(res.key.ptr, res.key.len) % pl->nparts != part) {
                n = misplaced(pl, part, a->rec.offset, res.key, err, errlen);
                break;
            }
        }
        if (k < 0 && !bad) {
            /* An event logged through the edge was decoded by the spec of
             * its day: one this spec cannot read means the spec changed what
             * the log means (a field's type), and skipping it would drop an
             * acknowledged event from state and outputs for good. (One
             * appended by `weir log append`, which knows no schema, is
             * skipped only when the operator says so: --skip-bad-events.) */
            n = weir_errf(err, errlen, WEIR_EINVAL,
                          "partition %u %s: a logged event this spec cannot read (a field's type "
                          "changed since it was logged? restore it; or the event was appended "
                          "by weir log append, which checks no schema: start with "
                          "--skip-bad-events to leave such events out of state and outputs, "
                          "each named)",
                          part, why);
            break;
        }
        if (k < 0) {
            char msg[600];
            snprintf(msg, sizeof msg, "partition %u %s", part, why);
            if (bad_count) (*bad_count)++;
            bad(ctx, msg);
            continue;
        }
        if (k == 1 && row && row(ctx, part, a->rec.offset, &res) != 0) {
            n = weir_errf(err, errlen, WEIR_EIO, "partition %u offset %" PRIu64 ": writing the row failed",
                          part, a->rec.offset);
            break;
        }
    }
    log_reader_close(r);
    for (size_t i = 0; i < LOOKAHEAD; i++) {
        buf_free(&ring[i].val);
        weir_free(ring[i].fields);
    }
    return n < 0 ? n : 0;
}

int pipeline_checkpoint_fingerprint(const ckpt_t *ck, uint64_t *fp)
{
    const ckpt_info_t *info = ckpt_info(ck);
    weir_slice_t have;
    char hex[17] = {0};
    if (!ckpt_kv_find(info->meta, info->nmeta, "fingerprint", &have) || have.len != 16) return 0;
    memcpy(hex, have.ptr, 16);
    char *end;
    *fp = strtoull(hex, &end, 16);
    return *end == '\0';
}

int pipeline_checkpoint_fits(const pipeline_t *pl, const ckpt_t *ck, const int64_t *decided,
                             char *why, size_t whylen)
{
    int rc = pipeline_checkpoint_fits_plan(pl, pl->engine, ck, decided, why, whylen);
    if (rc == PIPELINE_OTHER_PLAN) rc = WEIR_EINVAL;
    return rc;
}

int pipeline_checkpoint_fits_plan(const pipeline_t *pl, const engine_t *plan, const ckpt_t *ck,
                                  const int64_t *decided, char *why, size_t whylen)
{
    const ckpt_info_t *info = ckpt_info(ck);
    if (info->partitions != pl->nparts)
        return weir_errf(why, whylen, WEIR_EINVAL, "it has %u partitions, the log %u",
                         info->partitions, pl->nparts);
    if (strcmp(info->pipeline, pl->spec->pipeline) != 0)
        return weir_errf(why, whylen, WEIR_EINVAL, "it is of pipeline '%s', not '%s'",
                         info->pipeline, pl->spec->pipeline);
    uint64_t fp;
    int known = pipeline_checkpoint_fingerprint(ck, &fp);
    /* (the plan last: a checkpoint of another plan that fits otherwise can
     * move to this one) */
    int other_plan = !known || !engine_fingerprint_fits(plan, fp);
    for (uint32_t i = 0; i < pl->nparts; i++) {
        const ckpt_part_t *cp = ckpt_part(ck, i);
        log_part_stat_t st;
        log_part_stat(log_topic_part(pl->topic, i), &st);
        if (cp->log_offset > st.next_offset)
            return weir_errf(why, whylen, WEIR_EINVAL,
                             "partition %u: it reflects the event log up to offset %" PRIu64
                             " but the log ends at %" PRIu64 " (lost in a power failure?)",
                             i, cp->log_offset, st.next_offset);
        if (cp->log_offset > 0 && cp->log_offset < st.start_offset)
            return weir_errf(why, whylen, WEIR_EINVAL,
                             "partition %u: its offset %" PRIu64 " is before the log start %" PRIu64
                             " (retention)",
                             i, cp->log_offset, st.start_offset);
        /* Every event before the offset must have its decision in the log:
         * replay starts there and decides only what comes after. (Not for
         * a reader that decides nothing: decided NULL.) */
        if (!decided) continue;
        weir_slice_t dv;
        char num[24] = "";
        if (ckpt_kv_find(cp->meta, cp->nmeta, "decided", &dv) && dv.len < sizeof num)
            memcpy(num, dv.ptr, dv.len);
        char *end;
        long long need = strtoll(num, &end, 10);
        if (!num[0] || *end)
            return weir_errf(why, whylen, WEIR_ECORRUPT, "partition %u: no decided offset", i);
        if (need > decided[i])
            return weir_errf(
                why, whylen, WEIR_EINVAL,
                "partition %u: its events were decided up to offset %lld but the "
                "decision log ends at %" PRId64
                " (decisions lost: events before the checkpoint would never be decided)",
                i, need, decided[i]);
    }
    if (other_plan) {
        weir_errf(why, whylen, WEIR_EINVAL,
                  "it was written for another feature plan (the spec's windows, aggregates, "
                  "patterns, lateness, key or fields changed)");
        return PIPELINE_OTHER_PLAN;
    }
    return 0;
}

int pipeline_parse_time(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end && errno == 0) {
        *out = v;
        return 0;
    }
    return expr_parse_rfc3339(s, strlen(s), out);
}

int pipeline_log_start_deleted(pipeline_t *pl)
{
    for (uint32_t p = 0; p < pl->nparts; p++) {
        log_part_stat_t st;
        log_part_stat(log_topic_part(pl->topic, p), &st);
        if (st.start_offset > 0) return 1;
    }
    return 0;
}

int pipeline_restore_oldest(pipeline_t *pl, const char *data, const int64_t *decided,
                            ckpt_store_t **store, ckpt_t **ck, char *err, size_t errlen)
{
    ckpt_info_t *list = NULL;
    size_t n = 0;
    *ck = NULL;
    int rc = ckpt_store_open(data, CKPT_READ_ONLY, store, err, errlen);
    if (rc == 0) rc = ckpt_list(*store, CKPT_CHECK_QUICK, &list, &n, err, errlen);
    if (rc == 0) rc = weir_errf(err, errlen, WEIR_ENOENT, "no checkpoint");
    int found = 0;
    for (size_t k = n; !found && k-- > 0;) { /* (the list is newest first) */
        char why[512] = "";
        if (list[k].status != 0 || ckpt_open(*store, list[k].id, ck, why, sizeof why) != 0) {
            fprintf(stderr, "weir: checkpoint %" PRIu64 " skipped: %s\n", list[k].id,
                    why[0] ? why : "it does not verify");
            continue;
        }
        if (pipeline_checkpoint_fits(pl, *ck, decided, why, sizeof why) != 0) {
            rc = weir_errf(err, errlen, WEIR_EINVAL, "checkpoint %" PRIu64 ": %s", list[k].id, why);
            ckpt_close(*ck);
            *ck = NULL;
            continue;
        }
        found = 1; /* (a state that does not decode ends the search: it is not skipped) */
        rc = 0;
        for (uint32_t p = 0; rc == 0 && p < pl->nparts; p++) {
            const ckpt_part_t *cp = ckpt_part(*ck, p);
            if ((rc =
                     engine_part_decode(pl->parts[p], cp->blob.ptr, cp->blob.len, why, sizeof why)))
                rc = weir_errf(err, errlen, rc, "partition %u: %s", p, why);
        }
        if (rc) { /* partitions as they were: empty, for a replay from the start */
            for (uint32_t p = 0; p < pl->nparts; p++) {
                engine_part_free(pl->parts[p]);
                pl->parts[p] = engine_part_new(pl->engine, p, NULL);
            }
            ckpt_close(*ck);
            *ck = NULL;
        }
    }
    ckpt_list_free(list, n);
    return rc;
}
