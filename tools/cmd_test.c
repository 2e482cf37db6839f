/* newsalert test: a golden test of a recorded feed. The feed goes through
 * the daemon's own path (tool_pipeline: limits, dedup, tagging, alerts) and
 * the alerts are compared with the expected ones, field by field. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/jsonl.h"
#include "newsalert.h"

/* What depends on the run rather than on the feed and the rules. */
static const char *const volatile_keys[] = {"epoch", "received_at_ms", "topic",
                                            "topic_seq", "topics"};

static void test_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert test FEED EXPECTED [OPTION]...\n"
        "Run a recorded feed (or JSON-lines articles) through the daemon's own path\n"
        "(limits, dedup with update_of, tagging) and compare the alerts with EXPECTED,\n"
        "a JSON-lines file of alerts as 'newsalert tag' prints them. epoch, receive\n"
        "times and topics are ignored; seq and update_of count from the first alert.\n"
        "Prints each difference; exits 0 on a match, 1 on a mismatch.\n"
        "      --update        write the alerts to EXPECTED instead of "
        "comparing\n" TOOL_RULES_HELP "  -h, --help          show this help\n");
}

static json_int_t int_of(json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v)) /* 64-bit values may be written as strings */
        return (json_int_t)strtoull(json_string_value(v), NULL, 10);
    return 0;
}

/* Drops the run's fields, rebases seq and update_of on base, and rounds
 * the reals as 'newsalert tag' prints them, so that a file written by tag
 * and one written here compare alike. Takes o; returns a new object. */
static json_t *normalise(json_t *o, json_int_t base)
{
    for (size_t i = 0; i < sizeof(volatile_keys) / sizeof(volatile_keys[0]); i++)
        json_object_del(o, volatile_keys[i]);
    /* A 64-bit value may be written as a number or as a string of digits:
     * both compare alike. */
    static const char *const int64_keys[] = {"feed_seq", "published_at_ms",
                                             "journal_time_ms"};
    for (size_t i = 0; i < sizeof(int64_keys) / sizeof(int64_keys[0]); i++) {
        json_t *v = json_object_get(o, int64_keys[i]);
        if (json_is_integer(v))
            json_object_set_new(o, int64_keys[i], na_json_int64(json_integer_value(v)));
    }
    json_int_t seq = int_of(json_object_get(o, "seq"));
    json_int_t upd = int_of(json_object_get(o, "update_of"));
    json_object_set_new(o, "seq", na_json_uint64((uint64_t)(seq - base + 1)));
    json_object_set_new(o, "update_of",
                        na_json_uint64(upd ? (uint64_t)(upd - base + 1) : 0));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
    json_decref(o);
    json_t *r = s ? json_loads(s, 0, NULL) : NULL;
    free(s);
    return r;
}

struct alerts {
    json_t *v; /* an array */
    json_int_t base;
};

static void alerts_add(struct alerts *l, json_t *o)
{
    if (json_array_size(l->v) == 0)
        l->base = int_of(json_object_get(o, "seq"));
    json_t *n = normalise(o, l->base);
    if (n)
        json_array_append_new(l->v, n);
}

static int read_expected(const char *path, struct alerts *l)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    int rc = 0;

    if (f == NULL) {
        tool_error("test", "%s: %m", path);
        return -1;
    }
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)got)
            continue;
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        if (!json_is_object(o)) {
            tool_error("test", "%s:%zu: %s", path, lineno,
                       o ? "expected an alert (a JSON object)" : jerr.text);
            json_decref(o);
            rc = -1;
            break;
        }
        alerts_add(l, o);
    }
    free(line);
    fclose(f);
    return rc;
}

static void print_value(const char *label, json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY |
                                    JSON_REAL_PRECISION(6))
                : NULL;
    printf("    %s %.300s\n", label, s ? s : "(absent)");
    free(s);
}

/* Prints each differing leaf under path: objects by key, arrays of one
 * length by index, anything else whole. */
static void diff_value(const char *path, json_t *w, json_t *g)
{
    char sub[512];
    if (w && g && json_equal(w, g))
        return;
    if (json_is_object(w) && json_is_object(g)) {
        const char *key;
        json_t *v;
        json_object_foreach(w, key, v)
        {
            snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
            diff_value(sub, v, json_object_get(g, key));
        }
        json_object_foreach(g, key, v)
        {
            if (json_object_get(w, key))
                continue;
            snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
            diff_value(sub, NULL, v);
        }
        return;
    }
    if (json_is_array(w) && json_is_array(g) &&
        json_array_size(w) == json_array_size(g)) {
        for (size_t i = 0; i < json_array_size(w); i++) {
            snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
            diff_value(sub, json_array_get(w, i), json_array_get(g, i));
        }
        return;
    }
    printf("  %s:\n", path);
    print_value("- expected", w);
    print_value("+ got     ", g);
}

