/* error.h — weir's error codes and assertions.
 *
 * Every fallible function returns int: 0 on success, a negative weir_err_t on
 * failure (libuv's convention). Where a person will read the reason, the
 * function also fills a caller's `char *err, size_t errlen` with a sentence
 * naming the file, line, field or offset. Broken internal invariants are bugs,
 * not errors: weir_assert aborts with file and line. */
#ifndef WEIR_BASE_ERROR_H
#define WEIR_BASE_ERROR_H

#include <stddef.h>

typedef enum weir_err {
    WEIR_OK = 0,
    WEIR_ENOMEM = -1,   /* allocation failed */
    WEIR_EIO = -2,      /* a system call on a file failed (errno in the message) */
    WEIR_ECORRUPT = -3, /* stored data failed a checksum or a structural check */
    WEIR_EINVAL = -4,   /* bad argument or bad input */
    WEIR_ENOENT = -5,   /* no such topic, partition, file or key */
    WEIR_EEXIST = -6,   /* already exists with other settings */
    WEIR_ETOOBIG = -7,  /* over a documented size limit */
    WEIR_ERANGE = -8,   /* offset or time outside what is stored */
    WEIR_EPARSE = -9,   /* input text could not be parsed */
} weir_err_t;

/* A short static description of a weir_err_t code. */
const char *weir_strerror(int code);

/* printf into err (if err != NULL and errlen > 0); returns code, so callers
 * can write `return weir_errf(err, errlen, WEIR_EINVAL, "...", ...)`. */
int weir_errf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

_Noreturn void weir_assert_fail(const char *expr, const char *file, int line);

#define weir_assert(e) ((e) ? (void)0 : weir_assert_fail(#e, __FILE__, __LINE__))

#endif
