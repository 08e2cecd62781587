/*
 * wsfwd's options (cli/options.c): every flag's valid and invalid values, with the messages
 * wsfwd has always printed; --help from the table; and the table against the man page's
 * OPTIONS section (docs/wsfwd.1, at WSFWD_MAN_PAGE), both ways.
 */
#define _POSIX_C_SOURCE 200809L /* open_memstream */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "options.h"

#define MAX_ARGS 160

/* One run of options_parse_to: its result, the options, and what it printed. */
typedef struct parsed {
    int rc;
    options o;
    char *out; /* standard output, malloc'd */
    char *err; /* standard error, malloc'd */
} parsed;

static void parse_argv(parsed *p, const char *const *args)
{
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "wsfwd";
    for (; *args != NULL; args++) {
        assert_true(argc <= MAX_ARGS);
        argv[argc++] = (char *)*args;
    }
    argv[argc] = NULL;
    size_t outlen, errlen;
    FILE *out = open_memstream(&p->out, &outlen);
    FILE *err = open_memstream(&p->err, &errlen);
    assert_non_null(out);
    assert_non_null(err);
    p->rc = options_parse_to(&p->o, argc, argv, out, err);
    fclose(out);
    fclose(err);
}

static void parsed_free(parsed *p)
{
    free(p->out);
    free(p->err);
}

#define PARSE(p, ...) parse_argv((p), (const char *const[]){__VA_ARGS__, NULL})

/* Parse args; want exit 2 and exactly the line want on standard error. */
static void expect_error(const char *want, const char *const *args)
{
    parsed p;
    parse_argv(&p, args);
    if (p.rc != 2 || strcmp(p.err, want) != 0 || p.out[0] != '\0') {
        print_error("args:");
        for (const char *const *a = args; *a != NULL; a++) {
            print_error(" '%s'", *a);
        }
        print_error("\nrc %d, stderr %s, stdout %s\nwant rc 2, stderr %s", p.rc, p.err, p.out,
                    want);
        parsed_free(&p);
        fail();
    }
    parsed_free(&p);
}

#define EXPECT_ERROR(want, ...) expect_error((want), (const char *const[]){__VA_ARGS__, NULL})

/* Parse args; want 0, nothing printed. */
static void expect_ok(parsed *p, const char *const *args)
{
    parse_argv(p, args);
    if (p->rc != 0 || p->out[0] != '\0' || p->err[0] != '\0') {
        print_error("rc %d, stderr %s, stdout %s\n", p->rc, p->err, p->out);
        fail();
    }
}

#define EXPECT_OK(p, ...) expect_ok((p), (const char *const[]){__VA_ARGS__, NULL})

static const option_spec *row(const char *name)
{
    size_t n;
    const option_spec *t = options_table(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(t[i].name, name) == 0 || (t[i].alias != NULL && strcmp(t[i].alias, name) == 0)) {
            return &t[i];
        }
    }
    return NULL;
}

/* The defaults, as wsfwd has always had them. */
static void test_defaults(void **state)
{
    (void)state;
    parsed p;
    const char *const none[] = {NULL};
    expect_ok(&p, none);
    const options *o = &p.o;
    assert_int_equal(o->nlisten, 1);
    assert_string_equal(o->listen[0], "127.0.0.1:8080");
    assert_int_equal(o->norigins, 0);
    assert_false(o->reuse_port);
    assert_int_equal(o->max_connections, 0);
    assert_int_equal(o->max_per_address, 0);
    assert_int_equal(o->nauth_files, 0);
    assert_int_equal(o->rate_limit, 0);
    assert_int_equal(o->rate_burst, 0);
    assert_int_equal(o->max_message, 1 << 20);
    assert_int_equal(o->max_queue, 1 << 20);
    assert_int_equal(o->slow_policy, WSFWD_SLOW_CLOSE);
    assert_int_equal(o->slow_timeout_ms, 5000);
    assert_int_equal(o->max_header, 8192);
    assert_int_equal(o->max_rooms, 100000);
    assert_int_equal(o->max_room_name, 128);
    assert_int_equal(o->max_room_members, 0);
    assert_int_equal(o->handshake_timeout_ms, 10000);
    assert_int_equal(o->idle_timeout_ms, 60000);
    assert_int_equal(o->pong_timeout_ms, 10000);
    assert_int_equal(o->close_timeout_ms, 5000);
    assert_int_equal(o->shutdown_timeout_ms, 5000);
    assert_int_equal(o->log_level, LOG_INFO);
    assert_int_equal(o->log_format, LOG_TEXT);
    assert_null(o->redis);
    assert_false(o->redis_local_first);
    assert_int_equal(o->redis_max_inflight, 16 << 20);
    assert_int_equal(o->redis_timeout_ms, 2000);
    assert_null(o->redis_password_file);
    assert_int_equal(o->deflate, options_built_with("zlib"));
    assert_int_equal(o->deflate_level, 1);
    assert_int_equal(o->deflate_min_size, 64);
    assert_false(o->deflate_client_reset);
    parsed_free(&p);
}

