/* The dedup window: a chained hash table plus a recency list, over one array
 * of fixed-size entries linked by index.
 *
 * An entry holds a 128-bit keyed hash of (source, id) instead of the strings:
 * 40 bytes whatever the ids' length and no allocation per article, so the
 * default window of 100,000 articles takes 4 MiB. The hash is
 * SipHash-2-4 with 128-bit output (libsodium's crypto_shorthash_siphashx24)
 * under a random key drawn per process: two different articles are taken for
 * one with a probability of about 2^-128 per pair, and whoever writes the ids
 * cannot aim for that without the key. The hash's low bits pick the bucket. */
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "newsalert/dedup.h"

/* Indices into entries are 1-based: 0 is "none", so that a zeroed bucket
 * array is an empty one. */
struct entry {
    uint64_t key[2];
    uint64_t seq;
    uint32_t revision;
    uint32_t prev, next; /* recency: head is the most recent */
    uint32_t chain;      /* next in the hash bucket */
};

struct na_dedup {
    size_t capacity, count;
    struct entry *entries; /* count used, cap_entries allocated */
    size_t cap_entries;
    uint32_t *buckets;
    size_t n_buckets; /* a power of two, >= capacity */
    uint32_t head, tail;
    unsigned char hash_key[crypto_shorthash_siphashx24_KEYBYTES];
};

/* The hashed bytes are source, NUL, id: C strings have no NUL of their own,
 * so ("ab", "c") and ("a", "bc") differ. A key too long for the stack buffer
 * (ids are short in practice) goes through keyed BLAKE2b instead, also with
 * 128-bit output, which libsodium can feed piece by piece. */
static void hash_article(const struct na_dedup *d, const char *source, const char *id,
                         uint64_t out[2])
{
    size_t sl = strlen(source), il = strlen(id);
    unsigned char buf[256];

    if (sl + il + 1 <= sizeof(buf)) {
        memcpy(buf, source, sl);
        buf[sl] = '\0';
        memcpy(buf + sl + 1, id, il);
        crypto_shorthash_siphashx24((unsigned char *)out, buf, sl + il + 1, d->hash_key);
        return;
    }
    crypto_generichash_state st;
    crypto_generichash_init(&st, d->hash_key, sizeof(d->hash_key), 2 * sizeof(uint64_t));
    crypto_generichash_update(&st, (const unsigned char *)source, sl + 1);
    crypto_generichash_update(&st, (const unsigned char *)id, il);
    crypto_generichash_final(&st, (unsigned char *)out, 2 * sizeof(uint64_t));
}

static size_t buckets_for(size_t capacity)
{
    size_t n = 16;
    while (n < capacity && n < ((size_t)1 << 62))
        n <<= 1;
    return n;
}

