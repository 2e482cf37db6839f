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
    char *key; /* NULL: the slot is free */
    uint64_t hash;
    uint32_t next; /* the next entry of the same bucket, +1 (0: none) */
};

struct na_key_window {
    size_t window, head, used; /* the ring: entries[head] is the oldest */
    struct entry *entries;
    uint32_t *buckets; /* entry index + 1 (0: empty) */
    size_t mask;
    uint64_t forgotten;
};

struct na_merge {
    struct na_client *clients[NA_MERGE_MAX_DAEMONS];
    char *tags[NA_MERGE_MAX_DAEMONS][NA_CLIENT_MAX_TAGS]; /* each one's, copied */
    size_t n_tags[NA_MERGE_MAX_DAEMONS];
    size_t n, rr;
    struct na_key_window *seen;
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

struct na_key_window *na_key_window_new(size_t window)
{
    if (window == 0 || window > UINT32_MAX / 4)
        return NULL;
    struct na_key_window *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    size_t nb = 16;
    while (nb < window * 2)
        nb *= 2;
    w->window = window;
    w->mask = nb - 1;
    w->entries = calloc(window, sizeof(*w->entries));
    w->buckets = calloc(nb, sizeof(*w->buckets));
    if (w->entries == NULL || w->buckets == NULL) {
        na_key_window_free(w);
        return NULL;
    }
    return w;
}

static struct entry *find(struct na_key_window *w, const char *key, uint64_t h)
{
    for (uint32_t i = w->buckets[h & w->mask]; i; i = w->entries[i - 1].next) {
        struct entry *e = &w->entries[i - 1];
        if (e->hash == h && !strcmp(e->key, key))
            return e;
    }
    return NULL;
}

static void forget_oldest(struct na_key_window *w)
{
    size_t idx = w->head;
    struct entry *e = &w->entries[idx];
    uint32_t *link = &w->buckets[e->hash & w->mask];
    while (*link && *link != idx + 1)
        link = &w->entries[*link - 1].next;
    if (*link)
        *link = e->next;
    free(e->key);
    memset(e, 0, sizeof(*e));
    w->head = (w->head + 1) % w->window;
    w->used--;
    w->forgotten++;
}

int na_key_window_add(struct na_key_window *w, const char *key)
{
    uint64_t h = fnv1a(key);
    if (find(w, key, h) != NULL)
        return 0;
    char *copy = strdup(key);
    if (copy == NULL)
        return -1;
    if (w->used == w->window)
        forget_oldest(w);
    size_t idx = (w->head + w->used) % w->window;
    struct entry *e = &w->entries[idx];
    e->key = copy;
    e->hash = h;
    e->next = w->buckets[h & w->mask];
    w->buckets[h & w->mask] = (uint32_t)idx + 1;
    w->used++;
    return 1;
}

uint64_t na_key_window_forgotten(const struct na_key_window *w)
{
    return w->forgotten;
}

void na_key_window_free(struct na_key_window *w)
{
    if (w == NULL)
        return;
    if (w->entries)
        for (size_t i = 0; i < w->window; i++)
            free(w->entries[i].key);
    free(w->entries);
    free(w->buckets);
    free(w);
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
    size_t keyed = 0;
    for (size_t i = 0; i <= a->n_tags; i++) {
        /* i == n_tags: the bare key, for an alert none of whose tags
         * counted (it names no followed tag), so that it is not dropped. */
        if (i == a->n_tags && keyed)
            break;
        if (i < a->n_tags && n_followed) {
            bool followed = false;
            for (size_t k = 0; k < n_followed && !followed; k++)
                followed = a->tags[i]->tag && !strcmp(a->tags[i]->tag, tags[k]);
            if (!followed)
                continue;
        }
        keyed++;
        const char *key = tag_key(m, a, i);
        /* Out of memory: better a repeat than a loss. */
        if (key == NULL || na_key_window_add(m->seen, key) != 0)
            fresh = true;
    }
    m->stats.forgotten = na_key_window_forgotten(m->seen);
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
    size_t window = opts->window ? opts->window : NA_MERGE_DEFAULT_WINDOW;
    /* One alert adds a key per followed tag: a smaller window would push
     * an alert's first key out with its last. */
    if (window < NA_CLIENT_MAX_TAGS + 1)
        window = NA_CLIENT_MAX_TAGS + 1;
    if ((m->seen = na_key_window_new(window)) == NULL) {
        na_error_set(err, "cannot keep a window of %zu keys", window);
        free(m);
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
    na_key_window_free(m->seen);
    free(m->keybuf);
    free(m);
}
