#include "options.h"

#include "quota.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_proto.h"

static void defaults(options *o)
{
    memset(o, 0, sizeof *o);
    o->max_message = 1 << 20;
    o->max_queue = 1 << 20;
    o->slow_policy = WSFWD_SLOW_CLOSE;
    o->max_header = 8192;
    o->max_rooms = 100000;
    o->max_room_name = 128;
    o->handshake_timeout_ms = 10000;
    o->idle_timeout_ms = 60000;
    o->pong_timeout_ms = 10000;
    o->close_timeout_ms = 5000;
    o->shutdown_timeout_ms = 5000;
    o->slow_timeout_ms = 5000;
    o->log_level = LOG_INFO;
    o->redis_max_inflight = 16 << 20;
    o->redis_timeout_ms = 2000;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: wsfwd [options]\n"
            "\n"
            "WebSocket fan-out server. Routes: /echo echoes every message to its sender;\n"
            "/ws is the global pool; /ws/<room> a named room (each message goes to every\n"
            "other member); / a demo page (/?room=name); /healthz; /stats (JSON).\n"
            "\n"
            "  --listen ADDR:PORT          address to listen on, IPv4 or [IPv6]; may repeat\n"
            "                              (default 127.0.0.1:8080; port 0 picks a free one)\n"
            "  --max-connections N         refuse handshakes past N connections with 503\n"
            "                              (default 0: as many as file descriptors allow)\n"
            "  --max-connections-per-address N\n"
            "                              refuse handshakes past N connections from one\n"
            "                              client address with 503 (default 0: no cap)\n"
            "  --max-message BYTES         largest message accepted (default 1048576)\n"
            "  --max-queue BYTES           output queued per connection before the slow-reader\n"
            "                              policy applies (default 1048576); past half of it\n"
            "                              the room's senders are paced (not read) until it\n"
            "                              drains to an eighth\n"
            "  --slow-timeout MS           a room member whose backlog stays past half of\n"
            "                              --max-queue this long gets the slow-reader policy\n"
            "                              (default 5000; 0: only --max-queue applies)\n"
            "  --slow-policy close|drop    close slow readers with 1008, or drop messages for\n"
            "                              them (default close)\n"
            "  --max-header BYTES          largest handshake header block (default 8192)\n"
            "  --max-rooms N               most rooms at once (default 100000)\n"
            "  --max-room-name BYTES       longest room name (default 128)\n"
            "  --max-room-members N        most members per room, and in /ws (default 0:\n"
            "                              no cap)\n"
            "  --allow-origin ORIGIN       accept only handshakes with this Origin; may repeat\n"
            "                              (default: any Origin)\n"
            "  --auth-secret-file PATH     require a room token (JWT, HS256) signed with the\n"
            "                              key in PATH on every WebSocket; give it twice\n"
            "                              while rotating keys; SIGHUP re-reads the files\n"
            "                              (default: none, no token needed)\n"
            "  --rate-limit N              close a connection sending over N messages a\n"
            "                              second with 1008 (default 0: no limit)\n"
            "  --rate-burst N              messages a connection may send at once within\n"
            "                              --rate-limit (default: N of --rate-limit)\n"
            "  --handshake-timeout MS      drop a connection that has not completed its\n"
            "                              handshake in time (default 10000)\n"
            "  --idle-timeout MS           ping a connection idle this long (default 60000;\n"
            "                              0: never)\n"
            "  --pong-timeout MS           drop it if no data or pong follows (default 10000)\n"
            "  --close-timeout MS          wait for a closing handshake (default 5000)\n"
            "  --shutdown-timeout MS       on SIGINT/SIGTERM, wait for clients to close\n"
            "                              (default 5000)\n"
            "  --log-level LEVEL           error, warn, info or debug (default info)\n"
            "  --redis HOST:PORT|URL       share rooms with the other nodes on this Redis\n"
            "                              (redis://[:PASSWORD@]HOST[:PORT][/DB]; default:\n"
            "                              none, a node alone)%s\n"
            "  --redis-order one|local-first\n"
            "                              one order per room on every node (default), or\n"
            "                              local members first, without that guarantee\n"
            "  --redis-max-inflight BYTES  local messages on their way through Redis before\n"
            "                              more stay local (default 16777216)\n"
            "  --redis-timeout MS          connect and PING timeout (default 2000)\n"
            "  --redis-password-file PATH  the Redis password, read from PATH rather than\n"
            "                              given in the URL (default: the URL's, if any)\n"
            "  --version                   print the version and exit\n"
            "  -h, --help                  print this help and exit\n"
            "\n"
            "Options take --name VALUE or --name=VALUE. See wsfwd(1).\n",
#ifdef WSFWD_HAVE_HIREDIS
            ""
#else
            "\n                              [not in this build: no hiredis]"
#endif
            );
}

