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

/* Room for need more elements of elem bytes in *buf, which holds n in room
 * for *cap; 0, or -1 out of memory. */
static int reserve(void **buf, size_t *cap, size_t n, size_t need, size_t elem)
{
    if (*cap - n >= need)
        return 0;
    size_t ncap = n + need;
    if (ncap < *cap * 2)
        ncap = *cap * 2;
    void *p = realloc(*buf, ncap * elem);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = ncap;
    return 0;
}

/* The n-grams that end at each word, word by word. An n-gram hashes the
 * seed, then each word's hash, earlier words first, then n; the 1- and
 * 2-gram prefixes that ended at the word before carry over, so that each n
 * costs one step. No n-gram spans two sentences. */
struct grams {
    uint64_t seed, prefix1, prefix2;
    size_t n_hist; /* words of this sentence so far, up to 3 */
    size_t sentence;
};

static inline struct grams grams_start(enum na_feature_kind kind)
{
    return (struct grams){.seed = (FNV_OFFSET ^ (uint64_t)kind) * FNV_PRIME};
}

/* The word of hash h at byte start: the hashes of the n-grams (n <= max_n)
 * that end with it, the 1-gram first, into out (room for max_n); returns
 * how many. */
static inline unsigned grams_word(struct grams *g, uint64_t h, size_t start,
                                  const struct na_span *spans, size_t n_spans, unsigned max_n,
                                  uint32_t *out)
{
    /* Which sentence: spans are in order, so walk forward. */
    size_t before = g->sentence;
    while (g->sentence + 1 < n_spans && spans[g->sentence + 1].start <= start)
        g->sentence++;
    if (g->sentence != before)
        g->n_hist = 0;
    if (g->n_hist < 3)
        g->n_hist++;
    uint64_t p[3] = {(g->seed ^ h) * FNV_PRIME, (g->prefix1 ^ h) * FNV_PRIME,
                     (g->prefix2 ^ h) * FNV_PRIME};
    g->prefix1 = p[0];
    g->prefix2 = p[1];
    unsigned top = g->n_hist < max_n ? (unsigned)g->n_hist : max_n;
#pragma GCC unroll 3
    for (unsigned n = 1; n <= 3; n++) {
        if (n > top)
            break;
        out[n - 1] = fold((p[n - 1] ^ n) * FNV_PRIME);
    }
    return top;
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
    struct grams g = grams_start(kind);
    uint32_t starts[3]; /* where this word and the two before begin */
    size_t i = 0, words = 0;

    if (max_n > 3)
        max_n = 3;
    /* A word and its separator take two bytes at least; max_n grams end at
     * each word, and no more than max_words words are read. */
    size_t most = (len + 1) / 2 < max_words ? (len + 1) / 2 : max_words;
    if (reserve(buf, cap, *n_out, most * max_n + 8, elem) < 0)
        return -1;
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
        words++;
        if (!full) {
            out += grams_word(&g, h, start, spans, n_spans, max_n, (uint32_t *)*buf + out);
            continue;
        }
        uint32_t hash[3];
        unsigned n_grams = grams_word(&g, h, start, spans, n_spans, max_n, hash);
        starts[2] = starts[1];
        starts[1] = starts[0];
        starts[0] = (uint32_t)start;
        for (unsigned n = 1; n <= n_grams; n++)
            ((struct na_feature *)*buf)[out++] =
                (struct na_feature){.hash = hash[n - 1],
                                    .value = 1.0f,
                                    .kind = (uint8_t)kind,
                                    .field = (uint8_t)field,
                                    .n = (uint16_t)n,
                                    .start = starts[n - 1],
                                    .end = (uint32_t)i,
                                    .sentence = (uint32_t)g.sentence};
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
    struct grams g = grams_start(kind);
    size_t words = 0, out = hb->n;

    if (max_n > 3)
        max_n = 3;
    size_t most = n_tokens < max_words ? n_tokens : max_words;
    void *buf = hb->v;
    int rc = reserve(&buf, &hb->cap, hb->n, most * max_n + 8, sizeof(*hb->v));
    hb->v = buf;
    if (rc < 0)
        return -1;
    for (size_t t = 0; t < n_tokens && words < max_words; t++) {
        uint32_t start = tokens[t].start, end = tokens[t].end;
        /* A lone "s" right after an apostrophe is a possessive, which
         * skip_separator drops. (A longer token after one is a word.) */
        if (end - start == 1 && (s[start] | 0x20) == 's' &&
            ((start >= 1 && apostrophe_len(s, start - 1, start) == 1) ||
             (start >= 3 && apostrophe_len(s, start - 3, start) == 3)))
            continue;
        uint64_t h = tokens[t].hash; /* the matcher's, for ASCII letters */
        if (h == 0) {
            h = FNV_OFFSET;
            for (uint32_t i = start; i < end; i++) {
                unsigned char k = norm[s[i]];
                if (k == 0)
                    return -2; /* '_': two words here, one token there */
                /* the bytes of a multi-byte letter as they are */
                h = (h ^ (k == NONASCII ? s[i] : k)) * FNV_PRIME;
            }
        }
        words++;
        out += grams_word(&g, h, start, spans, n_spans, max_n, hb->v + out);
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
