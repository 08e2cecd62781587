/*
 * wsfwd --redis: rooms across nodes through Redis pub/sub. See cluster.h for the model and
 * docs/scaling.md for what it guarantees.
 *
 * Two hiredis asynchronous connections: `pub` for PUBLISH and the health-check PING, `sub`
 * in subscribe mode. Each socket is registered with the loop (loop.h) when its connection is
 * made and unregistered by hiredis's cleanup hook; the hooks addRead/delRead/addWrite/delWrite
 * set the events it waits for, and the loop's callback calls redisAsyncHandleRead/Write.
 * hiredis 0.14 has no timer hook, so the connect timeout, the reconnection backoff and the
 * health check are one loop timer of our own, armed for the earliest of them.
 *
 * It takes the loop, the options and the server's hubs; it reaches into nothing else.
 *
 * The link is up when both connections answered a PING (after AUTH and SELECT). Any error,
 * on either connection, takes the whole link down: both are closed, every message still in
 * flight is delivered locally, and a reconnection is scheduled with backoff.
 */
#define _GNU_SOURCE

#include "cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster_proto.h"
#include "log.h"
#include "random.h"
#include "secret.h"
#include "table.h"

#ifndef WSFWD_HAVE_HIREDIS

/* A build without hiredis: --redis is refused; every other hook does nothing. */

int cluster_open(cluster **out, loop *lp, const options *o, const cluster_rooms *rooms)
{
    (void)lp;
    (void)rooms;
    *out = NULL;
    if (o->redis != NULL) {
        fprintf(stderr, "wsfwd: --redis: this wsfwd was built without Redis support "
                        "(rebuild with libhiredis-dev installed, or -DWSFWD_REDIS=ON)\n");
        return -1;
    }
    return 0;
}

void cluster_free(cluster *cl)
{
    (void)cl;
}

bool cluster_on_message(cluster *cl, wsfwd_conn *conn, wsfwd_opcode op, const uint8_t *data,
                        size_t len)
{
    (void)cl;
    (void)conn;
    (void)op;
    (void)data;
    (void)len;
    return false;
}

void cluster_on_join(cluster *cl, wsfwd_pool *pool, wsfwd_conn *conn)
{
    (void)cl;
    (void)pool;
    (void)conn;
}

void cluster_on_leave(cluster *cl, wsfwd_pool *pool, wsfwd_conn *conn)
{
    (void)cl;
    (void)pool;
    (void)conn;
}

void cluster_stats_write(const cluster *cl, jsonw *w)
{
    (void)cl;
    (void)w;
}

bool cluster_figures_get(const cluster *cl, cluster_figures *out)
{
    (void)cl;
    (void)out;
    return false;
}

#else /* WSFWD_HAVE_HIREDIS */

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#define BACKOFF_BASE_MS 100
#define BACKOFF_MAX_MS 5000
#define PING_INTERVAL_MS 1000
#define CHANNEL_MAX (CLUSTER_ROOM_PREFIX_LEN + 4096)

enum room_state { ROOM_IDLE, ROOM_SUBSCRIBING, ROOM_SUBSCRIBED, ROOM_UNSUBSCRIBING };

/* A local message published (or held until its room is subscribed) and not yet back. */
typedef struct pending {
    struct pending *next;
    uint64_t seq;
    wsfwd_conn *sender; /* NULL once the sender left */
    size_t size;        /* bytes of env */
    bool published;
    uint8_t env[];
} pending;

typedef struct room {
    pending *head, *tail;
    size_t members;
    enum room_state state;
    unsigned busy; /* inside a broadcast to it: a last leave is handled after */
    size_t chlen;
    char ch[];
} room;

typedef struct rconn {
    struct cluster *cl;
    redisAsyncContext *ac;
    const char *name; /* "publish" or "subscribe" */
    bool want_read, want_write;
    bool ready;     /* answered its PING */
    loop_handle ev; /* its socket in the loop while ac is set */
} rconn;

struct cluster {
    loop *lp;
    cluster_rooms hubs;
    size_t max_message; /* --max-message: the largest payload an envelope may carry */
    loop_timer timer;   /* the earliest of next_attempt, connect_deadline, the ping's */
    cluster_url url;
    /* url.host resolved once at start (no lookup in the loop); each failed attempt moves on
       to the next address, as hiredis would try them in turn. */
    char addrs[4][INET6_ADDRSTRLEN];
    size_t naddrs;
    size_t addr_cur;
    uint8_t node[CLUSTER_NODE_ID_LEN];
    char node_hex[2 * CLUSTER_NODE_ID_LEN + 1];
    rconn pub, sub;
    cluster_link link;
    bool failed; /* an error during this turn: tear down after the events */
    char fail_why[160];
    bool tearing; /* inside teardown: callbacks with NULL replies are expected */
    bool was_up;  /* the link has been up once (for the log lines) */
    bool warned;  /* the down state has been logged for this outage */
    unsigned attempts;
    uint64_t next_attempt;
    uint64_t connect_deadline;
    uint64_t next_ping;
    uint64_t ping_sent;
    bool ping_out;
    uint64_t seq;
    bool local_first;
    size_t max_inflight;
    size_t inflight; /* bytes held in pending entries, or of unanswered PUBLISHes */
    unsigned timeout_ms;
    wsfwd_table rooms; /* room * by channel */
    size_t nsubscribed;
    /* Counters for /stats. */
    uint64_t published;
    uint64_t received;
    uint64_t local_only;       /* local messages sent while the link was down */
    uint64_t dropped_inflight; /* local messages over the in-flight cap: delivered locally */
    uint64_t publish_errors;
    uint64_t malformed;
    uint64_t reconnects;
    uint64_t link_losses;
};

