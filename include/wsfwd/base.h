/*
 * libwsfwd: version, errors, the types every other header uses, and the export macro.
 * Include <wsfwd.h> for the whole API, or a header of include/wsfwd/ for one part.
 */
#ifndef WSFWD_BASE_H
#define WSFWD_BASE_H

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

/*
 * ABI rules. The SONAME names the binary-compatible releases: libwsfwd.so.0.2 (major.minor
 * while the major version is 0, when a minor release may break the API) and libwsfwd.so.1
 * from 1.0 on. Under one SONAME: functions and callback types are only added, never removed
 * or changed; enumerators are only added, never renumbered (treat an unknown one as you
 * would an unknown error or event); the opaque types (wsfwd_config, wsfwd_conn, wsfwd_hub,
 * wsfwd_pool, wsfwd_request, wsfwd_response) change freely, as you only hold pointers to
 * them. wsfwd_stats alone may grow, only at its end, and each function that fills it takes
 * the caller's sizeof (wsfwd_hub_stats(hub, &st, sizeof st)): the library writes at most that
 * many bytes, so a caller built against older headers is never overrun, and fields the
 * library does not know are left untouched. wsfwd_deflate_codec and wsfwd_deflate_params grow
 * the same way (only at their end, passed with the caller's sizeof). A size argument rather than a
 * leading size field, because the compiler makes every caller pass it, where a field could be left
 * unset. Every other public struct is frozen, its size and layout fixed: wsfwd_str, wsfwd_iovec,
 * wsfwd_allocator (copied by value by wsfwd_config_new, wsfwd_request_new and
 * wsfwd_response_new), wsfwd_frame_header and wsfwd_token (filled by the library in the
 * caller's storage); a later need gets a new struct and a new function. tests/abi checks this.
 */

/* ------------------------------------------------------------------------------------------ */
/* Version and errors                                                                         */
/* ------------------------------------------------------------------------------------------ */

#define WSFWD_VERSION_MAJOR 0
#define WSFWD_VERSION_MINOR 2
#define WSFWD_VERSION_PATCH 0
#define WSFWD_VERSION_STRING "0.2.0"

/* The version of the library actually linked, e.g. "0.2.0". Static storage. */
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

    /* What the caller asked to send breaks RFC 6455 (nothing was queued) */
    WSFWD_ERR_CONTROL_SIZE = -7,   /* a ping or pong payload over 125 bytes */
    WSFWD_ERR_CLOSE_RESERVED = -8, /* a close code no endpoint may send: 1004-1006, 1015 and the
                                      rest of 1000-2999 that RFC 6455 reserves */
    WSFWD_ERR_CLOSE_RANGE = -9,    /* a close code other than 0 below 1000 or above 4999 */
    WSFWD_ERR_CLOSE_REASON = -10,  /* a close reason over 123 bytes, or one without a code */

    /* HTTP and the opening handshake, server side (each maps to an HTTP status) */
    WSFWD_ERR_HTTP_MALFORMED = -20, /* 400: not a well-formed HTTP/1.x request */
    WSFWD_ERR_HTTP_TOO_LARGE = -21, /* 431: the header block passed the size limit */
    WSFWD_ERR_HTTP_METHOD = -22,    /* 405: a method other than GET */
    WSFWD_ERR_HTTP_VERSION = -23,   /* 400: HTTP older than 1.1 */
    WSFWD_ERR_HS_HOST = -24,        /* 400: Host missing or repeated */
    WSFWD_ERR_HS_UPGRADE = -25,     /* 400: Upgrade does not list "websocket" */
    WSFWD_ERR_HS_CONNECTION = -26,  /* 400: Connection does not list "Upgrade" */
    WSFWD_ERR_HS_KEY = -27,         /* 400: Sec-WebSocket-Key missing, repeated or not 16 bytes */
    WSFWD_ERR_HS_VERSION = -28,     /* 426: Sec-WebSocket-Version is not 13 */
    WSFWD_ERR_HS_REFUSED = -29,     /* the application refused the handshake */
    WSFWD_ERR_PERCENT = -30,        /* 400: a '%' not followed by two hex digits */
    WSFWD_ERR_HS_EXTENSIONS = -31,  /* 400: Sec-WebSocket-Extensions breaks the syntax */

    /* The opening handshake, client side (checking the server's response) */
    WSFWD_ERR_HS_STATUS = -40,          /* the status is not 101 */
    WSFWD_ERR_HS_ACCEPT = -41,          /* Sec-WebSocket-Accept missing or wrong */
    WSFWD_ERR_HS_SUBPROTOCOL = -42,     /* a subprotocol the client did not offer */
    WSFWD_ERR_HS_EXTENSION = -43,       /* an extension the client did not offer */
    WSFWD_ERR_HTTP_RESPONSE = -44,      /* not a well-formed HTTP/1.1 response */
    WSFWD_ERR_HS_RESP_UPGRADE = -45,    /* Upgrade missing or not "websocket" */
    WSFWD_ERR_HS_RESP_CONNECTION = -46, /* Connection missing or without "Upgrade" */

    /* Frames and messages (each maps to an RFC 6455 close code, see wsfwd_error_close_code) */
    WSFWD_ERR_RSV = -60,                /* 1002: an RSV bit set that no extension negotiated
                                           allows (RSV1: permessage-deflate, first frame of
                                           a data message only) */
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
    WSFWD_ERR_HANDSHAKE_TIMEOUT = -75,  /* the opening handshake did not finish in time (either
                                           role; nothing is sent: drop the TCP connection) */
    WSFWD_ERR_PONG_TIMEOUT = -76,       /* 1001: no input within the pong timeout after an
                                           idle ping */
    WSFWD_ERR_CLOSE_TIMEOUT = -77,      /* the closing phase passed the close timeout: drop
                                           the TCP connection now */
    WSFWD_ERR_INFLATE = -78,            /* 1007: a compressed message is not valid DEFLATE */

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

/* The close code an error fails a connection with (1001 for a pong timeout, 1002, 1007, 1008
   for a slow reader, 1009, 1011 for callback, memory and randomness failures), or 0 for
   others. */
WSFWD_API uint16_t wsfwd_error_close_code(int err);

/* The HTTP status a handshake or token error yields (400, 403, 405, 426, 431), or 0 for
   others. A status, not an error code: it has no errors. */
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

/* Optional allocator. Any member left NULL makes the whole struct fall back to libc.
   Frozen (see the ABI rules above): it never grows. */
typedef struct wsfwd_allocator {
    void *(*malloc)(size_t size, void *user_data);
    void *(*realloc)(void *ptr, size_t size, void *user_data);
    void (*free)(void *ptr, void *user_data);
    void *user_data;
} wsfwd_allocator;

/* Randomness source: fill buf with len unpredictable bytes; return 0, or non-zero on failure. */
typedef int (*wsfwd_random_fn)(void *buf, size_t len, void *user_data);

/* The library's objects, opaque to the caller (see the header of each). */
typedef struct wsfwd_config wsfwd_config;
typedef struct wsfwd_conn wsfwd_conn;
typedef struct wsfwd_hub wsfwd_hub;
typedef struct wsfwd_pool wsfwd_pool;

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

#ifdef __cplusplus
}
#endif

#endif /* WSFWD_BASE_H */
