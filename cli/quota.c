#include "quota.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ---- Message rate: a token bucket in thousandths of a message ------------------------------ */

void rate_bucket_fill(rate_bucket *b, const rate_rule *r, uint32_t now_ms)
{
    b->at = now_ms;
    b->level = r->burst * 1000u;
}

bool rate_bucket_take(rate_bucket *b, const rate_rule *r, uint32_t now_ms)
{
    uint64_t full = (uint64_t)r->burst * 1000u;
    /* per_second messages a second is per_second thousandths a millisecond. */
    uint64_t level = b->level + (uint64_t)(uint32_t)(now_ms - b->at) * r->per_second;
    b->at = now_ms;
    if (level > full) {
        level = full;
    }
    if (level < 1000) {
        b->level = (uint32_t)level;
        return false;
    }
    b->level = (uint32_t)(level - 1000);
    return true;
}

/* ---- Connections per address: open addressing, linear probing ----------------------------- */

struct addr_slot {
    uint8_t addr[16];
    uint32_t count; /* 0: the slot is empty */
};

void addr_normalise(uint8_t out[16], const uint8_t *in, bool ipv6)
{
    if (ipv6) {
        memcpy(out, in, 16);
    } else {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(out, mapped, 12);
        memcpy(out + 12, in, 4);
    }
}

int addr_table_init(addr_table *t)
{
    memset(t, 0, sizeof *t);
    size_t got = 0;
    while (got < sizeof t->key) {
        ssize_t n = getrandom(t->key + got, sizeof t->key - got, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

void addr_table_free(addr_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->used = 0;
}

/* ---- SipHash-2-4 (Aumasson and Bernstein, 2012), the table's keyed hash ------------------- */

static uint64_t rotl64(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static void sip_rounds(uint64_t v[4], int n)
{
    while (n-- > 0) {
        v[0] += v[1];
        v[1] = rotl64(v[1], 13) ^ v[0];
        v[0] = rotl64(v[0], 32);
        v[2] += v[3];
        v[3] = rotl64(v[3], 16) ^ v[2];
        v[0] += v[3];
        v[3] = rotl64(v[3], 21) ^ v[0];
        v[2] += v[1];
        v[1] = rotl64(v[1], 17) ^ v[2];
        v[2] = rotl64(v[2], 32);
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

uint64_t siphash24(const uint8_t key[16], const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t k0 = le_word(key, 8), k1 = le_word(key + 8, 8);
    uint64_t v[4] = {k0 ^ UINT64_C(0x736f6d6570736575), k1 ^ UINT64_C(0x646f72616e646f6d),
                     k0 ^ UINT64_C(0x6c7967656e657261), k1 ^ UINT64_C(0x7465646279746573)};
    size_t i = 0;
    for (; len - i >= 8; i += 8) {
        uint64_t m = le_word(p + i, 8);
        v[3] ^= m;
        sip_rounds(v, 2);
        v[0] ^= m;
    }
    uint64_t last = (uint64_t)len << 56 | (len > i ? le_word(p + i, len - i) : 0);
    v[3] ^= last;
    sip_rounds(v, 2);
    v[0] ^= last;
    v[2] ^= 0xff;
    sip_rounds(v, 4);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* A connection's cost, not a message's; keyed, so clients cannot aim at one slot. */
static size_t home(const addr_table *t, const uint8_t addr[16])
{
    return (size_t)siphash24(t->key, addr, 16) & (t->cap - 1);
}

/* The slot holding addr, or the empty slot where it would go. */
static size_t find(const addr_table *t, const uint8_t addr[16])
{
    size_t i = home(t, addr);
    while (t->slots[i].count != 0 && memcmp(t->slots[i].addr, addr, 16) != 0) {
        i = (i + 1) & (t->cap - 1);
    }
    return i;
}

uint32_t addr_table_count(const addr_table *t, const uint8_t addr[16])
{
    if (t->used == 0) {
        return 0;
    }
    return t->slots[find(t, addr)].count;
}

static int grow(addr_table *t)
{
    size_t cap = t->cap == 0 ? 64 : t->cap * 2;
    addr_slot *slots = calloc(cap, sizeof *slots);
    if (slots == NULL) {
        return -1;
    }
    addr_slot *old = t->slots;
    size_t old_cap = t->cap;
    t->slots = slots;
    t->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].count != 0) {
            slots[find(t, old[i].addr)] = old[i];
        }
    }
    free(old);
    return 0;
}

int addr_table_add(addr_table *t, const uint8_t addr[16])
{
    /* At most half full, so probes stay short. */
    if ((t->used + 1) * 2 > t->cap && grow(t) != 0) {
        return -1;
    }
    addr_slot *s = &t->slots[find(t, addr)];
    if (s->count == 0) {
        memcpy(s->addr, addr, 16);
        t->used++;
    }
    s->count++;
    return 0;
}

void addr_table_remove(addr_table *t, const uint8_t addr[16])
{
    if (t->used == 0) {
        return;
    }
    size_t i = find(t, addr);
    if (t->slots[i].count == 0 || --t->slots[i].count > 0) {
        return;
    }
    /* Backward-shift deletion: pull later entries of the run into the hole, so lookups never
       need tombstones. */
    size_t mask = t->cap - 1;
    size_t hole = i;
    for (size_t j = (i + 1) & mask; t->slots[j].count != 0; j = (j + 1) & mask) {
        size_t h = home(t, t->slots[j].addr);
        /* Move j into the hole unless its home lies cyclically in (hole, j]. */
        bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
        if (!stays) {
            t->slots[hole] = t->slots[j];
            hole = j;
        }
    }
    memset(&t->slots[hole], 0, sizeof t->slots[hole]);
    t->used--;
}
