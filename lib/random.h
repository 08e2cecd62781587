/*
 * Random bytes from the operating system: the library's default randomness source
 * (wsfwd_config_new) and the server's hash keys. Internal: not exported from the shared
 * library. No state; safe from any thread.
 */
#ifndef WSFWD_LIB_RANDOM_H
#define WSFWD_LIB_RANDOM_H

#include <stddef.h>

/* Do not wait for the kernel's pool to be initialised (early boot): fail instead. */
#define WSFWD_RANDOM_NONBLOCK 1u

/*
 * Fill buf with len bytes from getrandom() (Linux; retried on EINTR and short reads) or
 * arc4random_buf() (elsewhere; never fails, and flags are ignored). flags: 0 or
 * WSFWD_RANDOM_NONBLOCK. Returns 0, or -1 with errno set (buf partly written).
 */
int wsfwd_random_bytes(void *buf, size_t len, unsigned flags);

#endif
