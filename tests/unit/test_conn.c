/*
 * The connection: handshake to close in both roles, every RFC 6455 rule with the close code it
 * yields, independence from how input is split, re-entrant callbacks, allocation failures.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support.h"
#include "wsfwd.h"

/* ---- Harness --------------------------------------------------------------------------- */

enum action { ACT_NONE, ACT_FREE, ACT_CLOSE, ACT_ECHO, ACT_FAIL };

typedef struct harness {
    wsfwd_config *cfg;
    wsfwd_conn *conn;
    char log[1 << 16];
    size_t log_len;
    int outputs; /* on_output calls */
    enum action on_message;
    enum action on_open;
    enum action on_close;
    enum action on_control;
    int request_decision; /* 0 default, 101 accept "chat", 404 refuse, 200 respond */
    bool keep_request;    /* on_request calls wsfwd_conn_keep_request */
    int flows[4];         /* on_flow calls, by wsfwd_flow event */
    int echo_blocked;     /* ACT_ECHO sends refused with WSFWD_ERR_WOULD_BLOCK */
    void (*flow_hook)(struct harness *h, wsfwd_conn *c, wsfwd_flow event);
    /* Called first in on_request, on_open, on_message, on_control and on_close. */
    void (*hook)(struct harness *h, wsfwd_conn *c, const char *where);
    void (*output_hook)(struct harness *h, wsfwd_conn *c); /* from on_output */
} harness;

static void logf_(harness *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(h->log + h->log_len, sizeof h->log - h->log_len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof h->log - h->log_len);
    h->log_len += (size_t)n;
}

static void log_bytes(harness *h, const uint8_t *p, size_t n)
{
    /* Long payloads are logged by length and a checksum so the log stays small. */
    if (n > 64) {
        uint32_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            sum = sum * 31 + p[i];
        }
        logf_(h, "#%08x", sum);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        logf_(h, "%02x", p[i]);
    }
}

static int do_action(harness *h, wsfwd_conn *c, enum action a)
{
    switch (a) {
    case ACT_FREE:
        wsfwd_conn_free(c);
        h->conn = NULL;
        return 0;
    case ACT_CLOSE: assert_int_equal(wsfwd_conn_close(c, 1000, "done", 4), WSFWD_OK); return 0;
    case ACT_FAIL: return -1;
    default: return 0;
    }
}

static int cb_request(wsfwd_conn *c, const wsfwd_request *req, void *ud)
{
    harness *h = ud;
    wsfwd_str path = wsfwd_request_path(req);
    logf_(h, "request %.*s|", (int)path.len, path.ptr);
    assert_ptr_equal(wsfwd_conn_request(c), req);
    if (h->keep_request) {
        assert_int_equal(wsfwd_conn_keep_request(c), WSFWD_OK);
    }
    if (h->hook != NULL) {
        h->hook(h, c, "request");
    }
    switch (h->request_decision) {
    case 101: assert_int_equal(wsfwd_conn_accept(c, "chat"), WSFWD_OK); break;
    case 404: assert_int_equal(wsfwd_conn_refuse(c, 404), WSFWD_OK); break;
    case 200:
        assert_int_equal(wsfwd_conn_respond(c, 200, "text/plain", "page", 4), WSFWD_OK);
        break;
    case -1:
        wsfwd_conn_free(c);
        h->conn = NULL;
        break;
    case 1: return 1;
    default: break;
    }
    return 0;
}

static int cb_open(wsfwd_conn *c, void *ud)
{
    harness *h = ud;
    logf_(h, "open|");
    if (h->hook != NULL) {
        h->hook(h, c, "open");
    }
    return do_action(h, c, h->on_open);
}

static int cb_message(wsfwd_conn *c, wsfwd_opcode op, const uint8_t *data, size_t len, void *ud)
{
    harness *h = ud;
    logf_(h, "msg %d %zu ", (int)op, len);
    log_bytes(h, data, len);
    logf_(h, "|");
    if (h->hook != NULL) {
        h->hook(h, c, "message");
    }
    if (h->on_message == ACT_ECHO) {
        int rc = wsfwd_conn_send(c, op, data, len);
        if (rc == WSFWD_ERR_WOULD_BLOCK) {
            h->echo_blocked++; /* at the hard cap: nothing queued, the connection stays */
        } else {
            assert_int_equal(rc, WSFWD_OK);
        }
        return 0;
    }
    return do_action(h, c, h->on_message);
}

static int cb_control(wsfwd_conn *c, wsfwd_opcode op, const uint8_t *data, size_t len, void *ud)
{
    harness *h = ud;
    logf_(h, "ctl %d ", (int)op);
    log_bytes(h, data, len);
    logf_(h, "|");
    if (h->hook != NULL) {
        h->hook(h, c, "control");
    }
    return do_action(h, c, h->on_control);
}

static void cb_close(wsfwd_conn *c, uint16_t code, const char *reason, size_t reason_len, int err,
                     void *ud)
{
    harness *h = ud;
    logf_(h, "close %u %.*s %d|", code, (int)reason_len, reason != NULL ? reason : "", err);
    if (h->hook != NULL) {
        h->hook(h, c, "close");
    }
    (void)do_action(h, c, h->on_close);
}

static void cb_output(wsfwd_conn *c, void *ud)
{
    harness *h = ud;
    h->outputs++;
    if (h->output_hook != NULL) {
        h->output_hook(h, c);
    }
}

/* Deterministic "randomness", so client output is reproducible. */
static int counter_random(void *buf, size_t len, void *ud)
{
    unsigned *n = ud;
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)((*n)++ * 101 + 7);
    }
    return 0;
}

static unsigned random_counter;

static harness *harness_new(wsfwd_role role, const wsfwd_allocator *alloc)
{
    harness *h = calloc(1, sizeof *h);
    assert_non_null(h);
    if (wsfwd_config_new(alloc, &h->cfg) != WSFWD_OK) {
        free(h);
        return NULL;
    }
    random_counter = 0;
    wsfwd_config_set_random(h->cfg, counter_random, &random_counter);
    wsfwd_config_set_user_data(h->cfg, h);
    wsfwd_config_on_request(h->cfg, cb_request);
    wsfwd_config_on_open(h->cfg, cb_open);
    wsfwd_config_on_message(h->cfg, cb_message);
    wsfwd_config_on_control(h->cfg, cb_control);
    wsfwd_config_on_close(h->cfg, cb_close);
    wsfwd_config_on_output(h->cfg, cb_output);
    if (wsfwd_conn_new(h->cfg, role, h, &h->conn) != WSFWD_OK) {
        wsfwd_config_free(h->cfg);
        free(h);
        return NULL;
    }
    return h;
}

static void harness_free(harness *h)
{
    if (h != NULL) {
        wsfwd_conn_free(h->conn);
        wsfwd_config_free(h->cfg);
        free(h);
    }
}

static const char REQUEST[] = "GET /ws/room?x=1 HTTP/1.1\r\n"
                              "Host: example.com\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: keep-alive, Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Protocol: chat, superchat\r\n"
                              "Sec-WebSocket-Version: 13\r\n"
                              "\r\n";

/* Parse a close frame the server sent, starting at out; returns its code (1005 if none). */
static unsigned close_code_at(const uint8_t *out, size_t len)
{
    wsfwd_frame_header fh;
    assert_int_equal(wsfwd_frame_parse_header(out, len, WSFWD_ROLE_CLIENT, &fh), WSFWD_OK);
    assert_int_equal(fh.opcode, WSFWD_OP_CLOSE);
    if (fh.payload_len < 2) {
        return 1005;
    }
    return (unsigned)(out[fh.header_len] << 8 | out[fh.header_len + 1]);
}

/* ---- Handshake ------------------------------------------------------------------------- */

static void test_server_handshake_and_echo(void **state)
{
    (void)state;
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    h->on_message = ACT_ECHO;
    uint8_t in[256];
    size_t n = sizeof REQUEST - 1;
    memcpy(in, REQUEST, n);
    n += test_client_frame(in + n, true, WSFWD_OP_TEXT, "Hello", 5);
    assert_int_equal(test_feed(h->conn, in, n), WSFWD_OK);
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_OPEN);
    assert_string_equal(h->log, "request /ws/room|open|msg 1 5 48656c6c6f|");
    assert_int_equal(h->outputs, 1);

    uint8_t out[1024];
    size_t got = test_drain(h->conn, out, sizeof out);
    const char *resp = "HTTP/1.1 101 Switching Protocols\r\n";
    assert_memory_equal(out, resp, strlen(resp));
    assert_non_null(memmem(out, got, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", 52));
    const uint8_t echo[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    assert_memory_equal(out + got - sizeof echo, echo, sizeof echo);
    assert_string_equal(wsfwd_conn_subprotocol(h->conn), "");
    harness_free(h);
}

static void test_server_accepts_subprotocol(void **state)
{
    (void)state;
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    h->request_decision = 101;
    assert_int_equal(test_feed(h->conn, (const uint8_t *)REQUEST, sizeof REQUEST - 1), WSFWD_OK);
    assert_string_equal(wsfwd_conn_subprotocol(h->conn), "chat");
    uint8_t out[1024];
    size_t got = test_drain(h->conn, out, sizeof out);
    assert_non_null(memmem(out, got, "Sec-WebSocket-Protocol: chat\r\n", 30));
    harness_free(h);
}

static void test_server_refuses_and_responds(void **state)
{
    (void)state;
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    h->request_decision = 404;
    assert_int_equal(test_feed(h->conn, (const uint8_t *)REQUEST, sizeof REQUEST - 1),
                     WSFWD_ERR_HS_REFUSED);
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_CLOSED);
    assert_false(wsfwd_conn_is_done(h->conn));
    uint8_t out[1024];
    size_t got = test_drain(h->conn, out, sizeof out);
    assert_true(got > 12);
    assert_memory_equal(out, "HTTP/1.1 404", 12);
    assert_true(wsfwd_conn_is_done(h->conn));
    assert_null(strstr(h->log, "open"));
    harness_free(h);

    h = harness_new(WSFWD_ROLE_SERVER, NULL);
    h->request_decision = 200;
    const char *page = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(test_feed(h->conn, (const uint8_t *)page, strlen(page)), WSFWD_OK);
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_CLOSED);
    got = test_drain(h->conn, out, sizeof out);
    assert_memory_equal(out, "HTTP/1.1 200", 12);
    assert_memory_equal(out + got - 8, "\r\n\r\npage", 8);
    harness_free(h);

    /* A callback that fails refuses with 500. */
    h = harness_new(WSFWD_ROLE_SERVER, NULL);
    h->request_decision = 1;
    assert_int_equal(test_feed(h->conn, (const uint8_t *)REQUEST, sizeof REQUEST - 1),
                     WSFWD_ERR_CALLBACK);
    got = test_drain(h->conn, out, sizeof out);
    assert_memory_equal(out, "HTTP/1.1 500", 12);
    harness_free(h);

    /* Deciding outside on_request is a state error. */
    h = harness_new(WSFWD_ROLE_SERVER, NULL);
    assert_int_equal(wsfwd_conn_accept(h->conn, NULL), WSFWD_ERR_STATE);
    assert_int_equal(wsfwd_conn_refuse(h->conn, 404), WSFWD_ERR_STATE);
    assert_int_equal(wsfwd_conn_respond(h->conn, 200, NULL, NULL, 0), WSFWD_ERR_STATE);
    harness_free(h);
}

/* Without a decision by the application, a bad request gets the status it warrants. */
static void test_server_default_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *request;
        int err;
        const char *status;
    } cases[] = {
        {"POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         WSFWD_ERR_HTTP_METHOD, "HTTP/1.1 405"},
        {"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
         WSFWD_ERR_HS_VERSION, "HTTP/1.1 426"},
        {"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n",
         WSFWD_ERR_HS_KEY, "HTTP/1.1 400"},
        {"GARBAGE\r\n\r\n", WSFWD_ERR_HTTP_MALFORMED, "HTTP/1.1 400"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
        int rc = test_feed(h->conn, (const uint8_t *)cases[i].request, strlen(cases[i].request));
        assert_int_equal(rc, cases[i].err);
        uint8_t out[1024];
        test_drain(h->conn, out, sizeof out);
        assert_memory_equal(out, cases[i].status, 12);
        assert_true(wsfwd_conn_is_done(h->conn));
        harness_free(h);
    }

    /* Past the header limit: 431, before the request ends. */
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    assert_int_equal(wsfwd_config_set_max_header(h->cfg, 512), WSFWD_OK);
    uint8_t big[2048];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    assert_int_equal(test_feed(h->conn, big, sizeof big), WSFWD_ERR_HTTP_TOO_LARGE);
    uint8_t out[1024];
    test_drain(h->conn, out, sizeof out);
    assert_memory_equal(out, "HTTP/1.1 431", 12);
    harness_free(h);
}

/* ---- Frames and messages: rules and close codes ---------------------------------------- */

/* A server connection past the handshake, fed bytes; returns the close code it sent. */
static unsigned fail_code(const uint8_t *in, size_t n, int expect_err, size_t max_message)
{
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    if (max_message > 0) {
        wsfwd_config_set_max_message(h->cfg, max_message);
    }
    assert_int_equal(wsfwd_conn_set_open(h->conn), WSFWD_OK);
    int rc = test_feed(h->conn, in, n);
    assert_int_equal(rc, expect_err);
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_CLOSED);
    uint8_t out[4096];
    size_t got = test_drain(h->conn, out, sizeof out);
    assert_true(got >= 4);
    /* The close frame is the last thing written. */
    wsfwd_frame_header fh;
    size_t off = 0;
    unsigned code = 0;
    while (off < got) {
        assert_int_equal(wsfwd_frame_parse_header(out + off, got - off, WSFWD_ROLE_CLIENT, &fh),
                         WSFWD_OK);
        if (fh.opcode == WSFWD_OP_CLOSE) {
            code = close_code_at(out + off, got - off);
            assert_int_equal(off + fh.header_len + fh.payload_len, got);
        }
        off += fh.header_len + (size_t)fh.payload_len;
    }
    char expect[64];
    snprintf(expect, sizeof expect, "close %u ", code);
    assert_non_null(strstr(h->log, expect));
    harness_free(h);
    return code;
}

