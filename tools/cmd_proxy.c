/* newsalert proxy: fan-out for one newsalertd. An XSUB/XPUB forwarder
 * (zmq_proxy_steerable, in a thread of its own) relays the daemon's alerts
 * and heartbeats to consumers and their subscriptions to the daemon, byte
 * for byte: it never renumbers, so each daemon's epoch and seqs reach the
 * consumer as the daemon wrote them. A second thread relays catch-up
 * requests to the same daemon, one upstream DEALER per consumer. The main
 * thread runs a libevent loop for the signals, the capture socket's
 * counters, the ZAP handler of CURVE and the /metrics endpoint. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <zmq.h>

#include "newsalert/allowlist.h"
#include "newsalert/cert.h"
#include "newsalert/endpoint.h"
#include "newsalert/v1/catchup.pb-c.h"
#include "newsalert.h"
#include "newsalertd.h"

#define CTL_ALERTS "inproc://proxy-alerts-control"
#define CTL_CATCHUP "inproc://proxy-catchup-control"
#define CAPTURE "inproc://proxy-capture"
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* The ZAP domain of the sockets the proxy serves with CURVE. */
#define PROXY_ZAP_DOMAIN "newsalert-proxy"
/* zmq_proxy_steerable sends each frame to the capture socket with a
 * blocking send: the pipe to the counters is deep, so that the loop falling
 * behind for a moment never holds up the alerts, yet bounded, so memory is. */
#define CAPTURE_HWM 100000
/* Messages handled per wakeup of the loop before it serves other events. */
#define BATCH 256
/* A consumer's upstream DEALER is closed after this long without traffic,
 * and opened again by its next request. */
#define CATCHUP_IDLE_MS 30000
/* A reply the consumer's pipe had no room for is offered again this often. */
#define CATCHUP_RETRY_MS 10
/* The frames of one relayed catch-up message (the daemon sends one). */
#define RELAY_MAX_FRAMES 8

static void proxy_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert proxy --alerts ENDPOINT --bind-alerts ENDPOINT [OPTION]...\n"
        "Relay one newsalertd's alerts and catch-up to consumers on other hosts.\n"
        "  -c, --alerts ENDPOINT        the daemon's alert endpoint (connected to)\n"
        "  -C, --catchup ENDPOINT       the daemon's catch-up endpoint (default: the\n"
        "                               alert port + 1 for tcp://; off: no catch-up)\n"
        "  -b, --bind-alerts ENDPOINT   where consumers subscribe (bound)\n"
        "  -B, --bind-catchup ENDPOINT  where consumers ask for catch-up (bound;\n"
        "                               default: the bound alert port + 1 for tcp://)\n"
        "      --sndhwm N               alert messages queued for each consumer before\n"
        "                               the proxy drops for that one (default 10000)\n"
        "      --rcvhwm N               alert messages queued from the daemon\n"
        "                               (default 100000)\n"
        "      --catchup-max-clients N  consumers relayed to catch-up at once\n"
        "                               (default 1024)\n"
        "      --metrics ADDR:PORT      serve Prometheus text at /metrics (default off)\n"
        "Toward the consumers, a CURVE server (as the daemon's publish.curve):\n"
        "      --curve-secret-key FILE  our secret certificate (.key, mode 0600)\n"
        "      --curve-allow-dir DIR    the consumers' public certificates (*.pub)\n"
        "Toward the daemon, a CURVE client (as newsalert tail):\n"
        "      --curve-server-key FILE  the daemon's public certificate (.pub)\n"
        "      --curve-key FILE         our secret certificate (.key), whose .pub is in\n"
        "                               the daemon's publish.curve.allow_dir\n"
        "  -h, --help                   show this help\n"
        "One proxy relays one daemon: run one per daemon, so that each daemon's\n"
        "epoch and seqs stay its own. A consumer that falls --sndhwm messages behind\n"
        "loses alerts here, alone, and repairs them through this proxy's catch-up.\n"
        "SIGINT or SIGTERM stops it. Exit status: 0 stopped, 1 runtime failure,\n"
        "64 usage error.\n");
}

struct proxy_opts {
    const char *alerts, *catchup, *bind_alerts, *bind_catchup, *metrics;
    const char *server_key, *own_key;   /* toward the daemon */
    const char *secret_key, *allow_dir; /* toward the consumers */
    int sndhwm, rcvhwm, max_clients;
};

/* One consumer of the catch-up relay: its ROUTER identity, its own DEALER
 * to the daemon (so that the daemon keeps one stream per consumer, as it
 * would without the proxy), and a reply its pipe had no room for. */
struct relay_peer {
    uint8_t id[256];
    size_t id_len;
    void *dealer;
    int64_t last_ms;
    zmq_msg_t held[RELAY_MAX_FRAMES];
    size_t n_held; /* 0: nothing held */
};

struct proxy {
    struct proxy_opts o;
    char catchup_ep[300], bind_catchup_ep[300];
    void *ctx;
    /* The alert forwarder: used by its thread once it runs. */
    void *xsub, *xpub, *capture_out, *ctl_alerts;
    /* The main thread's ends of the capture and control pipes. */
    void *capture_in, *ctl_alerts_main, *ctl_catchup_main;
    /* The catch-up relay: used by its thread once it runs. */
    void *router, *ctl_catchup;
    struct relay_peer *peers;
    size_t n_peers;
    /* CURVE. */
    bool up_curve, down_curve;
    struct na_cert up_server, up_own, down_own;
    struct na_allowlist *allow;
    void *zap;
    /* Threads. */
    pthread_t alerts_thread, catchup_thread;
    bool alerts_started, catchup_started;
    atomic_int alerts_done, catchup_done;
    int thread_errno;
    /* The loop. */
    struct event_base *base;
    struct event *sigint_ev, *sigterm_ev, *capture_ev, *zap_ev, *died_ev;
    struct evhttp *http;
    int status;
    bool stopping;
    /* The capture's counts (main thread only). */
    uint64_t down_msgs, down_bytes, up_msgs, up_bytes;
    uint64_t alerts, heartbeats, subscribes, unsubscribes;
    int64_t last_hb_ms; /* 0: no heartbeat yet */
    uint64_t auth_failures, auth_logged_s, auth_suppressed;
    /* The relay's counts (written by its thread). */
    atomic_uint_least64_t cu_up_msgs, cu_up_bytes, cu_down_msgs, cu_down_bytes;
    atomic_uint_least64_t cu_clients, cu_refused, cu_dropped;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ZMTP heartbeats on every socket, as the daemon does: a peer that vanished
 * off a WAN is noticed in seconds, not after TCP's minutes. */
static void zmtp_heartbeats(void *s)
{
    int ivl = NA_ZMTP_HEARTBEAT_IVL_MS, timeout = NA_ZMTP_HEARTBEAT_TIMEOUT_MS;
    zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl));
    zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof(timeout));
    zmq_setsockopt(s, ZMQ_HEARTBEAT_TTL, &timeout, sizeof(timeout));
}

