/* base_codec_test.c — CRC32C (hardware vs table vs RFC 3720 vectors), varints,
 * the JSON string escaper and the counting allocator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/crc32c.h"
#include "base/hash.h"
#include "base/varint.h"

static void crc32c_known_vectors(void **state)
{
    (void)state;
    unsigned char buf[48];
    /* RFC 3720 B.4 */
    memset(buf, 0, 32);
    assert_int_equal(crc32c(0, buf, 32), 0x8a9136aa);
    memset(buf, 0xff, 32);
    assert_int_equal(crc32c(0, buf, 32), 0x62a8ab43);
    for (int i = 0; i < 32; i++) buf[i] = (unsigned char)i;
    assert_int_equal(crc32c(0, buf, 32), 0x46dd794e);
    for (int i = 0; i < 32; i++) buf[i] = (unsigned char)(31 - i);
    assert_int_equal(crc32c(0, buf, 32), 0x113fdb5c);
    assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283);
}

static void crc32c_hw_matches_sw(void **state)
{
    (void)state;
    unsigned char buf[4099];
    srand(7);
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)rand();
    for (size_t len = 0; len < sizeof buf; len += 1 + len / 7) {
        for (size_t off = 0; off < 8; off++) {
            if (off + len > sizeof buf) break;
            assert_int_equal(crc32c(0, buf + off, len), crc32c_sw(0, buf + off, len));
        }
    }
    /* Continuation: crc(a ++ b) == crc(crc(a), b). */
    assert_int_equal(crc32c(crc32c(0, buf, 1000), buf + 1000, 3000), crc32c(0, buf, 4000));
}

static void varint_round_trip(void **state)
{
    (void)state;
    unsigned char b[VARINT_MAX];
    uint64_t vals[] = {0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, (uint64_t)1 << 63, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        size_t n = varint_put(b, vals[i]);
        uint64_t v;
        assert_int_equal(varint_get(b, b + n, &v), n);
        assert_true(v == vals[i]);
        assert_int_equal(varint_get(b, b + n - 1, &v), 0); /* truncated */
    }
    int64_t svals[] = {0, -1, 1, -64, 64, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < sizeof svals / sizeof *svals; i++) {
        size_t n = varint_put_signed(b, svals[i]);
        int64_t v;
        assert_int_equal(varint_get_signed(b, b + n, &v), n);
        assert_true(v == svals[i]);
    }
    unsigned char overlong[11];
    memset(overlong, 0x80, sizeof overlong);
    uint64_t v;
    assert_int_equal(varint_get(overlong, overlong + sizeof overlong, &v), 0);
}

static void json_string_escaping(void **state)
{
    (void)state;
    weir_buf_t b = WEIR_BUF_INIT;
    buf_append_json_string(&b, "a\"b\\c\n\x01z", 8);
    assert_int_equal(b.len, strlen("\"a\\\"b\\\\c\\u000a\\u0001z\""));
    assert_memory_equal(b.data, "\"a\\\"b\\\\c\\u000a\\u0001z\"", b.len);
    buf_free(&b);
}

/* Every byte that needs an escape, and a few that do not, at every
 * position of strings up to 24 bytes (plain runs are found eight bytes at a
 * time), against an escaper that takes one byte at a time. */
static void json_string_escaping_sweep(void **state)
{
    (void)state;
    static const unsigned char specials[] = {'"', '\\', 0x00, 0x01, '\n', 0x1f, 0x20, 0x7f, 0x80, 0xff};
    static const char hex[] = "0123456789abcdef";
    char s[32], want[256];
    for (size_t len = 0; len <= 24; len++)
        for (size_t at = 0; at <= len; at++)
            for (size_t k = 0; k < sizeof specials; k++) {
                for (size_t i = 0; i < len; i++) s[i] = (char)('a' + i % 26);
                if (at < len) s[at] = (char)specials[k];
                size_t w = 0;
                want[w++] = '"';
                for (size_t i = 0; i < len; i++) {
                    unsigned char c = (unsigned char)s[i];
                    if (c == '"' || c == '\\') {
                        want[w++] = '\\';
                        want[w++] = (char)c;
                    } else if (c < 0x20) {
                        memcpy(want + w, "\\u00", 4);
                        want[w + 4] = hex[c >> 4];
                        want[w + 5] = hex[c & 15];
                        w += 6;
                    } else {
                        want[w++] = (char)c;
                    }
                }
                want[w++] = '"';
                char *copy = malloc(len ? len : 1); /* exact size: ASan sees a read past the end */
                memcpy(copy, s, len);
                weir_buf_t b = WEIR_BUF_INIT;
                buf_append_json_string(&b, copy, len);
                free(copy);
                assert_int_equal(b.len, w);
                assert_memory_equal(b.data, want, w);
                buf_free(&b);
            }
}

static void allocator_counts_bytes(void **state)
{
    (void)state;
    size_t before = weir_alloc_used();
    void *p = weir_malloc(1000);
    assert_true(weir_alloc_used() >= before + 1000);
    p = weir_realloc(p, 5000);
    assert_true(weir_alloc_used() >= before + 5000);
    weir_free(p);
    assert_int_equal(weir_alloc_used(), before);
}

static void hash_is_xxh64_seed0(void **state)
{
    (void)state;
    /* XXH64("", 0) and XXH64("a", 0): published test values */
    assert_true(weir_hash64("", 0) == 0xef46db3751d8e999ull);
    assert_true(weir_hash64("a", 1) == 0xd24ec4f1a98c6e5bull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_known_vectors), cmocka_unit_test(crc32c_hw_matches_sw),
        cmocka_unit_test(varint_round_trip),    cmocka_unit_test(json_string_escaping),
        cmocka_unit_test(json_string_escaping_sweep),
        cmocka_unit_test(allocator_counts_bytes), cmocka_unit_test(hash_is_xxh64_seed0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
