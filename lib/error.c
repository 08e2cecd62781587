/* Error values, their descriptions, and how they map to close codes and HTTP statuses. */
#include "wsfwd.h"

const char *wsfwd_version(void)
{
    return WSFWD_VERSION_STRING;
}

const char *wsfwd_strerror(int err)
{
    switch (err) {
    case WSFWD_OK: return "success";
    case WSFWD_INCOMPLETE: return "more input is needed";
    case WSFWD_ERR_INVALID: return "invalid argument";
    case WSFWD_ERR_NOMEM: return "out of memory";
    case WSFWD_ERR_NOBUFS: return "buffer too small";
    case WSFWD_ERR_STATE: return "not allowed in the connection's current state";
    case WSFWD_ERR_CALLBACK: return "a callback failed";
    case WSFWD_ERR_RANDOM: return "the randomness source failed";
    case WSFWD_ERR_CONTROL_SIZE: return "ping or pong payload longer than 125 bytes";
    case WSFWD_ERR_CLOSE_RESERVED: return "reserved close code: it may not be sent";
    case WSFWD_ERR_CLOSE_RANGE: return "close code out of range (1000-4999)";
    case WSFWD_ERR_CLOSE_REASON: return "close reason longer than 123 bytes or without a code";
    case WSFWD_ERR_HTTP_MALFORMED: return "malformed HTTP request";
    case WSFWD_ERR_HTTP_TOO_LARGE: return "HTTP header block too large";
    case WSFWD_ERR_HTTP_METHOD: return "HTTP method is not GET";
    case WSFWD_ERR_HTTP_VERSION: return "HTTP version older than 1.1";
    case WSFWD_ERR_HS_HOST: return "Host header missing or repeated";
    case WSFWD_ERR_HS_UPGRADE: return "Upgrade header does not name websocket";
    case WSFWD_ERR_HS_CONNECTION: return "Connection header does not name Upgrade";
    case WSFWD_ERR_HS_KEY: return "Sec-WebSocket-Key missing, repeated or not 16 bytes";
    case WSFWD_ERR_HS_VERSION: return "Sec-WebSocket-Version is not 13";
    case WSFWD_ERR_HS_REFUSED: return "handshake refused by the application";
    case WSFWD_ERR_PERCENT: return "bad percent-encoding";
    case WSFWD_ERR_HS_EXTENSIONS: return "malformed Sec-WebSocket-Extensions";
    case WSFWD_ERR_HS_STATUS: return "handshake response status is not 101";
    case WSFWD_ERR_HS_ACCEPT: return "Sec-WebSocket-Accept missing or wrong";
    case WSFWD_ERR_HS_SUBPROTOCOL: return "server chose a subprotocol that was not offered";
    case WSFWD_ERR_HS_EXTENSION: return "server chose an extension that was not offered";
    case WSFWD_ERR_HTTP_RESPONSE: return "malformed HTTP response";
    case WSFWD_ERR_HS_RESP_UPGRADE: return "response Upgrade header does not name websocket";
    case WSFWD_ERR_HS_RESP_CONNECTION: return "response Connection header does not name Upgrade";
    case WSFWD_ERR_RSV: return "reserved bit set that no negotiated extension allows";
    case WSFWD_ERR_OPCODE: return "reserved opcode";
    case WSFWD_ERR_MASK: return "wrong masking for this direction";
    case WSFWD_ERR_LENGTH: return "frame length not minimally encoded or too large";
    case WSFWD_ERR_CONTROL_TOO_LONG: return "control frame longer than 125 bytes";
    case WSFWD_ERR_CONTROL_FRAGMENTED: return "fragmented control frame";
    case WSFWD_ERR_CONTINUATION: return "unexpected continuation or data frame";
    case WSFWD_ERR_CLOSE_PAYLOAD: return "close frame with a 1-byte payload";
    case WSFWD_ERR_CLOSE_CODE: return "invalid close code";
    case WSFWD_ERR_UTF8: return "invalid UTF-8";
    case WSFWD_ERR_TOO_BIG: return "message too big";
    case WSFWD_ERR_CLOSED: return "connection closed";
    case WSFWD_ERR_QUEUE_FULL: return "slow reader: output queue full";
    case WSFWD_ERR_SLOW_TIMEOUT: return "slow reader: output backlog for too long";
    case WSFWD_ERR_WOULD_BLOCK: return "output queue full: try again once it drains";
    case WSFWD_ERR_HANDSHAKE_TIMEOUT: return "opening handshake timed out";
    case WSFWD_ERR_PONG_TIMEOUT: return "no pong before the deadline";
    case WSFWD_ERR_CLOSE_TIMEOUT: return "closing handshake timed out";
    case WSFWD_ERR_INFLATE: return "invalid compressed data";
    case WSFWD_ERR_POOL_NAME: return "pool name empty, too long or not UTF-8";
    case WSFWD_ERR_POOL_LIMIT: return "too many pools";
    case WSFWD_ERR_POOL_FULL: return "pool full";
    case WSFWD_ERR_POOL_GONE: return "pool gone: it emptied during a walk of the hub";
    case WSFWD_ERR_TOKEN_TOO_LONG: return "token too long";
    case WSFWD_ERR_TOKEN_MALFORMED: return "malformed token";
    case WSFWD_ERR_TOKEN_ALG: return "token algorithm is not HS256";
    case WSFWD_ERR_TOKEN_SIGNATURE: return "bad token signature";
    case WSFWD_ERR_TOKEN_CLAIMS: return "token claims missing or mistyped";
    case WSFWD_ERR_TOKEN_EXPIRED: return "token expired";
    case WSFWD_ERR_TOKEN_NOT_YET_VALID: return "token not yet valid";
    case WSFWD_ERR_TOKEN_ROOM: return "token does not open this room";
    default: return "unknown error";
    }
}

