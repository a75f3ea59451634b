/* alloc.c — counting allocator (see alloc.h). The count uses glibc's
 * malloc_usable_size instead of a size header, so pointers stay compatible
 * with libraries that free what we hand them and alignment is malloc's. */
#include "base/alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The only mutable global besides the shutdown flag: a process-wide counter
 * is what "memory used" means. */
static atomic_size_t used_bytes;

static _Noreturn void oom(size_t n)
{
    fprintf(stderr, "weir: out of memory allocating %zu bytes\n", n);
    abort();
}

void *weir_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    atomic_fetch_add_explicit(&used_bytes, malloc_usable_size(p), memory_order_relaxed);
    return p;
}

void *weir_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) oom(count * size);
    atomic_fetch_add_explicit(&used_bytes, malloc_usable_size(p), memory_order_relaxed);
    return p;
}

void *weir_realloc(void *p, size_t n)
{
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    atomic_fetch_sub_explicit(&used_bytes, old, memory_order_relaxed);
    atomic_fetch_add_explicit(&used_bytes, malloc_usable_size(q), memory_order_relaxed);
    return q;
}

void *weir_aligned_alloc(size_t align, size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, align, n ? n : 1) != 0) oom(n);
    atomic_fetch_add_explicit(&used_bytes, malloc_usable_size(p), memory_order_relaxed);
    return p;
}

void weir_free(void *p)
{
    if (!p) return;
    atomic_fetch_sub_explicit(&used_bytes, malloc_usable_size(p), memory_order_relaxed);
    free(p);
}

char *weir_strndup(const char *s, size_t n)
{
    char *d = weir_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *weir_strdup(const char *s)
{
    return weir_strndup(s, strlen(s));
}

size_t weir_alloc_used(void)
{
    return atomic_load_explicit(&used_bytes, memory_order_relaxed);
}
