/* ZeroMQ endpoint strings checked before they reach zmq_bind or
 * zmq_connect, so that a typo is a config error naming the key rather than
 * a socket that never connects. */
#ifndef NEWSALERT_ENDPOINT_H
#define NEWSALERT_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

enum na_endpoint_use {
    NA_ENDPOINT_CONNECT, /* tcp://HOST:PORT, a name or a numeric address */
    NA_ENDPOINT_BIND     /* tcp://ADDR:PORT with ADDR '*', numeric or an
                          * interface name, and PORT '*' for any free one */
};

/* 0 when ep is a tcp:// or ipc:// endpoint this use can work with; -1 with
 * the reason in why otherwise (no name lookup, no socket). */
int na_endpoint_check(const char *ep, enum na_endpoint_use use, char *why, size_t why_len);

/* True for an endpoint that stays on this machine: tcp to 127.0.0.0/8, ::1
 * or localhost (the destination of "tcp://source;destination"), ipc and
 * inproc. The warnings about plain endpoints off the machine ask it. */
bool na_endpoint_is_loopback(const char *endpoint);

#endif
