/*
 * libwsfwd: configuration and connections: feed bytes in, get events and bytes to write out.
 * Part of <wsfwd.h>; usable on its own.
 */
#ifndef WSFWD_CONN_H
#define WSFWD_CONN_H

#include "handshake.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Configuration, shared by many connections                                                  */
/* ------------------------------------------------------------------------------------------ */

/*
 * A new configuration with the defaults: 1 MiB messages, 8 KiB handshake header, no
 * callbacks, the OS randomness source. alloc (may be NULL) is copied and used for the config
 * and every connection made from it. The config must outlive those connections.
 * Errors: WSFWD_ERR_INVALID (out is NULL), WSFWD_ERR_NOMEM.
 */
WSFWD_API int wsfwd_config_new(const wsfwd_allocator *alloc, wsfwd_config **out);
WSFWD_API void wsfwd_config_free(wsfwd_config *cfg); /* NULL is fine */

/* The largest message accepted, reassembled (default 1 MiB); past it the peer gets 1009.
   Errors: WSFWD_ERR_INVALID (cfg NULL, or 0 bytes). */
WSFWD_API int wsfwd_config_set_max_message(wsfwd_config *cfg, size_t bytes);
/* The largest handshake header block (default 8192); past it 431 (server) or an error.
   Errors: WSFWD_ERR_INVALID (cfg NULL, or below 256 bytes). */
WSFWD_API int wsfwd_config_set_max_header(wsfwd_config *cfg, size_t bytes);
/* Replace the randomness source (client masks and keys, connection ids).
   Errors: WSFWD_ERR_INVALID (cfg or fn NULL). */
WSFWD_API int wsfwd_config_set_random(wsfwd_config *cfg, wsfwd_random_fn fn, void *user_data);
/* Opaque pointer handed to every callback as its last argument. */
WSFWD_API void wsfwd_config_set_user_data(wsfwd_config *cfg, void *user_data);

/*
 * The most output a connection may have queued (default 1 MiB): a hard cap. One message is
 * always accepted into an empty queue, so a connection holds at most this plus one message.
 * Past it the slow-reader policy applies at once to broadcasts and pongs, and
 * wsfwd_conn_send returns WSFWD_ERR_WOULD_BLOCK. Unless wsfwd_config_set_queue_marks set
 * them, the high and low marks follow it: half and an eighth of it.
 * Errors: WSFWD_ERR_INVALID (cfg NULL, 0 bytes, or below the high mark set explicitly).
 */
WSFWD_API int wsfwd_config_set_max_queue(wsfwd_config *cfg, size_t bytes);

/*
 * Flow control. A connection whose queued output passes the high mark is congested (on_flow
 * WSFWD_FLOW_CONGESTED) until it drains to the low mark (WSFWD_FLOW_DRAINED). While a member
 * of a pool is congested, a member that broadcasts to that pool (the except of
 * wsfwd_pool_broadcast: its sender) is paced (WSFWD_FLOW_PAUSE): stop reading it, so TCP
 * slows it down, until every congested member of the pool drains or leaves
 * (WSFWD_FLOW_RESUME). A connection's own congestion paces nobody by itself: an embedder
 * that echoes stops reading the connection from CONGESTED until DRAINED. A member congested
 * longer than the slow timeout gets the slow-reader policy from wsfwd_conn_tick(). high must
 * be above low and at most the queue limit; (0, 0) goes back to the defaults.
 * Errors: WSFWD_ERR_INVALID.
 */
WSFWD_API int wsfwd_config_set_queue_marks(wsfwd_config *cfg, size_t high, size_t low);

/* How long a connection may stay congested before the slow-reader policy (default 5000 ms;
   0: never, only the queue limit applies). Errors: WSFWD_ERR_INVALID (cfg NULL). */
WSFWD_API int wsfwd_config_set_slow_timeout(wsfwd_config *cfg, uint32_t ms);

/*
 * The deadlines wsfwd_conn_tick() enforces, in milliseconds; 0 turns one off. All are off by
 * default: a caller that never ticks, or ticks only for the slow timeout, sees no change.
 * The wsfwd server's defaults are a reasonable start: handshake 10000, idle 60000, pong
 * 10000, close 5000. Errors: WSFWD_ERR_INVALID (cfg NULL, or ms above 2^31 - 1: 24 days).
 */
