/* A consumer of newsalertd's alerts that loses nothing the daemon kept:
 * the Clone pattern from the ZeroMQ Guide, done once for every program.
 *
 * It subscribes to the live alerts first, then (with a catch-up endpoint)
 * asks the daemon's journal for what came before (--since) and for every
 * gap it sees in a topic's numbering (a restart, or messages the PUB socket
 * dropped at its high-water mark). Alerts come out of na_client_next in
 * seq order, each exactly once, whichever topic or path brought them.
 *
 *   struct na_client_opts o = {.alerts = "tcp://127.0.0.1:5556",
 *                              .catchup = "tcp://127.0.0.1:5557"};
 *   struct na_client *c = na_client_new(&o, &err);
 *   while ((rc = na_client_next(c, 1000, &alert, &err)) >= 0)
 *       if (rc) use(alert);   // valid until the next call
 *   na_client_free(c);
 *
 * Part of libnewsalert; pkg-config newsalert gives the flags (it needs libzmq). */
#ifndef NEWSALERT_CLIENT_H
#define NEWSALERT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/error.h"
#include "newsalert/v1/alert.pb-c.h"

#define NA_CLIENT_MAX_TAGS 32

struct na_client_opts {
    const char *alerts;  /* the daemon's alert (PUB) endpoint; required */
    const char *catchup; /* its catch-up (ROUTER) endpoint; NULL: live only */
    const char *tags[NA_CLIENT_MAX_TAGS]; /* tags to follow; none: all */
    size_t n_tags;
    /* Start from history: every alert with seq > since_seq (so 0 means all
     * the journal keeps) before the live ones. Needs catchup. */
    bool history;
    uint64_t since_seq;
    int rcvhwm;             /* receive high-water mark of the live socket (0: 1000) */
    int catchup_timeout_ms; /* give up on a silent catch-up after this (0: 5000) */
    /* CURVE: the daemon's public key and ours, as 40-character Z85 text;
     * all NULL for plain connections. */
    const char *curve_server_key, *curve_public_key, *curve_secret_key;
    void *zmq_context; /* a context to use; NULL: the client makes its own */
    /* With several tags, how long an alert may wait for proof that no alert
     * of another followed tag came before it, before catch-up is asked
     * (0: 1.5 heartbeat intervals, 1.5 s until one is seen). */
    int hold_ms;
};

struct na_client_stats {
    uint64_t delivered;  /* alerts returned by na_client_next */
    uint64_t live;       /* of which arrived on the live socket */
    uint64_t caught_up;  /* of which came from the catch-up endpoint */
    uint64_t duplicates; /* copies dropped (another topic, or both paths) */
    uint64_t gaps;       /* gaps seen in a topic's numbering */
    uint64_t requests;   /* catch-up requests sent */
    uint64_t gone;       /* alerts the journal no longer had */
    uint64_t restarts;   /* epoch changes: the daemon's numbering started over */
    uint64_t invalid;    /* messages that were not valid alerts or replies */
    uint64_t heartbeats; /* the daemon's heartbeats received */
    uint64_t stale;      /* messages of an epoch already left behind */
    uint64_t timeouts;   /* catch-up requests that got no answer in time */
    uint64_t unrepaired; /* gaps given up on (no catch-up, or it never answered) */
};

struct na_client;

/* Connects and subscribes (and asks for history when opts->history).
 * opts and its strings are copied (the caller may free them afterwards);
 * opts->zmq_context is borrowed and must outlive the client. Returns NULL
 * with err set on a bad option (a tag that is empty, holds '.' or begins
 * with '~'; a CURVE key that is not 40 Z85 characters) or endpoint. */
struct na_client *na_client_new(const struct na_client_opts *opts, struct na_error *err);

/* Waits up to timeout_ms (-1: forever; 0: one pass that never blocks, see
 * na_client_sockets) for the next alert in order. Returns
 * 1 with *alert set (owned by the client, valid until the next call), 0 on
 * timeout, -1 with err set when the daemon refused a catch-up request (the
 * client then goes on live only). A catch-up request that gets no answer
 * within catchup_timeout_ms is sent again on a new DEALER, three times in
 * all; then the gap is given up, and what was held back for it is
 * delivered. A "busy" refusal is asked again after 0.5 s. */
int na_client_next(struct na_client *c, int timeout_ms, Newsalert__V1__Alert **alert,
                   struct na_error *err);

/* True while a catch-up is in flight (or waits to be asked again) or alerts
 * wait to be delivered. */
bool na_client_busy(const struct na_client *c);

/* For a caller that polls several clients (or other sockets) itself: wait
 * on these for ZMQ_POLLIN and on na_client_timer_ms, then call
 * na_client_next(c, 0, ...), which does one pass without blocking (drains
 * what is readable, runs the timers that are due) and returns an alert if
 * one is ready, else 0; call it again while it returns 1.
 *
 * The sockets to wait on for ZMQ_POLLIN (the live SUB, and the catch-up
 * DEALER when there is one; it changes after a retry, so ask each time).
 * Returns how many (1 or 2). The sockets stay the client's: borrowed until
 * the next na_client_next or na_client_free. */
size_t na_client_sockets(const struct na_client *c, void *sockets[2]);

/* Milliseconds until the client's next internal timer (hold, catch-up
 * deadline, busy retry) falls due: 0 when overdue (or when alerts wait to
 * be handed out), -1 when none. */
int na_client_timer_ms(const struct na_client *c);

const struct na_client_stats *na_client_stats(const struct na_client *c);
/* The last warning worth showing a person (history gone, daemon restarted),
 * or NULL; cleared by reading it. */
const char *na_client_warning(struct na_client *c);

void na_client_free(struct na_client *c);

#endif
