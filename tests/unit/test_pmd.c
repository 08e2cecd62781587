/* permessage-deflate negotiation (lib/pmd.c): offers, answers, every rule of RFC 7692 §5-7. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "pmd.h"
#include "support.h"

/* ---- Server ---------------------------------------------------------------------------- */

typedef struct accepted {
    int rc;
    wsfwd_pmd_params p;
    char text[WSFWD_PMD_TEXT_MAX];
} accepted;

/* Negotiate the fields given (NULL-terminated) under pol (NULL: the default policy). */
static accepted accept_fields(const wsfwd_pmd_policy *pol, const char *const *fields)
{
    wsfwd_pmd_policy def;
    wsfwd_pmd_policy_init(&def);
    wsfwd_str v[8];
    size_t n = 0;
    while (fields[n] != NULL) {
        v[n].ptr = test_guarded_str(fields[n]); /* a read past the field faults */
        v[n].len = strlen(fields[n]);
        n++;
    }
    accepted a;
    memset(&a, 0x5A, sizeof a);
    a.rc = wsfwd_pmd_accept(v, n, pol != NULL ? pol : &def, &a.p, a.text, sizeof a.text);
    return a;
}

static accepted accept1(const wsfwd_pmd_policy *pol, const char *field)
{
    const char *fields[] = {field, NULL};
    return accept_fields(pol, fields);
}

static void expect_answer(const wsfwd_pmd_policy *pol, const char *field, const char *answer)
{
    accepted a = accept1(pol, field);
    if (a.rc != 1 || strcmp(a.text, answer) != 0) {
        fail_msg("offer \"%s\": rc %d, answer \"%s\", expected \"%s\"", field, a.rc,
                 a.rc == 1 ? a.text : "", answer);
    }
}

static void expect_declined(const char *field)
{
    accepted a = accept1(NULL, field);
    if (a.rc != 0) {
        fail_msg("offer \"%s\": rc %d, expected declined (0)", field, a.rc);
    }
    /* Declining one offer moves on to the next. */
    char two[256];
    snprintf(two, sizeof two, "%s, permessage-deflate", field);
    a = accept1(NULL, two);
    if (a.rc != 1 || strcmp(a.text, "permessage-deflate; server_no_context_takeover") != 0) {
        fail_msg("offers \"%s\": rc %d, expected the second accepted", two, a.rc);
    }
}

static void expect_malformed(const char *field)
{
    accepted a = accept1(NULL, field);
    if (a.rc != WSFWD_ERR_HTTP_MALFORMED) {
        fail_msg("field \"%s\": rc %d, expected malformed", field, a.rc);
    }
}

