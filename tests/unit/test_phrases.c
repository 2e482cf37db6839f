/* Unit tests for lib/phrases.c: which patterns the phrase matcher takes,
 * what it finds, and that the tagger finds the same with it as with
 * Vectorscan alone on the shipped rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "newsalert/model.h"
#include "newsalert/phrases.h"
#include "newsalert/ruleset.h"
#include "newsalert/tagger.h"

struct hit {
    unsigned id;
    uint32_t start, end;
};

struct hits {
    struct hit v[64];
    size_t n;
};

static int on_hit(unsigned id, uint32_t start, uint32_t end, void *ctx)
{
    struct hits *h = ctx;
    if (h->n < 64)
        h->v[h->n++] = (struct hit){id, start, end};
    return 0;
}

/* A set of one pattern, caseless, bounded at both ends. */
static struct na_phrases *one(const char *expr, bool caseless, int want)
{
    struct na_phrases *p = na_phrases_new();
    const char *why;
    assert_non_null(p);
    int rc = na_phrases_add(p, 7, expr, caseless, true, true, &why);
    if (rc != want)
        fail_msg("'%s': got %d (%s), wanted %d", expr, rc, why ? why : "-", want);
    assert_int_equal(na_phrases_finish(p), 0);
    return p;
}

static struct hits scan(const struct na_phrases *p, const char *text)
{
    struct na_phrase_scratch s = {0};
    struct hits h = {.n = 0};
    assert_int_equal(na_phrases_scan(p, &s, text, strlen(text), on_hit, &h), 0);
    na_phrases_scratch_release(&s);
    return h;
}

static void test_takes_fixed_phrases_only(void **state)
{
    (void)state;
    static const char *const taken[] = {
        "military aid",
        "(military|security|defen[cs]e) (aid|assistance)",
        "aid(ed|ing)?",
        "air[\\s\\-]+defence",
        "(155|152)\\s?mm",
        "frozen (russian )?assets\\b|\\b(frozen|immobili[sz]ed) russian",
        "u\\.s\\. aid",
        "lend-lease",
        "(?:leaders|chiefs) meet",
        "g7",
    };
    static const char *const refused[] = {
        "pledg\\w*",                /* \w */
        "aid.",                     /* any character */
        "\\d[\\d.,]{0,15} billion", /* repetition past four */
        "aid[a-z]+",                /* unbounded */
        "(aid|\\$)",                /* ends on punctuation */
        "\xce\xb1id",               /* Greek, caseless */
        "aid\\b package",           /* inner \b */
        "(?i)aid",                  /* options */
        "aid(",                     /* unbalanced */
        "",                         /* empty */
    };
    for (size_t i = 0; i < sizeof(taken) / sizeof(*taken); i++)
        na_phrases_free(one(taken[i], true, 1));
    for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++)
        na_phrases_free(one(refused[i], true, 0));
    /* Case-sensitive, an accented word is fine: its bytes are exact. */
    na_phrases_free(one("Erdo\xc4\x9f"
                        "an",
                        false, 1));

    /* Not bounded at both ends: the tagger would accept a match inside a
     * word, which tokens cannot express. */
    struct na_phrases *p = na_phrases_new();
    const char *why;
    assert_int_equal(na_phrases_add(p, 1, "first aid", true, true, false, &why), 0);
    assert_non_null(why);
    assert_int_equal(na_phrases_pattern_count(p), 0);
    na_phrases_free(p);
}

static void test_finds_words_on_boundaries(void **state)
{
    (void)state;
    struct na_phrases *p = one("(military|security) (aid|assistance)", true, 1);
    struct hits h =
        scan(p, "MILITARY AID, paramilitary aid, security aide, Security assistance.");
    assert_int_equal(h.n, 2);
    assert_int_equal(h.v[0].start, 0);
    assert_int_equal(h.v[0].end, 12);
    assert_int_equal(h.v[1].start, 47);
    assert_int_equal(h.v[1].end, 66);
    /* An accented letter is part of the word: "aidé" is not "aid". */
    h = scan(p, "military aid\xc3\xa9 military aid\xe2\x80\x99s");
    assert_int_equal(h.n, 1);
    assert_int_equal(h.v[0].start, 15);
    na_phrases_free(p);
}

