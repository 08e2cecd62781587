/*
 * The keyed hash table (see table.h): the one copy of open addressing over SipHash-1-3 in
 * lib/ and cli/. Owns its slot array; the entries' objects belong to the caller.
 */
#include "table.h"

#include <stdbool.h>
#include <string.h>

#include "mem.h"
#include "siphash.h"

#define FULL_BIT (UINT64_C(1) << 63)

void wsfwd_table_init(wsfwd_table *t, const wsfwd_allocator *alloc, size_t entry_size,
                      size_t min_cap, const uint64_t key[2], wsfwd_table_key_fn key_of)
{
    memset(t, 0, sizeof *t);
    t->entry_size = entry_size;
    t->min_cap = min_cap;
    t->key[0] = key[0];
    t->key[1] = key[1];
    t->key_of = key_of;
    wsfwd_mem_init(&t->alloc, alloc);
}

void wsfwd_table_free(wsfwd_table *t)
{
    wsfwd_mem_free(&t->alloc, t->hashes);
    t->hashes = NULL;
    t->entries = NULL;
    t->cap = 0;
    t->used = 0;
}

static uint64_t hash_key(const wsfwd_table *t, const void *key, size_t len)
{
    return wsfwd_siphash(t->key, key, len, 1, 3) | FULL_BIT;
}

static void *entry_at(const wsfwd_table *t, size_t i)
{
    return t->entries + i * t->entry_size;
}

static bool entry_has_key(const wsfwd_table *t, size_t i, const void *key, size_t len)
{
    size_t elen = 0;
    const void *ekey = t->key_of(entry_at(t, i), &elen);
    return elen == len && (len == 0 || memcmp(ekey, key, len) == 0);
}

/* The slot holding the key, or the empty slot where it would go (cap > 0). */
static size_t slot_of(const wsfwd_table *t, const void *key, size_t len, uint64_t hash)
{
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        uint64_t h = t->hashes[i];
        if (h == 0 || (h == hash && entry_has_key(t, i, key, len))) {
            return i;
        }
    }
}

void *wsfwd_table_find(const wsfwd_table *t, const void *key, size_t len)
{
    if (t->used == 0) {
        return NULL;
    }
    size_t i = slot_of(t, key, len, hash_key(t, key, len));
    return t->hashes[i] != 0 ? entry_at(t, i) : NULL;
}

/* The empty slot for an entry of this hash (not in the table). */
static size_t free_slot(const wsfwd_table *t, uint64_t hash)
{
    size_t mask = t->cap - 1;
    size_t i = (size_t)hash & mask;
    while (t->hashes[i] != 0) {
        i = (i + 1) & mask;
    }
    return i;
}

static bool grow(wsfwd_table *t)
{
    size_t cap = t->cap == 0 ? t->min_cap : t->cap * 2;
    size_t per_slot = sizeof(uint64_t) + t->entry_size;
    if (cap == 0 || cap > SIZE_MAX / per_slot) {
        return false;
    }
    uint64_t *block = wsfwd_mem_alloc(&t->alloc, cap * per_slot);
    if (block == NULL) {
        return false;
    }
    memset(block, 0, cap * per_slot);
    wsfwd_table old = *t;
    t->hashes = block;
    t->entries = (unsigned char *)(block + cap);
    t->cap = cap;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.hashes[i] != 0) {
            size_t j = free_slot(t, old.hashes[i]);
            t->hashes[j] = old.hashes[i];
            memcpy(entry_at(t, j), entry_at(&old, i), t->entry_size);
        }
    }
    wsfwd_mem_free(&t->alloc, old.hashes);
    return true;
}

void *wsfwd_table_insert(wsfwd_table *t, const void *key, size_t len)
{
    /* At most half full, so probes stay short and an empty slot always exists. */
    if ((t->used + 1) * 2 > t->cap && !grow(t)) {
        return NULL;
    }
    uint64_t hash = hash_key(t, key, len);
    size_t i = free_slot(t, hash);
    t->hashes[i] = hash;
    t->used++;
    void *e = entry_at(t, i);
    memset(e, 0, t->entry_size);
    return e;
}

void wsfwd_table_remove(wsfwd_table *t, void *entry)
{
    size_t mask = t->cap - 1;
    size_t hole = (size_t)((unsigned char *)entry - t->entries) / t->entry_size;
    /* Backward shift: pull later entries of the run into the hole, unless an entry's home
       lies cyclically in (hole, j], where it must stay to be found. */
    for (size_t j = (hole + 1) & mask; t->hashes[j] != 0; j = (j + 1) & mask) {
        size_t home = (size_t)t->hashes[j] & mask;
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            t->hashes[hole] = t->hashes[j];
            memcpy(entry_at(t, hole), entry_at(t, j), t->entry_size);
            hole = j;
        }
    }
    t->hashes[hole] = 0;
    memset(entry_at(t, hole), 0, t->entry_size);
    t->used--;
}

void wsfwd_table_iter_init(const wsfwd_table *t, wsfwd_table_iter *it)
{
    it->start = 0;
    it->left = 0;
    if (t->used == 0) {
        return;
    }
    while (t->hashes[it->start] != 0) {
        it->start++;
    }
    it->left = t->cap - 1;
}

void *wsfwd_table_iter_next(const wsfwd_table *t, wsfwd_table_iter *it)
{
    /* Walking down from the empty start slot: a removal shifts entries only from later in
       their run, which lies between the removed slot and start, all visited already. */
    size_t mask = t->cap - 1;
    while (it->left > 0) {
        size_t i = (it->start + it->left) & mask;
        it->left--;
        if (t->hashes[i] != 0) {
            return entry_at(t, i);
        }
    }
    return NULL;
}
