/* Unit tests for lib/feedfile.c: the recorded-feed writer and reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "newsalert/feedfile.h"

struct rec_def {
    uint64_t time_ns;
    size_t n_frames;
    const char *frames[3];
    size_t lens[3];
};

/* Three records of 2, 1 and 3 frames; one frame is empty and one holds
 * binary bytes (NUL and 0xff). */
static const struct rec_def recs[3] = {
    {1720000000123456789ull,
     2,
     {"alert.aid", "\x0a\x03"
                   "a-1\x22\x05Hello"},
     {9, 12}},
    {1720000000999000000ull, 1, {"just one frame"}, {14}},
    {UINT64_MAX - 7, 3, {"", "x\0y\xff", "third frame"}, {0, 4, 11}},
};

struct fixture {
    char path[64];
    uint8_t *data;
    size_t len;
    size_t rec_end[3]; /* file offset one past each record */
};

static void write_feed(struct fixture *fx)
{
    struct na_error err = {{0}};
    strcpy(fx->path, "/tmp/na_test_feedXXXXXX");
    int fd = mkstemp(fx->path);
    assert_true(fd >= 0);
    close(fd);

    struct na_feed_writer *w = na_feed_writer_open(fx->path, &err);
    assert_non_null(w);
    for (size_t i = 0; i < 3; i++) {
        struct na_frame frames[3];
        for (size_t f = 0; f < recs[i].n_frames; f++) {
            frames[f].data = (const uint8_t *)recs[i].frames[f];
            frames[f].len = recs[i].lens[f];
        }
        assert_int_equal(
            na_feed_writer_append(w, recs[i].time_ns, frames, recs[i].n_frames, &err), 0);
    }
    assert_int_equal(na_feed_writer_close(w, &err), 0);

    FILE *f = fopen(fx->path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    assert_true(size > 0);
    fseek(f, 0, SEEK_SET);
    fx->len = (size_t)size;
    fx->data = malloc(fx->len);
    assert_non_null(fx->data);
    assert_int_equal(fread(fx->data, 1, fx->len, f), fx->len);
    fclose(f);

    size_t off = NA_FEED_HEADER_SIZE;
    for (size_t i = 0; i < 3; i++) {
        off += 4 + 8 + 2;
        for (size_t k = 0; k < recs[i].n_frames; k++)
            off += 4 + recs[i].lens[k];
        fx->rec_end[i] = off;
    }
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    write_feed(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    unlink(fx->path);
    free(fx->data);
    free(fx);
    return 0;
}

static void check_record(const struct na_record *rec, size_t i)
{
    assert_int_equal(rec->time_ns, recs[i].time_ns);
    assert_int_equal(rec->n_frames, recs[i].n_frames);
    for (size_t f = 0; f < recs[i].n_frames; f++) {
        assert_int_equal(rec->frames[f].len, recs[i].lens[f]);
        if (recs[i].lens[f])
            assert_memory_equal(rec->frames[f].data, recs[i].frames[f], recs[i].lens[f]);
    }
}

static void test_layout(void **state)
{
    struct fixture *fx = *state;
    /* Header: magic, version 1, reserved zeros; then the records. */
    assert_int_equal(fx->len, fx->rec_end[2]);
    assert_memory_equal(fx->data, "NAFEED\0\0", 8);
    assert_int_equal(fx->data[8], 1);
    assert_int_equal(fx->data[9], 0);
    for (int i = 10; i < 16; i++)
        assert_int_equal(fx->data[i], 0);
    /* The first record's length field covers time, count and frames. */
    uint32_t l0 = (uint32_t)fx->data[16] | (uint32_t)fx->data[17] << 8 |
                  (uint32_t)fx->data[18] << 16 | (uint32_t)fx->data[19] << 24;
    assert_int_equal(l0, fx->rec_end[0] - NA_FEED_HEADER_SIZE - 4);
    assert_true(na_feed_is_feed(fx->data, fx->len));
    assert_false(na_feed_is_feed(fx->data, 7));
    assert_false(na_feed_is_feed((const uint8_t *)"{\"id\":\"x\"}", 10));
}

static void test_roundtrip_file(void **state)
{
    struct fixture *fx = *state;
    struct na_error err = {{0}};
    struct na_record rec;

    struct na_feed_reader *r = na_feed_reader_open(fx->path, &err);
    assert_non_null(r);
    assert_int_equal(na_feed_reader_size(r), fx->len);
    assert_int_equal(na_feed_reader_offset(r), NA_FEED_HEADER_SIZE);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(na_feed_reader_next(r, &rec, &err), 1);
        check_record(&rec, i);
        assert_int_equal(na_feed_reader_offset(r), fx->rec_end[i]);
    }
    assert_int_equal(na_feed_reader_next(r, &rec, &err), 0);
    assert_int_equal(na_feed_reader_next(r, &rec, &err), 0);
    na_feed_reader_close(r);
}

static void test_roundtrip_mem(void **state)
{
    struct fixture *fx = *state;
    struct na_error err = {{0}};
    struct na_record rec;

    struct na_feed_reader *r = na_feed_reader_open_mem(fx->data, fx->len, &err);
    assert_non_null(r);
    assert_int_equal(na_feed_reader_size(r), fx->len);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(na_feed_reader_next(r, &rec, &err), 1);
        check_record(&rec, i);
    }
    assert_int_equal(na_feed_reader_next(r, &rec, &err), 0);
    na_feed_reader_close(r);
}

