/*
 * The opening handshake (RFC 6455 section 4): Sec-WebSocket-Accept, the server's incremental
 * parser of the client's request and its responses, the client's request and its check of
 * the server's response.
 *
 * Parsing rules shared by the request and the response parser (RFC 9112):
 * - Bytes are copied into a buffer bounded by max_size (default 8192) only up to the end of
 *   the header block, found by a small state machine that sees every byte once, so any
 *   chunking costs O(total bytes). The block is parsed once, when it is complete.
 * - A line ends with CRLF or, as RFC 9112 section 2.2 permits, a bare LF; a CR anywhere else
 *   is malformed. An empty line before the start line is not skipped: it is malformed.
 * - Field names are tokens directly followed by ':'; values may hold SP, HTAB, visible ASCII
 *   and obs-text, and are trimmed of OWS. Obs-fold, an empty name, whitespace before the
 *   colon, NUL and other control characters are malformed.
 *
 * Server-side checks, in the order wsfwd_request_check() reports them: method GET (405),
 * HTTP/1.1 or later (400), exactly one non-empty Host (400), Upgrade lists "websocket" (400),
 * Connection lists "Upgrade" (400), exactly one Sec-WebSocket-Key of 16 bytes (400), exactly
 * one Sec-WebSocket-Version equal to "13" (426, also when it is missing: the 426 answer tells
 * the client which version to use, RFC 6455 section 4.2.2). Tokens match case-insensitively,
 * in comma-separated lists, across repeated fields.
 *
 * Subprotocols: every Sec-WebSocket-Protocol field, split at commas and trimmed, in order;
 * empty elements and elements that are not tokens are skipped, and only the first
 * HS_MAX_SUBPROTOCOLS are kept (the rest cannot be chosen).
 */
#include "handshake.h"

#include <stdbool.h>
#include <string.h>

#include "base64.h"
#include "httpchar.h"
#include "mem.h"
#include "sha1.h"

#define HS_DEFAULT_MAX 8192
#define HS_INITIAL_CAP 1024
#define HS_MAX_SUBPROTOCOLS 32

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ---- Characters and strings ------------------------------------------------------------ */

/* A byte allowed in a field value or reason phrase: HTAB, SP, VCHAR, obs-text. */
static bool is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7F);
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool str_ieq(wsfwd_str a, const char *b)
{
    size_t n = strlen(b);
    if (a.len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower(a.ptr[i]) != ascii_lower(b[i])) {
            return false;
        }
    }
    return true;
}

static bool str_eq(wsfwd_str a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

static bool str_is_token(wsfwd_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (!wsfwd_is_tchar((unsigned char)s.ptr[i])) {
            return false;
        }
    }
    return s.len > 0;
}

static wsfwd_str str_trim(const char *p, size_t n)
{
    while (n > 0 && wsfwd_is_ows(p[0])) {
        p++;
        n--;
    }
    while (n > 0 && wsfwd_is_ows(p[n - 1])) {
        n--;
    }
    wsfwd_str s = {p, n};
    return s;
}

/* Walks the elements of a comma-separated list, each trimmed (possibly empty). */
typedef struct list_iter {
    const char *p;
    const char *end;
    bool done;
} list_iter;

static list_iter list_begin(wsfwd_str v)
{
    list_iter it = {v.ptr, v.ptr + v.len, v.ptr == NULL};
    return it;
}

static bool list_next(list_iter *it, wsfwd_str *elem)
{
    if (it->done) {
        return false;
    }
    const char *comma = memchr(it->p, ',', (size_t)(it->end - it->p));
    const char *stop = comma != NULL ? comma : it->end;
    *elem = str_trim(it->p, (size_t)(stop - it->p));
    if (comma != NULL) {
        it->p = comma + 1;
    } else {
        it->done = true;
    }
    return true;
}

static bool list_has_token(wsfwd_str v, const char *token)
{
    list_iter it = list_begin(v);
    wsfwd_str e;
    while (list_next(&it, &e)) {
        if (str_ieq(e, token)) {
            return true;
        }
    }
    return false;
}

/* ---- Output ---------------------------------------------------------------------------- */

/* Counts every byte but writes only what fits, so one pass gives the size needed. */
typedef struct hs_out {
    char *buf;
    size_t cap;
    size_t len;
} hs_out;

static void out_put(hs_out *o, const char *s, size_t n)
{
    if (n > 0 && o->len <= o->cap && n <= o->cap - o->len) {
        memcpy(o->buf + o->len, s, n);
    }
    o->len += n;
}

static void out_str(hs_out *o, const char *s)
{
    out_put(o, s, strlen(s));
}

static void out_uint(hs_out *o, size_t v)
{
    char digits[24];
    size_t n = sizeof digits;
    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    out_put(o, digits + n, sizeof digits - n);
}

static void out_header(hs_out *o, const char *name, const char *value)
{
    out_str(o, name);
    out_str(o, ": ");
    out_str(o, value);
    out_str(o, "\r\n");
}

