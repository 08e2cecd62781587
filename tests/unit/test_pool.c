/*
 * The hub and its pools: lifetime and limits, names, connection ids, broadcast (encode once,
 * one order), messages only to on_message (which may forward them), join/leave callbacks and
 * their reasons, slow readers under both policies, re-entrant callbacks, counters, allocation
 * failures.
 *
 * Every test runs on a counting allocator and ends by checking that nothing is left allocated.
 */
#define _POSIX_C_SOURCE 200809L /* strtok_r */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support.h"
#include "wsfwd.h"

/* ---- Deterministic randomness -------------------------------------------------------------- */

typedef struct det_random {
    uint64_t seed;
    uint64_t pos; /* bytes produced so far */
    uint64_t calls;
} det_random;

/* Byte number pos of the stream for a seed: a position hash, so windows never repeat. */
static uint8_t det_byte(uint64_t seed, uint64_t pos)
{
    uint64_t z = seed * 0x9e3779b97f4a7c15u + pos + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (uint8_t)(z ^ (z >> 31));
}

static int det_random_fn(void *buf, size_t len, void *ud)
{
    det_random *r = ud;
    uint8_t *p = buf;
    r->calls++;
    for (size_t i = 0; i < len; i++) {
        p[i] = det_byte(r->seed, r->pos++);
    }
    return 0;
}

/* ---- The world: a config, a hub, members, an event log, hooks ---------------------------- */

#define MAX_MEMBERS 1100
#define MAX_RX 600

typedef struct rxmsg {
    uint8_t op;
    size_t len;
    char text[48]; /* the payload's start, NUL-terminated */
} rxmsg;

typedef struct member {
    int idx;
    wsfwd_conn *conn; /* NULL once freed */
    rxmsg *rx;        /* messages received, in order */
    size_t nrx;
    size_t pongs;
    unsigned close_code; /* of the close frame it received, 0 for none */
    size_t after_close;  /* frames that came after the close frame (must stay 0) */
    int outputs;         /* on_output calls */
    int closes;          /* on_close calls */
    int close_err;
    unsigned close_cb_code;
    int leaves;     /* on_leave calls */
    int last_leave; /* reason of the last one */
    int joins;
    int flow[4];      /* on_flow calls, by wsfwd_flow event */
    bool forward;     /* on_message broadcasts its messages to its pool, except to it */
    bool echo;        /* on_message sends its messages back to it */
    int echo_blocked; /* echoes refused with WSFWD_ERR_WOULD_BLOCK */
} member;

enum cb { CB_OUTPUT, CB_LEAVE, CB_CLOSE, CB_MESSAGE, CB_JOIN, CB_FLOW, CB_REQUEST, CB_OPEN };

typedef struct world world;
typedef void (*hook_fn)(world *w, enum cb where, member *m, int arg);

struct world {
    test_alloc ca;
    det_random rnd;
    wsfwd_config *cfg;
    wsfwd_hub *hub;
    member *m[MAX_MEMBERS];
    int n;
    char ev[1 << 14]; /* J<i>| L<i>:<reason>| C<i>:<code>| */
    size_t ev_len;
    char order[1 << 15]; /* every message a forwarding sender saw, in order: "<text>|" */
    size_t order_len;
    char flog[1 << 15]; /* on_flow events: P<i>| R<i>| G<i>| (congested) D<i>| (drained) */
    size_t flog_len;
    hook_fn hook;
    int hook_state;
    bool in_broadcast;
    bool drain_on_output; /* drain a member as soon as it signals output */
    bool fail_open;       /* on_open returns non-zero */
};

static void evf(world *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->ev + w->ev_len, sizeof w->ev - w->ev_len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof w->ev - w->ev_len);
    w->ev_len += (size_t)n;
}

static member *mem_of(wsfwd_conn *c)
{
    return wsfwd_conn_user_data(c);
}

/* ---- Receiving: drain a member's output as a socket would and parse the frames ----------- */

static uint8_t drain_buf[1 << 21];

/* Parse server-to-client frames: whole messages, unmasked; a close frame ends the stream. */
static void parse_into(member *m, const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        wsfwd_frame_header fh;
        assert_int_equal(wsfwd_frame_parse_header(p + off, len - off, WSFWD_ROLE_CLIENT, &fh),
                         WSFWD_OK);
        assert_false(fh.masked);
        assert_true(fh.fin); /* messages are forwarded whole, never as fragments */
        assert_true(fh.payload_len <= len - off - fh.header_len);
        const uint8_t *pl = p + off + fh.header_len;
        size_t pn = (size_t)fh.payload_len;
        if (m->close_code != 0) {
            m->after_close++;
        } else if (fh.opcode == WSFWD_OP_CLOSE) {
            m->close_code = pn >= 2 ? (unsigned)(pl[0] << 8 | pl[1]) : 1005;
        } else if (fh.opcode == WSFWD_OP_PONG) {
            m->pongs++;
        } else {
            assert_true(fh.opcode == WSFWD_OP_TEXT || fh.opcode == WSFWD_OP_BINARY);
            if (m->rx == NULL) {
                m->rx = calloc(MAX_RX, sizeof *m->rx);
                assert_non_null(m->rx);
            }
            assert_true(m->nrx < MAX_RX);
            rxmsg *r = &m->rx[m->nrx++];
            r->op = fh.opcode;
            r->len = pn;
            size_t k = pn < sizeof r->text - 1 ? pn : sizeof r->text - 1;
            memcpy(r->text, pl, k);
            r->text[k] = '\0';
        }
        off += fh.header_len + pn;
    }
}

static void drain_member(member *m)
{
    if (m->conn == NULL) {
        return;
    }
    size_t n = test_drain(m->conn, drain_buf, sizeof drain_buf);
    parse_into(m, drain_buf, n);
}

static void drain_all(world *w)
{
    for (int i = 0; i < w->n; i++) {
        drain_member(w->m[i]);
    }
}

/* ---- Callbacks ----------------------------------------------------------------------------- */

/* Add a message to the global order. */
static void note_order(world *w, const uint8_t *data, size_t len)
{
    size_t k = len < 47 ? len : 47;
    int n = snprintf(w->order + w->order_len, sizeof w->order - w->order_len, "%.*s|", (int)k,
                     (const char *)data);
    assert_true(n > 0 && (size_t)n < sizeof w->order - w->order_len);
    w->order_len += (size_t)n;
}

/*
 * What an embedder's on_message does to forward or echo (the library does neither). The
 * broadcast's callbacks may close or free the sender: then it records nothing. Non-zero fails
 * the sender (WSFWD_ERR_CALLBACK): a broadcast that failed (no memory).
 */
static int cb_message(wsfwd_conn *c, wsfwd_opcode op, const uint8_t *data, size_t len, void *ud)
{
    world *w = ud;
    member *m = mem_of(c);
    if (m->forward && wsfwd_conn_pool(c) != NULL) {
        int rc = wsfwd_pool_broadcast(wsfwd_conn_pool(c), op, data, len, c, NULL);
        if (m->conn == NULL || wsfwd_conn_state(c) != WSFWD_STATE_OPEN) {
            return 0;
        }
        if (rc != WSFWD_OK) {
            return -1;
        }
    }
    if (m->echo) {
        int rc = wsfwd_conn_send(c, op, data, len);
        if (rc == WSFWD_ERR_WOULD_BLOCK) {
            m->echo_blocked++;
        } else if (rc != WSFWD_OK) {
            return -1;
        }
    }
    note_order(w, data, len);
    if (w->hook != NULL) {
        w->hook(w, CB_MESSAGE, m, 0);
    }
    return 0;
}

static void cb_close(wsfwd_conn *c, uint16_t code, const char *reason, size_t reason_len, int err,
                     void *ud)
{
    world *w = ud;
    (void)reason;
    (void)reason_len;
    member *m = mem_of(c);
    m->closes++;
    m->close_err = err;
    m->close_cb_code = code;
    evf(w, "C%d:%u|", m->idx, code);
    if (w->hook != NULL) {
        w->hook(w, CB_CLOSE, m, code);
    }
}

static void cb_output(wsfwd_conn *c, void *ud)
{
    world *w = ud;
    member *m = mem_of(c);
    m->outputs++;
    if (w->drain_on_output) {
        drain_member(m);
    }
    if (w->hook != NULL) {
        w->hook(w, CB_OUTPUT, m, 0);
    }
}

static void cb_join(wsfwd_pool *pool, wsfwd_conn *c, void *ud)
{
    world *w = ud;
    member *m = mem_of(c);
    assert_ptr_equal(wsfwd_conn_pool(c), pool);
    m->joins++;
    evf(w, "J%d|", m->idx);
    if (w->hook != NULL) {
        w->hook(w, CB_JOIN, m, 0);
    }
}

static void cb_leave(wsfwd_pool *pool, wsfwd_conn *c, wsfwd_leave_reason reason, void *ud)
{
    world *w = ud;
    (void)pool;
    member *m = mem_of(c);
    m->leaves++;
    m->last_leave = (int)reason;
    evf(w, "L%d:%d|", m->idx, (int)reason);
    if (w->hook != NULL) {
        w->hook(w, CB_LEAVE, m, (int)reason);
    }
}

/* hook's arg: the wsfwd_flow event. */
static void cb_flow(wsfwd_conn *c, wsfwd_flow event, void *ud)
{
    world *w = ud;
    member *m = mem_of(c);
    assert_true((int)event >= 0 && (int)event < 4);
    m->flow[event]++;
    static const char letters[] = "PRGD";
    int n = snprintf(w->flog + w->flog_len, sizeof w->flog - w->flog_len, "%c%d|", letters[event],
                     m->idx);
    assert_true(n > 0 && (size_t)n < sizeof w->flog - w->flog_len);
    w->flog_len += (size_t)n;
    if (w->hook != NULL) {
        w->hook(w, CB_FLOW, m, (int)event);
    }
}

static int cb_request(wsfwd_conn *c, const wsfwd_request *req, void *ud)
{
    world *w = ud;
    (void)req;
    if (w->hook != NULL) {
        w->hook(w, CB_REQUEST, mem_of(c), 0);
    }
    return 0; /* undecided: the library accepts a valid upgrade */
}

static int cb_open(wsfwd_conn *c, void *ud)
{
    world *w = ud;
    if (w->hook != NULL) {
        w->hook(w, CB_OPEN, mem_of(c), 0);
    }
    return w->fail_open ? -1 : 0;
}

static world *world_new(void)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    test_alloc_init(&w->ca);
    w->rnd.seed = 42;
    wsfwd_allocator alloc = test_alloc_hooks(&w->ca);
    assert_int_equal(wsfwd_config_new(&alloc, &w->cfg), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_random(w->cfg, det_random_fn, &w->rnd), WSFWD_OK);
    wsfwd_config_set_user_data(w->cfg, w);
    wsfwd_config_on_request(w->cfg, cb_request);
    wsfwd_config_on_open(w->cfg, cb_open);
    wsfwd_config_on_message(w->cfg, cb_message);
    wsfwd_config_on_close(w->cfg, cb_close);
    wsfwd_config_on_output(w->cfg, cb_output);
    wsfwd_config_on_flow(w->cfg, cb_flow);
    assert_int_equal(wsfwd_hub_new(w->cfg, &w->hub), WSFWD_OK);
    wsfwd_hub_set_user_data(w->hub, w);
    wsfwd_hub_on_join(w->hub, cb_join);
    wsfwd_hub_on_leave(w->hub, cb_leave);
    return w;
}

/* A new server member still in its handshake (not in a pool). */
static member *add_handshaking(world *w)
{
    assert_true(w->n < MAX_MEMBERS);
    member *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->idx = w->n;
    m->last_leave = -1;
    w->m[w->n++] = m;
    assert_int_equal(wsfwd_conn_new(w->cfg, WSFWD_ROLE_SERVER, m, &m->conn), WSFWD_OK);
    return m;
}

/* A new open server member (not in a pool). */
static member *add_member(world *w)
{
    member *m = add_handshaking(w);
    assert_int_equal(wsfwd_conn_set_open(m->conn), WSFWD_OK);
    return m;
}

static void join(world *w, member *m, const char *name)
{
    assert_int_equal(wsfwd_hub_join(w->hub, m->conn, name, strlen(name)), WSFWD_OK);
}

/* A new open member, joined to pool `name`. */
static member *add_joined(world *w, const char *name)
{
    member *m = add_member(w);
    join(w, m, name);
    return m;
}

static wsfwd_pool *find(world *w, const char *name)
{
    return wsfwd_hub_find(w->hub, name, strlen(name));
}

static void free_member(member *m)
{
    if (m->conn != NULL) {
        wsfwd_conn *c = m->conn;
        m->conn = NULL;
        wsfwd_conn_free(c);
    }
}

static void world_free(world *w)
{
    w->hook = NULL;
    w->drain_on_output = false;
    for (int i = 0; i < w->n; i++) {
        free_member(w->m[i]);
    }
    wsfwd_hub_free(w->hub);
    wsfwd_config_free(w->cfg);
    assert_int_equal(w->ca.live, 0); /* every path freed what it took */
    for (int i = 0; i < w->n; i++) {
        free(w->m[i]->rx);
        free(w->m[i]);
    }
    free(w);
}

/* The member sends one whole text message to the server. */
static int send_text(member *m, const char *text)
{
    uint8_t buf[512];
    size_t n = test_client_frame(buf, true, WSFWD_OP_TEXT, text, strlen(text));
    return test_feed(m->conn, buf, n);
}

static size_t count_rx(const member *m, const char *text)
{
    size_t k = 0;
    for (size_t i = 0; i < m->nrx; i++) {
        /* rx keeps a message's first 47 bytes; compare those and the length */
        if (strncmp(m->rx[i].text, text, 47) == 0 && m->rx[i].len == strlen(text)) {
            k++;
        }
    }
    return k;
}

static void broadcast(wsfwd_pool *p, const char *text, const member *except, size_t expect)
{
    size_t delivered = 12345;
    assert_int_equal(wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, text, strlen(text),
                                          except != NULL ? except->conn : NULL, &delivered),
                     WSFWD_OK);
    assert_int_equal(delivered, expect);
}

/* ---- Lifetime, names, limits ------------------------------------------------------------- */

static void test_pool_lifetime(void **state)
{
    (void)state;
    world *w = world_new();
    member *a = add_member(w);
    member *b = add_member(w);
    assert_null(find(w, "room"));
    assert_null(wsfwd_conn_pool(a->conn));

    join(w, a, "room");
    wsfwd_pool *p = find(w, "room");
    assert_non_null(p);
    assert_ptr_equal(wsfwd_conn_pool(a->conn), p);
    assert_ptr_equal(wsfwd_pool_hub(p), w->hub);
    wsfwd_str name = wsfwd_pool_name(p);
    assert_int_equal(name.len, 4);
    assert_memory_equal(name.ptr, "room", 4);
    assert_int_equal(wsfwd_pool_size(p), 1);

    join(w, b, "room");
    assert_ptr_equal(find(w, "room"), p);
    assert_int_equal(wsfwd_pool_size(p), 2);
    assert_string_equal(w->ev, "J0|J1|");

    wsfwd_conn_leave(a->conn);
    assert_null(wsfwd_conn_pool(a->conn));
    assert_int_equal(wsfwd_pool_size(p), 1);
    assert_ptr_equal(find(w, "room"), p);
    wsfwd_conn_leave(a->conn); /* in no pool: nothing */
    assert_string_equal(w->ev, "J0|J1|L0:0|");

    wsfwd_conn_leave(b->conn); /* the last member leaves: the pool is freed */
    assert_null(find(w, "room"));
    wsfwd_stats st;
    wsfwd_hub_stats(w->hub, &st, sizeof st);
    assert_int_equal(st.pools, 0);
    assert_int_equal(st.members, 0);

    /* A kept pool lives while empty, until released. */
    wsfwd_pool *k = NULL;
    assert_int_equal(wsfwd_hub_acquire(w->hub, "kept", 4, &k), WSFWD_OK);
    assert_non_null(k);
    assert_int_equal(wsfwd_pool_size(k), 0);
    wsfwd_pool *k2 = NULL;
    assert_int_equal(wsfwd_hub_acquire(w->hub, "kept", 4, &k2), WSFWD_OK);
    assert_ptr_equal(k2, k);
    assert_int_equal(wsfwd_pool_join(k, a->conn), WSFWD_OK);
    assert_ptr_equal(wsfwd_conn_pool(a->conn), k);
    wsfwd_conn_leave(a->conn);
    assert_ptr_equal(find(w, "kept"), k);
    wsfwd_hub_stats(w->hub, &st, sizeof st);
    assert_int_equal(st.pools, 1);
    wsfwd_pool_release(k); /* empty: freed now */
    assert_null(find(w, "kept"));
    wsfwd_hub_stats(w->hub, &st, sizeof st);
    assert_int_equal(st.pools, 0);

    /* Released while it has members: freed when the last one leaves. */
    assert_int_equal(wsfwd_hub_acquire(w->hub, "kept", 4, &k), WSFWD_OK);
    assert_int_equal(wsfwd_pool_join(k, a->conn), WSFWD_OK);
    assert_int_equal(wsfwd_pool_join(k, b->conn), WSFWD_OK);
    wsfwd_pool_release(k);
    assert_ptr_equal(find(w, "kept"), k);
    wsfwd_conn_leave(a->conn);
    assert_ptr_equal(find(w, "kept"), k);
    wsfwd_conn_leave(b->conn);
    assert_null(find(w, "kept"));

    /* A pool first joined and then asked for with wsfwd_hub_acquire is kept too. */
    join(w, a, "both");
    assert_int_equal(wsfwd_hub_acquire(w->hub, "both", 4, &k), WSFWD_OK);
    assert_ptr_equal(k, find(w, "both"));
    wsfwd_conn_leave(a->conn);
    assert_ptr_equal(find(w, "both"), k);
    wsfwd_pool_release(k);
    assert_null(find(w, "both"));
    world_free(w);
}

