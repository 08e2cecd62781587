/*
 * The client's address behind a trusted proxy: address prefixes (--trust-proxy 10.0.0.0/8) and
 * the X-Forwarded-For header, walked right to left as nginx's real_ip_recursive does. Pure
 * functions on bytes, no sockets and no state: unit-tested (tests/unit/test_forwarded.c) and
 * fuzzed (tests/fuzz/fuzz_forwarded.c).
 *
 * Addresses are in the 16-byte form of quota.h: IPv6 as is, IPv4 as the IPv4-mapped IPv6
 * address (::ffff:a.b.c.d), so that an IPv4 prefix matches an IPv4 peer whichever listener it
 * came through.
 */
#ifndef WSFWD_CLI_FORWARDED_H
#define WSFWD_CLI_FORWARDED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRUST_PROXY_MAX 16 /* most --trust-proxy values */

/* An address and how many of its leading bits count (0 to 128; an IPv4 /N is 96 + N). */
typedef struct addr_prefix {
    uint8_t addr[16];
    uint8_t bits;
} addr_prefix;

/*
 * Parse "ADDR" or "ADDR/LEN" (len bytes of s; ADDR IPv4 or IPv6, LEN 0-32 or 0-128). A bare
 * address is a prefix of every bit. Returns NULL, or why the text is not a prefix (bits set
 * past LEN are refused: 10.0.0.1/8 is more likely a typo than 10.0.0.0/8).
 */
const char *addr_prefix_parse(const char *s, size_t len, addr_prefix *out);

/* Whether addr (16-byte form) is within p. */
bool addr_prefix_match(const addr_prefix *p, const uint8_t addr[16]);

/* Whether addr is within any of the n prefixes. */
bool addr_prefix_any(const addr_prefix *list, size_t n, const uint8_t addr[16]);

/*
 * One address as proxies write it in X-Forwarded-For (len bytes, no spaces): "1.2.3.4",
 * "1.2.3.4:5678", "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:5678" (a port is dropped).
 * Returns 0 with out set, or -1.
 */
int forwarded_addr_parse(const char *s, size_t len, uint8_t out[16]);

typedef enum forwarded_result {
    FORWARDED_NONE,      /* an empty value: no address given */
    FORWARDED_FOUND,     /* out holds the client's address */
    FORWARDED_MALFORMED, /* an element that had to be read is not an address */
} forwarded_result;

/*
 * The client's address from an X-Forwarded-For value (len bytes: a comma-separated list, the
 * client first, each proxy appending the address it got the request from). Walking from the
 * right, the first address that is not within the trusted prefixes is the client's; if every
 * address is trusted, the left-most one. Empty elements are skipped; elements left of the
 * client's are not read (a client may put anything there). A malformed element reached before
 * the client's is FORWARDED_MALFORMED: the caller keeps the TCP peer's address.
 */
forwarded_result forwarded_client(const char *value, size_t len, const addr_prefix *trusted,
                                  size_t ntrusted, uint8_t out[16]);

#endif
