/* log_part_test.c — the log through its public API: append and read across
 * rolls, reads from offsets and times, recovery (torn tail at every byte of
 * the last batch, corruption that is not a torn tail, index rebuild,
 * recovery points after a crash, a read-only open that changes nothing),
 * retention with an injected clock, concurrent appenders and group commit. */
#include <setjmp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/error.h"
#include "log/batch.h"
#include "log/log.h"

/* --- helpers ------------------------------------------------------------ */

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static char *tmpdir(void)
{
    char *d = strdup("/tmp/weir-log-test-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void rmdir_all(char *d)
{
    nftw(d, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(d);
}

static int64_t fake_now;
static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static void small_config(log_config_t *cfg)
{
    log_config_defaults(cfg);
    cfg->segment_bytes = 4096;
    cfg->index_interval = 512;
    cfg->segment_ms = 0;
}

static log_part_t *open_part(const char *dir, const log_config_t *cfg, log_t **log, uint32_t parts,
                             uint32_t which)
{
    char err[512];
    log_topic_t *t;
    int rc = log_open(dir, cfg, log, err, sizeof err);
    if (rc) fail_msg("log_open: %s", err);
    rc = log_topic_open(*log, "events", parts, &t, err, sizeof err);
    if (rc) fail_msg("topic_open: %s", err);
    return log_topic_part(t, which);
}

/* Appends events "{"i":N}" for N in [from, to), `per` per batch, ts = 1000 + N. */
static void append_range(log_part_t *p, uint64_t from, uint64_t to, int per, log_ack_t ack)
{
    char vals[64][32];
    log_rec_t recs[64];
    weir_buf_t scratch = WEIR_BUF_INIT;
    char err[256];
    for (uint64_t i = from; i < to;) {
        int n = 0;
        for (; n < per && i < to; n++, i++) {
            int len = snprintf(vals[n], 32, "{\"i\":%llu}", (unsigned long long)i);
            recs[n] = (log_rec_t){0, 1000 + (int64_t)i, LOG_REC_EVENT, {vals[n], 3}, {vals[n], (size_t)len}};
        }
        uint64_t first;
        int rc = log_append(p, recs, (size_t)n, ack, &scratch, &first, err, sizeof err);
        if (rc) fail_msg("append: %s", err);
        assert_true(first == i - (uint64_t)n);
    }
    buf_free(&scratch);
}

/* Reads from `from` and checks records are exactly "{"i":N}" for N from..to-1. */
static void expect_range(log_part_t *p, uint64_t from, uint64_t to)
{
    log_reader_t *r;
    char err[512];
    if (log_reader_open(p, from, &r, err, sizeof err)) fail_msg("reader: %s", err);
    log_rec_t rec;
    uint64_t want = from;
    int rc;
    while ((rc = log_reader_next(r, &rec, err, sizeof err)) == 1) {
        char v[32];
        int len = snprintf(v, sizeof v, "{\"i\":%llu}", (unsigned long long)want);
        assert_true(rec.offset == want);
        assert_true(rec.ts == 1000 + (int64_t)want);
        assert_int_equal(rec.value.len, (size_t)len);
        assert_memory_equal(rec.value.ptr, v, (size_t)len);
        want++;
    }
    if (rc < 0) fail_msg("read: %s", err);
    assert_true(want == to);
    log_reader_close(r);
}

static int count_files(const char *dir, const char *ext)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ext)) n++;
    }
    if (d) closedir(d);
    return n;
}

/* --- tests -------------------------------------------------------------- */

static void append_read_across_rolls(void **state)
{
    (void)state;
    char *dir = tmpdir();
    log_config_t cfg;
    small_config(&cfg);
    log_t *log;
    log_part_t *p = open_part(dir, &cfg, &log, 2, 1);
    append_range(p, 0, 3000, 7, LOG_ACK_WRITTEN);
    log_part_stat_t st;
    log_part_stat(p, &st);
    assert_true(st.segments > 5);
    assert_true(st.next_offset == 3000);
    for (uint64_t from = 0; from <= 3000; from += 37) expect_range(p, from, 3000);
    expect_range(p, 2999, 3000);
    log_close(log);
    /* Reopen: closed segments come from their indexes, active from a scan. */
    p = open_part(dir, &cfg, &log, 2, 1);
    log_part_stat_t st2;
    log_part_stat(p, &st2);
    assert_int_equal(st2.segments, st.segments);
    assert_true(st2.bytes == st.bytes);
    assert_true(st2.first_ts == 1000 && st2.max_ts == 3999);
    expect_range(p, 0, 3000);
    append_range(p, 3000, 3100, 5, LOG_ACK_DURABLE);
    expect_range(p, 2900, 3100);
    log_close(log);
    rmdir_all(dir);
}

