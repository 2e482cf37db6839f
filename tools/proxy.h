/* newsalert proxy's parts (tools/cmd_proxy.c and the proxy_*.c beside it):
 * the state one proxy process shares between its main loop and its two
 * relay threads, and what each file gives the others. */
#ifndef NEWSALERT_PROXY_H
#define NEWSALERT_PROXY_H

#include <event2/event.h>
#include <event2/http.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "newsalert/allowlist.h"
#include "newsalert/cert.h"

/* The ZAP domain of the sockets the proxy serves with CURVE. */
#define PROXY_ZAP_DOMAIN "newsalert-proxy"
/* Messages handled per wakeup of the loop before it serves other events. */
#define PROXY_BATCH 256
/* A consumer's upstream DEALER is closed after this long without traffic,
 * and opened again by its next request. */
#define PROXY_CATCHUP_IDLE_MS 30000
/* A reply the consumer's pipe had no room for is offered again this often. */
#define PROXY_CATCHUP_RETRY_MS 10
/* The frames of one relayed catch-up message (the daemon sends one). */
#define PROXY_MAX_FRAMES 8

struct proxy_opts {
    const char *alerts, *catchup, *bind_alerts, *bind_catchup, *metrics;
    const char *server_key, *own_key;   /* toward the daemon */
    const char *secret_key, *allow_dir; /* toward the consumers */
    int sndhwm, rcvhwm, max_clients;
};

/* One consumer of the catch-up relay: its ROUTER identity, its own DEALER
 * to the daemon (so that the daemon keeps one stream per consumer, as it
 * would without the proxy), and a reply its pipe had no room for. */
struct relay_peer {
    uint8_t id[256];
    size_t id_len;
    void *dealer;
    int64_t last_ms;
    zmq_msg_t held[PROXY_MAX_FRAMES];
    size_t n_held; /* 0: nothing held */
};

struct proxy {
    struct proxy_opts o;
    char catchup_ep[300], bind_catchup_ep[300];
    void *ctx;
    /* The alert forwarder: used by its thread once it runs. */
    void *xsub, *xpub, *capture_out, *ctl_alerts;
    /* The main thread's ends of the capture and control pipes. */
    void *capture_in, *ctl_alerts_main, *ctl_catchup_main;
    /* The catch-up relay: used by its thread once it runs. */
    void *router, *ctl_catchup;
    struct relay_peer *peers;
    size_t n_peers;
    /* CURVE. */
    bool up_curve, down_curve;
    struct na_cert up_server, up_own, down_own;
    struct na_allowlist *allow;
    void *zap;
    /* Threads. */
    pthread_t alerts_thread, catchup_thread;
    bool alerts_started, catchup_started;
    atomic_int alerts_done, catchup_done;
    int thread_errno;
    /* The loop. */
    struct event_base *base;
    struct event *sigint_ev, *sigterm_ev, *capture_ev, *zap_ev, *died_ev;
    struct evhttp *http;
    int status;
    bool stopping;
    /* The capture's counts (main thread only). */
    uint64_t down_msgs, down_bytes, up_msgs, up_bytes;
    uint64_t alerts, heartbeats, subscribes, unsubscribes;
    int64_t last_hb_ms; /* 0: no heartbeat yet */
    uint64_t auth_failures, auth_logged_s, auth_suppressed;
    /* The relay's counts (written by its thread). */
    atomic_uint_least64_t cu_up_msgs, cu_up_bytes, cu_down_msgs, cu_down_bytes;
    atomic_uint_least64_t cu_clients, cu_refused, cu_dropped;
};

/* The monotonic clock in milliseconds. */
int64_t proxy_mono_ms(void);
/* ZMTP heartbeats on a socket, as the daemon sets them on its own. */
void proxy_zmtp_heartbeats(void *s);
/* Makes s (not yet connected) a CURVE client of the daemon when
 * --curve-server-key was given; -1 on a libzmq error. */
int proxy_curve_client(const struct proxy *p, void *s);
/* ZMQ_EVENTS says a message is waiting (ZMQ_FD is edge-triggered). */
bool proxy_zsock_readable(void *s);

/* ---- proxy_relay.c: the catch-up relay, run as a thread on p; it owns
 * p->router, p->ctl_catchup and the peers until "TERMINATE" comes on
 * p->ctl_catchup. ---- */
void *proxy_relay_main(void *arg);

/* ---- proxy_metrics.c: the capture socket's counters and /metrics, on
 * the main loop. ---- */
/* Counts one captured message: 0, or -1 when none was waiting. */
int proxy_capture_one(struct proxy *p);
void proxy_on_capture(evutil_socket_t fd, short what, void *arg);
void proxy_on_http(struct evhttp_request *req, void *arg);

/* ---- proxy_zap.c: the ZAP handler (RFC 27) of the CURVE server side, on
 * the main loop, deciding from p->allow. ---- */
void proxy_on_zap(evutil_socket_t fd, short what, void *arg);

#endif
