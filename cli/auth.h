/*
 * Room tokens for the server: the keys read from --auth-secret-file, and the names of the
 * refusal causes counted in /stats. The token itself is checked by the library
 * (wsfwd_token_verify, wsfwd_token_check_room); routes.c decides and logs.
 */
#ifndef WSFWD_CLI_AUTH_H
#define WSFWD_CLI_AUTH_H

#include <stddef.h>

#include "wsfwd.h"

#define AUTH_MAX_KEYS 2     /* the current key and, during a rotation, the other one */
#define AUTH_MIN_KEY_LEN 32 /* RFC 7518 3.2: an HS256 key has at least 256 bits */
#define AUTH_MAX_KEY_LEN 4096

typedef struct auth_keys {
    size_t n;
    wsfwd_str keys[AUTH_MAX_KEYS]; /* each malloc'd, owned */
} auth_keys;

/*
 * Read one key from each of the n files (n <= AUTH_MAX_KEYS). A key is the file's bytes
 * without one final newline ("\n" or "\r\n"), AUTH_MIN_KEY_LEN to AUTH_MAX_KEY_LEN bytes.
 * Returns 0, or -1 with a one-line reason in err (and *k untouched).
 */
int auth_keys_load(auth_keys *k, const char *const *paths, size_t n, char *err, size_t err_cap);

void auth_keys_free(auth_keys *k);

/* Why a handshake was refused, for the /stats counters. */
typedef enum auth_cause {
    AUTH_MISSING,  /* 401: no token */
    AUTH_TOO_LONG, /* 403 from here on */
    AUTH_MALFORMED,
    AUTH_ALG,
    AUTH_SIGNATURE,
    AUTH_CLAIMS,
    AUTH_EXPIRED,
    AUTH_NOT_YET_VALID,
    AUTH_ROOM,
    AUTH_CAUSES
} auth_cause;

/* The cause of a wsfwd_token_verify or wsfwd_token_check_room error. */
auth_cause auth_cause_of(int err);

/* Its key in /stats: "missing", "too_long", ... */
const char *auth_cause_name(auth_cause cause);

#endif
