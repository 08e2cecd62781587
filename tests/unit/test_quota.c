/* The command's limits (cli/quota.c): the message token bucket and the per-address table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "quota.h"

/* SipHash-2-4 against the reference vectors (github.com/veorq/SipHash, vectors.h): key
   00 01 .. 0f, message 00 01 .. of every length from 0 to 63. */
static const uint64_t SIPHASH24_VECTORS[64] = {
    UINT64_C(0x726fdb47dd0e0e31), UINT64_C(0x74f839c593dc67fd), UINT64_C(0x0d6c8009d9a94f5a),
    UINT64_C(0x85676696d7fb7e2d), UINT64_C(0xcf2794e0277187b7), UINT64_C(0x18765564cd99a68d),
    UINT64_C(0xcbc9466e58fee3ce), UINT64_C(0xab0200f58b01d137), UINT64_C(0x93f5f5799a932462),
    UINT64_C(0x9e0082df0ba9e4b0), UINT64_C(0x7a5dbbc594ddb9f3), UINT64_C(0xf4b32f46226bada7),
    UINT64_C(0x751e8fbc860ee5fb), UINT64_C(0x14ea5627c0843d90), UINT64_C(0xf723ca908e7af2ee),
    UINT64_C(0xa129ca6149be45e5), UINT64_C(0x3f2acc7f57c29bdb), UINT64_C(0x699ae9f52cbe4794),
    UINT64_C(0x4bc1b3f0968dd39c), UINT64_C(0xbb6dc91da77961bd), UINT64_C(0xbed65cf21aa2ee98),
    UINT64_C(0xd0f2cbb02e3b67c7), UINT64_C(0x93536795e3a33e88), UINT64_C(0xa80c038ccd5ccec8),
    UINT64_C(0xb8ad50c6f649af94), UINT64_C(0xbce192de8a85b8ea), UINT64_C(0x17d835b85bbb15f3),
    UINT64_C(0x2f2e6163076bcfad), UINT64_C(0xde4daaaca71dc9a5), UINT64_C(0xa6a2506687956571),
    UINT64_C(0xad87a3535c49ef28), UINT64_C(0x32d892fad841c342), UINT64_C(0x7127512f72f27cce),
    UINT64_C(0xa7f32346f95978e3), UINT64_C(0x12e0b01abb051238), UINT64_C(0x15e034d40fa197ae),
    UINT64_C(0x314dffbe0815a3b4), UINT64_C(0x027990f029623981), UINT64_C(0xcadcd4e59ef40c4d),
    UINT64_C(0x9abfd8766a33735c), UINT64_C(0x0e3ea96b5304a7d0), UINT64_C(0xad0c42d6fc585992),
    UINT64_C(0x187306c89bc215a9), UINT64_C(0xd4a60abcf3792b95), UINT64_C(0xf935451de4f21df2),
    UINT64_C(0xa9538f0419755787), UINT64_C(0xdb9acddff56ca510), UINT64_C(0xd06c98cd5c0975eb),
    UINT64_C(0xe612a3cb9ecba951), UINT64_C(0xc766e62cfcadaf96), UINT64_C(0xee64435a9752fe72),
    UINT64_C(0xa192d576b245165a), UINT64_C(0x0a8787bf8ecb74b2), UINT64_C(0x81b3e73d20b49b6f),
    UINT64_C(0x7fa8220ba3b2ecea), UINT64_C(0x245731c13ca42499), UINT64_C(0xb78dbfaf3a8d83bd),
    UINT64_C(0xea1ad565322a1a0b), UINT64_C(0x60e61c23a3795013), UINT64_C(0x6606d7e446282b93),
    UINT64_C(0x6ca4ecb15c5f91e1), UINT64_C(0x9f626da15c9625f3), UINT64_C(0xe51b38608ef25f57),
    UINT64_C(0x958a324ceb064572),
};

static void test_siphash24_vectors(void **state)
{
    (void)state;
    uint8_t key[16], msg[64];
    for (int i = 0; i < 16; i++) {
        key[i] = (uint8_t)i;
    }
    for (int i = 0; i < 64; i++) {
        msg[i] = (uint8_t)i;
    }
    for (size_t len = 0; len < 64; len++) {
        assert_int_equal(siphash24(key, msg, len), SIPHASH24_VECTORS[len]);
    }
    assert_int_equal(siphash24(key, NULL, 0), SIPHASH24_VECTORS[0]);
}

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
    assert_false(rate_bucket_take(&b, &one, 0));  /* 500 ms after, across the wrap */
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
        cmocka_unit_test(test_siphash24_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
