/* SHA-256 (FIPS 180-4 section 6.2) and HMAC-SHA256 (RFC 2104), for room tokens. */
#include "sha256.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u,
    0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu,
    0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu,
    0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u,
    0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u,
    0xc67178f2u};

static uint32_t ror32(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32u - n));
}

static void sha256_block(uint32_t *h, const uint8_t block[64])
{
    /* A 16-word circular schedule instead of the 64-word array of the standard. */
    uint32_t w[16];
    for (unsigned i = 0; i < 16; i++) {
        w[i] = wsfwd_load_be32(block + 4 * i);
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (unsigned t = 0; t < 64; t++) {
        if (t >= 16) {
            uint32_t w15 = w[(t + 1) & 15], w2 = w[(t + 14) & 15];
            uint32_t s0 = ror32(w15, 7) ^ ror32(w15, 18) ^ (w15 >> 3);
            uint32_t s1 = ror32(w2, 17) ^ ror32(w2, 19) ^ (w2 >> 10);
            w[t & 15] += s0 + w[(t + 9) & 15] + s1;
        }
        uint32_t t1 = hh + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) +
                      K[t] + w[t & 15];
        uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

void wsfwd_sha256_init(wsfwd_sha256_ctx *ctx)
{
    static const uint32_t iv[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    wsfwd_md_init(ctx, iv, 8, sha256_block);
}

void wsfwd_sha256_update(wsfwd_sha256_ctx *ctx, const void *data, size_t len)
{
    wsfwd_md_update(ctx, data, len);
}

void wsfwd_sha256_final(wsfwd_sha256_ctx *ctx, uint8_t digest[WSFWD_SHA256_LEN])
{
    wsfwd_md_final(ctx, digest);
}

void wsfwd_sha256(const void *data, size_t len, uint8_t digest[WSFWD_SHA256_LEN])
{
    wsfwd_sha256_ctx ctx;
    wsfwd_sha256_init(&ctx);
    wsfwd_sha256_update(&ctx, data, len);
    wsfwd_sha256_final(&ctx, digest);
}

void wsfwd_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                       uint8_t mac[WSFWD_SHA256_LEN])
{
    /* A key longer than a block is replaced by its digest; a shorter one is zero-padded. */
    uint8_t k[WSFWD_SHA256_BLOCK_LEN] = {0};
    if (key_len > sizeof k) {
        wsfwd_sha256(key, key_len, k);
    } else if (key_len > 0) {
        memcpy(k, key, key_len);
    }
    uint8_t pad[WSFWD_SHA256_BLOCK_LEN];
    uint8_t inner[WSFWD_SHA256_LEN];
    wsfwd_sha256_ctx ctx;

    for (size_t i = 0; i < sizeof pad; i++) {
        pad[i] = (uint8_t)(k[i] ^ 0x36u);
    }
    wsfwd_sha256_init(&ctx);
    wsfwd_sha256_update(&ctx, pad, sizeof pad);
    wsfwd_sha256_update(&ctx, data, len);
    wsfwd_sha256_final(&ctx, inner);

    for (size_t i = 0; i < sizeof pad; i++) {
        pad[i] = (uint8_t)(k[i] ^ 0x5cu);
    }
    wsfwd_sha256_init(&ctx);
    wsfwd_sha256_update(&ctx, pad, sizeof pad);
    wsfwd_sha256_update(&ctx, inner, sizeof inner);
    wsfwd_sha256_final(&ctx, mac);

    /* The key material should not linger on the stack (best effort: no volatile tricks). */
    memset(k, 0, sizeof k);
    memset(pad, 0, sizeof pad);
}