static int out_finish(const hs_out *o, size_t *len)
{
    *len = o->len;
    return o->len <= o->cap ? WSFWD_OK : WSFWD_ERR_NOBUFS;
}

/* ---- Key and accept -------------------------------------------------------------------- */

void wsfwd_handshake_accept(const char *key, size_t key_len, char out[WSFWD_ACCEPT_LEN + 1])
{
    if (out == NULL) {
        return;
    }
    wsfwd_sha1 ctx;
    uint8_t digest[WSFWD_SHA1_DIGEST_LEN];
    wsfwd_sha1_init(&ctx);
    if (key != NULL) {
        wsfwd_sha1_update(&ctx, key, key_len);
    }
    wsfwd_sha1_update(&ctx, ws_guid, sizeof ws_guid - 1);
    wsfwd_sha1_final(&ctx, digest);
    wsfwd_base64_encode(digest, sizeof digest, out);
}

void wsfwd_handshake_key(const uint8_t nonce[16], char out[WSFWD_KEY_LEN + 1])
{
    if (nonce != NULL && out != NULL) {
        wsfwd_base64_encode(nonce, 16, out);
    }
}

static bool key_is_valid(wsfwd_str key)
{
    uint8_t raw[16];
    return key.len == WSFWD_KEY_LEN && wsfwd_base64_decode(key.ptr, key.len, raw, 16) == 16;
}

/* ---- HTTP status helpers --------------------------------------------------------------- */

const char *wsfwd_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static bool has_ctl(const char *s)
{
    for (; *s != '\0'; s++) {
        if (!is_field_char((unsigned char)*s)) {
            return true;
        }
    }
    return false;
}

int wsfwd_http_write_head(char *buf, size_t cap, size_t *len, int status, const char *content_type,
                          const char *extra, size_t body_len)
{
    if (len == NULL || (buf == NULL && cap > 0) || status < 100 || status > 599 ||
        (content_type != NULL && has_ctl(content_type))) {
        return WSFWD_ERR_INVALID;
    }
    hs_out o = {buf, cap, 0};
    out_str(&o, "HTTP/1.1 ");
    out_uint(&o, (size_t)status);
    out_str(&o, " ");
    out_str(&o, wsfwd_http_reason(status));
    out_str(&o, "\r\nConnection: close\r\n");
    if (content_type != NULL) {
        out_header(&o, "Content-Type", content_type);
    }
    out_str(&o, "Content-Length: ");
    out_uint(&o, body_len);
    out_str(&o, "\r\n");
    if (extra != NULL) {
        out_str(&o, extra);
    }
    out_str(&o, "\r\n");
    return out_finish(&o, len);
}

/* ---- The header block, shared by the request and the response parser ------------------- */

typedef struct hs_field {
    wsfwd_str name;
    wsfwd_str value;
} hs_field;

/* Where the end-of-block scan stands: inside a line, right after a LF, after LF CR. */
enum { SCAN_TEXT, SCAN_LF, SCAN_LF_CR, SCAN_END };

typedef struct hs_block {
    wsfwd_allocator alloc;
    char *buf;
    size_t len;
    size_t cap;
    size_t max;
    int scan;
    int result; /* WSFWD_INCOMPLETE until the block is complete, then OK or an error */
    hs_field *fields;
    size_t nfields;
} hs_block;

static void block_init(hs_block *b, const wsfwd_allocator *alloc, size_t max)
{
    memset(b, 0, sizeof *b);
    b->alloc = *alloc;
    b->max = max;
    b->scan = SCAN_TEXT; /* so that an empty first line does not end the block */
    b->result = WSFWD_INCOMPLETE;
}

static void block_release(hs_block *b)
{
    wsfwd_mem_free(&b->alloc, b->fields);
    wsfwd_mem_free(&b->alloc, b->buf);
}

static int scan_step(int state, uint8_t c)
{
    if (c == '\n') {
        return state == SCAN_TEXT ? SCAN_LF : SCAN_END;
    }
    if (c == '\r' && state == SCAN_LF) {
        return SCAN_LF_CR;
    }
    return SCAN_TEXT;
}

