/* SHA-1 against the FIPS 180 / RFC 3174 vectors, one-shot and split at every offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sha1.h"

static void hex(const uint8_t d[WSFWD_SHA1_DIGEST_LEN], char out[41])
{
    for (int i = 0; i < WSFWD_SHA1_DIGEST_LEN; i++) {
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    }
}

static void check_oneshot(const char *msg, size_t len, const char *want)
{
    wsfwd_sha1 ctx;
    uint8_t d[WSFWD_SHA1_DIGEST_LEN];
    char got[41];
    wsfwd_sha1_init(&ctx);
    wsfwd_sha1_update(&ctx, msg, len);
    wsfwd_sha1_final(&ctx, d);
    hex(d, got);
    assert_string_equal(got, want);
}

static void test_abc(void **state)
{
    (void)state;
    check_oneshot("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
}

static void test_448_bits(void **state)
{
    (void)state;
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_oneshot(m, strlen(m), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

static void test_empty(void **state)
{
    (void)state;
    check_oneshot("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

static void test_million_a(void **state)
{
    (void)state;
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    wsfwd_sha1 ctx;
    uint8_t d[WSFWD_SHA1_DIGEST_LEN];
    char got[41];
    wsfwd_sha1_init(&ctx);
    for (int i = 0; i < 1000; i++) {
        wsfwd_sha1_update(&ctx, chunk, sizeof chunk);
    }
    wsfwd_sha1_final(&ctx, d);
    hex(d, got);
    assert_string_equal(got, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

/* RFC 3174's fourth vector: 80 bytes repeated 10 times, crossing many block boundaries. */
static void test_rfc3174_repeated(void **state)
{
    (void)state;
    const char *unit = "0123456701234567012345670123456701234567012345670123456701234567";
    char m[640 + 1];
    m[0] = '\0';
    for (int i = 0; i < 10; i++) {
        strcat(m, unit);
    }
    check_oneshot(m, 640, "dea356a2cddd90c7a7ecedc5ebb563934f460452");
}

/* Lengths around the padding boundary (55, 56, 63, 64, 65) split at every offset. */
static void test_split_every_offset(void **state)
{
    (void)state;
    uint8_t msg[200];
    for (size_t i = 0; i < sizeof msg; i++) {
        msg[i] = (uint8_t)(i * 7 + 3);
    }
    const size_t lens[] = {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 200};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        wsfwd_sha1 ctx;
        uint8_t want[WSFWD_SHA1_DIGEST_LEN];
        wsfwd_sha1_init(&ctx);
        wsfwd_sha1_update(&ctx, msg, n);
        wsfwd_sha1_final(&ctx, want);
        for (size_t a = 0; a <= n; a++) {
            for (size_t b = a; b <= n; b += 13) {
                uint8_t got[WSFWD_SHA1_DIGEST_LEN];
                wsfwd_sha1_init(&ctx);
                wsfwd_sha1_update(&ctx, msg, a);
                wsfwd_sha1_update(&ctx, msg + a, b - a);
                wsfwd_sha1_update(&ctx, msg + b, n - b);
                wsfwd_sha1_final(&ctx, got);
                assert_memory_equal(got, want, sizeof want);
            }
        }
        /* Byte at a time. */
        uint8_t got[WSFWD_SHA1_DIGEST_LEN];
        wsfwd_sha1_init(&ctx);
        for (size_t i = 0; i < n; i++) {
            wsfwd_sha1_update(&ctx, msg + i, 1);
        }
        wsfwd_sha1_final(&ctx, got);
        assert_memory_equal(got, want, sizeof want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abc),
        cmocka_unit_test(test_448_bits),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_rfc3174_repeated),
        cmocka_unit_test(test_split_every_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