static void test_pool_names(void **state)
{
    (void)state;
    world *w = world_new();
    member *a = add_member(w);
    wsfwd_pool *p = NULL;

    char name[200];
    memset(name, 'n', sizeof name);
    assert_int_equal(wsfwd_hub_join(w->hub, a->conn, name, 128), WSFWD_OK);
    assert_int_equal(wsfwd_pool_name(wsfwd_conn_pool(a->conn)).len, 128);
    wsfwd_conn_leave(a->conn);
    assert_int_equal(wsfwd_hub_join(w->hub, a->conn, name, 129), WSFWD_ERR_POOL_NAME);
    assert_null(wsfwd_conn_pool(a->conn));
    assert_int_equal(wsfwd_hub_acquire(w->hub, name, 129, &p), WSFWD_ERR_POOL_NAME);
    assert_null(wsfwd_hub_find(w->hub, name, 129));
    assert_int_equal(wsfwd_hub_join(w->hub, a->conn, "", 0), WSFWD_ERR_POOL_NAME);
    assert_int_equal(wsfwd_hub_acquire(w->hub, "", 0, &p), WSFWD_ERR_POOL_NAME);

    static const char *bad[] = {
        "\xff", "a\x80", "\xc0\x80", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ok\xc3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(wsfwd_hub_join(w->hub, a->conn, bad[i], strlen(bad[i])),
                         WSFWD_ERR_POOL_NAME);
        assert_int_equal(wsfwd_hub_acquire(w->hub, bad[i], strlen(bad[i]), &p),
                         WSFWD_ERR_POOL_NAME);
    }
    wsfwd_stats st;
    wsfwd_hub_stats(w->hub, &st, sizeof st);
    assert_int_equal(st.pools, 0);

    /* Names are bytes: an embedded NUL is valid UTF-8 and part of the name. */
    member *b = add_member(w);
    member *c = add_member(w);
    assert_int_equal(wsfwd_hub_join(w->hub, a->conn, "a\0b", 3), WSFWD_OK);
    assert_int_equal(wsfwd_hub_join(w->hub, b->conn, "a", 1), WSFWD_OK);
    assert_int_equal(wsfwd_hub_join(w->hub, c->conn, "a\0c", 3), WSFWD_OK);
    wsfwd_pool *pab = wsfwd_hub_find(w->hub, "a\0b", 3);
    assert_non_null(pab);
    assert_ptr_equal(wsfwd_conn_pool(a->conn), pab);
    assert_ptr_not_equal(wsfwd_conn_pool(b->conn), pab);
    assert_ptr_not_equal(wsfwd_conn_pool(c->conn), pab);
    assert_ptr_not_equal(wsfwd_conn_pool(b->conn), wsfwd_conn_pool(c->conn));
    assert_int_equal(wsfwd_pool_name(pab).len, 3);
    assert_memory_equal(wsfwd_pool_name(pab).ptr, "a\0b", 3);
    assert_null(wsfwd_hub_find(w->hub, "a\0b", 2)); /* "a\0" */
    assert_ptr_equal(wsfwd_hub_find(w->hub, "a", 1), wsfwd_conn_pool(b->conn));

    /* Multi-byte UTF-8 is counted in bytes: "é" is 2 bytes. */
    assert_int_equal(wsfwd_hub_set_max_name(w->hub, 4), WSFWD_OK);
    assert_int_equal(wsfwd_hub_join(w->hub, a->conn, "\xc3\xa9\xc3\xa9", 4), WSFWD_OK);
    assert_int_equal(wsfwd_hub_join(w->hub, a->conn, "\xc3\xa9\xc3\xa9x", 5), WSFWD_ERR_POOL_NAME);
    assert_int_equal(wsfwd_hub_set_max_name(w->hub, 0), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_hub_set_max_name(w->hub, 1000), WSFWD_OK);
    memset(name, 'x', sizeof name);
    assert_int_equal(wsfwd_hub_join(w->hub, a->conn, name, 200), WSFWD_OK);
    world_free(w);
}

static void test_pool_limits(void **state)
{
    (void)state;
    world *w = world_new();
    member *m[5];
    for (int i = 0; i < 5; i++) {
        m[i] = add_member(w);
    }
    assert_int_equal(wsfwd_hub_set_max_pools(w->hub, 2), WSFWD_OK);
    join(w, m[0], "p1");
    wsfwd_pool *k = NULL;
    assert_int_equal(wsfwd_hub_acquire(w->hub, "p2", 2, &k), WSFWD_OK);
    assert_int_equal(wsfwd_hub_join(w->hub, m[1]->conn, "p3", 2), WSFWD_ERR_POOL_LIMIT);
    assert_null(wsfwd_conn_pool(m[1]->conn));
    assert_int_equal(wsfwd_hub_acquire(w->hub, "p3", 2, &k), WSFWD_ERR_POOL_LIMIT);
    assert_null(find(w, "p3"));
    /* Existing pools can still be joined. */
    join(w, m[1], "p1");
    join(w, m[2], "p2");
    /* Once a pool is gone, a new one fits. */
    wsfwd_conn_leave(m[0]->conn);
    wsfwd_conn_leave(m[1]->conn);
    assert_null(find(w, "p1"));
    join(w, m[1], "p3");
    wsfwd_stats st;
    wsfwd_hub_stats(w->hub, &st, sizeof st);
    assert_int_equal(st.pools, 2);
    assert_int_equal(wsfwd_hub_set_max_pools(w->hub, 0), WSFWD_OK); /* no cap */
    join(w, m[0], "p4");
    join(w, m[3], "p5");
    wsfwd_conn_leave(m[0]->conn);
    wsfwd_conn_leave(m[1]->conn);
    wsfwd_conn_leave(m[2]->conn);
    wsfwd_conn_leave(m[3]->conn);

    /* Members per pool. */
    assert_int_equal(wsfwd_hub_set_max_members(w->hub, 2), WSFWD_OK);
    join(w, m[0], "full");
    join(w, m[1], "full");
    assert_int_equal(wsfwd_hub_join(w->hub, m[2]->conn, "full", 4), WSFWD_ERR_POOL_FULL);
    assert_null(wsfwd_conn_pool(m[2]->conn));
    wsfwd_pool *full = find(w, "full");
    assert_int_equal(wsfwd_pool_join(full, m[2]->conn), WSFWD_ERR_POOL_FULL);
    assert_int_equal(wsfwd_pool_size(full), 2);
    wsfwd_conn_leave(m[1]->conn);
    join(w, m[2], "full");
    assert_int_equal(wsfwd_pool_size(full), 2);
    assert_int_equal(wsfwd_hub_set_max_members(w->hub, 0), WSFWD_OK);
    join(w, m[3], "full");
    join(w, m[4], "full");
    assert_int_equal(wsfwd_pool_size(full), 4);
    world_free(w);
}

static void test_join_moves_and_errors(void **state)
{
    (void)state;
    world *w = world_new();
    member *a = add_member(w);
    member *b = add_member(w);
    join(w, a, "one");
    join(w, b, "one");
    wsfwd_pool *one = find(w, "one");
    join(w, a, "two");
    wsfwd_pool *two = find(w, "two");
    assert_non_null(two);
    assert_ptr_equal(wsfwd_conn_pool(a->conn), two);
    assert_int_equal(wsfwd_pool_size(one), 1);
    assert_int_equal(wsfwd_pool_size(two), 1);
    assert_string_equal(w->ev, "J0|J1|L0:0|J0|");
    /* The first pool empties and is freed by the move. */
    join(w, b, "two");
    assert_null(find(w, "one"));
    assert_int_equal(wsfwd_pool_size(two), 2);
    assert_int_equal(a->last_leave, WSFWD_LEAVE_REQUESTED);
    assert_int_equal(b->last_leave, WSFWD_LEAVE_REQUESTED);

    /* A client-role connection cannot join. */
    wsfwd_conn *client = NULL;
    member cm = {0};
    cm.idx = 99;
    assert_int_equal(wsfwd_conn_new(w->cfg, WSFWD_ROLE_CLIENT, &cm, &client), WSFWD_OK);
    assert_int_equal(wsfwd_hub_join(w->hub, client, "two", 3), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_pool_join(two, client), WSFWD_ERR_INVALID);
    assert_null(wsfwd_conn_pool(client));
    wsfwd_conn_free(client);

    /* A closing or closed connection cannot join. */
    member *c = add_member(w);
    assert_int_equal(wsfwd_conn_close(c->conn, 1000, NULL, 0), WSFWD_OK);
    assert_int_equal(wsfwd_hub_join(w->hub, c->conn, "two", 3), WSFWD_ERR_STATE);
    assert_int_equal(wsfwd_pool_join(two, c->conn), WSFWD_ERR_STATE);
    member *d = add_member(w);
    uint8_t bad[] = {0x81, 0x00}; /* unmasked from a client: fails with 1002, CLOSED */
    assert_int_equal(test_feed(d->conn, bad, sizeof bad), WSFWD_ERR_MASK);
    assert_int_equal(wsfwd_conn_state(d->conn), WSFWD_STATE_CLOSED);
    assert_int_equal(wsfwd_hub_join(w->hub, d->conn, "two", 3), WSFWD_ERR_STATE);
    assert_null(wsfwd_conn_pool(d->conn));
    assert_null(find(w, "x"));

    /* Bad arguments. */
    wsfwd_hub *h = NULL;
    assert_int_equal(wsfwd_hub_new(NULL, &h), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_hub_join(w->hub, NULL, "two", 3), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_pool_broadcast(two, WSFWD_OP_TEXT, "x", 1, NULL, NULL), WSFWD_OK);
    wsfwd_hub_free(NULL);
    world_free(w);
}

/* Joining while the handshake runs is allowed, but only open members receive. */
static void test_only_open_members_receive(void **state)
{
    (void)state;
    world *w = world_new();
    member *a = add_member(w);
    member *h = add_handshaking(w);
    join(w, a, "r");
    assert_int_equal(wsfwd_hub_join(w->hub, h->conn, "r", 1), WSFWD_OK);
    wsfwd_pool *p = find(w, "r");
    broadcast(p, "early", NULL, 1);
    assert_int_equal(wsfwd_conn_pending(h->conn), 0);
    assert_int_equal(wsfwd_conn_set_open(h->conn), WSFWD_OK);
    broadcast(p, "late", NULL, 2);
    drain_all(w);
    assert_int_equal(a->nrx, 2);
    assert_int_equal(h->nrx, 1);
    assert_string_equal(h->rx[0].text, "late");
    world_free(w);
}

/* ---- Iteration ------------------------------------------------------------------------------ */

static int count_pool(wsfwd_pool *p, void *ud)
{
    int *seen = ud;
    wsfwd_str n = wsfwd_pool_name(p);
    assert_int_equal(n.len, 2);
    seen[n.ptr[1] - '0']++;
    return 0;
}

static int stop_at_second(wsfwd_pool *p, void *ud)
{
    (void)p;
    int *calls = ud;
    return ++*calls == 2 ? 77 : 0;
}

static int count_member(wsfwd_conn *c, void *ud)
{
    int *seen = ud;
    seen[mem_of(c)->idx]++;
    return 0;
}

static world *g_world;

/* Leaves every member it visits and frees the next one: members may go during iteration. */
static int leave_and_free_next(wsfwd_conn *c, void *ud)
{
    int *visits = ud;
    (*visits)++;
    member *m = mem_of(c);
    wsfwd_conn_leave(c);
    if (m->idx + 1 < g_world->n) {
        free_member(g_world->m[m->idx + 1]);
    }
    return 0;
}

static int leave_member(wsfwd_conn *c, void *ud)
{
    (void)ud;
    wsfwd_conn_leave(c);
    return 0;
}

static int empty_pool(wsfwd_pool *p, void *ud)
{
    int *calls = ud;
    (*calls)++;
    assert_int_equal(wsfwd_pool_size(p), 2);
    assert_int_equal(wsfwd_pool_foreach(p, leave_member, NULL), 0);
    return 0;
}

static void test_foreach(void **state)
{
    (void)state;
    world *w = world_new();
    g_world = w;
    member *m[6];
    for (int i = 0; i < 6; i++) {
        m[i] = add_member(w);
    }
    char name[3] = "p0";
    for (int i = 0; i < 3; i++) {
        name[1] = (char)('0' + i);
        join(w, m[2 * i], name);
        join(w, m[2 * i + 1], name);
    }
    int seen[3] = {0};
    assert_int_equal(wsfwd_hub_foreach(w->hub, count_pool, seen), 0);
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);
    assert_int_equal(seen[2], 1);
    int calls = 0;
    assert_int_equal(wsfwd_hub_foreach(w->hub, stop_at_second, &calls), 77);
    assert_int_equal(calls, 2);

    for (int i = 0; i < 6; i++) {
        wsfwd_conn_leave(m[i]->conn);
    }
    for (int i = 0; i < 6; i++) {
        join(w, m[i], "all");
    }
    wsfwd_pool *all = find(w, "all");
    int mseen[6] = {0};
    assert_int_equal(wsfwd_pool_foreach(all, count_member, mseen), 0);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(mseen[i], 1);
    }
    int visits = 0;
    wsfwd_pool *kept = NULL;
    assert_int_equal(wsfwd_hub_acquire(w->hub, "all", 3, &kept), WSFWD_OK); /* keep it */
    assert_int_equal(wsfwd_pool_foreach(all, leave_and_free_next, &visits), 0);
    assert_true(visits >= 3 && visits <= 6);
    assert_int_equal(wsfwd_pool_size(all), 0);
    wsfwd_pool_release(all);
    assert_null(find(w, "all"));

    /* Not kept: the pool empties, and is freed, during its own iteration. */
    for (int i = 0; i < 6; i += 2) {
        join(w, m[i], "auto");
    }
    visits = 0;
    assert_int_equal(wsfwd_pool_foreach(find(w, "auto"), leave_and_free_next, &visits), 0);
    assert_int_equal(visits, 3);
    assert_null(find(w, "auto"));

    /* hub_foreach whose fn empties (and so frees) the pool it visits. */
    member *x[6];
    for (int i = 0; i < 6; i++) {
        x[i] = add_member(w);
        name[1] = (char)('0' + i % 3);
        join(w, x[i], name);
    }
    calls = 0;
    assert_int_equal(wsfwd_hub_foreach(w->hub, empty_pool, &calls), 0);
    assert_int_equal(calls, 3);
    wsfwd_stats st;
    wsfwd_hub_stats(w->hub, &st, sizeof st);
    assert_int_equal(st.pools, 0);
    assert_int_equal(st.members, 0);
    world_free(w);
}

/* hub_foreach whose fn empties each pool it visits (freeing it): every pool is still visited
   once, whatever the hash table's layout (tried with many hash keys). */
typedef struct visit_log {
    wsfwd_pool *seen[64];
    int n;
    int dup;
    world *w;
    int joins;
} visit_log;

static int record_and_empty(wsfwd_pool *p, void *ud)
{
    visit_log *v = ud;
    for (int i = 0; i < v->n; i++) {
        v->dup += v->seen[i] == p;
    }
    v->seen[v->n++] = p;
    assert_int_equal(wsfwd_pool_foreach(p, leave_member, NULL), 0);
    return 0;
}

static int record_and_join_new(wsfwd_pool *p, void *ud)
{
    visit_log *v = ud;
    for (int i = 0; i < v->n; i++) {
        v->dup += v->seen[i] == p;
    }
    assert_true(v->n < 64);
    v->seen[v->n++] = p;
    if (v->joins < 12) {
        char name[16];
        snprintf(name, sizeof name, "new%d", v->joins++);
        join(v->w, add_member(v->w), name);
    }
    return 0;
}

static void test_hub_foreach_while_pools_come_and_go(void **state)
{
    (void)state;
    enum { NP = 12 };
    int bad_leave = 0;
    int bad_join = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        world *w = world_new();
        w->rnd.seed = seed * 7919;
        /* A fresh hub keyed from this seed. */
        wsfwd_hub_free(w->hub);
        w->rnd.pos = 0;
        assert_int_equal(wsfwd_config_set_random(w->cfg, det_random_fn, &w->rnd), WSFWD_OK);
        assert_int_equal(wsfwd_hub_new(w->cfg, &w->hub), WSFWD_OK);
        wsfwd_hub_set_user_data(w->hub, w);
        for (int i = 0; i < NP; i++) {
            char name[16];
            snprintf(name, sizeof name, "room%d", i);
            join(w, add_member(w), name);
        }
        visit_log v = {0};
        v.w = w;
        assert_int_equal(wsfwd_hub_foreach(w->hub, record_and_empty, &v), 0);
        if (v.n != NP || v.dup != 0) {
            bad_leave++;
        }
        /* Same layout again; this time fn joins members to new pools (the table grows). */
        for (int i = 0; i < NP; i++) {
            char name[16];
            snprintf(name, sizeof name, "room%d", i);
            join(w, w->m[i], name);
        }
        visit_log j = {0};
        j.w = w;
        assert_int_equal(wsfwd_hub_foreach(w->hub, record_and_join_new, &j), 0);
        int originals = 0;
        for (int i = 0; i < j.n; i++) {
            wsfwd_str nm = wsfwd_pool_name(j.seen[i]);
            originals += nm.len >= 4 && memcmp(nm.ptr, "room", 4) == 0;
        }
        if (originals != NP || j.dup != 0) {
            bad_join++;
        }
        world_free(w);
    }
    print_message("hub_foreach: %d of 40 layouts skipped or repeated a pool when fn emptied "
                  "pools, %d when fn made new pools\n",
                  bad_leave, bad_join);
    assert_int_equal(bad_leave, 0);
    assert_int_equal(bad_join, 0);
}

/* A member that joined during its handshake and whose handshake then fails leaves the pool:
   it is closed and will never be open. */
static void test_refused_handshake_leaves_pool(void **state)
{
    (void)state;
    world *w = world_new();
    member *a = add_member(w);
    join(w, a, "r");
    member *h = add_handshaking(w);
    join(w, h, "r");
    wsfwd_pool *p = find(w, "r");
    assert_int_equal(wsfwd_pool_size(p), 2);
    const char *bad = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"; /* not an upgrade: 400 */
    assert_int_not_equal(test_feed(h->conn, (const uint8_t *)bad, strlen(bad)), WSFWD_OK);
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_CLOSED);
    assert_null(wsfwd_conn_pool(h->conn));
    assert_int_equal(h->last_leave, WSFWD_LEAVE_CLOSED);
    assert_int_equal(wsfwd_pool_size(p), 1);
    world_free(w);
}

/* ---- Connection ids ------------------------------------------------------------------------- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    return -1;
}

/* Check the text form of a version 4 UUID and return its 16 bytes. */
static void check_uuid(const char id[WSFWD_ID_LEN + 1], uint8_t bytes[16])
{
    assert_int_equal(strlen(id), WSFWD_ID_LEN);
    size_t k = 0;
    for (int i = 0; i < WSFWD_ID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            assert_int_equal(id[i], '-');
            continue;
        }
        int v = hexval(id[i]);
        assert_true(v >= 0); /* lowercase hex only */
        if (k % 2 == 0) {
            bytes[k / 2] = (uint8_t)(v << 4);
        } else {
            bytes[k / 2] |= (uint8_t)v;
        }
        k++;
    }
    assert_int_equal(k, 32);
    assert_int_equal(id[14], '4');
    assert_non_null(strchr("89ab", id[19]));
    assert_int_equal(bytes[6] >> 4, 4);
    assert_int_equal(bytes[8] >> 6, 2);
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, WSFWD_ID_LEN + 1);
}

