/* The alert journal: every alert, appended to disk before it is published,
 * so that sequence numbers survive a restart and late consumers can catch
 * up. A directory of segment files, each a header and then records framed
 * by length and CRC-32C; the layout is in docs/journal.md.
 *
 * Use from the daemon (one thread):
 *
 *   na_journal_opts_default(&o);  ... set o from the config ...
 *   j = na_journal_open(dir, &o, &report, &err);     log report.msgs
 *   seq = na_journal_last_seq(j);  epoch = na_journal_epoch(j);
 *   per alert:   na_journal_append(j, ++seq, now_ms, packed, len, &err)
 *   per batch:   na_journal_flush(j, &err)  -- then publish the batch
 *   on a timer:  if (na_journal_sync_due(j, mono_ms)) na_journal_sync_start(j, &err)
 *   catch-up:    r = na_journal_reader_open(j, since, &err);
 *                na_journal_reader_gone(r)?  na_journal_reader_next(r, ...)
 *
 * The journal never refuses to open because of its own content: damage is
 * cut off (a torn tail) or skipped (the middle of a segment), and described
 * in the report. Only operating-system errors (permissions, a full disk) and
 * a second process holding the same directory make na_journal_open fail. */
#ifndef NEWSALERT_JOURNAL_H
#define NEWSALERT_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/error.h"

#define NA_JOURNAL_VERSION 1
#define NA_JOURNAL_HEADER_SIZE 32
#define NA_JOURNAL_RECORD_HEADER 24 /* length, CRC, seq, time */
#define NA_JOURNAL_MAX_PAYLOAD (16u << 20)

/* When written records are forced to stable storage. */
enum na_fsync {
    NA_FSYNC_ALWAYS,   /* fdatasync in every flush: nothing flushed is lost */
    NA_FSYNC_INTERVAL, /* at most every interval_ms (power loss: up to that) */
    NA_FSYNC_NEVER,    /* the kernel decides (power loss: up to ~30 s) */
};

/* "always", "interval" or "never"; anything else is an error in err. */
int na_fsync_parse(const char *name, enum na_fsync *out, struct na_error *err);
const char *na_fsync_name(enum na_fsync policy);

struct na_journal_opts {
    uint64_t segment_bytes; /* start a new segment past this size (16 MiB) */
    uint64_t max_bytes;     /* delete oldest segments above this total (1 GiB; 0 off) */
    int64_t max_age_ms;     /* delete segments whose newest record is older (7 days;
                               0 off) */
    enum na_fsync fsync;    /* NA_FSYNC_INTERVAL */
    uint32_t fsync_interval_ms; /* 1000 */
    /* Seqs reserved at a time in journal.meta before any of them is
     * appended (65536): after a crash numbering goes on above the
     * reservation, so that no seq a consumer may hold is handed out again. */
    uint64_t reserve_seqs;
    bool read_only; /* inspect only: no repair, no lock, no append (the tool) */
};

/* Fills in the defaults noted above. */
void na_journal_opts_default(struct na_journal_opts *opts);

#define NA_JOURNAL_REPORT_MSGS 16

/* What na_journal_open found. msgs are complete sentences for the log, in
 * the order found; the daemon logs them as warnings when damaged() is true. */
struct na_journal_report {
    uint64_t epoch;
    uint64_t first_seq;        /* oldest readable record (0: none) */
    uint64_t last_seq;         /* highest seq ever written that survived (0: none) */
    uint64_t records;          /* readable records */
    uint64_t bytes;            /* total size of the segment files */
    uint64_t bytes_truncated;  /* cut from a torn tail or an incomplete segment */
    unsigned segments;         /* segment files in use */
    unsigned segments_damaged; /* with a damaged middle: read up to the damage */
    unsigned segments_skipped; /* unreadable header: ignored (moved to *.corrupt) */
    bool new_epoch;            /* the journal was created (or started over) now */
    uint64_t seqs_skipped;     /* reserved before a crash, not in the journal: never
                                  handed out again (last_seq counts them) */
    size_t n_msgs;
    size_t msgs_dropped; /* messages beyond NA_JOURNAL_REPORT_MSGS */
    char msgs[NA_JOURNAL_REPORT_MSGS][256];
};

/* True when the report describes anything cut, skipped or damaged. */
bool na_journal_report_damaged(const struct na_journal_report *report);

struct na_journal;

/* Opens (creating it when missing) the journal in dir, scans and repairs it,
 * applies retention and fills *report (which may be NULL). With
 * opts->read_only, path may also be a single segment file, nothing on disk
 * is changed, and appending fails. A writable journal holds an exclusive
 * lock on dir, so a second daemon on the same state fails here. Returns
 * NULL with err set on an operating-system error. The caller owns the
 * journal (na_journal_close). opts may be NULL for the defaults. */
