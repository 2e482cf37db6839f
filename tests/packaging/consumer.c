/* A program from outside the project, built against an installed
 * libnewsalert with nothing but `pkg-config --cflags --libs newsalert`: it
 * encodes an Article with the installed protobuf-c header, decodes it, and
 * tags it with the installed rules. Used by the install and package tests. */
#include <newsalert/article.h>
#include <newsalert/ruleset.h>
#include <newsalert/tagger.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    Newsalert__V1__Article a = NEWSALERT__V1__ARTICLE__INIT;
    struct na_limits limits;
    struct na_error err;
    enum na_reject why;
    char msg[256];

    if (argc != 3) {
        fprintf(stderr, "usage: consumer RULES_DIR ACTORS_FILE\n");
        return 64;
    }
    a.id = "consumer-1";
    a.source = "test";
    a.headline = "NATO allies pledge new military aid package for Ukraine";
    a.body = "NATO leaders meeting at their summit in Washington pledged a new "
             "military aid package for Ukraine, including air defence systems.";
    size_t len = newsalert__v1__article__get_packed_size(&a);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return 1;
    newsalert__v1__article__pack(&a, buf);
    na_limits_default(&limits);
    Newsalert__V1__Article *d =
        na_article_decode(buf, len, &limits, &why, msg, sizeof(msg));
    free(buf);
    if (d == NULL) {
        fprintf(stderr, "consumer: decode: %s: %s\n", na_reject_name(why), msg);
        return 1;
    }
    struct na_ruleset *rs = na_ruleset_load(argv[1], argv[2], &err);
    if (rs == NULL) {
        fprintf(stderr, "consumer: %s\n", err.msg);
        na_article_free(d);
        return 1;
    }
    struct na_tagger_limits tl = {.max_matches = 4096, .max_evidence = 3};
    struct na_tagger *t = na_tagger_new(rs, &tl, &err);
    const struct na_result *res;
    int rc = 1;
    if (t && na_tagger_tag(t, d->headline, strlen(d->headline), d->body, strlen(d->body),
                           &res, &err) == 0) {
        printf("fired:");
        for (size_t i = 0; i < na_ruleset_tag_count(rs); i++)
            if (res->tags[i].fired)
                printf(" %s", na_ruleset_tag(rs, i)->name);
        printf("\n");
        rc = res->n_fired > 0 ? 0 : 1;
    } else {
        fprintf(stderr, "consumer: %s\n", err.msg);
    }
    na_tagger_free(t);
    na_ruleset_free(rs);
    na_article_free(d);
    return rc;
}
