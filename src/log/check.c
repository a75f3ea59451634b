/* check.c — `weir log check`: read-only verification of a whole data
 * directory's log. Reads every batch of every segment (CRC, structure,
 * offset chain across batches and segments) and compares each closed
 * segment's index with one rebuilt from the data. Changes nothing, takes no
 * lock: it can run beside a live weir, which is why a torn tail of an
 * active segment is a note (it may be a write in progress, or what the next
 * open truncates) and only damage that recovery would refuse is an error. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/error.h"
#include "log/part.h"

typedef struct check_ctx {
    log_check_cb cb;
    void *ctx;
    int errors;
    log_check_totals_t *totals;
} check_ctx_t;

__attribute__((format(printf, 3, 4))) static void report(check_ctx_t *c, int severity,
                                                         const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (severity) c->errors++;
    if (c->cb) c->cb(c->ctx, severity, msg);
}

/* Every entry of the on-disk index `disk` must be one of the batches the
 * scan found (`all` has an entry for every batch), and its END must match:
 * the segment's end, or for a recovery point (`point`) any batch boundary. */
static int index_matches(const log_segment_t *disk, const log_segment_t *all, int point)
{
    int end_ok = disk->next == all->next && disk->size == all->size && disk->max_ts == all->max_ts;
    for (uint32_t j = 0; point && !end_ok && j < all->nidx; j++)
        end_ok = all->idx[j].pos == disk->size && all->base + all->idx[j].rel == disk->next &&
                 all->idx[j].max_ts_before == disk->max_ts;
    if (!end_ok) return 0;
    uint32_t j = 0;
    for (uint32_t i = 0; i < disk->nidx; i++) {
        while (j < all->nidx && all->idx[j].pos < disk->idx[i].pos) j++;
        if (j == all->nidx || memcmp(&all->idx[j], &disk->idx[i], sizeof *disk->idx) != 0) return 0;
    }
    return 1;
}

/* The next offset after a damaged segment: unknown, so that the segment
 * after it is not also reported as starting at the wrong offset (a knock-on
 * of the one fault, which read like a second). */
#define NEXT_UNKNOWN UINT64_MAX

/* Checks one segment; returns its next offset, or NEXT_UNKNOWN if it is
 * unreadable or damaged. */
static uint64_t check_segment(check_ctx_t *c, const char *dir, uint64_t base, int active,
                              uint64_t expect, int first)
{
    log_segment_t s = {.base = base, .next = base, .first_ts = INT64_MIN, .max_ts = INT64_MIN, .fd = -1};
    s.path = seg_path(dir, base, ".seg");
    int damaged = 0;
    if (!first && expect != NEXT_UNKNOWN && base != expect)
        report(c, 1, "%s: segment starts at offset %" PRIu64 " but the previous one ends at %" PRIu64,
               s.path, base, expect);
    int fd = open(s.path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        report(c, 1, "%s: cannot open", s.path);
        seg_free(&s);
        return NEXT_UNKNOWN;
    }
    seg_scan_t sc;
    char err[256];
    /* Interval 1: every batch. */
    if (seg_scan_file(fd, 0, base, &s, 1, &sc, err, sizeof err) != 0) {
        report(c, 1, "%s: %s", s.path, err);
    } else {
        c->totals->segments++;
        c->totals->batches += sc.batches;
        c->totals->records += sc.records;
        c->totals->bytes += sc.valid_bytes;
        if (sc.problem != BATCH_OK) {
            char what[256];
            if (sc.bad_base)
                snprintf(what, sizeof what, "batch has base offset %" PRIu64 ", expected %" PRIu64,
                         sc.found_base, sc.problem_offset);
            else
                snprintf(what, sizeof what, "%s", batch_status_str(sc.problem));
            if (active && sc.problem != BATCH_FOREIGN &&
                seg_valid_batch_after(fd, sc.valid_bytes, sc.file_size) == 0)
                report(c, 0,
                       "%s: byte offset %" PRIu64 ": torn tail of %" PRIu64
                       " bytes (%s); the next open truncates it",
                       s.path, sc.valid_bytes, sc.file_size - sc.valid_bytes, what);
            else {
                report(c, 1, "%s: byte offset %" PRIu64 ": %s", s.path, sc.valid_bytes, what);
                damaged = 1;
            }
        } else if (!active && sc.batches == 0) {
            report(c, 1, "%s: closed segment is empty", s.path);
        }
        char *ipath = seg_index_path(&s);
        int has_point = active && access(ipath, F_OK) == 0;
        if (sc.batches > 0 && (has_point || (!active && sc.problem == BATCH_OK))) {
            /* Compare the on-disk index (or recovery point) with the one
             * the scan rebuilt; the index is derived data, so a mismatch is
             * a note, not damage. */
            log_segment_t disk = {.base = base, .fd = -1, .path = weir_strdup(s.path)};
            const char *what = active ? "recovery point" : "index";
            const char *then =
                active ? "the next open reads the whole segment" : "the next open rebuilds it";
            char why[256];
            if (seg_index_load(&disk, active, why, sizeof why) != 0)
                report(c, 0, "%s: %s%s; %s", disk.path, why, active ? " (recovery point)" : "",
                       then);
            else if (!index_matches(&disk, &s, active))
                report(c, 0, "%s: %s differs from its segment; %s", disk.path, what, then);
            seg_free(&disk);
        }
        weir_free(ipath);
    }
    close(fd);
    uint64_t next = damaged ? NEXT_UNKNOWN : s.next;
    seg_free(&s);
    return next;
}

/* Checks every topic under root (a log's folder). */
static int check_root(check_ctx_t *c, const char *root)
{
    char **topics;
    size_t ntopics;
    char err[512];
    if (log_topic_list_dir(root, &topics, &ntopics, err, sizeof err) != 0) {
        report(c, 1, "%s", err);
        return WEIR_ENOENT;
    }
    for (size_t t = 0; t < ntopics; t++) {
        char tdir[4096];
        snprintf(tdir, sizeof tdir, "%s/%s", root, topics[t]);
        uint32_t nparts;
        if (topic_meta_read(tdir, &nparts) != 0) {
            report(c, 1, "%s/topic.meta: unreadable or corrupt", tdir);
            continue;
        }
        for (uint32_t p = 0; p < nparts; p++) {
            char pdir[4200];
            snprintf(pdir, sizeof pdir, "%s/%u", tdir, p);
            uint64_t *bases;
            uint32_t n;
            if (part_list_segments(pdir, 0, &bases, &n, err, sizeof err) != 0) {
                report(c, 1, "%s", err);
                continue;
            }
            uint64_t expect = 0;
            for (uint32_t i = 0; i < n; i++)
                expect = check_segment(c, pdir, bases[i], i + 1 == n, expect, i == 0);
            weir_free(bases);
        }
    }
    for (size_t t = 0; t < ntopics; t++) weir_free(topics[t]);
    weir_free(topics);
    return 0;
}

int log_check(const char *datadir, log_check_cb cb, void *ctx, log_check_totals_t *totals)
{
    log_check_totals_t dummy;
    check_ctx_t c = {cb, ctx, 0, totals ? totals : &dummy};
    memset(c.totals, 0, sizeof *c.totals);
    char root[4096];
    snprintf(root, sizeof root, "%s/log", datadir);
    if (check_root(&c, root) != 0) return WEIR_ENOENT;
    /* A server's decision log: what recovery and verify read back, as
     * much as the events are. */
    struct stat st;
    snprintf(root, sizeof root, "%s/decisions", datadir);
    if (stat(root, &st) == 0 && S_ISDIR(st.st_mode)) check_root(&c, root);
    return c.errors;
}
