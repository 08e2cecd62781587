/* Base64: RFC 4648 section 10 vectors both ways, and everything the strict decoder rejects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base64.h"
#include "support.h"

static const struct {
    const char *plain;
    const char *coded;
} vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

#define NVEC (sizeof vectors / sizeof vectors[0])

static long decode(const char *s, uint8_t *out, size_t cap)
{
    return wsfwd_base64_decode(test_guarded_str(s), strlen(s), out, cap);
}

static void test_encode_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVEC; i++) {
        char out[16];
        size_t n = strlen(vectors[i].plain);
        size_t got = wsfwd_base64_encode((const uint8_t *)vectors[i].plain, n, out);
        assert_int_equal(got, WSFWD_BASE64_LEN(n));
        assert_string_equal(out, vectors[i].coded);
    }
}

static void test_decode_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVEC; i++) {
        uint8_t out[16];
        size_t n = strlen(vectors[i].plain);
        assert_int_equal(decode(vectors[i].coded, out, sizeof out), (long)n);
        assert_memory_equal(out, vectors[i].plain, n);
    }
}

static void test_roundtrip_all_bytes(void **state)
{
    (void)state;
    uint8_t in[256], back[256];
    char coded[WSFWD_BASE64_LEN(256) + 1];
    for (size_t i = 0; i < sizeof in; i++) {
        in[i] = (uint8_t)(255 - i);
    }
    for (size_t n = 0; n <= sizeof in; n++) {
        size_t c = wsfwd_base64_encode(in, n, coded);
        assert_int_equal(strlen(coded), c);
        assert_int_equal(wsfwd_base64_decode((const char *)test_guarded(coded, c), c, back, n),
                         (long)n);
        assert_memory_equal(back, in, n);
    }
}

static void test_bad_chars(void **state)
{
    (void)state;
    uint8_t out[16];
    const char *bad[] = {"Zm9v!mFy", "Zm9 YmFy", "Zm9v\nmFy",
                         "Zm9-YmFy", "Zm9_YmFy", "Zm9vYmF\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(decode(bad[i], out, sizeof out), -1);
    }
    /* An embedded NUL is a bad character too. */
    assert_int_equal(wsfwd_base64_decode("Zm\0v", 4, out, sizeof out), -1);
}

static void test_bad_padding(void **state)
{
    (void)state;
    uint8_t out[16];
    const char *bad[] = {"Z===",     "====",     "Zg=a", "Zm=v",
                         "Zg==Zm9v", "Zm8=Zm9v", "=m9v", "Zg=\x3d="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(decode(bad[i], out, sizeof out), -1);
    }
}

static void test_nonzero_pad_bits(void **state)
{
    (void)state;
    uint8_t out[16];
    assert_int_equal(decode("Zh==", out, sizeof out), -1); /* "Zg==" with a stray bit */
    assert_int_equal(decode("Zm9=", out, sizeof out), -1); /* "Zm8=" with a stray bit */
    assert_int_equal(decode("Zg==", out, sizeof out), 1);
    assert_int_equal(decode("Zm8=", out, sizeof out), 2);
}

static void test_wrong_lengths(void **state)
{
    (void)state;
    uint8_t out[16];
    const char *bad[] = {"Z", "Zg", "Zg=", "Zm9", "Zm9vY", "Zm9vYmF"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(decode(bad[i], out, sizeof out), -1);
    }
}

static void test_capacity(void **state)
{
    (void)state;
    uint8_t out[6];
    assert_int_equal(decode("Zm9vYmFy", out, 6), 6);
    assert_int_equal(decode("Zm9vYmFy", out, 5), -1);
    assert_int_equal(decode("Zm9vYmE=", out, 5), 5);
    assert_int_equal(decode("Zm9vYmE=", out, 4), -1);
    assert_int_equal(decode("Zg==", NULL, 0), -1);
    assert_int_equal(decode("", NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_vectors),      cmocka_unit_test(test_decode_vectors),
        cmocka_unit_test(test_roundtrip_all_bytes), cmocka_unit_test(test_bad_chars),
        cmocka_unit_test(test_bad_padding),         cmocka_unit_test(test_nonzero_pad_bits),
        cmocka_unit_test(test_wrong_lengths),       cmocka_unit_test(test_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
