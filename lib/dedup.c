/* The dedup window: chained hash table plus recency list. Entries are
 * allocated one by one with their key inline; there are at most capacity of
 * them, so memory follows the configuration, not the input. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "newsalert/dedup.h"

struct entry {
    struct entry *prev, *next; /* recency: head is the most recent */
    struct entry *chain;       /* next in the hash bucket */
    uint64_t hash;
    uint64_t seq;
    uint32_t revision;
    size_t source_len, id_len;
    char key[]; /* source, NUL, id, NUL */
};

struct na_dedup {
    size_t capacity, count;
    struct entry **buckets;
    size_t n_buckets; /* a power of two, >= capacity */
    struct entry *head, *tail;
    uint64_t seed;
};

/* FNV-1a over the seed and the key, then a 64-bit finaliser (from
 * MurmurHash3's fmix64) so that the low bits used for the bucket depend on
 * every input byte. */
static uint64_t hash_key(uint64_t seed, const char *source, size_t sl, const char *id,
                         size_t il)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < sl; i++)
        h = (h ^ (uint8_t)source[i]) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull; /* ("ab", "c") differs from ("a", "bc") */
    for (size_t i = 0; i < il; i++)
        h = (h ^ (uint8_t)id[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static size_t buckets_for(size_t capacity)
{
    size_t n = 16;
    while (n < capacity && n < ((size_t)1 << 62))
        n <<= 1;
    return n;
}

struct na_dedup *na_dedup_new(size_t capacity)
{
    struct na_dedup *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->capacity = capacity ? capacity : 1;
    d->n_buckets = buckets_for(d->capacity);
    d->buckets = calloc(d->n_buckets, sizeof(*d->buckets));
    if (d->buckets == NULL) {
        free(d);
        return NULL;
    }
    if (getrandom(&d->seed, sizeof(d->seed), GRND_NONBLOCK) != sizeof(d->seed)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        d->seed = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20 ^ (uint64_t)getpid();
    }
    return d;
}

void na_dedup_free(struct na_dedup *d)
{
    if (d == NULL)
        return;
    for (struct entry *e = d->head, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    free(d->buckets);
    free(d);
}

static void list_unlink(struct na_dedup *d, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        d->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        d->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_head(struct na_dedup *d, struct entry *e)
{
    e->prev = NULL;
    e->next = d->head;
    if (d->head)
        d->head->prev = e;
    d->head = e;
    if (d->tail == NULL)
        d->tail = e;
}

static struct entry **bucket_of(const struct na_dedup *d, uint64_t hash)
{
    return &d->buckets[hash & (d->n_buckets - 1)];
}

static struct entry *find(const struct na_dedup *d, const char *source, const char *id,
                          uint64_t *hash_out, size_t *sl, size_t *il)
{
    *sl = strlen(source);
    *il = strlen(id);
    uint64_t h = hash_key(d->seed, source, *sl, id, *il);
    *hash_out = h;
    for (struct entry *e = *bucket_of(d, h); e; e = e->chain)
        if (e->hash == h && e->source_len == *sl && e->id_len == *il &&
            memcmp(e->key, source, *sl) == 0 && memcmp(e->key + *sl + 1, id, *il) == 0)
            return e;
    return NULL;
}

static void bucket_remove(struct na_dedup *d, struct entry *e)
{
    for (struct entry **p = bucket_of(d, e->hash); *p; p = &(*p)->chain)
        if (*p == e) {
            *p = e->chain;
            return;
        }
}

static void evict_lru(struct na_dedup *d)
{
    struct entry *e = d->tail;
    list_unlink(d, e);
    bucket_remove(d, e);
    free(e);
    d->count--;
}

enum na_dedup_verdict na_dedup_check(struct na_dedup *d, const char *source,
                                     const char *id, uint32_t revision,
                                     uint64_t *prev_seq)
{
    uint64_t h;
    size_t sl, il;
    struct entry *e = find(d, source, id, &h, &sl, &il);

    if (prev_seq)
        *prev_seq = 0;
    if (e == NULL)
        return NA_DEDUP_NEW;
    list_unlink(d, e);
    list_push_head(d, e);
    if (revision <= e->revision)
        return NA_DEDUP_DUPLICATE;
    if (prev_seq)
        *prev_seq = e->seq;
    return NA_DEDUP_REVISION;
}

int na_dedup_record(struct na_dedup *d, const char *source, const char *id,
                    uint32_t revision, uint64_t seq)
{
    uint64_t h;
    size_t sl, il;
    struct entry *e = find(d, source, id, &h, &sl, &il);

    if (e) {
        if (revision > e->revision)
            e->revision = revision;
        if (seq)
            e->seq = seq;
        list_unlink(d, e);
        list_push_head(d, e);
        return 0;
    }
    e = malloc(sizeof(*e) + sl + il + 2);
    if (e == NULL)
        return -1;
    if (d->count == d->capacity)
        evict_lru(d);
    e->hash = h;
    e->seq = seq;
    e->revision = revision;
    e->source_len = sl;
    e->id_len = il;
    memcpy(e->key, source, sl + 1);
    memcpy(e->key + sl + 1, id, il + 1);
    struct entry **b = bucket_of(d, h);
    e->chain = *b;
    *b = e;
    list_push_head(d, e);
    d->count++;
    return 0;
}

int na_dedup_resize(struct na_dedup *d, size_t capacity)
{
    if (capacity == 0)
        capacity = 1;
    size_t n = buckets_for(capacity);
    if (n != d->n_buckets) {
        struct entry **b = calloc(n, sizeof(*b));
        if (b == NULL)
            return -1;
        free(d->buckets);
        d->buckets = b;
        d->n_buckets = n;
        for (struct entry *e = d->head; e; e = e->next) {
            struct entry **slot = bucket_of(d, e->hash);
            e->chain = *slot;
            *slot = e;
        }
    }
    d->capacity = capacity;
    while (d->count > d->capacity)
        evict_lru(d);
    return 0;
}

size_t na_dedup_count(const struct na_dedup *d)
{
    return d->count;
}

size_t na_dedup_capacity(const struct na_dedup *d)
{
    return d->capacity;
}
