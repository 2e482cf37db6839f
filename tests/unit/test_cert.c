/* Unit tests for lib/cert.c: ZPL certificate parsing, the secret-key
 * permission check, and the round trip through na_cert_format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "newsalert/cert.h"

#define PUB "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
#define SEC "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"

static int parse(const char *text, struct na_cert *c, struct na_error *err)
{
    return na_cert_parse(text, strlen(text), "t.key", c, err);
}

static void test_czmq_secret_certificate(void **state)
{
    (void)state;
    struct na_cert c;
    struct na_error err;
    const char *text = "#   ****  Generated on 2024-01-01 by CZMQ  ****\n"
                       "#   ZeroMQ CURVE **Secret** Certificate\n"
                       "\n"
                       "metadata\n"
                       "    name = \"feed\"\n"
                       "curve\n"
                       "    public-key = \"" PUB "\"\n"
                       "    secret-key = \"" SEC "\"\n";
    assert_int_equal(parse(text, &c, &err), 0);
    assert_string_equal(c.public_key, PUB);
    assert_string_equal(c.secret_key, SEC);
}

static void test_public_certificate_crlf_and_unquoted(void **state)
{
    (void)state;
    struct na_cert c;
    struct na_error err;
    assert_int_equal(parse("curve\r\n    public-key = " PUB "\r\n", &c, &err), 0);
    assert_string_equal(c.public_key, PUB);
    assert_string_equal(c.secret_key, "");
}

static void test_keys_outside_curve_are_ignored(void **state)
{
    (void)state;
    struct na_cert c;
    struct na_error err;
    assert_int_equal(parse("metadata\n    public-key = \"x\"\n", &c, &err), -1);
    assert_non_null(strstr(err.msg, "no curve public-key"));
}

static void test_malformed_keys(void **state)
{
    (void)state;
    struct na_cert c;
    struct na_error err;
    /* 39 characters */
    assert_int_equal(
        parse("curve\n    public-key = \"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hI\"\n", &c,
              &err),
        -1);
    assert_non_null(strstr(err.msg, "t.key:2: public-key: expected 40 Z85"));
    /* a character outside the alphabet */
    assert_int_equal(
        parse("curve\n    public-key = \"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{h~D\"\n",
              &c, &err),
        -1);
    /* unterminated quote */
    assert_int_equal(parse("curve\n    public-key = \"" PUB "\n", &c, &err), -1);
    assert_non_null(strstr(err.msg, "t.key:2:"));
    /* twice */
    assert_int_equal(parse("curve\n    public-key = \"" PUB "\"\n    public-key = \"" PUB
                           "\"\n",
                           &c, &err),
                     -1);
    assert_non_null(strstr(err.msg, "twice"));
    assert_int_equal(parse("", &c, &err), -1);
    assert_false(na_z85_key_valid(PUB, 39));
    assert_true(na_z85_key_valid(PUB, 40));
}

static void test_format_round_trip_and_permissions(void **state)
{
    (void)state;
    struct na_cert c = {PUB, SEC}, back;
    struct na_error err;
    char text[1024], path[] = "/tmp/na-cert-XXXXXX";

    int n = na_cert_format(&c, true, "2024-01-01 00:00:00", text, sizeof(text));
    assert_true(n > 0);
    assert_int_equal(na_cert_format(&c, true, "now", text, 20), -1);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, (size_t)n), n);
    close(fd);
    chmod(path, 0600);
    assert_int_equal(na_cert_load(path, true, &back, &err), 0);
    assert_string_equal(back.public_key, PUB);
    assert_string_equal(back.secret_key, SEC);
    chmod(path, 0640);
    assert_int_equal(na_cert_load(path, true, &back, &err), -1);
    assert_non_null(strstr(err.msg, "mode is 0640"));
    assert_null(strstr(err.msg, SEC));
    assert_string_equal(back.secret_key, "");
    /* The public form loads, but not where a secret key is needed. */
    n = na_cert_format(&c, false, "2024-01-01 00:00:00", text, sizeof(text));
    assert_null(strstr(text, SEC));
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, text, (size_t)n), n);
    close(fd);
    chmod(path, 0644);
    assert_int_equal(na_cert_load(path, false, &back, &err), 0);
    assert_int_equal(na_cert_load(path, true, &back, &err), -1);
    assert_non_null(strstr(err.msg, "no curve secret-key"));
    unlink(path);
    assert_int_equal(na_cert_load(path, false, &back, &err), -1);
    assert_non_null(strstr(err.msg, path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_czmq_secret_certificate),
        cmocka_unit_test(test_public_certificate_crlf_and_unquoted),
        cmocka_unit_test(test_keys_outside_curve_are_ignored),
        cmocka_unit_test(test_malformed_keys),
        cmocka_unit_test(test_format_round_trip_and_permissions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
