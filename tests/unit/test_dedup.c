/* Unit tests for lib/dedup.c: the bounded LRU of seen articles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "newsalert/dedup.h"

static enum na_dedup_verdict check(struct na_dedup *d, const char *src, const char *id,
                                   uint32_t rev, uint64_t *prev)
{
    return na_dedup_check(d, src, id, rev, prev);
}

static void test_verdicts(void **state)
{
    (void)state;
    struct na_dedup *d = na_dedup_new(8);
    uint64_t prev = 99;
    assert_non_null(d);

    assert_int_equal(check(d, "reuters", "a-1", 0, &prev), NA_DEDUP_NEW);
    assert_int_equal(prev, 0);
    /* check alone does not remember. */
    assert_int_equal(check(d, "reuters", "a-1", 0, &prev), NA_DEDUP_NEW);
    assert_int_equal(na_dedup_record(d, "reuters", "a-1", 0, 7), 0);
    assert_int_equal(check(d, "reuters", "a-1", 0, &prev), NA_DEDUP_DUPLICATE);
    assert_int_equal(prev, 0);
    /* Same id from another source, or another id: new. */
    assert_int_equal(check(d, "ap", "a-1", 0, &prev), NA_DEDUP_NEW);
    assert_int_equal(check(d, "reuters", "a-2", 0, &prev), NA_DEDUP_NEW);
    /* The key is not a plain concatenation. */
    assert_int_equal(na_dedup_record(d, "ab", "c", 0, 1), 0);
    assert_int_equal(check(d, "a", "bc", 0, &prev), NA_DEDUP_NEW);

    /* A higher revision is an update of the earlier alert. */
    assert_int_equal(check(d, "reuters", "a-1", 2, &prev), NA_DEDUP_REVISION);
    assert_int_equal(prev, 7);
    assert_int_equal(na_dedup_record(d, "reuters", "a-1", 2, 0), 0); /* no alert */
    assert_int_equal(check(d, "reuters", "a-1", 2, &prev), NA_DEDUP_DUPLICATE);
    assert_int_equal(check(d, "reuters", "a-1", 1, &prev), NA_DEDUP_DUPLICATE);
    /* The untagged revision 2 left the alert of revision 0 as the latest. */
    assert_int_equal(check(d, "reuters", "a-1", 3, &prev), NA_DEDUP_REVISION);
    assert_int_equal(prev, 7);
    assert_int_equal(na_dedup_record(d, "reuters", "a-1", 3, 12), 0);
    assert_int_equal(check(d, "reuters", "a-1", 4, &prev), NA_DEDUP_REVISION);
    assert_int_equal(prev, 12);
    /* Recording an older revision late does not lower the stored one. */
    assert_int_equal(na_dedup_record(d, "reuters", "a-1", 1, 0), 0);
    assert_int_equal(check(d, "reuters", "a-1", 3, &prev), NA_DEDUP_DUPLICATE);
    /* A revision never alerted: REVISION with no earlier seq. */
    assert_int_equal(na_dedup_record(d, "x", "quiet", 0, 0), 0);
    prev = 5;
    assert_int_equal(check(d, "x", "quiet", 1, &prev), NA_DEDUP_REVISION);
    assert_int_equal(prev, 0);
    assert_int_equal(na_dedup_count(d), 3);
    na_dedup_free(d);
    na_dedup_free(NULL);
}

static void test_eviction_order(void **state)
{
    (void)state;
    struct na_dedup *d = na_dedup_new(3);
    char id[16];
    assert_int_equal(na_dedup_record(d, "s", "1", 0, 1), 0);
    assert_int_equal(na_dedup_record(d, "s", "2", 0, 2), 0);
    assert_int_equal(na_dedup_record(d, "s", "3", 0, 3), 0);
    /* Touching 1 (a duplicate arriving) makes 2 the least recently used. */
    assert_int_equal(check(d, "s", "1", 0, NULL), NA_DEDUP_DUPLICATE);
    assert_int_equal(na_dedup_record(d, "s", "4", 0, 4), 0);
    assert_int_equal(na_dedup_count(d), 3);
    assert_int_equal(check(d, "s", "2", 0, NULL), NA_DEDUP_NEW);
    assert_int_equal(check(d, "s", "3", 0, NULL), NA_DEDUP_DUPLICATE);
    assert_int_equal(check(d, "s", "1", 0, NULL), NA_DEDUP_DUPLICATE);
    assert_int_equal(check(d, "s", "4", 0, NULL), NA_DEDUP_DUPLICATE);
    /* Order is now 4, 1, 3 (most recent first). Recording an existing key
     * refreshes it without evicting: 3, 4, 1, so 1 goes next. */
    assert_int_equal(na_dedup_record(d, "s", "3", 1, 0), 0);
    assert_int_equal(na_dedup_count(d), 3);
    assert_int_equal(na_dedup_record(d, "s", "5", 0, 5), 0);
    assert_int_equal(check(d, "s", "1", 0, NULL), NA_DEDUP_NEW);
    assert_int_equal(check(d, "s", "3", 1, NULL), NA_DEDUP_DUPLICATE);
    assert_int_equal(check(d, "s", "4", 0, NULL), NA_DEDUP_DUPLICATE);
    assert_int_equal(check(d, "s", "5", 0, NULL), NA_DEDUP_DUPLICATE);

    /* Many more keys than capacity: only the last three remain. */
    for (int i = 0; i < 10000; i++) {
        snprintf(id, sizeof(id), "k%d", i);
        assert_int_equal(na_dedup_record(d, "bulk", id, 0, (uint64_t)i + 1), 0);
    }
    assert_int_equal(na_dedup_count(d), 3);
    for (int i = 0; i < 10000; i++) {
        uint64_t prev;
        snprintf(id, sizeof(id), "k%d", i);
        enum na_dedup_verdict v = check(d, "bulk", id, 1, &prev);
        if (i >= 9997) {
            assert_int_equal(v, NA_DEDUP_REVISION);
            assert_int_equal(prev, (uint64_t)i + 1);
        } else {
            assert_int_equal(v, NA_DEDUP_NEW);
        }
    }
    na_dedup_free(d);
}

