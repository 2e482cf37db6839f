/* The dedup window: a bounded LRU of the articles seen, keyed by (source,
 * id), with the highest revision seen and the seq of the latest alert it
 * produced. newsalertd asks it before tagging, so that the same (source, id,
 * revision) twice gives one alert and a higher revision is marked as an
 * update of the earlier alert:
 *
 *   switch (na_dedup_check(d, src, id, rev, &prev)) {
 *   case NA_DEDUP_DUPLICATE: count it, done;
 *   case NA_DEDUP_REVISION:  tag; the alert's "updates" is prev (0: none);
 *   case NA_DEDUP_NEW:       tag;
 *   }
 *   na_dedup_record(d, src, id, rev, alert_seq_or_0);
 *
 * O(1) per call: a hash table plus a doubly linked recency list. An entry
 * keeps a 128-bit keyed hash of (source, id), not the strings: 40 bytes an
 * article, whatever its id. The key is drawn per process, so crafted ids
 * cannot force a collision, and a chance one is about 2^-128 per pair.
 * Memory grows with the entries up to the capacity. On a reload,
 * na_dedup_resize keeps the entries (the most recent ones when shrinking).
 * After a restart the daemon can refill it from the journal's latest
 * alerts. */
#ifndef NEWSALERT_DEDUP_H
#define NEWSALERT_DEDUP_H

#include <stddef.h>
#include <stdint.h>

enum na_dedup_verdict {
    NA_DEDUP_NEW,       /* (source, id) not in the window */
    NA_DEDUP_DUPLICATE, /* this revision or a higher one was seen */
    NA_DEDUP_REVISION,  /* a higher revision than any seen */
};

struct na_dedup;

/* capacity >= 1 entries. Returns NULL when out of memory. The caller owns
 * the window (na_dedup_free). */
struct na_dedup *na_dedup_new(size_t capacity);
/* Accepts NULL. */
void na_dedup_free(struct na_dedup *d);

/* Looks (source, id) up; a hit becomes the most recently used. For
 * NA_DEDUP_REVISION, *prev_seq (when not NULL) is the seq of the latest
 * alert recorded for the article, 0 if none; otherwise it is set to 0 too.
 * Changes nothing else: call na_dedup_record once the article is handled. */
enum na_dedup_verdict na_dedup_check(struct na_dedup *d, const char *source,
                                     const char *id, uint32_t revision,
                                     uint64_t *prev_seq);

/* Records that (source, id, revision) was handled and produced alert seq
 * (0: no alert). The entry keeps the highest revision, and the seq of the
 * latest alert (a seq of 0 leaves an earlier alert's seq in place). It
 * becomes the most recently used; when the window is full, the least
 * recently used entry is evicted. -1 when out of memory (the window is
 * unchanged). */
int na_dedup_record(struct na_dedup *d, const char *source, const char *id,
                    uint32_t revision, uint64_t seq);

/* Changes the capacity, keeping the entries (when shrinking, the most
 * recently used ones). -1 when out of memory (the window is unchanged). */
int na_dedup_resize(struct na_dedup *d, size_t capacity);

size_t na_dedup_count(const struct na_dedup *d);
size_t na_dedup_capacity(const struct na_dedup *d);

#endif
