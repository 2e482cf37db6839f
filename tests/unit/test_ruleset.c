/* Unit tests for lib/ruleset.c (and lib/yamlutil.c through it): loading
 * rules and actors, and the errors for bad files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "newsalert/ruleset.h"
#include "testutil.h"

#ifndef NA_SOURCE_DIR
#error "NA_SOURCE_DIR must be defined (see tests/unit/CMakeLists.txt)"
#endif

/* A valid tag, for the files that are not under test. */
#define GOOD_TAG "tag: good\nthreshold: 1\nterms: [fine]\n"

/* Checks that msg starts with "<path>:<line>:" and contains want. */
static void check_error(const char *msg, const char *path, int line, const char *want)
{
    char prefix[PATH_MAX + 32];
    snprintf(prefix, sizeof(prefix), "%s:%d:", path, line);
    if (strncmp(msg, prefix, strlen(prefix)) != 0 || strstr(msg, want) == NULL)
        print_error("error message: [%s]\nwanted prefix [%s] and [%s]\n", msg, prefix,
                    want);
    assert_true(strncmp(msg, prefix, strlen(prefix)) == 0);
    assert_non_null(strstr(msg, want));
}

/* Loads a rules dir holding only `rules` (as t.yaml) and the small actors
 * file; expects failure with "<t.yaml>:<line>: ...<want>...". */
static void expect_rules_error(const char *rules, int line, const char *want)
{
    struct tmp_rules t;
    struct na_error err = {{0}};
    char path[PATH_MAX];

    tu_rules_init(&t);
    tu_rules_file(&t, "t.yaml", rules, path);
    tu_actors(&t, TU_ACTORS);
    struct na_ruleset *rs = na_ruleset_load(t.rules, t.actors, &err);
    if (rs != NULL)
        print_error("loaded rules that should fail:\n%s\n", rules);
    assert_null(rs);
    check_error(err.msg, path, line, want);
    tu_rules_cleanup(&t);
}

/* Loads one good rules file and `actors`; expects failure in the actors
 * file. */
static void expect_actors_error(const char *actors, int line, const char *want)
{
    struct tmp_rules t;
    struct na_error err = {{0}};

    tu_rules_init(&t);
    tu_rules_file(&t, "good.yaml", GOOD_TAG, NULL);
    tu_actors(&t, actors);
    struct na_ruleset *rs = na_ruleset_load(t.rules, t.actors, &err);
    assert_null(rs);
    check_error(err.msg, t.actors, line, want);
    tu_rules_cleanup(&t);
}

static void test_yaml_syntax_error(void **state)
{
    (void)state;
    /* An unclosed flow sequence. */
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms: [a, b\n"
                       "exclude: [c]\n",
                       4, "");
    /* A tab where indentation is expected. */
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "\t- a\n",
                       4, "");
    /* A mapping key inside a plain scalar. */
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms: a: b\n",
                       3, "");
}

static void test_empty_file(void **state)
{
    (void)state;
    expect_rules_error("", 1, "empty");
    expect_rules_error("# only a comment\n", 1, "empty");
}

static void test_unknown_key(void **state)
{
    (void)state;
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "thresold: 2\n"
                       "terms: [a]\n",
                       3, "unknown key 'thresold'");
    /* In a term. */
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "  - phrase: a\n"
                       "    wieght: 2\n",
                       5, "unknown key 'wieght'");
    /* weight and context are not keys of an exclusion. */
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms: [a]\n"
                       "exclude:\n"
                       "  - {phrase: b, weight: 2}\n",
                       5, "unknown key 'weight'");
}

static void test_wrong_type(void **state)
{
    (void)state;
    expect_rules_error("tag: x\n"
                       "threshold: abc\n"
                       "terms: [a]\n",
                       2, "threshold: expected a number, got 'abc'");
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "headline_weight: [1]\n"
                       "terms: [a]\n",
                       3, "headline_weight: expected a number");
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms: a\n",
                       3, "expected a list");
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "  - {phrase: a, weight: heavy}\n",
                       4, "weight: expected a number, got 'heavy'");
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "  - {phrase: a, case: maybe}\n",
                       4, "case: expected true or false");
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "  - {phrase: a, context: paragraph}\n",
                       4, "context: expected none, sentence or article");
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "  - {phrase: [a, b]}\n",
                       4, "phrase: expected a string");
    expect_rules_error("- tag: x\n", 1, "expected a mapping");
}

