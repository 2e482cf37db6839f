/* Loading rules and actors from YAML and compiling every pattern into one
 * Vectorscan database; see ruleset.h and docs/rules.md. */
#include <dirent.h>
#include <errno.h>
#include <hs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "newsalert/phrases.h"
#include "newsalert/ruleset.h"
#include "newsalert/yamlutil.h"

struct na_ruleset {
    struct na_tag tags[NA_MAX_TAGS];
    size_t n_tags;
    struct na_actor *actors;
    size_t n_actors;
    struct na_pattern *patterns;
    size_t n_patterns;
    hs_database_t *db;  /* the patterns not matched on tokens; NULL if none */
    struct na_phrases *phrases; /* those matched on tokens */
    bool regex_only;    /* every pattern went to Vectorscan */
    bool from_cache; /* db was read from a cache file, not compiled */
    size_t n_term_ids;
    char **files; /* paths that terms point at for their error messages */
    size_t n_files;
};

/* Pattern sources collected before compilation, with where each came from.
 * Entry i is pattern i; one that the phrase matcher took (on_tokens) is not
 * given to Vectorscan. */
struct compile_list {
    char **exprs;
    unsigned *flags;
    unsigned *ids;
    const char **file;
    int *line;
    bool *on_tokens;
    size_t n, cap;
};

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int list_add(struct compile_list *l, char *expr, unsigned flags, const char *file,
                    int line)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 256;
        char **e = realloc(l->exprs, ncap * sizeof(*e));
        if (e)
            l->exprs = e;
        unsigned *f = realloc(l->flags, ncap * sizeof(*f));
        if (f)
            l->flags = f;
        unsigned *i = realloc(l->ids, ncap * sizeof(*i));
        if (i)
            l->ids = i;
        const char **fi = realloc(l->file, ncap * sizeof(*fi));
        if (fi)
            l->file = fi;
        int *li = realloc(l->line, ncap * sizeof(*li));
        if (li)
            l->line = li;
        bool *ot = realloc(l->on_tokens, ncap * sizeof(*ot));
        if (ot)
            l->on_tokens = ot;
        if (!e || !f || !i || !fi || !li || !ot) {
            free(expr);
            return -1;
        }
        l->cap = ncap;
    }
    l->exprs[l->n] = expr;
    l->flags[l->n] = flags;
    l->ids[l->n] = (unsigned)l->n;
    l->file[l->n] = file;
    l->line[l->n] = line;
    l->on_tokens[l->n] = false;
    l->n++;
    return 0;
}

static void list_free(struct compile_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->exprs[i]);
    free(l->exprs);
    free(l->flags);
    free(l->ids);
    free(l->file);
    free(l->line);
    free(l->on_tokens);
}

/* Offers the pattern just added to the compile list to the phrase matcher;
 * when it takes it, Vectorscan will not see it. */
static int offer_to_phrases(struct na_ruleset *rs, struct compile_list *cl,
                            struct na_error *err)
{
    size_t i = cl->n - 1;
    struct na_pattern *pat = &rs->patterns[i];
    const char *why = "the phrase matcher is switched off";
    int rc = 0;
    if (!rs->regex_only)
        rc = na_phrases_add(rs->phrases, (unsigned)i, cl->exprs[i],
                            (cl->flags[i] & HS_FLAG_CASELESS) != 0, pat->bound_start,
                            pat->bound_end, &why);
    if (rc < 0)
        return na_error_set(err, "out of memory");
    pat->on_tokens = rc == 1;
    pat->why_regex = rc == 1 ? NULL : why;
    cl->on_tokens[i] = pat->on_tokens;
    return 0;
}

static int is_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

/* A phrase becomes a regex: metacharacters escaped; any run of spaces or
 * hyphens between words matches any run of white space or hyphens ("air
 * defence" = "air-defence"); an apostrophe matches the typographic one too; a
 * '*' at the end of a word stands for any word ending ("pledg*"); and word
 * boundaries are asserted where the phrase begins or ends with a word
 * character, so "aid" never matches inside "said". */
static char *phrase_to_regex(const char *phrase, bool *bound_start, bool *bound_end)
{
    size_t len = strlen(phrase);
    /* The longest expansion is the apostrophe's, 10 bytes. */
    char *out = malloc(len * 20 + 16), *o = out;
    if (out == NULL)
        return NULL;
    while (*phrase == ' ')
        phrase++, len--;
    while (len > 0 && phrase[len - 1] == ' ')
        len--;
    *bound_start = len > 0 && is_word((unsigned char)phrase[0]);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)phrase[i];
        if (c == ' ' || c == '-') {
            while (i + 1 < len && (phrase[i + 1] == ' ' || phrase[i + 1] == '-'))
                i++;
            o += sprintf(o, "[\\s\\-]+");
        } else if (c == '*' && (i + 1 == len || phrase[i + 1] == ' ')) {
            o += sprintf(o, "\\w*");
        } else if (c == '\'') {
            o += sprintf(o, "(?:'|\xe2\x80\x99)"); /* ’ itself: UTF-8 mode */
        } else if (is_word(c) || c >= 0x80) {
            *o++ = (char)c;
        } else {
            o += sprintf(o, "\\x%02x", c);
        }
    }
    *bound_end =
        len > 0 && (is_word((unsigned char)phrase[len - 1]) || phrase[len - 1] == '*');
    *o = '\0';
    return out;
}