/* The numbers: name, range and field, as wsfwd has always had them (not read from the table). */
typedef struct number_case {
    const char *name;
    uint64_t min, max;
    size_t field;
    int ms; /* an unsigned field, not a size_t */
} number_case;

#define F(name) offsetof(options, name)

static const number_case NUMBERS[] = {
    {"--max-connections", 0, 2147483647, F(max_connections), 0},
    {"--max-connections-per-address", 0, 2147483647, F(max_per_address), 0},
    {"--rate-limit", 0, 1000000, F(rate_limit), 0},
    {"--rate-burst", 1, 1000000, F(rate_burst), 0},
    {"--max-message", 1, 2147483648u, F(max_message), 0},
    {"--max-queue", 1024, 2147483648u, F(max_queue), 0},
    {"--max-header", 256, 1048576, F(max_header), 0},
    {"--max-rooms", 1, 1073741824, F(max_rooms), 0},
    {"--max-room-name", 1, 4096, F(max_room_name), 0},
    {"--max-room-members", 0, 2147483647, F(max_room_members), 0},
    {"--deflate-level", 1, 9, F(deflate_level), 0},
    {"--deflate-min-size", 0, 2147483648u, F(deflate_min_size), 0},
    {"--redis-max-inflight", 1024, UINT64_C(17179869184), F(redis_max_inflight), 0},
    {"--slow-timeout", 0, 86400000, F(slow_timeout_ms), 1},
    {"--handshake-timeout", 1, 86400000, F(handshake_timeout_ms), 1},
    {"--idle-timeout", 0, 86400000, F(idle_timeout_ms), 1},
    {"--pong-timeout", 1, 86400000, F(pong_timeout_ms), 1},
    {"--close-timeout", 1, 86400000, F(close_timeout_ms), 1},
    {"--shutdown-timeout", 0, 86400000, F(shutdown_timeout_ms), 1},
    {"--redis-timeout", 10, 86400000, F(redis_timeout_ms), 1},
};

static uint64_t number_in(const options *o, const number_case *c)
{
    const char *at = (const char *)o + c->field;
    if (c->ms) {
        unsigned v;
        memcpy(&v, at, sizeof v);
        return v;
    }
    size_t v;
    memcpy(&v, at, sizeof v);
    return v;
}

/* --name VALUE, and --name=VALUE; --rate-burst comes with the --rate-limit it needs. */
static void parse_number(parsed *p, const char *name, const char *value, int joined)
{
    char eq[128];
    snprintf(eq, sizeof eq, "%s=%s", name, value);
    const char *args[5] = {NULL};
    size_t n = 0;
    if (strcmp(name, "--rate-burst") == 0) {
        args[n++] = "--rate-limit";
        args[n++] = "1";
    }
    if (joined) {
        args[n++] = eq;
    } else {
        args[n++] = name;
        args[n++] = value;
    }
    parse_argv(p, args);
}

static void expect_number(const number_case *c, uint64_t v)
{
    char value[32];
    snprintf(value, sizeof value, "%llu", (unsigned long long)v);
    for (int joined = 0; joined < 2; joined++) {
        parsed p;
        parse_number(&p, c->name, value, joined);
        if (p.rc != 0 || p.err[0] != '\0' || number_in(&p.o, c) != v) {
            print_error("%s %s: rc %d, %s", c->name, value, p.rc, p.err);
            fail();
        }
        parsed_free(&p);
    }
}

static void expect_bad_number(const number_case *c, const char *value)
{
    char want[256];
    snprintf(want, sizeof want, "wsfwd: %s needs a whole number from %llu to %llu, not '%s'\n",
             c->name, (unsigned long long)c->min, (unsigned long long)c->max, value);
    for (int joined = 0; joined < 2; joined++) {
        parsed p;
        parse_number(&p, c->name, value, joined);
        if (p.rc != 2 || strcmp(p.err, want) != 0) {
            print_error("%s '%s': rc %d, stderr %s want %s", c->name, value, p.rc, p.err, want);
            fail();
        }
        parsed_free(&p);
    }
}

