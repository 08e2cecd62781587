/*
 * Broadcast benchmark (issue 3): a 64-byte message broadcast to N in-process member
 * connections (server role, opened with wsfwd_conn_set_open, all in one pool), whose queues
 * are drained as a socket would drain them: on_output puts the connection on a dirty list;
 * every BATCH broadcasts (1: after each one; 32: the variant) the dirty list is drained, each
 * connection with one wsfwd_conn_output (up to 64 segments, a writev) and one
 * wsfwd_conn_consume of everything it returned.
 *
 *   bench_broadcast                     timed run: 10,000 members, 4096 broadcasts, batch 1
 *                                       and 32, plus the memory figures
 *   bench_broadcast --quick             smoke run: 1,000 members, 256 broadcasts, checks that
 *                                       every member received every byte (ctest)
 *   bench_broadcast --members N --broadcasts B --batch K
 *   bench_broadcast --callgrind [--members N] [--broadcasts B] [--batch K]
 *                   setup (and one warm-up batch) uninstrumented, then B broadcasts with
 *                   draining between CALLGRIND_START_INSTRUMENTATION and _STOP, for
 *                     valgrind --tool=callgrind --instr-atstart=no bench_broadcast --callgrind
 *                   Without <valgrind/callgrind.h> at build time, use instead
 *                     valgrind --tool=callgrind --toggle-collect=bench_run bench_broadcast ...
 *                   (bench_run wraps exactly the broadcast + drain loop in both builds).
 *                   Instructions per recipient per broadcast = Ir / (B * N).
 *   bench_broadcast --check             memory per idle member in-process, then itself under
 *                                       callgrind (batch 1 and 32); exit 1 if a target of
 *                                       issue 3 is missed (<= 100 Ir per recipient per
 *                                       broadcast, <= 256 bytes per idle member), 2 if
 *                                       valgrind cannot be run.
 *
 * Memory per idle member: a counting allocator (allocator hook) records the bytes the library
 * asks for; (live bytes after creating, opening and joining N members) - (before), / N. The
 * same with malloc_usable_size() of each block (what glibc really sets aside, minus its 8-byte
 * chunk header), and the block count, so any per-allocation overhead can be added: glibc
 * spends usable + 8 bytes per block.
 */
#define _GNU_SOURCE /* malloc_usable_size */

#include <errno.h>
#include <malloc.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND_H 1
#endif
#endif
#ifndef HAVE_CALLGRIND_H
#define CALLGRIND_START_INSTRUMENTATION ((void)0)
#define CALLGRIND_STOP_INSTRUMENTATION ((void)0)
#endif

#include "wsfwd.h"

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

#define PAYLOAD 64
#define TARGET_IR 100.0
#define TARGET_BYTES 256.0

extern char **environ;

/* ---- Counting allocator: live bytes requested and usable, by block ------------------------ */

typedef struct track {
    void **keys;
    size_t *sizes;
    size_t cap; /* power of two */
    size_t used;
    long long live_req;
    long long live_usable;
    long long live_blocks;
} track;

static size_t slot_for(const track *t, const void *p)
{
    uintptr_t h = (uintptr_t)p;
    h ^= h >> 17;
    h *= (uintptr_t)0xed5ad4bbu;
    h ^= h >> 11;
    return (size_t)h & (t->cap - 1);
}

static void track_put(track *t, void *p, size_t size);

static void track_grow(track *t)
{
    track old = *t;
    t->cap = old.cap ? old.cap * 2 : 1 << 16;
    t->keys = calloc(t->cap, sizeof *t->keys);
    t->sizes = calloc(t->cap, sizeof *t->sizes);
    if (t->keys == NULL || t->sizes == NULL) {
        fprintf(stderr, "bench_broadcast: out of memory\n");
        exit(2);
    }
    t->used = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.keys[i] != NULL && old.keys[i] != (void *)1) {
            track_put(t, old.keys[i], old.sizes[i]);
        }
    }
    free(old.keys);
    free(old.sizes);
}

static void track_put(track *t, void *p, size_t size)
{
    if ((t->used + 1) * 2 > t->cap) {
        track_grow(t);
    }
    size_t i = slot_for(t, p);
    while (t->keys[i] != NULL && t->keys[i] != (void *)1) {
        i = (i + 1) & (t->cap - 1);
    }
    t->keys[i] = p;
    t->sizes[i] = size;
    t->used++;
}

