/* checkpoint.c — the checkpoint store (see checkpoint.h for the layout, the
 * file formats, the write protocol and the recovery rule). */
#include "log/checkpoint.h"
#include "log/ckpt_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crc32c.h"
#include "base/error.h"
#include "base/fileio.h"

#define PART_MAGIC    0x504b4357u /* "WCKP" little-endian */
#define PART_VERSION  1
#define WRITE_BUF     (1u << 20)

struct ckpt_store {
    char *dir;
    int read_only;
    int lock_fd;
    uint32_t removed;
    _Atomic uint64_t steps;
    uint64_t crash_at; /* from WEIR_CKPT_CRASH_AT; 0 = off */
    ckpt_fault_cb hook;
    void *hook_ctx;
    int writing; /* a writer is open */
    uint64_t last_id; /* the newest id this handle committed: ids never go back, even if
                         the directory was emptied under it */
    /* Ids this handle wrote or fully verified: prune need not read them. */
    uint64_t *verified;
    size_t nverified, capverified;
};

/* --- little helpers ----------------------------------------------------- */

/* Little-endian integers of n bytes, whatever the host's order. */
static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
#define put16(p, v) put_le(p, v, 2)
#define put32(p, v) put_le(p, v, 4)
#define put64(p, v) put_le(p, v, 8)
#define get16(p)    ((uint16_t)get_le(p, 2))
#define get32(p)    ((uint32_t)get_le(p, 4))
#define get64(p)    get_le(p, 8)

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *p = weir_malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *ckpt_path(const char *dir, uint64_t id, const char *suffix)
{
    char name[CKPT_ID_DIGITS + 8];
    snprintf(name, sizeof name, "%020" PRIu64 "%s", id, suffix);
    return path_join(dir, name);
}

/* Parses "<20 digits><suffix>"; 0 on a match. */
static int parse_ckpt_name(const char *name, const char *suffix, uint64_t *id)
{
    uint64_t v = 0;
    for (int i = 0; i < CKPT_ID_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9') return -1;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (strcmp(name + CKPT_ID_DIGITS, suffix) != 0) return -1;
    *id = v;
    return 0;
}

/* One step of the protocol done: count it and let the fault hook act. */
static void step(ckpt_store_t *s, const char *kind, const char *path)
{
    uint64_t n = atomic_fetch_add(&s->steps, 1) + 1;
    if (s->hook) {
        s->hook(s->hook_ctx, n, kind, path);
    } else if (s->crash_at && n == s->crash_at) {
        fprintf(stderr, "weir: WEIR_CKPT_CRASH_AT=%" PRIu64 ": exiting after %s %s\n", n, kind,
                path);
        _exit(137);
    }
}

/* Removes directory path and the files in it (not counted as steps: used
 * for leftovers and failed writers, whose state no longer matters). */
static int remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0) {
            char *sub = path_join(path, e->d_name);
            if (errno == EISDIR && remove_tree(sub) == 0) {
                weir_free(sub);
                continue;
            }
            weir_free(sub);
            rc = -1;
        }
    }
    closedir(d);
    if (rmdir(path) != 0) rc = -1;
    return rc;
}

/* Ids of final checkpoint directories, sorted descending. With leftovers
 * non-NULL, also collects the names of .tmp/.del directories. */
static int scan_ids(const char *dir, uint64_t **ids, size_t *n, char ***leftovers, size_t *nleft,
                    char *err, size_t errlen)
{
    *ids = NULL, *n = 0;
    if (leftovers) *leftovers = NULL, *nleft = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        return weir_errf(err, errlen, WEIR_EIO, "cannot read %s: %s", dir, strerror(errno));
    }
    size_t cap = 0, capl = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t id;
        if (parse_ckpt_name(e->d_name, "", &id) == 0) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                *ids = weir_realloc(*ids, cap * sizeof **ids);
            }
            (*ids)[(*n)++] = id;
        } else if (leftovers && (parse_ckpt_name(e->d_name, ".tmp", &id) == 0 ||
                                 parse_ckpt_name(e->d_name, ".del", &id) == 0)) {
            if (*nleft == capl) {
                capl = capl ? capl * 2 : 4;
                *leftovers = weir_realloc(*leftovers, capl * sizeof **leftovers);
            }
            (*leftovers)[(*nleft)++] = weir_strdup(e->d_name);
        }
    }
    closedir(d);
    /* Descending insertion sort: a store holds a handful of checkpoints. */
    for (size_t i = 1; i < *n; i++)
        for (size_t j = i; j > 0 && (*ids)[j - 1] < (*ids)[j]; j--) {
            uint64_t t = (*ids)[j];
            (*ids)[j] = (*ids)[j - 1];
            (*ids)[j - 1] = t;
        }
    return 0;
}

static int is_verified(const ckpt_store_t *s, uint64_t id)
{
    for (size_t i = 0; i < s->nverified; i++)
        if (s->verified[i] == id) return 1;
    return 0;
}

static void mark_verified(ckpt_store_t *s, uint64_t id)
{
    if (is_verified(s, id)) return;
    if (s->nverified == s->capverified) {
        s->capverified = s->capverified ? s->capverified * 2 : 8;
        s->verified = weir_realloc(s->verified, s->capverified * sizeof *s->verified);
    }
    s->verified[s->nverified++] = id;
}

/* --- the store ---------------------------------------------------------- */

