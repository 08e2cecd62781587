/*
 * loadgen: a WebSocket load generator for fan-out servers (issue 5), on libwsfwd's client role.
 *
 * One thread, one epoll loop, non-blocking sockets. It opens many connections to
 * ws://HOST:PORT/ws/r<room> (see --path), then runs a scenario and reports one JSON line on
 * stdout and a readable table on stderr.
 *
 *   loadgen --port P --scenario S1 [--server-pid PID] [overrides]
 *
 * Scenarios (each flag below overrides the scenario's value):
 *   S1  1 room, 100 subscribers, 1 publisher, 64 B, closed loop (--inflight 32), 5 s
 *   S2  the same with 1,000 subscribers
 *   S3  100 rooms of 10 clients that all publish 4 KiB at --rate per client per second
 *       (default 10) and receive each other's; --search steps the rate up (--rates) until a
 *       step loses a message, disconnects, or its p99 passes --p99-bound-ms, and reports the
 *       highest rate that passed
 *   S4  10,000 idle subscribers and 1 publisher: server RSS per connection (needs
 *       --server-pid) and the time one broadcast takes to reach everyone, --count times
 *   S5  10,000 connections: 1,000 rooms of 10 clients that all publish 256 B at 2 msg/s per
 *       client (open loop, as S3) for 20 s: latency and server CPU per delivery
 *   S6  S4 with 100,000 idle subscribers, spread over loopback source addresses
 *       (--source-addrs; by default as many as keep each under 3/4 of the kernel's ephemeral
 *       port range): time to open them all, server RSS per connection, one broadcast's time
 *
 * Descriptors: the generator raises its own RLIMIT_NOFILE to what the connections need (the
 * hard limit too when it may: root with CAP_SYS_RESOURCE) and fails clearly when it cannot.
 * It reports its own RSS per connection (loadgen_rss_per_conn_kib).
 *
 * Every message is binary and starts with a 32-byte header: magic, publisher id, room,
 * size, sequence number and the send time (CLOCK_MONOTONIC, ns; the generator and the server
 * share the machine). Receivers compute latency and count lost, duplicated, reordered,
 * self-delivered, cross-room and corrupt messages; all must be 0 (else exit 1).
 *
 * Latency percentiles come from a log-linear histogram of nanoseconds (64 sub-buckets per
 * power of two: a reported value is within 1/64 of the true one); max is exact. Closed loop
 * stamps the real send time; open loop (--rate) stamps the scheduled time, so a generator
 * that falls behind shows up in the latency (no coordinated omission) and in send_lag.
 * The receive time is taken when read() returns; arrival_latency uses instead the kernel's
 * receive timestamp (SO_TIMESTAMPNS) of the last segment the read returned, so a generator busy
 * with other sockets does not add its own delay (still from the scheduled send time).
 *
 * Bounds: setup, run and drain each have a deadline, and alarm() backs the whole run up
 * (--timeout). A server that dies (EOF/RST), closes a connection, stops delivering for
 * --stall seconds, or whose --server-pid vanishes ends the run with exit 3.
 *
 * Exit: 0 valid run, 1 run finished but an error count is non-zero, 2 usage, 3 setup
 * failure, deadline, server death or stall.
 *
 * --tls (a build with OpenSSL): every connection is wss:// (TLS 1.3, the certificate not
 * checked: a benchmark of the server's side), to compare a server's CPU per delivery with and
 * without TLS (tests/bench/tls_ab.py). Reads go through SSL_read (no kernel timestamps);
 * writes gather up to 16 KiB, one record, per SSL_write.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <wsfwd.h>

#ifdef WSFWD_HAVE_DEFLATE
#include "compress.h" /* the wsfwd command's zlib codec (--deflate) */
#endif
#ifdef WSFWD_HAVE_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

_Static_assert(sizeof(wsfwd_iovec) == sizeof(struct iovec), "wsfwd_iovec is an iovec");

#define MAGIC 0x474c5357u /* "WSLG" */
#define HDR_LEN 32
#define IOV_BATCH 64
#define READ_BUF (256 * 1024)

/* ---- Parameters ---------------------------------------------------------------------------- */

typedef struct params {
    const char *scenario;
    const char *host;
    int port;
    const char *path; /* template; {room} is replaced by the room number */
    int rooms;
    int subscribers; /* receive-only, total, spread over the rooms */
    int publishers;  /* per room; they also receive the other publishers of their room */
    size_t size;
    int inflight;    /* closed loop: messages per publisher not yet at every receiver */
    double rate;     /* open loop: messages per publisher per second */
    double duration; /* seconds of publishing */
    long count;      /* closed loop: stop after this many messages per publisher (0: none) */
    double gap;      /* closed loop: pause between messages (S4), seconds */
    double drain;    /* seconds to wait for the last deliveries */
    double stall;    /* no delivery for this long while some are due: the server stalled */
    int connect_batch;
    double connect_timeout;
    double timeout; /* whole run; 0: computed */
    long server_pid;
    bool search;
    const char *rates;
    double step_duration;
    double p99_bound_ms;
    double settle; /* seconds after the handshakes before reading the server's RSS */
    bool quiet;
    int pub_port;      /* publishers connect here (0: --port) */
    int sub_ports[16]; /* subscribers spread round robin over these (none: --port) */
    int nsub_ports;
    bool json;        /* the payload after the header is JSON-like chat text, not a byte pattern */
    bool deflate;     /* offer permessage-deflate (a build with zlib: cli/compress.c) */
    bool tls;         /* wss:// (a build with OpenSSL) */
    int source_addrs; /* bind to 127.0.0.2, .3, ... round robin (0: no bind; -1: as needed) */
} params;

/* ---- Time, histogram ------------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * CLOCK_REALTIME minus CLOCK_MONOTONIC (ns), for the kernel's receive timestamps
 * (SO_TIMESTAMPNS, realtime). Taken as the sample with the narrowest bracket of a few.
 */
static int64_t realtime_offset(void)
{
    int64_t best = 0;
    uint64_t best_width = UINT64_MAX;
    for (int i = 0; i < 16; i++) {
        struct timespec a, r, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        clock_gettime(CLOCK_REALTIME, &r);
        clock_gettime(CLOCK_MONOTONIC, &b);
        uint64_t ma = (uint64_t)a.tv_sec * 1000000000u + (uint64_t)a.tv_nsec;
        uint64_t mb = (uint64_t)b.tv_sec * 1000000000u + (uint64_t)b.tv_nsec;
        int64_t rt = (int64_t)r.tv_sec * 1000000000 + r.tv_nsec;
        if (mb - ma < best_width) {
            best_width = mb - ma;
            best = rt - (int64_t)(ma + (mb - ma) / 2);
        }
    }
    return best;
}

#define HSUB 64
#define HBUCKETS (64 * HSUB)

typedef struct hist {
    uint64_t n, max, sum;
    uint64_t b[HBUCKETS];
} hist;

static inline int hbucket(uint64_t v)
{
    if (v < 2 * HSUB) {
        return (int)v;
    }
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - 6;
    return (shift + 1) * HSUB + (int)((v >> shift) - HSUB);
}

static inline void hadd(hist *h, uint64_t v)
{
    h->n++;
    h->sum += v;
    if (v > h->max) {
        h->max = v;
    }
    h->b[hbucket(v)]++;
}

/* The value at quantile q (0..1): the middle of its bucket, never above max. */
static uint64_t hq(const hist *h, double q)
{
    if (h->n == 0) {
        return 0;
    }
    uint64_t rank = (uint64_t)(q * (double)h->n);
    if (rank >= h->n) {
        rank = h->n - 1;
    }
    uint64_t seen = 0;
    for (int i = 0; i < HBUCKETS; i++) {
        seen += h->b[i];
        if (seen > rank) {
            uint64_t lo, hi;
            if (i < 2 * HSUB) {
                lo = hi = (uint64_t)i;
            } else {
                int shift = i / HSUB - 1;
                uint64_t sub = (uint64_t)(i % HSUB + HSUB);
                lo = sub << shift;
                hi = ((sub + 1) << shift) - 1;
            }
            uint64_t mid = lo + (hi - lo) / 2;
            return mid > h->max ? h->max : mid;
        }
    }
    return h->max;
}

/* ---- Connections ---------------------------------------------------------------------------- */

enum { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_DEAD };

typedef struct lconn {
    int fd;
    int state;
    wsfwd_conn *conn;
    uint32_t id; /* index in g.conns */
    uint32_t room;
    int pub;       /* publisher index (global) or -1 */
    bool want_out; /* EPOLLOUT registered */
    bool dirty;
    struct lconn *next_dirty;
    /* receiver: per publisher slot of the room */
    uint64_t *next; /* next expected sequence number */
    uint64_t *uniq; /* distinct messages received */
    uint64_t *gaps; /* sequence numbers skipped and not yet seen */
#ifdef WSFWD_HAVE_TLS
    SSL *ssl;    /* --tls */
    bool tls_hs; /* the TLS handshake is not done: no WebSocket yet */
#endif
} lconn;

