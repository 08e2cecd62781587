/* The opening handshake: accept value, request parser, responses, client request and check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handshake.h"
#include "support.h"
#include "wsfwd.h"

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static const char valid_request[] = "GET /chat?room=a&x=1 HTTP/1.1\r\n"
                                    "Host: server.example.com\r\n"
                                    "Upgrade: websocket\r\n"
                                    "Connection: Upgrade\r\n"
                                    "Sec-WebSocket-Key: " RFC_KEY "\r\n"
                                    "Origin: http://example.com\r\n"
                                    "Sec-WebSocket-Protocol: chat, superchat\r\n"
                                    "Sec-WebSocket-Version: 13\r\n"
                                    "\r\n";

/* A masked text frame "Hello" that follows the request on the wire. */
static const char frame_bytes[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";

/* ---- Helpers --------------------------------------------------------------------------- */

static bool str_is(wsfwd_str s, const char *want)
{
    if (want == NULL) {
        return s.ptr == NULL && s.len == 0;
    }
    return s.ptr != NULL && s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static void append_str(char *out, size_t cap, const char *label, wsfwd_str s)
{
    size_t n = strlen(out);
    if (s.ptr == NULL) {
        snprintf(out + n, cap - n, "%s=<none>;", label);
    } else {
        snprintf(out + n, cap - n, "%s=[%.*s];", label, (int)s.len, s.ptr);
    }
}

/* Everything observable about a request, as one string, to compare across chunkings. */
static void request_summary(const wsfwd_request *req, int rc, size_t consumed, char *out,
                            size_t cap)
{
    snprintf(out, cap, "rc=%d;consumed=%zu;check=%d;status=%d;up=%d;", rc, consumed,
             wsfwd_request_check(req), wsfwd_request_status(req),
             (int)wsfwd_request_is_upgrade(req));
    append_str(out, cap, "method", wsfwd_request_method(req));
    append_str(out, cap, "target", wsfwd_request_target(req));
    append_str(out, cap, "path", wsfwd_request_path(req));
    append_str(out, cap, "query", wsfwd_request_query(req));
    append_str(out, cap, "host", wsfwd_request_host(req));
    append_str(out, cap, "origin", wsfwd_request_origin(req));
    append_str(out, cap, "key", wsfwd_request_key(req));
    append_str(out, cap, "ver", wsfwd_request_header(req, "sec-websocket-version"));
    for (size_t i = 0; i < wsfwd_request_subprotocol_count(req); i++) {
        append_str(out, cap, "proto", wsfwd_request_subprotocol(req, i));
    }
}

/* Feed data in pieces at the given split points, each piece in guarded memory; returns the
 * last result. */
static int feed_split(wsfwd_request *req, const char *data, size_t len, const size_t *cuts,
                      size_t ncuts, size_t *consumed)
{
    int rc = WSFWD_INCOMPLETE;
    size_t start = 0;
    *consumed = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        size_t used = 0;
        rc = wsfwd_request_feed(req, test_guarded(data + start, end - start), end - start, &used);
        *consumed += used;
        if (rc != WSFWD_INCOMPLETE) {
            break;
        }
        assert_int_equal(used, end - start);
        start = end;
    }
    return rc;
}

static wsfwd_request *parse_request(const char *text, size_t max, int *rc)
{
    wsfwd_request *req = NULL;
    assert_int_equal(wsfwd_request_new(NULL, max, &req), WSFWD_OK);
    size_t used = 0;
    *rc = wsfwd_request_feed(req, test_guarded(text, strlen(text)), strlen(text), &used);
    return req;
}

/* A request fed in pieces must summarize as it does fed whole. */
typedef struct split_check {
    const char *text;
    size_t len, max;
    const char *want;
} split_check;

static void check_split(const size_t *cuts, size_t ncuts, void *ud)
{
    const split_check *sc = ud;
    char got[2048];
    size_t consumed;
    wsfwd_request *req;
    assert_int_equal(wsfwd_request_new(NULL, sc->max, &req), WSFWD_OK);
    int rc = feed_split(req, sc->text, sc->len, cuts, ncuts, &consumed);
    request_summary(req, rc, consumed, got, sizeof got);
    assert_string_equal(got, sc->want);
    wsfwd_request_free(req);
}

/* Check a request fed whole, split once at every point, and one byte at a time. */
static void check_every_split(const char *text, size_t max)
{
    size_t len = strlen(text);
    char want[2048];
    size_t consumed;
    wsfwd_request *req;

    assert_int_equal(wsfwd_request_new(NULL, max, &req), WSFWD_OK);
    int rc = feed_split(req, text, len, NULL, 0, &consumed);
    request_summary(req, rc, consumed, want, sizeof want);
    wsfwd_request_free(req);

    split_check sc = {text, len, max, want};
    test_each_cut(len, check_split, &sc);
    test_bytewise(len, check_split, &sc);
}

/* ---- Accept and key -------------------------------------------------------------------- */

static void test_accept_rfc_example(void **state)
{
    (void)state;
    char out[WSFWD_ACCEPT_LEN + 1];
    wsfwd_handshake_accept(RFC_KEY, strlen(RFC_KEY), out);
    assert_string_equal(out, RFC_ACCEPT);
}

static void test_key_from_nonce(void **state)
{
    (void)state;
    const uint8_t nonce[16] = "the sample nonce";
    char out[WSFWD_KEY_LEN + 1];
    wsfwd_handshake_key(nonce, out);
    assert_string_equal(out, RFC_KEY);
}

/* ---- Server side: parsing -------------------------------------------------------------- */

static void test_valid_request(void **state)
{
    (void)state;
    char wire[sizeof valid_request + sizeof frame_bytes];
    size_t hlen = strlen(valid_request);
    memcpy(wire, valid_request, hlen);
    memcpy(wire + hlen, frame_bytes, sizeof frame_bytes - 1);

    wsfwd_request *req;
    assert_int_equal(wsfwd_request_new(NULL, 0, &req), WSFWD_OK);
    assert_int_equal(wsfwd_request_check(req), WSFWD_INCOMPLETE);
    assert_int_equal(wsfwd_request_status(req), 0);
    assert_true(str_is(wsfwd_request_method(req), NULL));

    size_t used = 0;
    int rc = wsfwd_request_feed(req, (const uint8_t *)wire, hlen + sizeof frame_bytes - 1, &used);
    assert_int_equal(rc, WSFWD_OK);
    assert_int_equal(used, hlen); /* the frame bytes are left to the caller */
    assert_int_equal(wsfwd_request_check(req), WSFWD_OK);
    assert_int_equal(wsfwd_request_status(req), 101);
    assert_true(wsfwd_request_is_upgrade(req));
    assert_true(str_is(wsfwd_request_method(req), "GET"));
    assert_true(str_is(wsfwd_request_target(req), "/chat?room=a&x=1"));
    assert_true(str_is(wsfwd_request_path(req), "/chat"));
    assert_true(str_is(wsfwd_request_query(req), "room=a&x=1"));
    assert_true(str_is(wsfwd_request_host(req), "server.example.com"));
    assert_true(str_is(wsfwd_request_origin(req), "http://example.com"));
    assert_true(str_is(wsfwd_request_key(req), RFC_KEY));
    assert_true(str_is(wsfwd_request_header(req, "SEC-WEBSOCKET-VERSION"), "13"));
    assert_true(str_is(wsfwd_request_header(req, "X-Absent"), NULL));
    assert_true(str_is(wsfwd_request_header(req, NULL), NULL));
    assert_int_equal(wsfwd_request_subprotocol_count(req), 2);
    assert_true(str_is(wsfwd_request_subprotocol(req, 0), "chat"));
    assert_true(str_is(wsfwd_request_subprotocol(req, 1), "superchat"));
    assert_true(str_is(wsfwd_request_subprotocol(req, 2), NULL));

    /* Further feeds take nothing and repeat the result. */
    rc = wsfwd_request_feed(req, (const uint8_t *)frame_bytes, 3, &used);
    assert_int_equal(rc, WSFWD_OK);
    assert_int_equal(used, 0);
    wsfwd_request_free(req);
}

static void test_query_absent_and_empty(void **state)
{
    (void)state;
    int rc;
    wsfwd_request *req = parse_request("GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 0, &rc);
    assert_int_equal(rc, WSFWD_OK);
    assert_true(str_is(wsfwd_request_path(req), "/a"));
    assert_true(str_is(wsfwd_request_query(req), NULL));
    assert_false(wsfwd_request_is_upgrade(req));
    assert_int_equal(wsfwd_request_check(req), WSFWD_ERR_HS_UPGRADE);
    wsfwd_request_free(req);

    req = parse_request("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", 0, &rc);
    assert_true(str_is(wsfwd_request_path(req), "/a"));
    assert_non_null(wsfwd_request_query(req).ptr);
    assert_int_equal(wsfwd_request_query(req).len, 0);
    wsfwd_request_free(req);
}

static void test_every_split_valid(void **state)
{
    (void)state;
    char wire[sizeof valid_request + sizeof frame_bytes];
    snprintf(wire, sizeof wire, "%s%s", valid_request, frame_bytes);
    check_every_split(wire, 0);
}

static void test_every_split_invalid(void **state)
{
    (void)state;
    check_every_split("GET / HTTP/1.1\r\nHost: a\r\n bad fold\r\n\r\nxyz", 0);
    check_every_split("POST / HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    check_every_split("GET / HTTP/1.1\nHost: a\nUpgrade: websocket\n\nrest", 0);
    check_every_split(valid_request, 100);           /* too large */
    check_every_split("GET / HTTP/1.1\r\n\r\n", 18); /* exactly the limit */
    check_every_split("GET / HTTP/1.1\r\n\r", 17);   /* one byte short of the limit */
}

static void test_bare_lf_accepted(void **state)
{
    (void)state;
    const char *text = "GET / HTTP/1.1\nHost: h\nUpgrade: websocket\nConnection: Upgrade\n"
                       "Sec-WebSocket-Key: " RFC_KEY "\nSec-WebSocket-Version: 13\r\n\n";
    int rc;
    wsfwd_request *req = parse_request(text, 0, &rc);
    assert_int_equal(rc, WSFWD_OK);
    assert_int_equal(wsfwd_request_check(req), WSFWD_OK);
    wsfwd_request_free(req);
}

struct request_case {
    const char *name;
    const char *headers; /* after the request line */
    const char *line;    /* NULL: "GET / HTTP/1.1" */
    int feed_rc;
    int check;
    int status;
};

#define GOOD_HOST "Host: h\r\n"
#define GOOD_UP "Upgrade: websocket\r\nConnection: Upgrade\r\n"
#define GOOD_KEY "Sec-WebSocket-Key: " RFC_KEY "\r\n"
#define GOOD_VER "Sec-WebSocket-Version: 13\r\n"
#define GOOD GOOD_HOST GOOD_UP GOOD_KEY GOOD_VER

static const struct request_case request_cases[] = {
    {"valid", GOOD, NULL, WSFWD_OK, WSFWD_OK, 101},
    {"post", GOOD, "POST / HTTP/1.1", WSFWD_OK, WSFWD_ERR_HTTP_METHOD, 405},
    {"lowercase get", GOOD, "get / HTTP/1.1", WSFWD_OK, WSFWD_ERR_HTTP_METHOD, 405},
    {"post and 1.0: method first", GOOD, "POST / HTTP/1.0", WSFWD_OK, WSFWD_ERR_HTTP_METHOD, 405},
    {"http 1.0", GOOD, "GET / HTTP/1.0", WSFWD_OK, WSFWD_ERR_HTTP_VERSION, 400},
    {"http 0.9", GOOD, "GET / HTTP/0.9", WSFWD_OK, WSFWD_ERR_HTTP_VERSION, 400},
    {"http 1.2", GOOD, "GET / HTTP/1.2", WSFWD_OK, WSFWD_OK, 101},
    {"http 2.0", GOOD, "GET / HTTP/2.0", WSFWD_ERR_HTTP_MALFORMED, WSFWD_ERR_HTTP_MALFORMED, 400},
    {"lowercase http", GOOD, "GET / http/1.1", WSFWD_ERR_HTTP_MALFORMED, WSFWD_ERR_HTTP_MALFORMED,
     400},
    {"double space", GOOD, "GET  / HTTP/1.1", WSFWD_ERR_HTTP_MALFORMED, WSFWD_ERR_HTTP_MALFORMED,
     400},
    {"no version", GOOD, "GET /", WSFWD_ERR_HTTP_MALFORMED, WSFWD_ERR_HTTP_MALFORMED, 400},
    {"trailing space", GOOD, "GET / HTTP/1.1 ", WSFWD_ERR_HTTP_MALFORMED, WSFWD_ERR_HTTP_MALFORMED,
     400},
    {"empty request line", GOOD, "", WSFWD_ERR_HTTP_MALFORMED, WSFWD_ERR_HTTP_MALFORMED, 400},
    {"ctl in target", GOOD, "GET /\x01 HTTP/1.1", WSFWD_ERR_HTTP_MALFORMED,
     WSFWD_ERR_HTTP_MALFORMED, 400},
    {"bad method token", GOOD, "G(T / HTTP/1.1", WSFWD_ERR_HTTP_MALFORMED, WSFWD_ERR_HTTP_MALFORMED,
     400},
    {"no host", GOOD_UP GOOD_KEY GOOD_VER, NULL, WSFWD_OK, WSFWD_ERR_HS_HOST, 400},
    {"two hosts", GOOD "Host: h\r\n", NULL, WSFWD_OK, WSFWD_ERR_HS_HOST, 400},
    {"empty host", "Host:\r\n" GOOD_UP GOOD_KEY GOOD_VER, NULL, WSFWD_OK, WSFWD_ERR_HS_HOST, 400},
    {"no upgrade", GOOD_HOST "Connection: Upgrade\r\n" GOOD_KEY GOOD_VER, NULL, WSFWD_OK,
     WSFWD_ERR_HS_UPGRADE, 400},
    {"upgrade h2c", GOOD_HOST "Upgrade: h2c\r\nConnection: Upgrade\r\n" GOOD_KEY GOOD_VER, NULL,
     WSFWD_OK, WSFWD_ERR_HS_UPGRADE, 400},
    {"upgrade websocketx",
     GOOD_HOST "Upgrade: websocketx\r\nConnection: Upgrade\r\n" GOOD_KEY GOOD_VER, NULL, WSFWD_OK,
     WSFWD_ERR_HS_UPGRADE, 400},
    {"upgrade in a list",
     GOOD_HOST "Upgrade: foo/2, WebSocket \r\nConnection: Upgrade\r\n" GOOD_KEY GOOD_VER, NULL,
     WSFWD_OK, WSFWD_OK, 101},
    {"upgrade repeated",
     GOOD_HOST "Upgrade: foo\r\nUpgrade: WEBSOCKET\r\nConnection: Upgrade\r\n" GOOD_KEY GOOD_VER,
     NULL, WSFWD_OK, WSFWD_OK, 101},
    {"no connection", GOOD_HOST "Upgrade: websocket\r\n" GOOD_KEY GOOD_VER, NULL, WSFWD_OK,
     WSFWD_ERR_HS_CONNECTION, 400},
    {"connection keep-alive",
     GOOD_HOST "Upgrade: websocket\r\nConnection: keep-alive\r\n" GOOD_KEY GOOD_VER, NULL, WSFWD_OK,
     WSFWD_ERR_HS_CONNECTION, 400},
    {"connection keep-alive, Upgrade",
     GOOD_HOST "Upgrade: websocket\r\n"
               "Connection: keep-alive, Upgrade\r\n" GOOD_KEY GOOD_VER,
     NULL, WSFWD_OK, WSFWD_OK, 101},
    {"connection repeated",
     GOOD_HOST "Upgrade: websocket\r\nConnection: keep-alive\r\n"
               "connection: upgrade\r\n" GOOD_KEY GOOD_VER,
     NULL, WSFWD_OK, WSFWD_OK, 101},
    {"connection upgrades",
     GOOD_HOST "Upgrade: websocket\r\nConnection: Upgrades\r\n" GOOD_KEY GOOD_VER, NULL, WSFWD_OK,
     WSFWD_ERR_HS_CONNECTION, 400},
    {"no key", GOOD_HOST GOOD_UP GOOD_VER, NULL, WSFWD_OK, WSFWD_ERR_HS_KEY, 400},
    {"two keys", GOOD GOOD_KEY, NULL, WSFWD_OK, WSFWD_ERR_HS_KEY, 400},
    {"key 15 bytes", GOOD_HOST GOOD_UP "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n" GOOD_VER,
     NULL, WSFWD_OK, WSFWD_ERR_HS_KEY, 400},
    {"key 12 bytes", GOOD_HOST GOOD_UP "Sec-WebSocket-Key: dGhlIHNhbXBsZSBu\r\n" GOOD_VER, NULL,
     WSFWD_OK, WSFWD_ERR_HS_KEY, 400},
    {"key not base64", GOOD_HOST GOOD_UP "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ!==\r\n" GOOD_VER,
     NULL, WSFWD_OK, WSFWD_ERR_HS_KEY, 400},
    {"no version", GOOD_HOST GOOD_UP GOOD_KEY, NULL, WSFWD_OK, WSFWD_ERR_HS_VERSION, 426},
    {"version 8", GOOD_HOST GOOD_UP GOOD_KEY "Sec-WebSocket-Version: 8\r\n", NULL, WSFWD_OK,
     WSFWD_ERR_HS_VERSION, 426},
    {"version list", GOOD_HOST GOOD_UP GOOD_KEY "Sec-WebSocket-Version: 13, 8\r\n", NULL, WSFWD_OK,
     WSFWD_ERR_HS_VERSION, 426},
    {"version twice", GOOD GOOD_VER, NULL, WSFWD_OK, WSFWD_ERR_HS_VERSION, 426},
    {"host before version", GOOD_UP GOOD_KEY, NULL, WSFWD_OK, WSFWD_ERR_HS_HOST, 400},
    {"obs-fold", GOOD "X-A: 1\r\n  folded\r\n", NULL, WSFWD_ERR_HTTP_MALFORMED,
     WSFWD_ERR_HTTP_MALFORMED, 400},
    {"leading whitespace", " Host: h\r\n" GOOD, NULL, WSFWD_ERR_HTTP_MALFORMED,
     WSFWD_ERR_HTTP_MALFORMED, 400},
    {"space before colon", GOOD "X-A : 1\r\n", NULL, WSFWD_ERR_HTTP_MALFORMED,
     WSFWD_ERR_HTTP_MALFORMED, 400},
    {"empty name", GOOD ": 1\r\n", NULL, WSFWD_ERR_HTTP_MALFORMED, WSFWD_ERR_HTTP_MALFORMED, 400},
    {"no colon", GOOD "X-A\r\n", NULL, WSFWD_ERR_HTTP_MALFORMED, WSFWD_ERR_HTTP_MALFORMED, 400},
    {"ctl in value", GOOD "X-A: a\x01z\r\n", NULL, WSFWD_ERR_HTTP_MALFORMED,
     WSFWD_ERR_HTTP_MALFORMED, 400},
    {"del in value", GOOD "X-A: a\x7fz\r\n", NULL, WSFWD_ERR_HTTP_MALFORMED,
     WSFWD_ERR_HTTP_MALFORMED, 400},
    {"bare cr", GOOD "X-A: a\rz\r\n", NULL, WSFWD_ERR_HTTP_MALFORMED, WSFWD_ERR_HTTP_MALFORMED,
     400},
    {"bad name char", GOOD "X(A): 1\r\n", NULL, WSFWD_ERR_HTTP_MALFORMED, WSFWD_ERR_HTTP_MALFORMED,
     400},
    {"obs-text value", GOOD "X-A: caf\xc3\xa9\t!\r\n", NULL, WSFWD_OK, WSFWD_OK, 101},
};

static void test_request_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof request_cases / sizeof request_cases[0]; i++) {
        const struct request_case *c = &request_cases[i];
        char text[1024];
        snprintf(text, sizeof text, "%s\r\n%s\r\n", c->line != NULL ? c->line : "GET / HTTP/1.1",
                 c->headers);
        int rc;
        wsfwd_request *req = parse_request(text, 0, &rc);
        print_message("case: %s\n", c->name);
        assert_int_equal(rc, c->feed_rc);
        assert_int_equal(wsfwd_request_check(req), c->check);
        assert_int_equal(wsfwd_request_status(req), c->status);
        assert_int_equal(wsfwd_error_http_status(c->check), c->check == WSFWD_OK ? 0 : c->status);
        if (rc != WSFWD_OK) {
            assert_true(str_is(wsfwd_request_method(req), NULL));
            assert_true(str_is(wsfwd_request_host(req), NULL));
            assert_false(wsfwd_request_is_upgrade(req));
        }
        wsfwd_request_free(req);
    }
}

static void test_nul_byte_malformed(void **state)
{
    (void)state;
    char text[256];
    int n = snprintf(text, sizeof text, "GET / HTTP/1.1\r\n" GOOD "X-A: a?b\r\n\r\n");
    char *q = strchr(text, '?');
    *q = '\0';
    wsfwd_request *req;
    assert_int_equal(wsfwd_request_new(NULL, 0, &req), WSFWD_OK);
    size_t used;
    assert_int_equal(wsfwd_request_feed(req, (uint8_t *)text, (size_t)n, &used),
                     WSFWD_ERR_HTTP_MALFORMED);
    wsfwd_request_free(req);

    /* NUL in a name and in the request line. */
    const char *lines[] = {"GET / HTTP/1.1\r\nX-?: 1\r\n\r\n", "GET /? HTTP/1.1\r\n\r\n"};
    for (size_t i = 0; i < 2; i++) {
        n = snprintf(text, sizeof text, "%s", lines[i]);
        *strchr(text, '?') = '\0';
        assert_int_equal(wsfwd_request_new(NULL, 0, &req), WSFWD_OK);
        assert_int_equal(wsfwd_request_feed(req, (uint8_t *)text, (size_t)n, &used),
                         WSFWD_ERR_HTTP_MALFORMED);
        wsfwd_request_free(req);
    }
}

static void test_too_large(void **state)
{
    (void)state;
    size_t len = strlen(valid_request);
    /* Exactly the limit passes; one byte less is 431. */
    int rc;
    wsfwd_request *req = parse_request(valid_request, len, &rc);
    assert_int_equal(rc, WSFWD_OK);
    wsfwd_request_free(req);

    req = parse_request(valid_request, len - 1, &rc);
    assert_int_equal(rc, WSFWD_ERR_HTTP_TOO_LARGE);
    assert_int_equal(wsfwd_request_check(req), WSFWD_ERR_HTTP_TOO_LARGE);
    assert_int_equal(wsfwd_request_status(req), 431);
    size_t used = 99;
    assert_int_equal(wsfwd_request_feed(req, (const uint8_t *)"x", 1, &used),
                     WSFWD_ERR_HTTP_TOO_LARGE);
    assert_int_equal(used, 0);
    wsfwd_request_free(req);

    /* The default limit is 8192 bytes. */
    char *big = malloc(9000);
    assert_non_null(big);
    memset(big, 'a', 9000);
    memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
    assert_int_equal(wsfwd_request_new(NULL, 0, &req), WSFWD_OK);
    assert_int_equal(wsfwd_request_feed(req, (uint8_t *)big, 9000, &used),
                     WSFWD_ERR_HTTP_TOO_LARGE);
    assert_int_equal(used, 8192);
    wsfwd_request_free(req);
    free(big);
}

static void test_case_insensitive(void **state)
{
    (void)state;
    const char *text = "GET / HTTP/1.1\r\nhOsT: h\r\nUPGRADE: WebSocket\r\n"
                       "connection: UPGRADE\r\nsec-websocket-key: " RFC_KEY "\r\n"
                       "SEC-WEBSOCKET-VERSION: 13\r\nsec-websocket-PROTOCOL: A\r\n\r\n";
    int rc;
    wsfwd_request *req = parse_request(text, 0, &rc);
    assert_int_equal(rc, WSFWD_OK);
    assert_int_equal(wsfwd_request_check(req), WSFWD_OK);
    assert_true(str_is(wsfwd_request_host(req), "h"));
    assert_true(str_is(wsfwd_request_key(req), RFC_KEY));
    assert_true(str_is(wsfwd_request_header(req, "Upgrade"), "WebSocket"));
    assert_int_equal(wsfwd_request_subprotocol_count(req), 1);
    assert_true(str_is(wsfwd_request_subprotocol(req, 0), "A"));
    wsfwd_request_free(req);
}

static void test_value_trimming(void **state)
{
    (void)state;
    const char *text = "GET / HTTP/1.1\r\nHost: \t h.example \t\r\nX-Empty:\r\nX-Sp:   \r\n"
                       "X-In: a  b\r\n\r\n";
    int rc;
    wsfwd_request *req = parse_request(text, 0, &rc);
    assert_int_equal(rc, WSFWD_OK);
    assert_true(str_is(wsfwd_request_host(req), "h.example"));
    assert_int_equal(wsfwd_request_header(req, "x-empty").len, 0);
    assert_non_null(wsfwd_request_header(req, "x-empty").ptr);
    assert_int_equal(wsfwd_request_header(req, "x-sp").len, 0);
    assert_true(str_is(wsfwd_request_header(req, "x-in"), "a  b"));
    wsfwd_request_free(req);
}

static void test_subprotocol_list(void **state)
{
    (void)state;
    const char *text = "GET / HTTP/1.1\r\n" GOOD "Sec-WebSocket-Protocol: a, b ,c\r\n"
                       "X-Other: z\r\nSec-WebSocket-Protocol: ,, d,\te\t, bad token, f\"g, h\r\n"
                       "\r\n";
    int rc;
    wsfwd_request *req = parse_request(text, 0, &rc);
    assert_int_equal(rc, WSFWD_OK);
    const char *want[] = {"a", "b", "c", "d", "e", "h"};
    assert_int_equal(wsfwd_request_subprotocol_count(req), 6);
    for (size_t i = 0; i < 6; i++) {
        assert_true(str_is(wsfwd_request_subprotocol(req, i), want[i]));
    }
    wsfwd_request_free(req);

    /* Past 32 offers the rest are ignored. */
    char many[1024];
    size_t n =
        (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\n" GOOD "Sec-WebSocket-Protocol: p0");
    for (int i = 1; i < 40; i++) {
        n += (size_t)snprintf(many + n, sizeof many - n, ", p%d", i);
    }
    snprintf(many + n, sizeof many - n, "\r\n\r\n");
    req = parse_request(many, 0, &rc);
    assert_int_equal(rc, WSFWD_OK);
    assert_int_equal(wsfwd_request_check(req), WSFWD_OK);
    assert_int_equal(wsfwd_request_subprotocol_count(req), 32);
    assert_true(str_is(wsfwd_request_subprotocol(req, 31), "p31"));
    size_t len;
    char buf[512];
    assert_int_equal(wsfwd_request_write_response(req, 101, "p31", buf, sizeof buf, &len),
                     WSFWD_OK);
    assert_int_equal(wsfwd_request_write_response(req, 101, "p32", buf, sizeof buf, &len),
                     WSFWD_ERR_INVALID);
    wsfwd_request_free(req);
}

static void test_null_arguments(void **state)
{
    (void)state;
    size_t used = 7;
    assert_int_equal(wsfwd_request_new(NULL, 0, NULL), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_request_feed(NULL, (const uint8_t *)"x", 1, &used), WSFWD_ERR_INVALID);
    assert_int_equal(used, 0);
    wsfwd_request *req;
    assert_int_equal(wsfwd_request_new(NULL, 0, &req), WSFWD_OK);
    assert_int_equal(wsfwd_request_feed(req, NULL, 1, &used), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_request_feed(req, (const uint8_t *)"x", 1, NULL), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_request_feed(req, NULL, 0, &used), WSFWD_INCOMPLETE);
    wsfwd_request_free(req);
    wsfwd_request_free(NULL);
    wsfwd_response_free(NULL);
    assert_int_equal(wsfwd_request_check(NULL), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_request_status(NULL), 0);
    assert_false(wsfwd_request_is_upgrade(NULL));
    assert_true(str_is(wsfwd_request_path(NULL), NULL));
    assert_true(str_is(wsfwd_request_header(NULL, "Host"), NULL));
    assert_int_equal(wsfwd_request_subprotocol_count(NULL), 0);
    assert_int_equal(wsfwd_response_status(NULL), 0);
    assert_int_equal(wsfwd_response_check(NULL, RFC_KEY, NULL), WSFWD_ERR_INVALID);
}

/* ---- Server side: responses ------------------------------------------------------------ */

static void test_write_101(void **state)
{
    (void)state;
    int rc;
    wsfwd_request *req = parse_request(valid_request, 0, &rc);
    char buf[512];
    size_t len = 0;
    assert_int_equal(wsfwd_request_write_response(req, 101, NULL, buf, sizeof buf, &len), WSFWD_OK);
    const char *want = "HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                       "\r\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);

    assert_int_equal(wsfwd_request_write_response(req, 101, "superchat", buf, sizeof buf, &len),
                     WSFWD_OK);
    want = "HTTP/1.1 101 Switching Protocols\r\n"
           "Upgrade: websocket\r\n"
           "Connection: Upgrade\r\n"
           "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
           "Sec-WebSocket-Protocol: superchat\r\n"
           "\r\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);

    /* "" means no subprotocol. */
    assert_int_equal(wsfwd_request_write_response(req, 101, "", buf, sizeof buf, &len), WSFWD_OK);
    buf[len] = '\0';
    assert_null(strstr(buf, "Sec-WebSocket-Protocol"));
    /* Not offered, or offered with another case. */
    assert_int_equal(wsfwd_request_write_response(req, 101, "mqtt", buf, sizeof buf, &len),
                     WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_request_write_response(req, 101, "Chat", buf, sizeof buf, &len),
                     WSFWD_ERR_INVALID);
    wsfwd_request_free(req);
}

static void test_write_101_refused_for_invalid(void **state)
{
    (void)state;
    int rc;
    char buf[512];
    size_t len;
    wsfwd_request *req;
    assert_int_equal(wsfwd_request_new(NULL, 0, &req), WSFWD_OK);
    assert_int_equal(wsfwd_request_write_response(req, 101, NULL, buf, sizeof buf, &len),
                     WSFWD_ERR_INVALID);
    wsfwd_request_free(req);

    req = parse_request("GET / HTTP/1.1\r\n" GOOD_HOST GOOD_UP GOOD_KEY "\r\n", 0, &rc);
    assert_int_equal(wsfwd_request_write_response(req, 101, NULL, buf, sizeof buf, &len),
                     WSFWD_ERR_HS_VERSION);
    wsfwd_request_free(req);
}

static void expect_error_response(const wsfwd_request *req, int status, const char *body,
                                  const char *extra)
{
    char buf[1024], want[1024];
    size_t len = 0;
    assert_int_equal(wsfwd_request_write_response(req, status, NULL, buf, sizeof buf, &len),
                     WSFWD_OK);
    int n = snprintf(want, sizeof want,
                     "HTTP/1.1 %d %s\r\nConnection: close\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n%s\r\n%s",
                     status, wsfwd_http_reason(status), strlen(body), extra, body);
    assert_int_equal(len, (size_t)n);
    assert_memory_equal(buf, want, len);
}

static void test_write_errors(void **state)
{
    (void)state;
    int rc;
    wsfwd_request *req =
        parse_request("GET / HTTP/1.1\r\n" GOOD_HOST GOOD_UP GOOD_VER "\r\n", 0, &rc);
    expect_error_response(
        req, 400, "400 Bad Request: Sec-WebSocket-Key missing, repeated or not 16 bytes\n", "");
    expect_error_response(req, 401, "401 Unauthorized\n",
                          "WWW-Authenticate: Bearer realm=\"wsfwd\"\r\n");
    expect_error_response(req, 403, "403 Forbidden\n", "");
    expect_error_response(req, 404, "404 Not Found\n", "");
    expect_error_response(req, 503, "503 Service Unavailable\n", "");
    expect_error_response(req, 426, "426 Upgrade Required\n", "Sec-WebSocket-Version: 13\r\n");
    expect_error_response(req, 405, "405 Method Not Allowed\n", "Allow: GET\r\n");
    expect_error_response(req, 599, "599 Unknown\n", "");
    wsfwd_request_free(req);

    req = parse_request("PUT / HTTP/1.1\r\n" GOOD "\r\n", 0, &rc);
    expect_error_response(req, 405, "405 Method Not Allowed: HTTP method is not GET\n",
                          "Allow: GET\r\n");
    wsfwd_request_free(req);

    req = parse_request("GET / HTTP/1.1\r\n" GOOD_HOST GOOD_UP GOOD_KEY "\r\n", 0, &rc);
    expect_error_response(req, 426, "426 Upgrade Required: Sec-WebSocket-Version is not 13\n",
                          "Sec-WebSocket-Version: 13\r\n");
    wsfwd_request_free(req);

    req = parse_request(valid_request, 50, &rc);
    expect_error_response(req, 431,
                          "431 Request Header Fields Too Large: HTTP header block too large\n", "");
    wsfwd_request_free(req);

    /* A valid upgrade may still be refused; no rule is named then. */
    req = parse_request(valid_request, 0, &rc);
    expect_error_response(req, 400, "400 Bad Request\n", "");
    char buf[64];
    size_t len;
    assert_int_equal(wsfwd_request_write_response(req, 99, NULL, buf, sizeof buf, &len),
                     WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_request_write_response(req, 600, NULL, buf, sizeof buf, &len),
                     WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_request_write_response(req, 100, NULL, buf, sizeof buf, &len),
                     WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_request_write_response(req, 204, NULL, buf, sizeof buf, &len),
                     WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_request_write_response(req, 400, NULL, NULL, 10, &len),
                     WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_request_write_response(req, 400, NULL, buf, sizeof buf, NULL),
                     WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_request_write_response(NULL, 400, NULL, buf, sizeof buf, &len),
                     WSFWD_ERR_INVALID);
    wsfwd_request_free(req);
}

static void test_write_nobufs(void **state)
{
    (void)state;
    int rc;
    wsfwd_request *req = parse_request(valid_request, 0, &rc);
    const int statuses[] = {101, 400, 426};
    for (size_t s = 0; s < 3; s++) {
        size_t need = 0;
        assert_int_equal(wsfwd_request_write_response(req, statuses[s], "chat", NULL, 0, &need),
                         WSFWD_ERR_NOBUFS);
        assert_true(need > 0);
        char *buf = malloc(need);
        assert_non_null(buf);
        for (size_t cap = 0; cap < need; cap++) {
            size_t len = 0;
            /* An exact-size allocation lets ASan catch any write past cap. */
            char *small = malloc(cap > 0 ? cap : 1);
            assert_int_equal(
                wsfwd_request_write_response(req, statuses[s], "chat", small, cap, &len),
                WSFWD_ERR_NOBUFS);
            assert_int_equal(len, need);
            free(small);
        }
        size_t len = 0;
        assert_int_equal(wsfwd_request_write_response(req, statuses[s], "chat", buf, need, &len),
                         WSFWD_OK);
        assert_int_equal(len, need);
        free(buf);
    }
    wsfwd_request_free(req);
}

static void test_http_head_helper(void **state)
{
    (void)state;
    char buf[256];
    size_t len = 0;
    assert_int_equal(
        wsfwd_http_write_head(buf, sizeof buf, &len, 200, "text/html", "X-A: b\r\n", 5), WSFWD_OK);
    const char *want = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/html\r\n"
                       "Content-Length: 5\r\nX-A: b\r\n\r\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);

    assert_int_equal(wsfwd_http_write_head(buf, sizeof buf, &len, 204, NULL, NULL, 0), WSFWD_OK);
    want = "HTTP/1.1 204 No Content\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);

    assert_int_equal(wsfwd_http_write_head(NULL, 0, &len, 200, NULL, NULL, 1234567),
                     WSFWD_ERR_NOBUFS);
    assert_int_equal(
        len, strlen("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1234567\r\n\r\n"));
    assert_int_equal(wsfwd_http_write_head(buf, sizeof buf, &len, 99, NULL, NULL, 0),
                     WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_http_write_head(buf, sizeof buf, &len, 600, NULL, NULL, 0),
                     WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_http_write_head(buf, sizeof buf, &len, 200, "a\r\nX: y", NULL, 0),
                     WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_http_write_head(buf, sizeof buf, &len, 200, "a\n", NULL, 0),
                     WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_http_write_head(buf, sizeof buf, NULL, 200, NULL, NULL, 0),
                     WSFWD_ERR_INVALID);

    assert_string_equal(wsfwd_http_reason(404), "Not Found");
    assert_string_equal(wsfwd_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(wsfwd_http_reason(299), "Unknown");
    assert_string_equal(wsfwd_http_reason(-1), "Unknown");
}

/* ---- Client side ----------------------------------------------------------------------- */

static void test_client_request(void **state)
{
    (void)state;
    char buf[512];
    size_t len = 0;
    assert_int_equal(wsfwd_handshake_write_request("server.example.com", "/chat?x=1", NULL, NULL,
                                                   RFC_KEY, buf, sizeof buf, &len),
                     WSFWD_OK);
    const char *want = "GET /chat?x=1 HTTP/1.1\r\n"
                       "Host: server.example.com\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Key: " RFC_KEY "\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "\r\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);

    assert_int_equal(wsfwd_handshake_write_request("h:8080", "/", "http://o", "chat, superchat",
                                                   RFC_KEY, buf, sizeof buf, &len),
                     WSFWD_OK);
    want = "GET / HTTP/1.1\r\n"
           "Host: h:8080\r\n"
           "Upgrade: websocket\r\n"
           "Connection: Upgrade\r\n"
           "Sec-WebSocket-Key: " RFC_KEY "\r\n"
           "Sec-WebSocket-Version: 13\r\n"
           "Origin: http://o\r\n"
           "Sec-WebSocket-Protocol: chat, superchat\r\n"
           "\r\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);

    /* Our own parser accepts it as a valid upgrade. */
    wsfwd_request *req;
    assert_int_equal(wsfwd_request_new(NULL, 0, &req), WSFWD_OK);
    size_t used;
    assert_int_equal(wsfwd_request_feed(req, (uint8_t *)buf, len, &used), WSFWD_OK);
    assert_int_equal(wsfwd_request_check(req), WSFWD_OK);
    assert_int_equal(wsfwd_request_subprotocol_count(req), 2);
    wsfwd_request_free(req);

    size_t need;
    assert_int_equal(wsfwd_handshake_write_request("h", "/", NULL, NULL, RFC_KEY, NULL, 0, &need),
                     WSFWD_ERR_NOBUFS);
    assert_int_equal(
        wsfwd_handshake_write_request("h", "/", NULL, NULL, RFC_KEY, buf, need - 1, &len),
        WSFWD_ERR_NOBUFS);
    assert_int_equal(len, need);
    assert_int_equal(wsfwd_handshake_write_request("h", "/", NULL, NULL, RFC_KEY, buf, need, &len),
                     WSFWD_OK);
}

static void test_client_request_invalid(void **state)
{
    (void)state;
    char buf[512];
    size_t len;
    const struct {
        const char *host, *path, *origin, *protos, *key;
    } bad[] = {
        {NULL, "/", NULL, NULL, RFC_KEY},
        {"h", NULL, NULL, NULL, RFC_KEY},
        {"h", "/", NULL, NULL, NULL},
        {"", "/", NULL, NULL, RFC_KEY},
        {"h\r\nX: y", "/", NULL, NULL, RFC_KEY},
        {"h\n", "/", NULL, NULL, RFC_KEY},
        {"h", "/a\r\n", NULL, NULL, RFC_KEY},
        {"h", "/a b", NULL, NULL, RFC_KEY},
        {"h", "a", NULL, NULL, RFC_KEY},
        {"h", "", NULL, NULL, RFC_KEY},
        {"h", "/", "http://o\r", NULL, RFC_KEY},
        {"h", "/", NULL, "chat\n", RFC_KEY},
        {"h", "/", NULL, NULL, "short"},
        {"h", "/", NULL, NULL, RFC_KEY "\r\n"},
        {"h", "/", NULL, NULL, "dGhlIHNhbXBsZSBub25jZ!=="},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(wsfwd_handshake_write_request(bad[i].host, bad[i].path, bad[i].origin,
                                                       bad[i].protos, bad[i].key, buf, sizeof buf,
                                                       &len),
                         WSFWD_ERR_INVALID);
    }
    assert_int_equal(
        wsfwd_handshake_write_request("h", "/", NULL, NULL, RFC_KEY, buf, sizeof buf, NULL),
        WSFWD_ERR_INVALID);
}

static wsfwd_response *parse_response(const char *text, int *rc)
{
    wsfwd_response *resp = NULL;
    assert_int_equal(wsfwd_response_new(NULL, 0, &resp), WSFWD_OK);
    size_t used;
    *rc = wsfwd_response_feed(resp, test_guarded(text, strlen(text)), strlen(text), &used);
    return resp;
}

#define RESP_101 "HTTP/1.1 101 Switching Protocols\r\n"
#define RESP_UP "Upgrade: websocket\r\nConnection: Upgrade\r\n"
#define RESP_ACCEPT "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"

static void test_response_valid(void **state)
{
    (void)state;
    /* What our server writes, followed by a frame. */
    int rc;
    wsfwd_request *req = parse_request(valid_request, 0, &rc);
    char buf[512];
    size_t len;
    assert_int_equal(wsfwd_request_write_response(req, 101, "chat", buf, sizeof buf, &len),
                     WSFWD_OK);
    wsfwd_request_free(req);
    memcpy(buf + len, "\x81\x02hi", 4);

    for (size_t cut = 0; cut <= len + 4; cut++) {
        wsfwd_response *resp;
        assert_int_equal(wsfwd_response_new(NULL, 0, &resp), WSFWD_OK);
        assert_int_equal(wsfwd_response_status(resp), 0);
        assert_int_equal(wsfwd_response_check(resp, RFC_KEY, "chat"), WSFWD_INCOMPLETE);
        size_t used1 = 0, used2 = 0;
        rc = wsfwd_response_feed(resp, test_guarded(buf, cut), cut, &used1);
        if (rc == WSFWD_INCOMPLETE) {
            assert_int_equal(used1, cut);
            rc = wsfwd_response_feed(resp, test_guarded(buf + cut, len + 4 - cut), len + 4 - cut,
                                     &used2);
        }
        assert_int_equal(rc, WSFWD_OK);
        assert_int_equal(used1 + used2, len);
        assert_int_equal(wsfwd_response_status(resp), 101);
        assert_int_equal(wsfwd_response_check(resp, RFC_KEY, "superchat, chat"), WSFWD_OK);
        assert_true(str_is(wsfwd_response_subprotocol(resp), "chat"));
        assert_true(str_is(wsfwd_response_header(resp, "sec-websocket-accept"), RFC_ACCEPT));
        wsfwd_response_free(resp);
    }
}

struct response_case {
    const char *name;
    const char *text;
    const char *offered;
    int feed_rc;
    int check;
};

static const struct response_case response_cases[] = {
    {"valid", RESP_101 RESP_UP RESP_ACCEPT "\r\n", NULL, WSFWD_OK, WSFWD_OK},
    {"no reason", "HTTP/1.1 101\r\n" RESP_UP RESP_ACCEPT "\r\n", NULL, WSFWD_OK, WSFWD_OK},
    {"empty reason", "HTTP/1.1 101 \r\n" RESP_UP RESP_ACCEPT "\r\n", NULL, WSFWD_OK, WSFWD_OK},
    {"case",
     RESP_101 "UPGRADE: WebSocket\r\nconnection: keep-alive, upgrade\r\n"
              "sec-websocket-accept: " RFC_ACCEPT "\r\n\r\n",
     NULL, WSFWD_OK, WSFWD_OK},
    {"status 200", "HTTP/1.1 200 OK\r\n" RESP_UP RESP_ACCEPT "\r\n", NULL, WSFWD_OK,
     WSFWD_ERR_HS_STATUS},
    {"status 400", "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", NULL, WSFWD_OK,
     WSFWD_ERR_HS_STATUS},
    {"no upgrade", RESP_101 "Connection: Upgrade\r\n" RESP_ACCEPT "\r\n", NULL, WSFWD_OK,
     WSFWD_ERR_HS_RESP_UPGRADE},
    {"upgrade h2c", RESP_101 "Upgrade: h2c\r\nConnection: Upgrade\r\n" RESP_ACCEPT "\r\n", NULL,
     WSFWD_OK, WSFWD_ERR_HS_RESP_UPGRADE},
    {"no connection", RESP_101 "Upgrade: websocket\r\n" RESP_ACCEPT "\r\n", NULL, WSFWD_OK,
     WSFWD_ERR_HS_RESP_CONNECTION},
    {"connection close", RESP_101 "Upgrade: websocket\r\nConnection: close\r\n" RESP_ACCEPT "\r\n",
     NULL, WSFWD_OK, WSFWD_ERR_HS_RESP_CONNECTION},
    {"no accept", RESP_101 RESP_UP "\r\n", NULL, WSFWD_OK, WSFWD_ERR_HS_ACCEPT},
    {"wrong accept",
     RESP_101 RESP_UP "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOp=\r\n"
                      "\r\n",
     NULL, WSFWD_OK, WSFWD_ERR_HS_ACCEPT},
    {"accept case",
     RESP_101 RESP_UP "Sec-WebSocket-Accept: S3PPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                      "\r\n",
     NULL, WSFWD_OK, WSFWD_ERR_HS_ACCEPT},
    {"two accepts", RESP_101 RESP_UP RESP_ACCEPT RESP_ACCEPT "\r\n", NULL, WSFWD_OK,
     WSFWD_ERR_HS_ACCEPT},
    {"status before accept", "HTTP/1.1 200 OK\r\n\r\n", NULL, WSFWD_OK, WSFWD_ERR_HS_STATUS},
    {"proto offered", RESP_101 RESP_UP RESP_ACCEPT "Sec-WebSocket-Protocol: b\r\n\r\n", "a, b",
     WSFWD_OK, WSFWD_OK},
    {"proto not offered", RESP_101 RESP_UP RESP_ACCEPT "Sec-WebSocket-Protocol: c\r\n\r\n", "a, b",
     WSFWD_OK, WSFWD_ERR_HS_SUBPROTOCOL},
    {"proto none offered", RESP_101 RESP_UP RESP_ACCEPT "Sec-WebSocket-Protocol: a\r\n\r\n", NULL,
     WSFWD_OK, WSFWD_ERR_HS_SUBPROTOCOL},
    {"proto list", RESP_101 RESP_UP RESP_ACCEPT "Sec-WebSocket-Protocol: a, b\r\n\r\n", "a, b",
     WSFWD_OK, WSFWD_ERR_HS_SUBPROTOCOL},
    {"proto twice",
     RESP_101 RESP_UP RESP_ACCEPT "Sec-WebSocket-Protocol: a\r\n"
                                  "Sec-WebSocket-Protocol: a\r\n\r\n",
     "a", WSFWD_OK, WSFWD_ERR_HS_SUBPROTOCOL},
    {"proto empty", RESP_101 RESP_UP RESP_ACCEPT "Sec-WebSocket-Protocol:\r\n\r\n", "a", WSFWD_OK,
     WSFWD_ERR_HS_SUBPROTOCOL},
    {"proto case", RESP_101 RESP_UP RESP_ACCEPT "Sec-WebSocket-Protocol: A\r\n\r\n", "a", WSFWD_OK,
     WSFWD_ERR_HS_SUBPROTOCOL},
    {"extension",
     RESP_101 RESP_UP RESP_ACCEPT "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                                  "\r\n",
     NULL, WSFWD_OK, WSFWD_ERR_HS_EXTENSION},
    {"proto before extension",
     RESP_101 RESP_UP RESP_ACCEPT "Sec-WebSocket-Protocol: c\r\n"
                                  "Sec-WebSocket-Extensions: x\r\n\r\n",
     "a", WSFWD_OK, WSFWD_ERR_HS_SUBPROTOCOL},
    {"http/1.0", "HTTP/1.0 101 Switching Protocols\r\n" RESP_UP RESP_ACCEPT "\r\n", NULL,
     WSFWD_ERR_HTTP_RESPONSE, WSFWD_ERR_HTTP_RESPONSE},
    {"two-digit status", "HTTP/1.1 10 X\r\n\r\n", NULL, WSFWD_ERR_HTTP_RESPONSE,
     WSFWD_ERR_HTTP_RESPONSE},
    {"status 600", "HTTP/1.1 600 X\r\n\r\n", NULL, WSFWD_ERR_HTTP_RESPONSE,
     WSFWD_ERR_HTTP_RESPONSE},
    {"four-digit status", "HTTP/1.1 1010 X\r\n\r\n", NULL, WSFWD_ERR_HTTP_RESPONSE,
     WSFWD_ERR_HTTP_RESPONSE},
    {"not http", "ICY 200 OK\r\n\r\n", NULL, WSFWD_ERR_HTTP_RESPONSE, WSFWD_ERR_HTTP_RESPONSE},
    {"ctl in reason", "HTTP/1.1 101 A\x01\r\n\r\n", NULL, WSFWD_ERR_HTTP_RESPONSE,
     WSFWD_ERR_HTTP_RESPONSE},
    {"obs-fold", RESP_101 RESP_UP " x\r\n" RESP_ACCEPT "\r\n", NULL, WSFWD_ERR_HTTP_RESPONSE,
     WSFWD_ERR_HTTP_RESPONSE},
    {"space before colon", RESP_101 "Upgrade : websocket\r\n\r\n", NULL, WSFWD_ERR_HTTP_RESPONSE,
     WSFWD_ERR_HTTP_RESPONSE},
};

static void test_response_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof response_cases / sizeof response_cases[0]; i++) {
        const struct response_case *c = &response_cases[i];
        print_message("case: %s\n", c->name);
        int rc;
        wsfwd_response *resp = parse_response(c->text, &rc);
        assert_int_equal(rc, c->feed_rc);
        assert_int_equal(wsfwd_response_check(resp, RFC_KEY, c->offered), c->check);
        if (rc != WSFWD_OK) {
            assert_int_equal(wsfwd_response_status(resp), 0);
            assert_true(str_is(wsfwd_response_header(resp, "Upgrade"), NULL));
        }
        wsfwd_response_free(resp);
    }
}