static void test_bad_magic(void **state)
{
    struct fixture *fx = *state;
    struct na_error err = {{0}};
    uint8_t *copy = malloc(fx->len);
    assert_non_null(copy);
    memcpy(copy, fx->data, fx->len);
    copy[0] = 'X';
    assert_null(na_feed_reader_open_mem(copy, fx->len, &err));
    assert_non_null(strstr(err.msg, "magic"));

    /* A JSON lines file is not a feed either. */
    const char *jsonl = "{\"id\":\"a\",\"headline\":\"x\"}\n";
    memset(&err, 0, sizeof(err));
    assert_null(na_feed_reader_open_mem((const uint8_t *)jsonl, strlen(jsonl), &err));
    assert_non_null(strstr(err.msg, "magic"));

    /* The same through a file. */
    char path[64] = "/tmp/na_test_feedXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, copy, fx->len), (ssize_t)fx->len);
    close(fd);
    memset(&err, 0, sizeof(err));
    assert_null(na_feed_reader_open(path, &err));
    assert_non_null(strstr(err.msg, "magic"));
    unlink(path);
    free(copy);
}

static void test_bad_version(void **state)
{
    struct fixture *fx = *state;
    struct na_error err = {{0}};
    uint8_t *copy = malloc(fx->len);
    assert_non_null(copy);
    memcpy(copy, fx->data, fx->len);
    copy[8] = 2;
    assert_null(na_feed_reader_open_mem(copy, fx->len, &err));
    assert_non_null(strstr(err.msg, "version"));
    assert_non_null(strstr(err.msg, "2"));
    copy[8] = 0;
    copy[9] = 1; /* 256 */
    memset(&err, 0, sizeof(err));
    assert_null(na_feed_reader_open_mem(copy, fx->len, &err));
    assert_non_null(strstr(err.msg, "version"));
    free(copy);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct na_error err = {{0}};
    assert_null(na_feed_reader_open("/nonexistent/dir/x.feed", &err));
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x.feed"));
    memset(&err, 0, sizeof(err));
    assert_null(na_feed_writer_open("/nonexistent/dir/x.feed", &err));
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x.feed"));
}

