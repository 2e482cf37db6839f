/* newsalert proxy: fan-out for one newsalertd. An XSUB/XPUB forwarder
 * (zmq_proxy_steerable, in a thread of its own) relays the daemon's alerts
 * and heartbeats to consumers and their subscriptions to the daemon, byte
 * for byte: it never renumbers, so each daemon's epoch and seqs reach the
 * consumer as the daemon wrote them. A second thread relays catch-up
 * requests to the same daemon, one upstream DEALER per consumer. The main
 * thread runs a libevent loop for the signals, the capture socket's
 * counters, the ZAP handler of CURVE and the /metrics endpoint. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <zmq.h>

#include "newsalert/allowlist.h"
#include "newsalert/cert.h"
#include "newsalert/endpoint.h"
#include "newsalert.h"
#include "newsalertd.h"
#include "proxy.h"

#define CTL_ALERTS "inproc://proxy-alerts-control"
#define CTL_CATCHUP "inproc://proxy-catchup-control"
#define CAPTURE "inproc://proxy-capture"
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* zmq_proxy_steerable sends each frame to the capture socket with a
 * blocking send: the pipe to the counters is deep, so that the loop falling
 * behind for a moment never holds up the alerts, yet bounded, so memory is. */
#define CAPTURE_HWM 100000
static void proxy_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert proxy --alerts ENDPOINT --bind-alerts ENDPOINT [OPTION]...\n"
        "Relay one newsalertd's alerts and catch-up to consumers on other hosts.\n"
        "      --alerts ENDPOINT        the daemon's alert endpoint (connected to)\n"
        "  -C, --catchup ENDPOINT       the daemon's catch-up endpoint (default: the\n"
        "                               alert port + 1 for tcp://; off: no catch-up)\n"
        "      --bind-alerts ENDPOINT   where consumers subscribe (bound)\n"
        "  -B, --bind-catchup ENDPOINT  where consumers ask for catch-up (bound;\n"
        "                               default: the bound alert port + 1 for tcp://)\n"
        "      --sndhwm N               alert messages queued for each consumer before\n"
        "                               the proxy drops for that one (default 10000)\n"
        "      --rcvhwm N               alert messages queued from the daemon\n"
        "                               (default 100000)\n"
        "      --catchup-max-clients N  consumers relayed to catch-up at once\n"
        "                               (default 1024)\n"
        "      --metrics ADDR:PORT      serve Prometheus text at /metrics (default off)\n"
        "Toward the consumers, a CURVE server (as the daemon's publish.curve):\n"
        "      --curve-secret-key FILE  our secret certificate (.key, mode 0600)\n"
        "      --curve-allow-dir DIR    the consumers' public certificates (*.pub)\n"
        "Toward the daemon, a CURVE client (as newsalert tail):\n"
        "      --curve-server-key FILE  the daemon's public certificate (.pub)\n"
        "      --curve-key FILE         our secret certificate (.key), whose .pub is in\n"
        "                               the daemon's publish.curve.allow_dir\n"
        "  -h, --help                   show this help\n"
        "One proxy relays one daemon: run one per daemon, so that each daemon's\n"
        "epoch and seqs stay its own. A consumer that falls --sndhwm messages behind\n"
        "loses alerts here, alone, and repairs them through this proxy's catch-up.\n"
        "SIGINT or SIGTERM stops it. Exit status: 0 stopped, 1 runtime failure,\n"
        "64 usage error.\n");
}

int64_t proxy_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ZMTP heartbeats on every socket, as the daemon does: a peer that vanished
 * off a WAN is noticed in seconds, not after TCP's minutes. */
void proxy_zmtp_heartbeats(void *s)
{
    int ivl = NA_ZMTP_HEARTBEAT_IVL_MS, timeout = NA_ZMTP_HEARTBEAT_TIMEOUT_MS;
    zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl));
    zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof(timeout));
    zmq_setsockopt(s, ZMQ_HEARTBEAT_TTL, &timeout, sizeof(timeout));
}

