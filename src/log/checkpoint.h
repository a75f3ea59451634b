/* checkpoint.h — the checkpoint store: durable, verified, atomically
 * published snapshots of engine state (DESIGN.md "Storage", "Guarantees":
 * exactly-once state). The store knows nothing of what a partition's state
 * means: it keeps, per partition, an opaque blob the engine encodes, the log
 * offset the blob reflects, the decision log's position and a few key/value
 * pairs, and it guarantees that a checkpoint is seen whole or not at all.
 *
 * LAYOUT
 *   DATA/checkpoints/LOCK                 flock'd by the one process that writes checkpoints
 *   DATA/checkpoints/<id>/MANIFEST        written last: lists every file, its size and CRC
 *   DATA/checkpoints/<id>/part-<p>        one file per partition, <p> = 5 decimal digits
 *   DATA/checkpoints/<id>.tmp/            a checkpoint being written (or left by a crash)
 *   DATA/checkpoints/<id>.del/            a checkpoint being pruned (or left by a crash)
 * <id> is 20 decimal digits, so names sort; ids only increase (a new id is
 * one more than the largest on disk), so the newest checkpoint is the one
 * with the largest id, and recovery can never pick a state older than one it
 * could have picked before, except by skipping a newer one that fails.
 *
 * PART FILE (all integers little-endian):
 *    0  u32 magic "WCKP"
 *    4  u16 version = 1
 *    6  u16 reserved = 0
 *    8  u32 partition
 *   12  u32 meta length M       bytes of the key/value section
 *   16  u64 log offset          first offset of the partition's log NOT reflected in the blob:
 *                               recovery replays the log from here
 *   24  u64 decision offset     the decision log's next offset for this partition when the
 *                               state was taken
 *   32  key/value section       entries {u16 key length, key, u32 value length, value}, M bytes
 *   32+M  blob                  B bytes, the caller's encoding of the partition's state
 *   D = 32+M+B: block table     u32 CRC32C of each 64 KiB block of bytes [0, D), the last
 *                               block shorter: ceil(D / 65536) entries
 *   end-16  trailer             u64 B, u32 number of blocks, u32 CRC32C of bytes [D, end-4)
 * Per-block CRCs make a damaged file name the 64 KiB range that is wrong,
 * not only "somewhere in these N megabytes"; the trailer's CRC covers the
 * table, so it stands for the whole file and is the CRC the manifest lists.
 *
 * MANIFEST: text, one field per space, lines ending in "\n", in this order:
 *   weir-checkpoint 1
 *   id <id>
 *   created_ms <ms since epoch>
 *   pipeline <name>                       (escaped, may be empty)
 *   partitions <N>
 *   meta <key> <value>                    zero or more; key [A-Za-z0-9_.-]+, value escaped
 *   part <p> part-<p> <size> <crc> <log offset> <decision offset>    N lines, p = 0..N-1
 *   end <crc>                             CRC32C of every byte before this line
 * CRCs are 8 lowercase hex digits; escaped text writes bytes outside
 * '!'..'~' and '%' as %xx (lowercase), and only those. Numbers have no
 * leading zeros: every manifest has exactly one spelling. The manifest
 * repeats each part's offsets so that listing needs no part file;
 * verification checks the copies agree.
 *
 * WRITE PROTOCOL (ckpt_writer_*):
 *   1. mkdir <id>.tmp
 *   2. per partition: create part-<p>, write it (1 MiB per write), fsync it,
 *      close it (partitions may be written by several threads at once)
 *   3. write MANIFEST, fsync it
 *   4. fsync <id>.tmp (the directory entries of its files)
 *   5. rename <id>.tmp -> <id>        the commit point
 *   6. fsync DATA/checkpoints         the rename survives a power loss
 * Pruning renames <id> -> <id>.del, fsyncs DATA/checkpoints, then unlinks
 * the files and the directory: a checkpoint disappears at once, never file
 * by file.
 *
 * RECOVERY RULE: a checkpoint exists only if its directory has the final
 * name and its manifest and every file it lists verify (sizes, the trailer's
 * and every block's CRC, headers agreeing with the manifest). Anything else
 * is ignored by recovery: a crash before step 5 leaves only a .tmp
 * directory, and a crash after it leaves a complete checkpoint. Opening the
 * store read-write removes leftover .tmp and .del directories.
 * ckpt_open_newest_valid takes the checkpoint with the largest id that
 * verifies; each newer one it skips is reported with the file and byte
 * offset that failed. Having no checkpoint means: replay from the log start.
 *
 * FAULT INJECTION: every write, fsync, rename, unlink, mkdir and rmdir of
 * the write protocol and of pruning is a numbered step (counted from 1 per
 * store handle; the clean-up of a failed or aborted writer and of leftovers
 * at open is not counted). With WEIR_CKPT_CRASH_AT=N in the environment
 * when the store is opened read-write, the process prints the step to
 * stderr and calls _exit(137) right after step N — as if killed there; N
 * counts across checkpoints, so a large N crashes a later one (this is how
 * a system test can crash `weir run` inside a checkpoint). Tests may instead
 * set a hook with ckpt_store_set_fault_hook. tests/unit/log_checkpoint_test.c
 * crashes a forked child after each step in turn and checks that recovery
 * finds exactly the old checkpoint before step 5 and the new one from it on.
 *
 * THREADS: a store handle is used by one thread at a time, except that the
 * parts of an open writer may be written from different threads at once
 * (one thread per part). Readers (read-only handles,
 * `weir checkpoint`) need no lock and may run beside the writer; a
 * checkpoint pruned while being read shows up as failing to verify. */
