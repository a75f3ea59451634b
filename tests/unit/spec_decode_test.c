/* spec_decode_test.c — event decoding by schema (JSON → typed field slots)
 * and the text forms it relies on: durations and RFC 3339 times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/error.h"
#include "spec/decode.h"
#include "spec/spec.h"

static void test_durations(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(expr_parse_duration("500ms", 5, &ms), 0);
    assert_true(ms == 500);
    assert_int_equal(expr_parse_duration("30s", 3, &ms), 0);
    assert_true(ms == 30000);
    assert_int_equal(expr_parse_duration("10m", 3, &ms), 0);
    assert_true(ms == 600000);
    assert_int_equal(expr_parse_duration("1h", 2, &ms), 0);
    assert_true(ms == 3600000);
    assert_int_equal(expr_parse_duration("7d", 2, &ms), 0);
    assert_true(ms == 604800000);
    assert_int_equal(expr_parse_duration("0", 1, &ms), 0);
    assert_true(ms == 0);
    assert_int_equal(expr_parse_duration("0s", 2, &ms), 0);
    static const char *const bad[] = {"",   "h",  "1",  "1.5h", "-1h", "1 h",  "1hr",
                                      "1H", "1w", "ms", "1h ",  " 1h", "10mss"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (expr_parse_duration(bad[i], strlen(bad[i]), &ms) != WEIR_EINVAL)
            fail_msg("'%s' parsed as a duration", bad[i]);
    assert_int_equal(expr_parse_duration("9223372036854775807ms", 21, &ms), 0);
    assert_int_equal(expr_parse_duration("9223372036854775808ms", 21, &ms), WEIR_ERANGE);
    assert_int_equal(expr_parse_duration("106751991168d", 13, &ms), WEIR_ERANGE);
    assert_int_equal(expr_parse_duration("106751991167d", 13, &ms), 0);
    assert_int_equal(expr_parse_duration("99999999999999999999999s", 24, &ms), WEIR_ERANGE);

    char buf[32];
    expr_format_duration(5400000, buf, sizeof buf);
    assert_string_equal(buf, "90m");
    expr_format_duration(86400000, buf, sizeof buf);
    assert_string_equal(buf, "1d");
    expr_format_duration(1500, buf, sizeof buf);
    assert_string_equal(buf, "1500ms");
    expr_format_duration(0, buf, sizeof buf);
    assert_string_equal(buf, "0ms");
    expr_format_duration(-3600000, buf, sizeof buf);
    assert_string_equal(buf, "-1h");
}

static int64_t t(const char *s)
{
    int64_t ms = -42;
    if (expr_parse_rfc3339(s, strlen(s), &ms)) fail_msg("'%s' did not parse", s);
    return ms;
}

static void test_rfc3339(void **state)
{
    (void)state;
    assert_true(t("1970-01-01T00:00:00Z") == 0);
    assert_true(t("2024-05-01T13:45:30Z") == INT64_C(1714571130000));
    assert_true(t("2024-05-01T13:45:30.250Z") == INT64_C(1714571130250));
    assert_true(t("2024-05-01T13:45:30.2Z") == INT64_C(1714571130200));
    assert_true(t("2024-05-01T13:45:30.123456789Z") == INT64_C(1714571130123));
    assert_true(t("2024-05-01T15:45:30+02:00") == INT64_C(1714571130000));
    assert_true(t("2024-05-01T08:15:30-05:30") == INT64_C(1714571130000));
    assert_true(t("2024-05-01t13:45:30z") == INT64_C(1714571130000));
    assert_true(t("2024-05-01 13:45:30Z") == INT64_C(1714571130000));
    assert_true(t("1969-12-31T23:59:59.999Z") == -1);
    assert_true(t("2000-02-29T00:00:00Z") == INT64_C(951782400000));
    assert_true(t("2016-12-31T23:59:60Z") == INT64_C(1483228800000)); /* leap second */
    static const char *const bad[] = {
        "",
        "2024-05-01",
        "2024-05-01T13:45:30",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T13:60:00Z",
        "2024-05-01T13:45:61Z",
        "2024-05-01T13:45:30.Z",
        "2024-05-01T13:45:30+0200",
        "2024-05-01T13:45:30Zjunk",
        "24-05-01T13:45:30Z",
        "1714571130000",
        "2024-05-01T13:45Z",
        "2024-00-10T00:00:00Z",
    };
    int64_t ms;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (expr_parse_rfc3339(bad[i], strlen(bad[i]), &ms) == 0)
            fail_msg("'%s' parsed as a time", bad[i]);

    char buf[40];
    expr_format_rfc3339(INT64_C(1714571130250), buf, sizeof buf);
    assert_string_equal(buf, "2024-05-01T13:45:30.250Z");
    expr_format_rfc3339(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    /* round trip over a wide range of days */
    for (int64_t ms2 = -INT64_C(2208988800000); ms2 < INT64_C(4102444800000);
         ms2 += INT64_C(86399999) * 37) {
        expr_format_rfc3339(ms2, buf, sizeof buf);
        assert_true(t(buf) == ms2);
    }
}

