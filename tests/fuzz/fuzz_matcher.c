/* libFuzzer target: the phrase matcher against Vectorscan alone. The
 * shipped rules are loaded twice, as shipped (fixed phrases on word tokens)
 * and with every pattern through Vectorscan (regex_only, the reference);
 * both taggers tag the input ("headline\nbody", split at the first newline,
 * non-UTF-8 input repaired to '?') and must find the same matches with the
 * same fates and contributions, the same actors, scores and evidence. */
#include "fuzz.h"
#include "newsalert/tagger.h"
#include "newsalert/utf8.h"

static struct na_ruleset *rs_fast, *rs_ref;
static struct na_tagger *fast, *ref;

static void teardown(void)
{
    na_tagger_free(fast);
    na_tagger_free(ref);
    na_ruleset_free(rs_fast);
    na_ruleset_free(rs_ref);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char rules[PATH_MAX], actors[PATH_MAX];
    struct na_error err = {{0}};
    struct na_tagger_limits lim = {.max_matches = FUZZ_MAX_MATCHES,
                                   .max_evidence = FUZZ_MAX_EVIDENCE};
    struct na_ruleset_options regex_only = {.regex_only = true};
    (void)argc;
    (void)argv;

    fuzz_config_paths(rules, actors);
    rs_fast = na_ruleset_load(rules, actors, &err);
    rs_ref = rs_fast ? na_ruleset_load_opts(rules, actors, &regex_only, &err) : NULL;
    fast = rs_ref ? na_tagger_new(rs_fast, &lim, &err) : NULL;
    ref = fast ? na_tagger_new(rs_ref, &lim, &err) : NULL;
    if (ref == NULL) {
        fprintf(stderr, "fuzz_matcher: %s\n", err.msg);
        exit(1);
    }
    atexit(teardown);
    return 0;
}

/* Valid UTF-8, as the daemon hands the tagger (it rejects the rest): each
 * byte that does not start a valid character becomes '?'. */
static void repair(char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = 1;
        while (k <= 4 && i + k <= n && !na_utf8_valid(s + i, k))
            k++;
        if (k > 4 || i + k > n) {
            s[i++] = '?';
            continue;
        }
        i += k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    repair(text, size);
    const char *nl = memchr(text, '\n', size);
    size_t hl = nl ? (size_t)(nl - text) : 0, bo = nl ? hl + 1 : 0;
    struct na_error err;
    const struct na_result *a, *b;
    int ra = na_tagger_tag(fast, text, hl, text + bo, size - bo, &a, &err);
    int rb = na_tagger_tag(ref, text, hl, text + bo, size - bo, &b, &err);
    FUZZ_CHECK(ra == rb);
    if (ra == 0 && !a->truncated && !b->truncated) {
        FUZZ_CHECK(a->n_matches == b->n_matches);
        for (size_t i = 0; i < a->n_matches; i++) {
            const struct na_match *x = &a->matches[i], *y = &b->matches[i];
            FUZZ_CHECK(x->pattern == y->pattern && x->field == y->field);
            FUZZ_CHECK(x->start == y->start && x->end == y->end);
            FUZZ_CHECK(x->fate == y->fate && x->contribution == y->contribution);
        }
        FUZZ_CHECK(a->n_actors == b->n_actors);
        for (size_t i = 0; i < a->n_actors; i++)
            FUZZ_CHECK(a->actors[i].actor == b->actors[i].actor &&
                       a->actors[i].mentions == b->actors[i].mentions);
        for (size_t t = 0; t < a->n_tags; t++) {
            const struct na_tag_result *x = &a->tags[t], *y = &b->tags[t];
            FUZZ_CHECK(x->fired == y->fired && x->score == y->score);
            FUZZ_CHECK(x->n_evidence == y->n_evidence);
            for (size_t e = 0; e < x->n_evidence; e++)
                FUZZ_CHECK(
                    !memcmp(&x->evidence[e], &y->evidence[e], sizeof(x->evidence[e])));
        }
    }
    free(text);
    return 0;
}
