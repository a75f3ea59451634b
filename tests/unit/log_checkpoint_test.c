/* log_checkpoint_test.c — the checkpoint store through its public API:
 * round trip of several partitions (empty, small, multi-MB, streamed in odd
 * pieces, from several threads); a crash after every step of the write
 * protocol and of pruning (a forked child with WEIR_CKPT_CRASH_AT=k, for
 * every k) recovers exactly the old or the new checkpoint; a flipped byte or
 * a truncation in any file of the newest checkpoint falls back to the
 * previous one naming the file and byte range; pruning; leftover .tmp/.del
 * removal; the lock; writer misuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/crc32c.h"
#include "base/error.h"
#include "log/checkpoint.h"

/* --- helpers ------------------------------------------------------------ */

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static char *tmpdir(void)
{
    char *d = strdup("/tmp/weir-ckpt-test-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void rmdir_all(char *d)
{
    nftw(d, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(d);
}

static ckpt_store_t *store_open(const char *dir)
{
    ckpt_store_t *s;
    char err[512];
    if (ckpt_store_open(dir, 0, &s, err, sizeof err)) fail_msg("store_open: %s", err);
    return s;
}

/* Deterministic bytes: blob of partition p of the checkpoint made with seed. */
static void fill(uint8_t *b, size_t n, uint64_t seed, uint32_t p)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + p + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = (uint8_t)x;
    }
}

typedef struct layout {
    uint32_t parts;
    size_t lens[8];
} layout_t;

/* Blob sizes: empty, one byte, exactly a block, a multi-MB one that spans
 * several write buffers and ends mid-block. */
static const layout_t big = {4, {0, 1, 65536, 3u * 1048576 + 12345}};
static const layout_t small = {3, {0, 100, 70000}};
/* For the crash test: a part written in several write() calls. */
static const layout_t mid = {3, {0, 100, 2621440 + 7}};

static uint64_t log_off(uint64_t seed, uint32_t p)
{
    return seed * 1000 + p;
}
static uint64_t dec_off(uint64_t seed, uint32_t p)
{
    return seed * 100 + p;
}

/* Writes partition p's blob in pieces of varying size (1, 2, 4 ... bytes). */
static void write_part(ckpt_writer_t *w, uint64_t seed, uint32_t p, size_t len)
{
    char err[512], wm[32];
    snprintf(wm, sizeof wm, "%" PRIu64, seed * 7);
    ckpt_kv_t kv[2] = {{{"watermark", 9}, {wm, strlen(wm)}}, {{"bin\0key", 7}, {"\0\1\2", 3}}};
    ckpt_part_desc_t d = {p, log_off(seed, p), dec_off(seed, p), kv, p == 1 ? 0 : 2};
    uint8_t *b = malloc(len ? len : 1);
    fill(b, len, seed, p);
    ckpt_part_writer_t *pw;
    if (ckpt_write_part_begin(w, &d, &pw, err, sizeof err)) fail_msg("part_begin: %s", err);
    size_t at = 0, piece = 1;
    while (at < len) {
        size_t n = piece < len - at ? piece : len - at;
        if (ckpt_write_part_append(pw, b + at, n, err, sizeof err)) fail_msg("append: %s", err);
        at += n;
        piece = piece * 2 + 1;
    }
    if (ckpt_write_part_end(pw, err, sizeof err)) fail_msg("part_end: %s", err);
    free(b);
}

static uint64_t write_ckpt(ckpt_store_t *s, uint64_t seed, const layout_t *l)
{
    char err[512];
    ckpt_kv_t meta[1] = {{{"spec_hash", 9}, {"ab cd%\n", 7}}};
    ckpt_write_opts_t o = {0, "fraud demo%", l->parts, 1700000000000 + (int64_t)seed, meta, 1};
    ckpt_writer_t *w;
    if (ckpt_writer_begin(s, &o, &w, err, sizeof err)) fail_msg("writer_begin: %s", err);
    uint64_t id = ckpt_writer_id(w);
    /* Partitions out of order: the manifest lists them in order anyway. */
    for (uint32_t i = 0; i < l->parts; i++) {
        uint32_t p = (i * 5 + 1) % l->parts;
        write_part(w, seed, p, l->lens[p]);
    }
    if (ckpt_writer_commit(w, err, sizeof err)) fail_msg("commit: %s", err);
    return id;
}

/* Checks that c is exactly the checkpoint written with seed and layout l. */
static void expect_ckpt(const ckpt_t *c, uint64_t seed, const layout_t *l)
{
    const ckpt_info_t *info = ckpt_info(c);
    assert_int_equal(info->partitions, l->parts);
    assert_string_equal(info->pipeline, "fraud demo%");
    assert_true(info->created_ms == 1700000000000 + (int64_t)seed);
    weir_slice_t v;
    assert_true(ckpt_kv_find(info->meta, info->nmeta, "spec_hash", &v));
    assert_int_equal(v.len, 7);
    assert_memory_equal(v.ptr, "ab cd%\n", 7);
    for (uint32_t p = 0; p < l->parts; p++) {
        const ckpt_part_t *cp = ckpt_part(c, p);
        assert_int_equal(cp->partition, p);
        assert_true(cp->log_offset == log_off(seed, p));
        assert_true(cp->decision_offset == dec_off(seed, p));
        assert_true(info->parts[p].log_offset == log_off(seed, p));
        assert_int_equal(cp->blob.len, l->lens[p]);
        uint8_t *want = malloc(l->lens[p] ? l->lens[p] : 1);
        fill(want, l->lens[p], seed, p);
        assert_memory_equal(cp->blob.ptr, want, l->lens[p]);
        free(want);
        if (p == 1) {
            assert_int_equal(cp->nmeta, 0);
            continue;
        }
        char wm[32];
        snprintf(wm, sizeof wm, "%" PRIu64, seed * 7);
        assert_int_equal(cp->nmeta, 2);
        assert_true(ckpt_kv_find(cp->meta, cp->nmeta, "watermark", &v));
        assert_int_equal(v.len, strlen(wm));
        assert_memory_equal(v.ptr, wm, v.len);
        assert_int_equal(cp->meta[1].key.len, 7);
        assert_memory_equal(cp->meta[1].value.ptr, "\0\1\2", 3);
    }
}

static char *ckpt_dir(const char *data, uint64_t id)
{
    char *p = malloc(strlen(data) + 64);
    sprintf(p, "%s/checkpoints/%020" PRIu64, data, id);
    return p;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Collects what ckpt_open_newest_valid skipped. */
typedef struct skips {
    int n;
    uint64_t id[8];
    char why[8][512];
} skips_t;

static void on_skip(void *ctx, uint64_t id, const char *why)
{
    skips_t *s = ctx;
    if (s->n < 8) {
        s->id[s->n] = id;
        snprintf(s->why[s->n], sizeof s->why[0], "%s", why);
    }
    s->n++;
}

/* --- tests -------------------------------------------------------------- */

static void round_trip(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[512];
    ckpt_store_t *s = store_open(dir);
    ckpt_t *c;
    assert_int_equal(ckpt_open_newest_valid(s, &c, NULL, NULL, err, sizeof err), WEIR_ENOENT);
    assert_int_equal(write_ckpt(s, 1, &big), 1);
    assert_int_equal(write_ckpt(s, 2, &small), 2);
    ckpt_store_close(s);

    s = store_open(dir);
    skips_t sk = {0};
    if (ckpt_open_newest_valid(s, &c, on_skip, &sk, err, sizeof err)) fail_msg("open: %s", err);
    assert_int_equal(sk.n, 0);
    assert_int_equal(ckpt_info(c)->id, 2);
    expect_ckpt(c, 2, &small);
    ckpt_close(c);
    if (ckpt_open(s, 1, &c, err, sizeof err)) fail_msg("open 1: %s", err);
    expect_ckpt(c, 1, &big);
    ckpt_close(c);
    assert_int_equal(ckpt_open(s, 3, &c, err, sizeof err), WEIR_ENOENT);

    for (int level = CKPT_CHECK_QUICK; level <= CKPT_CHECK_FULL; level++) {
        ckpt_info_t *list;
        size_t n;
        assert_int_equal(ckpt_list(s, level, &list, &n, err, sizeof err), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[0].id, 2);
        assert_int_equal(list[1].id, 1);
        assert_int_equal(list[0].status, 0);
        assert_int_equal(list[1].status, 0);
        assert_string_equal(list[1].problem, "");
        assert_int_equal(list[1].partitions, 4);
        /* Part file = header, keys/values, blob, block table, trailer. */
        uint64_t data = 32 + (2 + 9 + 4 + 1) + (2 + 7 + 4 + 3) + 3u * 1048576 + 12345;
        uint64_t want = data + 4 * ((data + 65535) / 65536) + 16;
        assert_true(list[1].parts[3].bytes == want);
        assert_true(list[1].parts[3].log_offset == log_off(1, 3));
        assert_true(list[1].bytes > 3u * 1048576);
        ckpt_list_free(list, n);
    }
    /* Ids only increase; an explicit id must exceed the newest. */
    ckpt_write_opts_t o = {2, "p", 1, 0, NULL, 0};
    ckpt_writer_t *w;
    assert_int_equal(ckpt_writer_begin(s, &o, &w, err, sizeof err), WEIR_EINVAL);
    assert_non_null(strstr(err, "not above"));
    o.id = 10;
    assert_int_equal(ckpt_writer_begin(s, &o, &w, err, sizeof err), 0);
    assert_int_equal(ckpt_writer_id(w), 10);
    assert_int_equal(
        ckpt_write_part(w, &(ckpt_part_desc_t){0, 5, 6, NULL, 0}, "x", 1, err, sizeof err), 0);
    assert_int_equal(ckpt_writer_commit(w, err, sizeof err), 0);
    o.id = 0;
    assert_int_equal(ckpt_writer_begin(s, &o, &w, err, sizeof err), 0);
    assert_int_equal(ckpt_writer_id(w), 11);
    ckpt_writer_abort(w);
    ckpt_store_close(s);
    rmdir_all(dir);
}

typedef struct thread_arg {
    ckpt_writer_t *w;
    uint32_t p;
} thread_arg_t;

static void *part_thread(void *a)
{
    thread_arg_t *t = a;
    write_part(t->w, 5, t->p, 300000 + t->p * 1000);
    return NULL;
}

static void parts_from_threads(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[512];
    ckpt_store_t *s = store_open(dir);
    ckpt_write_opts_t o = {
        0, "fraud demo%", 8, 1700000000005, (ckpt_kv_t[]){{{"spec_hash", 9}, {"ab cd%\n", 7}}}, 1};
    ckpt_writer_t *w;
    assert_int_equal(ckpt_writer_begin(s, &o, &w, err, sizeof err), 0);
    pthread_t th[8];
    thread_arg_t args[8];
    for (uint32_t p = 0; p < 8; p++) {
        args[p] = (thread_arg_t){w, p};
        pthread_create(&th[p], NULL, part_thread, &args[p]);
    }
    for (int p = 0; p < 8; p++)
        pthread_join(th[p], NULL);
    assert_int_equal(ckpt_writer_commit(w, err, sizeof err), 0);
    ckpt_t *c;
    assert_int_equal(ckpt_open_newest_valid(s, &c, NULL, NULL, err, sizeof err), 0);
    layout_t l = {8, {0}};
    for (uint32_t p = 0; p < 8; p++)
        l.lens[p] = 300000 + p * 1000;
    expect_ckpt(c, 5, &l);
    ckpt_close(c);
    ckpt_store_close(s);
    rmdir_all(dir);
}

static void writer_misuse(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[512];
    ckpt_store_t *s = store_open(dir);
    ckpt_writer_t *w, *w2;
    ckpt_write_opts_t o = {0, "p", 2, 0, NULL, 0};
    assert_int_equal(ckpt_writer_begin(s, &o, &w, err, sizeof err), 0);
    assert_int_equal(ckpt_writer_begin(s, &o, &w2, err, sizeof err), WEIR_EEXIST);
    ckpt_part_desc_t d = {0, 1, 1, NULL, 0};
    assert_int_equal(ckpt_write_part(w, &d, "a", 1, err, sizeof err), 0);
    assert_int_equal(ckpt_write_part(w, &d, "a", 1, err, sizeof err), WEIR_EEXIST);
    d.partition = 2;
    assert_int_equal(ckpt_write_part(w, &d, "a", 1, err, sizeof err), WEIR_EINVAL);
    /* Partition 1 missing: not committed, nothing left behind. */
    assert_int_equal(ckpt_writer_commit(w, err, sizeof err), WEIR_EINVAL);
    assert_non_null(strstr(err, "partition 1 was not written"));
    char *tmp = malloc(strlen(dir) + 64);
    sprintf(tmp, "%s/checkpoints/%020d.tmp", dir, 1);
    assert_false(exists(tmp));
    /* Abort removes the .tmp directory. */
    assert_int_equal(ckpt_writer_begin(s, &o, &w, err, sizeof err), 0);
    assert_true(exists(tmp));
    ckpt_writer_abort(w);
    assert_false(exists(tmp));
    free(tmp);
    /* Bad keys. */
    o.meta = (ckpt_kv_t[]){{{"has space", 9}, {"v", 1}}};
    o.nmeta = 1;
    assert_int_equal(ckpt_writer_begin(s, &o, &w, err, sizeof err), WEIR_EINVAL);
    o.partitions = 0;
    o.nmeta = 0;
    assert_int_equal(ckpt_writer_begin(s, &o, &w, err, sizeof err), WEIR_EINVAL);
    ckpt_info_t *list;
    size_t n;
    assert_int_equal(ckpt_list(s, CKPT_CHECK_FULL, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    ckpt_list_free(list, n);
    ckpt_store_close(s);
    rmdir_all(dir);
}

static void one_writer_process(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[512];
    ckpt_store_t *a = store_open(dir), *b, *ro;
    assert_int_equal(ckpt_store_open(dir, 0, &b, err, sizeof err), WEIR_EEXIST);
    assert_non_null(strstr(err, "in use"));
    assert_int_equal(ckpt_store_open(dir, CKPT_READ_ONLY, &ro, err, sizeof err), 0);
    ckpt_writer_t *w;
    ckpt_write_opts_t o = {0, "p", 1, 0, NULL, 0};
    assert_int_equal(ckpt_writer_begin(ro, &o, &w, err, sizeof err), WEIR_EINVAL);
    assert_int_equal(ckpt_prune(ro, 2, NULL, err, sizeof err), WEIR_EINVAL);
    ckpt_store_close(ro);
    ckpt_store_close(a);
    assert_int_equal(ckpt_store_open(dir, 0, &b, err, sizeof err), 0);
    ckpt_store_close(b);
    /* A missing data directory is an error read-write, an empty store read-only. */
    char *missing = malloc(strlen(dir) + 16);
    sprintf(missing, "%s/nope", dir);
    assert_int_equal(ckpt_store_open(missing, 0, &b, err, sizeof err), WEIR_ENOENT);
    assert_int_equal(ckpt_store_open(missing, CKPT_READ_ONLY, &ro, err, sizeof err), 0);
    ckpt_info_t *list;
    size_t n;
    assert_int_equal(ckpt_list(ro, CKPT_CHECK_FULL, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    ckpt_list_free(list, n);
    ckpt_store_close(ro);
    free(missing);
    rmdir_all(dir);
}

/* Records the kind of every step, to find the commit point. */
typedef struct trace {
    int n;
    char kind[256][8];
    char path[256][256];
} trace_t;

static void on_step(void *ctx, uint64_t step, const char *kind, const char *path)
{
    trace_t *t = ctx;
    assert_int_equal(step, (uint64_t)t->n + 1);
    if (t->n < 256) {
        snprintf(t->kind[t->n], sizeof t->kind[0], "%s", kind);
        snprintf(t->path[t->n], sizeof t->path[0], "%s", path);
    }
    t->n++;
}

/* The new checkpoint (seed 2) and pruning of the old one (seed 1, keep 1):
 * what the crashed child runs. */
static void new_then_prune(ckpt_store_t *s)
{
    char err[512];
    write_ckpt(s, 2, &mid);
    if (ckpt_prune(s, 1, NULL, err, sizeof err)) fail_msg("prune: %s", err);
}

static void crash_after_every_step(void **state)
{
    (void)state;
    char err[512];
    /* Dry run: the steps of writing a checkpoint and pruning the old one. */
    char *dir = tmpdir();
    ckpt_store_t *s = store_open(dir);
    write_ckpt(s, 1, &mid);
    ckpt_store_close(s);
    s = store_open(dir); /* steps count from 1 per handle, as in the child */
    trace_t tr = {0};
    ckpt_store_set_fault_hook(s, on_step, &tr);
    new_then_prune(s);
    ckpt_store_close(s);
    rmdir_all(dir);
    int commit = -1, total = tr.n;
    if (getenv("WEIR_TEST_VERBOSE"))
        for (int i = 0; i < total; i++)
            print_message("step %d: %s %s\n", i + 1, tr.kind[i], tr.path[i]);
    for (int i = 0; i < total; i++)
        if (!strcmp(tr.kind[i], "rename") && commit < 0) commit = i + 1;
    /* The protocol as documented: mkdir, parts (writes, fsync), manifest
     * write + fsync, fsync dir, rename, fsync parent; then the prune. */
    assert_string_equal(tr.kind[0], "mkdir");
    assert_true(commit >= 8);
    assert_string_equal(tr.kind[commit - 2], "fsync");
    assert_non_null(strstr(tr.path[commit - 2], ".tmp"));
    assert_string_equal(tr.kind[commit - 3], "fsync");
    assert_non_null(strstr(tr.path[commit - 3], "MANIFEST"));
    assert_string_equal(tr.kind[commit - 4], "write");
    assert_string_equal(tr.kind[commit], "fsync");
    assert_string_equal(tr.kind[commit + 1], "rename"); /* prune: old -> .del */
    assert_non_null(strstr(tr.path[commit + 1], ".del"));
    assert_string_equal(tr.kind[total - 1], "rmdir");

    int crashes = 0;
    for (int k = 1; k <= total + 1; k++) {
        dir = tmpdir();
        s = store_open(dir);
        write_ckpt(s, 1, &mid);
        ckpt_store_close(s);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 2);
            char v[32];
            snprintf(v, sizeof v, "%d", k);
            setenv("WEIR_CKPT_CRASH_AT", v, 1);
            ckpt_store_t *cs;
            if (ckpt_store_open(dir, 0, &cs, err, sizeof err)) _exit(3);
            new_then_prune(cs);
            ckpt_store_close(cs);
            _exit(0);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        if (k <= total) {
            assert_int_equal(WEXITSTATUS(st), 137);
            crashes++;
        } else {
            assert_int_equal(WEXITSTATUS(st), 0);
        }
        /* Recovery: exactly the old checkpoint before the rename, exactly
         * the new one from it on; never a mix, never nothing. */
        s = store_open(dir);
        skips_t sk = {0};
        ckpt_t *c;
        if (ckpt_open_newest_valid(s, &c, on_skip, &sk, err, sizeof err))
            fail_msg("after a crash at step %d (%s %s): %s", k, tr.kind[k - 1], tr.path[k - 1],
                     err);
        assert_int_equal(sk.n, 0);
        if (k < commit) {
            assert_int_equal(ckpt_info(c)->id, 1);
            expect_ckpt(c, 1, &mid);
            assert_int_equal(ckpt_store_removed_leftovers(s), 1); /* the .tmp */
        } else {
            assert_int_equal(ckpt_info(c)->id, 2);
            expect_ckpt(c, 2, &mid);
            /* After the rename the old one is intact, gone (.del removed) or absent. */
            ckpt_info_t *list;
            size_t n;
            assert_int_equal(ckpt_list(s, CKPT_CHECK_FULL, &list, &n, err, sizeof err), 0);
            for (size_t i = 0; i < n; i++)
                assert_int_equal(list[i].status, 0);
            assert_true(n == (k <= commit + 1 ? 2u : 1u));
            ckpt_list_free(list, n);
        }
        ckpt_close(c);
        /* Nothing unfinished survives an open. */
        char *cdir = malloc(strlen(dir) + 32);
        sprintf(cdir, "%s/checkpoints", dir);
        DIR *d = opendir(cdir);
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                assert_null(strchr(e->d_name, '.'));
        closedir(d);
        free(cdir);
        ckpt_store_close(s);
        rmdir_all(dir);
    }
    assert_int_equal(crashes, total);
}

/* The one reason in sk must name file and, where it gives a byte range, one
 * that holds pos; pos < 0: no byte position is expected (a missing file). */
static void expect_reason(const skips_t *sk, const char *file, long pos)
{
    assert_int_equal(sk->n, 1);
    assert_int_equal(sk->id[0], 2);
    const char *why = sk->why[0];
    if (!strstr(why, file)) fail_msg("reason does not name %s: %s", file, why);
    const char *r = strstr(why, "bytes [");
    unsigned long long a, b;
    if (r && sscanf(r, "bytes [%llu, %llu)", &a, &b) == 2 && strncmp(file, "MANIFEST", 8)) {
        if (!((long long)a <= pos && pos < (long long)b))
            fail_msg("flip at %ld not in the reported range: %s", pos, why);
    } else if (pos >= 0 && !strstr(why, "byte")) {
        fail_msg("reason names no byte offset: %s", why);
    }
}

static void flip(const char *path, long pos)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, pos), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, pos), 1);
    close(fd);
}

static long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

/* Opens the newest valid checkpoint with a fresh handle (a handle that has
 * verified a checkpoint trusts it) and expects the fallback to 1. */
static void expect_fallback(const char *dir, const char *file, long pos)
{
    char err[512];
    ckpt_store_t *s = store_open(dir);
    skips_t sk = {0};
    ckpt_t *c;
    if (ckpt_open_newest_valid(s, &c, on_skip, &sk, err, sizeof err)) fail_msg("open: %s", err);
    assert_int_equal(ckpt_info(c)->id, 1);
    expect_ckpt(c, 1, &small);
    ckpt_close(c);
    expect_reason(&sk, file, pos);
    /* The listing says the same. */
    ckpt_info_t *list;
    size_t n;
    assert_int_equal(ckpt_list(s, CKPT_CHECK_FULL, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].status, WEIR_ECORRUPT);
    assert_non_null(strstr(list[0].problem, file));
    assert_int_equal(list[1].status, 0);
    ckpt_list_free(list, n);
    ckpt_store_close(s);
}

static void damage_falls_back(void **state)
{
    (void)state;
    char *dir = tmpdir();
    ckpt_store_t *s = store_open(dir);
    write_ckpt(s, 1, &small);
    write_ckpt(s, 2, &small);
    ckpt_store_close(s);
    char *c2 = ckpt_dir(dir, 2);
    const char *files[] = {"MANIFEST", "part-00000", "part-00001", "part-00002"};
    for (int f = 0; f < 4; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", c2, files[f]);
        long size = file_size(path);
        /* Every byte of the small files; a sample of the 70 KB one (header,
         * each block, the table, the trailer). */
        for (long pos = 0; pos < size; pos++) {
            if (size > 4096 && pos > 64 && pos < size - 64 && pos % 997 != 0 && pos != 65535 &&
                pos != 65536)
                continue;
            flip(path, pos);
            expect_fallback(dir, files[f], pos);
            flip(path, pos);
        }
        /* Truncations: by one byte, to half, to nothing. */
        long cuts[] = {size - 1, size / 2, 0};
        char *copy = malloc((size_t)size);
        int fd = open(path, O_RDONLY);
        assert_int_equal(read(fd, copy, (size_t)size), size);
        close(fd);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(truncate(path, cuts[i]), 0);
            expect_fallback(dir, files[f], cuts[i]);
            fd = open(path, O_WRONLY | O_TRUNC);
            assert_int_equal(write(fd, copy, (size_t)size), size);
            close(fd);
        }
        free(copy);
        /* Missing. */
        char moved[600];
        snprintf(moved, sizeof moved, "%s.away", path);
        assert_int_equal(rename(path, moved), 0);
        expect_fallback(dir, files[f], -1);
        assert_int_equal(rename(moved, path), 0);
    }
    /* A part file swapped in from the other checkpoint: its own CRCs hold,
     * the manifest's do not. */
    char *c1 = ckpt_dir(dir, 1);
    char from[512], to[512], keep[600];
    snprintf(from, sizeof from, "%s/part-00001", c1);
    snprintf(to, sizeof to, "%s/part-00001", c2);
    snprintf(keep, sizeof keep, "%s.keep", to);
    assert_int_equal(rename(to, keep), 0);
    assert_int_equal(link(from, to), 0);
    expect_fallback(dir, "part-00001", 0);
    assert_int_equal(unlink(to), 0);
    assert_int_equal(rename(keep, to), 0);
    /* All intact again: 2 is the newest valid. */
    s = store_open(dir);
    ckpt_t *c;
    char err[512];
    assert_int_equal(ckpt_open_newest_valid(s, &c, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(ckpt_info(c)->id, 2);
    ckpt_close(c);
    /* Both damaged: nothing verifies, which says replay from the start. */
    char m1[512], m2[512];
    snprintf(m1, sizeof m1, "%s/MANIFEST", c1);
    snprintf(m2, sizeof m2, "%s/MANIFEST", c2);
    flip(m1, 30);
    flip(m2, 30);
    ckpt_store_close(s);
    s = store_open(dir);
    skips_t sk = {0};
    assert_int_equal(ckpt_open_newest_valid(s, &c, on_skip, &sk, err, sizeof err), WEIR_ENOENT);
    assert_int_equal(sk.n, 2);
    assert_non_null(strstr(err, "none of the 2"));
    ckpt_store_close(s);
    free(c1);
    free(c2);
    rmdir_all(dir);
}

static int count_ckpts(const char *dir, uint64_t *ids)
{
    char err[512];
    ckpt_store_t *ro;
    assert_int_equal(ckpt_store_open(dir, CKPT_READ_ONLY, &ro, err, sizeof err), 0);
    ckpt_info_t *list;
    size_t n;
    assert_int_equal(ckpt_list(ro, CKPT_CHECK_QUICK, &list, &n, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++)
        ids[i] = list[i].id;
    ckpt_list_free(list, n);
    ckpt_store_close(ro);
    return (int)n;
}

static void prune_keeps_newest_valid(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[512];
    uint64_t ids[16];
    uint32_t deleted;
    ckpt_store_t *s = store_open(dir);
    for (int i = 1; i <= 5; i++)
        write_ckpt(s, (uint64_t)i, &small);
    assert_int_equal(ckpt_prune(s, 0, &deleted, err, sizeof err), WEIR_EINVAL);
    assert_int_equal(ckpt_prune(s, 2, &deleted, err, sizeof err), 0);
    assert_int_equal(deleted, 3);
    assert_int_equal(count_ckpts(dir, ids), 2);
    assert_int_equal(ids[0], 5);
    assert_int_equal(ids[1], 4);
    assert_int_equal(ckpt_prune(s, 2, &deleted, err, sizeof err), 0);
    assert_int_equal(deleted, 0);
    for (int i = 6; i <= 8; i++)
        write_ckpt(s, (uint64_t)i, &small);
    ckpt_store_close(s);
    /* 4..8 on disk; damage 8 (newest) and 6. A fresh handle must verify. */
    char *c8 = ckpt_dir(dir, 8), *c6 = ckpt_dir(dir, 6), p[600];
    snprintf(p, sizeof p, "%s/part-00002", c8);
    flip(p, 40000);
    snprintf(p, sizeof p, "%s/MANIFEST", c6);
    flip(p, 3);
    s = store_open(dir);
    /* Valid newest first: 7, 5. Keep them and the failing 8 and 6 newer
     * than 5; delete 4. */
    assert_int_equal(ckpt_prune(s, 2, &deleted, err, sizeof err), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(count_ckpts(dir, ids), 4);
    assert_int_equal(ids[3], 5);
    /* Fewer valid than keep: nothing goes. */
    assert_int_equal(ckpt_prune(s, 3, &deleted, err, sizeof err), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(count_ckpts(dir, ids), 4);
    /* keep 1: the newest valid (7) stays, with the failing 8; 6 and 5 go. */
    assert_int_equal(ckpt_prune(s, 1, &deleted, err, sizeof err), 0);
    assert_int_equal(deleted, 2);
    assert_int_equal(count_ckpts(dir, ids), 2);
    assert_int_equal(ids[0], 8);
    assert_int_equal(ids[1], 7);
    ckpt_t *c;
    assert_int_equal(ckpt_open_newest_valid(s, &c, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(ckpt_info(c)->id, 7);
    expect_ckpt(c, 7, &small);
    ckpt_close(c);
    /* The next id is above every one on disk, valid or not. */
    assert_int_equal(write_ckpt(s, 9, &small), 9);
    ckpt_store_close(s);
    free(c8);
    free(c6);
    rmdir_all(dir);
}

static void leftovers_removed_at_open(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[512];
    ckpt_store_t *s = store_open(dir);
    write_ckpt(s, 1, &small);
    ckpt_store_close(s);
    const char *names[] = {"00000000000000000002.tmp", "00000000000000000001.del",
                           "00000000000000000007.tmp"};
    char p[600];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/checkpoints/%s", dir, names[i]);
        assert_int_equal(mkdir(p, 0755), 0);
        snprintf(p, sizeof p, "%s/checkpoints/%s/part-00000", dir, names[i]);
        int fd = open(p, O_WRONLY | O_CREAT, 0644);
        assert_int_equal(write(fd, "junk", 4), 4);
        close(fd);
    }
    /* Unrelated names are left alone. */
    snprintf(p, sizeof p, "%s/checkpoints/README", dir);
    close(open(p, O_WRONLY | O_CREAT, 0644));
    /* Read-only changes nothing. */
    ckpt_store_t *ro;
    assert_int_equal(ckpt_store_open(dir, CKPT_READ_ONLY, &ro, err, sizeof err), 0);
    ckpt_info_t *list;
    size_t n;
    assert_int_equal(ckpt_list(ro, CKPT_CHECK_FULL, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    ckpt_list_free(list, n);
    ckpt_store_close(ro);
    snprintf(p, sizeof p, "%s/checkpoints/%s", dir, names[2]);
    assert_true(exists(p));

    s = store_open(dir);
    assert_int_equal(ckpt_store_removed_leftovers(s), 3);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/checkpoints/%s", dir, names[i]);
        assert_false(exists(p));
    }
    snprintf(p, sizeof p, "%s/checkpoints/README", dir);
    assert_true(exists(p));
    ckpt_t *c;
    assert_int_equal(ckpt_open_newest_valid(s, &c, NULL, NULL, err, sizeof err), 0);
    expect_ckpt(c, 1, &small);
    ckpt_close(c);
    ckpt_store_close(s);
    rmdir_all(dir);
}

static void manifest_round_trip_and_rejects(void **state)
{
    (void)state;
    ckpt_part_info_t parts[2] = {{0, 100, 0xdeadbeef, 5, 6}, {1, 52, 0x01234567, 7, 8}};
    ckpt_kv_t meta[2] = {{{"k", 1}, {"", 0}}, {{"x.y-z_1", 7}, {"a%b c\n\xff", 7}}};
    ckpt_info_t in = {0};
    in.id = 42;
    in.created_ms = -5;
    in.pipeline = "a b%";
    in.partitions = 2;
    in.parts = parts;
    in.meta = meta;
    in.nmeta = 2;
    weir_buf_t b = WEIR_BUF_INIT;
    ckpt_manifest_encode(&in, &b);
    ckpt_info_t out = {0};
    char err[512];
    if (ckpt_manifest_parse(b.data, b.len, "M", &out, err, sizeof err)) fail_msg("%s", err);
    assert_true(out.id == 42 && out.created_ms == -5 && out.partitions == 2);
    assert_string_equal(out.pipeline, "a b%");
    assert_int_equal(out.nmeta, 2);
    assert_int_equal(out.meta[0].value.len, 0);
    assert_memory_equal(out.meta[1].value.ptr, "a%b c\n\xff", 7);
    assert_true(out.parts[1].crc == 0x01234567 && out.parts[1].decision_offset == 8);
    ckpt_info_free(&out);
    /* One spelling per manifest: other spellings are rejected even with a
     * good CRC (the fuzz target checks encode(parse(x)) == x). */
    const char *body_ok = "weir-checkpoint 1\nid 1\ncreated_ms 0\npipeline a%20b\npartitions 1\n"
                          "meta k v\npart 0 part-00000 52 0000abcd 5 6\n";
    const char *bodies[] = {
        "weir-checkpoint 1\nid 01\ncreated_ms 0\npipeline a\npartitions 1\n"
        "part 0 part-00000 52 0000abcd 5 6\n",
        "weir-checkpoint 1\nid 1\ncreated_ms -0\npipeline a\npartitions 1\n"
        "part 0 part-00000 52 0000abcd 5 6\n",
        "weir-checkpoint 1\nid 1\ncreated_ms 0\npipeline %41\npartitions 1\n"
        "part 0 part-00000 52 0000abcd 5 6\n",
        "weir-checkpoint 1\nid 1\ncreated_ms 0\npipeline a%2A\npartitions 1\n"
        "part 0 part-00000 52 0000abcd 5 6\n",
        "weir-checkpoint 1\nid 1\ncreated_ms 0\npipeline a\npartitions 1\n"
        "part 0 part-00000 52 0000ABCD 5 6\n",
        "weir-checkpoint 1\nid 1\ncreated_ms 0\npipeline a\npartitions 1\n"
        "part 0 part-00000 52 0000abcd 5 6 \n",
        "weir-checkpoint 1\nid 1\ncreated_ms 0\npipeline a\npartitions 1\n"
        "part 0  part-00000 52 0000abcd 5 6\n",
        "weir-checkpoint 1\nid 1\ncreated_ms 0\npipeline a\npartitions 1\nmeta k\n"
        "part 0 part-00000 52 0000abcd 5 6\n",
        "weir-checkpoint 1\nid 1\ncreated_ms 0\npipeline a\npartitions 2\n"
        "part 0 part-00000 52 0000abcd 5 6\n",
        "weir-checkpoint 1\nid 1\ncreated_ms 0\npipeline a\npartitions 1\n"
        "part 0 part-00001 52 0000abcd 5 6\n",
        "weir-checkpoint 1\nid 1\ncreated_ms 0\npipeline a\npartitions 1\n"
        "part 0 part-00000 51 0000abcd 5 6\n",
    };
    for (int i = -1; i < (int)(sizeof bodies / sizeof bodies[0]); i++) {
        const char *body = i < 0 ? body_ok : bodies[i];
        char text[512];
        int n = snprintf(text, sizeof text, "%send %08x\n", body, crc32c(0, body, strlen(body)));
        memset(&out, 0, sizeof out);
        int rc = ckpt_manifest_parse(text, (size_t)n, "M", &out, err, sizeof err);
        if (i < 0 && rc) fail_msg("canonical manifest rejected: %s", err);
        if (i >= 0 && rc != WEIR_ECORRUPT) fail_msg("accepted: %s", body);
        if (i >= 0) assert_non_null(strstr(err, "M line "));
        ckpt_info_free(&out);
    }
    /* Every cut is rejected. */
    for (size_t cut = 0; cut < b.len; cut++) {
        memset(&out, 0, sizeof out);
        assert_int_equal(ckpt_manifest_parse(b.data, cut, "M", &out, err, sizeof err),
                         WEIR_ECORRUPT);
        assert_non_null(strstr(err, "M"));
        ckpt_info_free(&out);
    }
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(parts_from_threads),
        cmocka_unit_test(writer_misuse),
        cmocka_unit_test(one_writer_process),
        cmocka_unit_test(manifest_round_trip_and_rejects),
        cmocka_unit_test(crash_after_every_step),
        cmocka_unit_test(damage_falls_back),
        cmocka_unit_test(prune_keeps_newest_valid),
        cmocka_unit_test(leftovers_removed_at_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
