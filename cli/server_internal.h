/* State shared by the server's loop (server.c) and its routing (routes.c). */
#ifndef WSFWD_CLI_SERVER_INTERNAL_H
#define WSFWD_CLI_SERVER_INTERNAL_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "auth.h"
#include "options.h"
#include "quota.h"
#include "server.h"
#include "wsfwd.h"

/*
 * One TCP connection. Kept small (80 bytes): with the library's connection, an idle client costs
 * the server well under half a kilobyte. Ids, addresses and room names for the logs are
 * formatted only when a line is written (client_label).
 */
typedef struct client {
    int fd;                   /* -1 once closed (the struct waits for the end of the turn) */
    uint32_t slot;            /* index in server.pfds and server.clients */
    wsfwd_conn *conn;
    struct client *next_dirty;
    struct client *next_dead; /* closed, freed at the end of the loop turn */
    uint64_t next_tick;       /* when its connection needs wsfwd_conn_tick (UINT64_MAX: never) */
    rate_bucket bucket;       /* messages left under --rate-limit */
    uint8_t addr[16];         /* the peer: IPv4 in the first 4 bytes, or IPv6 */
    uint16_t port;
    bool ipv6;
    bool dirty;               /* on the dirty list: flush at the end of the loop turn */
    bool shut;                /* FIN sent: reading only to drain */
    bool websocket;           /* accepted as a WebSocket (counts toward --max-connections) */
    bool echo;
    bool per_address;         /* counted in server.per_address */
    bool paused;              /* not read: paced by its room, or its echoes pile up */
    bool congested;           /* counted in stats.congested_now */
} client;

/* HTTP statuses counted per cause in /stats. */
enum { REFUSED_400, REFUSED_401, REFUSED_403, REFUSED_404, REFUSED_405, REFUSED_426, REFUSED_431,
       REFUSED_503, REFUSED_OTHER, REFUSED_KINDS };

typedef struct server_stats {
    uint64_t accepted;
    uint64_t messages_in;
    uint64_t bytes_in;
    uint64_t echoed;
    uint64_t echoed_bytes;
    uint64_t bytes_read;
    uint64_t bytes_written;
    uint64_t handshake_timeouts;
    uint64_t idle_timeouts;
    uint64_t protocol_errors;
    uint64_t echo_slow_closes;
    uint64_t echo_slow_drops;
    uint64_t paused_now;    /* clients not read now (flow control) */
    uint64_t pauses;        /* times a client stopped being read */
    uint64_t congested_now; /* open clients past the high mark, not yet cut */
    uint64_t cut_by_time;   /* slow readers cut by --slow-timeout (closed, or dropped from) */
    uint64_t cut_by_bytes;  /* slow readers cut by --max-queue */
    uint64_t refused_fd_limit;
    uint64_t refused[REFUSED_KINDS];
    uint64_t refused_auth[AUTH_CAUSES]; /* the 401 and 403 of room tokens, by cause */
    uint64_t refused_per_address;       /* 503: --max-connections-per-address */
    uint64_t rate_limited;              /* closed with 1008: --rate-limit */
} server_stats;

struct server {
    const options *opts;
    wsfwd_config *cfg;
    wsfwd_hub *rooms;       /* /ws/<room> */
    wsfwd_hub *global;      /* /ws: one kept pool, apart so no room name can reach it */
    wsfwd_pool *global_pool;
    auth_keys keys;         /* --auth-secret-file (n 0: no tokens needed) */
    rate_rule rate;         /* --rate-limit (per_second 0: off) */
    addr_table per_address; /* --max-connections-per-address */
    struct pollfd *pfds;    /* [0] wake-up pipe, [1, nfixed) listeners, then clients */
    client **clients;       /* parallel to pfds */
    size_t n;
    size_t cap;
    size_t nfixed;
    size_t nclients;        /* TCP connections */
    size_t nwebsockets;     /* accepted WebSocket connections */
    client *dirty;
    client *dead;
    int wake[2];
    int reserve_fd;         /* spare descriptor, given up to shed a connection at EMFILE */
    uint64_t now;           /* monotonic milliseconds, read once per loop turn */
    uint64_t started;
    uint64_t last_fd_warning;
    bool stopping;
    uint64_t stop_deadline;
    server_stats stats;
    size_t unflushed;       /* bytes read since the last flush_dirty */
    size_t flush_budget;    /* flush_dirty once unflushed reaches this, before the turn's end */
    bool ticking;           /* inside a connection's tick: a slow close there is by time */
    uint64_t next_timer;    /* the earliest next_tick of the clients, as far as known */
    struct cluster *cluster; /* --redis (cluster.c), else NULL */
    uint8_t rbuf[65536];
};

/* Text form of an address, "1.2.3.4:5" or "[::1]:5". */
void format_peer(const struct sockaddr_storage *ss, char *out, size_t cap);

/* Remember the peer's address compactly. */
void client_set_peer(client *c, const struct sockaddr_storage *ss);

/* "conn=<id> peer=<address> room=<name>" for a log line about c (room name escaped). */
const char *client_label(const server *s, const client *c, char *buf, size_t cap);

#define CLIENT_LABEL_MAX 200

/* Copy untrusted bytes for a log line: printable ASCII as is, the rest as \xNN; cut short. */
void log_escape(const char *in, size_t len, char *out, size_t cap);

/* The library's on_request: routing, limits, Origin, joining rooms. */
int routes_on_request(wsfwd_conn *conn, const wsfwd_request *req, void *ud);

void routes_count_refusal(server *s, int status);

/* The library's on_message: counters, --rate-limit, then the echo or the broadcast. */
int routes_on_message(wsfwd_conn *conn, wsfwd_opcode op, const uint8_t *data, size_t len,
                      void *ud);

/* A WebSocket client is gone: give back what it counted toward the limits. */
void routes_forget(server *s, client *c);

/* Re-read the --auth-secret-file keys (SIGHUP); on error the keys in use stay. */
void routes_reload_keys(server *s);

#endif
