/* lib/table.c: the keyed table (inline entries, growth, backward-shift deletion, the walk
   that may remove the entry it is on, a failing allocator). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "table.h"

static const uint64_t KEY[2] = {UINT64_C(0x0123456789abcdef), UINT64_C(0xfedcba9876543210)};

/* An entry: a number's 4 bytes as the key, and a value. */
typedef struct num_entry {
    uint32_t key;
    uint32_t value;
} num_entry;

static const void *num_key(const void *entry, size_t *len)
{
    *len = sizeof(uint32_t);
    return &((const num_entry *)entry)->key;
}

static num_entry *num_find(const wsfwd_table *t, uint32_t k)
{
    return wsfwd_table_find(t, &k, sizeof k);
}

static num_entry *num_insert(wsfwd_table *t, uint32_t k, uint32_t value)
{
    num_entry *e = wsfwd_table_insert(t, &k, sizeof k);
    if (e != NULL) {
        assert_int_equal(e->key, 0);
        assert_int_equal(e->value, 0);
        e->key = k;
        e->value = value;
    }
    return e;
}

static void test_empty(void **state)
{
    (void)state;
    wsfwd_table t;
    wsfwd_table_init(&t, NULL, sizeof(num_entry), 4, KEY, num_key);
    assert_int_equal(wsfwd_table_count(&t), 0);
    assert_null(num_find(&t, 1));
    assert_null(wsfwd_table_find(&t, NULL, 0));
    wsfwd_table_iter it;
    wsfwd_table_iter_init(&t, &it);
    assert_null(wsfwd_table_iter_next(&t, &it));
    wsfwd_table_free(&t);
    wsfwd_table_free(&t); /* freeing twice is harmless */
}

static void test_insert_find_remove(void **state)
{
    (void)state;
    wsfwd_table t;
    wsfwd_table_init(&t, NULL, sizeof(num_entry), 2, KEY, num_key);
    for (uint32_t k = 1; k <= 100; k++) {
        assert_non_null(num_insert(&t, k, k * 10));
        assert_true(t.used * 2 <= t.cap);
    }
    assert_int_equal(wsfwd_table_count(&t), 100);
    assert_int_equal(t.cap, 256);
    for (uint32_t k = 1; k <= 100; k++) {
        num_entry *e = num_find(&t, k);
        assert_non_null(e);
        assert_int_equal(e->value, k * 10);
    }
    assert_null(num_find(&t, 0));
    assert_null(num_find(&t, 101));
    for (uint32_t k = 1; k <= 100; k += 2) {
        wsfwd_table_remove(&t, num_find(&t, k));
    }
    assert_int_equal(wsfwd_table_count(&t), 50);
    for (uint32_t k = 1; k <= 100; k++) {
        num_entry *e = num_find(&t, k);
        if (k % 2 == 1) {
            assert_null(e);
        } else {
            assert_non_null(e);
            assert_int_equal(e->value, k * 10);
        }
    }
    wsfwd_table_free(&t);
    assert_int_equal(wsfwd_table_count(&t), 0);
    assert_null(num_find(&t, 2));
    assert_non_null(num_insert(&t, 2, 3)); /* usable again after free */
    assert_int_equal(num_find(&t, 2)->value, 3);
    wsfwd_table_free(&t);
}

/* Variable-length keys held by the caller's objects, including the empty key. */
typedef struct named {
    size_t len;
    char name[16];
} named;

static const void *named_key(const void *entry, size_t *len)
{
    const named *n = *(named *const *)entry;
    *len = n->len;
    return n->name;
}

static void test_pointer_entries(void **state)
{
    (void)state;
    static named items[] = {{0, ""}, {1, "a"}, {2, "ab"}, {3, "abc"}, {9, "abc\0defgh"}};
    wsfwd_table t;
    wsfwd_table_init(&t, NULL, sizeof(named *), 16, KEY, named_key);
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        named **slot = wsfwd_table_insert(&t, items[i].name, items[i].len);
        assert_non_null(slot);
        *slot = &items[i];
    }
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        named **slot = wsfwd_table_find(&t, items[i].name, items[i].len);
        assert_non_null(slot);
        assert_ptr_equal(*slot, &items[i]);
    }
    named **empty = wsfwd_table_find(&t, NULL, 0);
    assert_non_null(empty);
    assert_ptr_equal(*empty, &items[0]);
    assert_null(wsfwd_table_find(&t, "abc\0defgi", 9));
    assert_null(wsfwd_table_find(&t, "abcd", 4));
    wsfwd_table_free(&t);
}

/* Many keys in and out in a random order, against a plain array: growth and backward-shift
   deletion (also across the end of the array) keep every other key findable. */