int ckpt_store_open(const char *datadir, int flags, ckpt_store_t **out, char *err, size_t errlen)
{
    ckpt_store_t *s = weir_calloc(1, sizeof *s);
    s->dir = path_join(datadir, CKPT_DIR_NAME);
    s->read_only = (flags & CKPT_READ_ONLY) != 0;
    s->lock_fd = -1;
    atomic_init(&s->steps, 0);
    if (s->read_only) {
        *out = s;
        return 0;
    }
    int rc;
    struct stat st;
    if (stat(datadir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = weir_errf(err, errlen, WEIR_ENOENT, "data directory %s does not exist", datadir);
        goto fail;
    }
    if (mkdir(s->dir, 0755) == 0) {
        weir_fsync_dir(datadir);
    } else if (errno != EEXIST) {
        rc = weir_errf(err, errlen, WEIR_EIO, "cannot create %s: %s", s->dir, strerror(errno));
        goto fail;
    }
    char *lock = path_join(s->dir, "LOCK");
    s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    weir_free(lock);
    if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno; /* in use only if flock says so (as the log's LOCK) */
        if (s->lock_fd >= 0 && e == EWOULDBLOCK)
            rc = weir_errf(err, errlen, WEIR_EEXIST,
                           "the checkpoints in %s are in use by another weir process (pid %ld)",
                           s->dir, weir_flock_holder(s->lock_fd));
        else
            rc = weir_errf(err, errlen, WEIR_EIO, "cannot lock %s/LOCK: %s", s->dir, strerror(e));
        goto fail;
    }
    uint64_t *ids;
    size_t n, nleft;
    char **left;
    rc = scan_ids(s->dir, &ids, &n, &left, &nleft, err, errlen);
    if (rc) goto fail;
    weir_free(ids);
    for (size_t i = 0; i < nleft; i++) {
        char *p = path_join(s->dir, left[i]);
        if (remove_tree(p) != 0 && !rc)
            rc = weir_errf(err, errlen, WEIR_EIO, "cannot remove unfinished checkpoint %s: %s", p,
                           strerror(errno));
        weir_free(p);
        weir_free(left[i]);
        s->removed++;
    }
    weir_free(left);
    if (rc) goto fail;
    if (nleft) weir_fsync_dir(s->dir);
    const char *crash = getenv("WEIR_CKPT_CRASH_AT");
    if (crash && *crash) s->crash_at = strtoull(crash, NULL, 10);
    *out = s;
    return 0;
fail:
    ckpt_store_close(s);
    return rc;
}

void ckpt_store_close(ckpt_store_t *s)
{
    if (!s) return;
    weir_assert(!s->writing);
    if (s->lock_fd >= 0) close(s->lock_fd);
    weir_free(s->verified);
    weir_free(s->dir);
    weir_free(s);
}

const char *ckpt_store_dir(const ckpt_store_t *s)
{
    return s->dir;
}

uint32_t ckpt_store_removed_leftovers(const ckpt_store_t *s)
{
    return s->removed;
}

void ckpt_store_set_fault_hook(ckpt_store_t *s, ckpt_fault_cb cb, void *ctx)
{
    s->hook = cb;
    s->hook_ctx = ctx;
    s->crash_at = 0;
}

uint64_t ckpt_store_crash_at(const ckpt_store_t *s)
{
    return s->crash_at;
}

/* --- writing ------------------------------------------------------------ */

struct ckpt_writer {
    ckpt_store_t *s;
    uint64_t id;
    char *tmpdir;
    char *pipeline;
    int64_t created_ms;
    ckpt_kv_t *meta;
    size_t nmeta;
    uint32_t partitions;
    /* mu guards everything below: part writers of different threads meet here. */
    pthread_mutex_t mu;
    ckpt_part_info_t *parts;
    uint8_t *part_state; /* 0 not begun, 1 open, 2 written */
    uint32_t open_parts;
    int failed;
};

struct ckpt_part_writer {
    ckpt_writer_t *w;
    int fd;
    char *path;
    ckpt_part_info_t info;
    uint64_t pos;  /* bytes of [0, D) produced so far */
    uint64_t blob; /* blob bytes appended */
    uint8_t *buf;  /* bytes not yet written (DIRECT_ALIGN-aligned) */
    size_t blen;
    int direct;    /* fd is O_DIRECT (see pw_flush) */
    uint64_t written;          /* bytes written to the file */
    uint64_t wb_from, wb_prev; /* writeback started on [wb_prev, wb_from), see pw_writeback */
    uint32_t block_crc; /* CRC of the current block so far */
    uint32_t *table;
    size_t ntable, captable;
};

static ckpt_kv_t *kv_copy(const ckpt_kv_t *kv, size_t n)
{
    if (!n) return NULL;
    ckpt_kv_t *c = weir_calloc(n, sizeof *c);
    for (size_t i = 0; i < n; i++) {
        c[i].key.ptr = weir_strndup(kv[i].key.ptr, kv[i].key.len);
        c[i].key.len = kv[i].key.len;
        char *v = weir_malloc(kv[i].value.len + 1);
        if (kv[i].value.len) memcpy(v, kv[i].value.ptr, kv[i].value.len);
        v[kv[i].value.len] = 0;
        c[i].value.ptr = v;
        c[i].value.len = kv[i].value.len;
    }
    return c;
}

static void kv_free(ckpt_kv_t *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        weir_free((char *)kv[i].key.ptr);
        weir_free((char *)kv[i].value.ptr);
    }
    weir_free(kv);
}

int ckpt_writer_begin(ckpt_store_t *s, const ckpt_write_opts_t *o, ckpt_writer_t **out, char *err,
                      size_t errlen)
{
    if (s->read_only)
        return weir_errf(err, errlen, WEIR_EINVAL, "the checkpoint store %s is open read-only",
                         s->dir);
    if (s->writing)
        return weir_errf(err, errlen, WEIR_EEXIST, "a checkpoint is already being written in %s",
                         s->dir);
    if (o->partitions == 0 || o->partitions > CKPT_MAX_PARTITIONS)
        return weir_errf(err, errlen, WEIR_EINVAL, "a checkpoint holds 1 to %u partitions, not %u",
                         CKPT_MAX_PARTITIONS, o->partitions);
    for (size_t i = 0; i < o->nmeta; i++)
        if (!ckpt_key_ok(o->meta[i].key, 1) || o->meta[i].value.len > CKPT_MAX_META_BYTES)
            return weir_errf(err, errlen, WEIR_EINVAL,
                             "checkpoint key %zu must be 1-%u characters of [A-Za-z0-9_.-] with a "
                             "value of at most %u bytes",
                             i, CKPT_MAX_KEY_LEN, CKPT_MAX_META_BYTES);
    uint64_t *ids;
    size_t n;
    int rc = scan_ids(s->dir, &ids, &n, NULL, NULL, err, errlen);
    if (rc) return rc;
    uint64_t newest = n ? ids[0] : 0;
    weir_free(ids);
    if (s->last_id > newest) newest = s->last_id;
    uint64_t id = o->id ? o->id : newest + 1;
    if (id <= newest || id == UINT64_MAX)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "checkpoint id %" PRIu64 " is not above the newest on disk (%" PRIu64 ")",
                         id, newest);
    char *tmp = ckpt_path(s->dir, id, ".tmp");
    if (mkdir(tmp, 0755) != 0) {
        struct stat st;
        if (errno == ENOENT && stat(s->dir, &st) != 0)
            rc = weir_errf(err, errlen, WEIR_EIO,
                           "the checkpoints directory %s is gone (deleted under this weir?): no "
                           "checkpoint can be written until it is there again (mkdir it; a "
                           "restart makes it)",
                           s->dir);
        else
            rc = weir_errf(err, errlen, WEIR_EIO, "cannot create %s: %s", tmp, strerror(errno));
        weir_free(tmp);
        return rc;
    }
    step(s, "mkdir", tmp);
    ckpt_writer_t *w = weir_calloc(1, sizeof *w);
    w->s = s;
    w->id = id;
    w->tmpdir = tmp;
    w->pipeline = weir_strdup(o->pipeline ? o->pipeline : "");
    w->created_ms = o->created_ms;
    w->meta = kv_copy(o->meta, o->nmeta);
    w->nmeta = o->nmeta;
    w->partitions = o->partitions;
    w->parts = weir_calloc(o->partitions, sizeof *w->parts);
    w->part_state = weir_calloc(o->partitions, 1);
    pthread_mutex_init(&w->mu, NULL);
    s->writing = 1;
    *out = w;
    return 0;
}

