/*
 * libFuzzer target for the inflating path: a server connection that negotiated
 * permessage-deflate (with the wsfwd command's zlib codec, cli/compress.c) fed fuzzed frames.
 *
 * Input: byte 0 picks client_no_context_takeover, a small message limit and echoing; byte 1
 * the piece size; the rest is a list of frames, each [flags][length][payload]: flags bits 0-1
 * the kind (text, binary, continuation, control), bit 2 FIN, bit 3 RSV1, bit 4 "compress the
 * payload with zlib first" (a stream kept across messages, as browsers do, unless the peer
 * resets it), bit 5 "repeat the payload 512 times before compressing" (bombs), bit 6 RSV2.
 * Raw payloads with RSV1 are corrupt DEFLATE more often than not. The frames are fed whole and
 * in pieces: both runs must give the same events and output. Any message over the limit,
 * an allocation far past it, or a leak (memory or streams) aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "compress.h"
#include "record.h"
#include "wsfwd.h"

/* ---- A counting allocator and the codec ----------------------------------------------------- */

typedef struct counts {
    long live;      /* library blocks */
    size_t largest; /* the largest size the library asked for */
} counts;

static counts cnt;

static void *c_malloc(size_t n, void *ud)
{
    (void)ud;
    cnt.largest = n > cnt.largest ? n : cnt.largest;
    void *p = malloc(n);
    cnt.live += p != NULL;
    return p;
}

static void *c_realloc(void *p, size_t n, void *ud)
{
    (void)ud;
    cnt.largest = n > cnt.largest ? n : cnt.largest;
    void *q = realloc(p, n);
    cnt.live += p == NULL && q != NULL;
    return q;
}

static void c_free(void *p, void *ud)
{
    (void)ud;
    cnt.live -= p != NULL;
    free(p);
}

/* The wsfwd command's codec (cli/compress.c), made once: its compressors are reused across
   runs, and it counts the inflate streams alive. */
static compress_ctx *codec_ctx;
static wsfwd_deflate_codec codec;

static long live_streams(void)
{
    compress_stats st;
    compress_codec_stats(codec_ctx, &st);
    return (long)st.inflate_streams;
}

/* ---- Events -----------------------------------------------------------------------------------
 */

static void drain(wsfwd_conn *c, record *r, bool count)
{
    wsfwd_iovec iov[8];
    size_t n;
    while ((n = wsfwd_conn_output(c, iov, 8)) > 0) {
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *b = iov[i].base;
            for (size_t k = 0; count && k < iov[i].len; k++) {
                r->out_hash = (r->out_hash ^ b[k]) * 16777619u;
            }
            total += iov[i].len;
        }
        wsfwd_conn_consume(c, total);
    }
}

/* ---- Building the frames ----------------------------------------------------------------------
 */

typedef struct wire {
    uint8_t *p;
    size_t len;
    size_t cap;
} wire;

static void put(wire *w, const void *p, size_t n)
{
    if (w->cap - w->len < n) {
        size_t cap = (w->len + n) * 2;
        w->p = realloc(w->p, cap);
        if (w->p == NULL) {
            abort();
        }
        w->cap = cap;
    }
    memcpy(w->p + w->len, p, n);
    w->len += n;
}

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

static void put_frame(wire *w, uint8_t b0, const uint8_t *payload, size_t len)
{
    uint8_t h[WSFWD_FRAME_HEADER_MAX];
    size_t hl = wsfwd_frame_encode_header(h, true, WSFWD_OP_TEXT, len, MASK);
    h[0] = b0;
    put(w, h, hl);
    size_t at = w->len;
    put(w, payload, len);
    wsfwd_frame_mask(w->p + at, len, MASK, 0);
}

