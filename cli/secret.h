/*
 * Secrets read from files: --auth-secret-file (auth.c) and --redis-password-file (cluster.c).
 * A secret is the file's bytes without one final newline ("\n" or "\r\n"), between a least
 * and a most number of bytes. The reader opens with O_CLOEXEC, reads at most a bound, and
 * says what is wrong in one line; the caller may word the size errors its own way.
 */
#ifndef WSFWD_CLI_SECRET_H
#define WSFWD_CLI_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/* The buffer secret_read needs for a secret of at most max bytes: the secret, a "\r\n", and
   one byte more to tell a file that is too long. */
#define SECRET_BUF_SIZE(max) ((max) + 3)

typedef struct secret_rules {
    const char *what; /* for the error text: "auth secret file", "Redis password file" */
    size_t min;       /* the fewest bytes, 0 or more */
    size_t max;       /* the most bytes */
    bool regular;     /* refuse what is not a regular file (a directory, a FIFO, a device) */
    bool no_nul;      /* refuse a secret holding a NUL byte (one used as a C string) */
} secret_rules;

typedef enum secret_status {
    SECRET_OK,
    SECRET_OPEN,        /* cannot open the file (the reason is errno's) */
    SECRET_NOT_REGULAR, /* not a regular file (rules->regular) */
    SECRET_READ,        /* a read failed (errno's reason) */
    SECRET_TOO_LONG,    /* over rules->max bytes */
    SECRET_TOO_SHORT,   /* under rules->min bytes */
    SECRET_NUL,         /* holds a NUL byte (rules->no_nul) */
} secret_status;

/*
 * Read the secret in the file at path into buf (SECRET_BUF_SIZE(rules->max) bytes): *len
 * bytes, followed by a NUL. Returns SECRET_OK, or the problem with a one-line reason in err
 * naming rules->what and path ("cannot open the auth secret file k.txt: No such file or
 * directory"). On failure buf is wiped, and *len is the secret's length if the file was read
 * (for the caller's own wording of SECRET_TOO_SHORT or SECRET_NUL; over max for
 * SECRET_TOO_LONG), else 0.
 */
secret_status secret_read(const char *path, const secret_rules *rules, char *buf, size_t *len,
                          char *err, size_t err_cap);

/* Overwrite n bytes with zeros in a way the compiler keeps: for secrets about to be freed. */
void secret_wipe(void *p, size_t n);

#endif
