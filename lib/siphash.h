/*
 * SipHash (Aumasson and Bernstein, 2012): the keyed hash of the library's and the server's
 * hash tables, whose keys come from the network. Internal: not exported from the shared
 * library. Pure: no state, safe from any thread.
 */
#ifndef WSFWD_LIB_SIPHASH_H
#define WSFWD_LIB_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * SipHash-c-d of len bytes at data under the key (k0, k1). The tables use c=1, d=3
 * (SipHash-1-3); c=2, d=4 is the reference SipHash-2-4. data may be NULL when len is 0.
 */
uint64_t wsfwd_siphash(const uint64_t key[2], const void *data, size_t len, unsigned c, unsigned d);

/* The 128-bit key as SipHash's reference code reads it: two little-endian words. */
void wsfwd_siphash_key(uint64_t key[2], const uint8_t bytes[16]);

#endif
