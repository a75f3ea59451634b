/* log.c — the log of a data directory: its lock, its topics and the
 * background fsync thread (see log.h for formats and guarantees). */
#include "log/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/fileio.h"
#include "log/part.h"

#define META_NAME "topic.meta"
#define MAX_PARTITIONS 4096

struct log_topic {
    char *name;
    char *dir;
    uint32_t nparts;
    log_part_t *parts;
};

struct log {
    char *dir; /* DATA/log */
    log_config_t cfg;
    int lock_fd;

    /* mu guards topics and stop; the fsync thread walks the topics under it. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    log_topic_t **topics;
    size_t ntopics;
    int stop;
    pthread_t flusher;
};

/* A recovery point is written once the active segment has grown this much
 * since the last: after a crash, the open reads at most this much (plus
 * what one flusher interval appends) of each partition's active segment,
 * and a point costs a write of the segment's index (16 bytes per
 * index_interval, 0.4% of the bytes appended at the default). Tests make
 * points often (WEIR_LOG_POINT_BYTES), so that their crashes meet them. */
#define POINT_BYTES (16u << 20)

void log_config_defaults(log_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->segment_bytes = 128u << 20;
    cfg->segment_ms = 7LL * 24 * 3600 * 1000;
    cfg->index_interval = 4096;
    cfg->fsync_interval_ms = 100;
    cfg->point_bytes = POINT_BYTES;
    /* Tests only (RECOVERY POINTS): 4 KiB to 1 GiB, anything else ignored. */
    const char *pb = getenv("WEIR_LOG_POINT_BYTES");
    unsigned long long v = pb ? strtoull(pb, NULL, 10) : 0;
    if (v >= 4096 && v <= (1ull << 30)) cfg->point_bytes = v;
}

static void *flusher_main(void *arg)
{
    log_t *log = arg;
    pthread_mutex_lock(&log->mu);
    while (!log->stop) {
        struct timespec ts;
        weir_deadline_in_ms(&ts, log->cfg.fsync_interval_ms);
        pthread_cond_timedwait(&log->cv, &log->mu, &ts);
        if (log->stop) break;
        for (size_t i = 0; i < log->ntopics; i++) {
            log_topic_t *t = log->topics[i];
            for (uint32_t j = 0; j < t->nparts; j++) {
                log_part_t *p = &t->parts[j];
                /* A failed sync marks the partition failed, and says so
                 * (part.c, FAILED); appenders see it. */
                if (atomic_load(&p->written_seq) > p->synced_seq) log_part_sync(p, NULL, 0);
                log_part_save_point(p, log->cfg.point_bytes);
                if (log->cfg.retention_ms > 0) log_part_retain(p);
            }
        }
    }
    pthread_mutex_unlock(&log->mu);
    return NULL;
}

static int mkdir_p(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    return -1;
}

int log_open(const char *datadir, const log_config_t *cfg, log_t **out, char *err, size_t errlen)
{
    size_t n = strlen(datadir) + 8;
    char *dir = weir_malloc(n);
    snprintf(dir, n, "%s/log", datadir);
    if (!cfg->read_only && mkdir_p(datadir) != 0) {
        int rc = weir_errf(err, errlen, WEIR_EIO, "cannot create %s: %s", datadir, strerror(errno));
        weir_free(dir);
        return rc;
    }
    int rc = log_open_dir(dir, cfg, out, err, errlen);
    weir_free(dir);
    return rc;
}

/* Makes the handle of the log in dir (which it takes), holding lock_fd
 * (-1 read-only), and starts the fsync thread unless read-only. */
static int log_start(char *dir, const log_config_t *cfg, int lock_fd, log_t **out)
{
    log_t *log = weir_calloc(1, sizeof *log);
    log->dir = dir;
    log->cfg = *cfg;
    log->lock_fd = lock_fd;
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->cv, NULL);
    if (!cfg->read_only) pthread_create(&log->flusher, NULL, flusher_main, log);
    *out = log;
    return 0;
}

int log_open_dir(const char *root, const log_config_t *cfg, log_t **out, char *err, size_t errlen)
{
    if (cfg->segment_bytes < 1024 || cfg->segment_bytes > (1ull << 30))
        return weir_errf(err, errlen, WEIR_EINVAL, "segment size must be between 1 KiB and 1 GiB");
    if (cfg->fsync_interval_ms <= 0 || cfg->index_interval == 0)
        return weir_errf(err, errlen, WEIR_EINVAL, "fsync interval and index interval must be positive");
    char *dir = weir_strdup(root);
    const char *datadir = root;
    if (cfg->read_only) {
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            int rc = weir_errf(err, errlen, WEIR_ENOENT, "no log in %s", dir);
            weir_free(dir);
            return rc;
        }
        return log_start(dir, cfg, -1, out);
    }
    if (mkdir_p(dir) != 0) {
        int rc = weir_errf(err, errlen, WEIR_EIO, "cannot create %s: %s", dir, strerror(errno));
        weir_free(dir);
        return rc;
    }
    char lockpath[4096];
    snprintf(lockpath, sizeof lockpath, "%s/LOCK", dir);
    int fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        /* Another process holds it only if flock says so; a lock file that
         * cannot be opened (a read-only filesystem, no permission, no file
         * descriptors left) is that problem, named. */
        int e = errno, rc;
        if (fd >= 0 && e == EWOULDBLOCK)
            rc = weir_errf(err, errlen, WEIR_EEXIST,
                           "the log in %s is in use by another weir process (pid %ld)", datadir,
                           weir_flock_holder(fd));
        else
            rc = weir_errf(err, errlen, WEIR_EIO, "cannot lock %s: %s", lockpath, strerror(e));
        if (fd >= 0) close(fd);
        weir_free(dir);
        return rc;
    }
    return log_start(dir, cfg, fd, out);
}