typedef struct publisher {
    lconn *c;
    uint32_t room, slot;
    uint64_t sent;       /* next sequence number */
    uint64_t done;       /* closed loop: messages that reached every receiver */
    uint32_t *remaining; /* closed loop ring [inflight]: receivers still to get it */
    uint64_t *sent_ts;   /* closed loop ring: send time */
    uint64_t next_at;    /* closed loop with --gap: not before this time */
} publisher;

static struct {
    params p;
    wsfwd_config *cfg;
    int ep;
    lconn *conns;
    int nconns;
    publisher *pubs;
    int npubs;
    int *room_members; /* receivers per room */
    lconn *dirty;
    uint64_t now; /* time of the read being fed */
    uint8_t *payload;
    char hostport[300];
    /* connection setup */
    int opened, pending_setup, next_to_connect;
    /* phase state */
    bool measuring, sending;
    uint64_t t_start, t_stop_send, t_stop_send_due, last_delivery;
    uint64_t deliveries, payload_bytes;
    uint64_t wire_bytes; /* read from the sockets: frames as sent, compressed or not */
    uint64_t expected;   /* deliveries due for everything sent so far (all phases) */
    /* open loop (--rate): round k, publisher i; period in ns (0: closed loop) */
    uint64_t ol_k, ol_period;
    int ol_i;
    uint64_t lost, dup, reordered, self, cross, corrupt, disconnects, protocol_errors, send_errors;
    hist lat, done_lat, lag;
    hist arrival;         /* send to the kernel's receive timestamp of the read's last segment */
    uint64_t now_kernel;  /* that timestamp for the read being fed, monotonic ns (0: none) */
    int64_t rt_offset;    /* realtime_offset() */
    bool server_fds_low;  /* the server's RLIMIT_NOFILE is below the connection count */
    uint64_t done_ns[64]; /* the first times-to-every-receiver, exact (S4's broadcasts) */
    int ndone;
    char fatal[256];
#ifdef WSFWD_HAVE_TLS
    SSL_CTX *tls;
#endif
} g;

static void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(code);
}

static void set_fatal(const char *fmt, ...)
{
    if (g.fatal[0] != '\0') {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g.fatal, sizeof g.fatal, fmt, ap);
    va_end(ap);
    /* The message goes into a JSON string as it is: keep it free of what would need escaping
       (a server's close reason may hold quotes). */
    for (char *ch = g.fatal; *ch != '\0'; ch++) {
        if (*ch == '"') {
            *ch = '\'';
        } else if (*ch == '\\' || (unsigned char)*ch < 0x20) {
            *ch = ' ';
        }
    }
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "loadgen: hard deadline passed (--timeout); giving up\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(3);
}

static void mark_dirty(lconn *c)
{
    if (!c->dirty) {
        c->dirty = true;
        c->next_dirty = g.dirty;
        g.dirty = c;
    }
}

static void ep_mod(lconn *c, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0u), .data.ptr = c};
    if (epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        die(3, "epoll_ctl: %s", strerror(errno));
    }
    c->want_out = out;
}

static void conn_lost(lconn *c, const char *why)
{
    if (c->state == C_DEAD) {
        return;
    }
    if (c->state == C_OPEN) {
        g.opened--;
    } else if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
        g.pending_setup--;
    }
    c->state = C_DEAD;
    g.disconnects++;
    set_fatal("connection %u (room %u) lost: %s", c->id, c->room, why);
    epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
#ifdef WSFWD_HAVE_TLS
    SSL_free(c->ssl);
    c->ssl = NULL;
#endif
    close(c->fd);
    c->fd = -1;
}

#ifdef WSFWD_HAVE_TLS
static void tls_step(lconn *c);

/* --tls: what is queued, gathered into one SSL_write of at most a record. A write that waits
   for the socket is retried with the same first bytes (the queue only grows at its end). */
static void flush_tls(lconn *c)
{
    static uint8_t buf[16384];
    if (c->tls_hs) {
        tls_step(c);
        return;
    }
    while (wsfwd_conn_pending(c->conn) > 0) {
        wsfwd_iovec iov[IOV_BATCH];
        size_t n = wsfwd_conn_output(c->conn, iov, IOV_BATCH);
        size_t got = 0;
        for (size_t i = 0; i < n && got < sizeof buf; i++) {
            size_t k = iov[i].len < sizeof buf - got ? iov[i].len : sizeof buf - got;
            memcpy(buf + got, iov[i].base, k);
            got += k;
        }
        ERR_clear_error();
        int w = SSL_write(c->ssl, buf, (int)got);
        if (w <= 0) {
            int e = SSL_get_error(c->ssl, w);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                if (!c->want_out) {
                    ep_mod(c, true);
                }
                return;
            }
            conn_lost(c, "SSL_write failed");
            return;
        }
        wsfwd_conn_consume(c->conn, (size_t)w);
    }
    if (c->want_out) {
        ep_mod(c, false);
    }
}
#endif

/* Write what is queued, one writev per call; EPOLLOUT only while the socket is full. */
static void flush(lconn *c)
{
#ifdef WSFWD_HAVE_TLS
    if (c->ssl != NULL) {
        if (c->state == C_HANDSHAKE || c->state == C_OPEN) {
            flush_tls(c);
        }
        return;
    }
#endif
    while (c->state == C_HANDSHAKE || c->state == C_OPEN) {
        size_t pending = wsfwd_conn_pending(c->conn);
        if (pending == 0) {
            if (c->want_out) {
                ep_mod(c, false);
            }
            return;
        }
        wsfwd_iovec iov[IOV_BATCH];
        size_t n = wsfwd_conn_output(c->conn, iov, IOV_BATCH);
        ssize_t w = writev(c->fd, (const struct iovec *)(const void *)iov, (int)n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!c->want_out) {
                    ep_mod(c, true);
                }
                return;
            }
            conn_lost(c, strerror(errno));
            return;
        }
        wsfwd_conn_consume(c->conn, (size_t)w);
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
            total += iov[i].len;
        }
        if ((size_t)w < total) {
            if (!c->want_out) {
                ep_mod(c, true);
            }
            return;
        }
    }
}

static void flush_dirty(void)
{
    while (g.dirty != NULL) {
        lconn *c = g.dirty;
        g.dirty = c->next_dirty;
        c->dirty = false;
        flush(c);
    }
}

/* ---- Messages ------------------------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}
static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void publish(publisher *pb, uint64_t stamp)
{
    uint8_t *m = g.payload;
    put32(m, MAGIC);
    put32(m + 4, (uint32_t)(pb - g.pubs));
    put32(m + 8, pb->room);
    put32(m + 12, (uint32_t)g.p.size);
    put64(m + 16, pb->sent);
    put64(m + 24, stamp);
    if (g.p.inflight > 0) {
        size_t k = pb->sent % (uint64_t)g.p.inflight;
        pb->remaining[k] = (uint32_t)(g.room_members[pb->room] - 1);
        pb->sent_ts[k] = stamp;
    }
    pb->sent++;
    g.expected += (uint64_t)(g.room_members[pb->room] - 1);
    int rc = wsfwd_conn_send(pb->c->conn, WSFWD_OP_BINARY, m, g.p.size);
    if (rc != WSFWD_OK) {
        g.send_errors++;
        set_fatal("publisher %u: send failed: %s", (unsigned)(pb - g.pubs), wsfwd_strerror(rc));
        return;
    }
    mark_dirty(pb->c);
}

/* Closed loop: send while fewer than --inflight messages are on their way. */
static void pub_fill(publisher *pb)
{
    if (!g.sending || pb->c->state != C_OPEN) {
        return;
    }
    while (pb->sent - pb->done < (uint64_t)g.p.inflight) {
        if (g.p.count > 0 && pb->sent >= (uint64_t)g.p.count) {
            return;
        }
        if (g.p.gap > 0) {
            uint64_t t = now_ns();
            if (t < pb->next_at) {
                return;
            }
            pb->next_at = t + (uint64_t)(g.p.gap * 1e9);
        }
        publish(pb, now_ns());
    }
}

static int on_open(wsfwd_conn *conn, void *ud)
{
    (void)ud;
    lconn *c = wsfwd_conn_user_data(conn);
    c->state = C_OPEN;
    g.pending_setup--;
    g.opened++;
    return 0;
}