static void test_conn_ids(void **state)
{
    (void)state;
    /* Two configs fed the same deterministic stream give the same ids, in the same order. */
    test_alloc ca;
    test_alloc_init(&ca);
    wsfwd_allocator alloc = test_alloc_hooks(&ca);
    det_random r[3] = {{7, 0, 0}, {7, 0, 0}, {8, 0, 0}};
    wsfwd_config *cfg[3];
    char ids[3][4][WSFWD_ID_LEN + 1];
    for (int k = 0; k < 3; k++) {
        assert_int_equal(wsfwd_config_new(&alloc, &cfg[k]), WSFWD_OK);
        assert_int_equal(wsfwd_config_set_random(cfg[k], det_random_fn, &r[k]), WSFWD_OK);
        for (int i = 0; i < 4; i++) {
            wsfwd_conn *c;
            assert_int_equal(wsfwd_conn_new(cfg[k], WSFWD_ROLE_SERVER, NULL, &c), WSFWD_OK);
            memset(ids[k][i], 'Z', sizeof ids[k][i]);
            wsfwd_conn_id(c, ids[k][i]);
            char again[WSFWD_ID_LEN + 1];
            wsfwd_conn_id(c, again); /* drawn once, when the connection was made */
            assert_string_equal(again, ids[k][i]);
            wsfwd_conn_free(c);
        }
    }
    for (int i = 0; i < 4; i++) {
        assert_string_equal(ids[0][i], ids[1][i]);
        assert_string_not_equal(ids[0][i], ids[2][i]);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(ids[0][i], ids[0][j]);
        }
    }
    /* The first connection drew a 16-byte key from the source (one call: the config reads
       ahead) and the others nothing; no id shows the stream's bytes themselves. */
    assert_int_equal(r[0].calls, 1);
    for (int i = 0; i < 4; i++) {
        uint8_t b[16];
        check_uuid(ids[0][i], b);
        bool raw = true;
        for (int j = 0; j < 16 && raw; j++) {
            raw = j == 6 || j == 8 || b[j] == det_byte(7, (uint64_t)j);
        }
        assert_false(raw);
    }
    /* 20,000 connections of one config, each made after the last was freed: all different. */
    static char seq[20000][WSFWD_ID_LEN + 1];
    for (int i = 0; i < 20000; i++) {
        wsfwd_conn *c;
        assert_int_equal(wsfwd_conn_new(cfg[0], WSFWD_ROLE_SERVER, NULL, &c), WSFWD_OK);
        wsfwd_conn_id(c, seq[i]);
        wsfwd_conn_free(c);
    }
    qsort(seq, 20000, sizeof seq[0], cmp_id);
    for (int i = 1; i < 20000; i++) {
        assert_string_not_equal(seq[i - 1], seq[i]);
    }
    for (int k = 0; k < 3; k++) {
        wsfwd_config_free(cfg[k]);
    }
    assert_int_equal(ca.live, 0);

    /* The OS source: 1000 well-formed ids, all different. */
    wsfwd_config *os;
    assert_int_equal(wsfwd_config_new(NULL, &os), WSFWD_OK);
    static char many[1000][WSFWD_ID_LEN + 1];
    for (int i = 0; i < 1000; i++) {
        wsfwd_conn *c;
        assert_int_equal(wsfwd_conn_new(os, WSFWD_ROLE_SERVER, NULL, &c), WSFWD_OK);
        wsfwd_conn_id(c, many[i]);
        uint8_t b[16];
        check_uuid(many[i], b);
        wsfwd_conn_free(c);
    }
    qsort(many, 1000, sizeof many[0], cmp_id);
    for (int i = 1; i < 1000; i++) {
        assert_string_not_equal(many[i - 1], many[i]);
    }
    wsfwd_config_free(os);
}

static void test_conn_id_random_failure(void **state)
{
    (void)state;
    test_alloc ca;
    test_alloc_init(&ca);
    wsfwd_allocator alloc = test_alloc_hooks(&ca);
    wsfwd_config *cfg;
    assert_int_equal(wsfwd_config_new(&alloc, &cfg), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_random(cfg, test_failing_random, NULL), WSFWD_OK);
    wsfwd_conn *c = NULL;
    int rc = wsfwd_conn_new(cfg, WSFWD_ROLE_SERVER, NULL, &c);
    print_message("wsfwd_conn_new with a failing random source: %s\n", wsfwd_strerror(rc));
    if (rc == WSFWD_OK) {
        /* If the library falls back, the id must still be a well-formed version 4 UUID. */
        char id[WSFWD_ID_LEN + 1];
        uint8_t b[16];
        wsfwd_conn_id(c, id);
        check_uuid(id, b);
        wsfwd_conn_free(c);
    } else {
        assert_int_equal(rc, WSFWD_ERR_RANDOM);
    }
    /* A hub needs no more than what the header promises either. */
    wsfwd_hub *hub = NULL;
    rc = wsfwd_hub_new(cfg, &hub);
    assert_true(rc == WSFWD_OK || rc == WSFWD_ERR_RANDOM);
    wsfwd_hub_free(hub);
    wsfwd_config_free(cfg);
    assert_int_equal(ca.live, 0);
}

/* ---- Broadcast ------------------------------------------------------------------------------ */

static void test_broadcast_basics(void **state)
{
    (void)state;
    world *w = world_new();
    member *m[4];
    for (int i = 0; i < 4; i++) {
        m[i] = add_member(w);
        join(w, m[i], "r");
    }
    wsfwd_pool *p = find(w, "r");
    broadcast(p, "to-all", NULL, 4);
    broadcast(p, "not-1", m[1], 3);
    size_t d = 99;
    assert_int_equal(wsfwd_pool_broadcast(p, WSFWD_OP_BINARY, "\x00\x01\x02", 3, m[2]->conn, &d),
                     WSFWD_OK);
    assert_int_equal(d, 3);
    assert_int_equal(wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, NULL, 0, NULL, NULL), WSFWD_OK);

    /* Only whole data messages. */
    static const int bad_ops[] = {
        WSFWD_OP_PING, WSFWD_OP_PONG, WSFWD_OP_CLOSE, WSFWD_OP_CONTINUATION, 3, 0xB};
    for (size_t i = 0; i < sizeof bad_ops / sizeof bad_ops[0]; i++) {
        d = 99;
        assert_int_equal(wsfwd_pool_broadcast(p, (wsfwd_opcode)bad_ops[i], "x", 1, NULL, &d),
                         WSFWD_ERR_INVALID);
    }
    assert_int_equal(wsfwd_pool_broadcast(NULL, WSFWD_OP_TEXT, "x", 1, NULL, NULL),
                     WSFWD_ERR_INVALID);

    /* The frames on the wire: unmasked server frames carrying the payload. */
    uint8_t out[4096];
    size_t n = test_drain(m[0]->conn, out, sizeof out);
    const uint8_t expect[] = {0x81, 6,   't', 'o', '-',  'a', 'l', 'l', 0x81, 5,    'n',
                              'o',  't', '-', '1', 0x82, 3,   0,   1,   2,    0x81, 0};
    assert_int_equal(n, sizeof expect);
    assert_memory_equal(out, expect, sizeof expect);
    n = test_drain(m[1]->conn, out, sizeof out);
    assert_int_equal(n, 8 + 5 + 2);
    n = test_drain(m[2]->conn, out, sizeof out);
    assert_int_equal(n, 8 + 7 + 2);

    /* Longer payloads: the 16-bit and 64-bit length forms. */
    static uint8_t big[70000];
    for (size_t i = 0; i < sizeof big; i++) {
        big[i] = (uint8_t)(i * 7);
    }
    assert_int_equal(wsfwd_pool_broadcast(p, WSFWD_OP_BINARY, big, 300, NULL, NULL), WSFWD_OK);
    assert_int_equal(wsfwd_pool_broadcast(p, WSFWD_OP_BINARY, big, sizeof big, NULL, NULL),
                     WSFWD_OK);
    static uint8_t o2[80000];
    n = test_drain(m[3]->conn, o2, sizeof o2);
    size_t skip = 8 + 7 + 5 + 2;
    assert_int_equal(n, skip + 4 + 300 + 10 + sizeof big);
    const uint8_t h16[] = {0x82, 126, 0x01, 0x2c};
    assert_memory_equal(o2 + skip, h16, 4);
    assert_memory_equal(o2 + skip + 4, big, 300);
    const uint8_t h64[] = {0x82, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70};
    assert_memory_equal(o2 + skip + 304, h64, 10);
    assert_memory_equal(o2 + skip + 314, big, sizeof big);
    world_free(w);
}

/* Allocation calls in 8 broadcasts to n members, drained after every `every` broadcasts. */
static long allocs_per_broadcast_every(int n, bool check_shared, int every);

static long allocs_per_broadcast(int n, bool check_shared)
{
    return allocs_per_broadcast_every(n, check_shared, 1);
}

static long allocs_per_broadcast_every(int n, bool check_shared, int every)
{
    world *w = world_new();
    for (int i = 0; i < n; i++) {
        join(w, add_member(w), "big");
    }
    wsfwd_pool *p = find(w, "big");
    /* Warm up once with the same pattern, so one-time growth (the pool's member array,
       the config's cache of queue rings) is not counted. */
    for (int r = 0; r < every; r++) {
        broadcast(p, "warm-up", NULL, (size_t)n);
    }
    drain_all(w);
    const int rounds = 8;
    long before = w->ca.allocs;
    static uint8_t payload[100];
    memset(payload, 'p', sizeof payload);
    for (int r = 0; r < rounds; r++) {
        size_t d = 0;
        assert_int_equal(
            wsfwd_pool_broadcast(p, WSFWD_OP_BINARY, payload, sizeof payload, NULL, &d), WSFWD_OK);
        assert_int_equal(d, (size_t)n);
        if (check_shared && r == 0) {
            /* Every member's queue points at the same bytes: encoded once, not copied. */
            const void *first = NULL;
            for (int i = 0; i < n; i++) {
                wsfwd_iovec iov[4];
                assert_int_equal(wsfwd_conn_output(w->m[i]->conn, iov, 4), 1);
                assert_int_equal(iov[0].len, 2 + sizeof payload);
                assert_ptr_not_equal(iov[0].base, payload);
                if (i == 0) {
                    first = iov[0].base;
                } else {
                    assert_ptr_equal(iov[0].base, first);
                }
            }
        }
        if ((r + 1) % every != 0) {
            continue;
        }
        for (int i = 0; i < n; i++) {
            wsfwd_iovec iov[16];
            size_t k = wsfwd_conn_output(w->m[i]->conn, iov, 16);
            size_t sum = 0;
            for (size_t j = 0; j < k; j++) {
                sum += iov[j].len;
            }
            assert_int_equal(sum, (size_t)every * (2 + sizeof payload));
            wsfwd_conn_consume(w->m[i]->conn, sum);
        }
    }
    long calls = w->ca.allocs - before;
    world_free(w);
    return calls;
}

static void test_encode_once(void **state)
{
    (void)state;
    long a10 = allocs_per_broadcast(10, true);
    long a100 = allocs_per_broadcast(100, true);
    long a1000 = allocs_per_broadcast(1000, true);
    print_message("allocations in 8 broadcasts: %ld (10), %ld (100), %ld (1000 members)\n", a10,
                  a100, a1000);
    assert_int_equal(a10, a100);
    assert_int_equal(a10, a1000);
    assert_true(a10 <= 2 * 8);
}

/* Invariant 5 with a backlog: members drained after every 4 broadcasts (a poll loop that
   writes once per turn while several messages arrive in the turn). */
static void test_encode_once_with_backlog(void **state)
{
    (void)state;
    long a10 = allocs_per_broadcast_every(10, false, 4);
    long a100 = allocs_per_broadcast_every(100, false, 4);
    long a1000 = allocs_per_broadcast_every(1000, false, 4);
    print_message("allocations in 8 broadcasts, drained every 4: %ld (10), %ld (100), "
                  "%ld (1000 members)\n",
                  a10, a100, a1000);
    assert_int_equal(a10, a100);
    assert_int_equal(a10, a1000);
}

/* ---- One order ------------------------------------------------------------------------------ */

/* Does the message with this text count as sent by member idx (so idx must not get it)? */
static bool sent_by(const char *text, int idx)
{
    /* "<sender letter>:<seq>:<pad>", sender 'A'+idx, or 'H' (hub, to all) */
    return text[0] == 'A' + idx;
}

static void test_one_order(void **state)
{
    (void)state;
    world *w = world_new();
    enum { N = 7, SENDERS = 3, MSGS = 40 };
    member *m[N];
    for (int i = 0; i < N; i++) {
        m[i] = add_member(w);
        join(w, m[i], "order");
        if (i < SENDERS) {
            m[i]->forward = true;
        }
    }
    wsfwd_pool *p = find(w, "order");

    /* Each sender's byte stream: MSGS messages, some fragmented, with pings between
       fragments. */
    static uint8_t stream[SENDERS][MSGS * 400];
    size_t slen[SENDERS] = {0};
    size_t spos[SENDERS] = {0};
    size_t pings[SENDERS] = {0};
    for (int s = 0; s < SENDERS; s++) {
        for (int k = 0; k < MSGS; k++) {
            char text[200];
            int tl = snprintf(text, sizeof text, "%c:%02d:", 'A' + s, k);
            size_t len = (size_t)tl + (size_t)((k * 37 + s * 11) % 150);
            for (size_t j = (size_t)tl; j < len; j++) {
                text[j] = (char)('a' + (j + (size_t)k) % 26);
            }
            uint8_t *b = stream[s] + slen[s];
            size_t n = 0;
            if (k % 3 == 1 && len > 10) {
                size_t cut = len / 2;
                n += test_client_frame(b + n, false, WSFWD_OP_TEXT, text, cut);
                n += test_client_frame(b + n, true, WSFWD_OP_PING, "pg", 2);
                pings[s]++;
                n += test_client_frame(b + n, true, WSFWD_OP_CONTINUATION, text + cut, len - cut);
            } else {
                n += test_client_frame(b + n, true, k % 4 == 0 ? WSFWD_OP_BINARY : WSFWD_OP_TEXT,
                                       text, len);
            }
            slen[s] += n;
        }
    }

    uint32_t rng = 12345;
    int direct = 0;
    for (;;) {
        bool left = false;
        for (int s = 0; s < SENDERS; s++) {
            left = left || spos[s] < slen[s];
        }
        if (!left) {
            break;
        }
        rng = rng * 1103515245u + 12345u;
        uint32_t r = (rng >> 16) % 10;
        if (r < 7) {
            int s = (int)((rng >> 8) % SENDERS);
            if (spos[s] == slen[s]) {
                continue;
            }
            size_t k = 1 + (rng >> 4) % 60;
            if (k > slen[s] - spos[s]) {
                k = slen[s] - spos[s];
            }
            assert_int_equal(test_feed(m[s]->conn, stream[s] + spos[s], k), WSFWD_OK);
            spos[s] += k;
        } else if (r < 9) {
            /* A direct broadcast, to all or all but one. */
            char text[32];
            int ex = (int)((rng >> 3) % (N + 1)) - 1; /* -1: to all */
            snprintf(text, sizeof text, "%c:d%03d", ex < 0 ? 'H' : 'A' + ex, direct++);
            broadcast(p, text, ex < 0 ? NULL : m[ex], ex < 0 ? N : N - 1);
            note_order(w, (const uint8_t *)text, strlen(text));
        } else {
            drain_member(m[(rng >> 5) % N]);
        }
    }
    drain_all(w);

    /* The global order: every message, as it completed. */
    char *order[MSGS * SENDERS + 400];
    size_t norder = 0;
    char *save = NULL;
    for (char *t = strtok_r(w->order, "|", &save); t != NULL; t = strtok_r(NULL, "|", &save)) {
        order[norder++] = t;
    }
    assert_int_equal(norder, (size_t)(SENDERS * MSGS + direct));

    for (int i = 0; i < N; i++) {
        /* Each receiver: the global order minus its own messages, nothing else. */
        size_t k = 0;
        for (size_t g = 0; g < norder; g++) {
            if (sent_by(order[g], i)) {
                continue;
            }
            assert_true(k < m[i]->nrx);
            assert_string_equal(m[i]->rx[k].text, order[g]);
            k++;
        }
        assert_int_equal(k, m[i]->nrx);
        assert_int_equal(m[i]->pongs, i < SENDERS ? pings[i] : 0);
    }
    /* Pairwise: what two receivers both got, they got in the same order. */
    for (int a = 0; a < N; a++) {
        for (int b = a + 1; b < N; b++) {
            size_t ia = 0;
            size_t ib = 0;
            for (;;) {
                while (ia < m[a]->nrx && sent_by(m[a]->rx[ia].text, b)) {
                    ia++;
                }
                while (ib < m[b]->nrx && sent_by(m[b]->rx[ib].text, a)) {
                    ib++;
                }
                if (ia == m[a]->nrx || ib == m[b]->nrx) {
                    break;
                }
                assert_string_equal(m[a]->rx[ia].text, m[b]->rx[ib].text);
                assert_int_equal(m[a]->rx[ia].len, m[b]->rx[ib].len);
                assert_int_equal(m[a]->rx[ia].op, m[b]->rx[ib].op);
                ia++;
                ib++;
            }
            assert_int_equal(ia, m[a]->nrx);
            assert_int_equal(ib, m[b]->nrx);
        }
    }
    world_free(w);
}

/* ---- Messages go to on_message only ---------------------------------------------------- */

/* The library neither echoes nor forwards a message: on_message alone decides (callback
   contract, docs/api.md section 10: on_message). */
static void test_messages_only_to_on_message(void **state)
{
    (void)state;
    world *w = world_new();
    member *m[3];
    for (int i = 0; i < 3; i++) {
        m[i] = add_member(w);
        join(w, m[i], "r");
    }
    wsfwd_pool *p = find(w, "r");
    assert_int_equal(send_text(m[0], "cb"), WSFWD_OK);
    uint8_t bin[64];
    size_t bn = test_client_frame(bin, true, WSFWD_OP_BINARY, "\x01\x02", 2);
    assert_int_equal(test_feed(m[0]->conn, bin, bn), WSFWD_OK);
    drain_all(w);
    assert_int_equal(m[0]->nrx + m[1]->nrx + m[2]->nrx, 0);
    assert_string_equal(w->order, "cb|\x01\x02|");
    wsfwd_stats st;
    wsfwd_pool_stats(p, &st, sizeof st);
    assert_int_equal(st.messages_in, 0);

    /* Forwarding is the embedder's broadcast, with the sender as except. */
    m[0]->forward = true;
    assert_int_equal(send_text(m[0], "fwd"), WSFWD_OK);
    drain_all(w);
    assert_int_equal(m[0]->nrx, 0);
    assert_int_equal(m[1]->nrx, 1);
    assert_int_equal(m[2]->nrx, 1);
    assert_string_equal(m[1]->rx[0].text, "fwd");
    wsfwd_pool_stats(p, &st, sizeof st);
    assert_int_equal(st.messages_in, 1);
    assert_int_equal(st.messages_out, 2);
    world_free(w);
}

/* ---- Join and leave callbacks: reasons ------------------------------------------------------ */