static int curve_server(struct proxy *p, void *s)
{
    int on = 1;
    if (!p->down_curve)
        return 0;
    return zmq_setsockopt(s, ZMQ_CURVE_SERVER, &on, sizeof(on)) < 0 ||
                   zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, p->down_own.secret_key,
                                  NA_Z85_KEY_LEN) < 0 ||
                   zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, PROXY_ZAP_DOMAIN,
                                  strlen(PROXY_ZAP_DOMAIN)) < 0
               ? -1
               : 0;
}

int proxy_curve_client(const struct proxy *p, void *s)
{
    if (!p->up_curve)
        return 0;
    return zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, p->up_server.public_key,
                          NA_Z85_KEY_LEN) < 0 ||
                   zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, p->up_own.public_key,
                                  NA_Z85_KEY_LEN) < 0 ||
                   zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, p->up_own.secret_key,
                                  NA_Z85_KEY_LEN) < 0
               ? -1
               : 0;
}

bool proxy_zsock_readable(void *s)
{
    int ev = 0;
    size_t len = sizeof(ev);
    return zmq_getsockopt(s, ZMQ_EVENTS, &ev, &len) == 0 && (ev & ZMQ_POLLIN);
}

/* ---- the alert forwarder's thread ---- */

static void *alerts_main(void *arg)
{
    struct proxy *p = arg;
    /* Returns 0 on TERMINATE; anything else is a failure the loop reports. */
    if (zmq_proxy_steerable(p->xsub, p->xpub, p->capture_out, p->ctl_alerts) < 0)
        p->thread_errno = errno ? errno : EIO;
    atomic_store(&p->alerts_done, 1);
    event_active(p->died_ev, EV_TIMEOUT, 0);
    return NULL;
}
/* ---- start and stop ---- */

static void proxy_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct proxy *p = arg;
    p->stopping = true;
    event_base_loopbreak(p->base);
}

static void proxy_on_died(evutil_socket_t fd, short what, void *arg)
{
    struct proxy *p = arg;
    if (p->stopping)
        return;
    tool_error("proxy", "the %s relay stopped: %s",
               atomic_load(&p->alerts_done) ? "alert" : "catch-up",
               zmq_strerror(p->thread_errno ? p->thread_errno : EIO));
    p->status = EXIT_FAIL;
    event_base_loopbreak(p->base);
}

static void *zsocket(struct proxy *p, int type, int sndhwm, int rcvhwm)
{
    int linger = 0;
    void *s = zmq_socket(p->ctx, type);
    if (s == NULL)
        return NULL;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    if (sndhwm >= 0)
        zmq_setsockopt(s, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm));
    if (rcvhwm >= 0)
        zmq_setsockopt(s, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
    return s;
}

static struct event *watch(struct proxy *p, void *sock, event_callback_fn cb)
{
    int fd;
    size_t len = sizeof(fd);
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) < 0)
        return NULL;
    struct event *ev = event_new(p->base, fd, EV_READ | EV_PERSIST, cb, p);
    if (ev == NULL || event_add(ev, NULL) < 0)
        return NULL;
    event_active(ev, EV_READ, 0);
    return ev;
}

static void bound(void *s, const char *asked, char *out, size_t len)
{
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, out, &len) < 0)
        snprintf(out, len, "%s", asked);
}

