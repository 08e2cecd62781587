/*
 * DEFLATE codec choice for permessage-deflate (issue 15): zlib and libdeflate compressing
 * whole JSON-like chat messages with no context takeover, as wsfwd's server does for each
 * broadcast (RFC 7692 section 7.2.1): raw DEFLATE, fresh context per message.
 *   zlib:       one raw deflate stream (windowBits -15, memLevel 8), deflateReset per message,
 *               deflate(Z_SYNC_FLUSH), the 00 00 FF FF tail removed;
 *   libdeflate: one compressor per level, libdeflate_deflate_compress per message; its output
 *               ends in a block with BFINAL set, so one 0x00 byte is appended (the header of
 *               the empty stored block RFC 7692 section 7.2.1 appends, whose 00 00 FF FF is
 *               then removed; the payload of the RFC's example in section 7.2.3.3).
 * Every payload is checked: payload + 00 00 FF FF through a fresh zlib raw inflater (-15)
 * gives the message back.
 *
 *   bench_deflate                 the table: ns/message (median of 5) and ratio, per library,
 *                                 level (1, 3, 6) and size (64 B to 16 KiB)
 *   bench_deflate --quick         smoke run (ctest): every payload checked, timing short
 *   bench_deflate --callgrind LIB LEVEL SIZE N
 *                                 N messages in bench_run only, for
 *                                 valgrind --tool=callgrind --toggle-collect=bench_run
 *   bench_deflate --dump LIB LEVEL SIZE
 *                                 one message and its payload in hex (two lines), for the
 *                                 Python check in docs/BENCHMARKS.md
 */
#define _POSIX_C_SOURCE 200809L

#include <libdeflate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define NMSG 32
#define MAXLEN 16384
#define CAP (MAXLEN + MAXLEN / 8 + 64)

static const size_t sizes[] = {64, 256, 1024, 4096, 16384};
static const int levels[] = {1, 3, 6};

static uint8_t msgs[NMSG][MAXLEN];
static uint8_t outbuf[CAP + 8];

typedef struct lib {
    const char *name;
    size_t (*compress)(int level, const uint8_t *in, size_t len, uint8_t *out, size_t cap);
} lib;

/* ---- Inputs: JSON-like chat messages ------------------------------------------------------ */

static uint32_t rng = 2463534242u;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static const char *const words[] = {
    "hello", "anyone", "here",   "the", "build", "is",    "green",    "again",   "ship",  "it",
    "lunch", "at",     "noon",   "?",   "I",     "think", "we",       "should",  "merge", "this",
    "after", "review", "thanks", "ok",  "see",   "you",   "tomorrow", "meeting", "moved", "to"};

/* One chat object; returns its length (at most cap). */
static size_t chat_object(char *buf, size_t cap, unsigned id)
{
    char text[200];
    size_t t = 0;
    unsigned nw = 3 + next_rand() % 14;
    for (unsigned i = 0; i < nw; i++) {
        const char *w = words[next_rand() % (sizeof words / sizeof *words)];
        int n = snprintf(text + t, sizeof text - t, "%s%s", i ? " " : "", w);
        t += (size_t)n;
    }
    int n = snprintf(buf, cap,
                     "{\"type\":\"message\",\"room\":\"general\",\"id\":%u,\"user\":\"user%u\","
                     "\"ts\":17334%05u,\"text\":\"%s\"}",
                     id, next_rand() % 500, next_rand() % 100000, text);
    return n < 0 ? 0 : (size_t)n > cap ? cap : (size_t)n;
}

/* A message of exactly len bytes: one chat object padded, or an array of them (history). */
static void make_message(uint8_t *out, size_t len, unsigned seed)
{
    char buf[MAXLEN + 512];
    size_t n = 0;
    buf[n++] = '[';
    unsigned id = seed * 1000;
    while (n < len) {
        n += chat_object(buf + n, sizeof buf - n - 2, id++);
        buf[n++] = ',';
    }
    memcpy(out, buf, len);
    if (len >= 2)
        out[len - 1] = ']';
}

/* ---- The two compressors --------------------------------------------------------------------- */

static z_stream zs[10];
static int zs_ready[10];

