/* Unit tests for lib/article.c: decoding and validating feed articles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "newsalert/article.h"

/* Packs a into a malloc'd buffer. */
static uint8_t *pack(const Newsalert__V1__Article *a, size_t *len)
{
    *len = newsalert__v1__article__get_packed_size(a);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    assert_int_equal(newsalert__v1__article__pack(a, buf), *len);
    return buf;
}

static void base_article(Newsalert__V1__Article *a)
{
    newsalert__v1__article__init(a);
    a->id = "a-1";
    a->source = "wire";
    a->url = "https://example.org/a-1";
    a->headline = "Leaders meet";
    a->body = "Leaders met in Brussels.\nThey talked.";
    a->language = "en";
    a->published_at_ms = 1720000000000;
    a->feed_seq = 42;
    a->revision = 3;
}

/* Decodes buf and returns the reject reason; *out gets the article on
 * success (the caller frees it) and is NULL otherwise. */
static enum na_reject decode(const uint8_t *buf, size_t len, const struct na_limits *lim,
                             Newsalert__V1__Article **out, char *msg, size_t msg_len)
{
    enum na_reject why = NA_REJECT_COUNT;
    Newsalert__V1__Article *a = na_article_decode(buf, len, lim, &why, msg, msg_len);
    if (why == NA_REJECT_NONE)
        assert_non_null(a);
    else
        assert_null(a);
    if (out)
        *out = a;
    else
        na_article_free(a);
    return why;
}

static enum na_reject decode_article(const Newsalert__V1__Article *a,
                                     const struct na_limits *lim)
{
    size_t len;
    uint8_t *buf = pack(a, &len);
    char msg[256] = "";
    enum na_reject why = decode(buf, len, lim, NULL, msg, sizeof(msg));
    if (why != NA_REJECT_NONE)
        assert_true(msg[0] != '\0'); /* a reason is always written */
    free(buf);
    return why;
}

static void test_limits_default(void **state)
{
    (void)state;
    struct na_limits l;
    memset(&l, 0xaa, sizeof(l));
    na_limits_default(&l);
    assert_int_equal(l.max_article_bytes, 1u << 20);
    assert_int_equal(l.max_headline_bytes, 4096);
    assert_int_equal(l.max_body_bytes, 512u << 10);
    assert_int_equal(l.max_authors, 64);
}

static void test_valid(void **state)
{
    (void)state;
    struct na_limits lim;
    Newsalert__V1__Article a, *d = NULL;
    char *authors[] = {"Jane Doe", "J\xc3\xb6rg M\xc3\xbcller"};
    size_t len;
    char msg[128];

    na_limits_default(&lim);
    base_article(&a);
    a.authors = authors;
    a.n_authors = 2;
    uint8_t *buf = pack(&a, &len);
    assert_int_equal(decode(buf, len, &lim, &d, msg, sizeof(msg)), NA_REJECT_NONE);
    assert_string_equal(d->id, "a-1");
    assert_string_equal(d->source, "wire");
    assert_string_equal(d->url, "https://example.org/a-1");
    assert_string_equal(d->headline, "Leaders meet");
    assert_string_equal(d->body, "Leaders met in Brussels.\nThey talked.");
    assert_string_equal(d->language, "en");
    assert_int_equal(d->published_at_ms, 1720000000000);
    assert_int_equal(d->feed_seq, 42);
    assert_int_equal(d->revision, 3);
    assert_int_equal(d->n_authors, 2);
    assert_string_equal(d->authors[0], "Jane Doe");
    assert_string_equal(d->authors[1], "J\xc3\xb6rg M\xc3\xbcller");
    na_article_free(d);
    free(buf);

    /* Only a headline, or only a body, is enough text. */
    base_article(&a);
    a.body = "";
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_NONE);
    base_article(&a);
    a.headline = "";
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_NONE);

    na_article_free(NULL); /* accepted */
}

