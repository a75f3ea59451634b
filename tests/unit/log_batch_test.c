/* log_batch_test.c — record batch encoding and validation: round trips,
 * every single-bit flip and every truncation detected, limits enforced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/error.h"
#include "base/crc32c.h"
#include "log/batch.h"

#define NREC 7

static void make_records(log_rec_t *recs, char store[NREC][64])
{
    for (int i = 0; i < NREC; i++) {
        int n = snprintf(store[i], 64, "{\"i\":%d,\"pad\":\"%.*s\"}", i, i * 5, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        recs[i] = (log_rec_t){0, 1700000000000 + (i % 3) * 7 - i, i == 4 ? LOG_REC_TICK : LOG_REC_EVENT,
                              {store[i], (size_t)(i % 4)}, {store[i], (size_t)(i == 2 ? 0 : n)}};
    }
}

static void round_trip(void **state)
{
    (void)state;
    log_rec_t recs[NREC];
    char store[NREC][64];
    make_records(recs, store);
    weir_buf_t b = WEIR_BUF_INIT;
    assert_int_equal(batch_encode(&b, recs, NREC, NULL, 0), 0);
    batch_set_base(b.data, 1000);
    batch_info_t info;
    assert_int_equal(batch_check((unsigned char *)b.data, b.len, &info), BATCH_OK);
    assert_int_equal(info.size, b.len);
    assert_int_equal(info.count, NREC);
    assert_true(info.base == 1000);
    assert_true(info.attr & BATCH_ATTR_HAS_TICK);
    batch_iter_t it;
    batch_iter_init(&it, (unsigned char *)b.data, &info);
    log_rec_t r;
    for (int i = 0; i < NREC; i++) {
        assert_int_equal(batch_iter_next(&it, &r), 1);
        assert_true(r.offset == 1000u + (unsigned)i);
        assert_true(r.ts == recs[i].ts);
        assert_int_equal(r.type, recs[i].type);
        assert_int_equal(r.key.len, recs[i].key.len);
        assert_memory_equal(r.key.ptr, recs[i].key.ptr, r.key.len);
        assert_int_equal(r.value.len, recs[i].value.len);
        assert_memory_equal(r.value.ptr, recs[i].value.ptr, r.value.len);
    }
    assert_int_equal(batch_iter_next(&it, &r), 0);
    buf_free(&b);
}

/* A flip anywhere but the base offset makes the batch invalid; a flip in
 * the base offset changes only the base (the log's chain check catches it). */
static void every_bit_flip_detected(void **state)
{
    (void)state;
    log_rec_t recs[NREC];
    char store[NREC][64];
    make_records(recs, store);
    weir_buf_t b = WEIR_BUF_INIT;
    assert_int_equal(batch_encode(&b, recs, NREC, NULL, 0), 0);
    unsigned char *p = (unsigned char *)b.data;
    for (size_t byte = 0; byte < b.len; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            p[byte] ^= (unsigned char)(1 << bit);
            batch_info_t info;
            batch_status_t s = batch_check(p, b.len, &info);
            if (byte < 8) {
                assert_int_equal(s, BATCH_OK);
                assert_true(info.base == (uint64_t)1 << (byte * 8 + (size_t)bit));
            } else {
                assert_int_not_equal(s, BATCH_OK);
            }
            p[byte] ^= (unsigned char)(1 << bit);
        }
    }
    buf_free(&b);
}

static void every_truncation_is_short(void **state)
{
    (void)state;
    log_rec_t recs[NREC];
    char store[NREC][64];
    make_records(recs, store);
    weir_buf_t b = WEIR_BUF_INIT;
    assert_int_equal(batch_encode(&b, recs, NREC, NULL, 0), 0);
    for (size_t cut = 0; cut < b.len; cut++) {
        batch_info_t info;
        assert_int_equal(batch_check((unsigned char *)b.data, cut, &info), BATCH_SHORT);
    }
    buf_free(&b);
}

