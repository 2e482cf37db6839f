/* The alert journal: opening, appending, syncing and retention. The
 * open-time scan and repair are in journal_scan.c, reading in
 * journal_reader.c; the format is in docs/journal.md. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal_int.h"
#include "fileio.h"
#include "le.h"
#include "newsalert/crc32c.h"

#define MIN_SEGMENT_BYTES 64

int na_fsync_parse(const char *name, enum na_fsync *out, struct na_error *err)
{
    static const char *names[] = {"always", "interval", "never"};
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *out = (enum na_fsync)i;
            return 0;
        }
    return na_error_set(err, "fsync policy '%s': expected always, interval or never",
                        name ? name : "");
}

const char *na_fsync_name(enum na_fsync policy)
{
    switch (policy) {
    case NA_FSYNC_ALWAYS:
        return "always";
    case NA_FSYNC_INTERVAL:
        return "interval";
    case NA_FSYNC_NEVER:
        return "never";
    }
    return "?";
}

void na_journal_opts_default(struct na_journal_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->segment_bytes = 16u << 20;
    o->max_bytes = 1ull << 30;
    o->max_age_ms = 7LL * 24 * 3600 * 1000;
    o->fsync = NA_FSYNC_INTERVAL;
    o->fsync_interval_ms = 1000;
    o->reserve_seqs = 65536;
}

bool na_journal_report_damaged(const struct na_journal_report *r)
{
    return r->bytes_truncated || r->segments_damaged || r->segments_skipped ||
           r->seqs_skipped;
}

int64_t journal_clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void journal_seg_path(const struct na_journal *j, const struct jseg *s, char *buf)
{
    if (j->single[0])
        snprintf(buf, PATH_MAX, "%s", j->single);
    else
        snprintf(buf, PATH_MAX, "%s/seg-%020" PRIu64 ".naj", j->dir, s->first_seq);
}

struct jseg *journal_seg_push(struct na_journal *j, uint64_t first_seq)
{
    if (j->n_segs == j->cap_segs) {
        size_t cap = j->cap_segs ? 2 * j->cap_segs : 16;
        struct jseg *p = realloc(j->segs, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        j->segs = p;
        j->cap_segs = cap;
    }
    struct jseg *s = &j->segs[j->n_segs++];
    memset(s, 0, sizeof(*s));
    s->first_seq = first_seq;
    s->size = s->valid_end = NA_JOURNAL_HEADER_SIZE;
    return s;
}

static void seg_remove(struct na_journal *j, size_t i)
{
    memmove(&j->segs[i], &j->segs[i + 1], (j->n_segs - i - 1) * sizeof(j->segs[0]));
    j->n_segs--;
}

/* Deletes the oldest segments while the journal is over max_bytes or their
 * newest record is older than max_age_ms. The newest segment always stays:
 * it holds the last seq. */
int na_journal_retain(struct na_journal *j, int64_t now_ms, struct na_error *err)
{
    if (j->o.read_only)
        return 0;
    while (j->n_segs > 1) {
        struct jseg *s = &j->segs[0];
        bool big = j->o.max_bytes && na_journal_size_bytes(j) > j->o.max_bytes;
        bool old = j->o.max_age_ms > 0 &&
                   (s->last_rec == 0 || s->max_time_ms < now_ms - j->o.max_age_ms);
        if (!big && !old)
            break;
        char path[PATH_MAX];
        journal_seg_path(j, s, path);
        if (unlink(path) < 0 && errno != ENOENT)
            return na_error_set(err, "%s: %s", path, strerror(errno));
        seg_remove(j, 0);
    }
    return 0;
}

static struct na_journal *
journal_alloc(const char *path, const struct na_journal_opts *opts, struct na_error *err)
{
    struct na_journal *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    if (opts)
        j->o = *opts;
    else
        na_journal_opts_default(&j->o);
    if (j->o.reserve_seqs == 0)
        j->o.reserve_seqs = 1;
    if (j->o.segment_bytes < MIN_SEGMENT_BYTES)
        j->o.segment_bytes = MIN_SEGMENT_BYTES;
    j->dir_fd = j->fd = -1;
    if (strlen(path) >= sizeof(j->dir)) {
        na_error_set(err, "%s: path too long", path);
        free(j);
        return NULL;
    }
    snprintf(j->dir, sizeof(j->dir), "%s", path);
    return j;
}

