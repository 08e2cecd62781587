/*
 * The server: libwsfwd on non-blocking sockets, the listeners and the clients registered with
 * the loop (loop.h). Owns struct server: the library's config and hubs, the clients, the
 * counters. Each loop turn reads and feeds every readable client, then writes, with one writev
 * each, every client the library marked as having output (the dirty list), and asks for
 * writability only where a write was cut short. The connections' deadlines are the library's
 * (wsfwd_conn_tick): each client is ticked after its I/O, and a scan ticks those whose deadline
 * came (check_timers, a loop timer).
 *
 * The library's callbacks never close sockets: they only mark clients. Sockets are closed by
 * the server itself, between events. Routing is routes.c's, /stats stats.c's, /metrics
 * metrics.c's, the cluster cluster.c's: each gets what it needs when it is set up.
 *
 * A --listen-tls client reads and writes through tls.c (its handshake runs inside its reads);
 * its output is gathered into one tls_write per turn. A client with input that poll() cannot
 * see (decrypted input inside OpenSSL, or input its connection held back while it was paced:
 * wsfwd_conn_held) is read again after the next poll(), which then does not sleep.
 */
#define _GNU_SOURCE /* accept4 */

#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "cluster.h"
#ifdef WSFWD_HAVE_DEFLATE
#include "compress.h"
#endif
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "notify.h"
#include "quota.h"
#include "routes.h"
#include "stats.h"
#ifdef WSFWD_HAVE_TLS
#include "tls.h"
#endif

_Static_assert(sizeof(wsfwd_iovec) == sizeof(struct iovec), "wsfwd_iovec is an iovec");

#define READ_SIZE 65536
#define READS_PER_TURN 8 /* fairness: a busy client yields after this many reads */
#define ACCEPTS_PER_TURN 256
#define WRITE_IOV 64
#define FLUSH_BUDGET_MAX (256 * 1024) /* bytes read in a turn before its output is written */
#define SCAN_GAP_MS 10        /* the least time between two scans of the clients' deadlines */
#define TLS_READS_PER_TURN 32 /* records (16 KiB at most) read from a TLS client in a turn */
#define TLS_WRITE_MAX 65536   /* plaintext gathered into one tls_write: four records */
#define TLS_OUTPUT_MAX (2 * TLS_WRITE_MAX) /* records waiting past this: reading stops */
#define LISTEN_MAX (2 * MAX_LISTEN)        /* --listen and --listen-tls */

