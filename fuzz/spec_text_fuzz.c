/* spec_text_fuzz.c — the edge's byte checks (src/spec/decode.h) against
 * straightforward reference implementations:
 *  - spec_text_utf8_bad: a plain RFC 3629 decoder (lead byte -> length,
 *    continuation bytes, code point range: no overlong, no surrogate,
 *    <= U+10FFFF);
 *  - spec_text_nul, for texts cJSON parses (as the edge requires before the
 *    check): a string-aware JSON scanner that reports the first string byte
 *    that decodes to U+0000 (a \u0000 escape) or is a raw control byte
 *    (cJSON copies those into the string; a raw 0 then ends it), and a
 *    raw 0 anywhere (between tokens cJSON takes it for white space). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/decode.h"

static long ref_utf8_bad(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0)
            n = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            n = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            n = 4, cp = c & 0x07, min = 0x10000;
        else
            return (long)i;
        if (i + n > len) return (long)i;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return (long)i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return (long)i;
        i += n;
    }
    return -1;
}

static int hexv(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Only meaningful for texts that parse as JSON. */
static long ref_nul(const char *t, size_t len)
{
    int in = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == 0) return (long)i; /* cJSON takes a raw 0 between tokens as white space */
        if (!in) {
            if (c == '"') in = 1;
            continue;
        }
        if (c == '"') {
            in = 0;
            continue;
        }
        if (c < 0x20) return (long)i;
        if (c == '\\') {
            if (i + 1 >= len) return -1;
            if (t[i + 1] == 'u' && i + 5 < len) {
                unsigned v = 0;
                int ok = 1;
                for (int k = 0; k < 4; k++) {
                    int h = hexv((unsigned char)t[i + 2 + k]);
                    if (h < 0)
                        ok = 0;
                    else
                        v = v * 16 + (unsigned)h;
                }
                if (ok && v == 0) return (long)i;
            }
            i++; /* the escaped byte */
        }
    }
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1); /* a copy: nothing may read past size */
    if (size) memcpy(text, data, size);
    text[size] = '\0';
    long a = spec_text_utf8_bad(text, size), b = ref_utf8_bad((const unsigned char *)text, size);
    if (a != b) {
        fprintf(stderr, "utf8 mismatch: weir %ld ref %ld\n", a, b);
        abort();
    }
    long n1 = spec_text_nul(text, size);
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (doc && end == text + size) {
        long n2 = ref_nul(text, size);
        if (n1 != n2) {
            fprintf(stderr, "nul mismatch: weir %ld ref %ld\n", n1, n2);
            abort();
        }
    }
    cJSON_Delete(doc);
    free(text);
    return 0;
}
