/* The alert consumer of client.h: the live SUB and the catch-up DEALER
 * merged into one stream, in seq order, each alert once. The algorithm and
 * its names are those of the Python client (clients/python/newsalert).
 *
 * The frontier L: every followed alert with seq <= L has been handed out.
 * The lowest held alert, with seq s, goes out when nothing followed can lie
 * between L and s: s == L + 1; or, for each followed topic T, T's number at
 * L is known (tq) and either the alert is on T with topic_seq tq + 1, or it
 * is not on T and T's next alert (tq + 1) is held with a higher seq, or a
 * heartbeat with last_seq >= s said T stood at tq. A gap (a topic_seq, or
 * with every tag followed a seq, that skips numbers; a heartbeat ahead of
 * what came) is asked for as (L, X]; the END of that stream moves L to X.
 * An alert that waits longer than `hold` for its proof is asked for too. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "newsalert/client.h"
#include "newsalert/v1/catchup.pb-c.h"

/* The daemon's heartbeat topic (alert.proto's Heartbeat). */
#define HEARTBEAT_TOPIC "~hb"
#define CATCHUP_TRIES 3
#define BUSY_RETRY_MS 500
#define DRAIN_BATCH 256

/* ---- a map from a pair of integers, and a heap of seqs ---- */

/* Open addressing with linear probing and backward-shift deletion: the held
 * alerts by seq (p: the alert, v: whether it came live), and the seq of each
 * held alert by (followed topic, topic_seq). */
struct slot {
    uint64_t a, b, v;
    void *p;
    bool used;
};

struct map {
    struct slot *s;
    size_t cap, n;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static size_t map_home(const struct map *m, uint64_t a, uint64_t b)
{
    return (size_t)mix(a ^ mix(b + 1)) & (m->cap - 1);
}

static size_t map_find(const struct map *m, uint64_t a, uint64_t b)
{
    size_t i = map_home(m, a, b);
    while (m->s[i].used && (m->s[i].a != a || m->s[i].b != b))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static struct slot *map_get(const struct map *m, uint64_t a, uint64_t b)
{
    if (m->n == 0)
        return NULL;
    size_t i = map_find(m, a, b);
    return m->s[i].used ? &m->s[i] : NULL;
}

static int map_put(struct map *m, uint64_t a, uint64_t b, uint64_t v, void *p)
{
    if ((m->n + 1) * 2 > m->cap) {
        struct map g = {calloc(m->cap ? m->cap * 2 : 64, sizeof(struct slot)),
                        m->cap ? m->cap * 2 : 64, m->n};
        if (g.s == NULL)
            return -1;
        for (size_t i = 0; i < m->cap; i++)
            if (m->s[i].used)
                g.s[map_find(&g, m->s[i].a, m->s[i].b)] = m->s[i];
        free(m->s);
        *m = g;
    }
    struct slot *s = &m->s[map_find(m, a, b)];
    if (!s->used)
        m->n++;
    *s = (struct slot){a, b, v, p, true};
    return 0;
}

static void map_del(struct map *m, uint64_t a, uint64_t b)
{
    if (m->n == 0)
        return;
    size_t i = map_find(m, a, b), mask = m->cap - 1;
    if (!m->s[i].used)
        return;
    m->s[i].used = false;
    m->n--;
    for (size_t j = (i + 1) & mask; m->s[j].used; j = (j + 1) & mask) {
        size_t k = map_home(m, m->s[j].a, m->s[j].b);
        /* s[j] stays unless the hole at i lies between its home and j. */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            m->s[i] = m->s[j];
            m->s[j].used = false;
            i = j;
        }
    }
}

static void map_clear(struct map *m)
{
    if (m->cap)
        memset(m->s, 0, m->cap * sizeof(*m->s));
    m->n = 0;
}

struct heap {
    uint64_t *v;
    size_t n, cap;
};

static int heap_push(struct heap *h, uint64_t x)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        uint64_t *v = realloc(h->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    for (; i > 0 && h->v[(i - 1) / 2] > x; i = (i - 1) / 2)
        h->v[i] = h->v[(i - 1) / 2];
    h->v[i] = x;
    return 0;
}

static void heap_pop(struct heap *h)
{
    uint64_t x = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= h->n)
            break;
        if (k + 1 < h->n && h->v[k + 1] < h->v[k])
            k++;
        if (h->v[k] >= x)
            break;
        h->v[i] = h->v[k];
        i = k;
    }
    if (h->n)
        h->v[i] = x;
}

/* ---- the ready queue ---- */

struct queue {
    Newsalert__V1__Alert **v;
    size_t head, n, cap;
};

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

