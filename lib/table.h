/*
 * A hash table keyed by bytes: the hub's pools by name (lib/pool.c) and the server's tables
 * (cli/quota.c: connections per address; cli/cluster.c: rooms by channel). Internal: not
 * exported from the shared library.
 *
 * Open addressing with linear probing, at most half full, backward-shift deletion (no
 * tombstones). Keys are hashed with SipHash-1-3 under the caller's secret key, so a peer that
 * chooses the keys (room names, addresses) cannot aim them at one slot. The table stores
 * fixed-size entries inline (a pointer to the caller's object, or a small struct); the caller
 * says where an entry's key is with key_of, and the table keeps each entry's hash beside it.
 *
 * Pointers to entries stay valid until the next insert or remove. No callbacks but key_of,
 * which must not touch the table. Not thread-safe: one owner.
 */
#ifndef WSFWD_LIB_TABLE_H
#define WSFWD_LIB_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "wsfwd.h"

/* The key bytes of an entry (len bytes at the result). */
typedef const void *(*wsfwd_table_key_fn)(const void *entry, size_t *len);

typedef struct wsfwd_table {
    uint64_t *hashes;       /* cap hashes, top bit set; 0 marks an empty slot */
    unsigned char *entries; /* cap entries, in the same allocation as hashes */
    size_t cap;             /* a power of two, or 0 before the first insert */
    size_t used;
    size_t entry_size;
    size_t min_cap;
    uint64_t key[2];
    wsfwd_table_key_fn key_of;
    wsfwd_allocator alloc;
} wsfwd_table;

/*
 * An empty table (allocates nothing) of entries of entry_size bytes (aligned as a pointer or
 * less), min_cap slots at the first insert (a power of two, at least 2), hashing under key.
 * alloc NULL: malloc and free.
 */
void wsfwd_table_init(wsfwd_table *t, const wsfwd_allocator *alloc, size_t entry_size,
                      size_t min_cap, const uint64_t key[2], wsfwd_table_key_fn key_of);

/* Free the slots (not what entries point to); the table is empty and usable again. */
void wsfwd_table_free(wsfwd_table *t);

static inline size_t wsfwd_table_count(const wsfwd_table *t)
{
    return t->used;
}

/* The entry whose key is the len bytes at key, or NULL. key may be NULL when len is 0. */
void *wsfwd_table_find(const wsfwd_table *t, const void *key, size_t len);

/*
 * Room for a new entry with this key, which must not be in the table: returns the entry,
 * zeroed, for the caller to fill so that key_of gives this key back. Grows the table first
 * when it would be over half full: NULL if that allocation fails (the table unchanged).
 */
void *wsfwd_table_insert(wsfwd_table *t, const void *key, size_t len);

/* Remove an entry (a pointer the table returned since its last insert or remove). */
void wsfwd_table_remove(wsfwd_table *t, void *entry);

/*
 * A walk over every entry, in no particular order:
 *     wsfwd_table_iter it;
 *     wsfwd_table_iter_init(t, &it);
 *     for (void *e; (e = wsfwd_table_iter_next(t, &it)) != NULL;) { ... }
 * The loop may remove the entry it was just given (and only that one): each other entry is
 * still visited exactly once. It must not insert.
 */
typedef struct wsfwd_table_iter {
    size_t start; /* an empty slot: runs never cross it, so removals never move an entry
                     from the unvisited part into the visited part */
    size_t left;  /* slots still to look at, walking down from start */
} wsfwd_table_iter;

void wsfwd_table_iter_init(const wsfwd_table *t, wsfwd_table_iter *it);
void *wsfwd_table_iter_next(const wsfwd_table *t, wsfwd_table_iter *it);

#endif
