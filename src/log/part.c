/* part.c — partitions: open and recovery, append, group commit, roll and
 * retention (see part.h; formats and rules in log.h). */
#include "log/part.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/fileio.h"
#include "base/intmath.h"

static int64_t now_ms(const log_config_t *cfg)
{
    return cfg->now_ms ? cfg->now_ms(cfg->now_ctx) : weir_wall_ms();
}

static log_segment_t *seg_push(log_part_t *p, uint64_t base)
{
    if (p->nsegs == p->capsegs) {
        p->capsegs = p->capsegs ? p->capsegs * 2 : 8;
        p->segs = weir_realloc(p->segs, p->capsegs * sizeof *p->segs);
    }
    log_segment_t *s = &p->segs[p->nsegs++];
    memset(s, 0, sizeof *s);
    s->base = s->next = base;
    s->first_ts = s->max_ts = INT64_MIN;
    s->fd = -1;
    s->path = seg_path(p->dir, base, ".seg");
    return s;
}

int part_list_segments(const char *dir, int cleanup, uint64_t **bases, uint32_t *n, char *err,
                       size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) return weir_errf(err, errlen, WEIR_EIO, "cannot open %s: %s", dir, strerror(errno));
    uint64_t *v = NULL;
    uint32_t cnt = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t base;
        size_t len = strlen(e->d_name);
        if (seg_parse_name(e->d_name, &base) == 0) {
            if (cnt == cap) {
                cap = cap ? cap * 2 : 16;
                v = weir_realloc(v, cap * sizeof *v);
            }
            v[cnt++] = base;
        } else if (!cleanup) {
            continue;
        } else if (len > 4 && !strcmp(e->d_name + len - 4, ".tmp")) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        } else if (len == SEG_NAME_DIGITS + 4 && !strcmp(e->d_name + SEG_NAME_DIGITS, ".idx")) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%.*s.seg", dir, SEG_NAME_DIGITS, e->d_name);
            if (access(path, F_OK) != 0) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        }
    }
    closedir(d);
    if (cnt) qsort(v, cnt, sizeof *v, weir_cmp_u64);
    *bases = v;
    *n = cnt;
    return 0;
}

/* Forgets what s accounts (before a scan from its start). */
static void seg_forget(log_segment_t *s)
{
    weir_free(s->idx);
    s->idx = NULL;
    s->nidx = s->capidx = 0;
    s->last_idx_pos = s->size = 0;
    s->next = s->base;
    s->first_ts = s->max_ts = INT64_MIN;
}

/* Takes s back to its last index entry, whose batches the scan then reads
 * again: the bytes at a recovery point's end are checked to be the ones it
 * described (a file rewritten behind weir's back since is refused there),
 * at the cost of one index interval. */
static void seg_rewind(log_segment_t *s)
{
    const seg_index_entry_t *e = &s->idx[--s->nidx];
    s->size = e->pos;
    s->next = s->base + e->rel;
    s->max_ts = e->max_ts_before;
    s->last_idx_pos = s->nidx ? s->idx[s->nidx - 1].pos : 0;
}

/* Opens a closed segment: its index if it fits (and ends where the next
 * segment starts), else a full scan to rebuild it. */
static int open_closed_segment(log_part_t *p, log_segment_t *s, uint64_t next_base, char *err,
                               size_t errlen)
{
    char why[256];
    if (seg_index_load(s, 0, why, sizeof why) == 0 && s->next == next_base) return 0;
    seg_forget(s);
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return weir_errf(err, errlen, WEIR_EIO, "cannot open %s: %s", s->path, strerror(errno));
    seg_scan_t sc;
    int rc = seg_scan_file(fd, 0, s->base, s, p->cfg->index_interval, &sc, err, errlen);
    close(fd);
    if (rc) return rc;
    if (sc.problem != BATCH_OK || sc.batches == 0) {
        if (sc.batches == 0 && sc.problem == BATCH_OK)
            return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: closed segment is empty", s->path);
        if (sc.bad_base)
            return weir_errf(err, errlen, WEIR_ECORRUPT,
                             "%s: byte offset %" PRIu64 ": batch has base offset %" PRIu64
                             ", expected %" PRIu64,
                             s->path, sc.valid_bytes, sc.found_base, sc.problem_offset);
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: byte offset %" PRIu64 ": %s", s->path,
                         sc.valid_bytes, batch_status_str(sc.problem));
    }
    s->checked = sc.valid_bytes;
    p->recovery.indexes_rebuilt++;
    /* Best effort: a stale index costs a rescan at the next open, nothing more. */
    if (!p->cfg->read_only) seg_index_write(s, NULL, 0);
    return 0;
}

