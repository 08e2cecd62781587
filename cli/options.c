/*
 * wsfwd's options, parsed from one table (TABLE below): each row names a flag, its value's
 * kind and limits, its default, its --help text and where its value goes. The parser, the
 * defaults and --help all read the table; tests/unit/test_options.c checks it against
 * docs/wsfwd.1. Owns nothing at run time: the values point into argv.
 */
#include "options.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_proto.h"
#include "forwarded.h"
#include "quota.h"

#ifdef WSFWD_HAVE_HIREDIS
#define HAVE_HIREDIS 1
#else
#define HAVE_HIREDIS 0
#endif
#ifdef WSFWD_HAVE_DEFLATE
#define HAVE_DEFLATE 1
#else
#define HAVE_DEFLATE 0
#endif
#ifdef WSFWD_HAVE_TLS
#define HAVE_TLS 1
#else
#define HAVE_TLS 0
#endif

#ifdef __linux__
#define HAVE_EPOLL 1 /* loop.c's epoll backend */
#else
#define HAVE_EPOLL 0
#endif

#define MS_MAX 86400000u   /* a day: the longest time any option takes */
#define OPTION_NAME_MAX 64 /* a longer name is unknown, and reported with its value */
#define HELP_COLUMN 30     /* where --help's descriptions start */
#define HELP_WIDTH 80      /* and where they wrap */
#define HELP_TEXT_MAX 512  /* one description with its default */

#define FIELD(name) offsetof(options, name)

static const char *const SLOW_POLICIES[] = {"close", "drop", NULL};
static const char *const REDIS_ORDERS[] = {"one", "local-first", NULL};
static const char *const LOG_LEVELS[] = {"error", "warn", "info", "debug", NULL}; /* log.h */
static const char *const LOG_FORMATS[] = {"text", "json", NULL};                  /* log.h */
static const char *const ON_OFF[] = {"on", "off", NULL};
static const char *const CLIENT_CONTEXTS[] = {"keep", "reset", NULL};
static const char *const IO_BACKENDS[] = {"poll", "epoll", NULL};

static void pick_reuse_port(options *o, size_t i)
{
    o->reuse_port = i == 0;
}

static void pick_slow_policy(options *o, size_t i)
{
    o->slow_policy = i == 0 ? WSFWD_SLOW_CLOSE : WSFWD_SLOW_DROP;
}

static void pick_redis_order(options *o, size_t i)
{
    o->redis_local_first = i == 1;
}

static void pick_deflate(options *o, size_t i)
{
    o->deflate = i == 0;
}

static void pick_client_context(options *o, size_t i)
{
    o->deflate_client_reset = i == 1;
}

static void pick_io(options *o, size_t i)
{
    o->io_epoll = i == 1;
}

static void pick_log_level(options *o, size_t i)
{
    o->log_level = (log_level)i; /* LOG_LEVELS is in log_level's order */
}

static void pick_log_format(options *o, size_t i)
{
    o->log_format = (log_format)i; /* LOG_FORMATS is in log_format's order */
}

static int check_redis(const char *value, FILE *err)
{
    if (!HAVE_HIREDIS) {
        fprintf(err, "wsfwd: --redis: this wsfwd was built without Redis support "
                     "(install libhiredis-dev and rebuild; see README.md)\n");
        return -1;
    }
    cluster_url url;
    const char *why = NULL;
    if (cluster_url_parse(value, &url, &why) != 0) {
        /* Not echoed when it may hold a password. */
        fprintf(err,
                "wsfwd: --redis '%s': %s (HOST:PORT or redis://[:PASSWORD@]HOST[:PORT][/DB])\n",
                strchr(value, '@') != NULL ? "..." : value, why);
        return -1;
    }
    return 0;
}

static int check_tls(const char *value, FILE *err)
{
    (void)value;
    if (!HAVE_TLS) {
        fprintf(err, "wsfwd: --listen-tls, --tls-cert, --tls-key: this wsfwd was built without "
                     "TLS (install libssl-dev and rebuild; see README.md)\n");
        return -1;
    }
    return 0;
}

