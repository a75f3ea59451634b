/* decode.c — JSON values to typed event fields (see decode.h).
 *
 * Two ways in. spec_decode_event reads a cJSON tree: the reference, and
 * the only one that words errors. spec_decode_text reads the event's text
 * directly, without building a tree (the server's hot path: a tree costs
 * a dozen allocations per event). It is an exact shortcut, not a second
 * definition: it accepts only text whose meaning it can prove equal to
 * the tree path's, and answers SPEC_DECODE_SLOW for everything else, so
 * that the caller takes the tree path, which then decides and words the
 * outcome. What it accepts ("direct decoding" below) is a subset of strict
 * JSON (RFC 8259) where cJSON 1.7 agrees value for value:
 *   - strings without \u escapes or raw control bytes (cJSON keeps other
 *     bytes as they are, and a \u0000 would cut its C string short);
 *     a string *field value* or key without any escape at all, so that a
 *     value can be a slice of the text;
 *   - numbers of the JSON grammar, at most 40 characters (cJSON copies at
 *     most 63 into strtod's buffer), converted to the same double: a
 *     mantissa of at most 19 digits that is <= 2^53 with a decimal
 *     exponent within +-22 is one correctly rounded multiplication or
 *     division of two exact doubles, which is what a correctly rounding
 *     strtod (glibc's) returns; any other number goes through strtod;
 *   - nesting of at most 32 levels (cJSON allows 1000);
 *   - only the four JSON white-space bytes (cJSON skips every byte <= 32);
 *   - no declared field named twice: the edge refuses such an event
 *     (spec_decode_event_edge, on the tree path) while replay takes the
 *     first occurrence, as cJSON_GetObjectItemCaseSensitive does — the tree
 *     path, which decides both, is the one to see it. A repeated member
 *     that is not a declared field is skipped like any unknown one;
 *   - every declared field of the right type, key and time present: any
 *     error (a wrong type, an int that is not whole, ...) is the tree
 *     path's to report.
 * tests/unit/spec_decode_text_test.c and fuzz/spec_decode_fuzz.c check
 * that what it accepts decodes exactly as the tree path does. */
#include "spec/decode.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/swar.h"

static const char *json_kind(const cJSON *j)
{
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a bool";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "an invalid value";
}

/* A whole number within 2^53. The edge takes ints up to SPEC_MAX_INT
 * only (2^53 is also what 2^53 + 1 reads as: spec_edge_refuses), but a log
 * an older weir wrote may hold 2^53, and replay reads it as it did. */
static int exact_int(double d, int64_t *out)
{
    if (!(fabs(d) <= (double)SPEC_MAX_INT + 1) || d != floor(d)) return -1;
    *out = (int64_t)d;
    return 0;
}

int spec_decode_value(const spec_field_t *f, const cJSON *j, expr_value_t *out, char *err,
                      size_t errlen)
{
    if (!j || cJSON_IsNull(j)) {
        *out = expr_null();
        return 0;
    }
    int64_t i;
    switch (f->type) {
    case EXPR_STRING:
        if (!cJSON_IsString(j)) break;
        *out = expr_string(j->valuestring, strlen(j->valuestring));
        return 0;
    case EXPR_INT:
        if (!cJSON_IsNumber(j)) break;
        if (exact_int(j->valuedouble, &i))
            return weir_errf(
                err, errlen, WEIR_EINVAL,
                "field '%s': expected an int (a whole number of at most 2^53 - 1), got %.17g",
                f->name, j->valuedouble);
        *out = expr_int(i);
        return 0;
    case EXPR_FLOAT:
        if (!cJSON_IsNumber(j)) break;
        if (!isfinite(j->valuedouble))
            return weir_errf(err, errlen, WEIR_EINVAL, "field '%s': number out of range", f->name);
        *out = expr_float(j->valuedouble);
        return 0;
    case EXPR_BOOL:
        if (!cJSON_IsBool(j)) break;
        *out = expr_bool(cJSON_IsTrue(j));
        return 0;
    case EXPR_TIME:
        if (cJSON_IsNumber(j)) {
            if (exact_int(j->valuedouble, &i))
                return weir_errf(
                    err, errlen, WEIR_EINVAL,
                    "field '%s': a time must be whole epoch milliseconds (of at most 2^53 - 1), "
                    "got %.17g",
                    f->name, j->valuedouble);
            *out = expr_time(i);
            return 0;
        }
        if (cJSON_IsString(j)) {
            size_t n = strlen(j->valuestring);
            if (expr_parse_rfc3339(j->valuestring, n, &i))
                return weir_errf(err, errlen, WEIR_EINVAL,
                                 "field '%s': '%.40s' is not an RFC 3339 time (such as "
                                 "2024-05-01T12:00:00Z) nor epoch milliseconds",
                                 f->name, j->valuestring);
            *out = expr_time(i);
            return 0;
        }
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "field '%s': expected a time (epoch milliseconds or an RFC 3339 string), "
                         "got %s",
                         f->name, json_kind(j));
    default:
        break;
    }
    return weir_errf(err, errlen, WEIR_EINVAL, "field '%s': expected %s %s, got %s", f->name,
                     f->type == EXPR_INT ? "an" : "a", expr_type_name(f->type), json_kind(j));
}