struct server {
    const options *opts;
    loop *lp;
    wsfwd_config *cfg;
    wsfwd_hub *rooms;  /* /ws/<room> */
    wsfwd_hub *global; /* /ws: one kept pool, apart so no room name can reach it */
    wsfwd_pool *global_pool;
    routes *routes;
    cluster *cluster; /* --redis, else NULL */
#ifdef WSFWD_HAVE_DEFLATE
    compress_ctx *codec; /* --deflate on, else NULL */
#endif
    rate_rule rate; /* --rate-limit (per_second 0: off) */
    int listen_fd[LISTEN_MAX];
    loop_handle listen_h[LISTEN_MAX];
    bool listen_tls[LISTEN_MAX]; /* a --listen-tls listener */
    size_t nlisten;
#ifdef WSFWD_HAVE_TLS
    struct tls_ctx *tls;         /* --tls-cert and --tls-key, for every --listen-tls listener */
    uint8_t tbuf[TLS_WRITE_MAX]; /* a TLS client's output, gathered for one tls_write */
#endif
    /* Every TCP connection, in no order: [0, nclients) open (client.index), then the ndead
       closed during this turn, freed at its end. dirty, more and more_spare have as many
       places, so adding to them never fails: each holds a client at most once (client.dirty,
       client.more). */
    client **clients;
    size_t nclients;
    size_t ndead;
    size_t cap;
    client **more; /* to read again without poll(): input inside OpenSSL, or held */
    size_t nmore;
    client **more_spare;   /* read_more reads one array while want_more fills the other */
    loop_timer more_timer; /* at 0 while more is not empty: poll() must not sleep */
    client **dirty;        /* a ring: ndirty clients from dirty_head on (cap a power of two) */
    size_t dirty_head;
    size_t ndirty;
    int reserve_fd; /* spare descriptor, given up to shed a connection at EMFILE */
    uint64_t started;
    uint64_t started_wall_ms; /* the same moment, in ms since the epoch (/metrics) */
    uint64_t last_fd_warning;
    bool stopping;
    loop_timer stop_timer; /* at: the end of --shutdown-timeout, once stopping */
    loop_timer tick_timer; /* at: the earliest next_tick of the clients, as far as known */
    stats_counters stats;
    size_t unflushed;    /* bytes read since the last flush_dirty */
    size_t flush_budget; /* flush_dirty once unflushed reaches this, before the turn's end */
    bool ticking;        /* inside a connection's tick: a slow close there is by time */
    uint8_t rbuf[65536];
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

void server_stop_from_signal(void)
{
    stop_requested = 1;
    loop_wake_from_signal();
}

void server_reload_from_signal(void)
{
    reload_requested = 1;
    loop_wake_from_signal();
}

static uint64_t now_of(const server *s)
{
    return loop_now(s->lp);
}

/* The wall clock, in ms since the epoch. */
static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- Clients ----------------------------------------------------------------------------- */

static void client_tick(server *s, client *c);

/* A TLS client's records that wait for its socket. */
static bool tls_output_waits(const client *c)
{
#ifdef WSFWD_HAVE_TLS
    struct tls_conn *t = client_tls(c);
    return t != NULL && tls_has_output(t);
#else
    (void)c;
    return false;
#endif
}

/* More of them than a turn's writes leave behind: what its reads made OpenSSL answer (key
   updates, alerts) piles up unread. Such a client is not read until they are written. */
static bool tls_output_full(const client *c)
{
#ifdef WSFWD_HAVE_TLS
    struct tls_conn *t = client_tls(c);
    return t != NULL && tls_output_bytes(t) > TLS_OUTPUT_MAX;
#else
    (void)c;
    return false;
#endif
}

/* What poll() watches: reads unless paced (or, after our FIN, always: to drain) or a TLS
   client's output is full, writes while output waits. */
static void client_update_events(server *s, client *c)
{
    unsigned ev = (c->paused && !c->shut) || tls_output_full(c) ? 0 : LOOP_IN;
    if ((!c->shut && wsfwd_conn_pending(c->conn) > 0) || tls_output_waits(c)) {
        ev |= LOOP_OUT;
    }
    loop_set_events(s->lp, &c->ev, ev);
}

/* Read c again after the next poll(), which must not sleep: input waits where poll() does
   not see it (decrypted, inside OpenSSL; or held back by its connection while it was paced). */
static void want_more(server *s, client *c)
{
    bool more = wsfwd_conn_held(c->conn) > 0;
#ifdef WSFWD_HAVE_TLS
    struct tls_conn *t = client_tls(c);
    more = more || (t != NULL && tls_has_pending(t));
#endif
    if (more && !c->more && c->fd >= 0) {
        c->more = true;
        s->more[s->nmore++] = c;
        loop_timer_set(&s->more_timer, 0);
    }
}

/* Flow control: stop reading a paced sender (TCP slows it down), or an echo client whose
   echoes pile up; read it again once that is over. */
static void client_sync_pause(server *s, client *c)
{
    bool paused = wsfwd_conn_is_paced(c->conn) || (c->echo && wsfwd_conn_is_congested(c->conn));
    if (paused == c->paused) {
        return;
    }
    c->paused = paused;
    if (paused) {
        s->stats.paused_now++;
        s->stats.pauses++;
    } else {
        s->stats.paused_now--;
        want_more(s, c);
    }
    client_update_events(s, c);
}

static void client_on_ready(void *owner, loop_handle *h, unsigned events);

/* TLS on c's socket for a --listen-tls listener; 0, or -1 when out of memory. */
static int client_start_tls(server *s, client *c, int fd, bool tls)
{
#ifdef WSFWD_HAVE_TLS
    if (tls) {
        tls_client *t = (tls_client *)(void *)c;
        t->tls = tls_conn_new(s->tls, fd);
        return t->tls != NULL ? 0 : -1;
    }
#else
    (void)s;
    (void)c;
    (void)fd;
    (void)tls;
#endif
    return 0;
}

static void client_end_tls(client *c)
{
#ifdef WSFWD_HAVE_TLS
    if (c->on_tls) {
        tls_client *t = (tls_client *)(void *)c;
        tls_conn_free(t->tls);
        t->tls = NULL;
    }
#else
    (void)c;
#endif
}

/* An array of cap clients in place of *a, which holds n to keep: copied only when n > 0, so an
   array that waits empty costs no memory until it is used. */
static bool array_resize(client ***a, size_t n, size_t cap)
{
    client **b;
    if (n > 0) {
        b = realloc(*a, cap * sizeof *b);
    } else {
        b = malloc(cap * sizeof *b);
        if (b != NULL) {
            free(*a);
        }
    }
    if (b == NULL) {
        return false;
    }
    *a = b;
    return true;
}

/* The dirty ring in an array of cap places, its clients from index 0 on. */
static bool dirty_resize(server *s, size_t cap)
{
    client **b = malloc(cap * sizeof *b);
    if (b == NULL) {
        return false;
    }
    for (size_t i = 0; i < s->ndirty; i++) {
        b[i] = s->dirty[(s->dirty_head + i) & (s->cap - 1)];
    }
    free(s->dirty);
    s->dirty = b;
    s->dirty_head = 0;
    return true;
}

/* Room for one more client in the arrays of clients (see struct server). */
static bool clients_grow(server *s)
{
    if (s->nclients + s->ndead < s->cap) {
        return true;
    }
    size_t cap = s->cap == 0 ? 64 : s->cap * 2;
    /* Those grown before a failure keep their new size. */
    if (!array_resize(&s->clients, s->nclients + s->ndead, cap) ||
        !array_resize(&s->more, s->nmore, cap) || !array_resize(&s->more_spare, 0, cap) ||
        !dirty_resize(s, cap)) {
        return false;
    }
    s->cap = cap;
    return true;
}

static client *client_add(server *s, int fd, const struct sockaddr_storage *addr, bool tls)
{
    if (!clients_grow(s)) {
        return NULL;
    }
    client *c = calloc(1, tls ? sizeof(tls_client) : sizeof(client));
    if (c == NULL) {
        return NULL;
    }
    c->on_tls = tls;
    if (wsfwd_conn_new(s->cfg, WSFWD_ROLE_SERVER, c, &c->conn) != WSFWD_OK) {
        free(c);
        return NULL;
    }
    if (client_start_tls(s, c, fd, tls) != 0 ||
        loop_add(s->lp, &c->ev, fd, LOOP_IN, client_on_ready, s) != 0) {
        client_end_tls(c);
        wsfwd_conn_free(c->conn);
        free(c);
        return NULL;
    }
    c->fd = fd;
    c->index = (uint32_t)s->nclients;
    client_set_peer(c, addr);
    if (s->ndead > 0) {
        s->clients[s->nclients + s->ndead] = s->clients[s->nclients]; /* a closed one moves up */
    }
    s->clients[s->nclients++] = c;
    s->stats.accepted++;
    client_tick(s, c); /* starts --handshake-timeout */
    return c;
}

/* Keep stats.congested_now equal to the number of open clients marked congested. */
static void client_count_congested(server *s, client *c, bool congested)
{
    if (c->congested != congested) {
        c->congested = congested;
        if (congested) {
            s->stats.congested_now++;
        } else {
            s->stats.congested_now--;
        }
    }
}

/*
 * Close the socket and the connection. The struct itself is freed at the end of the loop
 * turn, so a pointer to it held anywhere during the turn stays valid (fd -1 says closed).
 */
static void client_close(server *s, client *c, const char *why)
{
    if (c->fd < 0) {
        return;
    }
    char label[CLIENT_LABEL_MAX];
    LOG(LOG_DEBUG, "%s closed: %s", client_label(c, s->global, label, sizeof label), why);
    routes_forget(s->routes, c);
    if (c->paused) {
        s->stats.paused_now--;
    }
    client_count_congested(s, c, false);
    loop_del(s->lp, &c->ev);
    client_end_tls(c);
    close(c->fd);
    c->fd = -1;
    /* The last open client takes this one's place; this one's is the first of the closed. */
    size_t last = s->nclients - 1;
    if (c->index != last) {
        s->clients[c->index] = s->clients[last];
        s->clients[c->index]->index = c->index;
        s->clients[last] = c;
    }
    s->nclients--;
    s->ndead++;
    wsfwd_conn_free(c->conn);
    c->conn = NULL;
}

static void free_dead(server *s)
{
    if (s->ndead == 0) {
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < s->nmore; i++) { /* no closed client stays listed */
        if (s->more[i]->fd >= 0) {
            s->more[kept++] = s->more[i];
        }
    }
    s->nmore = kept;
    for (size_t i = s->nclients; i < s->nclients + s->ndead; i++) {
        free(s->clients[i]);
    }
    s->ndead = 0;
}

static void mark_dirty(server *s, client *c)
{
    if (!c->dirty && c->fd >= 0) {
        c->dirty = true;
        s->dirty[(s->dirty_head + s->ndirty++) & (s->cap - 1)] = c;
    }
}

#ifdef WSFWD_HAVE_TLS
/* Up to cap bytes of what the connection has queued, copied into buf. */
static size_t gather_output(wsfwd_conn *conn, uint8_t *buf, size_t cap)
{
    wsfwd_iovec iov[WRITE_IOV];
    size_t n = wsfwd_conn_output(conn, iov, WRITE_IOV);
    size_t got = 0;
    for (size_t i = 0; i < n && got < cap; i++) {
        size_t k = iov[i].len < cap - got ? iov[i].len : cap - got;
        memcpy(buf + got, iov[i].base, k);
        got += k;
    }
    return got;
}

/* A TLS client's output: what is queued gathered into one tls_write (records for at most
   TLS_WRITE_MAX bytes), which writes them with what waited before in one write(2). More only
   while the socket takes it all. */
static void client_flush_tls(server *s, client *c)
{
    for (;;) {
        int f = tls_flush(client_tls(c));
        if (f == TLS_ERROR) {
            client_close(s, c, tls_error(client_tls(c)));
            return;
        }
        if (f == TLS_AGAIN || wsfwd_conn_pending(c->conn) == 0) {
            break;
        }
        size_t n = gather_output(c->conn, s->tbuf, sizeof s->tbuf);
        if (tls_write(client_tls(c), s->tbuf, n) < 0) {
            client_close(s, c, tls_error(client_tls(c)));
            return;
        }
        wsfwd_conn_consume(c->conn, n); /* encrypted: the records are ours now */
        s->stats.bytes_written += n;
    }
    client_update_events(s, c);
    if (!tls_output_full(c) && (!c->paused || c->shut)) {
        want_more(s, c); /* reading may have stopped with input inside OpenSSL */
    }
}
#endif

/* Write what the connection has queued, as far as the socket takes it. */
static void client_flush(server *s, client *c)
{
#ifdef WSFWD_HAVE_TLS
    if (client_tls(c) != NULL) {
        client_flush_tls(s, c);
        return;
    }
#endif
    while (wsfwd_conn_pending(c->conn) > 0) {
        wsfwd_iovec iov[WRITE_IOV];
        size_t n = wsfwd_conn_output(c->conn, iov, WRITE_IOV);
        size_t want = 0;
        for (size_t i = 0; i < n; i++) {
            want += iov[i].len;
        }
        ssize_t w = writev(c->fd, (const struct iovec *)(const void *)iov, (int)n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            client_close(s, c, strerror(errno));
            return;
        }
        wsfwd_conn_consume(c->conn, (size_t)w);
        s->stats.bytes_written += (uint64_t)w;
        if ((size_t)w < want) {
            break; /* the socket is full: wait for POLLOUT */
        }
    }
    client_update_events(s, c);
}

/*
 * After I/O: once the connection is done (closed and written), send FIN at once and drain
 * what the peer still sends until it closes too, or the close timeout passes. Then tick it:
 * what the I/O changed (input, a close) starts its deadlines.
 */
static void client_settle(server *s, client *c)
{
    if (c->fd < 0) {
        return;
    }
    if (!c->shut && wsfwd_conn_is_done(c->conn) && !tls_output_waits(c)) {
#ifdef WSFWD_HAVE_TLS
        if (client_tls(c) != NULL) {
            tls_shutdown(client_tls(c)); /* close_notify, if the socket takes it */
        }
#endif
        shutdown(c->fd, SHUT_WR);
        c->shut = true;
        client_update_events(s, c);
    }
    client_tick(s, c);
}

/*
 * The library's deadlines for c (--handshake-timeout, --idle-timeout and --pong-timeout,
 * --close-timeout, --slow-timeout): tick it, act on what fired, note when it is due again.
 */
static void client_tick(server *s, client *c)
{
    s->ticking = true;
    int rc = wsfwd_conn_tick(c->conn, now_of(s), &c->next_tick);
    s->ticking = false;
    if (c->next_tick < s->tick_timer.at) {
        loop_timer_set(&s->tick_timer, c->next_tick);
    }
    char label[CLIENT_LABEL_MAX];
    switch (rc) {
    case WSFWD_ERR_HANDSHAKE_TIMEOUT:
        s->stats.handshake_timeouts++;
        client_close(s, c, "handshake timeout");
        return;
    case WSFWD_ERR_PONG_TIMEOUT:
        s->stats.idle_timeouts++;
        client_flush(s, c); /* its close frame (1001), if the socket takes it */
        client_close(s, c, "no pong before the deadline");
        return;
    case WSFWD_ERR_CLOSE_TIMEOUT: client_close(s, c, "close timeout"); return;
    case WSFWD_ERR_SLOW_TIMEOUT:
        if (s->opts->slow_policy == WSFWD_SLOW_DROP) {
            s->stats.cut_by_time++;
            LOG(LOG_INFO, "%s is a slow reader: its room's messages skip it until it catches up",
                client_label(c, s->global, label, sizeof label));
        }
        break;
    default: break;
    }
    if (c->fd >= 0) {
        client_sync_pause(s, c);
    }
}

static void flush_dirty(server *s);

/* Feed what was read (or, with len 0, what the connection held back) to the library. */
static void client_feed(server *s, client *c, uint8_t *data, size_t len)
{
    wsfwd_state before = wsfwd_conn_state(c->conn);
    int rc = wsfwd_conn_feed(c->conn, data, len);
    if (rc != WSFWD_OK) {
        int status = wsfwd_error_http_status(rc);
        if (before == WSFWD_STATE_HANDSHAKE && status != 0) {
            stats_count_refusal(&s->stats, status);
        }
        if (rc != WSFWD_ERR_HS_REFUSED) {
            char label[CLIENT_LABEL_MAX];
            LOG(LOG_DEBUG, "%s failed: %s", client_label(c, s->global, label, sizeof label),
                wsfwd_strerror(rc));
        }
    }
    mark_dirty(s, c);
}

enum { RECV_AGAIN = -1, RECV_FAILED = -2 };

/* Bytes from c's socket, or its TLS: a count, 0 at the peer's end, RECV_AGAIN when there is
   nothing now, RECV_FAILED with *why. */
static ssize_t client_recv(server *s, client *c, const char **why)
{
#ifdef WSFWD_HAVE_TLS
    if (client_tls(c) != NULL) {
        ssize_t r = tls_read(client_tls(c), s->rbuf, READ_SIZE);
        switch (r) {
        case TLS_AGAIN:
            client_update_events(s, c); /* its handshake records may wait for the socket */
            return RECV_AGAIN;
        case TLS_CLOSED: return 0;
        case TLS_PLAIN: *why = "plain HTTP on a TLS listener (answered 400)"; return RECV_FAILED;
        case TLS_ERROR: *why = tls_error(client_tls(c)); return RECV_FAILED;
        default: return r;
        }
    }
#endif
    ssize_t r;
    do {
        r = read(c->fd, s->rbuf, READ_SIZE);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return RECV_AGAIN;
        }
        *why = strerror(errno);
        return RECV_FAILED;
    }
    return r;
}

