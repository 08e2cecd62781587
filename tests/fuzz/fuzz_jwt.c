/*
 * libFuzzer target for the room-token verifier (base64url, the JSON reader, HMAC-SHA256).
 *
 * Input: byte 0 picks a mode, bytes 1 to 8 are `now` (little-endian), the rest is the text:
 *   0  the text is a whole token, verified against two keys (finds the refusal paths);
 *   1  the text is "header.payload": it is signed with the second key, so the claims of
 *      fuzzed headers and payloads are reached;
 *   2  the text is the claims JSON, sent under an HS256 header and signed with the first key;
 *   3  the text is given to the JSON reader directly, and round-trips through base64url.
 * Whatever the verdict, verifying twice gives the same one; an accepted token must satisfy
 * every rule the header promises (times, views inside the token's storage, NUL-terminated
 * UTF-8, rooms it says it opens), or the target aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "json.h"
#include "sha256.h"
#include "utf8.h"
#include "wsfwd.h"

static const char KEY0[] = "fuzz-key-zero";
static const char KEY1[] = "fuzz-key-one-a-little-longer";

static void check_view(const wsfwd_token *tok, wsfwd_str s)
{
    const char *lo = tok->storage, *hi = tok->storage + sizeof tok->storage;
    if (s.ptr < lo || s.ptr + s.len >= hi || s.ptr[s.len] != '\0' ||
        memchr(s.ptr, '\0', s.len) != NULL || !wsfwd_utf8_valid((const uint8_t *)s.ptr, s.len)) {
        abort();
    }
}

static void verify(const char *token, size_t len, int64_t now, long signer)
{
    const wsfwd_str keys[2] = {{KEY0, sizeof KEY0 - 1}, {KEY1, sizeof KEY1 - 1}};
    static wsfwd_token tok;
    int rc = wsfwd_token_verify(token, len, keys, 2, now, &tok);
    if (wsfwd_token_verify(token, len, keys, 2, now, &tok) != rc) {
        abort();
    }
    if (rc != WSFWD_OK && (rc > -90 || rc < -96) && rc != WSFWD_ERR_INVALID) {
        abort(); /* only token errors, never WSFWD_ERR_TOKEN_ROOM from the verifier */
    }
    if (rc == WSFWD_ERR_TOKEN_TOO_LONG && len <= WSFWD_TOKEN_MAX_LEN) {
        abort();
    }
    if (rc != WSFWD_OK) {
        return;
    }
    if (len > WSFWD_TOKEN_MAX_LEN || now >= tok.exp || (tok.has_nbf && now < tok.nbf) ||
        tok.key_index > 1 || (signer >= 0 && tok.key_index != (size_t)signer) ||
        tok.room_count > WSFWD_TOKEN_MAX_ROOMS) {
        abort();
    }
    if (tok.sub.ptr != NULL) {
        check_view(&tok, tok.sub);
    }
    for (size_t i = 0; i < tok.room_count; i++) {
        check_view(&tok, tok.rooms[i]);
        if (wsfwd_token_check_room(&tok, tok.rooms[i].ptr, tok.rooms[i].len) != WSFWD_OK) {
            abort();
        }
    }
    /* A name longer than any room the token can hold is never opened. */
    static char huge[WSFWD_TOKEN_STORAGE + 1];
    if (wsfwd_token_check_room(&tok, huge, sizeof huge) != WSFWD_ERR_TOKEN_ROOM) {
        abort();
    }
}

/* "text.signature": text signed with key. */
static void sign_and_verify(const char *text, size_t len, const char *key, size_t key_len,
                            int64_t now, long signer)
{
    size_t total = len + 1 + WSFWD_BASE64URL_LEN(WSFWD_SHA256_LEN);
    char *t = malloc(total + 1);
    if (t == NULL) {
        return;
    }
    uint8_t mac[WSFWD_SHA256_LEN];
    memcpy(t, text, len);
    wsfwd_hmac_sha256(key, key_len, text, len, mac);
    t[len] = '.';
    wsfwd_base64url_encode(mac, sizeof mac, t + len + 1);
    /* Accepted only if text was "header.payload", and then signed by this key, no other. */
    verify(t, total, now, signer);
    free(t);
}

/* A decoded string: NUL-terminated, no NUL inside, valid UTF-8. */
static int decoded_ok(wsfwd_str s)
{
    return s.ptr[s.len] == '\0' && memchr(s.ptr, '\0', s.len) == NULL &&
           wsfwd_utf8_valid((const uint8_t *)s.ptr, s.len);
}

static void json_direct(const uint8_t *data, size_t len)
{
    char *copy = malloc(len + 1);
    char *enc = malloc(WSFWD_BASE64URL_LEN(len) + 1);
    uint8_t *dec = malloc(len + 1);
    if (copy == NULL || enc == NULL || dec == NULL) {
        goto out;
    }
    memcpy(copy, data, len);
    static wsfwd_json_object obj;
    if (wsfwd_json_parse(copy, len, &obj) == WSFWD_JSON_OK) {
        if (obj.count > WSFWD_JSON_MAX_MEMBERS || obj.item_count > WSFWD_JSON_MAX_ITEMS) {
            abort();
        }
        for (size_t i = 0; i < obj.count; i++) {
            const wsfwd_json_member *m = &obj.members[i];
            /* Keys are unique and hold no NUL, so each finds its own member. */
            if (!decoded_ok(m->key) || wsfwd_json_find(&obj, m->key.ptr) != m) {
                abort();
            }
            if (m->type == WSFWD_JSON_STRING && !decoded_ok(m->str)) {
                abort();
            }
            if (m->type == WSFWD_JSON_ARRAY && m->first + m->count > obj.item_count) {
                abort();
            }
            for (size_t j = 0; m->type == WSFWD_JSON_ARRAY && j < m->count; j++) {
                if (!decoded_ok(obj.items[m->first + j])) {
                    abort();
                }
            }
            int64_t v;
            if (m->type == WSFWD_JSON_NUMBER) {
                (void)wsfwd_json_int64(m->str, &v);
            }
        }
    }
    size_t n = wsfwd_base64url_encode(data, len, enc);
    if (n != WSFWD_BASE64URL_LEN(len) || wsfwd_base64url_decode(enc, n, dec, len) != (long)len ||
        memcmp(dec, data, len) != 0) {
        abort();
    }
    (void)wsfwd_base64url_decode((const char *)data, len, dec, len + 1);
out:
    free(copy);
    free(enc);
    free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9) {
        return 0;
    }
    uint64_t u = 0;
    for (int i = 8; i >= 1; i--) {
        u = (u << 8) | data[i];
    }
    int64_t now = (int64_t)u;
    const char *text = (const char *)data + 9;
    size_t len = size - 9;

    switch (data[0] % 4) {
    case 0: verify(text, len, now, -1); break;
    case 1: sign_and_verify(text, len, KEY1, sizeof KEY1 - 1, now, 1); break;
    case 2: {
        static const char header[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."; /* HS256, JWT */
        char *t = malloc(sizeof header + WSFWD_BASE64URL_LEN(len));
        if (t == NULL) {
            return 0;
        }
        memcpy(t, header, sizeof header - 1);
        size_t n = wsfwd_base64url_encode(data + 9, len, t + sizeof header - 1);
        sign_and_verify(t, sizeof header - 1 + n, KEY0, sizeof KEY0 - 1, now, 0);
        free(t);
        break;
    }
    default: json_direct(data + 9, len); break;
    }
    return 0;
}
