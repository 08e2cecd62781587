/* SHA-1 (FIPS 180-4), only for Sec-WebSocket-Accept. */
#ifndef WSFWD_LIB_SHA1_H
#define WSFWD_LIB_SHA1_H

#include <stddef.h>
#include <stdint.h>

#include "mdhash.h"

#define WSFWD_SHA1_DIGEST_LEN 20

typedef wsfwd_md wsfwd_sha1;

void wsfwd_sha1_init(wsfwd_sha1 *ctx);
void wsfwd_sha1_update(wsfwd_sha1 *ctx, const void *data, size_t len);
void wsfwd_sha1_final(wsfwd_sha1 *ctx, uint8_t digest[WSFWD_SHA1_DIGEST_LEN]);

#endif
