/* na-client-probe: the consumer of include/newsalert/client.h as a program,
 * so that the integration tests drive the C helper itself against a real
 * daemon, not only through `newsalert tail`.
 *
 *   na-client-probe ALERTS CATCHUP [SINCE|-] [RCVHWM] [COUNT] [IDLE_MS]
 *
 * Follows every tag. SINCE (a seq, or - for live only) asks for history;
 * RCVHWM is the live socket's receive high-water mark (0: the client's
 * default). Prints one line per alert, "seq epoch article_id", flushed, and
 * exits 0 after COUNT alerts (0: no limit) or once nothing has come for
 * IDLE_MS (default 10000) with no catch-up in flight; then the client's
 * counters go to stderr as "stats delivered=N live=N caught_up=N ...".
 * Exit 1 when the daemon refuses a catch-up request, 64 on bad arguments. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
            " restarts=%" PRIu64 " invalid=%" PRIu64 "\n",
            s->delivered, s->live, s->caught_up, s->duplicates, s->gaps, s->requests,
            s->gone, s->restarts, s->invalid);
}

int main(int argc, char **argv)
{
    struct na_client_opts o = {0};
    struct na_error err;
    long long count = 0, idle_ms = 10000;

    if (argc < 3 || argc > 7) {
        fprintf(stderr, "usage: na-client-probe ALERTS CATCHUP [SINCE|-] [RCVHWM] "
                        "[COUNT] [IDLE_MS]\n");
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
        int rc = na_client_next(c, 100, &a, &err);
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