WSFWD_API int wsfwd_config_set_handshake_timeout(wsfwd_config *cfg, uint32_t ms);
WSFWD_API int wsfwd_config_set_idle_timeout(wsfwd_config *cfg, uint32_t ms);
WSFWD_API int wsfwd_config_set_pong_timeout(wsfwd_config *cfg, uint32_t ms);
WSFWD_API int wsfwd_config_set_close_timeout(wsfwd_config *cfg, uint32_t ms);

typedef enum wsfwd_slow_policy {
    WSFWD_SLOW_CLOSE = 0, /* fail the connection with 1008 (the default) */
    WSFWD_SLOW_DROP = 1   /* skip messages for that connection only: those that would pass
                             the queue limit; once it is past the slow timeout, those that
                             would pass the high mark, until it drains to the low mark */
} wsfwd_slow_policy;

/* Errors: WSFWD_ERR_INVALID (cfg NULL, or not a wsfwd_slow_policy). */
WSFWD_API int wsfwd_config_set_slow_policy(wsfwd_config *cfg, wsfwd_slow_policy policy);

/*
 * Callbacks. Each may be NULL. A callback returns 0 to go on; non-zero fails the connection
 * with WSFWD_ERR_CALLBACK (close code 1011). Inside any callback the caller may send, close
 * or free any connection, the one being served included: the library notices and stops
 * touching a freed connection. Each callback's state, allowed calls and guarantees:
 * docs/api.md section 10, "The callback contract".
 */

/*
 * Server role: a complete request arrived (wsfwd_request_check() says whether it is a valid
 * upgrade). Call wsfwd_conn_accept(), wsfwd_conn_refuse() or wsfwd_conn_respond() to decide;
 * if the callback does none of them, a valid upgrade is accepted and an invalid one refused
 * with the status it warrants. The request is valid only during the callback (and on_open),
 * unless wsfwd_conn_keep_request() keeps it.
 */
typedef int (*wsfwd_on_request_fn)(wsfwd_conn *conn, const wsfwd_request *req, void *ud);

/*
 * The connection is open: the handshake succeeded (both roles). wsfwd_conn_request() and
 * wsfwd_conn_response() still give the handshake here. The place to join rooms: a connection
 * joined during its handshake leaves again if the handshake fails, so its peers see it join
 * and leave.
 */
typedef int (*wsfwd_on_open_fn)(wsfwd_conn *conn, void *ud);

/*
 * A whole message (text already checked as UTF-8). data is valid only during the callback
 * and may point into the buffer given to wsfwd_conn_feed(). The library does nothing else
 * with it: to echo, wsfwd_conn_send() it back; to forward, wsfwd_pool_broadcast() it to
 * wsfwd_conn_pool(conn) with conn as except.
 */
typedef int (*wsfwd_on_message_fn)(wsfwd_conn *conn, wsfwd_opcode opcode, const uint8_t *data,
                                   size_t len, void *ud);

/* A ping or pong arrived (pings are answered automatically; this is only to observe). */
typedef int (*wsfwd_on_control_fn)(wsfwd_conn *conn, wsfwd_opcode opcode, const uint8_t *data,
                                   size_t len, void *ud);

/*
 * The connection closed: the peer's close frame arrived (code 1005 when it had none), or the
 * connection failed (code is the one sent, err says why), or the peer's close did not come
 * within the close timeout (1006, WSFWD_ERR_CLOSE_TIMEOUT). Called at most once, and only for a
 * connection that opened: not for a refused handshake (wsfwd_conn_feed returns its error; a
 * client reads the server's answer with wsfwd_conn_response), nor when the caller frees it or
 * the peer drops the TCP connection (the caller sees those itself).
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
 * wsfwd_conn_client_start(). Errors: WSFWD_ERR_INVALID (cfg or out NULL, or not a role),
 * WSFWD_ERR_NOMEM, WSFWD_ERR_RANDOM (the connection id is drawn from the randomness source).
 */
