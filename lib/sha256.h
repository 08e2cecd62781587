/* SHA-256 (FIPS 180-4), incremental, for HMAC-SHA256 and room tokens. */
#ifndef WSFWD_LIB_SHA256_H
#define WSFWD_LIB_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "mdhash.h"
#include "wsfwd.h" /* WSFWD_SHA256_LEN, and the one-shot wsfwd_sha256 / wsfwd_hmac_sha256 */

#define WSFWD_SHA256_BLOCK_LEN 64

typedef wsfwd_md wsfwd_sha256_ctx;

void wsfwd_sha256_init(wsfwd_sha256_ctx *ctx);
void wsfwd_sha256_update(wsfwd_sha256_ctx *ctx, const void *data, size_t len);
/* Writes the digest and wipes the context. */
void wsfwd_sha256_final(wsfwd_sha256_ctx *ctx, uint8_t digest[WSFWD_SHA256_LEN]);

#endif
