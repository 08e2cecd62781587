/*
 * Routing of requests: /echo, /ws, /ws/<room>, the demo page, /healthz, /stats and /metrics;
 * room tokens, the client's address behind a trusted proxy (--trust-proxy, X-Forwarded-For)
 * and the limits per connection and per address. Every refusal is counted by status for
 * /stats and /metrics and logged at debug level; a refused token is also counted by cause
 * and logged at info level (never the token itself).
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "routes.h"

#include "forwarded.h"
#include "log.h"

extern const unsigned char demo_page[];
extern const size_t demo_page_len;

struct routes {
    routes_env env;
    auth_keys keys;         /* --auth-secret-file (n 0: no tokens needed) */
    addr_table per_address; /* --max-connections-per-address */
    size_t nwebsockets;     /* accepted WebSocket connections */
    size_t ntrusted;
    addr_prefix trusted[TRUST_PROXY_MAX]; /* --trust-proxy */
};

int routes_open(routes **out, const routes_env *env)
{
    routes *rt = calloc(1, sizeof *rt);
    if (rt == NULL) {
        fprintf(stderr, "wsfwd: out of memory\n");
        return -1;
    }
    rt->env = *env;
    const options *o = env->opts;
    if (o->nauth_files > 0) {
        char err[512];
        if (auth_keys_load(&rt->keys, o->auth_files, o->nauth_files, err, sizeof err) != 0) {
            fprintf(stderr, "wsfwd: %s\n", err);
            free(rt);
            return -1;
        }
    }
    for (size_t i = 0; i < o->ntrust_proxy; i++) { /* checked by options.c */
        const char *p = o->trust_proxy[i];
        if (addr_prefix_parse(p, strlen(p), &rt->trusted[rt->ntrusted]) == NULL) {
            rt->ntrusted++;
        }
    }
    if (addr_table_init(&rt->per_address) != 0) {
        fprintf(stderr, "wsfwd: cannot seed the address table: %s\n", strerror(errno));
        auth_keys_free(&rt->keys);
        free(rt);
        return -1;
    }
    *out = rt;
    return 0;
}

void routes_free(routes *rt)
{
    if (rt == NULL) {
        return;
    }
    auth_keys_free(&rt->keys);
    addr_table_free(&rt->per_address);
    free(rt);
}

size_t routes_connections(const routes *rt)
{
    return rt->nwebsockets;
}

size_t routes_keys(const routes *rt)
{
    return rt->keys.n;
}