static spec_t *fraud(void)
{
    const char *text = "pipeline: p\n"
                       "sources:\n"
                       "  tx:\n"
                       "    key: card_id\n"
                       "    time: ts\n"
                       "    fields: {card_id: string, n: int, amount: float, ok: bool, ts: time}\n";
    spec_t *s = NULL;
    char err[256];
    if (spec_load_string(text, strlen(text), "t.yaml", &s, err, sizeof err)) fail_msg("%s", err);
    return s;
}

/* Decodes json as replay does, or (edge) as HTTP and `weir ingest` do:
 * refusing a declared field named twice first. */
static int decode_as(int edge, const spec_source_t *src, const char *json, expr_value_t *v,
                     char *err, size_t errlen)
{
    cJSON *j = cJSON_Parse(json);
    if (!j) fail_msg("bad test JSON %s", json);
    err[0] = '\0';
    int rc = edge ? spec_decode_event_edge(src, j, v, err, errlen)
                  : spec_decode_event(src, j, v, err, errlen);
    /* keep string slices valid for the caller: copy the one string we check */
    static char keep[64];
    if (rc == 0 && v[0].type == EXPR_STRING && v[0].as.s.len < sizeof keep) {
        memcpy(keep, v[0].as.s.ptr, v[0].as.s.len);
        v[0].as.s.ptr = keep;
    }
    cJSON_Delete(j);
    return rc;
}

static int decode(const spec_source_t *src, const char *json, expr_value_t *v, char *err,
                  size_t errlen)
{
    return decode_as(0, src, json, v, err, errlen);
}

static void test_decode_event(void **state)
{
    (void)state;
    spec_t *s = fraud();
    const spec_source_t *src = &s->sources[0];
    expr_value_t v[5];
    char err[256];
    assert_int_equal(decode(src,
                            "{\"card_id\": \"c1\", \"n\": 3, \"amount\": 12.5, \"ok\": true, "
                            "\"ts\": 1714571130000, \"extra\": [1, 2]}",
                            v, err, sizeof err),
                     0);
    assert_true(v[0].type == EXPR_STRING && v[0].as.s.len == 2 && !memcmp(v[0].as.s.ptr, "c1", 2));
    assert_true(v[1].type == EXPR_INT && v[1].as.i == 3);
    assert_true(v[2].type == EXPR_FLOAT && v[2].as.f == 12.5);
    assert_true(v[3].type == EXPR_BOOL && v[3].as.b);
    assert_true(v[4].type == EXPR_TIME && v[4].as.i == INT64_C(1714571130000));

    /* ints are accepted for floats; RFC 3339 for times; missing and null → null */
    assert_int_equal(decode(src,
                            "{\"card_id\": \"c1\", \"amount\": 7, \"n\": null, "
                            "\"ts\": \"2024-05-01T13:45:30.5Z\"}",
                            v, err, sizeof err),
                     0);
    assert_true(v[2].type == EXPR_FLOAT && v[2].as.f == 7.0);
    assert_int_equal(v[1].type, EXPR_NULL);
    assert_int_equal(v[3].type, EXPR_NULL);
    assert_true(v[4].as.i == INT64_C(1714571130500));
    spec_free(s);
}

/* The edge's own refusals (spec_edge_refuses) of events that decode: an int
 * or a time of 2^53 (what 2^53 + 1 reads as: replay takes it, from older
 * logs), an empty key. */
static void edge_refuses(const char *json, const char *want)
{
    spec_t *s = fraud();
    expr_value_t v[5];
    char err[256];
    assert_int_equal(decode(&s->sources[0], json, v, err, sizeof err), 0);
    assert_int_equal(spec_edge_refuses(&s->sources[0], v, 0, err, sizeof err), 1);
    if (strcmp(err, want) != 0) fail_msg("got  '%s'\nwant '%s'", err, want);
    spec_free(s);
}

static void test_edge_refusals(void **state)
{
    (void)state;
    edge_refuses("{\"card_id\": \"c\", \"ts\": 1, \"n\": 9007199254740993}",
                 "field 'n': expected an int (a whole number of at most 2^53 - 1), got 9007199254740992");
    edge_refuses("{\"card_id\": \"c\", \"ts\": 1, \"n\": -9007199254740992}",
                 "field 'n': expected an int (a whole number of at most 2^53 - 1), got -9007199254740992");
    edge_refuses("{\"card_id\": \"c\", \"ts\": 9007199254740992}",
                 "field 'ts': a time must be whole epoch milliseconds (of at most 2^53 - 1), got "
                 "9007199254740992");
    edge_refuses("{\"card_id\": \"\", \"ts\": 1}", "field 'card_id': the key is empty");
    spec_t *s = fraud();
    expr_value_t v[5];
    char err[256];
    assert_int_equal(decode(&s->sources[0], "{\"card_id\": \"c\", \"ts\": 1, \"n\": 9007199254740991}",
                            v, err, sizeof err),
                     0);
    assert_int_equal(spec_edge_refuses(&s->sources[0], v, 0, err, sizeof err), 0);
    spec_free(s);
}