static void test_numbers(void **state)
{
    (void)state;
    static const char *const junk[] = {
        "", "x", "12x", "-1", "-0", "0x10", "1e3", "1.5", "99999999999999999999999", NULL};
    for (size_t i = 0; i < sizeof NUMBERS / sizeof NUMBERS[0]; i++) {
        const number_case *c = &NUMBERS[i];
        const option_spec *r = row(c->name);
        assert_non_null(r);
        assert_int_equal(r->kind, c->ms ? OPTION_MS : OPTION_NUMBER);
        expect_number(c, c->min);
        expect_number(c, c->max);
        expect_number(c, (c->min + c->max) / 2);
        char value[32];
        if (c->min > 0) {
            snprintf(value, sizeof value, "%llu", (unsigned long long)(c->min - 1));
            expect_bad_number(c, value);
        }
        snprintf(value, sizeof value, "%llu", (unsigned long long)(c->max + 1));
        expect_bad_number(c, value);
        for (size_t j = 0; junk[j] != NULL; j++) {
            expect_bad_number(c, junk[j]);
        }
    }
    /* Every number and time in the table is pinned above. */
    size_t n;
    const option_spec *t = options_table(&n);
    size_t numbers = 0;
    for (size_t i = 0; i < n; i++) {
        numbers += t[i].kind == OPTION_NUMBER || t[i].kind == OPTION_MS;
    }
    assert_int_equal(numbers, sizeof NUMBERS / sizeof NUMBERS[0]);
}

static void test_last_value_counts(void **state)
{
    (void)state;
    parsed p;
    EXPECT_OK(&p, "--max-rooms", "5", "--max-rooms=6", "--log-level", "debug", "--log-level",
              "warn");
    assert_int_equal(p.o.max_rooms, 6);
    assert_int_equal(p.o.log_level, LOG_WARN);
    parsed_free(&p);
}

static void test_choices(void **state)
{
    (void)state;
    parsed p;
    EXPECT_OK(&p, "--slow-policy", "drop");
    assert_int_equal(p.o.slow_policy, WSFWD_SLOW_DROP);
    parsed_free(&p);
    EXPECT_OK(&p, "--slow-policy=drop", "--slow-policy", "close");
    assert_int_equal(p.o.slow_policy, WSFWD_SLOW_CLOSE);
    parsed_free(&p);
    EXPECT_OK(&p, "--redis-order", "local-first");
    assert_true(p.o.redis_local_first);
    parsed_free(&p);
    EXPECT_OK(&p, "--redis-order=local-first", "--redis-order=one");
    assert_false(p.o.redis_local_first);
    parsed_free(&p);
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    static const log_level want[] = {LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG};
    for (size_t i = 0; i < 4; i++) {
        EXPECT_OK(&p, "--log-level", levels[i]);
        assert_int_equal(p.o.log_level, want[i]);
        parsed_free(&p);
    }
    EXPECT_OK(&p, "--log-format", "json");
    assert_int_equal(p.o.log_format, LOG_JSON);
    parsed_free(&p);
    EXPECT_OK(&p, "--log-format=json", "--log-format=text");
    assert_int_equal(p.o.log_format, LOG_TEXT);
    parsed_free(&p);
    EXPECT_ERROR("wsfwd: --log-format is text or json, not 'JSON'\n", "--log-format=JSON");
    EXPECT_ERROR("wsfwd: --slow-policy is close or drop, not 'wait'\n", "--slow-policy", "wait");
    EXPECT_ERROR("wsfwd: --slow-policy is close or drop, not 'Close'\n", "--slow-policy=Close");
    EXPECT_ERROR("wsfwd: --redis-order is one or local-first, not ''\n", "--redis-order=");
    EXPECT_ERROR("wsfwd: --redis-order is one or local-first, not 'local'\n", "--redis-order",
                 "local");
    EXPECT_OK(&p, "--io", "poll");
    assert_false(p.o.io_epoll);
    parsed_free(&p);
    if (options_built_with("epoll")) {
        EXPECT_OK(&p, "--io=epoll");
        assert_true(p.o.io_epoll);
        parsed_free(&p);
    } else {
        EXPECT_ERROR("wsfwd: --io epoll: epoll is Linux only; use --io poll (the default)\n",
                     "--io=epoll");
    }
    EXPECT_ERROR("wsfwd: --io is poll or epoll, not 'select'\n", "--io", "select");
    EXPECT_ERROR("wsfwd: --log-level is error, warn, info or debug, not 'verbose'\n", "--log-level",
                 "verbose");
    EXPECT_ERROR("wsfwd: --log-level is error, warn, info or debug, not 'INFO'\n",
                 "--log-level=INFO");
    EXPECT_OK(&p, "--deflate", "off", "--deflate-client-context", "reset");
    assert_false(p.o.deflate);
    assert_true(p.o.deflate_client_reset);
    parsed_free(&p);
    EXPECT_OK(&p, "--deflate-client-context=reset", "--deflate-client-context=keep");
    assert_false(p.o.deflate_client_reset);
    parsed_free(&p);
    EXPECT_OK(&p, "--reuse-port", "on");
    assert_true(p.o.reuse_port);
    parsed_free(&p);
    EXPECT_OK(&p, "--reuse-port=on", "--reuse-port=off");
    assert_false(p.o.reuse_port);
    parsed_free(&p);
    EXPECT_ERROR("wsfwd: --reuse-port is on or off, not ''\n", "--reuse-port=");
    EXPECT_ERROR("wsfwd: --deflate is on or off, not 'maybe'\n", "--deflate", "maybe");
    EXPECT_ERROR("wsfwd: --deflate-client-context is keep or reset, not ''\n",
                 "--deflate-client-context=");
    if (options_built_with("zlib")) {
        EXPECT_OK(&p, "--deflate=off", "--deflate", "on");
        assert_true(p.o.deflate);
        parsed_free(&p);
    } else {
        EXPECT_ERROR("wsfwd: --deflate on: this wsfwd was built without permessage-deflate "
                     "(install zlib1g-dev and rebuild; see README.md)\n",
                     "--deflate", "on");
    }
}

