/* The server's event loop (cli/loop.c) on pipes: registration, moves, timers, the wake pipe. */
#define _GNU_SOURCE /* pipe2 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"

#define NPIPES 100

typedef struct fixture {
    loop *lp;
    int fds[NPIPES][2];
    loop_handle h[NPIPES];
    int calls[NPIPES];
    unsigned last[NPIPES];
    int victim; /* a callback unregisters this one (-1: none) */
} fixture;

static fixture fx;

static void on_ready(void *owner, loop_handle *h, unsigned events)
{
    fixture *f = owner;
    size_t i = (size_t)(h - f->h);
    f->calls[i]++;
    f->last[i] = events;
    char buf[16];
    while (read(f->fds[i][0], buf, sizeof buf) > 0) {
    }
    if (f->victim >= 0) {
        loop_del(f->lp, &f->h[f->victim]);
        loop_del(f->lp, h);
        f->victim = -1;
    }
}

static int setup(void **state)
{
    memset(&fx, 0, sizeof fx);
    fx.victim = -1;
    fx.lp = loop_new();
    assert_non_null(fx.lp);
    for (int i = 0; i < NPIPES; i++) {
        assert_int_equal(pipe2(fx.fds[i], O_NONBLOCK | O_CLOEXEC), 0);
        assert_int_equal(loop_add(fx.lp, &fx.h[i], fx.fds[i][0], LOOP_IN, on_ready, &fx), 0);
    }
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NPIPES; i++) {
        close(fx.fds[i][0]);
        close(fx.fds[i][1]);
    }
    loop_free(fx.lp);
    return 0;
}

static void poke(int i)
{
    assert_int_equal(write(fx.fds[i][1], "x", 1), 1);
}

static void test_ready_ones_called(void **state)
{
    (void)state;
    poke(3);
    poke(64);
    poke(99);
    assert_int_equal(loop_poll(fx.lp), 0);
    for (int i = 0; i < NPIPES; i++) {
        assert_int_equal(fx.calls[i], i == 3 || i == 64 || i == 99 ? 1 : 0);
    }
    assert_int_equal(fx.last[64], LOOP_IN);
}

/* Unregistering every other one moves the others: each handle still names its descriptor. */
static void test_moves_keep_handles(void **state)
{
    (void)state;
    for (int i = 0; i < NPIPES; i += 2) {
        loop_del(fx.lp, &fx.h[i]);
        assert_int_equal(fx.h[i].slot, LOOP_NONE);
    }
    for (int i = 0; i < NPIPES; i++) {
        poke(i);
    }
    assert_int_equal(loop_poll(fx.lp), 0);
    for (int i = 0; i < NPIPES; i++) {
        assert_int_equal(fx.calls[i], i % 2);
    }
    loop_set_events(fx.lp, &fx.h[1], 0); /* no longer waits for input */
    poke(1);
    poke(3);
    assert_int_equal(loop_poll(fx.lp), 0);
    assert_int_equal(fx.calls[1], 1);
    assert_int_equal(fx.calls[3], 2);
}

/* A callback that unregisters a ready descriptor not yet visited, and itself: the other is
   not called, and every other ready descriptor is called once. */
static void test_unregister_inside(void **state)
{
    (void)state;
    for (int i = 0; i < NPIPES; i++) {
        poke(i);
    }
    fx.victim = 0; /* registered first: visited after the others; the last is called first */
    assert_int_equal(loop_poll(fx.lp), 0);
    assert_int_equal(fx.calls[0], 0);
    for (int i = 1; i < NPIPES; i++) {
        assert_int_equal(fx.calls[i], 1);
    }
}

static int timer_calls;
static void on_timer(void *owner)
{
    (void)owner;
    timer_calls++;
}

static void test_timers(void **state)
{
    (void)state;
    loop_timer due, later;
    loop_timer_add(fx.lp, &due, on_timer, NULL);
    loop_timer_add(fx.lp, &later, on_timer, NULL);
    assert_int_equal(due.at, UINT64_MAX);
    uint64_t now = loop_update_clock(fx.lp);
    loop_timer_set(&due, now);
    loop_timer_set(&later, now + 60000);
    assert_int_equal(loop_poll(fx.lp), 0); /* returns at once: a timer is due */
    assert_true(loop_now(fx.lp) >= now);
    assert_true(loop_now(fx.lp) - now < 1000);
    loop_run_timers(fx.lp);
    assert_int_equal(timer_calls, 1);
    loop_timer_set(&due, UINT64_MAX);
    loop_run_timers(fx.lp);
    assert_int_equal(timer_calls, 1);
}

static void test_wake(void **state)
{
    (void)state;
    loop_timer guard;
    loop_timer_add(fx.lp, &guard, NULL, NULL);
    uint64_t now = loop_update_clock(fx.lp);
    loop_timer_set(&guard, now + 10000);
    loop_wake_from_signal();
    assert_int_equal(loop_poll(fx.lp), 0);
    assert_true(loop_now(fx.lp) - now < 5000);
    for (int i = 0; i < NPIPES; i++) {
        assert_int_equal(fx.calls[i], 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ready_ones_called, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moves_keep_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregister_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wake, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
