/* Base64 (RFC 4648 section 4, with padding), for handshake keys. */
#ifndef WSFWD_BASE64_H
#define WSFWD_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters needed to encode n bytes (without a NUL). */
#define WSFWD_BASE64_LEN(n) ((((n) + 2) / 3) * 4)

/* Encode len bytes; writes WSFWD_BASE64_LEN(len) characters and a NUL; returns the length. */
size_t wsfwd_base64_encode(const uint8_t *src, size_t len, char *dst);

/*
 * Decode strict, padded base64 into dst (cap bytes). Returns the decoded length, or -1 for
 * bad characters, bad padding, non-zero pad bits, a length not a multiple of 4, or a result
 * longer than cap.
 */
long wsfwd_base64_decode(const char *src, size_t len, uint8_t *dst, size_t cap);

#endif
