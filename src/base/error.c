/* error.c — error strings and the assertion handler (see error.h). */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *weir_strerror(int code)
{
    switch (code) {
    case WEIR_OK: return "success";
    case WEIR_ENOMEM: return "out of memory";
    case WEIR_EIO: return "i/o error";
    case WEIR_ECORRUPT: return "corrupt data";
    case WEIR_EINVAL: return "invalid argument";
    case WEIR_ENOENT: return "not found";
    case WEIR_EEXIST: return "already exists";
    case WEIR_ETOOBIG: return "too big";
    case WEIR_ERANGE: return "out of range";
    case WEIR_EPARSE: return "parse error";
    default: return "unknown error";
    }
}

int weir_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

void weir_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "weir: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