uint64_t ckpt_writer_id(const ckpt_writer_t *w)
{
    return w->id;
}

#define WRITEBACK_WINDOW (8u << 20)
#define DIRECT_ALIGN     4096u

/* Writeback as the file grows, a window at a time, waiting for the window
 * before: the closing fsync then has little left to flush, and on ext4
 * (data=ordered) no journal commit carries hundreds of megabytes that the
 * server's own appends — its event log — would wait behind. What is on
 * disk leaves the page cache, which the server's working set needs more.
 * (Advice only: errors surface at the fsync, which is a counted step.)
 * Only for a file written through the page cache (see pw_flush). */
static void pw_writeback(ckpt_part_writer_t *pw)
{
    if (pw->direct || pw->written - pw->wb_from < WRITEBACK_WINDOW) return;
    if (pw->wb_from > pw->wb_prev) {
        (void)sync_file_range(pw->fd, (off_t)pw->wb_prev, (off_t)(pw->wb_from - pw->wb_prev),
                              SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                  SYNC_FILE_RANGE_WAIT_AFTER);
        (void)posix_fadvise(pw->fd, (off_t)pw->wb_prev, (off_t)(pw->wb_from - pw->wb_prev),
                            POSIX_FADV_DONTNEED);
    }
    (void)sync_file_range(pw->fd, (off_t)pw->wb_from, (off_t)(pw->written - pw->wb_from),
                          SYNC_FILE_RANGE_WRITE);
    pw->wb_prev = pw->wb_from;
    pw->wb_from = pw->written;
}

/* From now on through the page cache: for the file's short last piece, or
 * where the filesystem refuses O_DIRECT (tmpfs before Linux 6.6). */
static void pw_buffered(ckpt_part_writer_t *pw)
{
    if (!pw->direct) return;
    int fl = fcntl(pw->fd, F_GETFL);
    if (fl >= 0) (void)fcntl(pw->fd, F_SETFL, fl & ~O_DIRECT);
    pw->direct = 0;
    pw->wb_from = pw->wb_prev = pw->written;
}

/* WHY O_DIRECT. A checkpoint writes as many bytes as the state holds. Through
 * the page cache, the writer allocates that much cache, has it written
 * back and drops it again, and every step of that is kernel work that
 * competes with the server's requests — measured at a million keys: 4% of
 * requests over 0.5 ms while the writer wrote through the cache, 0.7% while
 * it encoded the same state without writing (0.4% without a checkpoint).
 * Written with O_DIRECT from this aligned buffer the bytes go to the device
 * and nowhere else. Full buffers are aligned (WRITE_BUF at offsets that are
 * multiples of it); the last, short piece goes through the cache. */
static int pw_flush(ckpt_part_writer_t *pw, char *err, size_t errlen)
{
    if (!pw->blen) return 0;
    if (pw->blen % DIRECT_ALIGN) pw_buffered(pw);
    int rc = weir_write_all(pw->fd, pw->buf, pw->blen);
    if (rc != 0 && errno == EINVAL && pw->direct) {
        /* Refused after all (or a short write left the rest unaligned): the
         * whole buffer again, through the cache, from where it starts. */
        pw_buffered(pw);
        rc = lseek(pw->fd, (off_t)pw->written, SEEK_SET) < 0 ? -1
             : weir_write_all(pw->fd, pw->buf, pw->blen);
    }
    if (rc != 0)
        return weir_errf(err, errlen, WEIR_EIO, "cannot write %s: %s", pw->path, strerror(errno));
    pw->written += pw->blen;
    pw->blen = 0;
    pw_writeback(pw);
    step(pw->w->s, "write", pw->path);
    return 0;
}

static void pw_push_block(ckpt_part_writer_t *pw)
{
    if (pw->ntable == pw->captable) {
        pw->captable = pw->captable ? pw->captable * 2 : 64;
        pw->table = weir_realloc(pw->table, pw->captable * sizeof *pw->table);
    }
    pw->table[pw->ntable++] = pw->block_crc;
    pw->block_crc = 0;
}

/* Feeds bytes of [0, D): buffered, block CRCs computed on the way. */
static int pw_put(ckpt_part_writer_t *pw, const void *data, size_t len, char *err, size_t errlen)
{
    const uint8_t *p = data;
    while (len) {
        size_t room_block = CKPT_BLOCK_SIZE - (size_t)(pw->pos % CKPT_BLOCK_SIZE);
        size_t n = len;
        if (n > room_block) n = room_block;
        if (n > WRITE_BUF - pw->blen) n = WRITE_BUF - pw->blen;
        memcpy(pw->buf + pw->blen, p, n);
        pw->block_crc = crc32c(pw->block_crc, p, n);
        pw->blen += n;
        pw->pos += n;
        p += n;
        len -= n;
        if (pw->pos % CKPT_BLOCK_SIZE == 0) pw_push_block(pw);
        if (pw->blen == WRITE_BUF) {
            int rc = pw_flush(pw, err, errlen);
            if (rc) return rc;
        }
    }
    return 0;
}

static void pw_free(ckpt_part_writer_t *pw)
{
    if (pw->fd >= 0) close(pw->fd);
    weir_free(pw->path);
    weir_free(pw->buf);
    weir_free(pw->table);
    weir_free(pw);
}

