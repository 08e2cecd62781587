/* The hub and its pools (rooms). */
#ifndef WSFWD_LIB_POOL_H
#define WSFWD_LIB_POOL_H

#include "conn.h"
#include "member.h"
#include "table.h"
#include "wsfwd.h"

/* A broadcast asked for while the pool was broadcasting: sent when that broadcast ends. */
typedef struct wsfwd_deferred {
    wsfwd_buf *frame;   /* encoded, one reference */
    wsfwd_conn *except; /* pinned until sent, so the pointer cannot name a newer connection */
    size_t len;         /* payload bytes, for the counters */
} wsfwd_deferred;

struct wsfwd_pool {
    wsfwd_hub *hub;
    wsfwd_conn **members; /* NULL holes appear while an iteration runs */
    uint32_t count;       /* slots used, holes included */
    uint32_t cap;
    uint32_t holes;
    uint32_t busy;            /* iterations (broadcast, foreach, callbacks) on the stack */
    uint32_t congested;       /* members above the high mark (not dropping): senders are paced */
    bool keep;                /* made by wsfwd_hub_acquire and not yet released */
    bool dead;                /* out of the table, freed when the hub's iterations end */
    bool broadcasting;        /* a broadcast is on the stack: later ones are deferred */
    wsfwd_deferred *deferred; /* FIFO of deferred broadcasts, only while broadcasting */
    uint32_t deferred_head;
    uint32_t deferred_count; /* entries used, from index 0; [head, count) still to send */
    uint32_t deferred_cap;
    struct wsfwd_pool *prev; /* the hub's list of pools, in creation order */
    struct wsfwd_pool *next;
    wsfwd_stats stats;
    size_t name_len;
    char name[]; /* NUL-terminated for convenience; may hold NUL bytes */
};

struct wsfwd_hub {
    wsfwd_config *cfg;
    wsfwd_table pools; /* wsfwd_pool * by name (live pools only; dead ones are out) */
    wsfwd_pool *first; /* every pool, dead ones included, for wsfwd_hub_foreach */
    wsfwd_pool *last;
    uint32_t iterating; /* wsfwd_hub_foreach calls on the stack */
    size_t max_name;
    size_t max_pools;
    size_t max_members;
    void *user_data;
    wsfwd_on_join_fn on_join;
    wsfwd_on_leave_fn on_leave;
    wsfwd_stats stats;
};

#endif
