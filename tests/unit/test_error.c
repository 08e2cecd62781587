/* Error values: descriptions, close codes, HTTP statuses, close code validity, version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wsfwd.h"

static void test_version(void **state)
{
    (void)state;
    assert_string_equal(wsfwd_version(), WSFWD_VERSION_STRING);
}

static void test_every_error_has_a_description(void **state)
{
    (void)state;
    const char *unknown = wsfwd_strerror(-9999);
    assert_non_null(unknown);
    for (int e = -99; e <= 1; e++) {
        const char *s = wsfwd_strerror(e);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_true(strlen(s) <= 123); /* fits a close frame's reason */
    }
    assert_string_not_equal(wsfwd_strerror(WSFWD_ERR_UTF8), unknown);
    assert_string_not_equal(wsfwd_strerror(WSFWD_ERR_HS_KEY), unknown);
    assert_string_not_equal(wsfwd_strerror(WSFWD_ERR_CLOSED), unknown);
    assert_string_not_equal(wsfwd_strerror(WSFWD_ERR_POOL_GONE), unknown);
    assert_string_not_equal(wsfwd_strerror(WSFWD_ERR_HANDSHAKE_TIMEOUT), unknown);
    assert_string_not_equal(wsfwd_strerror(WSFWD_ERR_PONG_TIMEOUT), unknown);
    assert_string_not_equal(wsfwd_strerror(WSFWD_ERR_CLOSE_TIMEOUT), unknown);
    static const int added[] = {WSFWD_ERR_CONTROL_SIZE, WSFWD_ERR_CLOSE_RESERVED,
                                WSFWD_ERR_CLOSE_RANGE, WSFWD_ERR_CLOSE_REASON, WSFWD_ERR_PERCENT};
    for (size_t i = 0; i < sizeof added / sizeof added[0]; i++) {
        assert_string_not_equal(wsfwd_strerror(added[i]), unknown);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(wsfwd_strerror(added[i]), wsfwd_strerror(added[j]));
        }
        /* Usage errors: they fail no connection. */
        if (added[i] != WSFWD_ERR_PERCENT) {
            assert_int_equal(wsfwd_error_close_code(added[i]), 0);
            assert_int_equal(wsfwd_error_http_status(added[i]), 0);
        }
    }
}

static void test_close_codes(void **state)
{
    (void)state;
    static const int protocol[] = {
        WSFWD_ERR_RSV,          WSFWD_ERR_OPCODE,           WSFWD_ERR_MASK,
        WSFWD_ERR_LENGTH,       WSFWD_ERR_CONTROL_TOO_LONG, WSFWD_ERR_CONTROL_FRAGMENTED,
        WSFWD_ERR_CONTINUATION, WSFWD_ERR_CLOSE_PAYLOAD,    WSFWD_ERR_CLOSE_CODE};
    for (size_t i = 0; i < sizeof protocol / sizeof protocol[0]; i++) {
        assert_int_equal(wsfwd_error_close_code(protocol[i]), 1002);
    }
    assert_int_equal(wsfwd_error_close_code(WSFWD_ERR_UTF8), 1007);
    assert_int_equal(wsfwd_error_close_code(WSFWD_ERR_TOO_BIG), 1009);
    assert_int_equal(wsfwd_error_close_code(WSFWD_ERR_CALLBACK), 1011);
    assert_int_equal(wsfwd_error_close_code(WSFWD_ERR_PONG_TIMEOUT), 1001);
    assert_int_equal(wsfwd_error_close_code(WSFWD_ERR_HANDSHAKE_TIMEOUT), 0);
    assert_int_equal(wsfwd_error_close_code(WSFWD_ERR_CLOSE_TIMEOUT), 0);
    assert_int_equal(wsfwd_error_close_code(WSFWD_OK), 0);
    assert_int_equal(wsfwd_error_close_code(WSFWD_ERR_HS_KEY), 0);
}

static void test_http_statuses(void **state)
{
    (void)state;
    assert_int_equal(wsfwd_error_http_status(WSFWD_ERR_HTTP_MALFORMED), 400);
    assert_int_equal(wsfwd_error_http_status(WSFWD_ERR_HTTP_VERSION), 400);
    assert_int_equal(wsfwd_error_http_status(WSFWD_ERR_HS_HOST), 400);
    assert_int_equal(wsfwd_error_http_status(WSFWD_ERR_HS_UPGRADE), 400);
    assert_int_equal(wsfwd_error_http_status(WSFWD_ERR_HS_CONNECTION), 400);
    assert_int_equal(wsfwd_error_http_status(WSFWD_ERR_HS_KEY), 400);
    assert_int_equal(wsfwd_error_http_status(WSFWD_ERR_PERCENT), 400);
    assert_int_equal(wsfwd_error_http_status(WSFWD_ERR_HTTP_METHOD), 405);
    assert_int_equal(wsfwd_error_http_status(WSFWD_ERR_HS_VERSION), 426);
    assert_int_equal(wsfwd_error_http_status(WSFWD_ERR_HTTP_TOO_LARGE), 431);
    assert_int_equal(wsfwd_error_http_status(WSFWD_ERR_UTF8), 0);
}

static void test_close_code_validity(void **state)
{
    (void)state;
    static const uint16_t valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                     1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    static const uint16_t invalid[] = {0,    999,  1004, 1005, 1006, 1015,
                                       1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        assert_true(wsfwd_close_code_is_valid(valid[i]));
    }
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        assert_false(wsfwd_close_code_is_valid(invalid[i]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_every_error_has_a_description),
        cmocka_unit_test(test_close_codes),
        cmocka_unit_test(test_http_statuses),
        cmocka_unit_test(test_close_code_validity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
