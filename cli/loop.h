/*
 * The event loop: one wait for readiness per turn, on one of two backends chosen at loop_new.
 * poll() (the default, portable) scans every registered descriptor each turn; epoll (Linux)
 * is told of registration changes as they happen (epoll_ctl only when a mask really changes)
 * and each turn returns only the ready ones, at most LOOP_EPOLL_BATCH of them (level-triggered:
 * the rest come in the next turns). It owns the registrations (a descriptor, its events, a
 * callback and its owner) and the backend's state, the wake-up pipe, the clock (monotonic
 * milliseconds, read once per turn) and the timers the peers declare (the earliest one bounds
 * the sleep).
 *
 * A registration is named by a loop_handle the owner keeps inside its own struct: under poll
 * the loop rewrites it when it moves the registration (an unregistered slot is filled at once
 * by the last one); under epoll a slot never moves (freed slots are reused, with a generation
 * that makes a stale ready event for the old registration miss). Every operation is O(1).
 * Callbacks may register and unregister any descriptor, their own included: a descriptor
 * unregistered during a turn gets no callback later in that turn, and one registered during a
 * turn gets none before the next.
 */
#ifndef WSFWD_CLI_LOOP_H
#define WSFWD_CLI_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct loop loop;

/* What a descriptor waits for, and what happened to it (LOOP_ERR covers hang-up and error). */
enum { LOOP_IN = 1, LOOP_OUT = 2, LOOP_ERR = 4 };

/* Where a registration is, kept by its owner; LOOP_NONE when not registered. */
typedef struct loop_handle {
    uint32_t slot;
} loop_handle;

/* A descriptor is ready: events is a mix of LOOP_IN, LOOP_OUT and LOOP_ERR; h is the handle it
   was registered with (an owner of many descriptors finds the one from it). */
typedef void loop_fn(void *owner, loop_handle *h, unsigned events);

#define LOOP_NONE UINT32_MAX

/* A deadline a peer declares: fn runs once the clock reaches at (UINT64_MAX: never). The owner
   keeps the struct; fn may re-arm it. With fn NULL the timer only ends the turn's sleep. */
typedef struct loop_timer {
    uint64_t at;
    void (*fn)(void *owner);
    void *owner;
    struct loop_timer *next; /* the loop's list */
} loop_timer;

/* How the loop waits: poll() everywhere, epoll on Linux only. */
typedef enum loop_io { LOOP_IO_POLL, LOOP_IO_EPOLL } loop_io;

/* The most distinct (callback, owner) pairs registered at once (loop_add fails past it). */
#define LOOP_CALLERS_MAX 255

/* The most ready descriptors one epoll turn handles. */
#define LOOP_EPOLL_BATCH 1024

/* Whether this system has the backend (LOOP_IO_EPOLL: Linux). */
bool loop_io_available(loop_io io);

/* Returns NULL when out of memory or descriptors, or io is not available (errno set). */
loop *loop_new(loop_io io);
/* Frees the loop; the owners close their own descriptors. */
void loop_free(loop *lp);

/* Register fd (once: a descriptor has one registration). Returns 0, or -1 when out of memory,
   past LOOP_CALLERS_MAX pairs of fn and owner, or epoll refuses it (errno set; h stays
   LOOP_NONE). Registrations share their fn and owner: an owner of many descriptors passes
   itself and finds each from its handle. */
int loop_add(loop *lp, loop_handle *h, int fd, unsigned events, loop_fn *fn, void *owner);
void loop_set_events(loop *lp, const loop_handle *h, unsigned events);
/* Unregister, before closing fd; a handle that is LOOP_NONE is left alone. */
void loop_del(loop *lp, loop_handle *h);
/* How many times the loop asked the kernel to change a registration (epoll_ctl; 0 under
   poll): for tests. */
unsigned long loop_ctl_calls(const loop *lp);

/* Declare a timer (once); then set t->at (loop_timer_set) whenever its deadline changes. */
void loop_timer_add(loop *lp, loop_timer *t, void (*fn)(void *owner), void *owner);
static inline void loop_timer_set(loop_timer *t, uint64_t at)
{
    t->at = at;
}

/* Monotonic milliseconds, as read at the start of the turn (or by loop_update_clock). */
uint64_t loop_now(const loop *lp);
uint64_t loop_update_clock(loop *lp);

/*
 * One turn: sleep in poll() or epoll_wait() until a descriptor is ready or the earliest timer
 * is due, read the clock, and call back every ready descriptor. Returns -1 if the wait failed
 * (not EINTR).
 */
int loop_poll(loop *lp);
/* Call every timer whose deadline has come (after loop_poll and the owner's own work). */
void loop_run_timers(loop *lp);

/* Wake loop_poll from a signal handler (async-signal-safe). */
void loop_wake_from_signal(void);

#endif
