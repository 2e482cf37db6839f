/* newsalertd.yaml: one table of options (key, type, default, field, help),
 * walked against the YAML document so that an unknown key, a wrong type or
 * an out-of-range value fails loudly with file and line. */
#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/endpoint.h"
#include "newsalert/journal.h"
#include "newsalert/yamlutil.h"
#include "newsalertd.h"

enum opt_type {
    OPT_STRING,
    OPT_PATH,
    OPT_LIST,
    OPT_INT,
    OPT_SIZE,
    OPT_LOGLEVEL,
    OPT_LISTEN
};

struct option_def {
    const char *key; /* dotted path in the YAML document */
    enum opt_type type;
    size_t offset;
    const char *def;
    long long min, max;
    const char *help;
    unsigned flags;
};

/* RESTART: read when the sockets, files and timers are made; a reload
 * keeps the running value and says so. EP_*: the value is a ZeroMQ
 * endpoint to connect to, or to bind (EP_OFF: or "off"). */
enum { RESTART = 1u << 0, EP_CONNECT = 1u << 1, EP_BIND = 1u << 2, EP_OFF = 1u << 3 };

#define F(field) offsetof(struct na_config, field)
#define L(field) (offsetof(struct na_config, limits) + offsetof(struct na_limits, field))
#define KiB 1024LL
#define MiB (1024LL * 1024)

