/* serve_kafka_marks_test.c — the marks of a Kafka source (kafka_marks.h):
 * raised, read back from their SOURCE records and from a checkpoint's
 * text, another topic's left out, malformed ones refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "serve/kafka_marks.h"

static weir_slice_t slice(const weir_buf_t *b)
{
    return (weir_slice_t){b->data, b->len};
}

/* b's bytes are want's (a buffer holds no NUL of its own) */
static void assert_text(const weir_buf_t *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
}

static void test_raise_and_get(void **state)
{
    (void)state;
    kafka_marks_t m = {0};
    assert_true(kafka_marks_get(&m, 0) == KAFKA_MARKS_NONE);
    assert_true(kafka_marks_get(&m, -1) == KAFKA_MARKS_NONE);
    kafka_marks_raise(&m, 3, 10);
    kafka_marks_raise(&m, 3, 7); /* never back */
    assert_true(kafka_marks_get(&m, 3) == 10);
    assert_true(kafka_marks_get(&m, 2) == KAFKA_MARKS_NONE); /* the ones grown past: none */
    kafka_marks_raise(&m, KAFKA_MARKS_MAX_PARTITIONS, 1);    /* out of range: ignored */
    assert_true(kafka_marks_get(&m, KAFKA_MARKS_MAX_PARTITIONS) == KAFKA_MARKS_NONE);
    kafka_marks_clear(&m);
    assert_true(kafka_marks_get(&m, 3) == KAFKA_MARKS_NONE);
    kafka_marks_free(&m);
}

static void test_records(void **state)
{
    (void)state;
    weir_buf_t b = WEIR_BUF_INIT;
    kafka_marks_record(&b, "pay\"ments", "c1", 2, 9007199254740991LL);
    assert_text(&b, "{\"kafka\":\"pay\\\"ments\",\"cluster\":\"c1\",\"partition\":2,\"offset\":"
                    "9007199254740991}");
    kafka_marks_t m = {0};
    char why[128];
    assert_int_equal(kafka_marks_apply(&m, "pay\"ments", slice(&b), why, sizeof why), 0);
    assert_true(kafka_marks_get(&m, 2) == 9007199254740991LL);
    /* a reset (offset -1) voids the partition's mark: a topic made again */
    buf_reset(&b);
    kafka_marks_record(&b, "pay\"ments", "c1", 2, KAFKA_MARKS_NONE);
    assert_int_equal(kafka_marks_apply(&m, "pay\"ments", slice(&b), why, sizeof why), 0);
    assert_true(kafka_marks_get(&m, 2) == KAFKA_MARKS_NONE);
    buf_reset(&b);
    kafka_marks_record(&b, "pay\"ments", "c1", 2, 4);
    assert_int_equal(kafka_marks_apply(&m, "pay\"ments", slice(&b), why, sizeof why), 0);
    assert_true(kafka_marks_get(&m, 2) == 4); /* the new topic's, not the old's */
    /* another topic's record is valid and changes nothing */
    buf_reset(&b);
    kafka_marks_record(&b, "other", "c1", 0, 5);
    assert_int_equal(kafka_marks_apply(&m, "pay\"ments", slice(&b), why, sizeof why), 0);
    assert_true(kafka_marks_get(&m, 0) == KAFKA_MARKS_NONE);
    static const char *const bad[] = {
        "",
        "{}",
        "[1]",
        "{\"kafka\":1,\"partition\":0,\"offset\":1}",
        "{\"kafka\":\"t\",\"partition\":-1,\"offset\":1}",
        "{\"kafka\":\"t\",\"partition\":0,\"offset\":1.5}",
        "{\"kafka\":\"t\",\"partition\":0,\"offset\":-2}",
        "{\"kafka\":\"t\",\"cluster\":7,\"partition\":0,\"offset\":1}",
        "{\"kafka\":\"t\",\"partition\":65536,\"offset\":1}",
        "{\"kafka\":\"t\",\"partition\":0,\"offset\":1e300}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(
            kafka_marks_apply(&m, "t", (weir_slice_t){bad[i], strlen(bad[i])}, why, sizeof why),
            -1);
    buf_free(&b);
    kafka_marks_free(&m);
}