/* n copies of "--name" "value-i", then NULL, in args (which holds 2 n + 1). */
static void repeat(const char **args, char (*values)[24], const char *name, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(values[i], sizeof values[i], "v%zu", i);
        args[2 * i] = name;
        args[2 * i + 1] = values[i];
    }
    args[2 * n] = NULL;
}

static void test_lists(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t max, field, count;
        const char *error;
    } lists[] = {
        {"--listen", 16, F(listen), F(nlisten), "wsfwd: at most 16 --listen addresses\n"},
        {"--allow-origin", 64, F(origins), F(norigins),
         "wsfwd: at most 64 --allow-origin values\n"},
        {"--auth-secret-file", 2, F(auth_files), F(nauth_files),
         "wsfwd: at most 2 --auth-secret-file keys (the current one and, while rotating, the "
         "other)\n"},
    };
    const char *args[2 * 65 + 1];
    char values[65][24];
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        assert_true(lists[i].max < 65);
        repeat(args, values, lists[i].name, lists[i].max);
        parsed p;
        expect_ok(&p, args);
        size_t count;
        memcpy(&count, (const char *)&p.o + lists[i].count, sizeof count);
        assert_int_equal(count, lists[i].max);
        const char *const *got = (const char *const *)((const char *)&p.o + lists[i].field);
        for (size_t j = 0; j < lists[i].max; j++) {
            assert_string_equal(got[j], values[j]);
        }
        parsed_free(&p);
        repeat(args, values, lists[i].name, lists[i].max + 1);
        expect_error(lists[i].error, args);
    }
    parsed p;
    EXPECT_OK(&p, "--listen=[::1]:0", "--listen", "");
    assert_int_equal(p.o.nlisten, 2); /* the default only without any */
    assert_string_equal(p.o.listen[0], "[::1]:0");
    assert_string_equal(p.o.listen[1], "");
    parsed_free(&p);
    EXPECT_OK(&p, "--allow-origin", "--help"); /* a value, whatever it looks like */
    assert_string_equal(p.o.origins[0], "--help");
    parsed_free(&p);
    EXPECT_ERROR("wsfwd: --auth-secret-file needs a path\n", "--auth-secret-file=");
    EXPECT_ERROR("wsfwd: --auth-secret-file needs a path\n", "--auth-secret-file", "");
}

static void test_rate(void **state)
{
    (void)state;
    parsed p;
    EXPECT_OK(&p, "--rate-limit", "7");
    assert_int_equal(p.o.rate_limit, 7);
    assert_int_equal(p.o.rate_burst, 7); /* the default burst is the rate */
    parsed_free(&p);
    EXPECT_OK(&p, "--rate-burst", "3", "--rate-limit", "7");
    assert_int_equal(p.o.rate_burst, 3);
    parsed_free(&p);
    EXPECT_ERROR("wsfwd: --rate-burst needs --rate-limit\n", "--rate-burst", "5");
    EXPECT_ERROR("wsfwd: --rate-burst needs --rate-limit\n", "--rate-burst", "5", "--rate-limit",
                 "0");
}

static void test_redis(void **state)
{
    (void)state;
    parsed p;
    EXPECT_ERROR("wsfwd: --redis-password-file needs --redis\n", "--redis-password-file", "pw");
    EXPECT_ERROR("wsfwd: --redis-password-file needs a path\n", "--redis-password-file=");
#ifdef WSFWD_HAVE_HIREDIS
    EXPECT_OK(&p, "--redis", "127.0.0.1:6379", "--redis-password-file", "pw");
    assert_string_equal(p.o.redis, "127.0.0.1:6379");
    assert_string_equal(p.o.redis_password_file, "pw");
    parsed_free(&p);
    EXPECT_OK(&p, "--redis=redis://u:secret@h:1/2");
    assert_string_equal(p.o.redis, "redis://u:secret@h:1/2");
    parsed_free(&p);
    EXPECT_ERROR("wsfwd: --redis 'h': no port (HOST:PORT) (HOST:PORT or "
                 "redis://[:PASSWORD@]HOST[:PORT][/DB])\n",
                 "--redis", "h");
    /* A URL that may hold a password is not echoed. */
    PARSE(&p, "--redis", "redis://:secret@h:99999");
    assert_int_equal(p.rc, 2);
    assert_non_null(strstr(p.err, "wsfwd: --redis '...': "));
    assert_null(strstr(p.err, "secret"));
    parsed_free(&p);
    EXPECT_ERROR("wsfwd: --redis '': empty (HOST:PORT or redis://[:PASSWORD@]HOST[:PORT][/DB])\n",
                 "--redis=");
#else
    EXPECT_ERROR("wsfwd: --redis: this wsfwd was built without Redis support (install "
                 "libhiredis-dev and rebuild; see README.md)\n",
                 "--redis", "127.0.0.1:6379");
    (void)p;
#endif
}

