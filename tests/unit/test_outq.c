/* The output queue: shared buffers, private appends, inline slots, spilling and draining. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mem.h"
#include "outq.h"
#include "support.h"

static wsfwd_buf *make(const wsfwd_allocator *a, const char *text)
{
    size_t n = strlen(text);
    wsfwd_buf *b = wsfwd_buf_new(a, n);
    assert_non_null(b);
    memcpy(b->data, text, n);
    b->len = n;
    return b;
}

/* Gather the queue's output into a string. */
static size_t gather(wsfwd_outq *q, char *out, size_t cap)
{
    wsfwd_iovec iov[128];
    size_t n = wsfwd_outq_output(q, iov, 128);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(total + iov[i].len < cap);
        memcpy(out + total, iov[i].base, iov[i].len);
        total += iov[i].len;
    }
    out[total] = '\0';
    return total;
}

static void test_shared_buffer_is_referenced_not_copied(void **state)
{
    (void)state;
    test_alloc cnt;
    test_alloc_init(&cnt);
    wsfwd_allocator a = test_alloc_hooks(&cnt);
    wsfwd_outmem m = {&a, NULL};
    wsfwd_buf *b = make(&a, "frame");
    wsfwd_outq q[3];
    for (int i = 0; i < 3; i++) {
        wsfwd_outq_init(&q[i]);
        assert_int_equal(wsfwd_outq_push(&q[i], m, b), WSFWD_OK);
    }
    assert_int_equal(b->refs, 4);
    assert_int_equal(cnt.allocs, 1); /* inline slots: no allocation per queue */
    wsfwd_iovec iov[2];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(wsfwd_outq_output(&q[i], iov, 2), 1);
        assert_ptr_equal(iov[0].base, b->data);
    }
    wsfwd_buf_unref(&a, b);
    for (int i = 0; i < 3; i++) {
        wsfwd_outq_consume(&q[i], m, 5);
        assert_int_equal(q[i].bytes, 0);
    }
    assert_int_equal(cnt.live, 0);
}

static void test_private_appends_share_a_buffer(void **state)
{
    (void)state;
    test_alloc cnt;
    test_alloc_init(&cnt);
    wsfwd_allocator a = test_alloc_hooks(&cnt);
    wsfwd_outmem m = {&a, NULL};
    wsfwd_outq q;
    wsfwd_outq_init(&q);
    for (int i = 0; i < 10; i++) {
        uint8_t *p = wsfwd_outq_reserve(&q, m, 3);
        assert_non_null(p);
        memcpy(p, "abc", 3);
        wsfwd_outq_commit(&q, 3);
    }
    assert_int_equal(cnt.allocs, 1);
    assert_int_equal(q.count, 1);
    char out[64];
    assert_int_equal(gather(&q, out, sizeof out), 30);
    /* A shared buffer in between: later private bytes go after it, in order. */
    wsfwd_buf *b = make(&a, "SHARED");
    wsfwd_outq_push(&q, m, b);
    wsfwd_buf_unref(&a, b);
    uint8_t *p = wsfwd_outq_reserve(&q, m, 3);
    memcpy(p, "xyz", 3);
    wsfwd_outq_commit(&q, 3);
    gather(&q, out, sizeof out);
    assert_string_equal(out, "abcabcabcabcabcabcabcabcabcabcSHAREDxyz");
    wsfwd_outq_clear(&q, m);
    assert_int_equal(cnt.live, 0);
}

/* reserve_at_least: a first buffer of exactly what was asked (a handshake's response), and
   the usual doubling for what follows it. */
static void test_reserve_exact_first(void **state)
{
    (void)state;
    test_alloc cnt;
    test_alloc_init(&cnt);
    wsfwd_allocator a = test_alloc_hooks(&cnt);
    wsfwd_outmem m = {&a, NULL};
    wsfwd_outq q;
    wsfwd_outq_init(&q);
    uint8_t *p = wsfwd_outq_reserve_at_least(&q, m, 150, 150);
    assert_non_null(p);
    memset(p, 'h', 150);
    wsfwd_outq_commit(&q, 150);
    assert_int_equal(cnt.largest, sizeof(wsfwd_buf) + 150);
    p = wsfwd_outq_reserve(&q, m, 3); /* no room left: a new buffer, twice the first */
    memcpy(p, "abc", 3);
    wsfwd_outq_commit(&q, 3);
    assert_int_equal(cnt.allocs, 2);
    assert_int_equal(cnt.largest, sizeof(wsfwd_buf) + 300);
    assert_int_equal(q.bytes, 153);
    wsfwd_outq_clear(&q, m);
    assert_int_equal(cnt.live, 0);
}

