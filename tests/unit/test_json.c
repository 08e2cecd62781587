/* The strict JSON reader of token headers and claims: what it accepts, decodes and refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "support.h"

/* Parse a copy of text (the reader writes into it); the copy lives until the next call. It ends
 * right before a page that cannot be read: no NUL after it, and the reader must not look. */
static uint8_t *buf;
static size_t buf_len;
static wsfwd_json_object obj;

static int parse_bytes(const char *text, size_t n)
{
    test_guard_free(buf, buf_len);
    buf = test_guard_new(text, n);
    buf_len = n;
    return wsfwd_json_parse((char *)buf, n, &obj);
}

static int parse(const char *text)
{
    return parse_bytes(text, strlen(text));
}

static void assert_str(wsfwd_str s, const char *want)
{
    assert_non_null(s.ptr);
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.ptr, want, s.len);
    assert_int_equal(s.ptr[s.len], '\0');
}

static void test_claims(void **state)
{
    (void)state;
    assert_int_equal(parse(" {\"sub\" : \"alice\",\n\t\"exp\":1300819380,\r\n \"admin\":true,"
                           "\"x\":false,\"n\":null,\"rooms\":[\"a\", \"b\" ],\"e\":[],"
                           "\"f\":-1.5e+3} \n"),
                     WSFWD_JSON_OK);
    assert_int_equal(obj.count, 8);
    const wsfwd_json_member *m = wsfwd_json_find(&obj, "sub");
    assert_non_null(m);
    assert_int_equal(m->type, WSFWD_JSON_STRING);
    assert_str(m->str, "alice");
    assert_str(m->key, "sub");

    m = wsfwd_json_find(&obj, "exp");
    assert_int_equal(m->type, WSFWD_JSON_NUMBER);
    int64_t v = 0;
    assert_int_equal(wsfwd_json_int64(m->str, &v), 0);
    assert_true(v == 1300819380);

    assert_int_equal(wsfwd_json_find(&obj, "admin")->type, WSFWD_JSON_BOOL);
    assert_true(wsfwd_json_find(&obj, "admin")->boolean);
    assert_false(wsfwd_json_find(&obj, "x")->boolean);
    assert_int_equal(wsfwd_json_find(&obj, "n")->type, WSFWD_JSON_NULL);

    m = wsfwd_json_find(&obj, "rooms");
    assert_int_equal(m->type, WSFWD_JSON_ARRAY);
    assert_int_equal(m->count, 2);
    assert_str(obj.items[m->first], "a");
    assert_str(obj.items[m->first + 1], "b");
    assert_int_equal(wsfwd_json_find(&obj, "e")->count, 0);

    m = wsfwd_json_find(&obj, "f");
    assert_int_equal(m->type, WSFWD_JSON_NUMBER);
    assert_int_equal(m->str.len, 7); /* the text as written */
    assert_int_equal(wsfwd_json_int64(m->str, &v), -1);

    assert_null(wsfwd_json_find(&obj, "missing"));
    assert_null(wsfwd_json_find(&obj, "su")); /* a prefix is not a match */

    assert_int_equal(parse("{}"), WSFWD_JSON_OK);
    assert_int_equal(obj.count, 0);
}

static void test_escapes(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"k\":\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"}"), WSFWD_JSON_OK);
    assert_str(wsfwd_json_find(&obj, "k")->str, "a\"b\\c/d\be\ff\ng\rh\ti");

    /* \u: one, two and three UTF-8 bytes, upper and lower case hex. */
    assert_int_equal(parse("{\"k\":\"\\u0041\\u00e9\\u20AC\"}"), WSFWD_JSON_OK);
    assert_str(wsfwd_json_find(&obj, "k")->str, "A\xc3\xa9\xe2\x82\xac");

    /* A surrogate pair is one code point of four bytes: U+1F600. */
    assert_int_equal(parse("{\"k\":\"x\\uD83D\\uDE00y\"}"), WSFWD_JSON_OK);
    assert_str(wsfwd_json_find(&obj, "k")->str, "x\xf0\x9f\x98\x80y");
    /* The highest pair, U+10FFFF. */
    assert_int_equal(parse("{\"k\":\"\\udbff\\udfff\"}"), WSFWD_JSON_OK);
    assert_str(wsfwd_json_find(&obj, "k")->str, "\xf4\x8f\xbf\xbf");

    /* Raw UTF-8 passes through; escaped keys are decoded too. */
    assert_int_equal(parse("{\"\\u0072oom\":\"caf\xc3\xa9\"}"), WSFWD_JSON_OK);
    assert_str(wsfwd_json_find(&obj, "room")->str, "caf\xc3\xa9");

    /* Escapes inside arrays. */
    assert_int_equal(parse("{\"r\":[\"\\u00e9t\\u00e9\",\"\\uD83D\\uDE00\"]}"), WSFWD_JSON_OK);
    assert_str(obj.items[0], "\xc3\xa9t\xc3\xa9");
    assert_str(obj.items[1], "\xf0\x9f\x98\x80");
}

