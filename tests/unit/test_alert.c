/* Unit tests for lib/alert.c: building newsalert.v1.Alert messages from
 * tagging results, and their JSON form. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "newsalert/alert.h"
#include "newsalert/ruleset.h"
#include "newsalert/tagger.h"
#include "newsalert/utf8.h"
#include "testutil.h"

#ifndef NA_SOURCE_DIR
#error "NA_SOURCE_DIR must be defined (see tests/unit/CMakeLists.txt)"
#endif

struct fixture {
    struct na_ruleset *rs;
    struct na_tagger *tagger;
    char *headline, *body; /* the seed article */
    Newsalert__V1__Article article;
};

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size > 0);
    rewind(f);
    char *s = malloc((size_t)size + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)size, f), (size_t)size);
    s[size] = '\0';
    fclose(f);
    return s;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    fx->tagger = tu_shipped_tagger(&fx->rs);
    if (fx->tagger == NULL)
        return -1;

    char *text = read_all(NA_SOURCE_DIR "/tests/corpus/seed-article.txt");
    char *nl = strchr(text, '\n');
    if (nl == NULL)
        return -1;
    *nl = '\0';
    fx->headline = strdup(text);
    fx->body = strdup(nl + 1);
    free(text);

    newsalert__v1__article__init(&fx->article);
    fx->article.id = "seed-1";
    fx->article.source = "kyivindependent";
    fx->article.url = "https://example.org/seed-1";
    fx->article.headline = fx->headline;
    fx->article.body = fx->body;
    fx->article.published_at_ms = 1720137600000;
    fx->article.language = "en";
    fx->article.feed_seq = 99;
    fx->article.revision = 2;
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
    free(fx->headline);
    free(fx->body);
    free(fx);
    return 0;
}

static const struct na_result *tag_seed(struct fixture *fx)
{
    const struct na_result *res = NULL;
    struct na_error err = {{0}};
    assert_int_equal(na_tagger_tag(fx->tagger, fx->headline, strlen(fx->headline),
                                   fx->body, strlen(fx->body), &res, &err),
                     0);
    assert_non_null(res);
    return res;
}

/* Packs alert and unpacks it again: what a subscriber sees. */
static Newsalert__V1__Alert *roundtrip(const Newsalert__V1__Alert *alert)
{
    size_t len = newsalert__v1__alert__get_packed_size(alert);
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    assert_int_equal(newsalert__v1__alert__pack(alert, buf), len);
    Newsalert__V1__Alert *out = newsalert__v1__alert__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(out);
    return out;
}

static void assert_substring(const char *text, uint32_t start, uint32_t end,
                             const char *got)
{
    assert_true(start <= end);
    assert_true(end <= strlen(text));
    size_t n = end - start;
    if (strlen(got) != n || memcmp(text + start, got, n) != 0)
        print_error("wanted [%.*s], got [%s]\n", (int)n, text + start, got);
    assert_int_equal(strlen(got), n);
    assert_memory_equal(text + start, got, n);
}

