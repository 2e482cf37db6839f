/* Unit tests for lib/utf8.c: na_utf8_valid and na_utf8_floor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "newsalert/utf8.h"

static bool valid_str(const char *s)
{
    return na_utf8_valid(s, strlen(s));
}

static bool valid_bytes(const unsigned char *b, size_t n)
{
    return na_utf8_valid((const char *)b, n);
}

static void test_valid_ascii(void **state)
{
    (void)state;
    assert_true(na_utf8_valid("", 0));
    assert_true(valid_str("hello, world"));
    assert_true(valid_str("\t\r\n ~\x7f"));
    /* An embedded NUL is ASCII too. */
    assert_true(na_utf8_valid("a\0b", 3));
}

static void test_valid_multibyte(void **state)
{
    (void)state;
    assert_true(valid_str("\xc2\x80"));         /* U+0080, smallest 2-byte */
    assert_true(valid_str("caf\xc3\xa9"));      /* é */
    assert_true(valid_str("\xdf\xbf"));         /* U+07FF */
    assert_true(valid_str("\xe0\xa0\x80"));     /* U+0800, smallest 3-byte */
    assert_true(valid_str("\xe2\x82\xac"));     /* € */
    assert_true(valid_str("\xed\x9f\xbf"));     /* U+D7FF, just below surrogates */
    assert_true(valid_str("\xee\x80\x80"));     /* U+E000, just above */
    assert_true(valid_str("\xef\xbf\xbf"));     /* U+FFFF */
    assert_true(valid_str("\xf0\x90\x80\x80")); /* U+10000, smallest 4-byte */
    assert_true(valid_str("\xf0\x9f\x98\x80")); /* 😀 */
    assert_true(valid_str("\xf4\x8f\xbf\xbf")); /* U+10FFFF, the largest */
    assert_true(valid_str("Ukraine\xe2\x80\x99s \xd0\x9a\xd0\xb8\xd1\x97\xd0\xb2 "
                          "\xe5\x8c\x97\xe4\xba\xac \xf0\x9f\x8c\x8d"));
}

static void test_overlong(void **state)
{
    (void)state;
    static const unsigned char c0[] = {0xc0, 0x80};              /* NUL in 2 bytes */
    static const unsigned char c1[] = {0xc1, 0xbf};              /* U+007F in 2 */
    static const unsigned char e0[] = {0xe0, 0x80, 0x80};        /* NUL in 3 */
    static const unsigned char e0b[] = {0xe0, 0x9f, 0xbf};       /* U+07FF in 3 */
    static const unsigned char f0[] = {0xf0, 0x80, 0x80, 0x80};  /* NUL in 4 */
    static const unsigned char f0b[] = {0xf0, 0x8f, 0xbf, 0xbf}; /* U+FFFF in 4 */
    static const unsigned char slash[] = {'a', 0xc0, 0xaf, 'b'}; /* '/' in 2 */
    assert_false(valid_bytes(c0, sizeof(c0)));
    assert_false(valid_bytes(c1, sizeof(c1)));
    assert_false(valid_bytes(e0, sizeof(e0)));
    assert_false(valid_bytes(e0b, sizeof(e0b)));
    assert_false(valid_bytes(f0, sizeof(f0)));
    assert_false(valid_bytes(f0b, sizeof(f0b)));
    assert_false(valid_bytes(slash, sizeof(slash)));
}

static void test_surrogates(void **state)
{
    (void)state;
    static const unsigned char lo[] = {0xed, 0xa0, 0x80};            /* U+D800 */
    static const unsigned char hi[] = {0xed, 0xbf, 0xbf};            /* U+DFFF */
    static const unsigned char mid[] = {'x', 0xed, 0xb0, 0x80, 'y'}; /* U+DC00 */
    /* A CESU-8 style pair for U+1F600. */
    static const unsigned char pair[] = {0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80};
    assert_false(valid_bytes(lo, sizeof(lo)));
    assert_false(valid_bytes(hi, sizeof(hi)));
    assert_false(valid_bytes(mid, sizeof(mid)));
    assert_false(valid_bytes(pair, sizeof(pair)));
}

static void test_above_max(void **state)
{
    (void)state;
    static const unsigned char f4[] = {0xf4, 0x90, 0x80, 0x80}; /* U+110000 */
    static const unsigned char f5[] = {0xf5, 0x80, 0x80, 0x80};
    static const unsigned char f7[] = {0xf7, 0xbf, 0xbf, 0xbf};
    static const unsigned char f8[] = {0xf8, 0x88, 0x80, 0x80, 0x80}; /* 5-byte form */
    static const unsigned char fc[] = {0xfc, 0x84, 0x80, 0x80, 0x80, 0x80};
    static const unsigned char fe[] = {0xfe};
    static const unsigned char ff[] = {0xff};
    assert_false(valid_bytes(f4, sizeof(f4)));
    assert_false(valid_bytes(f5, sizeof(f5)));
    assert_false(valid_bytes(f7, sizeof(f7)));
    assert_false(valid_bytes(f8, sizeof(f8)));
    assert_false(valid_bytes(fc, sizeof(fc)));
    assert_false(valid_bytes(fe, sizeof(fe)));
    assert_false(valid_bytes(ff, sizeof(ff)));
}

