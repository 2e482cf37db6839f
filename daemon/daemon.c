/* The daemon's core: setup, the per-message pipeline (decode, validate, tag,
 * publish), signals and reload. Signals only set work for the loop: libevent
 * delivers them as ordinary events, so the handlers here run between
 * articles, never inside one. */
#include <errno.h>
#include <event2/http.h>
#include <jansson.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "newsalert/model.h"
#include "newsalert/phrases.h"
#include "newsalertd.h"

int64_t na_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t na_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t na_mono_ms(void)
{
    return (int64_t)(na_mono_ns() / 1000000u);
}

bool na_zsock_readable(void *sock)
{
    int events = 0;
    size_t len = sizeof(events);
    if (zmq_getsockopt(sock, ZMQ_EVENTS, &events, &len) < 0)
        return false;
    return (events & ZMQ_POLLIN) != 0;
}

/* Reject logs: at most a burst per reason per window; the rest are counted
 * and summed up in the next line that gets through. */
static void reject(struct na_daemon *d, enum na_reject why, const char *msg)
{
    uint64_t suppressed;

    d->stats.rejected[why]++;
    if (!na_ratelimit_pass(&d->reject_rl[why], na_mono_ms(), &suppressed))
        return;
    if (suppressed)
        na_warn("rejected (%s): %s (and %llu more not logged)", na_reject_name(why), msg,
                (unsigned long long)suppressed);
    else
        na_warn("rejected (%s): %s", na_reject_name(why), msg);
}

/* An article waiting in the round for its tags. */
struct na_pending {
    Newsalert__V1__Article *a;
    uint64_t update_of;
    uint64_t ns; /* time spent on it before tagging */
};

static void observe(struct na_daemon *d, uint64_t ns)
{
    na_metrics_observe(&d->metrics.processing, ns);
}

static bool same_key(const Newsalert__V1__Article *x, const Newsalert__V1__Article *y)
{
    return !strcmp(x->id, y->id) && !strcmp(x->source ? x->source : "",
                                            y->source ? y->source : "");
}

/* The rest of an article, once tagged: its alert, if a tag fired, and the
 * dedup record. On the loop thread, in the order the articles came. */
static void finish_one(struct na_daemon *d, struct na_pending *p,
                       const struct na_tag_job *j)
{
    Newsalert__V1__Article *a = p->a;
    const struct na_result *res = j->res;

    if (j->rc < 0) {
        na_err("tagging article %s failed: %s", a->id, j->err.msg);
        return;
    }
    if (res->truncated) {
        d->stats.match_limited++;
        na_debug("article %s: match limit reached, the rest was not scanned", a->id);
    }
    if (res->n_fired == 0) {
        d->stats.untagged++;
        na_delivery_remember(d, a, 0);
        return;
    }
    struct na_alert_meta meta = {.seq = ++d->seq,
                                 .epoch = d->epoch,
                                 .received_at_ms = na_now_ms(),
                                 .update_of = p->update_of};
    Newsalert__V1__Alert *alert = na_alert_build(d->builder, a, res, d->rs, &meta);
    if (alert == NULL) {
        na_err("article %s: out of memory building its alert", a->id);
        d->seq--;
        return;
    }
    d->stats.alerted++;
    na_delivery_alert(d, alert);
    na_delivery_remember(d, a, meta.seq);
    na_debug("alert %llu: article %s", (unsigned long long)meta.seq, a->id);
}

void na_daemon_finish_round(struct na_daemon *d)
{
    size_t n = d->n_pending;

    if (n == 0)
        return;
    if (na_tagpool_run(d->pool, d->taggers, d->jobs, n))
        d->stats.tag_rounds++;
    for (size_t i = 0; i < n; i++) {
        uint64_t start = na_mono_ns();
        finish_one(d, &d->pending[i], &d->jobs[i]);
        na_article_free(d->pending[i].a);
        observe(d, d->pending[i].ns + d->jobs[i].ns + (na_mono_ns() - start));
    }
    d->n_pending = 0;
}

/* Decodes, validates and dedups one message; an article that passes joins
 * the round, which is tagged when it is full or the batch ends. */
