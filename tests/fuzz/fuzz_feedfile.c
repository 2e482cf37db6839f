/* libFuzzer target: the recorded-feed reader on arbitrary bytes, reading
 * every record, once from memory and once from a file (the two ways in),
 * which must agree record for record. */
#include "fuzz.h"
#include "newsalert/feedfile.h"

static char path[PATH_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(path, sizeof(path), "%s/input.feed", fuzz_tmpdir());
    return 0;
}

static void check_record(const struct na_record *rec, size_t size)
{
    size_t total = 0;
    FUZZ_CHECK(rec->n_frames >= 1 && rec->n_frames <= NA_FEED_MAX_FRAMES);
    for (size_t i = 0; i < rec->n_frames; i++) {
        FUZZ_CHECK(rec->frames[i].len <= size);
        total += rec->frames[i].len;
        if (rec->frames[i].len) /* touch both ends: ASan checks the span */
            FUZZ_CHECK(rec->frames[i].data[0] +
                           rec->frames[i].data[rec->frames[i].len - 1] >=
                       0);
    }
    FUZZ_CHECK(total <= size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct na_error err = {{0}}, ferr = {{0}};
    struct na_record rec, frec;
    int rc, frc;

    fuzz_write(fuzz_tmpdir(), "input.feed", data, size, NULL);
    struct na_feed_reader *r = na_feed_reader_open_mem(data, size, &err);
    struct na_feed_reader *f = na_feed_reader_open(path, &ferr);
    FUZZ_CHECK((r == NULL) == (f == NULL));
    if (r == NULL) {
        FUZZ_CHECK(err.msg[0] != '\0' && ferr.msg[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(na_feed_reader_size(r) == size && na_feed_reader_size(f) == size);
    do {
        rc = na_feed_reader_next(r, &rec, &err);
        frc = na_feed_reader_next(f, &frec, &ferr);
        FUZZ_CHECK(rc == frc);
        FUZZ_CHECK(na_feed_reader_offset(r) <= size);
        FUZZ_CHECK(na_feed_reader_offset(r) == na_feed_reader_offset(f));
        if (rc == 1) {
            check_record(&rec, size);
            FUZZ_CHECK(rec.time_ns == frec.time_ns && rec.n_frames == frec.n_frames);
            for (size_t i = 0; i < rec.n_frames; i++)
                FUZZ_CHECK(
                    rec.frames[i].len == frec.frames[i].len &&
                    !memcmp(rec.frames[i].data, frec.frames[i].data, rec.frames[i].len));
        }
    } while (rc == 1);
    if (rc < 0)
        FUZZ_CHECK(err.msg[0] != '\0' && ferr.msg[0] != '\0');
    /* After the end or an error, the reader stays at the end. */
    FUZZ_CHECK(na_feed_reader_next(r, &rec, &err) == 0);
    FUZZ_CHECK(na_feed_reader_next(f, &frec, &ferr) == 0);
    na_feed_reader_close(r);
    na_feed_reader_close(f);
    return 0;
}