static int curve_server(struct proxy *p, void *s)
{
    int on = 1;
    if (!p->down_curve)
        return 0;
    return zmq_setsockopt(s, ZMQ_CURVE_SERVER, &on, sizeof(on)) < 0 ||
                   zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, p->down_own.secret_key,
                                  NA_Z85_KEY_LEN) < 0 ||
                   zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, PROXY_ZAP_DOMAIN,
                                  strlen(PROXY_ZAP_DOMAIN)) < 0
               ? -1
               : 0;
}

static int curve_client(const struct proxy *p, void *s)
{
    if (!p->up_curve)
        return 0;
    return zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, p->up_server.public_key,
                          NA_Z85_KEY_LEN) < 0 ||
                   zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, p->up_own.public_key,
                                  NA_Z85_KEY_LEN) < 0 ||
                   zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, p->up_own.secret_key,
                                  NA_Z85_KEY_LEN) < 0
               ? -1
               : 0;
}

static bool zsock_readable(void *s)
{
    int ev = 0;
    size_t len = sizeof(ev);
    return zmq_getsockopt(s, ZMQ_EVENTS, &ev, &len) == 0 && (ev & ZMQ_POLLIN);
}

/* ---- the alert forwarder's thread ---- */

static void *alerts_main(void *arg)
{
    struct proxy *p = arg;
    /* Returns 0 on TERMINATE; anything else is a failure the loop reports. */
    if (zmq_proxy_steerable(p->xsub, p->xpub, p->capture_out, p->ctl_alerts) < 0)
        p->thread_errno = errno ? errno : EIO;
    atomic_store(&p->alerts_done, 1);
    event_active(p->died_ev, EV_TIMEOUT, 0);
    return NULL;
}

/* ---- the catch-up relay's thread ----
 *
 * Not a zmq_proxy: the daemon keeps one stream per ROUTER identity (a new
 * request replaces the old one) and takes exactly one frame after it, so
 * consumers sharing one DEALER would cancel each other's streams, and the
 * ROUTER envelope of a queue would be refused. And a ROUTER frontend in
 * zmq_proxy drops a reply for a consumer whose pipe is full. Here each
 * consumer gets a DEALER of its own to the daemon, and a reply it has no
 * room for is held, which stops its DEALER being read, which fills that
 * DEALER's pipe, so the daemon holds that consumer's stream, and only
 * that one: flow control end to end, per consumer. */

static void peer_drop_held(struct relay_peer *c)
{
    for (size_t i = 0; i < c->n_held; i++)
        zmq_msg_close(&c->held[i]);
    c->n_held = 0;
}

static void peer_close(struct proxy *p, size_t i)
{
    struct relay_peer *c = &p->peers[i];
    peer_drop_held(c);
    zmq_close(c->dealer);
    p->peers[i] = p->peers[--p->n_peers];
    atomic_store(&p->cu_clients, p->n_peers);
}

static struct relay_peer *peer_find(struct proxy *p, const void *id, size_t len)
{
    for (size_t i = 0; i < p->n_peers; i++)
        if (p->peers[i].id_len == len && !memcmp(p->peers[i].id, id, len))
            return &p->peers[i];
    return NULL;
}

static struct relay_peer *peer_open(struct proxy *p, const void *id, size_t len)
{
    int linger = 0;
    if (len == 0 || len > sizeof(p->peers[0].id) ||
        p->n_peers >= (size_t)p->o.max_clients)
        return NULL;
    void *d = zmq_socket(p->ctx, ZMQ_DEALER);
    if (d == NULL)
        return NULL;
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof(linger));
    zmtp_heartbeats(d);
    if (curve_client(p, d) < 0 || zmq_connect(d, p->catchup_ep) < 0) {
        zmq_close(d);
        return NULL;
    }
    struct relay_peer *c = &p->peers[p->n_peers++];
    memset(c, 0, sizeof(*c));
    memcpy(c->id, id, len);
    c->id_len = len;
    c->dealer = d;
    atomic_store(&p->cu_clients, p->n_peers);
    return c;
}

/* The answer to a consumer the proxy cannot relay: the daemon's own form
 * of refusal, so that the client library reports it as it would the
 * daemon's "busy". */
static void relay_refuse(struct proxy *p, const zmq_msg_t *id, const char *why)
{
    Newsalert__V1__CatchupReply r = NEWSALERT__V1__CATCHUP_REPLY__INIT;
    uint8_t buf[256];
    r.kind = NEWSALERT__V1__CATCHUP_REPLY__KIND__KIND_ERROR;
    r.error = (char *)why;
    size_t n = newsalert__v1__catchup_reply__pack(&r, buf);
    atomic_fetch_add(&p->cu_refused, 1);
    if (zmq_send(p->router, zmq_msg_data((zmq_msg_t *)id), zmq_msg_size((zmq_msg_t *)id),
                 ZMQ_SNDMORE | ZMQ_DONTWAIT) == 0)
        zmq_send(p->router, buf, n, ZMQ_DONTWAIT);
}

/* One request from a consumer, passed on to its DEALER frame by frame: the
 * daemon, not the proxy, judges what it says. 0: one handled; -1: none. */
