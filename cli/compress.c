/*
 * The DEFLATE codec of the wsfwd command (wsfwd/deflate.h) on zlib. Owns the compressors
 * (one raw deflate stream per window size 9..15, made on first use and deflateReset before
 * each message, so compressing allocates nothing), the inflate streams it hands out, and the
 * counters /stats reads.
 *
 * Memory: a compressor costs zlib's 2^(window_bits+2) + 2^(memLevel+9) bytes (256 KiB at 15,
 * memLevel 8), once per window size in use for the whole process. An inflate stream costs
 * ~7 KiB of zlib state plus a 2^window_bits window (allocated by zlib at the first output),
 * so ~39 KiB per connection whose client keeps its context at 15 bits. A BFINAL block ends
 * zlib's stream: inflate reports WSFWD_INFLATE_END and the library resets the stream.
 * Why zlib and not libdeflate for compressing: docs/BENCHMARKS.md, "DEFLATE codec choice".
 */
#include "compress.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define MIN_BITS 9 /* zlib refuses raw windowBits 8 (since 1.2.9) */
#define MAX_BITS 15
#define MEM_LEVEL 8

struct compress_ctx {
    int level;
    z_stream def[MAX_BITS + 1]; /* indexed by window bits; def_ready says which are set up */
    bool def_ready[MAX_BITS + 1];
    compress_stats stats;
    void *(*alloc_fn)(void *opaque, size_t size);
    void (*free_fn)(void *opaque, void *ptr);
    void *opaque;
};

typedef struct inflate_stream {
    z_stream z;
    compress_ctx *ctx;
} inflate_stream;

static void *ctx_alloc(compress_ctx *ctx, size_t size)
{
    return ctx->alloc_fn ? ctx->alloc_fn(ctx->opaque, size) : malloc(size);
}

static void ctx_free(compress_ctx *ctx, void *ptr)
{
    if (ctx->free_fn)
        ctx->free_fn(ctx->opaque, ptr);
    else
        free(ptr);
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    return ctx_alloc(opaque, (size_t)items * size);
}

static void z_free(voidpf opaque, voidpf ptr)
{
    ctx_free(opaque, ptr);
}

static void z_setup(compress_ctx *ctx, z_stream *z)
{
    memset(z, 0, sizeof *z);
    z->zalloc = z_alloc;
    z->zfree = z_free;
    z->opaque = ctx;
}