static int check_trust_proxy(const char *value, FILE *err)
{
    addr_prefix p;
    const char *why = addr_prefix_parse(value, strlen(value), &p);
    if (why != NULL) {
        fprintf(err, "wsfwd: --trust-proxy '%s': %s (ADDR or ADDR/LEN, IPv4 or IPv6)\n", value,
                why);
        return -1;
    }
    return 0;
}

static void print_version(FILE *out)
{
    fprintf(out, "wsfwd %s\n", wsfwd_version());
}

static void print_help(FILE *out);

static const option_spec TABLE[] = {
    {.name = "--listen",
     .arg = "ADDR:PORT",
     .kind = OPTION_LIST,
     .max = MAX_LISTEN,
     .field = FIELD(listen),
     .count = FIELD(nlisten),
     .many = "addresses",
     .def = "127.0.0.1:8080",
     .def_note = "; port 0 picks a free one",
     .help = "address to listen on, IPv4 or [IPv6]; may repeat"},
    {.name = "--listen-tls",
     .arg = "ADDR:PORT",
     .kind = OPTION_LIST,
     .max = MAX_LISTEN,
     .field = FIELD(listen_tls),
     .count = FIELD(nlisten_tls),
     .many = "addresses",
     .check = check_tls,
     .needs = "openssl",
     .def_note = ": none; given alone, no plain --listen either",
     .help = "address to listen on with TLS (wss://, https://), with --tls-cert and --tls-key; "
             "may repeat"},
    {.name = "--tls-cert",
     .arg = "PATH",
     .kind = OPTION_TEXT,
     .field = FIELD(tls_cert),
     .path = true,
     .check = check_tls,
     .needs = "openssl",
     .def_note = ": none",
     .help = "the certificate chain of --listen-tls (PEM, leaf first); re-read on SIGHUP"},
    {.name = "--tls-key",
     .arg = "PATH",
     .kind = OPTION_TEXT,
     .field = FIELD(tls_key),
     .path = true,
     .check = check_tls,
     .needs = "openssl",
     .def_note = ": none",
     .help = "the private key of --tls-cert (PEM); re-read on SIGHUP"},
    {.name = "--reuse-port",
     .arg = "on|off",
     .kind = OPTION_CHOICE,
     .choices = ON_OFF,
     .pick = pick_reuse_port,
     .def = "off",
     .help = "set SO_REUSEPORT on every listener, so that several wsfwd processes (each with "
             "it on) share a port and the kernel spreads connections among them; join them "
             "with --redis"},
    {.name = "--io",
     .arg = "poll|epoll",
     .kind = OPTION_CHOICE,
     .choices = IO_BACKENDS,
     .pick = pick_io,
     .needs = "epoll",
     .def = "poll",
     .help = "how the loop waits for sockets: poll() everywhere, or epoll (Linux), cheaper "
             "with many busy connections"},
    {.name = "--max-connections",
     .arg = "N",
     .kind = OPTION_NUMBER,
     .min = 0,
     .max = INT_MAX,
     .field = FIELD(max_connections),
     .def = "0",
     .def_note = ": as many as file descriptors allow",
     .help = "refuse handshakes past N connections with 503"},
    {.name = "--max-connections-per-address",
     .arg = "N",
     .kind = OPTION_NUMBER,
     .min = 0,
     .max = INT_MAX,
     .field = FIELD(max_per_address),
     .def = "0",
     .def_note = ": no cap",
     .help = "refuse handshakes past N connections from one client address with 503"},
    {.name = "--trust-proxy",
     .arg = "ADDR[/LEN]",
     .kind = OPTION_LIST,
     .max = TRUST_PROXY_MAX,
     .field = FIELD(trust_proxy),
     .count = FIELD(ntrust_proxy),
     .check = check_trust_proxy,
     .many = "proxies",
     .def_note = ": none, X-Forwarded-For is ignored",
     .help = "a proxy (an address or a prefix) whose X-Forwarded-For names the client, for "
             "the per-address limit and the logs; may repeat"},
    {.name = "--max-message",
     .arg = "BYTES",
     .kind = OPTION_NUMBER,
     .min = 1,
     .max = (size_t)1 << 31,
     .field = FIELD(max_message),
     .def = "1048576",
     .help = "largest message accepted"},
    {.name = "--max-queue",
     .arg = "BYTES",
     .kind = OPTION_NUMBER,
     .min = 1024,
     .max = (size_t)1 << 31,
     .field = FIELD(max_queue),
     .def = "1048576",
     .help = "output queued per connection before the slow-reader policy applies; past half "
             "of it the room's senders are paced (not read) until it drains to an eighth"},
    {.name = "--slow-timeout",
     .arg = "MS",
     .kind = OPTION_MS,
     .min = 0,
     .max = MS_MAX,
     .field = FIELD(slow_timeout_ms),
     .def = "5000",
     .def_note = "; 0: only --max-queue applies",
     .help = "a room member whose backlog stays past half of --max-queue this long gets the "
             "slow-reader policy"},
    {.name = "--slow-policy",
     .arg = "close|drop",
     .kind = OPTION_CHOICE,
     .choices = SLOW_POLICIES,
     .pick = pick_slow_policy,
     .def = "close",
     .help = "close slow readers with 1008, or drop messages for them"},
    {.name = "--max-header",
     .arg = "BYTES",
     .kind = OPTION_NUMBER,
     .min = 256,
     .max = (size_t)1 << 20,
     .field = FIELD(max_header),
     .def = "8192",
     .help = "largest handshake header block"},
    {.name = "--max-rooms",
     .arg = "N",
     .kind = OPTION_NUMBER,
     .min = 1,
     .max = (size_t)1 << 30,
     .field = FIELD(max_rooms),
     .def = "100000",
     .help = "most rooms at once"},
    {.name = "--max-room-name",
     .arg = "BYTES",
     .kind = OPTION_NUMBER,
     .min = 1,
     .max = 4096,
     .field = FIELD(max_room_name),
     .def = "128",
     .help = "longest room name"},
    {.name = "--max-room-members",
     .arg = "N",
     .kind = OPTION_NUMBER,
     .min = 0,
     .max = INT_MAX,
     .field = FIELD(max_room_members),
     .def = "0",
     .def_note = ": no cap",
     .help = "most members per room, and in /ws"},
    {.name = "--allow-origin",
     .arg = "ORIGIN",
     .kind = OPTION_LIST,
     .max = MAX_ORIGINS,
     .field = FIELD(origins),
     .count = FIELD(norigins),
     .many = "values",
     .def_note = ": any Origin",
     .help = "accept only handshakes with this Origin; may repeat"},
    {.name = "--auth-secret-file",
     .arg = "PATH",
     .kind = OPTION_LIST,
     .max = AUTH_MAX_KEYS,
     .field = FIELD(auth_files),
     .count = FIELD(nauth_files),
     .path = true,
     .many = "keys (the current one and, while rotating, the other)",
     .def_note = ": none, no token needed",
     .help = "require a room token (JWT, HS256) signed with the key in PATH on every "
             "WebSocket; give it twice while rotating keys; SIGHUP re-reads the files"},
    {.name = "--rate-limit",
     .arg = "N",
     .kind = OPTION_NUMBER,
     .min = 0,
     .max = RATE_MAX,
     .field = FIELD(rate_limit),
     .def = "0",
     .def_note = ": no limit",
     .help = "close a connection sending over N messages a second with 1008"},
    {.name = "--rate-burst",
     .arg = "N",
     .kind = OPTION_NUMBER,
     .min = 1,
     .max = RATE_MAX,
     .field = FIELD(rate_burst),
     .def_note = ": N of --rate-limit",
     .help = "messages a connection may send at once within --rate-limit"},
    {.name = "--deflate",
     .arg = "on|off",
     .kind = OPTION_CHOICE,
     .choices = ON_OFF,
     .pick = pick_deflate,
     .needs = "zlib",
     .def = HAVE_DEFLATE ? "on" : "off",
     .help = "answer permessage-deflate offers (RFC 7692): each broadcast compressed once"},
    {.name = "--deflate-level",
     .arg = "N",
     .kind = OPTION_NUMBER,
     .min = 1,
     .max = 9,
     .field = FIELD(deflate_level),
     .needs = "zlib",
     .def = "1",
     .help = "zlib's compression level: 1 fastest, 9 smallest"},
    {.name = "--deflate-min-size",
     .arg = "BYTES",
     .kind = OPTION_NUMBER,
     .min = 0,
     .max = (size_t)1 << 31,
     .field = FIELD(deflate_min_size),
     .needs = "zlib",
     .def = "64",
     .help = "messages shorter than this are sent uncompressed"},
    {.name = "--deflate-client-context",
     .arg = "keep|reset",
     .kind = OPTION_CHOICE,
     .choices = CLIENT_CONTEXTS,
     .pick = pick_client_context,
     .needs = "zlib",
     .def = "keep",
     .help = "keep: let clients compress against their earlier messages (an inflate stream "
             "of about 40 KiB kept per such client); reset: ask them not to "
             "(client_no_context_takeover)"},
    {.name = "--handshake-timeout",
     .arg = "MS",
     .kind = OPTION_MS,
     .min = 1,
     .max = MS_MAX,
     .field = FIELD(handshake_timeout_ms),
     .def = "10000",
     .help = "drop a connection that has not completed its handshake in time"},
    {.name = "--idle-timeout",
     .arg = "MS",
     .kind = OPTION_MS,
     .min = 0,
     .max = MS_MAX,
     .field = FIELD(idle_timeout_ms),
     .def = "60000",
     .def_note = "; 0: never",
     .help = "ping a connection idle this long"},
    {.name = "--pong-timeout",
     .arg = "MS",
     .kind = OPTION_MS,
     .min = 1,
     .max = MS_MAX,
     .field = FIELD(pong_timeout_ms),
     .def = "10000",
     .help = "drop a pinged connection, with 1001, if no data or pong follows"},
    {.name = "--close-timeout",
     .arg = "MS",
     .kind = OPTION_MS,
     .min = 1,
     .max = MS_MAX,
     .field = FIELD(close_timeout_ms),
     .def = "5000",
     .help = "wait for a closing handshake"},
    {.name = "--shutdown-timeout",
     .arg = "MS",
     .kind = OPTION_MS,
     .min = 0,
     .max = MS_MAX,
     .field = FIELD(shutdown_timeout_ms),
     .def = "5000",
     .help = "on SIGINT/SIGTERM, wait for clients to close"},
    {.name = "--log-level",
     .arg = "LEVEL",
     .kind = OPTION_CHOICE,
     .choices = LOG_LEVELS,
     .pick = pick_log_level,
     .def = "info",
     .help = "error, warn, info or debug"},
    {.name = "--log-format",
     .arg = "text|json",
     .kind = OPTION_CHOICE,
     .choices = LOG_FORMATS,
     .pick = pick_log_format,
     .def = "text",
     .help = "text: one line of key=value words and a message; json: one JSON object a line"},
    {.name = "--redis",
     .arg = "HOST:PORT|URL",
     .kind = OPTION_TEXT,
     .field = FIELD(redis),
     .check = check_redis,
     .needs = "hiredis",
     .def_note = ": none, a node alone",
     .help = "share rooms with the other nodes on this Redis; URL: "
             "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]"},
    {.name = "--redis-order",
     .arg = "one|local-first",
     .kind = OPTION_CHOICE,
     .choices = REDIS_ORDERS,
     .pick = pick_redis_order,
     .needs = "hiredis",
     .def = "one",
     .help = "one: one order per room on every node; local-first: local members first, "
             "without that guarantee"},
    {.name = "--redis-max-inflight",
     .arg = "BYTES",
     .kind = OPTION_NUMBER,
     .min = 1024,
     .max = (size_t)1 << 34,
     .field = FIELD(redis_max_inflight),
     .needs = "hiredis",
     .def = "16777216",
     .help = "local messages on their way through Redis before more stay local"},
    {.name = "--redis-timeout",
     .arg = "MS",
     .kind = OPTION_MS,
     .min = 10,
     .max = MS_MAX,
     .field = FIELD(redis_timeout_ms),
     .needs = "hiredis",
     .def = "2000",
     .help = "connect and PING timeout"},
    {.name = "--redis-password-file",
     .arg = "PATH",
     .kind = OPTION_TEXT,
     .field = FIELD(redis_password_file),
     .path = true,
     .needs = "hiredis",
     .def_note = ": the URL's, if any",
     .help = "the Redis password, read from PATH rather than given in the URL; needs --redis"},
    {.name = "--version",
     .kind = OPTION_FLAG,
     .run = print_version,
     .help = "print the version and exit"},
    {.name = "--help",
     .alias = "-h",
     .kind = OPTION_FLAG,
     .run = print_help,
     .help = "print this help and exit"},
};

