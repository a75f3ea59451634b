/* part.h — a partition of a topic: its segments, append path, group commit,
 * rolling and retention. Internal to src/log (log.h is the public face). */
#ifndef WEIR_LOG_PART_H
#define WEIR_LOG_PART_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "log/log.h"
#include "log/segment.h"

struct log_part {
    /* Set at open, then read-only. */
    uint32_t id;
    char *dir;
    const log_config_t *cfg;

    /* Guarded by mu: the segment list (sorted by base; the last is active),
     * totals, and the failed flag. Readers take mu briefly to look up a
     * segment and its committed size. */
    pthread_mutex_t mu;
    log_segment_t *segs;
    uint32_t nsegs, capsegs;
    uint64_t bytes;
    uint64_t deleted_segments, deleted_bytes; /* by retention since open */
    atomic_int failed; /* a write or fsync failed: further appends are refused (read unlocked:
                          log_part_failed) */

    /* Sequence of completed write()s; bumped under mu after each write. */
    _Atomic uint64_t written_seq;

    /* Group commit. sync_mu guards synced_seq, syncing and sync_fd; sync_fd
     * is also changed only while holding mu, so either lock may read it.
     * synced_seq is atomic as well: the flusher reads it without sync_mu,
     * to skip a partition with nothing to sync (it only grows: a stale
     * value costs a log_part_sync call that finds nothing to do). */
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    _Atomic uint64_t synced_seq;
    int syncing;
    int sync_failed; /* an fdatasync failed (its errno): no later one may acknowledge a write
                        (fsyncgate) */
    int sync_fd;
    _Atomic uint64_t syncs; /* fdatasync calls made, for stats and tests */

    /* What recovery did at open (read-only afterwards). */
    log_recovery_t recovery;
    /* Size of the active segment at its newest recovery point on disk (0:
     * none). Guarded by mu. */
    uint64_t point_size;
    /* Retention keeps every segment holding an offset >= this
     * (log_part_retain_floor; UINT64_MAX: no floor). Guarded by mu. */
    uint64_t retain_floor;
};

/* Opens partition directory dir (creating it if create), running recovery.
 * cfg must outlive the partition. */
int part_open(log_part_t *p, const char *dir, uint32_t id, const log_config_t *cfg, int create,
              char *err, size_t errlen);
void part_close(log_part_t *p);

/* Returns the index of the segment holding offset (the last with base <=
 * offset), or -1 if offset is before the first segment. Caller holds mu. */
int part_find_segment(const log_part_t *p, uint64_t offset);

/* Lists the bases of the .seg files in dir, sorted (caller frees *bases).
 * With cleanup, also removes leftovers of interrupted index writes and
 * indexes whose segment is gone (retention deletes the segment first). */
int part_list_segments(const char *dir, int cleanup, uint64_t **bases, uint32_t *n, char *err,
                       size_t errlen);

/* Reads DATA/log/<topic>/topic.meta (defined in log.c). 0, WEIR_ENOENT,
 * WEIR_EIO or WEIR_ECORRUPT. */
int topic_meta_read(const char *topic_dir, uint32_t *partitions);

#endif
