/* Internal part of the frame codec. */
#ifndef WSFWD_LIB_FRAME_H
#define WSFWD_LIB_FRAME_H

#include "wsfwd.h"

/* RSV1 in wsfwd_frame_header.rsv, and in a frame's first byte. */
#define WSFWD_RSV1 0x4
#define WSFWD_RSV1_BIT 0x40

/* wsfwd_frame_parse_header() letting the RSV bits of rsv_allowed through (the connection
   checks where they may be). */
int wsfwd_frame_parse(const uint8_t *buf, size_t len, wsfwd_role receiver, uint8_t rsv_allowed,
                      wsfwd_frame_header *h);

/* wsfwd_frame_mask() from src into dst in one pass; dst may be src. */
void wsfwd_mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4],
                     uint64_t offset);

#endif