/* A regex's leading and trailing \b become checks in the tagger (see
 * na_pattern); an inner \b stays in the expression. */
static char *regex_strip_bounds(const char *re, bool *bound_start, bool *bound_end)
{
    size_t len = strlen(re);
    *bound_start = len >= 2 && re[0] == '\\' && re[1] == 'b';
    if (*bound_start) {
        re += 2;
        len -= 2;
    }
    /* A trailing \b counts only if its backslash is not itself escaped. */
    size_t slashes = 0;
    if (len >= 2 && re[len - 1] == 'b')
        for (size_t i = len - 1; i > 0 && re[i - 1] == '\\'; i--)
            slashes++;
    *bound_end = slashes % 2 == 1;
    if (*bound_end)
        len -= 2;
    char *out = malloc(len + 1);
    if (out) {
        memcpy(out, re, len);
        out[len] = '\0';
    }
    return out;
}

/* Conservatively: an expression of plain characters and \x escapes matches
 * one length only; anything else may match several. */
static bool expr_variable_width(const char *e)
{
    for (; *e; e++) {
        unsigned char c = (unsigned char)*e;
        if (c == '\\') {
            if (e[1] != 'x')
                return true;
            e++;
        } else if (strchr("?*+{|[.()", c) || c >= 0x80) {
            return true;
        }
    }
    return false;
}

/* Aliases are proper nouns: matched exactly, as whole words (the tagger
 * checks the boundaries). A pure literal compiles fast, and its length gives
 * the start of a match without Vectorscan's costlier start-of-match mode. */
static char *literal_to_regex(const char *lit)
{
    size_t len = strlen(lit);
    char *out = malloc(len * 4 + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)lit[i];
        if (is_word(c) || c >= 0x80)
            *o++ = (char)c;
        else
            o += sprintf(o, "\\x%02x", c);
    }
    *o = '\0';
    return out;
}

static const char *intern_file(struct na_ruleset *rs, const char *path)
{
    char **f = realloc(rs->files, (rs->n_files + 1) * sizeof(*f));
    if (f == NULL)
        return NULL;
    rs->files = f;
    f[rs->n_files] = strdup(path);
    return f[rs->n_files] ? f[rs->n_files++] : NULL;
}

/* near: a list of 2 to NA_MAX_PARTS regexes that must all match in one
 * sentence. Cheaper and clearer than one regex with a bounded gap, which
 * Vectorscan cannot compile with start-of-match reporting. */
static int load_near(struct na_yaml *y, yaml_node_t *v, struct na_term *t,
                     const char *file, struct na_error *err)
{
    size_t len = 0, n;
    if (na_yaml_expect(y, v, YAML_SEQUENCE_NODE, "near", err) < 0)
        return -1;
    n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n < 2 || n > NA_MAX_PARTS)
        return na_error_set(err, "%s:%d: near: needs 2 to %d patterns, not %zu", file,
                            na_yaml_line(v), NA_MAX_PARTS, n);
    for (size_t i = 0; i < n; i++) {
        const char *s;
        yaml_node_t *item = na_yaml_node(y, v->data.sequence.items.start[i]);
        if (na_yaml_to_string(y, item, "near", &s, err) < 0)
            return -1;
        if (*s == '\0')
            return na_error_set(err, "%s:%d: near: a pattern must not be empty", file,
                                na_yaml_line(item));
        if ((t->parts[i] = xstrdup(s)) == NULL)
            return na_error_set(err, "out of memory");
        t->n_parts++;
        len += strlen(s) + 3;
    }
    if ((t->source = malloc(len + 1)) == NULL)
        return na_error_set(err, "out of memory");
    t->source[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(t->source, " ~ ");
        strcat(t->source, t->parts[i]);
    }
    t->is_regex = true;
    return 0;
}

/* One term or exclusion: a mapping, or a bare string standing for a phrase
 * of weight 1. */
