/* libFuzzer target: the rules loader and the actors loader on arbitrary
 * text. Each input is loaded twice: as the only rules file (with a small
 * fixed actors file), then as the actors file (with a small fixed rules
 * file). A ruleset that loads is compiled into a tagger and run over a
 * fixed article. LeakSanitizer checks every error path for leaks. */
#include "fuzz.h"
#include "newsalert/ruleset.h"
#include "newsalert/tagger.h"

static const char fixed_actors[] =
    "actors:\n"
    "  - code: USA\n"
    "    name: United States\n"
    "    kind: state\n"
    "    aliases: [United States, U.S., Washington]\n"
    "    leaders: [Joe Biden]\n"
    "  - code: NATO\n"
    "    name: North Atlantic Treaty Organization\n"
    "    kind: organisation\n"
    "    aliases: [NATO, {regex: '\\bN\\.A\\.T\\.O\\b'}]\n";

static const char fixed_rules[] = "tag: aid\n"
                                  "threshold: 1\n"
                                  "terms:\n"
                                  "  - military aid\n"
                                  "  - {regex: '\\bpledg\\w*', weight: 0.5}\n";

static const char text[] =
    "NATO allies pledge military aid package at Washington summit.\n"
    "Joe Biden said the U.S. would pledge more; N.A.T.O. leaders agreed.";

/* Directories: as_rules/rules/x.yaml + as_rules/actors.yaml (the input is
 * x.yaml), and as_actors/rules/x.yaml + as_actors/actors.yaml (the input is
 * actors.yaml). */
static char as_rules[PATH_MAX], as_actors[PATH_MAX];

static void make_dirs(char *dir, const char *name)
{
    char sub[PATH_MAX];
    snprintf(dir, PATH_MAX, "%s/%s", fuzz_tmpdir(), name);
    snprintf(sub, sizeof(sub), "%s/rules", dir);
    if (mkdir(dir, 0700) != 0 || mkdir(sub, 0700) != 0) {
        perror(sub);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char sub[PATH_MAX];
    (void)argc;
    (void)argv;

    make_dirs(as_rules, "as-rules");
    make_dirs(as_actors, "as-actors");
    fuzz_write(as_rules, "actors.yaml", fixed_actors, sizeof(fixed_actors) - 1, NULL);
    snprintf(sub, sizeof(sub), "%s/rules", as_actors);
    fuzz_write(sub, "x.yaml", fixed_rules, sizeof(fixed_rules) - 1, NULL);
    return 0;
}

static void load(const char *dir)
{
    char rules[PATH_MAX], actors[PATH_MAX];
    struct na_error err = {{0}};
    struct na_tagger_limits lim = {.max_matches = 4096, .max_evidence = 3};
    const struct na_result *res;

    snprintf(rules, sizeof(rules), "%s/rules", dir);
    snprintf(actors, sizeof(actors), "%s/actors.yaml", dir);
    struct na_ruleset *rs = na_ruleset_load(rules, actors, &err);
    if (rs == NULL) {
        FUZZ_CHECK(err.msg[0] != '\0');
        return;
    }
    FUZZ_CHECK(na_ruleset_tag_count(rs) == 1);
    const struct na_tag *tag = na_ruleset_tag(rs, 0);
    FUZZ_CHECK(tag->threshold > 0 && tag->n_terms > 0);
    FUZZ_CHECK(na_ruleset_tag_find(rs, tag->name) == 0);
    for (unsigned i = 0; i < na_ruleset_pattern_count(rs); i++) {
        const struct na_pattern *p = na_ruleset_pattern(rs, i);
        FUZZ_CHECK(p != NULL);
        if (p->kind == NA_PAT_ACTOR)
            FUZZ_CHECK(p->index < na_ruleset_actor_count(rs));
        else
            FUZZ_CHECK(p->tag == 0 && p->term_id < na_ruleset_term_count(rs));
    }
    struct na_tagger *t = na_tagger_new(rs, &lim, &err);
    FUZZ_CHECK(t != NULL);
    size_t nl = strcspn(text, "\n");
    FUZZ_CHECK(na_tagger_tag(t, text, nl, text + nl + 1, strlen(text + nl + 1), &res,
                             &err) == 0);
    na_tagger_free(t);
    na_ruleset_free(rs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char sub[PATH_MAX];

    snprintf(sub, sizeof(sub), "%s/rules", as_rules);
    fuzz_write(sub, "x.yaml", data, size, NULL);
    load(as_rules);
    fuzz_write(as_actors, "actors.yaml", data, size, NULL);
    load(as_actors);
    return 0;
}
