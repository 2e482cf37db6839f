/* newsalert proxy's catch-up relay: its own thread, one DEALER to the
 * daemon's catch-up endpoint per consumer. Started by cmd_proxy.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "newsalert/v1/catchup.pb-c.h"
#include "proxy.h"

/* Not a zmq_proxy: the daemon keeps one stream per ROUTER identity (a new
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
    proxy_zmtp_heartbeats(d);
    if (proxy_curve_client(p, d) < 0 || zmq_connect(d, p->catchup_ep) < 0) {
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
    bool more = zmq_msg_more(&id), dropping = c == NULL;
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
            dropping = true; /* and the rest of the message is read and dropped */
        }
    }
    zmq_msg_close(&m);
    zmq_msg_close(&id);
    if (c && !dropping) {
        c->last_ms = proxy_mono_ms();
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
    c->last_ms = proxy_mono_ms();
    atomic_fetch_add(&p->cu_down_msgs, 1);
    atomic_fetch_add(&p->cu_down_bytes, bytes);
    return 0;
}

/* Moves the daemon's replies for c to its consumer until one has no room.
 * -1 when the consumer is gone. */
static int relay_replies(struct proxy *p, struct relay_peer *c)
{
    for (int k = 0; k < PROXY_BATCH && c->n_held == 0; k++) {
        int more = 1;
        size_t n = 0;
        bool ok = true;
        while (more) {
            zmq_msg_t scratch, *m = n < PROXY_MAX_FRAMES ? &c->held[n] : &scratch;
            zmq_msg_init(m);
            if (zmq_msg_recv(m, c->dealer, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(m);
                if (n == 0)
                    return 0;
                break;
            }
            more = zmq_msg_more(m);
            if (n >= PROXY_MAX_FRAMES) {
                zmq_msg_close(m);
                ok = false;
            }
            n++;
        }
        c->n_held = n < PROXY_MAX_FRAMES ? n : PROXY_MAX_FRAMES;
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

void *proxy_relay_main(void *arg)
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
        if (zmq_poll(items, (int)n, any_held ? PROXY_CATCHUP_RETRY_MS : 1000) < 0) {
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
        for (int k = 0; k < PROXY_BATCH && relay_request(p) == 0; k++)
            ;
        int64_t now = proxy_mono_ms();
        for (size_t i = p->n_peers; i-- > 0;)
            if (p->peers[i].n_held == 0 &&
                now - p->peers[i].last_ms > PROXY_CATCHUP_IDLE_MS)
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