static void read_from_time(void **state)
{
    (void)state;
    char *dir = tmpdir();
    log_config_t cfg;
    small_config(&cfg);
    log_t *log;
    log_part_t *p = open_part(dir, &cfg, &log, 1, 0);
    append_range(p, 0, 2000, 9, LOG_ACK_WRITTEN);
    char err[256];
    for (int64_t t = 900; t <= 3100; t += 53) {
        log_reader_t *r;
        assert_int_equal(log_reader_open_time(p, t, &r, err, sizeof err), 0);
        log_rec_t rec;
        int rc = log_reader_next(r, &rec, err, sizeof err);
        if (t < 1000) assert_true(rc == 1 && rec.offset == 0);
        else if (t <= 2999) assert_true(rc == 1 && rec.offset == (uint64_t)(t - 1000));
        else assert_int_equal(rc, 0);
        log_reader_close(r);
    }
    log_close(log);
    rmdir_all(dir);
}

/* Writes a one-partition log in dir: events 0..99 in batches of 10, then
 * a last batch of 5, in one segment; *before and *after are the partition's
 * stats before and after that last batch. */
static void log_with_last_batch(const char *dir, log_config_t *cfg, log_part_stat_t *before,
                                log_part_stat_t *after)
{
    small_config(cfg);
    cfg->segment_bytes = 1 << 20;
    log_t *log;
    log_part_t *p = open_part(dir, cfg, &log, 1, 0);
    append_range(p, 0, 100, 10, LOG_ACK_WRITTEN);
    log_part_stat(p, before);
    append_range(p, 100, 105, 5, LOG_ACK_WRITTEN);
    log_part_stat(p, after);
    log_close(log);
}

/* Builds a log whose last batch holds 5 records, cuts the active segment at
 * every byte inside that batch, and checks that the next open drops exactly
 * that batch, reports the bytes, and appends continue at its offset. */
static void torn_tail_every_byte(void **state)
{
    (void)state;
    char *dir = tmpdir();
    log_config_t cfg;
    log_part_stat_t before, after;
    log_with_last_batch(dir, &cfg, &before, &after);
    char seg[512], copy[600];
    snprintf(seg, sizeof seg, "%s/log/events/0/%020d.seg", dir, 0);
    snprintf(copy, sizeof copy, "%s.orig", seg);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", seg, copy);
    assert_int_equal(system(cmd), 0);
    for (uint64_t cut = before.bytes; cut < after.bytes; cut++) {
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", copy, seg);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(truncate(seg, (off_t)cut), 0);
        log_t *log;
        log_part_t *p = open_part(dir, &cfg, &log, 1, 0);
        log_recovery_t rec;
        log_part_recovery(p, &rec);
        assert_true(rec.dropped_bytes == cut - before.bytes);
        if (cut > before.bytes) assert_true(rec.at == before.bytes);
        expect_range(p, 0, 100);
        if (cut == before.bytes + 1 || cut == after.bytes - 1) {
            append_range(p, 100, 103, 2, LOG_ACK_WRITTEN);
            expect_range(p, 0, 103);
        }
        log_close(log);
    }
    rmdir_all(dir);
}

/* A read-only open (log_config_t.read_only, `weir log stat`) finds a torn
 * tail and reports it, but leaves the file, takes no lock, creates nothing
 * and refuses appends; the next writer then cuts the tail. */
