/* The journal's internals shared by lib/journal.c (open, scan, append,
 * retention) and lib/journal_reader.c (reading). Private to lib/. */
#ifndef NA_LIB_JOURNAL_INT_H
#define NA_LIB_JOURNAL_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "newsalert/journal.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* One segment file, as the scan found it and appends extended it. */
struct jseg {
    uint64_t first_seq;  /* from the name and the header */
    uint64_t size;       /* bytes in the file */
    uint64_t valid_end;  /* readers stop here: the end, or the first damage */
    uint64_t first_rec;  /* seq of the first readable record (0: none) */
    uint64_t last_rec;   /* seq of the last readable record (0: none) */
    uint64_t records;    /* readable records */
    int64_t max_time_ms; /* newest record time, for retention by age */
    bool damaged;        /* a damaged middle: never appended to */
};

struct na_journal {
    char dir[PATH_MAX - 64]; /* room for "/seg-<20 digits>.naj" */
    char single[PATH_MAX];   /* read-only view of one segment file, else "" */
    struct na_journal_opts o;
    int dir_fd; /* locked, for a writable journal; else -1 */
    uint64_t epoch;
    uint64_t floor_seq; /* first seq of the newest segment ever started */
    /* The high-water mark: no seq above it has been appended. Durable in
     * journal.meta before any appended seq passes it. */
    uint64_t reserved_seq;

    struct jseg *segs; /* oldest first */
    size_t n_segs, cap_segs;
    int fd; /* the segment being written, always segs[n_segs - 1]; or -1 */

    uint8_t *wbuf; /* records appended but not yet written */
    size_t wlen, wcap;
    uint64_t wb_first, wb_last; /* seqs of the first and last buffered record */
    int64_t wb_max_time;
    uint64_t wb_count;

    uint64_t last_seq;    /* highest appended, or found at open */
    uint64_t written_seq; /* highest in a file */
    bool dirty;           /* written since the last fdatasync */
    int64_t last_sync_ms; /* CLOCK_MONOTONIC */
    /* The interval policy's syncs run on a thread of their own (journal.c);
     * NULL until the first one. */
    struct journal_syncer *syncer;
};

/* Writes the path of segment s of j into buf (PATH_MAX bytes). */
void journal_seg_path(const struct na_journal *j, const struct jseg *s, char *buf);

/* journal.c */
int64_t journal_clock_ms(clockid_t id);
/* Adds a segment of first_seq at the end of j->segs; NULL when out of
 * memory. */
struct jseg *journal_seg_push(struct na_journal *j, uint64_t first_seq);

/* journal_scan.c */
/* Lists, checks and repairs the segments of j (located, not yet scanned),
 * decides the epoch and the last seq, and describes it all in rep. */
int journal_scan(struct na_journal *j, struct na_journal_report *rep,
                 struct na_error *err);
/* Replaces journal.meta (the epoch and floor_seq) atomically. */
int journal_meta_write(struct na_journal *j, struct na_error *err);
/* Fills h[NA_JOURNAL_HEADER_SIZE] with a segment header. */
void journal_seg_header(uint8_t *h, uint64_t epoch, uint64_t first_seq);

#endif