static void random_key(unsigned char *key, size_t n)
{
    if (getrandom(key, n, GRND_NONBLOCK) == (ssize_t)n)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t mix[2] = {(uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20,
                       (uint64_t)getpid() * 0x9e3779b97f4a7c15ull};
    memcpy(key, mix, n < sizeof(mix) ? n : sizeof(mix));
}

struct na_dedup *na_dedup_new(size_t capacity)
{
    struct na_dedup *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    /* The indices are 32 bits wide; the configuration caps the window far
     * below that. */
    if (capacity == 0)
        capacity = 1;
    if (capacity > UINT32_MAX - 1)
        capacity = UINT32_MAX - 1;
    d->capacity = capacity;
    /* Lets libsodium pick its fastest BLAKE2b. Both hashes work without it,
     * so its result (a failure is only ever of its random source) is not
     * needed. */
    int sodium = sodium_init();
    (void)sodium;
    d->n_buckets = buckets_for(d->capacity);
    d->buckets = calloc(d->n_buckets, sizeof(*d->buckets));
    if (d->buckets == NULL) {
        free(d);
        return NULL;
    }
    random_key(d->hash_key, sizeof(d->hash_key));
    return d;
}

void na_dedup_free(struct na_dedup *d)
{
    if (d == NULL)
        return;
    free(d->entries);
    free(d->buckets);
    free(d);
}

static struct entry *at(const struct na_dedup *d, uint32_t i)
{
    return &d->entries[i - 1];
}

static void list_unlink(struct na_dedup *d, uint32_t i)
{
    struct entry *e = at(d, i);
    if (e->prev)
        at(d, e->prev)->next = e->next;
    else
        d->head = e->next;
    if (e->next)
        at(d, e->next)->prev = e->prev;
    else
        d->tail = e->prev;
    e->prev = e->next = 0;
}

static void list_push_head(struct na_dedup *d, uint32_t i)
{
    struct entry *e = at(d, i);
    e->prev = 0;
    e->next = d->head;
    if (d->head)
        at(d, d->head)->prev = i;
    d->head = i;
    if (d->tail == 0)
        d->tail = i;
}

static uint32_t *bucket_of(const struct na_dedup *d, const uint64_t key[2])
{
    return &d->buckets[key[0] & (d->n_buckets - 1)];
}

static uint32_t find(const struct na_dedup *d, const uint64_t key[2])
{
    for (uint32_t i = *bucket_of(d, key); i; i = at(d, i)->chain)
        if (at(d, i)->key[0] == key[0] && at(d, i)->key[1] == key[1])
            return i;
    return 0;
}

static void bucket_remove(struct na_dedup *d, uint32_t i)
{
    for (uint32_t *p = bucket_of(d, at(d, i)->key); *p; p = &at(d, *p)->chain)
        if (*p == i) {
            *p = at(d, i)->chain;
            return;
        }
}

static void bucket_add(struct na_dedup *d, uint32_t i)
{
    uint32_t *b = bucket_of(d, at(d, i)->key);
    at(d, i)->chain = *b;
    *b = i;
}

enum na_dedup_verdict na_dedup_check(struct na_dedup *d, const char *source,
                                     const char *id, uint32_t revision,
                                     uint64_t *prev_seq)
{
    uint64_t key[2];
    hash_article(d, source, id, key);
    uint32_t i = find(d, key);

    if (prev_seq)
        *prev_seq = 0;
    if (i == 0)
        return NA_DEDUP_NEW;
    list_unlink(d, i);
    list_push_head(d, i);
    struct entry *e = at(d, i);
    if (revision <= e->revision)
        return NA_DEDUP_DUPLICATE;
    if (prev_seq)
        *prev_seq = e->seq;
    return NA_DEDUP_REVISION;
}

int na_dedup_record(struct na_dedup *d, const char *source, const char *id,
                    uint32_t revision, uint64_t seq)
{
    uint64_t key[2];
    hash_article(d, source, id, key);
    uint32_t i = find(d, key);

    if (i) {
        struct entry *e = at(d, i);
        if (revision > e->revision)
            e->revision = revision;
        if (seq)
            e->seq = seq;
        list_unlink(d, i);
        list_push_head(d, i);
        return 0;
    }
    if (d->count == d->capacity) {
        /* Full: the least recently used entry's place is taken. */
        i = d->tail;
        list_unlink(d, i);
        bucket_remove(d, i);
    } else {
        if (d->count == d->cap_entries) {
            /* Grown as it fills, so that a large window costs memory only
             * once it holds that many articles. */
            size_t cap = d->cap_entries ? d->cap_entries * 2 : 1024;
            if (cap > d->capacity)
                cap = d->capacity;
            struct entry *p = realloc(d->entries, cap * sizeof(*p));
            if (p == NULL)
                return -1;
            d->entries = p;
            d->cap_entries = cap;
        }
        i = (uint32_t)++d->count;
    }
    *at(d, i) = (struct entry){.key = {key[0], key[1]}, .seq = seq, .revision = revision};
    bucket_add(d, i);
    list_push_head(d, i);
    return 0;
}

int na_dedup_resize(struct na_dedup *d, size_t capacity)
{
    if (capacity == 0)
        capacity = 1;
    if (capacity > UINT32_MAX - 1)
        capacity = UINT32_MAX - 1;
    if (d->count <= capacity && buckets_for(capacity) == d->n_buckets) {
        d->capacity = capacity; /* every entry stays where it is */
        return 0;
    }
    size_t keep = d->count < capacity ? d->count : capacity;
    size_t n = buckets_for(capacity);
    uint32_t *b = calloc(n, sizeof(*b));
    struct entry *p = malloc((keep ? keep : 1) * sizeof(*p));
    if (b == NULL || p == NULL) {
        free(b);
        free(p);
        return -1;
    }
    /* The kept entries, most recent first, are packed into a new array in
     * that order, which is then their recency list. */
    size_t k = 0;
    for (uint32_t i = d->head; i && k < keep; i = at(d, i)->next, k++) {
        p[k] = *at(d, i);
        p[k].prev = (uint32_t)k;                          /* 1-based: the one before */
        p[k].next = k + 1 < keep ? (uint32_t)(k + 2) : 0; /* and the one after */
    }
    free(d->entries);
    free(d->buckets);
    d->entries = p;
    d->cap_entries = keep ? keep : 1;
    d->buckets = b;
    d->n_buckets = n;
    d->capacity = capacity;
    d->count = keep;
    d->head = keep ? 1 : 0;
    d->tail = (uint32_t)keep;
    for (uint32_t i = 1; i <= keep; i++)
        bucket_add(d, i);
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
