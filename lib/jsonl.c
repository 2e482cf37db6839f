/* Articles as JSON objects: the readable source of packed feeds and of the
 * labelled corpus. */
#include <stdbool.h>
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
            if (want_int(v, key, INT64_MIN, &n, err) < 0)
                return -1;
            a.published_at_ms = n;
        } else if (!strcmp(key, "feed_seq")) {
            if (want_int(v, key, 0, &n, err) < 0)
                return -1;
            a.feed_seq = (uint64_t)n;
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
