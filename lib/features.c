/* Word n-grams and named features for the learned layer. The tagger calls
 * this after its rule pass; the hashes are part of the model format, so they
 * are defined here once, in 64-bit FNV-1a folded to 32 bits, the same on
 * every platform. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/features.h"
#include "newsalert/phrases.h"
#include "wordchar.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint32_t fold(uint64_t h)
{
    uint32_t v = (uint32_t)(h ^ (h >> 32));
    return v ? v : 1;
}

uint32_t na_feature_hash(enum na_feature_kind kind, const char *name, size_t len)
{
    uint64_t h = (FNV_OFFSET ^ (uint64_t)kind) * FNV_PRIME;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * FNV_PRIME;
    return fold(h);
}

void na_featbuf_release(struct na_featbuf *fb)
{
    free(fb->v);
    *fb = (struct na_featbuf){0};
}

void na_hashbuf_release(struct na_hashbuf *hb)
{
    free(hb->v);
    *hb = (struct na_hashbuf){0};
}

/* What a byte adds to a word: ASCII letters lower-cased, every digit '0', 0
 * for a separator, and NONASCII for the bytes of a multi-byte character,
 * which utf8_letter decides on. */
#define NONASCII 0xff
static const unsigned char norm[256] = {
    ['0' ... '9'] = '0',
    ['A'] = 'a', ['B'] = 'b', ['C'] = 'c', ['D'] = 'd', ['E'] = 'e', ['F'] = 'f',
    ['G'] = 'g', ['H'] = 'h', ['I'] = 'i', ['J'] = 'j', ['K'] = 'k', ['L'] = 'l',
    ['M'] = 'm', ['N'] = 'n', ['O'] = 'o', ['P'] = 'p', ['Q'] = 'q', ['R'] = 'r',
    ['S'] = 's', ['T'] = 't', ['U'] = 'u', ['V'] = 'v', ['W'] = 'w', ['X'] = 'x',
    ['Y'] = 'y', ['Z'] = 'z',
    ['a'] = 'a', ['b'] = 'b', ['c'] = 'c', ['d'] = 'd', ['e'] = 'e', ['f'] = 'f',
    ['g'] = 'g', ['h'] = 'h', ['i'] = 'i', ['j'] = 'j', ['k'] = 'k', ['l'] = 'l',
    ['m'] = 'm', ['n'] = 'n', ['o'] = 'o', ['p'] = 'p', ['q'] = 'q', ['r'] = 'r',
    ['s'] = 's', ['t'] = 't', ['u'] = 'u', ['v'] = 'v', ['w'] = 'w', ['x'] = 'x',
    ['y'] = 'y', ['z'] = 'z',
    [0x80 ... 0xff] = NONASCII,
};

/* What a byte of a phrase-matcher token adds to a word: as norm, but the
 * bytes of a multi-byte letter as they are, and 0 for '_', which is a word
 * character to the matcher and a separator here. */
