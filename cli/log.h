/* One line per event on stderr: time, level, then key=value fields and a message, as text or
   as one JSON object (--log-format); and the escaping of untrusted bytes shown in a line. */
#ifndef WSFWD_CLI_LOG_H
#define WSFWD_CLI_LOG_H

#include <stddef.h>
#include <time.h>

typedef enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } log_level;
typedef enum log_format { LOG_TEXT = 0, LOG_JSON = 1 } log_format;

/* Parse "error", "warn", "info" or "debug"; returns -1 for anything else. */
int log_parse_level(const char *s);

void log_set_level(log_level level);
int log_enabled(log_level level);
void log_set_format(log_format format);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void log_msg(log_level level, const char *fmt, ...);

/*
 * The line log_msg writes for a message at a time, NUL-terminated, with its newline; returns
 * its length. Text: "TIME LEVEL MESSAGE". JSON: {"ts":TIME,"level":LEVEL,"msg":...} where
 * the key=value words that open the message (a client's conn=, peer=, room=) become members
 * of their own and msg is the rest. A line that does not fit cap is cut short (JSON: its msg).
 */
size_t log_render(log_format format, log_level level, const struct timespec *ts, const char *msg,
                  char *out, size_t cap);

/* Copy untrusted bytes for a log line: printable ASCII as is, the rest as \xNN; cut short. */
void log_escape(const char *in, size_t len, char *out, size_t cap);
/* The same for a key=value field's value: a space is also escaped, so the value is one word. */
void log_escape_value(const char *in, size_t len, char *out, size_t cap);

#define LOG(level, ...)                                                                            \
    do {                                                                                           \
        if (log_enabled(level)) {                                                                  \
            log_msg(level, __VA_ARGS__);                                                           \
        }                                                                                          \
    } while (0)

#endif
