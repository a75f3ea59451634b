/* ckpt_checks.h — what log_ckpt_fuzz and log_ckptfix_fuzz check of the
 * checkpoint parsers (src/log/checkpoint.h), whatever bytes they give
 * them: a parsed manifest encodes back to the same bytes (the grammar is
 * strict: one text per manifest), and a parsed part's slices lie inside
 * the input, quick and full. */
#ifndef WEIR_FUZZ_CKPT_CHECKS_H
#define WEIR_FUZZ_CKPT_CHECKS_H

#include <stdint.h>
#include <stdio.h>
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

static void check_manifest(const char *text, size_t n)
{
    char err[512];
    ckpt_info_t info;
    memset(&info, 0, sizeof info);
    if (ckpt_manifest_parse(text, n, "MANIFEST", &info, err, sizeof err) == 0) {
        weir_buf_t b = WEIR_BUF_INIT;
        ckpt_manifest_encode(&info, &b);
        if (b.len != n || memcmp(b.data, text, n) != 0) {
            fprintf(stderr, "manifest: encode(parse(x)) != x\n  x: %.*s\n  e: %.*s\n", (int)n, text,
                    (int)b.len, b.data);
            abort();
        }
        buf_free(&b);
    }
    ckpt_info_free(&info);
}

static void check_part(const uint8_t *data, size_t size)
{
    char err[512];
    for (int full = 0; full <= 1; full++) {
        ckpt_part_t p;
        ckpt_kv_t *meta;
        uint32_t crc;
        if (ckpt_part_parse(data, size, full, "part", &p, &meta, &crc, err, sizeof err) == 0) {
            weir_assert(inside(data, size, p.blob));
            for (size_t i = 0; i < p.nmeta; i++)
                weir_assert(inside(data, size, p.meta[i].key) &&
                            inside(data, size, p.meta[i].value));
        }
        weir_free(meta);
    }
}

#endif