static int block_reserve(hs_block *b, size_t need)
{
    if (need <= b->cap) {
        return WSFWD_OK;
    }
    size_t cap = b->cap > 0 ? b->cap : HS_INITIAL_CAP;
    while (cap < need) {
        cap = cap > b->max / 2 ? b->max : cap * 2;
    }
    if (cap > b->max) {
        cap = b->max;
    }
    char *p = b->buf == NULL ? wsfwd_mem_alloc(&b->alloc, cap)
                             : wsfwd_mem_realloc(&b->alloc, b->buf, cap);
    if (p == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    b->buf = p;
    b->cap = cap;
    return WSFWD_OK;
}

/*
 * Take input up to the end of the header block and no further. Returns WSFWD_INCOMPLETE,
 * WSFWD_OK (the block is complete), WSFWD_ERR_HTTP_TOO_LARGE or WSFWD_ERR_NOMEM.
 */
static int block_take(hs_block *b, const uint8_t *data, size_t len, size_t *consumed)
{
    size_t room = b->max - b->len;
    size_t take = len < room ? len : room;
    int scan = b->scan;
    for (size_t i = 0; i < take; i++) {
        scan = scan_step(scan, data[i]);
        if (scan == SCAN_END) {
            take = i + 1;
            break;
        }
    }
    if (take > 0) {
        if (block_reserve(b, b->len + take) != WSFWD_OK) {
            return WSFWD_ERR_NOMEM;
        }
        memcpy(b->buf + b->len, data, take);
        b->len += take;
    }
    b->scan = scan;
    *consumed = take;
    if (scan == SCAN_END) {
        return WSFWD_OK;
    }
    return b->len == b->max ? WSFWD_ERR_HTTP_TOO_LARGE : WSFWD_INCOMPLETE;
}

/* The next line from *pos, without its line end; false if it holds a bare CR. */
static bool block_line(const hs_block *b, size_t *pos, wsfwd_str *line)
{
    const char *s = b->buf + *pos;
    const char *lf = memchr(s, '\n', b->len - *pos); /* the block ends with a LF */
    size_t n = (size_t)(lf - s);
    *pos += n + 1;
    if (n > 0 && s[n - 1] == '\r') {
        n--;
    }
    line->ptr = s;
    line->len = n;
    return memchr(s, '\r', n) == NULL;
}

static bool parse_field(wsfwd_str line, hs_field *f)
{
    size_t i = 0;
    while (i < line.len && wsfwd_is_tchar((unsigned char)line.ptr[i])) {
        i++;
    }
    /* Also rejects obs-fold and whitespace before the colon: neither is a token char. */
    if (i == 0 || i == line.len || line.ptr[i] != ':') {
        return false;
    }
    for (size_t j = i + 1; j < line.len; j++) {
        if (!is_field_char((unsigned char)line.ptr[j])) {
            return false;
        }
    }
    f->name.ptr = line.ptr;
    f->name.len = i;
    f->value = str_trim(line.ptr + i + 1, line.len - i - 1);
    return true;
}

/* Parse the field lines from pos to the empty line. Returns OK, `bad` or WSFWD_ERR_NOMEM. */
static int block_parse_fields(hs_block *b, size_t pos, int bad)
{
    size_t lines = 0;
    for (size_t i = pos; i < b->len; i++) {
        lines += b->buf[i] == '\n';
    }
    /* The last line is the empty one, so lines - 1 fields at most. */
    if (lines > 1) {
        b->fields = wsfwd_mem_alloc(&b->alloc, (lines - 1) * sizeof *b->fields);
        if (b->fields == NULL) {
            return WSFWD_ERR_NOMEM;
        }
    }
    wsfwd_str line;
    for (;;) {
        if (!block_line(b, &pos, &line)) {
            return bad;
        }
        if (line.len == 0) {
            return WSFWD_OK;
        }
        if (!parse_field(line, &b->fields[b->nfields])) {
            return bad;
        }
        b->nfields++;
    }
}

static size_t block_count(const hs_block *b, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nfields; i++) {
        n += str_ieq(b->fields[i].name, name);
    }
    return n;
}

static wsfwd_str block_get(const hs_block *b, const char *name)
{
    wsfwd_str none = {NULL, 0};
    if (b->result != WSFWD_OK || name == NULL) {
        return none;
    }
    for (size_t i = 0; i < b->nfields; i++) {
        if (str_ieq(b->fields[i].name, name)) {
            return b->fields[i].value;
        }
    }
    return none;
}

/* True if any field with this name lists token. */
static bool block_has_token(const hs_block *b, const char *name, const char *token)
{
    for (size_t i = 0; i < b->nfields; i++) {
        if (str_ieq(b->fields[i].name, name) && list_has_token(b->fields[i].value, token)) {
            return true;
        }
    }
    return false;
}

static int block_feed(hs_block *b, const uint8_t *data, size_t len, size_t *consumed)
{
    if (consumed != NULL) {
        *consumed = 0;
    }
    if (b == NULL || consumed == NULL || (data == NULL && len > 0)) {
        return WSFWD_ERR_INVALID;
    }
    if (b->result != WSFWD_INCOMPLETE) {
        return b->result;
    }
    int rc = block_take(b, data, len, consumed);
    if (rc != WSFWD_INCOMPLETE && rc != WSFWD_OK) {
        b->result = rc;
    }
    return rc;
}

static size_t resolve_max(size_t max_size)
{
    return max_size == 0 ? HS_DEFAULT_MAX : max_size;
}

/* ---- Server side: the request ---------------------------------------------------------- */

struct wsfwd_request {
    hs_block blk;
    int check; /* the first rule broken, once the request is complete */
    bool http11;
    wsfwd_str method;
    wsfwd_str target;
    wsfwd_str path;
    wsfwd_str query;
    size_t nprotocols;
    wsfwd_str protocols[HS_MAX_SUBPROTOCOLS];
};

