/* alloc.h — the one allocation wrapper (Redis' zmalloc): every byte weir
 * allocates on the heap goes through here, so memory use is a number we can
 * report (/metrics, state-per-key figures) and bound. Out of memory aborts
 * with a message: weir cannot keep its guarantees half-allocated, and the
 * log on disk is the recovery path. */
#ifndef WEIR_BASE_ALLOC_H
#define WEIR_BASE_ALLOC_H

#include <stddef.h>

void *weir_malloc(size_t n);
void *weir_calloc(size_t count, size_t size);
void *weir_realloc(void *p, size_t n);
/* align: a power of two, a multiple of sizeof(void *) (I/O buffers for
 * O_DIRECT); freed with weir_free like the others. */
void *weir_aligned_alloc(size_t align, size_t n);
void weir_free(void *p);
char *weir_strdup(const char *s);
char *weir_strndup(const char *s, size_t n);

/* Bytes currently allocated through this wrapper (usable size, all threads). */
size_t weir_alloc_used(void);

#endif
