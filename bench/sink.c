/* na-bench-sink: subscribes to "alert." and, for each article seen for the
 * first time (several tags publish several copies), records the latency
 * from the generator's send time written into the article id. Stops after
 * --expect distinct articles or --idle seconds without a message, and prints
 * one JSON line of figures on stdout.
 *
 *   na-bench-sink --connect ENDPOINT --expect N [--max-n M] [--idle S]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bench.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1e3; /* microseconds */
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"connect", required_argument, NULL, 'c'},
                                         {"expect", required_argument, NULL, 'e'},
                                         {"max-n", required_argument, NULL, 'm'},
                                         {"idle", required_argument, NULL, 'i'},
                                         {NULL, 0, NULL, 0}};
    const char *endpoint = NULL;
    unsigned long long expect = 0, max_n = 0;
    double idle = 5;
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            endpoint = optarg;
            break;
        case 'e':
            expect = strtoull(optarg, NULL, 10);
            break;
        case 'm':
            max_n = strtoull(optarg, NULL, 10);
            break;
        case 'i':
            idle = strtod(optarg, NULL);
            break;
        default:
            return 64;
        }
    }
    if (endpoint == NULL || expect == 0) {
        fprintf(stderr, "usage: na-bench-sink --connect ENDPOINT --expect N [--max-n M] "
                        "[--idle S]\n");
        return 64;
    }
    if (max_n == 0)
        max_n = expect;
    void *ctx = zmq_ctx_new(), *sub = zmq_socket(ctx, ZMQ_SUB);
    int zero = 0;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &zero, sizeof(zero));
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "alert.", 6);
    if (zmq_connect(sub, endpoint) < 0) {
        fprintf(stderr, "na-bench-sink: connect %s: %s\n", endpoint, zmq_strerror(errno));
        return 1;
    }

    uint8_t *seen = calloc(max_n / 8 + 1, 1);
    uint64_t *lat = malloc(expect * sizeof(*lat));
    unsigned long long got = 0, copies = 0, foreign = 0;
    uint64_t first_ns = 0, last_ns = 0;
    while (got < expect) {
        zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, (long)(idle * 1000)) <= 0)
            break;
        zmq_msg_t m;
        zmq_msg_init(&m);
        int more = 1;
        uint64_t now = 0, send_ns = 0, n = 0;
        int found = -1;
        while (more) {
            if (zmq_msg_recv(&m, sub, 0) < 0)
                break;
            more = zmq_msg_more(&m);
            if (!more) {
                now = bench_now_ns();
                found = bench_mark_read(zmq_msg_data(&m), zmq_msg_size(&m), &send_ns, &n);
            }
        }
        zmq_msg_close(&m);
        /* The driver's warm-up probes carry no mark: the first message of
         * any kind proves the subscription is live. */
        if (copies++ == 0) {
            fprintf(stderr, "na-bench-sink: ready\n");
            fflush(stderr);
        }
        if (found < 0 || n >= max_n) {
            foreign++;
            continue;
        }
        if (seen[n / 8] & (1u << (n % 8)))
            continue;
        seen[n / 8] |= (uint8_t)(1u << (n % 8));
        if (got == 0)
            first_ns = now;
        last_ns = now;
        lat[got++] = now - send_ns;
    }
    qsort(lat, got, sizeof(*lat), cmp_u64);
    printf("{\"received\": %llu, \"copies\": %llu, \"foreign\": %llu, "
           "\"first_recv_ns\": %llu, \"last_recv_ns\": %llu, \"p50_us\": %.1f, "
           "\"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": %.1f}\n",
           got, copies, foreign, (unsigned long long)first_ns,
           (unsigned long long)last_ns, pct(lat, got, 0.5), pct(lat, got, 0.99),
           pct(lat, got, 0.999), got ? (double)lat[got - 1] / 1e3 : 0.0);
    free(seen);
    free(lat);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    return got == expect ? 0 : 2;
}
