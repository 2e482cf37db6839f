/* newsalert record: writes what a feed publishes to a recorded-feed file,
 * each message with its receive time and all its frames. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "newsalert.h"

static void record_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert record --feed ENDPOINT -o FILE [OPTION]...\n"
        "Record every message a feed publishes, with its receive time and topic.\n"
        "  -f, --feed ENDPOINT   feed to connect to (required)\n"
        "      --topic PREFIX    subscribe to PREFIX (repeatable; default: all)\n"
        "  -o, --output FILE     recorded feed to write (required)\n"
        "  -n, --count N         stop after N messages\n"
        "  -D, --duration S      stop after S seconds\n"
        "      --curve-server-key FILE  the feed publisher's public certificate\n"
        "                        (.pub): connect with CURVE\n"
        "      --curve-key FILE      our secret certificate (.key, mode 0600); without\n"
        "                        it a throwaway key pair is used\n"
        "  -h, --help            show this help\n"
        "SIGINT or SIGTERM stops it cleanly, leaving a valid file.\n");
}

int cmd_record(int argc, char **argv)
{
    static const struct option opts[] = {
        {"feed", required_argument, NULL, 'f'},
        {"topic", required_argument, NULL, 256},
        {"output", required_argument, NULL, 'o'},
        {"count", required_argument, NULL, 'n'},
        {"duration", required_argument, NULL, 'D'},
        {"curve-server-key", required_argument, NULL, 'S'},
        {"curve-key", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *feed = NULL, *out = NULL, *topics[64];
    const char *server_key = NULL, *own_key = NULL;
    size_t n_topics = 0;
    long long count = 0;
    double duration = 0;
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "f:o:n:D:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            feed = optarg;
            break;
        case 256: /* --topic */
            if (n_topics == 64) {
                tool_error("record", "at most 64 topics");
                return EXIT_USAGE;
            }
            topics[n_topics++] = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'n':
            count = strtoll(optarg, &end, 10);
            if (*end || count <= 0) {
                tool_error("record", "--count: expected a positive number, got '%s'",
                           optarg);
                return EXIT_USAGE;
            }
            break;
        case 'D':
            duration = strtod(optarg, &end);
            if (*end || duration <= 0) {
                tool_error("record", "--duration: expected a positive number, got '%s'",
                           optarg);
                return EXIT_USAGE;
            }
            break;
        case 'S':
            server_key = optarg;
            break;
        case 'K':
            own_key = optarg;
            break;
        case 'h':
            record_usage(stdout);
            return EXIT_OK;
        default:
            record_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (feed == NULL || out == NULL || optind != argc) {
        record_usage(stderr);
        return EXIT_USAGE;
    }
    struct na_error err;
    void *ctx = zmq_ctx_new(), *sub = zmq_socket(ctx, ZMQ_SUB);
    if (tool_curve_client("record", sub, server_key, own_key) < 0) {
        zmq_close(sub);
        zmq_ctx_term(ctx);
        return EXIT_USAGE;
    }
    struct na_feed_writer *w = na_feed_writer_open(out, &err);
    if (w == NULL) {
        tool_error("record", "%s", err.msg);
        zmq_close(sub);
        zmq_ctx_term(ctx);
        return EXIT_FAIL;
    }
    tool_catch_signals();
    int hwm = 0;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    if (n_topics == 0)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    for (size_t i = 0; i < n_topics; i++)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topics[i], strlen(topics[i]));
    int status = EXIT_OK;
    if (zmq_connect(sub, feed) < 0) {
        tool_error("record", "cannot connect to %s: %s", feed, zmq_strerror(errno));
        status = EXIT_FAIL;
    }
    double deadline = duration > 0 ? tool_now() + duration : 0;
    long long n = 0, clipped = 0;
    bool show = tool_is_tty(2);
    while (status == EXIT_OK && !tool_interrupted && (count == 0 || n < count) &&
           (deadline == 0 || tool_now() < deadline)) {
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        zmq_msg_t parts[NA_FEED_MAX_FRAMES];
        struct na_frame frames[NA_FEED_MAX_FRAMES];
        size_t k = 0;
        int more = 1;
        bool cut = false;
        uint64_t t = tool_now_ns();
        while (more) {
            zmq_msg_t extra, *m = k < NA_FEED_MAX_FRAMES ? &parts[k] : &extra;
            zmq_msg_init(m);
            if (zmq_msg_recv(m, sub, 0) < 0) {
                zmq_msg_close(m);
                break;
            }
            more = zmq_msg_more(m);
            if (m == &extra) {
                zmq_msg_close(m); /* past the format's limit: dropped, counted */
                cut = true;
            } else {
                k++;
            }
        }
        clipped += cut;
        for (size_t i = 0; i < k; i++)
            frames[i] =
                (struct na_frame){zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i])};
        if (k && na_feed_writer_append(w, t, frames, k, &err) < 0) {
            tool_error("record", "%s: %s", out, err.msg);
            status = EXIT_FAIL;
        }
        for (size_t i = 0; i < k; i++)
            zmq_msg_close(&parts[i]);
        n++;
        if (show)
            fprintf(stderr, "\r%lld messages recorded", n);
    }
    if (show)
        fputc('\n', stderr);
    if (clipped)
        tool_error("record",
                   "warning: %lld messages had more than %d frames; only their first %d "
                   "were recorded",
                   clipped, NA_FEED_MAX_FRAMES, NA_FEED_MAX_FRAMES);
    if (na_feed_writer_close(w, &err) < 0) {
        tool_error("record", "%s: %s", out, err.msg);
        status = EXIT_FAIL;
    }
    zmq_close(sub);
    zmq_ctx_term(ctx);
    return status;
}
