/* The JSON writer of /stats and the JSON log lines (cli/jsonw.c): commas, nesting, escaping,
   UTF-8, ratios, a buffer too small. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jsonw.h"

static void assert_written(const jsonw *w, const char *want)
{
    assert_true(jsonw_ok(w));
    assert_int_equal(jsonw_len(w), strlen(want));
    assert_memory_equal(w->buf, want, strlen(want));
}

static void test_nested(void **state)
{
    (void)state;
    char buf[256];
    jsonw w;
    jsonw_init(&w, buf, sizeof buf);
    jsonw_object(&w, NULL);
    jsonw_str(&w, "v", "0.2.0");
    jsonw_u64(&w, "n", UINT64_MAX);
    jsonw_object(&w, "o");
    jsonw_object(&w, "empty");
    jsonw_end(&w);
    jsonw_bool(&w, "t", true);
    jsonw_end(&w);
    jsonw_bool(&w, "f", false);
    jsonw_end(&w);
    jsonw_raw(&w, "\n");
    assert_written(&w,
                   "{\"v\":\"0.2.0\",\"n\":18446744073709551615,\"o\":{\"empty\":{},\"t\":true},"
                   "\"f\":false}\n");
}

static void test_ratio(void **state)
{
    (void)state;
    char buf[512];
    jsonw w;
    jsonw_init(&w, buf, sizeof buf);
    jsonw_object(&w, NULL);
    jsonw_ratio(&w, "a", 3000, 1000);
    jsonw_ratio(&w, "b", 1024, 348);
    jsonw_ratio(&w, "c", 5, 0);
    jsonw_ratio(&w, "d", 1, 3);
    jsonw_ratio(&w, "e", UINT64_MAX, 1);
    jsonw_ratio(&w, "f", UINT64_MAX, UINT64_MAX - 1);
    jsonw_ratio(&w, "g", UINT64_MAX - 1, UINT64_MAX);
    jsonw_end(&w);
    assert_written(&w, "{\"a\":3.00,\"b\":2.94,\"c\":0.00,\"d\":0.33,"
                       "\"e\":18446744073709551615.00,\"f\":1.00,\"g\":0.99}");
}

static void test_escaped(void **state)
{
    (void)state;
    char buf[64];
    jsonw w;
    jsonw_init(&w, buf, sizeof buf);
    jsonw_object(&w, NULL);
    jsonw_str(&w, "s", "a\"b\\c\n");
    jsonw_end(&w);
    assert_written(&w, "{\"s\":\"a\\\"b\\\\c\\u000a\"}");
}

/* Valid UTF-8 as is; a stray continuation byte, a truncated character, an overlong form and
   a surrogate each become U+FFFD per byte that cannot start a character; NUL is escaped. */
static void test_utf8(void **state)
{
    (void)state;
    char buf[128];
    jsonw w;
    jsonw_init(&w, buf, sizeof buf);
    jsonw_object(&w, NULL);
    jsonw_str(&w, "ok", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    jsonw_str(&w, "bad",
              "a\x80"
              "b\xc3");
    jsonw_strn(&w, "n", "\xc0\xaf\0\xed\xa0\x80", 6);
    jsonw_end(&w);
    assert_written(&w, "{\"ok\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
                       "\"bad\":\"a\\ufffdb\\ufffd\","
                       "\"n\":\"\\ufffd\\ufffd\\u0000\\ufffd\\ufffd\\ufffd\"}");
}

static void test_too_small(void **state)
{
    (void)state;
    char buf[8];
    jsonw w;
    jsonw_init(&w, buf, sizeof buf);
    jsonw_object(&w, NULL);
    jsonw_u64(&w, "abc", 12345);
    jsonw_end(&w);
    assert_false(jsonw_ok(&w));
    assert_true(jsonw_len(&w) <= sizeof buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested),    cmocka_unit_test(test_ratio),
        cmocka_unit_test(test_escaped),   cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_too_small),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
