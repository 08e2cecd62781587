/* cli/cluster_proto.c: the Redis envelope, channel names, --redis URLs and the backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cluster_proto.h"

static const char ID[] = "0f8fad5b-d9cb-469f-a165-70867728950e";

static cluster_envelope sample(uint8_t opcode, const void *payload, size_t len)
{
    cluster_envelope e;
    memset(&e, 0, sizeof e);
    e.opcode = opcode;
    for (int i = 0; i < CLUSTER_NODE_ID_LEN; i++) {
        e.node[i] = (uint8_t)(0xa0 + i);
    }
    e.seq = 0x0102030405060708u;
    memcpy(e.sender, ID, CLUSTER_CONN_ID_LEN);
    e.payload = payload;
    e.len = len;
    return e;
}

static void test_envelope_round_trip_binary(void **state)
{
    (void)state;
    uint8_t payload[300];
    for (size_t i = 0; i < sizeof payload; i++) {
        payload[i] = (uint8_t)i; /* NULs and every byte value: binary-safe */
    }
    cluster_envelope e = sample(2, payload, sizeof payload);
    size_t size = cluster_envelope_size(sizeof payload);
    assert_int_equal(size, CLUSTER_ENVELOPE_HEADER + sizeof payload);
    uint8_t *buf = malloc(size);
    cluster_envelope_encode(&e, buf);
    assert_memory_equal(buf, "wsf\x01\x02", 5);
    assert_memory_equal(buf + 21, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    cluster_envelope d;
    assert_int_equal(cluster_envelope_decode(buf, size, 0, &d), CLUSTER_ENV_OK);
    assert_int_equal(d.opcode, 2);
    assert_memory_equal(d.node, e.node, CLUSTER_NODE_ID_LEN);
    assert_true(d.seq == e.seq);
    assert_memory_equal(d.sender, ID, CLUSTER_CONN_ID_LEN);
    assert_int_equal(d.len, sizeof payload);
    assert_ptr_equal(d.payload, buf + CLUSTER_ENVELOPE_HEADER);
    assert_memory_equal(d.payload, payload, sizeof payload);
    free(buf);
}

static void test_envelope_empty_text(void **state)
{
    (void)state;
    assert_int_equal(cluster_envelope_size(SIZE_MAX), 0); /* overflow: refused */
    assert_int_equal(cluster_envelope_size(SIZE_MAX - CLUSTER_ENVELOPE_HEADER), SIZE_MAX);
    cluster_envelope e = sample(1, NULL, 0);
    uint8_t buf[CLUSTER_ENVELOPE_HEADER];
    cluster_envelope_encode(&e, buf);
    cluster_envelope d;
    assert_int_equal(cluster_envelope_decode(buf, sizeof buf, 0, &d), CLUSTER_ENV_OK);
    assert_int_equal(d.len, 0);
    assert_int_equal(d.opcode, 1);
}

