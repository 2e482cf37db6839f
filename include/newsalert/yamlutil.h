/* Small helpers over libyaml's document API for the rules, actors and
 * daemon config loaders: typed scalar reads whose errors name file, line and
 * key, and mapping walks that refuse unknown keys. */
#ifndef NEWSALERT_YAMLUTIL_H
#define NEWSALERT_YAMLUTIL_H

#include <stdbool.h>
#include <yaml.h>

#include "newsalert/error.h"

struct na_yaml {
    yaml_document_t doc;
    const char *path; /* borrowed */
    bool loaded;
};

/* Parses path into y. Returns -1 with "path:line: ..." in err on a syntax
 * error, a duplicate key in a mapping, or an empty file. */
int na_yaml_load(struct na_yaml *y, const char *path, struct na_error *err);
/* The same; with NA_YAML_EMPTY_OK a file of nothing but comments and blank
 * lines loads, and na_yaml_root() is then NULL. */
#define NA_YAML_EMPTY_OK 1u
int na_yaml_load_flags(struct na_yaml *y, const char *path, unsigned flags,
                       struct na_error *err);
void na_yaml_free(struct na_yaml *y);

yaml_node_t *na_yaml_root(struct na_yaml *y);
yaml_node_t *na_yaml_node(struct na_yaml *y, int id);
int na_yaml_line(const yaml_node_t *n);
/* The scalar's text, or NULL when n is not a scalar. Borrowed from y. */
const char *na_yaml_scalar(const yaml_node_t *n);

/* Converters: each returns -1 with "path:line: key: expected ..." in err. */
int na_yaml_to_string(struct na_yaml *y, yaml_node_t *n, const char *key,
                      const char **out, struct na_error *err);
int na_yaml_to_number(struct na_yaml *y, yaml_node_t *n, const char *key, double *out,
                      struct na_error *err);
int na_yaml_to_int(struct na_yaml *y, yaml_node_t *n, const char *key, long long min,
                   long long max, long long *out, struct na_error *err);
int na_yaml_to_bool(struct na_yaml *y, yaml_node_t *n, const char *key, bool *out,
                    struct na_error *err);
/* Checks that n is a mapping (or a sequence); what names it in the error. */
int na_yaml_expect(struct na_yaml *y, yaml_node_t *n, yaml_node_type_t type,
                   const char *what, struct na_error *err);

#endif
