/* Helpers shared by the newsalert subcommands: article sources, rule
 * loading, terminal and signal handling. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "newsalert/cert.h"
#include "newsalert/jsonl.h"
#include "newsalert/tagger.h"
#include "newsalert.h"

volatile int tool_interrupted;

void tool_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "newsalert %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

struct article_source {
    const char *cmd;
    const char *path;
    struct na_feed_reader *feed;
    struct na_record rec;
    FILE *f;
    char *line;
    size_t cap;
    size_t lineno;
    json_t *obj;
    uint8_t *buf;
    bool damaged;
};

struct article_source *article_source_open(const char *path, const char *cmd)
{
    struct article_source *s = calloc(1, sizeof(*s));
    struct na_error err;
    uint8_t head[8];

    if (s == NULL)
        return NULL;
    s->cmd = cmd;
    s->path = path;
    s->f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (s->f == NULL) {
        tool_error(cmd, "%s: %s", path, strerror(errno));
        free(s);
        return NULL;
    }
    /* Peek at the magic; stdin cannot seek, so push the bytes back. */
    int c = getc(s->f);
    size_t n = 0;
    if (c != EOF) {
        ungetc(c, s->f);
        head[n++] = (uint8_t)c;
    }
    if (n && head[0] == 'N' && strcmp(path, "-") != 0) {
        fclose(s->f);
        s->f = NULL;
        s->feed = na_feed_reader_open(path, &err);
        if (s->feed == NULL) {
            tool_error(cmd, "%s", err.msg);
            free(s);
            return NULL;
        }
    } else if (n && head[0] == 'N') {
        tool_error(cmd,
                   "reading a recorded feed from stdin is not supported; give its path");
        free(s);
        return NULL;
    }
    return s;
}

int article_source_next(struct article_source *s, struct article_item *item)
{
    struct na_error err;
    memset(item, 0, sizeof(*item));
    if (s->feed) {
        int rc = na_feed_reader_next(s->feed, &s->rec, &err);
        if (rc < 0 && na_feed_reader_truncated(s->feed)) {
            tool_error(s->cmd,
                       "warning: %s: %s; ignored, the records before it were read",
                       s->path, err.msg);
            return 0;
        }
        if (rc < 0) {
            tool_error(s->cmd, "%s: %s; the records before it were read", s->path,
                       err.msg);
            s->damaged = true;
            return 0;
        }
        if (rc == 0)
            return 0;
        item->record = &s->rec;
        item->payload = s->rec.frames[s->rec.n_frames - 1].data;
        item->len = s->rec.frames[s->rec.n_frames - 1].len;
        return 1;
    }
    for (;;) {
        ssize_t got = getline(&s->line, &s->cap, s->f);
        if (got < 0)
            return 0;
        s->lineno++;
        if (strspn(s->line, " \t\r\n") == (size_t)got)
            continue;
        json_error_t jerr;
        json_decref(s->obj);
        free(s->buf);
        s->buf = NULL;
        s->obj = json_loads(s->line, 0, &jerr);
        if (s->obj == NULL) {
            tool_error(s->cmd, "%s:%zu: %s", s->path, s->lineno, jerr.text);
            return -1;
        }
        if (na_jsonl_article_pack(s->obj, &s->buf, &item->len, &err) < 0) {
            tool_error(s->cmd, "%s:%zu: %s", s->path, s->lineno, err.msg);
            return -1;
        }
        item->payload = s->buf;
        item->json = s->obj;
        item->line = s->lineno;
        return 1;
    }
}

bool article_source_damaged(const struct article_source *s)
{
    return s->damaged;
}

