/* fileio.h — the few system-call loops every on-disk module needs: whole
 * writes and positioned reads that retry EINTR and short transfers, fsync
 * of a directory (so a created or renamed name is durable), reading a file
 * a user named (a spec, a model) whole, and writing a command's output file
 * whole or not at all. */
#ifndef WEIR_BASE_FILEIO_H
#define WEIR_BASE_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "base/buf.h"

/* Writes all n bytes; 0, or -1 with errno. */
int weir_write_all(int fd, const void *p, size_t n);
/* Reads up to want bytes at pos; returns the bytes read (fewer only at end
 * of file), or -1 with errno. */
ssize_t weir_read_at(int fd, void *buf, size_t want, uint64_t pos);
/* fsyncs the directory at path; 0, or -1 with errno (kept across close). */
int weir_fsync_dir(const char *path);

/* The pid of the process holding an flock on the file open at fd (from
 * /proc/locks, matched by device and inode), or 0 if none can be found:
 * for "in use by another weir process (pid N)". */
long weir_flock_holder(int fd);

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

/* AN OUTPUT FILE WRITTEN WHOLE OR NOT AT ALL (`weir backfill --out`). It is
 * written as ".NAME.tmp.PID" beside the target and renamed over it only
 * once complete and fsynced, so that an error, a stop or a crash leaves the
 * target with its old content (or absent), never part of the new; a
 * target that is a symlink is followed, and the file it names replaced. "-"
 * is stdout, and a target that exists as something other than a regular
 * file (/dev/null, a FIFO) is written in place: nothing can be renamed
 * over it. Used by one thread. */
typedef struct weir_outfile {
    FILE *f;    /* where to write; NULL once closed */
    char *path; /* the name given (for messages) */
    char *dest; /* what the temporary file becomes: path, or a symlink's target */
    char *tmp;  /* the temporary file; NULL when written in place */
} weir_outfile_t;

/* Opens o for path. 0, or WEIR_EIO with "cannot write PATH: reason" in err
 * (and nothing to close). */
int weir_outfile_open(weir_outfile_t *o, const char *path, char *err, size_t errlen);
/* Flushes, fsyncs and closes the file; a failed write shows here as
 * WEIR_EIO ("writing PATH failed: reason"). Again, it does nothing. */
int weir_outfile_close(weir_outfile_t *o, char *err, size_t errlen);
/* Closes o (as above), renames the temporary file over the target and
 * fsyncs its directory; on failure the temporary file is removed and the
 * target is as it was. Frees what o holds either way. */
int weir_outfile_commit(weir_outfile_t *o, char *err, size_t errlen);
/* Closes o and removes the temporary file: the target keeps what it held
 * (written in place, it holds what was written). Frees what o holds. */
void weir_outfile_abort(weir_outfile_t *o);

#endif
