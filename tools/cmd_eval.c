/* newsalert eval: precision, recall and F1 per tag on labelled articles
 * (JSON lines with a "labels" list), with bootstrap intervals, figures by
 * length and on hard negatives, every error and its reason, and a side by
 * side comparison of two rule/model sets. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/article.h"
#include "newsalert/tagger.h"
#include "newsalert.h"

#define BOOTSTRAP_ROUNDS 1000

static void eval_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert eval FILE.jsonl... [OPTION]...\n"
        "Tag labelled articles (JSON lines with \"labels\": [...]) and report precision,\n"
        "recall and F1 per tag with a bootstrap 95%% interval, micro and macro averages,\n"
        "the same for short and long-form articles (\"form\", else 350 words or more),\n"
        "the false-positive rate on hard negatives (\"negative\": \"hard\"), and every\n"
        "false positive and false negative with the reason.\n"
        "      --split NAME    only lines whose \"split\" is NAME (train, dev or test)\n"
        "      --min-f1 X      exit 1 when any tag's F1 is below X\n" TOOL_RULES_HELP
        "      --compare A,B   compare two sets on the same articles: each is a model\n"
        "                      file, or 'rules' for the rules alone, optionally after\n"
        "                      a rules directory and a colon (DIR:MODEL, DIR:rules)\n"
        "  -q, --quiet         print only the tables\n"
        "  -h, --help          show this help\n");
}

struct item {
    char *id, *headline, *body;
    unsigned labels;
    bool long_form;
    bool hard_negative;
};

struct corpus {
    struct item *v;
    size_t n, cap;
};

struct counts {
    unsigned tp, fp, fn;
};

static double ratio(unsigned a, unsigned b)
{
    return b ? (double)a / (double)b : 0;
}

static double f1_of(const struct counts *k)
{
    return k->tp ? 2.0 * k->tp / (2.0 * k->tp + k->fp + k->fn) : 0;
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

static size_t word_count(const char *s)
{
    size_t n = 0;
    bool in = false;
    for (; *s; s++) {
        bool sp = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
        n += !sp && !in;
        in = !sp;
    }
    return n;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

/* Reads the lines of path (of split, when given) into c. Returns the number
 * of bad lines, each reported. */
static unsigned read_corpus(const char *path, const char *split, const struct na_ruleset *rs,
                            const struct na_limits *limits, struct corpus *c)
{
    struct article_source *src = article_source_open(path, "eval");
    struct article_item item;
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
        if (split && (!json_is_string(sp) || strcmp(json_string_value(sp), split) != 0))
            continue;
        json_t *labels = json_object_get(item.json, "labels");
        bool unknown = false;
        unsigned mask = json_is_array(labels) ? label_mask(labels, rs, &unknown) : 0;
        if (!json_is_array(labels) || unknown) {
            tool_error("eval", "%s:%zu: %s", path, item.line,
                       unknown ? "a label that the rules do not define"
                               : "no \"labels\" list");
            bad++;
            continue;
        }
        enum na_reject why;
        char msg[256];
        Newsalert__V1__Article *a =
            na_article_decode(item.payload, item.len, limits, &why, msg, sizeof(msg));
        if (a == NULL) {
            tool_error("eval", "%s:%zu: rejected (%s): %s", path, item.line,
                       na_reject_name(why), msg);
            bad++;
            continue;
        }
        if (c->n == c->cap) {
            size_t ncap = c->cap ? c->cap * 2 : 256;
            struct item *p = realloc(c->v, ncap * sizeof(*p));
            if (p == NULL) {
                na_article_free(a);
                bad++;
                break;
            }
            c->v = p;
            c->cap = ncap;
        }
        json_t *form = json_object_get(item.json, "form");
        json_t *neg = json_object_get(item.json, "negative");
        struct item *it = &c->v[c->n++];
        it->id = dup_or_empty(a->id);
        it->headline = dup_or_empty(a->headline);
        it->body = dup_or_empty(a->body);
        it->labels = mask;
        it->long_form = json_is_string(form) ? !strcmp(json_string_value(form), "long")
                                             : word_count(it->body) >= 350;
        it->hard_negative =
            mask == 0 && json_is_string(neg) && !strcmp(json_string_value(neg), "hard");
        na_article_free(a);
    }
    article_source_close(src);
    return bad;
}