static void client_read(server *s, client *c)
{
    if (wsfwd_conn_held(c->conn) > 0 && !c->paused && !c->shut) {
        client_feed(s, c, NULL, 0); /* what it held back while paced goes first */
    }
    /* A TLS read gives one record (16 KiB at most): more of them, for as many bytes. */
    int reads = client_tls(c) != NULL ? TLS_READS_PER_TURN : READS_PER_TURN;
    for (int k = 0; k < reads && c->fd >= 0 && (!c->paused || c->shut) && !tls_output_full(c);
         k++) {
        const char *why = NULL;
        ssize_t r = client_recv(s, c, &why);
        if (r == RECV_AGAIN) {
            return;
        }
        if (r == RECV_FAILED) {
            client_close(s, c, why);
            return;
        }
        if (r == 0) {
            client_close(s, c, c->shut ? "done" : "peer closed the TCP connection");
            return;
        }
        s->stats.bytes_read += (uint64_t)r;
        if (c->shut) {
            continue; /* after our FIN: read and discard until the peer's */
        }
        client_feed(s, c, s->rbuf, (size_t)r);
        /* Output is written once per loop turn, so a recipient gets everything the turn's reads
           produced for it in one writev. But not more than flush_budget bytes read go unwritten:
           the queue limit is meant for readers that do not keep up, not for bytes never offered
           to them. */
        s->unflushed += (size_t)r;
        if (s->unflushed >= s->flush_budget) {
            flush_dirty(s);
        }
        if (client_tls(c) == NULL && (size_t)r < READ_SIZE) {
            return;
        }
    }
    if (c->fd >= 0 && (!c->paused || c->shut) && !tls_output_full(c)) {
        want_more(s, c); /* out of turns: what OpenSSL holds is read after the next poll() */
    }
}

