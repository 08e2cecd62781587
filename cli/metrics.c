/*
 * /metrics (metrics.h): the writer of the Prometheus text format, and wsfwd's metrics written
 * with it from the same stats_input as /stats: the server's counters, the hubs' figures, the
 * codec's, and the cluster's read-only figures (cluster_figures_get). Names follow
 * Prometheus' conventions: the wsfwd_ prefix, _total on counters, bytes and seconds. No label
 * is per room or per connection. Owns no state.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdio.h>

#include "auth.h"
#include "cluster.h"

/* ---- The writer ----------------------------------------------------------------------------- */

void metricw_init(metricw *w, char *buf, size_t cap)
{
    jsonw_init(&w->out, buf, cap);
}

static void puts_(metricw *w, const char *p)
{
    jsonw_raw(&w->out, p);
}

/* HELP text escapes backslash and newline; a label value also the double quote. */
static void put_escaped(metricw *w, const char *p, bool quote)
{
    for (; *p != '\0'; p++) {
        char one[2] = {*p, '\0'};
        puts_(w, *p == '\\' ? "\\\\" : *p == '\n' ? "\\n" : *p == '"' && quote ? "\\\"" : one);
    }
}

void metricw_family(metricw *w, const char *name, const char *type, const char *help)
{
    puts_(w, "# HELP ");
    puts_(w, name);
    puts_(w, " ");
    put_escaped(w, help, false);
    puts_(w, "\n# TYPE ");
    puts_(w, name);
    puts_(w, " ");
    puts_(w, type);
    puts_(w, "\n");
}

static void put_name(metricw *w, const char *name, const char *label, const char *value)
{
    puts_(w, name);
    if (label != NULL) {
        puts_(w, "{");
        puts_(w, label);
        puts_(w, "=\"");
        put_escaped(w, value, true);
        puts_(w, "\"}");
    }
}

void metricw_sample(metricw *w, const char *name, const char *label, const char *value, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, " %" PRIu64 "\n", v);
    put_name(w, name, label, value);
    puts_(w, num);
}

void metricw_millis(metricw *w, const char *name, uint64_t ms)
{
    char num[32];
    snprintf(num, sizeof num, " %" PRIu64 ".%03" PRIu64 "\n", ms / 1000, ms % 1000);
    puts_(w, name);
    puts_(w, num);
}

void metricw_one(metricw *w, const char *name, const char *type, const char *help, uint64_t v)
{
    metricw_family(w, name, type, help);
    metricw_sample(w, name, NULL, NULL, v);
}

bool metricw_ok(const metricw *w)
{
    return jsonw_ok(&w->out);
}

size_t metricw_len(const metricw *w)
{
    return jsonw_len(&w->out);
}

/* ---- wsfwd's metrics ------------------------------------------------------------------------ */

static void counter(metricw *w, const char *name, const char *help, uint64_t v)
{
    metricw_one(w, name, "counter", help, v);
}

static void gauge(metricw *w, const char *name, const char *help, uint64_t v)
{
    metricw_one(w, name, "gauge", help, v);
}

static void write_process(metricw *w, const stats_input *in)
{
    metricw_family(w, "wsfwd_build_info", "gauge", "Always 1; the version of wsfwd as a label.");
    metricw_sample(w, "wsfwd_build_info", "version", wsfwd_version(), 1);
    metricw_family(w, "wsfwd_process_start_time_seconds", "gauge",
                   "When the server started, in seconds since the Unix epoch.");
    metricw_millis(w, "wsfwd_process_start_time_seconds", in->start_time_ms);
    gauge(w, "wsfwd_auth_required", "1 if room tokens are required (--auth-secret-file).",
          in->auth_required ? 1 : 0);
}

static void write_connections(metricw *w, const stats_input *in, const wsfwd_stats *rooms,
                              const wsfwd_stats *global)
{
    const stats_counters *st = in->counters;
    gauge(w, "wsfwd_connections", "Accepted WebSocket connections now.", in->connections);
    gauge(w, "wsfwd_tcp_connections", "TCP connections now (WebSocket or not).",
          in->tcp_connections);
    counter(w, "wsfwd_tcp_connections_accepted_total", "TCP connections accepted.", st->accepted);
    gauge(w, "wsfwd_rooms", "Rooms (/ws/<room>) now.", rooms->pools);
    gauge(w, "wsfwd_global_members", "Members of the global pool (/ws) now.", global->members);
}