int spec_decode_event(const spec_source_t *src, const cJSON *obj, expr_value_t *fields, char *err,
                      size_t errlen)
{
    if (!cJSON_IsObject(obj))
        return weir_errf(err, errlen, WEIR_EINVAL, "an event must be a JSON object, got %s",
                         json_kind(obj));
    for (uint32_t i = 0; i < src->nfields; i++) {
        const spec_field_t *f = &src->fields[i];
        /* Case-sensitive: field names are identifiers in expressions. */
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, f->name);
        int rc = spec_decode_value(f, j, &fields[i], err, errlen);
        if (rc) return rc;
    }
    const spec_field_t *key = &src->fields[src->key_slot];
    if (fields[src->key_slot].type == EXPR_NULL)
        return weir_errf(err, errlen, WEIR_EINVAL, "missing key field '%s'", key->name);
    /* The log keeps a record's key with it and refuses keys over 64 KiB:
     * refuse them here, at the edge, before anything is appended. */
    if (fields[src->key_slot].type == EXPR_STRING && fields[src->key_slot].as.s.len > SPEC_MAX_KEY)
        return weir_errf(err, errlen, WEIR_EINVAL, "key field '%s' is longer than %d bytes",
                         key->name, SPEC_MAX_KEY);
    const spec_field_t *time = &src->fields[src->time_slot];
    if (fields[src->time_slot].type == EXPR_NULL)
        return weir_errf(err, errlen, WEIR_EINVAL, "missing time field '%s'", time->name);
    return 0;
}

static inline int field_is(const spec_field_t *f, const char *key, size_t klen)
{
    if (f->name_len != klen) return 0;
    /* Names are short: a loop, not a call to memcmp. */
    for (size_t i = 0; i < klen; i++)
        if (f->name[i] != key[i]) return 0;
    return 1;
}

/* The edge's refusal of a declared field named twice (spec_decode_event_edge). */
static int check_unique(const spec_source_t *src, const cJSON *obj, char *err, size_t errlen)
{
    uint32_t nf = src->nfields;
    unsigned char seen[nf ? nf : 1];
    memset(seen, 0, sizeof seen);
    for (const cJSON *m = cJSON_IsObject(obj) ? obj->child : NULL; m; m = m->next) {
        if (!m->string) continue;
        size_t len = strlen(m->string);
        uint32_t k = 0;
        /* Case-sensitive, as spec_decode_event looks fields up. */
        while (k < nf && !field_is(&src->fields[k], m->string, len))
            k++;
        if (k == nf) continue; /* not a declared field: nobody reads it */
        if (seen[k])
            return weir_errf(err, errlen, WEIR_EINVAL,
                             "field '%s' appears twice: a field of the source may appear once "
                             "(JSON parsers differ on which of the two counts)",
                             src->fields[k].name);
        seen[k] = 1;
    }
    return 0;
}

