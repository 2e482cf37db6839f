/* newsalert quarantine: lists what newsalertd rejected and kept, or packs
 * it into a recorded feed to replay once the cause is fixed. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "newsalert/jsonl.h"
#include "newsalert/quarantine.h"
#include "newsalert.h"

static void quarantine_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert quarantine DIR [OPTION]...\n"
        "List the messages newsalertd rejected and kept in its quarantine directory\n"
        "DIR, oldest first: receive time (UTC), reason, frames and bytes. Damaged\n"
        "files are reported on stderr; the readable entries are still listed.\n"
        "  -j, --json       one JSON object per entry: time_ns, reason, frames (the\n"
        "                   frame sizes) and bytes\n"
        "  -p, --pack FILE  write the entries to the recorded feed FILE instead, with\n"
        "                   their receive times and frames as received, so that\n"
        "                   'newsalert replay FILE' sends them again\n"
        "  -h, --help       show this help\n"
        "Exit status: 0 ok (also with damage reported), 1 DIR or FILE cannot be read\n"
        "or written, 64 usage error.\n");
}

/* 2024-07-05T12:00:00.123456789Z */
static void format_ns(uint64_t ns, char *buf, size_t len)
{
    time_t s = (time_t)(ns / 1000000000u);
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL) {
        snprintf(buf, len, "%" PRIu64, ns);
        return;
    }
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%09uZ", (unsigned)(ns % 1000000000u));
}

static void print_entry(const struct na_quarantine_entry *e, bool json)
{
    size_t bytes = 0;
    for (size_t i = 0; i < e->n_frames; i++)
        bytes += e->frames[i].len;
    if (json) {
        json_t *o = json_object(), *frames = json_array();
        json_object_set_new(o, "time_ns", na_json_uint64(e->time_ns));
        json_object_set_new(o, "reason", json_string(e->reason));
        for (size_t i = 0; i < e->n_frames; i++)
            json_array_append_new(frames, json_integer((json_int_t)e->frames[i].len));
        json_object_set_new(o, "frames", frames);
        json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
        char *s = json_dumps(o, JSON_COMPACT);
        if (s)
            puts(s);
        free(s);
        json_decref(o);
        return;
    }
    char when[48];
    format_ns(e->time_ns, when, sizeof(when));
    printf("%s  %-20s %zu frame%s  %zu bytes\n", when, e->reason, e->n_frames,
           e->n_frames == 1 ? "" : "s", bytes);
}

int cmd_quarantine(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"pack", required_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *pack = NULL;
    bool json = false;
    int c;
    struct na_error err;

    while ((c = getopt_long(argc, argv, "jp:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'p':
            pack = optarg;
            break;
        case 'h':
            quarantine_usage(stdout);
            return EXIT_OK;
        default:
            quarantine_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || (pack && json)) {
        quarantine_usage(stderr);
        return EXIT_USAGE;
    }
    struct na_quarantine_reader *r = na_quarantine_reader_open(argv[optind], &err);
    if (r == NULL) {
        tool_error("quarantine", "%s", err.msg);
        return EXIT_FAIL;
    }
    struct na_feed_writer *w = NULL;
    if (pack && (w = na_feed_writer_open(pack, &err)) == NULL) {
        tool_error("quarantine", "%s", err.msg);
        na_quarantine_reader_close(r);
        return EXIT_FAIL;
    }
    struct na_quarantine_entry e;
    int rc, status = EXIT_OK;
    size_t n = 0;
    while ((rc = na_quarantine_reader_next(r, &e, &err)) != 0) {
        if (rc < 0) {
            tool_error("quarantine", "%s", err.msg);
            continue;
        }
        n++;
        if (w == NULL) {
            print_entry(&e, json);
        } else if (na_feed_writer_append(w, e.time_ns, e.frames, e.n_frames, &err) < 0) {
            tool_error("quarantine", "%s: %s", pack, err.msg);
            status = EXIT_FAIL;
            break;
        }
    }
    na_quarantine_reader_close(r);
    if (w && na_feed_writer_close(w, &err) < 0) {
        tool_error("quarantine", "%s: %s", pack, err.msg);
        status = EXIT_FAIL;
    }
    if (w && status == EXIT_OK && strcmp(pack, "-") != 0)
        fprintf(stderr, "newsalert quarantine: %zu entries written to %s\n", n, pack);
    if (fflush(stdout) != 0)
        status = EXIT_FAIL;
    return status;
}
