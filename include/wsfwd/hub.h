/*
 * libwsfwd: the hub and its pools (rooms): join, leave, broadcast, flow control.
 * Part of <wsfwd.h>; usable on its own.
 */
#ifndef WSFWD_HUB_H
#define WSFWD_HUB_H

#include "conn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Hub and pools: named groups of connections with one order of messages each                 */
/* ------------------------------------------------------------------------------------------ */

/*
 * A hub owns named pools (rooms). A connection is in at most one pool. A broadcast encodes its
 * frame once and queues a reference to it on every recipient, so every member sees a pool's
 * messages in one order, and none waits for another: a member whose queue passes the limit
 * gets the slow-reader policy. Pools hold server-role connections only.
 *
 * Callbacks (on_join, on_leave, the connections' own, and the functions given to the foreach
 * calls) may join, leave, close or free any connection, broadcast, and release any pool, also
 * in the middle of a broadcast or a foreach; the one thing they must not do is free the hub.
 * - A broadcast to a pool made while that pool is broadcasting (from a callback the running
 *   broadcast caused) is queued and sent when the running one ends, in the order asked, so
 *   every member sees the same order. Broadcasts to other pools are sent at once.
 * - The pool a callback is about (on_join, on_leave, a foreach visit) stays alive until the
 *   callback returns, even if it empties meanwhile; so does a connection handed to one.
 * - A pool that empties during wsfwd_hub_foreach is freed when the walk ends; until then a
 *   stale pointer to it is refused with WSFWD_ERR_POOL_GONE. Outside a walk, a pointer to a
 *   pool is valid until the pool empties (or, if kept, until released and empty).
 */

typedef enum wsfwd_leave_reason {
    WSFWD_LEAVE_REQUESTED = 0, /* wsfwd_conn_leave(), or a join to another pool */
    WSFWD_LEAVE_CLOSED = 1,    /* the connection stopped being open (close or failure) */
    WSFWD_LEAVE_SLOW = 2,      /* closed by the slow-reader policy */
    WSFWD_LEAVE_FREED = 3      /* the connection was freed */
} wsfwd_leave_reason;

typedef void (*wsfwd_on_join_fn)(wsfwd_pool *pool, wsfwd_conn *conn, void *ud);
typedef void (*wsfwd_on_leave_fn)(wsfwd_pool *pool, wsfwd_conn *conn, wsfwd_leave_reason reason,
                                  void *ud);

/*
 * Counters. Fields are only ever appended (see "ABI rules" in wsfwd/base.h), so the functions
 * that fill this struct take its size: pass sizeof *out, and a library newer than your headers
 * fills only the fields you know of.
 */
typedef struct wsfwd_stats {
    uint64_t pools;        /* hub: pools now (1 for a pool's own stats) */
    uint64_t members;      /* connections in the pool(s) now */
    uint64_t messages_in;  /* messages broadcast into the pool(s) */
    uint64_t bytes_in;     /* their payload bytes */
    uint64_t messages_out; /* deliveries: one per recipient per message */
    uint64_t bytes_out;    /* payload bytes delivered */
    uint64_t slow_closes;  /* members closed by the slow-reader policy */
    uint64_t slow_drops;   /* messages skipped for a slow member (drop policy) */
    /* permessage-deflate (wsfwd/deflate.h); bytes_in and bytes_out count inflated payloads. */
    uint64_t deflate_calls;      /* codec compress calls: at most one per broadcast and window */
    uint64_t deflate_bytes_in;   /* payload bytes given to them */
    uint64_t deflate_bytes_out;  /* what they made (the input's size when it did not shrink) */
    uint64_t deflated_out;       /* deliveries sent compressed (counted in messages_out too) */
    uint64_t deflated_bytes_out; /* their compressed payload bytes (bytes_out: inflated) */
} wsfwd_stats;

/*
 * A hub using cfg (its allocator, randomness, queue limit and slow-reader policy; cfg must
 * outlive the hub). Defaults: pool names of at most 128 bytes, no cap on pools or members.
 * Errors: WSFWD_ERR_INVALID (cfg or out NULL), WSFWD_ERR_NOMEM, WSFWD_ERR_RANDOM.
 */
WSFWD_API int wsfwd_hub_new(wsfwd_config *cfg, wsfwd_hub **out);

/* Free every pool; members are taken out without callbacks (on_leave, on_flow) and stay
   valid, no longer paced by their pool. NULL is fine. */
WSFWD_API void wsfwd_hub_free(wsfwd_hub *hub);

/* Limits on names, pools and members per pool. Errors: WSFWD_ERR_INVALID (hub NULL, a name
   limit of 0, a member limit above UINT32_MAX). */
WSFWD_API int wsfwd_hub_set_max_name(wsfwd_hub *hub, size_t bytes);       /* 1 or more */
WSFWD_API int wsfwd_hub_set_max_pools(wsfwd_hub *hub, size_t pools);      /* 0: no cap */
WSFWD_API int wsfwd_hub_set_max_members(wsfwd_hub *hub, size_t per_pool); /* 0: no cap */
WSFWD_API void wsfwd_hub_set_user_data(wsfwd_hub *hub, void *user_data);  /* for on_join/leave */
WSFWD_API void wsfwd_hub_on_join(wsfwd_hub *hub, wsfwd_on_join_fn fn);
WSFWD_API void wsfwd_hub_on_leave(wsfwd_hub *hub, wsfwd_on_leave_fn fn);