static int load_term(struct na_yaml *y, yaml_node_t *n, bool exclusion, struct na_term *t,
                     const char *file, struct na_error *err)
{
    const char *what = exclusion ? "exclude" : "terms";

    memset(t, 0, sizeof(*t));
    t->weight = 1.0;
    t->file = file;
    t->line = na_yaml_line(n);
    if (n->type == YAML_SCALAR_NODE) {
        t->source = xstrdup(na_yaml_scalar(n));
        return t->source ? 0 : na_error_set(err, "out of memory");
    }
    if (na_yaml_expect(y, n, YAML_MAPPING_NODE, what, err) < 0)
        return -1;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = na_yaml_node(y, p->key), *v = na_yaml_node(y, p->value);
        const char *key = na_yaml_scalar(k), *s;
        if (key == NULL)
            return na_error_set(err, "%s:%d: %s: keys must be strings", file,
                                na_yaml_line(k), what);
        if (!strcmp(key, "near")) {
            if (t->source)
                return na_error_set(err,
                                    "%s:%d: %s: give one of 'phrase', 'regex' or 'near'",
                                    file, na_yaml_line(k), what);
            if (load_near(y, v, t, file, err) < 0)
                return -1;
        } else if (!strcmp(key, "phrase") || !strcmp(key, "regex")) {
            if (t->source)
                return na_error_set(err,
                                    "%s:%d: %s: give one of 'phrase', 'regex' or 'near'",
                                    file, na_yaml_line(k), what);
            if (na_yaml_to_string(y, v, key, &s, err) < 0)
                return -1;
            if (*s == '\0')
                return na_error_set(err, "%s:%d: %s: must not be empty", file,
                                    na_yaml_line(v), key);
            t->source = xstrdup(s);
            t->is_regex = key[0] == 'r';
        } else if (!strcmp(key, "weight") && !exclusion) {
            if (na_yaml_to_number(y, v, key, &t->weight, err) < 0)
                return -1;
        } else if (!strcmp(key, "case")) {
            if (na_yaml_to_bool(y, v, key, &t->case_sensitive, err) < 0)
                return -1;
        } else if (!strcmp(key, "veto") && exclusion) {
            if (na_yaml_to_string(y, v, key, &s, err) < 0)
                return -1;
            if (!strcmp(s, "within"))
                t->veto_within = true;
            else if (strcmp(s, "overlap") != 0)
                return na_error_set(err,
                                    "%s:%d: veto: expected overlap or within, got '%.40s'",
                                    file, na_yaml_line(v), s);
        } else if (!strcmp(key, "context") && !exclusion) {
            if (na_yaml_to_string(y, v, key, &s, err) < 0)
                return -1;
            if (!strcmp(s, "none"))
                t->context = NA_CONTEXT_NONE;
            else if (!strcmp(s, "sentence"))
                t->context = NA_CONTEXT_SENTENCE;
            else if (!strcmp(s, "article"))
                t->context = NA_CONTEXT_ARTICLE;
            else
                return na_error_set(err,
                                    "%s:%d: context: expected none, sentence or article, "
                                    "got '%.40s'",
                                    file, na_yaml_line(v), s);
        } else {
            return na_error_set(err, "%s:%d: %s: unknown key '%.40s'", file,
                                na_yaml_line(k), what, key);
        }
    }
    if (t->source == NULL)
        return na_error_set(err, "%s:%d: %s: needs 'phrase', 'regex' or 'near'", file,
                            t->line, what);
    return 0;
}

static int load_term_list(struct na_yaml *y, yaml_node_t *n, bool exclusion,
                          struct na_term **out, size_t *count, const char *file,
                          struct na_error *err)
{
    if (na_yaml_expect(y, n, YAML_SEQUENCE_NODE, exclusion ? "exclude" : "terms", err) <
        0)
        return -1;
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    *out = calloc(len ? len : 1, sizeof(**out));
    if (*out == NULL)
        return na_error_set(err, "out of memory");
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = na_yaml_node(y, n->data.sequence.items.start[i]);
        if (load_term(y, item, exclusion, &(*out)[i], file, err) < 0) {
            free((*out)[i].source);
            for (size_t p = 0; p < (*out)[i].n_parts; p++)
                free((*out)[i].parts[p]);
            return -1;
        }
        (*count)++;
    }
    return 0;
}

static bool valid_tag_name(const char *s)
{
    if (*s == '\0' || strlen(s) > 32)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return false;
    return true;
}

