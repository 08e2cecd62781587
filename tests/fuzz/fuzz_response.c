/*
 * libFuzzer target for the client-side response parser and check.
 *
 * Input: byte 0 and byte 1 pick two cut points, byte 2 the offered subprotocols; the rest is
 * the response. It is fed in three pieces and also whole: both runs must agree on the
 * result, the bytes taken, the status and the checks, or the target aborts.
 */
#include <stdint.h>
#include <stdlib.h>

#include "wsfwd.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

static uint32_t hash_str(uint32_t h, wsfwd_str s)
{
    h = (h ^ (uint32_t)s.len) * 16777619u;
    h = (h ^ (s.ptr != NULL)) * 16777619u;
    for (size_t i = 0; i < s.len; i++) {
        h = (h ^ (uint8_t)s.ptr[i]) * 16777619u;
    }
    return h;
}

static uint32_t observe(const wsfwd_response *resp, const char *offered)
{
    uint32_t h = 2166136261u;
    h = (h ^ (uint32_t)wsfwd_response_status(resp)) * 16777619u;
    h = (h ^ (uint32_t)wsfwd_response_check(resp, KEY, offered)) * 16777619u;
    h = (h ^ (uint32_t)wsfwd_response_check(resp, "AAAAAAAAAAAAAAAAAAAAAA==", NULL)) * 16777619u;
    h = hash_str(h, wsfwd_response_subprotocol(resp));
    h = hash_str(h, wsfwd_response_header(resp, "upgrade"));
    h = hash_str(h, wsfwd_response_header(resp, "Sec-WebSocket-Accept"));
    h = hash_str(h, wsfwd_response_header(resp, NULL));
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) {
        return 0;
    }
    static const char *const offers[] = {NULL, "chat", "chat, superchat", ""};
    const char *offered = offers[data[2] % 4];
    size_t body = size - 3;
    size_t cut1 = body == 0 ? 0 : data[0] % (body + 1);
    size_t cut2 = body == 0 ? 0 : cut1 + data[1] % (body - cut1 + 1);
    size_t max = data[2] < 128 ? 0 : (size_t)data[2];
    const uint8_t *bytes = data + 3;

    wsfwd_response *whole, *split;
    if (wsfwd_response_new(NULL, max, &whole) != WSFWD_OK ||
        wsfwd_response_new(NULL, max, &split) != WSFWD_OK) {
        abort();
    }
    size_t used_whole = 0;
    int rc_whole = wsfwd_response_feed(whole, bytes, body, &used_whole);

    const size_t bounds[4] = {0, cut1, cut2, body};
    size_t used_split = 0;
    int rc_split = WSFWD_INCOMPLETE;
    for (int i = 0; i < 3 && rc_split == WSFWD_INCOMPLETE; i++) {
        size_t used = 0;
        rc_split = wsfwd_response_feed(split, bytes + bounds[i], bounds[i + 1] - bounds[i], &used);
        used_split += used;
    }
    if (rc_whole != rc_split || used_whole != used_split ||
        observe(whole, offered) != observe(split, offered)) {
        abort();
    }
    if (rc_whole == WSFWD_OK && wsfwd_response_status(whole) == 0) {
        abort();
    }
    wsfwd_response_free(whole);
    wsfwd_response_free(split);
    return 0;
}
