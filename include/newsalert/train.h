/* Training the learned layer: examples go in as the tagger's features with
 * their labels, and liblinear's L2-regularised logistic regression learns one
 * model per tag on the train examples. The dev examples choose the
 * regularisation, fit the Platt calibration and set each tag's threshold.
 * The same examples in the same order give a byte-identical model. */
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

/* Adds one article: its features (copied), a bit per tag it is labelled
 * with, and whether it belongs to dev rather than train. Returns 0, or -1
 * when out of memory. */
int na_trainset_add(struct na_trainset *ts, const struct na_feature *f, size_t n,
                    unsigned labels, bool dev);

struct na_train_options {
    unsigned min_df; /* n-grams in fewer train articles are left out (>= 1) */
    bool quiet;      /* no progress on stderr */
};

/* How a tag did on dev with the chosen settings. */
struct na_train_tag_report {
    double c, threshold;
    unsigned tp, fp, fn;
};

struct na_train_report {
    size_t n_train, n_dev, n_features;
    struct na_train_tag_report tags[NA_MAX_TAGS];
};

/* Trains a model for rs's tags and writes it to path. Needs train and dev
 * examples with both labels of every tag. Returns 0, or -1 with err set. */
int na_model_train(const struct na_trainset *ts, const struct na_ruleset *rs,
                   const struct na_train_options *opt, const char *path,
                   struct na_train_report *report, struct na_error *err);

#endif
