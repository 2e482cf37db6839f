/* What a word character is, for the tagger's word boundaries and for the
 * phrase matcher's tokens: one definition, so that a token ends exactly
 * where the tagger sees a boundary. Internal to lib/. */
#ifndef NA_WORDCHAR_H
#define NA_WORDCHAR_H

#include <stdbool.h>
#include <stddef.h>

/* ASCII letters, digits and '_', as \w is without UCP. A table, because
 * both ends of most of the hundred or so matches an article gets are
 * checked. */
static const bool na_word_byte[256] = {
    ['0' ... '9'] = true,
    ['A' ... 'Z'] = true,
    ['_'] = true,
    ['a' ... 'z'] = true,
};

/* Is the character that starts at s[i] (a UTF-8 lead byte) a letter? The
 * general punctuation block (curly quotes, dashes), Latin-1 punctuation and
 * CJK punctuation are not; every other non-ASCII character is taken for one,
 * which is right for the accented Latin, Greek and Cyrillic of names. */
static inline bool na_utf8_letter_at(const unsigned char *s, size_t i, size_t len)
{
    unsigned char c = s[i], d = i + 1 < len ? s[i + 1] : 0;
    if (c == 0xc2)
        return d < 0xa0;
    if (c == 0xc3)
        return d != 0x97 && d != 0xb7;
    if (c == 0xe2)
        return d != 0x80 && d != 0x81;
    if (c == 0xe3)
        return d != 0x80;
    return true;
}

/* The length of the UTF-8 character whose lead byte is c. */
static inline size_t na_utf8_char_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* Is the character at s[i] (a lead byte) a word character? */
static inline bool na_word_char(const unsigned char *s, size_t i, size_t len)
{
    return s[i] < 0x80 ? na_word_byte[s[i]] : na_utf8_letter_at(s, i, len);
}

#endif