static const unsigned char token_norm[256] = {
    ['0' ... '9'] = '0',
    ['A'] = 'a', ['B'] = 'b', ['C'] = 'c', ['D'] = 'd', ['E'] = 'e', ['F'] = 'f',
    ['G'] = 'g', ['H'] = 'h', ['I'] = 'i', ['J'] = 'j', ['K'] = 'k', ['L'] = 'l',
    ['M'] = 'm', ['N'] = 'n', ['O'] = 'o', ['P'] = 'p', ['Q'] = 'q', ['R'] = 'r',
    ['S'] = 's', ['T'] = 't', ['U'] = 'u', ['V'] = 'v', ['W'] = 'w', ['X'] = 'x',
    ['Y'] = 'y', ['Z'] = 'z',
    ['a'] = 'a', ['b'] = 'b', ['c'] = 'c', ['d'] = 'd', ['e'] = 'e', ['f'] = 'f',
    ['g'] = 'g', ['h'] = 'h', ['i'] = 'i', ['j'] = 'j', ['k'] = 'k', ['l'] = 'l',
    ['m'] = 'm', ['n'] = 'n', ['o'] = 'o', ['p'] = 'p', ['q'] = 'q', ['r'] = 'r',
    ['s'] = 's', ['t'] = 't', ['u'] = 'u', ['v'] = 'v', ['w'] = 'w', ['x'] = 'x',
    ['y'] = 'y', ['z'] = 'z',
    [0x80] = 0x80, [0x81] = 0x81, [0x82] = 0x82, [0x83] = 0x83, [0x84] = 0x84,
    [0x85] = 0x85, [0x86] = 0x86, [0x87] = 0x87, [0x88] = 0x88, [0x89] = 0x89,
    [0x8a] = 0x8a, [0x8b] = 0x8b, [0x8c] = 0x8c, [0x8d] = 0x8d, [0x8e] = 0x8e,
    [0x8f] = 0x8f, [0x90] = 0x90, [0x91] = 0x91, [0x92] = 0x92, [0x93] = 0x93,
    [0x94] = 0x94, [0x95] = 0x95, [0x96] = 0x96, [0x97] = 0x97, [0x98] = 0x98,
    [0x99] = 0x99, [0x9a] = 0x9a, [0x9b] = 0x9b, [0x9c] = 0x9c, [0x9d] = 0x9d,
    [0x9e] = 0x9e, [0x9f] = 0x9f, [0xa0] = 0xa0, [0xa1] = 0xa1, [0xa2] = 0xa2,
    [0xa3] = 0xa3, [0xa4] = 0xa4, [0xa5] = 0xa5, [0xa6] = 0xa6, [0xa7] = 0xa7,
    [0xa8] = 0xa8, [0xa9] = 0xa9, [0xaa] = 0xaa, [0xab] = 0xab, [0xac] = 0xac,
    [0xad] = 0xad, [0xae] = 0xae, [0xaf] = 0xaf, [0xb0] = 0xb0, [0xb1] = 0xb1,
    [0xb2] = 0xb2, [0xb3] = 0xb3, [0xb4] = 0xb4, [0xb5] = 0xb5, [0xb6] = 0xb6,
    [0xb7] = 0xb7, [0xb8] = 0xb8, [0xb9] = 0xb9, [0xba] = 0xba, [0xbb] = 0xbb,
    [0xbc] = 0xbc, [0xbd] = 0xbd, [0xbe] = 0xbe, [0xbf] = 0xbf, [0xc0] = 0xc0,
    [0xc1] = 0xc1, [0xc2] = 0xc2, [0xc3] = 0xc3, [0xc4] = 0xc4, [0xc5] = 0xc5,
    [0xc6] = 0xc6, [0xc7] = 0xc7, [0xc8] = 0xc8, [0xc9] = 0xc9, [0xca] = 0xca,
    [0xcb] = 0xcb, [0xcc] = 0xcc, [0xcd] = 0xcd, [0xce] = 0xce, [0xcf] = 0xcf,
    [0xd0] = 0xd0, [0xd1] = 0xd1, [0xd2] = 0xd2, [0xd3] = 0xd3, [0xd4] = 0xd4,
    [0xd5] = 0xd5, [0xd6] = 0xd6, [0xd7] = 0xd7, [0xd8] = 0xd8, [0xd9] = 0xd9,
    [0xda] = 0xda, [0xdb] = 0xdb, [0xdc] = 0xdc, [0xdd] = 0xdd, [0xde] = 0xde,
    [0xdf] = 0xdf, [0xe0] = 0xe0, [0xe1] = 0xe1, [0xe2] = 0xe2, [0xe3] = 0xe3,
    [0xe4] = 0xe4, [0xe5] = 0xe5, [0xe6] = 0xe6, [0xe7] = 0xe7, [0xe8] = 0xe8,
    [0xe9] = 0xe9, [0xea] = 0xea, [0xeb] = 0xeb, [0xec] = 0xec, [0xed] = 0xed,
    [0xee] = 0xee, [0xef] = 0xef, [0xf0] = 0xf0, [0xf1] = 0xf1, [0xf2] = 0xf2,
    [0xf3] = 0xf3, [0xf4] = 0xf4, [0xf5] = 0xf5, [0xf6] = 0xf6, [0xf7] = 0xf7,
    [0xf8] = 0xf8, [0xf9] = 0xf9, [0xfa] = 0xfa, [0xfb] = 0xfb, [0xfc] = 0xfc,
    [0xfd] = 0xfd, [0xfe] = 0xfe, [0xff] = 0xff,
};

/* Is the character at s[i] a letter, as the tagger's word boundaries read
 * it (wordchar.h)? A byte inside a character is not one. */
static bool utf8_letter(const unsigned char *s, size_t i, size_t len)
{
    return (s[i] & 0xc0) == 0xc0 && na_utf8_letter_at(s, i, len);
}

/* An apostrophe (ASCII or U+2019) at s[i]: its length, or 0. */
static size_t apostrophe_len(const unsigned char *s, size_t i, size_t len)
{
    if (s[i] == '\'')
        return 1;
    if (s[i] == 0xe2 && i + 2 < len && s[i + 1] == 0x80 && s[i + 2] == 0x99)
        return 3;
    return 0;
}

