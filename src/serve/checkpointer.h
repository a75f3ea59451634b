/* checkpointer.h — periodic checkpoints of a running server's state, and
 * the choice of the checkpoint to recover from (DESIGN.md "Guarantees":
 * exactly-once state; issue: checkpoints must not stop the world).
 *
 * HOW A CHECKPOINT IS TAKEN: a snapshot of each running partition, in the
 * server's own process (copy-on-write by the application, per key).
 *   1. freeze: the runtime takes every partition's lock (so no partition is
 *      half-way through an event), writes the buffered decisions under
 *      exactly_once, and reports each partition's event-log offset (the
 *      first offset NOT reflected in its state) and decision-log position.
 *   2. each partition starts a snapshot (stream/engine_state.h): its
 *      counters and watermark are encoded, and the moment is marked.
 *   3. thaw: the locks are released and the partitions go on serving. The
 *      pause is steps 1-3, which touch no key: tens of microseconds per
 *      partition (weir_checkpoint_pause_seconds).
 *   4. a writer thread at SCHED_IDLE encodes the partitions' keys, up to 32
 *      keys per hold of a partition's lock and fewer when a request waits
 *      for it (it lets go after the key it is on), a slice of each
 *      partition in turn, and streams them into the checkpoint store (src/log/checkpoint.h:
 *      per-partition files with CRCs, manifest last, fsync, atomic rename).
 *      Meanwhile a request, expiry or close about to change a key the
 *      writer has not reached encodes that key first, as it was at the
 *      moment (stream/keymap.h, SNAPSHOTS): the checkpoint is the state of
 *      step 1 whatever the requests do.
 *   5. the checkpoint is committed and pruned to the newest CKPTR_KEEP
 *      (the one just committed counts as verified: it is not read back).
 * Why this rather than fork() (what weir did before, as Redis does): a
 * fork stops every partition for the copy of the page tables (2 ms at a
 * million keys in huge pages, 20-60 ms in small pages), and then every
 * first write to a page costs the writer a page fault, a 4 KiB copy and
 * the split of its huge page; collapsing the heap back afterwards costs
 * more. Those were most of a request's p99 during a checkpoint. Here the
 * cost per access is one compare of a key's snapshot epoch, and the copy is
 * of the keys that change, once, at their encoded size. The price: keys
 * encoded by requests wait in memory for the writer (at worst the encoded
 * size of the state), and the writer competes with requests for a
 * partition's lock for one slice at a time.
 *
 * FAULT INJECTION (tests): WEIR_CKPT_CRASH_AT=N kills the server with
 * SIGKILL right after store step N, counted across checkpoints.
 * WEIR_CKPT_STEP_DELAY_MS=M makes the writer sleep M ms after each step, so
 * that a test's kill lands inside a checkpoint. WEIR_THP=0 skips
 * collapsing the heap into huge pages at ready, for comparing its effect.
 *
 * RECOVERY takes the newest checkpoint that verifies (every CRC) AND is
 * usable (the runtime's restore callback checks): same pipeline, partitions and feature plan (engine_fingerprint),
 * each partition's offset within its event log (a power loss may have cut
 * the log below a checkpoint written after it), and decisions covering
 * every event before the offsets (else those events' decisions would
 * never be made). Each checkpoint skipped is said on stderr with its
 * reason; having none usable means replaying the whole log. */
#ifndef WEIR_SERVE_CHECKPOINTER_H
#define WEIR_SERVE_CHECKPOINTER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "log/checkpoint.h"
#include "stream/engine.h"

#define CKPTR_KEEP 2 /* checkpoints kept: the newest, and one to fall back to */

/* What the checkpointer needs from the server. freeze fills log_off,
 * dec_off and decided (one per partition: the input offset of the last
 * event decided, -1 if none — stored as the part's "decided" pair, since
 * ticks in the event log have no decision), marks (one per partition: its
 * Kafka marks, kafka_marks.h, stored as its "kafka" pair; left empty: none)
 * and `extra` (text stored with the checkpoint
 * as its "outputs" pair: where the output files ended) and returns with
 * every partition frozen, or returns non-zero (err filled) with nothing
 * frozen. */
