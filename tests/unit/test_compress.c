/*
 * The command's zlib codec (cli/compress.c): round trips of many sizes and contents through
 * its own inflate streams in every chunking of the input and of the output room, with the
 * 00 00 FF FF tail appended as the library does; the window bound (each window size decoded
 * by an inflater of exactly that window); context takeover across messages; BFINAL blocks;
 * corrupt data; inflate_reset; allocation failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "compress.h"

static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};

/* ---- Inputs ------------------------------------------------------------------------------ */

static uint64_t rng = 88172645463325252u;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static void fill_random(uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)next_rand();
}

/* JSON-like chat text: words from a vocabulary large enough that repeats are far apart. */
static void fill_text(uint8_t *buf, size_t len)
{
    static const char *const words[] = {
        "hello",        "room", "user", "message", "the", "and", "\"type\":\"msg\"",
        "{\"text\":\"", "\"},", "ok"};
    size_t i = 0;
    while (i < len) {
        char w[32];
        uint32_t r = next_rand();
        int n = (r & 3) == 0 ? snprintf(w, sizeof w, "%s ", words[r % 10])
                             : snprintf(w, sizeof w, "w%u ", (r >> 8) % 4000);
        for (int k = 0; k < n && i < len; k++)
            buf[i++] = (uint8_t)w[k];
    }
}

/* ---- Helpers ----------------------------------------------------------------------------- */

typedef struct codec {
    compress_ctx *ctx;
    wsfwd_deflate_codec c;
} codec;

static void codec_open(codec *k, int level)
{
    assert_int_equal(compress_codec_init(&k->ctx, level, &k->c), 0);
}

/* Compress in with window_bits; returns a malloc'd payload followed by the tail (*n counts
   the tail too). */
static uint8_t *compress_msg(codec *k, int window_bits, const uint8_t *in, size_t len, size_t *n)
{
    size_t cap = len + len / 8 + 64;
    uint8_t *out = malloc(cap + 4);
    assert_non_null(out);
    size_t m = k->c.compress(k->c.user_data, window_bits, in, len, out, cap);
    assert_true(m > 0);
    memcpy(out + m, tail, 4);
    *n = m + 4;
    return out;
}

/*
 * Feed data to stream in_chunk bytes at a time with out_room bytes of room a call, as the
 * library does (again with more room while a call filled it). Returns the bytes produced
 * into out (cap), or -1 on WSFWD_INFLATE_ERROR or more output than cap.
 */
static long feed(codec *k, void *stream, const uint8_t *data, size_t len, size_t in_chunk,
                 size_t out_room, uint8_t *out, size_t cap)
{
    size_t pos = 0, total = 0;
    do {
        size_t n = len - pos < in_chunk ? len - pos : in_chunk;
        const uint8_t *p = data + pos;
        size_t left = n;
        for (;;) {
            size_t room = cap - total < out_room ? cap - total : out_room;
            if (room == 0)
                return -1;
            size_t produced = 99;
            wsfwd_inflate_status st =
                k->c.inflate(k->c.user_data, stream, &p, &left, out + total, room, &produced);
            if (st == WSFWD_INFLATE_ERROR)
                return -1;
            assert_true(produced <= room);
            total += produced;
            if (st == WSFWD_INFLATE_END)
                return (long)total; /* as the library does: the rest of the message ignored */
            if (produced == room)
                continue;
            assert_int_equal(left, 0); /* room was left, so all input must have gone in */
            break;
        }
        pos += n;
    } while (pos < len);
    return (long)total;
}

/* Decode one whole compressed message (with tail) with a fresh stream of window_bits. */
static void check_decodes(codec *k, int window_bits, const uint8_t *z, size_t zlen,
                          const uint8_t *want, size_t len, size_t in_chunk, size_t out_room)
{
    void *s = k->c.inflate_new(k->c.user_data, window_bits);
    assert_non_null(s);
    uint8_t *got = malloc(len + 1);
    assert_non_null(got);
    long n = feed(k, s, z, zlen, in_chunk, out_room, got, len + 1);
    assert_int_equal(n, (long)len);
    assert_memory_equal(got, want, len);
    free(got);
    k->c.inflate_free(k->c.user_data, s);
}

/* ---- Tests ------------------------------------------------------------------------------- */