static void test_build_seed(void **state)
{
    struct fixture *fx = *state;
    const struct na_result *res = tag_seed(fx);
    struct na_alert_builder *b = na_alert_builder_new(4096);
    struct na_alert_meta meta = {.seq = 17, .epoch = 5, .received_at_ms = 1720137601234};
    assert_non_null(b);
    assert_true(res->n_fired >= 3);

    Newsalert__V1__Alert *built = na_alert_build(b, &fx->article, res, fx->rs, &meta);
    assert_non_null(built);
    /* topic and topic_seq are for the publisher. */
    assert_true(built->topic == NULL || built->topic[0] == '\0');
    assert_int_equal(built->topic_seq, 0);

    Newsalert__V1__Alert *a = roundtrip(built);
    assert_int_equal(a->seq, 17);
    assert_int_equal(a->epoch, 5);
    assert_int_equal(a->received_at_ms, 1720137601234);
    assert_string_equal(a->article_id, "seed-1");
    assert_string_equal(a->source, "kyivindependent");
    assert_string_equal(a->url, "https://example.org/seed-1");
    assert_string_equal(a->headline, fx->headline);
    assert_int_equal(a->published_at_ms, 1720137600000);
    assert_string_equal(a->language, "en");
    assert_int_equal(a->feed_seq, 99);
    assert_int_equal(a->revision, 2);

    /* One TagResult per fired tag, strongest first. */
    assert_int_equal(a->n_tags, res->n_fired);
    int best = 0;
    for (size_t i = 0; i < a->n_tags; i++) {
        const Newsalert__V1__TagResult *t = a->tags[i];
        int idx = na_ruleset_tag_find(fx->rs, t->tag);
        assert_true(idx >= 0);
        const struct na_tag_result *r = &res->tags[idx];
        assert_true(r->fired);
        assert_true(t->score == r->score);
        assert_true(t->confidence == r->confidence);
        assert_true(t->threshold == na_ruleset_tag(fx->rs, (size_t)idx)->threshold);
        assert_int_equal(t->priority, r->priority);
        if ((int)t->priority > best)
            best = (int)t->priority;
        if (i > 0) {
            const Newsalert__V1__TagResult *p = a->tags[i - 1];
            assert_true(p->confidence > t->confidence ||
                        (p->confidence == t->confidence && strcmp(p->tag, t->tag) < 0));
        }
        /* Evidence: the sentence and the term are the text at their offsets. */
        assert_int_equal(t->n_evidence, r->n_evidence);
        assert_true(t->n_evidence >= 1);
        for (size_t k = 0; k < t->n_evidence; k++) {
            const Newsalert__V1__Evidence *e = t->evidence[k];
            const char *text = e->field == NEWSALERT__V1__FIELD__FIELD_HEADLINE
                                   ? fx->headline
                                   : fx->body;
            assert_true(e->field == NEWSALERT__V1__FIELD__FIELD_HEADLINE ||
                        e->field == NEWSALERT__V1__FIELD__FIELD_BODY);
            assert_int_equal(e->field, r->evidence[k].field);
            assert_int_equal(e->start, r->evidence[k].start);
            assert_int_equal(e->end, r->evidence[k].end);
            assert_substring(text, e->start, e->end, e->sentence);
            assert_substring(text, e->term_start, e->term_end, e->term);
            assert_true(e->term_start >= e->start && e->term_end <= e->end);
            assert_true(e->weight == r->evidence[k].weight);
            assert_true(na_utf8_valid(e->sentence, strlen(e->sentence)));
        }
    }
    assert_int_equal(a->priority, best);
    for (const char *const *w = (const char *const[]){"aid", "alliance", "summit", NULL};
         *w; w++) {
        bool found = false;
        for (size_t i = 0; i < a->n_tags; i++)
            if (!strcmp(a->tags[i]->tag, *w))
                found = true;
        assert_true(found);
    }

    /* Actors, most mentioned first, as the tagger found them. */
    assert_int_equal(a->n_actors, res->n_actors);
    for (size_t i = 0; i < a->n_actors; i++) {
        const struct na_actor *def = na_ruleset_actor(fx->rs, res->actors[i].actor);
        assert_string_equal(a->actors[i]->code, def->code);
        assert_string_equal(a->actors[i]->name, def->name);
        assert_int_equal(a->actors[i]->kind, def->kind);
        assert_int_equal(a->actors[i]->mentions, res->actors[i].mentions);
        if (i > 0)
            assert_true(a->actors[i]->mentions <= a->actors[i - 1]->mentions);
    }

    newsalert__v1__alert__free_unpacked(a, NULL);
    na_alert_builder_free(b);
    na_alert_builder_free(NULL);
}

/* Every cap on evidence sentences: each sentence is a prefix of the full one,
 * no longer than the cap, cut only on a character boundary, and as long as
 * possible. */
static void test_max_evidence_bytes(void **state)
{
    struct fixture *fx = *state;
    const struct na_result *res = tag_seed(fx);
    bool cut_inside_char = false;

    for (size_t max = 1; max <= 300; max++) {
        struct na_alert_builder *b = na_alert_builder_new(max);
        struct na_alert_meta meta = {.seq = max};
        assert_non_null(b);
        Newsalert__V1__Alert *built = na_alert_build(b, &fx->article, res, fx->rs, &meta);
        assert_non_null(built);
        Newsalert__V1__Alert *a = roundtrip(built);
        for (size_t i = 0; i < a->n_tags; i++)
            for (size_t k = 0; k < a->tags[i]->n_evidence; k++) {
                const Newsalert__V1__Evidence *e = a->tags[i]->evidence[k];
                const char *text = e->field == NEWSALERT__V1__FIELD__FIELD_HEADLINE
                                       ? fx->headline
                                       : fx->body;
                const char *full = text + e->start;
                size_t full_len = e->end - e->start, got = strlen(e->sentence);
                assert_true(got <= max);
                assert_true(got <= full_len);
                assert_memory_equal(e->sentence, full, got);
                assert_true(na_utf8_valid(e->sentence, got));
                if (full_len <= max) {
                    assert_int_equal(got, full_len);
                } else {
                    /* Cut where a character starts, within 3 bytes of the cap. */
                    assert_true((full[got] & 0xc0) != 0x80);
                    assert_true(max - got <= 3);
                    /* ... and the character that starts there does not fit. */
                    unsigned char lead = (unsigned char)full[got];
                    size_t clen = lead < 0x80    ? 1
                                  : lead >= 0xf0 ? 4
                                  : lead >= 0xe0 ? 3
                                                 : 2;
                    assert_true(got + clen > max);
                    if (got < max)
                        cut_inside_char = true;
                }
                /* The term is never cut. */
                assert_substring(text, e->term_start, e->term_end, e->term);
            }
        newsalert__v1__alert__free_unpacked(a, NULL);
        na_alert_builder_free(b);
    }
    /* The seed's typographic apostrophes make some cap fall inside one. */
    assert_true(cut_inside_char);
}

