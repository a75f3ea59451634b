/* checkpointer.c — checkpoints of the running partitions, and the choice of the one to
 * recover from (see checkpointer.h). */
#include "serve/checkpointer.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/hugepages.h"
#include "base/ticker.h"
#include "stream/engine_state.h"

struct checkpointer {
    ckpt_store_t *store;
    ckptr_source_t src;
    pthread_mutex_t take_lock; /* one checkpoint at a time */
    uint64_t *log_off, *dec_off;
    int64_t *decided;
    weir_buf_t *marks;  /* per partition, its "kafka" pair's text (empty: none) */
    weir_buf_t extra;   /* the frozen image's "outputs" text */
    weir_buf_t spec;    /* the plan's spec text: each checkpoint's "spec" pair */
    uint64_t *done_off; /* offsets of the newest checkpoint committed by this process */
    int have_done;
    weir_ticker_t periodic; /* checkpoint_interval's thread */
    pthread_t settle;       /* the heap's collapse at ready (checkpointer_start) */
    int settle_started;
    atomic_int stopping;    /* checkpointer_stop: cut a collapse short, start none */
    pthread_mutex_t stats_lock;
    ckptr_stats_t st;
};

/* Fault injection (checkpointer.h), from the environment at open. */
static uint64_t crash_at;
static long step_delay_ms;
static void on_step(void *ctx, uint64_t step, const char *kind, const char *path);

/* A spec text over a checkpoint meta value's limit (1 MiB: the loader
 * takes 16) is not stored with the checkpoints — storing it made every
 * checkpoint fail — and a start under a changed spec then cannot move their
 * state: said once per spec. */
static void spec_too_big(const checkpointer_t *c)
{
    if (c->spec.len > CKPT_MAX_META_BYTES)
        fprintf(stderr,
                "weir run: the spec is %zu bytes, over the %u a checkpoint carries: its "
                "checkpoints do not, so a start under a changed spec replays the whole log "
                "instead of moving their state\n",
                c->spec.len, CKPT_MAX_META_BYTES);
}

int checkpointer_open(const char *datadir, const ckptr_source_t *src, checkpointer_t **out,
                      char *err, size_t errlen)
{
    ckpt_store_t *store;
    int rc = ckpt_store_open(datadir, 0, &store, err, errlen);
    if (rc) return rc;
    checkpointer_t *c = weir_calloc(1, sizeof *c);
    c->store = store;
    c->src = *src;
    buf_append(&c->spec, src->spec, src->spec_len);
    c->src.spec = NULL; /* (c->spec holds it) */
    spec_too_big(c);
    c->log_off = weir_calloc(src->nparts, sizeof *c->log_off);
    c->dec_off = weir_calloc(src->nparts, sizeof *c->dec_off);
    c->decided = weir_calloc(src->nparts, sizeof *c->decided);
    c->marks = weir_calloc(src->nparts, sizeof *c->marks);
    c->done_off = weir_calloc(src->nparts, sizeof *c->done_off);
    pthread_mutex_init(&c->take_lock, NULL);
    pthread_mutex_init(&c->stats_lock, NULL);
    /* The store's own WEIR_CKPT_CRASH_AT exits with 137; the hook adds the
     * step delay, and dies by SIGKILL as a killed server would. */
    crash_at = ckpt_store_crash_at(store);
    const char *delay = getenv("WEIR_CKPT_STEP_DELAY_MS");
    step_delay_ms = delay ? strtol(delay, NULL, 10) : 0;
    ckpt_store_set_fault_hook(store, on_step, NULL);
    *out = c;
    return 0;
}

