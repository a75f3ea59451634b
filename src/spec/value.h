/* value.h — typed values of the expression language, and the text forms of
 * durations and times that specs and events use. Part of the expression
 * module family, so its symbols carry the expr_ prefix.
 *
 * A value is a 24-byte tagged union. Strings are {ptr, len} slices that point
 * into memory someone else owns (the event being processed, the keyed state,
 * a compiled expression's literal pool or the caller's scratch area): a value
 * never owns memory, so copying one is a struct copy and evaluating an
 * expression allocates nothing.
 *
 * Static types and run-time tags share one enum. An expression has one static
 * type, known when it is compiled; at run time its value's tag is either that
 * type or EXPR_NULL. EXPR_NULL as a static type only describes the literal
 * `null`.
 *
 * Representation: bool in .b; int, time (epoch milliseconds, UTC) and duration
 * (milliseconds) in .i; float in .f (always finite: operations whose result
 * would be NaN or infinite give null instead); string in .s. */
#ifndef WEIR_SPEC_VALUE_H
#define WEIR_SPEC_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

typedef enum expr_type {
    EXPR_NULL = 0,
    EXPR_BOOL,
    EXPR_INT,
    EXPR_FLOAT,
    EXPR_STRING,
    EXPR_TIME,     /* epoch milliseconds, UTC */
    EXPR_DURATION, /* milliseconds */
} expr_type_t;

typedef struct expr_value {
    uint8_t type; /* expr_type_t */
    union {
        bool b;
        int64_t i; /* int, time, duration */
        double f;
        weir_slice_t s;
    } as;
} expr_value_t;

static inline expr_value_t expr_null(void)
{
    expr_value_t v = {0};
    return v;
}
static inline expr_value_t expr_bool(bool b)
{
    expr_value_t v = {.type = EXPR_BOOL};
    v.as.b = b;
    return v;
}
static inline expr_value_t expr_int(int64_t i)
{
    expr_value_t v = {.type = EXPR_INT};
    v.as.i = i;
    return v;
}
static inline expr_value_t expr_float(double f)
{
    expr_value_t v = {.type = EXPR_FLOAT};
    v.as.f = f;
    return v;
}
static inline expr_value_t expr_time(int64_t ms)
{
    expr_value_t v = {.type = EXPR_TIME};
    v.as.i = ms;
    return v;
}
static inline expr_value_t expr_duration(int64_t ms)
{
    expr_value_t v = {.type = EXPR_DURATION};
    v.as.i = ms;
    return v;
}
/* The slice is borrowed: s must outlive every use of the value. */
static inline expr_value_t expr_string(const char *s, size_t len)
{
    expr_value_t v = {.type = EXPR_STRING};
    v.as.s.ptr = s;
    v.as.s.len = len;
    return v;
}

/* "null", "bool", "int", "float", "string", "time", "duration". */
const char *expr_type_name(expr_type_t t);

/* Parses a type name as written in a spec's `fields` (string, int, float,
 * bool, time); returns 0 and sets *out, or WEIR_EINVAL. */
int expr_type_parse(const char *s, size_t len, expr_type_t *out);

/* Parses a duration: a non-negative decimal integer followed by one of ms, s,
 * m, h, d (`500ms`, `30s`, `10m`, `1h`, `7d`), into milliseconds. The text
 * must be exactly that (no spaces, signs or fractions); "0" alone is also
 * accepted as zero. Returns 0, or WEIR_EINVAL (bad form) / WEIR_ERANGE (does
 * not fit in int64 milliseconds). */
int expr_parse_duration(const char *s, size_t len, int64_t *out_ms);

/* Writes ms as the largest unit that divides it exactly (`90m` for 5400000,
 * `1500ms`); returns the number of bytes written (snprintf semantics). */
int expr_format_duration(int64_t ms, char *out, size_t outlen);

/* Parses an RFC 3339 timestamp (`2024-05-01T12:30:00Z`,
 * `2024-05-01T14:30:00.250+02:00`; `t`/`z` and a space separator accepted;
 * fractions beyond milliseconds are truncated toward the past) into epoch
 * milliseconds. Years 0000-9999. Returns 0 or WEIR_EINVAL. */
int expr_parse_rfc3339(const char *s, size_t len, int64_t *out_ms);

/* Writes epoch ms as RFC 3339 UTC with milliseconds
 * (`2024-05-01T12:30:00.000Z`); returns bytes written (snprintf semantics). */
int expr_format_rfc3339(int64_t ms, char *out, size_t outlen);

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
int64_t expr_days_from_civil(int64_t y, unsigned m, unsigned d);

/* Appends the shortest %g form of f that reads back as the same double,
 * with ".0" added when it would otherwise look like an integer. */
void expr_append_double(weir_buf_t *b, double f);

/* Appends a readable form of v (for messages, tests and debugging): strings
 * quoted as JSON, times as RFC 3339, durations as `90m`, floats in their
 * shortest round-trip form. */
void expr_value_append(weir_buf_t *b, const expr_value_t *v);

/* Equality of two values of the same tag (bitwise for strings; null is never
 * equal to anything, null included). */
bool expr_value_equal(const expr_value_t *a, const expr_value_t *b);

#endif
