/*
 * permessage-deflate negotiation (RFC 7692 sections 5 to 7). See pmd.h for the rules.
 *
 * The Sec-WebSocket-Extensions syntax is read by a cursor over one field value: ext_next()
 * gives the next extension's name, then param_next() each of its parameters, until the
 * element ends. Every field is read to its end, also after an acceptable offer, so a
 * malformed header is refused whatever its order.
 */
#include "pmd.h"

#include <string.h>

#include "httpchar.h"

/* ---- Sec-WebSocket-Extensions syntax --------------------------------------------------- */

#define MALFORMED (-1)
#define VALUE_MAX 8 /* longer values are kept as "too long": no known value is */

typedef struct cursor {
    const char *s;
    size_t len;
    size_t i;
} cursor;

typedef struct param {
    wsfwd_str name;
    bool has_value;
    bool too_long; /* the value did not fit in value[] */
    size_t value_len;
    char value[VALUE_MAX]; /* unescaped */
} param;

static void skip_ows(cursor *c)
{
    while (c->i < c->len && wsfwd_is_ows(c->s[c->i])) {
        c->i++;
    }
}

static bool at(const cursor *c, char ch)
{
    return c->i < c->len && c->s[c->i] == ch;
}

static bool take_token(cursor *c, wsfwd_str *out)
{
    size_t start = c->i;
    while (c->i < c->len && wsfwd_is_tchar((unsigned char)c->s[c->i])) {
        c->i++;
    }
    out->ptr = c->s + start;
    out->len = c->i - start;
    return out->len > 0;
}

static void value_put(param *p, char ch)
{
    if (p->value_len < VALUE_MAX) {
        p->value[p->value_len] = ch;
    } else {
        p->too_long = true;
    }
    p->value_len++;
}

/* qdtext and the escaped byte of a quoted-pair: HTAB, SP, VCHAR, obs-text (no '"' in qdtext). */
static bool is_quoted_char(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7F);
}

/* A quoted-string at the cursor, unescaped into p; after unescaping it must be a token. */
static bool take_quoted(cursor *c, param *p)
{
    c->i++; /* the opening quote */
    bool token = true;
    for (;;) {
        if (c->i >= c->len) {
            return false;
        }
        unsigned char ch = (unsigned char)c->s[c->i++];
        if (ch == '"') {
            break;
        }
        if (ch == '\\') {
            if (c->i >= c->len) {
                return false;
            }
            ch = (unsigned char)c->s[c->i++];
        }
        if (!is_quoted_char(ch)) {
            return false;
        }
        token = token && wsfwd_is_tchar(ch);
        value_put(p, (char)ch);
    }
    return token && p->value_len > 0;
}

static bool take_value(cursor *c, param *p)
{
    p->has_value = true;
    if (at(c, '"')) {
        return take_quoted(c, p);
    }
    wsfwd_str t;
    if (!take_token(c, &t)) {
        return false;
    }
    for (size_t k = 0; k < t.len; k++) {
        value_put(p, t.ptr[k]);
    }
    return true;
}

/* The next extension of the field: 1 (its name in *name), 0 at the end, or MALFORMED. */
static int ext_next(cursor *c, wsfwd_str *name)
{
    for (;;) {
        skip_ows(c);
        if (c->i >= c->len) {
            return 0;
        }
        if (!at(c, ',')) {
            break;
        }
        c->i++; /* an empty list element */
    }
    return take_token(c, name) ? 1 : MALFORMED;
}

/* The next parameter of the current extension: 1, 0 when the extension ends, or MALFORMED. */
static int param_next(cursor *c, param *p)
{
    skip_ows(c);
    if (c->i >= c->len) {
        return 0;
    }
    if (at(c, ',')) {
        c->i++;
        return 0;
    }
    if (!at(c, ';')) {
        return MALFORMED;
    }
    c->i++;
    skip_ows(c);
    memset(p, 0, sizeof *p);
    if (!take_token(c, &p->name)) {
        return MALFORMED;
    }
    skip_ows(c);
    if (at(c, '=')) {
        c->i++;
        skip_ows(c);
        if (!take_value(c, p)) {
            return MALFORMED;
        }
    }
    return 1;
}