/* Deliveries count the hubs' broadcasts and the server's echoes together, as in /stats. */
static void write_traffic(metricw *w, const stats_input *in, const wsfwd_stats *rooms,
                          const wsfwd_stats *global)
{
    const stats_counters *st = in->counters;
    counter(w, "wsfwd_messages_received_total", "Messages received from clients.", st->messages_in);
    counter(w, "wsfwd_received_bytes_total", "Payload bytes of the messages received.",
            st->bytes_in);
    counter(w, "wsfwd_deliveries_total",
            "Messages delivered: one per recipient per message, echoes included.",
            rooms->messages_out + global->messages_out + st->echoed);
    counter(w, "wsfwd_delivered_bytes_total", "Payload bytes of the deliveries.",
            rooms->bytes_out + global->bytes_out + st->echoed_bytes);
    counter(w, "wsfwd_echoes_total", "Messages echoed on /echo.", st->echoed);
    counter(w, "wsfwd_network_received_bytes_total", "Bytes read from client sockets.",
            st->bytes_read);
    counter(w, "wsfwd_network_transmitted_bytes_total", "Bytes written to client sockets.",
            st->bytes_written);
}

static void write_sizes(metricw *w, const stats_counters *st)
{
    static const char name[] = "wsfwd_message_size_bytes_bucket";
    metricw_family(w, "wsfwd_message_size_bytes", "histogram",
                   "Payload sizes of the messages received.");
    uint64_t below = 0;
    for (int i = 0; i < STATS_SIZE_BOUNDS; i++) {
        char le[24];
        snprintf(le, sizeof le, "%" PRIu64, stats_size_bound[i]);
        below += st->message_sizes[i];
        metricw_sample(w, name, "le", le, below);
    }
    metricw_sample(w, name, "le", "+Inf", below + st->message_sizes[STATS_SIZE_BOUNDS]);
    metricw_sample(w, "wsfwd_message_size_bytes_sum", NULL, NULL, st->bytes_in);
    metricw_sample(w, "wsfwd_message_size_bytes_count", NULL, NULL, st->messages_in);
}

static void write_refusals(metricw *w, const stats_counters *st)
{
    metricw_family(w, "wsfwd_refusals_total", "counter",
                   "HTTP requests refused, by status (\"other\": any other status).");
    for (int i = 0; i < REFUSED_KINDS; i++) {
        metricw_sample(w, "wsfwd_refusals_total", "status", stats_refused_name(i), st->refused[i]);
    }
    metricw_family(w, "wsfwd_auth_refusals_total", "counter",
                   "Handshakes refused for their room token (401 and 403), by cause.");
    for (int i = 0; i < AUTH_CAUSES; i++) {
        metricw_sample(w, "wsfwd_auth_refusals_total", "cause", auth_cause_name((auth_cause)i),
                       st->refused_auth[i]);
    }
    counter(w, "wsfwd_per_address_refusals_total",
            "Handshakes refused with 503 by --max-connections-per-address.",
            st->refused_per_address);
    counter(w, "wsfwd_fd_limit_refusals_total",
            "TCP connections shed when out of file descriptors.", st->refused_fd_limit);
    counter(w, "wsfwd_rate_limited_total", "Connections closed with 1008 by --rate-limit.",
            st->rate_limited);
    counter(w, "wsfwd_forwarded_clients_total",
            "Clients named by X-Forwarded-For from a --trust-proxy peer.", st->forwarded);
    counter(w, "wsfwd_forwarded_malformed_total",
            "X-Forwarded-For headers from a trusted proxy not read (its address kept).",
            st->forwarded_malformed);
}

static void write_errors(metricw *w, const stats_counters *st)
{
    metricw_family(w, "wsfwd_timeouts_total", "counter",
                   "Connections closed by a timeout, by kind (handshake, idle).");
    metricw_sample(w, "wsfwd_timeouts_total", "kind", "handshake", st->handshake_timeouts);
    metricw_sample(w, "wsfwd_timeouts_total", "kind", "idle", st->idle_timeouts);
    counter(w, "wsfwd_protocol_errors_total", "Connections failed on a protocol error.",
            st->protocol_errors);
}

static void write_flow(metricw *w, const stats_counters *st, const wsfwd_stats *rooms,
                       const wsfwd_stats *global)
{
    metricw_family(w, "wsfwd_slow_reader_actions_total", "counter",
                   "Slow-reader policy actions, by action: close (a reader closed with 1008), "
                   "drop (a message skipped for a reader).");
    metricw_sample(w, "wsfwd_slow_reader_actions_total", "action", "close",
                   rooms->slow_closes + global->slow_closes + st->echo_slow_closes);
    metricw_sample(w, "wsfwd_slow_reader_actions_total", "action", "drop",
                   rooms->slow_drops + global->slow_drops + st->echo_slow_drops);
    metricw_family(w, "wsfwd_slow_reader_cuts_total", "counter",
                   "Slow readers cut, by cause: time (--slow-timeout), bytes (--max-queue).");
    metricw_sample(w, "wsfwd_slow_reader_cuts_total", "cause", "time", st->cut_by_time);
    metricw_sample(w, "wsfwd_slow_reader_cuts_total", "cause", "bytes", st->cut_by_bytes);
    gauge(w, "wsfwd_paced_connections", "Clients not read now (flow control).", st->paused_now);
    counter(w, "wsfwd_pace_events_total", "Times a client stopped being read (flow control).",
            st->pauses);
    gauge(w, "wsfwd_congested_connections",
          "Open clients past the high mark of their queue, not yet cut.", st->congested_now);
}

