#include "cluster_proto.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t MAGIC[4] = {'w', 's', 'f', 1};

size_t cluster_envelope_size(size_t len)
{
    return len > SIZE_MAX - CLUSTER_ENVELOPE_HEADER ? 0 : CLUSTER_ENVELOPE_HEADER + len;
}

void cluster_envelope_encode(const cluster_envelope *e, uint8_t *out)
{
    memcpy(out, MAGIC, 4);
    out[4] = e->opcode;
    memcpy(out + 5, e->node, CLUSTER_NODE_ID_LEN);
    for (int i = 0; i < 8; i++) {
        out[21 + i] = (uint8_t)(e->seq >> (56 - 8 * i));
    }
    memcpy(out + 29, e->sender, CLUSTER_CONN_ID_LEN);
    if (e->len > 0) {
        memcpy(out + CLUSTER_ENVELOPE_HEADER, e->payload, e->len);
    }
}

static bool is_uuid(const char *s)
{
    for (int i = 0; i < CLUSTER_CONN_ID_LEN; i++) {
        char ch = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (ch != '-') {
                return false;
            }
        } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            return false;
        }
    }
    return true;
}

int cluster_envelope_decode(const uint8_t *in, size_t len, size_t max_payload, cluster_envelope *e)
{
    if (in == NULL || len < CLUSTER_ENVELOPE_HEADER) {
        return CLUSTER_ENV_SHORT;
    }
    if (memcmp(in, MAGIC, 3) != 0) {
        return CLUSTER_ENV_MAGIC;
    }
    if (in[3] != MAGIC[3]) {
        return CLUSTER_ENV_VERSION;
    }
    if (in[4] != 1 && in[4] != 2) {
        return CLUSTER_ENV_OPCODE;
    }
    if (!is_uuid((const char *)in + 29)) {
        return CLUSTER_ENV_SENDER;
    }
    size_t plen = len - CLUSTER_ENVELOPE_HEADER;
    if (max_payload > 0 && plen > max_payload) {
        return CLUSTER_ENV_TOO_BIG;
    }
    const uint8_t *payload = in + CLUSTER_ENVELOPE_HEADER;
    if (in[4] == 1 && !cluster_utf8_valid(payload, plen)) {
        return CLUSTER_ENV_UTF8;
    }
    e->opcode = in[4];
    memcpy(e->node, in + 5, CLUSTER_NODE_ID_LEN);
    e->seq = 0;
    for (int i = 0; i < 8; i++) {
        e->seq = e->seq << 8 | in[21 + i];
    }
    memcpy(e->sender, in + 29, CLUSTER_CONN_ID_LEN);
    e->payload = payload;
    e->len = plen;
    return CLUSTER_ENV_OK;
}

const char *cluster_envelope_strerror(int err)
{
    switch (err) {
    case CLUSTER_ENV_OK: return "ok";
    case CLUSTER_ENV_SHORT: return "shorter than an envelope header (65 bytes)";
    case CLUSTER_ENV_MAGIC: return "not a wsfwd envelope (bad magic)";
    case CLUSTER_ENV_VERSION: return "unknown envelope version";
    case CLUSTER_ENV_OPCODE: return "opcode neither text nor binary";
    case CLUSTER_ENV_SENDER: return "sender id is not a UUID";
    case CLUSTER_ENV_TOO_BIG: return "payload longer than --max-message";
    case CLUSTER_ENV_UTF8: return "text payload is not valid UTF-8";
    default: return "unknown envelope error";
    }
}

