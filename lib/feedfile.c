/* Recorded-feed files: writer and reader; the format is in feedfile.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "newsalert/feedfile.h"

static const uint8_t magic[8] = {'N', 'A', 'F', 'E', 'E', 'D', 0, 0};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

struct na_feed_writer {
    FILE *f;
    bool is_stdout;
    bool failed;
};

struct na_feed_writer *na_feed_writer_open(const char *path, struct na_error *err)
{
    struct na_feed_writer *w = calloc(1, sizeof(*w));
    uint8_t hdr[NA_FEED_HEADER_SIZE] = {0};

    if (w == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    w->is_stdout = strcmp(path, "-") == 0;
    w->f = w->is_stdout ? stdout : fopen(path, "wb");
    if (w->f == NULL) {
        na_error_set(err, "%s: %s", path, strerror(errno));
        free(w);
        return NULL;
    }
    memcpy(hdr, magic, sizeof(magic));
    put16(hdr + 8, NA_FEED_VERSION);
    if (fwrite(hdr, 1, sizeof(hdr), w->f) != sizeof(hdr)) {
        na_error_set(err, "%s: %s", path, strerror(errno));
        na_feed_writer_close(w, NULL);
        return NULL;
    }
    return w;
}

int na_feed_writer_append(struct na_feed_writer *w, uint64_t time_ns,
                          const struct na_frame *frames, size_t n_frames,
                          struct na_error *err)
{
    uint8_t hdr[14];
    uint64_t len = 8 + 2;

    if (n_frames == 0 || n_frames > NA_FEED_MAX_FRAMES)
        return na_error_set(err, "a record needs 1 to %d frames, not %zu",
                            NA_FEED_MAX_FRAMES, n_frames);
    for (size_t i = 0; i < n_frames; i++)
        len += 4 + frames[i].len;
    if (len > NA_FEED_MAX_RECORD)
        return na_error_set(err, "a record of %llu bytes is over the %u byte limit",
                            (unsigned long long)len, NA_FEED_MAX_RECORD);
    put32(hdr, (uint32_t)len);
    put64(hdr + 4, time_ns);
    put16(hdr + 12, (uint16_t)n_frames);
    if (fwrite(hdr, 1, sizeof(hdr), w->f) != sizeof(hdr))
        goto fail;
    for (size_t i = 0; i < n_frames; i++) {
        uint8_t fl[4];
        put32(fl, (uint32_t)frames[i].len);
        if (fwrite(fl, 1, 4, w->f) != 4 ||
            (frames[i].len &&
             fwrite(frames[i].data, 1, frames[i].len, w->f) != frames[i].len))
            goto fail;
    }
    return 0;
fail:
    w->failed = true;
    return na_error_set(err, "write failed: %s", strerror(errno));
}

int na_feed_writer_close(struct na_feed_writer *w, struct na_error *err)
{
    if (w == NULL)
        return 0;
    int rc = w->failed ? -1 : 0;
    if (fflush(w->f) != 0)
        rc = -1;
    if (!w->is_stdout && fclose(w->f) != 0)
        rc = -1;
    if (rc < 0)
        na_error_set(err, "write failed: %s", strerror(errno));
    free(w);
    return rc;
}

struct na_feed_reader {
    FILE *f; /* NULL when reading from memory */
    bool owns_f;
    const uint8_t *mem; /* the whole input, when reading from memory */
    size_t mem_len;
    uint64_t offset;
    uint64_t size;
    uint8_t *buf; /* the current record, when reading from a file */
    size_t cap;
    bool done;
    bool truncated; /* the file ended inside a record */
};

/* Reads exactly n bytes at the current offset; returns a pointer to them or
 * NULL at end of input (with *got set to what there was). */
static const uint8_t *take(struct na_feed_reader *r, size_t n, size_t *got)
{
    if (r->mem) {
        size_t left = r->mem_len - (size_t)r->offset;
        if (left < n) {
            *got = left;
            return NULL;
        }
        const uint8_t *p = r->mem + r->offset;
        r->offset += n;
        return p;
    }
    if (r->cap < n) {
        uint8_t *p = realloc(r->buf, n);
        if (p == NULL) {
            *got = 0;
            return NULL;
        }
        r->buf = p;
        r->cap = n;
    }
    *got = fread(r->buf, 1, n, r->f);
    if (*got < n)
        return NULL;
    r->offset += n;
    return r->buf;
}