int spec_edge_refuses(const spec_source_t *src, const expr_value_t *fields, int64_t now_ms,
                      char *why, size_t whylen)
{
    const expr_value_t *k = &fields[src->key_slot];
    if (k->type == EXPR_STRING && k->as.s.len == 0) {
        snprintf(why, whylen, "field '%s': the key is empty", src->fields[src->key_slot].name);
        return 1;
    }
    for (uint32_t i = 0; i < src->nfields; i++) {
        const expr_value_t *v = &fields[i];
        if ((v->type == EXPR_INT || v->type == EXPR_TIME) &&
            (v->as.i > SPEC_MAX_INT || v->as.i < -SPEC_MAX_INT)) {
            snprintf(why, whylen,
                     v->type == EXPR_INT
                         ? "field '%s': expected an int (a whole number of at most 2^53 - 1), got "
                           "%" PRId64
                         : "field '%s': a time must be whole epoch milliseconds (of at most 2^53 "
                           "- 1), got %" PRId64,
                     src->fields[i].name, v->as.i);
            return 1;
        }
    }
    const expr_value_t *t = &fields[src->time_slot];
    if (!src->max_future_ms || t->type != EXPR_TIME || t->as.i - now_ms <= src->max_future_ms)
        return 0;
    char at[40], now[40], bound[32];
    expr_format_rfc3339(t->as.i, at, sizeof at);
    expr_format_rfc3339(now_ms, now, sizeof now);
    expr_format_duration(src->max_future_ms, bound, sizeof bound);
    snprintf(why, whylen,
             "field '%s': %s is more than max_future (%s) past this machine's clock (%s); one "
             "such time would make every later event late (set the source's max_future to take it)",
             src->fields[src->time_slot].name, at, bound, now);
    return 1;
}

int spec_decode_event_edge(const spec_source_t *src, const cJSON *obj, expr_value_t *fields,
                           char *err, size_t errlen)
{
    int rc = check_unique(src, obj, err, errlen);
    return rc ? rc : spec_decode_event(src, obj, fields, err, errlen);
}

long spec_text_nul(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned c = s[i];
        if (c == 0) return (long)i; /* raw, in a string or not (cJSON takes it in one) */
        if (!in_string) {
            in_string = c == '"';
        } else if (c == '"') {
            in_string = 0;
        } else if (c < 0x20) {
            return (long)i; /* raw: JSON escapes it (RFC 8259), cJSON does not insist */
        } else if (c == '\\') {
            /* an escape: the byte after it is its own ("\\u0000" is text) */
            if (len - i >= 6 && memcmp(s + i + 1, "u0000", 5) == 0) return (long)i;
            i++;
        }
    }
    return -1;
}

int spec_text_too_deep(const char *text, size_t len)
{
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > SPEC_MAX_NESTING) return 1;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 0;
}

long spec_text_utf8_bad(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        if (i + 8 <= len) { /* ASCII, eight bytes at a time: most events are all of it */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080u)) {
                i += 8;
                continue;
            }
        }
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        /* The sequence's length and its second byte's range (the rest are
         * 0x80..0xbf): the table of RFC 3629, section 4. */
        size_t n;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf)
            n = 2;
        else if (c >= 0xe0 && c <= 0xef)
            n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        else
            return (long)i;
        if (i + n > len || s[i + 1] < lo || s[i + 1] > hi) return (long)i;
        for (size_t k = 2; k < n; k++)
            if ((s[i + k] & 0xc0) != 0x80) return (long)i;
        i += n;
    }
    return -1;
}

/* ---- direct decoding ---------------------------------------------------- */

#define MAX_DIRECT_DEPTH  32 /* containers inside an ignored member */
#define MAX_DIRECT_NUMBER 40 /* characters of a number */

typedef struct scan {
    const char *s;
    size_t n, i;
} scan_t;

