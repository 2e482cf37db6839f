/* newsalert train: the learned layer's model from labelled articles. Every
 * article is tagged by the rules exactly as the daemon tags it, and the
 * features the tagger computes become liblinear's examples (lib/train.c). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/article.h"
#include "newsalert/tagger.h"
#include "newsalert/train.h"
#include "newsalert.h"

/* Hard negatives are the near misses the model must learn to refuse; they
 * are few beside the positives that share their words, so by default each
 * counts for four (docs/tagging.md has the cross-validated figures). */
#define HARD_WEIGHT 4
#define NA_STR_(x) #x
#define NA_STR(x) NA_STR_(x)

static void train_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert train CORPUS.jsonl... -o MODEL [OPTION]...\n"
        "Train the learned layer on labelled articles (JSON lines with \"labels\" and\n"
        "\"split\"): a linear model per tag over the word 1- and 2-grams of the\n"
        "\"train\" and \"dev\" lines. Its regularisation, calibration and threshold\n"
        "are chosen by cross-validation that holds out one CORPUS file at a time\n"
        "(five folds by position when fewer than three files are given). Lines of\n"
        "any other split (the frozen \"test\" split) are left out. Prints the\n"
        "cross-validated precision, recall and F1 per tag, over all lines and over\n"
        "the dev lines. The same input gives a byte-identical model.\n"
        "  -o, --output FILE   where to write the model (required)\n"
        "      --min-df N      leave out n-grams found in fewer than N articles\n"
        "                      (default 2)\n"
        "      --hard-weight N count each hard negative (\"negative\": \"hard\": no\n"
        "                      label, the tags' words in another sense) as N articles\n"
        "                      when fitting (1 to 100, default " NA_STR(HARD_WEIGHT) ")\n"
        "      --config FILE   the daemon's configuration, for rules.dir, rules.actors\n"
        "                      and the limits (default\n"
        "                      " NA_DEFAULT_CONFIG ")\n"
        "  -R, --rules DIR     rules directory instead of the configuration's rules.dir\n"
        "  -a, --actors FILE   actors file (default: the configuration's, or\n"
        "                      DIR/../actors.yaml with --rules)\n"
        "  -q, --quiet         print only the table\n"
        "  -h, --help          show this help\n");
}

/* arg, the value of option, as a whole number from 1 to max, into *out;
 * else says so and returns false. */
