/* checkpointer.c — fork-based checkpoints and the choice of the one to
 * recover from (see checkpointer.h). */
#include "serve/checkpointer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/hugepages.h"
#include "base/ticker.h"
#include "stream/engine_state.h"

#include <sched.h>

struct checkpointer {
    ckpt_store_t *store;
    ckptr_source_t src;
    pthread_mutex_t take_lock; /* one checkpoint at a time */
    uint64_t *log_off, *dec_off;
    int64_t *decided;
    weir_buf_t extra;   /* the frozen image's "outputs" text */
    uint64_t *done_off; /* offsets of the newest checkpoint committed by this process */
    int have_done;
    weir_ticker_t periodic; /* checkpoint_interval's thread */
    pthread_t settle;       /* the heap's collapse at ready (checkpointer_start) */
    int settle_started;
    atomic_int stopping;    /* checkpointer_stop: cut a collapse short, start none */
    pthread_mutex_t stats_lock;
    ckptr_stats_t st;
};

/* What the child reports through its pipe. */
typedef struct child_result {
    int32_t rc;
    uint64_t id, bytes, steps;
    char err[512];
} child_result_t;

int checkpointer_open(const char *datadir, const ckptr_source_t *src, checkpointer_t **out,
                      char *err, size_t errlen)
{
    ckpt_store_t *store;
    int rc = ckpt_store_open(datadir, 0, &store, err, errlen);
    if (rc) return rc;
    checkpointer_t *c = weir_calloc(1, sizeof *c);
    c->store = store;
    c->src = *src;
    c->log_off = weir_calloc(src->nparts, sizeof *c->log_off);
    c->dec_off = weir_calloc(src->nparts, sizeof *c->dec_off);
    c->decided = weir_calloc(src->nparts, sizeof *c->decided);
    c->done_off = weir_calloc(src->nparts, sizeof *c->done_off);
    pthread_mutex_init(&c->take_lock, NULL);
    pthread_mutex_init(&c->stats_lock, NULL);
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
    weir_free(c->done_off);
    buf_free(&c->extra);
    weir_free(c);
}

void checkpointer_stats(checkpointer_t *c, ckptr_stats_t *out)
{
    pthread_mutex_lock(&c->stats_lock);
    *out = c->st;
    pthread_mutex_unlock(&c->stats_lock);
}

/* ---- the child ---- */

static uint64_t child_crash_at;
static long child_delay_ms;
static pid_t child_parent;

/* write(2) of a formatted line: the child must not touch stdio, whose lock
 * another thread of the parent may have held at fork(). */
