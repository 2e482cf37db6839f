/* The alert consumer of client.h: live SUB plus catch-up DEALER, merged into
 * one stream in seq order without repeats.
 *
 * Invariants: `last_seq` is the highest seq handed out; everything handed
 * out is in increasing seq order. While a catch-up is in flight, live alerts
 * wait in `pending` (sorted by seq); replies are handed out as they come,
 * after any pending alert with a lower seq that the journal did not have. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "newsalert/client.h"
#include "newsalert/v1/catchup.pb-c.h"

/* The daemon's heartbeat topic (alert.proto's Heartbeat). */
#define HEARTBEAT_TOPIC "~hb"

#define MAX_TOPICS 64

struct topic_mark {
    char name[64];
    uint64_t seq;
};

struct queue {
    Newsalert__V1__Alert **v;
    size_t head, n, cap;
};

struct na_client {
    void *ctx, *sub, *dealer;
    bool own_ctx;
    struct na_client_opts o;
    char *tags[NA_CLIENT_MAX_TAGS];
    uint64_t epoch, last_seq;
    struct topic_mark topics[MAX_TOPICS];
    size_t n_topics;
    /* The catch-up in flight. */
    bool catching_up;
    uint64_t req_since, req_until;
    /* The highest seq below which a live alert held back during the
     * catch-up showed a gap: what the next request must cover. */
    uint64_t regap_until;
    int64_t deadline_ms;
    struct queue pending; /* live alerts held back, sorted by seq */
    struct queue ready;   /* in order, to hand out */
    Newsalert__V1__Alert *current;
    struct na_client_stats stats;
    char warning[256];
    bool has_warning;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- queues ---- */

static int queue_push(struct queue *q, Newsalert__V1__Alert *a)
{
    if (q->head + q->n == q->cap) {
        if (q->head > 0) {
            memmove(q->v, q->v + q->head, q->n * sizeof(*q->v));
            q->head = 0;
        }
        if (q->n == q->cap) {
            size_t cap = q->cap ? q->cap * 2 : 64;
            Newsalert__V1__Alert **v = realloc(q->v, cap * sizeof(*v));
            if (v == NULL)
                return -1;
            q->v = v;
            q->cap = cap;
        }
    }
    q->v[q->head + q->n++] = a;
    return 0;
}

static Newsalert__V1__Alert *queue_peek(const struct queue *q)
{
    return q->n ? q->v[q->head] : NULL;
}

static Newsalert__V1__Alert *queue_pop(struct queue *q)
{
    if (q->n == 0)
        return NULL;
    q->n--;
    return q->v[q->head++];
}

/* Sorted insert; live alerts arrive in order, so this is an append. A seq
 * already held is a copy from another topic: dropped (returns 1). */
static int queue_insert_sorted(struct queue *q, Newsalert__V1__Alert *a)
{
    size_t i = q->n;
    while (i > 0 && q->v[q->head + i - 1]->seq > a->seq)
        i--;
    if (i > 0 && q->v[q->head + i - 1]->seq == a->seq)
        return 1;
    if (queue_push(q, a) < 0)
        return -1;
    Newsalert__V1__Alert **base = q->v + q->head;
    memmove(base + i + 1, base + i, (q->n - 1 - i) * sizeof(*base));
    base[i] = a;
    return 0;
}

static void queue_free(struct queue *q)
{
    while (q->n)
        newsalert__v1__alert__free_unpacked(queue_pop(q), NULL);
    free(q->v);
    memset(q, 0, sizeof(*q));
}

/* ---- ordering ---- */

static bool follows(const struct na_client *c, const char *topic)
{
    if (c->o.n_tags == 0)
        return strncmp(topic, "alert.", 6) == 0;
    for (size_t i = 0; i < c->o.n_tags; i++)
        if (!strncmp(topic, "alert.", 6) && !strcmp(topic + 6, c->tags[i]))
            return true;
    return false;
}

static struct topic_mark *mark_of(struct na_client *c, const char *topic)
{
    for (size_t i = 0; i < c->n_topics; i++)
        if (!strcmp(c->topics[i].name, topic))
            return &c->topics[i];
    if (c->n_topics == MAX_TOPICS || strlen(topic) >= sizeof(c->topics[0].name))
        return NULL;
    struct topic_mark *m = &c->topics[c->n_topics++];
    snprintf(m->name, sizeof(m->name), "%s", topic);
    m->seq = 0;
    return m;
}

/* Records where each followed topic stands after a; returns true when one of
 * them skipped numbers (a gap before a). */
static bool note_topics(struct na_client *c, const Newsalert__V1__Alert *a)
{
    bool gap = false;
    for (size_t i = 0; i < a->n_topics; i++) {
        const char *t = a->topics[i]->topic;
        if (t == NULL || !follows(c, t))
            continue;
        struct topic_mark *m = mark_of(c, t);
        if (m == NULL)
            continue;
        if (m->seq && a->topics[i]->seq > m->seq + 1)
            gap = true;
        if (a->topics[i]->seq > m->seq)
            m->seq = a->topics[i]->seq;
    }
    return gap;
}

static void warn(struct na_client *c, const char *fmt, unsigned long long a,
                 unsigned long long b)
{
    snprintf(c->warning, sizeof(c->warning), fmt, a, b);
    c->has_warning = true;
}

/* Hands a out (in order) or drops it as a repeat. Takes ownership. */
static void deliver(struct na_client *c, Newsalert__V1__Alert *a)
{
    if (a->seq <= c->last_seq) {
        c->stats.duplicates++;
        newsalert__v1__alert__free_unpacked(a, NULL);
        return;
    }
    if (queue_push(&c->ready, a) < 0) {
        newsalert__v1__alert__free_unpacked(a, NULL);
        return;
    }
    c->last_seq = a->seq;
}

/* Everything held back with a seq below `below` (0: all) goes out. */
static void release_pending(struct na_client *c, uint64_t below)
{
    Newsalert__V1__Alert *p;
    while ((p = queue_peek(&c->pending)) != NULL && (below == 0 || p->seq < below)) {
        queue_pop(&c->pending);
        c->stats.live++;
        deliver(c, p);
    }
}

static void restart(struct na_client *c, uint64_t epoch)
{
    if (c->epoch != 0) {
        c->stats.restarts++;
        warn(c, "the daemon's numbering started over (epoch %llu, was %llu)",
             (unsigned long long)epoch, (unsigned long long)c->epoch);
        c->last_seq = 0;
        c->n_topics = 0;
        c->regap_until = 0;
        queue_free(&c->pending);
    }
    c->epoch = epoch;
}

/* ---- catch-up ---- */

static int request(struct na_client *c, uint64_t since, uint64_t until)
{
    Newsalert__V1__CatchupRequest r = NEWSALERT__V1__CATCHUP_REQUEST__INIT;
    uint8_t buf[4096];
    r.since_seq = since;
    r.until_seq = until;
    r.tags = c->tags;
    r.n_tags = c->o.n_tags;
    size_t n = newsalert__v1__catchup_request__get_packed_size(&r);
    if (n > sizeof(buf))
        return -1;
    newsalert__v1__catchup_request__pack(&r, buf);
    if (zmq_send(c->dealer, buf, n, ZMQ_DONTWAIT) < 0)
        return -1;
    c->catching_up = true;
    c->req_since = since;
    c->req_until = until;
    c->deadline_ms =
        now_ms() + (c->o.catchup_timeout_ms ? c->o.catchup_timeout_ms : 5000);
    c->stats.requests++;
    return 0;
}

static void catchup_done(struct na_client *c)
{
    c->catching_up = false;
    c->regap_until = 0;
    release_pending(c, 0);
}

/* A catch-up has ended with everything up to `covered` delivered. Live
 * alerts that came meanwhile are held back in pending, and may have gaps
 * of their own (the PUB socket goes on dropping while we catch up): those
 * are asked for next, and only then is pending released. */
static void catchup_end(struct na_client *c, uint64_t covered)
{
    uint64_t want = c->regap_until;
    if (want > covered) {
        release_pending(c, covered + 1);
        c->regap_until = 0;
        if (request(c, covered, want) == 0)
            return;
    }
    catchup_done(c);
}

static int on_reply(struct na_client *c, const uint8_t *data, size_t len,
                    struct na_error *err)
{
    Newsalert__V1__CatchupReply *r =
        newsalert__v1__catchup_reply__unpack(NULL, len, data);
    int rc = 0;

