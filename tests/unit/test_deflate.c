/*
 * permessage-deflate through the connection and the pool, with a real codec (zlib, written
 * here as an embedder would): negotiation in both roles, the RSV1 rules, the inflated size
 * limit against a bomb, corrupt data, UTF-8 after inflating, round trips with and without
 * context takeover in every split of the input, fragments with pings between them, a
 * broadcast to a mixed pool compressed once, the minimum size, allocation failures.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <cmocka.h>

#include "support.h"
#include "wsfwd.h"

/* ---- The codec ----------------------------------------------------------------------------- */

typedef struct zcodec {
    long compress_calls;
    long inflate_new_calls;
    long live_streams;
    bool fail_new;      /* inflate_new returns NULL */
    bool fail_compress; /* compress returns 0 */
    bool helper;        /* the test's own use: any cap */
} zcodec;

static size_t z_compress(void *ud, int bits, const uint8_t *in, size_t len, uint8_t *out,
                         size_t cap)
{
    zcodec *z = ud;
    z->compress_calls++;
    assert_true(bits >= 9 && bits <= 15);
    assert_true(z->helper || cap >= len + len / 8 + 64);
    if (z->fail_compress) {
        return 0;
    }
    z_stream s;
    memset(&s, 0, sizeof s);
    if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return 0;
    }
    s.next_in = (Bytef *)(uintptr_t)in;
    s.avail_in = (uInt)len;
    s.next_out = out;
    s.avail_out = (uInt)cap;
    int rc = deflate(&s, Z_SYNC_FLUSH);
    size_t n = cap - s.avail_out;
    bool whole = rc == Z_OK && s.avail_in == 0 && s.avail_out > 0;
    deflateEnd(&s);
    if (!whole || n < 4 || memcmp(out + n - 4, "\x00\x00\xff\xff", 4) != 0) {
        return 0;
    }
    return n - 4;
}

static void *z_inflate_new(void *ud, int bits)
{
    zcodec *z = ud;
    z->inflate_new_calls++;
    if (z->fail_new) {
        return NULL;
    }
    z_stream *s = calloc(1, sizeof *s);
    if (s == NULL || inflateInit2(s, -bits) != Z_OK) {
        free(s);
        return NULL;
    }
    z->live_streams++;
    return s;
}

static wsfwd_inflate_status z_inflate(void *ud, void *stream, const uint8_t **in, size_t *in_len,
                                      uint8_t *out, size_t cap, size_t *produced)
{
    (void)ud;
    z_stream *s = stream;
    s->next_in = (Bytef *)(uintptr_t)*in;
    s->avail_in = (uInt)*in_len;
    s->next_out = out;
    s->avail_out = (uInt)cap;
    int rc = inflate(s, Z_SYNC_FLUSH);
    *produced = cap - s->avail_out;
    size_t used = *in_len - s->avail_in;
    *in += used;
    *in_len -= used;
    if (rc == Z_STREAM_END) { /* a final block: the library ignores what follows */
        return WSFWD_INFLATE_END;
    }
    return rc == Z_OK || rc == Z_BUF_ERROR ? WSFWD_INFLATE_OK : WSFWD_INFLATE_ERROR;
}

static void z_inflate_reset(void *ud, void *stream)
{
    (void)ud;
    inflateReset(stream);
}

static void z_inflate_free(void *ud, void *stream)
{
    zcodec *z = ud;
    z->live_streams--;
    inflateEnd(stream);
    free(stream);
}

static wsfwd_deflate_codec codec_for(zcodec *z)
{
    wsfwd_deflate_codec c;
    memset(&c, 0, sizeof c);
    c.compress = z_compress;
    c.min_window_bits = 9; /* zlib's raw deflate refuses 8 */
    c.inflate_new = z_inflate_new;
    c.inflate = z_inflate;
    c.inflate_reset = z_inflate_reset;
    c.inflate_free = z_inflate_free;
    c.user_data = z;
    return c;
}

/* A whole message compressed as RFC 7692 says (fresh context, tail removed). */
static size_t deflate_msg(const void *in, size_t len, uint8_t *out, size_t cap, int bits)
{
    zcodec z = {0};
    z.helper = true;
    size_t n = z_compress(&z, bits, in, len, out, cap);
    assert_true(n > 0);
    return n;
}

/* ---- Peers ----------------------------------------------------------------------------------- */

typedef struct peer {
    wsfwd_conn *conn;
    char log[1 << 14];
    size_t log_len;
    bool echo;
    int zmsgs; /* messages that came compressed (wsfwd_conn_message_compressed) */
    int closes;
    uint16_t close_code;
    int close_err;
} peer;

static void logf_(peer *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->log + p->log_len, sizeof p->log - p->log_len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof p->log - p->log_len);
    p->log_len += (size_t)n;
}

static uint32_t checksum(const uint8_t *d, size_t n)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum = sum * 31 + d[i];
    }
    return sum;
}

static int cb_message(wsfwd_conn *c, wsfwd_opcode op, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    peer *p = wsfwd_conn_user_data(c);
    logf_(p, "msg %d %zu %08x|", (int)op, len, checksum(data, len));
    p->zmsgs += wsfwd_conn_message_compressed(c);
    if (p->echo) {
        assert_int_equal(wsfwd_conn_send(c, op, data, len), WSFWD_OK);
    }
    return 0;
}

static int cb_control(wsfwd_conn *c, wsfwd_opcode op, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    peer *p = wsfwd_conn_user_data(c);
    logf_(p, "ctl %d %zu|", (int)op, len);
    (void)data;
    return 0;
}

static void cb_close(wsfwd_conn *c, uint16_t code, const char *reason, size_t reason_len, int err,
                     void *ud)
{
    (void)ud;
    (void)reason;
    (void)reason_len;
    peer *p = wsfwd_conn_user_data(c);
    p->closes++;
    p->close_code = code;
    p->close_err = err;
}

static unsigned rnd_counter;

static int counter_random(void *buf, size_t len, void *ud)
{
    unsigned *n = ud;
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)((*n)++ * 101 + 7);
    }
    return 0;
}

/* A config with the codec (z NULL: none), callbacks above, alloc may be NULL. */
static wsfwd_config *config_new(zcodec *z, const wsfwd_allocator *alloc)
{
    wsfwd_config *cfg;
    if (wsfwd_config_new(alloc, &cfg) != WSFWD_OK) {
        return NULL;
    }
    wsfwd_config_set_random(cfg, counter_random, &rnd_counter);
    wsfwd_config_on_message(cfg, cb_message);
    wsfwd_config_on_control(cfg, cb_control);
    wsfwd_config_on_close(cfg, cb_close);
    if (z != NULL) {
        wsfwd_deflate_codec c = codec_for(z);
        assert_int_equal(wsfwd_config_set_deflate(cfg, &c, sizeof c), WSFWD_OK);
    }
    return cfg;
}

static const char REQ_HEAD[] = "GET /chat HTTP/1.1\r\n"
                               "Host: example.com\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Version: 13\r\n";

/* Feed a server conn a request with these extra header lines (CRLF-ended, or ""); returns
   feed's result and the response in resp. */
static int server_handshake(wsfwd_conn *c, const char *extra, char *resp, size_t cap)
{
    char req[2048];
    snprintf(req, sizeof req, "%s%s\r\n", REQ_HEAD, extra);
    int rc = test_feed(c, (const uint8_t *)req, strlen(req));
    size_t n = test_drain(c, (uint8_t *)resp, cap - 1);
    resp[n] = '\0';
    return rc;
}

static uint8_t pump_buf[1 << 21];

/* Move every pending byte from one connection to the other. */
static int pump(wsfwd_conn *from, wsfwd_conn *to)
{
    size_t n = test_drain(from, pump_buf, sizeof pump_buf);
    return n > 0 ? wsfwd_conn_feed(to, pump_buf, n) : WSFWD_OK;
}

/* A client and a server conn, through the handshake. */
typedef struct pair {
    wsfwd_config *scfg;
    wsfwd_config *ccfg;
    peer srv;
    peer cli;
} pair;

static void pair_open(pair *p, wsfwd_config *scfg, wsfwd_config *ccfg)
{
    memset(p, 0, sizeof *p);
    p->scfg = scfg;
    p->ccfg = ccfg;
    assert_int_equal(wsfwd_conn_new(scfg, WSFWD_ROLE_SERVER, &p->srv, &p->srv.conn), WSFWD_OK);
    assert_int_equal(wsfwd_conn_new(ccfg, WSFWD_ROLE_CLIENT, &p->cli, &p->cli.conn), WSFWD_OK);
    assert_int_equal(wsfwd_conn_client_start(p->cli.conn, "h", "/", NULL, NULL), WSFWD_OK);
    assert_int_equal(pump(p->cli.conn, p->srv.conn), WSFWD_OK);
    assert_int_equal(pump(p->srv.conn, p->cli.conn), WSFWD_OK);
    assert_int_equal(wsfwd_conn_state(p->srv.conn), WSFWD_STATE_OPEN);
    assert_int_equal(wsfwd_conn_state(p->cli.conn), WSFWD_STATE_OPEN);
}

