/*
 * /stats: one JSON object written with jsonw. The server's counters and the hubs' figures at
 * the top level (the keys are an interface: tests/e2e and operators read them), then the
 * cluster's object, written by the cluster. Also the helpers that count into the server's
 * counters (refusals by status, messages by size). Owns no state.
 */
#include "stats.h"

#include "cluster.h"
#include "jsonw.h"

/* The statuses counted apart, in the order of the REFUSED_ kinds, and their keys. */
static const int refused_status[REFUSED_OTHER] = {400, 401, 403, 404, 405, 426, 431, 503};
static const char *const refused_key[REFUSED_KINDS] = {"400", "401", "403", "404",  "405",
                                                       "426", "431", "503", "other"};

const uint64_t stats_size_bound[STATS_SIZE_BOUNDS] = {16,   64,    256,   1024,
                                                      4096, 16384, 65536, 1048576};

const char *stats_refused_name(int kind)
{
    return kind >= 0 && kind < REFUSED_KINDS ? refused_key[kind] : "?";
}

void stats_count_message(stats_counters *st, size_t len)
{
    int i = 0;
    while (i < STATS_SIZE_BOUNDS && len > stats_size_bound[i]) {
        i++;
    }
    st->message_sizes[i]++;
    st->messages_in++;
    st->bytes_in += len;
}

void stats_count_refusal(stats_counters *st, int status)
{
    int kind = REFUSED_OTHER;
    for (int i = 0; i < REFUSED_OTHER; i++) {
        if (refused_status[i] == status) {
            kind = i;
            break;
        }
    }
    st->refused[kind]++;
}

static void write_refused(jsonw *w, const stats_counters *st)
{
    jsonw_object(w, "refused");
    for (int i = 0; i < REFUSED_KINDS; i++) {
        jsonw_u64(w, refused_key[i], st->refused[i]);
    }
    jsonw_u64(w, "fd_limit", st->refused_fd_limit);
    jsonw_u64(w, "per_address", st->refused_per_address);
    jsonw_object(w, "auth");
    for (int i = 0; i < AUTH_CAUSES; i++) {
        jsonw_u64(w, auth_cause_name((auth_cause)i), st->refused_auth[i]);
    }
    jsonw_end(w);
    jsonw_end(w);
}

static void write_flow(jsonw *w, const stats_counters *st)
{
    jsonw_object(w, "flow");
    jsonw_u64(w, "paced_now", st->paused_now);
    jsonw_u64(w, "pace_events", st->pauses);
    jsonw_u64(w, "congested_now", st->congested_now);
    jsonw_u64(w, "cut_by_time", st->cut_by_time);
    jsonw_u64(w, "cut_by_bytes", st->cut_by_bytes);
    jsonw_end(w);
}

static void write_deflate(jsonw *w, const stats_deflate *z)
{
    jsonw_object(w, "deflate");
    jsonw_bool(w, "enabled", z->enabled);
    jsonw_u64(w, "compressed", z->calls);
    jsonw_u64(w, "bytes_in", z->bytes_in);
    jsonw_u64(w, "bytes_out", z->bytes_out);
    jsonw_ratio(w, "ratio", z->bytes_in, z->bytes_out);
    jsonw_u64(w, "not_compressed", z->plain);
    jsonw_u64(w, "sent_compressed", z->sent_compressed);
    jsonw_u64(w, "inflated", z->inflated);
    jsonw_u64(w, "inflate_streams", z->inflate_streams);
    jsonw_end(w);
}

/* Deliveries count the hubs' broadcasts and the server's echoes together. */
static void write_traffic(jsonw *w, const stats_input *in)
{
    const stats_counters *st = in->counters;
    wsfwd_stats rooms, global;
    wsfwd_hub_stats(in->rooms, &rooms, sizeof rooms);
    wsfwd_hub_stats(in->global, &global, sizeof global);
    jsonw_u64(w, "rooms", rooms.pools);
    jsonw_u64(w, "global_members", global.members);
    jsonw_u64(w, "messages_in", st->messages_in);
    jsonw_u64(w, "bytes_in", st->bytes_in);
    jsonw_u64(w, "messages_out", rooms.messages_out + global.messages_out + st->echoed);
    jsonw_u64(w, "bytes_out", rooms.bytes_out + global.bytes_out + st->echoed_bytes);
    jsonw_u64(w, "echoed", st->echoed);
    jsonw_u64(w, "slow_closes", rooms.slow_closes + global.slow_closes + st->echo_slow_closes);
    jsonw_u64(w, "slow_drops", rooms.slow_drops + global.slow_drops + st->echo_slow_drops);
}

void stats_respond(wsfwd_conn *conn, const stats_input *in)
{
    const stats_counters *st = in->counters;
    char body[4096]; /* every field is a bounded number: well under this */
    jsonw w;
    jsonw_init(&w, body, sizeof body);
    jsonw_object(&w, NULL);
    jsonw_str(&w, "version", wsfwd_version());
    jsonw_u64(&w, "uptime_ms", in->uptime_ms);
    jsonw_u64(&w, "connections", in->connections);
    jsonw_u64(&w, "tcp_connections", in->tcp_connections);
    jsonw_u64(&w, "accepted", st->accepted);
    write_traffic(&w, in);
    jsonw_u64(&w, "handshake_timeouts", st->handshake_timeouts);
    jsonw_u64(&w, "idle_timeouts", st->idle_timeouts);
    jsonw_u64(&w, "protocol_errors", st->protocol_errors);
    jsonw_u64(&w, "rate_limited", st->rate_limited);
    jsonw_object(&w, "forwarded");
    jsonw_u64(&w, "clients", st->forwarded);
    jsonw_u64(&w, "malformed", st->forwarded_malformed);
    jsonw_end(&w);
    jsonw_bool(&w, "auth_required", in->auth_required);
    write_refused(&w, st);
    write_flow(&w, st);
    write_deflate(&w, in->deflate);
    cluster_stats_write(in->cluster, &w);
    jsonw_end(&w);
    jsonw_raw(&w, "\n");
    if (!jsonw_ok(&w)) {
        (void)wsfwd_conn_refuse(conn, 500);
        return;
    }
    (void)wsfwd_conn_respond(conn, 200, "application/json", body, jsonw_len(&w));
}
