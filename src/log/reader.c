/* reader.c — log readers: from an offset or a time, across segments, while
 * appends go on. Every batch returned is verified (CRC, structure, offset
 * chain); a bad one is an error naming the file and byte offset. A reader
 * reads only what is committed (whole batches the partition has accounted),
 * so a batch being written is never mistaken for a torn one. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/error.h"
#include "log/part.h"

#define READ_CHUNK (1u << 20)

struct log_reader {
    log_part_t *p;
    uint64_t seg_base; /* segment being read */
    char *path;
    int fd;
    uint64_t end;   /* committed bytes of this segment, as last seen */
    uint64_t checked; /* its bytes verified at open (log_segment_t.checked) */
    int seg_closed; /* a later segment exists: end is final */
    uint64_t next_seg_base;

    unsigned char *buf;
    size_t cap, have, at; /* buf holds file bytes [file_pos, file_pos + have) */
    uint64_t file_pos;

    uint64_t expect;   /* base offset the next batch must have */
    uint64_t want;     /* skip records below this offset */
    int64_t want_ts;   /* with by_time: skip records until one has ts >= want_ts */
    int by_time;
    batch_iter_t it;
    int in_batch;
};

static int reader_enter_segment(log_reader_t *r, uint64_t base, uint64_t pos, uint64_t expect,
                                char *err, size_t errlen)
{
    if (r->fd >= 0) close(r->fd);
    weir_free(r->path);
    r->path = seg_path(r->p->dir, base, ".seg");
    r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return weir_errf(err, errlen, errno == ENOENT ? WEIR_ERANGE : WEIR_EIO,
                         "cannot open %s: %s", r->path, strerror(errno));
    r->seg_base = base;
    r->file_pos = pos;
    r->have = r->at = 0;
    r->expect = expect;
    r->end = r->checked = 0;
    r->seg_closed = 0;
    return 0;
}

/* Refreshes what is committed in the current segment. Takes the lock. */
static int reader_refresh(log_reader_t *r, char *err, size_t errlen)
{
    log_part_t *p = r->p;
    pthread_mutex_lock(&p->mu);
    int i = part_find_segment(p, r->seg_base);
    int gone = i < 0 || p->segs[i].base != r->seg_base;
    if (!gone) {
        r->end = p->segs[i].size;
        r->checked = p->segs[i].checked;
        r->seg_closed = (uint32_t)i + 1 < p->nsegs;
        if (r->seg_closed) r->next_seg_base = p->segs[i + 1].base;
    }
    pthread_mutex_unlock(&p->mu);
    if (gone)
        return weir_errf(err, errlen, WEIR_ERANGE,
                         "segment %s was deleted by retention while being read", r->path);
    return 0;
}

static log_reader_t *reader_new(log_part_t *p)
{
    log_reader_t *r = weir_calloc(1, sizeof *r);
    r->p = p;
    r->fd = -1;
    r->cap = READ_CHUNK;
    r->buf = weir_malloc(r->cap);
    return r;
}

/* Creates a reader at byte pos of segment `base` (where offset `expect`
 * starts), skipping records below `want`. Called with p->mu held; releases it. */
static int reader_start(log_part_t *p, uint64_t base, uint64_t pos, uint64_t expect, uint64_t want,
                        log_reader_t **out, char *err, size_t errlen)
{
    pthread_mutex_unlock(&p->mu);
    log_reader_t *r = reader_new(p);
    int rc = reader_enter_segment(r, base, pos, expect, err, errlen);
    if (rc) {
        log_reader_close(r);
        return rc;
    }
    r->want = want;
    *out = r;
    return 0;
}

