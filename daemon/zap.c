/* The ZAP handler (ZeroMQ Authentication Protocol 1.0, RFC 27) for the
 * allowlist of lib/allowlist.c. libzmq asks, for every CURVE handshake on a
 * socket with a ZAP domain, on inproc://zeromq.zap.01 of the socket's
 * context; this REP socket answers from the daemon's own loop, so a lookup
 * never races a SIGHUP reload of the allowlist. Deny is the default: only a
 * public key that is in the allowlist gets "200". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "newsalertd.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* A CURVE request has 7 frames; more are read and dropped. */
#define ZAP_MAX_FRAMES 8
/* Requests answered per wakeup before the loop serves other events. */
#define ZAP_BATCH 64

static bool frame_is(const zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size((zmq_msg_t *)m) == n &&
           !memcmp(zmq_msg_data((zmq_msg_t *)m), s, n);
}

/* A frame as a printable, bounded C string for the logs. */
static void frame_text(const zmq_msg_t *m, char *buf, size_t len)
{
    size_t n = zmq_msg_size((zmq_msg_t *)m);
    const char *p = zmq_msg_data((zmq_msg_t *)m);
    size_t i;
    for (i = 0; i < n && i + 1 < len; i++)
        buf[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
    buf[i] = '\0';
}

static void reply(void *zap, const zmq_msg_t *request_id, const char *code,
                  const char *text, const char *user_id)
{
    zmq_msg_t id;
    zmq_msg_init(&id);
    if (request_id)
        zmq_msg_copy(&id, (zmq_msg_t *)request_id);
    /* The REP socket restores the envelope; six frames follow it. */
    if (zmq_send(zap, "1.0", 3, ZMQ_SNDMORE) < 0 ||
        zmq_msg_send(&id, zap, ZMQ_SNDMORE) < 0 ||
        zmq_send(zap, code, strlen(code), ZMQ_SNDMORE) < 0 ||
        zmq_send(zap, text, strlen(text), ZMQ_SNDMORE) < 0 ||
        zmq_send(zap, user_id, strlen(user_id), ZMQ_SNDMORE) < 0 ||
        zmq_send(zap, "", 0, 0) < 0)
        na_err("zap: cannot send a reply: %s", zmq_strerror(errno));
    zmq_msg_close(&id);
}

/* Request frames: version, request id, domain, address, identity,
 * mechanism, then the mechanism's credentials (CURVE: the client's 32-byte
 * long-term public key). */
static void handle(struct na_daemon *d, zmq_msg_t *f, size_t n)
{
    char z85[NA_Z85_KEY_LEN + 1], peer[64], mech[16];

    if (n < 6 || !frame_is(&f[0], "1.0")) {
        /* libzmq never sends this; a version we do not speak is our error. */
        reply(d->zap, n >= 2 ? &f[1] : NULL, "500", "unsupported ZAP request", "");
        na_err("zap: a request of %zu frames that is not ZAP 1.0", n);
        return;
    }
    frame_text(&f[3], peer, sizeof(peer));
    frame_text(&f[5], mech, sizeof(mech));
    if (!frame_is(&f[2], NA_ZAP_DOMAIN)) {
        reply(d->zap, &f[1], "400", "unknown domain", "");
        na_auth_failure(d, "denied: a ZAP domain that is not ours", peer, NULL);
        return;
    }
    if (!frame_is(&f[5], "CURVE") || n != 7 || zmq_msg_size(&f[6]) != 32) {
        reply(d->zap, &f[1], "400", "CURVE required", "");
        na_auth_failure(d, "denied: not a CURVE handshake", peer, NULL);
        return;
    }
    if (zmq_z85_encode(z85, zmq_msg_data(&f[6]), 32) == NULL) {
        reply(d->zap, &f[1], "500", "internal error", "");
        return;
    }
    if (!na_allowlist_has(d->allow, z85)) {
        reply(d->zap, &f[1], "400", "key not allowed", "");
        na_auth_failure(d, "denied: a client key that is not in publish.curve.allow_dir",
                        peer, z85);
        return;
    }
    /* The User-Id is the key, so the socket's message metadata can say who. */
    reply(d->zap, &f[1], "200", "OK", z85);
    na_debug("auth: allowed: peer %s, key %.8s...", peer, z85);
}

/* One request: 1 when one was answered, 0 when none was waiting. */
static int serve_one(struct na_daemon *d)
{
    zmq_msg_t f[ZAP_MAX_FRAMES];
    size_t n = 0;
    int more = 1;

    while (more) {
        zmq_msg_t scratch, *m = n < ZAP_MAX_FRAMES ? &f[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, d->zap, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(m);
            if (n == 0)
                return 0;
            break;
        }
        more = zmq_msg_more(m);
        if (n >= ZAP_MAX_FRAMES)
            zmq_msg_close(m);
        n++;
    }
    size_t kept = n < ZAP_MAX_FRAMES ? n : ZAP_MAX_FRAMES;
    handle(d, f, n);
    for (size_t i = 0; i < kept; i++)
        zmq_msg_close(&f[i]);
    return 1;
}

static void zap_on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct na_daemon *d = arg;
    int served = 0;
    (void)fd;
    (void)what;

    while (served < ZAP_BATCH && serve_one(d) > 0)
        served++;
    /* Each reply was a send, which may have consumed the edge: re-check. */
    if (served == ZAP_BATCH || na_zsock_readable(d->zap))
        event_active(d->zap_ev, EV_READ, 0);
}

int na_zap_open(struct na_daemon *d, struct na_error *err)
{
    int linger = 0, fd;
    size_t fdlen = sizeof(fd);

    d->zap = zmq_socket(d->zctx, ZMQ_REP);
    if (d->zap == NULL)
        return na_error_set(err, "zap: cannot create socket: %s", zmq_strerror(errno));
    if (zmq_setsockopt(d->zap, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
        zmq_bind(d->zap, ZAP_ENDPOINT) < 0 ||
        zmq_getsockopt(d->zap, ZMQ_FD, &fd, &fdlen) < 0)
        return na_error_set(err, "zap: cannot bind %s: %s", ZAP_ENDPOINT,
                            zmq_strerror(errno));
    d->zap_ev = event_new(d->base, fd, EV_READ | EV_PERSIST, zap_on_readable, d);
    if (d->zap_ev == NULL || event_add(d->zap_ev, NULL) < 0)
        return na_error_set(err, "zap: cannot watch the socket");
    event_active(d->zap_ev, EV_READ, 0);
    na_info("auth: ZAP handler on %s, %zu allowed consumer key(s)", ZAP_ENDPOINT,
            na_allowlist_count(d->allow));
    return 0;
}