static const struct option_def options[] = {
    {"feed.endpoints", OPT_LIST, F(feed_endpoints), "tcp://127.0.0.1:5555", 0, 0,
     "ZeroMQ endpoints of the feed publishers (SUB connects to each)",
     RESTART | EP_CONNECT},
    {"feed.topics", OPT_LIST, F(feed_topics), "", 0, 0,
     "topic prefixes to subscribe to; the empty prefix takes everything", RESTART},
    {"feed.rcvhwm", OPT_INT, F(feed_rcvhwm), "100000", 1, 100000000,
     "receive high-water mark of the feed socket, in messages", RESTART},
    {"feed.curve.server_key", OPT_PATH, F(feed_curve_server_key), "", 0, 0,
     "the feed publisher's public certificate (.pub); set with feed.curve.secret_key "
     "to make the feed a CURVE client",
     RESTART},
    {"feed.curve.secret_key", OPT_PATH, F(feed_curve_secret_key), "", 0, 0,
     "our secret certificate (.key, mode 0600) for the feed connection", RESTART},
    {"feed.batch", OPT_INT, F(batch), "256", 1, 1000000,
     "messages handled per wakeup before the loop serves other events", 0},
    {"tagger.threads", OPT_INT, F(tag_threads), "0", 0, 64,
     "threads that tag the articles of a batch in parallel, the loop's own included "
     "(0: one per CPU but one, left to ZeroMQ's I/O thread, at least 1 and at most 8; "
     "read at start only)",
     RESTART},
    {"publish.endpoint", OPT_STRING, F(publish_endpoint), "tcp://127.0.0.1:5556", 0, 0,
     "ZeroMQ endpoint the alert (XPUB) socket binds", RESTART | EP_BIND},
    {"publish.sndhwm", OPT_INT, F(publish_sndhwm), "10000", 1, 100000000,
     "send high-water mark of the alert socket, in messages", RESTART},
    {"publish.curve.secret_key", OPT_PATH, F(publish_curve_secret_key), "", 0, 0,
     "our secret certificate (.key, mode 0600): alerts become a CURVE server", RESTART},
    {"publish.curve.allow_dir", OPT_PATH, F(publish_curve_allow_dir), "", 0, 0,
     "directory of the allowed consumers' .pub certificates (re-read on SIGHUP; "
     "required with publish.curve.secret_key; deny by default)",
     0},
    {"publish.heartbeat_ms", OPT_INT, F(heartbeat_ms), "1000", 0, 3600000,
     "how often the heartbeat goes out on the topic ~hb (0: never)", RESTART},
    {"publish.linger_ms", OPT_INT, F(linger_ms), "2000", 0, 600000,
     "how long unsent alerts may hold up a stop", RESTART},
    {"rules.dir", OPT_PATH, F(rules_dir), "rules", 0, 0,
     "directory of rules files, one per tag (relative to this file)", 0},
    {"rules.actors", OPT_PATH, F(actors_file), "actors.yaml", 0, 0,
     "actors file (relative to this file)", 0},
    {"rules.model", OPT_PATH, F(model_file), "", 0, 0,
     "the learned layer's model file, from newsalert train (relative to this file; "
     "empty: the rules alone decide)",
     0},
    {"limits.max_article_bytes", OPT_SIZE, L(max_article_bytes), "1048576", 256, 64 * MiB,
     "largest encoded article accepted (also ZMQ_MAXMSGSIZE, plus room for the topic)",
     RESTART},
    {"limits.max_headline_bytes", OPT_SIZE, L(max_headline_bytes), "4096", 16, 1 * MiB,
     "longest headline accepted", 0},
    {"limits.max_body_bytes", OPT_SIZE, L(max_body_bytes), "524288", 16, 64 * MiB,
     "longest body accepted", 0},
    {"limits.max_authors", OPT_SIZE, L(max_authors), "64", 0, 100000,
     "most authors accepted on one article", 0},
    {"limits.max_matches", OPT_INT, F(max_matches), "4096", 1, 10000000,
     "pattern matches considered per article; the rest of the text is not scanned", 0},
    {"limits.max_evidence", OPT_INT, F(max_evidence), "3", 1, 100,
     "evidence sentences per tag in an alert", 0},
    {"limits.max_evidence_bytes", OPT_INT, F(max_evidence_bytes), "512", 16, 1 * MiB,
     "longest evidence sentence in an alert (cut on a UTF-8 boundary)", RESTART},
    {"log.level", OPT_LOGLEVEL, F(log_level), "info", 0, 0,
     "error, warning, info or debug", 0},
    {"log.status_interval_ms", OPT_INT, F(status_interval_ms), "10000", 0, 3600000,
     "how often a status line is logged and sent to systemd (0: never)", RESTART},
    {"state.dir", OPT_PATH, F(state_dir), "/var/lib/newsalertd", 0, 0,
     "where the journal and the quarantine live ($STATE_DIRECTORY under systemd "
     "wins over this default; --state-dir over both)",
     RESTART},
    {"journal.segment_bytes", OPT_INT, F(journal_segment_bytes), "16777216", 65536,
     1024 * MiB, "start a new journal segment past this size", RESTART},
    {"journal.max_bytes", OPT_INT, F(journal_max_bytes), "1073741824", 0,
     1024 * 1024 * MiB, "delete the oldest segments above this total (0: no limit)", 0},
    {"journal.max_age_s", OPT_INT, F(journal_max_age_s), "604800", 0, 100LL * 365 * 86400,
     "delete segments whose newest alert is older than this (0: no limit)", 0},
    {"journal.fsync", OPT_STRING, F(journal_fsync), "interval", 0, 0,
     "always (no alert lost on power loss; slow), interval, or never", RESTART},
    {"journal.fsync_interval_ms", OPT_INT, F(journal_fsync_interval_ms), "1000", 1,
     3600000, "with fsync interval: most time written alerts wait for fdatasync",
     RESTART},
    {"dedup.window", OPT_INT, F(dedup_window), "100000", 0, 100000000,
     "(source, id) pairs remembered to drop duplicates and spot revisions (0: off)", 0},
    {"quarantine.max_bytes", OPT_INT, F(quarantine_max_bytes), "67108864", 0,
     1024 * 1024 * MiB,
     "rejected input kept at most, oldest files deleted first "
     "(0: no quarantine)",
     RESTART},
    {"quarantine.file_bytes", OPT_INT, F(quarantine_file_bytes), "4194304", 65536,
     1024 * MiB, "start a new quarantine file past this size", RESTART},
    {"catchup.endpoint", OPT_STRING, F(catchup_endpoint), "tcp://127.0.0.1:5557", 0, 0,
     "ZeroMQ endpoint the catch-up ROUTER binds (off: none)", RESTART | EP_BIND | EP_OFF},
    {"catchup.batch", OPT_INT, F(catchup_batch), "256", 1, 100000,
     "alerts sent to one catch-up client per turn of the loop", 0},
    {"catchup.max_clients", OPT_INT, F(catchup_max_clients), "64", 1, 100000,
     "catch-up requests served at once; more are refused", 0},
    {"catchup.max_range", OPT_INT, F(catchup_max_range), "100000000", 1, 1000000000000LL,
     "largest until_seq - since_seq a request may ask for", 0},
    {"metrics.listen", OPT_LISTEN, F(metrics_listen), "127.0.0.1:9464", 0, 0,
     "ADDR:PORT serving /metrics and /healthz over HTTP ([::1]:PORT for IPv6; "
     "off: none)",
     RESTART},
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))
_Static_assert(N_OPTIONS <= 64, "na_config.from_cmdline has one bit per option");

