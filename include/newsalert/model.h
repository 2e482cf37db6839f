/* The learned layer: one linear model per tag over the tagger's features
 * (features.h), trained with liblinear by `newsalert train`, with a Platt
 * calibration that turns its decision value into a probability. A model is
 * immutable once loaded; like a ruleset, a reload builds a new one aside.
 *
 * File format (little-endian), version 1:
 *   "NAMODEL\0"  u32 version  u32 n_tags  u32 n_features  u32 max_ngram
 *   u8 rules_digest[16]       the ruleset it was trained with (a warning only)
 *   per tag: u32 name_len, name, f64 bias, f64 platt_a, f64 platt_b,
 *            f64 threshold    (probability at which the tag fires)
 *   u32 features[n_features]  ascending feature hashes
 *   f32 weights[n_features][n_tags]
 *   u8 sha256[32]             of every byte before it
 * The model's version, carried in alerts and /metrics, is the first eight
 * bytes of that digest in hex. */
#ifndef NEWSALERT_MODEL_H
#define NEWSALERT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/error.h"
#include "newsalert/features.h"
#include "newsalert/ruleset.h"

#define NA_MODEL_FORMAT 1
/* Word n-grams up to this length (3-grams did no better on dev). */
#define NA_MODEL_NGRAM 2
/* The learned layer reads an article's first 20,000 words (headline
 * first): far past any news article, and it bounds the tagger's memory
 * whatever the input. */
#define NA_MODEL_MAX_WORDS 20000

struct na_model;

/* What the trainer hands to na_model_write. Borrowed for the call. */
struct na_model_tag {
    const char *name;
    double bias, platt_a, platt_b, threshold;
};

struct na_model_spec {
    size_t n_tags;
    struct na_model_tag tags[NA_MAX_TAGS];
    size_t n_features;
    const uint32_t *features; /* ascending */
    const float *weights;     /* n_features * n_tags, row by feature */
    unsigned char rules_digest[16];
};

/* Writes a model file atomically (a temporary file renamed over path).
 * Returns 0, or -1 with err set. */
int na_model_write(const char *path, const struct na_model_spec *spec,
                   struct na_error *err);

/* Reads and validates a model file. The model's tags must be the ruleset's,
 * in the same order (the ruleset is only read during the call). Returns a
 * model the caller owns, or NULL with "path: what is wrong" in err. */
struct na_model *na_model_load(const char *path, const struct na_ruleset *rs,
                               struct na_error *err);
/* Accepts NULL. */
void na_model_free(struct na_model *m);

/* Sixteen hex digits naming the model file's contents; borrowed. */
const char *na_model_version(const struct na_model *m);
/* False when the model was trained with other rules than rs: it still
 * works, but the rule features it learned may no longer occur. */
bool na_model_rules_match(const struct na_model *m, const struct na_ruleset *rs);
/* A digest of every tag's terms and exclusions, as models record it. */
void na_ruleset_digest(const struct na_ruleset *rs, unsigned char out[16]);

size_t na_model_feature_count(const struct na_model *m);
double na_model_threshold(const struct na_model *m, unsigned tag);

/* Decision values of every tag for one article's features, into
 * decision[0..n_tags). */
void na_model_decide(const struct na_model *m, const struct na_feature *f, size_t n,
                     double *decision);
/* The calibrated probability for a decision value of tag. */
double na_model_probability(const struct na_model *m, unsigned tag, double decision);
/* The weight of one feature for tag, 0 when the model does not know it. */
double na_model_weight(const struct na_model *m, unsigned tag, uint32_t hash);

#endif
