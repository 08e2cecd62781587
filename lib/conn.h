/* The connection: handshake, frame parser, message assembler and output queue together. */
#ifndef WSFWD_LIB_CONN_H
#define WSFWD_LIB_CONN_H

#include "config.h"
#include "outq.h"
#include "wsfwd.h"

/*
 * What is read of frames and messages. While wsfwd_conn_feed runs it lives on its stack; it
 * is kept on the heap between feeds only while a frame header, a frame or a message is
 * unfinished, so an idle connection holds none of it (issue 17: bytes per idle connection).
 */
typedef struct wsfwd_rx {
    wsfwd_frame_header fh; /* the frame being read */
    uint64_t frame_off;    /* payload bytes of this frame read so far */
    uint8_t *ctl;          /* a control payload split across feeds (125 bytes, on demand) */
    uint8_t *msg;          /* the message being assembled (NULL between messages) */
    size_t msg_len;
    size_t msg_cap;
    uint32_t utf8; /* validation state across the message's fragments */
    uint8_t hdr[WSFWD_FRAME_HEADER_MAX];
    uint8_t hdr_len; /* header bytes gathered while a header is split across feeds */
    uint8_t ctl_len;
    uint8_t msg_opcode; /* TEXT or BINARY while a message is in progress, else 0 */
    bool in_frame;      /* header read, payload pending */
} wsfwd_rx;

struct wsfwd_conn {
    wsfwd_config *cfg;
    void *user_data;
    void *hs;               /* handshake state while the handshake runs; after it, a kept
                               request (server) or a refused response (client), else NULL */
    char *subprotocol;      /* agreed subprotocol, NULL for none */
    struct wsfwd_pmdc *pmd; /* permessage-deflate state when negotiated, else NULL */

    wsfwd_outq out;          /* output, in order */
    struct wsfwd_pool *pool; /* the pool this connection is in, or NULL */
    wsfwd_rx *rx;            /* reading state kept between feeds (wsfwd_rx), else NULL */
    uint64_t serial;         /* its id is a keyed hash of it (wsfwd_conn_id) */
    uint32_t pool_index;     /* its slot in pool->members */

    uint8_t state;               /* wsfwd_state */
    uint8_t role;                /* wsfwd_role */
    uint16_t busy;               /* library calls on the stack, and deferred broadcasts naming it */
    unsigned feeding : 1;        /* inside wsfwd_conn_feed */
    unsigned in_request : 1;     /* inside on_request */
    unsigned freed : 1;          /* wsfwd_conn_free called while busy */
    unsigned close_told : 1;     /* on_close has been called */
    unsigned out_told : 1;       /* on_output called for the output now queued */
    unsigned congested : 1;      /* the queue passed the high mark, not yet back to the low */
    unsigned timed : 1;          /* congested, and out.over_since holds when (wsfwd_conn_tick) */
    unsigned dropping : 1;       /* congested past the slow timeout under the drop policy */
    unsigned paced_pool : 1;     /* paced: it broadcast to its pool while a member was congested */
    unsigned told_congested : 1; /* what on_flow said last (flow_sync) */
    unsigned told_paced : 1;
    unsigned heard : 1;        /* input fed since the last wsfwd_conn_tick */
    unsigned pinged : 1;       /* an idle ping is out: ping_at holds when */
    unsigned timer_done : 1;   /* a handshake or close timeout was reported: no more */
    unsigned keep_request : 1; /* wsfwd_conn_keep_request: hs outlives the handshake */
    uint8_t phase;             /* the phase whose deadline runs (conn.c, PHASE_*) */
    int8_t hs_result;          /* what a refused handshake returns from feed (an error code) */

    /* Times as of wsfwd_conn_tick, in milliseconds cut to 32 bits: differences stay right
       across the wrap, and for a caller's clock that itself wraps at 32 bits. */
    uint32_t phase_since; /* the first tick that saw the handshake, or the closing */
    uint32_t quiet_since; /* open: the latest tick after input (or the open, a ping) */
    uint32_t ping_at;
};

/*
 * Queue a reference to a shared frame (a broadcast), applying the queue limit and the
 * slow-reader policy. Returns WSFWD_OK, or WSFWD_ERR_QUEUE_FULL when the frame was not queued.
 */
int wsfwd_conn_push_shared(wsfwd_conn *c, wsfwd_buf *b);

/*
 * Keep c's memory while the pool code still compares or reads it after a callback, which may
 * free it. wsfwd_conn_unpin() destroys a connection freed meanwhile and returns false for it.
 * wsfwd_conn_pin() returns false, pinning nothing, when c is already pinned 32,767 times.
 */
bool wsfwd_conn_pin(wsfwd_conn *c);
bool wsfwd_conn_unpin(wsfwd_conn *c);

/* Like wsfwd_conn_pin, for a call on the stack: it cannot fail. Undo with wsfwd_conn_unpin. */
static inline void wsfwd_conn_hold(wsfwd_conn *c)
{
    c->busy++;
}

/* Out-of-line part of wsfwd_conn_push: on_output for output that just appeared. */
void wsfwd_conn_tell_output(wsfwd_conn *c);

/* The queue just passed the high mark (out-of-line part of the checks after queueing). */
void wsfwd_conn_congest(wsfwd_conn *c);

/* Whether its backlog counts toward its pool's congestion (congested, not dropping). */
bool wsfwd_conn_counts_congested(const wsfwd_conn *c);

/* Tell on_flow what changed in its flow state since it last told (holds c meanwhile). */
void wsfwd_conn_flow_sync(wsfwd_conn *c);

/* No longer paced by its pool (the pool drained, or it left); told through on_flow. */
void wsfwd_conn_unpace(wsfwd_conn *c);

/* Pace the sender of a broadcast to its pool (pool.c, when a member is congested). */
void wsfwd_conn_pace(wsfwd_conn *c);

/*
 * The broadcast's hot path, inlined: queue b when that needs no decision (it stays under the
 * high mark, a slot is free); else wsfwd_conn_push_shared() decides (the queue limit, the
 * drop policy, flow control).
 */
static inline int wsfwd_conn_push(wsfwd_conn *c, wsfwd_buf *b)
{
    wsfwd_outq *q = &c->out;
    if (q->bytes + b->len <= c->cfg->high_mark && wsfwd_outq_try_push(q, b)) {
        if (!c->out_told) {
            wsfwd_conn_tell_output(c);
        }
        return WSFWD_OK;
    }
    return wsfwd_conn_push_shared(c, b);
}

#endif
