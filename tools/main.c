/* newsalert: the command-line companion of newsalertd. One binary, one
 * subcommand per job; each has --help and --version, and exits 0 (ok), 1
 * (runtime failure) or 64 (usage). */
#include <stdio.h>
#include <string.h>

#include "newsalert.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"tail", cmd_tail, "print the alerts a newsalertd publishes"},
    {"replay", cmd_replay, "publish a recorded feed, as a feed publisher would"},
    {"record", cmd_record, "write what a feed publishes to a recorded-feed file"},
    {"pack", cmd_pack, "turn JSON-lines articles into a recorded-feed file"},
    {"unpack", cmd_unpack, "print a recorded feed as JSON lines"},
    {"tag", cmd_tag, "tag articles offline with the daemon's rules (--explain: why)"},
    {"eval", cmd_eval, "precision, recall and F1 of the tagger on labelled articles"},
    {"train", cmd_train, "train the learned layer's model on labelled articles"},
    {"keygen", cmd_keygen, "write a CURVE key pair: NAME.key (secret) and NAME.pub"},
    {"journal", cmd_journal, "print the alerts in newsalertd's journal"},
    {"quarantine", cmd_quarantine, "list or re-pack the input newsalertd rejected"},
    {"wait-ready", cmd_wait_ready, "wait until newsalertd's /healthz says it is ready"},
    {"top", cmd_top, "a live view of newsalertd's /metrics: traffic, rejects, state"},
    {"proxy", cmd_proxy, "relay one newsalertd's alerts and catch-up to consumers elsewhere"},
    {"test", cmd_test, "golden test: a recorded feed's alerts against the expected ones"},
    {"lint", cmd_lint, "warn about rules that match empty text, repeat without bound, never fire"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "Usage: newsalert COMMAND [OPTION]...\n\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'newsalert COMMAND --help' describes each one.\n"
                 "Exit status: 0 ok, 1 runtime failure, 64 usage error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("newsalert %s\n", NA_VERSION);
        return EXIT_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        /* --version means the same in every subcommand, so it is answered
         * here, before the subcommand parses its options. */
        for (int a = 2; a < argc && strcmp(argv[a], "--") != 0; a++)
            if (!strcmp(argv[a], "--version")) {
                printf("newsalert %s %s\n", commands[i].name, NA_VERSION);
                return EXIT_OK;
            }
        /* getopt names argv[0] in its messages: "newsalert tag: unrecognized
         * option", not "tag: ...". */
        char name[64];
        snprintf(name, sizeof(name), "newsalert %s", commands[i].name);
        argv[1] = name;
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "newsalert: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