    if (r == NULL) {
        c->stats.invalid++;
        return 0;
    }
    if (!c->catching_up) { /* a late answer to an abandoned request */
        newsalert__v1__catchup_reply__free_unpacked(r, NULL);
        return 0;
    }
    c->deadline_ms =
        now_ms() + (c->o.catchup_timeout_ms ? c->o.catchup_timeout_ms : 5000);
    if (r->epoch && r->epoch != c->epoch)
        restart(c, r->epoch);
    switch (r->kind) {
    case NEWSALERT__V1__CATCHUP_REPLY__KIND__KIND_ALERT:
        if (r->alert) {
            Newsalert__V1__Alert *a = r->alert;
            r->alert = NULL; /* protobuf-c allocates it on its own: ours now */
            note_topics(c, a);
            release_pending(c, a->seq);
            c->stats.caught_up += a->seq > c->last_seq;
            deliver(c, a);
        }
        break;
    case NEWSALERT__V1__CATCHUP_REPLY__KIND__KIND_GONE: {
        uint64_t since = c->req_since, oldest = r->oldest_seq;
        c->stats.gone += oldest > since + 1 ? oldest - since - 1 : 0;
        warn(c, "alerts %llu to %llu are no longer in the daemon's journal",
             (unsigned long long)since + 1,
             (unsigned long long)(oldest ? oldest - 1 : 0));
        if (oldest > since + 1 && request(c, oldest - 1, c->req_until) == 0)
            break;
        catchup_end(c, since);
        break;
    }
    case NEWSALERT__V1__CATCHUP_REPLY__KIND__KIND_ERROR:
        na_error_set(err, "catch-up refused: %s", r->error ? r->error : "?");
        catchup_done(c);
        rc = -1;
        break;
    default: /* END */
        catchup_end(c, c->req_until ? c->req_until : r->last_seq);
        break;
    }
    newsalert__v1__catchup_reply__free_unpacked(r, NULL);
    return rc;
}

/* ---- live ---- */

static void on_live(struct na_client *c, const uint8_t *data, size_t len)
{
    Newsalert__V1__Alert *a = newsalert__v1__alert__unpack(NULL, len, data);
    if (a == NULL || a->seq == 0) {
        c->stats.invalid++;
        if (a)
            newsalert__v1__alert__free_unpacked(a, NULL);
        return;
    }
    /* A prefix subscription to "alert.aid" also takes "alert.aidx". */
    if (a->topic && !follows(c, a->topic)) {
        newsalert__v1__alert__free_unpacked(a, NULL);
        return;
    }
    if (a->epoch != c->epoch)
        restart(c, a->epoch);
    if (a->seq <= c->last_seq) {
        c->stats.duplicates++;
        newsalert__v1__alert__free_unpacked(a, NULL);
        return;
    }
    bool gap = note_topics(c, a);
    if (gap)
        c->stats.gaps++;
    if (gap && c->dealer && !c->catching_up)
        request(c, c->last_seq, a->seq - 1);
    else if (gap && c->dealer && a->seq - 1 > c->regap_until)
        c->regap_until = a->seq - 1; /* asked for when this catch-up ends */
    if (c->catching_up) {
        if (queue_insert_sorted(&c->pending, a) != 0) {
            c->stats.duplicates++;
            newsalert__v1__alert__free_unpacked(a, NULL);
        }
        return;
    }
    c->stats.live++;
    deliver(c, a);
}

/* The heartbeat says where each topic's numbering stands: a followed
 * topic ahead of what we received is a gap at the end of a burst, which
 * no later alert would reveal. Everything up to its last_seq is asked for;
 * the marks move up at once, so that one loss makes one request. A client
 * that has received nothing yet takes the marks as its starting point. */
static void on_heartbeat(struct na_client *c, const uint8_t *data, size_t len)
{
    Newsalert__V1__Heartbeat *hb = newsalert__v1__heartbeat__unpack(NULL, len, data);
    if (hb == NULL) {
        c->stats.invalid++;
        return;
    }
    c->stats.heartbeats++;
    if (hb->epoch && hb->epoch != c->epoch)
        restart(c, hb->epoch);
    bool gap = false;
    for (size_t i = 0; i < hb->n_topics; i++) {
        const char *t = hb->topics[i]->topic;
        if (t == NULL || !follows(c, t))
            continue;
        struct topic_mark *m = mark_of(c, t);
        if (m == NULL)
            continue;
        if (m->seq && hb->topics[i]->seq > m->seq)
            gap = true;
        if (hb->topics[i]->seq > m->seq)
            m->seq = hb->topics[i]->seq;
    }
    if (gap) {
        c->stats.gaps++;
        if (c->dealer && !c->catching_up)
            request(c, c->last_seq, hb->last_seq);
        else if (c->dealer && hb->last_seq > c->regap_until)
            c->regap_until = hb->last_seq;
    }
    newsalert__v1__heartbeat__free_unpacked(hb, NULL);
}

/* ---- the API ---- */

static int set_curve(void *s, const struct na_client_opts *o)
{
    if (o->curve_server_key == NULL)
        return 0;
    if (o->curve_public_key == NULL || o->curve_secret_key == NULL)
        return -1;
    return zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, o->curve_server_key, 41) < 0 ||
                   zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, o->curve_public_key, 41) < 0 ||
                   zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, o->curve_secret_key, 41) < 0
               ? -1
               : 0;
}