void na_daemon_handle(struct na_daemon *d, const uint8_t *const *data, const size_t *len,
                      size_t n_total)
{
    uint64_t start = na_mono_ns();
    char msg[256];
    enum na_reject why;

    d->stats.received++;
    if (n_total > 2) {
        snprintf(msg, sizeof(msg),
                 "a message of %zu frames (expected [topic, Article] or "
                 "[Article])",
                 n_total);
        reject(d, NA_REJECT_FRAME_COUNT, msg);
        na_delivery_quarantine(d, NA_REJECT_FRAME_COUNT, data, len, n_total);
        observe(d, na_mono_ns() - start);
        return;
    }
    const uint8_t *payload = data[n_total - 1];
    size_t payload_len = len[n_total - 1];
    Newsalert__V1__Article *a =
        na_article_decode(payload, payload_len, &d->cfg->limits, &why, msg, sizeof(msg));
    if (a == NULL) {
        reject(d, why, msg);
        na_delivery_quarantine(d, why, data, len, n_total);
        observe(d, na_mono_ns() - start);
        return;
    }
    d->stats.decoded++;
    na_metrics_feed_seq(&d->metrics, a->source, a->feed_seq);
    /* Dedup must see the earlier copy recorded: an article already in the
     * round ends the round first. (Other keys are checked before the round's
     * earlier articles are recorded; that can only shift which key a full
     * dedup window forgets, by less than a round.) */
    for (size_t i = 0; i < d->n_pending; i++)
        if (same_key(d->pending[i].a, a)) {
            uint64_t t = na_mono_ns();
            na_daemon_finish_round(d);
            start += na_mono_ns() - t;
            break;
        }
    uint64_t update_of;
    if (na_delivery_check(d, a, &update_of)) {
        na_debug("article %s (%s, revision %u): a duplicate, dropped", a->id,
                 a->source ? a->source : "", a->revision);
        na_article_free(a);
        observe(d, na_mono_ns() - start);
        return;
    }
    const char *h = a->headline ? a->headline : "", *b = a->body ? a->body : "";
    d->jobs[d->n_pending] = (struct na_tag_job){
        .headline = h, .headline_len = strlen(h), .body = b, .body_len = strlen(b)};
    d->pending[d->n_pending++] =
        (struct na_pending){.a = a, .update_of = update_of, .ns = na_mono_ns() - start};
    if (d->n_pending == d->n_slots)
        na_daemon_finish_round(d);
}

static void free_taggers(struct na_tagger **t, size_t n)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        na_tagger_free(t[i]);
    free(t);
}

/* Compiles a ruleset and a tagger for each slot of a round, for start-up
 * and reload alike. The compiled database is cached under state_dir/cache,
 * so that starting or reloading with unchanged rules takes milliseconds, not
 * a compile. */
static int build_rules(const struct na_config *cfg, const char *state_dir, size_t slots,
                       struct na_ruleset **rs, struct na_model **model,
                       struct na_tagger ***taggers, struct na_error *err)
{
    struct na_tagger_limits tl = {.max_matches = (size_t)cfg->max_matches,
                                  .max_evidence = (size_t)cfg->max_evidence};
    char cache[4096];
    snprintf(cache, sizeof(cache), "%s/cache", state_dir);
    if (mkdir(state_dir, 0750) < 0 && errno != EEXIST)
        na_warn("%s: %s; the rules are compiled without a cache", state_dir,
                strerror(errno));
    uint64_t t0 = na_mono_ns();
    *rs = na_ruleset_load_cached(cfg->rules_dir, cfg->actors_file, cache, err);
    if (*rs == NULL)
        return -1;
    na_info("rules: %s in %.1f ms; %zu of %zu patterns are phrases, matched on words",
            na_ruleset_from_cache(*rs) ? "read from the cache" : "compiled",
            (double)(na_mono_ns() - t0) / 1e6,
            na_phrases_pattern_count(na_ruleset_phrases(*rs)), na_ruleset_pattern_count(*rs));
    /* A compile peaks at some 15 MB of heap that it frees again; without a
     * trim the daemon would keep that much resident for good (26 MB rather
     * than 10 MB idle after a first start). */
    if (!na_ruleset_from_cache(*rs))
        malloc_trim(0);
    *model = NULL;
    if (*cfg->model_file) {
        t0 = na_mono_ns();
        *model = na_model_load(cfg->model_file, *rs, err);
        if (*model == NULL) {
            na_ruleset_free(*rs);
            *rs = NULL;
            return -1;
        }
        na_info("model %s: %zu features, loaded in %.1f ms", na_model_version(*model),
                na_model_feature_count(*model), (double)(na_mono_ns() - t0) / 1e6);
        if (!na_model_rules_match(*model, *rs))
            na_warn("%s was trained with other rules than %s: retrain it with newsalert "
                    "train",
                    cfg->model_file, cfg->rules_dir);
    }
    *taggers = calloc(slots, sizeof(**taggers));
    if (*taggers == NULL)
        na_error_set(err, "out of memory");
    for (size_t i = 0; *taggers && i < slots; i++)
        if (((*taggers)[i] = na_tagger_new(*rs, &tl, err)) == NULL) {
            free_taggers(*taggers, i);
            *taggers = NULL;
        } else {
            na_tagger_set_model((*taggers)[i], *model);
        }
    if (*taggers == NULL) {
        na_model_free(*model);
        *model = NULL;
        na_ruleset_free(*rs);
        *rs = NULL;
        return -1;
    }
    return 0;
}

