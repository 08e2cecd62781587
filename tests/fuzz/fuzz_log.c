/*
 * libFuzzer target for wsfwd's JSON log lines (cli/log.c on cli/jsonw.c): whatever a message
 * holds, the line is one JSON object that lib/json.c's strict reader accepts, with ts, level
 * and msg; a valid UTF-8 message comes back whole from its fields and msg; a line cut short
 * for a small buffer still parses; a text line always ends with its newline.
 *
 * Byte 0 picks the small buffer's size; the rest, up to a NUL, is the message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "utf8.h"

#define MSG_MAX 1024
#define LINE_MAX_ (6 * MSG_MAX + 256)

static const struct timespec T = {.tv_sec = 1796520598, .tv_nsec = 123000000};

/* Parse the line (newline dropped) in place; abort unless it is an object with ts, level, msg. */
static void parse_line(char *line, size_t len, wsfwd_json_object *obj)
{
    if (len == 0 || line[len - 1] != '\n' || strlen(line) != len) {
        abort();
    }
    if (wsfwd_json_parse(line, len - 1, obj) != WSFWD_JSON_OK) {
        abort();
    }
    static const char *const keys[] = {"ts", "level", "msg"};
    for (size_t i = 0; i < 3; i++) {
        const wsfwd_json_member *m = wsfwd_json_find(obj, keys[i]);
        if (m == NULL || m->type != WSFWD_JSON_STRING || obj->members[i].key.ptr != m->key.ptr) {
            abort();
        }
    }
}

/* The words "key=value " of the fields, then msg: the message again (but a trailing space). */
static void check_round_trip(const wsfwd_json_object *obj, const char *msg)
{
    char again[LINE_MAX_];
    size_t n = 0;
    for (size_t i = 3; i < obj->count; i++) {
        const wsfwd_json_member *m = &obj->members[i];
        memcpy(again + n, m->key.ptr, m->key.len);
        n += m->key.len;
        again[n++] = '=';
        memcpy(again + n, m->str.ptr, m->str.len);
        n += m->str.len;
        again[n++] = ' ';
    }
    const wsfwd_json_member *rest = &obj->members[2];
    memcpy(again + n, rest->str.ptr, rest->str.len);
    n += rest->str.len;
    size_t want = strlen(msg);
    if (rest->str.len == 0 && obj->count > 3 && (want == 0 || msg[want - 1] != ' ')) {
        n--; /* "conn=1" and "conn=1 " make the same line */
    }
    if (n != want || memcmp(again, msg, n) != 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t small = 2 + (size_t)data[0] * 2;
    char msg[MSG_MAX];
    size_t n = size - 1 < MSG_MAX - 1 ? size - 1 : MSG_MAX - 1;
    memcpy(msg, data + 1, n);
    msg[n] = '\0';

    static char line[LINE_MAX_];
    wsfwd_json_object obj;
    size_t len = log_render(LOG_JSON, LOG_DEBUG, &T, msg, line, sizeof line);
    parse_line(line, len, &obj);
    if (wsfwd_utf8_valid((const uint8_t *)msg, strlen(msg))) {
        check_round_trip(&obj, msg);
    }

    len = log_render(LOG_JSON, LOG_WARN, &T, msg, line, small);
    if (len >= small || (len > 1 && (parse_line(line, len, &obj), 0))) {
        abort();
    }
    len = log_render(LOG_TEXT, LOG_INFO, &T, msg, line, small);
    if (len >= small || line[len - 1] != '\n' || strlen(line) != len) {
        abort();
    }
    return 0;
}