static void pair_close(pair *p)
{
    wsfwd_conn_free(p->srv.conn);
    wsfwd_conn_free(p->cli.conn);
}

/* A server conn (cfg with the codec) that negotiated with this offer. */
static void open_server(peer *p, wsfwd_config *cfg, const char *offer)
{
    memset(p, 0, sizeof *p);
    assert_int_equal(wsfwd_conn_new(cfg, WSFWD_ROLE_SERVER, p, &p->conn), WSFWD_OK);
    char extra[512];
    snprintf(extra, sizeof extra, "Sec-WebSocket-Extensions: %s\r\n", offer);
    char resp[2048];
    assert_int_equal(server_handshake(p->conn, extra, resp, sizeof resp), WSFWD_OK);
    assert_int_equal(wsfwd_conn_state(p->conn), WSFWD_STATE_OPEN);
}

/* The close code in the (unmasked, server-sent) output, or 0 if none is there. */
static unsigned sent_close(wsfwd_conn *c)
{
    static uint8_t out[1 << 16];
    size_t n = test_drain(c, out, sizeof out);
    size_t at = 0;
    while (at < n) {
        wsfwd_frame_header fh;
        assert_int_equal(wsfwd_frame_parse_header(out + at, n - at, WSFWD_ROLE_CLIENT, &fh),
                         WSFWD_OK);
        if (fh.opcode == WSFWD_OP_CLOSE) {
            const uint8_t *q = out + at + fh.header_len;
            return fh.payload_len >= 2 ? (unsigned)(q[0] << 8 | q[1]) : 1005;
        }
        at += fh.header_len + (size_t)fh.payload_len;
    }
    return 0;
}

/* A masked client frame with the given first byte (FIN, RSV, opcode). */
static size_t raw_frame(uint8_t *buf, uint8_t b0, const void *payload, size_t len)
{
    size_t n = test_client_frame(buf, true, b0 & 0x0F, payload, len);
    buf[0] = b0;
    return n;
}

/* ---- Config -----------------------------------------------------------------------------------
 */

static void test_config(void **state)
{
    (void)state;
    zcodec z = {0};
    wsfwd_config *cfg = config_new(NULL, NULL);
    wsfwd_deflate_codec c = codec_for(&z);
    assert_int_equal(wsfwd_config_set_deflate(NULL, &c, sizeof c), WSFWD_ERR_INVALID);
    /* A size that leaves members out: they read as NULL, and they are required. */
    assert_int_equal(wsfwd_config_set_deflate(cfg, &c, offsetof(wsfwd_deflate_codec, inflate)),
                     WSFWD_ERR_INVALID);
    wsfwd_deflate_codec bad = c;
    bad.inflate_reset = NULL;
    assert_int_equal(wsfwd_config_set_deflate(cfg, &bad, sizeof bad), WSFWD_ERR_INVALID);
    bad = c;
    bad.min_window_bits = 16;
    assert_int_equal(wsfwd_config_set_deflate(cfg, &bad, sizeof bad), WSFWD_ERR_INVALID);
    bad.min_window_bits = -1;
    assert_int_equal(wsfwd_config_set_deflate(cfg, &bad, sizeof bad), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_deflate(cfg, &c, sizeof c), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_deflate(cfg, NULL, 0), WSFWD_OK);
    /* A bigger struct (a newer header's) is read up to what this library knows. */
    struct {
        wsfwd_deflate_codec c;
        void *more;
    } big = {c, NULL};
    assert_int_equal(wsfwd_config_set_deflate(cfg, &big.c, sizeof big), WSFWD_OK);

    assert_int_equal(wsfwd_config_set_deflate_params(NULL, 15, 15, false), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_deflate_params(cfg, 7, 15, false), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_deflate_params(cfg, 15, 16, false), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_deflate_params(cfg, 8, 8, true), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_deflate_min_size(NULL, 1), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_config_set_deflate_min_size(cfg, 0), WSFWD_OK);
    assert_false(wsfwd_conn_deflate(NULL, NULL, 0));
    wsfwd_config_free(cfg);
}

/* ---- Negotiation: server role ------------------------------------------------------------------
 */

static void test_server_negotiation(void **state)
{
    (void)state;
    zcodec z = {0};
    wsfwd_config *cfg = config_new(&z, NULL);
    static const struct {
        const char *extra;
        int rc;
        const char *answer; /* NULL: no extension */
        uint8_t server_bits, client_bits;
        bool cnct;
    } cases[] = {
        {"", WSFWD_OK, NULL, 0, 0, false},
        {"Sec-WebSocket-Extensions: permessage-deflate\r\n", WSFWD_OK,
         "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n", 15, 15,
         false},
        {"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n", WSFWD_OK,
         "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover", 15, 15, false},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n", WSFWD_OK,
         "server_max_window_bits=10", 10, 15, false},
        /* Below what the codec honours: declined; the next offer is taken. */
        {"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8, "
         "permessage-deflate; client_no_context_takeover\r\n",
         WSFWD_OK, "client_no_context_takeover", 15, 15, true},
        {"Sec-WebSocket-Extensions: x-other\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
         WSFWD_OK, "permessage-deflate", 15, 15, false},
        {"Sec-WebSocket-Extensions: permessage-deflate; unknown=1\r\n", WSFWD_OK, NULL, 0, 0,
         false},
        {"Sec-WebSocket-Extensions: permessage-deflate; =\r\n", WSFWD_ERR_HS_EXTENSIONS, NULL, 0, 0,
         false},
        {"Sec-WebSocket-Extensions: ;;\r\n", WSFWD_ERR_HS_EXTENSIONS, NULL, 0, 0, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        peer p = {0};
        assert_int_equal(wsfwd_conn_new(cfg, WSFWD_ROLE_SERVER, &p, &p.conn), WSFWD_OK);
        char resp[2048];
        int rc = server_handshake(p.conn, cases[i].extra, resp, sizeof resp);
        assert_int_equal(rc, cases[i].rc);
        if (rc != WSFWD_OK) {
            assert_memory_equal(resp, "HTTP/1.1 400 ", 13);
            assert_int_equal(wsfwd_conn_state(p.conn), WSFWD_STATE_CLOSED);
            wsfwd_conn_free(p.conn);
            continue;
        }
        assert_memory_equal(resp, "HTTP/1.1 101 ", 13);
        wsfwd_deflate_params d;
        if (cases[i].answer == NULL) {
            assert_null(strstr(resp, "Sec-WebSocket-Extensions"));
            assert_false(wsfwd_conn_deflate(p.conn, &d, sizeof d));
        } else {
            assert_non_null(strstr(resp, cases[i].answer));
            assert_true(wsfwd_conn_deflate(p.conn, NULL, 0));
            assert_true(wsfwd_conn_deflate(p.conn, &d, sizeof d));
            assert_true(d.server_no_context_takeover);
            assert_int_equal(d.client_no_context_takeover, cases[i].cnct);
            assert_int_equal(d.server_max_window_bits, cases[i].server_bits);
            assert_int_equal(d.client_max_window_bits, cases[i].client_bits);
        }
        wsfwd_conn_free(p.conn);
    }
    /* More Sec-WebSocket-Extensions fields than are read: 400. */
    char many[17 * 32 + 1] = "";
    for (int i = 0; i < 17; i++) {
        strcat(many, "Sec-WebSocket-Extensions: x\r\n");
    }
    peer m = {0};
    assert_int_equal(wsfwd_conn_new(cfg, WSFWD_ROLE_SERVER, &m, &m.conn), WSFWD_OK);
    char mresp[2048];
    assert_int_equal(server_handshake(m.conn, many, mresp, sizeof mresp), WSFWD_ERR_HS_EXTENSIONS);
    assert_memory_equal(mresp, "HTTP/1.1 400 ", 13);
    wsfwd_conn_free(m.conn);
    /* Asking client_no_context_takeover and a smaller client window by config. */
    assert_int_equal(wsfwd_config_set_deflate_params(cfg, 12, 10, true), WSFWD_OK);
    peer p;
    open_server(&p, cfg, "permessage-deflate; client_max_window_bits");
    /* The codec cannot change under a connection that uses it. */
    assert_int_equal(wsfwd_config_set_deflate(cfg, NULL, 0), WSFWD_ERR_STATE);
    wsfwd_deflate_params d;
    assert_true(wsfwd_conn_deflate(p.conn, &d, sizeof d));
    assert_true(d.client_no_context_takeover);
    assert_int_equal(d.server_max_window_bits, 12);
    assert_int_equal(d.client_max_window_bits, 10);
    /* A caller's smaller struct gets only what fits. */
    uint8_t small[1] = {0};
    assert_true(wsfwd_conn_deflate(p.conn, (wsfwd_deflate_params *)(void *)small, 1));
    assert_int_equal(small[0], 1);
    wsfwd_conn_free(p.conn);
    wsfwd_config_free(cfg);

    /* Without a codec, every offer is answered with no extension, malformed or not. */
    cfg = config_new(NULL, NULL);
    peer q = {0};
    assert_int_equal(wsfwd_conn_new(cfg, WSFWD_ROLE_SERVER, &q, &q.conn), WSFWD_OK);
    char resp[2048];
    assert_int_equal(
        server_handshake(q.conn, "Sec-WebSocket-Extensions: ;;\r\n", resp, sizeof resp), WSFWD_OK);
    assert_null(strstr(resp, "Sec-WebSocket-Extensions"));
    assert_false(wsfwd_conn_deflate(q.conn, NULL, 0));
    wsfwd_conn_free(q.conn);
    wsfwd_config_free(cfg);
}