static void test_protocol_errors(void **state)
{
    (void)state;
    uint8_t b[512];
    size_t n;

    const uint8_t rsv[] = {0xC1, 0x80, 1, 2, 3, 4};
    assert_int_equal(fail_code(rsv, sizeof rsv, WSFWD_ERR_RSV, 0), 1002);
    const uint8_t opcode[] = {0x83, 0x80, 1, 2, 3, 4};
    assert_int_equal(fail_code(opcode, sizeof opcode, WSFWD_ERR_OPCODE, 0), 1002);
    const uint8_t opcode_ctl[] = {0x8B, 0x80, 1, 2, 3, 4};
    assert_int_equal(fail_code(opcode_ctl, sizeof opcode_ctl, WSFWD_ERR_OPCODE, 0), 1002);
    const uint8_t unmasked[] = {0x81, 0x01, 'a'};
    assert_int_equal(fail_code(unmasked, sizeof unmasked, WSFWD_ERR_MASK, 0), 1002);
    const uint8_t nonminimal[] = {0x82, 0xFE, 0x00, 0x05, 1, 2, 3, 4};
    assert_int_equal(fail_code(nonminimal, sizeof nonminimal, WSFWD_ERR_LENGTH, 0), 1002);
    const uint8_t topbit[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    assert_int_equal(fail_code(topbit, sizeof topbit, WSFWD_ERR_LENGTH, 0), 1002);
    const uint8_t ping_long[] = {0x89, 0xFE, 0x00, 0x7E};
    assert_int_equal(fail_code(ping_long, sizeof ping_long, WSFWD_ERR_CONTROL_TOO_LONG, 0), 1002);
    const uint8_t ping_frag[] = {0x09, 0x80, 1, 2, 3, 4};
    assert_int_equal(fail_code(ping_frag, sizeof ping_frag, WSFWD_ERR_CONTROL_FRAGMENTED, 0), 1002);

    n = test_client_frame(b, true, WSFWD_OP_CONTINUATION, "x", 1);
    assert_int_equal(fail_code(b, n, WSFWD_ERR_CONTINUATION, 0), 1002);
    n = test_client_frame(b, false, WSFWD_OP_TEXT, "x", 1);
    n += test_client_frame(b + n, true, WSFWD_OP_TEXT, "y", 1);
    assert_int_equal(fail_code(b, n, WSFWD_ERR_CONTINUATION, 0), 1002);
    n = test_client_frame(b, true, WSFWD_OP_CLOSE, "\x03", 1);
    assert_int_equal(fail_code(b, n, WSFWD_ERR_CLOSE_PAYLOAD, 0), 1002);
    static const uint16_t bad_codes[] = {0, 999, 1004, 1005, 1006, 1015, 1100, 2000, 2999, 5000};
    for (size_t i = 0; i < sizeof bad_codes / sizeof bad_codes[0]; i++) {
        uint8_t p[2] = {(uint8_t)(bad_codes[i] >> 8), (uint8_t)bad_codes[i]};
        n = test_client_frame(b, true, WSFWD_OP_CLOSE, p, 2);
        assert_int_equal(fail_code(b, n, WSFWD_ERR_CLOSE_CODE, 0), 1002);
    }
    n = test_client_frame(b, true, WSFWD_OP_CLOSE, "\x03\xe8\xff", 3);
    assert_int_equal(fail_code(b, n, WSFWD_ERR_UTF8, 0), 1007);
    n = test_client_frame(b, true, WSFWD_OP_TEXT, "ok\xc0\xaf", 4);
    assert_int_equal(fail_code(b, n, WSFWD_ERR_UTF8, 0), 1007);
    /* A character cut by the end of the message. */
    n = test_client_frame(b, false, WSFWD_OP_TEXT, "\xe2\x82", 2);
    n += test_client_frame(b + n, true, WSFWD_OP_CONTINUATION, "", 0);
    assert_int_equal(fail_code(b, n, WSFWD_ERR_UTF8, 0), 1007);
    /* Too big: one frame, and fragments that add up. */
    uint8_t payload[300] = {0};
    n = test_client_frame(b, true, WSFWD_OP_BINARY, payload, 200);
    assert_int_equal(fail_code(b, n, WSFWD_ERR_TOO_BIG, 100), 1009);
    n = test_client_frame(b, false, WSFWD_OP_BINARY, payload, 60);
    n += test_client_frame(b + n, true, WSFWD_OP_CONTINUATION, payload, 60);
    assert_int_equal(fail_code(b, n, WSFWD_ERR_TOO_BIG, 100), 1009);
}

/* Invalid text fails as the bad byte arrives, before the frame or message ends. */
static void test_utf8_fails_fast(void **state)
{
    (void)state;
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    wsfwd_conn_set_open(h->conn);
    uint8_t text[100];
    memset(text, 'a', sizeof text);
    text[10] = 0xff;
    uint8_t b[128];
    size_t n = test_client_frame(b, true, WSFWD_OP_TEXT, text, sizeof text);
    assert_int_equal(test_feed(h->conn, b, 6 + 20), WSFWD_ERR_UTF8);
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_CLOSED);
    (void)n;
    harness_free(h);

    /* Across a fragment boundary: the first fragment ends in a lead byte that the next
       fragment does not continue. */
    h = harness_new(WSFWD_ROLE_SERVER, NULL);
    wsfwd_conn_set_open(h->conn);
    n = test_client_frame(b, false, WSFWD_OP_TEXT, "ab\xe2", 3);
    assert_int_equal(test_feed(h->conn, b, n), WSFWD_OK);
    n = test_client_frame(b, true, WSFWD_OP_CONTINUATION, "zz", 2);
    assert_int_equal(test_feed(h->conn, b, n), WSFWD_ERR_UTF8);
    harness_free(h);
}

/* What was queued before an error is written before the close frame. */
static void test_queued_output_precedes_failure(void **state)
{
    (void)state;
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    h->on_message = ACT_ECHO;
    wsfwd_conn_set_open(h->conn);
    uint8_t b[128];
    size_t n = test_client_frame(b, true, WSFWD_OP_TEXT, "one", 3);
    n += test_client_frame(b + n, true, WSFWD_OP_PING, "p", 1);
    b[n++] = 0xC1; /* RSV1 */
    b[n++] = 0x80;
    assert_int_equal(test_feed(h->conn, b, n), WSFWD_ERR_RSV);
    uint8_t out[256];
    size_t got = test_drain(h->conn, out, sizeof out);
    const uint8_t expect[] = {0x81, 3, 'o', 'n', 'e', 0x8A, 1, 'p', 0x88};
    assert_true(got > sizeof expect);
    assert_memory_equal(out, expect, sizeof expect);
    assert_int_equal(close_code_at(out + 8, got - 8), 1002);
    harness_free(h);
}

static void test_ping_pong_and_control_between_fragments(void **state)
{
    (void)state;
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    wsfwd_conn_set_open(h->conn);
    uint8_t b[256];
    size_t n = test_client_frame(b, false, WSFWD_OP_TEXT, "Hel", 3);
    n += test_client_frame(b + n, true, WSFWD_OP_PING, "are you there", 13);
    n += test_client_frame(b + n, true, WSFWD_OP_PONG, "unsolicited", 11);
    n += test_client_frame(b + n, true, WSFWD_OP_CONTINUATION, "lo", 2);
    assert_int_equal(test_feed(h->conn, b, n), WSFWD_OK);
    assert_string_equal(h->log, "ctl 9 61726520796f75207468657265|ctl 10 756e736f6c696369746564|"
                                "msg 1 5 48656c6c6f|");
    uint8_t out[64];
    size_t got = test_drain(h->conn, out, sizeof out);
    assert_int_equal(got, 15);
    assert_int_equal(out[0], 0x8A);
    assert_int_equal(out[1], 13);
    assert_memory_equal(out + 2, "are you there", 13);
    harness_free(h);
}

/* ---- Closing handshake ----------------------------------------------------------------- */

static void test_peer_initiated_close(void **state)
{
    (void)state;
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    wsfwd_conn_set_open(h->conn);
    uint8_t b[128];
    size_t n = test_client_frame(b, true, WSFWD_OP_CLOSE, "\x03\xe9going", 7);
    n += test_client_frame(b + n, true, WSFWD_OP_TEXT, "late", 4); /* after close: ignored */
    assert_int_equal(test_feed(h->conn, b, n), WSFWD_OK);
    assert_string_equal(h->log, "close 1001 going 0|");
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_CLOSED);
    uint8_t out[64];
    size_t got = test_drain(h->conn, out, sizeof out);
    const uint8_t echo[] = {0x88, 0x02, 0x03, 0xe9};
    assert_int_equal(got, sizeof echo);
    assert_memory_equal(out, echo, sizeof echo);
    assert_true(wsfwd_conn_is_done(h->conn));
    assert_int_equal(wsfwd_conn_send(h->conn, WSFWD_OP_TEXT, "x", 1), WSFWD_ERR_CLOSED);
    assert_int_equal(wsfwd_conn_close(h->conn, 1000, NULL, 0), WSFWD_ERR_CLOSED);
    harness_free(h);

    /* An empty close is answered with an empty close and reported as 1005. */
    h = harness_new(WSFWD_ROLE_SERVER, NULL);
    wsfwd_conn_set_open(h->conn);
    n = test_client_frame(b, true, WSFWD_OP_CLOSE, "", 0);
    assert_int_equal(test_feed(h->conn, b, n), WSFWD_OK);
    assert_string_equal(h->log, "close 1005  0|");
    got = test_drain(h->conn, out, sizeof out);
    assert_int_equal(got, 2);
    assert_int_equal(out[0], 0x88);
    assert_int_equal(out[1], 0x00);
    harness_free(h);
}

static void test_local_close(void **state)
{
    (void)state;
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    wsfwd_conn_set_open(h->conn);
    assert_int_equal(wsfwd_conn_close(h->conn, 1000, "bye", 3), WSFWD_OK);
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_CLOSING);
    assert_int_equal(wsfwd_conn_send(h->conn, WSFWD_OP_TEXT, "x", 1), WSFWD_ERR_CLOSED);
    uint8_t out[64];
    size_t got = test_drain(h->conn, out, sizeof out);
    const uint8_t frame[] = {0x88, 0x05, 0x03, 0xe8, 'b', 'y', 'e'};
    assert_int_equal(got, sizeof frame);
    assert_memory_equal(out, frame, sizeof frame);

    /* Data and pings arriving meanwhile are read but not delivered or answered. */
    uint8_t b[128];
    size_t n = test_client_frame(b, true, WSFWD_OP_TEXT, "late", 4);
    n += test_client_frame(b + n, true, WSFWD_OP_PING, "", 0);
    n += test_client_frame(b + n, true, WSFWD_OP_CLOSE, "\x03\xe8", 2);
    assert_int_equal(test_feed(h->conn, b, n), WSFWD_OK);
    assert_string_equal(h->log, "close 1000  0|");
    assert_int_equal(wsfwd_conn_pending(h->conn), 0);
    assert_true(wsfwd_conn_is_done(h->conn));
    harness_free(h);

    /* Bad arguments. */
    h = harness_new(WSFWD_ROLE_SERVER, NULL);
    assert_int_equal(wsfwd_conn_close(h->conn, 1000, NULL, 0), WSFWD_ERR_STATE);
    wsfwd_conn_set_open(h->conn);
    /* Codes no endpoint may send, each with its own error, and the state is untouched. */
    static const uint16_t reserved[] = {1004, 1005, 1006, 1015, 1016, 2000, 2999};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        assert_int_equal(wsfwd_conn_close(h->conn, reserved[i], NULL, 0), WSFWD_ERR_CLOSE_RESERVED);
    }
    static const uint16_t out_of_range[] = {1, 999, 5000, 65535};
    for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; i++) {
        assert_int_equal(wsfwd_conn_close(h->conn, out_of_range[i], NULL, 0),
                         WSFWD_ERR_CLOSE_RANGE);
    }
    assert_int_equal(wsfwd_conn_close(h->conn, 0, "r", 1), WSFWD_ERR_CLOSE_REASON);
    assert_int_equal(wsfwd_conn_close(h->conn, 1000, "\xff", 1), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_conn_close(h->conn, 1000, NULL, 1), WSFWD_ERR_INVALID);
    char longr[124];
    memset(longr, 'r', sizeof longr);
    assert_int_equal(wsfwd_conn_close(h->conn, 1000, longr, sizeof longr), WSFWD_ERR_CLOSE_REASON);
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_OPEN);
    assert_int_equal(wsfwd_conn_pending(h->conn), 0);
    assert_int_equal(wsfwd_conn_close(h->conn, 4999, longr, sizeof longr - 1), WSFWD_OK);
    harness_free(h);

    h = harness_new(WSFWD_ROLE_SERVER, NULL);
    wsfwd_conn_set_open(h->conn);
    assert_int_equal(wsfwd_conn_close(h->conn, 0, NULL, 0), WSFWD_OK);
    harness_free(h);
}