static void read_only_open_changes_nothing(void **state)
{
    (void)state;
    char *dir = tmpdir();
    log_config_t cfg;
    log_part_stat_t before, after;
    log_with_last_batch(dir, &cfg, &before, &after);
    log_t *log;
    log_part_t *p;
    char seg[512], lock[512];
    snprintf(seg, sizeof seg, "%s/log/events/0/%020d.seg", dir, 0);
    snprintf(lock, sizeof lock, "%s/log/LOCK", dir);
    struct stat st;
    assert_int_equal(stat(seg, &st), 0);
    off_t cut = st.st_size - 7;
    assert_int_equal(truncate(seg, cut), 0);
    assert_int_equal(unlink(lock), 0);

    log_config_t ro = cfg;
    ro.read_only = 1;
    p = open_part(dir, &ro, &log, 0, 0);
    log_recovery_t rec;
    log_part_recovery(p, &rec);
    assert_true(rec.read_only && rec.dropped_bytes == (uint64_t)cut - before.bytes &&
                rec.at == before.bytes);
    expect_range(p, 0, 100);
    log_rec_t r = {0, 1, LOG_REC_EVENT, {NULL, 0}, {"{}", 2}};
    weir_buf_t scratch = WEIR_BUF_INIT;
    char err[256];
    assert_int_equal(log_append(p, &r, 1, LOG_ACK_WRITTEN, &scratch, NULL, err, sizeof err),
                     WEIR_EINVAL);
    buf_free(&scratch);
    log_close(log);
    assert_int_equal(stat(seg, &st), 0);
    assert_true(st.st_size == cut);
    assert_int_not_equal(access(lock, F_OK), 0);

    p = open_part(dir, &cfg, &log, 1, 0);
    log_part_recovery(p, &rec);
    assert_true(!rec.read_only && rec.dropped_bytes == (uint64_t)cut - before.bytes);
    log_close(log);
    assert_int_equal(stat(seg, &st), 0);
    assert_true((uint64_t)st.st_size == before.bytes);
    rmdir_all(dir);
}

/* Flips a bit of the byte at `at` of path (twice: back as it was). */
static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

/* Reads from `from` to the end; returns log_reader_next's last code, with
 * its reason in err. */
