/* newsalert pack / unpack: recorded feeds to and from readable JSON lines.
 * Besides the Article fields, a line may carry "_topic" (default "news"),
 * or describe a malformed message for tests: "_raw" (the payload is this
 * text, not an Article) or "_frames" (these texts are the frames, as is). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/article.h"
#include "newsalert/jsonl.h"
#include "newsalert.h"

static void pack_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert pack IN.jsonl -o FILE\n"
        "Write the articles of IN.jsonl (one JSON object per line, Article fields by\n"
        "name) to the recorded feed FILE, one [topic, Article] message each.\n"
        "  -o, --output FILE  the feed to write (required; - for stdout)\n"
        "  -h, --help         show this help\n");
}

static int pack_line(struct na_feed_writer *w, json_t *obj, uint64_t time_ns,
                     struct na_error *err)
{
    json_t *frames = json_object_get(obj, "_frames"), *raw = json_object_get(obj, "_raw");
    json_t *topic = json_object_get(obj, "_topic");
    struct na_frame f[NA_FEED_MAX_FRAMES];
    const char *t = json_is_string(topic) ? json_string_value(topic) : "news";

    if (frames) {
        size_t n = json_array_size(frames);
        if (!json_is_array(frames) || n == 0 || n > NA_FEED_MAX_FRAMES)
            return na_error_set(err, "_frames: expected a list of 1 to %d strings",
                                NA_FEED_MAX_FRAMES);
        for (size_t i = 0; i < n; i++) {
            json_t *s = json_array_get(frames, i);
            if (!json_is_string(s))
                return na_error_set(err, "_frames: expected strings");
            f[i] = (struct na_frame){(const uint8_t *)json_string_value(s),
                                     json_string_length(s)};
        }
        return na_feed_writer_append(w, time_ns, f, n, err);
    }
    f[0] = (struct na_frame){(const uint8_t *)t, strlen(t)};
    if (raw) {
        if (!json_is_string(raw))
            return na_error_set(err, "_raw: expected a string");
        f[1] = (struct na_frame){(const uint8_t *)json_string_value(raw),
                                 json_string_length(raw)};
        return na_feed_writer_append(w, time_ns, f, 2, err);
    }
    uint8_t *buf;
    size_t len;
    if (na_jsonl_article_pack(obj, &buf, &len, err) < 0)
        return -1;
    f[1] = (struct na_frame){buf, len};
    int rc = na_feed_writer_append(w, time_ns, f, 2, err);
    free(buf);
    return rc;
}

int cmd_pack(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *out = NULL;
    int c;
    struct na_error err;

    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (c == 'o') {
            out = optarg;
        } else if (c == 'h') {
            pack_usage(stdout);
            return EXIT_OK;
        } else {
            pack_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (out == NULL || optind != argc - 1) {
        pack_usage(stderr);
        return EXIT_USAGE;
    }
    const char *in = argv[optind];
    FILE *f = strcmp(in, "-") ? fopen(in, "r") : stdin;
    if (f == NULL) {
        tool_error("pack", "%s: cannot open", in);
        return EXIT_FAIL;
    }
    struct na_feed_writer *w = na_feed_writer_open(out, &err);
    if (w == NULL) {
        tool_error("pack", "%s", err.msg);
        if (f != stdin)
            fclose(f);
        return EXIT_FAIL;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0, n = 0;
    int rc = EXIT_OK;
    /* Records are 1 ms apart, so a packed feed replays at 1,000/s at its
     * recorded pace, and as fast as possible with --max-rate. */
    uint64_t t0 = tool_now_ns();
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        json_error_t jerr;
        json_t *obj = json_loads(line, 0, &jerr);
        if (obj == NULL) {
            tool_error("pack", "%s:%zu: %s", in, lineno, jerr.text);
            rc = EXIT_FAIL;
            break;
        }
        if (pack_line(w, obj, t0 + n * 1000000u, &err) < 0) {
            tool_error("pack", "%s:%zu: %s", in, lineno, err.msg);
            rc = EXIT_FAIL;
            json_decref(obj);
            break;
        }
        json_decref(obj);
        n++;
    }
    free(line);
    if (f != stdin)
        fclose(f);
    if (na_feed_writer_close(w, &err) < 0) {
        tool_error("pack", "%s: %s", out, err.msg);
        rc = EXIT_FAIL;
    }
    if (rc == EXIT_OK && strcmp(out, "-") && tool_is_tty(2))
        fprintf(stderr, "newsalert pack: %zu messages written to %s\n", n, out);
    return rc;
}

