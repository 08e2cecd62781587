/* The command's secret-file reader (cli/secret.c): trimming, bounds, refusals and their text,
   both callers' rules (auth.c's keys, cluster.c's Redis password). */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "secret.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/wsfwd-secret-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write bytes to dir/s; its path in a static buffer. */
static const char *file(const char *bytes, size_t len)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/s", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* Rules like the Redis password's (1 to 15 bytes here, no NUL, any kind of file). */
static const secret_rules SMALL = {.what = "test file", .min = 1, .max = 15, .no_nul = true};

static char buf[SECRET_BUF_SIZE(15)];
static char err[256];

static secret_status read_bytes(const secret_rules *r, const char *bytes, size_t n, size_t *len)
{
    memset(buf, 'x', sizeof buf);
    err[0] = '\0';
    return secret_read(file(bytes, n), r, buf, len, err, sizeof err);
}

static void expect_secret(const char *bytes, size_t n, const char *want)
{
    size_t len = 99;
    assert_int_equal(read_bytes(&SMALL, bytes, n, &len), SECRET_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);
    assert_int_equal(buf[len], '\0');
    assert_string_equal(err, "");
}

static void expect_status(const secret_rules *r, const char *bytes, size_t n, secret_status want,
                          const char *text)
{
    size_t len = 99;
    assert_int_equal(read_bytes(r, bytes, n, &len), want);
    if (strstr(err, text) == NULL) {
        fail_msg("error '%s' lacks '%s'", err, text);
    }
    for (size_t i = 0; i < SECRET_BUF_SIZE(r->max); i++) {
        assert_int_equal(buf[i], 0); /* wiped */
    }
}

static void test_trims_one_newline(void **state)
{
    (void)state;
    expect_secret("pass", 4, "pass");
    expect_secret("pass\n", 5, "pass");
    expect_secret("pass\r\n", 6, "pass");
    expect_secret("pass\n\n", 6, "pass\n");
    expect_secret("pass\r", 5, "pass\r");
    expect_secret("pa ss\t", 6, "pa ss\t");
}

static void test_bounds(void **state)
{
    (void)state;
    expect_secret("0123456789abcde", 15, "0123456789abcde");
    expect_secret("0123456789abcde\r\n", 17, "0123456789abcde");
    expect_status(&SMALL, "0123456789abcdef", 16, SECRET_TOO_LONG, "holds over 15 bytes");
    expect_status(&SMALL, "0123456789abcdef\r\n", 18, SECRET_TOO_LONG, "over 15");
    static char big[10000];
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = '\n';
    expect_status(&SMALL, big, sizeof big, SECRET_TOO_LONG, "over 15");
    expect_status(&SMALL, "", 0, SECRET_TOO_SHORT, "holds 0 bytes, fewer than 1");
    expect_status(&SMALL, "\n", 1, SECRET_TOO_SHORT, "fewer than 1");
    expect_status(&SMALL, "\r\n", 2, SECRET_TOO_SHORT, "fewer than 1");
}

/* The length comes back with a size refusal, for the caller's own wording. */
static void test_length_of_refused_secret(void **state)
{
    (void)state;
    static const secret_rules min8 = {.what = "key file", .min = 8, .max = 15};
    size_t len = 99;
    assert_int_equal(read_bytes(&min8, "short\n", 6, &len), SECRET_TOO_SHORT);
    assert_int_equal(len, 5);
    assert_int_equal(read_bytes(&SMALL, "a\0b", 3, &len), SECRET_NUL);
    assert_int_equal(len, 3);
}

static void test_nul(void **state)
{
    (void)state;
    expect_status(&SMALL, "pa\0ss", 5, SECRET_NUL, "holds a NUL byte");
    static const secret_rules binary = {.what = "key file", .min = 1, .max = 15};
    size_t len = 0;
    assert_int_equal(read_bytes(&binary, "pa\0ss\n", 6, &len), SECRET_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "pa\0ss", 5);
}

static void test_open_and_kind_errors(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/missing", dir);
    size_t len = 99;
    assert_int_equal(secret_read(path, &SMALL, buf, &len, err, sizeof err), SECRET_OPEN);
    char want[256];
    snprintf(want, sizeof want, "cannot open the test file %s: No such file or directory", path);
    assert_string_equal(err, want);
    assert_int_equal(len, 0);

    /* A directory: refused as not a regular file when the rules say so ... */
    secret_rules regular = SMALL;
    regular.regular = true;
    assert_int_equal(secret_read(dir, &regular, buf, &len, err, sizeof err), SECRET_NOT_REGULAR);
    snprintf(want, sizeof want, "the test file %s is not a regular file", dir);
    assert_string_equal(err, want);
    /* ... else it opens and fails to read. */
    assert_int_equal(secret_read(dir, &SMALL, buf, &len, err, sizeof err), SECRET_READ);
    snprintf(want, sizeof want, "cannot read the test file %s: Is a directory", dir);
    assert_string_equal(err, want);
    /* A character device is not a regular file either. */
    assert_int_equal(secret_read("/dev/null", &regular, buf, &len, err, sizeof err),
                     SECRET_NOT_REGULAR);
}

/* No descriptor is left open, whatever the outcome. */
static void test_no_descriptor_leak(void **state)
{
    (void)state;
    int before = open("/dev/null", O_RDONLY);
    assert_true(before >= 0);
    close(before);
    size_t len;
    (void)read_bytes(&SMALL, "pass\n", 5, &len);
    (void)read_bytes(&SMALL, "0123456789abcdefgh", 18, &len);
    secret_rules regular = SMALL;
    regular.regular = true;
    (void)secret_read(dir, &regular, buf, &len, err, sizeof err);
    (void)secret_read(dir, &SMALL, buf, &len, err, sizeof err);
    int after = open("/dev/null", O_RDONLY);
    assert_int_equal(after, before);
    close(after);
}

static void test_wipe(void **state)
{
    (void)state;
    char s[8] = "secret!";
    secret_wipe(s, sizeof s);
    for (size_t i = 0; i < sizeof s; i++) {
        assert_int_equal(s[i], 0);
    }
    secret_wipe(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trims_one_newline),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_length_of_refused_secret),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_open_and_kind_errors),
        cmocka_unit_test(test_no_descriptor_leak),
        cmocka_unit_test(test_wipe),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