static void test_writer_frame_count(void **state)
{
    (void)state;
    struct na_error err = {{0}};
    char path[64] = "/tmp/na_test_feedXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct na_feed_writer *w = na_feed_writer_open(path, &err);
    assert_non_null(w);
    struct na_frame frames[NA_FEED_MAX_FRAMES + 1];
    for (size_t i = 0; i <= NA_FEED_MAX_FRAMES; i++)
        frames[i] = (struct na_frame){(const uint8_t *)"f", 1};
    assert_int_equal(na_feed_writer_append(w, 1, frames, 0, &err), -1);
    assert_int_equal(na_feed_writer_append(w, 1, frames, NA_FEED_MAX_FRAMES + 1, &err),
                     -1);
    assert_int_equal(na_feed_writer_append(w, 7, frames, NA_FEED_MAX_FRAMES, &err), 0);
    assert_int_equal(na_feed_writer_close(w, &err), 0);
    assert_int_equal(na_feed_writer_close(NULL, &err), 0);

    /* Only the valid record was written. */
    struct na_record rec;
    struct na_feed_reader *r = na_feed_reader_open(path, &err);
    assert_non_null(r);
    assert_int_equal(na_feed_reader_next(r, &rec, &err), 1);
    assert_int_equal(rec.time_ns, 7);
    assert_int_equal(rec.n_frames, NA_FEED_MAX_FRAMES);
    assert_int_equal(na_feed_reader_next(r, &rec, &err), 0);
    na_feed_reader_close(r);
    unlink(path);
}

static void test_header_only(void **state)
{
    struct fixture *fx = *state;
    struct na_error err = {{0}};
    struct na_record rec;
    struct na_feed_reader *r =
        na_feed_reader_open_mem(fx->data, NA_FEED_HEADER_SIZE, &err);
    assert_non_null(r);
    assert_int_equal(na_feed_reader_next(r, &rec, &err), 0);
    na_feed_reader_close(r);
}

/* Every prefix of the file: a cut in the header fails at open; otherwise the
 * whole records before the cut come back intact, then 0 if the cut falls on a
 * record boundary or -1 for the partial record, and then 0 for ever. The
 * prefix is copied into a buffer of exactly its size, so that reading past it
 * is caught by the sanitizers. */
static void test_every_truncation(void **state)
{
    struct fixture *fx = *state;

    for (size_t cut = 0; cut <= fx->len; cut++) {
        struct na_error err = {{0}};
        struct na_record rec;
        uint8_t *buf = malloc(cut ? cut : 1);
        assert_non_null(buf);
        memcpy(buf, fx->data, cut);
        struct na_feed_reader *r = na_feed_reader_open_mem(buf, cut, &err);
        if (cut < NA_FEED_HEADER_SIZE) {
            assert_null(r);
            assert_true(err.msg[0] != '\0');
            free(buf);
            continue;
        }
        assert_non_null(r);
        size_t whole = 0;
        bool on_boundary = cut == NA_FEED_HEADER_SIZE;
        for (size_t i = 0; i < 3; i++) {
            if (fx->rec_end[i] <= cut)
                whole = i + 1;
            if (fx->rec_end[i] == cut)
                on_boundary = true;
        }
        for (size_t i = 0; i < whole; i++) {
            int rc = na_feed_reader_next(r, &rec, &err);
            if (rc != 1)
                print_error("cut %zu: record %zu: rc %d (%s)\n", cut, i, rc, err.msg);
            assert_int_equal(rc, 1);
            check_record(&rec, i);
        }
        memset(&err, 0, sizeof(err));
        int rc = na_feed_reader_next(r, &rec, &err);
        if (on_boundary) {
            assert_int_equal(rc, 0);
        } else {
            if (rc != -1)
                print_error("cut %zu: expected -1, got %d\n", cut, rc);
            assert_int_equal(rc, -1);
            assert_non_null(strstr(err.msg, "truncated"));
            assert_true(na_feed_reader_truncated(r));
        }
        /* The reader stays at the end. */
        assert_int_equal(na_feed_reader_next(r, &rec, &err), 0);
        na_feed_reader_close(r);
        free(buf);
    }
}

