/* Socket monitors: libzmq reports handshakes and disconnections on an
 * inproc PAIR socket, which is watched through ZMQ_FD in the loop like the
 * feed. What they are for:
 *  - refused handshakes that never reach the ZAP handler (a plain client on
 *    a CURVE socket, a client with the wrong server key, a feed publisher
 *    whose key is not the configured one) are counted as auth failures;
 *  - a feed connection that drops is counted and logged, and reconnected
 *    when libzmq will not: after a protocol error, which is what a frame
 *    over ZMQ_MAXMSGSIZE is, libzmq 4.3 closes the session of a connecting
 *    socket for good, so one oversized frame would cut the feed off, and so
 *    would one failed handshake (a plain peer on a CURVE feed's endpoint, or
 *    a publisher with another key): every failed handshake and every drop
 *    is followed by a reconnect, at most one a second, and counted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "newsalertd.h"

/* Events per wakeup before the loop serves other events. */
#define MONITOR_BATCH 256
/* How long libzmq has to start reconnecting a dropped feed endpoint itself
 * before the daemon does it; also the least time between two reconnects of
 * one endpoint, so a publisher that keeps sending oversized frames costs
 * one handshake a second. */
#define RECONNECT_AFTER_MS 1000

/* What a CURVE client sees of a server that cannot open its HELLO, because
 * it is not the server whose key the client was given: a closed connection. */
#define CLOSED_IN_HANDSHAKE                                                              \
    "closed by the publisher (not the feed.curve.server_key publisher, or it refused "   \
    "our key)"

struct endpoint_state {
    struct na_monitor *m;
    char *endpoint;
    bool connecting;  /* connected, handshake not done yet */
    bool established; /* handshake done, not disconnected since */
    bool libzmq_retrying;
    bool retrying_handshake; /* the reconnect follows a failed handshake */
    struct event *timer;
};

struct na_monitor {
    struct na_daemon *d;
    void *socket; /* borrowed: the monitored socket */
    void *pair;
    char name[16];
    bool client; /* the feed: we connect */
    struct event *ev;
    struct endpoint_state *eps;
    size_t n_eps;
    int connections; /* a server's peers: accepted and not yet closed */
};

static const char *protocol_error(uint32_t value)
{
    switch (value) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "security mechanism mismatch (a plain peer on a CURVE socket, or the "
               "reverse)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return "cryptographic error (the client has the wrong server key)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND:
    case ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_SEQUENCE:
    case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
        return "broken CURVE handshake";
    case ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED:
    case ZMQ_PROTOCOL_ERROR_ZAP_MALFORMED_REPLY:
    case ZMQ_PROTOCOL_ERROR_ZAP_BAD_REQUEST_ID:
    case ZMQ_PROTOCOL_ERROR_ZAP_BAD_VERSION:
    case ZMQ_PROTOCOL_ERROR_ZAP_INVALID_STATUS_CODE:
    case ZMQ_PROTOCOL_ERROR_ZAP_INVALID_METADATA:
        return "ZAP handler error";
    }
    return "protocol error in the handshake";
}

/* The configured endpoint an event is about: the very string when it
 * matches, else the only endpoint there is (libzmq may report a resolved
 * address), else none. */
static struct endpoint_state *find(struct na_monitor *m, const char *ep)
{
    for (size_t i = 0; i < m->n_eps; i++)
        if (!strcmp(m->eps[i].endpoint, ep))
            return &m->eps[i];
    return m->n_eps == 1 ? &m->eps[0] : NULL;
}

static void monitor_on_reconnect(evutil_socket_t fd, short what, void *arg)
{
    struct endpoint_state *s = arg;
    struct na_monitor *m = s->m;
    (void)fd;
    (void)what;

    if (s->libzmq_retrying || s->connecting || s->established)
        return; /* libzmq is on it */
    /* ENOENT when libzmq has dropped the endpoint already: nothing to undo. */
    zmq_disconnect(m->socket, s->endpoint);
    if (zmq_connect(m->socket, s->endpoint) < 0) {
        na_err("%s: cannot reconnect to %s: %s", m->name, s->endpoint,
               zmq_strerror(errno));
        return;
    }
    m->d->stats.feed_reconnects++;
    /* A publisher that keeps refusing us costs a line a second otherwise:
     * the failed handshakes are logged (rate-limited) already. */
    if (s->retrying_handshake)
        na_debug("%s: reconnecting to %s after a failed handshake", m->name, s->endpoint);
    else
        na_info("%s: reconnecting to %s", m->name, s->endpoint);
}

/* Reconnects s in RECONNECT_AFTER_MS unless libzmq does it first. The timer
 * is left alone when it is pending already, so that a peer which fails
 * every handshake at once is retried once a second, not at libzmq's pace. */
