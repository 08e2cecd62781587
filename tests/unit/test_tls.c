/*
 * cli/tls.c on a non-blocking socketpair, against an OpenSSL client: the handshake driven by
 * tls_read, ALPN and versions, plain HTTP answered 400, records kept while the socket is full
 * and written later, input held inside OpenSSL (tls_has_pending), the certificate swapped by
 * tls_reload (open connections keep theirs) and clear errors. Certificates are made here, in
 * memory, and written to a temporary directory.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls.h"

#include <setjmp.h>

#include <cmocka.h>

static char dir[64];
static char cert_path[128], key_path[128];

static void path_in_dir(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* A self-signed P-256 certificate with this serial and its key, written as PEM (overwriting
   the files: what a renewal does). */
static void write_cert_to(const char *cert_file, const char *key_file, long serial)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(key);
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    FILE *f = fopen(cert_file, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key_file, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void write_cert(long serial)
{
    write_cert_to(cert_path, key_path, serial);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/wsfwd-test-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    path_in_dir(cert_path, sizeof cert_path, "cert.pem");
    path_in_dir(key_path, sizeof key_path, "key.pem");
    write_cert(1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(cert_path);
    unlink(key_path);
    rmdir(dir);
    return 0;
}

/* ---- A server connection and an OpenSSL client on a socketpair --------------------------- */

typedef struct pair {
    int sfd, cfd;
    tls_conn *server;
    SSL_CTX *cctx;
    SSL *client;
} pair;

static void pair_open(pair *p, tls_ctx *t, int max_version)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    p->sfd = fds[0];
    p->cfd = fds[1];
    p->server = tls_conn_new(t, p->sfd);
    assert_non_null(p->server);
    p->cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(p->cctx);
    if (max_version != 0) {
        SSL_CTX_set_security_level(p->cctx, 0);
        SSL_CTX_set_cipher_list(p->cctx, "DEFAULT:@SECLEVEL=0");
        SSL_CTX_set_min_proto_version(p->cctx, max_version);
        SSL_CTX_set_max_proto_version(p->cctx, max_version);
    }
    static const unsigned char alpn[] = "\x02h2\x08http/1.1";
    SSL_CTX_set_alpn_protos(p->cctx, alpn, sizeof alpn - 1);
    p->client = SSL_new(p->cctx);
    assert_non_null(p->client);
    SSL_set_fd(p->client, p->cfd);
    SSL_set_connect_state(p->client);
}

static void pair_close(pair *p)
{
    tls_conn_free(p->server);
    SSL_free(p->client);
    SSL_CTX_free(p->cctx);
    close(p->sfd);
    close(p->cfd);
}

/* Drive both ends until the client's handshake is done; the server's last tls_read. */
static ssize_t handshake(pair *p)
{
    uint8_t buf[64];
    ssize_t r = TLS_AGAIN;
    for (int i = 0; i < 50; i++) {
        int c = SSL_do_handshake(p->client);
        r = tls_read(p->server, buf, sizeof buf);
        if (c == 1 && r == TLS_AGAIN) {
            return r;
        }
        if (r != TLS_AGAIN || (c != 1 && SSL_get_error(p->client, c) != SSL_ERROR_WANT_READ)) {
            return r == TLS_AGAIN ? TLS_ERROR : r;
        }
    }
    return TLS_ERROR;
}

/* What the server reads, after the client wrote it. */
static void client_to_server(pair *p, const char *text)
{
    assert_int_equal(SSL_write(p->client, text, (int)strlen(text)), (int)strlen(text));
    char buf[256];
    ssize_t r = tls_read(p->server, buf, sizeof buf);
    assert_int_equal(r, (ssize_t)strlen(text));
    assert_memory_equal(buf, text, strlen(text));
}

static void server_to_client(pair *p, const char *text)
{
    assert_int_equal(tls_write(p->server, text, strlen(text)), (ssize_t)strlen(text));
    char buf[256];
    int r = SSL_read(p->client, buf, sizeof buf);
    assert_int_equal(r, (int)strlen(text));
    assert_memory_equal(buf, text, strlen(text));
}

static long peer_serial(const pair *p)
{
    X509 *x = SSL_get1_peer_certificate(p->client);
    assert_non_null(x);
    long serial = ASN1_INTEGER_get(X509_get0_serialNumber(x));
    X509_free(x);
    return serial;
}

/* ---- Tests -------------------------------------------------------------------------------- */

static void test_handshake_alpn_and_data(void **state)
{
    (void)state;
    tls_ctx *t;
    assert_int_equal(tls_ctx_new(&t, cert_path, key_path), 0);
    pair p;
    pair_open(&p, t, 0);
    assert_int_equal(handshake(&p), TLS_AGAIN);
    assert_string_equal(SSL_get_version(p.client), "TLSv1.3");
    const unsigned char *proto;
    unsigned len;
    SSL_get0_alpn_selected(p.client, &proto, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(proto, "http/1.1", 8);
    client_to_server(&p, "GET /ws HTTP/1.1");
    server_to_client(&p, "HTTP/1.1 101");
    assert_false(tls_has_output(p.server));
    assert_int_equal(tls_flush(p.server), 0);
    /* The client's close_notify ends the stream cleanly. */
    SSL_shutdown(p.client);
    char buf[16];
    assert_int_equal(tls_read(p.server, buf, sizeof buf), TLS_CLOSED);
    pair_close(&p);
    tls_ctx_free(t);
}

static void test_plain_http_answered_400(void **state)
{
    (void)state;
    tls_ctx *t;
    assert_int_equal(tls_ctx_new(&t, cert_path, key_path), 0);
    pair p;
    pair_open(&p, t, 0);
    char buf[256];
    assert_int_equal(tls_read(p.server, buf, sizeof buf), TLS_AGAIN); /* nothing yet */
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(p.cfd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    assert_int_equal(tls_read(p.server, buf, sizeof buf), TLS_PLAIN);
    ssize_t n = read(p.cfd, buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 400 Bad Request\r\n"));
    assert_non_null(strstr(buf, "use https:// or wss://"));
    pair_close(&p);
    tls_ctx_free(t);
}

static void test_peer_gone_before_hello(void **state)
{
    (void)state;
    tls_ctx *t;
    assert_int_equal(tls_ctx_new(&t, cert_path, key_path), 0);
    pair p;
    pair_open(&p, t, 0);
    shutdown(p.cfd, SHUT_WR);
    char buf[16];
    assert_int_equal(tls_read(p.server, buf, sizeof buf), TLS_CLOSED);
    pair_close(&p);
    tls_ctx_free(t);
}

static void test_tls_1_1_refused(void **state)
{
    (void)state;
    tls_ctx *t;
    assert_int_equal(tls_ctx_new(&t, cert_path, key_path), 0);
    pair p;
    pair_open(&p, t, TLS1_1_VERSION);
    assert_int_equal(handshake(&p), TLS_ERROR);
    assert_non_null(strstr(tls_error(p.server), "protocol"));
    pair_close(&p);
    ERR_clear_error();
    tls_ctx_free(t);
}

/* The socket full: the records wait (tls_has_output), then go out in order. */
static void test_output_kept_while_the_socket_is_full(void **state)
{
    (void)state;
    tls_ctx *t;
    assert_int_equal(tls_ctx_new(&t, cert_path, key_path), 0);
    pair p;
    pair_open(&p, t, 0);
    int small = 4096;
    setsockopt(p.sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    assert_int_equal(handshake(&p), TLS_AGAIN);
    static uint8_t chunk[TLS_RECORD_MAX];
    size_t sent = 0;
    for (int i = 0; i < 64 && !tls_has_output(p.server); i++) {
        for (size_t k = 0; k < sizeof chunk; k++) {
            chunk[k] = (uint8_t)(sent + k);
        }
        assert_int_equal(tls_write(p.server, chunk, sizeof chunk), (ssize_t)sizeof chunk);
        sent += sizeof chunk;
    }
    assert_true(tls_has_output(p.server));
    assert_int_equal(tls_flush(p.server), TLS_AGAIN);
    size_t got = 0;
    static uint8_t buf[TLS_RECORD_MAX];
    for (int spins = 0; got < sent && spins < 100000; spins++) {
        int r = SSL_read(p.client, buf, sizeof buf);
        if (r > 0) {
            for (int k = 0; k < r; k++) {
                assert_int_equal(buf[k], (uint8_t)(got + (size_t)k));
            }
            got += (size_t)r;
        }
        (void)tls_flush(p.server);
    }
    assert_int_equal(got, sent);
    assert_false(tls_has_output(p.server));
    pair_close(&p);
    tls_ctx_free(t);
}

/* Records read ahead, or a record read in part, wait inside OpenSSL. */
static void test_pending_input(void **state)
{
    (void)state;
    tls_ctx *t;
    assert_int_equal(tls_ctx_new(&t, cert_path, key_path), 0);
    pair p;
    pair_open(&p, t, 0);
    assert_int_equal(handshake(&p), TLS_AGAIN);
    assert_int_equal(SSL_write(p.client, "one record", 10), 10);
    assert_int_equal(SSL_write(p.client, "and another", 11), 11);
    char buf[4];
    assert_int_equal(tls_read(p.server, buf, sizeof buf), 4);
    assert_true(tls_has_pending(p.server));
    char rest[64];
    assert_int_equal(tls_read(p.server, rest, sizeof rest), 6);
    assert_int_equal(tls_read(p.server, rest, sizeof rest), 11);
    assert_false(tls_has_pending(p.server));
    assert_int_equal(tls_read(p.server, rest, sizeof rest), TLS_AGAIN);
    pair_close(&p);
    tls_ctx_free(t);
}

static void test_reload_swaps_for_new_connections(void **state)
{
    (void)state;
    tls_ctx *t;
    write_cert(1);
    assert_int_equal(tls_ctx_new(&t, cert_path, key_path), 0);
    char what[TLS_DESCRIBE_MAX];
    tls_describe(t, what, sizeof what);
    assert_non_null(strstr(what, "serial 01"));
    pair old;
    pair_open(&old, t, 0);
    assert_int_equal(handshake(&old), TLS_AGAIN);
    assert_int_equal(peer_serial(&old), 1);

    write_cert(2);
    assert_int_equal(tls_reload(t), 0);
    tls_describe(t, what, sizeof what);
    assert_non_null(strstr(what, "serial 02"));
    pair fresh;
    pair_open(&fresh, t, 0);
    assert_int_equal(handshake(&fresh), TLS_AGAIN);
    assert_int_equal(peer_serial(&fresh), 2);
    client_to_server(&old, "old still talks");
    server_to_client(&old, "and hears");

    /* A broken file: the certificate in use stays. */
    FILE *f = fopen(cert_path, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    assert_int_equal(tls_reload(t), -1);
    pair third;
    pair_open(&third, t, 0);
    assert_int_equal(handshake(&third), TLS_AGAIN);
    assert_int_equal(peer_serial(&third), 2);

    pair_close(&old);
    pair_close(&fresh);
    pair_close(&third);
    tls_ctx_free(t);
    write_cert(1);
}

static void test_bad_files(void **state)
{
    (void)state;
    tls_ctx *t = NULL;
    char missing[160], other_cert[160], other_key[160];
    path_in_dir(missing, sizeof missing, "missing.pem");
    path_in_dir(other_cert, sizeof other_cert, "other.pem");
    path_in_dir(other_key, sizeof other_key, "other.key");
    assert_int_equal(tls_ctx_new(&t, missing, key_path), -1);
    assert_int_equal(tls_ctx_new(&t, cert_path, missing), -1);
    assert_int_equal(tls_ctx_new(&t, key_path, key_path), -1); /* a key is no certificate */
    write_cert_to(other_cert, other_key, 3);
    assert_int_equal(tls_ctx_new(&t, cert_path, other_key), -1); /* not its key */
    assert_int_equal(tls_ctx_new(&t, other_cert, other_key), 0);
    tls_ctx_free(t);
    unlink(other_cert);
    unlink(other_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_alpn_and_data),
        cmocka_unit_test(test_plain_http_answered_400),
        cmocka_unit_test(test_peer_gone_before_hello),
        cmocka_unit_test(test_tls_1_1_refused),
        cmocka_unit_test(test_output_kept_while_the_socket_is_full),
        cmocka_unit_test(test_pending_input),
        cmocka_unit_test(test_reload_swaps_for_new_connections),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