static int parse_size(const char *name, const char *s, size_t min, size_t max, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] == '\0' || s[0] == '-' || *end != '\0' || errno != 0 || v < min || v > max) {
        fprintf(stderr, "wsfwd: %s needs a whole number from %zu to %zu, not '%s'\n", name, min,
                max, s);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static int parse_ms(const char *name, const char *s, size_t min, unsigned *out)
{
    size_t v;
    if (parse_size(name, s, min, 86400000, &v) != 0) {
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

int options_parse(options *o, int argc, char **argv)
{
    defaults(o);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("wsfwd %s\n", wsfwd_version());
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "wsfwd: unexpected argument '%s' (see --help)\n", arg);
            return 2;
        }
        /* Every other option takes a value: --name VALUE or --name=VALUE. */
        char name[64];
        const char *value;
        const char *eq = strchr(arg, '=');
        if (eq != NULL) {
            size_t n = (size_t)(eq - arg);
            if (n >= sizeof name) {
                fprintf(stderr, "wsfwd: unknown option '%s' (see --help)\n", arg);
                return 2;
            }
            memcpy(name, arg, n);
            name[n] = '\0';
            value = eq + 1;
        } else {
            if (strlen(arg) >= sizeof name) {
                fprintf(stderr, "wsfwd: unknown option '%s' (see --help)\n", arg);
                return 2;
            }
            strcpy(name, arg);
            if (i + 1 >= argc) {
                fprintf(stderr, "wsfwd: %s needs a value (see --help)\n", name);
                return 2;
            }
            value = argv[++i];
        }
        int rc = 0;
        if (strcmp(name, "--listen") == 0) {
            if (o->nlisten == MAX_LISTEN) {
                fprintf(stderr, "wsfwd: at most %d --listen addresses\n", MAX_LISTEN);
                return 2;
            }
            o->listen[o->nlisten++] = value;
        } else if (strcmp(name, "--allow-origin") == 0) {
            if (o->norigins == MAX_ORIGINS) {
                fprintf(stderr, "wsfwd: at most %d --allow-origin values\n", MAX_ORIGINS);
                return 2;
            }
            o->origins[o->norigins++] = value;
        } else if (strcmp(name, "--max-connections") == 0) {
            rc = parse_size(name, value, 0, INT_MAX, &o->max_connections);
        } else if (strcmp(name, "--max-connections-per-address") == 0) {
            rc = parse_size(name, value, 0, INT_MAX, &o->max_per_address);
        } else if (strcmp(name, "--auth-secret-file") == 0) {
            if (o->nauth_files == AUTH_MAX_KEYS) {
                fprintf(stderr, "wsfwd: at most %d --auth-secret-file keys (the current one "
                        "and, while rotating, the other)\n", AUTH_MAX_KEYS);
                return 2;
            }
            if (value[0] == '\0') {
                fprintf(stderr, "wsfwd: --auth-secret-file needs a path\n");
                return 2;
            }
            o->auth_files[o->nauth_files++] = value;
        } else if (strcmp(name, "--rate-limit") == 0) {
            rc = parse_size(name, value, 0, RATE_MAX, &o->rate_limit);
        } else if (strcmp(name, "--rate-burst") == 0) {
            rc = parse_size(name, value, 1, RATE_MAX, &o->rate_burst);
        } else if (strcmp(name, "--max-message") == 0) {
            rc = parse_size(name, value, 1, (size_t)1 << 31, &o->max_message);
        } else if (strcmp(name, "--max-queue") == 0) {
            rc = parse_size(name, value, 1024, (size_t)1 << 31, &o->max_queue);
        } else if (strcmp(name, "--max-header") == 0) {
            rc = parse_size(name, value, 256, (size_t)1 << 20, &o->max_header);
        } else if (strcmp(name, "--max-rooms") == 0) {
            rc = parse_size(name, value, 1, (size_t)1 << 30, &o->max_rooms);
        } else if (strcmp(name, "--max-room-name") == 0) {
            rc = parse_size(name, value, 1, 4096, &o->max_room_name);
        } else if (strcmp(name, "--max-room-members") == 0) {
            rc = parse_size(name, value, 0, INT_MAX, &o->max_room_members);
        } else if (strcmp(name, "--slow-policy") == 0) {
            if (strcmp(value, "close") == 0) {
                o->slow_policy = WSFWD_SLOW_CLOSE;
            } else if (strcmp(value, "drop") == 0) {
                o->slow_policy = WSFWD_SLOW_DROP;
            } else {
                fprintf(stderr, "wsfwd: --slow-policy is close or drop, not '%s'\n", value);
                rc = -1;
            }
        } else if (strcmp(name, "--slow-timeout") == 0) {
            rc = parse_ms(name, value, 0, &o->slow_timeout_ms);
        } else if (strcmp(name, "--handshake-timeout") == 0) {
            rc = parse_ms(name, value, 1, &o->handshake_timeout_ms);
        } else if (strcmp(name, "--idle-timeout") == 0) {
            rc = parse_ms(name, value, 0, &o->idle_timeout_ms);
        } else if (strcmp(name, "--pong-timeout") == 0) {
            rc = parse_ms(name, value, 1, &o->pong_timeout_ms);
        } else if (strcmp(name, "--close-timeout") == 0) {
            rc = parse_ms(name, value, 1, &o->close_timeout_ms);
        } else if (strcmp(name, "--shutdown-timeout") == 0) {
            rc = parse_ms(name, value, 0, &o->shutdown_timeout_ms);
        } else if (strcmp(name, "--redis") == 0) {
            cluster_url url;
            const char *why = NULL;
#ifndef WSFWD_HAVE_HIREDIS
            fprintf(stderr, "wsfwd: --redis: this wsfwd was built without Redis support "
                            "(install libhiredis-dev and rebuild; see README.md)\n");
            rc = -1;
#endif
            if (rc == 0 && cluster_url_parse(value, &url, &why) != 0) {
                /* Not echoed when it may hold a password. */
                fprintf(stderr, "wsfwd: --redis '%s': %s (HOST:PORT or "
                                "redis://[:PASSWORD@]HOST[:PORT][/DB])\n",
                        strchr(value, '@') != NULL ? "..." : value, why);
                rc = -1;
            }
            o->redis = value;
        } else if (strcmp(name, "--redis-order") == 0) {
            if (strcmp(value, "one") == 0 || strcmp(value, "local-first") == 0) {
                o->redis_local_first = strcmp(value, "local-first") == 0;
            } else {
                fprintf(stderr, "wsfwd: --redis-order is one or local-first, not '%s'\n", value);
                rc = -1;
            }
        } else if (strcmp(name, "--redis-max-inflight") == 0) {
            rc = parse_size(name, value, 1024, (size_t)1 << 34, &o->redis_max_inflight);
        } else if (strcmp(name, "--redis-password-file") == 0) {
            if (value[0] == '\0') {
                fprintf(stderr, "wsfwd: --redis-password-file needs a path\n");
                rc = -1;
            }
            o->redis_password_file = value;
        } else if (strcmp(name, "--redis-timeout") == 0) {
            rc = parse_ms(name, value, 10, &o->redis_timeout_ms);
        } else if (strcmp(name, "--log-level") == 0) {
            int level = log_parse_level(value);
            if (level < 0) {
                fprintf(stderr, "wsfwd: --log-level is error, warn, info or debug, not '%s'\n",
                        value);
                rc = -1;
            } else {
                o->log_level = (log_level)level;
            }
        } else {
            fprintf(stderr, "wsfwd: unknown option '%s' (see --help)\n", name);
            return 2;
        }
        if (rc != 0) {
            return 2;
        }
    }
    if (o->redis_password_file != NULL && o->redis == NULL) {
        fprintf(stderr, "wsfwd: --redis-password-file needs --redis\n");
        return 2;
    }
    if (o->rate_burst > 0 && o->rate_limit == 0) {
        fprintf(stderr, "wsfwd: --rate-burst needs --rate-limit\n");
        return 2;
    }
    if (o->rate_burst == 0) {
        o->rate_burst = o->rate_limit;
    }
    if (o->nlisten == 0) {
        o->listen[o->nlisten++] = "127.0.0.1:8080";
    }
    return 0;
}
