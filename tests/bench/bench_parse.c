/*
 * Frame parsing benchmark (issue 2): a stream of masked client frames (binary, a random mask
 * per frame, as a browser sends them) parsed as a server by libwsfwd and by wslay, next to a
 * plain memcpy of the same bytes, side by side in one process run.
 *
 *   bench_parse                 full run: 64 MiB stream per payload size, best of 7 rounds
 *   bench_parse --quick         smoke run: 4 MiB per size, one round (ctest bench_parse_smoke)
 *   bench_parse --check         also exit 1 if a target of issue 2 is missed (timing: noisy)
 *   bench_parse --mib N         stream size per payload size, in MiB
 *   bench_parse --rounds N      timed rounds per contender
 *   bench_parse --size SIZE     only this payload size (64, 4k, 1m)
 *   bench_parse --callgrind SIZE CONTENDER
 *                               build the SIZE (64, 4k, 1m) stream, run CONTENDER (memcpy,
 *                               wsfwd, wslay) once, print the stream size: for
 *                               valgrind --tool=callgrind --toggle-collect=bench_run_CONTENDER
 *                               (default 16 MiB; with --rounds N it runs N times, e.g. for
 *                               perf record -e cpu-clock, which profiles one contender alone)
 *
 * The contenders, each reading the pristine stream in PIECE-byte socket reads:
 *   memcpy  copies every piece into a PIECE-byte read buffer: the recv() copy alone.
 *   wsfwd   copies the piece into the read buffer (as recv() would), then wsfwd_conn_feed()
 *           on a server connection opened with wsfwd_conn_set_open(); on_message consumes.
 *   wslay   wslay_event_recv() once per piece; its recv_callback copies from the piece into
 *           the buffer wslay asks to fill (wslay reads at most 4 KiB at a time) and reports
 *           WSLAY_ERR_WOULDBLOCK at the end of the piece; on_msg_recv_callback consumes.
 * So every contender copies each stream byte out of the stream exactly once, and the memcpy
 * figure is that copy alone: "wsfwd / memcpy" includes the copy in wsfwd's time (raw), and
 * "parse only" subtracts the memcpy time from it.
 *
 * Every message delivered is counted, its length summed and a checksum of three of its
 * (unmasked) bytes accumulated; any mismatch with what the stream holds aborts the run.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wslay/wslay.h>

#include "wsfwd.h"

#define PIECE ((size_t)64 * 1024)
#define MAX_ROUNDS 51

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#define CLOBBER(p) __asm__ volatile("" : : "r"(p) : "memory")
#else
#define NOINLINE
#define CLOBBER(p) ((void)(p))
#endif

/* ---- The stream ------------------------------------------------------------------------ */

typedef struct stream {
    uint8_t *buf;
    size_t len;
    size_t payload; /* bytes per message (one frame each) */
    uint64_t messages;
    uint64_t payload_bytes;
    uint64_t checksum; /* sum of msg_sum() over the unmasked messages */
} stream;

typedef struct sink {
    uint64_t messages;
    uint64_t bytes;
    uint64_t checksum;
} sink;

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng_next(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Du;
}

/* Touches three bytes: the first, the middle and the last, so unmasking is checked too. */
static inline uint64_t msg_sum(const uint8_t *d, size_t n)
{
    if (n == 0) {
        return 0;
    }
    return (uint64_t)n + d[0] + 3u * d[n / 2] + 7u * d[n - 1];
}

static void die(const char *what)
{
    fprintf(stderr, "bench_parse: %s\n", what);
    exit(2);
}

