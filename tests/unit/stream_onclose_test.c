/* stream_onclose_test.c — the on-close timer heap (src/stream/onclose.c):
 * timers pop in the order end, key bytes (memcmp, then the shorter key
 * first), aggregate, start — whatever the keys' lengths and bytes, zero
 * bytes and 0xff included, since the heap compares an 8-byte key prefix
 * before the keys themselves; short keys (kept in the timer) and long ones
 * (allocated) alike, and none leaked (ASan). Timers go in through
 * oc_timers_decode (the heap's only bulk entry point) in a shuffled order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "stream/codec.h"
#include "stream/onclose.h"

#define NTIMERS 4000
#define MAXKEY  24 /* keys kept in the timer (<= 16 bytes) and malloc'd ones */

typedef struct timer {
    int64_t end, start;
    uint32_t ai, klen;
    unsigned char key[MAXKEY];
} timer_t_;

/* The order the heap must follow, written out directly. */
static int ref_cmp(const timer_t_ *a, const timer_t_ *b)
{
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    uint32_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->key, b->key, n);
    if (c) return c;
    if (a->klen != b->klen) return a->klen < b->klen ? -1 : 1;
    if (a->ai != b->ai) return a->ai < b->ai ? -1 : 1;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    return 0;
}

static int due_cmp(const oc_due_t *d, const timer_t_ *t)
{
    timer_t_ x = {.end = d->end, .start = d->start, .ai = d->ai, .klen = (uint32_t)d->key.len};
    memcpy(x.key, d->key.ptr, d->key.len);
    return ref_cmp(&x, t);
}

static void test_pop_order(void **state)
{
    (void)state;
    /* Bytes that stress a prefix compare: zero (the padding's value), a
     * low, a high and 0xff; a few ends, so most timers tie on end. */
    static const unsigned char alphabet[] = {0x00, 0x01, 'c', '0', 0x7f, 0x80, 0xff};
    static timer_t_ v[NTIMERS];
    srand(7);
    for (int i = 0; i < NTIMERS; i++) {
        timer_t_ *t = &v[i];
        t->end = 3600000 * (1 + rand() % 3);
        t->start = t->end - 3600000 * (1 + rand() % 2);
        t->ai = (uint32_t)(rand() % 2);
        t->klen = (uint32_t)(rand() % (MAXKEY + 1));
        for (uint32_t k = 0; k < t->klen; k++) t->key[k] = alphabet[rand() % sizeof alphabet];
        /* Many keys sharing their first 8 bytes, differing after them. */
        if (i % 3 == 0 && t->klen > 8) memcpy(t->key, "c0000000", 8);
    }
    weir_buf_t b = WEIR_BUF_INIT;
    codec_put_u(&b, NTIMERS);
    for (int i = 0; i < NTIMERS; i++) {
        codec_put_i(&b, v[i].end);
        codec_put_i(&b, v[i].start);
        codec_put_u(&b, (uint64_t)i + 1);
        codec_put_u(&b, v[i].ai);
        codec_put_u(&b, v[i].klen);
        buf_append(&b, v[i].key, v[i].klen);
    }
    oc_timers_t *t = oc_timers_new();
    codec_rd_t r = {(const unsigned char *)b.data, (const unsigned char *)b.data + b.len, 0};
    const char *why = NULL;
    assert_int_equal(oc_timers_decode(t, 2, &r, &why), 0);
    qsort(v, NTIMERS, sizeof v[0], (int (*)(const void *, const void *))ref_cmp);
    oc_due_t d;
    for (int i = 0; i < NTIMERS; i++) {
        assert_int_equal(oc_timers_pop(t, INT64_MAX / 2, &d), 1);
        assert_int_equal(due_cmp(&d, &v[i]), 0);
    }
    assert_int_equal(oc_timers_pop(t, INT64_MAX / 2, &d), 0);
    oc_timers_free(t);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pop_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
