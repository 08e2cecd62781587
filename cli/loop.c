/*
 * The event loop over poll() (see loop.h). Owns the pollfd array and, parallel to it, each
 * slot's callback, owner and handle; slot 0 is the wake-up pipe. Owns the list of timers.
 * Re-entrancy: callbacks run inside loop_poll and loop_run_timers and may call any function
 * here but loop_poll, loop_run_timers and loop_free.
 */
#define _GNU_SOURCE /* pipe2 */

#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef struct reg {
    loop_fn *fn;
    void *owner;
    loop_handle *h;
} reg;

struct loop {
    struct pollfd *pfds;
    reg *regs; /* parallel to pfds */
    size_t n;
    size_t cap;
    int wake[2];
    loop_handle wake_h;
    loop_timer *timers;
    uint64_t now;
};

static volatile sig_atomic_t wake_fd = -1; /* write end of the self-pipe, for signal handlers */

void loop_wake_from_signal(void)
{
    int fd = wake_fd;
    if (fd >= 0) {
        int saved = errno;
        ssize_t r = write(fd, "x", 1);
        (void)r;
        errno = saved;
    }
}

static void drain_wake(void *owner, loop_handle *h, unsigned events)
{
    loop *lp = owner;
    (void)h;
    (void)events;
    char drain[64];
    while (read(lp->wake[0], drain, sizeof drain) > 0) {
    }
}

uint64_t loop_update_clock(loop *lp)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lp->now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    return lp->now;
}

uint64_t loop_now(const loop *lp)
{
    return lp->now;
}

loop *loop_new(void)
{
    loop *lp = calloc(1, sizeof *lp);
    if (lp == NULL) {
        return NULL;
    }
    lp->wake[0] = lp->wake[1] = -1;
    lp->wake_h.slot = LOOP_NONE;
    lp->cap = 64;
    lp->pfds = calloc(lp->cap, sizeof *lp->pfds);
    lp->regs = calloc(lp->cap, sizeof *lp->regs);
    if (lp->pfds == NULL || lp->regs == NULL || pipe2(lp->wake, O_NONBLOCK | O_CLOEXEC) != 0 ||
        loop_add(lp, &lp->wake_h, lp->wake[0], LOOP_IN, drain_wake, lp) != 0) {
        int saved = errno;
        loop_free(lp);
        errno = saved;
        return NULL;
    }
    loop_update_clock(lp);
    wake_fd = lp->wake[1];
    return lp;
}

void loop_free(loop *lp)
{
    if (lp == NULL) {
        return;
    }
    if (lp->wake[0] >= 0) {
        wake_fd = -1;
        close(lp->wake[0]);
        close(lp->wake[1]);
    }
    free(lp->pfds);
    free(lp->regs);
    free(lp);
}

static short poll_events(unsigned events)
{
    return (short)(((events & LOOP_IN) ? POLLIN : 0) | ((events & LOOP_OUT) ? POLLOUT : 0));
}

static bool grow(loop *lp)
{
    size_t cap = lp->cap * 2;
    struct pollfd *pfds = realloc(lp->pfds, cap * sizeof *pfds);
    if (pfds == NULL) {
        return false;
    }
    lp->pfds = pfds;
    reg *regs = realloc(lp->regs, cap * sizeof *regs);
    if (regs == NULL) {
        return false;
    }
    lp->regs = regs;
    lp->cap = cap;
    return true;
}

int loop_add(loop *lp, loop_handle *h, int fd, unsigned events, loop_fn *fn, void *owner)
{
    h->slot = LOOP_NONE;
    if (lp->n == lp->cap && !grow(lp)) {
        return -1;
    }
    size_t i = lp->n++;
    lp->pfds[i] = (struct pollfd){.fd = fd, .events = poll_events(events), .revents = 0};
    lp->regs[i] = (reg){fn, owner, h};
    h->slot = (uint32_t)i;
    return 0;
}

void loop_set_events(loop *lp, const loop_handle *h, unsigned events)
{
    lp->pfds[h->slot].events = poll_events(events);
}

/* The last slot moves into the freed one: it was visited already in this turn (see loop.h). */
void loop_del(loop *lp, loop_handle *h)
{
    if (h->slot == LOOP_NONE) {
        return;
    }
    size_t i = h->slot;
    size_t last = lp->n - 1;
    if (i != last) {
        lp->pfds[i] = lp->pfds[last];
        lp->regs[i] = lp->regs[last];
        lp->regs[i].h->slot = (uint32_t)i;
    }
    lp->n--;
    h->slot = LOOP_NONE;
}

void loop_timer_add(loop *lp, loop_timer *t, void (*fn)(void *owner), void *owner)
{
    t->at = UINT64_MAX;
    t->fn = fn;
    t->owner = owner;
    t->next = lp->timers;
    lp->timers = t;
}

/* How long poll() may sleep: until the earliest timer. */
static int poll_timeout(const loop *lp)
{
    uint64_t due = UINT64_MAX;
    for (const loop_timer *t = lp->timers; t != NULL; t = t->next) {
        if (t->at < due) {
            due = t->at;
        }
    }
    if (due == UINT64_MAX) {
        return -1;
    }
    return due <= lp->now ? 0 : due - lp->now > INT_MAX ? INT_MAX : (int)(due - lp->now);
}

static unsigned loop_events(short re)
{
    return ((re & POLLIN) ? LOOP_IN : 0u) | ((re & POLLOUT) ? LOOP_OUT : 0u) |
           ((re & (POLLHUP | POLLERR)) ? LOOP_ERR : 0u);
}

int loop_poll(loop *lp)
{
    int ready = poll(lp->pfds, lp->n, poll_timeout(lp));
    if (ready < 0 && errno != EINTR) {
        return -1;
    }
    loop_update_clock(lp);
    /* Backwards, so the move in loop_del only brings visited slots (their revents cleared). */
    for (size_t i = lp->n; ready > 0 && i-- > 0;) {
        if (i >= lp->n) {
            continue;
        }
        short re = lp->pfds[i].revents;
        lp->pfds[i].revents = 0;
        if (re == 0) {
            continue;
        }
        ready--;
        unsigned ev = loop_events(re);
        if (ev != 0) {
            lp->regs[i].fn(lp->regs[i].owner, lp->regs[i].h, ev);
        }
    }
    return 0;
}

void loop_run_timers(loop *lp)
{
    for (loop_timer *t = lp->timers; t != NULL; t = t->next) {
        if (t->at <= lp->now && t->fn != NULL) {
            t->fn(t->owner);
        }
    }
}
