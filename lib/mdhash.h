/*
 * What SHA-1 and SHA-256 share (FIPS 180-4 sections 5.1.1 and 6): 64-byte blocks, big-endian
 * words, the padding with 0x80 and the message length in bits. Each hash supplies its
 * initial values and its compression function.
 */
#ifndef WSFWD_LIB_MDHASH_H
#define WSFWD_LIB_MDHASH_H

#include <stddef.h>
#include <stdint.h>

typedef void (*wsfwd_md_compress)(uint32_t *h, const uint8_t block[64]);

typedef struct wsfwd_md {
    uint32_t h[8];     /* the chaining value (SHA-1 uses 5 words) */
    uint64_t total;    /* bytes hashed so far */
    uint8_t block[64]; /* the partial block */
    size_t used;       /* bytes in block */
    wsfwd_md_compress compress;
    unsigned words; /* digest length in 32-bit words */
} wsfwd_md;

static inline uint32_t wsfwd_load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void wsfwd_store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Start a hash with its initial chaining value (words of it) and compression function. */
void wsfwd_md_init(wsfwd_md *m, const uint32_t *iv, unsigned words, wsfwd_md_compress compress);

void wsfwd_md_update(wsfwd_md *m, const void *data, size_t len);

/* Pad, write the digest (4 * words bytes) and wipe the state. */
void wsfwd_md_final(wsfwd_md *m, uint8_t *digest);

#endif