WSFWD_API int wsfwd_conn_new(wsfwd_config *cfg, wsfwd_role role, void *user_data, wsfwd_conn **out);

/* Free the connection and its queued output. Safe inside any callback. NULL is fine. */
WSFWD_API void wsfwd_conn_free(wsfwd_conn *conn);

/* Skip the handshake: for bytes that start right after an upgrade done elsewhere.
   Errors: WSFWD_ERR_INVALID (NULL), WSFWD_ERR_STATE (past the handshake, or a client that
   started one). */
WSFWD_API int wsfwd_conn_set_open(wsfwd_conn *conn);

/*
 * Client role: queue the opening handshake for host and path (origin and subprotocols, a
 * comma-separated list, may be NULL). Errors: WSFWD_ERR_STATE (a server, or started already),
 * WSFWD_ERR_INVALID (conn, host or path NULL, or a value wsfwd_handshake_write_request refuses),
 * WSFWD_ERR_RANDOM, WSFWD_ERR_NOMEM.
 */
WSFWD_API int wsfwd_conn_client_start(wsfwd_conn *conn, const char *host, const char *path,
                                      const char *origin, const char *subprotocols);

/*
 * Server role, inside on_request: accept, optionally choosing an offered subprotocol.
 * Errors: WSFWD_ERR_STATE (not inside on_request, or decided already), the request's own
 * error when it is not a valid upgrade (WSFWD_ERR_HTTP_*, WSFWD_ERR_HS_*: see
 * wsfwd_request_check), WSFWD_ERR_INVALID (a subprotocol the client did not offer),
 * WSFWD_ERR_HS_EXTENSIONS (with a deflate codec: Sec-WebSocket-Extensions breaks the syntax;
 * refuse with 400), WSFWD_ERR_NOMEM.
 */
WSFWD_API int wsfwd_conn_accept(wsfwd_conn *conn, const char *subprotocol);
/* Server role, inside on_request: refuse with an HTTP status (e.g. 403, 404, 503).
   Errors: WSFWD_ERR_STATE (as for accept), WSFWD_ERR_INVALID (a status outside 300-599, or
   304), WSFWD_ERR_NOMEM. */
WSFWD_API int wsfwd_conn_refuse(wsfwd_conn *conn, int status);
/*
 * Server role, inside on_request: answer with a whole HTTP response of your own (a page,
 * a health check). content_type may be NULL for no body type; the body is copied.
 * Errors: WSFWD_ERR_STATE (as for accept), WSFWD_ERR_INVALID (a status outside 100-599, a
 * content_type with a control character, body NULL with body_len > 0), WSFWD_ERR_NOMEM.
 */
WSFWD_API int wsfwd_conn_respond(wsfwd_conn *conn, int status, const char *content_type,
                                 const void *body, size_t body_len);

/*
 * Server role: keep the request after the handshake, until the connection is freed, so that
 * wsfwd_conn_request() still gives its path, query and headers later (in on_message, when
 * it leaves a pool...). Call it in on_request (or on_open). What is kept is a compact copy:
 * the bytes received and the parsed fields (typically 1 to 2 KiB), not the parser's buffer;
 * connections that do not ask keep nothing. Errors: WSFWD_ERR_INVALID (NULL),
 * WSFWD_ERR_STATE (client role, or no request held: outside on_request and on_open).
 */
WSFWD_API int wsfwd_conn_keep_request(wsfwd_conn *conn);

/*
 * Server role: the request, inside on_request and on_open, and afterwards until the
 * connection is freed if wsfwd_conn_keep_request() asked for it; else NULL. Views read from
 * it during on_request or on_open die with the handshake: once it ends, the kept request is
 * a copy, so read them again from what this returns then.
 */
WSFWD_API const wsfwd_request *wsfwd_conn_request(const wsfwd_conn *conn);