static bool word_at(const unsigned char *s, size_t i, size_t len)
{
    unsigned char k = norm[s[i]];
    return k != 0 && (k != NONASCII || utf8_letter(s, i, len));
}

/* Past the separator at s[i]: a possessive "'s" ends the word before it and
 * is skipped whole; a multi-byte punctuation mark is skipped whole. */
static size_t skip_separator(const unsigned char *s, size_t i, size_t len)
{
    size_t a = apostrophe_len(s, i, len);
    if (a && i + a < len && (s[i + a] | 0x20) == 's' &&
        (i + a + 1 == len || !word_at(s, i + a + 1, len)))
        return i + a + 1;
    if (a)
        return i + a;
    i++;
    while (i < len && (s[i] & 0xc0) == 0x80)
        i++;
    return i;
}

/* The word n-grams of one text, as occurrences (full) or as their hashes
 * alone: one body for both, so that the two can never hash differently.
 * buf holds *n elements of elem bytes in room for *cap. */
static inline __attribute__((always_inline)) long
ngrams(void **buf, size_t *n_out, size_t *cap, size_t elem, bool full, enum na_feature_kind kind,
       unsigned field, const char *text, size_t len, const struct na_span *spans,
       size_t n_spans, unsigned max_n, size_t max_words)
{
    const unsigned char *s = (const unsigned char *)text;
    const uint64_t seed = (FNV_OFFSET ^ (uint64_t)kind) * FNV_PRIME;
    /* The n-grams that end at a word hash the seed, then each word's hash,
     * earlier words first, then n. The 1- and 2-gram prefixes that ended
     * at the word before carry over, so that each n costs one step. */
    uint64_t prefix1 = 0, prefix2 = 0;
    uint32_t hist_start[3];
    size_t n_hist = 0, sentence = 0, i = 0;
    size_t words = 0;

    if (max_n > 3)
        max_n = 3;
    /* A word and its separator take two bytes at least; max_n grams end at
     * each word, and no more than max_words words are read. */
    size_t most = (len + 1) / 2 < max_words ? (len + 1) / 2 : max_words;
    if (*cap - *n_out < most * max_n + 8) {
        size_t ncap = *n_out + most * max_n + 8;
        if (ncap < *cap * 2)
            ncap = *cap * 2;
        void *p = realloc(*buf, ncap * elem);
        if (p == NULL)
            return -1;
        *buf = p;
        *cap = ncap;
    }
    size_t out = *n_out;
    while (i < len && words < max_words) {
        unsigned char k = norm[s[i]];
        if (k == 0 && s[i] != '\'') { /* ASCII punctuation or space (valid UTF-8) */
            i++;
            continue;
        }
        if (k == 0 || (k == NONASCII && !utf8_letter(s, i, len))) {
            i = skip_separator(s, i, len);
            continue;
        }
        size_t start = i;
        uint64_t h = FNV_OFFSET;
        for (;;) {
            while (k != 0 && k != NONASCII) { /* ASCII letters and digits */
                h = (h ^ k) * FNV_PRIME;
                if (++i >= len)
                    goto word_end;
                k = norm[s[i]];
            }
            if (k == 0 || !utf8_letter(s, i, len))
                break;
            do
                h = (h ^ s[i++]) * FNV_PRIME;
            while (i < len && (s[i] & 0xc0) == 0x80);
            if (i >= len)
                break;
            k = norm[s[i]];
        }
    word_end:;
        /* Which sentence: spans are in order, so walk forward. */
        size_t before = sentence;
        while (sentence + 1 < n_spans && spans[sentence + 1].start <= start)
            sentence++;
        if (sentence != before)
            n_hist = 0;
        if (n_hist == 3) {
            hist_start[0] = hist_start[1];
            hist_start[1] = hist_start[2];
            n_hist = 2;
        }
        hist_start[n_hist] = (uint32_t)start;
        n_hist++;
        words++;
        uint64_t g[3];
        g[0] = (seed ^ h) * FNV_PRIME;
        g[1] = (prefix1 ^ h) * FNV_PRIME;
        g[2] = (prefix2 ^ h) * FNV_PRIME;
        prefix1 = g[0];
        prefix2 = g[1];
        unsigned top = n_hist < max_n ? (unsigned)n_hist : max_n;
#pragma GCC unroll 3
        for (unsigned n = 1; n <= 3; n++) {
            if (n > top)
                break;
            uint32_t hash = fold((g[n - 1] ^ n) * FNV_PRIME);
            if (full)
                ((struct na_feature *)*buf)[out++] =
                    (struct na_feature){.hash = hash,
                                        .value = 1.0f,
                                        .kind = (uint8_t)kind,
                                        .field = (uint8_t)field,
                                        .n = (uint16_t)n,
                                        .start = hist_start[n_hist - n],
                                        .end = (uint32_t)i,
                                        .sentence = (uint32_t)sentence};
            else
                ((uint32_t *)*buf)[out++] = hash;
        }
    }
    *n_out = out;
    return (long)words;
}

