/* Model files: writing them for `newsalert train`, reading and validating
 * them for the daemon and the tools, and weighing an article's features.
 * The format is described in model.h. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "newsalert/model.h"

static const char magic[8] = "NAMODEL";
/* Far above any model that a corpus of news could train, far below what
 * would hurt to read. */
#define MAX_MODEL_BYTES (256u << 20)

/* A feature's hash (0: an empty slot) and its row in rowdata, side
 * by side: a lookup is one cache line. */
struct model_slot {
    uint32_t key, row;
};

#define TF_COUNTS 32

struct na_model {
    size_t n_tags;
    struct na_model_tag tags[NA_MAX_TAGS];
    char *names; /* the tags' names, one allocation */
    size_t n_features;
    struct model_slot *table; /* open addressing by hash */
    uint32_t mask;
    double tf[TF_COUNTS]; /* 1 + ln count, for the counts most n-grams have */
    /* Row r's idf, then its weight for each tag, at rowdata[r * stride]:
     * what one known n-gram needs is one cache line, not one per array. */
    float *rowdata;
    size_t stride; /* 1 + n_tags */
    unsigned char rules_digest[16];
    char version[17];
};

static uint32_t slot_of(uint32_t key, uint32_t mask)
{
    return (key * 0x9e3779b1u) & mask;
}

void na_ruleset_digest(const struct na_ruleset *rs, unsigned char out[16])
{
    crypto_hash_sha256_state st;
    unsigned char full[crypto_hash_sha256_BYTES];

    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < na_ruleset_tag_count(rs); i++) {
        const struct na_tag *t = na_ruleset_tag(rs, i);
        crypto_hash_sha256_update(&st, (const unsigned char *)t->name, strlen(t->name) + 1);
        for (size_t k = 0; k < t->n_terms; k++)
            crypto_hash_sha256_update(&st, (const unsigned char *)t->terms[k].source,
                                      strlen(t->terms[k].source) + 1);
        crypto_hash_sha256_update(&st, (const unsigned char *)"\1", 1);
        for (size_t k = 0; k < t->n_excludes; k++)
            crypto_hash_sha256_update(&st, (const unsigned char *)t->excludes[k].source,
                                      strlen(t->excludes[k].source) + 1);
    }
    crypto_hash_sha256_final(&st, full);
    memcpy(out, full, 16);
}

/* A byte buffer that writing appends to. */
struct wbuf {
    unsigned char *p;
    size_t n, cap;
    bool failed;
};