/* Everything up to the threads. Errors are reported; -1. */
static int proxy_open(struct proxy *p)
{
    char at[300];
    int one = 1;

    if (evthread_use_pthreads() < 0 || (p->base = event_base_new()) == NULL) {
        tool_error("proxy", "cannot make the event loop");
        return -1;
    }
    p->ctx = zmq_ctx_new();
    if (p->ctx == NULL) {
        tool_error("proxy", "cannot make a ZeroMQ context: %s", zmq_strerror(errno));
        return -1;
    }
    p->died_ev = event_new(p->base, -1, 0, proxy_on_died, p);
    p->sigint_ev = evsignal_new(p->base, SIGINT, proxy_on_signal, p);
    p->sigterm_ev = evsignal_new(p->base, SIGTERM, proxy_on_signal, p);
    if (p->died_ev == NULL || p->sigint_ev == NULL || p->sigterm_ev == NULL ||
        event_add(p->sigint_ev, NULL) < 0 || event_add(p->sigterm_ev, NULL) < 0) {
        tool_error("proxy", "cannot watch the signals");
        return -1;
    }
    /* The ZAP handler is bound before any CURVE server socket: until it is,
     * libzmq would let every client key in. */
    if (p->down_curve) {
        p->zap = zsocket(p, ZMQ_REP, -1, -1);
        if (p->zap == NULL || zmq_bind(p->zap, ZAP_ENDPOINT) < 0 ||
            (p->zap_ev = watch(p, p->zap, proxy_on_zap)) == NULL) {
            tool_error("proxy", "zap: cannot bind %s: %s", ZAP_ENDPOINT,
                       zmq_strerror(errno));
            return -1;
        }
    }
    /* The counters' pipe and the control pipe, connected before the thread
     * runs, so that nothing it sends is lost. */
    p->capture_out = zsocket(p, ZMQ_PAIR, CAPTURE_HWM, -1);
    p->capture_in = zsocket(p, ZMQ_PAIR, -1, CAPTURE_HWM);
    p->ctl_alerts = zsocket(p, ZMQ_PAIR, -1, -1);
    p->ctl_alerts_main = zsocket(p, ZMQ_PAIR, -1, -1);
    if (p->capture_out == NULL || p->capture_in == NULL || p->ctl_alerts == NULL ||
        p->ctl_alerts_main == NULL || zmq_bind(p->capture_out, CAPTURE) < 0 ||
        zmq_connect(p->capture_in, CAPTURE) < 0 ||
        zmq_bind(p->ctl_alerts, CTL_ALERTS) < 0 ||
        zmq_connect(p->ctl_alerts_main, CTL_ALERTS) < 0 ||
        (p->capture_ev = watch(p, p->capture_in, proxy_on_capture)) == NULL) {
        tool_error("proxy", "cannot make the proxy's own pipes: %s", zmq_strerror(errno));
        return -1;
    }
    /* No ZMQ_XPUB_VERBOSE: the daemon does nothing on a subscription but
     * filter, so it needs the union of the consumers' subscriptions, which
     * is what XPUB passes up (the first subscribe and the last unsubscribe
     * of each topic); verbose would send every consumer's repeat up the WAN
     * for nothing. No ZMQ_XPUB_NODROP either: one stuck consumer would hold
     * up every other one. */
    p->xsub = zsocket(p, ZMQ_XSUB, -1, p->o.rcvhwm);
    p->xpub = zsocket(p, ZMQ_XPUB, p->o.sndhwm, -1);
    if (p->xsub == NULL || p->xpub == NULL) {
        tool_error("proxy", "cannot make the alert sockets: %s", zmq_strerror(errno));
        return -1;
    }
    proxy_zmtp_heartbeats(p->xsub);
    proxy_zmtp_heartbeats(p->xpub);
    if (proxy_curve_client(p, p->xsub) < 0 || curve_server(p, p->xpub) < 0) {
        tool_error("proxy", "CURVE options: %s", zmq_strerror(errno));
        return -1;
    }
    if (zmq_connect(p->xsub, p->o.alerts) < 0) {
        tool_error("proxy", "cannot connect to %s: %s", p->o.alerts, zmq_strerror(errno));
        return -1;
    }
    if (zmq_bind(p->xpub, p->o.bind_alerts) < 0) {
        tool_error("proxy", "cannot bind %s: %s", p->o.bind_alerts, zmq_strerror(errno));
        return -1;
    }
    bound(p->xpub, p->o.bind_alerts, at, sizeof(at));
    tool_error("proxy", "alerts: from %s%s, for consumers on %s%s", p->o.alerts,
               p->up_curve ? " (CURVE)" : "", at,
               p->down_curve ? " (CURVE, consumers in --curve-allow-dir)" : "");
    if (p->catchup_ep[0]) {
        p->router = zsocket(p, ZMQ_ROUTER, -1, -1);
        p->ctl_catchup = zsocket(p, ZMQ_PAIR, -1, -1);
        p->ctl_catchup_main = zsocket(p, ZMQ_PAIR, -1, -1);
        if (p->router == NULL || p->ctl_catchup == NULL || p->ctl_catchup_main == NULL ||
            zmq_bind(p->ctl_catchup, CTL_CATCHUP) < 0 ||
            zmq_connect(p->ctl_catchup_main, CTL_CATCHUP) < 0 ||
            zmq_setsockopt(p->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) < 0 ||
            curve_server(p, p->router) < 0) {
            tool_error("proxy", "cannot make the catch-up sockets: %s",
                       zmq_strerror(errno));
            return -1;
        }
        proxy_zmtp_heartbeats(p->router);
        if (zmq_bind(p->router, p->bind_catchup_ep) < 0) {
            tool_error("proxy", "cannot bind %s: %s", p->bind_catchup_ep,
                       zmq_strerror(errno));
            return -1;
        }
        bound(p->router, p->bind_catchup_ep, at, sizeof(at));
        tool_error("proxy", "catch-up: to %s%s, for consumers on %s%s", p->catchup_ep,
                   p->up_curve ? " (CURVE)" : "", at, p->down_curve ? " (CURVE)" : "");
    } else {
        tool_error("proxy", "warning: no catch-up relay: consumers of this proxy "
                            "cannot repair what they miss");
    }
    if (!p->down_curve && !na_endpoint_is_loopback(p->o.bind_alerts))
        tool_error("proxy",
                   "warning: %s is not loopback and CURVE is off: anyone who "
                   "can reach it can read the alerts (--curve-secret-key, "
                   "--curve-allow-dir)",
                   p->o.bind_alerts);
    if (p->o.metrics) {
        char host[64];
        uint16_t port;
        struct evhttp_bound_socket *h;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        na_http_parse_listen(p->o.metrics, host, sizeof(host), &port);
        p->http = evhttp_new(p->base);
        if (p->http == NULL ||
            (h = evhttp_bind_socket_with_handle(p->http, host, port)) == NULL) {
            tool_error("proxy", "--metrics: cannot listen on %s: %s", p->o.metrics,
                       strerror(errno));
            return -1;
        }
        evhttp_set_allowed_methods(p->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
        evhttp_set_timeout(p->http, 10);
        evhttp_set_gencb(p->http, proxy_on_http, p);
        if (getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&ss, &sl) == 0)
            port =
                ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
        tool_error("proxy", "metrics: http://%s%s%s:%u/metrics",
                   strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
                   (unsigned)port);
    }
    return 0;
}

