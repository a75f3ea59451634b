/* pipeline.c — see pipeline.h. */
#include "decide/pipeline.h"


#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "spec/decode.h"
#include "spec/value.h"

int pipeline_open(pipeline_t *pl, const char *spec_path, const char *datadir, const char *source,
                  int create, char *err, size_t errlen)
{
    memset(pl, 0, sizeof *pl);
    int rc = spec_load(spec_path, &pl->spec, err, errlen);
    if (rc) return rc;
    pl->src = &pl->spec->sources[0];
    if (source && strcmp(source, pl->src->name) != 0) {
        rc = weir_errf(err, errlen, WEIR_ENOENT, "%s has no source '%s' (its source is '%s')",
                       spec_path, source, pl->src->name);
        goto fail;
    }
    if ((rc = engine_new(pl->spec, &pl->engine, err, errlen)) != 0) goto fail;
    log_config_t cfg;
    log_config_defaults(&cfg);
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
    if ((rc = log_topic_open(pl->log, pl->src->name, pl->spec->partitions, &pl->topic, err, errlen)) != 0)
        goto fail;
    pl->nparts = log_topic_partitions(pl->topic);
    pl->parts = weir_calloc(pl->nparts, sizeof *pl->parts);
    for (uint32_t i = 0; i < pl->nparts; i++) pl->parts[i] = engine_part_new(pl->engine, i, NULL);
    return 0;
fail:
    pipeline_close(pl);
    return rc;
}

void pipeline_close(pipeline_t *pl)
{
    for (uint32_t i = 0; pl->parts && i < pl->nparts; i++) engine_part_free(pl->parts[i]);
    weir_free(pl->parts);
    log_close(pl->log);
    engine_free(pl->engine);
    if (pl->spec) spec_free(pl->spec);
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
            a->direct = !pl->need_json && rec.type != LOG_REC_TICK &&
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
        int k;
        if (a->direct) {
            k = engine_part_event_hashed(ep, a->rec.offset, a->fields, a->hash, a->rec.value, &res,
                                         why, sizeof why);
            if (k == 0) k = 1;
        } else {
            k = engine_part_record(ep, a->rec.offset, a->rec.type == LOG_REC_TICK, a->rec.value, &res,
                                   why, sizeof why);
        }
        if (k < 0) {
            if (bad_count) (*bad_count)++;
            if (bad) {
                char msg[600];
                snprintf(msg, sizeof msg, "partition %u %s", part, why);
                bad(ctx, msg);
            }
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