static void list_free(struct na_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

int na_config_set_list(struct na_strlist *list, char *const *items, size_t n)
{
    struct na_strlist nl = {calloc(n ? n : 1, sizeof(char *)), 0};
    if (nl.items == NULL)
        return -1;
    for (; nl.n < n; nl.n++)
        if ((nl.items[nl.n] = strdup(items[nl.n])) == NULL) {
            list_free(&nl);
            return -1;
        }
    list_free(list);
    *list = nl;
    return 0;
}

int na_config_set_string(char **field, const char *value)
{
    char *s = strdup(value);
    if (s == NULL)
        return -1;
    free(*field);
    *field = s;
    return 0;
}

/* A relative path in the config file is relative to the file's directory,
 * so that "-c /etc/newsalertd/newsalertd.yaml" and "-c config/..." both
 * find their rules. */
static char *resolve(const char *cfg_path, const char *p)
{
    /* An empty path stays empty: "not set". */
    if (p[0] == '/' || p[0] == '\0' || cfg_path == NULL)
        return strdup(p);
    char *copy = strdup(cfg_path);
    if (copy == NULL)
        return NULL;
    const char *dir = dirname(copy);
    size_t n = strlen(dir) + strlen(p) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", dir, p);
    free(copy);
    return out;
}

/* metrics.listen: "ADDR:PORT" with a numeric address (IPv6 in brackets), or
 * off. Here rather than in http.c so that the config loader stands alone
 * (the config fuzzer links it without the HTTP server). */
bool na_http_disabled(const char *listen)
{
    return listen == NULL || listen[0] == '\0' || !strcmp(listen, "off");
}

int na_http_parse_listen(const char *listen, char *host, size_t host_len, uint16_t *port)
{
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hlen;
    unsigned char addr[sizeof(struct in6_addr)];
    char *end;

    if (colon == NULL || colon[1] == '\0')
        return -1;
    hlen = (size_t)(colon - listen);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= host_len)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    /* Numeric addresses only: no name lookup at start-up, and an IPv6
     * address must be bracketed so that its colons are not the port's. */
    bool v6 = h != listen;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) != 1)
        return -1;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || errno || p > 65535 || colon[1] < '0' || colon[1] > '9')
        return -1;
    *port = (uint16_t)p;
    return 0;
}

/* An endpoint key's value must be one libzmq can bind or connect: checked
 * here, so that a typo fails the start and --check-config with the key's
 * file and line, not later as a socket that never connects. */
static int check_endpoint(const struct option_def *o, const char *value,
                          struct na_yaml *y, yaml_node_t *node, struct na_error *err)
{
    char why[160];
    if (!(o->flags & (EP_CONNECT | EP_BIND)) ||
        (o->flags & EP_OFF && (!strcmp(value, "off") || *value == '\0')))
        return 0;
    if (na_endpoint_check(value,
                          o->flags & EP_BIND ? NA_ENDPOINT_BIND : NA_ENDPOINT_CONNECT,
                          why, sizeof(why)) == 0)
        return 0;
    if (node)
        return na_error_set(err, "%s:%d: %s: '%.80s': %s", y->path, na_yaml_line(node),
                            o->key, value, why);
    return na_error_set(err, "'%.80s': %s", value, why);
}

