/* newsalert replay: plays a recorded feed on a PUB (XPUB) socket, at the
 * recorded pace, faster, or as fast as possible. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "newsalert.h"

/* Without -w, how long replay waits for a first subscriber before it warns
 * and publishes anyway: a PUB socket drops what nobody subscribes to, so a
 * replay started a moment before its consumer would lose its start. */
#define REPLAY_DEFAULT_WAIT_S 5
/* ... and after how long without one it says that it is waiting. */
#define REPLAY_WAIT_NOTICE_S 0.5

static void replay_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert replay FILE --bind ENDPOINT [OPTION]...\n"
        "Publish the recorded feed FILE as a feed publisher would.\n"
        "  -b, --bind ENDPOINT         endpoint to bind the PUB socket to (required)\n"
        "      --speed X               play X times faster than recorded (default 1)\n"
        "  -m, --max-rate              play as fast as possible\n"
        "  -r, --rate N                play at N messages per second\n"
        "  -l, --loop N                play the file N times (default 1)\n"
        "  -w, --wait-subscribers N    wait for N subscriptions before starting, and\n"
        "                              fail when they do not come (0: start at once)\n"
        "                              Default: wait for one, then warn and go on\n"
        "  -d, --delay MS              wait MS milliseconds before starting\n"
        "  -T, --timeout S             how long to wait for subscribers (default 30\n"
        "                              with -w N, %d without)\n"
        "      --curve-key FILE        our secret certificate (.key, mode 0600): serve\n"
        "                              the feed with CURVE; newsalertd's\n"
        "                              feed.curve.server_key is then our .pub. Client\n"
        "                              keys are not checked (no ZAP handler here)\n"
        "  -h, --help                  show this help\n"
        "Progress is shown on a terminal; nothing is printed when stderr is piped,\n"
        "but for warnings: no subscriber to publish to, or none ever seen.\n",
        REPLAY_DEFAULT_WAIT_S);
}

static void sleep_until(double t)
{
    double now = tool_now();
    if (t <= now)
        return;
    double d = t - now;
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    nanosleep(&ts, NULL);
}

/* XPUB (verbose) hands us each subscription as a message: counts the
 * subscribes waiting on the socket into *have. */
static void count_subscriptions(void *pub, int *have)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (zmq_msg_recv(&m, pub, ZMQ_DONTWAIT) >= 0)
        if (zmq_msg_size(&m) > 0 && ((const uint8_t *)zmq_msg_data(&m))[0] == 1)
            (*have)++;
    zmq_msg_close(&m);
}

/* Waits until *have reaches want or timeout passes; notice (when not NULL)
 * is said once if nobody has come after REPLAY_WAIT_NOTICE_S. */
static int wait_subscribers(void *pub, int want, double timeout, int *have,
                            const char *notice)
{
    double start = tool_now(), deadline = start + timeout;
    bool said = notice == NULL;
    count_subscriptions(pub, have);
    while (*have < want && !tool_interrupted) {
        zmq_pollitem_t item = {pub, 0, ZMQ_POLLIN, 0};
        double now = tool_now(), left = deadline - now;
        if (left <= 0)
            return -1;
        if (!said && now - start >= REPLAY_WAIT_NOTICE_S) {
            tool_error("replay", "%s", notice);
            said = true;
        }
        double step = said ? left : REPLAY_WAIT_NOTICE_S - (now - start);
        if (step > left)
            step = left;
        if (zmq_poll(&item, 1, (long)(step * 1000) + 1) > 0)
            count_subscriptions(pub, have);
    }
    return *have >= want ? 0 : -1;
}

static void progress(uint64_t sent, double started, uint64_t offset, uint64_t size,
                     int loop, int loops)
{
    double el = tool_now() - started, rate = el > 0 ? (double)sent / el : 0;
    double pct = size ? 100.0 * (double)offset / (double)size : 0;
    double frac = (loop + pct / 100.0) / loops;
    double eta = frac > 0 ? el / frac - el : 0;
    fprintf(stderr, "\r%llu messages  %.0f/s  %5.1f%%  loop %d/%d  ETA %.0fs   ",
            (unsigned long long)sent, rate, pct, loop + 1, loops, eta);
}

