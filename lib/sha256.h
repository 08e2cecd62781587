/* SHA-256 (FIPS 180-4), incremental, for HMAC-SHA256 and room tokens. */
#ifndef WSFWD_SHA256_H
#define WSFWD_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "wsfwd.h" /* WSFWD_SHA256_LEN, and the one-shot wsfwd_sha256 / wsfwd_hmac_sha256 */

#define WSFWD_SHA256_BLOCK_LEN 64

typedef struct wsfwd_sha256_ctx {
    uint32_t h[8];
    uint64_t total;    /* bytes hashed so far */
    uint8_t block[64]; /* the partial block */
    size_t used;       /* bytes in block */
} wsfwd_sha256_ctx;

void wsfwd_sha256_init(wsfwd_sha256_ctx *ctx);
void wsfwd_sha256_update(wsfwd_sha256_ctx *ctx, const void *data, size_t len);
/* Writes the digest and wipes the context. */
void wsfwd_sha256_final(wsfwd_sha256_ctx *ctx, uint8_t digest[WSFWD_SHA256_LEN]);

#endif