static uint64_t rand64(void)
{
    uint64_t v = 0;
    if (wsfwd_random_bytes(&v, sizeof v, WSFWD_RANDOM_NONBLOCK) != 0) {
        v = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15u ^ (uint64_t)(uintptr_t)&v;
    }
    return v;
}

/* ---- Rooms ---------------------------------------------------------------------------------- */

/* An entry of cl->rooms: a pointer to the room, whose channel is the key. */
static const void *room_key(const void *entry, size_t *len)
{
    const room *r = *(room *const *)entry;
    *len = r->chlen;
    return r->ch;
}

static room *room_find(cluster *cl, const char *ch, size_t len)
{
    room **slot = wsfwd_table_find(&cl->rooms, ch, len);
    return slot != NULL ? *slot : NULL;
}

static room *room_add(cluster *cl, const char *ch, size_t len)
{
    room **slot = wsfwd_table_insert(&cl->rooms, ch, len);
    if (slot == NULL) {
        return NULL;
    }
    room *r = calloc(1, sizeof *r + len);
    if (r == NULL) {
        wsfwd_table_remove(&cl->rooms, slot);
        return NULL;
    }
    memcpy(r->ch, ch, len);
    r->chlen = len;
    *slot = r;
    return r;
}

static void pending_free_all(cluster *cl, room *r)
{
    while (r->head != NULL) {
        pending *p = r->head;
        r->head = p->next;
        cl->inflight -= p->size;
        free(p);
    }
    r->tail = NULL;
}

static void room_remove(cluster *cl, room *r)
{
    wsfwd_table_remove(&cl->rooms, wsfwd_table_find(&cl->rooms, r->ch, r->chlen));
    pending_free_all(cl, r);
    if (r->state == ROOM_SUBSCRIBED) {
        cl->nsubscribed--;
    }
    free(r);
}

/* The channel of the pool a connection is in; 0 if none. */
static size_t pool_channel(const cluster *cl, const wsfwd_pool *pool, char *out, size_t cap)
{
    if (pool == NULL) {
        return 0;
    }
    wsfwd_str name = wsfwd_pool_name(pool);
    return cluster_channel(wsfwd_pool_hub(pool) == cl->hubs.global, name.ptr, name.len, out, cap);
}

static wsfwd_pool *room_pool(const cluster *cl, const room *r)
{
    bool global;
    const char *name;
    size_t nlen;
    if (cluster_channel_parse(r->ch, r->chlen, &global, &name, &nlen) != 0) {
        return NULL;
    }
    return global ? cl->hubs.global_pool : wsfwd_hub_find(cl->hubs.rooms, name, nlen);
}

static void deliver(cluster *cl, room *r, uint8_t opcode, const uint8_t *data, size_t len,
                    const wsfwd_conn *except)
{
    wsfwd_pool *pool = room_pool(cl, r);
    if (pool != NULL) {
        r->busy++; /* a slow member closed by the broadcast leaves the room meanwhile */
        (void)wsfwd_pool_broadcast(pool, (wsfwd_opcode)opcode, data, len, except, NULL);
        r->busy--;
    }
}

static void room_last_left(cluster *cl, room *r);

/* ---- Commands ------------------------------------------------------------------------------- */

/* Note the first error of the turn; the link is torn down by the timer, due at once. */
static void fail(cluster *cl, const char *fmt, const char *detail)
{
    if (!cl->failed) {
        cl->failed = true;
        loop_timer_set(&cl->timer, 0);
        snprintf(cl->fail_why, sizeof cl->fail_why, fmt, detail != NULL ? detail : "?");
    }
}

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata);

static void log_room(const room *r, const char *what)
{
    if (log_enabled(LOG_DEBUG)) {
        char shown[96];
        log_escape(r->ch, r->chlen, shown, sizeof shown);
        LOG(LOG_DEBUG, "redis: %s channel=%s members=%zu", what, shown, r->members);
    }
}

static void room_subscribe(cluster *cl, room *r)
{
    log_room(r, "subscribe");
    if (redisAsyncCommand(cl->sub.ac, on_sub_reply, NULL, "SUBSCRIBE %b", r->ch, r->chlen) !=
        REDIS_OK) {
        fail(cl, "cannot send SUBSCRIBE: %s", cl->sub.ac->errstr);
        return;
    }
    r->state = ROOM_SUBSCRIBING;
}