static int accept_in_request(wsfwd_conn *c, const wsfwd_request *req, void *ud)
{
    (void)req;
    int *rc = ud;
    *rc = wsfwd_conn_accept(c, NULL);
    if (*rc != WSFWD_OK) {
        assert_int_equal(wsfwd_conn_refuse(c, 400), WSFWD_OK);
    }
    return 0;
}

static void test_server_accept_from_on_request(void **state)
{
    (void)state;
    zcodec z = {0};
    wsfwd_config *cfg = config_new(&z, NULL);
    int rc = 0;
    wsfwd_config_set_user_data(cfg, &rc);
    wsfwd_config_on_request(cfg, accept_in_request);
    peer p = {0};
    assert_int_equal(wsfwd_conn_new(cfg, WSFWD_ROLE_SERVER, &p, &p.conn), WSFWD_OK);
    char resp[2048];
    server_handshake(p.conn, "Sec-WebSocket-Extensions: permessage-deflate; a=\"\r\n", resp,
                     sizeof resp);
    assert_int_equal(rc, WSFWD_ERR_HS_EXTENSIONS);
    assert_memory_equal(resp, "HTTP/1.1 400 ", 13);
    wsfwd_conn_free(p.conn);

    assert_int_equal(wsfwd_conn_new(cfg, WSFWD_ROLE_SERVER, &p, &p.conn), WSFWD_OK);
    server_handshake(p.conn, "Sec-WebSocket-Extensions: permessage-deflate\r\n", resp, sizeof resp);
    assert_int_equal(rc, WSFWD_OK);
    assert_non_null(strstr(resp, "permessage-deflate"));
    assert_true(wsfwd_conn_deflate(p.conn, NULL, 0));
    wsfwd_conn_free(p.conn);
    wsfwd_config_free(cfg);
}

/* ---- Negotiation: client role ------------------------------------------------------------------
 */

/* A 101 for the client key counter_random gives the first conn of a config, plus extra. */
static int client_with_answer(wsfwd_config *cfg, const char *extra, peer *p)
{
    memset(p, 0, sizeof *p);
    assert_int_equal(wsfwd_conn_new(cfg, WSFWD_ROLE_CLIENT, p, &p->conn), WSFWD_OK);
    assert_int_equal(wsfwd_conn_client_start(p->conn, "h", "/", NULL, NULL), WSFWD_OK);
    static uint8_t req[2048];
    size_t n = test_drain(p->conn, req, sizeof req - 1);
    req[n] = '\0';
    const char *k = strstr((const char *)req, "Sec-WebSocket-Key: ");
    assert_non_null(k);
    char key[WSFWD_KEY_LEN + 1];
    memcpy(key, k + 19, WSFWD_KEY_LEN);
    key[WSFWD_KEY_LEN] = '\0';
    char accept[WSFWD_ACCEPT_LEN + 1];
    wsfwd_handshake_accept(key, WSFWD_KEY_LEN, accept);
    char resp[1024];
    snprintf(resp, sizeof resp,
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\n%s\r\n",
             accept, extra);
    return test_feed(p->conn, (const uint8_t *)resp, strlen(resp));
}

