"""One stream from several newsalertd that tag the same feed: an
active-active pair (or more), or shards that split the sources.

Each daemon is followed by its own Client (its epoch, its seqs, its
catch-up), and each alert key is handed out once, in arrival order. The
alert key is (source, article_id, revision) with each followed tag: two
daemons given the same input make the same key, so the copy that arrives
second is dropped. The last `window` keys handed out are remembered (as the
C library's merge.h does); a copy arriving later than that would be handed
out again, so size the window to what arrives while a daemon may be down.
"""

import time
from collections import OrderedDict

import zmq

from .client import Client
from .errors import CatchupRefused, NewsalertError

DEFAULT_WINDOW = 262144


def _escape(s):
    return s.replace("%", "%25").replace("/", "%2F")


def alert_key(alert):
    """The alert key of an alert: "source/article_id/revision", with '%' and
    '/' in source and article_id escaped (the same text as na_alert_key)."""
    return "%s/%s/%d" % (_escape(alert.source), _escape(alert.article_id), alert.revision)


class MultiClient:
    """Follows several daemons and yields each alert key once.

    daemons  a list of (alerts, catchup) endpoint pairs, one per daemon
             (catchup may be None); the other arguments are Client's and
             apply to every daemon
    window   alert keys remembered to drop the copies of the others

    next() returns (alert, i), i being the index of the daemon it came from.
    A daemon that refuses a catch-up request is followed live and the
    refusal is one of warnings(); the others go on.
    """

    def __init__(self, daemons, tags=(), window=DEFAULT_WINDOW, context=None, **kw):
        if not daemons:
            raise NewsalertError("no daemons to follow")
        if window < 1:
            raise NewsalertError("the dedup window must hold at least one key")
        if isinstance(tags, str):
            tags = (tags,)
        self.tags = tuple(dict.fromkeys(tags))
        self._own_ctx = context is None
        self._ctx = context or zmq.Context()
        self.clients = []
        try:
            for alerts, catchup in daemons:
                self.clients.append(Client(alerts, catchup, tags=self.tags,
                                           context=self._ctx, **kw))
        except Exception:
            self.close()
            raise
        # One alert adds a key per followed tag: at least room for them all.
        self.window = max(window, len(self.tags) + 1, 33)
        self._seen = OrderedDict()
        self._rr = 0
        self._warnings = []
        self.delivered = 0
        self.duplicates = 0
        self.forgotten = 0

    def close(self):
        for c in self.clients:
            c.close()
        self.clients = []
        if self._own_ctx and self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __iter__(self):
        while True:
            r = self.next(None)
            if r is not None:
                yield r

    def warnings(self):
        """Each daemon's warnings since the last call, as (i, text)."""
        w, self._warnings = self._warnings, []
        for i, c in enumerate(self.clients):
            w.extend((i, text) for text in c.warnings())
        return w

    def busy(self):
        return any(c.busy() for c in self.clients)

    def _is_new(self, alert):
        base = alert_key(alert)
        fresh = False
        tags = [t.tag for t in alert.tags if not self.tags or t.tag in self.tags] or [""]
        for tag in tags:
            k = base + "#" + tag
            if k in self._seen:
                continue
            fresh = True
            self._seen[k] = None
            if len(self._seen) > self.window:
                self._seen.popitem(last=False)
                self.forgotten += 1
        return fresh

    def next(self, timeout=None):
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            n = len(self.clients)
            for k in range(n):
                i = (self._rr + k) % n
                c = self.clients[i]
                while True:
                    try:
                        a = c.next(0)
                    except CatchupRefused as e:
                        self._warnings.append((i, str(e)))
                        break
                    if a is None:
                        break
                    if self._is_new(a):
                        self.delivered += 1
                        self._rr = i + 1
                        return a, i
                    self.duplicates += 1
            now = time.monotonic()
            if until is not None and now >= until:
                return None
            wait = 1.0 if until is None else min(1.0, until - now)
            poller = zmq.Poller()
            for c in self.clients:
                t = c._timer_at()
                if t is not None:
                    wait = min(wait, max(0.0, t - now))
                for sock in c._sockets():
                    poller.register(sock, zmq.POLLIN)
            try:
                poller.poll(wait * 1000 + (1 if wait > 0 else 0))
            except InterruptedError:
                return None
