/* The learned layer: one linear model per tag over the article's word
 * n-grams (features.h), trained with liblinear by `newsalert train`, with a
 * Platt calibration that turns its decision value into a probability. A
 * model is immutable once loaded; like a ruleset, a reload builds a new one
 * aside.
 *
 * An article is read as TF-IDF: each n-gram the model knows is worth
 * (1 + ln count) * idf, and those values are scaled to unit length. N-grams
 * the model does not know count for nothing, not even in the length.
 *
 * File format (little-endian), version 2:
 *   "NAMODEL\0"  u32 version  u32 n_tags  u32 n_features  u32 max_ngram
 *   u8 rules_digest[16]       the ruleset it was trained with (a warning only)
 *   per tag: u32 name_len, name, f64 bias, f64 platt_a, f64 platt_b,
 *            f64 threshold    (probability at which the tag fires)
 *   u32 features[n_features]  ascending feature hashes
 *   f32 idf[n_features]       each feature's inverse document frequency
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

#define NA_MODEL_FORMAT 2
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
    const float *idf;         /* n_features, each > 0 */
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
/* False when the model was trained with other rules than rs. The model reads
 * words, not rule hits, so it still works; but it was trained on corpus
 * labels checked against those rules. */
bool na_model_rules_match(const struct na_model *m, const struct na_ruleset *rs);
/* A digest of every tag's terms and exclusions, as models record it. */
void na_ruleset_digest(const struct na_ruleset *rs, unsigned char out[16]);

size_t na_model_feature_count(const struct na_model *m);
double na_model_threshold(const struct na_model *m, unsigned tag);

/* What one n-gram found count times in an article is worth before the
 * article is scaled to unit length: (1 + ln count) * idf. Training and
 * na_model_decide both weigh with this, so that what is learned is what is
 * scored. */
double na_model_tfidf(double count, double idf);

/* Where na_model_decide counts an article's n-grams and keeps the values it
 * gave them; one per tagger, zero-initialised, reused from article to
 * article and from model to model. */
struct na_model_scratch {
    struct na_model_slot *slot; /* open addressing by model row */
    uint32_t *order;            /* the slots in use, in first-seen order */
    size_t cap, used;
    uint32_t mask;
    uint32_t gen; /* the article's number, stamped on the slots it uses */
    double scale; /* what scales the article to unit length */
};
void na_model_scratch_release(struct na_model_scratch *s);

/* Decision values of every tag for the hashes of one article's features
 * (na_features_hashes: every occurrence, in order), into
 * decision[0..n_tags). Returns 0, or -1 when out of memory. */
int na_model_decide(const struct na_model *m, const uint32_t *hash, size_t n,
                    struct na_model_scratch *s, double *decision);
/* After na_model_decide on the same scratch: the value it gave one
 * occurrence of the feature with this hash (its TF-IDF value divided by its
 * count), 0 when the model does not know the feature. An occurrence adds
 * weight * value to a decision. */
double na_model_value(const struct na_model *m, const struct na_model_scratch *s,
                      uint32_t hash);
/* The calibrated probability for a decision value of tag. */
double na_model_probability(const struct na_model *m, unsigned tag, double decision);
/* The weight of one feature for tag, 0 when the model does not know it. */
double na_model_weight(const struct na_model *m, unsigned tag, uint32_t hash);

#endif