static void test_client_negotiation(void **state)
{
    (void)state;
    zcodec z = {0};
    wsfwd_config *cfg = config_new(&z, NULL);
    /* The offer. */
    peer p = {0};
    assert_int_equal(wsfwd_conn_new(cfg, WSFWD_ROLE_CLIENT, &p, &p.conn), WSFWD_OK);
    assert_int_equal(wsfwd_conn_client_start(p.conn, "h", "/", NULL, NULL), WSFWD_OK);
    uint8_t req[2048];
    size_t n = test_drain(p.conn, req, sizeof req);
    assert_non_null(memmem(
        req, n, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n", 70));
    wsfwd_conn_free(p.conn);

    static const struct {
        const char *extra;
        int rc;
        bool deflate;
    } cases[] = {
        {"", WSFWD_OK, false},
        {"Sec-WebSocket-Extensions: permessage-deflate\r\n", WSFWD_OK, true},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
         "client_max_window_bits=10\r\n",
         WSFWD_OK, true},
        {"Sec-WebSocket-Extensions: x-other\r\n", WSFWD_ERR_HS_EXTENSION, false},
        {"Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate\r\n",
         WSFWD_ERR_HS_EXTENSION, false},
        {"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
         WSFWD_ERR_HS_EXTENSION, false},
        {"Sec-WebSocket-Extensions: permessage-deflate; bogus\r\n", WSFWD_ERR_HS_EXTENSION, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = client_with_answer(cfg, cases[i].extra, &p);
        assert_int_equal(rc, cases[i].rc);
        assert_int_equal(wsfwd_conn_deflate(p.conn, NULL, 0), cases[i].deflate);
        assert_int_equal(wsfwd_conn_state(p.conn),
                         rc == WSFWD_OK ? WSFWD_STATE_OPEN : WSFWD_STATE_CLOSED);
        wsfwd_conn_free(p.conn);
    }
    wsfwd_config_free(cfg);

    /* A client without a codec offers nothing and accepts no extension. */
    cfg = config_new(NULL, NULL);
    assert_int_equal(
        client_with_answer(cfg, "Sec-WebSocket-Extensions: permessage-deflate\r\n", &p),
        WSFWD_ERR_HS_EXTENSION);
    wsfwd_conn_free(p.conn);
    wsfwd_config_free(cfg);
}

/* ---- RSV rules --------------------------------------------------------------------------------
 */

static void test_rsv_rules(void **state)
{
    (void)state;
    zcodec z = {0};
    wsfwd_config *cfg = config_new(&z, NULL);
    wsfwd_config *plain = config_new(NULL, NULL);
    uint8_t zhello[64];
    size_t zn = deflate_msg("hello", 5, zhello, sizeof zhello, 15);
    static const struct {
        bool negotiated;
        uint8_t b0[2]; /* two frames' first bytes; 0: no second frame */
        int err;
    } cases[] = {
        {true, {0xC1, 0}, WSFWD_OK},         /* compressed text */
        {true, {0xC9, 0}, WSFWD_ERR_RSV},    /* RSV1 on a ping */
        {true, {0xCA, 0}, WSFWD_ERR_RSV},    /* on a pong */
        {true, {0xC8, 0}, WSFWD_ERR_RSV},    /* on a close */
        {true, {0x41, 0xC0}, WSFWD_ERR_RSV}, /* on a continuation */
        {true, {0xA1, 0}, WSFWD_ERR_RSV},    /* RSV2 */
        {true, {0x91, 0}, WSFWD_ERR_RSV},    /* RSV3 */
        {false, {0xC1, 0}, WSFWD_ERR_RSV},   /* RSV1 without the extension */
        {true, {0x01, 0x80}, WSFWD_OK},      /* plain fragments */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        peer p;
        if (cases[i].negotiated) {
            open_server(&p, cfg, "permessage-deflate");
        } else {
            open_server(&p, plain, "permessage-deflate");
            assert_false(wsfwd_conn_deflate(p.conn, NULL, 0));
        }
        test_drain(p.conn, pump_buf, sizeof pump_buf);
        uint8_t buf[256];
        size_t n = 0;
        bool rsv1_data = (cases[i].b0[0] & 0x4F) == 0x41;
        const void *pl = rsv1_data ? (const void *)zhello : "hello";
        size_t pln = rsv1_data ? zn : 5;
        if ((cases[i].b0[0] & 0x0F) == WSFWD_OP_CLOSE) {
            pl = "\x03\xe8";
            pln = 2;
        }
        n += raw_frame(buf + n, cases[i].b0[0], pl, pln);
        if (cases[i].b0[1] != 0) {
            n += raw_frame(buf + n, cases[i].b0[1], "x", 1);
        }
        int rc = test_feed(p.conn, buf, n);
        assert_int_equal(rc, cases[i].err);
        if (rc == WSFWD_OK) {
            assert_int_equal(p.closes, 0);
            assert_non_null(strstr(p.log, "msg 1"));
        } else {
            assert_int_equal(sent_close(p.conn), 1002);
            assert_int_equal(p.close_err, WSFWD_ERR_RSV);
        }
        wsfwd_conn_free(p.conn);
    }
    assert_int_equal(z.live_streams, 0);
    wsfwd_config_free(cfg);
    wsfwd_config_free(plain);
}

/* ---- Receiving ------------------------------------------------------------------------------- */

static void test_bomb(void **state)
{
    (void)state;
    zcodec z = {0};
    test_alloc ta;
    test_alloc_init(&ta);
    wsfwd_allocator hooks = test_alloc_hooks(&ta);
    wsfwd_config *cfg = config_new(&z, &hooks);
    const size_t limit = 10000;
    assert_int_equal(wsfwd_config_set_max_message(cfg, limit), WSFWD_OK);
    static uint8_t zeros[1 << 20];
    static uint8_t zb[1 << 16];
    size_t zn = deflate_msg(zeros, sizeof zeros, zb, sizeof zb, 15);
    assert_true(zn < 2000);
    static uint8_t frame[1 << 16];
    /* Exactly the limit passes; one byte more is 1009, however it arrives. */
    for (int over = 0; over <= 1; over++) {
        size_t len = limit + (size_t)over;
        uint8_t mb[1024];
        size_t mn = deflate_msg(zeros, len, mb, sizeof mb, 15);
        peer p;
        open_server(&p, cfg, "permessage-deflate");
        size_t n = raw_frame(frame, 0xC2, mb, mn);
        assert_int_equal(test_feed(p.conn, frame, n), over ? WSFWD_ERR_TOO_BIG : WSFWD_OK);
        if (over) {
            assert_int_equal(sent_close(p.conn), 1009);
        } else {
            assert_non_null(strstr(p.log, "msg 2 10000 "));
        }
        wsfwd_conn_free(p.conn);
    }
    for (size_t piece = 1; piece <= 4096; piece *= 8) {
        ta.largest = 0;
        ta.peak_bytes = ta.live_bytes;
        size_t base = ta.live_bytes;
        peer p;
        open_server(&p, cfg, "permessage-deflate");
        test_drain(p.conn, pump_buf, sizeof pump_buf);
        size_t n = raw_frame(frame, 0xC2, zb, zn);
        size_t at = 0;
        int rc = WSFWD_OK;
        while (at < n && rc == WSFWD_OK) {
            size_t k = n - at < piece ? n - at : piece;
            rc = test_feed(p.conn, frame + at, k);
            at += k;
        }
        assert_int_equal(rc, WSFWD_ERR_TOO_BIG);
        assert_int_equal(sent_close(p.conn), 1009);
        assert_int_equal(p.close_err, WSFWD_ERR_TOO_BIG);
        /* Never asked for more than the limit at once, nor held much more in all. */
        assert_true(ta.largest <= limit);
        assert_true(ta.peak_bytes <= base + limit + 4096);
        wsfwd_conn_free(p.conn);
    }
    /* A fragmented bomb: the limit counts across fragments. */
    peer p;
    open_server(&p, cfg, "permessage-deflate");
    size_t n = test_fragments(frame, WSFWD_OP_BINARY, zb, zn, 100, TEST_MASK);
    frame[0] |= 0x40;
    assert_int_equal(test_feed(p.conn, frame, n), WSFWD_ERR_TOO_BIG);
    wsfwd_conn_free(p.conn);
    wsfwd_config_free(cfg);
    assert_int_equal(ta.live, 0);
    assert_int_equal(z.live_streams, 0);
}

static void test_corrupt_and_utf8(void **state)
{
    (void)state;
    zcodec z = {0};
    wsfwd_config *cfg = config_new(&z, NULL);
    uint8_t zb[256];
    uint8_t frame[512];
    /* Not DEFLATE: BTYPE 11 is reserved. */
    peer p;
    open_server(&p, cfg, "permessage-deflate");
    test_drain(p.conn, pump_buf, sizeof pump_buf);
    size_t n = raw_frame(frame, 0xC2, "\xff\xff\xff\xff", 4);
    assert_int_equal(test_feed(p.conn, frame, n), WSFWD_ERR_INFLATE);
    assert_int_equal(sent_close(p.conn), 1007);
    wsfwd_conn_free(p.conn);

    /* Invalid UTF-8 once inflated, in a text message: 1007. The same bytes as binary pass. */
    static const char bad[] = "abc\xc3\x28 and more text to make it compress";
    size_t zn = deflate_msg(bad, sizeof bad - 1, zb, sizeof zb, 15);
    for (int op = 1; op <= 2; op++) {
        open_server(&p, cfg, "permessage-deflate");
        test_drain(p.conn, pump_buf, sizeof pump_buf);
        n = raw_frame(frame, (uint8_t)(0xC0 | op), zb, zn);
        int rc = test_feed(p.conn, frame, n);
        assert_int_equal(rc, op == 1 ? WSFWD_ERR_UTF8 : WSFWD_OK);
        if (op == 1) {
            assert_int_equal(sent_close(p.conn), 1007);
        }
        wsfwd_conn_free(p.conn);
    }
    /* A text message cut in the middle of a character. */
    zn = deflate_msg("ab\xc3", 3, zb, sizeof zb, 15);
    open_server(&p, cfg, "permessage-deflate");
    test_drain(p.conn, pump_buf, sizeof pump_buf);
    n = raw_frame(frame, 0xC1, zb, zn);
    assert_int_equal(test_feed(p.conn, frame, n), WSFWD_ERR_UTF8);
    wsfwd_conn_free(p.conn);

    /* The codec cannot make a stream: 1011. */
    z.fail_new = true;
    zn = deflate_msg("hello", 5, zb, sizeof zb, 15);
    open_server(&p, cfg, "permessage-deflate");
    test_drain(p.conn, pump_buf, sizeof pump_buf);
    n = raw_frame(frame, 0xC1, zb, zn);
    assert_int_equal(test_feed(p.conn, frame, n), WSFWD_ERR_NOMEM);
    assert_int_equal(sent_close(p.conn), 1011);
    wsfwd_conn_free(p.conn);
    z.fail_new = false;

    /* A message ended by a final block (BFINAL): the tail after it is ignored. */
    z_stream s;
    memset(&s, 0, sizeof s);
    assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    s.next_in = (Bytef *)(uintptr_t) "final";
    s.avail_in = 5;
    s.next_out = zb;
    s.avail_out = sizeof zb;
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    zn = sizeof zb - s.avail_out;
    deflateEnd(&s);
    open_server(&p, cfg, "permessage-deflate");
    n = raw_frame(frame, 0xC1, zb, zn);
    assert_int_equal(test_feed(p.conn, frame, n), WSFWD_OK);
    assert_non_null(strstr(p.log, "msg 1 5 "));
    wsfwd_conn_free(p.conn);
    assert_int_equal(z.live_streams, 0);
    wsfwd_config_free(cfg);
}

/* Fragments of a compressed message with pings between them, in one feed and split. */
static void test_fragments_with_pings(void **state)
{
    (void)state;
    zcodec z = {0};
    wsfwd_config *cfg = config_new(&z, NULL);
    static char text[3000];
    for (size_t i = 0; i < sizeof text; i++) {
        text[i] = (char)('a' + i % 7 + (i / 100) % 3);
    }
    uint8_t zb[4096];
    size_t zn = deflate_msg(text, sizeof text, zb, sizeof zb, 15);
    static uint8_t in[8192];
    size_t n = 0;
    size_t piece = zn / 3 + 1;
    for (size_t at = 0; at < zn; at += piece) {
        size_t k = zn - at < piece ? zn - at : piece;
        bool first = at == 0;
        bool fin = at + k == zn;
        size_t start = n;
        n += test_client_frame(in + n, fin, first ? WSFWD_OP_TEXT : WSFWD_OP_CONTINUATION, zb + at,
                               k);
        if (first) {
            in[start] |= 0x40;
        }
        if (!fin) {
            n += test_client_frame(in + n, true, WSFWD_OP_PING, "pi", 2);
        }
    }
    char expect[128];
    snprintf(expect, sizeof expect, "ctl 9 2|ctl 9 2|msg 1 %zu %08x|", sizeof text,
             checksum((const uint8_t *)text, sizeof text));
    for (size_t cut = 0; cut <= n; cut += 7) {
        peer p;
        open_server(&p, cfg, "permessage-deflate");
        size_t cuts[1] = {cut};
        assert_int_equal(test_feed_cuts(p.conn, in, n, cuts, 1), WSFWD_OK);
        assert_string_equal(p.log, expect);
        wsfwd_conn_free(p.conn);
    }
    wsfwd_config_free(cfg);
}

/* ---- Round trips ----------------------------------------------------------------------------- */

typedef struct split_ctx {
    wsfwd_config *scfg;
    const uint8_t *in; /* the client's frames, as sent */
    size_t n;
    const char *expect; /* the server's log */
} split_ctx;

static void feed_split(const size_t *cuts, size_t ncuts, void *ud)
{
    split_ctx *sc = ud;
    peer p;
    open_server(&p, sc->scfg, "permessage-deflate; client_max_window_bits");
    assert_int_equal(test_feed_cuts(p.conn, sc->in, sc->n, cuts, ncuts), WSFWD_OK);
    assert_string_equal(p.log, sc->expect);
    wsfwd_conn_free(p.conn);
}

static void round_trip(bool no_context)
{
    zcodec zs = {0};
    zcodec zc = {0};
    wsfwd_config *scfg = config_new(&zs, NULL);
    wsfwd_config *ccfg = config_new(&zc, NULL);
    assert_int_equal(wsfwd_config_set_deflate_params(scfg, 15, 15, no_context), WSFWD_OK);
    assert_int_equal(wsfwd_config_set_deflate_min_size(ccfg, 0), WSFWD_OK);
    pair pr;
    pair_open(&pr, scfg, ccfg);
    pr.srv.echo = true;
    wsfwd_deflate_params d;
    assert_true(wsfwd_conn_deflate(pr.cli.conn, &d, sizeof d));
    assert_true(d.server_no_context_takeover);
    assert_int_equal(d.client_no_context_takeover, no_context);

    /* Repeated messages: with context takeover the later ones shrink to almost nothing. */
    static uint8_t msgs[4][2000];
    for (size_t m = 0; m < 4; m++) {
        for (size_t i = 0; i < sizeof msgs[m]; i++) {
            msgs[m][i] =
                (uint8_t)("{\"user\":\"ann\",\"text\":\"hi\"}"[i % 26] + (m == 3 ? i % 3 : 0));
        }
    }
    static uint8_t wire[1 << 15];
    size_t n = 0;
    size_t sizes[] = {2000, 2000, 1, 0};
    char expect[512] = "";
    for (size_t m = 0; m < 4; m++) {
        int op = m == 2 ? WSFWD_OP_BINARY : WSFWD_OP_TEXT;
        assert_int_equal(wsfwd_conn_send(pr.cli.conn, op, msgs[m], sizes[m]), WSFWD_OK);
        size_t k = test_drain(pr.cli.conn, wire + n, sizeof wire - n);
        n += k;
        snprintf(expect + strlen(expect), sizeof expect - strlen(expect), "msg %d %zu %08x|", op,
                 sizes[m], checksum(msgs[m], sizes[m]));
    }
    assert_true(zc.compress_calls == 4);
    assert_true(wire[0] & 0x40);
    /* Into the server in one feed: echoed compressed, the client inflates the echo. */
    static uint8_t copy[1 << 15];
    memcpy(copy, wire, n);
    assert_int_equal(wsfwd_conn_feed(pr.srv.conn, copy, n), WSFWD_OK);
    assert_string_equal(pr.srv.log, expect);
    assert_int_equal(pump(pr.srv.conn, pr.cli.conn), WSFWD_OK);
    assert_string_equal(pr.cli.log, expect);
    assert_int_equal(zs.compress_calls, 2); /* the 1- and 0-byte echoes are under 64 */
    assert_int_equal(pr.srv.zmsgs, 2);      /* and so were the client's */
    assert_int_equal(pr.cli.zmsgs, 2);
    assert_false(wsfwd_conn_message_compressed(NULL));

    /* Every split of the client's bytes, into fresh servers (same parameters). */
    split_ctx sc = {scfg, wire, n, expect};
    test_each_cut(n, feed_split, &sc);
    test_each_cut_pair(n, 97, 89, feed_split, &sc);

    pair_close(&pr);
    /* A peer that resets its context leaves no stream on its connection between messages. */
    if (no_context) {
        assert_true(zs.live_streams <= 1);
    } else {
        assert_int_equal(zs.live_streams, 0);
    }
    wsfwd_config_free(scfg);
    wsfwd_config_free(ccfg);
    assert_int_equal(zs.live_streams, 0);
    assert_int_equal(zc.live_streams, 0);
}

static void test_round_trip_context_takeover(void **state)
{
    (void)state;
    round_trip(false);
}

static void test_round_trip_no_context_takeover(void **state)
{
    (void)state;
    round_trip(true);
}

/* A peer that keeps its context, as browsers do: each message refers to the ones before. */
static size_t deflate_stream_msgs(uint8_t *wire, size_t cap, const char *const *msgs, size_t count)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t n = 0;
    for (size_t m = 0; m < count; m++) {
        uint8_t zb[4096];
        s.next_in = (Bytef *)(uintptr_t)msgs[m];
        s.avail_in = (uInt)strlen(msgs[m]);
        s.next_out = zb;
        s.avail_out = sizeof zb;
        assert_int_equal(deflate(&s, Z_SYNC_FLUSH), Z_OK);
        size_t zn = sizeof zb - s.avail_out - 4;
        if (m > 0) {
            assert_true(zn < strlen(msgs[m]) / 4); /* it refers back */
        }
        /* In two fragments, the second after a ping. */
        size_t half = zn / 2;
        size_t start = n;
        n += test_client_frame(wire + n, false, WSFWD_OP_TEXT, zb, half);
        wire[start] |= 0x40;
        n += test_client_frame(wire + n, true, WSFWD_OP_PING, NULL, 0);
        n += test_client_frame(wire + n, true, WSFWD_OP_CONTINUATION, zb + half, zn - half);
        assert_true(n < cap);
    }
    deflateEnd(&s);
    return n;
}

static void test_peer_context_takeover(void **state)
{
    (void)state;
    zcodec z = {0};
    wsfwd_config *cfg = config_new(&z, NULL);
    static const char *const msgs[] = {
        "{\"type\":\"chat\",\"user\":\"ann\",\"text\":\"good morning, everyone here\"}",
        "{\"type\":\"chat\",\"user\":\"ann\",\"text\":\"good morning, everyone there\"}",
        "{\"type\":\"chat\",\"user\":\"ann\",\"text\":\"good morning, everyone here\"}",
    };
    static uint8_t wire[4096];
    size_t n = deflate_stream_msgs(wire, sizeof wire, msgs, 3);
    char expect[512] = "";
    for (size_t m = 0; m < 3; m++) {
        snprintf(expect + strlen(expect), sizeof expect - strlen(expect), "ctl 9 0|msg 1 %zu %08x|",
                 strlen(msgs[m]), checksum((const uint8_t *)msgs[m], strlen(msgs[m])));
    }
    split_ctx sc = {cfg, wire, n, expect};
    test_each_cut(n, feed_split, &sc);
    test_each_cut_pair(n, 13, 7, feed_split, &sc);
    /* The stream stays with the connection between messages. */
    peer p;
    open_server(&p, cfg, "permessage-deflate");
    assert_int_equal(test_feed(p.conn, wire, n), WSFWD_OK);
    assert_int_equal(z.live_streams, 1);
    wsfwd_conn_free(p.conn);
    assert_int_equal(z.live_streams, 0);

    /* Peers without context takeover: no stream between messages but one spare per config;
       two messages in progress at once take two streams. */
    peer a;
    peer b;
    open_server(&a, cfg, "permessage-deflate; client_no_context_takeover");
    open_server(&b, cfg, "permessage-deflate; client_no_context_takeover");
    uint8_t zb[256];
    size_t zn = deflate_msg(msgs[0], strlen(msgs[0]), zb, sizeof zb, 15);
    uint8_t f1[512];
    uint8_t f2[512];
    size_t n1 = test_client_frame(f1, false, WSFWD_OP_TEXT, zb, zn / 2);
    f1[0] |= 0x40;
    size_t n2 = test_client_frame(f2, true, WSFWD_OP_CONTINUATION, zb + zn / 2, zn - zn / 2);
    assert_int_equal(test_feed(a.conn, f1, n1), WSFWD_OK);
    assert_int_equal(test_feed(b.conn, f1, n1), WSFWD_OK);
    assert_int_equal(z.live_streams, 2);
    assert_int_equal(test_feed(a.conn, f2, n2), WSFWD_OK);
    assert_int_equal(test_feed(b.conn, f2, n2), WSFWD_OK);
    assert_int_equal(z.live_streams, 1); /* the spare */
    long made = z.inflate_new_calls;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(test_feed(a.conn, f1, n1), WSFWD_OK);
        assert_int_equal(test_feed(a.conn, f2, n2), WSFWD_OK);
    }
    assert_int_equal(z.inflate_new_calls, made); /* the spare, reused */
    assert_non_null(strstr(b.log, "msg 1 "));
    wsfwd_conn_free(a.conn);
    wsfwd_conn_free(b.conn);
    wsfwd_config_free(cfg);
    assert_int_equal(z.live_streams, 0);
}

