/* Unit tests for lib/journal.c and lib/journal_reader.c: the alert journal
 * on real files in a temporary directory, damaged on purpose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "newsalert/crc32c.h"
#include "newsalert/journal.h"
#include "testutil.h"

#define MAX_RECS 64

/* What a reader returned, copied. */
struct got {
    size_t n;
    uint64_t seq[MAX_RECS];
    int64_t time[MAX_RECS];
    char payload[MAX_RECS][64];
    size_t len[MAX_RECS];
    bool gone;
    uint64_t oldest;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tmp_dir(char *dir)
{
    strcpy(dir, "/tmp/na_test_journalXXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void payload_of(uint64_t seq, char *buf, size_t *len)
{
    /* Lengths 0..21 bytes, so records are not all the same size. */
    *len = (size_t)snprintf(buf, 64, "alert-%llu-%.*s", (unsigned long long)seq,
                            (int)(seq % 7), "xxxxxxx");
    if (seq % 5 == 0)
        *len = 0;
}

static struct na_journal *open_journal(const char *dir, const struct na_journal_opts *o,
                                       struct na_journal_report *rep)
{
    struct na_error err = {{0}};
    struct na_journal *j = na_journal_open(dir, o, rep, &err);
    if (j == NULL)
        fprintf(stderr, "na_journal_open: %s\n", err.msg);
    assert_non_null(j);
    return j;
}

static void append_range(struct na_journal *j, uint64_t from, uint64_t to, int64_t t)
{
    struct na_error err = {{0}};
    for (uint64_t s = from; s <= to; s++) {
        char buf[64];
        size_t len;
        payload_of(s, buf, &len);
        if (na_journal_append(j, s, t + (int64_t)s, buf, len, &err) < 0)
            fprintf(stderr, "append %llu: %s\n", (unsigned long long)s, err.msg);
        assert_int_equal(na_journal_flush(j, &err), 0);
    }
}

static void read_all(struct na_journal *j, uint64_t since, struct got *g)
{
    struct na_error err = {{0}};
    struct na_journal_reader *r = na_journal_reader_open(j, since, &err);
    uint64_t seq;
    int64_t t;
    const uint8_t *p;
    size_t len;
    int rc;

    assert_non_null(r);
    memset(g, 0, sizeof(*g));
    while ((rc = na_journal_reader_next(r, &seq, &t, &p, &len, &err)) == 1) {
        assert_true(g->n < MAX_RECS);
        assert_true(len < 64);
        g->seq[g->n] = seq;
        g->time[g->n] = t;
        memcpy(g->payload[g->n], p, len);
        g->len[g->n] = len;
        g->n++;
    }
    if (rc < 0)
        fprintf(stderr, "reader: %s\n", err.msg);
    assert_int_equal(rc, 0);
    g->gone = na_journal_reader_gone(r);
    g->oldest = na_journal_reader_oldest(r);
    na_journal_reader_close(r);
}

/* Every record in g is the one append_range wrote for its seq. */
static void check_payloads(const struct got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        char buf[64];
        size_t len;
        payload_of(g->seq[i], buf, &len);
        assert_int_equal(g->len[i], len);
        assert_memory_equal(g->payload[i], buf, len);
        if (i)
            assert_true(g->seq[i] > g->seq[i - 1]);
    }
}

static size_t count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        if (l > s && strcmp(e->d_name + l - s, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static void seg_file(const char *dir, uint64_t first, char *out)
{
    snprintf(out, PATH_MAX, "%s/seg-%020llu.naj", dir, (unsigned long long)first);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void spit(const char *path, const uint8_t *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(p, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static bool report_has(const struct na_journal_report *rep, const char *needle)
{
    for (size_t i = 0; i < rep->n_msgs; i++)
        if (strstr(rep->msgs[i], needle))
            return true;
    return false;
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(na_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(na_crc32c_portable(0, "123456789", 9), 0xE3069283u);
    /* The CPU's instruction and the table agree at every length and
     * alignment, continued or not. */
    uint8_t buf[300];
    srand(7);
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rand();
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len + off <= sizeof(buf); len++) {
            uint32_t seed = (uint32_t)(len * 2654435761u);
            assert_int_equal(na_crc32c(seed, buf + off, len),
                             na_crc32c_portable(seed, buf + off, len));
        }
    assert_int_equal(na_crc32c(0, NULL, 0), 0);
    /* Continuing a CRC is the same as one pass. */
    assert_int_equal(na_crc32c(na_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    uint8_t zeros[32] = {0};
    assert_int_equal(na_crc32c(0, zeros, 32), 0x8A9136AAu);
}

static void test_fsync_parse(void **state)
{
    (void)state;
    struct na_error err = {{0}};
    enum na_fsync p;
    assert_int_equal(na_fsync_parse("always", &p, &err), 0);
    assert_int_equal(p, NA_FSYNC_ALWAYS);
    assert_int_equal(na_fsync_parse("interval", &p, &err), 0);
    assert_int_equal(p, NA_FSYNC_INTERVAL);
    assert_int_equal(na_fsync_parse("never", &p, &err), 0);
    assert_int_equal(p, NA_FSYNC_NEVER);
    assert_string_equal(na_fsync_name(NA_FSYNC_INTERVAL), "interval");
    const char *bad[] = {"", "Always", "sometimes", "interval:100", "never ", NULL};
    for (size_t i = 0; i < 6; i++) {
        err.msg[0] = '\0';
        assert_int_equal(na_fsync_parse(bad[i], &p, &err), -1);
        assert_non_null(strstr(err.msg, "expected always, interval or never"));
    }
}

static void test_round_trip_and_reopen(void **state)
{
    (void)state;
    char dir[64];
    struct na_journal_report rep;
    struct na_journal_opts o;
    struct na_error err = {{0}};
    struct got g;

    tmp_dir(dir);
    na_journal_opts_default(&o);
    o.fsync = NA_FSYNC_ALWAYS;
    struct na_journal *j = open_journal(dir, &o, &rep);
    assert_true(rep.new_epoch);
    assert_false(na_journal_report_damaged(&rep));
    assert_int_equal(rep.last_seq, 0);
    uint64_t epoch = na_journal_epoch(j);
    assert_true(epoch != 0);
    assert_int_equal(na_journal_first_seq(j), 1);
    append_range(j, 1, 10, 1720000000000);
    assert_int_equal(na_journal_last_seq(j), 10);
    read_all(j, 0, &g);
    assert_int_equal(g.n, 10);
    assert_false(g.gone);
    assert_int_equal(g.seq[0], 1);
    assert_int_equal(g.time[9], 1720000000010);
    check_payloads(&g);
    assert_int_equal(na_journal_close(j, &err), 0);

    j = open_journal(dir, &o, &rep);
    assert_false(rep.new_epoch);
    assert_false(na_journal_report_damaged(&rep));
    assert_int_equal(rep.epoch, epoch);
    assert_int_equal(na_journal_epoch(j), epoch);
    assert_int_equal(rep.last_seq, 10);
    assert_int_equal(rep.first_seq, 1);
    assert_int_equal(rep.records, 10);
    assert_int_equal(rep.segments, 1);
    /* Numbering continues; going back or repeating fails. */
    assert_int_equal(na_journal_append(j, 10, 0, "x", 1, &err), -1);
    assert_non_null(strstr(err.msg, "not above the last seq 10"));
    assert_int_equal(na_journal_append(j, 3, 0, "x", 1, &err), -1);
    append_range(j, 11, 12, 1720000000000);
    assert_int_equal(na_journal_append(j, 12, 0, "x", 1, &err), -1);
    read_all(j, 0, &g);
    assert_int_equal(g.n, 12);
    check_payloads(&g);
    na_journal_close(j, NULL);

    /* A second writer on the same directory is refused while one is open. */
    j = open_journal(dir, &o, &rep);
    assert_null(na_journal_open(dir, &o, NULL, &err));
    assert_non_null(strstr(err.msg, "in use by another process"));
    na_journal_close(j, NULL);

    /* Without journal.meta the epoch comes back from the segment headers. */
    char meta[PATH_MAX];
    snprintf(meta, sizeof(meta), "%s/journal.meta", dir);
    assert_int_equal(unlink(meta), 0);
    j = open_journal(dir, &o, &rep);
    assert_int_equal(na_journal_epoch(j), epoch);
    assert_int_equal(na_journal_last_seq(j), 12);
    assert_true(report_has(&rep, "recovered from the segments"));
    na_journal_close(j, NULL);

    /* An emptied directory starts over with a new epoch. */
    tu_rm_dir(dir);
    j = open_journal(dir, &o, &rep);
    assert_true(rep.new_epoch);
    assert_true(na_journal_epoch(j) != epoch);
    assert_int_equal(na_journal_last_seq(j), 0);
    na_journal_close(j, NULL);
    tu_rm_dir(dir);
}

static void test_rotation_and_size_retention(void **state)
{
    (void)state;
    char dir[64];
    struct na_journal_report rep;
    struct na_journal_opts o;
    struct got g;

    tmp_dir(dir);
    na_journal_opts_default(&o);
    o.fsync = NA_FSYNC_NEVER;
    o.segment_bytes = 100; /* a 32-byte header and about two records */
    o.max_bytes = 0;
    struct na_journal *j = open_journal(dir, &o, &rep);
    append_range(j, 1, 20, now_ms());
    assert_true(count_files(dir, ".naj") >= 8);
    read_all(j, 0, &g);
    assert_int_equal(g.n, 20);
    check_payloads(&g);
    na_journal_close(j, NULL);

    /* Capped at 300 bytes: the oldest segments go, the newest stays. */
    o.max_bytes = 300;
    j = open_journal(dir, &o, &rep);
    assert_true(na_journal_size_bytes(j) <= 300);
    uint64_t first = na_journal_first_seq(j);
    assert_true(first > 1);
    append_range(j, 21, 40, now_ms());
    assert_true(na_journal_size_bytes(j) <= 300);
    assert_true(na_journal_first_seq(j) > first);
    read_all(j, 0, &g);
    assert_true(g.gone);
    assert_int_equal(g.oldest, na_journal_first_seq(j));
    assert_int_equal(g.seq[0], g.oldest);
    assert_int_equal(g.seq[g.n - 1], 40);
    assert_int_equal(g.n, 40 - g.oldest + 1);
    check_payloads(&g);
    /* Asking from within what is kept is not "gone". */
    read_all(j, g.oldest - 1, &g);
    assert_false(g.gone);
    na_journal_close(j, NULL);

    /* A tiny cap still keeps the newest segment and so the last seq. */
    o.max_bytes = 1;
    j = open_journal(dir, &o, &rep);
    assert_int_equal(count_files(dir, ".naj"), 1);
    assert_int_equal(na_journal_last_seq(j), 40);
    na_journal_close(j, NULL);
    tu_rm_dir(dir);
}

static void test_age_retention(void **state)
{
    (void)state;
    char dir[64];
    struct na_journal_report rep;
    struct na_journal_opts o;
    struct got g;
    int64_t day = 24 * 3600 * 1000LL, now = now_ms();

    tmp_dir(dir);
    na_journal_opts_default(&o);
    o.fsync = NA_FSYNC_NEVER;
    o.segment_bytes = 100;
    o.max_age_ms = day;
    struct na_journal *j = open_journal(dir, &o, &rep);
    append_range(j, 1, 6, now - 10 * day); /* several old segments */
    /* All are too old, but the newest is never deleted. */
    assert_int_equal(count_files(dir, ".naj"), 1);
    assert_int_equal(na_journal_last_seq(j), 6);
    append_range(j, 7, 10, now);
    assert_int_equal(na_journal_first_seq(j), 7);
    read_all(j, 0, &g);
    assert_true(g.gone);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.seq[0], 7);
    /* A timer can age out an idle journal as well. */
    struct na_error err = {{0}};
    assert_int_equal(na_journal_retain(j, now + 30 * day, &err), 0);
    assert_int_equal(count_files(dir, ".naj"), 1);
    assert_int_equal(na_journal_last_seq(j), 10);
    na_journal_close(j, NULL);
    tu_rm_dir(dir);
}

/* The newest segment cut at every length: the journal opens, says what it
 * cut, keeps every whole record before the cut and takes new ones. */
static void test_truncate_every_offset(void **state)
{
    (void)state;
    char dir[64], seg[PATH_MAX], meta[PATH_MAX];
    struct na_journal_report rep;
    struct na_journal_opts o;
    struct got g;
    size_t seg_len, meta_len, ends[6];

    tmp_dir(dir);
    na_journal_opts_default(&o);
    o.fsync = NA_FSYNC_NEVER;
    struct na_journal *j = open_journal(dir, &o, &rep);
    uint64_t epoch = na_journal_epoch(j);
    append_range(j, 1, 6, 1720000000000);
    na_journal_close(j, NULL);
    seg_file(dir, 1, seg);
    snprintf(meta, sizeof(meta), "%s/journal.meta", dir);
    uint8_t *full = slurp(seg, &seg_len), *meta_bytes = slurp(meta, &meta_len);
    size_t off = NA_JOURNAL_HEADER_SIZE;
    for (uint64_t s = 1; s <= 6; s++) {
        char buf[64];
        size_t len;
        payload_of(s, buf, &len);
        off += NA_JOURNAL_RECORD_HEADER + len;
        ends[s - 1] = off;
    }
    assert_int_equal(off, seg_len);

    for (size_t cut = 0; cut <= seg_len; cut++) {
        tu_rm_dir(dir);
        assert_int_equal(mkdir(dir, 0700), 0);
        spit(meta, meta_bytes, meta_len);
        spit(seg, full, cut);
        size_t whole = 0;
        while (whole < 6 && ends[whole] <= cut)
            whole++;
        size_t good_end = whole ? ends[whole - 1] : NA_JOURNAL_HEADER_SIZE;

        j = open_journal(dir, &o, &rep);
        assert_int_equal(na_journal_epoch(j), epoch);
        /* Seqs 1-6 were handed out: whatever was cut, none is used again. */
        assert_int_equal(rep.last_seq, 6);
        assert_int_equal(rep.seqs_skipped, 6 - whole);
        if (whole < 6)
            assert_true(report_has(&rep, "numbering continues after seq 6"));
        assert_int_equal(rep.records, whole);
        if (cut < NA_JOURNAL_HEADER_SIZE) {
            assert_int_equal(rep.bytes_truncated, cut);
            if (cut)
                assert_true(report_has(&rep, "incomplete header"));
        } else {
            assert_int_equal(rep.bytes_truncated, cut - good_end);
            if (cut != good_end)
                assert_true(report_has(&rep, "torn tail"));
            else
                assert_int_equal(rep.n_msgs, whole < 6);
        }
        assert_int_equal(rep.segments_damaged, 0);
        read_all(j, 0, &g);
        assert_int_equal(g.n, whole);
        check_payloads(&g);
        assert_int_not_equal(na_journal_append(j, 6, 1720000000000, "x", 1, NULL), 0);
        append_range(j, 7, 8, 1720000000000);
        na_journal_close(j, NULL);

        j = open_journal(dir, &o, &rep);
        assert_false(na_journal_report_damaged(&rep));
        assert_int_equal(rep.last_seq, 8);
        read_all(j, 0, &g);
        assert_int_equal(g.n, whole + 2);
        check_payloads(&g);
        na_journal_close(j, NULL);
    }
    free(full);
    free(meta_bytes);
    tu_rm_dir(dir);
}

/* A process that dies without closing its journal (kill -9, a power cut
 * under fsync "always"): the next open numbers above every seq the dead
 * one reserved, so a seq a consumer holds never names a second alert,
 * even when the records that carried it are gone. A clean close gives the
 * unused reservation back. */
static void test_crash_goes_on_above_the_reservation(void **state)
{
    (void)state;
    char dir[64], seg[PATH_MAX];
    struct na_journal_report rep;
    struct na_journal_opts o;
    struct got g;

    tmp_dir(dir);
    na_journal_opts_default(&o);
    o.fsync = NA_FSYNC_ALWAYS;
    o.reserve_seqs = 4; /* reservations at 1, 5 and 9: up to 12 */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct na_journal *c = na_journal_open(dir, &o, NULL, NULL);
        struct na_error err = {{0}};
        for (uint64_t s = 1; c && s <= 10; s++) {
            char buf[64];
            size_t len;
            payload_of(s, buf, &len);
            if (na_journal_append(c, s, 1720000000000 + (int64_t)s, buf, len, &err) < 0 ||
                na_journal_flush(c, &err) < 0)
                _exit(2);
        }
        _exit(c ? 0 : 1); /* no close: a crash */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* And the last three records lost, cut on a record boundary: nothing
     * in the files says that they were ever there. */
    seg_file(dir, 1, seg);
    size_t seg_len, cut = NA_JOURNAL_HEADER_SIZE;
    uint8_t *full = slurp(seg, &seg_len);
    for (uint64_t s = 1; s <= 7; s++) {
        char buf[64];
        size_t len;
        payload_of(s, buf, &len);
        cut += NA_JOURNAL_RECORD_HEADER + len;
    }
    assert_true(cut < seg_len);
    spit(seg, full, cut);
    free(full);

    struct na_journal *j = open_journal(dir, &o, &rep);
    assert_int_equal(rep.records, 7);
    assert_int_equal(rep.last_seq, 12);
    assert_int_equal(rep.seqs_skipped, 5);
    assert_true(na_journal_report_damaged(&rep));
    assert_true(report_has(&rep, "seqs 8-12 were reserved"));
    assert_int_equal(na_journal_last_seq(j), 12);
    assert_int_not_equal(na_journal_append(j, 10, 1720000000000, "x", 1, NULL), 0);
    append_range(j, 13, 14, 1720000000000);
    assert_int_equal(na_journal_close(j, NULL), 0);

    /* Closed cleanly: the next run goes on from 14, with nothing to say. */
    j = open_journal(dir, &o, &rep);
    assert_int_equal(rep.last_seq, 14);
    assert_int_equal(rep.seqs_skipped, 0);
    assert_int_equal(rep.n_msgs, 0);
    read_all(j, 0, &g);
    assert_int_equal(g.n, 9);
    check_payloads(&g);
    append_range(j, 15, 15, 1720000000000);
    na_journal_close(j, NULL);
    tu_rm_dir(dir);
}

/* Three segments of three records each: 1-3, 4-6, 7-9. */
static struct na_journal *three_segments(char *dir, struct na_journal_opts *o)
{
    struct na_journal_report rep;
    tmp_dir(dir);
    na_journal_opts_default(o);
    o->fsync = NA_FSYNC_NEVER;
    o->segment_bytes = NA_JOURNAL_HEADER_SIZE + 3 * NA_JOURNAL_RECORD_HEADER + 30;
    o->max_age_ms = 0; /* the records are dated 2024 */
    struct na_journal *j = open_journal(dir, o, &rep);
    append_range(j, 1, 9, 1720000000000);
    assert_int_equal(count_files(dir, ".naj"), 3);
    return j;
}

static void flip(const char *path, size_t at)
{
    size_t len;
    uint8_t *p = slurp(path, &len);
    assert_true(at < len);
    p[at] ^= 0x40;
    spit(path, p, len);
    free(p);
}

static void test_flip_in_older_segment(void **state)
{
    (void)state;
    char dir[64], seg[PATH_MAX];
    struct na_journal_opts o;
    struct na_journal_report rep;
    struct got g;
    struct stat st;

    struct na_journal *j = three_segments(dir, &o);
    na_journal_close(j, NULL);
    seg_file(dir, 1, seg);
    assert_int_equal(stat(seg, &st), 0);
    /* A byte in the second record of the oldest segment (its seq field). */
    size_t rec2 = NA_JOURNAL_HEADER_SIZE + NA_JOURNAL_RECORD_HEADER + 9;
    flip(seg, rec2 + 10);

    j = open_journal(dir, &o, &rep);
    assert_int_equal(rep.segments_damaged, 1);
    assert_int_equal(rep.bytes_truncated, 0);
    assert_true(na_journal_report_damaged(&rep));
    assert_true(
        report_has(&rep, "seg-00000000000000000001.naj: damaged record at offset"));
    assert_true(report_has(&rep, "bad CRC"));
    assert_int_equal(rep.last_seq, 9);
    read_all(j, 0, &g);
    uint64_t want[] = {1, 4, 5, 6, 7, 8, 9};
    assert_int_equal(g.n, 7);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(g.seq[i], want[i]);
    check_payloads(&g);
    /* The damaged file is left as it was, for inspection. */
    struct stat st2;
    assert_int_equal(stat(seg, &st2), 0);
    assert_int_equal(st2.st_size, st.st_size);
    append_range(j, 10, 10, 1720000000000);
    na_journal_close(j, NULL);
    tu_rm_dir(dir);
}

static void test_flip_in_newest_segment(void **state)
{
    (void)state;
    char dir[64], seg[PATH_MAX];
    struct na_journal_opts o;
    struct na_journal_report rep;
    struct got g;

    struct na_journal *j = three_segments(dir, &o);
    na_journal_close(j, NULL);
    seg_file(dir, 7, seg);
    /* Record 7's payload: records 8 and 9 still follow, so this is damage in
     * the middle, not a torn tail: nothing is cut, and numbering continues
     * after 9 even though 8 and 9 cannot be read. */
    flip(seg, NA_JOURNAL_HEADER_SIZE + NA_JOURNAL_RECORD_HEADER + 1);
    j = open_journal(dir, &o, &rep);
    assert_int_equal(rep.segments_damaged, 1);
    assert_int_equal(rep.bytes_truncated, 0);
    assert_true(report_has(&rep, "records up to seq 9"));
    assert_int_equal(na_journal_last_seq(j), 9);
    read_all(j, 0, &g);
    assert_int_equal(g.n, 6);
    assert_int_equal(g.seq[5], 6);
    append_range(j, 10, 11, 1720000000000);
    read_all(j, 6, &g);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.seq[0], 10);
    na_journal_close(j, NULL);
    assert_int_equal(count_files(dir, ".naj"), 4);

    /* No longer the newest, the damaged segment is still only skipped. */
    j = open_journal(dir, &o, &rep);
    assert_int_equal(rep.segments_damaged, 1);
    na_journal_close(j, NULL);
    tu_rm_dir(dir);
}

static void test_bad_header(void **state)
{
    (void)state;
    char dir[64], seg[PATH_MAX], aside[PATH_MAX + 16];
    struct na_journal_opts o;
    struct na_journal_report rep;
    struct got g;

    struct na_journal *j = three_segments(dir, &o);
    na_journal_close(j, NULL);
    seg_file(dir, 4, seg);
    flip(seg, 2); /* the magic */
    seg_file(dir, 1, seg);
    flip(seg, 20); /* the epoch: caught by the header CRC */
    j = open_journal(dir, &o, &rep);
    assert_int_equal(rep.segments_skipped, 2);
    assert_true(report_has(&rep, "bad magic; moved aside"));
    assert_true(report_has(&rep, "bad header CRC; moved aside"));
    snprintf(aside, sizeof(aside), "%s.corrupt", seg);
    assert_int_equal(access(aside, F_OK), 0);
    assert_int_equal(count_files(dir, ".naj"), 1);
    read_all(j, 0, &g);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.seq[0], 7);
    assert_int_equal(na_journal_last_seq(j), 9);
    na_journal_close(j, NULL);
    /* Moved aside, they are not reported again. */
    j = open_journal(dir, &o, &rep);
    assert_false(na_journal_report_damaged(&rep));
    na_journal_close(j, NULL);
    tu_rm_dir(dir);
}

static void test_reader_since_while_appending(void **state)
{
    (void)state;
    char dir[64];
    struct na_journal_opts o;
    struct na_error err = {{0}};
    uint64_t seq;
    int64_t t;
    const uint8_t *p;
    size_t len;

    struct na_journal *j = three_segments(dir, &o);
    struct got g;
    read_all(j, 5, &g);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.seq[0], 6);
    read_all(j, 9, &g);
    assert_int_equal(g.n, 0);
    assert_false(g.gone);
    read_all(j, 1000, &g);
    assert_int_equal(g.n, 0);

    /* A reader at the end sees what is flushed later, across rotation, and
     * not what is only buffered. */
    struct na_journal_reader *r = na_journal_reader_open(j, 8, &err);
    assert_non_null(r);
    assert_int_equal(na_journal_reader_next(r, &seq, &t, &p, &len, &err), 1);
    assert_int_equal(seq, 9);
    assert_int_equal(na_journal_reader_next(r, &seq, &t, &p, &len, &err), 0);
    assert_int_equal(na_journal_append(j, 10, 5, "ten", 3, &err), 0);
    assert_int_equal(na_journal_reader_next(r, &seq, &t, &p, &len, &err), 0);
    assert_int_equal(na_journal_flush(j, &err), 0);
    assert_int_equal(na_journal_reader_next(r, &seq, &t, &p, &len, &err), 1);
    assert_int_equal(seq, 10);
    assert_int_equal(t, 5);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "ten", 3);
    append_range(j, 11, 20, 0);
    for (uint64_t want = 11; want <= 20; want++) {
        assert_int_equal(na_journal_reader_next(r, &seq, &t, &p, &len, &err), 1);
        assert_int_equal(seq, want);
    }
    assert_int_equal(na_journal_reader_next(r, &seq, &t, &p, &len, &err), 0);
    assert_false(na_journal_reader_gone(r));
    na_journal_reader_close(r);

    /* Retention deleting the segment a reader is in is reported as gone. */
    r = na_journal_reader_open(j, 0, &err);
    assert_int_equal(na_journal_reader_next(r, &seq, &t, &p, &len, &err), 1);
    assert_int_equal(seq, 1);
    na_journal_set_retention(j, 1, 0);
    append_range(j, 21, 21, 0);
    assert_int_equal(na_journal_reader_next(r, &seq, &t, &p, &len, &err), 1);
    assert_true(na_journal_reader_gone(r));
    assert_int_equal(seq, na_journal_first_seq(j));
    na_journal_reader_close(r);
    na_journal_close(j, NULL);
    tu_rm_dir(dir);
}

static void test_read_only(void **state)
{
    (void)state;
    char dir[64], seg[PATH_MAX];
    struct na_journal_opts o, ro;
    struct na_journal_report rep;
    struct na_error err = {{0}};
    struct got g;
    struct stat st;

    struct na_journal *j = three_segments(dir, &o);
    na_journal_close(j, NULL);
    seg_file(dir, 7, seg);
    assert_int_equal(truncate(seg, 100), 0);
    na_journal_opts_default(&ro);
    ro.read_only = true;

    /* The directory: the torn tail is reported, not cut. */
    j = open_journal(dir, &ro, &rep);
    assert_true(report_has(&rep, "not cut"));
    assert_true(rep.bytes_truncated > 0);
    assert_int_equal(na_journal_append(j, 100, 0, "x", 1, &err), -1);
    read_all(j, 0, &g);
    assert_int_equal(g.n, 8);
    na_journal_close(j, NULL);
    assert_int_equal(stat(seg, &st), 0);
    assert_int_equal(st.st_size, 100);

    /* A single segment file. */
    j = open_journal(seg, &ro, &rep);
    read_all(j, 0, &g);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.seq[0], 7);
    na_journal_close(j, NULL);

    /* A missing journal is an error when reading, not created. */
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/nope", dir);
    assert_null(na_journal_open(missing, &ro, &rep, &err));
    assert_int_equal(access(missing, F_OK), -1);
    tu_rm_dir(dir);
}

/* The interval policy syncs on the journal's own thread: the syncs happen
 * (counted), rotations in between lose nothing, and close waits for the
 * one in flight. */
static void test_background_sync(void **state)
{
    (void)state;
    char dir[64];
    struct na_journal_report rep;
    struct na_journal_opts o;
    struct na_error err = {{0}};
    struct got g;

    tmp_dir(dir);
    na_journal_opts_default(&o);
    o.fsync = NA_FSYNC_INTERVAL;
    o.fsync_interval_ms = 1;
    o.segment_bytes = 200;
    o.max_bytes = 0;
    struct na_journal *j = open_journal(dir, &o, &rep);
    assert_int_equal(na_journal_background_syncs(j), 0);
    /* Nothing written: nothing to sync, no thread. */
    assert_int_equal(na_journal_sync_start(j, &err), 0);
    assert_int_equal(na_journal_background_syncs(j), 0);
    for (uint64_t s = 1; s <= 60; s++) {
        append_range(j, s, s, now_ms());
        struct timespec pause = {0, 2 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    assert_true(count_files(dir, ".naj") >= 10);
    /* The syncs run on their own; wait a while for them. */
    for (int i = 0; i < 500 && na_journal_background_syncs(j) == 0; i++) {
        struct timespec pause = {0, 2 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    assert_true(na_journal_background_syncs(j) > 0);
    append_range(j, 61, 64, now_ms());
    assert_int_equal(na_journal_sync_start(j, &err), 0);
    assert_int_equal(na_journal_close(j, &err), 0);

    j = open_journal(dir, &o, &rep);
    read_all(j, 0, &g);
    assert_int_equal(g.n, 64);
    assert_int_equal(g.seq[63], 64);
    check_payloads(&g);
    assert_false(na_journal_report_damaged(&rep));
    na_journal_close(j, NULL);
    tu_rm_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_fsync_parse),
        cmocka_unit_test(test_round_trip_and_reopen),
        cmocka_unit_test(test_rotation_and_size_retention),
        cmocka_unit_test(test_age_retention),
        cmocka_unit_test(test_truncate_every_offset),
        cmocka_unit_test(test_crash_goes_on_above_the_reservation),
        cmocka_unit_test(test_flip_in_older_segment),
        cmocka_unit_test(test_flip_in_newest_segment),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_reader_since_while_appending),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_background_sync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
