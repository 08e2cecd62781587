/*
 * Rooms across several wsfwd nodes through Redis pub/sub (--redis). The server calls these
 * hooks; with no --redis cluster_open gives NULL and every hook does nothing with it, and in a
 * build without hiredis cluster_open refuses --redis.
 *
 * Each room with local members has a channel (cluster_proto.h), subscribed when its first
 * local member joins and unsubscribed when its last leaves. With the link up, a member's
 * message is published and delivered to the local members only when it comes back on the
 * subscription (so every node delivers a room's messages in Redis's one order); with the
 * link down it is broadcast locally at once. The Redis sockets are registered with the loop
 * through hiredis's event hooks, and the cluster's deadlines are one loop timer.
 */
#ifndef WSFWD_CLI_CLUSTER_H
#define WSFWD_CLI_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jsonw.h"
#include "loop.h"
#include "options.h"
#include "wsfwd.h"

typedef struct cluster cluster;

/* The server's rooms: the hub of /ws/<room>, and /ws's hub and its one pool. */
typedef struct cluster_rooms {
    wsfwd_hub *rooms;
    wsfwd_hub *global;
    wsfwd_pool *global_pool;
} cluster_rooms;

/* Set up *out when --redis was given (else *out is NULL); the first connection attempt is
   made from the loop. Returns 0, or -1 after printing why. */
int cluster_open(cluster **out, loop *lp, const options *o, const cluster_rooms *rooms);
void cluster_free(cluster *cl);

/* A pool member's message (on_message): forward it through the cluster. Returns true if it
   was handled (delivered locally now, or on its way through Redis); false without --redis,
   when the caller broadcasts it itself. */
bool cluster_on_message(cluster *cl, wsfwd_conn *conn, wsfwd_opcode op, const uint8_t *data,
                        size_t len);

/* From the hubs' on_join and on_leave: count local members per room. */
void cluster_on_join(cluster *cl, wsfwd_pool *pool, wsfwd_conn *conn);
void cluster_on_leave(cluster *cl, wsfwd_pool *pool, wsfwd_conn *conn);

/* Write the member "cluster":{...} into the open object; nothing without a cluster. */
void cluster_stats_write(const cluster *cl, jsonw *w);

/* The cluster's figures, read-only, for /metrics (the same counters as /stats' object). */
typedef enum cluster_link {
    CLUSTER_LINK_DOWN,
    CLUSTER_LINK_CONNECTING,
    CLUSTER_LINK_UP
} cluster_link;

typedef struct cluster_figures {
    cluster_link link;
    uint64_t rooms; /* rooms with local members */
    uint64_t subscribed_rooms;
    uint64_t published;
    uint64_t received;
    uint64_t local_only;       /* local messages sent while the link was down */
    uint64_t dropped_inflight; /* local messages over the in-flight cap: delivered locally */
    uint64_t inflight_bytes;
    uint64_t max_inflight_bytes;
    uint64_t malformed;
    uint64_t publish_errors;
    uint64_t link_losses;
    uint64_t reconnects;
} cluster_figures;

/* Fill *out and return true; false (and *out untouched) without a cluster. */
bool cluster_figures_get(const cluster *cl, cluster_figures *out);

#endif
