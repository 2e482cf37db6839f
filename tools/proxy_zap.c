/* newsalert proxy's ZAP handler (ZeroMQ Authentication Protocol 1.0, RFC
 * 27): every CURVE handshake on the proxy's two server sockets is asked
 * here, on the main loop, and only a key of --curve-allow-dir gets "200".
 * Bound by cmd_proxy.c before those sockets bind. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <zmq.h>

#include "newsalert.h"
#include "proxy.h"

static bool frame_is(zmq_msg_t *m, const char *s)
{
    return zmq_msg_size(m) == strlen(s) && !memcmp(zmq_msg_data(m), s, strlen(s));
}

static void zap_reply(struct proxy *p, zmq_msg_t *request_id, const char *code,
                      const char *text, const char *user)
{
    zmq_msg_t id;
    zmq_msg_init(&id);
    if (request_id)
        zmq_msg_copy(&id, request_id);
    if (zmq_send(p->zap, "1.0", 3, ZMQ_SNDMORE) < 0 ||
        zmq_msg_send(&id, p->zap, ZMQ_SNDMORE) < 0 ||
        zmq_send(p->zap, code, strlen(code), ZMQ_SNDMORE) < 0 ||
        zmq_send(p->zap, text, strlen(text), ZMQ_SNDMORE) < 0 ||
        zmq_send(p->zap, user, strlen(user), ZMQ_SNDMORE) < 0 ||
        zmq_send(p->zap, "", 0, 0) < 0)
        tool_error("proxy", "zap: cannot send a reply: %s", zmq_strerror(errno));
    zmq_msg_close(&id);
}

/* A refused handshake: counted, and logged at most once a second with
 * the first characters of the key (a public key; never a secret). */
static void zap_denied(struct proxy *p, const char *why, const char *z85)
{
    uint64_t now = (uint64_t)(proxy_mono_ms() / 1000);
    p->auth_failures++;
    if (p->auth_logged_s == now) {
        p->auth_suppressed++;
        return;
    }
    p->auth_logged_s = now;
    tool_error("proxy", "auth: denied: %s%s%.8s%s", why, z85 ? ", key " : "",
               z85 ? z85 : "", z85 ? "..." : "");
    if (p->auth_suppressed)
        tool_error("proxy", "auth: and %llu more denied, not logged",
                   (unsigned long long)p->auth_suppressed);
    p->auth_suppressed = 0;
}

static int zap_one(struct proxy *p)
{
    zmq_msg_t f[PROXY_MAX_FRAMES];
    size_t n = 0;
    int more = 1;
    char z85[NA_Z85_KEY_LEN + 1];

    while (more) {
        zmq_msg_t scratch, *m = n < PROXY_MAX_FRAMES ? &f[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, p->zap, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(m);
            if (n == 0)
                return -1;
            break;
        }
        more = zmq_msg_more(m);
        if (n >= PROXY_MAX_FRAMES)
            zmq_msg_close(m);
        n++;
    }
    size_t kept = n < PROXY_MAX_FRAMES ? n : PROXY_MAX_FRAMES;
    /* Frames: version, request id, domain, address, identity, mechanism,
     * and for CURVE the client's 32-byte public key. */
    if (n < 6 || !frame_is(&f[0], "1.0"))
        zap_reply(p, n >= 2 ? &f[1] : NULL, "500", "unsupported ZAP request", "");
    else if (!frame_is(&f[2], PROXY_ZAP_DOMAIN)) {
        zap_reply(p, &f[1], "400", "unknown domain", "");
        zap_denied(p, "a ZAP domain that is not ours", NULL);
    } else if (!frame_is(&f[5], "CURVE") || n != 7 || zmq_msg_size(&f[6]) != 32) {
        zap_reply(p, &f[1], "400", "CURVE required", "");
        zap_denied(p, "not a CURVE handshake", NULL);
    } else if (zmq_z85_encode(z85, zmq_msg_data(&f[6]), 32) == NULL) {
        zap_reply(p, &f[1], "500", "internal error", "");
    } else if (!na_allowlist_has(p->allow, z85)) {
        zap_reply(p, &f[1], "400", "key not allowed", "");
        zap_denied(p, "a client key that is not in --curve-allow-dir", z85);
    } else {
        zap_reply(p, &f[1], "200", "OK", z85);
    }
    for (size_t i = 0; i < kept; i++)
        zmq_msg_close(&f[i]);
    return 0;
}

void proxy_on_zap(evutil_socket_t fd, short what, void *arg)
{
    struct proxy *p = arg;
    int k = 0;
    while (k < PROXY_BATCH && zap_one(p) == 0)
        k++;
    /* Each reply was a send, which may have taken the edge: look again. */
    if (k == PROXY_BATCH || proxy_zsock_readable(p->zap))
        event_active(p->zap_ev, EV_READ, 0);
}
