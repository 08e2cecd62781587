/* Allocation through the caller's optional allocator hook. */
#ifndef WSFWD_LIB_MEM_H
#define WSFWD_LIB_MEM_H

#include <stddef.h>

#include "wsfwd.h"

/* A complete allocator: the caller's hook if it set every member, else libc. */
void wsfwd_mem_init(wsfwd_allocator *dst, const wsfwd_allocator *src);

static inline void *wsfwd_mem_alloc(const wsfwd_allocator *a, size_t size)
{
    return a->malloc(size, a->user_data);
}

static inline void *wsfwd_mem_realloc(const wsfwd_allocator *a, void *ptr, size_t size)
{
    return a->realloc(ptr, size, a->user_data);
}

static inline void wsfwd_mem_free(const wsfwd_allocator *a, void *ptr)
{
    if (ptr != NULL) {
        a->free(ptr, a->user_data);
    }
}

#endif
