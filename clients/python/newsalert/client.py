"""A consumer of newsalertd's alerts that loses nothing the daemon kept: the
live SUB socket and the catch-up DEALER merged into one stream, in seq
order, each alert once (the ZeroMQ Guide's Clone pattern, as the C client
of include/newsalert/client.h does it).

How it knows nothing is missing. The client keeps a frontier L: every alert
of its tags with seq <= L has been handed out. The lowest alert it holds,
with seq s, is handed out when nothing of its tags can lie between L and s:

  - s == L + 1; or
  - for each followed topic T, T's number at L is known (tq[T]) and either
    the alert is on T with topic_seq tq[T] + 1, or it is not on T and the
    next alert of T (topic_seq tq[T] + 1) is held with a higher seq, or a
    heartbeat with last_seq >= s said T stood at tq[T].

A gap is proved by a topic_seq (or, with every tag followed, a seq) that
skips numbers, or by a heartbeat ahead of what arrived (the end of a burst).
It is asked for from catch-up as the range (L, X]; the END of that stream
moves L to X. With several tags, an alert of one tag may wait for the next
heartbeat, or for a catch-up after `hold` seconds, until the client knows
that no alert of another tag came before it. A new epoch (the daemon's
journal started over) is followed from its seq 1.
"""

import heapq
import time
from collections import deque
from dataclasses import dataclass

import zmq

from .errors import CatchupRefused, NewsalertError
from .keys import load_certificate
from .v1 import alert_pb2, catchup_pb2

HEARTBEAT_TOPIC = b"~hb"
_ALERT = catchup_pb2.CatchupReply.KIND_ALERT
_END = catchup_pb2.CatchupReply.KIND_END
_GONE = catchup_pb2.CatchupReply.KIND_GONE
_ERROR = catchup_pb2.CatchupReply.KIND_ERROR


@dataclass
class Stats:
    """What the client has seen, as na_client_stats, plus its own."""
    delivered: int = 0    # alerts handed out
    live: int = 0         # of which came on the live socket
    caught_up: int = 0    # of which came from catch-up
    duplicates: int = 0   # copies dropped (another topic, or both paths)
    gaps: int = 0         # gaps seen in the numbering (alerts or heartbeat)
    requests: int = 0     # catch-up requests sent
    gone: int = 0         # seqs the journal no longer had
    restarts: int = 0     # epoch changes: the daemon's numbering started over
    invalid: int = 0      # messages that were not valid alerts, heartbeats or replies
    heartbeats: int = 0   # the daemon's heartbeats received
    stale: int = 0        # messages of an epoch already left behind
    timeouts: int = 0     # catch-up requests that got no answer in time
    unrepaired: int = 0   # gaps given up on (no catch-up, or it never answered)


def _topics(alert):
    return {t.topic: t.seq for t in alert.topics}


