/* na-fixture: writes a journal or a quarantine through libnewsalert, for
 * the integration tests of `newsalert journal` and `newsalert quarantine`
 * (the daemon writes both in real use; this gives tests exact contents).
 *
 *   na-fixture journal DIR COUNT [SEGMENT_BYTES [MAX_BYTES]]
 *       appends alerts seq 1..COUNT: headline "Headline N", article id
 *       "a-N", tags aid (even N) and summit (N divisible by 3) or alliance
 *   na-fixture quarantine DIR COUNT [FILE_BYTES]
 *       adds COUNT entries [b"news", b"not an article N"], reasons
 *       alternating malformed_protobuf and missing_id, time_ns = 1e18 + N */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/journal.h"
#include "newsalert/quarantine.h"
#include "newsalert/v1/alert.pb-c.h"

static int write_journal(const char *dir, uint64_t count, uint64_t seg, uint64_t max)
{
    struct na_journal_opts o;
    struct na_journal_report rep;
    struct na_error err;

    na_journal_opts_default(&o);
    o.fsync = NA_FSYNC_NEVER;
    o.max_age_ms = 0;
    if (seg)
        o.segment_bytes = seg;
    o.max_bytes = max;
    struct na_journal *j = na_journal_open(dir, &o, &rep, &err);
    if (j == NULL) {
        fprintf(stderr, "na-fixture: %s\n", err.msg);
        return 1;
    }
    uint64_t first = na_journal_last_seq(j) + 1;
    for (uint64_t seq = first; seq < first + count; seq++) {
        Newsalert__V1__Alert a = NEWSALERT__V1__ALERT__INIT;
        Newsalert__V1__TagResult t[2] = {NEWSALERT__V1__TAG_RESULT__INIT,
                                         NEWSALERT__V1__TAG_RESULT__INIT};
        Newsalert__V1__TagResult *tp[2] = {&t[0], &t[1]};
        char id[32], headline[64];
        snprintf(id, sizeof(id), "a-%" PRIu64, seq);
        snprintf(headline, sizeof(headline), "Headline %" PRIu64, seq);
        a.seq = seq;
        a.epoch = na_journal_epoch(j);
        a.article_id = id;
        a.source = "fixture";
        a.headline = headline;
        a.received_at_ms = 1720000000000 + (int64_t)seq;
        t[0].tag = seq % 2 == 0 ? "aid" : "alliance";
        t[0].confidence = 0.75;
        t[1].tag = "summit";
        t[1].confidence = 0.5;
        a.tags = tp;
        a.n_tags = seq % 3 == 0 ? 2 : 1;
        size_t len = newsalert__v1__alert__get_packed_size(&a);
        uint8_t *buf = malloc(len ? len : 1);
        newsalert__v1__alert__pack(&a, buf);
        int rc = na_journal_append(j, seq, a.received_at_ms, buf, len, &err);
        free(buf);
        if (rc < 0 || na_journal_flush(j, &err) < 0) {
            fprintf(stderr, "na-fixture: %s\n", err.msg);
            na_journal_close(j, NULL);
            return 1;
        }
    }
    return na_journal_close(j, NULL) < 0;
}

static int write_quarantine(const char *dir, uint64_t count, uint64_t file_bytes)
{
    struct na_error err;
    struct na_quarantine *q =
        na_quarantine_open(dir, 1 << 30, file_bytes ? file_bytes : 1 << 20, &err);
    if (q == NULL) {
        fprintf(stderr, "na-fixture: %s\n", err.msg);
        return 1;
    }
    for (uint64_t i = 1; i <= count; i++) {
        char body[48];
        int n = snprintf(body, sizeof(body), "not an article %" PRIu64, i);
        struct na_frame f[2] = {{(const uint8_t *)"news", 4},
                                {(const uint8_t *)body, (size_t)n}};
        const char *why = i % 2 ? "malformed_protobuf" : "missing_id";
        if (na_quarantine_add(q, 1000000000000000000ull + i, why, f, 2, &err) < 0) {
            fprintf(stderr, "na-fixture: %s\n", err.msg);
            na_quarantine_close(q, NULL);
            return 1;
        }
    }
    return na_quarantine_close(q, NULL) < 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: na-fixture journal|quarantine DIR COUNT [BYTES...]\n");
        return 64;
    }
    uint64_t count = strtoull(argv[3], NULL, 10);
    uint64_t a = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
    uint64_t b = argc > 5 ? strtoull(argv[5], NULL, 10) : 0;
    if (strcmp(argv[1], "journal") == 0)
        return write_journal(argv[2], count, a, b);
    if (strcmp(argv[1], "quarantine") == 0)
        return write_quarantine(argv[2], count, a);
    fprintf(stderr, "na-fixture: unknown kind '%s'\n", argv[1]);
    return 64;
}
