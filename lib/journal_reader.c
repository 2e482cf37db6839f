/* Reading the alert journal: records after a seq, oldest first, across
 * segments, while the same process may be appending. The reader remembers
 * its segment by first seq, not by position, so that rotation and retention
 * between two calls cannot make it read the wrong file. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal_int.h"
#include "le.h"
#include "newsalert/crc32c.h"

struct na_journal_reader {
    struct na_journal *j;
    uint64_t last; /* the last seq returned, or since_seq */
    uint64_t oldest;
    bool gone;
    int fd;             /* the segment being read, or -1 */
    uint64_t seg_first; /* its first seq */
    uint64_t off;       /* where its next record starts */
    uint8_t *buf;
    size_t cap;
};

struct na_journal_reader *na_journal_reader_open(struct na_journal *j, uint64_t since_seq,
                                                 struct na_error *err)
{
    struct na_journal_reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    r->j = j;
    r->last = since_seq;
    r->fd = -1;
    r->oldest = na_journal_first_seq(j);
    r->gone = since_seq < UINT64_MAX && since_seq + 1 < r->oldest;
    return r;
}

bool na_journal_reader_gone(const struct na_journal_reader *r)
{
    return r->gone;
}

uint64_t na_journal_reader_oldest(const struct na_journal_reader *r)
{
    return r->oldest;
}

static void reader_close_seg(struct na_journal_reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

static int reader_open_seg(struct na_journal_reader *r, size_t i, struct na_error *err)
{
    char path[PATH_MAX];
    journal_seg_path(r->j, &r->j->segs[i], path);
    reader_close_seg(r);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return na_error_set(err, "%s: %s", path, strerror(errno));
    r->seg_first = r->j->segs[i].first_seq;
    r->off = NA_JOURNAL_HEADER_SIZE;
    return 0;
}

/* The index of the segment with first seq `first`, or -1 when it is gone. */
static long seg_find(const struct na_journal *j, uint64_t first)
{
    for (size_t i = 0; i < j->n_segs; i++)
        if (j->segs[i].first_seq == first)
            return (long)i;
    return -1;
}

/* The segment where records after r->last start: the last one whose first
 * seq is at most last + 1 (earlier ones hold only older records). */
static size_t seg_locate(const struct na_journal *j, uint64_t last)
{
    size_t at = 0;
    for (size_t i = 0; i < j->n_segs; i++)
        if (j->segs[i].first_seq <= last + 1)
            at = i;
    return at;
}

static int read_exact(int fd, uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        p += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return 0;
}

int na_journal_reader_next(struct na_journal_reader *r, uint64_t *seq, int64_t *time_ms,
                           const uint8_t **payload, size_t *len, struct na_error *err)
{
    const struct na_journal *j = r->j;
    uint8_t h[NA_JOURNAL_RECORD_HEADER];

    for (;;) {
        if (j->n_segs == 0)
            return 0;
        long i = r->fd >= 0 ? seg_find(j, r->seg_first) : -1;
        if (i < 0) {
            /* Not started, or retention deleted the segment under us. */
            if (r->fd >= 0 && r->last + 1 < na_journal_first_seq(j))
                r->gone = true;
            i = (long)seg_locate(j, r->last);
            if (reader_open_seg(r, (size_t)i, err) < 0)
                return -1;
        }
        const struct jseg *s = &j->segs[i];
        if (r->off + NA_JOURNAL_RECORD_HEADER > s->valid_end) {
            if ((size_t)i + 1 == j->n_segs)
                return 0;
            if (reader_open_seg(r, (size_t)i + 1, err) < 0)
                return -1;
            continue;
        }
        if (read_exact(r->fd, h, sizeof(h), r->off) < 0)
            return na_error_set(
                err, "journal segment %" PRIu64 ": cannot read offset %" PRIu64,
                s->first_seq, r->off);
        uint32_t rlen = le_get32(h);
        uint64_t at = r->off, rseq = le_get64(h + 8);
        if (rlen < 16 || r->off + 8 + rlen > s->valid_end) {
            r->off = s->valid_end;
            return na_error_set(
                err, "journal segment %" PRIu64 ": damaged record at offset %" PRIu64,
                s->first_seq, at);
        }
        r->off += 8 + (uint64_t)rlen;
        if (rseq <= r->last)
            continue; /* skipped by its header alone */
        size_t plen = rlen - 16;
        if (r->cap < plen + 1) {
            uint8_t *p = realloc(r->buf, plen + 1);
            if (p == NULL)
                return na_error_set(err, "out of memory");
            r->buf = p;
            r->cap = plen + 1;
        }
        if (plen && read_exact(r->fd, r->buf, plen, at + NA_JOURNAL_RECORD_HEADER) < 0)
            return na_error_set(
                err, "journal segment %" PRIu64 ": cannot read offset %" PRIu64,
                s->first_seq, at);
        uint32_t crc = na_crc32c(na_crc32c(0, h + 8, 16), r->buf, plen);
        if (crc != le_get32(h + 4)) {
            r->off = s->valid_end;
            return na_error_set(err,
                                "journal segment %" PRIu64 ": bad CRC at offset %" PRIu64
                                " (changed since it was scanned)",
                                s->first_seq, at);
        }
        r->last = rseq;
        *seq = rseq;
        *time_ms = (int64_t)le_get64(h + 16);
        *payload = r->buf;
        *len = plen;
        return 1;
    }
}

void na_journal_reader_close(struct na_journal_reader *r)
{
    if (r == NULL)
        return;
    reader_close_seg(r);
    free(r->buf);
    free(r);
}