/* A client role inflating the server's compressed messages, byte by byte. */
static void test_client_inflates_bytewise(void **state)
{
    (void)state;
    zcodec zs = {0};
    zcodec zc = {0};
    wsfwd_config *scfg = config_new(&zs, NULL);
    wsfwd_config *ccfg = config_new(&zc, NULL);
    pair pr;
    pair_open(&pr, scfg, ccfg);
    static uint8_t msg[700];
    for (size_t i = 0; i < sizeof msg; i++) {
        msg[i] = (uint8_t)(i % 13);
    }
    assert_int_equal(wsfwd_conn_send(pr.srv.conn, WSFWD_OP_BINARY, msg, sizeof msg), WSFWD_OK);
    assert_int_equal(wsfwd_conn_send(pr.srv.conn, WSFWD_OP_BINARY, msg, sizeof msg), WSFWD_OK);
    static uint8_t wire[4096];
    size_t n = test_drain(pr.srv.conn, wire, sizeof wire);
    assert_true(n < sizeof msg);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(test_feed(pr.cli.conn, wire + i, 1), WSFWD_OK);
    }
    char expect[128];
    snprintf(expect, sizeof expect, "msg 2 700 %08x|msg 2 700 %08x|", checksum(msg, sizeof msg),
             checksum(msg, sizeof msg));
    assert_string_equal(pr.cli.log, expect);
    pair_close(&pr);
    wsfwd_config_free(scfg);
    wsfwd_config_free(ccfg);
}

