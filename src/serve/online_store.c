/* online_store.c — see online_store.h. */
#include "serve/online_store.h"
#include "serve/runtime_int.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/hash.h"
#include "base/keyset.h"
#include "base/ticker.h"
#include "serve/metrics.h"

#define WRITE_SLICE     128 /* keys computed per hold of a partition's lock (~1 us each) */
#define IDLE_MS          10  /* the writer's tick: between two passes that wrote nothing */
#define BACKOFF_MIN_MS  100 /* after a failure, doubling up to */
#define BACKOFF_MAX_MS  5000
#define CONNECT_TIMEOUT 1000 /* ms */
#define IO_TIMEOUT      2000 /* ms: a reply slower than this is a failure */
#define CHECK_MS         1000 /* an idle writer's look at Redis's run_id (IDLE CHECK) */
#define LAST_PASS_MS     5000 /* how long the pass after the stop may take */
#define TAKEN_KEEP_BYTES (1 << 20) /* a taken set's memory kept for the next round */

struct online_store {
    runtime_t *rt;
    char *redis, *prefix;
    char *username, *password_env, *password; /* AUTH (password NULL: none) */
    int64_t cfg_ttl;          /* as the spec says it (online_store_same) */
    char ttl_text[24];        /* PX's argument; "" for no expiry */
    keyset_t *dirty;          /* per partition, under the partition's lock */
    keyset_t taken;           /* the writer's: a set being written */
    _Atomic uint64_t pending; /* keys marked or taken, not yet acknowledged by Redis */
    weir_ticker_t writer;     /* writer_tick every IDLE_MS, or at once when woken */
    _Atomic int running;      /* the writer is started (online_store_changed) */
    _Atomic int idle;         /* its last pass wrote nothing (WAKING THE WRITER) */
    _Atomic int kick;         /* and a key was marked since: online_store_kick wakes it */
    /* the writer's alone (and, once it is stopped, online_store_free's) */
    redisContext *c;
    char run_id[64];    /* Redis's, at the last connection ("": none yet) */
    int failing;        /* a failure was said, and no success since */
    int64_t backoff_ms; /* after a failure: no new connection before retry_ns */
    uint64_t retry_ns;
    uint64_t checked_ns; /* the connection's last sign of life (IDLE CHECK) */
    uint64_t stop_by;    /* the last pass, at shutdown, gives up then (mono ns; 0: none) */
    weir_buf_t rkey, val;
    /* metrics */
    _Atomic int connected;
    _Atomic uint64_t writes, deletes, failures, syncs;
};

online_store_t *online_store_new(runtime_t *rt, const spec_online_store_t *cfg, int64_t ttl_ms,
                                 const char *password)
{
    online_store_t *os = weir_calloc(1, sizeof *os);
    os->rt = rt;
    os->redis = weir_strdup(cfg->redis);
    os->prefix = weir_strdup(cfg->prefix);
    os->username = cfg->username ? weir_strdup(cfg->username) : NULL;
    os->password_env = cfg->password_env ? weir_strdup(cfg->password_env) : NULL;
    os->password = password ? weir_strdup(password) : NULL;
    os->cfg_ttl = cfg->ttl_ms;
    if (ttl_ms > 0) snprintf(os->ttl_text, sizeof os->ttl_text, "%" PRId64, ttl_ms);
    os->dirty = weir_calloc(rt->nparts, sizeof *os->dirty);
    os->backoff_ms = BACKOFF_MIN_MS;
    return os;
}