static void test_garbage(void **state)
{
    (void)state;
    struct na_limits lim;
    na_limits_default(&lim);

    /* A varint that never ends. */
    static const uint8_t endless[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    /* Field 1 (id) claims 16 bytes but there is one. */
    static const uint8_t short_len[] = {0x0a, 0x10, 'a'};
    /* Wire type 7 does not exist. */
    static const uint8_t bad_wire[] = {0x0f, 0x01, 0x02};
    /* id sent as a varint rather than a string. */
    static const uint8_t wrong_type[] = {0x08, 0x01};

    assert_int_equal(decode(endless, sizeof(endless), &lim, NULL, NULL, 0),
                     NA_REJECT_MALFORMED);
    assert_int_equal(decode(short_len, sizeof(short_len), &lim, NULL, NULL, 0),
                     NA_REJECT_MALFORMED);
    assert_int_equal(decode(bad_wire, sizeof(bad_wire), &lim, NULL, NULL, 0),
                     NA_REJECT_MALFORMED);
    assert_int_equal(decode(wrong_type, sizeof(wrong_type), &lim, NULL, NULL, 0),
                     NA_REJECT_MALFORMED);

    /* A valid article cut short in the middle of its body. */
    Newsalert__V1__Article a;
    size_t len;
    base_article(&a);
    uint8_t *buf = pack(&a, &len);
    char msg[128] = "";
    assert_int_equal(decode(buf, len - 3, &lim, NULL, msg, sizeof(msg)),
                     NA_REJECT_MALFORMED);
    assert_true(strlen(msg) > 0);
    free(buf);
}

/* Field number 0 is forbidden. protobuf-c refuses it as a one-byte key but
 * let it through as a longer varint (0x80 0x00), and then re-encoded the
 * article into bytes that it refused itself (found by fuzz_article). */
static void test_field_zero(void **state)
{
    (void)state;
    struct na_limits lim;
    Newsalert__V1__Article a;
    size_t len;

    na_limits_default(&lim);
    base_article(&a);
    uint8_t *buf = pack(&a, &len);
    uint8_t *longer = malloc(len + 3);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    memcpy(longer + len, "\x80\x00\x00", 3); /* field 0, varint, value 0 */
    assert_int_equal(decode(longer, len + 3, &lim, NULL, NULL, 0), NA_REJECT_MALFORMED);
    longer[len] = 0x00; /* the one-byte key: refused by protobuf-c itself */
    assert_int_equal(decode(longer, len + 2, &lim, NULL, NULL, 0), NA_REJECT_MALFORMED);
    /* An unknown but valid field is still accepted. */
    memcpy(longer + len, "\xf8\x01\x07", 3); /* field 31, varint 7 */
    assert_int_equal(decode(longer, len + 3, &lim, NULL, NULL, 0), NA_REJECT_NONE);
    free(longer);
    free(buf);
}

static void test_missing_id(void **state)
{
    (void)state;
    struct na_limits lim;
    Newsalert__V1__Article a;
    na_limits_default(&lim);

    base_article(&a);
    a.id = "";
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_MISSING_ID);

    /* An id never set at all. */
    newsalert__v1__article__init(&a);
    a.headline = "Headline";
    a.body = "Body.";
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_MISSING_ID);
}