int wsfwd_request_new(const wsfwd_allocator *alloc, size_t max_size, wsfwd_request **out)
{
    if (out == NULL) {
        return WSFWD_ERR_INVALID;
    }
    *out = NULL;
    wsfwd_allocator a;
    wsfwd_mem_init(&a, alloc);
    wsfwd_request *req = wsfwd_mem_alloc(&a, sizeof *req);
    if (req == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    memset(req, 0, sizeof *req);
    block_init(&req->blk, &a, resolve_max(max_size));
    req->check = WSFWD_INCOMPLETE;
    *out = req;
    return WSFWD_OK;
}

void wsfwd_request_free(wsfwd_request *req)
{
    if (req != NULL) {
        wsfwd_allocator a = req->blk.alloc;
        block_release(&req->blk);
        wsfwd_mem_free(&a, req);
    }
}

/* Split s at the first c: head before it, tail after it (tail absent without c). */
static void str_split(wsfwd_str s, char c, wsfwd_str *head, wsfwd_str *tail)
{
    const char *at = s.len > 0 ? memchr(s.ptr, c, s.len) : NULL;
    head->ptr = s.ptr;
    head->len = at != NULL ? (size_t)(at - s.ptr) : s.len;
    tail->ptr = at != NULL ? at + 1 : NULL;
    tail->len = at != NULL ? s.len - head->len - 1 : 0;
}

/* "HTTP/" DIGIT "." DIGIT; sets the major and minor versions. */
static bool parse_http_version(wsfwd_str v, int *major, int *minor)
{
    if (v.len != 8 || memcmp(v.ptr, "HTTP/", 5) != 0 || v.ptr[6] != '.' || v.ptr[5] < '0' ||
        v.ptr[5] > '9' || v.ptr[7] < '0' || v.ptr[7] > '9') {
        return false;
    }
    *major = v.ptr[5] - '0';
    *minor = v.ptr[7] - '0';
    return true;
}

/* method SP request-target SP HTTP-version, single spaces, as RFC 9112 section 3. */
static bool parse_request_line(wsfwd_request *req, wsfwd_str line)
{
    wsfwd_str rest, version;
    str_split(line, ' ', &req->method, &rest);
    str_split(rest, ' ', &req->target, &version);
    if (!str_is_token(req->method) || req->target.len == 0 || version.ptr == NULL) {
        return false;
    }
    for (size_t i = 0; i < req->target.len; i++) {
        unsigned char c = (unsigned char)req->target.ptr[i];
        if (c <= 0x20 || c >= 0x7F) {
            return false;
        }
    }
    int major, minor;
    if (!parse_http_version(version, &major, &minor) || major > 1) {
        return false;
    }
    req->http11 = major == 1 && minor >= 1;
    str_split(req->target, '?', &req->path, &req->query);
    return true;
}

static void collect_subprotocols(wsfwd_request *req)
{
    const hs_block *b = &req->blk;
    for (size_t i = 0; i < b->nfields; i++) {
        if (!str_ieq(b->fields[i].name, "Sec-WebSocket-Protocol")) {
            continue;
        }
        list_iter it = list_begin(b->fields[i].value);
        wsfwd_str e;
        while (list_next(&it, &e) && req->nprotocols < HS_MAX_SUBPROTOCOLS) {
            if (str_is_token(e)) {
                req->protocols[req->nprotocols++] = e;
            }
        }
    }
}

/* The first rule of RFC 6455 section 4.2.1 a well-formed request breaks, or OK. */
static int request_validate(const wsfwd_request *req)
{
    const hs_block *b = &req->blk;
    if (!str_eq(req->method, "GET")) {
        return WSFWD_ERR_HTTP_METHOD;
    }
    if (!req->http11) {
        return WSFWD_ERR_HTTP_VERSION;
    }
    if (block_count(b, "Host") != 1 || block_get(b, "Host").len == 0) {
        return WSFWD_ERR_HS_HOST;
    }
    if (!block_has_token(b, "Upgrade", "websocket")) {
        return WSFWD_ERR_HS_UPGRADE;
    }
    if (!block_has_token(b, "Connection", "Upgrade")) {
        return WSFWD_ERR_HS_CONNECTION;
    }
    if (block_count(b, "Sec-WebSocket-Key") != 1 ||
        !key_is_valid(block_get(b, "Sec-WebSocket-Key"))) {
        return WSFWD_ERR_HS_KEY;
    }
    if (block_count(b, "Sec-WebSocket-Version") != 1 ||
        !str_eq(block_get(b, "Sec-WebSocket-Version"), "13")) {
        return WSFWD_ERR_HS_VERSION;
    }
    return WSFWD_OK;
}

static int request_parse(wsfwd_request *req)
{
    hs_block *b = &req->blk;
    size_t pos = 0;
    wsfwd_str line;
    if (!block_line(b, &pos, &line) || !parse_request_line(req, line)) {
        return WSFWD_ERR_HTTP_MALFORMED;
    }
    int rc = block_parse_fields(b, pos, WSFWD_ERR_HTTP_MALFORMED);
    if (rc != WSFWD_OK) {
        return rc;
    }
    b->result = WSFWD_OK; /* lets block_get() see the fields */
    collect_subprotocols(req);
    req->check = request_validate(req);
    return WSFWD_OK;
}

int wsfwd_request_feed(wsfwd_request *req, const uint8_t *data, size_t len, size_t *consumed)
{
    int rc = block_feed(req != NULL ? &req->blk : NULL, data, len, consumed);
    if (rc == WSFWD_OK && req->check == WSFWD_INCOMPLETE) {
        rc = request_parse(req);
        req->blk.result = rc;
    }
    return rc;
}

int wsfwd_request_check(const wsfwd_request *req)
{
    if (req == NULL) {
        return WSFWD_ERR_INVALID;
    }
    return req->blk.result == WSFWD_OK ? req->check : req->blk.result;
}

int wsfwd_request_status(const wsfwd_request *req)
{
    int err = wsfwd_request_check(req);
    if (err == WSFWD_OK) {
        return 101;
    }
    if (err == WSFWD_INCOMPLETE || err == WSFWD_ERR_INVALID) {
        return 0;
    }
    int status = wsfwd_error_http_status(err);
    return status != 0 ? status : 500; /* out of memory */
}

bool wsfwd_request_is_upgrade(const wsfwd_request *req)
{
    return req != NULL && block_get(&req->blk, "Upgrade").ptr != NULL;
}

/* A view into old moved to the same place in new (views elsewhere, e.g. "", stay). */
static void rebase(wsfwd_str *v, const char *old, size_t len, const char *new_buf)
{
    uintptr_t p = (uintptr_t)v->ptr;
    uintptr_t o = (uintptr_t)old;
    if (v->ptr != NULL && p >= o && p <= o + len) {
        v->ptr = new_buf + (p - o);
    }
}

int wsfwd_request_copy(const wsfwd_request *req, const wsfwd_allocator *alloc, wsfwd_request **out)
{
    if (out == NULL) {
        return WSFWD_ERR_INVALID;
    }
    *out = NULL;
    if (req == NULL || req->blk.result != WSFWD_OK) {
        return WSFWD_ERR_INVALID;
    }
    wsfwd_allocator a;
    wsfwd_mem_init(&a, alloc);
    const hs_block *b = &req->blk;
    wsfwd_request *copy = wsfwd_mem_alloc(&a, sizeof *copy);
    char *buf = wsfwd_mem_alloc(&a, b->len);
    hs_field *fields = b->nfields > 0 ? wsfwd_mem_alloc(&a, b->nfields * sizeof *fields) : NULL;
    if (copy == NULL || buf == NULL || (fields == NULL && b->nfields > 0)) {
        wsfwd_mem_free(&a, copy);
        wsfwd_mem_free(&a, buf);
        wsfwd_mem_free(&a, fields);
        return WSFWD_ERR_NOMEM;
    }
    *copy = *req;
    copy->blk.alloc = a;
    copy->blk.buf = buf;
    copy->blk.cap = b->len;
    copy->blk.fields = fields;
    memcpy(buf, b->buf, b->len);
    if (b->nfields > 0) {
        memcpy(fields, b->fields, b->nfields * sizeof *fields);
    }
    for (size_t i = 0; i < b->nfields; i++) {
        rebase(&fields[i].name, b->buf, b->len, buf);
        rebase(&fields[i].value, b->buf, b->len, buf);
    }
    wsfwd_str *views[] = {&copy->method, &copy->target, &copy->path, &copy->query};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        rebase(views[i], b->buf, b->len, buf);
    }
    for (size_t i = 0; i < copy->nprotocols; i++) {
        rebase(&copy->protocols[i], b->buf, b->len, buf);
    }
    *out = copy;
    return WSFWD_OK;
}