#define TABLE_LEN (sizeof TABLE / sizeof TABLE[0])

bool options_built_with(const char *library)
{
    if (strcmp(library, "hiredis") == 0) {
        return HAVE_HIREDIS;
    }
    if (strcmp(library, "openssl") == 0) {
        return HAVE_TLS;
    }
    if (strcmp(library, "epoll") == 0) {
        return HAVE_EPOLL;
    }
    return strcmp(library, "zlib") == 0 && HAVE_DEFLATE;
}

const option_spec *options_table(size_t *n)
{
    *n = TABLE_LEN;
    return TABLE;
}

static void *field_of(options *o, size_t offset)
{
    return (char *)o + offset;
}

/* The row of a flag that takes no value, given exactly (not --help=x). */
static const option_spec *find_flag(const char *arg)
{
    for (size_t i = 0; i < TABLE_LEN; i++) {
        const option_spec *r = &TABLE[i];
        if (r->kind == OPTION_FLAG &&
            (strcmp(arg, r->name) == 0 || (r->alias != NULL && strcmp(arg, r->alias) == 0))) {
            return r;
        }
    }
    return NULL;
}

/* The row of an option that takes a value, by its name's first len bytes of arg. */
static const option_spec *find_valued(const char *arg, size_t len)
{
    for (size_t i = 0; i < TABLE_LEN; i++) {
        const option_spec *r = &TABLE[i];
        if (r->kind != OPTION_FLAG && strlen(r->name) == len && memcmp(arg, r->name, len) == 0) {
            return r;
        }
    }
    return NULL;
}