static void test_response_too_large(void **state)
{
    (void)state;
    const char *text = RESP_101 RESP_UP RESP_ACCEPT "\r\n";
    wsfwd_response *resp;
    assert_int_equal(wsfwd_response_new(NULL, 40, &resp), WSFWD_OK);
    size_t used;
    assert_int_equal(wsfwd_response_feed(resp, (const uint8_t *)text, strlen(text), &used),
                     WSFWD_ERR_HTTP_TOO_LARGE);
    assert_int_equal(used, 40);
    assert_int_equal(wsfwd_response_check(resp, RFC_KEY, NULL), WSFWD_ERR_HTTP_TOO_LARGE);
    assert_int_equal(wsfwd_response_feed(resp, (const uint8_t *)text, 1, &used),
                     WSFWD_ERR_HTTP_TOO_LARGE);
    assert_int_equal(used, 0);
    wsfwd_response_free(resp);
    assert_int_equal(wsfwd_response_new(NULL, 0, NULL), WSFWD_ERR_INVALID);
}

/* ---- Allocation failure injection ------------------------------------------------------ */

/* One server exchange in 100-byte pieces, large enough to grow the buffer; true on success. */
static bool request_scenario(const wsfwd_allocator *a, const char *text, size_t len)
{
    wsfwd_request *req;
    int rc = wsfwd_request_new(a, 0, &req);
    if (rc != WSFWD_OK) {
        assert_int_equal(rc, WSFWD_ERR_NOMEM);
        return false;
    }
    bool ok = true;
    for (size_t off = 0; off < len; off += 100) {
        size_t n = len - off < 100 ? len - off : 100;
        size_t used;
        rc = wsfwd_request_feed(req, test_guarded(text + off, n), n, &used);
        if (rc == WSFWD_ERR_NOMEM) {
            ok = false;
            assert_int_equal(wsfwd_request_status(req), 500);
            assert_int_equal(wsfwd_request_feed(req, (const uint8_t *)"x", 1, &used),
                             WSFWD_ERR_NOMEM);
            char buf[512];
            size_t blen;
            assert_int_equal(wsfwd_request_write_response(req, 500, NULL, buf, sizeof buf, &blen),
                             WSFWD_OK);
            break;
        }
        assert_true(rc == WSFWD_OK || rc == WSFWD_INCOMPLETE);
    }
    if (ok) {
        assert_int_equal(wsfwd_request_check(req), WSFWD_OK);
        assert_int_equal(wsfwd_request_subprotocol_count(req), 2);
    }
    wsfwd_request_free(req);
    return ok;
}