/* ---- Sending: the minimum size, a codec that fails ------------------------------------------- */

static void test_min_size(void **state)
{
    (void)state;
    zcodec z = {0};
    wsfwd_config *cfg = config_new(&z, NULL);
    assert_int_equal(wsfwd_config_set_deflate_min_size(cfg, 100), WSFWD_OK);
    peer p;
    open_server(&p, cfg, "permessage-deflate");
    test_drain(p.conn, pump_buf, sizeof pump_buf);
    static uint8_t msg[100];
    memset(msg, 'a', sizeof msg);
    uint8_t out[1024];
    assert_int_equal(wsfwd_conn_send(p.conn, WSFWD_OP_TEXT, msg, 99), WSFWD_OK);
    size_t n = test_drain(p.conn, out, sizeof out);
    assert_int_equal(out[0], 0x81);
    assert_int_equal(n, 2 + 99);
    assert_int_equal(z.compress_calls, 0);
    assert_int_equal(wsfwd_conn_send(p.conn, WSFWD_OP_TEXT, msg, 100), WSFWD_OK);
    n = test_drain(p.conn, out, sizeof out);
    assert_int_equal(out[0], 0xC1);
    assert_true(n < 20);
    assert_int_equal(z.compress_calls, 1);
    /* Incompressible data, or a codec that fails: sent plain. */
    static uint8_t noise[400];
    uint32_t x = 1;
    for (size_t i = 0; i < sizeof noise; i++) {
        x = x * 1103515245 + 12345;
        noise[i] = (uint8_t)(x >> 16);
    }
    assert_int_equal(wsfwd_conn_send(p.conn, WSFWD_OP_BINARY, noise, sizeof noise), WSFWD_OK);
    n = test_drain(p.conn, out, sizeof out);
    assert_int_equal(out[0], 0x82);
    z.fail_compress = true;
    assert_int_equal(wsfwd_conn_send(p.conn, WSFWD_OP_TEXT, msg, 100), WSFWD_OK);
    n = test_drain(p.conn, out, sizeof out);
    assert_int_equal(out[0], 0x81);
    /* Control frames are never compressed. */
    z.fail_compress = false;
    long calls = z.compress_calls;
    assert_int_equal(wsfwd_conn_send(p.conn, WSFWD_OP_PING, msg, 100), WSFWD_OK);
    n = test_drain(p.conn, out, sizeof out);
    assert_int_equal(out[0], 0x89);
    assert_int_equal(z.compress_calls, calls);
    wsfwd_conn_free(p.conn);
    wsfwd_config_free(cfg);
}

/* ---- Broadcast ------------------------------------------------------------------------------- */

static void broadcast_mixed(size_t members)
{
    zcodec z = {0};
    wsfwd_config *cfg = config_new(&z, NULL);
    wsfwd_hub *hub;
    assert_int_equal(wsfwd_hub_new(cfg, &hub), WSFWD_OK);
    zcodec zc = {0};
    wsfwd_config *ccfg = config_new(&zc, NULL); /* the clients, to read what they get */
    wsfwd_config *plain = config_new(NULL, NULL);
    pair *pr = calloc(members, sizeof *pr);
    assert_non_null(pr);
    for (size_t i = 0; i < members; i++) {
        /* Every third member without the extension. */
        pair_open(&pr[i], cfg, i % 3 == 2 ? plain : ccfg);
        assert_int_equal(wsfwd_conn_deflate(pr[i].srv.conn, NULL, 0), i % 3 != 2);
        assert_int_equal(wsfwd_hub_join(hub, pr[i].srv.conn, "room", 4), WSFWD_OK);
    }
    wsfwd_pool *pool = wsfwd_hub_find(hub, "room", 4);
    static char msg[1024];
    for (size_t i = 0; i < sizeof msg; i++) {
        msg[i] = "{\"from\":\"ann\",\"text\":\"hello there\"},"[i % 36];
    }
    size_t delivered = 0;
    assert_int_equal(wsfwd_pool_broadcast(pool, WSFWD_OP_TEXT, msg, sizeof msg, NULL, &delivered),
                     WSFWD_OK);
    assert_int_equal(delivered, members);
    assert_int_equal(z.compress_calls, 1);
    /* Below the minimum size: nothing compressed. */
    assert_int_equal(wsfwd_pool_broadcast(pool, WSFWD_OP_TEXT, msg, 10, NULL, NULL), WSFWD_OK);
    assert_int_equal(z.compress_calls, 1);
    char expect[256];
    snprintf(expect, sizeof expect, "msg 1 1024 %08x|msg 1 10 %08x|",
             checksum((const uint8_t *)msg, sizeof msg), checksum((const uint8_t *)msg, 10));
    for (size_t i = 0; i < members; i++) {
        static uint8_t out[4096];
        size_t n = test_drain(pr[i].srv.conn, out, sizeof out);
        assert_int_equal(out[0], i % 3 == 2 ? 0x81 : 0xC1);
        assert_int_equal(n < 200, i % 3 != 2);
        assert_int_equal(wsfwd_conn_feed(pr[i].cli.conn, out, n), WSFWD_OK);
        assert_string_equal(pr[i].cli.log, expect);
    }
    wsfwd_stats st;
    assert_int_equal(wsfwd_pool_stats(pool, &st, sizeof st), WSFWD_OK);
    assert_int_equal(st.deflate_calls, 1);
    assert_int_equal(st.deflate_bytes_in, 1024);
    assert_true(st.deflate_bytes_out < 200);
    size_t zmembers = members - members / 3;
    assert_int_equal(st.deflated_out, zmembers);
    assert_int_equal(st.deflated_bytes_out, zmembers * st.deflate_bytes_out);
    assert_int_equal(st.messages_out, 2 * members);
    assert_int_equal(wsfwd_hub_stats(hub, &st, sizeof st), WSFWD_OK);
    assert_int_equal(st.deflate_calls, 1);
    for (size_t i = 0; i < members; i++) {
        pair_close(&pr[i]);
    }
    free(pr);
    wsfwd_hub_free(hub);
    wsfwd_config_free(cfg);
    wsfwd_config_free(ccfg);
    wsfwd_config_free(plain);
}

static void test_broadcast_mixed(void **state)
{
    (void)state;
    broadcast_mixed(1);
    broadcast_mixed(3);
    broadcast_mixed(40);
}

/* Forward what a member sends to the rest of its pool (as the wsfwd command does). */
static wsfwd_hub *fwd_hub;

static int fwd_message(wsfwd_conn *c, wsfwd_opcode op, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    return wsfwd_pool_broadcast(wsfwd_conn_pool(c), op, data, len, c, NULL) == WSFWD_OK ? 0 : -1;
}

/* Members with different windows: one compression per window; a relayed message is the
   inflated one, compressed again by the broadcast; a broadcast from a callback (deferred)
   is compressed too. */
static void test_broadcast_windows_and_relay(void **state)
{
    (void)state;
    zcodec z = {0};
    wsfwd_config *cfg = config_new(&z, NULL);
    wsfwd_config_on_message(cfg, fwd_message);
    assert_int_equal(wsfwd_hub_new(cfg, &fwd_hub), WSFWD_OK);
    peer m[4];
    const char *offers[4] = {"permessage-deflate", "permessage-deflate; server_max_window_bits=10",
                             "permessage-deflate", "x-none"};
    for (size_t i = 0; i < 4; i++) {
        open_server(&m[i], cfg, offers[i]);
        test_drain(m[i].conn, pump_buf, sizeof pump_buf);
        assert_int_equal(wsfwd_hub_join(fwd_hub, m[i].conn, "r", 1), WSFWD_OK);
    }
    static char msg[800];
    for (size_t i = 0; i < sizeof msg; i++) {
        msg[i] = (char)('a' + i % 5);
    }
    uint8_t zb[1024];
    size_t zn = deflate_msg(msg, sizeof msg, zb, sizeof zb, 15);
    static uint8_t frame[2048];
    size_t n = raw_frame(frame, 0xC1, zb, zn);
    assert_int_equal(test_feed(m[0].conn, frame, n), WSFWD_OK);
    assert_int_equal(z.compress_calls, 2); /* windows 15 and 10 */
    for (size_t i = 1; i < 4; i++) {
        static uint8_t out[2048];
        size_t k = test_drain(m[i].conn, out, sizeof out);
        assert_int_equal(out[0], i == 3 ? 0x81 : 0xC1);
        wsfwd_frame_header fh;
        out[0] &= 0xBF; /* RSV1 off, for the public parser */
        assert_int_equal(wsfwd_frame_parse_header(out, k, WSFWD_ROLE_CLIENT, &fh), WSFWD_OK);
        uint8_t plain[1024];
        size_t pn = sizeof plain;
        if (i == 3) {
            assert_memory_equal(out + fh.header_len, msg, sizeof msg);
            continue;
        }
        /* Inflate with the member's window: a 2^10 window must do for member 1. */
        z_stream s;
        memset(&s, 0, sizeof s);
        assert_int_equal(inflateInit2(&s, i == 1 ? -10 : -15), Z_OK);
        uint8_t in[1100];
        memcpy(in, out + fh.header_len, (size_t)fh.payload_len);
        memcpy(in + fh.payload_len, "\x00\x00\xff\xff", 4);
        s.next_in = in;
        s.avail_in = (uInt)fh.payload_len + 4;
        s.next_out = plain;
        s.avail_out = (uInt)pn;
        int rc = inflate(&s, Z_SYNC_FLUSH);
        assert_true(rc == Z_OK || rc == Z_BUF_ERROR);
        assert_int_equal(pn - s.avail_out, sizeof msg);
        assert_memory_equal(plain, msg, sizeof msg);
        inflateEnd(&s);
    }
    for (size_t i = 0; i < 4; i++) {
        wsfwd_conn_free(m[i].conn);
    }
    wsfwd_hub_free(fwd_hub);
    wsfwd_config_free(cfg);
    assert_int_equal(z.live_streams, 0);
}