static uint64_t rejected_total(const struct na_daemon *d)
{
    uint64_t n = 0;
    for (int i = 0; i < NA_REJECT_COUNT; i++)
        n += d->stats.rejected[i];
    return n;
}

static void log_status(struct na_daemon *d, const char *what)
{
    na_info("%s: %llu received, %llu decoded, %llu rejected, %llu alerts, %llu untagged",
            what, (unsigned long long)d->stats.received,
            (unsigned long long)d->stats.decoded, (unsigned long long)rejected_total(d),
            (unsigned long long)d->stats.alerted, (unsigned long long)d->stats.untagged);
    for (int i = 1; i < NA_REJECT_COUNT; i++)
        if (d->stats.rejected[i])
            na_info("%s: rejected %s: %llu", what, na_reject_name(i),
                    (unsigned long long)d->stats.rejected[i]);
    if (d->stats.match_limited)
        na_info("%s: match limit reached: %llu", what,
                (unsigned long long)d->stats.match_limited);
    if (d->curve.publish_on || d->curve.feed_on || d->stats.auth_failures)
        na_info("%s: auth failures: %llu", what,
                (unsigned long long)d->stats.auth_failures);
    if (d->stats.journal_errors)
        na_info("%s: journal errors: %llu (%llu times held)", what,
                (unsigned long long)d->stats.journal_errors,
                (unsigned long long)d->stats.journal_holds);
    if (d->stats.feed_disconnects)
        na_info("%s: feed disconnects: %llu", what,
                (unsigned long long)d->stats.feed_disconnects);
    if (d->stats.feed_reconnects)
        na_info("%s: feed reconnects: %llu", what,
                (unsigned long long)d->stats.feed_reconnects);
    if (d->stats.tag_rounds)
        na_info("%s: tagged in parallel: %llu rounds on %zu threads", what,
                (unsigned long long)d->stats.tag_rounds, na_tagpool_threads(d->pool));
}

/* Everything about CURVE that a reload may read again: the key files are
 * checked like at start (a bad one fails the reload), the allowlist is
 * loaded aside. Returns 0 with *allow set (NULL when CURVE is off). */
static int load_curve(const struct na_config *cfg, struct na_curve *keys,
                      struct na_allowlist **allow, struct na_error *err)
{
    *allow = NULL;
    if (na_curve_load(cfg, keys, err) < 0)
        return -1;
    if (keys->publish_on &&
        (*allow = na_allowlist_load(cfg->publish_curve_allow_dir,
                                    "publish.curve.allow_dir", err)) == NULL) {
        na_curve_wipe(keys);
        return -1;
    }
    return 0;
}

static void swap_str(char **a, char **b)
{
    char *t = *a;
    *a = *b;
    *b = t;
}

/* The one-line STATUS= that systemctl status shows: the article rate since
 * the previous status, and the totals. */
static void notify_status(struct na_daemon *d)
{
    int64_t now = na_mono_ms();
    int64_t ms = now - d->status_mono_ms;
    double rate =
        ms > 0 ? (double)(d->stats.received - d->status_received) * 1000.0 / (double)ms
               : 0.0;

    d->status_mono_ms = now;
    d->status_received = d->stats.received;
    na_notifyf("STATUS=%.1f articles/s, %llu received, %llu alerts, %llu rejected", rate,
               (unsigned long long)d->stats.received,
               (unsigned long long)d->stats.alerted,
               (unsigned long long)rejected_total(d));
}

/* A key a reload cannot apply: named in the log, counted in
 * newsalertd_reload_ignored_keys_total. */