static bool response_scenario(const wsfwd_allocator *a, const char *text, size_t len)
{
    wsfwd_response *resp;
    int rc = wsfwd_response_new(a, 0, &resp);
    if (rc != WSFWD_OK) {
        assert_int_equal(rc, WSFWD_ERR_NOMEM);
        return false;
    }
    size_t used;
    rc = wsfwd_response_feed(resp, test_guarded(text, len), len, &used);
    bool ok = rc == WSFWD_OK;
    if (ok) {
        assert_int_equal(wsfwd_response_check(resp, RFC_KEY, NULL), WSFWD_OK);
    } else {
        assert_int_equal(rc, WSFWD_ERR_NOMEM);
        assert_int_equal(wsfwd_response_check(resp, RFC_KEY, NULL), WSFWD_ERR_NOMEM);
    }
    wsfwd_response_free(resp);
    return ok;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    /* A request of about 3 KiB: the buffer starts at 1 KiB and is grown twice. */
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text,
                                "GET / HTTP/1.1\r\n" GOOD "Sec-WebSocket-Protocol: a, b\r\n");
    while (n < 3000) {
        n += (size_t)snprintf(text + n, sizeof text - n, "X-Filler: 0123456789abcdef\r\n");
    }
    n += (size_t)snprintf(text + n, sizeof text - n, "\r\n");

    int fail_at = 1;
    for (;; fail_at++) {
        test_alloc f;
        test_alloc_init(&f);
        f.fail_at = fail_at;
        wsfwd_allocator a = test_alloc_hooks(&f);
        bool ok = request_scenario(&a, text, n);
        assert_int_equal(f.live, 0);
        if (ok) {
            assert_true(f.calls < fail_at); /* succeeded because nothing failed */
            break;
        }
    }
    assert_true(fail_at >= 4); /* struct, buffer, two growths, fields */

    const char *resp = RESP_101 RESP_UP RESP_ACCEPT "\r\n";
    for (fail_at = 1;; fail_at++) {
        test_alloc f;
        test_alloc_init(&f);
        f.fail_at = fail_at;
        wsfwd_allocator a = test_alloc_hooks(&f);
        bool ok = response_scenario(&a, resp, strlen(resp));
        assert_int_equal(f.live, 0);
        if (ok) {
            break;
        }
    }
    assert_true(fail_at >= 3);
}

