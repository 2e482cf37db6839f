/* Unit tests for lib/sentence.c: sentence splitting and look-up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "newsalert/sentence.h"

/* Splits text and checks that the sentences are exactly want[0..n_want). */
static void check_split(const char *text, const char *const *want, size_t n_want)
{
    struct na_span *spans = NULL;
    size_t cap = 0;
    size_t len = strlen(text);
    long n = na_sentence_split(text, len, &spans, &cap);

    if (n != (long)n_want) {
        for (long i = 0; i < n; i++)
            print_error("  got [%.*s]\n", (int)(spans[i].end - spans[i].start),
                        text + spans[i].start);
    }
    assert_int_equal(n, n_want);
    assert_true(cap >= (size_t)n);
    for (size_t i = 0; i < n_want; i++) {
        assert_true(spans[i].start < spans[i].end);
        assert_true(spans[i].end <= len);
        if (i > 0)
            assert_true(spans[i].start >= spans[i - 1].end);
        size_t sl = spans[i].end - spans[i].start;
        char got[512];
        assert_true(sl < sizeof(got));
        memcpy(got, text + spans[i].start, sl);
        got[sl] = '\0';
        assert_string_equal(got, want[i]);
    }
    free(spans);
}

#define CHECK(text, ...)                                                                 \
    do {                                                                                 \
        static const char *const want_[] = {__VA_ARGS__};                                \
        check_split(text, want_, sizeof(want_) / sizeof(want_[0]));                      \
    } while (0)

static void test_empty(void **state)
{
    (void)state;
    struct na_span *spans = NULL;
    size_t cap = 0;
    assert_int_equal(na_sentence_split("", 0, &spans, &cap), 0);
    assert_int_equal(na_sentence_split("   \n\n \t ", 8, &spans, &cap), 0);
    free(spans);
}

static void test_newlines(void **state)
{
    (void)state;
    CHECK("One line", "One line");
    CHECK("First line\nSecond line", "First line", "Second line");
    CHECK("First line\n\n\nSecond line\n", "First line", "Second line");
    /* A newline ends a sentence even without punctuation or before a lower-case word. */
    CHECK("no stop here\nand here", "no stop here", "and here");
    CHECK("  padded  \n  also padded  ", "padded", "also padded");
}

static void test_periods(void **state)
{
    (void)state;
    CHECK("Leaders met. They agreed. It ended.", "Leaders met.", "They agreed.",
          "It ended.");
    /* A period not followed by white space does not end a sentence. */
    CHECK("Growth was 3.5 percent. Prices rose.", "Growth was 3.5 percent.",
          "Prices rose.");
    CHECK("See example.org for more. Then go.", "See example.org for more.", "Then go.");
    /* Trailing text without a period is a sentence. */
    CHECK("It ended. And then", "It ended.", "And then");
    CHECK("Tabs too.\tNext one.", "Tabs too.", "Next one.");
}

static void test_abbreviations(void **state)
{
    (void)state;
    CHECK("U.S. officials said it would go ahead. Others disagreed.",
          "U.S. officials said it would go ahead.", "Others disagreed.");
    CHECK("Mr. Smith arrived. He spoke.", "Mr. Smith arrived.", "He spoke.");
    CHECK("Dr. Jones and Mrs. Brown met Gen. Lee on Jan. 5. It rained.",
          "Dr. Jones and Mrs. Brown met Gen. Lee on Jan. 5.", "It rained.");
    CHECK("J. Smith wrote it. She agreed.", "J. Smith wrote it.", "She agreed.");
    CHECK("Talks e.g. on trade went on. Done.", "Talks e.g. on trade went on.", "Done.");
    CHECK("The U.N. envoy spoke. Others listened.", "The U.N. envoy spoke.",
          "Others listened.");
    /* A word that is merely like an abbreviation still ends a sentence. */
    CHECK("He met Mrs. Smith at the Mrsa lab. Next.",
          "He met Mrs. Smith at the Mrsa lab.", "Next.");
}

static void test_question_exclamation(void **state)
{
    (void)state;
    CHECK("Will they agree? Nobody knows! We wait.", "Will they agree?", "Nobody knows!",
          "We wait.");
    CHECK("Really?! Yes.", "Really?!", "Yes.");
    /* "?" not followed by white space does not end one. */
    CHECK("What?No. Fine.", "What?No.", "Fine.");
}

