/* Word n-grams and named features for the learned layer. The tagger calls
 * this after its rule pass; the hashes are part of the model format, so they
 * are defined here once, in 64-bit FNV-1a folded to 32 bits, the same on
 * every platform. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/features.h"

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

static struct na_feature *featbuf_push(struct na_featbuf *fb)
{
    if (fb->n == fb->cap) {
        size_t ncap = fb->cap ? fb->cap * 2 : 512;
        struct na_feature *p = realloc(fb->v, ncap * sizeof(*p));
        if (p == NULL)
            return NULL;
        fb->v = p;
        fb->cap = ncap;
    }
    return &fb->v[fb->n++];
}

/* Byte classes: 0 separator, 1 ASCII letter or digit, 2 start of a UTF-8
 * sequence (decided by what it encodes), 3 continuation byte. */
static unsigned char byte_class(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    if (c >= 0xc0)
        return 2;
    if (c >= 0x80)
        return 3;
    return 0;
}

/* Length of the UTF-8 sequence at s[i] when it is punctuation rather than a
 * letter (U+00A0-U+00BF, U+00D7, U+00F7, U+2000-U+206F, U+3000-U+303F), or 0. */
static size_t punct_len(const unsigned char *s, size_t i, size_t len)
{
    if (s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0xa0 && s[i + 1] <= 0xbf)
        return 2;
    if (s[i] == 0xc3 && i + 1 < len && (s[i + 1] == 0x97 || s[i + 1] == 0xb7))
        return 2;
    if (s[i] == 0xe2 && i + 2 < len && (s[i + 1] == 0x80 || s[i + 1] == 0x81))
        return 3;
    if (s[i] == 0xe3 && i + 2 < len && s[i + 1] == 0x80)
        return 3;
    return 0;
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

static bool is_word_at(const unsigned char *s, size_t i, size_t len)
{
    unsigned char k = byte_class(s[i]);
    return k == 1 || k == 3 || (k == 2 && punct_len(s, i, len) == 0);
}

long na_features_ngrams(struct na_featbuf *fb, enum na_feature_kind kind, unsigned field,
                        const char *text, size_t len, const struct na_span *spans,
                        size_t n_spans, unsigned max_n)
{
    const unsigned char *s = (const unsigned char *)text;
    uint64_t hist[3];
    uint32_t hist_start[3];
    size_t n_hist = 0, sentence = 0, i = 0;
    long added = 0;

    if (max_n > 3)
        max_n = 3;
    while (i < len) {
        if (!is_word_at(s, i, len)) {
            size_t a = apostrophe_len(s, i, len);
            /* A possessive ends the word before it: skip the "s" too. */
            if (a && i + a < len && (s[i + a] | 0x20) == 's' &&
                (i + a + 1 == len || !is_word_at(s, i + a + 1, len)))
                i += a + 1;
            else
                i += a ? a : 1;
            continue;
        }
        size_t start = i;
        uint64_t h = FNV_OFFSET;
        while (i < len && is_word_at(s, i, len)) {
            unsigned char c = s[i];
            if (c >= 'A' && c <= 'Z')
                c |= 0x20;
            else if (c >= '0' && c <= '9')
                c = '0';
            h = (h ^ c) * FNV_PRIME;
            i++;
        }
        /* Which sentence: spans are in order, so walk forward. */
        size_t before = sentence;
        while (sentence + 1 < n_spans && spans[sentence + 1].start <= start)
            sentence++;
        if (sentence != before)
            n_hist = 0;
        if (n_hist == 3) {
            hist[0] = hist[1];
            hist[1] = hist[2];
            hist_start[0] = hist_start[1];
            hist_start[1] = hist_start[2];
            n_hist = 2;
        }
        hist[n_hist] = h;
        hist_start[n_hist] = (uint32_t)start;
        n_hist++;
        /* The 1-gram ending here, then the 2- and 3-grams ending here. */
        for (unsigned n = 1; n <= max_n && n <= n_hist; n++) {
            uint64_t g = (FNV_OFFSET ^ (uint64_t)kind) * FNV_PRIME;
            for (size_t k = n_hist - n; k < n_hist; k++)
                g = (g ^ hist[k]) * FNV_PRIME;
            g = (g ^ n) * FNV_PRIME;
            struct na_feature *f = featbuf_push(fb);
            if (f == NULL)
                return -1;
            *f = (struct na_feature){.hash = fold(g),
                                     .value = 1.0f,
                                     .kind = (uint8_t)kind,
                                     .field = (uint8_t)field,
                                     .n = (uint16_t)n,
                                     .start = hist_start[n_hist - n],
                                     .end = (uint32_t)i,
                                     .sentence = (uint32_t)sentence};
            added++;
        }
    }
    return added;
}

void na_features_normalise(struct na_featbuf *fb, size_t from)
{
    if (fb->n <= from)
        return;
    float scale = (float)(1.0 / sqrt((double)(fb->n - from)));
    for (size_t i = from; i < fb->n; i++)
        fb->v[i].value *= scale;
}

const char *na_feature_meta_name(unsigned fact, unsigned cls)
{
    static const char *const names[3][4] = {
        {"states:0", "states:1", "states:2", "states:3+"},
        {"len:flash", "len:short", "len:long", "len:long"},
        {"orgs:0", "orgs:1", "orgs:2", "orgs:3+"},
    };
    return fact < 3 && cls < 4 ? names[fact][cls] : "?";
}