/* ---- Chunking independence ------------------------------------------------------------- */

typedef struct run_result {
    char log[1 << 16];
    uint8_t out[1 << 17];
    size_t out_len;
    int rc;
} run_result;

/* Feed the stream cut at the given points (sorted, may repeat) and record everything. */
static void run_split(const uint8_t *in, size_t n, const size_t *cuts, size_t ncuts, run_result *r)
{
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    h->on_message = ACT_ECHO;
    r->rc = test_feed_cuts(h->conn, in, n, cuts, ncuts);
    r->out_len = test_drain(h->conn, r->out, sizeof r->out);
    memcpy(r->log, h->log, h->log_len + 1);
    harness_free(h);
}

/* A stream fed whole, and the same stream in pieces that must give the same record. */
typedef struct split_check {
    const uint8_t *in;
    size_t n;
    const run_result *whole;
    run_result *split;
} split_check;

static void check_split(const size_t *cuts, size_t ncuts, void *ud)
{
    split_check *sc = ud;
    run_split(sc->in, sc->n, cuts, ncuts, sc->split);
    assert_string_equal(sc->split->log, sc->whole->log);
    assert_int_equal(sc->split->out_len, sc->whole->out_len);
    assert_memory_equal(sc->split->out, sc->whole->out, sc->whole->out_len);
    assert_int_equal(sc->split->rc, sc->whole->rc);
}

static size_t build_stream(uint8_t *b, bool with_large, bool bad_tail)
{
    size_t n = sizeof REQUEST - 1;
    memcpy(b, REQUEST, n);
    static uint8_t big[70000];
    for (size_t i = 0; i < sizeof big; i++) {
        big[i] = (uint8_t)(i * 7);
    }
    n += test_client_frame(b + n, true, WSFWD_OP_TEXT, "Hello", 5);
    n += test_client_frame(b + n, false, WSFWD_OP_TEXT, "\xce\xba\xe1", 3);
    n += test_client_frame(b + n, true, WSFWD_OP_PING, "ping", 4);
    n += test_client_frame(b + n, false, WSFWD_OP_CONTINUATION, "\xbd\xb9\xcf", 3);
    n += test_client_frame(b + n, true, WSFWD_OP_CONTINUATION, "\x83", 1);
    n += test_client_frame(b + n, true, WSFWD_OP_BINARY, big, 300);
    n += test_client_frame(b + n, true, WSFWD_OP_TEXT, "", 0);
    n += test_client_frame(b + n, true, WSFWD_OP_PONG, "", 0);
    if (with_large) {
        n += test_client_frame(b + n, true, WSFWD_OP_BINARY, big, sizeof big);
    }
    if (bad_tail) {
        n += test_client_frame(b + n, true, WSFWD_OP_TEXT, "bad\xed\xa0\x80", 6);
    } else {
        n += test_client_frame(b + n, true, WSFWD_OP_CLOSE,
                               "\x03\xe8"
                               "bye",
                               5);
    }
    return n;
}

static void test_every_split_gives_same_events(void **state)
{
    (void)state;
    static uint8_t stream[80000];
    static run_result whole, split;
    for (int bad = 0; bad <= 1; bad++) {
        size_t n = build_stream(stream, false, bad);
        run_split(stream, n, NULL, 0, &whole);
        if (strstr(whole.log, "open|msg 1 5 48656c6c6f|ctl 9 70696e67|msg 1 7") == NULL) {
            fail_msg("log: %s", whole.log);
        }
        assert_non_null(strstr(whole.log, bad ? "close 1007" : "close 1000 bye 0|"));
        assert_int_equal(whole.rc, bad ? WSFWD_ERR_UTF8 : WSFWD_OK);
        split_check sc = {stream, n, &whole, &split};
        test_each_cut(n, check_split, &sc);
        /* Three pieces, over a coarser grid of cut pairs. */
        test_each_cut_pair(n, 11, 17, check_split, &sc);
    }
}

static void test_byte_at_a_time_with_large_frame(void **state)
{
    (void)state;
    static uint8_t stream[80000];
    static run_result whole, split;
    static size_t cuts[80000];
    size_t n = build_stream(stream, true, false);
    run_split(stream, n, NULL, 0, &whole);
    split_check sc = {stream, n, &whole, &split};
    test_bytewise(n, check_split, &sc);
    /* Irregular pieces. */
    size_t k = 0;
    for (size_t pos = 1, step = 1; pos < n; pos += step, step = step * 3 % 1021 + 1) {
        cuts[k++] = pos;
    }
    check_split(cuts, k, &sc);
}

/* ---- Client role and round trips ------------------------------------------------------- */

/* Move every pending byte from one connection to the other. */
static int pump(wsfwd_conn *from, wsfwd_conn *to)
{
    static uint8_t buf[1 << 18];
    size_t n = test_drain(from, buf, sizeof buf);
    return n > 0 ? wsfwd_conn_feed(to, buf, n) : WSFWD_OK;
}

static void test_client_server_round_trip(void **state)
{
    (void)state;
    harness *srv = harness_new(WSFWD_ROLE_SERVER, NULL);
    harness *cli = harness_new(WSFWD_ROLE_CLIENT, NULL);
    srv->on_message = ACT_ECHO;
    srv->request_decision = 101;
    assert_int_equal(wsfwd_conn_send(cli->conn, WSFWD_OP_TEXT, "x", 1), WSFWD_ERR_STATE);
    assert_int_equal(
        wsfwd_conn_client_start(cli->conn, "localhost:8080", "/ws/room", NULL, "chat, superchat"),
        WSFWD_OK);
    assert_int_equal(wsfwd_conn_client_start(cli->conn, "h", "/", NULL, NULL), WSFWD_ERR_STATE);
    assert_int_equal(pump(cli->conn, srv->conn), WSFWD_OK);
    assert_int_equal(pump(srv->conn, cli->conn), WSFWD_OK);
    assert_int_equal(wsfwd_conn_state(cli->conn), WSFWD_STATE_OPEN);
    assert_string_equal(wsfwd_conn_subprotocol(cli->conn), "chat");
    assert_string_equal(cli->log, "open|");

    static uint8_t big[100000];
    for (size_t i = 0; i < sizeof big; i++) {
        big[i] = (uint8_t)(i ^ (i >> 8));
    }
    static const size_t sizes[] = {0, 1, 125, 126, 65535, 65536, sizeof big};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        assert_int_equal(wsfwd_conn_send(cli->conn, WSFWD_OP_BINARY, big, sizes[i]), WSFWD_OK);
    }
    assert_int_equal(wsfwd_conn_send(cli->conn, WSFWD_OP_TEXT, "h\xc3\xa9llo", 6), WSFWD_OK);
    assert_int_equal(wsfwd_conn_send(cli->conn, WSFWD_OP_PING, "pp", 2), WSFWD_OK);
    assert_int_equal(pump(cli->conn, srv->conn), WSFWD_OK);
    assert_int_equal(pump(srv->conn, cli->conn), WSFWD_OK);
    /* What the server received and echoed, the client received: same log minus handshake. */
    const char *srv_msgs = strstr(srv->log, "msg");
    const char *cli_msgs = strstr(cli->log, "msg");
    assert_non_null(srv_msgs);
    assert_non_null(cli_msgs);
    /* The client also logged the pong that answered its ping. */
    char expect[1 << 12];
    snprintf(expect, sizeof expect, "%.*sctl 10 7070|", (int)(strstr(srv_msgs, "ctl") - srv_msgs),
             srv_msgs);
    assert_string_equal(cli_msgs, expect);

    /* Client closes; server echoes; both end CLOSED. */
    assert_int_equal(wsfwd_conn_close(cli->conn, 1000, "done", 4), WSFWD_OK);
    assert_int_equal(pump(cli->conn, srv->conn), WSFWD_OK);
    assert_int_equal(wsfwd_conn_state(srv->conn), WSFWD_STATE_CLOSED);
    assert_int_equal(pump(srv->conn, cli->conn), WSFWD_OK);
    assert_int_equal(wsfwd_conn_state(cli->conn), WSFWD_STATE_CLOSED);
    assert_non_null(strstr(srv->log, "close 1000 done 0|"));
    assert_non_null(strstr(cli->log, "close 1000  0|"));
    assert_true(wsfwd_conn_is_done(srv->conn));
    assert_true(wsfwd_conn_is_done(cli->conn));
    harness_free(srv);
    harness_free(cli);
}

static void test_client_rejects_bad_responses(void **state)
{
    (void)state;
    static const struct {
        const char *response;
        int err;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", WSFWD_ERR_HS_STATUS},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
         WSFWD_ERR_HS_ACCEPT},
        {"nonsense\r\n\r\n", WSFWD_ERR_HTTP_RESPONSE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        harness *h = harness_new(WSFWD_ROLE_CLIENT, NULL);
        assert_int_equal(wsfwd_conn_client_start(h->conn, "h", "/", "http://o", NULL), WSFWD_OK);
        uint8_t out[1024];
        size_t got = test_drain(h->conn, out, sizeof out);
        assert_memory_equal(out, "GET / HTTP/1.1\r\n", 16);
        assert_non_null(memmem(out, got, "Origin: http://o\r\n", 18));
        int rc = test_feed(h->conn, (const uint8_t *)cases[i].response, strlen(cases[i].response));
        assert_int_equal(rc, cases[i].err);
        assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_CLOSED);
        assert_true(wsfwd_conn_is_done(h->conn));
        assert_null(strstr(h->log, "open"));
        harness_free(h);
    }
    /* A server frame must not be masked: a client fails it with 1002. */
    harness *srv = harness_new(WSFWD_ROLE_SERVER, NULL);
    harness *cli = harness_new(WSFWD_ROLE_CLIENT, NULL);
    wsfwd_conn_client_start(cli->conn, "h", "/", NULL, NULL);
    pump(cli->conn, srv->conn);
    pump(srv->conn, cli->conn);
    uint8_t b[16];
    size_t n = test_client_frame(b, true, WSFWD_OP_TEXT, "m", 1);
    assert_int_equal(test_feed(cli->conn, b, n), WSFWD_ERR_MASK);
    uint8_t out[64];
    size_t got = test_drain(cli->conn, out, sizeof out);
    wsfwd_frame_header fh;
    assert_int_equal(wsfwd_frame_parse_header(out, got, WSFWD_ROLE_SERVER, &fh), WSFWD_OK);
    assert_int_equal(fh.opcode, WSFWD_OP_CLOSE);
    assert_true(fh.masked);
    wsfwd_frame_mask(out + fh.header_len, (size_t)fh.payload_len, fh.mask, 0);
    assert_int_equal(out[fh.header_len] << 8 | out[fh.header_len + 1], 1002);
    harness_free(srv);
    harness_free(cli);
}

/* ---- The handshake after it ended: the kept request, the refused response --------------- */

/* A view equal to a string (present, same bytes). */
static void assert_str(wsfwd_str v, const char *want)
{
    assert_non_null(v.ptr);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.ptr, want, v.len);
}

static void test_server_keeps_request(void **state)
{
    (void)state;
    /* Not asked: nothing is kept once the handshake ends. */
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    assert_null(wsfwd_conn_request(h->conn));
    assert_int_equal(wsfwd_conn_keep_request(h->conn), WSFWD_ERR_STATE); /* no request yet */
    assert_int_equal(test_feed(h->conn, (const uint8_t *)REQUEST, 10), WSFWD_OK);
    assert_int_equal(wsfwd_conn_keep_request(h->conn), WSFWD_ERR_STATE); /* incomplete */
    assert_null(wsfwd_conn_request(h->conn));
    assert_int_equal(test_feed(h->conn, (const uint8_t *)REQUEST + 10, sizeof REQUEST - 11),
                     WSFWD_OK);
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_OPEN);
    assert_null(wsfwd_conn_request(h->conn));
    assert_int_equal(wsfwd_conn_keep_request(h->conn), WSFWD_ERR_STATE);
    harness_free(h);

    /* Asked in on_request: readable after it, for the connection's life (ASan checks). */
    static const int decisions[] = {0, 101, 404, 200};
    for (size_t i = 0; i < sizeof decisions / sizeof decisions[0]; i++) {
        h = harness_new(WSFWD_ROLE_SERVER, NULL);
        h->keep_request = true;
        h->request_decision = decisions[i];
        int rc = test_feed(h->conn, (const uint8_t *)REQUEST, sizeof REQUEST - 1);
        assert_int_equal(rc, decisions[i] == 404 ? WSFWD_ERR_HS_REFUSED : WSFWD_OK);
        if (decisions[i] == 0) {
            uint8_t b[64];
            size_t n = test_client_frame(b, true, WSFWD_OP_TEXT, "hi", 2);
            assert_int_equal(test_feed(h->conn, b, n), WSFWD_OK);
        }
        const wsfwd_request *req = wsfwd_conn_request(h->conn);
        assert_non_null(req);
        assert_str(wsfwd_request_path(req), "/ws/room");
        assert_str(wsfwd_request_query(req), "x=1");
        assert_str(wsfwd_request_header(req, "host"), "example.com");
        assert_str(wsfwd_request_method(req), "GET");
        assert_int_equal(wsfwd_request_subprotocol_count(req), 2);
        assert_str(wsfwd_request_subprotocol(req, 1), "superchat");
        assert_int_equal(wsfwd_request_check(req), WSFWD_OK);
        assert_true(wsfwd_request_is_upgrade(req));
        /* Asking again once kept changes nothing. */
        assert_int_equal(wsfwd_conn_keep_request(h->conn), WSFWD_OK);
        assert_ptr_equal(wsfwd_conn_request(h->conn), req);
        harness_free(h);
    }

    /* Bad arguments; the client role holds no request. */
    assert_int_equal(wsfwd_conn_keep_request(NULL), WSFWD_ERR_INVALID);
    assert_null(wsfwd_conn_request(NULL));
    h = harness_new(WSFWD_ROLE_CLIENT, NULL);
    assert_int_equal(wsfwd_conn_client_start(h->conn, "h", "/", NULL, NULL), WSFWD_OK);
    assert_int_equal(wsfwd_conn_keep_request(h->conn), WSFWD_ERR_STATE);
    assert_null(wsfwd_conn_request(h->conn));
    harness_free(h);
}

