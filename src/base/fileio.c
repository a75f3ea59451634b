/* fileio.c — see fileio.h. */
#include "base/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

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