static int on_message(wsfwd_conn *conn, wsfwd_opcode op, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    lconn *c = wsfwd_conn_user_data(conn);
    if (op != WSFWD_OP_BINARY || len < HDR_LEN || get32(data) != MAGIC || get32(data + 12) != len ||
        get32(data + 4) >= (uint32_t)g.npubs) {
        g.corrupt++;
        return 0;
    }
    uint32_t pid = get32(data + 4);
    uint32_t room = get32(data + 8);
    uint64_t seq = get64(data + 16);
    uint64_t ts = get64(data + 24);
    publisher *pb = &g.pubs[pid];
    if (room != c->room || pb->room != c->room) {
        g.cross++;
        return 0;
    }
    if (c->pub >= 0 && (uint32_t)c->pub == pid) {
        g.self++;
        return 0;
    }
    if (seq >= pb->sent) {
        g.corrupt++; /* never sent */
        return 0;
    }
    uint32_t s = pb->slot;
    bool fresh = true;
    if (seq == c->next[s]) {
        c->next[s]++;
    } else if (seq > c->next[s]) {
        c->gaps[s] += seq - c->next[s]; /* lost, unless they come later (reordered) */
        c->next[s] = seq + 1;
    } else if (c->gaps[s] > 0) {
        c->gaps[s]--;
        g.reordered++;
    } else {
        g.dup++;
        fresh = false;
    }
    if (!fresh) {
        return 0;
    }
    c->uniq[s]++;
    g.deliveries++;
    g.payload_bytes += len;
    g.last_delivery = g.now;
    hadd(&g.lat, g.now > ts ? g.now - ts : 0);
    if (g.now_kernel != 0) {
        hadd(&g.arrival, g.now_kernel > ts ? g.now_kernel - ts : 0);
    }
    if (g.p.inflight > 0 && seq >= pb->done) {
        size_t k = seq % (uint64_t)g.p.inflight;
        if (--pb->remaining[k] == 0) {
            /* Receivers get a publisher's messages in order, so completions come in order. */
            hadd(&g.done_lat, g.now - pb->sent_ts[k]);
            if (g.ndone < 64) {
                g.done_ns[g.ndone++] = g.now - pb->sent_ts[k];
            }
            pb->done = seq + 1;
            pub_fill(pb);
        }
    }
    return 0;
}

static void on_close(wsfwd_conn *conn, uint16_t code, const char *reason, size_t reason_len,
                     int err, void *ud)
{
    (void)ud;
    lconn *c = wsfwd_conn_user_data(conn);
    if (err != WSFWD_OK) {
        g.protocol_errors++;
    }
    char why[200];
    snprintf(why, sizeof why, "closed by the server with %u \"%.*s\"%s%s", code,
             (int)(reason_len > 120 ? 120 : reason_len), reason, err ? ": " : "",
             err ? wsfwd_strerror(err) : "");
    set_fatal("connection %u (room %u): %s", c->id, c->room, why);
    g.disconnects++;
}

static void on_output(wsfwd_conn *conn, void *ud)
{
    (void)ud;
    mark_dirty(wsfwd_conn_user_data(conn));
}

/* ---- Setup ---------------------------------------------------------------------------------- */

/*
 * Source address k of --source-addrs: 127.0.0.(2 + k). The port is left to connect()
 * (IP_BIND_ADDRESS_NO_PORT), which picks one free for the whole address pair, so each source
 * address has the kernel's whole ephemeral port range.
 */
static void bind_source(int fd, uint32_t k)
{
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1u + k)};
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
        die(3, "bind to 127.0.0.%u: %s", 2u + k, strerror(errno));
    }
}

static void start_connect(lconn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        die(3, "socket: %s (connections so far: %d)", strerror(errno), c->id);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Open loop: the kernel's receive time of each read's data, beside the time read()
       returned. Not for closed loops (S1, S2): the timestamps cost the generator CPU there. */
    if (g.p.rate > 0 || g.p.search) {
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    }
    int port = g.p.port;
    if (c->pub >= 0 && g.p.pub_port > 0) {
        port = g.p.pub_port;
    } else if (c->pub < 0 && g.p.nsub_ports > 0) {
        port = g.p.sub_ports[(c->id - (uint32_t)g.npubs) % (uint32_t)g.p.nsub_ports];
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, g.p.host, &a.sin_addr) != 1) {
        die(2, "--host must be an IPv4 address, not '%s'", g.p.host);
    }
    if (g.p.source_addrs > 0) {
        bind_source(fd, c->id % (uint32_t)g.p.source_addrs);
    }
    c->fd = fd;
    c->state = C_CONNECTING;
    g.pending_setup++;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        die(3, "connect to %s: %s (connections so far: %d)%s", g.hostport, strerror(errno), c->id,
            errno == EADDRNOTAVAIL ? "; no local port left: more --source-addrs" : "");
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        die(3, "epoll_ctl: %s", strerror(errno));
    }
    c->want_out = true;
}

/* The WebSocket handshake, once TCP (and TLS) are up. */
static void start_websocket(lconn *c)
{
    char path[256];
    const char *t = strstr(g.p.path, "{room}");
    if (t != NULL) {
        snprintf(path, sizeof path, "%.*s%u%s", (int)(t - g.p.path), g.p.path, c->room, t + 6);
    } else {
        snprintf(path, sizeof path, "%s", g.p.path);
    }
    if (wsfwd_conn_new(g.cfg, WSFWD_ROLE_CLIENT, c, &c->conn) != WSFWD_OK ||
        wsfwd_conn_client_start(c->conn, g.hostport, path, NULL, NULL) != WSFWD_OK) {
        die(3, "cannot start a client connection");
    }
    ep_mod(c, false);
    flush(c);
}

#ifdef WSFWD_HAVE_TLS
/* --tls: drive the TLS handshake; the WebSocket's starts when it is done. */
static void tls_step(lconn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->tls_hs = false;
        start_websocket(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (c->want_out != (e == SSL_ERROR_WANT_WRITE)) {
            ep_mod(c, e == SSL_ERROR_WANT_WRITE);
        }
        return;
    }
    char why[160];
    ERR_error_string_n(ERR_peek_error(), why, sizeof why);
    die(3, "TLS handshake with %s failed: %s", g.hostport, why);
}
#endif

static void connected(lconn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        die(3, "connect to %s: %s", g.hostport, strerror(err));
    }
    if (g.p.source_addrs > 0) {
        struct sockaddr_in me;
        socklen_t mlen = sizeof me;
        uint32_t want = INADDR_LOOPBACK + 1u + c->id % (uint32_t)g.p.source_addrs;
        if (getsockname(c->fd, (struct sockaddr *)&me, &mlen) != 0 ||
            ntohl(me.sin_addr.s_addr) != want) {
            die(3, "connection %u is not from its source address 127.0.0.%u", c->id, want & 0xffu);
        }
    }
    c->state = C_HANDSHAKE;
#ifdef WSFWD_HAVE_TLS
    if (g.tls != NULL) {
        c->ssl = SSL_new(g.tls);
        if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
            die(3, "cannot set up TLS");
        }
        SSL_set_connect_state(c->ssl);
        c->tls_hs = true;
        tls_step(c);
        return;
    }
#endif
    start_websocket(c);
}

/* ---- The loop ------------------------------------------------------------------------------- */

static uint8_t rbuf[READ_BUF];

static void feed(lconn *c, size_t r);

#ifdef WSFWD_HAVE_TLS
/* --tls: read until OpenSSL needs the socket again (what it holds wakes no epoll_wait). */
static void readable_tls(lconn *c)
{
    if (c->tls_hs) {
        tls_step(c);
        return;
    }
    while (c->state == C_HANDSHAKE || c->state == C_OPEN) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, rbuf, (int)sizeof rbuf);
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                return;
            }
            conn_lost(c, e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL
                             ? "EOF from the server"
                             : "TLS error");
            return;
        }
        g.now = now_ns();
        g.now_kernel = 0;
        feed(c, (size_t)r);
    }
}
#endif

static void readable(lconn *c)
{
#ifdef WSFWD_HAVE_TLS
    if (c->ssl != NULL) {
        readable_tls(c);
        return;
    }
#endif
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = rbuf, .iov_len = sizeof rbuf};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    ssize_t r = recvmsg(c->fd, &mh, 0);
    if (r < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        }
        conn_lost(c, strerror(errno));
        return;
    }
    if (r == 0) {
        conn_lost(c, "EOF from the server");
        return;
    }
    g.now = now_ns();
    g.now_kernel = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec kt;
            memcpy(&kt, CMSG_DATA(cm), sizeof kt);
            int64_t k = (int64_t)kt.tv_sec * 1000000000 + kt.tv_nsec - g.rt_offset;
            g.now_kernel = k > 0 ? (uint64_t)k : 0;
        }
    }
    feed(c, (size_t)r);
}

/* r bytes from rbuf into c's connection. */
static void feed(lconn *c, size_t r)
{
    g.wire_bytes += (uint64_t)r;
    int rc = wsfwd_conn_feed(c->conn, rbuf, r);
    if (rc != WSFWD_OK) {
        if (c->state != C_OPEN) {
            die(3, "handshake with %s failed: %s", g.hostport, wsfwd_strerror(rc));
        }
        g.protocol_errors++;
        conn_lost(c, wsfwd_strerror(rc));
        return;
    }
    if (wsfwd_conn_pending(c->conn) > 0) {
        mark_dirty(c);
    }
}

/*
 * Open loop: publish every message due by t, stamped with its scheduled time. Returns the
 * microseconds until the next one (at most 50 ms).
 */