static int load_tag(struct na_ruleset *rs, const char *path, struct na_error *err)
{
    struct na_yaml y;
    struct na_tag *tag = &rs->tags[rs->n_tags];
    const char *file = intern_file(rs, path);
    int line_threshold = 0;
    bool have_threshold = false;

    if (file == NULL)
        return na_error_set(err, "out of memory");
    if (na_yaml_load(&y, file, err) < 0)
        return -1;
    memset(tag, 0, sizeof(*tag));
    tag->headline_weight = 1.5;
    rs->n_tags++; /* so that na_ruleset_free releases a half-loaded tag */
    yaml_node_t *root = na_yaml_root(&y);
    if (na_yaml_expect(&y, root, YAML_MAPPING_NODE, "rules file", err) < 0)
        goto fail;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = na_yaml_node(&y, p->key), *v = na_yaml_node(&y, p->value);
        const char *key = na_yaml_scalar(k), *s;
        if (key == NULL) {
            na_error_set(err, "%s:%d: keys must be strings", file, na_yaml_line(k));
            goto fail;
        }
        if (!strcmp(key, "tag")) {
            if (na_yaml_to_string(&y, v, key, &s, err) < 0)
                goto fail;
            if (!valid_tag_name(s)) {
                na_error_set(err,
                             "%s:%d: tag: '%.40s' is not a valid name (a-z, 0-9, _ or -)",
                             file, na_yaml_line(v), s);
                goto fail;
            }
            free(tag->name);
            tag->name = xstrdup(s);
        } else if (!strcmp(key, "description")) {
            if (na_yaml_to_string(&y, v, key, &s, err) < 0)
                goto fail;
            free(tag->description);
            tag->description = xstrdup(s);
        } else if (!strcmp(key, "threshold")) {
            if (na_yaml_to_number(&y, v, key, &tag->threshold, err) < 0)
                goto fail;
            have_threshold = true;
            line_threshold = na_yaml_line(v);
        } else if (!strcmp(key, "headline_weight")) {
            if (na_yaml_to_number(&y, v, key, &tag->headline_weight, err) < 0)
                goto fail;
            if (tag->headline_weight <= 0) {
                na_error_set(err, "%s:%d: headline_weight: must be > 0", file,
                             na_yaml_line(v));
                goto fail;
            }
        } else if (!strcmp(key, "terms")) {
            if (load_term_list(&y, v, false, &tag->terms, &tag->n_terms, file, err) < 0)
                goto fail;
        } else if (!strcmp(key, "exclude")) {
            if (load_term_list(&y, v, true, &tag->excludes, &tag->n_excludes, file, err) <
                0)
                goto fail;
        } else {
            na_error_set(err, "%s:%d: unknown key '%.40s'", file, na_yaml_line(k), key);
            goto fail;
        }
    }
    if (tag->name == NULL) {
        na_error_set(err, "%s:%d: missing key 'tag'", file, na_yaml_line(root));
        goto fail;
    }
    if (!have_threshold) {
        na_error_set(err, "%s:%d: missing key 'threshold'", file, na_yaml_line(root));
        goto fail;
    }
    if (tag->threshold <= 0) {
        na_error_set(err, "%s:%d: threshold: must be > 0", file, line_threshold);
        goto fail;
    }
    if (tag->n_terms == 0) {
        na_error_set(err, "%s:%d: tag '%s' has no terms", file, na_yaml_line(root),
                     tag->name);
        goto fail;
    }
    for (size_t i = 0; i + 1 < rs->n_tags; i++)
        if (!strcmp(rs->tags[i].name, tag->name)) {
            na_error_set(err, "%s: tag '%s' is defined twice", file, tag->name);
            goto fail;
        }
    /* Alerts go out on alert.<tag>, and a ZeroMQ subscription is a prefix:
     * with tags aid and aid_cuts, a subscriber to alert.aid would get both.
     * No tag name may begin another. */
    for (size_t i = 0; i + 1 < rs->n_tags; i++) {
        const char *a = rs->tags[i].name, *b = tag->name;
        size_t na = strlen(a), nb = strlen(b);
        if (!strncmp(a, b, na < nb ? na : nb)) {
            na_error_set(err,
                         "%s: tag '%s' begins with tag '%s' (or the other way round): a "
                         "subscriber to alert.%s would also receive alert.%s, as ZeroMQ "
                         "subscriptions are prefixes; rename one",
                         file, tag->name, a, na < nb ? a : b, na < nb ? b : a);
            goto fail;
        }
    }
    na_yaml_free(&y);
    return 0;