static void skip_ws_run(scan_t *c)
{
    while (c->i < c->n &&
           (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        c->i++;
}

/* Inline, with the run out of line: most events are compact, and one test
 * then says there is no white space (it was called a dozen times an event). */
__attribute__((always_inline)) static inline void skip_ws(scan_t *c)
{
    if (c->i < c->n && (unsigned char)c->s[c->i] <= ' ') skip_ws_run(c);
}

/* A string at c->i (its opening quote): *start and *len give its bytes
 * between the quotes, *escaped whether it has a backslash escape. -1: not
 * one this decoder takes (see the top of the file). Eight bytes at a time
 * up to the first byte that ends or escapes it: a replay decodes ten
 * strings an event, and byte by byte they were a tenth of its work. */
__attribute__((always_inline)) static inline int scan_string(scan_t *c, const char **start, size_t *len,
                                                              int *escaped)
{
    size_t i = c->i + 1;
    *escaped = 0;
    for (;;) {
        i = swar_plain_end(c->s, i, c->n);
        if (i >= c->n) return -1;
        unsigned char ch = (unsigned char)c->s[i];
        if (ch == '"') break;
        if (ch < 0x20) return -1;
        if (i + 1 >= c->n || !strchr("\"\\/bfnrt", c->s[i + 1]) || c->s[i + 1] == '\0') return -1;
        *escaped = 1;
        i += 2;
    }
    *start = c->s + c->i + 1;
    *len = i - c->i - 1;
    c->i = i + 1;
    return 0;
}

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static const double exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Takes eight digits at a time from s[*i] into *m while the 19 digits kept
 * have room: an event's time in milliseconds has 13 (SWAR; byte order
 * matters, so little-endian hosts only — elsewhere the caller's loop takes
 * every digit). */
static inline void eight_digits(const char *s, size_t n, size_t *i, uint64_t *m, int *digits)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101u, high = 0xf0f0f0f0f0f0f0f0u;
    while (*digits <= 11 && *i + 8 <= n) {
        uint64_t x;
        memcpy(&x, s + *i, sizeof x);
        /* every byte is 0x30 to 0x39: its high nibble is 3, and adding 6
         * does not carry out of the low one */
        if ((x & high) != ones * 0x30 || ((x + ones * 6) & high) != ones * 0x30) return;
        x -= ones * '0'; /* byte k: digit k, the first in the lowest byte */
        x = ((x * 10) + (x >> 8)) & 0x00ff00ff00ff00ffu;    /* 16-bit lanes: 2 digits */
        x = ((x * 100) + (x >> 16)) & 0x0000ffff0000ffffu;  /* 32-bit lanes: 4 digits */
        x = (x * 10000) + (x >> 32);                          /* low 32 bits: 8 digits */
        *m = *m * 100000000u + (uint32_t)x;
        *digits += 8;
        *i += 8;
    }
#else
    (void)s, (void)n, (void)i, (void)m, (void)digits;
#endif
}

/* A number of the JSON grammar at c->i; its value (as strtod gives it) in
 * *out if out is not NULL. -1: not one this decoder takes. */