static int64_t send_due(uint64_t t)
{
    for (;;) {
        uint64_t due =
            g.t_start + g.ol_k * g.ol_period + (uint64_t)g.ol_i * g.ol_period / (uint64_t)g.npubs;
        if (due > t) {
            uint64_t wait = (due - t) / 1000u;
            return wait < 50000 ? (int64_t)wait : 50000;
        }
        hadd(&g.lag, t - due);
        publish(&g.pubs[g.ol_i], due);
        if (++g.ol_i == g.npubs) {
            g.ol_i = 0;
            g.ol_k++;
        }
    }
}

/* Events handled between two looks at the open loop's schedule. */
#define EVENTS_PER_SEND_CHECK 16

/* One turn: wait at most timeout_us, handle the events, write what was queued. */
static void turn_us(int64_t timeout_us)
{
    static struct epoll_event evs[1024];
    flush_dirty();
    struct timespec ts = {.tv_sec = (time_t)(timeout_us / 1000000),
                          .tv_nsec = (long)(timeout_us % 1000000) * 1000};
    /* epoll_pwait2: a timeout finer than a millisecond, so an open loop sleeps between sends
       instead of spinning on a core the server needs. */
    int n = epoll_pwait2(g.ep, evs, 1024, &ts, NULL);
    if (n < 0) {
        if (errno == EINTR) {
            return;
        }
        die(3, "epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        /* A long batch of reads must not hold back the open loop's sends: their lag would
           count as latency (messages are stamped with the scheduled time). */
        if (i > 0 && i % EVENTS_PER_SEND_CHECK == 0 && g.sending && g.ol_period > 0 &&
            now_ns() < g.t_stop_send_due) {
            send_due(now_ns());
            flush_dirty();
        }
        lconn *c = evs[i].data.ptr;
        if (c->state == C_DEAD) {
            continue;
        }
        if (c->state == C_CONNECTING) {
            connected(c);
            continue;
        }
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            readable(c);
        }
        if (c->state != C_DEAD && (evs[i].events & EPOLLOUT)) {
            mark_dirty(c);
        }
    }
    flush_dirty();
}

static void turn(int timeout_ms)
{
    turn_us((int64_t)timeout_ms * 1000);
}

static bool server_alive(void)
{
    return g.p.server_pid <= 0 || kill((pid_t)g.p.server_pid, 0) == 0 || errno == EPERM;
}

/* ---- The server's /proc figures (the pid and all its descendants) -----------------------------
 */

static int read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0) {
        return -1;
    }
    buf[n] = '\0';
    return (int)n;
}

/* utime, stime, cutime, cstime (ticks) and ppid from /proc/PID/stat. */
static int proc_stat(long pid, long *ppid, uint64_t *ticks)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if (read_file(path, buf, sizeof buf) < 0) {
        return -1;
    }
    char *p = strrchr(buf, ')');
    if (p == NULL) {
        return -1;
    }
    /* fields after comm: 3 state, 4 ppid, ... 14 utime 15 stime 16 cutime 17 cstime */
    char state;
    long pp;
    unsigned long long f[17];
    if (sscanf(p + 2, "%c %ld %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
               &state, &pp, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9],
               &f[10], &f[11], &f[12]) != 15) {
        return -1;
    }
    *ppid = pp;
    *ticks = f[9] + f[10] + f[11] + f[12];
    return 0;
}

static long vmrss_kib(long pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    if (read_file(path, buf, sizeof buf) < 0) {
        return -1;
    }
    char *p = strstr(buf, "VmRSS:");
    return p != NULL ? strtol(p + 6, NULL, 10) : -1;
}

/* Sum over the server pid and its descendants: CPU ticks (with reaped children) and RSS KiB. */
static bool server_usage(uint64_t *ticks, long *rss)
{
    *ticks = 0;
    *rss = 0;
    if (g.p.server_pid <= 0) {
        return false;
    }
    long tree[512];
    int nt = 0;
    tree[nt++] = g.p.server_pid;
    uint64_t t;
    long pp;
    if (proc_stat(g.p.server_pid, &pp, &t) != 0) {
        return false;
    }
    *ticks += t;
    long r = vmrss_kib(g.p.server_pid);
    *rss += r > 0 ? r : 0;
    DIR *d = opendir("/proc");
    if (d == NULL) {
        return true;
    }
    /* Few processes: repeat the scan until no new descendant appears. */
    for (bool grew = true; grew;) {
        grew = false;
        rewinddir(d);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!isdigit((unsigned char)e->d_name[0])) {
                continue;
            }
            long pid = strtol(e->d_name, NULL, 10);
            bool known = false;
            for (int i = 0; i < nt; i++) {
                known = known || tree[i] == pid;
            }
            if (known || proc_stat(pid, &pp, &t) != 0) {
                continue;
            }
            for (int i = 0; i < nt && nt < 512; i++) {
                if (tree[i] == pp) {
                    tree[nt++] = pid;
                    *ticks += t;
                    r = vmrss_kib(pid);
                    *rss += r > 0 ? r : 0;
                    grew = true;
                    break;
                }
            }
        }
    }
    closedir(d);
    return true;
}

/* ---- Limits: descriptors, ports, memory ------------------------------------------------------
 */

/* Raise RLIMIT_NOFILE to `need` (the hard limit too, where allowed), or fail saying how. */
static void raise_fd_limit(rlim_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        die(3, "getrlimit: %s", strerror(errno));
    }
    if (rl.rlim_max < need) {
        struct rlimit up = {.rlim_cur = need, .rlim_max = need};
        if (setrlimit(RLIMIT_NOFILE, &up) != 0) {
            die(3,
                "%d connections need %llu descriptors, but RLIMIT_NOFILE's hard limit is %llu "
                "and cannot be raised (%s; it needs CAP_SYS_RESOURCE and at most "
                "/proc/sys/fs/nr_open): as root, run 'ulimit -Hn %llu' in the shell that starts "
                "loadgen and the server",
                g.nconns, (unsigned long long)need, (unsigned long long)rl.rlim_max,
                strerror(errno), (unsigned long long)need);
        }
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The number of ports in the kernel's ephemeral range (net.ipv4.ip_local_port_range). */
static long ephemeral_ports(void)
{
    char buf[64];
    long lo, hi;
    if (read_file("/proc/sys/net/ipv4/ip_local_port_range", buf, sizeof buf) < 0 ||
        sscanf(buf, "%ld %ld", &lo, &hi) != 2 || hi < lo) {
        return 60999 - 32768 + 1; /* Linux's default range */
    }
    return hi - lo + 1;
}

/*
 * Choose --source-addrs when it is "as needed" (-1: enough addresses that each holds at most
 * 3/4 of the ephemeral port range), and refuse a plan that would run out of local ports.
 */
static void plan_sources(params *p)
{
    long ports = ephemeral_ports();
    long dests = p->nsub_ports > 1 ? p->nsub_ports : 1; /* a port per (source, destination) */
    long per = ports * 3 / 4;
    if (p->source_addrs < 0) {
        p->source_addrs = g.nconns > per ? (int)((g.nconns + per - 1) / per) : 0;
    }
    if (p->source_addrs > 0 && strncmp(p->host, "127.", 4) != 0) {
        die(2, "--source-addrs binds to 127.0.0.2 and up: --host must be a loopback address");
    }
    long most = p->source_addrs > 0 ? (g.nconns + p->source_addrs - 1) / p->source_addrs : g.nconns;
    if (most > ports * dests) {
        die(2,
            "%ld connections from one source address, but the ephemeral port range "
            "(net.ipv4.ip_local_port_range) has %ld ports: give --source-addrs %ld or more",
            most, ports, (g.nconns + per - 1) / per);
    }
}

/* The server's soft RLIMIT_NOFILE from /proc/PID/limits (-1: unknown or unlimited). */
static long server_fd_limit(void)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%ld/limits", g.p.server_pid);
    if (read_file(path, buf, sizeof buf) < 0) {
        return -1;
    }
    char *l = strstr(buf, "Max open files");
    long n = l != NULL ? strtol(l + strlen("Max open files"), NULL, 10) : 0;
    return n > 0 ? n : -1;
}

/* ---- Phases --------------------------------------------------------------------------------- */

static void check_deadline(uint64_t deadline, const char *what)
{
    if (now_ns() > deadline) {
        set_fatal("%s did not finish in time", what);
    }
}

static void connect_all(void)
{
    uint64_t deadline = now_ns() + (uint64_t)(g.p.connect_timeout * 1e9);
    uint64_t last_check = 0;
    while (g.opened < g.nconns && g.fatal[0] == '\0') {
        while (g.next_to_connect < g.nconns && g.pending_setup < g.p.connect_batch) {
            start_connect(&g.conns[g.next_to_connect++]);
        }
        turn(100);
        check_deadline(deadline, "connection setup");
        uint64_t t = now_ns();
        if (t - last_check > 500000000u) {
            last_check = t;
            if (!server_alive()) {
                set_fatal("the server (pid %ld) is gone", g.p.server_pid);
            }
        }
    }
    if (g.fatal[0] != '\0') {
        die(3, "%s (%d of %d connections open)%s", g.fatal, g.opened, g.nconns,
            g.server_fds_low ? "; the server's descriptor limit is below the connections" : "");
    }
}

