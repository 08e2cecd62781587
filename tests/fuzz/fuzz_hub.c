/*
 * Stateful libFuzzer target for the hub: the input is a program of operations on up to 16
 * server connections and the pools named "p0".."p3" (join, leave, broadcast, broadcast with an
 * exception, free, close, partial consume, feed a close frame or a message, foreach of the hub
 * or of a pool, keep and release, direct send, the clock of the slow timeout), run from the
 * top and from inside every callback the library makes (on_join, on_leave, on_output,
 * on_close, on_message, on_flow, and the foreach visitors), which take further operations
 * from the same input.
 *
 * Input: bytes 0-3 configure (queue limit, slow-reader policy, member and pool caps, failing
 * allocations, reentry depth); the rest is the program. After every top-level operation the
 * harness drains every connection, decodes the frames, and checks (any failure aborts):
 * - membership: each connection's pool is the one on_join/on_leave told (the model), each
 *   pool's size is its model member count, the hub's pool and member counts match the table,
 *   kept pools stay findable; flow control says what on_flow said, and a paced member's
 *   pool has another member congested;
 * - delivery: no connection gets a broadcast twice, nor its own, nor one of a pool it was not
 *   in during that step; under the close policy and with no failed allocation, a connection
 *   that was in the pool from before the broadcast was asked for until the step ended got it;
 * - order: per pool name, the orders in which the members got the messages are all compatible
 *   (the precedence graph of the receipts has no cycle); nothing follows a close frame;
 * - memory: ASan and LSan see every access and every block (the harness frees everything).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsfwd.h"

#define NCONN 16
#define NNAMES 4
#define MAXMSG 1024
#define MAXOPS 3000
#define MAXCTX 16
#define MAXSEEN 32 /* pools a connection was in during one step */
#define MAXFOUND 64

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_hub: check failed at line %d: %s\n", __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* FUZZ_HUB_TRACE=1 in the environment: every operation and callback on stderr (to read a
   reproducer). */
