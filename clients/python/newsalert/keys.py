"""CURVE certificate files in ZeroMQ's text format (ZPL), as `newsalert
keygen`, czmq's zcert and pyzmq's zmq.auth write them: a "curve" section
with public-key and, in a secret certificate (NAME.key), secret-key, both
40 Z85 characters. The checks are the daemon's own (lib/cert.c): a secret
certificate must not be open to group or others, and a key must be 40 Z85
characters in quotes."""

import os
import stat

from .errors import KeyFileError

Z85_KEY_LEN = 40
MAX_BYTES = 65536
_Z85 = frozenset("0123456789abcdefghijklmnopqrstuvwxyz"
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")


def z85_key_valid(s):
    return len(s) == Z85_KEY_LEN and all(c in _Z85 for c in s)


def _split(line):
    """(name, value or None) of one 'name = "value"' line; None on bad syntax."""
    i = 0
    while i < len(line) and line[i] not in " \t=":
        i += 1
    name, rest = line[:i], line[i:].lstrip(" \t")
    if not rest or rest[0] == "#":
        return name, None
    if rest[0] != "=":
        return None
    rest = rest[1:].lstrip(" \t")
    if rest[:1] in ('"', "'"):
        end = rest.find(rest[0], 1)
        if end < 0:
            return None
        return name, rest[1:end]
    value = rest
    for stop in " \t#":
        value = value.split(stop, 1)[0]
    return name, value


def parse_certificate(text, name="<certificate>"):
    """(public_key, secret_key or None) from certificate text, as str."""
    keys = {}
    in_curve = False
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        body = line.lstrip(" ")
        indent = len(line) - len(body)
        if not body or body[0] == "#":
            continue
        if "\0" in body:
            raise KeyFileError("%s:%d: a NUL byte: not a certificate" % (name, lineno))
        kv = _split(body)
        if kv is None:
            raise KeyFileError("%s:%d: expected 'name = \"value\"'" % (name, lineno))
        key, value = kv
        if indent == 0:
            in_curve = key == "curve"
            continue
        if not in_curve or indent != 4 or key not in ("public-key", "secret-key"):
            continue
        if key in keys:
            raise KeyFileError("%s:%d: %s given twice" % (name, lineno, key))
        if value is None or not z85_key_valid(value):
            raise KeyFileError("%s:%d: %s: expected %d Z85 characters in quotes"
                               % (name, lineno, key, Z85_KEY_LEN))
        keys[key] = value
    if "public-key" not in keys:
        raise KeyFileError("%s: no curve public-key: not a CURVE certificate" % name)
    return keys["public-key"], keys.get("secret-key")


def load_certificate(path, need_secret=False):
    """Reads a certificate file: (public_key, secret_key or None). With
    need_secret, a public certificate (no secret-key) is an error. A file
    holding a secret key must have no permissions for group or others."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as e:
        raise KeyFileError("%s: %s" % (path, e.strerror)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError("%s: not a regular file" % path)
        if st.st_size > MAX_BYTES:
            raise KeyFileError("%s: %d bytes: too large for a certificate"
                               % (path, st.st_size))
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_BYTES + 1)
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFileError("%s: not UTF-8 text: not a certificate" % path) from None
    public, secret = parse_certificate(text, path)
    if secret is not None and st.st_mode & 0o077:
        raise KeyFileError("%s: holds a secret key but its mode is %04o: it must not be "
                           "accessible by group or others (chmod 600)"
                           % (path, st.st_mode & 0o7777))
    if need_secret and secret is None:
        raise KeyFileError("%s: no curve secret-key (a public certificate, not a .key "
                           "file?)" % path)
    return public, secret