static void test_spill_to_ring_and_back(void **state)
{
    (void)state;
    test_alloc cnt;
    test_alloc_init(&cnt);
    wsfwd_allocator a = test_alloc_hooks(&cnt);
    wsfwd_outmem m = {&a, NULL};
    wsfwd_outq q;
    wsfwd_outq_init(&q);
    char text[8];
    for (int i = 0; i < 100; i++) {
        text[0] = (char)('A' + i % 26);
        text[1] = '\0';
        wsfwd_buf *b = make(&a, text);
        assert_int_equal(wsfwd_outq_push(&q, m, b), WSFWD_OK);
        wsfwd_buf_unref(&a, b);
        /* Consume one every third push so the ring wraps around. */
        if (i % 3 == 2) {
            wsfwd_outq_consume(&q, m, 1);
        }
    }
    assert_true(wsfwd_outq_spilled(&q));
    char out[256];
    size_t n = gather(&q, out, sizeof out);
    assert_int_equal(n, q.bytes);
    /* What is left is the tail of the sequence, in order. */
    for (size_t i = 0; i < n; i++) {
        size_t seq = 100 - n + i;
        assert_int_equal(out[i], 'A' + (int)(seq % 26));
    }
    /* Partial consumption inside a buffer, then everything. */
    wsfwd_outq_consume(&q, m, q.bytes);
    assert_false(wsfwd_outq_spilled(&q));
    assert_int_equal(q.count, 0);
    assert_int_equal(cnt.live, 0);
}

/* A ring handed back goes to the cache and serves the next spill: no allocation then. */
static void test_ring_cache_reuses_rings(void **state)
{
    (void)state;
    test_alloc cnt;
    test_alloc_init(&cnt);
    wsfwd_allocator a = test_alloc_hooks(&cnt);
    wsfwd_ringcache rc;
    memset(&rc, 0, sizeof rc);
    rc.max_bytes = 1 << 20;
    wsfwd_outmem m = {&a, &rc};
    wsfwd_buf *b = make(&a, "x");
    wsfwd_outq q[4];
    long before = 0;
    for (int round = 0; round < 3; round++) {
        if (round == 1) {
            before = cnt.allocs;
        }
        for (int i = 0; i < 4; i++) {
            wsfwd_outq_init(&q[i]);
            for (int k = 0; k < 20; k++) {
                assert_int_equal(wsfwd_outq_push(&q[i], m, b), WSFWD_OK);
            }
        }
        for (int i = 0; i < 4; i++) {
            wsfwd_outq_consume(&q[i], m, q[i].bytes);
            assert_false(wsfwd_outq_spilled(&q[i]));
        }
    }
    assert_int_equal(cnt.allocs, before); /* rounds 2 and 3 took rings from the cache */
    assert_true(rc.bytes > 0);
    /* Past max_bytes, rings are freed instead of cached. */
    rc.max_bytes = 0;
    wsfwd_outq_init(&q[0]);
    for (int k = 0; k < 20; k++) {
        wsfwd_outq_push(&q[0], m, b);
    }
    wsfwd_outq_consume(&q[0], m, q[0].bytes);
    wsfwd_ringcache_clear(&rc, &a);
    assert_int_equal(rc.bytes, 0);
    wsfwd_buf_unref(&a, b);
    assert_int_equal(cnt.live, 0);
}

static void test_partial_consume_within_buffer(void **state)
{
    (void)state;
    wsfwd_allocator a;
    wsfwd_mem_init(&a, NULL);
    wsfwd_outmem m = {&a, NULL};
    wsfwd_outq q;
    wsfwd_outq_init(&q);
    wsfwd_buf *b1 = make(&a, "hello ");
    wsfwd_buf *b2 = make(&a, "world");
    wsfwd_outq_push(&q, m, b1);
    wsfwd_outq_push(&q, m, b2);
    wsfwd_buf_unref(&a, b1);
    wsfwd_buf_unref(&a, b2);
    char out[64];
    wsfwd_outq_consume(&q, m, 4);
    gather(&q, out, sizeof out);
    assert_string_equal(out, "o world");
    wsfwd_outq_consume(&q, m, 3);
    gather(&q, out, sizeof out);
    assert_string_equal(out, "orld");
    wsfwd_outq_consume(&q, m, 1000); /* more than queued: clamps */
    assert_int_equal(q.bytes, 0);
    wsfwd_iovec iov[1];
    assert_int_equal(wsfwd_outq_output(&q, iov, 1), 0);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    wsfwd_allocator a;
    wsfwd_mem_init(&a, NULL);
    wsfwd_outmem m = {&a, NULL};
    assert_null(wsfwd_buf_new(&a, SIZE_MAX));
    wsfwd_outq q;
    wsfwd_outq_init(&q);
    assert_null(wsfwd_outq_reserve(&q, m, SIZE_MAX - 8));
    assert_int_equal(q.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_buffer_is_referenced_not_copied),
        cmocka_unit_test(test_private_appends_share_a_buffer),
        cmocka_unit_test(test_reserve_exact_first),
        cmocka_unit_test(test_spill_to_ring_and_back),
        cmocka_unit_test(test_ring_cache_reuses_rings),
        cmocka_unit_test(test_partial_consume_within_buffer),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
