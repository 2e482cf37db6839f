/* newsalert tail: subscribes to a daemon's alerts and prints them, once per
 * article even when several of its tags are subscribed. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "newsalert/alert.h"
#include "newsalert.h"

static void tail_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert tail [OPTION]...\n"
        "Print the alerts a newsalertd publishes.\n"
        "  -c, --connect ENDPOINT  the daemon's alert endpoint\n"
        "                          (default tcp://127.0.0.1:5556)\n"
        "  -t, --tag TAG           subscribe to alert.TAG (repeatable; default: all)\n"
        "  -j, --json              one JSON object per alert and line\n"
        "  -n, --count N           exit after N alerts (exit 1 if they do not come)\n"
        "  -T, --timeout S         exit after S seconds without an alert\n"
        "      --curve-server-key FILE  the daemon's public certificate (.pub): connect\n"
        "                          with CURVE (needed when publish.curve is on)\n"
        "      --curve-key FILE    our secret certificate (.key, mode 0600), whose .pub\n"
        "                          is in the daemon's publish.curve.allow_dir\n"
        "  -h, --help              show this help\n"
        "An article with several subscribed tags is printed once: its copies share the\n"
        "alert's seq.\n");
}

/* The copies of one alert (one per tag) are published back to back, so a
 * short memory of recent (epoch, seq) pairs finds the repeats. */
#define SEEN 256

struct seen {
    uint64_t epoch[SEEN], seq[SEEN];
    size_t next;
};

static bool seen_before(struct seen *s, uint64_t epoch, uint64_t seq)
{
    for (size_t i = 0; i < SEEN; i++)
        if (s->seq[i] == seq && s->epoch[i] == epoch && seq != 0)
            return true;
    s->epoch[s->next] = epoch;
    s->seq[s->next] = seq;
    s->next = (s->next + 1) % SEEN;
    return false;
}

static void print_text(const Newsalert__V1__Alert *a)
{
    printf("#%-5llu ", (unsigned long long)a->seq);
    for (size_t i = 0; i < a->n_tags; i++)
        printf("%s%s(%.2f)", i ? " " : "", a->tags[i]->tag, a->tags[i]->confidence);
    printf("  %s\n", a->headline ? a->headline : "");
    if (a->n_tags && a->tags[0]->n_evidence)
        printf("        %s: \"%s\"\n", a->tags[0]->tag,
               a->tags[0]->evidence[0]->sentence);
    if (a->n_actors) {
        printf("        actors:");
        for (size_t i = 0; i < a->n_actors && i < 8; i++)
            printf(" %s", a->actors[i]->code);
        printf("\n");
    }
}

int cmd_tail(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"tag", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"count", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 'T'},
        {"curve-server-key", required_argument, NULL, 'S'},
        {"curve-key", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *endpoint = "tcp://127.0.0.1:5556", *tags[64];
    const char *server_key = NULL, *own_key = NULL;
    size_t n_tags = 0;
    bool json = false;
    long long count = 0;
    double timeout = 0;
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "c:t:jn:T:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            endpoint = optarg;
            break;
        case 't':
            if (n_tags == 64 || strlen(optarg) > 40) {
                tool_error("tail", "too many or too long tags");
                return EXIT_USAGE;
            }
            tags[n_tags++] = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'n':
            count = strtoll(optarg, &end, 10);
            if (*end || count <= 0) {
                tool_error("tail", "--count: expected a positive number, got '%s'",
                           optarg);
                return EXIT_USAGE;
            }
            break;
        case 'T':
            timeout = strtod(optarg, &end);
            if (*end || timeout <= 0) {
                tool_error("tail", "--timeout: expected a positive number, got '%s'",
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
            tail_usage(stdout);
            return EXIT_OK;
        default:
            tail_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        tail_usage(stderr);
        return EXIT_USAGE;
    }
    tool_catch_signals();
    void *ctx = zmq_ctx_new(), *sub = zmq_socket(ctx, ZMQ_SUB);
    int hwm = 0;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    if (n_tags == 0)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "alert.", 6);
    for (size_t i = 0; i < n_tags; i++) {
        char topic[64];
        /* The exact topic: "alert.aid" must not also take "alert.aidx". The
         * topic frame is sent without a terminator, so prefix matching is
         * all ZeroMQ offers; the exact check happens below. */
        int n = snprintf(topic, sizeof(topic), "alert.%s", tags[i]);
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, (size_t)n);
    }
    if (tool_curve_client("tail", sub, server_key, own_key) < 0) {
        zmq_close(sub);
        zmq_ctx_term(ctx);
        return EXIT_USAGE;
    }
    if (zmq_connect(sub, endpoint) < 0) {
        tool_error("tail", "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        zmq_close(sub);
        zmq_ctx_term(ctx);
        return EXIT_USAGE;
    }
    struct seen *seen = calloc(1, sizeof(*seen));
    long long printed = 0;
    double last = tool_now();
    int status = EXIT_OK;
    while (!tool_interrupted && (count == 0 || printed < count)) {
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) <= 0) {
            if (timeout > 0 && tool_now() - last > timeout)
                break;
            continue;
        }
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&topic, sub, 0) < 0 || !zmq_msg_more(&topic) ||
            zmq_msg_recv(&body, sub, 0) < 0) {
            zmq_msg_close(&topic);
            zmq_msg_close(&body);
            continue;
        }
        /* Drain any further frames so the next message starts clean. */
        while (zmq_msg_more(&body)) {
            zmq_msg_close(&body);
            zmq_msg_init(&body);
            if (zmq_msg_recv(&body, sub, 0) < 0)
                break;
        }
        bool wanted = n_tags == 0;
        for (size_t i = 0; i < n_tags && !wanted; i++)
            wanted =
                zmq_msg_size(&topic) == 6 + strlen(tags[i]) &&
                memcmp((char *)zmq_msg_data(&topic) + 6, tags[i], strlen(tags[i])) == 0;
        Newsalert__V1__Alert *a = NULL;
        if (wanted)
            a = newsalert__v1__alert__unpack(NULL, zmq_msg_size(&body),
                                             zmq_msg_data(&body));
        if (wanted && a == NULL)
            tool_error("tail",
                       "an alert that is not a valid newsalert.v1.Alert was skipped");
        if (a && !seen_before(seen, a->epoch, a->seq)) {
            if (json) {
                json_t *o = na_alert_to_json(a);
                char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
                if (s)
                    puts(s);
                free(s);
                json_decref(o);
            } else {
                print_text(a);
            }
            fflush(stdout);
            printed++;
            last = tool_now();
        }
        if (a)
            newsalert__v1__alert__free_unpacked(a, NULL);
        zmq_msg_close(&topic);
        zmq_msg_close(&body);
    }
    if (count && printed < count) {
        tool_error("tail", "%lld of %lld alerts arrived", printed, count);
        status = EXIT_FAIL;
    }
    free(seen);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    return status;
}