static void test_capacity_one(void **state)
{
    (void)state;
    struct na_dedup *d = na_dedup_new(1);
    uint64_t prev;
    assert_int_equal(na_dedup_capacity(d), 1);
    assert_int_equal(na_dedup_record(d, "s", "a", 0, 1), 0);
    assert_int_equal(check(d, "s", "a", 0, &prev), NA_DEDUP_DUPLICATE);
    assert_int_equal(na_dedup_record(d, "s", "b", 0, 2), 0);
    assert_int_equal(na_dedup_count(d), 1);
    assert_int_equal(check(d, "s", "a", 0, &prev), NA_DEDUP_NEW);
    assert_int_equal(check(d, "s", "b", 1, &prev), NA_DEDUP_REVISION);
    assert_int_equal(prev, 2);
    na_dedup_free(d);
    /* A capacity of 0 is taken as 1. */
    d = na_dedup_new(0);
    assert_int_equal(na_dedup_capacity(d), 1);
    na_dedup_free(d);
}

static void test_resize_keeps_entries(void **state)
{
    (void)state;
    struct na_dedup *d = na_dedup_new(4);
    char id[16];
    uint64_t prev;
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "%d", i);
        assert_int_equal(na_dedup_record(d, "s", id, 0, (uint64_t)i + 10), 0);
    }
    /* Growing (a reload with a bigger window) keeps everything. */
    assert_int_equal(na_dedup_resize(d, 1000), 0);
    assert_int_equal(na_dedup_capacity(d), 1000);
    assert_int_equal(na_dedup_count(d), 4);
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "%d", i);
        assert_int_equal(check(d, "s", id, 1, &prev), NA_DEDUP_REVISION);
        assert_int_equal(prev, (uint64_t)i + 10);
    }
    for (int i = 4; i < 600; i++) {
        snprintf(id, sizeof(id), "%d", i);
        assert_int_equal(na_dedup_record(d, "s", id, 0, (uint64_t)i + 10), 0);
    }
    assert_int_equal(na_dedup_count(d), 600);
    /* Shrinking keeps the most recent. */
    assert_int_equal(na_dedup_resize(d, 2), 0);
    assert_int_equal(na_dedup_count(d), 2);
    assert_int_equal(check(d, "s", "599", 0, NULL), NA_DEDUP_DUPLICATE);
    assert_int_equal(check(d, "s", "598", 0, NULL), NA_DEDUP_DUPLICATE);
    assert_int_equal(check(d, "s", "597", 0, NULL), NA_DEDUP_NEW);
    assert_int_equal(check(d, "s", "0", 0, NULL), NA_DEDUP_NEW);
    na_dedup_free(d);
}

/* Keys past the 256-byte stack buffer take the other hash: they must still
 * be told apart, including where the split between source and id falls, and
 * keys on either side of the buffer's edge must not meet. */