typedef struct ckptr_source {
    uint32_t nparts;
    const char *pipeline;
    uint64_t fingerprint; /* engine_fingerprint of the plan */
    /* the text of the spec the plan is of, stored with each checkpoint
     * (its "spec" pair), so that a start under a changed spec can rebuild
     * the plan it was written for and move its state (runtime.c) */
    const char *spec;
    size_t spec_len;
    int (*freeze)(void *ctx, uint64_t *log_off, uint64_t *dec_off, int64_t *decided,
                  weir_buf_t *marks, weir_buf_t *extra, char *err, size_t errlen);
    void (*thaw)(void *ctx);
    engine_part_t *(*part)(void *ctx, uint32_t i);
    /* one partition's lock, which every use of its engine takes */
    void (*lock)(void *ctx, uint32_t i);
    void (*unlock)(void *ctx, uint32_t i);
    /* non-zero while requests wait for that lock: the writer lets go */
    const atomic_uint *(*waiting)(void *ctx, uint32_t i);
    /* makes durable what `extra` describes (the output files up to their
     * recorded ends) before the manifest commits; called by the writer with
     * no partition held. An error fails the checkpoint. NULL: nothing. */
    int (*sync)(void *ctx, char *err, size_t errlen);
    void *ctx;
} ckptr_source_t;

typedef struct ckptr_result {
    uint64_t id;
    uint64_t bytes;     /* state bytes written (all partitions) */
    double pause_s;     /* freeze: how long every partition was held at once */
    double seconds;     /* from freeze to done: committed, older pruned */
    uint64_t *offsets;  /* per partition (owned by the checkpointer, valid until the next one) */
} ckptr_result_t;

typedef struct ckptr_stats {
    uint64_t ok, failed;
    uint64_t last_id, last_bytes;
    double last_seconds, last_pause_s;
} ckptr_stats_t;

typedef struct checkpointer checkpointer_t;

/* Opens DATA/checkpoints read-write (taking its lock). */
int checkpointer_open(const char *datadir, const ckptr_source_t *src, checkpointer_t **out,
                      char *err, size_t errlen);
/* Stops the periodic thread (if started) and closes the store. */
void checkpointer_close(checkpointer_t *c);

/* Takes one checkpoint now (serialized with the periodic one); returns 0
 * with *res filled, or an error. */
int checkpointer_take(checkpointer_t *c, ckptr_result_t *res, char *err, size_t errlen);
/* Called once the server is ready: collapses the heap into huge pages in
 * the background (checkpointer.c, base/hugepages.h), and starts a thread
 * taking a checkpoint every interval_ms (if > 0). */
void checkpointer_start(checkpointer_t *c, int64_t interval_ms);
/* Stops that background work (a collapse in progress is cut short) and
 * waits for it; checkpointer_take still works. For shutdown: its
 * checkpoint need not wait. */
void checkpointer_stop(checkpointer_t *c);
void checkpointer_stats(checkpointer_t *c, ckptr_stats_t *out);
/* Holds checkpoints off (none starts; one running is finished first) while
 * a spec reload swaps the plan they encode, then takes the new plan's
 * fingerprint and spec text (copied) on release. */
void checkpointer_hold(checkpointer_t *c);
void checkpointer_release(checkpointer_t *c, uint64_t fingerprint, const char *spec,
                          size_t spec_len);

/* --- recovery ---- */

/* Restores the server's state from a verified checkpoint: 0 if it could,
 * else non-zero with why filled and the state left as it was before (empty). */
typedef int (*ckptr_restore_cb)(void *ctx, const ckpt_t *ck, char *why, size_t whylen);
/* Restores from the newest checkpoint that verifies and restores, saying
 * on stderr which newer ones were skipped and why. Returns its id, or 0
 * if none could be used; *listed: how many there were. With only != 0,
 * tries checkpoint `only` alone. */
uint64_t checkpointer_recover(checkpointer_t *c, ckptr_restore_cb restore, void *ctx, uint64_t only,
                              size_t *listed);
/* Recovery restored checkpoint `used` while newer ones verify (of another
 * plan, or past what the logs now hold): they describe a history the replay
 * from `used` replaces — the ends of the output files it rewrites among it
 * — so one restored later would cut those files at ends that are no longer
 * theirs (lines doubled and lost). Deletes them, saying so; the ones that
 * fail verification stay for inspection (they are never restored). */
void checkpointer_drop_newer(checkpointer_t *c, uint64_t used);

#endif
