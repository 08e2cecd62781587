/* Percent-decoding (RFC 3986 section 2.1) of a path segment or query component. */
#include "wsfwd.h"

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

int wsfwd_percent_decode(const char *in, size_t len, char *out, size_t cap, size_t *out_len)
{
    if (out_len != NULL) {
        *out_len = 0;
    }
    if (out_len == NULL || (in == NULL && len > 0) || (out == NULL && cap > 0)) {
        return WSFWD_ERR_INVALID;
    }
    /* Measure and check first, so that nothing is written on an error and out may be in. */
    size_t n = 0;
    for (size_t i = 0; i < len; i++, n++) {
        if (in[i] == '%') {
            if (len - i < 3 || hex_digit(in[i + 1]) < 0 || hex_digit(in[i + 2]) < 0) {
                return WSFWD_ERR_PERCENT;
            }
            i += 2;
        }
    }
    *out_len = n;
    if (n > cap) {
        return WSFWD_ERR_NOBUFS;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        if (ch == '%') {
            ch = (char)(hex_digit(in[i + 1]) << 4 | hex_digit(in[i + 2]));
            i += 2;
        }
        out[o++] = ch;
    }
    return WSFWD_OK;
}
