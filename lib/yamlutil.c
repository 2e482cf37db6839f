/* libyaml document helpers shared by the rules, actors and config loaders. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "newsalert/yamlutil.h"

struct key_ref {
    const char *text;
    size_t len;
    int line;
};

static int key_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->line - y->line;
}

/* YAML says a mapping's keys are unique, but libyaml keeps both of a pair
 * and a loader would silently take one: a duplicate is an error at the
 * second one's line. Sorted, so a mapping of many keys costs n log n. */
static int check_duplicates(struct na_yaml *y, struct na_error *err)
{
    for (yaml_node_t *n = y->doc.nodes.start; n < y->doc.nodes.top; n++) {
        if (n->type != YAML_MAPPING_NODE)
            continue;
        size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        if (count < 2)
            continue;
        struct key_ref *keys = calloc(count, sizeof(*keys));
        size_t k = 0;
        if (keys == NULL)
            return na_error_set(err, "%s: out of memory", y->path);
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
             p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *key = na_yaml_node(y, p->key);
            if (key && key->type == YAML_SCALAR_NODE)
                keys[k++] = (struct key_ref){(const char *)key->data.scalar.value,
                                             key->data.scalar.length, na_yaml_line(key)};
        }
        qsort(keys, k, sizeof(*keys), key_cmp);
        for (size_t i = 1; i < k; i++)
            if (keys[i].len == keys[i - 1].len &&
                !memcmp(keys[i].text, keys[i - 1].text, keys[i].len)) {
                na_error_set(err, "%s:%d: duplicate key '%.*s' (first at line %d)",
                             y->path, keys[i].line,
                             (int)(keys[i].len > 60 ? 60 : keys[i].len), keys[i].text,
                             keys[i - 1].line);
                free(keys);
                return -1;
            }
        free(keys);
    }
    return 0;
}

int na_yaml_load(struct na_yaml *y, const char *path, struct na_error *err)
{
    return na_yaml_load_flags(y, path, 0, err);
}

int na_yaml_load_flags(struct na_yaml *y, const char *path, unsigned flags,
                       struct na_error *err)
{
    yaml_parser_t parser;
    FILE *f;

    memset(y, 0, sizeof(*y));
    y->path = path;
    f = fopen(path, "rb");
    if (f == NULL)
        return na_error_set(err, "%s: %s", path, strerror(errno));
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        return na_error_set(err, "%s: out of memory", path);
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &y->doc)) {
        na_error_set(err, "%s:%zu: %s%s%s", path, parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "syntax error",
                     parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        fclose(f);
        return -1;
    }
    yaml_parser_delete(&parser);
    fclose(f);
    y->loaded = true;
    if (yaml_document_get_root_node(&y->doc) == NULL) {
        if (flags & NA_YAML_EMPTY_OK)
            return 0;
        na_yaml_free(y);
        return na_error_set(err, "%s:1: the file is empty", path);
    }
    if (check_duplicates(y, err) < 0) {
        na_yaml_free(y);
        return -1;
    }
    return 0;
}

void na_yaml_free(struct na_yaml *y)
{
    if (y->loaded)
        yaml_document_delete(&y->doc);
    y->loaded = false;
}

yaml_node_t *na_yaml_root(struct na_yaml *y)
{
    return yaml_document_get_root_node(&y->doc);
}

yaml_node_t *na_yaml_node(struct na_yaml *y, int id)
{
    return yaml_document_get_node(&y->doc, id);
}

int na_yaml_line(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

const char *na_yaml_scalar(const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)n->data.scalar.value;
}

static int type_error(struct na_yaml *y, yaml_node_t *n, const char *key,
                      const char *want, struct na_error *err)
{
    const char *v = na_yaml_scalar(n);
    if (v)
        return na_error_set(err, "%s:%d: %s: expected %s, got '%.60s'", y->path,
                            na_yaml_line(n), key, want, v);
    return na_error_set(err, "%s:%d: %s: expected %s, got a %s", y->path, na_yaml_line(n),
                        key, want, n->type == YAML_MAPPING_NODE ? "mapping" : "list");
}

int na_yaml_to_string(struct na_yaml *y, yaml_node_t *n, const char *key,
                      const char **out, struct na_error *err)
{
    const char *v = na_yaml_scalar(n);
    if (v == NULL)
        return type_error(y, n, key, "a string", err);
    *out = v;
    return 0;
}

int na_yaml_to_number(struct na_yaml *y, yaml_node_t *n, const char *key, double *out,
                      struct na_error *err)
{
    const char *v = na_yaml_scalar(n);
    char *end;
    if (v == NULL || *v == '\0')
        return type_error(y, n, key, "a number", err);
    errno = 0;
    double d = strtod(v, &end);
    if (*end != '\0' || errno != 0 || !isfinite(d))
        return type_error(y, n, key, "a number", err);
    *out = d;
    return 0;
}

int na_yaml_to_int(struct na_yaml *y, yaml_node_t *n, const char *key, long long min,
                   long long max, long long *out, struct na_error *err)
{
    const char *v = na_yaml_scalar(n);
    char *end;
    if (v == NULL || *v == '\0')
        return type_error(y, n, key, "an integer", err);
    errno = 0;
    long long i = strtoll(v, &end, 10);
    if (*end != '\0' || errno != 0)
        return type_error(y, n, key, "an integer", err);
    if (i < min || i > max)
        return na_error_set(err, "%s:%d: %s: %lld is out of range [%lld, %lld]", y->path,
                            na_yaml_line(n), key, i, min, max);
    *out = i;
    return 0;
}

int na_yaml_to_bool(struct na_yaml *y, yaml_node_t *n, const char *key, bool *out,
                    struct na_error *err)
{
    const char *v = na_yaml_scalar(n);
    if (v && (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))) {
        *out = true;
        return 0;
    }
    if (v && (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off"))) {
        *out = false;
        return 0;
    }
    return type_error(y, n, key, "true or false", err);
}

int na_yaml_expect(struct na_yaml *y, yaml_node_t *n, yaml_node_type_t type,
                   const char *what, struct na_error *err)
{
    if (n->type == type)
        return 0;
    return type_error(y, n, what, type == YAML_MAPPING_NODE ? "a mapping" : "a list",
                      err);
}
