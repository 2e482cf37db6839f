/* The newsalert tool's subcommands and the helpers they share. */
#ifndef NEWSALERT_TOOL_H
#define NEWSALERT_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "newsalert/alert.h"
#include "newsalert/article.h"
#include "newsalert/feedfile.h"
#include "newsalert/model.h"
#include "newsalert/ruleset.h"
#include "newsalert/tagger.h"

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 64
#define EXIT_DATAERR 65 /* lint: rules that do not parse */

int cmd_pack(int argc, char **argv);
int cmd_unpack(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_tail(int argc, char **argv);
int cmd_tag(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_journal(int argc, char **argv);
int cmd_quarantine(int argc, char **argv);
int cmd_lint(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_wait_ready(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_proxy(int argc, char **argv);

/* Prints "newsalert CMD: message" to stderr. */
void tool_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Articles from a recorded feed or a JSON-lines file (told apart by the
 * feed magic), as payload bytes, with their JSON object when there is one. */
struct article_source;
struct article_item {
    const uint8_t *payload; /* the Article frame: borrowed until the next call */
    size_t len;
    struct na_record *record; /* feeds: the whole record; NULL for JSON lines */
    void *json;               /* JSON lines: the json_t object (borrowed) */
    size_t line;              /* JSON lines: 1-based line number */
};
struct article_source *article_source_open(const char *path, const char *cmd);
/* 1: an item; 0: end; -1: a bad line or record (already reported; the
 * caller may go on for JSON lines). */
int article_source_next(struct article_source *s, struct article_item *item);
/* True when a recorded feed was damaged (not merely truncated at its end);
 * the commands then exit 1 after using the records before the damage. */
bool article_source_damaged(const struct article_source *s);
void article_source_close(struct article_source *s);

/* Where tag, eval, train and test find their rules: the configuration the
 * daemon reads (--config FILE, default NA_DEFAULT_CONFIG), loaded by the
 * daemon's own config.c, so that rules.dir, rules.actors and rules.model
 * are resolved against the file's directory exactly as newsalertd resolves
 * them, and the limits and the dedup window are the daemon's too. --rules
 * DIR overrides rules.dir (and then looks for actors.yaml and tagger.model
 * beside DIR unless --actors / --model say otherwise); --model and
 * --no-model override rules.model. Never the current directory. */
struct tool_rules_opts {
    const char *config; /* NULL: NA_DEFAULT_CONFIG */
    const char *rules, *actors, *model;
    bool no_model;
    bool regex_only;    /* every pattern to Vectorscan (the reference matcher) */
    bool keep_features; /* train: features even without a model */
};

struct na_config;
struct tool_rules {
    struct na_config *cfg; /* owned */
    struct na_ruleset *rs; /* owned */
    struct na_model *model; /* owned; NULL: the rules decide */
    struct na_tagger *tagger; /* owned; borrows rs and model */
    char *model_path; /* owned; NULL when none */
    const struct na_limits *limits; /* the configuration's (in cfg) */
};

/* Loads configuration, rules, model and a tagger with the configured
 * limits. -1 on failure (reported, *tr left empty); tool_rules_close frees. */
int tool_rules_open(struct tool_rules *tr, const char *cmd, const struct tool_rules_opts *o);
void tool_rules_close(struct tool_rules *tr);

/* The long options --config, --rules, --actors, --model and --no-model and
 * their short letters, the same in every subcommand: R, a, M, N (--config has
 * none: -c is tail's --connect; -r is replay's --rate). Returns
 * true when opt was one of them (and records it in o). */
bool tool_rules_option(int opt, const char *arg, struct tool_rules_opts *o);
#define TOOL_OPT_CONFIG 1000 /* long only: tail's -c is --connect */
#define TOOL_OPT_REGEX_ONLY 999
#define TOOL_RULES_SHORT "R:a:M:N"
#define TOOL_RULES_LONG                                                                    \
    {"config", required_argument, NULL, TOOL_OPT_CONFIG},                                 \
        {"rules", required_argument, NULL, 'R'},      \
        {"actors", required_argument, NULL, 'a'}, {"model", required_argument, NULL, 'M'}, \
        {"no-model", no_argument, NULL, 'N'},                                              \
        {"regex-only", no_argument, NULL, TOOL_OPT_REGEX_ONLY}
#define TOOL_RULES_HELP                                                                    \
    "      --config FILE   the daemon's configuration, for rules.dir, rules.actors,\n"      \
    "                      rules.model and the limits (default\n"                         \
    "                      " NA_DEFAULT_CONFIG ")\n"                                       \
    "  -R, --rules DIR     rules directory instead of the configuration's rules.dir\n"     \
    "  -a, --actors FILE   actors file (default: the configuration's, or\n"                \
    "                      DIR/../actors.yaml with --rules)\n"                             \
    "  -M, --model FILE    the learned layer's model (default: rules.model, or\n"          \
    "                      DIR/../tagger.model when it exists with --rules)\n"             \
    "  -N, --no-model      the rules alone decide\n"                                       \
    "      --regex-only    match every term with Vectorscan, none on word tokens:\n"      \
    "                      the reference the phrase matcher is checked against\n"

/* The offline pipeline, in the daemon's order and with the daemon's calls
 * (daemon/daemon.c: na_daemon_handle and finish_one): frame count, decode
 * with the configured limits, dedup (dedup.window; a revision's alert
 * names the earlier alert in update_of), tagging, the alert. Seqs count
 * from 1. */
struct na_dedup;
struct tool_pipeline {
    struct tool_rules rules;
    struct na_dedup *dedup; /* NULL when dedup.window is 0 */
    struct na_alert_builder *builder;
    uint64_t seq;
    enum na_reject why; /* of the last TOOL_REJECTED */
    uint64_t messages, rejected, duplicates, untagged, alerts, bytes;
    double tag_cpu_s; /* CPU time in na_tagger_tag alone */
};

enum tool_verdict {
    TOOL_REJECTED,  /* *why and msg say why */
    TOOL_DUPLICATE, /* a revision already seen */
    TOOL_UNTAGGED,
    TOOL_ALERT, /* *alert is valid until the next call */
    TOOL_ERROR, /* tagging failed (reported); stop */
};

int tool_pipeline_open(struct tool_pipeline *p, const char *cmd,
                       const struct tool_rules_opts *o);
void tool_pipeline_close(struct tool_pipeline *p);
/* Handles one item. The decoded article (when there is one) is the
 * caller's in *article (na_article_free), and *res the tagger's until the
 * next call. */
enum tool_verdict tool_pipeline_handle(struct tool_pipeline *p, const char *cmd,
                                       const struct article_item *item,
                                       Newsalert__V1__Article **article,
                                       const struct na_result **res,
                                       Newsalert__V1__Alert **alert, char *msg,
                                       size_t msg_len);
/* The summary on stderr: counts, and the tagger's throughput measured on
 * the CPU time of na_tagger_tag alone (articles/s and MB/s of text). */
void tool_pipeline_summary(const struct tool_pipeline *p, const char *cmd);

/* The CPU time of this thread, in seconds. */
double tool_cpu_now(void);

struct na_result;
/* Prints, per tag, every match with its weight and fate, the score against
 * the threshold and the verdict: the analyst's view of a tagging. */
void tool_explain(FILE *out, const struct na_ruleset *rs, const struct na_result *res,
                  const char *headline, const char *body);
/* A one-line reason for a verdict on one tag, for eval's error lists. */
void tool_reason(char *buf, size_t len, const struct na_ruleset *rs,
                 const struct na_result *res, unsigned tag, const char *headline,
                 const char *body);

/* CURVE for a subcommand's socket, before it connects or binds. A client
 * takes the server's certificate (.pub) and its own secret certificate
 * (.key; NULL: a throwaway key pair, enough for a server that checks no
 * client keys); with server_pub NULL it stays plain. A server takes its
 * secret certificate; NULL leaves it plain. Errors are reported; -1. */
struct na_cert;
/* Loads the CURVE keys of a client: the server's public certificate and our
 * secret one (a throwaway pair when key is NULL). 0: no CURVE asked for;
 * 1: keys loaded; -1: reported error. The caller wipes *own. */
int tool_curve_keys(const char *cmd, const char *server_pub, const char *key,
                    struct na_cert *server, struct na_cert *own);
int tool_curve_client(const char *cmd, void *sock, const char *server_pub,
                      const char *key);
int tool_curve_server(const char *cmd, void *sock, const char *key);

/* The explanation of the learned layer's verdict on one tag: its top
 * features by contribution. */
void tool_explain_model(FILE *out, const struct na_result *res, unsigned tag,
                        const char *headline, const char *body);

/* One HTTP GET (tools/httpget.c) to newsalertd's operator endpoint. On 0,
 * status is the HTTP status and body (NUL-terminated, len bytes) is the
 * caller's to release with tool_http_reply_clear; on -1, error says why no
 * answer came. */
struct tool_http_reply {
    int status;
    char *body;
    size_t len;
    char error[160];
};
int tool_http_get(const char *host, int port, const char *path, double timeout_s,
                  struct tool_http_reply *out);
void tool_http_reply_clear(struct tool_http_reply *r);
/* http://HOST[:PORT][/PATH]: 0, or -1 when it is not such a URL. */
int tool_http_parse_url(const char *url, char *host, size_t host_len, int *port,
                        char *path, size_t path_len);

bool tool_is_tty(int fd);
double tool_now(void);
uint64_t tool_now_ns(void);
/* Set by SIGINT/SIGTERM in the long-running subcommands. */
extern volatile int tool_interrupted;
void tool_catch_signals(void);

#endif