/* Opens the active segment: scanned from its recovery point if it has one
 * that fits (RECOVERY POINTS in log.h), else from its start; then a torn
 * tail is truncated, and anything else that fails is an error. */
static int open_active_segment(log_part_t *p, log_segment_t *s, char *err, size_t errlen)
{
    int ro = p->cfg->read_only;
    int fd = open(s->path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) return weir_errf(err, errlen, WEIR_EIO, "cannot open %s: %s", s->path, strerror(errno));
    char why[256];
    uint64_t point = 0;
    if (seg_index_load(s, 1, why, sizeof why) == 0) {
        seg_rewind(s);
        point = s->size;
    } else {
        seg_forget(s);
    }
    seg_scan_t sc;
    int rc = seg_scan_file(fd, point, s->next, s, p->cfg->index_interval, &sc, err, errlen);
    if (rc) goto fail;
    int after = 0;
    if (sc.problem != BATCH_OK) after = seg_valid_batch_after(fd, sc.valid_bytes, sc.file_size);
    if (point && (after != 0 || sc.valid_bytes > sc.file_size)) {
        /* Damage after the point, or a point that does not continue into
         * the file: it cannot be trusted to say where the damage begins.
         * A full scan decides, as without a point. */
        point = 0;
        seg_forget(s);
        rc = seg_scan_file(fd, 0, s->base, s, p->cfg->index_interval, &sc, err, errlen);
        if (rc) goto fail;
        if (sc.problem != BATCH_OK) after = seg_valid_batch_after(fd, sc.valid_bytes, sc.file_size);
    }
    if (sc.problem != BATCH_OK) {
        if (sc.problem == BATCH_FOREIGN) { /* no tear (batch.h, ANOTHER FORMAT'S BATCH) */
            rc = weir_errf(err, errlen, WEIR_ECORRUPT, "%s: byte offset %" PRIu64 ": %s", s->path,
                           sc.valid_bytes, batch_status_str(sc.problem));
            goto fail;
        }
        if (after != 0) {
            if (after < 0)
                rc = weir_errf(err, errlen, WEIR_EIO, "%s: read failed", s->path);
            else if (sc.bad_base)
                rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                               "%s: byte offset %" PRIu64 ": batch has base offset %" PRIu64
                               ", expected %" PRIu64 " (valid batches follow: not a torn tail)",
                               s->path, sc.valid_bytes, sc.found_base, sc.problem_offset);
            else
                rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                               "%s: byte offset %" PRIu64 ": %s (valid batches follow: not a torn tail)",
                               s->path, sc.valid_bytes, batch_status_str(sc.problem));
            goto fail;
        }
        /* Read-only, the tail is only reported: s->size already ends
         * before it, so nothing of this process reads it. */
        if (!ro && (ftruncate(fd, (off_t)sc.valid_bytes) != 0 || fdatasync(fd) != 0)) {
            rc = weir_errf(err, errlen, WEIR_EIO, "%s: cannot truncate torn tail: %s", s->path,
                           strerror(errno));
            goto fail;
        }
        p->recovery.dropped_bytes = sc.file_size - sc.valid_bytes;
        p->recovery.at = sc.valid_bytes;
        p->recovery.file = s->path;
    }
    if (lseek(fd, 0, SEEK_END) < 0) {
        rc = weir_errf(err, errlen, WEIR_EIO, "%s: lseek: %s", s->path, strerror(errno));
        goto fail;
    }
    s->fd = fd;
    /* Readers verify what the open did not (CHECKED ONCE, reader.c): with a
     * point, the bytes before it were not read. */
    s->checked = point ? 0 : sc.valid_bytes;
    p->recovery.point = point;
    p->recovery.scanned = sc.valid_bytes - point;
    p->point_size = point;
    if (!point) {
        /* An index file that was not used is stale or damaged; one that a
         * later append made fit by chance must not be trusted next time. */
        char *ipath = seg_index_path(s);
        /* Durably gone: a torn tail cut below it must not meet it again
         * after a power loss. */
        if (!ro && unlink(ipath) == 0) weir_fsync_dir(p->dir);
        weir_free(ipath);
    }
    return 0;