/* --listen-tls with --tls-cert and --tls-key; alone, no default plain listener. */
static void test_tls(void **state)
{
    (void)state;
    parsed p;
#ifdef WSFWD_HAVE_TLS
    EXPECT_OK(&p, "--listen-tls", "127.0.0.1:8443", "--tls-cert", "c.pem", "--tls-key", "k.pem");
    assert_int_equal(p.o.nlisten, 0);
    assert_int_equal(p.o.nlisten_tls, 1);
    assert_string_equal(p.o.listen_tls[0], "127.0.0.1:8443");
    assert_string_equal(p.o.tls_cert, "c.pem");
    assert_string_equal(p.o.tls_key, "k.pem");
    parsed_free(&p);
    EXPECT_OK(&p, "--listen=127.0.0.1:80", "--listen-tls=[::1]:443", "--tls-cert=c", "--tls-key=k");
    assert_int_equal(p.o.nlisten, 1);
    assert_int_equal(p.o.nlisten_tls, 1);
    parsed_free(&p);
    EXPECT_ERROR("wsfwd: --listen-tls needs --tls-cert and --tls-key\n", "--listen-tls",
                 "127.0.0.1:8443", "--tls-cert", "c.pem");
    EXPECT_ERROR("wsfwd: --tls-cert and --tls-key need --listen-tls\n", "--tls-cert", "c.pem",
                 "--tls-key", "k.pem");
    EXPECT_ERROR("wsfwd: --tls-key needs a path\n", "--tls-key=");
#else
    EXPECT_ERROR("wsfwd: --listen-tls, --tls-cert, --tls-key: this wsfwd was built without TLS "
                 "(install libssl-dev and rebuild; see README.md)\n",
                 "--listen-tls", "127.0.0.1:8443");
    (void)p;
#endif
}

static void test_flags_and_strays(void **state)
{
    (void)state;
    parsed p;
    PARSE(&p, "--help");
    assert_int_equal(p.rc, 1);
    assert_string_equal(p.err, "");
    assert_memory_equal(p.out, "usage: wsfwd [options]\n", 23);
    char *help = p.out;
    p.out = NULL;
    parsed_free(&p);
    PARSE(&p, "--max-rooms", "5", "-h", "--bogus");
    assert_int_equal(p.rc, 1);
    assert_string_equal(p.out, help);
    parsed_free(&p);
    free(help);
    PARSE(&p, "--version");
    assert_int_equal(p.rc, 1);
    char want[64];
    snprintf(want, sizeof want, "wsfwd %s\n", wsfwd_version());
    assert_string_equal(p.out, want);
    assert_string_equal(p.err, "");
    parsed_free(&p);
    /* In order: an error before --help is the answer. */
    EXPECT_ERROR("wsfwd: --max-rooms needs a whole number from 1 to 1073741824, not 'x'\n",
                 "--max-rooms", "x", "--help");
    EXPECT_ERROR("wsfwd: unknown option '--help' (see --help)\n", "--help=1");
    EXPECT_ERROR("wsfwd: unknown option '--version' (see --help)\n", "--version=");
    EXPECT_ERROR("wsfwd: unexpected argument '-h=1' (see --help)\n", "-h=1");
    EXPECT_ERROR("wsfwd: unexpected argument 'stray' (see --help)\n", "stray");
    EXPECT_ERROR("wsfwd: unexpected argument '-x' (see --help)\n", "--max-rooms", "3", "-x");
    EXPECT_ERROR("wsfwd: unknown option '--bogus' (see --help)\n", "--bogus", "1");
    EXPECT_ERROR("wsfwd: unknown option '--bogus' (see --help)\n", "--bogus=1");
    EXPECT_ERROR("wsfwd: unknown option '--nope' (see --help)\n", "--listen=127.0.0.1:0", "--nope",
                 "1");
    EXPECT_ERROR("wsfwd: unknown option '--max-room' (see --help)\n", "--max-room", "1");
    EXPECT_ERROR("wsfwd: unknown option '--' (see --help)\n", "--", "1");
    /* As ever: a missing value is seen before an unknown name, and a name of 64 bytes or more
       is unknown, printed with its value. */
    EXPECT_ERROR("wsfwd: --max-rooms needs a value (see --help)\n", "--max-rooms");
    EXPECT_ERROR("wsfwd: --listen needs a value (see --help)\n", "--max-rooms=3", "--listen");
    EXPECT_ERROR("wsfwd: --bogus needs a value (see --help)\n", "--bogus");
    char longname[80];
    memset(longname, 'x', sizeof longname);
    memcpy(longname, "--", 2);
    memcpy(longname + 64, "=1", 3);
    char longwant[128];
    snprintf(longwant, sizeof longwant, "wsfwd: unknown option '%s' (see --help)\n", longname);
    EXPECT_ERROR(longwant, longname);
}

