/*
 * libwsfwd: WebSocket (RFC 6455) protocol engine and fan-out pools, with no I/O of its own.
 *
 * The caller owns every socket and every clock. It hands the library the bytes it read
 * (wsfwd_conn_feed), receives events through callbacks, and asks for the bytes to write
 * (wsfwd_conn_output, then wsfwd_conn_consume). Nothing here blocks, reads a clock or
 * touches the network.
 *
 * Threads: objects are not thread-safe. Use a config and the connections made from it
 * from one thread at a time; separate configs in separate threads are independent.
 *
 * Errors: functions that can fail return an int, WSFWD_OK (0) or a negative wsfwd_error.
 * Positive values are never errors (WSFWD_INCOMPLETE).
 */
#ifndef WSFWD_H
#define WSFWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WSFWD_STATIC)
#define WSFWD_API
#elif defined(_WIN32)
#if defined(WSFWD_BUILDING)
#define WSFWD_API __declspec(dllexport)
#else
#define WSFWD_API __declspec(dllimport)
#endif
#else
#define WSFWD_API __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------------------------------ */
/* Version and errors                                                                         */
/* ------------------------------------------------------------------------------------------ */

#define WSFWD_VERSION_MAJOR 0
#define WSFWD_VERSION_MINOR 1
#define WSFWD_VERSION_PATCH 0
#define WSFWD_VERSION_STRING "0.1.0"

/* The version of the library actually linked, e.g. "0.1.0". Static storage. */
WSFWD_API const char *wsfwd_version(void);

typedef enum wsfwd_error {
    WSFWD_OK = 0,
    WSFWD_INCOMPLETE = 1, /* not an error: more input is needed */

    /* Usage and resources */
    WSFWD_ERR_INVALID = -1,  /* an argument is out of range or NULL where it may not be */
    WSFWD_ERR_NOMEM = -2,    /* the allocator returned NULL */
    WSFWD_ERR_NOBUFS = -3,   /* the caller's buffer is too small */
    WSFWD_ERR_STATE = -4,    /* not allowed in the connection's current state */
    WSFWD_ERR_CALLBACK = -5, /* a callback returned non-zero; the connection is failed */
    WSFWD_ERR_RANDOM = -6,   /* the randomness source failed */

    /* HTTP and the opening handshake, server side (each maps to an HTTP status) */
    WSFWD_ERR_HTTP_MALFORMED = -20,   /* 400: not a well-formed HTTP/1.x request */
    WSFWD_ERR_HTTP_TOO_LARGE = -21,   /* 431: the header block passed the size limit */
    WSFWD_ERR_HTTP_METHOD = -22,      /* 405: a method other than GET */
    WSFWD_ERR_HTTP_VERSION = -23,     /* 400: HTTP older than 1.1 */
    WSFWD_ERR_HS_HOST = -24,          /* 400: Host missing or repeated */
    WSFWD_ERR_HS_UPGRADE = -25,       /* 400: Upgrade does not list "websocket" */
    WSFWD_ERR_HS_CONNECTION = -26,    /* 400: Connection does not list "Upgrade" */
    WSFWD_ERR_HS_KEY = -27,           /* 400: Sec-WebSocket-Key missing, repeated or not 16 bytes */
    WSFWD_ERR_HS_VERSION = -28,       /* 426: Sec-WebSocket-Version is not 13 */
    WSFWD_ERR_HS_REFUSED = -29,       /* the application refused the handshake */

    /* The opening handshake, client side (checking the server's response) */
    WSFWD_ERR_HS_STATUS = -40,       /* the status is not 101 */
    WSFWD_ERR_HS_ACCEPT = -41,       /* Sec-WebSocket-Accept missing or wrong */
    WSFWD_ERR_HS_SUBPROTOCOL = -42,  /* a subprotocol the client did not offer */
    WSFWD_ERR_HS_EXTENSION = -43,    /* an extension the client did not offer */
    WSFWD_ERR_HTTP_RESPONSE = -44,   /* not a well-formed HTTP/1.1 response */
    WSFWD_ERR_HS_RESP_UPGRADE = -45, /* Upgrade missing or not "websocket" */
    WSFWD_ERR_HS_RESP_CONNECTION = -46, /* Connection missing or without "Upgrade" */

    /* Frames and messages (each maps to an RFC 6455 close code, see wsfwd_error_close_code) */
    WSFWD_ERR_RSV = -60,                /* 1002: an RSV bit set, no extension negotiated */
    WSFWD_ERR_OPCODE = -61,             /* 1002: a reserved opcode */
    WSFWD_ERR_MASK = -62,               /* 1002: masked from a server or unmasked from a client */
    WSFWD_ERR_LENGTH = -63,             /* 1002: length not minimally encoded, or top bit set */
    WSFWD_ERR_CONTROL_TOO_LONG = -64,   /* 1002: a control frame over 125 bytes */
    WSFWD_ERR_CONTROL_FRAGMENTED = -65, /* 1002: a control frame without FIN */
    WSFWD_ERR_CONTINUATION = -66,       /* 1002: continuation without a message, or a new
                                           data frame inside a fragmented message */
    WSFWD_ERR_CLOSE_PAYLOAD = -67,      /* 1002: a close frame with a 1-byte payload */
    WSFWD_ERR_CLOSE_CODE = -68,         /* 1002: a close code that may not be sent */
    WSFWD_ERR_UTF8 = -69,               /* 1007: text or close reason not valid UTF-8 */
    WSFWD_ERR_TOO_BIG = -70,            /* 1009: a message longer than the limit */
    WSFWD_ERR_CLOSED = -71,             /* the connection is closed; nothing more is sent */
    WSFWD_ERR_QUEUE_FULL = -72,         /* 1008: the peer reads too slowly; its queued output
                                           passed the limit (see wsfwd_config_set_max_queue) */
    WSFWD_ERR_SLOW_TIMEOUT = -73,       /* 1008: its queued output stayed above the high mark
                                           longer than the slow timeout (wsfwd_conn_tick) */
    WSFWD_ERR_WOULD_BLOCK = -74,        /* wsfwd_conn_send: the queue is at its limit; nothing
                                           was queued and the connection is unharmed */

    /* Hub and pools */
    WSFWD_ERR_POOL_NAME = -80,  /* a pool name that is empty, too long or not UTF-8 */
    WSFWD_ERR_POOL_LIMIT = -81, /* the hub already has its maximum number of pools */
    WSFWD_ERR_POOL_FULL = -82,  /* the pool already has its maximum number of members */
    WSFWD_ERR_POOL_GONE = -83,  /* the pool emptied and was freed during wsfwd_hub_foreach;
                                   its pointer is only kept readable until the walk ends */

    /* Room tokens (each maps to 403; see wsfwd_token_verify). -90 to -99 are reserved for
       them, so a caller may count refusals in an array indexed by -90 - err. */
    WSFWD_ERR_TOKEN_TOO_LONG = -90,      /* longer than WSFWD_TOKEN_MAX_LEN: not decoded */
    WSFWD_ERR_TOKEN_MALFORMED = -91,     /* not three base64url parts of JSON objects */
    WSFWD_ERR_TOKEN_ALG = -92,           /* alg missing or not HS256 ("none", HS512...) */
    WSFWD_ERR_TOKEN_SIGNATURE = -93,     /* the signature matches none of the keys */
    WSFWD_ERR_TOKEN_CLAIMS = -94,        /* signed, but exp missing or a claim mistyped */
    WSFWD_ERR_TOKEN_EXPIRED = -95,       /* now is at or past exp */
    WSFWD_ERR_TOKEN_NOT_YET_VALID = -96, /* now is before nbf */
    WSFWD_ERR_TOKEN_ROOM = -97           /* the token does not open this room */
} wsfwd_error;

