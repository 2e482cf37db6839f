/* UTF-8 validation, used on every text field of an incoming article. */
#ifndef NEWSALERT_UTF8_H
#define NEWSALERT_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). */
bool na_utf8_valid(const char *s, size_t len);

/* The largest n <= len such that s[0..n) does not end inside a multi-byte
 * sequence: where to cut valid UTF-8 without splitting a character. */
size_t na_utf8_floor(const char *s, size_t len);

#endif
