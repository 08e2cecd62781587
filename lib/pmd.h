/*
 * permessage-deflate negotiation (RFC 7692 sections 5 to 7): the server's choice among the
 * offers of a Sec-WebSocket-Extensions request header and its answer; the client's offer and
 * its check of the answer. Pure text in, parameters and text out: no allocation, no state.
 *
 * Syntax (RFC 6455 section 9.1, with RFC 9110's lists): every field value is a comma-separated
 * list of extensions, `name *( ";" param )`, `param = token [ "=" ( token / quoted-string ) ]`,
 * with optional white space around the separators; empty list elements are ignored; a
 * quoted value is unescaped and must then be a token. Several fields read as one list, in
 * order. Names compare exactly (the registered names are lower case).
 *
 * An offer of permessage-deflate is declined (the next one is tried) when a parameter is
 * unknown or repeated, when a no_context_takeover parameter has a value, or when a window
 * size is not a decimal integer from 8 to 15 without leading zeros (server_max_window_bits
 * needs one; client_max_window_bits may come without). Other extensions are skipped.
 */
#ifndef WSFWD_LIB_PMD_H
#define WSFWD_LIB_PMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsfwd.h"

#define WSFWD_PMD_NAME "permessage-deflate"
#define WSFWD_PMD_MIN_BITS 8
#define WSFWD_PMD_MAX_BITS 15

/* The outcome of a negotiation: how each side compresses. */
typedef struct wsfwd_pmd_params {
    bool server_no_context_takeover; /* the server resets its compressor after each message */
    bool client_no_context_takeover; /* the client does */
    uint8_t server_max_window_bits;  /* the server's compressor window, 8..15 */
    uint8_t client_max_window_bits;  /* the client's */
} wsfwd_pmd_params;

/* What the server accepts and asks. */
typedef struct wsfwd_pmd_policy {
    /* Ask the client to reset its context after each message (RFC 7692 section 7.1.1.2): no
       inflate context to keep per connection between its messages. */
    bool client_no_context_takeover;
    /* The server always answers server_no_context_takeover, so that one compressed frame can
       be shared by every member that negotiated the same parameters. */
    uint8_t server_max_window_bits; /* the largest window the server's compressor uses */
    uint8_t server_min_window_bits; /* the smallest it can honour (zlib: 9); smaller asks decline */
    uint8_t client_max_window_bits; /* asked of a client that offers client_max_window_bits */
} wsfwd_pmd_policy;

/* A policy with every field at its default: no client_no_context_takeover, windows 15, the
   smallest honoured 8. */
void wsfwd_pmd_policy_init(wsfwd_pmd_policy *p);

/*
 * Server: read the Sec-WebSocket-Extensions field values (n of them, in order) and choose
 * the first acceptable offer of permessage-deflate under policy. Returns 1 when one is
 * accepted: *out says how each side compresses, and buf (cap bytes) holds the response's
 * field value, "permessage-deflate; server_no_context_takeover[; ...]" (NUL-terminated;
 * WSFWD_PMD_TEXT_MAX bytes are always enough, else WSFWD_ERR_NOBUFS). Returns 0 when no offer
 * is acceptable (answer no extension), or WSFWD_ERR_HTTP_MALFORMED when the fields break the
 * syntax (the handshake answers 400).
 */
#define WSFWD_PMD_TEXT_MAX 160
int wsfwd_pmd_accept(const wsfwd_str *values, size_t n, const wsfwd_pmd_policy *policy,
                     wsfwd_pmd_params *out, char *buf, size_t cap);

/*
 * Client: the offer for the request's Sec-WebSocket-Extensions field. want gives what the
 * client asks: its own no_context_takeover and window (offered as client_max_window_bits,
 * always present so the server may lower it), and the server's (offered only when not the
 * defaults). Writes at most cap bytes (NUL-terminated) and returns the length, or WSFWD_ERR_NOBUFS.
 */
int wsfwd_pmd_write_offer(const wsfwd_pmd_params *want, char *buf, size_t cap);

/*
 * Client: check the response's Sec-WebSocket-Extensions field values against the offer made
 * from want. Returns 1 and fills *out when the server accepted permessage-deflate, 0 when it
 * answered no extension, and WSFWD_ERR_HS_EXTENSION when the answer names another extension,
 * names one twice, breaks the syntax, or has parameters the offer does not allow (a larger
 * window than offered, client_max_window_bits without a value or not offered, a missing
 * server_no_context_takeover that was offered): the client fails the connection.
 */
int wsfwd_pmd_check_response(const wsfwd_str *values, size_t n, const wsfwd_pmd_params *want,
                             wsfwd_pmd_params *out);

#endif