int cmd_replay(int argc, char **argv)
{
    static const struct option opts[] = {
        {"bind", required_argument, NULL, 'b'},
        {"speed", required_argument, NULL, 256},
        {"max-rate", no_argument, NULL, 'm'},
        {"rate", required_argument, NULL, 'r'},
        {"loop", required_argument, NULL, 'l'},
        {"wait-subscribers", required_argument, NULL, 'w'},
        {"delay", required_argument, NULL, 'd'},
        {"timeout", required_argument, NULL, 'T'},
        {"curve-key", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *bind = NULL, *own_key = NULL;
    double speed = 1, rate = 0, timeout = 0;
    bool max_rate = false;
    int loops = 1, wait_subs = -1, delay_ms = 0, c;
    char *end;

    while ((c = getopt_long(argc, argv, "b:mr:l:w:d:T:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            bind = optarg;
            break;
        case 256: /* --speed */
            speed = strtod(optarg, &end);
            if (*end || speed <= 0) {
                tool_error("replay", "--speed: expected a positive number, got '%s'",
                           optarg);
                return EXIT_USAGE;
            }
            break;
        case 'm':
            max_rate = true;
            break;
        case 'r':
            rate = strtod(optarg, &end);
            if (*end || rate <= 0) {
                tool_error("replay", "--rate: expected a positive number, got '%s'",
                           optarg);
                return EXIT_USAGE;
            }
            break;
        case 'l':
        case 'w':
        case 'd': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 1000000000) {
                tool_error("replay", "-%c: expected a whole number, got '%s'", c, optarg);
                return EXIT_USAGE;
            }
            if (c == 'l')
                loops = (int)v;
            else if (c == 'w')
                wait_subs = (int)v;
            else
                delay_ms = (int)v;
            break;
        }
        case 'T':
            timeout = strtod(optarg, &end);
            if (*end || timeout <= 0) {
                tool_error("replay", "--timeout: expected a positive number, got '%s'",
                           optarg);
                return EXIT_USAGE;
            }
            break;
        case 'K':
            own_key = optarg;
            break;
        case 'h':
            replay_usage(stdout);
            return EXIT_OK;
        default:
            replay_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (bind == NULL || optind != argc - 1) {
        replay_usage(stderr);
        return EXIT_USAGE;
    }
    const char *path = argv[optind];
    struct na_error err;
    struct na_feed_reader *r = na_feed_reader_open(path, &err);
    if (r == NULL) {
        tool_error("replay", "%s", err.msg);
        return EXIT_FAIL;
    }
    na_feed_reader_close(r);

    tool_catch_signals();
    void *ctx = zmq_ctx_new();
    void *pub = zmq_socket(ctx, ZMQ_XPUB);
    int hwm = 0, linger = 5000, verbose = 1;
    zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(pub, ZMQ_XPUB_VERBOSE, &verbose, sizeof(verbose));
    if (tool_curve_server("replay", pub, own_key) < 0) {
        zmq_close(pub);
        zmq_ctx_term(ctx);
        return EXIT_USAGE;
    }
    if (zmq_bind(pub, bind) < 0) {
        tool_error("replay", "cannot bind %s: %s", bind, zmq_strerror(errno));
        zmq_close(pub);
        zmq_ctx_term(ctx);
        return EXIT_FAIL;
    }
    int status = EXIT_OK, subscribers = 0;
    if (wait_subs > 0 &&
        wait_subscribers(pub, wait_subs, timeout > 0 ? timeout : 30, &subscribers, NULL) < 0) {
        tool_error("replay", "%d subscriber(s) did not arrive within %.0f s", wait_subs,
                   timeout > 0 ? timeout : 30);
        status = EXIT_FAIL;
        loops = 0;
    } else if (wait_subs < 0) {
        double t = timeout > 0 ? timeout : REPLAY_DEFAULT_WAIT_S;
        char notice[600];
        snprintf(notice, sizeof(notice),
                 "waiting up to %.0f s for a subscriber on %s (-w 0: do not wait)", t, bind);
        if (wait_subscribers(pub, 1, t, &subscribers, notice) < 0 && !tool_interrupted)
            tool_error("replay",
                       "warning: no subscriber on %s after %.0f s; publishing anyway, and "
                       "what nobody subscribes to is lost",
                       bind, t);
    }
    if (delay_ms)
        sleep_until(tool_now() + delay_ms / 1000.0);

    bool show = tool_is_tty(2);
    uint64_t sent = 0, bad = 0;
    double started = tool_now(), last_shown = 0;
    for (int loop = 0; loop < loops && !tool_interrupted; loop++) {
        struct na_record rec;
        r = na_feed_reader_open(path, &err);
        if (r == NULL) {
            tool_error("replay", "%s", err.msg);
            status = EXIT_FAIL;
            break;
        }
        uint64_t first_ns = 0;
        double loop_start = tool_now();
        int rc = 0;
        while (!tool_interrupted && (rc = na_feed_reader_next(r, &rec, &err)) > 0) {
            if (first_ns == 0)
                first_ns = rec.time_ns;
            if (rate > 0)
                sleep_until(started + (double)sent / rate);
            else if (!max_rate)
                sleep_until(loop_start + (double)(rec.time_ns - first_ns) / 1e9 / speed);
            for (size_t i = 0; i < rec.n_frames; i++) {
                int flags = i + 1 < rec.n_frames ? ZMQ_SNDMORE : 0;
                while (zmq_send(pub, rec.frames[i].data, rec.frames[i].len, flags) < 0) {
                    if (errno != EINTR || tool_interrupted) {
                        bad++;
                        break;
                    }
                }
            }
            sent++;
            if (subscribers == 0)
                count_subscriptions(pub, &subscribers);
            if (show && tool_now() - last_shown > 0.2) {
                last_shown = tool_now();
                progress(sent, started, na_feed_reader_offset(r), na_feed_reader_size(r),
                         loop, loops);
            }
        }
        if (rc < 0 && na_feed_reader_truncated(r)) {
            tool_error("replay",
                       "warning: %s: %s; ignored, the records before it were sent", path,
                       err.msg);
        } else if (rc < 0) {
            tool_error("replay", "%s: %s; the records before it were sent", path,
                       err.msg);
            status = EXIT_FAIL;
        }
        na_feed_reader_close(r);
    }
    if (show) {
        progress(sent, started, 1, 1, loops ? loops - 1 : 0, loops ? loops : 1);
        fputc('\n', stderr);
    }
    if (bad)
        tool_error("replay", "%llu messages could not be sent", (unsigned long long)bad);
    if (sent && subscribers == 0)
        tool_error("replay", "warning: no subscriber was seen on %s: the %llu messages went "
                             "nowhere",
                   bind, (unsigned long long)sent);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    return tool_interrupted ? EXIT_FAIL : status;
}
