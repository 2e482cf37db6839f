/* The quarantine store of rejected feed input: appending, rotation, the
 * size cap, and reading back. The format is in quarantine.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "le.h"
#include "newsalert/crc32c.h"
#include "newsalert/quarantine.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

static const uint8_t q_magic[8] = {'N', 'A', 'Q', 'U', 'A', 'R', 0, 0};
#define Q_NAME_LEN 26 /* "q-" + 20 digits + ".naq" */
#define Q_AUTO_FLUSH (64u << 10)

struct qfile {
    uint64_t index;
    uint64_t size;
};

struct na_quarantine {
    char dir[PATH_MAX - 64];
    uint64_t max_bytes, file_bytes;
    struct qfile *files; /* oldest first; the last is being written when fd >= 0 */
    size_t n_files, cap_files;
    uint64_t next_index;
    int fd;
    uint8_t *wbuf;
    size_t wlen, wcap;
};

static void file_path(const char *dir, uint64_t index, char *buf)
{
    snprintf(buf, PATH_MAX, "%s/q-%020" PRIu64 ".naq", dir, index);
}

static int cmp_qfile(const void *a, const void *b)
{
    uint64_t x = ((const struct qfile *)a)->index, y = ((const struct qfile *)b)->index;
    return x < y ? -1 : x > y;
}

static struct qfile *push_file(struct qfile **files, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        struct qfile *p = realloc(*files, c * sizeof(*p));
        if (p == NULL)
            return NULL;
        *files = p;
        *cap = c;
    }
    return &(*files)[(*n)++];
}

/* The quarantine files of dir, oldest first, with their sizes. */
static int list_files(const char *dir, struct qfile **files, size_t *n, size_t *cap,
                      struct na_error *err)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return na_error_set(err, "%s: %s", dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        uint64_t index;
        char path[PATH_MAX];
        struct stat st;
        if (!na_parse_numbered_name(e->d_name, "q-", ".naq", &index))
            continue;
        file_path(dir, index, path);
        if (stat(path, &st) < 0)
            continue;
        struct qfile *f = push_file(files, n, cap);
        if (f == NULL) {
            closedir(d);
            return na_error_set(err, "out of memory");
        }
        f->index = index;
        f->size = (uint64_t)st.st_size;
    }
    closedir(d);
    if (*n)
        qsort(*files, *n, sizeof(**files), cmp_qfile);
    return 0;
}

struct na_quarantine *na_quarantine_open(const char *dir, uint64_t max_bytes,
                                         uint64_t file_bytes, struct na_error *err)
{
    struct na_quarantine *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    q->fd = -1;
    q->max_bytes = max_bytes;
    q->file_bytes = file_bytes;
    if (strlen(dir) >= sizeof(q->dir)) {
        na_error_set(err, "%s: path too long", dir);
        goto fail;
    }
    snprintf(q->dir, sizeof(q->dir), "%s", dir);
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        na_error_set(err, "%s: cannot create: %s", dir, strerror(errno));
        goto fail;
    }
    if (list_files(dir, &q->files, &q->n_files, &q->cap_files, err) < 0)
        goto fail;
    q->next_index = q->n_files ? q->files[q->n_files - 1].index + 1 : 1;
    if (na_quarantine_flush(q, err) < 0) /* applies the cap */
        goto fail;
    return q;
fail:
    na_quarantine_close(q, NULL);
    return NULL;
}

static int q_write(struct na_quarantine *q, struct na_error *err)
{
    if (q->wlen == 0 || q->fd < 0)
        return 0;
    struct qfile *f = &q->files[q->n_files - 1];
    if (na_write_all(q->fd, q->wbuf, q->wlen) < 0) {
        int e = errno;
        /* Cut the partial entry off and start a new file next time, so that
         * nothing is ever appended after a torn entry (or a lost header). */
        if (ftruncate(q->fd, (off_t)f->size) == 0 && f->size == 0) {
            char path[PATH_MAX];
            file_path(q->dir, f->index, path);
            unlink(path);
            q->n_files--;
        }
        close(q->fd);
        q->fd = -1;
        q->wlen = 0;
        return na_error_set(err, "quarantine %s: write: %s", q->dir, strerror(e));
    }
    f->size += q->wlen;
    q->wlen = 0;
    return 0;
}

static int q_reserve(struct na_quarantine *q, size_t n, struct na_error *err)
{
    if (q->wcap - q->wlen >= n)
        return 0;
    size_t cap = q->wcap ? q->wcap : 4096;
    while (cap - q->wlen < n)
        cap *= 2;
    uint8_t *p = realloc(q->wbuf, cap);
    if (p == NULL)
        return na_error_set(err, "out of memory");
    q->wbuf = p;
    q->wcap = cap;
    return 0;
}

