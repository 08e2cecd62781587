/* Command-line options of wsfwd. */
#ifndef WSFWD_CLI_OPTIONS_H
#define WSFWD_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "log.h"
#include "wsfwd.h"

#define MAX_LISTEN 16
#define MAX_ORIGINS 64

typedef struct options {
    const char *listen[MAX_LISTEN]; /* "ADDR:PORT" or "[V6ADDR]:PORT" */
    size_t nlisten;
    const char *origins[MAX_ORIGINS]; /* allowed Origin values; none: any */
    size_t norigins;
    size_t max_connections; /* 0: as many as descriptors allow */
    size_t max_per_address; /* WebSocket connections per client address; 0: no cap */
    const char *auth_files[AUTH_MAX_KEYS]; /* --auth-secret-file; none: no tokens needed */
    size_t nauth_files;
    size_t rate_limit; /* messages per second per connection; 0: no limit */
    size_t rate_burst; /* 0: as many as rate_limit */
    size_t max_message;
    size_t max_queue;
    wsfwd_slow_policy slow_policy;
    unsigned slow_timeout_ms; /* a room member congested this long gets the policy; 0: never */
    size_t max_header;
    size_t max_rooms;
    size_t max_room_name;
    size_t max_room_members; /* 0: no cap */
    unsigned handshake_timeout_ms;
    unsigned idle_timeout_ms; /* 0: off */
    unsigned pong_timeout_ms;
    unsigned close_timeout_ms;
    unsigned shutdown_timeout_ms;
    log_level log_level;
    const char *redis;         /* --redis HOST:PORT or URL (cluster.c); NULL: a lone node */
    bool redis_local_first;    /* --redis-order local-first */
    size_t redis_max_inflight; /* bytes of local messages on their way through Redis */
    unsigned redis_timeout_ms;
    const char *redis_password_file; /* AUTH password from a file, not the command line */
} options;

/*
 * Parse argv into opts (defaults first). Returns 0 to run, 1 when --help or --version was
 * handled (exit 0), or 2 after printing an error (exit 2).
 */
int options_parse(options *opts, int argc, char **argv);

#endif