/* The sum over publishers of sent * (room members - 1), kept by publish(). */
static uint64_t expected_deliveries(void)
{
    return g.expected;
}

static void reset_counters(void)
{
    g.deliveries = g.payload_bytes = g.wire_bytes = 0;
    g.lost = g.dup = g.reordered = g.self = g.cross = g.corrupt = 0;
    memset(&g.lat, 0, sizeof g.lat);
    memset(&g.done_lat, 0, sizeof g.done_lat);
    memset(&g.lag, 0, sizeof g.lag);
    memset(&g.arrival, 0, sizeof g.arrival);
    g.rt_offset = realtime_offset();
    g.ndone = 0;
}

/* Sequence numbers run on across search steps: every step counts from where the last ended. */
typedef struct snapshot {
    uint64_t deliveries_base;
    uint64_t expected_base;
} snapshot;

/*
 * Publish for `duration` seconds (closed loop, open loop at `rate`, or until --count), then
 * drain. Returns the measured seconds (first send to last delivery).
 */
static double run_phase(double rate, double duration)
{
    uint64_t exp_before = expected_deliveries();
    uint64_t deliv_before = g.deliveries;
    g.t_start = now_ns();
    g.last_delivery = g.t_start;
    g.sending = true;
    uint64_t send_until = g.t_start + (uint64_t)(duration * 1e9);
    uint64_t hard = send_until + (uint64_t)((g.p.drain + 5) * 1e9);
    g.t_stop_send_due = send_until;
    g.ol_period = rate > 0 ? (uint64_t)(1e9 / rate) : 0;
    g.ol_k = 0;
    g.ol_i = 0;
    uint64_t last_alive = g.t_start;
    if (rate <= 0) {
        for (int j = 0; j < g.npubs; j++) {
            pub_fill(&g.pubs[j]);
        }
    }
    for (;;) {
        uint64_t t = now_ns();
        int64_t timeout = 50000; /* us */
        if (g.sending && t >= send_until) {
            g.sending = false;
            g.t_stop_send = t;
        }
        if (g.sending && rate > 0) {
            timeout = send_due(t);
        } else if (g.sending && g.p.gap > 0) {
            for (int j = 0; j < g.npubs; j++) {
                pub_fill(&g.pubs[j]);
            }
            timeout = 1000;
        }
        if (!g.sending) {
            if (g.deliveries - deliv_before >= expected_deliveries() - exp_before) {
                break; /* everything sent has arrived */
            }
            if (t > g.t_stop_send + (uint64_t)(g.p.drain * 1e9)) {
                break; /* the rest is lost */
            }
        }
        if (g.p.count > 0 && g.sending) {
            bool all = true;
            for (int j = 0; j < g.npubs; j++) {
                all = all && g.pubs[j].done >= (uint64_t)g.p.count;
            }
            if (all) {
                g.sending = false;
                g.t_stop_send = t;
                continue;
            }
        }
        turn_us(timeout);
        if (g.fatal[0] != '\0') {
            break;
        }
        t = now_ns();
        if (t > hard) {
            set_fatal("the run passed its deadline");
            break;
        }
        bool due_any = g.deliveries - deliv_before < expected_deliveries() - exp_before;
        if (due_any && t - g.last_delivery > (uint64_t)(g.p.stall * 1e9) &&
            t - g.t_start > (uint64_t)(g.p.stall * 1e9)) {
            set_fatal("no delivery for %.1f s while %" PRIu64 " were due: the server stalled",
                      g.p.stall,
                      expected_deliveries() - exp_before - (g.deliveries - deliv_before));
            break;
        }
        if (t - last_alive > 500000000u) {
            last_alive = t;
            if (!server_alive()) {
                set_fatal("the server (pid %ld) is gone", g.p.server_pid);
                break;
            }
        }
    }
    g.sending = false;
    g.ol_period = 0;
    uint64_t end = g.last_delivery > g.t_start ? g.last_delivery : now_ns();
    return (double)(end - g.t_start) / 1e9;
}

/* Lost: every (receiver, publisher of its room) pair, sent minus distinct received. */
static uint64_t count_lost(void)
{
    uint64_t lost = 0;
    int ppr = g.p.publishers;
    for (int j = 0; j < g.nconns; j++) {
        lconn *c = &g.conns[j];
        for (int s = 0; s < ppr; s++) {
            publisher *pb = &g.pubs[c->room * (uint32_t)ppr + (uint32_t)s];
            if (c->pub >= 0 && pb == &g.pubs[c->pub]) {
                continue;
            }
            lost += pb->sent - c->uniq[s];
        }
    }
    return lost;
}

/* ---- Reports -------------------------------------------------------------------------------- */

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

typedef struct result {
    double seconds, server_cpu;
    bool have_cpu;
    long rss_before, rss_after;
    double rate;
    uint64_t sent;
} result;

static bool errors_zero(void)
{
    return g.lost == 0 && g.dup == 0 && g.reordered == 0 && g.self == 0 && g.cross == 0 &&
           g.corrupt == 0 && g.disconnects == 0 && g.protocol_errors == 0 && g.send_errors == 0;
}

static void report(const result *r, const char *extra_json, bool final)
{
    const params *p = &g.p;
    double dps = r->seconds > 0 ? (double)g.deliveries / r->seconds : 0;
    double mbps = r->seconds > 0 ? (double)g.payload_bytes / r->seconds / 1e6 : 0;
    double cpu_per_m =
        g.deliveries > 0 && r->have_cpu ? r->server_cpu / ((double)g.deliveries / 1e6) : -1;
    int conns = g.nconns;
    printf(
        "{\"scenario\":\"%s\",\"final\":%s,\"ok\":%s,\"rooms\":%d,\"subscribers\":%d,"
        "\"publishers_per_room\":%d,\"connections\":%d,\"size\":%zu,\"inflight\":%d,"
        "\"rate\":%.3f,\"duration\":%.3f,\"count\":%ld,\"seconds\":%.4f,\"messages_sent\":%" PRIu64
        ",\"deliveries\":%" PRIu64 ",\"deliveries_per_s\":%.1f,\"payload_mb_per_s\":%.3f,"
        "\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f},"
        "\"all_receivers_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"n\":%" PRIu64 "},"
        "\"send_lag_us\":{\"p99\":%.1f,\"max\":%.1f},"
        "\"arrival_latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"n\":%" PRIu64 "},"
        "\"lost\":%" PRIu64 ",\"duplicated\":%" PRIu64 ",\"reordered\":%" PRIu64
        ",\"self_delivered\":%" PRIu64 ",\"cross_room\":%" PRIu64 ",\"corrupt\":%" PRIu64
        ",\"disconnects\":%" PRIu64 ",\"protocol_errors\":%" PRIu64 ",\"send_errors\":%" PRIu64
        ",\"server_pid\":%ld,\"server_cpu_s\":%.3f,\"server_cpu_s_per_m_deliveries\":%.4f,"
        "\"server_rss_before_kib\":%ld,\"server_rss_after_kib\":%ld,"
        "\"server_rss_per_conn_kib\":%.4f,\"json\":%s,\"deflate\":%s,\"tls\":%s,"
        "\"wire_bytes_per_delivery\":%.1f%s%s,\"error\":\"%s\"}\n",
        p->scenario, final ? "true" : "false", errors_zero() && !g.fatal[0] ? "true" : "false",
        p->rooms, p->subscribers, p->publishers, conns, p->size, p->inflight, r->rate, p->duration,
        p->count, r->seconds, r->sent, g.deliveries, dps, mbps, us(hq(&g.lat, 0.5)),
        us(hq(&g.lat, 0.99)), us(hq(&g.lat, 0.999)), us(g.lat.max),
        g.lat.n ? us(g.lat.sum / g.lat.n) : 0.0, us(hq(&g.done_lat, 0.5)),
        us(hq(&g.done_lat, 0.99)), us(g.done_lat.max), g.done_lat.n, us(hq(&g.lag, 0.99)),
        us(g.lag.max), us(hq(&g.arrival, 0.5)), us(hq(&g.arrival, 0.99)), us(g.arrival.max),
        g.arrival.n, g.lost, g.dup, g.reordered, g.self, g.cross, g.corrupt, g.disconnects,
        g.protocol_errors, g.send_errors, p->server_pid, r->have_cpu ? r->server_cpu : -1.0,
        cpu_per_m, r->rss_before, r->rss_after,
        r->rss_after > 0 && r->rss_before > 0 ? (double)(r->rss_after - r->rss_before) / conns
                                              : -1.0,
        p->json ? "true" : "false", p->deflate ? "true" : "false", p->tls ? "true" : "false",
        g.deliveries > 0 ? (double)g.wire_bytes / (double)g.deliveries : 0.0, extra_json ? "," : "",
        extra_json ? extra_json : "", g.fatal);
    fflush(stdout);
    if (p->quiet) {
        return;
    }
    fprintf(stderr,
            "loadgen %s: %d room(s), %d subscriber(s), %d publisher(s)/room, %d connections, "
            "%zu B messages, %s",
            p->scenario, p->rooms, p->subscribers, p->publishers, conns, p->size,
            r->rate > 0 ? "open loop" : "closed loop");
    if (r->rate > 0) {
        fprintf(stderr, " at %.2f msg/s per publisher", r->rate);
    } else {
        fprintf(stderr, ", %d in flight per publisher", p->inflight);
    }
    fprintf(stderr, ", %.2f s measured\n", r->seconds);
    fprintf(stderr, "  %-22s %" PRIu64 " sent, %" PRIu64 " deliveries: %.0f/s, payload %.2f MB/s\n",
            "throughput", r->sent, g.deliveries, dps, mbps);
    fprintf(stderr, "  %-22s p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (log-linear histogram)\n",
            "latency (us)", us(hq(&g.lat, 0.5)), us(hq(&g.lat, 0.99)), us(hq(&g.lat, 0.999)),
            us(g.lat.max));
    if (g.arrival.n > 0) {
        fprintf(stderr, "  %-22s p50 %.1f  p99 %.1f  max %.1f  (kernel receive timestamp)\n",
                "arrival latency (us)", us(hq(&g.arrival, 0.5)), us(hq(&g.arrival, 0.99)),
                us(g.arrival.max));
    }
    if (g.done_lat.n > 0) {
        fprintf(stderr, "  %-22s p50 %.1f  p99 %.1f  max %.1f  over %" PRIu64 " messages\n",
                "to every receiver (us)", us(hq(&g.done_lat, 0.5)), us(hq(&g.done_lat, 0.99)),
                us(g.done_lat.max), g.done_lat.n);
    }
    if (g.lag.n > 0) {
        fprintf(stderr, "  %-22s p99 %.1f  max %.1f\n", "send lag (us)", us(hq(&g.lag, 0.99)),
                us(g.lag.max));
    }
    fprintf(stderr,
            "  %-22s lost %" PRIu64 "  duplicated %" PRIu64 "  reordered %" PRIu64 "  self %" PRIu64
            "  cross-room %" PRIu64 "  corrupt %" PRIu64 "  disconnects %" PRIu64
            "  protocol %" PRIu64 "\n",
            "errors", g.lost, g.dup, g.reordered, g.self, g.cross, g.corrupt, g.disconnects,
            g.protocol_errors);
    if (r->have_cpu) {
        fprintf(stderr, "  %-22s pid %ld: %.2f CPU-s, %.3f CPU-s per million deliveries\n",
                "server", p->server_pid, r->server_cpu, cpu_per_m);
    }
    if (r->rss_after > 0 && r->rss_before > 0) {
        fprintf(stderr, "  %-22s %ld KiB before, %ld KiB after: %.3f KiB per connection\n",
                "server RSS", r->rss_before, r->rss_after,
                (double)(r->rss_after - r->rss_before) / conns);
    }
    if (g.fatal[0]) {
        fprintf(stderr, "  %-22s %s\n", "ERROR", g.fatal);
    }
}

