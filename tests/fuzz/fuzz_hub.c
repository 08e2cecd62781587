/*
 * Stateful libFuzzer target for the hub: the input is a program of operations on up to 16
 * server connections and the pools named "p0".."p3" (join, leave, broadcast, broadcast with an
 * exception, free, close, partial consume, feed a close frame or a message, foreach of the hub
 * or of a pool, keep and release, direct send, the clock of the slow timeout, a burst of
 * messages fed at once, resume held input), run from the top and from inside every callback
 * the library makes (on_join, on_leave, on_output, on_close, on_message, on_flow, and the
 * foreach visitors), which take further operations from the same input.
 *
 * Input: bytes 0-3 configure (queue limit, slow-reader policy, member and pool caps, failing
 * allocations, reentry depth, and with byte 1's top bit permessage-deflate: byte 2's low bits
 * then give the minimum size, the server's window and the client's); the rest is the program.
 * With permessage-deflate on, a new connection may go through a real handshake offering it
 * (the op's byte); the hub's broadcasts then reach it compressed (RSV1), and the harness
 * inflates them. A burst is several data messages, compressed or not, maybe fragmented, small
 * on the wire but inflating to up to the message limit, fed as one wsfwd_conn_feed or two: a
 * compressing connection paced during it holds the rest (wsfwd_conn_held), which the "resume"
 * operation feeds (NULL, 0) once it is no longer paced.
 *
 * The codec is the wsfwd command's (cli/compress.c, zlib), not a stored-blocks toy: only real
 * DEFLATE makes a burst small on the wire and large once inflated (what held input is about),
 * it is the codec the library runs with in production, and the library's inflate streams go
 * through the failing allocator too. The compressors are made once per process (the codec
 * keeps one per window size). zlib takes about a third of the time (perf: mostly deflate, for
 * the broadcasts and the clients' bursts, whose messages are up to 4 KiB); a stored-blocks
 * codec would save at most that, and lose the bursts' point. The target runs at about 1000
 * exec/s on a grown corpus (the version before deflate: about 9000, with 60% of the coverage).
 *
 * After every top-level operation the harness drains every connection, decodes the frames
 * (inflating compressed ones), and checks (any failure aborts):
 * - membership: each connection's pool is the one on_join/on_leave told (the model), each
 *   pool's size is its model member count, the hub's pool and member counts match the table,
 *   kept pools stay findable; flow control says what on_flow said, and a paced member's
 *   pool has another member congested;
 * - delivery: no connection gets a broadcast twice, nor its own, nor one of a pool it was not
 *   in during that step, and each arrives byte for byte as sent; under the close policy and
 *   with no failed allocation, a connection that was in the pool from before the broadcast was
 *   asked for until the step ended got it;
 * - order: per pool name, the orders in which the members got the messages are all compatible
 *   (the precedence graph of the receipts has no cycle); per sender, its messages are read
 *   once each, in the order fed, and every member gets them in that order; nothing follows a
 *   close frame;
 * - held input: only compressing connections hold input; one that holds after a feed was
 *   paced during it (not at its start: a feed made while paced is read whole) and still is, or
 *   was told RESUME since; a feed from a callback of the same connection's feed is refused
 *   (WSFWD_ERR_STATE); after a burst, no queue grew past the larger of what it had and the
 *   high mark by more than two maximal messages (plus what other operations queued meanwhile);
 *   no queue is ever past the limit (or one frame on an empty queue);
 * - the end: the harness drains everything and feeds held input until none is held; every
 *   message fed to a connection still open was then read (and delivered as above);
 * - memory: ASan and LSan see every access and every block (the harness frees everything), and
 *   no inflate stream outlives its config.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "wsfwd.h"

#define NCONN 16
#define NNAMES 4
#define MAXMSG 4096 /* messages per run (ids) */
#define MAXOPS 3000
#define MAXCTX 16
#define MAXSEEN 32 /* pools a connection was in during one step */
#define MAXFOUND 64
#define BIGMSG 4096                                /* the message limit with deflate on */
#define MAXFRAME (BIGMSG + WSFWD_FRAME_HEADER_MAX) /* the largest frame sent to a member */
#define BURST 16                                   /* messages per burst, at most */
#define SLACK 512 /* close frames and the like: what a queue may get past its bound */

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
    bool deflate;              /* negotiated permessage-deflate */
    int zbits;                 /* the window its client compresses with */
    bool handshaking;          /* in the harness's handshake feed: callbacks do not reenter */
    int feeding;               /* harness feeds of it on the stack */
    int in_message;            /* its on_message calls on the stack: it is reading input */
    bool split;                /* a burst's first part was fed, not yet its second: no other
                                  bytes may come between (the callbacks of the first part's
                                  feed could feed it) */
    uint32_t pauses, resumes;  /* PAUSE and RESUME told so far */
    uint64_t own;              /* bytes its on_message broadcasts may have queued per member */
    uint8_t *carry;            /* output consumed but not yet a whole frame (MAXFRAME) */
    size_t ncarry;
    int last[NNAMES];             /* the last broadcast received per name, -1 for none */
    int last_from[NCONN][NNAMES]; /* the last message received per sender slot and pool name,
                                     -1 for none (across pools a deferred broadcast may come
                                     after later ones) */
    int last_read; /* the last message of its own it read (on_message), -1 for none */
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
    size_t len; /* the payload's length */
    int sender; /* the slot that was fed it, or -1 (the harness broadcast it) */
    uint32_t sender_gen;
    bool fed;        /* a feed that returned WSFWD_OK had all of it */
    bool compressed; /* sent compressed */
    bool noise;      /* padded with bytes that do not compress */
    bool read;       /* its sender's on_message ran */
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
    bool deflate_on; /* the config has the codec */
    size_t max_queue;
    size_t high_mark;
    uint64_t queued; /* bytes per member any operation may have queued so far (bounds) */
    rec r[NCONN];
    msg *m; /* MAXMSG, kept apart: only the first nmsg are ever read */
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
static msg msgs[MAXMSG];
static uint8_t carries[NCONN][MAXFRAME];

