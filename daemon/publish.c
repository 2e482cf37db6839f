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

#include "newsalertd.h"

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
    /* Keys and monitor before the bind: a consumer may connect at once. */
    if (na_curve_server_setup(d, d->pub, err) < 0)
        return -1;
    if (d->curve.publish_on &&
        (d->pub_mon = na_monitor_new(d, d->pub, "publish", err)) == NULL)
        return -1;
    if (zmq_bind(d->pub, d->cfg->publish_endpoint) < 0)
        return na_error_set(err, "publish: cannot bind %s: %s", d->cfg->publish_endpoint,
                            zmq_strerror(errno));
    /* The bound address, which says the port when the config said "*". */
    if (zmq_getsockopt(d->pub, ZMQ_LAST_ENDPOINT, bound, &bound_len) < 0)
        snprintf(bound, sizeof(bound), "%s", d->cfg->publish_endpoint);
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
