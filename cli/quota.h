/*
 * Limits per connection and per client address, both off unless a flag sets them: a token
 * bucket of messages per connection, and a count of WebSocket connections per address. Pure
 * bookkeeping with no sockets and no clock (the caller passes the time), so it is unit-tested
 * on its own (tests/unit/test_quota.c).
 */
#ifndef WSFWD_CLI_QUOTA_H
#define WSFWD_CLI_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "table.h" /* lib/: the library's internal keyed table */

#define RATE_MAX 1000000u /* largest rate (messages per second) and burst */

/* The rule: per_second messages a second on average, up to burst at once. 0: no limit. */
typedef struct rate_rule {
    uint32_t per_second;
    uint32_t burst;
} rate_rule;

/* One connection's bucket: thousandths of a message, as of a time in milliseconds. */
typedef struct rate_bucket {
    uint32_t at;
    uint32_t level;
} rate_bucket;

/* A full bucket (a new connection may send burst messages at once). */
void rate_bucket_fill(rate_bucket *b, const rate_rule *r, uint32_t now_ms);

/*
 * Take one message at now_ms (milliseconds on a clock that may wrap at 32 bits). Returns false
 * when the bucket holds less than one message: the caller refuses the message.
 */
bool rate_bucket_take(rate_bucket *b, const rate_rule *r, uint32_t now_ms);

/*
 * Connections per client address. Addresses are 16 bytes: IPv6 as is, IPv4 as the IPv4-mapped
 * IPv6 address (so a client counts once whether it came through an IPv4 or an IPv6 listener).
 * The table is keyed with a secret hash, so a client choosing its addresses cannot make the
 * lookups slow; it holds only addresses with at least one connection.
 */
typedef wsfwd_table addr_table; /* entries: an address and its count (quota.c) */

/* The 16-byte form of an address: in[0..4) for IPv4, in[0..16) for IPv6. */
void addr_normalise(uint8_t out[16], const uint8_t *in, bool ipv6);

/* Whether a 16-byte form is an IPv4 address (IPv4-mapped: the IPv4 one is its last 4 bytes). */
bool addr_is_ipv4(const uint8_t addr[16]);

/* An empty table with a fresh random key. Returns 0, or -1 when no randomness is to be had. */
int addr_table_init(addr_table *t);
void addr_table_free(addr_table *t);

/* Connections counted for addr (0 if none). */
uint32_t addr_table_count(const addr_table *t, const uint8_t addr[16]);

/* Count one more connection for addr. Returns 0, or -1 out of memory (nothing counted). */
int addr_table_add(addr_table *t, const uint8_t addr[16]);

/* Count one fewer (the address leaves the table at 0). An address not counted is ignored. */
void addr_table_remove(addr_table *t, const uint8_t addr[16]);

#endif