static int same_text(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

int online_store_same(const online_store_t *os, const spec_online_store_t *cfg)
{
    return cfg->redis && !strcmp(os->redis, cfg->redis) && !strcmp(os->prefix, cfg->prefix) &&
           os->cfg_ttl == cfg->ttl_ms && same_text(os->username, cfg->username) &&
           same_text(os->password_env, cfg->password_env);
}

/* WAKING THE WRITER. A writer whose last pass wrote nothing waits for its
 * next tick (IDLE_MS); the first key marked meanwhile asks for it to be
 * woken (one wake-up a wait, not one an event), so that a change reaches
 * Redis in about one write, not a tick. The wake-up itself is
 * online_store_kick's, after the request let go of the partition's lock:
 * a writer woken under it would only wait for that lock, and the
 * request's unlock would have to wake it a second time. A key marked just
 * as the writer went idle, or by the sweep or a tick (no request kicks),
 * waits the tick. */
void online_store_mark_hashed(online_store_t *os, uint32_t part, uint64_t h, weir_slice_t key)
{
    if (!keyset_add_hashed(&os->dirty[part], h, key.ptr, key.len)) return;
    atomic_fetch_add_explicit(&os->pending, 1, memory_order_relaxed);
    if (atomic_load_explicit(&os->idle, memory_order_relaxed))
        atomic_store_explicit(&os->kick, 1, memory_order_relaxed);
}

void online_store_mark(online_store_t *os, uint32_t part, weir_slice_t key)
{
    online_store_mark_hashed(os, part, keyset_hash(key.ptr, key.len), key);
}

void online_store_kick(online_store_t *os)
{
    if (atomic_load_explicit(&os->kick, memory_order_relaxed) && atomic_exchange(&os->kick, 0))
        weir_ticker_wake(&os->writer);
}

/* What a failed command says: the connection's error (no reply), Redis's
 * error reply, or that the reply was not of the kind asked for. */
static const char *reply_why(const redisContext *c, const redisReply *r)
{
    if (!r) return c->errstr[0] ? c->errstr : "no reply";
    return r->type == REDIS_REPLY_ERROR ? r->str : "an unexpected reply";
}

/* Says a failure once an outage (the metrics count every one). */
static void failed(online_store_t *os, const char *what, const char *why)
{
    atomic_fetch_add(&os->failures, 1);
    if (!os->failing)
        fprintf(stderr,
                "weir run: online store: redis %s: %s %s; retrying (requests do not wait; the "
                "keys to write wait, weir_online_store_pending)\n",
                os->redis, what, why);
    os->failing = 1;
}

static void disconnect(online_store_t *os)
{
    if (os->c) redisFree(os->c);
    os->c = NULL;
    atomic_store(&os->connected, 0);
}

static void mark_cb(void *ctx, weir_slice_t key)
{
    void **a = ctx;
    online_store_mark(a[0], (uint32_t)(uintptr_t)a[1], key);
}

/* FULL SYNC (online_store.h): every key held, marked. */
void online_store_resync(online_store_t *os)
{
    runtime_t *rt = os->rt;
    for (uint32_t i = 0; i < rt->nparts; i++) {
        rt_part_t *p = &rt->parts[i];
        void *a[2] = {os, (void *)(uintptr_t)i};
        pthread_mutex_lock(&p->lock);
        engine_part_each_key(p->engine, mark_cb, a);
        pthread_mutex_unlock(&p->lock);
    }
    atomic_fetch_add(&os->syncs, 1);
}

void online_store_changed(online_store_t *os, uint32_t part, weir_slice_t key)
{
    if (atomic_load_explicit(&os->running, memory_order_relaxed)) online_store_mark(os, part, key);
}

/* Redis's run_id from INFO server into id; 0, or -1 with why. */
static int run_id_of(redisContext *c, char *id, size_t idlen, char *why, size_t whylen)
{
    redisReply *r = redisCommand(c, "INFO server");
    int rc = -1;
    snprintf(why, whylen, "%s", !r ? c->errstr : "no run_id in its answer");
    if (r && r->type == REDIS_REPLY_ERROR) snprintf(why, whylen, "%s", r->str); /* NOAUTH, ... */
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *at = strstr(r->str, "run_id:");
        if (at) {
            at += 7;
            size_t n = strcspn(at, "\r\n");
            if (n > 0 && n < idlen) {
                memcpy(id, at, n);
                id[n] = '\0';
                rc = 0;
            }
        }
    }
    if (r) freeReplyObject(r);
    return rc;
}

