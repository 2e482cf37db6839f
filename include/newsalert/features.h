/* The learned layer's view of an article: a stream of hashed features (word
 * n-grams, the rule hits, a few facts about the article) that the tagger
 * computes after its rule pass and the model weighs. Training and the daemon
 * read the very same stream, so what is learned is what is scored. */
#ifndef NEWSALERT_FEATURES_H
#define NEWSALERT_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "newsalert/sentence.h"

/* Feature namespaces; the kind is part of the hash. */
enum na_feature_kind {
    NA_FEAT_NGRAM = 1, /* a word n-gram anywhere in the article */
    NA_FEAT_HEAD,      /* a word 1- or 2-gram of the headline */
    NA_FEAT_RULE,      /* a rule term counted for a tag */
    NA_FEAT_RULE_HEAD, /* the same, in the headline */
    NA_FEAT_NO_CTX,    /* a rule term that matched without its actor */
    NA_FEAT_VETO,      /* an exclusion that matched */
    NA_FEAT_SCORE,     /* a tag's rule score over its threshold (capped) */
    NA_FEAT_META,      /* length class, how many states and organisations */
    NA_FEAT_LEDE,      /* a word 1- or 2-gram of the body's first paragraph */
};

/* One occurrence. The same hash may occur many times in an article: the
 * feature's value is the sum. Offsets say where it came from, for evidence
 * and for --explain. */
struct na_feature {
    uint32_t hash; /* never 0 */
    float value;
    uint8_t kind;  /* enum na_feature_kind */
    uint8_t field; /* enum na_field, 0 for article-wide features */
    uint16_t n;    /* words in an n-gram */
    uint32_t start, end;
    uint32_t sentence; /* index into the field's sentences */
    uint32_t ref;      /* rules: the Vectorscan pattern id */
};

/* A growable buffer of feature occurrences; zero-initialise it. */
struct na_featbuf {
    struct na_feature *v;
    size_t n, cap;
};

void na_featbuf_release(struct na_featbuf *fb);

/* The hash of a named feature: kind, then the bytes of name. */
uint32_t na_feature_hash(enum na_feature_kind kind, const char *name, size_t len);

/* Appends the word n-grams of one text (up to max_n words, never across a
 * sentence) as occurrences of kind, each worth 1, for the first max_words
 * words at most; returns how many words it read, or -1 when out of
 * memory. Words are runs of letters and digits
 * (any byte of a multi-byte UTF-8 letter counts as a letter; general
 * punctuation such as curly quotes does not), lower-cased, with every digit
 * read as 0 and a possessive "'s" dropped. */
long na_features_ngrams(struct na_featbuf *fb, enum na_feature_kind kind, unsigned field,
                        const char *text, size_t len, const struct na_span *spans,
                        size_t n_spans, unsigned max_n, size_t max_words);

/* Scales the values of fb->v[from..] by 1/sqrt(count), so that a block of
 * n-grams has unit length whatever the article's length. */
void na_features_normalise(struct na_featbuf *fb, size_t from);

/* The name (and so the hash) of an article fact: fact 0 is the number of
 * states named (class 0, 1, 2, 3 or more), 1 the length (under 60 words,
 * under 350, longer), 2 the number of organisations named. Borrowed. */
const char *na_feature_meta_name(unsigned fact, unsigned cls);

#endif
