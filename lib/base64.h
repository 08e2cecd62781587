/* Base64 (RFC 4648 section 4, with padding) for handshake keys; base64url for tokens. */
#ifndef WSFWD_LIB_BASE64_H
#define WSFWD_LIB_BASE64_H

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

/* Characters base64url without padding needs for n bytes (without a NUL). */
#define WSFWD_BASE64URL_LEN(n) (((n) / 3) * 4 + ((n) % 3 == 0 ? 0 : (n) % 3 + 1))

/*
 * Encode len bytes as base64url (RFC 4648 section 5) without padding; writes
 * WSFWD_BASE64URL_LEN(len) characters and a NUL; returns the length.
 */
size_t wsfwd_base64url_encode(const uint8_t *src, size_t len, char *dst);

/*
 * Decode strict, unpadded base64url into dst (cap bytes), as JWS (RFC 7515 section 2) wants
 * it. Returns the decoded length, or -1 for a character outside A-Z a-z 0-9 - _ (so '=' and
 * the '+' '/' of plain base64 too), a length of 4k+1, non-zero unused bits in the last
 * character, or a result longer than cap.
 */
long wsfwd_base64url_decode(const char *src, size_t len, uint8_t *dst, size_t cap);

#endif
