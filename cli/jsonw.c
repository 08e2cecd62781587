/* The JSON writer (jsonw.h). Owns nothing but the state in its struct. */
#include "jsonw.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

void jsonw_init(jsonw *w, char *buf, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
}

static void put(jsonw *w, const char *p, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void puts_(jsonw *w, const char *p)
{
    put(w, p, strlen(p));
}

/* Escape one ASCII byte as JSON needs, or copy it. */
static void put_ascii(jsonw *w, unsigned char ch)
{
    static const char hex[] = "0123456789abcdef";
    if (ch == '"' || ch == '\\') {
        char esc[2] = {'\\', (char)ch};
        put(w, esc, 2);
    } else if (ch < 0x20) {
        char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
        put(w, esc, 6);
    } else {
        char c = (char)ch;
        put(w, &c, 1);
    }
}

/* The length of the valid UTF-8 character at v (at most n bytes), or 0 if it is not one. */
static size_t utf8_char_len(const char *v, size_t n)
{
    uint32_t state = WSFWD_UTF8_ACCEPT;
    for (size_t i = 0; i < n && i < 4; i++) {
        state = wsfwd_utf8_step(state, (const uint8_t *)v + i, 1);
        if (state == WSFWD_UTF8_ACCEPT) {
            return i + 1;
        }
        if (state == WSFWD_UTF8_REJECT) {
            return 0;
        }
    }
    return 0;
}

/* JSON text must be UTF-8: a byte that does not start a valid character becomes U+FFFD. */
static void put_string(jsonw *w, const char *v, size_t n)
{
    put(w, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < 0x80) {
            put_ascii(w, ch);
            i++;
            continue;
        }
        size_t len = utf8_char_len(v + i, n - i);
        if (len == 0) {
            put(w, "\\ufffd", 6);
            i++;
        } else {
            put(w, v + i, len);
            i += len;
        }
    }
    put(w, "\"", 1);
}

/* The comma before a member, and its key. */
static void member(jsonw *w, const char *key)
{
    if (w->depth == 0) {
        return; /* the top level value */
    }
    if (!w->first[w->depth - 1]) {
        put(w, ",", 1);
    }
    w->first[w->depth - 1] = false;
    if (key != NULL) {
        put_string(w, key, strlen(key));
        put(w, ":", 1);
    }
}

void jsonw_object(jsonw *w, const char *key)
{
    member(w, key);
    put(w, "{", 1);
    if (w->depth == JSONW_DEPTH) {
        w->overflow = true;
        return;
    }
    w->first[w->depth++] = true;
}

void jsonw_end(jsonw *w)
{
    if (w->depth > 0) {
        w->depth--;
    }
    put(w, "}", 1);
}

void jsonw_u64(jsonw *w, const char *key, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRIu64, v);
    member(w, key);
    put(w, num, (size_t)n);
}

void jsonw_ratio(jsonw *w, const char *key, uint64_t num, uint64_t den)
{
    uint64_t whole = den > 0 ? num / den : 0;
    uint64_t rest = den > 0 ? num % den : 0;
    /* rest * 100 / den without overflow: rest < den, so split den when it is large */
    uint64_t cents = den == 0                   ? 0
                     : rest <= UINT64_MAX / 100 ? rest * 100 / den
                                                : rest / (den / 100 + 1);
    char num_text[32];
    int n = snprintf(num_text, sizeof num_text, "%" PRIu64 ".%02" PRIu64, whole, cents);
    member(w, key);
    put(w, num_text, (size_t)n);
}

void jsonw_bool(jsonw *w, const char *key, bool v)
{
    member(w, key);
    puts_(w, v ? "true" : "false");
}

void jsonw_str(jsonw *w, const char *key, const char *v)
{
    jsonw_strn(w, key, v, strlen(v));
}

void jsonw_strn(jsonw *w, const char *key, const char *v, size_t len)
{
    member(w, key);
    put_string(w, v, len);
}

void jsonw_raw(jsonw *w, const char *text)
{
    puts_(w, text);
}

bool jsonw_ok(const jsonw *w)
{
    return !w->overflow;
}

size_t jsonw_len(const jsonw *w)
{
    return w->len;
}