fail:
    na_yaml_free(&y);
    return -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_rules_dir(struct na_ruleset *rs, const char *dir, struct na_error *err)
{
    DIR *d = opendir(dir);
    char *names[NA_MAX_TAGS + 1];
    size_t n = 0;
    int rc = 0;

    if (d == NULL)
        return na_error_set(err, "%s: %s", dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
            continue;
        if (n == NA_MAX_TAGS) {
            rc = na_error_set(err, "%s: more than %d rules files", dir, NA_MAX_TAGS);
            break;
        }
        size_t plen = strlen(dir) + len + 2;
        names[n] = malloc(plen);
        if (names[n] == NULL) {
            rc = na_error_set(err, "out of memory");
            break;
        }
        snprintf(names[n], plen, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (rc == 0 && n == 0)
        rc = na_error_set(err, "%s: no rules files (*.yaml)", dir);
    qsort(names, n, sizeof(names[0]), cmp_str);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = load_tag(rs, names[i], err);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return rc;
}

static bool valid_code(const char *s)
{
    if (*s == '\0' || strlen(s) > 24)
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* Adds an actor's aliases or leaders to the compile list. */
static int add_aliases(struct na_yaml *y, yaml_node_t *seq, unsigned actor,
                       struct compile_list *cl, struct na_ruleset *rs, const char *file,
                       const char *key, struct na_error *err)
{
    if (na_yaml_expect(y, seq, YAML_SEQUENCE_NODE, key, err) < 0)
        return -1;
    for (yaml_node_item_t *it = seq->data.sequence.items.start;
         it < seq->data.sequence.items.top; it++) {
        yaml_node_t *n = na_yaml_node(y, *it);
        char *expr;
        const char *s;
        struct na_pattern pat = {.kind = NA_PAT_ACTOR, .index = actor};
        /* A literal alias matches its UTF-8 bytes exactly, accents and all,
         * without UTF-8 mode, which would triple the compile time of the
         * thousand or so aliases; regex aliases get it, as terms do. */
        unsigned flags = 0;
        if (n->type == YAML_MAPPING_NODE &&
            n->data.mapping.pairs.top - n->data.mapping.pairs.start == 1 &&
            !strcmp(na_yaml_scalar(na_yaml_node(y, n->data.mapping.pairs.start->key))
                        ?: "",
                    "regex")) {
            if (na_yaml_to_string(y, na_yaml_node(y, n->data.mapping.pairs.start->value),
                                  "regex", &s, err) < 0)
                return -1;
            expr = regex_strip_bounds(s, &pat.bound_start, &pat.bound_end);
            flags = HS_FLAG_SOM_LEFTMOST | HS_FLAG_UTF8;
            pat.variable_width = expr && expr_variable_width(expr);
        } else {
            if (na_yaml_to_string(y, n, key, &s, err) < 0)
                return -1;
            if (*s == '\0')
                return na_error_set(err, "%s:%d: %s: an alias must not be empty", file,
                                    na_yaml_line(n), key);
            expr = literal_to_regex(s);
            pat.literal_len = (unsigned)strlen(s);
            pat.bound_start = is_word((unsigned char)s[0]);
            pat.bound_end = is_word((unsigned char)s[strlen(s) - 1]);
        }
        if (expr == NULL || list_add(cl, expr, flags, file, na_yaml_line(n)) < 0)
            return na_error_set(err, "out of memory");
        rs->patterns[cl->n - 1] = pat;
        if (offer_to_phrases(rs, cl, err) < 0)
            return -1;
    }
    return 0;
}

static int grow_patterns(struct na_ruleset *rs, size_t want)
{
    if (want <= rs->n_patterns)
        return 0;
    size_t ncap = rs->n_patterns ? rs->n_patterns : 256;
    while (ncap < want)
        ncap *= 2;
    struct na_pattern *p = realloc(rs->patterns, ncap * sizeof(*p));
    if (p == NULL)
        return -1;
    rs->patterns = p;
    rs->n_patterns = ncap; /* capacity until compile time, then the count */
    return 0;
}

static int load_actors(struct na_ruleset *rs, const char *path, struct compile_list *cl,
                       struct na_error *err)
{
    struct na_yaml y;
    const char *file = intern_file(rs, path);
    int rc = -1;

    if (file == NULL)
        return na_error_set(err, "out of memory");
    if (na_yaml_load(&y, file, err) < 0)
        return -1;
    yaml_node_t *root = na_yaml_root(&y), *list = NULL;
    if (na_yaml_expect(&y, root, YAML_MAPPING_NODE, "actors file", err) < 0)
        goto out;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         p < root->data.mapping.pairs.top; p++) {
        const char *key = na_yaml_scalar(na_yaml_node(&y, p->key));
        if (key && !strcmp(key, "actors")) {
            list = na_yaml_node(&y, p->value);
        } else {
            na_error_set(err, "%s:%d: unknown key '%.40s'", file,
                         na_yaml_line(na_yaml_node(&y, p->key)), key ? key : "?");
            goto out;
        }
    }
    if (list == NULL) {
        na_error_set(err, "%s:1: missing key 'actors'", file);
        goto out;
    }
    if (na_yaml_expect(&y, list, YAML_SEQUENCE_NODE, "actors", err) < 0)
        goto out;
    size_t count =
        (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    rs->actors = calloc(count ? count : 1, sizeof(*rs->actors));
    if (rs->actors == NULL) {
        na_error_set(err, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *n = na_yaml_node(&y, list->data.sequence.items.start[i]);
        struct na_actor *a = &rs->actors[rs->n_actors++];
        yaml_node_t *aliases[2] = {NULL, NULL};
        if (na_yaml_expect(&y, n, YAML_MAPPING_NODE, "actor", err) < 0)
            goto out;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
             p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = na_yaml_node(&y, p->key), *v = na_yaml_node(&y, p->value);
            const char *key = na_yaml_scalar(k), *s;
            if (key == NULL)
                key = "?";
            if (!strcmp(key, "code")) {
                if (na_yaml_to_string(&y, v, key, &s, err) < 0)
                    goto out;
                if (!valid_code(s)) {
                    na_error_set(err, "%s:%d: code: '%.40s' is not A-Z, 0-9 or _", file,
                                 na_yaml_line(v), s);
                    goto out;
                }
                free(a->code);
                a->code = xstrdup(s);
            } else if (!strcmp(key, "name")) {
                if (na_yaml_to_string(&y, v, key, &s, err) < 0)
                    goto out;
                free(a->name);
                a->name = xstrdup(s);
            } else if (!strcmp(key, "kind")) {
                if (na_yaml_to_string(&y, v, key, &s, err) < 0)
                    goto out;
                if (!strcmp(s, "state")) {
                    a->kind = NA_ACTOR_STATE;
                } else if (!strcmp(s, "organisation") || !strcmp(s, "organization")) {
                    a->kind = NA_ACTOR_ORGANISATION;
                } else {
                    na_error_set(
                        err, "%s:%d: kind: expected state or organisation, got '%.40s'",
                        file, na_yaml_line(v), s);
                    goto out;
                }
            } else if (!strcmp(key, "aliases")) {
                aliases[0] = v;
            } else if (!strcmp(key, "leaders")) {
                aliases[1] = v;
            } else {
                na_error_set(err, "%s:%d: actor: unknown key '%.40s'", file,
                             na_yaml_line(k), key);
                goto out;
            }
        }
        if (a->code == NULL || a->name == NULL || a->kind == 0) {
            na_error_set(err, "%s:%d: actor: needs code, name and kind", file,
                         na_yaml_line(n));
            goto out;
        }
        for (size_t j = 0; j + 1 < rs->n_actors; j++)
            if (!strcmp(rs->actors[j].code, a->code)) {
                na_error_set(err, "%s:%d: actor code '%s' is used twice", file,
                             na_yaml_line(n), a->code);
                goto out;
            }
        for (int j = 0; j < 2; j++) {
            if (aliases[j] == NULL)
                continue;
            size_t more = (size_t)(aliases[j]->type == YAML_SEQUENCE_NODE
                                       ? aliases[j]->data.sequence.items.top -
                                             aliases[j]->data.sequence.items.start
                                       : 0);
            if (grow_patterns(rs, cl->n + more) < 0) {
                na_error_set(err, "out of memory");
                goto out;
            }
            if (add_aliases(&y, aliases[j], (unsigned)(rs->n_actors - 1), cl, rs, file,
                            j ? "leaders" : "aliases", err) < 0)
                goto out;
        }
    }
    rc = 0;
out:
    na_yaml_free(&y);
    return rc;
}

static int add_pattern(struct na_ruleset *rs, struct compile_list *cl, char *expr,
                       const struct na_term *term, struct na_pattern pat,
                       struct na_error *err)
{
    /* UTF-8 mode, so that a class such as [eé] or a '.' takes a whole
     * character ("communiqué"); the texts are valid UTF-8 by then. */
    unsigned flags = HS_FLAG_SOM_LEFTMOST | HS_FLAG_UTF8;
    if (!term->case_sensitive)
        flags |= HS_FLAG_CASELESS;
    if (expr != NULL)
        pat.variable_width = expr_variable_width(expr);
    if (expr == NULL || list_add(cl, expr, flags, term->file, term->line) < 0)
        return na_error_set(err, "out of memory");
    rs->patterns[cl->n - 1] = pat;
    return offer_to_phrases(rs, cl, err);
}

static int add_tag_patterns(struct na_ruleset *rs, struct compile_list *cl,
                            struct na_error *err)
{
    for (unsigned t = 0; t < rs->n_tags; t++) {
        struct na_tag *tag = &rs->tags[t];
        if (grow_patterns(rs, cl->n + (tag->n_terms + tag->n_excludes) * NA_MAX_PARTS) <
            0)
            return na_error_set(err, "out of memory");
        for (int pass = 0; pass < 2; pass++) {
            struct na_term *list = pass ? tag->excludes : tag->terms;
            size_t n = pass ? tag->n_excludes : tag->n_terms;
            for (size_t i = 0; i < n; i++) {
                struct na_term *term = &list[i];
                struct na_pattern pat = {.kind = pass ? NA_PAT_EXCLUDE : NA_PAT_TERM,
                                         .tag = t,
                                         .index = (unsigned)i,
                                         .term_id = (unsigned)rs->n_term_ids++};
                if (term->n_parts == 0) {
                    char *expr = term->is_regex
                                     ? regex_strip_bounds(term->source, &pat.bound_start,
                                                          &pat.bound_end)
                                     : phrase_to_regex(term->source, &pat.bound_start,
                                                       &pat.bound_end);
                    if (add_pattern(rs, cl, expr, term, pat, err) < 0)
                        return -1;
                    continue;
                }
                pat.n_parts = (unsigned)term->n_parts;
                for (size_t p = 0; p < term->n_parts; p++) {
                    pat.part = (unsigned)p;
                    char *expr = regex_strip_bounds(term->parts[p], &pat.bound_start,
                                                    &pat.bound_end);
                    if (add_pattern(rs, cl, expr, term, pat, err) < 0)
                        return -1;
                }
            }
        }
    }
    return 0;
}

/* The compiled database depends only on what goes into hs_compile_multi:
 * the expressions, their flags and ids, and the Vectorscan build. That is
 * the cache key (FNV-1a, 64 bits: the input is the operator's own rules, not
 * an adversary's). */
static uint64_t compile_key(const struct compile_list *cl)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const char *ver = hs_version();
#define MIX(p, n)                                                                        \
    for (size_t k_ = 0; k_ < (n); k_++)                                                  \
        h = (h ^ ((const unsigned char *)(p))[k_]) * 0x100000001b3ull;
    MIX(ver, strlen(ver) + 1);
    for (size_t i = 0; i < cl->n; i++) {
        if (cl->on_tokens[i])
            continue;
        MIX(cl->exprs[i], strlen(cl->exprs[i]) + 1);
        MIX(&cl->flags[i], sizeof(cl->flags[i]));
        MIX(&cl->ids[i], sizeof(cl->ids[i]));
    }
#undef MIX
    return h;
}

static hs_database_t *cache_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    hs_database_t *db = NULL;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        char *buf = n > 0 && n < (1L << 30) ? malloc((size_t)n) : NULL;
        rewind(f);
        /* hs_deserialize_database checks the version and the platform, and
         * refuses a damaged file: the caller then compiles. */
        if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n &&
            hs_deserialize_database(buf, (size_t)n, &db) != HS_SUCCESS)
            db = NULL;
        free(buf);
    }
    fclose(f);
    return db;
}