/* Finds the directory (creating it for a writable journal) or, read-only, a
 * single segment file; locks a writable journal's directory. */
static int journal_locate(struct na_journal *j, const char *path, struct na_error *err)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno != ENOENT || j->o.read_only)
            return na_error_set(err, "%s: %s", path, strerror(errno));
        if (mkdir(path, 0750) < 0 && errno != EEXIST)
            return na_error_set(err, "%s: cannot create: %s", path, strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        if (!j->o.read_only)
            return na_error_set(err, "%s: not a directory", path);
        snprintf(j->single, sizeof(j->single), "%s", path);
        char *slash = strrchr(j->dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(j->dir, sizeof(j->dir), ".");
        return 0;
    }
    if (j->o.read_only)
        return 0;
    j->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j->dir_fd < 0)
        return na_error_set(err, "%s: %s", path, strerror(errno));
    if (flock(j->dir_fd, LOCK_EX | LOCK_NB) < 0)
        return na_error_set(err, "%s: %s", path,
                            errno == EWOULDBLOCK
                                ? "the journal is in use by another process"
                                : strerror(errno));
    return 0;
}

struct na_journal *na_journal_open(const char *path, const struct na_journal_opts *opts,
                                   struct na_journal_report *report, struct na_error *err)
{
    struct na_journal_report scratch;
    struct na_journal_report *rep = report ? report : &scratch;
    struct na_journal *j = journal_alloc(path, opts, err);

    memset(rep, 0, sizeof(*rep));
    if (j == NULL)
        return NULL;
    if (journal_locate(j, path, err) < 0 || journal_scan(j, rep, err) < 0)
        goto fail;
    j->last_sync_ms = journal_clock_ms(CLOCK_MONOTONIC);
    if (!j->o.read_only) {
        if (na_journal_retain(j, journal_clock_ms(CLOCK_REALTIME), err) < 0)
            goto fail;
        struct jseg *s = j->n_segs ? &j->segs[j->n_segs - 1] : NULL;
        if (s && !s->damaged && s->size < j->o.segment_bytes) {
            char p[PATH_MAX];
            journal_seg_path(j, s, p);
            j->fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
            if (j->fd < 0) {
                na_error_set(err, "%s: %s", p, strerror(errno));
                goto fail;
            }
        }
    }
    rep->epoch = j->epoch;
    rep->last_seq = j->last_seq;
    rep->first_seq = 0;
    for (size_t i = 0; i < j->n_segs; i++) {
        const struct jseg *s = &j->segs[i];
        if (rep->first_seq == 0)
            rep->first_seq = s->first_rec;
        rep->records += s->records;
    }
    rep->segments = (unsigned)j->n_segs;
    rep->bytes = na_journal_size_bytes(j);
    return j;
fail:
    na_journal_close(j, NULL);
    return NULL;
}

/* ---- syncing ----
 *
 * An fdatasync takes milliseconds and sometimes much more, and the daemon's
 * loop must not wait for one that the policy does not make it wait for. So
 * under NA_FSYNC_INTERVAL the syncs run on a thread of their own, on a dup
 * of the segment's descriptor (a rotation may close the segment meanwhile;
 * the dup keeps the file open until it is synced). One sync at a time: a
 * sync asked for while one runs is not queued, and the data stays dirty for
 * the next turn. A failure is handed back by the next call that syncs or
 * flushes. NA_FSYNC_ALWAYS syncs in the caller's thread, as it must. */
struct journal_syncer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;       /* handed over and not yet taken, or -1 */
    bool running; /* an fdatasync is in progress */
    bool stop;
    int error;    /* errno of a failed sync not yet reported, or 0 */
    uint64_t done;
};

