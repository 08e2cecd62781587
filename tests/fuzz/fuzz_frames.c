/*
 * libFuzzer target for the frame parser and message assembler, in both roles.
 *
 * Input: byte 0 picks the role, whether messages are echoed and the message limit; byte 1
 * the piece size; the rest is fed to an open connection. The same bytes are also fed whole,
 * and the two runs must produce the same events and the same output: any difference aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "wsfwd.h"

static void drain(wsfwd_conn *c, record *r)
{
    wsfwd_iovec iov[8];
    size_t n;
    while ((n = wsfwd_conn_output(c, iov, 8)) > 0) {
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = iov[i].base;
            for (size_t k = 0; k < iov[i].len; k++) {
                r->hash = (r->hash ^ p[k]) * 16777619u;
            }
            total += iov[i].len;
        }
        wsfwd_conn_consume(c, total);
    }
}

static record run(const uint8_t *data, size_t size, uint8_t opts, size_t piece)
{
    record r = {RECORD_SEED, 0, 0, (opts & 2) != 0, 0};
    wsfwd_config *cfg;
    wsfwd_conn *c;
    if (wsfwd_config_new(NULL, &cfg) != WSFWD_OK) {
        abort();
    }
    wsfwd_config_set_user_data(cfg, &r);
    wsfwd_config_set_random(cfg, fixed_random, NULL);
    wsfwd_config_on_message(cfg, on_message);
    wsfwd_config_on_control(cfg, on_control);
    wsfwd_config_on_close(cfg, on_close);
    wsfwd_config_set_max_message(cfg, (opts & 4) ? 100 : 1 << 16);
    wsfwd_role role = (opts & 1) ? WSFWD_ROLE_CLIENT : WSFWD_ROLE_SERVER;
    if (wsfwd_conn_new(cfg, role, NULL, &c) != WSFWD_OK || wsfwd_conn_set_open(c) != WSFWD_OK) {
        abort();
    }
    uint8_t *buf = malloc(size + 1);
    memcpy(buf, data, size);
    for (size_t off = 0; off < size; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        (void)wsfwd_conn_feed(c, buf + off, n);
    }
    free(buf);
    drain(c, &r);
    uint8_t st = (uint8_t)wsfwd_conn_state(c);
    mix(&r, &st, 1);
    wsfwd_conn_free(c);
    wsfwd_config_free(cfg);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    uint8_t opts = data[0];
    size_t piece = (size_t)data[1] % 64 + 1;
    data += 2;
    size -= 2;
    record whole = run(data, size, opts, size > 0 ? size : 1);
    record split = run(data, size, opts, piece);
    if (whole.hash != split.hash || whole.events != split.events) {
        fprintf(stderr, "split into %zu-byte pieces changed the events\n", piece);
        abort();
    }
    return 0;
}
