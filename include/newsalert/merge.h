/* One stream from several newsalertd that tag the same feed: an
 * active-active pair (or more), or shards that split the sources.
 *
 * Each daemon is followed by its own na_client (its epoch, its seqs, its
 * catch-up), and the merger hands each alert out once, in arrival order,
 * by its alert key: the (source, article_id, revision) of the article it is
 * about, with each followed tag. Two daemons given the same input make the
 * same key; the copy that arrives second is dropped. A copy of one daemon
 * that a second daemon's catch-up brings back later (it restarted, or its
 * subscriber fell behind) is dropped the same way, as long as the key is
 * still remembered: the merger remembers the last `window` keys it handed
 * out. Past that, a copy would be handed out again; size the window to what
 * arrives while a daemon may be down (at 2,000 alerts/s, the default covers
 * about two minutes).
 *
 *   struct na_client_opts d[2] = {{.alerts = "tcp://a:5556", .catchup = "tcp://a:5557"},
 *                                 {.alerts = "tcp://b:5556", .catchup = "tcp://b:5557"}};
 *   struct na_merge_opts o = {.daemons = d, .n_daemons = 2};
 *   struct na_merge *m = na_merge_new(&o, &err);
 *   while ((rc = na_merge_next(m, 1000, &alert, &from, &err)) >= 0 || rc == -2)
 *       if (rc == 1) use(alert);
 *
 * Part of libnewsalert. */
#ifndef NEWSALERT_MERGE_H
#define NEWSALERT_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "newsalert/client.h"

#define NA_MERGE_MAX_DAEMONS 16
#define NA_MERGE_DEFAULT_WINDOW 262144

struct na_merge_opts {
    const struct na_client_opts *daemons; /* one per daemon; the same tags in each */
    size_t n_daemons;
    size_t window; /* alert keys remembered (0: NA_MERGE_DEFAULT_WINDOW; at least 33) */
};

struct na_merge_stats {
    uint64_t delivered;  /* alerts handed out */
    uint64_t duplicates; /* copies dropped: every key already handed out */
    uint64_t forgotten;  /* keys pushed out of the window */
};

struct na_merge;

struct na_merge *na_merge_new(const struct na_merge_opts *opts, struct na_error *err);

/* Waits up to timeout_ms (-1: forever) for the next alert not yet handed
 * out. Returns 1 with *alert (valid until the next call) and *daemon (its
 * index in opts->daemons), 0 on timeout, and -2 with *daemon and err set
 * when that daemon refused a catch-up request: the others go on, and so
 * does that one, live. */
int na_merge_next(struct na_merge *m, int timeout_ms, Newsalert__V1__Alert **alert,
                  size_t *daemon, struct na_error *err);

/* The client of daemon i, for its stats and warnings. */
struct na_client *na_merge_client(struct na_merge *m, size_t i);
const struct na_merge_stats *na_merge_stats(const struct na_merge *m);

/* The alert key of a: "source/article_id/revision", with '%' and '/' in
 * source and article_id written as %25 and %2F, so that the key splits back
 * into its parts. Returns the length it needs (snprintf-like). */
size_t na_alert_key(const Newsalert__V1__Alert *a, char *buf, size_t size);

void na_merge_free(struct na_merge *m);

/* The window itself, for a consumer that merges in its own way: the last
 * `window` keys added, oldest out first. */
struct na_key_window;
struct na_key_window *
na_key_window_new(size_t window); /* NULL: 0, too large, or no memory */
/* 1: key is new (now remembered); 0: it is in the window; -1: no memory. */
int na_key_window_add(struct na_key_window *w, const char *key);
uint64_t na_key_window_forgotten(const struct na_key_window *w); /* keys pushed out */
void na_key_window_free(struct na_key_window *w);

#endif
