/* The journal's internals shared by lib/journal.c (open, scan, append,
 * retention) and lib/journal_reader.c (reading). Private to lib/. */
#ifndef NA_LIB_JOURNAL_INT_H
#define NA_LIB_JOURNAL_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

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
};

/* Writes the path of segment s of j into buf (PATH_MAX bytes). */
void journal_seg_path(const struct na_journal *j, const struct jseg *s, char *buf);

#endif