int log_reader_open(log_part_t *p, uint64_t from_offset, log_reader_t **out, char *err,
                    size_t errlen)
{
    pthread_mutex_lock(&p->mu);
    uint64_t start = p->segs[0].base;
    if (from_offset < start) {
        pthread_mutex_unlock(&p->mu);
        return weir_errf(err, errlen, WEIR_ERANGE,
                         "partition %u: offset %" PRIu64 " is before the log start %" PRIu64
                         " (deleted by retention)",
                         p->id, from_offset, start);
    }
    const log_segment_t *s = &p->segs[part_find_segment(p, from_offset)];
    /* The last index entry at or below the offset (the predicate holds for a
     * prefix of the entries, so a binary search finds its end). */
    uint64_t pos = 0, expect = s->base;
    int lo = 0, hi = (int)s->nidx - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (s->base + s->idx[mid].rel <= from_offset) {
            pos = s->idx[mid].pos;
            expect = s->base + s->idx[mid].rel;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return reader_start(p, s->base, pos, expect, from_offset, out, err, errlen);
}

int log_reader_open_time(log_part_t *p, int64_t from_ts, log_reader_t **out, char *err,
                         size_t errlen)
{
    pthread_mutex_lock(&p->mu);
    uint32_t i = 0;
    while (i + 1 < p->nsegs && (p->segs[i].size == 0 || p->segs[i].max_ts < from_ts)) i++;
    const log_segment_t *s = &p->segs[i];
    uint64_t pos = 0, expect = s->base;
    /* The last entry with everything before it older than from_ts. */
    int lo = 0, hi = (int)s->nidx - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (s->idx[mid].max_ts_before < from_ts) {
            pos = s->idx[mid].pos;
            expect = s->base + s->idx[mid].rel;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    int rc = reader_start(p, s->base, pos, expect, expect, out, err, errlen);
    if (rc == 0) {
        (*out)->want_ts = from_ts;
        (*out)->by_time = 1;
    }
    return rc;
}

/* Makes buf hold at least need bytes from the current position (within the
 * committed end). Returns 1 if it does, 0 if the committed data is shorter,
 * or an error. */
static int reader_fill(log_reader_t *r, size_t need, char *err, size_t errlen)
{
    if (r->have - r->at >= need) return 1;
    uint64_t cur = r->file_pos + r->at;
    if (cur + need > r->end) return 0;
    memmove(r->buf, r->buf + r->at, r->have - r->at);
    r->have -= r->at;
    r->file_pos = cur;
    r->at = 0;
    if (need > r->cap) {
        r->cap = need;
        r->buf = weir_realloc(r->buf, r->cap);
    }
    while (r->have < need) {
        size_t want = r->cap - r->have;
        uint64_t left = r->end - (r->file_pos + r->have);
        if (want > left) want = (size_t)left;
        ssize_t n = pread(r->fd, r->buf + r->have, want, (off_t)(r->file_pos + r->have));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return weir_errf(err, errlen, WEIR_EIO, "read %s: %s", r->path, strerror(errno));
        if (n == 0)
            return weir_errf(err, errlen, WEIR_ECORRUPT,
                             "%s: file ends at byte offset %" PRIu64 ", before its committed size %" PRIu64,
                             r->path, r->file_pos + r->have, r->end);
        r->have += (size_t)n;
    }
    return 1;
}

int log_reader_next(log_reader_t *r, log_rec_t *rec, char *err, size_t errlen)
{
    for (;;) {
        if (r->in_batch) {
            while (batch_iter_next(&r->it, rec)) {
                if (rec->offset < r->want) continue;
                if (r->by_time) {
                    if (rec->ts < r->want_ts) continue;
                    r->by_time = 0; /* from here on, everything in offset order */
                }
                return 1;
            }
            r->in_batch = 0;
        }
        uint64_t cur = r->file_pos + r->at;
        if (cur >= r->end) {
            int rc = reader_refresh(r, err, errlen);
            if (rc) return rc;
            if (cur < r->end) continue;
            if (!r->seg_closed) return 0;
            if (r->next_seg_base != r->expect)
                return weir_errf(err, errlen, WEIR_ECORRUPT,
                                 "%s ends at offset %" PRIu64 " but the next segment starts at %" PRIu64,
                                 r->path, r->expect, r->next_seg_base);
            rc = reader_enter_segment(r, r->next_seg_base, 0, r->expect, err, errlen);
            if (rc) return rc;
            continue;
        }
        int rc = reader_fill(r, BATCH_HEADER_SIZE, err, errlen);
        batch_info_t info;
        batch_status_t bs = BATCH_SHORT;
        if (rc == 1) {
            bs = batch_peek(r->buf + r->at, r->have - r->at, &info);
            if (bs == BATCH_OK) {
                rc = reader_fill(r, info.size, err, errlen);
                /* CHECKED ONCE. A batch the open scan verified (the active
                 * segment's, and a closed one's without a usable index) is
                 * not checked again: the log is append-only, so its bytes are
                 * the ones checked, and a full replay spent a twentieth of
                 * its instructions checking every batch twice. The header
                 * (batch_peek) and the offset chain still are. */
                if (rc == 1)
                    bs = cur + info.size <= r->checked ? BATCH_OK
                                                       : batch_check(r->buf + r->at, r->have - r->at, &info);
                else
                    bs = BATCH_SHORT;
            }
        }
        if (rc < 0) return rc;
        if (bs != BATCH_OK)
            return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: byte offset %" PRIu64 ": %s", r->path,
                             cur, bs == BATCH_SHORT ? "batch runs past the committed end" : batch_status_str(bs));
        if (info.base != r->expect)
            return weir_errf(err, errlen, WEIR_ECORRUPT,
                             "%s: byte offset %" PRIu64 ": batch has base offset %" PRIu64
                             ", expected %" PRIu64,
                             r->path, cur, info.base, r->expect);
        const unsigned char *batch = r->buf + r->at;
        r->at += info.size;
        r->expect = info.base + info.count;
        if (r->expect <= r->want) continue;
        if (r->by_time && info.max_ts < r->want_ts) continue;
        batch_iter_init(&r->it, batch, &info);
        r->in_batch = 1;
    }
}

void log_reader_close(log_reader_t *r)
{
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    weir_free(r->path);
    weir_free(r->buf);
    weir_free(r);
}
