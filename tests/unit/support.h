/*
 * The unit tests' shared harness: an allocator that counts and fails on demand, a failing
 * randomness source, cut points for feeding input in every split, feeding a connection a copy,
 * draining its output, frame builders, and guard-page buffers that make a parser fault when it
 * reads one byte past its input. Include after <cmocka.h>: the helpers assert with it.
 */
#ifndef WSFWD_TEST_SUPPORT_H
#define WSFWD_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsfwd.h"

/* ---- Allocator ------------------------------------------------------------------------- */

/* Counts what goes through it; fails when told. Set up with test_alloc_init. */
typedef struct test_alloc {
    long budget;       /* allocations left before every one fails; negative: never fail */
    long fail_at;      /* the one call (1-based, counting calls) that fails; 0: none */
    long calls;        /* malloc and realloc calls, the refused ones included */
    long allocs;       /* calls that succeeded */
    long failed;       /* calls refused */
    long live;         /* blocks allocated and not freed */
    size_t live_bytes; /* bytes in those blocks */
    size_t peak_bytes; /* the most live_bytes has been */
    size_t largest;    /* the largest size asked for */
} test_alloc;

/* Zero counts, never fail. */
void test_alloc_init(test_alloc *a);
/* The wsfwd_allocator hooks that use a. */
wsfwd_allocator test_alloc_hooks(test_alloc *a);

/* ---- Randomness ------------------------------------------------------------------------ */

/* A wsfwd_random_fn that always fails. */
int test_failing_random(void *buf, size_t len, void *ud);

/* ---- Every split ----------------------------------------------------------------------- */

/* Called with sorted cut points (may repeat) splitting an input into ncuts + 1 pieces. */
typedef void (*test_cuts_fn)(const size_t *cuts, size_t ncuts, void *ud);

/* fn once for each single cut 0..n. */
void test_each_cut(size_t n, test_cuts_fn fn, void *ud);
/* fn once for each pair of cuts a <= c, a from 0 by step_a, c from a by step_c (both <= n). */
void test_each_cut_pair(size_t n, size_t step_a, size_t step_c, test_cuts_fn fn, void *ud);
/* fn once with n - 1 cuts: one byte at a time. */
void test_bytewise(size_t n, test_cuts_fn fn, void *ud);

/* ---- Connections ----------------------------------------------------------------------- */

/* Feed a copy of the bytes (feeding unmasks in place). */
int test_feed(wsfwd_conn *c, const uint8_t *data, size_t len);
/* Feed in pieces at the cut points; returns the last result other than WSFWD_OK, or OK. */
int test_feed_cuts(wsfwd_conn *c, const uint8_t *data, size_t len, const size_t *cuts,
                   size_t ncuts);
/* Take every pending byte of a connection's output into out (output then consume, as a
 * writev that takes everything); asserts it fits and nothing is left pending. */
size_t test_drain(wsfwd_conn *c, uint8_t *out, size_t cap);

/* ---- Frames ---------------------------------------------------------------------------- */

/* The mask test_client_frame uses (RFC 6455's example). */
extern const uint8_t TEST_MASK[4];

/* Append one frame to buf; masked with mask unless it is NULL. Returns the bytes written. */
size_t test_frame(uint8_t *buf, bool fin, int op, const void *payload, size_t len,
                  const uint8_t mask[4]);
/* A frame as a client sends it (masked with TEST_MASK) or as a server does (unmasked). */
size_t test_client_frame(uint8_t *buf, bool fin, int op, const void *payload, size_t len);
size_t test_server_frame(uint8_t *buf, bool fin, int op, const void *payload, size_t len);
/* One message as fragments of at most piece bytes (one empty frame if len is 0). */
size_t test_fragments(uint8_t *buf, int op, const void *payload, size_t len, size_t piece,
                      const uint8_t mask[4]);
/* A close frame: code 0 for none, then the reason. */
size_t test_close_frame(uint8_t *buf, unsigned code, const char *reason, const uint8_t mask[4]);

/* ---- Guard pages ----------------------------------------------------------------------- */

/* A writable copy of len bytes placed at the end of a fresh mapping, right before a page that
 * cannot be read: reading one byte past the copy faults. Free with test_guard_free. */
uint8_t *test_guard_new(const void *data, size_t len);
void test_guard_free(uint8_t *copy, size_t len);
/* The same, kept until TEST_GUARD_SLOTS later calls (then unmapped): for one-shot calls. */
enum { TEST_GUARD_SLOTS = 8 };
const uint8_t *test_guarded(const void *data, size_t len);
/* test_guarded for a string, without its NUL. */
const char *test_guarded_str(const char *s);

#endif
