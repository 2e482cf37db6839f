"""The exceptions of the newsalert package."""


class NewsalertError(Exception):
    """Base of every error this package raises."""


class KeyFileError(NewsalertError):
    """A CURVE certificate file that cannot be used; the message names the
    file (and the line, for a format error)."""


class CatchupRefused(NewsalertError):
    """The daemon answered a catch-up request with ERROR (an unknown tag, a
    range too large). The client goes on with live alerts only."""
