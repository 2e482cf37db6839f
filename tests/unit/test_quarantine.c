/* Unit tests for lib/quarantine.c: the store of rejected feed input, on
 * real files, including truncated and damaged ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "newsalert/quarantine.h"
#include "testutil.h"

#define MAXE 256

struct seen {
    size_t n, errors;
    uint64_t time[MAXE];
    char reason[MAXE][NA_QUARANTINE_MAX_REASON + 1];
    size_t n_frames[MAXE];
    char frame0[MAXE][64];
    size_t len0[MAXE];
    char last_err[512];
};

static void tmp_dir(char *dir)
{
    strcpy(dir, "/tmp/na_test_quarXXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void read_all(const char *dir, struct seen *s)
{
    struct na_error err = {{0}};
    struct na_quarantine_entry e;
    struct na_quarantine_reader *r = na_quarantine_reader_open(dir, &err);
    int rc;
    assert_non_null(r);
    memset(s, 0, sizeof(*s));
    while ((rc = na_quarantine_reader_next(r, &e, &err)) != 0) {
        if (rc < 0) {
            s->errors++;
            snprintf(s->last_err, sizeof(s->last_err), "%s", err.msg);
            continue;
        }
        assert_true(s->n < MAXE);
        s->time[s->n] = e.time_ns;
        snprintf(s->reason[s->n], sizeof(s->reason[0]), "%s", e.reason);
        s->n_frames[s->n] = e.n_frames;
        assert_true(e.frames[0].len < 64);
        memcpy(s->frame0[s->n], e.frames[0].data, e.frames[0].len);
        s->len0[s->n] = e.frames[0].len;
        s->n++;
    }
    na_quarantine_reader_close(r);
}

static void add_numbered(struct na_quarantine *q, uint64_t i)
{
    struct na_error err = {{0}};
    char body[32];
    int n = snprintf(body, sizeof(body), "bad message %llu", (unsigned long long)i);
    struct na_frame f[2] = {{(const uint8_t *)"news", 4},
                            {(const uint8_t *)body, (size_t)n}};
    assert_int_equal(na_quarantine_add(q, 1000 + i, "malformed_protobuf", f, 2, &err), 0);
}

static void file_name(const char *dir, uint64_t index, char *out)
{
    snprintf(out, PATH_MAX, "%s/q-%020llu.naq", dir, (unsigned long long)index);
}

static void test_round_trip(void **state)
{
    (void)state;
    char dir[64], long_reason[400];
    struct na_error err = {{0}};
    struct seen s;

    tmp_dir(dir);
    struct na_quarantine *q = na_quarantine_open(dir, 1 << 20, 1 << 16, &err);
    assert_non_null(q);
    struct na_frame one[1] = {{(const uint8_t *)"\x0a\xff\x00", 3}};
    struct na_frame three[3] = {{(const uint8_t *)"news", 4},
                                {(const uint8_t *)"", 0},
                                {(const uint8_t *)"x", 1}};
    assert_int_equal(na_quarantine_add(q, 1, "malformed_protobuf", one, 1, &err), 0);
    assert_int_equal(na_quarantine_add(q, 2, "frame_count", three, 3, &err), 0);
    memset(long_reason, 'r', sizeof(long_reason) - 1);
    long_reason[sizeof(long_reason) - 1] = '\0';
    assert_int_equal(na_quarantine_add(q, 3, long_reason, one, 1, &err), 0);
    /* Refused: no frames, too many, or larger than the whole store. */
    assert_int_equal(na_quarantine_add(q, 4, "x", one, 0, &err), -1);
    assert_int_equal(na_quarantine_add(q, 4, "x", one, NA_FEED_MAX_FRAMES + 1, &err), -1);
    assert_int_equal(na_quarantine_close(q, &err), 0);

    /* Reopened: the entries stay, and new ones go to a new file. */
    q = na_quarantine_open(dir, 1 << 20, 1 << 16, &err);
    assert_non_null(q);
    uint64_t before = na_quarantine_size_bytes(q);
    assert_true(before > 0);
    add_numbered(q, 4);
    assert_int_equal(na_quarantine_flush(q, &err), 0);
    assert_true(na_quarantine_size_bytes(q) > before);
    read_all(dir, &s);
    na_quarantine_close(q, NULL);

    assert_int_equal(s.errors, 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.time[0], 1);
    assert_string_equal(s.reason[0], "malformed_protobuf");
    assert_int_equal(s.n_frames[0], 1);
    assert_int_equal(s.len0[0], 3);
    assert_memory_equal(s.frame0[0], "\x0a\xff\x00", 3);
    assert_int_equal(s.n_frames[1], 3);
    assert_string_equal(s.reason[1], "frame_count");
    assert_int_equal(strlen(s.reason[2]), NA_QUARANTINE_MAX_REASON); /* cut */
    assert_int_equal(s.time[3], 1004);
    char path[PATH_MAX];
    file_name(dir, 2, path);
    assert_int_equal(access(path, F_OK), 0);

    /* An entry larger than the whole store is refused. */
    q = na_quarantine_open(dir, 64, 64, &err);
    assert_non_null(q);
    char big[100] = {0};
    struct na_frame bf[1] = {{(const uint8_t *)big, sizeof(big)}};
    assert_int_equal(na_quarantine_add(q, 1, "oversize", bf, 1, &err), -1);
    assert_non_null(strstr(err.msg, "too large"));
    na_quarantine_close(q, NULL);
    tu_rm_dir(dir);
}

