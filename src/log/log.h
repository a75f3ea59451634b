/* log.h — weir's durable partitioned event log: the source of truth
 * (DESIGN.md, principle 1). Everything weir accepts is appended here before
 * anything depends on it; state, features and decisions are functions of it.
 *
 * LAYOUT
 *   DATA/log/LOCK                           flock'd by the one process that owns the log
 *   DATA/log/<topic>/topic.meta             "partitions N\n", written once, atomically
 *   DATA/log/<topic>/<partition>/<base>.seg record batches, back to back
 *   DATA/log/<topic>/<partition>/<base>.idx sparse offset + time index of a closed segment
 * <base> is the segment's first offset, 20 decimal digits, so names sort.
 *
 * SEGMENT FILE: a sequence of record batches, nothing else. A batch is
 * (all integers little-endian):
 *    0  u64 base offset          offset of its first record
 *    8  u32 length               bytes that follow this field
 *   12  u32 crc                  CRC32C of bytes [16, 12 + length)
 *   16  u8  magic = 1
 *   17  u8  attributes           bit 0: holds a tick record
 *   18  u16 reserved = 0
 *   20  u32 record count         >= 1; offsets are base .. base + count - 1
 *   24  i64 first timestamp      append time of the first record, ms since epoch
 *   32  i64 max timestamp        largest record timestamp in the batch
 *   40  records
 * and a record is:
 *   varint length of the rest | u8 type (0 event, 1 tick) | varint offset delta
 *   (= its index in the batch) | zigzag varint timestamp delta from the first
 *   timestamp | varint key length | key | varint value length | value
 * The CRC leaves out the base offset and length so that a batch can be
 * encoded and checksummed outside the partition lock and given its offset
 * under it (Kafka's reason too). Those two fields are still checked: the
 * base offset must continue the previous batch exactly, and a wrong length
 * lands the CRC on the wrong bytes.
 * A FORMAT TO COME keeps the first 16 bytes as they are (base, length, and
 * the CRC over [16, 12 + length)) and changes the magic: this weir then
 * refuses its batches by name instead of cutting them as a torn tail
 * (batch.h, ANOTHER FORMAT'S BATCH).
 *
 * INDEX FILE: 16-byte entries {u32 offset - base, u32 file position, i64 max
 * timestamp of all records before that position}, one at the first batch and
 * then at the first batch starting at least index_interval bytes after the
 * previous entry. A closed segment's index ends with an END entry whose
 * position is the segment's size and whose offset is its next offset: it
 * gives a closed segment's last offset and newest timestamp without reading
 * it. Then a 16-byte trailer {u32 "WIDX", u32 number of entries, u32 CRC32C
 * of the entries, u32 0}: a wrong entry would send readers to the wrong
 * place, so the index's contents are checked, not only its shape. The
 * active segment's index lives in memory; it is written when the segment is
 * closed by a roll, and as a recovery point before (below). Offset lookup:
 * the last entry at or below the offset. Time lookup: the last entry whose
 * "max before" is below the time.
 *
 * RECOVERY AT OPEN, per partition:
 *   - Closed segments: the index is checked (its CRC; first entry at 0,
 *     increasing, END entry at the file size, batch header at the last entry
 *     carrying the right offset, END offset = next segment's base).
 *     A missing or mismatching index is rebuilt from the segment, which is
 *     then fully verified. Segments must chain with no gap.
 *   - The active (last) segment is read and verified batch by batch, from
 *     its recovery point if it has one (below). At the
 *     first batch that is incomplete or fails its checks, the rest of the
 *     file is searched for any valid batch. If there is none, the bytes from
 *     that batch on are a torn tail (a write cut short by a crash): the file
 *     is truncated there and the number of bytes dropped is reported. If a
 *     valid batch follows, the damage is not a torn tail but corruption, and
 *     opening fails with the file and byte offset: acknowledged data is
 *     never dropped silently.
 *   - Everything the open did not verify batch by batch (a closed segment
 *     opened through its index, batches appended since) is checked by
 *     readers as they read it (CRC of every batch, offset continuity), and
 *     everything by log_check: a bad batch is an error naming the file and
 *     byte offset, never skipped. What the open verified, readers of this
 *     process do not check again (the log is append-only: CHECKED ONCE,
 *     reader.c); they still check every batch's header and offset.
 *
 * RECOVERY POINTS (Kafka's recovery-point-offset-checkpoint, per segment):
 * the active segment's index so far, with an END entry at a size S, written
 * as its .idx file (tmp + rename) once the segment has grown 16 MiB since
 * the last point and at a clean close; the segment is fdatasynced before,
 * so the bytes [0, S) are durable and were written by weir. The open then
 * loads that index (its CRC and shape checked as a closed segment's, but
 * END may lie before the file's end) and scans only from its last entry
 * before S (so the batches up to S are read again: the point must still
 * describe the file). Readers verify the bytes before that as they read
 * them (they were not read at open), so a
 * batch damaged on disk since is still an error naming file and byte
 * offset. A point that does not continue into the file, or damage after
 * it that is not a torn tail, makes the open scan the whole segment and
 * decide as without a point; an index file the open did not use is
 * deleted. A roll replaces the point with the closed segment's index.
 *
 * DURABILITY: LOG_ACK_WRITTEN returns once write() has handed the batch to
 * the OS (survives a process crash); a background thread fdatasyncs every
 * fsync_interval_ms. LOG_ACK_DURABLE returns after fdatasync; appenders
 * waiting at the same time share one fdatasync (group commit). A roll
 * fdatasyncs the closed segment and fsyncs the directory holding the new one.
 *
 * THREADS: different partitions are appended to and read from different
 * threads at once; each partition has its own lock, held only for the
 * write() of an already encoded batch. Any thread may append to any
 * partition; offsets within a partition follow the order of the writes.
 */