static void arm_reconnect(struct endpoint_state *s, bool after_failed_handshake)
{
    struct timeval tv = {RECONNECT_AFTER_MS / 1000, (RECONNECT_AFTER_MS % 1000) * 1000};

    s->libzmq_retrying = false;
    s->retrying_handshake = after_failed_handshake;
    if (!evtimer_pending(s->timer, NULL))
        evtimer_add(s->timer, &tv);
}

static void on_client_event(struct na_monitor *m, uint16_t event, uint32_t value,
                            const char *ep)
{
    struct na_daemon *d = m->d;
    struct endpoint_state *s = find(m, ep);
    char what[160];
    uint64_t suppressed;

    switch (event) {
    case ZMQ_EVENT_CONNECT_DELAYED:
    case ZMQ_EVENT_CONNECT_RETRIED:
        if (s)
            s->libzmq_retrying = true;
        break;
    case ZMQ_EVENT_CONNECTED:
        if (s) {
            s->libzmq_retrying = false;
            s->connecting = true;
        }
        break;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        if (s) {
            s->connecting = false;
            s->established = true;
        }
        d->metrics.feed_connected++;
        na_info("%s: connected to %s%s", m->name, ep, d->curve.feed_on ? " (CURVE)" : "");
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        /* libzmq 4.3 ends a connecting session for good after a protocol
         * error: without this, a plain peer that held the endpoint for a
         * moment would cut the feed off until a restart. */
        if (s) {
            s->connecting = false;
            arm_reconnect(s, true);
        }
        snprintf(
            what, sizeof(what), "%s: handshake with the publisher failed: %s", m->name,
            event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ? "the publisher refused our key"
            : event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? protocol_error(value)
            : d->curve.feed_on                             ? CLOSED_IN_HANDSHAKE
                                                           : "no detail");
        /* Without CURVE nobody authenticates: a failed greeting is a peer
         * that is not a ZeroMQ publisher, not an auth failure. */
        if (d->curve.feed_on)
            na_auth_failure(d, what, ep, NULL);
        else if (na_ratelimit_pass(&d->disconnect_rl, na_mono_ms(), &suppressed))
            na_warn("%s: peer %s", what, ep);
        break;
    case ZMQ_EVENT_DISCONNECTED:
        if (s && s->connecting) {
            /* With CURVE, a publisher that cannot open our HELLO (it is not
             * the key we were given) just closes the connection. */
            s->connecting = false;
            arm_reconnect(s, true);
            if (d->curve.feed_on)
                na_auth_failure(
                    d, "feed: handshake with the publisher failed: " CLOSED_IN_HANDSHAKE,
                    ep, NULL);
            break;
        }
        if (s && !s->established)
            break;
        d->stats.feed_disconnects++;
        if (d->metrics.feed_connected > 0)
            d->metrics.feed_connected--;
        if (s) {
            s->established = false;
            arm_reconnect(s, false);
        }
        if (na_ratelimit_pass(&d->disconnect_rl, na_mono_ms(), &suppressed))
            na_warn("%s: disconnected from %s (the publisher went away, or sent a frame "
                    "over ZMQ_MAXMSGSIZE, %lld bytes)%s",
                    m->name, ep,
                    (long long)(2 * (int64_t)d->cfg->limits.max_article_bytes + 65536),
                    suppressed ? " (and more not logged)" : "");
        break;
    default:
        break;
    }
}

static void on_server_event(struct na_monitor *m, uint16_t event, uint32_t value,
                            const char *ep)
{
    char what[480];

    switch (event) {
    /* Every accepted connection ends in one DISCONNECTED, whether its
     * handshake succeeded or not: the difference is the peers now. */
    case ZMQ_EVENT_ACCEPTED:
        m->connections++;
        break;
    case ZMQ_EVENT_DISCONNECTED:
        if (m->connections > 0)
            m->connections--;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        /* libzmq 4.3 reports the listening endpoint, not the peer, here. */
        snprintf(what, sizeof(what), "%s: handshake refused on %.200s: %s", m->name, ep,
                 event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                     ? protocol_error(value)
                     : "no detail (the peer closed the connection in the handshake)");
        /* Without CURVE nobody authenticates: a peer that fails the
         * greeting is not a ZeroMQ client, not an auth failure. */
        if (m->d->curve.publish_on) {
            na_auth_failure(m->d, what, NULL, NULL);
        } else {
            uint64_t suppressed;
            if (na_ratelimit_pass(&m->d->disconnect_rl, na_mono_ms(), &suppressed))
                na_warn("%s%s", what, suppressed ? " (and more not logged)" : "");
        }
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        /* The ZAP handler refused it, and has counted and logged it. */
        break;
    default:
        break;
    }
}

