/* What GET /metrics reports: the daemon's counters in the Prometheus text
 * format (0.0.4), from one table of metric families, plus the two pieces of
 * bookkeeping only metrics need (the processing-time histogram and the
 * per-source feed gap table). http.c serves it; daemon.c feeds it. */
#include <event2/buffer.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "newsalert/model.h"
#include "newsalertd.h"

/* Upper bounds in ns and, in the same order, as Prometheus "le" labels.
 * Decoding and tagging one article takes tens of microseconds to a few
 * milliseconds; the wide tail is there to see a pathological article. */
static const uint64_t bucket_ns[NA_HIST_BUCKETS] = {
    10000,   25000,   50000,   100000,   250000,   500000,
    1000000, 2500000, 5000000, 10000000, 50000000, 250000000,
};
static const char *const bucket_le[NA_HIST_BUCKETS] = {
    "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005",
    "0.001", "0.0025",  "0.005", "0.01",   "0.05",    "0.25",
};

void na_metrics_observe(struct na_histogram *h, uint64_t ns)
{
    size_t i = 0;
    while (i < NA_HIST_BUCKETS && ns > bucket_ns[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum_ns += ns;
}

void na_metrics_feed_seq(struct na_metrics *m, const char *source, uint64_t seq)
{
    struct na_feed_source *s = NULL;

    if (seq == 0)
        return;
    if (source == NULL)
        source = "";
    if (strlen(source) > NA_FEED_SOURCE_MAX) {
        m->untracked_sources++;
        return;
    }
    /* Linear: the table is small, and a feed has a handful of sources. */
    for (size_t i = 0; i < m->n_sources && s == NULL; i++)
        if (!strcmp(m->sources[i].name, source))
            s = &m->sources[i];
    if (s == NULL) {
        if (m->n_sources == NA_MAX_FEED_SOURCES) {
            /* The name is not logged: it is the feed's, unchecked text. */
            if (m->untracked_sources++ == 0)
                na_warn("feed gaps: more than %d sources; new ones are not tracked",
                        NA_MAX_FEED_SOURCES);
            return;
        }
        s = &m->sources[m->n_sources++];
        memcpy(s->name, source, strlen(source) + 1);
        s->last_seq = seq;
        return;
    }
    if (seq > s->last_seq + 1)
        s->missing += seq - s->last_seq - 1;
    s->last_seq = seq;
}

/* Label values are escaped as the text format requires: \\, \" and \n. */
static void put_label_value(struct evbuffer *out, const char *v)
{
    const char *run = v;
    for (; *v; v++) {
        const char *esc = *v == '\\'   ? "\\\\"
                          : *v == '"'  ? "\\\""
                          : *v == '\n' ? "\\n"
                                       : NULL;
        if (esc == NULL)
            continue;
        evbuffer_add(out, run, (size_t)(v - run));
        evbuffer_add(out, esc, 2);
        run = v + 1;
    }
    evbuffer_add(out, run, (size_t)(v - run));
}

static void put_labelled(struct evbuffer *out, const char *name, const char *label,
                         const char *value, uint64_t n)
{
    evbuffer_add_printf(out, "%s{%s=\"", name, label);
    put_label_value(out, value);
    evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)n);
}

static void put_value(struct evbuffer *out, const char *name, uint64_t n)
{
    evbuffer_add_printf(out, "%s %llu\n", name, (unsigned long long)n);
}

static void emit_build_info(const struct na_daemon *d, struct evbuffer *out,
                            const char *name)
{
    (void)d;
    put_labelled(out, name, "version", NA_VERSION, 1);
}

static void emit_model_info(const struct na_daemon *d, struct evbuffer *out,
                            const char *name)
{
    put_labelled(out, name, "version", d->model ? na_model_version(d->model) : "none", 1);
}

static void emit_start_time(const struct na_daemon *d, struct evbuffer *out,
                            const char *name)
{
    evbuffer_add_printf(out, "%s %.3f\n", name, (double)d->started_at_ms / 1000.0);
}