uint16_t wsfwd_error_close_code(int err)
{
    switch (err) {
    case WSFWD_ERR_RSV:
    case WSFWD_ERR_OPCODE:
    case WSFWD_ERR_MASK:
    case WSFWD_ERR_LENGTH:
    case WSFWD_ERR_CONTROL_TOO_LONG:
    case WSFWD_ERR_CONTROL_FRAGMENTED:
    case WSFWD_ERR_CONTINUATION:
    case WSFWD_ERR_CLOSE_PAYLOAD:
    case WSFWD_ERR_CLOSE_CODE: return WSFWD_CLOSE_PROTOCOL_ERROR;
    case WSFWD_ERR_UTF8:
    case WSFWD_ERR_INFLATE: return WSFWD_CLOSE_INVALID_PAYLOAD;
    case WSFWD_ERR_PONG_TIMEOUT: return WSFWD_CLOSE_GOING_AWAY;
    case WSFWD_ERR_TOO_BIG: return WSFWD_CLOSE_TOO_BIG;
    case WSFWD_ERR_QUEUE_FULL:
    case WSFWD_ERR_SLOW_TIMEOUT: return WSFWD_CLOSE_POLICY;
    case WSFWD_ERR_CALLBACK:
    case WSFWD_ERR_NOMEM:
    case WSFWD_ERR_RANDOM: return WSFWD_CLOSE_INTERNAL_ERROR;
    default: return 0;
    }
}

int wsfwd_error_http_status(int err)
{
    switch (err) {
    case WSFWD_ERR_HTTP_MALFORMED:
    case WSFWD_ERR_HTTP_VERSION:
    case WSFWD_ERR_HS_HOST:
    case WSFWD_ERR_HS_UPGRADE:
    case WSFWD_ERR_HS_CONNECTION:
    case WSFWD_ERR_HS_KEY:
    case WSFWD_ERR_HS_EXTENSIONS:
    case WSFWD_ERR_PERCENT: return 400;
    case WSFWD_ERR_TOKEN_TOO_LONG:
    case WSFWD_ERR_TOKEN_MALFORMED:
    case WSFWD_ERR_TOKEN_ALG:
    case WSFWD_ERR_TOKEN_SIGNATURE:
    case WSFWD_ERR_TOKEN_CLAIMS:
    case WSFWD_ERR_TOKEN_EXPIRED:
    case WSFWD_ERR_TOKEN_NOT_YET_VALID:
    case WSFWD_ERR_TOKEN_ROOM: return 403;
    case WSFWD_ERR_HTTP_METHOD: return 405;
    case WSFWD_ERR_HS_VERSION: return 426;
    case WSFWD_ERR_HTTP_TOO_LARGE: return 431;
    default: return 0;
    }
}

bool wsfwd_close_code_is_valid(uint16_t code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}
