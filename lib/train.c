/* The trainer behind `newsalert train` (train.h). liblinear does the
 * learning: logistic regression with its trust-region Newton solver, which
 * draws no random numbers, so that training is deterministic; it also fits
 * the one-feature Platt calibration on dev. */
#include <linear.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/model.h"
#include "newsalert/train.h"

/* One article's features, merged by hash and sorted. */
struct example {
    uint32_t *hash;
    float *value;
    uint8_t *kind;
    size_t n;
    unsigned labels;
    bool dev;
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
        free(ts->ex[i].value);
        free(ts->ex[i].kind);
    }
    free(ts->ex);
    free(ts);
}

static int cmp_feature_hash(const void *a, const void *b)
{
    const struct na_feature *x = a, *y = b;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

int na_trainset_add(struct na_trainset *ts, const struct na_feature *f, size_t n,
                    unsigned labels, bool dev)
{
    struct na_feature *tmp = malloc((n ? n : 1) * sizeof(*tmp));
    struct example e = {0};

    if (tmp == NULL)
        return -1;
    memcpy(tmp, f, n * sizeof(*tmp));
    /* Equal hashes sum in any order to the same float only when summed in
     * one order: sort by hash, then by position, before merging. */
    qsort(tmp, n, sizeof(*tmp), cmp_feature_hash);
    e.hash = malloc((n ? n : 1) * sizeof(*e.hash));
    e.value = malloc((n ? n : 1) * sizeof(*e.value));
    e.kind = malloc(n ? n : 1);
    if (!e.hash || !e.value || !e.kind)
        goto oom;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double v = 0;
        while (j < n && tmp[j].hash == tmp[i].hash)
            v += tmp[j++].value;
        e.hash[e.n] = tmp[i].hash;
        e.value[e.n] = (float)v;
        e.kind[e.n] = tmp[i].kind;
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
    e.labels = labels;
    e.dev = dev;
    ts->ex[ts->n++] = e;
    return 0;
oom:
    free(tmp);
    free(e.hash);
    free(e.value);
    free(e.kind);
    return -1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void quiet_print(const char *s)
{
    (void)s;
}

/* The vocabulary: every hash that occurs in at least min_df train articles
 * (n-grams) or in any (rule and meta features), ascending. */
static uint32_t *vocabulary(const struct na_trainset *ts, unsigned min_df, size_t *n_out)
{
    size_t total = 0;
    for (size_t i = 0; i < ts->n; i++)
        if (!ts->ex[i].dev)
            total += ts->ex[i].n;
    uint64_t *all = malloc((total ? total : 1) * sizeof(*all));
    uint32_t *vocab = malloc((total ? total : 1) * sizeof(*vocab));
    size_t k = 0, nv = 0;
    if (all == NULL || vocab == NULL) {
        free(all);
        free(vocab);
        return NULL;
    }
    /* hash in the high half, "is an n-gram" in the low bit */
    for (size_t i = 0; i < ts->n; i++) {
        const struct example *e = &ts->ex[i];
        if (e->dev)
            continue;
        for (size_t j = 0; j < e->n; j++)
            all[k++] = (uint64_t)e->hash[j] << 32 |
                       (e->kind[j] == NA_FEAT_NGRAM || e->kind[j] == NA_FEAT_HEAD ||
                        e->kind[j] == NA_FEAT_LEDE);
    }
    qsort(all, k, sizeof(*all), cmp_u64);
    for (size_t i = 0; i < k;) {
        size_t j = i;
        while (j < k && all[j] >> 32 == all[i] >> 32)
            j++;
        bool ngram = all[i] & 1; /* the same hash is always the same kind */
        if (!ngram || j - i >= min_df)
            vocab[nv++] = (uint32_t)(all[i] >> 32);
        i = j;
    }
    free(all);
    *n_out = nv;
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

/* liblinear's rows: feature indices from 1, a bias column, -1 at the end. */
struct rows {
    struct feature_node **x;
    struct feature_node *nodes;
};

static int build_rows(const struct na_trainset *ts, const uint32_t *vocab, size_t nv,
                      struct rows *r)
{
    size_t total = 0;
    for (size_t i = 0; i < ts->n; i++)
        total += ts->ex[i].n + 1;
    r->x = malloc((ts->n ? ts->n : 1) * sizeof(*r->x));
    r->nodes = malloc((total ? total : 1) * sizeof(*r->nodes));
    if (r->x == NULL || r->nodes == NULL)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < ts->n; i++) {
        const struct example *e = &ts->ex[i];
        r->x[i] = &r->nodes[k];
        for (size_t j = 0; j < e->n; j++) {
            long idx = vocab_index(vocab, nv, e->hash[j]);
            if (idx >= 0)
                r->nodes[k++] = (struct feature_node){(int)idx + 1, e->value[j]};
        }
        r->nodes[k++] = (struct feature_node){-1, 0};
    }
    return 0;
}

/* A row with the bias column that liblinear expects when prob.bias >= 0:
 * liblinear reads index n+1 from the row itself, so rows are copied with it
 * appended. */
static struct feature_node **with_bias(struct feature_node **x, const size_t *idx,
                                       size_t n, int bias_index,
                                       struct feature_node **storage)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const struct feature_node *f = x[idx[i]];
        while (f->index != -1)
            f++, total++;
        total += 2;
    }
    struct feature_node **out = malloc((n ? n : 1) * sizeof(*out));
    struct feature_node *nodes = malloc((total ? total : 1) * sizeof(*nodes));
    if (out == NULL || nodes == NULL) {
        free(out);
        free(nodes);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = &nodes[k];
        for (const struct feature_node *f = x[idx[i]]; f->index != -1; f++)
            nodes[k++] = *f;
        nodes[k++] = (struct feature_node){bias_index, 1.0};
        nodes[k++] = (struct feature_node){-1, 0};
    }
    *storage = nodes;
    return out;
}