/* A view of the parsed request, or an absent one before it is complete and well-formed. */
static wsfwd_str request_view(const wsfwd_request *req, const wsfwd_str *field)
{
    wsfwd_str none = {NULL, 0};
    return req != NULL && req->blk.result == WSFWD_OK ? *field : none;
}

wsfwd_str wsfwd_request_method(const wsfwd_request *req)
{
    return request_view(req, req != NULL ? &req->method : NULL);
}

wsfwd_str wsfwd_request_target(const wsfwd_request *req)
{
    return request_view(req, req != NULL ? &req->target : NULL);
}

wsfwd_str wsfwd_request_path(const wsfwd_request *req)
{
    return request_view(req, req != NULL ? &req->path : NULL);
}

wsfwd_str wsfwd_request_query(const wsfwd_request *req)
{
    return request_view(req, req != NULL ? &req->query : NULL);
}

wsfwd_str wsfwd_request_header(const wsfwd_request *req, const char *name)
{
    wsfwd_str none = {NULL, 0};
    return req != NULL ? block_get(&req->blk, name) : none;
}

wsfwd_str wsfwd_request_host(const wsfwd_request *req)
{
    return wsfwd_request_header(req, "Host");
}

wsfwd_str wsfwd_request_origin(const wsfwd_request *req)
{
    return wsfwd_request_header(req, "Origin");
}