static bool whole_number(const char *option, const char *arg, unsigned long max,
                         unsigned *out)
{
    char *end;
    unsigned long v = strtoul(arg, &end, 10);
    if (end == arg || *end || v < 1 || v > max) {
        tool_error("train", "%s: expected a whole number from 1 to %lu, got '%s'", option,
                   max, arg);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

static unsigned label_mask(json_t *labels, const struct na_ruleset *rs, bool *unknown)
{
    unsigned mask = 0;
    size_t i;
    json_t *v;
    json_array_foreach(labels, i, v)
    {
        int t = json_is_string(v) ? na_ruleset_tag_find(rs, json_string_value(v)) : -1;
        if (t < 0)
            *unknown = true;
        else
            mask |= 1u << t;
    }
    return mask;
}

/* Reads one corpus file into ts. Returns the number of lines that could not
 * be used (each reported). */
static unsigned read_corpus(const char *path, struct na_tagger *tagger,
                            const struct na_limits *limits, const struct na_ruleset *rs,
                            struct na_trainset *ts, unsigned group, unsigned hard_weight,
                            unsigned *n_train, unsigned *n_dev, unsigned *n_other)
{
    struct article_source *src = article_source_open(path, "train");
    struct article_item item;
    struct na_error err;
    unsigned bad = 0;
    int rc;

    if (src == NULL)
        return 1;
    while ((rc = article_source_next(src, &item)) != 0) {
        if (rc < 0 || item.json == NULL) {
            bad++;
            continue;
        }
        json_t *sp = json_object_get(item.json, "split");
        json_t *labels = json_object_get(item.json, "labels");
        const char *split = json_is_string(sp) ? json_string_value(sp) : "";
        bool dev = !strcmp(split, "dev");
        if (!dev && strcmp(split, "train") != 0) {
            (*n_other)++;
            continue;
        }
        json_t *neg = json_object_get(item.json, "negative");
        bool unknown = false;
        unsigned mask = json_is_array(labels) ? label_mask(labels, rs, &unknown) : 0;
        if (!json_is_array(labels) || unknown) {
            tool_error("train", "%s:%zu: %s", path, item.line,
                       unknown ? "a label that the rules do not define"
                               : "no \"labels\" list");
            bad++;
            continue;
        }
        bool hard = mask == 0 && json_is_string(neg) &&
                    !strcmp(json_string_value(neg), "hard");
        enum na_reject why;
        char msg[256];
        Newsalert__V1__Article *a =
            na_article_decode(item.payload, item.len, limits, &why, msg, sizeof(msg));
        if (a == NULL) {
            tool_error("train", "%s:%zu: rejected (%s): %s", path, item.line,
                       na_reject_name(why), msg);
            bad++;
            continue;
        }
        const char *h = a->headline ? a->headline : "", *b = a->body ? a->body : "";
        const struct na_result *res;
        if (na_tagger_tag(tagger, h, strlen(h), b, strlen(b), &res, &err) < 0) {
            tool_error("train", "%s:%zu: %s", path, item.line, err.msg);
            bad++;
        } else if (na_trainset_add(ts, &(struct na_train_example){
                                           .features = res->features,
                                           .n_features = res->n_features,
                                           .labels = mask,
                                           .dev = dev,
                                           .hard = hard,
                                           .group = group,
                                           .weight = hard ? hard_weight : 1}) <
                   0) {
            tool_error("train", "out of memory");
            bad++;
        } else {
            (*(dev ? n_dev : n_train))++;
        }
        na_article_free(a);
    }
    article_source_close(src);
    return bad;
}

static void print_table(const struct na_ruleset *rs, const struct na_train_report *rep,
                        bool dev)
{
    printf("%-10s %6s %9s %6s %6s %6s %9s %7s %7s\n", "tag", "C", "threshold", "tp", "fp",
           "fn", "precision", "recall", "f1");
    double macro = 0;
    for (size_t t = 0; t < na_ruleset_tag_count(rs); t++) {
        const struct na_train_tag_report *r = &rep->tags[t];
        unsigned tp = dev ? r->dev_tp : r->tp, fp = dev ? r->dev_fp : r->fp,
                 fn = dev ? r->dev_fn : r->fn;
        double p = tp + fp ? (double)tp / (tp + fp) : 0;
        double rc = tp + fn ? (double)tp / (tp + fn) : 0;
        double f = p + rc > 0 ? 2 * p * rc / (p + rc) : 0;
        macro += f;
        printf("%-10s %6g %9.2f %6u %6u %6u %9.3f %7.3f %7.3f\n",
               na_ruleset_tag(rs, t)->name, r->c, r->threshold, tp, fp, fn, p, rc, f);
    }
    printf("%-10s %6s %9s %6s %6s %6s %9s %7s %7.3f\n", "macro", "", "", "", "", "", "",
           "", macro / (double)na_ruleset_tag_count(rs));
}

int cmd_train(int argc, char **argv)
{
    enum { OPT_MIN_DF = 1001, OPT_HARD_WEIGHT };
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"min-df", required_argument, NULL, OPT_MIN_DF},
                                         {"hard-weight", required_argument, NULL,
                                          OPT_HARD_WEIGHT},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         TOOL_RULES_LONG,
                                         {NULL, 0, NULL, 0}};
    const char *output = NULL;
    struct tool_rules_opts ro = {.no_model = true, .keep_features = true};
    struct na_train_options opt = {.min_df = 2};
    unsigned hard_weight = HARD_WEIGHT;
    int c;

    /* Training needs no model: --model and --no-model are refused. */
    while ((c = getopt_long(argc, argv, "o:qhR:a:", opts, NULL)) != -1) {
        if (c != 'M' && c != 'N' && tool_rules_option(c, optarg, &ro))
            continue;
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case OPT_MIN_DF:
            if (!whole_number("--min-df", optarg, 1000, &opt.min_df))
                return EXIT_USAGE;
            break;
        case OPT_HARD_WEIGHT:
            if (!whole_number("--hard-weight", optarg, 100, &hard_weight))
                return EXIT_USAGE;
            break;
        case 'q':
            opt.quiet = true;
            break;
        case 'h':
            train_usage(stdout);
            return EXIT_OK;
        case 'M':
        case 'N':
            tool_error("train", "--model and --no-model are for tag and eval: train makes "
                                "a model");
            return EXIT_USAGE;
        default:
            train_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc || output == NULL) {
        tool_error("train", "%s", output ? "no corpus given" : "--output is required");
        train_usage(stderr);
        return EXIT_USAGE;
    }
    struct tool_rules tr;
    if (tool_rules_open(&tr, "train", &ro) < 0)
        return EXIT_FAIL;
    struct na_ruleset *rs = tr.rs;
    struct na_tagger *tagger = tr.tagger;
    struct na_trainset *ts = na_trainset_new();
    unsigned bad = 0, n_train = 0, n_dev = 0, n_other = 0;
    int status = EXIT_FAIL;
    if (ts == NULL) {
        tool_error("train", "out of memory");
        goto out;
    }
    for (int i = optind; i < argc; i++)
        bad += read_corpus(argv[i], tagger, tr.limits, rs, ts, (unsigned)(i - optind),
                           hard_weight, &n_train, &n_dev, &n_other);
    if (bad) {
        tool_error("train", "%u line(s) could not be used; no model written", bad);
        goto out;
    }
    if (!opt.quiet)
        fprintf(stderr, "train: %u train, %u dev, %u other (left out)\n", n_train, n_dev,
                n_other);
    struct na_train_report rep;
    struct na_error err;
    if (na_model_train(ts, rs, &opt, output, &rep, &err) < 0) {
        tool_error("train", "%s", err.msg);
        goto out;
    }
    printf("model %s: %zu features, trained on %zu articles\n", output, rep.n_features,
           rep.n_train + rep.n_dev);
    printf("cross-validated, %zu folds (%zu articles)\n", rep.n_folds,
           rep.n_train + rep.n_dev);
    print_table(rs, &rep, false);
    if (rep.n_hard)
        printf("hard negatives given any tag: %u of %u (%.1f%%)\n", rep.hard_fp, rep.n_hard,
               100.0 * rep.hard_fp / rep.n_hard);
    printf("dev lines, cross-validated (%zu articles)\n", rep.n_dev);
    print_table(rs, &rep, true);
    status = EXIT_OK;
out:
    na_trainset_free(ts);
    tool_rules_close(&tr);
    return status;
}
