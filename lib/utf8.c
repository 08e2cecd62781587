/*
 * UTF-8 validation as a small state machine, so a message can be checked piece by piece as
 * its bytes arrive and rejected at the first bad byte. States name what the next byte must be.
 */
#include "utf8.h"

#include <string.h>

enum {
    S_ACCEPT = WSFWD_UTF8_ACCEPT,
    S_REJECT = WSFWD_UTF8_REJECT,
    S_CONT1, /* one continuation byte left: 80..BF */
    S_CONT2, /* two left: 80..BF, then one */
    S_E0,    /* after E0: A0..BF (no overlong 3-byte forms), then one */
    S_ED,    /* after ED: 80..9F (no surrogates), then one */
    S_CONT3, /* three left: 80..BF, then two */
    S_F0,    /* after F0: 90..BF (no overlong 4-byte forms), then two */
    S_F4     /* after F4: 80..8F (nothing past U+10FFFF), then two */
};

static uint32_t lead(uint8_t b)
{
    if (b < 0x80)
        return S_ACCEPT;
    if (b < 0xC2)
        return S_REJECT; /* a stray continuation, or an overlong 2-byte lead */
    if (b < 0xE0)
        return S_CONT1;
    if (b == 0xE0)
        return S_E0;
    if (b == 0xED)
        return S_ED;
    if (b < 0xF0)
        return S_CONT2;
    if (b == 0xF0)
        return S_F0;
    if (b < 0xF4)
        return S_CONT3;
    if (b == 0xF4)
        return S_F4;
    return S_REJECT;
}

static uint32_t next(uint32_t state, uint8_t b)
{
    switch (state) {
    case S_ACCEPT: return lead(b);
    case S_CONT1: return (b >= 0x80 && b <= 0xBF) ? S_ACCEPT : S_REJECT;
    case S_CONT2: return (b >= 0x80 && b <= 0xBF) ? S_CONT1 : S_REJECT;
    case S_E0: return (b >= 0xA0 && b <= 0xBF) ? S_CONT1 : S_REJECT;
    case S_ED: return (b >= 0x80 && b <= 0x9F) ? S_CONT1 : S_REJECT;
    case S_CONT3: return (b >= 0x80 && b <= 0xBF) ? S_CONT2 : S_REJECT;
    case S_F0: return (b >= 0x90 && b <= 0xBF) ? S_CONT2 : S_REJECT;
    case S_F4: return (b >= 0x80 && b <= 0x8F) ? S_CONT2 : S_REJECT;
    default: return S_REJECT;
    }
}

uint32_t wsfwd_utf8_step(uint32_t state, const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (state == S_ACCEPT) {
            /* ASCII runs are the common case: skip them eight bytes at a time. */
            while (len - i >= 8) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & UINT64_C(0x8080808080808080)) {
                    break;
                }
                i += 8;
            }
            if (i == len) {
                break;
            }
        }
        state = next(state, s[i++]);
        if (state == S_REJECT) {
            break;
        }
    }
    return state;
}

int wsfwd_utf8_valid(const uint8_t *s, size_t len)
{
    return wsfwd_utf8_step(S_ACCEPT, s, len) == S_ACCEPT;
}
