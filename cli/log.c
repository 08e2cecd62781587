/* Log lines on stderr (log.h). Owns the level and the format. */
#define _POSIX_C_SOURCE 200809L

#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "jsonw.h"

#define MSG_MAX 1024 /* a message, as formatted by its caller */
/* A JSON line: every byte of a message may grow to a 6-byte escape, plus the other members. */
#define JSON_LINE_MAX (6 * MSG_MAX + 256)
#define FIELDS_MAX 8 /* key=value words taken from the start of a message */
#define KEY_MAX 32

static log_level current = LOG_INFO;
static log_format format_in_use = LOG_TEXT;
static const char *const names[] = {"error", "warn", "info", "debug"};

int log_parse_level(const char *s)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

void log_set_level(log_level level)
{
    current = level;
}

int log_enabled(log_level level)
{
    return level <= current;
}

void log_set_format(log_format format)
{
    format_in_use = format;
}

/* RFC 3339 in UTC with milliseconds: 2026-12-06T01:29:58.123Z */
static void format_time(const struct timespec *ts, char *out, size_t cap)
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000000);
}

static size_t render_text(const char *when, log_level level, const char *msg, char *out, size_t cap)
{
    int n = snprintf(out, cap - 1, "%s %-5s %s", when, names[level], msg);
    size_t len = n < 0 ? 0 : (size_t)n < cap - 1 ? (size_t)n : cap - 2;
    out[len++] = '\n';
    out[len] = '\0';
    return len;
}

typedef struct field {
    char key[KEY_MAX];
    const char *value;
    size_t len;
} field;

/* If p opens with a word "key=value" (key in [a-z_], value without spaces), fill f and return
   the word's length; else 0. The line's own members are not taken as fields. */
static size_t field_word(const char *p, field *f)
{
    size_t k = 0;
    while ((p[k] >= 'a' && p[k] <= 'z') || p[k] == '_') {
        k++;
    }
    if (k == 0 || k >= KEY_MAX || p[k] != '=') {
        return 0;
    }
    size_t v = k + 1;
    while (p[v] != '\0' && p[v] != ' ') {
        v++;
    }
    memcpy(f->key, p, k);
    f->key[k] = '\0';
    if (v == k + 1 || strcmp(f->key, "ts") == 0 || strcmp(f->key, "level") == 0 ||
        strcmp(f->key, "msg") == 0) {
        return 0;
    }
    f->value = p + k + 1;
    f->len = v - k - 1;
    return v;
}

static bool seen_key(const field *fields, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(fields[i].key, key) == 0) {
            return true;
        }
    }
    return false;
}

/* Split the key=value words off the start of msg (each key once); returns where the message
   proper begins. */
static const char *split_fields(const char *msg, field *fields, size_t *n)
{
    *n = 0;
    for (;;) {
        size_t w = *n < FIELDS_MAX ? field_word(msg, &fields[*n]) : 0;
        if (w == 0 || seen_key(fields, *n, fields[*n].key)) {
            return msg;
        }
        (*n)++;
        msg += msg[w] == ' ' ? w + 1 : w;
    }
}

static bool write_json(const char *when, log_level level, const char *msg, size_t msg_len,
                       const field *fields, size_t n, char *out, size_t cap, size_t *len)
{
    jsonw w;
    jsonw_init(&w, out, cap - 2); /* room for the newline and the NUL */
    jsonw_object(&w, NULL);
    jsonw_str(&w, "ts", when);
    jsonw_str(&w, "level", names[level]);
    jsonw_strn(&w, "msg", msg, msg_len);
    for (size_t i = 0; i < n; i++) {
        jsonw_strn(&w, fields[i].key, fields[i].value, fields[i].len);
    }
    jsonw_end(&w);
    *len = jsonw_len(&w);
    return jsonw_ok(&w);
}

static size_t render_json(const char *when, log_level level, const char *msg, char *out, size_t cap)
{
    field fields[FIELDS_MAX];
    size_t n;
    const char *rest = split_fields(msg, fields, &n);
    size_t rest_len = strlen(rest);
    size_t len = 0;
    /* Too long for cap: the message is cut until the line fits (then the fields go too). */
    while (!write_json(when, level, rest, rest_len, fields, n, out, cap, &len)) {
        if (rest_len == 0 && n == 0) {
            len = 0; /* cap cannot even hold ts and level */
            break;
        }
        if (rest_len == 0) {
            n = 0;
        }
        rest_len /= 2;
    }
    out[len++] = '\n';
    out[len] = '\0';
    return len;
}

size_t log_render(log_format format, log_level level, const struct timespec *ts, const char *msg,
                  char *out, size_t cap)
{
    char when[96]; /* 24 used; the rest keeps gcc's -Wformat-truncation quiet */
    if (cap < 2) {
        if (cap == 1) {
            out[0] = '\0';
        }
        return 0;
    }
    format_time(ts, when, sizeof when);
    return format == LOG_JSON ? render_json(when, level, msg, out, cap)
                              : render_text(when, level, msg, out, cap);
}

void log_msg(log_level level, const char *fmt, ...)
{
    char msg[MSG_MAX];
    static char line[JSON_LINE_MAX]; /* static: one thread, and a large frame for a log line */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = log_render(format_in_use, level, &ts, msg, line, sizeof line);
    /* One write per line (stderr is unbuffered), so lines from a burst never interleave. */
    fwrite(line, 1, len, stderr);
}

static void escape(const char *in, size_t len, char *out, size_t cap, bool space_too)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        bool plain =
            ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '"' && !(space_too && ch == ' ');
        size_t need = plain ? 1 : 4;
        if (o + need + 4 >= cap) {
            if (o + 4 <= cap) {
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        if (plain) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
}

void log_escape(const char *in, size_t len, char *out, size_t cap)
{
    escape(in, len, out, cap, false);
}

void log_escape_value(const char *in, size_t len, char *out, size_t cap)
{
    escape(in, len, out, cap, true);
}