static int check_header(struct na_feed_reader *r, const char *name, struct na_error *err)
{
    size_t got;
    const uint8_t *h = take(r, NA_FEED_HEADER_SIZE, &got);
    if (h == NULL && got < sizeof(magic))
        return na_error_set(
            err, "%s: not a recorded feed (%zu bytes, shorter than a header)", name, got);
    /* A short file still says what it is by its first bytes. */
    const uint8_t *head = h ? h : r->mem ? r->mem + r->offset : r->buf;
    if (memcmp(head, magic, sizeof(magic)) != 0)
        return na_error_set(err, "%s: not a recorded feed (bad magic)", name);
    if (h == NULL)
        return na_error_set(err, "%s: truncated header: %zu of %d bytes", name, got,
                            NA_FEED_HEADER_SIZE);
    uint16_t version = get16(h + 8);
    if (version != NA_FEED_VERSION)
        return na_error_set(err,
                            "%s: recorded feed version %u is not supported (this build "
                            "reads version %d)",
                            name, version, NA_FEED_VERSION);
    return 0;
}

struct na_feed_reader *na_feed_reader_open(const char *path, struct na_error *err)
{
    struct na_feed_reader *r = calloc(1, sizeof(*r));
    struct stat st;

    if (r == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    if (strcmp(path, "-") == 0) {
        r->f = stdin;
    } else {
        r->f = fopen(path, "rb");
        r->owns_f = true;
    }
    if (r->f == NULL) {
        na_error_set(err, "%s: %s", path, strerror(errno));
        free(r);
        return NULL;
    }
    if (fstat(fileno(r->f), &st) == 0 && S_ISREG(st.st_mode))
        r->size = (uint64_t)st.st_size;
    if (check_header(r, path, err) < 0) {
        na_feed_reader_close(r);
        return NULL;
    }
    return r;
}

struct na_feed_reader *na_feed_reader_open_mem(const uint8_t *buf, size_t len,
                                               struct na_error *err)
{
    struct na_feed_reader *r = calloc(1, sizeof(*r));
    static const uint8_t empty[1];

    if (r == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    r->mem = buf ? buf : empty;
    r->mem_len = len;
    r->size = len;
    if (check_header(r, "<memory>", err) < 0) {
        na_feed_reader_close(r);
        return NULL;
    }
    return r;
}

int na_feed_reader_next(struct na_feed_reader *r, struct na_record *rec,
                        struct na_error *err)
{
    size_t got;
    uint64_t at = r->offset;

    if (r->done)
        return 0;
    const uint8_t *p = take(r, 4, &got);
    if (p == NULL) {
        r->done = true;
        if (got == 0)
            return 0;
        r->truncated = true;
        return na_error_set(err, "truncated record at offset %llu: %zu of 4 length bytes",
                            (unsigned long long)at, got);
    }
    uint32_t len = get32(p);
    if (len < 10 || len > NA_FEED_MAX_RECORD) {
        r->done = true;
        return na_error_set(err, "damaged record at offset %llu: length %u",
                            (unsigned long long)at, len);
    }
    p = take(r, len, &got);
    if (p == NULL) {
        r->done = true;
        r->truncated = true;
        return na_error_set(err, "truncated record at offset %llu: %zu of %u bytes",
                            (unsigned long long)at, got, len);
    }
    rec->time_ns = get64(p);
    rec->n_frames = get16(p + 8);
    if (rec->n_frames == 0 || rec->n_frames > NA_FEED_MAX_FRAMES) {
        r->done = true;
        return na_error_set(err, "damaged record at offset %llu: %zu frames",
                            (unsigned long long)at, rec->n_frames);
    }
    size_t pos = 10;
    for (size_t i = 0; i < rec->n_frames; i++) {
        if (len - pos < 4) {
            r->done = true;
            return na_error_set(err,
                                "damaged record at offset %llu: frame %zu overruns it",
                                (unsigned long long)at, i);
        }
        uint32_t fl = get32(p + pos);
        pos += 4;
        if (fl > len - pos) {
            r->done = true;
            return na_error_set(err,
                                "damaged record at offset %llu: frame %zu overruns it",
                                (unsigned long long)at, i);
        }
        rec->frames[i].data = p + pos;
        rec->frames[i].len = fl;
        pos += fl;
    }
    if (pos != len) {
        r->done = true;
        return na_error_set(err, "damaged record at offset %llu: %zu stray bytes",
                            (unsigned long long)at, (size_t)(len - pos));
    }
    return 1;
}

bool na_feed_reader_truncated(const struct na_feed_reader *r)
{
    return r->truncated;
}

uint64_t na_feed_reader_offset(const struct na_feed_reader *r)
{
    return r->offset;
}

uint64_t na_feed_reader_size(const struct na_feed_reader *r)
{
    return r->size;
}

void na_feed_reader_close(struct na_feed_reader *r)
{
    if (r == NULL)
        return;
    if (r->owns_f && r->f)
        fclose(r->f);
    free(r->buf);
    free(r);
}

bool na_feed_is_feed(const uint8_t *buf, size_t len)
{
    return len >= sizeof(magic) && memcmp(buf, magic, sizeof(magic)) == 0;
}
