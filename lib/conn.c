/*
 * A WebSocket connection without I/O. Bytes come in through wsfwd_conn_feed, are parsed as
 * the opening handshake and then as frames, and leave as whole messages through callbacks.
 * Everything to send is appended to an output queue the caller drains.
 *
 * Re-entrancy: callbacks may free or close any connection. `busy` counts the library calls
 * on the stack for a connection (and the pool code's pins: a connection being moved between
 * pools, the sender named by a deferred broadcast); wsfwd_conn_free only marks a busy
 * connection, and the last one to let go frees it. After every callback the code checks
 * `freed` and stops touching the connection.
 */
#include "conn.h"

#include <string.h>

#include "frame.h"
#include "handshake.h"
#include "mem.h"
#include "member.h"
#include "pmdconn.h"
#include "siphash.h"
#include "utf8.h"
#include "uuid.h"

/* Internal result: a callback freed the connection; unwind without touching it. */
#define STOPPED 2

/* A refused handshake's error code is kept in an int8_t (wsfwd_conn.hs_result). */
_Static_assert(WSFWD_ERR_TOKEN_ROOM > INT8_MIN, "error codes fit in an int8_t");

/* At most this many Sec-WebSocket-Extensions fields are read; more fail the handshake. */
#define MAX_EXTENSION_FIELDS 16

typedef struct hs_client {
    wsfwd_response *resp;
    bool offered; /* permessage-deflate was offered, asking for want */
    wsfwd_pmd_params want;
    char key[WSFWD_KEY_LEN + 1];
    char protocols[]; /* the offered list, "" for none */
} hs_client;

/* ---- Output queue -------------------------------------------------------------------- */

static wsfwd_outmem outmem(wsfwd_conn *c)
{
    wsfwd_outmem m = {&c->cfg->alloc, &c->cfg->rings};
    return m;
}

static uint8_t *out_reserve(wsfwd_conn *c, size_t n)
{
    return wsfwd_outq_reserve(&c->out, outmem(c), n);
}

static void out_commit(wsfwd_conn *c, size_t n)
{
    wsfwd_outq_commit(&c->out, n);
}

