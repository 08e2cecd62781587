/*
 * Address prefixes and the X-Forwarded-For walk (forwarded.h): text in, 16-byte addresses out.
 * Owns nothing; inet_pton reads each address from a small NUL-terminated copy.
 */
#define _POSIX_C_SOURCE 200809L /* inet_pton */

#include "forwarded.h"

#include <arpa/inet.h>
#include <string.h>

#define ADDR_TEXT_MAX 64 /* longer than any address with brackets and a port */

static const uint8_t V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* A bare IPv4 or IPv6 address of len bytes into the 16-byte form; *v4 tells which it was. */
static int addr_text(const char *s, size_t len, uint8_t out[16], bool *v4)
{
    char buf[ADDR_TEXT_MAX];
    if (len == 0 || len >= sizeof buf || memchr(s, '\0', len) != NULL) {
        return -1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    uint8_t four[4];
    if (inet_pton(AF_INET, buf, four) == 1) {
        memcpy(out, V4_MAPPED, 12);
        memcpy(out + 12, four, 4);
        *v4 = true;
        return 0;
    }
    *v4 = false;
    return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
}

/* A decimal number, the whole of s[0..len): 1 to 5 digits, at most max. */
static int decimal(const char *s, size_t len, unsigned max, unsigned *out)
{
    if (len == 0 || len > 5) {
        return -1;
    }
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Whether the bits of addr past the first bits are all zero. */
static bool host_bits_clear(const uint8_t addr[16], unsigned bits)
{
    for (unsigned i = bits; i < 128; i++) {
        if (addr[i / 8] & (0x80u >> (i % 8))) {
            return false;
        }
    }
    return true;
}

const char *addr_prefix_parse(const char *s, size_t len, addr_prefix *out)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - s) : len;
    bool v4;
    uint8_t addr[16];
    if (addr_text(s, alen, addr, &v4) != 0) {
        return "not an IPv4 or IPv6 address";
    }
    unsigned bits = v4 ? 32 : 128;
    size_t digits = slash != NULL ? len - alen - 1 : 0;
    if (slash != NULL && (digits > 3 || decimal(slash + 1, digits, bits, &bits) != 0)) {
        return v4 ? "the prefix length after / must be 0 to 32"
                  : "the prefix length after / must be 0 to 128";
    }
    if (v4) {
        bits += 96;
    }
    if (!host_bits_clear(addr, bits)) {
        return "address bits set past the prefix length";
    }
    memcpy(out->addr, addr, 16);
    out->bits = (uint8_t)bits;
    return NULL;
}

bool addr_prefix_match(const addr_prefix *p, const uint8_t addr[16])
{
    unsigned whole = p->bits / 8u;
    unsigned rest = p->bits % 8u;
    if (memcmp(p->addr, addr, whole) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (p->addr[whole] & mask) == (addr[whole] & mask);
}

bool addr_prefix_any(const addr_prefix *list, size_t n, const uint8_t addr[16])
{
    for (size_t i = 0; i < n; i++) {
        if (addr_prefix_match(&list[i], addr)) {
            return true;
        }
    }
    return false;
}

/* ":PORT" of len bytes: 1 to 5 digits, at most 65535. */
static bool port_suffix(const char *s, size_t len)
{
    unsigned port;
    return len >= 2 && s[0] == ':' && decimal(s + 1, len - 1, 65535, &port) == 0;
}

int forwarded_addr_parse(const char *s, size_t len, uint8_t out[16])
{
    bool v4;
    if (len > 0 && s[0] == '[') { /* [V6] or [V6]:PORT */
        const char *close = memchr(s, ']', len);
        if (close == NULL) {
            return -1;
        }
        size_t inner = (size_t)(close - s) - 1;
        size_t after = len - inner - 2;
        if (after > 0 && !port_suffix(close + 1, after)) {
            return -1;
        }
        return addr_text(s + 1, inner, out, &v4) == 0 && !v4 ? 0 : -1;
    }
    if (addr_text(s, len, out, &v4) == 0) {
        return 0;
    }
    /* V4:PORT: one colon (a bare IPv6 address has more, and was read above). */
    const char *colon = memchr(s, ':', len);
    if (colon == NULL || memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) != NULL ||
        !port_suffix(colon, len - (size_t)(colon - s))) {
        return -1;
    }
    return addr_text(s, (size_t)(colon - s), out, &v4) == 0 && v4 ? 0 : -1;
}

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

forwarded_result forwarded_client(const char *value, size_t len, const addr_prefix *trusted,
                                  size_t ntrusted, uint8_t out[16])
{
    bool any = false;
    size_t end = len;
    for (;;) {
        size_t start = end;
        while (start > 0 && value[start - 1] != ',') {
            start--;
        }
        size_t a = start, b = end; /* the element without its spaces */
        while (a < b && ows(value[a])) {
            a++;
        }
        while (b > a && ows(value[b - 1])) {
            b--;
        }
        if (a < b) {
            if (forwarded_addr_parse(value + a, b - a, out) != 0) {
                return FORWARDED_MALFORMED;
            }
            any = true;
            if (!addr_prefix_any(trusted, ntrusted, out)) {
                return FORWARDED_FOUND;
            }
        }
        if (start == 0) {
            break;
        }
        end = start - 1; /* before the comma */
    }
    if (any) {
        return FORWARDED_FOUND; /* every one trusted: out holds the left-most */
    }
    return len == 0 ? FORWARDED_NONE : FORWARDED_MALFORMED;
}