struct na_journal *na_journal_open(const char *path, const struct na_journal_opts *opts,
                                   struct na_journal_report *report,
                                   struct na_error *err);

/* Flushes what is buffered (per the fsync policy, plus a final fdatasync
 * unless the policy is never), releases the lock and frees j. Returns -1 if
 * that last flush failed. Accepts NULL. */
int na_journal_close(struct na_journal *j, struct na_error *err);

/* Buffers one record; payload (opaque bytes, at most NA_JOURNAL_MAX_PAYLOAD)
 * is copied. seq must be above every seq appended or found before: -1
 * otherwise. Nothing reaches the file before na_journal_flush, except that
 * starting a new segment flushes the old one first. */
int na_journal_append(struct na_journal *j, uint64_t seq, int64_t time_ms,
                      const void *payload, size_t len, struct na_error *err);

/* Writes the buffered records (one write per segment), syncs per the
 * policy (under interval, in the background: na_journal_sync_start) and
 * applies retention. On failure the unwritten records are
 * dropped, the segment is cut back to its last whole record, last_seq goes
 * back to the last record written, and the journal stays usable. */
int na_journal_flush(struct na_journal *j, struct na_error *err);

/* Drops the records buffered and not written yet: last_seq goes back to
 * the last record written. After a failed append, so that the caller can
 * append the same seqs again once the journal is writable. */
void na_journal_discard(struct na_journal *j);

/* For NA_FSYNC_INTERVAL: true when written data is waiting for an fdatasync
 * and interval_ms have passed since the last one. now_ms is CLOCK_MONOTONIC
 * in milliseconds. Never true for the other policies. */
bool na_journal_sync_due(const struct na_journal *j, int64_t now_ms);
/* fdatasync of the segment being written, in the caller's thread. Also
 * returns a background sync's failure not yet reported. */
int na_journal_sync(struct na_journal *j, struct na_error *err);
/* The same on the journal's sync thread (started on first use), so that
 * the caller does not wait for the disk; what NA_FSYNC_INTERVAL uses. When
 * a sync is already in flight, nothing is started and the data stays
 * dirty. A failure comes back from the next flush or sync call, and close
 * waits for the sync in flight. */
int na_journal_sync_start(struct na_journal *j, struct na_error *err);
/* Background syncs completed so far. */
uint64_t na_journal_background_syncs(const struct na_journal *j);

/* Applies retention as of now_ms (wall clock, ms since the Unix epoch);
 * flush does this too. For a timer, so an idle journal still ages out. */
int na_journal_retain(struct na_journal *j, int64_t now_ms, struct na_error *err);

/* Changes max_bytes and max_age_ms (a reload); applied at the next flush. */
void na_journal_set_retention(struct na_journal *j, uint64_t max_bytes,
                              int64_t max_age_ms);

uint64_t na_journal_epoch(const struct na_journal *j);
/* Oldest readable record, or last_seq + 1 when there is none. */
uint64_t na_journal_first_seq(const struct na_journal *j);
/* The highest seq appended (flushed or not) or found at open; 0: none. */
uint64_t na_journal_last_seq(const struct na_journal *j);
/* Bytes in segment files, written or buffered. */
uint64_t na_journal_size_bytes(const struct na_journal *j);

struct na_journal_reader;

/* Iterates the records with seq > since_seq, oldest first, across segments,
 * stopping in each segment where the open-time scan found damage. It reads
 * what has been flushed, also while j is appended to; j must outlive the
 * reader. Returns NULL with err set when out of memory. The caller owns the
 * reader (na_journal_reader_close). */
struct na_journal_reader *na_journal_reader_open(struct na_journal *j, uint64_t since_seq,
                                                 struct na_error *err);

/* True when records after since_seq had already been deleted by retention
 * (since_seq + 1 < the oldest available), or were deleted while reading;
 * the reader then continues from the oldest available record. */
bool na_journal_reader_gone(const struct na_journal_reader *r);
/* The oldest seq available when the reader was opened (see first_seq). */
uint64_t na_journal_reader_oldest(const struct na_journal_reader *r);

/* 1: the next record (*payload is borrowed until the next call or close);
 * 0: no more records for now (call again after more are flushed);
 * -1: a read error or a record that no longer checks, described in err. */
int na_journal_reader_next(struct na_journal_reader *r, uint64_t *seq, int64_t *time_ms,
                           const uint8_t **payload, size_t *len, struct na_error *err);

/* Accepts NULL. */
void na_journal_reader_close(struct na_journal_reader *r);

#endif