static int set_value(struct na_config *cfg, const struct option_def *o, const char *value,
                     struct na_yaml *y, yaml_node_t *node, struct na_error *err)
{
    char *base = (char *)cfg + o->offset;
    long long n;

    if (check_endpoint(o, value, y, node, err) < 0)
        return -1;
    switch (o->type) {
    case OPT_STRING:
        return na_config_set_string((char **)base, value) < 0
                   ? na_error_set(err, "out of memory")
                   : 0;
    case OPT_PATH: {
        char *p = resolve(cfg->path, value);
        if (p == NULL)
            return na_error_set(err, "out of memory");
        free(*(char **)base);
        *(char **)base = p;
        return 0;
    }
    case OPT_LIST: {
        char *items[1] = {(char *)value};
        return na_config_set_list((struct na_strlist *)base, items, 1) < 0
                   ? na_error_set(err, "out of memory")
                   : 0;
    }
    case OPT_INT:
    case OPT_SIZE:
        if (node) {
            if (na_yaml_to_int(y, node, o->key, o->min, o->max, &n, err) < 0)
                return -1;
        } else {
            n = strtoll(value, NULL, 10);
        }
        if (o->type == OPT_INT)
            *(long long *)base = n;
        else
            *(size_t *)base = (size_t)n;
        return 0;
    case OPT_LISTEN: {
        char host[64];
        uint16_t port;
        if (!na_http_disabled(value) &&
            na_http_parse_listen(value, host, sizeof(host), &port) < 0) {
            if (node)
                return na_error_set(
                    err,
                    "%s:%d: %s: expected ADDR:PORT with a numeric address "
                    "(127.0.0.1:9464, [::1]:9464) or off, got '%.60s'",
                    y->path, na_yaml_line(node), o->key, value);
            return na_error_set(err, "bad default for %s", o->key);
        }
        return na_config_set_string((char **)base, value) < 0
                   ? na_error_set(err, "out of memory")
                   : 0;
    }
    case OPT_LOGLEVEL:
        if (na_log_level_parse(value, (enum na_log_level *)base) < 0) {
            if (node)
                return na_error_set(err,
                                    "%s:%d: %s: expected error, warning, info or debug, "
                                    "got '%.40s'",
                                    y->path, na_yaml_line(node), o->key, value);
            return na_error_set(err, "bad default for %s", o->key);
        }
        return 0;
    }
    return 0;
}

static int set_list(struct na_config *cfg, const struct option_def *o, struct na_yaml *y,
                    yaml_node_t *v, struct na_error *err)
{
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    char **items = calloc(n ? n : 1, sizeof(char *));
    int rc = 0;
    if (items == NULL)
        return na_error_set(err, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++) {
        yaml_node_t *item = na_yaml_node(y, v->data.sequence.items.start[i]);
        rc = na_yaml_to_string(y, item, o->key, (const char **)&items[i], err);
        if (rc == 0)
            rc = check_endpoint(o, items[i], y, item, err);
    }
    if (rc == 0 &&
        na_config_set_list((struct na_strlist *)((char *)cfg + o->offset), items, n) < 0)
        rc = na_error_set(err, "out of memory");
    free(items);
    return rc;
}

static bool is_section(const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (!strncmp(options[i].key, prefix, n) && options[i].key[n] == '.')
            return true;
    return false;
}

static int walk(struct na_config *cfg, struct na_yaml *y, yaml_node_t *map,
                const char *prefix, struct na_error *err)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = na_yaml_node(y, p->key), *v = na_yaml_node(y, p->value);
        const char *key = na_yaml_scalar(k);
        char full[128];
        if (key == NULL)
            return na_error_set(err, "%s:%d: keys must be strings", y->path,
                                na_yaml_line(k));
        snprintf(full, sizeof(full), "%s%s%s", prefix, *prefix ? "." : "", key);
        const struct option_def *o = NULL;
        for (size_t i = 0; i < N_OPTIONS; i++)
            if (!strcmp(options[i].key, full))
                o = &options[i];
        if (o == NULL) {
            if (!is_section(full))
                return na_error_set(err, "%s:%d: unknown key '%.60s'", y->path,
                                    na_yaml_line(k), full);
            if (na_yaml_expect(y, v, YAML_MAPPING_NODE, full, err) < 0 ||
                walk(cfg, y, v, full, err) < 0)
                return -1;
            continue;
        }
        if (o->type == OPT_LIST && v->type == YAML_SEQUENCE_NODE) {
            if (set_list(cfg, o, y, v, err) < 0)
                return -1;
            continue;
        }
        const char *s;
        if (na_yaml_to_string(y, v, full, &s, err) < 0 ||
            set_value(cfg, o, s, y, v, err) < 0)
            return -1;
    }
    return 0;
}

