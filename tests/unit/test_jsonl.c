/* Unit tests for lib/jsonl.c: articles written as JSON objects. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "newsalert/article.h"
#include "newsalert/jsonl.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *o = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (o == NULL)
        print_error("bad test JSON: %s\n", jerr.text);
    assert_non_null(o);
    return o;
}

/* Packs the JSON text and decodes the bytes with the default limits. */
static Newsalert__V1__Article *pack_decode(const char *text)
{
    json_t *o = parse(text);
    uint8_t *buf = NULL;
    size_t len = 0;
    struct na_error err = {{0}};
    int rc = na_jsonl_article_pack(o, &buf, &len, &err);
    if (rc != 0)
        print_error("pack failed: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(buf);
    json_decref(o);

    struct na_limits lim;
    enum na_reject why;
    char msg[128] = "";
    na_limits_default(&lim);
    Newsalert__V1__Article *a = na_article_decode(buf, len, &lim, &why, msg, sizeof(msg));
    if (a == NULL)
        print_error("decode failed: %s\n", msg);
    assert_non_null(a);
    assert_int_equal(why, NA_REJECT_NONE);
    free(buf);
    return a;
}

/* Expects packing to fail with an error containing want. */
static void expect_error(const char *text, const char *want)
{
    json_t *o = parse(text);
    uint8_t *buf = NULL;
    size_t len = 0;
    struct na_error err = {{0}};
    int rc = na_jsonl_article_pack(o, &buf, &len, &err);
    if (rc == 0) {
        print_error("packed but should fail: %s\n", text);
        free(buf);
    }
    assert_int_equal(rc, -1);
    if (strstr(err.msg, want) == NULL)
        print_error("error [%s] lacks [%s]\n", err.msg, want);
    assert_non_null(strstr(err.msg, want));
    json_decref(o);
}

static void test_roundtrip(void **state)
{
    (void)state;
    Newsalert__V1__Article *a = pack_decode(
        "{\"id\": \"r-1\", \"source\": \"reuters\", \"url\": \"https://example.org/r-1\","
        " \"headline\": \"NATO leaders meet\", \"body\": \"Leaders met.\\nKyiv \\u2019s "
        "turn.\","
        " \"published_at_ms\": 1720000000000, \"language\": \"en\","
        " \"authors\": [\"Jane Doe\", \"J\\u00f6rg\"], \"feed_seq\": 12345, "
        "\"revision\": 4}");
    assert_string_equal(a->id, "r-1");
    assert_string_equal(a->source, "reuters");
    assert_string_equal(a->url, "https://example.org/r-1");
    assert_string_equal(a->headline, "NATO leaders meet");
    assert_string_equal(a->body, "Leaders met.\nKyiv \xe2\x80\x99s turn.");
    assert_int_equal(a->published_at_ms, 1720000000000);
    assert_string_equal(a->language, "en");
    assert_int_equal(a->n_authors, 2);
    assert_string_equal(a->authors[0], "Jane Doe");
    assert_string_equal(a->authors[1], "J\xc3\xb6rg");
    assert_int_equal(a->feed_seq, 12345);
    assert_int_equal(a->revision, 4);
    na_article_free(a);

    /* Minimal, and boundary values. */
    a = pack_decode("{\"id\": \"m\", \"body\": \"b\", \"published_at_ms\": -5,"
                    " \"revision\": 4294967295, \"authors\": []}");
    assert_string_equal(a->id, "m");
    assert_string_equal(a->body, "b");
    assert_int_equal(a->published_at_ms, -5);
    assert_int_equal(a->revision, 4294967295u);
    assert_int_equal(a->n_authors, 0);
    na_article_free(a);
}

/* int64 and uint64 as protobuf's JSON mapping writes them (decimal
 * strings), read back whole: above 2^53, where a double would round. */
static void test_int64_as_strings(void **state)
{
    (void)state;
    Newsalert__V1__Article *a =
        pack_decode("{\"id\": \"s\", \"body\": \"b\", \"published_at_ms\": \"-9007199254740993\","
                    " \"feed_seq\": \"18446744073709551615\"}");
    assert_true(a->published_at_ms == -9007199254740993LL);
    assert_true(a->feed_seq == UINT64_MAX);
    na_article_free(a);

    json_t *v = na_json_uint64(UINT64_MAX);
    assert_string_equal(json_string_value(v), "18446744073709551615");
    json_decref(v);
    v = na_json_int64(INT64_MIN);
    assert_string_equal(json_string_value(v), "-9223372036854775808");
    json_decref(v);

    expect_error("{\"id\": \"x\", \"body\": \"b\", \"feed_seq\": \"-1\"}", "feed_seq");
    expect_error("{\"id\": \"x\", \"body\": \"b\", \"feed_seq\": \"18446744073709551616\"}",
                 "feed_seq");
    expect_error("{\"id\": \"x\", \"body\": \"b\", \"feed_seq\": \" 1\"}", "feed_seq");
    expect_error("{\"id\": \"x\", \"body\": \"b\", \"published_at_ms\": \"12ms\"}",
                 "published_at_ms");
    expect_error("{\"id\": \"x\", \"body\": \"b\", \"published_at_ms\": \"\"}",
                 "published_at_ms");
}

static void test_ignored_keys(void **state)
{
    (void)state;
    Newsalert__V1__Article *a = pack_decode(
        "{\"id\": \"i\", \"headline\": \"h\", \"labels\": [\"aid\", \"summit\"],"
        " \"split\": \"test\", \"style\": {\"any\": 1}, \"_comment\": 42, \"_\": null}");
    assert_string_equal(a->id, "i");
    assert_string_equal(a->headline, "h");
    na_article_free(a);

    /* The same bytes as without them. */
    json_t *with = parse("{\"id\": \"i\", \"headline\": \"h\", \"labels\": [\"aid\"],"
                         " \"split\": \"dev\"}");
    json_t *without = parse("{\"id\": \"i\", \"headline\": \"h\"}");
    uint8_t *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;
    struct na_error err = {{0}};
    assert_int_equal(na_jsonl_article_pack(with, &b1, &l1, &err), 0);
    assert_int_equal(na_jsonl_article_pack(without, &b2, &l2, &err), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    free(b1);
    free(b2);
    json_decref(with);
    json_decref(without);
}

static void test_unknown_key(void **state)
{
    (void)state;
    expect_error("{\"id\": \"x\", \"headline\": \"h\", \"title\": \"t\"}", "title");
    expect_error("{\"id\": \"x\", \"headline\": \"h\", \"title\": \"t\"}", "unknown key");
    expect_error("{\"id\": \"x\", \"Labels\": []}", "unknown key 'Labels'");
}

static void test_wrong_type(void **state)
{
    (void)state;
    expect_error("{\"id\": 5, \"headline\": \"h\"}", "id");
    expect_error("{\"id\": \"x\", \"headline\": [\"h\"]}", "headline");
    expect_error("{\"id\": \"x\", \"body\": null}", "body");
    expect_error("{\"id\": \"x\", \"body\": \"b\", \"published_at_ms\": \"yesterday\"}",
                 "published_at_ms");
    expect_error("{\"id\": \"x\", \"body\": \"b\", \"published_at_ms\": 1.5}",
                 "published_at_ms");
    expect_error("{\"id\": \"x\", \"body\": \"b\", \"feed_seq\": -1}", "feed_seq");
    expect_error("{\"id\": \"x\", \"body\": \"b\", \"revision\": 4294967296}",
                 "revision");
    expect_error("{\"id\": \"x\", \"body\": \"b\", \"revision\": -1}", "revision");
    expect_error("{\"id\": \"x\", \"body\": \"b\", \"authors\": \"Jane\"}", "authors");
    expect_error("{\"id\": \"x\", \"body\": \"b\", \"authors\": [\"Jane\", 7]}",
                 "authors");
    expect_error("{\"id\": \"x\", \"language\": true}", "language");
    expect_error("{\"id\": \"x\", \"source\": {}}", "source");
    expect_error("{\"id\": \"x\", \"url\": 1}", "url");
}

static void test_not_object(void **state)
{
    (void)state;
    expect_error("[1, 2]", "object");
    expect_error("\"text\"", "object");
}

static void test_too_many_authors_json(void **state)
{
    (void)state;
    /* More than 256 authors cannot be packed. */
    json_t *o = parse("{\"id\": \"x\", \"body\": \"b\"}");
    json_t *authors = json_array();
    for (int i = 0; i < 257; i++)
        json_array_append_new(authors, json_string("A"));
    json_object_set_new(o, "authors", authors);
    uint8_t *buf = NULL;
    size_t len = 0;
    struct na_error err = {{0}};
    assert_int_equal(na_jsonl_article_pack(o, &buf, &len, &err), -1);
    assert_non_null(strstr(err.msg, "authors"));
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),   cmocka_unit_test(test_int64_as_strings),
        cmocka_unit_test(test_ignored_keys),
        cmocka_unit_test(test_unknown_key), cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_not_object),  cmocka_unit_test(test_too_many_authors_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
