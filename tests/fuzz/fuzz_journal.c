/* libFuzzer target for the journal's scan and reader: the input becomes the
 * only segment file of a journal directory, which is then opened writable
 * (so the torn-tail repair runs), read to the end, appended to and read
 * again; and the same bytes as a quarantine file, read to the end. Any
 * input must give a clean open, never a crash or a hang. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "newsalert/journal.h"
#include "newsalert/quarantine.h"

/* An empty directory called name in the target's temporary directory
 * (whatever an earlier input left there is removed); its path goes to out
 * (PATH_MAX bytes). */
static void fresh_dir(const char *name, char *out)
{
    snprintf(out, PATH_MAX, "%s/%s", fuzz_tmpdir(), name);
    fuzz_rm_tree(out);
    if (mkdir(out, 0700) < 0)
        abort();
}

static void read_to_end(struct na_journal *j, uint64_t since)
{
    struct na_error err;
    struct na_journal_reader *r = na_journal_reader_open(j, since, &err);
    uint64_t seq, prev = since;
    int64_t t;
    const uint8_t *p;
    size_t len;
    if (r == NULL)
        abort();
    while (na_journal_reader_next(r, &seq, &t, &p, &len, &err) == 1) {
        if (seq <= prev) /* records come out in order, after since */
            abort();
        prev = seq;
    }
    na_journal_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[PATH_MAX], qdir[PATH_MAX];
    struct na_journal_opts o;
    struct na_journal_report rep;
    struct na_error err;

    fresh_dir("journal", dir);
    fuzz_write(dir, "seg-00000000000000000001.naj", data, size, NULL);

    na_journal_opts_default(&o);
    o.fsync = NA_FSYNC_NEVER;
    o.max_age_ms = 0;
    o.read_only = true;
    struct na_journal *j = na_journal_open(dir, &o, &rep, &err);
    if (j == NULL)
        abort(); /* the journal's own content never makes open fail */
    read_to_end(j, 0);
    na_journal_close(j, NULL);

    o.read_only = false;
    j = na_journal_open(dir, &o, &rep, &err);
    if (j == NULL)
        abort();
    read_to_end(j, 0);
    uint64_t last = na_journal_last_seq(j);
    if (last < UINT64_MAX - 1) {
        if (na_journal_append(j, last + 1, 0, "x", 1, &err) < 0 ||
            na_journal_flush(j, &err) < 0)
            abort();
        read_to_end(j, last);
    }
    na_journal_close(j, NULL);

    /* The same bytes as a quarantine file. */
    fresh_dir("quarantine", qdir);
    fuzz_write(qdir, "q-00000000000000000001.naq", data, size, NULL);
    struct na_quarantine_reader *qr = na_quarantine_reader_open(qdir, &err);
    struct na_quarantine_entry e;
    if (qr == NULL)
        abort();
    while (na_quarantine_reader_next(qr, &e, &err) != 0)
        ;
    na_quarantine_reader_close(qr);
    return 0;
}
