/*
 * The hub: a table of named pools. A pool: an array of member connections.
 *
 * Re-entrancy. Callbacks run in the middle of pool operations (on_join, on_leave, and the
 * connections' on_output/on_close during a broadcast) and may do anything but free the hub.
 * Three rules keep that safe:
 * - Iterations (a broadcast, a foreach, a callback about a pool, a visit of wsfwd_hub_foreach)
 *   raise pool->busy. While it is raised, a member who leaves leaves a NULL hole instead of
 *   being swapped out, so the iteration neither skips nor repeats anyone, and a pool that
 *   empties is freed only when the last iteration ends. Joins append, beyond the end an
 *   iteration took at its start.
 * - A connection the code still needs after a callback is pinned (wsfwd_conn_pin), so a
 *   callback that frees it only marks it.
 * - One broadcast at a time per pool: a broadcast asked for while the pool is broadcasting
 *   (from a callback) is deferred and sent when the running one ends, so every member sees
 *   the pool's messages in one order.
 * A pool that empties while wsfwd_hub_foreach runs is taken out of the table at once but
 * freed only when the walk ends (marked dead); every operation on it is refused.
 */
#include "pool.h"

#include <string.h>

#include "frame.h"
#include "mem.h"
#include "outq.h"
#include "pmdconn.h"
#include "utf8.h"

#define DEFAULT_MAX_NAME 128

/* ---- The hub's table of pools by name ---------------------------------------------------- */

/* An entry of hub->pools is a pointer to the pool, whose name is the key. */
static const void *pool_key(const void *entry, size_t *len)
{
    const wsfwd_pool *pool = *(wsfwd_pool *const *)entry;
    *len = pool->name_len;
    return pool->name;
}

static size_t pool_count(const wsfwd_hub *hub)
{
    return wsfwd_table_count(&hub->pools);
}

static void list_unlink_and_free(wsfwd_pool *pool)
{
    wsfwd_hub *hub = pool->hub;
    if (pool->prev != NULL) {
        pool->prev->next = pool->next;
    } else {
        hub->first = pool->next;
    }
    if (pool->next != NULL) {
        pool->next->prev = pool->prev;
    } else {
        hub->last = pool->prev;
    }
    wsfwd_mem_free(&hub->cfg->alloc, pool->members);
    wsfwd_mem_free(&hub->cfg->alloc, pool);
}

/* Take the pool out of the table now; free it now, or after the hub's iterations. */
static void pool_destroy(wsfwd_pool *pool)
{
    wsfwd_hub *hub = pool->hub;
    if (pool->dead) {
        return; /* out of the table already: its slot may hold a newer pool of that name */
    }
    wsfwd_table_remove(&hub->pools, wsfwd_table_find(&hub->pools, pool->name, pool->name_len));
    if (hub->iterating > 0) {
        pool->dead = true;
        return;
    }
    list_unlink_and_free(pool);
}

static uint32_t live_members(const wsfwd_pool *pool)
{
    return pool->count - pool->holes;
}

/* Close the holes left by an iteration, keeping the members' order. */
static void compact(wsfwd_pool *pool)
{
    uint32_t j = 0;
    for (uint32_t i = 0; i < pool->count; i++) {
        wsfwd_conn *c = pool->members[i];
        if (c != NULL) {
            pool->members[j] = c;
            c->pool_index = j;
            j++;
        }
    }
    pool->count = j;
    pool->holes = 0;
}

static void pool_enter(wsfwd_pool *pool)
{
    pool->busy++;
}

/* End an iteration: tidy up, and free the pool if nothing keeps it. */
static void pool_leave(wsfwd_pool *pool)
{
    if (--pool->busy > 0) {
        return;
    }
    if (pool->holes > 0) {
        compact(pool);
    }
    if (pool->count == 0 && !pool->keep) {
        pool_destroy(pool);
    }
}

static bool name_is_valid(const wsfwd_hub *hub, const char *name, size_t len)
{
    return name != NULL && len >= 1 && len <= hub->max_name &&
           wsfwd_utf8_valid((const uint8_t *)name, len);
}