static void put(struct wbuf *b, const void *data, size_t len)
{
    if (b->failed)
        return;
    if (b->n + len > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->n + len)
            ncap *= 2;
        unsigned char *p = realloc(b->p, ncap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
}

static void put_u32(struct wbuf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                          (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    put(b, x, 4);
}

static void put_f64(struct wbuf *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_f32(struct wbuf *b, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(b, v);
}

int na_model_write(const char *path, const struct na_model_spec *spec,
                   struct na_error *err)
{
    struct wbuf b = {0};
    char tmp[4096];
    int rc = -1, fd = -1;

    put(&b, magic, sizeof(magic));
    put_u32(&b, NA_MODEL_FORMAT);
    put_u32(&b, (uint32_t)spec->n_tags);
    put_u32(&b, (uint32_t)spec->n_features);
    put_u32(&b, NA_MODEL_NGRAM);
    put(&b, spec->rules_digest, 16);
    for (size_t t = 0; t < spec->n_tags; t++) {
        const struct na_model_tag *mt = &spec->tags[t];
        put_u32(&b, (uint32_t)strlen(mt->name));
        put(&b, mt->name, strlen(mt->name));
        put_f64(&b, mt->bias);
        put_f64(&b, mt->platt_a);
        put_f64(&b, mt->platt_b);
        put_f64(&b, mt->threshold);
    }
    for (size_t i = 0; i < spec->n_features; i++)
        put_u32(&b, spec->features[i]);
    for (size_t i = 0; i < spec->n_features; i++)
        put_f32(&b, spec->idf[i]);
    for (size_t i = 0; i < spec->n_features * spec->n_tags; i++)
        put_f32(&b, spec->weights[i]);
    if (b.failed) {
        na_error_set(err, "out of memory");
        goto out;
    }
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, b.p, b.n);
    put(&b, digest, sizeof(digest));
    if (b.failed) {
        na_error_set(err, "out of memory");
        goto out;
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        na_error_set(err, "%s: path too long", path);
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        na_error_set(err, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    for (size_t off = 0; off < b.n;) {
        ssize_t w = write(fd, b.p + off, b.n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            na_error_set(err, "%s: %s", tmp, strerror(errno));
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        na_error_set(err, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        na_error_set(err, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        unlink(tmp);
    free(b.p);
    return rc;
}

/* A cursor over the file's bytes; reading past the end sets short. */
struct rbuf {
    const unsigned char *p;
    size_t n, off;
    bool short_read;
};

static const unsigned char *take(struct rbuf *r, size_t len)
{
    if (r->short_read || r->n - r->off < len) {
        r->short_read = true;
        return NULL;
    }
    const unsigned char *p = r->p + r->off;
    r->off += len;
    return p;
}

static uint32_t get_u32(struct rbuf *r)
{
    const unsigned char *x = take(r, 4);
    return x ? (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 |
                   (uint32_t)x[3] << 24
             : 0;
}

static double get_f64(struct rbuf *r)
{
    uint64_t lo = get_u32(r), hi = get_u32(r);
    uint64_t v = lo | hi << 32;
    double d;
    memcpy(&d, &v, 8);
    return d;
}

static float get_f32(struct rbuf *r)
{
    uint32_t v = get_u32(r);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

static int read_file(const char *path, unsigned char **out, size_t *len,
                     struct na_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    unsigned char *buf = NULL;

    if (fd < 0)
        return na_error_set(err, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return na_error_set(err, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > MAX_MODEL_BYTES) {
        close(fd);
        return na_error_set(err, "%s: %lld bytes is more than a model can be", path,
                            (long long)st.st_size);
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return na_error_set(err, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    *out = buf;
    *len = got;
    return 0;
}

struct na_model *na_model_load(const char *path, const struct na_ruleset *rs,
                               struct na_error *err)
{
    unsigned char *file = NULL;
    size_t len = 0;
    struct na_model *m = NULL;

    if (read_file(path, &file, &len, err) < 0)
        return NULL;
    struct rbuf r = {file, len, 0, false};
    const unsigned char *mg = take(&r, sizeof(magic));
    if (mg == NULL || memcmp(mg, magic, sizeof(magic)) != 0) {
        na_error_set(err, "%s: not a newsalertd model file", path);
        goto fail;
    }
    uint32_t version = get_u32(&r);
    if (!r.short_read && version != NA_MODEL_FORMAT) {
        na_error_set(err, "%s: model format %u, this build reads format %u", path, version,
                     NA_MODEL_FORMAT);
        goto fail;
    }
    if (len < crypto_hash_sha256_BYTES + r.off) {
        na_error_set(err, "%s: truncated (%zu bytes)", path, len);
        goto fail;
    }
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, file, len - sizeof(digest));
    if (memcmp(digest, file + len - sizeof(digest), sizeof(digest)) != 0) {
        na_error_set(err, "%s: damaged or truncated (its checksum does not match)", path);
        goto fail;
    }
    r.n = len - sizeof(digest);

    m = calloc(1, sizeof(*m));
    if (m == NULL)
        goto oom;
    uint32_t n_tags = get_u32(&r), n_features = get_u32(&r), max_ngram = get_u32(&r);
    const unsigned char *dg = take(&r, 16);
    if (r.short_read)
        goto truncated;
    if (max_ngram != NA_MODEL_NGRAM) {
        na_error_set(err, "%s: trained on %u-grams, this build computes %u-grams", path,
                     max_ngram, NA_MODEL_NGRAM);
        goto fail;
    }
    memcpy(m->rules_digest, dg, 16);
    if (n_tags != na_ruleset_tag_count(rs)) {
        na_error_set(err, "%s: the model has %u tag(s), the rules define %zu", path, n_tags,
                     na_ruleset_tag_count(rs));
        goto fail;
    }
    m->n_tags = n_tags;
    m->names = malloc(n_tags * 65);
    if (m->names == NULL)
        goto oom;
    for (uint32_t t = 0; t < n_tags; t++) {
        uint32_t nl = get_u32(&r);
        const unsigned char *name = nl <= 64 ? take(&r, nl) : NULL;
        if (name == NULL) {
            if (nl > 64)
                na_error_set(err, "%s: tag %u's name is %u bytes long", path, t, nl);
            else
                goto truncated;
            goto fail;
        }
        char *dst = m->names + t * 65;
        memcpy(dst, name, nl);
        dst[nl] = '\0';
        const char *want = na_ruleset_tag(rs, t)->name;
        if (strcmp(dst, want) != 0) {
            na_error_set(err, "%s: tag %u is '%s' in the model and '%s' in the rules", path,
                         t + 1, dst, want);
            goto fail;
        }
        struct na_model_tag *mt = &m->tags[t];
        mt->name = dst;
        mt->bias = get_f64(&r);
        mt->platt_a = get_f64(&r);
        mt->platt_b = get_f64(&r);
        mt->threshold = get_f64(&r);
        if (r.short_read)
            goto truncated;
        if (!isfinite(mt->bias) || !isfinite(mt->platt_a) || !isfinite(mt->platt_b) ||
            !(mt->threshold > 0 && mt->threshold < 1)) {
            na_error_set(err, "%s: tag '%s' has a bias, calibration or threshold out of range",
                         path, dst);
            goto fail;
        }
    }
    uint64_t need = (uint64_t)n_features * (8 + 4ull * n_tags), have = r.n - r.off;
    if (need > have)
        goto truncated;
    if (need < have) {
        na_error_set(err, "%s: %llu bytes after the weights that do not belong there", path,
                     (unsigned long long)(have - need));
        goto fail;
    }
    uint32_t cap = 16;
    while (cap < 2ull * n_features)
        cap <<= 1;
    m->mask = cap - 1;
    m->n_features = n_features;
    m->table = calloc(cap, sizeof(*m->table));
    m->stride = 1 + n_tags;
    m->rowdata = malloc(((size_t)n_features * m->stride + 1) * sizeof(*m->rowdata));
    if (!m->table || !m->rowdata)
        goto oom;
    uint32_t prev = 0;
    for (uint32_t i = 0; i < n_features; i++) {
        uint32_t key = get_u32(&r);
        if (key <= prev) {
            na_error_set(err, "%s: feature %u is out of order or zero", path, i);
            goto fail;
        }
        prev = key;
        uint32_t s = slot_of(key, m->mask);
        while (m->table[s].key)
            s = (s + 1) & m->mask;
        m->table[s] = (struct model_slot){key, i};
    }
    for (uint32_t i = 0; i < n_features; i++) {
        float idf = m->rowdata[i * m->stride] = get_f32(&r);
        if (!(idf > 0 && idf < 1e6f)) {
            na_error_set(err, "%s: feature %u's idf is out of range", path, i);
            goto fail;
        }
    }
    for (size_t i = 0; i < (size_t)n_features * n_tags; i++) {
        float w = m->rowdata[i / n_tags * m->stride + 1 + i % n_tags] = get_f32(&r);
        if (!isfinite(w)) {
            na_error_set(err, "%s: weight %zu is not a finite number", path, i);
            goto fail;
        }
    }
    for (int i = 0; i < 8; i++)
        snprintf(m->version + 2 * i, 3, "%02x", digest[i]);
    for (int c = 1; c < TF_COUNTS; c++)
        m->tf[c] = 1.0 + log(c);
    free(file);
    return m;
truncated:
    na_error_set(err, "%s: truncated", path);
    goto fail;
oom:
    na_error_set(err, "%s: out of memory", path);
fail:
    na_model_free(m);
    free(file);
    return NULL;
}

void na_model_free(struct na_model *m)
{
    if (m == NULL)
        return;
    free(m->rowdata);
    free(m->table);
    free(m->names);
    free(m);
}

const char *na_model_version(const struct na_model *m)
{
    return m->version;
}

bool na_model_rules_match(const struct na_model *m, const struct na_ruleset *rs)
{
    unsigned char d[16];
    na_ruleset_digest(rs, d);
    return memcmp(d, m->rules_digest, 16) == 0;
}

size_t na_model_feature_count(const struct na_model *m)
{
    return m->n_features;
}

double na_model_threshold(const struct na_model *m, unsigned tag)
{
    return m->tags[tag].threshold;
}

static long row_index(const struct na_model *m, uint32_t key)
{
    for (uint32_t s = slot_of(key, m->mask);; s = (s + 1) & m->mask) {
        if (m->table[s].key == key)
            return m->table[s].row;
        if (m->table[s].key == 0)
            return -1;
    }
}

/* One n-gram of the article that the model knows. */
struct na_model_slot {
    uint32_t gen; /* the article it belongs to: another's is an empty slot */
    uint32_t row; /* the model's row + 1 */
    uint32_t count;
    double value; /* its TF-IDF value before the article is scaled */
};

void na_model_scratch_release(struct na_model_scratch *s)
{
    free(s->slot);
    free(s->order);
    *s = (struct na_model_scratch){0};
}

/* The slot of row in this article, or the empty one where it would go. */
static uint32_t scratch_find(const struct na_model_scratch *s, uint32_t row)
{
    for (uint32_t k = (row * 0x9e3779b1u) & s->mask;; k = (k + 1) & s->mask)
        if (s->slot[k].gen != s->gen || s->slot[k].row == row + 1)
            return k;
}

/* Room for n distinct n-grams at half load, and every slot empty: the
 * slots are stamped with the article's number, so that emptying them is a
 * new number rather than a pass over them all. */
static int scratch_reset(struct na_model_scratch *s, size_t n)
{
    size_t want = 16;
    while (want < 2 * n)
        want <<= 1;
    if (want > s->cap) {
        struct na_model_slot *slot = calloc(want, sizeof(*slot));
        uint32_t *order = malloc(want / 2 * sizeof(*order));
        if (slot == NULL || order == NULL) {
            free(slot);
            free(order);
            return -1;
        }
        free(s->slot);
        free(s->order);
        s->slot = slot;
        s->order = order;
        s->cap = want;
    }
    s->mask = (uint32_t)(want - 1);
    if (++s->gen == 0) { /* wrapped: old stamps could pass for new */
        memset(s->slot, 0, s->cap * sizeof(*s->slot));
        s->gen = 1;
    }
    s->used = 0;
    return 0;
}

double na_model_tfidf(double count, double idf)
{
    return (1.0 + log(count)) * idf;
}

int na_model_decide(const struct na_model *m, const uint32_t *hash, size_t n,
                    struct na_model_scratch *s, double *decision)
{
    double d[NA_MAX_TAGS] = {0}, norm2 = 0;
    const size_t n_tags = m->n_tags, stride = m->stride;
    const struct model_slot *table = m->table;
    const float *rowdata = m->rowdata;
    const uint32_t mask = m->mask;
    if (scratch_reset(s, n) < 0)
        return -1;
    struct na_model_slot *slot = s->slot;
    const uint32_t gen = s->gen;
    /* The model's tables are larger than a cache: each lookup is a miss,
     * so the slot of an n-gram some way ahead is fetched while this one is
     * looked up, and a known n-gram's row while the article is counted. */
    enum { AHEAD = 8 };
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n)
            __builtin_prefetch(&table[slot_of(hash[i + AHEAD], mask)]);
        long row = row_index(m, hash[i]);
        if (row < 0)
            continue;
        __builtin_prefetch(&rowdata[(size_t)row * stride]);
        uint32_t k = scratch_find(s, (uint32_t)row);
        struct na_model_slot *sl = &slot[k];
        if (sl->gen != gen) {
            *sl = (struct na_model_slot){.gen = gen, .row = (uint32_t)row + 1};
            s->order[s->used++] = k;
        }
        sl->count++;
    }
    /* First-seen order: the same article sums in the same order. */
    const uint32_t *order = s->order;
    for (size_t k = 0, used = s->used; k < used; k++) {
        struct na_model_slot *sl = &slot[order[k]];
        size_t row = sl->row - 1;
        /* as na_model_tfidf, with 1 + ln count from the table */
        const float *rd = &rowdata[row * stride], *w = rd + 1;
        double v = sl->count < TF_COUNTS ? m->tf[sl->count] * rd[0]
                                         : na_model_tfidf(sl->count, rd[0]);
        sl->value = v;
        norm2 += v * v;
        /* Each tag's sum on its own, in the same order whatever the count;
         * a few tags, as rule sets have, unrolled. */
        switch (n_tags) {
        case 4:
            d[3] += (double)w[3] * v;
            /* fall through */
        case 3:
            d[2] += (double)w[2] * v;
            /* fall through */
        case 2:
            d[1] += (double)w[1] * v;
            /* fall through */
        case 1:
            d[0] += (double)w[0] * v;
            break;
        default:
            for (size_t t = 0; t < n_tags; t++)
                d[t] += (double)w[t] * v;
        }
    }
    double scale = norm2 > 0 ? 1.0 / sqrt(norm2) : 0;
    s->scale = scale; /* na_model_value scales the one it is asked for */
    for (size_t t = 0; t < m->n_tags; t++)
        decision[t] = m->tags[t].bias + d[t] * scale;
    return 0;
}

double na_model_value(const struct na_model *m, const struct na_model_scratch *s,
                      uint32_t hash)
{
    long row = row_index(m, hash);
    if (row < 0 || s->cap == 0)
        return 0;
    const struct na_model_slot *sl = &s->slot[scratch_find(s, (uint32_t)row)];
    return sl->gen == s->gen ? sl->value * (s->scale / sl->count) : 0;
}

double na_model_probability(const struct na_model *m, unsigned tag, double decision)
{
    double z = m->tags[tag].platt_a * decision + m->tags[tag].platt_b;
    return 1.0 / (1.0 + exp(-z));
}

double na_model_weight(const struct na_model *m, unsigned tag, uint32_t hash)
{
    long row = row_index(m, hash);
    return row >= 0 ? m->rowdata[(size_t)row * m->stride + 1 + tag] : 0;
}