/* The clients want_more listed: read them again. */
static void read_more(server *s)
{
    client **list = s->more;
    size_t n = s->nmore;
    s->more = s->more_spare; /* where want_more lists the clients to read after these */
    s->more_spare = list;
    s->nmore = 0;
    loop_timer_set(&s->more_timer, UINT64_MAX);
    for (size_t i = 0; i < n; i++) {
        client *c = list[i];
        c->more = false;
        if (c->fd >= 0) {
            client_read(s, c);
        }
    }
}

/* ---- Listeners ---------------------------------------------------------------------------- */

static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    const char *port;
    memset(ss, 0, sizeof *ss);
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof host) {
            return -1;
        }
        memcpy(host, spec + 1, (size_t)(end - spec - 1));
        host[end - spec - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (colon == NULL || (size_t)(colon - spec) >= sizeof host) {
            return -1;
        }
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = colon + 1;
    }
    char *end;
    unsigned long p = strtoul(port, &end, 10);
    if (port[0] == '\0' || *end != '\0' || p > 65535) {
        return -1;
    }
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        *len = sizeof *v6;
        return 0;
    }
    return -1;
}

/* SO_REUSEPORT before bind(): every process on the port must set it (and run as one user). */
static int set_reuse_port(int fd, const char *flag, const char *spec)
{
#ifdef SO_REUSEPORT
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0) {
        return 0;
    }
    fprintf(stderr, "wsfwd: %s %s: --reuse-port: %s\n", flag, spec, strerror(errno));
#else
    fprintf(stderr, "wsfwd: %s %s: --reuse-port: not supported on this system\n", flag, spec);
#endif
    return -1;
}

/* bind() and listen() failed: say why, with the way out when the port is taken. */
static void report_bind_error(const char *flag, const char *spec, int err, bool reuse_port)
{
    if (err != EADDRINUSE) {
        fprintf(stderr, "wsfwd: %s %s: %s\n", flag, spec, strerror(err));
    } else if (reuse_port) {
        fprintf(stderr,
                "wsfwd: %s %s: %s (--reuse-port shares a port only with sockets that also "
                "set it, under the same user)\n",
                flag, spec, strerror(err));
    } else {
        fprintf(stderr,
                "wsfwd: %s %s: %s (another process listens there; to share the port among "
                "wsfwd processes, give each --reuse-port on)\n",
                flag, spec, strerror(err));
    }
}