static void test_leave_reasons(void **state)
{
    (void)state;
    world *w = world_new();
    member *m[6];
    for (int i = 0; i < 6; i++) {
        m[i] = add_member(w);
        join(w, m[i], "r");
    }
    wsfwd_pool *p = find(w, "r");
    w->ev_len = 0;
    w->ev[0] = '\0';

    wsfwd_conn_leave(m[0]->conn); /* requested */
    assert_int_equal(m[0]->last_leave, WSFWD_LEAVE_REQUESTED);

    uint8_t b[64];
    size_t n = test_client_frame(b, true, WSFWD_OP_CLOSE, "\x03\xe8", 2); /* the peer closes */
    assert_int_equal(test_feed(m[1]->conn, b, n), WSFWD_OK);
    assert_int_equal(m[1]->last_leave, WSFWD_LEAVE_CLOSED);
    assert_null(wsfwd_conn_pool(m[1]->conn));

    uint8_t bad[] = {0x81, 0x00}; /* the connection fails: unmasked */
    assert_int_equal(test_feed(m[2]->conn, bad, sizeof bad), WSFWD_ERR_MASK);
    assert_int_equal(m[2]->last_leave, WSFWD_LEAVE_CLOSED);

    assert_int_equal(wsfwd_conn_close(m[3]->conn, 1001, "bye", 3), WSFWD_OK); /* local close */
    assert_int_equal(m[3]->last_leave, WSFWD_LEAVE_CLOSED);
    assert_null(wsfwd_conn_pool(m[3]->conn));

    free_member(m[4]); /* freed */
    assert_int_equal(m[4]->last_leave, WSFWD_LEAVE_FREED);

    assert_int_equal(wsfwd_pool_size(p), 1);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(m[i]->leaves, 1);
    }
    /* on_close and on_leave may come in either order; both come. */
    assert_non_null(strstr(w->ev, "C1:1000|"));
    assert_non_null(strstr(w->ev, "C2:1002|"));
    assert_null(strstr(w->ev, "C3:")); /* a local close waits for the peer's close frame */
    assert_int_equal(m[2]->close_err, WSFWD_ERR_MASK);
    assert_null(strstr(w->ev, "J"));
    world_free(w);
}

/* Freeing the hub takes members out silently; they stay usable. */
static void test_hub_free_keeps_members(void **state)
{
    (void)state;
    world *w = world_new();
    member *a = add_member(w);
    member *b = add_member(w);
    join(w, a, "x");
    join(w, b, "y");
    wsfwd_pool *k = NULL;
    assert_int_equal(wsfwd_hub_acquire(w->hub, "z", 1, &k), WSFWD_OK);
    size_t ev = w->ev_len;
    wsfwd_hub_free(w->hub);
    assert_int_equal(w->ev_len, ev); /* no callbacks */
    assert_null(wsfwd_conn_pool(a->conn));
    assert_null(wsfwd_conn_pool(b->conn));
    assert_int_equal(wsfwd_conn_state(a->conn), WSFWD_STATE_OPEN);
    assert_int_equal(wsfwd_conn_send(a->conn, WSFWD_OP_TEXT, "still", 5), WSFWD_OK);
    wsfwd_conn_leave(a->conn);
    drain_member(a);
    assert_string_equal(a->rx[0].text, "still");
    assert_int_equal(wsfwd_hub_new(w->cfg, &w->hub), WSFWD_OK);
    world_free(w);
}

/* ---- Slow readers --------------------------------------------------------------------------- */

enum { SLOW_Q = 4096, SLOW_MSG = 100, SLOW_ROUNDS = 120, SLOW_N = 5 };

static void slow_text(char *text, int k)
{
    snprintf(text, SLOW_MSG + 1, "%03d:", k);
    memset(text + 4, 'a' + k % 26, SLOW_MSG - 4);
    text[SLOW_MSG] = '\0';
}

static void test_slow_reader_closed(void **state)
{
    (void)state;
    world *w = world_new();
    assert_int_equal(wsfwd_config_set_max_queue(w->cfg, SLOW_Q), WSFWD_OK);
    member *m[SLOW_N];
    for (int i = 0; i < SLOW_N; i++) {
        m[i] = add_member(w);
        join(w, m[i], "r");
    }
    wsfwd_pool *p = find(w, "r");
    size_t frame = 2 + SLOW_MSG;
    size_t total_delivered = 0;
    for (int k = 0; k < SLOW_ROUNDS; k++) {
        char text[SLOW_MSG + 1];
        slow_text(text, k);
        size_t d = 0;
        assert_int_equal(wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, text, SLOW_MSG, NULL, &d),
                         WSFWD_OK);
        total_delivered += d;
        for (int i = 1; i < SLOW_N; i++) {
            drain_member(m[i]);
        }
        /* Bounded: the limit, one message, and a close frame. */
        assert_true(wsfwd_conn_pending(m[0]->conn) <= SLOW_Q + frame + 2 + 125);
    }
    assert_int_equal(wsfwd_conn_state(m[0]->conn), WSFWD_STATE_CLOSED);
    assert_null(wsfwd_conn_pool(m[0]->conn));
    assert_int_equal(m[0]->leaves, 1);
    assert_int_equal(m[0]->last_leave, WSFWD_LEAVE_SLOW);
    assert_int_equal(m[0]->closes, 1);
    assert_int_equal(m[0]->close_cb_code, 1008);
    assert_int_equal(m[0]->close_err, WSFWD_ERR_QUEUE_FULL);
    assert_int_equal(wsfwd_pool_size(p), SLOW_N - 1);

    /* Its output: the messages it had room for, in order, then a close frame with 1008. */
    drain_member(m[0]);
    assert_int_equal(m[0]->close_code, 1008);
    assert_int_equal(m[0]->after_close, 0);
    assert_true(m[0]->nrx > 0 && m[0]->nrx * frame <= SLOW_Q + frame);
    for (size_t k = 0; k < m[0]->nrx; k++) {
        char text[SLOW_MSG + 1];
        slow_text(text, (int)k);
        assert_memory_equal(m[0]->rx[k].text, text, 47);
    }
    assert_true(wsfwd_conn_is_done(m[0]->conn));

    /* The others got everything. */
    for (int i = 1; i < SLOW_N; i++) {
        assert_int_equal(m[i]->nrx, SLOW_ROUNDS);
        assert_int_equal(m[i]->close_code, 0);
        assert_int_equal(wsfwd_conn_state(m[i]->conn), WSFWD_STATE_OPEN);
    }
    wsfwd_stats ps;
    wsfwd_stats hs;
    wsfwd_pool_stats(p, &ps, sizeof ps);
    wsfwd_hub_stats(w->hub, &hs, sizeof hs);
    assert_int_equal(ps.slow_closes, 1);
    assert_int_equal(hs.slow_closes, 1);
    assert_int_equal(ps.slow_drops, 0);
    assert_int_equal(ps.messages_in, SLOW_ROUNDS);
    assert_int_equal(ps.messages_out, total_delivered);
    assert_int_equal(total_delivered, (SLOW_N - 1) * SLOW_ROUNDS + m[0]->nrx);
    assert_int_equal(ps.members, SLOW_N - 1);
    world_free(w);
}

static void test_slow_reader_dropped(void **state)
{
    (void)state;
    world *w = world_new();
    assert_int_equal(wsfwd_config_set_max_queue(w->cfg, SLOW_Q), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_slow_policy(w->cfg, WSFWD_SLOW_DROP), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_slow_policy(w->cfg, (wsfwd_slow_policy)9), WSFWD_ERR_INVALID);
    member *m[SLOW_N];
    for (int i = 0; i < SLOW_N; i++) {
        m[i] = add_member(w);
        join(w, m[i], "r");
    }
    wsfwd_pool *p = find(w, "r");
    size_t frame = 2 + SLOW_MSG;
    size_t total_delivered = 0;
    for (int k = 0; k < SLOW_ROUNDS; k++) {
        char text[SLOW_MSG + 1];
        slow_text(text, k);
        size_t d = 0;
        assert_int_equal(wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, text, SLOW_MSG, NULL, &d),
                         WSFWD_OK);
        assert_true(d == SLOW_N || d == SLOW_N - 1);
        total_delivered += d;
        for (int i = 1; i < SLOW_N; i++) {
            drain_member(m[i]);
        }
        assert_true(wsfwd_conn_pending(m[0]->conn) <= SLOW_Q + frame);
    }
    assert_int_equal(wsfwd_conn_state(m[0]->conn), WSFWD_STATE_OPEN);
    assert_ptr_equal(wsfwd_conn_pool(m[0]->conn), p);
    assert_int_equal(m[0]->leaves, 0);
    assert_int_equal(m[0]->closes, 0);
    drain_member(m[0]);
    size_t got = m[0]->nrx;
    assert_true(got > 0 && got < SLOW_ROUNDS);
    assert_int_equal(m[0]->close_code, 0);
    /* What it got is in order (the first ones, as the queue filled). */
    for (size_t k = 0; k < got; k++) {
        char text[SLOW_MSG + 1];
        slow_text(text, (int)k);
        assert_memory_equal(m[0]->rx[k].text, text, 47);
    }
    wsfwd_stats ps;
    wsfwd_stats hs;
    wsfwd_pool_stats(p, &ps, sizeof ps);
    wsfwd_hub_stats(w->hub, &hs, sizeof hs);
    assert_int_equal(ps.slow_drops, SLOW_ROUNDS - got);
    assert_int_equal(hs.slow_drops, SLOW_ROUNDS - got);
    assert_int_equal(ps.slow_closes, 0);
    assert_int_equal(ps.messages_out, total_delivered);
    assert_int_equal(total_delivered, (SLOW_N - 1) * SLOW_ROUNDS + got);

    /* Drained, it receives again. */
    broadcast(p, "again", NULL, SLOW_N);
    drain_all(w);
    assert_string_equal(m[0]->rx[got].text, "again");
    for (int i = 1; i < SLOW_N; i++) {
        assert_int_equal(m[i]->nrx, SLOW_ROUNDS + 1);
    }
    world_free(w);
}

/* The limit also holds for a forwarding sender's broadcasts; an embedder's echoes are held
   to it by wsfwd_conn_send (WSFWD_ERR_WOULD_BLOCK), which never closes the connection. */
static void test_slow_reader_forward_and_echo(void **state)
{
    (void)state;
    world *w = world_new();
    assert_int_equal(wsfwd_config_set_max_queue(w->cfg, 1024), WSFWD_OK);
    member *s = add_member(w);
    member *r = add_member(w);
    member *e = add_member(w);
    join(w, s, "r");
    join(w, r, "r");
    s->forward = true;
    e->echo = true;
    char text[101];
    memset(text, 'q', 100);
    text[100] = '\0';
    for (int k = 0; k < 30; k++) {
        assert_int_equal(send_text(s, text), WSFWD_OK);
        assert_int_equal(send_text(e, text), WSFWD_OK);
        assert_true(wsfwd_conn_pending(r->conn) <= 1024 + 102 + 127);
        assert_true(wsfwd_conn_pending(e->conn) <= 1024);
    }
    assert_int_equal(r->last_leave, WSFWD_LEAVE_SLOW);
    assert_int_equal(wsfwd_conn_state(e->conn), WSFWD_STATE_OPEN);
    assert_true(e->echo_blocked > 0);
    assert_int_equal(e->closes, 0);
    drain_member(r);
    drain_member(e);
    assert_int_equal(r->close_code, 1008);
    assert_int_equal(e->close_code, 0);
    assert_int_equal(e->nrx, 30 - (size_t)e->echo_blocked);
    assert_int_equal(wsfwd_conn_state(s->conn), WSFWD_STATE_OPEN);
    world_free(w);
}

/* ---- Counters ------------------------------------------------------------------------------- */

static void test_counters(void **state)
{
    (void)state;
    world *w = world_new();
    member *m[4];
    for (int i = 0; i < 4; i++) {
        m[i] = add_member(w);
    }
    join(w, m[0], "a");
    join(w, m[1], "a");
    join(w, m[2], "a");
    join(w, m[3], "b");
    wsfwd_pool *a = find(w, "a");
    wsfwd_pool *b = find(w, "b");
    broadcast(a, "12345", NULL, 3);   /* 3 deliveries of 5 bytes */
    broadcast(a, "123", m[0], 2);     /* 2 of 3 */
    broadcast(b, "1234567", m[3], 0); /* none */
    m[1]->forward = true;
    assert_int_equal(send_text(m[1], "ab"), WSFWD_OK); /* 2 of 2 */

    wsfwd_stats st;
    wsfwd_pool_stats(a, &st, sizeof st);
    assert_int_equal(st.pools, 1);
    assert_int_equal(st.members, 3);
    assert_int_equal(st.messages_in, 3);
    assert_int_equal(st.bytes_in, 5 + 3 + 2);
    assert_int_equal(st.messages_out, 3 + 2 + 2);
    assert_int_equal(st.bytes_out, 15 + 6 + 4);
    assert_int_equal(st.slow_closes, 0);
    assert_int_equal(st.slow_drops, 0);
    wsfwd_pool_stats(b, &st, sizeof st);
    assert_int_equal(st.members, 1);
    assert_int_equal(st.messages_in, 1);
    assert_int_equal(st.bytes_in, 7);
    assert_int_equal(st.messages_out, 0);
    assert_int_equal(st.bytes_out, 0);

    wsfwd_hub_stats(w->hub, &st, sizeof st);
    assert_int_equal(st.pools, 2);
    assert_int_equal(st.members, 4);
    assert_int_equal(st.messages_in, 4);
    assert_int_equal(st.bytes_in, 17);
    assert_int_equal(st.messages_out, 7);
    assert_int_equal(st.bytes_out, 25);

    /* The hub keeps what freed pools counted. */
    wsfwd_conn_leave(m[3]->conn);
    assert_null(find(w, "b"));
    free_member(m[0]);
    wsfwd_hub_stats(w->hub, &st, sizeof st);
    assert_int_equal(st.pools, 1);
    assert_int_equal(st.members, 2);
    assert_int_equal(st.messages_in, 4);
    assert_int_equal(st.bytes_in, 17);
    assert_int_equal(st.messages_out, 7);
    assert_int_equal(st.bytes_out, 25);
    wsfwd_pool_stats(a, &st, sizeof st);
    assert_int_equal(st.members, 2);
    world_free(w);
}

/*
 * The stats functions take the caller's sizeof: a caller built against older headers (a
 * smaller wsfwd_stats) gets only the bytes it has room for, one built against newer headers
 * only the library's; a size below the first version's 64 bytes, or NULL, is refused.
 */
#define STATS_V1_SIZE 64
#define GUARD 0xA5

static void check_stats_fill(const wsfwd_stats *want, size_t size, int rc, const uint8_t *buf)
{
    if (size < STATS_V1_SIZE) {
        assert_int_equal(rc, WSFWD_ERR_INVALID);
    } else {
        assert_int_equal(rc, WSFWD_OK);
    }
    size_t filled = rc != WSFWD_OK ? 0 : size < sizeof *want ? size : sizeof *want;
    assert_memory_equal(buf, want, filled);
    for (size_t i = filled; i < sizeof(wsfwd_stats) + 32; i++) {
        assert_int_equal(buf[i], GUARD); /* past what the caller said it has: untouched */
    }
}

static void test_counters_sized(void **state)
{
    (void)state;
    world *w = world_new();
    add_joined(w, "a");
    add_joined(w, "a");
    wsfwd_pool *p = find(w, "a");
    broadcast(p, "hello", NULL, 2);

    wsfwd_stats hub_st;
    wsfwd_stats pool_st;
    assert_int_equal(wsfwd_hub_stats(w->hub, &hub_st, sizeof hub_st), WSFWD_OK);
    assert_int_equal(wsfwd_pool_stats(p, &pool_st, sizeof pool_st), WSFWD_OK);
    assert_int_equal(hub_st.messages_out, 2);
    assert_int_equal(pool_st.pools, 1);
    assert_true(sizeof(wsfwd_stats) >= STATS_V1_SIZE);

    /* Every size from 0 to past the library's own, in a buffer with guard bytes after it. */
    _Alignas(wsfwd_stats) uint8_t buf[sizeof(wsfwd_stats) + 32];
    for (size_t size = 0; size <= sizeof(wsfwd_stats) + 16; size++) {
        memset(buf, GUARD, sizeof buf);
        int rc = wsfwd_hub_stats(w->hub, (wsfwd_stats *)(void *)buf, size);
        check_stats_fill(&hub_st, size, rc, buf);
        memset(buf, GUARD, sizeof buf);
        rc = wsfwd_pool_stats(p, (wsfwd_stats *)(void *)buf, size);
        check_stats_fill(&pool_st, size, rc, buf);
    }

    assert_int_equal(wsfwd_hub_stats(NULL, &hub_st, sizeof hub_st), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_hub_stats(w->hub, NULL, sizeof hub_st), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_pool_stats(NULL, &pool_st, sizeof pool_st), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_pool_stats(p, NULL, sizeof pool_st), WSFWD_ERR_INVALID);
    world_free(w);
}

/* ---- Re-entrancy ---------------------------------------------------------------------------- */

enum act { A_LEAVE, A_CLOSE, A_FREE, A_DRAIN };
enum tgt { T_SELF, T_EARLIER, T_LATER, T_SENDER };

typedef struct reent_case {
    enum cb where;
    enum act act;
    enum tgt tgt;
} reent_case;

static reent_case g_case;
static int g_fired;
static member *g_slow;

enum { RN = 6, R_SENDER = 0, R_SELF = 3, R_EARLIER = 1, R_LATER = 5 };

static void reent_act(world *w, member *target)
{
    if (target->conn == NULL) {
        return;
    }
    switch (g_case.act) {
    case A_LEAVE:
        wsfwd_conn_leave(target->conn);
        assert_null(wsfwd_conn_pool(target->conn));
        break;
    case A_CLOSE:
        if (wsfwd_conn_state(target->conn) == WSFWD_STATE_OPEN) {
            assert_int_equal(wsfwd_conn_close(target->conn, 1000, "r", 1), WSFWD_OK);
        }
        break;
    case A_FREE: free_member(target); break;
    case A_DRAIN: drain_member(target); break;
    }
    (void)w;
}

static void reent_hook(world *w, enum cb where, member *m, int arg)
{
    (void)arg;
    if (where != g_case.where || g_fired) {
        return;
    }
    /* on_output: the member R_SELF being delivered to; on_leave/on_close: the slow member
       being dropped mid-broadcast; on_message: the sender. */
    member *self = where == CB_MESSAGE  ? w->m[R_SENDER]
                   : where == CB_OUTPUT ? w->m[R_SELF]
                                        : g_slow;
    if (m != self) {
        return;
    }
    if (where == CB_OUTPUT && !w->in_broadcast) {
        return;
    }
    g_fired = 1;
    member *t = g_case.tgt == T_SELF      ? self
                : g_case.tgt == T_EARLIER ? w->m[R_EARLIER]
                : g_case.tgt == T_LATER   ? w->m[R_LATER]
                                          : w->m[R_SENDER];
    reent_act(w, t);
}