static void warn_restart_key(const char *key, void *arg)
{
    (void)arg;
    na_warn("reload: %s changed in the file but is read only at start; the running "
            "value stays until a restart",
            key);
}

/* SIGHUP: the config file and the rules are read again and compiled aside;
 * only a complete success replaces what is in service. Keys read only at
 * start (endpoints, socket options, files, timers) keep their running
 * values, and each one changed in the file is named. */

static void daemon_on_reload(evutil_socket_t fd, short what, void *arg)
{
    struct na_daemon *d = arg;
    struct na_error err;
    struct na_ruleset *rs;
    struct na_model *model;
    struct na_tagger **taggers;
    (void)fd;
    (void)what;

    /* A SIGHUP from here on asks for one more reload: it may have come
     * after a file was changed that this one has already read. */
    d->reload_pending = false;

    /* MONOTONIC_USEC lets a Type=notify-reload manager tie this RELOADING
     * to the signal it sent; older managers ignore it. */
    na_notifyf("RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)(na_mono_ns() / 1000u));
    struct na_config *cfg = na_config_load(d->cfg->path, &err);
    struct na_curve keys;
    struct na_allowlist *allow = NULL;
    if (cfg == NULL || load_curve(cfg, &keys, &allow, &err) < 0) {
        na_err("reload failed, keeping the running config and rules: %s", err.msg);
        na_config_free(cfg);
        d->stats.reloads_failed++;
        na_notify("READY=1\nSTATUS=reload failed; serving the previous config and rules");
        return;
    }
    if (build_rules(cfg, d->cfg->state_dir, d->n_slots, &rs, &model, &taggers, &err) < 0) {
        na_err("reload failed, keeping the running config and rules: %s", err.msg);
        na_curve_wipe(&keys);
        na_allowlist_free(allow);
        na_config_free(cfg);
        d->stats.reloads_failed++;
        na_notify("READY=1");
        return;
    }
    /* Keys are socket options, fixed at bind and connect: a change waits for
     * a restart. The allowlist is the ZAP handler's, and changes now. */
    if (memcmp(&keys, &d->curve, sizeof(keys)) != 0)
        na_warn("reload: the CURVE keys in the config changed; they take effect at the "
                "next start");
    na_curve_wipe(&keys);
    if (d->curve.publish_on && allow == NULL) {
        /* CURVE was turned off in the file: the running server keeps an
         * allowlist until the restart, the one it had. */
        swap_str(&d->cfg->publish_curve_allow_dir, &cfg->publish_curve_allow_dir);
    } else if (d->curve.publish_on) {
        na_allowlist_free(d->allow);
        d->allow = allow;
        allow = NULL;
    } else if (allow) {
        swap_str(&d->cfg->publish_curve_allow_dir, &cfg->publish_curve_allow_dir);
    }
    na_allowlist_free(allow);
    /* What the running sockets, files and timers were made with stays, and
     * so does what the command line set; the rest is new. */
    size_t ignored = na_config_keep_restart(cfg, d->cfg, warn_restart_key, d);
    d->stats.reload_ignored_keys += ignored;
    if ((cfg->dedup_window > 0) != (d->cfg->dedup_window > 0)) {
        na_warn("reload: dedup.window %s needs a restart; keeping it %s",
                cfg->dedup_window > 0 ? "turned on" : "turned off",
                d->cfg->dedup_window > 0 ? "on" : "off");
        cfg->dedup_window = d->cfg->dedup_window;
        d->stats.reload_ignored_keys++;
    }
    na_config_free(d->cfg);
    d->cfg = cfg;
    free_taggers(d->taggers, d->n_slots);
    na_model_free(d->model);
    na_ruleset_free(d->rs);
    d->rs = rs;
    d->model = model;
    d->taggers = taggers;
    na_log_set_level(cfg->log_level);
    d->stats.reloads_ok++;
    na_delivery_reconfigure(d);
    na_info("reloaded: %zu tags, %zu actors, %zu patterns, %s%s", na_ruleset_tag_count(rs),
            na_ruleset_actor_count(rs), na_ruleset_pattern_count(rs),
            model ? "model " : "no model", model ? na_model_version(model) : "");
    if (d->curve.publish_on)
        na_info("reloaded: %zu allowed consumer key(s) from %s",
                na_allowlist_count(d->allow), d->cfg->publish_curve_allow_dir);
    na_notifyf("READY=1\nSTATUS=reloaded: %zu tags, %zu patterns",
               na_ruleset_tag_count(rs), na_ruleset_pattern_count(rs));
}

/* libevent runs a signal's callback once per signal caught, so SIGHUPs that
 * arrive while a reload compiles (hundreds of milliseconds) would queue up
 * one reload each, and a burst of them would hold the feed up for as long
 * again after it ends. Any number of SIGHUPs before the reload starts make
 * one reload, run from the loop like any other event. */
static void daemon_on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct na_daemon *d = arg;
    (void)sig;
    (void)what;

    if (d->reload_pending)
        return;
    d->reload_pending = true;
    event_active(d->reload_ev, EV_TIMEOUT, 0);
}

