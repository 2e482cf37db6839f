/* The trainer behind `newsalert train` (train.h). liblinear does the
 * learning: logistic regression with its trust-region Newton solver, which
 * draws no random numbers, so that training is deterministic; it also fits
 * the one-feature Platt calibration. The regularisation, the calibration
 * and each tag's threshold are chosen by cross-validation that holds out
 * one corpus file at a time, so that they are judged on a writer the model
 * has not read. The model is the mean of the folds' models: the calibration
 * was fitted on their decisions for articles they had not read, and that is
 * what the mean gives for a new article. (A model fitted once on every
 * article would be surer of itself than the calibration expects.) */
#include <limits.h>
#include <linear.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/model.h"
#include "newsalert/train.h"

/* One article's n-grams, merged by hash and sorted, with their counts. */
struct example {
    uint32_t *hash;
    float *count;
    size_t n;
    unsigned labels, group;
    unsigned weight; /* how many times it counts in the fit */
    bool dev, hard;
};

struct na_trainset {
    struct example *ex;
    size_t n, cap;
};

struct na_trainset *na_trainset_new(void)
{
    return calloc(1, sizeof(struct na_trainset));
}

void na_trainset_free(struct na_trainset *ts)
{
    if (ts == NULL)
        return;
    for (size_t i = 0; i < ts->n; i++) {
        free(ts->ex[i].hash);
        free(ts->ex[i].count);
    }
    free(ts->ex);
    free(ts);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int na_trainset_add(struct na_trainset *ts, const struct na_train_example *ex)
{
    const struct na_feature *f = ex->features;
    size_t n = ex->n_features;
    uint32_t *tmp = malloc((n ? n : 1) * sizeof(*tmp));
    struct example e = {0};

    if (tmp == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        tmp[i] = f[i].hash;
    qsort(tmp, n, sizeof(*tmp), cmp_u32);
    e.hash = malloc((n ? n : 1) * sizeof(*e.hash));
    e.count = malloc((n ? n : 1) * sizeof(*e.count));
    if (!e.hash || !e.count)
        goto oom;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && tmp[j] == tmp[i])
            j++;
        e.hash[e.n] = tmp[i];
        e.count[e.n] = (float)(j - i);
        e.n++;
        i = j;
    }
    free(tmp);
    tmp = NULL;
    if (ts->n == ts->cap) {
        size_t ncap = ts->cap ? ts->cap * 2 : 256;
        struct example *p = realloc(ts->ex, ncap * sizeof(*p));
        if (p == NULL)
            goto oom;
        ts->ex = p;
        ts->cap = ncap;
    }
    e.labels = ex->labels;
    e.weight = ex->weight ? ex->weight : 1;
    e.dev = ex->dev;
    e.hard = ex->hard;
    e.group = ex->group;
    ts->ex[ts->n++] = e;
    return 0;
oom:
    free(tmp);
    free(e.hash);
    free(e.count);
    return -1;
}

static void quiet_print(const char *s)
{
    (void)s;
}

/* The vocabulary: every n-gram found in at least min_df articles, ascending,
 * with its inverse document frequency ln((1 + N) / (1 + df)) + 1. The
 * frequencies are counted over every article; they use no labels. */
static uint32_t *vocabulary(const struct na_trainset *ts, unsigned min_df, size_t *n_out,
                            float **idf_out)
{
    size_t total = 0;
    for (size_t i = 0; i < ts->n; i++)
        total += ts->ex[i].n;
    uint32_t *all = malloc((total ? total : 1) * sizeof(*all));
    uint32_t *vocab = malloc((total ? total : 1) * sizeof(*vocab));
    float *idf = malloc((total ? total : 1) * sizeof(*idf));
    size_t k = 0, nv = 0;
    if (all == NULL || vocab == NULL || idf == NULL) {
        free(all);
        free(vocab);
        free(idf);
        return NULL;
    }
    for (size_t i = 0; i < ts->n; i++)
        for (size_t j = 0; j < ts->ex[i].n; j++)
            all[k++] = ts->ex[i].hash[j];
    qsort(all, k, sizeof(*all), cmp_u32);
    for (size_t i = 0; i < k;) {
        size_t j = i;
        while (j < k && all[j] == all[i])
            j++;
        if (j - i >= min_df) {
            idf[nv] = (float)(log((1.0 + (double)ts->n) / (1.0 + (double)(j - i))) + 1.0);
            vocab[nv++] = all[i];
        }
        i = j;
    }
    free(all);
    *n_out = nv;
    *idf_out = idf;
    return vocab;
}