#ifndef WEIR_LOG_CHECKPOINT_H
#define WEIR_LOG_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define CKPT_DIR_NAME          "checkpoints"
#define CKPT_MANIFEST_NAME     "MANIFEST"
#define CKPT_ID_DIGITS         20
#define CKPT_BLOCK_SIZE        65536u
#define CKPT_PART_HEADER_SIZE  32u
#define CKPT_PART_TRAILER_SIZE 16u
#define CKPT_MAX_PARTITIONS    65536u
#define CKPT_MAX_META_BYTES    (1u << 20) /* a part's key/value section */
#define CKPT_MAX_KEY_LEN       255u
#define CKPT_MAX_MANIFEST      (16u << 20)

/* A key/value pair (both byte slices; keys of a manifest's checkpoint-level
 * pairs must match [A-Za-z0-9_.-]+). */
typedef struct ckpt_kv {
    weir_slice_t key;
    weir_slice_t value;
} ckpt_kv_t;

typedef struct ckpt_store ckpt_store_t;

enum { CKPT_READ_ONLY = 1 };

/* Opens the checkpoint store of data directory datadir. Read-write (flags 0):
 * creates DATA/checkpoints if needed, takes its lock (WEIR_EEXIST if another
 * process holds it), removes leftover .tmp/.del directories and arms
 * WEIR_CKPT_CRASH_AT. CKPT_READ_ONLY: changes nothing, takes no lock;
 * a missing DATA/checkpoints is an empty store. */
int ckpt_store_open(const char *datadir, int flags, ckpt_store_t **out, char *err, size_t errlen);
/* Releases the lock and the handle (an open writer must be finished first). */
void ckpt_store_close(ckpt_store_t *s);
/* Path of DATA/checkpoints (owned by the store). */
const char *ckpt_store_dir(const ckpt_store_t *s);
/* Leftover .tmp/.del directories removed at open. */
uint32_t ckpt_store_removed_leftovers(const ckpt_store_t *s);

/* Fault-injection hook, called right after each step (see FAULT INJECTION)
 * with its number, kind ("write", "fsync", "rename", "unlink", "mkdir",
 * "rmdir") and path. NULL removes the hook. Replaces WEIR_CKPT_CRASH_AT. */
typedef void (*ckpt_fault_cb)(void *ctx, uint64_t step, const char *kind, const char *path);
void ckpt_store_set_fault_hook(ckpt_store_t *s, ckpt_fault_cb cb, void *ctx);
/* WEIR_CKPT_CRASH_AT as read at open (0: off), for a hook of the caller's. */
uint64_t ckpt_store_crash_at(const ckpt_store_t *s);

/* --- writing ------------------------------------------------------------ */

