/* The shared test harness itself: guard pages fault, the allocator counts and fails as told,
 * the cut iterators cover what they say, the frame builders write what the parser reads. */
#define _POSIX_C_SOURCE 200809L /* sigaction */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "support.h"

enum { FAULTED = 77 };

static void on_fault(int sig)
{
    (void)sig;
    _exit(FAULTED);
}

/* Read p[i] in a child: its exit status (FAULTED when the read faulted). */
static int read_in_child(const volatile uint8_t *p, size_t i)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fault;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        _exit(p[i] == 0xEE ? 1 : 0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_guard_faults_one_past(void **state)
{
    (void)state;
    static const size_t lens[] = {1, 7, 4096, 5000};
    uint8_t data[5000];
    memset(data, 0xAB, sizeof data);
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t n = lens[k];
        uint8_t *g = test_guard_new(data, n);
        assert_memory_equal(g, data, n);
        g[n - 1] = 0xEE; /* writable */
        assert_int_equal(read_in_child(g, n - 1), 1);
        assert_int_equal(read_in_child(g, n), FAULTED);
        test_guard_free(g, n);
    }
    const uint8_t *empty = test_guarded("", 0);
    assert_int_equal(read_in_child(empty, 0), FAULTED);
    const char *s = test_guarded_str("abc");
    assert_memory_equal(s, "abc", 3);
    assert_int_equal(read_in_child((const uint8_t *)s, 3), FAULTED);
}

static void test_alloc_counts_and_fails(void **state)
{
    (void)state;
    test_alloc a;
    test_alloc_init(&a);
    wsfwd_allocator h = test_alloc_hooks(&a);
    void *p = h.malloc(100, h.user_data);
    void *q = h.malloc(50, h.user_data);
    assert_non_null(p);
    assert_non_null(q);
    assert_int_equal(a.live, 2);
    assert_int_equal(a.live_bytes, 150);
    p = h.realloc(p, 300, h.user_data);
    assert_non_null(p);
    assert_int_equal(a.live, 2);
    assert_int_equal(a.live_bytes, 350);
    h.free(q, h.user_data);
    h.free(NULL, h.user_data);
    assert_int_equal(a.live_bytes, 300);
    assert_int_equal(a.peak_bytes, 350);
    assert_int_equal(a.largest, 300);
    assert_int_equal(a.calls, 3);
    assert_int_equal(a.allocs, 3);
    /* fail_at: that call alone. */
    a.fail_at = a.calls + 2;
    void *r = h.malloc(1, h.user_data);
    assert_non_null(r);
    assert_null(h.realloc(r, 2, h.user_data));
    void *t = h.malloc(1, h.user_data);
    assert_non_null(t);
    assert_int_equal(a.failed, 1);
    /* budget: one more, then every call. */
    a.budget = 1;
    void *u = h.malloc(8, h.user_data);
    assert_non_null(u);
    assert_null(h.malloc(8, h.user_data));
    assert_null(h.realloc(NULL, 8, h.user_data));
    assert_int_equal(a.failed, 3);
    assert_null(h.malloc(SIZE_MAX, h.user_data));
    h.free(p, h.user_data);
    h.free(r, h.user_data);
    h.free(t, h.user_data);
    h.free(u, h.user_data);
    assert_int_equal(a.live, 0);
    assert_int_equal(a.live_bytes, 0);
}

typedef struct cut_count {
    size_t calls, pieces;
} cut_count;

static void count_cuts(const size_t *cuts, size_t ncuts, void *ud)
{
    cut_count *c = ud;
    for (size_t i = 1; i < ncuts; i++) {
        assert_true(cuts[i - 1] <= cuts[i]);
    }
    c->calls++;
    c->pieces += ncuts + 1;
}

static void test_cut_iterators(void **state)
{
    (void)state;
    cut_count c = {0, 0};
    test_each_cut(10, count_cuts, &c);
    assert_int_equal(c.calls, 11);
    c = (cut_count){0, 0};
    test_bytewise(10, count_cuts, &c);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.pieces, 10);
    c = (cut_count){0, 0};
    test_each_cut_pair(4, 1, 1, count_cuts, &c);
    assert_int_equal(c.calls, 15); /* pairs a <= c in 0..4 */
}

static void test_frame_builders(void **state)
{
    (void)state;
    uint8_t b[256];
    wsfwd_frame_header fh;
    size_t n = test_fragments(b, WSFWD_OP_TEXT, "abcdefg", 7, 3, TEST_MASK);
    static const struct {
        bool fin;
        int op;
        size_t len;
    } want[] = {{false, WSFWD_OP_TEXT, 3},
                {false, WSFWD_OP_CONTINUATION, 3},
                {true, WSFWD_OP_CONTINUATION, 1}};
    size_t off = 0;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(wsfwd_frame_parse_header(b + off, n - off, WSFWD_ROLE_SERVER, &fh),
                         WSFWD_OK);
        assert_int_equal(fh.fin, want[i].fin);
        assert_int_equal(fh.opcode, want[i].op);
        assert_int_equal(fh.payload_len, want[i].len);
        assert_true(fh.masked);
        off += fh.header_len + (size_t)fh.payload_len;
    }
    assert_int_equal(off, n);
    n = test_close_frame(b, 1000, "bye", NULL);
    assert_int_equal(n, 7);
    assert_memory_equal(b,
                        "\x88\x05\x03\xe8"
                        "bye",
                        7);
    assert_int_equal(test_close_frame(b, 0, NULL, NULL), 2);
    n = test_server_frame(b, true, WSFWD_OP_BINARY, "hi", 2);
    assert_memory_equal(b, "\x82\x02hi", 4);
    n = test_client_frame(b, true, WSFWD_OP_BINARY, "hi", 2);
    assert_int_equal(n, 8);
    wsfwd_frame_mask(b + 6, 2, TEST_MASK, 0);
    assert_memory_equal(b + 6, "hi", 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_faults_one_past),
        cmocka_unit_test(test_alloc_counts_and_fails),
        cmocka_unit_test(test_cut_iterators),
        cmocka_unit_test(test_frame_builders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