/* OPENING IN PARALLEL. Opening a partition scans its active segment
 * (every batch's checksum, the index rebuilt: log.h), about 0.3 s per GB
 * read from the page cache: for a 1 GB log, a tenth of a second per core
 * before the first event of a recovery can be replayed. The partitions are
 * independent, so they are opened by one thread per core, each taking the
 * next partition from a shared counter. */
typedef struct open_job {
    log_topic_t *t;
    const log_config_t *cfg;
    atomic_uint next;
    int *rc;      /* per partition */
    char (*err)[512];
} open_job_t;

static void *open_main(void *arg)
{
    open_job_t *j = arg;
    for (uint32_t i; (i = atomic_fetch_add(&j->next, 1)) < j->t->nparts;) {
        char pdir[4096];
        snprintf(pdir, sizeof pdir, "%s/%u", j->t->dir, i);
        j->rc[i] = part_open(&j->t->parts[i], pdir, i, j->cfg, !j->cfg->read_only, j->err[i],
                             sizeof j->err[i]);
    }
    return NULL;
}

/* Opens every partition of t; on failure, the first failing partition's
 * error, and every partition closed. */
static int open_parts(log_topic_t *t, const log_config_t *cfg, char *err, size_t errlen)
{
    open_job_t j = {t, cfg, 0, weir_calloc(t->nparts, sizeof(int)),
                    weir_calloc(t->nparts, sizeof *j.err)};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t nthreads = cpus < 1 ? 1 : cpus > 64 ? 64 : (uint32_t)cpus;
    if (nthreads > t->nparts) nthreads = t->nparts;
    pthread_t th[64];
    uint32_t started = 0;
    /* This thread is one of them; a thread that cannot start leaves its
     * share to the others. */
    while (started + 1 < nthreads && pthread_create(&th[started], NULL, open_main, &j) == 0) started++;
    open_main(&j);
    for (uint32_t i = 0; i < started; i++) pthread_join(th[i], NULL);
    int rc = 0;
    for (uint32_t i = 0; i < t->nparts && rc == 0; i++)
        if (j.rc[i]) rc = weir_errf(err, errlen, j.rc[i], "%s", j.err[i]);
    weir_free(j.rc);
    weir_free(j.err);
    return rc;
}

static void topic_free(log_topic_t *t, uint32_t opened)
{
    for (uint32_t i = 0; i < opened; i++) part_close(&t->parts[i]);
    weir_free(t->parts);
    weir_free(t->name);
    weir_free(t->dir);
    weir_free(t);
}

void log_close(log_t *log)
{
    if (!log) return;
    int rw = !log->cfg.read_only; /* a read-only log has no thread and nothing to sync */
    pthread_mutex_lock(&log->mu);
    log->stop = 1;
    pthread_cond_signal(&log->cv);
    pthread_mutex_unlock(&log->mu);
    if (rw) pthread_join(log->flusher, NULL);
    for (size_t i = 0; i < log->ntopics; i++) {
        log_topic_t *t = log->topics[i];
        for (uint32_t j = 0; j < t->nparts && rw; j++) {
            log_part_sync(&t->parts[j], NULL, 0);
            /* The next open then reads nothing of the active segment. */
            log_part_save_point(&t->parts[j], 1);
        }
        topic_free(t, t->nparts);
    }
    weir_free(log->topics);
    if (log->lock_fd >= 0) close(log->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->cv);
    weir_free(log->dir);
    weir_free(log);
}

static int valid_topic_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 200 || name[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

int topic_meta_read(const char *tdir, uint32_t *partitions)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/" META_NAME, tdir);
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? WEIR_ENOENT : WEIR_EIO;
    unsigned v = 0;
    int ok = fscanf(f, "partitions %u", &v) == 1 && v >= 1 && v <= MAX_PARTITIONS;
    fclose(f);
    if (!ok) return WEIR_ECORRUPT;
    *partitions = v;
    return 0;
}

/* Creates the topic's folders, then its meta file atomically: a topic
 * without a meta file is one whose creation never finished. */
