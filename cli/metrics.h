/*
 * GET /metrics: the figures of /stats (stats_input) in the Prometheus text exposition format
 * 0.0.4, and the small writer it uses. The writer fills a caller's buffer with HELP and TYPE
 * lines and samples and escapes what the format needs escaped; past the end of the buffer it
 * stops writing and remembers it (metricw_ok, through jsonw's buffer), so the caller checks
 * once at the end.
 */
#ifndef WSFWD_CLI_METRICS_H
#define WSFWD_CLI_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"
#include "wsfwd.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#include "jsonw.h"

/* The bounded buffer and its overflow flag are jsonw's (only its raw text is used). */
typedef struct metricw {
    jsonw out;
} metricw;

void metricw_init(metricw *w, char *buf, size_t cap);

/* The "# HELP" and "# TYPE" lines of a family; type is "counter", "gauge" or "histogram". */
void metricw_family(metricw *w, const char *name, const char *type, const char *help);

/* One sample line: name, then {label="value"} unless label is NULL, then v. */
void metricw_sample(metricw *w, const char *name, const char *label, const char *value, uint64_t v);

/* One sample line whose value is ms / 1000 with three decimals (seconds, from milliseconds). */
void metricw_millis(metricw *w, const char *name, uint64_t ms);

/* A family of one sample without labels. */
void metricw_one(metricw *w, const char *name, const char *type, const char *help, uint64_t v);

/* True if everything fitted; metricw_len is then the length written (not NUL-terminated). */
bool metricw_ok(const metricw *w);
size_t metricw_len(const metricw *w);

/* Every metric of wsfwd for these figures. */
void metrics_write(metricw *w, const stats_input *in);

/* Answer GET /metrics on conn (500 if the text does not fit). */
void metrics_respond(wsfwd_conn *conn, const stats_input *in);

#endif
