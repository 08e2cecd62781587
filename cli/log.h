/* One line per event on stderr: time, level, then key=value fields and a message; and the
   escaping of untrusted bytes shown in a line. */
#ifndef WSFWD_CLI_LOG_H
#define WSFWD_CLI_LOG_H

#include <stddef.h>

typedef enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } log_level;

/* Parse "error", "warn", "info" or "debug"; returns -1 for anything else. */
int log_parse_level(const char *s);

void log_set_level(log_level level);
int log_enabled(log_level level);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void log_msg(log_level level, const char *fmt, ...);

/* Copy untrusted bytes for a log line: printable ASCII as is, the rest as \xNN; cut short. */
void log_escape(const char *in, size_t len, char *out, size_t cap);

#define LOG(level, ...)                                                                            \
    do {                                                                                           \
        if (log_enabled(level)) {                                                                  \
            log_msg(level, __VA_ARGS__);                                                           \
        }                                                                                          \
    } while (0)

#endif
