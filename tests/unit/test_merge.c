/* Unit tests for lib/merge.c: the alert key and the window of keys that
 * drops the copies several daemons send of one alert. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "newsalert/merge.h"

static void key_of(const char *source, const char *id, uint32_t rev, char *out,
                   size_t size, size_t *len)
{
    Newsalert__V1__Alert a = NEWSALERT__V1__ALERT__INIT;
    a.source = (char *)source;
    a.article_id = (char *)id;
    a.revision = rev;
    *len = na_alert_key(&a, out, size);
}

static void test_alert_key(void **state)
{
    (void)state;
    char k[64], k2[64];
    size_t n;

    key_of("reuters", "a-1", 0, k, sizeof(k), &n);
    assert_string_equal(k, "reuters/a-1/0");
    assert_int_equal(n, strlen(k));
    key_of("reuters", "a-1", 3, k, sizeof(k), &n);
    assert_string_equal(k, "reuters/a-1/3");
    /* '/' and '%' are escaped, so the parts cannot run into each other. */
    key_of("a/b", "c", 0, k, sizeof(k), &n);
    key_of("a", "b/c", 0, k2, sizeof(k2), &n);
    assert_string_equal(k, "a%2Fb/c/0");
    assert_string_equal(k2, "a/b%2Fc/0");
    key_of("50%", "x", 1, k, sizeof(k), &n);
    assert_string_equal(k, "50%25/x/1");
    /* An empty source is a key too. */
    key_of("", "x", 0, k, sizeof(k), &n);
    assert_string_equal(k, "/x/0");
    /* Too small a buffer: cut and terminated, the length still told. */
    key_of("reuters", "a-1", 0, k, 5, &n);
    assert_string_equal(k, "reut");
    assert_int_equal(n, strlen("reuters/a-1/0"));
    key_of("reuters", "a-1", 0, NULL, 0, &n);
    assert_int_equal(n, strlen("reuters/a-1/0"));
}

static void test_window(void **state)
{
    (void)state;
    assert_null(na_key_window_new(0));
    struct na_key_window *w = na_key_window_new(3);
    assert_non_null(w);
    assert_int_equal(na_key_window_add(w, "a"), 1);
    assert_int_equal(na_key_window_add(w, "a"), 0);
    assert_int_equal(na_key_window_add(w, "b"), 1);
    assert_int_equal(na_key_window_add(w, "c"), 1);
    assert_int_equal(na_key_window_add(w, "b"), 0);
    assert_int_equal(na_key_window_forgotten(w), 0);
    /* A fourth key pushes out the oldest, "a", and only it. */
    assert_int_equal(na_key_window_add(w, "d"), 1);
    assert_int_equal(na_key_window_forgotten(w), 1);
    assert_int_equal(na_key_window_add(w, "b"), 0);
    assert_int_equal(na_key_window_add(w, "c"), 0);
    assert_int_equal(na_key_window_add(w, "a"), 1); /* new again: pushes out b */
    assert_int_equal(na_key_window_add(w, "b"), 1);
    na_key_window_free(w);
}

static void test_window_at_scale(void **state)
{
    (void)state;
    enum { WINDOW = 5000, KEYS = 20000 };
    struct na_key_window *w = na_key_window_new(WINDOW);
    char key[32];
    assert_non_null(w);
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof(key), "src/%d/0#aid", i);
        assert_int_equal(na_key_window_add(w, key), 1);
        /* Every key of the last WINDOW is still known, older ones are not. */
        if (i % 997 == 0 && i >= WINDOW) {
            snprintf(key, sizeof(key), "src/%d/0#aid", i - WINDOW + 1);
            assert_int_equal(na_key_window_add(w, key), 0);
        }
    }
    assert_int_equal(na_key_window_forgotten(w), KEYS - WINDOW);
    for (int i = KEYS - WINDOW; i < KEYS; i++) {
        snprintf(key, sizeof(key), "src/%d/0#aid", i);
        assert_int_equal(na_key_window_add(w, key), 0);
    }
    snprintf(key, sizeof(key), "src/%d/0#aid", KEYS - WINDOW - 1);
    assert_int_equal(na_key_window_add(w, key), 1);
    na_key_window_free(w);
}

static void test_merge_options(void **state)
{
    (void)state;
    struct na_error err;
    struct na_merge_opts o = {.n_daemons = 0};
    assert_null(na_merge_new(&o, &err));
    assert_non_null(strstr(err.msg, "daemons"));
    struct na_client_opts d[2] = {{.alerts = "ipc:///tmp/na-merge-unit-a"},
                                  {.alerts = NULL}};
    o = (struct na_merge_opts){.daemons = d, .n_daemons = 2};
    assert_null(na_merge_new(&o, &err));
    assert_non_null(strstr(err.msg, "daemon 2"));
    o.n_daemons = 1;
    struct na_merge *m = na_merge_new(&o, &err);
    assert_non_null(m);
    Newsalert__V1__Alert *a;
    size_t from;
    assert_int_equal(na_merge_next(m, 0, &a, &from, &err), 0);
    assert_non_null(na_merge_client(m, 0));
    assert_null(na_merge_client(m, 1));
    na_merge_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alert_key),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_window_at_scale),
        cmocka_unit_test(test_merge_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