/* Sends a command to the alert forwarder and, for STATISTICS, reads its 8
 * counters into stats; the capture is read meanwhile, for the forwarder
 * may be waiting on it. */
static int alerts_command(struct proxy *p, const char *cmd, uint64_t *stats)
{
    if (zmq_send(p->ctl_alerts_main, cmd, strlen(cmd), 0) < 0)
        return -1;
    size_t got = 0;
    int64_t deadline = proxy_mono_ms() + 2000;
    while (stats && got < 8 && proxy_mono_ms() < deadline &&
           !atomic_load(&p->alerts_done)) {
        zmq_pollitem_t it[] = {{p->ctl_alerts_main, 0, ZMQ_POLLIN, 0},
                               {p->capture_in, 0, ZMQ_POLLIN, 0}};
        zmq_poll(it, 2, 20);
        if (it[1].revents & ZMQ_POLLIN)
            while (proxy_capture_one(p) == 0)
                ;
        while (got < 8 && (it[0].revents & ZMQ_POLLIN)) {
            uint64_t v;
            if (zmq_recv(p->ctl_alerts_main, &v, sizeof(v), ZMQ_DONTWAIT) != sizeof(v))
                break;
            stats[got++] = v;
        }
    }
    return stats && got < 8 ? -1 : 0;
}