static void corpus_free(struct corpus *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].id);
        free(c->v[i].headline);
        free(c->v[i].body);
    }
    free(c->v);
}

/* One rule/model set to evaluate. */
struct set {
    const char *label;
    struct tool_rules_opts ro;
    struct tool_rules tr;
    struct na_ruleset *rs; /* borrowed from tr */
    struct na_tagger *tagger;
    struct na_model *m;
    unsigned *got; /* per item: the tags that fired */
};

static int set_open(struct set *s)
{
    if (tool_rules_open(&s->tr, "eval", &s->ro) < 0)
        return -1;
    s->rs = s->tr.rs;
    s->tagger = s->tr.tagger;
    s->m = s->tr.model;
    return 0;
}

static void set_close(struct set *s)
{
    tool_rules_close(&s->tr);
    free(s->got);
}

/* Tags every item; with verbose, prints each error and its reason. */
static int set_run(struct set *s, const struct corpus *c, bool verbose)
{
    size_t n_tags = na_ruleset_tag_count(s->rs);
    struct na_error err;

    s->got = calloc(c->n ? c->n : 1, sizeof(*s->got));
    if (s->got == NULL)
        return -1;
    for (size_t i = 0; i < c->n; i++) {
        const struct item *it = &c->v[i];
        const struct na_result *res;
        if (na_tagger_tag(s->tagger, it->headline, strlen(it->headline), it->body,
                          strlen(it->body), &res, &err) < 0) {
            tool_error("eval", "%s: %s", it->id, err.msg);
            return -1;
        }
        for (unsigned t = 0; t < n_tags; t++) {
            if (!res->tags[t].fired)
                continue;
            s->got[i] |= 1u << t;
        }
        if (!verbose)
            continue;
        for (unsigned t = 0; t < n_tags; t++) {
            bool want = it->labels >> t & 1, got = s->got[i] >> t & 1;
            if (want == got)
                continue;
            char reason[512];
            tool_reason(reason, sizeof(reason), s->rs, res, t, it->headline, it->body);
            printf("%s %-8s %s  \"%.70s\"\n   ", want ? "FN" : "FP",
                   na_ruleset_tag(s->rs, t)->name, it->id, it->headline);
            if (res->model)
                printf("p %.2f; ", res->tags[t].confidence);
            printf("%s\n", reason);
        }
    }
    return 0;
}

enum subset { ALL, SHORT, LONG };

static bool in_subset(const struct item *it, enum subset sub)
{
    return sub == ALL || (sub == LONG) == it->long_form;
}

/* Counts per tag over the items idx[0..n) of the subset. */
static void count(const struct corpus *c, const unsigned *got, const size_t *idx, size_t n,
                  enum subset sub, size_t n_tags, struct counts *out)
{
    memset(out, 0, n_tags * sizeof(*out));
    for (size_t k = 0; k < n; k++) {
        const struct item *it = &c->v[idx[k]];
        if (!in_subset(it, sub))
            continue;
        for (size_t t = 0; t < n_tags; t++) {
            bool want = it->labels >> t & 1, g = got[idx[k]] >> t & 1;
            out[t].tp += want && g;
            out[t].fp += g && !want;
            out[t].fn += want && !g;
        }
    }
}

/* A tag that neither has nor gets any article here has no F1: it is left
 * out of the macro average, and printed as "-". */
static bool defined(const struct counts *k)
{
    return k->tp + k->fp + k->fn > 0;
}

static double macro_f1(const struct counts *k, size_t n_tags)
{
    double s = 0;
    size_t n = 0;
    for (size_t t = 0; t < n_tags; t++)
        if (defined(&k[t])) {
            s += f1_of(&k[t]);
            n++;
        }
    return n ? s / (double)n : 0;
}

/* xorshift64*: a fixed seed, so that intervals repeat exactly. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Bootstrap 95% intervals of each tag's F1 and the macro F1 (index n_tags)
 * over resamples of the subset's articles; with other, of the difference
 * other - got. lo and hi have n_tags + 1 entries. */
