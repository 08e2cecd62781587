/*
 * Routing of requests (the library's on_request): /echo, /ws, /ws/<room>, the demo page,
 * /healthz, /stats and /metrics; room tokens (--auth-secret-file), the client's address behind
 * a trusted proxy (--trust-proxy) and the limits per connection and per address. Owns the
 * keys, the trusted prefixes, the per-address table and the count of WebSocket connections;
 * gets what else it needs from the server once, in a routes_env.
 */
#ifndef WSFWD_CLI_ROUTES_H
#define WSFWD_CLI_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "client.h"
#include "loop.h"
#include "options.h"
#include "quota.h"
#include "stats.h"
#include "wsfwd.h"

typedef struct routes routes;

typedef struct routes_env {
    const options *opts;
    const loop *lp;          /* the clock */
    wsfwd_hub *rooms;        /* /ws/<room> */
    wsfwd_hub *global;       /* /ws */
    wsfwd_pool *global_pool; /* the one pool of global */
    const rate_rule *rate;   /* --rate-limit, for a new connection's bucket */
    stats_counters *counters;
    void (*respond_stats)(void *ud, wsfwd_conn *conn); /* GET /stats */
    void *ud;
    void (*respond_metrics)(void *ud, wsfwd_conn *conn); /* GET /metrics */
} routes_env;

/* Load the --auth-secret-file keys and set up the tables. Prints why and returns -1 on error. */
int routes_open(routes **out, const routes_env *env);
void routes_free(routes *rt);

/* The library's on_request for a connection whose user data is its client. */
int routes_on_request(routes *rt, wsfwd_conn *conn, const wsfwd_request *req);

/* A client is gone: give back what it counted toward the limits (if it was a WebSocket). */
void routes_forget(routes *rt, client *c);

/* Re-read the --auth-secret-file keys (SIGHUP); on error the keys in use stay. */
void routes_reload_keys(routes *rt);

size_t routes_connections(const routes *rt); /* accepted WebSocket connections */
size_t routes_keys(const routes *rt);        /* room token keys (0: no tokens needed) */

#endif