/* A short English description of an error value; never NULL. Static storage. */
WSFWD_API const char *wsfwd_strerror(int err);

/* The close code an error fails a connection with (1002, 1007, 1008 for a full queue, 1009,
   1011 for callback, memory and randomness failures), or 0 for others. */
WSFWD_API uint16_t wsfwd_error_close_code(int err);

/* The HTTP status a handshake or token error yields (400, 403, 405, 426, 431), or 0 for
   others. */
WSFWD_API int wsfwd_error_http_status(int err);

/* ------------------------------------------------------------------------------------------ */
/* Common types                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* A view of bytes owned by someone else; ptr is NULL and len 0 when absent. */
typedef struct wsfwd_str {
    const char *ptr;
    size_t len;
} wsfwd_str;

/* Same layout as POSIX struct iovec, so an array of these can be passed to writev(). */
typedef struct wsfwd_iovec {
    const void *base;
    size_t len;
} wsfwd_iovec;

/* Optional allocator. Any member left NULL makes the whole struct fall back to libc. */
typedef struct wsfwd_allocator {
    void *(*malloc)(size_t size, void *user_data);
    void *(*realloc)(void *ptr, size_t size, void *user_data);
    void (*free)(void *ptr, void *user_data);
    void *user_data;
} wsfwd_allocator;

/* Randomness source: fill buf with len unpredictable bytes; return 0, or non-zero on failure. */
typedef int (*wsfwd_random_fn)(void *buf, size_t len, void *user_data);

typedef enum wsfwd_role { WSFWD_ROLE_SERVER = 0, WSFWD_ROLE_CLIENT = 1 } wsfwd_role;

typedef enum wsfwd_opcode {
    WSFWD_OP_CONTINUATION = 0x0,
    WSFWD_OP_TEXT = 0x1,
    WSFWD_OP_BINARY = 0x2,
    WSFWD_OP_CLOSE = 0x8,
    WSFWD_OP_PING = 0x9,
    WSFWD_OP_PONG = 0xA
} wsfwd_opcode;

/* Close codes of RFC 6455 section 7.4.1 (1005 and 1006 are never sent on the wire). */
enum {
    WSFWD_CLOSE_NORMAL = 1000,
    WSFWD_CLOSE_GOING_AWAY = 1001,
    WSFWD_CLOSE_PROTOCOL_ERROR = 1002,
    WSFWD_CLOSE_UNSUPPORTED = 1003,
    WSFWD_CLOSE_NO_STATUS = 1005,
    WSFWD_CLOSE_ABNORMAL = 1006,
    WSFWD_CLOSE_INVALID_PAYLOAD = 1007,
    WSFWD_CLOSE_POLICY = 1008,
    WSFWD_CLOSE_TOO_BIG = 1009,
    WSFWD_CLOSE_MANDATORY_EXTENSION = 1010,
    WSFWD_CLOSE_INTERNAL_ERROR = 1011
};