static int parse_size(const char *name, const char *s, size_t min, size_t max, size_t *out,
                      FILE *err)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] == '\0' || s[0] == '-' || *end != '\0' || errno != 0 || v < min || v > max) {
        fprintf(err, "wsfwd: %s needs a whole number from %zu to %zu, not '%s'\n", name, min, max,
                s);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

/* "a, b or c" */
static void print_choices(FILE *err, const char *const *choices)
{
    for (size_t i = 0; choices[i] != NULL; i++) {
        const char *sep = i == 0 ? "" : choices[i + 1] == NULL ? " or " : ", ";
        fprintf(err, "%s%s", sep, choices[i]);
    }
}

static int set_choice(options *o, const option_spec *r, const char *value, FILE *err)
{
    for (size_t i = 0; r->choices[i] != NULL; i++) {
        if (strcmp(value, r->choices[i]) == 0) {
            r->pick(o, i);
            return 0;
        }
    }
    fprintf(err, "wsfwd: %s is ", r->name);
    print_choices(err, r->choices);
    fprintf(err, ", not '%s'\n", value);
    return -1;
}

static int set_text(options *o, const option_spec *r, const char *value, FILE *err)
{
    if (r->path && value[0] == '\0') {
        fprintf(err, "wsfwd: %s needs a path\n", r->name);
        return -1;
    }
    if (r->check != NULL && r->check(value, err) != 0) {
        return -1;
    }
    *(const char **)field_of(o, r->field) = value;
    return 0;
}

static int add_to_list(options *o, const option_spec *r, const char *value, FILE *err)
{
    size_t *n = field_of(o, r->count);
    if (*n == r->max) {
        fprintf(err, "wsfwd: at most %zu %s %s\n", r->max, r->name, r->many);
        return -1;
    }
    if (r->path && value[0] == '\0') {
        fprintf(err, "wsfwd: %s needs a path\n", r->name);
        return -1;
    }
    if (r->check != NULL && r->check(value, err) != 0) {
        return -1;
    }
    ((const char **)field_of(o, r->field))[(*n)++] = value;
    return 0;
}

/* Store value as r says, or print why not and return -1. */
static int apply(options *o, const option_spec *r, const char *value, FILE *err)
{
    size_t v;
    switch (r->kind) {
    case OPTION_NUMBER:
        return parse_size(r->name, value, r->min, r->max, field_of(o, r->field), err);
    case OPTION_MS:
        if (parse_size(r->name, value, r->min, r->max, &v, err) != 0) {
            return -1;
        }
        *(unsigned *)field_of(o, r->field) = (unsigned)v;
        return 0;
    case OPTION_CHOICE: return set_choice(o, r, value, err);
    case OPTION_TEXT: return set_text(o, r, value, err);
    case OPTION_LIST: return add_to_list(o, r, value, err);
    case OPTION_FLAG: break;
    }
    return -1;
}

/* Every single value's default, through the parser; lists get theirs in finish(). */
static void set_defaults(options *o, FILE *err)
{
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < TABLE_LEN; i++) {
        const option_spec *r = &TABLE[i];
        if (r->def != NULL && r->kind != OPTION_LIST) {
            (void)apply(o, r, r->def, err); /* tests/unit/test_options.c: they all parse */
        }
    }
}

