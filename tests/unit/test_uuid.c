/* Version 4 UUIDs: the version and variant bits, and the text form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "uuid.h"

static void test_bits_and_format(void **state)
{
    (void)state;
    uint8_t b[16];
    memset(b, 0xFF, sizeof b);
    wsfwd_uuid_v4(b);
    char s[37];
    wsfwd_uuid_format(b, s);
    assert_string_equal(s, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    memset(b, 0x00, sizeof b);
    wsfwd_uuid_v4(b);
    wsfwd_uuid_format(b, s);
    assert_string_equal(s, "00000000-0000-4000-8000-000000000000");
    const uint8_t seq[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                             0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    memcpy(b, seq, 16);
    wsfwd_uuid_v4(b);
    wsfwd_uuid_format(b, s);
    assert_string_equal(s, "01234567-89ab-4def-8123-456789abcdef");
}

static void test_every_byte_value(void **state)
{
    (void)state;
    for (unsigned v = 0; v < 256; v++) {
        uint8_t b[16];
        memset(b, (int)v, sizeof b);
        wsfwd_uuid_v4(b);
        assert_int_equal(b[6] >> 4, 4);
        assert_int_equal(b[8] >> 6, 2);
        char s[37];
        wsfwd_uuid_format(b, s);
        assert_int_equal(strlen(s), 36);
        for (size_t i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                assert_int_equal(s[i], '-');
            } else {
                assert_non_null(strchr("0123456789abcdef", s[i]));
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bits_and_format),
        cmocka_unit_test(test_every_byte_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
