/* The log lines (cli/log.c): the text and JSON formats, fields split off a client's line,
   escaping of control characters and invalid UTF-8, lines cut short, log_escape. */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

static const struct timespec T = {.tv_sec = 1796520598, .tv_nsec = 123999999};
#define WHEN "2026-12-06T01:29:58.123Z"

static void assert_line(log_format f, log_level level, const char *msg, const char *want)
{
    char out[2048];
    size_t n = log_render(f, level, &T, msg, out, sizeof out);
    if (n != strlen(want) || strcmp(out, want) != 0) {
        print_error("got  %s\nwant %s\n", out, want);
    }
    assert_int_equal(n, strlen(want));
    assert_string_equal(out, want);
}

static void test_text(void **state)
{
    (void)state;
    assert_line(LOG_TEXT, LOG_INFO, "listening on 127.0.0.1:8080",
                WHEN " info  listening on 127.0.0.1:8080\n");
    assert_line(LOG_TEXT, LOG_DEBUG, "conn=1 peer=[::1]:5 room=a closed: x",
                WHEN " debug conn=1 peer=[::1]:5 room=a closed: x\n");
    assert_line(LOG_TEXT, LOG_ERROR, "", WHEN " error \n");
}

static void test_json(void **state)
{
    (void)state;
    assert_line(LOG_JSON, LOG_INFO, "listening on 127.0.0.1:8080",
                "{\"ts\":\"" WHEN
                "\",\"level\":\"info\",\"msg\":\"listening on 127.0.0.1:8080\"}\n");
    assert_line(LOG_JSON, LOG_WARN, "", "{\"ts\":\"" WHEN "\",\"level\":\"warn\",\"msg\":\"\"}\n");
}

/* A client's line: the key=value words that open it are members; later ones stay in msg. */
static void test_json_fields(void **state)
{
    (void)state;
    assert_line(LOG_JSON, LOG_DEBUG,
                "conn=be43 peer=[::1]:60134 room=caf\\xc3\\xa9 refused with 403: bad (room=x)",
                "{\"ts\":\"" WHEN "\",\"level\":\"debug\",\"msg\":\"refused with 403: bad "
                "(room=x)\",\"conn\":\"be43\",\"peer\":\"[::1]:60134\","
                "\"room\":\"caf\\\\xc3\\\\xa9\"}\n");
    assert_line(LOG_JSON, LOG_INFO, "conn=1",
                "{\"ts\":\"" WHEN "\",\"level\":\"info\",\"msg\":\"\",\"conn\":\"1\"}\n");
    /* not fields: no value, an upper-case key, the line's own members, a key again, a word not
       first */
    assert_line(LOG_JSON, LOG_INFO, "conn= x",
                "{\"ts\":\"" WHEN "\",\"level\":\"info\",\"msg\":\"conn= x\"}\n");
    assert_line(LOG_JSON, LOG_INFO, "Conn=1 x",
                "{\"ts\":\"" WHEN "\",\"level\":\"info\",\"msg\":\"Conn=1 x\"}\n");
    assert_line(LOG_JSON, LOG_INFO, "msg=1 level=2",
                "{\"ts\":\"" WHEN "\",\"level\":\"info\",\"msg\":\"msg=1 level=2\"}\n");
    assert_line(LOG_JSON, LOG_INFO, "a=1 b=2 a=3 x",
                "{\"ts\":\"" WHEN
                "\",\"level\":\"info\",\"msg\":\"a=3 x\",\"a\":\"1\",\"b\":\"2\"}\n");
    assert_line(LOG_JSON, LOG_INFO, "redis: channel=a",
                "{\"ts\":\"" WHEN "\",\"level\":\"info\",\"msg\":\"redis: channel=a\"}\n");
}