/* --help: an entry per row, with its argument, its default and its choices; 80 columns. */
static const char *help_entry(const char *help, const option_spec *r, char *buf, size_t cap)
{
    char head[128];
    if (r->alias != NULL) {
        snprintf(head, sizeof head, "\n  %s, %s", r->alias, r->name);
    } else {
        snprintf(head, sizeof head, "\n  %s%s%s", r->name, r->arg != NULL ? " " : "",
                 r->arg != NULL ? r->arg : "");
    }
    const char *at = strstr(help, head);
    if (at == NULL) {
        return NULL;
    }
    at += strlen(head);
    if (*at != ' ' && *at != '\n') {
        return NULL;
    }
    const char *end = strstr(at, "\n  -"); /* the next entry */
    if (end == NULL) {
        end = strstr(at, "\n\n");
    }
    assert_non_null(end);
    /* Its words, on one line. */
    size_t n = 0;
    for (const char *s = at; s < end; s++) {
        if (*s == ' ' || *s == '\n') {
            if (n > 0 && buf[n - 1] != ' ') {
                buf[n++] = ' ';
            }
        } else {
            buf[n++] = *s;
        }
        assert_true(n < cap);
    }
    buf[n] = '\0';
    return buf;
}

static void test_help(void **state)
{
    (void)state;
    parsed p;
    PARSE(&p, "--help");
    assert_int_equal(p.rc, 1);
    size_t n;
    const option_spec *t = options_table(&n);
    char entry[1024];
    for (size_t i = 0; i < n; i++) {
        const option_spec *r = &t[i];
        if (help_entry(p.out, r, entry, sizeof entry) == NULL) {
            print_error("--help has no entry for %s:\n%s", r->name, p.out);
            fail();
        }
        if (r->kind != OPTION_FLAG) {
            /* The default, whole: the text was not cut short. */
            char def[256];
            snprintf(def, sizeof def, "(default%s%s%s)", r->def != NULL ? " " : "",
                     r->def != NULL ? r->def : "", r->def_note != NULL ? r->def_note : "");
            if (strstr(entry, def) == NULL) {
                print_error("--help on %s: no %s in %s\n", r->name, def, entry);
                fail();
            }
        }
        for (size_t j = 0; r->choices != NULL && r->choices[j] != NULL; j++) {
            if (strstr(entry, r->choices[j]) == NULL) {
                print_error("--help on %s does not name %s: %s\n", r->name, r->choices[j], entry);
                fail();
            }
        }
        if (r->needs != NULL) {
            char note[64];
            snprintf(note, sizeof note, "[not in this build: no %s]", r->needs);
            assert_int_equal(strstr(entry, note) != NULL, !options_built_with(r->needs));
        } else {
            assert_null(strstr(entry, "[not in this build"));
        }
    }
    for (const char *line = p.out; *line != '\0';) {
        size_t len = strcspn(line, "\n");
        if (len > 80) {
            print_error("--help line over 80 columns: %.*s\n", (int)len, line);
            fail();
        }
        line += len + (line[len] == '\n');
    }
    parsed_free(&p);
}

/* The table's own consistency: what the parser relies on. */
static void test_table(void **state)
{
    (void)state;
    size_t n;
    const option_spec *t = options_table(&n);
    for (size_t i = 0; i < n; i++) {
        const option_spec *r = &t[i];
        assert_non_null(r->help);
        assert_true(strncmp(r->name, "--", 2) == 0);
        assert_true(strlen(r->name) < 64);
        assert_ptr_equal(row(r->name), r); /* no name twice */
        assert_int_equal(r->kind == OPTION_FLAG, r->arg == NULL);
        assert_int_equal(r->kind == OPTION_FLAG, r->run != NULL);
        assert_int_equal(r->kind == OPTION_CHOICE, r->choices != NULL && r->pick != NULL);
        if (r->kind == OPTION_NUMBER || r->kind == OPTION_MS) {
            assert_true(r->min <= r->max);
        }
        if (r->kind == OPTION_LIST) {
            assert_true(r->max > 0);
            assert_non_null(r->many);
        }
        if (r->kind == OPTION_CHOICE && strchr(r->arg, '|') != NULL) {
            /* "a|b" names the choices, in order */
            char joined[128] = "";
            for (size_t j = 0; r->choices[j] != NULL; j++) {
                strcat(joined, j > 0 ? "|" : "");
                strcat(joined, r->choices[j]);
            }
            assert_string_equal(r->arg, joined);
        }
        if (r->def != NULL && r->kind != OPTION_LIST) {
            /* The default parses (the defaults are set this way). */
            char eq[256];
            snprintf(eq, sizeof eq, "%s=%s", r->name, r->def);
            const char *args[] = {eq, NULL};
            parsed p;
            expect_ok(&p, args);
            parsed_free(&p);
        }
    }
}