static int q_start_file(struct na_quarantine *q, struct na_error *err)
{
    char path[PATH_MAX];
    uint8_t h[NA_QUARANTINE_HEADER_SIZE] = {0};

    file_path(q->dir, q->next_index, path);
    struct qfile *f = push_file(&q->files, &q->n_files, &q->cap_files);
    if (f == NULL)
        return na_error_set(err, "out of memory");
    q->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
    if (q->fd < 0) {
        q->n_files--;
        return na_error_set(err, "%s: %s", path, strerror(errno));
    }
    f->index = q->next_index++;
    f->size = 0;
    memcpy(h, q_magic, 8);
    le_put16(h + 8, NA_QUARANTINE_VERSION);
    if (q_reserve(q, sizeof(h), err) < 0)
        return -1;
    memcpy(q->wbuf + q->wlen, h, sizeof(h));
    q->wlen += sizeof(h);
    return 0;
}

int na_quarantine_add(struct na_quarantine *q, uint64_t time_ns, const char *reason,
                      const struct na_frame *frames, size_t n_frames,
                      struct na_error *err)
{
    size_t rlen = strlen(reason);
    if (rlen > NA_QUARANTINE_MAX_REASON)
        rlen = NA_QUARANTINE_MAX_REASON;
    if (n_frames == 0 || n_frames > NA_FEED_MAX_FRAMES)
        return na_error_set(err, "a quarantine entry needs 1 to %d frames, not %zu",
                            NA_FEED_MAX_FRAMES, n_frames);
    uint64_t len = 8 + 2 + rlen + 2;
    for (size_t i = 0; i < n_frames; i++)
        len += 4 + (uint64_t)frames[i].len;
    if (len > NA_QUARANTINE_MAX_ENTRY || (q->max_bytes && len + 8 > q->max_bytes))
        return na_error_set(err, "a quarantine entry of %" PRIu64 " bytes is too large",
                            len + 8);
    if (q->fd >= 0) {
        const struct qfile *f = &q->files[q->n_files - 1];
        bool has_entries = f->size + q->wlen > NA_QUARANTINE_HEADER_SIZE;
        if (has_entries && f->size + q->wlen + len + 8 > q->file_bytes) {
            if (q_write(q, err) < 0)
                return -1;
            if (q->fd >= 0)
                close(q->fd);
            q->fd = -1;
        }
    }
    if (q->fd < 0 && q_start_file(q, err) < 0)
        return -1;
    if (q_reserve(q, (size_t)len + 8, err) < 0)
        return -1;
    uint8_t *r = q->wbuf + q->wlen, *p = r + 8;
    le_put32(r, (uint32_t)len);
    le_put64(p, time_ns);
    le_put16(p + 8, (uint16_t)rlen);
    memcpy(p + 10, reason, rlen);
    p += 10 + rlen;
    le_put16(p, (uint16_t)n_frames);
    p += 2;
    for (size_t i = 0; i < n_frames; i++) {
        le_put32(p, (uint32_t)frames[i].len);
        if (frames[i].len)
            memcpy(p + 4, frames[i].data, frames[i].len);
        p += 4 + frames[i].len;
    }
    le_put32(r + 4, na_crc32c(0, r + 8, (size_t)len));
    q->wlen += (size_t)len + 8;
    if (q->wlen >= Q_AUTO_FLUSH)
        return na_quarantine_flush(q, err);
    return 0;
}

int na_quarantine_flush(struct na_quarantine *q, struct na_error *err)
{
    if (q_write(q, err) < 0)
        return -1;
    size_t keep = q->fd >= 0 ? 1 : 0; /* never the file being written */
    while (q->n_files > keep && q->max_bytes &&
           na_quarantine_size_bytes(q) > q->max_bytes) {
        char path[PATH_MAX];
        file_path(q->dir, q->files[0].index, path);
        if (unlink(path) < 0 && errno != ENOENT)
            return na_error_set(err, "%s: %s", path, strerror(errno));
        memmove(&q->files[0], &q->files[1], (q->n_files - 1) * sizeof(q->files[0]));
        q->n_files--;
    }
    return 0;
}

uint64_t na_quarantine_size_bytes(const struct na_quarantine *q)
{
    uint64_t n = q->wlen;
    for (size_t i = 0; i < q->n_files; i++)
        n += q->files[i].size;
    return n;
}

int na_quarantine_close(struct na_quarantine *q, struct na_error *err)
{
    if (q == NULL)
        return 0;
    int rc = q_write(q, err);
    if (q->fd >= 0)
        close(q->fd);
    free(q->files);
    free(q->wbuf);
    free(q);
    return rc;
}