static void test_separators(void **state)
{
    (void)state;
    struct na_phrases *p = one("air[\\s\\-]+defence", true, 1);
    assert_int_equal(scan(p, "air defence").n, 1);
    assert_int_equal(scan(p, "air-defence").n, 1);
    assert_int_equal(scan(p, "air -\n\tdefence").n, 1);
    assert_int_equal(scan(p, "air\v\fdefence").n, 1);
    assert_int_equal(scan(p, "air, defence").n, 0);
    assert_int_equal(scan(p, "air\xc2\xa0"
                             "defence")
                         .n,
                     0); /* no-break space is not \s */
    na_phrases_free(p);

    /* Ending in punctuation: without \b after it, the gap after the last
     * word must begin with it; with \b, equal it, a word following. */
    struct na_phrases *q = na_phrases_new();
    const char *why;
    assert_int_equal(na_phrases_add(q, 1, "U\\.S\\.", false, true, false, &why), 1);
    assert_int_equal(na_phrases_add(q, 2, "leaders'", true, true, true, &why), 1);
    assert_int_equal(na_phrases_finish(q), 0);
    struct hits h = scan(q, "U.S.-led, U.S, the U.S. leaders' talks leaders'x U.S.");
    assert_int_equal(h.n, 4);
    assert_int_equal(h.v[0].id, 1);
    assert_int_equal(h.v[0].end, 4);
    assert_int_equal(h.v[1].start, 19);
    assert_int_equal(h.v[2].id, 2);
    assert_int_equal(h.v[2].start, 39);
    assert_int_equal(h.v[2].end, 47);
    assert_int_equal(h.v[3].end, 53);
    na_phrases_free(q);

    p = one("u\\.s\\. aid", true, 1);
    assert_int_equal(scan(p, "new U.S. aid").n, 1);
    assert_int_equal(scan(p, "new U.S aid").n, 0);
    assert_int_equal(scan(p, "new U.S.  aid").n, 0);
    na_phrases_free(p);
}

/* For one end, only the leftmost start: Vectorscan's leftmost
 * start-of-match mode. */
static void test_leftmost_start_per_end(void **state)
{
    (void)state;
    struct na_phrases *p =
        one("(urban search and rescue|search and rescue) teams", true, 1);
    struct hits h = scan(p, "urban search and rescue teams");
    assert_int_equal(h.n, 1);
    assert_int_equal(h.v[0].start, 0);
    na_phrases_free(p);

    /* Different ends from one start are all reported. */
    p = one("loans?|loan guarantees?", true, 1);
    h = scan(p, "loan guarantees");
    assert_int_equal(h.n, 2);
    assert_int_equal(h.v[0].end, 4);
    assert_int_equal(h.v[1].end, 15);
    na_phrases_free(p);
}

static void test_case(void **state)
{
    (void)state;
    struct na_phrases *p = one("NATO", false, 1);
    assert_int_equal(scan(p, "NATO and Nato and nato").n, 1);
    na_phrases_free(p);
    p = one("Erdo\xc4\x9f"
            "an",
            false, 1);
    assert_int_equal(scan(p, "Mr Erdo\xc4\x9f"
                             "an said")
                         .n,
                     1);
    assert_int_equal(scan(p, "Mr Erdogan said").n, 0);
    na_phrases_free(p);
    /* Caseless matching folds the long s and the Kelvin sign to ASCII, as
     * Vectorscan's caseless mode does. */
    p = one("security", true, 1);
    assert_int_equal(scan(p, "\xc5\xbf"
                             "ecurity")
                         .n,
                     1);
    na_phrases_free(p);
    p = one("kyiv", true, 1);
    assert_int_equal(scan(p, "\xe2\x84\xaa"
                             "yiv")
                         .n,
                     1);
    na_phrases_free(p);
    p = one("security", false, 1);
    assert_int_equal(scan(p, "\xc5\xbf"
                             "ecurity")
                         .n,
                     0);
    na_phrases_free(p);
    /* Latin-1 letters fold too, and the characters Vectorscan takes for
     * them. */
    p = one("communiqu[e\xc3\xa9]s?", true, 1);
    struct hits h =
        scan(p, "COMMUNIQU\xc3\x89, communiqu\xc3\xa9s, communique, communiqu\xc3\xaa");
    assert_int_equal(h.n, 3);
    na_phrases_free(p);
    p = one("\xc3\xa5land", true, 1);
    assert_int_equal(scan(p, "\xc3\x85land \xe2\x84\xab"
                             "land \xc3\xa5LAND")
                         .n,
                     3);
    na_phrases_free(p);
}