/* --- The man page ------------------------------------------------------------------------ */

static char *read_man(void)
{
    FILE *f = fopen(WSFWD_MAN_PAGE, "rb");
    if (f == NULL) {
        print_error("cannot open %s\n", WSFWD_MAN_PAGE);
        fail();
    }
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t got;
    while ((got = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) {
            cap *= 2;
            text = realloc(text, cap);
            assert_non_null(text);
        }
    }
    fclose(f);
    text[len] = '\0';
    return text;
}

/* Text of troff s (n bytes) to out: escapes \- \fX \c \& \~ \(dq resolved, quotes dropped. */
static size_t troff_text(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            continue;
        }
        if (s[i] != '\\' || i + 1 == n) {
            out[k++] = s[i];
            continue;
        }
        char c = s[++i];
        if (c == 'f' && i + 1 < n) {
            i++; /* a font change */
        } else if (c == '(' && i + 2 < n) {
            out[k++] = strncmp(s + i + 1, "dq", 2) == 0 ? '"' : '?';
            i += 2;
        } else if (c == '~') {
            out[k++] = ' ';
        } else if (c != 'c' && c != '&') {
            out[k++] = c; /* \- and \e */
        }
    }
    return k;
}

/* What line (without its newline) shows: a font macro's arguments, joined; plain text. */
static void troff_line(const char *line, size_t n, char *out)
{
    size_t k = 0;
    if (line[0] != '.') {
        k = troff_text(line, n, out);
    } else {
        size_t m = strcspn(line, " \n");
        if (m > n) {
            m = n;
        }
        int font = m >= 2 && m <= 3 && strchr("BIR", line[1]) != NULL &&
                   (m == 2 || strchr("BIR", line[2]) != NULL);
        int alternate = m == 3; /* .BI, .BR, .IR ...: arguments joined without spaces */
        size_t i = m;
        while (font && i < n) {
            while (i < n && line[i] == ' ') {
                i++;
            }
            if (i == n) {
                break;
            }
            size_t start = i;
            if (line[i] == '"') {
                i++;
                while (i < n && line[i] != '"') {
                    i++;
                }
                i++;
            } else {
                while (i < n && line[i] != ' ') {
                    i++;
                }
            }
            if (k > 0 && !alternate) {
                out[k++] = ' ';
            }
            k += troff_text(line + start, (i > n ? n : i) - start, out + k);
        }
    }
    out[k] = '\0';
}

/* The man page's option entries: a .TP, its tag line, and the text up to the next .TP. */
typedef struct man_entry {
    char tag[1024];
    char body[4096];
} man_entry;

static size_t man_options(const char *man, man_entry *entries, size_t cap)
{
    const char *at = strstr(man, "\n.SH OPTIONS\n");
    assert_non_null(at);
    const char *end = strstr(at + 1, "\n.SH ");
    assert_non_null(end);
    size_t n = 0;
    man_entry *e = NULL;
    int want_tag = 0;
    for (const char *line = at + 1; line < end;) {
        size_t len = strcspn(line, "\n");
        char text[1024];
        assert_true(len < sizeof text);
        if (strncmp(line, ".TP", 3) == 0 && len == 3) {
            assert_true(n < cap);
            e = &entries[n++];
            e->tag[0] = e->body[0] = '\0';
            want_tag = 1;
        } else if (e != NULL) {
            troff_line(line, len, text);
            if (want_tag) {
                snprintf(e->tag, sizeof e->tag, "%s", text);
                want_tag = 0;
            } else if (strlen(e->body) + strlen(text) + 2 < sizeof e->body) {
                strcat(e->body, " ");
                strcat(e->body, text);
            }
        }
        line += len + 1;
    }
    return n;
}

/* Whether text says "default D" or "Default: D", D whole (not the start of a longer number). */
static int says_default(const char *text, const char *def)
{
    for (const char *s = text; *s != '\0'; s++) {
        if (strncasecmp(s, "default", 7) != 0) {
            continue;
        }
        const char *v = s + 7;
        v += *v == ':';
        if (*v == ' ' && strncmp(v + 1, def, strlen(def)) == 0) {
            char next = v[1 + strlen(def)];
            if (!(next >= '0' && next <= '9')) {
                return 1;
            }
        }
    }
    return 0;
}