struct na_quarantine_reader {
    char dir[PATH_MAX - 64];
    struct qfile *files;
    size_t n_files, cap_files;
    size_t next_file;
    FILE *f;
    char name[Q_NAME_LEN + 1];
    uint64_t off;
    uint8_t *buf;
    size_t cap;
};

struct na_quarantine_reader *na_quarantine_reader_open(const char *dir,
                                                       struct na_error *err)
{
    struct na_quarantine_reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    if (strlen(dir) >= sizeof(r->dir)) {
        na_error_set(err, "%s: path too long", dir);
        goto fail;
    }
    snprintf(r->dir, sizeof(r->dir), "%s", dir);
    if (list_files(dir, &r->files, &r->n_files, &r->cap_files, err) < 0)
        goto fail;
    return r;
fail:
    na_quarantine_reader_close(r);
    return NULL;
}

/* Skips the rest of the current file after damage at r->off. */
static int damaged(struct na_quarantine_reader *r, const char *what, struct na_error *err)
{
    na_error_set(err, "%s: %s at offset %" PRIu64 "; the rest of the file is skipped",
                 r->name, what, r->off);
    fclose(r->f);
    r->f = NULL;
    return -1;
}

int na_quarantine_reader_next(struct na_quarantine_reader *r,
                              struct na_quarantine_entry *e, struct na_error *err)
{
    uint8_t h[NA_QUARANTINE_HEADER_SIZE];

    while (r->f == NULL) {
        if (r->next_file == r->n_files)
            return 0;
        char path[PATH_MAX];
        uint64_t index = r->files[r->next_file++].index;
        file_path(r->dir, index, path);
        snprintf(r->name, sizeof(r->name), "q-%020" PRIu64 ".naq", index);
        r->f = fopen(path, "rb");
        r->off = 0;
        if (r->f == NULL) {
            if (errno == ENOENT) /* deleted by the cap meanwhile */
                continue;
            return na_error_set(err, "%s: %s", path, strerror(errno));
        }
        size_t got = fread(h, 1, sizeof(h), r->f);
        if (got == 0 && feof(r->f)) { /* created, then a crash */
            fclose(r->f);
            r->f = NULL;
            continue;
        }
        if (got < sizeof(h) || memcmp(h, q_magic, 8) != 0 ||
            le_get16(h + 8) != NA_QUARANTINE_VERSION)
            return damaged(r, "not a quarantine file (bad header)", err);
        r->off = sizeof(h);
    }
    size_t got = fread(h, 1, 8, r->f);
    if (got == 0 && feof(r->f)) {
        fclose(r->f);
        r->f = NULL;
        return na_quarantine_reader_next(r, e, err);
    }
    if (got < 8)
        return damaged(r, "a truncated entry", err);
    uint32_t len = le_get32(h);
    if (len < 12 || len > NA_QUARANTINE_MAX_ENTRY)
        return damaged(r, "a bad entry length", err);
    if (r->cap < len) {
        uint8_t *p = realloc(r->buf, len);
        if (p == NULL)
            return na_error_set(err, "out of memory");
        r->buf = p;
        r->cap = len;
    }
    if (fread(r->buf, 1, len, r->f) != len)
        return damaged(r, "a truncated entry", err);
    if (na_crc32c(0, r->buf, len) != le_get32(h + 4))
        return damaged(r, "a bad CRC", err);
    /* The CRC matched, but the layout inside is still checked, so that a
     * writer's bug cannot make a reader overrun. */
    const uint8_t *p = r->buf, *end = r->buf + len;
    e->time_ns = le_get64(p);
    size_t rlen = le_get16(p + 8);
    if (rlen > NA_QUARANTINE_MAX_REASON || (size_t)(end - p) < 12 + rlen)
        return damaged(r, "a bad reason length", err);
    memcpy(e->reason, p + 10, rlen);
    e->reason[rlen] = '\0';
    p += 10 + rlen;
    e->n_frames = le_get16(p);
    p += 2;
    if (e->n_frames == 0 || e->n_frames > NA_FEED_MAX_FRAMES)
        return damaged(r, "a bad frame count", err);
    for (size_t i = 0; i < e->n_frames; i++) {
        if (end - p < 4 || le_get32(p) > (size_t)(end - p - 4))
            return damaged(r, "a frame overrunning its entry", err);
        e->frames[i].len = le_get32(p);
        e->frames[i].data = p + 4;
        p += 4 + e->frames[i].len;
    }
    if (p != end)
        return damaged(r, "stray bytes in an entry", err);
    r->off += 8 + len;
    return 1;
}

void na_quarantine_reader_close(struct na_quarantine_reader *r)
{
    if (r == NULL)
        return;
    if (r->f)
        fclose(r->f);
    free(r->files);
    free(r->buf);
    free(r);
}