/* flag: "--listen" or "--listen-tls", for the error line. */
static int open_listener(const char *flag, const char *spec, bool reuse_port, char *bound,
                         size_t bound_len)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_listen(spec, &ss, &len) != 0) {
        fprintf(stderr,
                "wsfwd: %s %s: not ADDR:PORT with a numeric IPv4 or [IPv6] "
                "address\n",
                flag, spec);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "wsfwd: %s %s: socket: %s\n", flag, spec, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (reuse_port && set_reuse_port(fd, flag, spec) != 0) {
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        report_bind_error(flag, spec, errno, reuse_port);
        close(fd);
        return -1;
    }
    struct sockaddr_storage got;
    socklen_t glen = sizeof got;
    getsockname(fd, (struct sockaddr *)&got, &glen);
    format_peer(&got, bound, bound_len);
    return fd;
}

/* Accept what waits on listener i (a TLS one gives TLS clients). */
static void accept_burst(server *s, size_t i)
{
    int lfd = s->listen_fd[i];
    for (int k = 0; k < ACCEPTS_PER_TURN && !s->stopping; k++) {
        struct sockaddr_storage addr;
        socklen_t len = sizeof addr;
        int fd = accept4(lfd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of descriptors: take the waiting connection with the spare one and shut
                   it, or poll() would report the listener readable forever. accept() fails
                   with EMFILE before it looks for a connection, so there may be none: count
                   only a connection really shed. */
                if (s->reserve_fd >= 0) {
                    close(s->reserve_fd);
                    int victim = accept(lfd, NULL, NULL);
                    if (victim >= 0) {
                        s->stats.refused_fd_limit++;
                        close(victim);
                    }
                    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                }
                if (now_of(s) - s->last_fd_warning >= 10000) {
                    s->last_fd_warning = now_of(s);
                    LOG(LOG_WARN, "out of file descriptors: refusing connections");
                }
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        client *c = client_add(s, fd, &addr, s->listen_tls[i]);
        if (c == NULL) {
            LOG(LOG_WARN, "out of memory: refusing a connection");
            close(fd);
            return;
        }
        char label[CLIENT_LABEL_MAX];
        LOG(LOG_DEBUG, "%s accepted", client_label(c, s->global, label, sizeof label));
    }
}

static void on_listener(void *owner, loop_handle *h, unsigned events)
{
    server *s = owner;
    if (events & LOOP_IN) {
        accept_burst(s, (size_t)(h - s->listen_h));
    }
}

/* A client's socket is ready (h is its c->ev). */
static void client_on_ready(void *owner, loop_handle *h, unsigned events)
{
    server *s = owner;
    client *c = (client *)(void *)((char *)h - offsetof(client, ev));
    if (c->paused && !c->shut && (events & LOOP_ERR)) {
        client_close(s, c, "connection lost while paced");
    } else if (events & (LOOP_IN | LOOP_ERR)) {
        client_read(s, c);
    }
    if (events & LOOP_OUT) {
        mark_dirty(s, c); /* no-op once closed */
    }
}

/* ---- Library callbacks ---------------------------------------------------------------------- */

/* An echo past --max-queue (reading the client stopped at half of it): close it with 1008,
   or under --slow-policy drop skip the echo. */
static void echo_over_cap(server *s, client *c)
{
    if (s->opts->slow_policy == WSFWD_SLOW_DROP) {
        s->stats.echo_slow_drops++;
        return;
    }
    s->stats.cut_by_bytes++;
    s->stats.echo_slow_closes++;
    char label[CLIENT_LABEL_MAX];
    LOG(LOG_INFO, "%s closed as a slow reader (1008): its backlog passed --max-queue",
        client_label(c, s->global, label, sizeof label));
    static const char reason[] = "slow reader: output queue full";
    (void)wsfwd_conn_close(c->conn, WSFWD_CLOSE_POLICY, reason, sizeof reason - 1);
}

/* Every message: counted, held to --rate-limit, then echoed or broadcast to the sender's pool. */
static int on_message(wsfwd_conn *conn, wsfwd_opcode op, const uint8_t *data, size_t len, void *ud)
{
    server *s = ud;
    client *c = wsfwd_conn_user_data(conn);
    stats_count_message(&s->stats, len);
    s->stats.inflated += wsfwd_conn_message_compressed(conn);
    if (s->rate.per_second > 0 && !rate_bucket_take(&c->bucket, &s->rate, (uint32_t)now_of(s))) {
        /* The excess reaches nobody, and nothing the sender sends after it either. */
        s->stats.rate_limited++;
        char label[CLIENT_LABEL_MAX];
        LOG(LOG_INFO, "%s closed: over --rate-limit %u/s (1008)",
            client_label(c, s->global, label, sizeof label), s->rate.per_second);
        (void)wsfwd_conn_close(conn, WSFWD_CLOSE_POLICY, "message rate limit exceeded", 27);
        return 0;
    }
    int rc = WSFWD_OK;
    if (c->echo) {
        rc = wsfwd_conn_send(conn, op, data, len);
        if (rc == WSFWD_OK) {
            s->stats.echoed++;
            s->stats.echoed_bytes += len;
        } else if (rc == WSFWD_ERR_WOULD_BLOCK) {
            /* Past --max-queue although reading it stopped at half of it: the hard cap. */
            echo_over_cap(s, c);
            rc = WSFWD_OK;
        }
    } else if (wsfwd_conn_pool(conn) != NULL &&
               !cluster_on_message(s->cluster, conn, op, data, len)) {
        rc = wsfwd_pool_broadcast(wsfwd_conn_pool(conn), op, data, len, conn, NULL);
    }
    /* A slow reader met its policy inside the call; anything else is out of memory. */
    return rc == WSFWD_OK || rc == WSFWD_ERR_QUEUE_FULL || rc == WSFWD_ERR_CLOSED ? 0 : -1;
}

static void on_close(wsfwd_conn *conn, uint16_t code, const char *reason, size_t reason_len,
                     int err, void *ud)
{
    server *s = ud;
    client *c = wsfwd_conn_user_data(conn);
    char label[CLIENT_LABEL_MAX];
    mark_dirty(s, c); /* flush the close frame and start the close timer */
    if (err == WSFWD_ERR_PONG_TIMEOUT || err == WSFWD_ERR_CLOSE_TIMEOUT) {
        return; /* client_tick counts and logs them */
    }
    if (err == WSFWD_ERR_QUEUE_FULL || err == WSFWD_ERR_SLOW_TIMEOUT) {
        client_count_congested(s, c, false); /* cut: no longer a reader that holds a room back */
        /* Pool members are logged when they leave their room (on_leave). */
        if (err == WSFWD_ERR_SLOW_TIMEOUT) {
            s->stats.cut_by_time++;
        } else {
            s->stats.cut_by_bytes++;
        }
        if (c->echo) {
            s->stats.echo_slow_closes++;
            LOG(LOG_INFO, "%s closed as a slow reader (1008)",
                client_label(c, s->global, label, sizeof label));
        }
    } else if (err != WSFWD_OK) {
        s->stats.protocol_errors++;
        LOG(LOG_DEBUG, "%s failed with %u: %s", client_label(c, s->global, label, sizeof label),
            code, wsfwd_strerror(err));
    } else {
        char shown[128];
        log_escape(reason, reason_len, shown, sizeof shown);
        LOG(LOG_DEBUG, "%s closed by peer with %u \"%s\"",
            client_label(c, s->global, label, sizeof label), code, shown);
    }
}

/* A member joined its room: the cluster counts it. */
static void on_join(wsfwd_pool *pool, wsfwd_conn *conn, void *ud)
{
    server *s = ud;
    cluster_on_join(s->cluster, pool, conn);
}

/* A member left its room: the cluster counts it; log the slow readers, with their room. */
static void on_leave(wsfwd_pool *pool, wsfwd_conn *conn, wsfwd_leave_reason reason, void *ud)
{
    server *s = ud;
    client *c = wsfwd_conn_user_data(conn);
    cluster_on_leave(s->cluster, pool, conn);
    if (reason == WSFWD_LEAVE_SLOW && log_enabled(LOG_INFO)) {
        char label[CLIENT_LABEL_MAX];
        char room[64];
        wsfwd_str name = wsfwd_pool_name(pool);
        if (wsfwd_pool_hub(pool) == s->global) {
            snprintf(room, sizeof room, "(global)");
        } else {
            log_escape(name.ptr, name.len, room, sizeof room);
        }
        client_label(c, s->global, label, sizeof label);
        if (s->ticking) {
            LOG(LOG_INFO,
                "%s (left room=%s) closed as a slow reader (1008): its backlog stayed "
                "past the high mark for --slow-timeout %u ms",
                label, room, s->opts->slow_timeout_ms);
        } else {
            LOG(LOG_INFO,
                "%s (left room=%s) closed as a slow reader (1008): its backlog passed "
                "--max-queue",
                label, room);
        }
    }
}

static void on_flow(wsfwd_conn *conn, wsfwd_flow event, void *ud)
{
    server *s = ud;
    client *c = wsfwd_conn_user_data(conn);
    if (event == WSFWD_FLOW_CONGESTED) {
        client_count_congested(s, c, c->fd >= 0);
        mark_dirty(s, c); /* its tick after the flush starts its --slow-timeout */
    } else if (event == WSFWD_FLOW_DRAINED) {
        client_count_congested(s, c, false);
    }
    if (c->fd >= 0) {
        client_sync_pause(s, c);
    }
}

static void on_output(wsfwd_conn *conn, void *ud)
{
    mark_dirty(ud, wsfwd_conn_user_data(conn));
}

/* ---- Setup ---------------------------------------------------------------------------------- */

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int make_hub(server *s, wsfwd_hub **hub)
{
    if (wsfwd_hub_new(s->cfg, hub) != WSFWD_OK) {
        return -1;
    }
    wsfwd_hub_set_user_data(*hub, s);
    wsfwd_hub_on_leave(*hub, on_leave);
    wsfwd_hub_on_join(*hub, on_join);
    if (wsfwd_hub_set_max_name(*hub, s->opts->max_room_name) != WSFWD_OK ||
        wsfwd_hub_set_max_pools(*hub, s->opts->max_rooms) != WSFWD_OK ||
        wsfwd_hub_set_max_members(*hub, s->opts->max_room_members) != WSFWD_OK) {
        return -1;
    }
    return 0;
}

static int on_request(wsfwd_conn *conn, const wsfwd_request *req, void *ud)
{
    server *s = ud;
    return routes_on_request(s->routes, conn, req);
}

/* The deflate object of /stats: the codec's counters and the hubs' compressed deliveries. */
static void deflate_stats(const server *s, stats_deflate *out)
{
    memset(out, 0, sizeof *out);
#ifdef WSFWD_HAVE_DEFLATE
    if (s->codec != NULL) {
        compress_stats cs;
        compress_codec_stats(s->codec, &cs);
        out->enabled = true;
        out->calls = cs.calls;
        out->bytes_in = cs.bytes_in;
        out->bytes_out = cs.bytes_out;
        out->plain = cs.plain;
        out->inflate_streams = cs.inflate_streams;
    }
#endif
    wsfwd_stats rooms, global;
    wsfwd_hub_stats(s->rooms, &rooms, sizeof rooms);
    wsfwd_hub_stats(s->global, &global, sizeof global);
    out->sent_compressed = rooms.deflated_out + global.deflated_out;
    out->inflated = s->stats.inflated;
}

/* What /stats and /metrics show; z is filled here and must outlive the input. */
static stats_input stats_gather(const server *s, stats_deflate *z)
{
    deflate_stats(s, z);
    return (stats_input){
        .counters = &s->stats,
        .uptime_ms = now_of(s) - s->started,
        .start_time_ms = s->started_wall_ms,
        .connections = routes_connections(s->routes),
        .tcp_connections = s->nclients,
        .auth_required = routes_keys(s->routes) > 0,
        .rooms = s->rooms,
        .global = s->global,
        .cluster = s->cluster,
        .deflate = z,
    };
}

static void respond_stats(void *ud, wsfwd_conn *conn)
{
    stats_deflate z;
    stats_input in = stats_gather(ud, &z);
    stats_respond(conn, &in);
}

static void respond_metrics(void *ud, wsfwd_conn *conn)
{
    stats_deflate z;
    stats_input in = stats_gather(ud, &z);
    metrics_respond(conn, &in);
}

/* permessage-deflate: the zlib codec (compress.c) plugged into the config, with
   --deflate-level, --deflate-min-size and --deflate-client-context. */
static int setup_deflate(server *s)
{
    const options *o = s->opts;
    if (!o->deflate) {
        return 0;
    }
#ifdef WSFWD_HAVE_DEFLATE
    wsfwd_deflate_codec codec;
    if (compress_codec_init(&s->codec, (int)o->deflate_level, &codec) != 0 ||
        wsfwd_config_set_deflate(s->cfg, &codec, sizeof codec) != WSFWD_OK ||
        wsfwd_config_set_deflate_params(s->cfg, 15, 15, o->deflate_client_reset) != WSFWD_OK ||
        wsfwd_config_set_deflate_min_size(s->cfg, o->deflate_min_size) != WSFWD_OK) {
        fprintf(stderr, "wsfwd: cannot set up permessage-deflate\n");
        return -1;
    }
    return 0;
#else
    return -1; /* options.c refuses --deflate on without zlib */
#endif
}

static int setup_library(server *s)
{
    const options *o = s->opts;
    if (wsfwd_config_new(NULL, &s->cfg) != WSFWD_OK ||
        wsfwd_config_set_max_message(s->cfg, o->max_message) != WSFWD_OK ||
        wsfwd_config_set_max_header(s->cfg, o->max_header) != WSFWD_OK ||
        wsfwd_config_set_max_queue(s->cfg, o->max_queue) != WSFWD_OK ||
        wsfwd_config_set_slow_policy(s->cfg, o->slow_policy) != WSFWD_OK ||
        wsfwd_config_set_slow_timeout(s->cfg, o->slow_timeout_ms) != WSFWD_OK ||
        wsfwd_config_set_handshake_timeout(s->cfg, o->handshake_timeout_ms) != WSFWD_OK ||
        wsfwd_config_set_idle_timeout(s->cfg, o->idle_timeout_ms) != WSFWD_OK ||
        wsfwd_config_set_pong_timeout(s->cfg, o->pong_timeout_ms) != WSFWD_OK ||
        wsfwd_config_set_close_timeout(s->cfg, o->close_timeout_ms) != WSFWD_OK ||
        make_hub(s, &s->rooms) != 0 || make_hub(s, &s->global) != 0) {
        fprintf(stderr, "wsfwd: cannot set up the library\n");
        return -1;
    }
    if (setup_deflate(s) != 0) {
        return -1;
    }
    wsfwd_config_set_user_data(s->cfg, s);
    wsfwd_config_on_request(s->cfg, on_request);
    wsfwd_config_on_message(s->cfg, on_message);
    wsfwd_config_on_close(s->cfg, on_close);
    wsfwd_config_on_output(s->cfg, on_output);
    wsfwd_config_on_flow(s->cfg, on_flow);
    if (wsfwd_hub_acquire(s->global, "global", 6, &s->global_pool) != WSFWD_OK) {
        fprintf(stderr, "wsfwd: cannot set up the global pool\n");
        return -1;
    }
    return 0;
}

/* --tls-cert and --tls-key, for the --listen-tls listeners. */
static int setup_tls(server *s)
{
#ifdef WSFWD_HAVE_TLS
    if (s->opts->nlisten_tls > 0) {
        return tls_ctx_new(&s->tls, s->opts->tls_cert, s->opts->tls_key);
    }
#endif
    return s->opts->nlisten_tls > 0 ? -1 : 0; /* options.c refuses it without OpenSSL */
}

static void log_tls(const server *s)
{
#ifdef WSFWD_HAVE_TLS
    if (s->tls != NULL) {
        char what[TLS_DESCRIBE_MAX];
        tls_describe(s->tls, what, sizeof what);
        LOG(LOG_INFO, "TLS certificate: %s", what);
    }
#else
    (void)s;
#endif
}

static void reload_tls(server *s)
{
#ifdef WSFWD_HAVE_TLS
    if (s->tls != NULL) {
        (void)tls_reload(s->tls); /* logs what it did */
    }
#else
    (void)s;
#endif
}

static void check_timers(void *owner);

/* Tell a service manager (NOTIFY_SOCKET) that every listener is open, and where. */
static void notify_listening(char bound[][64], size_t n)
{
    char status[MAX_LISTEN * 66 + 16] = "listening on ";
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            strcat(status, ", ");
        }
        strcat(status, bound[i]);
    }
    notify_ready(status);
}

