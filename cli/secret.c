/* The one reader of secret files (see secret.h): --auth-secret-file, --redis-password-file. */
#define _POSIX_C_SOURCE 200809L

#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void secret_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    for (size_t i = 0; i < n; i++) {
        v[i] = 0;
    }
}

/* Read up to cap bytes (until end of file); -1 with errno on a read error. */
static int read_bounded(int fd, char *buf, size_t cap, size_t *got)
{
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return -1;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    *got = n;
    return 0;
}

/* Open and read the file: SECRET_OK with n bytes in buf, or SECRET_OPEN/NOT_REGULAR/READ. */
static secret_status read_file(const char *path, const secret_rules *rules, char *buf, size_t *n,
                               char *err, size_t err_cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_cap, "cannot open the %s %s: %s", rules->what, path, strerror(errno));
        return SECRET_OPEN;
    }
    struct stat st;
    if (rules->regular && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        snprintf(err, err_cap, "the %s %s is not a regular file", rules->what, path);
        close(fd);
        return SECRET_NOT_REGULAR;
    }
    if (read_bounded(fd, buf, SECRET_BUF_SIZE(rules->max), n) != 0) {
        snprintf(err, err_cap, "cannot read the %s %s: %s", rules->what, path, strerror(errno));
        close(fd);
        return SECRET_READ;
    }
    close(fd);
    return SECRET_OK;
}

/* The secret's length: n without one final "\n" or "\r\n". */
static size_t trim_newline(const char *buf, size_t n)
{
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r') {
            n--;
        }
    }
    return n;
}

static secret_status check_size(const char *path, const secret_rules *rules, const char *buf,
                                size_t n, char *err, size_t err_cap)
{
    if (n > rules->max) {
        snprintf(err, err_cap, "the %s %s holds over %zu bytes", rules->what, path, rules->max);
        return SECRET_TOO_LONG;
    }
    if (n < rules->min) {
        snprintf(err, err_cap, "the %s %s holds %zu bytes, fewer than %zu", rules->what, path, n,
                 rules->min);
        return SECRET_TOO_SHORT;
    }
    if (rules->no_nul && memchr(buf, '\0', n) != NULL) {
        snprintf(err, err_cap, "the %s %s holds a NUL byte", rules->what, path);
        return SECRET_NUL;
    }
    return SECRET_OK;
}

secret_status secret_read(const char *path, const secret_rules *rules, char *buf, size_t *len,
                          char *err, size_t err_cap)
{
    size_t n = 0;
    *len = 0;
    secret_status st = read_file(path, rules, buf, &n, err, err_cap);
    if (st == SECRET_OK) {
        n = trim_newline(buf, n);
        st = check_size(path, rules, buf, n, err, err_cap);
    }
    *len = n;
    if (st != SECRET_OK) {
        secret_wipe(buf, SECRET_BUF_SIZE(rules->max));
        return st;
    }
    buf[n] = '\0';
    return SECRET_OK;
}
