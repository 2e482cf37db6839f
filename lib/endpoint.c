/* Endpoint syntax as libzmq reads it, for the two transports the daemon
 * serves: tcp://HOST:PORT (connect may name a source address first,
 * "SRC;HOST:PORT") and ipc://PATH. Everything else (inproc, pgm, a missing
 * port) is refused with a reason. And whether an endpoint stays on this
 * machine, for the warnings about plain sockets that do not. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "newsalert/endpoint.h"

static int why_set(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && len)
        vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* A DNS name: labels of letters, digits and hyphens, not starting or
 * ending with a hyphen. An interface name for bind is letters, digits and
 * a few of ._-, which this also admits in the common cases (eth0, lo). */
static bool host_name_ok(const char *h, size_t n)
{
    size_t label = 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0 || h[i - 1] == '-')
                return false;
            label = 0;
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (label == 0 && c == '-')
                return false;
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return h[n - 1] != '-';
}

static int check_port(const char *p, bool any_ok, char *why, size_t len)
{
    if (*p == '\0')
        return why_set(why, len, "the port is missing (tcp://HOST:PORT)");
    if (!strcmp(p, "*") || !strcmp(p, "0")) {
        if (any_ok)
            return 0;
        return why_set(why, len, "a connect needs a real port, not '%s'", p);
    }
    unsigned long v = 0;
    for (const char *s = p; *s; s++) {
        if (*s < '0' || *s > '9' || s - p >= 5)
            return why_set(why, len, "port '%.16s' is not a number from 1 to 65535", p);
        v = v * 10 + (unsigned long)(*s - '0');
    }
    if (v == 0 || v > 65535)
        return why_set(why, len, "port '%.16s' is not a number from 1 to 65535", p);
    return 0;
}

static int check_tcp(const char *a, enum na_endpoint_use use, char *why, size_t len)
{
    bool bind = use == NA_ENDPOINT_BIND;
    const char *semi = strchr(a, ';');
    if (semi) {
        if (bind)
            return why_set(why, len, "a source address ('%.*s;') is for connect only",
                           (int)(semi - a), a);
        a = semi + 1;
    }
    const char *colon = strrchr(a, ':');
    if (colon == NULL)
        return why_set(why, len, "the port is missing (tcp://HOST:PORT)");
    size_t hn = (size_t)(colon - a);
    const char *h = a;
    char buf[256];
    if (hn >= 2 && a[0] == '[' && a[hn - 1] == ']') {
        unsigned char addr[16];
        if (hn - 2 >= sizeof(buf))
            return why_set(why, len, "the address is too long");
        memcpy(buf, a + 1, hn - 2);
        buf[hn - 2] = '\0';
        /* A zone ("fe80::1%eth0") is allowed; the address before it must parse. */
        buf[strcspn(buf, "%")] = '\0';
        if (inet_pton(AF_INET6, buf, addr) != 1)
            return why_set(why, len, "'%.*s' is not an IPv6 address", (int)hn, a);
    } else if (hn == 0) {
        return why_set(why, len, "the host is missing (tcp://HOST:PORT)");
    } else if (bind && hn == 1 && h[0] == '*') {
        /* every interface */
    } else if (memchr(h, ':', hn)) {
        return why_set(why, len, "an IPv6 address goes in brackets: tcp://[%.*s]:PORT",
                       (int)hn, h);
    } else if (!host_name_ok(h, hn)) {
        return why_set(why, len, "'%.*s' is not a host name or address", (int)hn, h);
    }
    return check_port(colon + 1, bind, why, len);
}

int na_endpoint_check(const char *ep, enum na_endpoint_use use, char *why, size_t len)
{
    if (ep == NULL || *ep == '\0')
        return why_set(why, len, "the endpoint is empty");
    for (const char *s = ep; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s == 0x7f)
            return why_set(why, len,
                           "the endpoint contains a space or a control character");
    const char *sep = strstr(ep, "://");
    if (sep == NULL)
        return why_set(why, len,
                       "expected TRANSPORT://ADDRESS (tcp://HOST:PORT or ipc://PATH)");
    size_t sn = (size_t)(sep - ep);
    const char *addr = sep + 3;
    if (sn == 3 && !strncmp(ep, "tcp", 3))
        return check_tcp(addr, use, why, len);
    if (sn == 3 && !strncmp(ep, "ipc", 3)) {
        size_t n = strlen(addr);
        if (n == 0)
            return why_set(why, len,
                           "the ipc path is missing (ipc:///run/newsalertd/NAME)");
        if (n >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return why_set(why, len, "the ipc path is %zu bytes; at most %zu fit", n,
                           sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        if (!strcmp(addr, "*") && use == NA_ENDPOINT_CONNECT)
            return why_set(why, len, "a connect needs a real ipc path, not '*'");
        return 0;
    }
    if (sn == 6 && !strncmp(ep, "inproc", 6))
        return why_set(why, len,
                       "inproc:// reaches only this process; use tcp:// or ipc://");
    return why_set(why, len, "transport '%.*s' is not supported; use tcp:// or ipc://",
                   (int)(sn > 16 ? 16 : sn), ep);
}

bool na_endpoint_is_loopback(const char *ep)
{
    char host[256];
    struct in_addr v4;
    struct in6_addr v6;

    if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9))
        return true;
    if (strncmp(ep, "tcp://", 6) != 0)
        return false; /* pgm, udp, ws...: off the machine as far as we know */
    const char *h = ep + 6;
    /* "tcp://source;destination": the peer is the destination. */
    const char *semi = strchr(h, ';');
    if (semi)
        h = semi + 1;
    const char *colon = strrchr(h, ':');
    if (colon == NULL || (size_t)(colon - h) >= sizeof(host))
        return false;
    memcpy(host, h, (size_t)(colon - h));
    host[colon - h] = '\0';
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n < 2 || host[n - 1] != ']')
            return false;
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    if (!strcmp(host, "localhost"))
        return true;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6);
    return false; /* "*", an interface name, another host name */
}
