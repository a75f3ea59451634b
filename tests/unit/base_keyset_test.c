/* base_keyset_test.c — keyset against a plain list: every key once, in the
 * order first added, through growth, clears and swaps; keys that differ
 * in one byte or only in length; the empty key and a key whose hash
 * collides with the empty slot's mark. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/keyset.h"

/* The keys of s in order, as "k1\nk2\n...". */
static char *walk(const keyset_t *s)
{
    weir_buf_t b = WEIR_BUF_INIT;
    size_t at = 0;
    weir_slice_t k;
    while (keyset_next(s, &at, &k)) {
        buf_append(&b, k.ptr, k.len);
        buf_append(&b, "\n", 1);
    }
    buf_append(&b, "", 1);
    return b.data;
}

static void against_a_list(void **state)
{
    (void)state;
    keyset_t s = KEYSET_INIT;
    enum { N = 5000 };
    char want[N * 8 + 1] = "";
    size_t wlen = 0;
    unsigned seen[N] = {0};
    srand(7);
    for (int round = 0; round < 3; round++) {
        wlen = 0;
        memset(seen, 0, sizeof seen);
        for (int i = 0; i < 4 * N; i++) {
            int k = rand() % N;
            char key[16];
            int n = snprintf(key, sizeof key, "c%d", k);
            int added = keyset_add(&s, key, (size_t)n);
            assert_int_equal(added, !seen[k]);
            if (!seen[k]) {
                seen[k] = 1;
                memcpy(want + wlen, key, (size_t)n);
                wlen += (size_t)n;
                want[wlen++] = '\n';
            }
        }
        want[wlen] = '\0';
        char *got = walk(&s);
        assert_string_equal(got, want);
        weir_free(got);
        size_t count = 0;
        for (int k = 0; k < N; k++)
            count += seen[k];
        assert_int_equal(keyset_count(&s), count);
        keyset_clear(&s); /* the next round reuses the memory */
        assert_int_equal(keyset_count(&s), 0);
        char *none = walk(&s);
        assert_string_equal(none, "");
        weir_free(none);
    }
    keyset_free(&s);
}

static void near_keys(void **state)
{
    (void)state;
    keyset_t s = KEYSET_INIT;
    assert_int_equal(keyset_add(&s, "", 0), 1);
    assert_int_equal(keyset_add(&s, "", 0), 0);
    assert_int_equal(keyset_add(&s, "ab", 2), 1);
    assert_int_equal(keyset_add(&s, "ab\0", 3), 1); /* bytes, not C strings */
    assert_int_equal(keyset_add(&s, "ac", 2), 1);
    assert_int_equal(keyset_add(&s, "a", 1), 1);
    /* a hash of 0 (the empty slot's mark) is stored as 1: keys of both
     * hashes are found, and stay apart */
    assert_int_equal(keyset_add_hashed(&s, 0, "x", 1), 1);
    assert_int_equal(keyset_add_hashed(&s, 1, "y", 1), 1);
    assert_int_equal(keyset_add_hashed(&s, 0, "x", 1), 0);
    assert_int_equal(keyset_add_hashed(&s, 1, "x", 1), 0);
    assert_int_equal(keyset_add_hashed(&s, 0, "y", 1), 0);
    assert_int_equal(keyset_count(&s), 7);
    keyset_free(&s);
}

static void swap_hands_over(void **state)
{
    (void)state;
    keyset_t a = KEYSET_INIT, b = KEYSET_INIT;
    keyset_add(&a, "k1", 2);
    keyset_add(&a, "k2", 2);
    keyset_swap(&a, &b);
    assert_int_equal(keyset_count(&a), 0);
    assert_int_equal(keyset_add(&a, "k1", 2), 1); /* a new round: k1 again */
    char *got = walk(&b);
    assert_string_equal(got, "k1\nk2\n");
    weir_free(got);
    assert_true(keyset_bytes(&b) > 0);
    keyset_free(&a);
    keyset_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(against_a_list),
        cmocka_unit_test(near_keys),
        cmocka_unit_test(swap_hands_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
