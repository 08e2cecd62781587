/*
 * The event loop over poll() or epoll (see loop.h). Owns the registrations (each slot's handle
 * and the index of its callback and owner, in a table of the pairs the slots share) and the
 * backend's state: under poll the pollfd array parallel to
 * them, slot 0 the wake-up pipe; under epoll the epoll descriptor, each slot's descriptor,
 * kernel mask and generation, the free slots and the array of ready events. Owns the list of
 * timers. Re-entrancy: callbacks run inside loop_poll and loop_run_timers and may call any
 * function here but loop_poll, loop_run_timers and loop_free.
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

#ifdef __linux__
#include <sys/epoll.h>
#define HAVE_EPOLL 1
#else
#define HAVE_EPOLL 0
#endif

/* A callback and its owner, shared by the registrations naming it: a server's thousands of
   clients have one, so a slot holds an index, not two pointers. */
typedef struct caller {
    loop_fn *fn;
    void *owner;
    uint32_t regs; /* registrations naming it; 0: the entry is free */
} caller;

/* 16 bytes a registration (issue 17: the bytes of an idle connection). */
typedef struct reg {
    loop_handle *h;         /* epoll: NULL while the slot is free */
    union {                 /* epoll only */
        int fd;             /* while the slot is used */
        uint32_t next_free; /* while it is free; LOOP_NONE ends the list */
    };
    uint16_t gen; /* epoll: bumped when the slot is freed, so its events still in evs miss (no
                     slot is freed 65,536 times within one batch) */
    uint8_t events;
    uint8_t caller; /* in loop.callers */
} reg;

