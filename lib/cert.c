/* CURVE certificate files in ZeroMQ's ZPL text format: reading (with the
 * permission check on secret keys) and writing. ZPL nests by indentation in
 * steps of four spaces; only curve/public-key and curve/secret-key matter
 * here, and every other section (metadata) is skipped. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "newsalert/cert.h"

static const char z85_chars[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

bool na_z85_key_valid(const char *s, size_t len)
{
    if (len != NA_Z85_KEY_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0' || strchr(z85_chars, s[i]) == NULL)
            return false;
    return true;
}

/* One "name = value" line: the value with its quotes taken off. */
static int split_line(const char *p, const char *end, const char **name, size_t *name_len,
                      const char **value, size_t *value_len)
{
    const char *n = p;
    while (p < end && *p != ' ' && *p != '=' && *p != '\t')
        p++;
    *name = n;
    *name_len = (size_t)(p - n);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    *value = NULL;
    *value_len = 0;
    if (p == end || *p == '#')
        return 0;
    if (*p != '=')
        return -1;
    p++;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p < end && (*p == '"' || *p == '\'')) {
        char q = *p++;
        const char *v = p;
        while (p < end && *p != q)
            p++;
        if (p == end)
            return -1;
        *value = v;
        *value_len = (size_t)(p - v);
        return 0;
    }
    const char *v = p;
    while (p < end && *p != ' ' && *p != '\t' && *p != '#')
        p++;
    *value = v;
    *value_len = (size_t)(p - v);
    return 0;
}

int na_cert_parse(const char *text, size_t len, const char *name, struct na_cert *out,
                  struct na_error *err)
{
    const char *p = text, *end = text + len;
    bool in_curve = false;
    unsigned line = 0;

    memset(out, 0, sizeof(*out));
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        line++;
        if (le > p && le[-1] == '\r')
            le--;
        size_t indent = 0;
        while (p + indent < le && p[indent] == ' ')
            indent++;
        const char *s = p + indent;
        p = eol ? eol + 1 : end;
        if (s == le || *s == '#')
            continue;
        if (memchr(s, '\0', (size_t)(le - s)))
            return na_error_set(err, "%s:%u: a NUL byte: not a certificate", name, line);
        const char *key, *value;
        size_t key_len, value_len;
        if (split_line(s, le, &key, &key_len, &value, &value_len) < 0)
            return na_error_set(err, "%s:%u: expected 'name = \"value\"'", name, line);
        if (indent == 0) {
            in_curve = key_len == 5 && !memcmp(key, "curve", 5);
            continue;
        }
        if (!in_curve || indent != 4)
            continue;
        char *dst = NULL;
        if (key_len == 10 && !memcmp(key, "public-key", 10))
            dst = out->public_key;
        else if (key_len == 10 && !memcmp(key, "secret-key", 10))
            dst = out->secret_key;
        if (dst == NULL)
            continue;
        if (*dst)
            return na_error_set(err, "%s:%u: %.10s given twice", name, line, key);
        if (value == NULL || !na_z85_key_valid(value, value_len))
            return na_error_set(err, "%s:%u: %.10s: expected %d Z85 characters in quotes",
                                name, line, key, NA_Z85_KEY_LEN);
        memcpy(dst, value, NA_Z85_KEY_LEN);
        dst[NA_Z85_KEY_LEN] = '\0';
    }
    if (out->public_key[0] == '\0')
        return na_error_set(err, "%s: no curve public-key: not a CURVE certificate",
                            name);
    return 0;
}

int na_cert_load(const char *path, bool need_secret, struct na_cert *out,
                 struct na_error *err)
{
    char *buf = NULL;
    size_t cap = 0, got = 0;
    struct stat st;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return na_error_set(err, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0) {
        na_error_set(err, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        na_error_set(err, "%s: not a regular file", path);
        goto done;
    }
    if (st.st_size > NA_CERT_MAX_BYTES) {
        na_error_set(err, "%s: %lld bytes: too large for a certificate", path,
                     (long long)st.st_size);
        goto done;
    }
    cap = (size_t)st.st_size + 1;
    buf = malloc(cap);
    if (buf == NULL) {
        na_error_set(err, "%s: out of memory", path);
        goto done;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            na_error_set(err, "%s: %s", path, strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (na_cert_parse(buf, got, path, out, err) < 0)
        goto done;
    if (out->secret_key[0] && (st.st_mode & 077)) {
        na_error_set(err,
                     "%s: holds a secret key but its mode is %04o: it must not be "
                     "accessible by group or others (chmod 600)",
                     path, (unsigned)(st.st_mode & 07777));
        goto done;
    }
    if (need_secret && out->secret_key[0] == '\0') {
        na_error_set(err,
                     "%s: no curve secret-key (a public certificate, not a .key file?)",
                     path);
        goto done;
    }
    rc = 0;
done:
    if (buf) {
        /* The text held the secret key: do not leave it in freed memory. */
        memset(buf, 0, cap);
        free(buf);
    }
    if (rc < 0)
        memset(out, 0, sizeof(*out));
    close(fd);
    return rc;
}

int na_cert_format(const struct na_cert *c, bool with_secret, const char *created,
                   char *buf, size_t len)
{
    int n;
    if (with_secret)
        n = snprintf(buf, len,
                     "#   ****  Generated on %s by newsalert keygen  ****\n"
                     "#   ZeroMQ CURVE **Secret** Certificate\n"
                     "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its "
                     "permissions.\n"
                     "\n"
                     "metadata\n"
                     "curve\n"
                     "    public-key = \"%s\"\n"
                     "    secret-key = \"%s\"\n",
                     created, c->public_key, c->secret_key);
    else
        n = snprintf(buf, len,
                     "#   ****  Generated on %s by newsalert keygen  ****\n"
                     "#   ZeroMQ CURVE Public Certificate\n"
                     "#   Exchange securely, or use a secure mechanism to verify the "
                     "contents\n"
                     "#   of this file after exchange.\n"
                     "\n"
                     "metadata\n"
                     "curve\n"
                     "    public-key = \"%s\"\n",
                     created, c->public_key);
    return n < 0 || (size_t)n >= len ? -1 : n;
}
