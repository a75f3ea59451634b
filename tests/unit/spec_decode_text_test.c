/* spec_decode_text_test.c — the direct event decoder (spec_decode_text):
 * what it decodes equals the tree path (cJSON + spec_decode_event) value
 * for value, and what it cannot prove equal it leaves to the tree path
 * (SPEC_DECODE_SLOW). The differential check is fuzz/spec_decode_diff.h,
 * shared with the fuzz target; here it runs over fixed cases, a sweep of
 * numbers against strtod, and seeded random events and mutations of them. */
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../fuzz/spec_decode_diff.h"

static spec_t *spec;

static int setup(void **state)
{
    (void)state;
    spec = decode_diff_spec();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    spec_free(spec);
    return 0;
}

static const spec_source_t *src(void)
{
    return &spec->sources[0];
}

/* Decoded directly (and, decode_diff checks, as the tree path does). */
static void direct(const char *text)
{
    if (!decode_diff(src(), text, strlen(text))) fail_msg("left to the tree path: %s", text);
}

/* Left to the tree path. */
static void slow(const char *text)
{
    if (decode_diff(src(), text, strlen(text))) fail_msg("decoded directly: %s", text);
}

static void test_values(void **state)
{
    (void)state;
    const char *text = "{\"card_id\": \"c1\", \"n\": -3, \"amount\": 12.5, \"ok\": false, "
                       "\"ts\": 1714571130000, \"at\": \"2024-05-01T13:45:30.5Z\", "
                       "\"name\": \"caf\xc3\xa9\", \"extra\": {\"a\": [1, 2.5e3, true, null]}}";
    expr_value_t v[7];
    assert_int_equal(spec_decode_text(src(), text, strlen(text), v), 0);
    assert_true(v[0].type == EXPR_STRING && v[0].as.s.len == 2 && !memcmp(v[0].as.s.ptr, "c1", 2));
    assert_true(v[0].as.s.ptr > text && v[0].as.s.ptr < text + strlen(text)); /* a slice */
    assert_true(v[1].type == EXPR_INT && v[1].as.i == -3);
    assert_true(v[2].type == EXPR_FLOAT && v[2].as.f == 12.5);
    assert_true(v[3].type == EXPR_BOOL && !v[3].as.b);
    assert_true(v[4].type == EXPR_TIME && v[4].as.i == INT64_C(1714571130000));
    assert_true(v[5].type == EXPR_TIME && v[5].as.i == INT64_C(1714571130500));
    assert_true(v[6].type == EXPR_STRING && v[6].as.s.len == 5);
    direct(text);

    /* absent and null fields are null; ints are taken for floats */
    direct("{\"card_id\":\"c\",\"ts\":1,\"n\":null,\"amount\":7}");
    assert_int_equal(spec_decode_text(src(), "{\"ts\":1,\"card_id\":\"c\"}", 22, v), 0);
    assert_int_equal(v[1].type, EXPR_NULL);
    assert_int_equal(v[3].type, EXPR_NULL);
    /* a member that is not a declared field may repeat, like any unknown one */
    direct("{\"card_id\":\"c\",\"ts\":1,\"other\":1,\"other\":\"x\"}");
    /* signs, zeros and the edges of the exact fast conversion */
    direct("{\"card_id\":\"c\",\"ts\":-1,\"amount\":-0.0,\"n\":-0}");
    direct("{\"card_id\":\"c\",\"ts\":1,\"amount\":9007199254740992e22}");
    direct("{\"card_id\":\"c\",\"ts\":1,\"amount\":9007199254740993}");
    direct("{\"card_id\":\"c\",\"ts\":1,\"amount\":1e23,\"n\":1E2}");
    direct("{\"card_id\":\"c\",\"ts\":1,\"amount\":0.000000000000000000000001}");
    direct("{\"card_id\":\"c\",\"ts\":1,\"amount\":1.7976931348623157e308}");
    direct("{\"card_id\":\"c\",\"ts\":1,\"amount\":4.9e-324}");
    direct("{\"card_id\":\"c\",\"ts\":1,\"amount\":1e-400}");
    direct("{\"card_id\":\"c\",\"ts\":1,\"amount\":123456789012345678901234567890}");
    direct("{\"card_id\":\"c\",\"ts\":1,\"n\":9007199254740992,\"amount\":5e+0}");
    /* escapes other than \u in members nobody reads */
    direct("{\"card_id\":\"c\",\"ts\":1,\"note\":\"a \\\"quote\\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}");
    direct("{ \"card_id\" : \"c\" ,\r\n\t\"ts\" : 1 }");
}

