/* The tagger: one Vectorscan pass over an article's headline and body, then
 * exclusions, context checks, scoring, evidence and actors. A tagger owns
 * its scratch space and result buffers, so tagging allocates nothing in the
 * steady state; it is not thread-safe (one per thread). */
#ifndef NEWSALERT_TAGGER_H
#define NEWSALERT_TAGGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/features.h"
#include "newsalert/ruleset.h"

struct na_model;

enum na_field { NA_FIELD_HEADLINE = 1, NA_FIELD_BODY = 2 };
enum na_priority { NA_PRIORITY_LOW = 1, NA_PRIORITY_NORMAL = 2, NA_PRIORITY_HIGH = 3 };

/* What became of one term match; --explain prints these. */
enum na_match_fate {
    NA_FATE_COUNTED,    /* added weight to the score */
    NA_FATE_VETOED,     /* overlaps an exclusion of the same tag */
    NA_FATE_NO_CONTEXT, /* needed an actor that was not there */
    NA_FATE_CONTAINED,  /* inside a longer match of the same tag */
    NA_FATE_REPEAT,     /* the term already counted its maximum times */
};

struct na_match {
    unsigned pattern; /* Vectorscan id: na_ruleset_pattern() */
    unsigned tag;
    bool exclusion; /* an exclusion match rather than a term */
    enum na_field field;
    uint32_t start, end;
    enum na_match_fate fate;
    double contribution; /* to the tag's score, when counted */
    unsigned veto;       /* the exclusion pattern, when vetoed */
};

struct na_evidence {
    enum na_field field;
    uint32_t start, end;           /* the sentence */
    uint32_t term_start, term_end; /* its strongest match */
    unsigned term_pattern;         /* NA_EVIDENCE_MODEL: the model's n-gram */
    double weight;
};

#define NA_EVIDENCE_MODEL ((unsigned)-1)

struct na_tag_result {
    unsigned tag;
    double score; /* the rules' */
    /* With a model: its calibrated probability, and the tag fires when that
     * reaches the model's threshold for the tag. Without one: 1 -
     * 0.5^(score/threshold), firing at the rules' threshold. */
    double confidence;
    double decision; /* the model's decision value (0 without a model) */
    enum na_priority priority;
    bool fired;
    struct na_evidence *evidence; /* strongest first */
    size_t n_evidence;
};

struct na_actor_hit {
    unsigned actor;
    unsigned mentions;
};

struct na_result {
    struct na_tag_result tags[NA_MAX_TAGS]; /* indexed by tag */
    size_t n_tags;
    size_t n_fired;
    struct na_actor_hit *actors; /* most mentioned first */
    size_t n_actors;
    struct na_match *matches; /* every term/exclusion match, for --explain */
    size_t n_matches;
    bool truncated; /* max_matches was reached: the rest was not scanned */
    /* The learned layer's features, when they were asked for
     * (na_tagger_keep_features); without that the model weighs their
     * hashes alone, and these are set only when it needed more. */
    const struct na_feature *features;
    size_t n_features;
    const struct na_model *model; /* the model that decided, or NULL */
    /* what it made of the features (na_model_value), while model is set */
    const struct na_model_scratch *model_values;
};

struct na_tagger_limits {
    size_t max_matches;  /* per article, all patterns together */
    size_t max_evidence; /* sentences per tag */
};

struct na_tagger;

/* Borrows rs, which must outlive the tagger. Returns NULL with err set. */
struct na_tagger *na_tagger_new(const struct na_ruleset *rs,
                                const struct na_tagger_limits *limits,
                                struct na_error *err);
void na_tagger_free(struct na_tagger *t);

/* Tags one article. The result points into the tagger and is valid until the
 * next call; the texts are borrowed only for the call and must be valid
 * UTF-8. Returns 0, or -1 when they are not, or when Vectorscan failed (err
 * says why). */
int na_tagger_tag(struct na_tagger *t, const char *headline, size_t headline_len,
                  const char *body, size_t body_len, const struct na_result **out,
                  struct na_error *err);

const struct na_ruleset *na_tagger_ruleset(const struct na_tagger *t);

/* Decide with model m from now on (borrowed: it must outlive its use, and
 * its tags are the ruleset's, as na_model_load checked); NULL: rules only. */
void na_tagger_set_model(struct na_tagger *t, const struct na_model *m);
/* Keep each article's features in the result, with or without a model
 * (for training and --explain). */
void na_tagger_keep_features(struct na_tagger *t, bool on);

/* Calibration: confidence = 1 - 0.5^(score / threshold); the priority is
 * high from 0.85, normal from 0.6, low below. */
double na_confidence(double score, double threshold);
enum na_priority na_priority_of(double confidence);
const char *na_priority_name(enum na_priority p);
const char *na_field_name(enum na_field f);
const char *na_fate_name(enum na_match_fate f);

#endif