static Newsalert__V1__Alert *queue_pop(struct queue *q)
{
    if (q->n == 0)
        return NULL;
    q->n--;
    return q->v[q->head++];
}

/* ---- the client ---- */

struct topic {
    char *name; /* "alert.<tag>" */
    bool tq_known, mark_known;
    uint64_t tq;   /* its topic_seq at L */
    uint64_t mark; /* the highest topic_seq seen */
    uint64_t hb;   /* its topic_seq in the last heartbeat */
};

struct na_client {
    void *ctx, *sub, *dealer;
    bool own_ctx;
    char *catchup;
    bool curve;
    char server_key[41], public_key[41], secret_key[41];
    int catchup_timeout_ms, hold_ms;
    char *tags[NA_CLIENT_MAX_TAGS];
    struct topic t[NA_CLIENT_MAX_TAGS];
    size_t n_tags;

    uint64_t epoch, prev_epoch;
    bool started;      /* the frontier is defined */
    uint64_t L;        /* every followed alert <= L handed out */
    uint64_t max_seen; /* the highest seq seen (every tag followed) */
    struct map held;   /* seq -> alert */
    struct map held_t; /* (topic, topic_seq) -> seq of held alerts */
    struct heap heap;  /* the seqs in held */
    bool has_hb;
    uint64_t hb_last;
    int64_t hb_interval_ms;
    bool want_open; /* the history request: everything after since */
    uint64_t want;  /* catch-up must cover up to here (0: nothing) */
    bool blocked;   /* the lowest held alert waits, since when */
    int64_t blocked_since;
    uint64_t blocked_seq;
    bool inflight; /* the catch-up request in flight */
    uint64_t req_since, req_until;
    int64_t deadline_ms;
    int tries;
    bool retry; /* a request refused as busy, to send again */
    int64_t retry_at_ms;
    uint64_t retry_until;

    struct queue ready;
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

__attribute__((format(printf, 2, 3))) static void warn(struct na_client *c,
                                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->warning, sizeof(c->warning), fmt, ap);
    va_end(ap);
    c->has_warning = true;
}

static int64_t hold_ms(const struct na_client *c)
{
    if (c->hold_ms > 0)
        return c->hold_ms;
    return (c->hb_interval_ms ? c->hb_interval_ms : 1000) * 3 / 2;
}

static int64_t timeout_ms(const struct na_client *c)
{
    return c->catchup_timeout_ms > 0 ? c->catchup_timeout_ms : 5000;
}

static bool follows(const struct na_client *c, const char *topic, size_t len)
{
    if (c->n_tags == 0)
        return len >= 6 && memcmp(topic, "alert.", 6) == 0;
    for (size_t i = 0; i < c->n_tags; i++)
        if (strlen(c->t[i].name) == len && memcmp(c->t[i].name, topic, len) == 0)
            return true;
    return false;
}

