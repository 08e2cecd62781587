#define _POSIX_C_SOURCE 200809L

#include "auth.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "secret.h"

/* Read one key file; returns the key (malloc'd) or NULL with err set. */
static char *read_key(const char *path, size_t *len, char *err, size_t err_cap)
{
    static const secret_rules rules = {
        .what = "auth secret file",
        .min = AUTH_MIN_KEY_LEN,
        .max = AUTH_MAX_KEY_LEN,
        .regular = true,
    };
    char *buf = malloc(SECRET_BUF_SIZE(AUTH_MAX_KEY_LEN));
    if (buf == NULL) {
        snprintf(err, err_cap, "out of memory reading %s", path);
        return NULL;
    }
    secret_status st = secret_read(path, &rules, buf, len, err, err_cap);
    if (st == SECRET_TOO_SHORT) {
        snprintf(err, err_cap,
                 "the key in %s has %zu bytes; an HS256 key needs at least %d (RFC 7518 3.2), "
                 "e.g. from `openssl rand -hex 32`",
                 path, *len, AUTH_MIN_KEY_LEN);
    }
    if (st != SECRET_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

int auth_keys_load(auth_keys *k, const char *const *paths, size_t n, char *err, size_t err_cap)
{
    if (n == 0 || n > AUTH_MAX_KEYS) {
        snprintf(err, err_cap, "give 1 to %d auth secret files", AUTH_MAX_KEYS);
        return -1;
    }
    auth_keys got = {0};
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        char *key = read_key(paths[i], &len, err, err_cap);
        if (key == NULL) {
            auth_keys_free(&got);
            return -1;
        }
        got.keys[i] = (wsfwd_str){key, len};
        got.n++;
    }
    *k = got;
    return 0;
}

void auth_keys_free(auth_keys *k)
{
    for (size_t i = 0; i < k->n; i++) {
        /* Keys are secrets: wipe them before giving the memory back. */
        secret_wipe((void *)(uintptr_t)k->keys[i].ptr, k->keys[i].len);
        free((void *)(uintptr_t)k->keys[i].ptr);
        k->keys[i] = (wsfwd_str){NULL, 0};
    }
    k->n = 0;
}

auth_cause auth_cause_of(int err)
{
    switch (err) {
    case WSFWD_ERR_TOKEN_TOO_LONG: return AUTH_TOO_LONG;
    case WSFWD_ERR_TOKEN_ALG: return AUTH_ALG;
    case WSFWD_ERR_TOKEN_SIGNATURE: return AUTH_SIGNATURE;
    case WSFWD_ERR_TOKEN_CLAIMS: return AUTH_CLAIMS;
    case WSFWD_ERR_TOKEN_EXPIRED: return AUTH_EXPIRED;
    case WSFWD_ERR_TOKEN_NOT_YET_VALID: return AUTH_NOT_YET_VALID;
    case WSFWD_ERR_TOKEN_ROOM: return AUTH_ROOM;
    default: return AUTH_MALFORMED;
    }
}

const char *auth_cause_name(auth_cause cause)
{
    static const char *const names[AUTH_CAUSES] = {
        "missing", "too_long", "malformed",     "alg",  "signature",
        "claims",  "expired",  "not_yet_valid", "room",
    };
    return (unsigned)cause < AUTH_CAUSES ? names[cause] : "?";
}
