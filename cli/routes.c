/*
 * Routing of requests: /echo, /ws, /ws/<room>, the demo page, /healthz and /stats; room
 * tokens and the limits per connection and per address. Every refusal is counted by status
 * for /stats and logged at debug level; a refused token is also counted by cause and logged
 * at info level (never the token itself).
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "log.h"
#include "server_internal.h"

extern const unsigned char demo_page[];
extern const size_t demo_page_len;

void format_peer(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        snprintf(out, cap, "%s:%u", host, ntohs(v4->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
        snprintf(out, cap, "[%s]:%u", host, ntohs(v6->sin6_port));
    } else {
        snprintf(out, cap, "?");
    }
}

void client_set_peer(client *c, const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;
        memcpy(c->addr, &v6->sin6_addr, 16);
        c->port = ntohs(v6->sin6_port);
        c->ipv6 = true;
    } else {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;
        memcpy(c->addr, &v4->sin_addr, 4);
        c->port = ntohs(v4->sin_port);
        c->ipv6 = false;
    }
}

const char *client_label(const server *s, const client *c, char *buf, size_t cap)
{
    char id[WSFWD_ID_LEN + 1] = "-";
    char host[INET6_ADDRSTRLEN];
    char room[64] = "-";
    if (c->conn != NULL) {
        wsfwd_conn_id(c->conn, id);
        wsfwd_pool *pool = wsfwd_conn_pool(c->conn);
        if (c->echo) {
            snprintf(room, sizeof room, "(echo)");
        } else if (pool != NULL && wsfwd_pool_hub(pool) == s->global) {
            snprintf(room, sizeof room, "(global)");
        } else if (pool != NULL) {
            wsfwd_str name = wsfwd_pool_name(pool);
            log_escape(name.ptr, name.len, room, sizeof room);
        }
    }
    inet_ntop(c->ipv6 ? AF_INET6 : AF_INET, c->addr, host, sizeof host);
    snprintf(buf, cap, c->ipv6 ? "conn=%s peer=[%s]:%u room=%s" : "conn=%s peer=%s:%u room=%s",
             id, host, c->port, room);
    return buf;
}

void log_escape(const char *in, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        bool plain = ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '"';
        size_t need = plain ? 1 : 4;
        if (o + need + 4 >= cap) {
            if (o + 4 <= cap) {
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        if (plain) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
}

void routes_count_refusal(server *s, int status)
{
    int kind;
    switch (status) {
    case 400: kind = REFUSED_400; break;
    case 401: kind = REFUSED_401; break;
    case 403: kind = REFUSED_403; break;
    case 404: kind = REFUSED_404; break;
    case 405: kind = REFUSED_405; break;
    case 426: kind = REFUSED_426; break;
    case 431: kind = REFUSED_431; break;
    case 503: kind = REFUSED_503; break;
    default: kind = REFUSED_OTHER; break;
    }
    s->stats.refused[kind]++;
}

static bool str_is(wsfwd_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static void refuse(server *s, wsfwd_conn *conn, int status, const char *why)
{
    client *c = wsfwd_conn_user_data(conn);
    char label[CLIENT_LABEL_MAX];
    routes_count_refusal(s, status);
    LOG(LOG_DEBUG, "%s refused with %d: %s", client_label(s, c, label, sizeof label), status,
        why);
    (void)wsfwd_conn_refuse(conn, status);
}

static void respond_stats(server *s, wsfwd_conn *conn)
{
    wsfwd_stats rooms, global;
    wsfwd_hub_stats(s->rooms, &rooms, sizeof rooms);
    wsfwd_hub_stats(s->global, &global, sizeof global);
    const server_stats *st = &s->stats;
    char auth[512];
    size_t a = 0;
    for (int i = 0; i < AUTH_CAUSES; i++) {
        int k = snprintf(auth + a, sizeof auth - a, "%s\"%s\":%" PRIu64, i == 0 ? "" : ",",
                         auth_cause_name((auth_cause)i), st->refused_auth[i]);
        if (k < 0 || (size_t)k >= sizeof auth - a) {
            (void)wsfwd_conn_refuse(conn, 500);
            return;
        }
        a += (size_t)k;
    }
    char body[4096]; /* every field is a bounded number: well under this */
    int n = snprintf(
        body, sizeof body,
        "{\"version\":\"%s\",\"uptime_ms\":%" PRIu64 ",\"connections\":%zu,"
        "\"tcp_connections\":%zu,\"accepted\":%" PRIu64 ",\"rooms\":%" PRIu64 ","
        "\"global_members\":%" PRIu64 ",\"messages_in\":%" PRIu64 ",\"bytes_in\":%" PRIu64
        ",\"messages_out\":%" PRIu64 ",\"bytes_out\":%" PRIu64 ",\"echoed\":%" PRIu64
        ",\"slow_closes\":%" PRIu64 ",\"slow_drops\":%" PRIu64
        ",\"handshake_timeouts\":%" PRIu64 ",\"idle_timeouts\":%" PRIu64
        ",\"protocol_errors\":%" PRIu64 ",\"rate_limited\":%" PRIu64
        ",\"auth_required\":%s,\"refused\":{\"400\":%" PRIu64 ",\"401\":%" PRIu64
        ",\"403\":%" PRIu64
        ",\"404\":%" PRIu64 ",\"405\":%" PRIu64 ",\"426\":%" PRIu64 ",\"431\":%" PRIu64
        ",\"503\":%" PRIu64 ",\"other\":%" PRIu64 ",\"fd_limit\":%" PRIu64
        ",\"per_address\":%" PRIu64 ",\"auth\":{%s}},\"flow\":{\"paced_now\":%" PRIu64
        ",\"pace_events\":%" PRIu64 ",\"congested_now\":%" PRIu64 ",\"cut_by_time\":%" PRIu64
        ",\"cut_by_bytes\":%" PRIu64 "}}\n",
        wsfwd_version(), s->now - s->started, s->nwebsockets, s->nclients, st->accepted,
        rooms.pools, global.members, st->messages_in, st->bytes_in,
        rooms.messages_out + global.messages_out + st->echoed,
        rooms.bytes_out + global.bytes_out + st->echoed_bytes, st->echoed,
        rooms.slow_closes + global.slow_closes + st->echo_slow_closes,
        rooms.slow_drops + global.slow_drops + st->echo_slow_drops,
        st->handshake_timeouts, st->idle_timeouts, st->protocol_errors, st->rate_limited,
        s->keys.n > 0 ? "true" : "false", st->refused[REFUSED_400], st->refused[REFUSED_401],
        st->refused[REFUSED_403], st->refused[REFUSED_404],
        st->refused[REFUSED_405], st->refused[REFUSED_426], st->refused[REFUSED_431],
        st->refused[REFUSED_503], st->refused[REFUSED_OTHER], st->refused_fd_limit,
        st->refused_per_address, auth, st->paused_now, st->pauses, st->congested_now,
        st->cut_by_time, st->cut_by_bytes);
    if (n < 0 || (size_t)n >= sizeof body) {
        (void)wsfwd_conn_refuse(conn, 500);
        return;
    }
    if (s->cluster != NULL && n >= 2) { /* insert ,"cluster":{...} before the final "}\n" */
        size_t extra = cluster_stats_json(s, body + n - 2, sizeof body - (size_t)n);
        if (extra > 0 && (size_t)n + extra < sizeof body) {
            n += (int)extra;
            memcpy(body + n - 2, "}\n", 2);
        }
    }
    (void)wsfwd_conn_respond(conn, 200, "application/json", body, (size_t)n);
}

