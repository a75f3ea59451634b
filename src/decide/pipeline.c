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
    log_rec_t rec;
    engine_result_t res;
    char why[512];
    int n;
    expr_value_t *fields = weir_calloc(pl->src->nfields + 1, sizeof *fields);
    while ((n = log_reader_next(r, &rec, err, errlen)) == 1) {
        int k;
        /* The direct decoder gives exactly what the tree path would, or
         * declines (decode.h); what it declines, the tree path decides. */
        if (!pl->need_json && rec.type != LOG_REC_TICK &&
            spec_decode_text(pl->src, rec.value.ptr, rec.value.len, fields) == 0) {
            k = engine_part_event(pl->parts[part], rec.offset, fields, rec.value, &res, why,
                                  sizeof why);
            if (k == 0) k = 1;
        } else {
            k = engine_part_record(pl->parts[part], rec.offset, rec.type == LOG_REC_TICK, rec.value,
                                   &res, why, sizeof why);
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
        if (k == 1 && row && row(ctx, part, rec.offset, &res) != 0) {
            n = weir_errf(err, errlen, WEIR_EIO, "partition %u offset %" PRIu64 ": writing the row failed",
                          part, rec.offset);
            break;
        }
    }
    log_reader_close(r);
    weir_free(fields);
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
