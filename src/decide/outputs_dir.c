/* outputs_dir.c — the output files on disk across crashes (see
 * outputs_dir.h). */
#include "decide/outputs_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"

/* Opens DATA/outputs (its path into dir), or NULL. */
static DIR *open_dir(const char *datadir, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/outputs", datadir);
    return opendir(dir);
}

static int has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && strcmp(name + n - k, suffix) == 0;
}

int outputs_dir_cut(const char *datadir, outputs_t *out, const weir_slice_t *positions, char *err,
                    size_t errlen)
{
    char dir[4096];
    DIR *d = open_dir(datadir, dir, sizeof dir);
    if (!d) return 0;
    struct dirent *e;
    int moved = 0;
    while ((e = readdir(d))) {
        if (!has_suffix(e->d_name, ".ndjson")) continue;
        long long keep = 0;
        if (positions && !outputs_listed_end(positions->ptr, positions->len, e->d_name, &keep))
            continue; /* an older checkpoint's list, without it: kept */
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, 0) != 0) continue;
        if (st.st_size < keep) /* synced before the checkpoint: a disk that lost them */
            fprintf(stderr,
                    "weir run: recovery: %s/%s is %lld bytes, shorter than the %lld the checkpoint "
                    "recorded: lines written before the checkpoint are missing from it\n",
                    dir, e->d_name, (long long)st.st_size, keep);
        if (st.st_size <= keep) continue;
        char path[4352], aside[4360];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(aside, sizeof aside, "%s.cut", path);
        struct stat lst;
        if (!positions && fstatat(dirfd(d), e->d_name, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(lst.st_mode) && rename(path, aside) == 0) {
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd >= 0) {
                close(fd);
                moved = 1;
                continue;
            }
            /* no new file: the old one back, and truncated below */
            if (rename(aside, path) != 0)
                fprintf(stderr, "weir run: recovery: cannot move %s back from %s: %s\n", path,
                        aside, strerror(errno));
        }
        if (truncate(path, keep) != 0)
            fprintf(stderr, "weir run: recovery: cannot cut %s back to %lld bytes: %s\n", path,
                    keep, strerror(errno));
    }
    closedir(d);
    return moved ? outputs_reopen(out, err, errlen) : 0;
}

int outputs_dir_short(const char *datadir, weir_slice_t positions, char *why, size_t whylen)
{
    for (size_t at = 0; at < positions.len;) {
        const char *line = positions.ptr + at;
        const char *nl = memchr(line, '\n', positions.len - at);
        size_t ll = nl ? (size_t)(nl - line) : positions.len - at;
        at += ll + 1;
        const char *sp = memrchr(line, ' ', ll);
        if (!sp || sp == line || line[0] == OUTPUTS_ENDS_WHOLE[0]) continue; /* its first lines */
        long long size = strtoll(sp + 1, NULL, 10);
        char path[4096];
        snprintf(path, sizeof path, "%s/outputs/%.*s", datadir, (int)(sp - line), line);
        struct stat st;
        long long have = stat(path, &st) == 0 ? (long long)st.st_size : 0;
        if (have < size)
            return weir_errf(why, whylen, WEIR_EINVAL,
                             "%s is %lld bytes, shorter than the %lld it recorded: lines written "
                             "before it are missing (the whole log rebuilds them)",
                             path, have, size);
    }
    return 0;
}

/* Renames every outputs/NAME<from> to NAME<to> ("" for NAME); fsyncs the
 * directory when some was, so that the renames come before whatever the
 * server writes next. Returns how many were. */
static int rename_all(const char *datadir, const char *from, const char *to, const char *what)
{
    char dir[4096];
    DIR *d = open_dir(datadir, dir, sizeof dir);
    if (!d) return 0;
    struct dirent *e;
    int n = 0;
    size_t k = strlen(from);
    while ((e = readdir(d))) {
        if (!has_suffix(e->d_name, from)) continue;
        char name[1024];
        size_t len = strlen(e->d_name) - k;
        if (snprintf(name, sizeof name, "%.*s%s", (int)len, e->d_name, to) >= (int)sizeof name)
            continue;
        if (renameat(dirfd(d), e->d_name, dirfd(d), name) != 0) {
            fprintf(stderr, "weir run: recovery: cannot rename %s/%s to %s: %s\n", dir, e->d_name,
                    name, strerror(errno));
            continue;
        }
        if (what) fprintf(stderr, "weir run: recovery: %s/%s %s\n", dir, name, what);
        n++;
    }
    if (n) fsync(dirfd(d));
    closedir(d);
    return n;
}

int outputs_dir_put_back(const char *datadir, outputs_t *out, char *err, size_t errlen)
{
    if (!rename_all(datadir, ".ndjson.cut", ".ndjson",
                    "put back as it was before a replay that did not finish"))
        return 0;
    return outputs_reopen(out, err, errlen);
}

void outputs_dir_retire(const char *datadir)
{
    rename_all(datadir, ".ndjson.cut", ".ndjson.old", NULL);
}

void outputs_dir_remove_retired(const char *datadir)
{
    char dir[4096];
    DIR *d = open_dir(datadir, dir, sizeof dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (has_suffix(e->d_name, ".ndjson.old") && unlinkat(dirfd(d), e->d_name, 0) != 0)
            fprintf(stderr, "weir run: cannot remove %s/%s: %s\n", dir, e->d_name, strerror(errno));
    }
    closedir(d);
}

int outputs_dir_sync(const char *datadir, char *err, size_t errlen)
{
    char dir[4096];
    DIR *d = open_dir(datadir, dir, sizeof dir);
    if (!d) return 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!has_suffix(e->d_name, ".ndjson")) continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fdatasync(fd) != 0)
            rc = weir_errf(err, errlen, WEIR_EIO, "checkpoint: cannot sync %s/%s: %s", dir,
                           e->d_name, strerror(errno));
        if (fd >= 0) close(fd);
    }
    closedir(d);
    return rc;
}
