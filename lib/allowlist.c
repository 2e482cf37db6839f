/* The CURVE client allowlist (allowlist.h): every *.pub certificate of a
 * directory, loaded once and kept sorted, so that a ZAP handler's lookup is
 * a bsearch. Deny is the default: an empty directory allows nobody. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "newsalert/allowlist.h"
#include "newsalert/cert.h"

struct na_allowlist {
    char (*keys)[NA_Z85_KEY_LEN + 1]; /* sorted, for bsearch */
    size_t n;
};

static int cmp_key(const void *a, const void *b)
{
    return strcmp(a, b);
}

static bool is_pub(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 4 && !strcmp(name + n - 4, ".pub");
}

struct na_allowlist *na_allowlist_load(const char *dir, const char *what,
                                       struct na_error *err)
{
    struct na_allowlist *a = calloc(1, sizeof(*a));
    size_t cap = 0;
    DIR *dh = NULL;
    struct dirent *e;
    char path[4096];
    uint8_t raw[32];

    if (a == NULL) {
        na_error_set(err, "out of memory");
        return NULL;
    }
    dh = opendir(dir);
    if (dh == NULL) {
        na_error_set(err, "%s: %s: %s", dir, what, strerror(errno));
        goto fail;
    }
    while ((errno = 0, e = readdir(dh)) != NULL) {
        struct na_cert c;
        if (!is_pub(e->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (na_cert_load(path, false, &c, err) < 0)
            goto fail;
        memset(c.secret_key, 0, sizeof(c.secret_key));
        if (zmq_z85_decode(raw, c.public_key) == NULL) {
            na_error_set(err, "%s: the public-key is not a valid Z85 key", path);
            goto fail;
        }
        if (a->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            void *p = realloc(a->keys, ncap * sizeof(*a->keys));
            if (p == NULL) {
                na_error_set(err, "out of memory");
                goto fail;
            }
            a->keys = p;
            cap = ncap;
        }
        memcpy(a->keys[a->n++], c.public_key, NA_Z85_KEY_LEN + 1);
    }
    if (errno) {
        na_error_set(err, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    closedir(dh);
    if (a->n)
        qsort(a->keys, a->n, sizeof(*a->keys), cmp_key);
    return a;
fail:
    if (dh)
        closedir(dh);
    na_allowlist_free(a);
    return NULL;
}

void na_allowlist_free(struct na_allowlist *a)
{
    if (a == NULL)
        return;
    free(a->keys);
    free(a);
}

size_t na_allowlist_count(const struct na_allowlist *a)
{
    return a ? a->n : 0;
}

bool na_allowlist_has(const struct na_allowlist *a, const char *z85_key)
{
    return a && a->n && bsearch(z85_key, a->keys, a->n, sizeof(*a->keys), cmp_key);
}