static int scan_number(scan_t *c, double *out)
{
    const char *s = c->s;
    size_t i = c->i, n = c->n, start = i;
    int neg = 0, digits = 0, exp10 = 0;
    uint64_t m = 0;
    if (i < n && s[i] == '-') neg = 1, i++;
    if (i >= n || !is_digit(s[i])) return -1;
    if (s[i] == '0') {
        i++;
    } else { /* the first digit is not 0: every digit counts */
        eight_digits(s, n, &i, &m, &digits);
        for (; i < n && is_digit(s[i]); i++)
            if (digits < 20)
                m = m * 10 + (uint64_t)(s[i] - '0'), digits++;
            else
                exp10++;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i])) return -1;
        for (; i < n && is_digit(s[i]); i++) {
            if (digits >= 20) continue;
            if (m || s[i] != '0') m = m * 10 + (uint64_t)(s[i] - '0'), digits++;
            exp10--;
        }
    }
    int e = 0, big = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < n && (s[i] == '+' || s[i] == '-')) eneg = s[i] == '-', i++;
        if (i >= n || !is_digit(s[i])) return -1;
        for (; i < n && is_digit(s[i]); i++)
            if (e < 10000)
                e = e * 10 + (s[i] - '0');
            else
                big = 1;
        if (eneg) e = -e;
    }
    if (i - start > MAX_DIRECT_NUMBER) return -1;
    c->i = i;
    if (!out) return 0;
    exp10 += e;
    /* digits > 19 may have overflowed m: those take strtod's path too. */
    if (!big && digits <= 19 && m <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        double d = (double)m;
        d = exp10 >= 0 ? d * exact_pow10[exp10] : d / exact_pow10[-exp10];
        *out = neg ? -d : d;
        return 0;
    }
    char buf[MAX_DIRECT_NUMBER + 1];
    memcpy(buf, s + start, i - start);
    buf[i - start] = '\0';
    *out = strtod(buf, NULL);
    return 0;
}

static int match(scan_t *c, const char *lit, size_t len)
{
    if (c->n - c->i < len || memcmp(c->s + c->i, lit, len) != 0) return -1;
    c->i += len;
    return 0;
}

/* Skips any JSON value at c->i (a member nobody reads, but which must be
 * valid for the event to be). -1: not one this decoder takes. */
static int skip_value(scan_t *c, int depth)
{
    if (c->i >= c->n) return -1;
    const char *str;
    size_t len;
    int esc;
    switch (c->s[c->i]) {
    case '"':
        return scan_string(c, &str, &len, &esc);
    case 't':
        return match(c, "true", 4);
    case 'f':
        return match(c, "false", 5);
    case 'n':
        return match(c, "null", 4);
    case '[':
    case '{': {
        if (depth >= MAX_DIRECT_DEPTH) return -1;
        char close = c->s[c->i] == '[' ? ']' : '}';
        c->i++;
        skip_ws(c);
        if (c->i < c->n && c->s[c->i] == close) {
            c->i++;
            return 0;
        }
        for (;;) {
            if (close == '}') {
                if (c->i >= c->n || c->s[c->i] != '"' || scan_string(c, &str, &len, &esc))
                    return -1;
                skip_ws(c);
                if (c->i >= c->n || c->s[c->i] != ':') return -1;
                c->i++;
                skip_ws(c);
            }
            if (skip_value(c, depth + 1)) return -1;
            skip_ws(c);
            if (c->i >= c->n) return -1;
            if (c->s[c->i] == close) {
                c->i++;
                return 0;
            }
            if (c->s[c->i] != ',') return -1;
            c->i++;
            skip_ws(c);
        }
    }
    default:
        return scan_number(c, NULL);
    }
}

/* The value of field f at c->i into *out, exactly as spec_decode_value
 * would convert it. -1: a value this decoder leaves to the tree path
 * (a wrong type, an escaped string, an int that is not whole, ...). */
static int field_value(scan_t *c, const spec_field_t *f, expr_value_t *out)
{
    if (c->i >= c->n) return -1;
    char ch = c->s[c->i];
    if (ch == 'n') {
        *out = expr_null();
        return match(c, "null", 4);
    }
    if (ch == '"') {
        const char *str;
        size_t len;
        int esc;
        if (scan_string(c, &str, &len, &esc) || esc) return -1;
        int64_t ms;
        if (f->type == EXPR_STRING) {
            *out = expr_string(str, len);
            return 0;
        }
        if (f->type != EXPR_TIME || expr_parse_rfc3339(str, len, &ms)) return -1;
        *out = expr_time(ms);
        return 0;
    }
    if (ch == 't' || ch == 'f') {
        if (f->type != EXPR_BOOL) return -1;
        *out = expr_bool(ch == 't');
        return ch == 't' ? match(c, "true", 4) : match(c, "false", 5);
    }
    if (ch != '-' && !is_digit(ch)) return -1;
    double d;
    int64_t i;
    if (scan_number(c, &d)) return -1;
    switch (f->type) {
    case EXPR_INT:
    case EXPR_TIME:
        if (exact_int(d, &i)) return -1;
        *out = f->type == EXPR_INT ? expr_int(i) : expr_time(i);
        return 0;
    case EXPR_FLOAT:
        if (!isfinite(d)) return -1;
        *out = expr_float(d);
        return 0;
    default:
        return -1;
    }
}