/* ---- Payload and compression ------------------------------------------------------------------
 */

/* JSON chat messages, one after another, with words from a fixed pseudo-random sequence: text
   that compresses as chat traffic does (about 3 times at 1 KiB, docs/BENCHMARKS.md). */
static void fill_json(uint8_t *out, size_t len)
{
    static const char *const words[] = {"hello", "world", "message", "room",  "general", "see",
                                        "you",   "later", "thanks",  "what",  "about",   "the",
                                        "new",   "build", "tonight", "great", "idea",    "ok"};
    uint32_t x = 12345;
    size_t at = 0;
    unsigned id = 0;
    while (at < len) {
        char msg[512];
        int n = snprintf(msg, sizeof msg,
                         "{\"type\":\"message\",\"room\":\"general\",\"id\":%u,\"user\":\"user%u\","
                         "\"ts\":%u,\"text\":\"",
                         id, id * 7 % 50, 1700000000u + id * 13);
        for (int w = 0; w < 12 && n < 400; w++) {
            x = x * 1103515245u + 12345u;
            n += snprintf(msg + n, sizeof msg - (size_t)n, "%s%s", w ? " " : "",
                          words[(x >> 16) % (sizeof words / sizeof words[0])]);
        }
        n += snprintf(msg + n, sizeof msg - (size_t)n, "\"}");
        size_t k = (size_t)n < len - at ? (size_t)n : len - at;
        memcpy(out + at, msg, k);
        at += k;
        id++;
    }
}

#ifdef WSFWD_HAVE_DEFLATE
static compress_ctx *g_codec;

/* The wsfwd command's zlib codec (cli/compress.c), level 1, on the generator's config. */
static int setup_deflate(void)
{
    wsfwd_deflate_codec codec;
    return compress_codec_init(&g_codec, 1, &codec) == 0 &&
                   wsfwd_config_set_deflate(g.cfg, &codec, sizeof codec) == WSFWD_OK
               ? 0
               : -1;
}
#else
static int setup_deflate(void)
{
    return -1;
}
#endif

#ifdef WSFWD_HAVE_TLS
/* --tls: TLS 1.3 without checking the server's certificate (the server's cost is measured). */
static int setup_tls(void)
{
    g.tls = SSL_CTX_new(TLS_client_method());
    if (g.tls == NULL) {
        return -1;
    }
    SSL_CTX_set_min_proto_version(g.tls, TLS1_3_VERSION);
    SSL_CTX_set_verify(g.tls, SSL_VERIFY_NONE, NULL);
    return 0;
}
#else
static int setup_tls(void)
{
    return -1;
}
#endif

/* ---- Options -------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: loadgen --port PORT [--scenario S1|S2|S3|S4|S5|S6] [options]\n"
        "  --host ADDR            IPv4 address of the server (default 127.0.0.1)\n"
        "  --path TEMPLATE        request path; {room} is the room number (default /ws/r{room})\n"
        "  --rooms N --subscribers N --publishers N (per room) --size BYTES\n"
        "  --inflight N           closed loop window per publisher\n"
        "  --rate R               open loop: messages per publisher per second (S3, S5)\n"
        "  --duration S --count N --gap S --drain S --stall S\n"
        "  --search               S3: step --rates (default 2,5,10,15,20,30,40,60,80,100,150,200)\n"
        "                         for --step-duration S (3) each; pass: no loss and p99 <=\n"
        "                         --p99-bound-ms (50)\n"
        "  --connect-batch N      connections in setup at once (default 200)\n"
        "  --connect-timeout S    (default 60)   --timeout S  whole run (default: computed)\n"
        "  --server-pid PID       read the server's CPU time and RSS from /proc\n"
        "  --settle S             wait after the handshakes before reading RSS (default 0.5)\n"
        "  --source-addrs N       bind connections round robin to 127.0.0.2 .. 127.0.0.(N+1),\n"
        "                         each with its own ephemeral port range (default 0: none;\n"
        "                         S6: as many as keep each under 3/4 of the range)\n"
        "  --pub-port PORT        publishers connect to this port instead of --port\n"
        "  --sub-ports P1,P2,...  subscribers spread round robin over these ports (several\n"
        "                         nodes of one cluster, e.g. wsfwd --redis)\n"
        "  --json                 the payload after the header is JSON-like chat text\n"
        "  --deflate              offer permessage-deflate (zlib, level 1; a build with zlib)\n"
        "  --tls                  wss:// (TLS 1.3, certificate not checked; a build with\n"
        "                         OpenSSL)\n"
        "  --quiet                JSON only\n");
}

static void scenario_defaults(params *p, const char *s)
{
    p->scenario = s;
    p->rooms = 1;
    p->subscribers = 100;
    p->publishers = 1;
    p->size = 64;
    p->inflight = 32;
    p->rate = 0;
    p->duration = 5;
    p->count = 0;
    p->gap = 0;
    bool rooms_of_ten = strcmp(s, "S3") == 0 || strcmp(s, "S5") == 0;
    bool idle = strcmp(s, "S4") == 0 || strcmp(s, "S6") == 0;
    if (rooms_of_ten) { /* S3; S5 changes rooms, size, rate and duration below */
        p->rooms = 100;
        p->subscribers = 0;
        p->publishers = 10;
        p->size = 4096;
        p->inflight = 0;
        p->rate = 10;
    }
    if (idle) { /* S4; S6 has ten times as many */
        p->subscribers = 10000;
        p->inflight = 1;
        p->count = 5;
        p->gap = 0.2;
        p->duration = 30; /* bounded by --count */
    }
    if (strcmp(s, "S2") == 0) {
        p->subscribers = 1000;
    } else if (strcmp(s, "S5") == 0) {
        p->rooms = 1000;
        p->size = 256;
        p->rate = 2;
        p->duration = 20;
    } else if (strcmp(s, "S6") == 0) {
        p->subscribers = 100000;
        p->connect_timeout = 120;
        p->settle = 1;
        p->source_addrs = -1;
    } else if (!rooms_of_ten && !idle && strcmp(s, "S1") != 0) {
        die(2, "unknown scenario '%s' (S1 to S6)", s);
    }
}

