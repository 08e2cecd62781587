/* Incremental, fail-fast UTF-8 validation (RFC 3629: no overlongs, surrogates, or > U+10FFFF). */
#ifndef WSFWD_LIB_UTF8_H
#define WSFWD_LIB_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define WSFWD_UTF8_ACCEPT 0u /* at a character boundary */
#define WSFWD_UTF8_REJECT 1u /* invalid; sticky */

/*
 * Continue validating from state over len bytes and return the new state: ACCEPT at a
 * character boundary, REJECT as soon as a byte makes the text invalid (the rest is not read),
 * any other value inside a character. A message is valid if the final state is ACCEPT.
 */
uint32_t wsfwd_utf8_step(uint32_t state, const uint8_t *s, size_t len);

/* True if the whole of s is valid UTF-8. */
int wsfwd_utf8_valid(const uint8_t *s, size_t len);

#endif
