/* Tagging in parallel.
 *
 * Tagging is most of an article's cost: of the daemon's ~173,000
 * instructions per 2 KB article (bench/run.py, callgrind_daemon),
 * na_tagger_tag (the Vectorscan scan and the scoring) takes ~144,000, and it
 * is the only part that touches no shared state. So the feed gathers a round
 * of decoded articles, the pool tags them on several threads, and the loop
 * thread then finishes them one by one, in the order they came: sequence
 * numbers, dedup, the journal and publishing stay single-threaded.
 *
 * Each job has a tagger of its own (its scratch and its result buffers), so
 * every result of a round stays valid until the caller has finished with
 * it. The calling thread tags too; helpers claim the remaining jobs through
 * one atomic counter.
 *
 * A round is a barrier. The caller opens it under the lock, tags, closes it,
 * and waits until no helper is inside; a helper enters only an open round,
 * at most once. So no helper ever reads a round's jobs after the caller has
 * returned. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "newsalertd.h"

struct na_tagpool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a round opened, or quit */
    pthread_cond_t idle; /* the last helper left the round */
    pthread_t *helpers;
    size_t n_helpers;
    /* The round, written under mu while it is closed and no helper is in. */
    struct na_tagger *const *taggers;
    struct na_tag_job *jobs;
    size_t n_jobs;
    size_t next; /* the next unclaimed job; atomic */
    unsigned long round;
    bool open;
    size_t inside; /* helpers working on the open round */
    bool quit;
};

static void tag_one(struct na_tagger *t, struct na_tag_job *j)
{
    uint64_t start = na_mono_ns();
    j->rc = na_tagger_tag(t, j->headline, j->headline_len, j->body, j->body_len, &j->res,
                          &j->err);
    j->ns = na_mono_ns() - start;
}

static void claim_jobs(struct na_tagpool *p)
{
    for (;;) {
        size_t i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (i >= p->n_jobs)
            return;
        tag_one(p->taggers[i], &p->jobs[i]);
    }
}

static void *helper_main(void *arg)
{
    struct na_tagpool *p = arg;
    unsigned long seen = 0;

    prctl(PR_SET_NAME, "na-tagger"); /* for top -H, perf and gdb */

    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && !(p->open && p->round != seen))
            pthread_cond_wait(&p->work, &p->mu);
        if (p->quit)
            break;
        seen = p->round;
        p->inside++;
        pthread_mutex_unlock(&p->mu);
        claim_jobs(p);
        pthread_mutex_lock(&p->mu);
        if (--p->inside == 0)
            pthread_cond_signal(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct na_tagpool *na_tagpool_new(size_t threads, struct na_error *err)
{
    struct na_tagpool *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    if (threads > 1 && (p->helpers = calloc(threads - 1, sizeof(*p->helpers))) == NULL) {
        na_error_set(err, "out of memory");
        na_tagpool_free(p);
        return NULL;
    }
    for (size_t i = 0; i + 1 < threads; i++) {
        int rc = pthread_create(&p->helpers[i], NULL, helper_main, p);
        if (rc != 0) {
            na_error_set(err, "cannot start a tagging thread: %s", strerror(rc));
            na_tagpool_free(p);
            return NULL;
        }
        p->n_helpers++;
    }
    return p;
}

void na_tagpool_free(struct na_tagpool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->n_helpers; i++)
        pthread_join(p->helpers[i], NULL);
    free(p->helpers);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    free(p);
}

size_t na_tagpool_threads(const struct na_tagpool *p)
{
    return p->n_helpers + 1;
}

bool na_tagpool_run(struct na_tagpool *p, struct na_tagger *const *taggers,
                    struct na_tag_job *jobs, size_t n)
{
    /* One article, or no helpers: waking a thread would cost more than it
     * could save. */
    if (n == 1 || p->n_helpers == 0) {
        for (size_t i = 0; i < n; i++)
            tag_one(taggers[i], &jobs[i]);
        return false;
    }
    pthread_mutex_lock(&p->mu);
    p->taggers = taggers;
    p->jobs = jobs;
    p->n_jobs = n;
    __atomic_store_n(&p->next, 0, __ATOMIC_RELAXED);
    p->round++;
    p->open = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);

    claim_jobs(p);

    pthread_mutex_lock(&p->mu);
    p->open = false;
    while (p->inside > 0)
        pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return true;
}
