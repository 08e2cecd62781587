/*
 * libFuzzer target for what wsfwd --redis reads from Redis and from its command line
 * (cli/cluster_proto.c): the message envelope and the channel name of every published
 * message, and the --redis URL.
 *
 * Byte 0 picks a mode: even, the rest is an envelope (decoded with and without a payload
 * limit; an accepted one must re-encode to the same bytes); odd, the rest is a channel name
 * and, NUL-terminated, a --redis URL. Any inconsistency aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_proto.h"

static void envelope(const uint8_t *data, size_t size)
{
    cluster_envelope e;
    int rc = cluster_envelope_decode(data, size, 0, &e);
    cluster_envelope l;
    int rcl = cluster_envelope_decode(data, size, 64, &l);
    if (rc != CLUSTER_ENV_OK) {
        if (rcl == CLUSTER_ENV_OK || cluster_envelope_strerror(rc) == NULL) {
            abort();
        }
        return;
    }
    if (e.len + CLUSTER_ENVELOPE_HEADER != size || e.payload != data + CLUSTER_ENVELOPE_HEADER ||
        (e.opcode != 1 && e.opcode != 2) ||
        (e.opcode == 1 && !cluster_utf8_valid(e.payload, e.len))) {
        abort();
    }
    if ((rcl == CLUSTER_ENV_OK) != (e.len <= 64)) {
        abort();
    }
    uint8_t *again = malloc(size);
    if (again == NULL) {
        return;
    }
    cluster_envelope_encode(&e, again);
    if (memcmp(again, data, size) != 0) {
        abort();
    }
    free(again);
}

static void channel_and_url(const uint8_t *data, size_t size)
{
    bool global;
    const char *name;
    size_t nlen;
    if (cluster_channel_parse((const char *)data, size, &global, &name, &nlen) == 0) {
        char back[8192];
        size_t n = cluster_channel(global, name, nlen, back, sizeof back);
        if (n != size || memcmp(back, data, size) != 0) {
            abort();
        }
    }
    char *s = malloc(size + 1);
    if (s == NULL) {
        return;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    cluster_url u;
    const char *why = NULL;
    if (cluster_url_parse(s, &u, &why) == 0) {
        if (u.port < 1 || u.port > 65535 || u.host[0] == '\0' || u.db < -1 || u.db > 65535 ||
            strlen(u.host) >= sizeof u.host) {
            abort();
        }
    } else if (why == NULL) {
        abort();
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    if (data[0] % 2 == 0) {
        envelope(data + 1, size - 1);
    } else {
        channel_and_url(data + 1, size - 1);
    }
    return 0;
}