wsfwd_str wsfwd_request_key(const wsfwd_request *req)
{
    return wsfwd_request_header(req, "Sec-WebSocket-Key");
}

size_t wsfwd_request_subprotocol_count(const wsfwd_request *req)
{
    return req != NULL && req->blk.result == WSFWD_OK ? req->nprotocols : 0;
}

wsfwd_str wsfwd_request_subprotocol(const wsfwd_request *req, size_t index)
{
    wsfwd_str none = {NULL, 0};
    return index < wsfwd_request_subprotocol_count(req) ? req->protocols[index] : none;
}

static bool request_offered(const wsfwd_request *req, const char *subprotocol)
{
    for (size_t i = 0; i < req->nprotocols; i++) {
        if (str_eq(req->protocols[i], subprotocol)) {
            return true;
        }
    }
    return false;
}

static int write_switching(const wsfwd_request *req, const char *subprotocol,
                           const char *extensions, char *buf, size_t cap, size_t *len)
{
    int err = wsfwd_request_check(req);
    if (err == WSFWD_INCOMPLETE) {
        return WSFWD_ERR_INVALID;
    }
    if (err != WSFWD_OK) {
        return err;
    }
    if (subprotocol != NULL && subprotocol[0] == '\0') {
        subprotocol = NULL; /* "" means none, as wsfwd_conn_subprotocol() reports it */
    }
    if (subprotocol != NULL && !request_offered(req, subprotocol)) {
        return WSFWD_ERR_INVALID;
    }
    wsfwd_str key = wsfwd_request_key(req);
    char accept[WSFWD_ACCEPT_LEN + 1];
    wsfwd_handshake_accept(key.ptr, key.len, accept);

    hs_out o = {buf, cap, 0};
    out_str(&o, "HTTP/1.1 101 Switching Protocols\r\n");
    out_header(&o, "Upgrade", "websocket");
    out_header(&o, "Connection", "Upgrade");
    out_header(&o, "Sec-WebSocket-Accept", accept);
    if (subprotocol != NULL) {
        out_header(&o, "Sec-WebSocket-Protocol", subprotocol);
    }
    if (extensions != NULL && extensions[0] != '\0') {
        out_header(&o, "Sec-WebSocket-Extensions", extensions);
    }
    out_str(&o, "\r\n");
    return out_finish(&o, len);
}

/* "<status> <reason>\n", with the rule the request broke when status is its own. */
static size_t error_body(const wsfwd_request *req, int status, char *body, size_t cap)
{
    hs_out o = {body, cap, 0};
    int err = wsfwd_request_check(req);
    out_uint(&o, (size_t)status);
    out_str(&o, " ");
    out_str(&o, wsfwd_http_reason(status));
    if (err < 0 && status == wsfwd_request_status(req)) {
        out_str(&o, ": ");
        out_str(&o, wsfwd_strerror(err));
    }
    out_str(&o, "\n");
    return o.len <= cap ? o.len : cap;
}

static int write_error(const wsfwd_request *req, int status, char *buf, size_t cap, size_t *len)
{
    /* These statuses may not carry a body or Content-Length (RFC 9110 sections 8.6, 15). */
    if (status < 200 || status > 599 || status == 204 || status == 304) {
        return WSFWD_ERR_INVALID;
    }
    char body[160];
    size_t body_len = error_body(req, status, body, sizeof body);
    /* RFC 9110 15.5.2: a 401 names the scheme that would do (RFC 6750: a bearer token). */
    const char *extra = status == 426   ? "Sec-WebSocket-Version: 13\r\n"
                        : status == 405 ? "Allow: GET\r\n"
                        : status == 401 ? "WWW-Authenticate: Bearer realm=\"wsfwd\"\r\n"
                                        : NULL;
    size_t head = 0;
    int rc = wsfwd_http_write_head(buf, cap, &head, status, "text/plain; charset=utf-8", extra,
                                   body_len);
    if (rc != WSFWD_OK && rc != WSFWD_ERR_NOBUFS) {
        return rc;
    }
    *len = head + body_len;
    if (rc == WSFWD_ERR_NOBUFS || body_len > cap - head) {
        return WSFWD_ERR_NOBUFS;
    }
    memcpy(buf + head, body, body_len);
    return WSFWD_OK;
}

int wsfwd_request_write_response(const wsfwd_request *req, int status, const char *subprotocol,
                                 char *buf, size_t cap, size_t *len)
{
    return wsfwd_request_write_response_ext(req, status, subprotocol, NULL, buf, cap, len);
}

int wsfwd_request_write_response_ext(const wsfwd_request *req, int status, const char *subprotocol,
                                     const char *extensions, char *buf, size_t cap, size_t *len)
{
    if (req == NULL || len == NULL || (buf == NULL && cap > 0)) {
        return WSFWD_ERR_INVALID;
    }
    *len = 0;
    if (status == 101) {
        return write_switching(req, subprotocol, extensions, buf, cap, len);
    }
    return write_error(req, status, buf, cap, len);
}