static void test_truncated(void **state)
{
    (void)state;
    static const unsigned char two[] = {0xc3, 0xa9};
    static const unsigned char three[] = {0xe2, 0x82, 0xac};
    static const unsigned char four[] = {0xf0, 0x9f, 0x98, 0x80};

    /* Every proper prefix of a multi-byte character is invalid, alone... */
    for (size_t n = 1; n < sizeof(two); n++)
        assert_false(valid_bytes(two, n));
    for (size_t n = 1; n < sizeof(three); n++)
        assert_false(valid_bytes(three, n));
    for (size_t n = 1; n < sizeof(four); n++)
        assert_false(valid_bytes(four, n));
    /* ... and when followed by an ASCII byte instead of a continuation. */
    static const unsigned char cut3[] = {0xe2, 0x82, 'a'};
    static const unsigned char cut4[] = {0xf0, 0x9f, 0x98, ' '};
    static const unsigned char cut2[] = {'a', 0xc3, 'b'};
    assert_false(valid_bytes(cut3, sizeof(cut3)));
    assert_false(valid_bytes(cut4, sizeof(cut4)));
    assert_false(valid_bytes(cut2, sizeof(cut2)));
    /* The length is respected: bytes past len are not read as the rest. */
    assert_false(na_utf8_valid("ab\xc3\xa9", 3));
    assert_true(na_utf8_valid("ab\xc3\xa9", 4));
    assert_true(na_utf8_valid("ab\xc3\xa9", 2));
}

static void test_lone_continuation(void **state)
{
    (void)state;
    static const unsigned char c80[] = {0x80};
    static const unsigned char cbf[] = {0xbf};
    static const unsigned char mid[] = {'a', 0x80, 'b'};
    static const unsigned char extra[] = {0xc3, 0xa9, 0xa9}; /* one too many */
    static const unsigned char extra4[] = {0xf0, 0x9f, 0x98, 0x80, 0x80};
    assert_false(valid_bytes(c80, sizeof(c80)));
    assert_false(valid_bytes(cbf, sizeof(cbf)));
    assert_false(valid_bytes(mid, sizeof(mid)));
    assert_false(valid_bytes(extra, sizeof(extra)));
    assert_false(valid_bytes(extra4, sizeof(extra4)));
}

/* Index of the start of every character of a valid string, plus its length. */
static size_t char_starts(const char *s, size_t len, size_t *starts)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            starts[n++] = i;
    starts[n++] = len;
    return n;
}

static void test_floor_every_cut(void **state)
{
    (void)state;
    /* 1-, 2-, 3- and 4-byte characters, adjacent and separated. */
    static const char s[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"
                            "\xf0\x9f\x8c\x8d\xe5\x8c\x97\xd0\x9a"
                            "\xf4\x8f\xbf\xbf\xc2\x80!";
    size_t len = sizeof(s) - 1;
    size_t starts[64];
    size_t n_starts = char_starts(s, len, starts);

    assert_true(na_utf8_valid(s, len));
    for (size_t cut = 0; cut <= len; cut++) {
        size_t f = na_utf8_floor(s, cut);
        /* The largest character boundary <= cut. */
        size_t want = 0;
        for (size_t k = 0; k < n_starts; k++)
            if (starts[k] <= cut)
                want = starts[k];
        assert_true(f <= cut);
        assert_int_equal(f, want);
        assert_true(na_utf8_valid(s, f));
    }
}

static void test_floor_whole_and_empty(void **state)
{
    (void)state;
    assert_int_equal(na_utf8_floor("", 0), 0);
    assert_int_equal(na_utf8_floor("abc", 3), 3);
    assert_int_equal(na_utf8_floor("\xf0\x9f\x98\x80", 4), 4);
    assert_int_equal(na_utf8_floor("\xf0\x9f\x98\x80", 3), 0);
    assert_int_equal(na_utf8_floor("\xf0\x9f\x98\x80", 1), 0);
    assert_int_equal(na_utf8_floor("x\xe2\x82\xac", 3), 1);
    assert_int_equal(na_utf8_floor("x\xe2\x82\xac", 4), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_ascii),
        cmocka_unit_test(test_valid_multibyte),
        cmocka_unit_test(test_overlong),
        cmocka_unit_test(test_surrogates),
        cmocka_unit_test(test_above_max),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_lone_continuation),
        cmocka_unit_test(test_floor_every_cut),
        cmocka_unit_test(test_floor_whole_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