void article_source_close(struct article_source *s)
{
    if (s == NULL)
        return;
    na_feed_reader_close(s->feed);
    if (s->f && s->f != stdin)
        fclose(s->f);
    free(s->line);
    json_decref(s->obj);
    free(s->buf);
    free(s);
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

struct na_ruleset *tool_load_rules(const char *cmd, const char *rules_dir,
                                   const char *actors_file)
{
    char actors[4096];
    struct na_error err;

    if (rules_dir == NULL)
        rules_dir = is_dir("config/rules") ? "config/rules" : NA_INSTALLED_RULES;
    if (actors_file == NULL) {
        snprintf(actors, sizeof(actors), "%s/../actors.yaml", rules_dir);
        actors_file = actors;
    }
    struct na_ruleset *rs = na_ruleset_load(rules_dir, actors_file, &err);
    if (rs == NULL)
        tool_error(cmd, "%s", err.msg);
    return rs;
}

struct na_tagger *tool_load_tagger(const char *cmd, const char *rules_dir,
                                   const char *actors_file, struct na_ruleset **rs)
{
    /* The defaults of limits.max_matches and limits.max_evidence. */
    struct na_tagger_limits tl = {.max_matches = 4096, .max_evidence = 3};
    struct na_error err;

    *rs = tool_load_rules(cmd, rules_dir, actors_file);
    if (*rs == NULL)
        return NULL;
    struct na_tagger *t = na_tagger_new(*rs, &tl, &err);
    if (t == NULL) {
        tool_error(cmd, "%s", err.msg);
        na_ruleset_free(*rs);
        *rs = NULL;
    }
    return t;
}

struct na_model *tool_load_model(const char *cmd, const char *rules_dir,
                                 const char *model_path, bool no_model,
                                 const struct na_ruleset *rs)
{
    char path[4096];
    struct na_error err;

    if (no_model)
        return NULL;
    if (model_path == NULL) {
        if (rules_dir == NULL)
            rules_dir = is_dir("config/rules") ? "config/rules" : NA_INSTALLED_RULES;
        snprintf(path, sizeof(path), "%s/../tagger.model", rules_dir);
        if (access(path, F_OK) != 0)
            return NULL; /* no model beside the rules: the rules decide */
        model_path = path;
    }
    struct na_model *m = na_model_load(model_path, rs, &err);
    if (m == NULL) {
        tool_error(cmd, "%s", err.msg);
        return TOOL_MODEL_FAILED;
    }
    if (!na_model_rules_match(m, rs))
        tool_error(cmd, "warning: %s was trained with other rules than these", model_path);
    return m;
}

bool tool_is_tty(int fd)
{
    return isatty(fd) == 1;
}

double tool_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t tool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
    (void)sig;
    tool_interrupted = 1;
}

void tool_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Loads a certificate and checks its keys with libzmq, for the subcommands'
 * --curve-* options. */
static int load_cert(const char *cmd, const char *path, bool secret, struct na_cert *c)
{
    struct na_error err;
    char derived[NA_Z85_KEY_LEN + 1];

    if (na_cert_load(path, secret, c, &err) < 0) {
        tool_error(cmd, "%s", err.msg);
        return -1;
    }
    if (secret && (zmq_curve_public(derived, c->secret_key) < 0 ||
                   strcmp(derived, c->public_key) != 0)) {
        tool_error(cmd,
                   "%s: the secret-key is not valid or does not match the public-key",
                   path);
        memset(c, 0, sizeof(*c));
        return -1;
    }
    return 0;
}

int tool_curve_keys(const char *cmd, const char *server_pub, const char *key,
                    struct na_cert *server, struct na_cert *own)
{
    if (server_pub == NULL) {
        if (key)
            tool_error(cmd, "--curve-key needs --curve-server-key");
        return key ? -1 : 0;
    }
    if (load_cert(cmd, server_pub, false, server) < 0)
        return -1;
    if (key)
        return load_cert(cmd, key, true, own) < 0 ? -1 : 1;
    /* No key of our own: a throwaway pair (enough when the daemon's
     * allowlist is not what stands between us and the alerts). */
    if (zmq_curve_keypair(own->public_key, own->secret_key) < 0) {
        tool_error(cmd, "cannot make a key pair: %s", zmq_strerror(errno));
        return -1;
    }
    return 1;
}

int tool_curve_client(const char *cmd, void *sock, const char *server_pub,
                      const char *key)
{
    struct na_cert server, own;
    int rc = tool_curve_keys(cmd, server_pub, key, &server, &own);

    if (rc <= 0)
        return rc;
    rc = -1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server.public_key, NA_Z85_KEY_LEN) <
            0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, own.public_key, NA_Z85_KEY_LEN) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, own.secret_key, NA_Z85_KEY_LEN) < 0)
        tool_error(cmd, "CURVE options: %s", zmq_strerror(errno));
    else
        rc = 0;
    memset(&own, 0, sizeof(own));
    return rc;
}

int tool_curve_server(const char *cmd, void *sock, const char *key)
{
    struct na_cert own;
    int on = 1, rc = -1;

    if (key == NULL)
        return 0;
    if (load_cert(cmd, key, true, &own) < 0)
        return -1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &on, sizeof(on)) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, own.secret_key, NA_Z85_KEY_LEN) < 0)
        tool_error(cmd, "CURVE options: %s", zmq_strerror(errno));
    else
        rc = 0;
    memset(&own, 0, sizeof(own));
    return rc;
}
