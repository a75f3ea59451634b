/* hash.h — the hash weir partitions by: XXH64 with seed 0 (libxxhash).
 * partition = weir_hash64(key) % partitions; stable across versions because
 * the log's layout depends on it. */
#ifndef WEIR_BASE_HASH_H
#define WEIR_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t weir_hash64(const void *data, size_t len);

#endif
