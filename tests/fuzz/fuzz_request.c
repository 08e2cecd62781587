/*
 * libFuzzer target for the server-side handshake parser and its responses.
 *
 * Input: byte 0 and byte 1 pick two cut points, byte 2 the header limit; the rest is the
 * request. It is fed in three pieces and also whole: both runs must agree on everything
 * observable, or the target aborts. Every accessor is called and every kind of response is
 * written; a 101 must be accepted by the client-side response check. A copy of a complete
 * request must report the same as the original did.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsfwd.h"

static uint32_t hash_str(uint32_t h, wsfwd_str s)
{
    h = (h ^ (uint32_t)s.len) * 16777619u;
    h = (h ^ (s.ptr != NULL)) * 16777619u;
    for (size_t i = 0; i < s.len; i++) {
        h = (h ^ (uint8_t)s.ptr[i]) * 16777619u;
    }
    return h;
}

/* Everything the accessors report, folded into one number. */
static uint32_t observe(const wsfwd_request *req)
{
    uint32_t h = 2166136261u;
    h = (h ^ (uint32_t)wsfwd_request_check(req)) * 16777619u;
    h = (h ^ (uint32_t)wsfwd_request_status(req)) * 16777619u;
    h = (h ^ (uint32_t)wsfwd_request_is_upgrade(req)) * 16777619u;
    h = hash_str(h, wsfwd_request_method(req));
    h = hash_str(h, wsfwd_request_target(req));
    h = hash_str(h, wsfwd_request_path(req));
    h = hash_str(h, wsfwd_request_query(req));
    h = hash_str(h, wsfwd_request_host(req));
    h = hash_str(h, wsfwd_request_origin(req));
    h = hash_str(h, wsfwd_request_key(req));
    h = hash_str(h, wsfwd_request_header(req, "upgrade"));
    h = hash_str(h, wsfwd_request_header(req, "X-Unknown"));
    size_t n = wsfwd_request_subprotocol_count(req);
    for (size_t i = 0; i <= n; i++) {
        h = hash_str(h, wsfwd_request_subprotocol(req, i));
    }
    return h;
}

static void write_response(const wsfwd_request *req, int status, const char *proto)
{
    size_t need = 0;
    int rc = wsfwd_request_write_response(req, status, proto, NULL, 0, &need);
    if (rc != WSFWD_ERR_NOBUFS) {
        return;
    }
    char *buf = malloc(need);
    if (buf == NULL) {
        return;
    }
    size_t len = 0;
    if (wsfwd_request_write_response(req, status, proto, buf, need, &len) != WSFWD_OK ||
        len != need) {
        abort();
    }
    if (status == 101) {
        /* Our own client must accept what our server writes. */
        wsfwd_str key = wsfwd_request_key(req);
        char k[WSFWD_KEY_LEN + 1];
        memcpy(k, key.ptr, WSFWD_KEY_LEN);
        k[WSFWD_KEY_LEN] = '\0';
        wsfwd_response *resp;
        size_t used;
        if (wsfwd_response_new(NULL, 0, &resp) != WSFWD_OK) {
            abort();
        }
        if (wsfwd_response_feed(resp, (const uint8_t *)buf, len, &used) != WSFWD_OK ||
            used != len || wsfwd_response_check(resp, k, proto) != WSFWD_OK) {
            abort();
        }
        wsfwd_response_free(resp);
    }
    free(buf);
}

static void write_responses(const wsfwd_request *req)
{
    write_response(req, 101, NULL);
    size_t n = wsfwd_request_subprotocol_count(req);
    for (size_t i = 0; i < n && i < 4; i++) {
        wsfwd_str p = wsfwd_request_subprotocol(req, i);
        char name[256];
        if (p.len < sizeof name) {
            memcpy(name, p.ptr, p.len);
            name[p.len] = '\0';
            write_response(req, 101, name);
        }
    }
    write_response(req, 101, "not-offered");
    const int statuses[] = {400, 403, 404, 405, 426, 431, 503, 99, 204, 600};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        write_response(req, statuses[i], NULL);
    }
    int own = wsfwd_request_status(req);
    if (own != 0) {
        write_response(req, own, NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) {
        return 0;
    }
    size_t body = size - 3;
    size_t cut1 = body == 0 ? 0 : data[0] % (body + 1);
    size_t cut2 = body == 0 ? 0 : cut1 + data[1] % (body - cut1 + 1);
    size_t max = data[2] < 128 ? 0 : (size_t)data[2] * 4;
    const uint8_t *req_bytes = data + 3;

    wsfwd_request *whole, *split;
    if (wsfwd_request_new(NULL, max, &whole) != WSFWD_OK ||
        wsfwd_request_new(NULL, max, &split) != WSFWD_OK) {
        abort();
    }
    size_t used_whole = 0;
    int rc_whole = wsfwd_request_feed(whole, req_bytes, body, &used_whole);

    const size_t bounds[4] = {0, cut1, cut2, body};
    size_t used_split = 0;
    int rc_split = WSFWD_INCOMPLETE;
    for (int i = 0; i < 3 && rc_split == WSFWD_INCOMPLETE; i++) {
        size_t used = 0;
        rc_split =
            wsfwd_request_feed(split, req_bytes + bounds[i], bounds[i + 1] - bounds[i], &used);
        used_split += used;
    }
    if (rc_whole != rc_split || used_whole != used_split || observe(whole) != observe(split)) {
        abort();
    }
    write_responses(whole);
    /* A copy, made only of a complete request, reports the same once the original is gone. */
    wsfwd_request *copy = NULL;
    int rc_copy = wsfwd_request_copy(split, NULL, &copy);
    if ((rc_copy == WSFWD_OK) != (rc_split == WSFWD_OK)) {
        abort();
    }
    if (copy != NULL) {
        uint32_t before = observe(split);
        wsfwd_request_free(split);
        split = NULL;
        if (observe(copy) != before) {
            abort();
        }
        wsfwd_request_free(copy);
    }
    wsfwd_request_free(whole);
    wsfwd_request_free(split);
    return 0;
}