static void room_unsubscribe(cluster *cl, room *r)
{
    log_room(r, "unsubscribe");
    if (redisAsyncCommand(cl->sub.ac, on_sub_reply, NULL, "UNSUBSCRIBE %b", r->ch, r->chlen) !=
        REDIS_OK) {
        fail(cl, "cannot send UNSUBSCRIBE: %s", cl->sub.ac->errstr);
        return;
    }
    if (r->state == ROOM_SUBSCRIBED) {
        cl->nsubscribed--;
    }
    r->state = ROOM_UNSUBSCRIBING;
}

static void on_publish_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    cluster *cl = ac->data;
    redisReply *rp = reply;
    if (cl->local_first) {
        cl->inflight -= (size_t)(uintptr_t)privdata;
    }
    if (rp == NULL || cl->tearing) {
        return;
    }
    if (rp->type == REDIS_REPLY_ERROR) {
        cl->publish_errors++;
        fail(cl, "PUBLISH refused: %s", rp->str);
    }
}

static bool publish(cluster *cl, room *r, const uint8_t *env, size_t size)
{
    if (redisAsyncCommand(cl->pub.ac, on_publish_reply, (void *)(uintptr_t)size, "PUBLISH %b %b",
                          r->ch, r->chlen, env, size) != REDIS_OK) {
        fail(cl, "cannot send PUBLISH: %s", cl->pub.ac->errstr);
        return false;
    }
    cl->published++;
    return true;
}

/* Publish the held messages of a room that is now subscribed. */
static void publish_held(cluster *cl, room *r)
{
    for (pending *p = r->head; p != NULL && !cl->failed; p = p->next) {
        if (!p->published) {
            p->published = publish(cl, r, p->env, p->size);
        }
    }
}

/* ---- The subscription ----------------------------------------------------------------------- */

static void log_malformed(cluster *cl, const char *ch, size_t chlen, const char *why)
{
    cl->malformed++;
    /* The first one, then one in a thousand: a flood must not flood the log. */
    if (cl->malformed == 1 || cl->malformed % 1000 == 0) {
        char shown[96];
        log_escape(ch, chlen, shown, sizeof shown);
        LOG(LOG_WARN, "redis: dropped a malformed message on channel %s: %s (%" PRIu64 " so far)",
            shown, why, cl->malformed);
    }
}

static void on_message_from_redis(cluster *cl, const char *ch, size_t chlen, const uint8_t *data,
                                  size_t len)
{
    room *r = room_find(cl, ch, chlen);
    if (r == NULL || r->state != ROOM_SUBSCRIBED) {
        return; /* a room left meanwhile */
    }
    cluster_envelope e;
    int rc = cluster_envelope_decode(data, len, cl->max_message, &e);
    if (rc != CLUSTER_ENV_OK) {
        log_malformed(cl, ch, chlen, cluster_envelope_strerror(rc));
        return;
    }
    cl->received++;
    if (memcmp(e.node, cl->node, CLUSTER_NODE_ID_LEN) != 0) {
        deliver(cl, r, e.opcode, e.payload, e.len, NULL);
        if (r->members == 0) {
            room_last_left(cl, r);
        }
        return;
    }
    if (cl->local_first) {
        return; /* delivered locally when it was sent */
    }
    /* Our own message, back in Redis's order: deliver it to all but its sender. Entries older
       than it cannot still come (one connection's publications arrive in order), so they are
       delivered now; a message we do not hold was delivered locally already (link lost). */
    while (r->head != NULL && r->head->published && r->head->seq <= e.seq) {
        pending *p = r->head;
        r->head = p->next;
        if (r->head == NULL) {
            r->tail = NULL;
        }
        cl->inflight -= p->size;
        cluster_envelope pe;
        if (p->seq == e.seq) {
            deliver(cl, r, e.opcode, e.payload, e.len, p->sender);
        } else if (cluster_envelope_decode(p->env, p->size, 0, &pe) == CLUSTER_ENV_OK) {
            deliver(cl, r, pe.opcode, pe.payload, pe.len, p->sender);
        }
        free(p);
        if (r->members == 0) {
            room_last_left(cl, r);
            return;
        }
    }
}

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    cluster *cl = ac->data;
    redisReply *rp = reply;
    if (rp == NULL || cl->tearing) {
        return;
    }
    if (rp->type == REDIS_REPLY_ERROR) {
        fail(cl, "subscription refused: %s", rp->str);
        return;
    }
    if (rp->type != REDIS_REPLY_ARRAY || rp->elements < 3 ||
        rp->element[0]->type != REDIS_REPLY_STRING || rp->element[1]->type != REDIS_REPLY_STRING) {
        return;
    }
    const char *kind = rp->element[0]->str;
    const char *ch = rp->element[1]->str;
    size_t chlen = rp->element[1]->len;
    if (strcmp(kind, "message") == 0) {
        if (rp->element[2]->type == REDIS_REPLY_STRING) {
            on_message_from_redis(cl, ch, chlen, (const uint8_t *)rp->element[2]->str,
                                  rp->element[2]->len);
        }
        return;
    }
    room *r = room_find(cl, ch, chlen);
    if (r == NULL) {
        return;
    }
    if (strcmp(kind, "subscribe") == 0 && r->state == ROOM_SUBSCRIBING) {
        if (r->members == 0) {
            room_unsubscribe(cl, r);
            return;
        }
        r->state = ROOM_SUBSCRIBED;
        cl->nsubscribed++;
        log_room(r, "subscribed");
        publish_held(cl, r);
    } else if (strcmp(kind, "unsubscribe") == 0 && r->state == ROOM_UNSUBSCRIBING) {
        log_room(r, "unsubscribed");
        if (r->members > 0) {
            room_subscribe(cl, r); /* someone joined again meanwhile */
        } else {
            room_remove(cl, r);
        }
    }
}

