/*
 * libFuzzer target for wsfwd_percent_decode.
 *
 * Input: byte 0 picks the output room (0-255, or the input's length when 255); the rest is
 * the text. The result must match a plain reference decoder byte for byte, in place as well
 * as into a separate buffer, and NOBUFS must tell the size the reference gives; nothing may
 * be written past the room given (a guard after it), or on an error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsfwd.h"

static int ref_hex(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (uint8_t)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The reference: returns the decoded length into out (len bytes), or -1 for a bad escape. */
static long ref_decode(const uint8_t *in, size_t len, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%') {
            out[o++] = in[i];
        } else if (i + 2 < len && ref_hex(in[i + 1]) >= 0 && ref_hex(in[i + 2]) >= 0) {
            out[o++] = (uint8_t)(ref_hex(in[i + 1]) * 16 + ref_hex(in[i + 2]));
            i += 2;
        } else {
            return -1;
        }
    }
    return (long)o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    size_t cap = data[0] == 255 ? len : data[0];

    uint8_t *want = malloc(len + 1);
    uint8_t *out = malloc(cap + 16);
    char *inplace = malloc(len + 1);
    if (want == NULL || out == NULL || inplace == NULL) {
        abort();
    }
    long ref = ref_decode((const uint8_t *)in, len, want);
    memset(out, 0xA5, cap + 16);
    size_t n = 12345;
    int rc = wsfwd_percent_decode(in, len, (char *)out, cap, &n);
    for (size_t i = cap; i < cap + 16; i++) {
        if (out[i] != 0xA5) {
            abort(); /* wrote past the room */
        }
    }
    if (ref < 0) {
        if (rc != WSFWD_ERR_PERCENT || n != 0 || (cap > 0 && out[0] != 0xA5)) {
            abort();
        }
    } else if ((size_t)ref > cap) {
        if (rc != WSFWD_ERR_NOBUFS || n != (size_t)ref || (cap > 0 && out[0] != 0xA5)) {
            abort();
        }
    } else if (rc != WSFWD_OK || n != (size_t)ref || memcmp(out, want, n) != 0) {
        abort();
    }

    /* In place, with room for the whole input: the same result. */
    if (len > 0) {
        memcpy(inplace, in, len);
    }
    size_t m = 0;
    int rc2 = wsfwd_percent_decode(inplace, len, inplace, len, &m);
    if (rc2 != (ref < 0 ? WSFWD_ERR_PERCENT : WSFWD_OK) ||
        (ref >= 0 && (m != (size_t)ref || memcmp(inplace, want, m) != 0))) {
        abort();
    }
    free(want);
    free(out);
    free(inplace);
    return 0;
}