struct loop {
    loop_io io;
    struct pollfd *pfds; /* poll: parallel to regs */
    reg *regs;
    size_t n; /* slots used (poll), or slots ever handed out (epoll) */
    size_t cap;
    int epfd;           /* epoll, or -1 */
    uint32_t free_slot; /* epoll: first free slot, LOOP_NONE when none */
    unsigned long ctl_calls;
    void *evs; /* epoll: struct epoll_event[LOOP_EPOLL_BATCH] */
    int wake[2];
    loop_handle wake_h;
    loop_timer *timers;
    uint64_t now;
    caller callers[LOOP_CALLERS_MAX];
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

bool loop_io_available(loop_io io)
{
    return io == LOOP_IO_POLL || (io == LOOP_IO_EPOLL && HAVE_EPOLL);
}

/* The backend's own state: the pollfd array, or the epoll descriptor and its event array. */
static bool open_backend(loop *lp)
{
    if (lp->io == LOOP_IO_POLL) {
        lp->pfds = calloc(lp->cap, sizeof *lp->pfds);
        return lp->pfds != NULL;
    }
#if HAVE_EPOLL
    lp->evs = calloc(LOOP_EPOLL_BATCH, sizeof(struct epoll_event));
    lp->epfd = epoll_create1(EPOLL_CLOEXEC);
    return lp->evs != NULL && lp->epfd >= 0;
#else
    errno = ENOSYS;
    return false;
#endif
}

loop *loop_new(loop_io io)
{
    if (!loop_io_available(io)) {
        errno = ENOSYS;
        return NULL;
    }
    loop *lp = calloc(1, sizeof *lp);
    if (lp == NULL) {
        return NULL;
    }
    lp->io = io;
    lp->epfd = -1;
    lp->free_slot = LOOP_NONE;
    lp->wake[0] = lp->wake[1] = -1;
    lp->wake_h.slot = LOOP_NONE;
    lp->cap = 64;
    lp->regs = calloc(lp->cap, sizeof *lp->regs);
    if (lp->regs == NULL || !open_backend(lp) || pipe2(lp->wake, O_NONBLOCK | O_CLOEXEC) != 0 ||
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
    if (lp->epfd >= 0) {
        close(lp->epfd);
    }
    free(lp->evs);
    free(lp->pfds);
    free(lp->regs);
    free(lp);
}

unsigned long loop_ctl_calls(const loop *lp)
{
    return lp->ctl_calls;
}

static short poll_events(unsigned events)
{
    return (short)(((events & LOOP_IN) ? POLLIN : 0) | ((events & LOOP_OUT) ? POLLOUT : 0));
}

static bool grow(loop *lp)
{
    size_t cap = lp->cap * 2;
    if (lp->pfds != NULL) {
        struct pollfd *pfds = realloc(lp->pfds, cap * sizeof *pfds);
        if (pfds == NULL) {
            return false;
        }
        lp->pfds = pfds;
    }
    reg *regs = realloc(lp->regs, cap * sizeof *regs);
    if (regs == NULL) {
        return false;
    }
    lp->regs = regs;
    lp->cap = cap;
    return true;
}

/* The entry for (fn, owner), found or taken, one more registration counted; -1 when all
   LOOP_CALLERS_MAX entries name other pairs. */
static int caller_take(loop *lp, loop_fn *fn, void *owner)
{
    int free_at = -1;
    for (int i = 0; i < LOOP_CALLERS_MAX; i++) {
        caller *k = &lp->callers[i];
        if (k->regs > 0 && k->fn == fn && k->owner == owner) {
            k->regs++;
            return i;
        }
        if (k->regs == 0 && free_at < 0) {
            free_at = i;
        }
    }
    if (free_at >= 0) {
        lp->callers[free_at] = (caller){.fn = fn, .owner = owner, .regs = 1};
    } else {
        errno = ENOMEM;
    }
    return free_at;
}

static void caller_drop(loop *lp, uint8_t i)
{
    lp->callers[i].regs--;
}

/* Call back the registration in slot r. */
static void dispatch(loop *lp, const reg *r, unsigned events)
{
    const caller *k = &lp->callers[r->caller];
    k->fn(k->owner, r->h, events);
}

#if HAVE_EPOLL
/* A slot's epoll data: the slot, and its generation above it. */
static uint64_t ep_data(uint32_t slot, const reg *r)
{
    return (uint64_t)r->gen << 32 | slot;
}

static int ep_ctl(loop *lp, int op, uint32_t slot)
{
    const reg *r = &lp->regs[slot];
    struct epoll_event ev = {.events = ((r->events & LOOP_IN) ? EPOLLIN : 0u) |
                                       ((r->events & LOOP_OUT) ? EPOLLOUT : 0u),
                             .data.u64 = ep_data(slot, r)};
    lp->ctl_calls++;
    return epoll_ctl(lp->epfd, op, r->fd, &ev);
}

/* A free slot (the latest freed, or a new one), or LOOP_NONE when out of memory. */
static uint32_t ep_take_slot(loop *lp)
{
    uint32_t slot = lp->free_slot;
    if (slot != LOOP_NONE) {
        lp->free_slot = lp->regs[slot].next_free;
        return slot;
    }
    if (lp->n == lp->cap && !grow(lp)) {
        return LOOP_NONE;
    }
    lp->regs[lp->n].gen = 0;
    return (uint32_t)lp->n++;
}

static void ep_free_slot(loop *lp, uint32_t slot)
{
    reg *r = &lp->regs[slot];
    r->h = NULL;
    r->gen++;
    r->next_free = lp->free_slot;
    lp->free_slot = slot;
}

static int ep_add(loop *lp, loop_handle *h, int fd, unsigned events, uint8_t k)
{
    uint32_t slot = ep_take_slot(lp);
    if (slot == LOOP_NONE) {
        return -1;
    }
    reg *r = &lp->regs[slot];
    r->h = h;
    r->fd = fd;
    r->events = (uint8_t)(events & (LOOP_IN | LOOP_OUT));
    r->caller = k;
    if (ep_ctl(lp, EPOLL_CTL_ADD, slot) != 0) {
        int saved = errno;
        ep_free_slot(lp, slot);
        errno = saved;
        return -1;
    }
    h->slot = slot;
    return 0;
}
#endif

int loop_add(loop *lp, loop_handle *h, int fd, unsigned events, loop_fn *fn, void *owner)
{
    h->slot = LOOP_NONE;
    int k = caller_take(lp, fn, owner);
    if (k < 0) {
        return -1;
    }
#if HAVE_EPOLL
    if (lp->io == LOOP_IO_EPOLL) {
        if (ep_add(lp, h, fd, events, (uint8_t)k) != 0) {
            caller_drop(lp, (uint8_t)k);
            return -1;
        }
        return 0;
    }
#endif
    if (lp->n == lp->cap && !grow(lp)) {
        caller_drop(lp, (uint8_t)k);
        return -1;
    }
    size_t i = lp->n++;
    lp->pfds[i] = (struct pollfd){.fd = fd, .events = poll_events(events), .revents = 0};
    lp->regs[i] = (reg){.h = h, .caller = (uint8_t)k};
    h->slot = (uint32_t)i;
    return 0;
}

void loop_set_events(loop *lp, const loop_handle *h, unsigned events)
{
#if HAVE_EPOLL
    if (lp->io == LOOP_IO_EPOLL) {
        reg *r = &lp->regs[h->slot];
        events &= LOOP_IN | LOOP_OUT;
        if (r->events != events) {
            r->events = (uint8_t)events;
            (void)ep_ctl(lp, EPOLL_CTL_MOD, h->slot); /* fails only for a closed descriptor */
        }
        return;
    }
#endif
    lp->pfds[h->slot].events = poll_events(events);
}

/* poll: the last slot moves into the freed one: it was visited already in this turn (see
   loop.h). epoll: the slot is freed, its generation bumped. */
void loop_del(loop *lp, loop_handle *h)
{
    if (h->slot == LOOP_NONE) {
        return;
    }
    size_t i = h->slot;
    h->slot = LOOP_NONE;
    caller_drop(lp, lp->regs[i].caller);
#if HAVE_EPOLL
    if (lp->io == LOOP_IO_EPOLL) {
        (void)ep_ctl(lp, EPOLL_CTL_DEL, (uint32_t)i);
        ep_free_slot(lp, (uint32_t)i);
        return;
    }
#endif
    size_t last = lp->n - 1;
    if (i != last) {
        lp->pfds[i] = lp->pfds[last];
        lp->regs[i] = lp->regs[last];
        lp->regs[i].h->slot = (uint32_t)i;
    }
    lp->n--;
}

void loop_timer_add(loop *lp, loop_timer *t, void (*fn)(void *owner), void *owner)
{
    t->at = UINT64_MAX;
    t->fn = fn;
    t->owner = owner;
    t->next = lp->timers;
    lp->timers = t;
}

/* How long the wait may sleep: until the earliest timer. */
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

static int poll_turn(loop *lp)
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
            dispatch(lp, &lp->regs[i], ev);
        }
    }
    return 0;
}

