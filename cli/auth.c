#define _POSIX_C_SOURCE 200809L

#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read one key file; returns the key (malloc'd) or NULL with err set. */
static char *read_key(const char *path, size_t *len, char *err, size_t err_cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_cap, "cannot open the auth secret file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_cap, "the auth secret file %s is not a regular file", path);
        close(fd);
        return NULL;
    }
    /* One byte more than the longest key with its newline tells a file that is too long. */
    char *buf = malloc(AUTH_MAX_KEY_LEN + 3);
    if (buf == NULL) {
        snprintf(err, err_cap, "out of memory reading %s", path);
        close(fd);
        return NULL;
    }
    size_t n = 0;
    while (n < AUTH_MAX_KEY_LEN + 3) {
        ssize_t r = read(fd, buf + n, AUTH_MAX_KEY_LEN + 3 - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            snprintf(err, err_cap, "cannot read the auth secret file %s: %s", path,
                     strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r') {
            n--;
        }
    }
    if (n > AUTH_MAX_KEY_LEN) {
        snprintf(err, err_cap, "the auth secret file %s holds over %d bytes", path,
                 AUTH_MAX_KEY_LEN);
        free(buf);
        return NULL;
    }
    if (n < AUTH_MIN_KEY_LEN) {
        snprintf(err, err_cap,
                 "the key in %s has %zu bytes; an HS256 key needs at least %d (RFC 7518 3.2), "
                 "e.g. from `openssl rand -hex 32`",
                 path, n, AUTH_MIN_KEY_LEN);
        free(buf);
        return NULL;
    }
    *len = n;
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
        volatile char *p = (volatile char *)(uintptr_t)k->keys[i].ptr;
        for (size_t j = 0; j < k->keys[i].len; j++) {
            p[j] = 0;
        }
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
        "missing", "too_long", "malformed", "alg", "signature",
        "claims", "expired", "not_yet_valid", "room",
    };
    return (unsigned)cause < AUTH_CAUSES ? names[cause] : "?";
}
