/* A message buffer that library calls fill in when they fail, so that the
 * caller decides where the text goes (stderr, a log, an HTTP reply). */
#ifndef NEWSALERT_ERROR_H
#define NEWSALERT_ERROR_H

#include <stddef.h>

struct na_error {
    char msg[512];
};

/* Formats into err (when err is not NULL). Always returns -1, so that a
 * failing path can say `return na_error_set(err, ...);`. */
int na_error_set(struct na_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
