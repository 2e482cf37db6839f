/* Sentence boundaries for evidence and for sentence-level context rules.
 * A heuristic, not a linguistic parser: news copy is regular enough that
 * newlines, terminal punctuation and a short list of abbreviations get
 * almost every boundary right. */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/sentence.h"

/* Words after which a period does not end the sentence. Single letters
 * ("J. Smith") and dotted acronyms ("U.S.") are caught by the shape test. */
#define A(s) {s, sizeof(s) - 1}
static const struct {
    const char *word;
    size_t len;
} abbreviations[] = {
    A("Mr"), A("Mrs"), A("Ms"), A("Dr"), A("Prof"), A("Gen"), A("Lt"), A("Col"),
    A("Maj"), A("Capt"), A("Sgt"), A("Adm"), A("Sen"), A("Rep"), A("Gov"), A("Pres"),
    A("St"), A("Jr"), A("Sr"), A("No"), A("vs"), A("etc"), A("approx"), A("Jan"),
    A("Feb"), A("Mar"), A("Apr"), A("Jun"), A("Jul"), A("Aug"), A("Sep"), A("Sept"),
    A("Oct"), A("Nov"), A("Dec"), A("Inc"), A("Ltd"), A("Corp"), A("Co"), A("Mt"),
    A("Ft"), A("Rt"), A("Hon"), A("Amb"), A("Cmdr"), A("Brig"),
};
#undef A

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
    if (n > 6) /* longer than any abbreviation */
        return false;
    for (size_t i = 0; i < sizeof(abbreviations) / sizeof(abbreviations[0]); i++)
        if (abbreviations[i].len == n && abbreviations[i].word[0] == text[start] &&
            memcmp(abbreviations[i].word, text + start, n) == 0)
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

/* Non-zero when one of the eight bytes of w is c. */
static uint64_t has_byte(uint64_t w, unsigned char c)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t x = w ^ (ones * c);
    return (x - ones) & ~x & highs;
}

/* The next byte at or after i that may end a sentence ('\n', '.', '!' or
 * '?'), or len. News text has one every twenty bytes or so, so the bytes in
 * between are skipped eight at a time: a word holds one of the four when
 * w ^ (c * 0x01..01) has a zero byte. This loop was the tagger's largest
 * cost outside Vectorscan. */
static size_t next_candidate(const char *text, size_t i, size_t len)
{
    for (; len - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, text + i, 8);
        if (has_byte(w, '\n') | has_byte(w, '.') | has_byte(w, '!') | has_byte(w, '?'))
            break;
    }
    while (i < len && text[i] != '\n' && text[i] != '.' && text[i] != '!' && text[i] != '?')
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