/* Stopping: articles already on their way to the feed socket count as
 * received, so the loop keeps serving until the feed has been quiet for one
 * interval (bounded by linger_ms); then it ends, and the PUB socket's linger
 * bounds how long unsent alerts may hold up the exit. */
#define STOP_QUIET_MS 100

static void daemon_on_stop_tick(evutil_socket_t fd, short what, void *arg)
{
    struct na_daemon *d = arg;
    (void)fd;
    (void)what;

    na_feed_drain(d, (size_t)d->cfg->batch);
    bool quiet = d->stats.received == d->stop_received;
    d->stop_received = d->stats.received;
    if (quiet || na_mono_ms() >= d->stop_deadline_ms)
        event_base_loopbreak(d->base);
}

static void daemon_on_stop(evutil_socket_t sig, short what, void *arg)
{
    struct na_daemon *d = arg;
    struct timeval tv = {0, STOP_QUIET_MS * 1000};
    (void)what;

    if (d->stopping)
        return;
    na_notify("STOPPING=1");
    na_info("signal %d: stopping once the feed is quiet", (int)sig);
    d->stopping = true;
    d->stop_received = d->stats.received;
    d->stop_deadline_ms =
        na_mono_ms() +
        (d->cfg->linger_ms > STOP_QUIET_MS ? d->cfg->linger_ms : STOP_QUIET_MS);
    d->stop_timer = event_new(d->base, -1, EV_PERSIST, daemon_on_stop_tick, d);
    if (d->stop_timer == NULL || event_add(d->stop_timer, &tv) < 0)
        event_base_loopbreak(d->base);
}

void na_hold_sighup(bool hold)
{
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(hold ? SIG_BLOCK : SIG_UNBLOCK, &hup, NULL);
}

static struct event *add_signal(struct na_daemon *d, int sig, event_callback_fn cb)
{
    struct event *ev = evsignal_new(d->base, sig, cb, d);
    if (ev && event_add(ev, NULL) < 0) {
        event_free(ev);
        return NULL;
    }
    return ev;
}

/* The loop. A handler that drains a bounded batch re-activates itself when
 * more is waiting, and libevent runs an event activated during its pass
 * over the active events in that same pass: under a sustained feed the
 * loop would never poll again, and signals, timers (the watchdog among
 * them) and the catch-up socket would wait until the feed ran dry. So the
 * loop polls after every callback, and an active handler takes its turn
 * behind whatever became ready meanwhile. */
static struct event_base *loop_new(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base = NULL;

    if (ec && event_config_set_max_dispatch_interval(ec, NULL, 1, 0) == 0)
        base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base;
}

/* The tagging threads, and a round of eight articles per thread: enough that
 * waking the helpers is a small part of a round, few enough that a round's
 * taggers stay small (some 20 KB of Vectorscan scratch each). One thread
 * tags each article as it comes, with no rounds at all. */
static int setup_tagging(struct na_daemon *d, struct na_error *err)
{
    long long threads = d->cfg->tag_threads;
    if (threads == 0) {
        /* At full load ZeroMQ's I/O thread takes most of a core (94% on 2
         * cores while a burst arrives), so it keeps one. On 2 cores a
         * second tagging thread bought 0.92x to 1.22x in side-by-side runs
         * of bench/run.py: nothing to show for the extra thread. */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus <= 2 ? 1 : cpus - 1 > 8 ? 8 : cpus - 1;
    }
    d->n_slots = threads == 1 ? 1 : (size_t)threads * 8;
    d->pending = calloc(d->n_slots, sizeof(*d->pending));
    d->jobs = calloc(d->n_slots, sizeof(*d->jobs));
    if (d->pending == NULL || d->jobs == NULL)
        return na_error_set(err, "out of memory");
    d->pool = na_tagpool_new((size_t)threads, err);
    return d->pool ? 0 : -1;
}