static int trace_on = -1;
#define TRACE(...)                                                                                 \
    do {                                                                                           \
        if (trace_on < 0) {                                                                        \
            trace_on = getenv("FUZZ_HUB_TRACE") != NULL;                                           \
        }                                                                                          \
        if (trace_on) {                                                                            \
            fprintf(stderr, "%*s", H.depth * 2, "");                                               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* ---- State ------------------------------------------------------------------------------- */

typedef struct rec {
    wsfwd_conn *c; /* NULL: the slot is empty */
    uint32_t gen;  /* bumped when the slot's connection is freed */
    bool freeing;  /* inside the harness's wsfwd_conn_free of c */
    bool forward;  /* on_message fails it when its broadcast fails, else ignores that */
    bool paced;    /* the model of flow control: what on_flow said */
    bool congested;
    wsfwd_pool *pool;          /* the model: what on_join/on_leave said */
    uint64_t since;            /* logical time of the last join */
    wsfwd_pool *seen[MAXSEEN]; /* pools it was in during this step */
    int nseen;                 /* > MAXSEEN: too many to check */
    bool closed_frame;         /* a close frame was decoded from its output */
    uint8_t carry[512];        /* output consumed but not yet a whole frame */
    size_t ncarry;
    int last[NNAMES]; /* the last broadcast received per name, -1 for none */
    uint8_t got[MAXMSG / 8];
} rec;

typedef struct msg {
    wsfwd_pool *pool; /* the pool the broadcast was asked of */
    int name;         /* its name's index, -1 if not one of ours */
    int except;       /* slot, or -1 */
    uint32_t except_gen;
    uint64_t t0; /* logical time of the call */
    int rc;
    uint32_t receipts;
    uint64_t step;
} msg;

typedef struct ctx_entry {
    wsfwd_pool *pool;
} ctx_entry;

typedef struct harness {
    const uint8_t *in;
    size_t len;
    size_t pos;
    int ops;
    int depth;
    int max_depth;
    uint64_t now;      /* logical clock: every call and callback ticks it */
    uint64_t step;     /* top-level operations so far */
    uint64_t clock_ms; /* the clock given to wsfwd_conn_tick */
    wsfwd_config *cfg;
    wsfwd_hub *hub;
    bool drop_policy;
    bool alloc_failed;   /* some allocation was refused: completeness is not checked */
    uint32_t fail_every; /* refuse every n-th allocation once armed (0: never) */
    uint32_t alloc_calls;
    bool armed;
    rec r[NCONN];
    msg m[MAXMSG];
    int nmsg;
    ctx_entry ctx[MAXCTX]; /* pools valid now: those of the callbacks and visits running */
    int nctx;
    wsfwd_pool *kept[NNAMES];    /* from wsfwd_hub_acquire, until released */
    int walking;                 /* wsfwd_hub_foreach calls on the stack */
    wsfwd_pool *found[MAXFOUND]; /* found during a walk: readable until it ends */
    int nfound;
    /* the precedence graph of receipts, per name: edge a -> b when a member got a, then b */
    uint16_t *edge_from[NNAMES];
    uint16_t *edge_to[NNAMES];
    size_t nedge[NNAMES];
    size_t capedge[NNAMES];
} harness;

static harness H;

static const char *const NAMES[NNAMES] = {"p0", "p1", "p2", "p3"};

static uint8_t next(void)
{
    return H.pos < H.len ? H.in[H.pos++] : 0;
}

static bool more(void)
{
    return H.pos < H.len && H.ops < MAXOPS;
}

/* ---- Allocator: refuses every n-th call once armed ---------------------------------------- */

static bool refuse(void)
{
    if (!H.armed || H.fail_every == 0) {
        return false;
    }
    if (++H.alloc_calls % H.fail_every == 0) {
        H.alloc_failed = true;
        return true;
    }
    return false;
}

static void *fz_malloc(size_t n, void *ud)
{
    (void)ud;
    return refuse() ? NULL : malloc(n == 0 ? 1 : n);
}

static void *fz_realloc(void *p, size_t n, void *ud)
{
    (void)ud;
    return refuse() ? NULL : realloc(p, n == 0 ? 1 : n);
}

static void fz_free(void *p, void *ud)
{
    (void)ud;
    free(p);
}

static int fz_random(void *buf, size_t len, void *ud)
{
    (void)ud;
    memset(buf, 0x5a, len);
    return 0;
}

/* ---- Helpers ------------------------------------------------------------------------------- */

static int slot_of(const rec *r)
{
    return (int)(r - H.r);
}

static int name_of(const wsfwd_pool *p)
{
    wsfwd_str s = wsfwd_pool_name(p);
    for (int i = 0; i < NNAMES; i++) {
        if (s.len == 2 && memcmp(s.ptr, NAMES[i], 2) == 0) {
            return i;
        }
    }
    return -1;
}

static void note_seen(rec *r, wsfwd_pool *p)
{
    if (p == NULL) {
        return;
    }
    for (int i = 0; i < r->nseen && i < MAXSEEN; i++) {
        if (r->seen[i] == p) {
            return;
        }
    }
    if (r->nseen < MAXSEEN) {
        r->seen[r->nseen] = p;
    }
    r->nseen++;
}

static void add_edge(int name, int a, int b)
{
    if (H.nedge[name] == H.capedge[name]) {
        size_t cap = H.capedge[name] == 0 ? 64 : H.capedge[name] * 2;
        H.edge_from[name] = realloc(H.edge_from[name], cap * sizeof(uint16_t));
        H.edge_to[name] = realloc(H.edge_to[name], cap * sizeof(uint16_t));
        CHECK(H.edge_from[name] != NULL && H.edge_to[name] != NULL);
        H.capedge[name] = cap;
    }
    H.edge_from[name][H.nedge[name]] = (uint16_t)a;
    H.edge_to[name][H.nedge[name]] = (uint16_t)b;
    H.nedge[name]++;
}

/* A frame decoded from r's output. */
static void receive(rec *r, uint8_t op, const uint8_t *p, size_t n)
{
    if (r->closed_frame) {
        CHECK(!"a frame after the close frame");
    }
    if (op == WSFWD_OP_CLOSE) {
        r->closed_frame = true;
        return;
    }
    if (op != WSFWD_OP_BINARY || n < 3 || p[0] != 'B') {
        return; /* a pong, or a direct send */
    }
    int id = p[1] | p[2] << 8;
    CHECK(id < H.nmsg);
    const msg *m = &H.m[id];
    CHECK(!(r->got[id / 8] & (1u << (id % 8)))); /* once */
    r->got[id / 8] |= (uint8_t)(1u << (id % 8));
    CHECK(!(m->except == slot_of(r) && m->except_gen == r->gen)); /* never its own */
    CHECK(m->step == H.step); /* delivered within the step that asked for it */
    H.m[id].receipts++;
    if (r->nseen <= MAXSEEN) { /* a member of that pool at some time in the step */
        bool member = false;
        for (int i = 0; i < r->nseen; i++) {
            member |= r->seen[i] == m->pool;
        }
        CHECK(member);
    }
    if (m->name >= 0) {
        if (r->last[m->name] >= 0) {
            add_edge(m->name, r->last[m->name], id);
        }
        r->last[m->name] = id;
    }
}

static void decode(rec *r, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t take = sizeof r->carry - r->ncarry < n ? sizeof r->carry - r->ncarry : n;
        memcpy(r->carry + r->ncarry, p, take);
        r->ncarry += take;
        p += take;
        n -= take;
        size_t off = 0;
        for (;;) {
            wsfwd_frame_header fh;
            int rc =
                wsfwd_frame_parse_header(r->carry + off, r->ncarry - off, WSFWD_ROLE_CLIENT, &fh);
            if (rc == WSFWD_INCOMPLETE) {
                break;
            }
            CHECK(rc == WSFWD_OK && fh.fin && !fh.masked);
            if (fh.payload_len > r->ncarry - off - fh.header_len) {
                CHECK(fh.header_len + fh.payload_len <= sizeof r->carry);
                break;
            }
            receive(r, (uint8_t)fh.opcode, r->carry + off + fh.header_len, (size_t)fh.payload_len);
            off += fh.header_len + (size_t)fh.payload_len;
        }
        memmove(r->carry, r->carry + off, r->ncarry - off);
        r->ncarry -= off;
    }
}

/* Write up to limit bytes of r's output, as a socket would, and decode them. */
static void consume(rec *r, size_t limit)
{
    wsfwd_conn *c = r->c;
    while (limit > 0) {
        wsfwd_iovec iov[4];
        size_t n = wsfwd_conn_output(c, iov, 4);
        if (n == 0) {
            return;
        }
        size_t done = 0;
        for (size_t i = 0; i < n && done < limit; i++) {
            size_t k = iov[i].len < limit - done ? iov[i].len : limit - done;
            decode(r, iov[i].base, k);
            done += k;
        }
        wsfwd_conn_consume(c, done); /* may call on_flow, which may free c */
        if (r->c != c) {
            return;
        }
        limit -= done;
    }
}

static rec *pick_conn(uint8_t b)
{
    rec *r = &H.r[b % NCONN];
    return r->c != NULL ? r : NULL;
}

static wsfwd_pool *pick_ctx(uint8_t b)
{
    return H.nctx > 0 ? H.ctx[b % H.nctx].pool : NULL;
}

static void ctx_push(wsfwd_pool *p)
{
    CHECK(H.nctx < MAXCTX);
    H.ctx[H.nctx++].pool = p;
}

static void ctx_pop(void)
{
    H.nctx--;
}

static int new_msg(wsfwd_pool *pool, const rec *except)
{
    if (H.nmsg >= MAXMSG) {
        return -1;
    }
    msg *m = &H.m[H.nmsg];
    m->pool = pool;
    m->name = pool != NULL ? name_of(pool) : -1;
    m->except = except != NULL ? slot_of(except) : -1;
    m->except_gen = except != NULL ? except->gen : 0;
    m->t0 = ++H.now;
    m->rc = WSFWD_OK;
    m->step = H.step;
    return H.nmsg++;
}

/* The payload of message id: 'B', the id, padding to the size the program asks. */
static size_t payload(uint8_t *buf, int id, uint8_t size)
{
    size_t n = 3 + (size_t)size;
    buf[0] = 'B';
    buf[1] = (uint8_t)id;
    buf[2] = (uint8_t)(id >> 8);
    memset(buf + 3, 'p', size);
    return n;
}

static void broadcast(wsfwd_pool *pool, rec *except, uint8_t size)
{
    int id = new_msg(pool, except);
    if (id < 0) {
        return;
    }
    uint8_t buf[3 + 255];
    size_t n = payload(buf, id, size);
    size_t delivered = 0;
    int rc = wsfwd_pool_broadcast(pool, WSFWD_OP_BINARY, buf, n, except != NULL ? except->c : NULL,
                                  &delivered);
    H.m[id].rc = rc;
    TRACE("broadcast #%d to %s (%zu bytes) but %d: rc %d, %zu delivered", id,
          wsfwd_pool_name(pool).ptr, n, except != NULL ? slot_of(except) : -1, rc, delivered);
    CHECK(rc == WSFWD_OK || rc == WSFWD_ERR_NOMEM || rc == WSFWD_ERR_POOL_GONE);
    CHECK(rc != WSFWD_ERR_NOMEM || H.alloc_failed);
}

/* A client's masked frame. */
static size_t client_frame(uint8_t *buf, wsfwd_opcode op, const uint8_t *p, size_t n)
{
    static const uint8_t key[4] = {1, 2, 3, 4};
    size_t h = wsfwd_frame_encode_header(buf, true, op, n, key);
    memcpy(buf + h, p, n);
    wsfwd_frame_mask(buf + h, n, key, 0);
    return h + n;
}

/* ---- Operations --------------------------------------------------------------------------- */

static void run_ops(int count);

static int visit_pool(wsfwd_pool *pool, void *ud)
{
    (void)ud;
    H.now++;
    ctx_push(pool);
    CHECK(wsfwd_hub_find(H.hub, wsfwd_pool_name(pool).ptr, wsfwd_pool_name(pool).len) == pool);
    run_ops(next() % 4);
    ctx_pop();
    return next() % 16 == 0;
}

static int visit_member(wsfwd_conn *c, void *ud)
{
    wsfwd_pool *pool = ud;
    rec *r = wsfwd_conn_user_data(c);
    CHECK(r->pool == pool);
    H.now++;
    ctx_push(pool);
    run_ops(next() % 3);
    ctx_pop();
    return next() % 16 == 0;
}

static void op_new(rec *r, uint8_t b)
{
    if (r->c != NULL || r->freeing) {
        return;
    }
    wsfwd_conn *c;
    if (wsfwd_conn_new(H.cfg, WSFWD_ROLE_SERVER, r, &c) != WSFWD_OK) {
        CHECK(H.alloc_failed);
        return;
    }
    CHECK(wsfwd_conn_set_open(c) == WSFWD_OK);
    r->forward = b & 1;
    r->c = c;
    r->pool = NULL;
    r->closed_frame = false;
    r->paced = false;
    r->congested = false;
    r->ncarry = 0;
    r->nseen = 0;
    for (int i = 0; i < NNAMES; i++) {
        r->last[i] = -1;
    }
    memset(r->got, 0, sizeof r->got);
}

static void op_free(rec *r)
{
    if (r->freeing) {
        wsfwd_conn_free(r->c); /* again, from a callback of the first: nothing happens */
        return;
    }
    r->freeing = true;
    wsfwd_conn_free(r->c);
    CHECK(r->pool == NULL); /* on_leave told, if it was in a pool */
    r->freeing = false;
    r->c = NULL;
    r->gen++;
}

static void check_join_rc(int rc)
{
    CHECK(rc == WSFWD_OK || rc == WSFWD_ERR_STATE || rc == WSFWD_ERR_INVALID ||
          rc == WSFWD_ERR_POOL_FULL || rc == WSFWD_ERR_POOL_LIMIT || rc == WSFWD_ERR_POOL_GONE ||
          rc == WSFWD_ERR_NOMEM);
    CHECK(rc != WSFWD_ERR_NOMEM || H.alloc_failed);
}

static void op_feed(rec *r, bool close_frame, uint8_t size)
{
    uint8_t body[3 + 255];
    uint8_t frame[WSFWD_FRAME_HEADER_MAX + sizeof body];
    size_t n;
    if (close_frame) {
        body[0] = 0x03;
        body[1] = 0xe8; /* 1000 */
        n = client_frame(frame, WSFWD_OP_CLOSE, body, 2);
    } else {
        /* The message's id is taken now; the broadcast it causes is recorded when it runs
           (on_message). */
        wsfwd_pool *pool = wsfwd_conn_pool(r->c);
        int id = new_msg(pool, r);
        if (id < 0) {
            return;
        }
        H.m[id].rc = WSFWD_ERR_STATE; /* until on_message broadcasts it */
        n = client_frame(frame, WSFWD_OP_BINARY, body, payload(body, id, size));
    }
    int rc = wsfwd_conn_feed(r->c, frame, n);
    (void)rc;
}

static void run_op(void)
{
    H.ops++;
    H.now++;
    uint8_t op = next();
    uint8_t a = next();
    uint8_t b = next();
    rec *r = pick_conn(a);
    TRACE("op %d a=%d b=%d (conn %d)", op % 17, a, b, r != NULL ? slot_of(r) : -1);
    switch (op % 17) {
    case 0: op_new(&H.r[a % NCONN], b); break;
    case 1: /* join by name */
        if (r != NULL) {
            const char *nm = NAMES[b % NNAMES];
            check_join_rc(wsfwd_hub_join(H.hub, r->c, nm, 2));
        }
        break;
    case 2: { /* join a pool pointer that is valid now */
        wsfwd_pool *p = pick_ctx(b);
        if (r != NULL && p != NULL) {
            check_join_rc(wsfwd_pool_join(p, r->c));
        }
        break;
    }
    case 3:
        if (r != NULL) {
            wsfwd_conn_leave(r->c);
        }
        break;
    case 4: { /* broadcast by name, maybe but one */
        const char *nm = NAMES[b % NNAMES];
        wsfwd_pool *p = wsfwd_hub_find(H.hub, nm, 2);
        if (p != NULL) {
            broadcast(p, (b & 0x80) ? r : NULL, next());
        }
        break;
    }
    case 5: { /* broadcast to a pool pointer valid now */
        wsfwd_pool *p = pick_ctx(b);
        if (p != NULL) {
            broadcast(p, (b & 0x80) ? r : NULL, next());
        }
        break;
    }
    case 6:
        if (r != NULL) {
            op_free(r);
        }
        break;
    case 7:
        if (r != NULL) {
            int rc = wsfwd_conn_close(r->c, 1000, "bye", 3);
            CHECK(rc == WSFWD_OK || rc == WSFWD_ERR_CLOSED || rc == WSFWD_ERR_NOMEM);
        }
        break;
    case 8: /* a socket that takes some bytes */
        if (r != NULL) {
            consume(r, (size_t)b * 4);
        }
        break;
    case 9:
        if (r != NULL) {
            op_feed(r, true, 0);
        }
        break;
    case 10:
        if (r != NULL) {
            op_feed(r, false, b);
        }
        break;
    case 11:
        if (H.depth < H.max_depth) {
            H.walking++;
            int rc = wsfwd_hub_foreach(H.hub, visit_pool, NULL);
            CHECK(rc == 0 || rc == 1);
            if (--H.walking == 0) {
                H.nfound = 0; /* freed now */
            }
        }
        break;
    case 12: { /* foreach of a pool */
        wsfwd_pool *p = (b & 1) ? pick_ctx(b >> 1) : wsfwd_hub_find(H.hub, NAMES[b % NNAMES], 2);
        if (p != NULL && H.depth < H.max_depth) {
            int rc = wsfwd_pool_foreach(p, visit_member, p);
            CHECK(rc == 0 || rc == 1);
        }
        break;
    }
    case 13: { /* keep a pool, or release a kept one */
        int k = b % NNAMES;
        if (H.kept[k] != NULL) {
            wsfwd_pool_release(H.kept[k]);
            H.kept[k] = NULL;
        } else {
            wsfwd_pool *p = NULL;
            int rc = wsfwd_hub_acquire(H.hub, NAMES[k], 2, &p);
            CHECK(rc == WSFWD_OK || rc == WSFWD_ERR_POOL_LIMIT || rc == WSFWD_ERR_NOMEM);
            if (rc == WSFWD_OK) {
                H.kept[k] = p;
            }
        }
        break;
    }
    case 14: /* a direct message */
        if (r != NULL) {
            uint8_t buf[256];
            memset(buf, 'S', sizeof buf);
            (void)wsfwd_conn_send(r->c, WSFWD_OP_BINARY, buf, b);
        }
        break;
    case 15: { /* during a walk: find a pool, or use one found earlier in it (maybe dead) */
        if (H.walking == 0) {
            break;
        }
        if ((b & 1) || H.nfound == 0) {
            wsfwd_pool *p = wsfwd_hub_find(H.hub, NAMES[(b >> 1) % NNAMES], 2);
            if (p != NULL && H.nfound < MAXFOUND) {
                H.found[H.nfound++] = p;
            }
            break;
        }
        wsfwd_pool *p = H.found[(b >> 1) % H.nfound];
        wsfwd_str nm = wsfwd_pool_name(p);
        bool live = wsfwd_hub_find(H.hub, nm.ptr, nm.len) == p;
        int rc;
        if (r != NULL && (b & 2)) {
            rc = wsfwd_pool_join(p, r->c);
            check_join_rc(rc);
        } else {
            int id = new_msg(p, NULL);
            if (id < 0) {
                break;
            }
            uint8_t buf[3];
            rc = wsfwd_pool_broadcast(p, WSFWD_OP_BINARY, buf, payload(buf, id, 0), NULL, NULL);
            H.m[id].rc = rc;
        }
        /* a dead pool refuses everything; a connection being freed is refused first */
        CHECK(live ? rc != WSFWD_ERR_POOL_GONE
                   : rc == WSFWD_ERR_POOL_GONE || (rc == WSFWD_ERR_INVALID && r->freeing));
        break;
    }
    case 16: /* time passes; a connection's clock ticks (the slow timeout may cut it) */
        H.clock_ms += (uint64_t)b * 8;
        if (r != NULL) {
            uint64_t next = 0;
            uint64_t now = H.clock_ms; /* callbacks inside may move H.clock_ms on */
            int rc = wsfwd_conn_tick(r->c, now, &next);
            CHECK(rc == WSFWD_OK || rc == WSFWD_ERR_SLOW_TIMEOUT);
            CHECK(next == UINT64_MAX || next > now);
        }
        break;
    default: break;
    }
}

/* Run up to count operations from the input, from a callback (count 0: none). */
static void run_ops(int count)
{
    if (H.depth >= H.max_depth) {
        return;
    }
    H.depth++;
    for (int i = 0; i < count && more(); i++) {
        run_op();
    }
    H.depth--;
}

/* ---- Callbacks ------------------------------------------------------------------------------ */

/* From a callback: maybe some operations, as the next input byte says. */
static void reenter(void)
{
    uint8_t b = next();
    if (b & 0x80) {
        run_ops(1 + (b & 3));
    }
}

static void on_join(wsfwd_pool *pool, wsfwd_conn *c, void *ud)
{
    (void)ud;
    rec *r = wsfwd_conn_user_data(c);
    TRACE("on_join conn %d %s", slot_of(r), wsfwd_pool_name(pool).ptr);
    CHECK(r->c == c);
    CHECK(r->pool == NULL);
    CHECK(wsfwd_conn_pool(c) == pool);
    r->pool = pool;
    r->since = ++H.now;
    note_seen(r, pool);
    ctx_push(pool);
    reenter();
    ctx_pop();
}

static void on_leave(wsfwd_pool *pool, wsfwd_conn *c, wsfwd_leave_reason reason, void *ud)
{
    (void)ud;
    rec *r = wsfwd_conn_user_data(c);
    TRACE("on_leave conn %d %s reason %d", slot_of(r), wsfwd_pool_name(pool).ptr, (int)reason);
    CHECK(r->c == c);
    CHECK(r->pool == pool);
    CHECK(wsfwd_conn_pool(c) == NULL);
    CHECK(reason != WSFWD_LEAVE_FREED || r->freeing);
    CHECK(reason != WSFWD_LEAVE_SLOW || !H.drop_policy);
    r->pool = NULL;
    H.now++;
    ctx_push(pool);
    reenter();
    ctx_pop();
}

static void on_output(wsfwd_conn *c, void *ud)
{
    (void)ud;
    rec *r = wsfwd_conn_user_data(c);
    CHECK(r->c == c);
    H.now++;
    reenter();
}

static void on_flow(wsfwd_conn *c, wsfwd_flow event, void *ud)
{
    (void)ud;
    rec *r = wsfwd_conn_user_data(c);
    CHECK(r->c == c && !r->freeing);
    TRACE("on_flow conn %d event %d", slot_of(r), (int)event);
    switch (event) {
    case WSFWD_FLOW_PAUSE:
        CHECK(!r->paced);
        CHECK(r->pool != NULL); /* only members are paced here (no ECHO mode) */
        r->paced = true;
        break;
    case WSFWD_FLOW_RESUME:
        CHECK(r->paced);
        r->paced = false;
        break;
    case WSFWD_FLOW_CONGESTED:
        CHECK(!r->congested);
        r->congested = true;
        break;
    case WSFWD_FLOW_DRAINED:
        CHECK(r->congested);
        r->congested = false;
        break;
    default: CHECK(!"unknown flow event");
    }
    /* The flag this event is about matches now (the other may have changed, still untold). */
    if (event == WSFWD_FLOW_PAUSE || event == WSFWD_FLOW_RESUME) {
        CHECK(wsfwd_conn_is_paced(c) == r->paced);
    } else {
        CHECK(wsfwd_conn_is_congested(c) == r->congested);
    }
    H.now++;
    reenter();
}

static void on_close(wsfwd_conn *c, uint16_t code, const char *reason, size_t len, int err,
                     void *ud)
{
    (void)reason;
    (void)len;
    (void)ud;
    rec *r = wsfwd_conn_user_data(c);
    TRACE("on_close conn %d code %u err %d", slot_of(r), code, err);
    CHECK(r->c == c);
    CHECK(wsfwd_conn_pool(c) == NULL);
    H.now++;
    reenter();
}

static int on_message(wsfwd_conn *c, wsfwd_opcode op, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    rec *r = wsfwd_conn_user_data(c);
    CHECK(r->c == c && op == WSFWD_OP_BINARY && len >= 3 && data[0] == 'B');
    int id = data[1] | data[2] << 8;
    CHECK(id < H.nmsg);
    /* What the wsfwd server does: broadcast to the sender's pool, all but the sender. */
    msg *m = &H.m[id];
    wsfwd_pool *pool = wsfwd_conn_pool(c);
    m->pool = pool;
    m->name = pool != NULL ? name_of(pool) : -1;
    m->t0 = ++H.now;
    if (pool != NULL) {
        m->rc = WSFWD_OK; /* members may decode it before the call returns */
        m->rc = wsfwd_pool_broadcast(pool, op, data, len, c, NULL);
        CHECK(m->rc == WSFWD_OK || m->rc == WSFWD_ERR_NOMEM);
    }
    int rc = m->rc;
    reenter();
    /* A forwarder fails the connection when it could not forward (the callbacks above may
       have freed it: the library then ignores the result). */
    return r->forward && pool != NULL && rc != WSFWD_OK ? -1 : 0;
}

/* ---- Checks between top-level operations ----------------------------------------------------- */

static void check_model(void)
{
    wsfwd_stats st;
    wsfwd_hub_stats(H.hub, &st, sizeof st);
    size_t pools = 0;
    size_t members = 0;
    for (int k = 0; k < NNAMES; k++) {
        wsfwd_pool *p = wsfwd_hub_find(H.hub, NAMES[k], 2);
        if (H.kept[k] != NULL) {
            CHECK(p == H.kept[k]);
        }
        if (p == NULL) {
            continue;
        }
        pools++;
        size_t in = 0;
        for (int i = 0; i < NCONN; i++) {
            in += H.r[i].c != NULL && H.r[i].pool == p;
        }
        CHECK(wsfwd_pool_size(p) == in);
        CHECK(in > 0 || H.kept[k] == p); /* an empty pool lives only while kept */
        members += in;
    }
    for (int i = 0; i < NCONN; i++) {
        rec *r = &H.r[i];
        if (r->c == NULL) {
            continue;
        }
        CHECK(wsfwd_conn_pool(r->c) == r->pool);
        CHECK(wsfwd_conn_is_paced(r->c) == r->paced);
        CHECK(wsfwd_conn_is_congested(r->c) == r->congested);
        if (r->paced) { /* someone else in its pool holds it up */
            bool held = false;
            for (int k = 0; k < NCONN; k++) {
                held |= k != i && H.r[k].c != NULL && H.r[k].pool == r->pool && H.r[k].congested;
            }
            CHECK(held);
        }
        if (r->pool != NULL) {
            CHECK(name_of(r->pool) >= 0);
            CHECK(wsfwd_hub_find(H.hub, wsfwd_pool_name(r->pool).ptr, 2) == r->pool);
        }
    }
    CHECK(st.pools == pools);
    CHECK(st.members == members);
}

/* Every broadcast of this step reached every member that was in its pool all along. */
static void check_complete(void)
{
    for (int id = 0; id < H.nmsg; id++) {
        const msg *m = &H.m[id];
        if (m->step == H.step && m->rc != WSFWD_OK) {
            CHECK(m->receipts == 0); /* a broadcast that failed reached nobody */
        }
    }
    if (H.drop_policy || H.alloc_failed) {
        return; /* a member may lose messages without leaving */
    }
    for (int id = 0; id < H.nmsg; id++) {
        const msg *m = &H.m[id];
        if (m->step != H.step || m->rc != WSFWD_OK) {
            continue;
        }
        for (int i = 0; i < NCONN; i++) {
            const rec *r = &H.r[i];
            if (r->c == NULL || r->pool != m->pool || r->since >= m->t0) {
                continue;
            }
            if (m->except == i && m->except_gen == r->gen) {
                continue;
            }
            if (!(r->got[id / 8] & (1u << (id % 8)))) {
                TRACE("conn %d, in the pool since %llu, lacks #%d of %llu", i,
                      (unsigned long long)r->since, id, (unsigned long long)m->t0);
            }
            CHECK(r->got[id / 8] & (1u << (id % 8)));
        }
    }
}

/* Kahn's algorithm over one name's receipts: a cycle means two members disagree on order. */
static void check_order(void)
{
    static uint16_t indeg[MAXMSG];
    static uint16_t queue[MAXMSG];
    for (int k = 0; k < NNAMES; k++) {
        size_t ne = H.nedge[k];
        if (ne == 0) {
            continue;
        }
        memset(indeg, 0, sizeof(uint16_t) * (size_t)H.nmsg);
        for (size_t e = 0; e < ne; e++) {
            indeg[H.edge_to[k][e]]++;
        }
        size_t qn = 0;
        for (int v = 0; v < H.nmsg; v++) {
            if (indeg[v] == 0) {
                queue[qn++] = (uint16_t)v;
            }
        }
        /* edges are few: scan them per vertex */
        for (size_t qi = 0; qi < qn; qi++) {
            uint16_t v = queue[qi];
            for (size_t e = 0; e < ne; e++) {
                if (H.edge_from[k][e] == v && --indeg[H.edge_to[k][e]] == 0) {
                    queue[qn++] = H.edge_to[k][e];
                }
            }
        }
        CHECK(qn == (size_t)H.nmsg); /* every message sorted: no cycle */
    }
}

static void end_step(void)
{
    /* Write everything, as often as needed: a callback of one drain (a resumed sender...) may
       queue more output for connections drained before it. */
    for (bool again = true; again;) {
        again = false;
        for (int i = 0; i < NCONN; i++) {
            if (H.r[i].c != NULL && wsfwd_conn_pending(H.r[i].c) > 0) {
                consume(&H.r[i], SIZE_MAX);
                again = true;
            }
        }
    }
    for (int i = 0; i < NCONN; i++) {
        if (H.r[i].c != NULL) {
            CHECK(wsfwd_conn_pending(H.r[i].c) == 0);
            CHECK(H.r[i].ncarry == 0);
        }
    }
    check_model();
    check_complete();
    H.step++;
    for (int i = 0; i < NCONN; i++) {
        rec *r = &H.r[i];
        r->nseen = 0;
        note_seen(r, r->pool);
    }
}

/* ---- Entry ------------------------------------------------------------------------------------
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) {
        return 0;
    }
    memset(&H, 0, sizeof H);
    H.in = data;
    H.len = size;
    H.pos = 4;
    H.max_depth = 2 + (data[3] & 3);
    wsfwd_allocator alloc = {fz_malloc, fz_realloc, fz_free, NULL};
    CHECK(wsfwd_config_new(&alloc, &H.cfg) == WSFWD_OK);
    CHECK(wsfwd_config_set_random(H.cfg, fz_random, NULL) == WSFWD_OK);
    CHECK(wsfwd_config_set_max_queue(H.cfg, 64 + (size_t)data[0] * 16) == WSFWD_OK);
    H.drop_policy = data[1] & 1;
    CHECK(wsfwd_config_set_slow_policy(H.cfg, H.drop_policy ? WSFWD_SLOW_DROP : WSFWD_SLOW_CLOSE) ==
          WSFWD_OK);
    wsfwd_config_on_message(H.cfg, on_message);
    wsfwd_config_on_close(H.cfg, on_close);
    wsfwd_config_on_output(H.cfg, on_output);
    wsfwd_config_on_flow(H.cfg, on_flow);
    CHECK(wsfwd_config_set_slow_timeout(H.cfg, 50 + (uint32_t)(data[3] >> 2) * 20) == WSFWD_OK);
    CHECK(wsfwd_hub_new(H.cfg, &H.hub) == WSFWD_OK);
    wsfwd_hub_on_join(H.hub, on_join);
    wsfwd_hub_on_leave(H.hub, on_leave);
    if (data[1] & 2) {
        CHECK(wsfwd_hub_set_max_members(H.hub, 2 + (data[1] >> 2 & 3)) == WSFWD_OK);
    }
    if (data[1] & 0x10) {
        CHECK(wsfwd_hub_set_max_pools(H.hub, 1 + (data[1] >> 5 & 3)) == WSFWD_OK);
    }
    H.fail_every = data[2] < 0xf0 ? 0 : 2u + (data[2] & 0x0f) * 3u;
    H.armed = true;
    for (int i = 0; i < NCONN; i++) {
        for (int k = 0; k < NNAMES; k++) {
            H.r[i].last[k] = -1;
        }
    }

    while (more()) {
        run_op();
        CHECK(H.depth == 0 && H.nctx == 0 && H.walking == 0);
        end_step();
    }
    check_order();

    /* Tear down: free every connection, release kept pools, then the hub. */
    H.armed = false;
    for (int i = 0; i < NCONN; i++) {
        if (H.r[i].c != NULL) {
            H.r[i].freeing = true;
            H.max_depth = 0; /* no more operations from callbacks */
            wsfwd_conn_free(H.r[i].c);
            H.r[i].c = NULL;
        }
    }
    for (int k = 0; k < NNAMES; k++) {
        wsfwd_pool_release(H.kept[k]);
    }
    wsfwd_stats st;
    wsfwd_hub_stats(H.hub, &st, sizeof st);
    CHECK(st.pools == 0 && st.members == 0);
    wsfwd_hub_free(H.hub);
    wsfwd_config_free(H.cfg);
    for (int k = 0; k < NNAMES; k++) {
        free(H.edge_from[k]);
        free(H.edge_to[k]);
    }
    return 0;
}