long na_features_ngrams(struct na_featbuf *fb, enum na_feature_kind kind, unsigned field,
                        const char *text, size_t len, const struct na_span *spans,
                        size_t n_spans, unsigned max_n, size_t max_words)
{
    void *buf = fb->v;
    long r = ngrams(&buf, &fb->n, &fb->cap, sizeof(*fb->v), true, kind, field, text, len,
                    spans, n_spans, max_n, max_words);
    fb->v = buf;
    return r;
}

long na_features_hashes_tokens(struct na_hashbuf *hb, enum na_feature_kind kind,
                               const char *text, const struct na_phrase_token *tokens,
                               size_t n_tokens, const struct na_span *spans, size_t n_spans,
                               unsigned max_n, size_t max_words)
{
    const unsigned char *s = (const unsigned char *)text;
    const uint64_t seed = (FNV_OFFSET ^ (uint64_t)kind) * FNV_PRIME;
    uint64_t prefix1 = 0, prefix2 = 0;
    size_t n_hist = 0, sentence = 0, words = 0, out = hb->n;

    if (max_n > 3)
        max_n = 3;
    size_t most = n_tokens < max_words ? n_tokens : max_words;
    if (hb->cap - hb->n < most * max_n + 8) {
        size_t ncap = hb->n + most * max_n + 8;
        if (ncap < hb->cap * 2)
            ncap = hb->cap * 2;
        uint32_t *p = realloc(hb->v, ncap * sizeof(*p));
        if (p == NULL)
            return -1;
        hb->v = p;
        hb->cap = ncap;
    }
    for (size_t t = 0; t < n_tokens && words < max_words; t++) {
        uint32_t start = tokens[t].start, end = tokens[t].end;
        /* A lone "s" right after an apostrophe is a possessive, which
         * skip_separator drops. (A longer token after one is a word.) */
        if (end - start == 1 && (s[start] | 0x20) == 's' && start > 0 &&
            (s[start - 1] == '\'' || (start >= 3 && s[start - 3] == 0xe2 &&
                                      s[start - 2] == 0x80 && s[start - 1] == 0x99)))
            continue;
        uint64_t h = tokens[t].hash; /* the matcher's, for ASCII letters */
        if (h == 0) {
            h = FNV_OFFSET;
            for (uint32_t i = start; i < end; i++) {
                unsigned char k = token_norm[s[i]];
                if (k == 0)
                    return -2; /* '_': two words here, one token there */
                h = (h ^ k) * FNV_PRIME;
            }
        }
        size_t before = sentence;
        while (sentence + 1 < n_spans && spans[sentence + 1].start <= start)
            sentence++;
        if (sentence != before)
            n_hist = 0;
        if (n_hist < 3)
            n_hist++;
        words++;
        uint64_t g[3];
        g[0] = (seed ^ h) * FNV_PRIME;
        g[1] = (prefix1 ^ h) * FNV_PRIME;
        g[2] = (prefix2 ^ h) * FNV_PRIME;
        prefix1 = g[0];
        prefix2 = g[1];
        unsigned top = n_hist < max_n ? (unsigned)n_hist : max_n;
#pragma GCC unroll 3
        for (unsigned n = 1; n <= 3; n++) {
            if (n > top)
                break;
            hb->v[out++] = fold((g[n - 1] ^ n) * FNV_PRIME);
        }
    }
    hb->n = out;
    return (long)words;
}

long na_features_hashes(struct na_hashbuf *hb, enum na_feature_kind kind, const char *text,
                        size_t len, const struct na_span *spans, size_t n_spans,
                        unsigned max_n, size_t max_words)
{
    void *buf = hb->v;
    long r = ngrams(&buf, &hb->n, &hb->cap, sizeof(*hb->v), false, kind, 0, text, len, spans,
                    n_spans, max_n, max_words);
    hb->v = buf;
    return r;
}
