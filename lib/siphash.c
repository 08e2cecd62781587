/*
 * SipHash-c-d, the one copy: the hub's table of pools (lib/pool.c) and the server's tables
 * (through lib/table.c) hash with it. Checked against the reference vectors in
 * tests/unit/test_siphash.c.
 */
#include "siphash.h"

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static void sip_rounds(uint64_t v[4], unsigned n)
{
    while (n-- > 0) {
        v[0] += v[1];
        v[1] = rotl(v[1], 13) ^ v[0];
        v[0] = rotl(v[0], 32);
        v[2] += v[3];
        v[3] = rotl(v[3], 16) ^ v[2];
        v[0] += v[3];
        v[3] = rotl(v[3], 21) ^ v[0];
        v[2] += v[1];
        v[1] = rotl(v[1], 17) ^ v[2];
        v[2] = rotl(v[2], 32);
    }
}

/* The little-endian word of n (at most 8) bytes at p. */
static uint64_t le_word(const uint8_t *p, size_t n)
{
    uint64_t w = 0;
    while (n-- > 0) {
        w = w << 8 | p[n];
    }
    return w;
}

void wsfwd_siphash_key(uint64_t key[2], const uint8_t bytes[16])
{
    key[0] = le_word(bytes, 8);
    key[1] = le_word(bytes + 8, 8);
}

uint64_t wsfwd_siphash(const uint64_t key[2], const void *data, size_t len, unsigned c, unsigned d)
{
    const uint8_t *p = data;
    uint64_t v[4] = {key[0] ^ UINT64_C(0x736f6d6570736575), key[1] ^ UINT64_C(0x646f72616e646f6d),
                     key[0] ^ UINT64_C(0x6c7967656e657261), key[1] ^ UINT64_C(0x7465646279746573)};
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = le_word(p + i, 8);
        v[3] ^= m;
        sip_rounds(v, c);
        v[0] ^= m;
    }
    uint64_t last = (uint64_t)len << 56 | (len > whole ? le_word(p + whole, len - whole) : 0);
    v[3] ^= last;
    sip_rounds(v, c);
    v[0] ^= last;
    v[2] ^= 0xff;
    sip_rounds(v, d);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}