#if HAVE_EPOLL
/* One ready event: called back unless its registration went (or its slot was reused) since. */
static void ep_dispatch(loop *lp, const struct epoll_event *e)
{
    uint32_t slot = (uint32_t)e->data.u64;
    const reg *r = &lp->regs[slot]; /* slots are never given back: slot < lp->n */
    if (r->h == NULL || ep_data(slot, r) != e->data.u64) {
        return;
    }
    unsigned ev = ((e->events & EPOLLIN) ? LOOP_IN : 0u) | ((e->events & EPOLLOUT) ? LOOP_OUT : 0u);
    ev &= r->events; /* an earlier callback may have changed the mask in this turn */
    ev |= (e->events & (EPOLLERR | EPOLLHUP)) ? LOOP_ERR : 0u;
    if (ev != 0) {
        dispatch(lp, r, ev);
    }
}

static int epoll_turn(loop *lp)
{
    struct epoll_event *evs = lp->evs;
    int ready = epoll_wait(lp->epfd, evs, LOOP_EPOLL_BATCH, poll_timeout(lp));
    if (ready < 0 && errno != EINTR) {
        return -1;
    }
    loop_update_clock(lp);
    for (int i = 0; i < ready; i++) {
        ep_dispatch(lp, &evs[i]);
    }
    return 0;
}
#endif

int loop_poll(loop *lp)
{
#if HAVE_EPOLL
    if (lp->io == LOOP_IO_EPOLL) {
        return epoll_turn(lp);
    }
#endif
    return poll_turn(lp);
}

void loop_run_timers(loop *lp)
{
    for (loop_timer *t = lp->timers; t != NULL; t = t->next) {
        if (t->at <= lp->now && t->fn != NULL) {
            t->fn(t->owner);
        }
    }
}