/* A batch with a SOURCE record is written with its own magic (an older
 * weir refuses it as another format's, never cuts it); it reads back, and
 * the source flag is refused under the first magic. */
static void source_records_have_their_magic(void **state)
{
    (void)state;
    log_rec_t recs[2] = {{0, 5, LOG_REC_EVENT, {"k", 1}, {"{}", 2}},
                         {0, 5, LOG_REC_SOURCE, {NULL, 0}, {"{\"kafka\":\"t\"}", 13}}};
    weir_buf_t b = WEIR_BUF_INIT;
    assert_int_equal(batch_encode(&b, recs, 1, NULL, 0), 0);
    assert_int_equal(((unsigned char *)b.data)[BATCH_OFF_MAGIC], BATCH_MAGIC);
    assert_int_equal(batch_encode(&b, recs, 2, NULL, 0), 0);
    unsigned char *p = (unsigned char *)b.data;
    assert_int_equal(p[BATCH_OFF_MAGIC], BATCH_MAGIC_SOURCE);
    batch_info_t info;
    assert_int_equal(batch_check(p, b.len, &info), BATCH_OK);
    assert_true(info.attr == BATCH_ATTR_HAS_SOURCE);
    batch_iter_t it;
    batch_iter_init(&it, p, &info);
    log_rec_t r;
    assert_int_equal(batch_iter_next(&it, &r), 1);
    assert_int_equal(r.type, LOG_REC_EVENT);
    assert_int_equal(batch_iter_next(&it, &r), 1);
    assert_int_equal(r.type, LOG_REC_SOURCE);
    assert_int_equal(r.value.len, 13);
    assert_memory_equal(r.value.ptr, "{\"kafka\":\"t\"}", 13);
    /* the source flag under magic 1, its CRC made to hold: impossible */
    p[BATCH_OFF_MAGIC] = BATCH_MAGIC;
    uint32_t crc = crc32c(0, p + 16, b.len - 16);
    memcpy(p + BATCH_OFF_CRC, &crc, 4); /* (little-endian, as the format) */
    assert_int_equal(batch_check(p, b.len, &info), BATCH_BAD_HEADER);
    buf_free(&b);
}

static void limits_enforced(void **state)
{
    (void)state;
    weir_buf_t b = WEIR_BUF_INIT;
    char err[128];
    static char big[BATCH_MAX_KEY + 1];
    log_rec_t r = {0, 0, LOG_REC_EVENT, {big, sizeof big}, {"{}", 2}};
    assert_int_equal(batch_encode(&b, &r, 1, err, sizeof err), WEIR_ETOOBIG);
    assert_non_null(strstr(err, "key"));
    assert_int_equal(batch_encode(&b, &r, 0, err, sizeof err), WEIR_EINVAL);
    r.key.len = 1;
    r.type = (log_rec_type_t)9;
    assert_int_equal(batch_encode(&b, &r, 1, err, sizeof err), WEIR_EINVAL);
    buf_free(&b);
}

/* Random bytes never crash the validator, and never validate. */
static void garbage_never_validates(void **state)
{
    (void)state;
    unsigned char buf[512];
    srand(11);
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)rand() % sizeof buf;
        for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)rand();
        if (n >= 16 && round % 2) { /* a plausible header helps reach the record checks */
            uint32_t len = (uint32_t)(n - 12);
            memcpy(buf + 8, &len, 4);
            buf[16] = BATCH_MAGIC;
            buf[17] = 0;
        }
        batch_info_t info;
        assert_int_not_equal(batch_check(buf, n, &info), BATCH_OK);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(every_bit_flip_detected),
        cmocka_unit_test(every_truncation_is_short),
        cmocka_unit_test(source_records_have_their_magic),
        cmocka_unit_test(limits_enforced),
        cmocka_unit_test(garbage_never_validates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