bool cluster_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t b = s[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        uint32_t min;
        if (b >= 0xc2 && b <= 0xdf) {
            n = 1;
            cp = b & 0x1fu;
            min = 0x80;
        } else if (b >= 0xe0 && b <= 0xef) {
            n = 2;
            cp = b & 0x0fu;
            min = 0x800;
        } else if (b >= 0xf0 && b <= 0xf4) {
            n = 3;
            cp = b & 0x07u;
            min = 0x10000;
        } else {
            return false;
        }
        if (len - i <= n) {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            uint8_t c = s[i + k];
            if ((c & 0xc0) != 0x80) {
                return false;
            }
            cp = cp << 6 | (c & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

size_t cluster_channel(bool global, const char *name, size_t len, char *out, size_t cap)
{
    if (global) {
        size_t n = sizeof CLUSTER_GLOBAL_CHANNEL - 1;
        if (cap < n) {
            return 0;
        }
        memcpy(out, CLUSTER_GLOBAL_CHANNEL, n);
        return n;
    }
    if (len == 0 || cap < CLUSTER_ROOM_PREFIX_LEN || cap - CLUSTER_ROOM_PREFIX_LEN < len) {
        return 0;
    }
    memcpy(out, CLUSTER_ROOM_PREFIX, CLUSTER_ROOM_PREFIX_LEN);
    memcpy(out + CLUSTER_ROOM_PREFIX_LEN, name, len);
    return CLUSTER_ROOM_PREFIX_LEN + len;
}

int cluster_channel_parse(const char *ch, size_t len, bool *global, const char **name,
                          size_t *name_len)
{
    size_t g = sizeof CLUSTER_GLOBAL_CHANNEL - 1;
    if (len == g && memcmp(ch, CLUSTER_GLOBAL_CHANNEL, g) == 0) {
        *global = true;
        *name = NULL;
        *name_len = 0;
        return 0;
    }
    if (len > CLUSTER_ROOM_PREFIX_LEN &&
        memcmp(ch, CLUSTER_ROOM_PREFIX, CLUSTER_ROOM_PREFIX_LEN) == 0) {
        *global = false;
        *name = ch + CLUSTER_ROOM_PREFIX_LEN;
        *name_len = len - CLUSTER_ROOM_PREFIX_LEN;
        return 0;
    }
    return -1;
}

/* Copy s[0..n) into out[cap] as a string; -1 if it does not fit. */
static int copy_part(char *out, size_t cap, const char *s, size_t n)
{
    if (n >= cap) {
        return -1;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* A decimal number of 1 to 5 digits from lo to hi, the whole of s[0..n). */
static int parse_num(const char *s, size_t n, long lo, long hi)
{
    if (n == 0 || n > 5) {
        return -1;
    }
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v < lo || v > hi ? -1 : (int)v;
}

/* HOST[:PORT] where HOST may be [IPv6]. */
static int parse_hostport(const char *s, size_t n, bool port_required, cluster_url *u,
                          const char **why)
{
    const char *host = s;
    size_t hlen;
    const char *rest;
    if (n > 0 && s[0] == '[') {
        const char *end = memchr(s, ']', n);
        if (end == NULL) {
            *why = "an IPv6 address without its closing ']'";
            return -1;
        }
        host = s + 1;
        hlen = (size_t)(end - host);
        rest = end + 1;
    } else {
        const char *colon = memchr(s, ':', n);
        hlen = colon != NULL ? (size_t)(colon - s) : n;
        rest = s + hlen;
    }
    size_t rlen = (size_t)(s + n - rest);
    if (hlen == 0) {
        *why = "no host";
        return -1;
    }
    if (copy_part(u->host, sizeof u->host, host, hlen) != 0) {
        *why = "host name too long";
        return -1;
    }
    for (size_t i = 0; i < hlen; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '@' || ch == '/' || ch == '[' || ch == ']' ||
            ch == '"' || ch == '\\') {
            *why = "a character not allowed in a host";
            return -1;
        }
    }
    if (rlen == 0) {
        if (port_required) {
            *why = "no port (HOST:PORT)";
            return -1;
        }
        u->port = 6379;
        return 0;
    }
    if (rest[0] != ':') {
        *why = "garbage after the host";
        return -1;
    }
    int port = parse_num(rest + 1, rlen - 1, 1, 65535);
    if (port < 0) {
        *why = "the port is not a number from 1 to 65535";
        return -1;
    }
    u->port = port;
    return 0;
}

int cluster_url_parse(const char *s, cluster_url *u, const char **why)
{
    static const char scheme[] = "redis://";
    const size_t slen = sizeof scheme - 1;
    memset(u, 0, sizeof *u);
    u->db = -1;
    if (s == NULL || s[0] == '\0') {
        *why = "empty";
        return -1;
    }
    size_t n = strlen(s);
    if (n < slen || memcmp(s, scheme, slen) != 0) {
        if (strstr(s, "://") != NULL) {
            *why = "only redis:// URLs are understood";
            return -1;
        }
        return parse_hostport(s, n, true, u, why);
    }
    s += slen;
    n -= slen;
    const char *at = memchr(s, '@', n);
    if (at != NULL) {
        size_t ulen = (size_t)(at - s);
        const char *colon = memchr(s, ':', ulen);
        if (colon == NULL) {
            *why = "credentials need ':' before the password (redis://:PASSWORD@HOST)";
            return -1;
        }
        if (memchr(s, '/', ulen) != NULL || memchr(at + 1, '@', n - ulen - 1) != NULL) {
            *why = "'/' or a second '@' in the credentials";
            return -1;
        }
        if (copy_part(u->user, sizeof u->user, s, (size_t)(colon - s)) != 0 ||
            copy_part(u->password, sizeof u->password, colon + 1, (size_t)(at - colon - 1)) != 0) {
            *why = "user or password too long";
            return -1;
        }
        u->has_password = true;
        n -= ulen + 1;
        s = at + 1;
    }
    const char *slash = memchr(s, '/', n);
    size_t hplen = slash != NULL ? (size_t)(slash - s) : n;
    if (parse_hostport(s, hplen, false, u, why) != 0) {
        return -1;
    }
    if (slash != NULL) {
        size_t dlen = n - hplen - 1;
        if (dlen > 0) {
            int db = parse_num(slash + 1, dlen, 0, 65535);
            if (db < 0) {
                *why = "the database is not a number from 0 to 65535";
                return -1;
            }
            u->db = db;
        }
    }
    return 0;
}

uint32_t cluster_backoff_ms(unsigned attempt, uint32_t base, uint32_t max, uint32_t rnd)
{
    if (base == 0) {
        base = 1;
    }
    if (max < base) {
        max = base;
    }
    uint64_t d = base;
    for (unsigned i = 0; i < attempt && d < max; i++) {
        d *= 2;
    }
    if (d > max) {
        d = max;
    }
    uint64_t jitter = rnd % (d / 2 + 1);
    return (uint32_t)(d - jitter);
}
