/*
 * libFuzzer target for the permessage-deflate negotiation (lib/pmd.c).
 *
 * Input: byte 0 picks the server's policy, byte 1 the client's offer parameters; the rest
 * is Sec-WebSocket-Extensions field values separated by '\n' (at most 8 fields).
 * - As offers: the result is 1, 0 or malformed; an accepted offer's answer is well formed,
 *   keeps to the policy, and a client that offered nothing in particular accepts it with the
 *   same parameters (the answer never asks what no offer could allow).
 * - As an answer: the result is 1, 0 or an extension error; when accepted, the parameters
 *   keep to what the offer asked.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pmd.h"

#define MAX_FIELDS 8

static void check_accept(const wsfwd_str *v, size_t n, uint8_t pick)
{
    wsfwd_pmd_policy pol;
    wsfwd_pmd_policy_init(&pol);
    pol.client_no_context_takeover = (pick & 1) != 0;
    pol.server_max_window_bits = (uint8_t)(15 - ((pick >> 1) & 3));
    pol.server_min_window_bits = (pick & 8) ? 9 : 8;
    pol.client_max_window_bits = (uint8_t)(15 - ((pick >> 4) & 7));

    wsfwd_pmd_params p;
    char text[WSFWD_PMD_TEXT_MAX];
    int rc = wsfwd_pmd_accept(v, n, &pol, &p, text, sizeof text);
    if (rc != 1 && rc != 0 && rc != WSFWD_ERR_HTTP_MALFORMED) {
        abort();
    }
    if (rc != 1) {
        return;
    }
    if (!p.server_no_context_takeover || p.server_max_window_bits > pol.server_max_window_bits ||
        p.server_max_window_bits < pol.server_min_window_bits ||
        p.client_max_window_bits < WSFWD_PMD_MIN_BITS ||
        p.client_max_window_bits > WSFWD_PMD_MAX_BITS ||
        (pol.client_no_context_takeover && !p.client_no_context_takeover)) {
        abort();
    }
    /* A client that offered "permessage-deflate; client_max_window_bits" accepts any answer
       that is valid for some offer; it sees the same parameters (its own no_context_takeover
       aside, which only the offer's text could have asked). */
    wsfwd_pmd_params want = {false, false, 15, 15}, seen;
    wsfwd_str answer = {text, strlen(text)};
    if (wsfwd_pmd_check_response(&answer, 1, &want, &seen) != 1 ||
        seen.server_no_context_takeover != p.server_no_context_takeover ||
        seen.client_no_context_takeover != p.client_no_context_takeover ||
        seen.server_max_window_bits != p.server_max_window_bits ||
        seen.client_max_window_bits != p.client_max_window_bits) {
        abort();
    }
}

static void check_answer(const wsfwd_str *v, size_t n, uint8_t pick)
{
    wsfwd_pmd_params want = {(pick & 1) != 0, (pick & 2) != 0, (uint8_t)(15 - ((pick >> 2) & 7)),
                             (uint8_t)(15 - ((pick >> 5) & 7))};
    char offer[WSFWD_PMD_TEXT_MAX];
    if (wsfwd_pmd_write_offer(&want, offer, sizeof offer) <= 0) {
        abort();
    }
    wsfwd_pmd_params out;
    int rc = wsfwd_pmd_check_response(v, n, &want, &out);
    if (rc != 1 && rc != 0 && rc != WSFWD_ERR_HS_EXTENSION) {
        abort();
    }
    if (rc == 1 && (out.server_max_window_bits > want.server_max_window_bits ||
                    out.client_max_window_bits > want.client_max_window_bits ||
                    out.server_max_window_bits < WSFWD_PMD_MIN_BITS ||
                    out.client_max_window_bits < WSFWD_PMD_MIN_BITS ||
                    (want.server_no_context_takeover && !out.server_no_context_takeover) ||
                    (want.client_no_context_takeover && !out.client_no_context_takeover))) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    /* Each field in a heap block of its own size, so ASan sees a read past its end. */
    wsfwd_str v[MAX_FIELDS];
    char *blocks[MAX_FIELDS];
    size_t n = 0, start = 2;
    for (size_t i = 2; i <= size && n < MAX_FIELDS; i++) {
        if (i == size || data[i] == '\n') {
            size_t len = i - start;
            blocks[n] = malloc(len > 0 ? len : 1);
            if (blocks[n] == NULL) {
                abort();
            }
            memcpy(blocks[n], data + start, len);
            v[n].ptr = blocks[n];
            v[n].len = len;
            n++;
            start = i + 1;
        }
    }
    check_accept(v, n, data[0]);
    check_answer(v, n, data[1]);
    for (size_t i = 0; i < n; i++) {
        free(blocks[i]);
    }
    return 0;
}
