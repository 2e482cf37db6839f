/* Sentence boundaries, for evidence and for the "actor in the same
 * sentence" context rule. */
#ifndef NEWSALERT_SENTENCE_H
#define NEWSALERT_SENTENCE_H

#include <stddef.h>
#include <stdint.h>

struct na_span {
    uint32_t start, end; /* byte offsets, end exclusive, trimmed of spaces */
};

/* Splits text[0..len) into sentences: a newline always ends one; '.', '!'
 * and '?' end one when followed by white space, unless the word before the
 * period is an initial or a common abbreviation ("U.S.", "Mr.", "Jan.").
 * Spans go into *spans, grown with realloc as needed (*cap is its capacity;
 * the caller owns and frees it). Returns the number of spans, or -1 when out
 * of memory. */
long na_sentence_split(const char *text, size_t len, struct na_span **spans, size_t *cap);

/* Index of the span containing offset (binary search), or the nearest one
 * before it. n must be > 0. */
size_t na_sentence_find(const struct na_span *spans, size_t n, uint32_t offset);

#endif