static int open_keeps_request(wsfwd_conn *c, void *ud)
{
    harness *h = ud;
    const wsfwd_request *req = wsfwd_conn_request(c);
    assert_non_null(req);
    wsfwd_str path = wsfwd_request_path(req);
    logf_(h, "open %.*s|", (int)path.len, path.ptr);
    assert_int_equal(wsfwd_conn_keep_request(c), WSFWD_OK);
    return 0;
}

static void test_server_keeps_request_from_on_open(void **state)
{
    (void)state;
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    wsfwd_config_on_open(h->cfg, open_keeps_request);
    assert_int_equal(test_feed(h->conn, (const uint8_t *)REQUEST, sizeof REQUEST - 1), WSFWD_OK);
    assert_string_equal(h->log, "request /ws/room|open /ws/room|");
    assert_str(wsfwd_request_host(wsfwd_conn_request(h->conn)), "example.com");
    harness_free(h);
}

/* A client whose handshake the server refused reads the status, reason and headers. */
static void test_client_reads_refusal(void **state)
{
    (void)state;
    static const struct {
        const char *response;
        int status;
        const char *reason;
        const char *header; /* name, then its expected value; NULL for none */
        const char *value;
    } cases[] = {
        {"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad", 400, "Bad Request",
         "Content-Length", "3"},
        {"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"wsfwd\"\r\n"
         "Content-Length: 0\r\n\r\n",
         401, "Unauthorized", "www-authenticate", "Bearer realm=\"wsfwd\""},
        {"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n", 403, "Forbidden", "Connection",
         "close"},
        {"HTTP/1.1 404 Not Found\r\n\r\n", 404, "Not Found", NULL, NULL},
        {"HTTP/1.1 503 Service Unavailable\r\nRetry-After:  120 \r\nContent-Length: 4\r\n\r\n"
         "busy",
         503, "Service Unavailable", "Retry-After", "120"},
        {"HTTP/1.1 418\r\n\r\n", 418, "", NULL, NULL},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, "OK", NULL, NULL},
        /* A 101 that fails another check is kept as well. */
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
         101, "Switching Protocols", "Upgrade", "websocket"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        harness *h = harness_new(WSFWD_ROLE_CLIENT, NULL);
        assert_null(wsfwd_conn_response(h->conn));
        assert_int_equal(wsfwd_conn_client_start(h->conn, "h", "/", NULL, NULL), WSFWD_OK);
        assert_null(wsfwd_conn_response(h->conn));
        uint8_t out[1024];
        (void)test_drain(h->conn, out, sizeof out);
        /* In two pieces: nothing to read before the response is complete. */
        const char *r = cases[i].response;
        assert_int_equal(test_feed(h->conn, (const uint8_t *)r, 9), WSFWD_OK);
        assert_null(wsfwd_conn_response(h->conn));
        int rc = test_feed(h->conn, (const uint8_t *)r + 9, strlen(r) - 9);
        assert_int_equal(rc, cases[i].status == 101 ? WSFWD_ERR_HS_ACCEPT : WSFWD_ERR_HS_STATUS);
        assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_CLOSED);
        assert_null(strstr(h->log, "close"));
        const wsfwd_response *resp = wsfwd_conn_response(h->conn);
        assert_non_null(resp);
        assert_int_equal(wsfwd_response_status(resp), cases[i].status);
        assert_str(wsfwd_response_reason(resp), cases[i].reason);
        if (cases[i].header != NULL) {
            assert_str(wsfwd_response_header(resp, cases[i].header), cases[i].value);
        }
        assert_null(wsfwd_response_header(resp, "X-Absent").ptr);
        /* Still there after more bytes, which are ignored. */
        assert_int_equal(test_feed(h->conn, (const uint8_t *)"more", 4), WSFWD_OK);
        assert_ptr_equal(wsfwd_conn_response(h->conn), resp);
        harness_free(h);
    }

    /* No well-formed response: nothing to read. */
    harness *h = harness_new(WSFWD_ROLE_CLIENT, NULL);
    assert_int_equal(wsfwd_conn_client_start(h->conn, "h", "/", NULL, NULL), WSFWD_OK);
    assert_int_equal(test_feed(h->conn, (const uint8_t *)"nonsense\r\n\r\n", 12),
                     WSFWD_ERR_HTTP_RESPONSE);
    assert_null(wsfwd_conn_response(h->conn));
    harness_free(h);
    assert_null(wsfwd_conn_response(NULL));

    /* A refusal from our own server role, end to end. */
    harness *srv = harness_new(WSFWD_ROLE_SERVER, NULL);
    harness *cli = harness_new(WSFWD_ROLE_CLIENT, NULL);
    srv->request_decision = 404;
    assert_int_equal(wsfwd_conn_client_start(cli->conn, "h", "/nowhere", NULL, NULL), WSFWD_OK);
    assert_int_equal(pump(cli->conn, srv->conn), WSFWD_ERR_HS_REFUSED);
    assert_null(wsfwd_conn_response(srv->conn)); /* the server role has none */
    assert_int_equal(pump(srv->conn, cli->conn), WSFWD_ERR_HS_STATUS);
    const wsfwd_response *resp = wsfwd_conn_response(cli->conn);
    assert_int_equal(wsfwd_response_status(resp), 404);
    assert_str(wsfwd_response_reason(resp), "Not Found");
    harness_free(srv);
    harness_free(cli);
}

static int open_reads_response(wsfwd_conn *c, void *ud)
{
    harness *h = ud;
    const wsfwd_response *resp = wsfwd_conn_response(c);
    assert_non_null(resp);
    wsfwd_str p = wsfwd_response_header(resp, "Sec-WebSocket-Protocol");
    logf_(h, "open %d %.*s|", wsfwd_response_status(resp), (int)p.len, p.ptr);
    return 0;
}

static void test_client_reads_response_in_on_open(void **state)
{
    (void)state;
    harness *srv = harness_new(WSFWD_ROLE_SERVER, NULL);
    harness *cli = harness_new(WSFWD_ROLE_CLIENT, NULL);
    srv->request_decision = 101;
    wsfwd_config_on_open(cli->cfg, open_reads_response);
    assert_int_equal(wsfwd_conn_client_start(cli->conn, "h", "/ws", NULL, "chat"), WSFWD_OK);
    assert_int_equal(pump(cli->conn, srv->conn), WSFWD_OK);
    assert_int_equal(pump(srv->conn, cli->conn), WSFWD_OK);
    assert_string_equal(cli->log, "open 101 chat|");
    assert_null(wsfwd_conn_response(cli->conn)); /* freed once on_open returned */
    harness_free(srv);
    harness_free(cli);
}

/* ---- Re-entrancy ----------------------------------------------------------------------- */

static void test_free_inside_callbacks(void **state)
{
    (void)state;
    uint8_t b[512];
    size_t n = sizeof REQUEST - 1;
    memcpy(b, REQUEST, n);
    n += test_client_frame(b + n, true, WSFWD_OP_TEXT, "one", 3);
    n += test_client_frame(b + n, false, WSFWD_OP_TEXT, "tw", 2);
    n += test_client_frame(b + n, true, WSFWD_OP_PING, "p", 1);
    n += test_client_frame(b + n, true, WSFWD_OP_CONTINUATION, "o", 1);
    n += test_client_frame(b + n, true, WSFWD_OP_TEXT, "three", 5);
    n += test_client_frame(b + n, true, WSFWD_OP_CLOSE, "\x03\xe8", 2);

    /* Free at each kind of event, at each split: no use after free (ASan checks). */
    for (int which = 0; which < 5; which++) {
        for (size_t cut = 0; cut <= n; cut += 3) {
            harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
            switch (which) {
            case 0: h->request_decision = -1; break;
            case 1: h->on_open = ACT_FREE; break;
            case 2: h->on_message = ACT_FREE; break;
            case 3: h->on_control = ACT_FREE; break;
            default: h->on_close = ACT_FREE; break;
            }
            assert_int_equal(test_feed(h->conn, b, cut), WSFWD_OK);
            if (h->conn != NULL) {
                assert_int_equal(test_feed(h->conn, b + cut, n - cut), WSFWD_OK);
            }
            assert_null(h->conn);
            harness_free(h);
        }
    }
}

static void test_close_or_fail_inside_callbacks(void **state)
{
    (void)state;
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    h->on_message = ACT_CLOSE;
    wsfwd_conn_set_open(h->conn);
    uint8_t b[128];
    size_t n = test_client_frame(b, true, WSFWD_OP_TEXT, "a", 1);
    n += test_client_frame(b + n, true, WSFWD_OP_TEXT, "b", 1);
    assert_int_equal(test_feed(h->conn, b, n), WSFWD_OK);
    assert_string_equal(h->log, "msg 1 1 61|"); /* "b" came after our close: dropped */
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_CLOSING);
    harness_free(h);

    h = harness_new(WSFWD_ROLE_SERVER, NULL);
    h->on_message = ACT_FAIL;
    wsfwd_conn_set_open(h->conn);
    assert_int_equal(test_feed(h->conn, b, n), WSFWD_ERR_CALLBACK);
    uint8_t out[256];
    size_t got = test_drain(h->conn, out, sizeof out);
    assert_int_equal(close_code_at(out, got), 1011);
    harness_free(h);

    h = harness_new(WSFWD_ROLE_SERVER, NULL);
    h->on_open = ACT_FAIL;
    assert_int_equal(test_feed(h->conn, (const uint8_t *)REQUEST, sizeof REQUEST - 1),
                     WSFWD_ERR_CALLBACK);
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_CLOSED);
    harness_free(h);

    h = harness_new(WSFWD_ROLE_SERVER, NULL);
    h->on_control = ACT_FAIL;
    wsfwd_conn_set_open(h->conn);
    n = test_client_frame(b, true, WSFWD_OP_PING, "", 0);
    assert_int_equal(test_feed(h->conn, b, n), WSFWD_ERR_CALLBACK);
    harness_free(h);
}

static void test_output_signal_and_partial_consume(void **state)
{
    (void)state;
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    wsfwd_conn_set_open(h->conn);
    assert_int_equal(h->outputs, 0);
    static uint8_t big[5000];
    memset(big, 'z', sizeof big);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(wsfwd_conn_send(h->conn, WSFWD_OP_BINARY, big, sizeof big), WSFWD_OK);
    }
    assert_int_equal(h->outputs, 1); /* once, when output appeared */
    size_t total = wsfwd_conn_pending(h->conn);
    assert_int_equal(total, 20 * (4 + sizeof big));
    /* Consume in odd amounts; the bytes come out in order. */
    size_t seen = 0;
    while (wsfwd_conn_pending(h->conn) > 0) {
        wsfwd_iovec iov[3];
        size_t k = wsfwd_conn_output(h->conn, iov, 3);
        assert_true(k > 0);
        size_t take = iov[0].len < 777 ? iov[0].len : 777;
        const uint8_t *p = iov[0].base;
        for (size_t i = 0; i < take; i++) {
            size_t pos = (seen + i) % (4 + sizeof big);
            uint8_t expect = pos == 0   ? 0x82
                             : pos == 1 ? 126
                             : pos == 2 ? 0x13
                             : pos == 3 ? 0x88
                                        : 'z';
            assert_int_equal(p[i], expect);
        }
        wsfwd_conn_consume(h->conn, take);
        seen += take;
    }
    assert_int_equal(seen, total);
    assert_int_equal(wsfwd_conn_send(h->conn, WSFWD_OP_TEXT, "x", 1), WSFWD_OK);
    assert_int_equal(h->outputs, 2);
    assert_int_equal(wsfwd_conn_send(h->conn, WSFWD_OP_PING, big, 126), WSFWD_ERR_CONTROL_SIZE);
    assert_int_equal(wsfwd_conn_send(h->conn, WSFWD_OP_PONG, big, 126), WSFWD_ERR_CONTROL_SIZE);
    assert_int_equal(wsfwd_conn_send(h->conn, WSFWD_OP_PING, big, sizeof big),
                     WSFWD_ERR_CONTROL_SIZE);
    size_t before = wsfwd_conn_pending(h->conn);
    assert_int_equal(wsfwd_conn_send(h->conn, WSFWD_OP_PING, big, 125), WSFWD_OK);
    assert_int_equal(wsfwd_conn_pending(h->conn), before + 2 + 125);
    assert_int_equal(wsfwd_conn_send(h->conn, WSFWD_OP_CLOSE, "", 0), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_conn_send(h->conn, WSFWD_OP_CONTINUATION, "", 0), WSFWD_ERR_INVALID);
    harness_free(h);
}

/* ---- Allocation failures --------------------------------------------------------------- */