static long vocab_index(const uint32_t *vocab, size_t nv, uint32_t h)
{
    size_t lo = 0, hi = nv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (vocab[mid] < h)
            lo = mid + 1;
        else if (vocab[mid] > h)
            hi = mid;
        else
            return (long)mid;
    }
    return -1;
}

/* liblinear's rows: feature indices from 1, each article's TF-IDF values
 * at unit length as na_model_decide computes them, then a bias column
 * (index nv + 1, value 1) and -1 at the end. The bias is a column of every
 * row so that a fold's problem is only a choice of rows. */
struct rows {
    struct feature_node **x;
    struct feature_node *nodes;
};

static int build_rows(const struct na_trainset *ts, const uint32_t *vocab,
                      const float *idf, size_t nv, struct rows *r)
{
    size_t total = 0;
    for (size_t i = 0; i < ts->n; i++)
        total += ts->ex[i].n + 2;
    r->x = malloc((ts->n ? ts->n : 1) * sizeof(*r->x));
    r->nodes = malloc((total ? total : 1) * sizeof(*r->nodes));
    if (r->x == NULL || r->nodes == NULL)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < ts->n; i++) {
        const struct example *e = &ts->ex[i];
        size_t first = k;
        double norm2 = 0;
        r->x[i] = &r->nodes[k];
        for (size_t j = 0; j < e->n; j++) {
            long idx = vocab_index(vocab, nv, e->hash[j]);
            if (idx < 0)
                continue;
            double v = na_model_tfidf(e->count[j], idf[idx]);
            norm2 += v * v;
            r->nodes[k++] = (struct feature_node){(int)idx + 1, v};
        }
        double scale = norm2 > 0 ? 1.0 / sqrt(norm2) : 0;
        for (size_t j = first; j < k; j++)
            r->nodes[j].value *= scale;
        r->nodes[k++] = (struct feature_node){(int)nv + 1, 1.0};
        r->nodes[k++] = (struct feature_node){-1, 0};
    }
    return 0;
}

static double sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

static double f1_of(double tp, double fp, double fn)
{
    return tp > 0 ? 2.0 * tp / (2.0 * tp + fp + fn) : 0;
}

/* Platt scaling: a one-feature logistic regression of the labels on the
 * decision values, by liblinear with a light penalty. */
/* Platt scaling: a one-feature logistic regression of the labels on the
 * decision values, by liblinear with a light penalty. */
static int platt(const double *dec, const double *y, size_t n, double *a, double *b)
{
    struct feature_node *nodes = malloc((n ? n : 1) * 3 * sizeof(*nodes));
    struct feature_node **x = malloc((n ? n : 1) * sizeof(*x));
    double *yy = malloc((n ? n : 1) * sizeof(*yy));
    if (!nodes || !x || !yy) {
        free(nodes);
        free(x);
        free(yy);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        x[i] = &nodes[3 * i];
        nodes[3 * i] = (struct feature_node){1, dec[i]};
        nodes[3 * i + 1] = (struct feature_node){2, 1.0};
        nodes[3 * i + 2] = (struct feature_node){-1, 0};
        yy[i] = y[i];
    }
    struct problem prob = {.l = (int)n, .n = 2, .y = yy, .x = x, .bias = -1};
    struct parameter param = {.solver_type = L2R_LR, .eps = 1e-4, .C = 100.0};
    struct model *m = train(&prob, &param);
    int rc = -1;
    if (m) {
        double sign = m->label[0] == 1 ? 1 : -1;
        *a = sign * m->w[0];
        *b = sign * m->w[1];
        free_and_destroy_model(&m);
        rc = 0;
    }
    free(nodes);
    free(x);
    free(yy);
    return rc;
}

