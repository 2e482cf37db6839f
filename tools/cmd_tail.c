/* newsalert tail: prints a daemon's alerts in seq order, once per article
 * even when several of its tags are subscribed, with nothing missing that
 * the daemon's journal kept: it is a client.h consumer, so it fetches
 * history (--since) and the gaps it sees from the catch-up endpoint. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "newsalert/alert.h"
#include "newsalert/cert.h"
#include "newsalert/client.h"
#include "newsalert/jsonl.h"
#include "newsalert/v1/catchup.pb-c.h"
#include "newsalert.h"

/* How long tail waits for a first sign of life (a catch-up answer, a
 * heartbeat or an alert) before it says on stderr that nothing answers. */
#define TAIL_SILENT_S 3.0

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
        "  -s, --since SEQ         start with every journalled alert after SEQ (0: all)\n"
        "  -C, --catchup ENDPOINT  the daemon's catch-up endpoint, asked for history "
        "and\n"
        "                          for gaps (default: the alert port + 1 for tcp://,\n"
        "                          none otherwise; off: none)\n"
        "      --curve-server-key FILE  the daemon's public certificate (.pub): connect\n"
        "                          with CURVE (needed when publish.curve is on)\n"
        "      --curve-key FILE    our secret certificate (.key, mode 0600), whose .pub\n"
        "                          is in the daemon's publish.curve.allow_dir\n"
        "  -h, --help              show this help\n"
        "An article with several subscribed tags is printed once: its copies share the\n"
        "alert's seq. Warnings (history gone from the journal, a daemon that started\n"
        "its numbering over, an endpoint where nothing answers) go to stderr.\n"
        "With a catch-up endpoint, --tag is checked against the daemon's rules: a tag\n"
        "they do not define is an error (exit 64).\n");
}

/* The daemon's catch-up endpoint, asked once for nothing (the empty range
 * after the largest seq) with the tags we follow. Its answer is the daemon's
 * own word on two things: that it is there, and whether each tag is one its
 * loaded rules define (it refuses an unknown tag by name). The rules on this
 * machine may not be the daemon's, so they are not asked. */
struct tail_probe {
    void *dealer;
    bool answered;
};

