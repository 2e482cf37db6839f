/* newsalert keygen: a CURVE key pair as two certificate files in ZeroMQ's
 * text format, NAME.key (secret, mode 0600) and NAME.pub, readable by
 * newsalertd, czmq's zcert and pyzmq's zmq.auth alike. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "newsalert/cert.h"
#include "newsalert.h"

static void keygen_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert keygen [OPTION]... NAME\n"
        "Write a new CURVE key pair: NAME.key (the secret certificate, created with\n"
        "mode 0600) and NAME.pub (the public certificate, to give to the other side).\n"
        "Existing files are never overwritten. The public key is printed on stdout.\n"
        "  -h, --help    show this help\n"
        "newsalertd takes NAME.key in publish.curve.secret_key or\n"
        "feed.curve.secret_key, and a consumer's NAME.pub in publish.curve.allow_dir.\n");
}

/* Creates path exclusively with mode and writes text; on failure removes
 * what it created. */
static int write_new(const char *path, mode_t mode, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        tool_error("keygen", "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            tool_error("keygen", "%s: %s", path, strerror(errno));
            close(fd);
            unlink(path);
            return -1;
        }
        done += (size_t)n;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        tool_error("keygen", "%s: %s", path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct na_cert c;
    char key_path[4096], pub_path[4096], created[32], text[1024];
    int ch;

    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            keygen_usage(stdout);
            return EXIT_OK;
        default:
            keygen_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || argv[optind][0] == '\0') {
        keygen_usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (snprintf(key_path, sizeof(key_path), "%s.key", name) >= (int)sizeof(key_path) ||
        snprintf(pub_path, sizeof(pub_path), "%s.pub", name) >= (int)sizeof(pub_path)) {
        tool_error("keygen", "NAME is too long");
        return EXIT_USAGE;
    }
    if (access(pub_path, F_OK) == 0) {
        tool_error("keygen", "%s: exists already; not overwritten", pub_path);
        return EXIT_FAIL;
    }
    if (zmq_curve_keypair(c.public_key, c.secret_key) < 0) {
        tool_error("keygen", "cannot make a key pair: %s (libzmq without CURVE?)",
                   zmq_strerror(errno));
        return EXIT_FAIL;
    }
    time_t now = time(NULL);
    struct tm tm;
    strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S", gmtime_r(&now, &tm));

    int status = EXIT_FAIL;
    int n = na_cert_format(&c, true, created, text, sizeof(text));
    /* O_EXCL with mode 0600: the secret is never, even briefly, in a file
     * that others may open, and an existing file is never replaced. */
    if (n < 0 || write_new(key_path, 0600, text, (size_t)n) < 0)
        goto done;
    n = na_cert_format(&c, false, created, text, sizeof(text));
    if (n < 0 || write_new(pub_path, 0644, text, (size_t)n) < 0) {
        unlink(key_path);
        goto done;
    }
    printf("%s\n", c.public_key);
    fprintf(stderr, "newsalert keygen: wrote %s (secret, mode 0600) and %s\n", key_path,
            pub_path);
    status = EXIT_OK;
done:
    memset(&c, 0, sizeof(c));
    memset(text, 0, sizeof(text));
    return status;
}
