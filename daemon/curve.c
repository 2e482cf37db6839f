/* CURVE for the daemon's sockets: loading and checking the key files, the
 * socket options of the server side (alerts, and any other socket served to
 * consumers) and of the client side (the feed), the warning about plain
 * endpoints off the machine, and the accounting of refused handshakes.
 * Called from daemon.c (start, reload), publish.c and feed.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "newsalertd.h"

/* Loads a certificate and, for a secret one, checks that the secret key is
 * well-formed and gives the certificate's public key. */
static int load_cert(const char *key, const char *path, bool secret, struct na_cert *c,
                     struct na_error *err)
{
    char derived[NA_Z85_KEY_LEN + 1];
    uint8_t raw[32];

    if (na_cert_load(path, secret, c, err) < 0)
        return -1;
    if (zmq_z85_decode(raw, c->public_key) == NULL)
        return na_error_set(err, "%s: %s: the public-key is not a valid Z85 key", path,
                            key);
    if (secret) {
        int rc = zmq_curve_public(derived, c->secret_key);
        if (rc < 0 || strcmp(derived, c->public_key) != 0) {
            memset(c, 0, sizeof(*c));
            return na_error_set(err,
                                "%s: %s: the secret-key is not valid or does not match "
                                "the public-key",
                                path, key);
        }
    }
    return 0;
}

int na_curve_load(const struct na_config *cfg, struct na_curve *out, struct na_error *err)
{
    struct na_cert c;

    memset(out, 0, sizeof(*out));
    if (*cfg->publish_curve_secret_key) {
        if (load_cert("publish.curve.secret_key", cfg->publish_curve_secret_key, true, &c,
                      err) < 0)
            goto fail;
        memcpy(out->publish_secret, c.secret_key, sizeof(out->publish_secret));
        memcpy(out->publish_public, c.public_key, sizeof(out->publish_public));
        out->publish_on = true;
    }
    if (*cfg->feed_curve_server_key) {
        if (load_cert("feed.curve.server_key", cfg->feed_curve_server_key, false, &c,
                      err) < 0)
            goto fail;
        memcpy(out->feed_server, c.public_key, sizeof(out->feed_server));
        if (load_cert("feed.curve.secret_key", cfg->feed_curve_secret_key, true, &c,
                      err) < 0)
            goto fail;
        memcpy(out->feed_secret, c.secret_key, sizeof(out->feed_secret));
        memcpy(out->feed_public, c.public_key, sizeof(out->feed_public));
        out->feed_on = true;
    }
    memset(&c, 0, sizeof(c));
    return 0;
fail:
    memset(&c, 0, sizeof(c));
    na_curve_wipe(out);
    return -1;
}

void na_curve_wipe(struct na_curve *c)
{
    /* Volatile stores, so that the compiler keeps this last write. */
    volatile char *p = (volatile char *)c;
    for (size_t i = 0; i < sizeof(*c); i++)
        p[i] = 0;
}

int na_curve_server_setup(struct na_daemon *d, void *socket, struct na_error *err)
{
    int on = 1;

    if (!d->curve.publish_on)
        return 0;
    /* CURVE without a ZAP handler encrypts but lets every client in. */
    if (d->zap == NULL)
        return na_error_set(err, "CURVE server socket without the ZAP handler");
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &on, sizeof(on)) < 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, d->curve.publish_secret,
                       NA_Z85_KEY_LEN) < 0 ||
        zmq_setsockopt(socket, ZMQ_ZAP_DOMAIN, NA_ZAP_DOMAIN, strlen(NA_ZAP_DOMAIN)) < 0)
        return na_error_set(err, "CURVE server options: %s", zmq_strerror(errno));
    return 0;
}

int na_curve_client_setup(struct na_daemon *d, void *socket, struct na_error *err)
{
    if (!d->curve.feed_on)
        return 0;
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, d->curve.feed_server,
                       NA_Z85_KEY_LEN) < 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, d->curve.feed_public,
                       NA_Z85_KEY_LEN) < 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, d->curve.feed_secret,
                       NA_Z85_KEY_LEN) < 0)
        return na_error_set(err, "CURVE client options: %s", zmq_strerror(errno));
    return 0;
}

void na_curve_warn_plain(const struct na_config *cfg, const struct na_curve *c)
{
    if (!c->feed_on)
        for (size_t i = 0; i < cfg->feed_endpoints.n; i++)
            if (!na_endpoint_is_loopback(cfg->feed_endpoints.items[i]))
                na_warn("feed endpoint %s is not loopback and CURVE is off: anyone on "
                        "the path can read the feed or pose as the publisher (set "
                        "feed.curve.server_key and feed.curve.secret_key)",
                        cfg->feed_endpoints.items[i]);
    if (!c->publish_on && !na_endpoint_is_loopback(cfg->publish_endpoint))
        na_warn("publish endpoint %s is not loopback and CURVE is off: anyone who can "
                "reach it can read the alerts (set publish.curve.secret_key and "
                "publish.curve.allow_dir)",
                cfg->publish_endpoint);
}

void na_auth_failure(struct na_daemon *d, const char *what, const char *peer,
                     const char *z85_key)
{
    uint64_t suppressed;
    char more[64] = "";

    d->stats.auth_failures++;
    if (!na_ratelimit_pass(&d->auth_rl, na_mono_ms(), &suppressed))
        return;
    if (suppressed)
        snprintf(more, sizeof(more), " (and %llu more not logged)",
                 (unsigned long long)suppressed);
    /* A public key is public; eight characters are enough to find its file. */
    if (z85_key)
        na_warn("auth: %s: peer %s, key %.8s...%s", what, peer ? peer : "unknown",
                z85_key, more);
    else
        na_warn("auth: %s: peer %s%s", what, peer ? peer : "unknown", more);
}
