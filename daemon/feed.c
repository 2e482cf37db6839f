/* The feed: a SUB socket connected to the publishers, watched through
 * ZMQ_FD inside the libevent loop.
 *
 * ZMQ_FD is edge-triggered and means "events may have changed", not "a
 * message is there". So every wakeup drains with ZMQ_DONTWAIT until EAGAIN,
 * and when the per-wakeup batch runs out first, the event is re-activated by
 * hand, because no new edge will come for messages already queued. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <malloc.h>
#include <zmq.h>

#include "newsalertd.h"

/* Parts beyond this many are counted, not kept: the message is rejected. */
#define KEEP_PARTS 3

/* Receives one whole multipart message; 1 when one was handled, 0 when
 * nothing was waiting, -1 on an error. */
static int receive_one(struct na_daemon *d)
{
    zmq_msg_t parts[KEEP_PARTS];
    const uint8_t *data[KEEP_PARTS];
    size_t len[KEEP_PARTS];
    size_t n = 0, total = 0;
    int more = 1, rc = 1;

    while (more) {
        zmq_msg_t *m = &parts[n < KEEP_PARTS ? n : KEEP_PARTS - 1];
        if (n >= KEEP_PARTS)
            zmq_msg_close(m); /* reuse the last slot for the overflow */
        zmq_msg_init(m);
        if (zmq_msg_recv(m, d->sub, total == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            int e = errno;
            zmq_msg_close(m);
            if (n >= KEEP_PARTS)
                n = KEEP_PARTS - 1; /* the slot just closed is not ours any more */
            if (total == 0 && e == EAGAIN)
                return 0;
            if (e != EAGAIN && e != EINTR)
                na_warn("feed: receive failed: %s", zmq_strerror(e));
            rc = total ? 1 : -1;
            break;
        }
        more = zmq_msg_more(m);
        if (n < KEEP_PARTS)
            n++;
        total++;
    }
    for (size_t i = 0; i < n; i++) {
        data[i] = zmq_msg_data(&parts[i]);
        len[i] = zmq_msg_size(&parts[i]);
    }
    if (total > 0)
        na_daemon_handle(d, data, len, total);
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&parts[i]);
    return rc;
}

size_t na_feed_drain(struct na_daemon *d, size_t max)
{
    size_t handled = 0;
    /* A batch the journal refused is held: nothing more is taken from the
     * feed until it is in (delivery.c), which re-activates the feed. */
    if (na_delivery_holding(d))
        return 0;
    while (handled < max) {
        int rc = receive_one(d);
        if (rc <= 0)
            break;
        handled++;
    }
    /* The batch's last round, then its alerts: into the journal, then out. */
    na_daemon_finish_round(d);
    na_delivery_flush(d);
    return handled;
}

long na_rss_kib(void)
{
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%*d %ld", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* After a burst.
 *
 * While articles come faster than they are tagged, they wait in the feed
 * socket's queue, and that queue is this process's heap: 20,000 articles of
 * 2 KB queued hold some 50 MiB. glibc keeps freed memory for reuse rather
 * than hand it back, so the daemon would go on holding the RSS of its worst
 * burst. So once a burst has drained (a wakeup that ends the queue after one
 * that found a full batch) and a second has passed without another,
 * malloc_trim hands the free pages back.
 *
 * A trim runs on the loop and takes a millisecond or more. Near its full
 * rate the daemon drains a short backlog every few seconds, and trimming
 * after each gave back a MiB or two each time. So a burst that has grown RSS
 * by TRIM_GROWTH_KIB since the last trim (or the start) is trimmed at once;
 * one that has grown it by less, down to TRIM_SMALL_GROWTH_KIB, only if the
 * last trim is TRIM_SMALL_EVERY_MS old. What the daemon keeps beyond its
 * steady state stays small, and small trims stay rare. */
#define TRIM_AFTER_MS 1000
#define TRIM_GROWTH_KIB (4L << 10)
#define TRIM_SMALL_GROWTH_KIB (1L << 10)
#define TRIM_SMALL_EVERY_MS 30000

static void feed_on_settled(evutil_socket_t fd, short what, void *arg)
{
    struct na_daemon *d = arg;
    (void)fd;
    (void)what;

    if (d->feed_backlog)
        return; /* another burst is under way; its end asks again */
    long before = na_rss_kib(), grown = before - d->rss_trimmed_kib;
    int64_t now = na_mono_ms();
    if (grown < TRIM_GROWTH_KIB &&
        (grown < TRIM_SMALL_GROWTH_KIB || now - d->trimmed_at_ms < TRIM_SMALL_EVERY_MS)) {
        na_debug("memory: a burst has drained; RSS %ld KiB, %+ld KiB since the last "
                 "trim or the start: not trimmed",
                 before, grown);
        return;
    }
    uint64_t t0 = na_mono_ns();
    malloc_trim(0);
    d->rss_trimmed_kib = na_rss_kib();
    d->trimmed_at_ms = now;
    d->stats.memory_trims++;
    na_debug("memory: %ld KiB handed back after a burst, in %.1f ms",
             before - d->rss_trimmed_kib, (double)(na_mono_ns() - t0) / 1e6);
}

static void feed_on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct na_daemon *d = arg;
    (void)fd;
    (void)what;

    size_t batch = (size_t)d->cfg->batch;
    size_t handled = na_feed_drain(d, batch);
    if (na_delivery_holding(d))
        return; /* not re-armed: the release of the held batch does it */
    if (handled == batch)
        d->feed_backlog = true;
    /* Either the batch ran out, or recv said EAGAIN; in both cases re-check
     * ZMQ_EVENTS, since a send or receive may have consumed the edge. */
    if (handled == batch || na_zsock_readable(d->sub)) {
        event_active(d->feed_ev, EV_READ, 0);
    } else if (d->feed_backlog) {
        struct timeval tv = {TRIM_AFTER_MS / 1000, (TRIM_AFTER_MS % 1000) * 1000};
        d->feed_backlog = false;
        event_add(d->feed_settle_ev, &tv);
    }
}

