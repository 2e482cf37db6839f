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
#include "newsalert/dedup.h"
#include "newsalert/jsonl.h"
#include "newsalert/tagger.h"
#include "newsalert.h"
#include "newsalertd.h" /* na_config_load: the daemon's own loader */

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

bool tool_rules_option(int opt, const char *arg, struct tool_rules_opts *o)
{
    switch (opt) {
    case TOOL_OPT_CONFIG:
        o->config = arg;
        return true;
    case 'R':
        o->rules = arg;
        return true;
    case 'a':
        o->actors = arg;
        return true;
    case 'M':
        o->model = arg;
        return true;
    case 'N':
        o->no_model = true;
        return true;
    case TOOL_OPT_REGEX_ONLY:
        o->regex_only = true;
        return true;
    default:
        return false;
    }
}

int tool_rules_open(struct tool_rules *tr, const char *cmd, const struct tool_rules_opts *o)
{
    char actors[4096], model[4096];
    struct na_error err;
    const char *cfg_path = o->config ? o->config : NA_DEFAULT_CONFIG;

    memset(tr, 0, sizeof(*tr));
    /* --rules without a configuration installed: the daemon's defaults for
     * everything else (an empty configuration is all defaults). */
    if (o->config == NULL && o->rules && access(cfg_path, F_OK) != 0)
        cfg_path = "/dev/null";
    if (access(cfg_path, R_OK) != 0) {
        tool_error(cmd, "%s: %s (give --config FILE, or --rules DIR)", cfg_path,
                   strerror(errno));
        return -1;
    }
    tr->cfg = na_config_load(cfg_path, &err);
    if (tr->cfg == NULL) {
        tool_error(cmd, "%s", err.msg);
        return -1;
    }
    tr->limits = &tr->cfg->limits;
    const char *rules = tr->cfg->rules_dir, *act = tr->cfg->actors_file;
    const char *mp = *tr->cfg->model_file ? tr->cfg->model_file : NULL;
    if (o->rules) {
        rules = o->rules;
        snprintf(actors, sizeof(actors), "%s/../actors.yaml", rules);
        snprintf(model, sizeof(model), "%s/../tagger.model", rules);
        act = actors;
        mp = access(model, F_OK) == 0 ? model : NULL;
    }
    if (o->actors)
        act = o->actors;
    if (o->model)
        mp = o->model;
    if (o->no_model)
        mp = NULL;
    struct na_ruleset_options ro = {.regex_only = o->regex_only};
    tr->rs = na_ruleset_load_opts(rules, act, &ro, &err);
    if (tr->rs == NULL) {
        tool_error(cmd, "%s", err.msg);
        goto fail;
    }
    if (mp) {
        tr->model_path = strdup(mp);
        tr->model = na_model_load(mp, tr->rs, &err);
        if (tr->model == NULL) {
            tool_error(cmd, "%s", err.msg);
            goto fail;
        }
        if (!na_model_rules_match(tr->model, tr->rs))
            tool_error(cmd, "warning: %s was trained with other rules than these", mp);
    }
    /* The daemon's limits (daemon.c, build_rules). */
    struct na_tagger_limits tl = {.max_matches = (size_t)tr->cfg->max_matches,
                                  .max_evidence = (size_t)tr->cfg->max_evidence};
    tr->tagger = na_tagger_new(tr->rs, &tl, &err);
    if (tr->tagger == NULL) {
        tool_error(cmd, "%s", err.msg);
        goto fail;
    }
    na_tagger_set_model(tr->tagger, tr->model);
    na_tagger_keep_features(tr->tagger, o->keep_features);
    return 0;
fail:
    tool_rules_close(tr);
    return -1;
}

void tool_rules_close(struct tool_rules *tr)
{
    na_tagger_free(tr->tagger);
    na_model_free(tr->model);
    na_ruleset_free(tr->rs);
    na_config_free(tr->cfg);
    free(tr->model_path);
    memset(tr, 0, sizeof(*tr));
}