class Client:
    """Subscribes to newsalertd's alerts and yields them in order, once.

    alerts   the daemon's alert (PUB) endpoint, e.g. "tcp://127.0.0.1:5556"
    catchup  its catch-up (ROUTER) endpoint; None: live only, gaps are
             counted but cannot be repaired
    tags     tags to follow ("aid", ...); empty: every tag
    since    start from history: every alert with seq > since before the
             live ones (needs catchup); None: from the first one received
    server_key  the daemon's public certificate (.pub) for CURVE
    client_key  our secret certificate (.key, mode 0600) whose .pub is in
             the daemon's publish.curve.allow_dir; without it, CURVE uses a
             throwaway key pair
    catchup_timeout  seconds to wait for a catch-up answer before asking
             again (twice), then giving the gap up
    hold     seconds an alert may wait for proof that no alert of another
             followed tag came before it, before catch-up is asked;
             None: 1.5 heartbeat intervals (1.5 s until one is seen)
    """

    def __init__(self, alerts, catchup=None, tags=(), since=None, server_key=None,
                 client_key=None, rcvhwm=1000, catchup_timeout=5.0, hold=None,
                 context=None):
        if isinstance(tags, str):
            tags = (tags,)
        if since is not None and catchup is None:
            raise NewsalertError("history (since) needs a catch-up endpoint")
        if client_key is not None and server_key is None:
            raise NewsalertError("client_key needs server_key (the daemon's .pub)")
        for t in tags:
            if not t or "." in t or t.startswith("~"):
                raise NewsalertError("%r is not a tag name" % (t,))
        self.tags = tuple(dict.fromkeys(tags))
        self._followed = frozenset("alert." + t for t in self.tags)
        self._alerts_ep, self._catchup_ep = alerts, catchup
        self._catchup_timeout = catchup_timeout
        self._hold = hold
        self._curve = None
        if server_key is not None:
            server_pub, _ = load_certificate(server_key)
            if client_key is not None:
                pub, sec = load_certificate(client_key, need_secret=True)
            else:
                pub, sec = (k.decode() for k in zmq.curve_keypair())
            self._curve = (server_pub, pub, sec)
        self._own_ctx = context is None
        self._ctx = context or zmq.Context()
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.RCVHWM, rcvhwm)
        self._sub.setsockopt(zmq.LINGER, 0)
        # A dead daemon is noticed (and reconnected to) within seconds.
        self._sub.setsockopt(zmq.HEARTBEAT_IVL, 2000)
        self._sub.setsockopt(zmq.HEARTBEAT_TIMEOUT, 10000)
        self._sub.setsockopt(zmq.HEARTBEAT_TTL, 10000)
        self._sub.setsockopt(zmq.SUBSCRIBE, HEARTBEAT_TOPIC)
        for topic in sorted(self._followed) or ["alert."]:
            self._sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._set_curve(self._sub)
        self._sub.connect(alerts)
        self._dealer = None
        if catchup is not None:
            self._new_dealer()

        self.stats = Stats()
        self._warnings = []
        self.epoch = 0
        self._prev_epoch = None
        self._started = False   # the frontier is defined
        self._L = 0             # frontier: all followed alerts <= L handed out
        self._tq = {}           # topic -> its topic_seq at L (None: unknown)
        self._marks = {}        # topic -> highest topic_seq seen (None: unknown)
        self._max_seen = 0      # highest seq seen (every tag followed)
        self._held = {}         # seq -> (Alert, came live)
        self._heap = []
        self._held_t = {}       # topic -> {topic_seq: seq} of held alerts
        self._hb = None         # (last_seq, {topic: seq}) of the last heartbeat
        self._hb_interval = None
        self._want = 0          # catch-up must cover up to here
        self._blocked_since = None   # when the lowest held alert began to wait
        self._blocked_seq = None     # ... and its seq
        self._inflight = None   # (since, until, deadline, tries)
        self._retry_at = None   # when to send a refused ("busy") request again
        self._retry_until = 0
        self._ready = deque()
        if since is not None:
            self._start_at(since, 0 if since == 0 else None)
            self._want = -1     # an open-ended request: everything after since
            self._request(since, 0)

    # ---- sockets ----

    def _set_curve(self, sock):
        if self._curve:
            server_pub, pub, sec = self._curve
            sock.curve_serverkey = server_pub.encode()
            sock.curve_publickey = pub.encode()
            sock.curve_secretkey = sec.encode()

    def _new_dealer(self):
        """A fresh DEALER: replies to an abandoned request, which carry no
        request id, can then never be taken for the answer to a new one."""
        if self._dealer is not None:
            self._dealer.close(0)
        self._dealer = self._ctx.socket(zmq.DEALER)
        self._dealer.setsockopt(zmq.LINGER, 0)
        # A finite pipe: the daemon's ROUTER waits while it is full instead
        # of pushing a whole history into memory.
        self._dealer.setsockopt(zmq.RCVHWM, 1000)
        self._set_curve(self._dealer)
        self._dealer.connect(self._catchup_ep)

    def close(self):
        """Closes the sockets (and the context, when the client made it)."""
        if self._sub is None:
            return
        self._sub.close(0)
        if self._dealer is not None:
            self._dealer.close(0)
        self._sub = self._dealer = None
        if self._own_ctx:
            self._ctx.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def warnings(self):
        """The warnings worth showing a person since the last call (history
        gone, the daemon's numbering started over, a gap given up)."""
        w, self._warnings = self._warnings, []
        return w

    def busy(self):
        """True while a catch-up is in flight or alerts wait to be handed out."""
        return bool(self._inflight or self._held or self._ready)

    # ---- the stream ----

    def __iter__(self):
        while True:
            a = self.next(None)
            if a is not None:
                yield a

    def next(self, timeout=None):
        """The next alert in order (an alert_pb2.Alert), or None when timeout
        seconds (None: forever) pass without one. Raises CatchupRefused when
        the daemon refused a catch-up request; the client then goes on live."""
        until = None if timeout is None else time.monotonic() + timeout
        polled = False
        while True:
            if self._ready:
                a = self._ready.popleft()
                self.stats.delivered += 1
                return a
            now = time.monotonic()
            self._timers(now)
            if self._ready:
                continue
            if until is not None and now >= until:
                if polled:
                    return None
                wait = 0.0   # next(0): one pass over what is already there
            else:
                wait = 1.0 if until is None else until - now
            polled = True
            t = self._timer_at()
            if t is not None:
                wait = min(wait, max(0.0, t - now))
            poller = zmq.Poller()
            for sock in self._sockets():
                poller.register(sock, zmq.POLLIN)
            try:
                poller.poll(min(wait, 1.0) * 1000 + (1 if wait > 0 else 0))
            except InterruptedError:
                return None
            # Replies first: they fill the gap that held alerts wait on.
            for _ in range(256):
                if self._dealer is None:
                    break
                try:
                    frames = self._dealer.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._on_reply(frames)
            for _ in range(256):
                try:
                    frames = self._sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if len(frames) == 2 and frames[0] == HEARTBEAT_TOPIC:
                    self._on_heartbeat(frames[1])
                elif len(frames) == 2:
                    self._on_live(frames[0], frames[1])
                else:
                    self.stats.invalid += 1
            self._advance()

    def _sockets(self):
        """The sockets to wait on (the DEALER changes after a retry)."""
        return [self._sub] + ([self._dealer] if self._dealer is not None else [])

    def _timer_at(self):
        """When the next internal timer falls due (monotonic), or None."""
        hold_at = None
        if self._blocked_since is not None and not (self._inflight or self._retry_at):
            hold_at = self._blocked_since + self._hold_s()
        due = [t for t in (self._inflight and self._inflight[2], self._retry_at, hold_at)
               if t]
        return min(due) if due else None

    # ---- bookkeeping ----

    def _warn(self, text):
        self._warnings.append(text)

    def _hold_s(self):
        if self._hold is not None:
            return self._hold
        return 1.5 * (self._hb_interval or 1.0)

    def _follows(self, topic):
        if self._followed:
            return topic in self._followed
        return topic.startswith("alert.")

    def _ours(self, alert):
        """{topic: topic_seq} of the followed topics the alert is on."""
        return {t: s for t, s in _topics(alert).items() if self._follows(t)}

    def _start_at(self, seq, tseq):
        """The frontier at seq, every followed topic at tseq (None: unknown)."""
        self._started = True
        self._L = self._max_seen = seq
        self._tq = {t: tseq for t in self._followed}
        self._marks = dict(self._tq)

    def _epoch_ok(self, epoch):
        """Whether a message of this epoch is to be used; switches epochs."""
        if epoch == self.epoch:
            return True
        if self.epoch == 0:
            self.epoch = epoch
            return True
        if epoch == self._prev_epoch:
            self.stats.stale += 1   # still queued from the daemon that went away
            return False
        self._new_epoch(epoch)
        return True

    def _new_epoch(self, epoch):
        # What is held came from the old daemon, whose journal is gone: it
        # goes out in order; a gap before it can no longer be repaired.
        if self._held and not self._deliverable(self._held[self._heap[0]][0]):
            self.stats.unrepaired += 1
        self._flush_held(None)
        self.stats.restarts += 1
        self._warn("the daemon's numbering started over (epoch %d, was %d)"
                   % (epoch, self.epoch))
        self._prev_epoch, self.epoch = self.epoch, epoch
        self._start_at(0, 0)
        self._hb = None
        self._want = 0
        self._retry_at = None
        self._blocked_since = self._blocked_seq = None
        if self._inflight is not None:
            self._inflight = None
            self._new_dealer()

    def _hold_alert(self, alert, live):
        s = alert.seq
        if s <= self._L or s in self._held:
            self.stats.duplicates += 1
            return False
        self._held[s] = (alert, live)
        heapq.heappush(self._heap, s)
        for t, k in self._ours(alert).items():
            self._held_t.setdefault(t, {})[k] = s
        return True

    def _hand_out(self, s):
        alert, live = self._held.pop(s)
        heapq.heappop(self._heap)
        for t, k in self._ours(alert).items():
            self._tq[t] = k
            m = self._marks.get(t)
            self._marks[t] = k if m is None else max(m, k)
            held = self._held_t.get(t)
            if held and held.get(k) == s:
                del held[k]
        self._L = s
        self._max_seen = max(self._max_seen, s)
        if live:
            self.stats.live += 1
        else:
            self.stats.caught_up += 1
        self._ready.append(alert)

    def _flush_held(self, upto):
        """Hands out every held alert with seq <= upto (None: all), in order."""
        while self._heap and (upto is None or self._heap[0] <= upto):
            self._hand_out(self._heap[0])

    def _deliverable(self, alert):
        s = alert.seq
        if s == self._L + 1:
            return True
        if not self._followed:
            return False   # every tag followed: every seq is ours
        ours = self._ours(alert)
        for t in self._followed:
            tq = self._tq.get(t)
            if tq is None:
                return False
            if t in ours:
                if ours[t] != tq + 1:
                    return False
                continue
            nxt = self._held_t.get(t, {}).get(tq + 1)
            if nxt is not None and nxt > s:
                continue
            if self._hb and self._hb[0] >= s and self._hb[1].get(t, 0) == tq:
                continue
            return False
        return True

    def _advance(self):
        while self._heap and self._deliverable(self._held[self._heap[0]][0]):
            self._hand_out(self._heap[0])
        if not self._heap:
            self._blocked_since = self._blocked_seq = None
        elif self._dealer is None:
            # Live only: nothing can be repaired (the gaps are counted where
            # they are seen); in order is what is left.
            self._flush_held(None)
            self._blocked_since = self._blocked_seq = None
        elif self._blocked_seq != self._heap[0]:
            self._blocked_since, self._blocked_seq = time.monotonic(), self._heap[0]
        if self._want > 0 and self._want <= self._L:
            self._want = 0
        if self._dealer is None or self._inflight or self._retry_at:
            return
        if self._want > self._L:
            self._request(self._L, self._want)
        elif (self._blocked_since is not None
              and time.monotonic() - self._blocked_since >= self._hold_s()):
            self._request(self._L, self._heap[0] - 1)

    def _timers(self, now):
        if self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            if self._dealer is not None and (self._retry_until == 0
                                             or self._retry_until > self._L):
                self._request(self._L, self._retry_until)
            self._advance()
        if self._inflight is not None and now >= self._inflight[2]:
            since, until, _, tries = self._inflight
            self.stats.timeouts += 1
            self._inflight = None
            self._new_dealer()
            if tries < 3:
                self._request(self._L, until, tries + 1)
            else:
                self.stats.unrepaired += 1
                self._warn("the catch-up endpoint did not answer; %d held alerts "
                           "handed out (request since %d)" % (len(self._held), since))
                self._flush_held(None)
                self._want = 0
                self._blocked_since = self._blocked_seq = None
        if (self._blocked_since is not None and not self._inflight
                and now - self._blocked_since >= self._hold_s()):
            self._advance()

    # ---- catch-up ----

    def _request(self, since, until, tries=1):
        r = catchup_pb2.CatchupRequest(since_seq=since, until_seq=until, tags=list(self.tags))
        self._dealer.send(r.SerializeToString())
        self._inflight = (since, until, time.monotonic() + self._catchup_timeout, tries)
        self.stats.requests += 1

    def _on_reply(self, frames):
        try:
            if len(frames) != 1:
                raise ValueError
            r = catchup_pb2.CatchupReply.FromString(frames[0])
        except Exception:
            self.stats.invalid += 1
            return
        if self._inflight is None:
            return
        since, until, _, tries = self._inflight
        self._inflight = (since, until, time.monotonic() + self._catchup_timeout, tries)
        if r.epoch and r.epoch != self.epoch:
            restarted = self.epoch != 0
            if not self._epoch_ok(r.epoch) or restarted:
                return   # a stale answer, or the request was about another epoch
        if r.kind == _ALERT:
            if r.HasField("alert") and r.alert.seq:
                self._hold_alert(r.alert, False)
            return
        self._inflight = None
        if r.kind == _END:
            self._end(until if until else r.last_seq)
        elif r.kind == _GONE:
            oldest = r.oldest_seq
            lost = max(0, oldest - 1 - since)
            self.stats.gone += lost
            self._warn("alerts %d to %d are no longer in the daemon's journal"
                       % (since + 1, oldest - 1 if oldest else 0))
            self._flush_held(oldest - 1)
            if oldest - 1 > self._L:
                self._L = oldest - 1
                # What each topic stood at went with the lost alerts.
                self._tq = {t: None for t in self._followed}
                self._marks = dict(self._tq)
            if until == 0 or until > self._L:
                self._request(self._L, until)
        elif r.kind == _ERROR:
            if r.error.startswith("busy"):
                # Too many catch-up clients: the same request, a little later.
                self._retry_at = time.monotonic() + 0.5
                self._retry_until = until
                return
            self._dealer.close(0)
            self._dealer = None
            self._want = 0
            self._advance()
            raise CatchupRefused("catch-up refused: %s" % r.error)
        else:
            self.stats.invalid += 1

    def _end(self, covered):
        """Every followed alert with seq <= covered is now in hand."""
        self._flush_held(covered)
        if covered > self._L:
            self._L = covered
        self._max_seen = max(self._max_seen, covered)
        if self._want == -1 or self._want <= self._L:
            self._want = 0
        # A topic with no alert in hand: the last heartbeat within the
        # covered range says where it stands (no alert of it came since).
        if self._hb and self._hb[0] <= self._L:
            for t in self._followed:
                if self._tq.get(t) is None:
                    q = self._hb[1].get(t, 0)
                    self._tq[t] = q
                    self._marks[t] = max(self._marks.get(t) or 0, q)

    # ---- live ----

    def _on_live(self, topic, body):
        try:
            a = alert_pb2.Alert.FromString(body)
            topic = topic.decode()
        except Exception:
            self.stats.invalid += 1
            return
        if a.seq == 0 or a.epoch == 0:
            self.stats.invalid += 1
            return
        if not self._follows(topic):
            return   # a prefix subscription to alert.aid also takes alert.aidx
        if not self._epoch_ok(a.epoch):
            return
        ours = self._ours(a)
        if not self._started:
            self._start_at(a.seq - 1, None)
            for t, k in ours.items():
                self._tq[t] = self._marks[t] = k - 1
        gap = False
        if self._followed:
            for t, k in ours.items():
                m = self._marks.get(t)
                if m is not None:
                    gap |= k > m + 1
                    self._marks[t] = max(m, k)
        else:
            gap = a.seq > self._max_seen + 1
        self._max_seen = max(self._max_seen, a.seq)
        if not self._hold_alert(a, True):
            return
        if gap:
            self.stats.gaps += 1
            self._want = max(self._want, a.seq - 1)

    def _on_heartbeat(self, body):
        try:
            hb = alert_pb2.Heartbeat.FromString(body)
        except Exception:
            self.stats.invalid += 1
            return
        if hb.epoch == 0:
            self.stats.invalid += 1
            return
        if not self._epoch_ok(hb.epoch):
            return
        self.stats.heartbeats += 1
        if hb.interval_ms:
            self._hb_interval = hb.interval_ms / 1000.0
        last, topics = hb.last_seq, {t.topic: t.seq for t in hb.topics}
        if not self._started:
            # Nothing received yet: where numbering stands is the start.
            self._start_at(last, None)
            for t in self._followed:
                self._tq[t] = self._marks[t] = topics.get(t, 0)
        self._hb = (last, topics)
        gap = False
        if not self._followed:
            gap = last > self._max_seen
            self._max_seen = max(self._max_seen, last)
        for t in self._followed:
            q = topics.get(t, 0)
            if self._tq.get(t) is None:
                if last <= self._L or q == 0:
                    self._tq[t] = q
                    self._marks[t] = max(self._marks.get(t) or 0, q)
                elif self._want != -1:
                    # Where t stood at L is unknown: catch-up up to here tells.
                    self._want = max(self._want, last)
                continue
            m = self._marks.get(t)
            if m is not None and q > m:
                gap = True
                self._marks[t] = q
        if gap:
            self.stats.gaps += 1
            if self._want != -1:
                self._want = max(self._want, last)
