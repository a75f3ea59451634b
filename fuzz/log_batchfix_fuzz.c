/* log_batchfix_fuzz.c — the batch validator and iterator past the CRC.
 * log_batch_fuzz gives batch_check the bytes as they are, so a mutation of
 * a record almost always fails the batch's CRC32C first and the record
 * checks behind it are reached only by the corpus's own batches. Here the
 * harness writes each batch's CRC (bytes [16, size) at BATCH_OFF_CRC) into
 * a copy before checking it, batch after batch as the length fields lay
 * them out; the checks are log_batch_fuzz's (batch_checks.h). */
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "batch_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *b = weir_malloc(size ? size : 1); /* exact size: overreads are caught */
    if (size) memcpy(b, data, size);
    walk_batches(b, size, 1);
    weir_free(b);
    return 0;
}
