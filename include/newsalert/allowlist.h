/* The CURVE client allowlist: the public certificates (*.pub) in one
 * directory, for a ZAP handler to look a client's key up in. The daemon's
 * ZAP handler (daemon/zap.c) and `newsalert proxy` serve their consumers
 * from it. Pure file handling: libzmq only to check each key's value. */
#ifndef NEWSALERT_ALLOWLIST_H
#define NEWSALERT_ALLOWLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "newsalert/error.h"

struct na_allowlist;

/* Reads every *.pub certificate in dir; a missing dir or a malformed file is
 * an error naming it (and what, the option or key that named dir, e.g.
 * "publish.curve.allow_dir"). The caller owns the result (na_allowlist_free). */
struct na_allowlist *na_allowlist_load(const char *dir, const char *what,
                                       struct na_error *err);
void na_allowlist_free(struct na_allowlist *a);
size_t na_allowlist_count(const struct na_allowlist *a);
/* True when the 40-character Z85 public key is one of the directory's. */
bool na_allowlist_has(const struct na_allowlist *a, const char *z85_key);

#endif
