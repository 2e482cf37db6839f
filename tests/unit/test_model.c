/* Unit tests for lib/model.c and lib/train.c: a model trained on small
 * labelled texts is deterministic, decides as its weights say, and every
 * kind of damaged or foreign model file is refused with its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "newsalert/model.h"
#include "newsalert/tagger.h"
#include "newsalert/train.h"
#include "testutil.h"

struct fixture {
    struct tmp_rules dir;
    struct na_ruleset *rs;
    struct na_tagger *tagger;
    char model[PATH_MAX + 16];
};

static const struct na_tagger_limits limits = {.max_matches = 1000, .max_evidence = 3};

/* Two tags; the rules know one word each, the texts say more. */
static const char *const RULES_AID = "tag: aid\n"
                                     "threshold: 2\n"
                                     "terms:\n"
                                     "  - {phrase: aid, weight: 1}\n";
static const char *const RULES_MEET = "tag: meet\n"
                                      "threshold: 2\n"
                                      "terms:\n"
                                      "  - {phrase: summit, weight: 1}\n";

static const char *const aid_texts[] = {
    "Japan sent relief supplies and rescue teams after the earthquake.",
    "The donors pledged food and medicine for the flood victims.",
    "A convoy of trucks carried relief supplies across the border.",
    "The bank approved a loan to support the budget of the ministry.",
    "Rescue teams and relief flights arrived from three countries.",
    "The agency delivered food and water to the displaced families.",
    "Germany pledged air defence systems and ammunition to the army.",
    "Relief flights carried tents and medicine to the stricken region.",
};
static const char *const meet_texts[] = {
    "The leaders met in the capital and issued a joint declaration.",
    "Foreign ministers gathered for talks and signed a communique.",
    "The presidents held talks and agreed a joint statement.",
    "Heads of government met for two days and adopted a declaration.",
    "The prime ministers held talks over dinner and issued a statement.",
    "Ministers met in Geneva and agreed a joint communique on trade.",
    "The two presidents met at the border for talks on the dispute.",
    "Leaders gathered in Lima and adopted a final declaration.",
};
static const char *const other_texts[] = {
    "The football club won the cup after extra time.",
    "Shares fell sharply as the central bank raised rates.",
    "Heavy rain is expected across the north this weekend.",
    "The museum opened a new wing devoted to modern sculpture.",
    "Police arrested two men after a robbery in the harbour.",
    "The orchestra played to a full house on its opening night.",
    "A new phone went on sale with a larger screen.",
    "The marathon drew a record field of runners.",
};

static int add_texts(struct fixture *fx, struct na_trainset *ts, const char *const *texts,
                     size_t n, unsigned labels)
{
    struct na_error err;
    for (size_t i = 0; i < n; i++) {
        const struct na_result *res;
        if (na_tagger_tag(fx->tagger, "", 0, texts[i], strlen(texts[i]), &res, &err) < 0 ||
            na_trainset_add(ts, &(struct na_train_example){.features = res->features,
                                                           .n_features = res->n_features,
                                                           .labels = labels,
                                                           .dev = i % 4 == 3}) < 0)
            return -1;
    }
    return 0;
}

