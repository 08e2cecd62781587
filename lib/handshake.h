/* Internal helpers of the opening handshake, shared with the connection module. */
#ifndef WSFWD_LIB_HANDSHAKE_H
#define WSFWD_LIB_HANDSHAKE_H

#include <stddef.h>

#include "wsfwd.h"

/* The reason phrase of an HTTP status ("Not Found"), or "Unknown". Static storage. */
const char *wsfwd_http_reason(int status);

/*
 * Write the head of a response that closes the connection:
 *   "HTTP/1.1 <status> <reason>\r\n" "Connection: close\r\n"
 *   ["Content-Type: <content_type>\r\n"] "Content-Length: <body_len>\r\n" [extra] "\r\n"
 * extra, if not NULL, is header lines already terminated by CRLF. The caller appends the
 * body. buf may be NULL when cap is 0 (to ask for the size).
 * Errors: WSFWD_ERR_INVALID (status outside 100-599, a control character in content_type, len
 * NULL), WSFWD_ERR_NOBUFS (*len gets the size needed).
 */
int wsfwd_http_write_head(char *buf, size_t cap, size_t *len, int status, const char *content_type,
                          const char *extra, size_t body_len);

/* The handshake with extensions: what conn.c uses for permessage-deflate. */

/* Every field named name (case-insensitive), in order: the first max into out; returns how
   many there are (0 before the request or response is complete and well-formed). */
size_t wsfwd_request_fields(const wsfwd_request *req, const char *name, wsfwd_str *out, size_t max);
size_t wsfwd_response_fields(const wsfwd_response *resp, const char *name, wsfwd_str *out,
                             size_t max);

/* wsfwd_request_write_response() with a Sec-WebSocket-Extensions field in a 101 when
   extensions is neither NULL nor "" (the caller's checked answer). */
int wsfwd_request_write_response_ext(const wsfwd_request *req, int status, const char *subprotocol,
                                     const char *extensions, char *buf, size_t cap, size_t *len);

/* wsfwd_handshake_write_request() with a Sec-WebSocket-Extensions field (the offer) when
   extensions is neither NULL nor "". */
int wsfwd_handshake_write_request_ext(const char *host, const char *path, const char *origin,
                                      const char *subprotocols, const char *extensions,
                                      const char *key, char *buf, size_t cap, size_t *len);

/* wsfwd_response_check(); with offered_extensions the caller checks the extensions itself. */
int wsfwd_response_check_ext(const wsfwd_response *resp, const char *key, const char *subprotocols,
                             bool offered_extensions);

#endif