static void test_threshold(void **state)
{
    (void)state;
    expect_rules_error("tag: x\n"
                       "threshold: 0\n"
                       "terms: [a]\n",
                       2, "threshold: must be > 0");
    expect_rules_error("tag: x\n"
                       "terms: [a]\n"
                       "threshold: -2.5\n",
                       3, "threshold: must be > 0");
    expect_rules_error("tag: x\n"
                       "terms: [a]\n",
                       1, "missing key 'threshold'");
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "headline_weight: 0\n"
                       "terms: [a]\n",
                       3, "headline_weight: must be > 0");
}

static void test_invalid_regex(void **state)
{
    (void)state;
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "  - phrase: fine\n"
                       "  - regex: '(unclosed'\n"
                       "    weight: 2\n",
                       5, "invalid pattern");
    /* In an exclusion, in flow style. */
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms: [fine]\n"
                       "exclude:\n"
                       "  - {regex: 'a[b'}\n",
                       5, "invalid pattern");
    /* In a part of a near term. */
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "  - {phrase: fine}\n"
                       "  - {near: ['ok', 'bad)']}\n",
                       5, "invalid pattern");
}

static void test_missing_tag(void **state)
{
    (void)state;
    expect_rules_error("threshold: 1\n"
                       "terms: [a]\n",
                       1, "missing key 'tag'");
    expect_rules_error("tag: Not Valid\n"
                       "threshold: 1\n"
                       "terms: [a]\n",
                       1, "not a valid name");
    expect_rules_error("tag: x\n"
                       "threshold: 1\n",
                       1, "has no terms");
}

static void test_phrase_and_regex(void **state)
{
    (void)state;
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "  - phrase: a\n"
                       "    regex: b\n",
                       5, "give one of 'phrase', 'regex' or 'near'");
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "  - {regex: a, near: [b, c]}\n",
                       4, "give one of 'phrase', 'regex' or 'near'");
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "  - weight: 2\n",
                       4, "needs 'phrase', 'regex' or 'near'");
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "  - phrase: ''\n",
                       4, "must not be empty");
}

static void test_near_parts(void **state)
{
    (void)state;
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "  - near: ['\\bone\\b']\n",
                       4, "near: needs 2 to 4 patterns, not 1");
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "  - near: [a, b, c, d, e]\n",
                       4, "needs 2 to 4 patterns, not 5");
    expect_rules_error("tag: x\n"
                       "threshold: 1\n"
                       "terms:\n"
                       "  - near: a\n",
                       4, "expected a list");
}

static void test_duplicate_tag(void **state)
{
    (void)state;
    struct tmp_rules t;
    struct na_error err = {{0}};
    char path[PATH_MAX];

    tu_rules_init(&t);
    tu_rules_file(&t, "a.yaml", GOOD_TAG, NULL);
    tu_rules_file(&t, "b.yaml", GOOD_TAG, path);
    tu_actors(&t, TU_ACTORS);
    assert_null(na_ruleset_load(t.rules, t.actors, &err));
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "defined twice"));
    tu_rules_cleanup(&t);
}

/* alert.aid is a prefix of alert.aid_cuts: one subscription would get both. */
static void test_prefix_tags(void **state)
{
    (void)state;
    struct tmp_rules t;
    struct na_error err = {{0}};
    struct na_ruleset *rs;

    tu_rules_init(&t);
    tu_rules_file(&t, "a.yaml", "tag: aid\nthreshold: 1\nterms: [fine]\n", NULL);
    tu_rules_file(&t, "b.yaml", "tag: aid_cuts\nthreshold: 1\nterms: [fine]\n", NULL);
    tu_actors(&t, TU_ACTORS);
    assert_null(na_ruleset_load(t.rules, t.actors, &err));
    assert_non_null(strstr(err.msg, "subscriber to alert.aid would also receive alert.aid_cuts"));
    tu_rules_cleanup(&t);
    /* Sharing a beginning is not being a prefix. */
    tu_rules_init(&t);
    tu_rules_file(&t, "a.yaml", "tag: aid_a\nthreshold: 1\nterms: [fine]\n", NULL);
    tu_rules_file(&t, "b.yaml", "tag: aid_b\nthreshold: 1\nterms: [fine]\n", NULL);
    tu_actors(&t, TU_ACTORS);
    rs = na_ruleset_load(t.rules, t.actors, &err);
    assert_non_null(rs);
    na_ruleset_free(rs);
    tu_rules_cleanup(&t);
}

