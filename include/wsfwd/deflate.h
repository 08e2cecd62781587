/*
 * libwsfwd: permessage-deflate (RFC 7692): compressed messages, with the codec supplied by the
 * caller.
 *
 * The library does everything the extension asks of a WebSocket endpoint except DEFLATE
 * itself: it negotiates (the server answers the first acceptable offer, always with
 * server_no_context_takeover; the client offers and checks the answer), sets and checks RSV1
 * (only on the first frame of a compressed data message; anywhere else, or without the
 * extension, the connection fails with 1002), inflates what it receives with the message size
 * limit applied to the inflated size as it grows (past wsfwd_config_set_max_message: 1009,
 * never allocating past the limit), checks inflated text as UTF-8 (1007), fails corrupt data
 * with 1007, and compresses what it sends: a pool broadcast is compressed at most once per
 * window size whatever the pool's size (lazily: only if a member negotiated the extension),
 * members without the extension get the plain frame of the same broadcast, and messages
 * shorter than the minimum size (wsfwd_config_set_deflate_min_size) go uncompressed.
 *
 * The codec is a table of functions given to the config, as the allocator is, so the core
 * keeps libc as its only dependency; the wsfwd command plugs in zlib (cli/compress.c). Without
 * a codec the extension is never negotiated. The codec is called from the library's calls on
 * the connections and pools of its config, so from their one thread (the library is
 * single-threaded per config); it must not call the library back.
 * Part of <wsfwd.h>; usable with wsfwd/conn.h.
 */
#ifndef WSFWD_DEFLATE_H
#define WSFWD_DEFLATE_H

#include "wsfwd/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an inflate call reports. */
typedef enum wsfwd_inflate_status {
    WSFWD_INFLATE_OK = 0,     /* consumed what it could and produced what it could */
    WSFWD_INFLATE_ERROR = -1, /* the data is not valid DEFLATE (the connection fails, 1007) */
    WSFWD_INFLATE_END = 1     /* the stream ended (a block with BFINAL set) and all its output
                                 was produced: the library ignores the rest of the message and
                                 resets the stream (inflate_reset) before the next one */
} wsfwd_inflate_status;

/*
 * The DEFLATE codec. Growable (see the ABI rules in wsfwd/base.h): it is passed with its
 * size, and members a caller's older header does not have read as NULL.
 */
typedef struct wsfwd_deflate_codec {
    /*
     * Compress one whole message with a fresh context (RFC 7692 section 7.2.1): raw DEFLATE
     * (RFC 1951, no zlib header) with a window of at most 2^window_bits bytes (from
     * min_window_bits to 15), ended
     * by a sync flush whose final empty stored block's 4 bytes 00 00 FF FF are removed. Write
     * at most cap bytes to out; return the length, or 0 when it does not fit or fails (the
     * message then goes uncompressed). cap is at least len + len / 8 + 64.
     */
    size_t (*compress)(void *user_data, int window_bits, const uint8_t *in, size_t len,
                       uint8_t *out, size_t cap);

    /* The smallest window_bits compress() can keep to (zlib: 9); offers asking the server for
       a smaller window are declined. 0 means 8. */
    int min_window_bits;

    /* A new inflate stream for raw DEFLATE with windows up to 2^window_bits; NULL on failure
       (the connection fails with 1011). */
    void *(*inflate_new)(void *user_data, int window_bits);

    /*
     * Inflate from *in (*in_len bytes) into out (out_cap bytes, at least 1). Advance *in and
     * *in_len past what was consumed and set *produced. Called again with more room while the
     * last call filled out, and with more input as it arrives; the library feeds the message's
     * 00 00 FF FF tail itself at its end. The stream keeps its state between calls and
     * messages, until inflate_reset. When the stream ends (a block with BFINAL set), return
     * WSFWD_INFLATE_END (zlib: Z_STREAM_END) and leave the stream as it is. A call that
     * neither consumes nor produces while it had input and room fails the message (1007),
     * except on the 00 00 FF FF tail.
     */
    wsfwd_inflate_status (*inflate)(void *user_data, void *stream, const uint8_t **in,
                                    size_t *in_len, uint8_t *out, size_t out_cap, size_t *produced);

    /* Forget the stream's history. Called when a message ends from a peer that does not
       keep its context (the stream then goes to the config's one spare, for the next such
       message of any connection, so those peers hold no stream between messages), and after
       a message whose stream ended (WSFWD_INFLATE_END). */
    void (*inflate_reset)(void *user_data, void *stream);

    void (*inflate_free)(void *user_data, void *stream);

    void *user_data;
} wsfwd_deflate_codec;

/*
 * Plug a codec into the config (copied: min(codec_size, sizeof) bytes, the rest NULL); NULL
 * removes it. Every member but min_window_bits must be set. Connections made from then on
 * negotiate the extension. Returns WSFWD_OK, WSFWD_ERR_INVALID, or WSFWD_ERR_STATE while a
 * connection that negotiated with the current codec exists (set it before they are made).
 */
WSFWD_API int wsfwd_config_set_deflate(wsfwd_config *cfg, const wsfwd_deflate_codec *codec,
                                       size_t codec_size);

/*
 * What the server asks and accepts (defaults: 15, 15, false):
 * - server_window_bits: the largest window its compressor uses (8 to 15; the answer says it
 *   when below 15);
 * - client_window_bits: the window asked of a client that offers client_max_window_bits
 *   (8 to 15), bounding each inflate stream's memory;
 * - client_no_context_takeover: ask clients to reset their context after each message, so no
 *   inflate stream is kept per connection between messages.
 * A client offers the same values. Returns WSFWD_OK or WSFWD_ERR_INVALID.
 */
WSFWD_API int wsfwd_config_set_deflate_params(wsfwd_config *cfg, int server_window_bits,
                                              int client_window_bits,
                                              bool client_no_context_takeover);

/* Messages shorter than this go uncompressed (default 64 bytes; 0 compresses all). */
WSFWD_API int wsfwd_config_set_deflate_min_size(wsfwd_config *cfg, size_t bytes);

/* The parameters negotiated for a connection (from on_open on). */
typedef struct wsfwd_deflate_params { /* growable: passed with its size */
    bool server_no_context_takeover;
    bool client_no_context_takeover;
    uint8_t server_max_window_bits;
    uint8_t client_max_window_bits;
} wsfwd_deflate_params;

/*
 * Whether conn negotiated permessage-deflate; when it did and out is not NULL, writes
 * min(out_size, sizeof *out) bytes of the parameters.
 */
WSFWD_API bool wsfwd_conn_deflate(const wsfwd_conn *conn, wsfwd_deflate_params *out,
                                  size_t out_size);

/* Whether the data message being received came compressed (in on_message: the one given;
   after it, until the next one begins); false without the extension. */
WSFWD_API bool wsfwd_conn_message_compressed(const wsfwd_conn *conn);

#ifdef __cplusplus
}
#endif

#endif
