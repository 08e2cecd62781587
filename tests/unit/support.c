/*
 * The unit tests' shared harness (see support.h): owns the counting allocator's block headers,
 * the guard-page mappings and the ring that keeps test_guarded copies alive.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "support.h"

/* ---- Allocator ------------------------------------------------------------------------- */

/* Each block carries its size in front, so live bytes can be counted. */
typedef union block_head {
    size_t size;
    max_align_t align;
} block_head;

void test_alloc_init(test_alloc *a)
{
    memset(a, 0, sizeof *a);
    a->budget = -1;
}

/* Count a call; true if it is to fail. */
static bool alloc_refuses(test_alloc *a, size_t size)
{
    a->calls++;
    a->largest = size > a->largest ? size : a->largest;
    if (a->budget == 0 || a->calls == a->fail_at) {
        a->failed++;
        return true;
    }
    if (a->budget > 0) {
        a->budget--;
    }
    return false;
}

static void alloc_add(test_alloc *a, size_t size)
{
    a->live_bytes += size;
    a->peak_bytes = a->live_bytes > a->peak_bytes ? a->live_bytes : a->peak_bytes;
}

static void *ta_malloc(size_t size, void *ud)
{
    test_alloc *a = ud;
    if (alloc_refuses(a, size) || size > SIZE_MAX - sizeof(block_head)) {
        return NULL;
    }
    block_head *h = malloc(sizeof *h + size);
    if (h == NULL) {
        return NULL;
    }
    h->size = size;
    a->allocs++;
    a->live++;
    alloc_add(a, size);
    return h + 1;
}

static void *ta_realloc(void *ptr, size_t size, void *ud)
{
    test_alloc *a = ud;
    if (alloc_refuses(a, size) || size > SIZE_MAX - sizeof(block_head)) {
        return NULL;
    }
    block_head *old = ptr != NULL ? (block_head *)ptr - 1 : NULL;
    size_t old_size = old != NULL ? old->size : 0;
    block_head *h = realloc(old, sizeof *h + size);
    if (h == NULL) {
        return NULL;
    }
    h->size = size;
    a->allocs++;
    if (old == NULL) {
        a->live++;
    }
    a->live_bytes -= old_size;
    alloc_add(a, size);
    return h + 1;
}

static void ta_free(void *ptr, void *ud)
{
    test_alloc *a = ud;
    if (ptr == NULL) {
        return;
    }
    block_head *h = (block_head *)ptr - 1;
    a->live--;
    a->live_bytes -= h->size;
    free(h);
}

wsfwd_allocator test_alloc_hooks(test_alloc *a)
{
    wsfwd_allocator hooks = {ta_malloc, ta_realloc, ta_free, a};
    return hooks;
}

/* ---- Randomness ------------------------------------------------------------------------ */

int test_failing_random(void *buf, size_t len, void *ud)
{
    (void)buf;
    (void)len;
    (void)ud;
    return -1;
}

/* ---- Every split ----------------------------------------------------------------------- */

void test_each_cut(size_t n, test_cuts_fn fn, void *ud)
{
    for (size_t cut = 0; cut <= n; cut++) {
        fn(&cut, 1, ud);
    }
}

void test_each_cut_pair(size_t n, size_t step_a, size_t step_c, test_cuts_fn fn, void *ud)
{
    for (size_t a = 0; a <= n; a += step_a) {
        for (size_t c = a; c <= n; c += step_c) {
            size_t cuts[2] = {a, c};
            fn(cuts, 2, ud);
        }
    }
}

void test_bytewise(size_t n, test_cuts_fn fn, void *ud)
{
    size_t *cuts = malloc((n > 0 ? n : 1) * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i + 1 < n; i++) {
        cuts[i] = i + 1;
    }
    fn(cuts, n > 0 ? n - 1 : 0, ud);
    free(cuts);
}

/* ---- Connections ----------------------------------------------------------------------- */

int test_feed(wsfwd_conn *c, const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len + 1);
    assert_non_null(copy);
    if (len > 0) {
        memcpy(copy, data, len);
    }
    int rc = wsfwd_conn_feed(c, copy, len);
    free(copy);
    return rc;
}

int test_feed_cuts(wsfwd_conn *c, const uint8_t *data, size_t len, const size_t *cuts, size_t ncuts)
{
    size_t start = 0;
    int last = WSFWD_OK;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        int rc = test_feed(c, data + start, end - start);
        if (rc != WSFWD_OK) {
            last = rc;
        }
        start = end;
    }
    return last;
}

