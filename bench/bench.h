/* Shared by the benchmark's load generator and sink: the marker that the
 * generator writes into each article id at send time, and a monotonic clock
 * that both processes read the same way. */
#ifndef NA_BENCH_H
#define NA_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* "t" 20 digits of send time (CLOCK_MONOTONIC ns) "n" 10 digits of message
 * number: fixed width, so it is written in place into pre-encoded bytes. */
#define BENCH_MARK_PLACEHOLDER "t00000000000000000000n0000000000"
#define BENCH_MARK_LEN 32

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void bench_mark_write(char *at, uint64_t send_ns, uint64_t n)
{
    char buf[BENCH_MARK_LEN + 1];
    snprintf(buf, sizeof(buf), "t%020llun%010llu", (unsigned long long)send_ns,
             (unsigned long long)(n % 10000000000ull));
    memcpy(at, buf, BENCH_MARK_LEN);
}

/* Finds a mark in buf; returns 0 and the two numbers, or -1. */
static inline int bench_mark_read(const void *buf, size_t len, uint64_t *send_ns,
                                  uint64_t *n)
{
    const char *p = buf, *end = p + len;
    while ((p = memchr(p, 't', (size_t)(end - p))) != NULL) {
        if ((size_t)(end - p) >= BENCH_MARK_LEN && p[21] == 'n') {
            uint64_t a = 0, b = 0;
            int ok = 1;
            for (int i = 1; i <= 20 && ok; i++)
                ok = p[i] >= '0' && p[i] <= '9', a = a * 10 + (uint64_t)(p[i] - '0');
            for (int i = 22; i < BENCH_MARK_LEN && ok; i++)
                ok = p[i] >= '0' && p[i] <= '9', b = b * 10 + (uint64_t)(p[i] - '0');
            if (ok) {
                *send_ns = a;
                *n = b;
                return 0;
            }
        }
        p++;
    }
    return -1;
}

#endif
