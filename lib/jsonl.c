/* Articles as JSON objects: the readable source of packed feeds and of the
 * labelled corpus. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/jsonl.h"
#include "newsalert/v1/article.pb-c.h"

static bool ignored_key(const char *k)
{
    return k[0] == '_' || !strcmp(k, "labels") || !strcmp(k, "split") ||
           !strcmp(k, "style") || !strcmp(k, "region") || !strcmp(k, "form") ||
           !strcmp(k, "negative");
}

static int want_string(json_t *v, const char *key, char **out, struct na_error *err)
{
    if (!json_is_string(v))
        return na_error_set(err, "%s: expected a string", key);
    *out = (char *)json_string_value(v);
    return 0;
}

static int want_int(json_t *v, const char *key, json_int_t min, json_int_t *out,
                    struct na_error *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return na_error_set(err, "%s: expected an integer >= %lld", key, (long long)min);
    *out = json_integer_value(v);
    return 0;
}

json_t *na_json_int64(int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return json_string(buf);
}

json_t *na_json_uint64(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return json_string(buf);
}

/* A decimal string, whole: no sign for unsigned, no spaces, no junk. */
static bool parse_decimal(const char *s, bool is_signed, int64_t *i, uint64_t *u)
{
    char *end;
    if (*s == '\0' || (!is_signed && *s == '-') || *s == '+' || *s == ' ')
        return false;
    errno = 0;
    if (is_signed)
        *i = strtoll(s, &end, 10);
    else
        *u = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0';
}

int na_json_get_int64(json_t *v, const char *key, int64_t min, int64_t *out,
                      struct na_error *err)
{
    int64_t n;
    uint64_t unused;
    if (json_is_integer(v))
        n = json_integer_value(v);
    else if (!json_is_string(v) || !parse_decimal(json_string_value(v), true, &n, &unused))
        return na_error_set(err, "%s: expected an integer (or one as a decimal string)",
                            key);
    if (n < min)
        return na_error_set(err, "%s: expected an integer >= %" PRId64, key, min);
    *out = n;
    return 0;
}

int na_json_get_uint64(json_t *v, const char *key, uint64_t *out, struct na_error *err)
{
    int64_t unused;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && parse_decimal(json_string_value(v), false, &unused, out))
        return 0;
    return na_error_set(err,
                        "%s: expected an integer >= 0 (or one as a decimal string)", key);
}

int na_jsonl_article_pack(json_t *obj, uint8_t **buf, size_t *len, struct na_error *err)
{
    Newsalert__V1__Article a;
    char *authors[256];
    const char *key;
    json_t *v;
    json_int_t n = 0;

    if (!json_is_object(obj))
        return na_error_set(err, "expected a JSON object");
    newsalert__v1__article__init(&a);
    json_object_foreach(obj, key, v)
    {
        if (!strcmp(key, "id")) {
            if (want_string(v, key, &a.id, err) < 0)
                return -1;
        } else if (!strcmp(key, "source")) {
            if (want_string(v, key, &a.source, err) < 0)
                return -1;
        } else if (!strcmp(key, "url")) {
            if (want_string(v, key, &a.url, err) < 0)
                return -1;
        } else if (!strcmp(key, "headline")) {
            if (want_string(v, key, &a.headline, err) < 0)
                return -1;
        } else if (!strcmp(key, "body")) {
            if (want_string(v, key, &a.body, err) < 0)
                return -1;
        } else if (!strcmp(key, "language")) {
            if (want_string(v, key, &a.language, err) < 0)
                return -1;
        } else if (!strcmp(key, "published_at_ms")) {
            if (na_json_get_int64(v, key, INT64_MIN, &a.published_at_ms, err) < 0)
                return -1;
        } else if (!strcmp(key, "feed_seq")) {
            if (na_json_get_uint64(v, key, &a.feed_seq, err) < 0)
                return -1;
        } else if (!strcmp(key, "revision")) {
            if (want_int(v, key, 0, &n, err) < 0 || n > UINT32_MAX)
                return na_error_set(err, "revision: expected an integer 0..4294967295");
            a.revision = (uint32_t)n;
        } else if (!strcmp(key, "authors")) {
            size_t i;
            json_t *item;
            if (!json_is_array(v) || json_array_size(v) > 256)
                return na_error_set(err,
                                    "authors: expected a list of at most 256 strings");
            json_array_foreach(v, i, item)
            {
                if (want_string(item, "authors", &authors[i], err) < 0)
                    return -1;
            }
            a.authors = authors;
            a.n_authors = json_array_size(v);
        } else if (!ignored_key(key)) {
            return na_error_set(err, "unknown key '%.40s'", key);
        }
    }
    *len = newsalert__v1__article__get_packed_size(&a);
    *buf = malloc(*len ? *len : 1);
    if (*buf == NULL)
        return na_error_set(err, "out of memory");
    newsalert__v1__article__pack(&a, *buf);
    return 0;
}
