/* The HTTP endpoint for operators: GET /metrics (Prometheus text format) and
 * GET /healthz (JSON), served by libevent's evhttp on the daemon's own loop,
 * so a scrape sees counters between two articles and never blocks one.
 * daemon.c opens it; metrics.c writes the metrics. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "newsalert/model.h"
#include "newsalertd.h"

/* Requests are a line and a few headers; anything bigger is not a scraper.
 * Idle or slow connections are dropped after the timeout. */
#define HTTP_MAX_HEADERS 8192
#define HTTP_MAX_BODY 1024
#define HTTP_TIMEOUT_S 10

static void reply(struct evhttp_request *req, int code, const char *reason,
                  const char *type, struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, code, reason, body);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason,
                       const char *text)
{
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evbuffer_add_printf(body, "%s\n", text);
    reply(req, code, reason, "text/plain; charset=utf-8", body);
    evbuffer_free(body);
}

static void serve_metrics(struct na_daemon *d, struct evhttp_request *req)
{
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    na_metrics_render(d, body);
    reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8", body);
    evbuffer_free(body);
}

/* Ready (200) when every part is: rules in service, at least one feed
 * connection up, the journal taking alerts, and not stopping. Otherwise
 * 503, with the first reason in "status". The body says each part's state,
 * so that an operator sees why without reading the log. */
static void serve_health(struct na_daemon *d, struct evhttp_request *req)
{
    bool rules_ok = d->taggers != NULL && d->rs && na_ruleset_tag_count(d->rs) > 0;
    bool feed_ok = d->metrics.feed_connected > 0;
    bool journal_ok = !na_delivery_holding(d);
    bool ok = rules_ok && feed_ok && journal_ok && !d->stopping;
    const char *status = ok            ? "ok"
                         : d->stopping ? "stopping"
                         : !rules_ok   ? "no rules"
                         : !journal_ok ? "journal failing"
                                       : "no feed connected";
    json_t *j = json_pack(
        "{s:s, s:b, s:I, s:{s:I, s:i}, s:{s:s, s:I}, s:{s:b, s:I, s:I, s:I}, s:{s:b, "
        "s:s}, "
        "s:{s:i}}",
        "status", status, "ready", ok, "uptime_seconds",
        (json_int_t)((na_now_ms() - d->started_at_ms) / 1000), "feed", "endpoints",
        (json_int_t)d->cfg->feed_endpoints.n, "connected", d->metrics.feed_connected,
        "journal", "state", journal_ok ? "ok" : "failing", "held_alerts",
        (json_int_t)na_delivery_held(d), "rules", "loaded", rules_ok, "tags",
        (json_int_t)(d->rs ? na_ruleset_tag_count(d->rs) : 0), "actors",
        (json_int_t)(d->rs ? na_ruleset_actor_count(d->rs) : 0), "patterns",
        (json_int_t)(d->rs ? na_ruleset_pattern_count(d->rs) : 0), "model", "loaded",
        d->model != NULL, "version", d->model ? na_model_version(d->model) : "none",
        "publish", "connections", na_monitor_connections(d->pub_mon));
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    struct evbuffer *body = evbuffer_new();

    if (text == NULL || body == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
    } else {
        evbuffer_add_printf(body, "%s\n", text);
        reply(req, ok ? HTTP_OK : HTTP_SERVUNAVAIL, ok ? "OK" : "Service Unavailable",
              "application/json", body);
    }
    if (body)
        evbuffer_free(body);
    free(text);
    json_decref(j);
}

static void http_on_request(struct evhttp_request *req, void *arg)
{
    struct na_daemon *d = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    bool metrics = path && !strcmp(path, "/metrics");
    bool health = path && !strcmp(path, "/healthz");

    if (!metrics && !health) {
        reply_text(req, HTTP_NOTFOUND, "Not Found",
                   "not found: try /metrics or /healthz");
        return;
    }
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        reply_text(req, HTTP_BADMETHOD, "Method Not Allowed", "method not allowed");
        return;
    }
    if (metrics)
        serve_metrics(d, req);
    else
        serve_health(d, req);
}

/* The address actually bound, which differs from the configured one when
 * the port is 0. */
static void log_bound(struct na_daemon *d, struct evhttp_bound_socket *bs)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
            snprintf(d->bound_http, sizeof(d->bound_http), "[%s]:%u", host, port);
            na_info("http: listening on [%s]:%u (/metrics, /healthz)", host, port);
            return;
        }
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    }
    snprintf(d->bound_http, sizeof(d->bound_http), "%s:%u", host, port);
    na_info("http: listening on %s:%u (/metrics, /healthz)", host, port);
}

int na_http_open(struct na_daemon *d, struct na_error *err)
{
    const char *listen = d->cfg->metrics_listen;
    char host[64];
    uint16_t port;

    if (na_http_disabled(listen)) {
        na_info("http: disabled (metrics.listen is off)");
        return 0;
    }
    if (na_http_parse_listen(listen, host, sizeof(host), &port) < 0)
        return na_error_set(err, "metrics.listen: expected ADDR:PORT, got '%s'", listen);
    d->http = evhttp_new(d->base);
    if (d->http == NULL)
        return na_error_set(err, "http: cannot create the server");
    evhttp_set_max_headers_size(d->http, HTTP_MAX_HEADERS);
    evhttp_set_max_body_size(d->http, HTTP_MAX_BODY);
    evhttp_set_timeout(d->http, HTTP_TIMEOUT_S);
    /* Every method reaches the handler, so that it can answer 405 with an
     * Allow header instead of libevent's bare 405/501. */
    evhttp_set_allowed_methods(
        d->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                     EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                     EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(d->http, http_on_request, d);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(d->http, host, port);
    if (bs == NULL)
        return na_error_set(err, "http: cannot listen on %s: %s", listen,
                            strerror(errno));
    log_bound(d, bs);
    return 0;
}