/* ---- The request copied, the reason phrase, percent-decoding ---------------------------- */

static void test_request_copy(void **state)
{
    (void)state;
    static const char *const texts[] = {
        valid_request,
        "GET /no-query HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /empty? HTTP/1.1\nHost: h\nX-Empty:\n\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int rc;
        wsfwd_request *req = parse_request(texts[i], 0, &rc);
        assert_int_equal(rc, WSFWD_OK);
        char want[2048], got[2048];
        request_summary(req, rc, 0, want, sizeof want);
        wsfwd_request *copy = NULL;
        assert_int_equal(wsfwd_request_copy(req, NULL, &copy), WSFWD_OK);
        /* The original's buffer is gone (and poisoned): the copy stands alone. */
        memset((char *)wsfwd_request_method(req).ptr, 'Z', strlen(texts[i]));
        wsfwd_request_free(req);
        request_summary(copy, rc, 0, got, sizeof got);
        assert_string_equal(got, want);
        wsfwd_request *again = NULL; /* a copy of a copy */
        assert_int_equal(wsfwd_request_copy(copy, NULL, &again), WSFWD_OK);
        wsfwd_request_free(copy);
        request_summary(again, rc, 0, got, sizeof got);
        assert_string_equal(got, want);
        /* It answers like the original. */
        char buf[512];
        size_t len;
        assert_int_equal(wsfwd_request_write_response(again, 404, NULL, buf, sizeof buf, &len),
                         WSFWD_OK);
        wsfwd_request_free(again);
    }

    /* Only a complete, well-formed request. */
    wsfwd_request *copy = (wsfwd_request *)1;
    assert_int_equal(wsfwd_request_copy(NULL, NULL, &copy), WSFWD_ERR_INVALID);
    assert_null(copy);
    int rc;
    wsfwd_request *req = parse_request("GET / HTTP/1.1\r\nHost: h\r\n", 0, &rc);
    assert_int_equal(rc, WSFWD_INCOMPLETE);
    assert_int_equal(wsfwd_request_copy(req, NULL, &copy), WSFWD_ERR_INVALID);
    wsfwd_request_free(req);
    req = parse_request("GET / HTTP/1.1\r\nBad Header\r\n\r\n", 0, &rc);
    assert_int_equal(rc, WSFWD_ERR_HTTP_MALFORMED);
    assert_int_equal(wsfwd_request_copy(req, NULL, &copy), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_request_copy(req, NULL, NULL), WSFWD_ERR_INVALID);
    wsfwd_request_free(req);

    /* Every allocation failure: NOMEM and nothing leaked. */
    req = parse_request(valid_request, 0, &rc);
    for (int fail_at = 1;; fail_at++) {
        test_alloc f;
        test_alloc_init(&f);
        f.fail_at = fail_at;
        wsfwd_allocator a = test_alloc_hooks(&f);
        rc = wsfwd_request_copy(req, &a, &copy);
        if (rc == WSFWD_OK) {
            assert_true(fail_at > 3); /* struct, bytes, fields */
            assert_true(str_is(wsfwd_request_path(copy), "/chat"));
            wsfwd_request_free(copy);
            assert_int_equal(f.live, 0);
            break;
        }
        assert_int_equal(rc, WSFWD_ERR_NOMEM);
        assert_null(copy);
        assert_int_equal(f.live, 0);
    }
    wsfwd_request_free(req);
}

