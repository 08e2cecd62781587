/* The command's limits (cli/quota.c): the message token bucket and the per-address table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "quota.h"

static void test_bucket_burst_then_rate(void **state)
{
    (void)state;
    rate_rule r = {10, 3}; /* 10 a second, 3 at once */
    rate_bucket b;
    rate_bucket_fill(&b, &r, 1000);
    assert_true(rate_bucket_take(&b, &r, 1000));
    assert_true(rate_bucket_take(&b, &r, 1000));
    assert_true(rate_bucket_take(&b, &r, 1000));
    assert_false(rate_bucket_take(&b, &r, 1000)); /* the burst is spent */
    assert_false(rate_bucket_take(&b, &r, 1099)); /* 99 ms: 0.99 of a message */
    assert_true(rate_bucket_take(&b, &r, 1100));  /* 100 ms makes one */
    assert_false(rate_bucket_take(&b, &r, 1100));
    /* A long pause refills only up to the burst. */
    for (int i = 0; i < 3; i++) {
        assert_true(rate_bucket_take(&b, &r, 60000));
    }
    assert_false(rate_bucket_take(&b, &r, 60000));
}

static void test_bucket_steady_rate_passes(void **state)
{
    (void)state;
    rate_rule r = {100, 1};
    rate_bucket b;
    rate_bucket_fill(&b, &r, 0);
    /* One message every 10 ms for 10 s is exactly the rate: never refused. */
    for (uint32_t t = 0; t < 10000; t += 10) {
        assert_true(rate_bucket_take(&b, &r, t));
    }
    /* Twice the rate: every other message refused. */
    int refused = 0;
    for (uint32_t t = 10000; t < 11000; t += 5) {
        refused += !rate_bucket_take(&b, &r, t);
    }
    assert_int_equal(refused, 100);
}

static void test_bucket_clock_wraps_and_extremes(void **state)
{
    (void)state;
    rate_rule r = {RATE_MAX, RATE_MAX};
    rate_bucket b;
    rate_bucket_fill(&b, &r, UINT32_MAX - 5);
    for (int i = 0; i < 1000; i++) {
        assert_true(rate_bucket_take(&b, &r, UINT32_MAX - 5));
    }
    /* The 32-bit millisecond clock wraps: 10 ms later is a small number. */
    assert_true(rate_bucket_take(&b, &r, 4));
    assert_true(b.level <= (uint64_t)RATE_MAX * 1000);
    rate_rule one = {1, 1};
    rate_bucket_fill(&b, &one, UINT32_MAX - 499);
    assert_true(rate_bucket_take(&b, &one, UINT32_MAX - 499));
    assert_false(rate_bucket_take(&b, &one, 0)); /* 500 ms after, across the wrap */
    assert_true(rate_bucket_take(&b, &one, 1000));
}

static void v4(uint8_t out[16], uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    const uint8_t in[4] = {a, b, c, d};
    addr_normalise(out, in, false);
}

static void test_normalise(void **state)
{
    (void)state;
    uint8_t got[16];
    v4(got, 192, 0, 2, 1);
    const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
    assert_memory_equal(got, mapped, 16);
    uint8_t v6[16];
    addr_normalise(v6, mapped, true); /* ::ffff:192.0.2.1 from an IPv6 listener */
    assert_memory_equal(v6, got, 16);
    assert_true(addr_is_ipv4(got));
    const uint8_t loopback6[16] = {[15] = 1};
    assert_false(addr_is_ipv4(loopback6));
    const uint8_t nat64[16] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1};
    assert_false(addr_is_ipv4(nat64));
}

static void test_table_counts(void **state)
{
    (void)state;
    addr_table t;
    assert_int_equal(addr_table_init(&t), 0);
    uint8_t a[16], b[16];
    v4(a, 10, 0, 0, 1);
    v4(b, 10, 0, 0, 2);
    assert_int_equal(addr_table_count(&t, a), 0);
    addr_table_remove(&t, a); /* not counted: ignored, also on an empty table */
    assert_int_equal(addr_table_add(&t, a), 0);
    assert_int_equal(addr_table_add(&t, a), 0);
    assert_int_equal(addr_table_add(&t, b), 0);
    assert_int_equal(addr_table_count(&t, a), 2);
    assert_int_equal(addr_table_count(&t, b), 1);
    addr_table_remove(&t, a);
    assert_int_equal(addr_table_count(&t, a), 1);
    addr_table_remove(&t, a);
    assert_int_equal(addr_table_count(&t, a), 0);
    assert_int_equal(t.used, 1);
    addr_table_remove(&t, a);
    assert_int_equal(addr_table_count(&t, b), 1);
    addr_table_free(&t);
}

/* Many addresses in and out in a shuffled order, checked against plain counts: growth and the
   backward-shift deletion keep every other address findable. */
static void test_table_many(void **state)
{
    (void)state;
    enum { N = 3000 };
    addr_table t;
    assert_int_equal(addr_table_init(&t), 0);
    static uint32_t counts[N];
    memset(counts, 0, sizeof counts);
    srand(7);
    for (int step = 0; step < 200000; step++) {
        int i = rand() % N;
        uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8};
        memcpy(a + 12, &i, sizeof i);
        if (counts[i] > 0 && rand() % 2 == 0) {
            addr_table_remove(&t, a);
            counts[i]--;
        } else {
            assert_int_equal(addr_table_add(&t, a), 0);
            counts[i]++;
        }
        if (step % 997 == 0) {
            size_t used = 0;
            for (int k = 0; k < N; k++) {
                uint8_t q[16] = {0x20, 0x01, 0x0d, 0xb8};
                memcpy(q + 12, &k, sizeof k);
                assert_int_equal(addr_table_count(&t, q), counts[k]);
                used += counts[k] > 0;
            }
            assert_int_equal(t.used, used);
        }
    }
    for (int k = 0; k < N; k++) {
        uint8_t q[16] = {0x20, 0x01, 0x0d, 0xb8};
        memcpy(q + 12, &k, sizeof k);
        while (counts[k] > 0) {
            addr_table_remove(&t, q);
            counts[k]--;
        }
    }
    assert_int_equal(t.used, 0);
    addr_table_free(&t);
}

static void test_tables_keyed_apart(void **state)
{
    (void)state;
    addr_table a, b;
    assert_int_equal(addr_table_init(&a), 0);
    assert_int_equal(addr_table_init(&b), 0);
    assert_memory_not_equal(a.key, b.key, sizeof a.key);
    addr_table_free(&a);
    addr_table_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_burst_then_rate),
        cmocka_unit_test(test_bucket_steady_rate_passes),
        cmocka_unit_test(test_bucket_clock_wraps_and_extremes),
        cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_table_counts),
        cmocka_unit_test(test_table_many),
        cmocka_unit_test(test_tables_keyed_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