static int create_topic(const char *tdir, uint32_t partitions, char *err, size_t errlen)
{
    char path[4096], tmp[4096];
    if (mkdir_p(tdir) != 0)
        return weir_errf(err, errlen, WEIR_EIO, "cannot create %s: %s", tdir, strerror(errno));
    for (uint32_t i = 0; i < partitions; i++) {
        snprintf(path, sizeof path, "%s/%u", tdir, i);
        if (mkdir_p(path) != 0)
            return weir_errf(err, errlen, WEIR_EIO, "cannot create %s: %s", path, strerror(errno));
    }
    snprintf(path, sizeof path, "%s/" META_NAME, tdir);
    snprintf(tmp, sizeof tmp, "%s/" META_NAME ".tmp", tdir);
    FILE *f = fopen(tmp, "w");
    int ok = f && fprintf(f, "partitions %u\n", partitions) > 0 && fflush(f) == 0 &&
             fsync(fileno(f)) == 0;
    if (f) fclose(f);
    if (!ok || rename(tmp, path) != 0)
        return weir_errf(err, errlen, WEIR_EIO, "cannot write %s: %s", path, strerror(errno));
    int dfd = open(tdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int log_topic_open(log_t *log, const char *name, uint32_t partitions, log_topic_t **out,
                   char *err, size_t errlen)
{
    if (!valid_topic_name(name))
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "bad topic name '%s' (letters, digits, '_', '-', '.'; at most 200)", name);
    if (partitions > MAX_PARTITIONS)
        return weir_errf(err, errlen, WEIR_EINVAL, "at most %d partitions", MAX_PARTITIONS);
    pthread_mutex_lock(&log->mu);
    for (size_t i = 0; i < log->ntopics; i++) {
        if (strcmp(log->topics[i]->name, name) != 0) continue;
        log_topic_t *t = log->topics[i];
        pthread_mutex_unlock(&log->mu);
        if (partitions && partitions != t->nparts)
            return weir_errf(err, errlen, WEIR_EEXIST, "topic '%s' has %u partitions, not %u", name,
                             t->nparts, partitions);
        *out = t;
        return 0;
    }
    pthread_mutex_unlock(&log->mu);

    size_t n = strlen(log->dir) + strlen(name) + 2;
    char *tdir = weir_malloc(n);
    snprintf(tdir, n, "%s/%s", log->dir, name);
    uint32_t have = 0;
    int rc = topic_meta_read(tdir, &have);
    if (rc == WEIR_ENOENT && partitions && !log->cfg.read_only) {
        rc = create_topic(tdir, partitions, err, errlen);
        have = partitions;
    } else if (rc == WEIR_ENOENT) {
        rc = weir_errf(err, errlen, WEIR_ENOENT, "no topic '%s' in %s", name, log->dir);
    } else if (rc) {
        rc = weir_errf(err, errlen, rc, "%s/" META_NAME ": unreadable or corrupt", tdir);
    } else if (partitions && partitions != have) {
        rc = weir_errf(err, errlen, WEIR_EEXIST, "topic '%s' has %u partitions, not %u", name, have,
                       partitions);
    }
    if (rc) {
        weir_free(tdir);
        return rc;
    }

    log_topic_t *t = weir_calloc(1, sizeof *t);
    t->name = weir_strdup(name);
    t->dir = tdir;
    t->nparts = have;
    t->parts = weir_calloc(have, sizeof *t->parts);
    if ((rc = open_parts(t, &log->cfg, err, errlen)) != 0) {
        topic_free(t, have); /* a partition that failed to open can be closed too */
        return rc;
    }
    pthread_mutex_lock(&log->mu);
    log->topics = weir_realloc(log->topics, (log->ntopics + 1) * sizeof *log->topics);
    log->topics[log->ntopics++] = t;
    pthread_mutex_unlock(&log->mu);
    *out = t;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int log_topic_list(const char *datadir, char ***names, size_t *count, char *err, size_t errlen)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/log", datadir);
    int rc = log_topic_list_dir(dir, names, count, err, errlen);
    if (rc == WEIR_ENOENT)
        return weir_errf(err, errlen, WEIR_ENOENT, "no log in %s: %s", datadir, strerror(errno));
    return rc;
}

int log_topic_list_dir(const char *dir, char ***names, size_t *count, char *err, size_t errlen)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return weir_errf(err, errlen, WEIR_ENOENT, "no log in %s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !valid_topic_name(e->d_name)) continue;
        char tdir[4096];
        uint32_t parts;
        if (snprintf(tdir, sizeof tdir, "%s/%s", dir, e->d_name) >= (int)sizeof tdir) continue;
        struct stat st;
        if (stat(tdir, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        if (topic_meta_read(tdir, &parts) == WEIR_ENOENT) continue;
        *names = weir_realloc(*names, (*count + 1) * sizeof **names);
        (*names)[(*count)++] = weir_strdup(e->d_name);
    }
    closedir(d);
    if (*count) qsort(*names, *count, sizeof **names, cmp_str);
    return 0;
}

uint32_t log_topic_partitions(const log_topic_t *t)
{
    return t->nparts;
}

log_part_t *log_topic_part(log_topic_t *t, uint32_t partition)
{
    weir_assert(partition < t->nparts);
    return &t->parts[partition];
}
