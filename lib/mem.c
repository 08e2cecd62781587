#include "mem.h"

#include <stdlib.h>

static void *libc_malloc(size_t size, void *ud)
{
    (void)ud;
    return malloc(size);
}

static void *libc_realloc(void *ptr, size_t size, void *ud)
{
    (void)ud;
    return realloc(ptr, size);
}

static void libc_free(void *ptr, void *ud)
{
    (void)ud;
    free(ptr);
}

void wsfwd_mem_init(wsfwd_allocator *dst, const wsfwd_allocator *src)
{
    if (src != NULL && src->malloc != NULL && src->realloc != NULL && src->free != NULL) {
        *dst = *src;
        return;
    }
    dst->malloc = libc_malloc;
    dst->realloc = libc_realloc;
    dst->free = libc_free;
    dst->user_data = NULL;
}