int ckpt_write_part_begin(ckpt_writer_t *w, const ckpt_part_desc_t *d, ckpt_part_writer_t **out,
                          char *err, size_t errlen)
{
    size_t meta_bytes = 0;
    for (size_t i = 0; i < d->nmeta; i++) {
        if (!ckpt_key_ok(d->meta[i].key, 0) || d->meta[i].value.len > CKPT_MAX_META_BYTES)
            return weir_errf(err, errlen, WEIR_EINVAL,
                             "partition %u: key %zu must be 1-%u bytes, its value at most %u",
                             d->partition, i, CKPT_MAX_KEY_LEN, CKPT_MAX_META_BYTES);
        meta_bytes += 2 + d->meta[i].key.len + 4 + d->meta[i].value.len;
    }
    if (meta_bytes > CKPT_MAX_META_BYTES)
        return weir_errf(err, errlen, WEIR_ETOOBIG,
                         "partition %u: %zu bytes of keys and values, over the limit of %u",
                         d->partition, meta_bytes, CKPT_MAX_META_BYTES);
    pthread_mutex_lock(&w->mu);
    int bad = d->partition >= w->partitions ? 1 : w->part_state[d->partition] ? 2 : 0;
    if (!bad) {
        w->part_state[d->partition] = 1;
        w->open_parts++;
    }
    pthread_mutex_unlock(&w->mu);
    if (bad == 1)
        return weir_errf(err, errlen, WEIR_EINVAL, "partition %u is outside 0..%u", d->partition,
                         w->partitions - 1);
    if (bad == 2)
        return weir_errf(err, errlen, WEIR_EEXIST, "partition %u is already in checkpoint %" PRIu64,
                         d->partition, w->id);

    ckpt_part_writer_t *pw = weir_calloc(1, sizeof *pw);
    pw->w = w;
    char name[32];
    ckpt_part_name(name, sizeof name, d->partition);
    pw->path = path_join(w->tmpdir, name);
    pw->info.partition = d->partition;
    pw->info.log_offset = d->log_offset;
    pw->info.decision_offset = d->decision_offset;
    pw->buf = weir_aligned_alloc(DIRECT_ALIGN, WRITE_BUF);
    pw->fd = open(pw->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_DIRECT, 0644);
    pw->direct = pw->fd >= 0;
    if (pw->fd < 0 && errno == EINVAL) /* a filesystem without O_DIRECT */
        pw->fd = open(pw->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int rc = 0;
    if (pw->fd < 0) {
        rc = weir_errf(err, errlen, WEIR_EIO, "cannot create %s: %s", pw->path, strerror(errno));
        goto fail;
    }
    uint8_t h[CKPT_PART_HEADER_SIZE];
    put32(h, PART_MAGIC);
    put16(h + 4, PART_VERSION);
    put16(h + 6, 0);
    put32(h + 8, d->partition);
    put32(h + 12, (uint32_t)meta_bytes);
    put64(h + 16, d->log_offset);
    put64(h + 24, d->decision_offset);
    rc = pw_put(pw, h, sizeof h, err, errlen);
    for (size_t i = 0; !rc && i < d->nmeta; i++) {
        uint8_t len[4];
        put16(len, (uint16_t)d->meta[i].key.len);
        rc = pw_put(pw, len, 2, err, errlen);
        if (!rc) rc = pw_put(pw, d->meta[i].key.ptr, d->meta[i].key.len, err, errlen);
        put32(len, (uint32_t)d->meta[i].value.len);
        if (!rc) rc = pw_put(pw, len, 4, err, errlen);
        if (!rc) rc = pw_put(pw, d->meta[i].value.ptr, d->meta[i].value.len, err, errlen);
    }
    if (rc) goto fail;
    *out = pw;
    return 0;
fail:
    pthread_mutex_lock(&w->mu);
    w->failed = 1;
    w->open_parts--;
    pthread_mutex_unlock(&w->mu);
    pw_free(pw);
    return rc;
}

int ckpt_write_part_append(ckpt_part_writer_t *pw, const void *data, size_t len, char *err,
                           size_t errlen)
{
    int rc = pw_put(pw, data, len, err, errlen);
    if (rc) {
        pthread_mutex_lock(&pw->w->mu);
        pw->w->failed = 1;
        pthread_mutex_unlock(&pw->w->mu);
    }
    pw->blob += len;
    return rc;
}

int ckpt_write_part_end(ckpt_part_writer_t *pw, char *err, size_t errlen)
{
    ckpt_writer_t *w = pw->w;
    if (pw->pos % CKPT_BLOCK_SIZE) pw_push_block(pw);
    /* Table and trailer: outside the blocks, covered by the trailer CRC. */
    size_t tail = pw->ntable * 4 + CKPT_PART_TRAILER_SIZE;
    uint8_t *t = weir_malloc(tail);
    for (size_t i = 0; i < pw->ntable; i++)
        put32(t + 4 * i, pw->table[i]);
    uint8_t *tr = t + pw->ntable * 4;
    put64(tr, pw->blob);
    put32(tr + 8, (uint32_t)pw->ntable);
    uint32_t crc = crc32c(0, t, tail - 4);
    put32(tr + 12, crc);
    int rc = 0;
    if (pw->blen + tail <= WRITE_BUF) {
        memcpy(pw->buf + pw->blen, t, tail);
        pw->blen += tail;
    } else if ((rc = pw_flush(pw, err, errlen)) == 0) {
        pw_buffered(pw);
        if (weir_write_all(pw->fd, t, tail) != 0)
            rc = weir_errf(err, errlen, WEIR_EIO, "cannot write %s: %s", pw->path, strerror(errno));
        else
            step(w->s, "write", pw->path);
    }
    weir_free(t);
    if (!rc) rc = pw_flush(pw, err, errlen);
    if (!rc) {
        if (fsync(pw->fd) != 0)
            rc = weir_errf(err, errlen, WEIR_EIO, "cannot fsync %s: %s", pw->path, strerror(errno));
        else
            step(w->s, "fsync", pw->path);
    }
    pw->info.bytes = pw->pos + tail;
    pw->info.crc = crc;
    pthread_mutex_lock(&w->mu);
    w->open_parts--;
    if (rc) {
        w->failed = 1;
    } else {
        w->parts[pw->info.partition] = pw->info;
        w->part_state[pw->info.partition] = 2;
    }
    pthread_mutex_unlock(&w->mu);
    pw_free(pw);
    return rc;
}

int ckpt_write_part(ckpt_writer_t *w, const ckpt_part_desc_t *d, const void *blob, size_t len,
                    char *err, size_t errlen)
{
    ckpt_part_writer_t *pw;
    int rc = ckpt_write_part_begin(w, d, &pw, err, errlen);
    if (rc) return rc;
    rc = ckpt_write_part_append(pw, blob, len, err, errlen);
    int rc2 = ckpt_write_part_end(pw, rc ? NULL : err, rc ? 0 : errlen);
    return rc ? rc : rc2;
}

static void writer_free(ckpt_writer_t *w, int remove_tmp)
{
    if (remove_tmp) remove_tree(w->tmpdir);
    w->s->writing = 0;
    pthread_mutex_destroy(&w->mu);
    weir_free(w->tmpdir);
    weir_free(w->pipeline);
    kv_free(w->meta, w->nmeta);
    weir_free(w->parts);
    weir_free(w->part_state);
    weir_free(w);
}

void ckpt_writer_abort(ckpt_writer_t *w)
{
    weir_assert(w->open_parts == 0);
    writer_free(w, 1);
}

int ckpt_writer_commit(ckpt_writer_t *w, char *err, size_t errlen)
{
    ckpt_store_t *s = w->s;
    weir_assert(w->open_parts == 0);
    int rc = 0;
    if (w->failed) {
        rc = weir_errf(err, errlen, WEIR_EIO,
                       "checkpoint %" PRIu64 " not committed: writing a partition failed", w->id);
        writer_free(w, 1);
        return rc;
    }
    for (uint32_t p = 0; p < w->partitions; p++)
        if (w->part_state[p] != 2) {
            rc = weir_errf(err, errlen, WEIR_EINVAL,
                           "checkpoint %" PRIu64 " not committed: partition %u was not written",
                           w->id, p);
            writer_free(w, 1);
            return rc;
        }
    ckpt_info_t info = {0};
    info.id = w->id;
    info.created_ms = w->created_ms ? w->created_ms : weir_wall_ms();
    info.pipeline = w->pipeline;
    info.partitions = w->partitions;
    info.parts = w->parts;
    info.meta = w->meta;
    info.nmeta = w->nmeta;
    weir_buf_t m = WEIR_BUF_INIT;
    ckpt_manifest_encode(&info, &m);

    char *mpath = path_join(w->tmpdir, CKPT_MANIFEST_NAME);
    char *final = ckpt_path(s->dir, w->id, "");
    int renamed = 0;
    int fd = open(mpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || weir_write_all(fd, m.data, m.len) != 0) {
        rc = weir_errf(err, errlen, WEIR_EIO, "cannot write %s: %s", mpath, strerror(errno));
        goto out;
    }
    step(s, "write", mpath);
    if (fsync(fd) != 0) {
        rc = weir_errf(err, errlen, WEIR_EIO, "cannot fsync %s: %s", mpath, strerror(errno));
        goto out;
    }
    step(s, "fsync", mpath);
    if (weir_fsync_dir(w->tmpdir) != 0) {
        rc = weir_errf(err, errlen, WEIR_EIO, "cannot fsync %s: %s", w->tmpdir, strerror(errno));
        goto out;
    }
    step(s, "fsync", w->tmpdir);
    if (rename(w->tmpdir, final) != 0) {
        rc = weir_errf(err, errlen, WEIR_EIO, "cannot rename %s to %s: %s", w->tmpdir, final,
                       strerror(errno));
        goto out;
    }
    step(s, "rename", final);
    renamed = 1;
    mark_verified(s, w->id);
    if (w->id > s->last_id) s->last_id = w->id;
    /* A failure now leaves the checkpoint visible, maybe not durable: the
     * rename cannot be undone safely, but the caller must know. */
    if (weir_fsync_dir(s->dir) != 0)
        rc = weir_errf(err, errlen, WEIR_EIO,
                       "checkpoint %" PRIu64 " is in place but fsync of %s failed: %s", w->id,
                       s->dir, strerror(errno));
    else
        step(s, "fsync", s->dir);
out:
    if (fd >= 0) close(fd);
    weir_free(mpath);
    weir_free(final);
    buf_free(&m);
    writer_free(w, rc != 0 && !renamed);
    return rc;
}

/* --- part files --------------------------------------------------------- */

typedef struct frame {
    uint64_t size, data_end, blob;
    uint32_t nblocks, crc, meta_bytes, partition;
    uint64_t log_offset, decision_offset;
} frame_t;

/* Trailer (the last 16 bytes) → data_end, number of blocks. */
static int frame_trailer(const uint8_t *tr, uint64_t size, frame_t *f, const char *name, char *err,
                         size_t errlen)
{
    f->size = size;
    f->blob = get64(tr);
    f->nblocks = get32(tr + 8);
    f->crc = get32(tr + 12);
    uint64_t tail = (uint64_t)f->nblocks * 4 + CKPT_PART_TRAILER_SIZE;
    uint64_t at = size - CKPT_PART_TRAILER_SIZE;
    if (tail > size - CKPT_PART_HEADER_SIZE)
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "%s: trailer at byte %" PRIu64 ": a table of %u blocks does not fit a "
                         "%" PRIu64 "-byte file",
                         name, at, f->nblocks, size);
    f->data_end = size - tail;
    if ((f->data_end + CKPT_BLOCK_SIZE - 1) / CKPT_BLOCK_SIZE != f->nblocks)
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "%s: trailer at byte %" PRIu64 ": %u blocks, but %" PRIu64
                         " bytes of data need %" PRIu64,
                         name, at, f->nblocks, f->data_end,
                         (f->data_end + CKPT_BLOCK_SIZE - 1) / CKPT_BLOCK_SIZE);
    return 0;
}