struct na_daemon *na_daemon_new(struct na_config *cfg, struct na_error *err,
                                int *exit_code)
{
    struct na_daemon *d = calloc(1, sizeof(*d));

    *exit_code = NA_EXIT_RUNTIME;
    if (d == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    d->cfg = cfg;
    d->started_at_ms = na_now_ms();
    if (setup_tagging(d, err) < 0)
        goto fail;
    if (build_rules(cfg, cfg->state_dir, d->n_slots, &d->rs, &d->model, &d->taggers, err) < 0) {
        *exit_code = NA_EXIT_CONFIG;
        goto fail;
    }
    if (load_curve(cfg, &d->curve, &d->allow, err) < 0) {
        *exit_code = NA_EXIT_CONFIG;
        goto fail;
    }
    na_curve_warn_plain(cfg, &d->curve);
    d->builder = na_alert_builder_new((size_t)cfg->max_evidence_bytes);
    d->base = loop_new();
    d->zctx = zmq_ctx_new();
    if (d->builder == NULL || d->base == NULL || d->zctx == NULL) {
        na_error_set(err, "cannot set up the event loop or ZeroMQ");
        goto fail;
    }
    /* The journal first: seq and epoch come from it. The ZAP handler before
     * any CURVE socket binds: a handshake without it would let every client
     * in. Publish before the feed, so that no alert is produced before its
     * socket is up. */
    if (na_delivery_open(d, err) < 0 ||
        (d->curve.publish_on && na_zap_open(d, err) < 0) || na_publish_open(d, err) < 0 ||
        na_catchup_open(d, err) < 0 || na_feed_open(d, err) < 0 ||
        na_http_open(d, err) < 0)
        goto fail;
    signal(SIGPIPE, SIG_IGN);
    d->sig_term = add_signal(d, SIGTERM, daemon_on_stop);
    d->sig_int = add_signal(d, SIGINT, daemon_on_stop);
    d->reload_ev = event_new(d->base, -1, 0, daemon_on_reload, d);
    d->sig_hup = add_signal(d, SIGHUP, daemon_on_hup);
    if (!d->sig_term || !d->sig_int || !d->sig_hup || !d->reload_ev) {
        na_error_set(err, "cannot install signal handlers");
        goto fail;
    }
    /* main() held SIGHUP back until now; one sent meanwhile is delivered
     * here and asks for a reload. */
    na_hold_sighup(false);
    na_info("ready: %zu tags, %zu actors, %zu patterns, %zu tagging thread(s), epoch %llu",
            na_ruleset_tag_count(d->rs), na_ruleset_actor_count(d->rs),
            na_ruleset_pattern_count(d->rs), na_tagpool_threads(d->pool),
            (unsigned long long)d->epoch);
    return d;
fail:
    d->cfg = NULL; /* still the caller's */
    na_daemon_free(d);
    return NULL;
}

static void daemon_on_status(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    log_status(arg, "status");
    notify_status(arg);
}

/* The watchdog is fed from a timer on the loop itself, not from a thread:
 * a loop stuck in one callback stops the pings, and systemd restarts it. */
static void daemon_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    na_notify("WATCHDOG=1");
}

static void daemon_on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    na_publish_heartbeat(arg);
}

static struct event *add_timer(struct na_daemon *d, int64_t usec, event_callback_fn cb)
{
    struct timeval tv = {(time_t)(usec / 1000000), (suseconds_t)(usec % 1000000)};
    struct event *ev = event_new(d->base, -1, EV_PERSIST, cb, d);
    if (ev && event_add(ev, &tv) < 0) {
        event_free(ev);
        return NULL;
    }
    return ev;
}

/* --ready-file: a JSON object saying where this daemon serves, written
 * whole (a temporary file renamed over it) once the loop is about to run,
 * so that a test or a script can start as soon as the file exists and read
 * the ports that '*' or 0 resolved to. */