/* The followed topic named so, or -1. */
static int topic_index(const struct na_client *c, const char *name)
{
    for (size_t i = 0; name && i < c->n_tags; i++)
        if (strcmp(c->t[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* The followed topics a is on (on[i]) and its topic_seq there (k[i]). */
static void ours(const struct na_client *c, const Newsalert__V1__Alert *a, bool *on,
                 uint64_t *k)
{
    memset(on, 0, c->n_tags * sizeof(*on));
    for (size_t j = 0; j < a->n_topics; j++) {
        int i = topic_index(c, a->topics[j]->topic);
        if (i >= 0) {
            on[i] = true;
            k[i] = a->topics[j]->seq;
        }
    }
}

/* The frontier at seq, every followed topic at tseq (or unknown). */
static void start_at(struct na_client *c, uint64_t seq, bool known, uint64_t tseq)
{
    c->started = true;
    c->L = c->max_seen = seq;
    for (size_t i = 0; i < c->n_tags; i++) {
        c->t[i].tq_known = c->t[i].mark_known = known;
        c->t[i].tq = c->t[i].mark = known ? tseq : 0;
    }
}

static void set_mark(struct topic *t, uint64_t k)
{
    if (!t->mark_known || k > t->mark)
        t->mark = k;
    t->mark_known = true;
}

/* ---- held alerts ---- */

/* Takes ownership of a; false when it was a copy (dropped). */
static bool hold_alert(struct na_client *c, Newsalert__V1__Alert *a, bool live)
{
    bool on[NA_CLIENT_MAX_TAGS];
    uint64_t k[NA_CLIENT_MAX_TAGS];
    if (a->seq <= c->L || map_get(&c->held, a->seq, 0)) {
        c->stats.duplicates++;
        newsalert__v1__alert__free_unpacked(a, NULL);
        return false;
    }
    if (map_put(&c->held, a->seq, 0, live, a) < 0) {
        warn(c, "out of memory: alert %llu dropped", (unsigned long long)a->seq);
        newsalert__v1__alert__free_unpacked(a, NULL);
        return false;
    }
    if (heap_push(&c->heap, a->seq) < 0) {
        map_del(&c->held, a->seq, 0);
        warn(c, "out of memory: alert %llu dropped", (unsigned long long)a->seq);
        newsalert__v1__alert__free_unpacked(a, NULL);
        return false;
    }
    ours(c, a, on, k);
    for (size_t i = 0; i < c->n_tags; i++)
        if (on[i])
            map_put(&c->held_t, i, k[i], a->seq, NULL); /* a hint: may fail */
    return true;
}

static Newsalert__V1__Alert *lowest(const struct na_client *c)
{
    return c->heap.n ? map_get(&c->held, c->heap.v[0], 0)->p : NULL;
}

/* The lowest held alert goes out. */
static void hand_out(struct na_client *c)
{
    bool on[NA_CLIENT_MAX_TAGS];
    uint64_t k[NA_CLIENT_MAX_TAGS];
    uint64_t s = c->heap.v[0];
    struct slot *h = map_get(&c->held, s, 0);
    Newsalert__V1__Alert *a = h->p;
    bool live = h->v;
    map_del(&c->held, s, 0);
    heap_pop(&c->heap);
    ours(c, a, on, k);
    for (size_t i = 0; i < c->n_tags; i++) {
        if (!on[i])
            continue;
        c->t[i].tq = k[i];
        c->t[i].tq_known = true;
        set_mark(&c->t[i], k[i]);
        struct slot *ht = map_get(&c->held_t, i, k[i]);
        if (ht && ht->v == s)
            map_del(&c->held_t, i, k[i]);
    }
    c->L = s;
    if (s > c->max_seen)
        c->max_seen = s;
    if (live)
        c->stats.live++;
    else
        c->stats.caught_up++;
    if (queue_push(&c->ready, a) < 0) {
        warn(c, "out of memory: alert %llu dropped", (unsigned long long)s);
        newsalert__v1__alert__free_unpacked(a, NULL);
    }
}

/* Hands out every held alert with seq <= upto (all: every one), in order. */
static void flush_held(struct na_client *c, bool all, uint64_t upto)
{
    while (c->heap.n && (all || c->heap.v[0] <= upto))
        hand_out(c);
    if (c->heap.n == 0)
        map_clear(&c->held_t);
}

static bool deliverable(const struct na_client *c, const Newsalert__V1__Alert *a)
{
    bool on[NA_CLIENT_MAX_TAGS];
    uint64_t k[NA_CLIENT_MAX_TAGS];
    uint64_t s = a->seq;
    if (s == c->L + 1)
        return true;
    if (c->n_tags == 0)
        return false; /* every tag followed: every seq is ours */
    ours(c, a, on, k);
    for (size_t i = 0; i < c->n_tags; i++) {
        const struct topic *t = &c->t[i];
        if (!t->tq_known)
            return false;
        if (on[i]) {
            if (k[i] != t->tq + 1)
                return false;
            continue;
        }
        struct slot *next = map_get(&c->held_t, i, t->tq + 1);
        if (next && next->v > s)
            continue;
        if (c->has_hb && c->hb_last >= s && t->hb == t->tq)
            continue;
        return false;
    }
    return true;
}

/* ---- catch-up requests ---- */

static int set_curve(const struct na_client *c, void *s)
{
    if (!c->curve)
        return 0;
    return zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, c->server_key, 41) < 0 ||
                   zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, c->public_key, 41) < 0 ||
                   zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, c->secret_key, 41) < 0
               ? -1
               : 0;
}

/* A fresh DEALER: replies to an abandoned request, which carry no request
 * id, can then never be taken for the answer to a new one. Without one
 * (it cannot be made), the client goes on live only. */
static int new_dealer(struct na_client *c)
{
    if (c->dealer)
        zmq_close(c->dealer);
    c->dealer = zmq_socket(c->ctx, ZMQ_DEALER);
    if (c->dealer == NULL)
        return -1;
    /* A finite pipe: the daemon's ROUTER (mandatory routing) then waits
     * while it is full instead of pushing a whole history into memory. */
    int rhwm = 1000, linger = 0;
    zmq_setsockopt(c->dealer, ZMQ_RCVHWM, &rhwm, sizeof(rhwm));
    zmq_setsockopt(c->dealer, ZMQ_LINGER, &linger, sizeof(linger));
    if (set_curve(c, c->dealer) < 0 || zmq_connect(c->dealer, c->catchup) < 0) {
        zmq_close(c->dealer);
        c->dealer = NULL;
        return -1;
    }
    return 0;
}

/* Asks for (since, until]. A request that cannot be sent is in flight all
 * the same: its deadline asks again. */
static int request(struct na_client *c, uint64_t since, uint64_t until, int tries)
{
    Newsalert__V1__CatchupRequest r = NEWSALERT__V1__CATCHUP_REQUEST__INIT;
    r.since_seq = since;
    r.until_seq = until;
    r.tags = c->tags;
    r.n_tags = c->n_tags;
    c->inflight = true;
    c->req_since = since;
    c->req_until = until;
    c->tries = tries;
    c->deadline_ms = now_ms() + timeout_ms(c);
    c->stats.requests++;
    size_t n = newsalert__v1__catchup_request__get_packed_size(&r);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        return -1;
    newsalert__v1__catchup_request__pack(&r, buf);
    int rc = c->dealer && zmq_send(c->dealer, buf, n, ZMQ_DONTWAIT) >= 0 ? 0 : -1;
    free(buf);
    return rc;
}

/* Hands out what is provably next; asks for a gap, or for what keeps the
 * lowest held alert waiting longer than hold. */
static void advance(struct na_client *c)
{
    Newsalert__V1__Alert *a;
    while ((a = lowest(c)) != NULL && deliverable(c, a))
        hand_out(c);
    if (c->heap.n == 0) {
        c->blocked = false;
        map_clear(&c->held_t);
    } else if (c->dealer == NULL) {
        /* Live only: nothing can be repaired (the gaps are counted where
         * they are seen); in order is what is left. */
        flush_held(c, true, 0);
        c->blocked = false;
    } else if (!c->blocked || c->blocked_seq != c->heap.v[0]) {
        c->blocked = true;
        c->blocked_since = now_ms();
        c->blocked_seq = c->heap.v[0];
    }
    if (!c->want_open && c->want > 0 && c->want <= c->L)
        c->want = 0;
    if (c->dealer == NULL || c->inflight || c->retry)
        return;
    if (!c->want_open && c->want > c->L)
        request(c, c->L, c->want, 1);
    else if (c->blocked && now_ms() - c->blocked_since >= hold_ms(c))
        request(c, c->L, c->heap.v[0] - 1, 1);
}

static void timers(struct na_client *c, int64_t now)
{
    if (c->retry && now >= c->retry_at_ms) {
        c->retry = false;
        if (c->dealer && (c->retry_until == 0 || c->retry_until > c->L))
            request(c, c->L, c->retry_until, 1);
        advance(c);
    }
    if (c->inflight && now >= c->deadline_ms) {
        uint64_t since = c->req_since, until = c->req_until;
        int tries = c->tries;
        c->stats.timeouts++;
        c->inflight = false;
        if (new_dealer(c) == 0 && tries < CATCHUP_TRIES) {
            request(c, c->L, until, tries + 1);
        } else {
            c->stats.unrepaired++;
            warn(c,
                 "the catch-up endpoint did not answer; %zu held alerts handed out "
                 "(request since %llu)",
                 c->held.n, (unsigned long long)since);
            flush_held(c, true, 0);
            c->want = 0;
            c->want_open = false;
            c->blocked = false;
        }
    }
    if (c->blocked && !c->inflight && now - c->blocked_since >= hold_ms(c))
        advance(c);
}

/* ---- epochs ---- */

static void new_epoch(struct na_client *c, uint64_t epoch)
{
    /* What is held came from the old daemon, whose journal is gone: it
     * goes out in order; a gap before it can no longer be repaired. */
    Newsalert__V1__Alert *a = lowest(c);
    if (a && !deliverable(c, a))
        c->stats.unrepaired++;
    flush_held(c, true, 0);
    c->stats.restarts++;
    warn(c, "the daemon's numbering started over (epoch %llu, was %llu)",
         (unsigned long long)epoch, (unsigned long long)c->epoch);
    c->prev_epoch = c->epoch;
    c->epoch = epoch;
    start_at(c, 0, true, 0); /* followed from its seq 1 */
    c->has_hb = false;
    c->want = 0;
    c->want_open = false;
    c->retry = false;
    c->blocked = false;
    if (c->inflight) {
        c->inflight = false;
        new_dealer(c);
    }
}

/* Whether a message of this epoch is to be used; switches epochs. */
static bool epoch_ok(struct na_client *c, uint64_t epoch)
{
    if (epoch == c->epoch)
        return true;
    if (c->epoch == 0) {
        c->epoch = epoch;
        return true;
    }
    if (epoch == c->prev_epoch) {
        c->stats.stale++; /* still queued from the daemon that went away */
        return false;
    }
    new_epoch(c, epoch);
    return true;
}

/* ---- catch-up replies ---- */

/* Every followed alert with seq <= covered is now in hand. */
static void catchup_end(struct na_client *c, uint64_t covered)
{
    flush_held(c, false, covered);
    if (covered > c->L)
        c->L = covered;
    if (covered > c->max_seen)
        c->max_seen = covered;
    if (c->want_open || c->want <= c->L) {
        c->want = 0;
        c->want_open = false;
    }
    /* A topic with no alert in hand: the last heartbeat within the covered
     * range says where it stands (no alert of it came since). */
    if (c->has_hb && c->hb_last <= c->L)
        for (size_t i = 0; i < c->n_tags; i++)
            if (!c->t[i].tq_known) {
                c->t[i].tq = c->t[i].hb;
                c->t[i].tq_known = true;
                set_mark(&c->t[i], c->t[i].hb);
            }
}

static void catchup_gone(struct na_client *c, uint64_t since, uint64_t until,
                         uint64_t oldest)
{
    c->stats.gone += oldest > since + 1 ? oldest - since - 1 : 0;
    warn(c, "alerts %llu to %llu are no longer in the daemon's journal",
         (unsigned long long)since + 1, (unsigned long long)(oldest ? oldest - 1 : 0));
    if (oldest > 0) {
        flush_held(c, false, oldest - 1);
        if (oldest - 1 > c->L) {
            c->L = oldest - 1;
            /* What each topic stood at went with the lost alerts. */
            for (size_t i = 0; i < c->n_tags; i++)
                c->t[i].tq_known = c->t[i].mark_known = false;
        }
    }
    if (until == 0 || until > c->L)
        request(c, c->L, until, 1);
}

static int on_reply(struct na_client *c, const uint8_t *data, size_t len,
                    struct na_error *err)
{
    Newsalert__V1__CatchupReply *r =
        newsalert__v1__catchup_reply__unpack(NULL, len, data);
    uint64_t since = c->req_since, until = c->req_until;
    int rc = 0;

    if (r == NULL) {
        c->stats.invalid++;
        return 0;
    }
    if (!c->inflight)
        goto done; /* a late answer to an abandoned request */
    c->deadline_ms = now_ms() + timeout_ms(c);
    if (r->epoch && r->epoch != c->epoch) {
        bool restarted = c->epoch != 0;
        if (!epoch_ok(c, r->epoch) || restarted)
            goto done; /* stale, or the request was about another epoch */
    }
    if (r->kind == NEWSALERT__V1__CATCHUP_REPLY__KIND__KIND_ALERT) {
        if (r->alert && r->alert->seq && c->req_until && r->alert->seq > c->req_until) {
            c->stats.invalid++; /* outside the range asked for */
        } else if (r->alert && r->alert->seq) {
            Newsalert__V1__Alert *a = r->alert;
            r->alert = NULL; /* protobuf-c allocates it on its own: ours now */
            hold_alert(c, a, false);
        }
        goto done;
    }
    c->inflight = false;
    switch (r->kind) {
    case NEWSALERT__V1__CATCHUP_REPLY__KIND__KIND_END:
        catchup_end(c, until ? until : r->last_seq);
        break;
    case NEWSALERT__V1__CATCHUP_REPLY__KIND__KIND_GONE:
        catchup_gone(c, since, until, r->oldest_seq);
        break;
    case NEWSALERT__V1__CATCHUP_REPLY__KIND__KIND_ERROR:
        if (r->error && strncmp(r->error, "busy", 4) == 0) {
            /* Too many catch-up clients: the same request, a little later. */
            c->retry = true;
            c->retry_at_ms = now_ms() + BUSY_RETRY_MS;
            c->retry_until = until;
            break;
        }
        zmq_close(c->dealer);
        c->dealer = NULL;
        c->want = 0;
        c->want_open = false;
        advance(c);
        na_error_set(err, "catch-up refused: %s", r->error ? r->error : "?");
        rc = -1;
        break;
    default:
        c->stats.invalid++;
        break;
    }
done:
    newsalert__v1__catchup_reply__free_unpacked(r, NULL);
    return rc;
}

/* ---- the live socket ---- */

static void on_live(struct na_client *c, const char *topic, size_t topic_len,
                    const uint8_t *data, size_t len)
{
    bool on[NA_CLIENT_MAX_TAGS];
    uint64_t k[NA_CLIENT_MAX_TAGS];
    Newsalert__V1__Alert *a = newsalert__v1__alert__unpack(NULL, len, data);
    if (a == NULL || a->seq == 0 || a->epoch == 0) {
        c->stats.invalid++;
        if (a)
            newsalert__v1__alert__free_unpacked(a, NULL);
        return;
    }
    /* A prefix subscription to "alert.aid" also takes "alert.aidx". */
    if (!follows(c, topic, topic_len) || !epoch_ok(c, a->epoch)) {
        newsalert__v1__alert__free_unpacked(a, NULL);
        return;
    }
    ours(c, a, on, k);
    if (!c->started) {
        start_at(c, a->seq - 1, false, 0);
        for (size_t i = 0; i < c->n_tags; i++)
            if (on[i]) {
                c->t[i].tq = c->t[i].mark = k[i] ? k[i] - 1 : 0;
                c->t[i].tq_known = c->t[i].mark_known = true;
            }
    }
    bool gap = false;
    if (c->n_tags) {
        for (size_t i = 0; i < c->n_tags; i++)
            if (on[i] && c->t[i].mark_known) {
                gap |= k[i] > c->t[i].mark + 1;
                set_mark(&c->t[i], k[i]);
            }
    } else {
        gap = a->seq > c->max_seen + 1;
    }
    uint64_t seq = a->seq;
    if (seq > c->max_seen)
        c->max_seen = seq;
    if (!hold_alert(c, a, true))
        return;
    if (gap) {
        c->stats.gaps++;
        if (c->want_open || seq - 1 > c->want)
            c->want = seq - 1;
        c->want_open = false;
    }
}

/* The heartbeat says where each topic's numbering stands: a followed topic
 * ahead of what came is a gap at the end of a burst, which no later alert
 * would show. A client that has received nothing yet starts there. */
static void on_heartbeat(struct na_client *c, const uint8_t *data, size_t len)
{
    Newsalert__V1__Heartbeat *hb = newsalert__v1__heartbeat__unpack(NULL, len, data);
    if (hb == NULL || hb->epoch == 0) {
        c->stats.invalid++;
        goto done;
    }
    if (!epoch_ok(c, hb->epoch))
        goto done;
    c->stats.heartbeats++;
    if (hb->interval_ms)
        c->hb_interval_ms = hb->interval_ms;
    uint64_t last = hb->last_seq;
    for (size_t i = 0; i < c->n_tags; i++)
        c->t[i].hb = 0;
    for (size_t j = 0; j < hb->n_topics; j++) {
        int i = topic_index(c, hb->topics[j]->topic);
        if (i >= 0)
            c->t[i].hb = hb->topics[j]->seq;
    }
    if (!c->started) {
        start_at(c, last, false, 0);
        for (size_t i = 0; i < c->n_tags; i++) {
            c->t[i].tq = c->t[i].mark = c->t[i].hb;
            c->t[i].tq_known = c->t[i].mark_known = true;
        }
    }
    c->has_hb = true;
    c->hb_last = last;
    bool gap = false;
    if (c->n_tags == 0) {
        gap = last > c->max_seen;
        if (last > c->max_seen)
            c->max_seen = last;
    }
    for (size_t i = 0; i < c->n_tags; i++) {
        struct topic *t = &c->t[i];
        if (!t->tq_known) {
            if (last <= c->L || t->hb == 0) {
                t->tq = t->hb;
                t->tq_known = true;
                set_mark(t, t->hb);
            } else if (!c->want_open && last > c->want) {
                /* Where t stood at L is unknown: catch-up up to here tells. */
                c->want = last;
            }
            continue;
        }
        if (t->mark_known && t->hb > t->mark) {
            gap = true;
            t->mark = t->hb;
        }
    }
    if (gap) {
        c->stats.gaps++;
        if (!c->want_open && last > c->want)
            c->want = last;
    }
done:
    if (hb)
        newsalert__v1__heartbeat__free_unpacked(hb, NULL);
}

/* ---- the API ---- */

static int copy_key(char *dst, const char *src)
{
    if (src == NULL || strlen(src) != 40)
        return -1;
    memcpy(dst, src, 41);
    return 0;
}

static bool tag_name_ok(const char *t)
{
    return t && *t && *t != '~' && strchr(t, '.') == NULL;
}

struct na_client *na_client_new(const struct na_client_opts *opts, struct na_error *err)
{
    struct na_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    if (opts->alerts == NULL || opts->n_tags > NA_CLIENT_MAX_TAGS ||
        (opts->history && opts->catchup == NULL)) {
        na_error_set(err, opts->alerts == NULL ? "no alert endpoint"
                          : opts->history      ? "history needs a catch-up endpoint"
                                               : "too many tags");
        free(c);
        return NULL;
    }
    c->catchup_timeout_ms = opts->catchup_timeout_ms;
    c->hold_ms = opts->hold_ms;
    for (size_t i = 0; i < opts->n_tags; i++) {
        const char *tag = opts->tags[i];
        if (!tag_name_ok(tag)) {
            na_error_set(err, "'%s' is not a tag name", tag ? tag : "(null)");
            goto fail;
        }
        bool seen = false;
        for (size_t j = 0; j < c->n_tags; j++)
            seen |= strcmp(c->tags[j], tag) == 0;
        if (seen)
            continue;
        size_t n = strlen(tag);
        c->tags[c->n_tags] = strdup(tag);
        c->t[c->n_tags].name = malloc(n + 7);
        if (c->tags[c->n_tags] == NULL || c->t[c->n_tags].name == NULL) {
            free(c->tags[c->n_tags]);
            free(c->t[c->n_tags].name);
            c->tags[c->n_tags] = c->t[c->n_tags].name = NULL;
            na_error_set(err, "out of memory");
            goto fail;
        }
        memcpy(c->t[c->n_tags].name, "alert.", 6);
        memcpy(c->t[c->n_tags].name + 6, tag, n + 1);
        c->n_tags++;
    }
    if (opts->curve_server_key) {
        if (copy_key(c->server_key, opts->curve_server_key) < 0 ||
            copy_key(c->public_key, opts->curve_public_key) < 0 ||
            copy_key(c->secret_key, opts->curve_secret_key) < 0) {
            na_error_set(err, "CURVE needs three keys of 40 Z85 characters");
            goto fail;
        }
        c->curve = true;
    }
    if (opts->catchup && (c->catchup = strdup(opts->catchup)) == NULL) {
        na_error_set(err, "out of memory");
        goto fail;
    }
    c->ctx = opts->zmq_context;
    if (c->ctx == NULL) {
        if ((c->ctx = zmq_ctx_new()) == NULL) {
            na_error_set(err, "cannot make a ZeroMQ context: %s", zmq_strerror(errno));
            goto fail;
        }
        c->own_ctx = true;
    }
    if ((c->sub = zmq_socket(c->ctx, ZMQ_SUB)) == NULL) {
        na_error_set(err, "cannot make a SUB socket: %s", zmq_strerror(errno));
        goto fail;
    }
    int hwm = opts->rcvhwm > 0 ? opts->rcvhwm : 1000, linger = 0;
    zmq_setsockopt(c->sub, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(c->sub, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(c->sub, ZMQ_SUBSCRIBE, HEARTBEAT_TOPIC, strlen(HEARTBEAT_TOPIC));
    /* A dead daemon is noticed (and reconnected to) within seconds. */
    int ivl = 2000, timeout = 10000;
    zmq_setsockopt(c->sub, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl));
    zmq_setsockopt(c->sub, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof(timeout));
    zmq_setsockopt(c->sub, ZMQ_HEARTBEAT_TTL, &timeout, sizeof(timeout));
    if (c->n_tags == 0)
        zmq_setsockopt(c->sub, ZMQ_SUBSCRIBE, "alert.", 6);
    for (size_t i = 0; i < c->n_tags; i++)
        zmq_setsockopt(c->sub, ZMQ_SUBSCRIBE, c->t[i].name, strlen(c->t[i].name));
    if (set_curve(c, c->sub) < 0 || zmq_connect(c->sub, opts->alerts) < 0) {
        na_error_set(err, "cannot connect to %s: %s", opts->alerts, zmq_strerror(errno));
        goto fail;
    }
    if (c->catchup && new_dealer(c) < 0) {
        na_error_set(err, "cannot connect to %s: %s", c->catchup, zmq_strerror(errno));
        goto fail;
    }
    if (opts->history) {
        start_at(c, opts->since_seq, opts->since_seq == 0, 0);
        c->want_open = true; /* an open-ended request: everything after since */
        if (request(c, opts->since_seq, 0, 1) < 0) {
            na_error_set(err, "cannot send the catch-up request");
            goto fail;
        }
    }
    return c;
fail:
    na_client_free(c);
    return NULL;
}

/* One message: how many frames it had, and its first two. */
struct frames {
    zmq_msg_t f[2];
    size_t n;
};

static int frames_recv(void *s, struct frames *m)
{
    m->n = 0;
    for (;;) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            for (size_t i = 0; i < m->n && i < 2; i++)
                zmq_msg_close(&m->f[i]);
            return -1;
        }
        bool more = zmq_msg_more(&part);
        if (m->n < 2)
            m->f[m->n] = part; /* moved: closed by frames_close */
        else
            zmq_msg_close(&part);
        m->n++;
        if (!more)
            return 0;
    }
}