static double num(const char *name, const char *v, double lo, double hi)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || errno != 0 || d < lo || d > hi) {
        die(2, "%s needs a number from %g to %g, not '%s'", name, lo, hi, v);
    }
    return d;
}

static void parse(int argc, char **argv, params *p)
{
    const char *scen = "S1";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--scenario") == 0 && i + 1 < argc) {
            scen = argv[i + 1];
        }
    }
    memset(p, 0, sizeof *p);
    p->host = "127.0.0.1";
    p->port = 0;
    p->path = "/ws/r{room}";
    p->drain = 5;
    p->stall = 5;
    p->connect_batch = 200;
    p->connect_timeout = 60;
    p->rates = "2,5,10,15,20,30,40,60,80,100,150,200";
    p->step_duration = 3;
    p->p99_bound_ms = 50;
    p->settle = 0.5;
    scenario_defaults(p, scen);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--search") == 0) {
            p->search = true;
            continue;
        }
        if (strcmp(a, "--quiet") == 0) {
            p->quiet = true;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            p->json = true;
            continue;
        }
        if (strcmp(a, "--tls") == 0) {
#ifndef WSFWD_HAVE_TLS
            die(2, "--tls: this loadgen was built without OpenSSL");
#endif
            p->tls = true;
            continue;
        }
        if (strcmp(a, "--deflate") == 0) {
#ifndef WSFWD_HAVE_DEFLATE
            die(2, "--deflate: this loadgen was built without zlib");
#endif
            p->deflate = true;
            continue;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            die(2, "unknown option or missing value: %s", a);
        }
        const char *v = argv[++i];
        if (strcmp(a, "--scenario") == 0) {
        } else if (strcmp(a, "--host") == 0) {
            p->host = v;
        } else if (strcmp(a, "--port") == 0) {
            p->port = (int)num(a, v, 1, 65535);
        } else if (strcmp(a, "--pub-port") == 0) {
            p->pub_port = (int)num(a, v, 1, 65535);
        } else if (strcmp(a, "--sub-ports") == 0) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            p->nsub_ports = 0;
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL;
                 t = strtok_r(NULL, ",", &save)) {
                if (p->nsub_ports == 16) {
                    die(2, "--sub-ports: at most 16 ports");
                }
                p->sub_ports[p->nsub_ports++] = (int)num(a, t, 1, 65535);
            }
        } else if (strcmp(a, "--path") == 0) {
            p->path = v;
        } else if (strcmp(a, "--rooms") == 0) {
            p->rooms = (int)num(a, v, 1, 100000);
        } else if (strcmp(a, "--subscribers") == 0) {
            p->subscribers = (int)num(a, v, 0, 1000000);
        } else if (strcmp(a, "--publishers") == 0) {
            p->publishers = (int)num(a, v, 1, 100000);
        } else if (strcmp(a, "--size") == 0) {
            p->size = (size_t)num(a, v, HDR_LEN, 1 << 24);
        } else if (strcmp(a, "--inflight") == 0) {
            p->inflight = (int)num(a, v, 0, 1 << 20);
        } else if (strcmp(a, "--rate") == 0) {
            p->rate = num(a, v, 0, 1e7);
        } else if (strcmp(a, "--duration") == 0) {
            p->duration = num(a, v, 0.01, 3600);
        } else if (strcmp(a, "--count") == 0) {
            p->count = (long)num(a, v, 0, 1e12);
        } else if (strcmp(a, "--gap") == 0) {
            p->gap = num(a, v, 0, 60);
        } else if (strcmp(a, "--drain") == 0) {
            p->drain = num(a, v, 0, 600);
        } else if (strcmp(a, "--stall") == 0) {
            p->stall = num(a, v, 0.1, 600);
        } else if (strcmp(a, "--connect-batch") == 0) {
            p->connect_batch = (int)num(a, v, 1, 100000);
        } else if (strcmp(a, "--connect-timeout") == 0) {
            p->connect_timeout = num(a, v, 0.1, 3600);
        } else if (strcmp(a, "--timeout") == 0) {
            p->timeout = num(a, v, 1, 86400);
        } else if (strcmp(a, "--server-pid") == 0) {
            p->server_pid = (long)num(a, v, 1, 1e9);
        } else if (strcmp(a, "--rates") == 0) {
            p->rates = v;
        } else if (strcmp(a, "--step-duration") == 0) {
            p->step_duration = num(a, v, 0.1, 600);
        } else if (strcmp(a, "--p99-bound-ms") == 0) {
            p->p99_bound_ms = num(a, v, 0.001, 1e6);
        } else if (strcmp(a, "--settle") == 0) {
            p->settle = num(a, v, 0, 60);
        } else if (strcmp(a, "--source-addrs") == 0) {
            p->source_addrs = (int)num(a, v, 0, 250);
        } else {
            usage(stderr);
            die(2, "unknown option %s", a);
        }
    }
    if (p->port == 0) {
        usage(stderr);
        die(2, "--port is required");
    }
    if (p->rate > 0) {
        p->inflight = 0; /* open loop */
    } else if (p->inflight <= 0) {
        die(2, "a closed loop needs --inflight of 1 or more (or give --rate)");
    }
    if (p->rooms > 1 && strstr(p->path, "{room}") == NULL) {
        die(2, "--path needs {room} with more than one room");
    }
}