/* Header as RFC 6455 section 5.2 writes it; written here, not with the library's encoder. */
static size_t put_header(uint8_t *p, uint64_t len, const uint8_t mask[4])
{
    size_t n = 0;
    p[n++] = 0x82; /* FIN, binary */
    if (len < 126) {
        p[n++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xFFFF) {
        p[n++] = 0x80 | 126;
        p[n++] = (uint8_t)(len >> 8);
        p[n++] = (uint8_t)len;
    } else {
        p[n++] = 0x80 | 127;
        for (int s = 56; s >= 0; s -= 8) {
            p[n++] = (uint8_t)(len >> s);
        }
    }
    memcpy(p + n, mask, 4);
    return n + 4;
}

static void stream_build(stream *s, size_t payload, size_t target_bytes)
{
    size_t hdr = payload < 126 ? 6 : payload <= 0xFFFF ? 8 : 14;
    size_t frame = hdr + payload;
    size_t frames = (target_bytes + frame - 1) / frame;
    if (frames == 0) {
        frames = 1;
    }
    memset(s, 0, sizeof *s);
    s->len = frames * frame;
    s->payload = payload;
    s->buf = malloc(s->len);
    if (s->buf == NULL) {
        die("out of memory building the stream");
    }
    uint8_t *p = s->buf;
    for (size_t f = 0; f < frames; f++) {
        uint64_t m = rng_next();
        uint8_t mask[4] = {(uint8_t)m, (uint8_t)(m >> 8), (uint8_t)(m >> 16), (uint8_t)(m >> 24)};
        p += put_header(p, payload, mask);
        for (size_t i = 0; i < payload; i += 8) {
            uint64_t r = rng_next();
            size_t n = payload - i < 8 ? payload - i : 8;
            memcpy(p + i, &r, n);
        }
        s->checksum += msg_sum(p, payload);
        for (size_t i = 0; i < payload; i++) {
            p[i] ^= mask[i & 3];
        }
        p += payload;
        s->messages++;
        s->payload_bytes += payload;
    }
}

static void sink_check(const char *who, const sink *k, const stream *s)
{
    if (k->messages != s->messages || k->bytes != s->payload_bytes || k->checksum != s->checksum) {
        fprintf(stderr,
                "bench_parse: %s parsed the %zu-byte stream wrong: %llu messages (expected "
                "%llu), %llu payload bytes (expected %llu), checksum %s\n",
                who, s->payload, (unsigned long long)k->messages, (unsigned long long)s->messages,
                (unsigned long long)k->bytes, (unsigned long long)s->payload_bytes,
                k->checksum == s->checksum ? "ok" : "WRONG");
        exit(2);
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- memcpy ---------------------------------------------------------------------------- */

NOINLINE void bench_run_memcpy(const stream *s, uint8_t *rbuf);
NOINLINE void bench_run_memcpy(const stream *s, uint8_t *rbuf)
{
    for (size_t off = 0; off < s->len; off += PIECE) {
        size_t n = s->len - off < PIECE ? s->len - off : PIECE;
        memcpy(rbuf, s->buf + off, n);
        CLOBBER(rbuf);
    }
}

/* ---- libwsfwd -------------------------------------------------------------------------- */

static int wsfwd_on_message(wsfwd_conn *conn, wsfwd_opcode op, const uint8_t *data, size_t len,
                            void *ud)
{
    (void)conn;
    sink *k = ud;
    if (op != WSFWD_OP_BINARY) {
        return 1;
    }
    k->messages++;
    k->bytes += len;
    k->checksum += msg_sum(data, len);
    return 0;
}

NOINLINE void bench_run_wsfwd(wsfwd_config *cfg, const stream *s, uint8_t *rbuf);
NOINLINE void bench_run_wsfwd(wsfwd_config *cfg, const stream *s, uint8_t *rbuf)
{
    wsfwd_conn *conn;
    if (wsfwd_conn_new(cfg, WSFWD_ROLE_SERVER, NULL, &conn) != WSFWD_OK ||
        wsfwd_conn_set_open(conn) != WSFWD_OK) {
        die("wsfwd: cannot create an open server connection");
    }
    for (size_t off = 0; off < s->len; off += PIECE) {
        size_t n = s->len - off < PIECE ? s->len - off : PIECE;
        memcpy(rbuf, s->buf + off, n);
        int rc = wsfwd_conn_feed(conn, rbuf, n);
        if (rc != WSFWD_OK) {
            fprintf(stderr, "bench_parse: wsfwd_conn_feed: %s\n", wsfwd_strerror(rc));
            exit(2);
        }
    }
    if (wsfwd_conn_state(conn) != WSFWD_STATE_OPEN) {
        die("wsfwd: the connection left the open state");
    }
    wsfwd_conn_free(conn);
}

/*
 * The parser alone: the stream is fed in the same 64 KiB pieces, but straight from a private
 * copy made before the clock starts (feeding unmasks in place, so each run needs fresh
 * bytes). In a server the copy into the read buffer is recv()'s, done by the kernel; this is
 * the throughput compared with memcpy's.
 */
NOINLINE void bench_run_direct(wsfwd_config *cfg, uint8_t *work, size_t len);
NOINLINE void bench_run_direct(wsfwd_config *cfg, uint8_t *work, size_t len)
{
    wsfwd_conn *conn;
    if (wsfwd_conn_new(cfg, WSFWD_ROLE_SERVER, NULL, &conn) != WSFWD_OK ||
        wsfwd_conn_set_open(conn) != WSFWD_OK) {
        die("wsfwd: cannot create an open server connection");
    }
    for (size_t off = 0; off < len; off += PIECE) {
        size_t n = len - off < PIECE ? len - off : PIECE;
        int rc = wsfwd_conn_feed(conn, work + off, n);
        if (rc != WSFWD_OK) {
            fprintf(stderr, "bench_parse: wsfwd_conn_feed: %s\n", wsfwd_strerror(rc));
            exit(2);
        }
    }
    wsfwd_conn_free(conn);
}

/* ---- wslay ----------------------------------------------------------------------------- */

typedef struct wslay_feed {
    const uint8_t *src;
    size_t off;
    size_t end; /* end of the current piece */
    sink *k;
} wslay_feed;

static ssize_t wslay_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *ud)
{
    (void)flags;
    wslay_feed *f = ud;
    if (f->off == f->end) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = f->end - f->off < len ? f->end - f->off : len;
    memcpy(buf, f->src + f->off, n);
    f->off += n;
    return (ssize_t)n;
}

static void wslay_on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                         void *ud)
{
    (void)ctx;
    wslay_feed *f = ud;
    if (arg->opcode != WSLAY_BINARY_FRAME) {
        return; /* a close frame wslay made up for an error: the counts will say so */
    }
    f->k->messages++;
    f->k->bytes += arg->msg_length;
    f->k->checksum += msg_sum(arg->msg, arg->msg_length);
}

NOINLINE void bench_run_wslay(const stream *s, sink *k, uint64_t max_msg);
NOINLINE void bench_run_wslay(const stream *s, sink *k, uint64_t max_msg)
{
    struct wslay_event_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.recv_callback = wslay_recv;
    cb.on_msg_recv_callback = wslay_on_msg;
    wslay_feed f = {s->buf, 0, 0, k};
    wslay_event_context_ptr ctx;
    if (wslay_event_context_server_init(&ctx, &cb, &f) != 0) {
        die("wslay: wslay_event_context_server_init failed");
    }
    wslay_event_config_set_max_recv_msg_length(ctx, max_msg);
    while (f.off < s->len) {
        f.end = s->len - f.off < PIECE ? s->len : f.off + PIECE;
        int rc = wslay_event_recv(ctx);
        if (rc != 0) {
            fprintf(stderr, "bench_parse: wslay_event_recv returned %d\n", rc);
            exit(2);
        }
        if (!wslay_event_get_read_enabled(ctx) || f.off != f.end) {
            die("wslay: stopped reading (protocol error or message too big)");
        }
    }
    wslay_event_context_free(ctx);
}

/* ---- Harness --------------------------------------------------------------------------- */

enum { C_MEMCPY, C_WSFWD, C_WSLAY, C_DIRECT, NCONTENDERS };
static const char *const contender_name[NCONTENDERS] = {"memcpy", "wsfwd", "wslay", "direct"};

typedef struct bench {
    wsfwd_config *cfg;
    sink wsfwd_sink;
    uint8_t *rbuf;
    uint8_t *work; /* the direct contender's private copy of the stream */
    size_t work_len;
    uint64_t max_msg;
} bench;

/* Run one contender once over the stream; returns seconds. Checks what was parsed. */
static double run_one(bench *b, int who, const stream *s)
{
    sink k = {0, 0, 0};
    double t0 = 0, t1 = 0;
    switch (who) {
    case C_MEMCPY:
        t0 = now();
        bench_run_memcpy(s, b->rbuf);
        t1 = now();
        break;
    case C_WSFWD:
        b->wsfwd_sink = k;
        t0 = now();
        bench_run_wsfwd(b->cfg, s, b->rbuf);
        t1 = now();
        sink_check("wsfwd", &b->wsfwd_sink, s);
        break;
    case C_WSLAY:
        t0 = now();
        bench_run_wslay(s, &k, b->max_msg);
        t1 = now();
        sink_check("wslay", &k, s);
        break;
    case C_DIRECT:
        if (b->work_len < s->len) {
            free(b->work);
            b->work = malloc(s->len);
            b->work_len = s->len;
            if (b->work == NULL) {
                die("out of memory");
            }
        }
        memcpy(b->work, s->buf, s->len); /* untimed */
        b->wsfwd_sink = k;
        t0 = now();
        bench_run_direct(b->cfg, b->work, s->len);
        t1 = now();
        sink_check("wsfwd (direct)", &b->wsfwd_sink, s);
        break;
    default: die("unknown contender");
    }
    return t1 - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    size_t payload;
    size_t stream_bytes;
    uint64_t messages;
    double best[NCONTENDERS];   /* seconds */
    double median[NCONTENDERS]; /* seconds */
} result;

static void measure(bench *b, size_t payload, size_t stream_bytes, int rounds, result *r)
{
    stream s;
    stream_build(&s, payload, stream_bytes);
    double t[NCONTENDERS][MAX_ROUNDS];

    /* One untimed run each: warms caches and the allocators, and checks the counts. */
    for (int c = 0; c < NCONTENDERS; c++) {
        (void)run_one(b, c, &s);
    }
    /* Rotate the order every round so no contender always runs first or after another. */
    for (int i = 0; i < rounds; i++) {
        for (int j = 0; j < NCONTENDERS; j++) {
            int c = (i + j) % NCONTENDERS;
            t[c][i] = run_one(b, c, &s);
        }
    }
    r->payload = payload;
    r->stream_bytes = s.len;
    r->messages = s.messages;
    for (int c = 0; c < NCONTENDERS; c++) {
        qsort(t[c], (size_t)rounds, sizeof t[c][0], cmp_double);
        r->best[c] = t[c][0];
        r->median[c] =
            rounds % 2 ? t[c][rounds / 2] : (t[c][rounds / 2 - 1] + t[c][rounds / 2]) / 2;
    }
    free(s.buf);
}

static double mbps(size_t bytes, double sec)
{
    return sec > 0 ? (double)bytes / sec / 1e6 : 0;
}

static const char *size_label(size_t payload)
{
    return payload == 64 ? "64 B" : payload == 4096 ? "4 KiB" : "1 MiB";
}

static int parse_size(const char *arg, size_t *out)
{
    if (strcmp(arg, "64") == 0) {
        *out = 64;
    } else if (strcmp(arg, "4k") == 0 || strcmp(arg, "4096") == 0) {
        *out = 4096;
    } else if (strcmp(arg, "1m") == 0 || strcmp(arg, "1048576") == 0) {
        *out = 1048576;
    } else {
        return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_parse [--quick] [--check] [--mib N] [--rounds N] [--size 64|4k|1m]\n"
               "       bench_parse [--mib N] [--rounds N] --callgrind 64|4k|1m "
               "memcpy|wsfwd|wslay|direct\n");
}

static int parse_count(const char *arg, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno != 0 || *end != '\0' || end == arg || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    int quick = 0, check = 0;
    long mib = -1, rounds = -1;
    const char *cg_size = NULL, *cg_who = NULL;
    size_t only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--check") == 0) {
            check = 1;
        } else if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc) {
            if (parse_count(argv[++i], 1, 4096, &mib) != 0) {
                usage(stderr);
                return 2;
            }
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            if (parse_count(argv[++i], 1, MAX_ROUNDS, &rounds) != 0) {
                usage(stderr);
                return 2;
            }
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            if (parse_size(argv[++i], &only) != 0) {
                usage(stderr);
                return 2;
            }
        } else if (strcmp(argv[i], "--callgrind") == 0 && i + 2 < argc) {
            cg_size = argv[++i];
            cg_who = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    bench b;
    memset(&b, 0, sizeof b);
    b.max_msg = (uint64_t)1024 * 1024 + 64 * 1024; /* 1 MiB messages plus slack */
    b.rbuf = malloc(PIECE);
    if (b.rbuf == NULL || wsfwd_config_new(NULL, &b.cfg) != WSFWD_OK ||
        wsfwd_config_set_max_message(b.cfg, (size_t)b.max_msg) != WSFWD_OK) {
        die("setup failed");
    }
    wsfwd_config_on_message(b.cfg, wsfwd_on_message);
    wsfwd_config_set_user_data(b.cfg, &b.wsfwd_sink);

    if (cg_size != NULL) {
        size_t payload;
        int who = -1;
        for (int c = 0; c < NCONTENDERS; c++) {
            if (strcmp(cg_who, contender_name[c]) == 0) {
                who = c;
            }
        }
        if (parse_size(cg_size, &payload) != 0 || who < 0) {
            usage(stderr);
            return 2;
        }
        stream s;
        stream_build(&s, payload, (size_t)(mib > 0 ? mib : 16) << 20);
        for (long i = 0; i < (rounds > 0 ? rounds : 1); i++) {
            (void)run_one(&b, who, &s);
        }
        printf("{\"callgrind\":\"%s\",\"payload\":%zu,\"stream_bytes\":%zu,\"messages\":%llu,"
               "\"function\":\"bench_run_%s\"}\n",
               contender_name[who], payload, s.len, (unsigned long long)s.messages,
               contender_name[who]);
        free(s.buf);
        wsfwd_config_free(b.cfg);
        free(b.rbuf);
        return 0;
    }

    if (mib < 0) {
        mib = quick ? 4 : 64;
    }
    if (rounds < 0) {
        rounds = quick ? 1 : 7;
    }
    static const size_t sizes[] = {64, 4096, 1048576};
    result res[3];
    int nres = 0;
    for (int i = 0; i < 3; i++) {
        if (only != 0 && sizes[i] != only) {
            continue;
        }
        result *r = &res[nres++];
        measure(&b, sizes[i], (size_t)mib << 20, (int)rounds, r);
        double m = mbps(r->stream_bytes, r->best[C_MEMCPY]);
        double w = mbps(r->stream_bytes, r->best[C_WSFWD]);
        double y = mbps(r->stream_bytes, r->best[C_WSLAY]);
        double d = mbps(r->stream_bytes, r->best[C_DIRECT]);
        printf("{\"bench\":\"parse\",\"payload\":%zu,\"stream_bytes\":%zu,\"messages\":%llu,"
               "\"rounds\":%ld,\"piece\":%zu,\"memcpy_mbps\":%.0f,\"wsfwd_mbps\":%.0f,"
               "\"wslay_mbps\":%.0f,\"memcpy_median_mbps\":%.0f,\"wsfwd_median_mbps\":%.0f,"
               "\"wslay_median_mbps\":%.0f,\"wsfwd_over_memcpy\":%.3f,"
               "\"wsfwd_direct_mbps\":%.0f,\"wsfwd_direct_over_memcpy\":%.3f,"
               "\"wsfwd_over_wslay\":%.2f}\n",
               r->payload, r->stream_bytes, (unsigned long long)r->messages, rounds, PIECE, m, w, y,
               mbps(r->stream_bytes, r->median[C_MEMCPY]),
               mbps(r->stream_bytes, r->median[C_WSFWD]), mbps(r->stream_bytes, r->median[C_WSLAY]),
               w / m, d, d / m, w / y);
        fflush(stdout);
    }

    printf("\nbest of %ld round(s), %ld MiB stream per size, %zu KiB reads; MB/s = 10^6 stream "
           "bytes (headers included) per second\n",
           rounds, mib, PIECE / 1024);
    printf("wsfwd: copies each 64 KiB piece into a read buffer, then feeds it (like wslay's\n"
           "recv callback); direct: feeds the pieces in place, the copy being recv()'s job\n");
    printf("%-7s %9s %9s %9s %9s %14s %15s %12s\n", "payload", "memcpy", "wsfwd", "direct", "wslay",
           "wsfwd/memcpy", "direct/memcpy", "wsfwd/wslay");
    int missed = 0;
    for (int i = 0; i < nres; i++) {
        result *r = &res[i];
        double m = mbps(r->stream_bytes, r->best[C_MEMCPY]);
        double w = mbps(r->stream_bytes, r->best[C_WSFWD]);
        double y = mbps(r->stream_bytes, r->best[C_WSLAY]);
        double d = mbps(r->stream_bytes, r->best[C_DIRECT]);
        printf("%-7s %9.0f %9.0f %9.0f %9.0f %14.3f %15.3f %12.2f\n", size_label(r->payload), m, w,
               d, y, w / m, d / m, w / y);
        if (w <= y) {
            printf("  target missed: wsfwd not faster than wslay on %s frames\n",
                   size_label(r->payload));
            missed = 1;
        }
        if (r->payload == 1048576 && d < 0.5 * m) {
            printf("  target missed: wsfwd (direct) below 0.5 x memcpy on 1 MiB frames\n");
            missed = 1;
        }
    }
    printf("targets (issue 2): 1 MiB direct >= 0.5 x memcpy; every size wsfwd > wslay: %s\n",
           missed ? "MISSED" : "met");

    wsfwd_config_free(b.cfg);
    free(b.rbuf);
    free(b.work);
    return check && missed ? 1 : 0;
}