static void test_plain_offers(void **state)
{
    (void)state;
    const char *plain = "permessage-deflate; server_no_context_takeover";
    expect_answer(NULL, "permessage-deflate", plain);
    /* Chromium's and Firefox's offer. */
    expect_answer(NULL, "permessage-deflate; client_max_window_bits", plain);
    accepted a = accept1(NULL, "permessage-deflate; client_max_window_bits");
    assert_true(a.p.server_no_context_takeover);
    assert_false(a.p.client_no_context_takeover);
    assert_int_equal(a.p.server_max_window_bits, 15);
    assert_int_equal(a.p.client_max_window_bits, 15);
    /* Offered no_context_takeover parameters are accepted and answered. */
    expect_answer(NULL, "permessage-deflate; server_no_context_takeover", plain);
    expect_answer(NULL, "permessage-deflate; client_no_context_takeover",
                  "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    a = accept1(NULL, "permessage-deflate; client_no_context_takeover");
    assert_true(a.p.client_no_context_takeover);
}

static void test_no_offer(void **state)
{
    (void)state;
    const char *none[] = {NULL};
    assert_int_equal(accept_fields(NULL, none).rc, 0);
    assert_int_equal(accept1(NULL, "").rc, 0);
    assert_int_equal(accept1(NULL, " , ,").rc, 0);
    assert_int_equal(accept1(NULL, "x-webkit-deflate-frame").rc, 0);
    assert_int_equal(accept1(NULL, "foo; bar=baz; q=\"quoted\"").rc, 0);
    /* Names compare exactly. */
    assert_int_equal(accept1(NULL, "Permessage-Deflate").rc, 0);
    assert_int_equal(accept1(NULL, "permessage-deflatex").rc, 0);
}

static void test_window_bits(void **state)
{
    (void)state;
    /* Offered server_max_window_bits is echoed, lowered by the policy if need be. */
    expect_answer(NULL, "permessage-deflate; server_max_window_bits=10",
                  "permessage-deflate; server_no_context_takeover; server_max_window_bits=10");
    expect_answer(NULL, "permessage-deflate; server_max_window_bits=15",
                  "permessage-deflate; server_no_context_takeover; server_max_window_bits=15");
    wsfwd_pmd_policy pol;
    wsfwd_pmd_policy_init(&pol);
    pol.server_max_window_bits = 12;
    expect_answer(&pol, "permessage-deflate; server_max_window_bits=14",
                  "permessage-deflate; server_no_context_takeover; server_max_window_bits=12");
    expect_answer(&pol, "permessage-deflate; server_max_window_bits=9",
                  "permessage-deflate; server_no_context_takeover; server_max_window_bits=9");
    /* The server may lower its window unasked. */
    expect_answer(&pol, "permessage-deflate",
                  "permessage-deflate; server_no_context_takeover; server_max_window_bits=12");
    accepted a = accept1(&pol, "permessage-deflate");
    assert_int_equal(a.p.server_max_window_bits, 12);

    /* A window smaller than the compressor can keep to declines the offer. */
    wsfwd_pmd_policy_init(&pol);
    pol.server_min_window_bits = 9;
    assert_int_equal(accept1(&pol, "permessage-deflate; server_max_window_bits=8").rc, 0);
    expect_answer(&pol, "permessage-deflate; server_max_window_bits=8, permessage-deflate",
                  "permessage-deflate; server_no_context_takeover");
    expect_answer(&pol, "permessage-deflate; server_max_window_bits=9",
                  "permessage-deflate; server_no_context_takeover; server_max_window_bits=9");

    /* client_max_window_bits is answered only when offered, never above the offered value. */
    wsfwd_pmd_policy_init(&pol);
    pol.client_max_window_bits = 10;
    expect_answer(&pol, "permessage-deflate", "permessage-deflate; server_no_context_takeover");
    a = accept1(&pol, "permessage-deflate");
    assert_int_equal(a.p.client_max_window_bits, 15);
    expect_answer(&pol, "permessage-deflate; client_max_window_bits",
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=10");
    expect_answer(&pol, "permessage-deflate; client_max_window_bits=9",
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=9");
    expect_answer(NULL, "permessage-deflate; client_max_window_bits=11",
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=11");
    a = accept1(NULL, "permessage-deflate; client_max_window_bits=11");
    assert_int_equal(a.p.client_max_window_bits, 11);
}

static void test_policy_client_no_context_takeover(void **state)
{
    (void)state;
    wsfwd_pmd_policy pol;
    wsfwd_pmd_policy_init(&pol);
    pol.client_no_context_takeover = true;
    expect_answer(&pol, "permessage-deflate; client_max_window_bits",
                  "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    accepted a = accept1(&pol, "permessage-deflate");
    assert_true(a.p.client_no_context_takeover);
}

static void test_declined_offers(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "permessage-deflate; foo",
        "permessage-deflate; foo=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"x\"",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=1a",
        "permessage-deflate; server_max_window_bits=-9",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; server_max_window_bits=123456789012",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=\"\\1\\6\"",
        "permessage-deflate; Server_No_Context_Takeover",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_declined(bad[i]);
    }
}

static void test_quoted_values(void **state)
{
    (void)state;
    expect_answer(NULL, "permessage-deflate; server_max_window_bits=\"10\"",
                  "permessage-deflate; server_no_context_takeover; server_max_window_bits=10");
    expect_answer(NULL, "permessage-deflate; server_max_window_bits=\"1\\1\"",
                  "permessage-deflate; server_no_context_takeover; server_max_window_bits=11");
    expect_answer(NULL, "permessage-deflate; client_max_window_bits=\"9\"",
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=9");
    /* After unescaping, a value must be a token. */
    expect_malformed("permessage-deflate; server_max_window_bits=\"1 0\"");
    expect_malformed("permessage-deflate; server_max_window_bits=\"\"");
    expect_malformed("foo; a=\"b,c\"");
    expect_malformed("foo; a=\"b\\");
    expect_malformed("foo; a=\"b");
    expect_malformed("foo; a=\"b\x01\"");
}

static void test_malformed_fields(void **state)
{
    (void)state;
    static const char *const bad[] = {
        ";",
        "permessage-deflate;",
        "permessage-deflate; ",
        "permessage-deflate;;server_no_context_takeover",
        "permessage-deflate; =10",
        "permessage-deflate; server_max_window_bits=",
        "permessage-deflate; server_max_window_bits= ,",
        "permessage-deflate x",
        "permessage-deflate; a b",
        "a b",
        "\"permessage-deflate\"",
        "permessage-deflate; a=b=c",
        "permessage-deflate; a=(b)",
        "permessage-deflate/1",
        "permessage-deflate\x7f",
        /* Malformed after an acceptable offer still refuses the handshake. */
        "permessage-deflate, ;",
        "permessage-deflate, foo; ?",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_malformed(bad[i]);
    }
    const char *later[] = {"permessage-deflate", "foo;", NULL};
    assert_int_equal(accept_fields(NULL, later).rc, WSFWD_ERR_HTTP_MALFORMED);
}

static void test_list_shapes(void **state)
{
    (void)state;
    const char *plain = "permessage-deflate; server_no_context_takeover";
    expect_answer(NULL, ", ,permessage-deflate ,,", plain);
    expect_answer(NULL, "x-webkit-deflate-frame, permessage-deflate", plain);
    expect_answer(NULL, "foo; a=b; c=\"d\", permessage-deflate", plain);
    expect_answer(NULL, "permessage-deflate\t;\tclient_max_window_bits = 10 ",
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=10");
    /* The first acceptable offer wins, in order across fields. */
    const char *fields[] = {"foo", "permessage-deflate; server_max_window_bits=11",
                            "permessage-deflate; server_max_window_bits=12", NULL};
    accepted a = accept_fields(NULL, fields);
    assert_int_equal(a.rc, 1);
    assert_int_equal(a.p.server_max_window_bits, 11);
    const char *second[] = {"permessage-deflate; x",
                            "permessage-deflate; server_max_window_bits=12", NULL};
    a = accept_fields(NULL, second);
    assert_int_equal(a.rc, 1);
    assert_int_equal(a.p.server_max_window_bits, 12);
}

static void test_server_arguments(void **state)
{
    (void)state;
    wsfwd_pmd_policy pol;
    wsfwd_pmd_policy_init(&pol);
    wsfwd_pmd_params p;
    char buf[WSFWD_PMD_TEXT_MAX];
    wsfwd_str v = {"permessage-deflate", 18};
    assert_int_equal(wsfwd_pmd_accept(NULL, 1, &pol, &p, buf, sizeof buf), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_pmd_accept(&v, 1, NULL, &p, buf, sizeof buf), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_pmd_accept(&v, 1, &pol, NULL, buf, sizeof buf), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_pmd_accept(&v, 1, &pol, &p, NULL, 0), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_pmd_accept(NULL, 0, &pol, &p, buf, sizeof buf), 0);
    /* Too small a buffer: an error and an empty string, at every size. */
    size_t need = strlen("permessage-deflate; server_no_context_takeover") + 1;
    for (size_t cap = 0; cap < need; cap++) {
        memset(buf, 'x', sizeof buf);
        assert_int_equal(wsfwd_pmd_accept(&v, 1, &pol, &p, buf, cap), WSFWD_ERR_NOBUFS);
        if (cap > 0) {
            assert_int_equal(buf[0], '\0');
        }
    }
    assert_int_equal(wsfwd_pmd_accept(&v, 1, &pol, &p, buf, need), 1);
}

/* ---- Client ---------------------------------------------------------------------------- */

static wsfwd_pmd_params want_of(bool snct, bool cnct, uint8_t sbits, uint8_t cbits)
{
    wsfwd_pmd_params w = {snct, cnct, sbits, cbits};
    return w;
}

static void test_offers(void **state)
{
    (void)state;
    char buf[WSFWD_PMD_TEXT_MAX];
    wsfwd_pmd_params w = want_of(false, false, 15, 15);
    assert_int_equal(wsfwd_pmd_write_offer(&w, buf, sizeof buf),
                     (int)strlen("permessage-deflate; client_max_window_bits"));
    assert_string_equal(buf, "permessage-deflate; client_max_window_bits");
    w = want_of(true, true, 10, 12);
    assert_true(wsfwd_pmd_write_offer(&w, buf, sizeof buf) > 0);
    assert_string_equal(buf, "permessage-deflate; server_no_context_takeover; "
                             "client_no_context_takeover; server_max_window_bits=10; "
                             "client_max_window_bits=12");
    assert_int_equal(wsfwd_pmd_write_offer(&w, buf, 20), WSFWD_ERR_NOBUFS);
    assert_int_equal(wsfwd_pmd_write_offer(NULL, buf, sizeof buf), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_pmd_write_offer(&w, NULL, 0), WSFWD_ERR_INVALID);
}

static int check1(const wsfwd_pmd_params *want, const char *field, wsfwd_pmd_params *out)
{
    wsfwd_str v = {test_guarded_str(field), strlen(field)};
    return wsfwd_pmd_check_response(&v, 1, want, out);
}

static void test_check_answers(void **state)
{
    (void)state;
    wsfwd_pmd_params w = want_of(false, false, 15, 15), out;
    assert_int_equal(wsfwd_pmd_check_response(NULL, 0, &w, &out), 0);
    assert_int_equal(check1(&w, "", &out), 0);
    assert_int_equal(check1(&w, "permessage-deflate", &out), 1);
    assert_false(out.server_no_context_takeover);
    assert_int_equal(out.server_max_window_bits, 15);
    assert_int_equal(out.client_max_window_bits, 15);
    assert_int_equal(check1(&w,
                            "permessage-deflate; server_no_context_takeover; "
                            "client_no_context_takeover; server_max_window_bits=10; "
                            "client_max_window_bits=9",
                            &out),
                     1);
    assert_true(out.server_no_context_takeover);
    assert_true(out.client_no_context_takeover);
    assert_int_equal(out.server_max_window_bits, 10);
    assert_int_equal(out.client_max_window_bits, 9);

    static const char *const bad[] = {
        "x-other",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate, x-other",
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits", /* an answer needs the value */
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate;",
        "permessage-deflate x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (check1(&w, bad[i], &out) != WSFWD_ERR_HS_EXTENSION) {
            fail_msg("answer \"%s\" was not refused", bad[i]);
        }
    }
    /* Two fields naming it twice. */
    wsfwd_str two[2] = {{"permessage-deflate", 18}, {"permessage-deflate", 18}};
    assert_int_equal(wsfwd_pmd_check_response(two, 2, &w, &out), WSFWD_ERR_HS_EXTENSION);

    /* What the offer asked must be kept. */
    w = want_of(true, false, 15, 15);
    assert_int_equal(check1(&w, "permessage-deflate", &out), WSFWD_ERR_HS_EXTENSION);
    w = want_of(false, false, 10, 15);
    assert_int_equal(check1(&w, "permessage-deflate", &out), WSFWD_ERR_HS_EXTENSION);
    assert_int_equal(check1(&w, "permessage-deflate; server_max_window_bits=11", &out),
                     WSFWD_ERR_HS_EXTENSION);
    assert_int_equal(check1(&w, "permessage-deflate; server_max_window_bits=10", &out), 1);
    w = want_of(false, false, 15, 11);
    assert_int_equal(check1(&w, "permessage-deflate; client_max_window_bits=12", &out),
                     WSFWD_ERR_HS_EXTENSION);
    assert_int_equal(check1(&w, "permessage-deflate", &out), 1);
    assert_int_equal(out.client_max_window_bits, 11);
    w = want_of(false, true, 15, 15);
    assert_int_equal(check1(&w, "permessage-deflate", &out), 1);
    assert_true(out.client_no_context_takeover);

    assert_int_equal(wsfwd_pmd_check_response(NULL, 1, &w, &out), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_pmd_check_response(two, 1, NULL, &out), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_pmd_check_response(two, 1, &w, NULL), WSFWD_ERR_INVALID);
}

/* Every offer a client of ours can make, under many policies: whatever the server answers,
   the client accepts, and both sides agree on every parameter. */
static void test_round_trip(void **state)
{
    (void)state;
    int accepted_count = 0, declined = 0;
    for (int flags = 0; flags < 8; flags++) {
        for (uint8_t sb = 8; sb <= 15; sb++) {
            for (uint8_t cb = 8; cb <= 15; cb++) {
                for (int pk = 0; pk < 3 * 2 * 3; pk++) {
                    static const uint8_t smax[3] = {9, 12, 15}, cmax[3] = {8, 11, 15};
                    wsfwd_pmd_policy pol;
                    wsfwd_pmd_policy_init(&pol);
                    pol.client_no_context_takeover = (flags & 4) != 0;
                    pol.server_max_window_bits = smax[pk % 3];
                    pol.server_min_window_bits = (pk / 3) % 2 ? 9 : 8;
                    pol.client_max_window_bits = cmax[pk / 6];
                    wsfwd_pmd_params want = want_of(flags & 1, flags & 2, sb, cb);
                    char offer[WSFWD_PMD_TEXT_MAX];
                    assert_true(wsfwd_pmd_write_offer(&want, offer, sizeof offer) > 0);
                    accepted a = accept1(&pol, offer);
                    assert_true(a.rc == 0 || a.rc == 1);
                    if (a.rc == 0) {
                        assert_true(sb < pol.server_min_window_bits);
                        declined++;
                        continue;
                    }
                    wsfwd_pmd_params client;
                    assert_int_equal(check1(&want, a.text, &client), 1);
                    assert_memory_equal(&client, &a.p, sizeof client);
                    assert_true(a.p.server_max_window_bits <= sb);
                    assert_true(a.p.client_max_window_bits <= cb);
                    assert_true(a.p.server_max_window_bits >= pol.server_min_window_bits);
                    accepted_count++;
                }
            }
        }
    }
    assert_true(accepted_count > 0 && declined > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_offers),
        cmocka_unit_test(test_no_offer),
        cmocka_unit_test(test_window_bits),
        cmocka_unit_test(test_policy_client_no_context_takeover),
        cmocka_unit_test(test_declined_offers),
        cmocka_unit_test(test_quoted_values),
        cmocka_unit_test(test_malformed_fields),
        cmocka_unit_test(test_list_shapes),
        cmocka_unit_test(test_server_arguments),
        cmocka_unit_test(test_offers),
        cmocka_unit_test(test_check_answers),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