static void test_left_to_tree(void **state)
{
    (void)state;
    /* valid events it does not take: escapes where a value must be a
     * slice, \u anywhere, deep nesting, long numbers */
    slow("{\"card_id\":\"c\\\"d\",\"ts\":1}");
    slow("{\"card\\u005fid\":\"c\",\"ts\":1}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"x\":\"\\u00e9\"}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]"
         "]]]]"
         "]]]]]]}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"amount\":1.00000000000000000000000000000000000000001}");
    /* what cJSON accepts beyond strict JSON */
    slow("\xef\xbb\xbf{\"card_id\":\"c\",\"ts\":1}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"amount\":01}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"amount\":1.}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"amount\":.5}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"amount\":+1}");
    slow("{\x0b\"card_id\":\"c\",\"ts\":1}");
    slow("{\"card_id\":\"c\x01\",\"ts\":1}");
    /* errors, all the tree path's to word */
    slow("");
    slow("{}");
    slow("[]");
    slow("{\"card_id\":\"c\",\"ts\":1");
    slow("{\"card_id\":\"c\",\"ts\":1,}");
    slow("{\"card_id\":\"c\",\"ts\":1} ");
    slow("{\"card_id\":\"c\",\"ts\":1}{}");
    slow("{\"card_id\":\"c\"}");
    slow("{\"card_id\":null,\"ts\":1}");
    slow("{\"card_id\":5,\"ts\":1}");
    slow("{\"card_id\":\"c\",\"ts\":1.5}");
    slow("{\"card_id\":\"c\",\"ts\":\"yesterday\"}");
    slow("{\"card_id\":\"c\",\"ts\":true}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"n\":1.5}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"n\":1e300}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"amount\":1e400}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"amount\":\"3.5\"}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"ok\":1}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"ok\":tru}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"x\":nul}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"x\":[1,]}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"x\":{\"a\"}}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"amount\":1e}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"amount\":-}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"amount\":1-2}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"x\":\"\\x\"}");
    /* a declared field named twice: the edge refuses it, replay takes the
     * first (spec_decode_test.c, test_repeated_field); the tree path decides */
    slow("{\"card_id\":\"a\",\"card_id\":\"b\",\"ts\":1}");
    slow("{\"card_id\":\"c\",\"ts\":1,\"n\":null,\"n\":\"a string\"}");
    slow("{\"n\":1,\"card_id\":\"c\",\"n\":2,\"ts\":1}"); /* the field after the last one found */
    /* a key over the log's limit */
    size_t n = SPEC_MAX_KEY + 64;
    char *big = malloc(n);
    int at = snprintf(big, n, "{\"ts\":1,\"card_id\":\"");
    memset(big + at, 'k', SPEC_MAX_KEY + 1);
    strcpy(big + at + SPEC_MAX_KEY + 1, "\"}");
    slow(big);
    free(big);
}

/* xorshift64*: deterministic randomness for the sweeps */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dull;
}

/* Random JSON number text (valid grammar) into buf. */
static void number_text(char *buf, size_t cap)
{
    size_t k = 0;
    if (next() % 3 == 0) buf[k++] = '-';
    int ndig = 1 + (int)(next() % 24);
    if (next() % 4 == 0) {
        buf[k++] = '0';
    } else {
        buf[k++] = (char)('1' + next() % 9);
        for (int i = 1; i < ndig; i++)
            buf[k++] = (char)('0' + next() % 10);
    }
    if (next() % 2) {
        buf[k++] = '.';
        int nf = 1 + (int)(next() % 20);
        for (int i = 0; i < nf; i++)
            buf[k++] = (char)('0' + next() % 10);
    }
    if (next() % 2) {
        buf[k++] = next() % 2 ? 'e' : 'E';
        if (next() % 2) buf[k++] = next() % 2 ? '-' : '+';
        k += (size_t)snprintf(buf + k, cap - k, "%d", (int)(next() % 340));
    }
    buf[k] = '\0';
}

static void test_numbers(void **state)
{
    (void)state;
    int fast = 0;
    for (int i = 0; i < 200000; i++) {
        char num[96], text[160];
        number_text(num, sizeof num);
        snprintf(text, sizeof text, "{\"card_id\":\"c\",\"ts\":1,\"amount\":%s}", num);
        expr_value_t v[7];
        int rc = spec_decode_text(src(), text, strlen(text), v);
        double want = strtod(num, NULL);
        if (strlen(num) > 40 || !isfinite(want)) {
            assert_int_equal(rc, SPEC_DECODE_SLOW);
            continue;
        }
        if (rc != 0) fail_msg("%s left to the tree path", num);
        if (memcmp(&v[2].as.f, &want, sizeof want))
            fail_msg("%s: %.17g, strtod %.17g", num, v[2].as.f, want);
        fast++;
        if (i % 16 == 0) direct(text);
    }
    assert_true(fast > 100000);
}

