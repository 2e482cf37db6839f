/* One HTTP GET to newsalertd's operator endpoint (/healthz, /metrics), with
 * libevent's evhttp client on a loop of its own: for wait-ready and top. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "newsalert.h"

struct get_state {
    struct tool_http_reply *out;
    struct event_base *base;
};

static void httpget_on_error(enum evhttp_request_error e, void *arg)
{
    struct get_state *g = arg;
    const char *why = e == EVREQ_HTTP_TIMEOUT ? "timed out"
                      : e == EVREQ_HTTP_EOF   ? "connection closed (nothing listening?)"
                      : e == EVREQ_HTTP_INVALID_HEADER ? "not an HTTP answer"
                      : e == EVREQ_HTTP_BUFFER_ERROR
                          ? "connection failed (nothing listening?)"
                      : e == EVREQ_HTTP_DATA_TOO_LONG ? "answer too long"
                                                      : "request failed";
    snprintf(g->out->error, sizeof(g->out->error), "%s", why);
}

static void httpget_on_done(struct evhttp_request *req, void *arg)
{
    struct get_state *g = arg;
    event_base_loopexit(g->base, NULL);
    if (req == NULL || evhttp_request_get_response_code(req) == 0) {
        if (g->out->error[0] == '\0')
            snprintf(g->out->error, sizeof(g->out->error),
                     "connection failed (nothing listening?)");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    g->out->status = evhttp_request_get_response_code(req);
    g->out->body = malloc(n + 1);
    if (g->out->body == NULL) {
        g->out->status = 0;
        snprintf(g->out->error, sizeof(g->out->error), "out of memory");
        return;
    }
    evbuffer_remove(in, g->out->body, n);
    g->out->body[n] = '\0';
    g->out->len = n;
}

int tool_http_parse_url(const char *url, char *host, size_t host_len, int *port,
                        char *path, size_t path_len)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    int rc = -1;
    if (u == NULL)
        return -1;
    const char *scheme = evhttp_uri_get_scheme(u), *h = evhttp_uri_get_host(u);
    const char *p = evhttp_uri_get_path(u);
    if (scheme && !strcasecmp(scheme, "http") && h && *h && strlen(h) < host_len) {
        snprintf(host, host_len, "%s", h);
        *port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
        snprintf(path, path_len, "%s", p && *p ? p : "/");
        rc = 0;
    }
    evhttp_uri_free(u);
    return rc;
}

int tool_http_get(const char *host, int port, const char *path, double timeout_s,
                  struct tool_http_reply *out)
{
    struct get_state g = {out, NULL};
    struct evhttp_connection *conn = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    g.base = event_base_new();
    if (g.base == NULL) {
        snprintf(out->error, sizeof(out->error), "out of memory");
        return -1;
    }
    /* No DNS base: a name is resolved with getaddrinfo, which may block;
     * that is fine for a command that does nothing else meanwhile. */
    conn = evhttp_connection_base_new(g.base, NULL, host, (unsigned short)port);
    struct evhttp_request *req = evhttp_request_new(httpget_on_done, &g);
    if (conn == NULL || req == NULL) {
        snprintf(out->error, sizeof(out->error), "cannot set up the request");
        if (req)
            evhttp_request_free(req);
        goto done;
    }
    struct timeval tv = {(time_t)timeout_s,
                         (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    if (tv.tv_sec == 0 && tv.tv_usec < 1000)
        tv.tv_usec = 1000;
    evhttp_connection_set_timeout_tv(conn, &tv);
    evhttp_connection_set_retries(conn, 0);
    evhttp_request_set_error_cb(req, httpget_on_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", host);
    evhttp_add_header(h, "Connection", "close");
    if (evhttp_make_request(conn, req, EVHTTP_REQ_GET, path) < 0) {
        snprintf(out->error, sizeof(out->error), "cannot send the request");
        goto done;
    }
    event_base_dispatch(g.base);
    rc = out->status ? 0 : -1;
done:
    if (conn)
        evhttp_connection_free(conn);
    event_base_free(g.base);
    return rc;
}

void tool_http_reply_clear(struct tool_http_reply *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}
