/* na-client-probe: the consumer of include/newsalert/client.h as a program,
 * so that the integration tests drive the C helper itself against a real
 * daemon, not only through `newsalert tail`.
 *
 *   na-client-probe [OPTION]... ALERTS CATCHUP [SINCE|-] [RCVHWM] [COUNT] [IDLE_MS]
 *
 * Follows every tag, or those of --tag TAG (repeatable). SINCE (a seq, or - for live
 * only) asks for history; RCVHWM is the live socket's receive high-water mark (0: the
 * client's default). Prints one line per alert, "seq epoch article_id", flushed, and
 * exits 0 after COUNT alerts (0: no limit) or once nothing has come for
 * IDLE_MS (default 10000) with no catch-up in flight; then the client's
 * counters go to stderr as "stats delivered=N live=N caught_up=N ...".
 * Exit 1 when the daemon refuses a catch-up request, 64 on bad arguments.
 *
 * Options: --catchup-timeout-ms MS and --hold-ms MS set the client's
 * options of those names; --poll waits on na_client_sockets and
 * na_client_timer_ms itself and calls na_client_next(c, 0), as a caller
 * that polls many clients does; --note-heartbeat says on stderr when the
 * first heartbeat has come ("na-client-probe: heartbeat seen"), so that a
 * test can wait for it. */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "newsalert/client.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_stats(struct na_client *c)
{
    const struct na_client_stats *s = na_client_stats(c);
    fprintf(stderr,
            "stats delivered=%" PRIu64 " live=%" PRIu64 " caught_up=%" PRIu64
            " duplicates=%" PRIu64 " gaps=%" PRIu64 " requests=%" PRIu64 " gone=%" PRIu64
            " restarts=%" PRIu64 " invalid=%" PRIu64 " heartbeats=%" PRIu64
            " stale=%" PRIu64 " timeouts=%" PRIu64 " unrepaired=%" PRIu64 "\n",
            s->delivered, s->live, s->caught_up, s->duplicates, s->gaps, s->requests,
            s->gone, s->restarts, s->invalid, s->heartbeats, s->stale, s->timeouts,
            s->unrepaired);
}

/* One wait of at most 100 ms the way a caller of many clients does it:
 * zmq_poll on the client's sockets and timer, then one pass that does not
 * block. */
static int next_polled(struct na_client *c, Newsalert__V1__Alert **a,
                       struct na_error *err)
{
    int rc = na_client_next(c, 0, a, err);
    if (rc != 0)
        return rc;
    void *socks[2];
    size_t n = na_client_sockets(c, socks);
    zmq_pollitem_t items[2] = {{socks[0], 0, ZMQ_POLLIN, 0},
                               {socks[1], 0, ZMQ_POLLIN, 0}};
    int t = na_client_timer_ms(c);
    zmq_poll(items, (int)n, t >= 0 && t < 100 ? t : 100);
    return na_client_next(c, 0, a, err);
}

static void usage(void)
{
    fprintf(stderr, "usage: na-client-probe [--tag TAG]... [--catchup-timeout-ms MS] "
                    "[--hold-ms MS] [--poll] [--note-heartbeat] ALERTS CATCHUP [SINCE|-] "
                    "[RCVHWM] [COUNT] [IDLE_MS]\n");
}

static bool number(const char *s, long long *out)
{
    char *end;
    *out = strtoll(s, &end, 10);
    return *s && !*end && *out >= 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tag", required_argument, NULL, 't'},
        {"catchup-timeout-ms", required_argument, NULL, 'T'},
        {"hold-ms", required_argument, NULL, 'H'},
        {"poll", no_argument, NULL, 'p'},
        {"note-heartbeat", no_argument, NULL, 'b'},
        {NULL, 0, NULL, 0}};
    struct na_client_opts o = {0};
    struct na_error err;
    long long count = 0, idle_ms = 10000, v;
    bool poll = false, note_heartbeat = false;
    int opt;

    while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (opt) {
        case 't':
            if (o.n_tags == NA_CLIENT_MAX_TAGS) {
                fprintf(stderr, "na-client-probe: --tag: at most %d\n",
                        NA_CLIENT_MAX_TAGS);
                return 64;
            }
            o.tags[o.n_tags++] = optarg;
            break;
        case 'T':
        case 'H':
            if (!number(optarg, &v) || v > 3600000) {
                fprintf(stderr,
                        "na-client-probe: --%s: expected milliseconds, got '%s'\n",
                        opt == 'T' ? "catchup-timeout-ms" : "hold-ms", optarg);
                return 64;
            }
            *(opt == 'T' ? &o.catchup_timeout_ms : &o.hold_ms) = (int)v;
            break;
        case 'p':
            poll = true;
            break;
        case 'b':
            note_heartbeat = true;
            break;
        default:
            usage();
            return 64;
        }
    }
    argv += optind - 1;
    argc -= optind - 1;
    if (argc < 3 || argc > 7) {
        usage();
        return 64;
    }
    o.alerts = argv[1];
    o.catchup = argv[2];
    if (argc > 3 && strcmp(argv[3], "-") != 0) {
        o.history = true;
        o.since_seq = strtoull(argv[3], NULL, 10);
    }
    if (argc > 4)
        o.rcvhwm = atoi(argv[4]);
    if (argc > 5)
        count = atoll(argv[5]);
    if (argc > 6)
        idle_ms = atoll(argv[6]);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    struct na_client *c = na_client_new(&o, &err);
    if (c == NULL) {
        fprintf(stderr, "na-client-probe: %s\n", err.msg);
        return 64;
    }
    int status = 0;
    long long printed = 0;
    int64_t last = now_ms();
    while (!stop && (count == 0 || printed < count)) {
        Newsalert__V1__Alert *a;
        int rc = poll ? next_polled(c, &a, &err) : na_client_next(c, 100, &a, &err);
        if (note_heartbeat && na_client_stats(c)->heartbeats > 0) {
            note_heartbeat = false;
            fprintf(stderr, "na-client-probe: heartbeat seen\n");
        }
        const char *warning = na_client_warning(c);
        if (warning)
            fprintf(stderr, "na-client-probe: warning: %s\n", warning);
        if (rc < 0) {
            fprintf(stderr, "na-client-probe: %s\n", err.msg);
            status = 1;
            break;
        }
        if (rc == 0) {
            if (now_ms() - last > idle_ms && !na_client_busy(c))
                break;
            continue;
        }
        printf("%" PRIu64 " %" PRIu64 " %s\n", a->seq, a->epoch,
               a->article_id ? a->article_id : "");
        fflush(stdout);
        printed++;
        last = now_ms();
    }
    print_stats(c);
    na_client_free(c);
    return status;
}