/* ---- The link ------------------------------------------------------------------------------- */

/* What the socket waits for, as hiredis asks through its hooks. */
static void rconn_sync(rconn *rc)
{
    if (rc->ev.slot != LOOP_NONE) {
        loop_set_events(rc->cl->lp, &rc->ev,
                        (rc->want_read ? LOOP_IN : 0u) | (rc->want_write ? LOOP_OUT : 0u));
    }
}

static void ev_add_read(void *p)
{
    ((rconn *)p)->want_read = true;
    rconn_sync(p);
}

static void ev_del_read(void *p)
{
    ((rconn *)p)->want_read = false;
    rconn_sync(p);
}

static void ev_add_write(void *p)
{
    ((rconn *)p)->want_write = true;
    rconn_sync(p);
}

static void ev_del_write(void *p)
{
    ((rconn *)p)->want_write = false;
    rconn_sync(p);
}

/* hiredis frees the context (its own error, or ours): forget it, and its socket. */
static void ev_cleanup(void *p)
{
    rconn *rc = p;
    loop_del(rc->cl->lp, &rc->ev);
    rc->ac = NULL;
    rc->want_read = rc->want_write = false;
    rc->ready = false;
    if (!rc->cl->tearing) {
        fail(rc->cl, "the %s connection closed", rc->name);
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    cluster *cl = ac->data;
    if (status != REDIS_OK) {
        fail(cl, "cannot connect: %s", ac->errstr);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    cluster *cl = ac->data;
    if (!cl->tearing) {
        fail(cl, "connection lost: %s", status == REDIS_OK ? "closed" : ac->errstr);
    }
}

static void link_up(cluster *cl)
{
    cl->link = CLUSTER_LINK_UP;
    cl->attempts = 0;
    cl->warned = false;
    cl->next_ping = loop_now(cl->lp) + PING_INTERVAL_MS;
    cl->ping_out = false;
    LOG(LOG_INFO, "redis: link to %s:%d up (node %s): rooms are shared with the other nodes",
        cl->url.host, cl->url.port, cl->node_hex);
    if (cl->was_up) {
        cl->reconnects++;
    }
    cl->was_up = true;
    wsfwd_table_iter it;
    wsfwd_table_iter_init(&cl->rooms, &it);
    for (room **slot; !cl->failed && (slot = wsfwd_table_iter_next(&cl->rooms, &it)) != NULL;) {
        room *r = *slot;
        if (r->members > 0 && r->state == ROOM_IDLE) {
            room_subscribe(cl, r);
        }
    }
}

static void on_ping_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rconn *rc = privdata;
    cluster *cl = ac->data;
    redisReply *rp = reply;
    if (rp == NULL || cl->tearing) {
        return;
    }
    if (rp->type == REDIS_REPLY_ERROR) {
        fail(cl, "PING refused: %s", rp->str);
        return;
    }
    if (cl->link == CLUSTER_LINK_CONNECTING) {
        rc->ready = true;
        if (cl->pub.ready && cl->sub.ready) {
            link_up(cl);
        }
    } else if (rc == &cl->pub) {
        cl->ping_out = false;
    }
}

static char AUTH_NAME[] = "AUTH";
static char SELECT_NAME[] = "SELECT";

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    const char *what = privdata;
    cluster *cl = ac->data;
    redisReply *rp = reply;
    if (rp != NULL && !cl->tearing && rp->type == REDIS_REPLY_ERROR) {
        char detail[140];
        snprintf(detail, sizeof detail, "%s: %s", what, rp->str);
        fail(cl, "%s", detail);
    }
}

static void rconn_on_ready(void *owner, loop_handle *h, unsigned events);

