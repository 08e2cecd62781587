/* The client's address behind a proxy (cli/forwarded.c): prefixes and the X-Forwarded-For walk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forwarded.h"
#include "support.h"

/* The 16-byte form of a literal address (the parser under test reads it; checked). */
static void addr_of(const char *text, uint8_t out[16])
{
    assert_int_equal(forwarded_addr_parse(text, strlen(text), out), 0);
}

/* Parse a prefix from a guarded copy (reading past the text faults). */
static const char *prefix(const char *text, addr_prefix *p)
{
    return addr_prefix_parse(test_guarded_str(text), strlen(text), p);
}

static bool in_prefix(const char *pfx, const char *addr)
{
    addr_prefix p;
    assert_null(prefix(pfx, &p));
    uint8_t a[16];
    addr_of(addr, a);
    return addr_prefix_match(&p, a);
}

static void test_prefix_parse(void **state)
{
    (void)state;
    addr_prefix p;
    assert_null(prefix("127.0.0.1", &p));
    assert_int_equal(p.bits, 128);
    static const uint8_t lo4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    assert_memory_equal(p.addr, lo4, 16);
    assert_null(prefix("10.0.0.0/8", &p));
    assert_int_equal(p.bits, 104);
    assert_null(prefix("0.0.0.0/0", &p));
    assert_int_equal(p.bits, 96);
    assert_null(prefix("::1/128", &p));
    assert_int_equal(p.bits, 128);
    assert_null(prefix("::/0", &p));
    assert_int_equal(p.bits, 0);
    assert_null(prefix("2001:db8::/32", &p));
    assert_int_equal(p.bits, 32);
    assert_null(prefix("fc00::/7", &p)); /* a length that is not a whole byte */
    assert_int_equal(p.bits, 7);

    const char *bad[] = {
        "",           "/8",           "10.0.0.0/",   "10.0.0.0/33",   "::/129",     "10.0.0.1/8",
        "fd00::1/64", "10.0.0.0/8/8", "10.0.0.0/-1", "10.0.0.0/ 8",   "10.0.0",     "1.2.3.4.5",
        "localhost",  "[::1]",        "::1%lo",      "10.0.0.0/0008", "1.2.3.4:80", " 1.2.3.4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_non_null(prefix(bad[i], &p));
    }
    /* A NUL inside the given length is not an address. */
    assert_non_null(addr_prefix_parse("1.2.3.4\0", 8, &p));
}

static void test_prefix_match(void **state)
{
    (void)state;
    assert_true(in_prefix("10.0.0.0/8", "10.255.3.4"));
    assert_false(in_prefix("10.0.0.0/8", "11.0.0.0"));
    assert_true(in_prefix("127.0.0.1", "127.0.0.1"));
    assert_false(in_prefix("127.0.0.1", "127.0.0.2"));
    assert_true(in_prefix("192.168.0.0/23", "192.168.1.200"));
    assert_false(in_prefix("192.168.0.0/23", "192.168.2.0"));
    /* IPv4 prefixes match IPv4-mapped IPv6 (a v4 client on a v6 listener), and only IPv4. */
    assert_true(in_prefix("10.0.0.0/8", "::ffff:10.1.2.3"));
    assert_false(in_prefix("0.0.0.0/0", "::1"));
    assert_true(in_prefix("0.0.0.0/0", "203.0.113.7"));
    assert_true(in_prefix("::/0", "203.0.113.7"));
    assert_true(in_prefix("::1/128", "::1"));
    assert_false(in_prefix("::1/128", "::2"));
    assert_true(in_prefix("fc00::/7", "fdff::1"));
    assert_true(in_prefix("fc00::/7", "fc00::1"));
    assert_false(in_prefix("fc00::/7", "fe00::1"));
    assert_true(in_prefix("2001:db8::/33", "2001:db8:7fff::1"));
    assert_false(in_prefix("2001:db8::/33", "2001:db8:8000::1"));
}

