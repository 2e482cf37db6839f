/* Decoding and validating feed articles; see article.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "newsalert/article.h"
#include "newsalert/utf8.h"

static const char *const reject_names[NA_REJECT_COUNT] = {
    [NA_REJECT_NONE] = "none",
    [NA_REJECT_MALFORMED] = "malformed_protobuf",
    [NA_REJECT_MISSING_ID] = "missing_id",
    [NA_REJECT_EMPTY_TEXT] = "empty_text",
    [NA_REJECT_OVERSIZE] = "oversize",
    [NA_REJECT_INVALID_UTF8] = "invalid_utf8",
    [NA_REJECT_FRAME_COUNT] = "frame_count",
    [NA_REJECT_TOO_MANY_AUTHORS] = "too_many_authors",
};

const char *na_reject_name(enum na_reject why)
{
    if ((unsigned)why >= NA_REJECT_COUNT)
        return "unknown";
    return reject_names[why];
}

void na_limits_default(struct na_limits *limits)
{
    limits->max_article_bytes = 1u << 20;
    limits->max_headline_bytes = 4096;
    limits->max_body_bytes = 512u << 10;
    limits->max_authors = 64;
}

static enum na_reject fail(enum na_reject why, char *msg, size_t msg_len, const char *fmt,
                           ...) __attribute__((format(printf, 4, 5)));

static enum na_reject fail(enum na_reject why, char *msg, size_t msg_len, const char *fmt,
                           ...)
{
    if (msg_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msg_len, fmt, ap);
        va_end(ap);
    }
    return why;
}

/* protobuf-c's decoder does not check UTF-8, so every string is checked
 * here; the tagger and the JSON writers may then trust them. */
static bool str_valid(const char *s)
{
    return s == NULL || na_utf8_valid(s, strlen(s));
}

/* The checks after decoding; the UTF-8 ones are skipped when the wire walk
 * below has done them already. */
static enum na_reject check(const Newsalert__V1__Article *a, const struct na_limits *limits,
                            bool check_utf8, char *msg, size_t msg_len)
{
    const char *fields[] = {a->id, a->source, a->url, a->headline, a->body, a->language};
    const char *names[] = {"id", "source", "url", "headline", "body", "language"};

    for (size_t i = 0; check_utf8 && i < sizeof(fields) / sizeof(fields[0]); i++)
        if (!str_valid(fields[i]))
            return fail(NA_REJECT_INVALID_UTF8, msg, msg_len, "%s is not valid UTF-8",
                        names[i]);
    for (size_t i = 0; check_utf8 && i < a->n_authors; i++)
        if (!str_valid(a->authors[i]))
            return fail(NA_REJECT_INVALID_UTF8, msg, msg_len,
                        "author %zu is not valid UTF-8", i);
    if (a->id == NULL || a->id[0] == '\0')
        return fail(NA_REJECT_MISSING_ID, msg, msg_len, "article has no id");
    size_t hl = a->headline ? strlen(a->headline) : 0;
    size_t bl = a->body ? strlen(a->body) : 0;
    if (hl == 0 && bl == 0)
        return fail(NA_REJECT_EMPTY_TEXT, msg, msg_len,
                    "article %s has an empty headline and body", a->id);
    if (hl > limits->max_headline_bytes)
        return fail(NA_REJECT_OVERSIZE, msg, msg_len,
                    "article %s: headline of %zu bytes is over the limit", a->id, hl);
    if (bl > limits->max_body_bytes)
        return fail(NA_REJECT_OVERSIZE, msg, msg_len,
                    "article %s: body of %zu bytes is over the limit", a->id, bl);
    if (a->n_authors > limits->max_authors)
        return fail(NA_REJECT_TOO_MANY_AUTHORS, msg, msg_len,
                    "article %s has %zu authors, over the limit", a->id, a->n_authors);
    return NA_REJECT_NONE;
}

enum na_reject na_article_check(const Newsalert__V1__Article *a,
                                const struct na_limits *limits, char *msg, size_t msg_len)
{
    return check(a, limits, true, msg, msg_len);
}

