/* A libwebsockets broadcast server for the side-by-side benchmark (issue 5), on Debian's
 * libwebsockets-dev. Rooms by path: /ws is the global room, /ws/<room> the room named <room>;
 * each message goes to every other member of its room, its type (text or binary) kept.
 *
 * The usual lws pattern: one message buffer per published message, with LWS_PRE bytes of
 * headroom, shared by its receivers through a reference count; each connection has a FIFO
 * queue of references; a publish queues the message on every other member and asks for
 * lws_callback_on_writable; each writable callback does one lws_write (one frame) and asks
 * again while the queue is not empty. A connection with more than 64 MiB queued is closed.
 * Single-threaded, lws's default poll() loop.
 *
 *   lws-server --port PORT [--host 127.0.0.1]
 */
#include <libwebsockets.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGE (16u << 20)
#define MAX_QUEUED_BYTES ((size_t)64 << 20)
#define ROOM_NAME_MAX 256

struct msg {
    unsigned refs;
    size_t len;
    int binary;
    unsigned char buf[]; /* LWS_PRE + len */
};

struct room;

struct pss { /* per connection */
    struct lws *wsi;
    struct room *room;
    struct pss *prev, *next; /* room members */
    struct msg **q;          /* ring of queued messages */
    size_t q_cap, q_head, q_len, q_bytes;
    int closing;
    struct msg *rx; /* the message being received */
    size_t rx_cap;
};

struct room {
    char name[ROOM_NAME_MAX];
    struct pss *members;
    struct room *next;
};

static struct room *rooms;

static void msg_unref(struct msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

static struct room *room_get(const char *name)
{
    struct room *r;
    for (r = rooms; r; r = r->next)
        if (!strcmp(r->name, name))
            return r;
    r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    snprintf(r->name, sizeof r->name, "%s", name);
    r->next = rooms;
    rooms = r;
    return r;
}

static void room_leave(struct pss *p)
{
    struct room *r = p->room, **rp;
    if (!r)
        return;
    if (p->prev)
        p->prev->next = p->next;
    else
        r->members = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->room = NULL;
    if (!r->members) {
        for (rp = &rooms; *rp; rp = &(*rp)->next)
            if (*rp == r) {
                *rp = r->next;
                break;
            }
        free(r);
    }
}

/* "/ws" -> "", "/ws/<room>" -> "<room>"; -1 for any other path. */
static int room_of(struct lws *wsi, char *out, size_t size)
{
    char uri[ROOM_NAME_MAX + 8];
    int n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
    if (n <= 0)
        return -1;
    if (!strcmp(uri, "/ws")) {
        out[0] = '\0';
        return 0;
    }
    if (strncmp(uri, "/ws/", 4) || !uri[4] || strchr(uri + 4, '/') || strlen(uri + 4) >= size)
        return -1;
    memcpy(out, uri + 4, strlen(uri + 4) + 1);
    return 0;
}

static int enqueue(struct pss *p, struct msg *m)
{
    if (p->closing)
        return 0;
    if (p->q_bytes + m->len > MAX_QUEUED_BYTES) {
        p->closing = 1;
        lws_set_timeout(p->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        return 0;
    }
    if (p->q_len == p->q_cap) {
        size_t cap = p->q_cap ? p->q_cap * 2 : 16, i;
        struct msg **q = malloc(cap * sizeof *q);
        if (!q)
            return -1;
        for (i = 0; i < p->q_len; i++)
            q[i] = p->q[(p->q_head + i) % p->q_cap];
        free(p->q);
        p->q = q;
        p->q_cap = cap;
        p->q_head = 0;
    }
    p->q[(p->q_head + p->q_len) % p->q_cap] = m;
    p->q_len++;
    p->q_bytes += m->len;
    m->refs++;
    lws_callback_on_writable(p->wsi);
    return 0;
}

static void publish(struct pss *from, struct msg *m)
{
    struct pss *p;
    m->refs = 1; /* held by this function */
    for (p = from->room->members; p; p = p->next)
        if (p != from)
            enqueue(p, m);
    msg_unref(m);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct pss *p = user;
    char name[ROOM_NAME_MAX];

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: return room_of(wsi, name, sizeof name) ? 1 : 0;

    case LWS_CALLBACK_ESTABLISHED:
        memset(p, 0, sizeof *p);
        p->wsi = wsi;
        if (room_of(wsi, name, sizeof name) || !(p->room = room_get(name)))
            return -1;
        p->next = p->room->members;
        if (p->next)
            p->next->prev = p;
        p->room->members = p;
        break;

    case LWS_CALLBACK_CLOSED:
        room_leave(p);
        while (p->q_len) {
            msg_unref(p->q[p->q_head]);
            p->q_head = (p->q_head + 1) % p->q_cap;
            p->q_len--;
        }
        free(p->q);
        p->q = NULL;
        free(p->rx);
        p->rx = NULL;
        break;

    case LWS_CALLBACK_RECEIVE: {
        size_t have = lws_is_first_fragment(wsi) ? 0 : (p->rx ? p->rx->len : 0);
        size_t want = have + len + lws_remaining_packet_payload(wsi);
        if (want > MAX_MESSAGE)
            return -1;
        if (!p->rx || want > p->rx_cap) {
            size_t cap = want < 256 ? 256 : want;
            struct msg *m = realloc(p->rx, sizeof *m + LWS_PRE + cap);
            if (!m)
                return -1;
            p->rx = m;
            p->rx_cap = cap;
        }
        if (!have)
            p->rx->binary = lws_frame_is_binary(wsi);
        memcpy(p->rx->buf + LWS_PRE + have, in, len);
        p->rx->len = have + len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            struct msg *m = p->rx;
            p->rx = NULL;
            p->rx_cap = 0;
            publish(p, m);
        }
        break;
    }

    case LWS_CALLBACK_SERVER_WRITEABLE: {
        struct msg *m;
        size_t mlen;
        int n;
        if (!p->q_len || p->closing)
            break;
        m = p->q[p->q_head];
        p->q_head = (p->q_head + 1) % p->q_cap;
        p->q_len--;
        p->q_bytes -= m->len;
        mlen = m->len;
        /* A partial write is kept by lws and sent before the next writable callback. */
        n = lws_write(wsi, m->buf + LWS_PRE, mlen, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        msg_unref(m);
        if (n < 0)
            return -1;
        if (p->q_len)
            lws_callback_on_writable(wsi);
        break;
    }

    default: break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"wsfwd-peer", callback, sizeof(struct pss), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    struct lws_context *ctx;
    const char *host = "127.0.0.1";
    int port = 8080, i;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--host") && i + 1 < argc)
            host = argv[++i];
        else {
            fprintf(stderr, "usage: %s --port PORT [--host ADDR]\n", argv[0]);
            return 2;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = host;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "lws-server: lws_create_context failed\n");
        return 1;
    }
    fprintf(stderr, "lws-server (libwebsockets %s) listening on %s:%d\n", lws_get_library_version(),
            host, port);
    while (!interrupted && lws_service(ctx, 0) >= 0)
        ;
    lws_context_destroy(ctx);
    return 0;
}