static void run_reent_case(const reent_case *rc)
{
    world *w = world_new();
    g_case = *rc;
    g_fired = 0;
    g_slow = NULL;
    bool slow = rc->where == CB_LEAVE || rc->where == CB_CLOSE;
    if (slow) {
        assert_int_equal(wsfwd_config_set_max_queue(w->cfg, 512), WSFWD_OK);
    }
    member *m[RN];
    for (int i = 0; i < RN; i++) {
        m[i] = add_member(w);
        join(w, m[i], "re");
    }
    wsfwd_pool *p = find(w, "re");
    m[R_SENDER]->forward = true;
    drain_all(w);
    if (slow) {
        /* Member 2 has a full queue: the broadcast closes it (on_leave SLOW, on_close). */
        g_slow = m[2];
        char fill[100];
        memset(fill, 'f', sizeof fill);
        for (int k = 0; k < 4; k++) {
            assert_int_equal(wsfwd_conn_send(m[2]->conn, WSFWD_OP_TEXT, fill, sizeof fill),
                             WSFWD_OK);
        }
    }
    w->hook = reent_hook;
    char msg[201];
    memset(msg, 'M', 200);
    msg[200] = '\0';
    w->in_broadcast = true;
    int rc_feed = send_text(m[R_SENDER], msg);
    w->in_broadcast = false;
    assert_true(rc_feed == WSFWD_OK || m[R_SENDER]->conn == NULL ||
                wsfwd_conn_state(m[R_SENDER]->conn) != WSFWD_STATE_OPEN);
    assert_true(g_fired);
    w->hook = NULL;
    drain_all(w);

    /* Who was acted on. */
    member *self = rc->where == CB_MESSAGE  ? m[R_SENDER]
                   : rc->where == CB_OUTPUT ? m[R_SELF]
                                            : g_slow;
    member *target = rc->tgt == T_SELF      ? self
                     : rc->tgt == T_EARLIER ? m[R_EARLIER]
                     : rc->tgt == T_LATER   ? m[R_LATER]
                                            : m[R_SENDER];
    size_t in_pool = 0;
    for (int i = 0; i < RN; i++) {
        member *x = m[i];
        bool acted = x == target && rc->act != A_DRAIN;
        bool dropped = slow && x == g_slow;
        if (x->conn == NULL) {
            assert_true(acted && rc->act == A_FREE);
            assert_int_equal(x->leaves, 1);
            assert_true(x->last_leave == WSFWD_LEAVE_FREED ||
                        (dropped && x->last_leave == WSFWD_LEAVE_SLOW));
            continue;
        }
        assert_int_equal(x->after_close, 0); /* nothing after a close frame */
        if (x == m[R_SENDER]) {
            assert_int_equal(count_rx(x, msg), 0); /* never its own message */
        } else if (!acted && !dropped) {
            assert_int_equal(count_rx(x, msg), 1); /* survivors: exactly once */
        } else {
            assert_true(count_rx(x, msg) <= 1);
        }
        if (dropped) {
            assert_int_equal(x->last_leave, WSFWD_LEAVE_SLOW);
            assert_int_equal(x->close_code, 1008);
            assert_int_equal(x->close_cb_code, 1008);
            assert_int_equal(wsfwd_conn_state(x->conn), WSFWD_STATE_CLOSED);
        }
        if (acted && rc->act == A_LEAVE) {
            assert_null(wsfwd_conn_pool(x->conn));
            if (!dropped) {
                assert_int_equal(x->last_leave, WSFWD_LEAVE_REQUESTED);
                assert_int_equal(wsfwd_conn_state(x->conn), WSFWD_STATE_OPEN);
            }
        } else if (acted && rc->act == A_CLOSE) {
            assert_null(wsfwd_conn_pool(x->conn));
            assert_int_not_equal(wsfwd_conn_state(x->conn), WSFWD_STATE_OPEN);
            assert_true(x->close_code == 1000 || x->close_code == 1008);
        } else if (!dropped) {
            assert_ptr_equal(wsfwd_conn_pool(x->conn), p);
            assert_int_equal(wsfwd_conn_state(x->conn), WSFWD_STATE_OPEN);
            in_pool++;
        }
    }
    assert_int_equal(wsfwd_pool_size(p), in_pool);
    wsfwd_stats st;
    wsfwd_hub_stats(w->hub, &st, sizeof st);
    assert_int_equal(st.members, in_pool);

    /* The pool still works: a second message reaches every member still in it. */
    broadcast(p, "after", NULL, in_pool);
    drain_all(w);
    for (int i = 0; i < RN; i++) {
        if (m[i]->conn != NULL && wsfwd_conn_pool(m[i]->conn) == p) {
            assert_int_equal(count_rx(m[i], "after"), 1);
        }
    }
    world_free(w);
}

static void run_reent_table(enum cb where)
{
    static const enum act acts[] = {A_LEAVE, A_CLOSE, A_FREE, A_DRAIN};
    static const enum tgt tgts[] = {T_SELF, T_EARLIER, T_LATER, T_SENDER};
    for (size_t a = 0; a < 4; a++) {
        for (size_t t = 0; t < 4; t++) {
            reent_case rc = {where, acts[a], tgts[t]};
            print_message("case: callback %d, action %d, target %d\n", (int)where, (int)acts[a],
                          (int)tgts[t]);
            run_reent_case(&rc);
        }
    }
}

static void test_reentrant_on_output(void **state)
{
    (void)state;
    run_reent_table(CB_OUTPUT);
}

static void test_reentrant_on_message(void **state)
{
    (void)state;
    run_reent_table(CB_MESSAGE);
}

static void test_reentrant_on_leave(void **state)
{
    (void)state;
    run_reent_table(CB_LEAVE);
}

static void test_reentrant_on_close(void **state)
{
    (void)state;
    run_reent_table(CB_CLOSE);
}

/* Special cases: release a kept pool, join a newcomer, free everyone, mid-broadcast. */

static int g_special;
static wsfwd_pool *g_pool;
static member *g_newcomer;

static void special_hook(world *w, enum cb where, member *m, int arg)
{
    (void)m;
    (void)arg;
    if (where != CB_OUTPUT || !w->in_broadcast || g_fired) {
        return;
    }
    g_fired = 1;
    switch (g_special) {
    case 0: /* release the kept pool: it must live on while it has members */
        wsfwd_pool_release(g_pool);
        break;
    case 1: /* release it and free every member: the pool goes mid-broadcast */
        wsfwd_pool_release(g_pool);
        for (int i = 0; i < w->n; i++) {
            free_member(w->m[i]);
        }
        break;
    case 2: { /* a newcomer joins: it must not get this broadcast */
        g_newcomer = add_member(w);
        join(w, g_newcomer, "sp");
        break;
    }
    case 3: /* free every member, the one being delivered to first */
        free_member(m);
        for (int i = 0; i < w->n; i++) {
            free_member(w->m[i]);
        }
        break;
    default: break;
    }
}

static void test_reentrant_special(void **state)
{
    (void)state;
    for (g_special = 0; g_special < 4; g_special++) {
        for (int fwd = 0; fwd < 2; fwd++) {
            print_message("special case %d, %s\n", g_special, fwd ? "forwarded" : "direct");
            world *w = world_new();
            g_fired = 0;
            g_pool = NULL;
            g_newcomer = NULL;
            if (g_special <= 1) {
                assert_int_equal(wsfwd_hub_acquire(w->hub, "sp", 2, &g_pool), WSFWD_OK);
            }
            member *m[5];
            for (int i = 0; i < 5; i++) {
                m[i] = add_member(w);
                join(w, m[i], "sp");
            }
            wsfwd_pool *p = find(w, "sp");
            m[0]->forward = true;
            w->hook = special_hook;
            w->in_broadcast = true;
            if (fwd) {
                (void)send_text(m[0], "hello");
            } else {
                (void)wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, "hello", 5, NULL, NULL);
            }
            w->in_broadcast = false;
            w->hook = NULL;
            assert_true(g_fired);
            drain_all(w);
            switch (g_special) {
            case 0:
                for (int i = fwd; i < 5; i++) {
                    assert_int_equal(count_rx(m[i], "hello"), 1);
                }
                assert_ptr_equal(find(w, "sp"), p);
                assert_int_equal(wsfwd_pool_size(p), 5);
                for (int i = 0; i < 5; i++) {
                    wsfwd_conn_leave(m[i]->conn);
                }
                assert_null(find(w, "sp"));
                break;
            case 1:
            case 3:
                for (int i = 0; i < 5; i++) {
                    assert_null(m[i]->conn);
                    assert_int_equal(m[i]->last_leave, WSFWD_LEAVE_FREED);
                }
                assert_null(find(w, "sp"));
                break;
            case 2:
                assert_non_null(g_newcomer);
                assert_int_equal(g_newcomer->nrx, 0);
                for (int i = fwd; i < 5; i++) {
                    assert_int_equal(count_rx(m[i], "hello"), 1);
                }
                assert_int_equal(wsfwd_pool_size(p), 6);
                broadcast(p, "next", NULL, 6);
                drain_all(w);
                assert_int_equal(count_rx(g_newcomer, "next"), 1);
                break;
            default: break;
            }
            wsfwd_stats st;
            wsfwd_hub_stats(w->hub, &st, sizeof st);
            assert_int_equal(st.messages_in, g_special == 2 ? 2 : 1);
            world_free(w);
        }
    }
}

/* The I/O layer writes as soon as it is told: draining inside on_output, every member. */
static void test_drain_inside_on_output(void **state)
{
    (void)state;
    world *w = world_new();
    w->drain_on_output = true;
    member *m[8];
    for (int i = 0; i < 8; i++) {
        m[i] = add_member(w);
        join(w, m[i], "d");
    }
    m[0]->forward = true;
    wsfwd_pool *p = find(w, "d");
    for (int k = 0; k < 20; k++) {
        char t[16];
        snprintf(t, sizeof t, "m%d", k);
        if (k % 2 == 0) {
            broadcast(p, t, NULL, 8);
        } else {
            assert_int_equal(send_text(m[0], t), WSFWD_OK);
        }
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(wsfwd_conn_pending(m[i]->conn), 0);
        assert_int_equal(m[i]->nrx, i == 0 ? 10 : 20);
    }
    world_free(w);
}

/* ---- The three re-entrancy holes of 0.1 (issue 11), each pinned ------------------------- */

/* 1. on_leave frees the connection that a join is moving to another pool. */
static void free_on_requested_leave(wsfwd_pool *pool, wsfwd_conn *c, wsfwd_leave_reason r, void *ud)
{
    cb_leave(pool, c, r, ud);
    if (r == WSFWD_LEAVE_REQUESTED) {
        free_member(mem_of(c));
    }
}

static void test_move_freed_in_on_leave(void **state)
{
    (void)state;
    world *w = world_new();
    wsfwd_hub_on_leave(w->hub, free_on_requested_leave);
    member *a = add_member(w);
    member *other = add_member(w);
    join(w, a, "a");
    join(w, other, "b");
    /* The move frees a in on_leave: the join says so and touches nothing freed (ASan). */
    assert_int_equal(wsfwd_hub_join(w->hub, a->conn, "b", 1), WSFWD_ERR_STATE);
    assert_null(a->conn);
    assert_int_equal(a->leaves, 1);
    assert_int_equal(a->joins, 1);
    assert_null(find(w, "a"));
    assert_int_equal(wsfwd_pool_size(find(w, "b")), 1);
    /* Same through wsfwd_pool_join, into a kept pool that stays empty. */
    wsfwd_pool *kept = NULL;
    assert_int_equal(wsfwd_hub_acquire(w->hub, "kept", 4, &kept), WSFWD_OK);
    assert_int_equal(wsfwd_pool_join(kept, other->conn), WSFWD_ERR_STATE);
    assert_null(other->conn);
    assert_int_equal(wsfwd_pool_size(kept), 0);
    assert_null(find(w, "b"));
    wsfwd_stats st;
    wsfwd_hub_stats(w->hub, &st, sizeof st);
    assert_int_equal(st.members, 0);
    assert_int_equal(st.pools, 1);
    wsfwd_pool_release(kept);
    assert_null(find(w, "kept"));
    world_free(w);
}

/* 2. A broadcast from a callback of a broadcast to the same pool: one order for everyone. */
static int g_nested_where; /* enum cb that broadcasts "L" */
static wsfwd_pool *g_nested_pool;
static int g_nested_rc;
static size_t g_nested_delivered;

static void nested_hook(world *w, enum cb where, member *m, int arg)
{
    (void)arg;
    if ((int)where != g_nested_where || !w->in_broadcast || g_fired) {
        return;
    }
    g_fired = 1;
    g_nested_delivered = 99;
    g_nested_rc =
        wsfwd_pool_broadcast(g_nested_pool, WSFWD_OP_TEXT, "L", 1, m->conn, &g_nested_delivered);
    /* And one more from inside that: it goes after "L". */
    (void)wsfwd_pool_broadcast(g_nested_pool, WSFWD_OP_TEXT, "L2", 2, NULL, NULL);
}

static void test_nested_broadcast_one_order(void **state)
{
    (void)state;
    /* Members m0, m1 (slow: its queue is full), m2, m3. "A" closes m1 by the slow-reader
       policy; a callback on the way (on_output of m0, on_leave or on_close of m1) broadcasts
       "L" to the room. Every member still in the room gets "A" then "L" then "L2". */
    static const int wheres[] = {CB_OUTPUT, CB_LEAVE, CB_CLOSE};
    for (size_t k = 0; k < 3; k++) {
        world *w = world_new();
        assert_int_equal(wsfwd_config_set_max_queue(w->cfg, 256), WSFWD_OK);
        member *m[4];
        for (int i = 0; i < 4; i++) {
            m[i] = add_member(w);
            join(w, m[i], "room");
        }
        g_nested_pool = find(w, "room");
        char fill[220];
        memset(fill, 'f', sizeof fill);
        assert_int_equal(wsfwd_conn_send(m[1]->conn, WSFWD_OP_TEXT, fill, sizeof fill), WSFWD_OK);
        g_nested_where = wheres[k];
        g_fired = 0;
        g_nested_rc = -1;
        w->hook = nested_hook;
        w->in_broadcast = true;
        char big[41];
        memset(big, 'A', sizeof big);
        big[sizeof big - 1] = '\0';
        size_t d = 0;
        assert_int_equal(
            wsfwd_pool_broadcast(g_nested_pool, WSFWD_OP_TEXT, big, strlen(big), NULL, &d),
            WSFWD_OK);
        w->in_broadcast = false;
        w->hook = NULL;
        assert_true(g_fired);
        assert_int_equal(g_nested_rc, WSFWD_OK);
        assert_int_equal(g_nested_delivered, 0); /* deferred: not counted by the inner call */
        assert_int_equal(d, 3);
        drain_all(w);
        assert_int_equal(m[1]->close_code, 1008);
        member *sender = g_nested_where == CB_OUTPUT ? m[0] : m[1];
        for (int i = 0; i < 4; i++) {
            if (i == 1) {
                assert_int_equal(count_rx(m[i], "L"), 0);
                continue;
            }
            size_t want = m[i] == sender ? 2 : 3;
            assert_int_equal(m[i]->nrx, want);
            assert_string_equal(m[i]->rx[0].text, big);
            if (want == 3) {
                assert_string_equal(m[i]->rx[1].text, "L");
            }
            assert_string_equal(m[i]->rx[want - 1].text, "L2");
        }
        wsfwd_stats st;
        wsfwd_pool_stats(g_nested_pool, &st, sizeof st);
        assert_int_equal(st.messages_in, 3);
        world_free(w);
    }
}

/* The sender named by a deferred broadcast is freed before it is sent; a newcomer made and
   joined meanwhile may get the freed one's memory, and must still get the message. */
static void free_sender_hook(world *w, enum cb where, member *m, int arg)
{
    (void)arg;
    (void)m;
    if (where != CB_OUTPUT || !w->in_broadcast || g_fired) {
        return;
    }
    g_fired = 1;
    member *s = w->m[1];
    (void)wsfwd_pool_broadcast(g_nested_pool, WSFWD_OP_TEXT, "from1", 5, s->conn, NULL);
    free_member(s);
    g_newcomer = add_member(w);
    join(w, g_newcomer, "room");
}

static void test_deferred_sender_freed(void **state)
{
    (void)state;
    world *w = world_new();
    member *m[3];
    for (int i = 0; i < 3; i++) {
        m[i] = add_member(w);
        join(w, m[i], "room");
    }
    g_nested_pool = find(w, "room");
    g_fired = 0;
    g_newcomer = NULL;
    w->hook = free_sender_hook;
    w->in_broadcast = true;
    broadcast(g_nested_pool, "first", NULL, 2); /* m1 was freed before its turn */
    w->in_broadcast = false;
    w->hook = NULL;
    assert_true(g_fired);
    drain_all(w);
    assert_int_equal(count_rx(m[0], "first"), 1);
    assert_int_equal(count_rx(m[0], "from1"), 1);
    assert_int_equal(count_rx(m[2], "from1"), 1);
    assert_int_equal(count_rx(g_newcomer, "first"), 0);
    assert_int_equal(count_rx(g_newcomer, "from1"), 1);
    assert_string_equal(m[2]->rx[0].text, "first");
    assert_string_equal(m[2]->rx[1].text, "from1");
    world_free(w);
}

/* A deferred broadcast that finds no memory: the caller hears so, no one gets it, and the
   running broadcast is not disturbed. */
static long g_budget;

static void nomem_hook(world *w, enum cb where, member *m, int arg)
{
    (void)arg;
    if (where != CB_OUTPUT || !w->in_broadcast || g_fired) {
        return;
    }
    g_fired = 1;
    w->ca.budget = g_budget;
    g_nested_rc = wsfwd_pool_broadcast(g_nested_pool, WSFWD_OP_TEXT, "lost", 4, m->conn, NULL);
    w->ca.budget = -1;
}

static void test_deferred_broadcast_nomem(void **state)
{
    (void)state;
    for (g_budget = 0; g_budget <= 1; g_budget++) { /* the frame, then the deferred list */
        world *w = world_new();
        member *m[3];
        for (int i = 0; i < 3; i++) {
            m[i] = add_member(w);
            join(w, m[i], "room");
        }
        g_nested_pool = find(w, "room");
        g_fired = 0;
        w->hook = nomem_hook;
        w->in_broadcast = true;
        broadcast(g_nested_pool, "kept", NULL, 3);
        w->in_broadcast = false;
        w->hook = NULL;
        assert_int_equal(g_nested_rc, WSFWD_ERR_NOMEM);
        drain_all(w);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(m[i]->nrx, 1);
            assert_string_equal(m[i]->rx[0].text, "kept");
        }
        world_free(w);
    }
}

/* 3. Pools that empty during wsfwd_hub_foreach. */
typedef struct walk {
    world *w;
    int step;
    wsfwd_pool *stale; /* a pool found during the walk, that dies during it */
    int rc[8];
} walk;

/* fn empties its pool, then joins a member to the pointer it was given. */
static int empty_then_join(wsfwd_pool *pool, void *ud)
{
    walk *k = ud;
    if (k->step++ > 0) {
        return 0;
    }
    member *a = k->w->m[0];
    member *b = k->w->m[1];
    wsfwd_conn_leave(a->conn);
    assert_int_equal(wsfwd_pool_size(pool), 0);
    k->rc[0] = wsfwd_pool_join(pool, b->conn); /* the visited pool is still alive */
    return 0;
}

