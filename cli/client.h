/*
 * One TCP connection of the server, and what the logs say about it: the peer's address kept
 * compactly, formatted only when a line is written (client_label).
 */
#ifndef WSFWD_CLI_CLIENT_H
#define WSFWD_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "loop.h"
#include "quota.h"
#include "wsfwd.h"

/*
 * Kept small (about 100 bytes): with the library's connection, an idle client costs the server well
 * under half a kilobyte. Ids, addresses and room names for the logs are formatted only when a
 * line is written.
 */
struct tls_conn;

typedef struct client {
    int fd;               /* -1 once closed (the struct waits for the end of the turn) */
    struct tls_conn *tls; /* on a --listen-tls listener (tls.c), else NULL */
    loop_handle ev;       /* its registration in the loop */
    uint32_t index;       /* in the server's list of clients */
    wsfwd_conn *conn;
    struct client *next_dirty;
    struct client *next_dead; /* closed, freed at the end of the loop turn */
    struct client *next_more; /* input poll() cannot see: inside OpenSSL, or held (server.c) */
    uint64_t next_tick;       /* when its connection needs wsfwd_conn_tick (UINT64_MAX: never) */
    rate_bucket bucket;       /* messages left under --rate-limit */
    uint8_t addr[16];         /* the peer: IPv4 in the first 4 bytes, or IPv6 */
    uint16_t port;
    bool ipv6;
    bool dirty;     /* on the dirty list: flush at the end of the loop turn */
    bool shut;      /* FIN sent: reading only to drain */
    bool websocket; /* accepted as a WebSocket (counts toward --max-connections) */
    bool echo;
    bool per_address; /* counted in the routes' per-address table */
    bool paused;      /* not read: paced by its room, or its echoes pile up */
    bool congested;   /* counted in the congested_now counter */
    bool more;        /* on the server's list of clients to read again without poll() */
    bool forwarded;   /* addr is the client's from X-Forwarded-For (port: the proxy's) */
} client;

/* Text form of an address, "1.2.3.4:5" or "[::1]:5". */
void format_peer(const struct sockaddr_storage *ss, char *out, size_t cap);

/* Remember the peer's address compactly. */
void client_set_peer(client *c, const struct sockaddr_storage *ss);

/* The peer's address and port as text, "1.2.3.4:5" or "[::1]:5"; without the port once
   client_set_forwarded named the client. */
const char *client_peer(const client *c, char *buf, size_t cap);

/* --trust-proxy: the client behind the proxy is addr (16-byte form of quota.h), not the TCP
   peer. Its port stays the proxy's, and is no longer shown. */
void client_set_forwarded(client *c, const uint8_t addr[16]);

/* "conn=<id> peer=<address> room=<name>" for a log line about c (room name escaped; a member
   of the hub global shows as "(global)"); "peer=<address> via=proxy" for a forwarded client. */
const char *client_label(const client *c, const wsfwd_hub *global, char *buf, size_t cap);

#define CLIENT_LABEL_MAX 200

#endif
