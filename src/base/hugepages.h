/* hugepages.h — moving the process's heap into transparent huge pages,
 * without stalling the threads that use it.
 *
 * Why weir wants its heap in huge pages: a million keys' state is a
 * gigabyte or two read at random, and with 4 KiB pages nearly every lookup
 * is a TLB miss and a page walk before its cache miss; 2 MiB pages cover
 * it with few TLB entries.
 *
 * Why not from the first allocation (glibc.malloc.hugetlb=1, as weir did
 * before): a huge-page fault zeroes 2 MiB in the kernel, and a full replay
 * faults in its whole state. On the Firecracker VM this was measured on, a
 * third of a replay's CPU went to that zeroing (folio_zero_user), while the
 * small-page faults that replace it cost 0.3%: a 3 M-event replay took
 * 5.2-6.4 s with huge pages from the start and 4.0-4.9 s without. So the
 * state is built in small pages and collapsed once the server is ready; a
 * collapse copies (it does not zero), a huge page at a time, in the
 * background. On a kernel where zeroing costs the same either way, this
 * trades nothing at start for one background copy of the heap. */
#ifndef WEIR_BASE_HUGEPAGES_H
#define WEIR_BASE_HUGEPAGES_H

#include <stdatomic.h>

/* The heap: the anonymous read-write mappings of 8 MiB or more (malloc's
 * arenas and large blocks; not stacks). Collapses each one into huge pages
 * (MADV_COLLAPSE, which needs no MADV_HUGEPAGE), one huge page at a time
 * with a pause after each real collapse, so that a thread faulting on the
 * same mapping waits for one huge page at most. The mappings are not
 * marked MADV_HUGEPAGE: memory the heap grows into later is faulted in small
 * pages (a huge-page fault would zero 2 MiB in a request's path) until
 * collapsed by the next call. Returns early once *stop is non-zero (stop
 * may be NULL). A no-op where the kernel lacks MADV_COLLAPSE (before 6.1). */
void weir_heap_huge_pages(const atomic_int *stop);

#endif