/* True if code may appear in a close frame: 1000-1003, 1007-1014, 3000-4999. */
WSFWD_API bool wsfwd_close_code_is_valid(uint16_t code);

/* ------------------------------------------------------------------------------------------ */
/* Frame codec (RFC 6455 section 5), for callers who want only the wire format                */
/* ------------------------------------------------------------------------------------------ */

#define WSFWD_FRAME_HEADER_MAX 14 /* 2 + 8 length bytes + 4 mask bytes */
#define WSFWD_CONTROL_PAYLOAD_MAX 125

typedef struct wsfwd_frame_header {
    bool fin;
    bool masked;
    uint8_t rsv;         /* RSV1..RSV3 as bits 2..0 */
    uint8_t opcode;      /* wsfwd_opcode, or a reserved value (reported as an error) */
    uint8_t mask[4];     /* valid when masked */
    uint8_t header_len;  /* bytes the header took, 2 to 14 */
    uint64_t payload_len;
} wsfwd_frame_header;

/*
 * Decode one frame header from buf. Returns WSFWD_OK and fills *h, WSFWD_INCOMPLETE when
 * buf holds only part of a header, or the first rule of section 5 the header breaks:
 * WSFWD_ERR_RSV, _OPCODE, _LENGTH, _CONTROL_TOO_LONG, _CONTROL_FRAGMENTED, or _MASK when the
 * masking bit is wrong for a frame sent to `receiver` (a server receives masked frames only,
 * a client unmasked ones only). Continuation rules need state: the connection checks them.
 */
WSFWD_API int wsfwd_frame_parse_header(const uint8_t *buf, size_t len, wsfwd_role receiver,
                                       wsfwd_frame_header *h);

/*
 * Encode a frame header into out (at least WSFWD_FRAME_HEADER_MAX bytes) and return its
 * length. mask is NULL for an unmasked frame (server to client), else the 4-byte key; the
 * payload itself is masked separately with wsfwd_mask().
 */
WSFWD_API size_t wsfwd_frame_encode_header(uint8_t *out, bool fin, wsfwd_opcode opcode,
                                           uint64_t payload_len, const uint8_t mask[4]);

/*
 * XOR data in place with the masking key, starting at key position `offset` (the payload
 * offset of data[0], so a payload can be unmasked in pieces). Works a machine word at a time.
 */
WSFWD_API void wsfwd_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);

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
 * Errors: WSFWD_ERR_INVALID, WSFWD_ERR_NOMEM.
 */
WSFWD_API int wsfwd_request_new(const wsfwd_allocator *alloc, size_t max_size,
                                wsfwd_request **out);
WSFWD_API void wsfwd_request_free(wsfwd_request *req); /* NULL is fine */

/*
 * Feed the next bytes, split anywhere. *consumed gets how many were taken: bytes after the
 * end of the header block are left to the caller (they are the first WebSocket frames).
 * Returns WSFWD_INCOMPLETE (all taken, more needed), WSFWD_OK (a complete, well-formed
 * HTTP/1.x request: check wsfwd_request_status() for whether it is a valid upgrade), or
 * WSFWD_ERR_HTTP_MALFORMED / WSFWD_ERR_HTTP_TOO_LARGE (answer with the status that
 * wsfwd_request_status() gives), WSFWD_ERR_NOMEM or WSFWD_ERR_INVALID. After OK or an error,
 * further feeds return the same result and take nothing. A bare LF ends a line as well as
 * CRLF (RFC 9112 section 2.2).
 */
WSFWD_API int wsfwd_request_feed(wsfwd_request *req, const uint8_t *data, size_t len,
                                 size_t *consumed);

/*
 * The result of checking the request against RFC 6455 section 4.2.1: WSFWD_OK for a valid
 * upgrade, WSFWD_INCOMPLETE before the request is complete, else the first rule it breaks
 * (WSFWD_ERR_HTTP_*, WSFWD_ERR_HS_HOST, _UPGRADE, _CONNECTION, _KEY, _VERSION).
 */
WSFWD_API int wsfwd_request_check(const wsfwd_request *req);

/* The HTTP status to answer with: 101 for a valid upgrade, else 400, 405, 426 or 431; 0 while
   incomplete, 500 after an allocation failure. */
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
 * Errors: WSFWD_ERR_INVALID, WSFWD_ERR_NOBUFS (*len gets the size needed), a request error.
 */
WSFWD_API int wsfwd_request_write_response(const wsfwd_request *req, int status,
                                           const char *subprotocol, char *buf, size_t cap,
                                           size_t *len);

/* --- Client side: the request and the check of the server's response --- */

/*
 * Write a client opening handshake into buf. host and path are required (path starts with
 * '/' and may carry a query); origin and subprotocols (a comma-separated list) may be NULL.
 * key is the WSFWD_KEY_LEN-character key from wsfwd_handshake_key().
 * Errors: WSFWD_ERR_INVALID (a value with CR, LF or NUL, or a missing one), WSFWD_ERR_NOBUFS.
 */
WSFWD_API int wsfwd_client_request_write(const char *host, const char *path,
                                         const char *origin, const char *subprotocols,
                                         const char *key, char *buf, size_t cap, size_t *len);

typedef struct wsfwd_response wsfwd_response;

/* Like wsfwd_request_new, for the server's response to a client handshake. */
WSFWD_API int wsfwd_response_new(const wsfwd_allocator *alloc, size_t max_size,
                                 wsfwd_response **out);