/* Run a full exchange; returns 1 if it went through without meeting a failure. */
static int alloc_scenario(test_alloc *ca)
{
    wsfwd_allocator alloc = test_alloc_hooks(ca);
    harness *h = harness_new(WSFWD_ROLE_SERVER, &alloc);
    if (h == NULL) {
        return 0;
    }
    h->on_message = ACT_NONE;
    h->keep_request = true;
    int ok = 1;
    uint8_t b[4096];
    size_t n = sizeof REQUEST - 1;
    memcpy(b, REQUEST, n);
    static uint8_t payload[2000];
    n += test_client_frame(b + n, false, WSFWD_OP_BINARY, payload, 1000);
    n += test_client_frame(b + n, true, WSFWD_OP_PING, "p", 1);
    n += test_client_frame(b + n, true, WSFWD_OP_CONTINUATION, payload, 1000);
    for (size_t i = 0; i < n; i += 700) {
        size_t k = n - i < 700 ? n - i : 700;
        if (test_feed(h->conn, b + i, k) != WSFWD_OK) {
            ok = 0;
        }
    }
    if (wsfwd_conn_send(h->conn, WSFWD_OP_TEXT, "reply", 5) != WSFWD_OK) {
        ok = 0;
    }
    if (ok && strstr(h->log, "msg 2 2000") == NULL) {
        ok = 0;
    }
    if (ok) { /* kept even when its compact copy failed */
        assert_non_null(wsfwd_conn_request(h->conn));
        assert_true(wsfwd_request_path(wsfwd_conn_request(h->conn)).len == 8);
    }
    harness_free(h);
    /* The client side too. */
    h = harness_new(WSFWD_ROLE_CLIENT, &alloc);
    if (h == NULL) {
        return 0;
    }
    if (wsfwd_conn_client_start(h->conn, "host", "/p", "o", "a,b") != WSFWD_OK) {
        ok = 0;
    }
    harness_free(h);
    return ok;
}

static void test_allocation_failures(void **state)
{
    (void)state;
    int done = 0;
    for (long budget = 0; budget < 200 && !done; budget++) {
        test_alloc ca;
        test_alloc_init(&ca);
        ca.budget = budget;
        done = alloc_scenario(&ca);
        assert_int_equal(ca.live, 0); /* every path freed what it took */
    }
    assert_true(done);
}

/* A header's announced length costs nothing until the bytes come: memory follows what arrived. */
static void test_announced_length_is_not_allocated(void **state)
{
    (void)state;
    test_alloc sa;
    test_alloc_init(&sa);
    wsfwd_allocator alloc = test_alloc_hooks(&sa);
    harness *h = harness_new(WSFWD_ROLE_SERVER, &alloc);
    wsfwd_conn_set_open(h->conn);
    /* A masked binary frame that claims 1 MiB, then only 10 bytes of it, then more. */
    static uint8_t b[WSFWD_FRAME_HEADER_MAX + (1 << 20)];
    size_t hl = wsfwd_frame_encode_header(b, true, WSFWD_OP_BINARY, 1 << 20, TEST_MASK);
    memset(b + hl, 'x', 1 << 20);
    wsfwd_frame_mask(b + hl, 1 << 20, TEST_MASK, 0);
    assert_int_equal(test_feed(h->conn, b, hl + 10), WSFWD_OK);
    assert_true(sa.largest <= 4096);
    assert_int_equal(test_feed(h->conn, b + hl + 10, 100000), WSFWD_OK);
    assert_true(sa.largest <= 4 * (100000 + 10));
    /* The rest completes the message: the buffer ends at its exact size. */
    assert_int_equal(test_feed(h->conn, b + hl + 100010, (1 << 20) - 100010), WSFWD_OK);
    assert_non_null(strstr(h->log, "msg 2 1048576 "));
    assert_true(sa.largest <= (1 << 20));
    harness_free(h);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    wsfwd_conn *c = NULL;
    assert_int_equal(wsfwd_config_new(NULL, NULL), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_conn_new(NULL, WSFWD_ROLE_SERVER, NULL, &c), WSFWD_ERR_INVALID);
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    assert_int_equal(wsfwd_conn_new(h->cfg, (wsfwd_role)7, NULL, &c), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_conn_feed(h->conn, NULL, 1), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_conn_feed(h->conn, NULL, 0), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_max_message(h->cfg, 0), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_max_header(h->cfg, 10), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_random(h->cfg, NULL, NULL), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_conn_client_start(h->conn, "h", "/", NULL, NULL), WSFWD_ERR_STATE);
    assert_int_equal(wsfwd_conn_role(h->conn), WSFWD_ROLE_SERVER);
    int marker;
    wsfwd_conn_set_user_data(h->conn, &marker);
    assert_ptr_equal(wsfwd_conn_user_data(h->conn), &marker);
    assert_int_equal(wsfwd_conn_set_open(h->conn), WSFWD_OK);
    assert_int_equal(wsfwd_conn_set_open(h->conn), WSFWD_ERR_STATE);
    wsfwd_conn_free(NULL);
    wsfwd_config_free(NULL);
    harness_free(h);

    /* A client whose randomness fails cannot start. */
    h = harness_new(WSFWD_ROLE_CLIENT, NULL);
    harness_free(h);
}

static void test_random_failure(void **state)
{
    (void)state;
    harness *h = harness_new(WSFWD_ROLE_CLIENT, NULL);
    wsfwd_config_set_random(h->cfg, test_failing_random, NULL);
    assert_int_equal(wsfwd_conn_client_start(h->conn, "h", "/", NULL, NULL), WSFWD_ERR_RANDOM);
    assert_int_equal(wsfwd_conn_pending(h->conn), 0);
    harness_free(h);
}

/* The default OS source gives different keys to two clients. */
static void test_default_random(void **state)
{
    (void)state;
    wsfwd_config *cfg;
    assert_int_equal(wsfwd_config_new(NULL, &cfg), WSFWD_OK);
    uint8_t out[2][512];
    for (int i = 0; i < 2; i++) {
        wsfwd_conn *c;
        assert_int_equal(wsfwd_conn_new(cfg, WSFWD_ROLE_CLIENT, NULL, &c), WSFWD_OK);
        assert_int_equal(wsfwd_conn_client_start(c, "h", "/", NULL, NULL), WSFWD_OK);
        memset(out[i], 0, sizeof out[i]);
        test_drain(c, out[i], sizeof out[i]);
        wsfwd_conn_free(c);
    }
    assert_memory_not_equal(out[0], out[1], sizeof out[0]);
    wsfwd_config_free(cfg);
}

/* ---- Flow control ---------------------------------------------------------------------- */

static const char *const FLOW_NAMES[4] = {"pause", "resume", "congested", "drained"};

static void cb_flow(wsfwd_conn *c, wsfwd_flow event, void *ud)
{
    harness *h = ud;
    assert_true((int)event >= 0 && (int)event < 4);
    h->flows[event]++;
    logf_(h, "%s|", FLOW_NAMES[event]);
    if (h->flow_hook != NULL) {
        h->flow_hook(h, c, event);
    }
}

/* An open connection with on_flow and the given queue limit (0: the default). */
static harness *flow_harness(wsfwd_role role, const wsfwd_allocator *alloc, size_t max_queue)
{
    harness *h = harness_new(role, alloc);
    assert_non_null(h);
    wsfwd_config_on_flow(h->cfg, cb_flow);
    if (max_queue > 0) {
        assert_int_equal(wsfwd_config_set_max_queue(h->cfg, max_queue), WSFWD_OK);
    }
    assert_int_equal(wsfwd_conn_set_open(h->conn), WSFWD_OK);
    return h;
}

static void clear_log(harness *h)
{
    h->log_len = 0;
    h->log[0] = '\0';
}

/* Queue exactly n more bytes (n != 1) as server frames of at most 127 bytes (2-byte header). */
static void fill_exact(wsfwd_conn *c, size_t n)
{
    static const uint8_t zeros[125];
    assert_int_not_equal(n, 1);
    while (n > 0) {
        /* Never leave 1 byte, which no frame fills. */
        size_t f = n <= 127 ? n : n - 127 == 1 ? 126 : 127;
        assert_int_equal(wsfwd_conn_send(c, WSFWD_OP_BINARY, zeros, f - 2), WSFWD_OK);
        n -= f;
    }
}

/*
 * Check the marks by behaviour, on an empty queue: up to the high mark exactly nothing
 * happens, one byte past it CONGESTED comes (once); written down to one byte above the low
 * mark nothing happens, down to the low mark DRAINED comes (once).
 */
static void check_marks(harness *h, size_t high, size_t low)
{
    wsfwd_conn *c = h->conn;
    assert_int_equal(wsfwd_conn_pending(c), 0);
    int congested = h->flows[WSFWD_FLOW_CONGESTED];
    int drained = h->flows[WSFWD_FLOW_DRAINED];
    fill_exact(c, high);
    assert_int_equal(wsfwd_conn_pending(c), high);
    assert_false(wsfwd_conn_is_congested(c));
    assert_int_equal(h->flows[WSFWD_FLOW_CONGESTED], congested);
    assert_int_equal(wsfwd_conn_send(c, WSFWD_OP_TEXT, "", 0), WSFWD_OK); /* 2 bytes */
    assert_true(wsfwd_conn_is_congested(c));
    assert_int_equal(h->flows[WSFWD_FLOW_CONGESTED], congested + 1);
    wsfwd_conn_consume(c, wsfwd_conn_pending(c) - (low + 1));
    assert_true(wsfwd_conn_is_congested(c));
    assert_int_equal(h->flows[WSFWD_FLOW_DRAINED], drained);
    wsfwd_conn_consume(c, 1);
    assert_int_equal(wsfwd_conn_pending(c), low);
    assert_false(wsfwd_conn_is_congested(c));
    assert_int_equal(h->flows[WSFWD_FLOW_DRAINED], drained + 1);
    wsfwd_conn_consume(c, low);
    assert_int_equal(h->flows[WSFWD_FLOW_CONGESTED], congested + 1);
    assert_int_equal(h->flows[WSFWD_FLOW_DRAINED], drained + 1);
    assert_int_equal(h->flows[WSFWD_FLOW_PAUSE] + h->flows[WSFWD_FLOW_RESUME], 0);
}

static void test_queue_marks(void **state)
{
    (void)state;
    harness *h = flow_harness(WSFWD_ROLE_SERVER, NULL, 0);
    wsfwd_config *cfg = h->cfg;
    /* Defaults: half and an eighth of the queue limit, and they follow the limit. */
    assert_int_equal(wsfwd_conn_max_queue(h->conn), 1 << 20);
    check_marks(h, 1 << 19, 1 << 17);
    assert_int_equal(wsfwd_config_set_max_queue(cfg, 4096), WSFWD_OK);
    assert_int_equal(wsfwd_conn_max_queue(h->conn), 4096);
    check_marks(h, 2048, 512);
    assert_int_equal(wsfwd_config_set_max_queue(cfg, 1000), WSFWD_OK);
    check_marks(h, 500, 125);

    /* Explicit marks; the limit may not go below the high mark, and no longer moves them. */
    assert_int_equal(wsfwd_config_set_queue_marks(cfg, 300, 40), WSFWD_OK);
    check_marks(h, 300, 40);
    assert_int_equal(wsfwd_config_set_max_queue(cfg, 299), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_conn_max_queue(h->conn), 1000);
    assert_int_equal(wsfwd_config_set_max_queue(cfg, 300), WSFWD_OK);
    assert_int_equal(wsfwd_conn_max_queue(h->conn), 300);
    assert_int_equal(wsfwd_config_set_max_queue(cfg, 4096), WSFWD_OK);
    check_marks(h, 300, 40);

    /* Invalid marks are refused and change nothing. */
    assert_int_equal(wsfwd_config_set_queue_marks(cfg, 40, 40), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_queue_marks(cfg, 40, 300), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_queue_marks(cfg, 0, 1), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_queue_marks(cfg, 4097, 10), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_queue_marks(NULL, 300, 40), WSFWD_ERR_INVALID);
    check_marks(h, 300, 40);
    /* The high mark may equal the limit, the low mark may be 0. */
    assert_int_equal(wsfwd_config_set_queue_marks(cfg, 4096, 0), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_queue_marks(cfg, 200, 0), WSFWD_OK);
    check_marks(h, 200, 0);

    /* (0, 0): back to the defaults, which follow the limit again. */
    assert_int_equal(wsfwd_config_set_queue_marks(cfg, 0, 0), WSFWD_OK);
    check_marks(h, 2048, 512);
    assert_int_equal(wsfwd_config_set_max_queue(cfg, 100), WSFWD_OK); /* below the old high */
    assert_int_equal(wsfwd_config_set_max_queue(cfg, 8192), WSFWD_OK);
    check_marks(h, 4096, 1024);

    assert_int_equal(wsfwd_config_set_slow_timeout(cfg, 0), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_slow_timeout(cfg, 5000), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_slow_timeout(NULL, 5000), WSFWD_ERR_INVALID);
    assert_null(strstr(h->log, "close"));
    harness_free(h);
}

/* A 4096-byte queue: its default marks are 2048 and 512. */
enum { FQ = 4096, FQ_HIGH = FQ / 2, FQ_LOW = FQ / 8, FMSG = 100, FFRAME = FMSG + 2 };

static void send_fmsg(wsfwd_conn *c, int k, int expect)
{
    char text[FMSG];
    memset(text, 'a' + k % 26, sizeof text);
    assert_int_equal(wsfwd_conn_send(c, WSFWD_OP_TEXT, text, sizeof text), expect);
}

/* CONGESTED when the queue passes the high mark, DRAINED when partial writes bring it to the
   low mark: once each per crossing, whatever happens in between. */
