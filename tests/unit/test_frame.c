/* The frame codec: every header rule of RFC 6455 section 5, encoding, and masking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "support.h"
#include "wsfwd.h"

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

static int parse(const uint8_t *b, size_t n, wsfwd_role receiver, wsfwd_frame_header *h)
{
    return wsfwd_frame_parse_header(test_guarded(b, n), n, receiver, h); /* no byte past n */
}

/* RFC 6455 section 5.7's examples. */
static void test_rfc_examples(void **state)
{
    (void)state;
    wsfwd_frame_header h;
    const uint8_t unmasked_hello[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    assert_int_equal(parse(unmasked_hello, sizeof unmasked_hello, WSFWD_ROLE_CLIENT, &h), WSFWD_OK);
    assert_true(h.fin);
    assert_int_equal(h.opcode, WSFWD_OP_TEXT);
    assert_int_equal(h.payload_len, 5);
    assert_int_equal(h.header_len, 2);
    assert_false(h.masked);

    uint8_t masked_hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    assert_int_equal(parse(masked_hello, sizeof masked_hello, WSFWD_ROLE_SERVER, &h), WSFWD_OK);
    assert_true(h.masked);
    assert_int_equal(h.header_len, 6);
    assert_memory_equal(h.mask, MASK, 4);
    wsfwd_frame_mask(masked_hello + 6, 5, h.mask, 0);
    assert_memory_equal(masked_hello + 6, "Hello", 5);

    const uint8_t fragment1[] = {0x01, 0x03, 'H', 'e', 'l'};
    const uint8_t fragment2[] = {0x80, 0x02, 'l', 'o'};
    assert_int_equal(parse(fragment1, sizeof fragment1, WSFWD_ROLE_CLIENT, &h), WSFWD_OK);
    assert_false(h.fin);
    assert_int_equal(h.opcode, WSFWD_OP_TEXT);
    assert_int_equal(parse(fragment2, sizeof fragment2, WSFWD_ROLE_CLIENT, &h), WSFWD_OK);
    assert_true(h.fin);
    assert_int_equal(h.opcode, WSFWD_OP_CONTINUATION);

    const uint8_t len256[] = {0x82, 0x7E, 0x01, 0x00};
    assert_int_equal(parse(len256, sizeof len256, WSFWD_ROLE_CLIENT, &h), WSFWD_OK);
    assert_int_equal(h.payload_len, 256);
    assert_int_equal(h.header_len, 4);

    const uint8_t len64k[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0};
    assert_int_equal(parse(len64k, sizeof len64k, WSFWD_ROLE_CLIENT, &h), WSFWD_OK);
    assert_int_equal(h.payload_len, 65536);
    assert_int_equal(h.header_len, 10);
}

static void test_incomplete_headers(void **state)
{
    (void)state;
    wsfwd_frame_header h;
    const uint8_t full[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4};
    for (size_t n = 0; n < sizeof full; n++) {
        assert_int_equal(parse(full, n, WSFWD_ROLE_SERVER, &h), WSFWD_INCOMPLETE);
    }
    assert_int_equal(parse(full, sizeof full, WSFWD_ROLE_SERVER, &h), WSFWD_OK);
    assert_int_equal(h.header_len, 14);
}

static void test_rsv_and_opcodes(void **state)
{
    (void)state;
    wsfwd_frame_header h;
    for (unsigned rsv = 1; rsv < 8; rsv++) {
        uint8_t b[] = {(uint8_t)(0x81 | rsv << 4), 0x00};
        assert_int_equal(parse(b, 2, WSFWD_ROLE_CLIENT, &h), WSFWD_ERR_RSV);
    }
    for (unsigned op = 0; op < 16; op++) {
        uint8_t b[] = {(uint8_t)(0x80 | op), 0x00};
        int known = op <= 2 || (op >= 8 && op <= 10);
        assert_int_equal(parse(b, 2, WSFWD_ROLE_CLIENT, &h), known ? WSFWD_OK : WSFWD_ERR_OPCODE);
    }
}

static void test_control_rules(void **state)
{
    (void)state;
    wsfwd_frame_header h;
    for (unsigned op = 8; op <= 10; op++) {
        uint8_t unfinished[] = {(uint8_t)op, 0x00};
        assert_int_equal(parse(unfinished, 2, WSFWD_ROLE_CLIENT, &h), WSFWD_ERR_CONTROL_FRAGMENTED);
        uint8_t max[] = {(uint8_t)(0x80 | op), 125};
        assert_int_equal(parse(max, 2, WSFWD_ROLE_CLIENT, &h), WSFWD_OK);
        uint8_t too_long[] = {(uint8_t)(0x80 | op), 126, 0, 126};
        assert_int_equal(parse(too_long, 4, WSFWD_ROLE_CLIENT, &h), WSFWD_ERR_CONTROL_TOO_LONG);
        uint8_t way_too_long[] = {(uint8_t)(0x80 | op), 127, 0, 0, 0, 0, 0, 1, 0, 0};
        assert_int_equal(parse(way_too_long, 10, WSFWD_ROLE_CLIENT, &h),
                         WSFWD_ERR_CONTROL_TOO_LONG);
    }
}

static void test_masking_direction(void **state)
{
    (void)state;
    wsfwd_frame_header h;
    const uint8_t unmasked[] = {0x81, 0x00};
    const uint8_t masked[] = {0x81, 0x80, 1, 2, 3, 4};
    assert_int_equal(parse(unmasked, 2, WSFWD_ROLE_SERVER, &h), WSFWD_ERR_MASK);
    assert_int_equal(parse(masked, 6, WSFWD_ROLE_CLIENT, &h), WSFWD_ERR_MASK);
    assert_int_equal(parse(unmasked, 2, WSFWD_ROLE_CLIENT, &h), WSFWD_OK);
    assert_int_equal(parse(masked, 6, WSFWD_ROLE_SERVER, &h), WSFWD_OK);
}

static void test_length_rules(void **state)
{
    (void)state;
    wsfwd_frame_header h;
    const uint8_t short16[] = {0x82, 126, 0x00, 125}; /* fits in 7 bits */
    assert_int_equal(parse(short16, 4, WSFWD_ROLE_CLIENT, &h), WSFWD_ERR_LENGTH);
    const uint8_t ok16[] = {0x82, 126, 0x00, 126};
    assert_int_equal(parse(ok16, 4, WSFWD_ROLE_CLIENT, &h), WSFWD_OK);
    const uint8_t short64[] = {0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}; /* fits in 16 bits */
    assert_int_equal(parse(short64, 10, WSFWD_ROLE_CLIENT, &h), WSFWD_ERR_LENGTH);
    const uint8_t topbit[] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(parse(topbit, 10, WSFWD_ROLE_CLIENT, &h), WSFWD_ERR_LENGTH);
    const uint8_t max63[] = {0x82, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    assert_int_equal(parse(max63, 10, WSFWD_ROLE_CLIENT, &h), WSFWD_OK);
    assert_int_equal(h.payload_len, UINT64_C(0x7FFFFFFFFFFFFFFF));
}

/* Encode then parse gives back every field, for each length encoding and both directions. */
static void test_encode_round_trip(void **state)
{
    (void)state;
    static const uint64_t lengths[] = {0, 1, 125, 126, 127, 65535, 65536, UINT64_C(1) << 40};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        for (int masked = 0; masked <= 1; masked++) {
            for (int fin = 0; fin <= 1; fin++) {
                uint8_t buf[WSFWD_FRAME_HEADER_MAX];
                size_t n = wsfwd_frame_encode_header(buf, fin, WSFWD_OP_BINARY, lengths[i],
                                                     masked ? MASK : NULL);
                size_t expect = 2 +
                                (lengths[i] > 65535 ? 8
                                 : lengths[i] > 125 ? 2
                                                    : 0) +
                                (masked ? 4 : 0);
                assert_int_equal(n, expect);
                wsfwd_frame_header h;
                wsfwd_role receiver = masked ? WSFWD_ROLE_SERVER : WSFWD_ROLE_CLIENT;
                assert_int_equal(parse(buf, n, receiver, &h), WSFWD_OK);
                assert_int_equal(h.header_len, n);
                assert_int_equal(h.payload_len, lengths[i]);
                assert_int_equal(h.fin, fin);
                assert_int_equal(h.opcode, WSFWD_OP_BINARY);
                if (masked) {
                    assert_memory_equal(h.mask, MASK, 4);
                }
            }
        }
    }
}

/* Word-at-a-time masking equals the byte-by-byte definition, at every offset and length. */
static void test_mask_matches_definition(void **state)
{
    (void)state;
    uint8_t data[300], expect[300];
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] = (uint8_t)(i * 31 + 7);
    }
    for (uint64_t offset = 0; offset < 8; offset++) {
        for (size_t len = 0; len <= 100; len++) {
            for (size_t start = 0; start < 4; start++) {
                uint8_t work[300];
                memcpy(work, data, sizeof data);
                memcpy(expect, data, sizeof data);
                for (size_t i = 0; i < len; i++) {
                    expect[start + i] ^= MASK[(offset + i) % 4];
                }
                wsfwd_frame_mask(work + start, len, MASK, offset);
                assert_memory_equal(work, expect, sizeof work);
            }
        }
    }
}

/* Unmasking in pieces, each with its payload offset, equals unmasking at once. */
static void test_mask_in_pieces(void **state)
{
    (void)state;
    uint8_t whole[257], pieces[257];
    for (size_t i = 0; i < sizeof whole; i++) {
        whole[i] = pieces[i] = (uint8_t)i;
    }
    wsfwd_frame_mask(whole, sizeof whole, MASK, 0);
    size_t off = 0;
    for (size_t step = 1; off < sizeof pieces; step = step * 2 + 1) {
        size_t n = sizeof pieces - off < step ? sizeof pieces - off : step;
        wsfwd_frame_mask(pieces + off, n, MASK, off);
        off += n;
    }
    assert_memory_equal(whole, pieces, sizeof whole);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_examples),      cmocka_unit_test(test_incomplete_headers),
        cmocka_unit_test(test_rsv_and_opcodes),   cmocka_unit_test(test_control_rules),
        cmocka_unit_test(test_masking_direction), cmocka_unit_test(test_length_rules),
        cmocka_unit_test(test_encode_round_trip), cmocka_unit_test(test_mask_matches_definition),
        cmocka_unit_test(test_mask_in_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