static int relay_request(struct proxy *p)
{
    zmq_msg_t id, m;
    zmq_msg_init(&id);
    if (zmq_msg_recv(&id, p->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&id);
        return -1;
    }
    struct relay_peer *c = peer_find(p, zmq_msg_data(&id), zmq_msg_size(&id));
    if (c == NULL)
        c = peer_open(p, zmq_msg_data(&id), zmq_msg_size(&id));
    bool more = zmq_msg_more(&id), first = true, dropping = c == NULL;
    if (c == NULL)
        relay_refuse(p, &id, "busy: too many catch-up clients at the proxy; try again");
    uint64_t bytes = 0;
    zmq_msg_init(&m);
    while (more) {
        if (zmq_msg_recv(&m, p->router, 0) < 0)
            break;
        more = zmq_msg_more(&m);
        bytes += zmq_msg_size(&m);
        /* The DEALER's pipe takes the whole message or, at its first frame,
         * nothing: a consumer that floods requests loses the surplus. */
        if (!dropping &&
            zmq_msg_send(&m, c->dealer, (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0) {
            if (!first)
                break;
            dropping = true;
        }
        first = false;
    }
    zmq_msg_close(&m);
    zmq_msg_close(&id);
    if (c && !dropping) {
        c->last_ms = mono_ms();
        atomic_fetch_add(&p->cu_up_msgs, 1);
        atomic_fetch_add(&p->cu_up_bytes, bytes);
    } else if (c) {
        atomic_fetch_add(&p->cu_dropped, 1);
    }
    return 0;
}

/* Sends c's held reply to its consumer. 0: sent; 1: no room yet; -1: the
 * consumer is gone (the caller closes it). */
static int relay_flush(struct proxy *p, struct relay_peer *c)
{
    uint64_t bytes = 0;
    /* With ROUTER_MANDATORY the identity frame says whether the pipe has
     * room for the message; the frames after it then go too. */
    if (zmq_send(p->router, c->id, c->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return errno == EAGAIN ? 1 : -1;
    for (size_t i = 0; i < c->n_held; i++) {
        bytes += zmq_msg_size(&c->held[i]);
        zmq_msg_send(&c->held[i], p->router, i + 1 < c->n_held ? ZMQ_SNDMORE : 0);
        zmq_msg_close(&c->held[i]);
    }
    c->n_held = 0;
    c->last_ms = mono_ms();
    atomic_fetch_add(&p->cu_down_msgs, 1);
    atomic_fetch_add(&p->cu_down_bytes, bytes);
    return 0;
}

/* Moves the daemon's replies for c to its consumer until one has no room.
 * -1 when the consumer is gone. */
static int relay_replies(struct proxy *p, struct relay_peer *c)
{
    for (int k = 0; k < BATCH && c->n_held == 0; k++) {
        int more = 1;
        size_t n = 0;
        bool ok = true;
        while (more) {
            zmq_msg_t scratch, *m = n < RELAY_MAX_FRAMES ? &c->held[n] : &scratch;
            zmq_msg_init(m);
            if (zmq_msg_recv(m, c->dealer, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(m);
                if (n == 0)
                    return 0;
                break;
            }
            more = zmq_msg_more(m);
            if (n >= RELAY_MAX_FRAMES) {
                zmq_msg_close(m);
                ok = false;
            }
            n++;
        }
        c->n_held = n < RELAY_MAX_FRAMES ? n : RELAY_MAX_FRAMES;
        if (!ok) { /* not the daemon's protocol: nothing to pass on */
            peer_drop_held(c);
            atomic_fetch_add(&p->cu_dropped, 1);
            continue;
        }
        int rc = relay_flush(p, c);
        if (rc < 0)
            return -1;
        if (rc > 0)
            return 0;
    }
    return 0;
}

static void *catchup_main(void *arg)
{
    struct proxy *p = arg;
    zmq_pollitem_t *items = NULL;
    size_t *index = NULL;
    bool running = true;

    items = calloc((size_t)p->o.max_clients + 2, sizeof(*items));
    index = calloc((size_t)p->o.max_clients + 2, sizeof(*index));
    p->peers = calloc((size_t)p->o.max_clients, sizeof(*p->peers));
    if (items == NULL || index == NULL || p->peers == NULL) {
        running = false;
        p->thread_errno = ENOMEM;
    }
    while (running) {
        size_t n = 0;
        bool any_held = false;
        items[n++] = (zmq_pollitem_t){p->ctl_catchup, 0, ZMQ_POLLIN, 0};
        items[n++] = (zmq_pollitem_t){p->router, 0, ZMQ_POLLIN, 0};
        for (size_t i = 0; i < p->n_peers; i++) {
            if (p->peers[i].n_held) {
                any_held = true;
                continue; /* not read until its consumer takes the held reply */
            }
            index[n] = i;
            items[n++] = (zmq_pollitem_t){p->peers[i].dealer, 0, ZMQ_POLLIN, 0};
        }
        if (zmq_poll(items, (int)n, any_held ? CATCHUP_RETRY_MS : 1000) < 0) {
            if (errno == EINTR)
                continue;
            p->thread_errno = errno;
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            char cmd[16];
            int len = zmq_recv(p->ctl_catchup, cmd, sizeof(cmd), 0);
            if (len == 9 && !memcmp(cmd, "TERMINATE", 9))
                break;
        }
        /* Replies first, by index from the last: a close moves the last peer
         * into the closed one's slot, and the poll items name peers by index. */
        for (size_t k = n; k-- > 2;)
            if ((items[k].revents & ZMQ_POLLIN) &&
                relay_replies(p, &p->peers[index[k]]) < 0)
                peer_close(p, index[k]);
        for (size_t i = p->n_peers; i-- > 0;)
            if (p->peers[i].n_held && relay_flush(p, &p->peers[i]) < 0)
                peer_close(p, i);
        for (int k = 0; k < BATCH && relay_request(p) == 0; k++)
            ;
        int64_t now = mono_ms();
        for (size_t i = p->n_peers; i-- > 0;)
            if (p->peers[i].n_held == 0 && now - p->peers[i].last_ms > CATCHUP_IDLE_MS)
                peer_close(p, i);
    }
    while (p->n_peers)
        peer_close(p, 0);
    free(items);
    free(index);
    atomic_store(&p->catchup_done, 1);
    event_active(p->died_ev, EV_TIMEOUT, 0);
    return NULL;
}

/* ---- the capture socket's counters (main thread) ---- */

static bool is_control(const uint8_t *d, size_t n)
{
    static const char *const words[] = {"PAUSE", "RESUME", "TERMINATE", "STATISTICS"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (n == strlen(words[i]) && !memcmp(d, words[i], n))
            return true;
    return false;
}

/* One captured message. zmq_proxy_steerable copies every frame it moves,
 * either way, and each control command, to the capture socket, without
 * saying which way: the daemon's messages are [topic, payload]; a
 * subscription is one frame beginning with 1 (subscribe) or 0
 * (unsubscribe); a control command is one of four words. */
static int capture_one(struct proxy *p)
{
    zmq_msg_t m;
    uint8_t head[16];
    size_t head_len, frames = 1, bytes;

    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, p->capture_in, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return -1;
    }
    bytes = head_len = zmq_msg_size(&m);
    if (head_len > sizeof(head))
        head_len = sizeof(head);
    memcpy(head, zmq_msg_data(&m), head_len);
    while (zmq_msg_more(&m)) {
        if (zmq_msg_recv(&m, p->capture_in, 0) < 0)
            break;
        bytes += zmq_msg_size(&m);
        frames++;
    }
    zmq_msg_close(&m);
    if (frames == 1 && head_len > 0 && head[0] <= 1) {
        p->up_msgs++;
        p->up_bytes += bytes;
        if (head[0] == 1)
            p->subscribes++;
        else
            p->unsubscribes++;
    } else if (frames == 1 && is_control(head, bytes)) {
        ; /* ours, not traffic */
    } else {
        p->down_msgs++;
        p->down_bytes += bytes;
        size_t hb = strlen(NA_HEARTBEAT_TOPIC);
        if (head_len >= hb && !memcmp(head, NA_HEARTBEAT_TOPIC, hb)) {
            p->heartbeats++;
            p->last_hb_ms = mono_ms();
        } else if (head_len >= 6 && !memcmp(head, "alert.", 6)) {
            p->alerts++;
        }
    }
    return 0;
}

static void capture_drain(struct proxy *p)
{
    int k = 0;
    while (k < BATCH * 4 && capture_one(p) == 0)
        k++;
    if (k == BATCH * 4 || zsock_readable(p->capture_in))
        event_active(p->capture_ev, EV_READ, 0);
}

static void proxy_on_capture(evutil_socket_t fd, short what, void *arg)
{
    capture_drain(arg);
}

/* ---- ZAP (RFC 27) for the CURVE server side ---- */

static bool frame_is(zmq_msg_t *m, const char *s)
{
    return zmq_msg_size(m) == strlen(s) && !memcmp(zmq_msg_data(m), s, strlen(s));
}

static void zap_reply(struct proxy *p, zmq_msg_t *request_id, const char *code,
                      const char *text, const char *user)
{
    zmq_msg_t id;
    zmq_msg_init(&id);
    if (request_id)
        zmq_msg_copy(&id, request_id);
    if (zmq_send(p->zap, "1.0", 3, ZMQ_SNDMORE) < 0 ||
        zmq_msg_send(&id, p->zap, ZMQ_SNDMORE) < 0 ||
        zmq_send(p->zap, code, strlen(code), ZMQ_SNDMORE) < 0 ||
        zmq_send(p->zap, text, strlen(text), ZMQ_SNDMORE) < 0 ||
        zmq_send(p->zap, user, strlen(user), ZMQ_SNDMORE) < 0 ||
        zmq_send(p->zap, "", 0, 0) < 0)
        tool_error("proxy", "zap: cannot send a reply: %s", zmq_strerror(errno));
    zmq_msg_close(&id);
}

/* A refused handshake: counted, and logged at most once a second with
 * the first characters of the key (a public key; never a secret). */
static void zap_denied(struct proxy *p, const char *why, const char *z85)
{
    uint64_t now = (uint64_t)(mono_ms() / 1000);
    p->auth_failures++;
    if (p->auth_logged_s == now) {
        p->auth_suppressed++;
        return;
    }
    p->auth_logged_s = now;
    tool_error("proxy", "auth: denied: %s%s%.8s%s", why, z85 ? ", key " : "",
               z85 ? z85 : "", z85 ? "..." : "");
    if (p->auth_suppressed)
        tool_error("proxy", "auth: and %llu more denied, not logged",
                   (unsigned long long)p->auth_suppressed);
    p->auth_suppressed = 0;
}

static int zap_one(struct proxy *p)
{
    zmq_msg_t f[RELAY_MAX_FRAMES];
    size_t n = 0;
    int more = 1;
    char z85[NA_Z85_KEY_LEN + 1];

    while (more) {
        zmq_msg_t scratch, *m = n < RELAY_MAX_FRAMES ? &f[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, p->zap, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(m);
            if (n == 0)
                return -1;
            break;
        }
        more = zmq_msg_more(m);
        if (n >= RELAY_MAX_FRAMES)
            zmq_msg_close(m);
        n++;
    }
    size_t kept = n < RELAY_MAX_FRAMES ? n : RELAY_MAX_FRAMES;
    /* Frames: version, request id, domain, address, identity, mechanism,
     * and for CURVE the client's 32-byte public key. */
    if (n < 6 || !frame_is(&f[0], "1.0"))
        zap_reply(p, n >= 2 ? &f[1] : NULL, "500", "unsupported ZAP request", "");
    else if (!frame_is(&f[2], PROXY_ZAP_DOMAIN)) {
        zap_reply(p, &f[1], "400", "unknown domain", "");
        zap_denied(p, "a ZAP domain that is not ours", NULL);
    } else if (!frame_is(&f[5], "CURVE") || n != 7 || zmq_msg_size(&f[6]) != 32) {
        zap_reply(p, &f[1], "400", "CURVE required", "");
        zap_denied(p, "not a CURVE handshake", NULL);
    } else if (zmq_z85_encode(z85, zmq_msg_data(&f[6]), 32) == NULL) {
        zap_reply(p, &f[1], "500", "internal error", "");
    } else if (!na_allowlist_has(p->allow, z85)) {
        zap_reply(p, &f[1], "400", "key not allowed", "");
        zap_denied(p, "a client key that is not in --curve-allow-dir", z85);
    } else {
        zap_reply(p, &f[1], "200", "OK", z85);
    }
    for (size_t i = 0; i < kept; i++)
        zmq_msg_close(&f[i]);
    return 0;
}

static void proxy_on_zap(evutil_socket_t fd, short what, void *arg)
{
    struct proxy *p = arg;
    int k = 0;
    while (k < BATCH && zap_one(p) == 0)
        k++;
    /* Each reply was a send, which may have taken the edge: look again. */
    if (k == BATCH || zsock_readable(p->zap))
        event_active(p->zap_ev, EV_READ, 0);
}

/* ---- /metrics ---- */

static void metric(struct evbuffer *b, const char *name, const char *type,
                   const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void proxy_metrics(struct proxy *p, struct evbuffer *b)
{
    capture_drain(p); /* what the capture holds is counted before it is shown */
    metric(b, "newsalert_proxy_messages_total", "counter",
           "Messages through the alert proxy: down, the daemon's alerts and "
           "heartbeats (once each, whatever the number of consumers); up, the "
           "consumers' subscriptions.");
    evbuffer_add_printf(b, "newsalert_proxy_messages_total{direction=\"down\"} %llu\n",
                        (unsigned long long)p->down_msgs);
    evbuffer_add_printf(b, "newsalert_proxy_messages_total{direction=\"up\"} %llu\n",
                        (unsigned long long)p->up_msgs);
    metric(b, "newsalert_proxy_bytes_total", "counter",
           "Bytes of those messages, all frames.");
    evbuffer_add_printf(b, "newsalert_proxy_bytes_total{direction=\"down\"} %llu\n",
                        (unsigned long long)p->down_bytes);
    evbuffer_add_printf(b, "newsalert_proxy_bytes_total{direction=\"up\"} %llu\n",
                        (unsigned long long)p->up_bytes);
    metric(b, "newsalert_proxy_alerts_total", "counter",
           "Alert copies (topic alert.<tag>) relayed down.");
    evbuffer_add_printf(b, "newsalert_proxy_alerts_total %llu\n",
                        (unsigned long long)p->alerts);
    metric(b, "newsalert_proxy_heartbeats_total", "counter",
           "The daemon's heartbeats (topic ~hb) relayed down.");
    evbuffer_add_printf(b, "newsalert_proxy_heartbeats_total %llu\n",
                        (unsigned long long)p->heartbeats);
    if (p->last_hb_ms) {
        metric(b, "newsalert_proxy_heartbeat_age_seconds", "gauge",
               "Seconds since the daemon's last heartbeat passed through.");
        evbuffer_add_printf(b, "newsalert_proxy_heartbeat_age_seconds %.3f\n",
                            (double)(mono_ms() - p->last_hb_ms) / 1000.0);
    }
    metric(b, "newsalert_proxy_subscriptions_total", "counter",
           "Subscription messages passed up to the daemon (XPUB passes the first "
           "subscribe and the last unsubscribe of each topic).");
    evbuffer_add_printf(b,
                        "newsalert_proxy_subscriptions_total{kind=\"subscribe\"} %llu\n",
                        (unsigned long long)p->subscribes);
    evbuffer_add_printf(
        b, "newsalert_proxy_subscriptions_total{kind=\"unsubscribe\"} %llu\n",
        (unsigned long long)p->unsubscribes);
    metric(b, "newsalert_proxy_catchup_messages_total", "counter",
           "Catch-up messages relayed: up, requests; down, replies.");
    evbuffer_add_printf(
        b, "newsalert_proxy_catchup_messages_total{direction=\"down\"} %llu\n",
        (unsigned long long)atomic_load(&p->cu_down_msgs));
    evbuffer_add_printf(b,
                        "newsalert_proxy_catchup_messages_total{direction=\"up\"} %llu\n",
                        (unsigned long long)atomic_load(&p->cu_up_msgs));
    metric(b, "newsalert_proxy_catchup_bytes_total", "counter",
           "Bytes of those catch-up messages.");
    evbuffer_add_printf(b,
                        "newsalert_proxy_catchup_bytes_total{direction=\"down\"} %llu\n",
                        (unsigned long long)atomic_load(&p->cu_down_bytes));
    evbuffer_add_printf(b, "newsalert_proxy_catchup_bytes_total{direction=\"up\"} %llu\n",
                        (unsigned long long)atomic_load(&p->cu_up_bytes));
    metric(b, "newsalert_proxy_catchup_clients", "gauge",
           "Consumers with a connection of their own to the daemon's catch-up.");
    evbuffer_add_printf(b, "newsalert_proxy_catchup_clients %llu\n",
                        (unsigned long long)atomic_load(&p->cu_clients));
    metric(b, "newsalert_proxy_catchup_refused_total", "counter",
           "Catch-up requests refused as busy (--catchup-max-clients).");
    evbuffer_add_printf(b, "newsalert_proxy_catchup_refused_total %llu\n",
                        (unsigned long long)atomic_load(&p->cu_refused));
    metric(b, "newsalert_proxy_catchup_dropped_total", "counter",
           "Catch-up messages dropped: a consumer flooding requests, or a reply "
           "not in the protocol's form.");
    evbuffer_add_printf(b, "newsalert_proxy_catchup_dropped_total %llu\n",
                        (unsigned long long)atomic_load(&p->cu_dropped));
    metric(b, "newsalert_proxy_auth_failures_total", "counter",
           "CURVE handshakes the ZAP handler refused.");
    evbuffer_add_printf(b, "newsalert_proxy_auth_failures_total %llu\n",
                        (unsigned long long)p->auth_failures);
}

static void proxy_on_http(struct evhttp_request *req, void *arg)
{
    struct proxy *p = arg;
    const char *uri = evhttp_request_get_uri(req);
    enum evhttp_cmd_type m = evhttp_request_get_command(req);

    if (uri == NULL || strncmp(uri, "/metrics", 8) != 0 ||
        (uri[8] != '\0' && uri[8] != '?')) {
        evhttp_send_error(req, HTTP_NOTFOUND, "not found: try /metrics");
        return;
    }
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
        evhttp_send_error(req, HTTP_BADMETHOD, NULL);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    proxy_metrics(p, b);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, HTTP_OK, "OK", b);
    evbuffer_free(b);
}

/* ---- start and stop ---- */

static void proxy_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct proxy *p = arg;
    p->stopping = true;
    event_base_loopbreak(p->base);
}

static void proxy_on_died(evutil_socket_t fd, short what, void *arg)
{
    struct proxy *p = arg;
    if (p->stopping)
        return;
    tool_error("proxy", "the %s relay stopped: %s",
               atomic_load(&p->alerts_done) ? "alert" : "catch-up",
               zmq_strerror(p->thread_errno ? p->thread_errno : EIO));
    p->status = EXIT_FAIL;
    event_base_loopbreak(p->base);
}

static void *zsocket(struct proxy *p, int type, int sndhwm, int rcvhwm)
{
    int linger = 0;
    void *s = zmq_socket(p->ctx, type);
    if (s == NULL)
        return NULL;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    if (sndhwm >= 0)
        zmq_setsockopt(s, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm));
    if (rcvhwm >= 0)
        zmq_setsockopt(s, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
    return s;
}

static struct event *watch(struct proxy *p, void *sock, event_callback_fn cb)
{
    int fd;
    size_t len = sizeof(fd);
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) < 0)
        return NULL;
    struct event *ev = event_new(p->base, fd, EV_READ | EV_PERSIST, cb, p);
    if (ev == NULL || event_add(ev, NULL) < 0)
        return NULL;
    event_active(ev, EV_READ, 0);
    return ev;
}

static void bound(void *s, const char *asked, char *out, size_t len)
{
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, out, &len) < 0)
        snprintf(out, len, "%s", asked);
}