size_t test_drain(wsfwd_conn *c, uint8_t *out, size_t cap)
{
    size_t total = 0;
    for (;;) {
        wsfwd_iovec iov[8];
        size_t n = wsfwd_conn_output(c, iov, 8);
        if (n == 0) {
            break;
        }
        size_t got = 0;
        for (size_t i = 0; i < n; i++) {
            assert_true(total + iov[i].len <= cap);
            memcpy(out + total, iov[i].base, iov[i].len);
            total += iov[i].len;
            got += iov[i].len;
        }
        wsfwd_conn_consume(c, got);
    }
    assert_int_equal(wsfwd_conn_pending(c), 0);
    return total;
}

/* ---- Frames ---------------------------------------------------------------------------- */

const uint8_t TEST_MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

size_t test_frame(uint8_t *buf, bool fin, int op, const void *payload, size_t len,
                  const uint8_t mask[4])
{
    size_t n = wsfwd_frame_encode_header(buf, fin, (wsfwd_opcode)op, len, mask);
    if (len > 0) {
        memcpy(buf + n, payload, len);
        if (mask != NULL) {
            wsfwd_frame_mask(buf + n, len, mask, 0);
        }
    }
    return n + len;
}

size_t test_client_frame(uint8_t *buf, bool fin, int op, const void *payload, size_t len)
{
    return test_frame(buf, fin, op, payload, len, TEST_MASK);
}

size_t test_server_frame(uint8_t *buf, bool fin, int op, const void *payload, size_t len)
{
    return test_frame(buf, fin, op, payload, len, NULL);
}

size_t test_fragments(uint8_t *buf, int op, const void *payload, size_t len, size_t piece,
                      const uint8_t mask[4])
{
    const uint8_t *p = payload;
    size_t n = 0, off = 0;
    do {
        size_t k = len - off < piece ? len - off : piece;
        int fop = off == 0 ? op : WSFWD_OP_CONTINUATION;
        n += test_frame(buf + n, off + k == len, fop, p + off, k, mask);
        off += k;
    } while (off < len);
    return n;
}

size_t test_close_frame(uint8_t *buf, unsigned code, const char *reason, const uint8_t mask[4])
{
    uint8_t payload[125];
    size_t len = 0;
    if (code != 0) {
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        len = 2;
        size_t r = reason != NULL ? strlen(reason) : 0;
        assert_true(r <= sizeof payload - 2);
        memcpy(payload + 2, reason != NULL ? reason : "", r);
        len += r;
    }
    return test_frame(buf, true, WSFWD_OP_CLOSE, payload, len, mask);
}

/* ---- Guard pages ----------------------------------------------------------------------- */

static size_t page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    assert_true(ps > 0);
    return (size_t)ps;
}

/* The bytes mapped for a copy of len: whole pages for the data, then the guard page. */
static size_t data_pages(size_t len, size_t ps)
{
    return len == 0 ? 0 : (len + ps - 1) / ps * ps;
}

uint8_t *test_guard_new(const void *data, size_t len)
{
    size_t ps = page_size();
    size_t span = data_pages(len, ps);
    void *map = mmap(NULL, span + ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(map != MAP_FAILED);
    uint8_t *guard = (uint8_t *)map + span;
    assert_int_equal(mprotect(guard, ps, PROT_NONE), 0);
    uint8_t *copy = guard - len;
    if (len > 0) {
        memcpy(copy, data, len);
    }
    return copy;
}

void test_guard_free(uint8_t *copy, size_t len)
{
    if (copy == NULL) {
        return;
    }
    size_t ps = page_size();
    size_t span = data_pages(len, ps);
    uint8_t *map = copy + len - span;
    assert_int_equal(munmap(map, span + ps), 0);
}

static struct {
    uint8_t *copy;
    size_t len;
} guard_ring[TEST_GUARD_SLOTS];
static size_t guard_next;

const uint8_t *test_guarded(const void *data, size_t len)
{
    size_t i = guard_next++ % TEST_GUARD_SLOTS;
    test_guard_free(guard_ring[i].copy, guard_ring[i].len);
    guard_ring[i].copy = test_guard_new(data, len);
    guard_ring[i].len = len;
    return guard_ring[i].copy;
}

const char *test_guarded_str(const char *s)
{
    return (const char *)test_guarded(s, strlen(s));
}
