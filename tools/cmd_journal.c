/* newsalert journal: prints the alerts in newsalertd's journal, read-only,
 * so that it is safe beside a running daemon. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "newsalert/alert.h"
#include "newsalert/journal.h"
#include "newsalert/jsonl.h"
#include "newsalert.h"

static void journal_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert journal FILE|DIR [OPTION]...\n"
        "Print the alerts in newsalertd's journal, oldest first: DIR is the journal\n"
        "directory, FILE one segment file (seg-*.naj). Nothing on disk is changed,\n"
        "so it is safe while the daemon runs; damage it finds (a torn tail, a damaged\n"
        "segment) is reported on stderr and the readable alerts are still printed.\n"
        "  -s, --since SEQ  only alerts after seq SEQ\n"
        "  -j, --json       one JSON object per alert and line: the alert's fields\n"
        "                   and \"journal_time_ms\", when it was journalled\n"
        "  -h, --help       show this help\n"
        "Text lines: seq, journal time (UTC), tags with confidence, headline.\n"
        "Exit status: 0 ok (also with damage reported), 1 the journal cannot be read\n"
        "or holds a record that is not a newsalert.v1.Alert, 64 usage error.\n");
}

/* 2024-07-05T12:00:00.123Z */
static void format_ms(int64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    int64_t frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        s--;
    }
    if (gmtime_r(&s, &tm) == NULL) {
        snprintf(buf, len, "%" PRId64, ms);
        return;
    }
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)frac);
}

static void print_alert(const Newsalert__V1__Alert *a, uint64_t seq, int64_t time_ms,
                        bool json)
{
    if (json) {
        json_t *o = na_alert_to_json(a);
        json_object_set_new(o, "journal_time_ms", na_json_int64(time_ms));
        char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (s)
            puts(s);
        free(s);
        json_decref(o);
        return;
    }
    char when[40];
    format_ms(time_ms, when, sizeof(when));
    printf("#%-5" PRIu64 " %s  ", seq, when);
    for (size_t i = 0; i < a->n_tags; i++)
        printf("%s%s(%.2f)", i ? " " : "", a->tags[i]->tag, a->tags[i]->confidence);
    printf("  %s\n", a->headline ? a->headline : "");
}

int cmd_journal(int argc, char **argv)
{
    static const struct option opts[] = {{"since", required_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    uint64_t since = 0;
    bool json = false;
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "s:jh", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            errno = 0;
            since = strtoull(optarg, &end, 10);
            if (*optarg < '0' || *optarg > '9' || *end || errno) {
                tool_error("journal", "--since: expected a seq number, got '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            journal_usage(stdout);
            return EXIT_OK;
        default:
            journal_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        journal_usage(stderr);
        return EXIT_USAGE;
    }
    const char *path = argv[optind];
    struct na_journal_opts o;
    struct na_journal_report rep;
    struct na_error err;
    na_journal_opts_default(&o);
    o.read_only = true;
    struct na_journal *j = na_journal_open(path, &o, &rep, &err);
    if (j == NULL) {
        tool_error("journal", "%s", err.msg);
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < rep.n_msgs; i++)
        tool_error("journal", "%s", rep.msgs[i]);
    if (rep.msgs_dropped)
        tool_error("journal", "(%zu more messages)", rep.msgs_dropped);

    struct na_journal_reader *r = na_journal_reader_open(j, since, &err);
    if (r == NULL) {
        tool_error("journal", "%s", err.msg);
        na_journal_close(j, NULL);
        return EXIT_FAIL;
    }
    if (na_journal_reader_gone(r))
        tool_error("journal",
                   "alerts after seq %" PRIu64
                   " are gone (retention); the oldest available is %" PRIu64,
                   since, na_journal_reader_oldest(r));
    int status = EXIT_OK, rc;
    uint64_t seq;
    int64_t time_ms;
    const uint8_t *payload;
    size_t len;
    while ((rc = na_journal_reader_next(r, &seq, &time_ms, &payload, &len, &err)) > 0) {
        Newsalert__V1__Alert *a = newsalert__v1__alert__unpack(NULL, len, payload);
        if (a == NULL) {
            tool_error("journal",
                       "seq %" PRIu64 ": %zu bytes that are not a valid "
                       "newsalert.v1.Alert",
                       seq, len);
            status = EXIT_FAIL;
            continue;
        }
        print_alert(a, seq, time_ms, json);
        newsalert__v1__alert__free_unpacked(a, NULL);
    }
    if (rc < 0) {
        tool_error("journal", "%s", err.msg);
        status = EXIT_FAIL;
    }
    if (fflush(stdout) != 0)
        status = EXIT_FAIL;
    na_journal_reader_close(r);
    na_journal_close(j, NULL);
    return status;
}
