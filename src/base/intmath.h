/* intmath.h — small integer helpers several layers need: division that
 * rounds toward minus infinity (window and bucket boundaries of negative
 * times) and a qsort comparator for uint64_t. */
#ifndef WEIR_BASE_INTMATH_H
#define WEIR_BASE_INTMATH_H

#include <stdint.h>

/* floor(a / b) for b != 0, unlike C's division, which truncates toward 0. */
static inline int64_t weir_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* qsort comparator: ascending uint64_t (the first 8 bytes of each element). */
static inline int weir_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

#endif