static const char *id_of(json_t *o)
{
    const char *s = json_string_value(json_object_get(o, "article_id"));
    return s ? s : "?";
}

/* Prints the differences; returns how many alerts differ. */
static size_t diff(json_t *want, json_t *got)
{
    size_t nw = json_array_size(want), ng = json_array_size(got), bad = 0;
    for (size_t i = 0; i < nw || i < ng; i++) {
        json_t *w = json_array_get(want, i), *g = json_array_get(got, i);
        if (w && g && json_equal(w, g))
            continue;
        bad++;
        if (g == NULL) {
            printf("alert %zu (article %s): expected, missing\n", i + 1, id_of(w));
            continue;
        }
        if (w == NULL) {
            printf("alert %zu (article %s): unexpected\n", i + 1, id_of(g));
            continue;
        }
        printf("alert %zu (article %s):\n", i + 1, id_of(w));
        diff_value("", w, g);
    }
    return bad;
}

static int write_expected(const char *path, json_t *got)
{
    FILE *f = fopen(path, "w");
    size_t i;
    json_t *v;
    if (f == NULL) {
        tool_error("test", "%s: %m", path);
        return -1;
    }
    json_array_foreach(got, i, v)
    {
        char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
        if (s)
            fprintf(f, "%s\n", s);
        free(s);
    }
    if (fclose(f) != 0) {
        tool_error("test", "%s: %m", path);
        return -1;
    }
    return 0;
}

int cmd_test(int argc, char **argv)
{
    /* --update has no short form: -u is top's and wait-ready's --url. */
    enum { OPT_UPDATE = 1001 };
    static const struct option opts[] = {{"update", no_argument, NULL, OPT_UPDATE},
                                         {"help", no_argument, NULL, 'h'},
                                         TOOL_RULES_LONG,
                                         {NULL, 0, NULL, 0}};
    struct tool_rules_opts ro = {0};
    bool update = false;
    int c;

    while ((c = getopt_long(argc, argv, "h" TOOL_RULES_SHORT, opts, NULL)) != -1) {
        if (tool_rules_option(c, optarg, &ro))
            continue;
        switch (c) {
        case OPT_UPDATE:
            update = true;
            break;
        case 'h':
            test_usage(stdout);
            return EXIT_OK;
        default:
            test_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (argc - optind != 2) {
        tool_error("test", "expected FEED and EXPECTED, got %d argument%s", argc - optind,
                   argc - optind == 1 ? "" : "s");
        test_usage(stderr);
        return EXIT_USAGE;
    }
    const char *feed = argv[optind], *expected = argv[optind + 1];
    struct alerts want = {json_array(), 0}, got = {json_array(), 0};
    int status = EXIT_FAIL;
    if (!update && read_expected(expected, &want) < 0) {
        json_decref(want.v);
        json_decref(got.v);
        return EXIT_FAIL;
    }
    struct tool_pipeline p;
    if (tool_pipeline_open(&p, "test", &ro) < 0)
        goto out_json;
    struct article_source *src = article_source_open(feed, "test");
    if (src == NULL)
        goto out;
    struct article_item item;
    int rc;
    bool failed = false;
    while (!failed && (rc = article_source_next(src, &item)) != 0) {
        if (rc < 0) {
            p.messages++;
            p.rejected++;
            continue;
        }
        Newsalert__V1__Article *a;
        Newsalert__V1__Alert *al;
        const struct na_result *res;
        char msg[256];
        enum tool_verdict v =
            tool_pipeline_handle(&p, "test", &item, &a, &res, &al, msg, sizeof(msg));
        if (v == TOOL_ERROR)
            failed = true;
        else if (al)
            alerts_add(&got, na_alert_to_json(al));
        na_article_free(a);
    }
    failed |= article_source_damaged(src);
    article_source_close(src);
    if (failed)
        goto out;
    if (update) {
        if (write_expected(expected, got.v) == 0) {
            printf("%s: %zu alerts written\n", expected, json_array_size(got.v));
            status = EXIT_OK;
        }
        goto out;
    }
    size_t bad = diff(want.v, got.v);
    if (bad) {
        printf("%s: %zu of %zu alerts differ (%zu expected, %zu from %s)\n", expected,
               bad,
               json_array_size(want.v) > json_array_size(got.v) ? json_array_size(want.v)
                                                                : json_array_size(got.v),
               json_array_size(want.v), json_array_size(got.v), feed);
        status = EXIT_FAIL;
    } else {
        printf("%s: all %zu alerts match\n", expected, json_array_size(got.v));
        status = EXIT_OK;
    }
out:
    tool_pipeline_close(&p);
out_json:
    json_decref(want.v);
    json_decref(got.v);
    return status;
}
