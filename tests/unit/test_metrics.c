/* The Prometheus text writer of /metrics (cli/metrics.c): lines, escaping of HELP text and
 * label values, a buffer too small at every size, and wsfwd's whole document from known
 * figures (families, the histogram, no cluster without --redis). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static void assert_written(const metricw *w, const char *want)
{
    assert_true(metricw_ok(w));
    assert_int_equal(metricw_len(w), strlen(want));
    assert_memory_equal(w->out.buf, want, strlen(want));
}

static void test_lines(void **state)
{
    (void)state;
    char buf[512];
    metricw w;
    metricw_init(&w, buf, sizeof buf);
    metricw_one(&w, "a_total", "counter", "Things.", UINT64_MAX);
    metricw_family(&w, "b", "gauge", "By kind.");
    metricw_sample(&w, "b", "kind", "x", 0);
    metricw_sample(&w, "b", "kind", "y", 7);
    metricw_millis(&w, "t_seconds", 1700000000123);
    metricw_millis(&w, "u_seconds", 5);
    assert_written(&w, "# HELP a_total Things.\n# TYPE a_total counter\n"
                       "a_total 18446744073709551615\n"
                       "# HELP b By kind.\n# TYPE b gauge\nb{kind=\"x\"} 0\nb{kind=\"y\"} 7\n"
                       "t_seconds 1700000000.123\nu_seconds 0.005\n");
}

static void test_escaped(void **state)
{
    (void)state;
    char buf[256];
    metricw w;
    metricw_init(&w, buf, sizeof buf);
    /* HELP escapes backslash and newline only; a label value also the double quote. */
    metricw_family(&w, "m", "gauge", "a \"q\" \\ and\nmore");
    metricw_sample(&w, "m", "v", "1.0 \"beta\" C:\\x\nend", 1);
    assert_written(&w, "# HELP m a \"q\" \\\\ and\\nmore\n# TYPE m gauge\n"
                       "m{v=\"1.0 \\\"beta\\\" C:\\\\x\\nend\"} 1\n");
}

static void test_too_small(void **state)
{
    (void)state;
    char full[256];
    metricw w;
    metricw_init(&w, full, sizeof full);
    metricw_one(&w, "a_total", "counter", "Things.", 12345);
    metricw_sample(&w, "b", "k", "\"", 1);
    assert_true(metricw_ok(&w));
    size_t need = metricw_len(&w);
    for (size_t cap = 0; cap < need; cap++) {
        char buf[256];
        metricw_init(&w, buf, cap);
        metricw_one(&w, "a_total", "counter", "Things.", 12345);
        metricw_sample(&w, "b", "k", "\"", 1);
        assert_false(metricw_ok(&w));
        assert_true(metricw_len(&w) <= cap);
    }
    metricw_init(&w, full, need);
    metricw_one(&w, "a_total", "counter", "Things.", 12345);
    metricw_sample(&w, "b", "k", "\"", 1);
    assert_true(metricw_ok(&w));
}

static void test_message_sizes(void **state)
{
    (void)state;
    stats_counters st;
    memset(&st, 0, sizeof st);
    stats_count_message(&st, 0);
    stats_count_message(&st, 16);
    stats_count_message(&st, 17);
    stats_count_message(&st, 1048576);
    stats_count_message(&st, 1048577);
    assert_int_equal(st.message_sizes[0], 2);
    assert_int_equal(st.message_sizes[1], 1);
    assert_int_equal(st.message_sizes[STATS_SIZE_BOUNDS - 1], 1);
    assert_int_equal(st.message_sizes[STATS_SIZE_BOUNDS], 1);
    assert_int_equal(st.messages_in, 5);
    assert_int_equal(st.bytes_in, 16 + 17 + 1048576 + 1048577);
}

/* wsfwd's document from known figures, with the library's real (empty) hubs. */
typedef struct doc {
    wsfwd_config *cfg;
    wsfwd_hub *rooms, *global;
    stats_counters st;
    stats_deflate z;
    char buf[32768];
    metricw w;
} doc;

