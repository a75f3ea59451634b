/* pipeline.h — what everything that runs a spec shares (ingest, backfill,
 * the server, verify): load the spec, build the engine, open the log topic
 * of the spec's source, make one engine partition per log partition, and
 * replay a partition's log through it. */
#ifndef WEIR_DECIDE_PIPELINE_H
#define WEIR_DECIDE_PIPELINE_H

#include <stdint.h>

#include "log/checkpoint.h"
#include "log/log.h"
#include "spec/spec.h"
#include "stream/engine.h"

typedef struct pipeline {
    spec_t *spec;
    weir_buf_t spec_text; /* the text spec was loaded from (read once: the file may change) */
    const spec_source_t *src;
    engine_t *engine;
    log_t *log;
    log_topic_t *topic;
    uint32_t nparts;
    engine_part_t **parts;
    /* Replay hands rows their event's cJSON tree (engine_result_t.json):
     * set by a caller that reads fields outside the schema (backfill
     * --with). Otherwise replay decodes straight from the text where it can
     * (spec_decode_text), a third of a replayed event's cost. */
    int need_json;
    /* Replay hands each SOURCE record (log/batch.h: where its batch's
     * events came from outside weir) to on_source, if set; nothing else
     * reads them. */
    void (*on_source)(void *ctx, uint32_t part, uint64_t offset, weir_slice_t value);
    void *source_ctx;
} pipeline_t;

/* Opens everything for spec_path over datadir. create: a missing topic is
 * created with the spec's partitions (ingest); otherwise it must exist
 * (backfill). --source NAME must name the spec's source if given. Prints
 * nothing; fills err with the one-line reason. */
int pipeline_open(pipeline_t *pl, const char *spec_path, const char *datadir, const char *source,
                  int create, char *err, size_t errlen);
void pipeline_close(pipeline_t *pl);

/* Whether retention deleted the start of some partition's event log. */
int pipeline_log_start_deleted(pipeline_t *pl);

/* A REPLAY AFTER RETENTION (verify, backfill) starts at a checkpoint: the
 * state of the events retention deleted is only there. This restores into
 * pl's partitions the oldest checkpoint of DATA that verifies and that
 * recovery could take (pipeline_checkpoint_fits; decided may be NULL for a
 * reader that decides nothing): its offsets are all in the log, as
 * pipeline_checkpoint_fits requires. The oldest, so that the replay from
 * it covers the most. 0 with *store and *ck to close, or an error saying
 * why none (*ck NULL). */
int pipeline_restore_oldest(pipeline_t *pl, const char *data, const int64_t *decided,
                            ckpt_store_t **store, ckpt_t **ck, char *err, size_t errlen);

/* Says on stderr, after prefix, what opening topic's partitions found:
 * a torn tail cut (or, opened read-only, left for the next writer) and
 * indexes rebuilt (or found stale). */
void pipeline_log_recovery(const char *prefix, log_topic_t *topic);

/* Called for every event replayed (res filled); return non-zero to stop. */
typedef int (*pipeline_row_cb)(void *ctx, uint32_t part, uint64_t offset, const engine_result_t *res);

/* Replays partition `part` from offset 0 to its end through its engine
 * partition. Records that do not decode are reported through bad (with the
 * reason) and skipped; *bad_count counts them. Without bad (a writer of the
 * pipeline's state and outputs: run, ingest; and verify, which checks it;
 * unless --skip-bad-events), such a record stops the replay with an error
 * naming it. Returns 0 or an
 * error from the log (corruption names file and offset). */
int pipeline_replay(pipeline_t *pl, uint32_t part, pipeline_row_cb row, void *ctx,
                    void (*bad)(void *ctx, const char *why), uint64_t *bad_count, char *err,
                    size_t errlen);

/* As pipeline_replay, from offset `from` (a checkpoint's): the engine
 * partition holds the state of everything before it. */
int pipeline_replay_from(pipeline_t *pl, uint32_t part, uint64_t from, pipeline_row_cb row,
                         void *ctx, void (*bad)(void *ctx, const char *why), uint64_t *bad_count,
                         char *err, size_t errlen);

/* Parses a time argument: epoch milliseconds or RFC 3339. */
int pipeline_parse_time(const char *s, int64_t *out);

/* Whether checkpoint ck can be restored into pl, as recovery decides it:
 * written for this pipeline, partition count and feature plan (its
 * fingerprint), each partition's offset within its log (not past the end:
 * lost in a power failure; not before the start: retention), and every
 * event before that offset decided — decided[p] is the last input offset
 * in partition p's decision log (-1 if none). 0, or why not in why. */
int pipeline_checkpoint_fits(const pipeline_t *pl, const ckpt_t *ck, const int64_t *decided,
                             char *why, size_t whylen);
/* The fingerprint of the plan checkpoint ck was written for: 1, or 0 if
 * it records none. */
int pipeline_checkpoint_fingerprint(const ckpt_t *ck, uint64_t *fp);
/* As pipeline_checkpoint_fits, with `plan` for the feature plan the
 * checkpoint must have been written for (a start that moves a checkpoint
 * of another plan to pl's: runtime.c PLAN CHANGED SINCE THE CHECKPOINT).
 * PIPELINE_OTHER_PLAN when only the plan differs. */
#define PIPELINE_OTHER_PLAN 1
int pipeline_checkpoint_fits_plan(const pipeline_t *pl, const engine_t *plan, const ckpt_t *ck,
                                  const int64_t *decided, char *why, size_t whylen);

#endif