/* A hand-made result over a sentence of multi-byte characters. */
static void test_max_evidence_multibyte(void **state)
{
    struct fixture *fx = *state;
    /* 1, 2, 3 and 4-byte characters. */
    const char *body =
        "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 aid \xe2\x80\x99\xc3\xbc\xf0\x9f\x8c\x8d.";
    Newsalert__V1__Article art;
    newsalert__v1__article__init(&art);
    art.id = "mb";
    art.body = (char *)body;

    int tag = na_ruleset_tag_find(fx->rs, "aid");
    assert_true(tag >= 0);
    struct na_evidence ev = {.field = NA_FIELD_BODY,
                             .start = 0,
                             .end = (uint32_t)strlen(body),
                             .term_start = 11,
                             .term_end = 14,
                             .weight = 3};
    struct na_actor_hit hit = {.actor = 0, .mentions = 2};
    struct na_result res;
    memset(&res, 0, sizeof(res));
    res.n_tags = na_ruleset_tag_count(fx->rs);
    for (size_t i = 0; i < res.n_tags; i++)
        res.tags[i].tag = (unsigned)i;
    res.tags[tag] = (struct na_tag_result){.tag = (unsigned)tag,
                                           .score = 6,
                                           .confidence = 0.75,
                                           .priority = NA_PRIORITY_NORMAL,
                                           .fired = true,
                                           .evidence = &ev,
                                           .n_evidence = 1};
    res.n_fired = 1;
    res.actors = &hit;
    res.n_actors = 1;

    size_t len = strlen(body);
    for (size_t max = 1; max <= len + 2; max++) {
        struct na_alert_builder *b = na_alert_builder_new(max);
        struct na_alert_meta meta = {.seq = 1};
        Newsalert__V1__Alert *a = na_alert_build(b, &art, &res, fx->rs, &meta);
        assert_non_null(a);
        assert_int_equal(a->n_tags, 1);
        assert_string_equal(a->tags[0]->tag, "aid");
        assert_int_equal(a->tags[0]->priority, NEWSALERT__V1__PRIORITY__PRIORITY_NORMAL);
        assert_int_equal(a->priority, NEWSALERT__V1__PRIORITY__PRIORITY_NORMAL);
        assert_int_equal(a->tags[0]->n_evidence, 1);
        const char *s = a->tags[0]->evidence[0]->sentence;
        size_t got = strlen(s);
        /* The expected cut: the last character boundary <= max. */
        size_t want = max < len ? max : len;
        while (want > 0 && want < len && ((unsigned char)body[want] & 0xc0) == 0x80)
            want--;
        assert_int_equal(got, want);
        assert_memory_equal(s, body, got);
        assert_true(na_utf8_valid(s, got));
        assert_string_equal(a->tags[0]->evidence[0]->term, "aid");
        assert_int_equal(a->n_actors, 1);
        assert_int_equal(a->actors[0]->mentions, 2);
        na_alert_builder_free(b);
    }
}

static void test_builder_reuse(void **state)
{
    struct fixture *fx = *state;
    struct na_alert_builder *b = na_alert_builder_new(200);
    struct na_alert_meta meta = {.seq = 1};
    assert_non_null(b);

    /* A small alert first, then the seed's larger one, then the small again:
     * the builder grows and each alert is complete. */
    const struct na_result *res;
    struct na_error err = {{0}};
    const char *h = "NATO allies agree to a new security guarantee";
    const char *bd = "NATO allies agreed on Article 5 security guarantees at the summit.";
    Newsalert__V1__Article small;
    newsalert__v1__article__init(&small);
    small.id = "small";
    small.headline = (char *)h;
    small.body = (char *)bd;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(
            na_tagger_tag(fx->tagger, h, strlen(h), bd, strlen(bd), &res, &err), 0);
        assert_true(res->n_fired >= 1);
        Newsalert__V1__Alert *a = na_alert_build(b, &small, res, fx->rs, &meta);
        assert_non_null(a);
        assert_string_equal(a->article_id, "small");
        assert_int_equal(a->n_tags, res->n_fired);
        Newsalert__V1__Alert *u = roundtrip(a);
        assert_int_equal(u->n_tags, res->n_fired);
        newsalert__v1__alert__free_unpacked(u, NULL);

        res = tag_seed(fx);
        meta.seq++;
        a = na_alert_build(b, &fx->article, res, fx->rs, &meta);
        assert_non_null(a);
        assert_string_equal(a->article_id, "seed-1");
        assert_int_equal(a->n_tags, res->n_fired);
        assert_int_equal(a->n_actors, res->n_actors);
        u = roundtrip(a);
        assert_int_equal(u->seq, meta.seq);
        newsalert__v1__alert__free_unpacked(u, NULL);
    }
    na_alert_builder_free(b);
}

