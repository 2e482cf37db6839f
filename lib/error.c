/* na_error: the message buffer of failing library calls. */
#include <stdarg.h>
#include <stdio.h>

#include "newsalert/error.h"

int na_error_set(struct na_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return -1;
}