static void test_empty_text(void **state)
{
    (void)state;
    struct na_limits lim;
    Newsalert__V1__Article a;
    na_limits_default(&lim);

    base_article(&a);
    a.headline = "";
    a.body = "";
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_EMPTY_TEXT);

    newsalert__v1__article__init(&a);
    a.id = "x";
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_EMPTY_TEXT);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_oversize(void **state)
{
    (void)state;
    struct na_limits lim;
    Newsalert__V1__Article a;
    size_t len;

    /* The encoded message as a whole: exactly at the limit passes. */
    na_limits_default(&lim);
    base_article(&a);
    uint8_t *buf = pack(&a, &len);
    lim.max_article_bytes = len;
    assert_int_equal(decode(buf, len, &lim, NULL, NULL, 0), NA_REJECT_NONE);
    lim.max_article_bytes = len - 1;
    assert_int_equal(decode(buf, len, &lim, NULL, NULL, 0), NA_REJECT_OVERSIZE);
    free(buf);

    /* The headline. */
    na_limits_default(&lim);
    lim.max_headline_bytes = 16;
    char *h16 = repeat('h', 16), *h17 = repeat('h', 17);
    base_article(&a);
    a.headline = h16;
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_NONE);
    a.headline = h17;
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_OVERSIZE);
    free(h16);
    free(h17);

    /* The body. */
    na_limits_default(&lim);
    lim.max_body_bytes = 100;
    char *b100 = repeat('b', 100), *b101 = repeat('b', 101);
    base_article(&a);
    a.body = b100;
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_NONE);
    a.body = b101;
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_OVERSIZE);
    free(b100);
    free(b101);

    /* Default limits: a body just over 512 KiB inside a message under 1 MiB. */
    na_limits_default(&lim);
    char *big = repeat('x', (512u << 10) + 1);
    base_article(&a);
    a.body = big;
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_OVERSIZE);
    big[512u << 10] = '\0';
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_NONE);
    free(big);
}

static void test_too_many_authors(void **state)
{
    (void)state;
    struct na_limits lim;
    Newsalert__V1__Article a;
    char *authors[] = {"A", "B", "C"};

    na_limits_default(&lim);
    lim.max_authors = 2;
    base_article(&a);
    a.authors = authors;
    a.n_authors = 2;
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_NONE);
    a.n_authors = 3;
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_TOO_MANY_AUTHORS);

    /* Default: 64 pass, 65 do not. */
    char *many[65];
    for (size_t i = 0; i < 65; i++)
        many[i] = "Author";
    na_limits_default(&lim);
    a.authors = many;
    a.n_authors = 64;
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_NONE);
    a.n_authors = 65;
    assert_int_equal(decode_article(&a, &lim), NA_REJECT_TOO_MANY_AUTHORS);
}

/* Packs a (one of whose strings contains "@@@@"), replaces those four bytes
 * with bad[0..4) and decodes the result. */
static enum na_reject decode_patched(const Newsalert__V1__Article *a,
                                     const uint8_t bad[4])
{
    struct na_limits lim;
    size_t len;
    uint8_t *buf = pack(a, &len);
    uint8_t *at = NULL;
    char msg[128] = "";

    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(buf + i, "@@@@", 4) == 0) {
            assert_null(at); /* exactly one placeholder */
            at = buf + i;
        }
    assert_non_null(at);
    memcpy(at, bad, 4);
    na_limits_default(&lim);
    enum na_reject why = decode(buf, len, &lim, NULL, msg, sizeof(msg));
    if (why == NA_REJECT_INVALID_UTF8)
        assert_non_null(strstr(msg, "UTF-8"));
    free(buf);
    return why;
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    Newsalert__V1__Article a;
    static const uint8_t ff[4] = {'a', 0xff, 'b', 'c'};
    static const uint8_t surrogate[4] = {'a', 0xed, 0xa0, 0x80};
    static const uint8_t above[4] = {0xf4, 0x90, 0x80, 0x80};
    static const uint8_t overlong[4] = {'a', 'b', 0xc0, 0xaf};
    static const uint8_t truncated[4] = {'a', 'b', 'c', 0xe2};
    static const uint8_t lone[4] = {'a', 0x80, 'b', 'c'};
    static const uint8_t good[4] = {'a', 0xc3, 0xa9, 'c'};

    base_article(&a);
    a.body = "The body @@@@ continues.";
    assert_int_equal(decode_patched(&a, good), NA_REJECT_NONE);
    assert_int_equal(decode_patched(&a, ff), NA_REJECT_INVALID_UTF8);
    assert_int_equal(decode_patched(&a, surrogate), NA_REJECT_INVALID_UTF8);
    assert_int_equal(decode_patched(&a, above), NA_REJECT_INVALID_UTF8);
    assert_int_equal(decode_patched(&a, overlong), NA_REJECT_INVALID_UTF8);
    assert_int_equal(decode_patched(&a, lone), NA_REJECT_INVALID_UTF8);
    /* Cut at the very end of the body. */
    a.body = "The body ends @@@@";
    assert_int_equal(decode_patched(&a, truncated), NA_REJECT_INVALID_UTF8);

    /* The other string fields are checked too. */
    base_article(&a);
    a.headline = "Head @@@@";
    assert_int_equal(decode_patched(&a, surrogate), NA_REJECT_INVALID_UTF8);
    base_article(&a);
    a.id = "id-@@@@";
    assert_int_equal(decode_patched(&a, ff), NA_REJECT_INVALID_UTF8);
    base_article(&a);
    a.source = "src@@@@";
    assert_int_equal(decode_patched(&a, ff), NA_REJECT_INVALID_UTF8);
    base_article(&a);
    a.url = "https://x/@@@@";
    assert_int_equal(decode_patched(&a, ff), NA_REJECT_INVALID_UTF8);
    base_article(&a);
    a.language = "e@@@@";
    assert_int_equal(decode_patched(&a, ff), NA_REJECT_INVALID_UTF8);
    char *authors[] = {"Ok Author", "Bad @@@@ Author"};
    base_article(&a);
    a.authors = authors;
    a.n_authors = 2;
    assert_int_equal(decode_patched(&a, above), NA_REJECT_INVALID_UTF8);
}