static void *syncer_main(void *arg)
{
    struct journal_syncer *s = arg;
    prctl(PR_SET_NAME, "na-journal-sync"); /* for top -H, perf and gdb */
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->fd < 0 && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->fd < 0)
            break; /* stopping, and nothing left to sync */
        int fd = s->fd;
        s->fd = -1;
        s->running = true;
        pthread_mutex_unlock(&s->mu);
        int e = fdatasync(fd) < 0 ? errno : 0;
        close(fd);
        pthread_mutex_lock(&s->mu);
        s->running = false;
        s->done++;
        if (e)
            s->error = e;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static struct journal_syncer *syncer_start(void)
{
    struct journal_syncer *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, syncer_main, s) != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    return s;
}

/* Waits for the sync in flight, if any, ends the thread and frees s.
 * Returns the errno of a failed sync not yet reported, or 0. */
static int syncer_stop(struct journal_syncer *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    int e = s->error;
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return e;
}

/* A background sync's failure, once: -1 with err set, else 0. */
static int syncer_take_error(struct na_journal *j, struct na_error *err)
{
    if (j->syncer == NULL)
        return 0;
    pthread_mutex_lock(&j->syncer->mu);
    int e = j->syncer->error;
    j->syncer->error = 0;
    pthread_mutex_unlock(&j->syncer->mu);
    if (e)
        return na_error_set(err, "journal %s: fdatasync: %s", j->dir, strerror(e));
    return 0;
}

int na_journal_sync(struct na_journal *j, struct na_error *err)
{
    j->last_sync_ms = journal_clock_ms(CLOCK_MONOTONIC);
    if (syncer_take_error(j, err) < 0)
        return -1;
    if (!j->dirty || j->fd < 0)
        return 0;
    if (fdatasync(j->fd) < 0)
        return na_error_set(err, "journal %s: fdatasync: %s", j->dir, strerror(errno));
    j->dirty = false;
    return 0;
}