static void test_congested_and_drained_once(void **state)
{
    (void)state;
    harness *h = flow_harness(WSFWD_ROLE_SERVER, NULL, FQ);
    wsfwd_conn *c = h->conn;
    for (int cycle = 0; cycle < 3; cycle++) {
        clear_log(h);
        int k = 0;
        while (!wsfwd_conn_is_congested(c)) {
            assert_string_equal(h->log, "");
            send_fmsg(c, k++, WSFWD_OK);
        }
        /* At the first send past the mark, not before. */
        assert_true(wsfwd_conn_pending(c) > FQ_HIGH && wsfwd_conn_pending(c) - FFRAME <= FQ_HIGH);
        assert_string_equal(h->log, "congested|");
        /* More output, up to the limit: no more events. */
        int rc;
        while ((rc = wsfwd_conn_send(c, WSFWD_OP_TEXT, "more", 4)) == WSFWD_OK) {
        }
        assert_int_equal(rc, WSFWD_ERR_WOULD_BLOCK);
        /* Partial writes of odd sizes, down to just above the low mark: still congested. */
        while (wsfwd_conn_pending(c) > FQ_LOW + 333) {
            wsfwd_conn_consume(c, 333);
            assert_true(wsfwd_conn_is_congested(c));
        }
        assert_string_equal(h->log, "congested|");
        wsfwd_conn_consume(c, wsfwd_conn_pending(c) - FQ_LOW);
        assert_false(wsfwd_conn_is_congested(c));
        assert_string_equal(h->log, "congested|drained|");
        wsfwd_conn_consume(c, 7);
        /* Sending again below the high mark is quiet. */
        send_fmsg(c, 0, WSFWD_OK);
        wsfwd_conn_consume(c, wsfwd_conn_pending(c));
        assert_string_equal(h->log, "congested|drained|");
    }
    assert_int_equal(h->flows[WSFWD_FLOW_CONGESTED], 3);
    assert_int_equal(h->flows[WSFWD_FLOW_DRAINED], 3);
    assert_int_equal(h->flows[WSFWD_FLOW_PAUSE] + h->flows[WSFWD_FLOW_RESUME], 0);
    assert_false(wsfwd_conn_is_paced(c));
    harness_free(h);

    /* Without an on_flow callback the state is kept all the same. */
    h = harness_new(WSFWD_ROLE_SERVER, NULL);
    wsfwd_config_set_max_queue(h->cfg, FQ);
    wsfwd_conn_set_open(h->conn);
    fill_exact(h->conn, FQ_HIGH + 2);
    assert_true(wsfwd_conn_is_congested(h->conn));
    wsfwd_conn_consume(h->conn, FQ_HIGH + 2 - FQ_LOW);
    assert_false(wsfwd_conn_is_congested(h->conn));
    harness_free(h);
}

/* Sending past the limit is the caller's to handle: WOULD_BLOCK, nothing queued, and the
   connection stays open, under either slow-reader policy. */
static void test_send_would_block(void **state)
{
    (void)state;
    for (int drop = 0; drop <= 1; drop++) {
        harness *h = flow_harness(WSFWD_ROLE_SERVER, NULL, 1024);
        wsfwd_config_set_slow_policy(h->cfg, drop ? WSFWD_SLOW_DROP : WSFWD_SLOW_CLOSE);
        wsfwd_conn *c = h->conn;
        int accepted = 0;
        int rc;
        while ((rc = wsfwd_conn_send(c, WSFWD_OP_TEXT, "0123456789", 10)) == WSFWD_OK) {
            accepted++;
            assert_true(accepted < 1000);
        }
        assert_int_equal(rc, WSFWD_ERR_WOULD_BLOCK);
        size_t pending = wsfwd_conn_pending(c);
        assert_int_equal(pending, (size_t)accepted * 12);
        assert_true(pending <= 1024);
        /* At the limit: refused only when the frame could not fit with a full header. */
        assert_true(pending + WSFWD_FRAME_HEADER_MAX + 10 > 1024);
        assert_int_equal(wsfwd_conn_send(c, WSFWD_OP_BINARY, "0123456789", 10),
                         WSFWD_ERR_WOULD_BLOCK);
        assert_int_equal(wsfwd_conn_pending(c), pending);
        assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_OPEN);
        assert_null(strstr(h->log, "close"));

        /* After a write, sending works again. */
        wsfwd_conn_consume(c, 12);
        assert_int_equal(wsfwd_conn_send(c, WSFWD_OP_TEXT, "0123456789", 10), WSFWD_OK);
        uint8_t out[2048];
        size_t got = test_drain(c, out, sizeof out);
        assert_int_equal(got, pending);
        for (size_t off = 0; off < got; off += 12) {
            assert_int_equal(out[off], 0x81);
            assert_int_equal(out[off + 1], 10);
            assert_memory_equal(out + off + 2, "0123456789", 10);
        }

        /* An empty queue takes one message even past the limit; the next one waits. */
        static uint8_t big[3000];
        assert_int_equal(wsfwd_conn_send(c, WSFWD_OP_BINARY, big, sizeof big), WSFWD_OK);
        assert_int_equal(wsfwd_conn_send(c, WSFWD_OP_TEXT, "x", 1), WSFWD_ERR_WOULD_BLOCK);
        assert_int_equal(wsfwd_conn_pending(c), 4 + sizeof big);
        assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_OPEN);
        assert_null(strstr(h->log, "close"));
        harness_free(h);
    }
}

/* A client-role connection (masked frames) sends 200,000 small messages, writing part of
   its output whenever it is told to wait: never closed, nothing lost, nothing leaked. */
enum { LOOP_N = 200000, LOOP_LEN = 10, LOOP_FRAME = 2 + 4 + LOOP_LEN };

typedef struct loop_stream {
    uint8_t buf[8192];
    size_t len;
    uint32_t next; /* the message number expected next */
} loop_stream;

static void loop_payload(char out[LOOP_LEN + 1], uint32_t k)
{
    snprintf(out, LOOP_LEN + 1, "%010u", (unsigned)k);
}

/* Take the bytes the peer would read and check every whole frame in them. */
static void loop_take(loop_stream *s, const uint8_t *p, size_t n)
{
    assert_true(s->len + n <= sizeof s->buf);
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    size_t off = 0;
    while (s->len - off >= LOOP_FRAME) {
        uint8_t *f = s->buf + off;
        wsfwd_frame_header fh;
        assert_int_equal(wsfwd_frame_parse_header(f, LOOP_FRAME, WSFWD_ROLE_SERVER, &fh), WSFWD_OK);
        assert_int_equal(fh.opcode, WSFWD_OP_BINARY);
        assert_true(fh.masked && fh.fin);
        assert_int_equal(fh.payload_len, LOOP_LEN);
        wsfwd_frame_mask(f + fh.header_len, LOOP_LEN, fh.mask, 0);
        char expect[LOOP_LEN + 1];
        loop_payload(expect, s->next++);
        assert_memory_equal(f + fh.header_len, expect, LOOP_LEN);
        off += LOOP_FRAME;
    }
    memmove(s->buf, s->buf + off, s->len - off);
    s->len -= off;
}

/* Write up to n bytes of the connection's output into the stream. */
static void loop_write(wsfwd_conn *c, loop_stream *s, size_t n)
{
    while (n > 0) {
        wsfwd_iovec iov[4];
        size_t k = wsfwd_conn_output(c, iov, 4);
        assert_true(k > 0);
        size_t take = iov[0].len < n ? iov[0].len : n;
        loop_take(s, iov[0].base, take);
        wsfwd_conn_consume(c, take);
        n -= take;
    }
}

static void test_client_send_loop_never_closes(void **state)
{
    (void)state;
    test_alloc ca;
    test_alloc_init(&ca);
    wsfwd_allocator alloc = test_alloc_hooks(&ca);
    harness *h = flow_harness(WSFWD_ROLE_CLIENT, &alloc, FQ);
    wsfwd_conn *c = h->conn;
    static loop_stream s;
    memset(&s, 0, sizeof s);
    long blocks = 0;
    for (uint32_t i = 0; i < LOOP_N;) {
        char p[LOOP_LEN + 1];
        loop_payload(p, i);
        size_t before = wsfwd_conn_pending(c);
        int rc = wsfwd_conn_send(c, WSFWD_OP_BINARY, p, LOOP_LEN);
        if (rc == WSFWD_OK) {
            i++;
            continue;
        }
        assert_int_equal(rc, WSFWD_ERR_WOULD_BLOCK);
        assert_int_equal(wsfwd_conn_pending(c), before); /* nothing queued */
        assert_true(before <= FQ);
        assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_OPEN);
        /* Write a varying part of it: sometimes down past the low mark, sometimes not, and
           mostly not on a frame boundary. */
        blocks++;
        size_t n = before / 2 + (size_t)(blocks * 997) % (before / 2);
        loop_write(c, &s, n);
        assert_int_equal(wsfwd_conn_is_congested(c),
                         h->flows[WSFWD_FLOW_CONGESTED] > h->flows[WSFWD_FLOW_DRAINED]);
        clear_log(h);
    }
    loop_write(c, &s, wsfwd_conn_pending(c));
    assert_int_equal(s.next, LOOP_N);
    assert_int_equal(s.len, 0);
    assert_true(blocks > LOOP_N / (FQ / LOOP_FRAME));
    assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_OPEN);
    assert_null(strstr(h->log, "close"));
    assert_false(wsfwd_conn_is_congested(c));
    assert_true(h->flows[WSFWD_FLOW_CONGESTED] > 0);
    assert_int_equal(h->flows[WSFWD_FLOW_CONGESTED], h->flows[WSFWD_FLOW_DRAINED]);
    assert_int_equal(h->flows[WSFWD_FLOW_PAUSE] + h->flows[WSFWD_FLOW_RESUME], 0);
    harness_free(h);
    assert_int_equal(ca.live, 0);
}

/* The client's frame of FMSG bytes, for a server connection to read. */
static size_t put_fmsg(uint8_t *b, int k)
{
    char text[FMSG];
    memset(text, 'a' + k % 26, sizeof text);
    return test_client_frame(b, true, WSFWD_OP_TEXT, text, sizeof text);
}

/* An echo server (on_message sends each message back) fills its own queue: the library tells
   it CONGESTED past the high mark and DRAINED at the low mark, and paces nobody (no PAUSE,
   RESUME: only pool senders are paced); stopping reading meanwhile is the embedder's part, as
   in cli/server.c. A peer read on regardless meets the hard cap in wsfwd_conn_send:
   WSFWD_ERR_WOULD_BLOCK, nothing queued, the connection stays open. */
static void test_echo_embedder_told_congested(void **state)
{
    (void)state;
    harness *h = flow_harness(WSFWD_ROLE_SERVER, NULL, FQ);
    h->on_message = ACT_ECHO;
    wsfwd_conn *c = h->conn;
    uint8_t b[256];
    for (int cycle = 0; cycle < 2; cycle++) {
        int k = 0;
        while (!wsfwd_conn_is_congested(c)) {
            assert_int_equal(test_feed(c, b, put_fmsg(b, k++)), WSFWD_OK);
        }
        assert_true(wsfwd_conn_pending(c) - FFRAME <= FQ_HIGH);
        assert_false(wsfwd_conn_is_paced(c));
        assert_int_equal(h->flows[WSFWD_FLOW_CONGESTED], cycle + 1);
        assert_int_equal(h->flows[WSFWD_FLOW_DRAINED], cycle);
        wsfwd_conn_consume(c, wsfwd_conn_pending(c) - (FQ_LOW + 1));
        assert_true(wsfwd_conn_is_congested(c));
        assert_int_equal(h->flows[WSFWD_FLOW_DRAINED], cycle);
        wsfwd_conn_consume(c, 1);
        assert_false(wsfwd_conn_is_congested(c));
        assert_int_equal(h->flows[WSFWD_FLOW_DRAINED], cycle + 1);
        wsfwd_conn_consume(c, wsfwd_conn_pending(c));
    }
    for (int k = 0; k < 100; k++) {
        assert_int_equal(test_feed(c, b, put_fmsg(b, k)), WSFWD_OK);
        assert_true(wsfwd_conn_pending(c) <= FQ);
    }
    assert_true(h->echo_blocked > 0);
    assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_OPEN);
    assert_null(strstr(h->log, "close"));
    assert_int_equal(h->flows[WSFWD_FLOW_PAUSE] + h->flows[WSFWD_FLOW_RESUME], 0);
    harness_free(h);
}

/* Pongs, too, get the slow-reader policy at the hard cap (send only returns WOULD_BLOCK). */
static void test_pong_at_hard_cap(void **state)
{
    (void)state;
    for (int drop = 0; drop <= 1; drop++) {
        harness *h = flow_harness(WSFWD_ROLE_SERVER, NULL, 1024);
        wsfwd_config_set_slow_policy(h->cfg, drop ? WSFWD_SLOW_DROP : WSFWD_SLOW_CLOSE);
        wsfwd_conn *c = h->conn;
        while (wsfwd_conn_send(c, WSFWD_OP_TEXT, "0123456789", 10) == WSFWD_OK) {
        }
        size_t pending = wsfwd_conn_pending(c);
        uint8_t ping[125];
        memset(ping, 'p', sizeof ping);
        uint8_t b[256];
        size_t n = test_client_frame(b, true, WSFWD_OP_PING, ping, sizeof ping);
        if (drop) {
            assert_int_equal(test_feed(c, b, n), WSFWD_OK);
            assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_OPEN);
            assert_int_equal(wsfwd_conn_pending(c), pending); /* the pong was dropped */
            assert_non_null(strstr(h->log, "ctl 9 "));
        } else {
            assert_int_equal(test_feed(c, b, n), WSFWD_ERR_QUEUE_FULL);
            assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_CLOSED);
            static uint8_t out[4096];
            size_t got = test_drain(c, out, sizeof out);
            assert_int_equal(got, pending + 4 + strlen(wsfwd_strerror(WSFWD_ERR_QUEUE_FULL)));
            assert_int_equal(close_code_at(out + pending, got - pending), 1008);
        }
        harness_free(h);
    }
}

