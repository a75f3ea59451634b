/* log_ckpt_fuzz.c — fuzz target for the checkpoint parsers, the code that
 * reads checkpoint bytes from disk at recovery (src/log/checkpoint.h): every
 * input is given to the manifest parser and to the part-file parser (quick
 * and full). Any input must be rejected or parsed without reading outside
 * it, and what parses must be self-consistent: a parsed manifest encodes
 * back to the same bytes, and a parsed part's slices lie inside the input. */
#include "ckpt_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_manifest((const char *)data, size);
    check_part(data, size);
    return 0;
}
