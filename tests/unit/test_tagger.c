/* Unit tests for lib/tagger.c: matching, exclusions, context, scoring,
 * evidence and actors, first with small rules written for the test, then
 * with the shipped rules. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "newsalert/ruleset.h"
#include "newsalert/tagger.h"
#include "testutil.h"

#ifndef NA_SOURCE_DIR
#error "NA_SOURCE_DIR must be defined (see tests/unit/CMakeLists.txt)"
#endif

#define EPS 1e-9

struct fixture {
    struct tmp_rules dir;
    struct na_ruleset *rs;
    struct na_tagger *tagger;
};

static const struct na_tagger_limits default_limits = {.max_matches = 10000,
                                                       .max_evidence = 3};

static int setup_small(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct na_error err = {{0}};
    if (fx == NULL)
        return -1;
    tu_rules_init(&fx->dir);
    tu_rules_file(&fx->dir, "aid.yaml",
                  "tag: aid\n"
                  "threshold: 4\n"
                  "headline_weight: 2\n"
                  "terms:\n"
                  "  - {phrase: aid, weight: 4}\n"
                  "exclude:\n"
                  "  - {phrase: hearing aid}\n",
                  NULL);
    tu_rules_file(&fx->dir, "contain.yaml",
                  "tag: contain\n"
                  "threshold: 100\n"
                  "terms:\n"
                  "  - {phrase: air defence, weight: 3}\n"
                  "  - {phrase: defence, weight: 1}\n",
                  NULL);
    tu_rules_file(&fx->dir, "ctx.yaml",
                  "tag: ctx\n"
                  "threshold: 100\n"
                  "terms:\n"
                  "  - {phrase: package, weight: 1, context: sentence}\n"
                  "  - {phrase: convoy, weight: 1, context: article}\n",
                  NULL);
    tu_rules_file(&fx->dir, "fire.yaml",
                  "tag: fire\n"
                  "threshold: 2\n"
                  "terms:\n"
                  "  - {phrase: alpha, weight: 2}\n"
                  "  - {phrase: beta, weight: 1.9}\n"
                  "  - {phrase: gamma ray, weight: 0.5}\n"
                  "  - {phrase: DELTA, weight: 0.25, case: true}\n",
                  NULL);
    tu_rules_file(&fx->dir, "near.yaml",
                  "tag: near\n"
                  "threshold: 1\n"
                  "terms:\n"
                  "  - {near: ['\\bsend(s|ing)?\\b', '\\bweapons\\b'], weight: 2}\n",
                  NULL);
    tu_rules_file(&fx->dir, "misc.yaml",
                  "tag: misc\n"
                  "threshold: 10\n"
                  "terms:\n"
                  "  - {phrase: pledg*, weight: 1}\n"
                  "  - {phrase: \"rock'n'roll\", weight: 2}\n"
                  "  - {regex: '\\bco-?op(eration)?\\b', weight: 4}\n",
                  NULL);
    tu_actors(&fx->dir, TU_ACTORS);
    fx->rs = na_ruleset_load(fx->dir.rules, fx->dir.actors, &err);
    if (fx->rs == NULL) {
        print_error("rules: %s\n", err.msg);
        return -1;
    }
    fx->tagger = na_tagger_new(fx->rs, &default_limits, &err);
    if (fx->tagger == NULL) {
        print_error("tagger: %s\n", err.msg);
        return -1;
    }
    *state = fx;
    return 0;
}

static int setup_shipped(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    fx->tagger = tu_shipped_tagger(&fx->rs);
    if (fx->tagger == NULL)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    if (fx == NULL)
        return 0;
    na_tagger_free(fx->tagger);
    na_ruleset_free(fx->rs);
    if (fx->dir.root[0])
        tu_rules_cleanup(&fx->dir);
    free(fx);
    return 0;
}

static const struct na_result *tag_text(struct na_tagger *t, const char *headline,
                                        const char *body)
{
    const struct na_result *res = NULL;
    struct na_error err = {{0}};
    int rc = na_tagger_tag(t, headline, strlen(headline), body, strlen(body), &res, &err);
    if (rc != 0)
        print_error("tag failed: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(res);
    return res;
}

static const struct na_tag_result *
tag_result(const struct fixture *fx, const struct na_result *res, const char *name)
{
    int i = na_ruleset_tag_find(fx->rs, name);
    assert_true(i >= 0);
    assert_true((size_t)i < res->n_tags);
    assert_int_equal(res->tags[i].tag, i);
    return &res->tags[i];
}

static double score_of(const struct fixture *fx, const struct na_result *res,
                       const char *name)
{
    return tag_result(fx, res, name)->score;
}

/* The term matches (not exclusions) of tag name, in the result's order. */
static size_t term_matches(const struct fixture *fx, const struct na_result *res,
                           const char *name, const struct na_match **out, size_t max)
{
    int tag = na_ruleset_tag_find(fx->rs, name);
    size_t n = 0;
    for (size_t i = 0; i < res->n_matches; i++)
        if ((int)res->matches[i].tag == tag && !res->matches[i].exclusion) {
            assert_true(n < max);
            out[n++] = &res->matches[i];
        }
    return n;
}

