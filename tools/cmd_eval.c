/* newsalert eval: precision, recall and F1 per tag on labelled articles
 * (JSON lines with a "labels" list), with every error and its reason. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/article.h"
#include "newsalert/tagger.h"
#include "newsalert.h"

static void eval_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert eval FILE.jsonl [OPTION]...\n"
        "Tag labelled articles (JSON lines with \"labels\": [...]) and report "
        "precision,\n"
        "recall and F1 per tag, micro and macro averages, and every false positive and\n"
        "false negative with the reason.\n"
        "  -s, --split NAME    only lines whose \"split\" is NAME (e.g. tune, holdout)\n"
        "  -m, --min-f1 X      exit 1 when any tag's F1 is below X\n"
        "  -r, --rules DIR     rules directory (default config/rules, else installed)\n"
        "  -a, --actors FILE   actors file (default DIR/../actors.yaml)\n"
        "  -q, --quiet         print only the table\n"
        "  -h, --help          show this help\n");
}

struct counts {
    unsigned tp, fp, fn;
};

static double ratio(unsigned a, unsigned b)
{
    return b ? (double)a / (double)b : 0;
}

static double f1(double p, double r)
{
    return p + r > 0 ? 2 * p * r / (p + r) : 0;
}

static bool has_label(json_t *labels, const char *tag)
{
    size_t i;
    json_t *v;
    json_array_foreach(labels, i, v)
    {
        if (json_is_string(v) && !strcmp(json_string_value(v), tag))
            return true;
    }
    return false;
}

int cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {{"split", required_argument, NULL, 's'},
                                         {"min-f1", required_argument, NULL, 'm'},
                                         {"rules", required_argument, NULL, 'r'},
                                         {"actors", required_argument, NULL, 'a'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *split = NULL, *rules = NULL, *actors = NULL;
    double min_f1 = -1;
    bool quiet = false;
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "s:m:r:a:qh", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            split = optarg;
            break;
        case 'm':
            min_f1 = strtod(optarg, &end);
            if (*end || min_f1 < 0 || min_f1 > 1) {
                tool_error("eval", "--min-f1: expected a number from 0 to 1, got '%s'",
                           optarg);
                return EXIT_USAGE;
            }
            break;
        case 'r':
            rules = optarg;
            break;
        case 'a':
            actors = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            eval_usage(stdout);
            return EXIT_OK;
        default:
            eval_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        eval_usage(stderr);
        return EXIT_USAGE;
    }
    struct na_ruleset *rs;
    struct na_tagger *tagger = tool_load_tagger("eval", rules, actors, &rs);
    if (tagger == NULL)
        return EXIT_FAIL;
    struct na_error err;
    struct article_source *src = article_source_open(argv[optind], "eval");
    if (src == NULL) {
        article_source_close(src);
        na_tagger_free(tagger);
        na_ruleset_free(rs);
        return EXIT_FAIL;
    }
    size_t n_tags = na_ruleset_tag_count(rs);
    struct counts counts[NA_MAX_TAGS] = {{0, 0, 0}};
    struct na_limits limits;
    na_limits_default(&limits);
    struct article_item item;
    unsigned n = 0, bad = 0;
    int rc;
    while ((rc = article_source_next(src, &item)) != 0) {
        if (rc < 0 || item.json == NULL) {
            bad++;
            continue;
        }
        json_t *sp = json_object_get(item.json, "split");
        if (split && (!json_is_string(sp) || strcmp(json_string_value(sp), split) != 0))
            continue;
        json_t *labels = json_object_get(item.json, "labels");
        if (!json_is_array(labels)) {
            tool_error("eval", "line %zu: no \"labels\" list", item.line);
            bad++;
            continue;
        }
        enum na_reject why;
        char msg[256];
        Newsalert__V1__Article *a =
            na_article_decode(item.payload, item.len, &limits, &why, msg, sizeof(msg));
        if (a == NULL) {
            tool_error("eval", "line %zu: rejected (%s): %s", item.line,
                       na_reject_name(why), msg);
            bad++;
            continue;
        }
        const char *h = a->headline ? a->headline : "", *b = a->body ? a->body : "";
        const struct na_result *res;
        if (na_tagger_tag(tagger, h, strlen(h), b, strlen(b), &res, &err) < 0) {
            tool_error("eval", "%s", err.msg);
            na_article_free(a);
            bad++;
            continue;
        }
        n++;
        for (unsigned t = 0; t < n_tags; t++) {
            const char *name = na_ruleset_tag(rs, t)->name;
            bool want = has_label(labels, name), got = res->tags[t].fired;
            if (want && got)
                counts[t].tp++;
            else if (got)
                counts[t].fp++;
            else if (want)
                counts[t].fn++;
            if (want != got && !quiet) {
                char reason[512];
                tool_reason(reason, sizeof(reason), rs, res, t, h, b);
                printf("%s %-8s %s  \"%.70s\"\n   %s\n", want ? "FN" : "FP", name, a->id,
                       h, reason);
            }
        }
        na_article_free(a);
    }
    printf("\n%u articles%s%s%s\n", n, split ? " (split " : "", split ? split : "",
           split ? ")" : "");
    printf("%-10s %6s %6s %6s %9s %7s %7s\n", "tag", "tp", "fp", "fn", "precision",
           "recall", "f1");
    struct counts all = {0, 0, 0};
    double macro_p = 0, macro_r = 0, macro_f = 0, worst = 1;
    for (unsigned t = 0; t < n_tags; t++) {
        struct counts *k = &counts[t];
        double p = ratio(k->tp, k->tp + k->fp), r = ratio(k->tp, k->tp + k->fn),
               f = f1(p, r);
        printf("%-10s %6u %6u %6u %9.3f %7.3f %7.3f\n", na_ruleset_tag(rs, t)->name,
               k->tp, k->fp, k->fn, p, r, f);
        all.tp += k->tp;
        all.fp += k->fp;
        all.fn += k->fn;
        macro_p += p;
        macro_r += r;
        macro_f += f;
        if (f < worst)
            worst = f;
    }
    double mp = ratio(all.tp, all.tp + all.fp), mr = ratio(all.tp, all.tp + all.fn);
    printf("%-10s %6u %6u %6u %9.3f %7.3f %7.3f\n", "micro", all.tp, all.fp, all.fn, mp,
           mr, f1(mp, mr));
    printf("%-10s %6s %6s %6s %9.3f %7.3f %7.3f\n", "macro", "", "", "", macro_p / n_tags,
           macro_r / n_tags, macro_f / n_tags);
    article_source_close(src);
    na_tagger_free(tagger);
    na_ruleset_free(rs);
    if (bad) {
        tool_error("eval", "%u lines could not be evaluated", bad);
        return EXIT_FAIL;
    }
    if (min_f1 >= 0 && worst < min_f1) {
        tool_error("eval", "F1 %.3f is below the required %.3f", worst, min_f1);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
