/* The JSON writer (jsonw.h). Owns nothing but the state in its struct. */
#include "jsonw.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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

static void put_string(jsonw *w, const char *v)
{
    static const char hex[] = "0123456789abcdef";
    put(w, "\"", 1);
    for (const char *p = v; *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') {
            char esc[2] = {'\\', (char)ch};
            put(w, esc, 2);
        } else if (ch < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            put(w, esc, 6);
        } else {
            put(w, p, 1);
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
        put_string(w, key);
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
    member(w, key);
    put_string(w, v);
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