static void round_trips(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 2, 5, 63, 64, 200, 1024, 4096, 16384, 70000};
    static const size_t chunks[] = {1, 2, 3, 7, 64, 1000, SIZE_MAX};
    for (int level = 1; level <= 9; level += 4) {
        codec k;
        codec_open(&k, level);
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            for (int kind = 0; kind < 3; kind++) { /* text, random, one repeated byte */
                size_t len = sizes[si];
                uint8_t *in = malloc(len + 1);
                assert_non_null(in);
                if (kind == 0)
                    fill_text(in, len);
                else if (kind == 1)
                    fill_random(in, len);
                else
                    memset(in, 'a', len);
                size_t zlen;
                uint8_t *z = compress_msg(&k, 15, in, len, &zlen);
                for (size_t a = 0; a < sizeof chunks / sizeof *chunks; a++)
                    for (size_t b = 0; b < sizeof chunks / sizeof *chunks; b++) {
                        /* one byte at a time both ways only up to 16 KiB (time) */
                        if (len > 16384 && chunks[a] < 64 && chunks[b] < 64)
                            continue;
                        check_decodes(&k, 15, z, zlen, in, len, chunks[a], chunks[b]);
                    }
                free(z);
                free(in);
            }
        }
        compress_codec_free(k.ctx);
    }
}

static void one_mib(void **state)
{
    (void)state;
    size_t len = (size_t)1 << 20;
    uint8_t *in = malloc(len);
    assert_non_null(in);
    codec k;
    codec_open(&k, 6);
    for (int kind = 0; kind < 2; kind++) {
        if (kind == 0)
            fill_text(in, len);
        else
            fill_random(in, len); /* incompressible: bigger than the input, still fits cap */
        size_t zlen;
        uint8_t *z = compress_msg(&k, 15, in, len, &zlen);
        if (kind == 1)
            assert_true(zlen > len);
        check_decodes(&k, 15, z, zlen, in, len, SIZE_MAX, SIZE_MAX);
        check_decodes(&k, 15, z, zlen, in, len, 4096, 1000);
        check_decodes(&k, 15, z, zlen, in, len, 1, 65536);
        free(z);
    }
    compress_codec_free(k.ctx);
    free(in);
}

/* Compressed with window_bits, decoded by an inflater of exactly that window one output byte
   a call: zlib then takes every match from its 2^window_bits window (with more room it could
   also reach back into the output buffer of the call) and refuses any distance beyond it, so
   this proves the bound. The same text compressed with 15 bits is refused by a 9-bit
   inflater, which shows the check bites. */
static void window_bound(void **state)
{
    (void)state;
    size_t len = 100000;
    uint8_t *in = malloc(len);
    assert_non_null(in);
    fill_text(in, len);
    codec k;
    for (int level = 1; level <= 9; level += 8)
        for (int bits = 9; bits <= 15; bits++) {
            codec_open(&k, level);
            size_t zlen;
            uint8_t *z = compress_msg(&k, bits, in, len, &zlen);
            check_decodes(&k, bits, z, zlen, in, len, SIZE_MAX, SIZE_MAX);
            check_decodes(&k, bits, z, zlen, in, len, 333, 1);
            if (bits == 15) {
                void *s = k.c.inflate_new(k.c.user_data, 9);
                uint8_t *got = malloc(len + 1);
                assert_int_equal(feed(&k, s, z, zlen, SIZE_MAX, 1, got, len + 1), -1);
                free(got);
                k.c.inflate_free(k.c.user_data, s);
            }
            free(z);
            compress_codec_free(k.ctx);
        }
    codec_open(&k, 9);
    /* Outside 9..15: refused (the library never asks: min_window_bits is 9). */
    assert_int_equal(k.c.min_window_bits, 9);
    uint8_t out[128];
    assert_int_equal(k.c.compress(k.c.user_data, 8, in, 10, out, sizeof out), 0);
    assert_int_equal(k.c.compress(k.c.user_data, 16, in, 10, out, sizeof out), 0);
    compress_codec_free(k.ctx);
    free(in);
}

/* Messages from a streaming raw deflate that keeps its context (a client without
   client_no_context_takeover): each sync-flushed, the tail removed. */
static size_t stream_msg(z_stream *d, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    d->next_in = (Bytef *)(uintptr_t)in;
    d->avail_in = (uInt)len;
    d->next_out = out;
    d->avail_out = (uInt)cap;
    assert_int_equal(deflate(d, Z_SYNC_FLUSH), Z_OK);
    assert_int_equal(d->avail_in, 0);
    size_t n = cap - d->avail_out;
    assert_memory_equal(out + n - 4, tail, 4);
    return n - 4;
}

