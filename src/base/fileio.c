/* fileio.c — see fileio.h. */
#include "base/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/error.h"

int weir_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t weir_read_at(int fd, void *buf, size_t want, uint64_t pos)
{
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(fd, (char *)buf + got, want - got, (off_t)(pos + got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int weir_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

const char *weir_file_kind(mode_t mode)
{
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a file weir knows";
}

int weir_read_file(const char *path, size_t max, weir_buf_t *b, char *err, size_t errlen)
{
    buf_reset(b);
    /* Opened first, then fstat'ed, so that the file checked is the file
     * read; O_NONBLOCK so that opening a FIFO does not wait for a writer
     * (which may never come: a reload would hang holding its lock). */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return weir_errf(err, errlen, WEIR_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = weir_errf(err, errlen, WEIR_EIO, "%s: cannot stat: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = weir_errf(err, errlen, WEIR_EINVAL, "%s: not a regular file (%s)", path,
                       weir_file_kind(st.st_mode));
    } else {
        /* Read to the end, not to st_size: a file that grows meanwhile is
         * still held to max. One byte more than max is asked for, to tell
         * "exactly max" from "more"; st_size sizes the buffer once, to
         * the byte (buf_reserve's doubling would take 2 GiB for 1.1). */
        size_t want = (size_t)st.st_size < max ? (size_t)st.st_size : max;
        if (b->cap < want + 2) {
            b->data = weir_realloc(b->data, want + 2);
            b->cap = want + 2;
        }
        for (;;) {
            if (b->len == b->cap - 1) buf_reserve(b, b->cap);
            size_t room = b->cap - 1 - b->len;
            if (room > max + 1 - b->len) room = max + 1 - b->len;
            ssize_t n = read(fd, b->data + b->len, room);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                rc = weir_errf(err, errlen, WEIR_EIO, "%s: read error: %s", path, strerror(errno));
                break;
            }
            if (n == 0) break;
            b->len += (size_t)n;
            if (b->len > max) {
                rc = weir_errf(err, errlen, WEIR_ETOOBIG, "%s: larger than %zu bytes", path, max);
                break;
            }
        }
        b->data[b->len] = '\0'; /* for parsers that read text up to a NUL */
    }
    close(fd);
    return rc;
}

/* Removes the temporary files of target base in dir (".BASE.tmp.PID") that
 * a process killed before its rename left, those of a pid no process has
 * now (kill -9 gives no chance to clean up; one of a live pid, perhaps
 * another weir writing the same target, is left alone). */
static void remove_dead_temps(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    if (!d) return;
    size_t bl = strlen(base);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (n[0] != '.' || strncmp(n + 1, base, bl) || strncmp(n + 1 + bl, ".tmp.", 5)) continue;
        char *end;
        long pid = strtol(n + 1 + bl + 5, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) (void)unlinkat(dirfd(d), n, 0);
    }
    closedir(d);
}

int weir_outfile_open(weir_outfile_t *o, const char *path, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->path = weir_strdup(path);
    if (!strcmp(path, "-")) {
        o->f = stdout;
        return 0;
    }
    /* A symlink's target is what the user means to replace, not the link. */
    struct stat st;
    char real[PATH_MAX];
    int is_link = lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
    o->dest = weir_strdup(is_link && realpath(path, real) ? real : path);
    int exists = stat(o->dest, &st) == 0;
    if (exists && !S_ISREG(st.st_mode)) {
        o->f = fopen(o->dest, "w");
    } else {
        char *d = weir_strdup(o->dest), *b = weir_strdup(o->dest);
        size_t n = strlen(o->dest) + 32;
        o->tmp = weir_malloc(n);
        const char *dir = dirname(d), *base = basename(b);
        snprintf(o->tmp, n, "%s/.%s.tmp.%ld", dir, base, (long)getpid());
        remove_dead_temps(dir, base);
        weir_free(d);
        weir_free(b);
        /* A new file, never one found there (a link planted in a shared
         * directory would otherwise be written through); one left by a
         * dead process of the same pid is ours to remove. */
        (void)unlink(o->tmp);
        int fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        /* The file that replaces an existing one keeps its permissions. */
        if (fd >= 0 && exists) fchmod(fd, st.st_mode & 07777);
        o->f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (fd >= 0 && !o->f) close(fd);
    }
    if (o->f) return 0;
    int rc = weir_errf(err, errlen, WEIR_EIO, "cannot write %s: %s", path, strerror(errno));
    weir_outfile_abort(o);
    return rc;
}

int weir_outfile_close(weir_outfile_t *o, char *err, size_t errlen)
{
    if (!o->f) return 0;
    FILE *f = o->f;
    o->f = NULL;
    int bad = fflush(f) != 0 || ferror(f);
    /* Durable before the rename makes it the target: otherwise a power loss
     * could leave the new name on an empty file. */
    if (!bad && o->tmp && fsync(fileno(f)) != 0) bad = 1;
    int e = errno;
    if (f != stdout && fclose(f) != 0 && !bad) bad = 1, e = errno;
    if (!bad) return 0;
    return weir_errf(err, errlen, WEIR_EIO, "writing %s failed: %s", o->path, strerror(e));
}

/* Frees what o holds (the files are closed or gone by then). */
static void outfile_free(weir_outfile_t *o)
{
    weir_free(o->path);
    weir_free(o->dest);
    weir_free(o->tmp);
    memset(o, 0, sizeof *o);
}

int weir_outfile_commit(weir_outfile_t *o, char *err, size_t errlen)
{
    int rc = weir_outfile_close(o, err, errlen);
    if (rc == 0 && o->tmp) {
        if (rename(o->tmp, o->dest) != 0) {
            rc = weir_errf(err, errlen, WEIR_EIO, "cannot rename %s to %s: %s", o->tmp, o->dest,
                           strerror(errno));
        } else {
            /* The rename itself survives a power loss once its directory is
             * synced; a sync that fails is said (the file is in place, but
             * a power loss may undo it), not hidden. */
            char *d = weir_strdup(o->dest);
            if (weir_fsync_dir(dirname(d)) != 0)
                rc = weir_errf(err, errlen, WEIR_EIO, "cannot sync the directory of %s: %s",
                               o->dest, strerror(errno));
            weir_free(d);
            weir_free(o->tmp);
            o->tmp = NULL;
        }
    }
    if (rc) {
        weir_outfile_abort(o);
        return rc;
    }
    outfile_free(o);
    return 0;
}

void weir_outfile_abort(weir_outfile_t *o)
{
    if (o->f && o->f != stdout) fclose(o->f);
    if (o->tmp) unlink(o->tmp);
    outfile_free(o);
}

long weir_flock_holder(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    FILE *f = fopen("/proc/locks", "r");
    if (!f) return 0;
    /* "1: FLOCK  ADVISORY  WRITE 1941 fe:00:11305171 0 EOF" (device in hex) */
    char line[256];
    long pid = 0;
    while (!pid && fgets(line, sizeof line, f)) {
        char kind[16];
        long p;
        unsigned maj, min;
        unsigned long long ino;
        if (sscanf(line, "%*[^:]: %15s %*s %*s %ld %x:%x:%llu", kind, &p, &maj, &min, &ino) == 5 &&
            !strcmp(kind, "FLOCK") && ino == (unsigned long long)st.st_ino &&
            maj == major(st.st_dev) && min == minor(st.st_dev))
            pid = p;
    }
    fclose(f);
    return pid;
}