/* Check one man entry against its row: names, argument, range, default, choices, count. */
static void check_man_entry(const man_entry *e, int *seen, const option_spec *t)
{
    char tag[sizeof e->tag];
    memcpy(tag, e->tag, sizeof tag);
    /* "--name ARG" or "--help, -h" */
    const option_spec *r = NULL;
    char *save = NULL;
    char *word = strtok_r(tag, " ", &save);
    int more = 1;
    while (word != NULL && word[0] == '-' && more) {
        size_t len = strlen(word);
        more = word[len - 1] == ',';
        word[len - more] = '\0';
        const option_spec *w = row(word);
        if (w == NULL) {
            print_error("wsfwd.1 documents %s, which is not in the table\n", word);
            fail();
        }
        if (r != NULL && w != r) {
            print_error("wsfwd.1 gives %s and %s as one option; the table does not\n", r->name,
                        word);
            fail();
        }
        r = w;
        seen[w - t] |= strcmp(word, w->name) == 0 ? 1 : 2;
        word = strtok_r(NULL, "", &save);
    }
    if (r == NULL) {
        print_error("wsfwd.1: an OPTIONS entry without an option: %s\n", e->tag);
        fail();
    }
    const char *arg = word;
    if ((arg == NULL) != (r->arg == NULL) || (arg != NULL && strcmp(arg, r->arg) != 0)) {
        print_error("%s: the table's argument is %s, wsfwd.1's %s\n", r->name,
                    r->arg != NULL ? r->arg : "(none)", arg != NULL ? arg : "(none)");
        fail();
    }
    char want[128];
    if (r->kind == OPTION_NUMBER || r->kind == OPTION_MS) {
        snprintf(want, sizeof want, " %zu to %zu", r->min, r->max);
        if (strstr(e->body, want) == NULL) {
            print_error("wsfwd.1 on %s does not give its range,%s:%s\n", r->name, want, e->body);
            fail();
        }
    }
    if (r->def != NULL && !says_default(e->body, r->def)) {
        print_error("wsfwd.1 on %s does not say \"default %s\":%s\n", r->name, r->def, e->body);
        fail();
    }
    if (r->kind == OPTION_LIST && r->max > 1) {
        snprintf(want, sizeof want, "up to %zu times", r->max);
        if (strstr(e->body, want) == NULL) {
            print_error("wsfwd.1 on %s does not say \"%s\":%s\n", r->name, want, e->body);
            fail();
        }
    }
    for (size_t j = 0; r->choices != NULL && r->choices[j] != NULL; j++) {
        if (strstr(e->tag, r->choices[j]) == NULL && strstr(e->body, r->choices[j]) == NULL) {
            print_error("wsfwd.1 on %s does not name %s\n", r->name, r->choices[j]);
            fail();
        }
    }
}

static void test_man_page_options(void **state)
{
    (void)state;
    char *man = read_man();
    static man_entry entries[64];
    size_t nentries = man_options(man, entries, sizeof entries / sizeof entries[0]);
    size_t n;
    const option_spec *t = options_table(&n);
    int *seen = calloc(n, sizeof *seen); /* 1: the name documented; 2: the alias */
    assert_non_null(seen);
    for (size_t i = 0; i < nentries; i++) {
        check_man_entry(&entries[i], seen, t);
    }
    for (size_t i = 0; i < n; i++) {
        int want = t[i].alias != NULL ? 3 : 1;
        if (seen[i] != want) {
            print_error("%s%s%s is not in wsfwd.1's OPTIONS\n", t[i].name,
                        t[i].alias != NULL ? " or " : "", t[i].alias != NULL ? t[i].alias : "");
            fail();
        }
    }
    free(seen);
    free(man);
}

/* Every --flag the man page mentions anywhere is one wsfwd has (or the generic --name). */
static void test_man_page_mentions(void **state)
{
    (void)state;
    char *man = read_man();
    for (const char *s = man; (s = strstr(s, "\\-\\-")) != NULL;) {
        char name[128];
        size_t k = 0;
        while (strncmp(s, "\\-", 2) == 0 || (*s >= 'a' && *s <= 'z')) {
            if (*s == '\\') {
                s++;
            }
            assert_true(k + 1 < sizeof name);
            name[k++] = *s++;
        }
        name[k] = '\0';
        if (strcmp(name, "--name") != 0 && row(name) == NULL) {
            print_error("wsfwd.1 mentions %s, which wsfwd does not have\n", name);
            fail();
        }
    }
    free(man);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_last_value_counts),
        cmocka_unit_test(test_choices),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_redis),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_flags_and_strays),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_man_page_options),
        cmocka_unit_test(test_man_page_mentions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
