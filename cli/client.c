/* Client bookkeeping: the peer's address and the label of the client's log lines. */
#include "client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

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

const char *client_label(const client *c, const wsfwd_hub *global, char *buf, size_t cap)
{
    char id[WSFWD_ID_LEN + 1] = "-";
    char host[INET6_ADDRSTRLEN];
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
    inet_ntop(c->ipv6 ? AF_INET6 : AF_INET, c->addr, host, sizeof host);
    snprintf(buf, cap, c->ipv6 ? "conn=%s peer=[%s]:%u room=%s" : "conn=%s peer=%s:%u room=%s", id,
             host, c->port, room);
    return buf;
}
