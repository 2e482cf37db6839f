/* newsalertd: command line, config loading and the exit codes. Only main()
 * ends the process. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/model.h"
#include "newsalertd.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalertd [OPTION]...\n"
        "Subscribe to a ZeroMQ feed of newsalert.v1.Article messages, tag alliance, aid\n"
        "and summit developments, and publish newsalert.v1.Alert messages on the topics\n"
        "alert.<tag>. Runs in the foreground; SIGHUP reloads, SIGTERM stops.\n"
        "\n"
        "  -c, --config FILE       config file (default %s)\n"
        "      --feed ENDPOINT     feed endpoint to connect to; repeat for several\n"
        "                          (replaces feed.endpoints)\n"
        "      --publish ENDPOINT  endpoint to publish alerts on (replaces\n"
        "                          publish.endpoint)\n"
        "      --state-dir DIR     where the journal and the quarantine live (replaces\n"
        "                          state.dir)\n"
        "      --catchup ENDPOINT  endpoint of the catch-up ROUTER, 'off' for none\n"
        "                          (replaces catchup.endpoint)\n"
        "      --metrics ADDR:PORT serve /metrics and /healthz over HTTP on ADDR:PORT, "
        "or\n"
        "                          'off' for no HTTP server (replaces metrics.listen)\n"
        "      --ready-file PATH   once serving, write PATH (JSON: pid, epoch and the\n"
        "                          bound endpoints); removed at exit\n"
        "      --check-config      load the config, compile the rules, and exit\n"
        "      --log-level LEVEL   error, warning, info or debug (replaces log.level)\n"
        "      --help-config       list the config file's keys and defaults\n"
        "  -h, --help              show this help and exit\n"
        "  -V, --version           show the version and exit\n"
        "\n"
        "Exit status: 0 on a clean stop, 1 on a runtime failure, 64 on a usage error,\n"
        "78 when the config or the rules are invalid.\n",
        NA_DEFAULT_CONFIG);
}

enum {
    OPT_FEED = 256,
    OPT_PUBLISH,
    OPT_METRICS,
    OPT_STATE_DIR,
    OPT_CATCHUP,
    OPT_CHECK,
    OPT_LOG_LEVEL,
    OPT_HELP_CONFIG,
    OPT_READY_FILE
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"feed", required_argument, NULL, OPT_FEED},
        {"publish", required_argument, NULL, OPT_PUBLISH},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"catchup", required_argument, NULL, OPT_CATCHUP},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help-config", no_argument, NULL, OPT_HELP_CONFIG},
        {"ready-file", required_argument, NULL, OPT_READY_FILE},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NA_DEFAULT_CONFIG, *publish = NULL, *level_arg = NULL;
    const char *metrics = NULL, *state_dir = NULL, *catchup = NULL, *ready_file = NULL;
    char **feeds = calloc((size_t)argc + 1, sizeof(char *));
    size_t n_feeds = 0;
    bool check = false;
    enum na_log_level level = NA_LOG_INFO;
    struct na_error err;
    int c;

    /* Until the loop's handler is in place (at the end of na_daemon_new), a
     * SIGHUP stays pending instead of ending the process by its default
     * action: a reload asked for during start-up runs as soon as the daemon
     * is up. Threads started meanwhile keep it blocked. */
    na_hold_sighup(true);

    if (feeds == NULL)
        return NA_EXIT_RUNTIME;
    while ((c = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case OPT_FEED:
            feeds[n_feeds++] = optarg;
            break;
        case OPT_PUBLISH:
            publish = optarg;
            break;
        case OPT_METRICS: {
            char host[64];
            uint16_t port;
            metrics = optarg;
            if (!na_http_disabled(optarg) &&
                na_http_parse_listen(optarg, host, sizeof(host), &port) < 0) {
                fprintf(stderr,
                        "newsalertd: --metrics: expected ADDR:PORT with a numeric "
                        "address (127.0.0.1:9464, [::1]:9464) or off, got '%s'\n",
                        optarg);
                free(feeds);
                return NA_EXIT_USAGE;
            }
            break;
        }
        case OPT_STATE_DIR:
            state_dir = optarg;
            break;
        case OPT_CATCHUP:
            catchup = optarg;
            break;
        case OPT_READY_FILE:
            if (*optarg == '\0') {
                fprintf(stderr, "newsalertd: --ready-file: the path is empty\n");
                free(feeds);
                return NA_EXIT_USAGE;
            }
            ready_file = optarg;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_LOG_LEVEL:
            level_arg = optarg;
            if (na_log_level_parse(optarg, &level) < 0) {
                fprintf(stderr,
                        "newsalertd: --log-level: expected error, warning, info or "
                        "debug, got '%s'\n",
                        optarg);
                free(feeds);
                return NA_EXIT_USAGE;
            }
            break;
        case OPT_HELP_CONFIG:
            printf("Keys of newsalertd.yaml (key, default, meaning):\n");
            na_config_print_reference(stdout);
            free(feeds);
            return NA_EXIT_OK;
        case 'h':
            usage(stdout);
            free(feeds);
            return NA_EXIT_OK;
        case 'V':
            printf("newsalertd %s\n", NA_VERSION);
            free(feeds);
            return NA_EXIT_OK;
        default:
            fprintf(stderr, "Try 'newsalertd --help'.\n");
            free(feeds);
            return NA_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr,
                "newsalertd: unexpected argument '%s'\nTry 'newsalertd --help'.\n",
                argv[optind]);
        free(feeds);
        return NA_EXIT_USAGE;
    }

    na_log_init(level);
    struct na_config *cfg = na_config_load(config, &err);
    if (cfg == NULL) {
        fprintf(stderr, "newsalertd: %s\n", err.msg);
        free(feeds);
        return NA_EXIT_CONFIG;
    }
    /* The command line wins over the file, with the same checks, and a
     * reload keeps what it set. */
    const struct {
        const char *opt, *key, *value;
    } overrides[] = {{"--publish", "publish.endpoint", publish},
                     {"--metrics", "metrics.listen", metrics},
                     {"--state-dir", "state.dir", state_dir},
                     {"--catchup", "catchup.endpoint", catchup},
                     {"--log-level", "log.level", level_arg}};
    if (n_feeds && na_config_override(cfg, "feed.endpoints", feeds, n_feeds, &err) < 0) {
        fprintf(stderr, "newsalertd: --feed: %s\n", err.msg);
        na_config_free(cfg);
        free(feeds);
        return NA_EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++) {
        char *v = (char *)overrides[i].value;
        if (v && na_config_override(cfg, overrides[i].key, &v, 1, &err) < 0) {
            fprintf(stderr, "newsalertd: %s: %s\n", overrides[i].opt, err.msg);
            na_config_free(cfg);
            free(feeds);
            return NA_EXIT_USAGE;
        }
    }
    free(feeds);
    na_log_init(cfg->log_level);

    if (check) {
        struct na_ruleset *rs = na_ruleset_load(cfg->rules_dir, cfg->actors_file, &err);
        struct na_model *model = NULL;
        if (rs && *cfg->model_file && (model = na_model_load(cfg->model_file, rs, &err)))
            na_model_free(model);
        if (rs == NULL || (*cfg->model_file && model == NULL)) {
            fprintf(stderr, "newsalertd: %s\n", err.msg);
            na_ruleset_free(rs);
            na_config_free(cfg);
            return NA_EXIT_CONFIG;
        }
        struct na_curve keys;
        struct na_allowlist *allow = NULL;
        if (na_curve_load(cfg, &keys, &err) < 0 ||
            (keys.publish_on &&
             (allow = na_allowlist_load(cfg->publish_curve_allow_dir,
                                        "publish.curve.allow_dir", &err)) == NULL)) {
            fprintf(stderr, "newsalertd: %s\n", err.msg);
            na_curve_wipe(&keys);
            na_ruleset_free(rs);
            na_config_free(cfg);
            return NA_EXIT_CONFIG;
        }
        printf("%s: ok (%zu tags, %zu actors, %zu patterns", config,
               na_ruleset_tag_count(rs), na_ruleset_actor_count(rs),
               na_ruleset_pattern_count(rs));
        if (keys.publish_on)
            printf("; alerts: CURVE, %zu allowed consumer key(s)",
                   na_allowlist_count(allow));
        if (keys.feed_on)
            printf("; feed: CURVE");
        printf(")\n");
        na_allowlist_free(allow);
        na_curve_wipe(&keys);
        na_ruleset_free(rs);
        na_config_free(cfg);
        return NA_EXIT_OK;
    }

    int code;
    struct na_daemon *d = na_daemon_new(cfg, &err, &code);
    if (d == NULL) {
        na_err("%s", err.msg);
        na_config_free(cfg);
        return code;
    }
    d->ready_file = ready_file;
    int rc = na_daemon_run(d);
    na_daemon_free(d);
    return rc;
}