static size_t zlib_compress(int level, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    z_stream *z = &zs[level];
    if (!zs_ready[level]) {
        memset(z, 0, sizeof *z);
        if (deflateInit2(z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return 0;
        zs_ready[level] = 1;
    } else if (deflateReset(z) != Z_OK) {
        return 0;
    }
    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)len;
    z->next_out = out;
    z->avail_out = (uInt)cap;
    if (deflate(z, Z_SYNC_FLUSH) != Z_OK || z->avail_in || !z->avail_out)
        return 0;
    size_t n = cap - z->avail_out;
    return n >= 5 ? n - 4 : 0;
}

static struct libdeflate_compressor *ld[13];

static size_t libdeflate_compress(int level, const uint8_t *in, size_t len, uint8_t *out,
                                  size_t cap)
{
    if (!ld[level] && !(ld[level] = libdeflate_alloc_compressor(level)))
        return 0;
    size_t n = libdeflate_deflate_compress(ld[level], in, len, out, cap - 1);
    if (n == 0)
        return 0;
    out[n] = 0x00; /* the empty stored block's header bits; its 00 00 FF FF removed */
    return n + 1;
}

static const lib libs[] = {{"zlib", zlib_compress}, {"libdeflate", libdeflate_compress}};

static const lib *find_lib(const char *name)
{
    for (size_t i = 0; i < sizeof libs / sizeof *libs; i++)
        if (strcmp(libs[i].name, name) == 0)
            return &libs[i];
    return NULL;
}

/* ---- Checking ------------------------------------------------------------------------------ */

/* payload + 00 00 FF FF through a fresh raw inflater (as Python's decompressobj(-15)). */
static int check_payload(const uint8_t *payload, size_t n, const uint8_t *want, size_t len)
{
    static uint8_t in[CAP + 16], got[MAXLEN + 1];
    memcpy(in, payload, n);
    memcpy(in + n, "\x00\x00\xff\xff", 4);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK)
        return -1;
    z.next_in = in;
    z.avail_in = (uInt)(n + 4);
    z.next_out = got;
    z.avail_out = sizeof got;
    int rc = inflate(&z, Z_SYNC_FLUSH);
    size_t out = sizeof got - z.avail_out;
    inflateEnd(&z);
    if ((rc != Z_OK && rc != Z_STREAM_END) || out != len || memcmp(got, want, len) != 0)
        return -1;
    return 0;
}

/* ---- Timing -------------------------------------------------------------------------------- */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The measured loop: n messages of len bytes. Not inlined: callgrind toggles on it. */
__attribute__((noinline)) size_t bench_run(const lib *l, int level, size_t len, long n)
{
    size_t total = 0;
    for (long i = 0; i < n; i++)
        total += l->compress(level, msgs[i % NMSG], len, outbuf, CAP);
    return total;
}

static int run_table(int quick)
{
    printf("%-10s %5s %6s %12s %8s %10s\n", "library", "level", "size", "ns/message", "ratio",
           "MB/s");
    for (size_t li = 0; li < sizeof libs / sizeof *libs; li++)
        for (size_t lv = 0; lv < sizeof levels / sizeof *levels; lv++)
            for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
                const lib *l = &libs[li];
                size_t len = sizes[si];
                for (unsigned m = 0; m < NMSG; m++)
                    make_message(msgs[m], len, m + 1);
                size_t zin = 0, zout = 0;
                for (unsigned m = 0; m < NMSG; m++) {
                    size_t n = l->compress(levels[lv], msgs[m], len, outbuf, CAP);
                    if (n == 0 || check_payload(outbuf, n, msgs[m], len) != 0) {
                        fprintf(stderr, "%s level %d size %zu message %u: bad payload\n", l->name,
                                levels[lv], len, m);
                        return 1;
                    }
                    zin += len;
                    zout += n;
                }
                long iters = quick ? NMSG : (long)(200000000 / (len + 2000)) / 10 + NMSG;
                double runs[5];
                int nruns = quick ? 1 : 5;
                for (int r = 0; r < nruns; r++) {
                    double t0 = now_ns();
                    volatile size_t sink = bench_run(l, levels[lv], len, iters);
                    (void)sink;
                    runs[r] = (now_ns() - t0) / (double)iters;
                }
                qsort(runs, (size_t)nruns, sizeof *runs, cmp_double);
                double ns = runs[nruns / 2];
                printf("%-10s %5d %6zu %12.0f %8.2f %10.1f\n", l->name, levels[lv], len, ns,
                       (double)zin / (double)zout, (double)len / ns * 1e3);
            }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--quick") == 0)
        return run_table(1);
    if (argc == 6 && strcmp(argv[1], "--callgrind") == 0) {
        const lib *l = find_lib(argv[2]);
        int level = atoi(argv[3]);
        size_t len = (size_t)atol(argv[4]);
        long n = atol(argv[5]);
        if (!l || len == 0 || len > MAXLEN || n <= 0)
            return 2;
        for (unsigned m = 0; m < NMSG; m++)
            make_message(msgs[m], len, m + 1);
        bench_run(l, level, len, NMSG); /* warm-up: streams made, not counted */
        printf("{\"messages\":%ld,\"out\":%zu}\n", n, bench_run(l, level, len, n));
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "--dump") == 0) {
        const lib *l = find_lib(argv[2]);
        size_t len = (size_t)atol(argv[4]);
        if (!l || len == 0 || len > MAXLEN)
            return 2;
        make_message(msgs[0], len, 1);
        size_t n = l->compress(atoi(argv[3]), msgs[0], len, outbuf, CAP);
        for (size_t i = 0; i < len; i++)
            printf("%02x", msgs[0][i]);
        printf("\n");
        for (size_t i = 0; i < n; i++)
            printf("%02x", outbuf[i]);
        printf("\n");
        return n ? 0 : 1;
    }
    if (argc == 1)
        return run_table(0);
    fprintf(stderr, "usage: bench_deflate [--quick | --callgrind LIB LEVEL SIZE N | --dump LIB "
                    "LEVEL SIZE]\n");
    return 2;
}