struct na_config *na_config_load(const char *path, struct na_error *err)
{
    struct na_config *cfg = calloc(1, sizeof(*cfg));
    struct na_yaml y;

    if (cfg == NULL || (cfg->path = strdup(path)) == NULL) {
        na_error_set(err, "out of memory");
        free(cfg);
        return NULL;
    }
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].type == OPT_LIST && options[i].def[0] == '\0') {
            char *items[1] = {""};
            if (na_config_set_list((struct na_strlist *)((char *)cfg + options[i].offset),
                                   items, 1) < 0)
                goto oom;
        } else if (set_value(cfg, &options[i], options[i].def, NULL, NULL, err) < 0) {
            goto fail;
        }
    }
    /* Under systemd, StateDirectory= says where state lives, unless the file
     * says otherwise (it may list several directories: the first is ours). */
    const char *sd = getenv("STATE_DIRECTORY");
    if (sd && *sd) {
        char *first = strndup(sd, strcspn(sd, ":"));
        if (first == NULL)
            goto oom;
        free(cfg->state_dir);
        cfg->state_dir = first;
    }
    if (na_yaml_load_flags(&y, path, NA_YAML_EMPTY_OK, err) < 0)
        goto fail;
    yaml_node_t *root = na_yaml_root(&y);
    /* A file of only comments (no document), or one whose document is empty
     * ("---" alone), is all defaults. */
    if (root != NULL &&
        !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)) {
        if (na_yaml_expect(&y, root, YAML_MAPPING_NODE, "config", err) < 0 ||
            walk(cfg, &y, root, "", err) < 0) {
            na_yaml_free(&y);
            goto fail;
        }
    }
    na_yaml_free(&y);
    if (cfg->feed_endpoints.n == 0) {
        na_error_set(err, "%s: feed.endpoints: at least one endpoint is needed", path);
        goto fail;
    }
    /* CURVE is all or nothing on each side: a server key pair without an
     * allowlist would encrypt for anyone, and a client needs both keys. */
    if (!*cfg->publish_curve_secret_key != !*cfg->publish_curve_allow_dir) {
        na_error_set(
            err,
            "%s: publish.curve.secret_key and publish.curve.allow_dir go together "
            "(CURVE on the alerts needs both: the key pair and the allowed "
            "consumers)",
            path);
        goto fail;
    }
    /* An empty path means "not set" for the optional ones (CURVE keys);
     * these three are needed, and an empty one would only fail later, and
     * less clearly. */
    if (!*cfg->rules_dir || !*cfg->actors_file || !*cfg->state_dir) {
        na_error_set(err, "%s: %s must not be empty", path,
                     !*cfg->rules_dir     ? "rules.dir"
                     : !*cfg->actors_file ? "rules.actors"
                                          : "state.dir");
        goto fail;
    }
    enum na_fsync policy;
    if (na_fsync_parse(cfg->journal_fsync, &policy, NULL) < 0) {
        na_error_set(err,
                     "%s: journal.fsync: expected always, interval or never, got '%.40s'",
                     path, cfg->journal_fsync);
        goto fail;
    }
    if (!*cfg->feed_curve_server_key != !*cfg->feed_curve_secret_key) {
        na_error_set(err,
                     "%s: feed.curve.server_key and feed.curve.secret_key go together "
                     "(a CURVE client needs the publisher's public key and its own key "
                     "pair)",
                     path);
        goto fail;
    }
    return cfg;
oom:
    na_error_set(err, "out of memory");
fail:
    na_config_free(cfg);
    return NULL;
}