/* tail = bytes [data_end, size): the table and the trailer. */
static int frame_table(const uint8_t *tail, const frame_t *f, const char *name, char *err,
                       size_t errlen)
{
    uint32_t got = crc32c(0, tail, f->size - f->data_end - 4);
    if (got != f->crc)
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "%s: block table and trailer at bytes [%" PRIu64 ", %" PRIu64
                         ") fail their CRC32C",
                         name, f->data_end, f->size);
    return 0;
}

static int frame_header(const uint8_t *h, frame_t *f, const char *name, char *err, size_t errlen)
{
    if (get32(h) != PART_MAGIC)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: byte 0: not a weir checkpoint part file",
                         name);
    if (get16(h + 4) != PART_VERSION || get16(h + 6) != 0)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: byte 4: unknown version %u", name,
                         get16(h + 4));
    f->partition = get32(h + 8);
    f->meta_bytes = get32(h + 12);
    f->log_offset = get64(h + 16);
    f->decision_offset = get64(h + 24);
    if (f->meta_bytes > CKPT_MAX_META_BYTES ||
        CKPT_PART_HEADER_SIZE + (uint64_t)f->meta_bytes + f->blob != f->data_end ||
        f->blob > f->data_end)
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "%s: byte 12: a %u-byte key/value section and a %" PRIu64
                         "-byte blob (trailer) do not fill the %" PRIu64 " bytes before the table",
                         name, f->meta_bytes, f->blob, f->data_end);
    return 0;
}

