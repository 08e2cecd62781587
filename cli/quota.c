#include "quota.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "wsfwd.h"

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

/* A keyed hash (HMAC-SHA256 cut to a word): a connection's cost, not a message's. */
static size_t home(const addr_table *t, const uint8_t addr[16])
{
    uint8_t mac[WSFWD_SHA256_LEN];
    wsfwd_hmac_sha256(t->key, sizeof t->key, addr, 16, mac);
    size_t h;
    memcpy(&h, mac, sizeof h);
    return h & (t->cap - 1);
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