/* What one option cannot check alone, and the defaults that depend on what was given. */
static int finish(options *o, FILE *err)
{
    if (o->redis_password_file != NULL && o->redis == NULL) {
        fprintf(err, "wsfwd: --redis-password-file needs --redis\n");
        return 2;
    }
    if (o->deflate && !HAVE_DEFLATE) {
        fprintf(err, "wsfwd: --deflate on: this wsfwd was built without permessage-deflate "
                     "(install zlib1g-dev and rebuild; see README.md)\n");
        return 2;
    }
    if (o->io_epoll && !HAVE_EPOLL) {
        fprintf(err, "wsfwd: --io epoll: epoll is Linux only; use --io poll (the default)\n");
        return 2;
    }
    if (o->nlisten_tls > 0 && (o->tls_cert == NULL || o->tls_key == NULL)) {
        fprintf(err, "wsfwd: --listen-tls needs --tls-cert and --tls-key\n");
        return 2;
    }
    if (o->nlisten_tls == 0 && (o->tls_cert != NULL || o->tls_key != NULL)) {
        fprintf(err, "wsfwd: --tls-cert and --tls-key need --listen-tls\n");
        return 2;
    }
    if (o->rate_burst > 0 && o->rate_limit == 0) {
        fprintf(err, "wsfwd: --rate-burst needs --rate-limit\n");
        return 2;
    }
    if (o->rate_burst == 0) {
        o->rate_burst = o->rate_limit;
    }
    for (size_t i = 0; i < TABLE_LEN; i++) {
        const option_spec *r = &TABLE[i];
        bool tls_only = r->field == FIELD(listen) && o->nlisten_tls > 0;
        if (r->kind == OPTION_LIST && r->def != NULL && *(size_t *)field_of(o, r->count) == 0 &&
            !tls_only) {
            (void)add_to_list(o, r, r->def, err);
        }
    }
    return 0;
}

