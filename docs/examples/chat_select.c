/*
 * chat_select: libwsfwd in a socket loop of its own, built on select().
 *
 * Every WebSocket client, whatever path it asks for, joins one pool, and on_message broadcasts
 * each message it sends to every other client. A plain HTTP request gets one line of
 * text. The library never touches a socket: this file reads, feeds, writes and closes.
 *
 *   usage: chat_select [PORT]    (default 8080; 0 picks a free port)
 *
 * It listens on 127.0.0.1 and prints the port it got on stdout. The library keeps the
 * deadlines (handshake, idle ping and pong, close): the loop passes it the time and sleeps
 * until the earliest. Kept short on purpose: no graceful shutdown, at most MAX_CLIENTS
 * clients (see cli/server.c for those).
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <wsfwd.h>

/* wsfwd_iovec has the layout of struct iovec, so its array goes to writev() as is. */
_Static_assert(sizeof(wsfwd_iovec) == sizeof(struct iovec), "wsfwd_iovec is an iovec");

#define MAX_CLIENTS 64

typedef struct client {
    int fd; /* -1: free slot */
    wsfwd_conn *conn;
} client;

static client clients[MAX_CLIENTS];
static wsfwd_pool *chat; /* the one pool everyone joins */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A complete HTTP request arrived on conn: decide what to answer. */
static int on_request(wsfwd_conn *conn, const wsfwd_request *req, void *ud)
{
    (void)ud;
    if (!wsfwd_request_is_upgrade(req)) {
        static const char text[] = "chat_select: connect a WebSocket client to any path\n";
        return wsfwd_conn_respond(conn, 200, "text/plain", text, sizeof text - 1) == WSFWD_OK ? 0
                                                                                              : -1;
    }
    if (wsfwd_request_check(req) != WSFWD_OK) {
        return 0; /* decide nothing: the library refuses with the status the error warrants */
    }
    return wsfwd_conn_accept(conn, NULL) == WSFWD_OK ? 0 : -1;
}

/* Open: join the room now, so nobody sees a member whose handshake then fails. */
static int on_open(wsfwd_conn *conn, void *ud)
{
    (void)ud;
    return wsfwd_pool_join(chat, conn) == WSFWD_OK ? 0 : -1; /* -1: fails it with 1011 */
}

/* A whole message: to everyone in the pool but its sender (a failure fails the sender). */
static int on_message(wsfwd_conn *conn, wsfwd_opcode op, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    int rc = wsfwd_pool_broadcast(wsfwd_conn_pool(conn), op, data, len, conn, NULL);
    return rc == WSFWD_OK ? 0 : -1;
}

static void on_close(wsfwd_conn *conn, uint16_t code, const char *reason, size_t reason_len,
                     int err, void *ud)
{
    (void)reason;
    (void)reason_len;
    (void)ud;
    char id[WSFWD_ID_LEN + 1];
    wsfwd_conn_id(conn, id);
    fprintf(stderr, "%s closed with %u (%s)\n", id, (unsigned)code,
            err == WSFWD_OK ? "by the peer" : wsfwd_strerror(err));
}

static void drop(client *c)
{
    close(c->fd);
    wsfwd_conn_free(c->conn); /* also takes it out of the pool */
    c->fd = -1;
    c->conn = NULL;
}

/* Write what the connection has queued, as far as the socket takes it now. */
static void flush(client *c)
{
    while (wsfwd_conn_pending(c->conn) > 0) {
        wsfwd_iovec iov[16];
        size_t n = wsfwd_conn_output(c->conn, iov, 16);
        ssize_t w = writev(c->fd, (const struct iovec *)(const void *)iov, (int)n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                drop(c); /* the peer is gone */
            }
            return; /* EAGAIN: select() says when the socket takes more */
        }
        wsfwd_conn_consume(c->conn, (size_t)w);
    }
    /* Closed and fully written (a refusal, a page, a closing handshake): hang up. */
    if (wsfwd_conn_is_done(c->conn)) {
        drop(c);
    }
}

/* After the turn's I/O: the library's deadlines. Returns when to tick again. */
static uint64_t tick(client *c, uint64_t now)
{
    uint64_t next;
    int rc = wsfwd_conn_tick(c->conn, now, &next);
    if (rc == WSFWD_ERR_HANDSHAKE_TIMEOUT || rc == WSFWD_ERR_CLOSE_TIMEOUT) {
        drop(c); /* a pong timeout queued a close frame (1001): flush() writes it first */
    }
    return next;
}