WSFWD_API void wsfwd_response_free(wsfwd_response *resp);

/* Like wsfwd_request_feed; errors are WSFWD_ERR_HTTP_RESPONSE and WSFWD_ERR_HTTP_TOO_LARGE. */
WSFWD_API int wsfwd_response_feed(wsfwd_response *resp, const uint8_t *data, size_t len,
                                  size_t *consumed);

/*
 * Check a complete response against the client's key and offered subprotocols (a
 * comma-separated list, or NULL): status 101, Upgrade, Connection, Sec-WebSocket-Accept,
 * at most one subprotocol and only an offered one, no extension. Returns WSFWD_OK or the
 * first failure (WSFWD_ERR_HS_STATUS, _RESP_UPGRADE, _RESP_CONNECTION, _ACCEPT,
 * _SUBPROTOCOL, _EXTENSION), or WSFWD_INCOMPLETE before the response is complete.
 */
WSFWD_API int wsfwd_response_check(const wsfwd_response *resp, const char *key,
                                   const char *subprotocols);

WSFWD_API int wsfwd_response_status(const wsfwd_response *resp); /* 0 until parsed */
WSFWD_API wsfwd_str wsfwd_response_header(const wsfwd_response *resp, const char *name);
WSFWD_API wsfwd_str wsfwd_response_subprotocol(const wsfwd_response *resp);

/* ------------------------------------------------------------------------------------------ */
/* Configuration, shared by many connections                                                  */
/* ------------------------------------------------------------------------------------------ */

typedef struct wsfwd_config wsfwd_config;
typedef struct wsfwd_conn wsfwd_conn;

/*
 * A new configuration with the defaults: 1 MiB messages, 8 KiB handshake header, no
 * callbacks, the OS randomness source. alloc (may be NULL) is copied and used for the config
 * and every connection made from it. The config must outlive those connections.
 * Errors: WSFWD_ERR_NOMEM.
 */
WSFWD_API int wsfwd_config_new(const wsfwd_allocator *alloc, wsfwd_config **out);
WSFWD_API void wsfwd_config_free(wsfwd_config *cfg); /* NULL is fine */

/* The largest message accepted, reassembled (default 1 MiB); past it the peer gets 1009. */
WSFWD_API int wsfwd_config_set_max_message(wsfwd_config *cfg, size_t bytes);
/* The largest handshake header block (default 8192); past it 431 (server) or an error. */
WSFWD_API int wsfwd_config_set_max_header(wsfwd_config *cfg, size_t bytes);
/* Replace the randomness source (client masks and keys, connection ids). */
WSFWD_API int wsfwd_config_set_random(wsfwd_config *cfg, wsfwd_random_fn fn, void *user_data);
/* Opaque pointer handed to every callback as its last argument. */
WSFWD_API void wsfwd_config_set_user_data(wsfwd_config *cfg, void *user_data);

/*
 * The most output a connection may have queued (default 1 MiB): a hard cap. One message is
 * always accepted into an empty queue, so a connection holds at most this plus one message.
 * Past it the slow-reader policy applies at once to broadcasts, echoes and pongs, and
 * wsfwd_conn_send returns WSFWD_ERR_WOULD_BLOCK. Unless wsfwd_config_set_queue_marks set
 * them, the high and low marks follow it: half and an eighth of it.
 */
WSFWD_API int wsfwd_config_set_max_queue(wsfwd_config *cfg, size_t bytes);

/*
 * Flow control. A connection whose queued output passes the high mark is congested (on_flow
 * WSFWD_FLOW_CONGESTED) until it drains to the low mark (WSFWD_FLOW_DRAINED). While a member
 * of a pool is congested, a member that broadcasts to that pool (the except of
 * wsfwd_pool_broadcast: its sender) is paced (WSFWD_FLOW_PAUSE): stop reading it, so TCP
 * slows it down, until every congested member of the pool drains or leaves
 * (WSFWD_FLOW_RESUME). A connection in WSFWD_MODE_ECHO is paced by its own congestion. A
 * member congested longer than the slow timeout gets the slow-reader policy from
 * wsfwd_conn_tick(). high must be above low and at most the queue limit; (0, 0) goes back to
 * the defaults. Errors: WSFWD_ERR_INVALID.
 */
WSFWD_API int wsfwd_config_set_queue_marks(wsfwd_config *cfg, size_t high, size_t low);

/* How long a connection may stay congested before the slow-reader policy (default 5000 ms;
   0: never, only the queue limit applies). */
WSFWD_API int wsfwd_config_set_slow_timeout(wsfwd_config *cfg, uint32_t ms);

typedef enum wsfwd_slow_policy {
    WSFWD_SLOW_CLOSE = 0, /* fail the connection with 1008 (the default) */
    WSFWD_SLOW_DROP = 1   /* skip messages for that connection only: those that would pass
                             the queue limit; once it is past the slow timeout, those that
                             would pass the high mark, until it drains to the low mark */
} wsfwd_slow_policy;

WSFWD_API int wsfwd_config_set_slow_policy(wsfwd_config *cfg, wsfwd_slow_policy policy);

/*
 * Callbacks. Each may be NULL. A callback returns 0 to go on; non-zero fails the connection
 * with WSFWD_ERR_CALLBACK (close code 1011). Inside any callback the caller may send, close
 * or free any connection, the one being served included: the library notices and stops
 * touching a freed connection.
 */

