/*
 * libwsfwd: the opening handshake (RFC 6455 section 4), both roles.
 * Part of <wsfwd.h>; usable on its own.
 */
#ifndef WSFWD_HANDSHAKE_H
#define WSFWD_HANDSHAKE_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Opening handshake (RFC 6455 section 4)                                                     */
/* ------------------------------------------------------------------------------------------ */

#define WSFWD_KEY_LEN 24    /* base64 of 16 bytes */
#define WSFWD_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

/* Sec-WebSocket-Accept for a key: writes WSFWD_ACCEPT_LEN characters and a NUL to out. */
WSFWD_API void wsfwd_handshake_accept(const char *key, size_t key_len,
                                      char out[WSFWD_ACCEPT_LEN + 1]);

/* A client key from 16 random bytes: writes WSFWD_KEY_LEN characters and a NUL to out. */
WSFWD_API void wsfwd_handshake_key(const uint8_t nonce[16], char out[WSFWD_KEY_LEN + 1]);

/* --- Server side: the incremental HTTP/1.1 request parser --- */

typedef struct wsfwd_request wsfwd_request;

/*
 * A parser for one request. max_size bounds the header block (0 means the default, 8192);
 * alloc may be NULL. The request owns its copy of the header bytes; every wsfwd_str it
 * returns points into it and stays valid until wsfwd_request_free().
 * Errors: WSFWD_ERR_INVALID (out NULL), WSFWD_ERR_NOMEM.
 */
WSFWD_API int wsfwd_request_new(const wsfwd_allocator *alloc, size_t max_size, wsfwd_request **out);
WSFWD_API void wsfwd_request_free(wsfwd_request *req); /* NULL is fine */

/*
 * A copy of a complete request (wsfwd_request_feed returned WSFWD_OK) that the caller owns
 * and frees with wsfwd_request_free(): it keeps the request's fields, e.g. past on_request.
 * It holds only the bytes received, not the parser's buffer; alloc may be NULL (libc). The
 * views of req stay req's: read them again from the copy.
 * Errors: WSFWD_ERR_INVALID (NULL, a request not complete and well-formed), WSFWD_ERR_NOMEM.
 */
WSFWD_API int wsfwd_request_copy(const wsfwd_request *req, const wsfwd_allocator *alloc,
                                 wsfwd_request **out);

/*
 * Feed the next bytes, split anywhere. *consumed gets how many were taken: bytes after the
 * end of the header block are left to the caller (they are the first WebSocket frames).
 * Returns WSFWD_INCOMPLETE (all taken, more needed), WSFWD_OK (a complete, well-formed
 * HTTP/1.x request: check wsfwd_request_status() for whether it is a valid upgrade), or
 * WSFWD_ERR_HTTP_MALFORMED / WSFWD_ERR_HTTP_TOO_LARGE (answer with the status that
 * wsfwd_request_status() gives), WSFWD_ERR_NOMEM or WSFWD_ERR_INVALID (req or consumed NULL,
 * or data NULL with len > 0). After OK or an error,
 * further feeds return the same result and take nothing. A bare LF ends a line as well as
 * CRLF (RFC 9112 section 2.2).
 */
WSFWD_API int wsfwd_request_feed(wsfwd_request *req, const uint8_t *data, size_t len,
                                 size_t *consumed);

/*
 * The result of checking the request against RFC 6455 section 4.2.1: WSFWD_OK for a valid
 * upgrade, WSFWD_INCOMPLETE before the request is complete, else the first rule it breaks
 * (WSFWD_ERR_HTTP_*, WSFWD_ERR_HS_HOST, _UPGRADE, _CONNECTION, _KEY, _VERSION), the error
 * wsfwd_request_feed returned (WSFWD_ERR_NOMEM too), or WSFWD_ERR_INVALID (req NULL).
 */
WSFWD_API int wsfwd_request_check(const wsfwd_request *req);

/* The HTTP status to answer with: 101 for a valid upgrade, else 400, 405, 426 or 431; 0 while
   incomplete or for NULL, 500 after an allocation failure. A status: it has no errors. */
WSFWD_API int wsfwd_request_status(const wsfwd_request *req);

/* True if the request asked for a WebSocket upgrade at all (an Upgrade header is present). */
WSFWD_API bool wsfwd_request_is_upgrade(const wsfwd_request *req);

WSFWD_API wsfwd_str wsfwd_request_method(const wsfwd_request *req);
WSFWD_API wsfwd_str wsfwd_request_target(const wsfwd_request *req); /* path and query */
WSFWD_API wsfwd_str wsfwd_request_path(const wsfwd_request *req);   /* before '?', raw */
WSFWD_API wsfwd_str wsfwd_request_query(const wsfwd_request *req);  /* after '?', raw */
WSFWD_API wsfwd_str wsfwd_request_host(const wsfwd_request *req);
WSFWD_API wsfwd_str wsfwd_request_origin(const wsfwd_request *req);
WSFWD_API wsfwd_str wsfwd_request_key(const wsfwd_request *req);

/* The value of the first header with this name (case-insensitive), trimmed; absent: {0}. */
WSFWD_API wsfwd_str wsfwd_request_header(const wsfwd_request *req, const char *name);

