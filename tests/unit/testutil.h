/* Helpers shared by the unit tests: temporary rule directories and files.
 * Include after <cmocka.h>. */
#ifndef NA_TEST_UTIL_H
#define NA_TEST_UTIL_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "newsalert/ruleset.h"
#include "newsalert/tagger.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* A temporary directory holding rules/ (one YAML file per tag) and
 * actors.yaml. */
struct tmp_rules {
    char root[PATH_MAX];
    char rules[PATH_MAX];
    char actors[PATH_MAX];
};

static inline void tu_write(const char *path, const char *content)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    size_t n = strlen(content);
    assert_int_equal(fwrite(content, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static inline void tu_rules_init(struct tmp_rules *t)
{
    strcpy(t->root, "/tmp/na_test_rulesXXXXXX");
    assert_non_null(mkdtemp(t->root));
    int n = snprintf(t->rules, sizeof(t->rules), "%s/rules", t->root);
    assert_true(n > 0 && (size_t)n < sizeof(t->rules));
    n = snprintf(t->actors, sizeof(t->actors), "%s/actors.yaml", t->root);
    assert_true(n > 0 && (size_t)n < sizeof(t->actors));
    assert_int_equal(mkdir(t->rules, 0700), 0);
}

/* Writes rules/<name> and returns its path in out (PATH_MAX bytes). */
static inline void tu_rules_file(const struct tmp_rules *t, const char *name,
                                 const char *content, char *out)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", t->rules, name);
    assert_true(n > 0 && (size_t)n < sizeof(path));
    tu_write(path, content);
    if (out)
        strcpy(out, path);
}

static inline void tu_actors(const struct tmp_rules *t, const char *content)
{
    tu_write(t->actors, content);
}

static inline void tu_rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char path[PATH_MAX];
        struct stat st;
        int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(path))
            continue;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            tu_rm_dir(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static inline void tu_rules_cleanup(struct tmp_rules *t)
{
    tu_rm_dir(t->root);
}

/* A small actors file: two states and an organisation. */
#define TU_ACTORS                                                                        \
    "actors:\n"                                                                          \
    "  - code: USA\n"                                                                    \
    "    name: United States\n"                                                          \
    "    kind: state\n"                                                                  \
    "    aliases: [United States, U.S., Washington]\n"                                   \
    "    leaders: [Joe Biden]\n"                                                         \
    "  - code: UKR\n"                                                                    \
    "    name: Ukraine\n"                                                                \
    "    kind: state\n"                                                                  \
    "    aliases: [Ukraine, Kyiv]\n"                                                     \
    "  - code: NATO\n"                                                                   \
    "    name: North Atlantic Treaty Organization\n"                                     \
    "    kind: organisation\n"                                                           \
    "    aliases: [NATO]\n"

/* The shipped rules and actors, and a tagger over them with a match limit
 * high enough never to truncate a test article. Returns the tagger (the
 * caller frees it, then *rs), or NULL with the reason printed. */
static inline struct na_tagger *tu_shipped_tagger(struct na_ruleset **rs)
{
    struct na_error err = {{0}};
    *rs = na_ruleset_load(NA_SOURCE_DIR "/config/rules",
                          NA_SOURCE_DIR "/config/actors.yaml", &err);
    if (*rs == NULL) {
        fprintf(stderr, "shipped rules: %s\n", err.msg);
        return NULL;
    }
    struct na_tagger_limits lim = {.max_matches = 100000, .max_evidence = 3};
    struct na_tagger *t = na_tagger_new(*rs, &lim, &err);
    if (t == NULL)
        fprintf(stderr, "tagger: %s\n", err.msg);
    return t;
}

#endif