static int rconn_open(cluster *cl, rconn *rc)
{
    redisAsyncContext *ac = redisAsyncConnect(cl->addrs[cl->addr_cur], cl->url.port);
    if (ac == NULL) {
        fail(cl, "cannot connect: %s", "out of memory");
        return -1;
    }
    if (ac->err) {
        fail(cl, "cannot connect: %s", ac->errstr);
        redisAsyncFree(ac);
        return -1;
    }
    /* The connect completes when the socket turns writable. */
    if (loop_add(cl->lp, &rc->ev, ac->c.fd, LOOP_OUT, rconn_on_ready, rc) != 0) {
        fail(cl, "cannot connect: %s", "out of memory");
        redisAsyncFree(ac);
        return -1;
    }
    rc->cl = cl;
    rc->ac = ac;
    rc->ready = false;
    ac->data = cl;
    ac->ev.data = rc;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    rc->want_write = true;
    rc->want_read = false;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    int ok = REDIS_OK;
    if (cl->url.has_password) {
        if (cl->url.user[0] != '\0') {
            ok = redisAsyncCommand(ac, on_setup_reply, AUTH_NAME, "AUTH %s %s", cl->url.user,
                                   cl->url.password);
        } else {
            ok = redisAsyncCommand(ac, on_setup_reply, AUTH_NAME, "AUTH %s", cl->url.password);
        }
    }
    if (ok == REDIS_OK && cl->url.db >= 0) {
        ok = redisAsyncCommand(ac, on_setup_reply, SELECT_NAME, "SELECT %d", cl->url.db);
    }
    if (ok == REDIS_OK) {
        ok = redisAsyncCommand(ac, on_ping_reply, rc, "PING");
    }
    if (ok != REDIS_OK) {
        fail(cl, "cannot queue the first commands: %s", ac->errstr);
        return -1;
    }
    return 0;
}

static void link_connect(cluster *cl)
{
    cl->link = CLUSTER_LINK_CONNECTING;
    cl->connect_deadline = loop_now(cl->lp) + cl->timeout_ms;
    LOG(LOG_DEBUG, "redis: connecting to %s:%d", cl->url.host, cl->url.port);
    if (rconn_open(cl, &cl->pub) == 0) {
        (void)rconn_open(cl, &cl->sub);
    }
}

/* Close both connections; deliver locally what had not come back; schedule a retry. */
static void link_down(cluster *cl)
{
    bool was = cl->link == CLUSTER_LINK_UP;
    if (!was) {
        cl->addr_cur = (cl->addr_cur + 1) % cl->naddrs; /* try the host's next address */
    }
    cl->tearing = true;
    if (cl->pub.ac != NULL) {
        redisAsyncFree(cl->pub.ac);
    }
    if (cl->sub.ac != NULL) {
        redisAsyncFree(cl->sub.ac);
    }
    cl->pub.ac = cl->sub.ac = NULL;
    cl->pub.ready = cl->sub.ready = false;
    cl->tearing = false;
    size_t rescued = 0;
    /* The walk may remove the room it is on (table.h); deliver() defers any other removal. */
    wsfwd_table_iter it;
    wsfwd_table_iter_init(&cl->rooms, &it);
    for (room **slot; (slot = wsfwd_table_iter_next(&cl->rooms, &it)) != NULL;) {
        room *r = *slot;
        while (r->head != NULL) {
            pending *p = r->head;
            r->head = p->next;
            cl->inflight -= p->size;
            cluster_envelope e;
            if (cluster_envelope_decode(p->env, p->size, 0, &e) == CLUSTER_ENV_OK) {
                deliver(cl, r, e.opcode, e.payload, e.len, p->sender);
            }
            rescued++;
            free(p);
        }
        r->tail = NULL;
        r->state = ROOM_IDLE;
        if (r->members == 0) {
            room_remove(cl, r);
        }
    }
    cl->nsubscribed = 0;
    if (cl->local_first) {
        cl->inflight = 0;
    }
    cl->link = CLUSTER_LINK_DOWN;
    uint32_t wait =
        cluster_backoff_ms(cl->attempts, BACKOFF_BASE_MS, BACKOFF_MAX_MS, (uint32_t)rand64());
    if (cl->attempts < 16) {
        cl->attempts++;
    }
    cl->next_attempt = loop_now(cl->lp) + wait;
    if (was) {
        cl->link_losses++;
    }
    if (!cl->warned) {
        cl->warned = true;
        LOG(LOG_WARN,
            "redis: link to %s:%d %s: %s; rooms work on this node alone until it "
            "is back (%zu in-flight messages delivered locally; retrying)",
            cl->url.host, cl->url.port, was ? "lost" : "unavailable", cl->fail_why, rescued);
    } else {
        LOG(LOG_DEBUG, "redis: still unavailable: %s; next attempt in %u ms", cl->fail_why, wait);
    }
    cl->failed = false;
}

