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
        "its numbering over) go to stderr.\n");
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
    struct na_client *client = na_client_new(&o, &err);
    memset(&own, 0, sizeof(own));
    if (client == NULL) {
        tool_error("tail", "%s", err.msg);
        return EXIT_USAGE;
    }
    long long printed = 0;
    double last = tool_now();
    int status = EXIT_OK;
    while (!tool_interrupted && (count == 0 || printed < count)) {
        Newsalert__V1__Alert *a;
        int rc = na_client_next(client, 100, &a, &err);
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
    if (count && printed < count) {
        tool_error("tail", "%lld of %lld alerts arrived", printed, count);
        status = EXIT_FAIL;
    }
    na_client_free(client);
    return status;
}
