/* SHA-1 (FIPS 180-4 section 6.1). Used only to compute Sec-WebSocket-Accept. */
#include "sha1.h"

#include <string.h>

static uint32_t rol32(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32u - n));
}

static uint32_t load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
           (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void sha1_block(uint32_t h[5], const uint8_t block[64])
{
    /* A 16-word circular schedule instead of the 80-word array of the standard. */
    uint32_t w[16];
    for (unsigned i = 0; i < 16; i++) {
        w[i] = load_be32(block + 4 * i);
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (unsigned t = 0; t < 80; t++) {
        if (t >= 16) {
            w[t & 15] = rol32(w[(t + 13) & 15] ^ w[(t + 8) & 15] ^ w[(t + 2) & 15] ^ w[t & 15], 1);
        }
        uint32_t f, k;
        if (t < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999u;
        } else if (t < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1u;
        } else if (t < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDCu;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6u;
        }
        uint32_t tmp = rol32(a, 5) + f + e + k + w[t & 15];
        e = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = tmp;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void wsfwd_sha1_init(wsfwd_sha1 *ctx)
{
    ctx->h[0] = 0x67452301u;
    ctx->h[1] = 0xEFCDAB89u;
    ctx->h[2] = 0x98BADCFEu;
    ctx->h[3] = 0x10325476u;
    ctx->h[4] = 0xC3D2E1F0u;
    ctx->total = 0;
    ctx->used = 0;
}

void wsfwd_sha1_update(wsfwd_sha1 *ctx, const void *data, size_t len)
{
    const uint8_t *p = data;
    ctx->total += len;
    if (ctx->used > 0) {
        size_t n = 64 - ctx->used < len ? 64 - ctx->used : len;
        memcpy(ctx->block + ctx->used, p, n);
        ctx->used += n;
        p += n;
        len -= n;
        if (ctx->used < 64) {
            return;
        }
        sha1_block(ctx->h, ctx->block);
        ctx->used = 0;
    }
    for (; len >= 64; p += 64, len -= 64) {
        sha1_block(ctx->h, p);
    }
    if (len > 0) {
        memcpy(ctx->block, p, len);
        ctx->used = len;
    }
}

void wsfwd_sha1_final(wsfwd_sha1 *ctx, uint8_t digest[WSFWD_SHA1_DIGEST_LEN])
{
    uint64_t bits = ctx->total * 8u;
    ctx->block[ctx->used++] = 0x80;
    if (ctx->used > 56) {
        memset(ctx->block + ctx->used, 0, 64 - ctx->used);
        sha1_block(ctx->h, ctx->block);
        ctx->used = 0;
    }
    memset(ctx->block + ctx->used, 0, 56 - ctx->used);
    store_be32(ctx->block + 56, (uint32_t)(bits >> 32));
    store_be32(ctx->block + 60, (uint32_t)bits);
    sha1_block(ctx->h, ctx->block);
    for (unsigned i = 0; i < 5; i++) {
        store_be32(digest + 4 * i, ctx->h[i]);
    }
    memset(ctx, 0, sizeof *ctx);
}
