/* CURVE certificates in ZeroMQ's text format (ZPL, as czmq's zcert and
 * pyzmq's zmq.auth write them): a "curve" section with public-key and, in a
 * secret certificate, secret-key, both 40-character Z85 strings. The daemon
 * and the newsalert tool read and write keys only through here, so both
 * apply the same checks. Pure file handling: no sockets, no libzmq. */
#ifndef NEWSALERT_CERT_H
#define NEWSALERT_CERT_H

#include <stdbool.h>
#include <stddef.h>

#include "newsalert/error.h"

/* A CURVE key in Z85 text: 40 characters for 32 bytes. */
#define NA_Z85_KEY_LEN 40

/* Files longer than this are not certificates; they are refused unread. */
#define NA_CERT_MAX_BYTES 65536

struct na_cert {
    char public_key[NA_Z85_KEY_LEN + 1];
    char secret_key[NA_Z85_KEY_LEN + 1]; /* "" in a public certificate */
};

/* True when s is exactly NA_Z85_KEY_LEN characters of the Z85 alphabet. (The
 * value check, that every 5-character group fits 32 bits, is libzmq's
 * zmq_z85_decode's job in the callers.) */
bool na_z85_key_valid(const char *s, size_t len);

/* Parses certificate text; name (a path) is only used in messages. Fails,
 * with "name:line: what" in err, on a key that is not 40 Z85 characters, a
 * repeated key, or a certificate without a public-key. */
int na_cert_parse(const char *text, size_t len, const char *name, struct na_cert *out,
                  struct na_error *err);

/* Reads and parses path. With need_secret, a file without a secret-key is an
 * error. A file that holds a secret-key must not be readable or writable by
 * group or others, whatever need_secret says: the message then names the
 * mode. The caller owns out; secret keys never appear in err. */
int na_cert_load(const char *path, bool need_secret, struct na_cert *out,
                 struct na_error *err);

/* Writes the certificate text into buf (of len bytes): the secret form
 * (both keys) when with_secret, else the public form. created is a
 * timestamp for the header comment. Returns the text length, or -1 when buf
 * is too small. */
int na_cert_format(const struct na_cert *c, bool with_secret, const char *created,
                   char *buf, size_t len);

#endif
