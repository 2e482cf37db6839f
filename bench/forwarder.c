/* na-bench-forwarder: the ceiling the daemon is measured against. One
 * thread, SUB to PUB, no decoding: each message is received and sent on with
 * its topic frame replaced by "alert.fwd", so the same sink reads both.
 *
 *   na-bench-forwarder --bind ENDPOINT --connect ENDPOINT [--connect ...]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"bind", required_argument, NULL, 'b'},
                                         {"connect", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    const char *bind = NULL, *connect[8];
    int n_connect = 0, c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'b')
            bind = optarg;
        else if (c == 'c' && n_connect < 8)
            connect[n_connect++] = optarg;
        else
            return 64;
    }
    if (bind == NULL || n_connect == 0) {
        fprintf(stderr,
                "usage: na-bench-forwarder --bind ENDPOINT --connect ENDPOINT...\n");
        return 64;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    void *ctx = zmq_ctx_new(), *sub = zmq_socket(ctx, ZMQ_SUB),
         *pub = zmq_socket(ctx, ZMQ_PUB);
    int hwm = 100000, linger = 2000;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    if (zmq_bind(pub, bind) < 0) {
        fprintf(stderr, "na-bench-forwarder: bind %s: %s\n", bind, zmq_strerror(errno));
        return 1;
    }
    for (int i = 0; i < n_connect; i++)
        zmq_connect(sub, connect[i]);

    zmq_msg_t m;
    zmq_msg_init(&m);
    while (!stop) {
        /* A message is [topic, payload]: the topic is replaced, the rest
         * moves through untouched (zero-copy). */
        if (zmq_msg_recv(&m, sub, 0) < 0)
            continue;
        int more = zmq_msg_more(&m);
        zmq_send(pub, "alert.fwd", 9, more ? ZMQ_SNDMORE : 0);
        while (more) {
            if (zmq_msg_recv(&m, sub, 0) < 0)
                break;
            more = zmq_msg_more(&m);
            zmq_msg_send(&m, pub, more ? ZMQ_SNDMORE : 0);
        }
    }
    zmq_msg_close(&m);
    zmq_close(sub);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    return 0;
}
