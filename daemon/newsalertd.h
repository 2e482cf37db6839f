/* newsalertd's modules and the one context struct they share. The daemon
 * wires libnewsalert (bytes in, alerts out) to ZeroMQ, libevent and systemd;
 * there is no mutable global state outside this struct and the logger. */
#ifndef NEWSALERTD_H
#define NEWSALERTD_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/alert.h"
#include "newsalert/allowlist.h"
#include "newsalert/article.h"
#include "newsalert/cert.h"
#include "newsalert/endpoint.h"
#include "newsalert/ruleset.h"
#include "newsalert/tagger.h"

/* sysexits.h values, spelled out where they are used. */
#define NA_EXIT_OK 0
#define NA_EXIT_RUNTIME 1
#define NA_EXIT_USAGE 64
#define NA_EXIT_CONFIG 78

/* ---- log.c ---- */
enum na_log_level {
    NA_LOG_ERROR = 3,
    NA_LOG_WARNING = 4,
    NA_LOG_INFO = 6,
    NA_LOG_DEBUG = 7
};

void na_log_init(enum na_log_level level);
void na_log_set_level(enum na_log_level level);
int na_log_level_parse(const char *s, enum na_log_level *out);
void na_log(enum na_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A burst of lines per window, the rest counted: for logs that input from
 * the network can trigger at any rate. */
struct na_ratelimit {
    int64_t window_start_ms;
    unsigned logged;
    uint64_t suppressed;
};
/* True when a line may be logged at now_ms (monotonic); *suppressed is then
 * how many were dropped since the last line that got through. */
bool na_ratelimit_pass(struct na_ratelimit *rl, int64_t now_ms, uint64_t *suppressed);
#define na_err(...) na_log(NA_LOG_ERROR, __VA_ARGS__)
#define na_warn(...) na_log(NA_LOG_WARNING, __VA_ARGS__)
#define na_info(...) na_log(NA_LOG_INFO, __VA_ARGS__)
#define na_debug(...) na_log(NA_LOG_DEBUG, __VA_ARGS__)

/* ---- config.c ---- */
struct na_strlist {
    char **items;
    size_t n;
};

struct na_config {
    char *path;
    struct na_strlist feed_endpoints;
    struct na_strlist feed_topics;
    long long feed_rcvhwm;
    char *publish_endpoint;
    char *publish_curve_secret_key; /* "" = CURVE off; resolved like rules_dir */
    char *publish_curve_allow_dir;
    char *feed_curve_server_key; /* "" = CURVE off */
    char *feed_curve_secret_key;
    long long publish_sndhwm;
    long long heartbeat_ms; /* publish.heartbeat_ms: 0 off */
    long long linger_ms;
    char *rules_dir;   /* resolved against the config file's directory */
    char *actors_file; /* likewise */
    char *model_file;  /* likewise; "" = the rules alone decide */
    struct na_limits limits;
    long long max_matches;
    long long max_evidence;
    long long max_evidence_bytes;
    long long batch;
    long long tag_threads; /* 0: one per CPU but one (fixed at start) */
    long long status_interval_ms;
    enum na_log_level log_level;
    char *metrics_listen; /* "ADDR:PORT", or "off" / "" for no HTTP server */
    /* Delivery (delivery.c): state on disk, dedup, catch-up. */
    char *state_dir; /* journal/ and quarantine/ live here */
    long long journal_segment_bytes;
    long long journal_max_bytes;
    long long journal_max_age_s;
    char *journal_fsync; /* always, interval or never */
    long long journal_fsync_interval_ms;
    long long dedup_window;
    long long quarantine_max_bytes;
    long long quarantine_file_bytes;
    char *catchup_endpoint; /* "" or "off": none */
    long long catchup_batch;
    long long catchup_max_clients;
    long long catchup_max_range;
    uint64_t from_cmdline; /* bit i: options[i] was set on the command line */
};

/* Loads path over the defaults. Returns NULL with "file:line: what is wrong"
 * in err. The caller owns the result. */
struct na_config *na_config_load(const char *path, struct na_error *err);
void na_config_free(struct na_config *cfg);
/* Replaces a list with one given on the command line (copies the strings). */
int na_config_set_list(struct na_strlist *list, char *const *items, size_t n);
int na_config_set_string(char **field, const char *value);
/* Sets key (a string or list option) to the command line's values, with
 * the same checks as in the file; marks it so that a reload keeps it. */
int na_config_override(struct na_config *cfg, const char *key, char *const *values,
                       size_t n, struct na_error *err);
/* For a reload: the keys read only at start (sockets, files, timers) take
 * their running values in next, as do those set on the command line.
 * Calls changed() for each key whose value in the file differs from the
 * running one and returns how many did. */
size_t na_config_keep_restart(struct na_config *next, struct na_config *running,
                              void (*changed)(const char *key, void *arg), void *arg);
/* Prints the option table (key, default, help) for --help-config. */
void na_config_print_reference(FILE *out);

/* ---- notify.c: sd_notify when built with libsystemd, nothing otherwise ---- */
void na_notify(const char *state);
void na_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The watchdog interval the service manager expects pings within, in
 * microseconds: WATCHDOG_USEC when it is set and WATCHDOG_PID is unset or
 * ours; 0 when there is no watchdog (or no libsystemd). */
uint64_t na_notify_watchdog_usec(void);
/* Whether this build talks to systemd at all. */
bool na_notify_supported(void);

/* ---- metrics.c: what /metrics reports, beyond the plain counters ---- */
/* Upper bounds of the processing-time histogram's buckets, in nanoseconds;
 * one more bucket (+Inf) takes the rest. */
#define NA_HIST_BUCKETS 12
struct na_histogram {
    uint64_t counts[NA_HIST_BUCKETS + 1]; /* per bucket, not cumulative */
    uint64_t count;
    uint64_t sum_ns;
};

/* Feed gaps are tracked per source, in a table bounded by configuration
 * size, not by input: sources beyond it, or with absurdly long names, are
 * not tracked. */
#define NA_MAX_FEED_SOURCES 64
#define NA_FEED_SOURCE_MAX 96
struct na_feed_source {
    char name[NA_FEED_SOURCE_MAX + 1];
    uint64_t last_seq;
    uint64_t missing; /* sum of the jumps in feed_seq beyond 1 */
};

struct na_metrics {
    struct na_histogram processing;
    struct na_feed_source sources[NA_MAX_FEED_SOURCES];
    size_t n_sources;
    uint64_t untracked_sources; /* articles whose source had no room */
    int feed_connected;         /* from the SUB socket's monitor */
};

void na_metrics_observe(struct na_histogram *h, uint64_t ns);
/* Notes an article's (source, feed_seq); seq 0 means "not set" and is
 * ignored. A seq at or below the last one is taken as the publisher starting
 * over, not as a gap. */
void na_metrics_feed_seq(struct na_metrics *m, const char *source, uint64_t seq);
struct na_daemon;
struct evbuffer;
struct evhttp;
/* Appends the Prometheus text exposition (format 0.0.4) of d to out. */
void na_metrics_render(const struct na_daemon *d, struct evbuffer *out);

/* ---- daemon.c ---- */
struct na_stats {
    uint64_t received;
    uint64_t decoded;
    uint64_t rejected[NA_REJECT_COUNT];
    uint64_t untagged;
    uint64_t alerted;   /* articles that produced an alert */
    uint64_t published; /* alert messages sent, all topics */
    uint64_t publish_errors;
    uint64_t heartbeats; /* heartbeats sent on NA_HEARTBEAT_TOPIC */
    uint64_t reloads_ok, reloads_failed;
    uint64_t reload_ignored_keys; /* keys a reload found changed but cannot apply */
    uint64_t match_limited;    /* articles whose scan stopped at limits.max_matches */
    uint64_t auth_failures;    /* CURVE/ZAP handshakes refused, both sockets */
    uint64_t feed_disconnects; /* established feed connections that dropped */
    uint64_t feed_reconnects;  /* reconnects the daemon made (monitor.c) */
    uint64_t duplicates;       /* (source, id, revision) already seen: no alert */
    uint64_t revisions;        /* higher revisions of seen articles, re-tagged */
    uint64_t publish_dropped;  /* alert copies the socket refused as a whole */
    uint64_t journal_errors;   /* journal writes or syncs that failed */
    uint64_t journal_holds;    /* times the journal failed and a batch was held */
    uint64_t quarantined;      /* rejected messages written to the quarantine */
    uint64_t quarantine_errors;
    uint64_t catchup_requests, catchup_refused, catchup_alerts;
    uint64_t tag_rounds;   /* rounds tagged on more than one thread */
    uint64_t memory_trims; /* heap handed back after a burst (feed.c) */
};

/* ---- curve.c: keys, CURVE socket setup, the plain-endpoint warning ---- */
struct na_curve {
    bool publish_on, feed_on;
    char publish_secret[NA_Z85_KEY_LEN + 1];
    char publish_public[NA_Z85_KEY_LEN + 1];
    char feed_server[NA_Z85_KEY_LEN + 1];
    char feed_public[NA_Z85_KEY_LEN + 1];
    char feed_secret[NA_Z85_KEY_LEN + 1];
};

/* The ZAP domain of every socket the daemon serves with CURVE. */
#define NA_ZAP_DOMAIN "newsalertd"

/* Loads and checks every key file the config names (permissions, format, a
 * secret key that matches its public key). out holds secret keys: the
 * caller wipes it with na_curve_wipe. */
int na_curve_load(const struct na_config *cfg, struct na_curve *out,
                  struct na_error *err);
void na_curve_wipe(struct na_curve *c);
struct na_daemon;
/* Makes socket (not yet bound) a CURVE server with the daemon's publish key
 * pair and the ZAP domain, so that the daemon's ZAP handler and allowlist
 * decide who may connect. For every socket the daemon serves to consumers;
 * the socket stays the caller's. Requires d->zap to be bound already. */
int na_curve_server_setup(struct na_daemon *d, void *socket, struct na_error *err);
/* Makes socket (not yet connected) a CURVE client of the feed publisher. */
int na_curve_client_setup(struct na_daemon *d, void *socket, struct na_error *err);
/* Warns about each endpoint that is not loopback and has no CURVE. */
void na_curve_warn_plain(const struct na_config *cfg, const struct na_curve *c);
/* One refused handshake: counted in stats.auth_failures and logged
 * (rate-limited) with what was refused, the peer when known and the first
 * characters of the client's public key when known (never a secret). */
void na_auth_failure(struct na_daemon *d, const char *what, const char *peer,
                     const char *z85_key);

/* ---- zap.c: the ZAP 1.0 handler (RFC 27) for the consumer allowlist
 * (newsalert/allowlist.h) ---- */
/* Binds the handler on inproc://zeromq.zap.01 in d->zctx and serves it from
 * the loop. Before any CURVE socket binds. */
int na_zap_open(struct na_daemon *d, struct na_error *err);

/* ---- monitor.c: socket monitors, for handshake failures and drops ---- */
struct na_monitor;
/* Watches socket's events (before it binds or connects). name is "feed" or
 * "publish": the feed's monitor also reconnects an endpoint that libzmq
 * gave up on (it does after a protocol error such as an oversized frame).
 * Borrows socket and d. */
struct na_monitor *na_monitor_new(struct na_daemon *d, void *socket, const char *name,
                                  struct na_error *err);
void na_monitor_free(struct na_monitor *m);
/* A bound socket's peers now (accepted, not yet disconnected); 0 for the
 * feed's, which counts established connections in na_metrics instead. */
int na_monitor_connections(const struct na_monitor *m);

/* The heartbeat's topic, outside "alert." (alert.proto's Heartbeat). */
#define NA_HEARTBEAT_TOPIC "~hb"
/* ZMTP heartbeats on every socket: a PING every 2 s, and a peer silent
 * for 10 s is dropped (a connecting socket then reconnects). */
#define NA_ZMTP_HEARTBEAT_IVL_MS 2000
#define NA_ZMTP_HEARTBEAT_TIMEOUT_MS 10000

struct na_topic_seq {
    char tag[40];
    uint64_t seq;       /* last topic_seq given out */
    uint64_t published; /* messages sent on this topic */
};

struct na_daemon {
    struct event_base *base;
    void *zctx;
    void *sub;
    void *pub;
    struct event *feed_ev;
    bool feed_backlog;            /* a full batch since the queue last drained */
    struct event *feed_settle_ev; /* after a burst: hand memory back (feed.c) */
    long rss_trimmed_kib;         /* RSS after the last trim, or at the start */
    int64_t trimmed_at_ms;        /* when that was (na_mono_ms) */
    struct evhttp *http;
    /* What the sockets really bound (a port of 0 or '*' resolved), for the
     * log and the ready file; "" when off. */
    char bound_publish[256], bound_catchup[256], bound_http[80];
    const char *ready_file; /* --ready-file: written once serving, removed at exit */
    struct event *status_ev, *watchdog_ev, *heartbeat_ev;
    struct event *sig_term, *sig_int, *sig_hup;
    struct event *reload_ev; /* the reload itself, which SIGHUPs only ask for */
    bool reload_pending;     /* asked for and not started yet */
    struct na_config *cfg;
    struct na_ruleset *rs;
    struct na_model *model; /* NULL: the rules alone decide */
    /* Tagging: one tagger per slot of a round, the threads that run them,
     * and the round being gathered (see na_daemon_finish_round). */
    struct na_tagger **taggers;
    size_t n_slots;
    struct na_tagpool *pool;
    struct na_pending *pending;
    struct na_tag_job *jobs;
    size_t n_pending;
    struct na_alert_builder *builder;
    uint64_t seq;
    uint64_t epoch;
    struct na_topic_seq topics[NA_MAX_TAGS * 2];
    size_t n_topics;
    struct na_stats stats;
    struct na_ratelimit reject_rl[NA_REJECT_COUNT];
    struct na_ratelimit auth_rl, disconnect_rl;
    struct na_curve curve;      /* keys in service (loaded at start) */
    struct na_allowlist *allow; /* consumers' keys; replaced on SIGHUP */
    void *zap;                  /* ZAP handler, when publish CURVE is on */
    struct event *zap_ev;
    struct na_monitor *feed_mon, *pub_mon;
    struct na_delivery *delivery;
    struct na_metrics metrics;
    int64_t started_at_ms;    /* wall clock, for the start-time gauge */
    int64_t status_mono_ms;   /* when the last status line was made */
    uint64_t status_received; /* stats.received at that time */
    bool stopping;
    struct event *stop_timer;
    uint64_t stop_received;
    int64_t stop_deadline_ms;
};

/* Builds the daemon from a loaded config, which it owns from then on (also
 * freed by na_daemon_free; on failure it stays the caller's): rules compiled,
 * sockets bound and connected, signals installed. On failure *exit_code says
 * whether it was the rules (78) or the system (1). */
struct na_daemon *na_daemon_new(struct na_config *cfg, struct na_error *err,
                                int *exit_code);
/* Runs the loop until SIGTERM/SIGINT; returns the exit code. */
int na_daemon_run(struct na_daemon *d);
/* SIGHUP asks for a reload. main() holds it back (pending, not lost) from
 * its first line; na_daemon_new lets it through once the loop's handler is
 * in place. */
void na_hold_sighup(bool hold);
void na_daemon_free(struct na_daemon *d);
/* One feed message: frames[0..n) are the received parts, with n_total the
 * real part count (frames beyond the ones kept are counted, not stored). */
void na_daemon_handle(struct na_daemon *d, const uint8_t *const *data, const size_t *len,
                      size_t n_total);
/* Tags the articles that na_daemon_handle has gathered, and finishes them
 * in the order they came: alerts built, journalled and queued. The feed
 * calls it at the end of every batch. */
void na_daemon_finish_round(struct na_daemon *d);
int64_t na_now_ms(void);
int64_t na_mono_ms(void);
uint64_t na_mono_ns(void);
/* True when ZMQ_EVENTS says a message can be received now. */
bool na_zsock_readable(void *sock);

/* ---- feed.c ---- */
int na_feed_open(struct na_daemon *d, struct na_error *err);
/* Receives up to max messages without blocking; returns how many. */
size_t na_feed_drain(struct na_daemon *d, size_t max);
/* The resident set size, from /proc/self/statm; 0 if it cannot be read. */
long na_rss_kib(void);

/* tagpool.c: rounds of articles tagged on several threads. */
struct na_tag_job {
    const char *headline, *body;
    size_t headline_len, body_len;
    /* Out: rc and res as na_tagger_tag gives them, and the time it took. */
    int rc;
    const struct na_result *res;
    struct na_error err;
    uint64_t ns;
};
struct na_tagpool;
/* threads counts the caller: 1 starts no thread. NULL with err set. */
struct na_tagpool *na_tagpool_new(size_t threads, struct na_error *err);
void na_tagpool_free(struct na_tagpool *p);
size_t na_tagpool_threads(const struct na_tagpool *p);
/* Tags jobs[i] with taggers[i] for i < n, on the calling thread and the
 * helpers, and returns when all are done: true when the helpers took part
 * (a round of more than one article), false when the caller did it alone. */
bool na_tagpool_run(struct na_tagpool *p, struct na_tagger *const *taggers,
                    struct na_tag_job *jobs, size_t n);

/* ---- http.c: /metrics and /healthz on evhttp, in the daemon's loop ---- */
/* True for the values that turn the server off: "off" and "". */
bool na_http_disabled(const char *listen);
/* Splits "ADDR:PORT" ("[v6]:PORT" for IPv6) into a numeric address and a
 * port (0 lets the kernel choose). Returns -1 when listen is not of that
 * form. */
int na_http_parse_listen(const char *listen, char *host, size_t host_len, uint16_t *port);
/* Binds d->cfg->metrics_listen (unless disabled) into d->http. */
int na_http_open(struct na_daemon *d, struct na_error *err);

/* ---- delivery.c: journal, dedup, quarantine, the publish queue, catch-up ---- */
struct na_delivery;
/* Opens the state directory: the journal (scanned and repaired; seq, epoch
 * and topic numbers recovered from it), the quarantine and the dedup window
 * (refilled from the journal). Logs what the scan found. */
int na_delivery_open(struct na_daemon *d, struct na_error *err);
/* Binds the catch-up ROUTER (when configured) and watches it in the loop. */
int na_catchup_open(struct na_daemon *d, struct na_error *err);
/* Applies a reloaded config's retention and dedup window. */
void na_delivery_reconfigure(struct na_daemon *d);
/* Keeps a rejected message with its reason. */
void na_delivery_quarantine(struct na_daemon *d, enum na_reject why,
                            const uint8_t *const *data, const size_t *len, size_t n);
/* Dedup: 1 when the article was seen (count it, skip it); 0 to tag it,
 * with *update_of the seq of the earlier alert of a lower revision. */
int na_delivery_check(struct na_daemon *d, const Newsalert__V1__Article *a,
                      uint64_t *update_of);
/* Remembers an article's verdict: seq of its alert, or 0 for none. */
void na_delivery_remember(struct na_daemon *d, const Newsalert__V1__Article *a,
                          uint64_t seq);
/* Journals the alert and queues its copies, one per tag, for publishing. */
void na_delivery_alert(struct na_daemon *d, Newsalert__V1__Alert *alert);
/* End of a batch: journal flush (per the fsync policy), then the queued
 * copies go out, then the quarantine is flushed. */
void na_delivery_flush(struct na_daemon *d);
/* True while a batch the journal refused is held (the feed is not read and
 * no heartbeat goes out); na_delivery_held says how many alerts it has. */
bool na_delivery_holding(const struct na_daemon *d);
size_t na_delivery_held(const struct na_daemon *d);
/* Offers a held batch to the journal again (a timer does it every second):
 * 0 when nothing is held any more, -1 while the journal still fails. */
int na_delivery_retry(struct na_daemon *d);
uint64_t na_delivery_journal_bytes(const struct na_daemon *d);
/* fdatasyncs done on the journal's sync thread (the interval policy). */
uint64_t na_delivery_journal_syncs(const struct na_daemon *d);
uint64_t na_delivery_quarantine_bytes(const struct na_daemon *d);
void na_delivery_close(struct na_daemon *d);

/* ---- publish.c ---- */
int na_publish_open(struct na_daemon *d, struct na_error *err);
/* A topic's numbering, keyed by tag name so that it carries on across a
 * reload that reorders or adds tags: the next number, one recovered from
 * the journal, and a copy sent. */
uint64_t na_topic_seq_next(struct na_daemon *d, const char *tag);
void na_topic_seq_restore(struct na_daemon *d, const char *tag, uint64_t seq);
void na_topic_count_published(struct na_daemon *d, const char *tag, size_t len);
/* Reads and discards the subscription messages the XPUB hands over. */
void na_publish_drain_subscriptions(struct na_daemon *d);
/* Sends the heartbeat on NA_HEARTBEAT_TOPIC (publish.heartbeat_ms). */
void na_publish_heartbeat(struct na_daemon *d);
/* ZMTP heartbeats on a socket: a peer that stops answering is dropped
 * after NA_ZMTP_HEARTBEAT_TIMEOUT_MS, not after TCP's minutes. */
void na_zmtp_heartbeats(void *socket);

#endif