static void readable(client *c)
{
    uint8_t buf[16384];
    ssize_t r = read(c->fd, buf, sizeof buf);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
    }
    if (r <= 0) {
        drop(c); /* closed without a closing handshake, or an error */
        return;
    }
    /* Any split of the stream gives the same events. An error has already queued the close
       frame or HTTP error response; flush() writes it and then hangs up. */
    (void)wsfwd_conn_feed(c->conn, buf, (size_t)r);
}

static void accept_one(int lfd, wsfwd_config *cfg)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
        return;
    }
    client *c = NULL;
    for (size_t i = 0; i < MAX_CLIENTS && fd < FD_SETSIZE; i++) { /* select() limit */
        if (clients[i].fd < 0) {
            c = &clients[i];
            break;
        }
    }
    if (c == NULL || fcntl(fd, F_SETFL, O_NONBLOCK) != 0 ||
        wsfwd_conn_new(cfg, WSFWD_ROLE_SERVER, NULL, &c->conn) != WSFWD_OK) {
        close(fd); /* full: a real server would answer 503 */
        return;
    }
    c->fd = fd;
}

static int listen_on(unsigned port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 64) != 0) {
        perror("chat_select: listen");
        return -1;
    }
    socklen_t len = sizeof addr;
    getsockname(fd, (struct sockaddr *)&addr, &len);
    printf("%u\n", (unsigned)ntohs(addr.sin_port));
    fflush(stdout);
    return fd;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    unsigned long port = argc > 1 ? strtoul(argv[1], &end, 10) : 8080;
    if (argc > 2 || (argc > 1 && (*end != '\0' || port > 65535))) {
        fprintf(stderr, "usage: chat_select [PORT]   (0 picks a free port)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a write to a vanished peer must not kill us */

    wsfwd_config *cfg;
    wsfwd_hub *hub;
    if (wsfwd_config_new(NULL, &cfg) != WSFWD_OK || wsfwd_hub_new(cfg, &hub) != WSFWD_OK ||
        wsfwd_hub_acquire(hub, "chat", 4, &chat) != WSFWD_OK) {
        fprintf(stderr, "chat_select: cannot set up libwsfwd\n");
        return 1;
    }
    wsfwd_config_on_request(cfg, on_request);
    wsfwd_config_on_open(cfg, on_open);
    wsfwd_config_on_message(cfg, on_message);
    wsfwd_config_on_close(cfg, on_close);
    wsfwd_config_set_handshake_timeout(cfg, 10000); /* ms; all four are off by default */
    wsfwd_config_set_idle_timeout(cfg, 30000);
    wsfwd_config_set_pong_timeout(cfg, 10000);
    wsfwd_config_set_close_timeout(cfg, 5000);

    int lfd = listen_on((unsigned)port);
    if (lfd < 0) {
        return 1;
    }
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        clients[i].fd = -1;
    }

    uint64_t next = UINT64_MAX; /* the earliest deadline */
    for (;;) {
        fd_set rd, wr;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_SET(lfd, &rd);
        int maxfd = lfd;
        for (size_t i = 0; i < MAX_CLIENTS; i++) {
            client *c = &clients[i];
            if (c->fd < 0) {
                continue;
            }
            FD_SET(c->fd, &rd);
            if (wsfwd_conn_pending(c->conn) > 0) {
                FD_SET(c->fd, &wr); /* only where output waits */
            }
            maxfd = c->fd > maxfd ? c->fd : maxfd;
        }
        uint64_t now = now_ms(), wait = next > now ? next - now : 0;
        struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000 * 1000)};
        if (select(maxfd + 1, &rd, &wr, NULL, next == UINT64_MAX ? NULL : &tv) < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("chat_select: select");
            return 1;
        }
        if (FD_ISSET(lfd, &rd)) {
            accept_one(lfd, cfg);
        }
        for (size_t i = 0; i < MAX_CLIENTS; i++) {
            if (clients[i].fd >= 0 && FD_ISSET(clients[i].fd, &rd)) {
                readable(&clients[i]);
            }
        }
        /* Tick every client (what was fed counts as of now), then write: one client's
           message was queued on every other, and most sockets take the bytes at once. */
        now = now_ms();
        next = UINT64_MAX;
        for (size_t i = 0; i < MAX_CLIENTS; i++) {
            uint64_t t = clients[i].fd >= 0 ? tick(&clients[i], now) : UINT64_MAX;
            if (clients[i].fd >= 0) {
                flush(&clients[i]);
            }
            next = clients[i].fd >= 0 && t < next ? t : next;
        }
    }
}