static void test_long_keys(void **state)
{
    (void)state;
    struct na_dedup *d = na_dedup_new(16);
    char src[400], longer[401], id[300];
    memset(src, 'x', sizeof(src) - 1);
    src[sizeof(src) - 1] = '\0';
    memcpy(longer, src, sizeof(src) - 1);
    longer[sizeof(src) - 1] = 'y';
    longer[sizeof(src)] = '\0';

    assert_int_equal(na_dedup_record(d, src, "a", 0, 1), 0);
    assert_int_equal(check(d, src, "a", 0, NULL), NA_DEDUP_DUPLICATE);
    assert_int_equal(check(d, src, "b", 0, NULL), NA_DEDUP_NEW);
    assert_int_equal(na_dedup_record(d, longer, "a", 0, 2), 0);
    assert_int_equal(check(d, src, "ya", 0, NULL), NA_DEDUP_NEW);
    assert_int_equal(check(d, longer, "a", 0, NULL), NA_DEDUP_DUPLICATE);

    /* "s", NUL, id: 256 bytes fit the buffer, 257 do not. */
    memset(id, 'i', sizeof(id));
    id[253] = '\0'; /* 1 + 1 + 253 = 255 bytes */
    assert_int_equal(na_dedup_record(d, "s", id, 0, 3), 0);
    id[253] = 'i';
    id[254] = '\0'; /* 256 */
    assert_int_equal(check(d, "s", id, 0, NULL), NA_DEDUP_NEW);
    assert_int_equal(na_dedup_record(d, "s", id, 0, 4), 0);
    id[254] = 'i';
    id[255] = '\0'; /* 257 */
    assert_int_equal(check(d, "s", id, 0, NULL), NA_DEDUP_NEW);
    id[254] = '\0';
    assert_int_equal(check(d, "s", id, 1, NULL), NA_DEDUP_REVISION);
    id[253] = '\0';
    assert_int_equal(check(d, "s", id, 0, NULL), NA_DEDUP_DUPLICATE);
    assert_int_equal(na_dedup_count(d), 4);
    na_dedup_free(d);
}

/* The entries grow as the window fills, and the recency list survives the
 * moves: a full window still evicts its least recently used entry, also
 * after a shrink has packed the entries anew. */
static void test_growth_and_order(void **state)
{
    (void)state;
    struct na_dedup *d = na_dedup_new(3000);
    char id[16];
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof(id), "%d", i);
        assert_int_equal(na_dedup_record(d, "s", id, 0, (uint64_t)i + 1), 0);
    }
    assert_int_equal(na_dedup_count(d), 3000);
    /* "0" is touched, so "1" is the least recently used. */
    assert_int_equal(check(d, "s", "0", 0, NULL), NA_DEDUP_DUPLICATE);
    assert_int_equal(na_dedup_record(d, "s", "new", 0, 0), 0);
    assert_int_equal(na_dedup_count(d), 3000);
    assert_int_equal(check(d, "s", "1", 0, NULL), NA_DEDUP_NEW);
    for (int i = 2; i < 3000; i++) {
        uint64_t prev;
        snprintf(id, sizeof(id), "%d", i);
        assert_int_equal(check(d, "s", id, 1, &prev), NA_DEDUP_REVISION);
        assert_int_equal(prev, (uint64_t)i + 1);
    }
    /* Now, most recent first: 2999 ... 2, new, 0. Keep three. */
    assert_int_equal(na_dedup_resize(d, 3), 0);
    assert_int_equal(na_dedup_record(d, "s", "after", 0, 0), 0);
    assert_int_equal(check(d, "s", "2997", 0, NULL), NA_DEDUP_NEW);
    assert_int_equal(check(d, "s", "2998", 0, NULL), NA_DEDUP_DUPLICATE);
    assert_int_equal(na_dedup_record(d, "s", "again", 0, 0), 0);
    assert_int_equal(check(d, "s", "2999", 0, NULL), NA_DEDUP_NEW);
    assert_int_equal(check(d, "s", "2998", 0, NULL), NA_DEDUP_DUPLICATE);
    assert_int_equal(check(d, "s", "after", 0, NULL), NA_DEDUP_DUPLICATE);
    assert_int_equal(check(d, "s", "again", 0, NULL), NA_DEDUP_DUPLICATE);
    /* Growing again and filling past the old size. */
    assert_int_equal(na_dedup_resize(d, 5000), 0);
    for (int i = 0; i < 4997; i++) {
        snprintf(id, sizeof(id), "g%d", i);
        assert_int_equal(na_dedup_record(d, "s", id, 0, 0), 0);
    }
    assert_int_equal(na_dedup_count(d), 5000);
    assert_int_equal(check(d, "s", "2998", 0, NULL), NA_DEDUP_DUPLICATE);
    assert_int_equal(na_dedup_record(d, "s", "last", 0, 0), 0);
    assert_int_equal(check(d, "s", "after", 0, NULL), NA_DEDUP_NEW);
    assert_int_equal(check(d, "s", "2998", 0, NULL), NA_DEDUP_DUPLICATE);
    na_dedup_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_eviction_order),
        cmocka_unit_test(test_capacity_one),
        cmocka_unit_test(test_resize_keeps_entries),
        cmocka_unit_test(test_long_keys),
        cmocka_unit_test(test_growth_and_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