static void assert_span(const char *text, uint32_t start, uint32_t end, const char *want)
{
    size_t wl = strlen(want);
    if (end - start != wl || memcmp(text + start, want, wl) != 0)
        print_error("span [%u,%u) is [%.*s], wanted [%s]\n", start, end,
                    (int)(end - start), text + start, want);
    assert_int_equal(end - start, wl);
    assert_memory_equal(text + start, want, wl);
}

static void assert_near(double got, double want)
{
    if (fabs(got - want) > EPS)
        print_error("got %.12g, wanted %.12g\n", got, want);
    assert_true(fabs(got - want) <= EPS);
}

/* ---- small rules ---- */

static void test_phrase_case_and_words(void **state)
{
    struct fixture *fx = *state;
    const struct na_result *res;
    const struct na_match *m[8];

    res = tag_text(fx->tagger, "", "The AID arrived.");
    assert_near(score_of(fx, res, "aid"), 4);
    assert_int_equal(term_matches(fx, res, "aid", m, 8), 1);
    assert_int_equal(m[0]->start, 4);
    assert_int_equal(m[0]->end, 7);
    assert_int_equal(m[0]->field, NA_FIELD_BODY);
    assert_int_equal(m[0]->fate, NA_FATE_COUNTED);

    res = tag_text(fx->tagger, "", "Aid, aid.");
    assert_int_equal(term_matches(fx, res, "aid", m, 8), 2);

    /* Not inside other words. */
    res = tag_text(fx->tagger, "He said so",
                   "They aided the raid; Aida and said paid aide.");
    assert_near(score_of(fx, res, "aid"), 0);
    assert_int_equal(term_matches(fx, res, "aid", m, 8), 0);
    assert_false(tag_result(fx, res, "aid")->fired);

    /* A multi-word phrase: any run of spaces or hyphens between the words. */
    res =
        tag_text(fx->tagger, "", "A gamma-ray burst. Gamma   ray. GAMMA RAY. gammaray.");
    assert_int_equal(term_matches(fx, res, "fire", m, 8), 3);

    /* case: true matches only the exact case. */
    res = tag_text(fx->tagger, "", "delta Delta DELTA");
    assert_int_equal(term_matches(fx, res, "fire", m, 8), 1);
    assert_int_equal(m[0]->start, 12);
    assert_near(score_of(fx, res, "fire"), 0.25);
}

static void test_exclusion_veto(void **state)
{
    struct fixture *fx = *state;
    const struct na_result *res;
    const struct na_match *m[8];

    res = tag_text(fx->tagger, "", "Hearing aid sales rose.");
    assert_near(score_of(fx, res, "aid"), 0);
    assert_false(tag_result(fx, res, "aid")->fired);
    assert_int_equal(term_matches(fx, res, "aid", m, 8), 1);
    assert_int_equal(m[0]->fate, NA_FATE_VETOED);
    assert_near(m[0]->contribution, 0);
    /* The veto names the exclusion pattern, which is an exclusion of aid. */
    const struct na_pattern *veto = na_ruleset_pattern(fx->rs, m[0]->veto);
    assert_non_null(veto);
    assert_int_equal(veto->kind, NA_PAT_EXCLUDE);
    assert_int_equal(veto->tag, (unsigned)na_ruleset_tag_find(fx->rs, "aid"));
    /* The exclusion match is reported too. */
    size_t n_excl = 0;
    for (size_t i = 0; i < res->n_matches; i++)
        if (res->matches[i].exclusion) {
            n_excl++;
            assert_int_equal(res->matches[i].start, 0);
            assert_int_equal(res->matches[i].end, 11);
        }
    assert_int_equal(n_excl, 1);
    assert_int_equal(tag_result(fx, res, "aid")->n_evidence, 0);

    /* The veto is only for the overlapping match. */
    res = tag_text(fx->tagger, "", "Hearing aid makers lobbied for aid.");
    assert_near(score_of(fx, res, "aid"), 4);
    assert_int_equal(term_matches(fx, res, "aid", m, 8), 2);
    assert_int_equal(m[0]->fate, NA_FATE_VETOED);
    assert_int_equal(m[1]->fate, NA_FATE_COUNTED);
    assert_true(tag_result(fx, res, "aid")->fired);

    /* An exclusion in the headline does not veto a body match. */
    res = tag_text(fx->tagger, "Hearing aid", "Aid was sent.");
    assert_near(score_of(fx, res, "aid"), 4);
}

