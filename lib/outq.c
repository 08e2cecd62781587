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

static wsfwd_buf **slots(const wsfwd_outq *q)
{
    return q->ring != NULL ? q->ring : (wsfwd_buf **)q->inl;
}

void wsfwd_outq_init(wsfwd_outq *q)
{
    memset(q, 0, sizeof *q);
    q->cap = WSFWD_OUTQ_INLINE;
}

void wsfwd_outq_clear(wsfwd_outq *q, const wsfwd_allocator *a)
{
    wsfwd_buf **s = slots(q);
    for (uint32_t i = 0; i < q->count; i++) {
        wsfwd_buf_unref(a, s[(q->head + i) & (q->cap - 1)]);
    }
    if (q->ring != NULL) {
        a->free(q->ring, a->user_data);
    }
    wsfwd_outq_init(q);
}

static int grow(wsfwd_outq *q, const wsfwd_allocator *a)
{
    if (q->cap > UINT32_MAX / 2) {
        return WSFWD_ERR_NOMEM;
    }
    uint32_t cap = q->cap * 2;
    wsfwd_buf **ring = a->malloc(cap * sizeof *ring, a->user_data);
    if (ring == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    wsfwd_buf **old = slots(q);
    for (uint32_t i = 0; i < q->count; i++) {
        ring[i] = old[(q->head + i) & (q->cap - 1)];
    }
    if (q->ring != NULL) {
        a->free(q->ring, a->user_data);
    }
    q->ring = ring;
    q->cap = cap;
    q->head = 0;
    return WSFWD_OK;
}

int wsfwd_outq_push(wsfwd_outq *q, const wsfwd_allocator *a, wsfwd_buf *b)
{
    if (q->count == q->cap && grow(q, a) != WSFWD_OK) {
        return WSFWD_ERR_NOMEM;
    }
    slots(q)[(q->head + q->count) & (q->cap - 1)] = b;
    q->count++;
    q->bytes += b->len;
    b->refs++;
    return WSFWD_OK;
}

uint8_t *wsfwd_outq_reserve(wsfwd_outq *q, const wsfwd_allocator *a, size_t n)
{
    wsfwd_buf *tail = NULL;
    if (q->count > 0) {
        tail = slots(q)[(q->head + q->count - 1) & (q->cap - 1)];
        if (tail->appendable && tail->cap - tail->len >= n) {
            return tail->data + tail->len;
        }
    }
    /* Private buffers double while a burst lasts, up to a bound, and fit big frames. */
    size_t cap = tail != NULL && tail->appendable ? tail->cap * 2 : PRIVATE_MIN;
    cap = cap > PRIVATE_MAX ? PRIVATE_MAX : cap;
    cap = cap < n ? n : cap;
    wsfwd_buf *b = wsfwd_buf_new(a, cap);
    if (b == NULL) {
        return NULL;
    }
    b->appendable = true;
    if (wsfwd_outq_push(q, a, b) != WSFWD_OK) {
        a->free(b, a->user_data);
        return NULL;
    }
    b->refs--; /* the queue's reference is the only one */
    return b->data;
}

size_t wsfwd_outq_output(const wsfwd_outq *q, wsfwd_iovec *iov, size_t max)
{
    wsfwd_buf **s = slots(q);
    size_t n = 0;
    size_t off = q->head_off;
    for (uint32_t i = 0; i < q->count && n < max; i++) {
        const wsfwd_buf *b = s[(q->head + i) & (q->cap - 1)];
        if (b->len > off) {
            iov[n].base = b->data + off;
            iov[n].len = b->len - off;
            n++;
        }
        off = 0;
    }
    return n;
}

void wsfwd_outq_consume(wsfwd_outq *q, const wsfwd_allocator *a, size_t n)
{
    if (n > q->bytes) {
        n = q->bytes;
    }
    q->bytes -= n;
    wsfwd_buf **s = slots(q);
    while (q->count > 0) {
        wsfwd_buf *b = s[q->head];
        size_t avail = b->len - q->head_off;
        if (n < avail) {
            q->head_off += n;
            break;
        }
        n -= avail;
        q->head_off = 0;
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
        wsfwd_buf_unref(a, b);
    }
    if (q->count == 0) {
        /* Drained: give the ring back, so an idle connection holds no heap memory. */
        if (q->ring != NULL) {
            a->free(q->ring, a->user_data);
            q->ring = NULL;
        }
        q->head = 0;
        q->cap = WSFWD_OUTQ_INLINE;
    }
}