/* One event: 1 when one was handled, 0 when none was waiting. */
static int handle_one(struct na_monitor *m)
{
    zmq_msg_t head, addr;
    char ep[256];
    int rc = 1;

    zmq_msg_init(&head);
    zmq_msg_init(&addr);
    if (zmq_msg_recv(&head, m->pair, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&head);
        zmq_msg_close(&addr);
        return 0;
    }
    if (!zmq_msg_more(&head) || zmq_msg_recv(&addr, m->pair, 0) < 0 ||
        zmq_msg_size(&head) != 6) {
        rc = 1; /* not an event as documented: skip it */
    } else {
        uint16_t event;
        uint32_t value;
        memcpy(&event, zmq_msg_data(&head), 2);
        memcpy(&value, (uint8_t *)zmq_msg_data(&head) + 2, 4);
        size_t n =
            zmq_msg_size(&addr) < sizeof(ep) - 1 ? zmq_msg_size(&addr) : sizeof(ep) - 1;
        memcpy(ep, zmq_msg_data(&addr), n);
        ep[n] = '\0';
        if (m->client)
            on_client_event(m, event, value, ep);
        else
            on_server_event(m, event, value, ep);
    }
    zmq_msg_close(&head);
    zmq_msg_close(&addr);
    return rc;
}

static void monitor_on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct na_monitor *m = arg;
    int n = 0;
    (void)fd;
    (void)what;

    while (n < MONITOR_BATCH && handle_one(m) > 0)
        n++;
    if (n == MONITOR_BATCH || na_zsock_readable(m->pair))
        event_active(m->ev, EV_READ, 0);
}

struct na_monitor *na_monitor_new(struct na_daemon *d, void *socket, const char *name,
                                  struct na_error *err)
{
    struct na_monitor *m = calloc(1, sizeof(*m));
    char addr[64];
    int linger = 0, fd;
    size_t fdlen = sizeof(fd);

    if (m == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    m->d = d;
    m->socket = socket;
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->client = !strcmp(name, "feed");
    if (m->client) {
        const struct na_strlist *eps = &d->cfg->feed_endpoints;
        m->eps = calloc(eps->n ? eps->n : 1, sizeof(*m->eps));
        if (m->eps == NULL)
            goto oom;
        for (; m->n_eps < eps->n; m->n_eps++) {
            struct endpoint_state *s = &m->eps[m->n_eps];
            s->m = m;
            s->endpoint = strdup(eps->items[m->n_eps]);
            s->timer = evtimer_new(d->base, monitor_on_reconnect, s);
            if (s->endpoint == NULL || s->timer == NULL) {
                m->n_eps++;
                goto oom;
            }
        }
    }
    snprintf(addr, sizeof(addr), "inproc://newsalertd.monitor.%s", name);
    if (zmq_socket_monitor(socket, addr, ZMQ_EVENT_ALL) < 0) {
        na_error_set(err, "%s: cannot monitor the socket: %s", name, zmq_strerror(errno));
        goto fail;
    }
    m->pair = zmq_socket(d->zctx, ZMQ_PAIR);
    if (m->pair == NULL ||
        zmq_setsockopt(m->pair, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
        zmq_connect(m->pair, addr) < 0 ||
        zmq_getsockopt(m->pair, ZMQ_FD, &fd, &fdlen) < 0) {
        na_error_set(err, "%s: monitor socket: %s", name, zmq_strerror(errno));
        goto fail;
    }
    m->ev = event_new(d->base, fd, EV_READ | EV_PERSIST, monitor_on_readable, m);
    if (m->ev == NULL || event_add(m->ev, NULL) < 0) {
        na_error_set(err, "%s: cannot watch the monitor socket", name);
        goto fail;
    }
    event_active(m->ev, EV_READ, 0);
    return m;
oom:
    na_error_set(err, "out of memory");
fail:
    na_monitor_free(m);
    return NULL;
}

int na_monitor_connections(const struct na_monitor *m)
{
    return m ? m->connections : 0;
}

void na_monitor_free(struct na_monitor *m)
{
    if (m == NULL)
        return;
    if (m->ev)
        event_free(m->ev);
    if (m->pair) {
        zmq_socket_monitor(m->socket, NULL, 0);
        zmq_close(m->pair);
    }
    for (size_t i = 0; i < m->n_eps; i++) {
        if (m->eps[i].timer)
            event_free(m->eps[i].timer);
        free(m->eps[i].endpoint);
    }
    free(m->eps);
    free(m);
}
