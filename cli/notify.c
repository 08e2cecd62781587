/* sd_notify's datagram (notify.h). Owns whether a failure was logged already, and the last
   STATUS. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* SOCK_CLOEXEC, SOCK_NONBLOCK */

#include "notify.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define STATUS_MAX 1100 /* "listening on " and every --listen address */

static bool warned;
static char last_status[STATUS_MAX];

static void warn_once(const char *name, const char *why)
{
    if (!warned) {
        warned = true;
        LOG(LOG_WARN, "NOTIFY_SOCKET=%s: %s (not said again)", name, why);
    }
}

/* The address NOTIFY_SOCKET names, or -1 with why. */
static int notify_address(const char *name, struct sockaddr_un *sa, socklen_t *len,
                          const char **why)
{
    size_t n = strlen(name);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if ((name[0] != '/' && name[0] != '@') || n < 2) {
        *why = "not an absolute path or an @abstract name";
        return -1;
    }
    if (n > sizeof sa->sun_path - (name[0] == '/')) {
        *why = "too long for a socket address";
        return -1;
    }
    memcpy(sa->sun_path, name, n);
    if (name[0] == '@') {
        sa->sun_path[0] = '\0'; /* abstract: the length says where the name ends */
    }
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
    return 0;
}

int notify_send(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (name == NULL || name[0] == '\0') {
        return 1;
    }
    struct sockaddr_un sa;
    socklen_t len;
    const char *why = NULL;
    if (notify_address(name, &sa, &len, &why) != 0) {
        warn_once(name, why);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        warn_once(name, strerror(errno));
        return -1;
    }
    ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    int err = errno;
    close(fd);
    if (sent < 0) {
        warn_once(name, strerror(err));
        return -1;
    }
    return 0;
}

int notify_ready(const char *status)
{
    if (status != NULL) {
        snprintf(last_status, sizeof last_status, "%s", status);
    }
    char state[STATUS_MAX + 64];
    snprintf(state, sizeof state, "READY=1\nMAINPID=%ld\nSTATUS=%s", (long)getpid(), last_status);
    return notify_send(state);
}

int notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    char state[64];
    snprintf(state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)usec);
    return notify_send(state);
}

int notify_stopping(void)
{
    return notify_send("STOPPING=1");
}