static int bootstrap(const struct corpus *c, const unsigned *got, const unsigned *other,
                     enum subset sub, size_t n_tags, double *lo, double *hi)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++)
        n += in_subset(&c->v[i], sub);
    size_t *pool = malloc((n ? n : 1) * sizeof(*pool)), *idx = malloc((n ? n : 1) * sizeof(*idx));
    double *dist = malloc(BOOTSTRAP_ROUNDS * (n_tags + 1) * sizeof(*dist));
    if (!pool || !idx || !dist) {
        free(pool);
        free(idx);
        free(dist);
        return -1;
    }
    n = 0;
    for (size_t i = 0; i < c->n; i++)
        if (in_subset(&c->v[i], sub))
            pool[n++] = i;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    struct counts k[NA_MAX_TAGS], k2[NA_MAX_TAGS];
    size_t kept[NA_MAX_TAGS + 1] = {0};
    for (int r = 0; r < BOOTSTRAP_ROUNDS; r++) {
        for (size_t i = 0; i < n; i++)
            idx[i] = pool[next_random(&seed) % (n ? n : 1)];
        count(c, got, idx, n, ALL, n_tags, k);
        if (other)
            count(c, other, idx, n, ALL, n_tags, k2);
        for (size_t t = 0; t <= n_tags; t++) {
            /* A resample in which the tag has no F1 says nothing of it. */
            if (t < n_tags && (!defined(&k[t]) || (other && !defined(&k2[t]))))
                continue;
            double a = t < n_tags ? f1_of(&k[t]) : macro_f1(k, n_tags);
            double b = other ? (t < n_tags ? f1_of(&k2[t]) : macro_f1(k2, n_tags)) : 0;
            dist[t * BOOTSTRAP_ROUNDS + kept[t]++] = other ? b - a : a;
        }
    }
    for (size_t t = 0; t <= n_tags; t++) {
        double *d = &dist[t * BOOTSTRAP_ROUNDS];
        size_t m = kept[t];
        qsort(d, m, sizeof(*d), cmp_double);
        lo[t] = m ? d[(size_t)(0.025 * (double)m)] : 0;
        hi[t] = m ? d[(size_t)(0.975 * (double)m) - ((size_t)(0.975 * (double)m) > 0)] : 0;
    }
    free(pool);
    free(idx);
    free(dist);
    return 0;
}

static size_t *all_indices(size_t n)
{
    size_t *idx = malloc((n ? n : 1) * sizeof(*idx));
    for (size_t i = 0; idx && i < n; i++)
        idx[i] = i;
    return idx;
}

