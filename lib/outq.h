/*
 * Outbound data: reference-counted buffers and the per-connection queue of them.
 *
 * A broadcast encodes its frame once into one buffer and every recipient's queue holds a
 * reference to it, so nothing is copied per recipient. A connection's own frames (pongs,
 * echoes, close frames) are appended into a private buffer at the queue's tail.
 * The queue keeps two slots inline (in the place of the ring's pointer), so an idle or fast
 * connection needs no heap memory for it; a connection that falls behind spills to a ring,
 * handed back once it drains. Rings come
 * from and go back to a shared cache, so a backlog, once the cache is warm, costs no
 * allocation per member.
 */
#ifndef WSFWD_LIB_OUTQ_H
#define WSFWD_LIB_OUTQ_H

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
#define WSFWD_RING_CLASSES 12 /* cached ring capacities: 4, 8, ... 8192 slots */

/* Spilled rings kept for reuse, by capacity, up to max_bytes in all. */
typedef struct wsfwd_ringcache {
    void *free[WSFWD_RING_CLASSES]; /* each list linked through its rings' first slot */
    size_t bytes;
    size_t max_bytes;
} wsfwd_ringcache;

/* Free every cached ring. */
void wsfwd_ringcache_clear(wsfwd_ringcache *rc, const wsfwd_allocator *a);

/* Where a queue's memory comes from: the allocator, and an optional ring cache. */
typedef struct wsfwd_outmem {
    const wsfwd_allocator *alloc;
    wsfwd_ringcache *rings; /* may be NULL */
} wsfwd_outmem;

typedef struct wsfwd_outq {
    union {                                /* which one: wsfwd_outq_spilled */
        wsfwd_buf **ring;                  /* the ring it spilled to */
        wsfwd_buf *inl[WSFWD_OUTQ_INLINE]; /* the slots used until then */
    };
    uint32_t head;
    uint32_t count;
    uint32_t cap;        /* a power of two */
    uint32_t over_since; /* for conn.c: when it passed the high mark (ms) */
    size_t head_off;     /* bytes of the head buffer already written */
    size_t bytes;        /* bytes queued in all */
} wsfwd_outq;

void wsfwd_outq_init(wsfwd_outq *q);

/* Drop every reference and the ring. */
void wsfwd_outq_clear(wsfwd_outq *q, wsfwd_outmem m);

/* Whether the queue uses a ring (else its inline slots): its capacity says. */
static inline bool wsfwd_outq_spilled(const wsfwd_outq *q)
{
    return q->cap > WSFWD_OUTQ_INLINE;
}

static inline wsfwd_buf **wsfwd_outq_slots(wsfwd_outq *q)
{
    return wsfwd_outq_spilled(q) ? q->ring : q->inl;
}

/* Queue a reference to b if a slot is free (the hot path of a broadcast). */
static inline bool wsfwd_outq_try_push(wsfwd_outq *q, wsfwd_buf *b)
{
    if (q->count == q->cap) {
        return false;
    }
    wsfwd_outq_slots(q)[(q->head + q->count) & (q->cap - 1)] = b;
    q->count++;
    q->bytes += b->len;
    b->refs++;
    return true;
}

/* Queue a reference to b, growing the ring if needed (it adds a reference). */
int wsfwd_outq_push(wsfwd_outq *q, wsfwd_outmem m, wsfwd_buf *b);

/*
 * Room for n more bytes at the end of the queue, in the tail private buffer or a new one;
 * wsfwd_outq_commit() makes them part of the queue. NULL when out of memory.
 */
uint8_t *wsfwd_outq_reserve(wsfwd_outq *q, wsfwd_outmem m, size_t n);

/* The same, a new buffer (none at the tail, or a full one) being at least first bytes rather
   than the usual 1 KiB: first = n for output that comes alone, such as a handshake's. */
uint8_t *wsfwd_outq_reserve_at_least(wsfwd_outq *q, wsfwd_outmem m, size_t n, size_t first);

static inline void wsfwd_outq_commit(wsfwd_outq *q, size_t n)
{
    wsfwd_outq_slots(q)[(q->head + q->count - 1) & (q->cap - 1)]->len += n;
    q->bytes += n;
}

/* The queued bytes as up to max segments, in order. Inline: it runs once per write. */
static inline size_t wsfwd_outq_output(wsfwd_outq *q, wsfwd_iovec *iov, size_t max)
{
    wsfwd_buf **s = wsfwd_outq_slots(q);
    uint32_t mask = q->cap - 1;
    size_t n = 0;
    size_t off = q->head_off;
    for (uint32_t i = q->head, end = q->head + q->count; i != end && n < max; i++) {
        const wsfwd_buf *b = s[i & mask];
        iov[n].base = b->data + off;
        iov[n].len = b->len - off;
        n += b->len > off; /* an empty private buffer is passed over */
        off = 0;
    }
    return n;
}

void wsfwd_outq_consume_slow(wsfwd_outq *q, wsfwd_outmem m, size_t n);

/* n bytes were written. The common case, one buffer written whole, stays inline. */
static inline void wsfwd_outq_consume(wsfwd_outq *q, wsfwd_outmem m, size_t n)
{
    if (q->count == 1 && !wsfwd_outq_spilled(q) && n >= q->bytes) {
        wsfwd_buf_unref(m.alloc, q->inl[q->head]);
        q->head = 0;
        q->count = 0;
        q->head_off = 0;
        q->bytes = 0;
        return;
    }
    wsfwd_outq_consume_slow(q, m, n);
}

#endif
