/* SHA-1 (FIPS 180-4 section 6.1). Used only to compute Sec-WebSocket-Accept. */
#include "sha1.h"

#include <string.h>

static uint32_t rol32(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32u - n));
}

static void sha1_block(uint32_t *h, const uint8_t block[64])
{
    /* A 16-word circular schedule instead of the 80-word array of the standard. */
    uint32_t w[16];
    for (unsigned i = 0; i < 16; i++) {
        w[i] = wsfwd_load_be32(block + 4 * i);
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
    static const uint32_t iv[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
    wsfwd_md_init(ctx, iv, 5, sha1_block);
}

void wsfwd_sha1_update(wsfwd_sha1 *ctx, const void *data, size_t len)
{
    wsfwd_md_update(ctx, data, len);
}

void wsfwd_sha1_final(wsfwd_sha1 *ctx, uint8_t digest[WSFWD_SHA1_DIGEST_LEN])
{
    wsfwd_md_final(ctx, digest);
}
