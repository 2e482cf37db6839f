/* na-bench-gen: the benchmark's load generator. Loads a recorded feed's
 * Articles, gives each a fixed-width id placeholder and encodes them once;
 * then publishes them round-robin on an XPUB socket, writing the send time
 * and message number into the id just before each send, at full speed or at
 * a fixed rate. Prints one JSON line of figures on stdout.
 *
 *   na-bench-gen --feed FILE --bind ENDPOINT --count N [--rate R]
 *                [--subscribers K] [--timeout S] [--source-topics PREFIX]
 *
 * The topic is "news", or with --source-topics PREFIX<source>. for each
 * article, so that shards can subscribe to sources (bench/shard_bench.py).
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bench.h"
#include "newsalert/feedfile.h"
#include "newsalert/v1/article.pb-c.h"

struct encoded {
    uint8_t *data;
    size_t len;
    size_t mark_at; /* offset of the id placeholder in data */
    char *topic;
};

static int load(const char *path, const char *topic_prefix, struct encoded **out,
                size_t *n_out)
{
    struct na_error err;
    struct na_record rec;
    struct na_feed_reader *r = na_feed_reader_open(path, &err);
    if (r == NULL) {
        fprintf(stderr, "na-bench-gen: %s\n", err.msg);
        return -1;
    }
    struct encoded *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    char id[] = BENCH_MARK_PLACEHOLDER;
    while ((rc = na_feed_reader_next(r, &rec, &err)) > 0) {
        const struct na_frame *f = &rec.frames[rec.n_frames - 1];
        Newsalert__V1__Article *a = newsalert__v1__article__unpack(NULL, f->len, f->data);
        if (a == NULL)
            continue; /* the benchmark sends valid articles only */
        char *topic = NULL;
        if (topic_prefix == NULL)
            topic = strdup("news");
        else if (asprintf(&topic, "%s%s.", topic_prefix, a->source) < 0)
            topic = NULL;
        if (topic == NULL) {
            newsalert__v1__article__free_unpacked(a, NULL);
            fprintf(stderr, "na-bench-gen: out of memory\n");
            break;
        }
        a->id = id;
        size_t len = newsalert__v1__article__get_packed_size(a);
        uint8_t *buf = malloc(len);
        newsalert__v1__article__pack(a, buf);
        a->id = NULL;
        newsalert__v1__article__free_unpacked(a, NULL);
        uint8_t *at = memmem(buf, len, id, BENCH_MARK_LEN);
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            v = realloc(v, cap * sizeof(*v));
        }
        v[n++] = (struct encoded){buf, len, (size_t)(at - buf), topic};
    }
    if (rc < 0)
        fprintf(stderr, "na-bench-gen: %s: %s\n", path, err.msg);
    na_feed_reader_close(r);
    *out = v;
    *n_out = n;
    return n ? 0 : -1;
}

static void sleep_until_ns(uint64_t t)
{
    uint64_t now = bench_now_ns();
    if (t > now + 50000) {
        struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
    while (bench_now_ns() < t)
        ; /* the last few microseconds: sleeping is too coarse for them */
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"feed", required_argument, NULL, 'f'},
                                         {"bind", required_argument, NULL, 'b'},
                                         {"count", required_argument, NULL, 'n'},
                                         {"rate", required_argument, NULL, 'r'},
                                         {"subscribers", required_argument, NULL, 's'},
                                         {"timeout", required_argument, NULL, 'T'},
                                         {"source-topics", required_argument, NULL, 'S'},
                                         {NULL, 0, NULL, 0}};
    const char *feed = NULL, *bind = NULL, *topic_prefix = NULL;
    unsigned long long count = 0;
    double rate = 0, timeout = 30;
    int subscribers = 1, c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            feed = optarg;
            break;
        case 'b':
            bind = optarg;
            break;
        case 'n':
            count = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            rate = strtod(optarg, NULL);
            break;
        case 's':
            subscribers = atoi(optarg);
            break;
        case 'T':
            timeout = strtod(optarg, NULL);
            break;
        case 'S':
            topic_prefix = optarg;
            break;
        default:
            return 64;
        }
    }
    if (feed == NULL || bind == NULL || count == 0) {
        fprintf(stderr, "usage: na-bench-gen --feed FILE --bind ENDPOINT --count N "
                        "[--rate R] [--subscribers K] [--timeout S] "
                        "[--source-topics PREFIX]\n");
        return 64;
    }
    struct encoded *arts;
    size_t n_arts;
    if (load(feed, topic_prefix, &arts, &n_arts) < 0)
        return 1;

    void *ctx = zmq_ctx_new(), *pub = zmq_socket(ctx, ZMQ_XPUB);
    int zero = 0, linger = 10000;
    zmq_setsockopt(pub, ZMQ_SNDHWM, &zero, sizeof(zero));
    zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof(linger));
    if (zmq_bind(pub, bind) < 0) {
        fprintf(stderr, "na-bench-gen: bind %s: %s\n", bind, zmq_strerror(errno));
        return 1;
    }
    for (int got = 0; got < subscribers;) {
        zmq_pollitem_t it = {pub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, (long)(timeout * 1000)) <= 0) {
            fprintf(stderr, "na-bench-gen: no subscriber within %.0f s\n", timeout);
            return 1;
        }
        char sub[256];
        if (zmq_recv(pub, sub, sizeof(sub), 0) > 0 && sub[0] == 1)
            got++;
    }

    uint64_t t0 = bench_now_ns(), interval = rate > 0 ? (uint64_t)(1e9 / rate) : 0;
    for (unsigned long long i = 0; i < count; i++) {
        const struct encoded *e = &arts[i % n_arts];
        if (interval)
            sleep_until_ns(t0 + i * interval);
        zmq_msg_t m;
        zmq_msg_init_size(&m, e->len);
        memcpy(zmq_msg_data(&m), e->data, e->len);
        bench_mark_write((char *)zmq_msg_data(&m) + e->mark_at, bench_now_ns(), i);
        zmq_send(pub, e->topic, strlen(e->topic), ZMQ_SNDMORE);
        zmq_msg_send(&m, pub, 0);
    }
    uint64_t t1 = bench_now_ns();
    printf("{\"sent\": %llu, \"first_send_ns\": %llu, \"last_send_ns\": %llu, "
           "\"articles_in_feed\": %zu}\n",
           count, (unsigned long long)t0, (unsigned long long)t1, n_arts);
    fflush(stdout);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    for (size_t i = 0; i < n_arts; i++) {
        free(arts[i].data);
        free(arts[i].topic);
    }
    free(arts);
    return 0;
}
