/* log_batchfix_fuzz.c — the batch validator and iterator past the CRC.
 * log_batch_fuzz gives batch_check the bytes as they are, so a mutation of
 * a record almost always fails the batch's CRC32C first and the record
 * checks behind it are reached only by the corpus's own batches. Here the
 * harness writes each batch's CRC (bytes [16, size) at BATCH_OFF_CRC) into
 * a copy before checking it, batch after batch as the length fields lay
 * them out; the checks are log_batch_fuzz's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/crc32c.h"
#include "base/error.h"
#include "log/batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *b = weir_malloc(size ? size : 1); /* exact size: overreads are caught */
    if (size) memcpy(b, data, size);
    size_t at = 0;
    while (at < size) {
        size_t avail = size - at;
        if (avail < BATCH_HEADER_SIZE) break;
        uint32_t length = (uint32_t)b[at + BATCH_OFF_LENGTH] |
                          (uint32_t)b[at + BATCH_OFF_LENGTH + 1] << 8 |
                          (uint32_t)b[at + BATCH_OFF_LENGTH + 2] << 16 |
                          (uint32_t)b[at + BATCH_OFF_LENGTH + 3] << 24;
        if ((uint64_t)length + 12 <= avail && length >= 4) {
            uint32_t crc = crc32c(0, b + at + 16, length - 4);
            for (int i = 0; i < 4; i++)
                b[at + BATCH_OFF_CRC + i] = (unsigned char)(crc >> (8 * i));
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
    weir_free(b);
    return 0;
}