static void cache_write(const char *dir, const char *path, const hs_database_t *db)
{
    char *bytes = NULL, tmp[4200];
    size_t n = 0;
    DIR *dh;
    struct dirent *e;

    if (mkdir(dir, 0750) < 0 && errno != EEXIST)
        return;
    /* One database is kept: the one for the rules in service. */
    if ((dh = opendir(dir)) != NULL) {
        while ((e = readdir(dh)) != NULL)
            if (!strncmp(e->d_name, "rules-", 6) && strstr(e->d_name, ".hsdb")) {
                snprintf(tmp, sizeof(tmp), "%s/%s", dir, e->d_name);
                unlink(tmp);
            }
        closedir(dh);
    }
    if (hs_serialize_database(db, &bytes, &n) != HS_SUCCESS)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (f) {
        bool ok = fwrite(bytes, 1, n, f) == n;
        ok = fclose(f) == 0 && ok;
        if (!ok || rename(tmp, path) < 0)
            unlink(tmp);
    }
    free(bytes);
}

struct na_ruleset *na_ruleset_load(const char *rules_dir, const char *actors_file,
                                   struct na_error *err)
{
    return na_ruleset_load_cached(rules_dir, actors_file, NULL, err);
}

struct na_ruleset *na_ruleset_load_cached(const char *rules_dir, const char *actors_file,
                                          const char *cache_dir, struct na_error *err)
{
    struct na_ruleset_options o = {.cache_dir = cache_dir};
    return na_ruleset_load_opts(rules_dir, actors_file, &o, err);
}

