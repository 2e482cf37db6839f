/* Delivery: what makes an alert something a consumer can count on.
 *
 *  - Every alert goes into the journal before it is published. Alerts of a
 *    batch (one wakeup of the feed) are appended to the journal's buffer,
 *    flushed with one write (and an fdatasync, per the fsync policy), and
 *    only then sent: a consumer never sees an alert the journal does not
 *    hold.
 *  - When the journal cannot take a batch (a full disk, an I/O error), the
 *    batch is held, not published: the feed is no longer read (its queue,
 *    then the publisher's high-water mark, push back upstream), no
 *    heartbeat goes out, /healthz says "journal failing", and the batch is
 *    appended again every JOURNAL_RETRY_MS until it goes in; then it is
 *    published and the feed read again. So a seq is never published
 *    without its record, and catch-up never answers "nothing there" for a
 *    seq that was published. A stop while held exits non-zero: the held
 *    alerts were never published, and the next run numbers from the last
 *    one that was.
 *  - seq, epoch and each topic's numbering are recovered from the journal
 *    at start-up, and the dedup window is refilled from it.
 *  - The PUB side is an XPUB whose subscribers each have a bounded pipe:
 *    a subscriber that stops reading loses the copies its pipe has no room
 *    for, alone (publish.c); it sees the gap in seq, topic_seq or the
 *    heartbeat and fetches the alerts from the catch-up endpoint.
 *  - Rejected input goes to the quarantine with its reason.
 *  - The catch-up endpoint, a ROUTER, streams journalled alerts to DEALER
 *    clients (catchup.proto), a bounded batch per client per turn of the
 *    loop, so that one large request cannot starve the feed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

#include "newsalert/catchup.h"
#include "newsalert/dedup.h"
#include "newsalert/journal.h"
#include "newsalert/quarantine.h"
#include "newsalert/v1/catchup.pb-c.h"
#include "newsalertd.h"

/* How often a held batch is offered to the journal again. */
#define JOURNAL_RETRY_MS 1000

/* One alert copy waiting for the journal flush: [topic, payload] in out. */
struct queued {
    size_t off, topic_len, len;
};

/* The journal record of one alert of the batch, kept in stash until the
 * batch is in the journal, so that it can be appended again. */
struct stashed {
    uint64_t seq;
    int64_t time_ms;
    size_t off, len;
};

struct stream {
    uint8_t id[256]; /* the client's ROUTER identity */
    size_t id_len;
    struct na_journal_reader *reader;
    uint64_t until; /* 0: up to the newest */
    char **tags;    /* NULL: all */
    size_t n_tags;
    uint64_t sent;
    uint8_t *held; /* a reply the client's pipe had no room for */
    size_t held_len;
};

struct na_delivery {
    struct na_journal *journal;
    struct na_quarantine *quarantine;
    struct na_dedup *dedup;
    enum na_fsync fsync;
    struct event *sync_timer, *retain_timer;
    /* The publish queue of the current batch. */
    uint8_t *out;
    size_t out_len, out_cap;
    struct queued *q;
    size_t n_q, cap_q;
    uint8_t *jbuf; /* the journal copy of one alert */
    size_t jcap;
    /* The batch's journal records, and what became of them. */
    uint8_t *stash;
    size_t stash_len, stash_cap;
    struct stashed *st;
    size_t n_st, cap_st;
    bool batch_failed; /* an append of this batch failed */
    bool holding;      /* a batch the journal refused waits in out and stash */
    int64_t held_since_ms;
    struct event *retry_timer;
    struct na_ratelimit fail_rl;
    /* Catch-up. */
    void *router;
    struct na_monitor *monitor;
    struct event *router_ev, *stream_ev;
    struct stream *streams;
    size_t n_streams;
    size_t next_stream;
};

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int make_dir(const char *path, struct na_error *err)
{
    if (mkdir(path, 0750) == 0 || errno == EEXIST)
        return 0;
    return na_error_set(err, "%s: cannot create: %s", path, strerror(errno));
}

/* ---- recovery ---- */

/* Reads the journal once: topic numbers and the dedup window come back
 * from the alerts themselves. */
static int recover(struct na_daemon *d, struct na_error *err)
{
    struct na_delivery *v = d->delivery;
    struct na_journal_reader *r = na_journal_reader_open(v->journal, 0, err);
    uint64_t seq, n = 0;
    int64_t t;
    const uint8_t *p;
    size_t len;
    int rc;

    if (r == NULL)
        return -1;
    while ((rc = na_journal_reader_next(r, &seq, &t, &p, &len, err)) > 0) {
        Newsalert__V1__Alert *a = newsalert__v1__alert__unpack(NULL, len, p);
        if (a == NULL)
            continue;
        for (size_t i = 0; i < a->n_topics; i++) {
            const char *topic = a->topics[i]->topic;
            if (topic && !strncmp(topic, "alert.", 6))
                na_topic_seq_restore(d, topic + 6, a->topics[i]->seq);
        }
        if (v->dedup && a->article_id)
            na_dedup_record(v->dedup, a->source ? a->source : "", a->article_id,
                            a->revision, a->seq);
        newsalert__v1__alert__free_unpacked(a, NULL);
        n++;
    }
    na_journal_reader_close(r);
    if (rc < 0)
        na_warn("journal: recovery stopped early: %s", err->msg);
    if (n)
        na_info("journal: %llu alerts read back; topic numbers and the dedup window "
                "restored",
                (unsigned long long)n);
    return 0;
}

