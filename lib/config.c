#include "config.h"

#include <string.h>

#include "mem.h"
#include "random.h"

/* The default randomness hook: the operating system's. */
static int os_random(void *buf, size_t len, void *ud)
{
    (void)ud;
    return wsfwd_random_bytes(buf, len, 0);
}

int wsfwd_config_new(const wsfwd_allocator *alloc, wsfwd_config **out)
{
    if (out == NULL) {
        return WSFWD_ERR_INVALID;
    }
    wsfwd_allocator a;
    wsfwd_mem_init(&a, alloc);
    wsfwd_config *cfg = wsfwd_mem_alloc(&a, sizeof *cfg);
    if (cfg == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    memset(cfg, 0, sizeof *cfg);
    cfg->alloc = a;
    cfg->max_message = WSFWD_DEFAULT_MAX_MESSAGE;
    cfg->max_header = WSFWD_DEFAULT_MAX_HEADER;
    cfg->max_queue = WSFWD_DEFAULT_MAX_QUEUE;
    cfg->high_mark = WSFWD_DEFAULT_MAX_QUEUE / 2;
    cfg->low_mark = WSFWD_DEFAULT_MAX_QUEUE / 8;
    cfg->slow_timeout_ms = WSFWD_DEFAULT_SLOW_TIMEOUT_MS;
    cfg->slow_policy = WSFWD_SLOW_CLOSE;
    cfg->rings.max_bytes = WSFWD_RING_CACHE_BYTES;
    cfg->random = os_random;
    cfg->deflate_server_bits = 15;
    cfg->deflate_client_bits = 15;
    cfg->deflate_min_size = WSFWD_DEFAULT_DEFLATE_MIN_SIZE;
    *out = cfg;
    return WSFWD_OK;
}

void wsfwd_config_free(wsfwd_config *cfg)
{
    if (cfg != NULL) {
        wsfwd_allocator a = cfg->alloc;
        wsfwd_config_drop_spare(cfg);
        wsfwd_mem_free(&a, cfg->zbuf);
        wsfwd_ringcache_clear(&cfg->rings, &a);
        wsfwd_mem_free(&a, cfg);
    }
}

int wsfwd_config_set_max_message(wsfwd_config *cfg, size_t bytes)
{
    if (cfg == NULL || bytes == 0) {
        return WSFWD_ERR_INVALID;
    }
    cfg->max_message = bytes;
    return WSFWD_OK;
}

int wsfwd_config_set_max_header(wsfwd_config *cfg, size_t bytes)
{
    /* Below a few hundred bytes no real browser's handshake fits. */
    if (cfg == NULL || bytes < 256) {
        return WSFWD_ERR_INVALID;
    }
    cfg->max_header = bytes;
    return WSFWD_OK;
}

int wsfwd_config_set_max_queue(wsfwd_config *cfg, size_t bytes)
{
    if (cfg == NULL || bytes == 0) {
        return WSFWD_ERR_INVALID;
    }
    if (cfg->marks_set && cfg->high_mark > bytes) {
        return WSFWD_ERR_INVALID;
    }
    cfg->max_queue = bytes;
    if (!cfg->marks_set) {
        cfg->high_mark = bytes / 2;
        cfg->low_mark = bytes / 8;
    }
    return WSFWD_OK;
}

int wsfwd_config_set_queue_marks(wsfwd_config *cfg, size_t high, size_t low)
{
    if (cfg == NULL) {
        return WSFWD_ERR_INVALID;
    }
    if (high == 0 && low == 0) {
        cfg->marks_set = false;
        cfg->high_mark = cfg->max_queue / 2;
        cfg->low_mark = cfg->max_queue / 8;
        return WSFWD_OK;
    }
    if (low >= high || high > cfg->max_queue) {
        return WSFWD_ERR_INVALID;
    }
    cfg->marks_set = true;
    cfg->high_mark = high;
    cfg->low_mark = low;
    return WSFWD_OK;
}

int wsfwd_config_set_slow_timeout(wsfwd_config *cfg, uint32_t ms)
{
    if (cfg == NULL) {
        return WSFWD_ERR_INVALID;
    }
    cfg->slow_timeout_ms = ms;
    return WSFWD_OK;
}

/* A deadline of wsfwd_conn_tick, in milliseconds; 0 turns it off. Past 2^31 - 1 (24 days)
   the 32-bit differences it is timed with would not be enough. */
static int set_ms(uint32_t *field, uint32_t ms)
{
    if (field == NULL || ms > (uint32_t)INT32_MAX) {
        return WSFWD_ERR_INVALID;
    }
    *field = ms;
    return WSFWD_OK;
}

int wsfwd_config_set_handshake_timeout(wsfwd_config *cfg, uint32_t ms)
{
    return set_ms(cfg != NULL ? &cfg->handshake_timeout_ms : NULL, ms);
}

int wsfwd_config_set_idle_timeout(wsfwd_config *cfg, uint32_t ms)
{
    return set_ms(cfg != NULL ? &cfg->idle_timeout_ms : NULL, ms);
}

int wsfwd_config_set_pong_timeout(wsfwd_config *cfg, uint32_t ms)
{
    return set_ms(cfg != NULL ? &cfg->pong_timeout_ms : NULL, ms);
}

int wsfwd_config_set_close_timeout(wsfwd_config *cfg, uint32_t ms)
{
    return set_ms(cfg != NULL ? &cfg->close_timeout_ms : NULL, ms);
}

int wsfwd_config_set_slow_policy(wsfwd_config *cfg, wsfwd_slow_policy policy)
{
    if (cfg == NULL || (policy != WSFWD_SLOW_CLOSE && policy != WSFWD_SLOW_DROP)) {
        return WSFWD_ERR_INVALID;
    }
    cfg->slow_policy = policy;
    return WSFWD_OK;
}

int wsfwd_config_set_random(wsfwd_config *cfg, wsfwd_random_fn fn, void *user_data)
{
    if (cfg == NULL || fn == NULL) {
        return WSFWD_ERR_INVALID;
    }
    cfg->random = fn;
    cfg->random_ud = user_data;
    cfg->pool_left = 0;
    return WSFWD_OK;
}

void wsfwd_config_set_user_data(wsfwd_config *cfg, void *user_data)
{
    cfg->user_data = user_data;
}

void wsfwd_config_on_request(wsfwd_config *cfg, wsfwd_on_request_fn fn)
{
    cfg->on_request = fn;
}
void wsfwd_config_on_open(wsfwd_config *cfg, wsfwd_on_open_fn fn)
{
    cfg->on_open = fn;
}
void wsfwd_config_on_message(wsfwd_config *cfg, wsfwd_on_message_fn fn)
{
    cfg->on_message = fn;
}
void wsfwd_config_on_control(wsfwd_config *cfg, wsfwd_on_control_fn fn)
{
    cfg->on_control = fn;
}
void wsfwd_config_on_close(wsfwd_config *cfg, wsfwd_on_close_fn fn)
{
    cfg->on_close = fn;
}
void wsfwd_config_on_output(wsfwd_config *cfg, wsfwd_on_output_fn fn)
{
    cfg->on_output = fn;
}
void wsfwd_config_on_flow(wsfwd_config *cfg, wsfwd_on_flow_fn fn)
{
    cfg->on_flow = fn;
}

int wsfwd_config_random(wsfwd_config *cfg, void *buf, size_t len)
{
    if (len > sizeof cfg->pool) {
        return cfg->random(buf, len, cfg->random_ud) == 0 ? WSFWD_OK : WSFWD_ERR_RANDOM;
    }
    if (cfg->pool_left < len) {
        if (cfg->random(cfg->pool, sizeof cfg->pool, cfg->random_ud) != 0) {
            cfg->pool_left = 0;
            return WSFWD_ERR_RANDOM;
        }
        cfg->pool_left = sizeof cfg->pool;
    }
    /* Hand out from the end and wipe what was handed out. */
    cfg->pool_left -= len;
    memcpy(buf, cfg->pool + cfg->pool_left, len);
    memset(cfg->pool + cfg->pool_left, 0, len);
    return WSFWD_OK;
}

/* ---- permessage-deflate ------------------------------------------------------------------ */

void wsfwd_config_drop_spare(wsfwd_config *cfg)
{
    if (cfg->spare_stream != NULL) {
        cfg->codec.inflate_free(cfg->codec.user_data, cfg->spare_stream);
        cfg->spare_stream = NULL;
    }
}

int wsfwd_config_set_deflate(wsfwd_config *cfg, const wsfwd_deflate_codec *codec, size_t codec_size)
{
    if (cfg == NULL) {
        return WSFWD_ERR_INVALID;
    }
    if (cfg->deflate_conns > 0) {
        return WSFWD_ERR_STATE; /* their streams and state are the codec's */
    }
    wsfwd_deflate_codec c;
    memset(&c, 0, sizeof c);
    if (codec != NULL) {
        /* The members a caller's older header has end within its size; the rest stay NULL. */
        memcpy(&c, codec, codec_size < sizeof c ? codec_size : sizeof c);
        if (c.compress == NULL || c.inflate_new == NULL || c.inflate == NULL ||
            c.inflate_reset == NULL || c.inflate_free == NULL || c.min_window_bits < 0 ||
            c.min_window_bits > 15) {
            return WSFWD_ERR_INVALID;
        }
        if (c.min_window_bits == 0) {
            c.min_window_bits = 8;
        }
    }
    /* A spare stream belongs to the codec that made it. */
    wsfwd_config_drop_spare(cfg);
    cfg->codec = c;
    cfg->has_deflate = codec != NULL;
    return WSFWD_OK;
}

static bool bits_valid(int bits)
{
    return bits >= 8 && bits <= 15;
}

int wsfwd_config_set_deflate_params(wsfwd_config *cfg, int server_window_bits,
                                    int client_window_bits, bool client_no_context_takeover)
{
    if (cfg == NULL || !bits_valid(server_window_bits) || !bits_valid(client_window_bits)) {
        return WSFWD_ERR_INVALID;
    }
    cfg->deflate_server_bits = (uint8_t)server_window_bits;
    cfg->deflate_client_bits = (uint8_t)client_window_bits;
    cfg->deflate_client_no_context = client_no_context_takeover;
    return WSFWD_OK;
}

int wsfwd_config_set_deflate_min_size(wsfwd_config *cfg, size_t bytes)
{
    if (cfg == NULL) {
        return WSFWD_ERR_INVALID;
    }
    cfg->deflate_min_size = bytes;
    return WSFWD_OK;
}