#ifndef WEIR_LOG_LOG_H
#define WEIR_LOG_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "log/batch.h"

typedef struct log_config {
    uint64_t segment_bytes;    /* roll before the active segment would pass this (default 128 MiB, at most 1 GiB) */
    int64_t segment_ms;        /* roll when the active segment's first record is older (default 7 days; 0 = never) */
    int64_t retention_ms;      /* delete closed segments whose newest record is older (0 = forever, the default) */
    uint64_t retention_bytes;  /* delete oldest closed segments while a partition holds more (0 = no limit): it then holds at most this, or just its active segment */
    uint32_t index_interval;   /* bytes between index entries (default 4096) */
    int fsync_interval_ms;     /* background fdatasync period for written acks (default 100) */
    int retain_held; /* retention deletes nothing until log_part_retain_floor is called (0) */
    /* A recovery point after this much growth (16 MiB; WEIR_LOG_POINT_BYTES
     * in the environment, read by log_config_defaults, is for tests). */
    uint64_t point_bytes;
    /* Clock for retention and roll age; NULL = wall clock. Tests inject one. */
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    /* READ-ONLY OPEN (`weir log stat`): the log is opened to be looked at,
     * and nothing on disk changes. No lock is taken (it may run beside a
     * writer, as log_check), no folder or segment is created, no thread
     * started, nothing synced or removed; recovery still verifies what it
     * reads, but a torn tail is left for the next writer to cut
     * (log_recovery_t.read_only) and a closed segment's index that does
     * not fit is rebuilt in memory only. Appends are refused. */
    int read_only;
} log_config_t;

/* Fills cfg with the defaults above. */
void log_config_defaults(log_config_t *cfg);

typedef enum log_ack {
    LOG_ACK_WRITTEN = 0,
    LOG_ACK_DURABLE = 1,
} log_ack_t;

typedef struct log log_t;
typedef struct log_topic log_topic_t;
typedef struct log_part log_part_t;

/* Opens (creating if needed) the log of data directory datadir and takes its
 * lock; starts the background fsync thread. cfg is copied. */
int log_open(const char *datadir, const log_config_t *cfg, log_t **out, char *err, size_t errlen);
/* As log_open, with root as the log's folder itself (topics directly
 * under it): for logs other than DATA/log, e.g. the decision log in
 * DATA/decisions. */
int log_open_dir(const char *root, const log_config_t *cfg, log_t **out, char *err, size_t errlen);
/* Syncs every partition, stops the fsync thread, releases everything. */
void log_close(log_t *log);

/* Opens topic `name`, running recovery on each partition. partitions = 0
 * opens an existing topic; otherwise the topic is created with that many
 * partitions, or must already have exactly that many. The topic belongs to
 * log (freed by log_close). */
int log_topic_open(log_t *log, const char *name, uint32_t partitions, log_topic_t **out,
                   char *err, size_t errlen);
/* Names of the topics present on disk (caller frees each and the array). */
int log_topic_list(const char *datadir, char ***names, size_t *count, char *err, size_t errlen);
/* As log_topic_list, of the topics directly under dir (log_open_dir's root). */
int log_topic_list_dir(const char *dir, char ***names, size_t *count, char *err, size_t errlen);
uint32_t log_topic_partitions(const log_topic_t *t);
log_part_t *log_topic_part(log_topic_t *t, uint32_t partition);

