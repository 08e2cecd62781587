/*
 * libFuzzer target for lib/table.c, against a plain array of 256 keys.
 *
 * Input: pairs of bytes (op, k). Key k is the byte k repeated 1 + k % 4 times. Ops: insert k
 * if absent, remove k if present, find k, make the next growth's allocation fail, and a walk
 * that removes every entry whose key byte has bit (k % 8) set. After each op the count must
 * match; a walk must visit each entry once; at the end every key is looked up.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct entry {
    uint8_t key[4];
    uint8_t len;
    uint32_t value;
} entry;

static const void *entry_key(const void *e, size_t *len)
{
    *len = ((const entry *)e)->len;
    return ((const entry *)e)->key;
}

static bool fail_next;

static void *fz_malloc(size_t size, void *ud)
{
    (void)ud;
    if (fail_next) {
        fail_next = false;
        return NULL;
    }
    return malloc(size);
}

static void *fz_realloc(void *p, size_t size, void *ud)
{
    (void)ud;
    return realloc(p, size);
}

static void fz_free(void *p, void *ud)
{
    (void)ud;
    free(p);
}

static size_t make_key(uint8_t k, uint8_t out[4])
{
    size_t len = 1 + (size_t)(k % 4);
    memset(out, k, len);
    return len;
}

static entry *find(const wsfwd_table *t, uint8_t k)
{
    uint8_t key[4];
    size_t len = make_key(k, key);
    entry *e = wsfwd_table_find(t, key, len);
    CHECK(e == NULL || (e->len == len && memcmp(e->key, key, len) == 0));
    return e;
}

static void walk(wsfwd_table *t, bool in[256], uint32_t values[256], unsigned bit)
{
    unsigned seen[256] = {0};
    bool was_in[256];
    memcpy(was_in, in, sizeof was_in);
    wsfwd_table_iter it;
    wsfwd_table_iter_init(t, &it);
    for (entry *e; (e = wsfwd_table_iter_next(t, &it)) != NULL;) {
        uint8_t k = e->key[0];
        CHECK(in[k] && e->value == values[k]);
        seen[k]++;
        if ((k >> bit) & 1) {
            wsfwd_table_remove(t, e);
            in[k] = false;
        }
    }
    for (int k = 0; k < 256; k++) {
        CHECK(seen[k] == (was_in[k] ? 1u : 0u));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t key[2] = {UINT64_C(0x5eed), UINT64_C(0xfeed)};
    wsfwd_allocator a = {fz_malloc, fz_realloc, fz_free, NULL};
    wsfwd_table t;
    wsfwd_table_init(&t, &a, sizeof(entry), 2, key, entry_key);
    bool in[256] = {false};
    uint32_t values[256] = {0};
    size_t count = 0;
    fail_next = false;
    for (size_t i = 0; i + 1 < size; i += 2) {
        uint8_t op = data[i] % 5, k = data[i + 1];
        entry *e = find(&t, k);
        CHECK((e != NULL) == in[k]);
        if (op == 0 && !in[k]) {
            uint8_t kb[4];
            size_t len = make_key(k, kb);
            e = wsfwd_table_insert(&t, kb, len);
            if (e != NULL) {
                memcpy(e->key, kb, len);
                e->len = (uint8_t)len;
                e->value = values[k] = (uint32_t)i;
                in[k] = true;
            }
        } else if (op == 1 && in[k]) {
            wsfwd_table_remove(&t, e);
            in[k] = false;
        } else if (op == 2 && e != NULL) {
            CHECK(e->value == values[k]);
        } else if (op == 3) {
            fail_next = true;
        } else if (op == 4) {
            walk(&t, in, values, k % 8);
        }
        count = 0;
        for (int q = 0; q < 256; q++) {
            count += in[q];
        }
        CHECK(wsfwd_table_count(&t) == count);
        CHECK(t.cap == 0 || wsfwd_table_count(&t) * 2 <= t.cap);
    }
    for (int q = 0; q < 256; q++) {
        entry *e = find(&t, (uint8_t)q);
        CHECK((e != NULL) == in[q] && (e == NULL || e->value == values[q]));
    }
    wsfwd_table_free(&t);
    return 0;
}