static int parse_kv(const uint8_t *p, uint32_t len, ckpt_kv_t **out, size_t *n, const char *name,
                    char *err, size_t errlen)
{
    *out = NULL, *n = 0;
    size_t count = 0, cap = 0;
    for (uint32_t at = 0; at < len;) {
        if (len - at < 2 || get16(p + at) == 0 || len - at - 2 < get16(p + at) ||
            len - at - 2 - get16(p + at) < 4 ||
            len - at - 6 - get16(p + at) < get32(p + at + 2 + get16(p + at))) {
            weir_free(*out);
            *out = NULL;
            return weir_errf(err, errlen, WEIR_ECORRUPT,
                             "%s: byte %u: key/value entry runs past its section", name,
                             CKPT_PART_HEADER_SIZE + at);
        }
        uint16_t kl = get16(p + at);
        uint32_t vl = get32(p + at + 2 + kl);
        if (count == cap) {
            cap = cap ? cap * 2 : 4;
            *out = weir_realloc(*out, cap * sizeof **out);
        }
        (*out)[count].key = (weir_slice_t){(const char *)p + at + 2, kl};
        (*out)[count].value = (weir_slice_t){(const char *)p + at + 6 + kl, vl};
        count++;
        at += 6 + kl + vl;
    }
    *n = count;
    return 0;
}

int ckpt_part_parse(const void *file, size_t size, int full, const char *name, ckpt_part_t *part,
                    ckpt_kv_t **meta, uint32_t *crc, char *err, size_t errlen)
{
    const uint8_t *b = file;
    frame_t f = {0};
    *meta = NULL;
    memset(part, 0, sizeof *part);
    if (size < CKPT_PART_HEADER_SIZE + CKPT_PART_TRAILER_SIZE + 4)
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "%s: %zu bytes, shorter than any part file: cut short at byte %zu", name,
                         size, size);
    int rc = frame_trailer(b + size - CKPT_PART_TRAILER_SIZE, size, &f, name, err, errlen);
    if (!rc) rc = frame_table(b + f.data_end, &f, name, err, errlen);
    if (rc) return rc;
    if (full) {
        for (uint32_t i = 0; i < f.nblocks; i++) {
            uint64_t start = (uint64_t)i * CKPT_BLOCK_SIZE;
            uint64_t end =
                start + CKPT_BLOCK_SIZE < f.data_end ? start + CKPT_BLOCK_SIZE : f.data_end;
            if (crc32c(0, b + start, end - start) != get32(b + f.data_end + 4 * (uint64_t)i))
                return weir_errf(err, errlen, WEIR_ECORRUPT,
                                 "%s: bytes [%" PRIu64 ", %" PRIu64
                                 ") (block %u) fail their CRC32C",
                                 name, start, end, i);
        }
    }
    if ((rc = frame_header(b, &f, name, err, errlen))) return rc;
    size_t n;
    if ((rc = parse_kv(b + CKPT_PART_HEADER_SIZE, f.meta_bytes, meta, &n, name, err, errlen)))
        return rc;
    part->partition = f.partition;
    part->log_offset = f.log_offset;
    part->decision_offset = f.decision_offset;
    part->blob.ptr = (const char *)b + CKPT_PART_HEADER_SIZE + f.meta_bytes;
    part->blob.len = f.blob;
    part->meta = *meta;
    part->nmeta = n;
    if (crc) *crc = f.crc;
    return 0;
}

int ckpt_kv_find(const ckpt_kv_t *kv, size_t n, const char *key, weir_slice_t *value)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (kv[i].key.len == kl && !memcmp(kv[i].key.ptr, key, kl)) {
            *value = kv[i].value;
            return 1;
        }
    return 0;
}

/* A part file mapped and checked against its manifest line. */
typedef struct mapped {
    void *map;
    size_t size;
    ckpt_part_t part;
    ckpt_kv_t *meta;
} mapped_t;

static void mapped_free(mapped_t *m)
{
    if (m->map) munmap(m->map, m->size);
    weir_free(m->meta);
    memset(m, 0, sizeof *m);
}

/* Checks part file p of checkpoint directory dir against the manifest line
 * pi. full: every block, keeping the file mapped in *m (if m is non-NULL). */
static int check_part(const char *dir, const ckpt_part_info_t *pi, int full, mapped_t *m, char *err,
                      size_t errlen)
{
    char name[32];
    ckpt_part_name(name, sizeof name, pi->partition);
    char *path = path_join(dir, name);
    int rc = 0;
    uint8_t *tail = NULL;
    mapped_t local = {0};
    if (!m) m = &local;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = weir_errf(err, errlen, errno == ENOENT ? WEIR_ECORRUPT : WEIR_EIO, "%s: %s", path,
                       errno == ENOENT ? "missing" : strerror(errno));
        goto out;
    }
    if ((uint64_t)st.st_size != pi->bytes) {
        rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                       "%s: %" PRIu64 " bytes, the manifest lists %" PRIu64 " (%s at byte %" PRIu64
                       ")",
                       path, (uint64_t)st.st_size, pi->bytes,
                       (uint64_t)st.st_size < pi->bytes ? "cut short" : "extra bytes",
                       (uint64_t)st.st_size < pi->bytes ? (uint64_t)st.st_size : pi->bytes);
        goto out;
    }
    frame_t f = {0};
    uint32_t crc;
    if (full) {
        m->size = (size_t)st.st_size;
        m->map = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m->map == MAP_FAILED) {
            m->map = NULL;
            rc = weir_errf(err, errlen, WEIR_EIO, "cannot map %s: %s", path, strerror(errno));
            goto out;
        }
        rc = ckpt_part_parse(m->map, m->size, 1, path, &m->part, &m->meta, &crc, err, errlen);
        if (rc) goto out;
        f.partition = m->part.partition;
        f.log_offset = m->part.log_offset;
        f.decision_offset = m->part.decision_offset;
    } else {
        /* Quick: header, table and trailer; the blocks are not read. The
         * manifest's size (>= 52, checked at parse) is the file's. */
        uint8_t tr[CKPT_PART_TRAILER_SIZE], h[CKPT_PART_HEADER_SIZE];
        uint64_t size = (uint64_t)st.st_size;
        if (weir_read_at(fd, tr, sizeof tr, size - sizeof tr) != (ssize_t)sizeof tr ||
            weir_read_at(fd, h, sizeof h, 0) != (ssize_t)sizeof h)
            goto read_error;
        if ((rc = frame_trailer(tr, size, &f, path, err, errlen))) goto out;
        tail = weir_malloc(size - f.data_end);
        if (weir_read_at(fd, tail, size - f.data_end, f.data_end) != (ssize_t)(size - f.data_end))
            goto read_error;
        if ((rc = frame_table(tail, &f, path, err, errlen))) goto out;
        if ((rc = frame_header(h, &f, path, err, errlen))) goto out;
        crc = f.crc;
    }
    if (crc != pi->crc)
        rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                       "%s: trailer at byte %" PRIu64 ": CRC %08x, the manifest lists %08x "
                       "(a part file from another checkpoint?)",
                       path, pi->bytes - 4, crc, pi->crc);
    else if (f.partition != pi->partition || f.log_offset != pi->log_offset ||
             f.decision_offset != pi->decision_offset)
        rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                       "%s: byte 8: partition %u at offsets %" PRIu64 "/%" PRIu64
                       ", the manifest lists partition %u at %" PRIu64 "/%" PRIu64,
                       path, f.partition, f.log_offset, f.decision_offset, pi->partition,
                       pi->log_offset, pi->decision_offset);
    goto out;
