/* libFuzzer target: the tagger over the shipped rules and actors, on
 * arbitrary bytes. The input is "headline\nbody" (split at the first
 * newline), the limits are the daemon's defaults, and an article that fires
 * is built into an Alert, packed, unpacked and turned into JSON, as the
 * daemon and `newsalert tail` would. The rules are found in
 * $NA_FUZZ_CONFIG_DIR (rules/ and actors.yaml), else in the source tree's
 * config/. */
#include <math.h>

#include "fuzz.h"
#include "newsalert/alert.h"
#include "newsalert/model.h"
#include "newsalert/tagger.h"
#include "newsalert/utf8.h"

static struct na_ruleset *rs;
static struct na_tagger *tagger;
static struct na_model *model;
static struct na_alert_builder *builder;

static void teardown(void)
{
    na_alert_builder_free(builder);
    na_tagger_free(tagger);
    na_model_free(model);
    na_ruleset_free(rs);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char rules[PATH_MAX], actors[PATH_MAX];
    struct na_error err = {{0}};
    struct na_tagger_limits lim = {.max_matches = FUZZ_MAX_MATCHES,
                                   .max_evidence = FUZZ_MAX_EVIDENCE};
    (void)argc;
    (void)argv;

    const char *dir = fuzz_config_paths(rules, actors);
    rs = na_ruleset_load(rules, actors, &err);
    if (rs == NULL) {
        fprintf(stderr, "fuzz_tagger: %s\n", err.msg);
        exit(1);
    }
    tagger = na_tagger_new(rs, &lim, &err);
    /* The learned layer too, when the model beside the rules loads. */
    char model_path[PATH_MAX];
    snprintf(model_path, sizeof(model_path), "%s/tagger.model", dir);
    if (tagger && access(model_path, R_OK) == 0) {
        model = na_model_load(model_path, rs, &err);
        if (model == NULL) {
            fprintf(stderr, "fuzz_tagger: %s\n", err.msg);
            exit(1);
        }
        na_tagger_set_model(tagger, model);
    }
    builder = na_alert_builder_new(FUZZ_MAX_EVIDENCE_BYTES);
    if (tagger == NULL || builder == NULL) {
        fprintf(stderr, "fuzz_tagger: %s\n", tagger ? "out of memory" : err.msg);
        exit(1);
    }
    atexit(teardown);
    return 0;
}

static void check_result(const struct na_result *res, size_t hl, size_t bl)
{
    FUZZ_CHECK(res->n_tags == na_ruleset_tag_count(rs));
    FUZZ_CHECK(res->n_matches <= FUZZ_MAX_MATCHES);
    size_t fired = 0;
    for (size_t i = 0; i < res->n_tags; i++) {
        const struct na_tag_result *r = &res->tags[i];
        FUZZ_CHECK(r->tag == i);
        FUZZ_CHECK(isfinite(r->score) && r->score >= 0);
        FUZZ_CHECK(r->confidence >= 0 && r->confidence <= 1);
        FUZZ_CHECK(r->n_evidence <= FUZZ_MAX_EVIDENCE);
        fired += r->fired;
        for (size_t k = 0; k < r->n_evidence; k++) {
            const struct na_evidence *e = &r->evidence[k];
            size_t len = e->field == NA_FIELD_HEADLINE ? hl : bl;
            FUZZ_CHECK(e->field == NA_FIELD_HEADLINE || e->field == NA_FIELD_BODY);
            FUZZ_CHECK(e->start < e->end && e->end <= len);
            FUZZ_CHECK(e->term_start < e->term_end && e->term_end <= len);
            FUZZ_CHECK(e->weight > 0);
        }
    }
    FUZZ_CHECK(fired == res->n_fired);
    for (size_t i = 0; i < res->n_matches; i++) {
        const struct na_match *m = &res->matches[i];
        size_t len = m->field == NA_FIELD_HEADLINE ? hl : bl;
        FUZZ_CHECK(m->start <= m->end && m->end <= len);
        FUZZ_CHECK(m->tag < res->n_tags);
    }
    for (size_t i = 0; i < res->n_actors; i++) {
        FUZZ_CHECK(res->actors[i].actor < na_ruleset_actor_count(rs));
        FUZZ_CHECK(res->actors[i].mentions > 0);
    }
}

/* Builds, packs, unpacks and prints the alert, as the daemon and a consumer
 * would. */
static void alert(char *headline, char *body, const struct na_result *res)
{
    Newsalert__V1__Article art;
    struct na_alert_meta meta = {.seq = 1, .epoch = 1, .received_at_ms = 1};

    newsalert__v1__article__init(&art);
    art.id = "fuzz";
    art.headline = headline;
    art.body = body;
    Newsalert__V1__Alert *a = na_alert_build(builder, &art, res, rs, &meta);
    FUZZ_CHECK(a != NULL);
    FUZZ_CHECK(a->n_tags == res->n_fired);
    for (size_t i = 0; i < a->n_tags; i++)
        for (size_t k = 0; k < a->tags[i]->n_evidence; k++)
            FUZZ_CHECK(strlen(a->tags[i]->evidence[k]->sentence) <= FUZZ_MAX_EVIDENCE_BYTES);
    a->topic = "alert.fuzz";
    size_t len = newsalert__v1__alert__get_packed_size(a);
    uint8_t *buf = malloc(len ? len : 1);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(newsalert__v1__alert__pack(a, buf) == len);
    Newsalert__V1__Alert *back = newsalert__v1__alert__unpack(NULL, len, buf);
    /* protobuf-c refuses strings that are not UTF-8, which arbitrary bytes
     * need not be; the daemon only tags validated articles. */
    if (back) {
        FUZZ_CHECK(back->seq == 1 && back->n_tags == a->n_tags);
        json_decref(na_alert_to_json(back));
        newsalert__v1__alert__free_unpacked(back, NULL);
    }
    json_decref(na_alert_to_json(a));
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hl = nl ? (size_t)(nl - data) : size;
    size_t bl = nl ? size - hl - 1 : 0;
    /* NUL-terminated copies, as protobuf-c hands them to the daemon. */
    char *headline = malloc(hl + 1), *body = malloc(bl + 1);
    const struct na_result *res;
    struct na_error err = {{0}};

    FUZZ_CHECK(headline != NULL && body != NULL);
    memcpy(headline, data, hl);
    headline[hl] = '\0';
    if (bl)
        memcpy(body, nl + 1, bl);
    body[bl] = '\0';
    /* Text that is not UTF-8 is refused; the same text with its non-ASCII
     * bytes made ASCII is then tagged, so the scan still sees it. */
    if (!na_utf8_valid(headline, hl) || !na_utf8_valid(body, bl)) {
        FUZZ_CHECK(na_tagger_tag(tagger, headline, hl, body, bl, &res, &err) == -1);
        for (size_t i = 0; i < hl; i++)
            headline[i] = (char)((unsigned char)headline[i] & 0x7f);
        for (size_t i = 0; i < bl; i++)
            body[i] = (char)((unsigned char)body[i] & 0x7f);
    }
    FUZZ_CHECK(na_tagger_tag(tagger, headline, hl, body, bl, &res, &err) == 0);
    check_result(res, hl, bl);
    if (res->n_fired)
        alert(headline, body, res);
    free(headline);
    free(body);
    return 0;
}
