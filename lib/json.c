/*
 * The strict JSON reader for token headers and claims: a recursive-descent parser two levels
 * deep (an object, and arrays of strings inside it), decoding strings in place. Decoding never
 * lengthens a string (an escape of 2, 6 or 12 bytes yields at most 4), so the write position
 * never passes the read position, and the NUL goes where the closing quote was.
 */
#include "json.h"

#include <string.h>

#include "utf8.h"

typedef struct parser {
    char *s;
    size_t len;
    size_t pos;
} parser;

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            break;
        }
        p->pos++;
    }
}

/* The next character, or '\0' at the end (a literal NUL is never valid where we peek). */
static char peek(const parser *p)
{
    return p->pos < p->len ? p->s[p->pos] : '\0';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Four hex digits at p->pos into *v. */
static int hex4(parser *p, uint32_t *v)
{
    if (p->len - p->pos < 4) {
        return WSFWD_JSON_ERR_STRING;
    }
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        uint32_t d;
        if (c >= '0' && c <= '9') {
            d = (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (uint32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            d = (uint32_t)(c - 'A' + 10);
        } else {
            return WSFWD_JSON_ERR_STRING;
        }
        x = (x << 4) | d;
    }
    *v = x;
    return WSFWD_JSON_OK;
}

/* After "\u": one code point, a surrogate pair taken as one; written as UTF-8 at *w. */
static int unicode_escape(parser *p, size_t *w)
{
    uint32_t cp;
    int rc = hex4(p, &cp);
    if (rc != WSFWD_JSON_OK) {
        return rc;
    }
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return WSFWD_JSON_ERR_STRING; /* a low surrogate first */
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t lo;
        if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
            return WSFWD_JSON_ERR_STRING; /* a high surrogate alone */
        }
        p->pos += 2;
        rc = hex4(p, &lo);
        if (rc != WSFWD_JSON_OK) {
            return rc;
        }
        if (lo < 0xDC00 || lo > 0xDFFF) {
            return WSFWD_JSON_ERR_STRING;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp == 0) {
        return WSFWD_JSON_ERR_STRING;
    }
    char *o = p->s + *w;
    if (cp < 0x80) {
        o[0] = (char)cp;
        *w += 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        *w += 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        *w += 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        *w += 4;
    }
    return WSFWD_JSON_OK;
}

/* A string at p->pos (on its opening quote), decoded in place into *out. */
static int parse_string(parser *p, wsfwd_str *out)
{
    size_t start = ++p->pos;
    size_t w = start;
    for (;;) {
        if (p->pos >= p->len) {
            return WSFWD_JSON_ERR_SYNTAX;
        }
        char c = p->s[p->pos];
        if (c == '"') {
            p->s[w] = '\0';
            p->pos++;
            out->ptr = p->s + start;
            out->len = w - start;
            return WSFWD_JSON_OK;
        }
        if ((unsigned char)c < 0x20) {
            return WSFWD_JSON_ERR_STRING;
        }
        p->pos++;
        if (c != '\\') {
            p->s[w++] = c;
            continue;
        }
        if (p->pos >= p->len) {
            return WSFWD_JSON_ERR_SYNTAX;
        }
        char e = p->s[p->pos++];
        switch (e) {
        case '"':
        case '\\':
        case '/': p->s[w++] = e; break;
        case 'b': p->s[w++] = '\b'; break;
        case 'f': p->s[w++] = '\f'; break;
        case 'n': p->s[w++] = '\n'; break;
        case 'r': p->s[w++] = '\r'; break;
        case 't': p->s[w++] = '\t'; break;
        case 'u': {
            int rc = unicode_escape(p, &w);
            if (rc != WSFWD_JSON_OK) {
                return rc;
            }
            break;
        }
        default: return WSFWD_JSON_ERR_STRING;
        }
    }
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? ; *out gets the text. */
static int parse_number(parser *p, wsfwd_str *out)
{
    size_t start = p->pos;
    if (peek(p) == '-') {
        p->pos++;
    }
    if (peek(p) == '0') {
        p->pos++;
    } else if (is_digit(peek(p))) {
        while (is_digit(peek(p))) {
            p->pos++;
        }
    } else {
        return WSFWD_JSON_ERR_SYNTAX;
    }
    if (peek(p) == '.') {
        p->pos++;
        if (!is_digit(peek(p))) {
            return WSFWD_JSON_ERR_SYNTAX;
        }
        while (is_digit(peek(p))) {
            p->pos++;
        }
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-') {
            p->pos++;
        }
        if (!is_digit(peek(p))) {
            return WSFWD_JSON_ERR_SYNTAX;
        }
        while (is_digit(peek(p))) {
            p->pos++;
        }
    }
    out->ptr = p->s + start;
    out->len = p->pos - start;
    return WSFWD_JSON_OK;
}

static int parse_literal(parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
        return WSFWD_JSON_ERR_SYNTAX;
    }
    p->pos += n;
    return WSFWD_JSON_OK;
}

