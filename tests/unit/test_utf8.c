/* UTF-8 validation: RFC 3629 rules, fail-fast, and independence from how text is split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "support.h"
#include "utf8.h"

typedef struct sample {
    const char *bytes;
    size_t len;
    int valid;
} sample;

#define S(str, ok)                                                                                 \
    {                                                                                              \
        str, sizeof(str) - 1, ok                                                                   \
    }

static const sample samples[] = {
    S("", 1),
    S("hello, world", 1),
    S("\xc2\xa2", 1),                                     /* U+00A2 */
    S("\xe2\x82\xac", 1),                                 /* U+20AC */
    S("\xf0\x90\x8d\x88", 1),                             /* U+10348 */
    S("\xf4\x8f\xbf\xbf", 1),                             /* U+10FFFF, the last code point */
    S("\xed\x9f\xbf", 1),                                 /* U+D7FF, just below the surrogates */
    S("\xee\x80\x80", 1),                                 /* U+E000, just above them */
    S("\xef\xbb\xbf", 1),                                 /* BOM */
    S("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1), /* Greek "kosme" */
    S("plain ASCII long enough to use the word-at-a-time path 0123456789", 1),
    S("\x80", 0), /* a lone continuation */
    S("\xbf", 0),
    S("\xc0\x80", 0),         /* overlong NUL */
    S("\xc1\xbf", 0),         /* overlong 2-byte */
    S("\xe0\x80\xaf", 0),     /* overlong 3-byte '/' */
    S("\xe0\x9f\xbf", 0),     /* overlong U+07FF */
    S("\xf0\x80\x80\xaf", 0), /* overlong 4-byte */
    S("\xf0\x8f\xbf\xbf", 0), /* overlong U+FFFF */
    S("\xed\xa0\x80", 0),     /* U+D800, a surrogate */
    S("\xed\xbf\xbf", 0),     /* U+DFFF */
    S("\xf4\x90\x80\x80", 0), /* U+110000 */
    S("\xf5\x80\x80\x80", 0),
    S("\xff", 0),
    S("\xfe", 0),
    S("\xc2", 0), /* truncated */
    S("\xe2\x82", 0),
    S("\xf0\x90\x8d", 0),
    S("\xc2\x41", 0),            /* continuation missing */
    S("abc\xe2\x82\xac\x80", 0), /* extra continuation */
    S("0123456789abcdef\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
      "edited",
      0),
};

static void test_samples_whole(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        const sample *s = &samples[i];
        int ok = wsfwd_utf8_valid(test_guarded(s->bytes, s->len), s->len);
        if (ok != s->valid) {
            fail_msg("sample %zu: expected %d, got %d", i, s->valid, ok);
        }
    }
}

/* Every split into two pieces, and byte by byte, ends in the same verdict. */
static void test_samples_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        const sample *s = &samples[i];
        const uint8_t *b = (const uint8_t *)s->bytes;
        for (size_t cut = 0; cut <= s->len; cut++) {
            uint32_t st = wsfwd_utf8_step(WSFWD_UTF8_ACCEPT, test_guarded(b, cut), cut);
            st = wsfwd_utf8_step(st, test_guarded(b + cut, s->len - cut), s->len - cut);
            assert_int_equal(st == WSFWD_UTF8_ACCEPT, s->valid);
        }
        uint32_t st = WSFWD_UTF8_ACCEPT;
        for (size_t k = 0; k < s->len; k++) {
            st = wsfwd_utf8_step(st, test_guarded(b + k, 1), 1);
        }
        assert_int_equal(st == WSFWD_UTF8_ACCEPT, s->valid);
    }
}

/* Rejection comes at the offending byte, not at the end: the state is sticky. */
static void test_fail_fast(void **state)
{
    (void)state;
    const uint8_t bad[] = {'o', 'k', 0xed, 0xa0};
    assert_int_equal(wsfwd_utf8_step(WSFWD_UTF8_ACCEPT, bad, sizeof bad), WSFWD_UTF8_REJECT);
    assert_int_equal(wsfwd_utf8_step(WSFWD_UTF8_REJECT, (const uint8_t *)"a", 1),
                     WSFWD_UTF8_REJECT);
    /* A partial character is neither accepted nor rejected. */
    uint32_t st = wsfwd_utf8_step(WSFWD_UTF8_ACCEPT, (const uint8_t *)"\xe2\x82", 2);
    assert_int_not_equal(st, WSFWD_UTF8_ACCEPT);
    assert_int_not_equal(st, WSFWD_UTF8_REJECT);
}

/* Every code point encoded by hand: valid ones pass, surrogates fail. */
static void test_all_code_points(void **state)
{
    (void)state;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x3000 ? 1 : 7)) {
        uint8_t b[4];
        size_t n;
        if (cp < 0x80) {
            b[0] = (uint8_t)cp;
            n = 1;
        } else if (cp < 0x800) {
            b[0] = (uint8_t)(0xC0 | cp >> 6);
            b[1] = (uint8_t)(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            b[0] = (uint8_t)(0xE0 | cp >> 12);
            b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            b[2] = (uint8_t)(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            b[0] = (uint8_t)(0xF0 | cp >> 18);
            b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
            b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            b[3] = (uint8_t)(0x80 | (cp & 0x3F));
            n = 4;
        }
        int expect = !(cp >= 0xD800 && cp <= 0xDFFF);
        assert_int_equal(wsfwd_utf8_valid(test_guarded(b, n), n), expect);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples_whole),
        cmocka_unit_test(test_samples_split),
        cmocka_unit_test(test_fail_fast),
        cmocka_unit_test(test_all_code_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
