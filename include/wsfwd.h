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
 *
 * This header includes all of the API. Each part is also usable alone:
 *   wsfwd/base.h       version, errors, common types (every other part includes it)
 *   wsfwd/frame.h      the frame codec (RFC 6455 section 5)
 *   wsfwd/handshake.h  the opening handshake (RFC 6455 section 4), both roles
 *   wsfwd/conn.h       configuration and connections
 *   wsfwd/hub.h        the hub and its pools (rooms)
 *   wsfwd/deflate.h    permessage-deflate (RFC 7692) with a codec the caller plugs in
 *   wsfwd/token.h      room tokens (JWT, HS256)
 */
#ifndef WSFWD_H
#define WSFWD_H

#include "wsfwd/base.h"
#include "wsfwd/conn.h"
#include "wsfwd/deflate.h"
#include "wsfwd/frame.h"
#include "wsfwd/handshake.h"
#include "wsfwd/hub.h"
#include "wsfwd/token.h"

#endif /* WSFWD_H */
