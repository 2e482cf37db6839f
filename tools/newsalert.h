/* The newsalert tool's subcommands and the helpers they share. */
#ifndef NEWSALERT_TOOL_H
#define NEWSALERT_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "newsalert/feedfile.h"
#include "newsalert/model.h"
#include "newsalert/ruleset.h"
#include "newsalert/tagger.h"

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 64

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

/* The rules to use: --rules DIR (actors.yaml is looked for beside it, or
 * --actors FILE), else config/rules under the current directory, else the
 * installed defaults. */
struct na_ruleset *tool_load_rules(const char *cmd, const char *rules_dir,
                                   const char *actors_file);

/* tool_load_rules, then a tagger with the daemon's default limits. Returns
 * NULL (reported) on failure; on success *rs is the caller's to free after
 * the tagger. */
struct na_tagger *tool_load_tagger(const char *cmd, const char *rules_dir,
                                   const char *actors_file, struct na_ruleset **rs);

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

/* The model to decide with: --model FILE, else DIR/../tagger.model when it
 * exists (DIR as tool_load_rules finds it), else none (NULL: the rules
 * decide); --no-model: none. TOOL_MODEL_FAILED when a model could not be
 * loaded (reported). The caller owns the model. */
#define TOOL_MODEL_FAILED ((struct na_model *)-1)
struct na_model *tool_load_model(const char *cmd, const char *rules_dir,
                                 const char *model_path, bool no_model,
                                 const struct na_ruleset *rs);
/* The explanation of the learned layer's verdict on one tag: its top
 * features by contribution. */
void tool_explain_model(FILE *out, const struct na_ruleset *rs, const struct na_result *res,
                        unsigned tag, const char *headline, const char *body);

bool tool_is_tty(int fd);
double tool_now(void);
uint64_t tool_now_ns(void);
/* Set by SIGINT/SIGTERM in the long-running subcommands. */
extern volatile int tool_interrupted;
void tool_catch_signals(void);

#endif
