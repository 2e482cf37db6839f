/* Sentence boundaries for evidence and for sentence-level context rules.
 * A heuristic, not a linguistic parser: news copy is regular enough that
 * newlines, terminal punctuation and a short list of abbreviations get
 * almost every boundary right. */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "newsalert/sentence.h"

/* Words after which a period does not end the sentence, by length, so that
 * a sentence's last word is compared with the few of its own length only.
 * Single letters ("J. Smith") and dotted acronyms ("U.S.") are caught by the
 * shape test. */
static const char *const abbreviations2[] = {
    "Mr", "Ms", "Dr", "Lt", "St", "Jr", "Sr", "No", "vs", "Co", "Mt", "Ft", "Rt",
};
static const char *const abbreviations3[] = {
    "Mrs", "Gen", "Col", "Maj", "Sgt", "Adm", "Sen", "Rep", "Gov",
    "etc", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep",
    "Oct", "Nov", "Dec", "Inc", "Ltd", "Hon", "Amb",
};
static const char *const abbreviations4[] = {
    "Prof", "Capt", "Pres", "Sept", "Corp", "Cmdr", "Brig",
};
static const char *const abbreviations6[] = {"approx"};
#define N(a) (sizeof(a) / sizeof(a[0]))
static const struct {
    const char *const *words;
    size_t n;
} abbreviations[] = {
    [2] = {abbreviations2, N(abbreviations2)},
    [3] = {abbreviations3, N(abbreviations3)},
    [4] = {abbreviations4, N(abbreviations4)},
    [6] = {abbreviations6, N(abbreviations6)},
};
#undef N

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Does the word that ends just before text[dot] forbid a break? */
static bool is_abbreviation(const char *text, size_t dot)
{
    size_t start = dot;
    while (start > 0 && !is_space((unsigned char)text[start - 1]) &&
           text[start - 1] != '(' && text[start - 1] != '"')
        start--;
    size_t n = dot - start;
    if (n == 0)
        return false;
    if (n == 1 && isupper((unsigned char)text[start]))
        return true; /* an initial */
    if (memchr(text + start, '.', n) != NULL)
        return true; /* U.S., e.g., a.m. */
    if (n >= sizeof(abbreviations) / sizeof(abbreviations[0]))
        return false; /* longer than any abbreviation */
    for (size_t i = 0; i < abbreviations[n].n; i++)
        if (abbreviations[n].words[i][0] == text[start] &&
            memcmp(abbreviations[n].words[i], text + start, n) == 0)
            return true;
    return false;
}

static int push(struct na_span **spans, size_t *cap, size_t *n, const char *text,
                size_t start, size_t end)
{
    while (start < end && is_space((unsigned char)text[start]))
        start++;
    while (end > start && is_space((unsigned char)text[end - 1]))
        end--;
    if (start == end)
        return 0;
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 32;
        struct na_span *p = realloc(*spans, ncap * sizeof(*p));
        if (p == NULL)
            return -1;
        *spans = p;
        *cap = ncap;
    }
    (*spans)[*n].start = (uint32_t)start;
    (*spans)[*n].end = (uint32_t)end;
    (*n)++;
    return 0;
}

/* The next byte at or after i that may end a sentence ('\n', '.', '!' or
 * '?'), or len. News text has one every twenty bytes or so, and the bytes in
 * between are skipped sixteen at a time: with SSE2 (every x86-64) four
 * compares and a movemask give the candidates' positions as bits. This loop
 * is the tagger's largest cost outside Vectorscan; so written, splitting
 * takes under 4 instructions per byte of news text (callgrind over 500
 * bench articles of 2 KB). */
static size_t next_candidate(const char *text, size_t i, size_t len)
{
#ifdef __SSE2__
    const __m128i nl = _mm_set1_epi8('\n'), dot = _mm_set1_epi8('.'),
                  bang = _mm_set1_epi8('!'), query = _mm_set1_epi8('?');
    for (; len - i >= 16; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(text + i));
        __m128i hit =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, nl), _mm_cmpeq_epi8(v, dot)),
                         _mm_or_si128(_mm_cmpeq_epi8(v, bang), _mm_cmpeq_epi8(v, query)));
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);
        if (mask != 0)
            return i + (size_t)__builtin_ctz(mask);
    }
#endif
    while (i < len && text[i] != '\n' && text[i] != '.' && text[i] != '!' &&
           text[i] != '?')
        i++;
    return i;
}

long na_sentence_split(const char *text, size_t len, struct na_span **spans, size_t *cap)
{
    size_t n = 0, start = 0;

    for (size_t i = 0; (i = next_candidate(text, i, len)) < len; i++) {
        unsigned char c = (unsigned char)text[i];
        size_t end;
        if (c == '\n') {
            end = i;
        } else if (c == '.' || c == '!' || c == '?') {
            /* Closing quotes and brackets belong to the sentence they end. */
            end = i + 1;
            while (end < len &&
                   (text[end] == '"' || text[end] == '\'' || text[end] == ')'))
                end++;
            /* A typographic closing quote is three bytes: E2 80 9D / E2 80 99. */
            while (end + 2 < len && (unsigned char)text[end] == 0xe2 &&
                   (unsigned char)text[end + 1] == 0x80 &&
                   ((unsigned char)text[end + 2] == 0x9d ||
                    (unsigned char)text[end + 2] == 0x99))
                end += 3;
            if (end < len && !is_space((unsigned char)text[end]))
                continue;
            if (c == '.' && is_abbreviation(text, i))
                continue;
            i = end - 1;
        } else {
            continue;
        }
        if (push(spans, cap, &n, text, start, end) < 0)
            return -1;
        start = end;
    }
    if (push(spans, cap, &n, text, start, len) < 0)
        return -1;
    return (long)n;
}

size_t na_sentence_find(const struct na_span *spans, size_t n, uint32_t offset)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (spans[mid].start <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}