static void test_response_reason(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *reason; /* NULL: absent */
    } cases[] = {
        {RESP_101 RESP_UP "\r\n", "Switching Protocols"},
        {"HTTP/1.1 101\r\n\r\n", ""},
        {"HTTP/1.1 101 \r\n\r\n", ""},
        {"HTTP/1.1 403 Forbidden by policy\r\n\r\n", "Forbidden by policy"},
        {"HTTP/1.1 503 Service Unavailable\nRetry-After: 5\n\n", "Service Unavailable"},
        {"HTTP/1.1 401 Unauthorized\r\n", NULL},     /* incomplete */
        {"HTTP/1.1 4O1 Unauthorized\r\n\r\n", NULL}, /* malformed */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        wsfwd_response *resp = parse_response(cases[i].text, &rc);
        assert_true(str_is(wsfwd_response_reason(resp), cases[i].reason));
        wsfwd_response_free(resp);
    }
    assert_true(str_is(wsfwd_response_reason(NULL), NULL));
}

static void expect_decoded(const char *in, int rc, const char *out, size_t out_len)
{
    size_t len = strlen(in);
    char buf[64];
    memset(buf, '#', sizeof buf);
    size_t n = 99;
    assert_int_equal(wsfwd_percent_decode(test_guarded_str(in), len, buf, sizeof buf, &n), rc);
    if (rc != WSFWD_OK) {
        assert_int_equal(n, 0);
        assert_int_equal(buf[0], '#'); /* nothing written */
        return;
    }
    assert_int_equal(n, out_len);
    assert_memory_equal(buf, out, out_len);
    /* In place gives the same. */
    char *inplace = (char *)test_guard_new(in, len);
    assert_int_equal(wsfwd_percent_decode(inplace, len, inplace, len, &n), WSFWD_OK);
    assert_int_equal(n, out_len);
    assert_memory_equal(inplace, out, out_len);
    test_guard_free((uint8_t *)inplace, len);
}

