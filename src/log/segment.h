/* segment.h — one segment of a partition: its .seg file of batches and its
 * sparse index (formats in log.h). Internal to src/log. The partition owns
 * its segments and guards them with its lock. */
#ifndef WEIR_LOG_SEGMENT_H
#define WEIR_LOG_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "log/batch.h"

#define SEG_NAME_DIGITS 20
#define SEG_INDEX_ENTRY 16
#define SEG_INDEX_TRAILER 16       /* u32 magic, u32 entries, u32 CRC32C of the entries, u32 0 */
#define SEG_INDEX_MAGIC 0x58444957u /* "WIDX" */

typedef struct seg_index_entry {
    uint32_t rel;           /* offset - segment base */
    uint32_t pos;           /* byte position of a batch (or the file size, for END) */
    int64_t max_ts_before;  /* max timestamp of records before pos (INT64_MIN if none) */
} seg_index_entry_t;

typedef struct log_segment {
    uint64_t base, next;      /* offsets [base, next) */
    uint64_t size;            /* bytes of whole batches */
    int64_t first_ts, max_ts; /* INT64_MIN when empty */
    seg_index_entry_t *idx;   /* in memory for every segment */
    uint32_t nidx, capidx;    /* closed segments: idx excludes the END entry */
    uint64_t last_idx_pos;
    uint64_t checked;         /* bytes [0, checked) were verified batch by batch at open (CHECKED ONCE, reader.c) */
    char *path;               /* .seg path */
    int fd;                   /* open for the active segment, -1 for closed */
} log_segment_t;

/* "<dir>/<20-digit base><ext>", caller frees. */
char *seg_path(const char *dir, uint64_t base, const char *ext);
/* Parses "<20 digits>.seg"; returns 0 and the base, or -1. */
int seg_parse_name(const char *name, uint64_t *base);

/* Adds an index entry for a batch at pos with offset `offset` if the
 * interval since the previous entry has passed (or it is the first batch). */
void seg_index_note(log_segment_t *s, uint64_t offset, uint64_t pos, uint32_t interval);
/* Accounts a batch appended at the end of s (size, offsets, timestamps, index). */
void seg_account(log_segment_t *s, const batch_info_t *b, uint32_t interval);

/* Result of reading a segment file batch by batch. */
typedef struct seg_scan {
    uint64_t valid_bytes;     /* bytes of the leading run of valid batches */
    uint64_t next_offset;     /* offset after the last valid batch */
    uint64_t file_size;
    batch_status_t problem;   /* BATCH_OK if the whole file is valid batches */
    uint64_t problem_offset;  /* with a problem: the expected base offset there */
    int bad_base;             /* the problem is a base offset that breaks the chain */
    uint64_t found_base;      /* with bad_base: the base offset found */
    uint64_t batches, records;
} seg_scan_t;

/* Reads fd from byte `from` (0, or the end of what s already accounts: a
 * recovery point), verifying each batch and the offset chain, the batch at
 * `from` having base offset next_offset. If s is not NULL, accounts every
 * valid batch into it (rebuilding its index). valid_bytes counts from the
 * file's start. A `from` past the file's end is a problem (BATCH_SHORT)
 * with valid_bytes = from. Returns 0 (the outcome is in out), or WEIR_EIO
 * with reason. */
int seg_scan_file(int fd, uint64_t from, uint64_t next_offset, log_segment_t *s, uint32_t interval,
                  seg_scan_t *out, char *err, size_t errlen);

/* After a problem at byte `from`: is there any valid batch starting after it
 * in fd? (Distinguishes a torn tail from corruption.) 1 yes, 0 no, <0 error. */
int seg_valid_batch_after(int fd, uint64_t from, uint64_t file_size);

/* Loads s->path's index file into s and checks its checksum and its shape
 * against the segment (see RECOVERY in log.h). 0 if usable, else a reason in why. On
 * success fills next, size, max_ts, first_ts of s. A closed segment's END
 * entry must be at the file's size; with `active`, the index is a recovery
 * point and its END may lie before (batches appended since). */
int seg_index_load(log_segment_t *s, int active, char *why, size_t whylen);
/* Writes s's index plus its END entry (at s->size) to the .idx file
 * (atomically: tmp + rename). Called when a segment is closed. */
int seg_index_write(const log_segment_t *s, char *err, size_t errlen);
/* The same contents written to `path`, with no rename (part.c renames a
 * recovery point under the partition's lock). */
int seg_index_write_file(const log_segment_t *s, const char *path, char *err, size_t errlen);
/* s's "<base>.idx" path (caller frees). */
char *seg_index_path(const log_segment_t *s);

void seg_free(log_segment_t *s);

#endif
