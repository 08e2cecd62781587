/*
 * The server's counters and the /stats document. The counters are kept by the server (and
 * its routing, which counts refusals); stats_respond writes them, with the hubs' figures and
 * the cluster's own object, through the JSON writer.
 */
#ifndef WSFWD_CLI_STATS_H
#define WSFWD_CLI_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "wsfwd.h"

struct cluster;

/* HTTP statuses counted per cause in /stats. */
enum {
    REFUSED_400,
    REFUSED_401,
    REFUSED_403,
    REFUSED_404,
    REFUSED_405,
    REFUSED_426,
    REFUSED_431,
    REFUSED_503,
    REFUSED_OTHER,
    REFUSED_KINDS
};

/* Upper bounds of the message size histogram of /metrics, in bytes (then +Inf). */
#define STATS_SIZE_BOUNDS 8
extern const uint64_t stats_size_bound[STATS_SIZE_BOUNDS];

typedef struct stats_counters {
    uint64_t accepted;
    uint64_t messages_in;
    uint64_t bytes_in;
    uint64_t echoed;
    uint64_t echoed_bytes;
    uint64_t bytes_read;
    uint64_t bytes_written;
    uint64_t handshake_timeouts;
    uint64_t idle_timeouts;
    uint64_t protocol_errors;
    uint64_t echo_slow_closes;
    uint64_t echo_slow_drops;
    uint64_t paused_now;    /* clients not read now (flow control) */
    uint64_t pauses;        /* times a client stopped being read */
    uint64_t congested_now; /* open clients past the high mark, not yet cut */
    uint64_t cut_by_time;   /* slow readers cut by --slow-timeout (closed, or dropped from) */
    uint64_t cut_by_bytes;  /* slow readers cut by --max-queue */
    uint64_t refused_fd_limit;
    uint64_t refused[REFUSED_KINDS];
    uint64_t refused_auth[AUTH_CAUSES]; /* the 401 and 403 of room tokens, by cause */
    uint64_t refused_per_address;       /* 503: --max-connections-per-address */
    uint64_t rate_limited;              /* closed with 1008: --rate-limit */
    uint64_t inflated;                  /* messages received compressed */
    /* messages received by size: [i] at most stats_size_bound[i] and more than the bound
       before; [STATS_SIZE_BOUNDS] larger than every bound (not cumulative) */
    uint64_t message_sizes[STATS_SIZE_BOUNDS + 1];
    uint64_t forwarded;           /* clients named by X-Forwarded-For (--trust-proxy) */
    uint64_t forwarded_malformed; /* such headers not read: the proxy's address kept */
} stats_counters;

/* Count a refused request under its HTTP status. */
void stats_count_refusal(stats_counters *st, int status);

/* The status of a REFUSED_ kind as /stats and /metrics name it: "400", ..., "other". */
const char *stats_refused_name(int kind);

/* Count a message received: messages_in, bytes_in and its size's bucket. */
void stats_count_message(stats_counters *st, size_t len);

/* permessage-deflate, from the codec and the hubs (all 0 with --deflate off). */
typedef struct stats_deflate {
    bool enabled;
    uint64_t calls;           /* compressions */
    uint64_t bytes_in;        /* bytes given to those that made something shorter */
    uint64_t bytes_out;       /* what they made */
    uint64_t plain;           /* the others: sent plain */
    uint64_t sent_compressed; /* room and /ws deliveries sent compressed */
    uint64_t inflated;        /* messages received compressed */
    uint64_t inflate_streams; /* alive now */
} stats_deflate;

/* What /stats shows besides the counters. */
typedef struct stats_input {
    const stats_counters *counters;
    uint64_t uptime_ms;
    uint64_t start_time_ms; /* when the server started, in ms since the epoch */
    size_t connections;     /* accepted WebSocket connections */
    size_t tcp_connections;
    bool auth_required;
    const wsfwd_hub *rooms;
    const wsfwd_hub *global;
    const struct cluster *cluster; /* NULL without --redis */
    const stats_deflate *deflate;
} stats_input;

/* Answer GET /stats on conn (500 if the document does not fit). */
void stats_respond(wsfwd_conn *conn, const stats_input *in);

#endif