static void test_percent_decode(void **state)
{
    (void)state;
    expect_decoded("", WSFWD_OK, "", 0);
    expect_decoded("plain", WSFWD_OK, "plain", 5);
    expect_decoded("a%20b", WSFWD_OK, "a b", 3);
    expect_decoded("%C3%A9t%c3%a9", WSFWD_OK, "\xc3\xa9t\xc3\xa9", 5); /* either case */
    expect_decoded("%2f%2F", WSFWD_OK, "//", 2);
    expect_decoded("a+b", WSFWD_OK, "a+b", 3);       /* not a form: '+' stays */
    expect_decoded("%00x", WSFWD_OK, "\0x", 2);      /* any byte: the caller checks */
    expect_decoded("%25%2525", WSFWD_OK, "%%25", 4); /* decoded once only */
    expect_decoded("%ff", WSFWD_OK, "\xff", 1);
    expect_decoded("%", WSFWD_ERR_PERCENT, NULL, 0);
    expect_decoded("a%", WSFWD_ERR_PERCENT, NULL, 0);
    expect_decoded("a%4", WSFWD_ERR_PERCENT, NULL, 0);
    expect_decoded("%4g", WSFWD_ERR_PERCENT, NULL, 0);
    expect_decoded("%g4", WSFWD_ERR_PERCENT, NULL, 0);
    expect_decoded("%%41", WSFWD_ERR_PERCENT, NULL, 0);
    expect_decoded("ok%20then%zz", WSFWD_ERR_PERCENT, NULL, 0); /* checked before writing */
    expect_decoded("% 1", WSFWD_ERR_PERCENT, NULL, 0);

    /* Room: exactly enough, one short (the size needed is told), none to ask the size. */
    char out[4];
    size_t n = 0;
    assert_int_equal(wsfwd_percent_decode("a%41bc", 6, out, 4, &n), WSFWD_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "aAbc", 4);
    memset(out, '#', sizeof out);
    assert_int_equal(wsfwd_percent_decode("a%41bc", 6, out, 3, &n), WSFWD_ERR_NOBUFS);
    assert_int_equal(n, 4);
    assert_int_equal(out[0], '#');
    assert_int_equal(wsfwd_percent_decode("a%41bc", 6, NULL, 0, &n), WSFWD_ERR_NOBUFS);
    assert_int_equal(n, 4);
    assert_int_equal(wsfwd_percent_decode(NULL, 0, NULL, 0, &n), WSFWD_OK);
    assert_int_equal(n, 0);
    /* Only the len bytes given are read: an escape cut by len is bad. */
    assert_int_equal(
        wsfwd_percent_decode((const char *)test_guarded("%41", 2), 2, out, sizeof out, &n),
        WSFWD_ERR_PERCENT);

    assert_int_equal(wsfwd_percent_decode("a", 1, out, sizeof out, NULL), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_percent_decode(NULL, 1, out, sizeof out, &n), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_percent_decode("a", 1, NULL, 1, &n), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_error_http_status(WSFWD_ERR_PERCENT), 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_rfc_example),
        cmocka_unit_test(test_key_from_nonce),
        cmocka_unit_test(test_valid_request),
        cmocka_unit_test(test_query_absent_and_empty),
        cmocka_unit_test(test_every_split_valid),
        cmocka_unit_test(test_every_split_invalid),
        cmocka_unit_test(test_bare_lf_accepted),
        cmocka_unit_test(test_request_cases),
        cmocka_unit_test(test_nul_byte_malformed),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_case_insensitive),
        cmocka_unit_test(test_value_trimming),
        cmocka_unit_test(test_subprotocol_list),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_write_101),
        cmocka_unit_test(test_write_101_refused_for_invalid),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_write_nobufs),
        cmocka_unit_test(test_http_head_helper),
        cmocka_unit_test(test_client_request),
        cmocka_unit_test(test_client_request_invalid),
        cmocka_unit_test(test_response_valid),
        cmocka_unit_test(test_response_cases),
        cmocka_unit_test(test_response_too_large),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_request_copy),
        cmocka_unit_test(test_response_reason),
        cmocka_unit_test(test_percent_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
