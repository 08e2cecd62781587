/*
 * A small, strict JSON reader for JWT headers and claims (RFC 8259, narrowed).
 *
 * It reads one object whose values are strings, numbers, true, false, null or arrays of
 * strings: exactly what a JOSE header or a token's claims need. It rejects the rest: nested
 * objects, arrays of anything but strings, duplicate keys (two readers could disagree on
 * which one counts), invalid UTF-8, control characters, bad escapes, lone surrogates and
 * U+0000 (so that every decoded string can be NUL-terminated), and text after the object.
 * Nothing is allocated: strings are decoded in place in the caller's buffer.
 */
#ifndef WSFWD_LIB_JSON_H
#define WSFWD_LIB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsfwd.h" /* wsfwd_str */

#define WSFWD_JSON_MAX_MEMBERS 32 /* members in the object */
#define WSFWD_JSON_MAX_ITEMS 64   /* strings in all its arrays together */

enum {
    WSFWD_JSON_OK = 0,
    WSFWD_JSON_ERR_SYNTAX = -1,    /* not JSON, or not one object */
    WSFWD_JSON_ERR_STRING = -2,    /* bad UTF-8, control character, escape or surrogate, U+0000 */
    WSFWD_JSON_ERR_TYPE = -3,      /* a nested object, or an array of non-strings */
    WSFWD_JSON_ERR_DUPLICATE = -4, /* a key appears twice */
    WSFWD_JSON_ERR_LIMIT = -5      /* too many members or array items */
};

typedef enum wsfwd_json_type {
    WSFWD_JSON_NULL = 0,
    WSFWD_JSON_BOOL = 1,
    WSFWD_JSON_NUMBER = 2,
    WSFWD_JSON_STRING = 3,
    WSFWD_JSON_ARRAY = 4
} wsfwd_json_type;

typedef struct wsfwd_json_member {
    wsfwd_str key; /* decoded, NUL-terminated */
    wsfwd_json_type type;
    wsfwd_str str;       /* STRING: decoded, NUL-terminated; NUMBER: its text as written */
    bool boolean;        /* BOOL */
    size_t first, count; /* ARRAY: its strings are items[first] to items[first + count - 1] */
} wsfwd_json_member;

typedef struct wsfwd_json_object {
    size_t count;
    wsfwd_json_member members[WSFWD_JSON_MAX_MEMBERS];
    size_t item_count;
    wsfwd_str items[WSFWD_JSON_MAX_ITEMS]; /* decoded, NUL-terminated */
} wsfwd_json_object;

/*
 * Parse text[0..len) as one object into *out. The text is modified (strings are decoded in
 * place) and every view in *out points into it. Returns WSFWD_JSON_OK or a WSFWD_JSON_ERR_*.
 */
int wsfwd_json_parse(char *text, size_t len, wsfwd_json_object *out);

/* The member with this key (NUL-terminated, compared exactly), or NULL. */
const wsfwd_json_member *wsfwd_json_find(const wsfwd_json_object *obj, const char *key);

/*
 * A NUMBER member's text as an int64_t: only integer forms ("-12", not "12.0" nor "1e3"),
 * within INT64_MIN..INT64_MAX. Returns 0, or -1 if the text is not such an integer.
 */
int wsfwd_json_int64(wsfwd_str number, int64_t *out);

#endif