/* ---- timers ---- */

static void journal_failed(struct na_daemon *d, const char *what);
static void on_retry_timer(evutil_socket_t fd, short what, void *arg);

static void on_sync_timer(evutil_socket_t fd, short what, void *arg)
{
    struct na_daemon *d = arg;
    struct na_error err;
    (void)fd;
    (void)what;
    if (na_journal_sync_due(d->delivery->journal, na_mono_ms()) &&
        na_journal_sync_start(d->delivery->journal, &err) < 0)
        journal_failed(d, err.msg);
}

static void on_retain_timer(evutil_socket_t fd, short what, void *arg)
{
    struct na_daemon *d = arg;
    struct na_error err;
    (void)fd;
    (void)what;
    if (na_journal_retain(d->delivery->journal, na_now_ms(), &err) < 0)
        journal_failed(d, err.msg);
}

static void journal_opts(const struct na_config *cfg, struct na_journal_opts *o)
{
    na_journal_opts_default(o);
    o->segment_bytes = (uint64_t)cfg->journal_segment_bytes;
    o->max_bytes = (uint64_t)cfg->journal_max_bytes;
    o->max_age_ms = (int64_t)cfg->journal_max_age_s * 1000;
    na_fsync_parse(cfg->journal_fsync, &o->fsync, NULL);
    o->fsync_interval_ms = (uint32_t)cfg->journal_fsync_interval_ms;
}

int na_delivery_open(struct na_daemon *d, struct na_error *err)
{
    const struct na_config *cfg = d->cfg;
    struct na_delivery *v = calloc(1, sizeof(*v));
    struct na_journal_opts o;
    struct na_journal_report rep;
    char path[4096];

    if (v == NULL)
        return na_error_set(err, "out of memory");
    d->delivery = v;
    if (make_dir(cfg->state_dir, err) < 0)
        return -1;
    journal_opts(cfg, &o);
    v->fsync = o.fsync;
    snprintf(path, sizeof(path), "%s/journal", cfg->state_dir);
    v->journal = na_journal_open(path, &o, &rep, err);
    if (v->journal == NULL)
        return -1;
    for (size_t i = 0; i < rep.n_msgs; i++)
        na_log(na_journal_report_damaged(&rep) ? NA_LOG_WARNING : NA_LOG_INFO,
               "journal: %s", rep.msgs[i]);
    d->seq = na_journal_last_seq(v->journal);
    d->epoch = na_journal_epoch(v->journal);
    na_info("journal: %s, epoch %llu, seq %llu, %llu alerts kept (%llu bytes), fsync %s",
            path, (unsigned long long)d->epoch, (unsigned long long)d->seq,
            (unsigned long long)rep.records, (unsigned long long)rep.bytes,
            na_fsync_name(o.fsync));
    if (cfg->dedup_window > 0 &&
        (v->dedup = na_dedup_new((size_t)cfg->dedup_window)) == NULL)
        return na_error_set(err, "out of memory for the dedup window");
    if (recover(d, err) < 0)
        return -1;
    if (cfg->quarantine_max_bytes > 0) {
        snprintf(path, sizeof(path), "%s/quarantine", cfg->state_dir);
        v->quarantine = na_quarantine_open(path, (uint64_t)cfg->quarantine_max_bytes,
                                           (uint64_t)cfg->quarantine_file_bytes, err);
        if (v->quarantine == NULL)
            return -1;
    }
    if (o.fsync == NA_FSYNC_INTERVAL) {
        long ms = (long)cfg->journal_fsync_interval_ms;
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        v->sync_timer = event_new(d->base, -1, EV_PERSIST, on_sync_timer, d);
        if (v->sync_timer == NULL || event_add(v->sync_timer, &tv) < 0)
            return na_error_set(err, "journal: cannot add the fsync timer");
    }
    v->retry_timer = evtimer_new(d->base, on_retry_timer, d);
    if (v->retry_timer == NULL)
        return na_error_set(err, "journal: cannot add the retry timer");
    struct timeval minute = {60, 0};
    v->retain_timer = event_new(d->base, -1, EV_PERSIST, on_retain_timer, d);
    if (v->retain_timer == NULL || event_add(v->retain_timer, &minute) < 0)
        return na_error_set(err, "journal: cannot add the retention timer");
    return 0;
}

