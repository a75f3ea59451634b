/* stream_dedup_fuzz.c — fuzz target for dedup_decode (a key's event ids in a
 * checkpoint: untrusted bytes). A set that decodes is exercised (lookups at
 * cutoffs that drop some, adds in and out of order past the multiset's
 * threshold) and must encode back to bytes that decode to a set answering
 * the same. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/buf.h"
#include "stream/codec.h"
#include "stream/dedup.h"

static void check_same(dedup_t **a, dedup_t **b, int64_t cutoff)
{
    for (uint64_t id = 0; id < 64; id++)
        if (dedup_seen(a, id, cutoff) != dedup_seen(b, id, cutoff)) abort();
    if (dedup_count(*a) != dedup_count(*b)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    codec_rd_t r = {data, data + size, 0};
    dedup_t *d = NULL;
    if (dedup_decode(&d, &r, 1u << 16) != 0) {
        if (d) abort(); /* a refusal leaves nothing */
        return 0;
    }
    weir_buf_t b = WEIR_BUF_INIT;
    dedup_encode(d, &b);
    codec_rd_t r2 = {(const unsigned char *)b.data, (const unsigned char *)b.data + b.len, 0};
    dedup_t *copy = NULL;
    if (dedup_decode(&copy, &r2, 1u << 16) != 0 || codec_left(&r2) != 0) abort();
    check_same(&d, &copy, INT64_MIN);
    /* adds around the times held, out of order too, then a cutoff through them */
    int64_t t = 0;
    for (int i = 0; i < 40; i++) {
        uint64_t id = 1000 + (uint64_t)i;
        int64_t at = t + (i % 3 == 0 ? -5 : i);
        if (dedup_seen(&d, id, INT64_MIN) < 0) dedup_add(&d, id, at, (uint64_t)i);
        if (dedup_seen(&copy, id, INT64_MIN) < 0) dedup_add(&copy, id, at, (uint64_t)i);
    }
    check_same(&d, &copy, 10);
    dedup_free(d);
    dedup_free(copy);
    buf_free(&b);
    return 0;
}
