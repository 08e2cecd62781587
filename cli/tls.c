/*
 * Built-in TLS (OpenSSL 3): owns the SSL_CTX of the TLS listeners and each TLS connection's
 * SSL. A connection's handshake runs inside its first tls_read calls on the non-blocking
 * socket: OpenSSL reads the socket, and writes its records into a memory BIO that tls_flush
 * writes to the socket in one write(2). Nothing here blocks, and nothing outside this file
 * includes an OpenSSL header.
 */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"

#define TLS_HANDSHAKE_RECORD 0x16 /* the first byte of a ClientHello's record */
#define TLS_ERR_MAX 120
#define TLS_BIO_KEEP 1024 /* a drained write BIO holding more memory is replaced */

struct tls_ctx {
    SSL_CTX *ctx; /* for new connections; open ones hold a reference to theirs */
    const char *cert_file;
    const char *key_file;
};

/* OpenSSL reads the socket itself, but writes into a memory BIO (wbio) that tls_flush writes
   to the socket: every record a turn makes leaves in one write(2), and SSL_write never has to
   be retried with the same bytes. */
struct tls_conn {
    SSL *ssl;
    BIO *wbio; /* ciphertext not yet on the socket (owned by ssl) */
    int fd;
    bool checked; /* the first byte was seen to start a TLS record */
    char err[TLS_ERR_MAX];
};

static const char PLAIN_ANSWER[] = "HTTP/1.1 400 Bad Request\r\n"
                                   "Content-Type: text/plain\r\n"
                                   "Content-Length: 45\r\n"
                                   "Connection: close\r\n"
                                   "\r\n"
                                   "This port speaks TLS: use https:// or wss://\n";

/* ALPN: http/1.1 when the client offers it (the WebSocket handshake is HTTP/1.1); a client
   offering only other protocols goes on without ALPN. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof ours - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* why gets "WHAT FILE: OpenSSL's reason". */
static void openssl_error(char *why, size_t cap, const char *what, const char *file)
{
    char buf[TLS_ERR_MAX];
    ERR_error_string_n(ERR_peek_error(), buf, sizeof buf); /* the first: the most precise */
    ERR_clear_error();
    snprintf(why, cap, "%s %s: %s", what, file, buf);
}

/* Whether path can be read; why gets "FLAG PATH: the system's reason" when not. */
static bool readable(const char *path, const char *flag, char *why, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(why, cap, "%s %s: %s", flag, path, strerror(errno));
        return false;
    }
    fclose(f);
    return true;
}

/* A new SSL_CTX with the files' chain and key, or NULL with why. */
static SSL_CTX *load_ctx(const char *cert_file, const char *key_file, char *why, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        openssl_error(why, cap, "cannot set up", "TLS");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Idle connections give their record buffers back; a read takes what the socket has,
       not one record's header then its body (tls_has_pending covers what it holds). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    if (!readable(cert_file, "--tls-cert", why, cap) ||
        !readable(key_file, "--tls-key", why, cap)) {
        /* why says which */
    } else if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        openssl_error(why, cap, "--tls-cert", cert_file);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        openssl_error(why, cap, "--tls-key", key_file);
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        openssl_error(why, cap, "--tls-key does not match --tls-cert", cert_file);
    } else {
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}

/* "subject ..., serial ..." of the context's certificate, for the log. */
void tls_describe(const tls_ctx *t, char *out, size_t cap)
{
    X509 *cert = SSL_CTX_get0_certificate(t->ctx);
    char subject[160] = "?";
    char serial[80] = "?";
    if (cert != NULL) {
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
        if (hex != NULL) {
            snprintf(serial, sizeof serial, "%s", hex);
        }
        OPENSSL_free(hex);
        BN_free(bn);
    }
    snprintf(out, cap, "subject %s, serial %s", subject, serial);
}

