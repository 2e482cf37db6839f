/* newsalert wait-ready: polls newsalertd's /healthz until it answers 200,
 * so that a script or a test starts its feed when the daemon is ready
 * instead of grepping its log. Only the status code counts: the body is
 * the daemon's to change. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "newsalert.h"

#define WAIT_DEFAULT_URL "http://127.0.0.1:9464/healthz"

static void wait_usage(FILE *out)
{
    fprintf(out,
            "Usage: newsalert wait-ready [OPTION]...\n"
            "Wait until newsalertd's /healthz answers 200 (ready).\n"
            "  -u, --url URL        the health endpoint (default " WAIT_DEFAULT_URL ");\n"
            "                       a URL without a path gets /healthz\n"
            "  -T, --timeout S      give up after S seconds (default 30)\n"
            "  -i, --interval S     between two polls (default 0.2)\n"
            "  -q, --quiet          say nothing on success\n"
            "  -h, --help           show this help\n"
            "Exit status: 0 ready; 1 not ready in time (the last answer, or why none\n"
            "came, is on stderr); 64 usage error.\n");
}

static int parse_seconds(const char *opt, const char *arg, double *out)
{
    char *end;
    double v = strtod(arg, &end);
    if (*end || end == arg || v <= 0 || v > 86400) {
        tool_error("wait-ready", "%s: expected seconds (a positive number), got '%s'",
                   opt, arg);
        return -1;
    }
    *out = v;
    return 0;
}

static void nap(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* The first line of a body, for the message on failure. */
static void first_line(const char *body, char *out, size_t len)
{
    size_t n = strcspn(body ? body : "", "\r\n");
    if (n >= len)
        n = len - 1;
    memcpy(out, body ? body : "", n);
    out[n] = '\0';
}

int cmd_wait_ready(int argc, char **argv)
{
    static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
                                         {"timeout", required_argument, NULL, 'T'},
                                         {"interval", required_argument, NULL, 'i'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *url = WAIT_DEFAULT_URL;
    double timeout = 30, interval = 0.2;
    bool quiet = false;
    int c;

    while ((c = getopt_long(argc, argv, "u:T:i:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 'T':
            if (parse_seconds("--timeout", optarg, &timeout) < 0)
                return EXIT_USAGE;
            break;
        case 'i':
            if (parse_seconds("--interval", optarg, &interval) < 0)
                return EXIT_USAGE;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            wait_usage(stdout);
            return EXIT_OK;
        default:
            wait_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        tool_error("wait-ready", "unexpected argument '%s'", argv[optind]);
        wait_usage(stderr);
        return EXIT_USAGE;
    }
    char host[256], path[512];
    int port;
    if (tool_http_parse_url(url, host, sizeof(host), &port, path, sizeof(path)) < 0) {
        tool_error("wait-ready", "--url: expected http://HOST[:PORT][/PATH], got '%s'",
                   url);
        return EXIT_USAGE;
    }
    if (!strcmp(path, "/"))
        snprintf(path, sizeof(path), "/healthz");

    tool_catch_signals();
    double deadline = tool_now() + timeout;
    char last[300] = "no answer yet";
    while (!tool_interrupted) {
        double left = deadline - tool_now();
        struct tool_http_reply r;
        /* One poll may not use up the whole wait on a peer that accepts
         * and never answers. */
        double per = left < 2 ? left : 2;
        if (tool_http_get(host, port, path, per > 0.01 ? per : 0.01, &r) == 0) {
            if (r.status == 200) {
                if (!quiet)
                    fprintf(stderr, "newsalert wait-ready: %s:%d%s is ready\n", host,
                            port, path);
                tool_http_reply_clear(&r);
                return EXIT_OK;
            }
            char line[200];
            first_line(r.body, line, sizeof(line));
            snprintf(last, sizeof(last), "HTTP %d%s%s", r.status, line[0] ? ": " : "",
                     line);
            tool_http_reply_clear(&r);
        } else {
            snprintf(last, sizeof(last), "%s", r.error);
        }
        left = deadline - tool_now();
        if (left <= 0)
            break;
        nap(interval < left ? interval : left);
    }
    if (tool_interrupted)
        tool_error("wait-ready", "interrupted before %s:%d%s was ready; last answer: %s",
                   host, port, path, last);
    else
        tool_error("wait-ready", "%s:%d%s not ready within %.1f s; last answer: %s", host,
                   port, path, timeout, last);
    return EXIT_FAIL;
}