/* The threshold among 0.20, 0.25 ... 0.80 that gives the best F1 with each
 * article counted by its weight, so that a hard negative let through costs
 * what it costs in the fit; of equals, the one nearest 0.5. The weighted F1
 * goes to *score, the plain counts to the rest. */
static double best_threshold(const struct na_trainset *ts, const double *p, const double *y,
                             size_t n, double *score, unsigned *tp_out, unsigned *fp_out,
                             unsigned *fn_out)
{
    double best_t = 0.5, best_f = -1;
    for (int k = 4; k <= 16; k++) {
        double th = k * 0.05, wtp = 0, wfp = 0, wfn = 0;
        unsigned tp = 0, fp = 0, fn = 0;
        for (size_t i = 0; i < n; i++) {
            bool got = p[i] >= th, want = y[i] > 0;
            double w = ts->ex[i].weight;
            tp += got && want;
            fp += got && !want;
            fn += !got && want;
            wtp += got && want ? w : 0;
            wfp += got && !want ? w : 0;
            wfn += !got && want ? w : 0;
        }
        double f = f1_of(wtp, wfp, wfn);
        if (f > best_f + 1e-12 ||
            (fabs(f - best_f) <= 1e-12 && fabs(th - 0.5) < fabs(best_t - 0.5))) {
            best_f = f;
            best_t = th;
            *tp_out = tp;
            *fp_out = fp;
            *fn_out = fn;
        }
    }
    *score = best_f;
    return best_t;
}

static double dot(const double *w, const struct feature_node *x)
{
    double d = 0;
    for (; x->index != -1; x++)
        d += w[x->index - 1] * x->value;
    return d;
}