/* Find or create the pool; a new pool is not kept. */
static int pool_get(wsfwd_hub *hub, const char *name, size_t len, wsfwd_pool **out)
{
    if (!name_is_valid(hub, name, len)) {
        return WSFWD_ERR_POOL_NAME;
    }
    wsfwd_pool **slot = wsfwd_table_find(&hub->pools, name, len);
    if (slot != NULL) {
        *out = *slot;
        return WSFWD_OK;
    }
    if (hub->max_pools > 0 && pool_count(hub) >= hub->max_pools) {
        return WSFWD_ERR_POOL_LIMIT;
    }
    slot = wsfwd_table_insert(&hub->pools, name, len); /* grows the table first */
    if (slot == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    wsfwd_pool *pool = wsfwd_mem_alloc(&hub->cfg->alloc, sizeof *pool + len + 1);
    if (pool == NULL) {
        wsfwd_table_remove(&hub->pools, slot);
        return WSFWD_ERR_NOMEM;
    }
    memset(pool, 0, sizeof *pool);
    pool->hub = hub;
    pool->name_len = len;
    memcpy(pool->name, name, len);
    pool->name[len] = '\0';
    pool->stats.pools = 1;
    pool->prev = hub->last;
    if (hub->last != NULL) {
        hub->last->next = pool;
    } else {
        hub->first = pool;
    }
    hub->last = pool;
    *slot = pool;
    *out = pool;
    return WSFWD_OK;
}

/* ---- Hub ---------------------------------------------------------------------------------- */

int wsfwd_hub_new(wsfwd_config *cfg, wsfwd_hub **out)
{
    if (cfg == NULL || out == NULL) {
        return WSFWD_ERR_INVALID;
    }
    wsfwd_hub *hub = wsfwd_mem_alloc(&cfg->alloc, sizeof *hub);
    if (hub == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    memset(hub, 0, sizeof *hub);
    hub->cfg = cfg;
    hub->max_name = DEFAULT_MAX_NAME;
    /* Keyed hashing: room names come from the network. */
    uint64_t key[2];
    int rc = wsfwd_config_random(cfg, key, sizeof key);
    if (rc != WSFWD_OK) {
        wsfwd_mem_free(&cfg->alloc, hub);
        return rc;
    }
    wsfwd_table_init(&hub->pools, &cfg->alloc, sizeof(wsfwd_pool *), 16, key, pool_key);
    *out = hub;
    return WSFWD_OK;
}

void wsfwd_hub_free(wsfwd_hub *hub)
{
    if (hub == NULL) {
        return;
    }
    const wsfwd_allocator *a = &hub->cfg->alloc;
    for (wsfwd_pool *pool = hub->first; pool != NULL;) {
        wsfwd_pool *next = pool->next;
        for (uint32_t k = 0; k < pool->count; k++) {
            wsfwd_conn *c = pool->members[k];
            if (c != NULL) {
                c->pool = NULL;
                c->paced_pool = 0; /* no pool holds it up now; no callback, as for leaving */
                c->told_paced = 0;
            }
        }
        wsfwd_mem_free(a, pool->members);
        wsfwd_mem_free(a, pool);
        pool = next;
    }
    wsfwd_table_free(&hub->pools);
    wsfwd_mem_free(a, hub);
}

int wsfwd_hub_set_max_name(wsfwd_hub *hub, size_t bytes)
{
    if (hub == NULL || bytes == 0) {
        return WSFWD_ERR_INVALID;
    }
    hub->max_name = bytes;
    return WSFWD_OK;
}

int wsfwd_hub_set_max_pools(wsfwd_hub *hub, size_t pools)
{
    if (hub == NULL) {
        return WSFWD_ERR_INVALID;
    }
    hub->max_pools = pools;
    return WSFWD_OK;
}

int wsfwd_hub_set_max_members(wsfwd_hub *hub, size_t per_pool)
{
    if (hub == NULL || per_pool > UINT32_MAX) {
        return WSFWD_ERR_INVALID;
    }
    hub->max_members = per_pool;
    return WSFWD_OK;
}

void wsfwd_hub_set_user_data(wsfwd_hub *hub, void *user_data)
{
    hub->user_data = user_data;
}
void wsfwd_hub_on_join(wsfwd_hub *hub, wsfwd_on_join_fn fn)
{
    hub->on_join = fn;
}
void wsfwd_hub_on_leave(wsfwd_hub *hub, wsfwd_on_leave_fn fn)
{
    hub->on_leave = fn;
}

int wsfwd_hub_acquire(wsfwd_hub *hub, const char *name, size_t len, wsfwd_pool **out)
{
    if (hub == NULL || out == NULL) {
        return WSFWD_ERR_INVALID;
    }
    int rc = pool_get(hub, name, len, out);
    if (rc == WSFWD_OK) {
        (*out)->keep = true;
    }
    return rc;
}

wsfwd_pool *wsfwd_hub_find(const wsfwd_hub *hub, const char *name, size_t len)
{
    if (hub == NULL || (name == NULL && len > 0)) {
        return NULL;
    }
    wsfwd_pool *const *slot = wsfwd_table_find(&hub->pools, name, len);
    return slot != NULL ? *slot : NULL;
}

int wsfwd_hub_join(wsfwd_hub *hub, wsfwd_conn *c, const char *name, size_t len)
{
    if (hub == NULL || c == NULL) {
        return WSFWD_ERR_INVALID;
    }
    wsfwd_pool *pool;
    int rc = pool_get(hub, name, len, &pool);
    if (rc != WSFWD_OK) {
        return rc;
    }
    pool_enter(pool); /* a pool made here but not joined is freed on the way out */
    rc = wsfwd_pool_join(pool, c);
    pool_leave(pool);
    return rc;
}

int wsfwd_hub_foreach(wsfwd_hub *hub, int (*fn)(wsfwd_pool *pool, void *ud), void *ud)
{
    if (hub == NULL || fn == NULL) {
        return WSFWD_ERR_INVALID;
    }
    /* Walk the list, not the table: the table moves entries as pools come and go. Pools
       freed meanwhile stay linked, marked dead, until the walk ends; pools made meanwhile
       are past `end` and not visited. The pool being visited cannot die under fn. */
    int r = 0;
    hub->iterating++;
    wsfwd_pool *end = hub->last;
    for (wsfwd_pool *p = hub->first; p != NULL && r == 0; p = p->next) {
        if (!p->dead) {
            pool_enter(p);
            r = fn(p, ud);
            pool_leave(p);
        }
        if (p == end) {
            break;
        }
    }
    if (--hub->iterating == 0) {
        for (wsfwd_pool *p = hub->first; p != NULL;) {
            wsfwd_pool *next = p->next;
            if (p->dead) {
                list_unlink_and_free(p);
            }
            p = next;
        }
    }
    return r;
}

/* The size of wsfwd_stats in version 0.1 (slow_drops its last field): the least a caller may
   pass. A caller built against older headers passes its smaller size; a newer one a larger. */
#define STATS_MIN_SIZE (offsetof(wsfwd_stats, slow_drops) + sizeof(uint64_t))

/* Copy the counters into the caller's struct of out_size bytes, never past it. */
static int copy_stats(const wsfwd_stats *st, wsfwd_stats *out, size_t out_size)
{
    if (out == NULL || out_size < STATS_MIN_SIZE) {
        return WSFWD_ERR_INVALID;
    }
    memcpy(out, st, out_size < sizeof *st ? out_size : sizeof *st);
    return WSFWD_OK;
}

int wsfwd_hub_stats(const wsfwd_hub *hub, wsfwd_stats *out, size_t out_size)
{
    if (hub == NULL) {
        return WSFWD_ERR_INVALID;
    }
    wsfwd_stats st = hub->stats;
    st.pools = pool_count(hub);
    return copy_stats(&st, out, out_size);
}

/* ---- Membership --------------------------------------------------------------------------- */

void wsfwd_pool_release(wsfwd_pool *pool)
{
    if (pool == NULL || pool->dead || !pool->keep) {
        return;
    }
    pool->keep = false;
    pool_enter(pool);
    pool_leave(pool);
}

static int ensure_room(wsfwd_pool *pool)
{
    if (pool->count < pool->cap) {
        return WSFWD_OK;
    }
    uint32_t cap = pool->cap == 0 ? 4 : pool->cap * 2;
    if (cap < pool->cap) {
        return WSFWD_ERR_NOMEM;
    }
    const wsfwd_allocator *a = &pool->hub->cfg->alloc;
    wsfwd_conn **m = wsfwd_mem_realloc(a, pool->members, cap * sizeof *m);
    if (m == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    pool->members = m;
    pool->cap = cap;
    return WSFWD_OK;
}

static bool can_join(const wsfwd_conn *c)
{
    return !c->freed && (c->state == WSFWD_STATE_HANDSHAKE || c->state == WSFWD_STATE_OPEN);
}

static bool is_full(const wsfwd_pool *pool)
{
    size_t max = pool->hub->max_members;
    return max > 0 && live_members(pool) >= max;
}

int wsfwd_pool_join(wsfwd_pool *pool, wsfwd_conn *c)
{
    if (pool == NULL || c == NULL || c->freed || c->role != WSFWD_ROLE_SERVER) {
        return WSFWD_ERR_INVALID;
    }
    if (pool->dead) {
        return WSFWD_ERR_POOL_GONE;
    }
    if (!can_join(c)) {
        return WSFWD_ERR_STATE;
    }
    if (c->pool == pool) {
        return WSFWD_OK;
    }
    if (is_full(pool)) {
        return WSFWD_ERR_POOL_FULL;
    }
    if (!wsfwd_conn_pin(c)) {
        return WSFWD_ERR_NOMEM;
    }
    wsfwd_hub *hub = pool->hub;
    pool_enter(pool);
    if (c->pool != NULL) {
        wsfwd_pool_remove(c, WSFWD_LEAVE_REQUESTED);
    }
    /* on_leave may have freed, closed or moved the connection, or filled the pool. */
    int rc = !can_join(c) || c->pool != NULL ? WSFWD_ERR_STATE
             : is_full(pool)                 ? WSFWD_ERR_POOL_FULL
                                             : ensure_room(pool);
    if (rc == WSFWD_OK) {
        pool->members[pool->count] = c;
        c->pool = pool;
        c->pool_index = pool->count;
        pool->count++;
        pool->stats.members++;
        hub->stats.members++;
        if (wsfwd_conn_counts_congested(c)) {
            pool->congested++; /* its backlog now holds this pool's senders up */
        }
        if (hub->on_join != NULL) {
            hub->on_join(pool, c, hub->user_data);
        }
    }
    (void)wsfwd_conn_unpin(c);
    pool_leave(pool);
    return rc;
}

void wsfwd_pool_remove(wsfwd_conn *c, wsfwd_leave_reason reason)
{
    wsfwd_pool *pool = c->pool;
    wsfwd_hub *hub = pool->hub;
    uint32_t i = c->pool_index;
    c->pool = NULL;
    if (pool->busy > 0) {
        pool->members[i] = NULL;
        pool->holes++;
    } else {
        wsfwd_conn *last = pool->members[--pool->count];
        pool->members[i] = last;
        last->pool_index = i;
    }
    pool->stats.members--;
    hub->stats.members--;
    if (reason == WSFWD_LEAVE_SLOW) {
        pool->stats.slow_closes++;
        hub->stats.slow_closes++;
    }
    /* Leaving ends its pacing and its share of the pool's congestion; on_leave is told
       first, then on_flow and the senders it held up (in that order, so a callback never
       sees a connection joined elsewhere before it left here). */
    bool counted = wsfwd_conn_counts_congested(c);
    c->paced_pool = 0;
    pool_enter(pool);
    wsfwd_conn_hold(c); /* the callbacks below may free it */
    if (hub->on_leave != NULL) {
        hub->on_leave(pool, c, reason, hub->user_data);
    }
    wsfwd_conn_flow_sync(c);
    if (counted) {
        wsfwd_pool_uncount(pool);
        wsfwd_pool_resume(pool);
    }
    (void)wsfwd_conn_unpin(c);
    pool_leave(pool); /* frees the pool if that emptied it */
}

void wsfwd_pool_congested(wsfwd_pool *pool)
{
    pool->congested++;
}

void wsfwd_pool_uncount(wsfwd_pool *pool)
{
    pool->congested--;
    pool_enter(pool);
}

void wsfwd_pool_resume(wsfwd_pool *pool)
{
    /* No member holds the pool up any more: resume its paced senders. A callback may make
       one congested again; then the rest stay paced. */
    uint32_t n = pool->count;
    for (uint32_t i = 0; i < n && pool->congested == 0; i++) {
        wsfwd_conn *c = pool->members[i];
        if (c != NULL && c->paced_pool) {
            wsfwd_conn_unpace(c);
        }
    }
    pool_leave(pool); /* the uncount's */
}

void wsfwd_pool_count_drop(wsfwd_pool *pool)
{
    pool->stats.slow_drops++;
    pool->hub->stats.slow_drops++;
}

void wsfwd_conn_leave(wsfwd_conn *c)
{
    if (c != NULL && c->pool != NULL) {
        wsfwd_pool_remove(c, WSFWD_LEAVE_REQUESTED);
    }
}

wsfwd_pool *wsfwd_conn_pool(const wsfwd_conn *c)
{
    return c != NULL ? c->pool : NULL;
}

wsfwd_hub *wsfwd_pool_hub(const wsfwd_pool *pool)
{
    return pool != NULL ? pool->hub : NULL;
}

wsfwd_str wsfwd_pool_name(const wsfwd_pool *pool)
{
    wsfwd_str s = {NULL, 0};
    if (pool != NULL) {
        s.ptr = pool->name;
        s.len = pool->name_len;
    }
    return s;
}

size_t wsfwd_pool_size(const wsfwd_pool *pool)
{
    return pool != NULL ? live_members(pool) : 0;
}

int wsfwd_pool_stats(const wsfwd_pool *pool, wsfwd_stats *out, size_t out_size)
{
    if (pool == NULL) {
        return WSFWD_ERR_INVALID;
    }
    return copy_stats(&pool->stats, out, out_size);
}

int wsfwd_pool_foreach(wsfwd_pool *pool, int (*fn)(wsfwd_conn *conn, void *ud), void *ud)
{
    if (pool == NULL || fn == NULL) {
        return WSFWD_ERR_INVALID;
    }
    if (pool->dead) {
        return WSFWD_ERR_POOL_GONE;
    }
    int r = 0;
    pool_enter(pool);
    uint32_t n = pool->count;
    for (uint32_t i = 0; i < n && r == 0; i++) {
        wsfwd_conn *c = pool->members[i];
        if (c != NULL) {
            r = fn(c, ud);
        }
    }
    pool_leave(pool);
    return r;
}

/* ---- Broadcast ---------------------------------------------------------------------------- */

/*
 * One broadcast's frames: the plain one, and the compressed ones made on demand, one per
 * server window size (8 to 15) that a recipient negotiated, each at most once. z[i] NULL
 * with bit i of tried set: it did not shrink, so those members get the plain frame too.
 */
typedef struct bcast {
    wsfwd_buf *plain;
    size_t len; /* the payload's */
    uint16_t tried;
    wsfwd_buf *z[8];
    size_t zlen[8];
} bcast;

static void bcast_add(wsfwd_stats *st, uint64_t in, uint64_t out)
{
    st->deflate_calls++;
    st->deflate_bytes_in += in;
    st->deflate_bytes_out += out;
}

/* Compress the broadcast's payload for a window of 2^bits into a frame of its own. */
static wsfwd_buf *bcast_compress(wsfwd_pool *pool, bcast *b, int bits, size_t *zlen)
{
    wsfwd_config *cfg = pool->hub->cfg;
    const uint8_t *payload = b->plain->data + (b->plain->len - b->len);
    const uint8_t *zp;
    size_t zn = wsfwd_pmdc_compress(cfg, bits, payload, b->len, &zp);
    bcast_add(&pool->stats, b->len, zn > 0 ? zn : b->len);
    bcast_add(&pool->hub->stats, b->len, zn > 0 ? zn : b->len);
    if (zn == 0) {
        return NULL;
    }
    wsfwd_buf *f = wsfwd_buf_new(&cfg->alloc, WSFWD_FRAME_HEADER_MAX + zn);
    if (f == NULL) {
        return NULL; /* short of memory: the plain frame will do */
    }
    wsfwd_opcode op = (wsfwd_opcode)(b->plain->data[0] & 0x0F);
    f->len = wsfwd_frame_encode_header(f->data, true, op, zn, NULL);
    f->data[0] |= WSFWD_RSV1_BIT;
    memcpy(f->data + f->len, zp, zn);
    f->len += zn;
    *zlen = zn;
    return f;
}

/* The frame for member c, which negotiated permessage-deflate: compressed if that shrinks. */
static wsfwd_buf *bcast_frame(wsfwd_pool *pool, bcast *b, const wsfwd_conn *c, size_t *zlen)
{
    int i = wsfwd_pmdc_send_bits(c->pmd) - WSFWD_PMD_MIN_BITS;
    if (!(b->tried & (1u << i))) {
        b->tried = (uint16_t)(b->tried | (1u << i));
        b->z[i] = bcast_compress(pool, b, i + WSFWD_PMD_MIN_BITS, &b->zlen[i]);
    }
    if (b->z[i] == NULL) {
        return b->plain;
    }
    *zlen = b->zlen[i];
    return b->z[i];
}

static void bcast_done(wsfwd_pool *pool, bcast *b)
{
    for (size_t i = 0; i < 8; i++) {
        if (b->z[i] != NULL) {
            wsfwd_buf_unref(&pool->hub->cfg->alloc, b->z[i]);
        }
    }
}

/* Queue the frame on every open member but except; returns how many took it. */
static size_t push_all(wsfwd_pool *pool, wsfwd_buf *frame, const wsfwd_conn *except)
{
    size_t sent = 0;
    uint32_t n = pool->count; /* members who join meanwhile are past n */
    for (uint32_t i = 0; i < n; i++) {
        wsfwd_conn *c = pool->members[i];
        if (c == NULL || c == except || c->state != WSFWD_STATE_OPEN) {
            continue;
        }
        if (wsfwd_conn_push(c, frame) == WSFWD_OK) {
            sent++;
        }
    }
    return sent;
}

/* push_all(), with the compressed frame for the members that negotiated permessage-deflate. */
static size_t push_all_deflate(wsfwd_pool *pool, bcast *b, const wsfwd_conn *except)
{
    size_t sent = 0;
    uint64_t zsent = 0;
    uint64_t zbytes = 0;
    uint32_t n = pool->count;
    for (uint32_t i = 0; i < n; i++) {
        wsfwd_conn *c = pool->members[i];
        if (c == NULL || c == except || c->state != WSFWD_STATE_OPEN) {
            continue;
        }
        size_t zlen = 0;
        wsfwd_buf *f = c->pmd != NULL ? bcast_frame(pool, b, c, &zlen) : b->plain;
        if (wsfwd_conn_push(c, f) == WSFWD_OK) {
            sent++;
            zsent += f != b->plain;
            zbytes += zlen;
        }
    }
    pool->stats.deflated_out += zsent;
    pool->stats.deflated_bytes_out += zbytes;
    pool->hub->stats.deflated_out += zsent;
    pool->hub->stats.deflated_bytes_out += zbytes;
    return sent;
}

/* Queue the frame on every open member but except; returns the number of members. */
static size_t send_frame(wsfwd_pool *pool, wsfwd_buf *frame, const wsfwd_conn *except, size_t len)
{
    const wsfwd_config *cfg = pool->hub->cfg;
    size_t sent;
    if (cfg->has_deflate && len >= cfg->deflate_min_size) {
        bcast b;
        memset(&b, 0, sizeof b);
        b.plain = frame;
        b.len = len;
        sent = push_all_deflate(pool, &b, except);
        bcast_done(pool, &b);
    } else {
        sent = push_all(pool, frame, except);
    }
    /* A member holds the pool up: slow the sender down (not for its own backlog). */
    if (pool->congested > 0 && except != NULL && except->pool == pool && !except->paced_pool &&
        pool->congested > (wsfwd_conn_counts_congested(except) ? 1u : 0u)) {
        wsfwd_conn_pace((wsfwd_conn *)except);
    }
    wsfwd_hub *hub = pool->hub;
    pool->stats.messages_in++;
    pool->stats.bytes_in += len;
    pool->stats.messages_out += sent;
    pool->stats.bytes_out += (uint64_t)sent * len;
    hub->stats.messages_in++;
    hub->stats.bytes_in += len;
    hub->stats.messages_out += sent;
    hub->stats.bytes_out += (uint64_t)sent * len;
    return sent;
}

/* Keep a broadcast asked for during one, to be sent when it ends. */
static int defer(wsfwd_pool *pool, wsfwd_buf *frame, wsfwd_conn *except, size_t len)
{
    if (pool->deferred_count == pool->deferred_cap) {
        uint32_t cap = pool->deferred_cap == 0 ? 4 : pool->deferred_cap * 2;
        if (cap < pool->deferred_cap) {
            return WSFWD_ERR_NOMEM;
        }
        wsfwd_deferred *d =
            wsfwd_mem_realloc(&pool->hub->cfg->alloc, pool->deferred, cap * sizeof *d);
        if (d == NULL) {
            return WSFWD_ERR_NOMEM;
        }
        pool->deferred = d;
        pool->deferred_cap = cap;
    }
    if (except != NULL && !wsfwd_conn_pin(except)) {
        return WSFWD_ERR_NOMEM;
    }
    wsfwd_deferred *d = &pool->deferred[pool->deferred_count++];
    d->frame = frame;
    d->except = except;
    d->len = len;
    return WSFWD_OK;
}

/* Send the deferred broadcasts in the order they were asked for, including those that
   their own callbacks ask for meanwhile. */
static void send_deferred(wsfwd_pool *pool)
{
    const wsfwd_allocator *a = &pool->hub->cfg->alloc;
    while (pool->deferred_head < pool->deferred_count) {
        wsfwd_deferred d = pool->deferred[pool->deferred_head++];
        (void)send_frame(pool, d.frame, d.except, d.len);
        wsfwd_buf_unref(a, d.frame);
        if (d.except != NULL) {
            (void)wsfwd_conn_unpin(d.except);
        }
    }
    wsfwd_mem_free(a, pool->deferred);
    pool->deferred = NULL;
    pool->deferred_head = 0;
    pool->deferred_count = 0;
    pool->deferred_cap = 0;
}

int wsfwd_pool_broadcast(wsfwd_pool *pool, wsfwd_opcode op, const void *data, size_t len,
                         const wsfwd_conn *except, size_t *delivered)
{
    if (delivered != NULL) {
        *delivered = 0;
    }
    if (pool == NULL || (data == NULL && len > 0) ||
        (op != WSFWD_OP_TEXT && op != WSFWD_OP_BINARY)) {
        return WSFWD_ERR_INVALID;
    }
    if (pool->dead) {
        return WSFWD_ERR_POOL_GONE;
    }
    const wsfwd_allocator *a = &pool->hub->cfg->alloc;
    if (len > SIZE_MAX - WSFWD_FRAME_HEADER_MAX) {
        return WSFWD_ERR_INVALID;
    }
    /* Encoded once; every recipient's queue holds a reference. */
    wsfwd_buf *frame = wsfwd_buf_new(a, WSFWD_FRAME_HEADER_MAX + len);
    if (frame == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    frame->len = wsfwd_frame_encode_header(frame->data, true, op, len, NULL);
    if (len > 0) {
        memcpy(frame->data + frame->len, data, len);
    }
    frame->len += len;

    if (pool->broadcasting) {
        /* A callback of the running broadcast: sending now would put this message before
           the running one on the members it has not reached yet. */
        int rc = defer(pool, frame, (wsfwd_conn *)except, len);
        if (rc != WSFWD_OK) {
            wsfwd_buf_unref(a, frame);
        }
        return rc;
    }
    pool->broadcasting = true;
    pool_enter(pool);
    if (except != NULL) {
        wsfwd_conn_hold((wsfwd_conn *)except); /* pacing reads it after the callbacks */
    }
    size_t sent = send_frame(pool, frame, except, len);
    wsfwd_buf_unref(a, frame);
    if (except != NULL) {
        (void)wsfwd_conn_unpin((wsfwd_conn *)except);
    }
    if (pool->deferred_count > 0) {
        send_deferred(pool);
    }
    pool->broadcasting = false;
    pool_leave(pool);
    if (delivered != NULL) {
        *delivered = sent;
    }
    return WSFWD_OK;
}