/* What recovery did to a partition when it was opened. Opened read-only,
 * it is what recovery found and left for the next writer to do. */
typedef struct log_recovery {
    uint64_t dropped_bytes; /* torn tail truncated, 0 if none */
    uint64_t at;            /* byte offset in file where the tail started */
    const char *file;       /* segment path (owned by the partition), or NULL */
    uint32_t indexes_rebuilt;
    int read_only;    /* log_config_t.read_only: the tail was not cut, no index written */
    uint64_t point;   /* the active segment's recovery point used (bytes not read), 0 if none */
    uint64_t scanned; /* bytes of the active segment read and verified at open */
} log_recovery_t;
void log_part_recovery(const log_part_t *p, log_recovery_t *out);

/* Appends recs[0..n) as one batch. scratch is the caller's reusable encode
 * buffer (one per appending thread). On success *first_offset is the offset
 * of recs[0]; the others follow. Returns 0, or an error (with reason) and
 * nothing appended. */
int log_append(log_part_t *p, const log_rec_t *recs, size_t n, log_ack_t ack, weir_buf_t *scratch,
               uint64_t *first_offset, char *err, size_t errlen);

/* fdatasyncs what has been written to the partition so far. */
int log_part_sync(log_part_t *p, char *err, size_t errlen);

/* Writes a recovery point for the active segment (RECOVERY POINTS above) if
 * it has grown by at least min_growth bytes since the last one: syncs it,
 * then writes its index so far as "<base>.idx". The background thread
 * calls it after every 16 MiB, log_close with 1. 0, or an error (the
 * previous point, if any, stays; nothing else is affected). */
int log_part_save_point(log_part_t *p, uint64_t min_growth);

typedef struct log_part_stat {
    uint32_t segments;
    uint64_t start_offset; /* first offset still stored */
    uint64_t next_offset;  /* offset the next append gets */
    uint64_t bytes;
    uint64_t deleted_segments, deleted_bytes; /* by retention since the log was opened */
    int64_t first_ts, max_ts; /* INT64_MIN when empty */
    uint64_t appends;         /* batches written since open */
    uint64_t syncs;           /* fdatasync calls since open (group commit shares them) */
    int failed; /* a write or fsync failed: appends are refused until the log is opened again */
} log_part_stat_t;
void log_part_stat(log_part_t *p, log_part_stat_t *out);
/* log_part_stat_t.failed without the partition's lock (which a roll holds
 * across an fsync): for a probe that must answer at once. */
int log_part_failed(log_part_t *p);

/* Deletes closed segments past the retention limits (also run after every
 * roll and by the background thread), oldest first, stopping at the first
 * segment that holds an offset at or after the partition's floor. Returns
 * the number deleted. */
int log_part_retain(log_part_t *p);
/* Sets that floor: retention keeps every segment holding `offset` or a later
 * one (a server's recovery needs them: `weir log append` on its data
 * directory). UINT64_MAX, the default, is none. */
void log_part_retain_floor(log_part_t *p, uint64_t offset);

/* Readers. A reader sees records appended before and while it reads, in
 * offset order, and verifies every batch it returns. */
typedef struct log_reader log_reader_t;
/* from_offset below the log start is WEIR_ERANGE (deleted by retention); at
 * or past the end gives a reader that waits at the end. */
int log_reader_open(log_part_t *p, uint64_t from_offset, log_reader_t **out, char *err,
                    size_t errlen);
/* Starts at the first record (in offset order) whose timestamp >= from_ts. */
int log_reader_open_time(log_part_t *p, int64_t from_ts, log_reader_t **out, char *err,
                         size_t errlen);
/* 1 with rec filled (slices valid until the next call), 0 at the end of
 * what is stored now, or a negative error naming the file and byte offset. */
int log_reader_next(log_reader_t *r, log_rec_t *rec, char *err, size_t errlen);
void log_reader_close(log_reader_t *r);

/* Read-only verification of every topic, partition, segment and index under
 * datadir: its event log (DATA/log) and, when it has one, a server's
 * decision log (DATA/decisions), the same format (needs no lock, changes
 * nothing). Each finding is passed to cb:
 * severity 0 = note (a torn tail recovery will truncate, an index recovery
 * will rebuild), 1 = error (corruption: file and byte offset in msg).
 * Returns the number of errors, or a negative code if datadir is unreadable. */
typedef void (*log_check_cb)(void *ctx, int severity, const char *msg);
typedef struct log_check_totals {
    uint64_t segments, batches, records, bytes;
} log_check_totals_t;
int log_check(const char *datadir, log_check_cb cb, void *ctx, log_check_totals_t *totals);

#endif
