/* Catch-up requests: decode, then refuse what makes no sense or asks for
 * too much before any journal is touched. */
#include <string.h>

#include "newsalert/catchup.h"

Newsalert__V1__CatchupRequest *na_catchup_request_parse(const uint8_t *data, size_t len,
                                                        const struct na_catchup_limits *l,
                                                        struct na_error *err)
{
    Newsalert__V1__CatchupRequest *req =
        newsalert__v1__catchup_request__unpack(NULL, len, data);
    if (req == NULL) {
        na_error_set(err, "not a newsalert.v1.CatchupRequest");
        return NULL;
    }
    if (req->until_seq && req->until_seq < req->since_seq)
        na_error_set(err, "until_seq %llu is below since_seq %llu",
                     (unsigned long long)req->until_seq,
                     (unsigned long long)req->since_seq);
    else if (req->until_seq && req->until_seq - req->since_seq > l->max_range)
        na_error_set(err, "the range %llu..%llu is larger than %llu alerts",
                     (unsigned long long)req->since_seq,
                     (unsigned long long)req->until_seq,
                     (unsigned long long)l->max_range);
    else if (req->n_tags > NA_CATCHUP_MAX_TAGS)
        na_error_set(err, "%zu tags; at most %d", req->n_tags, NA_CATCHUP_MAX_TAGS);
    else {
        for (size_t i = 0; i < req->n_tags; i++) {
            size_t k = 0;
            while (k < l->n_tags && strcmp(req->tags[i], l->tags[k]) != 0)
                k++;
            if (k == l->n_tags) {
                na_error_set(err, "unknown tag '%.60s'", req->tags[i]);
                goto refuse;
            }
        }
        return req;
    }
refuse:
    newsalert__v1__catchup_request__free_unpacked(req, NULL);
    return NULL;
}