/* A connection to addr (HOST:PORT, [V6]:PORT or /socket), with the
 * reply timeout and keep-alive set and AUTH done if password; NULL with
 * what failed ("connecting:", "AUTH ...") and why. */
static redisContext *open_redis(const char *addr, const char *username, const char *password,
                                const char *password_env, char *what, size_t whatlen, char *why,
                                size_t whylen)
{
    struct timeval ct = {CONNECT_TIMEOUT / 1000, (CONNECT_TIMEOUT % 1000) * 1000};
    struct timeval io = {IO_TIMEOUT / 1000, (IO_TIMEOUT % 1000) * 1000};
    redisContext *c;
    if (addr[0] == '/') {
        c = redisConnectUnixWithTimeout(addr, ct);
    } else {
        const char *colon = strrchr(addr, ':'), *h = addr; /* (the spec checked the form) */
        int hlen = (int)(colon - addr);
        if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') { /* [::1]:6379 */
            h++;
            hlen -= 2;
        }
        char host[256];
        snprintf(host, sizeof host, "%.*s", hlen, h);
        c = redisConnectWithTimeout(host, atoi(colon + 1), ct);
    }
    if (!c || c->err) {
        snprintf(what, whatlen, "connecting:");
        snprintf(why, whylen, "%s", c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, io);
    redisEnableKeepAlive(c);
    if (password) {
        redisReply *r = username ? redisCommand(c, "AUTH %s %s", username, password)
                                 : redisCommand(c, "AUTH %s", password);
        int ok = r && r->type == REDIS_REPLY_STATUS;
        snprintf(why, whylen, "%s", reply_why(c, r));
        if (r) freeReplyObject(r);
        if (!ok) {
            snprintf(what, whatlen, "AUTH with the password in $%s refused:", password_env);
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* A Redis of another run_id than the last one seen (or weir's first
 * connection since its start): what it holds is not known to be current,
 * so every key is written (a full sync). Returns whether it was. */
static int new_run_id(online_store_t *os, const char *id)
{
    if (!strcmp(id, os->run_id)) return 0;
    snprintf(os->run_id, sizeof os->run_id, "%s", id);
    online_store_resync(os);
    return 1;
}

static int connect_redis(online_store_t *os)
{
    char what[160], whyc[256];
    redisContext *c = open_redis(os->redis, os->username, os->password, os->password_env, what,
                                 sizeof what, whyc, sizeof whyc);
    if (!c) {
        failed(os, what, whyc);
        return -1;
    }
    char id[sizeof os->run_id], why[256];
    if (run_id_of(c, id, sizeof id, why, sizeof why) != 0) {
        failed(os, "INFO server:", why);
        redisFree(c);
        return -1;
    }
    os->c = c;
    atomic_store(&os->connected, 1);
    int sync = new_run_id(os, id);
    fprintf(stderr, "weir run: online store: connected to redis %s%s\n", os->redis,
            sync ? " (a full sync: every key is written)" : "");
    os->failing = 0;
    return 0;
}

/* Puts the taken keys from `at` on back in partition p's set (each
 * leaves the pending count as taken, and comes back to it as marked,
 * unless it was marked again meanwhile). */
static void give_back(online_store_t *os, rt_part_t *p, size_t at)
{
    weir_slice_t k;
    uint64_t n = 0;
    pthread_mutex_lock(&p->lock);
    while (keyset_next(&os->taken, &at, &k)) {
        online_store_mark(os, p->id, k);
        n++;
    }
    pthread_mutex_unlock(&p->lock);
    atomic_fetch_sub_explicit(&os->pending, n, memory_order_relaxed);
}

/* WHAT IS WRITTEN (online_store.h): key's value, as spec's features of
 * engine partition ep (number part), into b (reset first); returns
 * whether the key has state. Under the partition's lock. */
static int format_value(const spec_t *spec, engine_part_t *ep, uint32_t part, weir_slice_t key,
                        weir_buf_t *b)
{
    engine_result_t res;
    int found = engine_part_lookup_newest(ep, key, &res);
    buf_reset(b);
    buf_append_str(b, "{\"key\":");
    outputs_json_key(b, &spec->sources[0], key);
    buf_appendf(b, ",\"partition\":%u,\"as_of\":%" PRId64 ",\"features\":", part, res.time);
    runtime_features_json(spec, res.features, b);
    buf_append(b, "}", 1);
    return found;
}

/* Reads n replies; 0 if every one is what a SET or DEL answers. */
static int read_replies(online_store_t *os, size_t n, size_t *sets, size_t *dels)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *r;
        if (redisGetReply(os->c, (void **)&r) != REDIS_OK) {
            failed(os, "writing:", os->c->errstr);
            return -1;
        }
        if (r->type == REDIS_REPLY_STATUS)
            (*sets)++;
        else if (r->type == REDIS_REPLY_INTEGER)
            (*dels)++;
        else if (rc == 0) {
            failed(os, "refused a write:", reply_why(os->c, r));
            rc = -1; /* (the other replies are still read: the connection stays in step) */
        }
        freeReplyObject(r);
    }
    return rc;
}

/* Writes partition p's marked keys; 0, or -1 (the rest given back). */
static int write_part(online_store_t *os, rt_part_t *p)
{
    pthread_mutex_lock(&p->lock);
    keyset_swap(&os->dirty[p->id], &os->taken);
    pthread_mutex_unlock(&p->lock);
    /* (a taken key stays pending until Redis acknowledged its write) */
    if (keyset_count(&os->taken) == 0) return 0;
    size_t at = 0, plen = strlen(os->prefix);
    int rc = 0;
    weir_slice_t k;
    while (rc == 0 && at < os->taken.arena.len) {
        size_t from = at, sent = 0, sets = 0, dels = 0;
        if (os->stop_by && weir_mono_ns() > os->stop_by) {
            give_back(os, p, from); /* (the next start's full sync writes them) */
            rc = -1;
            break;
        }
        pthread_mutex_lock(&p->lock);
        /* A request waiting for the lock gets it after the key at hand. */
        while (sent < WRITE_SLICE &&
               (sent == 0 || !atomic_load_explicit(&p->waiting, memory_order_relaxed)) &&
               keyset_next(&os->taken, &at, &k)) {
            buf_reset(&os->rkey);
            buf_append(&os->rkey, os->prefix, plen);
            buf_append(&os->rkey, k.ptr, k.len);
            int found = format_value(os->rt->pl.spec, p->engine, p->id, k, &os->val);
            const char *argv[5] = {found ? "SET" : "DEL", os->rkey.data, os->val.data, "PX",
                                   os->ttl_text};
            size_t lens[5] = {3, os->rkey.len, os->val.len, 2, strlen(os->ttl_text)};
            int argc = !found ? 2 : os->ttl_text[0] ? 5 : 3;
            if (redisAppendCommandArgv(os->c, argc, argv, lens) != REDIS_OK) {
                rc = -1;
                break;
            }
            sent++;
        }
        pthread_mutex_unlock(&p->lock);
        if (rc == 0)
            rc = read_replies(os, sent, &sets, &dels);
        else
            failed(os, "writing:", "out of memory");
        atomic_fetch_add(&os->writes, sets);
        atomic_fetch_add(&os->deletes, dels);
        if (rc)
            give_back(os, p, from);
        else
            atomic_fetch_sub_explicit(&os->pending, sent, memory_order_relaxed);
    }
    keyset_clear(&os->taken);
    /* A full sync's set is as big as the partition's keys: its memory goes
     * back rather than stay at that peak in every later round. */
    if (keyset_bytes(&os->taken) > TAKEN_KEEP_BYTES) keyset_free(&os->taken);
    return rc;
}

/* After a failure: the connection dropped, the next one not before the
 * backoff, which doubles up to BACKOFF_MAX_MS until a pass succeeds. */
static void back_off(online_store_t *os)
{
    disconnect(os);
    os->retry_ns = weir_mono_ns() + (uint64_t)os->backoff_ms * 1000000;
    os->backoff_ms = os->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : os->backoff_ms * 2;
}

/* One pass over every partition's marked keys; 0, or -1 (a failure). */
static int write_all(online_store_t *os)
{
    int rc = 0;
    for (uint32_t i = 0; i < os->rt->nparts && rc == 0; i++)
        rc = write_part(os, &os->rt->parts[i]);
    return rc;
}

/* IDLE CHECK. With nothing to write, the socket is not used: a Redis
 * restarted meanwhile (empty) would go unnoticed until the next change.
 * So an idle writer asks for the run_id every CHECK_MS. */
static void idle_check(online_store_t *os)
{
    if (weir_mono_ns() - os->checked_ns < (uint64_t)CHECK_MS * 1000000) return;
    os->checked_ns = weir_mono_ns();
    char id[sizeof os->run_id], why[256];
    if (run_id_of(os->c, id, sizeof id, why, sizeof why) != 0) {
        failed(os, "checking:", why);
        back_off(os);
    } else if (new_run_id(os, id)) {
        fprintf(stderr, "weir run: online store: redis %s restarted (a new run_id): a full sync\n",
                os->redis);
        weir_ticker_wake(&os->writer);
    }
}

/* The writer's tick: connects if it must (and may), writes what is marked,
 * and asks for the next pass at once while there is work. */
static void writer_tick(void *arg)
{
    online_store_t *os = arg;
    atomic_store(&os->idle, 0);
    if (!os->c) {
        if (weir_mono_ns() < os->retry_ns) return;
        if (connect_redis(os) != 0) {
            back_off(os);
            return;
        }
        os->checked_ns = weir_mono_ns();
    }
    uint64_t before = atomic_load(&os->writes) + atomic_load(&os->deletes);
    if (write_all(os) != 0) {
        back_off(os);
        return;
    }
    os->backoff_ms = BACKOFF_MIN_MS;
    if (atomic_load(&os->writes) + atomic_load(&os->deletes) != before) {
        os->checked_ns = weir_mono_ns(); /* (the connection just answered) */
        weir_ticker_wake(&os->writer);
        return;
    }
    idle_check(os);
    atomic_store(&os->kick, 0); /* (one left by a mark no request kicked) */
    atomic_store(&os->idle, 1);
}

void online_store_start(online_store_t *os)
{
    weir_ticker_start(&os->writer, IDLE_MS, writer_tick, os);
    atomic_store(&os->running, 1);
}

void online_store_free(online_store_t *os)
{
    if (!os) return;
    weir_ticker_stop(&os->writer);
    /* One last pass, bounded, if connected; the next start's full sync
     * writes what it leaves. */
    os->stop_by = weir_mono_ns() + (uint64_t)LAST_PASS_MS * 1000000;
    if (os->c) write_all(os);
    disconnect(os);
    for (uint32_t i = 0; i < os->rt->nparts; i++)
        keyset_free(&os->dirty[i]);
    weir_free(os->dirty);
    keyset_free(&os->taken);
    buf_free(&os->rkey);
    buf_free(&os->val);
    weir_free(os->redis);
    weir_free(os->prefix);
    weir_free(os->username);
    weir_free(os->password_env);
    if (os->password) explicit_bzero(os->password, strlen(os->password));
    weir_free(os->password);
    weir_free(os);
}

void online_store_metrics(online_store_t *os, weir_buf_t *b)
{
    metrics_header(b, "weir_online_store_connected", "gauge",
                   "1 while the online store's Redis connection is up.");
    metrics_sample_u64(b, "weir_online_store_connected", NULL,
                       (uint64_t)atomic_load(&os->connected));
    metrics_header(b, "weir_online_store_pending", "gauge",
                   "Keys changed and not yet written to the online store (each key once).");
    metrics_sample_u64(b, "weir_online_store_pending", NULL, atomic_load(&os->pending));
    metrics_header(b, "weir_online_store_writes_total", "counter",
                   "Keys written to the online store (SET), and deleted from it (DEL: no state).");
    metrics_sample_u64(b, "weir_online_store_writes_total", "op=\"set\"", atomic_load(&os->writes));
    metrics_sample_u64(b, "weir_online_store_writes_total", "op=\"del\"",
                       atomic_load(&os->deletes));
    metrics_header(b, "weir_online_store_failures_total", "counter",
                   "Failed connections and writes to the online store (their keys are retried).");
    metrics_sample_u64(b, "weir_online_store_failures_total", NULL, atomic_load(&os->failures));
    metrics_header(b, "weir_online_store_full_syncs_total", "counter",
                   "Full syncs: every key written again (a first connection, a new Redis "
                   "run_id, a spec reload).");
    metrics_sample_u64(b, "weir_online_store_full_syncs_total", NULL, atomic_load(&os->syncs));
}

/* ---- weir verify's check (online_store_check) ---- */

#define CHECK_BATCH 256 /* GETs a round trip */

static void collect_key(void *ctx, weir_slice_t key)
{
    keyset_add(ctx, key.ptr, key.len);
}

/* Compares the values of n keys (from *at in ks, partition part) with
 * Redis's, one pipelined round trip; 0, or -1 (why). */
static int check_batch(redisContext *c, const spec_t *spec, engine_part_t *ep, uint32_t part,
                       const keyset_t *ks, size_t *at, online_check_t *out, online_check_cb show,
                       void *ctx, char *why, size_t whylen)
{
    const char *prefix = spec->online.prefix;
    size_t plen = strlen(prefix), from = *at, n = 0;
    weir_buf_t rkey = WEIR_BUF_INIT, val = WEIR_BUF_INIT;
    weir_slice_t k;
    int rc = 0;
    while (n < CHECK_BATCH && keyset_next(ks, at, &k)) {
        buf_reset(&rkey);
        buf_append(&rkey, prefix, plen);
        buf_append(&rkey, k.ptr, k.len);
        const char *argv[2] = {"GET", rkey.data};
        size_t lens[2] = {3, rkey.len};
        if (redisAppendCommandArgv(c, 2, argv, lens) != REDIS_OK) break; /* (out of memory) */
        n++;
    }
    *at = from;
    for (size_t i = 0; i < n; i++) {
        keyset_next(ks, at, &k);
        redisReply *r;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            snprintf(why, whylen, "reading (a reply takes at most %d ms): %s", IO_TIMEOUT,
                     c->errstr);
            rc = -1;
            break;
        }
        int wrongtype = r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "WRONGTYPE", 9);
        if (r->type == REDIS_REPLY_ERROR && !wrongtype) { /* NOPERM, LOADING, MOVED: no answer */
            snprintf(why, whylen, "GET refused: %s", r->str);
            freeReplyObject(r);
            rc = -1;
            while (++i < n && redisGetReply(c, (void **)&r) == REDIS_OK)
                freeReplyObject(r);
            break;
        }
        int found = format_value(spec, ep, part, k, &val);
        weir_slice_t want = {val.data, val.len}, have = {NULL, 0};
        if (r->type == REDIS_REPLY_STRING) have = (weir_slice_t){r->str, r->len};
        if (!found) {
            /* (expired here, not swept when the server stopped: it may or
             * may not be in Redis yet; the SCAN below counts it) */
        } else if (r->type == REDIS_REPLY_NIL) {
            out->keys++;
            out->missing++;
            if (show) show(ctx, k, "missing in Redis", have, want);
        } else if (r->type != REDIS_REPLY_STRING) { /* (WRONGTYPE: a hash, a list, ...) */
            out->keys++;
            out->differ++;
            if (show) show(ctx, k, "differs: Redis holds another type there", have, want);
        } else {
            out->keys++;
            if (have.len == want.len && !memcmp(have.ptr, want.ptr, want.len)) {
                out->equal++;
            } else {
                out->differ++;
                if (show) show(ctx, k, "differs", have, want);
            }
        }
        freeReplyObject(r);
    }
    buf_free(&rkey);
    buf_free(&val);
    return rc;
}