/* ---- main ----------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    params *p = &g.p;
    parse(argc, argv, p);
    signal(SIGPIPE, SIG_IGN);

    long rss_start = vmrss_kib((long)getpid());
    g.npubs = p->rooms * p->publishers;
    g.nconns = g.npubs + p->subscribers;
    raise_fd_limit((rlim_t)g.nconns + 16);
    plan_sources(p);
    long server_fds = p->server_pid > 0 ? server_fd_limit() : -1;
    g.server_fds_low =
        server_fds > 0 && server_fds < (long)g.nconns + 8 && p->pub_port == 0 && p->nsub_ports == 0;
    if (g.server_fds_low) {
        fprintf(stderr,
                "loadgen: warning: the server (pid %ld) may open %ld descriptors, fewer than "
                "the %d connections (raise its soft limit, ulimit -Sn, as scenarios.py does "
                "for the servers it starts; past the hard one, ulimit -Hn as root)\n",
                p->server_pid, server_fds, g.nconns);
    }

    /* The whole run is bounded: alarm() ends it whatever happens. */
    double steps = 1;
    if (p->search) {
        steps = 1;
        for (const char *s = p->rates; *s; s++) {
            steps += *s == ',';
        }
    }
    double phase = p->search ? steps * (p->step_duration + p->drain + 5)
                             : p->duration + p->drain + 5 +
                                   (p->count > 0 ? (double)p->count * (p->gap + 1) : 0);
    double total = p->timeout > 0 ? p->timeout : p->connect_timeout + p->settle + phase + 10;
    signal(SIGALRM, on_alarm);
    alarm((unsigned)total + 1);

    snprintf(g.hostport, sizeof g.hostport, "%s:%d", p->host, p->port);
    if (wsfwd_config_new(NULL, &g.cfg) != WSFWD_OK ||
        wsfwd_config_set_max_queue(g.cfg, (size_t)1 << 30) != WSFWD_OK ||
        wsfwd_config_set_max_message(g.cfg, p->size + 1024) != WSFWD_OK) {
        die(3, "cannot set up libwsfwd");
    }
    if (p->tls && setup_tls() != 0) {
        die(3, "cannot set up TLS");
    }
    if (p->deflate && setup_deflate() != 0) {
        die(3, "cannot set up permessage-deflate");
    }
    wsfwd_config_on_open(g.cfg, on_open);
    wsfwd_config_on_message(g.cfg, on_message);
    wsfwd_config_on_close(g.cfg, on_close);
    wsfwd_config_on_output(g.cfg, on_output);

    g.ep = epoll_create1(EPOLL_CLOEXEC);
    g.rt_offset = realtime_offset();
    g.conns = calloc((size_t)g.nconns, sizeof *g.conns);
    g.pubs = calloc((size_t)g.npubs, sizeof *g.pubs);
    g.room_members = calloc((size_t)p->rooms, sizeof *g.room_members);
    g.payload = malloc(p->size);
    if (g.ep < 0 || !g.conns || !g.pubs || !g.room_members || !g.payload) {
        die(3, "out of memory");
    }
    if (p->json) {
        fill_json(g.payload + HDR_LEN, p->size - HDR_LEN);
    } else {
        for (size_t i = HDR_LEN; i < p->size; i++) {
            g.payload[i] = (uint8_t)(i * 31u);
        }
    }
    /* Per receiver and publisher of its room: next, uniq and gaps, in one block for all. */
    uint64_t *seqs = calloc((size_t)g.nconns * (size_t)p->publishers * 3, sizeof *seqs);
    if (seqs == NULL) {
        die(3, "out of memory");
    }
    /* Publishers first (room r, slot s: index r * publishers + s), then subscribers. */
    for (int j = 0; j < g.nconns; j++) {
        lconn *c = &g.conns[j];
        c->id = (uint32_t)j;
        c->fd = -1;
        if (j < g.npubs) {
            c->room = (uint32_t)(j / p->publishers);
            c->pub = j;
            publisher *pb = &g.pubs[j];
            pb->c = c;
            pb->room = c->room;
            pb->slot = (uint32_t)(j % p->publishers);
            if (p->inflight > 0) {
                pb->remaining = calloc((size_t)p->inflight, sizeof *pb->remaining);
                pb->sent_ts = calloc((size_t)p->inflight, sizeof *pb->sent_ts);
                if (!pb->remaining || !pb->sent_ts) {
                    die(3, "out of memory");
                }
            }
        } else {
            c->room = (uint32_t)((j - g.npubs) % p->rooms);
            c->pub = -1;
        }
        g.room_members[c->room]++;
        c->next = seqs + (size_t)j * (size_t)p->publishers * 3;
        c->uniq = c->next + p->publishers;
        c->gaps = c->uniq + p->publishers;
    }
    for (int r = 0; r < p->rooms; r++) {
        if (g.room_members[r] < 2) {
            die(2, "room %d would have %d member(s): nobody to deliver to", r, g.room_members[r]);
        }
    }

    result res = {.rss_before = -1, .rss_after = -1};
    uint64_t ticks;
    if (p->server_pid > 0 && !server_usage(&ticks, &res.rss_before)) {
        die(3, "cannot read /proc/%ld (--server-pid)", p->server_pid);
    }
    uint64_t t0 = now_ns();
    connect_all();
    double setup_s = (double)(now_ns() - t0) / 1e9;
    if (p->server_pid > 0) {
        uint64_t settle_until = now_ns() + (uint64_t)(p->settle * 1e9);
        while (now_ns() < settle_until && g.fatal[0] == '\0') {
            turn(20);
        }
        server_usage(&ticks, &res.rss_after);
    }
    long rss_open = vmrss_kib((long)getpid());
    double own_per_conn =
        rss_open > 0 && rss_start > 0 ? (double)(rss_open - rss_start) / g.nconns : -1;
    if (!p->quiet) {
        fprintf(stderr,
                "loadgen: %d connections open in %.2f s (%.0f/s)%s; loadgen RSS %ld KiB, %.3f "
                "KiB per connection\n",
                g.nconns, setup_s, setup_s > 0 ? g.nconns / setup_s : 0.0,
                p->source_addrs > 0 ? " over several source addresses" : "", rss_open,
                own_per_conn);
    }
    long hz = sysconf(_SC_CLK_TCK);

    char extra[4096];
    int rc = 0;
    if (!p->search) {
        reset_counters();
        uint64_t tk0 = 0, tk1 = 0;
        long rss;
        res.have_cpu = server_usage(&tk0, &rss);
        res.rate = p->rate;
        res.seconds = run_phase(p->rate, p->duration);
        if (res.have_cpu) {
            res.have_cpu = server_usage(&tk1, &rss);
            res.server_cpu = (double)(tk1 - tk0) / (double)hz;
        }
        for (int j = 0; j < g.npubs; j++) {
            res.sent += g.pubs[j].sent;
        }
        g.lost = count_lost();
        int off = snprintf(extra, sizeof extra,
                           "\"setup_s\":%.3f,\"connections_per_s\":%.1f,\"source_addrs\":%d,"
                           "\"server_fd_limit\":%ld,\"loadgen_rss_kib\":%ld,"
                           "\"loadgen_rss_per_conn_kib\":%.4f",
                           setup_s, setup_s > 0 ? g.nconns / setup_s : 0.0, p->source_addrs,
                           server_fds, rss_open, own_per_conn);
        if (p->count > 0 && g.ndone > 0) {
            /* Each message to every receiver, exactly (S4: one broadcast to all), and the
               median of those times. */
            uint64_t sorted[64];
            memcpy(sorted, g.done_ns, sizeof(uint64_t) * (size_t)g.ndone);
            for (int a = 1; a < g.ndone; a++) {
                for (int b = a; b > 0 && sorted[b - 1] > sorted[b]; b--) {
                    uint64_t t = sorted[b];
                    sorted[b] = sorted[b - 1];
                    sorted[b - 1] = t;
                }
            }
            double med = g.ndone % 2
                             ? (double)sorted[g.ndone / 2]
                             : ((double)sorted[g.ndone / 2 - 1] + (double)sorted[g.ndone / 2]) / 2;
            off += snprintf(extra + off, sizeof extra - (size_t)off,
                            ",\"broadcast_median_ms\":%.3f,\"broadcast_ms\":[", med / 1e6);
            for (int a = 0; a < g.ndone; a++) {
                off += snprintf(extra + off, sizeof extra - (size_t)off, "%s%.3f", a ? "," : "",
                                (double)g.done_ns[a] / 1e6);
            }
            snprintf(extra + off, sizeof extra - (size_t)off, "]");
            if (!p->quiet) {
                fprintf(stderr, "  %-22s median %.2f ms:", "message to everyone", med / 1e6);
                for (int a = 0; a < g.ndone; a++) {
                    fprintf(stderr, " %.2f", (double)g.done_ns[a] / 1e6);
                }
                fprintf(stderr, "\n");
            }
        }
        report(&res, extra, true);
        rc = g.fatal[0] ? 3 : errors_zero() ? 0 : 1;
    } else {
        double best = 0, failed_at = 0;
        char why[512] = "";
        char *list = strdup(p->rates);
        uint64_t lost_so_far = 0;
        for (char *tok = strtok(list, ","); tok != NULL; tok = strtok(NULL, ",")) {
            double rate = num("--rates", tok, 0.001, 1e7);
            reset_counters();
            uint64_t sent0 = 0, tk0 = 0, tk1 = 0;
            long rss;
            for (int j = 0; j < g.npubs; j++) {
                sent0 += g.pubs[j].sent;
            }
            res.have_cpu = server_usage(&tk0, &rss);
            res.rate = rate;
            res.seconds = run_phase(rate, p->step_duration);
            if (res.have_cpu) {
                res.have_cpu = server_usage(&tk1, &rss);
                res.server_cpu = (double)(tk1 - tk0) / (double)hz;
            }
            res.sent = 0;
            for (int j = 0; j < g.npubs; j++) {
                res.sent += g.pubs[j].sent;
            }
            res.sent -= sent0;
            uint64_t lost_total = count_lost();
            g.lost = lost_total - lost_so_far;
            lost_so_far = lost_total;
            double p99_ms = us(hq(&g.lat, 0.99)) / 1000;
            snprintf(extra, sizeof extra, "\"search_step\":true,\"p99_bound_ms\":%.3f",
                     p->p99_bound_ms);
            report(&res, extra, false);
            if (!errors_zero() || g.fatal[0]) {
                snprintf(why, sizeof why, "errors at %g/s%s%s", rate, g.fatal[0] ? ": " : "",
                         g.fatal);
                failed_at = rate;
                break;
            }
            if (p99_ms > p->p99_bound_ms) {
                snprintf(why, sizeof why, "p99 %.1f ms > %.1f ms at %g/s", p99_ms, p->p99_bound_ms,
                         rate);
                failed_at = rate;
                break;
            }
            best = rate;
        }
        free(list);
        if (failed_at == 0) {
            snprintf(why, sizeof why, "every rate in --rates passed");
        }
        printf("{\"scenario\":\"%s\",\"final\":true,\"ok\":true,\"search\":true,"
               "\"max_sustained_rate\":%g,\"failed_at\":%g,\"why\":\"%s\",\"rooms\":%d,"
               "\"publishers_per_room\":%d,\"size\":%zu,\"step_duration\":%.3f,"
               "\"p99_bound_ms\":%.3f,\"setup_s\":%.3f}\n",
               p->scenario, best, failed_at, why, p->rooms, p->publishers, p->size,
               p->step_duration, p->p99_bound_ms, setup_s);
        fflush(stdout);
        if (!p->quiet) {
            fprintf(stderr, "loadgen %s search: highest rate sustained %g msg/s per client (%s)\n",
                    p->scenario, best, why);
        }
        rc = best > 0 ? 0 : 1;
    }
    /* Reset rather than close politely: no TIME_WAIT left behind by thousands of sockets. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    for (int j = 0; j < g.nconns; j++) {
        if (g.conns[j].fd >= 0) {
            setsockopt(g.conns[j].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(g.conns[j].fd);
        }
    }
    return rc;
}
