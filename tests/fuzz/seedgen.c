/* Builds the generated part of the fuzzers' seed corpora from a recorded
 * feed that `newsalert pack` wrote at build time, so that no binary seed is
 * committed:
 *
 *   na_fuzz_seeds FEED DIR
 *
 * writes DIR/article/<n> (each record's Article frame, malformed ones
 * included) and DIR/tagger/<n> ("headline\nbody" of each article that
 * decodes). */
#include "fuzz.h"
#include "newsalert/article.h"
#include "newsalert/feedfile.h"

int main(int argc, char **argv)
{
    struct na_error err = {{0}};
    struct na_record rec;
    struct na_limits lim;
    char dir[PATH_MAX], name[32];
    size_t n = 0;
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: na_fuzz_seeds FEED DIR\n");
        return 64;
    }
    na_limits_default(&lim);
    struct na_feed_reader *r = na_feed_reader_open(argv[1], &err);
    if (r == NULL) {
        fprintf(stderr, "na_fuzz_seeds: %s\n", err.msg);
        return 1;
    }
    while ((rc = na_feed_reader_next(r, &rec, &err)) == 1) {
        const struct na_frame *f = &rec.frames[rec.n_frames - 1];
        enum na_reject why;
        snprintf(name, sizeof(name), "seed-%zu", ++n);
        snprintf(dir, sizeof(dir), "%s/article", argv[2]);
        fuzz_write(dir, name, f->data, f->len, NULL);
        Newsalert__V1__Article *a =
            na_article_decode(f->data, f->len, &lim, &why, NULL, 0);
        if (a == NULL)
            continue;
        size_t hl = strlen(a->headline), bl = strlen(a->body);
        char *text = malloc(hl + bl + 2);
        if (text == NULL)
            return 1;
        memcpy(text, a->headline, hl);
        text[hl] = '\n';
        memcpy(text + hl + 1, a->body, bl);
        snprintf(dir, sizeof(dir), "%s/tagger", argv[2]);
        fuzz_write(dir, name, text, hl + bl + 1, NULL);
        free(text);
        na_article_free(a);
    }
    na_feed_reader_close(r);
    if (rc < 0) {
        fprintf(stderr, "na_fuzz_seeds: %s: %s\n", argv[1], err.msg);
        return 1;
    }
    return 0;
}