static void emit_rejected(const struct na_daemon *d, struct evbuffer *out,
                          const char *name)
{
    /* Every reason, zero or not, so that rate() works from the first one. */
    for (int i = NA_REJECT_NONE + 1; i < NA_REJECT_COUNT; i++)
        put_labelled(out, name, "reason", na_reject_name(i), d->stats.rejected[i]);
}

static void emit_published(const struct na_daemon *d, struct evbuffer *out,
                           const char *name)
{
    /* Topics seen so far (tags dropped by a reload keep their count), then
     * loaded tags that have not published yet, at zero. */
    for (size_t i = 0; i < d->n_topics; i++)
        put_labelled(out, name, "tag", d->topics[i].tag, d->topics[i].published);
    for (size_t t = 0; t < na_ruleset_tag_count(d->rs); t++) {
        const char *tag = na_ruleset_tag(d->rs, t)->name;
        bool seen = false;
        for (size_t i = 0; i < d->n_topics && !seen; i++)
            seen = !strcmp(d->topics[i].tag, tag);
        if (!seen)
            put_labelled(out, name, "tag", tag, 0);
    }
}

static void emit_reloads(const struct na_daemon *d, struct evbuffer *out,
                         const char *name)
{
    put_labelled(out, name, "result", "ok", d->stats.reloads_ok);
    put_labelled(out, name, "result", "failed", d->stats.reloads_failed);
}

static void emit_feed_gaps(const struct na_daemon *d, struct evbuffer *out,
                           const char *name)
{
    for (size_t i = 0; i < d->metrics.n_sources; i++)
        put_labelled(out, name, "source", d->metrics.sources[i].name,
                     d->metrics.sources[i].missing);
}

static void emit_untracked(const struct na_daemon *d, struct evbuffer *out,
                           const char *name)
{
    put_value(out, name, d->metrics.untracked_sources);
}

static void emit_rules(const struct na_daemon *d, struct evbuffer *out, const char *name)
{
    put_value(out, name, na_ruleset_tag_count(d->rs));
}

static void emit_actors(const struct na_daemon *d, struct evbuffer *out, const char *name)
{
    put_value(out, name, na_ruleset_actor_count(d->rs));
}

static void emit_patterns(const struct na_daemon *d, struct evbuffer *out,
                          const char *name)
{
    put_value(out, name, na_ruleset_pattern_count(d->rs));
}

static void emit_endpoints(const struct na_daemon *d, struct evbuffer *out,
                           const char *name)
{
    put_value(out, name, d->cfg->feed_endpoints.n);
}

static void emit_connected(const struct na_daemon *d, struct evbuffer *out,
                           const char *name)
{
    put_value(out, name, (uint64_t)d->metrics.feed_connected);
}

static void emit_subscribers(const struct na_daemon *d, struct evbuffer *out,
                             const char *name)
{
    put_value(out, name, (uint64_t)na_monitor_connections(d->pub_mon));
}

static void emit_processing(const struct na_daemon *d, struct evbuffer *out,
                            const char *name)
{
    const struct na_histogram *h = &d->metrics.processing;
    uint64_t cumulative = 0;

    for (size_t i = 0; i < NA_HIST_BUCKETS; i++) {
        cumulative += h->counts[i];
        evbuffer_add_printf(out, "%s_bucket{le=\"%s\"} %llu\n", name, bucket_le[i],
                            (unsigned long long)cumulative);
    }
    evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name,
                        (unsigned long long)h->count);
    evbuffer_add_printf(out, "%s_sum %.9f\n", name, (double)h->sum_ns / 1e9);
    evbuffer_add_printf(out, "%s_count %llu\n", name, (unsigned long long)h->count);
}

static void emit_journal_bytes(const struct na_daemon *d, struct evbuffer *out,
                               const char *name)
{
    put_value(out, name, na_delivery_journal_bytes(d));
}

static void emit_journal_syncs(const struct na_daemon *d, struct evbuffer *out,
                               const char *name)
{
    put_value(out, name, na_delivery_journal_syncs(d));
}

static void emit_journal_held(const struct na_daemon *d, struct evbuffer *out,
                              const char *name)
{
    put_value(out, name, na_delivery_held(d));
}

