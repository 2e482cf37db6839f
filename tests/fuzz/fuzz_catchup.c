/* libFuzzer target for the catch-up request parser: arbitrary bytes as the
 * one frame a client sends. A request that is accepted must be within the
 * limits it was checked against. */
#include "fuzz.h"
#include "newsalert/catchup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const tags[] = {"aid", "alliance", "summit"};
    struct na_catchup_limits l = {1000000, tags, 3};
    struct na_error err = {{0}};
    Newsalert__V1__CatchupRequest *r = na_catchup_request_parse(data, size, &l, &err);
    if (r == NULL) {
        FUZZ_CHECK(err.msg[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(r->until_seq == 0 || r->until_seq >= r->since_seq);
    FUZZ_CHECK(r->until_seq == 0 || r->until_seq - r->since_seq <= l.max_range);
    FUZZ_CHECK(r->n_tags <= NA_CATCHUP_MAX_TAGS);
    newsalert__v1__catchup_request__free_unpacked(r, NULL);
    return 0;
}