/* ---- the tagger, with and without the phrase matcher ----
 *
 * Both with the shipped model too: with the phrase matcher the model's
 * n-grams are built from its tokens, without it from the bytes, and with
 * features kept from the full occurrences. All three must decide alike. */

static void same_result(const struct na_result *a, const struct na_result *b,
                        const char *text)
{
    if (a->n_matches != b->n_matches || a->n_actors != b->n_actors ||
        a->truncated != b->truncated)
        fail_msg("'%s': %zu/%zu matches, %zu/%zu actors", text, a->n_matches,
                 b->n_matches, a->n_actors, b->n_actors);
    for (size_t i = 0; i < a->n_matches; i++) {
        const struct na_match *x = &a->matches[i], *y = &b->matches[i];
        if (x->pattern != y->pattern || x->start != y->start || x->end != y->end ||
            x->field != y->field || x->fate != y->fate ||
            x->contribution != y->contribution)
            fail_msg("'%s': match %zu: pattern %u %u-%u vs pattern %u %u-%u", text, i,
                     x->pattern, x->start, x->end, y->pattern, y->start, y->end);
    }
    for (size_t i = 0; i < a->n_actors; i++)
        assert_memory_equal(&a->actors[i], &b->actors[i], sizeof(a->actors[i]));
    for (size_t t = 0; t < a->n_tags; t++) {
        const struct na_tag_result *x = &a->tags[t], *y = &b->tags[t];
        if (x->fired != y->fired || x->score != y->score ||
            x->n_evidence != y->n_evidence || x->decision != y->decision ||
            x->confidence != y->confidence)
            fail_msg("'%s': tag %zu: fired %d/%d score %g/%g decision %.17g/%.17g", text, t,
                     x->fired, y->fired, x->score, y->score, x->decision, y->decision);
        for (size_t e = 0; e < x->n_evidence; e++)
            assert_memory_equal(&x->evidence[e], &y->evidence[e], sizeof(x->evidence[e]));
    }
}

/* Words the shipped rules care about, and some they do not, in the forms
 * that test the edges: case, accents, hyphens, apostrophes, word parts. */