fail:
    close(fd);
    return rc;
}

static int create_segment(log_part_t *p, uint64_t base, char *err, size_t errlen)
{
    log_segment_t *s = seg_push(p, base);
    int fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = weir_errf(err, errlen, WEIR_EIO, "cannot create %s: %s", s->path, strerror(errno));
        seg_free(s);
        p->nsegs--;
        return rc;
    }
    s->fd = fd;
    /* The new file's name must be durable before a durable ack points into it. */
    if (weir_fsync_dir(p->dir) != 0)
        return weir_errf(err, errlen, WEIR_EIO, "fsync %s: %s", p->dir, strerror(errno));
    return 0;
}

int part_open(log_part_t *p, const char *dir, uint32_t id, const log_config_t *cfg, int create,
              char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->id = id;
    p->dir = weir_strdup(dir);
    p->cfg = cfg;
    p->sync_fd = -1;
    p->retain_floor = cfg->retain_held ? 0 : UINT64_MAX;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->sync_mu, NULL);
    pthread_cond_init(&p->sync_cv, NULL);

    if (create && mkdir(dir, 0755) != 0 && errno != EEXIST)
        return weir_errf(err, errlen, WEIR_EIO, "cannot create %s: %s", dir, strerror(errno));
    p->recovery.read_only = cfg->read_only;
    uint64_t *bases;
    uint32_t n;
    int rc = part_list_segments(dir, !cfg->read_only, &bases, &n, err, errlen);
    if (rc) return rc;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        log_segment_t *s = seg_push(p, bases[i]);
        rc = i + 1 < n ? open_closed_segment(p, s, bases[i + 1], err, errlen)
                       : open_active_segment(p, s, err, errlen);
        if (rc == 0 && i > 0 && p->segs[i - 1].next != s->base)
            rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                           "%s: segment starts at offset %" PRIu64 " but the previous one ends at %" PRIu64
                           " (a segment is missing)",
                           s->path, s->base, p->segs[i - 1].next);
        if (rc == 0) p->bytes += s->size;
    }
    weir_free(bases);
    /* Read-only, a partition without segments gets an empty one in memory
     * (no file), which is what a writer would create. */
    if (rc == 0 && p->nsegs == 0 && cfg->read_only) seg_push(p, 0);
    if (rc == 0 && p->nsegs == 0) rc = create_segment(p, 0, err, errlen);
    if (rc == 0) p->sync_fd = p->segs[p->nsegs - 1].fd;
    return rc;
}

void part_close(log_part_t *p)
{
    for (uint32_t i = 0; i < p->nsegs; i++) seg_free(&p->segs[i]);
    weir_free(p->segs);
    weir_free(p->dir);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->sync_mu);
    pthread_cond_destroy(&p->sync_cv);
}

