/* The shared configuration: limits, callbacks, allocator and randomness. */
#ifndef WSFWD_LIB_CONFIG_H
#define WSFWD_LIB_CONFIG_H

#include "outq.h"
#include "wsfwd.h"

#define WSFWD_DEFAULT_MAX_MESSAGE ((size_t)1 << 20)
#define WSFWD_DEFAULT_MAX_HEADER ((size_t)8192)
#define WSFWD_DEFAULT_MAX_QUEUE ((size_t)1 << 20)
#define WSFWD_RING_CACHE_BYTES ((size_t)4 << 20)
#define WSFWD_DEFAULT_SLOW_TIMEOUT_MS 5000
#define WSFWD_DEFAULT_DEFLATE_MIN_SIZE ((size_t)64)

struct wsfwd_config {
    wsfwd_allocator alloc;
    size_t max_message;
    size_t max_header;
    size_t max_queue;
    wsfwd_slow_policy slow_policy;
    size_t high_mark;              /* a queue above it is congested: its senders are paced */
    size_t low_mark;               /* ... until it is back at or below this */
    bool marks_set;                /* set by the caller, else derived from max_queue */
    uint32_t slow_timeout_ms;      /* congested this long: the slow-reader policy (0: never) */
    uint32_t handshake_timeout_ms; /* the deadlines of wsfwd_conn_tick (0: off, the default) */
    uint32_t idle_timeout_ms;
    uint32_t pong_timeout_ms;
    uint32_t close_timeout_ms;
    wsfwd_random_fn random;
    void *random_ud;
    /* Connection ids (conn.c): a key drawn from the random source by the first connection,
       and the serial number of the next one. */
    uint64_t id_key[2];
    uint64_t id_next;
    bool id_keyed;
    void *user_data;

    wsfwd_on_request_fn on_request;
    wsfwd_on_open_fn on_open;
    wsfwd_on_message_fn on_message;
    wsfwd_on_control_fn on_control;
    wsfwd_on_close_fn on_close;
    wsfwd_on_output_fn on_output;
    wsfwd_on_flow_fn on_flow;

    /* Output-queue rings of connections that fell behind, kept for the next backlog. */
    wsfwd_ringcache rings;

    /* permessage-deflate: the codec (has_deflate), what is asked and accepted, and the
       scratch buffer messages are compressed into (lib/pmdconn.c). */
    bool has_deflate;
    bool deflate_client_no_context; /* ask clients for client_no_context_takeover */
    uint8_t deflate_server_bits;
    uint8_t deflate_client_bits;
    uint8_t spare_bits;   /* the window of spare_stream */
    void *spare_stream;   /* an inflate stream kept for peers without context takeover */
    size_t deflate_conns; /* connections that negotiated with the codec: it cannot change */
    size_t deflate_min_size;
    uint8_t *zbuf;
    size_t zbuf_cap;
    wsfwd_deflate_codec codec;

    /* Random bytes fetched ahead, so a client mask costs no system call. */
    uint8_t pool[256];
    size_t pool_left;
};

/* Free the spare inflate stream, if any. */
void wsfwd_config_drop_spare(wsfwd_config *cfg);

/* Fill buf with len random bytes. Returns WSFWD_OK or WSFWD_ERR_RANDOM. */
int wsfwd_config_random(wsfwd_config *cfg, void *buf, size_t len);

#endif