void checkpointer_close(checkpointer_t *c)
{
    if (!c) return;
    checkpointer_stop(c);
    ckpt_store_close(c->store);
    pthread_mutex_destroy(&c->take_lock);
    pthread_mutex_destroy(&c->stats_lock);
    weir_free(c->log_off);
    weir_free(c->dec_off);
    weir_free(c->decided);
    for (uint32_t i = 0; i < c->src.nparts; i++)
        buf_free(&c->marks[i]);
    weir_free(c->marks);
    weir_free(c->done_off);
    buf_free(&c->extra);
    buf_free(&c->spec);
    weir_free(c);
}

void checkpointer_stats(checkpointer_t *c, ckptr_stats_t *out)
{
    pthread_mutex_lock(&c->stats_lock);
    *out = c->st;
    pthread_mutex_unlock(&c->stats_lock);
}

/* ---- writing: snapshots of the running partitions ---- */

/* The store's fault hook (checkpointer.h, FAULT INJECTION). Steps run on
 * the writer thread, never under a partition lock. */
static void on_step(void *ctx, uint64_t step, const char *kind, const char *path)
{
    (void)ctx;
    if (crash_at && step == crash_at) {
        fprintf(stderr, "weir: WEIR_CKPT_CRASH_AT=%" PRIu64 ": the server dies after %s %s\n", step,
                kind, path);
        kill(getpid(), SIGKILL);
    }
    if (step_delay_ms > 0) {
        struct timespec ts = {step_delay_ms / 1000, (step_delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Keys a step encodes per hold of a partition's lock, at most: tens of
 * microseconds at a million keys (a key is a few cold lines). A request
 * that wants the lock meanwhile cuts the step short (src.waiting). */
#define SNAP_SLICE 32

typedef struct write_job {
    checkpointer_t *c;
    engine_snap_t **snaps; /* per partition; NULL once complete */
    uint64_t id, bytes;
    int rc;
    char err[512];
} write_job_t;

/* Writes the checkpoint from the partitions' snapshots, a slice of each
 * partition in turn: a partition's lock is taken again only after every
 * other partition's slice, so a request waiting for it gets it in between
 * (a mutex is not fair: taking it again at once would starve the waiter). */
static void write_snapshots(write_job_t *j)
{
    checkpointer_t *c = j->c;
    uint32_t np = c->src.nparts;
    char fp[17];
    snprintf(fp, sizeof fp, "%016" PRIx64, c->src.fingerprint);
    ckpt_kv_t meta[3] = {{{"fingerprint", 11}, {fp, 16}},
                         {{"outputs", 7}, {c->extra.data ? c->extra.data : "", c->extra.len}},
                         {{"spec", 4}, {c->spec.data ? c->spec.data : "", c->spec.len}}};
    /* (a spec over a meta value's limit is not carried: spec_too_big) */
    ckpt_write_opts_t o = {.pipeline = c->src.pipeline,
                           .partitions = np,
                           .meta = meta,
                           .nmeta = c->spec.len <= CKPT_MAX_META_BYTES ? 3 : 2};
    ckpt_writer_t *w;
    j->rc = ckpt_writer_begin(c->store, &o, &w, j->err, sizeof j->err);
    if (j->rc) return;
    j->id = ckpt_writer_id(w);
    ckpt_part_writer_t **pw = weir_calloc(np, sizeof *pw);
    for (uint32_t i = 0; i < np && j->rc == 0; i++) {
        char dec[24];
        int n = snprintf(dec, sizeof dec, "%" PRId64, c->decided[i]);
        ckpt_kv_t pmeta[2] = {{{"decided", 7}, {dec, (size_t)n}},
                              {{"kafka", 5}, {c->marks[i].data, c->marks[i].len}}};
        ckpt_part_desc_t d = {i, c->log_off[i], c->dec_off[i], pmeta, c->marks[i].len ? 2 : 1};
        j->rc = ckpt_write_part_begin(w, &d, &pw[i], j->err, sizeof j->err);
    }
    weir_buf_t b = WEIR_BUF_INIT;
    for (uint32_t left = np; left && j->rc == 0;) {
        for (uint32_t i = 0; i < np && j->rc == 0; i++) {
            if (!j->snaps[i]) continue;
            c->src.lock(c->src.ctx, i);
            int done = engine_part_snap_step(c->src.part(c->src.ctx, i), j->snaps[i], SNAP_SLICE,
                                             c->src.waiting(c->src.ctx, i), &b);
            if (done) j->snaps[i] = NULL; /* freed by the step */
            c->src.unlock(c->src.ctx, i);
            if (b.len) {
                j->bytes += b.len;
                j->rc = ckpt_write_part_append(pw[i], b.data, b.len, j->err, sizeof j->err);
                buf_reset(&b);
            }
            if (done) {
                left--;
                char perr[sizeof j->err];
                int rc = ckpt_write_part_end(pw[i], perr, sizeof perr);
                pw[i] = NULL;
                if (j->rc == 0 && rc) {
                    j->rc = rc;
                    memcpy(j->err, perr, sizeof perr);
                }
            }
        }
    }
    buf_free(&b);
    char ignore[256];
    for (uint32_t i = 0; i < np; i++)
        if (pw[i]) (void)ckpt_write_part_end(pw[i], ignore, sizeof ignore);
    weir_free(pw);
    if (j->rc == 0 && c->src.sync) j->rc = c->src.sync(c->src.ctx, j->err, sizeof j->err);
    if (j->rc)
        ckpt_writer_abort(w);
    else
        j->rc = ckpt_writer_commit(w, j->err, sizeof j->err);
}

/* The writer thread runs on idle CPU only (SCHED_IDLE; nice 19 where that
 * is refused): a request thread that wakes up preempts it at once. Measured
 * at 2,000 requests/s, a million keys: p99 during a checkpoint 1.3x p99
 * without at SCHED_IDLE, 1.3-2x at nice 19. Preempted while it holds a
 * partition's lock, it gets the CPU back once the request waiting for that
 * lock stops spinning and sleeps (SCHED_IDLE is CFS's lowest weight, not a
 * strict priority: a server busy on every core still gives it a sliver). */
static void *writer_main(void *arg)
{
    struct sched_param sp = {0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0) {
        pid_t tid = (pid_t)syscall(SYS_gettid);
        (void)!setpriority(PRIO_PROCESS, (id_t)tid, 19);
    }
    write_snapshots(arg);
    return NULL;
}

/* ---- taking one ---- */

/* The heap in huge pages: at a million keys, state lookups are TLB misses
 * on 4 KiB pages. State built while recovering is in small pages (a huge
 * page fault costs more than it saves there: checkpointer.h), so the heap
 * is collapsed once the server is ready (base/hugepages.h, paced). */
static void heap_to_huge_pages(checkpointer_t *c)
{
    const char *thp = getenv("WEIR_THP");
    if (thp && strcmp(thp, "0") == 0) return;
    weir_heap_huge_pages(&c->stopping);
}

/* Returns 0 (taken), 1 (skip_unchanged and nothing was logged since the
 * last one: an idle server does not rewrite the same state every
 * interval) or an error. */
static int take_locked(checkpointer_t *c, int skip_unchanged, ckptr_result_t *res, char *err,
                       size_t errlen)
{
    memset(res, 0, sizeof *res);
    uint64_t t0 = weir_mono_ns();
    /* Every partition waits while this thread freezes them: it should not
     * lose the CPU meanwhile to other threads (nice -10 for that moment;
     * without the privilege to raise it, it stays as it is). */
    pid_t tid = (pid_t)syscall(SYS_gettid);
    int nice0 = getpriority(PRIO_PROCESS, (id_t)tid);
    int raised = setpriority(PRIO_PROCESS, (id_t)tid, -10) == 0;
    buf_reset(&c->extra);
    for (uint32_t i = 0; i < c->src.nparts; i++)
        buf_reset(&c->marks[i]);
    int rc = c->src.freeze(c->src.ctx, c->log_off, c->dec_off, c->decided, c->marks, &c->extra, err,
                           errlen);
    if (rc) {
        if (raised) (void)!setpriority(PRIO_PROCESS, (id_t)tid, nice0);
        return rc;
    }
    if (skip_unchanged && c->have_done &&
        memcmp(c->log_off, c->done_off, c->src.nparts * sizeof *c->log_off) == 0) {
        c->src.thaw(c->src.ctx);
        if (raised) (void)!setpriority(PRIO_PROCESS, (id_t)tid, nice0);
        return 1;
    }
    write_job_t j = {.c = c};
    j.snaps = weir_calloc(c->src.nparts, sizeof *j.snaps);
    for (uint32_t i = 0; i < c->src.nparts; i++)
        j.snaps[i] = engine_part_snap_begin(c->src.part(c->src.ctx, i));
    c->src.thaw(c->src.ctx);
    uint64_t t1 = weir_mono_ns();
    if (raised) (void)!setpriority(PRIO_PROCESS, (id_t)tid, nice0);
    pthread_t th;
    if (pthread_create(&th, NULL, writer_main, &j) == 0)
        pthread_join(th, NULL);
    else
        write_snapshots(&j); /* no thread to be had: write at this thread's priority */
    /* A failed checkpoint leaves snapshots running: stop them. */
    for (uint32_t i = 0; i < c->src.nparts; i++)
        if (j.snaps[i]) {
            c->src.lock(c->src.ctx, i);
            engine_part_snap_abort(c->src.part(c->src.ctx, i), j.snaps[i]);
            c->src.unlock(c->src.ctx, i);
        }
    weir_free(j.snaps);
    j.err[sizeof j.err - 1] = '\0';
    if (j.rc) return weir_errf(err, errlen, j.rc, "checkpoint: %s", j.err);
    char perr[512];
    if (ckpt_prune(c->store, CKPTR_KEEP, NULL, perr, sizeof perr) != 0)
        fprintf(stderr, "weir run: checkpoint %" PRIu64 " written; pruning older ones: %s\n", j.id,
                perr);
    uint64_t t2 = weir_mono_ns();
    res->id = j.id;
    res->bytes = j.bytes;
    res->pause_s = (double)(t1 - t0) / 1e9;
    res->seconds = (double)(t2 - t0) / 1e9;
    res->offsets = c->log_off;
    memcpy(c->done_off, c->log_off, c->src.nparts * sizeof *c->log_off);
    c->have_done = 1;
    return 0;
}

static int take(checkpointer_t *c, int skip_unchanged, ckptr_result_t *res, char *err,
                size_t errlen)
{
    pthread_mutex_lock(&c->take_lock);
    int rc = take_locked(c, skip_unchanged, res, err, errlen);
    if (rc == 1) {
        pthread_mutex_unlock(&c->take_lock);
        return 1;
    }
    pthread_mutex_lock(&c->stats_lock);
    if (rc) {
        c->st.failed++;
    } else {
        c->st.ok++;
        c->st.last_id = res->id;
        c->st.last_bytes = res->bytes;
        c->st.last_seconds = res->seconds;
        c->st.last_pause_s = res->pause_s;
    }
    pthread_mutex_unlock(&c->stats_lock);
    pthread_mutex_unlock(&c->take_lock);
    return rc;
}

int checkpointer_take(checkpointer_t *c, ckptr_result_t *res, char *err, size_t errlen)
{
    return take(c, 0, res, err, errlen);
}

void checkpointer_hold(checkpointer_t *c)
{
    pthread_mutex_lock(&c->take_lock);
}

void checkpointer_release(checkpointer_t *c, uint64_t fingerprint, const char *spec,
                          size_t spec_len)
{
    c->src.fingerprint = fingerprint;
    buf_reset(&c->spec);
    buf_append(&c->spec, spec, spec_len);
    spec_too_big(c);
    c->have_done = 0; /* the next periodic checkpoint is not "unchanged" */
    pthread_mutex_unlock(&c->take_lock);
}

static void periodic_tick(void *arg)
{
    checkpointer_t *c = arg;
    ckptr_result_t res;
    char err[1024];
    if (take(c, 1, &res, err, sizeof err) < 0) fprintf(stderr, "weir run: %s\n", err);
}

/* The collapse at ready holds take_lock: a checkpoint asked for meanwhile
 * waits for it (~2.5 s at a million keys, 1.6 GB, on the VM measured)
 * rather than both running at once on the machine's cores. */
static void *settle_main(void *arg)
{
    checkpointer_t *c = arg;
    pthread_mutex_lock(&c->take_lock);
    heap_to_huge_pages(c);
    pthread_mutex_unlock(&c->take_lock);
    return NULL;
}

void checkpointer_start(checkpointer_t *c, int64_t interval_ms)
{
    if (!c->settle_started && pthread_create(&c->settle, NULL, settle_main, c) == 0)
        c->settle_started = 1;
    if (c->periodic.started || interval_ms <= 0) return;
    weir_ticker_start(&c->periodic, interval_ms, periodic_tick, c);
}

void checkpointer_stop(checkpointer_t *c)
{
    atomic_store(&c->stopping, 1);
    if (c->settle_started) pthread_join(c->settle, NULL);
    c->settle_started = 0;
    weir_ticker_stop(&c->periodic);
}

/* ---- recovery ---- */

void checkpointer_drop_newer(checkpointer_t *c, uint64_t used)
{
    ckpt_info_t *list = NULL;
    size_t n = 0;
    char err[1024];
    if (ckpt_list(c->store, CKPT_CHECK_QUICK, &list, &n, err, sizeof err) != 0) return;
    for (size_t i = 0; i < n; i++) {
        if (list[i].id <= used || list[i].status) continue;
        if (ckpt_remove(c->store, list[i].id, err, sizeof err) != 0)
            fprintf(stderr, "weir run: recovery: %s\n", err);
        else
            fprintf(stderr,
                    "weir run: recovery: checkpoint %" PRIu64
                    " deleted: newer than checkpoint %" PRIu64
                    ", it describes a history the replay from there replaces (the output files' "
                    "ends among it)\n",
                    list[i].id, used);
    }
    ckpt_list_free(list, n);
}

uint64_t checkpointer_recover(checkpointer_t *c, ckptr_restore_cb restore, void *ctx, uint64_t only,
                              size_t *listed)
{
    ckpt_info_t *list = NULL;
    size_t n = 0;
    char err[1024];
    *listed = 0;
    if (ckpt_list(c->store, CKPT_CHECK_QUICK, &list, &n, err, sizeof err) != 0) {
        fprintf(stderr, "weir run: recovery: cannot list checkpoints: %s\n", err);
        return 0;
    }
    *listed = n;
    uint64_t used = 0;
    for (size_t i = 0; i < n && !used; i++) {
        const ckpt_info_t *info = &list[i];
        if (only && info->id != only) continue;
        if (info->status) {
            fprintf(stderr, "weir run: recovery: checkpoint %" PRIu64 " skipped: %s\n", info->id,
                    info->problem);
            continue;
        }
        ckpt_t *ck;
        if (ckpt_open(c->store, info->id, &ck, err, sizeof err) != 0) {
            fprintf(stderr, "weir run: recovery: checkpoint %" PRIu64 " skipped: %s\n", info->id,
                    err);
            continue;
        }
        if (restore(ctx, ck, err, sizeof err) != 0)
            fprintf(stderr, "weir run: recovery: checkpoint %" PRIu64 " skipped: %s\n", info->id,
                    err);
        else
            used = info->id;
        ckpt_close(ck);
    }
    ckpt_list_free(list, n);
    return used;
}
