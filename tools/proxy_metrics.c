/* newsalert proxy's counters: every message of the alert forwarder, read
 * from its capture socket on the main loop, and the Prometheus text of
 * --metrics. Wired by cmd_proxy.c. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "newsalertd.h"
#include "proxy.h"

static bool is_control(const uint8_t *d, size_t n)
{
    static const char *const words[] = {"PAUSE", "RESUME", "TERMINATE", "STATISTICS"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (n == strlen(words[i]) && !memcmp(d, words[i], n))
            return true;
    return false;
}

/* One captured message. zmq_proxy_steerable copies every frame it moves,
 * either way, and each control command, to the capture socket, without
 * saying which way: the daemon's messages are [topic, payload]; a
 * subscription is one frame beginning with 1 (subscribe) or 0
 * (unsubscribe); a control command is one of four words. */
int proxy_capture_one(struct proxy *p)
{
    zmq_msg_t m;
    uint8_t head[16];
    size_t head_len, frames = 1, bytes;

    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, p->capture_in, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return -1;
    }
    bytes = head_len = zmq_msg_size(&m);
    if (head_len > sizeof(head))
        head_len = sizeof(head);
    memcpy(head, zmq_msg_data(&m), head_len);
    while (zmq_msg_more(&m)) {
        if (zmq_msg_recv(&m, p->capture_in, 0) < 0)
            break;
        bytes += zmq_msg_size(&m);
        frames++;
    }
    zmq_msg_close(&m);
    if (frames == 1 && head_len > 0 && head[0] <= 1) {
        p->up_msgs++;
        p->up_bytes += bytes;
        if (head[0] == 1)
            p->subscribes++;
        else
            p->unsubscribes++;
    } else if (frames == 1 && is_control(head, bytes)) {
        ; /* ours, not traffic */
    } else {
        p->down_msgs++;
        p->down_bytes += bytes;
        size_t hb = strlen(NA_HEARTBEAT_TOPIC);
        if (head_len >= hb && !memcmp(head, NA_HEARTBEAT_TOPIC, hb)) {
            p->heartbeats++;
            p->last_hb_ms = proxy_mono_ms();
        } else if (head_len >= 6 && !memcmp(head, "alert.", 6)) {
            p->alerts++;
        }
    }
    return 0;
}

static void capture_drain(struct proxy *p)
{
    int k = 0;
    while (k < PROXY_BATCH * 4 && proxy_capture_one(p) == 0)
        k++;
    if (k == PROXY_BATCH * 4 || proxy_zsock_readable(p->capture_in))
        event_active(p->capture_ev, EV_READ, 0);
}

