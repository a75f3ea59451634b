/* ckpt_int.h — what the checkpoint store (checkpoint.c) and its manifest
 * format (ckpt_manifest.c) both need: the part file names and the rule for
 * key/value keys. Internal to src/log. */
#ifndef WEIR_LOG_CKPT_INT_H
#define WEIR_LOG_CKPT_INT_H

#include <stdint.h>
#include <stdio.h>

#include "log/checkpoint.h"

/* "part-<p>", p in 5 digits. */
static inline void ckpt_part_name(char *name, size_t n, uint32_t p)
{
    snprintf(name, n, "part-%05u", p);
}

/* A key of a key/value pair: 1 to CKPT_MAX_KEY_LEN bytes; a manifest's
 * (checkpoint-level) keys also only [A-Za-z0-9_.-], so they need no
 * escaping. */
static inline int ckpt_key_ok(weir_slice_t k, int manifest)
{
    if (k.len == 0 || k.len > CKPT_MAX_KEY_LEN) return 0;
    if (!manifest) return 1;
    for (size_t i = 0; i < k.len; i++) {
        char c = k.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

#endif