static int probe_start(struct tail_probe *p, void *ctx, const struct na_client_opts *o)
{
    Newsalert__V1__CatchupRequest r = NEWSALERT__V1__CATCHUP_REQUEST__INIT;
    uint8_t buf[4096];
    int linger = 0;

    p->answered = false;
    p->dealer = zmq_socket(ctx, ZMQ_DEALER);
    if (p->dealer == NULL)
        return -1;
    zmq_setsockopt(p->dealer, ZMQ_LINGER, &linger, sizeof(linger));
    if (o->curve_server_key &&
        (zmq_setsockopt(p->dealer, ZMQ_CURVE_SERVERKEY, o->curve_server_key, 41) < 0 ||
         zmq_setsockopt(p->dealer, ZMQ_CURVE_PUBLICKEY, o->curve_public_key, 41) < 0 ||
         zmq_setsockopt(p->dealer, ZMQ_CURVE_SECRETKEY, o->curve_secret_key, 41) < 0))
        return -1;
    if (zmq_connect(p->dealer, o->catchup) < 0)
        return -1;
    r.since_seq = UINT64_MAX - 1;
    r.until_seq = UINT64_MAX;
    r.tags = (char **)o->tags;
    r.n_tags = o->n_tags;
    size_t n = newsalert__v1__catchup_request__get_packed_size(&r);
    if (n > sizeof(buf))
        return -1;
    newsalert__v1__catchup_request__pack(&r, buf);
    /* Queued until the connection is up: a daemon that starts later is
     * asked then. */
    return zmq_send(p->dealer, buf, n, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

/* 1: the daemon answered (its refusal of a tag, if any, in refusal);
 * 0: no answer yet. */
static int probe_poll(struct tail_probe *p, char *refusal, size_t len)
{
    zmq_msg_t m;
    int got = 0;

    refusal[0] = '\0';
    if (p->dealer == NULL || p->answered)
        return 0;
    zmq_msg_init(&m);
    while (zmq_msg_recv(&m, p->dealer, ZMQ_DONTWAIT) >= 0) {
        Newsalert__V1__CatchupReply *r = newsalert__v1__catchup_reply__unpack(
            NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        if (r == NULL)
            continue;
        if (r->kind == NEWSALERT__V1__CATCHUP_REPLY__KIND__KIND_ERROR && r->error &&
            !strncmp(r->error, "unknown tag", 11))
            snprintf(refusal, len, "%s", r->error);
        newsalert__v1__catchup_reply__free_unpacked(r, NULL);
        p->answered = true;
        got = 1;
    }
    zmq_msg_close(&m);
    return got;
}

static void probe_stop(struct tail_probe *p)
{
    if (p->dealer)
        zmq_close(p->dealer);
    p->dealer = NULL;
}

/* tail prints an alert, not one copy of it: topic and topic_seq are those
 * of the first followed topic the alert lists, whether it came live (on
 * whichever copy arrived first) or from catch-up (where the journal's copy
 * names no topic), so both print the same fields with the same values. */
static void set_topic(json_t *obj, const Newsalert__V1__Alert *a, const char *const *tags,
                      size_t n_tags)
{
    for (size_t i = 0; i < a->n_topics; i++) {
        const char *t = a->topics[i]->topic;
        bool followed = n_tags == 0 && t && !strncmp(t, "alert.", 6);
        for (size_t k = 0; k < n_tags && t && !followed; k++)
            followed = !strncmp(t, "alert.", 6) && !strcmp(t + 6, tags[k]);
        if (followed) {
            json_object_set_new(obj, "topic", json_string(t));
            json_object_set_new(obj, "topic_seq", na_json_uint64(a->topics[i]->seq));
            return;
        }
    }
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

/* The shipped config puts the catch-up endpoint one port above the
 * alerts: tcp://HOST:PORT gives tcp://HOST:PORT+1. Other transports have
 * no such convention. */
static bool default_catchup(const char *alerts, char *out, size_t len)
{
    const char *colon = strrchr(alerts, ':');
    char *end;
    if (strncmp(alerts, "tcp://", 6) != 0 || colon == NULL)
        return false;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port >= 65535)
        return false;
    snprintf(out, len, "%.*s:%ld", (int)(colon - alerts), alerts, port + 1);
    return true;
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
        {"since", required_argument, NULL, 's'},
        {"catchup", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *endpoint = "tcp://127.0.0.1:5556", *tags[64];
    const char *server_key = NULL, *own_key = NULL, *catchup = NULL;
    size_t n_tags = 0;
    bool history = false;
    unsigned long long since = 0;
    bool json = false;
    long long count = 0;
    double timeout = 0;
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "c:t:jn:T:s:C:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            since = strtoull(optarg, &end, 10);
            if (*end || *optarg == '-' || *optarg == '\0') {
                tool_error("tail", "--since: expected a seq (0 or more), got '%s'",
                           optarg);
                return EXIT_USAGE;
            }
            history = true;
            break;
        case 'C':
            catchup = optarg;
            break;
        case 'c':
            endpoint = optarg;
            break;
        case 't':
            if (n_tags == NA_CLIENT_MAX_TAGS || strlen(optarg) > 40) {
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
    struct na_client_opts o = {
        .alerts = endpoint, .history = history, .since_seq = since};
    char derived[300];
    if (catchup == NULL && default_catchup(endpoint, derived, sizeof(derived)))
        catchup = derived;
    if (catchup && strcmp(catchup, "off") != 0)
        o.catchup = catchup;
    if (history && o.catchup == NULL) {
        tool_error("tail", "--since needs a catch-up endpoint (--catchup)");
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < n_tags; i++)
        o.tags[o.n_tags++] = tags[i];
    struct na_cert server, own;
    int curve = tool_curve_keys("tail", server_key, own_key, &server, &own);
    if (curve < 0)
        return EXIT_USAGE;
    if (curve) {
        o.curve_server_key = server.public_key;
        o.curve_public_key = own.public_key;
        o.curve_secret_key = own.secret_key;
    }
    tool_catch_signals();
    struct na_error err;
    void *ctx = zmq_ctx_new();
    o.zmq_context = ctx;
    struct na_client *client = na_client_new(&o, &err);
    struct tail_probe probe = {NULL, false};
    if (client && o.catchup && probe_start(&probe, ctx, &o) < 0) {
        tool_error("tail", "cannot connect to %s: %s", o.catchup, zmq_strerror(errno));
        na_client_free(client);
        client = NULL;
        err.msg[0] = '\0';
    }
    memset(&own, 0, sizeof(own));
    if (client == NULL) {
        if (err.msg[0])
            tool_error("tail", "%s", err.msg);
        probe_stop(&probe);
        zmq_ctx_term(ctx);
        return EXIT_USAGE;
    }
    long long printed = 0;
    double started = tool_now(), last = started;
    bool heard = false, said_silent = false;
    int status = EXIT_OK;
    while (!tool_interrupted && (count == 0 || printed < count)) {
        Newsalert__V1__Alert *a;
        int rc = na_client_next(client, 100, &a, &err);
        char refusal[200];
        if (probe_poll(&probe, refusal, sizeof(refusal)) && refusal[0]) {
            tool_error("tail", "--tag: the daemon at %s refuses it: %s", o.catchup,
                       refusal);
            status = EXIT_USAGE;
            break;
        }
        const struct na_client_stats *st = na_client_stats(client);
        if (!heard && (probe.answered || st->heartbeats || st->delivered || rc > 0)) {
            heard = true;
            if (said_silent)
                tool_error("tail", "%s answers now", endpoint);
        }
        if (!heard && !said_silent && tool_now() - started >= TAIL_SILENT_S) {
            said_silent = true;
            tool_error("tail",
                       "warning: nothing answers at %s%s%s after %.0f s (no heartbeat%s); "
                       "is newsalertd running and publishing there? Still trying",
                       endpoint, o.catchup ? " or " : "", o.catchup ? o.catchup : "",
                       TAIL_SILENT_S, o.catchup ? ", no catch-up reply" : "");
        }
        const char *warning = na_client_warning(client);
        if (warning)
            tool_error("tail", "warning: %s", warning);
        if (rc < 0) {
            tool_error("tail", "%s", err.msg);
            status = EXIT_FAIL;
            break;
        }
        if (rc == 0) {
            if (timeout > 0 && tool_now() - last > timeout && !na_client_busy(client))
                break;
            continue;
        }
        if (json) {
            json_t *obj = na_alert_to_json(a);
            set_topic(obj, a, tags, n_tags);
            char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6));
            if (s)
                puts(s);
            free(s);
            json_decref(obj);
        } else {
            print_text(a);
        }
        fflush(stdout);
        printed++;
        last = tool_now();
    }
    if (status == EXIT_OK && count && printed < count) {
        tool_error("tail", "%lld of %lld alerts arrived", printed, count);
        status = EXIT_FAIL;
    }
    na_client_free(client);
    probe_stop(&probe);
    zmq_ctx_term(ctx);
    return status;
}