/* Queue one whole frame, masked with a fresh key in the client role; RSV1 when compressed. */
static int queue_frame_rsv(wsfwd_conn *c, wsfwd_opcode op, const void *payload, size_t len,
                           bool compressed)
{
    uint8_t mask[4];
    const uint8_t *maskp = NULL;
    if (c->role == WSFWD_ROLE_CLIENT) {
        int rc = wsfwd_config_random(c->cfg, mask, sizeof mask);
        if (rc != WSFWD_OK) {
            return rc;
        }
        maskp = mask;
    }
    if (len > SIZE_MAX - WSFWD_FRAME_HEADER_MAX) {
        return WSFWD_ERR_INVALID;
    }
    uint8_t *p = out_reserve(c, WSFWD_FRAME_HEADER_MAX + len);
    if (p == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    size_t hlen = wsfwd_frame_encode_header(p, true, op, len, maskp);
    if (compressed) {
        p[0] |= WSFWD_RSV1_BIT;
    }
    if (len > 0) {
        memcpy(p + hlen, payload, len);
        if (maskp != NULL) {
            wsfwd_frame_mask(p + hlen, len, maskp, 0);
        }
    }
    out_commit(c, hlen + len);
    return WSFWD_OK;
}

static int queue_frame(wsfwd_conn *c, wsfwd_opcode op, const void *payload, size_t len)
{
    return queue_frame_rsv(c, op, payload, len, false);
}

static int queue_close(wsfwd_conn *c, uint16_t code, const char *reason, size_t reason_len)
{
    uint8_t payload[WSFWD_CONTROL_PAYLOAD_MAX];
    size_t n = 0;
    if (code != 0) {
        if (reason_len > WSFWD_CONTROL_PAYLOAD_MAX - 2) {
            reason_len = WSFWD_CONTROL_PAYLOAD_MAX - 2;
        }
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        if (reason_len > 0) {
            memcpy(payload + 2, reason, reason_len);
        }
        n = 2 + reason_len;
    }
    return queue_frame(c, WSFWD_OP_CLOSE, payload, n);
}

/* ---- Life cycle and callbacks ---------------------------------------------------------- */

static void destroy(wsfwd_conn *c)
{
    const wsfwd_allocator *a = &c->cfg->alloc;
    if (c->hs != NULL) {
        if (c->role == WSFWD_ROLE_SERVER) {
            wsfwd_request_free(c->hs);
        } else {
            hs_client *h = c->hs;
            wsfwd_response_free(h->resp);
            wsfwd_mem_free(a, h);
        }
    }
    wsfwd_outq_clear(&c->out, outmem(c));
    wsfwd_pmdc_free(c->cfg, c->pmd);
    wsfwd_mem_free(a, c->subprotocol);
    if (c->rx != NULL) {
        wsfwd_mem_free(a, c->rx->msg);
        wsfwd_mem_free(a, c->rx->ctl);
        wsfwd_mem_free(a, c->rx);
    }
    wsfwd_mem_free(a, c);
}

/* The handshake ended: free its state, but a kept request becomes a compact copy. */
static void free_handshake(wsfwd_conn *c)
{
    if (c->hs == NULL) {
        return;
    }
    if (c->keep_request) {
        /* Called once, when the handshake ends. Short of memory, the whole request stays. */
        wsfwd_request *copy;
        if (wsfwd_request_copy(c->hs, &c->cfg->alloc, &copy) == WSFWD_OK) {
            wsfwd_request_free(c->hs);
            c->hs = copy;
        }
        return;
    }
    if (c->role == WSFWD_ROLE_SERVER) {
        wsfwd_request_free(c->hs);
    } else {
        hs_client *h = c->hs;
        wsfwd_response_free(h->resp);
        wsfwd_mem_free(&c->cfg->alloc, h);
    }
    c->hs = NULL;
}

static void enter(wsfwd_conn *c)
{
    c->busy++;
}

/* Leave a public call: tell the I/O layer about new output, and free if asked to. */
/* Tell the I/O layer, once, that output waits; again only after it was all written. */
static void tell_output(wsfwd_conn *c)
{
    if (!c->freed && c->out.bytes > 0 && !c->out_told) {
        c->out_told = 1;
        if (c->cfg->on_output != NULL) {
            c->cfg->on_output(c, c->cfg->user_data);
        }
    }
}

static void check_high(wsfwd_conn *c)
{
    if (!c->freed && !c->congested && c->out.bytes > c->cfg->high_mark) {
        wsfwd_conn_congest(c);
    }
}

static int leave(wsfwd_conn *c, int rc)
{
    tell_output(c);
    check_high(c);
    if (--c->busy == 0 && c->freed) {
        destroy(c);
    }
    return rc == STOPPED ? WSFWD_OK : rc;
}

static void tell_close(wsfwd_conn *c, uint16_t code, const char *reason, size_t reason_len, int err)
{
    if (c->close_told) {
        return;
    }
    c->close_told = 1;
    if (c->cfg->on_close != NULL) {
        c->cfg->on_close(c, code, reason, reason_len, err, c->cfg->user_data);
    }
}

/* Fail the connection: queue a close frame with the error's code unless one was sent. */
static int fail(wsfwd_conn *c, int err)
{
    uint16_t code = wsfwd_error_close_code(err);
    if (code == 0) {
        code = WSFWD_CLOSE_INTERNAL_ERROR;
    }
    const char *reason = wsfwd_strerror(err);
    size_t reason_len = strlen(reason);
    if (c->state == WSFWD_STATE_OPEN) {
        /* If even this fails, the state below still tells the caller to drop the socket. */
        (void)queue_close(c, code, reason, reason_len);
    }
    c->state = WSFWD_STATE_CLOSED;
    if (c->pool != NULL) {
        bool slow = err == WSFWD_ERR_QUEUE_FULL || err == WSFWD_ERR_SLOW_TIMEOUT;
        wsfwd_pool_remove(c, slow ? WSFWD_LEAVE_SLOW : WSFWD_LEAVE_CLOSED);
    }
    if (!c->freed) {
        tell_close(c, code, reason, reason_len, err);
    }
    return c->freed ? STOPPED : err;
}

static bool over_limit(const wsfwd_conn *c, size_t n)
{
    return c->out.bytes > 0 && c->out.bytes + n > c->cfg->max_queue;
}

/* The queue is full: drop this message for this connection, or fail it with 1008. */
static int slow_reader(wsfwd_conn *c)
{
    if (c->cfg->slow_policy == WSFWD_SLOW_DROP) {
        if (c->pool != NULL) {
            wsfwd_pool_count_drop(c->pool);
        }
        return WSFWD_ERR_QUEUE_FULL;
    }
    return fail(c, WSFWD_ERR_QUEUE_FULL) == STOPPED ? STOPPED : WSFWD_ERR_QUEUE_FULL;
}

/* Queue a frame of our own, within the queue limit. */
static int queue_message(wsfwd_conn *c, wsfwd_opcode op, const void *payload, size_t len)
{
    if (over_limit(c, WSFWD_FRAME_HEADER_MAX + len)) {
        return slow_reader(c);
    }
    return queue_frame(c, op, payload, len);
}

static void after_push(wsfwd_conn *c)
{
    /* Output just queued passed the high mark: tell the I/O layer if not yet told, then
       flow control. Either may call back and free c. */
    enter(c);
    if (!c->out_told) {
        c->out_told = 1;
        if (c->cfg->on_output != NULL) {
            c->cfg->on_output(c, c->cfg->user_data);
        }
    }
    check_high(c);
    if (--c->busy == 0 && c->freed) {
        destroy(c);
    }
}

int wsfwd_conn_push_shared(wsfwd_conn *c, wsfwd_buf *b)
{
    if (over_limit(c, b->len)) {
        enter(c);
        (void)leave(c, slow_reader(c));
        return WSFWD_ERR_QUEUE_FULL;
    }
    if (c->dropping && c->out.bytes + b->len > c->cfg->high_mark) {
        /* Cut by the slow timeout under the drop policy: for it the cap is the high mark. */
        if (c->pool != NULL) {
            wsfwd_pool_count_drop(c->pool);
        }
        return WSFWD_ERR_QUEUE_FULL;
    }
    if (!wsfwd_outq_try_push(&c->out, b) && wsfwd_outq_push(&c->out, outmem(c), b) != WSFWD_OK) {
        enter(c);
        (void)leave(c, fail(c, WSFWD_ERR_NOMEM));
        return WSFWD_ERR_NOMEM;
    }
    after_push(c);
    return WSFWD_OK;
}

/* ---- Flow control ---------------------------------------------------------------------- */

/*
 * The state (congested; paced by its pool) changes first, and on_flow tells the
 * changes after, from what it told last: so every event is a real transition, told once, in
 * order, whatever the callbacks change meanwhile (they may make it congested or paced again).
 * c is held by the caller.
 */
static void flow_sync(wsfwd_conn *c)
{
    while (!c->freed) {
        bool paced = c->paced_pool;
        wsfwd_flow event;
        if (c->told_congested != c->congested) {
            c->told_congested = c->congested;
            event = c->congested ? WSFWD_FLOW_CONGESTED : WSFWD_FLOW_DRAINED;
        } else if (c->told_paced != paced) {
            c->told_paced = paced;
            event = paced ? WSFWD_FLOW_PAUSE : WSFWD_FLOW_RESUME;
        } else {
            return;
        }
        if (c->cfg->on_flow != NULL) {
            c->cfg->on_flow(c, event, c->cfg->user_data);
        }
    }
}

void wsfwd_conn_flow_sync(wsfwd_conn *c)
{
    wsfwd_conn_hold(c);
    flow_sync(c);
    (void)wsfwd_conn_unpin(c);
}

bool wsfwd_conn_counts_congested(const wsfwd_conn *c)
{
    return c->congested && !c->dropping;
}

void wsfwd_conn_congest(wsfwd_conn *c)
{
    c->congested = 1;
    c->timed = 0;
    if (c->pool != NULL) {
        wsfwd_pool_congested(c->pool);
    }
    wsfwd_conn_flow_sync(c);
}

/* The queue drained to the low mark. */
static void drained(wsfwd_conn *c)
{
    wsfwd_pool *pool = wsfwd_conn_counts_congested(c) ? c->pool : NULL;
    c->congested = 0;
    c->timed = 0;
    c->dropping = 0;
    if (pool != NULL) {
        wsfwd_pool_uncount(pool); /* now: c may leave the pool in a callback below */
    }
    flow_sync(c);
    if (pool != NULL) {
        wsfwd_pool_resume(pool); /* the senders it held up go on, unless another holds them */
    }
}

void wsfwd_conn_pace(wsfwd_conn *c)
{
    if (!c->paced_pool) {
        c->paced_pool = 1;
        wsfwd_conn_flow_sync(c);
    }
}

void wsfwd_conn_unpace(wsfwd_conn *c)
{
    if (c->paced_pool) {
        c->paced_pool = 0;
        wsfwd_conn_flow_sync(c);
    }
}

/* ---- Deadlines (wsfwd_conn_tick) ------------------------------------------------------- */

/*
 * The library has no clock: each deadline starts at the first tick that sees what starts it
 * (a phase, input), so it never fires early; the caller ticks after its calls to learn the
 * new *next. Times are kept as 32-bit milliseconds and compared by difference.
 */
enum { PHASE_NONE, PHASE_HANDSHAKE, PHASE_OPEN, PHASE_CLOSING };

#define NO_WAIT UINT32_MAX

/*
 * Milliseconds from now until since + timeout: 0 when due, NO_WAIT when timeout is 0. Times
 * are compared as signed 32-bit differences: a since later than now (a tick made from a
 * callback of a tick with an older now) is not due yet, it is further away.
 */
static uint32_t wait_until(uint32_t now, uint32_t since, uint32_t timeout)
{
    if (timeout == 0) {
        return NO_WAIT;
    }
    uint32_t waited = now - since;
    if (waited > (uint32_t)INT32_MAX) { /* since is ahead of now */
        uint64_t wait = (uint64_t)timeout + (uint32_t)(since - now);
        return wait < NO_WAIT ? (uint32_t)wait : NO_WAIT - 1;
    }
    return waited >= timeout ? 0 : timeout - waited;
}

/* Note, as of now, what changed since the last tick: a new phase, input. */
static void clock_sync(wsfwd_conn *c, uint32_t now)
{
    uint8_t phase = c->state == WSFWD_STATE_HANDSHAKE ? PHASE_HANDSHAKE
                    : c->state == WSFWD_STATE_OPEN    ? PHASE_OPEN
                                                      : PHASE_CLOSING;
    if (c->phase != phase) {
        c->phase = phase;
        c->phase_since = now;
        c->heard = 1; /* an open connection is quiet from its first tick */
    }
    if (c->heard) {
        c->heard = 0;
        c->quiet_since = now;
        c->pinged = 0;
    }
}

/* The slow timer: a pool member congested past the slow timeout. */
static uint32_t slow_wait(wsfwd_conn *c, uint32_t now)
{
    /* Only a pool member's backlog holds others up: elsewhere pacing is enough. */
    if (!c->congested || c->dropping || c->pool == NULL || c->state != WSFWD_STATE_OPEN ||
        c->cfg->slow_timeout_ms == 0) {
        c->timed = 0;
        return NO_WAIT;
    }
    if (!c->timed) {
        c->timed = 1;
        c->out.over_since = now;
    }
    return wait_until(now, c->out.over_since, c->cfg->slow_timeout_ms);
}

static void slow_expire(wsfwd_conn *c)
{
    if (c->cfg->slow_policy == WSFWD_SLOW_DROP) {
        c->dropping = 1; /* until it drains; its pool no longer waits for it */
        wsfwd_pool *pool = c->pool;
        wsfwd_pool_uncount(pool);
        wsfwd_pool_resume(pool);
    } else {
        (void)fail(c, WSFWD_ERR_SLOW_TIMEOUT);
    }
}

/* The deadline of the phase; *err gets what it fires (WSFWD_OK: the idle ping). */
static uint32_t phase_wait(const wsfwd_conn *c, uint32_t now, int *err)
{
    const wsfwd_config *cfg = c->cfg;
    if (c->timer_done) {
        return NO_WAIT;
    }
    switch (c->phase) {
    case PHASE_HANDSHAKE:
        *err = WSFWD_ERR_HANDSHAKE_TIMEOUT;
        return wait_until(now, c->phase_since, cfg->handshake_timeout_ms);
    case PHASE_CLOSING:
        *err = WSFWD_ERR_CLOSE_TIMEOUT;
        return wait_until(now, c->phase_since, cfg->close_timeout_ms);
    case PHASE_OPEN:
        if (cfg->idle_timeout_ms == 0) {
            return NO_WAIT;
        }
        if (c->pinged) {
            *err = WSFWD_ERR_PONG_TIMEOUT;
            return wait_until(now, c->ping_at, cfg->pong_timeout_ms);
        }
        *err = WSFWD_OK;
        return wait_until(now, c->quiet_since, cfg->idle_timeout_ms);
    default: return NO_WAIT;
    }
}

/* Give up on the output: the peer does not read it, and the caller is to hang up. */
static void drop_output(wsfwd_conn *c)
{
    wsfwd_outq_clear(&c->out, outmem(c));
    c->out_told = 0;
    if (c->congested) {
        drained(c);
    }
}

static int phase_expire(wsfwd_conn *c, int err, uint32_t now)
{
    if (err == WSFWD_OK) {
        int rc = queue_frame(c, WSFWD_OP_PING, NULL, 0);
        if (rc != WSFWD_OK) {
            (void)fail(c, rc);
            return rc;
        }
        if (c->cfg->pong_timeout_ms > 0) {
            c->pinged = 1;
            c->ping_at = now;
        } else {
            c->quiet_since = now; /* no pong awaited: ping again after another idle time */
        }
        return WSFWD_OK;
    }
    if (err == WSFWD_ERR_PONG_TIMEOUT) {
        (void)fail(c, err);
        return err;
    }
    c->timer_done = 1;
    drop_output(c);
    if (err == WSFWD_ERR_HANDSHAKE_TIMEOUT) {
        free_handshake(c);
        c->state = WSFWD_STATE_CLOSED;
    } else if (c->state == WSFWD_STATE_CLOSING && !c->freed) {
        c->state = WSFWD_STATE_CLOSED;
        tell_close(c, WSFWD_CLOSE_ABNORMAL, NULL, 0, err); /* RFC 6455 7.1.5: no close came */
    }
    return err;
}

int wsfwd_conn_tick(wsfwd_conn *c, uint64_t now_ms, uint64_t *next)
{
    if (next != NULL) {
        *next = UINT64_MAX;
    }
    if (c == NULL) {
        return WSFWD_ERR_INVALID;
    }
    if (c->freed) {
        return WSFWD_OK;
    }
    uint32_t now = (uint32_t)now_ms; /* differences stay right across the wrap */
    enter(c);
    clock_sync(c, now);
    int rc = WSFWD_OK;
    int err = WSFWD_OK;
    if (slow_wait(c, now) == 0) {
        rc = WSFWD_ERR_SLOW_TIMEOUT;
        slow_expire(c);
    } else if (phase_wait(c, now, &err) == 0) {
        rc = phase_expire(c, err, now);
    }
    tell_output(c);
    check_high(c);
    if (!c->freed) {
        clock_sync(c, now); /* a deadline that ended a phase starts the next one's */
    }
    if (next != NULL && !c->freed) {
        uint32_t wait = slow_wait(c, now);
        uint32_t other = phase_wait(c, now, &err);
        wait = other < wait ? other : wait;
        if (wait != NO_WAIT) {
            *next = now_ms + wait;
        }
    }
    (void)leave(c, WSFWD_OK);
    return rc;
}

bool wsfwd_conn_pin(wsfwd_conn *c)
{
    if (c->busy >= UINT16_MAX / 2) { /* the other half is for calls on the stack */
        return false;
    }
    c->busy++;
    return true;
}

bool wsfwd_conn_unpin(wsfwd_conn *c)
{
    bool live = !c->freed;
    if (--c->busy == 0 && !live) {
        destroy(c);
    }
    return live;
}

void wsfwd_conn_tell_output(wsfwd_conn *c)
{
    /* Called with output just queued, by a live connection not yet told. */
    c->out_told = 1;
    if (c->cfg->on_output != NULL) {
        enter(c);
        c->cfg->on_output(c, c->cfg->user_data);
        if (--c->busy == 0 && c->freed) {
            destroy(c);
        }
    }
}

/* ---- Public: creation ------------------------------------------------------------------ */

/* A new connection's serial number; the first one draws the key of the ids. */
static int id_serial(wsfwd_config *cfg, uint64_t *serial)
{
    if (!cfg->id_keyed) {
        uint8_t k[16];
        int rc = wsfwd_config_random(cfg, k, sizeof k);
        if (rc != WSFWD_OK) {
            return rc;
        }
        wsfwd_siphash_key(cfg->id_key, k);
        cfg->id_keyed = true;
    }
    *serial = cfg->id_next++;
    return WSFWD_OK;
}

int wsfwd_conn_new(wsfwd_config *cfg, wsfwd_role role, void *user_data, wsfwd_conn **out)
{
    if (cfg == NULL || out == NULL || (role != WSFWD_ROLE_SERVER && role != WSFWD_ROLE_CLIENT)) {
        return WSFWD_ERR_INVALID;
    }
    wsfwd_conn *c = wsfwd_mem_alloc(&cfg->alloc, sizeof *c);
    if (c == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    memset(c, 0, sizeof *c);
    wsfwd_outq_init(&c->out);
    c->cfg = cfg;
    c->user_data = user_data;
    c->role = (uint8_t)role;
    c->state = WSFWD_STATE_HANDSHAKE;
    int rc = id_serial(cfg, &c->serial);
    if (rc != WSFWD_OK) {
        wsfwd_mem_free(&cfg->alloc, c);
        return rc;
    }
    *out = c;
    return WSFWD_OK;
}

void wsfwd_conn_free(wsfwd_conn *c)
{
    if (c == NULL || c->freed) {
        return;
    }
    c->freed = 1;
    enter(c); /* on_leave may call back: the last leave() destroys */
    if (c->pool != NULL) {
        wsfwd_pool_remove(c, WSFWD_LEAVE_FREED);
    }
    (void)leave(c, WSFWD_OK);
}

int wsfwd_conn_set_open(wsfwd_conn *c)
{
    if (c == NULL) {
        return WSFWD_ERR_INVALID;
    }
    if (c->state != WSFWD_STATE_HANDSHAKE || c->hs != NULL) {
        return WSFWD_ERR_STATE;
    }
    c->state = WSFWD_STATE_OPEN;
    return WSFWD_OK;
}

/* ---- Server handshake ------------------------------------------------------------------ */

static int in_request(const wsfwd_conn *c)
{
    return c != NULL && c->in_request && c->state == WSFWD_STATE_HANDSHAKE && !c->freed;
}

/*
 * The server's choice among the request's permessage-deflate offers (none without a codec).
 * Returns 1 with *out and the answer in buf, 0 for no extension, or WSFWD_ERR_HS_EXTENSIONS
 * when the fields break the syntax (or are too many to read).
 */
static int negotiate(const wsfwd_conn *c, wsfwd_pmd_params *out, char *buf, size_t cap)
{
    if (!c->cfg->has_deflate) {
        return 0;
    }
    wsfwd_str v[MAX_EXTENSION_FIELDS];
    size_t n = wsfwd_request_fields(c->hs, "Sec-WebSocket-Extensions", v, MAX_EXTENSION_FIELDS);
    if (n > MAX_EXTENSION_FIELDS) {
        return WSFWD_ERR_HS_EXTENSIONS;
    }
    wsfwd_pmd_policy policy;
    wsfwd_pmdc_policy(c->cfg, &policy);
    int rc = wsfwd_pmd_accept(v, n, &policy, out, buf, cap);
    return rc < 0 ? WSFWD_ERR_HS_EXTENSIONS : rc;
}

/* Queue the request's response with this status; the size is asked for first. A 101
   answers permessage-deflate when negotiated, and sets c->pmd. */
static int queue_response(wsfwd_conn *c, int status, const char *subprotocol)
{
    char answer[WSFWD_PMD_TEXT_MAX];
    answer[0] = '\0';
    wsfwd_pmdc *z = NULL;
    if (status == 101) {
        wsfwd_pmd_params params;
        int rc = negotiate(c, &params, answer, sizeof answer);
        if (rc < 0) {
            return rc;
        }
        if (rc == 1) {
            z = wsfwd_pmdc_new(c->cfg, &params, WSFWD_ROLE_SERVER);
            if (z == NULL) {
                return WSFWD_ERR_NOMEM;
            }
        }
    }
    size_t need = 0;
    int rc = wsfwd_request_write_response_ext(c->hs, status, subprotocol, answer, NULL, 0, &need);
    uint8_t *p = NULL;
    if (rc == WSFWD_ERR_NOBUFS) {
        /* Exactly its size: the buffers of a burst of handshakes, freed once written, would
           otherwise leave 1 KiB holes each between the connections' blocks. */
        p = wsfwd_outq_reserve_at_least(&c->out, outmem(c), need, need);
        rc = p == NULL ? WSFWD_ERR_NOMEM
                       : wsfwd_request_write_response_ext(c->hs, status, subprotocol, answer,
                                                          (char *)p, need, &need);
    } else if (rc == WSFWD_OK) {
        rc = WSFWD_ERR_INVALID;
    }
    if (rc != WSFWD_OK) {
        wsfwd_pmdc_free(c->cfg, z);
        return rc;
    }
    out_commit(c, need);
    if (z != NULL) {
        c->pmd = z;
    }
    return WSFWD_OK;
}

int wsfwd_conn_accept(wsfwd_conn *c, const char *subprotocol)
{
    if (!in_request(c)) {
        return WSFWD_ERR_STATE;
    }
    if (subprotocol != NULL && subprotocol[0] != '\0') {
        size_t n = strlen(subprotocol) + 1;
        char *copy = wsfwd_mem_alloc(&c->cfg->alloc, n);
        if (copy == NULL) {
            return WSFWD_ERR_NOMEM;
        }
        memcpy(copy, subprotocol, n);
        int rc = queue_response(c, 101, copy);
        if (rc != WSFWD_OK) {
            wsfwd_mem_free(&c->cfg->alloc, copy);
            return rc;
        }
        c->subprotocol = copy;
    } else {
        int rc = queue_response(c, 101, NULL);
        if (rc != WSFWD_OK) {
            return rc;
        }
    }
    c->state = WSFWD_STATE_OPEN;
    return WSFWD_OK;
}

int wsfwd_conn_refuse(wsfwd_conn *c, int status)
{
    if (!in_request(c)) {
        return WSFWD_ERR_STATE;
    }
    if (status < 300 || status > 599) {
        return WSFWD_ERR_INVALID;
    }
    int rc = queue_response(c, status, NULL);
    if (rc != WSFWD_OK) {
        return rc;
    }
    c->state = WSFWD_STATE_CLOSED;
    c->hs_result = WSFWD_ERR_HS_REFUSED;
    return WSFWD_OK;
}

int wsfwd_conn_respond(wsfwd_conn *c, int status, const char *content_type, const void *body,
                       size_t body_len)
{
    if (!in_request(c)) {
        return WSFWD_ERR_STATE;
    }
    if (body == NULL && body_len > 0) {
        return WSFWD_ERR_INVALID;
    }
    size_t need = 0;
    int rc = wsfwd_http_write_head(NULL, 0, &need, status, content_type, NULL, body_len);
    if (rc != WSFWD_ERR_NOBUFS) {
        return rc == WSFWD_OK ? WSFWD_ERR_INVALID : rc;
    }
    if (body_len > SIZE_MAX - need) {
        return WSFWD_ERR_INVALID;
    }
    uint8_t *p = out_reserve(c, need + body_len);
    if (p == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    rc = wsfwd_http_write_head((char *)p, need, &need, status, content_type, NULL, body_len);
    if (rc != WSFWD_OK) {
        return rc;
    }
    if (body_len > 0) {
        memcpy(p + need, body, body_len);
    }
    out_commit(c, need + body_len);
    c->state = WSFWD_STATE_CLOSED;
    c->hs_result = WSFWD_OK;
    return WSFWD_OK;
}

/* on_open may still read the request or the response: the handshake is freed after it. */
static int open_connection(wsfwd_conn *c)
{
    int r = 0;
    if (c->cfg->on_open != NULL) {
        r = c->cfg->on_open(c, c->cfg->user_data);
        if (c->freed) {
            return STOPPED;
        }
    }
    free_handshake(c);
    return r != 0 ? fail(c, WSFWD_ERR_CALLBACK) : WSFWD_OK;
}

static int feed_server_handshake(wsfwd_conn *c, const uint8_t *data, size_t len, size_t *used)
{
    if (c->hs == NULL) {
        wsfwd_request *req;
        int rc = wsfwd_request_new(&c->cfg->alloc, c->cfg->max_header, &req);
        if (rc != WSFWD_OK) {
            *used = len;
            c->state = WSFWD_STATE_CLOSED;
            return rc;
        }
        c->hs = req;
    }
    int rc = wsfwd_request_feed(c->hs, data, len, used);
    if (rc == WSFWD_INCOMPLETE) {
        return WSFWD_OK;
    }
    int check = rc == WSFWD_OK ? wsfwd_request_check(c->hs) : rc;
    if (check == WSFWD_OK) {
        /* A valid upgrade whose extension offers break the syntax is refused with 400. */
        wsfwd_pmd_params params;
        char answer[WSFWD_PMD_TEXT_MAX];
        int neg = negotiate(c, &params, answer, sizeof answer);
        check = neg < 0 ? neg : WSFWD_OK;
    }
    if (rc == WSFWD_OK && c->cfg->on_request != NULL) {
        c->in_request = 1;
        int r = c->cfg->on_request(c, c->hs, c->cfg->user_data);
        c->in_request = 0;
        if (c->freed) {
            return STOPPED;
        }
        if (r != 0) {
            if (c->state == WSFWD_STATE_HANDSHAKE) {
                c->in_request = 1;
                (void)wsfwd_conn_refuse(c, 500);
                c->in_request = 0;
            }
            free_handshake(c);
            if (c->state == WSFWD_STATE_OPEN) {
                return fail(c, WSFWD_ERR_CALLBACK);
            }
            c->state = WSFWD_STATE_CLOSED;
            return WSFWD_ERR_CALLBACK;
        }
    }
    if (c->state == WSFWD_STATE_HANDSHAKE) {
        /* The application did not decide: accept a valid upgrade, refuse anything else. */
        c->in_request = 1;
        int r = check == WSFWD_OK ? wsfwd_conn_accept(c, NULL)
                                  : wsfwd_conn_refuse(c, wsfwd_error_http_status(check));
        c->in_request = 0;
        if (check != WSFWD_OK) {
            c->hs_result = (int8_t)check;
        }
        if (r != WSFWD_OK) {
            c->state = WSFWD_STATE_CLOSED;
            return r;
        }
    }
    if (c->state == WSFWD_STATE_OPEN) {
        return open_connection(c);
    }
    free_handshake(c);
    return c->hs_result;
}

int wsfwd_conn_keep_request(wsfwd_conn *c)
{
    if (c == NULL) {
        return WSFWD_ERR_INVALID;
    }
    if (c->role != WSFWD_ROLE_SERVER || c->hs == NULL || c->freed ||
        wsfwd_request_check(c->hs) == WSFWD_INCOMPLETE) {
        return WSFWD_ERR_STATE;
    }
    c->keep_request = 1; /* copied when the handshake ends (free_handshake) */
    return WSFWD_OK;
}

const wsfwd_request *wsfwd_conn_request(const wsfwd_conn *c)
{
    if (c == NULL || c->role != WSFWD_ROLE_SERVER || c->hs == NULL ||
        wsfwd_request_check(c->hs) == WSFWD_INCOMPLETE) {
        return NULL;
    }
    return c->hs;
}

/* ---- Client handshake ------------------------------------------------------------------ */

int wsfwd_conn_client_start(wsfwd_conn *c, const char *host, const char *path, const char *origin,
                            const char *subprotocols)
{
    if (c == NULL || host == NULL || path == NULL) {
        return WSFWD_ERR_INVALID;
    }
    if (c->role != WSFWD_ROLE_CLIENT || c->state != WSFWD_STATE_HANDSHAKE || c->hs != NULL) {
        return WSFWD_ERR_STATE;
    }
    const wsfwd_allocator *a = &c->cfg->alloc;
    size_t plen = subprotocols != NULL ? strlen(subprotocols) : 0;
    hs_client *h = wsfwd_mem_alloc(a, sizeof *h + plen + 1);
    if (h == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    h->resp = NULL;
    h->offered = c->cfg->has_deflate;
    memcpy(h->protocols, plen > 0 ? subprotocols : "", plen + 1);
    char offer[WSFWD_PMD_TEXT_MAX];
    offer[0] = '\0';
    if (h->offered) {
        wsfwd_pmdc_want(c->cfg, &h->want);
        if (wsfwd_pmd_write_offer(&h->want, offer, sizeof offer) < 0) {
            wsfwd_mem_free(a, h);
            return WSFWD_ERR_INVALID;
        }
    }

    uint8_t nonce[16];
    int rc = wsfwd_config_random(c->cfg, nonce, sizeof nonce);
    if (rc == WSFWD_OK) {
        wsfwd_handshake_key(nonce, h->key);
        rc = wsfwd_response_new(a, c->cfg->max_header, &h->resp);
    }
    size_t need = 0;
    if (rc == WSFWD_OK) {
        rc = wsfwd_handshake_write_request_ext(host, path, origin, subprotocols, offer, h->key,
                                               NULL, 0, &need);
        rc = rc == WSFWD_ERR_NOBUFS ? WSFWD_OK : rc == WSFWD_OK ? WSFWD_ERR_INVALID : rc;
    }
    uint8_t *p = NULL;
    if (rc == WSFWD_OK) {
        p = out_reserve(c, need);
        rc = p == NULL ? WSFWD_ERR_NOMEM : WSFWD_OK;
    }
    if (rc == WSFWD_OK) {
        rc = wsfwd_handshake_write_request_ext(host, path, origin, subprotocols, offer, h->key,
                                               (char *)p, need, &need);
    }
    if (rc != WSFWD_OK) {
        wsfwd_response_free(h->resp);
        wsfwd_mem_free(a, h);
        return rc;
    }
    c->hs = h;
    enter(c);
    out_commit(c, need);
    return leave(c, WSFWD_OK);
}

const wsfwd_response *wsfwd_conn_response(const wsfwd_conn *c)
{
    if (c == NULL || c->role != WSFWD_ROLE_CLIENT || c->hs == NULL) {
        return NULL;
    }
    const hs_client *h = c->hs;
    return wsfwd_response_status(h->resp) != 0 ? h->resp : NULL;
}

/* The server's answer to the offer: permessage-deflate within what was offered, or none. */
static int check_extensions(wsfwd_conn *c, const hs_client *h)
{
    wsfwd_str v[MAX_EXTENSION_FIELDS];
    size_t n = wsfwd_response_fields(h->resp, "Sec-WebSocket-Extensions", v, MAX_EXTENSION_FIELDS);
    if (n > MAX_EXTENSION_FIELDS) {
        return WSFWD_ERR_HS_EXTENSION;
    }
    wsfwd_pmd_params params;
    int rc = wsfwd_pmd_check_response(v, n, &h->want, &params);
    if (rc != 1) {
        return rc;
    }
    c->pmd = wsfwd_pmdc_new(c->cfg, &params, WSFWD_ROLE_CLIENT);
    return c->pmd != NULL ? WSFWD_OK : WSFWD_ERR_NOMEM;
}

static int feed_client_handshake(wsfwd_conn *c, const uint8_t *data, size_t len, size_t *used)
{
    hs_client *h = c->hs;
    if (h == NULL) {
        /* Bytes before the client sent its request: a server must not talk first. */
        *used = len;
        c->state = WSFWD_STATE_CLOSED;
        return WSFWD_ERR_HTTP_RESPONSE;
    }
    int rc = wsfwd_response_feed(h->resp, data, len, used);
    if (rc == WSFWD_INCOMPLETE) {
        return WSFWD_OK;
    }
    if (rc == WSFWD_OK) {
        rc = wsfwd_response_check_ext(h->resp, h->key,
                                      h->protocols[0] != '\0' ? h->protocols : NULL, h->offered);
    }
    if (rc == WSFWD_OK && h->offered) {
        rc = check_extensions(c, h);
    }
    if (rc == WSFWD_OK) {
        wsfwd_str proto = wsfwd_response_subprotocol(h->resp);
        if (proto.len > 0) {
            c->subprotocol = wsfwd_mem_alloc(&c->cfg->alloc, proto.len + 1);
            if (c->subprotocol == NULL) {
                rc = WSFWD_ERR_NOMEM;
            } else {
                memcpy(c->subprotocol, proto.ptr, proto.len);
                c->subprotocol[proto.len] = '\0';
            }
        }
    }
    if (rc != WSFWD_OK) {
        /* The response stays for wsfwd_conn_response() until the connection is freed. */
        c->state = WSFWD_STATE_CLOSED;
        return rc;
    }
    c->state = WSFWD_STATE_OPEN;
    return open_connection(c);
}

/* ---- Frames and messages --------------------------------------------------------------- */

static int deliver(wsfwd_conn *c, const uint8_t *data, size_t len)
{
    wsfwd_opcode op = (wsfwd_opcode)c->rx->msg_opcode;
    c->rx->msg_opcode = 0;
    if (c->state != WSFWD_STATE_OPEN) {
        return WSFWD_OK;
    }
    if (c->cfg->on_message == NULL) {
        return WSFWD_OK;
    }
    int r = c->cfg->on_message(c, op, data, len, c->cfg->user_data);
    if (c->freed) {
        return STOPPED;
    }
    return r != 0 ? fail(c, WSFWD_ERR_CALLBACK) : WSFWD_OK;
}

static void message_reset(wsfwd_conn *c)
{
    /* Idle connections hold no reassembly buffer. */
    wsfwd_mem_free(&c->cfg->alloc, c->rx->msg);
    c->rx->msg = NULL;
    c->rx->msg_len = 0;
    c->rx->msg_cap = 0;
    c->rx->msg_opcode = 0;
}

/* Append n payload bytes; masked: p is still masked, moff is its offset in the frame. */
static int message_append(wsfwd_conn *c, const uint8_t *p, size_t n, bool masked, uint64_t moff)
{
    if (n == 0) {
        return WSFWD_OK;
    }
    if (c->rx->msg_cap - c->rx->msg_len < n) {
        /* Grow with what has arrived, never with what a header announces: a peer that
           claims a 1 MiB frame and sends one byte must not cost 1 MiB. Growing fourfold
           from what is needed now keeps the copies and reallocations few (at most 4 bytes
           held per byte received); the last step stops at the message's known end. */
        size_t need = c->rx->msg_len + n;
        size_t cap = need < 1024 ? 4096 : need * 4;
        if (c->rx->fh.fin) {
            uint64_t end = (uint64_t)(c->rx->msg_len - moff) + c->rx->fh.payload_len;
            if (cap > end) {
                cap = (size_t)end;
            }
        }
        if (cap > c->cfg->max_message) {
            cap = c->cfg->max_message;
        }
        if (cap < need) {
            cap = need;
        }
        uint8_t *m = wsfwd_mem_realloc(&c->cfg->alloc, c->rx->msg, cap);
        if (m == NULL) {
            return WSFWD_ERR_NOMEM;
        }
        c->rx->msg = m;
        c->rx->msg_cap = cap;
    }
    if (masked) {
        wsfwd_mask_copy(c->rx->msg + c->rx->msg_len, p, n, c->rx->fh.mask, moff);
    } else {
        memcpy(c->rx->msg + c->rx->msg_len, p, n);
    }
    c->rx->msg_len += n;
    return WSFWD_OK;
}

static int on_close_frame(wsfwd_conn *c, const uint8_t *p, size_t n)
{
    uint16_t code = WSFWD_CLOSE_NO_STATUS;
    const char *reason = NULL;
    size_t reason_len = 0;
    if (n == 1) {
        return fail(c, WSFWD_ERR_CLOSE_PAYLOAD);
    }
    if (n >= 2) {
        code = (uint16_t)(p[0] << 8 | p[1]);
        if (!wsfwd_close_code_is_valid(code)) {
            return fail(c, WSFWD_ERR_CLOSE_CODE);
        }
        reason = (const char *)p + 2;
        reason_len = n - 2;
        if (!wsfwd_utf8_valid((const uint8_t *)reason, reason_len)) {
            return fail(c, WSFWD_ERR_UTF8);
        }
    }
    if (c->state == WSFWD_STATE_OPEN) {
        /* Echo the code (RFC 6455 section 5.5.1); an empty close is answered empty. */
        int rc = queue_close(c, n >= 2 ? code : 0, NULL, 0);
        if (rc != WSFWD_OK) {
            return fail(c, rc);
        }
    }
    c->state = WSFWD_STATE_CLOSED;
    if (c->pool != NULL) {
        wsfwd_pool_remove(c, WSFWD_LEAVE_CLOSED);
    }
    if (!c->freed) {
        tell_close(c, code, reason, reason_len, WSFWD_OK);
    }
    return c->freed ? STOPPED : WSFWD_OK;
}

static int on_control_frame(wsfwd_conn *c, const uint8_t *p, size_t n)
{
    uint8_t op = c->rx->fh.opcode;
    if (op == WSFWD_OP_CLOSE) {
        return on_close_frame(c, p, n);
    }
    if (c->state != WSFWD_STATE_OPEN) {
        return WSFWD_OK;
    }
    if (op == WSFWD_OP_PING) {
        int rc = queue_message(c, WSFWD_OP_PONG, p, n);
        if (rc == STOPPED || c->state != WSFWD_STATE_OPEN) {
            return rc;
        }
        if (rc != WSFWD_OK && rc != WSFWD_ERR_QUEUE_FULL) {
            return fail(c, rc);
        }
    }
    if (c->cfg->on_control != NULL) {
        int r = c->cfg->on_control(c, (wsfwd_opcode)op, p, n, c->cfg->user_data);
        if (c->freed) {
            return STOPPED;
        }
        if (r != 0) {
            return fail(c, WSFWD_ERR_CALLBACK);
        }
    }
    return WSFWD_OK;
}

/* Whether the data frame being read belongs to a compressed message. */
static bool compressed(const wsfwd_conn *c)
{
    return c->pmd != NULL && c->pmd->compressed;
}

/* A frame header arrived: check what needs the connection's state, then note the message.
   RSV1 (let through by the parser only when permessage-deflate was negotiated) may mark the
   first frame of a data message only. */
static int begin_frame(wsfwd_conn *c)
{
    uint8_t op = c->rx->fh.opcode;
    bool rsv1 = (c->rx->fh.rsv & WSFWD_RSV1) != 0;
    if (op & 0x8) {
        return rsv1 ? fail(c, WSFWD_ERR_RSV) : WSFWD_OK;
    }
    if (op == WSFWD_OP_CONTINUATION) {
        if (c->rx->msg_opcode == 0) {
            return fail(c, WSFWD_ERR_CONTINUATION);
        }
        if (rsv1) {
            return fail(c, WSFWD_ERR_RSV);
        }
    } else {
        if (c->rx->msg_opcode != 0) {
            return fail(c, WSFWD_ERR_CONTINUATION);
        }
        c->rx->msg_opcode = op;
        c->rx->utf8 = WSFWD_UTF8_ACCEPT;
        if (c->pmd != NULL) {
            c->pmd->compressed = rsv1;
        }
    }
    /* A compressed message's limit applies to its inflated size, as it inflates. */
    if (!compressed(c) && c->rx->fh.payload_len > c->cfg->max_message - c->rx->msg_len) {
        return fail(c, WSFWD_ERR_TOO_BIG);
    }
    return WSFWD_OK;
}

/* Room for more inflated bytes: the message buffer grown, doubling, never past the limit. */
static int inflate_room(wsfwd_conn *c)
{
    size_t max = c->cfg->max_message;
    size_t cap = c->rx->msg_cap == 0 ? 4096 : c->rx->msg_cap > max / 2 ? max : c->rx->msg_cap * 2;
    if (cap > max) {
        cap = max;
    }
    uint8_t *m = wsfwd_mem_realloc(&c->cfg->alloc, c->rx->msg, cap);
    if (m == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    c->rx->msg = m;
    c->rx->msg_cap = cap;
    return WSFWD_OK;
}

/*
 * Inflate n bytes into the message buffer, UTF-8-checking text as it comes. At the limit,
 * output goes to a few bytes on the stack: any byte there means the message is too big.
 * tail: the 00 00 FF FF the library appends, which a stream that ended may leave unread.
 */
static int inflate_some(wsfwd_conn *c, void *stream, const uint8_t *in, size_t n, bool tail)
{
    const wsfwd_deflate_codec *k = &c->cfg->codec;
    for (;;) {
        uint8_t spill[16];
        if (c->rx->msg_len == c->rx->msg_cap && c->rx->msg_cap < c->cfg->max_message) {
            int rc = inflate_room(c);
            if (rc != WSFWD_OK) {
                return rc;
            }
        }
        bool full = c->rx->msg_len == c->rx->msg_cap;
        uint8_t *out = full ? spill : c->rx->msg + c->rx->msg_len;
        size_t room = full ? sizeof spill : c->rx->msg_cap - c->rx->msg_len;
        size_t before = n;
        size_t produced = 0;
        wsfwd_inflate_status st = k->inflate(k->user_data, stream, &in, &n, out, room, &produced);
        if (produced > room || n > before) {
            return WSFWD_ERR_INFLATE; /* a codec that breaks its contract */
        }
        if (produced > 0 && full) {
            return WSFWD_ERR_TOO_BIG;
        }
        if (c->rx->msg_opcode == WSFWD_OP_TEXT) {
            c->rx->utf8 = wsfwd_utf8_step(c->rx->utf8, out, produced);
            if (c->rx->utf8 == WSFWD_UTF8_REJECT) {
                return WSFWD_ERR_UTF8;
            }
        }
        c->rx->msg_len += produced;
        /* What came out before bad data is checked first, as it would be had the bad data
           arrived in a later piece: the error is the same however the input is split. */
        if (st != WSFWD_INFLATE_OK && st != WSFWD_INFLATE_END) {
            return WSFWD_ERR_INFLATE;
        }
        if (st == WSFWD_INFLATE_END) {
            c->pmd->ended = true; /* what follows in the message is ignored */
            return WSFWD_OK;
        }
        if (produced == room) {
            continue; /* filled: there may be more */
        }
        if (n == 0) {
            return WSFWD_OK;
        }
        if (n == before && produced == 0) {
            return tail ? WSFWD_OK : WSFWD_ERR_INFLATE; /* stuck: data after the end */
        }
    }
}

/* n bytes (unmasked) of a compressed message; end: the message's last. */
static int compressed_payload(wsfwd_conn *c, const uint8_t *p, size_t n, bool end)
{
    void *stream = wsfwd_pmdc_stream(c->cfg, c->pmd);
    if (stream == NULL) {
        return fail(c, WSFWD_ERR_NOMEM);
    }
    int rc = c->pmd->ended ? WSFWD_OK : inflate_some(c, stream, p, n, false);
    if (rc == WSFWD_OK && end && !c->pmd->ended) {
        rc = inflate_some(c, stream, wsfwd_pmd_tail, WSFWD_PMD_TAIL_LEN, true);
    }
    if (rc == WSFWD_OK && end && c->rx->msg_opcode == WSFWD_OP_TEXT &&
        c->rx->utf8 != WSFWD_UTF8_ACCEPT) {
        rc = WSFWD_ERR_UTF8;
    }
    if (rc != WSFWD_OK) {
        return fail(c, rc);
    }
    if (!end) {
        return WSFWD_OK;
    }
    wsfwd_pmdc_message_end(c->cfg, c->pmd);
    rc = deliver(c, c->rx->msg, c->rx->msg_len);
    if (rc != STOPPED) {
        message_reset(c);
    }
    return rc;
}

/* n payload bytes of the current frame (still masked if `masked`); the frame may end with them. */
static int frame_payload(wsfwd_conn *c, uint8_t *p, size_t n, bool masked)
{
    bool whole = c->rx->frame_off == 0 && n == c->rx->fh.payload_len;
    uint64_t moff = c->rx->frame_off;
    c->rx->frame_off += n;
    bool last = c->rx->frame_off == c->rx->fh.payload_len;
    /* Bytes bound for the reassembly buffer are unmasked on their way there; compressed
       ones are unmasked in place and inflated into it. */
    bool z = !(c->rx->fh.opcode & 0x8) && compressed(c);
    bool append = !(c->rx->fh.opcode & 0x8) && c->state == WSFWD_STATE_OPEN && !z &&
                  !(whole && c->rx->fh.fin && c->rx->msg_len == 0);
    if (masked && !append) {
        wsfwd_frame_mask(p, n, c->rx->fh.mask, moff);
        masked = false;
    }

    if (c->rx->fh.opcode & 0x8) {
        if (whole) {
            return on_control_frame(c, p, n);
        }
        if (c->rx->ctl == NULL) {
            c->rx->ctl = wsfwd_mem_alloc(&c->cfg->alloc, WSFWD_CONTROL_PAYLOAD_MAX);
            if (c->rx->ctl == NULL) {
                return fail(c, WSFWD_ERR_NOMEM);
            }
            c->rx->ctl_len = 0;
        }
        memcpy(c->rx->ctl + c->rx->ctl_len, p, n);
        c->rx->ctl_len = (uint8_t)(c->rx->ctl_len + n);
        if (!last) {
            return WSFWD_OK;
        }
        uint8_t buf[WSFWD_CONTROL_PAYLOAD_MAX];
        size_t len = c->rx->ctl_len;
        memcpy(buf, c->rx->ctl, len);
        wsfwd_mem_free(&c->cfg->alloc, c->rx->ctl);
        c->rx->ctl = NULL;
        c->rx->ctl_len = 0;
        return on_control_frame(c, buf, len);
    }

    if (c->state != WSFWD_STATE_OPEN) {
        /* After our close frame, data is read and dropped. */
        if (last && c->rx->fh.fin) {
            message_reset(c);
        }
        return WSFWD_OK;
    }
    if (z) {
        return compressed_payload(c, p, n, last && c->rx->fh.fin);
    }
    const uint8_t *plain = p;
    if (append) {
        size_t at = c->rx->msg_len;
        int rc = message_append(c, p, n, masked, moff);
        if (rc != WSFWD_OK) {
            return fail(c, rc);
        }
        plain = n > 0 ? c->rx->msg + at : p; /* an empty fragment may find no buffer yet */
    }
    if (c->rx->msg_opcode == WSFWD_OP_TEXT) {
        c->rx->utf8 = wsfwd_utf8_step(c->rx->utf8, plain, n);
        if (c->rx->utf8 == WSFWD_UTF8_REJECT) {
            return fail(c, WSFWD_ERR_UTF8);
        }
        if (last && c->rx->fh.fin && c->rx->utf8 != WSFWD_UTF8_ACCEPT) {
            return fail(c, WSFWD_ERR_UTF8);
        }
    }
    if (!append) {
        /* The common case: the whole message in the caller's buffer, no copy. */
        return deliver(c, p, n);
    }
    if (!last || !c->rx->fh.fin) {
        return WSFWD_OK;
    }
    int rc = deliver(c, c->rx->msg, c->rx->msg_len);
    if (rc != STOPPED) {
        message_reset(c);
    }
    return rc;
}

/*
 * Gather a frame header that may be split across feeds. Returns WSFWD_OK with *used bytes
 * taken, WSFWD_INCOMPLETE when all were taken, or a header error.
 */
static int read_header(wsfwd_conn *c, const uint8_t *data, size_t len, size_t *used)
{
    wsfwd_role receiver = (wsfwd_role)c->role;
    uint8_t rsv = c->pmd != NULL ? WSFWD_RSV1 : 0;
    if (c->rx->hdr_len == 0) {
        int rc = wsfwd_frame_parse(data, len, receiver, rsv, &c->rx->fh);
        if (rc == WSFWD_OK) {
            *used = c->rx->fh.header_len;
            return WSFWD_OK;
        }
        if (rc != WSFWD_INCOMPLETE) {
            return rc;
        }
    }
    size_t room = WSFWD_FRAME_HEADER_MAX - c->rx->hdr_len;
    size_t take = len < room ? len : room;
    memcpy(c->rx->hdr + c->rx->hdr_len, data, take);
    size_t before = c->rx->hdr_len;
    c->rx->hdr_len = (uint8_t)(c->rx->hdr_len + take);
    int rc = wsfwd_frame_parse(c->rx->hdr, c->rx->hdr_len, receiver, rsv, &c->rx->fh);
    if (rc == WSFWD_INCOMPLETE) {
        *used = take;
        return rc;
    }
    c->rx->hdr_len = 0;
    if (rc != WSFWD_OK) {
        return rc;
    }
    *used = c->rx->fh.header_len - before;
    return WSFWD_OK;
}

/* Keep the n unread bytes at p for a later feed (p may point into the held buffer itself). */
static int hold_input(wsfwd_conn *c, const uint8_t *p, size_t n)
{
    wsfwd_pmdc *z = c->pmd;
    uintptr_t at = (uintptr_t)p, start = (uintptr_t)z->held;
    if (z->held != NULL && at >= start && at < start + z->held_cap) {
        memmove(z->held, p, n);
        z->held_len = n;
        return WSFWD_OK;
    }
    if (z->held_cap - z->held_len < n) {
        size_t cap = z->held_len + n;
        uint8_t *b = wsfwd_mem_realloc(&c->cfg->alloc, z->held, cap);
        if (b == NULL) {
            return fail(c, WSFWD_ERR_NOMEM);
        }
        z->held = b;
        z->held_cap = cap;
    }
    memcpy(z->held + z->held_len, p, n);
    z->held_len += n;
    return WSFWD_OK;
}

/*
 * Frames from data. A compressing connection that becomes paced while it is read (it was
 * not at the start: paced_at_start) stops at the next frame boundary and holds the rest, so
 * one feed cannot inflate into more than the pool's congestion allows (wsfwd_conn_held).
 */
static int feed_frames(wsfwd_conn *c, uint8_t *data, size_t len, bool paced_at_start)
{
    while (len > 0 && c->state != WSFWD_STATE_CLOSED) {
        if (c->paced_pool && !paced_at_start && !c->rx->in_frame && c->pmd != NULL) {
            return hold_input(c, data, len);
        }
        if (!c->rx->in_frame) {
            size_t used = 0;
            int rc = read_header(c, data, len, &used);
            data += used;
            len -= used;
            if (rc == WSFWD_INCOMPLETE) {
                return WSFWD_OK;
            }
            if (rc != WSFWD_OK) {
                return fail(c, rc);
            }
            rc = begin_frame(c);
            if (rc != WSFWD_OK) {
                return rc;
            }
            c->rx->in_frame = true;
            c->rx->frame_off = 0;
            if (c->rx->fh.payload_len == 0) {
                c->rx->in_frame = false;
                rc = frame_payload(c, data, 0, false);
                if (rc != WSFWD_OK) {
                    return rc;
                }
            }
            continue;
        }
        uint64_t left = c->rx->fh.payload_len - c->rx->frame_off;
        size_t n = left < len ? (size_t)left : len;
        if (n == left) {
            c->rx->in_frame = false;
        }
        int rc = frame_payload(c, data, n, c->rx->fh.masked);
        if (rc != WSFWD_OK) {
            return rc;
        }
        data += n;
        len -= n;
    }
    return WSFWD_OK;
}

/* Frames of an open connection: what it held back first (data appended to it), then data. */
static int feed_held(wsfwd_conn *c, uint8_t *data, size_t len)
{
    bool paced = c->paced_pool;
    wsfwd_pmdc *z = c->pmd;
    if (z == NULL || z->held_len == 0) {
        return len > 0 ? feed_frames(c, data, len, paced) : WSFWD_OK;
    }
    if (len > 0 && hold_input(c, data, len) != WSFWD_OK) {
        return WSFWD_ERR_NOMEM;
    }
    size_t n = z->held_len;
    z->held_len = 0; /* read from the buffer; what stays is moved to its front */
    int rc = feed_frames(c, z->held, n, paced);
    if (z->held_len == 0) {
        wsfwd_mem_free(&c->cfg->alloc, z->held); /* an idle connection holds no buffer */
        z->held = NULL;
        z->held_cap = 0;
    }
    return rc;
}

/* Whether r holds anything unfinished: part of a header, a frame, a message. */
static bool rx_unfinished(const wsfwd_rx *r)
{
    return r->in_frame || r->hdr_len > 0 || r->msg_opcode != 0 || r->msg != NULL || r->ctl != NULL;
}

/*
 * The reading state after a feed: kept on the heap (in c->rx, allocated now if need be) while
 * something is unfinished and the connection still reads, else freed with what it holds.
 */
static int rx_store(wsfwd_conn *c, wsfwd_rx *kept, wsfwd_rx *now, int rc)
{
    const wsfwd_allocator *a = &c->cfg->alloc;
    c->rx = NULL;
    if (rx_unfinished(now) && !c->freed && c->state != WSFWD_STATE_CLOSED) {
        if (kept == NULL) {
            kept = wsfwd_mem_alloc(a, sizeof *kept);
        }
        if (kept != NULL) {
            *kept = *now;
            c->rx = kept;
            return rc;
        }
        if (rc == WSFWD_OK) {
            rc = fail(c, WSFWD_ERR_NOMEM);
        }
    }
    wsfwd_mem_free(a, now->msg);
    wsfwd_mem_free(a, now->ctl);
    wsfwd_mem_free(a, kept);
    return rc;
}

/* Frames of an open connection, read with the reading state on the stack. */
static int feed_open(wsfwd_conn *c, uint8_t *data, size_t len)
{
    wsfwd_rx *kept = c->rx;
    wsfwd_rx now;
    if (kept != NULL) {
        now = *kept;
    } else {
        memset(&now, 0, sizeof now);
    }
    c->rx = &now;
    int rc = feed_held(c, data, len);
    return rx_store(c, kept, &now, rc);
}

/* Forget held input: a closed connection never reads it. Not while feed_open reads it. */
static void drop_held(wsfwd_conn *c)
{
    wsfwd_pmdc *z = c->pmd;
    if (z != NULL && z->held != NULL) {
        wsfwd_mem_free(&c->cfg->alloc, z->held);
        z->held = NULL;
        z->held_len = 0;
        z->held_cap = 0;
    }
}

int wsfwd_conn_feed(wsfwd_conn *c, uint8_t *data, size_t len)
{
    if (c == NULL || (data == NULL && len > 0)) {
        return WSFWD_ERR_INVALID;
    }
    if (c->feeding || c->freed) {
        return WSFWD_ERR_STATE;
    }
    enter(c);
    c->feeding = 1;
    if (len > 0) {
        c->heard = 1; /* a sign of life for the idle and pong timers, as of the next tick */
    }
    int rc = WSFWD_OK;
    while (len > 0 && c->state == WSFWD_STATE_HANDSHAKE) {
        size_t used = 0;
        rc = c->role == WSFWD_ROLE_SERVER ? feed_server_handshake(c, data, len, &used)
                                          : feed_client_handshake(c, data, len, &used);
        data += used;
        len -= used;
        if (rc != WSFWD_OK) {
            break;
        }
    }
    if (c->state == WSFWD_STATE_CLOSED && c->pool != NULL && !c->freed) {
        /* Joined during on_request, then refused or failed before it opened. */
        wsfwd_pool_remove(c, WSFWD_LEAVE_CLOSED);
    }
    if (rc == WSFWD_OK && (c->state == WSFWD_STATE_OPEN || c->state == WSFWD_STATE_CLOSING)) {
        rc = feed_open(c, data, len);
    }
    if (c->state == WSFWD_STATE_CLOSED) {
        drop_held(c);
    }
    c->feeding = 0;
    return leave(c, rc);
}

size_t wsfwd_conn_held(const wsfwd_conn *c)
{
    /* A connection that closed holding input (its queue overflowed...) will not read it. */
    return c != NULL && c->pmd != NULL && c->state != WSFWD_STATE_CLOSED ? c->pmd->held_len : 0;
}

/* ---- Sending --------------------------------------------------------------------------- */

int wsfwd_conn_send(wsfwd_conn *c, wsfwd_opcode op, const void *data, size_t len)
{
    if (c == NULL || (data == NULL && len > 0)) {
        return WSFWD_ERR_INVALID;
    }
    bool control = op == WSFWD_OP_PING || op == WSFWD_OP_PONG;
    if (!control && op != WSFWD_OP_TEXT && op != WSFWD_OP_BINARY) {
        return WSFWD_ERR_INVALID;
    }
    if (control && len > WSFWD_CONTROL_PAYLOAD_MAX) {
        return WSFWD_ERR_CONTROL_SIZE;
    }
    if (c->state != WSFWD_STATE_OPEN || c->freed) {
        return c->state == WSFWD_STATE_HANDSHAKE ? WSFWD_ERR_STATE : WSFWD_ERR_CLOSED;
    }
    enter(c);
    if (over_limit(c, WSFWD_FRAME_HEADER_MAX + len)) {
        return leave(c, WSFWD_ERR_WOULD_BLOCK); /* the caller's to decide, not a slow reader */
    }
    if (!control && c->pmd != NULL && len >= c->cfg->deflate_min_size) {
        const uint8_t *zp;
        size_t zn = wsfwd_pmdc_compress(c->cfg, wsfwd_pmdc_send_bits(c->pmd), data, len, &zp);
        if (zn > 0) {
            return leave(c, queue_frame_rsv(c, op, zp, zn, true));
        }
    }
    return leave(c, queue_frame(c, op, data, len));
}

bool wsfwd_conn_deflate(const wsfwd_conn *c, wsfwd_deflate_params *out, size_t out_size)
{
    if (c == NULL || c->pmd == NULL) {
        return false;
    }
    if (out != NULL) {
        const wsfwd_pmd_params *p = &c->pmd->params;
        wsfwd_deflate_params d;
        memset(&d, 0, sizeof d);
        d.server_no_context_takeover = p->server_no_context_takeover;
        d.client_no_context_takeover = p->client_no_context_takeover;
        d.server_max_window_bits = p->server_max_window_bits;
        d.client_max_window_bits = p->client_max_window_bits;
        memcpy(out, &d, out_size < sizeof d ? out_size : sizeof d);
    }
    return true;
}

bool wsfwd_conn_message_compressed(const wsfwd_conn *c)
{
    return c != NULL && compressed(c);
}

int wsfwd_conn_close(wsfwd_conn *c, uint16_t code, const char *reason, size_t reason_len)
{
    if (c == NULL || (reason == NULL && reason_len > 0)) {
        return WSFWD_ERR_INVALID;
    }
    if (code != 0 && (code < 1000 || code > 4999)) {
        return WSFWD_ERR_CLOSE_RANGE;
    }
    if (code != 0 && !wsfwd_close_code_is_valid(code)) {
        return WSFWD_ERR_CLOSE_RESERVED;
    }
    if (reason_len > (code == 0 ? 0 : WSFWD_CONTROL_PAYLOAD_MAX - 2)) {
        return WSFWD_ERR_CLOSE_REASON;
    }
    if (!wsfwd_utf8_valid((const uint8_t *)reason, reason_len)) {
        return WSFWD_ERR_INVALID;
    }
    if (c->state != WSFWD_STATE_OPEN || c->freed) {
        return c->state == WSFWD_STATE_HANDSHAKE ? WSFWD_ERR_STATE : WSFWD_ERR_CLOSED;
    }
    enter(c);
    int rc = queue_close(c, code, reason, reason_len);
    if (rc == WSFWD_OK) {
        c->state = WSFWD_STATE_CLOSING;
        if (c->pool != NULL) {
            wsfwd_pool_remove(c, WSFWD_LEAVE_CLOSED);
        }
    }
    return leave(c, rc);
}

/* ---- Output ---------------------------------------------------------------------------- */

size_t wsfwd_conn_output(wsfwd_conn *c, wsfwd_iovec *iov, size_t max)
{
    if (c == NULL || iov == NULL) {
        return 0;
    }
    return wsfwd_outq_output(&c->out, iov, max);
}

/* Out of line, so the common write path (not congested) stays a leaf without a frame. */
#if defined(__GNUC__)
__attribute__((noinline, cold))
#endif
static void
consumed_congested(wsfwd_conn *c)
{
    if (c->out.bytes <= c->cfg->low_mark) {
        enter(c);
        drained(c);
        if (--c->busy == 0 && c->freed) {
            destroy(c);
        }
    }
}

void wsfwd_conn_consume(wsfwd_conn *c, size_t n)
{
    if (c == NULL) {
        return;
    }
    wsfwd_outq_consume(&c->out, outmem(c), n);
    if (c->out.bytes == 0) {
        c->out_told = 0;
    }
    if (c->congested) {
        consumed_congested(c);
    }
}

size_t wsfwd_conn_max_queue(const wsfwd_conn *c)
{
    return c != NULL ? c->cfg->max_queue : 0;
}

bool wsfwd_conn_is_congested(const wsfwd_conn *c)
{
    return c != NULL && c->congested;
}

bool wsfwd_conn_is_paced(const wsfwd_conn *c)
{
    return c != NULL && c->paced_pool;
}

size_t wsfwd_conn_pending(const wsfwd_conn *c)
{
    return c != NULL ? c->out.bytes : 0;
}

wsfwd_state wsfwd_conn_state(const wsfwd_conn *c)
{
    return c != NULL ? (wsfwd_state)c->state : WSFWD_STATE_CLOSED;
}

wsfwd_role wsfwd_conn_role(const wsfwd_conn *c)
{
    return c != NULL ? (wsfwd_role)c->role : WSFWD_ROLE_SERVER;
}

bool wsfwd_conn_is_done(const wsfwd_conn *c)
{
    return c == NULL || (c->state == WSFWD_STATE_CLOSED && c->out.bytes == 0);
}

const char *wsfwd_conn_subprotocol(const wsfwd_conn *c)
{
    return c != NULL && c->subprotocol != NULL ? c->subprotocol : "";
}

void *wsfwd_conn_user_data(const wsfwd_conn *c)
{
    return c != NULL ? c->user_data : NULL;
}

void wsfwd_conn_set_user_data(wsfwd_conn *c, void *user_data)
{
    if (c != NULL) {
        c->user_data = user_data;
    }
}

void wsfwd_conn_id(const wsfwd_conn *c, char out[WSFWD_ID_LEN + 1])
{
    if (c == NULL) {
        out[0] = '\0';
        return;
    }
    /* 128 bits of SipHash-2-4 of the serial under the config's random key: as good as random
       bytes to anyone without the key (the serials differ, so equal ids take a collision of
       the hash). 8 bytes in the connection instead of 16. */
    uint8_t b[16];
    for (uint64_t half = 0; half < 2; half++) {
        uint64_t in[2] = {c->serial, half};
        uint64_t h = wsfwd_siphash(c->cfg->id_key, in, sizeof in, 2, 4);
        memcpy(b + 8 * half, &h, sizeof h);
    }
    wsfwd_uuid_v4(b);
    wsfwd_uuid_format(b, out);
}
