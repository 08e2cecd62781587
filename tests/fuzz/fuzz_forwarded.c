/*
 * libFuzzer target for cli/forwarded.c: X-Forwarded-For values and --trust-proxy prefixes.
 *
 * Input: byte 0 says how many of the next bytes are a prefix text (mod 64); the rest is an
 * X-Forwarded-For value. The prefix, if it parses, is the one trusted proxy. Checks: nothing
 * is read past the input (ASan); a prefix matches its own address, not one that differs in
 * its last bit, and one that differs just past it; only an empty value is NONE; the walk
 * gives the same answer with a space added after each comma.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "forwarded.h"

/* The bit'th bit of addr flipped. */
static void flip(uint8_t out[16], const uint8_t addr[16], unsigned bit)
{
    memcpy(out, addr, 16);
    out[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
}

static void check_prefix(const addr_prefix *p)
{
    uint8_t other[16];
    if (p->bits > 128 || !addr_prefix_match(p, p->addr)) {
        abort();
    }
    /* The last bit inside the prefix counts; the first one past it does not. */
    if (p->bits > 0) {
        flip(other, p->addr, p->bits - 1u);
        if (addr_prefix_match(p, other)) {
            abort();
        }
    }
    if (p->bits < 128) {
        flip(other, p->addr, p->bits);
        if (!addr_prefix_match(p, other)) {
            abort();
        }
    }
}

/* The value with ", " for each "," (at most twice as long). */
static char *spaced(const char *v, size_t len, size_t *out_len)
{
    char *s = malloc(2 * len + 1);
    if (s == NULL) {
        abort();
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        s[n++] = v[i];
        if (v[i] == ',') {
            s[n++] = ' ';
        }
    }
    *out_len = n;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t plen = data[0] % 64u;
    if (plen > size - 1) {
        plen = size - 1;
    }
    /* Separate allocations, so ASan sees any read past either part. */
    char *ptext = malloc(plen > 0 ? plen : 1);
    size_t vlen = size - 1 - plen;
    char *value = malloc(vlen > 0 ? vlen : 1);
    if (ptext == NULL || value == NULL) {
        abort();
    }
    memcpy(ptext, data + 1, plen);
    memcpy(value, data + 1 + plen, vlen);

    addr_prefix trusted;
    size_t ntrusted = addr_prefix_parse(ptext, plen, &trusted) == NULL ? 1 : 0;
    if (ntrusted == 1) {
        check_prefix(&trusted);
    }
    uint8_t out[16];
    forwarded_result r = forwarded_client(value, vlen, &trusted, ntrusted, out);
    if (r == FORWARDED_NONE && vlen != 0) {
        abort();
    }
    size_t slen;
    char *s = spaced(value, vlen, &slen);
    uint8_t out2[16];
    forwarded_result r2 = forwarded_client(s, slen, &trusted, ntrusted, out2);
    /* Spaces after commas change nothing, except that a trailing space is an element's. */
    if (r != FORWARDED_MALFORMED && (r2 != r || (r == FORWARDED_FOUND && memcmp(out, out2, 16)))) {
        abort();
    }
    free(s);
    free(ptext);
    free(value);
    return 0;
}