static bool str_is(wsfwd_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static void refuse(routes *rt, wsfwd_conn *conn, int status, const char *why)
{
    client *c = wsfwd_conn_user_data(conn);
    char label[CLIENT_LABEL_MAX];
    stats_count_refusal(rt->env.counters, status);
    LOG(LOG_DEBUG, "%s refused with %d: %s", client_label(c, rt->env.global, label, sizeof label),
        status, why);
    (void)wsfwd_conn_refuse(conn, status);
}

/* A plain HTTP request (no Upgrade): the page, the health check, the counters, or 404. */
static void route_plain(routes *rt, wsfwd_conn *conn, const wsfwd_request *req, wsfwd_str path)
{
    if (!str_is(wsfwd_request_method(req), "GET")) {
        refuse(rt, conn, 405, "method");
    } else if (str_is(path, "/")) {
        (void)wsfwd_conn_respond(conn, 200, "text/html; charset=utf-8", demo_page, demo_page_len);
    } else if (str_is(path, "/healthz")) {
        (void)wsfwd_conn_respond(conn, 200, "text/plain", "ok\n", 3);
    } else if (str_is(path, "/stats")) {
        rt->env.respond_stats(rt->env.ud, conn);
    } else if (str_is(path, "/metrics")) {
        rt->env.respond_metrics(rt->env.ud, conn);
    } else if (str_is(path, "/echo") || str_is(path, "/ws") ||
               (path.len > 4 && memcmp(path.ptr, "/ws/", 4) == 0)) {
        refuse(rt, conn, wsfwd_request_status(req), "not a WebSocket upgrade");
    } else {
        refuse(rt, conn, 404, "no such path");
    }
}

static bool origin_allowed(const options *o, wsfwd_str origin)
{
    if (o->norigins == 0) {
        return true;
    }
    for (size_t i = 0; i < o->norigins; i++) {
        if (str_is(origin, o->origins[i])) {
            return true;
        }
    }
    return false;
}

/* Seconds since the epoch, the clock of a token's exp and nbf. */
static int64_t wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

/*
 * With --auth-secret-file: the request's token must verify under one of the keys and, except
 * for /echo, open this room (room NULL for /echo; "" is /ws). Refuses and returns false if not.
 */
static bool authorised(routes *rt, wsfwd_conn *conn, const wsfwd_request *req, const char *room,
                       size_t room_len)
{
    client *c = wsfwd_conn_user_data(conn);
    char label[CLIENT_LABEL_MAX];
    char shown_room[64] = "(echo)";
    char sub[96] = "-";
    if (room != NULL) {
        log_escape(room, room_len, shown_room, sizeof shown_room);
    }
    wsfwd_str tok = wsfwd_request_token(req);
    if (tok.ptr == NULL) {
        rt->env.counters->refused_auth[AUTH_MISSING]++;
        stats_count_refusal(rt->env.counters, 401);
        LOG(LOG_INFO, "%s refused with 401: no room token (asked for room=%s)",
            client_label(c, rt->env.global, label, sizeof label), shown_room);
        (void)wsfwd_conn_refuse(conn, 401);
        return false;
    }
    wsfwd_token t;
    int rc = wsfwd_token_verify(tok.ptr, tok.len, rt->keys.keys, rt->keys.n, wall_seconds(), &t);
    bool authentic =
        rc == WSFWD_OK || rc == WSFWD_ERR_TOKEN_EXPIRED || rc == WSFWD_ERR_TOKEN_NOT_YET_VALID;
    if (authentic && t.sub.ptr != NULL) {
        log_escape(t.sub.ptr, t.sub.len, sub, sizeof sub);
    }
    if (rc == WSFWD_OK && room != NULL) {
        rc = wsfwd_token_check_room(&t, room, room_len);
    }
    if (rc != WSFWD_OK) {
        rt->env.counters->refused_auth[auth_cause_of(rc)]++;
        stats_count_refusal(rt->env.counters, 403);
        LOG(LOG_INFO, "%s refused with 403: %s (asked for room=%s, sub=%s)",
            client_label(c, rt->env.global, label, sizeof label), wsfwd_strerror(rc), shown_room,
            sub);
        (void)wsfwd_conn_refuse(conn, 403);
        return false;
    }
    LOG(LOG_DEBUG, "%s token accepted (sub=%s, key %zu)",
        client_label(c, rt->env.global, label, sizeof label), sub, t.key_index + 1);
    return true;
}

/* --max-connections-per-address: true if c's address may open one more WebSocket. */
static bool under_address_cap(routes *rt, const client *c)
{
    if (rt->env.opts->max_per_address == 0) {
        return true;
    }
    uint8_t key[16];
    addr_normalise(key, c->addr, c->ipv6);
    return addr_table_count(&rt->per_address, key) < rt->env.opts->max_per_address;
}

static bool accepted(routes *rt, client *c, wsfwd_conn *conn, const char *what)
{
    if (rt->env.opts->max_per_address > 0) {
        uint8_t key[16];
        addr_normalise(key, c->addr, c->ipv6);
        if (addr_table_add(&rt->per_address, key) != 0) {
            refuse(rt, conn, 503, "out of memory");
            return false;
        }
        c->per_address = true;
    }
    c->websocket = true;
    rt->nwebsockets++;
    rate_bucket_fill(&c->bucket, rt->env.rate, (uint32_t)loop_now(rt->env.lp));
    (void)wsfwd_conn_accept(conn, NULL);
    char label[CLIENT_LABEL_MAX];
    LOG(LOG_DEBUG, "%s opened %s", client_label(c, rt->env.global, label, sizeof label), what);
    return true;
}

void routes_forget(routes *rt, client *c)
{
    if (!c->websocket) {
        return;
    }
    rt->nwebsockets--;
    if (c->per_address) {
        uint8_t key[16];
        addr_normalise(key, c->addr, c->ipv6);
        addr_table_remove(&rt->per_address, key);
        c->per_address = false;
    }
}

void routes_reload_keys(routes *rt)
{
    const options *o = rt->env.opts;
    if (o->nauth_files == 0) {
        LOG(LOG_INFO, "SIGHUP: no --auth-secret-file to re-read");
        return;
    }
    auth_keys fresh;
    char err[512];
    if (auth_keys_load(&fresh, o->auth_files, o->nauth_files, err, sizeof err) != 0) {
        LOG(LOG_ERROR, "SIGHUP: %s; the keys in use stay", err);
        return;
    }
    auth_keys_free(&rt->keys);
    rt->keys = fresh;
    LOG(LOG_INFO, "SIGHUP: re-read %zu room token key%s", fresh.n, fresh.n > 1 ? "s" : "");
}

/*
 * --trust-proxy: a request from a trusted proxy names its client in X-Forwarded-For, and from
 * then on that address is the client's (per-address limit, logs). A malformed header leaves
 * the proxy's address, counted and logged; a missing one, or an untrusted peer, changes nothing.
 */
static void take_forwarded(routes *rt, client *c, const wsfwd_request *req)
{
    uint8_t peer[16];
    addr_normalise(peer, c->addr, c->ipv6);
    if (rt->ntrusted == 0 || c->forwarded || !addr_prefix_any(rt->trusted, rt->ntrusted, peer)) {
        return;
    }
    wsfwd_str xff = wsfwd_request_header(req, "X-Forwarded-For");
    if (xff.ptr == NULL) {
        return;
    }
    uint8_t addr[16];
    char label[CLIENT_LABEL_MAX];
    char proxy[64];
    switch (forwarded_client(xff.ptr, xff.len, rt->trusted, rt->ntrusted, addr)) {
    case FORWARDED_FOUND:
        rt->env.counters->forwarded++;
        client_peer(c, proxy, sizeof proxy);
        client_set_forwarded(c, addr);
        LOG(LOG_DEBUG, "%s forwarded by the proxy at %s",
            client_label(c, rt->env.global, label, sizeof label), proxy);
        break;
    case FORWARDED_MALFORMED: {
        char shown[128];
        log_escape(xff.ptr, xff.len, shown, sizeof shown);
        rt->env.counters->forwarded_malformed++;
        LOG(LOG_WARN, "%s: malformed X-Forwarded-For \"%s\" from a trusted proxy: its address kept",
            client_label(c, rt->env.global, label, sizeof label), shown);
        break;
    }
    case FORWARDED_NONE: break;
    }
}

int routes_on_request(routes *rt, wsfwd_conn *conn, const wsfwd_request *req)
{
    client *c = wsfwd_conn_user_data(conn);
    take_forwarded(rt, c, req);
    wsfwd_str path = wsfwd_request_path(req);
    if (!wsfwd_request_is_upgrade(req)) {
        route_plain(rt, conn, req, path);
        return 0;
    }
    bool echo = str_is(path, "/echo");
    bool global = str_is(path, "/ws");
    bool room = path.len > 4 && memcmp(path.ptr, "/ws/", 4) == 0;
    if (!echo && !global && !room) {
        refuse(rt, conn, 404, "no WebSocket at this path");
        return 0;
    }
    int check = wsfwd_request_check(req);
    if (check != WSFWD_OK) {
        refuse(rt, conn, wsfwd_error_http_status(check), wsfwd_strerror(check));
        return 0;
    }
    if (!origin_allowed(rt->env.opts, wsfwd_request_origin(req))) {
        refuse(rt, conn, 403, "Origin not allowed");
        return 0;
    }
    char name[4096];
    size_t n = 0;
    /* Too long for name: refused as before, with 400 (--max-room-name is at most 4096). */
    if (room &&
        wsfwd_percent_decode(path.ptr + 4, path.len - 4, name, sizeof name, &n) != WSFWD_OK) {
        refuse(rt, conn, 400, "bad percent-encoding in the room name");
        return 0;
    }
    if (rt->keys.n > 0 && !authorised(rt, conn, req, echo ? NULL : name, n)) {
        return 0;
    }
    if (rt->env.opts->max_connections > 0 && rt->nwebsockets >= rt->env.opts->max_connections) {
        refuse(rt, conn, 503, "too many connections");
        return 0;
    }
    if (!under_address_cap(rt, c)) {
        rt->env.counters->refused_per_address++;
        refuse(rt, conn, 503, "too many connections from this address");
        return 0;
    }
    if (echo) {
        c->echo = true;
        accepted(rt, c, conn, "echo");
        return 0;
    }
    int rc = global ? wsfwd_pool_join(rt->env.global_pool, conn)
                    : wsfwd_hub_join(rt->env.rooms, conn, name, n);
    if (rc != WSFWD_OK) {
        refuse(rt, conn, rc == WSFWD_ERR_POOL_NAME ? 400 : 503, wsfwd_strerror(rc));
        return 0;
    }
    if (!accepted(rt, c, conn, global ? "in the global pool" : "in a room")) {
        wsfwd_conn_leave(conn);
    }
    return 0;
}