/* Everything up to the threads. Errors are reported; -1. */
static int proxy_open(struct proxy *p)
{
    char at[300], why[160];
    int one = 1;

    if (evthread_use_pthreads() < 0 || (p->base = event_base_new()) == NULL) {
        tool_error("proxy", "cannot make the event loop");
        return -1;
    }
    p->ctx = zmq_ctx_new();
    if (p->ctx == NULL) {
        tool_error("proxy", "cannot make a ZeroMQ context: %s", zmq_strerror(errno));
        return -1;
    }
    p->died_ev = event_new(p->base, -1, 0, proxy_on_died, p);
    p->sigint_ev = evsignal_new(p->base, SIGINT, proxy_on_signal, p);
    p->sigterm_ev = evsignal_new(p->base, SIGTERM, proxy_on_signal, p);
    if (p->died_ev == NULL || p->sigint_ev == NULL || p->sigterm_ev == NULL ||
        event_add(p->sigint_ev, NULL) < 0 || event_add(p->sigterm_ev, NULL) < 0) {
        tool_error("proxy", "cannot watch the signals");
        return -1;
    }
    /* The ZAP handler is bound before any CURVE server socket: until it is,
     * libzmq would let every client key in. */
    if (p->down_curve) {
        p->zap = zsocket(p, ZMQ_REP, -1, -1);
        if (p->zap == NULL || zmq_bind(p->zap, ZAP_ENDPOINT) < 0 ||
            (p->zap_ev = watch(p, p->zap, proxy_on_zap)) == NULL) {
            tool_error("proxy", "zap: cannot bind %s: %s", ZAP_ENDPOINT,
                       zmq_strerror(errno));
            return -1;
        }
    }
    /* The counters' pipe and the control pipe, connected before the thread
     * runs, so that nothing it sends is lost. */
    p->capture_out = zsocket(p, ZMQ_PAIR, CAPTURE_HWM, -1);
    p->capture_in = zsocket(p, ZMQ_PAIR, -1, CAPTURE_HWM);
    p->ctl_alerts = zsocket(p, ZMQ_PAIR, -1, -1);
    p->ctl_alerts_main = zsocket(p, ZMQ_PAIR, -1, -1);
    if (p->capture_out == NULL || p->capture_in == NULL || p->ctl_alerts == NULL ||
        p->ctl_alerts_main == NULL || zmq_bind(p->capture_out, CAPTURE) < 0 ||
        zmq_connect(p->capture_in, CAPTURE) < 0 ||
        zmq_bind(p->ctl_alerts, CTL_ALERTS) < 0 ||
        zmq_connect(p->ctl_alerts_main, CTL_ALERTS) < 0 ||
        (p->capture_ev = watch(p, p->capture_in, proxy_on_capture)) == NULL) {
        tool_error("proxy", "cannot make the proxy's own pipes: %s", zmq_strerror(errno));
        return -1;
    }
    /* No ZMQ_XPUB_VERBOSE: the daemon does nothing on a subscription but
     * filter, so it needs the union of the consumers' subscriptions, which
     * is what XPUB passes up (the first subscribe and the last unsubscribe
     * of each topic); verbose would send every consumer's repeat up the WAN
     * for nothing. No ZMQ_XPUB_NODROP either: one stuck consumer would hold
     * up every other one. */
    p->xsub = zsocket(p, ZMQ_XSUB, -1, p->o.rcvhwm);
    p->xpub = zsocket(p, ZMQ_XPUB, p->o.sndhwm, -1);
    if (p->xsub == NULL || p->xpub == NULL) {
        tool_error("proxy", "cannot make the alert sockets: %s", zmq_strerror(errno));
        return -1;
    }
    zmtp_heartbeats(p->xsub);
    zmtp_heartbeats(p->xpub);
    if (curve_client(p, p->xsub) < 0 || curve_server(p, p->xpub) < 0) {
        tool_error("proxy", "CURVE options: %s", zmq_strerror(errno));
        return -1;
    }
    if (zmq_connect(p->xsub, p->o.alerts) < 0) {
        tool_error("proxy", "cannot connect to %s: %s", p->o.alerts, zmq_strerror(errno));
        return -1;
    }
    if (zmq_bind(p->xpub, p->o.bind_alerts) < 0) {
        tool_error("proxy", "cannot bind %s: %s", p->o.bind_alerts, zmq_strerror(errno));
        return -1;
    }
    bound(p->xpub, p->o.bind_alerts, at, sizeof(at));
    tool_error("proxy", "alerts: from %s%s, for consumers on %s%s", p->o.alerts,
               p->up_curve ? " (CURVE)" : "", at,
               p->down_curve ? " (CURVE, consumers in --curve-allow-dir)" : "");
    if (p->catchup_ep[0]) {
        p->router = zsocket(p, ZMQ_ROUTER, -1, -1);
        p->ctl_catchup = zsocket(p, ZMQ_PAIR, -1, -1);
        p->ctl_catchup_main = zsocket(p, ZMQ_PAIR, -1, -1);
        if (p->router == NULL || p->ctl_catchup == NULL || p->ctl_catchup_main == NULL ||
            zmq_bind(p->ctl_catchup, CTL_CATCHUP) < 0 ||
            zmq_connect(p->ctl_catchup_main, CTL_CATCHUP) < 0 ||
            zmq_setsockopt(p->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) < 0 ||
            curve_server(p, p->router) < 0) {
            tool_error("proxy", "cannot make the catch-up sockets: %s",
                       zmq_strerror(errno));
            return -1;
        }
        zmtp_heartbeats(p->router);
        if (zmq_bind(p->router, p->bind_catchup_ep) < 0) {
            tool_error("proxy", "cannot bind %s: %s", p->bind_catchup_ep,
                       zmq_strerror(errno));
            return -1;
        }
        bound(p->router, p->bind_catchup_ep, at, sizeof(at));
        tool_error("proxy", "catch-up: to %s%s, for consumers on %s%s", p->catchup_ep,
                   p->up_curve ? " (CURVE)" : "", at, p->down_curve ? " (CURVE)" : "");
    } else {
        tool_error("proxy", "warning: no catch-up relay: consumers of this proxy "
                            "cannot repair what they miss");
    }
    if (!p->down_curve &&
        na_endpoint_check(p->o.bind_alerts, NA_ENDPOINT_BIND, why, sizeof(why)) == 0 &&
        strncmp(p->o.bind_alerts, "ipc://", 6) != 0 &&
        strncmp(p->o.bind_alerts, "tcp://127.", 10) != 0 &&
        strncmp(p->o.bind_alerts, "tcp://localhost:", 16) != 0)
        tool_error("proxy",
                   "warning: %s is not loopback and CURVE is off: anyone who "
                   "can reach it can read the alerts (--curve-secret-key, "
                   "--curve-allow-dir)",
                   p->o.bind_alerts);
    if (p->o.metrics) {
        char host[64];
        uint16_t port;
        struct evhttp_bound_socket *h;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        na_http_parse_listen(p->o.metrics, host, sizeof(host), &port);
        p->http = evhttp_new(p->base);
        if (p->http == NULL ||
            (h = evhttp_bind_socket_with_handle(p->http, host, port)) == NULL) {
            tool_error("proxy", "--metrics: cannot listen on %s: %s", p->o.metrics,
                       strerror(errno));
            return -1;
        }
        evhttp_set_allowed_methods(p->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
        evhttp_set_timeout(p->http, 10);
        evhttp_set_gencb(p->http, proxy_on_http, p);
        if (getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&ss, &sl) == 0)
            port =
                ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
        tool_error("proxy", "metrics: http://%s%s%s:%u/metrics",
                   strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
                   (unsigned)port);
    }
    return 0;
}

