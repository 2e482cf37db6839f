/* Training the learned layer: examples go in as the tagger's features with
 * their labels, and liblinear's L2-regularised logistic regression learns one
 * model per tag. Cross-validation that holds out one group (a corpus file) at
 * a time chooses the regularisation, fits the Platt calibration on the
 * held-out decisions and sets each tag's threshold; the model is the mean of
 * the folds' models, over every example, train and dev. The same examples in
 * the same order give a byte-identical model. */
#ifndef NEWSALERT_TRAIN_H
#define NEWSALERT_TRAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "newsalert/error.h"
#include "newsalert/features.h"
#include "newsalert/ruleset.h"

struct na_trainset;

struct na_trainset *na_trainset_new(void);
/* Accepts NULL. */
void na_trainset_free(struct na_trainset *ts);

/* One labelled article. */
struct na_train_example {
    const struct na_feature *features; /* copied */
    size_t n_features;
    unsigned labels; /* a bit per tag it is labelled with */
    bool dev;        /* dev rather than train, for the report */
    bool hard;       /* a hard negative, for the report */
    /* The corpus file it came from: with three groups or more, each is one
     * fold of the cross-validation, else there are five folds by position. */
    unsigned group;
    /* How many articles it counts for when a model is fitted (0 is read as
     * 1). Calibration, thresholds and the reported figures count every
     * article once. */
    unsigned weight;
};

/* Adds one article. Returns 0, or -1 when out of memory. */
int na_trainset_add(struct na_trainset *ts, const struct na_train_example *ex);

struct na_train_options {
    unsigned min_df; /* n-grams in fewer articles are left out (>= 1) */
    bool quiet;      /* no progress on stderr */
};

/* How a tag did in cross-validation with the chosen settings: every
 * article judged by the model that did not read its fold; and the same for
 * the dev articles alone. */
struct na_train_tag_report {
    double c, threshold;
    unsigned tp, fp, fn;
    unsigned dev_tp, dev_fp, dev_fn;
};

struct na_train_report {
    size_t n_train, n_dev, n_features, n_folds;
    /* Hard negatives, and those the cross-validated models gave any tag. */
    unsigned n_hard, hard_fp;
    struct na_train_tag_report tags[NA_MAX_TAGS];
};

/* Trains a model for rs's tags and writes it to path. Needs ten examples at
 * least, with both labels of every tag. Returns 0, or -1 with err set. */
int na_model_train(const struct na_trainset *ts, const struct na_ruleset *rs,
                   const struct na_train_options *opt, const char *path,
                   struct na_train_report *report, struct na_error *err);

#endif