static void test_envelope_rejects(void **state)
{
    (void)state;
    const char text[] = "h\xc3\xa9llo";
    cluster_envelope e = sample(1, text, sizeof text - 1);
    size_t size = cluster_envelope_size(e.len);
    uint8_t good[128], bad[128];
    cluster_envelope_encode(&e, good);
    cluster_envelope d;
    assert_int_equal(cluster_envelope_decode(good, size, 0, &d), CLUSTER_ENV_OK);
    /* Every truncation is refused as short, or (past the header) decodes a shorter payload. */
    for (size_t n = 0; n < CLUSTER_ENVELOPE_HEADER; n++) {
        assert_int_equal(cluster_envelope_decode(good, n, 0, &d), CLUSTER_ENV_SHORT);
    }
    assert_int_equal(cluster_envelope_decode(NULL, 0, 0, &d), CLUSTER_ENV_SHORT);
    /* Cut inside the two-byte character: not UTF-8. */
    assert_int_equal(cluster_envelope_decode(good, CLUSTER_ENVELOPE_HEADER + 2, 0, &d),
                     CLUSTER_ENV_UTF8);
    memcpy(bad, good, size);
    bad[0] = 'X';
    assert_int_equal(cluster_envelope_decode(bad, size, 0, &d), CLUSTER_ENV_MAGIC);
    memcpy(bad, good, size);
    bad[3] = 2;
    assert_int_equal(cluster_envelope_decode(bad, size, 0, &d), CLUSTER_ENV_VERSION);
    memcpy(bad, good, size);
    bad[4] = 9; /* ping, or anything else */
    assert_int_equal(cluster_envelope_decode(bad, size, 0, &d), CLUSTER_ENV_OPCODE);
    memcpy(bad, good, size);
    bad[29 + 8] = 'x'; /* the first dash */
    assert_int_equal(cluster_envelope_decode(bad, size, 0, &d), CLUSTER_ENV_SENDER);
    memcpy(bad, good, size);
    bad[29] = 'A'; /* uppercase */
    assert_int_equal(cluster_envelope_decode(bad, size, 0, &d), CLUSTER_ENV_SENDER);
    assert_int_equal(cluster_envelope_decode(good, size, 3, &d), CLUSTER_ENV_TOO_BIG);
    assert_int_equal(cluster_envelope_decode(good, size, e.len, &d), CLUSTER_ENV_OK);
    /* Binary payloads are not checked as text. */
    memcpy(bad, good, size);
    bad[4] = 2;
    bad[CLUSTER_ENVELOPE_HEADER] = 0xff;
    assert_int_equal(cluster_envelope_decode(bad, size, 0, &d), CLUSTER_ENV_OK);
    bad[4] = 1;
    assert_int_equal(cluster_envelope_decode(bad, size, 0, &d), CLUSTER_ENV_UTF8);
    for (int err = 0; err >= -8; err--) {
        assert_non_null(cluster_envelope_strerror(err));
    }
    assert_string_equal(cluster_envelope_strerror(-100), "unknown envelope error");
}

static void test_envelope_garbage_never_crashes(void **state)
{
    (void)state;
    uint8_t buf[256];
    uint32_t x = 12345;
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(round % 256);
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
        }
        if (round % 2 == 0 && n >= 5) {
            memcpy(buf, "wsf\x01\x02", 5);
        }
        cluster_envelope d;
        int rc = cluster_envelope_decode(buf, n, 100, &d);
        assert_true(rc <= 0 && rc >= -7);
        if (rc == 0) {
            assert_true(d.len <= 100 && d.len + CLUSTER_ENVELOPE_HEADER == n);
        }
    }
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(cluster_utf8_valid((const uint8_t *)"", 0));
    assert_true(cluster_utf8_valid((const uint8_t *)"\xf0\x9f\x98\x80 \xe2\x82\xac", 8));
    assert_false(cluster_utf8_valid((const uint8_t *)"\xc0\x80", 2));         /* overlong */
    assert_false(cluster_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
    assert_false(cluster_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(cluster_utf8_valid((const uint8_t *)"\xe2\x82", 2));         /* cut */
    assert_false(cluster_utf8_valid((const uint8_t *)"\x80", 1));
}

static void test_channels(void **state)
{
    (void)state;
    char out[64];
    size_t n = cluster_channel(true, NULL, 0, out, sizeof out);
    assert_int_equal(n, strlen("wsfwd:global"));
    assert_memory_equal(out, "wsfwd:global", n);
    n = cluster_channel(false, "lobby", 5, out, sizeof out);
    assert_int_equal(n, strlen("wsfwd:room:lobby"));
    assert_memory_equal(out, "wsfwd:room:lobby", n);
    /* A room called like the global channel, or with any bytes, stays a room channel. */
    n = cluster_channel(false, "wsfwd:global", 12, out, sizeof out);
    assert_memory_equal(out, "wsfwd:room:wsfwd:global", n);
    n = cluster_channel(false, "a\0b", 3, out, sizeof out);
    assert_int_equal(n, CLUSTER_ROOM_PREFIX_LEN + 3);
    bool global;
    const char *name;
    size_t nlen;
    assert_int_equal(cluster_channel_parse(out, n, &global, &name, &nlen), 0);
    assert_false(global);
    assert_int_equal(nlen, 3);
    assert_memory_equal(name, "a\0b", 3);
    assert_int_equal(cluster_channel_parse("wsfwd:global", 12, &global, &name, &nlen), 0);
    assert_true(global);
    assert_int_equal(cluster_channel_parse("wsfwd:room:", 11, &global, &name, &nlen), -1);
    assert_int_equal(cluster_channel_parse("other", 5, &global, &name, &nlen), -1);
    /* Empty names and no room in out. */
    assert_int_equal(cluster_channel(false, "x", 0, out, sizeof out), 0);
    assert_int_equal(cluster_channel(false, "abcdef", 6, out, 12), 0);
    assert_int_equal(cluster_channel(true, NULL, 0, out, 5), 0);
}

static void test_url_forms(void **state)
{
    (void)state;
    cluster_url u;
    const char *why = NULL;
    assert_int_equal(cluster_url_parse("127.0.0.1:6380", &u, &why), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_false(u.has_password);
    assert_int_equal(u.db, -1);

    assert_int_equal(cluster_url_parse("redis://localhost", &u, &why), 0);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);

    assert_int_equal(cluster_url_parse("redis://:s3cret@10.0.0.5:7000/3", &u, &why), 0);
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 7000);
    assert_true(u.has_password);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "s3cret");
    assert_int_equal(u.db, 3);

    assert_int_equal(cluster_url_parse("redis://app:pw:with:colons@h/", &u, &why), 0);
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "pw:with:colons");
    assert_int_equal(u.db, -1);

    assert_int_equal(cluster_url_parse("redis://[::1]:6390/0", &u, &why), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 0);

    assert_int_equal(cluster_url_parse("[::1]:1", &u, &why), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 1);
}