/* The compressor for window_bits, made on first use; NULL if zlib cannot. */
static z_stream *deflater(compress_ctx *ctx, int window_bits)
{
    z_stream *z = &ctx->def[window_bits];
    if (ctx->def_ready[window_bits]) {
        if (deflateReset(z) != Z_OK)
            return NULL;
        return z;
    }
    z_setup(ctx, z);
    if (deflateInit2(z, ctx->level, Z_DEFLATED, -window_bits, MEM_LEVEL, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return NULL;
    ctx->def_ready[window_bits] = true;
    return z;
}

/* One whole message, fresh context, sync flush, the 00 00 FF FF tail removed (RFC 7692
   section 7.2.1). 0 when it does not fit in cap. */
static size_t codec_compress(void *user_data, int window_bits, const uint8_t *in, size_t len,
                             uint8_t *out, size_t cap)
{
    compress_ctx *ctx = user_data;
    ctx->stats.calls++;
    if (window_bits < MIN_BITS || window_bits > MAX_BITS || len > UINT_MAX || cap > UINT_MAX ||
        cap < 5)
        goto fail;
    z_stream *z = deflater(ctx, window_bits);
    if (!z)
        goto fail;
    z->next_in = (Bytef *)(uintptr_t)in; /* zlib does not write through next_in */
    z->avail_in = (uInt)len;
    z->next_out = out;
    z->avail_out = (uInt)cap;
    /* Finished only if every byte went in and room was left (avail_out 0: maybe more). */
    if (deflate(z, Z_SYNC_FLUSH) != Z_OK || z->avail_in != 0 || z->avail_out == 0)
        goto fail;
    size_t n = cap - z->avail_out;
    static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
    if (n < 5 || memcmp(out + n - 4, tail, 4) != 0)
        goto fail;
    n -= 4;
    if (n < len) { /* what the library sends compressed (it sends the rest plain) */
        ctx->stats.bytes_in += len;
        ctx->stats.bytes_out += n;
    } else {
        ctx->stats.plain++;
    }
    return n;
fail:
    ctx->stats.plain++;
    return 0;
}

static void *codec_inflate_new(void *user_data, int window_bits)
{
    compress_ctx *ctx = user_data;
    if (window_bits < 8 || window_bits > MAX_BITS)
        return NULL;
    inflate_stream *s = ctx_alloc(ctx, sizeof *s);
    if (!s)
        return NULL;
    z_setup(ctx, &s->z);
    s->ctx = ctx;
    if (inflateInit2(&s->z, -window_bits) != Z_OK) {
        ctx_free(ctx, s);
        return NULL;
    }
    ctx->stats.inflate_streams++;
    return s;
}

static uInt clamp_uint(size_t n)
{
    return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

/* Returns with all input consumed, out full, the stream ended (a BFINAL block) or an error,
   as the library expects. */
static wsfwd_inflate_status codec_inflate(void *user_data, void *stream, const uint8_t **in,
                                          size_t *in_len, uint8_t *out, size_t out_cap,
                                          size_t *produced)
{
    (void)user_data;
    inflate_stream *s = stream;
    size_t made = 0;
    wsfwd_inflate_status st = WSFWD_INFLATE_OK;
    while (made < out_cap) {
        uInt in_n = clamp_uint(*in_len), out_n = clamp_uint(out_cap - made);
        s->z.next_in = (Bytef *)(uintptr_t)*in; /* zlib does not write through next_in */
        s->z.avail_in = in_n;
        s->z.next_out = out + made;
        s->z.avail_out = out_n;
        int rc = inflate(&s->z, Z_SYNC_FLUSH);
        size_t used = in_n - s->z.avail_in, got = out_n - s->z.avail_out;
        *in += used;
        *in_len -= used;
        made += got;
        if (rc == Z_STREAM_END) {
            st = WSFWD_INFLATE_END; /* a BFINAL block: the library resets the stream */
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            st = WSFWD_INFLATE_ERROR;
            break;
        } else if (used == 0 && got == 0) {
            break; /* no progress: input used up (or needs more) */
        }
        if (*in_len == 0)
            break;
    }
    *produced = made;
    return st;
}

static void codec_inflate_reset(void *user_data, void *stream)
{
    (void)user_data;
    inflate_stream *s = stream;
    inflateReset(&s->z);
}

static void codec_inflate_free(void *user_data, void *stream)
{
    compress_ctx *ctx = user_data;
    inflate_stream *s = stream;
    if (!s)
        return;
    inflateEnd(&s->z);
    ctx_free(ctx, s);
    ctx->stats.inflate_streams--;
}

int compress_codec_init_alloc(compress_ctx **ctxp, int level, wsfwd_deflate_codec *out,
                              void *(*alloc_fn)(void *opaque, size_t size),
                              void (*free_fn)(void *opaque, void *ptr), void *opaque)
{
    *ctxp = NULL;
    if (level < 1 || level > 9)
        return -1;
    compress_ctx *ctx = alloc_fn ? alloc_fn(opaque, sizeof *ctx) : malloc(sizeof *ctx);
    if (!ctx)
        return -1;
    memset(ctx, 0, sizeof *ctx);
    ctx->level = level;
    ctx->alloc_fn = alloc_fn;
    ctx->free_fn = alloc_fn ? free_fn : NULL;
    ctx->opaque = opaque;
    memset(out, 0, sizeof *out);
    out->compress = codec_compress;
    out->min_window_bits = MIN_BITS;
    out->inflate_new = codec_inflate_new;
    out->inflate = codec_inflate;
    out->inflate_reset = codec_inflate_reset;
    out->inflate_free = codec_inflate_free;
    out->user_data = ctx;
    *ctxp = ctx;
    return 0;
}

int compress_codec_init(compress_ctx **ctx, int level, wsfwd_deflate_codec *out)
{
    return compress_codec_init_alloc(ctx, level, out, NULL, NULL, NULL);
}

void compress_codec_free(compress_ctx *ctx)
{
    if (!ctx)
        return;
    for (int b = MIN_BITS; b <= MAX_BITS; b++)
        if (ctx->def_ready[b])
            deflateEnd(&ctx->def[b]);
    ctx_free(ctx, ctx);
}

void compress_codec_stats(const compress_ctx *ctx, compress_stats *out)
{
    *out = ctx->stats;
}