/* Redis's keys under the prefix that no partition holds state for. */
static int check_extra(redisContext *c, const spec_t *spec, engine_part_t *const *parts,
                       uint32_t nparts, online_check_t *out, char *why, size_t whylen)
{
    const char *prefix = spec->online.prefix;
    size_t plen = strlen(prefix);
    weir_buf_t pattern = WEIR_BUF_INIT, val = WEIR_BUF_INIT;
    /* SCAN's MATCH is a glob: the prefix's own *?[]\ are escaped */
    for (const char *p = prefix; *p; p++) {
        if (strchr("*?[]\\", *p)) buf_append(&pattern, "\\", 1);
        buf_append(&pattern, p, 1);
    }
    buf_append(&pattern, "*", 2); /* (and a NUL: redisCommand's %s reads a C string) */
    char cursor[32] = "0";
    int rc = 0;
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern.data);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            snprintf(why, whylen, "SCAN: %s", reply_why(c, r));
            if (r) freeReplyObject(r);
            rc = -1;
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const redisReply *e = r->element[1]->element[i];
            if (e->len < plen) continue;
            weir_slice_t key = {e->str + plen, e->len - plen};
            uint32_t part = (uint32_t)(weir_hash64(key.ptr, key.len) % nparts);
            if (!format_value(spec, parts[part], part, key, &val)) out->extra++;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    buf_free(&pattern);
    buf_free(&val);
    return rc;
}