static void test_to_json(void **state)
{
    struct fixture *fx = *state;
    const struct na_result *res = tag_seed(fx);
    struct na_alert_builder *b = na_alert_builder_new(4096);
    /* An epoch above 2^53, where a double would round it. */
    struct na_alert_meta meta = {
        .seq = 42, .epoch = 9007199254740993ULL, .received_at_ms = 77, .update_of = 41};
    Newsalert__V1__Alert *a = na_alert_build(b, &fx->article, res, fx->rs, &meta);
    assert_non_null(a);

    json_t *o = na_alert_to_json(a);
    assert_non_null(o);
    assert_true(json_is_object(o));
    /* Every 64-bit field is a decimal string, as in protobuf's JSON
     * mapping; 32-bit ones stay numbers. */
    assert_string_equal(json_string_value(json_object_get(o, "seq")), "42");
    assert_string_equal(json_string_value(json_object_get(o, "epoch")), "9007199254740993");
    assert_string_equal(json_string_value(json_object_get(o, "received_at_ms")), "77");
    assert_string_equal(json_string_value(json_object_get(o, "published_at_ms")),
                        "1720137600000");
    assert_string_equal(json_string_value(json_object_get(o, "feed_seq")), "99");
    assert_string_equal(json_string_value(json_object_get(o, "update_of")), "41");
    assert_string_equal(json_string_value(json_object_get(o, "topic_seq")), "0");
    assert_true(json_is_integer(json_object_get(o, "revision")));
    assert_string_equal(json_string_value(json_object_get(o, "article_id")), "seed-1");
    assert_string_equal(json_string_value(json_object_get(o, "headline")), fx->headline);

    json_t *tags = json_object_get(o, "tags");
    assert_true(json_is_array(tags));
    assert_int_equal(json_array_size(tags), a->n_tags);
    for (size_t i = 0; i < json_array_size(tags); i++) {
        json_t *t = json_array_get(tags, i);
        assert_string_equal(json_string_value(json_object_get(t, "tag")),
                            a->tags[i]->tag);
        const char *prio = json_string_value(json_object_get(t, "priority"));
        assert_non_null(prio);
        assert_string_equal(prio,
                            na_priority_name((enum na_priority)a->tags[i]->priority));
        assert_true(fabs(json_real_value(json_object_get(t, "confidence")) -
                         a->tags[i]->confidence) < 1e-12);
        json_t *evs = json_object_get(t, "evidence");
        assert_true(json_is_array(evs));
        assert_int_equal(json_array_size(evs), a->tags[i]->n_evidence);
        for (size_t k = 0; k < json_array_size(evs); k++) {
            json_t *e = json_array_get(evs, k);
            const char *field = json_string_value(json_object_get(e, "field"));
            assert_non_null(field);
            assert_true(!strcmp(field, "headline") || !strcmp(field, "body"));
            assert_string_equal(json_string_value(json_object_get(e, "sentence")),
                                a->tags[i]->evidence[k]->sentence);
            assert_string_equal(json_string_value(json_object_get(e, "term")),
                                a->tags[i]->evidence[k]->term);
        }
    }
    json_t *actors = json_object_get(o, "actors");
    assert_true(json_is_array(actors));
    assert_int_equal(json_array_size(actors), a->n_actors);
    for (size_t i = 0; i < json_array_size(actors); i++) {
        json_t *ac = json_array_get(actors, i);
        assert_string_equal(json_string_value(json_object_get(ac, "code")),
                            a->actors[i]->code);
        const char *kind = json_string_value(json_object_get(ac, "kind"));
        assert_non_null(kind);
        assert_true(!strcmp(kind, "state") || !strcmp(kind, "organisation"));
    }
    const char *prio = json_string_value(json_object_get(o, "priority"));
    assert_non_null(prio);
    assert_true(!strcmp(prio, "low") || !strcmp(prio, "normal") || !strcmp(prio, "high"));
    /* It serialises. */
    char *dump = json_dumps(o, JSON_COMPACT);
    assert_non_null(dump);
    assert_non_null(strstr(dump, "\"seq\":\"42\""));
    free(dump);
    json_decref(o);
    na_alert_builder_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_seed),
        cmocka_unit_test(test_max_evidence_bytes),
        cmocka_unit_test(test_max_evidence_multibyte),
        cmocka_unit_test(test_builder_reuse),
        cmocka_unit_test(test_to_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