/* A random event: the declared fields (some missing, null, of another
 * type, repeated) and unknown members of any shape, in random order. */
static size_t random_value(char *b, size_t k, int depth)
{
    static const char *const strs[] = {"\"\"",       "\"x\"",       "\"card-000042\"",
                                       "\"a\\\"b\"", "\"\\u00e9\"", "\"2024-05-01T13:45:30Z\"",
                                       "\"t\\tab\""};
    char num[96];
    switch (next() % (depth < 3 ? 7 : 5)) {
    case 0:
        return k + (size_t)sprintf(b + k, "%s", strs[next() % 7]);
    case 1:
        number_text(num, sizeof num);
        return k + (size_t)sprintf(b + k, "%s", num);
    case 2:
        return k + (size_t)sprintf(b + k, "%s", next() % 2 ? "true" : "false");
    case 3:
        return k + (size_t)sprintf(b + k, "null");
    case 4:
        return k + (size_t)sprintf(b + k, "%" PRIu64, next() % UINT64_C(4000000000000));
    case 5:
        b[k++] = '[';
        for (int n = (int)(next() % 3), i = 0; i < n; i++) {
            if (i) b[k++] = ',';
            k = random_value(b, k, depth + 1);
        }
        b[k++] = ']';
        return k;
    default:
        b[k++] = '{';
        for (int n = (int)(next() % 3), i = 0; i < n; i++) {
            if (i) b[k++] = ',';
            k += (size_t)sprintf(b + k, "\"k%d\": ", i);
            k = random_value(b, k, depth + 1);
        }
        b[k++] = '}';
        return k;
    }
}

static size_t random_event(char *b)
{
    static const char *const names[] = {"card_id", "n",  "amount", "ok",
                                        "ts",      "at", "name",   "other"};
    size_t k = 0;
    b[k++] = '{';
    int n = 2 + (int)(next() % 9);
    for (int i = 0; i < n; i++) {
        if (i) k += (size_t)sprintf(b + k, next() % 4 ? "," : " ,\n ");
        int f = i < 2 && next() % 8 ? i * 4 : (int)(next() % 8); /* key and time first, mostly */
        k += (size_t)sprintf(b + k, "\"%s\":", names[f]);
        char num[96];
        if (next() % 8 == 0) { /* any value: often of the wrong type */
            k = random_value(b, k, 0);
            continue;
        }
        switch (f) {
        case 0:
        case 6:
            k += (size_t)sprintf(b + k, "\"c%d\"", (int)(next() % 100));
            break;
        case 1:
        case 4:
            k += (size_t)sprintf(b + k, "%d", (int)(next() % 100000) - 50);
            break;
        case 2:
            number_text(num, sizeof num);
            k += (size_t)sprintf(b + k, "%s", num);
            break;
        case 3:
            k += (size_t)sprintf(b + k, next() % 2 ? "true" : "false");
            break;
        case 5:
            k += (size_t)sprintf(b + k, "\"2024-05-01T13:45:30.25Z\"");
            break;
        default:
            k = random_value(b, k, 0);
            break;
        }
    }
    b[k++] = '}';
    b[k] = '\0';
    return k;
}

/* The string scan reads eight bytes at a time: every byte that ends or
 * escapes a string, at every position of strings of every length around
 * that width, in a field value, in an ignored member and in a key (the
 * exact-size copy lets ASan see a read past the end). Each case must
 * decode as the tree path does, or be left to it; plain ones directly. */
