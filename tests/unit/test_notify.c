/* sd_notify's datagrams (cli/notify.c): to a path and to an abstract socket bound here, what
   each call sends, and the names and failures that send nothing. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* mkdtemp */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "notify.h"

/* A datagram socket bound to name (a path, or "@abstract"), non-blocking. */
static int bind_name(const char *name)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(name);
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@') {
        sa.sun_path[0] = '\0';
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
    return fd;
}

/* The one datagram waiting on fd, NUL-terminated. */
static void receive(int fd, char *buf, size_t cap)
{
    ssize_t n = recv(fd, buf, cap - 1, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
    char more;
    assert_true(recv(fd, &more, 1, 0) < 0); /* and nothing more */
}

/* Each call's datagram, to whatever NOTIFY_SOCKET names (bound on fd). */
static void check_messages(int fd)
{
    char buf[512];
    char want[128];
    assert_int_equal(notify_ready("listening on 127.0.0.1:8080"), 0);
    receive(fd, buf, sizeof buf);
    snprintf(want, sizeof want, "READY=1\nMAINPID=%ld\nSTATUS=listening on 127.0.0.1:8080",
             (long)getpid());
    assert_string_equal(buf, want);
    assert_int_equal(notify_reloading(), 0);
    receive(fd, buf, sizeof buf);
    assert_memory_equal(buf, "RELOADING=1\nMONOTONIC_USEC=", 27);
    char *end;
    unsigned long long usec = strtoull(buf + 27, &end, 10);
    assert_true(usec > 0);
    assert_int_equal(*end, '\0');
    assert_int_equal(notify_ready(NULL), 0); /* the last status again */
    receive(fd, buf, sizeof buf);
    assert_string_equal(buf, want);
    assert_int_equal(notify_stopping(), 0);
    receive(fd, buf, sizeof buf);
    assert_string_equal(buf, "STOPPING=1");
}

static void test_path(void **state)
{
    (void)state;
    char dir[] = "/tmp/wsfwd-notify-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/notify", dir);
    int fd = bind_name(path);
    assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
    check_messages(fd);
    close(fd);
    unlink(path);
    rmdir(dir);
}

static void test_abstract(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof name, "@wsfwd-notify-test-%ld", (long)getpid());
    int fd = bind_name(name);
    assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
    check_messages(fd);
    close(fd);
}

/* Unset or empty: nothing to do. A bad name or no one listening: -1, never fatal. */
static void test_not_sent(void **state)
{
    (void)state;
    log_set_level(LOG_ERROR); /* the one warning is not this test's output */
    assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
    assert_int_equal(notify_stopping(), 1);
    assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
    assert_int_equal(notify_stopping(), 1);
    static const char *const bad[] = {"relative/path", "@", "/", "vsock:2:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(setenv("NOTIFY_SOCKET", bad[i], 1), 0);
        assert_int_equal(notify_stopping(), -1);
    }
    char longer[200];
    memset(longer, 'a', sizeof longer - 1);
    longer[0] = '/';
    longer[sizeof longer - 1] = '\0';
    assert_int_equal(setenv("NOTIFY_SOCKET", longer, 1), 0);
    assert_int_equal(notify_ready("x"), -1);
    assert_int_equal(setenv("NOTIFY_SOCKET", "/nonexistent/wsfwd-notify", 1), 0);
    assert_int_equal(notify_ready("x"), -1);
    assert_int_equal(notify_reloading(), -1);
    assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_abstract),
        cmocka_unit_test(test_not_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