static void test_context(void **state)
{
    struct fixture *fx = *state;
    const struct na_result *res;
    const struct na_match *m[8];

    /* sentence: an actor in the same sentence. */
    res = tag_text(fx->tagger, "", "Ukraine got a package. Another package came.");
    assert_int_equal(term_matches(fx, res, "ctx", m, 8), 2);
    assert_int_equal(m[0]->fate, NA_FATE_COUNTED);
    assert_int_equal(m[1]->fate, NA_FATE_NO_CONTEXT);
    assert_near(score_of(fx, res, "ctx"), 1);

    /* The actor may come after the term in its sentence. */
    res = tag_text(fx->tagger, "", "A package for NATO.");
    assert_near(score_of(fx, res, "ctx"), 1);

    /* An actor in the headline is no context for a body sentence. */
    res = tag_text(fx->tagger, "Ukraine", "A package came.");
    assert_near(score_of(fx, res, "ctx"), 0);
    assert_int_equal(term_matches(fx, res, "ctx", m, 8), 1);
    assert_int_equal(m[0]->fate, NA_FATE_NO_CONTEXT);

    /* Actors match case-sensitively, as whole words. */
    res = tag_text(fx->tagger, "", "A package for nato. A package for NATOs.");
    assert_near(score_of(fx, res, "ctx"), 0);
    assert_int_equal(res->n_actors, 0);

    /* article: an actor anywhere will do, even in the headline. */
    res = tag_text(fx->tagger, "Kyiv", "A convoy came. Then another convoy.");
    assert_near(score_of(fx, res, "ctx"), 1.5);
    res = tag_text(fx->tagger, "", "A convoy came. Then another convoy.");
    assert_near(score_of(fx, res, "ctx"), 0);
    assert_int_equal(term_matches(fx, res, "ctx", m, 8), 2);
    assert_int_equal(m[0]->fate, NA_FATE_NO_CONTEXT);
    assert_int_equal(m[1]->fate, NA_FATE_NO_CONTEXT);
}