static void frames_close(struct frames *m)
{
    for (size_t i = 0; i < m->n && i < 2; i++)
        zmq_msg_close(&m->f[i]);
}

/* Reads what is waiting on both sockets (a bounded batch of each) and
 * hands out what it can; -1 when the daemon refused a request. */
static int drain(struct na_client *c, struct na_error *err)
{
    struct frames m;
    /* Replies first: they fill the gap that held alerts wait on. */
    for (int k = 0; k < DRAIN_BATCH && c->dealer && frames_recv(c->dealer, &m) == 0;
         k++) {
        int rc = 0;
        if (m.n == 1)
            rc = on_reply(c, zmq_msg_data(&m.f[0]), zmq_msg_size(&m.f[0]), err);
        else
            c->stats.invalid++;
        frames_close(&m);
        if (rc < 0)
            return -1;
    }
    for (int k = 0; k < DRAIN_BATCH && frames_recv(c->sub, &m) == 0; k++) {
        if (m.n != 2) {
            c->stats.invalid++;
        } else {
            const char *topic = zmq_msg_data(&m.f[0]);
            size_t tlen = zmq_msg_size(&m.f[0]);
            if (tlen == strlen(HEARTBEAT_TOPIC) && !memcmp(topic, HEARTBEAT_TOPIC, tlen))
                on_heartbeat(c, zmq_msg_data(&m.f[1]), zmq_msg_size(&m.f[1]));
            else
                on_live(c, topic, tlen, zmq_msg_data(&m.f[1]), zmq_msg_size(&m.f[1]));
        }
        frames_close(&m);
    }
    advance(c);
    return 0;
}