/* libyaml keeps both of a duplicated key; the loader refuses the file. */
static void test_duplicate_key(void **state)
{
    (void)state;
    struct tmp_rules t;
    struct na_error err = {{0}};
    char path[PATH_MAX];

    tu_rules_init(&t);
    tu_rules_file(&t, "a.yaml", "tag: good\nthreshold: 1\nterms: [fine]\nthreshold: 9\n", path);
    tu_actors(&t, TU_ACTORS);
    assert_null(na_ruleset_load(t.rules, t.actors, &err));
    check_error(err.msg, path, 4, "duplicate key 'threshold' (first at line 2)");
    tu_rules_cleanup(&t);
}

static void test_dir_errors(void **state)
{
    (void)state;
    struct tmp_rules t;
    struct na_error err = {{0}};

    tu_rules_init(&t);
    tu_actors(&t, TU_ACTORS);
    /* No *.yaml at all (other files are ignored). */
    tu_rules_file(&t, "README.txt", "not rules", NULL);
    tu_rules_file(&t, ".hidden.yaml", "garbage: [", NULL);
    assert_null(na_ruleset_load(t.rules, t.actors, &err));
    assert_non_null(strstr(err.msg, "no rules files"));
    /* A directory that does not exist. */
    memset(&err, 0, sizeof(err));
    assert_null(na_ruleset_load("/nonexistent/rules", t.actors, &err));
    assert_non_null(strstr(err.msg, "/nonexistent/rules"));
    /* An actors file that does not exist. */
    tu_rules_file(&t, "good.yaml", GOOD_TAG, NULL);
    memset(&err, 0, sizeof(err));
    assert_null(na_ruleset_load(t.rules, "/nonexistent/actors.yaml", &err));
    assert_non_null(strstr(err.msg, "/nonexistent/actors.yaml"));
    tu_rules_cleanup(&t);
}

static void test_actor_errors(void **state)
{
    (void)state;
    expect_actors_error("actors:\n"
                        "  - code: USA\n"
                        "    name: United States\n"
                        "    kind: state\n"
                        "    nickname: Uncle Sam\n",
                        5, "unknown key 'nickname'");
    expect_actors_error("people:\n"
                        "  - code: USA\n",
                        1, "unknown key 'people'");
    expect_actors_error("actors:\n"
                        "  - code: USA\n"
                        "    name: United States\n"
                        "    kind: country\n",
                        4, "kind: expected state or organisation");
    expect_actors_error("actors:\n"
                        "  - code: usa\n"
                        "    name: United States\n"
                        "    kind: state\n",
                        2, "code: 'usa'");
    expect_actors_error("actors:\n"
                        "  - code: USA\n"
                        "    kind: state\n",
                        2, "needs code, name and kind");
    expect_actors_error("actors:\n"
                        "  - {code: USA, name: United States, kind: state}\n"
                        "  - {code: USA, name: America, kind: state}\n",
                        3, "used twice");
    expect_actors_error("actors:\n"
                        "  - code: USA\n"
                        "    name: United States\n"
                        "    kind: state\n"
                        "    aliases: [US, '']\n",
                        5, "must not be empty");
    expect_actors_error("actors:\n"
                        "  - code: USA\n"
                        "    name: United States\n"
                        "    kind: state\n"
                        "    aliases: United States\n",
                        5, "aliases: expected a list");
    expect_actors_error("actors:\n"
                        "  - code: USA\n"
                        "    name: United States\n"
                        "    kind: state\n"
                        "    aliases:\n"
                        "      - {regex: '(bad'}\n",
                        6, "invalid pattern");
}