/* fn moves the last member elsewhere; a callback would re-join a pool of that name; fn then
   broadcasts to the pointer it has. */
static int move_rejoin_broadcast(wsfwd_pool *pool, void *ud)
{
    walk *k = ud;
    wsfwd_str nm = wsfwd_pool_name(pool);
    if (nm.len != 1 || nm.ptr[0] != 'x') {
        return 0;
    }
    member *a = k->w->m[0];
    member *c = k->w->m[2];
    join(k->w, a, "elsewhere");
    k->rc[0] = wsfwd_hub_join(k->w->hub, c->conn, "x", 1);
    k->rc[1] = wsfwd_pool_broadcast(pool, WSFWD_OP_TEXT, "to-x", 4, NULL, NULL);
    return 0;
}

static int never_called(wsfwd_conn *c, void *ud)
{
    (void)c;
    (void)ud;
    fail();
    return 0;
}

/* fn empties another pool found by name, then uses that stale pointer. */
static int use_dead_pool(wsfwd_pool *pool, void *ud)
{
    walk *k = ud;
    wsfwd_str nm = wsfwd_pool_name(pool);
    if (nm.len != 1 || nm.ptr[0] != 'x') {
        return 0;
    }
    world *w = k->w;
    k->stale = find(w, "y");
    assert_non_null(k->stale);
    wsfwd_conn_leave(w->m[1]->conn); /* y dies, but its memory waits for the walk's end */
    assert_null(find(w, "y"));
    k->rc[0] = wsfwd_pool_join(k->stale, w->m[2]->conn);
    k->rc[1] = wsfwd_pool_broadcast(k->stale, WSFWD_OP_TEXT, "y", 1, NULL, NULL);
    k->rc[2] = wsfwd_pool_foreach(k->stale, never_called, NULL) == WSFWD_ERR_POOL_GONE;
    wsfwd_pool_release(k->stale); /* nothing */
    join(w, w->m[3], "y");        /* a new pool of that name */
    k->rc[3] = find(w, "y") != k->stale;
    return 0;
}

static void test_hub_foreach_dying_pools(void **state)
{
    (void)state;
    {
        world *w = world_new();
        member *a = add_member(w);
        member *b = add_member(w);
        join(w, a, "p");
        walk k = {w, 0, NULL, {0}};
        assert_int_equal(wsfwd_hub_foreach(w->hub, empty_then_join, &k), 0);
        assert_int_equal(k.rc[0], WSFWD_OK);
        wsfwd_pool *p = find(w, "p");
        assert_non_null(p);
        assert_ptr_equal(wsfwd_conn_pool(b->conn), p);
        broadcast(p, "m", NULL, 1);
        wsfwd_conn_leave(b->conn);
        assert_null(find(w, "p"));
        wsfwd_stats st;
        wsfwd_hub_stats(w->hub, &st, sizeof st);
        assert_int_equal(st.pools, 0);
        assert_int_equal(st.members, 0);
        world_free(w);
    }
    {
        world *w = world_new();
        assert_int_equal(wsfwd_hub_set_max_pools(w->hub, 2), WSFWD_OK);
        member *a = add_member(w);
        add_member(w);
        member *c = add_member(w);
        join(w, a, "x");
        walk k = {w, 0, NULL, {0}};
        assert_int_equal(wsfwd_hub_foreach(w->hub, move_rejoin_broadcast, &k), 0);
        assert_int_equal(k.rc[0], WSFWD_OK);
        assert_int_equal(k.rc[1], WSFWD_OK);
        wsfwd_pool *x = find(w, "x");
        assert_non_null(x); /* still in the table: one pool named x */
        assert_ptr_equal(wsfwd_conn_pool(c->conn), x);
        drain_all(w);
        assert_int_equal(count_rx(c, "to-x"), 1);
        wsfwd_stats st;
        wsfwd_hub_stats(w->hub, &st, sizeof st);
        assert_int_equal(st.pools, 2);
        wsfwd_conn_leave(c->conn);
        wsfwd_conn_leave(a->conn);
        wsfwd_hub_stats(w->hub, &st, sizeof st);
        assert_int_equal(st.pools, 0); /* no wrap below zero */
        /* The pool cap still counts right. */
        join(w, a, "1");
        join(w, c, "2");
        assert_int_equal(wsfwd_hub_join(w->hub, w->m[1]->conn, "3", 1), WSFWD_ERR_POOL_LIMIT);
        world_free(w);
    }
    {
        world *w = world_new();
        member *m[4];
        for (int i = 0; i < 4; i++) {
            m[i] = add_member(w);
        }
        join(w, m[0], "x");
        join(w, m[1], "y");
        walk k = {w, 0, NULL, {0}};
        assert_int_equal(wsfwd_hub_foreach(w->hub, use_dead_pool, &k), 0);
        assert_int_equal(k.rc[0], WSFWD_ERR_POOL_GONE);
        assert_int_equal(k.rc[1], WSFWD_ERR_POOL_GONE);
        assert_true(k.rc[2]);
        assert_true(k.rc[3]);
        assert_null(wsfwd_conn_pool(m[2]->conn));
        wsfwd_pool *y = find(w, "y");
        assert_non_null(y);
        assert_int_equal(wsfwd_pool_size(y), 1);
        wsfwd_stats st;
        wsfwd_hub_stats(w->hub, &st, sizeof st);
        assert_int_equal(st.pools, 2);
        world_free(w);
    }
}

/* ---- Allocation failures -------------------------------------------------------------------- */

/* An embedder's forwarding: a failed broadcast fails the sender (WSFWD_ERR_CALLBACK). */
static int forward_message(wsfwd_conn *c, wsfwd_opcode op, const uint8_t *data, size_t len,
                           void *ud)
{
    (void)ud;
    wsfwd_pool *p = wsfwd_conn_pool(c);
    return p != NULL && wsfwd_pool_broadcast(p, op, data, len, c, NULL) != WSFWD_OK ? -1 : 0;
}

/* Join, broadcast (direct and forwarded), leave, a kept pool; returns 1 if nothing failed. */
static int alloc_scenario(test_alloc *ca)
{
    wsfwd_allocator alloc = test_alloc_hooks(ca);
    det_random rnd = {3, 0, 0};
    wsfwd_config *cfg = NULL;
    if (wsfwd_config_new(&alloc, &cfg) != WSFWD_OK) {
        return 0;
    }
    wsfwd_config_set_random(cfg, det_random_fn, &rnd);
    int ok = 1;
    wsfwd_hub *hub = NULL;
    if (wsfwd_hub_new(cfg, &hub) != WSFWD_OK) {
        wsfwd_config_free(cfg);
        return 0;
    }
    enum { AN = 4 };
    wsfwd_conn *c[AN] = {0};
    for (int i = 0; i < AN; i++) {
        if (wsfwd_conn_new(cfg, WSFWD_ROLE_SERVER, NULL, &c[i]) != WSFWD_OK) {
            c[i] = NULL;
            ok = 0;
            continue;
        }
        wsfwd_conn_set_open(c[i]);
        if (wsfwd_hub_join(hub, c[i], i == 3 ? "other" : "room", i == 3 ? 5 : 4) != WSFWD_OK) {
            ok = 0;
        }
    }
    wsfwd_pool *p = wsfwd_hub_find(hub, "room", 4);
    static uint8_t payload[3000];
    if (p == NULL ||
        wsfwd_pool_broadcast(p, WSFWD_OP_BINARY, payload, sizeof payload, NULL, NULL) != WSFWD_OK ||
        wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, "hi", 2, c[0], NULL) != WSFWD_OK) {
        ok = 0;
    }
    if (c[0] != NULL) {
        wsfwd_config_on_message(cfg, forward_message);
        uint8_t b[64];
        size_t n = test_client_frame(b, true, WSFWD_OP_TEXT, "fwd", 3);
        if (wsfwd_conn_feed(c[0], b, n) != WSFWD_OK) {
            ok = 0;
        }
    }
    /* A move, a leave, a kept pool. */
    if (c[1] != NULL) {
        if (wsfwd_hub_join(hub, c[1], "other", 5) != WSFWD_OK) {
            ok = 0;
        }
        wsfwd_conn_leave(c[1]);
    }
    wsfwd_pool *k = NULL;
    if (wsfwd_hub_acquire(hub, "kept", 4, &k) != WSFWD_OK) {
        ok = 0;
    } else {
        if (c[2] != NULL && wsfwd_pool_join(k, c[2]) != WSFWD_OK) {
            ok = 0;
        }
        if (wsfwd_pool_broadcast(k, WSFWD_OP_TEXT, "k", 1, NULL, NULL) != WSFWD_OK) {
            ok = 0;
        }
        wsfwd_pool_release(k);
    }
    /* Drain half of them, free the rest with output queued. */
    for (int i = 0; i < AN; i += 2) {
        if (c[i] != NULL) {
            test_drain(c[i], drain_buf, sizeof drain_buf);
        }
    }
    for (int i = 0; i < AN; i++) {
        wsfwd_conn_free(c[i]);
    }
    wsfwd_hub_free(hub);
    wsfwd_config_free(cfg);
    return ok;
}

static void test_allocation_failures(void **state)
{
    (void)state;
    int done = 0;
    long budget;
    for (budget = 0; budget < 1000 && !done; budget++) {
        test_alloc ca;
        test_alloc_init(&ca);
        ca.budget = budget;
        done = alloc_scenario(&ca);
        assert_int_equal(ca.live, 0); /* every path freed what it took */
    }
    assert_true(done);
    print_message("allocation failure injection: %ld allocation points\n", budget - 1);
}

/* ---- Flow control: pacing, the slow timer ------------------------------------------------- */

/* A 4096-byte queue: its default marks are 2048 and 512. */
enum { FQ = 4096, FQ_HIGH = FQ / 2, FQ_LOW = FQ / 8, FMSG = 100 };

static world *flow_world(void)
{
    world *w = world_new();
    assert_int_equal(wsfwd_config_set_max_queue(w->cfg, FQ), WSFWD_OK);
    return w;
}

static void flog_reset(world *w)
{
    w->flog_len = 0;
    w->flog[0] = '\0';
}

static int flog_count(const world *w, const char *event)
{
    int n = 0;
    for (const char *p = w->flog; (p = strstr(p, event)) != NULL; p += strlen(event)) {
        n++;
    }
    return n;
}

/* One member's events, in order, as letters: "PRGD". */
static const char *flog_of(const world *w, int idx)
{
    static char out[256];
    size_t n = 0;
    for (const char *p = w->flog; *p != '\0'; p = strchr(p, '|') + 1) {
        if (atoi(p + 1) == idx) {
            assert_true(n + 1 < sizeof out);
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return out;
}

static void fmsg_text(char text[FMSG + 1], char ch)
{
    memset(text, ch, FMSG);
    text[FMSG] = '\0';
}

/* The member's own sends (not broadcasts) fill its queue just past the high mark. */
static void congest_by_sends(member *m)
{
    int before = m->flow[WSFWD_FLOW_CONGESTED];
    char text[FMSG + 1];
    fmsg_text(text, 'f');
    while (!wsfwd_conn_is_congested(m->conn)) {
        assert_int_equal(wsfwd_conn_send(m->conn, WSFWD_OP_TEXT, text, FMSG), WSFWD_OK);
    }
    assert_int_equal(m->flow[WSFWD_FLOW_CONGESTED], before + 1);
}

/* s broadcasts to p (s as except; a direct call, or a message its on_message forwards) until
   b is congested; every other member writes its output meanwhile. */
static void congest_by_broadcasts(world *w, wsfwd_pool *p, member *s, bool forward, member *b)
{
    char text[FMSG + 1];
    s->forward = forward;
    for (int k = 0; !wsfwd_conn_is_congested(b->conn); k++) {
        assert_true(k < 100);
        fmsg_text(text, (char)('A' + k % 26));
        if (forward) {
            assert_int_equal(send_text(s, text), WSFWD_OK);
        } else {
            assert_int_equal(wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, text, FMSG, s->conn, NULL),
                             WSFWD_OK);
        }
        for (int i = 0; i < w->n; i++) {
            if (w->m[i] != b) {
                drain_member(w->m[i]);
            }
        }
    }
}

/* Write all of a member's output without reading it (safe when a callback may free it). */
static void discard_output(member *m)
{
    if (m->conn != NULL) {
        wsfwd_conn_consume(m->conn, wsfwd_conn_pending(m->conn));
    }
}

/* Partial writes: the bytes are kept, to parse once the rest is written. */
static uint8_t part_buf[1 << 16];
static size_t part_len;

static void write_part(wsfwd_conn *c, size_t n)
{
    while (n > 0) {
        wsfwd_iovec iov[4];
        assert_true(wsfwd_conn_output(c, iov, 4) > 0);
        size_t take = iov[0].len < n ? iov[0].len : n;
        assert_true(part_len + take <= sizeof part_buf);
        memcpy(part_buf + part_len, iov[0].base, take);
        part_len += take;
        wsfwd_conn_consume(c, take);
        n -= take;
    }
}

static bool pool_has_congested(world *w, const wsfwd_pool *p)
{
    for (int i = 0; i < w->n; i++) {
        wsfwd_conn *c = w->m[i]->conn;
        if (c != NULL && wsfwd_conn_pool(c) == p && wsfwd_conn_is_congested(c)) {
            return true;
        }
    }
    return false;
}

/*
 * What every live member was told matches what it is (one event per transition: the counts
 * differ by the current state), and a member is paced only while it is in a pool with a
 * congested member: nobody stays paused for a backlog that is gone. Not for echo members.
 */
static void check_flow_state(world *w)
{
    for (int i = 0; i < w->n; i++) {
        member *m = w->m[i];
        if (m->conn == NULL) {
            continue;
        }
        bool paced = wsfwd_conn_is_paced(m->conn);
        bool congested = wsfwd_conn_is_congested(m->conn);
        assert_int_equal(m->flow[WSFWD_FLOW_PAUSE] - m->flow[WSFWD_FLOW_RESUME], paced);
        assert_int_equal(m->flow[WSFWD_FLOW_CONGESTED] - m->flow[WSFWD_FLOW_DRAINED], congested);
        if (paced) {
            wsfwd_pool *p = wsfwd_conn_pool(m->conn);
            if (p == NULL || !pool_has_congested(w, p)) {
                fail_msg("member %d paced, in no pool with a congested member (events %s)", m->idx,
                         w->flog);
            }
        }
    }
}

static void test_flow_pacing_one_sender(void **state)
{
    (void)state;
    world *w = flow_world();
    member *s = add_joined(w, "r");
    member *a = add_joined(w, "r");
    member *b = add_joined(w, "r");
    member *o = add_joined(w, "other");
    wsfwd_pool *p = find(w, "r");
    broadcast(p, "calm", s, 2); /* nobody congested: no event at all */
    assert_string_equal(w->flog, "");
    congest_by_sends(b);
    assert_string_equal(w->flog, "G2|");
    /* No sender, or a sender from another pool: nobody to pace. */
    broadcast(p, "all", NULL, 3);
    broadcast(p, "stranger", o, 3);
    assert_string_equal(w->flog, "G2|");
    /* The sender is paced at the end of its broadcast, and told once. */
    broadcast(p, "x1", s, 2);
    assert_string_equal(w->flog, "G2|P0|");
    assert_true(wsfwd_conn_is_paced(s->conn));
    assert_false(wsfwd_conn_is_paced(a->conn));
    assert_false(wsfwd_conn_is_paced(b->conn));
    broadcast(p, "x2", s, 2);
    broadcast(p, "x3", s, 2);
    assert_string_equal(w->flog, "G2|P0|");
    drain_member(s);
    drain_member(a);
    drain_member(o);

    /* b writes part of its backlog: above the low mark nothing changes; at it, b is told
       DRAINED and s RESUME, once each. */
    part_len = 0;
    write_part(b->conn, wsfwd_conn_pending(b->conn) - (FQ_LOW + 1));
    assert_string_equal(w->flog, "G2|P0|");
    assert_true(wsfwd_conn_is_paced(s->conn));
    write_part(b->conn, 1);
    assert_int_equal(flog_count(w, "D2|"), 1);
    assert_int_equal(flog_count(w, "R0|"), 1);
    assert_int_equal(strlen(w->flog), strlen("G2|P0|D2|R0|"));
    assert_false(wsfwd_conn_is_paced(s->conn));
    assert_false(wsfwd_conn_is_congested(b->conn));
    broadcast(p, "y", s, 2);
    assert_int_equal(s->flow[WSFWD_FLOW_PAUSE], 1);
    write_part(b->conn, wsfwd_conn_pending(b->conn));
    parse_into(b, part_buf, part_len);
    static const char *const got[] = {"calm", "all", "stranger", "x1", "x2", "x3", "y"};
    for (size_t i = 0; i < sizeof got / sizeof got[0]; i++) {
        assert_int_equal(count_rx(b, got[i]), 1);
    }
    check_flow_state(w);
    world_free(w);
}

/* Several senders into one pool: each is paused once, all resume when the pool's last
   congested member drains (not before), bystanders hear nothing. */
static void test_flow_pacing_many_senders(void **state)
{
    (void)state;
    world *w = flow_world();
    member *s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = add_member(w);
        join(w, s[i], "r");
    }
    member *a = add_joined(w, "r");
    member *b = add_joined(w, "r");
    member *c = add_joined(w, "r");
    wsfwd_pool *p = find(w, "r");
    s[1]->forward = true;
    s[2]->forward = true;
    for (int cycle = 1; cycle <= 2; cycle++) {
        congest_by_sends(b);
        for (int k = 0; k < 3; k++) {
            char t[16];
            snprintf(t, sizeof t, "s0-%d-%d", cycle, k);
            broadcast(p, t, s[0], 5);
            snprintf(t, sizeof t, "s1-%d-%d", cycle, k);
            assert_int_equal(send_text(s[1], t), WSFWD_OK);
            snprintf(t, sizeof t, "s2-%d-%d", cycle, k);
            assert_int_equal(send_text(s[2], t), WSFWD_OK);
        }
        for (int i = 0; i < 3; i++) {
            assert_int_equal(s[i]->flow[WSFWD_FLOW_PAUSE], cycle);
            assert_true(wsfwd_conn_is_paced(s[i]->conn));
            drain_member(s[i]);
        }
        /* A second congested member: the first one draining is not enough. */
        congest_by_sends(c);
        drain_member(b);
        for (int i = 0; i < 3; i++) {
            assert_true(wsfwd_conn_is_paced(s[i]->conn));
            assert_int_equal(s[i]->flow[WSFWD_FLOW_RESUME], cycle - 1);
        }
        drain_member(c);
        for (int i = 0; i < 3; i++) {
            assert_false(wsfwd_conn_is_paced(s[i]->conn));
            assert_int_equal(s[i]->flow[WSFWD_FLOW_RESUME], cycle);
        }
        /* Sending on, with nobody congested: no pause. */
        assert_int_equal(send_text(s[1], "free"), WSFWD_OK);
        broadcast(p, "free", s[0], 5);
        assert_int_equal(s[0]->flow[WSFWD_FLOW_PAUSE], cycle);
        assert_int_equal(s[1]->flow[WSFWD_FLOW_PAUSE], cycle);
        check_flow_state(w);
    }
    assert_int_equal(a->flow[WSFWD_FLOW_PAUSE] + a->flow[WSFWD_FLOW_RESUME], 0);
    assert_int_equal(b->flow[WSFWD_FLOW_PAUSE] + b->flow[WSFWD_FLOW_RESUME], 0);
    drain_all(w);
    assert_int_equal(a->nrx, 2 * (9 + 2)); /* paced senders' messages still flow */
    world_free(w);
}

