/* The one getrandom() loop: random bytes from the operating system (see random.h). */
#define _DEFAULT_SOURCE /* getrandom() or arc4random_buf() */

#include "random.h"

#include <errno.h>
#include <stdint.h>

#if defined(__linux__)
#include <sys/random.h>
#else
#include <stdlib.h>
#endif

int wsfwd_random_bytes(void *buf, size_t len, unsigned flags)
{
#if defined(__linux__)
    uint8_t *p = buf;
    unsigned grnd = (flags & WSFWD_RANDOM_NONBLOCK) != 0 ? GRND_NONBLOCK : 0;
    while (len > 0) {
        ssize_t n = getrandom(p, len, grnd);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
#else
    (void)flags;
    arc4random_buf(buf, len);
    return 0;
#endif
}