static void say(const struct na_train_options *opt, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const struct na_train_options *opt, const char *fmt, ...)
{
    if (opt->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* The folds: one per corpus file when there are three files or more, else
 * five by position. fold[i] is example i's. */
static size_t make_folds(const struct na_trainset *ts, unsigned *fold)
{
    unsigned max_group = 0;
    for (size_t i = 0; i < ts->n; i++)
        if (ts->ex[i].group > max_group)
            max_group = ts->ex[i].group;
    bool *seen = calloc((size_t)max_group + 1, sizeof(*seen));
    unsigned *renum = calloc((size_t)max_group + 1, sizeof(*renum));
    size_t n_groups = 0;
    if (seen == NULL || renum == NULL) {
        free(seen);
        free(renum);
        return 0;
    }
    for (size_t i = 0; i < ts->n; i++)
        if (!seen[ts->ex[i].group]) {
            seen[ts->ex[i].group] = true;
            renum[ts->ex[i].group] = (unsigned)n_groups++;
        }
    for (size_t i = 0; i < ts->n; i++)
        fold[i] = n_groups >= 3 ? renum[ts->ex[i].group] : (unsigned)(i % 5);
    free(seen);
    free(renum);
    return n_groups >= 3 ? n_groups : 5;
}

/* Trains on the rows where use[i], into w (the weights, bias last, signed
 * so that a positive decision means the tag). liblinear has no weight per
 * example, so an example of weight k is given to it k times: the same loss.
 * x and yy hold the sum of the weights. */
static int fit(const struct na_trainset *ts, const struct rows *rows, const double *y,
               const bool *use, size_t n, int n_cols, double c, struct feature_node **x,
               double *yy, double *w, struct na_error *err)
{
    int l = 0;
    for (size_t i = 0; i < n; i++)
        for (unsigned k = 0; use[i] && k < ts->ex[i].weight; k++) {
            x[l] = rows->x[i];
            yy[l++] = y[i];
        }
    struct problem p = {.l = l, .n = n_cols, .y = yy, .x = x, .bias = -1};
    struct parameter param = {.solver_type = L2R_LR, .eps = 0.001, .C = c};
    const char *bad = check_parameter(&p, &param);
    if (bad)
        return na_error_set(err, "liblinear: %s", bad);
    /* A fold with one class only gives liblinear nothing to learn. */
    bool pos = false, neg = false;
    for (int i = 0; i < l; i++) {
        pos |= yy[i] > 0;
        neg |= yy[i] < 0;
    }
    if (!pos || !neg) {
        memset(w, 0, (size_t)n_cols * sizeof(*w));
        w[n_cols - 1] = pos ? 1 : -1;
        return 0;
    }
    struct model *m = train(&p, &param);
    if (m == NULL)
        return na_error_set(err, "out of memory");
    double sign = m->label[0] == 1 ? 1 : -1;
    for (int k = 0; k < n_cols; k++)
        w[k] = sign * m->w[k];
    free_and_destroy_model(&m);
    return 0;
}

int na_model_train(const struct na_trainset *ts, const struct na_ruleset *rs,
                   const struct na_train_options *opt, const char *path,
                   struct na_train_report *report, struct na_error *err)
{
    static const double grid[] = {4, 16, 64, 256, 1024};
    size_t n_tags = na_ruleset_tag_count(rs), nv = 0, n = ts->n;
    struct rows rows = {0};
    struct feature_node **x = NULL;
    double *y = NULL, *yy = NULL, *dec = NULL, *best_dec = NULL, *prob = NULL, *w = NULL;
    double *wsum = NULL, *best_wsum = NULL;
    unsigned *fold = NULL, *fired = NULL;
    bool *use = NULL;
    float *weights = NULL, *idf = NULL;
    uint32_t *vocab = NULL;
    int rc = -1;
    struct na_model_spec spec = {.n_tags = n_tags};

    set_print_string_function(quiet_print);
    memset(report, 0, sizeof(*report));
    for (size_t i = 0; i < n; i++)
        (*(ts->ex[i].dev ? &report->n_dev : &report->n_train))++;
    vocab = vocabulary(ts, opt->min_df ? opt->min_df : 1, &nv, &idf);
    if (vocab == NULL || build_rows(ts, vocab, idf, nv, &rows) < 0)
        goto oom;
    report->n_features = nv;
    if (n < 10) {
        na_error_set(err, "training needs at least 10 articles (got %zu)", n);
        goto out;
    }
    int n_cols = (int)nv + 1;
    size_t n_rows = 0;
    for (size_t i = 0; i < n; i++)
        n_rows += ts->ex[i].weight;
    if (n_rows > INT_MAX) {
        na_error_set(err, "too many articles, counted by weight (%zu)", n_rows);
        goto out;
    }
    x = malloc(n_rows * sizeof(*x));
    y = malloc(n * sizeof(*y));
    yy = malloc(n_rows * sizeof(*yy));
    dec = malloc(n * sizeof(*dec));
    best_dec = malloc(n * sizeof(*best_dec));
    prob = malloc(n * sizeof(*prob));
    fold = malloc(n * sizeof(*fold));
    fired = calloc(n, sizeof(*fired));
    use = malloc(n * sizeof(*use));
    w = malloc((size_t)n_cols * sizeof(*w));
    wsum = malloc((size_t)n_cols * sizeof(*wsum));
    best_wsum = malloc((size_t)n_cols * sizeof(*best_wsum));
    weights = calloc((nv ? nv : 1) * n_tags, sizeof(*weights));
    if (!x || !y || !yy || !dec || !best_dec || !prob || !fold || !fired || !use || !w || !wsum ||
        !best_wsum || !weights)
        goto oom;
    size_t n_folds = make_folds(ts, fold);
    if (n_folds == 0)
        goto oom;
    report->n_folds = n_folds;
    say(opt, "train: %zu articles (%zu train, %zu dev), %zu features, %zu folds\n", n,
        report->n_train, report->n_dev, nv, n_folds);

    for (size_t t = 0; t < n_tags; t++) {
        const char *name = na_ruleset_tag(rs, t)->name;
        unsigned pos = 0;
        for (size_t i = 0; i < n; i++) {
            y[i] = ts->ex[i].labels >> t & 1 ? 1 : -1;
            pos += y[i] > 0;
        }
        if (pos == 0 || pos == n) {
            na_error_set(err, "tag '%s' needs labelled and unlabelled articles", name);
            goto out;
        }
        double best_score = -1, best_loss = 0, best_a = 1, best_b = 0;
        struct na_train_tag_report best = {0};
        for (size_t g = 0; g < sizeof(grid) / sizeof(grid[0]); g++) {
            /* Each article's decision by the model that did not read its
             * fold. */
            memset(wsum, 0, (size_t)n_cols * sizeof(*wsum));
            size_t fitted = 0;
            for (size_t k = 0; k < n_folds; k++) {
                bool any = false;
                for (size_t i = 0; i < n; i++)
                    any |= !(use[i] = fold[i] != k);
                if (!any)
                    continue;
                if (fit(ts, &rows, y, use, n, n_cols, grid[g], x, yy, w, err) < 0)
                    goto out;
                for (size_t i = 0; i < n; i++)
                    if (!use[i])
                        dec[i] = dot(w, rows.x[i]);
                for (int c = 0; c < n_cols; c++)
                    wsum[c] += w[c];
                fitted++;
            }
            for (int c = 0; c < n_cols; c++)
                wsum[c] /= (double)fitted;
            double a, b;
            if (platt(dec, y, n, &a, &b) < 0)
                goto oom;
            double loss = 0;
            for (size_t i = 0; i < n; i++) {
                prob[i] = sigmoid(a * dec[i] + b);
                double q = y[i] > 0 ? prob[i] : 1 - prob[i];
                loss -= log(q > 1e-12 ? q : 1e-12);
            }
            struct na_train_tag_report r = {.c = grid[g]};
            double score;
            r.threshold = best_threshold(ts, prob, y, n, &score, &r.tp, &r.fp, &r.fn);
            say(opt,
                "train: %-10s C %-4g cross-validated F1 %.3f at %.2f (weighted %.3f), "
                "log loss %.1f\n",
                name, grid[g], f1_of(r.tp, r.fp, r.fn), r.threshold, score, loss);
            if (score > best_score + 1e-9 ||
                (fabs(score - best_score) <= 1e-9 && loss < best_loss)) {
                best_score = score;
                best_loss = loss;
                best = r;
                best_a = a;
                best_b = b;
                memcpy(best_dec, dec, n * sizeof(*dec));
                memcpy(best_wsum, wsum, (size_t)n_cols * sizeof(*wsum));
            }
        }
        for (size_t i = 0; i < n; i++) {
            bool got = sigmoid(best_a * best_dec[i] + best_b) >= best.threshold;
            fired[i] |= (unsigned)got << t;
            if (!ts->ex[i].dev)
                continue;
            bool want = y[i] > 0;
            best.dev_tp += got && want;
            best.dev_fp += got && !want;
            best.dev_fn += !got && want;
        }
        report->tags[t] = best;
        spec.tags[t] = (struct na_model_tag){name, best_wsum[n_cols - 1], best_a, best_b,
                                             best.threshold};
        for (size_t k = 0; k < nv; k++)
            weights[k * n_tags + t] = (float)best_wsum[k];
    }
    for (size_t i = 0; i < n; i++) {
        report->n_hard += ts->ex[i].hard;
        report->hard_fp += ts->ex[i].hard && fired[i] != 0;
    }
    spec.n_features = nv;
    spec.features = vocab;
    spec.idf = idf;
    spec.weights = weights;
    na_ruleset_digest(rs, spec.rules_digest);
    rc = na_model_write(path, &spec, err);
    goto out;
oom:
    na_error_set(err, "out of memory");
out:
    free(rows.x);
    free(rows.nodes);
    free(x);
    free(y);
    free(yy);
    free(dec);
    free(best_dec);
    free(prob);
    free(fold);
    free(fired);
    free(use);
    free(w);
    free(wsum);
    free(best_wsum);
    free(weights);
    free(idf);
    free(vocab);
    return rc;
}
