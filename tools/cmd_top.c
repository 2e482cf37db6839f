/* newsalert top: a live view of one newsalertd, read from its /metrics
 * (Prometheus text, daemon/metrics.c): articles in, alerts out per tag,
 * rejects by reason, feed and subscriber connections, the journal and the
 * processing latency. It redraws in place with ANSI escapes (any terminal
 * since the VT100 has them, so ncurses would add a dependency for nothing)
 * and prints one plain frame with --once or when stdout is not a terminal. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "newsalert.h"

#define TOP_DEFAULT_URL "http://127.0.0.1:9464/metrics"
#define TOP_MAX_SAMPLES 4096

struct top_sample {
    char name[96];
    char label[96]; /* the value of the sample's first label, if any */
    double value;
};

/* One scrape, parsed. */
struct top_scrape {
    struct top_sample *s;
    size_t n;
    double at; /* tool_now() when it was taken */
};

/* A frame is built in memory and written at once, so that a redraw never
 * shows half of one frame over the last. */
struct top_frame {
    char *buf;
    size_t len, cap;
    bool ansi;
};

static void top_usage(FILE *out)
{
    fprintf(out,
            "Usage: newsalert top [OPTION]...\n"
            "A live view of a newsalertd, read from its /metrics.\n"
            "  -u, --url URL       the metrics endpoint (default " TOP_DEFAULT_URL ");\n"
            "                      a URL without a path gets /metrics\n"
            "  -i, --interval S    seconds between two refreshes (default 1)\n"
            "  -1, --once          print one frame and exit (also when stdout is not a\n"
            "                      terminal); exit 1 when /metrics cannot be read\n"
            "  -h, --help          show this help\n"
            "Keys: q (or Ctrl-C) quits, restoring the terminal. Rates are per second\n"
            "between two refreshes; the first frame and --once show totals only.\n");
}

static void frame_add(struct top_frame *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void frame_add(struct top_frame *f, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    if (f->len + (size_t)n + 8 > f->cap) {
        size_t cap = (f->cap ? f->cap * 2 : 4096) + (size_t)n;
        char *b = realloc(f->buf, cap);
        if (b == NULL)
            return;
        f->buf = b;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, line, (size_t)n);
    f->len += (size_t)n;
}

/* Ends a line: on a terminal, "erase to the end of line" first, so a
 * shorter line leaves nothing of the longer one it replaces. */
static void frame_eol(struct top_frame *f)
{
    frame_add(f, "%s\n", f->ansi ? "\033[K" : "");
}

/* Prometheus text: "name{label="value",...} number" or "name number";
 * comments and anything else are skipped. */
static void scrape_parse(struct top_scrape *sc, char *body)
{
    sc->n = 0;
    for (char *line = strtok(body, "\n"); line && sc->n < TOP_MAX_SAMPLES;
         line = strtok(NULL, "\n")) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        struct top_sample *s = &sc->s[sc->n];
        size_t nl = strcspn(line, "{ ");
        if (nl == 0 || nl >= sizeof(s->name))
            continue;
        memcpy(s->name, line, nl);
        s->name[nl] = '\0';
        s->label[0] = '\0';
        char *p = line + nl;
        if (*p == '{') {
            char *q = strchr(p, '"'), *close = strchr(p, '}');
            if (close == NULL)
                continue;
            if (q && q < close) {
                size_t k = 0;
                for (q++; *q && *q != '"' && k + 1 < sizeof(s->label); q++) {
                    if (*q == '\\' && q[1])
                        q++;
                    s->label[k++] = *q;
                }
                s->label[k] = '\0';
            }
            p = close + 1;
        }
        char *end;
        s->value = strtod(p, &end);
        if (end == p)
            continue;
        sc->n++;
    }
}

/* The value of name (with label, when not NULL); NAN when absent. */
static double get(const struct top_scrape *sc, const char *name, const char *label)
{
    for (size_t i = 0; sc && i < sc->n; i++)
        if (!strcmp(sc->s[i].name, name) &&
            (label == NULL || !strcmp(sc->s[i].label, label)))
            return sc->s[i].value;
    return NAN;
}