/*
 * Client role: the server's response to the opening handshake, during on_open, and after a
 * refused or failed handshake (wsfwd_conn_feed returned e.g. WSFWD_ERR_HS_STATUS for a 401
 * or a 503) until the connection is freed: read its status, reason phrase and headers
 * (WWW-Authenticate, Retry-After...) with wsfwd_response_status(), wsfwd_response_reason()
 * and wsfwd_response_header(). The body is not read. NULL otherwise, and when no complete,
 * well-formed response arrived (WSFWD_ERR_HTTP_RESPONSE, WSFWD_ERR_HTTP_TOO_LARGE).
 */
WSFWD_API const wsfwd_response *wsfwd_conn_response(const wsfwd_conn *conn);

/*
 * Feed bytes read from the peer, in pieces of any size: every split gives the same events.
 * The library may modify them (it unmasks in place). Returns WSFWD_OK, or the error that
 * failed the connection (the close frame or HTTP error response is then queued and the state
 * is CLOSED; on_close has been called if the connection had opened). Bytes after the
 * connection is closed are ignored. Errors: WSFWD_ERR_INVALID (conn NULL, or data NULL with
 * len > 0), WSFWD_ERR_STATE (fed from inside its own callbacks), or what failed it: a
 * handshake error (WSFWD_ERR_HTTP_*, WSFWD_ERR_HS_*), a frame or message error
 * (WSFWD_ERR_RSV to WSFWD_ERR_TOO_BIG), WSFWD_ERR_QUEUE_FULL (an echo or pong past the queue
 * limit), WSFWD_ERR_CALLBACK, WSFWD_ERR_NOMEM, WSFWD_ERR_RANDOM (a client's masks).
 */
WSFWD_API int wsfwd_conn_feed(wsfwd_conn *conn, uint8_t *data, size_t len);

/*
 * Send a whole message (TEXT, BINARY) or a control frame (PING, PONG: at most 125 bytes).
 * The payload is copied. Text is not checked: sending valid UTF-8 is the caller's duty.
 * Errors: WSFWD_ERR_CONTROL_SIZE (a ping or pong over 125 bytes), WSFWD_ERR_STATE (still
 * in the handshake), WSFWD_ERR_CLOSED (closing or closed), WSFWD_ERR_WOULD_BLOCK (the queue
 * is at its limit: nothing was queued; send again after writing, e.g. on
 * WSFWD_FLOW_DRAINED), WSFWD_ERR_INVALID (NULL, another opcode), WSFWD_ERR_NOMEM,
 * WSFWD_ERR_RANDOM.
 */
WSFWD_API int wsfwd_conn_send(wsfwd_conn *conn, wsfwd_opcode opcode, const void *data, size_t len);

/*
 * Start the closing handshake: queue a close frame with code (a valid code, or 0 for a close
 * frame without one) and a UTF-8 reason of at most 123 bytes. State becomes CLOSING; nothing
 * is sent after it. Errors: WSFWD_ERR_CLOSE_RANGE (code not 0 and outside 1000-4999),
 * WSFWD_ERR_CLOSE_RESERVED (1004-1006, 1015-2999: codes no endpoint may send),
 * WSFWD_ERR_CLOSE_REASON (a reason over 123 bytes, or a reason with code 0),
 * WSFWD_ERR_STATE (still in the handshake), WSFWD_ERR_CLOSED (already closing or closed),
 * WSFWD_ERR_INVALID (NULL, a reason not valid UTF-8), WSFWD_ERR_NOMEM,
 * WSFWD_ERR_RANDOM (client role: the mask).
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

/* Whether its pool paces it (it broadcast while a member was congested): do not read from it
   until WSFWD_FLOW_RESUME. */
WSFWD_API bool wsfwd_conn_is_paced(const wsfwd_conn *conn);

/*
 * Input fed but not yet read. A connection that negotiated permessage-deflate can inflate one
 * feed into far more than its size, so when such a connection becomes paced during a feed,
 * the library stops at the next frame boundary and holds the rest of that feed (plain
 * connections read every feed whole: what one adds to the queues is bounded by its size).
 * After WSFWD_FLOW_RESUME, call wsfwd_conn_feed(conn, NULL, 0) (or feed your next read: held
 * bytes come first) while this is not 0. A feed made while still paced is read whole. 0 once
 * the connection is closed (WSFWD_STATE_CLOSED): it never reads what it held.
 */
