/* batch_checks.h — what log_batch_fuzz and log_batchfix_fuzz check of the
 * batch validator and iterator (src/log/batch.h): the batches of b, laid
 * out one after another by their length fields, are each rejected or
 * iterated without reading outside b, their records numbered from the
 * batch's base. With fix_crc, each batch's CRC32C (bytes [16, its end) at
 * BATCH_OFF_CRC) is first written into b, so that mutated records reach
 * the checks behind the CRC. b is the caller's exact-size copy: a read
 * past its end is caught. */
#ifndef WEIR_FUZZ_BATCH_CHECKS_H
#define WEIR_FUZZ_BATCH_CHECKS_H

#include <stdint.h>
#include <stdlib.h>

#include "base/crc32c.h"
#include "base/error.h"
#include "log/batch.h"

static void walk_batches(unsigned char *b, size_t size, int fix_crc)
{
    size_t at = 0;
    while (at < size) {
        size_t avail = size - at;
        if (fix_crc && avail >= BATCH_HEADER_SIZE) {
            const unsigned char *l = b + at + BATCH_OFF_LENGTH;
            uint32_t length =
                (uint32_t)l[0] | (uint32_t)l[1] << 8 | (uint32_t)l[2] << 16 | (uint32_t)l[3] << 24;
            if ((uint64_t)length + 12 <= avail && length >= 4) {
                uint32_t crc = crc32c(0, b + at + 16, length - 4);
                for (int i = 0; i < 4; i++)
                    b[at + BATCH_OFF_CRC + i] = (unsigned char)(crc >> (8 * i));
            }
        }
        batch_info_t info;
        if (batch_check(b + at, avail, &info) != BATCH_OK) break;
        batch_iter_t it;
        log_rec_t rec;
        batch_iter_init(&it, b + at, &info);
        uint64_t n = 0;
        while (batch_iter_next(&it, &rec)) {
            weir_assert(rec.offset == info.base + n);
            weir_assert((const unsigned char *)rec.key.ptr >= b &&
                        (const unsigned char *)rec.value.ptr + rec.value.len <= b + size);
            n++;
        }
        weir_assert(n == info.count);
        at += info.size;
    }
}

#endif
