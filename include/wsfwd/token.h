/*
 * libwsfwd: room tokens: JWT HS256 verification and the token of a handshake request.
 * Part of <wsfwd.h>; usable on its own.
 */
#ifndef WSFWD_TOKEN_H
#define WSFWD_TOKEN_H

#include "handshake.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Room tokens (JWT, HS256)                                                                   */
/* ------------------------------------------------------------------------------------------ */

/*
 * A room token is a JSON Web Token (RFC 7519) in the JWS compact form (RFC 7515), signed with
 * HMAC-SHA256 ("alg":"HS256") and a secret shared with the application that mints it. Its
 * claims: "exp" (required) and "nbf" (optional), integer seconds since the epoch; "sub"
 * (optional) a string naming the user; "room" a string and/or "rooms" an array of strings,
 * the rooms it opens ("" is the room of the bare /ws). Other claims and header parameters are
 * ignored, but must still fit the JSON rules below.
 *
 * JSON rules, for the header and the claims alike: one object whose values are strings,
 * numbers, true, false, null or arrays of strings; no nested objects, no duplicate keys, at
 * most 32 members and 64 array strings; strict UTF-8 and escapes (\u surrogate pairs are
 * decoded to UTF-8; lone surrogates and \u0000 are refused). "exp" and "nbf" must be written
 * as integers within int64_t: 1300819380, not 1300819380.0 nor 1.30081938e9.
 * The header must say "alg":"HS256" exactly and carry no "crit".
 *
 * Checks run in this order, and the first that fails is returned: length; the header's form
 * and alg; the base64url of payload and signature; the signature (compared in constant time;
 * the claims are parsed only once it holds); the claims' JSON and types; exp; nbf.
 */

#define WSFWD_TOKEN_MAX_LEN 4096 /* longer tokens are refused before any decoding */
#define WSFWD_TOKEN_MAX_ROOMS 32 /* "room" and "rooms" together */
#define WSFWD_TOKEN_STORAGE 3072 /* the decoded claims of a token of WSFWD_TOKEN_MAX_LEN */

/*
 * A verified token's claims. The struct is caller-owned (about 3.6 KiB: keep it on the stack
 * or in your connection) and self-contained: every view in it points into its own storage, and
 * each is also NUL-terminated. So do not copy the struct by value (the copy's views would point
 * into the original); copy the strings you keep. Frozen (see the ABI rules in wsfwd/base.h):
 * its size and layout never change under one SONAME; new claims would come with a new struct.
 */
typedef struct wsfwd_token {
    int64_t exp; /* seconds since the epoch */
    int64_t nbf; /* valid when has_nbf */
    bool has_nbf;
    wsfwd_str sub;     /* {NULL, 0} when absent; may hold any character but NUL: escape
                          it before logging */
    size_t key_index;  /* which of the keys given to wsfwd_token_verify signed it */
    size_t room_count; /* "room" first, then the "rooms" in order; duplicates kept */
    wsfwd_str rooms[WSFWD_TOKEN_MAX_ROOMS];
    char storage[WSFWD_TOKEN_STORAGE]; /* private: the decoded claims the views point into */
} wsfwd_token;

/*
 * Verify token[0..len) (the compact form, "header.payload.signature", without "Bearer ")
 * against key_count keys of key material each (raw bytes, not base64): a token signed with
 * any of them is accepted, so during a key rotation pass the new key and the old one.
 * now is the caller's clock, in seconds since the epoch: the token is valid while
 * nbf <= now < exp. Nothing is allocated and the token is only read.
 *
 * Returns WSFWD_OK with *out filled, or WSFWD_ERR_TOKEN_TOO_LONG, _MALFORMED, _ALG,
 * _SIGNATURE, _CLAIMS, _EXPIRED, _NOT_YET_VALID, or WSFWD_ERR_INVALID (a NULL pointer, no
 * key, or an empty key). After _EXPIRED and _NOT_YET_VALID, *out holds the authentic claims
 * (to log who it was); after other errors its contents are unspecified.
 */
WSFWD_API int wsfwd_token_verify(const char *token, size_t len, const wsfwd_str *keys,
                                 size_t key_count, int64_t now, wsfwd_token *out);

/*
 * Whether a verified token opens the room with this name (decoded UTF-8, compared byte for
 * byte; "" for the room of the bare /ws). Returns WSFWD_OK or WSFWD_ERR_TOKEN_ROOM, or
 * WSFWD_ERR_INVALID (tok NULL, or room NULL with len > 0).
 * A token with neither "room" nor "rooms" opens no room, though it is valid (e.g. for /echo).
 */
WSFWD_API int wsfwd_token_check_room(const wsfwd_token *tok, const char *room, size_t len);

/*
 * The token a handshake request carries: the credentials of an "Authorization: Bearer ..."
 * header (the scheme matched case-insensitively) if there is one, else the value of the first
 * "token" parameter of the query, taken as is (base64url needs no percent-encoding).
 * {NULL, 0} when there is neither: that is the caller's 401, not an error. The view points
 * into the request (valid as long as it is). An empty value is returned as present, and
 * wsfwd_token_verify refuses it as malformed.
 */
WSFWD_API wsfwd_str wsfwd_request_token(const wsfwd_request *req);

#ifdef __cplusplus
}
#endif

#endif /* WSFWD_TOKEN_H */