/* A sender is not paced for its own backlog; it is once another member is congested. */
static void test_flow_sender_alone_congested(void **state)
{
    (void)state;
    world *w = flow_world();
    member *s = add_joined(w, "r");
    (void)add_joined(w, "r");
    member *b = add_joined(w, "r");
    wsfwd_pool *p = find(w, "r");
    congest_by_sends(s);
    broadcast(p, "m1", s, 2);
    s->forward = true;
    assert_int_equal(send_text(s, "m2"), WSFWD_OK);
    assert_false(wsfwd_conn_is_paced(s->conn));
    assert_string_equal(w->flog, "G0|");
    congest_by_sends(b);
    assert_int_equal(send_text(s, "m3"), WSFWD_OK);
    assert_true(wsfwd_conn_is_paced(s->conn));
    assert_string_equal(w->flog, "G0|G2|P0|");
    /* Once both backlogs are gone, it has been resumed (once). */
    drain_member(b);
    drain_member(s);
    assert_false(wsfwd_conn_is_paced(s->conn));
    assert_int_equal(s->flow[WSFWD_FLOW_PAUSE], 1);
    assert_int_equal(s->flow[WSFWD_FLOW_RESUME], 1);
    check_flow_state(w);
    world_free(w);
}

/* The congested member goes, in every way a member goes: its senders resume. */
enum go { GO_LEAVE, GO_MOVE, GO_FREE, GO_CLOSE, GO_PEER_CLOSE, GO_FAIL, GO_HARD_CAP, GO_N };

/* Member m leaves pool "r" in one of the ways a member goes (all but GO_HARD_CAP). */
static void member_goes(world *w, member *m, enum go how)
{
    uint8_t buf[64];
    size_t n;
    switch (how) {
    case GO_LEAVE: wsfwd_conn_leave(m->conn); break;
    case GO_MOVE: join(w, m, "q"); break;
    case GO_FREE: free_member(m); break;
    case GO_CLOSE: assert_int_equal(wsfwd_conn_close(m->conn, 1001, NULL, 0), WSFWD_OK); break;
    case GO_PEER_CLOSE:
        n = test_client_frame(buf, true, WSFWD_OP_CLOSE, "\x03\xe8", 2);
        assert_int_equal(test_feed(m->conn, buf, n), WSFWD_OK);
        break;
    case GO_FAIL:
        buf[0] = 0x81; /* unmasked */
        buf[1] = 0x00;
        assert_int_equal(test_feed(m->conn, buf, 2), WSFWD_ERR_MASK);
        break;
    default: fail_msg("member_goes: %d", (int)how);
    }
}

static void test_flow_congested_member_goes(void **state)
{
    (void)state;
    for (int how = 0; how < GO_N; how++) {
        print_message("congested member goes: %d\n", how);
        world *w = flow_world();
        member *s = add_joined(w, "r");
        member *a = add_joined(w, "r");
        member *b = add_joined(w, "r");
        member *x = add_joined(w, "q");
        wsfwd_pool *p = find(w, "r");
        congest_by_broadcasts(w, p, s, false, b);
        assert_true(wsfwd_conn_is_paced(s->conn));
        if (how != GO_HARD_CAP) {
            member_goes(w, b, how);
        } else { /* the sender ignores the pause until b meets the hard cap */
            char text[FMSG + 1];
            fmsg_text(text, 'h');
            for (int k = 0; wsfwd_conn_state(b->conn) == WSFWD_STATE_OPEN; k++) {
                assert_true(k < 100);
                assert_int_equal(wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, text, FMSG, s->conn, NULL),
                                 WSFWD_OK);
                drain_member(a);
            }
            assert_int_equal(b->last_leave, WSFWD_LEAVE_SLOW);
            assert_int_equal(b->close_err, WSFWD_ERR_QUEUE_FULL);
        }
        assert_int_equal(s->flow[WSFWD_FLOW_PAUSE], 1);
        assert_int_equal(s->flow[WSFWD_FLOW_RESUME], 1);
        assert_false(wsfwd_conn_is_paced(s->conn));
        broadcast(p, "after", s, 1);
        assert_int_equal(s->flow[WSFWD_FLOW_PAUSE], 1);
        check_flow_state(w);
        if (how == GO_LEAVE) {
            /* Still congested: back in the pool, it holds the senders up again. */
            assert_true(wsfwd_conn_is_congested(b->conn));
            join(w, b, "r");
            broadcast(p, "back", s, 2);
            assert_int_equal(s->flow[WSFWD_FLOW_PAUSE], 2);
            drain_member(b);
            assert_int_equal(s->flow[WSFWD_FLOW_RESUME], 2);
        } else if (how == GO_MOVE) {
            /* It holds up the senders of its new pool. */
            broadcast(find(w, "q"), "q", x, 1);
            assert_int_equal(x->flow[WSFWD_FLOW_PAUSE], 1);
            drain_member(b);
            assert_int_equal(x->flow[WSFWD_FLOW_RESUME], 1);
            assert_int_equal(s->flow[WSFWD_FLOW_PAUSE], 1);
        }
        check_flow_state(w);
        world_free(w);
    }
}

/* A paced sender that leaves its pool (any way but being freed) is told RESUME; the pool
   still counts its congested member for the others. */
static void test_flow_paced_sender_goes(void **state)
{
    (void)state;
    for (int how = 0; how < GO_HARD_CAP; how++) {
        print_message("paced sender goes: %d\n", how);
        world *w = flow_world();
        member *s = add_joined(w, "r");
        member *t = add_joined(w, "r");
        (void)add_joined(w, "r");
        member *b = add_joined(w, "r");
        wsfwd_pool *p = find(w, "r");
        congest_by_broadcasts(w, p, s, false, b);
        assert_true(wsfwd_conn_is_paced(s->conn));
        member_goes(w, s, how);
        assert_int_equal(s->flow[WSFWD_FLOW_PAUSE], 1);
        assert_int_equal(s->flow[WSFWD_FLOW_RESUME], how == GO_FREE ? 0 : 1);
        if (s->conn != NULL) {
            assert_false(wsfwd_conn_is_paced(s->conn));
        }
        assert_true(wsfwd_conn_is_congested(b->conn));
        broadcast(p, "t", t, 2);
        assert_true(wsfwd_conn_is_paced(t->conn));
        check_flow_state(w);
        drain_member(b);
        assert_int_equal(t->flow[WSFWD_FLOW_RESUME], 1);
        check_flow_state(w);
        world_free(w);
    }
}

/* ---- Flow control: re-entrant callbacks ---- */

enum fact { F_LEAVE, F_CLOSE, F_FREE };

typedef struct flow_case {
    int event; /* the on_flow event that acts */
    enum fact act;
    bool on_sender; /* act on the paced sender m0, else on the congested member m2 */
    bool forward;   /* m0 sends a message its on_message forwards (feed), else broadcasts */
} flow_case;

static flow_case g_fcase;

enum { FR_SENDER = 0, FR_SLOW = 2, FR_SENDER2 = 4, FR_N = 5 };

static void flow_reent_hook(world *w, enum cb where, member *m, int arg)
{
    if (where != CB_FLOW || arg != g_fcase.event || g_fired) {
        return;
    }
    /* PAUSE and RESUME come to the sender, CONGESTED and DRAINED to the slow member. */
    bool sender_event = arg == WSFWD_FLOW_PAUSE || arg == WSFWD_FLOW_RESUME;
    if (m != w->m[sender_event ? FR_SENDER : FR_SLOW]) {
        return;
    }
    g_fired = 1;
    member *t = w->m[g_fcase.on_sender ? FR_SENDER : FR_SLOW];
    switch (g_fcase.act) {
    case F_LEAVE: wsfwd_conn_leave(t->conn); break;
    case F_CLOSE:
        if (wsfwd_conn_state(t->conn) == WSFWD_STATE_OPEN) {
            assert_int_equal(wsfwd_conn_close(t->conn, 1000, NULL, 0), WSFWD_OK);
        }
        break;
    default: free_member(t); break;
    }
}

static bool in_pool(const member *m, const wsfwd_pool *p)
{
    return m->conn != NULL && wsfwd_conn_pool(m->conn) == p;
}

static void run_flow_reent_case(void)
{
    world *w = flow_world();
    member *m[FR_N];
    for (int i = 0; i < FR_N; i++) {
        m[i] = add_member(w);
        join(w, m[i], "r");
    }
    wsfwd_pool *p = find(w, "r");
    member *s = m[FR_SENDER];
    member *slow = m[FR_SLOW];
    if (g_fcase.forward) {
        s->forward = true;
    }
    g_fired = 0;
    w->hook = flow_reent_hook;
    /* The sender fills the slow member's queue: CONGESTED inside a broadcast, PAUSE at its
       end. The callbacks may remove either of them on the way. */
    char text[FMSG + 1];
    for (int k = 0; k < 100 && in_pool(slow, p) && !wsfwd_conn_is_congested(slow->conn); k++) {
        fmsg_text(text, (char)('a' + k % 26));
        if (!in_pool(s, p)) {
            (void)wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, text, FMSG, NULL, NULL);
        } else if (g_fcase.forward) {
            (void)send_text(s, text);
        } else {
            assert_int_equal(wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, text, FMSG, s->conn, NULL),
                             WSFWD_OK);
        }
        for (int i = 0; i < FR_N; i++) {
            if (i != FR_SLOW && i != FR_SENDER) {
                drain_member(m[i]);
            }
        }
    }
    /* A second sender, and the first one again: neither is paused twice. */
    (void)wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, "two", 3, m[FR_SENDER2]->conn, NULL);
    if (in_pool(s, p)) {
        (void)wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, "again", 5, s->conn, NULL);
    }
    /* The slow member writes everything: DRAINED, then RESUME for the senders. */
    discard_output(slow);
    w->hook = NULL;
    assert_true(g_fired);
    discard_output(s);
    drain_all(w);

    member *t = g_fcase.on_sender ? s : slow;
    switch (g_fcase.act) {
    case F_LEAVE:
        assert_non_null(t->conn);
        assert_null(wsfwd_conn_pool(t->conn));
        assert_int_equal(wsfwd_conn_state(t->conn), WSFWD_STATE_OPEN);
        break;
    case F_CLOSE:
        assert_non_null(t->conn);
        assert_null(wsfwd_conn_pool(t->conn));
        assert_int_not_equal(wsfwd_conn_state(t->conn), WSFWD_STATE_OPEN);
        break;
    default:
        assert_null(t->conn);
        assert_int_equal(t->last_leave, WSFWD_LEAVE_FREED);
        break;
    }
    for (int i = 0; i < FR_N; i++) {
        assert_true(m[i]->flow[WSFWD_FLOW_PAUSE] <= 1);
        assert_true(m[i]->flow[WSFWD_FLOW_CONGESTED] <= 1);
        if (m[i]->conn != NULL) {
            assert_false(wsfwd_conn_is_paced(m[i]->conn)); /* nobody is congested now */
        }
    }
    check_flow_state(w);

    /* The pool's count of congested members is right: m1 sends freely, is paced once m3 is
       congested, and resumes when m3 drains. */
    member *x = m[1];
    member *y = m[3];
    int pauses = x->flow[WSFWD_FLOW_PAUSE];
    assert_int_equal(wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, "x", 1, x->conn, NULL), WSFWD_OK);
    assert_false(wsfwd_conn_is_paced(x->conn));
    congest_by_sends(y);
    assert_int_equal(wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, "x", 1, x->conn, NULL), WSFWD_OK);
    assert_true(wsfwd_conn_is_paced(x->conn));
    assert_int_equal(x->flow[WSFWD_FLOW_PAUSE], pauses + 1);
    drain_member(y);
    assert_false(wsfwd_conn_is_paced(x->conn));
    check_flow_state(w);
    world_free(w);
}

/* Leave, close or free the paced sender or the congested member from inside each on_flow
   event, the sender broadcasting directly or from its on_message (ASan checks the memory). */
static void test_flow_reentrant(void **state)
{
    (void)state;
    static const int events[] = {WSFWD_FLOW_PAUSE, WSFWD_FLOW_RESUME, WSFWD_FLOW_CONGESTED,
                                 WSFWD_FLOW_DRAINED};
    for (size_t e = 0; e < 4; e++) {
        for (int act = F_LEAVE; act <= F_FREE; act++) {
            for (int on_sender = 0; on_sender <= 1; on_sender++) {
                for (int forward = 0; forward <= 1; forward++) {
                    flow_case fc = {events[e], (enum fact)act, on_sender, forward};
                    print_message("case: event %d, action %d, on %s, %s\n", fc.event, act,
                                  on_sender ? "sender" : "congested member",
                                  forward ? "forwarded" : "direct");
                    g_fcase = fc;
                    run_flow_reent_case();
                }
            }
        }
    }
}

/* RESUME's callback sends at once (as an I/O loop that reads the sender right away would):
   the member that just drained is congested again, and everyone is told in order. */
static wsfwd_pool *g_flow_pool;

static void resend_on_resume(world *w, enum cb where, member *m, int arg)
{
    if (where != CB_FLOW || arg != WSFWD_FLOW_RESUME || m != w->m[0] || g_fired) {
        return;
    }
    g_fired = 1;
    char text[FMSG + 1];
    fmsg_text(text, 'z');
    for (int k = 0; k < 25; k++) {
        (void)wsfwd_pool_broadcast(g_flow_pool, WSFWD_OP_TEXT, text, FMSG, m->conn, NULL);
    }
}

static void test_flow_resume_callback_sends(void **state)
{
    (void)state;
    world *w = flow_world();
    member *s = add_joined(w, "r");
    member *b = add_joined(w, "r");
    g_flow_pool = find(w, "r");
    congest_by_broadcasts(w, g_flow_pool, s, false, b);
    assert_string_equal(w->flog, "G1|P0|");
    flog_reset(w);
    g_fired = 0;
    w->hook = resend_on_resume;
    discard_output(b);
    w->hook = NULL;
    assert_true(g_fired);
    /* b drained, then filled again; s resumed, then paced again: each told in that order. */
    assert_string_equal(flog_of(w, 1), "DG");
    assert_string_equal(flog_of(w, 0), "RP");
    assert_true(wsfwd_conn_is_congested(b->conn));
    assert_true(wsfwd_conn_is_paced(s->conn));
    check_flow_state(w);
    discard_output(b);
    assert_false(wsfwd_conn_is_paced(s->conn));
    check_flow_state(w);
    world_free(w);
}

/* ---- Flow control: the slow timer ---- */

static uint64_t g_now;
static uint64_t g_next;
static int g_tick_rc;

/* As the API suggests: start the timer from on_flow CONGESTED. */
static void tick_on_congested(world *w, enum cb where, member *m, int arg)
{
    (void)w;
    if (where == CB_FLOW && arg == WSFWD_FLOW_CONGESTED) {
        g_next = 0;
        g_tick_rc = wsfwd_conn_tick(m->conn, g_now, &g_next);
    }
}

static void expect_tick(member *m, uint64_t now, int rc, uint64_t next)
{
    uint64_t got = 12345;
    assert_int_equal(wsfwd_conn_tick(m->conn, now, &got), rc);
    if (got != next) {
        fail_msg("tick at %llu: next %llu, expected %llu", (unsigned long long)now,
                 (unsigned long long)got, (unsigned long long)next);
    }
}

/* Clock origins, among them just before the 32-bit wrap, so the deadline lies past it. */
static const uint64_t T0S[] = {1000, ((uint64_t)1 << 32) - 300, ((uint64_t)3 << 32) - 1};

static void test_flow_slow_timeout_close(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof T0S / sizeof T0S[0]; i++) {
        uint64_t t0 = T0S[i];
        world *w = flow_world();
        assert_int_equal(wsfwd_config_set_slow_timeout(w->cfg, 1000), WSFWD_OK);
        member *s = add_joined(w, "r");
        member *a = add_joined(w, "r");
        member *b = add_joined(w, "r");
        wsfwd_pool *p = find(w, "r");
        expect_tick(b, t0, WSFWD_OK, UINT64_MAX); /* not congested: no timer */
        g_now = t0;
        g_tick_rc = -1;
        w->hook = tick_on_congested;
        congest_by_broadcasts(w, p, s, false, b);
        w->hook = NULL;
        assert_int_equal(g_tick_rc, WSFWD_OK);
        assert_true(g_next == t0 + 1000);
        assert_true(wsfwd_conn_is_paced(s->conn));
        expect_tick(a, t0 + 5000, WSFWD_OK, UINT64_MAX);
        expect_tick(b, t0 + 1, WSFWD_OK, t0 + 1000);
        expect_tick(b, t0 + 999, WSFWD_OK, t0 + 1000);
        assert_int_equal(wsfwd_conn_state(b->conn), WSFWD_STATE_OPEN);
        assert_int_equal(b->closes, 0);

        expect_tick(b, t0 + 1000, WSFWD_ERR_SLOW_TIMEOUT, UINT64_MAX);
        assert_int_equal(wsfwd_conn_state(b->conn), WSFWD_STATE_CLOSED);
        assert_null(wsfwd_conn_pool(b->conn));
        assert_int_equal(b->leaves, 1);
        assert_int_equal(b->last_leave, WSFWD_LEAVE_SLOW);
        assert_int_equal(b->closes, 1);
        assert_int_equal(b->close_cb_code, 1008);
        assert_int_equal(b->close_err, WSFWD_ERR_SLOW_TIMEOUT);
        assert_int_equal(s->flow[WSFWD_FLOW_RESUME], 1);
        assert_false(wsfwd_conn_is_paced(s->conn));
        wsfwd_stats st;
        wsfwd_pool_stats(p, &st, sizeof st);
        assert_int_equal(st.slow_closes, 1);
        assert_int_equal(st.slow_drops, 0);
        wsfwd_hub_stats(w->hub, &st, sizeof st);
        assert_int_equal(st.slow_closes, 1);
        /* Its backlog, then the 1008 close frame, then nothing. */
        drain_member(b);
        assert_true(b->nrx > 0);
        assert_int_equal(b->close_code, 1008);
        assert_int_equal(b->after_close, 0);
        assert_true(wsfwd_conn_is_done(b->conn));
        expect_tick(b, t0 + 5000, WSFWD_OK, UINT64_MAX);
        broadcast(p, "after", s, 1);
        assert_int_equal(s->flow[WSFWD_FLOW_PAUSE], 1);
        check_flow_state(w);
        world_free(w);
    }
}