/*
 * Flow control under compression: 200 messages of 16 KiB that deflate to a few dozen bytes
 * each, fed in one piece by a compressing member of a pool whose other member reads nothing.
 * Once that member is congested the sender is paced, and the feed stops at the next frame:
 * the rest is held (wsfwd_conn_held), so one feed cannot inflate into more than the high mark
 * and a message. Draining the member resumes the sender; feeding it nothing then reads what
 * it held. Every message arrives once, in order. A plain sender's feed is read whole.
 */
static int held_resumes;

static void held_flow(wsfwd_conn *c, wsfwd_flow event, void *ud)
{
    (void)c;
    (void)ud;
    held_resumes += event == WSFWD_FLOW_RESUME;
}

/* fwd_hub on cfg, and in its pool "r" a compressing sender and a plain reader, opened. */
static void sender_and_reader(wsfwd_config *cfg, peer *sender, peer *reader)
{
    assert_int_equal(wsfwd_hub_new(cfg, &fwd_hub), WSFWD_OK);
    open_server(sender, cfg, "permessage-deflate");
    open_server(reader, cfg, "x-none");
    test_drain(sender->conn, pump_buf, sizeof pump_buf);
    test_drain(reader->conn, pump_buf, sizeof pump_buf);
    assert_int_equal(wsfwd_hub_join(fwd_hub, sender->conn, "r", 1), WSFWD_OK);
    assert_int_equal(wsfwd_hub_join(fwd_hub, reader->conn, "r", 1), WSFWD_OK);
}

static void test_paced_sender_holds_its_feed(void **state)
{
    (void)state;
    enum { COUNT = 200, SIZE = 16384 };
    zcodec z = {0};
    wsfwd_config *cfg = config_new(&z, NULL);
    wsfwd_config_on_message(cfg, fwd_message);
    wsfwd_config_on_flow(cfg, held_flow);
    assert_int_equal(wsfwd_config_set_max_queue(cfg, 8 * SIZE), WSFWD_OK); /* marks 4 and 1 */
    peer sender, reader;
    sender_and_reader(cfg, &sender, &reader);
    static uint8_t wire[COUNT * 128];
    static uint8_t msg[SIZE];
    size_t n = 0;
    for (unsigned i = 0; i < COUNT; i++) {
        memset(msg, 'a' + (int)(i % 26), sizeof msg);
        memcpy(msg, &i, sizeof i);
        uint8_t zb[256];
        size_t zn = deflate_msg(msg, sizeof msg, zb, sizeof zb, 15);
        n += raw_frame(wire + n, 0xC2, zb, zn);
        assert_true(n + 256 < sizeof wire);
    }
    assert_int_equal(wsfwd_conn_feed(sender.conn, wire, n), WSFWD_OK);
    assert_true(wsfwd_conn_is_paced(sender.conn));
    assert_true(wsfwd_conn_held(sender.conn) > 0);
    /* queued: up to the high mark, one message past it, and the one that paced */
    assert_true(wsfwd_conn_pending(reader.conn) <= 4 * SIZE + 2 * (SIZE + 14));
    unsigned next = 0;
    static uint8_t out[16 * SIZE];
    for (int rounds = 0; next < COUNT; rounds++) {
        assert_true(rounds < COUNT);
        size_t k = test_drain(reader.conn, out, sizeof out);
        for (size_t at = 0; at < k;) {
            wsfwd_frame_header fh;
            assert_int_equal(wsfwd_frame_parse_header(out + at, k - at, WSFWD_ROLE_CLIENT, &fh),
                             WSFWD_OK);
            assert_int_equal(fh.payload_len, SIZE);
            unsigned got;
            memcpy(&got, out + at + fh.header_len, sizeof got);
            assert_int_equal(got, next++);
            at += fh.header_len + SIZE;
        }
        if (wsfwd_conn_held(sender.conn) > 0) {
            assert_false(wsfwd_conn_is_paced(sender.conn)); /* drained: resumed */
            assert_int_equal(wsfwd_conn_feed(sender.conn, NULL, 0), WSFWD_OK);
            assert_true(wsfwd_conn_pending(reader.conn) <= 4 * SIZE + 2 * (SIZE + 14));
        }
    }
    assert_int_equal(wsfwd_conn_held(sender.conn), 0);
    assert_true(held_resumes > 2);
    assert_int_equal(wsfwd_conn_state(sender.conn), WSFWD_STATE_OPEN);
    /* A plain sender's feed is read whole, even when it is paced during it. */
    peer plain;
    open_server(&plain, cfg, "x-none");
    test_drain(plain.conn, pump_buf, sizeof pump_buf);
    assert_int_equal(wsfwd_hub_join(fwd_hub, plain.conn, "r", 1), WSFWD_OK);
    wsfwd_pool *pool = wsfwd_hub_find(fwd_hub, "r", 1);
    memset(msg, 'q', sizeof msg);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(wsfwd_pool_broadcast(pool, WSFWD_OP_BINARY, msg, SIZE, NULL, NULL),
                         WSFWD_OK);
    }
    assert_true(wsfwd_conn_is_congested(reader.conn));
    size_t before = wsfwd_conn_pending(reader.conn);
    n = 0;
    memset(msg, 'p', sizeof msg);
    for (int i = 0; i < 8; i++) {
        n += raw_frame(wire + n, 0x82, msg, 1024);
    }
    static uint8_t big[8 * 1100];
    assert_true(n <= sizeof big);
    memcpy(big, wire, n);
    test_drain(sender.conn, pump_buf, sizeof pump_buf);
    assert_int_equal(wsfwd_conn_feed(plain.conn, big, n), WSFWD_OK);
    assert_true(wsfwd_conn_is_paced(plain.conn));
    assert_int_equal(wsfwd_conn_held(plain.conn), 0);
    assert_int_equal(wsfwd_conn_pending(reader.conn), before + 8 * (1024 + 4));
    assert_int_equal(wsfwd_conn_held(NULL), 0);
    wsfwd_conn_free(sender.conn);
    wsfwd_conn_free(reader.conn);
    wsfwd_conn_free(plain.conn);
    wsfwd_hub_free(fwd_hub);
    wsfwd_config_free(cfg);
    assert_int_equal(z.live_streams, 0);
}

/*
 * Held input of a connection that closes before it is read is dropped: it will never be read,
 * so wsfwd_conn_held says 0 (an embedder feeding NULL, 0 while it is not 0 would spin). Found
 * by fuzz_hub: a compressing sender holds its feed, then its own queue overflows.
 */
static void test_held_input_dropped_on_close(void **state)
{
    (void)state;
    enum { SIZE = 4096 };
    zcodec z = {0};
    wsfwd_config *cfg = config_new(&z, NULL);
    wsfwd_config_on_message(cfg, fwd_message);
    assert_int_equal(wsfwd_config_set_max_queue(cfg, 4 * SIZE), WSFWD_OK); /* high mark 2 */
    peer sender, reader;
    sender_and_reader(cfg, &sender, &reader);
    static uint8_t wire[8 * 128];
    static uint8_t msg[SIZE];
    memset(msg, 'h', sizeof msg);
    size_t n = 0;
    for (int i = 0; i < 8; i++) {
        uint8_t zb[128];
        n += raw_frame(wire + n, 0xC2, zb, deflate_msg(msg, sizeof msg, zb, sizeof zb, 15));
    }
    assert_int_equal(wsfwd_conn_feed(sender.conn, wire, n), WSFWD_OK);
    assert_true(wsfwd_conn_is_paced(sender.conn));
    assert_true(wsfwd_conn_held(sender.conn) > 0);
    /* Broadcasts that do not compress fill the sender's own queue, under the close policy. */
    uint32_t x = 1;
    for (size_t i = 0; i < sizeof msg; i++) {
        x = x * 1103515245u + 12345u;
        msg[i] = (uint8_t)(x >> 16);
    }
    wsfwd_pool *pool = wsfwd_hub_find(fwd_hub, "r", 1);
    for (int i = 0; i < 6 && wsfwd_conn_state(sender.conn) == WSFWD_STATE_OPEN; i++) {
        (void)wsfwd_pool_broadcast(pool, WSFWD_OP_BINARY, msg, SIZE, NULL, NULL);
    }
    assert_int_equal(wsfwd_conn_state(sender.conn), WSFWD_STATE_CLOSED);
    assert_int_equal(sent_close(sender.conn), 1008);
    assert_int_equal(wsfwd_conn_held(sender.conn), 0);
    assert_int_equal(wsfwd_conn_feed(sender.conn, NULL, 0), WSFWD_OK);
    assert_int_equal(wsfwd_conn_held(sender.conn), 0);
    wsfwd_conn_free(sender.conn);
    wsfwd_conn_free(reader.conn);
    wsfwd_hub_free(fwd_hub);
    wsfwd_config_free(cfg);
    assert_int_equal(z.live_streams, 0);
}