static size_t track_take(track *t, void *p)
{
    size_t i = slot_for(t, p);
    while (t->keys[i] != p) {
        if (t->keys[i] == NULL) {
            fprintf(stderr, "bench_broadcast: freeing an unknown block\n");
            abort();
        }
        i = (i + 1) & (t->cap - 1);
    }
    t->keys[i] = (void *)1; /* tombstone; the table is rebuilt when it grows */
    return t->sizes[i];
}

static void *tr_malloc(size_t size, void *ud)
{
    track *t = ud;
    void *p = malloc(size);
    if (p != NULL) {
        track_put(t, p, size);
        t->live_req += (long long)size;
        t->live_usable += (long long)malloc_usable_size(p);
        t->live_blocks++;
    }
    return p;
}

static void tr_free(void *p, void *ud)
{
    track *t = ud;
    if (p == NULL) {
        return;
    }
    t->live_req -= (long long)track_take(t, p);
    t->live_usable -= (long long)malloc_usable_size(p);
    t->live_blocks--;
    free(p);
}

static void *tr_realloc(void *p, size_t size, void *ud)
{
    track *t = ud;
    if (p == NULL) {
        return tr_malloc(size, ud);
    }
    size_t old_usable = malloc_usable_size(p);
    size_t old = track_take(t, p);
    void *q = realloc(p, size);
    if (q == NULL) {
        track_put(t, p, old);
        return NULL;
    }
    track_put(t, q, size);
    t->live_req += (long long)size - (long long)old;
    t->live_usable += (long long)malloc_usable_size(q) - (long long)old_usable;
    return q;
}

/* ---- The bench: members, dirty list, draining --------------------------------------------- */

typedef struct bench {
    wsfwd_config *cfg;
    wsfwd_hub *hub;
    wsfwd_pool *pool;
    wsfwd_conn **conns;
    size_t n;
    wsfwd_conn **dirty;
    size_t ndirty;
    uint64_t drained_bytes;
    uint64_t writes; /* writev-like calls */
} bench;

static void on_output(wsfwd_conn *c, void *ud)
{
    bench *b = ud;
    b->dirty[b->ndirty++] = c;
}

/* Drain every connection that signalled output, as a poll loop would after its turn. */
static void drain_dirty(bench *b)
{
    wsfwd_iovec iov[64];
    for (size_t i = 0; i < b->ndirty; i++) {
        wsfwd_conn *c = b->dirty[i];
        do {
            size_t k = wsfwd_conn_output(c, iov, 64);
            size_t sum = 0;
            for (size_t j = 0; j < k; j++) {
                sum += iov[j].len;
            }
            wsfwd_conn_consume(c, sum); /* the socket took everything */
            b->drained_bytes += sum;
            b->writes++;
        } while (wsfwd_conn_pending(c) > 0);
    }
    b->ndirty = 0;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_broadcast: %s: %s\n", what, wsfwd_strerror(rc));
    exit(2);
}

/* The config and hub (alloc may be NULL for libc). */
static void bench_init(bench *b, const wsfwd_allocator *alloc, size_t n)
{
    memset(b, 0, sizeof *b);
    int rc = wsfwd_config_new(alloc, &b->cfg);
    if (rc != WSFWD_OK) {
        die("config", rc);
    }
    wsfwd_config_set_user_data(b->cfg, b);
    wsfwd_config_on_output(b->cfg, on_output);
    if ((rc = wsfwd_hub_new(b->cfg, &b->hub)) != WSFWD_OK) {
        die("hub", rc);
    }
    b->n = n;
    b->conns = calloc(n, sizeof *b->conns);
    b->dirty = calloc(n, sizeof *b->dirty);
    if (b->conns == NULL || b->dirty == NULL) {
        die("members", WSFWD_ERR_NOMEM);
    }
}

/* Create, open and join the members. */
static void bench_members(bench *b)
{
    for (size_t i = 0; i < b->n; i++) {
        int rc = wsfwd_conn_new(b->cfg, WSFWD_ROLE_SERVER, NULL, &b->conns[i]);
        if (rc == WSFWD_OK) {
            rc = wsfwd_conn_set_open(b->conns[i]);
        }
        if (rc == WSFWD_OK) {
            rc = wsfwd_hub_join(b->hub, b->conns[i], "bench", 5);
        }
        if (rc != WSFWD_OK) {
            die("member", rc);
        }
    }
    b->pool = wsfwd_hub_find(b->hub, "bench", 5);
}

static void bench_free(bench *b)
{
    for (size_t i = 0; i < b->n; i++) {
        wsfwd_conn_free(b->conns[i]);
    }
    wsfwd_hub_free(b->hub);
    wsfwd_config_free(b->cfg);
    free(b->conns);
    free(b->dirty);
}