static void test_repeats(void **state)
{
    struct fixture *fx = *state;
    const struct na_result *res;
    const struct na_match *m[8];

    res = tag_text(fx->tagger, "", "aid aid aid aid aid");
    assert_int_equal(term_matches(fx, res, "aid", m, 8), 5);
    assert_near(m[0]->contribution, 4);
    assert_near(m[1]->contribution, 2);
    assert_near(m[2]->contribution, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(m[i]->fate, NA_FATE_COUNTED);
    for (int i = 3; i < 5; i++) {
        assert_int_equal(m[i]->fate, NA_FATE_REPEAT);
        assert_near(m[i]->contribution, 0);
    }
    assert_near(score_of(fx, res, "aid"), 7);

    /* The count starts over for each article. */
    res = tag_text(fx->tagger, "", "aid");
    assert_near(score_of(fx, res, "aid"), 4);

    /* A vetoed or out-of-context match does not use up a repeat. */
    res = tag_text(fx->tagger, "", "hearing aid, hearing aid, aid, aid");
    assert_near(score_of(fx, res, "aid"), 6);
}

static void test_headline_weight(void **state)
{
    struct fixture *fx = *state;
    const struct na_result *res;

    /* aid: headline_weight 2. */
    res = tag_text(fx->tagger, "Aid", "");
    assert_near(score_of(fx, res, "aid"), 8);
    /* The headline counts first, the body's match is the second repeat. */
    res = tag_text(fx->tagger, "Aid", "aid");
    assert_near(score_of(fx, res, "aid"), 10);
    /* fire: the default 1.5. */
    res = tag_text(fx->tagger, "Gamma ray", "");
    assert_near(score_of(fx, res, "fire"), 0.75);
}

static void test_phrase_forms(void **state)
{
    struct fixture *fx = *state;
    const struct na_result *res;
    const struct na_match *m[8];
    const char *body;

    /* A trailing '*' stands for any word ending; the match is the whole word. */
    body = "They pledged, then pledging; a pledg. Not impledged.";
    res = tag_text(fx->tagger, "", body);
    assert_int_equal(term_matches(fx, res, "misc", m, 8), 3);
    assert_span(body, m[0]->start, m[0]->end, "pledged");
    assert_span(body, m[1]->start, m[1]->end, "pledging");
    assert_span(body, m[2]->start, m[2]->end, "pledg");

    /* An apostrophe matches the typographic one too. */
    body = "Rock'n'roll and rock\xe2\x80\x99n\xe2\x80\x99roll.";
    res = tag_text(fx->tagger, "", body);
    assert_int_equal(term_matches(fx, res, "misc", m, 8), 2);
    assert_span(body, m[1]->start, m[1]->end, "rock\xe2\x80\x99n\xe2\x80\x99roll");

    /* A regex's leading and trailing \b are word boundaries. */
    body = "Co-op, cooperation, coop; not coops or uncooperative.";
    res = tag_text(fx->tagger, "", body);
    assert_int_equal(term_matches(fx, res, "misc", m, 8), 3);
    assert_span(body, m[0]->start, m[0]->end, "Co-op");
    assert_span(body, m[1]->start, m[1]->end, "cooperation");
    assert_span(body, m[2]->start, m[2]->end, "coop");
}

static void test_threshold_fires(void **state)
{
    struct fixture *fx = *state;
    const struct na_result *res;
    const struct na_tag_result *r;

    /* Exactly the threshold fires. */
    res = tag_text(fx->tagger, "", "alpha");
    r = tag_result(fx, res, "fire");
    assert_near(r->score, 2);
    assert_true(r->fired);
    assert_near(r->confidence, 0.5);
    assert_int_equal(r->priority, NA_PRIORITY_LOW);
    assert_int_equal(res->n_fired, 1);

    /* Just under does not. */
    res = tag_text(fx->tagger, "", "beta");
    r = tag_result(fx, res, "fire");
    assert_near(r->score, 1.9);
    assert_false(r->fired);
    assert_int_equal(res->n_fired, 0);
    assert_near(r->confidence, na_confidence(1.9, 2));

    /* Adding up terms. */
    res = tag_text(fx->tagger, "", "beta and a gamma ray");
    r = tag_result(fx, res, "fire");
    assert_near(r->score, 2.4);
    assert_true(r->fired);

    /* Several tags at once. */
    res = tag_text(fx->tagger, "Alpha aid", "Alpha and beta; aid");
    assert_true(tag_result(fx, res, "fire")->fired);
    assert_true(tag_result(fx, res, "aid")->fired);
    assert_false(tag_result(fx, res, "ctx")->fired);
    assert_int_equal(res->n_fired, 2);
    /* fire: 2*1.5 (headline) + 1 (second alpha) + 1.9 = 5.9 */
    r = tag_result(fx, res, "fire");
    assert_near(r->score, 5.9);
    assert_near(r->confidence, 1 - pow(0.5, 5.9 / 2));
    assert_int_equal(r->priority, NA_PRIORITY_HIGH);

    /* Nothing at all. */
    res = tag_text(fx->tagger, "Quiet day", "Nothing happened.");
    assert_int_equal(res->n_fired, 0);
    assert_int_equal(res->n_matches, 0);
    assert_int_equal(res->n_actors, 0);
    assert_false(res->truncated);
    assert_int_equal(res->n_tags, na_ruleset_tag_count(fx->rs));
}

static void test_containment(void **state)
{
    struct fixture *fx = *state;
    const struct na_result *res;
    const struct na_match *m[8];

    res = tag_text(fx->tagger, "", "New air defence systems.");
    assert_near(score_of(fx, res, "contain"), 3);
    assert_int_equal(term_matches(fx, res, "contain", m, 8), 2);
    assert_int_equal(m[0]->fate, NA_FATE_COUNTED);
    assert_int_equal(m[1]->fate, NA_FATE_CONTAINED);

    res = tag_text(fx->tagger, "", "Air-defence and defence.");
    assert_near(score_of(fx, res, "contain"), 4);
}

static void test_evidence(void **state)
{
    struct fixture *fx = *state;
    const struct na_result *res;
    const char *headline = "Aid for Kyiv";
    const char *body = "Nothing here. Kyiv received a package today.\n"
                       "Aid came. More aid later. Then aid again.";

    res = tag_text(fx->tagger, headline, body);

    /* ctx: one sentence with an actor and "package". */
    const struct na_tag_result *r = tag_result(fx, res, "ctx");
    assert_int_equal(r->n_evidence, 1);
    assert_int_equal(r->evidence[0].field, NA_FIELD_BODY);
    assert_span(body, r->evidence[0].start, r->evidence[0].end,
                "Kyiv received a package today.");
    assert_span(body, r->evidence[0].term_start, r->evidence[0].term_end, "package");
    assert_near(r->evidence[0].weight, 1);
    const struct na_pattern *p = na_ruleset_pattern(fx->rs, r->evidence[0].term_pattern);
    assert_non_null(p);
    assert_int_equal(p->kind, NA_PAT_TERM);
    assert_int_equal(p->tag, (unsigned)na_ruleset_tag_find(fx->rs, "ctx"));

    /* aid: headline 8, then body sentences 2 and 1; the third body match is
     * a fourth repeat and adds nothing, so it is no evidence. Strongest
     * first, at most max_evidence (3). */
    r = tag_result(fx, res, "aid");
    assert_near(r->score, 11);
    assert_int_equal(r->n_evidence, 3);
    assert_int_equal(r->evidence[0].field, NA_FIELD_HEADLINE);
    assert_span(headline, r->evidence[0].start, r->evidence[0].end, "Aid for Kyiv");
    assert_span(headline, r->evidence[0].term_start, r->evidence[0].term_end, "Aid");
    assert_near(r->evidence[0].weight, 8);
    assert_int_equal(r->evidence[1].field, NA_FIELD_BODY);
    assert_span(body, r->evidence[1].start, r->evidence[1].end, "Aid came.");
    assert_span(body, r->evidence[1].term_start, r->evidence[1].term_end, "Aid");
    assert_near(r->evidence[1].weight, 2);
    assert_int_equal(r->evidence[2].field, NA_FIELD_BODY);
    assert_span(body, r->evidence[2].start, r->evidence[2].end, "More aid later.");
    assert_span(body, r->evidence[2].term_start, r->evidence[2].term_end, "aid");
    assert_near(r->evidence[2].weight, 1);

    /* Two matches in one sentence make one piece of evidence whose weight is
     * their sum and whose term is the stronger. */
    res = tag_text(fx->tagger, "", "Some beta then alpha here. Nothing.");
    r = tag_result(fx, res, "fire");
    assert_int_equal(r->n_evidence, 1);
    assert_near(r->evidence[0].weight, 3.9);
    assert_span("Some beta then alpha here. Nothing.", r->evidence[0].term_start,
                r->evidence[0].term_end, "alpha");
    assert_span("Some beta then alpha here. Nothing.", r->evidence[0].start,
                r->evidence[0].end, "Some beta then alpha here.");
}

static void test_evidence_limit(void **state)
{
    struct fixture *fx = *state;
    struct na_error err = {{0}};
    struct na_tagger_limits lim = {.max_matches = 1000, .max_evidence = 1};
    struct na_tagger *t = na_tagger_new(fx->rs, &lim, &err);
    assert_non_null(t);
    const struct na_result *res = tag_text(t, "", "Beta. Alpha. Gamma ray.");
    const struct na_tag_result *r = tag_result(fx, res, "fire");
    assert_int_equal(r->n_evidence, 1);
    assert_near(r->evidence[0].weight, 2);
    assert_span("Beta. Alpha. Gamma ray.", r->evidence[0].start, r->evidence[0].end,
                "Alpha.");
    na_tagger_free(t);
}

static void test_near(void **state)
{
    struct fixture *fx = *state;
    const struct na_result *res;
    const struct na_match *m[8];
    const char *body;

    body = "They will send weapons soon.";
    res = tag_text(fx->tagger, "", body);
    assert_near(score_of(fx, res, "near"), 2);
    assert_true(tag_result(fx, res, "near")->fired);
    assert_int_equal(term_matches(fx, res, "near", m, 8), 1);
    /* The match spans from the first part to the last. */
    assert_span(body, m[0]->start, m[0]->end, "send weapons");

    /* Either order. */
    res = tag_text(fx->tagger, "", "Weapons, they are sending them.");
    assert_near(score_of(fx, res, "near"), 2);

    /* Parts in different sentences do not make a match. */
    res = tag_text(fx->tagger, "", "They send help. Weapons stay home.");
    assert_near(score_of(fx, res, "near"), 0);
    assert_false(tag_result(fx, res, "near")->fired);
    assert_int_equal(term_matches(fx, res, "near", m, 8), 0);

    /* A part in one sentence and both in the next: one match, in the next. */
    body = "They send help. Weapons, they send.";
    res = tag_text(fx->tagger, "", body);
    assert_near(score_of(fx, res, "near"), 2);
    assert_int_equal(term_matches(fx, res, "near", m, 8), 1);
    assert_span(body, m[0]->start, m[0]->end, "Weapons, they send");

    /* Both parts in each of two sentences: two matches (a repeat). */
    res = tag_text(fx->tagger, "", "We send weapons. They send weapons too.");
    assert_near(score_of(fx, res, "near"), 3);
    assert_int_equal(term_matches(fx, res, "near", m, 8), 2);

    /* Nor across headline and body. */
    res = tag_text(fx->tagger, "They send", "weapons");
    assert_near(score_of(fx, res, "near"), 0);

    /* One part alone is nothing. */
    res = tag_text(fx->tagger, "", "Weapons, weapons everywhere.");
    assert_near(score_of(fx, res, "near"), 0);

    /* In the headline, with its weight. */
    res = tag_text(fx->tagger, "Allies send weapons", "");
    assert_near(score_of(fx, res, "near"), 3);
}

/* A fresh tagger's first article matches nothing. The match buffer used to
 * be NULL until then, and sorting and slicing it (qsort with a NULL base,
 * &NULL[0]) is undefined: found by fuzz_tagger on the empty input, and
 * caught here by UBSan in the NA_SANITIZE build. */
static void test_fresh_tagger_no_matches(void **state)
{
    struct fixture *fx = *state;
    struct na_error err = {{0}};
    struct na_tagger *t = na_tagger_new(fx->rs, &default_limits, &err);
    assert_non_null(t);
    const struct na_result *res = tag_text(t, "", "");
    assert_int_equal(res->n_matches, 0);
    assert_int_equal(res->n_fired, 0);
    res = tag_text(t, "Nothing to see", "Quiet day.");
    assert_int_equal(res->n_matches, 0);
    assert_int_equal(res->n_actors, 0);
    na_tagger_free(t);
}

static void test_truncation(void **state)
{
    struct fixture *fx = *state;
    struct na_error err = {{0}};
    struct na_tagger_limits lim = {.max_matches = 3, .max_evidence = 3};
    struct na_tagger *t = na_tagger_new(fx->rs, &lim, &err);
    assert_non_null(t);

    const struct na_result *res = tag_text(t, "", "aid aid aid aid aid aid");
    assert_true(res->truncated);
    assert_int_equal(res->n_matches, 3);
    for (size_t i = 0; i < res->n_matches; i++)
        assert_true(res->matches[i].start < 12); /* only the first three */

    /* The scan stops: nothing from the body once the headline filled it. */
    res = tag_text(t, "aid aid aid aid", "aid alpha");
    assert_true(res->truncated);
    assert_int_equal(res->n_matches, 3);
    for (size_t i = 0; i < res->n_matches; i++)
        assert_int_equal(res->matches[i].field, NA_FIELD_HEADLINE);
    assert_near(score_of(fx, res, "fire"), 0);

    /* Under the limit is not truncated, and the flag resets. */
    res = tag_text(t, "", "aid aid");
    assert_false(res->truncated);
    assert_int_equal(res->n_matches, 2);
    /* Exactly at the limit is not truncated either. */
    res = tag_text(t, "", "aid aid aid");
    assert_false(res->truncated);
    assert_int_equal(res->n_matches, 3);
    na_tagger_free(t);
}

static void test_actors(void **state)
{
    struct fixture *fx = *state;
    const struct na_result *res;

    res = tag_text(fx->tagger, "Kyiv and NATO",
                   "Ukraine asked the United States. Joe Biden spoke. Kyiv waited.");
    /* UKR 3 (Kyiv twice, Ukraine), then USA 2 (United States, Joe Biden),
     * then NATO 1. */
    assert_int_equal(res->n_actors, 3);
    assert_string_equal(na_ruleset_actor(fx->rs, res->actors[0].actor)->code, "UKR");
    assert_int_equal(res->actors[0].mentions, 3);
    assert_string_equal(na_ruleset_actor(fx->rs, res->actors[1].actor)->code, "USA");
    assert_int_equal(res->actors[1].mentions, 2);
    assert_string_equal(na_ruleset_actor(fx->rs, res->actors[2].actor)->code, "NATO");
    assert_int_equal(res->actors[2].mentions, 1);

    /* Mentions do not carry over to the next article. */
    res = tag_text(fx->tagger, "", "NATO met.");
    assert_int_equal(res->n_actors, 1);
    assert_int_equal(res->actors[0].mentions, 1);

    /* An alias ending in a period ("U.S.") still counts. */
    res = tag_text(fx->tagger, "", "The U.S. sent a package.");
    assert_int_equal(res->n_actors, 1);
    assert_string_equal(na_ruleset_actor(fx->rs, res->actors[0].actor)->code, "USA");
    assert_near(score_of(fx, res, "ctx"), 1);
}

static void test_confidence_priority(void **state)
{
    (void)state;
    assert_near(na_confidence(4, 4), 0.5);
    assert_near(na_confidence(3, 3), 0.5);
    assert_near(na_confidence(0.25, 0.25), 0.5);
    assert_near(na_confidence(8, 4), 0.75);
    assert_near(na_confidence(12, 4), 0.875);
    assert_near(na_confidence(0, 4), 0);
    assert_near(na_confidence(-1, 4), 0);
    assert_near(na_confidence(1, 0), 0);
    /* Monotonic in the score. */
    for (double s = 0.5; s < 20; s += 0.5)
        assert_true(na_confidence(s, 3) < na_confidence(s + 0.5, 3));
    assert_true(na_confidence(1000, 3) <= 1.0);

    assert_int_equal(na_priority_of(0), NA_PRIORITY_LOW);
    assert_int_equal(na_priority_of(0.5), NA_PRIORITY_LOW);
    assert_int_equal(na_priority_of(0.5999), NA_PRIORITY_LOW);
    assert_int_equal(na_priority_of(0.6), NA_PRIORITY_NORMAL);
    assert_int_equal(na_priority_of(0.8499), NA_PRIORITY_NORMAL);
    assert_int_equal(na_priority_of(0.85), NA_PRIORITY_HIGH);
    assert_int_equal(na_priority_of(1.0), NA_PRIORITY_HIGH);
    /* At the threshold: low; twice it (0.75): normal; three times (0.875): high. */
    assert_int_equal(na_priority_of(na_confidence(3, 3)), NA_PRIORITY_LOW);
    assert_int_equal(na_priority_of(na_confidence(6, 3)), NA_PRIORITY_NORMAL);
    assert_int_equal(na_priority_of(na_confidence(9, 3)), NA_PRIORITY_HIGH);

    assert_string_equal(na_priority_name(NA_PRIORITY_LOW), "low");
    assert_string_equal(na_priority_name(NA_PRIORITY_NORMAL), "normal");
    assert_string_equal(na_priority_name(NA_PRIORITY_HIGH), "high");
    assert_string_equal(na_field_name(NA_FIELD_HEADLINE), "headline");
    assert_string_equal(na_field_name(NA_FIELD_BODY), "body");
    assert_string_equal(na_fate_name(NA_FATE_COUNTED), "counted");
    assert_string_equal(na_fate_name(NA_FATE_VETOED), "vetoed");
    assert_string_equal(na_fate_name(NA_FATE_REPEAT), "repeat");
}

static void test_ruleset_accessor(void **state)
{
    struct fixture *fx = *state;
    assert_ptr_equal(na_tagger_ruleset(fx->tagger), fx->rs);
    na_tagger_free(NULL);
}

/* ---- shipped rules ---- */

struct seed {
    char *text;
    const char *headline;
    size_t headline_len;
    const char *body;
    size_t body_len;
};

static void read_seed(struct seed *s)
{
    FILE *f = fopen(NA_SOURCE_DIR "/tests/corpus/seed-article.txt", "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size > 0);
    rewind(f);
    s->text = malloc((size_t)size + 1);
    assert_non_null(s->text);
    assert_int_equal(fread(s->text, 1, (size_t)size, f), (size_t)size);
    s->text[size] = '\0';
    fclose(f);
    char *nl = strchr(s->text, '\n');
    assert_non_null(nl);
    s->headline = s->text;
    s->headline_len = (size_t)(nl - s->text);
    s->body = nl + 1;
    s->body_len = strlen(s->body);
}

static void test_shipped_seed(void **state)
{
    struct fixture *fx = *state;
    struct seed s;
    const struct na_result *res = NULL;
    struct na_error err = {{0}};

    read_seed(&s);
    assert_int_equal(na_tagger_tag(fx->tagger, s.headline, s.headline_len, s.body,
                                   s.body_len, &res, &err),
                     0);
    const char *want[] = {"alliance", "aid", "summit"};
    for (size_t w = 0; w < 3; w++) {
        const struct na_tag_result *r = tag_result(fx, res, want[w]);
        const struct na_tag *def = na_ruleset_tag(fx->rs, r->tag);
        if (!r->fired)
            print_error("seed: %s scored %g of %g\n", want[w], r->score, def->threshold);
        assert_true(r->fired);
        assert_true(r->score >= def->threshold);
        assert_true(r->confidence >= 0.5);
        assert_true(r->n_evidence >= 1);
        for (size_t k = 0; k < r->n_evidence; k++) {
            const struct na_evidence *e = &r->evidence[k];
            const char *text = e->field == NA_FIELD_HEADLINE ? s.headline : s.body;
            size_t len = e->field == NA_FIELD_HEADLINE ? s.headline_len : s.body_len;
            assert_true(e->start < e->end);
            assert_true(e->end <= len);
            assert_true(e->term_start >= e->start);
            assert_true(e->term_end <= e->end);
            assert_true(e->term_start < e->term_end);
            assert_true(e->weight > 0);
            (void)text;
            if (k > 0)
                assert_true(e->weight <= r->evidence[k - 1].weight);
        }
    }
    assert_true(res->n_fired >= 3);

    const char *codes[] = {"NATO", "USA", "UKR", "RUS"};
    for (size_t c = 0; c < 4; c++) {
        bool found = false;
        for (size_t i = 0; i < res->n_actors; i++) {
            const struct na_actor *a = na_ruleset_actor(fx->rs, res->actors[i].actor);
            assert_non_null(a);
            if (!strcmp(a->code, codes[c]))
                found = true;
        }
        if (!found)
            print_error("seed: actor %s not found\n", codes[c]);
        assert_true(found);
    }
    for (size_t i = 1; i < res->n_actors; i++)
        assert_true(res->actors[i].mentions <= res->actors[i - 1].mentions);
    assert_false(res->truncated);
    free(s.text);
}

static void check_not_fired(const struct fixture *fx, const char *headline,
                            const char *body, const char *tag)
{
    const struct na_result *res = tag_text(fx->tagger, headline, body);
    const struct na_tag_result *r = tag_result(fx, res, tag);
    if (r->fired)
        print_error("'%s' fired %s with score %g\n", headline, tag, r->score);
    assert_false(r->fired);
}

static void test_shipped_negatives(void **state)
{
    struct fixture *fx = *state;

    check_not_fired(
        fx, "Hearing aid sales rise",
        "Sales of hearing aids rose 12 percent last year as more people bought "
        "hearing aids over the counter. Retailers said demand for hearing aids "
        "was strongest among older customers.",
        "aid");
    check_not_fired(
        fx, "Climbers reach the summit of Everest",
        "A team of climbers reached the summit of Mount Everest on Tuesday morning. "
        "The expedition spent six weeks acclimatising at base camp before the "
        "final push to the summit.",
        "summit");
    check_not_fired(
        fx, "Star Alliance adds a new airline",
        "The Star Alliance network said a new carrier would join next year. "
        "Passengers will be able to earn and redeem miles across the Star Alliance "
        "network.",
        "alliance");
}

/* Rules for the matcher's own cases: UTF-8 classes, a start inside a word,
 * and an exclusion that vetoes only what lies within it. */
static int setup_matcher(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct na_error err = {{0}};
    if (fx == NULL)
        return -1;
    tu_rules_init(&fx->dir);
    tu_rules_file(&fx->dir, "accent.yaml",
                  "tag: accent\n"
                  "threshold: 1\n"
                  "terms:\n"
                  "  - {regex: '\\bcommuniqu[eé]s?\\b', weight: 1}\n"
                  "  - {phrase: 'Côte d''Ivoire', weight: 1}\n",
                  NULL);
    tu_rules_file(&fx->dir, "bank.yaml",
                  "tag: bank\n"
                  "threshold: 1\n"
                  "terms:\n"
                  "  - {regex: '\\b(multilateral )?development banks?\\b', weight: 1}\n",
                  NULL);
    tu_rules_file(&fx->dir, "relief.yaml",
                  "tag: relief\n"
                  "threshold: 3\n"
                  "terms:\n"
                  "  - {regex: '\\baid convoys?\\b', weight: 3}\n"
                  "  - {phrase: aid, weight: 1}\n"
                  "exclude:\n"
                  "  - {regex: '\\bfirst aid\\b', veto: within}\n"
                  "  - {regex: '\\bhearing aids?\\b'}\n",
                  NULL);
    tu_actors(&fx->dir, TU_ACTORS);
    fx->rs = na_ruleset_load(fx->dir.rules, fx->dir.actors, &err);
    if (fx->rs == NULL) {
        print_error("rules: %s\n", err.msg);
        return -1;
    }
    fx->tagger = na_tagger_new(fx->rs, &default_limits, &err);
    if (fx->tagger == NULL) {
        print_error("tagger: %s\n", err.msg);
        return -1;
    }
    *state = fx;
    return 0;
}

static void test_accented_forms(void **state)
{
    struct fixture *fx = *state;
    const struct na_match *m[8];
    /* é is two bytes: a byte class could only ever match one of them. */
    const char *body = "The final communiqué was short; both communiques named "
                       "Côte d’Ivoire and Côte d'Ivoire.";
    const struct na_result *res = tag_text(fx->tagger, "", body);
    assert_int_equal(term_matches(fx, res, "accent", m, 8), 4);
    assert_span(body, m[0]->start, m[0]->end, "communiqué");
    assert_span(body, m[1]->start, m[1]->end, "communiques");
    assert_span(body, m[2]->start, m[2]->end, "Côte d’Ivoire");
    /* A letter that ends in a UTF-8 byte still ends a word: no match of
     * "communiqué" inside "communiquéx", nor after a letter. */
    res = tag_text(fx->tagger, "", "communiquéx écommuniqué");
    assert_int_equal(term_matches(fx, res, "accent", m, 8), 0);
    /* Text that is not UTF-8 is refused, not scanned. */
    const struct na_result *out;
    struct na_error err;
    assert_int_equal(na_tagger_tag(fx->tagger, "a\xff", 2, "", 0, &out, &err), -1);
    assert_non_null(strstr(err.msg, "UTF-8"));
}

static void test_start_inside_a_word(void **state)
{
    struct fixture *fx = *state;
    const struct na_match *m[8];
    /* The leftmost start of the match ending at "bank" is inside
     * "xmultilateral"; the later start at "development" is a real match. */
    const char *body = "An xmultilateral development bank lent more.";
    const struct na_result *res = tag_text(fx->tagger, "", body);
    assert_int_equal(term_matches(fx, res, "bank", m, 8), 1);
    assert_span(body, m[0]->start, m[0]->end, "development bank");
    assert_true(tag_result(fx, res, "bank")->fired);
    body = "A multilateral development bank.";
    res = tag_text(fx->tagger, "", body);
    assert_int_equal(term_matches(fx, res, "bank", m, 8), 1);
    assert_span(body, m[0]->start, m[0]->end, "multilateral development bank");
    res = tag_text(fx->tagger, "", "redevelopment banks");
    assert_int_equal(term_matches(fx, res, "bank", m, 8), 0);
}

static void test_veto_within(void **state)
{
    struct fixture *fx = *state;
    const struct na_match *m[8];
    /* "first aid" vetoes the "aid" inside it, not the convoy that runs on
     * past it. */
    const char *body = "A first aid convoy reached Gaza.";
    const struct na_result *res = tag_text(fx->tagger, "", body);
    assert_int_equal(term_matches(fx, res, "relief", m, 8), 2);
    assert_span(body, m[0]->start, m[0]->end, "aid convoy");
    assert_int_equal(m[0]->fate, NA_FATE_COUNTED);
    assert_int_equal(m[1]->fate, NA_FATE_VETOED);
    assert_true(tag_result(fx, res, "relief")->fired);
    res = tag_text(fx->tagger, "", "She took a first aid course.");
    assert_int_equal(term_matches(fx, res, "relief", m, 8), 1);
    assert_int_equal(m[0]->fate, NA_FATE_VETOED);
    assert_false(tag_result(fx, res, "relief")->fired);
    /* An exclusion without "veto: within" vetoes every match it overlaps. */
    res = tag_text(fx->tagger, "", "The hearing aid convoy.");
    assert_int_equal(term_matches(fx, res, "relief", m, 8), 2);
    assert_int_equal(m[0]->fate, NA_FATE_VETOED);
    assert_false(tag_result(fx, res, "relief")->fired);
}

int main(void)
{
    const struct CMUnitTest small[] = {
        cmocka_unit_test(test_phrase_case_and_words),
        cmocka_unit_test(test_exclusion_veto),
        cmocka_unit_test(test_context),
        cmocka_unit_test(test_repeats),
        cmocka_unit_test(test_headline_weight),
        cmocka_unit_test(test_phrase_forms),
        cmocka_unit_test(test_threshold_fires),
        cmocka_unit_test(test_containment),
        cmocka_unit_test(test_evidence),
        cmocka_unit_test(test_evidence_limit),
        cmocka_unit_test(test_near),
        cmocka_unit_test(test_fresh_tagger_no_matches),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_actors),
        cmocka_unit_test(test_confidence_priority),
        cmocka_unit_test(test_ruleset_accessor),
    };
    const struct CMUnitTest shipped[] = {
        cmocka_unit_test(test_shipped_seed),
        cmocka_unit_test(test_shipped_negatives),
    };
    const struct CMUnitTest matcher[] = {
        cmocka_unit_test(test_accented_forms),
        cmocka_unit_test(test_start_inside_a_word),
        cmocka_unit_test(test_veto_within),
    };
    int failed = cmocka_run_group_tests_name("small rules", small, setup_small, teardown);
    failed += cmocka_run_group_tests_name("matcher", matcher, setup_matcher, teardown);
    failed +=
        cmocka_run_group_tests_name("shipped rules", shipped, setup_shipped, teardown);
    return failed;
}
