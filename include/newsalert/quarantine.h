/* The quarantine: feed input that newsalertd rejected, kept on disk with
 * its reason and receive time so that it can be inspected (`newsalert
 * quarantine`) and re-packed into a feed for replay after a fix. A bounded
 * set of rotated files in one directory: the oldest file is deleted when the
 * total passes max_bytes. Each open starts a new file, so a file torn by a
 * crash is never appended to; readers report the damage and go on.
 *
 * File layout (little-endian; see docs/journal.md):
 *   header  "NAQUAR\0\0" | u16 version (1) | u16 reserved | u32 reserved
 *   entry   u32 length | u32 CRC-32C of the rest | u64 receive time, ns
 *           | u16 reason length | reason | u16 frame count
 *           | frame count x (u32 length | bytes)
 *
 * Use from the daemon: q = na_quarantine_open(dir, max, per_file, &err);
 * per rejected message na_quarantine_add(q, ...); per batch
 * na_quarantine_flush(q, &err); na_quarantine_close(q) at exit. */
#ifndef NEWSALERT_QUARANTINE_H
#define NEWSALERT_QUARANTINE_H

#include <stddef.h>
#include <stdint.h>

#include "newsalert/error.h"
#include "newsalert/feedfile.h"

#define NA_QUARANTINE_VERSION 1
#define NA_QUARANTINE_HEADER_SIZE 16
#define NA_QUARANTINE_MAX_REASON 255
#define NA_QUARANTINE_MAX_ENTRY NA_FEED_MAX_RECORD

struct na_quarantine;

/* Opens dir (created when missing) for adding; existing files are kept and
 * count toward max_bytes. file_bytes is where a file is rotated (at least
 * one entry per file). Returns NULL with err set on an OS error. The caller
 * owns the store (na_quarantine_close). */
struct na_quarantine *na_quarantine_open(const char *dir, uint64_t max_bytes,
                                         uint64_t file_bytes, struct na_error *err);

/* Buffers one entry: the message's frames (copied) as received, the reject
 * reason's name (e.g. na_reject_name()) and the receive time. Writes the
 * buffer once it holds 64 KiB. -1 when the entry is larger than max_bytes
 * or NA_QUARANTINE_MAX_ENTRY, has no or too many frames, or a write fails. */
int na_quarantine_add(struct na_quarantine *q, uint64_t time_ns, const char *reason,
                      const struct na_frame *frames, size_t n_frames,
                      struct na_error *err);

/* Writes what is buffered and deletes the oldest files while over
 * max_bytes (never the file being written). */
int na_quarantine_flush(struct na_quarantine *q, struct na_error *err);

/* Bytes in the quarantine's files, written or buffered. */
uint64_t na_quarantine_size_bytes(const struct na_quarantine *q);

/* Flushes and frees; returns -1 if that flush failed. Accepts NULL. */
int na_quarantine_close(struct na_quarantine *q, struct na_error *err);

struct na_quarantine_entry {
    uint64_t time_ns;
    char reason[NA_QUARANTINE_MAX_REASON + 1];
    size_t n_frames;
    struct na_frame frames[NA_FEED_MAX_FRAMES]; /* borrowed until the next call */
};

struct na_quarantine_reader;

/* Reads every file of dir, oldest first. The caller owns the reader. */
struct na_quarantine_reader *na_quarantine_reader_open(const char *dir,
                                                       struct na_error *err);

/* 1: *e holds the next entry; 0: the end; -1: a damaged or truncated file,
 * described in err: the rest of that file is skipped, and the next call
 * goes on with the next file. */
int na_quarantine_reader_next(struct na_quarantine_reader *r,
                              struct na_quarantine_entry *e, struct na_error *err);

/* Accepts NULL. */
void na_quarantine_reader_close(struct na_quarantine_reader *r);

#endif