int part_find_segment(const log_part_t *p, uint64_t offset)
{
    int lo = 0, hi = (int)p->nsegs - 1, ans = -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (p->segs[mid].base <= offset) {
            ans = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return ans;
}

/* FAILED. A write or sync that failed fences the partition until the log
 * is opened again (sync_to says why), and is said once, whoever hit it: a
 * request's append answers its client, but the flusher's background sync
 * answers nobody, and what it could not keep was acknowledged already
 * (ack written). part_fail (caller holds mu) fences and says whether this
 * was the first failure; the caller says it (part_say_failed) once mu is
 * let go: a stderr pipe that blocks must not hold the partition's lock. */
static int part_fail(log_part_t *p)
{
    int first = !p->failed;
    p->failed = 1;
    return first;
}

static void part_say_failed(const log_part_t *p, const char *why)
{
    fprintf(stderr,
            "weir: log %s: %s; the partition refuses appends until the log is opened again, and "
            "events acknowledged since its last sync may not be on disk\n",
            p->dir, why);
}
/* Syncs until synced_seq >= target. Appenders waiting at the same time share
 * one fdatasync: whoever finds no sync running starts one covering every
 * write completed so far; the others wait for it and recheck. With force,
 * one fdatasync is made even if target is reached (the bytes an open found
 * are no write of this process's, yet may not be on disk). */
static int sync_to(log_part_t *p, uint64_t target, int force, char *err, size_t errlen)
{
    int rc = 0;
    char failed_why[128];
    pthread_mutex_lock(&p->sync_mu);
    while ((p->synced_seq < target || force) && rc == 0) {
        /* After a failed fdatasync the kernel has reported the error once:
         * a waiter's own fdatasync on the same file could return 0 and
         * acknowledge a durable append whose pages were dropped. */
        if (p->sync_failed) {
            snprintf(failed_why, sizeof failed_why, "fdatasync partition %u: %s", p->id,
                     strerror(p->sync_failed));
            rc = weir_errf(err, errlen, WEIR_EIO, "%s", failed_why);
            break;
        }
        if (p->syncing) {
            pthread_cond_wait(&p->sync_cv, &p->sync_mu);
            continue;
        }
        p->syncing = 1;
        force = 0;
        uint64_t upto = atomic_load(&p->written_seq);
        int fd = p->sync_fd;
        pthread_mutex_unlock(&p->sync_mu);
        int sr = fdatasync(fd);
        atomic_fetch_add(&p->syncs, 1);
        int e = errno;
        pthread_mutex_lock(&p->sync_mu);
        p->syncing = 0;
        if (sr == 0 && upto > p->synced_seq) p->synced_seq = upto;
        if (sr != 0) {
            p->sync_failed = e ? e : EIO; /* before the waiters wake (above) */
            snprintf(failed_why, sizeof failed_why, "fdatasync partition %u: %s", p->id,
                     strerror(e));
            rc = weir_errf(err, errlen, WEIR_EIO, "%s", failed_why);
        }
        pthread_cond_broadcast(&p->sync_cv);
    }
    pthread_mutex_unlock(&p->sync_mu);
    if (rc) {
        /* After a failed fsync the page cache may have dropped the data
         * (fsyncgate): the partition must not pretend later writes are safe. */
        pthread_mutex_lock(&p->mu);
        int first = part_fail(p);
        pthread_mutex_unlock(&p->mu);
        if (first) part_say_failed(p, failed_why);
    }
    return rc;
}

int log_part_sync(log_part_t *p, char *err, size_t errlen)
{
    return sync_to(p, atomic_load(&p->written_seq), 0, err, errlen);
}

/* Closes the active segment and starts a new one. Caller holds mu. */
static int roll(log_part_t *p, char *err, size_t errlen)
{
    log_segment_t *old = &p->segs[p->nsegs - 1];
    /* Everything written so far goes to disk with the old file, so that the
     * group commit's sequence numbers stay true across the fd switch. */
    pthread_mutex_lock(&p->sync_mu);
    while (p->syncing) pthread_cond_wait(&p->sync_cv, &p->sync_mu);
    uint64_t upto = atomic_load(&p->written_seq);
    int rc = 0;
    if (p->sync_failed) {
        /* Not a sync of its own: it could return 0 and move synced_seq past
         * writes a failed one lost, acknowledging them (sync_to). */
        int e = p->sync_failed;
        pthread_mutex_unlock(&p->sync_mu);
        return weir_errf(err, errlen, WEIR_EIO, "fdatasync partition %u: %s", p->id, strerror(e));
    }
    if (p->synced_seq < upto) {
        atomic_fetch_add(&p->syncs, 1);
        if (fdatasync(old->fd) != 0) {
            int e = errno ? errno : EIO;
            rc = weir_errf(err, errlen, WEIR_EIO, "fdatasync %s: %s", old->path, strerror(e));
            p->sync_failed = e; /* (as in sync_to: under sync_mu) */
        } else
            p->synced_seq = upto;
    }
    if (rc == 0) {
        rc = seg_index_write(old, err, errlen);
        if (rc == 0) {
            uint64_t base = old->next;
            close(old->fd);
            old->fd = -1;
            rc = create_segment(p, base, err, errlen); /* may move p->segs */
            /* (-1 on failure: the old number may be reused by another file) */
            p->sync_fd = rc == 0 ? p->segs[p->nsegs - 1].fd : -1;
            p->point_size = 0; /* the new segment has none */
        }
    }
    pthread_cond_broadcast(&p->sync_cv);
    pthread_mutex_unlock(&p->sync_mu);
    return rc;
}

/* Deletes closed segments past the limits. Caller holds mu. */
static int retain_locked(log_part_t *p)
{
    const log_config_t *c = p->cfg;
    int64_t now = now_ms(c);
    int deleted = 0;
    while (p->nsegs > 1) {
        log_segment_t *s = &p->segs[0];
        int old = c->retention_ms > 0 && s->max_ts < now - c->retention_ms;
        int big = c->retention_bytes > 0 && p->bytes > c->retention_bytes;
        if ((!old && !big) || s->next > p->retain_floor) break;
        /* Segment first, index second: an index without its segment is
         * removed at the next open; a segment without index is rebuilt. */
        if (unlink(s->path) != 0 && errno != ENOENT) break;
        char *ipath = seg_path(p->dir, s->base, ".idx");
        unlink(ipath);
        weir_free(ipath);
        p->bytes -= s->size;
        p->deleted_segments++;
        p->deleted_bytes += s->size;
        seg_free(s);
        memmove(&p->segs[0], &p->segs[1], (p->nsegs - 1) * sizeof *p->segs);
        p->nsegs--;
        deleted++;
    }
    return deleted;
}

void log_part_retain_floor(log_part_t *p, uint64_t offset)
{
    pthread_mutex_lock(&p->mu);
    p->retain_floor = offset;
    pthread_mutex_unlock(&p->mu);
}

int log_part_retain(log_part_t *p)
{
    pthread_mutex_lock(&p->mu);
    int n = retain_locked(p);
    pthread_mutex_unlock(&p->mu);
    return n;
}

int log_append(log_part_t *p, const log_rec_t *recs, size_t n, log_ack_t ack, weir_buf_t *scratch,
               uint64_t *first_offset, char *err, size_t errlen)
{
    /* Encode and checksum outside the lock; only the base offset is set under it. */
    int rc = batch_encode(scratch, recs, n, err, errlen);
    if (rc) return rc;
    batch_info_t info;
    batch_peek((const unsigned char *)scratch->data, scratch->len, &info);

    if (p->cfg->read_only)
        return weir_errf(err, errlen, WEIR_EINVAL, "partition %u is open read-only", p->id);
    pthread_mutex_lock(&p->mu);
    if (p->failed) {
        pthread_mutex_unlock(&p->mu);
        return weir_errf(err, errlen, WEIR_EIO,
                         "partition %u refuses appends after an earlier write or fsync failure", p->id);
    }
    log_segment_t *s = &p->segs[p->nsegs - 1];
    const log_config_t *c = p->cfg;
    if (s->size > 0 && (s->size + info.size > c->segment_bytes ||
                        (c->segment_ms > 0 && now_ms(c) - s->first_ts >= c->segment_ms))) {
        rc = roll(p, err, errlen);
        if (rc) {
            int first = part_fail(p);
            pthread_mutex_unlock(&p->mu);
            if (first) part_say_failed(p, err && errlen ? err : "a segment roll failed");
            return rc;
        }
        retain_locked(p);
        s = &p->segs[p->nsegs - 1];
    }
    info.base = s->next;
    batch_set_base(scratch->data, info.base);
    if (weir_write_all(s->fd, scratch->data, scratch->len) != 0) {
        char why[4200];
        snprintf(why, sizeof why, "write %s: %s", s->path, strerror(errno));
        rc = weir_errf(err, errlen, WEIR_EIO, "%s", why);
        /* A partial write leaves bytes that recovery will treat as a torn
         * tail; trying to continue after them would put later batches
         * behind garbage. */
        int first = part_fail(p);
        pthread_mutex_unlock(&p->mu);
        if (first) part_say_failed(p, why);
        return rc;
    }
    seg_account(s, &info, c->index_interval);
    p->bytes += info.size;
    uint64_t seq = atomic_fetch_add(&p->written_seq, 1) + 1;
    pthread_mutex_unlock(&p->mu);

    if (first_offset) *first_offset = info.base;
    if (ack == LOG_ACK_DURABLE) return sync_to(p, seq, 0, err, errlen);
    return 0;
}

int log_part_save_point(log_part_t *p, uint64_t min_growth)
{
    pthread_mutex_lock(&p->mu);
    const log_segment_t *s = &p->segs[p->nsegs - 1];
    /* A point with one index entry would be read from the start anyway. */
    if (p->failed || s->nidx < 2 || s->size < p->point_size ||
        s->size - p->point_size < min_growth) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    /* A copy of what the point records, so that the slow part runs
     * without the lock: index entries are only appended, and a roll
     * (which would close this segment) is detected below. */
    log_segment_t snap = *s;
    snap.idx = weir_malloc((s->nidx ? s->nidx : 1) * sizeof *s->idx);
    memcpy(snap.idx, s->idx, s->nidx * sizeof *s->idx);
    snap.path = weir_strdup(s->path);
    snap.fd = -1;
    uint64_t seq = atomic_load(&p->written_seq);
    pthread_mutex_unlock(&p->mu);

    /* The point may cover only durable bytes, or a power loss could leave
     * the file shorter than the point claims. Forced: bytes found at open
     * (a previous process's, perhaps still in the page cache) count too. */
    int rc = sync_to(p, seq, 1, NULL, 0);
    char *ipath = seg_index_path(&snap);
    size_t n = strlen(ipath) + sizeof ".point.tmp";
    char *tmp = weir_malloc(n);
    snprintf(tmp, n, "%s.point.tmp", ipath);
    if (rc == 0) rc = seg_index_write_file(&snap, tmp, NULL, 0);
    if (rc == 0) {
        /* Renamed under the lock: a roll writes the closed segment's final
         * index under it too, and must not be overwritten by a point. */
        pthread_mutex_lock(&p->mu);
        if (p->segs[p->nsegs - 1].base == snap.base && rename(tmp, ipath) == 0)
            p->point_size = snap.size;
        else
            rc = WEIR_EIO;
        pthread_mutex_unlock(&p->mu);
    }
    if (rc) unlink(tmp);
    weir_free(tmp);
    weir_free(ipath);
    seg_free(&snap);
    return rc;
}

int log_part_failed(log_part_t *p)
{
    return atomic_load(&p->failed);
}

void log_part_stat(log_part_t *p, log_part_stat_t *out)
{
    pthread_mutex_lock(&p->mu);
    out->segments = p->nsegs;
    out->start_offset = p->segs[0].base;
    out->next_offset = p->segs[p->nsegs - 1].next;
    out->bytes = p->bytes;
    out->deleted_segments = p->deleted_segments;
    out->deleted_bytes = p->deleted_bytes;
    out->syncs = atomic_load(&p->syncs);
    out->appends = atomic_load(&p->written_seq);
    out->failed = atomic_load(&p->failed);
    out->first_ts = out->max_ts = INT64_MIN;
    for (uint32_t i = 0; i < p->nsegs; i++) {
        if (p->segs[i].size == 0) continue;
        if (out->first_ts == INT64_MIN) out->first_ts = p->segs[i].first_ts;
        if (p->segs[i].max_ts > out->max_ts) out->max_ts = p->segs[i].max_ts;
    }
    pthread_mutex_unlock(&p->mu);
}

void log_part_recovery(const log_part_t *p, log_recovery_t *out)
{
    *out = p->recovery;
}