/* A broadcast asked for from a callback of a running one is deferred, and compressed too. */
static wsfwd_pool *defer_pool;
static int defer_left;

static void defer_output(wsfwd_conn *c, void *ud)
{
    (void)c;
    (void)ud;
    if (defer_left > 0) {
        defer_left--;
        static char second[300];
        memset(second, 'b', sizeof second);
        assert_int_equal(
            wsfwd_pool_broadcast(defer_pool, WSFWD_OP_TEXT, second, sizeof second, NULL, NULL),
            WSFWD_OK);
    }
}

static void test_broadcast_deferred(void **state)
{
    (void)state;
    zcodec z = {0};
    wsfwd_config *cfg = config_new(&z, NULL);
    zcodec zc = {0};
    wsfwd_config *ccfg = config_new(&zc, NULL);
    wsfwd_hub *hub;
    assert_int_equal(wsfwd_hub_new(cfg, &hub), WSFWD_OK);
    pair pr[3];
    for (size_t i = 0; i < 3; i++) {
        pair_open(&pr[i], cfg, ccfg);
        assert_int_equal(wsfwd_hub_join(hub, pr[i].srv.conn, "d", 1), WSFWD_OK);
    }
    defer_pool = wsfwd_hub_find(hub, "d", 1);
    wsfwd_config_on_output(cfg, defer_output);
    defer_left = 1;
    static char first[300];
    memset(first, 'a', sizeof first);
    assert_int_equal(
        wsfwd_pool_broadcast(defer_pool, WSFWD_OP_TEXT, first, sizeof first, NULL, NULL), WSFWD_OK);
    assert_int_equal(z.compress_calls, 2);
    static char second[300];
    memset(second, 'b', sizeof second);
    char expect[128];
    snprintf(expect, sizeof expect, "msg 1 300 %08x|msg 1 300 %08x|",
             checksum((const uint8_t *)first, 300), checksum((const uint8_t *)second, 300));
    for (size_t i = 0; i < 3; i++) {
        static uint8_t out[1024];
        size_t n = test_drain(pr[i].srv.conn, out, sizeof out);
        assert_true(n < 100);
        assert_int_equal(wsfwd_conn_feed(pr[i].cli.conn, out, n), WSFWD_OK);
        assert_string_equal(pr[i].cli.log, expect);
        pair_close(&pr[i]);
    }
    wsfwd_hub_free(hub);
    wsfwd_config_free(cfg);
    wsfwd_config_free(ccfg);
}

/* A final block (BFINAL) ends the stream: the rest of the message is ignored, however it is
   split, and the next message of a peer that keeps its context inflates from a fresh one. */
static void test_final_block(void **state)
{
    (void)state;
    zcodec z = {0};
    wsfwd_config *cfg = config_new(&z, NULL);
    uint8_t zb[256];
    z_stream s;
    memset(&s, 0, sizeof s);
    assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    s.next_in = (Bytef *)(uintptr_t) "first message";
    s.avail_in = 13;
    s.next_out = zb;
    s.avail_out = sizeof zb;
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    size_t zn = sizeof zb - s.avail_out;
    deflateEnd(&s);
    memcpy(zb + zn, "junk", 4); /* after the end: ignored */
    zn += 4;
    static uint8_t in[1024];
    size_t n = test_client_frame(in, false, WSFWD_OP_TEXT, zb, zn / 2);
    in[0] |= 0x40;
    n += test_client_frame(in + n, true, WSFWD_OP_CONTINUATION, zb + zn / 2, zn - zn / 2);
    uint8_t zb2[64];
    size_t zn2 = deflate_msg("second", 6, zb2, sizeof zb2, 15);
    size_t at = n;
    n += test_client_frame(in + n, true, WSFWD_OP_TEXT, zb2, zn2);
    in[at] |= 0x40;
    char expect[128];
    snprintf(expect, sizeof expect, "msg 1 13 %08x|msg 1 6 %08x|",
             checksum((const uint8_t *)"first message", 13),
             checksum((const uint8_t *)"second", 6));
    split_ctx sc = {cfg, in, n, expect};
    test_each_cut(n, feed_split, &sc);
    wsfwd_config_free(cfg);
    assert_int_equal(z.live_streams, 0);
}

/* ---- Allocation failures --------------------------------------------------------------------- */

static void test_allocation_failures(void **state)
{
    (void)state;
    static uint8_t msg[3000];
    for (size_t i = 0; i < sizeof msg; i++) {
        msg[i] = (uint8_t)('a' + i % 11);
    }
    uint8_t zb[4096];
    size_t zn = deflate_msg(msg, sizeof msg, zb, sizeof zb, 15);
    static uint8_t frame[8192];
    size_t fn = raw_frame(frame, 0xC2, zb, zn);
    bool passed = false;
    for (long fail_at = 1; !passed; fail_at++) {
        zcodec z = {0};
        test_alloc ta;
        test_alloc_init(&ta);
        wsfwd_allocator hooks = test_alloc_hooks(&ta);
        wsfwd_config *cfg = config_new(&z, &hooks);
        assert_non_null(cfg);
        ta.fail_at = ta.calls + fail_at;
        wsfwd_hub *hub = NULL;
        peer p = {0};
        p.echo = false;
        int rc = wsfwd_hub_new(cfg, &hub);
        if (rc == WSFWD_OK) {
            rc = wsfwd_conn_new(cfg, WSFWD_ROLE_SERVER, &p, &p.conn);
        }
        if (rc == WSFWD_OK) {
            char resp[2048];
            rc = server_handshake(p.conn, "Sec-WebSocket-Extensions: permessage-deflate\r\n", resp,
                                  sizeof resp);
        }
        if (rc == WSFWD_OK && wsfwd_conn_state(p.conn) == WSFWD_STATE_OPEN) {
            rc = wsfwd_hub_join(hub, p.conn, "r", 1);
        }
        if (rc == WSFWD_OK && wsfwd_conn_state(p.conn) == WSFWD_STATE_OPEN) {
            rc = test_feed(p.conn, frame, fn);
        }
        if (rc == WSFWD_OK && wsfwd_conn_state(p.conn) == WSFWD_STATE_OPEN) {
            rc = wsfwd_pool_broadcast(wsfwd_conn_pool(p.conn), WSFWD_OP_BINARY, msg, sizeof msg,
                                      NULL, NULL);
        }
        if (rc == WSFWD_OK && wsfwd_conn_state(p.conn) == WSFWD_STATE_OPEN) {
            rc = wsfwd_conn_send(p.conn, WSFWD_OP_BINARY, msg, sizeof msg);
        }
        if (rc == WSFWD_OK && wsfwd_conn_state(p.conn) == WSFWD_STATE_OPEN && ta.failed == 0) {
            passed = true;
            char expect[64];
            snprintf(expect, sizeof expect, "msg 2 3000 %08x|", checksum(msg, sizeof msg));
            assert_string_equal(p.log, expect);
        }
        wsfwd_conn_free(p.conn);
        wsfwd_hub_free(hub);
        wsfwd_config_free(cfg);
        assert_int_equal(ta.live, 0);
        assert_int_equal(z.live_streams, 0);
        assert_true(fail_at < 200);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_server_negotiation),
        cmocka_unit_test(test_server_accept_from_on_request),
        cmocka_unit_test(test_client_negotiation),
        cmocka_unit_test(test_rsv_rules),
        cmocka_unit_test(test_bomb),
        cmocka_unit_test(test_corrupt_and_utf8),
        cmocka_unit_test(test_fragments_with_pings),
        cmocka_unit_test(test_round_trip_context_takeover),
        cmocka_unit_test(test_round_trip_no_context_takeover),
        cmocka_unit_test(test_peer_context_takeover),
        cmocka_unit_test(test_client_inflates_bytewise),
        cmocka_unit_test(test_min_size),
        cmocka_unit_test(test_broadcast_mixed),
        cmocka_unit_test(test_broadcast_windows_and_relay),
        cmocka_unit_test(test_broadcast_deferred),
        cmocka_unit_test(test_paced_sender_holds_its_feed),
        cmocka_unit_test(test_held_input_dropped_on_close),
        cmocka_unit_test(test_final_block),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
