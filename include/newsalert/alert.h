/* Turning a tagging result into a newsalert.v1.Alert, and an Alert into
 * JSON for people and scripts. */
#ifndef NEWSALERT_ALERT_H
#define NEWSALERT_ALERT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/article.h"
#include "newsalert/tagger.h"
#include "newsalert/v1/alert.pb-c.h"

struct na_alert_meta {
    uint64_t seq;
    uint64_t epoch;
    int64_t received_at_ms;
    uint64_t update_of; /* a revision's earlier alert (0: none) */
};

struct na_alert_builder;

/* max_evidence_bytes caps each evidence sentence (cut on a UTF-8
 * boundary). Returns NULL when out of memory. */
struct na_alert_builder *na_alert_builder_new(size_t max_evidence_bytes);
void na_alert_builder_free(struct na_alert_builder *b);

/* Builds the alert for an article whose result has fired tags. The returned
 * message is owned by the builder and valid until the next build; it borrows
 * strings from article, which must stay alive while it is used. topic,
 * topic_seq and topics are left empty for the publisher to fill. */
Newsalert__V1__Alert *na_alert_build(struct na_alert_builder *b,
                                     const Newsalert__V1__Article *article,
                                     const struct na_result *res,
                                     const struct na_ruleset *rs,
                                     const struct na_alert_meta *meta);

/* A new JSON object (the caller owns the reference) with every field of the
 * alert by its proto name; enums as lower-case words; the 64-bit fields
 * (seq, topic_seq, epoch, the times, feed_seq, update_of, topics' seq) as
 * decimal strings, as in protobuf's JSON mapping. */
json_t *na_alert_to_json(const Newsalert__V1__Alert *alert);

#endif