/* Every listener, registered with the loop; prints why and returns -1 on error. Nothing is
   logged before every listener is open: a bind error is then the only line. */
static int open_listeners(server *s, char bound[][64])
{
    const options *o = s->opts;
    for (size_t i = 0; i < o->nlisten + o->nlisten_tls; i++) {
        bool tls = i >= o->nlisten;
        const char *spec = tls ? o->listen_tls[i - o->nlisten] : o->listen[i];
        int fd = open_listener(tls ? "--listen-tls" : "--listen", spec, o->reuse_port, bound[i],
                               sizeof bound[i]);
        if (fd < 0) {
            return -1;
        }
        s->listen_tls[s->nlisten] = tls;
        s->listen_fd[s->nlisten++] = fd; /* closed by server_free from here on */
        if (loop_add(s->lp, &s->listen_h[i], fd, LOOP_IN, on_listener, s) != 0) {
            fprintf(stderr, "wsfwd: cannot set up: %s\n", strerror(errno));
            return -1;
        }
    }
    return 0;
}

int server_open(server **out, const options *o)
{
    server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        fprintf(stderr, "wsfwd: out of memory\n");
        return -1;
    }
    s->opts = o;
    s->rate = (rate_rule){(uint32_t)o->rate_limit, (uint32_t)o->rate_burst};
    s->reserve_fd = -1;
    raise_fd_limit();
    s->lp = loop_new(o->io_epoll ? LOOP_IO_EPOLL : LOOP_IO_POLL);
    if (s->lp == NULL) {
        fprintf(stderr, "wsfwd: cannot set up: %s\n", strerror(errno));
        server_free(s);
        return -1;
    }
    s->started = now_of(s);
    s->started_wall_ms = wall_ms();
    loop_timer_add(s->lp, &s->tick_timer, check_timers, s);
    loop_timer_add(s->lp, &s->stop_timer, NULL, s);
    loop_timer_add(s->lp, &s->more_timer, NULL, s);
    if (setup_library(s) != 0) {
        server_free(s);
        return -1;
    }
    routes_env env = {o,        s->lp,     s->rooms,      s->global, s->global_pool,
                      &s->rate, &s->stats, respond_stats, s,         respond_metrics};
    if (routes_open(&s->routes, &env) != 0) {
        server_free(s);
        return -1;
    }
    /* A quarter of the queue limit, at most 256 KiB: what one turn may read before it writes. */
    s->flush_budget = o->max_queue / 4 < FLUSH_BUDGET_MAX ? o->max_queue / 4 : FLUSH_BUDGET_MAX;
    if (setup_tls(s) != 0) {
        server_free(s);
        return -1;
    }
    char bound[LISTEN_MAX][64];
    /* The cluster before the "listening on" lines: a Redis host that cannot be resolved or a
       password file that cannot be read is then the only line. */
    cluster_rooms hubs = {s->rooms, s->global, s->global_pool};
    if (open_listeners(s, bound) != 0 || cluster_open(&s->cluster, s->lp, o, &hubs) != 0) {
        server_free(s);
        return -1;
    }
    for (size_t i = 0; i < s->nlisten; i++) {
        LOG(LOG_INFO, "%slistening on %s", s->listen_tls[i] ? "TLS " : "", bound[i]);
    }
    log_tls(s);
    notify_listening(bound, s->nlisten);
    size_t keys = routes_keys(s->routes);
    if (keys > 0) {
        LOG(LOG_INFO, "room tokens required (%zu key%s)", keys, keys > 1 ? "s" : "");
    }
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    *out = s;
    return 0;
}