/* The queries, and wsfwd_conn_tick on a connection in no pool: nothing to time. */
static void test_flow_queries(void **state)
{
    (void)state;
    uint64_t next = 7;
    assert_int_equal(wsfwd_conn_max_queue(NULL), 0);
    assert_false(wsfwd_conn_is_congested(NULL));
    assert_false(wsfwd_conn_is_paced(NULL));
    assert_int_equal(wsfwd_conn_pending(NULL), 0);
    assert_int_equal(wsfwd_conn_tick(NULL, 10, &next), WSFWD_ERR_INVALID);
    assert_true(next == UINT64_MAX);
    assert_int_equal(wsfwd_conn_tick(NULL, 10, NULL), WSFWD_ERR_INVALID);

    harness *h = flow_harness(WSFWD_ROLE_SERVER, NULL, 0);
    wsfwd_conn *c = h->conn;
    assert_int_equal(wsfwd_conn_max_queue(c), 1 << 20);
    assert_false(wsfwd_conn_is_congested(c));
    assert_false(wsfwd_conn_is_paced(c));
    assert_int_equal(wsfwd_conn_pending(c), 0);
    assert_int_equal(wsfwd_config_set_max_queue(h->cfg, FQ), WSFWD_OK);
    assert_int_equal(wsfwd_conn_max_queue(c), FQ);
    next = 7;
    assert_int_equal(wsfwd_conn_tick(c, 1000, &next), WSFWD_OK);
    assert_true(next == UINT64_MAX);
    fill_exact(c, FQ_HIGH + 100);
    assert_int_equal(wsfwd_conn_pending(c), FQ_HIGH + 100);
    assert_true(wsfwd_conn_is_congested(c));
    assert_false(wsfwd_conn_is_paced(c)); /* not in a pool */
    /* Congested, but in no pool: it holds nobody up, so no timer, and never a cut. */
    for (uint64_t t = 0; t <= 100000; t += 5000) {
        next = 7;
        assert_int_equal(wsfwd_conn_tick(c, t, &next), WSFWD_OK);
        assert_true(next == UINT64_MAX);
    }
    assert_int_equal(wsfwd_conn_tick(c, 200000, NULL), WSFWD_OK);
    assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_OPEN);
    assert_string_equal(h->log, "congested|");
    harness_free(h);
}

/* Events come in the order of the transitions, whatever the callbacks do: an echo
   connection drains, and its DRAINED callback sends (as any callback may) past the high mark
   again. The application must not be told DRAINED after CONGESTED while it is congested (it
   would, e.g., stop ticking its slow timer, or read a peer whose echoes pile up). */
static void resend_on_drained(harness *h, wsfwd_conn *c, wsfwd_flow event)
{
    if (event != WSFWD_FLOW_DRAINED || h->flows[WSFWD_FLOW_DRAINED] > 1) {
        return;
    }
    fill_exact(c, FQ_HIGH + 100);
}

static void test_flow_events_in_order_after_drained(void **state)
{
    (void)state;
    harness *h = flow_harness(WSFWD_ROLE_SERVER, NULL, FQ);
    h->on_message = ACT_ECHO;
    wsfwd_conn *c = h->conn;
    uint8_t b[256];
    for (int k = 0; !wsfwd_conn_is_congested(c); k++) {
        assert_int_equal(test_feed(c, b, put_fmsg(b, k)), WSFWD_OK);
    }
    assert_string_equal(h->log + strlen(h->log) - strlen("congested|"), "congested|");
    clear_log(h);
    h->flow_hook = resend_on_drained;
    wsfwd_conn_consume(c, wsfwd_conn_pending(c));
    h->flow_hook = NULL;
    /* It is congested again: the last word must say so. */
    assert_true(wsfwd_conn_is_congested(c));
    assert_string_equal(h->log, "drained|congested|");
    harness_free(h);
}

/* ---- The callback contract (docs/api.md section 10, "The callback contract") ---------- */

/* The last n bytes of the output queued on c, without consuming it. */
static void queued_tail(wsfwd_conn *c, uint8_t *out, size_t n)
{
    wsfwd_iovec iov[64];
    size_t k = wsfwd_conn_output(c, iov, 64);
    size_t total = 0;
    for (size_t i = 0; i < k; i++) {
        total += iov[i].len;
    }
    assert_int_equal(total, wsfwd_conn_pending(c));
    assert_true(total >= n);
    size_t skip = total - n;
    size_t got = 0;
    for (size_t i = 0; i < k && got < n; i++) {
        const uint8_t *p = iov[i].base;
        size_t len = iov[i].len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(out + got, p + skip, len - skip);
        got += len - skip;
        skip = 0;
    }
}

/* What each callback finds and may call on its own connection: the rows of the table. */
static void contract_probe(harness *h, wsfwd_conn *c, const char *where)
{
    uint8_t b[8] = {0};
    /* Every callback: feeding its own connection is refused. */
    assert_int_equal(wsfwd_conn_feed(c, b, 1), WSFWD_ERR_STATE);
    if (strcmp(where, "request") == 0) {
        /* In the handshake: no send, no close; accept, then send (after the 101). */
        assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_HANDSHAKE);
        assert_int_equal(wsfwd_conn_send(c, WSFWD_OP_TEXT, "x", 1), WSFWD_ERR_STATE);
        assert_int_equal(wsfwd_conn_close(c, 1000, NULL, 0), WSFWD_ERR_STATE);
        assert_int_equal(wsfwd_conn_accept(c, NULL), WSFWD_OK);
        assert_int_equal(wsfwd_conn_accept(c, NULL), WSFWD_ERR_STATE); /* decided once */
        assert_int_equal(wsfwd_conn_send(c, WSFWD_OP_TEXT, "R", 1), WSFWD_OK);
    } else if (strcmp(where, "open") == 0) {
        assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_OPEN);
        assert_int_equal(wsfwd_conn_accept(c, NULL), WSFWD_ERR_STATE); /* too late */
        assert_int_equal(wsfwd_conn_send(c, WSFWD_OP_TEXT, "O", 1), WSFWD_OK);
    } else if (strcmp(where, "message") == 0) {
        assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_OPEN);
        assert_int_equal(wsfwd_conn_send(c, WSFWD_OP_TEXT, "M", 1), WSFWD_OK);
    } else if (strcmp(where, "control") == 0) {
        /* The ping's pong is queued before on_control runs. */
        assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_OPEN);
        queued_tail(c, b, 3);
        assert_memory_equal(b, "\x8a\x01p", 3);
    } else {
        /* on_close: closed, nothing more can be sent or closed. */
        assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_CLOSED);
        assert_int_equal(wsfwd_conn_send(c, WSFWD_OP_TEXT, "x", 1), WSFWD_ERR_CLOSED);
        assert_int_equal(wsfwd_conn_close(c, 1000, NULL, 0), WSFWD_ERR_CLOSED);
    }
    logf_(h, "ok %s|", where);
}

static void test_callback_contract(void **state)
{
    (void)state;
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    h->hook = contract_probe;
    uint8_t in[512];
    size_t n = sizeof REQUEST - 1;
    memcpy(in, REQUEST, n);
    n += test_client_frame(in + n, true, WSFWD_OP_TEXT, "a", 1);
    n += test_client_frame(in + n, true, WSFWD_OP_PING, "p", 1);
    n += test_client_frame(in + n, true, WSFWD_OP_CLOSE, "\x03\xe8", 2);
    assert_int_equal(test_feed(h->conn, in, n), WSFWD_OK);
    assert_string_equal(h->log, "request /ws/room|ok request|open|ok open|msg 1 1 61|ok message|"
                                "ctl 9 70|ok control|close 1000  0|ok close|");
    /* The 101, then what each callback sent, the pong, the close: in the order queued. */
    static uint8_t out[2048];
    size_t got = test_drain(h->conn, out, sizeof out);
    const uint8_t *end = memmem(out, got, "\r\n\r\n", 4);
    assert_non_null(end);
    end += 4;
    static const uint8_t frames[] = {0x81, 1,    'R', 0x81, 1,    'O', 0x81, 1,
                                     'M',  0x8a, 1,   'p',  0x88, 2,   0x03, 0xe8};
    assert_int_equal((size_t)(out + got - end), sizeof frames);
    assert_memory_equal(end, frames, sizeof frames);
    harness_free(h);
}

/* ---- Deadlines (wsfwd_conn_tick) ------------------------------------------------------- */

static void expect_tick(wsfwd_conn *c, uint64_t now, int rc, uint64_t next)
{
    uint64_t got = 7;
    assert_int_equal(wsfwd_conn_tick(c, now, &got), rc);
    if (got != next) {
        fail_msg("tick at %llu: next %llu, expected %llu", (unsigned long long)now,
                 (unsigned long long)got, (unsigned long long)next);
    }
}

/* A harness with the four deadlines set (0: off). */
static harness *timer_harness(wsfwd_role role, uint32_t hs, uint32_t idle, uint32_t pong,
                              uint32_t close)
{
    harness *h = harness_new(role, NULL);
    assert_non_null(h);
    wsfwd_config_on_flow(h->cfg, cb_flow);
    assert_int_equal(wsfwd_config_set_handshake_timeout(h->cfg, hs), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_idle_timeout(h->cfg, idle), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_pong_timeout(h->cfg, pong), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_close_timeout(h->cfg, close), WSFWD_OK);
    return h;
}

/* An open server connection with those deadlines, ticked first at 0: next must be first. */
static harness *open_timer_harness(uint32_t idle, uint32_t pong, uint32_t close, uint64_t first)
{
    harness *h = timer_harness(WSFWD_ROLE_SERVER, 0, idle, pong, close);
    assert_int_equal(wsfwd_conn_set_open(h->conn), WSFWD_OK);
    expect_tick(h->conn, 0, WSFWD_OK, first);
    return h;
}

static void feed_text(wsfwd_conn *c, const char *text)
{
    uint8_t b[256];
    assert_int_equal(test_feed(c, b, test_client_frame(b, true, WSFWD_OP_TEXT, text, strlen(text))),
                     WSFWD_OK);
}

/* Off (the default): nothing is timed in any state, whatever the time. */
static void test_timers_off(void **state)
{
    (void)state;
    assert_int_equal(wsfwd_config_set_handshake_timeout(NULL, 1), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_idle_timeout(NULL, 1), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_pong_timeout(NULL, 1), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_close_timeout(NULL, 1), WSFWD_ERR_INVALID);
    harness *h = harness_new(WSFWD_ROLE_SERVER, NULL);
    assert_int_equal(wsfwd_config_set_idle_timeout(h->cfg, INT32_MAX), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_idle_timeout(h->cfg, (uint32_t)INT32_MAX + 1),
                     WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_idle_timeout(h->cfg, 0), WSFWD_OK);
    for (int phase = 0; phase < 3; phase++) {
        for (uint64_t t = 0; t <= 1000000000; t += 99999999) {
            expect_tick(h->conn, t, WSFWD_OK, UINT64_MAX);
        }
        if (phase == 0) {
            assert_int_equal(test_feed(h->conn, (const uint8_t *)REQUEST, sizeof REQUEST - 1),
                             WSFWD_OK);
        } else if (phase == 1) {
            assert_int_equal(wsfwd_conn_close(h->conn, 1000, NULL, 0), WSFWD_OK);
        }
    }
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_CLOSING);
    assert_string_equal(h->log, "request /ws/room|open|");
    harness_free(h);
}

/* Server: the request must be whole within the handshake timeout, counted from the first
   tick; bytes that trickle in do not extend it. Nothing is written, on_close stays silent. */
static void test_handshake_timeout_server(void **state)
{
    (void)state;
    harness *h = timer_harness(WSFWD_ROLE_SERVER, 1000, 0, 0, 500);
    wsfwd_conn *c = h->conn;
    expect_tick(c, 5000, WSFWD_OK, 6000);
    assert_int_equal(test_feed(c, (const uint8_t *)REQUEST, 20), WSFWD_OK);
    expect_tick(c, 5600, WSFWD_OK, 6000);
    expect_tick(c, 5999, WSFWD_OK, 6000);
    assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_HANDSHAKE);
    expect_tick(c, 6000, WSFWD_ERR_HANDSHAKE_TIMEOUT, UINT64_MAX);
    assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_CLOSED);
    assert_true(wsfwd_conn_is_done(c));
    assert_int_equal(h->outputs, 0);
    expect_tick(c, 9000, WSFWD_OK, UINT64_MAX); /* reported once; no close timer after it */
    assert_int_equal(test_feed(c, (const uint8_t *)REQUEST + 20, sizeof REQUEST - 21), WSFWD_OK);
    assert_string_equal(h->log, "");
    harness_free(h);

    /* In time: the handshake timer ends with the handshake. */
    h = timer_harness(WSFWD_ROLE_SERVER, 1000, 0, 0, 0);
    expect_tick(h->conn, 0, WSFWD_OK, 1000);
    assert_int_equal(test_feed(h->conn, (const uint8_t *)REQUEST, sizeof REQUEST - 1), WSFWD_OK);
    expect_tick(h->conn, 999, WSFWD_OK, UINT64_MAX);
    expect_tick(h->conn, 5000, WSFWD_OK, UINT64_MAX);
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_OPEN);
    harness_free(h);
}

