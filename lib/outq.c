#include "outq.h"

#include <string.h>

#define PRIVATE_MIN ((size_t)1024)
#define PRIVATE_MAX ((size_t)64 * 1024)

wsfwd_buf *wsfwd_buf_new(const wsfwd_allocator *a, size_t cap)
{
    if (cap > SIZE_MAX - sizeof(wsfwd_buf)) {
        return NULL;
    }
    wsfwd_buf *b = a->malloc(sizeof *b + cap, a->user_data);
    if (b != NULL) {
        b->refs = 1;
        b->appendable = false;
        b->len = 0;
        b->cap = cap;
    }
    return b;
}

/* ---- Ring cache ---------------------------------------------------------------------------- */

/* The cache class of a ring of cap slots (cap a power of two, at least 4), or -1. */
static int ring_class(uint32_t cap)
{
    int k = 0;
    for (uint32_t c = 4; c < cap; c <<= 1) {
        k++;
    }
    return k < WSFWD_RING_CLASSES ? k : -1;
}

static wsfwd_buf **ring_get(wsfwd_outmem m, uint32_t cap)
{
    int k = ring_class(cap);
    if (m.rings != NULL && k >= 0 && m.rings->free[k] != NULL) {
        void **ring = m.rings->free[k];
        m.rings->free[k] = ring[0];
        m.rings->bytes -= (size_t)cap * sizeof(void *);
        return (wsfwd_buf **)ring;
    }
    return m.alloc->malloc((size_t)cap * sizeof(wsfwd_buf *), m.alloc->user_data);
}

static void ring_put(wsfwd_outmem m, wsfwd_buf **ring, uint32_t cap)
{
    int k = ring_class(cap);
    size_t size = (size_t)cap * sizeof(void *);
    if (m.rings != NULL && k >= 0 && m.rings->bytes + size <= m.rings->max_bytes) {
        void **r = (void **)ring;
        r[0] = m.rings->free[k];
        m.rings->free[k] = r;
        m.rings->bytes += size;
        return;
    }
    m.alloc->free(ring, m.alloc->user_data);
}

void wsfwd_ringcache_clear(wsfwd_ringcache *rc, const wsfwd_allocator *a)
{
    for (int k = 0; k < WSFWD_RING_CLASSES; k++) {
        while (rc->free[k] != NULL) {
            void **ring = rc->free[k];
            rc->free[k] = ring[0];
            a->free(ring, a->user_data);
        }
    }
    rc->bytes = 0;
}

/* ---- Queue ----------------------------------------------------------------------------------- */

void wsfwd_outq_init(wsfwd_outq *q)
{
    memset(q, 0, sizeof *q);
    q->cap = WSFWD_OUTQ_INLINE;
}

/* Back to the inline slots, with nothing queued. */
static void reset(wsfwd_outq *q, wsfwd_outmem m)
{
    if (wsfwd_outq_spilled(q)) {
        ring_put(m, q->ring, q->cap);
        q->ring = NULL;
    }
    q->head = 0;
    q->count = 0;
    q->cap = WSFWD_OUTQ_INLINE;
    q->head_off = 0;
    q->bytes = 0;
}

void wsfwd_outq_clear(wsfwd_outq *q, wsfwd_outmem m)
{
    wsfwd_buf **s = wsfwd_outq_slots(q);
    for (uint32_t i = 0; i < q->count; i++) {
        wsfwd_buf_unref(m.alloc, s[(q->head + i) & (q->cap - 1)]);
    }
    reset(q, m);
}

/* A queue that outgrows its inline slots is likely to keep a backlog for a while: start
   with room for a burst rather than doubling through every small size. */
#define FIRST_RING 16

static int grow(wsfwd_outq *q, wsfwd_outmem m)
{
    if (q->cap > UINT32_MAX / 2) {
        return WSFWD_ERR_NOMEM;
    }
    uint32_t cap = wsfwd_outq_spilled(q) ? q->cap * 2 : FIRST_RING;
    wsfwd_buf **ring = ring_get(m, cap);
    if (ring == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    wsfwd_buf **old = wsfwd_outq_slots(q);
    for (uint32_t i = 0; i < q->count; i++) {
        ring[i] = old[(q->head + i) & (q->cap - 1)];
    }
    if (wsfwd_outq_spilled(q)) {
        ring_put(m, q->ring, q->cap);
    }
    q->ring = ring; /* over the inline slots, copied above */
    q->cap = cap;
    q->head = 0;
    return WSFWD_OK;
}

int wsfwd_outq_push(wsfwd_outq *q, wsfwd_outmem m, wsfwd_buf *b)
{
    if (wsfwd_outq_try_push(q, b)) {
        return WSFWD_OK;
    }
    if (grow(q, m) != WSFWD_OK) {
        return WSFWD_ERR_NOMEM;
    }
    (void)wsfwd_outq_try_push(q, b);
    return WSFWD_OK;
}

uint8_t *wsfwd_outq_reserve(wsfwd_outq *q, wsfwd_outmem m, size_t n)
{
    return wsfwd_outq_reserve_at_least(q, m, n, PRIVATE_MIN);
}

uint8_t *wsfwd_outq_reserve_at_least(wsfwd_outq *q, wsfwd_outmem m, size_t n, size_t first)
{
    wsfwd_buf *tail = NULL;
    if (q->count > 0) {
        tail = wsfwd_outq_slots(q)[(q->head + q->count - 1) & (q->cap - 1)];
        if (tail->appendable && tail->cap - tail->len >= n) {
            return tail->data + tail->len;
        }
    }
    /* Private buffers double while a burst lasts, up to a bound, and fit big frames. */
    size_t cap = tail != NULL && tail->appendable ? tail->cap * 2 : first;
    cap = cap > PRIVATE_MAX ? PRIVATE_MAX : cap;
    cap = cap < n ? n : cap;
    wsfwd_buf *b = wsfwd_buf_new(m.alloc, cap);
    if (b == NULL) {
        return NULL;
    }
    b->appendable = true;
    if (wsfwd_outq_push(q, m, b) != WSFWD_OK) {
        m.alloc->free(b, m.alloc->user_data);
        return NULL;
    }
    b->refs--; /* the queue's reference is the only one */
    return b->data;
}

void wsfwd_outq_consume_slow(wsfwd_outq *q, wsfwd_outmem m, size_t n)
{
    if (n >= q->bytes) {
        wsfwd_outq_clear(q, m); /* everything written: the common case */
        return;
    }
    q->bytes -= n;
    wsfwd_buf **s = wsfwd_outq_slots(q);
    for (;;) {
        wsfwd_buf *b = s[q->head];
        size_t avail = b->len - q->head_off;
        if (n < avail) {
            q->head_off += n;
            return;
        }
        n -= avail;
        q->head_off = 0;
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
        wsfwd_buf_unref(m.alloc, b);
    }
}