static void test_closing_quotes(void **state)
{
    (void)state;
    CHECK("He said \"we will go.\" Then he left.", "He said \"we will go.\"",
          "Then he left.");
    CHECK("She asked 'why?' Nobody answered.", "She asked 'why?'", "Nobody answered.");
    CHECK("It was agreed (finally.) Next item.", "It was agreed (finally.)",
          "Next item.");
    /* Typographic closing quotes: U+201D and U+2019. */
    CHECK("He said \xe2\x80\x9cwe will go.\xe2\x80\x9d Then he left.",
          "He said \xe2\x80\x9cwe will go.\xe2\x80\x9d", "Then he left.");
    CHECK("She said \xe2\x80\x98no.\xe2\x80\x99 Then quiet.",
          "She said \xe2\x80\x98no.\xe2\x80\x99", "Then quiet.");
    /* A quote at the very end of the text. */
    CHECK("He said \"go.\"", "He said \"go.\"");
    CHECK("He said \xe2\x80\x9cgo.\xe2\x80\x9d", "He said \xe2\x80\x9cgo.\xe2\x80\x9d");
    CHECK("Go.\xe2\x80\x9d\nNext.", "Go.\xe2\x80\x9d", "Next.");
}

static void test_offsets(void **state)
{
    (void)state;
    const char *text = "  Alpha beta.  Gamma?\nDelta!  ";
    struct na_span *spans = NULL;
    size_t cap = 0;
    long n = na_sentence_split(text, strlen(text), &spans, &cap);
    assert_int_equal(n, 3);
    assert_int_equal(spans[0].start, 2);
    assert_int_equal(spans[0].end, 13);
    assert_int_equal(spans[1].start, 15);
    assert_int_equal(spans[1].end, 21);
    assert_int_equal(spans[2].start, 22);
    assert_int_equal(spans[2].end, 28);
    free(spans);
}

static void test_len_respected(void **state)
{
    (void)state;
    /* Only text[0..len) is looked at. */
    const char *text = "First one. Second one. Third.";
    struct na_span *spans = NULL;
    size_t cap = 0;
    long n = na_sentence_split(text, 15, &spans, &cap);
    assert_int_equal(n, 2);
    assert_int_equal(spans[0].start, 0);
    assert_int_equal(spans[0].end, 10);
    assert_int_equal(spans[1].start, 11);
    assert_int_equal(spans[1].end, 15);
    free(spans);
}

static void test_many_sentences_grow(void **state)
{
    (void)state;
    char text[4096];
    size_t len = 0;
    for (int i = 0; i < 200; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "S%d. ", i);
    assert_true(len < sizeof(text));
    struct na_span *spans = NULL;
    size_t cap = 0;
    long n = na_sentence_split(text, len, &spans, &cap);
    assert_int_equal(n, 200);
    assert_true(cap >= 200);
    for (int i = 0; i < 200; i++) {
        char want[16];
        int wl = snprintf(want, sizeof(want), "S%d.", i);
        assert_int_equal(spans[i].end - spans[i].start, wl);
        assert_memory_equal(text + spans[i].start, want, (size_t)wl);
    }
    /* The buffer is reused by a second call. */
    struct na_span *before = spans;
    size_t cap_before = cap;
    n = na_sentence_split("One. Two.", 9, &spans, &cap);
    assert_int_equal(n, 2);
    assert_ptr_equal(spans, before);
    assert_int_equal(cap, cap_before);
    free(spans);
}

static void test_find(void **state)
{
    (void)state;
    const char *text = "Alpha beta.  Gamma delta? Epsilon.\nZeta";
    struct na_span *spans = NULL;
    size_t cap = 0;
    long n = na_sentence_split(text, strlen(text), &spans, &cap);
    assert_int_equal(n, 4);
    size_t len = strlen(text);

    /* Every offset maps to the span containing it, or the last span that
     * starts before it (the white space between sentences). */
    for (uint32_t off = 0; off <= len; off++) {
        size_t want = 0;
        for (size_t i = 0; i < (size_t)n; i++)
            if (spans[i].start <= off)
                want = i;
        assert_int_equal(na_sentence_find(spans, (size_t)n, off), want);
    }
    assert_int_equal(na_sentence_find(spans, (size_t)n, 0), 0);
    assert_int_equal(na_sentence_find(spans, (size_t)n, 12), 0); /* in the gap */
    assert_int_equal(na_sentence_find(spans, (size_t)n, 13), 1);
    assert_int_equal(na_sentence_find(spans, (size_t)n, 35), 3);
    assert_int_equal(na_sentence_find(spans, (size_t)n, 100000), 3);
    /* One span. */
    assert_int_equal(na_sentence_find(spans, 1, 30), 0);

    /* Leading white space: an offset before the first span gives 0. */
    n = na_sentence_split("   Hi.", 6, &spans, &cap);
    assert_int_equal(n, 1);
    assert_int_equal(na_sentence_find(spans, 1, 0), 0);
    free(spans);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_newlines),
        cmocka_unit_test(test_periods),
        cmocka_unit_test(test_abbreviations),
        cmocka_unit_test(test_question_exclamation),
        cmocka_unit_test(test_closing_quotes),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_len_respected),
        cmocka_unit_test(test_many_sentences_grow),
        cmocka_unit_test(test_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
