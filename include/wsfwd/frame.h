/*
 * libwsfwd: the frame codec (RFC 6455 section 5), for callers who want only the wire format.
 * Part of <wsfwd.h>; usable on its own.
 */
#ifndef WSFWD_FRAME_H
#define WSFWD_FRAME_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Frame codec (RFC 6455 section 5), for callers who want only the wire format                */
/* ------------------------------------------------------------------------------------------ */

#define WSFWD_FRAME_HEADER_MAX 14 /* 2 + 8 length bytes + 4 mask bytes */
#define WSFWD_CONTROL_PAYLOAD_MAX 125

/* A decoded header. Frozen (see the ABI rules in wsfwd/base.h): it never grows. */
typedef struct wsfwd_frame_header {
    bool fin;
    bool masked;
    uint8_t rsv;        /* RSV1..RSV3 as bits 2..0 */
    uint8_t opcode;     /* wsfwd_opcode, or a reserved value (reported as an error) */
    uint8_t mask[4];    /* valid when masked */
    uint8_t header_len; /* bytes the header took, 2 to 14 */
    uint64_t payload_len;
} wsfwd_frame_header;

/*
 * Decode one frame header from buf. Returns WSFWD_OK and fills *h, WSFWD_INCOMPLETE when
 * buf holds only part of a header, or the first rule of section 5 the header breaks:
 * WSFWD_ERR_RSV, _OPCODE, _LENGTH, _CONTROL_TOO_LONG, _CONTROL_FRAGMENTED, or _MASK when the
 * masking bit is wrong for a frame sent to `receiver` (a server receives masked frames only,
 * a client unmasked ones only). Continuation rules need state: the connection checks them.
 * buf and h must not be NULL (buf may be when len is 0).
 */
WSFWD_API int wsfwd_frame_parse_header(const uint8_t *buf, size_t len, wsfwd_role receiver,
                                       wsfwd_frame_header *h);

/*
 * Encode a frame header into out (at least WSFWD_FRAME_HEADER_MAX bytes) and return its
 * length. mask is NULL for an unmasked frame (server to client), else the 4-byte key; the
 * payload itself is masked separately with wsfwd_frame_mask().
 */
WSFWD_API size_t wsfwd_frame_encode_header(uint8_t *out, bool fin, wsfwd_opcode opcode,
                                           uint64_t payload_len, const uint8_t mask[4]);

/*
 * XOR data in place with the masking key, starting at key position `offset` (the payload
 * offset of data[0], so a payload can be unmasked in pieces). Works a machine word at a time.
 */
WSFWD_API void wsfwd_frame_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);

#ifdef __cplusplus
}
#endif

#endif /* WSFWD_FRAME_H */
