/* The catch-up request, as the daemon's ROUTER receives it: decoding and
 * every check in one pure function, so the daemon and the fuzzer run the
 * very same code. */
#ifndef NEWSALERT_CATCHUP_H
#define NEWSALERT_CATCHUP_H

#include <stddef.h>
#include <stdint.h>

#include "newsalert/error.h"
#include "newsalert/v1/catchup.pb-c.h"

#define NA_CATCHUP_MAX_TAGS 16

struct na_catchup_limits {
    uint64_t max_range;      /* largest until_seq - since_seq */
    const char *const *tags; /* the tags the rules define */
    size_t n_tags;
};

/* Decodes and checks one request. Returns it (free with
 * newsalert__v1__catchup_request__free_unpacked), or NULL with the reason
 * for the ERROR reply in err: not a CatchupRequest, until_seq below
 * since_seq, a range over max_range, too many tags, an unknown tag. */
Newsalert__V1__CatchupRequest *na_catchup_request_parse(const uint8_t *data, size_t len,
                                                        const struct na_catchup_limits *l,
                                                        struct na_error *err);

#endif