static bool str_is(wsfwd_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* ---- One offer or answer of permessage-deflate ----------------------------------------- */

enum { P_SNCT, P_CNCT, P_SMWB, P_CMWB, P_KINDS };

static const char *const param_names[P_KINDS] = {
    "server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits",
    "client_max_window_bits"};

typedef struct pmd_text {
    bool valid; /* every parameter known, once, with an allowed value */
    bool seen[P_KINDS];
    uint8_t bits[P_KINDS]; /* for the window sizes: 8..15, or 0 when given without a value */
} pmd_text;

/* "8" to "15", without leading zeros; 0 for anything else. */
static uint8_t window_bits(const param *p)
{
    if (!p->has_value || p->too_long) {
        return 0;
    }
    const char *v = p->value;
    if (p->value_len == 1 && (v[0] == '8' || v[0] == '9')) {
        return (uint8_t)(v[0] - '0');
    }
    if (p->value_len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') {
        return (uint8_t)(10 + v[1] - '0');
    }
    return 0;
}

/* Record one parameter of a permessage-deflate element (value rules in pmd.h). */
static void pmd_param(pmd_text *t, const param *p)
{
    int kind = 0;
    while (kind < P_KINDS && !str_is(p->name, param_names[kind])) {
        kind++;
    }
    if (kind == P_KINDS || t->seen[kind]) {
        t->valid = false;
        return;
    }
    t->seen[kind] = true;
    if (kind == P_SNCT || kind == P_CNCT) {
        t->valid = t->valid && !p->has_value;
        return;
    }
    t->bits[kind] = window_bits(p);
    /* Only client_max_window_bits may come without a value (in an offer). */
    if (t->bits[kind] == 0 && (p->has_value || kind == P_SMWB)) {
        t->valid = false;
    }
}

/* Read the parameters of the element at the cursor: into *t when it is given, else only
   checked for syntax. Returns 0 or MALFORMED. */
static int read_params(cursor *c, pmd_text *t)
{
    param p;
    int rc;
    if (t != NULL) {
        memset(t, 0, sizeof *t);
        t->valid = true;
    }
    while ((rc = param_next(c, &p)) == 1) {
        if (t != NULL) {
            pmd_param(t, &p);
        }
    }
    return rc;
}

static uint8_t min_bits(uint8_t a, uint8_t b)
{
    return a < b ? a : b;
}

/* ---- Server ---------------------------------------------------------------------------- */

void wsfwd_pmd_policy_init(wsfwd_pmd_policy *p)
{
    memset(p, 0, sizeof *p);
    p->server_max_window_bits = WSFWD_PMD_MAX_BITS;
    p->server_min_window_bits = WSFWD_PMD_MIN_BITS;
    p->client_max_window_bits = WSFWD_PMD_MAX_BITS;
}

/* The parameters for an acceptable offer, or false when the policy declines it. */
static bool choose(const pmd_text *o, const wsfwd_pmd_policy *pol, wsfwd_pmd_params *out)
{
    if (!o->valid) {
        return false;
    }
    uint8_t offered = o->seen[P_SMWB] ? o->bits[P_SMWB] : WSFWD_PMD_MAX_BITS;
    uint8_t server_bits = min_bits(pol->server_max_window_bits, offered);
    if (server_bits < pol->server_min_window_bits) {
        return false; /* the compressor cannot keep to so small a window */
    }
    out->server_no_context_takeover = true;
    out->client_no_context_takeover = o->seen[P_CNCT] || pol->client_no_context_takeover;
    out->server_max_window_bits = server_bits;
    out->client_max_window_bits = WSFWD_PMD_MAX_BITS;
    if (o->seen[P_CMWB]) { /* only then may the answer lower the client's window */
        uint8_t hint = o->bits[P_CMWB] != 0 ? o->bits[P_CMWB] : WSFWD_PMD_MAX_BITS;
        out->client_max_window_bits = min_bits(pol->client_max_window_bits, hint);
    }
    return true;
}

typedef struct writer {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
} writer;

/* Append text, then bits (8..15) in decimal unless 0. */
static void put(writer *w, const char *text, uint8_t bits)
{
    char num[3] = "";
    if (bits >= 10) {
        num[0] = '1';
        num[1] = (char)('0' + bits - 10);
    } else if (bits != 0) {
        num[0] = (char)('0' + bits);
    }
    size_t a = strlen(text), b = strlen(num);
    if (w->len + a + b + 1 > w->cap) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, text, a);
    memcpy(w->buf + w->len + a, num, b);
    w->len += a + b;
    w->buf[w->len] = '\0';
}

static int finish(const writer *w)
{
    if (w->overflow) {
        if (w->cap > 0) {
            w->buf[0] = '\0';
        }
        return WSFWD_ERR_NOBUFS;
    }
    return (int)w->len;
}

/*
 * "permessage-deflate" and p's parameters: the no_context_takeover ones when set,
 * server_max_window_bits when server_bits says, client_max_window_bits with its value when
 * below 15, else bare if client_bits_bare (an offer that lets the server lower it).
 */
static int write_params(const wsfwd_pmd_params *p, bool server_bits, bool client_bits_bare,
                        char *buf, size_t cap)
{
    writer w = {buf, cap, 0, false};
    put(&w, WSFWD_PMD_NAME, 0);
    if (p->server_no_context_takeover) {
        put(&w, "; server_no_context_takeover", 0);
    }
    if (p->client_no_context_takeover) {
        put(&w, "; client_no_context_takeover", 0);
    }
    if (server_bits) {
        put(&w, "; server_max_window_bits=", p->server_max_window_bits);
    }
    if (p->client_max_window_bits < WSFWD_PMD_MAX_BITS) {
        put(&w, "; client_max_window_bits=", p->client_max_window_bits);
    } else if (client_bits_bare) {
        put(&w, "; client_max_window_bits", 0);
    }
    return finish(&w);
}

/* Call fn for each extension of the fields, in order, with the cursor on its parameters
   (fn must read them all). Returns 0, MALFORMED, or fn's error. */