/* Sends a command to the alert forwarder and, for STATISTICS, reads its 8
 * counters into stats; the capture is read meanwhile, for the forwarder
 * may be waiting on it. */
static int alerts_command(struct proxy *p, const char *cmd, uint64_t *stats)
{
    if (zmq_send(p->ctl_alerts_main, cmd, strlen(cmd), 0) < 0)
        return -1;
    size_t got = 0;
    int64_t deadline = mono_ms() + 2000;
    while (stats && got < 8 && mono_ms() < deadline && !atomic_load(&p->alerts_done)) {
        zmq_pollitem_t it[] = {{p->ctl_alerts_main, 0, ZMQ_POLLIN, 0},
                               {p->capture_in, 0, ZMQ_POLLIN, 0}};
        zmq_poll(it, 2, 20);
        if (it[1].revents & ZMQ_POLLIN)
            while (capture_one(p) == 0)
                ;
        while (got < 8 && (it[0].revents & ZMQ_POLLIN)) {
            uint64_t v;
            if (zmq_recv(p->ctl_alerts_main, &v, sizeof(v), ZMQ_DONTWAIT) != sizeof(v))
                break;
            stats[got++] = v;
        }
    }
    return stats && got < 8 ? -1 : 0;
}

static void proxy_stop(struct proxy *p)
{
    uint64_t st[8];
    bool have_stats = false;

    p->stopping = true;
    if (p->alerts_started) {
        if (!atomic_load(&p->alerts_done)) {
            have_stats = alerts_command(p, "STATISTICS", st) == 0;
            alerts_command(p, "TERMINATE", NULL);
        }
        /* The forwarder may be in a capture send: read until it is out. */
        while (!atomic_load(&p->alerts_done)) {
            zmq_pollitem_t it = {p->capture_in, 0, ZMQ_POLLIN, 0};
            zmq_poll(&it, 1, 20);
            while (capture_one(p) == 0)
                ;
        }
        pthread_join(p->alerts_thread, NULL);
        while (capture_one(p) == 0)
            ;
    }
    if (p->catchup_started) {
        if (!atomic_load(&p->catchup_done))
            zmq_send(p->ctl_catchup_main, "TERMINATE", 9, 0);
        pthread_join(p->catchup_thread, NULL);
    }
    tool_error("proxy",
               "stopped: %llu messages down (%llu alerts, %llu heartbeats), %llu up; "
               "catch-up %llu requests, %llu replies",
               (unsigned long long)p->down_msgs, (unsigned long long)p->alerts,
               (unsigned long long)p->heartbeats, (unsigned long long)p->up_msgs,
               (unsigned long long)atomic_load(&p->cu_up_msgs),
               (unsigned long long)atomic_load(&p->cu_down_msgs));
    /* libzmq's own count: frontend (XSUB) in and out, backend (XPUB) in
     * and out; it and the capture's agree, or the capture lost something. */
    if (have_stats)
        tool_error("proxy", "libzmq: %llu messages from the daemon, %llu to it",
                   (unsigned long long)st[0], (unsigned long long)st[2]);
}

