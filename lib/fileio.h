/* File helpers shared by the journal and the quarantine (private to lib/). */
#ifndef NA_LIB_FILEIO_H
#define NA_LIB_FILEIO_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* Writes all n bytes, retrying on EINTR and short writes; a write of 0 is
 * reported as ENOSPC. Returns -1 with errno set on failure. */
static inline int na_write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = ENOSPC;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Parses file names of the form PREFIX + 20 decimal digits + SUFFIX (the
 * journal's segments and the quarantine's files): true, with the number in
 * *out, for exactly that shape and a number that fits 64 bits. */
static inline bool na_parse_numbered_name(const char *name, const char *prefix,
                                          const char *suffix, uint64_t *out)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    if (strlen(name) != pl + 20 + sl || strncmp(name, prefix, pl) != 0 ||
        strcmp(name + pl + 20, suffix) != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = pl; i < pl + 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

#endif