/*
 * Server role: a complete request arrived (wsfwd_request_check() says whether it is a valid
 * upgrade). Call wsfwd_conn_accept(), wsfwd_conn_refuse() or wsfwd_conn_respond() to decide;
 * if the callback does none of them, a valid upgrade is accepted and an invalid one refused
 * with the status it warrants. The request is valid only during the callback.
 */
typedef int (*wsfwd_on_request_fn)(wsfwd_conn *conn, const wsfwd_request *req, void *ud);

/* The connection is open: the handshake succeeded (both roles). */
typedef int (*wsfwd_on_open_fn)(wsfwd_conn *conn, void *ud);

/*
 * A whole message (text already checked as UTF-8). data is valid only during the callback
 * and may point into the buffer given to wsfwd_conn_feed().
 */
typedef int (*wsfwd_on_message_fn)(wsfwd_conn *conn, wsfwd_opcode opcode, const uint8_t *data,
                                   size_t len, void *ud);

/* A ping or pong arrived (pings are answered automatically; this is only to observe). */
typedef int (*wsfwd_on_control_fn)(wsfwd_conn *conn, wsfwd_opcode opcode, const uint8_t *data,
                                   size_t len, void *ud);

/*
 * The connection closed: the peer's close frame arrived (code 1005 when it had none), or the
 * connection failed (code is the one sent, err says why). Called at most once, and only for a
 * connection that opened: not for a refused handshake, nor when the caller frees it or the
 * peer drops the TCP connection (the caller sees those itself).
 */
typedef void (*wsfwd_on_close_fn)(wsfwd_conn *conn, uint16_t code, const char *reason,
                                  size_t reason_len, int err, void *ud);

/* The connection went from nothing to write to something to write. */
typedef void (*wsfwd_on_output_fn)(wsfwd_conn *conn, void *ud);

typedef enum wsfwd_flow {
    WSFWD_FLOW_PAUSE = 0,     /* stop reading this connection (its peer sends faster than
                                 some recipient reads) */
    WSFWD_FLOW_RESUME = 1,    /* read it again */
    WSFWD_FLOW_CONGESTED = 2, /* its own queued output passed the high mark: start its slow
                                 timer with wsfwd_conn_tick() */
    WSFWD_FLOW_DRAINED = 3    /* its queued output is back at or below the low mark */
} wsfwd_flow;

/* Flow control (see wsfwd_config_set_queue_marks). Each event comes once per transition. */
typedef void (*wsfwd_on_flow_fn)(wsfwd_conn *conn, wsfwd_flow event, void *ud);

WSFWD_API void wsfwd_config_on_request(wsfwd_config *cfg, wsfwd_on_request_fn fn);
WSFWD_API void wsfwd_config_on_open(wsfwd_config *cfg, wsfwd_on_open_fn fn);
WSFWD_API void wsfwd_config_on_message(wsfwd_config *cfg, wsfwd_on_message_fn fn);
WSFWD_API void wsfwd_config_on_control(wsfwd_config *cfg, wsfwd_on_control_fn fn);
WSFWD_API void wsfwd_config_on_close(wsfwd_config *cfg, wsfwd_on_close_fn fn);
WSFWD_API void wsfwd_config_on_output(wsfwd_config *cfg, wsfwd_on_output_fn fn);
WSFWD_API void wsfwd_config_on_flow(wsfwd_config *cfg, wsfwd_on_flow_fn fn);

/* ------------------------------------------------------------------------------------------ */
/* Connection                                                                                 */
/* ------------------------------------------------------------------------------------------ */

typedef enum wsfwd_state {
    WSFWD_STATE_HANDSHAKE = 0, /* waiting for the opening handshake */
    WSFWD_STATE_OPEN = 1,      /* messages flow both ways */
    WSFWD_STATE_CLOSING = 2,   /* we sent a close frame and wait for the peer's */
    WSFWD_STATE_CLOSED = 3     /* nothing more will be sent or delivered; once the output
                                  is written (wsfwd_conn_is_done), close the TCP connection */
} wsfwd_state;

/*
 * A connection in the given role, starting in the handshake. A client then calls
 * wsfwd_conn_client_start(). Errors: WSFWD_ERR_INVALID, WSFWD_ERR_NOMEM, WSFWD_ERR_RANDOM
 * (the connection id is drawn from the randomness source).
 */
WSFWD_API int wsfwd_conn_new(wsfwd_config *cfg, wsfwd_role role, void *user_data,
                             wsfwd_conn **out);

/* Free the connection and its queued output. Safe inside any callback. NULL is fine. */
WSFWD_API void wsfwd_conn_free(wsfwd_conn *conn);

/* Skip the handshake: for bytes that start right after an upgrade done elsewhere. */
WSFWD_API int wsfwd_conn_set_open(wsfwd_conn *conn);

/*
 * Client role: queue the opening handshake for host and path (origin and subprotocols, a
 * comma-separated list, may be NULL). Errors: WSFWD_ERR_STATE, WSFWD_ERR_INVALID,
 * WSFWD_ERR_RANDOM, WSFWD_ERR_NOMEM.
 */
WSFWD_API int wsfwd_conn_client_start(wsfwd_conn *conn, const char *host, const char *path,
                                      const char *origin, const char *subprotocols);

