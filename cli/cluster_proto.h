/*
 * The pure parts of wsfwd's Redis clustering (cluster.c), kept apart so they are unit-tested
 * and fuzzed without Redis: the envelope a message crosses nodes in, the channel of a room,
 * the --redis address, and the reconnection backoff. No I/O, no allocation.
 */
#ifndef WSFWD_CLI_CLUSTER_PROTO_H
#define WSFWD_CLI_CLUSTER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Envelope ------------------------------------------------------------------------------
 *
 * One PUBLISH payload, all fields at fixed offsets, binary-safe:
 *
 *   0   4  magic "wsf" and format version 1 ("wsf\x01")
 *   4   1  opcode: 1 text, 2 binary
 *   5  16  origin node id (random bytes drawn at start)
 *  21   8  sequence number of the message on its origin node, big-endian
 *  29  36  sender's connection id (a UUID, lowercase 8-4-4-4-12)
 *  65   -  the message payload, to the end
 */
#define CLUSTER_NODE_ID_LEN 16
#define CLUSTER_CONN_ID_LEN 36
#define CLUSTER_ENVELOPE_HEADER 65

typedef struct cluster_envelope {
    uint8_t opcode;
    uint8_t node[CLUSTER_NODE_ID_LEN];
    uint64_t seq;
    char sender[CLUSTER_CONN_ID_LEN];
    const uint8_t *payload; /* decode: points into the input */
    size_t len;
} cluster_envelope;

enum cluster_envelope_error {
    CLUSTER_ENV_OK = 0,
    CLUSTER_ENV_SHORT = -1,   /* shorter than the header */
    CLUSTER_ENV_MAGIC = -2,   /* not "wsf" */
    CLUSTER_ENV_VERSION = -3, /* a format version other than 1 */
    CLUSTER_ENV_OPCODE = -4,  /* neither text nor binary */
    CLUSTER_ENV_SENDER = -5,  /* the connection id is not a lowercase UUID */
    CLUSTER_ENV_TOO_BIG = -6, /* the payload passes the limit given */
    CLUSTER_ENV_UTF8 = -7     /* a text payload that is not valid UTF-8 */
};

/* Bytes the envelope of a payload of len bytes takes (0 if that overflows). */
size_t cluster_envelope_size(size_t len);

/* Write e (payload included) to out, which holds cluster_envelope_size(e->len) bytes. */
void cluster_envelope_encode(const cluster_envelope *e, uint8_t *out);

/* Decode in[0..len). Returns CLUSTER_ENV_OK with *e filled (e->payload points into in), or
   the first rule broken; max_payload 0 means no limit. Never reads past in + len. */
int cluster_envelope_decode(const uint8_t *in, size_t len, size_t max_payload, cluster_envelope *e);

/* A short description of a cluster_envelope_error. Static storage. */
const char *cluster_envelope_strerror(int err);

/* Strict UTF-8 (no overlongs, surrogates, nor code points past U+10FFFF). */
bool cluster_utf8_valid(const uint8_t *s, size_t len);

/* ---- Channels ------------------------------------------------------------------------------
 *
 * "wsfwd:global" for the global pool (/ws), "wsfwd:room:" and the room's name bytes as they
 * are (Redis channels are binary-safe) for /ws/<room>. The two forms cannot collide: every
 * room channel starts with "wsfwd:room:", which "wsfwd:global" does not, and the prefix is
 * fixed, so distinct names give distinct channels.
 */
#define CLUSTER_GLOBAL_CHANNEL "wsfwd:global"
#define CLUSTER_ROOM_PREFIX "wsfwd:room:"
#define CLUSTER_ROOM_PREFIX_LEN 11

/* Write the channel to out (cap bytes, not NUL-terminated). Returns its length, or 0 if it
   does not fit. */
size_t cluster_channel(bool global, const char *name, size_t len, char *out, size_t cap);

/* Split a channel back: 0 with *global, or the room name as a view into ch; -1 if it is
   neither form (or a room channel with an empty name). */
int cluster_channel_parse(const char *ch, size_t len, bool *global, const char **name,
                          size_t *name_len);

/* ---- The --redis address -------------------------------------------------------------------
 *
 *   HOST:PORT
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]
 *
 * HOST is a name, an IPv4 address or an [IPv6] address in brackets; PORT 1-65535 (6379 when
 * a URL leaves it out); DB 0-65535. The password and user are taken as written (no
 * percent-decoding) and may not contain '@' or '/'.
 */
typedef struct cluster_url {
    char host[256];
    int port;
    char user[128];     /* "" for none (AUTH with the password only) */
    char password[256]; /* "" for none */
    bool has_password;
    int db; /* -1 when not given */
} cluster_url;

/* Returns 0, or -1 with *why set to a static description. */
int cluster_url_parse(const char *s, cluster_url *u, const char **why);

/* ---- Backoff -------------------------------------------------------------------------------
 *
 * The wait before reconnection attempt `attempt` (0 for the first retry): base doubled per
 * attempt up to max, then jittered down by up to half with rnd (any 32-bit random value), so
 * nodes that lost Redis together do not come back in step. Always between base/2 and max.
 */
uint32_t cluster_backoff_ms(unsigned attempt, uint32_t base, uint32_t max, uint32_t rnd);

#endif