static int read_all(log_part_t *p, uint64_t from, char *err, size_t errlen)
{
    log_reader_t *r;
    if (log_reader_open(p, from, &r, err, errlen)) fail_msg("reader: %s", err);
    log_rec_t rec;
    int rc;
    while ((rc = log_reader_next(r, &rec, err, errlen)) == 1) {
    }
    log_reader_close(r);
    return rc;
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* A bad CRC in the middle of the active segment, with valid batches after
 * it, is corruption: open refuses, naming the file and byte offset (an open
 * that reads it: without a recovery point before it). With the point a
 * clean close leaves, the open does not read it and the reader names it. */
static void mid_segment_corruption_is_an_error(void **state)
{
    (void)state;
    char *dir = tmpdir();
    log_config_t cfg;
    small_config(&cfg);
    cfg.segment_bytes = 1 << 20;
    log_t *log;
    log_part_t *p = open_part(dir, &cfg, &log, 1, 0);
    append_range(p, 0, 50, 10, LOG_ACK_WRITTEN);
    log_close(log);
    char seg[512], idx[512];
    snprintf(seg, sizeof seg, "%s/log/events/0/%020d.seg", dir, 0);
    snprintf(idx, sizeof idx, "%s/log/events/0/%020d.idx", dir, 0);
    flip_byte(seg, 60);
    char err[512];
    log_topic_t *t;
    p = open_part(dir, &cfg, &log, 1, 0);
    log_recovery_t rec;
    log_part_recovery(p, &rec);
    assert_true(rec.point > 60 && rec.point + rec.scanned == (uint64_t)file_size(seg));
    assert_int_equal(read_all(p, 0, err, sizeof err), WEIR_ECORRUPT);
    assert_non_null(strstr(err, seg));
    assert_non_null(strstr(err, "byte offset 0"));
    log_close(log);
    assert_int_equal(unlink(idx), 0);
    assert_int_equal(log_open(dir, &cfg, &log, err, sizeof err), 0);
    assert_int_equal(log_topic_open(log, "events", 0, &t, err, sizeof err), WEIR_ECORRUPT);
    assert_non_null(strstr(err, seg));
    assert_non_null(strstr(err, "byte offset 0"));
    log_close(log);
    /* log_check names it too, as an error. */
    assert_true(log_check(dir, NULL, NULL, NULL) >= 1);
    rmdir_all(dir);
}

/* A new log of one partition in small segments: events 0..1499 (six a
 * batch), several closed segments with their indexes, then closed. */
static char *closed_segments_log(log_config_t *cfg)
{
    char *dir = tmpdir();
    log_t *log;
    small_config(cfg);
    log_part_t *p = open_part(dir, cfg, &log, 1, 0);
    append_range(p, 0, 1500, 6, LOG_ACK_WRITTEN);
    log_close(log);
    return dir;
}

/* CHECKED ONCE (reader.c): a reader checks every batch the open scan did
 * not — a closed segment opened through its index, batches appended since
 * the open — and names a bad one; what the scan verified at open (the
 * active segment's bytes then) it does not check again. */
static void reader_checks_what_open_did_not(void **state)
{
    (void)state;
    log_config_t cfg;
    log_t *log;
    char *dir = closed_segments_log(&cfg);
    char pdir[512], seg0[800], active[800], active_idx[800], err[1024];
    snprintf(pdir, sizeof pdir, "%s/log/events/0", dir);
    snprintf(seg0, sizeof seg0, "%s/%020d.seg", pdir, 0);
    /* The active segment: the one holding the last offset. Its recovery
     * point goes, so that the open scans it. */
    DIR *d = opendir(pdir);
    struct dirent *e;
    uint64_t last_base = 0, b;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".seg") && sscanf(e->d_name, "%20" SCNu64, &b) == 1 && b > last_base) last_base = b;
    closedir(d);
    snprintf(active, sizeof active, "%s/%020" PRIu64 ".seg", pdir, last_base);
    snprintf(active_idx, sizeof active_idx, "%s/%020" PRIu64 ".idx", pdir, last_base);
    assert_true(last_base > 0);
    assert_int_equal(unlink(active_idx), 0);
    log_part_t *p = open_part(dir, &cfg, &log, 1, 0);
    log_recovery_t rec;
    log_part_recovery(p, &rec);
    assert_int_equal(rec.indexes_rebuilt, 0); /* closed segments came from their indexes */
    assert_true(rec.point == 0 && rec.scanned == (uint64_t)file_size(active));

    /* A byte of a closed segment, opened through its index: read, refused. */
    flip_byte(seg0, BATCH_HEADER_SIZE + 2);
    assert_int_equal(read_all(p, 0, err, sizeof err), WEIR_ECORRUPT);
    assert_non_null(strstr(err, seg0));
    assert_non_null(strstr(err, "CRC32C mismatch"));
    flip_byte(seg0, BATCH_HEADER_SIZE + 2); /* back as it was */
    expect_range(p, 0, 1500);

    /* A batch appended after the open: checked when read. */
    off_t at = file_size(active);
    append_range(p, 1500, 1506, 6, LOG_ACK_WRITTEN);
    flip_byte(active, at + BATCH_HEADER_SIZE + 2);
    assert_int_equal(read_all(p, 1500, err, sizeof err), WEIR_ECORRUPT);
    assert_non_null(strstr(err, active));
    flip_byte(active, at + BATCH_HEADER_SIZE + 2);
    expect_range(p, 1500, 1506);

    /* The active segment's bytes the open verified are not checked again: a
     * byte changed behind the log's back after the open goes unseen (the
     * next open finds it). */
    flip_byte(active, BATCH_HEADER_SIZE + 2);
    assert_int_equal(read_all(p, last_base, err, sizeof err), 0);
    log_close(log);
    assert_int_equal(unlink(active_idx), 0); /* the close's point: the open would not read it */
    log_topic_t *t;
    assert_int_equal(log_open(dir, &cfg, &log, err, sizeof err), 0);
    assert_int_equal(log_topic_open(log, "events", 1, &t, err, sizeof err), WEIR_ECORRUPT);
    assert_non_null(strstr(err, active));
    log_close(log);
    rmdir_all(dir);
}

/* The log's files as a crash would leave them: DIR's log copied to a new
 * directory while it is open (nothing closed, no point written at close). */
static char *crash_copy(const char *dir)
{
    char *copy = tmpdir();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -r '%s/log' '%s/'", dir, copy);
    assert_int_equal(system(cmd), 0);
    return copy;
}

/* log_check's notes, joined. */
static void collect_notes(void *ctx, int severity, const char *msg)
{
    if (severity == 0) strncat(ctx, msg, 4000 - strlen(ctx));
}