int options_parse_to(options *o, int argc, char **argv, FILE *out, FILE *err)
{
    set_defaults(o, err);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const option_spec *flag = find_flag(arg);
        if (flag != NULL) {
            flag->run(out);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(err, "wsfwd: unexpected argument '%s' (see --help)\n", arg);
            return 2;
        }
        /* Every other option takes a value: --name VALUE or --name=VALUE. */
        const char *eq = strchr(arg, '=');
        size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        if (len >= OPTION_NAME_MAX) {
            fprintf(err, "wsfwd: unknown option '%s' (see --help)\n", arg);
            return 2;
        }
        if (eq == NULL && i + 1 >= argc) {
            fprintf(err, "wsfwd: %s needs a value (see --help)\n", arg);
            return 2;
        }
        const char *value = eq != NULL ? eq + 1 : argv[++i];
        const option_spec *r = find_valued(arg, len);
        if (r == NULL) {
            fprintf(err, "wsfwd: unknown option '%.*s' (see --help)\n", (int)len, arg);
            return 2;
        }
        if (apply(o, r, value, err) != 0) {
            return 2;
        }
    }
    return finish(o, err);
}

int options_parse(options *o, int argc, char **argv)
{
    return options_parse_to(o, argc, argv, stdout, stderr);
}

/* text's words from column col, wrapped at HELP_WIDTH with HELP_COLUMN's indent. */
static void print_wrapped(FILE *out, const char *text, size_t col)
{
    size_t on_line = 0; /* words on this line */
    while (*text != '\0') {
        size_t n = strcspn(text, " ");
        if (on_line > 0 && col + 1 + n > HELP_WIDTH) {
            fputc('\n', out);
            col = 0;
            on_line = 0;
        }
        if (on_line == 0) {
            fprintf(out, "%*s", (int)(HELP_COLUMN - col), "");
            col = HELP_COLUMN;
        } else {
            fputc(' ', out);
            col++;
        }
        fwrite(text, 1, n, out);
        col += n;
        on_line++;
        text += n + strspn(text + n, " ");
    }
    fputc('\n', out);
}

