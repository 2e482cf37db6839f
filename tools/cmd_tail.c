/* newsalert tail: prints a daemon's alerts in seq order, once per article
 * even when several of its tags are subscribed, with nothing missing that
 * the daemon's journal kept: it is a client.h consumer, so it fetches
 * history (--since) and the gaps it sees from the catch-up endpoint.
 * Given several daemons that tag the same feed, it follows each one and
 * prints each alert key once (merge.h). */
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
#include "newsalert/merge.h"
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
        "                          (default tcp://127.0.0.1:5556); repeat it for each\n"
        "                          daemon of an active-active pair or of a sharded feed\n"
        "      --endpoint ENDPOINT the same as --connect\n"
        "  -t, --tag TAG           subscribe to alert.TAG (repeatable; default: all)\n"
        "  -j, --json              one JSON object per alert and line\n"
        "  -n, --count N           exit after N alerts (exit 1 if they do not come)\n"
        "  -T, --timeout S         exit after S seconds without an alert\n"
        "  -s, --since SEQ         start with every journalled alert after SEQ (0: all)\n"
        "  -C, --catchup ENDPOINT  the daemon's catch-up endpoint, asked for history "
        "and\n"
        "                          for gaps (default: the alert port + 1 for tcp://,\n"
        "                          none otherwise; off: none); with several daemons,\n"
        "                          one per --connect, in the same order\n"
        "      --dedup-window N    with several daemons: alert keys remembered to drop\n"
        "                          the copies of the others (default 262144)\n"
        "      --curve-server-key FILE  the daemon's public certificate (.pub): connect\n"
        "                          with CURVE (needed when publish.curve is on)\n"
        "      --curve-key FILE    our secret certificate (.key, mode 0600), whose .pub\n"
        "                          is in the daemon's publish.curve.allow_dir\n"
        "  -h, --help              show this help\n"
        "An article with several subscribed tags is printed once: its copies share the\n"
        "alert's seq. Warnings (history gone from the journal, a daemon that started\n"
        "its numbering over, an endpoint where nothing answers) go to stderr.\n"
        "With a catch-up endpoint, --tag is checked against the daemon's rules: a tag\n"
        "they do not define is an error (exit 64).\n"
        "With several daemons, each is followed on its own (its epoch, its seqs, its\n"
        "catch-up) and an alert is printed once per alert key (source, article id,\n"
        "revision, tag), from whichever daemon brought it first; --json then adds\n"
        "\"key\" and \"daemon\" (the --connect endpoint it came from).\n");
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
        {"endpoint", required_argument, NULL, 'c'},
        {"tag", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"count", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 'T'},
        {"curve-server-key", required_argument, NULL, 'S'},
        {"curve-key", required_argument, NULL, 'K'},
        {"since", required_argument, NULL, 's'},
        {"catchup", required_argument, NULL, 'C'},
        {"dedup-window", required_argument, NULL, 'W'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *endpoints[NA_MERGE_MAX_DAEMONS], *catchups[NA_MERGE_MAX_DAEMONS];
    const char *tags[64];
    const char *server_key = NULL, *own_key = NULL;
    size_t n_ep = 0, n_cu = 0, n_tags = 0, window = 0;
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
        case 'c':
            if ((c == 'c' ? n_ep : n_cu) == NA_MERGE_MAX_DAEMONS) {
                tool_error("tail", "at most %d daemons", NA_MERGE_MAX_DAEMONS);
                return EXIT_USAGE;
            }
            if (c == 'c')
                endpoints[n_ep++] = optarg;
            else
                catchups[n_cu++] = optarg;
            break;
        case 'W': {
            unsigned long long w = strtoull(optarg, &end, 10);
            if (*end || *optarg == '-' || w == 0 || w > 100000000ULL) {
                tool_error("tail",
                           "--dedup-window: expected a number of keys (1 to 100000000), "
                           "got '%s'",
                           optarg);
                return EXIT_USAGE;
            }
            window = (size_t)w;
            break;
        }
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
    if (n_ep == 0)
        endpoints[n_ep++] = "tcp://127.0.0.1:5556";
    if (n_cu > n_ep || (n_cu > 0 && n_cu < n_ep && n_ep > 1)) {
        tool_error("tail",
                   "%zu --catchup for %zu --connect: give one per daemon, in order", n_cu,
                   n_ep);
        return EXIT_USAGE;
    }
    struct na_cert server, own;
    int curve = tool_curve_keys("tail", server_key, own_key, &server, &own);
    if (curve < 0)
        return EXIT_USAGE;
    struct na_client_opts o[NA_MERGE_MAX_DAEMONS];
    char derived[NA_MERGE_MAX_DAEMONS][300];
    void *ctx = zmq_ctx_new();
    for (size_t d = 0; d < n_ep; d++) {
        o[d] = (struct na_client_opts){
            .alerts = endpoints[d], .history = history, .since_seq = since};
        const char *catchup = d < n_cu ? catchups[d] : NULL;
        if (catchup == NULL &&
            default_catchup(endpoints[d], derived[d], sizeof(derived[d])))
            catchup = derived[d];
        if (catchup && strcmp(catchup, "off") != 0)
            o[d].catchup = catchup;
        if (history && o[d].catchup == NULL) {
            tool_error("tail", "--since needs a catch-up endpoint (--catchup) for %s",
                       endpoints[d]);
            zmq_ctx_term(ctx);
            return EXIT_USAGE;
        }
        for (size_t i = 0; i < n_tags; i++)
            o[d].tags[o[d].n_tags++] = tags[i];
        if (curve) {
            o[d].curve_server_key = server.public_key;
            o[d].curve_public_key = own.public_key;
            o[d].curve_secret_key = own.secret_key;
        }
        o[d].zmq_context = ctx;
    }
    tool_catch_signals();
    struct na_error err = {{0}};
    struct na_merge_opts mo = {.daemons = o, .n_daemons = n_ep, .window = window};
    struct na_merge *merge = na_merge_new(&mo, &err);
    struct tail_probe probe[NA_MERGE_MAX_DAEMONS];
    memset(probe, 0, sizeof(probe));
    for (size_t d = 0; merge && d < n_ep; d++)
        if (o[d].catchup && probe_start(&probe[d], ctx, &o[d]) < 0) {
            tool_error("tail", "cannot connect to %s: %s", o[d].catchup,
                       zmq_strerror(errno));
            na_merge_free(merge);
            merge = NULL;
            err.msg[0] = '\0';
        }
    memset(&own, 0, sizeof(own));
    if (merge == NULL) {
        if (err.msg[0])
            tool_error("tail", "%s", err.msg);
        for (size_t d = 0; d < n_ep; d++)
            probe_stop(&probe[d]);
        zmq_ctx_term(ctx);
        return EXIT_USAGE;
    }
    long long printed = 0;
    double started = tool_now(), last = started;
    bool heard[NA_MERGE_MAX_DAEMONS] = {false},
         said_silent[NA_MERGE_MAX_DAEMONS] = {false};
    int status = EXIT_OK;
    while (!tool_interrupted && (count == 0 || printed < count)) {
        Newsalert__V1__Alert *a;
        size_t from = 0;
        int rc = na_merge_next(merge, 100, &a, &from, &err);
        bool busy = false;
        for (size_t d = 0; d < n_ep && status == EXIT_OK; d++) {
            struct na_client *cl = na_merge_client(merge, d);
            char refusal[200];
            if (probe_poll(&probe[d], refusal, sizeof(refusal)) && refusal[0]) {
                tool_error("tail", "--tag: the daemon at %s refuses it: %s", o[d].catchup,
                           refusal);
                status = EXIT_USAGE;
                break;
            }
            const struct na_client_stats *st = na_client_stats(cl);
            if (!heard[d] && (probe[d].answered || st->heartbeats || st->delivered ||
                              (rc > 0 && from == d))) {
                heard[d] = true;
                if (said_silent[d])
                    tool_error("tail", "%s answers now", endpoints[d]);
            }
            if (!heard[d] && !said_silent[d] && tool_now() - started >= TAIL_SILENT_S) {
                said_silent[d] = true;
                tool_error(
                    "tail",
                    "warning: nothing answers at %s%s%s after %.0f s (no heartbeat%s); "
                    "is newsalertd running and publishing there? Still trying",
                    endpoints[d], o[d].catchup ? " or " : "",
                    o[d].catchup ? o[d].catchup : "", TAIL_SILENT_S,
                    o[d].catchup ? ", no catch-up reply" : "");
            }
            const char *warning = na_client_warning(cl);
            if (warning) {
                if (n_ep > 1)
                    tool_error("tail", "warning: %s: %s", endpoints[d], warning);
                else
                    tool_error("tail", "warning: %s", warning);
            }
            busy |= na_client_busy(cl);
        }
        if (status != EXIT_OK)
            break;
        if (rc == -2) {
            /* One daemon refused: alone, that ends tail; beside others, it
             * is followed live and the others go on. */
            if (n_ep == 1) {
                tool_error("tail", "%s", err.msg);
                status = EXIT_FAIL;
                break;
            }
            tool_error("tail", "warning: %s: %s", endpoints[from], err.msg);
            continue;
        }
        if (rc == 0) {
            if (timeout > 0 && tool_now() - last > timeout && !busy)
                break;
            continue;
        }
        if (json) {
            json_t *obj = na_alert_to_json(a);
            set_topic(obj, a, tags, n_tags);
            if (n_ep > 1) {
                char key[1024];
                na_alert_key(a, key, sizeof(key));
                json_object_set_new(obj, "key", json_string(key));
                json_object_set_new(obj, "daemon", json_string(endpoints[from]));
            }
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
    if (n_ep > 1) {
        const struct na_merge_stats *ms = na_merge_stats(merge);
        tool_error("tail", "%llu alerts from %zu daemons, %llu copies dropped",
                   (unsigned long long)ms->delivered, n_ep,
                   (unsigned long long)ms->duplicates);
    }
    na_merge_free(merge);
    for (size_t d = 0; d < n_ep; d++)
        probe_stop(&probe[d]);
    zmq_ctx_term(ctx);
    return status;
}