static void proxy_stop(struct proxy *p)
{
    uint64_t st[8];
    bool have_stats = false;

    p->stopping = true;
    if (p->alerts_started) {
        if (!atomic_load(&p->alerts_done)) {
            /* Paused, nothing more passes: libzmq's count and the capture's,
             * read to its end, are of the same messages. */
            alerts_command(p, "PAUSE", NULL);
            have_stats = alerts_command(p, "STATISTICS", st) == 0;
            alerts_command(p, "TERMINATE", NULL);
        }
        /* The forwarder may be in a capture send: read until it is out. */
        while (!atomic_load(&p->alerts_done)) {
            zmq_pollitem_t it = {p->capture_in, 0, ZMQ_POLLIN, 0};
            zmq_poll(&it, 1, 20);
            while (proxy_capture_one(p) == 0)
                ;
        }
        pthread_join(p->alerts_thread, NULL);
        while (proxy_capture_one(p) == 0)
            ;
    }
    if (p->catchup_started) {
        if (!atomic_load(&p->catchup_done))
            zmq_send(p->ctl_catchup_main, "TERMINATE", 9, 0);
        pthread_join(p->catchup_thread, NULL);
    }
    tool_error("proxy",
               "stopped: %llu messages down (%llu alerts, %llu heartbeats), %llu up; "
               "catch-up %llu requests, %llu replies",
               (unsigned long long)p->down_msgs, (unsigned long long)p->alerts,
               (unsigned long long)p->heartbeats, (unsigned long long)p->up_msgs,
               (unsigned long long)atomic_load(&p->cu_up_msgs),
               (unsigned long long)atomic_load(&p->cu_down_msgs));
    /* libzmq's own count (frontend, the XSUB: in, bytes, out, bytes; then
     * the backend's): it and the capture's agree, or the capture lost some. */
    if (have_stats)
        tool_error("proxy", "libzmq: %llu messages from the daemon, %llu to it",
                   (unsigned long long)st[0], (unsigned long long)st[2]);
    if (have_stats && (st[0] != p->down_msgs || st[2] != p->up_msgs))
        tool_error("proxy", "warning: the capture counted %llu down and %llu up",
                   (unsigned long long)p->down_msgs, (unsigned long long)p->up_msgs);
}

static void proxy_close(struct proxy *p)
{
    void *socks[] = {p->xsub,       p->xpub,        p->capture_out,
                     p->capture_in, p->ctl_alerts,  p->ctl_alerts_main,
                     p->router,     p->ctl_catchup, p->ctl_catchup_main,
                     p->zap};
    struct event *evs[] = {p->sigint_ev, p->sigterm_ev, p->capture_ev, p->zap_ev,
                           p->died_ev};
    if (p->http)
        evhttp_free(p->http);
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i])
            event_free(evs[i]);
    for (size_t i = 0; i < sizeof(socks) / sizeof(socks[0]); i++)
        if (socks[i])
            zmq_close(socks[i]);
    if (p->ctx)
        zmq_ctx_term(p->ctx);
    if (p->base)
        event_base_free(p->base);
    na_allowlist_free(p->allow);
    free(p->peers);
    memset(&p->up_own, 0, sizeof(p->up_own));
    memset(&p->down_own, 0, sizeof(p->down_own));
}

/* ---- arguments ---- */

/* The shipped convention: catch-up one port above the alerts, for tcp://
 * with a numeric port. */
static bool port_plus_one(const char *ep, char *out, size_t len)
{
    const char *colon = strrchr(ep, ':');
    char *end;
    if (strncmp(ep, "tcp://", 6) != 0 || colon == NULL)
        return false;
    long port = strtol(colon + 1, &end, 10);
    if (*end || colon[1] == '\0' || port <= 0 || port >= 65535)
        return false;
    snprintf(out, len, "%.*s:%ld", (int)(colon - ep), ep, port + 1);
    return true;
}