static void child_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void child_say(const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n > 0) (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

static void child_fault(void *ctx, uint64_t step, const char *kind, const char *path)
{
    (void)ctx;
    if (child_crash_at && step == child_crash_at) {
        child_say("weir: WEIR_CKPT_CRASH_AT=%" PRIu64 ": the server dies after %s %s\n", step,
                  kind, path);
        kill(child_parent, SIGKILL);
        _exit(137);
    }
    if (child_delay_ms > 0) {
        struct timespec ts = {child_delay_ms / 1000, (child_delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

typedef struct part_sink {
    ckpt_part_writer_t *pw;
    uint64_t bytes;
    char *err;
    size_t errlen;
} part_sink_t;

static int part_flush(void *ctx, weir_buf_t *b)
{
    part_sink_t *s = ctx;
    s->bytes += b->len;
    return ckpt_write_part_append(s->pw, b->data, b->len, s->err, s->errlen);
}

/* Writes the checkpoint from the frozen image; returns its result. */
static void child_write(checkpointer_t *c, child_result_t *r)
{
    uint64_t steps0 = ckpt_store_steps(c->store);
    char fp[17];
    snprintf(fp, sizeof fp, "%016" PRIx64, c->src.fingerprint);
    ckpt_kv_t meta[2] = {{{"fingerprint", 11}, {fp, 16}},
                         {{"outputs", 7}, {c->extra.data ? c->extra.data : "", c->extra.len}}};
    ckpt_write_opts_t o = {.pipeline = c->src.pipeline, .partitions = c->src.nparts, .meta = meta,
                           .nmeta = 2};
    ckpt_writer_t *w;
    r->rc = ckpt_writer_begin(c->store, &o, &w, r->err, sizeof r->err);
    if (r->rc) goto done;
    r->id = ckpt_writer_id(w);
    weir_buf_t b = WEIR_BUF_INIT;
    for (uint32_t i = 0; i < c->src.nparts && r->rc == 0; i++) {
        char dec[24];
        int n = snprintf(dec, sizeof dec, "%" PRId64, c->decided[i]);
        ckpt_kv_t pmeta = {{"decided", 7}, {dec, (size_t)n}};
        ckpt_part_desc_t d = {i, c->log_off[i], c->dec_off[i], &pmeta, 1};
        part_sink_t s = {NULL, 0, r->err, sizeof r->err};
        r->rc = ckpt_write_part_begin(w, &d, &s.pw, r->err, sizeof r->err);
        if (r->rc) break;
        buf_reset(&b);
        r->rc = engine_part_encode(c->src.part(c->src.ctx, i), &b, part_flush, &s);
        if (r->rc == 0) r->rc = part_flush(&s, &b);
        int end = ckpt_write_part_end(s.pw, r->err, sizeof r->err);
        if (r->rc == 0) r->rc = end;
        r->bytes += s.bytes;
    }
    buf_free(&b);
    if (r->rc)
        ckpt_writer_abort(w);
    else
        r->rc = ckpt_writer_commit(w, r->err, sizeof r->err);
done:
    r->steps = ckpt_store_steps(c->store) - steps0;
}

static void child_main(checkpointer_t *c, int fd, pid_t parent)
{
    /* Die with the parent: a writer outliving a killed server would hold
     * the checkpoint directory, and its result would go nowhere. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    /* Keep stdin/out/err and the result pipe (as fd 3); close the
     * listening sockets, logs and locks: a restarted server must be able
     * to take them the moment the parent is gone. */
    if (fd != 3) {
        if (dup2(fd, 3) < 0) _exit(1);
    }
    close_range(4, ~0U, 0);
    /* The writer runs on idle CPU only (SCHED_IDLE): a request thread that
     * wakes up preempts it at once, so a checkpoint does not add a
     * scheduling delay to requests. A server busy on every core writes its
     * checkpoint slower, not its requests. */
    struct sched_param sp = {0};
    if (sched_setscheduler(0, SCHED_IDLE, &sp) != 0) (void)!setpriority(PRIO_PROCESS, 0, 19);
    child_parent = parent;
    child_crash_at = ckpt_store_crash_at(c->store);
    const char *delay = getenv("WEIR_CKPT_STEP_DELAY_MS");
    child_delay_ms = delay ? strtol(delay, NULL, 10) : 0;
    ckpt_store_set_fault_hook(c->store, child_fault, NULL);
    child_result_t r;
    memset(&r, 0, sizeof r);
    child_write(c, &r);
    const char *p = (const char *)&r;
    size_t left = sizeof r;
    while (left) {
        ssize_t n = write(3, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        p += n;
        left -= (size_t)n;
    }
    _exit(r.rc ? 1 : 0);
}

/* ---- the parent ---- */

static size_t read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    return got;
}

/* After a fork, every huge page the parent writes while the child lives is
 * split into small pages (copy-on-write copies 4 KiB), and stays split: the
 * next fork copies more page tables — measured here, 2 ms growing to 21 ms
 * over four checkpoints under load. Once the child is gone, the heap is
 * collapsed back into huge pages (base/hugepages.h, paced). The same is done
 * once when the server turns ready (checkpointer_start), for the state that
 * start-up built in small pages. */
static void heap_to_huge_pages(checkpointer_t *c)
{
    if (getenv("WEIR_NO_COLLAPSE")) return;
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
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return weir_errf(err, errlen, WEIR_EIO, "checkpoint: pipe: %s", strerror(errno));
    uint64_t t0 = weir_mono_ns();
    /* Every partition waits while this thread freezes and forks: it should
     * not lose the CPU meanwhile to other threads (nice -10 for that
     * moment; without the privilege to raise it, it stays as it is). */
    pid_t tid = (pid_t)syscall(SYS_gettid);
    int nice0 = getpriority(PRIO_PROCESS, (id_t)tid);
    int raised = setpriority(PRIO_PROCESS, (id_t)tid, -10) == 0;
    buf_reset(&c->extra);
    int rc = c->src.freeze(c->src.ctx, c->log_off, c->dec_off, c->decided, &c->extra, err, errlen);
    if (rc) {
        if (raised) (void)!setpriority(PRIO_PROCESS, (id_t)tid, nice0);
        close(pfd[0]);
        close(pfd[1]);
        return rc;
    }
    if (skip_unchanged && c->have_done &&
        memcmp(c->log_off, c->done_off, c->src.nparts * sizeof *c->log_off) == 0) {
        c->src.thaw(c->src.ctx);
        if (raised) (void)!setpriority(PRIO_PROCESS, (id_t)tid, nice0);
        close(pfd[0]);
        close(pfd[1]);
        return 1;
    }
    pid_t parent = getpid();
    uint64_t tf = weir_mono_ns();
    pid_t pid = fork();
    if (pid == 0) child_main(c, pfd[1], parent);
    int fork_errno = errno;
    uint64_t tf2 = weir_mono_ns();
    c->src.thaw(c->src.ctx);
    uint64_t t1 = weir_mono_ns();
    if (raised) (void)!setpriority(PRIO_PROCESS, (id_t)tid, nice0);
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        return weir_errf(err, errlen, WEIR_EIO, "checkpoint: fork: %s", strerror(fork_errno));
    }
    child_result_t r;
    size_t got = read_full(pfd[0], &r, sizeof r);
    close(pfd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    heap_to_huge_pages(c);
    if (got != sizeof r) {
        if (WIFSIGNALED(status))
            return weir_errf(err, errlen, WEIR_EIO,
                             "checkpoint: the writer process died of signal %d before committing",
                             WTERMSIG(status));
        return weir_errf(err, errlen, WEIR_EIO,
                         "checkpoint: the writer process exited with %d before committing",
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    ckpt_store_add_steps(c->store, r.steps);
    r.err[sizeof r.err - 1] = '\0';
    if (r.rc) return weir_errf(err, errlen, r.rc, "checkpoint: %s", r.err);
    ckpt_store_mark_committed(c->store, r.id);
    char perr[512];
    if (ckpt_prune(c->store, CKPTR_KEEP, NULL, perr, sizeof perr) != 0)
        fprintf(stderr, "weir run: checkpoint %" PRIu64 " written; pruning older ones: %s\n", r.id,
                perr);
    uint64_t t2 = weir_mono_ns();
    res->id = r.id;
    res->bytes = r.bytes;
    res->pause_s = (double)(t1 - t0) / 1e9;
    res->fork_s = (double)(tf2 - tf) / 1e9;
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

void checkpointer_release(checkpointer_t *c, uint64_t fingerprint)
{
    c->src.fingerprint = fingerprint;
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
 * rather than fork with the page tables of a heap still in small pages. */
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

uint64_t checkpointer_recover(checkpointer_t *c, ckptr_restore_cb restore, void *ctx)
{
    ckpt_info_t *list = NULL;
    size_t n = 0;
    char err[1024];
    if (ckpt_list(c->store, CKPT_CHECK_QUICK, &list, &n, err, sizeof err) != 0) {
        fprintf(stderr, "weir run: recovery: cannot list checkpoints: %s; replaying the whole log\n",
                err);
        return 0;
    }
    uint64_t used = 0;
    for (size_t i = 0; i < n && !used; i++) {
        const ckpt_info_t *info = &list[i];
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
    if (!used)
        fprintf(stderr, "weir run: recovery: %s; replaying the whole log\n",
                n ? "no usable checkpoint" : "no checkpoint");
    ckpt_list_free(list, n);
    return used;
}