static void test_valid_small_set(void **state)
{
    (void)state;
    struct tmp_rules t;
    struct na_error err = {{0}};

    tu_rules_init(&t);
    /* Loaded in file-name order: b_second.yaml after a_first.yaml. */
    tu_rules_file(&t, "b_second.yaml",
                  "tag: second\n"
                  "threshold: 2\n"
                  "terms:\n"
                  "  - plain words\n"
                  "  - {near: ['\\bfoo\\b', 'bar', 'baz'], weight: 1.5}\n",
                  NULL);
    tu_rules_file(&t, "a_first.yaml",
                  "tag: first\n"
                  "description: >\n"
                  "  The first tag.\n"
                  "threshold: 4.5\n"
                  "headline_weight: 2\n"
                  "terms:\n"
                  "  - {phrase: military aid, weight: 3}\n"
                  "  - {regex: '\\bpledg(e|ed)\\b', weight: -1, context: sentence}\n"
                  "  - {phrase: AIDS, case: true, context: article}\n"
                  "exclude:\n"
                  "  - {phrase: hearing aid}\n"
                  "  - {regex: 'first[- ]aid', case: false}\n",
                  NULL);
    tu_rules_file(&t, "notes.txt", "ignored", NULL);
    tu_actors(&t, TU_ACTORS);

    struct na_ruleset *rs = na_ruleset_load(t.rules, t.actors, &err);
    if (rs == NULL)
        print_error("load failed: %s\n", err.msg);
    assert_non_null(rs);

    assert_int_equal(na_ruleset_tag_count(rs), 2);
    const struct na_tag *a = na_ruleset_tag(rs, 0), *b = na_ruleset_tag(rs, 1);
    assert_null(na_ruleset_tag(rs, 2));
    assert_string_equal(a->name, "first");
    assert_string_equal(b->name, "second");
    assert_int_equal(na_ruleset_tag_find(rs, "first"), 0);
    assert_int_equal(na_ruleset_tag_find(rs, "second"), 1);
    assert_int_equal(na_ruleset_tag_find(rs, "third"), -1);
    assert_non_null(a->description);
    assert_non_null(strstr(a->description, "The first tag."));
    assert_true(a->threshold == 4.5);
    assert_true(a->headline_weight == 2.0);
    assert_true(b->headline_weight == 1.5); /* the default */

    assert_int_equal(a->n_terms, 3);
    assert_int_equal(a->n_excludes, 2);
    assert_string_equal(a->terms[0].source, "military aid");
    assert_false(a->terms[0].is_regex);
    assert_true(a->terms[0].weight == 3.0);
    assert_int_equal(a->terms[0].context, NA_CONTEXT_NONE);
    assert_int_equal(a->terms[0].line, 7);
    assert_non_null(strstr(a->terms[0].file, "a_first.yaml"));
    assert_true(a->terms[1].is_regex);
    assert_true(a->terms[1].weight == -1.0);
    assert_int_equal(a->terms[1].context, NA_CONTEXT_SENTENCE);
    assert_true(a->terms[2].case_sensitive);
    assert_int_equal(a->terms[2].context, NA_CONTEXT_ARTICLE);
    assert_false(a->terms[0].case_sensitive);
    assert_string_equal(a->excludes[0].source, "hearing aid");
    assert_true(a->excludes[1].is_regex);

    assert_int_equal(b->n_terms, 2);
    assert_int_equal(b->n_excludes, 0);
    assert_string_equal(b->terms[0].source, "plain words");
    assert_true(b->terms[0].weight == 1.0);
    assert_int_equal(b->terms[1].n_parts, 3);
    assert_string_equal(b->terms[1].parts[0], "\\bfoo\\b");
    assert_string_equal(b->terms[1].parts[2], "baz");
    assert_string_equal(b->terms[1].source, "\\bfoo\\b ~ bar ~ baz");
    assert_true(b->terms[1].weight == 1.5);
    assert_int_equal(b->terms[0].n_parts, 0);

    assert_int_equal(na_ruleset_actor_count(rs), 3);
    assert_string_equal(na_ruleset_actor(rs, 0)->code, "USA");
    assert_string_equal(na_ruleset_actor(rs, 0)->name, "United States");
    assert_int_equal(na_ruleset_actor(rs, 0)->kind, NA_ACTOR_STATE);
    assert_string_equal(na_ruleset_actor(rs, 1)->code, "UKR");
    assert_string_equal(na_ruleset_actor(rs, 2)->code, "NATO");
    assert_int_equal(na_ruleset_actor(rs, 2)->kind, NA_ACTOR_ORGANISATION);
    assert_null(na_ruleset_actor(rs, 3));

    /* Terms and exclusions: 3 + 2 + 2 ids; patterns: one per alias (4 + 2 +
     * 1 = 7), one per plain term or exclusion (3 + 2 + 1) and one per near
     * part (3). */
    assert_int_equal(na_ruleset_term_count(rs), 7);
    assert_int_equal(na_ruleset_pattern_count(rs), 7 + 6 + 3);
    assert_non_null(na_ruleset_database(rs));
    size_t n_actor = 0, n_term = 0, n_excl = 0;
    for (unsigned i = 0; i < na_ruleset_pattern_count(rs); i++) {
        const struct na_pattern *p = na_ruleset_pattern(rs, i);
        assert_non_null(p);
        if (p->kind == NA_PAT_ACTOR) {
            n_actor++;
            assert_true(p->index < 3);
        } else {
            assert_true(p->term_id < 7);
            assert_true(p->tag < 2);
            if (p->kind == NA_PAT_TERM)
                n_term++;
            else
                n_excl++;
        }
    }
    assert_null(na_ruleset_pattern(rs, (unsigned)na_ruleset_pattern_count(rs)));
    assert_int_equal(n_actor, 7);
    assert_int_equal(n_term, 3 + 1 + 3);
    assert_int_equal(n_excl, 2);

    na_ruleset_free(rs);
    na_ruleset_free(NULL);
    tu_rules_cleanup(&t);
}

