/* log_ckpt_fuzz.c — fuzz target for the checkpoint parsers, the code that
 * reads checkpoint bytes from disk at recovery (src/log/checkpoint.h): every
 * input is given to the manifest parser and to the part-file parser (quick
 * and full). Any input must be rejected or parsed without reading outside
 * it, and what parses must be self-consistent: a parsed manifest encodes
 * back to the same bytes, and a parsed part's slices lie inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/error.h"
#include "log/checkpoint.h"

static int inside(const uint8_t *data, size_t size, weir_slice_t s)
{
    return (const uint8_t *)s.ptr >= data && (const uint8_t *)s.ptr + s.len <= data + size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    ckpt_info_t info;
    memset(&info, 0, sizeof info);
    if (ckpt_manifest_parse((const char *)data, size, "MANIFEST", &info, err, sizeof err) == 0) {
        /* The grammar is strict: one text per manifest, so encode(parse(x)) == x. */
        weir_buf_t b = WEIR_BUF_INIT;
        ckpt_manifest_encode(&info, &b);
        weir_assert(b.len == size && memcmp(b.data, data, size) == 0);
        buf_free(&b);
    }
    ckpt_info_free(&info);

    for (int full = 0; full <= 1; full++) {
        ckpt_part_t part;
        ckpt_kv_t *meta;
        uint32_t crc;
        if (ckpt_part_parse(data, size, full, "part", &part, &meta, &crc, err, sizeof err) == 0) {
            weir_assert(inside(data, size, part.blob));
            for (size_t i = 0; i < part.nmeta; i++)
                weir_assert(inside(data, size, part.meta[i].key) &&
                            inside(data, size, part.meta[i].value));
        }
        weir_free(meta);
    }
    return 0;
}
