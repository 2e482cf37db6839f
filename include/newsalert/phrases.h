/* Fixed phrases matched on word tokens: the tagger's fast path for every
 * rule term and actor alias that is a finite set of word sequences. A text
 * is cut into tokens once; a phrase match is then a walk in a trie over
 * token ids, not a scan of the bytes. The ruleset decides which patterns
 * come here (na_phrases_add) and compiles the rest into Vectorscan. */
#ifndef NEWSALERT_PHRASES_H
#define NEWSALERT_PHRASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct na_phrases;

/* An empty set to add patterns to; NULL when out of memory. The caller owns
 * it and frees it with na_phrases_free. */
struct na_phrases *na_phrases_new(void);
/* Accepts NULL. */
void na_phrases_free(struct na_phrases *p);

/* Offers one pattern: expr is a Vectorscan expression as the ruleset
 * compiles it, with its leading and trailing \b already taken off into
 * bound_start and bound_end (the tagger checks those). When every text expr
 * can match is one of a bounded set of word sequences that begin and end on
 * a word boundary, the set is added under id and 1 is returned: the phrase
 * matcher then finds exactly the matches Vectorscan and the tagger's
 * boundary checks would. Otherwise 0 is returned, with a reason (a static
 * string) in *why, and nothing is added. -1: out of memory. */
int na_phrases_add(struct na_phrases *p, unsigned id, const char *expr, bool caseless,
                   bool bound_start, bool bound_end, const char **why);

/* Ends the adding: builds the look-up tables. 0, or -1 out of memory. */
int na_phrases_finish(struct na_phrases *p);

/* Patterns added. */
size_t na_phrases_pattern_count(const struct na_phrases *p);

/* Per-thread working memory for na_phrases_scan: zero it before first use
 * and release it with na_phrases_scratch_release. It grows to the largest
 * text seen and is reused. */
struct na_phrase_seen {
    uint64_t key;
    uint32_t gen;
};
/* A word of the text as the matcher cuts it: a run of word characters
 * (wordchar.h), at bytes [start, end). */
struct na_phrase_token {
    uint32_t start, end;
    uint32_t word; /* id in the words table, 0: a word no phrase has */
    uint32_t root; /* the trie node of phrases that start with it, or 0 */
    /* When the word is ASCII letters alone: 64-bit FNV-1a of it lower-cased
     * (the learned layer's word hash, features.h); else 0. */
    uint64_t hash;
};
struct na_phrase_scratch {
    struct na_phrase_token *tokens;
    size_t cap_tokens;
    const char *tokens_of; /* the text the last scan cut into tokens */
    size_t tokens_len, n_tokens;
    /* (pattern, end) pairs already reported, stamped by scan */
    struct na_phrase_seen *seen;
    size_t cap_seen;
    uint32_t gen;
};
void na_phrases_scratch_release(struct na_phrase_scratch *s);

/* Called for every match, in order of start: returns 0 to go on, non-zero
 * to stop the scan. For each pattern and end, only the leftmost start is
 * reported, as Vectorscan's leftmost start-of-match mode does. */
typedef int (*na_phrase_cb)(unsigned id, uint32_t start, uint32_t end, void *ctx);

/* Finds the phrases in text[0..len), which must be valid UTF-8. Returns 0,
 * 1 when a callback stopped the scan, or -1 out of memory. */
int na_phrases_scan(const struct na_phrases *p, struct na_phrase_scratch *s,
                    const char *text, size_t len, na_phrase_cb cb, void *ctx);
/* The tokens of text[0..len), when the last na_phrases_scan on s was of
 * that text and cut it (it does not when there are no phrases or the text
 * is empty); else NULL. *n: how many. */
const struct na_phrase_token *na_phrases_tokens(const struct na_phrase_scratch *s,
                                                const char *text, size_t len, size_t *n);

#endif