static void put_count(struct top_frame *f, const char *what, double v)
{
    if (isnan(v))
        frame_add(f, "  %s -", what);
    else
        frame_add(f, "  %s %.0f", what, v);
}

/* "  123 (4.5/s)" when there is an earlier scrape to compare with. */
static void put_rate(struct top_frame *f, const char *what, const struct top_scrape *now,
                     const struct top_scrape *before, const char *name, const char *label)
{
    double v = get(now, name, label), w = get(before, name, label);
    put_count(f, what, v);
    if (before && !isnan(v) && !isnan(w) && now->at > before->at && v >= w)
        frame_add(f, " (%.1f/s)", (v - w) / (now->at - before->at));
}

static void put_bytes(struct top_frame *f, const char *what, double v)
{
    if (isnan(v))
        frame_add(f, "  %s -", what);
    else if (v >= 1e9)
        frame_add(f, "  %s %.1f GB", what, v / 1e9);
    else if (v >= 1e6)
        frame_add(f, "  %s %.1f MB", what, v / 1e6);
    else
        frame_add(f, "  %s %.0f kB", what, v / 1e3);
}

/* Every sample of a labelled family, one per line, with its rate. */
static void put_family(struct top_frame *f, const char *title,
                       const struct top_scrape *now, const struct top_scrape *before,
                       const char *name, bool skip_zero)
{
    size_t shown = 0;
    frame_add(f, "%s", title);
    frame_eol(f);
    for (size_t i = 0; i < now->n; i++) {
        const struct top_sample *s = &now->s[i];
        if (strcmp(s->name, name) != 0 || (skip_zero && s->value == 0))
            continue;
        frame_add(f, "  %-22s", s->label[0] ? s->label : "(all)");
        put_rate(f, "", now, before, name, s->label);
        frame_eol(f);
        shown++;
    }
    if (shown == 0) {
        frame_add(f, "  (none)");
        frame_eol(f);
    }
}

/* A quantile of the processing-time histogram, from the bucket counts
 * between the two scrapes (since the start when there is one scrape):
 * the upper bound of the bucket it falls in, as Prometheus'
 * histogram_quantile would interpolate it. */
static double quantile(const struct top_scrape *now, const struct top_scrape *before,
                       const char *name, double q)
{
    double total = 0, prev_le = 0, prev_n = 0;
    char bucket[128];
    snprintf(bucket, sizeof(bucket), "%s_bucket", name);
    for (size_t i = 0; i < now->n; i++)
        if (!strcmp(now->s[i].name, bucket) && !strcmp(now->s[i].label, "+Inf")) {
            double b = before ? get(before, bucket, "+Inf") : 0;
            total = now->s[i].value - (isnan(b) ? 0 : b);
        }
    if (total <= 0)
        return NAN;
    for (size_t i = 0; i < now->n; i++) {
        const struct top_sample *s = &now->s[i];
        if (strcmp(s->name, bucket) != 0 || !strcmp(s->label, "+Inf"))
            continue;
        double b = before ? get(before, bucket, s->label) : 0;
        double n = s->value - (isnan(b) ? 0 : b), le = strtod(s->label, NULL);
        if (n >= q * total) {
            double in = n - prev_n;
            return in > 0 ? prev_le + (le - prev_le) * (q * total - prev_n) / in : le;
        }
        prev_le = le;
        prev_n = n;
    }
    return prev_le; /* above the largest finite bucket */
}

static void put_ms(struct top_frame *f, const char *what, double s)
{
    if (isnan(s))
        frame_add(f, "  %s -", what);
    else
        frame_add(f, "  %s %.3f ms", what, s * 1e3);
}