/* Every field named name, in order: up to max of them into out; returns how many there are. */
static size_t block_fields(const hs_block *b, const char *name, wsfwd_str *out, size_t max)
{
    size_t n = 0;
    if (b->result != WSFWD_OK) {
        return 0;
    }
    for (size_t i = 0; i < b->nfields; i++) {
        if (str_ieq(b->fields[i].name, name)) {
            if (n < max) {
                out[n] = b->fields[i].value;
            }
            n++;
        }
    }
    return n;
}

size_t wsfwd_request_fields(const wsfwd_request *req, const char *name, wsfwd_str *out, size_t max)
{
    return block_fields(&req->blk, name, out, max);
}

/* ---- Client side: the request ---------------------------------------------------------- */

static bool value_is_clean(const char *s)
{
    return s != NULL && !has_ctl(s);
}

static bool path_is_valid(const char *p)
{
    if (p[0] != '/') {
        return false;
    }
    for (; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7F) {
            return false;
        }
    }
    return true;
}

int wsfwd_handshake_write_request(const char *host, const char *path, const char *origin,
                                  const char *subprotocols, const char *key, char *buf, size_t cap,
                                  size_t *len)
{
    return wsfwd_handshake_write_request_ext(host, path, origin, subprotocols, NULL, key, buf, cap,
                                             len);
}

int wsfwd_handshake_write_request_ext(const char *host, const char *path, const char *origin,
                                      const char *subprotocols, const char *extensions,
                                      const char *key, char *buf, size_t cap, size_t *len)
{
    if (len == NULL || (buf == NULL && cap > 0) || host == NULL || path == NULL || key == NULL ||
        host[0] == '\0' || !value_is_clean(host) || !path_is_valid(path) ||
        (origin != NULL && !value_is_clean(origin)) ||
        (subprotocols != NULL && !value_is_clean(subprotocols)) ||
        (extensions != NULL && !value_is_clean(extensions))) {
        return WSFWD_ERR_INVALID;
    }
    wsfwd_str k = {key, strlen(key)};
    if (!key_is_valid(k)) {
        return WSFWD_ERR_INVALID;
    }
    hs_out o = {buf, cap, 0};
    out_str(&o, "GET ");
    out_str(&o, path);
    out_str(&o, " HTTP/1.1\r\n");
    out_header(&o, "Host", host);
    out_header(&o, "Upgrade", "websocket");
    out_header(&o, "Connection", "Upgrade");
    out_header(&o, "Sec-WebSocket-Key", key);
    out_header(&o, "Sec-WebSocket-Version", "13");
    if (origin != NULL) {
        out_header(&o, "Origin", origin);
    }
    if (subprotocols != NULL && subprotocols[0] != '\0') {
        out_header(&o, "Sec-WebSocket-Protocol", subprotocols);
    }
    if (extensions != NULL && extensions[0] != '\0') {
        out_header(&o, "Sec-WebSocket-Extensions", extensions);
    }
    out_str(&o, "\r\n");
    return out_finish(&o, len);
}

/* ---- Client side: the server's response ------------------------------------------------ */

struct wsfwd_response {
    hs_block blk;
    int status;
    wsfwd_str reason; /* the status line's reason phrase, maybe empty */
};

int wsfwd_response_new(const wsfwd_allocator *alloc, size_t max_size, wsfwd_response **out)
{
    if (out == NULL) {
        return WSFWD_ERR_INVALID;
    }
    *out = NULL;
    wsfwd_allocator a;
    wsfwd_mem_init(&a, alloc);
    wsfwd_response *resp = wsfwd_mem_alloc(&a, sizeof *resp);
    if (resp == NULL) {
        return WSFWD_ERR_NOMEM;
    }
    memset(resp, 0, sizeof *resp);
    block_init(&resp->blk, &a, resolve_max(max_size));
    *out = resp;
    return WSFWD_OK;
}

void wsfwd_response_free(wsfwd_response *resp)
{
    if (resp != NULL) {
        wsfwd_allocator a = resp->blk.alloc;
        block_release(&resp->blk);
        wsfwd_mem_free(&a, resp);
    }
}

/* HTTP/1.x (x >= 1) SP 3DIGIT [SP reason-phrase]; the SP before an empty reason is optional. */
static bool parse_status_line(wsfwd_str line, int *status, wsfwd_str *reason)
{
    int major, minor;
    if (line.len < 12 || !parse_http_version((wsfwd_str){line.ptr, 8}, &major, &minor) ||
        major != 1 || minor < 1 || line.ptr[8] != ' ') {
        return false;
    }
    const char *d = line.ptr + 9;
    if (d[0] < '1' || d[0] > '5' || d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9') {
        return false;
    }
    if (line.len > 12 && line.ptr[12] != ' ') {
        return false;
    }
    for (size_t i = 13; i < line.len; i++) {
        if (!is_field_char((unsigned char)line.ptr[i])) {
            return false;
        }
    }
    *status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
    *reason = line.len > 13 ? (wsfwd_str){line.ptr + 13, line.len - 13} : (wsfwd_str){"", 0};
    return true;
}