static void context_takeover(void **state)
{
    (void)state;
    uint8_t msg[3000];
    fill_text(msg, sizeof msg);
    z_stream d;
    memset(&d, 0, sizeof d);
    assert_int_equal(deflateInit2(&d, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    uint8_t z1[4000], z2[4000];
    size_t n1 = stream_msg(&d, msg, sizeof msg, z1, sizeof z1);
    size_t n2 = stream_msg(&d, msg, sizeof msg, z2, sizeof z2); /* all back-references */
    deflateEnd(&d);
    assert_true(n2 < 100);
    memcpy(z1 + n1, tail, 4);
    memcpy(z2 + n2, tail, 4);

    codec k;
    codec_open(&k, 1);
    static const size_t chunks[] = {1, 5, SIZE_MAX};
    uint8_t got[3001];
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++) {
            void *s = k.c.inflate_new(k.c.user_data, 15);
            assert_int_equal(feed(&k, s, z1, n1 + 4, chunks[a], chunks[b], got, sizeof got),
                             (long)sizeof msg);
            assert_memory_equal(got, msg, sizeof msg);
            assert_int_equal(feed(&k, s, z2, n2 + 4, chunks[a], chunks[b], got, sizeof got),
                             (long)sizeof msg);
            assert_memory_equal(got, msg, sizeof msg);
            /* After inflate_reset the history is gone: the second message cannot decode. */
            k.c.inflate_reset(k.c.user_data, s);
            assert_int_equal(feed(&k, s, z2, n2 + 4, chunks[a], chunks[b], got, sizeof got), -1);
            /* and after another reset a fresh message decodes again */
            k.c.inflate_reset(k.c.user_data, s);
            assert_int_equal(feed(&k, s, z1, n1 + 4, chunks[a], chunks[b], got, sizeof got),
                             (long)sizeof msg);
            k.c.inflate_free(k.c.user_data, s);
        }
    compress_codec_free(k.ctx);
}

/* RFC 7692 section 7.2.3.3: "Hello" in a block with BFINAL set, then 0x00 (the empty stored
   block's header byte), then the tail the library appends. The stream ends at the BFINAL
   block (WSFWD_INFLATE_END, all of "Hello" produced, in every split); after inflate_reset it
   decodes the next message and has forgotten the last: a back-reference to it fails. */
static void bfinal_blocks(void **state)
{
    (void)state;
    static const uint8_t hello[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
                                    0x00, 0x00, 0x00, 0x00, 0xff, 0xff};
    codec k;
    codec_open(&k, 6);
    void *s = k.c.inflate_new(k.c.user_data, 15);
    uint8_t got[16];
    for (size_t chunk = 1; chunk <= sizeof hello; chunk++)
        for (size_t room = 1; room <= 6; room++) {
            assert_int_equal(feed(&k, s, hello, sizeof hello, chunk, room, got, sizeof got), 5);
            assert_memory_equal(got, "Hello", 5);
            k.c.inflate_reset(k.c.user_data, s);
        }
    /* one call with everything: END, "Hello", the bytes after the final block left unread */
    const uint8_t *p = hello;
    size_t left = sizeof hello, produced = 0;
    assert_int_equal(k.c.inflate(k.c.user_data, s, &p, &left, got, sizeof got, &produced),
                     WSFWD_INFLATE_END);
    assert_int_equal(produced, 5);
    assert_int_equal(left, 5);
    k.c.inflate_reset(k.c.user_data, s);
    static const uint8_t ref[] = {0xf2, 0x00, 0x11, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff};
    assert_int_equal(feed(&k, s, ref, sizeof ref, SIZE_MAX, SIZE_MAX, got, sizeof got), -1);
    k.c.inflate_free(k.c.user_data, s);
    compress_codec_free(k.ctx);
}

static void corrupt_data(void **state)
{
    (void)state;
    codec k;
    codec_open(&k, 6);
    uint8_t got[256];
    static const uint8_t bad_type[] = {0xff, 0xff, 0x00, 0x00, 0xff, 0xff};
    static const uint8_t bad_stored[] = {0x00, 0x05, 0x00, 0x05, 0x00};      /* NLEN != ~LEN */
    static const uint8_t far[] = {0x4b, 0x04, 0x02, 0x00, 0x00, 0xff, 0xff}; /* fine */
    void *s = k.c.inflate_new(k.c.user_data, 15);
    assert_int_equal(feed(&k, s, bad_type, sizeof bad_type, SIZE_MAX, 16, got, sizeof got), -1);
    k.c.inflate_reset(k.c.user_data, s);
    assert_int_equal(feed(&k, s, bad_stored, sizeof bad_stored, 1, 16, got, sizeof got), -1);
    k.c.inflate_reset(k.c.user_data, s);
    assert_true(feed(&k, s, far, sizeof far, SIZE_MAX, 16, got, sizeof got) >= 0);
    /* A distance before the start of the stream. */
    k.c.inflate_reset(k.c.user_data, s);
    static const uint8_t before[] = {0xf2, 0x00, 0x11, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff};
    assert_int_equal(feed(&k, s, before, sizeof before, SIZE_MAX, 16, got, sizeof got), -1);
    k.c.inflate_free(k.c.user_data, s);
    compress_codec_free(k.ctx);
}

static void stats_and_no_room(void **state)
{
    (void)state;
    codec k;
    codec_open(&k, 6);
    uint8_t in[1000], out[2000], text[1000];
    fill_random(in, sizeof in);
    memset(text, 'a', sizeof text);
    /* no room: 0; random bytes: longer than they were; text: shorter */
    assert_int_equal(k.c.compress(k.c.user_data, 15, in, sizeof in, out, 100), 0);
    assert_true(k.c.compress(k.c.user_data, 15, in, sizeof in, out, sizeof out) >= sizeof in);
    size_t n = k.c.compress(k.c.user_data, 15, text, sizeof text, out, sizeof out);
    assert_true(n > 0 && n < sizeof text);
    compress_stats st;
    compress_codec_stats(k.ctx, &st);
    assert_int_equal(st.calls, 3);
    assert_int_equal(st.bytes_in, 1000);
    assert_int_equal(st.bytes_out, n);
    assert_int_equal(st.plain, 2);
    void *s = k.c.inflate_new(k.c.user_data, 12);
    compress_codec_stats(k.ctx, &st);
    assert_int_equal(st.inflate_streams, 1);
    k.c.inflate_free(k.c.user_data, s);
    k.c.inflate_free(k.c.user_data, NULL);
    /* Inflate windows 8..15 (a client may compress with 2^8); others refused. */
    s = k.c.inflate_new(k.c.user_data, 8);
    assert_non_null(s);
    k.c.inflate_free(k.c.user_data, s);
    assert_null(k.c.inflate_new(k.c.user_data, 7));
    assert_null(k.c.inflate_new(k.c.user_data, 16));
    /* An empty message is the single byte 00 (RFC 7692 section 7.2.3.6). */
    assert_int_equal(k.c.compress(k.c.user_data, 15, in, 0, out, 64), 1);
    assert_int_equal(out[0], 0x00);
    compress_codec_stats(k.ctx, &st);
    assert_int_equal(st.inflate_streams, 0);
    compress_codec_free(k.ctx);
    assert_int_equal(compress_codec_init(&k.ctx, 0, &k.c), -1);
    assert_int_equal(compress_codec_init(&k.ctx, 10, &k.c), -1);
    compress_codec_free(NULL);
    compress_codec_free(k.ctx); /* NULL after the failed init */
}

/* ---- Allocation failures ----------------------------------------------------------------- */

typedef struct fail_alloc {
    long calls, fail_at, live;
} fail_alloc;

static void *fa_alloc(void *opaque, size_t size)
{
    fail_alloc *a = opaque;
    if (++a->calls == a->fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        a->live++;
    return p;
}

static void fa_free(void *opaque, void *ptr)
{
    fail_alloc *a = opaque;
    if (ptr)
        a->live--;
    free(ptr);
}

/* Fail each allocation in turn: every step either works or fails cleanly, nothing leaks. */
static void allocation_failures(void **state)
{
    (void)state;
    uint8_t in[2000], out[3000], got[2001];
    fill_text(in, sizeof in);
    for (long at = 1;; at++) {
        fail_alloc a = {0, at, 0};
        compress_ctx *ctx;
        wsfwd_deflate_codec c;
        if (compress_codec_init_alloc(&ctx, 6, &c, fa_alloc, fa_free, &a) != 0) {
            assert_int_equal(a.live, 0);
            continue;
        }
        size_t n = c.compress(c.user_data, 15, in, sizeof in, out, sizeof out - 4);
        void *s = c.inflate_new(c.user_data, 15);
        if (n > 0 && s) {
            memcpy(out + n, tail, 4);
            codec k = {ctx, c};
            long r = feed(&k, s, out, n + 4, SIZE_MAX, SIZE_MAX, got, sizeof got);
            if (r >= 0) {
                assert_int_equal(r, (long)sizeof in);
                assert_memory_equal(got, in, sizeof in);
            }
        }
        c.inflate_free(c.user_data, s);
        compress_codec_free(ctx);
        assert_int_equal(a.live, 0);
        if (a.calls < at) /* no allocation failed: every path has been through a failure */
            break;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trips),       cmocka_unit_test(one_mib),
        cmocka_unit_test(window_bound),      cmocka_unit_test(context_takeover),
        cmocka_unit_test(bfinal_blocks),     cmocka_unit_test(corrupt_data),
        cmocka_unit_test(stats_and_no_room), cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