static void append_bytes(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

/* RECOVERY POINTS (log.h): after a crash, the open reads the active segment
 * only from its point on, and ends exactly where a full scan would: a torn
 * tail after the point is cut, damage after it that is not a torn tail is
 * an error, and a point that does not fit (past the file's end, a bad
 * checksum, a closed segment's index cut short) is not used. */
static void recovery_point_after_crash(void **state)
{
    (void)state;
    char *dir = tmpdir();
    log_config_t cfg;
    small_config(&cfg);
    cfg.segment_bytes = 1 << 20;
    log_t *log, *log2;
    log_part_t *p = open_part(dir, &cfg, &log, 1, 0);
    append_range(p, 0, 300, 6, LOG_ACK_WRITTEN);
    char seg[512], idx[512], err[512];
    snprintf(seg, sizeof seg, "%s/log/events/0/%020d.seg", dir, 0);
    snprintf(idx, sizeof idx, "%s/log/events/0/%020d.idx", dir, 0);
    assert_int_equal(log_part_save_point(p, 1), 0);
    uint64_t point = (uint64_t)file_size(seg);
    assert_true(file_size(idx) > 0);
    append_range(p, 300, 400, 6, LOG_ACK_WRITTEN);
    uint64_t size = (uint64_t)file_size(seg);

    /* A torn tail after the point: cut, everything before it kept. */
    char *c1 = crash_copy(dir);
    char cseg[800];
    snprintf(cseg, sizeof cseg, "%s/log/events/0/%020d.seg", c1, 0);
    /* log check compares the point with the segment: they agree. */
    char notes[4096] = "";
    assert_int_equal(log_check(c1, collect_notes, notes, NULL), 0);
    assert_null(strstr(notes, "recovery point"));
    static const unsigned char torn[20];
    append_bytes(cseg, torn, sizeof torn);
    log_part_t *q = open_part(c1, &cfg, &log2, 1, 0);
    log_recovery_t rec;
    log_part_recovery(q, &rec);
    /* Read from the point's last index entry (one interval before it) on. */
    assert_true(rec.point > point - cfg.index_interval - 200 && rec.point <= point);
    assert_true(rec.point + rec.scanned == size);
    assert_true(rec.dropped_bytes == sizeof torn && rec.at == size);
    expect_range(q, 0, 400);
    append_range(q, 400, 410, 6, LOG_ACK_WRITTEN);
    expect_range(q, 0, 410);
    log_close(log2);
    /* The clean close left a point at the end: nothing is read. */
    q = open_part(c1, &cfg, &log2, 1, 0);
    log_part_recovery(q, &rec);
    assert_true(rec.point > 0 && rec.point + rec.scanned == (uint64_t)file_size(cseg));
    assert_true(rec.scanned < cfg.index_interval + 200);
    expect_range(q, 0, 410);
    log_close(log2);
    rmdir_all(c1);

    /* A point past the file's end (cut by hand into a batch before it): not
     * used, and the full scan cuts at the last whole batch. */
    c1 = crash_copy(dir);
    snprintf(cseg, sizeof cseg, "%s/log/events/0/%020d.seg", c1, 0);
    assert_int_equal(truncate(cseg, (off_t)point - 10), 0);
    q = open_part(c1, &cfg, &log2, 1, 0);
    log_part_recovery(q, &rec);
    assert_true(rec.point == 0 && rec.dropped_bytes > 0 && rec.scanned == rec.at);
    log_part_stat_t st;
    log_part_stat(q, &st);
    assert_true(st.next_offset > 0 && st.next_offset < 300 && st.next_offset % 6 == 0);
    expect_range(q, 0, st.next_offset);
    log_close(log2);
    rmdir_all(c1);

    /* A bad byte after the point with valid batches after it: corruption,
     * named as a full scan names it. */
    c1 = crash_copy(dir);
    snprintf(cseg, sizeof cseg, "%s/log/events/0/%020d.seg", c1, 0);
    flip_byte(cseg, (off_t)point + BATCH_HEADER_SIZE + 2);
    log_topic_t *t;
    assert_int_equal(log_open(c1, &cfg, &log2, err, sizeof err), 0);
    assert_int_equal(log_topic_open(log2, "events", 1, &t, err, sizeof err), WEIR_ECORRUPT);
    assert_non_null(strstr(err, cseg));
    assert_non_null(strstr(err, "not a torn tail"));
    log_close(log2);
    rmdir_all(c1);

    /* A point whose checksum fails: not used, removed, everything scanned. */
    c1 = crash_copy(dir);
    char cidx[800];
    snprintf(cidx, sizeof cidx, "%s/log/events/0/%020d.idx", c1, 0);
    flip_byte(cidx, 20);
    notes[0] = 0;
    assert_int_equal(log_check(c1, collect_notes, notes, NULL), 0);
    assert_non_null(strstr(notes, "checksum mismatch (recovery point)"));
    q = open_part(c1, &cfg, &log2, 1, 0);
    log_part_recovery(q, &rec);
    assert_true(rec.point == 0 && rec.scanned == size && rec.dropped_bytes == 0);
    assert_int_equal(access(cidx, F_OK), -1);
    expect_range(q, 0, 400);
    log_close(log2);
    rmdir_all(c1);

    /* A segment closed by a roll the crash cut short (the next segment
     * exists, its final index was never written): the point is not taken
     * for a closed segment's index, which is rebuilt. */
    c1 = crash_copy(dir);
    char next[800];
    snprintf(next, sizeof next, "%s/log/events/0/%020d.seg", c1, 400);
    int fd = open(next, O_CREAT | O_WRONLY, 0644);
    close(fd);
    q = open_part(c1, &cfg, &log2, 1, 0);
    log_part_recovery(q, &rec);
    assert_int_equal(rec.indexes_rebuilt, 1);
    expect_range(q, 0, 400);
    log_close(log2);
    rmdir_all(c1);

    log_close(log);
    rmdir_all(dir);
}

/* Partitions are opened by several threads (log.c, OPENING IN PARALLEL):
 * every one comes back whole, and when two are corrupt the error is the
 * first one's, with nothing left open (ASan). */
static void partitions_open_in_parallel(void **state)
{
    (void)state;
    char *dir = tmpdir();
    log_config_t cfg;
    small_config(&cfg);
    cfg.segment_bytes = 1 << 20;
    enum { NP = 6 };
    log_t *log;
    for (uint32_t i = 0; i < NP; i++) {
        log_part_t *p = open_part(dir, &cfg, &log, NP, i);
        append_range(p, 0, 20 + 10 * i, 10, LOG_ACK_WRITTEN);
        log_close(log);
    }
    char seg[NP][512];
    for (uint32_t i = 2; i < NP; i += 2) {
        char idx[512];
        snprintf(seg[i], sizeof seg[i], "%s/log/events/%u/%020d.seg", dir, i, 0);
        snprintf(idx, sizeof idx, "%s/log/events/%u/%020d.idx", dir, i, 0);
        flip_byte(seg[i], 60);
        assert_int_equal(unlink(idx), 0); /* no recovery point: the open reads it all */
    }
    char err[512];
    log_topic_t *t;
    assert_int_equal(log_open(dir, &cfg, &log, err, sizeof err), 0);
    assert_int_equal(log_topic_open(log, "events", 0, &t, err, sizeof err), WEIR_ECORRUPT);
    assert_non_null(strstr(err, seg[2]));
    log_close(log);
    for (uint32_t i = 2; i < NP; i += 2) flip_byte(seg[i], 60);
    assert_int_equal(log_open(dir, &cfg, &log, err, sizeof err), 0);
    assert_int_equal(log_topic_open(log, "events", 0, &t, err, sizeof err), 0);
    for (uint32_t i = 0; i < NP; i++) {
        log_part_stat_t st;
        log_part_stat(log_topic_part(t, i), &st);
        assert_int_equal(st.next_offset, 20 + 10 * i);
    }
    log_close(log);
    rmdir_all(dir);
}

static void index_rebuilt_when_missing_or_wrong(void **state)
{
    (void)state;
    log_config_t cfg;
    log_t *log;
    char *dir = closed_segments_log(&cfg);
    char pdir[512], idx[800];
    snprintf(pdir, sizeof pdir, "%s/log/events/0", dir);
    assert_true(count_files(pdir, ".idx") >= 3);
    /* Remove the first index, garble the second (truncate to one entry). */
    DIR *d = opendir(pdir);
    struct dirent *e;
    int k = 0;
    char names[2][256];
    while ((e = readdir(d)) && k < 2)
        if (strstr(e->d_name, ".idx")) snprintf(names[k++], 256, "%s", e->d_name);
    closedir(d);
    snprintf(idx, sizeof idx, "%s/%s", pdir, names[0]);
    assert_int_equal(unlink(idx), 0);
    snprintf(idx, sizeof idx, "%s/%s", pdir, names[1]);
    assert_int_equal(truncate(idx, 16), 0);
    log_part_t *p = open_part(dir, &cfg, &log, 1, 0);
    log_recovery_t rec;
    log_part_recovery(p, &rec);
    assert_int_equal(rec.indexes_rebuilt, 2);
    for (uint64_t from = 0; from < 1500; from += 101) expect_range(p, from, 1500);
    log_close(log);
    assert_int_equal(log_check(dir, NULL, NULL, NULL), 0);
    rmdir_all(dir);
}

static void retention_by_size_and_age(void **state)
{
    (void)state;
    char *dir = tmpdir();
    log_config_t cfg;
    small_config(&cfg);
    cfg.now_ms = fake_clock;
    fake_now = 0; /* retention off until configured */
    log_t *log;
    log_part_t *p = open_part(dir, &cfg, &log, 1, 0);
    append_range(p, 0, 2000, 10, LOG_ACK_WRITTEN);
    log_part_stat_t st;
    log_part_stat(p, &st);
    log_close(log);

    /* By size: keep at most 3 segments' worth; the active is never deleted. */
    cfg.retention_bytes = 3 * 4096;
    p = open_part(dir, &cfg, &log, 1, 0);
    int deleted = log_part_retain(p);
    log_part_stat_t st2;
    log_part_stat(p, &st2);
    assert_true(deleted > 0);
    assert_int_equal(st2.segments, st.segments - (uint32_t)deleted);
    assert_true(st2.bytes < 3 * 4096);
    assert_true(st2.next_offset == 2000);
    assert_true(st2.start_offset > 0);
    char err[256];
    log_reader_t *r;
    assert_int_equal(log_reader_open(p, 0, &r, err, sizeof err), WEIR_ERANGE);
    expect_range(p, st2.start_offset, 2000);
    log_close(log);

    /* By age: records have ts 1000+i; at now=2500 with 1000 ms retention,
     * closed segments whose newest record is older than 1500 go. */
    cfg.retention_bytes = 0;
    cfg.retention_ms = 1000;
    fake_now = 1000 + 2000 + 500;
    p = open_part(dir, &cfg, &log, 1, 0);
    log_part_retain(p);
    log_part_stat_t st3;
    log_part_stat(p, &st3);
    assert_true(st3.start_offset > 0);
    /* The first remaining segment holds a record newer than now - retention. */
    log_reader_open(p, st3.start_offset, &r, err, sizeof err);
    log_rec_t rec;
    int64_t newest = 0;
    uint64_t seen = 0;
    while (log_reader_next(r, &rec, err, sizeof err) == 1 && seen++ < 50)
        if (rec.ts > newest) newest = rec.ts;
    log_reader_close(r);
    assert_true(newest >= fake_now - 1000 || st3.segments == 1);
    /* Everything old: only the active segment may remain. */
    fake_now = 1000000;
    log_part_retain(p);
    log_part_stat(p, &st3);
    assert_int_equal(st3.segments, 1);
    assert_true(st3.next_offset == 2000);
    log_close(log);
    rmdir_all(dir);
}

typedef struct appender {
    log_part_t *p;
    int id, n;
    log_ack_t ack;
    uint64_t *offsets;
} appender_t;

static void *appender_main(void *arg)
{
    appender_t *a = arg;
    weir_buf_t scratch = WEIR_BUF_INIT;
    char err[256];
    for (int i = 0; i < a->n; i++) {
        char v[64];
        int len = snprintf(v, sizeof v, "{\"t\":%d,\"i\":%d}", a->id, i);
        log_rec_t r = {0, 1, LOG_REC_EVENT, {v, 1}, {v, (size_t)len}};
        if (log_append(a->p, &r, 1, a->ack, &scratch, &a->offsets[i], err, sizeof err) != 0) abort();
    }
    buf_free(&scratch);
    return NULL;
}

/* 16 threads append to one partition, durable: every record lands once,
 * offsets are contiguous, each thread's records keep their order, and the
 * group commit makes fewer fdatasyncs than appends. Then 4 threads on 4
 * partitions at once. */
static void concurrent_appenders_and_group_commit(void **state)
{
    (void)state;
    char *dir = tmpdir();
    log_config_t cfg;
    small_config(&cfg);
    cfg.segment_bytes = 64 << 10;
    log_t *log;
    log_part_t *p = open_part(dir, &cfg, &log, 4, 0);
    enum { T = 16, N = 150 };
    appender_t a[T];
    pthread_t th[T];
    for (int t = 0; t < T; t++) {
        a[t] = (appender_t){p, t, N, LOG_ACK_DURABLE, calloc(N, sizeof(uint64_t))};
        pthread_create(&th[t], NULL, appender_main, &a[t]);
    }
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    log_part_stat_t st;
    log_part_stat(p, &st);
    assert_true(st.next_offset == (uint64_t)T * N);
    assert_true(st.appends == (uint64_t)T * N);
    assert_true(st.syncs < st.appends); /* group commit shared fdatasyncs */
    char *seen = calloc(T * N, 1);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < N; i++) {
            assert_true(a[t].offsets[i] < (uint64_t)T * N);
            assert_int_equal(seen[a[t].offsets[i]], 0);
            seen[a[t].offsets[i]] = 1;
            if (i) assert_true(a[t].offsets[i] > a[t].offsets[i - 1]);
        }
    /* Reading back gives each offset the record its appender was told. */
    log_reader_t *r;
    char err[256];
    assert_int_equal(log_reader_open(p, 0, &r, err, sizeof err), 0);
    log_rec_t rec;
    int got = 0;
    while (log_reader_next(r, &rec, err, sizeof err) == 1) {
        int tt, ii;
        assert_int_equal(sscanf(rec.value.ptr, "{\"t\":%d,\"i\":%d}", &tt, &ii), 2);
        assert_true(a[tt].offsets[ii] == rec.offset);
        got++;
    }
    assert_int_equal(got, T * N);
    log_reader_close(r);
    free(seen);
    for (int t = 0; t < T; t++) free(a[t].offsets);

    /* Different partitions from different threads at once. */
    log_topic_t *topic;
    assert_int_equal(log_topic_open(log, "events", 0, &topic, err, sizeof err), 0);
    for (int t = 0; t < 4; t++) {
        a[t] = (appender_t){log_topic_part(topic, (uint32_t)t), t, 2000, LOG_ACK_WRITTEN, calloc(2000, sizeof(uint64_t))};
        pthread_create(&th[t], NULL, appender_main, &a[t]);
    }
    for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
    for (int t = 1; t < 4; t++) {
        for (int i = 0; i < 2000; i++) assert_true(a[t].offsets[i] == (uint64_t)i);
    }
    for (int t = 0; t < 4; t++) free(a[t].offsets);
    log_close(log);
    assert_int_equal(log_check(dir, NULL, NULL, NULL), 0);
    rmdir_all(dir);
}

