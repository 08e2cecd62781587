/*
 * Rooms across several wsfwd nodes through Redis pub/sub (--redis). The server calls these
 * hooks; with no --redis every one of them does nothing (s->cluster is NULL), and in a build
 * without hiredis cluster_open refuses --redis.
 *
 * Each room with local members has a channel (cluster_proto.h), subscribed when its first
 * local member joins and unsubscribed when its last leaves. With the link up, a member's
 * message is published and delivered to the local members only when it comes back on the
 * subscription (so every node delivers a room's messages in Redis's one order); with the
 * link down it is broadcast locally at once. The Redis sockets live in the server's poll()
 * array, after the clients, through hiredis's event hooks.
 */
#ifndef WSFWD_CLI_CLUSTER_H
#define WSFWD_CLI_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include "wsfwd.h"

typedef struct server server;
typedef struct cluster cluster;

/* Set up s->cluster when --redis was given (the first connection attempt is made by the
   loop). Returns 0, or -1 after printing why. */
int cluster_open(server *s);
void cluster_free(server *s);

/* Before poll(): put the Redis sockets after s->n and lower *timeout to the next Redis timer.
   Returns the number of pollfds to poll. */
size_t cluster_before_poll(server *s, int *timeout);

/* After poll() (s->now updated): handle the Redis sockets and timers. Must run before the
   clients are handled (their slots may then be reused). */
void cluster_after_poll(server *s);

/* A pool member's message (on_message): forward it through the cluster. Returns true if it
   was handled (delivered locally now, or on its way through Redis); false without --redis,
   when the caller broadcasts it itself. */
bool cluster_on_message(server *s, wsfwd_conn *conn, wsfwd_opcode op, const uint8_t *data,
                        size_t len);

/* Hub callbacks: count local members per room. */
void cluster_on_join(wsfwd_pool *pool, wsfwd_conn *conn, void *ud);
void cluster_on_leave(server *s, wsfwd_pool *pool, wsfwd_conn *conn);

/* Append ,"cluster":{...} to a JSON object being written into out (cap bytes). Returns the
   bytes written, or 0 (nothing written) without a cluster or if it does not fit. */
size_t cluster_stats_json(const server *s, char *out, size_t cap);

#endif