int na_feed_open(struct na_daemon *d, struct na_error *err)
{
    const struct na_config *cfg = d->cfg;
    int hwm = (int)cfg->feed_rcvhwm;
    /* ZeroMQ drops a message over ZMQ_MAXMSGSIZE by disconnecting the peer
     * (the monitor counts it and reconnects), losing what follows it until
     * then. So the socket's cap sits at twice the article limit, as a guard
     * against absurd frames only, and the decoder enforces the real limit
     * with a counted reject. */
    int64_t maxmsg = 2 * (int64_t)cfg->limits.max_article_bytes + 65536;
    int linger = 0;
    int fd;
    size_t fdlen = sizeof(fd);

    d->sub = zmq_socket(d->zctx, ZMQ_SUB);
    if (d->sub == NULL)
        return na_error_set(err, "feed: cannot create socket: %s", zmq_strerror(errno));
    if (zmq_setsockopt(d->sub, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 ||
        zmq_setsockopt(d->sub, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0 ||
        zmq_setsockopt(d->sub, ZMQ_LINGER, &linger, sizeof(linger)) < 0)
        return na_error_set(err, "feed: socket options: %s", zmq_strerror(errno));
    na_zmtp_heartbeats(d->sub);
    for (size_t i = 0; i < cfg->feed_topics.n; i++) {
        const char *t = cfg->feed_topics.items[i];
        if (zmq_setsockopt(d->sub, ZMQ_SUBSCRIBE, t, strlen(t)) < 0)
            return na_error_set(err, "feed: subscribe '%s': %s", t, zmq_strerror(errno));
    }
    if (na_curve_client_setup(d, d->sub, err) < 0)
        return -1;
    /* The monitor counts refused handshakes and reconnects what libzmq
     * drops for good (and keeps the connected-endpoints gauge); it has to be
     * there before the first connect. */
    if ((d->feed_mon = na_monitor_new(d, d->sub, "feed", err)) == NULL)
        return -1;
    for (size_t i = 0; i < cfg->feed_endpoints.n; i++) {
        const char *ep = cfg->feed_endpoints.items[i];
        if (zmq_connect(d->sub, ep) < 0)
            return na_error_set(err, "feed: cannot connect to %s: %s", ep,
                                zmq_strerror(errno));
        na_info("feed: connecting to %s%s", ep, d->curve.feed_on ? " (CURVE)" : "");
    }
    if (zmq_getsockopt(d->sub, ZMQ_FD, &fd, &fdlen) < 0)
        return na_error_set(err, "feed: ZMQ_FD: %s", zmq_strerror(errno));
    d->feed_ev = event_new(d->base, fd, EV_READ | EV_PERSIST, feed_on_readable, d);
    d->feed_settle_ev = evtimer_new(d->base, feed_on_settled, d);
    d->rss_trimmed_kib = na_rss_kib();
    d->trimmed_at_ms = na_mono_ms();
    if (d->feed_ev == NULL || d->feed_settle_ev == NULL ||
        event_add(d->feed_ev, NULL) < 0)
        return na_error_set(err, "feed: cannot watch the socket");
    /* A message may already be queued, its edge gone before we watched. */
    event_active(d->feed_ev, EV_READ, 0);
    return 0;
}