/* The report of one set; returns the worst tag's F1 over all articles. */
static double report(const struct corpus *c, const struct set *s, size_t n_tags)
{
    size_t *idx = all_indices(c->n);
    struct counts k[NA_MAX_TAGS];
    double lo[NA_MAX_TAGS + 1], hi[NA_MAX_TAGS + 1], worst = 1;
    if (idx == NULL)
        return 0;

    printf("%s\n", s->label);
    static const char *const names[] = {"all", "short", "long-form"};
    for (int sub = ALL; sub <= LONG; sub++) {
        size_t n = 0;
        for (size_t i = 0; i < c->n; i++)
            n += in_subset(&c->v[i], (enum subset)sub);
        if (n == 0)
            continue;
        count(c, s->got, idx, c->n, (enum subset)sub, n_tags, k);
        if (bootstrap(c, s->got, NULL, (enum subset)sub, n_tags, lo, hi) < 0)
            break;
        printf("\n%s: %zu articles\n", names[sub], n);
        printf("%-10s %6s %6s %6s %9s %7s %7s  %s\n", "tag", "tp", "fp", "fn", "precision",
               "recall", "f1", "f1 95% interval");
        struct counts all = {0, 0, 0};
        double mp = 0, mr = 0;
        size_t n_def = 0;
        for (size_t t = 0; t < n_tags; t++) {
            double p = ratio(k[t].tp, k[t].tp + k[t].fp), r = ratio(k[t].tp, k[t].tp + k[t].fn);
            if (defined(&k[t]))
                printf("%-10s %6u %6u %6u %9.3f %7.3f %7.3f  [%.3f, %.3f]\n",
                       na_ruleset_tag(s->rs, t)->name, k[t].tp, k[t].fp, k[t].fn, p, r,
                       f1_of(&k[t]), lo[t], hi[t]);
            else
                printf("%-10s %6u %6u %6u %9s %7s %7s\n", na_ruleset_tag(s->rs, t)->name, 0u,
                       0u, 0u, "-", "-", "-");
            all.tp += k[t].tp;
            all.fp += k[t].fp;
            all.fn += k[t].fn;
            if (!defined(&k[t]))
                continue;
            mp += p;
            mr += r;
            n_def++;
            if (sub == ALL && f1_of(&k[t]) < worst)
                worst = f1_of(&k[t]);
        }
        if (n_def == 0)
            n_def = 1;
        double p = ratio(all.tp, all.tp + all.fp), r = ratio(all.tp, all.tp + all.fn);
        printf("%-10s %6u %6u %6u %9.3f %7.3f %7.3f\n", "micro", all.tp, all.fp, all.fn, p, r,
               f1_of(&all));
        printf("%-10s %6s %6s %6s %9.3f %7.3f %7.3f  [%.3f, %.3f]\n", "macro", "", "", "",
               mp / (double)n_def, mr / (double)n_def, macro_f1(k, n_tags), lo[n_tags],
               hi[n_tags]);
    }
    unsigned hard = 0, hard_fp = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].hard_negative) {
            hard++;
            hard_fp += s->got[i] != 0;
        }
    if (hard)
        printf("\nhard negatives: %u articles, %u with a false tag (%.1f%%)\n", hard, hard_fp,
               100.0 * hard_fp / hard);
    free(idx);
    return worst;
}

static void compare(const struct corpus *c, const struct set *a, const struct set *b,
                    size_t n_tags)
{
    size_t *idx = all_indices(c->n);
    struct counts ka[NA_MAX_TAGS], kb[NA_MAX_TAGS];
    double lo[NA_MAX_TAGS + 1], hi[NA_MAX_TAGS + 1];
    if (idx == NULL)
        return;
    count(c, a->got, idx, c->n, ALL, n_tags, ka);
    count(c, b->got, idx, c->n, ALL, n_tags, kb);
    if (bootstrap(c, a->got, b->got, ALL, n_tags, lo, hi) < 0) {
        free(idx);
        return;
    }
    printf("\ncomparison on %zu articles: A = %s, B = %s\n", c->n, a->label, b->label);
    printf("%-10s %7s %7s %8s  %s\n", "tag", "f1 A", "f1 B", "B - A", "95% interval");
    for (size_t t = 0; t <= n_tags; t++) {
        double fa = t < n_tags ? f1_of(&ka[t]) : macro_f1(ka, n_tags);
        double fb = t < n_tags ? f1_of(&kb[t]) : macro_f1(kb, n_tags);
        printf("%-10s %7.3f %7.3f %+8.3f  [%+.3f, %+.3f]\n",
               t < n_tags ? na_ruleset_tag(a->rs, t)->name : "macro", fa, fb, fb - fa, lo[t],
               hi[t]);
    }
    unsigned differ = 0;
    for (size_t i = 0; i < c->n; i++)
        differ += a->got[i] != b->got[i];
    printf("articles where A and B disagree: %u\n", differ);
    free(idx);
}

/* "DIR:MODEL", "DIR:rules", "MODEL" or "rules". */
static void parse_set(char *spec, struct set *s)
{
    char *colon = strrchr(spec, ':');
    s->label = strdup(spec);
    if (colon) {
        *colon = '\0';
        s->ro.rules = spec;
        spec = colon + 1;
    }
    if (!strcmp(spec, "rules"))
        s->ro.no_model = true;
    else
        s->ro.model = spec;
}