/* The frames the input describes; z is the peer's deflate stream (kept across messages). */
static void build(const uint8_t *in, size_t n, bool no_context, wire *w)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        abort();
    }
    static const uint8_t ops[4] = {WSFWD_OP_TEXT, WSFWD_OP_BINARY, WSFWD_OP_CONTINUATION,
                                   WSFWD_OP_PING};
    size_t at = 0;
    static uint8_t big[256 * 512];
    static uint8_t zout[sizeof big + 1024];
    while (at + 2 <= n) {
        uint8_t flags = in[at];
        size_t len = in[at + 1];
        at += 2;
        len = len < n - at ? len : n - at;
        const uint8_t *payload = in + at;
        at += len;
        uint8_t op = ops[flags & 3];
        if (op == WSFWD_OP_PING && len > 0 && payload[0] < 0x20) {
            op = payload[0] < 0x10 ? WSFWD_OP_PONG : WSFWD_OP_CLOSE;
        }
        bool fin = (flags & 4) != 0;
        uint8_t b0 = (uint8_t)((fin ? 0x80 : 0) | ((flags & 8) ? 0x40 : 0) |
                               ((flags & 0x40) ? 0x20 : 0) | op);
        if ((flags & 0x10) && !(op & 8)) {
            size_t plen = len;
            if (flags & 0x20) {
                for (size_t k = 0; k < 512; k++) {
                    memcpy(big + k * len, payload, len);
                }
                payload = big;
                plen = len * 512;
            }
            z.next_in = (Bytef *)(uintptr_t)payload;
            z.avail_in = (uInt)plen;
            z.next_out = zout;
            z.avail_out = sizeof zout;
            int zrc = deflate(&z, Z_SYNC_FLUSH);
            if (zrc != Z_OK && zrc != Z_BUF_ERROR) { /* BUF_ERROR: nothing to flush */
                abort();
            }
            size_t zn = sizeof zout - z.avail_out;
            if (fin && zn >= 4) {
                zn -= 4; /* the message's tail, as RFC 7692 says */
                if (no_context) {
                    deflateReset(&z);
                }
            }
            put_frame(w, b0, zout, zn);
        } else {
            put_frame(w, b0, payload, len);
        }
    }
    deflateEnd(&z);
}

/* ---- The run ----------------------------------------------------------------------------------
 */

static const char REQUEST[] = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n";

static record run(const uint8_t *frames, size_t size, uint8_t opts, size_t piece)
{
    record r = {RECORD_SEED, RECORD_SEED, 0, (opts & 4) != 0, (opts & 2) ? 1000 : 1 << 16};
    wsfwd_allocator a = {c_malloc, c_realloc, c_free, NULL};
    wsfwd_config *cfg;
    if (wsfwd_config_new(&a, &cfg) != WSFWD_OK) {
        abort();
    }
    if (codec_ctx == NULL && compress_codec_init(&codec_ctx, 1, &codec) != 0) {
        abort();
    }
    if (wsfwd_config_set_deflate(cfg, &codec, sizeof codec) != WSFWD_OK) {
        abort();
    }
    wsfwd_config_set_user_data(cfg, &r);
    wsfwd_config_set_random(cfg, fixed_random, NULL);
    wsfwd_config_on_message(cfg, on_message);
    wsfwd_config_on_control(cfg, on_control);
    wsfwd_config_on_close(cfg, on_close);
    wsfwd_config_set_max_message(cfg, r.limit);
    wsfwd_config_set_deflate_min_size(cfg, 16);
    wsfwd_conn *c;
    if (wsfwd_conn_new(cfg, WSFWD_ROLE_SERVER, NULL, &c) != WSFWD_OK) {
        abort();
    }
    char req[512];
    int n = snprintf(req, sizeof req, "%sSec-WebSocket-Extensions: permessage-deflate%s\r\n\r\n",
                     REQUEST, (opts & 1) ? "; client_no_context_takeover" : "");
    if (wsfwd_conn_feed(c, (uint8_t *)req, (size_t)n) != WSFWD_OK ||
        !wsfwd_conn_deflate(c, NULL, 0)) {
        abort();
    }
    drain(c, &r, false);
    uint8_t *buf = malloc(size + 1);
    memcpy(buf, frames, size);
    for (size_t off = 0; off < size; off += piece) {
        size_t k = size - off < piece ? size - off : piece;
        (void)wsfwd_conn_feed(c, buf + off, k);
        drain(c, &r, true);
    }
    free(buf);
    uint8_t st = (uint8_t)wsfwd_conn_state(c);
    mix(&r, &st, 1);
    wsfwd_conn_free(c);
    wsfwd_config_free(cfg);
    /* The message buffer never passes the limit; the biggest other block is an echo's frame
       or its compression scratch. */
    if (cnt.largest > r.limit + r.limit / 8 + 4096 || cnt.live != 0 || live_streams() != 0) {
        fprintf(stderr, "largest %zu, live %ld, streams %ld\n", cnt.largest, cnt.live,
                live_streams());
        abort();
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    uint8_t opts = data[0];
    size_t piece = (size_t)data[1] % 64 + 1;
    wire w = {NULL, 0, 0};
    build(data + 2, size - 2, (opts & 1) != 0, &w);
    if (w.len == 0) {
        free(w.p);
        return 0;
    }
    memset(&cnt, 0, sizeof cnt);
    record whole = run(w.p, w.len, opts, w.len);
    memset(&cnt, 0, sizeof cnt);
    record split = run(w.p, w.len, opts, piece);
    free(w.p);
    if (whole.hash != split.hash || whole.out_hash != split.out_hash ||
        whole.events != split.events) {
        fprintf(stderr, "split into %zu-byte pieces changed the events\n", piece);
        abort();
    }
    return 0;
}