read_error:
    rc = weir_errf(err, errlen, WEIR_EIO, "cannot read %s: %s", path, strerror(errno));
out:
    if (fd >= 0) close(fd);
    weir_free(tail);
    weir_free(path);
    if (rc || m == &local) mapped_free(m);
    return rc;
}

/* --- checking, listing, opening ----------------------------------------- */

void ckpt_info_free(ckpt_info_t *info)
{
    weir_free(info->dir);
    weir_free(info->pipeline);
    weir_free(info->parts);
    kv_free(info->meta, info->nmeta);
    memset(info, 0, sizeof *info);
}

/* Reads and parses dir/MANIFEST into info (dir and id already set). */
static int read_manifest(ckpt_info_t *info, char *err, size_t errlen)
{
    char *path = path_join(info->dir, CKPT_MANIFEST_NAME);
    int rc = 0;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = weir_errf(err, errlen, errno == ENOENT ? WEIR_ECORRUPT : WEIR_EIO, "%s: %s", path,
                       errno == ENOENT ? "missing" : strerror(errno));
        goto out;
    }
    if ((uint64_t)st.st_size > CKPT_MAX_MANIFEST) {
        rc = weir_errf(err, errlen, WEIR_ECORRUPT, "%s: %" PRIu64 " bytes, over the limit", path,
                       (uint64_t)st.st_size);
        goto out;
    }
    size_t n = (size_t)st.st_size;
    buf = weir_malloc(n ? n : 1);
    if (weir_read_at(fd, buf, n, 0) != (ssize_t)n) {
        rc = weir_errf(err, errlen, WEIR_EIO, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    uint64_t dir_id = info->id;
    rc = ckpt_manifest_parse(buf, n, path, info, err, errlen);
    if (!rc && info->id != dir_id)
        rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                       "%s line 2 (byte 18): names checkpoint %" PRIu64 " but lies in %" PRIu64,
                       path, info->id, dir_id);
    info->bytes = n;
    for (uint32_t p = 0; !rc && p < info->partitions; p++)
        info->bytes += info->parts[p].bytes;
    if (rc) info->id = dir_id;
out:
    if (fd >= 0) close(fd);
    weir_free(buf);
    weir_free(path);
    return rc;
}

int ckpt_check(const char *dir, uint64_t id, int level, ckpt_info_t *info)
{
    memset(info, 0, sizeof *info);
    info->id = id;
    info->dir = weir_strdup(dir);
    int rc = read_manifest(info, info->problem, sizeof info->problem);
    for (uint32_t p = 0; !rc && p < info->partitions; p++) {
        rc = check_part(dir, &info->parts[p], level == CKPT_CHECK_FULL, NULL, info->problem,
                        sizeof info->problem);
    }
    info->status = rc;
    return rc;
}

int ckpt_list(ckpt_store_t *s, int level, ckpt_info_t **out, size_t *n, char *err, size_t errlen)
{
    uint64_t *ids;
    size_t count;
    *out = NULL, *n = 0;
    int rc = scan_ids(s->dir, &ids, &count, NULL, NULL, err, errlen);
    if (rc) return rc;
    ckpt_info_t *list = weir_calloc(count ? count : 1, sizeof *list);
    for (size_t i = 0; i < count; i++) {
        char *dir = ckpt_path(s->dir, ids[i], "");
        if (ckpt_check(dir, ids[i], level, &list[i]) == 0 && level == CKPT_CHECK_FULL)
            mark_verified(s, ids[i]);
        weir_free(dir);
    }
    weir_free(ids);
    *out = list;
    *n = count;
    return 0;
}

void ckpt_list_free(ckpt_info_t *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ckpt_info_free(&list[i]);
    weir_free(list);
}

struct ckpt {
    ckpt_info_t info;
    mapped_t *parts;
};

void ckpt_close(ckpt_t *c)
{
    if (!c) return;
    for (uint32_t p = 0; c->parts && p < c->info.partitions; p++)
        mapped_free(&c->parts[p]);
    weir_free(c->parts);
    ckpt_info_free(&c->info);
    weir_free(c);
}

/* Verifying every block of every part is reading and CRC-ing the whole
 * checkpoint — gigabytes at a million keys, on the path to ready — so the
 * parts are checked on as many threads as there are cores. The error
 * reported is the first failing partition's, whatever the timing. */
typedef struct check_job {
    ckpt_t *c;
    _Atomic uint32_t next;
    int *rcs;
    char (*errs)[512];
} check_job_t;

static void *check_main(void *arg)
{
    check_job_t *j = arg;
    uint32_t p;
    while ((p = atomic_fetch_add(&j->next, 1)) < j->c->info.partitions)
        j->rcs[p] = check_part(j->c->info.dir, &j->c->info.parts[p], 1, &j->c->parts[p], j->errs[p],
                               sizeof j->errs[p]);
    return NULL;
}