void na_config_free(struct na_config *cfg)
{
    if (cfg == NULL)
        return;
    list_free(&cfg->feed_endpoints);
    list_free(&cfg->feed_topics);
    free(cfg->publish_endpoint);
    free(cfg->publish_curve_secret_key);
    free(cfg->publish_curve_allow_dir);
    free(cfg->feed_curve_server_key);
    free(cfg->feed_curve_secret_key);
    free(cfg->rules_dir);
    free(cfg->actors_file);
    free(cfg->model_file);
    free(cfg->metrics_listen);
    free(cfg->state_dir);
    free(cfg->journal_fsync);
    free(cfg->catchup_endpoint);
    free(cfg->path);
    free(cfg);
}

int na_config_override(struct na_config *cfg, const char *key, char *const *values,
                       size_t n, struct na_error *err)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option_def *o = &options[i];
        if (strcmp(o->key, key))
            continue;
        if (o->type != OPT_LIST && n != 1)
            return na_error_set(err, "%s takes one value", key);
        for (size_t j = 0; j < n; j++)
            if (check_endpoint(o, values[j], NULL, NULL, err) < 0)
                return -1;
        /* A path on the command line is the shell's: relative to the
         * working directory, not to the config file. */
        int rc = o->type == OPT_LIST
                     ? na_config_set_list((struct na_strlist *)((char *)cfg + o->offset),
                                          values, n)
                 : o->type == OPT_PATH
                     ? na_config_set_string((char **)((char *)cfg + o->offset), values[0])
                     : set_value(cfg, o, values[0], NULL, NULL, err);
        if (rc < 0)
            return na_error_set(err, "%s: cannot set '%.60s'", key, values[0]);
        cfg->from_cmdline |= 1ull << i;
        return 0;
    }
    return na_error_set(err, "no option %s", key);
}

static bool same_value(const struct option_def *o, const void *a, const void *b)
{
    switch (o->type) {
    case OPT_STRING:
    case OPT_PATH:
    case OPT_LISTEN:
        return !strcmp(*(char *const *)a, *(char *const *)b);
    case OPT_LIST: {
        const struct na_strlist *x = a, *y = b;
        if (x->n != y->n)
            return false;
        for (size_t i = 0; i < x->n; i++)
            if (strcmp(x->items[i], y->items[i]))
                return false;
        return true;
    }
    case OPT_INT:
        return *(const long long *)a == *(const long long *)b;
    case OPT_SIZE:
        return *(const size_t *)a == *(const size_t *)b;
    case OPT_LOGLEVEL:
        return *(const enum na_log_level *)a == *(const enum na_log_level *)b;
    }
    return true;
}

/* Swapped rather than copied: next gets the running value, and running
 * (about to be freed) the file's. */
static void swap_value(const struct option_def *o, void *a, void *b)
{
    size_t size = o->type == OPT_LIST       ? sizeof(struct na_strlist)
                  : o->type == OPT_INT      ? sizeof(long long)
                  : o->type == OPT_SIZE     ? sizeof(size_t)
                  : o->type == OPT_LOGLEVEL ? sizeof(enum na_log_level)
                                            : sizeof(char *);
    unsigned char tmp[sizeof(struct na_strlist)];
    memcpy(tmp, a, size);
    memcpy(a, b, size);
    memcpy(b, tmp, size);
}

size_t na_config_keep_restart(struct na_config *next, struct na_config *running,
                              void (*changed)(const char *key, void *arg), void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option_def *o = &options[i];
        bool cmdline = running->from_cmdline & (1ull << i);
        if (!(o->flags & RESTART) && !cmdline)
            continue;
        void *a = (char *)next + o->offset, *b = (char *)running + o->offset;
        if (!cmdline && !same_value(o, a, b)) {
            n++;
            if (changed)
                changed(o->key, arg);
        }
        swap_value(o, a, b);
    }
    next->from_cmdline = running->from_cmdline;
    return n;
}

void na_config_print_reference(FILE *out)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        fprintf(out, "  %-28s %-22s %s\n", options[i].key,
                options[i].def[0] ? options[i].def : "\"\"", options[i].help);
}
