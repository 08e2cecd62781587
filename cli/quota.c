#include "quota.h"

#include <string.h>

#include "random.h"
#include "siphash.h"

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

/* ---- Connections per address: a keyed table of counts -------------------------------------- */

/* An entry: an address with at least one connection. */
typedef struct addr_entry {
    uint8_t addr[16];
    uint32_t count;
} addr_entry;

static const void *addr_key(const void *entry, size_t *len)
{
    *len = 16;
    return ((const addr_entry *)entry)->addr;
}

static const uint8_t V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void addr_normalise(uint8_t out[16], const uint8_t *in, bool ipv6)
{
    if (ipv6) {
        memcpy(out, in, 16);
    } else {
        memcpy(out, V4_MAPPED, 12);
        memcpy(out + 12, in, 4);
    }
}

bool addr_is_ipv4(const uint8_t addr[16])
{
    return memcmp(addr, V4_MAPPED, 12) == 0;
}

int addr_table_init(addr_table *t)
{
    /* A connection's cost, not a message's; keyed, so clients cannot aim at one slot. */
    memset(t, 0, sizeof *t); /* freeable even when there is no key */
    uint8_t bytes[16];
    if (wsfwd_random_bytes(bytes, sizeof bytes, 0) != 0) {
        return -1;
    }
    uint64_t key[2];
    wsfwd_siphash_key(key, bytes);
    wsfwd_table_init(t, NULL, sizeof(addr_entry), 64, key, addr_key);
    return 0;
}

void addr_table_free(addr_table *t)
{
    wsfwd_table_free(t);
}

uint32_t addr_table_count(const addr_table *t, const uint8_t addr[16])
{
    const addr_entry *e = wsfwd_table_find(t, addr, 16);
    return e != NULL ? e->count : 0;
}

int addr_table_add(addr_table *t, const uint8_t addr[16])
{
    addr_entry *e = wsfwd_table_find(t, addr, 16);
    if (e == NULL) {
        e = wsfwd_table_insert(t, addr, 16);
        if (e == NULL) {
            return -1;
        }
        memcpy(e->addr, addr, 16);
    }
    e->count++;
    return 0;
}

void addr_table_remove(addr_table *t, const uint8_t addr[16])
{
    addr_entry *e = wsfwd_table_find(t, addr, 16);
    if (e != NULL && --e->count == 0) {
        wsfwd_table_remove(t, e);
    }
}