void server_free(server *s)
{
    if (s == NULL) {
        return;
    }
    while (s->nclients > 0) {
        client_close(s, s->clients[s->nclients - 1], "server stopped");
    }
    free_dead(s);
#ifdef WSFWD_HAVE_TLS
    tls_ctx_free(s->tls); /* after every connection holding it */
#endif
    cluster_free(s->cluster);
    for (size_t i = 0; i < s->nlisten; i++) {
        if (s->listen_fd[i] >= 0) {
            close(s->listen_fd[i]);
        }
    }
    if (s->reserve_fd >= 0) {
        close(s->reserve_fd);
    }
    routes_free(s->routes);
    wsfwd_hub_free(s->rooms);
    wsfwd_hub_free(s->global);
    wsfwd_config_free(s->cfg);
#ifdef WSFWD_HAVE_DEFLATE
    compress_codec_free(s->codec); /* after the config and every connection using it */
#endif
    loop_free(s->lp);
    free(s->clients);
    free(s->more);
    free(s->more_spare);
    free(s->dirty);
    free(s);
}

/* ---- The loop ------------------------------------------------------------------------------- */

static void flush_dirty(server *s)
{
    s->unflushed = 0;
    while (s->ndirty > 0) {
        client *c = s->dirty[s->dirty_head];
        s->dirty_head = (s->dirty_head + 1) & (s->cap - 1);
        s->ndirty--;
        c->dirty = false;
        if (c->fd >= 0) {
            client_flush(s, c);
        }
        if (c->fd >= 0) {
            client_settle(s, c);
        }
    }
}