typedef struct ckpt_write_opts {
    uint64_t id;           /* 0 = one more than the largest id on disk; else must exceed it */
    const char *pipeline;  /* the spec's pipeline name (copied) */
    uint32_t partitions;   /* every partition 0..partitions-1 must be written once */
    int64_t created_ms;    /* 0 = wall clock at commit */
    const ckpt_kv_t *meta; /* checkpoint-level pairs for the manifest (copied) */
    size_t nmeta;
} ckpt_write_opts_t;

typedef struct ckpt_part_desc {
    uint32_t partition;
    uint64_t log_offset;      /* first log offset not reflected in the blob */
    uint64_t decision_offset; /* decision log position at the same moment */
    const ckpt_kv_t *meta;    /* small pairs: watermark, counters... (copied) */
    size_t nmeta;
} ckpt_part_desc_t;

typedef struct ckpt_writer ckpt_writer_t;
typedef struct ckpt_part_writer ckpt_part_writer_t;

/* Starts checkpoint opts->id in <id>.tmp (step 1). One writer per store at a
 * time. The writer is finished by ckpt_writer_commit or ckpt_writer_abort. */
int ckpt_writer_begin(ckpt_store_t *s, const ckpt_write_opts_t *opts, ckpt_writer_t **out,
                      char *err, size_t errlen);
/* Id of the checkpoint being written. */
uint64_t ckpt_writer_id(const ckpt_writer_t *w);

/* Streams one partition's blob: begin, append any number of times, end.
 * Memory used is one 1 MiB buffer per open part, whatever the blob's size.
 * end writes the rest, fsyncs and closes the file; the part writer is freed
 * by end whatever it returns. Any failure marks the writer failed: commit
 * will refuse it. */
int ckpt_write_part_begin(ckpt_writer_t *w, const ckpt_part_desc_t *d, ckpt_part_writer_t **out,
                          char *err, size_t errlen);
int ckpt_write_part_append(ckpt_part_writer_t *pw, const void *data, size_t len, char *err,
                           size_t errlen);
int ckpt_write_part_end(ckpt_part_writer_t *pw, char *err, size_t errlen);
/* begin + append + end for a blob already in memory. */
int ckpt_write_part(ckpt_writer_t *w, const ckpt_part_desc_t *d, const void *blob, size_t len,
                    char *err, size_t errlen);

/* Steps 3–6: checks that every partition was written, writes the manifest
 * and publishes the checkpoint atomically. Frees w whatever it returns; on
 * failure the .tmp directory is removed and no checkpoint appears (unless
 * the rename itself succeeded and only the final fsync failed: then the
 * error says so, and the checkpoint is visible but maybe not durable). */
int ckpt_writer_commit(ckpt_writer_t *w, char *err, size_t errlen);
/* Drops the checkpoint being written: removes <id>.tmp, frees w. */
void ckpt_writer_abort(ckpt_writer_t *w);

/* --- listing and verifying ---------------------------------------------- */

typedef struct ckpt_part_info {
    uint32_t partition;
    uint64_t bytes; /* file size */
    uint32_t crc;   /* the file's trailer CRC */
    uint64_t log_offset, decision_offset;
} ckpt_part_info_t;

/* A checkpoint as its manifest describes it, and whether it verifies. */
typedef struct ckpt_info {
    uint64_t id;
    char *dir; /* DATA/checkpoints/<id> */
    int64_t created_ms;
    char *pipeline;
    uint32_t partitions;
    ckpt_part_info_t *parts; /* [partitions], NULL if the manifest did not parse */
    ckpt_kv_t *meta;         /* checkpoint-level pairs (NUL-terminated copies) */
    size_t nmeta;
    uint64_t bytes;    /* manifest + the part files' sizes it lists */
    int status;        /* 0 = verifies; else a negative weir_err_t */
    char problem[512]; /* why not, naming the file and byte offset; "" if it verifies */
} ckpt_info_t;

enum {
    CKPT_CHECK_QUICK = 0, /* manifest CRC, files present with the listed sizes, trailers */
    CKPT_CHECK_FULL = 1,  /* and every block of every file */
};

/* Lists the checkpoints of the store, newest first, each checked at level
 * (CKPT_CHECK_*). A checkpoint that fails is listed with status and problem,
 * not an error of the call. Caller frees with ckpt_list_free. */
