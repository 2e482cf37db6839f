/* libFuzzer target: na_article_decode (protobuf-c decode plus validation)
 * with the daemon's default limits, on arbitrary bytes. An article that is
 * accepted must be well formed, survive a re-encoding unchanged in verdict,
 * and pass na_article_check on its own. */
#include <string.h>

#include "fuzz.h"
#include "newsalert/article.h"
#include "newsalert/utf8.h"

static void check_string(const char *s)
{
    FUZZ_CHECK(s == NULL || na_utf8_valid(s, strlen(s)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct na_limits lim;
    enum na_reject why = NA_REJECT_NONE;
    char msg[256] = "";

    na_limits_default(&lim);
    Newsalert__V1__Article *a =
        na_article_decode(data, size, &lim, &why, msg, sizeof(msg));
    if (a == NULL) {
        /* A rejection always has a named reason and a message. */
        FUZZ_CHECK(why > NA_REJECT_NONE && why < NA_REJECT_COUNT);
        FUZZ_CHECK(strcmp(na_reject_name(why), "unknown") != 0);
        FUZZ_CHECK(msg[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(why == NA_REJECT_NONE);
    FUZZ_CHECK(a->id != NULL && a->id[0] != '\0');
    check_string(a->id);
    check_string(a->source);
    check_string(a->url);
    check_string(a->headline);
    check_string(a->body);
    check_string(a->language);
    FUZZ_CHECK(a->n_authors <= lim.max_authors);
    for (size_t i = 0; i < a->n_authors; i++)
        check_string(a->authors[i]);
    FUZZ_CHECK(na_article_check(a, &lim, msg, sizeof(msg)) == NA_REJECT_NONE);

    /* Re-encoded, it decodes again to the same article. */
    size_t len = newsalert__v1__article__get_packed_size(a);
    uint8_t *buf = malloc(len ? len : 1);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(newsalert__v1__article__pack(a, buf) == len);
    Newsalert__V1__Article *b = na_article_decode(buf, len, &lim, &why, msg, sizeof(msg));
    FUZZ_CHECK(b != NULL);
    FUZZ_CHECK(strcmp(a->id, b->id) == 0);
    FUZZ_CHECK(a->n_authors == b->n_authors);
    FUZZ_CHECK(a->feed_seq == b->feed_seq && a->revision == b->revision);
    FUZZ_CHECK(a->published_at_ms == b->published_at_ms);
    FUZZ_CHECK(strcmp(a->headline ? a->headline : "", b->headline ? b->headline : "") ==
               0);
    FUZZ_CHECK(strcmp(a->body ? a->body : "", b->body ? b->body : "") == 0);
    na_article_free(b);
    free(buf);
    na_article_free(a);
    return 0;
}