struct na_client *na_client_new(const struct na_client_opts *opts, struct na_error *err)
{
    struct na_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    c->o = *opts;
    if (opts->alerts == NULL || opts->n_tags > NA_CLIENT_MAX_TAGS ||
        (opts->history && opts->catchup == NULL)) {
        na_error_set(err, opts->alerts == NULL ? "no alert endpoint"
                          : opts->history      ? "history needs a catch-up endpoint"
                                               : "too many tags");
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < opts->n_tags; i++) {
        c->tags[i] = strdup(opts->tags[i]);
        c->o.tags[i] = c->tags[i];
    }
    c->ctx = opts->zmq_context;
    if (c->ctx == NULL) {
        c->ctx = zmq_ctx_new();
        c->own_ctx = true;
    }
    c->sub = zmq_socket(c->ctx, ZMQ_SUB);
    int hwm = opts->rcvhwm > 0 ? opts->rcvhwm : 1000, linger = 0;
    zmq_setsockopt(c->sub, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(c->sub, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(c->sub, ZMQ_SUBSCRIBE, HEARTBEAT_TOPIC, strlen(HEARTBEAT_TOPIC));
    /* A dead daemon is noticed (and reconnected to) within seconds. */
    int ivl = 2000, timeout = 10000;
    zmq_setsockopt(c->sub, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl));
    zmq_setsockopt(c->sub, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof(timeout));
    zmq_setsockopt(c->sub, ZMQ_HEARTBEAT_TTL, &timeout, sizeof(timeout));
    if (opts->n_tags == 0)
        zmq_setsockopt(c->sub, ZMQ_SUBSCRIBE, "alert.", 6);
    for (size_t i = 0; i < opts->n_tags; i++) {
        char topic[80];
        int n = snprintf(topic, sizeof(topic), "alert.%s", opts->tags[i]);
        zmq_setsockopt(c->sub, ZMQ_SUBSCRIBE, topic, (size_t)n);
    }
    if (set_curve(c->sub, opts) < 0 || zmq_connect(c->sub, opts->alerts) < 0) {
        na_error_set(err, "cannot connect to %s: %s", opts->alerts, zmq_strerror(errno));
        na_client_free(c);
        return NULL;
    }
    if (opts->catchup) {
        c->dealer = zmq_socket(c->ctx, ZMQ_DEALER);
        int rhwm = 0;
        zmq_setsockopt(c->dealer, ZMQ_RCVHWM, &rhwm, sizeof(rhwm));
        zmq_setsockopt(c->dealer, ZMQ_LINGER, &linger, sizeof(linger));
        if (set_curve(c->dealer, opts) < 0 || zmq_connect(c->dealer, opts->catchup) < 0) {
            na_error_set(err, "cannot connect to %s: %s", opts->catchup,
                         zmq_strerror(errno));
            na_client_free(c);
            return NULL;
        }
    }
    if (opts->history && request(c, opts->since_seq, 0) < 0) {
        na_error_set(err, "cannot send the catch-up request");
        na_client_free(c);
        return NULL;
    }
    return c;
}

static int receive_one(void *s, zmq_msg_t *body, bool *heartbeat)
{
    /* Alerts are [topic, Alert], heartbeats ["~hb", Heartbeat]; catch-up
     * replies are one frame. The last frame is kept. */
    bool first = true;
    *heartbeat = false;
    zmq_msg_init(body);
    for (;;) {
        if (zmq_msg_recv(body, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(body);
            return -1;
        }
        if (!zmq_msg_more(body))
            return 0;
        if (first)
            *heartbeat = zmq_msg_size(body) == strlen(HEARTBEAT_TOPIC) &&
                         !memcmp(zmq_msg_data(body), HEARTBEAT_TOPIC, strlen(HEARTBEAT_TOPIC));
        first = false;
        zmq_msg_close(body);
        zmq_msg_init(body);
    }
}

int na_client_next(struct na_client *c, int timeout_ms, Newsalert__V1__Alert **alert,
                   struct na_error *err)
{
    int64_t until = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
    if (c->current) {
        newsalert__v1__alert__free_unpacked(c->current, NULL);
        c->current = NULL;
    }
    bool polled = false;
    for (;;) {
        if ((c->current = queue_pop(&c->ready)) != NULL) {
            c->stats.delivered++;
            *alert = c->current;
            return 1;
        }
        int64_t now = now_ms();
        if (c->catching_up && now >= c->deadline_ms) {
            warn(c,
                 "the catch-up endpoint did not answer; %llu held-back alerts released "
                 "(request since %llu)",
                 (unsigned long long)c->pending.n, (unsigned long long)c->req_since);
            catchup_done(c);
            continue;
        }
        if (now >= until && polled)
            return 0;
        int64_t wait = until > now ? until - now : 0;
        if (c->catching_up && c->deadline_ms - now < wait)
            wait = c->deadline_ms - now;
        zmq_pollitem_t items[2] = {{c->sub, 0, ZMQ_POLLIN, 0},
                                   {c->dealer, 0, ZMQ_POLLIN, 0}};
        int n = zmq_poll(items, c->dealer ? 2 : 1, wait > 1000 ? 1000 : (long)wait);
        if (n < 0 && errno == EINTR)
            return 0;
        zmq_msg_t m;
        bool hb;
        /* Replies first: they fill the gap the held-back live alerts wait on. */
        for (int k = 0; c->dealer && k < 256 && receive_one(c->dealer, &m, &hb) == 0; k++) {
            int rc = on_reply(c, zmq_msg_data(&m), zmq_msg_size(&m), err);
            zmq_msg_close(&m);
            if (rc < 0)
                return -1;
        }
        for (int k = 0; k < 256 && receive_one(c->sub, &m, &hb) == 0; k++) {
            if (hb)
                on_heartbeat(c, zmq_msg_data(&m), zmq_msg_size(&m));
            else
                on_live(c, zmq_msg_data(&m), zmq_msg_size(&m));
            zmq_msg_close(&m);
        }
        polled = true;
    }
}

size_t na_client_sockets(const struct na_client *c, void *sockets[2])
{
    sockets[0] = c->sub;
    sockets[1] = c->dealer;
    return c->dealer ? 2 : 1;
}

int na_client_timer_ms(const struct na_client *c)
{
    if (!c->catching_up)
        return -1;
    int64_t left = c->deadline_ms - now_ms();
    return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

bool na_client_busy(const struct na_client *c)
{
    return c->catching_up || c->pending.n || c->ready.n;
}

const struct na_client_stats *na_client_stats(const struct na_client *c)
{
    return &c->stats;
}

const char *na_client_warning(struct na_client *c)
{
    if (!c->has_warning)
        return NULL;
    c->has_warning = false;
    return c->warning;
}

void na_client_free(struct na_client *c)
{
    if (c == NULL)
        return;
    if (c->current)
        newsalert__v1__alert__free_unpacked(c->current, NULL);
    queue_free(&c->pending);
    queue_free(&c->ready);
    for (size_t i = 0; i < c->o.n_tags; i++)
        free(c->tags[i]);
    if (c->sub)
        zmq_close(c->sub);
    if (c->dealer)
        zmq_close(c->dealer);
    if (c->own_ctx)
        zmq_ctx_term(c->ctx);
    free(c);
}