int tool_pipeline_open(struct tool_pipeline *p, const char *cmd,
                       const struct tool_rules_opts *o)
{
    memset(p, 0, sizeof(*p));
    if (tool_rules_open(&p->rules, cmd, o) < 0)
        return -1;
    const struct na_config *cfg = p->rules.cfg;
    p->builder = na_alert_builder_new((size_t)cfg->max_evidence_bytes);
    if (cfg->dedup_window > 0)
        p->dedup = na_dedup_new((size_t)cfg->dedup_window);
    if (p->builder == NULL || (cfg->dedup_window > 0 && p->dedup == NULL)) {
        tool_error(cmd, "out of memory");
        tool_pipeline_close(p);
        return -1;
    }
    return 0;
}

void tool_pipeline_close(struct tool_pipeline *p)
{
    na_dedup_free(p->dedup);
    na_alert_builder_free(p->builder);
    tool_rules_close(&p->rules);
    memset(p, 0, sizeof(*p));
}

enum tool_verdict tool_pipeline_handle(struct tool_pipeline *p, const char *cmd,
                                       const struct article_item *item,
                                       Newsalert__V1__Article **article,
                                       const struct na_result **res,
                                       Newsalert__V1__Alert **alert, char *msg,
                                       size_t msg_len)
{
    struct na_error err;
    uint64_t prev = 0, update_of = 0;

    *article = NULL;
    *res = NULL;
    *alert = NULL;
    p->messages++;
    if (item->record && item->record->n_frames > 2) {
        snprintf(msg, msg_len,
                 "a message of %zu frames (expected [topic, Article] or [Article])",
                 item->record->n_frames);
        p->why = NA_REJECT_FRAME_COUNT;
        p->rejected++;
        return TOOL_REJECTED;
    }
    Newsalert__V1__Article *a =
        na_article_decode(item->payload, item->len, p->rules.limits, &p->why, msg,
                          msg_len);
    if (a == NULL) {
        p->rejected++;
        return TOOL_REJECTED;
    }
    *article = a;
    const char *src = a->source ? a->source : "";
    if (p->dedup) {
        switch (na_dedup_check(p->dedup, src, a->id, a->revision, &prev)) {
        case NA_DEDUP_DUPLICATE:
            p->duplicates++;
            return TOOL_DUPLICATE;
        case NA_DEDUP_REVISION:
            update_of = prev;
            break;
        default:
            break;
        }
    }
    const char *h = a->headline ? a->headline : "", *b = a->body ? a->body : "";
    size_t hl = strlen(h), bl = strlen(b);
    double t0 = tool_cpu_now();
    int rc = na_tagger_tag(p->rules.tagger, h, hl, b, bl, res, &err);
    p->tag_cpu_s += tool_cpu_now() - t0;
    p->bytes += hl + bl;
    if (rc < 0) {
        tool_error(cmd, "tagging article %s failed: %s", a->id, err.msg);
        return TOOL_ERROR;
    }
    if ((*res)->n_fired == 0) {
        p->untagged++;
        if (p->dedup)
            na_dedup_record(p->dedup, src, a->id, a->revision, 0);
        return TOOL_UNTAGGED;
    }
    struct na_alert_meta meta = {.seq = p->seq + 1, .update_of = update_of};
    *alert = na_alert_build(p->builder, a, *res, p->rules.rs, &meta);
    if (*alert == NULL) {
        tool_error(cmd, "article %s: out of memory building its alert", a->id);
        return TOOL_ERROR;
    }
    p->seq++;
    p->alerts++;
    if (p->dedup)
        na_dedup_record(p->dedup, src, a->id, a->revision, meta.seq);
    return TOOL_ALERT;
}

void tool_pipeline_summary(const struct tool_pipeline *p, const char *cmd)
{
    uint64_t tagged = p->messages - p->rejected - p->duplicates;
    double s = p->tag_cpu_s;
    /* "MB of text, tagger N MB/s" is what bench/run.py and bench/tagging.py
     * read. */
    fprintf(stderr,
            "newsalert %s: %llu articles, %llu alerts, %llu rejected, %llu duplicates; "
            "%.2f MB of text, tagger %.0f MB/s, %.0f articles/s (CPU time of the tagging "
            "alone: %.3f s for %llu articles)\n",
            cmd, (unsigned long long)p->messages, (unsigned long long)p->alerts,
            (unsigned long long)p->rejected, (unsigned long long)p->duplicates,
            (double)p->bytes / 1e6, s > 0 ? (double)p->bytes / 1e6 / s : 0,
            s > 0 ? (double)tagged / s : 0, s, (unsigned long long)tagged);
}

double tool_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