static void print_entry(FILE *out, const option_spec *r)
{
    char head[OPTION_NAME_MAX + 32];
    if (r->alias != NULL) {
        snprintf(head, sizeof head, "%s, %s", r->alias, r->name);
    } else {
        snprintf(head, sizeof head, "%s%s%s", r->name, r->arg != NULL ? " " : "",
                 r->arg != NULL ? r->arg : "");
    }
    size_t col = 2 + strlen(head);
    fprintf(out, "  %s", head);
    if (col + 2 > HELP_COLUMN) {
        fputc('\n', out);
        col = 0;
    }
    char text[HELP_TEXT_MAX];
    if (r->def != NULL || r->def_note != NULL) {
        snprintf(text, sizeof text, "%s (default%s%s%s)", r->help, r->def != NULL ? " " : "",
                 r->def != NULL ? r->def : "", r->def_note != NULL ? r->def_note : "");
    } else {
        snprintf(text, sizeof text, "%s", r->help);
    }
    print_wrapped(out, text, col);
    if (r->needs != NULL && !options_built_with(r->needs)) {
        fprintf(out, "%*s[not in this build: no %s]\n", HELP_COLUMN, "", r->needs);
    }
}

static void print_help(FILE *out)
{
    fputs("usage: wsfwd [options]\n"
          "\n"
          "WebSocket fan-out server. Routes: /echo echoes every message to its sender;\n"
          "/ws is the global pool; /ws/<room> a named room (each message goes to every\n"
          "other member); / a demo page (/?room=name); /healthz; /stats (JSON).\n"
          "\n",
          out);
    for (size_t i = 0; i < TABLE_LEN; i++) {
        print_entry(out, &TABLE[i]);
    }
    fputs("\nOptions take --name VALUE or --name=VALUE. See wsfwd(1).\n", out);
}