/*
 * Join conn to the pool with this name, creating the pool if needed; a pool created this way
 * is freed when its last member leaves. conn leaves its current pool first (on_leave with
 * WSFWD_LEAVE_REQUESTED). Errors: WSFWD_ERR_INVALID (NULL, a client-role or freed connection),
 * WSFWD_ERR_STATE (closing or closed, or on_leave of the move closed, freed or moved it),
 * WSFWD_ERR_POOL_NAME, WSFWD_ERR_POOL_LIMIT, WSFWD_ERR_POOL_FULL, WSFWD_ERR_NOMEM.
 */
WSFWD_API int wsfwd_hub_join(wsfwd_hub *hub, wsfwd_conn *conn, const char *name, size_t len);

/*
 * The pool with this name, created if needed and kept even while empty, until
 * wsfwd_pool_release(). Errors: WSFWD_ERR_INVALID (hub or out NULL), WSFWD_ERR_POOL_NAME,
 * WSFWD_ERR_POOL_LIMIT, WSFWD_ERR_NOMEM.
 */
WSFWD_API int wsfwd_hub_acquire(wsfwd_hub *hub, const char *name, size_t len, wsfwd_pool **out);

/* The pool with this name, or NULL. */
WSFWD_API wsfwd_pool *wsfwd_hub_find(const wsfwd_hub *hub, const char *name, size_t len);

/*
 * Call fn for every pool until it returns non-zero (that value is returned). fn may do
 * anything a callback may: the pool it is given stays alive until fn returns; pools made
 * meanwhile are not visited, pools that empty meanwhile are not visited again.
 * Returns 0 after the last pool. Errors: WSFWD_ERR_INVALID (hub or fn NULL).
 */
WSFWD_API int wsfwd_hub_foreach(wsfwd_hub *hub, int (*fn)(wsfwd_pool *pool, void *ud), void *ud);

/*
 * Counters summed over every pool, past and present, into *out, whose size out_size is
 * sizeof *out: the library writes min(out_size, its own sizeof(wsfwd_stats)) bytes and no more.
 * Errors: WSFWD_ERR_INVALID (hub or out NULL, or out_size below the 64 bytes of the first
 * wsfwd_stats; nothing is written).
 */
WSFWD_API int wsfwd_hub_stats(const wsfwd_hub *hub, wsfwd_stats *out, size_t out_size);

/* Stop keeping the pool: it is freed now if empty, else when its last member leaves. */
WSFWD_API void wsfwd_pool_release(wsfwd_pool *pool);

/* Join conn to this pool (like wsfwd_hub_join; also WSFWD_ERR_POOL_GONE). */
WSFWD_API int wsfwd_pool_join(wsfwd_pool *pool, wsfwd_conn *conn);

/* Leave the current pool (on_leave with WSFWD_LEAVE_REQUESTED); nothing if in none. */
WSFWD_API void wsfwd_conn_leave(wsfwd_conn *conn);

/* The pool conn is in, or NULL. */
WSFWD_API wsfwd_pool *wsfwd_conn_pool(const wsfwd_conn *conn);

WSFWD_API wsfwd_hub *wsfwd_pool_hub(const wsfwd_pool *pool);
WSFWD_API wsfwd_str wsfwd_pool_name(const wsfwd_pool *pool); /* valid while the pool lives */
WSFWD_API size_t wsfwd_pool_size(const wsfwd_pool *pool);    /* members now */
/* The pool's own counters, filled like wsfwd_hub_stats (pools is 1). Errors: as there. */
WSFWD_API int wsfwd_pool_stats(const wsfwd_pool *pool, wsfwd_stats *out, size_t out_size);

/*
 * Call fn for every member until it returns non-zero (that value is returned). fn may leave,
 * close or free any connection; members who join meanwhile are not visited. Returns 0 after
 * the last member. Errors: WSFWD_ERR_INVALID (pool or fn NULL), WSFWD_ERR_POOL_GONE.
 */
WSFWD_API int wsfwd_pool_foreach(wsfwd_pool *pool, int (*fn)(wsfwd_conn *conn, void *ud), void *ud);

/*
 * Send a message (TEXT or BINARY) to every open member but except (NULL: to all). The frame is
 * encoded once and shared. *delivered (may be NULL) gets the number of members it was queued
 * for; 0 when the pool is broadcasting already (from a callback): then the message is queued
 * and sent to the members of that time when the running broadcast ends. Errors:
 * WSFWD_ERR_INVALID (pool NULL, data NULL with len > 0, an opcode other than TEXT or BINARY,
 * a length past SIZE_MAX), WSFWD_ERR_NOMEM, WSFWD_ERR_POOL_GONE.
 */
WSFWD_API int wsfwd_pool_broadcast(wsfwd_pool *pool, wsfwd_opcode opcode, const void *data,
                                   size_t len, const wsfwd_conn *except, size_t *delivered);

#ifdef __cplusplus
}
#endif

#endif /* WSFWD_HUB_H */