static double sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

static double f1_of(unsigned tp, unsigned fp, unsigned fn)
{
    return tp ? 2.0 * tp / (2.0 * tp + fp + fn) : 0;
}

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

/* The threshold that gives the best F1 on dev among 0.20, 0.25 ... 0.80;
 * of equals, the one nearest 0.5. */
static double best_threshold(const double *p, const double *y, size_t n, unsigned *tp_out,
                             unsigned *fp_out, unsigned *fn_out)
{
    double best_t = 0.5, best_f = -1;
    for (int k = 4; k <= 16; k++) {
        double th = k * 0.05;
        unsigned tp = 0, fp = 0, fn = 0;
        for (size_t i = 0; i < n; i++) {
            bool got = p[i] >= th, want = y[i] > 0;
            tp += got && want;
            fp += got && !want;
            fn += !got && want;
        }
        double f = f1_of(tp, fp, fn);
        if (f > best_f + 1e-12 ||
            (fabs(f - best_f) <= 1e-12 && fabs(th - 0.5) < fabs(best_t - 0.5))) {
            best_f = f;
            best_t = th;
            *tp_out = tp;
            *fp_out = fp;
            *fn_out = fn;
        }
    }
    return best_t;
}

static double dot(const double *w, int bias_index, const struct feature_node *x)
{
    double d = w[bias_index - 1];
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

int na_model_train(const struct na_trainset *ts, const struct na_ruleset *rs,
                   const struct na_train_options *opt, const char *path,
                   struct na_train_report *report, struct na_error *err)
{
    static const double grid[] = {0.0625, 0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64};
    size_t n_tags = na_ruleset_tag_count(rs), nv = 0, n_train = 0, n_dev = 0;
    struct rows rows = {0};
    size_t *train_idx = NULL, *dev_idx = NULL;
    struct feature_node **tx = NULL, *tx_nodes = NULL;
    double *ty = NULL, *dy = NULL, *dec = NULL, *prob = NULL, *best_w = NULL, *w = NULL;
    float *weights = NULL;
    uint32_t *vocab = NULL;
    int rc = -1;
    struct na_model_spec spec = {.n_tags = n_tags};

    set_print_string_function(quiet_print);
    memset(report, 0, sizeof(*report));
    vocab = vocabulary(ts, opt->min_df ? opt->min_df : 1, &nv);
    train_idx = malloc((ts->n ? ts->n : 1) * sizeof(*train_idx));
    dev_idx = malloc((ts->n ? ts->n : 1) * sizeof(*dev_idx));
    if (vocab == NULL || !train_idx || !dev_idx || build_rows(ts, vocab, nv, &rows) < 0)
        goto oom;
    for (size_t i = 0; i < ts->n; i++) {
        if (ts->ex[i].dev)
            dev_idx[n_dev++] = i;
        else
            train_idx[n_train++] = i;
    }
    report->n_train = n_train;
    report->n_dev = n_dev;
    report->n_features = nv;
    if (n_train == 0 || n_dev == 0) {
        na_error_set(err, "training needs train and dev articles (got %zu and %zu)", n_train,
                     n_dev);
        goto out;
    }
    int bias_index = (int)nv + 1;
    tx = with_bias(rows.x, train_idx, n_train, bias_index, &tx_nodes);
    ty = malloc(n_train * sizeof(*ty));
    dy = malloc(n_dev * sizeof(*dy));
    dec = malloc(n_dev * sizeof(*dec));
    prob = malloc(n_dev * sizeof(*prob));
    best_w = malloc(((size_t)nv + 1) * sizeof(*best_w));
    w = malloc(((size_t)nv + 1) * sizeof(*w));
    weights = calloc((nv ? nv : 1) * n_tags, sizeof(*weights));
    if (!tx || !ty || !dy || !dec || !prob || !best_w || !w || !weights)
        goto oom;
    say(opt, "train: %zu train and %zu dev articles, %zu features\n", n_train, n_dev, nv);

    for (size_t t = 0; t < n_tags; t++) {
        const char *name = na_ruleset_tag(rs, t)->name;
        unsigned pos = 0, dpos = 0;
        for (size_t i = 0; i < n_train; i++) {
            ty[i] = ts->ex[train_idx[i]].labels >> t & 1 ? 1 : -1;
            pos += ty[i] > 0;
        }
        for (size_t i = 0; i < n_dev; i++) {
            dy[i] = ts->ex[dev_idx[i]].labels >> t & 1 ? 1 : -1;
            dpos += dy[i] > 0;
        }
        if (pos == 0 || pos == n_train || dpos == 0 || dpos == n_dev) {
            na_error_set(err,
                         "tag '%s' needs labelled and unlabelled articles in both train "
                         "and dev",
                         name);
            goto out;
        }
        struct problem p = {.l = (int)n_train, .n = bias_index, .y = ty, .x = tx, .bias = -1};
        double best_score = -1, best_loss = 0;
        struct na_train_tag_report best = {0};
        double best_a = 1, best_b = 0;
        for (size_t g = 0; g < sizeof(grid) / sizeof(grid[0]); g++) {
            struct parameter param = {.solver_type = L2R_LR, .eps = 0.001, .C = grid[g]};
            const char *bad = check_parameter(&p, &param);
            if (bad) {
                na_error_set(err, "liblinear: %s", bad);
                goto out;
            }
            struct model *m = train(&p, &param);
            if (m == NULL)
                goto oom;
            double sign = m->label[0] == 1 ? 1 : -1;
            for (int k = 0; k < bias_index; k++)
                w[k] = sign * m->w[k];
            free_and_destroy_model(&m);
            for (size_t i = 0; i < n_dev; i++) {
                const struct feature_node *x = rows.x[dev_idx[i]];
                dec[i] = dot(w, bias_index, x);
            }
            double a, b;
            if (platt(dec, dy, n_dev, &a, &b) < 0)
                goto oom;
            double loss = 0;
            for (size_t i = 0; i < n_dev; i++) {
                prob[i] = sigmoid(a * dec[i] + b);
                double q = dy[i] > 0 ? prob[i] : 1 - prob[i];
                loss -= log(q > 1e-12 ? q : 1e-12);
            }
            struct na_train_tag_report r = {.c = grid[g]};
            r.threshold = best_threshold(prob, dy, n_dev, &r.tp, &r.fp, &r.fn);
            double score = f1_of(r.tp, r.fp, r.fn);
            say(opt, "train: %-10s C %-5g dev F1 %.3f at %.2f, log loss %.1f\n", name,
                grid[g], score, r.threshold, loss);
            if (score > best_score + 1e-9 ||
                (fabs(score - best_score) <= 1e-9 && loss < best_loss)) {
                best_score = score;
                best_loss = loss;
                best = r;
                best_a = a;
                best_b = b;
                memcpy(best_w, w, (size_t)bias_index * sizeof(*w));
            }
        }
        report->tags[t] = best;
        spec.tags[t] = (struct na_model_tag){name, best_w[bias_index - 1], best_a, best_b,
                                             best.threshold};
        for (size_t k = 0; k < nv; k++)
            weights[k * n_tags + t] = (float)best_w[k];
    }
    spec.n_features = nv;
    spec.features = vocab;
    spec.weights = weights;
    na_ruleset_digest(rs, spec.rules_digest);
    rc = na_model_write(path, &spec, err);
    goto out;
oom:
    na_error_set(err, "out of memory");
out:
    free(rows.x);
    free(rows.nodes);
    free(train_idx);
    free(dev_idx);
    free(tx);
    free(tx_nodes);
    free(ty);
    free(dy);
    free(dec);
    free(prob);
    free(best_w);
    free(w);
    free(weights);
    free(vocab);
    return rc;
}
