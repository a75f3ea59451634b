/* fileio.h — the few system-call loops every on-disk module needs: whole
 * writes and positioned reads that retry EINTR and short transfers, and
 * fsync of a directory (so a created or renamed name is durable). */
#ifndef WEIR_BASE_FILEIO_H
#define WEIR_BASE_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes all n bytes; 0, or -1 with errno. */
int weir_write_all(int fd, const void *p, size_t n);
/* Reads up to want bytes at pos; returns the bytes read (fewer only at end
 * of file), or -1 with errno. */
ssize_t weir_read_at(int fd, void *buf, size_t want, uint64_t pos);
/* fsyncs the directory at path; 0, or -1 with errno (kept across close). */
int weir_fsync_dir(const char *path);

#endif