static void proxy_close(struct proxy *p)
{
    void *socks[] = {p->xsub,       p->xpub,        p->capture_out,
                     p->capture_in, p->ctl_alerts,  p->ctl_alerts_main,
                     p->router,     p->ctl_catchup, p->ctl_catchup_main,
                     p->zap};
    struct event *evs[] = {p->sigint_ev, p->sigterm_ev, p->capture_ev, p->zap_ev,
                           p->died_ev};
    if (p->http)
        evhttp_free(p->http);
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i])
            event_free(evs[i]);
    for (size_t i = 0; i < sizeof(socks) / sizeof(socks[0]); i++)
        if (socks[i])
            zmq_close(socks[i]);
    if (p->ctx)
        zmq_ctx_term(p->ctx);
    if (p->base)
        event_base_free(p->base);
    na_allowlist_free(p->allow);
    free(p->peers);
    memset(&p->up_own, 0, sizeof(p->up_own));
    memset(&p->down_own, 0, sizeof(p->down_own));
}

/* ---- arguments ---- */

/* The shipped convention: catch-up one port above the alerts, for tcp://
 * with a numeric port. */
static bool port_plus_one(const char *ep, char *out, size_t len)
{
    const char *colon = strrchr(ep, ':');
    char *end;
    if (strncmp(ep, "tcp://", 6) != 0 || colon == NULL)
        return false;
    long port = strtol(colon + 1, &end, 10);
    if (*end || colon[1] == '\0' || port <= 0 || port >= 65535)
        return false;
    snprintf(out, len, "%.*s:%ld", (int)(colon - ep), ep, port + 1);
    return true;
}