/* --redis-password-file: the file's bytes without one final newline, 1 to 255 of them. */
static int read_password(const char *path, cluster_url *u)
{
    const secret_rules rules = {
        .what = "Redis password file", .min = 1, .max = sizeof u->password - 1, .no_nul = true};
    char buf[SECRET_BUF_SIZE(sizeof u->password - 1)];
    char err[512];
    size_t n;
    secret_status st = secret_read(path, &rules, buf, &n, err, sizeof err);
    if (st == SECRET_OPEN) {
        fprintf(stderr, "wsfwd: %s\n", err);
        return -1;
    }
    if (st != SECRET_OK) {
        fprintf(stderr, "wsfwd: the Redis password file %s must hold 1 to %zu bytes (no NUL)\n",
                path, sizeof u->password - 1);
        return -1;
    }
    memcpy(u->password, buf, n + 1);
    secret_wipe(buf, sizeof buf);
    u->has_password = true;
    return 0;
}

static int cluster_resolve(cluster *cl)
{
    /* hiredis would look the name up with a blocking getaddrinfo() at every connect: look it up
       once here, at start-up, and connect to the address from then on. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(cl->url.host, NULL, &hints, &ai);
    if (gai != 0 || ai == NULL) {
        fprintf(stderr, "wsfwd: --redis: cannot resolve '%s': %s\n", cl->url.host,
                gai != 0 ? gai_strerror(gai) : "no address");
        return -1;
    }
    for (struct addrinfo *p = ai; p != NULL && cl->naddrs < 4; p = p->ai_next) {
        const void *bin = p->ai_family == AF_INET6
                              ? (const void *)&((const struct sockaddr_in6 *)p->ai_addr)->sin6_addr
                              : (const void *)&((const struct sockaddr_in *)p->ai_addr)->sin_addr;
        if ((p->ai_family == AF_INET || p->ai_family == AF_INET6) &&
            inet_ntop(p->ai_family, bin, cl->addrs[cl->naddrs], INET6_ADDRSTRLEN) != NULL) {
            cl->naddrs++;
        }
    }
    freeaddrinfo(ai);
    if (cl->naddrs == 0) {
        fprintf(stderr, "wsfwd: --redis: '%s' has no IPv4 or IPv6 address\n", cl->url.host);
        return -1;
    }
    return 0;
}

static void cluster_on_timer(void *owner);

int cluster_open(cluster **out, loop *lp, const options *o, const cluster_rooms *rooms)
{
    *out = NULL;
    if (o->redis == NULL) {
        return 0;
    }
    cluster *cl = calloc(1, sizeof *cl);
    if (cl == NULL) {
        fprintf(stderr, "wsfwd: out of memory\n");
        return -1;
    }
    const char *why = NULL;
    if (cluster_url_parse(o->redis, &cl->url, &why) != 0) {
        fprintf(stderr,
                "wsfwd: --redis: %s (HOST:PORT or "
                "redis://[:PASSWORD@]HOST[:PORT][/DB])\n",
                why);
        free(cl);
        return -1;
    }
    if ((o->redis_password_file != NULL && read_password(o->redis_password_file, &cl->url) != 0) ||
        cluster_resolve(cl) != 0) {
        free(cl);
        return -1;
    }
    cl->lp = lp;
    cl->hubs = *rooms;
    cl->max_message = o->max_message;
    cl->pub.cl = cl->sub.cl = cl;
    cl->pub.name = "publish";
    cl->sub.name = "subscribe";
    cl->pub.ev.slot = cl->sub.ev.slot = LOOP_NONE;
    uint64_t a = rand64(), b = rand64();
    memcpy(cl->node, &a, 8);
    memcpy(cl->node + 8, &b, 8);
    for (int i = 0; i < CLUSTER_NODE_ID_LEN; i++) {
        snprintf(cl->node_hex + 2 * i, 3, "%02x", cl->node[i]);
    }
    uint64_t key[2] = {rand64(), rand64()};
    wsfwd_table_init(&cl->rooms, NULL, sizeof(room *), 64, key, room_key);
    cl->local_first = o->redis_local_first;
    cl->max_inflight = o->redis_max_inflight;
    cl->timeout_ms = o->redis_timeout_ms;
    cl->link = CLUSTER_LINK_DOWN;
    cl->next_attempt = loop_now(lp); /* at once, from the loop */
    loop_timer_add(lp, &cl->timer, cluster_on_timer, cl);
    loop_timer_set(&cl->timer, cl->next_attempt);
    snprintf(cl->fail_why, sizeof cl->fail_why, "not connected yet");
    LOG(LOG_INFO, "redis: node %s, Redis at %s:%d, %s order", cl->node_hex, cl->url.host,
        cl->url.port, cl->local_first ? "local-first" : "one");
    *out = cl;
    return 0;
}

void cluster_free(cluster *cl)
{
    if (cl == NULL) {
        return;
    }
    cl->tearing = true;
    if (cl->pub.ac != NULL) {
        redisAsyncFree(cl->pub.ac);
    }
    if (cl->sub.ac != NULL) {
        redisAsyncFree(cl->sub.ac);
    }
    wsfwd_table_iter it;
    wsfwd_table_iter_init(&cl->rooms, &it);
    for (room **slot; (slot = wsfwd_table_iter_next(&cl->rooms, &it)) != NULL;) {
        pending_free_all(cl, *slot);
        free(*slot);
    }
    wsfwd_table_free(&cl->rooms);
    free(cl);
}

