/* The RFC 6455 section 5 wire format: frame headers and masking. */
#include <string.h>

#include "frame.h"

static bool opcode_is_known(uint8_t op)
{
    return op <= WSFWD_OP_BINARY || (op >= WSFWD_OP_CLOSE && op <= WSFWD_OP_PONG);
}

int wsfwd_frame_parse_header(const uint8_t *buf, size_t len, wsfwd_role receiver,
                             wsfwd_frame_header *h)
{
    return wsfwd_frame_parse(buf, len, receiver, 0, h);
}

int wsfwd_frame_parse(const uint8_t *buf, size_t len, wsfwd_role receiver, uint8_t rsv_allowed,
                      wsfwd_frame_header *h)
{
    if (len < 2) {
        return WSFWD_INCOMPLETE;
    }
    uint8_t b0 = buf[0];
    uint8_t b1 = buf[1];
    h->fin = (b0 & 0x80) != 0;
    h->rsv = (uint8_t)((b0 >> 4) & 0x7);
    h->opcode = b0 & 0x0F;
    h->masked = (b1 & 0x80) != 0;

    /* Reject what the first two bytes already condemn, before waiting for more. */
    if ((h->rsv & ~rsv_allowed) != 0) {
        return WSFWD_ERR_RSV;
    }
    if (!opcode_is_known(h->opcode)) {
        return WSFWD_ERR_OPCODE;
    }
    bool control = (h->opcode & 0x8) != 0;
    uint8_t len7 = b1 & 0x7F;
    if (control && !h->fin) {
        return WSFWD_ERR_CONTROL_FRAGMENTED;
    }
    if (control && len7 > WSFWD_CONTROL_PAYLOAD_MAX) {
        return WSFWD_ERR_CONTROL_TOO_LONG;
    }
    if (h->masked != (receiver == WSFWD_ROLE_SERVER)) {
        return WSFWD_ERR_MASK;
    }

    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    size_t need = 2 + ext + (h->masked ? 4 : 0);
    if (len < need) {
        return WSFWD_INCOMPLETE;
    }
    uint64_t plen = len7;
    if (ext == 2) {
        plen = (uint64_t)buf[2] << 8 | buf[3];
        if (plen < 126) {
            return WSFWD_ERR_LENGTH;
        }
    } else if (ext == 8) {
        plen = 0;
        for (size_t i = 0; i < 8; i++) {
            plen = plen << 8 | buf[2 + i];
        }
        if (plen >> 63 != 0 || plen <= 0xFFFF) {
            return WSFWD_ERR_LENGTH;
        }
    }
    h->payload_len = plen;
    if (h->masked) {
        memcpy(h->mask, buf + 2 + ext, 4);
    } else {
        memset(h->mask, 0, 4);
    }
    h->header_len = (uint8_t)need;
    return WSFWD_OK;
}

size_t wsfwd_frame_encode_header(uint8_t *out, bool fin, wsfwd_opcode opcode, uint64_t payload_len,
                                 const uint8_t mask[4])
{
    size_t n = 0;
    uint8_t maskbit = mask != NULL ? 0x80 : 0;
    out[n++] = (uint8_t)((fin ? 0x80 : 0) | ((unsigned)opcode & 0x0F));
    if (payload_len < 126) {
        out[n++] = (uint8_t)(maskbit | payload_len);
    } else if (payload_len <= 0xFFFF) {
        out[n++] = (uint8_t)(maskbit | 126);
        out[n++] = (uint8_t)(payload_len >> 8);
        out[n++] = (uint8_t)payload_len;
    } else {
        out[n++] = (uint8_t)(maskbit | 127);
        for (int shift = 56; shift >= 0; shift -= 8) {
            out[n++] = (uint8_t)(payload_len >> shift);
        }
    }
    if (mask != NULL) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

void wsfwd_mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4],
                     uint64_t offset)
{
    /* The key as it lines up with src[0], twice over to fill a 64-bit word. */
    uint8_t key[8];
    for (size_t i = 0; i < 4; i++) {
        key[i] = key[i + 4] = mask[(offset + i) & 3];
    }
    uint64_t k;
    memcpy(&k, key, 8);

    size_t i = 0;
    for (; len - i >= 32; i += 32) {
        uint64_t w[4];
        memcpy(w, src + i, 32);
        w[0] ^= k;
        w[1] ^= k;
        w[2] ^= k;
        w[3] ^= k;
        memcpy(dst + i, w, 32);
    }
    for (; len - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= k;
        memcpy(dst + i, &w, 8);
    }
    for (; i < len; i++) {
        dst[i] = src[i] ^ key[i & 7];
    }
}

void wsfwd_frame_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset)
{
    wsfwd_mask_copy(data, data, len, mask, offset);
}
