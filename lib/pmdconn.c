/*
 * permessage-deflate on a connection: its negotiated parameters and inflate stream, the
 * config's spare stream, and compression into the config's scratch buffer.
 */
#include "pmdconn.h"

#include <string.h>

#include "mem.h"

const uint8_t wsfwd_pmd_tail[WSFWD_PMD_TAIL_LEN] = {0x00, 0x00, 0xFF, 0xFF};

void wsfwd_pmdc_policy(const wsfwd_config *cfg, wsfwd_pmd_policy *p)
{
    wsfwd_pmd_policy_init(p);
    uint8_t min = (uint8_t)cfg->codec.min_window_bits;
    p->client_no_context_takeover = cfg->deflate_client_no_context;
    p->server_min_window_bits = min;
    p->server_max_window_bits = cfg->deflate_server_bits < min ? min : cfg->deflate_server_bits;
    p->client_max_window_bits = cfg->deflate_client_bits;
}

void wsfwd_pmdc_want(const wsfwd_config *cfg, wsfwd_pmd_params *want)
{
    /* As a client, this end compresses with the client's window, each message on its own. */
    uint8_t min = (uint8_t)cfg->codec.min_window_bits;
    want->client_no_context_takeover = cfg->deflate_client_no_context;
    want->server_no_context_takeover = false;
    want->server_max_window_bits = cfg->deflate_server_bits;
    want->client_max_window_bits = cfg->deflate_client_bits < min ? min : cfg->deflate_client_bits;
}

wsfwd_pmdc *wsfwd_pmdc_new(wsfwd_config *cfg, const wsfwd_pmd_params *p, wsfwd_role role)
{
    wsfwd_pmdc *z = wsfwd_mem_alloc(&cfg->alloc, sizeof *z);
    if (z != NULL) {
        memset(z, 0, sizeof *z);
        z->params = *p;
        z->role = (uint8_t)role;
        cfg->deflate_conns++;
    }
    return z;
}

void wsfwd_pmdc_free(wsfwd_config *cfg, wsfwd_pmdc *z)
{
    if (z == NULL) {
        return;
    }
    if (z->stream != NULL) {
        cfg->codec.inflate_free(cfg->codec.user_data, z->stream);
    }
    wsfwd_mem_free(&cfg->alloc, z->held);
    cfg->deflate_conns--;
    wsfwd_mem_free(&cfg->alloc, z);
}

int wsfwd_pmdc_send_bits(const wsfwd_pmdc *z)
{
    return z->role == WSFWD_ROLE_SERVER ? z->params.server_max_window_bits
                                        : z->params.client_max_window_bits;
}

/* Whether the peer compresses each message with a fresh context. */
static bool peer_resets(const wsfwd_pmdc *z)
{
    return z->role == WSFWD_ROLE_SERVER ? z->params.client_no_context_takeover
                                        : z->params.server_no_context_takeover;
}

/* The window the peer compresses with: our inflate stream's. */
static uint8_t peer_bits(const wsfwd_pmdc *z)
{
    return z->role == WSFWD_ROLE_SERVER ? z->params.client_max_window_bits
                                        : z->params.server_max_window_bits;
}

void *wsfwd_pmdc_stream(wsfwd_config *cfg, wsfwd_pmdc *z)
{
    if (z->stream != NULL) {
        return z->stream;
    }
    uint8_t bits = peer_bits(z);
    if (peer_resets(z) && cfg->spare_stream != NULL && cfg->spare_bits == bits) {
        z->stream = cfg->spare_stream;
        cfg->spare_stream = NULL;
    } else {
        z->stream = cfg->codec.inflate_new(cfg->codec.user_data, bits);
    }
    z->bits = bits;
    return z->stream;
}

void wsfwd_pmdc_message_end(wsfwd_config *cfg, wsfwd_pmdc *z)
{
    bool ended = z->ended;
    z->ended = false;
    if (z->stream == NULL || (!peer_resets(z) && !ended)) {
        return;
    }
    cfg->codec.inflate_reset(cfg->codec.user_data, z->stream);
    if (!peer_resets(z)) {
        return;
    }
    /* Idle connections hold no stream: the config keeps one for the next message. */
    wsfwd_config_drop_spare(cfg);
    cfg->spare_stream = z->stream;
    cfg->spare_bits = z->bits;
    z->stream = NULL;
}

size_t wsfwd_pmdc_compress(wsfwd_config *cfg, int bits, const uint8_t *in, size_t len,
                           const uint8_t **out)
{
    if (len > (SIZE_MAX - 64) / 9 * 8) {
        return 0;
    }
    size_t cap = len + len / 8 + 64;
    if (cfg->zbuf_cap < cap) {
        uint8_t *b = wsfwd_mem_realloc(&cfg->alloc, cfg->zbuf, cap);
        if (b == NULL) {
            return 0;
        }
        cfg->zbuf = b;
        cfg->zbuf_cap = cap;
    }
    size_t n = cfg->codec.compress(cfg->codec.user_data, bits, in, len, cfg->zbuf, cap);
    if (n == 0 || n >= len) {
        return 0;
    }
    *out = cfg->zbuf;
    return n;
}
