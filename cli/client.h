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
 * Kept small (56 bytes on LP64, checked in client.c): with the library's connection (136), its
 * loop slot and its places in the server's and its room's arrays, an idle client costs the
 * server about a quarter of a KiB. Ids, addresses and room names for the logs are formatted
 * only when a line is written.
 */
struct tls_conn;

typedef struct client {
    int fd;         /* -1 once closed (the struct waits for the end of the turn) */
    loop_handle ev; /* its registration in the loop */
    uint32_t index; /* in the server's array of clients */
    uint16_t port;
    bool ipv6 : 1;
    bool dirty : 1;     /* on the dirty list: flush at the end of the loop turn */
    bool shut : 1;      /* FIN sent: reading only to drain */
    bool websocket : 1; /* accepted as a WebSocket (counts toward --max-connections) */
    bool echo : 1;
    bool per_address : 1; /* counted in the routes' per-address table */
    bool paused : 1;      /* not read: paced by its room, or its echoes pile up */
    bool congested : 1;   /* counted in the congested_now counter */
    bool more : 1;        /* listed to be read again without poll() (server.c) */
    bool forwarded : 1;   /* addr is the client's from X-Forwarded-For (port: the proxy's) */
    bool on_tls : 1;      /* of a --listen-tls listener: allocated as a tls_client */
    wsfwd_conn *conn;
    uint64_t next_tick; /* when its connection needs wsfwd_conn_tick (UINT64_MAX: never) */
    rate_bucket bucket; /* messages left under --rate-limit */
    uint8_t addr[16];   /* the peer: IPv4 in the first 4 bytes, or IPv6 */
} client;

/* A client of a --listen-tls listener, with its TLS state after it: plain clients do not pay
   for the pointer. */
typedef struct tls_client {
    client base;
    struct tls_conn *tls; /* tls.c */
} tls_client;

/* c's TLS state, NULL for a plain client (or a TLS one whose state is gone). */
static inline struct tls_conn *client_tls(const client *c)
{
    return c->on_tls ? ((const tls_client *)(const void *)c)->tls : NULL;
}

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