/* An array of strings at p->pos (on '['), its items appended to obj->items. */
static int parse_array(parser *p, wsfwd_json_object *obj, wsfwd_json_member *m)
{
    p->pos++;
    m->first = obj->item_count;
    m->count = 0;
    skip_ws(p);
    if (peek(p) == ']') {
        p->pos++;
        return WSFWD_JSON_OK;
    }
    for (;;) {
        char c = peek(p);
        if (c != '"') {
            /* A value of another kind is a type error; anything else a syntax error. */
            bool value =
                c == '{' || c == '[' || c == '-' || is_digit(c) || c == 't' || c == 'f' || c == 'n';
            return value ? WSFWD_JSON_ERR_TYPE : WSFWD_JSON_ERR_SYNTAX;
        }
        if (obj->item_count == WSFWD_JSON_MAX_ITEMS) {
            return WSFWD_JSON_ERR_LIMIT;
        }
        int rc = parse_string(p, &obj->items[obj->item_count]);
        if (rc != WSFWD_JSON_OK) {
            return rc;
        }
        obj->item_count++;
        m->count++;
        skip_ws(p);
        c = peek(p);
        p->pos++;
        if (c == ']') {
            return WSFWD_JSON_OK;
        }
        if (c != ',') {
            return WSFWD_JSON_ERR_SYNTAX;
        }
        skip_ws(p);
    }
}

static int parse_value(parser *p, wsfwd_json_object *obj, wsfwd_json_member *m)
{
    char c = peek(p);
    switch (c) {
    case '"': m->type = WSFWD_JSON_STRING; return parse_string(p, &m->str);
    case 't':
        m->type = WSFWD_JSON_BOOL;
        m->boolean = true;
        return parse_literal(p, "true");
    case 'f':
        m->type = WSFWD_JSON_BOOL;
        m->boolean = false;
        return parse_literal(p, "false");
    case 'n': m->type = WSFWD_JSON_NULL; return parse_literal(p, "null");
    case '[': m->type = WSFWD_JSON_ARRAY; return parse_array(p, obj, m);
    case '{': return WSFWD_JSON_ERR_TYPE;
    default:
        if (c == '-' || is_digit(c)) {
            m->type = WSFWD_JSON_NUMBER;
            return parse_number(p, &m->str);
        }
        return WSFWD_JSON_ERR_SYNTAX;
    }
}

static bool key_seen(const wsfwd_json_object *obj, wsfwd_str key)
{
    for (size_t i = 0; i < obj->count; i++) {
        if (obj->members[i].key.len == key.len &&
            memcmp(obj->members[i].key.ptr, key.ptr, key.len) == 0) {
            return true;
        }
    }
    return false;
}

static int parse_object(parser *p, wsfwd_json_object *obj)
{
    skip_ws(p);
    if (peek(p) != '{') {
        return WSFWD_JSON_ERR_SYNTAX;
    }
    p->pos++;
    skip_ws(p);
    if (peek(p) == '}') {
        p->pos++;
        return WSFWD_JSON_OK;
    }
    for (;;) {
        if (peek(p) != '"') {
            return WSFWD_JSON_ERR_SYNTAX;
        }
        if (obj->count == WSFWD_JSON_MAX_MEMBERS) {
            return WSFWD_JSON_ERR_LIMIT;
        }
        wsfwd_json_member *m = &obj->members[obj->count];
        memset(m, 0, sizeof *m);
        int rc = parse_string(p, &m->key);
        if (rc != WSFWD_JSON_OK) {
            return rc;
        }
        if (key_seen(obj, m->key)) {
            return WSFWD_JSON_ERR_DUPLICATE;
        }
        skip_ws(p);
        if (peek(p) != ':') {
            return WSFWD_JSON_ERR_SYNTAX;
        }
        p->pos++;
        skip_ws(p);
        rc = parse_value(p, obj, m);
        if (rc != WSFWD_JSON_OK) {
            return rc;
        }
        obj->count++;
        skip_ws(p);
        char c = peek(p);
        p->pos++;
        if (c == '}') {
            return WSFWD_JSON_OK;
        }
        if (c != ',') {
            return WSFWD_JSON_ERR_SYNTAX;
        }
        skip_ws(p);
    }
}

int wsfwd_json_parse(char *text, size_t len, wsfwd_json_object *out)
{
    out->count = 0;
    out->item_count = 0;
    if (text == NULL && len > 0) {
        return WSFWD_JSON_ERR_SYNTAX;
    }
    /* All of it must be UTF-8, so bytes copied out of strings need no further check. */
    if (len > 0 && !wsfwd_utf8_valid((const uint8_t *)text, len)) {
        return WSFWD_JSON_ERR_STRING;
    }
    parser p = {text, len, 0};
    int rc = parse_object(&p, out);
    if (rc != WSFWD_JSON_OK) {
        return rc;
    }
    skip_ws(&p);
    return p.pos == p.len ? WSFWD_JSON_OK : WSFWD_JSON_ERR_SYNTAX;
}

const wsfwd_json_member *wsfwd_json_find(const wsfwd_json_object *obj, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < obj->count; i++) {
        const wsfwd_json_member *m = &obj->members[i];
        if (m->key.len == n && memcmp(m->key.ptr, key, n) == 0) {
            return m;
        }
    }
    return NULL;
}

int wsfwd_json_int64(wsfwd_str number, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < number.len && number.ptr[i] == '-') {
        neg = true;
        i++;
    }
    if (i == number.len) {
        return -1;
    }
    /* The magnitude, bounded by 2^63 (INT64_MIN's) on the way, so it never wraps. */
    const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; i < number.len; i++) {
        char c = number.ptr[i];
        if (!is_digit(c)) {
            return -1; /* a fraction or an exponent */
        }
        uint64_t d = (uint64_t)(c - '0');
        if (v > (limit - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    if (neg) {
        *out = v == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)v;
    } else {
        *out = (int64_t)v;
    }
    return 0;
}
