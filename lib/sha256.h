/* SHA-256 (FIPS 180-4), incremental, for HMAC-SHA256 and room tokens. */
#ifndef WSFWD_LIB_SHA256_H
#define WSFWD_LIB_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "mdhash.h"

/* Internal: hidden in libwsfwd.so like everything not marked WSFWD_API. Applications that
   mint tokens or need a digest use their own crypto library. */

#define WSFWD_SHA256_LEN 32
#define WSFWD_SHA256_BLOCK_LEN 64

typedef wsfwd_md wsfwd_sha256_ctx;

/* SHA-256 (FIPS 180-4) of len bytes. data may be NULL when len is 0. */
void wsfwd_sha256(const void *data, size_t len, uint8_t digest[WSFWD_SHA256_LEN]);

/* HMAC-SHA256 (RFC 2104) of len bytes under a key of any length. */
void wsfwd_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                       uint8_t mac[WSFWD_SHA256_LEN]);

void wsfwd_sha256_init(wsfwd_sha256_ctx *ctx);
void wsfwd_sha256_update(wsfwd_sha256_ctx *ctx, const void *data, size_t len);
/* Writes the digest and wipes the context. */
void wsfwd_sha256_final(wsfwd_sha256_ctx *ctx, uint8_t digest[WSFWD_SHA256_LEN]);

#endif
