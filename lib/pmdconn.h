/*
 * permessage-deflate on a connection (RFC 7692): the parameters a connection negotiated,
 * its inflate stream, and compression through the config's codec. conn.c and pool.c use it;
 * the negotiation itself is pmd.c's.
 */
#ifndef WSFWD_LIB_PMDCONN_H
#define WSFWD_LIB_PMDCONN_H

#include "config.h"
#include "pmd.h"

/* The 4 bytes a sender removes from the end of each compressed message (section 7.2.1). */
#define WSFWD_PMD_TAIL_LEN 4
extern const uint8_t wsfwd_pmd_tail[WSFWD_PMD_TAIL_LEN];

/* A connection's extension state, allocated only when it negotiated the extension. */
typedef struct wsfwd_pmdc {
    wsfwd_pmd_params params;
    uint8_t role;    /* wsfwd_role of the connection */
    bool compressed; /* the message being received had RSV1 on its first frame */
    bool ended;      /* its stream ended (a final block): the rest of it is ignored */
    uint8_t bits;    /* the window of stream */
    void *stream;    /* the inflate stream, made at the first compressed message */
    uint8_t *held;   /* input not yet read: the rest of a feed during which the connection
                        was paced (conn.c, hold_input); NULL when none */
    size_t held_len;
    size_t held_cap;
} wsfwd_pmdc;

/* The server's policy from the config (windows clamped to what the codec honours). */
void wsfwd_pmdc_policy(const wsfwd_config *cfg, wsfwd_pmd_policy *p);

/* What a client offers, from the config. */
void wsfwd_pmdc_want(const wsfwd_config *cfg, wsfwd_pmd_params *want);

/* The state for a connection that negotiated p; NULL when out of memory. */
wsfwd_pmdc *wsfwd_pmdc_new(wsfwd_config *cfg, const wsfwd_pmd_params *p, wsfwd_role role);
void wsfwd_pmdc_free(wsfwd_config *cfg, wsfwd_pmdc *z); /* NULL is fine */

/* The window bits this end compresses with, and the peer. */
int wsfwd_pmdc_send_bits(const wsfwd_pmdc *z);

/* The inflate stream for the message that begins; NULL when the codec cannot make one. */
void *wsfwd_pmdc_stream(wsfwd_config *cfg, wsfwd_pmdc *z);

/* The message ended: a stream that ended is reset; a peer without context takeover gives
   its stream back to the config. */
void wsfwd_pmdc_message_end(wsfwd_config *cfg, wsfwd_pmdc *z);

/*
 * Compress a message of len bytes with the config's codec and a window of 2^bits into the
 * config's scratch buffer. Returns the compressed length, with *out pointing at it until the
 * next call, when it is shorter than len; else 0 (send the message plain): it did not
 * shrink, the codec failed, or the scratch buffer could not grow.
 */
size_t wsfwd_pmdc_compress(wsfwd_config *cfg, int bits, const uint8_t *in, size_t len,
                           const uint8_t **out);

#endif
