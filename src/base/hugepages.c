/* hugepages.c — the heap into transparent huge pages (see hugepages.h). */
#include "base/hugepages.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1 */
#endif

/* One huge page at a time, COLLAPSE_GAP_US apart: collapsing one copies
 * 2 MiB with the mapping locked against page faults. In one call over a
 * whole arena, requests that faulted queued behind the collapse for
 * milliseconds (p99 4 ms, vs 0.4-1.2 ms paced, 1 M keys); paced, the
 * collapse takes ~0.5 s longer and no request waits for more than one
 * huge page. */
#define COLLAPSE_GAP_US 300
#define HUGE_PAGE       (2ul << 20)
#define HEAP_MIN        (8ul << 20) /* smaller mappings: stacks, libraries' data */
/* Mappings larger than this are collapsed in one call: no heap weir runs
 * with is that big, but ASan's shadow (terabytes, mostly unpopulated) is,
 * and stepping through it a huge page at a time would never end. */
#define PACED_MAX       (64ul << 30)

void weir_heap_huge_pages(const atomic_int *stop)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return;
    /* The ranges first: /proc/self/maps is read under the mapping lock. */
    unsigned long (*ranges)[2] = NULL;
    size_t n = 0, cap = 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, off, inode;
        char perms[8], dev[16];
        if (sscanf(line, "%lx-%lx %7s %lx %15s %lu", &lo, &hi, perms, &off, dev, &inode) != 6)
            continue;
        if (perms[0] != 'r' || perms[1] != 'w' || inode != 0 || hi - lo < HEAP_MIN ||
            strstr(line, "[stack"))
            continue;
        if (n == cap) ranges = weir_realloc(ranges, (cap = cap ? 2 * cap : 16) * sizeof *ranges);
        ranges[n][0] = lo;
        ranges[n][1] = hi;
        n++;
    }
    fclose(f);
    for (size_t i = 0; i < n && !(stop && atomic_load(stop)); i++) {
        unsigned long lo = ranges[i][0], hi = ranges[i][1];
        if (hi - lo > PACED_MAX) { /* a sparse reservation (a sanitizer's shadow) */
            (void)madvise((void *)lo, hi - lo, MADV_COLLAPSE);
            continue;
        }
        for (unsigned long a = (lo + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
             a + HUGE_PAGE <= hi && !(stop && atomic_load(stop)); a += HUGE_PAGE) {
            uint64_t t = weir_mono_ns();
            (void)madvise((void *)a, HUGE_PAGE, MADV_COLLAPSE);
            /* the gap after a real collapse only, not after a huge page
             * left whole or a hole */
            if (weir_mono_ns() - t > 20000) usleep(COLLAPSE_GAP_US);
        }
    }
    weir_free(ranges);
}