static doc *write_doc(void)
{
    static doc d;
    memset(&d, 0, sizeof d);
    assert_int_equal(wsfwd_config_new(NULL, &d.cfg), WSFWD_OK);
    assert_int_equal(wsfwd_hub_new(d.cfg, &d.rooms), WSFWD_OK);
    assert_int_equal(wsfwd_hub_new(d.cfg, &d.global), WSFWD_OK);
    stats_count_message(&d.st, 10);
    stats_count_message(&d.st, 300);
    stats_count_refusal(&d.st, 404);
    stats_count_refusal(&d.st, 418);
    d.st.refused_auth[AUTH_EXPIRED] = 3;
    d.st.echoed = 2;
    d.st.echoed_bytes = 20;
    d.st.cut_by_bytes = 4;
    d.z.enabled = true;
    d.z.calls = 9;
    stats_input in = {
        .counters = &d.st,
        .start_time_ms = 1700000000500,
        .connections = 5,
        .tcp_connections = 6,
        .rooms = d.rooms,
        .global = d.global,
        .deflate = &d.z,
    };
    metricw_init(&d.w, d.buf, sizeof d.buf - 1);
    metrics_write(&d.w, &in);
    assert_true(metricw_ok(&d.w));
    d.buf[metricw_len(&d.w)] = '\0';
    wsfwd_hub_free(d.rooms);
    wsfwd_hub_free(d.global);
    wsfwd_config_free(d.cfg);
    return &d;
}

static void assert_has(const char *text, const char *line)
{
    if (strstr(text, line) == NULL) {
        fail_msg("missing: %s", line);
    }
}

static void test_document(void **state)
{
    (void)state;
    const char *t = write_doc()->buf;
    char version[96];
    snprintf(version, sizeof version, "\nwsfwd_build_info{version=\"%s\"} 1\n", wsfwd_version());
    assert_has(t, version);
    assert_has(t, "\nwsfwd_process_start_time_seconds 1700000000.500\n");
    assert_has(t, "\nwsfwd_connections 5\n");
    assert_has(t, "\nwsfwd_tcp_connections 6\n");
    assert_has(t, "\n# TYPE wsfwd_messages_received_total counter\n"
                  "wsfwd_messages_received_total 2\n");
    assert_has(t, "\nwsfwd_received_bytes_total 310\n");
    assert_has(t, "\nwsfwd_deliveries_total 2\n");
    assert_has(t, "\nwsfwd_delivered_bytes_total 20\n");
    assert_has(t, "\nwsfwd_refusals_total{status=\"404\"} 1\n");
    assert_has(t, "\nwsfwd_refusals_total{status=\"other\"} 1\n");
    assert_has(t, "\nwsfwd_auth_refusals_total{cause=\"expired\"} 3\n");
    assert_has(t, "\nwsfwd_slow_reader_cuts_total{cause=\"bytes\"} 4\n");
    assert_has(t, "\nwsfwd_deflate_enabled 1\n");
    assert_has(t, "\nwsfwd_deflate_compressions_total 9\n");
    /* The histogram: cumulative buckets, then +Inf, _sum and _count. */
    assert_has(t, "\n# TYPE wsfwd_message_size_bytes histogram\n"
                  "wsfwd_message_size_bytes_bucket{le=\"16\"} 1\n"
                  "wsfwd_message_size_bytes_bucket{le=\"64\"} 1\n"
                  "wsfwd_message_size_bytes_bucket{le=\"256\"} 1\n"
                  "wsfwd_message_size_bytes_bucket{le=\"1024\"} 2\n");
    assert_has(t, "\nwsfwd_message_size_bytes_bucket{le=\"+Inf\"} 2\n"
                  "wsfwd_message_size_bytes_sum 310\n"
                  "wsfwd_message_size_bytes_count 2\n");
    assert_null(strstr(t, "wsfwd_cluster_")); /* no --redis */
}

/* Every line is a HELP, a TYPE or a sample of the family last typed; counters end in _total. */
static void test_document_shape(void **state)
{
    (void)state;
    char *t = write_doc()->buf;
    char family[128] = "";
    char type[16] = "";
    size_t families = 0;
    for (char *line = strtok(t, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%127s", family), 1);
            assert_int_equal(strncmp(family, "wsfwd_", 6), 0);
            families++;
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[128];
            assert_int_equal(sscanf(line + 7, "%127s %15s", name, type), 2);
            assert_string_equal(name, family);
            if (strcmp(type, "counter") == 0) {
                size_t n = strlen(name);
                assert_true(n > 6 && strcmp(name + n - 6, "_total") == 0);
            }
            continue;
        }
        assert_int_equal(strncmp(line, family, strlen(family)), 0);
        assert_non_null(strrchr(line, ' '));
    }
    assert_true(families > 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),     cmocka_unit_test(test_escaped),
        cmocka_unit_test(test_too_small), cmocka_unit_test(test_message_sizes),
        cmocka_unit_test(test_document),  cmocka_unit_test(test_document_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