static void test_rotation_and_cap(void **state)
{
    (void)state;
    char dir[64];
    struct na_error err = {{0}};
    struct seen s;

    tmp_dir(dir);
    /* Entries are about 60 bytes: three per 200-byte file, 1000 in all. */
    struct na_quarantine *q = na_quarantine_open(dir, 1000, 200, &err);
    assert_non_null(q);
    for (uint64_t i = 1; i <= 100; i++) {
        add_numbered(q, i);
        assert_int_equal(na_quarantine_flush(q, &err), 0);
        assert_true(na_quarantine_size_bytes(q) <= 1000);
    }
    na_quarantine_close(q, NULL);
    read_all(dir, &s);
    assert_int_equal(s.errors, 0);
    assert_true(s.n >= 10 && s.n < 20);
    /* The newest survive, in order. */
    assert_int_equal(s.time[s.n - 1], 1100);
    for (size_t i = 1; i < s.n; i++)
        assert_int_equal(s.time[i], s.time[i - 1] + 1);

    /* A smaller cap at the next start deletes the oldest files. */
    q = na_quarantine_open(dir, 300, 200, &err);
    assert_non_null(q);
    assert_true(na_quarantine_size_bytes(q) <= 300);
    na_quarantine_close(q, NULL);
    read_all(dir, &s);
    assert_true(s.n > 0 && s.n < 6);
    assert_int_equal(s.time[s.n - 1], 1100);
    tu_rm_dir(dir);
}

/* Two files of three entries each; the first is cut at every length, the
 * second stays whole. */
static void test_truncated_file(void **state)
{
    (void)state;
    char dir[64], first[PATH_MAX];
    struct na_error err = {{0}};
    struct seen s;

    tmp_dir(dir);
    struct na_quarantine *q = na_quarantine_open(dir, 1 << 20, 1 << 20, &err);
    for (uint64_t i = 1; i <= 3; i++)
        add_numbered(q, i);
    na_quarantine_close(q, NULL);
    q = na_quarantine_open(dir, 1 << 20, 1 << 20, &err);
    for (uint64_t i = 4; i <= 6; i++)
        add_numbered(q, i);
    na_quarantine_close(q, NULL);

    file_name(dir, 1, first);
    FILE *f = fopen(first, "rb");
    uint8_t buf[4096];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    size_t ends[3], off = NA_QUARANTINE_HEADER_SIZE;
    for (int i = 0; i < 3; i++) {
        off += 8 + 8 + 2 + strlen("malformed_protobuf") + 2 + 4 + 4 + 4 +
               strlen("bad message 1");
        ends[i] = off;
    }
    assert_int_equal(off, len);

    for (size_t cut = 0; cut <= len; cut++) {
        f = fopen(first, "wb");
        if (cut)
            assert_int_equal(fwrite(buf, 1, cut, f), cut);
        fclose(f);
        size_t whole = 0;
        while (whole < 3 && ends[whole] <= cut)
            whole++;
        bool clean = cut == 0 || cut == NA_QUARANTINE_HEADER_SIZE ||
                     (whole && cut == ends[whole - 1]);
        read_all(dir, &s);
        assert_int_equal(s.n, whole + 3);
        assert_int_equal(s.errors, clean ? 0 : 1);
        if (!clean)
            assert_non_null(strstr(s.last_err, "q-00000000000000000001.naq"));
        assert_int_equal(s.time[s.n - 1], 1006);
    }
    tu_rm_dir(dir);
}

static void test_damaged_file(void **state)
{
    (void)state;
    char dir[64], first[PATH_MAX];
    struct na_error err = {{0}};
    struct seen s;

    tmp_dir(dir);
    struct na_quarantine *q = na_quarantine_open(dir, 1 << 20, 1 << 20, &err);
    for (uint64_t i = 1; i <= 3; i++)
        add_numbered(q, i);
    na_quarantine_close(q, NULL);
    q = na_quarantine_open(dir, 1 << 20, 1 << 20, &err);
    add_numbered(q, 4);
    na_quarantine_close(q, NULL);
    file_name(dir, 1, first);

    /* A flipped byte in the second entry: the first is read, then the error,
     * then the next file. */
    FILE *f = fopen(first, "r+b");
    fseek(f, NA_QUARANTINE_HEADER_SIZE + 49 + 20, SEEK_SET);
    int c = fgetc(f);
    fseek(f, NA_QUARANTINE_HEADER_SIZE + 49 + 20, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    read_all(dir, &s);
    assert_int_equal(s.errors, 1);
    assert_non_null(strstr(s.last_err, "bad CRC"));
    assert_int_equal(s.n, 2);
    assert_int_equal(s.time[0], 1001);
    assert_int_equal(s.time[1], 1004);

    /* A wrong magic: nothing of that file, the rest still. */
    f = fopen(first, "r+b");
    fputc('X', f);
    fclose(f);
    read_all(dir, &s);
    assert_int_equal(s.errors, 1);
    assert_non_null(strstr(s.last_err, "bad header"));
    assert_int_equal(s.n, 1);

    /* A huge length field. */
    f = fopen(first, "r+b");
    fputc('N', f);
    fseek(f, NA_QUARANTINE_HEADER_SIZE, SEEK_SET);
    fputc(0xff, f);
    fputc(0xff, f);
    fputc(0xff, f);
    fputc(0x7f, f);
    fclose(f);
    read_all(dir, &s);
    assert_int_equal(s.errors, 1);
    assert_non_null(strstr(s.last_err, "bad entry length"));
    assert_int_equal(s.n, 1);
    tu_rm_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_rotation_and_cap),
        cmocka_unit_test(test_truncated_file),
        cmocka_unit_test(test_damaged_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
