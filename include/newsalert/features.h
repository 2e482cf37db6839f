/* The learned layer's view of an article: a stream of hashed word n-grams
 * that the tagger computes after its rule pass and the model weighs.
 * Training and the daemon read the very same stream, so what is learned is
 * what is scored. */
#ifndef NEWSALERT_FEATURES_H
#define NEWSALERT_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "newsalert/sentence.h"

/* Feature namespaces; the kind is part of the hash. Word n-grams are the
 * only kind: rule hits, headline and lede n-grams and article facts were
 * tried as features, and a model over them did worse on articles from
 * writers it had not seen (docs/tagging.md). */
enum na_feature_kind {
    NA_FEAT_NGRAM = 1, /* a word n-gram anywhere in the article */
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
};

/* A growable buffer of feature occurrences; zero-initialise it. */
struct na_featbuf {
    struct na_feature *v;
    size_t n, cap;
};

void na_featbuf_release(struct na_featbuf *fb);

/* The hashes alone, for a model that only weighs them; zero-initialise. */
struct na_hashbuf {
    uint32_t *v;
    size_t n, cap;
};
void na_hashbuf_release(struct na_hashbuf *hb);

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
/* The same n-grams, in the same order, as their hashes alone. */
long na_features_hashes(struct na_hashbuf *hb, enum na_feature_kind kind, const char *text,
                        size_t len, const struct na_span *spans, size_t n_spans,
                        unsigned max_n, size_t max_words);
/* The same hashes again, from the words the phrase matcher cut text into
 * (na_phrases_tokens) rather than from its bytes, which saves a pass. Its
 * words are these words but for a possessive "'s", which this drops as
 * na_features_ngrams does, and '_', a word character there: when a token
 * holds one, -2 is returned with nothing appended, and na_features_hashes
 * must read the text instead. A token's word hash is the matcher's when it
 * kept one (ASCII letters alone), else it is hashed again from its bytes. */
struct na_phrase_token;
long na_features_hashes_tokens(struct na_hashbuf *hb, enum na_feature_kind kind,
                               const char *text, const struct na_phrase_token *tokens,
                               size_t n_tokens, const struct na_span *spans, size_t n_spans,
                               unsigned max_n, size_t max_words);

#endif
