/*
 * Base64 (RFC 4648 section 4): padded encoding and a strict decoder; and base64url (section
 * 5) without padding, as JSON Web Tokens use it.
 */
#include "base64.h"

#include <limits.h>
#include <stdbool.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t wsfwd_base64_encode(const uint8_t *src, size_t len, char *dst)
{
    size_t o = 0;
    size_t i = 0;
    for (; len - i >= 3; i += 3) {
        uint32_t v = ((uint32_t)src[i] << 16) | ((uint32_t)src[i + 1] << 8) | src[i + 2];
        dst[o++] = b64_alphabet[(v >> 18) & 63];
        dst[o++] = b64_alphabet[(v >> 12) & 63];
        dst[o++] = b64_alphabet[(v >> 6) & 63];
        dst[o++] = b64_alphabet[v & 63];
    }
    if (len - i > 0) {
        uint32_t v = (uint32_t)src[i] << 16;
        if (len - i == 2) {
            v |= (uint32_t)src[i + 1] << 8;
        }
        dst[o++] = b64_alphabet[(v >> 18) & 63];
        dst[o++] = b64_alphabet[(v >> 12) & 63];
        dst[o++] = len - i == 2 ? b64_alphabet[(v >> 6) & 63] : '=';
        dst[o++] = '=';
    }
    dst[o] = '\0';
    return o;
}

/* The 6-bit value of a base64 (url: base64url) character, or -1. */
static int b64_value(char c, bool url)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == (url ? '-' : '+')) {
        return 62;
    }
    if (c == (url ? '_' : '/')) {
        return 63;
    }
    return -1;
}

long wsfwd_base64_decode(const char *src, size_t len, uint8_t *dst, size_t cap)
{
    if (len % 4 != 0 || len / 4 * 3 > (unsigned long)LONG_MAX) {
        return -1;
    }
    size_t out = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        /* Padding may appear only in the last quantum: "xx==" or "xxx=". */
        size_t pad = 0;
        if (last && src[i + 3] == '=') {
            pad = src[i + 2] == '=' ? 2 : 1;
        }
        uint32_t v = 0;
        for (size_t j = 0; j < 4 - pad; j++) {
            int d = b64_value(src[i + j], false);
            if (d < 0) {
                return -1;
            }
            v = (v << 6) | (uint32_t)d;
        }
        v <<= 6 * pad;
        /* The bits under the padding must be zero, or two encodings would decode alike. */
        if ((pad == 1 && (v & 0xFF) != 0) || (pad == 2 && (v & 0xFFFF) != 0)) {
            return -1;
        }
        size_t n = 3 - pad;
        if (n > cap - out) {
            return -1;
        }
        for (size_t j = 0; j < n; j++) {
            dst[out++] = (uint8_t)(v >> (16 - 8 * j));
        }
    }
    return (long)out;
}

size_t wsfwd_base64url_encode(const uint8_t *src, size_t len, char *dst)
{
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | src[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            dst[o++] = b64url_alphabet[(acc >> bits) & 63];
        }
        acc &= (1u << bits) - 1;
    }
    if (bits > 0) {
        dst[o++] = b64url_alphabet[(acc << (6 - bits)) & 63];
    }
    dst[o] = '\0';
    return o;
}

long wsfwd_base64url_decode(const char *src, size_t len, uint8_t *dst, size_t cap)
{
    /* One character left over carries 6 bits: not even one byte. */
    if (len % 4 == 1 || len / 4 * 3 > (unsigned long)LONG_MAX) {
        return -1;
    }
    size_t out = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int d = b64_value(src[i], true);
        if (d < 0) {
            return -1;
        }
        acc = (acc << 6) | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (out == cap) {
                return -1;
            }
            dst[out++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* The unused low bits of the last character must be zero, as in the padded decoder. */
    if (acc != 0) {
        return -1;
    }
    return (long)out;
}