int tls_ctx_new(tls_ctx **out, const char *cert_file, const char *key_file)
{
    tls_ctx *t = calloc(1, sizeof *t);
    if (t == NULL) {
        fprintf(stderr, "wsfwd: out of memory\n");
        return -1;
    }
    t->cert_file = cert_file;
    t->key_file = key_file;
    char why[TLS_ERR_MAX + 256];
    t->ctx = load_ctx(cert_file, key_file, why, sizeof why);
    if (t->ctx == NULL) {
        fprintf(stderr, "wsfwd: %s\n", why);
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int tls_reload(tls_ctx *t)
{
    char why[TLS_ERR_MAX + 256];
    SSL_CTX *ctx = load_ctx(t->cert_file, t->key_file, why, sizeof why);
    if (ctx == NULL) {
        LOG(LOG_WARN, "TLS: %s; the previous certificate stays", why);
        return -1;
    }
    SSL_CTX_free(t->ctx); /* open connections hold their own reference */
    t->ctx = ctx;
    char what[TLS_DESCRIBE_MAX];
    tls_describe(t, what, sizeof what);
    LOG(LOG_INFO, "TLS certificate reloaded: %s", what);
    return 0;
}

void tls_ctx_free(tls_ctx *t)
{
    if (t != NULL) {
        SSL_CTX_free(t->ctx);
        free(t);
    }
}

tls_conn *tls_conn_new(tls_ctx *t, int fd)
{
    tls_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    c->ssl = SSL_new(t->ctx);
    BIO *rbio = BIO_new_socket(fd, BIO_NOCLOSE);
    c->wbio = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || rbio == NULL || c->wbio == NULL) {
        BIO_free(rbio);
        BIO_free(c->wbio);
        SSL_free(c->ssl);
        free(c);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_bio(c->ssl, rbio, c->wbio); /* ssl owns both from here */
    SSL_set_accept_state(c->ssl);
    c->fd = fd;
    return c;
}

void tls_conn_free(tls_conn *c)
{
    if (c != NULL) {
        SSL_free(c->ssl);
        free(c);
    }
}

/* The first byte must open a TLS handshake record. Plain HTTP gets a 400 saying so: what it
   sent is read first, so that closing the socket sends FIN rather than RST. */
static ssize_t check_first_byte(tls_conn *c)
{
    unsigned char b;
    ssize_t r = recv(c->fd, &b, 1, MSG_PEEK);
    if (r == 0) {
        return TLS_CLOSED;
    }
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return TLS_AGAIN;
        }
        snprintf(c->err, sizeof c->err, "%s", strerror(errno));
        return TLS_ERROR;
    }
    if (b != TLS_HANDSHAKE_RECORD) {
        char sink[4096];
        (void)!read(c->fd, sink, sizeof sink);
        (void)!write(c->fd, PLAIN_ANSWER, sizeof PLAIN_ANSWER - 1);
        return TLS_PLAIN;
    }
    c->checked = true;
    return 0;
}

/* Map an SSL_read or SSL_write failure (only reads wait, for the socket to be readable:
   writes go to the memory BIO). */
static ssize_t failure(tls_conn *c, int ret)
{
    int e = SSL_get_error(c->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ: return TLS_AGAIN;
    case SSL_ERROR_ZERO_RETURN: return TLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        if (errno == 0 || errno == ECONNRESET) {
            ERR_clear_error();
            return TLS_CLOSED;
        }
        snprintf(c->err, sizeof c->err, "%s", strerror(errno));
        break;
    default: ERR_error_string_n(ERR_peek_last_error(), c->err, sizeof c->err); break;
    }
    ERR_clear_error();
    return TLS_ERROR;
}

int tls_flush(tls_conn *c)
{
    char *data;
    long len = BIO_get_mem_data(c->wbio, &data);
    if (len <= 0) {
        return 0;
    }
    ssize_t w;
    do {
        w = write(c->fd, data, (size_t)len);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return TLS_AGAIN;
        }
        snprintf(c->err, sizeof c->err, "%s", strerror(errno));
        return TLS_ERROR;
    }
    if (w == len) {
        /* All out: a fresh BIO, so a burst's buffer (the handshake's flight, at least) is not
           kept by an idle connection. */
        BUF_MEM *mem = NULL;
        BIO_get_mem_ptr(c->wbio, &mem);
        BIO *fresh = mem != NULL && mem->max > TLS_BIO_KEEP ? BIO_new(BIO_s_mem()) : NULL;
        if (fresh != NULL) {
            SSL_set0_wbio(c->ssl, fresh); /* frees the old one */
            c->wbio = fresh;
        } else {
            (void)BIO_reset(c->wbio);
        }
        return 0;
    }
    char sink[4096]; /* drop what went out */
    for (ssize_t left = w; left > 0;) {
        int n = BIO_read(c->wbio, sink, left > (ssize_t)sizeof sink ? (int)sizeof sink : (int)left);
        if (n <= 0) {
            break;
        }
        left -= n;
    }
    return TLS_AGAIN;
}

bool tls_has_output(const tls_conn *c)
{
    return BIO_ctrl_pending(c->wbio) > 0;
}

size_t tls_output_bytes(const tls_conn *c)
{
    return BIO_ctrl_pending(c->wbio);
}

ssize_t tls_read(tls_conn *c, void *buf, size_t cap)
{
    if (!c->checked) {
        ssize_t r = check_first_byte(c);
        if (r != 0) {
            return r;
        }
    }
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(c->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    ssize_t rc = n > 0 ? n : failure(c, n);
    /* What the read made OpenSSL say (handshake flights, tickets, an alert) goes out now; if
       the socket is full, tls_has_output says so. */
    if (tls_flush(c) == TLS_ERROR && rc >= 0) {
        rc = TLS_ERROR;
    }
    return rc;
}

ssize_t tls_write(tls_conn *c, const void *buf, size_t len)
{
    ERR_clear_error();
    errno = 0;
    int n = SSL_write(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n <= 0) {
        (void)failure(c, n); /* into a memory BIO: only an error fails */
        return TLS_ERROR;
    }
    int f = tls_flush(c);
    return f == TLS_ERROR ? TLS_ERROR : n;
}

bool tls_has_pending(const tls_conn *c)
{
    return SSL_has_pending(c->ssl) == 1; /* decrypted, or read ahead and not yet decrypted */
}

void tls_shutdown(tls_conn *c)
{
    if (SSL_is_init_finished(c->ssl)) {
        ERR_clear_error();
        (void)SSL_shutdown(c->ssl);
        ERR_clear_error();
        (void)tls_flush(c);
    }
}

const char *tls_error(const tls_conn *c)
{
    return c->err[0] != '\0' ? c->err : "TLS error";
}