int cmd_eval(int argc, char **argv)
{
    enum { OPT_SPLIT = 1001, OPT_MIN_F1, OPT_COMPARE };
    static const struct option opts[] = {{"split", required_argument, NULL, OPT_SPLIT},
                                         {"min-f1", required_argument, NULL, OPT_MIN_F1},
                                         {"compare", required_argument, NULL, OPT_COMPARE},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         TOOL_RULES_LONG,
                                         {NULL, 0, NULL, 0}};
    const char *split = NULL;
    char *compare_spec = NULL;
    struct set sets[2] = {{0}};
    double min_f1 = -1;
    bool quiet = false;
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "qh" TOOL_RULES_SHORT, opts, NULL)) != -1) {
        if (tool_rules_option(c, optarg, &sets[0].ro))
            continue;
        switch (c) {
        case OPT_SPLIT:
            split = optarg;
            if (strcmp(split, "train") && strcmp(split, "dev") && strcmp(split, "test")) {
                tool_error("eval", "--split: expected train, dev or test, got '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_MIN_F1:
            min_f1 = strtod(optarg, &end);
            if (end == optarg || *end || min_f1 < 0 || min_f1 > 1) {
                tool_error("eval", "--min-f1: expected a number from 0 to 1, got '%s'",
                           optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_COMPARE:
            compare_spec = optarg;
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
    if (optind >= argc) {
        tool_error("eval", "no labelled articles given (FILE.jsonl...)");
        eval_usage(stderr);
        return EXIT_USAGE;
    }
    size_t n_sets = 1;
    if (compare_spec) {
        char *comma = strchr(compare_spec, ',');
        if (comma == NULL || comma == compare_spec || comma[1] == '\0') {
            tool_error("eval", "--compare: expected A,B, got '%s'", compare_spec);
            return EXIT_USAGE;
        }
        *comma = '\0';
        struct tool_rules_opts base = sets[0].ro;
        base.model = NULL;
        base.no_model = false;
        sets[0] = (struct set){.ro = base};
        sets[1] = (struct set){.ro = base};
        parse_set(compare_spec, &sets[0]);
        parse_set(comma + 1, &sets[1]);
        n_sets = 2;
    }
    int status = EXIT_FAIL;
    struct corpus corpus = {0};
    for (size_t i = 0; i < n_sets; i++)
        if (set_open(&sets[i]) < 0)
            goto out;
    unsigned bad = 0;
    for (int i = optind; i < argc; i++)
        bad += read_corpus(argv[i], split, sets[0].rs, sets[0].tr.limits, &corpus);
    if (bad) {
        tool_error("eval", "%u line(s) could not be evaluated", bad);
        goto out;
    }
    if (corpus.n == 0) {
        tool_error("eval", "no labelled article%s%s", split ? " in split " : "",
                   split ? split : "");
        goto out;
    }
    size_t n_tags = na_ruleset_tag_count(sets[0].rs);
    for (size_t i = 0; i < n_sets; i++) {
        if (na_ruleset_tag_count(sets[i].rs) != n_tags) {
            tool_error("eval", "--compare: the two sets define different tags");
            goto out;
        }
        if (!sets[i].label)
            sets[i].label =
                strdup(sets[i].m ? na_model_version(sets[i].m) : "rules alone");
        if (sets[i].m && compare_spec == NULL) {
            char buf[64];
            snprintf(buf, sizeof(buf), "model %s", na_model_version(sets[i].m));
            free((char *)sets[i].label);
            sets[i].label = strdup(buf);
        }
        if (set_run(&sets[i], &corpus, !quiet && n_sets == 1) < 0)
            goto out;
    }
    printf("\n%zu articles%s%s\n", corpus.n, split ? ", split " : "", split ? split : "");
    double worst = 1;
    for (size_t i = 0; i < n_sets; i++) {
        if (i)
            printf("\n");
        double w = report(&corpus, &sets[i], n_tags);
        if (w < worst)
            worst = w;
    }
    if (n_sets == 2)
        compare(&corpus, &sets[0], &sets[1], n_tags);
    status = EXIT_OK;
    if (min_f1 >= 0 && worst < min_f1) {
        tool_error("eval", "F1 %.3f is below the required %.3f", worst, min_f1);
        status = EXIT_FAIL;
    }
out:
    for (size_t i = 0; i < n_sets; i++) {
        free((char *)sets[i].label);
        set_close(&sets[i]);
    }
    corpus_free(&corpus);
    return status;
}