static int int_arg(const char *opt, const char *arg, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (*arg == '\0' || *end || errno || v < lo || v > hi) {
        tool_error("proxy", "--%s: expected a number from %ld to %ld, got '%s'", opt, lo,
                   hi, arg);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int endpoint_arg(const char *opt, const char *ep, enum na_endpoint_use use)
{
    char why[160];
    if (na_endpoint_check(ep, use, why, sizeof(why)) == 0)
        return 0;
    tool_error("proxy", "--%s: '%s': %s", opt, ep, why);
    return -1;
}

/* Checks the options and loads the keys: 0, or -1 when reported. */
static int proxy_check(struct proxy *p)
{
    struct proxy_opts *o = &p->o;
    struct na_error err;
    char host[64];
    uint16_t port;

    if (o->alerts == NULL || o->bind_alerts == NULL) {
        tool_error("proxy", "--alerts and --bind-alerts are required");
        return -1;
    }
    if (endpoint_arg("alerts", o->alerts, NA_ENDPOINT_CONNECT) < 0 ||
        endpoint_arg("bind-alerts", o->bind_alerts, NA_ENDPOINT_BIND) < 0)
        return -1;
    bool cu_off = o->catchup && !strcmp(o->catchup, "off");
    bool bcu_off = o->bind_catchup && !strcmp(o->bind_catchup, "off");
    if (cu_off != bcu_off && (o->catchup && o->bind_catchup)) {
        tool_error("proxy",
                   "--catchup and --bind-catchup are off together or not at all");
        return -1;
    }
    if (!cu_off && !bcu_off) {
        if (o->catchup)
            snprintf(p->catchup_ep, sizeof(p->catchup_ep), "%s", o->catchup);
        else if (!port_plus_one(o->alerts, p->catchup_ep, sizeof(p->catchup_ep)))
            p->catchup_ep[0] = '\0';
        if (o->bind_catchup)
            snprintf(p->bind_catchup_ep, sizeof(p->bind_catchup_ep), "%s",
                     o->bind_catchup);
        else if (!port_plus_one(o->bind_alerts, p->bind_catchup_ep,
                                sizeof(p->bind_catchup_ep)))
            p->bind_catchup_ep[0] = '\0';
        if (!p->catchup_ep[0] || !p->bind_catchup_ep[0]) {
            bool up = !p->catchup_ep[0];
            tool_error("proxy",
                       "--%s: no default for '%s' (only for tcp:// with a port): give "
                       "it, or off",
                       up ? "catchup" : "bind-catchup", up ? o->alerts : o->bind_alerts);
            return -1;
        }
        if ((endpoint_arg("catchup", p->catchup_ep, NA_ENDPOINT_CONNECT) < 0 ||
             endpoint_arg("bind-catchup", p->bind_catchup_ep, NA_ENDPOINT_BIND) < 0))
            return -1;
    }
    /* One off and the other left to its default: both are off. */
    if (o->metrics && na_http_parse_listen(o->metrics, host, sizeof(host), &port) < 0) {
        tool_error("proxy",
                   "--metrics: expected ADDR:PORT with a numeric address (IPv6 in "
                   "brackets), got '%s'",
                   o->metrics);
        return -1;
    }
    if (!o->secret_key != !o->allow_dir) {
        tool_error("proxy", "--curve-secret-key and --curve-allow-dir go together: a "
                            "CURVE server without an allowlist would let every key in");
        return -1;
    }
    int up =
        tool_curve_keys("proxy", o->server_key, o->own_key, &p->up_server, &p->up_own);
    if (up < 0)
        return -1;
    p->up_curve = up > 0;
    if (o->secret_key) {
        struct na_cert pub;
        /* tool_curve_keys checks a secret certificate against its public
         * key; ours is both the "server" and the "own" one here. */
        if (tool_curve_keys("proxy", o->secret_key, o->secret_key, &pub, &p->down_own) <
            0)
            return -1;
        if ((p->allow = na_allowlist_load(o->allow_dir, "--curve-allow-dir", &err)) ==
            NULL) {
            tool_error("proxy", "%s", err.msg);
            return -1;
        }
        if (na_allowlist_count(p->allow) == 0)
            tool_error("proxy",
                       "warning: %s holds no *.pub certificate: every consumer "
                       "will be refused",
                       o->allow_dir);
        p->down_curve = true;
    }
    return 0;
}

enum {
    OPT_SNDHWM = 1100,
    OPT_RCVHWM,
    OPT_MAX_CLIENTS,
    OPT_METRICS,
    OPT_SECRET_KEY,
    OPT_ALLOW_DIR,
    OPT_SERVER_KEY,
    OPT_OWN_KEY,
    OPT_ALERTS,
    OPT_BIND_ALERTS,
};

int cmd_proxy(int argc, char **argv)
{
    static const struct option opts[] = {
        {"alerts", required_argument, NULL, OPT_ALERTS},
        {"catchup", required_argument, NULL, 'C'},
        {"bind-alerts", required_argument, NULL, OPT_BIND_ALERTS},
        {"bind-catchup", required_argument, NULL, 'B'},
        {"sndhwm", required_argument, NULL, OPT_SNDHWM},
        {"rcvhwm", required_argument, NULL, OPT_RCVHWM},
        {"catchup-max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"curve-secret-key", required_argument, NULL, OPT_SECRET_KEY},
        {"curve-allow-dir", required_argument, NULL, OPT_ALLOW_DIR},
        {"curve-server-key", required_argument, NULL, OPT_SERVER_KEY},
        {"curve-key", required_argument, NULL, OPT_OWN_KEY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static struct proxy p; /* large (the capture's counters, the keys); one per run */
    int c;

    memset(&p, 0, sizeof(p));
    p.o.sndhwm = 10000;
    p.o.rcvhwm = 100000;
    p.o.max_clients = 1024;
    while ((c = getopt_long(argc, argv, "C:B:h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_ALERTS:
            p.o.alerts = optarg;
            break;
        case 'C':
            p.o.catchup = optarg;
            break;
        case OPT_BIND_ALERTS:
            p.o.bind_alerts = optarg;
            break;
        case 'B':
            p.o.bind_catchup = optarg;
            break;
        case OPT_SNDHWM:
            if (int_arg("sndhwm", optarg, 1, 100000000, &p.o.sndhwm) < 0)
                return EXIT_USAGE;
            break;
        case OPT_RCVHWM:
            if (int_arg("rcvhwm", optarg, 1, 100000000, &p.o.rcvhwm) < 0)
                return EXIT_USAGE;
            break;
        case OPT_MAX_CLIENTS:
            if (int_arg("catchup-max-clients", optarg, 1, 100000, &p.o.max_clients) < 0)
                return EXIT_USAGE;
            break;
        case OPT_METRICS:
            p.o.metrics = strcmp(optarg, "off") ? optarg : NULL;
            break;
        case OPT_SECRET_KEY:
            p.o.secret_key = optarg;
            break;
        case OPT_ALLOW_DIR:
            p.o.allow_dir = optarg;
            break;
        case OPT_SERVER_KEY:
            p.o.server_key = optarg;
            break;
        case OPT_OWN_KEY:
            p.o.own_key = optarg;
            break;
        case 'h':
            proxy_usage(stdout);
            return EXIT_OK;
        default:
            proxy_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        tool_error("proxy", "unexpected argument '%s'", argv[optind]);
        proxy_usage(stderr);
        return EXIT_USAGE;
    }
    if (proxy_check(&p) < 0) {
        proxy_close(&p);
        return EXIT_USAGE;
    }
    p.status = EXIT_OK;
    if (proxy_open(&p) < 0) {
        proxy_close(&p);
        return EXIT_FAIL;
    }
    p.alerts_started = pthread_create(&p.alerts_thread, NULL, alerts_main, &p) == 0;
    p.catchup_started =
        p.alerts_started && p.router &&
        pthread_create(&p.catchup_thread, NULL, proxy_relay_main, &p) == 0;
    if (!p.alerts_started || (p.router && !p.catchup_started)) {
        tool_error("proxy", "cannot start a thread");
        p.status = EXIT_FAIL;
    } else {
        tool_error("proxy", "running");
        event_base_dispatch(p.base);
    }
    proxy_stop(&p);
    proxy_close(&p);
    return p.status;
}
