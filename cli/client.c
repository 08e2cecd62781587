/* Client bookkeeping: the peer's address (or, behind a trusted proxy, the client's) and the
   label of the client's log lines. */
#include "client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* An idle connection's bytes (issue 17): the struct fills exactly 64 bytes of glibc's heap. */
_Static_assert(sizeof(void *) != 8 || sizeof(client) <= 56, "client grew past 56 bytes");

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
    c->forwarded = false;
}

const char *client_peer(const client *c, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    inet_ntop(c->ipv6 ? AF_INET6 : AF_INET, c->addr, host, sizeof host);
    if (c->forwarded) {
        snprintf(buf, cap, "%s", host);
    } else {
        snprintf(buf, cap, c->ipv6 ? "[%s]:%u" : "%s:%u", host, c->port);
    }
    return buf;
}

void client_set_forwarded(client *c, const uint8_t addr[16])
{
    c->ipv6 = !addr_is_ipv4(addr);
    memcpy(c->addr, c->ipv6 ? addr : addr + 12, c->ipv6 ? 16 : 4);
    c->forwarded = true;
}

const char *client_label(const client *c, const wsfwd_hub *global, char *buf, size_t cap)
{
    char id[WSFWD_ID_LEN + 1] = "-";
    char peer[INET6_ADDRSTRLEN + 8];
    char room[64] = "-";
    if (c->conn != NULL) {
        wsfwd_conn_id(c->conn, id);
        wsfwd_pool *pool = wsfwd_conn_pool(c->conn);
        if (c->echo) {
            snprintf(room, sizeof room, "(echo)");
        } else if (pool != NULL && wsfwd_pool_hub(pool) == global) {
            snprintf(room, sizeof room, "(global)");
        } else if (pool != NULL) {
            wsfwd_str name = wsfwd_pool_name(pool);
            log_escape_value(name.ptr, name.len, room, sizeof room);
        }
    }
    snprintf(buf, cap, "conn=%s peer=%s%s room=%s", id, client_peer(c, peer, sizeof peer),
             c->forwarded ? " via=proxy" : "", room);
    return buf;
}