int na_journal_sync_start(struct na_journal *j, struct na_error *err)
{
    if (syncer_take_error(j, err) < 0)
        return -1;
    if (!j->dirty || j->fd < 0)
        return 0;
    if (j->syncer == NULL && (j->syncer = syncer_start()) == NULL)
        return na_journal_sync(j, err); /* no thread: sync here */
    struct journal_syncer *s = j->syncer;
    pthread_mutex_lock(&s->mu);
    bool busy = s->running || s->fd >= 0;
    pthread_mutex_unlock(&s->mu);
    if (busy)
        return 0; /* still dirty: the next turn syncs it */
    int fd = fcntl(j->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return na_journal_sync(j, err);
    pthread_mutex_lock(&s->mu);
    s->fd = fd;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    j->dirty = false;
    j->last_sync_ms = journal_clock_ms(CLOCK_MONOTONIC);
    return 0;
}

uint64_t na_journal_background_syncs(const struct na_journal *j)
{
    if (j->syncer == NULL)
        return 0;
    pthread_mutex_lock(&j->syncer->mu);
    uint64_t n = j->syncer->done;
    pthread_mutex_unlock(&j->syncer->mu);
    return n;
}

bool na_journal_sync_due(const struct na_journal *j, int64_t now_ms)
{
    return j->o.fsync == NA_FSYNC_INTERVAL && j->dirty &&
           now_ms - j->last_sync_ms >= (int64_t)j->o.fsync_interval_ms;
}

/* Writes the buffer to the segment being written. */
static int journal_write(struct na_journal *j, struct na_error *err)
{
    if (j->wlen == 0)
        return 0;
    struct jseg *s = &j->segs[j->n_segs - 1];
    if (na_write_all(j->fd, j->wbuf, j->wlen) < 0) {
        int e = errno;
        /* Cut a partial write back to the last whole record, so that the
         * file stays clean and later appends are readable. */
        if (ftruncate(j->fd, (off_t)s->size) < 0)
            s->damaged = true;
        j->wlen = 0;
        j->wb_first = j->wb_count = 0;
        j->last_seq = j->written_seq;
        return na_error_set(err, "journal %s: write: %s", j->dir, strerror(e));
    }
    s->size += j->wlen;
    s->valid_end = s->size;
    if (s->first_rec == 0)
        s->first_rec = j->wb_first;
    s->last_rec = j->written_seq = j->wb_last;
    if (s->records == 0 || j->wb_max_time > s->max_time_ms)
        s->max_time_ms = j->wb_max_time;
    s->records += j->wb_count;
    j->wlen = 0;
    j->wb_first = j->wb_count = 0;
    j->dirty = true;
    return 0;
}

int na_journal_flush(struct na_journal *j, struct na_error *err)
{
    if (j->wlen == 0)
        return 0;
    if (journal_write(j, err) < 0)
        return -1;
    int64_t now = journal_clock_ms(CLOCK_MONOTONIC);
    if (j->o.fsync == NA_FSYNC_ALWAYS) {
        if (na_journal_sync(j, err) < 0)
            return -1;
    } else if (j->o.fsync == NA_FSYNC_INTERVAL &&
               now - j->last_sync_ms >= (int64_t)j->o.fsync_interval_ms) {
        if (na_journal_sync_start(j, err) < 0)
            return -1;
    }
    return na_journal_retain(j, journal_clock_ms(CLOCK_REALTIME), err);
}

void na_journal_discard(struct na_journal *j)
{
    j->wlen = 0;
    j->wb_first = j->wb_count = 0;
    j->last_seq = j->written_seq;
}

/* Ends the segment being written (flushed and, unless the policy is never,
 * synced: the interval timer only follows the newest segment). */
static int journal_rotate(struct na_journal *j, struct na_error *err)
{
    if (journal_write(j, err) < 0)
        return -1;
    if (j->o.fsync == NA_FSYNC_INTERVAL && na_journal_sync_start(j, err) < 0)
        return -1;
    /* Still dirty: the policy is always, or the syncer was busy. */
    if (j->o.fsync != NA_FSYNC_NEVER && j->dirty && na_journal_sync(j, err) < 0)
        return -1;
    close(j->fd);
    j->fd = -1;
    return 0;
}

static int journal_start_segment(struct na_journal *j, uint64_t first_seq,
                                 struct na_error *err)
{
    uint8_t h[NA_JOURNAL_HEADER_SIZE];
    char path[PATH_MAX];

    struct jseg *s = journal_seg_push(j, first_seq);
    if (s == NULL)
        return na_error_set(err, "out of memory");
    journal_seg_path(j, s, path);
    j->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
    if (j->fd < 0) {
        j->n_segs--;
        return na_error_set(err, "%s: %s", path, strerror(errno));
    }
    journal_seg_header(h, j->epoch, first_seq);
    if (na_write_all(j->fd, h, sizeof(h)) < 0) {
        int e = errno;
        close(j->fd);
        j->fd = -1;
        unlink(path);
        j->n_segs--;
        return na_error_set(err, "%s: %s", path, strerror(e));
    }
    /* The meta file remembers where numbering stands even if this segment
     * is lost; it also makes the new directory entry durable. */
    uint64_t old_floor = j->floor_seq;
    j->floor_seq = first_seq;
    if (journal_meta_write(j, err) < 0) {
        j->floor_seq = old_floor;
        close(j->fd);
        j->fd = -1;
        unlink(path);
        j->n_segs--;
        return -1;
    }
    return 0;
}

/* Moves the high-water mark to cover seq and a block above it, durably:
 * until journal.meta says so, seq may not be appended (nor published). */
static int journal_reserve(struct na_journal *j, uint64_t seq, struct na_error *err)
{
    uint64_t old = j->reserved_seq;
    j->reserved_seq = seq + j->o.reserve_seqs - 1 < seq ? UINT64_MAX
                                                        : seq + j->o.reserve_seqs - 1;
    if (journal_meta_write(j, err) < 0) {
        j->reserved_seq = old;
        return -1;
    }
    return 0;
}

int na_journal_append(struct na_journal *j, uint64_t seq, int64_t time_ms,
                      const void *payload, size_t len, struct na_error *err)
{
    if (j->o.read_only)
        return na_error_set(err, "journal %s is open read-only", j->dir);
    if (seq <= j->last_seq)
        return na_error_set(err, "seq %" PRIu64 " is not above the last seq %" PRIu64,
                            seq, j->last_seq);
    if (len > NA_JOURNAL_MAX_PAYLOAD)
        return na_error_set(err, "a journal record of %zu bytes is over the %u limit",
                            len, NA_JOURNAL_MAX_PAYLOAD);
    size_t rec = NA_JOURNAL_RECORD_HEADER + len;
    if (j->fd >= 0) {
        const struct jseg *s = &j->segs[j->n_segs - 1];
        bool has_records = s->size > NA_JOURNAL_HEADER_SIZE || j->wlen > 0;
        if (has_records && s->size + j->wlen + rec > j->o.segment_bytes &&
            journal_rotate(j, err) < 0)
            return -1;
    }
    if (j->fd < 0 && journal_start_segment(j, seq, err) < 0)
        return -1;
    if (seq > j->reserved_seq && journal_reserve(j, seq, err) < 0)
        return -1;
    if (j->wcap - j->wlen < rec) {
        size_t cap = j->wcap ? j->wcap : 4096;
        while (cap - j->wlen < rec)
            cap *= 2;
        uint8_t *p = realloc(j->wbuf, cap);
        if (p == NULL)
            return na_error_set(err, "out of memory");
        j->wbuf = p;
        j->wcap = cap;
    }
    uint8_t *r = j->wbuf + j->wlen;
    le_put32(r, (uint32_t)(16 + len));
    le_put64(r + 8, seq);
    le_put64(r + 16, (uint64_t)time_ms);
    if (len)
        memcpy(r + 24, payload, len);
    le_put32(r + 4, na_crc32c(0, r + 8, 16 + len));
    j->wlen += rec;
    if (j->wb_first == 0) {
        j->wb_first = seq;
        j->wb_max_time = time_ms;
    } else if (time_ms > j->wb_max_time) {
        j->wb_max_time = time_ms;
    }
    j->wb_last = j->last_seq = seq;
    j->wb_count++;
    return 0;
}

int na_journal_close(struct na_journal *j, struct na_error *err)
{
    if (j == NULL)
        return 0;
    int rc = 0;
    if (j->syncer) {
        int e = syncer_stop(j->syncer); /* finishes the sync in flight */
        j->syncer = NULL;
        if (e)
            rc = na_error_set(err, "journal %s: fdatasync: %s", j->dir, strerror(e));
    }
    if (j->fd >= 0) {
        /* What is buffered is written even after a failed sync; err keeps
         * the first failure. */
        struct na_error *e = rc ? NULL : err;
        int wrc = journal_write(j, e);
        if (wrc == 0 && j->o.fsync != NA_FSYNC_NEVER)
            wrc = na_journal_sync(j, e);
        if (wrc < 0)
            rc = -1;
        close(j->fd);
        j->fd = -1;
    }
    /* Everything appended is written (and synced, unless the policy is
     * never): the next run may go on from the last seq rather than above
     * the reservation. */
    if (rc == 0 && !j->o.read_only && j->dir_fd >= 0 && j->reserved_seq > j->last_seq) {
        j->reserved_seq = j->last_seq;
        if (journal_meta_write(j, err) < 0)
            rc = -1;
    }
    if (j->dir_fd >= 0)
        close(j->dir_fd); /* releases the lock */
    free(j->segs);
    free(j->wbuf);
    free(j);
    return rc;
}

void na_journal_set_retention(struct na_journal *j, uint64_t max_bytes,
                              int64_t max_age_ms)
{
    j->o.max_bytes = max_bytes;
    j->o.max_age_ms = max_age_ms;
}

uint64_t na_journal_epoch(const struct na_journal *j)
{
    return j->epoch;
}

uint64_t na_journal_first_seq(const struct na_journal *j)
{
    for (size_t i = 0; i < j->n_segs; i++)
        if (j->segs[i].first_rec)
            return j->segs[i].first_rec;
    return j->written_seq + 1;
}

uint64_t na_journal_last_seq(const struct na_journal *j)
{
    return j->last_seq;
}

uint64_t na_journal_size_bytes(const struct na_journal *j)
{
    uint64_t n = j->wlen;
    for (size_t i = 0; i < j->n_segs; i++)
        n += j->segs[i].size;
    return n;
}
