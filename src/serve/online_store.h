/* online_store.h — a spec's `online_store:` (spec.h): every key's features
 * kept in Redis, for readers outside weir (DESIGN.md: "Redis can hold
 * online features"). Only `weir run` writes it.
 *
 * WHAT IS WRITTEN. Key K of the source is the Redis key PREFIX + K, a
 * string, set with the expiry `ttl` (PX; none for 0):
 *     {"key": K, "partition": P, "as_of": T, "features": {...}}
 * the key's features as of T, its newest event time: what GET
 * /v1/features/SOURCE/K answers when the partition's time is T (fields
 * null: a feature reading the event's fields has no event to read). As of
 * the key's own newest event, not of the moment of the write: the value
 * depends on the log alone (principle 2), so a write done again (a retry,
 * a full sync, a replay after a crash) writes the same bytes, and a
 * reader knows how old it is (as_of; windows do not decay in Redis between
 * two events of a key). A key whose state expires in weir (TTL, event
 * time) is deleted; Redis also expires each key by `ttl` (wall clock),
 * which covers the keys a replay evicts (online_store_changed).
 *
 * NOT ON THE DECISION PATH. An event of a key (applied, or late or a
 * duplicate: those read its windows at the watermark, where its value
 * then is) marks the key in its partition's dirty set, under the
 * partition's lock: a hash and an insert; so do the engine's `changed`
 * sink (a pattern match found at the watermark, an expiry). One writer thread takes each
 * partition's set, computes each key's value under the partition's lock
 * (WRITE_SLICE keys a hold) and sends them to Redis pipelined on one
 * connection. A key changed many times between two passes is written
 * once. A request never waits on Redis: a slow or absent Redis makes the
 * sets grow (a key at most once each: bounded by the keys held) and the
 * values in Redis older; weir_online_store_pending says how many keys
 * wait (marked, or being written and not yet acknowledged: 0 means Redis
 * has every change).
 *
 * CONVERGENCE. Once events stop and Redis answers, every key weir holds
 * has its value (above) in Redis:
 *   - a write that fails (connection lost, timeout, an error reply) puts
 *     its keys back in their sets; the writer reconnects with backoff;
 *   - a FULL SYNC marks every key held: at the writer's first connection
 *     (the sets are not checkpointed, and Redis may hold values from before
 *     a crash), whenever Redis's run_id changes (a Redis restarted, empty
 *     or from an older dump), and after a spec reload (the features
 *     changed). It lists a partition's keys in one hold of its lock
 *     (about 100 ns a key);
 *   - one writer and one connection: Redis applies the writes in the order
 *     they were computed, so a key never goes back to an older value.
 * AUTH: with the password in the spec's password_env (and its username),
 * read at start; Redis's refusal is said and counted like any failure.
 * The writer tries once more at shutdown; what it cannot write then, the
 * next start's full sync writes. */
#ifndef WEIR_SERVE_ONLINE_STORE_H
#define WEIR_SERVE_ONLINE_STORE_H

#include <stdint.h>

#include "base/buf.h"
#include "spec/spec.h"

typedef struct runtime runtime_t;
typedef struct online_store online_store_t;

/* For rt's partitions, writing to cfg's Redis (cfg is copied) with expiry
 * ttl_ms (resolved: 0 for none), authenticating with password (from
 * cfg->password_env; NULL: no AUTH). Connects nothing yet. */
online_store_t *online_store_new(runtime_t *rt, const spec_online_store_t *cfg, int64_t ttl_ms,
                                 const char *password);
/* Starts the writer (at ready: recovery's events mark nothing, the first
 * connection's full sync covers them). */
void online_store_start(online_store_t *os);
/* Stops the writer (after one last pass if connected) and frees os. */
void online_store_free(online_store_t *os);

/* Marks key of partition part to be written. Under that partition's lock. */
void online_store_mark(online_store_t *os, uint32_t part, weir_slice_t key);
/* The same, for h = XXH64 of the key (an event's engine_result_t key_hash:
 * the event path hashes a key once). */
void online_store_mark_hashed(online_store_t *os, uint32_t part, uint64_t h, weir_slice_t key);
/* A key whose features changed without an event of its own (the engine's
 * `changed` sink: its state expired, a pattern matched at the watermark):
 * marked, written again (or deleted). Only once the writer runs: the keys
 * a replay evicts (a whole log's history of keys) are not kept for it; the
 * first connection's full sync writes the rest. Under that partition's lock. */
void online_store_changed(online_store_t *os, uint32_t part, weir_slice_t key);
/* Wakes an idle writer if a key was marked since it went idle (WAKING THE
 * WRITER, online_store.c). After the partition's lock is let go. */
void online_store_kick(online_store_t *os);
/* A full sync (a spec reload changed the features): every key marked
 * before it returns. Holding no partition's lock. */
void online_store_resync(online_store_t *os);

/* Whether cfg is what os writes with (a reload may not change it). */
int online_store_same(const online_store_t *os, const spec_online_store_t *cfg);

/* Appends the online store's metrics (Prometheus text). */
void online_store_metrics(online_store_t *os, weir_buf_t *b);

/* weir verify's check: the values the states of parts (a replay of the
 * whole log, as the server would hold them when stopped) give every key
 * (WHAT IS WRITTEN), against what Redis holds. Keys with state are
 * equal, differ or missing (show, if not NULL, is called for each of the
 * latter two, with Redis's value and the expected one); keys under the
 * prefix in Redis with no state here are counted as extra (expired in
 * weir: deleted when the sweep reaches them, or left to Redis's ttl: not
 * a difference). Connects with the spec's address and AUTH. 0, or an
 * error (Redis unreachable, refused). */
typedef struct online_check {
    uint64_t keys, equal, differ, missing, extra;
} online_check_t;
typedef void (*online_check_cb)(void *ctx, weir_slice_t key, const char *what, weir_slice_t have,
                                weir_slice_t want);
typedef struct engine_part engine_part_t;
int online_store_check(const spec_t *spec, engine_part_t *const *parts, uint32_t nparts,
                       online_check_t *out, online_check_cb show, void *ctx, char *err,
                       size_t errlen);

#endif
