/*
 * Readiness and state for a service manager, in sd_notify's protocol without libsystemd: one
 * datagram of "KEY=VALUE" lines to the AF_UNIX socket named in NOTIFY_SOCKET (a path, or an
 * abstract name written with a leading '@'). Without NOTIFY_SOCKET each call does nothing.
 * Never fatal: a failure is logged once (warn) and the next calls go on trying.
 */
#ifndef WSFWD_CLI_NOTIFY_H
#define WSFWD_CLI_NOTIFY_H

/* Send state, such as "READY=1\nSTATUS=...". Returns 0 when sent, 1 when NOTIFY_SOCKET is not
   set, -1 when it could not be sent. */
int notify_send(const char *state);

/* READY=1 with MAINPID= and STATUS=status: every listener is open (again, after a reload).
   status NULL: the one given last. */
int notify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC= (the reload's start on CLOCK_MONOTONIC): SIGHUP. */
int notify_reloading(void);
/* STOPPING=1: the shutdown has begun. */
int notify_stopping(void);

#endif
