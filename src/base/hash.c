/* hash.c — XXH64 through libxxhash (see hash.h). */
#include "base/hash.h"

#include <xxhash.h>

uint64_t weir_hash64(const void *data, size_t len)
{
    return XXH64(data, len, 0);
}