static int write_ready_file(struct na_daemon *d)
{
    char tmp[4096];
    char epoch[24];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", d->ready_file) >= (int)sizeof(tmp)) {
        na_err("--ready-file: the path is too long");
        return -1;
    }
    snprintf(epoch, sizeof(epoch), "%llu", (unsigned long long)d->epoch);
    json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "pid", (json_int_t)getpid(),
                          "version", NA_VERSION, "epoch", epoch, "publish", d->bound_publish,
                          "catchup", d->bound_catchup, "metrics", d->bound_http);
    int rc = j ? json_dump_file(j, tmp, JSON_COMPACT) : -1;
    json_decref(j);
    if (rc < 0 || rename(tmp, d->ready_file) < 0) {
        na_err("--ready-file: cannot write %s: %s", d->ready_file, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int na_daemon_run(struct na_daemon *d)
{
    uint64_t watchdog_usec = na_notify_watchdog_usec();

    d->status_mono_ms = na_mono_ms();
    if (d->cfg->status_interval_ms > 0 &&
        (d->status_ev =
             add_timer(d, d->cfg->status_interval_ms * 1000, daemon_on_status)) == NULL) {
        na_err("cannot start the status timer");
        return NA_EXIT_RUNTIME;
    }
    if (d->cfg->heartbeat_ms > 0 &&
        (d->heartbeat_ev =
             add_timer(d, d->cfg->heartbeat_ms * 1000, daemon_on_heartbeat)) == NULL) {
        na_err("cannot start the heartbeat timer");
        return NA_EXIT_RUNTIME;
    }
    if (watchdog_usec > 0) {
        /* Half the interval, as sd_watchdog_enabled(3) recommends. */
        int64_t every =
            (int64_t)(watchdog_usec / 2) > 0 ? (int64_t)(watchdog_usec / 2) : 1;
        if ((d->watchdog_ev = add_timer(d, every, daemon_on_watchdog)) == NULL) {
            na_err("cannot start the watchdog timer");
            return NA_EXIT_RUNTIME;
        }
        na_info("watchdog: pinging every %lld ms", (long long)(every / 1000));
    }
    if (d->ready_file && write_ready_file(d) < 0)
        return NA_EXIT_RUNTIME;
    na_notifyf("READY=1\nSTATUS=serving on %s; %zu tags loaded", d->cfg->publish_endpoint,
               na_ruleset_tag_count(d->rs));
    int rc = event_base_dispatch(d->base);
    if (d->ready_file)
        unlink(d->ready_file);
    /* One last try: a disk freed meanwhile lets the held alerts out. */
    if (na_delivery_holding(d) && na_delivery_retry(d) < 0) {
        na_err("journal: still failing at stop: %zu alerts were neither journalled nor "
               "published (the next start numbers on from the last published one)",
               na_delivery_held(d));
        rc = -1;
    }
    log_status(d, "stopped");
    return rc < 0 ? NA_EXIT_RUNTIME : NA_EXIT_OK;
}

void na_daemon_free(struct na_daemon *d)
{
    if (d == NULL)
        return;
    if (d->feed_ev)
        event_free(d->feed_ev);
    if (d->feed_settle_ev)
        event_free(d->feed_settle_ev);
    if (d->status_ev)
        event_free(d->status_ev);
    if (d->watchdog_ev)
        event_free(d->watchdog_ev);
    if (d->heartbeat_ev)
        event_free(d->heartbeat_ev);
    if (d->http)
        evhttp_free(d->http);
    if (d->sig_term)
        event_free(d->sig_term);
    if (d->sig_int)
        event_free(d->sig_int);
    if (d->sig_hup)
        event_free(d->sig_hup);
    if (d->reload_ev)
        event_free(d->reload_ev);
    if (d->stop_timer)
        event_free(d->stop_timer);
    na_monitor_free(d->feed_mon);
    na_monitor_free(d->pub_mon);
    if (d->zap_ev)
        event_free(d->zap_ev);
    /* Flushes the journal (and fdatasyncs it) before the sockets go. */
    na_delivery_close(d);
    if (d->sub)
        zmq_close(d->sub);
    if (d->pub)
        zmq_close(d->pub);
    if (d->zap)
        zmq_close(d->zap);
    if (d->zctx)
        zmq_ctx_term(d->zctx);
    if (d->base)
        event_base_free(d->base);
    na_alert_builder_free(d->builder);
    na_tagpool_free(d->pool);
    free_taggers(d->taggers, d->n_slots);
    free(d->pending);
    free(d->jobs);
    na_model_free(d->model);
    na_ruleset_free(d->rs);
    na_allowlist_free(d->allow);
    na_curve_wipe(&d->curve);
    na_config_free(d->cfg);
    free(d);
}