/* A NUL byte is valid UTF-8 but would cut every C string at it: the id
 * "a\0b" would be "a" to the tagger, the alert and dedup alike. */
static void test_nul_byte(void **state)
{
    (void)state;
    Newsalert__V1__Article a;
    static const uint8_t nul[4] = {'a', 0x00, 'b', 'c'};

    base_article(&a);
    a.body = "The body @@@@ continues.";
    assert_int_equal(decode_patched(&a, nul), NA_REJECT_INVALID_UTF8);
    base_article(&a);
    a.id = "id-@@@@";
    assert_int_equal(decode_patched(&a, nul), NA_REJECT_INVALID_UTF8);
    char *authors[] = {"Ok Author", "Bad @@@@ Author"};
    base_article(&a);
    a.authors = authors;
    a.n_authors = 2;
    assert_int_equal(decode_patched(&a, nul), NA_REJECT_INVALID_UTF8);
}

static void test_check_built(void **state)
{
    (void)state;
    struct na_limits lim;
    Newsalert__V1__Article a;
    char msg[128] = "";

    na_limits_default(&lim);
    base_article(&a);
    assert_int_equal(na_article_check(&a, &lim, msg, sizeof(msg)), NA_REJECT_NONE);
    a.body = "bad \xff byte";
    assert_int_equal(na_article_check(&a, &lim, msg, sizeof(msg)),
                     NA_REJECT_INVALID_UTF8);
    base_article(&a);
    a.id = NULL;
    assert_int_equal(na_article_check(&a, &lim, msg, sizeof(msg)), NA_REJECT_MISSING_ID);
    base_article(&a);
    a.headline = NULL;
    a.body = NULL;
    assert_int_equal(na_article_check(&a, &lim, msg, sizeof(msg)), NA_REJECT_EMPTY_TEXT);
}

static void test_reject_names(void **state)
{
    (void)state;
    for (int i = 0; i < NA_REJECT_COUNT; i++) {
        const char *n = na_reject_name((enum na_reject)i);
        assert_non_null(n);
        assert_true(n[0] != '\0');
        assert_string_not_equal(n, "unknown");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(n, na_reject_name((enum na_reject)j));
    }
    assert_string_equal(na_reject_name(NA_REJECT_COUNT), "unknown");
    assert_string_equal(na_reject_name((enum na_reject)1000), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_default), cmocka_unit_test(test_valid),
        cmocka_unit_test(test_garbage),        cmocka_unit_test(test_field_zero),
        cmocka_unit_test(test_missing_id),     cmocka_unit_test(test_empty_text),
        cmocka_unit_test(test_oversize),       cmocka_unit_test(test_too_many_authors),
        cmocka_unit_test(test_invalid_utf8),   cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_check_built),    cmocka_unit_test(test_reject_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
