/* Recorded feeds: the file format that `newsalert record` writes and
 * `newsalert replay` plays. Layout (all integers little-endian):
 *
 *   header  "NAFEED" 0x00 0x00 | u16 version (1) | u16 reserved (0) | u32 reserved
 *   record  u32 length of what follows | u64 receive time, ns since the epoch
 *           | u16 frame count | frame count x (u32 length | bytes)
 *
 * A normal feed message has two frames, [topic, Article]; other shapes are
 * kept as they arrived, so malformed traffic can be recorded and replayed. */
#ifndef NEWSALERT_FEEDFILE_H
#define NEWSALERT_FEEDFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "newsalert/error.h"

#define NA_FEED_VERSION 1
#define NA_FEED_HEADER_SIZE 16
#define NA_FEED_MAX_FRAMES 64
#define NA_FEED_MAX_RECORD (64u << 20)

struct na_frame {
    const uint8_t *data;
    size_t len;
};

struct na_record {
    uint64_t time_ns;
    size_t n_frames;
    struct na_frame frames[NA_FEED_MAX_FRAMES];
};

struct na_feed_writer;

/* Creates (truncates) path and writes the header; "-" is stdout. */
struct na_feed_writer *na_feed_writer_open(const char *path, struct na_error *err);
int na_feed_writer_append(struct na_feed_writer *w, uint64_t time_ns,
                          const struct na_frame *frames, size_t n_frames,
                          struct na_error *err);
/* Flushes and closes; returns -1 if any write failed. Accepts NULL. */
int na_feed_writer_close(struct na_feed_writer *w, struct na_error *err);

struct na_feed_reader;

/* Opens path ("-" is stdin) and checks magic and version. */
struct na_feed_reader *na_feed_reader_open(const char *path, struct na_error *err);
/* Reads from memory (borrowed for the reader's life); for tests and fuzzers. */
struct na_feed_reader *na_feed_reader_open_mem(const uint8_t *buf, size_t len,
                                               struct na_error *err);
/* 1: *rec holds the next record (its frames point into the reader and stay
 * valid until the next call); 0: clean end of file; -1: a damaged or
 * truncated record, described in err, after which the reader stays at end. */
int na_feed_reader_next(struct na_feed_reader *r, struct na_record *rec,
                        struct na_error *err);
/* After a -1 from na_feed_reader_next: true when the file simply ended
 * inside its last record (a recorder stopped mid-write), which callers report
 * and ignore; false for damage, which is an error. */
bool na_feed_reader_truncated(const struct na_feed_reader *r);
/* Bytes consumed so far and the file's size (0 when unknown, e.g. a pipe). */
uint64_t na_feed_reader_offset(const struct na_feed_reader *r);
uint64_t na_feed_reader_size(const struct na_feed_reader *r);
void na_feed_reader_close(struct na_feed_reader *r);

/* True when buf starts with a feed header (to tell .feed from .jsonl). */
bool na_feed_is_feed(const uint8_t *buf, size_t len);

#endif
