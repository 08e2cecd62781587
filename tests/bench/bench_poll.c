/*
 * bench_poll (issue 5): what one poll() over N connected loopback TCP sockets costs the kernel,
 * the loop turn's fixed price in the wsfwd binary (one pollfd per client).
 *
 *   bench_poll [N] [--quick]      (default N = 1000; --quick: 100 sockets, few calls)
 *
 * Four cases, each the mean wall time of many calls on an otherwise idle process:
 *   timeout 0, nothing readable            one scan: fdget, sock_poll, tcp_poll, fput per fd
 *   timeout 0, the last socket readable    the same scan
 *   timeout 100 ms, the last one readable  the scan also queues a wait entry on every socket
 *                                          before the ready one (__pollwait) and removes them
 *                                          all after (poll_freewait)
 *   timeout 100 ms, the first one readable the kernel stops queueing wait entries at the first
 *                                          ready descriptor, so this is a plain scan again
 * A blocking poll() that finds nothing pays the third case, sleeps, and scans once more when
 * woken. Nothing is asserted on times (the smoke test only runs it).
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double per_call_us(struct pollfd *p, size_t n, int timeout, int iters)
{
    double t = now_s();
    for (int k = 0; k < iters; k++) {
        if (poll(p, (nfds_t)n, timeout) < 0) {
            perror("poll");
            exit(1);
        }
    }
    return (now_s() - t) / iters * 1e6;
}

int main(int argc, char **argv)
{
    size_t n = 1000;
    int iters = 2000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            n = 100;
            iters = 20;
        } else {
            n = (size_t)strtoul(argv[i], NULL, 10);
        }
    }
    if (n < 2) {
        fprintf(stderr, "usage: bench_poll [N >= 2] [--quick]\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0 || listen(lfd, 4096) != 0) {
        perror("listen");
        return 1;
    }
    struct pollfd *p = calloc(n, sizeof *p);
    int *peer = calloc(n, sizeof *peer);
    if (p == NULL || peer == NULL) {
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        peer[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (peer[i] < 0 || connect(peer[i], (struct sockaddr *)&a, sizeof a) != 0) {
            fprintf(stderr, "bench_poll: connection %zu: %s (raise ulimit -n)\n", i,
                    strerror(errno));
            return 1;
        }
        p[i].fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (p[i].fd < 0) {
            perror("accept");
            return 1;
        }
        p[i].events = POLLIN;
    }
    double none0 = per_call_us(p, n, 0, iters);
    if (write(peer[n - 1], "x", 1) != 1) {
        return 1;
    }
    usleep(10000);
    double last0 = per_call_us(p, n, 0, iters);
    double last_wait = per_call_us(p, n, 100, iters);
    if (write(peer[0], "x", 1) != 1) {
        return 1;
    }
    usleep(10000);
    double first_wait = per_call_us(p, n, 100, iters);
    printf("bench_poll: %zu loopback TCP sockets, mean of %d calls each\n", n, iters);
    printf("  timeout 0, nothing readable          %8.1f us  (%.3f us per socket)\n", none0,
           none0 / (double)n);
    printf("  timeout 0, last socket readable      %8.1f us\n", last0);
    printf("  timeout 100, last socket readable    %8.1f us  (wait entries on every socket)\n",
           last_wait);
    printf("  timeout 100, first socket readable   %8.1f us\n", first_wait);
    return 0;
}