/* Server role, inside on_request: accept, optionally choosing an offered subprotocol. */
WSFWD_API int wsfwd_conn_accept(wsfwd_conn *conn, const char *subprotocol);
/* Server role, inside on_request: refuse with an HTTP status (e.g. 403, 404, 503). */
WSFWD_API int wsfwd_conn_refuse(wsfwd_conn *conn, int status);
/*
 * Server role, inside on_request: answer with a whole HTTP response of your own (a page,
 * a health check). content_type may be NULL for no body type; the body is copied.
 */
WSFWD_API int wsfwd_conn_respond(wsfwd_conn *conn, int status, const char *content_type,
                                 const void *body, size_t body_len);

/*
 * Feed bytes read from the peer, in pieces of any size: every split gives the same events.
 * The library may modify them (it unmasks in place). Returns WSFWD_OK, or the error that
 * failed the connection (the close frame or HTTP error response is then queued and the state
 * is CLOSED; on_close has been called if the connection had opened). Bytes after the
 * connection is closed are ignored. Feeding a connection from inside its own callbacks gives
 * WSFWD_ERR_STATE.
 */
WSFWD_API int wsfwd_conn_feed(wsfwd_conn *conn, uint8_t *data, size_t len);

/*
 * Send a whole message (TEXT, BINARY) or a control frame (PING, PONG: at most 125 bytes).
 * The payload is copied. Text is not checked: sending valid UTF-8 is the caller's duty.
 * Errors: WSFWD_ERR_STATE (still in the handshake), WSFWD_ERR_CLOSED (closing or closed),
 * WSFWD_ERR_WOULD_BLOCK (the queue is at its limit: nothing was queued; send again after
 * writing, e.g. on WSFWD_FLOW_DRAINED), WSFWD_ERR_INVALID, WSFWD_ERR_NOMEM, WSFWD_ERR_RANDOM.
 */
WSFWD_API int wsfwd_conn_send(wsfwd_conn *conn, wsfwd_opcode opcode, const void *data,
                              size_t len);

/*
 * Start the closing handshake: queue a close frame with code (a valid code, or 0 for a close
 * frame without one) and a reason of at most 123 bytes. State becomes CLOSING; nothing is sent
 * after it. Errors: WSFWD_ERR_STATE (still in the handshake), WSFWD_ERR_CLOSED (already
 * closing or closed), WSFWD_ERR_INVALID, WSFWD_ERR_NOMEM.
 */
WSFWD_API int wsfwd_conn_close(wsfwd_conn *conn, uint16_t code, const char *reason,
                               size_t reason_len);

/*
 * The bytes waiting to be written, as up to max segments (in order). Returns how many were
 * filled. The segments stay valid until the next call on this connection.
 */
WSFWD_API size_t wsfwd_conn_output(wsfwd_conn *conn, wsfwd_iovec *iov, size_t max);

/* Tell the connection that n bytes of its output were written (n <= wsfwd_conn_pending). */
WSFWD_API void wsfwd_conn_consume(wsfwd_conn *conn, size_t n);

/* Bytes queued for writing: the connection's backlog. */
WSFWD_API size_t wsfwd_conn_pending(const wsfwd_conn *conn);

/* The queue limit that applies to it (wsfwd_config_set_max_queue). */
WSFWD_API size_t wsfwd_conn_max_queue(const wsfwd_conn *conn);

/* Whether its backlog is above the high mark and has not drained to the low mark since. */
WSFWD_API bool wsfwd_conn_is_congested(const wsfwd_conn *conn);

/* Whether it is paced: do not read from it until WSFWD_FLOW_RESUME. */
WSFWD_API bool wsfwd_conn_is_paced(const wsfwd_conn *conn);

/*
 * The connection's clock, in milliseconds from any fixed origin (a monotonic clock). The
 * first call after it became congested starts its slow timer; a later call at or past
 * the slow timeout applies the slow-reader policy: under WSFWD_SLOW_CLOSE it fails with
 * 1008 (WSFWD_ERR_SLOW_TIMEOUT to on_close); under WSFWD_SLOW_DROP its pool stops pacing
 * senders for it and broadcasts that would put it past the high mark skip it, until it
 * drains to the low mark. *next (may be NULL)
 * gets the time of the next deadline, UINT64_MAX for none. Returns WSFWD_OK, or
 * WSFWD_ERR_SLOW_TIMEOUT when this call applied the policy. Call it from on_flow
 * WSFWD_FLOW_CONGESTED and again at *next.
 */
WSFWD_API int wsfwd_conn_tick(wsfwd_conn *conn, uint64_t now_ms, uint64_t *next);

WSFWD_API wsfwd_state wsfwd_conn_state(const wsfwd_conn *conn);
WSFWD_API wsfwd_role wsfwd_conn_role(const wsfwd_conn *conn);

/* True once the connection is CLOSED and all its output written: close the socket now. */
WSFWD_API bool wsfwd_conn_is_done(const wsfwd_conn *conn);

/* The subprotocol agreed in the handshake (NUL-terminated, "" for none). */
WSFWD_API const char *wsfwd_conn_subprotocol(const wsfwd_conn *conn);

WSFWD_API void *wsfwd_conn_user_data(const wsfwd_conn *conn);
WSFWD_API void wsfwd_conn_set_user_data(wsfwd_conn *conn, void *user_data);