void proxy_on_capture(evutil_socket_t fd, short what, void *arg)
{
    capture_drain(arg);
}
static void metric(struct evbuffer *b, const char *name, const char *type,
                   const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void proxy_metrics(struct proxy *p, struct evbuffer *b)
{
    capture_drain(p); /* what the capture holds is counted before it is shown */
    metric(b, "newsalert_proxy_messages_total", "counter",
           "Messages through the alert proxy: down, the daemon's alerts and "
           "heartbeats (once each, whatever the number of consumers); up, the "
           "consumers' subscriptions.");
    evbuffer_add_printf(b, "newsalert_proxy_messages_total{direction=\"down\"} %llu\n",
                        (unsigned long long)p->down_msgs);
    evbuffer_add_printf(b, "newsalert_proxy_messages_total{direction=\"up\"} %llu\n",
                        (unsigned long long)p->up_msgs);
    metric(b, "newsalert_proxy_bytes_total", "counter",
           "Bytes of those messages, all frames.");
    evbuffer_add_printf(b, "newsalert_proxy_bytes_total{direction=\"down\"} %llu\n",
                        (unsigned long long)p->down_bytes);
    evbuffer_add_printf(b, "newsalert_proxy_bytes_total{direction=\"up\"} %llu\n",
                        (unsigned long long)p->up_bytes);
    metric(b, "newsalert_proxy_alerts_total", "counter",
           "Alert copies (topic alert.<tag>) relayed down.");
    evbuffer_add_printf(b, "newsalert_proxy_alerts_total %llu\n",
                        (unsigned long long)p->alerts);
    metric(b, "newsalert_proxy_heartbeats_total", "counter",
           "The daemon's heartbeats (topic ~hb) relayed down.");
    evbuffer_add_printf(b, "newsalert_proxy_heartbeats_total %llu\n",
                        (unsigned long long)p->heartbeats);
    if (p->last_hb_ms) {
        metric(b, "newsalert_proxy_heartbeat_age_seconds", "gauge",
               "Seconds since the daemon's last heartbeat passed through.");
        evbuffer_add_printf(b, "newsalert_proxy_heartbeat_age_seconds %.3f\n",
                            (double)(proxy_mono_ms() - p->last_hb_ms) / 1000.0);
    }
    metric(b, "newsalert_proxy_subscriptions_total", "counter",
           "Subscription messages passed up to the daemon (XPUB passes the first "
           "subscribe and the last unsubscribe of each topic).");
    evbuffer_add_printf(b,
                        "newsalert_proxy_subscriptions_total{kind=\"subscribe\"} %llu\n",
                        (unsigned long long)p->subscribes);
    evbuffer_add_printf(
        b, "newsalert_proxy_subscriptions_total{kind=\"unsubscribe\"} %llu\n",
        (unsigned long long)p->unsubscribes);
    metric(b, "newsalert_proxy_catchup_messages_total", "counter",
           "Catch-up messages relayed: up, requests; down, replies.");
    evbuffer_add_printf(
        b, "newsalert_proxy_catchup_messages_total{direction=\"down\"} %llu\n",
        (unsigned long long)atomic_load(&p->cu_down_msgs));
    evbuffer_add_printf(b,
                        "newsalert_proxy_catchup_messages_total{direction=\"up\"} %llu\n",
                        (unsigned long long)atomic_load(&p->cu_up_msgs));
    metric(b, "newsalert_proxy_catchup_bytes_total", "counter",
           "Bytes of those catch-up messages.");
    evbuffer_add_printf(b,
                        "newsalert_proxy_catchup_bytes_total{direction=\"down\"} %llu\n",
                        (unsigned long long)atomic_load(&p->cu_down_bytes));
    evbuffer_add_printf(b, "newsalert_proxy_catchup_bytes_total{direction=\"up\"} %llu\n",
                        (unsigned long long)atomic_load(&p->cu_up_bytes));
    metric(b, "newsalert_proxy_catchup_clients", "gauge",
           "Consumers with a connection of their own to the daemon's catch-up.");
    evbuffer_add_printf(b, "newsalert_proxy_catchup_clients %llu\n",
                        (unsigned long long)atomic_load(&p->cu_clients));
    metric(b, "newsalert_proxy_catchup_refused_total", "counter",
           "Catch-up requests refused as busy (--catchup-max-clients).");
    evbuffer_add_printf(b, "newsalert_proxy_catchup_refused_total %llu\n",
                        (unsigned long long)atomic_load(&p->cu_refused));
    metric(b, "newsalert_proxy_catchup_dropped_total", "counter",
           "Catch-up messages dropped: a consumer flooding requests, or a reply "
           "not in the protocol's form.");
    evbuffer_add_printf(b, "newsalert_proxy_catchup_dropped_total %llu\n",
                        (unsigned long long)atomic_load(&p->cu_dropped));
    metric(b, "newsalert_proxy_auth_failures_total", "counter",
           "CURVE handshakes the ZAP handler refused.");
    evbuffer_add_printf(b, "newsalert_proxy_auth_failures_total %llu\n",
                        (unsigned long long)p->auth_failures);
}

void proxy_on_http(struct evhttp_request *req, void *arg)
{
    struct proxy *p = arg;
    const char *uri = evhttp_request_get_uri(req);
    enum evhttp_cmd_type m = evhttp_request_get_command(req);

    if (uri == NULL || strncmp(uri, "/metrics", 8) != 0 ||
        (uri[8] != '\0' && uri[8] != '?')) {
        evhttp_send_error(req, HTTP_NOTFOUND, "not found: try /metrics");
        return;
    }
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
        evhttp_send_error(req, HTTP_BADMETHOD, NULL);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    proxy_metrics(p, b);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, HTTP_OK, "OK", b);
    evbuffer_free(b);
}
