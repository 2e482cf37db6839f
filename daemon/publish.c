/* The alert socket: an XPUB that binds and carries each alert once per tag,
 * on the topic "alert.<tag>", so that a subscriber to the prefix
 * "alert.aid" gets exactly the aid alerts. Each copy carries the global seq
 * (one per article) and its topic's own topic_seq, so a subscriber to any
 * one topic can see a gap, and a subscriber to several can drop repeats by
 * seq. The copies themselves are queued and sent by delivery.c, after the
 * journal has them.
 *
 * Each subscriber has a pipe of its own, bounded by publish.sndhwm. A
 * subscriber that stops reading fills its pipe, and the copies it cannot
 * take are dropped for it alone: everyone else goes on at full rate, and
 * memory stays bounded by the high-water marks. (ZMQ_XPUB_NODROP would
 * instead refuse every copy while any one pipe is full, so that a single
 * stuck subscriber starved all of them.) libzmq does not count what it
 * drops for one pipe; the subscriber sees its loss as a jump in seq or
 * topic_seq, or, at the end of a burst, in the heartbeat, and repairs it
 * from the catch-up endpoint. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "newsalert/v1/alert.pb-c.h"
#include "newsalertd.h"

void na_zmtp_heartbeats(void *socket)
{
    int ivl = NA_ZMTP_HEARTBEAT_IVL_MS, timeout = NA_ZMTP_HEARTBEAT_TIMEOUT_MS;
    /* Failures leave TCP's own timeouts: worse, not wrong. */
    zmq_setsockopt(socket, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl));
    zmq_setsockopt(socket, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof(timeout));
    zmq_setsockopt(socket, ZMQ_HEARTBEAT_TTL, &timeout, sizeof(timeout));
}

/* The heartbeat (alert.proto's Heartbeat, on the topic "~hb"): where the
 * numbering stands, so that a subscriber that lost the last alerts of a
 * burst sees the gap without waiting for the next alert. It goes out on
 * the loop between batches, after every alert it counts has been sent. */