static void test_addr_forms(void **state)
{
    (void)state;
    uint8_t a[16], b[16];
    addr_of("203.0.113.7", a);
    addr_of("203.0.113.7:5678", b);
    assert_memory_equal(a, b, 16);
    addr_of("::ffff:203.0.113.7", b);
    assert_memory_equal(a, b, 16);
    addr_of("2001:db8::1", a);
    addr_of("[2001:db8::1]", b);
    assert_memory_equal(a, b, 16);
    addr_of("[2001:db8::1]:443", b);
    assert_memory_equal(a, b, 16);

    const char *bad[] = {"",           "1.2.3.4:",    "1.2.3.4:65536", "1.2.3.4:123456",
                         "1.2.3.4:x",  "1.2.3.4::80", "[1.2.3.4]",     "[::1",
                         "::1]",       "[::1]:",      "[::1]80",       "[::1]:99999",
                         "unknown",    "_hidden",     "1.2.3.4 ",      "2001:db8::1:80:x",
                         "1.2.3.4:-1", "[::1]:80:80", "01.2.3.4",      "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(forwarded_addr_parse(test_guarded_str(bad[i]), strlen(bad[i]), a), -1);
    }
}

/* The walk over value with trusted prefixes; FOUND results are compared with want. */
static forwarded_result walk(const char *value, const char *const *trust, size_t ntrust,
                             const char *want)
{
    addr_prefix list[TRUST_PROXY_MAX];
    for (size_t i = 0; i < ntrust; i++) {
        assert_null(addr_prefix_parse(trust[i], strlen(trust[i]), &list[i]));
    }
    uint8_t out[16];
    forwarded_result r =
        forwarded_client(test_guarded_str(value), strlen(value), list, ntrust, out);
    if (want != NULL) {
        assert_int_equal(r, FORWARDED_FOUND);
        uint8_t w[16];
        addr_of(want, w);
        assert_memory_equal(out, w, 16);
    }
    return r;
}

static void test_walk_right_to_left(void **state)
{
    (void)state;
    const char *lo[] = {"127.0.0.1"};
    const char *nets[] = {"10.0.0.0/8", "::1/128"};
    /* One address: the client's. */
    walk("203.0.113.7", lo, 1, "203.0.113.7");
    /* What nginx's $proxy_add_x_forwarded_for makes of a client that sent its own header:
       the right-most address not trusted is the client's, not the one it claimed. */
    walk("198.51.100.9, 203.0.113.7", lo, 1, "203.0.113.7");
    /* Trusted proxies on the right are passed over (recursive). */
    walk("203.0.113.7, 10.1.1.1, 10.2.2.2", nets, 2, "203.0.113.7");
    walk("203.0.113.7,::1", nets, 2, "203.0.113.7");
    /* No trusted prefixes: the right-most address. */
    walk("198.51.100.9, 203.0.113.7", NULL, 0, "203.0.113.7");
    /* Every address trusted: the left-most, as nginx does. */
    walk("10.0.0.1, 10.0.0.2", nets, 2, "10.0.0.1");
    /* Spaces, tabs and empty elements. */
    walk(" \t203.0.113.7 \t", lo, 1, "203.0.113.7");
    walk("203.0.113.7,,  ,10.0.0.3,", nets, 2, "203.0.113.7");
    /* Garbage left of the client's address is never read. */
    walk("not an address, <script>, 203.0.113.7", lo, 1, "203.0.113.7");
    /* Ports and brackets as some proxies write them. */
    walk("[2001:db8::7]:5000, 10.0.0.1:80", nets, 2, "2001:db8::7");
}

static void test_walk_malformed(void **state)
{
    (void)state;
    const char *nets[] = {"10.0.0.0/8"};
    uint8_t out[16];
    assert_int_equal(forwarded_client("", 0, NULL, 0, out), FORWARDED_NONE);
    assert_int_equal(walk("unknown", nets, 1, NULL), FORWARDED_MALFORMED);
    assert_int_equal(walk("203.0.113.7, bogus", nets, 1, NULL), FORWARDED_MALFORMED);
    /* Reached through a trusted proxy: malformed too. */
    assert_int_equal(walk("bogus, 10.0.0.1", nets, 1, NULL), FORWARDED_MALFORMED);
    assert_int_equal(walk(",", nets, 1, NULL), FORWARDED_MALFORMED);
    assert_int_equal(walk(" , ", nets, 1, NULL), FORWARDED_MALFORMED);
    assert_int_equal(walk("1.2.3.4 5.6.7.8", nets, 1, NULL), FORWARDED_MALFORMED);
    assert_int_equal(walk("1.2.3.4;5.6.7.8", nets, 1, NULL), FORWARDED_MALFORMED);
    /* An element longer than any address. */
    char longer[200];
    memset(longer, '1', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_int_equal(walk(longer, nets, 1, NULL), FORWARDED_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_parse),   cmocka_unit_test(test_prefix_match),
        cmocka_unit_test(test_addr_forms),     cmocka_unit_test(test_walk_right_to_left),
        cmocka_unit_test(test_walk_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
