/* libFuzzer target for the journal's scan and reader: the input becomes the
 * only segment file of a journal directory, which is then opened writable
 * (so the torn-tail repair runs), read to the end, appended to and read
 * again; and the same bytes as a quarantine file, read to the end. Any
 * input must give a clean open, never a crash or a hang. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "newsalert/journal.h"
#include "newsalert/quarantine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
}

static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char p[4200];
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
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
    static char dir[64];
    char seg[128], qdir[128], qfile[160];
    struct na_journal_opts o;
    struct na_journal_report rep;
    struct na_error err;

    if (dir[0] == '\0') {
        /* tmpfs when there is one: the target runs thousands of times. */
        strcpy(dir, "/dev/shm/na_fuzz_journalXXXXXX");
        if (mkdtemp(dir) == NULL) {
            strcpy(dir, "/tmp/na_fuzz_journalXXXXXX");
            if (mkdtemp(dir) == NULL)
                abort();
        }
    }
    empty_dir(dir);
    snprintf(seg, sizeof(seg), "%s/seg-%020d.naj", dir, 1);
    write_file(seg, data, size);

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
    snprintf(qdir, sizeof(qdir), "%s/q", dir);
    mkdir(qdir, 0700);
    empty_dir(qdir);
    snprintf(qfile, sizeof(qfile), "%s/q-%020d.naq", qdir, 1);
    write_file(qfile, data, size);
    struct na_quarantine_reader *qr = na_quarantine_reader_open(qdir, &err);
    struct na_quarantine_entry e;
    if (qr == NULL)
        abort();
    while (na_quarantine_reader_next(qr, &e, &err) != 0)
        ;
    na_quarantine_reader_close(qr);
    empty_dir(qdir);
    rmdir(qdir);
    return 0;
}