static void test_flow_slow_timeout_drop(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof T0S / sizeof T0S[0]; i++) {
        uint64_t t0 = T0S[i];
        world *w = flow_world();
        assert_int_equal(wsfwd_config_set_slow_timeout(w->cfg, 1000), WSFWD_OK);
        assert_int_equal(wsfwd_config_set_slow_policy(w->cfg, WSFWD_SLOW_DROP), WSFWD_OK);
        member *s = add_joined(w, "r");
        member *a = add_joined(w, "r");
        member *b = add_joined(w, "r");
        wsfwd_pool *p = find(w, "r");
        congest_by_broadcasts(w, p, s, false, b);
        size_t before = b->nrx;
        expect_tick(b, t0, WSFWD_OK, t0 + 1000);
        expect_tick(b, t0 + 999, WSFWD_OK, t0 + 1000);
        expect_tick(b, t0 + 1000, WSFWD_ERR_SLOW_TIMEOUT, UINT64_MAX);
        /* Kept, still congested, but no longer holding the pool up. */
        assert_int_equal(wsfwd_conn_state(b->conn), WSFWD_STATE_OPEN);
        assert_ptr_equal(wsfwd_conn_pool(b->conn), p);
        assert_int_equal(b->leaves + b->closes, 0);
        assert_true(wsfwd_conn_is_congested(b->conn));
        assert_int_equal(s->flow[WSFWD_FLOW_RESUME], 1);
        assert_false(wsfwd_conn_is_paced(s->conn));
        expect_tick(b, t0 + 2000, WSFWD_OK, UINT64_MAX);

        /* Broadcasts skip it, counted; its sender is not paced for it. */
        size_t pending = wsfwd_conn_pending(b->conn);
        for (int k = 0; k < 5; k++) {
            char t[8];
            snprintf(t, sizeof t, "d%d", k);
            broadcast(p, t, s, 1);
        }
        assert_int_equal(wsfwd_conn_pending(b->conn), pending);
        assert_int_equal(s->flow[WSFWD_FLOW_PAUSE], 1);
        wsfwd_stats st;
        wsfwd_pool_stats(p, &st, sizeof st);
        assert_int_equal(st.slow_drops, 5);
        assert_int_equal(st.slow_closes, 0);
        wsfwd_hub_stats(w->hub, &st, sizeof st);
        assert_int_equal(st.slow_drops, 5);
        check_flow_state(w);

        /* Drained, it receives again, and counts again when it next falls behind. */
        drain_member(b);
        assert_int_equal(b->flow[WSFWD_FLOW_DRAINED], 1);
        broadcast(p, "again", s, 2);
        drain_all(w);
        assert_true(b->nrx > before);
        for (int k = 0; k < 5; k++) {
            char t[8];
            snprintf(t, sizeof t, "d%d", k);
            assert_int_equal(count_rx(b, t), 0);
            assert_int_equal(count_rx(a, t), 1);
        }
        assert_string_equal(b->rx[b->nrx - 1].text, "again");
        congest_by_broadcasts(w, p, s, false, b);
        assert_int_equal(s->flow[WSFWD_FLOW_PAUSE], 2);
        expect_tick(b, t0 + 3000, WSFWD_OK, t0 + 4000); /* a new timer */
        wsfwd_pool_stats(p, &st, sizeof st);
        assert_int_equal(st.slow_drops, 5);
        check_flow_state(w);
        world_free(w);
    }
}

/* Who has no timer: a member not congested, a congested connection in no pool, a closed
   one, every one when the timeout is 0. A timer restarts when its member drains. */
static void test_flow_tick_edges(void **state)
{
    (void)state;
    world *w = flow_world();
    assert_int_equal(wsfwd_config_set_slow_timeout(w->cfg, 1000), WSFWD_OK);
    member *a = add_member(w);
    member *b = add_member(w);
    member *c = add_member(w);
    join(w, a, "r");
    join(w, b, "r");
    expect_tick(b, 0, WSFWD_OK, UINT64_MAX);
    assert_int_equal(wsfwd_conn_tick(b->conn, 0, NULL), WSFWD_OK);

    congest_by_sends(c); /* in no pool */
    expect_tick(c, 0, WSFWD_OK, UINT64_MAX);
    expect_tick(c, 1000000, WSFWD_OK, UINT64_MAX);
    assert_int_equal(wsfwd_conn_state(c->conn), WSFWD_STATE_OPEN);

    /* Started at 5000, drained, congested again: the timer starts over at the next tick. */
    congest_by_sends(b);
    expect_tick(b, 5000, WSFWD_OK, 6000);
    drain_member(b);
    expect_tick(b, 5500, WSFWD_OK, UINT64_MAX);
    congest_by_sends(b);
    expect_tick(b, 5900, WSFWD_OK, 6900);
    expect_tick(b, 6000, WSFWD_OK, 6900);
    expect_tick(b, 6899, WSFWD_OK, 6900);
    /* A timer that runs while its member is out of the pool does not cut it. */
    wsfwd_conn_leave(b->conn);
    expect_tick(b, 7000, WSFWD_OK, UINT64_MAX);
    join(w, b, "r");
    expect_tick(b, 8000, WSFWD_OK, 9000);
    expect_tick(b, 9000, WSFWD_ERR_SLOW_TIMEOUT, UINT64_MAX);
    assert_int_equal(wsfwd_conn_state(b->conn), WSFWD_STATE_CLOSED);
    expect_tick(b, 20000, WSFWD_OK, UINT64_MAX);

    /* Timeout 0: never. */
    assert_int_equal(wsfwd_config_set_slow_timeout(w->cfg, 0), WSFWD_OK);
    congest_by_sends(a);
    expect_tick(a, 0, WSFWD_OK, UINT64_MAX);
    expect_tick(a, (uint64_t)1 << 40, WSFWD_OK, UINT64_MAX);
    assert_int_equal(wsfwd_conn_state(a->conn), WSFWD_STATE_OPEN);
    check_flow_state(w);
    world_free(w);
}

/* ---- Flow control: allocation failures, the hub freed ---- */

/* Broadcasts, forwarded messages and a move while a sender is paced, with the allocator
   failing at each point in turn: nothing leaks, and nobody is left paced without cause. */
static void test_flow_allocation_failures(void **state)
{
    (void)state;
    bool done = false;
    long budget;
    for (budget = 0; budget < 300 && !done; budget++) {
        world *w = flow_world();
        member *s = add_member(w);
        member *t = add_member(w);
        add_member(w); /* a bystander */
        member *b = add_member(w);
        for (int i = 0; i < 4; i++) {
            join(w, w->m[i], "r");
        }
        wsfwd_pool *p = find(w, "r");
        s->forward = true;
        congest_by_sends(b);
        long failed = w->ca.failed;
        w->ca.budget = budget;
        static char big[300];
        memset(big, 'b', sizeof big - 1);
        for (int k = 0; k < 3; k++) {
            (void)wsfwd_pool_broadcast(p, WSFWD_OP_TEXT, big, sizeof big - 1, t->conn, NULL);
            (void)send_text(s, "fwd");
        }
        (void)wsfwd_hub_join(w->hub, t->conn, "q", 1); /* the paced sender moves */
        (void)send_text(s, "fwd");
        w->ca.budget = -1;
        done = w->ca.failed == failed;
        check_flow_state(w);
        if (done) {
            assert_int_equal(s->flow[WSFWD_FLOW_PAUSE], 1);
            assert_int_equal(t->flow[WSFWD_FLOW_PAUSE], 1);
            assert_int_equal(t->flow[WSFWD_FLOW_RESUME], 1);
        }
        discard_output(b);
        drain_all(w);
        check_flow_state(w);
        for (int i = 0; i < w->n; i++) {
            assert_false(wsfwd_conn_is_paced(w->m[i]->conn));
        }
        world_free(w);
    }
    assert_true(done);
    print_message("allocation failure injection while pacing: %ld points\n", budget - 1);
}

/* Freeing the hub takes members out without callbacks; a member it paced must not stay
   paced for a pool that no longer exists (nothing would ever resume it). */
static void test_flow_hub_free_unpaces(void **state)
{
    (void)state;
    world *w = flow_world();
    member *s = add_joined(w, "r");
    member *b = add_joined(w, "r");
    congest_by_broadcasts(w, find(w, "r"), s, false, b);
    assert_true(wsfwd_conn_is_paced(s->conn));
    wsfwd_hub_free(w->hub);
    w->hub = NULL;
    assert_null(wsfwd_conn_pool(s->conn));
    assert_false(wsfwd_conn_is_paced(s->conn));
    assert_int_equal(wsfwd_hub_new(w->cfg, &w->hub), WSFWD_OK);
    world_free(w);
}

/* ---- The callback contract (docs/api.md section 10, "The callback contract") ---------- */

static const char UPGRADE[] =
    "GET /r HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";

enum { JOIN_IN_REQUEST = 1, JOIN_IN_OPEN = 2, REFUSE = 4 };
static int g_plan;

/* The newcomer (member 1): joins where the plan says, and notes in the event log, after
   each of its callbacks, its state and whether it is in a pool: "@<state>,<in pool>|". */
static void contract_hook(world *w, enum cb where, member *m, int arg)
{
    (void)arg;
    if (m->idx != 1 || m->conn == NULL) {
        return;
    }
    wsfwd_conn *c = m->conn;
    if (where == CB_REQUEST) {
        evf(w, "Q|");
    } else if (where == CB_OPEN) {
        evf(w, "O|");
    } else if (where != CB_JOIN && where != CB_LEAVE && where != CB_CLOSE) {
        return;
    }
    evf(w, "@%d,%d|", (int)wsfwd_conn_state(c), wsfwd_conn_pool(c) != NULL);
    if (where == CB_REQUEST && (g_plan & JOIN_IN_REQUEST)) {
        join(w, m, "r");
    }
    if (where == CB_REQUEST && (g_plan & REFUSE)) {
        assert_int_equal(wsfwd_conn_refuse(c, 403), WSFWD_OK);
    }
    if (where == CB_OPEN && (g_plan & JOIN_IN_OPEN)) {
        join(w, m, "r");
    }
}

/* A world with member 0 in pool "r" and member 1 handshaking; member 1 gets the upgrade
   request under the plan; returns the event log from then on. */
static world *contract_world(int plan, bool fail_open, int *rc)
{
    world *w = world_new();
    member *a = add_joined(w, "r");
    member *h = add_handshaking(w);
    w->ev_len = 0;
    w->ev[0] = '\0';
    g_plan = plan;
    w->fail_open = fail_open;
    w->hook = contract_hook;
    *rc = test_feed(h->conn, (const uint8_t *)UPGRADE, strlen(UPGRADE));
    w->hook = NULL;
    w->fail_open = false;
    (void)a;
    return w;
}

static int g_join_act;

static void join_act_hook(world *w, enum cb where, member *m, int arg)
{
    (void)arg;
    if (where != CB_JOIN || g_fired || m->idx != 1) {
        return;
    }
    g_fired = 1;
    wsfwd_pool *p = wsfwd_conn_pool(m->conn);
    switch (g_join_act) {
    case 0:
        broadcast(p, "hi", NULL, 2); /* it is a member: it gets it too */
        break;
    case 1: wsfwd_conn_leave(m->conn); break;
    case 2: join(w, m, "q"); break;
    case 3: free_member(m); break;
    default: assert_int_equal(wsfwd_conn_close(m->conn, 1000, NULL, 0), WSFWD_OK); break;
    }
}

/* on_join finds the connection a member already, and may broadcast, leave, move, free or
   close it: the join still returns WSFWD_OK (wsfwd_conn_pool says where it ended up). */
static void test_callback_contract_on_join(void **state)
{
    (void)state;
    static const char *const expect[] = {"J1|", "J1|L1:0|", "J1|L1:0|J1|", "J1|L1:3|", "J1|L1:1|"};
    for (g_join_act = 0; g_join_act < 5; g_join_act++) {
        world *w = world_new();
        member *a = add_joined(w, "r");
        member *b = add_member(w);
        w->ev_len = 0;
        w->ev[0] = '\0';
        g_fired = 0;
        w->hook = join_act_hook;
        assert_int_equal(wsfwd_hub_join(w->hub, b->conn, "r", 1), WSFWD_OK);
        w->hook = NULL;
        assert_true(g_fired);
        assert_string_equal(w->ev, expect[g_join_act]);
        wsfwd_pool *r = find(w, "r");
        assert_int_equal(wsfwd_pool_size(r), g_join_act == 0 ? 2 : 1);
        if (b->conn != NULL) {
            assert_ptr_equal(wsfwd_conn_pool(b->conn), g_join_act == 0   ? r
                                                       : g_join_act == 2 ? find(w, "q")
                                                                         : NULL);
        }
        drain_all(w);
        assert_int_equal(a->nrx, g_join_act == 0 ? 1 : 0);
        assert_int_equal(b->nrx, g_join_act == 0 ? 1 : 0);
        world_free(w);
    }
}

/* Where to join: a connection may join in on_request (it is a member in HANDSHAKE, receives
   nothing until open, and leaves again with WSFWD_LEAVE_CLOSED, before the feed returns, if
   the handshake then fails: its peers see it join and leave), or in on_open (peers see
   nothing of a handshake that fails). on_leave comes before on_close; both find it out of its
   pool; on_close comes only for a connection that opened. */
static void test_callback_contract_join(void **state)
{
    (void)state;
    int rc;
    /* Joined in on_request, accepted: a member from the handshake on. */
    world *w = contract_world(JOIN_IN_REQUEST, false, &rc);
    assert_int_equal(rc, WSFWD_OK);
    assert_string_equal(w->ev, "Q|@0,0|J1|@0,1|O|@1,1|");
    /* A local close leaves at once (on_leave in CLOSING); on_close when the peer answers. */
    member *h = w->m[1];
    w->hook = contract_hook;
    assert_int_equal(wsfwd_conn_close(h->conn, 1000, NULL, 0), WSFWD_OK);
    uint8_t b[16];
    size_t n = test_client_frame(b, true, WSFWD_OP_CLOSE, "\x03\xe8", 2);
    assert_int_equal(test_feed(h->conn, b, n), WSFWD_OK);
    w->hook = NULL;
    assert_string_equal(w->ev, "Q|@0,0|J1|@0,1|O|@1,1|L1:1|@2,0|C1:1000|@3,0|");
    world_free(w);

    /* Joined in on_request, refused: peers see it join and leave; no on_open, no on_close. */
    w = contract_world(JOIN_IN_REQUEST | REFUSE, false, &rc);
    assert_int_equal(rc, WSFWD_ERR_HS_REFUSED);
    assert_string_equal(w->ev, "Q|@0,0|J1|@0,1|L1:1|@3,0|");
    assert_int_equal(wsfwd_pool_size(find(w, "r")), 1);
    world_free(w);

    /* Joined in on_open, refused: nobody sees anything. */
    w = contract_world(JOIN_IN_OPEN | REFUSE, false, &rc);
    assert_int_equal(rc, WSFWD_ERR_HS_REFUSED);
    assert_string_equal(w->ev, "Q|@0,0|");
    assert_int_equal(wsfwd_pool_size(find(w, "r")), 1);
    world_free(w);

    /* Joined in on_open, accepted: a member once open. */
    w = contract_world(JOIN_IN_OPEN, false, &rc);
    assert_int_equal(rc, WSFWD_OK);
    assert_string_equal(w->ev, "Q|@0,0|O|@1,0|J1|@1,1|");
    /* The peer closes: on_leave, then on_close, both in CLOSED and out of the pool. */
    h = w->m[1];
    w->hook = contract_hook;
    n = test_client_frame(b, true, WSFWD_OP_CLOSE, "\x03\xe8", 2);
    assert_int_equal(test_feed(h->conn, b, n), WSFWD_OK);
    w->hook = NULL;
    assert_string_equal(w->ev, "Q|@0,0|O|@1,0|J1|@1,1|L1:1|@3,0|C1:1000|@3,0|");
    world_free(w);

    /* Joined in on_request, on_open fails it: it leaves, then on_close (1011). */
    w = contract_world(JOIN_IN_REQUEST, true, &rc);
    assert_int_equal(rc, WSFWD_ERR_CALLBACK);
    assert_string_equal(w->ev, "Q|@0,0|J1|@0,1|O|@1,1|L1:1|@3,0|C1:1011|@3,0|");
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_lifetime),
        cmocka_unit_test(test_pool_names),
        cmocka_unit_test(test_pool_limits),
        cmocka_unit_test(test_join_moves_and_errors),
        cmocka_unit_test(test_only_open_members_receive),
        cmocka_unit_test(test_foreach),
        cmocka_unit_test(test_hub_foreach_while_pools_come_and_go),
        cmocka_unit_test(test_refused_handshake_leaves_pool),
        cmocka_unit_test(test_conn_ids),
        cmocka_unit_test(test_conn_id_random_failure),
        cmocka_unit_test(test_broadcast_basics),
        cmocka_unit_test(test_encode_once),
        cmocka_unit_test(test_encode_once_with_backlog),
        cmocka_unit_test(test_one_order),
        cmocka_unit_test(test_messages_only_to_on_message),
        cmocka_unit_test(test_callback_contract_join),
        cmocka_unit_test(test_callback_contract_on_join),
        cmocka_unit_test(test_leave_reasons),
        cmocka_unit_test(test_hub_free_keeps_members),
        cmocka_unit_test(test_slow_reader_closed),
        cmocka_unit_test(test_slow_reader_dropped),
        cmocka_unit_test(test_slow_reader_forward_and_echo),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_counters_sized),
        cmocka_unit_test(test_reentrant_on_output),
        cmocka_unit_test(test_reentrant_on_message),
        cmocka_unit_test(test_reentrant_on_leave),
        cmocka_unit_test(test_reentrant_on_close),
        cmocka_unit_test(test_reentrant_special),
        cmocka_unit_test(test_drain_inside_on_output),
        cmocka_unit_test(test_move_freed_in_on_leave),
        cmocka_unit_test(test_nested_broadcast_one_order),
        cmocka_unit_test(test_deferred_sender_freed),
        cmocka_unit_test(test_deferred_broadcast_nomem),
        cmocka_unit_test(test_hub_foreach_dying_pools),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_flow_pacing_one_sender),
        cmocka_unit_test(test_flow_pacing_many_senders),
        cmocka_unit_test(test_flow_sender_alone_congested),
        cmocka_unit_test(test_flow_congested_member_goes),
        cmocka_unit_test(test_flow_paced_sender_goes),
        cmocka_unit_test(test_flow_reentrant),
        cmocka_unit_test(test_flow_resume_callback_sends),
        cmocka_unit_test(test_flow_slow_timeout_close),
        cmocka_unit_test(test_flow_slow_timeout_drop),
        cmocka_unit_test(test_flow_tick_edges),
        cmocka_unit_test(test_flow_allocation_failures),
        cmocka_unit_test(test_flow_hub_free_unpaces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
