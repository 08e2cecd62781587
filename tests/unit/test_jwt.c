/*
 * HMAC-SHA256 (RFC 4231), base64url, and room tokens: RFC 7515's HS256 example, then every
 * claim rule and every refusal, each with the error the server counts it under.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "sha256.h"
#include "support.h"
#include "wsfwd.h"

static const char KEY_A[] = "secret-key-A-0123456789";
static const char KEY_B[] = "secret-key-B-9876543210";
static const wsfwd_str KEYS_A[1] = {{KEY_A, sizeof KEY_A - 1}};
static const wsfwd_str KEYS_AB[2] = {{KEY_A, sizeof KEY_A - 1}, {KEY_B, sizeof KEY_B - 1}};

#define NOW 1700000000
#define LATER "1700000600"

static wsfwd_token tok;

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    }
}

/* Sign "h.p" (already encoded parts) with key; out gets "h.p.sig". */
static void sign_parts(const char *h, const char *p, const char *key, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s.%s", h, p);
    assert_true(n > 0 && (size_t)n + 45 < cap);
    uint8_t mac[WSFWD_SHA256_LEN];
    wsfwd_hmac_sha256(key, strlen(key), out, (size_t)n, mac);
    out[n] = '.';
    wsfwd_base64url_encode(mac, sizeof mac, out + n + 1);
}

/* A token of header and payload JSON texts signed with key. */
static void mint(const char *header, const char *payload, const char *key, char *out, size_t cap)
{
    static char h[8192], p[8192];
    assert_true(WSFWD_BASE64URL_LEN(strlen(header)) < sizeof h);
    assert_true(WSFWD_BASE64URL_LEN(strlen(payload)) < sizeof p);
    wsfwd_base64url_encode((const uint8_t *)header, strlen(header), h);
    wsfwd_base64url_encode((const uint8_t *)payload, strlen(payload), p);
    sign_parts(h, p, key, out, cap);
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static int verify(const char *token, const wsfwd_str *keys, size_t nkeys, int64_t now)
{
    return wsfwd_token_verify(test_guarded_str(token), strlen(token), keys, nkeys, now, &tok);
}

/* Mint payload with key A and verify it at NOW with key A. */
static int claims(const char *payload)
{
    char t[8192];
    mint(HS256, payload, KEY_A, t, sizeof t);
    return verify(t, KEYS_A, 1, NOW);
}

static void assert_view(wsfwd_str s, const char *want)
{
    assert_non_null(s.ptr);
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.ptr, want, s.len);
    assert_int_equal(s.ptr[s.len], '\0');
}

static int room(const char *name)
{
    return wsfwd_token_check_room(&tok, test_guarded_str(name), strlen(name));
}

/* --- HMAC-SHA256: RFC 4231 section 4, test cases 1 to 7 --- */

