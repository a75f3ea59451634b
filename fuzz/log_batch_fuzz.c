/* log_batch_fuzz.c — fuzz target for the batch validator and iterator, the
 * code that reads log bytes from disk: any input must be rejected or
 * iterated without reading outside it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "log/batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at = 0;
    while (at < size) {
        batch_info_t info;
        if (batch_check(data + at, size - at, &info) != BATCH_OK) break;
        batch_iter_t it;
        log_rec_t rec;
        batch_iter_init(&it, data + at, &info);
        uint64_t n = 0;
        while (batch_iter_next(&it, &rec)) {
            weir_assert(rec.offset == info.base + n);
            weir_assert(rec.key.ptr >= (const char *)data && rec.value.ptr + rec.value.len <= (const char *)data + size);
            n++;
        }
        weir_assert(n == info.count);
        at += info.size;
    }
    return 0;
}