static void write_deflate(metricw *w, const stats_deflate *z)
{
    gauge(w, "wsfwd_deflate_enabled", "1 if permessage-deflate is on (--deflate).",
          z->enabled ? 1 : 0);
    counter(w, "wsfwd_deflate_compressions_total", "Compressions that made a message shorter.",
            z->calls);
    counter(w, "wsfwd_deflate_input_bytes_total", "Bytes given to those compressions.",
            z->bytes_in);
    counter(w, "wsfwd_deflate_output_bytes_total", "Bytes those compressions made.", z->bytes_out);
    counter(w, "wsfwd_deflate_not_compressed_total",
            "Compressions that did not shrink their message: sent plain.", z->plain);
    counter(w, "wsfwd_deflate_sent_compressed_total", "Deliveries sent compressed.",
            z->sent_compressed);
    counter(w, "wsfwd_deflate_inflated_messages_total", "Messages received compressed.",
            z->inflated);
    gauge(w, "wsfwd_deflate_inflate_streams", "Inflate streams alive now.", z->inflate_streams);
}

static void write_cluster_link(metricw *w, cluster_link link)
{
    static const char *const states[] = {"down", "connecting", "up"};
    static const cluster_link links[] = {CLUSTER_LINK_DOWN, CLUSTER_LINK_CONNECTING,
                                         CLUSTER_LINK_UP};
    metricw_family(w, "wsfwd_cluster_link_state", "gauge",
                   "1 for the state the link to Redis is in (down, connecting, up), else 0.");
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        metricw_sample(w, "wsfwd_cluster_link_state", "state", states[i], link == links[i]);
    }
}

static void write_cluster(metricw *w, const struct cluster *cl)
{
    cluster_figures f;
    if (!cluster_figures_get(cl, &f)) {
        return;
    }
    write_cluster_link(w, f.link);
    gauge(w, "wsfwd_cluster_rooms", "Rooms with local members.", f.rooms);
    gauge(w, "wsfwd_cluster_subscribed_rooms", "Rooms subscribed now.", f.subscribed_rooms);
    counter(w, "wsfwd_cluster_published_total", "Messages published to Redis.", f.published);
    counter(w, "wsfwd_cluster_received_total", "Messages received from Redis.", f.received);
    counter(w, "wsfwd_cluster_local_only_total",
            "Local messages delivered only here, the link being down.", f.local_only);
    counter(w, "wsfwd_cluster_dropped_inflight_total",
            "Local messages over the in-flight cap, delivered only here.", f.dropped_inflight);
    gauge(w, "wsfwd_cluster_inflight_bytes", "Bytes of messages in flight through Redis now.",
          f.inflight_bytes);
    gauge(w, "wsfwd_cluster_max_inflight_bytes", "The cap on the bytes in flight.",
          f.max_inflight_bytes);
    counter(w, "wsfwd_cluster_malformed_total", "Malformed messages received from Redis.",
            f.malformed);
    counter(w, "wsfwd_cluster_publish_errors_total", "PUBLISH commands that failed.",
            f.publish_errors);
    counter(w, "wsfwd_cluster_link_losses_total", "Times the link to Redis was lost.",
            f.link_losses);
    counter(w, "wsfwd_cluster_reconnects_total", "Times the link to Redis came back up.",
            f.reconnects);
}

void metrics_write(metricw *w, const stats_input *in)
{
    wsfwd_stats rooms, global;
    wsfwd_hub_stats(in->rooms, &rooms, sizeof rooms);
    wsfwd_hub_stats(in->global, &global, sizeof global);
    write_process(w, in);
    write_connections(w, in, &rooms, &global);
    write_traffic(w, in, &rooms, &global);
    write_sizes(w, in->counters);
    write_refusals(w, in->counters);
    write_errors(w, in->counters);
    write_flow(w, in->counters, &rooms, &global);
    write_deflate(w, in->deflate);
    write_cluster(w, in->cluster);
}

void metrics_respond(wsfwd_conn *conn, const stats_input *in)
{
    char body[32768]; /* a fixed set of families, each a few lines: well under this */
    metricw w;
    metricw_init(&w, body, sizeof body);
    metrics_write(&w, in);
    if (!metricw_ok(&w)) {
        (void)wsfwd_conn_refuse(conn, 500);
        return;
    }
    (void)wsfwd_conn_respond(conn, 200, METRICS_CONTENT_TYPE, body, metricw_len(&w));
}
