/* fileio.h — the few system-call loops every on-disk module needs: whole
 * writes and positioned reads that retry EINTR and short transfers, fsync
 * of a directory (so a created or renamed name is durable), and reading a
 * file a user named (a spec, a model) whole. */
#ifndef WEIR_BASE_FILEIO_H
#define WEIR_BASE_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"

/* Writes all n bytes; 0, or -1 with errno. */
int weir_write_all(int fd, const void *p, size_t n);
/* Reads up to want bytes at pos; returns the bytes read (fewer only at end
 * of file), or -1 with errno. */
ssize_t weir_read_at(int fd, void *buf, size_t want, uint64_t pos);
/* fsyncs the directory at path; 0, or -1 with errno (kept across close). */
int weir_fsync_dir(const char *path);

/* What a stat mode is, for a message: "a regular file", "a directory",
 * "a FIFO", "a character device", ... (a static string). */
const char *weir_file_kind(mode_t mode);

/* Reads the regular file at path whole into b (emptied first). Anything
 * else is refused before a byte is read, with "PATH: not a regular file
 * (a directory)" in err: a directory, a device (/dev/zero has no end), and
 * a FIFO, which is opened with O_NONBLOCK so that no writer is waited for.
 * A file over max bytes is WEIR_ETOOBIG ("PATH: larger than N bytes").
 * b->data is NUL-terminated (the NUL not counted in b->len).
 * Returns 0, or WEIR_EIO (cannot open or read, errno's words in err),
 * WEIR_EINVAL or WEIR_ETOOBIG. */
int weir_read_file(const char *path, size_t max, weir_buf_t *b, char *err, size_t errlen);

#endif