static void decode_fails(const char *json, const char *want)
{
    spec_t *s = fraud();
    expr_value_t v[5];
    char err[256];
    assert_int_equal(decode(&s->sources[0], json, v, err, sizeof err), WEIR_EINVAL);
    if (strcmp(err, want) != 0) fail_msg("got  '%s'\nwant '%s'", err, want);
    spec_free(s);
}

static void test_decode_errors(void **state)
{
    (void)state;
    decode_fails("[1]", "an event must be a JSON object, got an array");
    decode_fails("{\"ts\": 1}", "missing key field 'card_id'");
    decode_fails("{\"card_id\": null, \"ts\": 1}", "missing key field 'card_id'");
    decode_fails("{\"card_id\": \"c\"}", "missing time field 'ts'");
    decode_fails("{\"card_id\": 5, \"ts\": 1}", "field 'card_id': expected a string, got a number");
    decode_fails("{\"card_id\": \"c\", \"ts\": 1, \"n\": 1.5}",
                 "field 'n': expected an int (a whole number of at most 2^53 - 1), got 1.5");
    decode_fails("{\"card_id\": \"c\", \"ts\": 1, \"n\": 1e300}",
                 "field 'n': expected an int (a whole number of at most 2^53 - 1), got "
                 "1.0000000000000001e+300");
    decode_fails("{\"card_id\": \"c\", \"ts\": 1, \"n\": \"3\"}",
                 "field 'n': expected an int, got a string");
    decode_fails("{\"card_id\": \"c\", \"ts\": 1, \"amount\": \"3.5\"}",
                 "field 'amount': expected a float, got a string");
    decode_fails("{\"card_id\": \"c\", \"ts\": 1, \"ok\": 1}",
                 "field 'ok': expected a bool, got a number");
    decode_fails(
        "{\"card_id\": \"c\", \"ts\": 1.5}",
        "field 'ts': a time must be whole epoch milliseconds (of at most 2^53 - 1), got 1.5");
    decode_fails("{\"card_id\": \"c\", \"ts\": \"yesterday\"}",
                 "field 'ts': 'yesterday' is not an RFC 3339 time (such as 2024-05-01T12:00:00Z) "
                 "nor epoch milliseconds");
    decode_fails(
        "{\"card_id\": \"c\", \"ts\": true}",
        "field 'ts': expected a time (epoch milliseconds or an RFC 3339 string), got a bool");
    decode_fails("{\"card_id\": \"c\", \"ts\": {}}",
                 "field 'ts': expected a time (epoch milliseconds or an RFC 3339 string), got an "
                 "object");
}

/* A declared field named twice: refused at the edge, naming the field; on
 * replay (src/decide/pipeline.c: the direct decoder declines, then
 * engine_part_record parses and calls spec_decode_event, never the check)
 * the first occurrence counts, as it did when older binaries logged it. */
static void test_repeated_field(void **state)
{
    (void)state;
    spec_t *s = fraud();
    const spec_source_t *src = &s->sources[0];
    expr_value_t v[5];
    char err[256];
    const char *dup = "{\"card_id\":\"a\",\"n\":1,\"card_id\":\"b\",\"ts\":1,\"n\":\"x\"}";
    assert_int_equal(decode_as(1, src, dup, v, err, sizeof err), WEIR_EINVAL);
    assert_string_equal(err, "field 'card_id' appears twice: a field of the source may appear once "
                             "(JSON parsers differ on which of the two counts)");
    /* the name as cJSON decodes it, as spec_decode_event looks it up */
    const char *escaped = "{\"card_id\":\"a\",\"ts\":1,\"t\\u0073\":2}";
    assert_int_equal(decode_as(1, src, escaped, v, err, sizeof err), WEIR_EINVAL);
    assert_non_null(strstr(err, "field 'ts' appears twice"));
    /* undeclared members may repeat; names are case-sensitive */
    const char *other = "{\"card_id\":\"a\",\"ts\":1,\"x\":1,\"x\":2,\"TS\":3}";
    assert_int_equal(decode_as(1, src, other, v, err, sizeof err), 0);

    /* replay, as pipeline_replay does it: the direct decoder declines, the
     * tree path takes the first of each (the second n, a string, unread) */
    assert_int_equal(spec_decode_text(src, dup, strlen(dup), v), SPEC_DECODE_SLOW);
    assert_int_equal(decode_as(0, src, dup, v, err, sizeof err), 0);
    assert_true(v[0].type == EXPR_STRING && v[0].as.s.len == 1 && v[0].as.s.ptr[0] == 'a');
    assert_true(v[1].type == EXPR_INT && v[1].as.i == 1);
    assert_true(v[4].type == EXPR_TIME && v[4].as.i == 1);
    spec_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_decode_event),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_edge_refusals),
        cmocka_unit_test(test_repeated_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