/* protobuf-c does not check everything the protobuf wire format requires,
 * and it refuses a proto3 string that is not UTF-8 as if the whole message
 * were malformed. So every message is also walked once at the wire level:
 * the walk finds what protobuf-c lets through (a field number 0 written as a
 * multi-byte varint key, which protobuf forbids and which protobuf-c would
 * re-encode as bytes it then refuses itself; a NUL byte inside a string,
 * which every C string after decoding would silently cut), and names the
 * real reason when a string field's bytes are the only thing wrong. */
struct wire_walk {
    bool malformed; /* not a well-formed protobuf message */
    bool bad_utf8;  /* a string field of Article is not UTF-8 */
    bool nul;       /* a string field of Article holds a NUL byte */
};

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

static void walk(const uint8_t *buf, size_t len, struct wire_walk *w)
{
    const uint8_t *p = buf, *end = buf + len;

    *w = (struct wire_walk){false, false, false};
    while (p < end) {
        uint64_t key, n;
        if (!read_varint(&p, end, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) {
            w->malformed = true;
            return;
        }
        switch (key & 7) {
        case 0:
            if (!read_varint(&p, end, &n)) {
                w->malformed = true;
                return;
            }
            break;
        case 1:
        case 5: {
            size_t size = (key & 7) == 1 ? 8 : 4;
            if ((size_t)(end - p) < size) {
                w->malformed = true;
                return;
            }
            p += size;
            break;
        }
        case 2: {
            if (!read_varint(&p, end, &n) || n > (uint64_t)(end - p)) {
                w->malformed = true;
                return;
            }
            uint64_t field = key >> 3;
            bool is_string = (field >= 1 && field <= 5) || field == 7 || field == 8;
            if (is_string && !na_utf8_valid((const char *)p, (size_t)n))
                w->bad_utf8 = true;
            if (is_string && memchr(p, 0, (size_t)n) != NULL)
                w->nul = true;
            p += n;
            break;
        }
        default:
            w->malformed = true;
            return;
        }
    }
}

Newsalert__V1__Article *na_article_decode(const uint8_t *buf, size_t len,
                                          const struct na_limits *limits,
                                          enum na_reject *why, char *msg, size_t msg_len)
{
    struct wire_walk w;

    if (len > limits->max_article_bytes) {
        *why = fail(NA_REJECT_OVERSIZE, msg, msg_len,
                    "message of %zu bytes is over the limit", len);
        return NULL;
    }
    Newsalert__V1__Article *a = newsalert__v1__article__unpack(NULL, len, buf);
    walk(buf, len, &w);
    if (a == NULL && !w.malformed && w.bad_utf8) {
        *why = fail(NA_REJECT_INVALID_UTF8, msg, msg_len,
                    "a string field of the article is not valid UTF-8");
        return NULL;
    }
    if (a == NULL || w.malformed) {
        na_article_free(a);
        *why = fail(NA_REJECT_MALFORMED, msg, msg_len,
                    "%zu bytes are not a newsalert.v1.Article", len);
        return NULL;
    }
    /* U+0000 is valid UTF-8, but not text: the tagger, the alert and the
     * logs would all see the string cut at it. */
    if (w.nul || w.bad_utf8) {
        na_article_free(a);
        *why = fail(NA_REJECT_INVALID_UTF8, msg, msg_len,
                    w.nul ? "a string field of the article is not UTF-8 text: it holds a "
                            "NUL byte"
                          : "a string field of the article is not valid UTF-8");
        return NULL;
    }
    /* The walk has checked every string field's UTF-8. */
    *why = check(a, limits, false, msg, msg_len);
    if (*why != NA_REJECT_NONE) {
        na_article_free(a);
        return NULL;
    }
    return a;
}

void na_article_free(Newsalert__V1__Article *a)
{
    if (a)
        newsalert__v1__article__free_unpacked(a, NULL);
}