/* The same through the file reader (fread rather than memory). */
static void test_every_truncation_file(void **state)
{
    struct fixture *fx = *state;
    char path[64] = "/tmp/na_test_feedXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);

    for (size_t cut = 0; cut <= fx->len; cut++) {
        struct na_error err = {{0}};
        struct na_record rec;
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(fx->data, 1, cut, f), cut);
        assert_int_equal(fclose(f), 0);

        struct na_feed_reader *r = na_feed_reader_open(path, &err);
        if (cut < NA_FEED_HEADER_SIZE) {
            assert_null(r);
            assert_non_null(strstr(err.msg, path));
            continue;
        }
        assert_non_null(r);
        assert_int_equal(na_feed_reader_size(r), cut);
        size_t whole = 0;
        bool on_boundary = cut == NA_FEED_HEADER_SIZE;
        for (size_t i = 0; i < 3; i++) {
            if (fx->rec_end[i] <= cut)
                whole = i + 1;
            if (fx->rec_end[i] == cut)
                on_boundary = true;
        }
        for (size_t i = 0; i < whole; i++) {
            assert_int_equal(na_feed_reader_next(r, &rec, &err), 1);
            check_record(&rec, i);
        }
        int rc = na_feed_reader_next(r, &rec, &err);
        assert_int_equal(rc, on_boundary ? 0 : -1);
        assert_int_equal(na_feed_reader_next(r, &rec, &err), 0);
        na_feed_reader_close(r);
    }
    unlink(path);
}

static void test_damaged_records(void **state)
{
    struct fixture *fx = *state;
    struct na_error err = {{0}};
    struct na_record rec;
    uint8_t *copy = malloc(fx->len);
    assert_non_null(copy);

    /* A length below the fixed part of a record. */
    memcpy(copy, fx->data, fx->len);
    memset(copy + 16, 0, 4);
    copy[16] = 9;
    struct na_feed_reader *r = na_feed_reader_open_mem(copy, fx->len, &err);
    assert_non_null(r);
    assert_int_equal(na_feed_reader_next(r, &rec, &err), -1);
    assert_non_null(strstr(err.msg, "damaged"));
    assert_false(na_feed_reader_truncated(r));
    assert_int_equal(na_feed_reader_next(r, &rec, &err), 0);
    na_feed_reader_close(r);

    /* Zero frames. */
    memcpy(copy, fx->data, fx->len);
    copy[16 + 4 + 8] = 0;
    copy[16 + 4 + 8 + 1] = 0;
    r = na_feed_reader_open_mem(copy, fx->len, &err);
    assert_non_null(r);
    assert_int_equal(na_feed_reader_next(r, &rec, &err), -1);
    na_feed_reader_close(r);

    /* A frame count larger than the frames present: the frame overruns. */
    memcpy(copy, fx->data, fx->len);
    copy[16 + 4 + 8] = 3;
    r = na_feed_reader_open_mem(copy, fx->len, &err);
    assert_non_null(r);
    assert_int_equal(na_feed_reader_next(r, &rec, &err), -1);
    na_feed_reader_close(r);

    /* A frame count smaller: stray bytes remain in the record. */
    memcpy(copy, fx->data, fx->len);
    copy[16 + 4 + 8] = 1;
    r = na_feed_reader_open_mem(copy, fx->len, &err);
    assert_non_null(r);
    assert_int_equal(na_feed_reader_next(r, &rec, &err), -1);
    na_feed_reader_close(r);

    /* A frame length that runs past its record. */
    memcpy(copy, fx->data, fx->len);
    copy[16 + 4 + 8 + 2] = 0xff;
    r = na_feed_reader_open_mem(copy, fx->len, &err);
    assert_non_null(r);
    assert_int_equal(na_feed_reader_next(r, &rec, &err), -1);
    na_feed_reader_close(r);

    /* A record length over NA_FEED_MAX_RECORD. */
    memcpy(copy, fx->data, fx->len);
    memset(copy + 16, 0xff, 4);
    r = na_feed_reader_open_mem(copy, fx->len, &err);
    assert_non_null(r);
    assert_int_equal(na_feed_reader_next(r, &rec, &err), -1);
    na_feed_reader_close(r);
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_mem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_magic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_version, setup, teardown),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_writer_frame_count),
        cmocka_unit_test_setup_teardown(test_header_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_truncation_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_records, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