static int int_arg(const char *opt, const char *arg, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (*arg == '\0' || *end || errno || v < lo || v > hi) {
        tool_error("proxy", "--%s: expected a number from %ld to %ld, got '%s'", opt, lo,
                   hi, arg);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int endpoint_arg(const char *opt, const char *ep, enum na_endpoint_use use)
{
    char why[160];
    if (na_endpoint_check(ep, use, why, sizeof(why)) == 0)
        return 0;
    tool_error("proxy", "--%s: '%s': %s", opt, ep, why);
    return -1;
}

/* Checks the options and loads the keys: 0, or -1 when reported. */
static int proxy_check(struct proxy *p)
{
    struct proxy_opts *o = &p->o;
    struct na_error err;
    char host[64];
    uint16_t port;

    if (o->alerts == NULL || o->bind_alerts == NULL) {
        tool_error("proxy", "--alerts and --bind-alerts are required");
        return -1;
    }
    if (endpoint_arg("alerts", o->alerts, NA_ENDPOINT_CONNECT) < 0 ||
        endpoint_arg("bind-alerts", o->bind_alerts, NA_ENDPOINT_BIND) < 0)
        return -1;
    bool cu_off = o->catchup && !strcmp(o->catchup, "off");
    bool bcu_off = o->bind_catchup && !strcmp(o->bind_catchup, "off");
    if (cu_off != bcu_off && (o->catchup && o->bind_catchup)) {
        tool_error("proxy",
                   "--catchup and --bind-catchup are off together or not at all");
        return -1;
    }
    if (!cu_off && !bcu_off) {
        if (o->catchup)
            snprintf(p->catchup_ep, sizeof(p->catchup_ep), "%s", o->catchup);
        else if (!port_plus_one(o->alerts, p->catchup_ep, sizeof(p->catchup_ep)))
            p->catchup_ep[0] = '\0';
        if (o->bind_catchup)
            snprintf(p->bind_catchup_ep, sizeof(p->bind_catchup_ep), "%s",
                     o->bind_catchup);
        else if (!port_plus_one(o->bind_alerts, p->bind_catchup_ep,
                                sizeof(p->bind_catchup_ep)))
            p->bind_catchup_ep[0] = '\0';
        if (!p->catchup_ep[0] || !p->bind_catchup_ep[0]) {
            bool up = !p->catchup_ep[0];
            tool_error("proxy",
                       "--%s: no default for '%s' (only for tcp:// with a port): give "
                       "it, or off",
                       up ? "catchup" : "bind-catchup", up ? o->alerts : o->bind_alerts);
            return -1;
        }
        if ((endpoint_arg("catchup", p->catchup_ep, NA_ENDPOINT_CONNECT) < 0 ||
             endpoint_arg("bind-catchup", p->bind_catchup_ep, NA_ENDPOINT_BIND) < 0))
            return -1;
    }
    /* One off and the other left to its default: both are off. */
    if (o->metrics && na_http_parse_listen(o->metrics, host, sizeof(host), &port) < 0) {
        tool_error("proxy",
                   "--metrics: expected ADDR:PORT with a numeric address (IPv6 in "
                   "brackets), got '%s'",
                   o->metrics);
        return -1;
    }
    if (!o->secret_key != !o->allow_dir) {
        tool_error("proxy", "--curve-secret-key and --curve-allow-dir go together: a "
                            "CURVE server without an allowlist would let every key in");
        return -1;
    }
    int up =
        tool_curve_keys("proxy", o->server_key, o->own_key, &p->up_server, &p->up_own);
    if (up < 0)
        return -1;
    p->up_curve = up > 0;
    if (o->secret_key) {
        struct na_cert pub;
        /* tool_curve_keys checks a secret certificate against its public
         * key; ours is both the "server" and the "own" one here. */
        if (tool_curve_keys("proxy", o->secret_key, o->secret_key, &pub, &p->down_own) <
            0)
            return -1;
        if ((p->allow = na_allowlist_load(o->allow_dir, "--curve-allow-dir", &err)) ==
            NULL) {
            tool_error("proxy", "%s", err.msg);
            return -1;
        }
        if (na_allowlist_count(p->allow) == 0)
            tool_error("proxy",
                       "warning: %s holds no *.pub certificate: every consumer "
                       "will be refused",
                       o->allow_dir);
        p->down_curve = true;
    }
    return 0;
}

enum {
    OPT_SNDHWM = 1100,
    OPT_RCVHWM,
    OPT_MAX_CLIENTS,
    OPT_METRICS,
    OPT_SECRET_KEY,
    OPT_ALLOW_DIR,
    OPT_SERVER_KEY,
    OPT_OWN_KEY,
};

int cmd_proxy(int argc, char **argv)
{
    static const struct option opts[] = {
        {"alerts", required_argument, NULL, 'c'},
        {"catchup", required_argument, NULL, 'C'},
        {"bind-alerts", required_argument, NULL, 'b'},
        {"bind-catchup", required_argument, NULL, 'B'},
        {"sndhwm", required_argument, NULL, OPT_SNDHWM},
        {"rcvhwm", required_argument, NULL, OPT_RCVHWM},
        {"catchup-max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"curve-secret-key", required_argument, NULL, OPT_SECRET_KEY},
        {"curve-allow-dir", required_argument, NULL, OPT_ALLOW_DIR},
        {"curve-server-key", required_argument, NULL, OPT_SERVER_KEY},
        {"curve-key", required_argument, NULL, OPT_OWN_KEY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static struct proxy p; /* large (the capture's counters, the keys); one per run */
    int c;

    memset(&p, 0, sizeof(p));
    p.o.sndhwm = 10000;
    p.o.rcvhwm = 100000;
    p.o.max_clients = 1024;
    while ((c = getopt_long(argc, argv, "c:C:b:B:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            p.o.alerts = optarg;
            break;
        case 'C':
            p.o.catchup = optarg;
            break;
        case 'b':
            p.o.bind_alerts = optarg;
            break;
        case 'B':
            p.o.bind_catchup = optarg;
            break;
        case OPT_SNDHWM:
            if (int_arg("sndhwm", optarg, 1, 100000000, &p.o.sndhwm) < 0)
                return EXIT_USAGE;
            break;
        case OPT_RCVHWM:
            if (int_arg("rcvhwm", optarg, 1, 100000000, &p.o.rcvhwm) < 0)
                return EXIT_USAGE;
            break;
        case OPT_MAX_CLIENTS:
            if (int_arg("catchup-max-clients", optarg, 1, 100000, &p.o.max_clients) < 0)
                return EXIT_USAGE;
            break;
        case OPT_METRICS:
            p.o.metrics = strcmp(optarg, "off") ? optarg : NULL;
            break;
        case OPT_SECRET_KEY:
            p.o.secret_key = optarg;
            break;
        case OPT_ALLOW_DIR:
            p.o.allow_dir = optarg;
            break;
        case OPT_SERVER_KEY:
            p.o.server_key = optarg;
            break;
        case OPT_OWN_KEY:
            p.o.own_key = optarg;
            break;
        case 'h':
            proxy_usage(stdout);
            return EXIT_OK;
        default:
            proxy_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        tool_error("proxy", "unexpected argument '%s'", argv[optind]);
        proxy_usage(stderr);
        return EXIT_USAGE;
    }
    if (proxy_check(&p) < 0) {
        proxy_close(&p);
        return EXIT_USAGE;
    }
    p.status = EXIT_OK;
    if (proxy_open(&p) < 0) {
        proxy_close(&p);
        return EXIT_FAIL;
    }
    p.alerts_started = pthread_create(&p.alerts_thread, NULL, alerts_main, &p) == 0;
    p.catchup_started = p.alerts_started && p.router &&
                        pthread_create(&p.catchup_thread, NULL, catchup_main, &p) == 0;
    if (!p.alerts_started || (p.router && !p.catchup_started)) {
        tool_error("proxy", "cannot start a thread");
        p.status = EXIT_FAIL;
    } else {
        tool_error("proxy", "running");
        event_base_dispatch(p.base);
    }
    proxy_stop(&p);
    proxy_close(&p);
    return p.status;
}