void na_delivery_reconfigure(struct na_daemon *d)
{
    struct na_delivery *v = d->delivery;
    na_journal_set_retention(v->journal, (uint64_t)d->cfg->journal_max_bytes,
                             (int64_t)d->cfg->journal_max_age_s * 1000);
    if (v->dedup && d->cfg->dedup_window > 0)
        na_dedup_resize(v->dedup, (size_t)d->cfg->dedup_window);
}

uint64_t na_delivery_journal_bytes(const struct na_daemon *d)
{
    return d->delivery && d->delivery->journal
               ? na_journal_size_bytes(d->delivery->journal)
               : 0;
}

uint64_t na_delivery_journal_syncs(const struct na_daemon *d)
{
    return d->delivery && d->delivery->journal
               ? na_journal_background_syncs(d->delivery->journal)
               : 0;
}

uint64_t na_delivery_quarantine_bytes(const struct na_daemon *d)
{
    return d->delivery && d->delivery->quarantine
               ? na_quarantine_size_bytes(d->delivery->quarantine)
               : 0;
}

/* ---- the pipeline's hooks ---- */

void na_delivery_quarantine(struct na_daemon *d, enum na_reject why,
                            const uint8_t *const *data, const size_t *len, size_t n)
{
    struct na_delivery *v = d->delivery;
    struct na_frame f[3];
    struct na_error err;

    if (v == NULL || v->quarantine == NULL)
        return;
    if (n > 3)
        n = 3; /* the frames kept of an over-long message */
    for (size_t i = 0; i < n; i++)
        f[i] = (struct na_frame){data[i], len[i]};
    if (na_quarantine_add(v->quarantine, wall_ns(), na_reject_name(why), f, n, &err) <
        0) {
        d->stats.quarantine_errors++;
        na_warn("quarantine: %s", err.msg);
        return;
    }
    d->stats.quarantined++;
}

int na_delivery_check(struct na_daemon *d, const Newsalert__V1__Article *a,
                      uint64_t *update_of)
{
    struct na_delivery *v = d->delivery;
    uint64_t prev = 0;

    *update_of = 0;
    if (v == NULL || v->dedup == NULL)
        return 0;
    switch (
        na_dedup_check(v->dedup, a->source ? a->source : "", a->id, a->revision, &prev)) {
    case NA_DEDUP_DUPLICATE:
        d->stats.duplicates++;
        return 1;
    case NA_DEDUP_REVISION:
        d->stats.revisions++;
        *update_of = prev;
        return 0;
    default:
        return 0;
    }
}

void na_delivery_remember(struct na_daemon *d, const Newsalert__V1__Article *a,
                          uint64_t seq)
{
    struct na_delivery *v = d->delivery;
    if (v && v->dedup)
        na_dedup_record(v->dedup, a->source ? a->source : "", a->id, a->revision, seq);
}

static uint8_t *reserve(struct na_delivery *v, size_t n)
{
    if (v->out_len + n > v->out_cap) {
        size_t cap = v->out_cap ? v->out_cap : 65536;
        while (cap < v->out_len + n)
            cap *= 2;
        uint8_t *p = realloc(v->out, cap);
        if (p == NULL)
            return NULL;
        v->out = p;
        v->out_cap = cap;
    }
    return v->out + v->out_len;
}

/* Keeps the journal record of one alert until its batch is journalled. */
static int stash_record(struct na_delivery *v, uint64_t seq, int64_t time_ms,
                        const uint8_t *rec, size_t len)
{
    if (v->stash_len + len > v->stash_cap) {
        size_t cap = v->stash_cap ? v->stash_cap : 65536;
        while (cap < v->stash_len + len)
            cap *= 2;
        uint8_t *p = realloc(v->stash, cap);
        if (p == NULL)
            return -1;
        v->stash = p;
        v->stash_cap = cap;
    }
    if (v->n_st == v->cap_st) {
        size_t cap = v->cap_st ? v->cap_st * 2 : 256;
        struct stashed *s = realloc(v->st, cap * sizeof(*s));
        if (s == NULL)
            return -1;
        v->st = s;
        v->cap_st = cap;
    }
    memcpy(v->stash + v->stash_len, rec, len);
    v->st[v->n_st++] = (struct stashed){seq, time_ms, v->stash_len, len};
    v->stash_len += len;
    return 0;
}

/* One journal failure: counted always, logged at most a few times a
 * window with the count of the ones not logged. */
