/*
 * A small JSON writer into a caller's buffer: objects, and members that are numbers, strings
 * or booleans. Commas are its business. Past the end of the buffer it stops writing and
 * remembers it (jsonw_ok), so the caller checks once at the end.
 */
#ifndef WSFWD_CLI_JSONW_H
#define WSFWD_CLI_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONW_DEPTH 8

typedef struct jsonw {
    char *buf;
    size_t cap;
    size_t len;
    unsigned depth;
    bool overflow;
    bool first[JSONW_DEPTH]; /* no member written yet at this depth */
} jsonw;

void jsonw_init(jsonw *w, char *buf, size_t cap);

/* Open an object: the top level one with key NULL, else the member key of the open object. */
void jsonw_object(jsonw *w, const char *key);
void jsonw_end(jsonw *w);

void jsonw_u64(jsonw *w, const char *key, uint64_t v);
void jsonw_bool(jsonw *w, const char *key, bool v);
/* num / den as a number with two decimals (rounded down); 0 when den is 0. */
void jsonw_ratio(jsonw *w, const char *key, uint64_t num, uint64_t den);
/* v is escaped as JSON needs; a byte that does not start a valid UTF-8 character is written
   as U+FFFD, so the output is always valid JSON. */
void jsonw_str(jsonw *w, const char *key, const char *v);
/* The same for len bytes at v (NUL bytes included, as \u0000). */
void jsonw_strn(jsonw *w, const char *key, const char *v, size_t len);
/* Raw text after the value (such as a final newline). */
void jsonw_raw(jsonw *w, const char *text);

/* True if everything fitted; jsonw_len is then the length written (the buffer is not
   NUL-terminated). */
bool jsonw_ok(const jsonw *w);
size_t jsonw_len(const jsonw *w);

#endif