/* Timers: each client's next deadline is known after its last tick; a scan ticks those due.
   O(n) per scan, but a scan comes only when a deadline is due, at most every SCAN_GAP_MS. */
static void check_timers(void *owner)
{
    server *s = owner;
    uint64_t now = now_of(s);
    loop_timer_set(&s->tick_timer, UINT64_MAX);
    for (size_t i = s->nclients; i-- > 0;) {
        if (i >= s->nclients) {
            continue;
        }
        client *c = s->clients[i];
        if (c->next_tick <= now) {
            client_tick(s, c); /* may close c: its place then holds a visited client */
        } else if (c->next_tick < s->tick_timer.at) {
            loop_timer_set(&s->tick_timer, c->next_tick);
        }
    }
    if (s->tick_timer.at < now + SCAN_GAP_MS) {
        loop_timer_set(&s->tick_timer, now + SCAN_GAP_MS);
    }
}

static void begin_shutdown(server *s)
{
    s->stopping = true;
    notify_stopping();
    loop_timer_set(&s->stop_timer, now_of(s) + s->opts->shutdown_timeout_ms);
    LOG(LOG_INFO, "shutting down: closing %zu connections", s->nclients);
    for (size_t i = 0; i < s->nlisten; i++) {
        loop_del(s->lp, &s->listen_h[i]);
        close(s->listen_fd[i]);
        s->listen_fd[i] = -1;
    }
    for (size_t i = s->nclients; i-- > 0;) {
        client *c = s->clients[i];
        wsfwd_state st = wsfwd_conn_state(c->conn);
        if (st == WSFWD_STATE_OPEN) {
            (void)wsfwd_conn_close(c->conn, WSFWD_CLOSE_GOING_AWAY, "server shutting down", 20);
            mark_dirty(s, c); /* its tick after the flush starts --close-timeout */
        } else if (st == WSFWD_STATE_HANDSHAKE) {
            client_close(s, c, "server shutting down");
        }
    }
}

int server_run(server *s)
{
    for (;;) {
        uint64_t now = loop_update_clock(s->lp);
        if (reload_requested) {
            reload_requested = 0;
            notify_reloading();
            routes_reload_keys(s->routes);
            reload_tls(s);
            notify_ready(NULL); /* the same STATUS */
        }
        if (stop_requested && !s->stopping) {
            begin_shutdown(s);
            flush_dirty(s);
        }
        if (s->stopping && (s->nclients == 0 || now >= s->stop_timer.at)) {
            break;
        }
        if (loop_poll(s->lp) != 0) {
            LOG(LOG_ERROR, "poll: %s", strerror(errno));
            return 1;
        }
        read_more(s); /* TLS input that poll() cannot see */
        flush_dirty(s);
        loop_run_timers(s->lp); /* the clients' deadlines, the cluster's */
        flush_dirty(s);
        free_dead(s);
    }
    LOG(LOG_INFO, "stopped");
    return 0;
}