static void journal_failed(struct na_daemon *d, const char *what)
{
    uint64_t suppressed;
    d->stats.journal_errors++;
    if (na_ratelimit_pass(&d->delivery->fail_rl, na_mono_ms(), &suppressed))
        na_err("journal: %s%s", what,
               suppressed ? " (and more failures not logged)" : "");
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* The copies of one alert (the journal's, and one per topic) differ only in
 * fields 1 to 3 (seq, topic, topic_seq), which come first on the wire. So
 * the rest is packed once, and each copy is that rest behind a header of its
 * own: the very bytes a full pack of the copy gives, since protobuf-c writes
 * fields in number order (the interop test holds the daemon to it). Packing
 * every copy in full was 14% of the daemon's instructions per article. */
#define HEADER_MAX (3 + 3 * 10 + 64)

static size_t put_header(uint8_t *p, uint64_t seq, const char *topic, size_t topic_len,
                         uint64_t topic_seq)
{
    size_t n = 0;
    if (seq) {
        p[n++] = 0x08; /* field 1, varint */
        n += put_varint(p + n, seq);
    }
    if (topic_len) {
        p[n++] = 0x12; /* field 2, length-delimited */
        n += put_varint(p + n, topic_len);
        memcpy(p + n, topic, topic_len);
        n += topic_len;
    }
    if (topic_seq) {
        p[n++] = 0x18; /* field 3, varint */
        n += put_varint(p + n, topic_seq);
    }
    return n;
}

/* Queues [topic, header + rest] for the flush. */
static int queue_copy(struct na_delivery *v, const char *topic, size_t topic_len,
                      const uint8_t *header, size_t header_len, const uint8_t *rest,
                      size_t rest_len)
{
    uint8_t *p = reserve(v, topic_len + header_len + rest_len);
    if (p == NULL)
        return -1;
    if (v->n_q == v->cap_q) {
        size_t cap = v->cap_q ? v->cap_q * 2 : 256;
        struct queued *q = realloc(v->q, cap * sizeof(*q));
        if (q == NULL)
            return -1;
        v->q = q;
        v->cap_q = cap;
    }
    memcpy(p, topic, topic_len);
    memcpy(p + topic_len, header, header_len);
    memcpy(p + topic_len + header_len, rest, rest_len);
    v->q[v->n_q++] = (struct queued){v->out_len, topic_len, header_len + rest_len};
    v->out_len += topic_len + header_len + rest_len;
    return 0;
}

void na_delivery_alert(struct na_daemon *d, Newsalert__V1__Alert *alert)
{
    struct na_delivery *v = d->delivery;
    Newsalert__V1__TopicSeq ts[NA_MAX_TAGS], *tsp[NA_MAX_TAGS];
    char names[NA_MAX_TAGS][64];
    struct na_error err;
    size_t n = alert->n_tags < NA_MAX_TAGS ? alert->n_tags : NA_MAX_TAGS;

    for (size_t i = 0; i < n; i++) {
        newsalert__v1__topic_seq__init(&ts[i]);
        snprintf(names[i], sizeof(names[i]), "alert.%s", alert->tags[i]->tag);
        ts[i].topic = names[i];
        ts[i].seq = na_topic_seq_next(d, alert->tags[i]->tag);
        tsp[i] = &ts[i];
    }
    alert->topics = tsp;
    alert->n_topics = n;

    /* The rest: everything from field 4 on, topics included. */
    uint64_t seq = alert->seq;
    alert->seq = 0;
    alert->topic = NULL;
    alert->topic_seq = 0;
    size_t len = newsalert__v1__alert__get_packed_size(alert);
    if (HEADER_MAX + len > v->jcap) {
        uint8_t *p = realloc(v->jbuf, HEADER_MAX + len);
        if (p) {
            v->jbuf = p;
            v->jcap = HEADER_MAX + len;
        }
    }
    uint8_t header[HEADER_MAX];
    if (HEADER_MAX + len <= v->jcap) {
        uint8_t *rest = v->jbuf + HEADER_MAX;
        newsalert__v1__alert__pack(alert, rest);
        /* The journal copy: every topic listed, none chosen. */
        size_t h = put_header(header, seq, NULL, 0, 0);
        int64_t now = na_now_ms();
        memcpy(rest - h, header, h);
        if (h + len > NA_JOURNAL_MAX_PAYLOAD) {
            /* Never journalled, so never published: holding the batch for
             * it would stop the feed for good. Its seq stays unused. */
            d->stats.publish_errors++;
            na_err("alert %llu: %zu bytes, over the journal's record limit: not published "
                   "(lower limits.max_evidence or max_evidence_bytes)",
                   (unsigned long long)seq, h + len);
            n = 0;
        } else if (stash_record(v, seq, now, rest - h, h + len) < 0) {
            /* Without its record kept it could not be held with its batch,
             * nor published unjournalled after a retry. */
            d->stats.publish_errors++;
            na_err("alert %llu: out of memory keeping its record: not published",
                   (unsigned long long)seq);
            n = 0;
        } else if (!v->batch_failed &&
                   na_journal_append(v->journal, seq, now, rest - h, h + len, &err) < 0) {
            /* The rest of the batch waits for the retry, in order. */
            v->batch_failed = true;
            journal_failed(d, err.msg);
        }
        for (size_t i = 0; i < n; i++) {
            size_t tl = strlen(names[i]);
            h = put_header(header, seq, names[i], tl, ts[i].seq);
            if (queue_copy(v, names[i], tl, header, h, rest, len) < 0) {
                d->stats.publish_errors++;
                na_err("publish: out of memory queueing alert %llu",
                       (unsigned long long)seq);
            }
        }
    } else {
        d->stats.publish_errors++;
        na_err("alert %llu: out of memory packing it", (unsigned long long)seq);
    }
    alert->seq = seq;
    alert->topics = NULL;
    alert->n_topics = 0;
}

static void send_queued(struct na_daemon *d)
{
    struct na_delivery *v = d->delivery;
    na_publish_drain_subscriptions(d);
    for (size_t i = 0; i < v->n_q; i++) {
        const struct queued *q = &v->q[i];
        const uint8_t *p = v->out + q->off;
        if (zmq_send(d->pub, p, q->topic_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            if (errno == EAGAIN)
                d->stats.publish_dropped++;
            else
                d->stats.publish_errors++;
            continue;
        }
        /* The first frame went, so the pipe had room: the second goes too. */
        if (zmq_send(d->pub, p + q->topic_len, q->len, ZMQ_DONTWAIT) < 0) {
            d->stats.publish_errors++;
            continue;
        }
        d->stats.published++;
        na_topic_count_published(d, (const char *)p + 6, q->topic_len - 6);
    }
    v->n_q = 0;
    v->out_len = 0;
}

static void stream_kick(struct na_daemon *d);

static void batch_done(struct na_delivery *v)
{
    v->n_st = 0;
    v->stash_len = 0;
    v->batch_failed = false;
}

/* Appends what of the held batch the journal does not have yet (a failed
 * flush may have written part of it), and flushes. 0 when it is all in. */
static int journal_again(struct na_daemon *d, struct na_error *err)
{
    struct na_delivery *v = d->delivery;
    uint64_t have = na_journal_last_seq(v->journal);

    for (size_t i = 0; i < v->n_st; i++) {
        const struct stashed *s = &v->st[i];
        if (s->seq <= have)
            continue;
        if (na_journal_append(v->journal, s->seq, s->time_ms, v->stash + s->off, s->len,
                              err) < 0)
            return -1;
    }
    if (na_journal_flush(v->journal, err) < 0)
        return -1;
    /* A flush that wrote the records and then failed to sync them left
     * nothing buffered: under fsync "always" the sync is owed still. */
    if (v->fsync == NA_FSYNC_ALWAYS && na_journal_sync(v->journal, err) < 0)
        return -1;
    return 0;
}

static void hold(struct na_daemon *d)
{
    struct na_delivery *v = d->delivery;
    struct timeval tv = {JOURNAL_RETRY_MS / 1000, (JOURNAL_RETRY_MS % 1000) * 1000};

    na_journal_discard(v->journal);
    if (!v->holding) {
        v->holding = true;
        v->held_since_ms = na_mono_ms();
        d->stats.journal_holds++;
        na_err("journal: cannot write; %zu alerts (seq %llu to %llu) held unpublished and "
               "the feed paused until it can, retrying every %d ms",
               v->n_st, v->n_st ? (unsigned long long)v->st[0].seq : 0ULL,
               v->n_st ? (unsigned long long)v->st[v->n_st - 1].seq : 0ULL,
               JOURNAL_RETRY_MS);
        na_notify("STATUS=journal failing: feed paused, alerts held");
    }
    if (v->retry_timer)
        evtimer_add(v->retry_timer, &tv);
}

static void release(struct na_daemon *d)
{
    struct na_delivery *v = d->delivery;
    size_t n = v->n_st;

    batch_done(v);
    send_queued(d);
    if (v->holding) {
        v->holding = false;
        na_info("journal: writable again after %.1f s; the %zu alerts held are journalled "
                "and published, and the feed is read again",
                (double)(na_mono_ms() - v->held_since_ms) / 1000.0, n);
        na_notifyf("STATUS=serving on %s", d->cfg->publish_endpoint);
        if (d->feed_ev)
            event_active(d->feed_ev, EV_READ, 0);
    }
}

int na_delivery_retry(struct na_daemon *d)
{
    struct na_delivery *v = d->delivery;
    struct na_error err;

    if (v == NULL || !v->holding)
        return 0;
    if (journal_again(d, &err) < 0) {
        journal_failed(d, err.msg);
        hold(d);
        return -1;
    }
    release(d);
    return 0;
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    na_delivery_retry(arg);
}

bool na_delivery_holding(const struct na_daemon *d)
{
    return d->delivery && d->delivery->holding;
}

size_t na_delivery_held(const struct na_daemon *d)
{
    return d->delivery && d->delivery->holding ? d->delivery->n_st : 0;
}

void na_delivery_flush(struct na_daemon *d)
{
    struct na_delivery *v = d->delivery;
    struct na_error err;

    if (v == NULL || v->holding)
        return;
    if (v->journal) {
        if (v->batch_failed) {
            hold(d);
            return;
        }
        if (na_journal_flush(v->journal, &err) < 0) {
            journal_failed(d, err.msg);
            hold(d);
            return;
        }
    }
    release(d);
    if (v->quarantine && na_quarantine_flush(v->quarantine, &err) < 0) {
        d->stats.quarantine_errors++;
        na_warn("quarantine: %s", err.msg);
    }
    /* Streams that reached the end may have more to send now. */
    if (v->n_streams)
        stream_kick(d);
}

/* ---- catch-up ---- */

static int send_reply(struct na_daemon *d, struct stream *s, const uint8_t *msg,
                      size_t len)
{
    void *r = d->delivery->router;
    if (zmq_send(r, s->id, s->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    if (zmq_send(r, msg, len, ZMQ_DONTWAIT) < 0)
        return -1;
    return 0;
}

static int send_packed_reply(struct na_daemon *d, struct stream *s,
                             Newsalert__V1__CatchupReply *rep)
{
    uint8_t buf[1024];
    rep->epoch = d->epoch;
    size_t n = newsalert__v1__catchup_reply__get_packed_size(rep);
    if (n > sizeof(buf))
        return -1;
    newsalert__v1__catchup_reply__pack(rep, buf);
    return send_reply(d, s, buf, n);
}

static void send_error_to(struct na_daemon *d, const uint8_t *id, size_t id_len,
                          const char *why)
{
    struct stream s = {.id_len = id_len};
    Newsalert__V1__CatchupReply rep = NEWSALERT__V1__CATCHUP_REPLY__INIT;
    char msg[200];
    memcpy(s.id, id, id_len);
    snprintf(msg, sizeof(msg), "%s", why);
    rep.kind = NEWSALERT__V1__CATCHUP_REPLY__KIND__KIND_ERROR;
    rep.error = msg;
    d->stats.catchup_refused++;
    send_packed_reply(d, &s, &rep);
}

static void stream_free(struct stream *s)
{
    na_journal_reader_close(s->reader);
    for (size_t i = 0; i < s->n_tags; i++)
        free(s->tags[i]);
    free(s->tags);
    free(s->held);
    memset(s, 0, sizeof(*s));
}

static void stream_remove(struct na_delivery *v, size_t i)
{
    stream_free(&v->streams[i]);
    v->streams[i] = v->streams[--v->n_streams];
    if (v->next_stream >= v->n_streams)
        v->next_stream = 0;
}

static bool wanted(const struct stream *s, const uint8_t *p, size_t len)
{
    if (s->n_tags == 0)
        return true;
    Newsalert__V1__Alert *a = newsalert__v1__alert__unpack(NULL, len, p);
    bool ok = false;
    for (size_t i = 0; a && i < a->n_tags && !ok; i++)
        for (size_t k = 0; k < s->n_tags && !ok; k++)
            ok = !strcmp(a->tags[i]->tag, s->tags[k]);
    if (a)
        newsalert__v1__alert__free_unpacked(a, NULL);
    return ok;
}

/* Sends up to batch alerts of one stream. Returns 1 when the stream is
 * finished (END sent or the client gone), 0 when it has more, -1 when the
 * client's pipe is full for now. */
static int stream_step(struct na_daemon *d, struct stream *s, size_t batch)
{
    struct na_delivery *v = d->delivery;
    struct na_error err;

    if (s->held) {
        if (send_reply(d, s, s->held, s->held_len) < 0)
            return errno == EAGAIN ? -1 : 1;
        free(s->held);
        s->held = NULL;
        s->sent++;
    }
    for (size_t k = 0; k < batch; k++) {
        uint64_t seq;
        int64_t t;
        const uint8_t *p;
        size_t len;
        int rc = na_journal_reader_next(s->reader, &seq, &t, &p, &len, &err);
        if (rc < 0)
            na_warn("catch-up: journal read failed: %s", err.msg);
        if (rc <= 0 || (s->until && seq > s->until)) {
            Newsalert__V1__CatchupReply rep = NEWSALERT__V1__CATCHUP_REPLY__INIT;
            rep.kind = NEWSALERT__V1__CATCHUP_REPLY__KIND__KIND_END;
            rep.last_seq = na_journal_last_seq(v->journal);
            rep.count = s->sent;
            rep.oldest_seq = na_journal_first_seq(v->journal);
            if (send_packed_reply(d, s, &rep) < 0 && errno == EAGAIN)
                return -1;
            return 1;
        }
        if (!wanted(s, p, len))
            continue;
        /* A CatchupReply: kind, epoch, then the alert's journalled bytes as
         * field 3, which are a packed Alert already, so they are framed
         * rather than decoded and packed again. */
        uint8_t head[32];
        size_t h = 0;
        head[h++] = 0x08; /* field 1, varint: kind */
        h += put_varint(head + h, NEWSALERT__V1__CATCHUP_REPLY__KIND__KIND_ALERT);
        head[h++] = 0x10; /* field 2, varint: epoch */
        h += put_varint(head + h, d->epoch);
        head[h++] = 0x1a; /* field 3, length-delimited: alert */
        h += put_varint(head + h, len);
        uint8_t *msg = malloc(h + len);
        if (msg == NULL)
            return 1;
        memcpy(msg, head, h);
        memcpy(msg + h, p, len);
        if (send_reply(d, s, msg, h + len) < 0) {
            if (errno != EAGAIN) {
                free(msg);
                return 1; /* the client went away */
            }
            s->held = msg;
            s->held_len = h + len;
            return -1;
        }
        free(msg);
        s->sent++;
        d->stats.catchup_alerts++;
    }
    return 0;
}

static void on_streams(evutil_socket_t fd, short what, void *arg)
{
    struct na_daemon *d = arg;
    struct na_delivery *v = d->delivery;
    bool more = false, blocked = false;
    (void)fd;
    (void)what;

    /* One turn: each stream gets a batch, starting after last turn's first,
     * so no client can keep the others (or the feed) waiting. */
    size_t n = v->n_streams;
    for (size_t k = 0; k < n && v->n_streams; k++) {
        size_t i = (v->next_stream + k) % v->n_streams;
        int rc = stream_step(d, &v->streams[i], (size_t)d->cfg->catchup_batch);
        if (rc == 1) {
            stream_remove(v, i);
            k--;
            n--;
        } else if (rc == 0) {
            more = true;
        } else {
            blocked = true;
        }
    }
    if (v->n_streams)
        v->next_stream = (v->next_stream + 1) % v->n_streams;
    /* ZMQ_FD is edge-triggered, and a send processes the socket's pending
     * commands, which can take the edge of a request that arrived
     * meanwhile: without this look, a request that comes while a stream is
     * blocked on a full client pipe would wait for a next edge that never
     * comes (the stream's own retries are sends too). */
    if (na_zsock_readable(v->router))
        event_active(v->router_ev, EV_READ, 0);
    if (more) {
        event_active(v->stream_ev, EV_TIMEOUT, 0);
    } else if (blocked) {
        struct timeval tv = {0, 10000}; /* a full client pipe: try again soon */
        event_add(v->stream_ev, &tv);
    }
}

static void stream_kick(struct na_daemon *d)
{
    struct na_delivery *v = d->delivery;
    if (v->stream_ev && !event_pending(v->stream_ev, EV_TIMEOUT, NULL))
        event_active(v->stream_ev, EV_TIMEOUT, 0);
}

static void on_request(struct na_daemon *d, const uint8_t *id, size_t id_len,
                       const uint8_t *body, size_t len)
{
    struct na_delivery *v = d->delivery;
    struct na_error err;

    d->stats.catchup_requests++;
    const char *names[NA_MAX_TAGS];
    size_t n_names = 0;
    for (size_t t = 0; t < na_ruleset_tag_count(d->rs) && t < NA_MAX_TAGS; t++)
        names[n_names++] = na_ruleset_tag(d->rs, t)->name;
    struct na_catchup_limits lim = {(uint64_t)d->cfg->catchup_max_range, names, n_names};
    Newsalert__V1__CatchupRequest *req = na_catchup_request_parse(body, len, &lim, &err);
    if (req == NULL) {
        send_error_to(d, id, id_len, err.msg);
        return;
    }
    /* One stream per client: a new request replaces the old one. */
    size_t slot = v->n_streams;
    for (size_t i = 0; i < v->n_streams; i++)
        if (v->streams[i].id_len == id_len && !memcmp(v->streams[i].id, id, id_len))
            slot = i;
    if (slot == v->n_streams && v->n_streams >= (size_t)d->cfg->catchup_max_clients) {
        send_error_to(d, id, id_len, "busy: too many catch-up clients; try again");
        newsalert__v1__catchup_request__free_unpacked(req, NULL);
        return;
    }
    if (slot < v->n_streams) {
        stream_free(&v->streams[slot]);
    } else {
        struct stream *s = realloc(v->streams, (v->n_streams + 1) * sizeof(*s));
        if (s == NULL) {
            newsalert__v1__catchup_request__free_unpacked(req, NULL);
            return;
        }
        v->streams = s;
        v->n_streams++;
    }
    struct stream *s = &v->streams[slot];
    memset(s, 0, sizeof(*s));
    memcpy(s->id, id, id_len);
    s->id_len = id_len;
    s->until = req->until_seq;
    if (req->n_tags) {
        s->tags = calloc(req->n_tags, sizeof(char *));
        for (size_t i = 0; s->tags && i < req->n_tags; i++)
            s->tags[s->n_tags++] = strdup(req->tags[i]);
    }
    s->reader = na_journal_reader_open(v->journal, req->since_seq, &err);
    newsalert__v1__catchup_request__free_unpacked(req, NULL);
    if (s->reader == NULL) {
        send_error_to(d, id, id_len, "the journal cannot be read");
        stream_remove(v, slot);
        return;
    }
    if (na_journal_reader_gone(s->reader)) {
        Newsalert__V1__CatchupReply rep = NEWSALERT__V1__CATCHUP_REPLY__INIT;
        rep.kind = NEWSALERT__V1__CATCHUP_REPLY__KIND__KIND_GONE;
        rep.oldest_seq = na_journal_reader_oldest(s->reader);
        send_packed_reply(d, s, &rep);
        stream_remove(v, slot);
        return;
    }
    stream_kick(d);
}

static void on_router(evutil_socket_t fd, short what, void *arg)
{
    struct na_daemon *d = arg;
    struct na_delivery *v = d->delivery;
    (void)fd;
    (void)what;

    /* Edge-triggered like the feed: drain a bounded number, then re-check. */
    for (int k = 0; k < 64; k++) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, v->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&id);
            return;
        }
        size_t parts = 0;
        zmq_msg_init(&body);
        int more = zmq_msg_more(&id);
        while (more) {
            zmq_msg_close(&body);
            zmq_msg_init(&body);
            if (zmq_msg_recv(&body, v->router, 0) < 0)
                break;
            parts++;
            more = zmq_msg_more(&body);
        }
        if (zmq_msg_size(&id) > sizeof(v->streams[0].id))
            ; /* identities are 5 bytes from libzmq; a longer one is ignored */
        else if (parts != 1)
            send_error_to(d, zmq_msg_data(&id), zmq_msg_size(&id),
                          "expected one frame: a CatchupRequest");
        else
            on_request(d, zmq_msg_data(&id), zmq_msg_size(&id), zmq_msg_data(&body),
                       zmq_msg_size(&body));
        zmq_msg_close(&id);
        zmq_msg_close(&body);
    }
    if (na_zsock_readable(v->router))
        event_active(v->router_ev, EV_READ, 0);
}

int na_catchup_open(struct na_daemon *d, struct na_error *err)
{
    struct na_delivery *v = d->delivery;
    const char *ep = d->cfg->catchup_endpoint;
    int one = 1, linger = 0, fd;
    size_t fdlen = sizeof(fd);

    if (ep == NULL || *ep == '\0' || !strcmp(ep, "off"))
        return 0;
    v->router = zmq_socket(d->zctx, ZMQ_ROUTER);
    if (v->router == NULL)
        return na_error_set(err, "catch-up: cannot create socket: %s",
                            zmq_strerror(errno));
    if (zmq_setsockopt(v->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) < 0 ||
        zmq_setsockopt(v->router, ZMQ_LINGER, &linger, sizeof(linger)) < 0)
        return na_error_set(err, "catch-up: socket options: %s", zmq_strerror(errno));
    na_zmtp_heartbeats(v->router);
    /* The same keys and allowlist as the alerts, and a monitor to count the
     * handshakes refused before ZAP is asked (plain or wrong-key clients). */
    if (d->curve.publish_on &&
        (na_curve_server_setup(d, v->router, err) < 0 ||
         (v->monitor = na_monitor_new(d, v->router, "catch-up", err)) == NULL))
        return -1;
    if (zmq_bind(v->router, ep) < 0)
        return na_error_set(err, "catch-up: cannot bind %s: %s", ep, zmq_strerror(errno));
    if (zmq_getsockopt(v->router, ZMQ_FD, &fd, &fdlen) < 0)
        return na_error_set(err, "catch-up: ZMQ_FD: %s", zmq_strerror(errno));
    v->router_ev = event_new(d->base, fd, EV_READ | EV_PERSIST, on_router, d);
    v->stream_ev = event_new(d->base, -1, 0, on_streams, d);
    if (v->router_ev == NULL || v->stream_ev == NULL || event_add(v->router_ev, NULL) < 0)
        return na_error_set(err, "catch-up: cannot watch the socket");
    event_active(v->router_ev, EV_READ, 0);
    size_t blen = sizeof(d->bound_catchup);
    if (zmq_getsockopt(v->router, ZMQ_LAST_ENDPOINT, d->bound_catchup, &blen) < 0)
        snprintf(d->bound_catchup, sizeof(d->bound_catchup), "%s", ep);
    na_info("catch-up: requests on %s%s", d->bound_catchup,
            d->curve.publish_on ? " (CURVE)" : "");
    return 0;
}

void na_delivery_close(struct na_daemon *d)
{
    struct na_delivery *v = d->delivery;
    struct na_error err;

    if (v == NULL)
        return;
    while (v->n_streams)
        stream_remove(v, 0);
    free(v->streams);
    if (v->router_ev)
        event_free(v->router_ev);
    if (v->stream_ev)
        event_free(v->stream_ev);
    na_monitor_free(v->monitor);
    if (v->router)
        zmq_close(v->router);
    if (v->sync_timer)
        event_free(v->sync_timer);
    if (v->retain_timer)
        event_free(v->retain_timer);
    if (v->retry_timer)
        event_free(v->retry_timer);
    if (v->journal && na_journal_close(v->journal, &err) < 0)
        na_err("journal: %s", err.msg);
    if (v->quarantine && na_quarantine_close(v->quarantine, &err) < 0)
        na_warn("quarantine: %s", err.msg);
    na_dedup_free(v->dedup);
    free(v->out);
    free(v->q);
    free(v->jbuf);
    free(v->stash);
    free(v->st);
    free(v);
    d->delivery = NULL;
}
