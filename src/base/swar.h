/* swar.h — byte tests eight at a time in a 64-bit word (SIMD within a
 * register), for the scans of JSON text that a replay does per event. */
#ifndef WEIR_BASE_SWAR_H
#define WEIR_BASE_SWAR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Bit 7 of each byte is set where x's byte is a quote, a backslash or a
 * control byte (below 0x20), and no other bit: the bytes that end or
 * escape a JSON string's plain run. Each test is exact per byte, as no sum
 * carries out of its byte ((y & 0x7f) + 0x7f <= 0xfe). */
static inline uint64_t swar_string_stops(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101u, low7 = 0x7f7f7f7f7f7f7f7fu;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    uint64_t is_q = ~(((q & low7) + low7) | q);
    uint64_t is_b = ~(((b & low7) + low7) | b);
    uint64_t is_ctl = ~(((x & low7) + ones * (0x80 - 0x20)) | x);
    return (is_q | is_b | is_ctl) & (ones * 0x80);
}

/* The index (0-7) of the first byte, in memory order, whose bit 7 is set
 * in a nonzero mask of the form above, for a word loaded with memcpy. */
static inline unsigned swar_first(uint64_t mask)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (unsigned)__builtin_ctzll(mask) / 8;
#else
    return (unsigned)__builtin_clzll(mask) / 8;
#endif
}

/* The index of the first byte in s[i, n) that ends or escapes a JSON
 * string's plain run (a quote, a backslash, a control byte), or n: eight
 * bytes at a time, then byte by byte for the last few. */
static inline size_t swar_plain_end(const char *s, size_t i, size_t n)
{
    while (i + 8 <= n) {
        uint64_t x;
        memcpy(&x, s + i, sizeof x);
        uint64_t stops = swar_string_stops(x);
        if (stops) return i + swar_first(stops);
        i += 8;
    }
    while (i < n && (unsigned char)s[i] >= 0x20 && s[i] != '"' && s[i] != '\\') i++;
    return i;
}

#endif
