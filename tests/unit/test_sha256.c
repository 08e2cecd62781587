/* SHA-256 against the FIPS 180-4 examples, one-shot and incremental, split at every offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sha256.h"

static void hex(const uint8_t d[WSFWD_SHA256_LEN], char out[65])
{
    for (int i = 0; i < WSFWD_SHA256_LEN; i++) {
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    }
}

/* The one-shot and the incremental context must agree with want. */
static void check_oneshot(const char *msg, size_t len, const char *want)
{
    uint8_t d[WSFWD_SHA256_LEN];
    char got[65];
    wsfwd_sha256(msg, len, d);
    hex(d, got);
    assert_string_equal(got, want);

    wsfwd_sha256_ctx ctx;
    wsfwd_sha256_init(&ctx);
    wsfwd_sha256_update(&ctx, msg, len);
    wsfwd_sha256_final(&ctx, d);
    hex(d, got);
    assert_string_equal(got, want);
}

static void test_abc(void **state)
{
    (void)state;
    check_oneshot("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_448_bits(void **state)
{
    (void)state;
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_oneshot(m, strlen(m), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_896_bits(void **state)
{
    (void)state;
    const char *m =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
        "klmnopqrlmnopqrsmnopqrstnopqrstu";
    check_oneshot(m, strlen(m), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_empty(void **state)
{
    (void)state;
    const char *want = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    check_oneshot("", 0, want);
    uint8_t d[WSFWD_SHA256_LEN];
    char got[65];
    wsfwd_sha256(NULL, 0, d); /* NULL is allowed with length 0 */
    hex(d, got);
    assert_string_equal(got, want);
}

static void test_million_a(void **state)
{
    (void)state;
    const char *want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    /* In 1000 pieces of 1000 (the context), then as one buffer (the one-shot). */
    static char big[1000000];
    memset(big, 'a', sizeof big);
    wsfwd_sha256_ctx ctx;
    uint8_t d[WSFWD_SHA256_LEN];
    char got[65];
    wsfwd_sha256_init(&ctx);
    for (int i = 0; i < 1000; i++) {
        wsfwd_sha256_update(&ctx, big, 1000);
    }
    wsfwd_sha256_final(&ctx, d);
    hex(d, got);
    assert_string_equal(got, want);
    check_oneshot(big, sizeof big, want);
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
        uint8_t want[WSFWD_SHA256_LEN];
        wsfwd_sha256(msg, n, want);
        wsfwd_sha256_ctx ctx;
        for (size_t a = 0; a <= n; a++) {
            for (size_t b = a; b <= n; b += 13) {
                uint8_t got[WSFWD_SHA256_LEN];
                wsfwd_sha256_init(&ctx);
                wsfwd_sha256_update(&ctx, msg, a);
                wsfwd_sha256_update(&ctx, msg + a, b - a);
                wsfwd_sha256_update(&ctx, msg + b, n - b);
                wsfwd_sha256_final(&ctx, got);
                assert_memory_equal(got, want, sizeof want);
            }
        }
        uint8_t got[WSFWD_SHA256_LEN];
        wsfwd_sha256_init(&ctx);
        for (size_t i = 0; i < n; i++) {
            wsfwd_sha256_update(&ctx, msg + i, 1);
        }
        wsfwd_sha256_final(&ctx, got);
        assert_memory_equal(got, want, sizeof want);
    }
}

/* The one-shot of 64 and 65 bytes of known text (pins the digest, not just self-agreement). */
static void test_block_boundaries(void **state)
{
    (void)state;
    char m[65];
    memset(m, 'a', sizeof m);
    check_oneshot(m, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
    check_oneshot(m, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    check_oneshot(m, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abc),
        cmocka_unit_test(test_448_bits),
        cmocka_unit_test(test_896_bits),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_split_every_offset),
        cmocka_unit_test(test_block_boundaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