static int response_parse(wsfwd_response *resp)
{
    hs_block *b = &resp->blk;
    size_t pos = 0;
    wsfwd_str line;
    int status = 0;
    wsfwd_str reason;
    if (!block_line(b, &pos, &line) || !parse_status_line(line, &status, &reason)) {
        return WSFWD_ERR_HTTP_RESPONSE;
    }
    int rc = block_parse_fields(b, pos, WSFWD_ERR_HTTP_RESPONSE);
    if (rc == WSFWD_OK) {
        resp->status = status;
        resp->reason = reason;
    }
    return rc;
}

int wsfwd_response_feed(wsfwd_response *resp, const uint8_t *data, size_t len, size_t *consumed)
{
    int rc = block_feed(resp != NULL ? &resp->blk : NULL, data, len, consumed);
    if (rc == WSFWD_OK && resp->status == 0) {
        rc = response_parse(resp);
        resp->blk.result = rc;
    }
    return rc;
}

/* True if the comma-separated list offered has an element equal to chosen (exactly). */
static bool offered_has(const char *offered, wsfwd_str chosen)
{
    if (offered == NULL) {
        return false;
    }
    wsfwd_str all = {offered, strlen(offered)};
    list_iter it = list_begin(all);
    wsfwd_str e;
    while (list_next(&it, &e)) {
        if (e.len == chosen.len && memcmp(e.ptr, chosen.ptr, e.len) == 0) {
            return true;
        }
    }
    return false;
}

static bool response_extensions_empty(const hs_block *b)
{
    for (size_t i = 0; i < b->nfields; i++) {
        if (!str_ieq(b->fields[i].name, "Sec-WebSocket-Extensions")) {
            continue;
        }
        list_iter it = list_begin(b->fields[i].value);
        wsfwd_str e;
        while (list_next(&it, &e)) {
            if (e.len > 0) {
                return false;
            }
        }
    }
    return true;
}

size_t wsfwd_response_fields(const wsfwd_response *resp, const char *name, wsfwd_str *out,
                             size_t max)
{
    return block_fields(&resp->blk, name, out, max);
}

int wsfwd_response_check(const wsfwd_response *resp, const char *key, const char *subprotocols)
{
    return wsfwd_response_check_ext(resp, key, subprotocols, false);
}

int wsfwd_response_check_ext(const wsfwd_response *resp, const char *key, const char *subprotocols,
                             bool offered_extensions)
{
    if (resp == NULL || key == NULL) {
        return WSFWD_ERR_INVALID;
    }
    const hs_block *b = &resp->blk;
    if (b->result != WSFWD_OK) {
        return b->result;
    }
    if (resp->status != 101) {
        return WSFWD_ERR_HS_STATUS;
    }
    if (!block_has_token(b, "Upgrade", "websocket")) {
        return WSFWD_ERR_HS_RESP_UPGRADE;
    }
    if (!block_has_token(b, "Connection", "Upgrade")) {
        return WSFWD_ERR_HS_RESP_CONNECTION;
    }
    char accept[WSFWD_ACCEPT_LEN + 1];
    wsfwd_handshake_accept(key, strlen(key), accept);
    if (block_count(b, "Sec-WebSocket-Accept") != 1 ||
        !str_eq(block_get(b, "Sec-WebSocket-Accept"), accept)) {
        return WSFWD_ERR_HS_ACCEPT;
    }
    size_t nproto = block_count(b, "Sec-WebSocket-Protocol");
    if (nproto > 1) {
        return WSFWD_ERR_HS_SUBPROTOCOL;
    }
    if (nproto == 1) {
        wsfwd_str p = block_get(b, "Sec-WebSocket-Protocol");
        if (!str_is_token(p) || !offered_has(subprotocols, p)) {
            return WSFWD_ERR_HS_SUBPROTOCOL;
        }
    }
    if (!offered_extensions && !response_extensions_empty(b)) {
        return WSFWD_ERR_HS_EXTENSION;
    }
    return WSFWD_OK;
}

int wsfwd_response_status(const wsfwd_response *resp)
{
    return resp != NULL && resp->blk.result == WSFWD_OK ? resp->status : 0;
}

wsfwd_str wsfwd_response_reason(const wsfwd_response *resp)
{
    wsfwd_str none = {NULL, 0};
    return resp != NULL && resp->blk.result == WSFWD_OK ? resp->reason : none;
}

wsfwd_str wsfwd_response_header(const wsfwd_response *resp, const char *name)
{
    wsfwd_str none = {NULL, 0};
    return resp != NULL ? block_get(&resp->blk, name) : none;
}

wsfwd_str wsfwd_response_subprotocol(const wsfwd_response *resp)
{
    return wsfwd_response_header(resp, "Sec-WebSocket-Protocol");
}