/*
 * Percent-decode (RFC 3986 section 2.1) len bytes of in, e.g. a path segment: each %XX
 * (hex digits in either case) becomes its byte, every other byte is copied; '+' stays '+'.
 * The result is never longer than the input, so cap >= len always suffices, and out may be
 * in (decoding in place). It may hold any byte, NUL included: check it (UTF-8, length) as
 * the use requires. *out_len gets the decoded length. Nothing is written on an error.
 * Errors: WSFWD_ERR_PERCENT (a '%' not followed by two hex digits), WSFWD_ERR_NOBUFS
 * (*out_len gets the size needed), WSFWD_ERR_INVALID (out_len NULL, in or out NULL with a
 * length).
 */
WSFWD_API int wsfwd_percent_decode(const char *in, size_t len, char *out, size_t cap,
                                   size_t *out_len);

/* The subprotocols offered in Sec-WebSocket-Protocol headers, in order. */
WSFWD_API size_t wsfwd_request_subprotocol_count(const wsfwd_request *req);
WSFWD_API wsfwd_str wsfwd_request_subprotocol(const wsfwd_request *req, size_t index);

/*
 * Write the response for this request into buf and set *len. status 101 writes the
 * Switching Protocols response with Sec-WebSocket-Accept (and Sec-WebSocket-Protocol when
 * subprotocol is neither NULL nor "": it must be one the client offered, compared exactly,
 * else WSFWD_ERR_INVALID); it fails with the request's own error if the request is not a
 * valid upgrade. Any other status from 200 to 599 but 204 and 304 (which may carry no body)
 * writes a short plain-text response with "Connection: close"; 426 adds
 * "Sec-WebSocket-Version: 13" and 405 adds "Allow: GET".
 * Errors: WSFWD_ERR_INVALID (req or len NULL, buf NULL with cap > 0, a status out of range,
 * an incomplete request, a subprotocol not offered), WSFWD_ERR_NOBUFS (*len gets the size
 * needed), for 101 the request's own error (see wsfwd_request_check).
 */
WSFWD_API int wsfwd_request_write_response(const wsfwd_request *req, int status,
                                           const char *subprotocol, char *buf, size_t cap,
                                           size_t *len);

/* --- Client side: the request and the check of the server's response --- */

/*
 * Write a client opening handshake into buf. host and path are required (path starts with
 * '/' and may carry a query); origin and subprotocols (a comma-separated list) may be NULL.
 * key is the WSFWD_KEY_LEN-character key from wsfwd_handshake_key().
 * Errors: WSFWD_ERR_INVALID (a value with CR, LF or NUL, or a missing one; a path not
 * starting with '/' or with a space or non-ASCII byte; a key that is not WSFWD_KEY_LEN
 * characters of base64; len NULL, or buf NULL with cap > 0), WSFWD_ERR_NOBUFS (*len gets the
 * size needed).
 */
WSFWD_API int wsfwd_handshake_write_request(const char *host, const char *path, const char *origin,
                                            const char *subprotocols, const char *key, char *buf,
                                            size_t cap, size_t *len);

typedef struct wsfwd_response wsfwd_response;

/* Like wsfwd_request_new, for the server's response to a client handshake.
   Errors: WSFWD_ERR_INVALID (out NULL), WSFWD_ERR_NOMEM. */
WSFWD_API int wsfwd_response_new(const wsfwd_allocator *alloc, size_t max_size,
                                 wsfwd_response **out);
WSFWD_API void wsfwd_response_free(wsfwd_response *resp);

/* Like wsfwd_request_feed (WSFWD_INCOMPLETE, WSFWD_OK). Errors: WSFWD_ERR_HTTP_RESPONSE,
   WSFWD_ERR_HTTP_TOO_LARGE, WSFWD_ERR_NOMEM, WSFWD_ERR_INVALID (as for the request). */
WSFWD_API int wsfwd_response_feed(wsfwd_response *resp, const uint8_t *data, size_t len,
                                  size_t *consumed);

/*
 * Check a complete response against the client's key and offered subprotocols (a
 * comma-separated list, or NULL): status 101, Upgrade, Connection, Sec-WebSocket-Accept,
 * at most one subprotocol and only an offered one, no extension. Returns WSFWD_OK or the
 * first failure (WSFWD_ERR_HS_STATUS, _RESP_UPGRADE, _RESP_CONNECTION, _ACCEPT,
 * _SUBPROTOCOL, _EXTENSION), WSFWD_INCOMPLETE before the response is complete, the error
 * wsfwd_response_feed returned, or WSFWD_ERR_INVALID (resp or key NULL).
 */
WSFWD_API int wsfwd_response_check(const wsfwd_response *resp, const char *key,
                                   const char *subprotocols);

/* The response's status code, 0 until parsed (or for NULL). A status: it has no errors. */
WSFWD_API int wsfwd_response_status(const wsfwd_response *resp);
/* The status line's reason phrase ("Forbidden"), empty if the server sent none; absent
   ({NULL, 0}) until parsed. */
WSFWD_API wsfwd_str wsfwd_response_reason(const wsfwd_response *resp);
/* The value of the first header with this name (case-insensitive), trimmed; absent: {0}. */
WSFWD_API wsfwd_str wsfwd_response_header(const wsfwd_response *resp, const char *name);
WSFWD_API wsfwd_str wsfwd_response_subprotocol(const wsfwd_response *resp);

#ifdef __cplusplus
}
#endif

#endif /* WSFWD_HANDSHAKE_H */