static void one_process_owns_the_log(void **state)
{
    (void)state;
    char *dir = tmpdir();
    log_config_t cfg;
    small_config(&cfg);
    log_t *a, *b;
    char err[256];
    assert_int_equal(log_open(dir, &cfg, &a, err, sizeof err), 0);
    /* flock is per open file description: a second open in-process conflicts too */
    assert_int_equal(log_open(dir, &cfg, &b, err, sizeof err), WEIR_EEXIST);
    assert_non_null(strstr(err, "in use"));
    log_topic_t *t;
    assert_int_equal(log_topic_open(a, "x", 3, &t, err, sizeof err), 0);
    assert_int_equal(log_topic_open(a, "x", 4, &t, err, sizeof err), WEIR_EEXIST);
    assert_int_equal(log_topic_open(a, "../x", 1, &t, err, sizeof err), WEIR_EINVAL);
    assert_int_equal(log_topic_open(a, "nope", 0, &t, err, sizeof err), WEIR_ENOENT);
    log_close(a);
    assert_int_equal(log_open(dir, &cfg, &b, err, sizeof err), 0);
    assert_int_equal(log_topic_open(b, "x", 0, &t, err, sizeof err), 0);
    assert_int_equal(log_topic_partitions(t), 3);
    log_close(b);
    rmdir_all(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_read_across_rolls),
        cmocka_unit_test(read_from_time),
        cmocka_unit_test(torn_tail_every_byte),
        cmocka_unit_test(read_only_open_changes_nothing),
        cmocka_unit_test(mid_segment_corruption_is_an_error),
        cmocka_unit_test(reader_checks_what_open_did_not),
        cmocka_unit_test(recovery_point_after_crash),
        cmocka_unit_test(partitions_open_in_parallel),
        cmocka_unit_test(index_rebuilt_when_missing_or_wrong),
        cmocka_unit_test(retention_by_size_and_age),
        cmocka_unit_test(concurrent_appenders_and_group_commit),
        cmocka_unit_test(one_process_owns_the_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