#define WSFWD_ID_LEN 36 /* a UUID: 8-4-4-4-12 lowercase hex digits */

/*
 * The connection's id: a version 4 UUID (RFC 9562) drawn from the randomness source when the
 * connection was made. Writes WSFWD_ID_LEN characters and a NUL.
 */
WSFWD_API void wsfwd_conn_id(const wsfwd_conn *conn, char out[WSFWD_ID_LEN + 1]);

typedef enum wsfwd_mode {
    WSFWD_MODE_CALLBACK = 0, /* messages only go to on_message (the default) */
    WSFWD_MODE_ECHO = 1,     /* every message is also sent back to its sender */
    WSFWD_MODE_FORWARD = 2   /* every message is also broadcast to the connection's pool,
                                except to the sender */
} wsfwd_mode;

/* What the library does with each message before on_message sees it. */
WSFWD_API int wsfwd_conn_set_mode(wsfwd_conn *conn, wsfwd_mode mode);

/* ------------------------------------------------------------------------------------------ */
/* Hub and pools: named groups of connections with one order of messages each                 */
/* ------------------------------------------------------------------------------------------ */

/*
 * A hub owns named pools (rooms). A connection is in at most one pool. A broadcast encodes its
 * frame once and queues a reference to it on every recipient, so every member sees a pool's
 * messages in one order, and none waits for another: a member whose queue passes the limit
 * gets the slow-reader policy. Pools hold server-role connections only.
 *
 * Callbacks (on_join, on_leave, the connections' own, and the functions given to the foreach
 * calls) may join, leave, close or free any connection, broadcast, and release any pool, also
 * in the middle of a broadcast or a foreach; the one thing they must not do is free the hub.
 * - A broadcast to a pool made while that pool is broadcasting (from a callback the running
 *   broadcast caused) is queued and sent when the running one ends, in the order asked, so
 *   every member sees the same order. Broadcasts to other pools are sent at once.
 * - The pool a callback is about (on_join, on_leave, a foreach visit) stays alive until the
 *   callback returns, even if it empties meanwhile; so does a connection handed to one.
 * - A pool that empties during wsfwd_hub_foreach is freed when the walk ends; until then a
 *   stale pointer to it is refused with WSFWD_ERR_POOL_GONE. Outside a walk, a pointer to a
 *   pool is valid until the pool empties (or, if kept, until released and empty).
 */
typedef struct wsfwd_hub wsfwd_hub;
typedef struct wsfwd_pool wsfwd_pool;

typedef enum wsfwd_leave_reason {
    WSFWD_LEAVE_REQUESTED = 0, /* wsfwd_conn_leave(), or a join to another pool */
    WSFWD_LEAVE_CLOSED = 1,    /* the connection stopped being open (close or failure) */
    WSFWD_LEAVE_SLOW = 2,      /* closed by the slow-reader policy */
    WSFWD_LEAVE_FREED = 3      /* the connection was freed */
} wsfwd_leave_reason;

typedef void (*wsfwd_on_join_fn)(wsfwd_pool *pool, wsfwd_conn *conn, void *ud);
typedef void (*wsfwd_on_leave_fn)(wsfwd_pool *pool, wsfwd_conn *conn, wsfwd_leave_reason reason,
                                  void *ud);

/* Counters; fields are only ever appended. */
typedef struct wsfwd_stats {
    uint64_t pools;        /* hub: pools now (1 for a pool's own stats) */
    uint64_t members;      /* connections in the pool(s) now */
    uint64_t messages_in;  /* messages broadcast into the pool(s) */
    uint64_t bytes_in;     /* their payload bytes */
    uint64_t messages_out; /* deliveries: one per recipient per message */
    uint64_t bytes_out;    /* payload bytes delivered */
    uint64_t slow_closes;  /* members closed by the slow-reader policy */
    uint64_t slow_drops;   /* messages skipped for a slow member (drop policy) */
} wsfwd_stats;

/*
 * A hub using cfg (its allocator, randomness, queue limit and slow-reader policy; cfg must
 * outlive the hub). Defaults: pool names of at most 128 bytes, no cap on pools or members.
 * Errors: WSFWD_ERR_INVALID, WSFWD_ERR_NOMEM, WSFWD_ERR_RANDOM.
 */
WSFWD_API int wsfwd_hub_new(wsfwd_config *cfg, wsfwd_hub **out);

/* Free every pool; members are taken out without callbacks (on_leave, on_flow) and stay
   valid, no longer paced by their pool. NULL is fine. */
WSFWD_API void wsfwd_hub_free(wsfwd_hub *hub);

WSFWD_API int wsfwd_hub_set_max_name(wsfwd_hub *hub, size_t bytes);   /* 1 or more */
WSFWD_API int wsfwd_hub_set_max_pools(wsfwd_hub *hub, size_t pools);  /* 0: no cap */
WSFWD_API int wsfwd_hub_set_max_members(wsfwd_hub *hub, size_t per_pool); /* 0: no cap */
WSFWD_API void wsfwd_hub_set_user_data(wsfwd_hub *hub, void *user_data); /* for on_join/leave */
WSFWD_API void wsfwd_hub_on_join(wsfwd_hub *hub, wsfwd_on_join_fn fn);
WSFWD_API void wsfwd_hub_on_leave(wsfwd_hub *hub, wsfwd_on_leave_fn fn);