/* Vectorscan's share of the compile list, without the patterns matched on
 * tokens; their ids stay the pattern numbers. */
static int compile_regexes(struct na_ruleset *rs, const struct compile_list *cl,
                           const char *rules_dir, struct na_error *err)
{
    const char **exprs = malloc((cl->n ? cl->n : 1) * sizeof(*exprs));
    unsigned *flags = malloc((cl->n ? cl->n : 1) * sizeof(*flags));
    unsigned *ids = malloc((cl->n ? cl->n : 1) * sizeof(*ids));
    hs_compile_error_t *cerr = NULL;
    unsigned n = 0;
    int rc = -1;

    if (!exprs || !flags || !ids) {
        na_error_set(err, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < cl->n; i++)
        if (!cl->on_tokens[i]) {
            exprs[n] = cl->exprs[i];
            flags[n] = cl->flags[i];
            ids[n++] = cl->ids[i];
        }
    if (n == 0) {
        rc = 0; /* every pattern is a phrase: no database */
        goto out;
    }
    if (hs_compile_multi(exprs, flags, ids, n, HS_MODE_BLOCK, NULL, &rs->db, &cerr) !=
        HS_SUCCESS) {
        if (cerr->expression >= 0) {
            unsigned at = ids[cerr->expression];
            na_error_set(err, "%s:%d: invalid pattern: %s", cl->file[at], cl->line[at],
                         cerr->message);
        } else {
            na_error_set(err, "%s: cannot compile the rules: %s", rules_dir,
                         cerr->message);
        }
        hs_free_compile_error(cerr);
        goto out;
    }
    rc = 0;
out:
    free(exprs);
    free(flags);
    free(ids);
    return rc;
}

struct na_ruleset *na_ruleset_load_opts(const char *rules_dir, const char *actors_file,
                                        const struct na_ruleset_options *opts,
                                        struct na_error *err)
{
    struct na_ruleset *rs = calloc(1, sizeof(*rs));
    struct compile_list cl = {0};
    const char *cache_dir = opts ? opts->cache_dir : NULL;
    char path[4096] = "";

    if (rs == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    rs->regex_only = opts && opts->regex_only;
    if ((rs->phrases = na_phrases_new()) == NULL) {
        na_error_set(err, "out of memory");
        goto fail;
    }
    if (load_rules_dir(rs, rules_dir, err) < 0 ||
        load_actors(rs, actors_file, &cl, err) < 0 || add_tag_patterns(rs, &cl, err) < 0)
        goto fail;
    if (na_phrases_finish(rs->phrases) < 0) {
        na_error_set(err, "out of memory");
        goto fail;
    }
    if (cache_dir) {
        snprintf(path, sizeof(path), "%s/rules-%016llx.hsdb", cache_dir,
                 (unsigned long long)compile_key(&cl));
        rs->db = cache_read(path);
        rs->from_cache = rs->db != NULL;
    }
    if (rs->db == NULL && compile_regexes(rs, &cl, rules_dir, err) < 0)
        goto fail;
    if (cache_dir && !rs->from_cache && rs->db)
        cache_write(cache_dir, path, rs->db);
    rs->n_patterns = cl.n;
    list_free(&cl);
    return rs;
fail:
    list_free(&cl);
    na_ruleset_free(rs);
    return NULL;
}

bool na_ruleset_from_cache(const struct na_ruleset *rs)
{
    return rs->from_cache;
}

static void free_terms(struct na_term *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].source);
        for (size_t p = 0; p < t[i].n_parts; p++)
            free(t[i].parts[p]);
    }
    free(t);
}

