/* value.c — expression values: type names, durations, RFC 3339 times and a
 * printable form (see value.h). Calendar arithmetic follows Howard Hinnant's
 * days_from_civil / civil_from_days, exact for the proleptic Gregorian
 * calendar and free of locale and time-zone state (no timegm, no TZ). */
#include "spec/value.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

const char *expr_type_name(expr_type_t t)
{
    switch (t) {
    case EXPR_NULL:
        return "null";
    case EXPR_BOOL:
        return "bool";
    case EXPR_INT:
        return "int";
    case EXPR_FLOAT:
        return "float";
    case EXPR_STRING:
        return "string";
    case EXPR_TIME:
        return "time";
    case EXPR_DURATION:
        return "duration";
    }
    return "?";
}

int expr_type_parse(const char *s, size_t len, expr_type_t *out)
{
    static const struct {
        const char *name;
        expr_type_t type;
    } names[] = {
        {"string", EXPR_STRING}, {"int", EXPR_INT},   {"float", EXPR_FLOAT},
        {"bool", EXPR_BOOL},     {"time", EXPR_TIME},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i].name) == len && memcmp(names[i].name, s, len) == 0) {
            *out = names[i].type;
            return 0;
        }
    }
    return WEIR_EINVAL;
}

int expr_parse_duration(const char *s, size_t len, int64_t *out_ms)
{
    if (len == 1 && s[0] == '0') {
        *out_ms = 0;
        return 0;
    }
    size_t i = 0;
    uint64_t n = 0;
    int overflow = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        n = n * 10 + (uint64_t)(s[i] - '0');
        if (n > (uint64_t)INT64_MAX) overflow = 1;
        i++;
    }
    if (i == 0) return WEIR_EINVAL;
    int64_t unit;
    size_t rest = len - i;
    if (rest == 2 && s[i] == 'm' && s[i + 1] == 's')
        unit = 1;
    else if (rest == 1 && s[i] == 's')
        unit = 1000;
    else if (rest == 1 && s[i] == 'm')
        unit = 60 * 1000;
    else if (rest == 1 && s[i] == 'h')
        unit = 3600 * 1000;
    else if (rest == 1 && s[i] == 'd')
        unit = 86400 * 1000;
    else
        return WEIR_EINVAL;
    if (overflow || n > (uint64_t)(INT64_MAX / unit)) return WEIR_ERANGE;
    *out_ms = (int64_t)n * unit;
    return 0;
}

int expr_format_duration(int64_t ms, char *out, size_t outlen)
{
    static const struct {
        int64_t unit;
        const char *suffix;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    if (ms != 0) {
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (ms % units[i].unit == 0)
                return snprintf(out, outlen, "%" PRId64 "%s", ms / units[i].unit, units[i].suffix);
    }
    return snprintf(out, outlen, "%" PRId64 "ms", ms);
}

int64_t expr_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Reads exactly n digits at s[*i]; returns -1 if they are not all digits. */
static int digits(const char *s, size_t len, size_t *i, int n)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9') return -1;
        v = v * 10 + (s[*i] - '0');
        (*i)++;
    }
    return v;
}

static int expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c) return -1;
    (*i)++;
    return 0;
}

int expr_parse_rfc3339(const char *s, size_t len, int64_t *out_ms)
{
    size_t i = 0;
    int y = digits(s, len, &i, 4);
    if (y < 0 || expect(s, len, &i, '-')) return WEIR_EINVAL;
    int mo = digits(s, len, &i, 2);
    if (mo < 1 || mo > 12 || expect(s, len, &i, '-')) return WEIR_EINVAL;
    int d = digits(s, len, &i, 2);
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int maxd = mdays[mo - 1] + (mo == 2 && leap);
    if (d < 1 || d > maxd) return WEIR_EINVAL;
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' ')) return WEIR_EINVAL;
    i++;
    int hh = digits(s, len, &i, 2);
    if (hh < 0 || hh > 23 || expect(s, len, &i, ':')) return WEIR_EINVAL;
    int mi = digits(s, len, &i, 2);
    if (mi < 0 || mi > 59 || expect(s, len, &i, ':')) return WEIR_EINVAL;
    int ss = digits(s, len, &i, 2);
    if (ss < 0 || ss > 60) return WEIR_EINVAL; /* 60: a leap second, counted as the next second */
    int64_t ms = 0;
    if (i < len && s[i] == '.') {
        i++;
        int nd = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (nd < 3) ms = ms * 10 + (s[i] - '0');
            nd++;
            i++;
        }
        if (nd == 0) return WEIR_EINVAL;
        for (int k = nd; k < 3; k++)
            ms *= 10;
    }
    int64_t offset_min = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1;
        i++;
        int oh = digits(s, len, &i, 2);
        if (oh < 0 || oh > 23 || expect(s, len, &i, ':')) return WEIR_EINVAL;
        int om = digits(s, len, &i, 2);
        if (om < 0 || om > 59) return WEIR_EINVAL;
        offset_min = sign * (oh * 60 + om);
    } else {
        return WEIR_EINVAL;
    }
    if (i != len) return WEIR_EINVAL;
    int64_t days = expr_days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + hh * 3600 + mi * 60 + ss - offset_min * 60;
    *out_ms = secs * 1000 + ms;
    return 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int expr_format_rfc3339(int64_t ms, char *out, size_t outlen)
{
    int64_t days = floor_div(ms, 86400000);
    int64_t rem = ms - days * 86400000;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    return snprintf(out, outlen, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d,
                    (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
                    (int)(rem % 1000));
}

void expr_append_double(weir_buf_t *b, double f)
{
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* Keep a float looking like one: 2 prints as 2.0. */
    if (!strpbrk(tmp, ".eEin")) strcat(tmp, ".0");
    buf_append_str(b, tmp);
}

void expr_value_append(weir_buf_t *b, const expr_value_t *v)
{
    char tmp[64];
    switch ((expr_type_t)v->type) {
    case EXPR_NULL:
        buf_append_str(b, "null");
        return;
    case EXPR_BOOL:
        buf_append_str(b, v->as.b ? "true" : "false");
        return;
    case EXPR_INT:
        buf_appendf(b, "%" PRId64, v->as.i);
        return;
    case EXPR_FLOAT:
        expr_append_double(b, v->as.f);
        return;
    case EXPR_STRING:
        buf_append_json_string(b, v->as.s.ptr, v->as.s.len);
        return;
    case EXPR_TIME:
        expr_format_rfc3339(v->as.i, tmp, sizeof tmp);
        buf_append_str(b, tmp);
        return;
    case EXPR_DURATION:
        expr_format_duration(v->as.i, tmp, sizeof tmp);
        buf_append_str(b, tmp);
        return;
    }
}

bool expr_value_equal(const expr_value_t *a, const expr_value_t *b)
{
    if (a->type == EXPR_NULL || a->type != b->type) return false;
    switch ((expr_type_t)a->type) {
    case EXPR_BOOL:
        return a->as.b == b->as.b;
    case EXPR_FLOAT:
        return a->as.f == b->as.f;
    case EXPR_STRING:
        return a->as.s.len == b->as.s.len &&
               (a->as.s.len == 0 || memcmp(a->as.s.ptr, b->as.s.ptr, a->as.s.len) == 0);
    default:
        return a->as.i == b->as.i;
    }
}