static void test_rfc4231(void **state)
{
    (void)state;
    uint8_t k3[20], d3[50], k4[25], d4[50], k6[131];
    memset(k3, 0xaa, sizeof k3);
    memset(d3, 0xdd, sizeof d3);
    for (int i = 0; i < 25; i++) {
        k4[i] = (uint8_t)(i + 1);
    }
    memset(d4, 0xcd, sizeof d4);
    memset(k6, 0xaa, sizeof k6);
    const char *d7 = "This is a test using a larger than block-size key and a larger than "
                     "block-size data. The key needs to be hashed before being used by the "
                     "HMAC algorithm.";
    struct {
        const void *key;
        size_t key_len;
        const void *data;
        size_t len;
        size_t mac_len; /* case 5 is truncated to 128 bits */
        const char *want;
    } cases[] = {
        {"\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b", 20,
         "Hi There", 8, 32, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"Jefe", 4, "what do ya want for nothing?", 28, 32,
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {k3, sizeof k3, d3, sizeof d3, 32,
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {k4, sizeof k4, d4, sizeof d4, 32,
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {"\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c", 20,
         "Test With Truncation", 20, 16, "a3b6167473100ee06e0c796c2955552b"},
        {k6, sizeof k6, "Test Using Larger Than Block-Size Key - Hash Key First", 54, 32,
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {k6, sizeof k6, d7, strlen(d7), 32,
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t mac[WSFWD_SHA256_LEN];
        char got[65];
        wsfwd_hmac_sha256(cases[i].key, cases[i].key_len, cases[i].data, cases[i].len, mac);
        hex(mac, cases[i].mac_len, got);
        if (strcmp(got, cases[i].want) != 0) {
            fail_msg("RFC 4231 test case %zu: got %s", i + 1, got);
        }
    }
    /* An empty key and empty data are allowed (NULL with length 0). */
    uint8_t a[WSFWD_SHA256_LEN], b[WSFWD_SHA256_LEN];
    wsfwd_hmac_sha256(NULL, 0, NULL, 0, a);
    wsfwd_hmac_sha256("", 0, "", 0, b);
    assert_memory_equal(a, b, sizeof a);
    char got[65];
    hex(a, 32, got);
    assert_string_equal(got, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

/* --- base64url --- */

static void test_base64url(void **state)
{
    (void)state;
    const char *texts[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char enc[16];
        uint8_t dec[16];
        size_t n = strlen(texts[i]);
        assert_int_equal(wsfwd_base64url_encode((const uint8_t *)texts[i], n, enc),
                         WSFWD_BASE64URL_LEN(n));
        assert_string_equal(enc, want[i]);
        assert_int_equal(
            wsfwd_base64url_decode(test_guarded_str(enc), strlen(enc), dec, sizeof dec), (long)n);
        assert_memory_equal(dec, texts[i], n);
    }
    /* The url alphabet: 0xfb 0xff encode to "-_8", where plain base64 has "+/8=". */
    const uint8_t bytes[] = {0xfb, 0xff};
    char enc[8];
    uint8_t dec[8];
    wsfwd_base64url_encode(bytes, 2, enc);
    assert_string_equal(enc, "-_8");
    assert_int_equal(wsfwd_base64url_decode("-_8", 3, dec, sizeof dec), 2);
    assert_memory_equal(dec, bytes, 2);

    const char *bad[] = {
        "Zg==",   "Zg=", "Zm9v=", "+/8", "Zm 9v",
        "Zm9v\n", "Z",   "Zm9vY", "Zh", /* unused bits set: "Zg" is the only encoding of "f" */
        "Zm9",                          /* unused bits set: "fo" is "Zm8" */
        "Zm8",                          /* ok */
        "Zm9vYmF"};
    long want_bad[] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 2, -1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long got =
            wsfwd_base64url_decode(test_guarded_str(bad[i]), strlen(bad[i]), dec, sizeof dec);
        if (got != want_bad[i]) {
            fail_msg("decode \"%s\": %ld, want %ld", bad[i], got, want_bad[i]);
        }
    }
    /* A result longer than cap. */
    assert_int_equal(wsfwd_base64url_decode("Zm9vYmFy", 8, dec, 5), -1);
    assert_int_equal(wsfwd_base64url_decode("Zm9vYmFy", 8, dec, 6), 6);
}

/* --- RFC 7515 appendix A.1: the HS256 example --- */

static const char RFC7515_A1[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
    "cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

static void rfc7515_key(uint8_t key[64])
{
    const char *jwk_k = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUu"
                        "TwjAzZr1Z9CAow";
    assert_int_equal(wsfwd_base64url_decode(jwk_k, strlen(jwk_k), key, 64), 64);
}

static void test_rfc7515_a1(void **state)
{
    (void)state;
    uint8_t key[64];
    rfc7515_key(key);
    wsfwd_str keys[1] = {{(const char *)key, sizeof key}};
    assert_int_equal(verify(RFC7515_A1, keys, 1, 1300819379), WSFWD_OK);
    assert_true(tok.exp == 1300819380);
    assert_false(tok.has_nbf);
    assert_null(tok.sub.ptr);
    assert_int_equal(tok.room_count, 0);
    assert_int_equal(room(""), WSFWD_ERR_TOKEN_ROOM); /* valid, but opens no room */
    assert_int_equal(verify(RFC7515_A1, keys, 1, 1300819380), WSFWD_ERR_TOKEN_EXPIRED);
    assert_int_equal(verify(RFC7515_A1, KEYS_A, 1, 1300819379), WSFWD_ERR_TOKEN_SIGNATURE);
    /* The key as the second of two. */
    wsfwd_str two[2] = {KEYS_A[0], keys[0]};
    assert_int_equal(verify(RFC7515_A1, two, 2, 0), WSFWD_OK);
    assert_int_equal(tok.key_index, 1);
}

/* --- Accepted tokens and their claims --- */

static void test_room_and_sub(void **state)
{
    (void)state;
    assert_int_equal(claims("{\"sub\":\"alice\",\"room\":\"lobby\",\"exp\":" LATER "}"), WSFWD_OK);
    assert_view(tok.sub, "alice");
    assert_true(tok.exp == 1700000600);
    assert_int_equal(tok.key_index, 0);
    assert_int_equal(tok.room_count, 1);
    assert_view(tok.rooms[0], "lobby");
    assert_int_equal(room("lobby"), WSFWD_OK);
    assert_int_equal(room("lobby2"), WSFWD_ERR_TOKEN_ROOM);
    assert_int_equal(room("lobb"), WSFWD_ERR_TOKEN_ROOM);
    assert_int_equal(room("Lobby"), WSFWD_ERR_TOKEN_ROOM);
    assert_int_equal(room(""), WSFWD_ERR_TOKEN_ROOM);
    assert_int_equal(wsfwd_token_check_room(&tok, NULL, 0), WSFWD_ERR_TOKEN_ROOM);
    assert_int_equal(wsfwd_token_check_room(&tok, NULL, 1), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_token_check_room(NULL, "lobby", 5), WSFWD_ERR_INVALID);

    /* The global pool is the room named "". */
    assert_int_equal(claims("{\"room\":\"\",\"exp\":" LATER "}"), WSFWD_OK);
    assert_int_equal(room(""), WSFWD_OK);
    assert_int_equal(wsfwd_token_check_room(&tok, NULL, 0), WSFWD_OK);
    assert_int_equal(room("lobby"), WSFWD_ERR_TOKEN_ROOM);
    assert_null(tok.sub.ptr);
}

static void test_rooms_array(void **state)
{
    (void)state;
    assert_int_equal(claims("{\"rooms\":[\"a\",\"b\",\"\"],\"room\":\"c\",\"exp\":" LATER "}"),
                     WSFWD_OK);
    assert_int_equal(tok.room_count, 4);
    assert_view(tok.rooms[0], "c"); /* "room" first, then "rooms" */
    assert_view(tok.rooms[1], "a");
    assert_int_equal(room("a"), WSFWD_OK);
    assert_int_equal(room("b"), WSFWD_OK);
    assert_int_equal(room("c"), WSFWD_OK);
    assert_int_equal(room(""), WSFWD_OK);
    assert_int_equal(room("d"), WSFWD_ERR_TOKEN_ROOM);
    assert_int_equal(room("ab"), WSFWD_ERR_TOKEN_ROOM);

    assert_int_equal(claims("{\"rooms\":[],\"exp\":" LATER "}"), WSFWD_OK);
    assert_int_equal(tok.room_count, 0);
    assert_int_equal(room(""), WSFWD_ERR_TOKEN_ROOM);

    /* 32 rooms in all is the most. */
    char p[2048];
    size_t o = (size_t)snprintf(p, sizeof p, "{\"exp\":" LATER ",\"rooms\":[");
    for (int i = 0; i < WSFWD_TOKEN_MAX_ROOMS; i++) {
        o += (size_t)snprintf(p + o, sizeof p - o, "%s\"room-%d\"", i ? "," : "", i);
    }
    snprintf(p + o, sizeof p - o, "]}");
    assert_int_equal(claims(p), WSFWD_OK);
    assert_int_equal(tok.room_count, WSFWD_TOKEN_MAX_ROOMS);
    assert_int_equal(room("room-31"), WSFWD_OK);
    assert_int_equal(room("room-32"), WSFWD_ERR_TOKEN_ROOM);
    snprintf(p + o, sizeof p - o, ",\"room-32\"]}");
    assert_int_equal(claims(p), WSFWD_ERR_TOKEN_CLAIMS);
    snprintf(p + o, sizeof p - o, "],\"room\":\"one more\"}");
    assert_int_equal(claims(p), WSFWD_ERR_TOKEN_CLAIMS);
}

static void test_unicode_room_names(void **state)
{
    (void)state;
    /* \u escapes (a surrogate pair included) and raw UTF-8 give the same decoded names. */
    assert_int_equal(claims("{\"room\":\"caf\\u00e9\",\"rooms\":[\"\\uD83D\\uDE00 fun\","
                            "\"a\\/b\"],\"sub\":\"J\\u00fcrgen\\n\",\"exp\":" LATER "}"),
                     WSFWD_OK);
    assert_int_equal(room("caf\xc3\xa9"), WSFWD_OK);
    assert_int_equal(room("\xf0\x9f\x98\x80 fun"), WSFWD_OK);
    assert_int_equal(room("a/b"), WSFWD_OK);
    assert_int_equal(room("caf\\u00e9"), WSFWD_ERR_TOKEN_ROOM); /* not the escaped text */
    assert_view(tok.sub, "J\xc3\xbcrgen\n");

    assert_int_equal(claims("{\"room\":\"caf\xc3\xa9\",\"exp\":" LATER "}"), WSFWD_OK);
    assert_int_equal(room("caf\xc3\xa9"), WSFWD_OK);

    /* A lone surrogate, U+0000 or bad UTF-8 in a room name: the JSON is refused. */
    assert_int_equal(claims("{\"room\":\"\\uD83D\",\"exp\":" LATER "}"), WSFWD_ERR_TOKEN_MALFORMED);
    assert_int_equal(claims("{\"room\":\"a\\u0000b\",\"exp\":" LATER "}"),
                     WSFWD_ERR_TOKEN_MALFORMED);
    assert_int_equal(claims("{\"room\":\"\xc3\x28\",\"exp\":" LATER "}"),
                     WSFWD_ERR_TOKEN_MALFORMED);
}

static void test_unknown_claims_ignored(void **state)
{
    (void)state;
    assert_int_equal(claims("{\"iss\":\"app\",\"aud\":[\"x\",\"y\"],\"iat\":1.5,\"admin\":true,"
                            "\"n\":null,\"jti\":\"abc\",\"room\":\"r\",\"exp\":" LATER "}"),
                     WSFWD_OK);
    assert_int_equal(room("r"), WSFWD_OK);
    assert_int_equal(room("x"), WSFWD_ERR_TOKEN_ROOM); /* another array is not "rooms" */
    /* Unknown header parameters too (kid, cty). */
    char t[1024];
    mint("{\"kid\":\"2024\",\"alg\":\"HS256\",\"cty\":\"x\"}", "{\"exp\":" LATER "}", KEY_A, t,
         sizeof t);
    assert_int_equal(verify(t, KEYS_A, 1, NOW), WSFWD_OK);
}

static void test_second_key(void **state)
{
    (void)state;
    char ta[1024], tb[1024], tc[1024];
    mint(HS256, "{\"room\":\"r\",\"exp\":" LATER "}", KEY_A, ta, sizeof ta);
    mint(HS256, "{\"room\":\"r\",\"exp\":" LATER "}", KEY_B, tb, sizeof tb);
    mint(HS256, "{\"room\":\"r\",\"exp\":" LATER "}", "another", tc, sizeof tc);
    assert_int_equal(verify(ta, KEYS_AB, 2, NOW), WSFWD_OK);
    assert_int_equal(tok.key_index, 0);
    assert_int_equal(verify(tb, KEYS_AB, 2, NOW), WSFWD_OK);
    assert_int_equal(tok.key_index, 1);
    assert_int_equal(verify(tb, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_SIGNATURE);
    assert_int_equal(verify(tc, KEYS_AB, 2, NOW), WSFWD_ERR_TOKEN_SIGNATURE);
    /* The order of the keys does not matter, only which one signed. */
    wsfwd_str ba[2] = {KEYS_AB[1], KEYS_AB[0]};
    assert_int_equal(verify(ta, ba, 2, NOW), WSFWD_OK);
    assert_int_equal(tok.key_index, 1);
    /* A key longer than a SHA-256 block (hashed first). */
    char long_key[200];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    char tl[1024];
    mint(HS256, "{\"exp\":" LATER "}", long_key, tl, sizeof tl);
    wsfwd_str lk[1] = {{long_key, sizeof long_key - 1}};
    assert_int_equal(verify(tl, lk, 1, NOW), WSFWD_OK);
}

/* --- Time: exp required, nbf optional, now passed by the caller --- */

static void test_exp_nbf(void **state)
{
    (void)state;
    char t[1024];
    mint(HS256, "{\"sub\":\"bob\",\"exp\":1000,\"nbf\":900}", KEY_A, t, sizeof t);
    assert_int_equal(verify(t, KEYS_A, 1, 900), WSFWD_OK);
    assert_true(tok.has_nbf);
    assert_true(tok.nbf == 900);
    assert_int_equal(verify(t, KEYS_A, 1, 999), WSFWD_OK);
    assert_int_equal(verify(t, KEYS_A, 1, 1000), WSFWD_ERR_TOKEN_EXPIRED);
    assert_view(tok.sub, "bob"); /* the claims stay readable, to log who it was */
    assert_int_equal(verify(t, KEYS_A, 1, INT64_MAX), WSFWD_ERR_TOKEN_EXPIRED);
    assert_int_equal(verify(t, KEYS_A, 1, 899), WSFWD_ERR_TOKEN_NOT_YET_VALID);
    assert_view(tok.sub, "bob");
    assert_int_equal(verify(t, KEYS_A, 1, INT64_MIN), WSFWD_ERR_TOKEN_NOT_YET_VALID);

    /* Negative and extreme integers are fine as long as they fit. */
    assert_int_equal(claims("{\"exp\":9223372036854775807,\"nbf\":-9223372036854775808}"),
                     WSFWD_OK);
    assert_int_equal(claims("{\"exp\":-1}"), WSFWD_ERR_TOKEN_EXPIRED);
    assert_int_equal(claims("{\"exp\":" LATER ",\"nbf\":" LATER "}"),
                     WSFWD_ERR_TOKEN_NOT_YET_VALID);
}

static void test_claim_rules(void **state)
{
    (void)state;
    const char *bad[] = {
        "{}",
        "{\"room\":\"r\"}",        /* exp missing */
        "{\"exp\":\"" LATER "\"}", /* exp a string */
        "{\"exp\":null}",
        "{\"exp\":true}",
        "{\"exp\":[\"1\"]}",
        "{\"exp\":1700000600.0}", /* a fraction */
        "{\"exp\":1.7000006e9}",  /* an exponent */
        "{\"exp\":17000006E2}",
        "{\"exp\":9223372036854775808}", /* past int64 */
        "{\"exp\":" LATER ",\"nbf\":1.5}",
        "{\"exp\":" LATER ",\"nbf\":\"0\"}",
        "{\"exp\":" LATER ",\"nbf\":-9223372036854775809}",
        "{\"exp\":" LATER ",\"sub\":42}",
        "{\"exp\":" LATER ",\"sub\":null}",
        "{\"exp\":" LATER ",\"room\":7}",
        "{\"exp\":" LATER ",\"room\":[\"a\"]}",
        "{\"exp\":" LATER ",\"rooms\":\"a\"}",
        "{\"exp\":" LATER ",\"rooms\":null}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = claims(bad[i]);
        if (rc != WSFWD_ERR_TOKEN_CLAIMS) {
            fail_msg("claims %s: %d (%s)", bad[i], rc, wsfwd_strerror(rc));
        }
    }
}

/* --- Refusals: tampering, algorithms, encoding, JSON, length --- */

static void test_tampered(void **state)
{
    (void)state;
    char t[1024];
    mint(HS256, "{\"room\":\"r\",\"exp\":" LATER "}", KEY_A, t, sizeof t);
    assert_int_equal(verify(t, KEYS_A, 1, NOW), WSFWD_OK);
    const char *sig = strrchr(t, '.') + 1;

    /* Another payload under the old signature. */
    char forged[1024], other[1024];
    mint(HS256, "{\"room\":\"admin\",\"exp\":" LATER "}", KEY_A, other, sizeof other);
    size_t upto = (size_t)(strrchr(other, '.') - other);
    snprintf(forged, sizeof forged, "%.*s.%s", (int)upto, other, sig);
    assert_int_equal(verify(forged, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_SIGNATURE);
    /* Another (valid) header under the old signature. */
    mint("{\"typ\":\"JWT\",\"alg\":\"HS256\"}", "{\"room\":\"r\",\"exp\":" LATER "}", KEY_A, other,
         sizeof other);
    upto = (size_t)(strrchr(other, '.') - other);
    snprintf(forged, sizeof forged, "%.*s.%s", (int)upto, other, sig);
    assert_int_equal(verify(forged, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_SIGNATURE);

    /* Each character of the signature but the last changed: the bits change, so does the
       verdict (the last character's 2 unused bits make some changes malformed instead). */
    size_t sig_at = (size_t)(sig - t);
    for (size_t i = sig_at; i < strlen(t) - 1; i++) {
        strcpy(forged, t);
        forged[i] = forged[i] == 'A' ? 'B' : 'A';
        assert_int_equal(verify(forged, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_SIGNATURE);
    }
    /* A character of the payload changed. */
    strcpy(forged, t);
    char *pc = strchr(forged, '.') + 3;
    *pc = *pc == 'x' ? 'y' : 'x';
    assert_int_equal(verify(forged, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_SIGNATURE);
    /* A signature cut short, or one of HS512's length. */
    strcpy(forged, t);
    forged[strlen(forged) - 4] = '\0';
    assert_int_equal(verify(forged, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_SIGNATURE);
    char as[100];
    memset(as, 'A', sizeof as);
    snprintf(forged, sizeof forged, "%.*s%.42s", (int)sig_at + 43, t, as);
    assert_int_equal(verify(forged, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_MALFORMED); /* 85 chars */
    snprintf(forged, sizeof forged, "%.*s%.86s", (int)sig_at, t, as);
    assert_int_equal(verify(forged, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_SIGNATURE); /* 64 bytes */
    /* No signature at all. */
    snprintf(forged, sizeof forged, "%.*s", (int)sig_at, t);
    assert_int_equal(verify(forged, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_SIGNATURE);
}

static void test_algorithms(void **state)
{
    (void)state;
    const char *headers[] = {
        "{\"alg\":\"none\"}",
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
        "{\"alg\":\"HS384\"}",
        "{\"alg\":\"RS256\"}",
        "{\"alg\":\"hs256\"}",
        "{\"alg\":\"HS256 \"}",
        "{\"alg\":\"HS2560\"}",
        "{\"alg\":\"\"}",
        "{\"alg\":null}",
        "{\"alg\":256}",
        "{\"alg\":[\"HS256\"]}",
        "{\"typ\":\"JWT\"}",
        "{}",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        /* Even correctly HMAC-signed with the right key: the header decides first. */
        char t[1024];
        mint(headers[i], "{\"exp\":" LATER "}", KEY_A, t, sizeof t);
        int rc = verify(t, KEYS_A, 1, NOW);
        if (rc != WSFWD_ERR_TOKEN_ALG) {
            fail_msg("header %s: %d (%s)", headers[i], rc, wsfwd_strerror(rc));
        }
    }
    /* The classic alg-none token: an unsigned header and payload, an empty signature. */
    char h[64], p[64], t[256];
    wsfwd_base64url_encode((const uint8_t *)"{\"alg\":\"none\"}", 14, h);
    wsfwd_base64url_encode((const uint8_t *)"{\"exp\":9999999999}", 18, p);
    snprintf(t, sizeof t, "%s.%s.", h, p);
    assert_int_equal(verify(t, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_ALG);
    /* crit: extensions we cannot honour. */
    mint("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"exp\":" LATER "}", KEY_A, t, sizeof t);
    assert_int_equal(verify(t, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_MALFORMED);
}

static void test_encoding(void **state)
{
    (void)state;
    char t[1024], h[128], p[128], bad[1100];
    /* Headers and payloads of lengths that need padding in plain base64. */
    const char *header = "{\"alg\":\"HS256\"}";    /* 15 bytes: 20 characters, no padding */
    const char *header2 = "{\"alg\":\"HS256\" }";  /* 16 bytes: "==" in plain base64 */
    const char *payload = "{\"exp\":" LATER "}";   /* 18 bytes */
    const char *payload2 = "{\"exp\":" LATER " }"; /* 19 bytes: "=" in plain base64 */
    wsfwd_base64url_encode((const uint8_t *)header2, strlen(header2), h);
    wsfwd_base64url_encode((const uint8_t *)payload2, strlen(payload2), p);
    sign_parts(h, p, KEY_A, t, sizeof t);
    assert_int_equal(verify(t, KEYS_A, 1, NOW), WSFWD_OK);

    /* The same with padding, signed over the padded text: still refused. */
    char hp[160], pp[160];
    snprintf(hp, sizeof hp, "%s==", h);
    snprintf(pp, sizeof pp, "%s=", p);
    sign_parts(hp, p, KEY_A, bad, sizeof bad);
    assert_int_equal(verify(bad, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_MALFORMED);
    sign_parts(h, pp, KEY_A, bad, sizeof bad);
    assert_int_equal(verify(bad, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_MALFORMED);
    /* A padded signature ('=' after its 43 characters). */
    snprintf(bad, sizeof bad, "%.1000s=", t);
    assert_int_equal(verify(bad, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_MALFORMED);

    /* Plain base64's '+' and '/', spaces, and other characters, in each part. */
    mint(header, payload, KEY_A, t, sizeof t);
    const char subst[] = {'+', '/', ' ', '=', '%', '\n', '\0', '\x80'};
    size_t len = strlen(t);
    size_t positions[3] = {2, (size_t)(strchr(t, '.') - t) + 2, (size_t)(strrchr(t, '.') - t) + 2};
    for (size_t pi = 0; pi < 3; pi++) {
        for (size_t si = 0; si < sizeof subst; si++) {
            memcpy(bad, t, len);
            bad[positions[pi]] = subst[si];
            int rc =
                wsfwd_token_verify((const char *)test_guarded(bad, len), len, KEYS_A, 1, NOW, &tok);
            if (rc != WSFWD_ERR_TOKEN_MALFORMED) {
                fail_msg("part %zu char 0x%02x: %d", pi, (unsigned char)subst[si], rc);
            }
        }
    }
    /* Unused bits set in the header's last character: 16 bytes end in "fQ" ('}' and four
       zero bits); "fR" decodes to the same bytes but is not the canonical form. */
    wsfwd_base64url_encode((const uint8_t *)header2, strlen(header2), h);
    size_t hl = strlen(h);
    assert_string_equal(h + hl - 2, "fQ");
    h[hl - 1] = 'R';
    sign_parts(h, p, KEY_A, bad, sizeof bad);
    assert_int_equal(verify(bad, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_MALFORMED);
    h[hl - 1] = 'Q';
    sign_parts(h, p, KEY_A, bad, sizeof bad);
    assert_int_equal(verify(bad, KEYS_A, 1, NOW), WSFWD_OK);
}

static void test_structure(void **state)
{
    (void)state;
    char t[1024], bad[1100];
    mint(HS256, "{\"exp\":" LATER "}", KEY_A, t, sizeof t);
    const char *dot1 = strchr(t, '.'), *dot2 = strrchr(t, '.');
    const char *cases[] = {"", ".", "..", "...", "abc", "a.b", "a.b.c.d"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(verify(cases[i], KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_MALFORMED);
    }
    assert_int_equal(wsfwd_token_verify(NULL, 0, KEYS_A, 1, NOW, &tok), WSFWD_ERR_TOKEN_MALFORMED);
    /* A fourth part. */
    snprintf(bad, sizeof bad, "%s.%s", t, dot2 + 1);
    assert_int_equal(verify(bad, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_MALFORMED);
    /* Empty header, empty payload. */
    snprintf(bad, sizeof bad, "%s", dot1);
    assert_int_equal(verify(bad, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_MALFORMED);
    sign_parts("eyJhbGciOiJIUzI1NiJ9", "", KEY_A, bad, sizeof bad);
    assert_int_equal(verify(bad, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_MALFORMED);
    /* "Bearer " left on, or surrounding space. */
    snprintf(bad, sizeof bad, "Bearer %s", t);
    assert_int_equal(verify(bad, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_MALFORMED);
    snprintf(bad, sizeof bad, "%s ", t);
    assert_int_equal(verify(bad, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_MALFORMED);
}

static void test_json_refused(void **state)
{
    (void)state;
    const char *payloads[] = {
        "{\"exp\":" LATER ",\"room\":{\"name\":\"r\"}}", /* a nested object */
        "{\"exp\":" LATER ",\"meta\":{}}",               /* even an unknown one */
        "{\"exp\":" LATER ",\"rooms\":[[\"r\"]]}",       /* a nested array */
        "{\"exp\":" LATER ",\"rooms\":[\"r\",1]}",       /* a non-string item */
        "{\"exp\":" LATER ",\"exp\":" LATER "}",         /* a duplicate key */
        "{\"exp\":1,\"e\\u0078p\":" LATER "}",           /* the same, one escaped */
        "{\"exp\":" LATER "",                            /* cut short */
        "{\"exp\":" LATER "} x",                         /* trailing text */
        "[\"exp\"," LATER "]",                           /* not an object */
        "not json",
    };
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        int rc = claims(payloads[i]);
        if (rc != WSFWD_ERR_TOKEN_MALFORMED) {
            fail_msg("payload %s: %d (%s)", payloads[i], rc, wsfwd_strerror(rc));
        }
    }
    /* Header JSON: nested (a jwk), duplicated alg, not JSON. */
    const char *headers[] = {
        "{\"alg\":\"HS256\",\"jwk\":{\"kty\":\"oct\"}}",
        "{\"alg\":\"none\",\"alg\":\"HS256\"}",
        "{\"alg\":\"HS256\",\"alg\":\"HS256\"}",
        "{\"alg\":\"HS256\"",
        "HS256",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char t[1024];
        mint(headers[i], "{\"exp\":" LATER "}", KEY_A, t, sizeof t);
        int rc = verify(t, KEYS_A, 1, NOW);
        if (rc != WSFWD_ERR_TOKEN_MALFORMED) {
            fail_msg("header %s: %d (%s)", headers[i], rc, wsfwd_strerror(rc));
        }
    }
    /* 33 members: past the reader's limit. */
    char p[1024];
    size_t o = (size_t)snprintf(p, sizeof p, "{\"exp\":" LATER);
    for (int i = 0; i < 32; i++) {
        o += (size_t)snprintf(p + o, sizeof p - o, ",\"c%d\":%d", i, i);
    }
    snprintf(p + o, sizeof p - o, "}");
    assert_int_equal(claims(p), WSFWD_ERR_TOKEN_MALFORMED);
}

/* A token of exactly n characters: an unknown claim padded to fit. Base64url never has a
   length of 4k+1, so one of two headers of different lengths is needed for some n. */
static void token_of_length(size_t n, char *out, size_t cap)
{
    const char *headers[] = {"{\"alg\":\"HS256\"}", "{\"alg\":\"HS256\" }"};
    static char payload[4096];
    const char *head = "{\"room\":\"r\",\"exp\":" LATER ",\"x\":\"";
    for (size_t hi = 0; hi < 2; hi++) {
        for (size_t pad = 0; pad < 3000; pad++) {
            size_t m = strlen(head) + pad + 2;
            size_t total =
                WSFWD_BASE64URL_LEN(strlen(headers[hi])) + 1 + WSFWD_BASE64URL_LEN(m) + 1 + 43;
            if (total != n) {
                continue;
            }
            size_t k = strlen(head);
            memcpy(payload, head, k);
            memset(payload + k, 'p', pad);
            memcpy(payload + k + pad, "\"}", 3);
            mint(headers[hi], payload, KEY_A, out, cap);
            assert_int_equal(strlen(out), n);
            return;
        }
    }
    fail_msg("no token of length %zu", n);
}

static void test_length_limit(void **state)
{
    (void)state;
    static char t[8192];
    token_of_length(WSFWD_TOKEN_MAX_LEN, t, sizeof t);
    assert_int_equal(verify(t, KEYS_A, 1, NOW), WSFWD_OK);
    assert_int_equal(room("r"), WSFWD_OK);
    token_of_length(WSFWD_TOKEN_MAX_LEN + 1, t, sizeof t);
    assert_int_equal(verify(t, KEYS_A, 1, NOW), WSFWD_ERR_TOKEN_TOO_LONG);
    /* Refused before decoding: garbage of that length says too long, not malformed. */
    memset(t, '!', WSFWD_TOKEN_MAX_LEN + 1);
    assert_int_equal(wsfwd_token_verify(t, WSFWD_TOKEN_MAX_LEN + 1, KEYS_A, 1, NOW, &tok),
                     WSFWD_ERR_TOKEN_TOO_LONG);
    assert_int_equal(wsfwd_token_verify(t, SIZE_MAX, KEYS_A, 1, NOW, &tok),
                     WSFWD_ERR_TOKEN_TOO_LONG);
    assert_int_equal(wsfwd_token_verify(t, WSFWD_TOKEN_MAX_LEN, KEYS_A, 1, NOW, &tok),
                     WSFWD_ERR_TOKEN_MALFORMED);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    char t[1024];
    mint(HS256, "{\"exp\":" LATER "}", KEY_A, t, sizeof t);
    size_t n = strlen(t);
    wsfwd_str empty[1] = {{"", 0}};
    wsfwd_str null_key[1] = {{NULL, 0}};
    wsfwd_str second_empty[2] = {KEYS_A[0], {"", 0}};
    assert_int_equal(wsfwd_token_verify(t, n, NULL, 1, NOW, &tok), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_token_verify(t, n, KEYS_A, 0, NOW, &tok), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_token_verify(t, n, empty, 1, NOW, &tok), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_token_verify(t, n, null_key, 1, NOW, &tok), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_token_verify(t, n, second_empty, 2, NOW, &tok), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_token_verify(t, n, KEYS_A, 1, NOW, NULL), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_token_verify(NULL, 5, KEYS_A, 1, NOW, &tok), WSFWD_ERR_INVALID);
    assert_int_equal(wsfwd_token_verify(t, n, KEYS_A, 1, NOW, &tok), WSFWD_OK);
}

static void test_errors(void **state)
{
    (void)state;
    const int errs[] = {WSFWD_ERR_TOKEN_TOO_LONG,      WSFWD_ERR_TOKEN_MALFORMED,
                        WSFWD_ERR_TOKEN_ALG,           WSFWD_ERR_TOKEN_SIGNATURE,
                        WSFWD_ERR_TOKEN_CLAIMS,        WSFWD_ERR_TOKEN_EXPIRED,
                        WSFWD_ERR_TOKEN_NOT_YET_VALID, WSFWD_ERR_TOKEN_ROOM};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        assert_true(errs[i] <= -90 && errs[i] >= -99);
        assert_int_equal(wsfwd_error_http_status(errs[i]), 403);
        assert_int_equal(wsfwd_error_close_code(errs[i]), 0);
        assert_string_not_equal(wsfwd_strerror(errs[i]), "unknown error");
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(errs[i], errs[j]);
            assert_string_not_equal(wsfwd_strerror(errs[i]), wsfwd_strerror(errs[j]));
        }
    }
    assert_int_equal(wsfwd_error_http_status(-98), 0);
    assert_string_equal(wsfwd_strerror(-98), "unknown error");
}

/* --- Finding the token in a handshake request --- */

static wsfwd_request *request(const char *target, const char *extra_headers)
{
    char text[2048];
    snprintf(text, sizeof text,
             "GET %s HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
             "%s\r\n",
             target, extra_headers);
    wsfwd_request *req;
    size_t used;
    assert_int_equal(wsfwd_request_new(NULL, 0, &req), WSFWD_OK);
    assert_int_equal(wsfwd_request_feed(req, (const uint8_t *)text, strlen(text), &used), WSFWD_OK);
    return req;
}

static void assert_request_token(const char *target, const char *headers, const char *want)
{
    wsfwd_request *req = request(target, headers);
    wsfwd_str t = wsfwd_request_token(req);
    if (want == NULL) {
        if (t.ptr != NULL) {
            fail_msg("%s / %s: found \"%.*s\"", target, headers, (int)t.len, t.ptr);
        }
    } else if (t.ptr == NULL || t.len != strlen(want) || memcmp(t.ptr, want, t.len) != 0) {
        fail_msg("%s / %s: got \"%.*s\", want \"%s\"", target, headers, (int)t.len,
                 t.ptr ? t.ptr : "", want);
    }
    wsfwd_request_free(req);
}

static void test_request_token(void **state)
{
    (void)state;
    assert_request_token("/ws/r?token=a.b.c", "", "a.b.c");
    assert_request_token("/ws/r?x=1&token=a.b.c&y=2", "", "a.b.c");
    assert_request_token("/ws/r?token=first&token=second", "", "first");
    assert_request_token("/ws/r?xtoken=a&tokens=b&token", "", NULL);
    assert_request_token("/ws/r?token=", "", "");
    assert_request_token("/ws/r?&&token=z", "", "z");
    assert_request_token("/ws/r", "", NULL);
    assert_request_token("/ws/r?", "", NULL);
    assert_request_token("/ws", "Authorization: Bearer h.p.s\r\n", "h.p.s");
    assert_request_token("/ws", "authorization: bEaReR   h.p.s  \r\n", "h.p.s");
    assert_request_token("/ws?token=q", "Authorization: Bearer h\r\n", "h"); /* header first */
    assert_request_token("/ws?token=q", "Authorization: Basic dXNlcjpwYXNz\r\n", "q");
    assert_request_token("/ws", "Authorization: Basic dXNlcjpwYXNz\r\n", NULL);
    assert_request_token("/ws", "Authorization: Bearer\r\n", NULL);
    assert_request_token("/ws", "Authorization: Bearerx y\r\n", NULL);
    wsfwd_str none = wsfwd_request_token(NULL);
    assert_null(none.ptr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_base64url),
        cmocka_unit_test(test_rfc7515_a1),
        cmocka_unit_test(test_room_and_sub),
        cmocka_unit_test(test_rooms_array),
        cmocka_unit_test(test_unicode_room_names),
        cmocka_unit_test(test_unknown_claims_ignored),
        cmocka_unit_test(test_second_key),
        cmocka_unit_test(test_exp_nbf),
        cmocka_unit_test(test_claim_rules),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_algorithms),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_json_refused),
        cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_request_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
