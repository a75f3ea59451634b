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
 * The checks are log_ckpt_fuzz's (ckpt_checks.h): a parsed manifest
 * encodes back to the same bytes, a parsed part's slices lie inside the
 * input. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/crc32c.h"
#include "ckpt_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    check_manifest(text, n);
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
    check_part(b, size);
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