/* Whether the text at c->i is field f's name in quotes: two masked words
 * where 16 bytes of text are left and the quoted name fits in them (a byte
 * loop cost about 40 instructions a field), else byte by byte. */
static inline int quoted_name_at(const scan_t *c, const spec_field_t *f)
{
    if (f->quoted_mask[0] && c->n - c->i >= 16) {
        uint64_t w[2];
        memcpy(w, c->s + c->i, sizeof w);
        return ((w[0] & f->quoted_mask[0]) == f->quoted[0]) & ((w[1] & f->quoted_mask[1]) == f->quoted[1]);
    }
    if (c->n - c->i < f->name_len + 2 || c->s[c->i] != '"' || c->s[c->i + 1 + f->name_len] != '"')
        return 0;
    return field_is(f, c->s + c->i + 1, f->name_len);
}

int spec_decode_text(const spec_source_t *src, const char *text, size_t len, expr_value_t *fields)
{
    scan_t c = {text, len, 0};
    uint32_t nf = src->nfields;
    unsigned char seen[nf ? nf : 1];
    memset(seen, 0, sizeof seen);
    for (uint32_t k = 0; k < nf; k++)
        fields[k] = expr_null();
    if (len == 0 || text[0] != '{') return SPEC_DECODE_SLOW;
    c.i = 1;
    skip_ws(&c);
    if (c.i < c.n && text[c.i] == '}') return SPEC_DECODE_SLOW; /* no key: the tree path words it */
    uint32_t next = 0;
    for (;;) {
        /* Events usually name the fields in the spec's order: the field
         * after the last one found is tried first, against the text itself
         * (its quoted name is the whole key: names are identifiers, which
         * need no escape), before the key is scanned and looked up. */
        uint32_t k = next;
        if (k < nf && !seen[k] && quoted_name_at(&c, &src->fields[k])) {
            c.i += src->fields[k].name_len + 2;
        } else {
            const char *key;
            size_t klen;
            int esc;
            if (c.i >= c.n || text[c.i] != '"' || scan_string(&c, &key, &klen, &esc) || esc)
                return SPEC_DECODE_SLOW;
            /* A declared field seen before is found too (the same one test
             * an entry as the seen[k] it replaces) and left to the tree
             * path, which decides what a repeat means (the top of the file). */
            k = 0;
            while (k < nf && !field_is(&src->fields[k], key, klen))
                k++;
            if (k < nf && seen[k]) return SPEC_DECODE_SLOW;
        }
        skip_ws(&c);
        if (c.i >= c.n || text[c.i] != ':') return SPEC_DECODE_SLOW;
        c.i++;
        skip_ws(&c);
        next = k + 1;
        if (k < nf) {
            seen[k] = 1;
            if (field_value(&c, &src->fields[k], &fields[k])) return SPEC_DECODE_SLOW;
        } else if (skip_value(&c, 1)) {
            return SPEC_DECODE_SLOW;
        }
        skip_ws(&c);
        if (c.i >= c.n) return SPEC_DECODE_SLOW;
        if (text[c.i] == '}') break;
        if (text[c.i] != ',') return SPEC_DECODE_SLOW;
        c.i++;
        skip_ws(&c);
    }
    if (c.i + 1 != c.n) return SPEC_DECODE_SLOW; /* text after the object */
    const expr_value_t *key = &fields[src->key_slot];
    if (key->type == EXPR_NULL || (key->type == EXPR_STRING && key->as.s.len > SPEC_MAX_KEY) ||
        fields[src->time_slot].type == EXPR_NULL)
        return SPEC_DECODE_SLOW;
    return 0;
}
