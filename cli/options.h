/*
 * Command-line options of wsfwd: the options struct the rest of cli/ reads, and the table
 * (cli/options.c) that parses them and writes --help. One row per flag; docs/wsfwd.1 lists
 * the same flags, and tests/unit/test_options.c checks that the two agree.
 */
#ifndef WSFWD_CLI_OPTIONS_H
#define WSFWD_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "auth.h"
#include "forwarded.h"
#include "log.h"
#include "wsfwd.h"

#define MAX_LISTEN 16
#define MAX_ORIGINS 64

typedef struct options {
    const char *listen[MAX_LISTEN]; /* "ADDR:PORT" or "[V6ADDR]:PORT" */
    size_t nlisten;
    const char *listen_tls[MAX_LISTEN]; /* --listen-tls: the same, speaking TLS (tls.c) */
    size_t nlisten_tls;
    const char *tls_cert; /* PEM chain, leaf first; needed with --listen-tls */
    const char *tls_key;  /* PEM private key */
    bool reuse_port;      /* SO_REUSEPORT on every listener: several processes on one port */
    const char *origins[MAX_ORIGINS]; /* allowed Origin values; none: any */
    size_t norigins;
    size_t max_connections;                /* 0: as many as descriptors allow */
    size_t max_per_address;                /* WebSocket connections per client address; 0: no cap */
    const char *auth_files[AUTH_MAX_KEYS]; /* --auth-secret-file; none: no tokens needed */
    size_t nauth_files;
    const char *trust_proxy[TRUST_PROXY_MAX]; /* --trust-proxy ADDR[/LEN]; none: no proxy */
    size_t ntrust_proxy;
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
    log_format log_format;     /* --log-format */
    bool io_epoll;             /* --io epoll: loop.c's epoll backend rather than poll() */
    const char *redis;         /* --redis HOST:PORT or URL (cluster.c); NULL: a lone node */
    bool redis_local_first;    /* --redis-order local-first */
    size_t redis_max_inflight; /* bytes of local messages on their way through Redis */
    unsigned redis_timeout_ms;
    const char *redis_password_file; /* AUTH password from a file, not the command line */
    bool deflate;                    /* permessage-deflate (compress.c) */
    bool deflate_client_reset;       /* ask clients for client_no_context_takeover */
    size_t deflate_level;            /* zlib's 1..9 */
    size_t deflate_min_size;         /* messages shorter go uncompressed */
} options;

typedef enum option_kind {
    OPTION_FLAG,   /* no value: run() prints to standard output, then wsfwd exits 0 */
    OPTION_NUMBER, /* a whole number from min to max, into a size_t */
    OPTION_MS,     /* milliseconds from min to max, into an unsigned */
    OPTION_CHOICE, /* one of choices; pick() stores the index's meaning */
    OPTION_TEXT,   /* kept as given (a pointer into argv); the last one given counts */
    OPTION_LIST,   /* kept as given, appended to an array of at most max values */
} option_kind;

/* One flag: how it is parsed, where its value goes, and what --help says of it. */
typedef struct option_spec {
    const char *name;  /* "--max-rooms" */
    const char *alias; /* a short spelling ("-h"), or NULL */
    const char *arg;   /* the value's name in --help and wsfwd(1) ("N", "close|drop"); NULL */
    option_kind kind;
    size_t min, max;            /* NUMBER and MS: the range; LIST: the most values */
    const char *def;            /* the default, parsed like a given value (LIST: used when none is
                                   given); NULL: none */
    const char *def_note;       /* printed after "(default DEF": ": no cap", "; 0: off"; NULL */
    const char *help;           /* what it does, for --help, without the default */
    size_t field;               /* NUMBER, MS, TEXT, LIST (the array): offsetof(options, ...) */
    size_t count;               /* LIST: offsetof(options, the count) */
    const char *const *choices; /* CHOICE: NULL-terminated */
    void (*pick)(options *o, size_t index);     /* CHOICE: store choices[index] */
    int (*check)(const char *value, FILE *err); /* TEXT, LIST: more than "not empty"; prints
                                                   why and returns -1 when value is bad */
    void (*run)(FILE *out);                     /* FLAG */
    const char *many;  /* LIST: what the values are, in "at most MAX NAME MANY" */
    bool path;         /* TEXT, LIST: a path, so not empty */
    const char *needs; /* "hiredis", "zlib", "openssl": an optional library, or "epoll" (Linux
                          only); --help says when this build has none */
} option_spec;

/* Whether this build has what a row needs ("hiredis", "zlib", "openssl", "epoll"). */
bool options_built_with(const char *library);

/* The table, in --help's order; *n gets its length. */
const option_spec *options_table(size_t *n);

/*
 * Parse argv into opts (defaults first). Returns 0 to run, 1 when --help or --version was
 * handled (exit 0), or 2 after printing an error (exit 2).
 */
int options_parse(options *opts, int argc, char **argv);

/* options_parse, printing --help and --version to out and errors to err. */
int options_parse_to(options *opts, int argc, char **argv, FILE *out, FILE *err);

#endif
