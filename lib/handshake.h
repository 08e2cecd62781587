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

#endif
