/* segment.c — segment files and their indexes (see segment.h; formats and
 * recovery rules in log.h). */
#include "log/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/crc32c.h"
#include "base/error.h"
#include "base/fileio.h"

#define SCAN_CHUNK (1u << 20)

char *seg_path(const char *dir, uint64_t base, const char *ext)
{
    size_t n = strlen(dir) + 1 + SEG_NAME_DIGITS + strlen(ext) + 1;
    char *p = weir_malloc(n);
    snprintf(p, n, "%s/%020" PRIu64 "%s", dir, base, ext);
    return p;
}

int seg_parse_name(const char *name, uint64_t *base)
{
    uint64_t v = 0;
    for (int i = 0; i < SEG_NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9') return -1;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (strcmp(name + SEG_NAME_DIGITS, ".seg") != 0) return -1;
    *base = v;
    return 0;
}

static void index_push(log_segment_t *s, seg_index_entry_t e)
{
    if (s->nidx == s->capidx) {
        s->capidx = s->capidx ? s->capidx * 2 : 16;
        s->idx = weir_realloc(s->idx, s->capidx * sizeof *s->idx);
    }
    s->idx[s->nidx++] = e;
}

void seg_index_note(log_segment_t *s, uint64_t offset, uint64_t pos, uint32_t interval)
{
    if (s->nidx && pos - s->last_idx_pos < interval) return;
    index_push(s, (seg_index_entry_t){(uint32_t)(offset - s->base), (uint32_t)pos, s->max_ts});
    s->last_idx_pos = pos;
}

void seg_account(log_segment_t *s, const batch_info_t *b, uint32_t interval)
{
    seg_index_note(s, b->base, s->size, interval);
    if (s->size == 0) s->first_ts = b->first_ts;
    if (b->max_ts > s->max_ts) s->max_ts = b->max_ts;
    s->size += b->size;
    s->next = b->base + b->count;
}

int seg_scan_file(int fd, uint64_t from, uint64_t next_offset, log_segment_t *s, uint32_t interval,
                  seg_scan_t *out, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return weir_errf(err, errlen, WEIR_EIO, "fstat: %s", strerror(errno));
    memset(out, 0, sizeof *out);
    out->file_size = (uint64_t)st.st_size;
    out->next_offset = next_offset;
    out->valid_bytes = from;
    if (from > out->file_size) {
        out->problem = BATCH_SHORT;
        out->problem_offset = next_offset;
        return 0;
    }

    size_t cap = SCAN_CHUNK;
    unsigned char *buf = weir_malloc(cap);
    uint64_t pos = from; /* file position of buf[0] */
    size_t have = 0, at = 0;
    int rc = 0;
    for (;;) {
        if (pos + at == out->file_size) break;
        batch_info_t info;
        batch_status_t bs = batch_check(buf + at, have - at, &info);
        size_t fsize = bs == BATCH_BAD_HEADER ? batch_foreign_size(buf + at, have - at) : 0;
        if (bs == BATCH_SHORT || fsize > have - at) {
            /* Need more bytes: the header, or the whole stated batch (of
             * another format too: only all of it says whether it is one). */
            size_t need = BATCH_HEADER_SIZE;
            if (fsize)
                need = fsize;
            else if (have - at >= BATCH_HEADER_SIZE &&
                     batch_peek(buf + at, have - at, &info) == BATCH_OK)
                need = info.size;
            uint64_t left = out->file_size - (pos + at);
            if (left < need) {
                /* (a header of another magic that runs past the file is
                 * the impossible header it was, not an incomplete batch) */
                out->problem = fsize ? BATCH_BAD_HEADER : BATCH_SHORT;
                break;
            }
            memmove(buf, buf + at, have - at);
            pos += at;
            have -= at;
            at = 0;
            if (need > cap) {
                cap = need;
                buf = weir_realloc(buf, cap);
            }
            size_t want = cap - have;
            if (want > left - have) want = (size_t)(left - have);
            ssize_t n = weir_read_at(fd, buf + have, want, pos + have);
            if (n < 0) {
                rc = weir_errf(err, errlen, WEIR_EIO, "read at %" PRIu64 ": %s", pos + have,
                               strerror(errno));
                break;
            }
            if (n == 0) { /* file shrank under us */
                out->problem = BATCH_SHORT;
                break;
            }
            have += (size_t)n;
            continue;
        }
        if (bs != BATCH_OK) {
            out->problem = bs;
            break;
        }
        if (info.base != out->next_offset) {
            out->problem = BATCH_BAD_HEADER;
            out->bad_base = 1;
            out->found_base = info.base;
            break;
        }
        if (s) seg_account(s, &info, interval);
        out->next_offset = info.base + info.count;
        out->batches++;
        out->records += info.count;
        at += info.size;
        out->valid_bytes = pos + at;
    }
    out->problem_offset = out->next_offset;
    weir_free(buf);
    return rc;
}

int seg_valid_batch_after(int fd, uint64_t from, uint64_t file_size)
{
    if (file_size <= from + 1) return 0;
    size_t len = (size_t)(file_size - from - 1);
    unsigned char *buf = weir_malloc(len);
    ssize_t n = weir_read_at(fd, buf, len, from + 1);
    int found = 0;
    if (n < 0) {
        found = WEIR_EIO;
    } else {
        /* Any byte may begin a batch: try each position whose header is
         * plausible and check it fully. Only runs when recovery met a bad
         * batch, and garbage rarely has a plausible header. */
        for (size_t i = 0; i + BATCH_HEADER_SIZE <= (size_t)n && !found; i++) {
            batch_info_t info;
            if (batch_peek(buf + i, (size_t)n - i, &info) != BATCH_OK) continue;
            found = batch_check(buf + i, (size_t)n - i, &info) == BATCH_OK;
        }
    }
    weir_free(buf);
    return found;
}

int seg_index_load(log_segment_t *s, int active, char *why, size_t whylen)
{
    char *ipath = seg_index_path(s);
    int fd = open(ipath, O_RDONLY | O_CLOEXEC);
    weir_free(ipath);
    if (fd < 0) return weir_errf(why, whylen, WEIR_ENOENT, "index file missing");
    struct stat st, sst;
    int rc = 0;
    unsigned char *raw = NULL;
    if (fstat(fd, &st) != 0 || stat(s->path, &sst) != 0) {
        rc = weir_errf(why, whylen, WEIR_EIO, "cannot stat: %s", strerror(errno));
        goto out;
    }
    size_t n = ((size_t)st.st_size - SEG_INDEX_TRAILER) / SEG_INDEX_ENTRY;
    if ((size_t)st.st_size < SEG_INDEX_TRAILER + 2 * SEG_INDEX_ENTRY ||
        ((size_t)st.st_size - SEG_INDEX_TRAILER) % SEG_INDEX_ENTRY || n > (size_t)sst.st_size) {
        rc = weir_errf(why, whylen, WEIR_ECORRUPT, "index size %lld is not a whole index",
                       (long long)st.st_size);
        goto out;
    }
    raw = weir_malloc((size_t)st.st_size);
    if (weir_read_at(fd, raw, (size_t)st.st_size, 0) != st.st_size) {
        rc = weir_errf(why, whylen, WEIR_EIO, "short read of index");
        goto out;
    }
    uint32_t trailer[4];
    memcpy(trailer, raw + n * SEG_INDEX_ENTRY, sizeof trailer);
    if (trailer[0] != SEG_INDEX_MAGIC || trailer[1] != n ||
        trailer[2] != crc32c(0, raw, n * SEG_INDEX_ENTRY) || trailer[3] != 0) {
        rc = weir_errf(why, whylen, WEIR_ECORRUPT, "index checksum mismatch");
        goto out;
    }
    seg_index_entry_t *e = weir_malloc(n * sizeof *e);
    for (size_t i = 0; i < n; i++) {
        memcpy(&e[i].rel, raw + i * 16, 4);
        memcpy(&e[i].pos, raw + i * 16 + 4, 4);
        memcpy(&e[i].max_ts_before, raw + i * 16 + 8, 8);
    }
    const seg_index_entry_t *end = &e[n - 1];
    int ok = e[0].rel == 0 && e[0].pos == 0 && e[0].max_ts_before == INT64_MIN &&
             (active ? end->pos <= (uint64_t)sst.st_size : end->pos == (uint64_t)sst.st_size) &&
             end->rel > 0;
    for (size_t i = 1; ok && i < n; i++)
        ok = e[i].rel > e[i - 1].rel && e[i].pos > e[i - 1].pos &&
             e[i].max_ts_before >= e[i - 1].max_ts_before;
    /* The batch at the last real entry must carry the offset the index says. */
    batch_info_t last, first;
    unsigned char hdr[BATCH_HEADER_SIZE];
    int sfd = ok ? open(s->path, O_RDONLY | O_CLOEXEC) : -1;
    if (ok) {
        ok = sfd >= 0 && weir_read_at(sfd, hdr, sizeof hdr, e[n - 2].pos) == sizeof hdr &&
             batch_peek(hdr, sizeof hdr, &last) == BATCH_OK && last.base == s->base + e[n - 2].rel &&
             e[n - 2].pos + (uint64_t)last.size <= end->pos;
    }
    if (ok) {
        ok = weir_read_at(sfd, hdr, sizeof hdr, 0) == sizeof hdr &&
             batch_peek(hdr, sizeof hdr, &first) == BATCH_OK && first.base == s->base;
    }
    if (sfd >= 0) close(sfd);
    if (!ok) {
        weir_free(e);
        rc = weir_errf(why, whylen, WEIR_ECORRUPT, "index does not match its segment");
        goto out;
    }
    s->idx = e;
    s->nidx = s->capidx = (uint32_t)(n - 1);
    s->last_idx_pos = e[n - 2].pos;
    s->next = s->base + end->rel;
    s->size = end->pos;
    s->max_ts = end->max_ts_before;
    s->first_ts = first.first_ts;
out:
    weir_free(raw);
    close(fd);
    return rc;
}

int seg_index_write_file(const log_segment_t *s, const char *path, char *err, size_t errlen)
{
    size_t n = s->nidx + 1;
    unsigned char *raw = weir_malloc(n * SEG_INDEX_ENTRY + SEG_INDEX_TRAILER);
    for (size_t i = 0; i < n; i++) {
        seg_index_entry_t e = i < s->nidx ? s->idx[i]
                                          : (seg_index_entry_t){(uint32_t)(s->next - s->base),
                                                                (uint32_t)s->size, s->max_ts};
        memcpy(raw + i * 16, &e.rel, 4);
        memcpy(raw + i * 16 + 4, &e.pos, 4);
        memcpy(raw + i * 16 + 8, &e.max_ts_before, 8);
    }
    uint32_t trailer[4] = {SEG_INDEX_MAGIC, (uint32_t)n, crc32c(0, raw, n * SEG_INDEX_ENTRY), 0};
    memcpy(raw + n * SEG_INDEX_ENTRY, trailer, sizeof trailer);
    size_t total = n * SEG_INDEX_ENTRY + SEG_INDEX_TRAILER;
    int rc = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || weir_write_all(fd, raw, total) != 0)
        rc = weir_errf(err, errlen, WEIR_EIO, "cannot write index %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    weir_free(raw);
    return rc;
}

int seg_index_write(const log_segment_t *s, char *err, size_t errlen)
{
    char *ipath = seg_index_path(s);
    size_t n = strlen(ipath) + sizeof ".tmp";
    char *tmp = weir_malloc(n);
    snprintf(tmp, n, "%s.tmp", ipath);
    int rc = seg_index_write_file(s, tmp, err, errlen);
    if (rc == 0 && rename(tmp, ipath) != 0)
        rc = weir_errf(err, errlen, WEIR_EIO, "cannot write index %s: %s", ipath, strerror(errno));
    if (rc) unlink(tmp);
    weir_free(tmp);
    weir_free(ipath);
    return rc;
}

char *seg_index_path(const log_segment_t *s)
{
    char *ipath = weir_strdup(s->path);
    strcpy(ipath + strlen(ipath) - 4, ".idx");
    return ipath;
}

void seg_free(log_segment_t *s)
{
    if (s->fd >= 0) close(s->fd);
    weir_free(s->idx);
    weir_free(s->path);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}