typedef int (*ext_fn)(void *ctx, wsfwd_str name, cursor *c);

static int each_extension(const wsfwd_str *values, size_t n, ext_fn fn, void *ctx)
{
    for (size_t v = 0; v < n; v++) {
        cursor c = {values[v].ptr, values[v].len, 0};
        wsfwd_str name;
        int rc;
        while ((rc = ext_next(&c, &name)) == 1) {
            int frc = fn(ctx, name, &c);
            if (frc != 0) {
                return frc;
            }
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

typedef struct server_choice {
    const wsfwd_pmd_policy *policy;
    wsfwd_pmd_params *out;
    bool chosen;
    bool server_bits_offered;
} server_choice;

static int server_offer(void *ctx, wsfwd_str name, cursor *c)
{
    server_choice *sc = ctx;
    bool ours = !sc->chosen && str_is(name, WSFWD_PMD_NAME);
    pmd_text offer;
    if (read_params(c, ours ? &offer : NULL) != 0) {
        return MALFORMED;
    }
    if (ours && choose(&offer, sc->policy, sc->out)) {
        sc->chosen = true;
        sc->server_bits_offered = offer.seen[P_SMWB];
    }
    return 0;
}

int wsfwd_pmd_accept(const wsfwd_str *values, size_t n, const wsfwd_pmd_policy *policy,
                     wsfwd_pmd_params *out, char *buf, size_t cap)
{
    if ((values == NULL && n > 0) || policy == NULL || out == NULL || buf == NULL) {
        return WSFWD_ERR_INVALID;
    }
    server_choice sc = {policy, out, false, false};
    if (each_extension(values, n, server_offer, &sc) != 0) {
        return WSFWD_ERR_HTTP_MALFORMED;
    }
    if (!sc.chosen) {
        return 0;
    }
    /* Accepting an offered server_max_window_bits means echoing it (RFC 7692 section
       7.1.2.1); the server may also lower its window unasked. */
    bool server_bits = sc.server_bits_offered || out->server_max_window_bits < WSFWD_PMD_MAX_BITS;
    int len = write_params(out, server_bits, false, buf, cap);
    return len < 0 ? len : 1;
}

/* ---- Client ---------------------------------------------------------------------------- */

int wsfwd_pmd_write_offer(const wsfwd_pmd_params *want, char *buf, size_t cap)
{
    if (want == NULL || buf == NULL) {
        return WSFWD_ERR_INVALID;
    }
    return write_params(want, want->server_max_window_bits < WSFWD_PMD_MAX_BITS, true, buf, cap);
}

/* Whether the answer a keeps to the offer made from want; fills *out. */
static bool answer_fits(const pmd_text *a, const wsfwd_pmd_params *want, wsfwd_pmd_params *out)
{
    if (!a->valid || (want->server_no_context_takeover && !a->seen[P_SNCT])) {
        return false;
    }
    bool server_bits_offered = want->server_max_window_bits < WSFWD_PMD_MAX_BITS;
    if (server_bits_offered && !a->seen[P_SMWB]) {
        return false;
    }
    uint8_t server_bits = a->seen[P_SMWB] ? a->bits[P_SMWB] : WSFWD_PMD_MAX_BITS;
    uint8_t client_bits = a->seen[P_CMWB] ? a->bits[P_CMWB] : want->client_max_window_bits;
    /* In an answer client_max_window_bits needs its value (window_bits gave 0 without). */
    if ((a->seen[P_CMWB] && a->bits[P_CMWB] == 0) || server_bits > want->server_max_window_bits ||
        client_bits > want->client_max_window_bits) {
        return false;
    }
    out->server_no_context_takeover = a->seen[P_SNCT];
    out->client_no_context_takeover = a->seen[P_CNCT] || want->client_no_context_takeover;
    out->server_max_window_bits = server_bits;
    out->client_max_window_bits = client_bits;
    return true;
}

typedef struct client_check {
    const wsfwd_pmd_params *want;
    wsfwd_pmd_params *out;
    bool accepted;
} client_check;

static int client_answer(void *ctx, wsfwd_str name, cursor *c)
{
    client_check *cc = ctx;
    pmd_text answer;
    /* Only permessage-deflate was offered, and only once. */
    if (cc->accepted || !str_is(name, WSFWD_PMD_NAME) || read_params(c, &answer) != 0 ||
        !answer_fits(&answer, cc->want, cc->out)) {
        return MALFORMED;
    }
    cc->accepted = true;
    return 0;
}

int wsfwd_pmd_check_response(const wsfwd_str *values, size_t n, const wsfwd_pmd_params *want,
                             wsfwd_pmd_params *out)
{
    if ((values == NULL && n > 0) || want == NULL || out == NULL) {
        return WSFWD_ERR_INVALID;
    }
    client_check cc = {want, out, false};
    int rc = each_extension(values, n, client_answer, &cc);
    if (rc != 0) {
        return WSFWD_ERR_HS_EXTENSION;
    }
    return cc.accepted ? 1 : 0;
}