static void test_too_many_files(void **state)
{
    (void)state;
    struct tmp_rules t;
    struct na_error err = {{0}};
    char name[32], body[96];

    tu_rules_init(&t);
    tu_actors(&t, TU_ACTORS);
    for (int i = 0; i < NA_MAX_TAGS; i++) {
        snprintf(name, sizeof(name), "t%02d.yaml", i);
        snprintf(body, sizeof(body), "tag: t%02d\nthreshold: 1\nterms: [word%d]\n", i, i);
        tu_rules_file(&t, name, body, NULL);
    }
    struct na_ruleset *rs = na_ruleset_load(t.rules, t.actors, &err);
    if (rs == NULL)
        print_error("%s\n", err.msg);
    assert_non_null(rs);
    assert_int_equal(na_ruleset_tag_count(rs), NA_MAX_TAGS);
    assert_string_equal(na_ruleset_tag(rs, NA_MAX_TAGS - 1)->name, "t15");
    na_ruleset_free(rs);

    tu_rules_file(&t, "t99.yaml", "tag: t99\nthreshold: 1\nterms: [x]\n", NULL);
    memset(&err, 0, sizeof(err));
    assert_null(na_ruleset_load(t.rules, t.actors, &err));
    assert_non_null(strstr(err.msg, "more than"));
    tu_rules_cleanup(&t);
}

/* Phrases are rewritten into regexes: every kind of character must fit,
 * however many there are (an apostrophe has the longest expansion). The load
 * runs in a child process, so that a heap overflow there cannot corrupt the
 * other tests; the child reports through its exit status. */
static int load_odd_phrases(const struct tmp_rules *t)
{
    struct na_error err = {{0}};
    struct na_ruleset *rs = na_ruleset_load(t->rules, t->actors, &err);
    if (rs == NULL) {
        fprintf(stderr, "load failed: %s\n", err.msg);
        return 1;
    }
    const struct na_tag *tag = na_ruleset_tag(rs, 0);
    int rc = tag->n_terms == 5 &&
                     strcmp(tag->terms[0].source, "''''''''''''''''''''''''''''''''") == 0
                 ? 0
                 : 2;
    na_ruleset_free(rs);
    return rc;
}