static int check_parts(ckpt_t *c, char *err, size_t errlen)
{
    uint32_t n = c->info.partitions;
    check_job_t j = {c, 0, weir_calloc(n, sizeof *j.rcs), weir_calloc(n, sizeof *j.errs)};
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t nt = cores < 1 ? 1 : (uint32_t)cores;
    if (nt > n) nt = n;
    pthread_t th[64];
    if (nt > 64) nt = 64;
    uint32_t started = 0;
    for (uint32_t i = 1; i < nt; i++)
        if (pthread_create(&th[started], NULL, check_main, &j) == 0) started++;
    check_main(&j);
    for (uint32_t i = 0; i < started; i++) pthread_join(th[i], NULL);
    int rc = 0;
    for (uint32_t p = 0; p < n && !rc; p++)
        if ((rc = j.rcs[p]) != 0) snprintf(err, errlen, "%s", j.errs[p]);
    weir_free(j.rcs);
    weir_free(j.errs);
    return rc;
}

int ckpt_open(ckpt_store_t *s, uint64_t id, ckpt_t **out, char *err, size_t errlen)
{
    char *dir = ckpt_path(s->dir, id, "");
    struct stat st;
    if (stat(dir, &st) != 0) {
        int rc = weir_errf(err, errlen, WEIR_ENOENT, "no checkpoint %" PRIu64 " in %s", id, s->dir);
        weir_free(dir);
        return rc;
    }
    ckpt_t *c = weir_calloc(1, sizeof *c);
    c->info.id = id;
    c->info.dir = dir;
    int rc = read_manifest(&c->info, err, errlen);
    if (!rc) {
        c->parts = weir_calloc(c->info.partitions, sizeof *c->parts);
        rc = check_parts(c, err, errlen);
    }
    if (rc) {
        ckpt_close(c);
        return rc;
    }
    mark_verified(s, id);
    *out = c;
    return 0;
}

int ckpt_open_newest_valid(ckpt_store_t *s, ckpt_t **out, ckpt_skip_cb skip_cb, void *ctx,
                           char *err, size_t errlen)
{
    uint64_t *ids;
    size_t n;
    *out = NULL;
    int rc = scan_ids(s->dir, &ids, &n, NULL, NULL, err, errlen);
    if (rc) return rc;
    char why[512];
    for (size_t i = 0; i < n; i++) {
        if (ckpt_open(s, ids[i], out, why, sizeof why) == 0) {
            weir_free(ids);
            return 0;
        }
        if (skip_cb) skip_cb(ctx, ids[i], why);
    }
    weir_free(ids);
    if (n == 0) return weir_errf(err, errlen, WEIR_ENOENT, "no checkpoints in %s", s->dir);
    return weir_errf(err, errlen, WEIR_ENOENT,
                     "none of the %zu checkpoints in %s verifies (last problem: %s)", n, s->dir,
                     why);
}

const ckpt_info_t *ckpt_info(const ckpt_t *c)
{
    return &c->info;
}

const ckpt_part_t *ckpt_part(const ckpt_t *c, uint32_t p)
{
    weir_assert(p < c->info.partitions);
    return &c->parts[p].part;
}

/* --- pruning ------------------------------------------------------------ */

/* Removes checkpoint id: rename to .del (one step: it is gone), then its
 * files and directory, each a step. */
static int remove_ckpt(ckpt_store_t *s, uint64_t id, char *err, size_t errlen)
{
    char *from = ckpt_path(s->dir, id, "");
    char *to = ckpt_path(s->dir, id, ".del");
    int rc = 0;
    DIR *d = NULL;
    if (rename(from, to) != 0) {
        rc = weir_errf(err, errlen, WEIR_EIO, "cannot rename %s: %s", from, strerror(errno));
        goto out;
    }
    step(s, "rename", to);
    if (weir_fsync_dir(s->dir) != 0) {
        rc = weir_errf(err, errlen, WEIR_EIO, "cannot fsync %s: %s", s->dir, strerror(errno));
        goto out;
    }
    step(s, "fsync", s->dir);
    d = opendir(to);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = path_join(to, e->d_name);
        if (unlink(p) != 0) {
            rc = weir_errf(err, errlen, WEIR_EIO, "cannot remove %s: %s", p, strerror(errno));
            weir_free(p);
            goto out;
        }
        step(s, "unlink", p);
        weir_free(p);
    }
    if (rmdir(to) != 0) {
        rc = weir_errf(err, errlen, WEIR_EIO, "cannot remove %s: %s", to, strerror(errno));
        goto out;
    }
    step(s, "rmdir", to);
out:
    if (d) closedir(d);
    weir_free(from);
    weir_free(to);
    return rc;
}

int ckpt_remove(ckpt_store_t *s, uint64_t id, char *err, size_t errlen)
{
    if (s->read_only)
        return weir_errf(err, errlen, WEIR_EINVAL, "the checkpoint store %s is open read-only",
                         s->dir);
    return remove_ckpt(s, id, err, errlen);
}

int ckpt_prune(ckpt_store_t *s, uint32_t keep, uint32_t *deleted, char *err, size_t errlen)
{
    if (deleted) *deleted = 0;
    if (s->read_only)
        return weir_errf(err, errlen, WEIR_EINVAL, "the checkpoint store %s is open read-only",
                         s->dir);
    if (keep == 0) return weir_errf(err, errlen, WEIR_EINVAL, "prune must keep at least one");
    uint64_t *ids;
    size_t n;
    int rc = scan_ids(s->dir, &ids, &n, NULL, NULL, err, errlen);
    if (rc) return rc;
    uint32_t valid = 0;
    size_t i = 0;
    for (; i < n && valid < keep; i++) {
        if (!is_verified(s, ids[i])) {
            ckpt_info_t info;
            char *dir = ckpt_path(s->dir, ids[i], "");
            if (ckpt_check(dir, ids[i], CKPT_CHECK_FULL, &info) == 0) mark_verified(s, ids[i]);
            ckpt_info_free(&info);
            weir_free(dir);
        }
        if (is_verified(s, ids[i])) valid++;
    }
    /* ids[0..i) hold the `keep` newest valid ones (and failing ones newer
     * than the oldest of them); everything from i on is older. */
    for (; valid == keep && i < n && !rc; i++) {
        rc = remove_ckpt(s, ids[i], err, errlen);
        if (!rc && deleted) (*deleted)++;
    }
    weir_free(ids);
    return rc;
}