static void test_bad_strings(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"k\":\"\\uD83D\"}",        /* high surrogate alone */
        "{\"k\":\"\\uD83Dx\"}",       /* high surrogate then a character */
        "{\"k\":\"\\uD83D\\u0041\"}", /* high surrogate then a non-surrogate */
        "{\"k\":\"\\uD83D\\uD83D\"}", /* two high surrogates */
        "{\"k\":\"\\uDE00\"}",        /* low surrogate first */
        "{\"k\":\"\\u0000\"}",        /* U+0000 */
        "{\"k\":\"\\u12\"}",          /* short \u */
        "{\"k\":\"\\u12G4\"}",        /* not hex */
        "{\"k\":\"\\uD83D\\uDE0\"}",  /* short low half */
        "{\"k\":\"\\x41\"}",          /* unknown escape */
        "{\"k\":\"\\'\"}",
        "{\"k\":\"a\tb\"}", /* raw control character */
        "{\"k\":\"a\nb\"}",
        "{\"k\":\"\xc3\"}",             /* truncated UTF-8 */
        "{\"k\":\"\xc0\xaf\"}",         /* overlong */
        "{\"k\":\"\xed\xa0\x80\"}",     /* an encoded surrogate */
        "{\"k\":\"\xf4\x90\x80\x80\"}", /* past U+10FFFF */
        "{\"k\":\"\xff\"}",
        "{\"k\xff\":1}", /* in a key */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i]) != WSFWD_JSON_ERR_STRING) {
            fail_msg("case %zu (%s) not refused as a bad string", i, bad[i]);
        }
    }
    /* A raw NUL byte is a control character. */
    assert_int_equal(parse_bytes("{\"k\":\"a\0b\"}", 11), WSFWD_JSON_ERR_STRING);
}

static void test_syntax(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        " ",
        "[]",
        "\"s\"",
        "1",
        "null",
        "{",
        "{\"a\"",
        "{\"a\":",
        "{\"a\":1",
        "{\"a\":1,}",
        "{,}",
        "{\"a\" 1}",
        "{\"a\":1 \"b\":2}",
        "{a:1}",
        "{'a':1}",
        "{\"a\":1}x",
        "{\"a\":1}{}",
        "\xef\xbb\xbf{}", /* a byte order mark */
        "{\"a\":tru}",
        "{\"a\":True}",
        "{\"a\":nul}",
        "{\"a\":falsy}",
        "{\"a\":+1}",
        "{\"a\":01}",
        "{\"a\":-}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":1e}",
        "{\"a\":1e+}",
        "{\"a\":0x10}",
        "{\"a\":NaN}",
        "{\"a\":Infinity}",
        "{\"a\":\"unterminated}",
        "{\"a\":\"x\\",
        "{\"a\":[\"x\"}",
        "{\"a\":[\"x\",]}",
        "{\"a\":[,]}",
        "{\"a\":[\"x\" \"y\"]}",
        "{\"a\":[\"x\"",
        "{\"a\":[",
        "{\"a\":[x]}",
        "{\"a\":}",
        "{\"a\":\v1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i]) != WSFWD_JSON_ERR_SYNTAX) {
            fail_msg("case %zu (%s) not refused as syntax", i, bad[i]);
        }
    }
    assert_int_equal(wsfwd_json_parse(NULL, 0, &obj), WSFWD_JSON_ERR_SYNTAX);
    assert_int_equal(wsfwd_json_parse(NULL, 3, &obj), WSFWD_JSON_ERR_SYNTAX);
}

