/* stream_ring_test.c — the ring's searches (ring_upper, ring_lower) against
 * a linear scan: every `from`, keys between, on and around the records',
 * runs of equal keys, and rings whose records wrap around the buffer's end,
 * inline and on the heap. ring_upper gallops from `from` before it bisects
 * (ring.c, GALLOP), so answers at every distance from `from` are checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stream/ring.h"

static uint32_t upper_scan(const ring_t *r, uint32_t from, int64_t key)
{
    while (from < r->len && ring_key(r, from) <= key) from++;
    return from;
}

static uint32_t lower_scan(const ring_t *r, uint32_t from, int64_t key)
{
    while (from < r->len && ring_key(r, from) < key) from++;
    return from;
}

static void check_all(const ring_t *r)
{
    int64_t lo = r->len ? ring_key(r, 0) - 2 : 0, hi = r->len ? ring_key(r, r->len - 1) + 2 : 0;
    for (uint32_t from = 0; from <= r->len; from++)
        for (int64_t key = lo; key <= hi; key++) {
            assert_int_equal(ring_upper(r, from, key), upper_scan(r, from, key));
            assert_int_equal(ring_lower(r, from, key), lower_scan(r, from, key));
        }
}

static void push_key(ring_t *r, int64_t key)
{
    int64_t *rec = ring_push(r);
    rec[0] = key;
    rec[1] = -key; /* a payload the searches must not read as a key */
}

static void searches_agree_with_a_scan(void **state)
{
    (void)state;
    srand(7);
    for (int round = 0; round < 200; round++) {
        int64_t inl[4 * 2]; /* four inline records of 16 bytes */
        ring_t r;
        ring_init_inline(&r, 16, inl, round % 2 ? 4 : 0);
        /* Keys ascending with repeats and gaps; some popped from the front
         * and more pushed, so that the live records wrap. */
        int64_t key = rand() % 5 - 2;
        uint32_t n = (uint32_t)(rand() % 70);
        for (uint32_t i = 0; i < n; i++) {
            key += rand() % 3; /* 0: a run of equal keys */
            push_key(&r, key);
        }
        if (r.len) ring_pop_front(&r, (uint32_t)rand() % r.len);
        for (uint32_t i = 0, more = (uint32_t)(rand() % 40); i < more; i++) {
            key += rand() % 3;
            push_key(&r, key);
        }
        check_all(&r);
        ring_free(&r);
    }
}

/* A long run evicted a record at a time, as ex_advance does: the answer
 * one, two, ... records past `from`, and every gallop step's boundary. */
static void upper_at_every_distance_from_from(void **state)
{
    (void)state;
    ring_t r;
    ring_init(&r, 16);
    for (int64_t k = 0; k < 300; k++) push_key(&r, 10 * k);
    for (uint32_t from = 0; from < 40; from++)
        for (uint32_t d = 0; from + d <= r.len; d++) {
            /* the first d records from `from` are <= key */
            int64_t key = from + d == 0 ? -1 : 10 * (int64_t)(from + d - 1);
            assert_int_equal(ring_upper(&r, from, key), from + d);
        }
    ring_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(searches_agree_with_a_scan),
        cmocka_unit_test(upper_at_every_distance_from_from),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
