/* The merger of merge.h: one na_client per daemon, polled together, and a
 * window of alert keys already handed out.
 *
 * The window is a ring of the last `window` keys in the order they were
 * handed out, indexed by a chained hash table; when the ring is full, the
 * oldest key leaves both. Keys are kept whole, not as hashes, so that two
 * different alerts can never be taken for copies of each other. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "newsalert/merge.h"

struct entry {
    char *key;     /* NULL: the slot is free */
    uint64_t hash;
    uint32_t next; /* the next entry of the same bucket, +1 (0: none) */
};

struct na_merge {
    struct na_client *clients[NA_MERGE_MAX_DAEMONS];
    char *tags[NA_MERGE_MAX_DAEMONS][NA_CLIENT_MAX_TAGS]; /* each one's, copied */
    size_t n_tags[NA_MERGE_MAX_DAEMONS];
    size_t n, rr;
    size_t window, head, used; /* the ring: entries[head] is the oldest */
    struct entry *entries;
    uint32_t *buckets; /* entry index + 1 (0: empty) */
    size_t mask;
    char *keybuf;
    size_t keycap;
    struct na_merge_stats stats;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static size_t put(char c, char *buf, size_t size, size_t at)
{
    if (at + 1 < size)
        buf[at] = c;
    return at + 1;
}

/* Writes s with '%' and '/' escaped; returns where it ends. */
static size_t put_escaped(const char *s, char *buf, size_t size, size_t at)
{
    for (; s && *s; s++) {
        if (*s == '%' || *s == '/') {
            at = put('%', buf, size, at);
            at = put('2', buf, size, at);
            at = put(*s == '%' ? '5' : 'F', buf, size, at);
        } else {
            at = put(*s, buf, size, at);
        }
    }
    return at;
}

size_t na_alert_key(const Newsalert__V1__Alert *a, char *buf, size_t size)
{
    char rev[16];
    size_t at = put_escaped(a->source, buf, size, 0);
    at = put('/', buf, size, at);
    at = put_escaped(a->article_id, buf, size, at);
    snprintf(rev, sizeof(rev), "/%u", (unsigned)a->revision);
    for (const char *r = rev; *r; r++)
        at = put(*r, buf, size, at);
    if (size > 0)
        buf[at < size ? at : size - 1] = '\0';
    return at;
}

/* ---- the window ---- */

static struct entry *find(struct na_merge *m, const char *key, uint64_t h)
{
    for (uint32_t i = m->buckets[h & m->mask]; i; i = m->entries[i - 1].next) {
        struct entry *e = &m->entries[i - 1];
        if (e->hash == h && !strcmp(e->key, key))
            return e;
    }
    return NULL;
}

static void forget_oldest(struct na_merge *m)
{
    size_t idx = m->head;
    struct entry *e = &m->entries[idx];
    uint32_t *link = &m->buckets[e->hash & m->mask];
    while (*link && *link != idx + 1)
        link = &m->entries[*link - 1].next;
    if (*link)
        *link = e->next;
    free(e->key);
    memset(e, 0, sizeof(*e));
    m->head = (m->head + 1) % m->window;
    m->used--;
    m->stats.forgotten++;
}

static int remember(struct na_merge *m, const char *key, uint64_t h)
{
    if (m->used == m->window)
        forget_oldest(m);
    size_t idx = (m->head + m->used) % m->window;
    struct entry *e = &m->entries[idx];
    if ((e->key = strdup(key)) == NULL)
        return -1;
    e->hash = h;
    e->next = m->buckets[h & m->mask];
    m->buckets[h & m->mask] = (uint32_t)idx + 1;
    m->used++;
    return 0;
}

/* Builds "KEY#tag" for tag i of a (or the bare key for i == n_tags). */
static const char *tag_key(struct na_merge *m, const Newsalert__V1__Alert *a, size_t i)
{
    const char *tag = i < a->n_tags && a->tags[i]->tag ? a->tags[i]->tag : "";
    size_t need = na_alert_key(a, NULL, 0) + strlen(tag) + 2;
    if (need > m->keycap) {
        char *b = realloc(m->keybuf, need);
        if (b == NULL)
            return NULL;
        m->keybuf = b;
        m->keycap = need;
    }
    size_t at = na_alert_key(a, m->keybuf, m->keycap);
    m->keybuf[at] = '#';
    memcpy(m->keybuf + at + 1, tag, strlen(tag) + 1);
    return m->keybuf;
}

/* Whether a brings a key not handed out yet; remembers its keys. Each
 * tag the client follows counts (the client passes only followed tags'
 * alerts, but an alert also names the other tags that fired). */
static bool is_new(struct na_merge *m, const Newsalert__V1__Alert *a, size_t d)
{
    char *const *tags = m->tags[d];
    size_t n_followed = m->n_tags[d];
    bool fresh = false;
    size_t n = a->n_tags ? a->n_tags : 1;
    for (size_t i = 0; i < n; i++) {
        if (i < a->n_tags && n_followed) {
            bool followed = false;
            for (size_t k = 0; k < n_followed && !followed; k++)
                followed = a->tags[i]->tag && !strcmp(a->tags[i]->tag, tags[k]);
            if (!followed)
                continue;
        }
        const char *key = tag_key(m, a, i);
        if (key == NULL)
            return true; /* out of memory: better a repeat than a loss */
        uint64_t h = fnv1a(key);
        if (find(m, key, h) == NULL) {
            fresh = true;
            remember(m, key, h);
        }
    }
    return fresh;
}

/* ---- the API ---- */

struct na_merge *na_merge_new(const struct na_merge_opts *opts, struct na_error *err)
{
    if (opts->n_daemons == 0 || opts->n_daemons > NA_MERGE_MAX_DAEMONS) {
        na_error_set(err, "between 1 and %d daemons, not %zu", NA_MERGE_MAX_DAEMONS,
                     opts->n_daemons);
        return NULL;
    }
    struct na_merge *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    m->window = opts->window ? opts->window : NA_MERGE_DEFAULT_WINDOW;
    if (m->window > UINT32_MAX / 4) {
        na_error_set(err, "a window of %zu keys is too large", m->window);
        free(m);
        return NULL;
    }
    size_t nb = 16;
    while (nb < m->window * 2)
        nb *= 2;
    m->mask = nb - 1;
    m->entries = calloc(m->window, sizeof(*m->entries));
    m->buckets = calloc(nb, sizeof(*m->buckets));
    if (m->entries == NULL || m->buckets == NULL) {
        na_error_set(err, "out of memory for a window of %zu keys", m->window);
        na_merge_free(m);
        return NULL;
    }
    for (size_t i = 0; i < opts->n_daemons; i++) {
        struct na_error e;
        m->clients[i] = na_client_new(&opts->daemons[i], &e);
        if (m->clients[i] == NULL) {
            na_error_set(err, "daemon %zu (%s): %s", i + 1,
                         opts->daemons[i].alerts ? opts->daemons[i].alerts : "?", e.msg);
            na_merge_free(m);
            return NULL;
        }
        m->n++;
        m->n_tags[i] = opts->daemons[i].n_tags;
        for (size_t k = 0; k < m->n_tags[i]; k++)
            if ((m->tags[i][k] = strdup(opts->daemons[i].tags[k])) == NULL) {
                na_error_set(err, "out of memory");
                na_merge_free(m);
                return NULL;
            }
    }
    return m;
}

int na_merge_next(struct na_merge *m, int timeout_ms, Newsalert__V1__Alert **alert,
                  size_t *daemon, struct na_error *err)
{
    int64_t until = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
    for (;;) {
        /* One pass over every client, starting after the one that gave the
         * last alert, so that a busy daemon does not starve the others. */
        for (size_t k = 0; k < m->n; k++) {
            size_t i = (m->rr + k) % m->n;
            Newsalert__V1__Alert *a;
            int rc;
            while ((rc = na_client_next(m->clients[i], 0, &a, err)) == 1) {
                if (!is_new(m, a, i)) {
                    m->stats.duplicates++;
                    continue;
                }
                m->stats.delivered++;
                m->rr = i + 1;
                *alert = a;
                *daemon = i;
                return 1;
            }
            if (rc < 0) {
                *daemon = i;
                return -2;
            }
        }
        int64_t now = now_ms();
        if (now >= until)
            return 0;
        int64_t wait = until - now;
        zmq_pollitem_t items[2 * NA_MERGE_MAX_DAEMONS];
        int n = 0;
        for (size_t i = 0; i < m->n; i++) {
            void *s[2];
            size_t ns = na_client_sockets(m->clients[i], s);
            for (size_t j = 0; j < ns; j++)
                items[n++] = (zmq_pollitem_t){s[j], 0, ZMQ_POLLIN, 0};
            int t = na_client_timer_ms(m->clients[i]);
            if (t >= 0 && t < wait)
                wait = t;
        }
        if (zmq_poll(items, n, wait > 1000 ? 1000 : (long)wait) < 0 && errno == EINTR)
            return 0;
    }
}

struct na_client *na_merge_client(struct na_merge *m, size_t i)
{
    return i < m->n ? m->clients[i] : NULL;
}

const struct na_merge_stats *na_merge_stats(const struct na_merge *m)
{
    return &m->stats;
}

void na_merge_free(struct na_merge *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        na_client_free(m->clients[i]);
        for (size_t k = 0; k < m->n_tags[i]; k++)
            free(m->tags[i][k]);
    }
    if (m->entries)
        for (size_t i = 0; i < m->window; i++)
            free(m->entries[i].key);
    free(m->entries);
    free(m->buckets);
    free(m->keybuf);
    free(m);
}
