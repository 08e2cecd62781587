/*
 * Outbound data: reference-counted buffers and the per-connection queue of them.
 *
 * A broadcast encodes its frame once into one buffer and every recipient's queue holds a
 * reference to it, so nothing is copied per recipient. A connection's own frames (pongs,
 * echoes, close frames) are appended into a private buffer at the queue's tail.
 * The queue keeps two slots inline, so an idle or fast connection needs no heap memory for
 * it; a connection that falls behind spills to a heap ring, freed once it drains.
 */
#ifndef WSFWD_OUTQ_H
#define WSFWD_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsfwd.h"

typedef struct wsfwd_buf {
    uint32_t refs;
    bool appendable; /* a connection's private buffer: more frames may be appended */
    size_t len;
    size_t cap;
    uint8_t data[];
} wsfwd_buf;

/* A buffer with room for cap bytes, one reference, len 0; NULL when out of memory. */
wsfwd_buf *wsfwd_buf_new(const wsfwd_allocator *a, size_t cap);

static inline void wsfwd_buf_unref(const wsfwd_allocator *a, wsfwd_buf *b)
{
    if (--b->refs == 0) {
        a->free(b, a->user_data);
    }
}

#define WSFWD_OUTQ_INLINE 2

typedef struct wsfwd_outq {
    wsfwd_buf **ring;                    /* heap ring once spilled, else NULL */
    wsfwd_buf *inl[WSFWD_OUTQ_INLINE];   /* the slots used while ring is NULL */
    uint32_t head;
    uint32_t count;
    uint32_t cap;                        /* a power of two */
    size_t head_off;                     /* bytes of the head buffer already written */
    size_t bytes;                        /* bytes queued in all */
} wsfwd_outq;

void wsfwd_outq_init(wsfwd_outq *q);

/* Drop every reference and the ring. */
void wsfwd_outq_clear(wsfwd_outq *q, const wsfwd_allocator *a);

/* Queue a reference to b (the caller's reference is not taken: it adds one). */
int wsfwd_outq_push(wsfwd_outq *q, const wsfwd_allocator *a, wsfwd_buf *b);

/*
 * Room for n more bytes at the end of the queue, in the tail private buffer or a new one;
 * wsfwd_outq_commit() makes them part of the queue. NULL when out of memory.
 */
uint8_t *wsfwd_outq_reserve(wsfwd_outq *q, const wsfwd_allocator *a, size_t n);

static inline void wsfwd_outq_commit(wsfwd_outq *q, size_t n)
{
    wsfwd_buf **slots = q->ring != NULL ? q->ring : q->inl;
    slots[(q->head + q->count - 1) & (q->cap - 1)]->len += n;
    q->bytes += n;
}

size_t wsfwd_outq_output(const wsfwd_outq *q, wsfwd_iovec *iov, size_t max);
void wsfwd_outq_consume(wsfwd_outq *q, const wsfwd_allocator *a, size_t n);

#endif