static const char *const VOCAB[] = {
    "military",
    "Military",
    "aid",
    "AID",
    "aided",
    "aide",
    "assistance",
    "package",
    "packages",
    "air",
    "defence",
    "air-defence",
    "air defense",
    "NATO",
    "Nato",
    "summit",
    "summits",
    "summiteers",
    "leaders",
    "leaders'",
    "leaders\xe2\x80\x99",
    "talks",
    "communiqu\xc3\xa9",
    "COMMUNIQU\xc3\x89",
    "communique",
    "first",
    "first-aid",
    "hearing",
    "Star",
    "Alliance",
    "alliance",
    "alliance's",
    "joint",
    "declaration",
    "Ukraine",
    "Kyiv",
    "Erdo\xc4\x9f"
    "an",
    "Zelensky",
    "Putin",
    "met",
    "with",
    "president",
    "the",
    "of",
    "to",
    "$",
    "\xe2\x82\xac"
    "50",
    "1.5",
    "billion",
    "euros",
    "search",
    "and",
    "rescue",
    "teams",
    "urban",
    "U.S.",
    "u.s.",
    "EU",
    "E.U.",
    "frozen",
    "Russian",
    "assets",
    "pledged",
    "pledge",
    "loan",
    "loans",
    "guarantees",
    "xmultilateral",
    "multilateral",
    "development",
    "bank",
    "\xc5\xbf"
    "ecurity",
    "security",
    "G7",
    "g-7",
    "sent",
    "rescuers",
    "tents",
    "membership",
    "accession",
    "Finland",
    "Sweden",
    "signed",
    "pact",
    "treaty",
    "\xe2\x80\x94",
    ",",
    ".",
    "\n",
    "(",
    ")",
    "\"",
    "-",
    "--",
    /* where the phrase matcher's words and the model's n-grams part ways */
    "Russia's",
    "Russia\xe2\x80\x99s",
    "'s",
    "\xe2\x80\x99S",
    "s",
    "'",
    "snake_case",
    "aid_",
    "_",
    "2024",
    "F-16s",
    "Ankara\xe2\x80\x99s_",
};

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_tagger_same_with_and_without(void **state)
{
    (void)state;
    struct na_error err;
    struct na_ruleset_options ref = {.regex_only = true};
    struct na_ruleset *fast = na_ruleset_load(NA_SOURCE_DIR "/config/rules",
                                              NA_SOURCE_DIR "/config/actors.yaml", &err);
    struct na_ruleset *slow = na_ruleset_load_opts(
        NA_SOURCE_DIR "/config/rules", NA_SOURCE_DIR "/config/actors.yaml", &ref, &err);
    assert_non_null(fast);
    assert_non_null(slow);
    assert_non_null(na_ruleset_database(slow));
    struct na_tagger_limits lim = {.max_matches = 100000, .max_evidence = 3};
    struct na_tagger *a = na_tagger_new(fast, &lim, &err),
                     *b = na_tagger_new(slow, &lim, &err);
    assert_non_null(a);
    assert_non_null(b);
    struct na_tagger *am = na_tagger_new(fast, &lim, &err),
                     *bm = na_tagger_new(slow, &lim, &err),
                     *km = na_tagger_new(fast, &lim, &err);
    struct na_model *model = na_model_load(NA_SOURCE_DIR "/config/tagger.model", fast, &err);
    assert_non_null(model);
    assert_non_null(am);
    assert_non_null(bm);
    assert_non_null(km);
    na_tagger_set_model(am, model);
    na_tagger_set_model(bm, model);
    na_tagger_set_model(km, model);
    na_tagger_keep_features(km, true);

    /* Most of the shipped patterns go to the phrase matcher. */
    size_t on_tokens = 0;
    for (size_t i = 0; i < na_ruleset_pattern_count(fast); i++)
        on_tokens += na_ruleset_pattern(fast, (unsigned)i)->on_tokens;
    assert_true(on_tokens * 10 > na_ruleset_pattern_count(fast) * 9);
    for (size_t i = 0; i < na_ruleset_pattern_count(slow); i++)
        assert_false(na_ruleset_pattern(slow, (unsigned)i)->on_tokens);

    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char text[2048];
    for (int round = 0; round < 20000; round++) {
        size_t n = 0, words = 1 + rng_next(&seed) % 40;
        for (size_t w = 0; w < words; w++) {
            const char *v = VOCAB[rng_next(&seed) % (sizeof(VOCAB) / sizeof(*VOCAB))];
            static const char *const gaps[] = {" ", " ", " ", "", "  ", "-", "\n", ". "};
            const char *g = gaps[rng_next(&seed) % 8];
            if (n + strlen(v) + strlen(g) + 1 >= sizeof(text))
                break;
            n += (size_t)sprintf(text + n, "%s%s", g, v);
        }
        const struct na_result *ra, *rb;
        size_t cut = rng_next(&seed) % (n + 1); /* headline | body */
        while (cut > 0 && (text[cut] & 0xc0) == 0x80)
            cut--;
        assert_int_equal(na_tagger_tag(a, text, cut, text + cut, n - cut, &ra, &err), 0);
        assert_int_equal(na_tagger_tag(b, text, cut, text + cut, n - cut, &rb, &err), 0);
        same_result(ra, rb, text);
        assert_int_equal(na_tagger_tag(am, text, cut, text + cut, n - cut, &ra, &err), 0);
        assert_int_equal(na_tagger_tag(bm, text, cut, text + cut, n - cut, &rb, &err), 0);
        same_result(ra, rb, text);
        assert_int_equal(na_tagger_tag(km, text, cut, text + cut, n - cut, &rb, &err), 0);
        same_result(ra, rb, text);
    }
    na_tagger_free(a);
    na_tagger_free(b);
    na_tagger_free(am);
    na_tagger_free(bm);
    na_tagger_free(km);
    na_model_free(model);
    na_ruleset_free(fast);
    na_ruleset_free(slow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_takes_fixed_phrases_only),
        cmocka_unit_test(test_finds_words_on_boundaries),
        cmocka_unit_test(test_separators),
        cmocka_unit_test(test_leftmost_start_per_end),
        cmocka_unit_test(test_case),
        cmocka_unit_test(test_tagger_same_with_and_without),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