void na_ruleset_free(struct na_ruleset *rs)
{
    if (rs == NULL)
        return;
    hs_free_database(rs->db);
    na_phrases_free(rs->phrases);
    free(rs->patterns);
    for (size_t i = 0; i < rs->n_actors; i++) {
        free(rs->actors[i].code);
        free(rs->actors[i].name);
    }
    free(rs->actors);
    for (size_t i = 0; i < rs->n_tags; i++) {
        free(rs->tags[i].name);
        free(rs->tags[i].description);
        free_terms(rs->tags[i].terms, rs->tags[i].n_terms);
        free_terms(rs->tags[i].excludes, rs->tags[i].n_excludes);
    }
    for (size_t i = 0; i < rs->n_files; i++)
        free(rs->files[i]);
    free(rs->files);
    free(rs);
}

size_t na_ruleset_tag_count(const struct na_ruleset *rs)
{
    return rs->n_tags;
}

const struct na_tag *na_ruleset_tag(const struct na_ruleset *rs, size_t i)
{
    return i < rs->n_tags ? &rs->tags[i] : NULL;
}

size_t na_ruleset_actor_count(const struct na_ruleset *rs)
{
    return rs->n_actors;
}

const struct na_actor *na_ruleset_actor(const struct na_ruleset *rs, size_t i)
{
    return i < rs->n_actors ? &rs->actors[i] : NULL;
}

size_t na_ruleset_pattern_count(const struct na_ruleset *rs)
{
    return rs->n_patterns;
}

size_t na_ruleset_term_count(const struct na_ruleset *rs)
{
    return rs->n_term_ids;
}

const struct na_pattern *na_ruleset_pattern(const struct na_ruleset *rs, unsigned id)
{
    return id < rs->n_patterns ? &rs->patterns[id] : NULL;
}

const struct na_pattern *na_ruleset_patterns(const struct na_ruleset *rs)
{
    return rs->patterns;
}

const void *na_ruleset_database(const struct na_ruleset *rs)
{
    return rs->db;
}

const struct na_phrases *na_ruleset_phrases(const struct na_ruleset *rs)
{
    return rs->phrases;
}

int na_ruleset_tag_find(const struct na_ruleset *rs, const char *name)
{
    for (size_t i = 0; i < rs->n_tags; i++)
        if (!strcmp(rs->tags[i].name, name))
            return (int)i;
    return -1;
}
