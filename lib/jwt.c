/*
 * Room tokens: JWS compact serialisation (RFC 7515) of JWT claims (RFC 7519), HS256 only.
 * The header is decoded and checked first (it says how to verify), the signature next, and
 * only an authentic payload is parsed. Everything is decoded into the caller's wsfwd_token
 * storage (the header first; then the payload, with the signature after it), so nothing is
 * allocated.
 */
#include <string.h>

#include "base64.h"
#include "json.h"
#include "sha256.h"

/* True if a and b (WSFWD_SHA256_LEN bytes) are equal, in a time that does not depend on where
   they differ. */
static bool mac_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t diff = 0;
    for (size_t i = 0; i < WSFWD_SHA256_LEN; i++) {
        diff |= (uint8_t)(a[i] ^ b[i]);
    }
    return diff == 0;
}

/* Decode one base64url part and parse it as a JSON object in out->storage. */
static int decode_object(const char *part, size_t len, wsfwd_token *out, wsfwd_json_object *obj)
{
    long n = wsfwd_base64url_decode(part, len, (uint8_t *)out->storage, sizeof out->storage);
    if (n < 0 || wsfwd_json_parse(out->storage, (size_t)n, obj) != WSFWD_JSON_OK) {
        return WSFWD_ERR_TOKEN_MALFORMED;
    }
    return WSFWD_OK;
}

static int check_header(const char *part, size_t len, wsfwd_token *out, wsfwd_json_object *obj)
{
    int rc = decode_object(part, len, out, obj);
    if (rc != WSFWD_OK) {
        return rc;
    }
    /* crit names extensions the verifier must understand (RFC 7515 section 4.1.11): none. */
    if (wsfwd_json_find(obj, "crit") != NULL) {
        return WSFWD_ERR_TOKEN_MALFORMED;
    }
    const wsfwd_json_member *alg = wsfwd_json_find(obj, "alg");
    if (alg == NULL || alg->type != WSFWD_JSON_STRING || alg->str.len != 5 ||
        memcmp(alg->str.ptr, "HS256", 5) != 0) {
        return WSFWD_ERR_TOKEN_ALG;
    }
    return WSFWD_OK;
}

/* A numeric date claim: absent (*present false), or an integer. */
static int date_claim(const wsfwd_json_object *obj, const char *name, int64_t *v, bool *present)
{
    const wsfwd_json_member *m = wsfwd_json_find(obj, name);
    *present = m != NULL;
    *v = 0;
    if (m == NULL) {
        return WSFWD_OK;
    }
    if (m->type != WSFWD_JSON_NUMBER || wsfwd_json_int64(m->str, v) != 0) {
        return WSFWD_ERR_TOKEN_CLAIMS;
    }
    return WSFWD_OK;
}

static int read_claims(const wsfwd_json_object *obj, wsfwd_token *out)
{
    bool has_exp;
    if (date_claim(obj, "exp", &out->exp, &has_exp) != WSFWD_OK || !has_exp ||
        date_claim(obj, "nbf", &out->nbf, &out->has_nbf) != WSFWD_OK) {
        return WSFWD_ERR_TOKEN_CLAIMS;
    }
    const wsfwd_json_member *m = wsfwd_json_find(obj, "sub");
    if (m != NULL) {
        if (m->type != WSFWD_JSON_STRING) {
            return WSFWD_ERR_TOKEN_CLAIMS;
        }
        out->sub = m->str;
    }
    m = wsfwd_json_find(obj, "room");
    if (m != NULL) {
        if (m->type != WSFWD_JSON_STRING) {
            return WSFWD_ERR_TOKEN_CLAIMS;
        }
        out->rooms[out->room_count++] = m->str;
    }
    m = wsfwd_json_find(obj, "rooms");
    if (m != NULL) {
        if (m->type != WSFWD_JSON_ARRAY || m->count > WSFWD_TOKEN_MAX_ROOMS - out->room_count) {
            return WSFWD_ERR_TOKEN_CLAIMS;
        }
        for (size_t i = 0; i < m->count; i++) {
            out->rooms[out->room_count++] = obj->items[m->first + i];
        }
    }
    return WSFWD_OK;
}