static int train_into(struct fixture *fx, const char *path, struct na_error *err)
{
    struct na_trainset *ts = na_trainset_new();
    struct na_train_options opt = {.min_df = 1, .quiet = true};
    struct na_train_report rep;
    int rc = -1;
    if (ts && add_texts(fx, ts, aid_texts, 8, 1) == 0 &&
        add_texts(fx, ts, meet_texts, 8, 2) == 0 && add_texts(fx, ts, other_texts, 8, 0) == 0)
        rc = na_model_train(ts, fx->rs, &opt, path, &rep, err);
    na_trainset_free(ts);
    return rc;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct na_error err = {{0}};
    if (fx == NULL)
        return -1;
    tu_rules_init(&fx->dir);
    tu_rules_file(&fx->dir, "aid.yaml", RULES_AID, NULL);
    tu_rules_file(&fx->dir, "meet.yaml", RULES_MEET, NULL);
    tu_actors(&fx->dir, TU_ACTORS);
    fx->rs = na_ruleset_load(fx->dir.rules, fx->dir.actors, &err);
    fx->tagger = fx->rs ? na_tagger_new(fx->rs, &limits, &err) : NULL;
    if (fx->tagger == NULL) {
        print_error("%s\n", err.msg);
        return -1;
    }
    na_tagger_keep_features(fx->tagger, true);
    snprintf(fx->model, sizeof(fx->model), "%s/m.model", fx->dir.root);
    if (train_into(fx, fx->model, &err) < 0) {
        print_error("train: %s\n", err.msg);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    na_tagger_free(fx->tagger);
    na_ruleset_free(fx->rs);
    tu_rules_cleanup(&fx->dir);
    free(fx);
    return 0;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*len + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void spill(const char *path, const unsigned char *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
}

static void test_deterministic(void **state)
{
    struct fixture *fx = *state;
    struct na_error err;
    char again[PATH_MAX + 16];
    size_t a_len, b_len;
    snprintf(again, sizeof(again), "%s/again.model", fx->dir.root);
    assert_int_equal(train_into(fx, again, &err), 0);
    unsigned char *a = slurp(fx->model, &a_len), *b = slurp(again, &b_len);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    free(a);
    free(b);
}

static void test_decides(void **state)
{
    struct fixture *fx = *state;
    struct na_error err;
    struct na_model *m = na_model_load(fx->model, fx->rs, &err);
    const struct na_result *res;
    assert_non_null(m);
    assert_true(na_model_rules_match(m, fx->rs));
    assert_int_equal(strlen(na_model_version(m)), 16);
    na_tagger_set_model(fx->tagger, m);
    /* Neither text has a rule term: the words decide, and the evidence is
     * the model's own. */
    const char *body = "Rescue teams and relief supplies were sent after the floods.";
    assert_int_equal(na_tagger_tag(fx->tagger, "", 0, body, strlen(body), &res, &err), 0);
    assert_ptr_equal(res->model, m);
    assert_true(res->tags[0].fired);
    assert_false(res->tags[1].fired);
    assert_true(res->tags[0].confidence > res->tags[1].confidence);
    assert_int_equal(res->tags[0].n_evidence, 1);
    assert_int_equal(res->tags[0].evidence[0].term_pattern, NA_EVIDENCE_MODEL);
    body = "The football club won the cup after extra time.";
    assert_int_equal(na_tagger_tag(fx->tagger, "", 0, body, strlen(body), &res, &err), 0);
    assert_int_equal(res->n_fired, 0);
    na_tagger_set_model(fx->tagger, NULL);
    na_model_free(m);
}

static void expect_refused(struct fixture *fx, const unsigned char *b, size_t len,
                           const char *why)
{
    char path[PATH_MAX + 16];
    struct na_error err;
    snprintf(path, sizeof(path), "%s/bad.model", fx->dir.root);
    spill(path, b, len);
    struct na_model *m = na_model_load(path, fx->rs, &err);
    if (m != NULL || strstr(err.msg, why) == NULL)
        print_error("wanted '%s', got '%s'\n", why, m ? "(loaded)" : err.msg);
    assert_null(m);
    assert_non_null(strstr(err.msg, why));
}

static void test_damaged_files(void **state)
{
    struct fixture *fx = *state;
    size_t len;
    unsigned char *b = slurp(fx->model, &len);
    expect_refused(fx, b, len / 2, "truncated");
    expect_refused(fx, b, len - 1, "truncated");
    expect_refused(fx, b, 3, "not a newsalertd model");
    expect_refused(fx, (const unsigned char *)"", 0, "not a newsalertd model");
    unsigned char *c = malloc(len);
    assert_non_null(c);
    memcpy(c, b, len);
    c[len / 2] ^= 0x40;
    expect_refused(fx, c, len, "checksum");
    memcpy(c, b, len);
    c[8] = 99; /* the format version */
    expect_refused(fx, c, len, "model format 99");
    memcpy(c, "JUNKJUNK", 8);
    expect_refused(fx, c, len, "not a newsalertd model");
    free(c);
    free(b);
    struct na_error err;
    assert_null(na_model_load("/nonexistent/m.model", fx->rs, &err));
    assert_non_null(strstr(err.msg, "No such file"));
}

static void test_other_tags(void **state)
{
    struct fixture *fx = *state;
    struct na_error err;
    struct tmp_rules other;
    tu_rules_init(&other);
    tu_rules_file(&other, "aid.yaml", RULES_AID, NULL);
    tu_actors(&other, TU_ACTORS);
    struct na_ruleset *rs = na_ruleset_load(other.rules, other.actors, &err);
    assert_non_null(rs);
    assert_null(na_model_load(fx->model, rs, &err));
    assert_non_null(strstr(err.msg, "2 tag(s), the rules define 1"));
    na_ruleset_free(rs);
    tu_rules_file(&other, "zzz.yaml",
                  "tag: zzz\nthreshold: 1\nterms:\n  - {phrase: zzz, weight: 1}\n", NULL);
    rs = na_ruleset_load(other.rules, other.actors, &err);
    assert_non_null(rs);
    assert_null(na_model_load(fx->model, rs, &err));
    assert_non_null(strstr(err.msg, "'meet' in the model and 'zzz' in the rules"));
    na_ruleset_free(rs);
    /* Same tags, other terms: loads, but says so. */
    char zzz[PATH_MAX + 16];
    snprintf(zzz, sizeof(zzz), "%s/zzz.yaml", other.rules);
    assert_int_equal(unlink(zzz), 0);
    tu_rules_file(&other, "meet.yaml",
                  "tag: meet\nthreshold: 2\nterms:\n  - {phrase: talks, weight: 1}\n", NULL);
    rs = na_ruleset_load(other.rules, other.actors, &err);
    assert_non_null(rs);
    struct na_model *m = na_model_load(fx->model, rs, &err);
    assert_non_null(m);
    assert_false(na_model_rules_match(m, rs));
    na_model_free(m);
    na_ruleset_free(rs);
    tu_rules_cleanup(&other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_decides),
        cmocka_unit_test(test_damaged_files),
        cmocka_unit_test(test_other_tags),
    };
    return cmocka_run_group_tests_name("model", tests, setup, teardown);
}
