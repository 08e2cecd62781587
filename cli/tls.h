/*
 * Built-in TLS for wsfwd's --listen-tls listeners (OpenSSL; only in a build with it). Owns
 * everything OpenSSL: the SSL_CTX of the TLS listeners (TLS 1.2 and 1.3 only, ALPN http/1.1,
 * the certificate chain and key read from --tls-cert and --tls-key, re-read by tls_reload) and
 * each connection's SSL on its non-blocking socket. The server reads and writes a TLS client
 * through tls_read and tls_write instead of read() and writev(); the handshake runs inside
 * them. The library (lib/) never sees TLS: it gets the plaintext bytes.
 */
#ifndef WSFWD_CLI_TLS_H
#define WSFWD_CLI_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct tls_ctx tls_ctx;
typedef struct tls_conn tls_conn;

/* What tls_read and tls_write return when they moved no byte. */
enum {
    TLS_AGAIN = -1,  /* the socket must be ready first (tls_wants says for what) */
    TLS_CLOSED = -2, /* the peer closed (close_notify or end of stream) */
    TLS_ERROR = -3,  /* a TLS or socket error: tls_error says which */
    TLS_PLAIN = -4,  /* the first bytes were not a TLS record (plain HTTP): answered 400 */
};

/* The most plaintext one TLS record holds. */
#define TLS_RECORD_MAX 16384

/* A context with the chain from cert_file (PEM, leaf first) and the key from key_file (the
   paths are kept). Prints one line to stderr and returns -1 when they cannot be loaded or do
   not match. */
int tls_ctx_new(tls_ctx **out, const char *cert_file, const char *key_file);
/* Re-read the files: new connections get the new certificate, open ones keep theirs (each SSL
   holds a reference to its SSL_CTX). Logs the new certificate's subject and serial, or why the
   old one stays. Returns 0 or -1. */
int tls_reload(tls_ctx *t);
void tls_ctx_free(tls_ctx *t);
/* "subject /CN=..., serial 0A1B..." of the certificate in use, for the log. */
void tls_describe(const tls_ctx *t, char *out, size_t cap);
#define TLS_DESCRIBE_MAX 256

/* A server-side TLS connection on fd (non-blocking); NULL when out of memory. */
tls_conn *tls_conn_new(tls_ctx *t, int fd);
/* Frees the state; sends nothing (tls_shutdown first for a clean end). */
void tls_conn_free(tls_conn *c);

/* Plaintext into buf: the byte count, or a TLS_ value (TLS_AGAIN: wait for the socket to be
   readable). Runs the handshake while it is not done; what it makes OpenSSL send is written
   at once, or kept (tls_has_output). */
ssize_t tls_read(tls_conn *c, void *buf, size_t cap);
/* Encrypt all of buf and write the records, with what was kept before, in one write(2); what
   the socket does not take is kept. Returns len, or TLS_ERROR. Call it when tls_has_output is
   false, so what is kept stays bounded by one call's records. */
ssize_t tls_write(tls_conn *c, const void *buf, size_t len);
/* Write what is kept: 0 when all of it went out, TLS_AGAIN (wait for LOOP_OUT), TLS_ERROR. */
int tls_flush(tls_conn *c);
/* Whether records wait for the socket, and how many bytes of them. */
bool tls_has_output(const tls_conn *c);
size_t tls_output_bytes(const tls_conn *c);
/* Whether bytes read from the socket wait inside OpenSSL (poll() does not see them). */
bool tls_has_pending(const tls_conn *c);
/* Queue close_notify (once the handshake is done) and try to write it. */
void tls_shutdown(tls_conn *c);
/* Why the last call returned TLS_ERROR. */
const char *tls_error(const tls_conn *c);

#endif