void na_publish_heartbeat(struct na_daemon *d)
{
    Newsalert__V1__Heartbeat hb = NEWSALERT__V1__HEARTBEAT__INIT;
    Newsalert__V1__TopicSeq ts[sizeof(d->topics) / sizeof(d->topics[0])];
    Newsalert__V1__TopicSeq *tp[sizeof(d->topics) / sizeof(d->topics[0])];
    char names[sizeof(d->topics) / sizeof(d->topics[0])][sizeof(d->topics[0].tag) + 8];
    uint8_t buf[8192];

    /* While a batch is held, d->seq counts alerts not published yet: a
     * consumer told of them would ask catch-up for seqs it cannot have. */
    if (na_delivery_holding(d))
        return;
    for (size_t i = 0; i < d->n_topics; i++) {
        if (d->topics[i].seq == 0)
            continue;
        newsalert__v1__topic_seq__init(&ts[hb.n_topics]);
        snprintf(names[hb.n_topics], sizeof(names[0]), "alert.%s", d->topics[i].tag);
        ts[hb.n_topics].topic = names[hb.n_topics];
        ts[hb.n_topics].seq = d->topics[i].seq;
        tp[hb.n_topics] = &ts[hb.n_topics];
        hb.n_topics++;
    }
    hb.topics = tp;
    hb.epoch = d->epoch;
    hb.last_seq = d->seq;
    hb.sent_at_ms = na_now_ms();
    hb.interval_ms = (uint32_t)d->cfg->heartbeat_ms;
    size_t n = newsalert__v1__heartbeat__get_packed_size(&hb);
    if (n > sizeof(buf)) {
        d->stats.publish_errors++;
        return;
    }
    newsalert__v1__heartbeat__pack(&hb, buf);
    na_publish_drain_subscriptions(d);
    if (zmq_send(d->pub, NA_HEARTBEAT_TOPIC, strlen(NA_HEARTBEAT_TOPIC),
                 ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(d->pub, buf, n, ZMQ_DONTWAIT) < 0) {
        d->stats.publish_errors++;
        return;
    }
    d->stats.heartbeats++;
}

int na_publish_open(struct na_daemon *d, struct na_error *err)
{
    int hwm = (int)d->cfg->publish_sndhwm;
    int linger = (int)d->cfg->linger_ms;
    char bound[256];
    size_t bound_len = sizeof(bound);

    d->pub = zmq_socket(d->zctx, ZMQ_XPUB);
    if (d->pub == NULL)
        return na_error_set(err, "publish: cannot create socket: %s",
                            zmq_strerror(errno));
    if (zmq_setsockopt(d->pub, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
        zmq_setsockopt(d->pub, ZMQ_LINGER, &linger, sizeof(linger)) < 0)
        return na_error_set(err, "publish: socket options: %s", zmq_strerror(errno));
    na_zmtp_heartbeats(d->pub);
    /* Keys and monitor before the bind: a consumer may connect at once. */
    if (na_curve_server_setup(d, d->pub, err) < 0)
        return -1;
    /* The monitor counts the subscribers' connections, and with CURVE the
     * handshakes refused before ZAP is asked. */
    if ((d->pub_mon = na_monitor_new(d, d->pub, "publish", err)) == NULL)
        return -1;
    if (zmq_bind(d->pub, d->cfg->publish_endpoint) < 0)
        return na_error_set(err, "publish: cannot bind %s: %s", d->cfg->publish_endpoint,
                            zmq_strerror(errno));
    /* The bound address, which says the port when the config said "*". */
    if (zmq_getsockopt(d->pub, ZMQ_LAST_ENDPOINT, bound, &bound_len) < 0)
        snprintf(bound, sizeof(bound), "%s", d->cfg->publish_endpoint);
    snprintf(d->bound_publish, sizeof(d->bound_publish), "%s", bound);
    na_info("publish: alerts on %s%s", bound,
            d->curve.publish_on ? " (CURVE, consumers in publish.curve.allow_dir)" : "");
    return 0;
}

/* Per-topic numbering is keyed by tag name, so that it carries on across a
 * reload that reorders or adds tags. */
static struct na_topic_seq *topic_of(struct na_daemon *d, const char *tag)
{
    for (size_t i = 0; i < d->n_topics; i++)
        if (!strcmp(d->topics[i].tag, tag))
            return &d->topics[i];
    if (d->n_topics == sizeof(d->topics) / sizeof(d->topics[0])) {
        /* More distinct tags over reloads than slots: reuse the oldest. */
        memmove(&d->topics[0], &d->topics[1], (d->n_topics - 1) * sizeof(d->topics[0]));
        d->n_topics--;
    }
    struct na_topic_seq *t = &d->topics[d->n_topics++];
    snprintf(t->tag, sizeof(t->tag), "%s", tag);
    t->seq = 0;
    t->published = 0;
    return t;
}

uint64_t na_topic_seq_next(struct na_daemon *d, const char *tag)
{
    return ++topic_of(d, tag)->seq;
}

void na_topic_seq_restore(struct na_daemon *d, const char *tag, uint64_t seq)
{
    struct na_topic_seq *t = topic_of(d, tag);
    if (seq > t->seq)
        t->seq = seq;
}

void na_topic_count_published(struct na_daemon *d, const char *tag, size_t len)
{
    char name[sizeof(d->topics[0].tag)];
    if (len >= sizeof(name))
        return;
    memcpy(name, tag, len);
    name[len] = '\0';
    topic_of(d, name)->published++;
}

void na_publish_drain_subscriptions(struct na_daemon *d)
{
    char buf[256];
    /* XPUB hands subscriptions to the application; nothing here needs
     * them, but unread they would pile up. */
    while (zmq_recv(d->pub, buf, sizeof(buf), ZMQ_DONTWAIT) >= 0)
        ;
}
