/*
 * What the fuzz targets that feed one connection the same bytes whole and in pieces record of
 * each run, to compare the two: every event the connection reports (message, control frame,
 * close) and its payload, hashed (FNV-1a), and counted. Header only: each target includes it
 * once. The connection's user data is the record (wsfwd_config_set_user_data).
 */
#ifndef WSFWD_FUZZ_RECORD_H
#define WSFWD_FUZZ_RECORD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsfwd.h"

#define RECORD_SEED 2166136261u

typedef struct record {
    uint32_t hash;     /* of every event and its payload */
    uint32_t out_hash; /* of the output, for targets that hash it apart */
    size_t events;
    bool echo;    /* send every message back */
    size_t limit; /* a message longer than this aborts (0: no check) */
} record;

static void mix(record *r, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        r->hash = (r->hash ^ b[i]) * 16777619u;
    }
    r->events++;
}

static int on_message(wsfwd_conn *c, wsfwd_opcode op, const uint8_t *data, size_t len, void *ud)
{
    record *r = ud;
    if (r->limit > 0 && len > r->limit) {
        fprintf(stderr, "a %zu-byte message past the %zu-byte limit\n", len, r->limit);
        abort();
    }
    uint8_t tag = (uint8_t)op;
    mix(r, &tag, 1);
    mix(r, data, len);
    if (r->echo) {
        (void)wsfwd_conn_send(c, op, data, len);
    }
    return 0;
}

static int on_control(wsfwd_conn *c, wsfwd_opcode op, const uint8_t *data, size_t len, void *ud)
{
    (void)c;
    record *r = ud;
    uint8_t tag = (uint8_t)(0x10 | op);
    mix(r, &tag, 1);
    mix(r, data, len);
    return 0;
}

static void on_close(wsfwd_conn *c, uint16_t code, const char *reason, size_t len, int err,
                     void *ud)
{
    (void)c;
    record *r = ud;
    mix(r, &code, sizeof code);
    mix(r, &err, sizeof err);
    if (reason != NULL) {
        mix(r, reason, len);
    }
}

/* The connections' randomness (masks, ids): fixed, so both runs write the same bytes. */
static int fixed_random(void *buf, size_t len, void *ud)
{
    (void)ud;
    memset(buf, 0x5a, len);
    return 0;
}

#endif
