/* The journal's open-time scan: journal.meta, segment headers, every
 * record's CRC and order; a torn tail of the newest segment is cut, damage
 * elsewhere is skipped and reported (see na_journal_open in journal.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "journal_int.h"
#include "le.h"
#include "newsalert/crc32c.h"

static const uint8_t seg_magic[8] = {'N', 'A', 'J', 'R', 'N', 'L', 0, 0};
static const uint8_t meta_magic[8] = {'N', 'A', 'J', 'M', 'E', 'T', 'A', 0};
#define META_NAME "journal.meta"
#define META_SIZE 40
#define META_VERSION 2 /* 1: 32 bytes, without the reserved seq */
#define META_V1_SIZE 32

static void note(struct na_journal_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(struct na_journal_report *r, const char *fmt, ...)
{
    va_list ap;
    if (r->n_msgs == NA_JOURNAL_REPORT_MSGS) {
        r->msgs_dropped++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(r->msgs[r->n_msgs++], sizeof(r->msgs[0]), fmt, ap);
    va_end(ap);
}

/* Creation time in ms in the high bits, so epochs grow across resets, and
 * 16 random bits, so two resets in one millisecond still differ. */
static uint64_t new_epoch(void)
{
    uint16_t rnd;
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
        rnd = (uint16_t)(journal_clock_ms(CLOCK_MONOTONIC) ^ getpid());
    return (uint64_t)journal_clock_ms(CLOCK_REALTIME) << 16 | rnd;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int sync_dir(struct na_journal *j, struct na_error *err)
{
    if (j->dir_fd >= 0 && fsync(j->dir_fd) < 0)
        return na_error_set(err, "%s: fsync: %s", j->dir, strerror(errno));
    return 0;
}

/* journal.meta holds the epoch and the first seq of the newest segment
 * started, so that neither is lost when segment files are: it is replaced
 * atomically (write, fsync, rename, fsync the directory; without the fsyncs
 * under the policy "never"). */
int journal_meta_write(struct na_journal *j, struct na_error *err)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    uint8_t m[META_SIZE] = {0};

    memcpy(m, meta_magic, 8);
    le_put16(m + 8, META_VERSION);
    le_put64(m + 16, j->epoch);
    le_put64(m + 24, j->floor_seq);
    le_put64(m + 32, j->reserved_seq);
    le_put32(m + 12, na_crc32c(0, m, META_SIZE));
    snprintf(tmp, sizeof(tmp), "%s/" META_NAME ".tmp", j->dir);
    snprintf(path, sizeof(path), "%s/" META_NAME, j->dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return na_error_set(err, "%s: %s", tmp, strerror(errno));
    ssize_t n = write(fd, m, sizeof(m));
    int e = errno;
    bool sync = j->o.fsync != NA_FSYNC_NEVER;
    if (n != (ssize_t)sizeof(m) || (sync && fsync(fd) < 0)) {
        if (n >= 0 && n != (ssize_t)sizeof(m))
            e = ENOSPC;
        else if (n == (ssize_t)sizeof(m))
            e = errno;
        close(fd);
        unlink(tmp);
        return na_error_set(err, "%s: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        e = errno;
        unlink(tmp);
        return na_error_set(err, "%s: %s", path, strerror(e));
    }
    return sync ? sync_dir(j, err) : 0;
}

/* 1: a valid meta file read; 0: missing or damaged (*why says which). */
static int meta_read(struct na_journal *j, uint64_t *epoch, uint64_t *floor_seq,
                     uint64_t *reserved_seq, const char **why)
{
    char path[PATH_MAX];
    uint8_t m[META_SIZE + 1];

    snprintf(path, sizeof(path), "%s/" META_NAME, j->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *why = "missing";
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, m, sizeof(m));
    close(fd);
    *why = "damaged";
    if (n < 16 || memcmp(m, meta_magic, 8) != 0)
        return 0;
    unsigned version = le_get16(m + 8);
    if (!(version == 1 && n == META_V1_SIZE) && !(version == META_VERSION && n == META_SIZE))
        return 0;
    uint32_t crc = le_get32(m + 12);
    le_put32(m + 12, 0);
    if (na_crc32c(0, m, (size_t)n) != crc)
        return 0;
    *epoch = le_get64(m + 16);
    *floor_seq = le_get64(m + 24);
    *reserved_seq = version == 1 ? 0 : le_get64(m + 32);
    return 1;
}

void journal_seg_header(uint8_t *h, uint64_t epoch, uint64_t first_seq)
{
    memset(h, 0, NA_JOURNAL_HEADER_SIZE);
    memcpy(h, seg_magic, 8);
    le_put16(h + 8, NA_JOURNAL_VERSION);
    le_put16(h + 10, NA_JOURNAL_HEADER_SIZE);
    le_put64(h + 16, epoch);
    le_put64(h + 24, first_seq);
    le_put32(h + 12, na_crc32c(0, h, NA_JOURNAL_HEADER_SIZE));
}

/* NULL when h is a valid header, else why not. */
static const char *seg_header_check(const uint8_t *h, uint64_t *epoch, uint64_t *first)
{
    uint8_t c[NA_JOURNAL_HEADER_SIZE];
    if (memcmp(h, seg_magic, 8) != 0)
        return "bad magic";
    if (le_get16(h + 8) != NA_JOURNAL_VERSION)
        return "unsupported version";
    if (le_get16(h + 10) != NA_JOURNAL_HEADER_SIZE)
        return "bad header size";
    memcpy(c, h, sizeof(c));
    le_put32(c + 12, 0);
    if (na_crc32c(0, c, sizeof(c)) != le_get32(h + 12))
        return "bad header CRC";
    *epoch = le_get64(h + 16);
    *first = le_get64(h + 24);
    return NULL;
}

/* Why the record at off of p[0..size) is not valid, or NULL; a valid one
 * gives its length (after the length field) and seq. */
static const char *record_check(const uint8_t *p, uint64_t size, uint64_t off,
                                uint64_t prev, uint64_t min_seq, uint32_t *len,
                                uint64_t *seq)
{
    if (size - off < 8)
        return "a partial record";
    *len = le_get32(p + off);
    if (*len < 16 || *len > 16 + NA_JOURNAL_MAX_PAYLOAD)
        return "a bad record length";
    if (*len > size - off - 8)
        return "a partial record";
    if (na_crc32c(0, p + off + 8, *len) != le_get32(p + off + 4))
        return "a bad CRC";
    *seq = le_get64(p + off + 8);
    if (*seq <= prev || *seq < min_seq)
        return "a sequence number out of order";
    return NULL;
}

/* Looks past damage at off for a valid record with seq > prev. The cheap
 * tests (a plausible length that fits, followed by the end or by another
 * plausible length) come before the CRC, so a long damaged stretch costs a
 * pass over its bytes, not a CRC per byte. Returns the highest seq in the
 * valid records found after off (following them across further damage),
 * 0 when there are none: the damage is then a torn tail. */
static uint64_t resync_max_seq(const uint8_t *p, uint64_t size, uint64_t off,
                               uint64_t prev)
{
    uint64_t max = 0;
    for (uint64_t at = off + 1; at + NA_JOURNAL_RECORD_HEADER <= size;) {
        uint32_t len = le_get32(p + at), next_len;
        uint64_t end = at + 8 + (uint64_t)len, seq;
        bool plausible = len >= 16 && len <= 16 + NA_JOURNAL_MAX_PAYLOAD && end <= size;
        if (plausible && end != size) {
            next_len = size - end >= 4 ? le_get32(p + end) : 16;
            plausible = next_len >= 16 && next_len <= 16 + NA_JOURNAL_MAX_PAYLOAD;
        }
        if (!plausible || record_check(p, size, at, prev, 0, &len, &seq) != NULL) {
            at++;
            continue;
        }
        /* Follow the chain of valid records from here. */
        while (at < size && record_check(p, size, at, prev, 0, &len, &seq) == NULL) {
            prev = max = seq;
            at += 8 + (uint64_t)len;
        }
    }
    return max;
}

/* Scans segment j->segs[i] (its header already checked): finds where the
 * readable records end, and cuts a torn tail of the newest segment. *max_seen
 * gets the highest seq found in the file, readable or past damage. */
static int seg_scan(struct na_journal *j, size_t i, bool newest, uint64_t *prev,
                    uint64_t *max_seen, struct na_journal_report *rep,
                    struct na_error *err)
{
    struct jseg *s = &j->segs[i];
    char path[PATH_MAX];
    struct stat st;

    journal_seg_path(j, s, path);
    bool repair = newest && !j->o.read_only;
    int fd = open(path, (repair ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        na_error_set(err, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    uint64_t size = (uint64_t)st.st_size;
    const uint8_t *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        na_error_set(err, "%s: mmap: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    uint64_t off = NA_JOURNAL_HEADER_SIZE, seq = 0;
    uint32_t len;
    const char *why = NULL;
    s->size = size;
    while (off < size) {
        why = record_check(p, size, off, *prev, s->first_seq, &len, &seq);
        if (why)
            break;
        if (s->first_rec == 0)
            s->first_rec = seq;
        s->last_rec = *prev = seq;
        int64_t t = (int64_t)le_get64(p + off + 16);
        if (s->records++ == 0 || s->max_time_ms < t)
            s->max_time_ms = t;
        off += 8 + (uint64_t)len;
    }
    s->valid_end = off;
    if (*prev > *max_seen)
        *max_seen = *prev;
    int rc = 0;
    if (why && newest) {
        uint64_t after = resync_max_seq(p, size, off, *prev);
        if (after == 0) {
            uint64_t cut = size - off;
            if (repair && ftruncate(fd, (off_t)off) < 0) {
                rc = na_error_set(err, "%s: ftruncate: %s", path, strerror(errno));
            } else if (repair) {
                if (j->o.fsync != NA_FSYNC_NEVER)
                    fdatasync(fd);
                s->size = off;
                rep->bytes_truncated += cut;
                note(rep,
                     "%s: torn tail at offset %" PRIu64 " (%s): cut %" PRIu64
                     " bytes; records up to seq %" PRIu64 " kept",
                     base_name(path), off, why, cut, *prev);
            } else {
                rep->bytes_truncated += cut;
                note(rep,
                     "%s: torn tail at offset %" PRIu64 " (%s): %" PRIu64
                     " bytes not read (read-only: not cut)",
                     base_name(path), off, why, cut);
            }
        } else {
            s->damaged = true;
            rep->segments_damaged++;
            if (after > *max_seen)
                *max_seen = after;
            note(rep,
                 "%s: damaged record at offset %" PRIu64 " (%s): the %" PRIu64
                 " bytes after it are skipped, though they hold records up to seq "
                 "%" PRIu64,
                 base_name(path), off, why, size - off, after);
        }
    } else if (why) {
        s->damaged = true;
        rep->segments_damaged++;
        note(rep,
             "%s: damaged record at offset %" PRIu64 " (%s): the %" PRIu64
             " bytes after it are skipped",
             base_name(path), off, why, size - off);
    }
    munmap((void *)p, size);
    close(fd);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the segment files of j->dir by first seq. */
static int list_segments(struct na_journal *j, uint64_t **out, size_t *n,
                         struct na_error *err)
{
    DIR *d = opendir(j->dir);
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    if (d == NULL)
        return na_error_set(err, "%s: %s", j->dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        uint64_t first;
        if (!na_parse_numbered_name(e->d_name, "seg-", ".naj", &first))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            uint64_t *p = realloc(*out, cap * sizeof(*p));
            if (p == NULL) {
                closedir(d);
                return na_error_set(err, "out of memory");
            }
            *out = p;
        }
        (*out)[(*n)++] = first;
    }
    closedir(d);
    if (*n)
        qsort(*out, *n, sizeof(**out), cmp_u64);
    return 0;
}

/* A segment whose header cannot be used: an incomplete newest one (a crash
 * while starting it) is removed; others are moved aside, never deleted. */
static void seg_reject(struct na_journal *j, const char *path, uint64_t size, bool newest,
                       const char *why, struct na_journal_report *rep)
{
    char aside[PATH_MAX + 16];
    if (j->o.read_only || j->single[0]) {
        rep->segments_skipped++;
        note(rep, "%s: %s; ignored", base_name(path), why);
        return;
    }
    if (newest && size < NA_JOURNAL_HEADER_SIZE && unlink(path) == 0) {
        rep->bytes_truncated += size;
        note(rep, "%s: incomplete header (%" PRIu64 " bytes); removed", base_name(path),
             size);
        return;
    }
    rep->segments_skipped++;
    snprintf(aside, sizeof(aside), "%s.corrupt", path);
    if (rename(path, aside) == 0)
        note(rep, "%s: %s; moved aside to %s", base_name(path), why, base_name(aside));
    else
        note(rep, "%s: %s; ignored (cannot move it aside: %s)", base_name(path), why,
             strerror(errno));
}

struct hdr_info {
    uint64_t first;
    uint64_t epoch;
    uint64_t size;
    const char *why; /* NULL: usable */
};

static int read_headers(struct na_journal *j, const uint64_t *firsts, size_t n,
                        struct hdr_info *h, struct na_error *err)
{
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        uint8_t buf[NA_JOURNAL_HEADER_SIZE];
        struct jseg tmp = {.first_seq = firsts[i]};
        struct stat st;
        uint64_t first = 0;

        journal_seg_path(j, &tmp, path);
        h[i].first = firsts[i];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
            na_error_set(err, "%s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        h[i].size = (uint64_t)st.st_size;
        ssize_t got = pread(fd, buf, sizeof(buf), 0);
        close(fd);
        if (got < 0)
            return na_error_set(err, "%s: %s", path, strerror(errno));
        if (got < (ssize_t)sizeof(buf)) {
            h[i].why = "incomplete header";
            continue;
        }
        h[i].why = seg_header_check(buf, &h[i].epoch, &first);
        if (h[i].why == NULL && j->single[0])
            h[i].first = first;
        else if (h[i].why == NULL && first != firsts[i])
            h[i].why = "header and file name disagree on the first seq";
    }
    return 0;
}

/* Decides the epoch: journal.meta's, else the newest segment header's, else
 * a new one (the journal starts over). Writes journal.meta when it changed. */
static int journal_epoch(struct na_journal *j, const struct hdr_info *h, size_t n,
                         struct na_journal_report *rep, struct na_error *err)
{
    const char *why = NULL;
    int newest = -1;
    for (size_t i = 0; i < n; i++)
        if (h[i].why == NULL)
            newest = (int)i;
    if (j->single[0]) {
        j->epoch = newest >= 0 ? h[newest].epoch : 0;
        return 0;
    }
    if (meta_read(j, &j->epoch, &j->floor_seq, &j->reserved_seq, &why))
        return 0;
    if (newest >= 0) {
        j->epoch = h[newest].epoch;
        j->floor_seq = h[newest].first;
        note(rep, META_NAME " %s: epoch %" PRIu64 " recovered from the segments", why,
             j->epoch);
    } else if (j->o.read_only) {
        return 0;
    } else {
        if (n > 0 || strcmp(why, "damaged") == 0)
            note(rep, "no usable segment and " META_NAME " %s: the journal starts over",
                 why);
        j->epoch = new_epoch();
        j->floor_seq = 0;
        rep->new_epoch = true;
    }
    return j->o.read_only ? 0 : journal_meta_write(j, err);
}

int journal_scan(struct na_journal *j, struct na_journal_report *rep,
                 struct na_error *err)
{
    uint64_t *firsts = NULL;
    size_t n = 0;
    int rc = -1;
    struct hdr_info *h = NULL;

    if (!j->o.read_only) { /* a meta file replacement cut short */
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof(tmp), "%s/" META_NAME ".tmp", j->dir);
        unlink(tmp);
    }
    if (j->single[0]) {
        firsts = malloc(sizeof(*firsts));
        if (firsts == NULL)
            return na_error_set(err, "out of memory");
        firsts[0] = 0;
        n = 1;
    } else if (list_segments(j, &firsts, &n, err) < 0) {
        return -1;
    }
    h = calloc(n ? n : 1, sizeof(*h));
    if (h == NULL) {
        na_error_set(err, "out of memory");
        goto out;
    }
    if (read_headers(j, firsts, n, h, err) < 0 || journal_epoch(j, h, n, rep, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (h[i].why == NULL && h[i].epoch != j->epoch)
            h[i].why = "a segment of another epoch";
    }
    for (size_t i = 0; i < n; i++) {
        struct jseg tmp = {.first_seq = h[i].first};
        char path[PATH_MAX];
        if (h[i].why) {
            journal_seg_path(j, &tmp, path);
            seg_reject(j, path, h[i].size, i == n - 1, h[i].why, rep);
            continue;
        }
        if (journal_seg_push(j, h[i].first) == NULL) {
            na_error_set(err, "out of memory");
            goto out;
        }
    }
    /* The newest usable segment is where a crash can leave a torn tail. */
    uint64_t prev = 0, max_seen = 0;
    for (size_t i = 0; i < j->n_segs; i++)
        if (seg_scan(j, i, i == j->n_segs - 1, &prev, &max_seen, rep, err) < 0)
            goto out;
    /* A newest segment with a header and nothing else is a crash between
     * starting it and writing to it: it holds nothing, so it goes. */
    if (!j->o.read_only && j->n_segs) {
        struct jseg *s = &j->segs[j->n_segs - 1];
        char path[PATH_MAX];
        if (s->size == NA_JOURNAL_HEADER_SIZE && !s->damaged) {
            journal_seg_path(j, s, path);
            if (unlink(path) < 0) {
                na_error_set(err, "%s: %s", path, strerror(errno));
                goto out;
            }
            j->n_segs--;
        }
    }
    j->last_seq = max_seen;
    if (j->floor_seq > 0 && j->floor_seq - 1 > j->last_seq) {
        note(rep,
             "the newest segment's records are lost: numbering continues after seq "
             "%" PRIu64,
             j->floor_seq - 1);
        j->last_seq = j->floor_seq - 1;
    }
    /* Seqs up to the high-water mark may have been handed out (and
     * published) before a crash cut them from the files: none is used
     * again. A clean close leaves the mark at the last seq. */
    if (!j->o.read_only && j->reserved_seq > j->last_seq) {
        rep->seqs_skipped = j->reserved_seq - j->last_seq;
        note(rep,
             "seqs %" PRIu64 "-%" PRIu64 " were reserved before the journal was last "
             "closed and are not in it (a crash, or lost records): numbering continues "
             "after seq %" PRIu64,
             j->last_seq + 1, j->reserved_seq, j->reserved_seq);
        j->last_seq = j->reserved_seq;
    }
    j->written_seq = j->last_seq;
    rc = 0;
out:
    free(h);
    free(firsts);
    return rc;
}