static const uint8_t message[PAYLOAD] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde";

/* Exactly the measured work: `count` broadcasts, draining every `batch`. */
NOINLINE void bench_run(bench *b, size_t count, size_t batch);

NOINLINE void bench_run(bench *b, size_t count, size_t batch)
{
    for (size_t i = 1; i <= count; i++) {
        size_t delivered;
        int rc = wsfwd_pool_broadcast(b->pool, WSFWD_OP_BINARY, message, PAYLOAD, NULL, &delivered);
        if (rc != WSFWD_OK || delivered != b->n) {
            fprintf(stderr, "bench_broadcast: broadcast: %s, %zu of %zu delivered\n",
                    wsfwd_strerror(rc), delivered, b->n);
            exit(2);
        }
        if (i % batch == 0) {
            drain_dirty(b);
        }
    }
    drain_dirty(b);
}

static void verify(const bench *b, uint64_t broadcasts)
{
    uint64_t want = broadcasts * b->n * (PAYLOAD + 2);
    if (b->drained_bytes != want) {
        fprintf(stderr, "bench_broadcast: drained %llu bytes, expected %llu\n",
                (unsigned long long)b->drained_bytes, (unsigned long long)want);
        exit(2);
    }
    for (size_t i = 0; i < b->n; i++) {
        if (wsfwd_conn_pending(b->conns[i]) != 0) {
            fprintf(stderr, "bench_broadcast: member %zu not drained\n", i);
            exit(2);
        }
    }
}

/* ---- Memory per idle member ---------------------------------------------------------------- */

typedef struct memfig {
    double req;    /* bytes requested per member */
    double usable; /* malloc_usable_size per member */
    double blocks; /* blocks per member */
    double req_after_traffic;
} memfig;

static memfig measure_memory(size_t n)
{
    static track t;
    memset(&t, 0, sizeof t);
    wsfwd_allocator alloc = {tr_malloc, tr_realloc, tr_free, &t};
    bench b;
    bench_init(&b, &alloc, n);
    long long req0 = t.live_req, use0 = t.live_usable, blk0 = t.live_blocks;
    bench_members(&b);
    memfig f;
    f.req = (double)(t.live_req - req0) / (double)n;
    f.usable = (double)(t.live_usable - use0) / (double)n;
    f.blocks = (double)(t.live_blocks - blk0) / (double)n;
    /* Idle again after traffic: queues drained, nothing should stay behind. */
    bench_run(&b, 64, 32);
    verify(&b, 64);
    f.req_after_traffic = (double)(t.live_req - req0) / (double)n;
    bench_free(&b);
    if (t.live_blocks != 0) {
        fprintf(stderr, "bench_broadcast: %lld blocks leaked\n", t.live_blocks);
        exit(2);
    }
    free(t.keys);
    free(t.sizes);
    return f;
}

/* ---- Runs ----------------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void timed_run(size_t n, size_t count, size_t batch)
{
    bench b;
    bench_init(&b, NULL, n);
    bench_members(&b);
    bench_run(&b, batch, batch); /* warm-up */
    b.drained_bytes = 0;
    b.writes = 0;
    double t0 = now_s();
    bench_run(&b, count, batch);
    double dt = now_s() - t0;
    verify(&b, count);
    double per = dt * 1e9 / ((double)count * (double)n);
    printf("{\"bench\":\"broadcast\",\"members\":%zu,\"broadcasts\":%zu,\"batch\":%zu,"
           "\"seconds\":%.4f,\"ns_per_recipient\":%.2f,\"deliveries_per_s\":%.0f,"
           "\"writes\":%llu}\n",
           n, count, batch, dt, per, 1e9 / per, (unsigned long long)b.writes);
    bench_free(&b);
}

static void callgrind_run(size_t n, size_t count, size_t batch)
{
    bench b;
    bench_init(&b, NULL, n);
    bench_members(&b);
    bench_run(&b, batch, batch); /* warm-up, uninstrumented */
    b.drained_bytes = 0;
    CALLGRIND_START_INSTRUMENTATION;
    bench_run(&b, count, batch);
    CALLGRIND_STOP_INSTRUMENTATION;
    verify(&b, count);
    printf("{\"callgrind\":\"broadcast\",\"members\":%zu,\"broadcasts\":%zu,\"batch\":%zu,"
           "\"recipients\":%llu}\n",
           n, count, batch, (unsigned long long)count * n);
    bench_free(&b);
}