static void test_types_duplicates_limits(void **state)
{
    (void)state;
    const char *wrong_type[] = {
        "{\"a\":{}}",     "{\"a\":{\"b\":1}}", "{\"a\":[[]]}",   "{\"a\":[{}]}",
        "{\"a\":[1]}",    "{\"a\":[\"x\",2]}", "{\"a\":[true]}", "{\"a\":[false]}",
        "{\"a\":[null]}", "{\"a\":[-1]}",
    };
    for (size_t i = 0; i < sizeof wrong_type / sizeof wrong_type[0]; i++) {
        if (parse(wrong_type[i]) != WSFWD_JSON_ERR_TYPE) {
            fail_msg("case %zu (%s) not refused as a type", i, wrong_type[i]);
        }
    }

    /* Duplicate keys are refused, also when only their decoded forms are equal. */
    assert_int_equal(parse("{\"a\":1,\"a\":1}"), WSFWD_JSON_ERR_DUPLICATE);
    assert_int_equal(parse("{\"exp\":1,\"e\\u0078p\":2}"), WSFWD_JSON_ERR_DUPLICATE);
    assert_int_equal(parse("{\"a\":1,\"A\":1}"), WSFWD_JSON_OK); /* keys are case-sensitive */

    /* 32 members are fine, 33 are not. */
    char text[4096];
    size_t o = 0;
    text[o++] = '{';
    for (int i = 0; i < WSFWD_JSON_MAX_MEMBERS; i++) {
        o += (size_t)snprintf(text + o, sizeof text - o, "%s\"k%d\":%d", i ? "," : "", i, i);
    }
    snprintf(text + o, sizeof text - o, "}");
    assert_int_equal(parse(text), WSFWD_JSON_OK);
    assert_int_equal(obj.count, WSFWD_JSON_MAX_MEMBERS);
    snprintf(text + o, sizeof text - o, ",\"more\":0}");
    assert_int_equal(parse(text), WSFWD_JSON_ERR_LIMIT);

    /* 64 array strings over all arrays are fine, 65 are not. */
    o = (size_t)snprintf(text, sizeof text, "{\"a\":[");
    for (int i = 0; i < 40; i++) {
        o += (size_t)snprintf(text + o, sizeof text - o, "%s\"r%d\"", i ? "," : "", i);
    }
    o += (size_t)snprintf(text + o, sizeof text - o, "],\"b\":[");
    for (int i = 0; i < 24; i++) {
        o += (size_t)snprintf(text + o, sizeof text - o, "%s\"s%d\"", i ? "," : "", i);
    }
    snprintf(text + o, sizeof text - o, "]}");
    assert_int_equal(parse(text), WSFWD_JSON_OK);
    assert_int_equal(obj.item_count, WSFWD_JSON_MAX_ITEMS);
    assert_int_equal(wsfwd_json_find(&obj, "b")->first, 40);
    snprintf(text + o, sizeof text - o, ",\"x\"]}");
    assert_int_equal(parse(text), WSFWD_JSON_ERR_LIMIT);
}

static void test_int64(void **state)
{
    (void)state;
    struct {
        const char *text;
        int ok;
        int64_t want;
    } cases[] = {
        {"0", 0, 0},
        {"-0", 0, 0},
        {"42", 0, 42},
        {"-42", 0, -42},
        {"9223372036854775807", 0, INT64_MAX},
        {"-9223372036854775808", 0, INT64_MIN},
        {"9223372036854775808", -1, 0},
        {"-9223372036854775809", -1, 0},
        {"18446744073709551616", -1, 0},
        {"99999999999999999999999", -1, 0},
        {"1.0", -1, 0},
        {"1e3", -1, 0},
        {"1E3", -1, 0},
        {"-", -1, 0},
        {"", -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wsfwd_str s = {cases[i].text, strlen(cases[i].text)};
        int64_t v = 12345;
        int rc = wsfwd_json_int64(s, &v);
        if (rc != cases[i].ok || (rc == 0 && v != cases[i].want)) {
            fail_msg("case %zu (%s): rc %d value %lld", i, cases[i].text, rc, (long long)v);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_bad_strings),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_types_duplicates_limits),
        cmocka_unit_test(test_int64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