/* The codecs: the library's (its zlib allocations go through the failing allocator), and the
   harness's own, for the clients' compressed messages and for inflating what members get. */
static compress_ctx *lib_zctx;
static wsfwd_deflate_codec lib_codec;
static compress_ctx *cli_zctx;
static wsfwd_deflate_codec cli_codec;
static void *dec_stream;
static uint8_t zscratch[MAXFRAME + 64];

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

/* zlib's allocations for the library's codec (the compressors are made before arming). */
static void *z_malloc(void *opaque, size_t n)
{
    (void)opaque;
    return refuse() ? NULL : malloc(n);
}

static void z_free(void *opaque, void *p)
{
    (void)opaque;
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

/* Byte i of message id's padding: a run that compresses well, or with noise, bytes that do
   not (so that compressed members' queues fill up too). */
static uint8_t filler(int id, bool noise, size_t i)
{
    if (!noise) {
        return (uint8_t)('a' + id % 26);
    }
    uint32_t x = (uint32_t)id * 2654435761u ^ (uint32_t)i * 40503u;
    return (uint8_t)(x >> 13 ^ x);
}

/* Message id's n payload bytes: 'B', the id, its padding. */
static void fill(uint8_t *buf, int id, size_t n, bool noise)
{
    buf[0] = 'B';
    buf[1] = (uint8_t)id;
    buf[2] = (uint8_t)(id >> 8);
    if (noise) {
        for (size_t i = 3; i < n; i++) {
            buf[i] = filler(id, true, i);
        }
    } else {
        memset(buf + 3, filler(id, false, 0), n - 3);
    }
}

/* Whether p is message id's payload as sent (compared whole: a loop of byte comparisons
   would cost the fuzzer a trace call per byte). */
static bool payload_ok(int id, const uint8_t *p, size_t n)
{
    static uint8_t want[BIGMSG + 256];
    const msg *m = &H.m[id];
    if (n != m->len || n < 3 || n > sizeof want) {
        return false;
    }
    fill(want, id, n, m->noise);
    return memcmp(p, want, n) == 0;
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
    CHECK(payload_ok(id, p, n));
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
    if (m->sender >= 0 && m->name >= 0) { /* in the order it was fed them, per pool */
        int *last = &r->last_from[m->sender][m->name];
        if (id <= *last) {
            TRACE("conn %d gets #%d of conn %d after #%d", slot_of(r), id, m->sender, *last);
        }
        CHECK(id > *last);
        *last = id;
    }
}

/* Inflate a compressed message (the server resets its context each message). */
static size_t inflate_frame(const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
    static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
    size_t made = 0;
    for (int part = 0; part < 2; part++) {
        const uint8_t *in = part == 0 ? p : tail;
        size_t left = part == 0 ? n : sizeof tail;
        while (left > 0) {
            size_t got = 0;
            CHECK(made < cap); /* never more than the largest message sent */
            wsfwd_inflate_status st = cli_codec.inflate(cli_codec.user_data, dec_stream, &in, &left,
                                                        out + made, cap - made, &got);
            CHECK(st == WSFWD_INFLATE_OK);
            made += got;
            if (got == 0 && left > 0) {
                CHECK(part == 1); /* only the tail may be left: the sync flush ends it */
                break;
            }
        }
    }
    cli_codec.inflate_reset(cli_codec.user_data, dec_stream);
    return made;
}

static void decode(rec *r, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t take = MAXFRAME - r->ncarry < n ? MAXFRAME - r->ncarry : n;
        memcpy(r->carry + r->ncarry, p, take);
        r->ncarry += take;
        p += take;
        n -= take;
        size_t off = 0;
        for (;;) {
            wsfwd_frame_header fh;
            uint8_t head[WSFWD_FRAME_HEADER_MAX];
            size_t hn = r->ncarry - off < sizeof head ? r->ncarry - off : sizeof head;
            memcpy(head, r->carry + off, hn);
            bool rsv1 = hn > 0 && (head[0] & 0x40);
            head[0] &= (uint8_t)~0x40; /* the parser knows no extension */
            int rc = wsfwd_frame_parse_header(head, hn, WSFWD_ROLE_CLIENT, &fh);
            if (rc == WSFWD_INCOMPLETE) {
                break;
            }
            CHECK(rc == WSFWD_OK && fh.fin && !fh.masked);
            if (fh.payload_len > r->ncarry - off - fh.header_len) {
                CHECK(fh.header_len + fh.payload_len <= MAXFRAME);
                break;
            }
            const uint8_t *pl = r->carry + off + fh.header_len;
            size_t n_pl = (size_t)fh.payload_len;
            if (rsv1) { /* compressed: only for those that negotiated it, data frames only */
                CHECK(r->deflate && fh.opcode != WSFWD_OP_CLOSE && fh.opcode < 8);
                n_pl = inflate_frame(pl, n_pl, zscratch, sizeof zscratch);
                pl = zscratch;
            }
            receive(r, (uint8_t)fh.opcode, pl, n_pl);
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
    memset(m, 0, sizeof *m);
    m->pool = pool;
    m->name = pool != NULL ? name_of(pool) : -1;
    m->except = except != NULL ? slot_of(except) : -1;
    m->except_gen = except != NULL ? except->gen : 0;
    m->t0 = ++H.now;
    m->rc = WSFWD_OK;
    m->step = H.step;
    m->sender = -1;
    return H.nmsg++;
}

/* A message fed to r: its broadcast is recorded when on_message runs. */
static int new_fed_msg(rec *r)
{
    int id = new_msg(wsfwd_conn_pool(r->c), r);
    if (id >= 0) {
        H.m[id].rc = WSFWD_ERR_STATE; /* until on_message broadcasts it */
        H.m[id].sender = slot_of(r);
        H.m[id].sender_gen = r->gen;
    }
    return id;
}

/* The payload of message id, n bytes (at least 3): 'B', the id, its padding. */
static size_t payload(uint8_t *buf, int id, size_t n, bool noise)
{
    fill(buf, id, n, noise);
    H.m[id].len = n;
    H.m[id].noise = noise;
    return n;
}

static void check_queues(void);

static void broadcast(wsfwd_pool *pool, rec *except, uint8_t size)
{
    int id = new_msg(pool, except);
    if (id < 0) {
        return;
    }
    uint8_t buf[3 + 255];
    size_t n = payload(buf, id, 3 + (size_t)size, size & 1); /* odd sizes: noise */
    size_t delivered = 0;
    H.queued += n + WSFWD_FRAME_HEADER_MAX;
    int rc = wsfwd_pool_broadcast(pool, WSFWD_OP_BINARY, buf, n, except != NULL ? except->c : NULL,
                                  &delivered);
    H.m[id].rc = rc;
    /* (the broadcast may have emptied the pool: it is gone now) */
    TRACE("broadcast #%d to %s (%zu bytes) but %d: rc %d, %zu delivered", id,
          H.m[id].name >= 0 ? NAMES[H.m[id].name] : "?", n, except != NULL ? slot_of(except) : -1,
          rc, delivered);
    CHECK(rc == WSFWD_OK || rc == WSFWD_ERR_NOMEM || rc == WSFWD_ERR_POOL_GONE);
    CHECK(rc != WSFWD_ERR_NOMEM || H.alloc_failed);
    check_queues();
}

/* A client's masked frame; rsv1: the first frame of a compressed message. */
static size_t client_frame_ex(uint8_t *buf, bool fin, wsfwd_opcode op, bool rsv1, const uint8_t *p,
                              size_t n)
{
    static const uint8_t key[4] = {1, 2, 3, 4};
    size_t h = wsfwd_frame_encode_header(buf, fin, op, n, key);
    if (rsv1) {
        buf[0] |= 0x40;
    }
    memcpy(buf + h, p, n);
    wsfwd_frame_mask(buf + h, n, key, 0);
    return h + n;
}

static size_t client_frame(uint8_t *buf, wsfwd_opcode op, const uint8_t *p, size_t n)
{
    return client_frame_ex(buf, true, op, false, p, n);
}

/* No queue is past the limit, but for one frame queued on an empty queue (and a close). */
static void check_queues(void)
{
    size_t cap = (H.max_queue > MAXFRAME ? H.max_queue : MAXFRAME) + SLACK;
    for (int i = 0; i < NCONN; i++) {
        if (H.r[i].c != NULL) {
            CHECK(wsfwd_conn_pending(H.r[i].c) <= cap);
        }
    }
}

/* What the queues held before a feed, to bound what it added. */
typedef struct snapshot {
    wsfwd_conn *c[NCONN];
    uint32_t gen[NCONN];
    size_t pending[NCONN];
    uint64_t queued; /* H.queued */
    uint64_t own;    /* the sender's */
} snapshot;

static void snap(snapshot *sn, const rec *sender)
{
    for (int i = 0; i < NCONN; i++) {
        sn->c[i] = H.r[i].c;
        sn->gen[i] = H.r[i].gen;
        sn->pending[i] = H.r[i].c != NULL ? wsfwd_conn_pending(H.r[i].c) : 0;
    }
    sn->queued = H.queued;
    sn->own = sender->own;
}

/*
 * After a compressing sender's feed that began unpaced: a member's queue grows past the larger
 * of what it had and the high mark by at most two messages (the one that took it past the mark
 * paced the sender, which then stops at the next frame boundary; one more for a message whose
 * frames were under way), plus what anything but the sender's broadcasts queued meanwhile.
 */
static void check_bound(const snapshot *sn, const rec *sender)
{
    uint64_t others = (H.queued - sn->queued) - (sender->own - sn->own);
    for (int i = 0; i < NCONN; i++) {
        const rec *m = &H.r[i];
        if (m->c == NULL || m->c != sn->c[i] || m->gen != sn->gen[i]) {
            continue;
        }
        size_t base = sn->pending[i] > H.high_mark ? sn->pending[i] : H.high_mark;
        uint64_t bound = (uint64_t)base + 2 * MAXFRAME + others + SLACK;
        size_t now = wsfwd_conn_pending(m->c);
        if (now > bound) {
            TRACE("conn %d: %zu pending after a burst of conn %d (had %zu, high mark %zu, "
                  "others %llu)",
                  i, now, slot_of(sender), sn->pending[i], H.high_mark, (unsigned long long)others);
        }
        CHECK(now <= bound);
    }
}

/*
 * Feed r's connection, as the program asks, and check what held input promises. burst: the
 * feed is a burst's, whose growth of the queues is bounded (check_bound).
 */
static int feed(rec *r, uint8_t *data, size_t n, bool burst)
{
    wsfwd_conn *c = r->c;
    uint32_t gen = r->gen;
    /* Refused while it reads input (or is being freed); from the callbacks a feed makes once
       it has read (on_output for its new output...) the library may take it. */
    bool must_refuse = r->in_message > 0 || r->freeing;
    bool may_refuse = must_refuse || r->feeding > 0;
    bool paced0 = wsfwd_conn_is_paced(c);
    bool told_paced0 = r->paced; /* the model: differs while an event is still untold */
    wsfwd_state st0 = wsfwd_conn_state(c);
    size_t held0 = wsfwd_conn_held(c);
    uint32_t pauses0 = r->pauses;
    uint32_t resumes0 = r->resumes;
    snapshot sn;
    snap(&sn, r);
    r->feeding++;
    int rc = wsfwd_conn_feed(c, data, n);
    r->feeding--;
    TRACE("feed conn %d %zu bytes (%zu held before, paced %d): rc %d", slot_of(r), n, held0,
          (int)paced0, rc);
    CHECK(rc == WSFWD_ERR_STATE || !must_refuse);
    CHECK(rc != WSFWD_ERR_STATE || may_refuse);
    bool refused = rc == WSFWD_ERR_STATE;
    check_queues();
    if (r->c != c || r->gen != gen) {
        return rc; /* freed by a callback */
    }
    size_t held = wsfwd_conn_held(c);
    TRACE("  conn %d holds %zu, paced %d", slot_of(r), held, (int)wsfwd_conn_is_paced(c));
    CHECK(held == 0 || r->deflate);
    if (refused) {
        CHECK(held == held0);
        return rc;
    }
    bool open0 = st0 == WSFWD_STATE_OPEN || st0 == WSFWD_STATE_CLOSING;
    if (held > 0 && open0 && !H.alloc_failed) {
        CHECK(!paced0); /* a feed made while paced is read whole */
        /* It was paced during this one: PAUSE was told, or it was told before and the
           RESUME owed since (left its pool: told after on_leave) never was, because it was
           paced again first (a callback of on_leave joined it back and it sent). */
        CHECK(r->pauses > pauses0 || told_paced0);
        CHECK(wsfwd_conn_is_paced(c) || r->resumes > resumes0);
    }
    if (burst && r->deflate && !paced0 && open0) {
        check_bound(&sn, r);
    }
    return rc;
}

/* The ids of the messages fed whole by a feed that returned WSFWD_OK. */
static void mark_fed(int first, int end)
{
    for (int id = first; id < end; id++) {
        H.m[id].fed = true;
    }
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

static void op_free(rec *r);

/* The offers a client may make (the op's byte picks one). */
static const char *const OFFERS[4] = {
    "permessage-deflate",
    "permessage-deflate; client_no_context_takeover",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=10; server_max_window_bits=12",
};

/* Open r's new connection through a handshake offering permessage-deflate; false if it failed
   (an allocation refused), and then the connection is freed. */
static bool handshake(rec *r, uint8_t v)
{
    wsfwd_conn *c = r->c;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Extensions: %s\r\n\r\n",
                     OFFERS[v & 3]);
    CHECK(n > 0 && (size_t)n < sizeof req);
    r->handshaking = true; /* callbacks keep the model, and run no operations */
    int rc = wsfwd_conn_feed(c, (uint8_t *)req, (size_t)n);
    wsfwd_deflate_params dp;
    memset(&dp, 0, sizeof dp);
    if (rc == WSFWD_OK && wsfwd_conn_state(c) == WSFWD_STATE_OPEN) {
        r->deflate = wsfwd_conn_deflate(c, &dp, sizeof dp);
        CHECK(r->deflate || H.alloc_failed);
        CHECK(!r->deflate || dp.server_no_context_takeover);
    }
    /* The 101 response is not frames: write it away undecoded. */
    for (;;) {
        wsfwd_iovec iov[4];
        size_t k = wsfwd_conn_output(c, iov, 4);
        size_t bytes = 0;
        for (size_t i = 0; i < k; i++) {
            bytes += iov[i].len;
        }
        if (bytes == 0) {
            break;
        }
        wsfwd_conn_consume(c, bytes);
    }
    r->handshaking = false;
    if (wsfwd_conn_state(c) != WSFWD_STATE_OPEN) {
        CHECK(H.alloc_failed);
        op_free(r);
        return false;
    }
    r->zbits = dp.client_max_window_bits < 9 ? 9 : dp.client_max_window_bits;
    TRACE("conn %d negotiated deflate %d (client window %d)", slot_of(r), (int)r->deflate,
          r->zbits);
    return true;
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
    r->forward = b & 1;
    r->c = c;
    r->pool = NULL;
    r->closed_frame = false;
    r->paced = false;
    r->congested = false;
    r->deflate = false;
    r->in_message = 0;
    r->split = false;
    r->ncarry = 0;
    r->nseen = 0;
    r->last_read = -1;
    for (int i = 0; i < NNAMES; i++) {
        r->last[i] = -1;
    }
    memset(r->last_from, 0xff, sizeof r->last_from); /* -1 */
    memset(r->got, 0, sizeof r->got);
    if (H.deflate_on && (b & 2)) {
        (void)handshake(r, b >> 2);
    } else {
        CHECK(wsfwd_conn_set_open(c) == WSFWD_OK);
    }
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
    int id = -1;
    if (r->split) {
        return;
    }
    if (close_frame) {
        body[0] = 0x03;
        body[1] = 0xe8; /* 1000 */
        n = client_frame(frame, WSFWD_OP_CLOSE, body, 2);
    } else {
        /* The message's id is taken now; the broadcast it causes is recorded when it runs
           (on_message). */
        id = new_fed_msg(r);
        if (id < 0) {
            return;
        }
        n = client_frame(frame, WSFWD_OP_BINARY, body,
                         payload(body, id, 3 + (size_t)size, size & 1));
    }
    if (feed(r, frame, n, false) == WSFWD_OK && id >= 0) {
        mark_fed(id, id + 1);
    }
}

/*
 * A burst: 1 to BURST data messages fed at once (or in two feeds, cut anywhere), each as the
 * next input byte says: bit 0 compressed (if the connection negotiated it), bit 1 in two
 * frames, the rest its size (up to a little past the message limit: those fail it, 1009).
 */
static void op_burst(rec *r, uint8_t b)
{
    static uint8_t body[BIGMSG + 128];
    static uint8_t zb[BIGMSG + BIGMSG / 8 + 256];
    uint8_t wire[BURST * (MAXFRAME + 128)]; /* on the stack: a nested burst needs its own */
    if (r->split) {
        return;
    }
    int count = 1 + (b & (BURST - 1));
    int first = H.nmsg;
    size_t n = 0;
    for (int k = 0; k < count; k++) {
        uint8_t d = next();
        int id = new_fed_msg(r);
        if (id < 0) {
            break;
        }
        size_t len = payload(body, id, 3 + (size_t)(d >> 2) * 66, false);
        const uint8_t *pl = body;
        size_t pn = len;
        bool z = false;
        if (r->deflate && (d & 1)) {
            size_t zn = cli_codec.compress(cli_codec.user_data, r->zbits, body, len, zb, sizeof zb);
            if (zn > 0) {
                pl = zb;
                pn = zn;
                z = true;
            }
        }
        H.m[id].compressed = z;
        if (d & 2) {
            size_t half = pn / 2;
            n += client_frame_ex(wire + n, false, WSFWD_OP_BINARY, z, pl, half);
            n +=
                client_frame_ex(wire + n, true, WSFWD_OP_CONTINUATION, false, pl + half, pn - half);
        } else {
            n += client_frame_ex(wire + n, true, WSFWD_OP_BINARY, z, pl, pn);
        }
    }
    int end = H.nmsg;
    if (end == first) {
        return;
    }
    uint8_t cutb = next();
    size_t cut = (cutb & 0x80) ? n * (cutb & 0x7f) / 128 : n;
    TRACE("burst of conn %d: #%d..#%d, %zu bytes, cut at %zu", slot_of(r), first, end - 1, n, cut);
    wsfwd_conn *c = r->c;
    uint32_t gen = r->gen;
    r->split = cut < n;
    int rc = feed(r, wire, cut, true);
    if (cut < n) {
        if (r->c != c || r->gen != gen) {
            return; /* freed (op_new clears split) */
        }
        r->split = false; /* refused or failed: the rest would not be read either */
        if (rc != WSFWD_OK) {
            return;
        }
        rc = feed(r, wire + cut, n - cut, true);
    }
    if (rc == WSFWD_OK) {
        mark_fed(first, end);
    }
}

/* Feed held input to every connection that holds some and is not paced. */
static void op_resume(void)
{
    for (int i = 0; i < NCONN; i++) {
        rec *r = &H.r[i];
        if (r->c != NULL && !wsfwd_conn_is_paced(r->c) && wsfwd_conn_held(r->c) > 0) {
            TRACE("resume conn %d (%zu held)", i, wsfwd_conn_held(r->c));
            (void)feed(r, NULL, 0, false);
        }
    }
}

static void run_op(void)
{
    H.ops++;
    H.now++;
    uint8_t op = next();
    uint8_t a = next();
    uint8_t b = next();
    rec *r = pick_conn(a);
    /* 0-16: op % 17 (as before the burst and the resume, so the older seeds keep their
       meaning); the top 18 values: 17 the burst, 18 the resume. */
    int code = op < 238 ? op % 17 : 17 + (op - 238) / 9;
    TRACE("op %d a=%d b=%d (conn %d)", code, a, b, r != NULL ? slot_of(r) : -1);
    switch (code) {
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
            H.queued += (size_t)b + WSFWD_FRAME_HEADER_MAX;
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
            H.queued += 3 + WSFWD_FRAME_HEADER_MAX;
            rc = wsfwd_pool_broadcast(p, WSFWD_OP_BINARY, buf, payload(buf, id, 3, false), NULL,
                                      NULL);
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
    case 17:
        if (r != NULL) {
            op_burst(r, b);
        }
        break;
    case 18: op_resume(); break;
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
    if (!r->handshaking) {
        reenter();
    }
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
        r->pauses++;
        break;
    case WSFWD_FLOW_RESUME:
        CHECK(r->paced);
        r->paced = false;
        r->resumes++;
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
    if (!r->handshaking) {
        reenter();
    }
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
    if (!r->handshaking) {
        reenter();
    }
}

static int on_message(wsfwd_conn *c, wsfwd_opcode op, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    rec *r = wsfwd_conn_user_data(c);
    CHECK(r->c == c && op == WSFWD_OP_BINARY && len >= 3 && data[0] == 'B');
    int id = data[1] | data[2] << 8;
    CHECK(id < H.nmsg);
    msg *m = &H.m[id];
    /* Its own, whole, once, in the order fed, compressed if sent so. */
    CHECK(payload_ok(id, data, len));
    CHECK(m->sender == slot_of(r) && m->sender_gen == r->gen && !m->read);
    CHECK(id > r->last_read);
    CHECK(wsfwd_conn_message_compressed(c) == m->compressed);
    r->last_read = id;
    m->read = true;
    /* What the wsfwd server does: broadcast to the sender's pool, all but the sender. */
    wsfwd_pool *pool = wsfwd_conn_pool(c);
    m->pool = pool;
    m->name = pool != NULL ? name_of(pool) : -1;
    m->t0 = ++H.now;
    m->step = H.step; /* asked for now (a held message is read in a later step) */
    r->own += len + WSFWD_FRAME_HEADER_MAX;
    H.queued += len + WSFWD_FRAME_HEADER_MAX;
    if (pool != NULL) {
        m->rc = WSFWD_OK; /* members may decode it before the call returns */
        m->rc = wsfwd_pool_broadcast(pool, op, data, len, c, NULL);
        CHECK(m->rc == WSFWD_OK || m->rc == WSFWD_ERR_NOMEM);
    }
    int rc = m->rc;
    /* The broadcast's callbacks may have freed c, and even put a new connection in r. */
    bool live = r->c == c;
    uint32_t gen = r->gen;
    r->in_message += live;
    reenter();
    if (live && r->gen == gen) { /* not freed meanwhile (op_new clears it for the next) */
        r->in_message--;
    }
    /* A forwarder fails the connection when it could not forward (the callbacks above may
       have freed it: the library then ignores the result). */
    return live && r->forward && pool != NULL && rc != WSFWD_OK ? -1 : 0;
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
        CHECK(wsfwd_conn_deflate(r->c, NULL, 0) == r->deflate);
        if (wsfwd_conn_held(r->c) > 0) { /* a compressing connection that can still read it */
            wsfwd_state state = wsfwd_conn_state(r->c);
            CHECK(r->deflate);
            CHECK(state == WSFWD_STATE_OPEN || state == WSFWD_STATE_CLOSING);
        }
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
    static uint32_t indeg[MAXMSG];
    static uint32_t start[MAXMSG + 1]; /* the edges out of v: adj[start[v] .. start[v + 1]) */
    static uint16_t queue[MAXMSG];
    for (int k = 0; k < NNAMES; k++) {
        size_t ne = H.nedge[k];
        if (ne == 0) {
            continue;
        }
        uint16_t *adj = malloc(ne * sizeof *adj);
        CHECK(adj != NULL);
        memset(indeg, 0, sizeof(uint32_t) * (size_t)H.nmsg);
        memset(start, 0, sizeof(uint32_t) * ((size_t)H.nmsg + 1));
        for (size_t e = 0; e < ne; e++) {
            indeg[H.edge_to[k][e]]++;
            start[H.edge_from[k][e] + 1]++;
        }
        for (int v = 0; v < H.nmsg; v++) {
            start[v + 1] += start[v];
        }
        for (size_t e = 0; e < ne; e++) { /* fill, moving start[v] on; shifted back below */
            adj[start[H.edge_from[k][e]]++] = H.edge_to[k][e];
        }
        for (int v = H.nmsg; v > 0; v--) {
            start[v] = start[v - 1];
        }
        start[0] = 0;
        size_t qn = 0;
        for (int v = 0; v < H.nmsg; v++) {
            if (indeg[v] == 0) {
                queue[qn++] = (uint16_t)v;
            }
        }
        for (size_t qi = 0; qi < qn; qi++) {
            uint16_t v = queue[qi];
            for (uint32_t e = start[v]; e < start[v + 1]; e++) {
                if (--indeg[adj[e]] == 0) {
                    queue[qn++] = adj[e];
                }
            }
        }
        free(adj);
        CHECK(qn == (size_t)H.nmsg); /* every message sorted: no cycle */
    }
}

/* Write everything, as often as needed: a callback of one drain (a resumed sender...) may
   queue more output for connections drained before it. */
static void drain_all(void)
{
    for (bool again = true; again;) {
        again = false;
        for (int i = 0; i < NCONN; i++) {
            if (H.r[i].c != NULL && wsfwd_conn_pending(H.r[i].c) > 0) {
                consume(&H.r[i], SIZE_MAX);
                again = true;
            }
        }
    }
}

static void end_step(void)
{
    drain_all();
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

/*
 * The end of the program: drain every queue and feed held input until none is held (no
 * operation runs from callbacks now: the input is used up). Then every message fed whole to a
 * connection still open was read, in order (on_message checks), and its broadcast delivered
 * (end_step's checks).
 */
static void resume_all(void)
{
    for (int round = 0;; round++) {
        CHECK(round < 100000); /* held input shrinks each round */
        drain_all();
        bool any = false;
        for (int i = 0; i < NCONN; i++) {
            rec *r = &H.r[i];
            if (r->c != NULL && wsfwd_conn_held(r->c) > 0) {
                CHECK(!wsfwd_conn_is_paced(r->c)); /* nothing is congested now */
                TRACE("end: resume conn %d (%zu held)", i, wsfwd_conn_held(r->c));
                (void)feed(r, NULL, 0, false);
                any = true;
            }
        }
        if (!any) {
            break;
        }
    }
    end_step();
    for (int id = 0; id < H.nmsg; id++) {
        const msg *m = &H.m[id];
        if (m->sender < 0 || !m->fed) {
            continue;
        }
        const rec *s = &H.r[m->sender];
        if (s->c == NULL || s->gen != m->sender_gen || wsfwd_conn_state(s->c) != WSFWD_STATE_OPEN) {
            continue;
        }
        if (!m->read) {
            TRACE("#%d, fed to conn %d, never read", id, m->sender);
        }
        CHECK(m->read);
    }
}

/* The codecs, made once: zlib's compressors (one per window size) live for the process. */
static void codecs_init(void)
{
    if (lib_zctx != NULL) {
        return;
    }
    CHECK(compress_codec_init_alloc(&lib_zctx, 1, &lib_codec, z_malloc, z_free, NULL) == 0);
    CHECK(compress_codec_init(&cli_zctx, 6, &cli_codec) == 0);
    dec_stream = cli_codec.inflate_new(cli_codec.user_data, 15);
    CHECK(dec_stream != NULL);
    uint8_t in[64];
    uint8_t out[256];
    memset(in, 'x', sizeof in);
    for (int bits = 9; bits <= 15; bits++) { /* made now, before any allocation may fail */
        CHECK(lib_codec.compress(lib_codec.user_data, bits, in, sizeof in, out, sizeof out) > 0);
        CHECK(cli_codec.compress(cli_codec.user_data, bits, in, sizeof in, out, sizeof out) > 0);
    }
}

/* With byte 1's top bit: the codec, queues that fit a few messages of the limit, maybe low
   marks (byte 2's top bit). */
static void configure_deflate(const uint8_t *data)
{
    static const size_t MIN_SIZE[4] = {0, 16, 64, 256};
    H.max_queue = 1024 + (size_t)data[0] * 256;
    CHECK(wsfwd_config_set_deflate(H.cfg, &lib_codec, sizeof lib_codec) == WSFWD_OK);
    CHECK(wsfwd_config_set_deflate_params(H.cfg, 8 + (data[2] >> 2 & 7), (data[2] & 0x40) ? 9 : 15,
                                          data[2] & 0x20) == WSFWD_OK);
    CHECK(wsfwd_config_set_deflate_min_size(H.cfg, MIN_SIZE[data[2] & 3]) == WSFWD_OK);
    CHECK(wsfwd_config_set_max_queue(H.cfg, H.max_queue) == WSFWD_OK);
    H.high_mark = H.max_queue / 2;
    if (data[2] & 0x80) { /* low marks: a burst could pass the bound well before the limit */
        H.high_mark = H.max_queue / 8;
        CHECK(wsfwd_config_set_queue_marks(H.cfg, H.high_mark, H.max_queue / 32) == WSFWD_OK);
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
    codecs_init();
    H.m = msgs;
    H.in = data;
    H.len = size;
    H.pos = 4;
    H.max_depth = 2 + (data[3] & 3);
    wsfwd_allocator alloc = {fz_malloc, fz_realloc, fz_free, NULL};
    CHECK(wsfwd_config_new(&alloc, &H.cfg) == WSFWD_OK);
    CHECK(wsfwd_config_set_random(H.cfg, fz_random, NULL) == WSFWD_OK);
    CHECK(wsfwd_config_set_max_message(H.cfg, BIGMSG) == WSFWD_OK); /* no frame past MAXFRAME */
    H.deflate_on = data[1] & 0x80;
    if (H.deflate_on) {
        configure_deflate(data);
    } else {
        H.max_queue = 64 + (size_t)data[0] * 16;
        H.high_mark = H.max_queue / 2; /* the default marks */
        CHECK(wsfwd_config_set_max_queue(H.cfg, H.max_queue) == WSFWD_OK);
    }
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
        H.r[i].carry = carries[i];
        H.r[i].last_read = -1;
        for (int k = 0; k < NNAMES; k++) {
            H.r[i].last[k] = -1;
        }
        memset(H.r[i].last_from, 0xff, sizeof H.r[i].last_from); /* -1 */
    }

    while (more()) {
        run_op();
        CHECK(H.depth == 0 && H.nctx == 0 && H.walking == 0);
        end_step();
    }
    resume_all();
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
    compress_stats zs;
    compress_codec_stats(lib_zctx, &zs);
    CHECK(zs.inflate_streams == 0); /* every stream went back to the codec */
    for (int k = 0; k < NNAMES; k++) {
        free(H.edge_from[k]);
        free(H.edge_to[k]);
    }
    return 0;
}