int online_store_check(const spec_t *spec, engine_part_t *const *parts, uint32_t nparts,
                       online_check_t *out, online_check_cb show, void *ctx, char *err,
                       size_t errlen)
{
    const spec_online_store_t *o = &spec->online;
    memset(out, 0, sizeof *out);
    const char *password = o->password_env ? getenv(o->password_env) : NULL;
    if (o->password_env && !password)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "online_store: password_env names %s, which is not set", o->password_env);
    char what[160], why[256];
    redisContext *c = open_redis(o->redis, o->username, password, o->password_env, what,
                                 sizeof what, why, sizeof why);
    if (!c) return weir_errf(err, errlen, WEIR_EIO, "redis %s: %s %s", o->redis, what, why);
    int rc = 0;
    keyset_t ks = KEYSET_INIT;
    for (uint32_t p = 0; p < nparts && rc == 0; p++) {
        /* The keys are copied first: format_value's lookup may move the
         * table's entries (keymap_get steps a resize), so the walk cannot
         * be interleaved with it. */
        keyset_clear(&ks);
        engine_part_each_key(parts[p], collect_key, &ks);
        size_t at = 0;
        while (rc == 0 && at < ks.arena.len)
            rc = check_batch(c, spec, parts[p], p, &ks, &at, out, show, ctx, why, sizeof why);
    }
    if (rc == 0) rc = check_extra(c, spec, parts, nparts, out, why, sizeof why);
    if (rc) rc = weir_errf(err, errlen, WEIR_EIO, "redis %s: %s", o->redis, why);
    keyset_free(&ks);
    redisFree(c);
    return rc;
}