/*
 * Join conn to the pool with this name, creating the pool if needed; a pool created this way
 * is freed when its last member leaves. conn leaves its current pool first (on_leave with
 * WSFWD_LEAVE_REQUESTED). Errors: WSFWD_ERR_INVALID (a client-role or freed connection),
 * WSFWD_ERR_STATE (closing or closed, or on_leave of the move closed, freed or moved it),
 * WSFWD_ERR_POOL_NAME, WSFWD_ERR_POOL_LIMIT, WSFWD_ERR_POOL_FULL, WSFWD_ERR_NOMEM.
 */
WSFWD_API int wsfwd_hub_join(wsfwd_hub *hub, wsfwd_conn *conn, const char *name, size_t len);

/*
 * The pool with this name, created if needed and kept even while empty, until
 * wsfwd_pool_release(). Errors: WSFWD_ERR_POOL_NAME, WSFWD_ERR_POOL_LIMIT, WSFWD_ERR_NOMEM.
 */
WSFWD_API int wsfwd_hub_pool(wsfwd_hub *hub, const char *name, size_t len, wsfwd_pool **out);

/* The pool with this name, or NULL. */
WSFWD_API wsfwd_pool *wsfwd_hub_find(const wsfwd_hub *hub, const char *name, size_t len);

/*
 * Call fn for every pool until it returns non-zero (that value is returned). fn may do
 * anything a callback may: the pool it is given stays alive until fn returns; pools made
 * meanwhile are not visited, pools that empty meanwhile are not visited again.
 */
WSFWD_API int wsfwd_hub_foreach(wsfwd_hub *hub, int (*fn)(wsfwd_pool *pool, void *ud), void *ud);

/* Counters summed over every pool, past and present. */
WSFWD_API void wsfwd_hub_stats(const wsfwd_hub *hub, wsfwd_stats *out);

/* Stop keeping the pool: it is freed now if empty, else when its last member leaves. */
WSFWD_API void wsfwd_pool_release(wsfwd_pool *pool);

/* Join conn to this pool (like wsfwd_hub_join; also WSFWD_ERR_POOL_GONE). */
WSFWD_API int wsfwd_pool_join(wsfwd_pool *pool, wsfwd_conn *conn);

/* Leave the current pool (on_leave with WSFWD_LEAVE_REQUESTED); nothing if in none. */
WSFWD_API void wsfwd_conn_leave(wsfwd_conn *conn);

/* The pool conn is in, or NULL. */
WSFWD_API wsfwd_pool *wsfwd_conn_pool(const wsfwd_conn *conn);

WSFWD_API wsfwd_hub *wsfwd_pool_hub(const wsfwd_pool *pool);
WSFWD_API wsfwd_str wsfwd_pool_name(const wsfwd_pool *pool); /* valid while the pool lives */
WSFWD_API size_t wsfwd_pool_size(const wsfwd_pool *pool);    /* members now */
WSFWD_API void wsfwd_pool_stats(const wsfwd_pool *pool, wsfwd_stats *out);

/*
 * Call fn for every member until it returns non-zero (that value is returned). fn may leave,
 * close or free any connection; members who join meanwhile are not visited. Errors:
 * WSFWD_ERR_INVALID, WSFWD_ERR_POOL_GONE.
 */
WSFWD_API int wsfwd_pool_foreach(wsfwd_pool *pool, int (*fn)(wsfwd_conn *conn, void *ud),
                                 void *ud);

/*
 * Send a message (TEXT or BINARY) to every open member but except (NULL: to all). The frame is
 * encoded once and shared. *delivered (may be NULL) gets the number of members it was queued
 * for; 0 when the pool is broadcasting already (from a callback): then the message is queued
 * and sent to the members of that time when the running broadcast ends. Errors:
 * WSFWD_ERR_INVALID, WSFWD_ERR_NOMEM, WSFWD_ERR_POOL_GONE.
 */
WSFWD_API int wsfwd_pool_broadcast(wsfwd_pool *pool, wsfwd_opcode opcode, const void *data,
                                   size_t len, const wsfwd_conn *except, size_t *delivered);

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

#define WSFWD_SHA256_LEN 32
#define WSFWD_TOKEN_MAX_LEN 4096 /* longer tokens are refused before any decoding */
#define WSFWD_TOKEN_MAX_ROOMS 32 /* "room" and "rooms" together */
#define WSFWD_TOKEN_STORAGE 3072 /* the decoded claims of a token of WSFWD_TOKEN_MAX_LEN */

/* SHA-256 (FIPS 180-4) of len bytes. data may be NULL when len is 0. */
WSFWD_API void wsfwd_sha256(const void *data, size_t len, uint8_t digest[WSFWD_SHA256_LEN]);

/* HMAC-SHA256 (RFC 2104) of len bytes under a key of any length. */
WSFWD_API void wsfwd_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                                 uint8_t mac[WSFWD_SHA256_LEN]);

/*
 * A verified token's claims. The struct is caller-owned (about 3.6 KiB: keep it on the stack
 * or in your connection) and self-contained: every view in it points into its own storage, and
 * each is also NUL-terminated. So do not copy the struct by value (the copy's views would point
 * into the original); copy the strings you keep.
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
 * byte; "" for the room of the bare /ws). Returns WSFWD_OK or WSFWD_ERR_TOKEN_ROOM.
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

#endif /* WSFWD_H */