int wsfwd_token_verify(const char *token, size_t len, const wsfwd_str *keys, size_t key_count,
                       int64_t now, wsfwd_token *out)
{
    if ((token == NULL && len > 0) || keys == NULL || key_count == 0 || out == NULL) {
        return WSFWD_ERR_INVALID;
    }
    for (size_t i = 0; i < key_count; i++) {
        if (keys[i].ptr == NULL || keys[i].len == 0) {
            return WSFWD_ERR_INVALID;
        }
    }
    out->exp = 0;
    out->nbf = 0;
    out->has_nbf = false;
    out->sub.ptr = NULL;
    out->sub.len = 0;
    out->key_index = 0;
    out->room_count = 0;
    if (len > WSFWD_TOKEN_MAX_LEN) {
        return WSFWD_ERR_TOKEN_TOO_LONG;
    }

    /* Exactly two dots: header.payload.signature. */
    const char *dot1 = len > 0 ? memchr(token, '.', len) : NULL;
    if (dot1 == NULL) {
        return WSFWD_ERR_TOKEN_MALFORMED;
    }
    size_t h_len = (size_t)(dot1 - token);
    const char *dot2 = memchr(dot1 + 1, '.', len - h_len - 1);
    if (dot2 == NULL) {
        return WSFWD_ERR_TOKEN_MALFORMED;
    }
    size_t signed_len = (size_t)(dot2 - token);
    const char *sig_part = dot2 + 1;
    size_t sig_len = len - signed_len - 1;
    if (memchr(sig_part, '.', sig_len) != NULL) {
        return WSFWD_ERR_TOKEN_MALFORMED;
    }

    wsfwd_json_object obj;
    int rc = check_header(token, h_len, out, &obj);
    if (rc != WSFWD_OK) {
        return rc;
    }

    /* The payload is decoded now (a bad encoding is malformed, whatever the signature) but
       parsed only once authentic. The signature goes after it in the storage. */
    const char *payload = dot1 + 1;
    long p_len = wsfwd_base64url_decode(payload, (size_t)(dot2 - payload), (uint8_t *)out->storage,
                                        sizeof out->storage);
    if (p_len < 0) {
        return WSFWD_ERR_TOKEN_MALFORMED;
    }
    uint8_t *sig = (uint8_t *)out->storage + p_len;
    long s_len =
        wsfwd_base64url_decode(sig_part, sig_len, sig, sizeof out->storage - (size_t)p_len);
    if (s_len < 0) {
        return WSFWD_ERR_TOKEN_MALFORMED;
    }
    if (s_len != WSFWD_SHA256_LEN) {
        return WSFWD_ERR_TOKEN_SIGNATURE;
    }
    /* Every key is tried, so the time taken does not say which one matched. */
    bool found = false;
    for (size_t i = 0; i < key_count; i++) {
        uint8_t mac[WSFWD_SHA256_LEN];
        wsfwd_hmac_sha256(keys[i].ptr, keys[i].len, token, signed_len, mac);
        if (mac_equal(mac, sig) && !found) {
            found = true;
            out->key_index = i;
        }
    }
    if (!found) {
        return WSFWD_ERR_TOKEN_SIGNATURE;
    }
    if (wsfwd_json_parse(out->storage, (size_t)p_len, &obj) != WSFWD_JSON_OK) {
        return WSFWD_ERR_TOKEN_MALFORMED;
    }
    rc = read_claims(&obj, out);
    if (rc != WSFWD_OK) {
        return rc;
    }
    if (now >= out->exp) {
        return WSFWD_ERR_TOKEN_EXPIRED;
    }
    if (out->has_nbf && now < out->nbf) {
        return WSFWD_ERR_TOKEN_NOT_YET_VALID;
    }
    return WSFWD_OK;
}

int wsfwd_token_check_room(const wsfwd_token *tok, const char *room, size_t len)
{
    if (tok == NULL || (room == NULL && len > 0)) {
        return WSFWD_ERR_INVALID;
    }
    for (size_t i = 0; i < tok->room_count && i < WSFWD_TOKEN_MAX_ROOMS; i++) {
        if (tok->rooms[i].len == len && (len == 0 || memcmp(tok->rooms[i].ptr, room, len) == 0)) {
            return WSFWD_OK;
        }
    }
    return WSFWD_ERR_TOKEN_ROOM;
}

static bool ascii_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') {
            x = (char)(x - 'A' + 'a');
        }
        if (y >= 'A' && y <= 'Z') {
            y = (char)(y - 'A' + 'a');
        }
        if (x != y) {
            return false;
        }
    }
    return true;
}

wsfwd_str wsfwd_request_token(const wsfwd_request *req)
{
    wsfwd_str none = {NULL, 0};
    if (req == NULL) {
        return none;
    }
    /* Authorization: Bearer <token> (RFC 6750 section 2.1); other schemes are not ours. */
    wsfwd_str auth = wsfwd_request_header(req, "Authorization");
    if (auth.ptr != NULL && auth.len >= 7 && ascii_ieq(auth.ptr, "bearer", 6) &&
        (auth.ptr[6] == ' ' || auth.ptr[6] == '\t')) {
        size_t i = 7;
        while (i < auth.len && (auth.ptr[i] == ' ' || auth.ptr[i] == '\t')) {
            i++;
        }
        wsfwd_str t = {auth.ptr + i, auth.len - i};
        return t;
    }
    /* The first token=... of the query, up to the next '&'. */
    wsfwd_str q = wsfwd_request_query(req);
    size_t i = 0;
    while (q.ptr != NULL && i < q.len) {
        const char *amp = memchr(q.ptr + i, '&', q.len - i);
        size_t end = amp != NULL ? (size_t)(amp - q.ptr) : q.len;
        if (end - i >= 6 && memcmp(q.ptr + i, "token=", 6) == 0) {
            wsfwd_str t = {q.ptr + i + 6, end - i - 6};
            return t;
        }
        i = end + 1;
    }
    return none;
}
