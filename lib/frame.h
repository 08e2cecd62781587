/* Internal part of the frame codec. */
#ifndef WSFWD_LIB_FRAME_H
#define WSFWD_LIB_FRAME_H

#include "wsfwd.h"

/* wsfwd_frame_mask() from src into dst in one pass; dst may be src. */
void wsfwd_mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4],
                     uint64_t offset);

#endif