/* ---- In the loop ---------------------------------------------------------------------------- */

/* The timer's deadline: at once after an error, else the link state's next deadline. */
static void cluster_arm(cluster *cl)
{
    uint64_t at;
    if (cl->failed) {
        at = 0;
    } else if (cl->link == CLUSTER_LINK_DOWN) {
        at = cl->next_attempt;
    } else if (cl->link == CLUSTER_LINK_CONNECTING) {
        at = cl->connect_deadline;
    } else {
        at = cl->ping_out ? cl->ping_sent + cl->timeout_ms : cl->next_ping;
    }
    loop_timer_set(&cl->timer, at);
}

/* A Redis socket is ready. */
static void rconn_on_ready(void *owner, loop_handle *h, unsigned events)
{
    rconn *rc = owner;
    (void)h;
    if (rc->ac != NULL && (events & (LOOP_OUT | LOOP_ERR)) && rc->want_write) {
        redisAsyncHandleWrite(rc->ac);
    }
    if (rc->ac != NULL && (events & (LOOP_IN | LOOP_ERR))) {
        redisAsyncHandleRead(rc->ac);
    }
    cluster_arm(rc->cl);
}

static void ping(cluster *cl, uint64_t now)
{
    if (redisAsyncCommand(cl->pub.ac, on_ping_reply, &cl->pub, "PING") != REDIS_OK) {
        fail(cl, "cannot send PING: %s", cl->pub.ac->errstr);
    } else {
        cl->ping_out = true;
        cl->ping_sent = now;
        cl->next_ping = now + PING_INTERVAL_MS;
    }
}

/* The connect timeout, the reconnection, the health check; the teardown after an error. */
static void cluster_on_timer(void *owner)
{
    cluster *cl = owner;
    uint64_t now = loop_now(cl->lp);
    if (!cl->failed) {
        if (cl->link == CLUSTER_LINK_DOWN && now >= cl->next_attempt) {
            link_connect(cl);
        } else if (cl->link == CLUSTER_LINK_CONNECTING && now >= cl->connect_deadline) {
            fail(cl, "%s", "no answer before the timeout (--redis-timeout)");
        } else if (cl->link == CLUSTER_LINK_UP) {
            if (cl->ping_out && now - cl->ping_sent >= cl->timeout_ms) {
                fail(cl, "%s", "no answer to PING before the timeout (--redis-timeout)");
            } else if (!cl->ping_out && now >= cl->next_ping) {
                ping(cl, now);
            }
        }
    }
    if (cl->failed) {
        link_down(cl);
    }
    cluster_arm(cl);
}

/* ---- Hooks from the server ------------------------------------------------------------------ */

void cluster_on_join(cluster *cl, wsfwd_pool *pool, wsfwd_conn *conn)
{
    (void)conn;
    if (cl == NULL) {
        return;
    }
    char ch[CHANNEL_MAX];
    size_t len = pool_channel(cl, pool, ch, sizeof ch);
    if (len == 0) {
        return;
    }
    room *r = room_find(cl, ch, len);
    if (r == NULL) {
        r = room_add(cl, ch, len);
        if (r == NULL) {
            LOG(LOG_WARN, "redis: out of memory: a room stays local to this node");
            return;
        }
    }
    r->members++;
    if (r->members == 1 && cl->link == CLUSTER_LINK_UP && r->state == ROOM_IDLE) {
        room_subscribe(cl, r);
    }
}

void cluster_on_leave(cluster *cl, wsfwd_pool *pool, wsfwd_conn *conn)
{
    if (cl == NULL) {
        return;
    }
    char ch[CHANNEL_MAX];
    size_t len = pool_channel(cl, pool, ch, sizeof ch);
    room *r = len > 0 ? room_find(cl, ch, len) : NULL;
    if (r == NULL || r->members == 0) {
        return;
    }
    for (pending *p = r->head; p != NULL; p = p->next) {
        if (p->sender == conn) {
            p->sender = NULL;
        }
    }
    if (--r->members > 0 || r->busy > 0) {
        return;
    }
    room_last_left(cl, r);
}

/* The last local member left: nobody here needs what is in flight. */
static void room_last_left(cluster *cl, room *r)
{
    pending_free_all(cl, r);
    if (cl->link != CLUSTER_LINK_UP || r->state == ROOM_IDLE) {
        room_remove(cl, r);
    } else if (r->state == ROOM_SUBSCRIBED) {
        room_unsubscribe(cl, r);
    } /* SUBSCRIBING: unsubscribed when the subscription is confirmed; UNSUBSCRIBING: wait. */
}