int ckpt_list(ckpt_store_t *s, int level, ckpt_info_t **out, size_t *n, char *err, size_t errlen);
void ckpt_list_free(ckpt_info_t *list, size_t n);
/* Checks one checkpoint directory at level; fills *info (free with
 * ckpt_info_free). Returns info->status. */
int ckpt_check(const char *dir, uint64_t id, int level, ckpt_info_t *info);
void ckpt_info_free(ckpt_info_t *info);

/* --- recovery ----------------------------------------------------------- */

/* One partition of an open checkpoint: slices into the mapped file, valid
 * until ckpt_close. */
typedef struct ckpt_part {
    uint32_t partition;
    uint64_t log_offset, decision_offset;
    weir_slice_t blob;
    const ckpt_kv_t *meta; /* slices into the file; keys are not NUL-terminated */
    size_t nmeta;
} ckpt_part_t;

typedef struct ckpt ckpt_t;

/* Opens checkpoint id, verifying everything (CKPT_CHECK_FULL); the part
 * files stay mapped until ckpt_close. WEIR_ENOENT if there is no such
 * checkpoint, WEIR_ECORRUPT (file and offset in err) if it fails. */
int ckpt_open(ckpt_store_t *s, uint64_t id, ckpt_t **out, char *err, size_t errlen);

/* Called for each newer checkpoint skipped because it does not verify. */
typedef void (*ckpt_skip_cb)(void *ctx, uint64_t id, const char *reason);
/* Opens the newest checkpoint that verifies, reporting each newer one it
 * skipped to skip_cb (may be NULL). WEIR_ENOENT when none verifies (err
 * says how many were skipped): recovery then replays from the log start. */
int ckpt_open_newest_valid(ckpt_store_t *s, ckpt_t **out, ckpt_skip_cb skip_cb, void *ctx,
                           char *err, size_t errlen);
/* The manifest's view (id, pipeline, created_ms, offsets, meta). */
const ckpt_info_t *ckpt_info(const ckpt_t *c);
/* Partition p (< ckpt_info(c)->partitions) of an open checkpoint. */
const ckpt_part_t *ckpt_part(const ckpt_t *c, uint32_t p);
/* Finds key in pairs; 1 with *value set, 0 if absent. */
int ckpt_kv_find(const ckpt_kv_t *kv, size_t n, const char *key, weir_slice_t *value);
void ckpt_close(ckpt_t *c);

/* --- pruning ------------------------------------------------------------ */

/* Keeps the `keep` (>= 1) newest checkpoints that verify and deletes every
 * checkpoint older than the oldest of them (valid or not); checkpoints newer
 * than it that fail are left for inspection. Nothing is deleted while fewer
 * than `keep` verify. A checkpoint written or fully verified by this handle
 * is not read again. *deleted (may be NULL) gets the number removed. */
int ckpt_prune(ckpt_store_t *s, uint32_t keep, uint32_t *deleted, char *err, size_t errlen);
/* Deletes checkpoint id (renamed aside and synced first, so that a crash
 * leaves it whole or gone). */
int ckpt_remove(ckpt_store_t *s, uint64_t id, char *err, size_t errlen);

/* --- parsers (exposed for the fuzz target and tools) -------------------- */

/* Parses a manifest held in buf[0..len) into info (id, created_ms,
 * pipeline, partitions, parts, meta), checking its CRC and grammar.
 * name names the file in messages. Free with ckpt_info_free. */
int ckpt_manifest_parse(const char *buf, size_t len, const char *name, ckpt_info_t *info, char *err,
                        size_t errlen);
/* Encodes info's manifest into out (the inverse of ckpt_manifest_parse). */
void ckpt_manifest_encode(const ckpt_info_t *info, weir_buf_t *out);
/* Verifies a whole part file held in file[0..size) (trailer, table and, if
 * full, every block; header and key/value section) and fills *part with
 * slices into it and *meta with a weir_malloc'd array (caller frees).
 * *crc gets the trailer CRC. name names the file in messages. */
int ckpt_part_parse(const void *file, size_t size, int full, const char *name, ckpt_part_t *part,
                    ckpt_kv_t **meta, uint32_t *crc, char *err, size_t errlen);

#endif