/* When the next timer falls due (absolute ms), or -1. */
static int64_t next_timer(const struct na_client *c)
{
    int64_t at = -1;
    if (c->inflight)
        at = c->deadline_ms;
    if (c->retry && (at < 0 || c->retry_at_ms < at))
        at = c->retry_at_ms;
    if (c->blocked && !c->inflight && !c->retry) {
        int64_t hold_at = c->blocked_since + hold_ms(c);
        if (at < 0 || hold_at < at)
            at = hold_at;
    }
    return at;
}

int na_client_next(struct na_client *c, int timeout_ms, Newsalert__V1__Alert **alert,
                   struct na_error *err)
{
    int64_t until = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
    bool polled = false;
    if (c->current) {
        newsalert__v1__alert__free_unpacked(c->current, NULL);
        c->current = NULL;
    }
    for (;;) {
        if ((c->current = queue_pop(&c->ready)) != NULL) {
            c->stats.delivered++;
            *alert = c->current;
            return 1;
        }
        int64_t now = now_ms();
        timers(c, now);
        if (c->ready.n)
            continue;
        if (polled && now >= until)
            return 0;
        int64_t wait = until > now ? until - now : 0, at = next_timer(c);
        if (at >= 0 && at - now < wait)
            wait = at > now ? at - now : 0;
        if (wait > 1000)
            wait = 1000;
        if (wait > 0) {
            zmq_pollitem_t items[2] = {{c->sub, 0, ZMQ_POLLIN, 0},
                                       {c->dealer, 0, ZMQ_POLLIN, 0}};
            if (zmq_poll(items, c->dealer ? 2 : 1, (long)wait) < 0 && errno == EINTR)
                return 0;
        }
        if (drain(c, err) < 0)
            return -1;
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
    if (c->ready.n)
        return 0;
    int64_t at = next_timer(c);
    if (at < 0)
        return -1;
    int64_t left = at - now_ms();
    return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

bool na_client_busy(const struct na_client *c)
{
    return c->inflight || c->retry || c->heap.n || c->ready.n;
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
    if (c->dealer)
        zmq_close(c->dealer);
    if (c->sub)
        zmq_close(c->sub);
    if (c->own_ctx)
        zmq_ctx_term(c->ctx);
    free(c->catchup);
    for (size_t i = 0; i < c->n_tags; i++) {
        free(c->tags[i]);
        free(c->t[i].name);
    }
    if (c->current)
        newsalert__v1__alert__free_unpacked(c->current, NULL);
    Newsalert__V1__Alert *a;
    while ((a = queue_pop(&c->ready)) != NULL)
        newsalert__v1__alert__free_unpacked(a, NULL);
    free(c->ready.v);
    for (size_t i = 0; i < c->held.cap; i++)
        if (c->held.s[i].used)
            newsalert__v1__alert__free_unpacked(c->held.s[i].p, NULL);
    free(c->held.s);
    free(c->held_t.s);
    free(c->heap.v);
    explicit_bzero(c->secret_key, sizeof(c->secret_key));
    free(c);
}