static void test_checkpoint_form(void **state)
{
    (void)state;
    kafka_marks_t m = {0}, back = {0};
    kafka_marks_raise(&m, 0, 4);
    kafka_marks_raise(&m, 2, 0);
    weir_buf_t b = WEIR_BUF_INIT;
    kafka_marks_encode(&m, "t", &b);
    assert_text(&b, "{\"kafka\":\"t\",\"cluster\":\"\",\"offsets\":[4,-1,0]}");
    char why[128];
    kafka_marks_raise(&back, 7, 70); /* decode replaces what was there */
    assert_int_equal(kafka_marks_decode(&back, "t", slice(&b), why, sizeof why), 0);
    for (int32_t k = 0; k < 8; k++)
        assert_true(kafka_marks_get(&back, k) == kafka_marks_get(&m, k));
    /* of another topic: none */
    assert_int_equal(kafka_marks_decode(&back, "u", slice(&b), why, sizeof why), 0);
    assert_true(kafka_marks_get(&back, 0) == KAFKA_MARKS_NONE);
    static const char *const bad[] = {"{\"kafka\":\"t\"}", "{\"kafka\":\"t\",\"offsets\":[-2]}",
                                      "{\"kafka\":\"t\",\"offsets\":[\"1\"]}", "nope"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(
            kafka_marks_decode(&back, "t", (weir_slice_t){bad[i], strlen(bad[i])}, why, sizeof why),
            -1);
        assert_true(kafka_marks_get(&back, 0) == KAFKA_MARKS_NONE); /* nothing half-read */
    }
    buf_free(&b);
    kafka_marks_free(&m);
    kafka_marks_free(&back);
}

/* Marks are of one cluster: another's are dropped; an id not known ("")
 * proves nothing and drops nothing. */
static void test_clusters(void **state)
{
    (void)state;
    kafka_marks_t m = {0};
    kafka_marks_raise(&m, 0, 9);
    assert_int_equal(kafka_marks_adopt(&m, ""), 0);
    assert_int_equal(kafka_marks_adopt(&m, "A"), 0); /* unknown before: taken as A's */
    assert_true(kafka_marks_get(&m, 0) == 9);
    assert_int_equal(kafka_marks_adopt(&m, ""), 0);
    assert_string_equal(m.cluster, "A");
    assert_int_equal(kafka_marks_adopt(&m, "B"), 1); /* another cluster: dropped */
    assert_true(kafka_marks_get(&m, 0) == KAFKA_MARKS_NONE);
    assert_string_equal(m.cluster, "B");
    assert_int_equal(kafka_marks_adopt(&m, "C"), 0); /* none to drop */
    /* a record of another cluster replaces the marks (the newest wins) */
    kafka_marks_raise(&m, 1, 50);
    weir_buf_t b = WEIR_BUF_INIT;
    kafka_marks_record(&b, "t", "D", 0, 3);
    char why[128];
    assert_int_equal(kafka_marks_apply(&m, "t", slice(&b), why, sizeof why), 0);
    assert_true(kafka_marks_get(&m, 0) == 3 && kafka_marks_get(&m, 1) == KAFKA_MARKS_NONE);
    assert_string_equal(m.cluster, "D");
    /* the checkpoint form keeps the cluster */
    buf_reset(&b);
    kafka_marks_encode(&m, "t", &b);
    kafka_marks_t back = {0};
    assert_int_equal(kafka_marks_decode(&back, "t", slice(&b), why, sizeof why), 0);
    assert_string_equal(back.cluster, "D");
    assert_true(kafka_marks_get(&back, 0) == 3);
    buf_free(&b);
    kafka_marks_free(&m);
    kafka_marks_free(&back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raise_and_get),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_checkpoint_form),
        cmocka_unit_test(test_clusters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