/* Run this program under callgrind and return Ir per recipient per broadcast, or -1. */
static double callgrind_self(const char *self, size_t n, size_t count, size_t batch)
{
    char out[] = "/tmp/bench_broadcast.cg.XXXXXX";
    int fd = mkstemp(out);
    if (fd < 0) {
        return -1;
    }
    close(fd);
    char outopt[64], ns[32], cs[32], bs[32];
    snprintf(outopt, sizeof outopt, "--callgrind-out-file=%s", out);
    snprintf(ns, sizeof ns, "%zu", n);
    snprintf(cs, sizeof cs, "%zu", count);
    snprintf(bs, sizeof bs, "%zu", batch);
    char *argv[] = {"valgrind",
                    "--tool=callgrind",
                    "--instr-atstart=no",
                    outopt,
                    "-q",
                    (char *)self,
                    "--callgrind",
                    "--members",
                    ns,
                    "--broadcasts",
                    cs,
                    "--batch",
                    bs,
                    NULL};
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1 /* O_WRONLY */, 0);
    int rc = posix_spawnp(&pid, "valgrind", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        unlink(out);
        return -1;
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        unlink(out);
        return -1;
    }
    FILE *f = fopen(out, "r");
    double ir = -1;
    char line[512];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        unsigned long long v;
        /* "totals:" (callgrind's "summary:" line reads 0 with --instr-atstart=no) */
        if (sscanf(line, "totals: %llu", &v) == 1) {
            ir = (double)v;
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    unlink(out);
    return ir < 0 ? -1 : ir / ((double)count * (double)n);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_broadcast [--quick | --check | --callgrind] [--members N] "
                    "[--broadcasts B] [--batch K]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int quick = 0, check = 0, cg = 0;
    size_t n = 10000, count = 0, batch = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--check") == 0) {
            check = 1;
        } else if (strcmp(argv[i], "--callgrind") == 0) {
            cg = 1;
        } else if (i + 1 < argc &&
                   (strcmp(argv[i], "--members") == 0 || strcmp(argv[i], "--broadcasts") == 0 ||
                    strcmp(argv[i], "--batch") == 0)) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(argv[i + 1], &end, 10);
            if (errno != 0 || *end != '\0' || v == 0) {
                usage();
            }
            if (argv[i][2] == 'm') {
                n = (size_t)v;
            } else if (argv[i][3] == 'r') {
                count = (size_t)v;
            } else {
                batch = (size_t)v;
            }
            i++;
        } else {
            usage();
        }
    }

    if (cg) {
        callgrind_run(n, count ? count : 64, batch ? batch : 1);
        return 0;
    }
    if (quick) {
        n = n == 10000 ? 1000 : n;
    }
    memfig m = measure_memory(n);
    printf("{\"bench\":\"broadcast_memory\",\"members\":%zu,\"bytes_per_member\":%.1f,"
           "\"usable_bytes_per_member\":%.1f,\"blocks_per_member\":%.2f,"
           "\"glibc_bytes_per_member\":%.1f,\"bytes_per_member_after_traffic\":%.1f}\n",
           n, m.req, m.usable, m.blocks, m.usable + 8.0 * m.blocks, m.req_after_traffic);

    if (check) {
        int ok = m.req <= TARGET_BYTES;
        printf("memory per idle member: %.1f bytes requested (%.1f usable, %.1f with glibc's "
               "8-byte headers): %s (target <= %.0f)\n",
               m.req, m.usable, m.usable + 8.0 * m.blocks, ok ? "ok" : "MISSED", TARGET_BYTES);
        char self[4096];
        ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
        if (sl <= 0) {
            fprintf(stderr, "bench_broadcast: cannot find its own path\n");
            return 2;
        }
        self[sl] = '\0';
        size_t batches[2] = {1, 32};
        for (int k = 0; k < 2; k++) {
            double ir = callgrind_self(self, n, count ? count : 64, batches[k]);
            if (ir < 0) {
                fprintf(stderr, "bench_broadcast: could not run valgrind --tool=callgrind\n");
                return 2;
            }
            int hit = ir <= TARGET_IR;
            ok = ok && hit;
            printf("{\"callgrind\":\"broadcast\",\"members\":%zu,\"batch\":%zu,"
                   "\"ir_per_recipient\":%.2f,\"target\":%.0f,\"ok\":%s}\n",
                   n, batches[k], ir, TARGET_IR, hit ? "true" : "false");
        }
        return ok ? 0 : 1;
    }

    size_t runs = quick ? 256 : 4096;
    if (batch) {
        timed_run(n, count ? count : runs, batch);
    } else {
        timed_run(n, count ? count : runs, 1);
        timed_run(n, count ? count : runs, 32);
    }
    return 0;
}