static void emit_quarantine_bytes(const struct na_daemon *d, struct evbuffer *out,
                                  const char *name)
{
    put_value(out, name, na_delivery_quarantine_bytes(d));
}

static void emit_last_seq(const struct na_daemon *d, struct evbuffer *out,
                          const char *name)
{
    put_value(out, name, d->seq);
}

static void emit_tagging_threads(const struct na_daemon *d, struct evbuffer *out,
                                 const char *name)
{
    put_value(out, name, na_tagpool_threads(d->pool));
}

static void emit_rss(const struct na_daemon *d, struct evbuffer *out, const char *name)
{
    (void)d;
    put_value(out, name, (uint64_t)na_rss_kib() * 1024);
}

/* One row per metric family. A plain counter names its field in struct
 * na_stats; anything with labels, a gauge or a histogram has an emitter.
 * New features add their rows here; nothing is listed for what the daemon
 * does not do. */
struct family {
    const char *name;
    const char *type;
    const char *help;
    size_t stat; /* offsetof(struct na_stats, ...), when emit is NULL */
    void (*emit)(const struct na_daemon *d, struct evbuffer *out, const char *name);
};

#define STAT(field) offsetof(struct na_stats, field), NULL
#define EMIT(fn) 0, fn

static const struct family families[] = {
    {"newsalertd_build_info", "gauge", "Build of the running daemon (always 1).",
     EMIT(emit_build_info)},
    {"newsalertd_model_info", "gauge",
     "The learned layer's model in service, by version (\"none\": the rules alone; always "
     "1).",
     EMIT(emit_model_info)},
    {"newsalertd_start_time_seconds", "gauge", "When the daemon started, in Unix time.",
     EMIT(emit_start_time)},
    {"newsalertd_articles_received_total", "counter",
     "Feed messages received, valid or not.", STAT(received)},
    {"newsalertd_articles_decoded_total", "counter",
     "Feed messages that decoded into a valid article.", STAT(decoded)},
    {"newsalertd_articles_rejected_total", "counter",
     "Feed messages rejected, by reason.", EMIT(emit_rejected)},
    {"newsalertd_articles_untagged_total", "counter", "Valid articles that fired no tag.",
     STAT(untagged)},
    {"newsalertd_articles_alerted_total", "counter",
     "Valid articles that produced an alert.", STAT(alerted)},
    {"newsalertd_alerts_published_total", "counter",
     "Alert messages sent on the PUB socket, by tag (one per fired tag).",
     EMIT(emit_published)},
    {"newsalertd_heartbeats_total", "counter",
     "Heartbeats sent on the topic ~hb (publish.heartbeat_ms).", STAT(heartbeats)},
    {"newsalertd_publish_errors_total", "counter",
     "Alert messages that could not be encoded or handed to ZeroMQ.",
     STAT(publish_errors)},
    {"newsalertd_feed_gaps_total", "counter",
     "Articles missing from the feed by source, from jumps in feed_seq.",
     EMIT(emit_feed_gaps)},
    {"newsalertd_feed_gap_untracked_total", "counter",
     "Articles with a feed_seq whose source the gap table had no room for.",
     EMIT(emit_untracked)},
    {"newsalertd_reloads_total", "counter", "Reloads on SIGHUP, by result.",
     EMIT(emit_reloads)},
    {"newsalertd_reload_ignored_keys_total", "counter",
     "Config keys a reload found changed but cannot apply before a restart (each is "
     "named in the log).",
     STAT(reload_ignored_keys)},
    {"newsalertd_rules_loaded", "gauge", "Tags (rules files) in service.",
     EMIT(emit_rules)},
    {"newsalertd_rule_patterns_loaded", "gauge",
     "Patterns in the compiled rules database.", EMIT(emit_patterns)},
    {"newsalertd_actors_loaded", "gauge", "Actors (states, organisations) known.",
     EMIT(emit_actors)},
    {"newsalertd_feed_endpoints_configured", "gauge",
     "Feed endpoints the SUB socket connects to.", EMIT(emit_endpoints)},
    {"newsalertd_feed_endpoints_connected", "gauge",
     "Feed connections up now, as seen by the SUB socket's monitor.",
     EMIT(emit_connected)},
    {"newsalertd_publish_connections", "gauge",
     "Connections to the alert socket now (subscribers, and peers still in the "
     "handshake).",
     EMIT(emit_subscribers)},
    {"newsalertd_articles_duplicate_total", "counter",
     "Articles dropped as a (source, id, revision) already seen.", STAT(duplicates)},
    {"newsalertd_articles_revised_total", "counter",
     "Higher revisions of seen articles, tagged again.", STAT(revisions)},
    {"newsalertd_articles_quarantined_total", "counter",
     "Rejected messages written to the quarantine.", STAT(quarantined)},
    {"newsalertd_quarantine_errors_total", "counter",
     "Rejected messages the quarantine could not keep.", STAT(quarantine_errors)},
    {"newsalertd_publish_dropped_total", "counter",
     "Alert copies the alert socket refused as a whole (EAGAIN). What one "
     "subscriber's full pipe drops, libzmq does not count; the subscriber sees it "
     "in seq and the heartbeat and repairs it from catch-up.",
     STAT(publish_dropped)},
    {"newsalertd_journal_errors_total", "counter", "Journal writes or syncs that failed.",
     STAT(journal_errors)},
    {"newsalertd_journal_holds_total", "counter",
     "Times the journal refused a batch, which was held (feed paused) until it went in.",
     STAT(journal_holds)},
    {"newsalertd_journal_held_alerts", "gauge",
     "Alerts held unpublished because the journal refused them (0 when it is writable).",
     EMIT(emit_journal_held)},
    {"newsalertd_journal_syncs_total", "counter",
     "fdatasyncs of the journal done in the background (fsync interval).",
     EMIT(emit_journal_syncs)},
    {"newsalertd_journal_size_bytes", "gauge", "Bytes in the journal's segment files.",
     EMIT(emit_journal_bytes)},
    {"newsalertd_quarantine_size_bytes", "gauge", "Bytes in the quarantine's files.",
     EMIT(emit_quarantine_bytes)},
    {"newsalertd_alert_last_seq", "gauge", "The seq of the newest alert.",
     EMIT(emit_last_seq)},
    {"newsalertd_catchup_requests_total", "counter",
     "Requests received on the catch-up endpoint.", STAT(catchup_requests)},
    {"newsalertd_catchup_refused_total", "counter",
     "Catch-up requests answered with an error.", STAT(catchup_refused)},
    {"newsalertd_catchup_alerts_total", "counter",
     "Alerts sent through the catch-up endpoint.", STAT(catchup_alerts)},
    {"newsalertd_auth_failures_total", "counter",
     "CURVE handshakes refused (ZAP, wrong keys, plain peers).", STAT(auth_failures)},
    {"newsalertd_feed_disconnects_total", "counter",
     "Established feed connections that dropped.", STAT(feed_disconnects)},
    {"newsalertd_feed_reconnects_total", "counter",
     "Feed reconnects the daemon made after a drop or a failed handshake.",
     STAT(feed_reconnects)},
    {"newsalertd_articles_match_limited_total", "counter",
     "Articles whose scan stopped at limits.max_matches.", STAT(match_limited)},
    {"newsalertd_tagging_threads", "gauge",
     "Threads that tag articles, the event loop's own included (tagger.threads).",
     EMIT(emit_tagging_threads)},
    {"newsalertd_tagging_rounds_total", "counter",
     "Rounds of articles tagged in parallel, on more than one thread.",
     STAT(tag_rounds)},
    {"newsalertd_memory_trims_total", "counter",
     "Times the heap was handed back to the system after a burst had drained.",
     STAT(memory_trims)},
    {"process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
     EMIT(emit_rss)},
    {"newsalertd_article_processing_seconds", "histogram",
     "Time to decode, tag and publish one feed message.", EMIT(emit_processing)},
};

void na_metrics_render(const struct na_daemon *d, struct evbuffer *out)
{
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        const struct family *f = &families[i];
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help,
                            f->name, f->type);
        if (f->emit)
            f->emit(d, out, f->name);
        else
            put_value(out, f->name,
                      *(const uint64_t *)((const char *)&d->stats + f->stat));
    }
}
