/* Decoding and validation of feed articles (newsalert.v1.Article). The
 * daemon, the CLI and the fuzzers all go through na_article_decode, so a
 * message is judged the same way everywhere. */
#ifndef NEWSALERT_ARTICLE_H
#define NEWSALERT_ARTICLE_H

#include <stddef.h>
#include <stdint.h>

#include "newsalert/v1/article.pb-c.h"

/* Why an input was refused. The names (na_reject_name) are stable: they are
 * log keys and metric labels. */
enum na_reject {
    NA_REJECT_NONE = 0,
    NA_REJECT_MALFORMED,    /* not a valid protobuf Article */
    NA_REJECT_MISSING_ID,   /* id absent or empty */
    NA_REJECT_EMPTY_TEXT,   /* headline and body both empty */
    NA_REJECT_OVERSIZE,     /* message or a field over its limit */
    NA_REJECT_INVALID_UTF8, /* a string field is not UTF-8, or holds NUL */
    NA_REJECT_FRAME_COUNT,  /* not [Article] or [topic, Article] */
    NA_REJECT_TOO_MANY_AUTHORS,
    NA_REJECT_COUNT
};

const char *na_reject_name(enum na_reject why);

struct na_limits {
    size_t max_article_bytes; /* encoded size */
    size_t max_headline_bytes;
    size_t max_body_bytes;
    size_t max_authors;
};

/* Fills in the documented defaults (1 MiB, 4 KiB, 512 KiB, 64). */
void na_limits_default(struct na_limits *limits);

/* Decodes and validates buf[0..len). On success returns an article the caller
 * owns (free with na_article_free); buf is not retained. On failure returns
 * NULL, sets *why and writes a one-line reason into msg (when msg_len > 0). */
Newsalert__V1__Article *na_article_decode(const uint8_t *buf, size_t len,
                                          const struct na_limits *limits,
                                          enum na_reject *why, char *msg, size_t msg_len);

/* Validates an article that was built rather than decoded (by `pack`). */
enum na_reject na_article_check(const Newsalert__V1__Article *a,
                                const struct na_limits *limits, char *msg,
                                size_t msg_len);

/* Accepts NULL. */
void na_article_free(Newsalert__V1__Article *a);

#endif