WSFWD_API size_t wsfwd_conn_held(const wsfwd_conn *conn);

/*
 * The connection's clock. The library reads no clock: the caller passes now_ms, milliseconds
 * from any fixed origin of a monotonic clock (only differences matter, taken modulo 2^32, so
 * a clock that wraps at 32 bits works too; a connection must be ticked at least every 24
 * days). *next (may be NULL) gets when to call again: the earliest deadline, UINT64_MAX for
 * none (next - now_ms is the wait; it may be 0: call again at once).
 *
 * Each deadline counts from the first tick that sees what starts it, so it never fires
 * early: call wsfwd_conn_tick right after creating the connection, after each wsfwd_conn_feed
 * (input fed since the last tick counts as arriving at this tick's now), after anything else
 * that may change its state (wsfwd_conn_close, a callback about it), and at *next. At most
 * one deadline acts per call. The deadlines (wsfwd_config_set_*_timeout; 0 turns one off):
 *
 * - handshake: the opening handshake is not over in time (server: no complete request; client:
 *   no response). Nothing is sent (no 408: like most servers, it just hangs up); queued output
 *   is dropped and the state is CLOSED, so wsfwd_conn_is_done is true. Returns
 *   WSFWD_ERR_HANDSHAKE_TIMEOUT; on_close is not called (it never opened).
 * - idle and pong: an open connection without input for the idle timeout gets a ping (empty
 *   payload). If no input at all follows within the pong timeout (any bytes count, not only
 *   the pong: a pong may wait behind a long message), it fails with 1001 (going away):
 *   the close frame is queued, the state is CLOSED, on_close gets 1001 and
 *   WSFWD_ERR_PONG_TIMEOUT, and so does the caller. Hang up once the close frame is written,
 *   or at once. With a pong timeout of 0 a quiet peer is pinged every idle timeout.
 * - close: from the first tick that sees it CLOSING or CLOSED (our close frame, the peer's,
 *   a failure, a refused handshake), the close timeout bounds the rest: then queued output
 *   is dropped, a CLOSING connection becomes CLOSED (on_close: 1006, WSFWD_ERR_CLOSE_TIMEOUT),
 *   and the call returns WSFWD_ERR_CLOSE_TIMEOUT, once: close the TCP connection now, even
 *   if you were waiting for the peer to close its side.
 * - slow (wsfwd_config_set_slow_timeout): a pool member congested this long gets the
 *   slow-reader policy: under WSFWD_SLOW_CLOSE it fails with 1008 (WSFWD_ERR_SLOW_TIMEOUT to
 *   on_close); under WSFWD_SLOW_DROP its pool stops pacing senders for it and broadcasts
 *   that would put it past the high mark skip it, until it drains to the low mark. Its timer
 *   starts at the first tick after WSFWD_FLOW_CONGESTED (tick it from on_flow).
 *
 * Callbacks may run inside (on_close, on_flow, on_leave, on_output) and may free the
 * connection: the call then returns without touching it. Returns WSFWD_OK (a ping may have
 * been queued), or what this call did: WSFWD_ERR_HANDSHAKE_TIMEOUT, WSFWD_ERR_PONG_TIMEOUT,
 * WSFWD_ERR_CLOSE_TIMEOUT, WSFWD_ERR_SLOW_TIMEOUT; WSFWD_ERR_NOMEM or WSFWD_ERR_RANDOM when
 * queueing the ping failed (the connection failed with 1011); WSFWD_ERR_INVALID for NULL.
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
 * The connection's id: a version 4 UUID (RFC 9562). Its 122 bits are a keyed hash (SipHash)
 * of the connection's serial number in the config, under a 16-byte key the config's first
 * connection drew from the randomness source: unpredictable without the key, the same for
 * every call, and two connections of a config share one only with the odds of two random
 * 122-bit values being equal. Writes WSFWD_ID_LEN characters
 * and a NUL.
 */
WSFWD_API void wsfwd_conn_id(const wsfwd_conn *conn, char out[WSFWD_ID_LEN + 1]);

#ifdef __cplusplus
}
#endif

#endif /* WSFWD_CONN_H */
