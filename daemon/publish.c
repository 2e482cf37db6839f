/* The alert socket: a PUB that binds and sends each alert once per tag, on
 * the topic "alert.<tag>", so that a subscriber to the prefix "alert.aid"
 * gets exactly the aid alerts. Each copy carries the global seq (one per
 * article) and its topic's own topic_seq, so a subscriber to any one topic
 * can see a gap, and a subscriber to several can drop repeats by seq. */
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

    d->pub = zmq_socket(d->zctx, ZMQ_PUB);
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

void na_publish_alert(struct na_daemon *d, Newsalert__V1__Alert *alert)
{
    char topic[64];

    for (size_t i = 0; i < alert->n_tags; i++) {
        int tlen = snprintf(topic, sizeof(topic), "alert.%s", alert->tags[i]->tag);
        struct na_topic_seq *t = topic_of(d, alert->tags[i]->tag);
        alert->topic = topic;
        alert->topic_seq = ++t->seq;
        size_t n = newsalert__v1__alert__get_packed_size(alert);
        if (n > d->pack_cap) {
            uint8_t *p = realloc(d->pack_buf, n);
            if (p == NULL) {
                na_err("publish: out of memory for a %zu byte alert", n);
                d->stats.publish_errors++;
                continue;
            }
            d->pack_buf = p;
            d->pack_cap = n;
        }
        newsalert__v1__alert__pack(alert, d->pack_buf);
        /* PUB never blocks: at the high-water mark it drops, which a
         * subscriber sees as a topic_seq gap. */
        if (zmq_send(d->pub, topic, (size_t)tlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(d->pub, d->pack_buf, n, ZMQ_DONTWAIT) < 0) {
            d->stats.publish_errors++;
            na_warn("publish: send on %s failed: %s", topic, zmq_strerror(errno));
            continue;
        }
        d->stats.published++;
        t->published++;
    }
    alert->topic = NULL;
}
