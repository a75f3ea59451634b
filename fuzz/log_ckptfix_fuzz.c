/* log_ckptfix_fuzz.c — the checkpoint parsers past their CRCs. log_ckpt_fuzz
 * gives the parsers the bytes as they are, so a mutation almost always
 * fails a CRC32C first and the grammar behind it (the manifest's lines,
 * escapes and numbers; a part's header and key/value section) is reached
 * only by the corpus's own files. Here the harness writes the checksums
 * itself before parsing:
 *   - the manifest: the input is the text before the end line; the
 *     harness appends "end <crc32c of it>\n" (as ckpt_manifest_encode does);
 *   - the part file: the input is a part whose table CRCs and trailer CRC
 *     the harness overwrites with the right ones when the trailer's block
 *     count fits the size (otherwise the input is given as it is).
 * The checks are log_ckpt_fuzz's: a parsed manifest encodes back to the
 * same bytes, a parsed part's slices lie inside the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/crc32c.h"
#include "base/error.h"
#include "log/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const uint8_t *data, size_t size, weir_slice_t s)
{
    return (const uint8_t *)s.ptr >= data && (const uint8_t *)s.ptr + s.len <= data + size;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void manifest(const uint8_t *data, size_t size)
{
    char end[16];
    snprintf(end, sizeof end, "end %08x\n", crc32c(0, data, size));
    size_t n = size + strlen(end);
    char *text = weir_malloc(n); /* exact size: a read past the end is caught */
    if (size) memcpy(text, data, size);
    memcpy(text + size, end, strlen(end));
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
    weir_free(text);
}

static void part(const uint8_t *data, size_t size)
{
    uint8_t *b = weir_malloc(size ? size : 1);
    if (size) memcpy(b, data, size);
    const size_t H = CKPT_PART_HEADER_SIZE, T = CKPT_PART_TRAILER_SIZE;
    if (size >= H + T + 4) {
        uint32_t nblocks = get32(b + size - T + 8);
        uint64_t tail = (uint64_t)nblocks * 4 + T;
        if (tail <= size - H) {
            uint64_t data_end = size - tail;
            if ((data_end + CKPT_BLOCK_SIZE - 1) / CKPT_BLOCK_SIZE == nblocks) {
                for (uint32_t i = 0; i < nblocks; i++) {
                    uint64_t s = (uint64_t)i * CKPT_BLOCK_SIZE;
                    uint64_t e = s + CKPT_BLOCK_SIZE < data_end ? s + CKPT_BLOCK_SIZE : data_end;
                    put32(b + data_end + 4 * (uint64_t)i, crc32c(0, b + s, e - s));
                }
                put32(b + size - 4, crc32c(0, b + data_end, size - data_end - 4));
            }
        }
    }
    char err[512];
    for (int full = 0; full <= 1; full++) {
        ckpt_part_t p;
        ckpt_kv_t *meta;
        uint32_t crc;
        if (ckpt_part_parse(b, size, full, "part", &p, &meta, &crc, err, sizeof err) == 0) {
            weir_assert(inside(b, size, p.blob));
            for (size_t i = 0; i < p.nmeta; i++)
                weir_assert(inside(b, size, p.meta[i].key) && inside(b, size, p.meta[i].value));
        }
        weir_free(meta);
    }
    weir_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first byte picks the parser */
    if (size < 1) return 0;
    if (data[0] & 1)
        part(data + 1, size - 1);
    else
        manifest(data + 1, size - 1);
    return 0;
}