static void test_url_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "localhost",
        "host:",
        "host:0",
        "host:65536",
        "host:12a",
        ":6379",
        "http://host:6379",
        "redis://",
        "redis://host:99999",
        "redis://host:6379/x",
        "redis://host/70000",
        "redis://pw@host",
        "redis://:a@b@host",
        "redis://[::1",
        "redis://[::1]x",
        "redis://ho st",
        "redis://a\"b",
        "host:6379:1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cluster_url u;
        const char *why = NULL;
        assert_int_equal(cluster_url_parse(bad[i], &u, &why), -1);
        assert_non_null(why);
    }
    cluster_url u;
    const char *why = NULL;
    assert_int_equal(cluster_url_parse(NULL, &u, &why), -1);
    char long_host[400];
    memset(long_host, 'a', sizeof long_host);
    memcpy(long_host + 390, ":1", 3);
    assert_int_equal(cluster_url_parse(long_host, &u, &why), -1);
}

static void test_backoff(void **state)
{
    (void)state;
    /* Without jitter (rnd 0): doubling from base, capped at max. */
    assert_int_equal(cluster_backoff_ms(0, 100, 5000, 0), 100);
    assert_int_equal(cluster_backoff_ms(1, 100, 5000, 0), 200);
    assert_int_equal(cluster_backoff_ms(5, 100, 5000, 0), 3200);
    assert_int_equal(cluster_backoff_ms(6, 100, 5000, 0), 5000);
    assert_int_equal(cluster_backoff_ms(1000, 100, 5000, 0), 5000);
    for (unsigned a = 0; a < 40; a++) {
        for (uint32_t r = 0; r < 5000; r += 7) {
            uint32_t d = cluster_backoff_ms(a, 100, 5000, r * 2654435761u);
            assert_true(d >= 50 && d <= 5000);
        }
    }
    assert_true(cluster_backoff_ms(3, 0, 0, 99) >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_round_trip_binary),
        cmocka_unit_test(test_envelope_empty_text),
        cmocka_unit_test(test_envelope_rejects),
        cmocka_unit_test(test_envelope_garbage_never_crashes),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_channels),
        cmocka_unit_test(test_url_forms),
        cmocka_unit_test(test_url_errors),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