static void test_string_stops(void **state)
{
    (void)state;
    static const char *const stops[] = {"\\\"", "\\\\", "\\n", "\\u0041", "\x01", "\x1f",
                                        "\t",     " ",      "\x7f", "\xc3\xa9", "\xff", "\""};
    static const char *const frames[] = {"{\"card_id\":\"%s\",\"ts\":1}",
                                         "{\"card_id\":\"c\",\"ts\":1,\"zz\":\"%s\"}",
                                         "{\"card_id\":\"c\",\"%s\":2,\"ts\":1}"};
    char str[64], text[160];
    int directly = 0;
    for (size_t f = 0; f < sizeof frames / sizeof *frames; f++)
        for (size_t len = 0; len <= 24; len++)
            for (size_t at = 0; at <= len; at++)
                for (size_t k = 0; k < sizeof stops / sizeof *stops; k++) {
                    size_t n = 0;
                    for (size_t i = 0; i < len; i++)
                        str[n++] = (char)('a' + i % 26);
                    str[n] = '\0';
                    if (at < len) { /* the stop replaces byte `at` (else: a plain string) */
                        size_t sl = strlen(stops[k]);
                        memmove(str + at + sl, str + at + 1, len - at);
                        memcpy(str + at, stops[k], sl);
                    }
                    int tn = snprintf(text, sizeof text, frames[f], str);
                    char *copy = malloc((size_t)tn);
                    memcpy(copy, text, (size_t)tn);
                    int direct_ok = decode_diff(src(), copy, (size_t)tn);
                    free(copy);
                    if (at == len && !direct_ok) fail_msg("left to the tree path: %s", text);
                    directly += direct_ok;
                }
    assert_true(directly > 1000);
}

static void test_random_events(void **state)
{
    (void)state;
    int decoded = 0, mutated_decoded = 0;
    char *b = malloc(1 << 16);
    for (int i = 0; i < 100000; i++) {
        size_t n = random_event(b);
        decoded += decode_diff(src(), b, n);
        /* and a mutation: a byte flipped, dropped or repeated */
        size_t at = next() % n;
        switch (next() % 3) {
        case 0:
            b[at] = (char)(next() % 256);
            break;
        case 1:
            memmove(b + at, b + at + 1, n - at), n--;
            break;
        default:
            memmove(b + at + 1, b + at, n - at + 1), n++;
            break;
        }
        char *copy = malloc(n ? n : 1); /* exact size: ASan sees a read past the end */
        memcpy(copy, b, n);
        mutated_decoded += decode_diff(src(), copy, n);
        free(copy);
    }
    free(b);
    /* a test that cannot fail is a defect: most events must take the fast way */
    print_message("%d of 100000 events and %d mutations decoded directly\n", decoded,
                  mutated_decoded);
    assert_true(decoded > 10000);
    assert_true(mutated_decoded > 1000);
}

/* The edge's byte checks: UTF-8 by RFC 3629's table, and \u0000 escapes
 * told from escaped backslashes. */
static void test_edge_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long bad;
    } utf8[] = {
        {"{\"k\":\"plain ascii, longer than eight bytes\"}", -1},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", -1},
        {"abcdefgh\xff", 8},       /* never a UTF-8 byte */
        {"ab\xc0\xaf", 2},         /* overlong '/' */
        {"ab\xe0\x80\xaf", 2},     /* overlong, three bytes */
        {"ab\xed\xa0\x80", 2},     /* a surrogate, U+D800 */
        {"ab\xf4\x90\x80\x80", 2}, /* past U+10FFFF */
        {"ab\xe2\x82", 2},         /* cut short at the end */
        {"ab\xe2\x28\xa1", 2},     /* a continuation byte missing */
        {"ab\x80"
         "cd",
         2}, /* a lone continuation byte */
    };
    for (size_t i = 0; i < sizeof utf8 / sizeof *utf8; i++)
        assert_int_equal(spec_text_utf8_bad(utf8[i].text, strlen(utf8[i].text)), utf8[i].bad);
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        long at;
    } nul[] = {
        {"{\"k\":\"a\\u0000b\"}", 0, 7},
        {"{\"k\":\"a\\\\u0000b\"}", 0, -1}, /* a\\u0000b: an escaped backslash, then text */
        {"{\"k\":\"a\\\\\\u0000\"}", 0, 9},
        {"\"\\u000", 0, -1},
        {"{\"k\":\"a\0b\"}", 11, 7},      /* a raw NUL in a string */
        {"{\"k\":\"a\tb\"}", 0, 7},       /* a raw tab in a string */
        {"{\"k\":\n\t\"a\\tb\"}", 0, -1}, /* white space between tokens, an escaped tab */
        {"{\"k\":\"a\\\"\tb\"}", 0, 9},   /* an escaped quote does not end the string */
    };
    for (size_t i = 0; i < sizeof nul / sizeof *nul; i++)
        assert_int_equal(spec_text_nul(nul[i].text, nul[i].len ? nul[i].len : strlen(nul[i].text)),
                         nul[i].at);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),        cmocka_unit_test(test_left_to_tree),
        cmocka_unit_test(test_numbers),       cmocka_unit_test(test_string_stops),
        cmocka_unit_test(test_random_events), cmocka_unit_test(test_edge_bytes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
