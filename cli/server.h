/* The wsfwd server: libwsfwd on non-blocking sockets and one poll() loop. */
#ifndef WSFWD_CLI_SERVER_H
#define WSFWD_CLI_SERVER_H

#include "options.h"

typedef struct server server;

/* Bind every listener and set up the library. Prints one clear line and returns -1 on error. */
int server_open(server **out, const options *opts);

/* Serve until server_stop(); then close every client gracefully and return 0. */
int server_run(server *s);

/* Ask the loop to shut down; safe from a signal handler. */
void server_stop_from_signal(void);

/* Ask the loop to re-read the --auth-secret-file keys and the --tls-cert and --tls-key files;
   safe from a signal handler. */
void server_reload_from_signal(void);

void server_free(server *s);

#endif