/* Client: no response in time fails with its own error; the unsent request is dropped. */
static void test_handshake_timeout_client(void **state)
{
    (void)state;
    harness *h = timer_harness(WSFWD_ROLE_CLIENT, 2000, 0, 0, 0);
    wsfwd_conn *c = h->conn;
    assert_int_equal(wsfwd_conn_client_start(c, "example.com", "/", NULL, NULL), WSFWD_OK);
    expect_tick(c, 100, WSFWD_OK, 2100);
    assert_true(wsfwd_conn_pending(c) > 0);
    expect_tick(c, 2099, WSFWD_OK, 2100);
    expect_tick(c, 2100, WSFWD_ERR_HANDSHAKE_TIMEOUT, UINT64_MAX);
    assert_int_equal(wsfwd_conn_pending(c), 0);
    assert_true(wsfwd_conn_is_done(c));
    assert_int_equal(test_feed(c, (const uint8_t *)"HTTP/1.1 101", 12), WSFWD_OK); /* ignored */
    assert_string_equal(h->log, "");
    harness_free(h);
}

/* Open: idle ms without input, a ping; then pong ms without input, a 1001 failure. Input
   (a message, the pong) puts both off; the close timer starts with the failure. */
static void test_idle_ping_and_pong_timeout(void **state)
{
    (void)state;
    harness *h = open_timer_harness(1000, 500, 300, 1000);
    wsfwd_conn *c = h->conn;
    uint8_t out[256];
    feed_text(c, "hi");
    expect_tick(c, 600, WSFWD_OK, 1600);
    expect_tick(c, 1599, WSFWD_OK, 1600);
    assert_int_equal(wsfwd_conn_pending(c), 0);
    expect_tick(c, 1600, WSFWD_OK, 2100);
    assert_int_equal(test_drain(c, out, sizeof out), 2);
    assert_memory_equal(out, "\x89\x00", 2); /* an empty ping */
    /* The pong comes: the next ping is an idle time after it. */
    assert_int_equal(test_feed(c, out, test_client_frame(out, true, WSFWD_OP_PONG, "", 0)),
                     WSFWD_OK);
    expect_tick(c, 1800, WSFWD_OK, 2800);
    expect_tick(c, 2800, WSFWD_OK, 3300);
    assert_int_equal(test_drain(c, out, sizeof out), 2);
    expect_tick(c, 3299, WSFWD_OK, 3300);
    assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_OPEN);
    expect_tick(c, 3300, WSFWD_ERR_PONG_TIMEOUT, 3600);
    size_t n = test_drain(c, out, sizeof out);
    assert_int_equal(close_code_at(out, n), 1001);
    assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_CLOSED);
    assert_string_equal(h->log, "msg 1 2 6869|ctl 10 |close 1001 no pong before the deadline -76|");
    /* Closed and written: the close timer still bounds the wait for the peer's FIN. */
    expect_tick(c, 3599, WSFWD_OK, 3600);
    expect_tick(c, 3600, WSFWD_ERR_CLOSE_TIMEOUT, UINT64_MAX);
    harness_free(h);
}

/* A pong timeout of 0: a quiet peer is pinged every idle time, never failed. Input that is
   fed but not yet ticked counts at the next tick: a late tick puts the ping off, never on. */
static void test_idle_ping_without_pong_timeout(void **state)
{
    (void)state;
    harness *h = open_timer_harness(100, 0, 0, 100);
    wsfwd_conn *c = h->conn;
    uint8_t out[64];
    for (uint64_t t = 100; t <= 1000; t += 100) {
        expect_tick(c, t, WSFWD_OK, t + 100);
        assert_int_equal(test_drain(c, out, sizeof out), 2);
    }
    feed_text(c, "x");
    expect_tick(c, 1100, WSFWD_OK, 1200); /* the input counts as of now: no ping */
    assert_int_equal(wsfwd_conn_pending(c), 0);
    assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_OPEN);
    harness_free(h);
}

/* A tick made from a callback of a tick, with a later clock (the caller read its clock again):
   the outer tick's older now must not see the inner one's times as overdue. */
static void later_tick_in_output(harness *h, wsfwd_conn *c)
{
    h->output_hook = NULL;
    feed_text(c, "pong-ish"); /* input: the idle timer restarts at the next tick */
    expect_tick(c, 1700, WSFWD_OK, 2700);
}

static void test_nested_tick_later_clock(void **state)
{
    (void)state;
    harness *h = open_timer_harness(1000, 500, 300, 1000);
    wsfwd_conn *c = h->conn;
    h->output_hook = later_tick_in_output;
    expect_tick(c, 1000, WSFWD_OK, 2700); /* the ping, then the inner tick's restart */
    assert_null(h->output_hook);
    assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_OPEN);
    harness_free(h);
}

/* Our close frame, then no answer: after the close timeout the connection is CLOSED with its
   output dropped, on_close says 1006; an answer in time leaves the timer for the FIN. */
static void test_close_timeout(void **state)
{
    (void)state;
    harness *h = open_timer_harness(1000, 1000, 2000, 1000);
    wsfwd_conn *c = h->conn;
    assert_int_equal(wsfwd_conn_close(c, 1000, "bye", 3), WSFWD_OK);
    expect_tick(c, 500, WSFWD_OK, 2500); /* no idle ping while closing */
    expect_tick(c, 2499, WSFWD_OK, 2500);
    assert_true(wsfwd_conn_pending(c) > 0); /* the peer never read it */
    expect_tick(c, 2500, WSFWD_ERR_CLOSE_TIMEOUT, UINT64_MAX);
    assert_int_equal(wsfwd_conn_state(c), WSFWD_STATE_CLOSED);
    assert_int_equal(wsfwd_conn_pending(c), 0);
    assert_true(wsfwd_conn_is_done(c));
    assert_string_equal(h->log, "close 1006  -77|");
    expect_tick(c, 9000, WSFWD_OK, UINT64_MAX);
    assert_string_equal(h->log, "close 1006  -77|");
    harness_free(h);

    h = timer_harness(WSFWD_ROLE_SERVER, 0, 0, 0, 2000);
    c = h->conn;
    assert_int_equal(wsfwd_conn_set_open(c), WSFWD_OK);
    assert_int_equal(wsfwd_conn_close(c, 1000, NULL, 0), WSFWD_OK);
    expect_tick(c, 100, WSFWD_OK, 2100);
    uint8_t b[16];
    assert_int_equal(test_feed(c, b, test_client_frame(b, true, WSFWD_OP_CLOSE, "\x03\xe8", 2)),
                     WSFWD_OK);
    expect_tick(c, 1000, WSFWD_OK, 2100); /* CLOSING to CLOSED: the same closing phase */
    expect_tick(c, 2100, WSFWD_ERR_CLOSE_TIMEOUT, UINT64_MAX);
    assert_string_equal(h->log, "close 1000  0|"); /* told once, when the close came */
    harness_free(h);
}

/* Times are taken modulo 2^32: a 64-bit clock crossing 2^32, and a caller's 32-bit clock
   that wraps to 0, time the same deadline. */
static void test_timers_across_wrap(void **state)
{
    (void)state;
    const uint64_t starts[2] = {0xFFFFFF00u, 0x1FFFFFF00u};
    for (int wrap32 = 0; wrap32 < 2; wrap32++) {
        for (int s = 0; s < 2; s++) {
            harness *h = timer_harness(WSFWD_ROLE_SERVER, 0, 1000, 0, 0);
            wsfwd_conn *c = h->conn;
            assert_int_equal(wsfwd_conn_set_open(c), WSFWD_OK);
            uint64_t t0 = starts[s];
            uint64_t mask = wrap32 ? 0xFFFFFFFFu : UINT64_MAX;
            expect_tick(c, t0, WSFWD_OK, t0 + 1000);
            uint64_t got = 0;
            assert_int_equal(wsfwd_conn_tick(c, (t0 + 999) & mask, &got), WSFWD_OK);
            assert_true(got == ((t0 + 999) & mask) + 1);
            assert_int_equal(wsfwd_conn_pending(c), 0);
            assert_int_equal(wsfwd_conn_tick(c, (t0 + 1000) & mask, NULL), WSFWD_OK);
            assert_int_equal(wsfwd_conn_pending(c), 2); /* the ping */
            harness_free(h);
        }
    }
}

static void free_on_drained(harness *h, wsfwd_conn *c, wsfwd_flow event)
{
    if (event == WSFWD_FLOW_DRAINED) {
        wsfwd_conn_free(c);
        h->conn = NULL;
    }
}

/* Callbacks run inside the tick (on_close, on_flow) may free the connection. */
static void test_free_inside_tick(void **state)
{
    (void)state;
    /* on_close at the pong timeout, and at the close timeout. */
    for (int which = 0; which < 2; which++) {
        harness *h = open_timer_harness(100, 100, 100, 100);
        h->on_close = ACT_FREE;
        if (which == 1) {
            assert_int_equal(wsfwd_conn_close(h->conn, 1000, NULL, 0), WSFWD_OK);
            expect_tick(h->conn, 0, WSFWD_OK, 100);
            expect_tick(h->conn, 100, WSFWD_ERR_CLOSE_TIMEOUT, UINT64_MAX);
        } else {
            expect_tick(h->conn, 100, WSFWD_OK, 200);
            expect_tick(h->conn, 200, WSFWD_ERR_PONG_TIMEOUT, UINT64_MAX);
        }
        assert_null(h->conn);
        harness_free(h);
    }
    /* on_flow DRAINED when the close timeout drops a congested backlog. */
    harness *h = timer_harness(WSFWD_ROLE_SERVER, 0, 0, 0, 100);
    assert_int_equal(wsfwd_config_set_max_queue(h->cfg, FQ), WSFWD_OK);
    assert_int_equal(wsfwd_conn_set_open(h->conn), WSFWD_OK);
    fill_exact(h->conn, FQ_HIGH + 100);
    assert_int_equal(wsfwd_conn_close(h->conn, 1000, NULL, 0), WSFWD_OK);
    h->flow_hook = free_on_drained;
    expect_tick(h->conn, 0, WSFWD_OK, 100);
    expect_tick(h->conn, 100, WSFWD_ERR_CLOSE_TIMEOUT, UINT64_MAX);
    assert_null(h->conn);
    assert_string_equal(h->log, "congested|drained|");
    harness_free(h);
}

/* A ping that cannot be queued (the client's mask needs randomness) fails the connection. */
static void test_ping_failure(void **state)
{
    (void)state;
    harness *h = timer_harness(WSFWD_ROLE_CLIENT, 0, 100, 100, 0);
    assert_int_equal(wsfwd_conn_set_open(h->conn), WSFWD_OK);
    expect_tick(h->conn, 0, WSFWD_OK, 100);
    wsfwd_config_set_random(h->cfg, test_failing_random, NULL);
    expect_tick(h->conn, 100, WSFWD_ERR_RANDOM, UINT64_MAX);
    assert_int_equal(wsfwd_conn_state(h->conn), WSFWD_STATE_CLOSED);
    assert_string_equal(h->log, "close 1011 the randomness source failed -6|");
    harness_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_handshake_and_echo),
        cmocka_unit_test(test_server_accepts_subprotocol),
        cmocka_unit_test(test_server_refuses_and_responds),
        cmocka_unit_test(test_server_default_refusals),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_utf8_fails_fast),
        cmocka_unit_test(test_queued_output_precedes_failure),
        cmocka_unit_test(test_ping_pong_and_control_between_fragments),
        cmocka_unit_test(test_peer_initiated_close),
        cmocka_unit_test(test_local_close),
        cmocka_unit_test(test_every_split_gives_same_events),
        cmocka_unit_test(test_byte_at_a_time_with_large_frame),
        cmocka_unit_test(test_client_server_round_trip),
        cmocka_unit_test(test_client_rejects_bad_responses),
        cmocka_unit_test(test_server_keeps_request),
        cmocka_unit_test(test_server_keeps_request_from_on_open),
        cmocka_unit_test(test_client_reads_refusal),
        cmocka_unit_test(test_client_reads_response_in_on_open),
        cmocka_unit_test(test_free_inside_callbacks),
        cmocka_unit_test(test_close_or_fail_inside_callbacks),
        cmocka_unit_test(test_output_signal_and_partial_consume),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_announced_length_is_not_allocated),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_random_failure),
        cmocka_unit_test(test_default_random),
        cmocka_unit_test(test_queue_marks),
        cmocka_unit_test(test_congested_and_drained_once),
        cmocka_unit_test(test_send_would_block),
        cmocka_unit_test(test_client_send_loop_never_closes),
        cmocka_unit_test(test_echo_embedder_told_congested),
        cmocka_unit_test(test_pong_at_hard_cap),
        cmocka_unit_test(test_flow_queries),
        cmocka_unit_test(test_flow_events_in_order_after_drained),
        cmocka_unit_test(test_timers_off),
        cmocka_unit_test(test_handshake_timeout_server),
        cmocka_unit_test(test_handshake_timeout_client),
        cmocka_unit_test(test_idle_ping_and_pong_timeout),
        cmocka_unit_test(test_idle_ping_without_pong_timeout),
        cmocka_unit_test(test_close_timeout),
        cmocka_unit_test(test_timers_across_wrap),
        cmocka_unit_test(test_free_inside_tick),
        cmocka_unit_test(test_ping_failure),
        cmocka_unit_test(test_nested_tick_later_clock),
        cmocka_unit_test(test_callback_contract),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
