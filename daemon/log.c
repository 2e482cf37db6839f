/* Logging to stderr. Under journald (JOURNAL_STREAM set) each line starts
 * with a "<N>" syslog priority, which journald turns into the entry's level,
 * and journald stamps the time; elsewhere lines start with the time (UTC,
 * RFC 3339 with milliseconds) and say their level in words. The level is process-wide
 * state: a logger is the one thing every module shares. */
#include <stdarg.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "newsalertd.h"

static struct {
    enum na_log_level level;
    bool journald;
} logger = {NA_LOG_INFO, false};

void na_log_init(enum na_log_level level)
{
    logger.level = level;
    logger.journald = getenv("JOURNAL_STREAM") != NULL;
}

void na_log_set_level(enum na_log_level level)
{
    logger.level = level;
}

int na_log_level_parse(const char *s, enum na_log_level *out)
{
    static const struct {
        const char *name;
        enum na_log_level level;
    } names[] = {{"error", NA_LOG_ERROR},
                 {"warning", NA_LOG_WARNING},
                 {"warn", NA_LOG_WARNING},
                 {"info", NA_LOG_INFO},
                 {"debug", NA_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(s, names[i].name)) {
            *out = names[i].level;
            return 0;
        }
    return -1;
}

static const char *level_word(enum na_log_level level)
{
    switch (level) {
    case NA_LOG_ERROR:
        return "error";
    case NA_LOG_WARNING:
        return "warning";
    case NA_LOG_INFO:
        return "info";
    case NA_LOG_DEBUG:
        return "debug";
    }
    return "?";
}

void na_log(enum na_log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (level > logger.level)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (logger.journald) {
        fprintf(stderr, "<%d>%s\n", (int)level, line);
        return;
    }
    struct timespec ts;
    struct tm tm;
    char when[24] = "";
    clock_gettime(CLOCK_REALTIME, &ts);
    if (gmtime_r(&ts.tv_sec, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03dZ newsalertd: %s: %s\n", when, (int)(ts.tv_nsec / 1000000),
            level_word(level), line);
}

/* A burst of lines per window; what is dropped is counted so that the next
 * line that gets through can say how many were not logged. */
#define RATELIMIT_BURST 5
#define RATELIMIT_WINDOW_MS 10000

bool na_ratelimit_pass(struct na_ratelimit *rl, int64_t now_ms, uint64_t *suppressed)
{
    if (rl->logged == 0 || now_ms - rl->window_start_ms >= RATELIMIT_WINDOW_MS) {
        rl->window_start_ms = now_ms;
        rl->logged = 0;
    }
    if (rl->logged >= RATELIMIT_BURST) {
        rl->suppressed++;
        return false;
    }
    rl->logged++;
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return true;
}