static void render(struct top_frame *f, const char *where, const struct top_scrape *now,
                   const struct top_scrape *before, const char *error)
{
    char clock[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(clock, sizeof(clock), "%H:%M:%S", localtime_r(&t, &tm));
    f->len = 0;
    if (f->ansi)
        frame_add(f, "\033[H");
    frame_add(f, "newsalertd top  %s  %s", where, clock);
    double started = get(now, "newsalertd_start_time_seconds", NULL);
    if (now && !isnan(started)) {
        long up = (long)((double)t - started);
        frame_add(f, "  up %ldd %02ld:%02ld:%02ld", up / 86400, up / 3600 % 24,
                  up / 60 % 60, up % 60);
    }
    frame_eol(f);
    if (error) {
        frame_add(f, "cannot read %s: %s (retrying)", where, error);
        frame_eol(f);
    }
    if (now) {
        frame_eol(f);
        frame_add(f, "Articles");
        frame_eol(f);
        put_rate(f, "received", now, before, "newsalertd_articles_received_total", NULL);
        put_rate(f, "  decoded", now, before, "newsalertd_articles_decoded_total", NULL);
        frame_eol(f);
        put_rate(f, "alerted", now, before, "newsalertd_articles_alerted_total", NULL);
        put_rate(f, "  untagged", now, before, "newsalertd_articles_untagged_total",
                 NULL);
        put_count(f, "  duplicate",
                  get(now, "newsalertd_articles_duplicate_total", NULL));
        put_count(f, "  revised", get(now, "newsalertd_articles_revised_total", NULL));
        frame_eol(f);
        put_family(f, "Alerts out, by tag", now, before,
                   "newsalertd_alerts_published_total", false);
        put_family(f, "Rejects, by reason", now, before,
                   "newsalertd_articles_rejected_total", true);
        frame_add(f, "Connections");
        frame_eol(f);
        double conn = get(now, "newsalertd_feed_endpoints_connected", NULL);
        double conf = get(now, "newsalertd_feed_endpoints_configured", NULL);
        if (isnan(conn) || isnan(conf))
            frame_add(f, "  feeds -");
        else
            frame_add(f, "  feeds %.0f of %.0f connected%s", conn, conf,
                      conn == 0 ? " (NOT CONNECTED)" : "");
        put_count(f, "  gaps", get(now, "newsalertd_feed_gaps_total", NULL));
        put_count(f, "  disconnects",
                  get(now, "newsalertd_feed_disconnects_total", NULL));
        frame_eol(f);
        put_count(f, "subscribers", get(now, "newsalertd_publish_connections", NULL));
        put_count(f, "  dropped", get(now, "newsalertd_publish_dropped_total", NULL));
        put_count(f, "  catch-up requests",
                  get(now, "newsalertd_catchup_requests_total", NULL));
        put_count(f, "  refused", get(now, "newsalertd_catchup_refused_total", NULL));
        frame_eol(f);
        frame_add(f, "Journal");
        frame_eol(f);
        double held = get(now, "newsalertd_journal_held_alerts", NULL);
        frame_add(f, "  state %s", isnan(held) ? "-" : held > 0 ? "HOLDING" : "ok");
        put_count(f, "  held", held);
        put_count(f, "  errors", get(now, "newsalertd_journal_errors_total", NULL));
        put_bytes(f, "  size", get(now, "newsalertd_journal_size_bytes", NULL));
        put_count(f, "  last seq", get(now, "newsalertd_alert_last_seq", NULL));
        frame_eol(f);
        const char *h = "newsalertd_article_processing_seconds";
        frame_add(f, "Latency (decode, tag, publish%s)",
                  before ? "; since the last refresh" : "; since the start");
        frame_eol(f);
        put_ms(f, "p50", quantile(now, before, h, 0.5));
        put_ms(f, "  p90", quantile(now, before, h, 0.9));
        put_ms(f, "  p99", quantile(now, before, h, 0.99));
        double sum = get(now, "newsalertd_article_processing_seconds_sum", NULL);
        double cnt = get(now, "newsalertd_article_processing_seconds_count", NULL);
        put_ms(f, "  mean", cnt > 0 ? sum / cnt : NAN);
        frame_eol(f);
    }
    if (f->ansi) {
        frame_eol(f);
        frame_add(f, "q: quit");
        frame_add(f, "\033[K\033[J"); /* nothing of a longer frame stays below */
    }
}

static int scrape(const char *host, int port, const char *path, struct top_scrape *sc,
                  char *error, size_t error_len)
{
    struct tool_http_reply r;
    if (tool_http_get(host, port, path, 2, &r) < 0) {
        snprintf(error, error_len, "%s", r.error);
        return -1;
    }
    if (r.status != 200) {
        snprintf(error, error_len, "HTTP %d", r.status);
        tool_http_reply_clear(&r);
        return -1;
    }
    scrape_parse(sc, r.body);
    sc->at = tool_now();
    tool_http_reply_clear(&r);
    if (sc->n == 0) {
        snprintf(error, error_len,
                 "no metrics in the answer (is it newsalertd's /metrics?)");
        return -1;
    }
    return 0;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

int cmd_top(int argc, char **argv)
{
    static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
                                         {"interval", required_argument, NULL, 'i'},
                                         {"once", no_argument, NULL, '1'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *url = TOP_DEFAULT_URL;
    double interval = 1;
    bool once = false;
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "u:i:1h", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 'i':
            interval = strtod(optarg, &end);
            if (*end || end == optarg || interval < 0.1 || interval > 3600) {
                tool_error("top",
                           "--interval: expected seconds from 0.1 to 3600, got '%s'",
                           optarg);
                return EXIT_USAGE;
            }
            break;
        case '1':
            once = true;
            break;
        case 'h':
            top_usage(stdout);
            return EXIT_OK;
        default:
            top_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        tool_error("top", "unexpected argument '%s'", argv[optind]);
        top_usage(stderr);
        return EXIT_USAGE;
    }
    char host[256], path[512], where[800], error[200];
    int port;
    if (tool_http_parse_url(url, host, sizeof(host), &port, path, sizeof(path)) < 0) {
        tool_error("top", "--url: expected http://HOST[:PORT][/PATH], got '%s'", url);
        return EXIT_USAGE;
    }
    if (!strcmp(path, "/"))
        snprintf(path, sizeof(path), "/metrics");
    snprintf(where, sizeof(where), "%s:%d%s", host, port, path);

    struct top_scrape a = {calloc(TOP_MAX_SAMPLES, sizeof(struct top_sample)), 0, 0};
    struct top_scrape b = {calloc(TOP_MAX_SAMPLES, sizeof(struct top_sample)), 0, 0};
    struct top_frame f = {NULL, 0, 0, false};
    int status = EXIT_OK;
    if (a.s == NULL || b.s == NULL) {
        tool_error("top", "out of memory");
        status = EXIT_FAIL;
        goto done;
    }
    if (once || !tool_is_tty(STDOUT_FILENO)) {
        if (scrape(host, port, path, &a, error, sizeof(error)) < 0) {
            tool_error("top", "cannot read %s: %s", where, error);
            status = EXIT_FAIL;
            goto done;
        }
        render(&f, where, &a, NULL, NULL);
        write_all(f.buf, f.len);
        goto done;
    }

    /* Live: keys without Enter and without echo; signals stay on, so that
     * Ctrl-C reaches tool_catch_signals' handler and we restore below. */
    struct termios saved, raw;
    bool have_tty_in = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (have_tty_in) {
        raw = saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    tool_catch_signals();
    f.ansi = true;
    /* The alternate screen, as less and htop use: the shell's screen comes
     * back as it was when we leave. The cursor is hidden meanwhile. */
    write_all("\033[?1049h\033[?25l\033[2J", 18);
    struct top_scrape *now = &a, *before = NULL;
    bool quit = false;
    while (!quit && !tool_interrupted) {
        bool ok = scrape(host, port, path, now, error, sizeof(error)) == 0;
        render(&f, where, ok ? now : before, before && ok ? before : NULL,
               ok ? NULL : error);
        write_all(f.buf, f.len);
        if (ok) {
            before = now;
            now = now == &a ? &b : &a;
        }
        double until = tool_now() + interval;
        while (!quit && !tool_interrupted) {
            double left = until - tool_now();
            if (left <= 0)
                break;
            struct pollfd p = {STDIN_FILENO, POLLIN, 0};
            int rc = poll(&p, have_tty_in ? 1 : 0, (int)(left * 1000) + 1);
            if (rc > 0 && (p.revents & POLLIN)) {
                char k;
                if (read(STDIN_FILENO, &k, 1) == 1 && (k == 'q' || k == 'Q'))
                    quit = true;
            }
        }
    }
    write_all("\033[?25h\033[?1049l", 14);
    if (have_tty_in)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
done:
    free(a.s);
    free(b.s);
    free(f.buf);
    return status;
}
