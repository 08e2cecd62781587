/* The command's room-token keys (cli/auth.c): reading --auth-secret-file, and the causes. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"

#define KEY64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/wsfwd-auth-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write bytes to dir/name; its path in a static buffer (one of four, used in turn). */
static const char *file(const char *name, const char *bytes, size_t len)
{
    static char paths[4][128];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 128, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return p;
}

static void expect_key(const char *bytes, size_t len, const char *key)
{
    const char *path = file("k", bytes, len);
    auth_keys k = {0};
    char err[256] = "";
    assert_int_equal(auth_keys_load(&k, &path, 1, err, sizeof err), 0);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.keys[0].len, strlen(key));
    assert_memory_equal(k.keys[0].ptr, key, strlen(key));
    auth_keys_free(&k);
    assert_int_equal(k.n, 0);
}

static void test_key_newline_trimmed_once(void **state)
{
    (void)state;
    expect_key(KEY64, 64, KEY64);
    expect_key(KEY64 "\n", 65, KEY64);
    expect_key(KEY64 "\r\n", 66, KEY64);
    expect_key(KEY64 "\n\n", 66, KEY64 "\n");
    expect_key(KEY64 " ", 65, KEY64 " ");
    /* Raw bytes, NUL included, are key material too. */
    char raw[40];
    for (int i = 0; i < 40; i++) {
        raw[i] = (char)(i * 7);
    }
    const char *path = file("raw", raw, sizeof raw);
    auth_keys k = {0};
    char err[256];
    assert_int_equal(auth_keys_load(&k, &path, 1, err, sizeof err), 0);
    assert_int_equal(k.keys[0].len, 40);
    assert_memory_equal(k.keys[0].ptr, raw, 40);
    auth_keys_free(&k);
}

static void expect_refused(const char *const *paths, size_t n, const char *words)
{
    auth_keys k = {0};
    char err[256] = "";
    assert_int_equal(auth_keys_load(&k, paths, n, err, sizeof err), -1);
    assert_int_equal(k.n, 0);
    if (strstr(err, words) == NULL) {
        fail_msg("error \"%s\" does not say \"%s\"", err, words);
    }
}

static void test_bad_key_files(void **state)
{
    (void)state;
    const char *p = file("short", "0123456789abcdef0123456789abcde\n", 32); /* 31 bytes */
    expect_refused(&p, 1, "has 31 bytes");
    p = file("empty", "", 0);
    expect_refused(&p, 1, "has 0 bytes");
    char *big = malloc(AUTH_MAX_KEY_LEN + 1);
    assert_non_null(big);
    memset(big, 'k', AUTH_MAX_KEY_LEN + 1);
    p = file("big", big, AUTH_MAX_KEY_LEN + 1);
    expect_refused(&p, 1, "over 4096 bytes");
    p = file("max", big, AUTH_MAX_KEY_LEN); /* exactly the maximum is fine */
    auth_keys k = {0};
    char err[256];
    assert_int_equal(auth_keys_load(&k, &p, 1, err, sizeof err), 0);
    auth_keys_free(&k);
    free(big);
    const char *missing = "/nonexistent/wsfwd/key";
    expect_refused(&missing, 1, "cannot open");
    const char *d = dir;
    expect_refused(&d, 1, "not a regular file");
    /* A bad second file refuses both, and leaves nothing allocated. */
    const char *two[2] = {file("good", KEY64, 64), missing};
    expect_refused(two, 2, "cannot open");
    expect_refused(two, 0, "1 to 2");
    const char *three[3] = {two[0], two[0], two[0]};
    expect_refused(three, 3, "1 to 2");
}

static void test_two_keys(void **state)
{
    (void)state;
    const char *paths[2] = {file("new", KEY64 "\n", 65), file("old", "x" KEY64, 65)};
    auth_keys k = {0};
    char err[256];
    assert_int_equal(auth_keys_load(&k, paths, 2, err, sizeof err), 0);
    assert_int_equal(k.n, 2);
    assert_memory_equal(k.keys[0].ptr, KEY64, 64);
    assert_memory_equal(k.keys[1].ptr, "x" KEY64, 65);
    auth_keys_free(&k);
}

static void test_causes(void **state)
{
    (void)state;
    assert_int_equal(auth_cause_of(WSFWD_ERR_TOKEN_TOO_LONG), AUTH_TOO_LONG);
    assert_int_equal(auth_cause_of(WSFWD_ERR_TOKEN_MALFORMED), AUTH_MALFORMED);
    assert_int_equal(auth_cause_of(WSFWD_ERR_TOKEN_ALG), AUTH_ALG);
    assert_int_equal(auth_cause_of(WSFWD_ERR_TOKEN_SIGNATURE), AUTH_SIGNATURE);
    assert_int_equal(auth_cause_of(WSFWD_ERR_TOKEN_CLAIMS), AUTH_CLAIMS);
    assert_int_equal(auth_cause_of(WSFWD_ERR_TOKEN_EXPIRED), AUTH_EXPIRED);
    assert_int_equal(auth_cause_of(WSFWD_ERR_TOKEN_NOT_YET_VALID), AUTH_NOT_YET_VALID);
    assert_int_equal(auth_cause_of(WSFWD_ERR_TOKEN_ROOM), AUTH_ROOM);
    assert_int_equal(auth_cause_of(WSFWD_ERR_INVALID), AUTH_MALFORMED);
    const char *want[AUTH_CAUSES] = {"missing", "too_long", "malformed",     "alg", "signature",
                                     "claims",  "expired",  "not_yet_valid", "room"};
    for (int i = 0; i < AUTH_CAUSES; i++) {
        assert_string_equal(auth_cause_name((auth_cause)i), want[i]);
    }
    assert_string_equal(auth_cause_name(AUTH_CAUSES), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_newline_trimmed_once),
        cmocka_unit_test(test_bad_key_files),
        cmocka_unit_test(test_two_keys),
        cmocka_unit_test(test_causes),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