bool cluster_on_message(cluster *cl, wsfwd_conn *conn, wsfwd_opcode op, const uint8_t *data,
                        size_t len)
{
    if (cl == NULL) {
        return false;
    }
    wsfwd_pool *pool = wsfwd_conn_pool(conn);
    if (pool == NULL) {
        return false;
    }
    char ch[CHANNEL_MAX];
    size_t chlen = pool_channel(cl, pool, ch, sizeof ch);
    room *r = chlen > 0 ? room_find(cl, ch, chlen) : NULL;
    if (cl->link != CLUSTER_LINK_UP || r == NULL || cl->failed) {
        cl->local_only++;
        (void)wsfwd_pool_broadcast(pool, op, data, len, conn, NULL);
        return true;
    }
    size_t size = cluster_envelope_size(len);
    if (size == 0 || cl->inflight + size > cl->max_inflight) {
        cl->dropped_inflight++;
        if (cl->dropped_inflight == 1 || cl->dropped_inflight % 1000 == 0) {
            LOG(LOG_WARN,
                "redis: more than %zu bytes in flight: messages stay on this node "
                "(%" PRIu64 " so far)",
                cl->max_inflight, cl->dropped_inflight);
        }
        (void)wsfwd_pool_broadcast(pool, op, data, len, conn, NULL);
        return true;
    }
    cluster_envelope e;
    memset(&e, 0, sizeof e);
    e.opcode = (uint8_t)op;
    memcpy(e.node, cl->node, sizeof e.node);
    e.seq = ++cl->seq;
    char id[WSFWD_ID_LEN + 1];
    wsfwd_conn_id(conn, id);
    memcpy(e.sender, id, CLUSTER_CONN_ID_LEN);
    e.payload = data;
    e.len = len;
    if (cl->local_first) {
        (void)wsfwd_pool_broadcast(pool, op, data, len, conn, NULL);
        uint8_t *env = malloc(size);
        if (env == NULL) {
            cl->dropped_inflight++;
            return true;
        }
        cluster_envelope_encode(&e, env);
        if (publish(cl, r, env, size)) {
            cl->inflight += size;
        }
        free(env);
        return true;
    }
    pending *p = malloc(sizeof *p + size);
    if (p == NULL) {
        cl->dropped_inflight++;
        (void)wsfwd_pool_broadcast(pool, op, data, len, conn, NULL);
        return true;
    }
    cluster_envelope_encode(&e, p->env);
    p->next = NULL;
    p->seq = e.seq;
    p->sender = conn;
    p->size = size;
    p->published = false;
    if (r->tail != NULL) {
        r->tail->next = p;
    } else {
        r->head = p;
    }
    r->tail = p;
    cl->inflight += size;
    if (r->state == ROOM_SUBSCRIBED) {
        p->published = publish(cl, r, p->env, size);
    } /* else held until the subscription is confirmed */
    return true;
}

bool cluster_figures_get(const cluster *cl, cluster_figures *out)
{
    if (cl == NULL) {
        return false;
    }
    *out = (cluster_figures){
        .link = cl->link,
        .rooms = wsfwd_table_count(&cl->rooms),
        .subscribed_rooms = cl->nsubscribed,
        .published = cl->published,
        .received = cl->received,
        .local_only = cl->local_only,
        .dropped_inflight = cl->dropped_inflight,
        .inflight_bytes = cl->inflight,
        .max_inflight_bytes = cl->max_inflight,
        .malformed = cl->malformed,
        .publish_errors = cl->publish_errors,
        .link_losses = cl->link_losses,
        .reconnects = cl->reconnects,
    };
    return true;
}

/* /stats' cluster object: the figures, with the node's id, address and order. */
void cluster_stats_write(const cluster *cl, jsonw *w)
{
    cluster_figures f;
    if (!cluster_figures_get(cl, &f)) {
        return;
    }
    static const char *const states[] = {"down", "connecting", "up"};
    char redis[sizeof cl->url.host + 8];
    snprintf(redis, sizeof redis, "%s:%d", cl->url.host, cl->url.port);
    jsonw_object(w, "cluster");
    jsonw_str(w, "node", cl->node_hex);
    jsonw_str(w, "redis", redis);
    jsonw_str(w, "link", states[f.link]);
    jsonw_str(w, "order", cl->local_first ? "local-first" : "one");
    jsonw_u64(w, "rooms", f.rooms);
    jsonw_u64(w, "subscribed_rooms", f.subscribed_rooms);
    jsonw_u64(w, "published", f.published);
    jsonw_u64(w, "received", f.received);
    jsonw_u64(w, "not_crossed", f.local_only + f.dropped_inflight);
    jsonw_u64(w, "local_only", f.local_only);
    jsonw_u64(w, "dropped_inflight", f.dropped_inflight);
    jsonw_u64(w, "inflight_bytes", f.inflight_bytes);
    jsonw_u64(w, "max_inflight_bytes", f.max_inflight_bytes);
    jsonw_u64(w, "malformed", f.malformed);
    jsonw_u64(w, "publish_errors", f.publish_errors);
    jsonw_u64(w, "link_losses", f.link_losses);
    jsonw_u64(w, "reconnects", f.reconnects);
    jsonw_end(w);
}

#endif /* WSFWD_HAVE_HIREDIS */