/* A plain HTTP request (no Upgrade): the page, the health check, the counters, or 404. */
static void route_plain(server *s, wsfwd_conn *conn, const wsfwd_request *req, wsfwd_str path)
{
    if (!str_is(wsfwd_request_method(req), "GET")) {
        refuse(s, conn, 405, "method");
    } else if (str_is(path, "/")) {
        (void)wsfwd_conn_respond(conn, 200, "text/html; charset=utf-8", demo_page, demo_page_len);
    } else if (str_is(path, "/healthz")) {
        (void)wsfwd_conn_respond(conn, 200, "text/plain", "ok\n", 3);
    } else if (str_is(path, "/stats")) {
        respond_stats(s, conn);
    } else if (str_is(path, "/echo") || str_is(path, "/ws") ||
               (path.len > 4 && memcmp(path.ptr, "/ws/", 4) == 0)) {
        refuse(s, conn, wsfwd_request_status(req), "not a WebSocket upgrade");
    } else {
        refuse(s, conn, 404, "no such path");
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
static bool authorised(server *s, wsfwd_conn *conn, const wsfwd_request *req, const char *room,
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
        s->stats.refused_auth[AUTH_MISSING]++;
        routes_count_refusal(s, 401);
        LOG(LOG_INFO, "%s refused with 401: no room token (asked for room=%s)",
            client_label(s, c, label, sizeof label), shown_room);
        (void)wsfwd_conn_refuse(conn, 401);
        return false;
    }
    wsfwd_token t;
    int rc = wsfwd_token_verify(tok.ptr, tok.len, s->keys.keys, s->keys.n, wall_seconds(), &t);
    bool authentic = rc == WSFWD_OK || rc == WSFWD_ERR_TOKEN_EXPIRED ||
                     rc == WSFWD_ERR_TOKEN_NOT_YET_VALID;
    if (authentic && t.sub.ptr != NULL) {
        log_escape(t.sub.ptr, t.sub.len, sub, sizeof sub);
    }
    if (rc == WSFWD_OK && room != NULL) {
        rc = wsfwd_token_check_room(&t, room, room_len);
    }
    if (rc != WSFWD_OK) {
        s->stats.refused_auth[auth_cause_of(rc)]++;
        routes_count_refusal(s, 403);
        LOG(LOG_INFO, "%s refused with 403: %s (asked for room=%s, sub=%s)",
            client_label(s, c, label, sizeof label), wsfwd_strerror(rc), shown_room, sub);
        (void)wsfwd_conn_refuse(conn, 403);
        return false;
    }
    LOG(LOG_DEBUG, "%s token accepted (sub=%s, key %zu)", client_label(s, c, label, sizeof label),
        sub, t.key_index + 1);
    return true;
}

/* --max-connections-per-address: true if c's address may open one more WebSocket. */
static bool under_address_cap(server *s, const client *c)
{
    if (s->opts->max_per_address == 0) {
        return true;
    }
    uint8_t key[16];
    addr_normalise(key, c->addr, c->ipv6);
    return addr_table_count(&s->per_address, key) < s->opts->max_per_address;
}

static bool accepted(server *s, client *c, wsfwd_conn *conn, const char *what)
{
    if (s->opts->max_per_address > 0) {
        uint8_t key[16];
        addr_normalise(key, c->addr, c->ipv6);
        if (addr_table_add(&s->per_address, key) != 0) {
            refuse(s, conn, 503, "out of memory");
            return false;
        }
        c->per_address = true;
    }
    c->websocket = true;
    s->nwebsockets++;
    rate_bucket_fill(&c->bucket, &s->rate, (uint32_t)s->now);
    (void)wsfwd_conn_accept(conn, NULL);
    char label[CLIENT_LABEL_MAX];
    LOG(LOG_DEBUG, "%s opened %s", client_label(s, c, label, sizeof label), what);
    return true;
}

void routes_forget(server *s, client *c)
{
    if (c->per_address) {
        uint8_t key[16];
        addr_normalise(key, c->addr, c->ipv6);
        addr_table_remove(&s->per_address, key);
        c->per_address = false;
    }
}

void routes_reload_keys(server *s)
{
    const options *o = s->opts;
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
    auth_keys_free(&s->keys);
    s->keys = fresh;
    LOG(LOG_INFO, "SIGHUP: re-read %zu room token key%s", fresh.n, fresh.n > 1 ? "s" : "");
}

int routes_on_request(wsfwd_conn *conn, const wsfwd_request *req, void *ud)
{
    server *s = ud;
    client *c = wsfwd_conn_user_data(conn);
    wsfwd_str path = wsfwd_request_path(req);
    if (!wsfwd_request_is_upgrade(req)) {
        route_plain(s, conn, req, path);
        return 0;
    }
    bool echo = str_is(path, "/echo");
    bool global = str_is(path, "/ws");
    bool room = path.len > 4 && memcmp(path.ptr, "/ws/", 4) == 0;
    if (!echo && !global && !room) {
        refuse(s, conn, 404, "no WebSocket at this path");
        return 0;
    }
    int check = wsfwd_request_check(req);
    if (check != WSFWD_OK) {
        refuse(s, conn, wsfwd_error_http_status(check), wsfwd_strerror(check));
        return 0;
    }
    if (!origin_allowed(s->opts, wsfwd_request_origin(req))) {
        refuse(s, conn, 403, "Origin not allowed");
        return 0;
    }
    char name[4096];
    size_t n = 0;
    /* Too long for name: refused as before, with 400 (--max-room-name is at most 4096). */
    if (room &&
        wsfwd_percent_decode(path.ptr + 4, path.len - 4, name, sizeof name, &n) != WSFWD_OK) {
        refuse(s, conn, 400, "bad percent-encoding in the room name");
        return 0;
    }
    if (s->keys.n > 0 && !authorised(s, conn, req, echo ? NULL : name, n)) {
        return 0;
    }
    if (s->opts->max_connections > 0 && s->nwebsockets >= s->opts->max_connections) {
        refuse(s, conn, 503, "too many connections");
        return 0;
    }
    if (!under_address_cap(s, c)) {
        s->stats.refused_per_address++;
        refuse(s, conn, 503, "too many connections from this address");
        return 0;
    }
    if (echo) {
        c->echo = true;
        accepted(s, c, conn, "echo");
        return 0;
    }
    int rc =
        global ? wsfwd_pool_join(s->global_pool, conn) : wsfwd_hub_join(s->rooms, conn, name, n);
    if (rc != WSFWD_OK) {
        refuse(s, conn, rc == WSFWD_ERR_POOL_NAME ? 400 : 503, wsfwd_strerror(rc));
        return 0;
    }
    if (!accepted(s, c, conn, global ? "in the global pool" : "in a room")) {
        wsfwd_conn_leave(conn);
    }
    return 0;
}