static void test_json_escaping(void **state)
{
    (void)state;
    assert_line(LOG_JSON, LOG_INFO, "a\"b\\c\td\x01\x1f\x7f",
                "{\"ts\":\"" WHEN "\",\"level\":\"info\",\"msg\":\"a\\\"b\\\\c\\u0009d\\u0001"
                "\\u001f\x7f\"}\n");
    /* Invalid UTF-8 (a lone continuation byte, a cut character, 0xff) becomes U+FFFD. */
    assert_line(LOG_JSON, LOG_INFO, "\xc3\xa9 \x80 \xe2\x82 \xff",
                "{\"ts\":\"" WHEN "\",\"level\":\"info\",\"msg\":\"\xc3\xa9 \\ufffd "
                "\\ufffd\\ufffd \\ufffd\"}\n");
    /* A field's value too: only the words split off are members. */
    assert_line(LOG_JSON, LOG_INFO, "room=\xff\x01 x",
                "{\"ts\":\"" WHEN "\",\"level\":\"info\",\"msg\":\"x\",\"room\":\"\\ufffd"
                "\\u0001\"}\n");
}

/* A line longer than the buffer is cut short: still one line, and still one JSON object. */
static void test_cut_short(void **state)
{
    (void)state;
    char msg[300];
    memset(msg, '\x01', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    char out[200];
    size_t n = log_render(LOG_JSON, LOG_INFO, &T, msg, out, sizeof out);
    assert_true(n > 0 && n < sizeof out);
    assert_int_equal(strlen(out), n);
    assert_int_equal(out[n - 1], '\n');
    assert_int_equal(out[n - 2], '}');
    assert_int_equal(out[n - 3], '"');
    assert_non_null(strstr(out, "\"msg\":\"\\u0001"));
    n = log_render(LOG_TEXT, LOG_INFO, &T, msg, out, sizeof out);
    assert_int_equal(n, sizeof out - 1);
    assert_int_equal(out[n - 1], '\n');
    /* too small for ts and level: an empty line */
    n = log_render(LOG_JSON, LOG_INFO, &T, "x", out, 20);
    assert_int_equal(n, 1);
    assert_string_equal(out, "\n");
    assert_int_equal(log_render(LOG_JSON, LOG_INFO, &T, "x", out, 1), 0);
}

static void test_escape(void **state)
{
    (void)state;
    char out[64];
    log_escape("a b\"\\\x01\xc3\xa9", 8, out, sizeof out);
    assert_string_equal(out, "a b\\x22\\x5c\\x01\\xc3\\xa9");
    log_escape_value("a b=c", 5, out, sizeof out);
    assert_string_equal(out, "a\\x20b=c");
    log_escape("abcdefghijklmnopqrstuvwxyz", 26, out, 12);
    assert_string_equal(out, "abcdefg...");
}

/* log_msg: one write of the line, in the format set, only at the levels enabled. */
static void test_log_msg(void **state)
{
    (void)state;
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fileno(tmp), STDERR_FILENO), STDERR_FILENO);
    log_set_format(LOG_JSON);
    log_set_level(LOG_INFO);
    LOG(LOG_INFO, "conn=%d said %s", 7, "\x02hi");
    LOG(LOG_DEBUG, "not shown");
    log_set_format(LOG_TEXT);
    LOG(LOG_WARN, "plain %u", 3u);
    fflush(stderr);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    char buf[512];
    rewind(tmp);
    size_t n = fread(buf, 1, sizeof buf - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    char *second = strchr(buf, '\n');
    assert_non_null(second);
    assert_int_equal(buf[0], '{');
    assert_non_null(
        strstr(buf, "\",\"level\":\"info\",\"msg\":\"said \\u0002hi\",\"conn\":\"7\"}\n"));
    assert_int_equal(strlen(second + 1), strlen("2026-12-06T01:29:58.123Z warn  plain 3\n"));
    assert_non_null(strstr(second + 1, "Z warn  plain 3\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),        cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_fields), cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_cut_short),   cmocka_unit_test(test_escape),
        cmocka_unit_test(test_log_msg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