static void test_phrase_expansion(void **state)
{
    (void)state;
    struct tmp_rules t;

    tu_rules_init(&t);
    tu_actors(&t, TU_ACTORS);
    tu_rules_file(&t, "odd.yaml",
                  "tag: odd\n"
                  "threshold: 1\n"
                  "terms:\n"
                  "  - phrase: \"''''''''''''''''''''''''''''''''\"\n"
                  "  - phrase: \"(.)[.]{.}|.^$+?\\\\/(.)[.]{.}|.^$+?\"\n"
                  "  - phrase: \"a - b -- c   d\"\n"
                  "  - phrase: \"rock'n'roll's\"\n"
                  "  - phrase: \"pledg*\"\n",
                  NULL);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(load_odd_phrases(&t));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        print_error("loading a phrase of 32 apostrophes: %s %d\n",
                    WIFSIGNALED(status) ? "killed by signal" : "exit status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    tu_rules_cleanup(&t);
}

static void test_shipped_config(void **state)
{
    (void)state;
    struct na_error err = {{0}};
    struct na_ruleset *rs = na_ruleset_load(NA_SOURCE_DIR "/config/rules",
                                            NA_SOURCE_DIR "/config/actors.yaml", &err);
    if (rs == NULL)
        print_error("shipped config failed to load: %s\n", err.msg);
    assert_non_null(rs);
    assert_true(na_ruleset_tag_count(rs) >= 3);
    assert_true(na_ruleset_tag_find(rs, "aid") >= 0);
    assert_true(na_ruleset_tag_find(rs, "alliance") >= 0);
    assert_true(na_ruleset_tag_find(rs, "summit") >= 0);
    for (size_t i = 0; i < na_ruleset_tag_count(rs); i++) {
        const struct na_tag *t = na_ruleset_tag(rs, i);
        assert_true(t->threshold > 0);
        assert_true(t->n_terms > 0);
    }
    /* Every state and organisation code is unique and the main ones exist. */
    size_t n = na_ruleset_actor_count(rs);
    assert_true(n > 50);
    const char *want[] = {"NATO", "EU", "USA", "UKR", "RUS"};
    for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
        size_t found = 0;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(na_ruleset_actor(rs, i)->code, want[w]))
                found++;
        assert_int_equal(found, 1);
    }
    assert_true(na_ruleset_pattern_count(rs) > n);
    na_ruleset_free(rs);
}

/* The compiled database cache: a second load reads it back, a damaged
 * cache file is recompiled and replaced, and the cached database matches
 * like the compiled one (same pattern count, same tags on the seed). */
static void test_database_cache(void **state)
{
    (void)state;
    struct na_error err = {{0}};
    char dir[] = "/tmp/na-cache-XXXXXX", cache[64], path[400];
    assert_non_null(mkdtemp(dir));
    snprintf(cache, sizeof(cache), "%s/cache", dir);
    const char *rules = NA_SOURCE_DIR "/config/rules",
               *actors = NA_SOURCE_DIR "/config/actors.yaml";

    struct na_ruleset *a = na_ruleset_load_cached(rules, actors, cache, &err);
    assert_non_null(a);
    assert_false(na_ruleset_from_cache(a));
    struct na_ruleset *b = na_ruleset_load_cached(rules, actors, cache, &err);
    assert_non_null(b);
    assert_true(na_ruleset_from_cache(b));
    assert_int_equal(na_ruleset_pattern_count(a), na_ruleset_pattern_count(b));

    /* Damage the cache file: it is ignored and written again. */
    DIR *dh = opendir(cache);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(dh)) != NULL)
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", cache, e->d_name);
            files++;
        }
    closedir(dh);
    assert_int_equal(files, 1);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_SET);
    fputs("garbage garbage garbage", f);
    fclose(f);
    struct na_ruleset *c = na_ruleset_load_cached(rules, actors, cache, &err);
    assert_non_null(c);
    assert_false(na_ruleset_from_cache(c));
    struct na_ruleset *d = na_ruleset_load_cached(rules, actors, cache, &err);
    assert_non_null(d);
    assert_true(na_ruleset_from_cache(d));
    na_ruleset_free(a);
    na_ruleset_free(b);
    na_ruleset_free(c);
    na_ruleset_free(d);
    tu_rm_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_syntax_error), cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_unknown_key),       cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_threshold),         cmocka_unit_test(test_invalid_regex),
        cmocka_unit_test(test_missing_tag),       cmocka_unit_test(test_phrase_and_regex),
        cmocka_unit_test(test_near_parts),        cmocka_unit_test(test_duplicate_tag),
        cmocka_unit_test(test_prefix_tags),       cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_dir_errors),        cmocka_unit_test(test_actor_errors),
        cmocka_unit_test(test_valid_small_set),   cmocka_unit_test(test_too_many_files),
        cmocka_unit_test(test_phrase_expansion),  cmocka_unit_test(test_shipped_config),
        cmocka_unit_test(test_database_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
