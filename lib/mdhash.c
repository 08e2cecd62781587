#include "mdhash.h"

#include <string.h>

void wsfwd_md_init(wsfwd_md *m, const uint32_t *iv, unsigned words, wsfwd_md_compress compress)
{
    memset(m, 0, sizeof *m);
    memcpy(m->h, iv, words * sizeof *iv);
    m->words = words;
    m->compress = compress;
}

void wsfwd_md_update(wsfwd_md *m, const void *data, size_t len)
{
    if (len == 0) {
        return; /* data may be NULL */
    }
    const uint8_t *p = data;
    m->total += len;
    if (m->used > 0) {
        size_t n = 64 - m->used < len ? 64 - m->used : len;
        memcpy(m->block + m->used, p, n);
        m->used += n;
        p += n;
        len -= n;
        if (m->used < 64) {
            return;
        }
        m->compress(m->h, m->block);
        m->used = 0;
    }
    for (; len >= 64; p += 64, len -= 64) {
        m->compress(m->h, p);
    }
    if (len > 0) {
        memcpy(m->block, p, len);
        m->used = len;
    }
}

void wsfwd_md_final(wsfwd_md *m, uint8_t *digest)
{
    uint64_t bits = m->total * 8u;
    m->block[m->used++] = 0x80;
    if (m->used > 56) {
        memset(m->block + m->used, 0, 64 - m->used);
        m->compress(m->h, m->block);
        m->used = 0;
    }
    memset(m->block + m->used, 0, 56 - m->used);
    wsfwd_store_be32(m->block + 56, (uint32_t)(bits >> 32));
    wsfwd_store_be32(m->block + 60, (uint32_t)bits);
    m->compress(m->h, m->block);
    for (unsigned i = 0; i < m->words; i++) {
        wsfwd_store_be32(digest + 4 * i, m->h[i]);
    }
    memset(m, 0, sizeof *m);
}