static json_t *article_json(const Newsalert__V1__Article *a)
{
    json_t *o = json_object(), *authors = json_array();
    json_object_set_new(o, "id", json_string(a->id));
    json_object_set_new(o, "source", json_string(a->source));
    json_object_set_new(o, "url", json_string(a->url));
    json_object_set_new(o, "headline", json_string(a->headline));
    json_object_set_new(o, "body", json_string(a->body));
    json_object_set_new(o, "published_at_ms", na_json_int64(a->published_at_ms));
    json_object_set_new(o, "language", json_string(a->language));
    for (size_t i = 0; i < a->n_authors; i++)
        json_array_append_new(authors, json_string(a->authors[i]));
    json_object_set_new(o, "authors", authors);
    json_object_set_new(o, "feed_seq", na_json_uint64(a->feed_seq));
    json_object_set_new(o, "revision", json_integer(a->revision));
    return o;
}

static void unpack_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert unpack FILE\n"
        "Print each message of the recorded feed FILE as one JSON line: the Article's\n"
        "fields with \"_topic\" and \"_time_ns\", or \"_frames\" (and \"_reject\") for\n"
        "a message that is not a valid article. A truncated last record is reported\n"
        "and ignored; a damaged one is an error (exit 1).\n"
        "  -h, --help  show this help\n");
}

int cmd_unpack(int argc, char **argv)
{
    struct na_error err;
    struct na_record rec;
    struct na_limits limits;

    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            unpack_usage(stdout);
            return EXIT_OK;
        }
        unpack_usage(stderr);
        return EXIT_USAGE;
    }
    if (optind != argc - 1) {
        unpack_usage(stderr);
        return EXIT_USAGE;
    }
    const char *path = argv[optind];
    struct na_feed_reader *r = na_feed_reader_open(path, &err);
    if (r == NULL) {
        tool_error("unpack", "%s", err.msg);
        return EXIT_FAIL;
    }
    na_limits_default(&limits);
    limits.max_article_bytes = NA_FEED_MAX_RECORD;
    int rc, status = EXIT_OK;
    while ((rc = na_feed_reader_next(r, &rec, &err)) > 0) {
        enum na_reject why = NA_REJECT_FRAME_COUNT;
        Newsalert__V1__Article *a = NULL;
        if (rec.n_frames <= 2)
            a = na_article_decode(rec.frames[rec.n_frames - 1].data,
                                  rec.frames[rec.n_frames - 1].len, &limits, &why, NULL,
                                  0);
        json_t *o;
        if (a) {
            o = article_json(a);
            if (rec.n_frames == 2)
                json_object_set_new(o, "_topic",
                                    json_stringn_nocheck((const char *)rec.frames[0].data,
                                                         rec.frames[0].len));
            na_article_free(a);
        } else {
            json_t *frames = json_array();
            o = json_object();
            for (size_t i = 0; i < rec.n_frames; i++)
                json_array_append_new(
                    frames, json_stringn_nocheck((const char *)rec.frames[i].data,
                                                 rec.frames[i].len));
            json_object_set_new(o, "_frames", frames);
            json_object_set_new(o, "_reject", json_string(na_reject_name(why)));
        }
        json_object_set_new(o, "_time_ns", na_json_uint64(rec.time_ns));
        char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (s)
            puts(s);
        free(s);
        json_decref(o);
    }
    if (rc < 0 && na_feed_reader_truncated(r)) {
        tool_error("unpack", "warning: %s: %s; ignored", path, err.msg);
    } else if (rc < 0) {
        tool_error("unpack", "%s: %s", path, err.msg);
        status = EXIT_FAIL;
    }
    na_feed_reader_close(r);
    return status;
}
