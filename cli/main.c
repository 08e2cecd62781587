/*
 * wsfwd: the WebSocket fan-out server. Parses the options, opens the listeners, and runs the
 * poll() loop until SIGINT or SIGTERM asks for a graceful shutdown. SIGHUP re-reads the
 * --auth-secret-file keys and the TLS certificate and key.
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "options.h"
#include "server.h"

static void on_signal(int sig)
{
    if (sig == SIGHUP) {
        server_reload_from_signal();
    } else {
        server_stop_from_signal();
    }
}

static int install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0) { /* a peer that vanishes must not kill us */
        return -1;
    }
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0 ||
        sigaction(SIGHUP, &sa, NULL) != 0) {
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options opts;
    int rc = options_parse(&opts, argc, argv);
    if (rc != 0) {
        return rc == 1 ? 0 : 2;
    }
    log_set_level(opts.log_level);
    log_set_format(opts.log_format);
    if (install_signals() != 0) {
        perror("wsfwd: sigaction");
        return 1;
    }
    server *s;
    if (server_open(&s, &opts) != 0) {
        return 1;
    }
    rc = server_run(s);
    server_free(s);
    return rc;
}