static void test_many_against_reference(void **state)
{
    (void)state;
    enum { N = 2000 };
    static bool in[N];
    memset(in, 0, sizeof in);
    wsfwd_table t;
    wsfwd_table_init(&t, NULL, sizeof(num_entry), 2, KEY, num_key);
    size_t count = 0;
    srand(11);
    for (int step = 0; step < 100000; step++) {
        uint32_t k = (uint32_t)(rand() % N);
        if (in[k]) {
            wsfwd_table_remove(&t, num_find(&t, k));
            in[k] = false;
            count--;
        } else {
            assert_non_null(num_insert(&t, k, k ^ 0x5a5a));
            in[k] = true;
            count++;
        }
        if (step % 499 == 0) {
            assert_int_equal(wsfwd_table_count(&t), count);
            for (uint32_t q = 0; q < N; q++) {
                num_entry *e = num_find(&t, q);
                assert_true(in[q] == (e != NULL));
                if (e != NULL) {
                    assert_int_equal(e->value, q ^ 0x5a5a);
                }
            }
        }
    }
    wsfwd_table_free(&t);
}

/* The walk visits every entry once, also when it removes the entry it is on. */
static void test_walk_and_remove(void **state)
{
    (void)state;
    enum { N = 1000 };
    static unsigned seen[N];
    for (int round = 0; round < 3; round++) {
        wsfwd_table t;
        wsfwd_table_init(&t, NULL, sizeof(num_entry), 2, KEY, num_key);
        for (uint32_t k = 0; k < N; k++) {
            assert_non_null(num_insert(&t, k, 0));
        }
        memset(seen, 0, sizeof seen);
        wsfwd_table_iter it;
        wsfwd_table_iter_init(&t, &it);
        for (num_entry *e; (e = wsfwd_table_iter_next(&t, &it)) != NULL;) {
            uint32_t k = e->key;
            seen[k]++;
            /* round 0 removes nothing, round 1 every other key, round 2 every key */
            if (round == 2 || (round == 1 && k % 2 == 0)) {
                wsfwd_table_remove(&t, e);
            }
        }
        for (uint32_t k = 0; k < N; k++) {
            assert_int_equal(seen[k], 1);
            bool kept = round == 0 || (round == 1 && k % 2 == 1);
            assert_true(kept == (num_find(&t, k) != NULL));
        }
        assert_int_equal(wsfwd_table_count(&t), round == 0 ? N : round == 1 ? N / 2 : 0);
        wsfwd_table_free(&t);
    }
}

/* An allocator that fails once its budget of allocations is spent. */
static int budget;

static void *budget_malloc(size_t size, void *ud)
{
    (void)ud;
    if (budget == 0) {
        return NULL;
    }
    budget--;
    return malloc(size);
}

static void *budget_realloc(void *ptr, size_t size, void *ud)
{
    (void)ud;
    return realloc(ptr, size);
}

static void budget_free(void *ptr, void *ud)
{
    (void)ud;
    free(ptr);
}

static void test_growth_failure_leaves_table(void **state)
{
    (void)state;
    wsfwd_allocator a = {budget_malloc, budget_realloc, budget_free, NULL};
    wsfwd_table t;
    wsfwd_table_init(&t, &a, sizeof(num_entry), 4, KEY, num_key);
    budget = 0;
    assert_null(num_insert(&t, 1, 1)); /* the first slots cannot be had */
    assert_int_equal(wsfwd_table_count(&t), 0);
    budget = 1;
    assert_non_null(num_insert(&t, 1, 1));
    assert_non_null(num_insert(&t, 2, 2)); /* 4 slots hold 2 */
    assert_null(num_insert(&t, 3, 3));     /* the third needs 8: refused */
    assert_int_equal(wsfwd_table_count(&t), 2);
    assert_int_equal(t.cap, 4);
    assert_int_equal(num_find(&t, 1)->value, 1);
    assert_int_equal(num_find(&t, 2)->value, 2);
    assert_null(num_find(&t, 3));
    budget = 1;
    assert_non_null(num_insert(&t, 3, 3));
    assert_int_equal(t.cap, 8);
    for (uint32_t k = 1; k <= 3; k++) {
        assert_int_equal(num_find(&t, k)->value, k);
    }
    wsfwd_table_free(&t);
}

/* Two tables under different keys place the same keys differently (the point of the key). */
static void test_key_matters(void **state)
{
    (void)state;
    static const uint64_t other[2] = {1, 2};
    wsfwd_table a, b;
    wsfwd_table_init(&a, NULL, sizeof(num_entry), 1024, KEY, num_key);
    wsfwd_table_init(&b, NULL, sizeof(num_entry), 1024, other, num_key);
    size_t same = 0;
    for (uint32_t k = 0; k < 64; k++) {
        num_entry *ea = num_insert(&a, k, 0), *eb = num_insert(&b, k, 0);
        same +=
            (size_t)((unsigned char *)ea - a.entries) == (size_t)((unsigned char *)eb - b.entries);
    }
    assert_true(same < 8);
    wsfwd_table_free(&a);
    wsfwd_table_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),           cmocka_unit_test(test_insert_find_remove),
        cmocka_unit_test(test_pointer_entries), cmocka_unit_test(test_many_against_reference),
        cmocka_unit_test(test_walk_and_remove), cmocka_unit_test(test_growth_failure_leaves_table),
        cmocka_unit_test(test_key_matters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
