"""newsalertd's delivery guarantees under faults, with the real daemon, the
real tools and real sockets: kill -9 in the middle of a replay, consumers
that sleep or start late, a damaged journal, a storm of reloads, a feed
publisher that restarts, a flood of malformed input, and the catch-up
protocol spoken by a plain pyzmq DEALER with Python's own protobuf runtime.

Random choices (kill points, truncation offsets) come from one seed,
printed at the start of each test; NA_TEST_SEED=N repeats a run."""

import errno
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import zmq

from harness import (BIN, POSITIVE, SRC, WAIT, Daemon, Feed, alert_pb2, article,
                     article_pb2, check_clean_exit, load_json, probe_article, start_consumer,
                     start_tail, wait_quiet)
from newsalert.v1 import catchup_pb2  # noqa: E402  (compiled by the harness)
from test_daemon import MALFORMED
from test_journal_tools import parse_segment
from test_metrics import curl, http_port, parse, value

NEWSALERT = os.path.join(BIN, "newsalert")
PROBE = os.path.join(BIN, "na-client-probe")
RULES = os.path.join(SRC, "config", "rules")
# Deadline for work that scales with the machine's load (and the sanitizer
# build's slowness, like harness.WAIT).
LONG = 6 * WAIT
SCALE = WAIT / 20.0   # 1, or more for the slower sanitizer build

ALERT = catchup_pb2.CatchupReply.KIND_ALERT
END = catchup_pb2.CatchupReply.KIND_END
GONE = catchup_pb2.CatchupReply.KIND_GONE
ERROR = catchup_pb2.CatchupReply.KIND_ERROR


def seeded(test):
    seed = int(os.environ.get("NA_TEST_SEED", random.randrange(1 << 30)))
    print("%s: NA_TEST_SEED=%d" % (test.id(), seed))
    return random.Random(seed)


def tool(*args, timeout=LONG):
    return subprocess.run([NEWSALERT] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)


def journal_dir(daemon):
    return os.path.join(daemon.state_dir, "journal")


def read_journal(daemon, *args):
    """(exit status, alerts as dicts, stderr) of `newsalert journal --json`."""
    r = tool("journal", journal_dir(daemon), "--json", *args)
    return r.returncode, [load_json(x) for x in r.stdout.splitlines()], r.stderr


def wait_journal(daemon, count, timeout=LONG):
    """Waits until the journal holds an alert with seq >= count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = tool("journal", journal_dir(daemon), "--since", count - 1)
        if r.returncode == 0 and r.stdout:
            return
        if daemon.proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError("the journal never reached seq %d:\n%s" % (count, daemon.text()))


def journal_line(daemon):
    """(epoch, seq) from the daemon's start-up line about its journal."""
    daemon.wait_log("ready:")
    m = re.search(r"journal: \S+, epoch (\d+), seq (\d+),", daemon.text())
    return int(m.group(1)), int(m.group(2))


def positives(prefix, n, start=0, **kw):
    return [article("%s-%d" % (prefix, i), *POSITIVE, **kw) for i in range(start, start + n)]


def sub_socket(ctx, endpoint, prefix="alert.", hwm=0):
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.RCVHWM, hwm)
    s.setsockopt(zmq.SUBSCRIBE, prefix.encode())
    s.connect(endpoint)
    return s


def drain(sock, into, timeout=0.0):
    """Receives every alert waiting (up to timeout for the first one) into
    the dict into: seq -> Alert."""
    while sock.poll(int(timeout * 1000)):
        frames = sock.recv_multipart()
        a = alert_pb2.Alert.FromString(frames[-1])
        into.setdefault(a.seq, a)
        timeout = 0


def recv_until(sock, article_id, into, timeout=LONG):
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sock.poll(int(left * 1000)):
            raise AssertionError("no alert for %s" % article_id)
        a = alert_pb2.Alert.FromString(sock.recv_multipart()[-1])
        into.setdefault(a.seq, a)
        if a.article_id == article_id:
            return a


_probes = itertools.count(1)


def sync_sub(feed, sock, into=None):
    """Sends probe articles until sock receives one (its subscription is live)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        feed.send(probe_article("probe-sync-%d" % next(_probes)))
        if sock.poll(200):
            drain(sock, into if into is not None else {})
            return
    raise AssertionError("the subscriber never received a probe")


def printed(path, needle):
    with open(path) as f:
        return needle in f.read()


def missing(got, want):
    """A short description of which of want are not in got."""
    have = set(got)
    lost = [i for i, x in enumerate(want) if x not in have]
    if not lost:
        return "none missing"
    runs, start = [], lost[0]
    for a, b in zip(lost, lost[1:] + [None]):
        if b != a + 1:
            runs.append("%s..%s" % (want[start], want[a]))
            start = b
    return "%d missing: %s" % (len(lost), ", ".join(runs[:20]))


def probe_lines(path):
    """(seq, epoch, article_id) printed by na-client-probe."""
    with open(path) as f:
        return [(int(s), int(e), i) for s, e, i in (line.split() for line in f)]


def tail_alerts(path):
    with open(path) as f:
        return [load_json(line) for line in f if line.strip()]


def labelled_articles():
    """The labelled corpus as Article kwargs, with the tags `newsalert tag`
    gives each (the daemon's own tagger, offline)."""
    path = os.path.join(SRC, "tests", "corpus", "labelled.jsonl")
    r = tool("tag", path, "--rules", RULES)
    assert r.returncode == 0, r.stderr
    tags = {}
    for line in r.stdout.splitlines():
        a = json.loads(line)
        tags[a["article_id"]] = sorted(t["tag"] for t in a["tags"])
    out = []
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            kw = {k: o[k] for k in ("id", "source", "url", "headline", "body",
                                     "published_at_ms", "language", "authors")}
            out.append((kw, tags.get(o["id"], [])))
    return out


def corpus_article(kw, new_id, **extra):
    fields = dict(kw, id=new_id, **extra)
    return article_pb2.Article(**fields).SerializeToString()


class Catchup:
    """A catch-up client: a DEALER speaking catchup.proto."""

    def __init__(self, ctx, endpoint, rcvhwm=1000):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def request(self, since=0, until=0, tags=()):
        r = catchup_pb2.CatchupRequest(since_seq=since, until_seq=until, tags=list(tags))
        self.sock.send(r.SerializeToString())

    def recv(self, timeout=WAIT):
        if not self.sock.poll(int(timeout * 1000)):
            return None
        frames = self.sock.recv_multipart()
        assert len(frames) == 1, frames
        return catchup_pb2.CatchupReply.FromString(frames[0])

    def replies(self, timeout=LONG):
        """Every reply up to and including the one that ends the stream."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            r = self.recv(max(0.0, deadline - time.monotonic()))
            if r is None:
                raise AssertionError("the stream never ended; got %d replies" % len(got))
            got.append(r)
            if r.kind != ALERT:
                return got

    def ask(self, **kw):
        self.request(**kw)
        return self.replies()

    def close(self):
        self.sock.close(0)


class DeliveryTest(unittest.TestCase):
    """A daemon (not yet started unless start is true) and its feed."""

    extra_config = ""
    args = ()
    start = True

    def setUp(self):
        # Cleanups, not tearDown: they run when setUp fails too, last first.
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.term)
        self.daemon = Daemon(extra_config=self.extra_config)
        self.addCleanup(self.daemon.cleanup)
        self.feed = Feed(self.ctx, self.daemon.feed)
        self.addCleanup(lambda: self.feed.sock.close(0))
        self.socks = []
        self.procs = []
        self.addCleanup(self.close_all)
        if self.start:
            self.start_daemon()

    def start_daemon(self, *args):
        if self.daemon.proc is not None:
            self.daemon.log.close()   # the log of the run before
        self.daemon.start(*(tuple(self.args) + args))
        try:
            self.feed.wait_subscriber()
        except AssertionError:
            raise AssertionError("the daemon never subscribed:\n" + self.daemon.text())

    def sub(self, prefix="alert.", hwm=0):
        s = sub_socket(self.ctx, self.daemon.publish, prefix, hwm)
        self.socks.append(s)
        return s

    def catchup(self, **kw):
        c = Catchup(self.ctx, self.daemon.catchup, **kw)
        self.socks.append(c.sock)
        return c

    def close_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
            p.wait()
            err = ""
            if p.stderr and not p.stderr.closed:
                err = p.stderr.read()
                p.stderr.close()
            check_clean_exit(os.path.basename(p.args[0]) + " " + p.args[1], p.returncode,
                             err)
        for s in self.socks:
            s.close(0)


class Publisher(threading.Thread):
    """A feed publisher replaying payloads at a steady rate on an XPUB of its
    own (created in its thread), pausing while nobody is subscribed: the
    replay goes on across kills and restarts of the daemon, and `sent` says
    how far it got."""

    def __init__(self, ctx, endpoint, payloads, rate):
        super().__init__(daemon=True)
        self.ctx, self.endpoint, self.payloads, self.rate = ctx, endpoint, payloads, rate
        self.sent = 0
        self.bound = threading.Event()
        self.stop = threading.Event()
        self.error = None

    def run(self):
        sock = self.ctx.socket(zmq.XPUB)
        try:
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.bind(self.endpoint)
            self.bound.set()
            subscribed = False
            started, base = time.monotonic(), 0
            while self.sent < len(self.payloads) and not self.stop.is_set():
                while sock.poll(0 if subscribed else 50):
                    subscribed = sock.recv()[:1] == b"\x01"
                    started, base = time.monotonic(), self.sent
                if not subscribed:
                    continue
                for payload in self.payloads[self.sent:self.sent + 20]:
                    sock.send_multipart([b"news", payload])
                self.sent = min(self.sent + 20, len(self.payloads))
                pause = started + (self.sent - base) / self.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            sock.close(0)


class TestKill(DeliveryTest):
    """kill -9 at random points of a 20,000-article replay, fsync always."""

    extra_config = "journal:\n  fsync: always\n  segment_bytes: 1048576\n"
    start = False
    total = 20000
    rate = int(4000 / SCALE)   # steady, and slower than the daemon tags

    def test_kill_9_mid_replay_loses_nothing_durable_and_reuses_no_seq(self):
        rnd = seeded(self)
        # Kill when the replay has sent this many articles.
        kills = sorted(rnd.sample(range(2000, self.total - 2000, 20), 3))
        replay_ep = "ipc://%s/replay" % self.daemon.dir
        publisher = Publisher(self.ctx, replay_ep, positives("k", self.total), self.rate)
        publisher.start()
        self.addCleanup(publisher.join)
        self.addCleanup(publisher.stop.set)
        self.assertTrue(publisher.bound.wait(WAIT))
        consumer = self.sub("alert.aid")
        received = {}   # seq -> Alert, across all runs
        resumed = []    # the seq each restarted run went on from
        epoch0 = None
        durable = 0
        for run in range(len(kills) + 1):
            self.start_daemon("--feed", replay_ep)
            epoch, seq = journal_line(self.daemon)
            if run == 0:
                epoch0 = epoch
                self.assertEqual(seq, 0)
            else:
                # Numbering goes on above every seq the killed run may have
                # handed out: above what it journalled and what was seen.
                self.assertEqual(epoch, epoch0, self.daemon.text())
                self.assertGreaterEqual(seq, max([durable] + list(received)),
                                        self.daemon.text())
                if seq > durable:
                    self.assertIn("numbering continues after seq %d" % seq,
                                  self.daemon.text())
                resumed.append(seq)
            if run == len(kills):
                break
            deadline = time.monotonic() + LONG
            while publisher.sent < kills[run]:
                self.assertLess(time.monotonic(), deadline, "the replay stalled")
                self.assertIsNone(publisher.error)
                drain(consumer, received, timeout=0.02)
            self.daemon.proc.kill()
            self.daemon.proc.wait()
            drain(consumer, received, timeout=0.5)
            rc, alerts, err = read_journal(self.daemon)
            self.assertEqual(rc, 0, err)
            durable = alerts[-1]["seq"] if alerts else 0
            print("kill %d after %d articles sent: %d alerts journalled, %d seen live%s"
                  % (run + 1, kills[run], durable, len(received),
                     " (torn tail)" if "torn tail" in err else ""))
        deadline = time.monotonic() + LONG
        while publisher.is_alive():
            self.assertLess(time.monotonic(), deadline, "the replay never ended")
            drain(consumer, received, timeout=0.1)
        self.assertIsNone(publisher.error)
        sync_sub(self.feed, consumer, received)
        self.feed.send(article("k-end", *POSITIVE))
        recv_until(consumer, "k-end", received)
        self.assertEqual(self.daemon.stop(), 0)

        rc, alerts, err = read_journal(self.daemon)
        self.assertEqual(rc, 0, err)
        # The journal numbers its alerts in strictly increasing order, with
        # no repeat: between runs, only the seqs that a killed run had
        # reserved and not used are skipped.
        seqs = [a["seq"] for a in alerts]
        self.assertEqual(seqs, sorted(set(seqs)))
        for prev, cur in zip(seqs, seqs[1:]):
            if cur != prev + 1:
                self.assertIn(cur - 1, resumed, "a hole at %d-%d" % (prev, cur))
        by_seq = {a["seq"]: a for a in alerts}
        ids = [a["article_id"] for a in alerts]
        self.assertEqual(len(ids), len(set(ids)), "an article journalled twice")
        self.assertEqual({a["epoch"] for a in alerts}, {epoch0})
        # Every alert a consumer saw is in the journal, as it was seen.
        for seq, a in received.items():
            self.assertIn(seq, by_seq, "alert %d was published but not journalled" % seq)
            self.assertEqual(by_seq[seq]["article_id"], a.article_id)
            self.assertEqual(a.epoch, epoch0)
        # k-end came on another connection than the replay's tail, which
        # the daemon's SUB socket may still have been draining: it is in the
        # journal, not necessarily last.
        self.assertIn("k-end", ids)
        # Only what was in flight at a kill is missing.
        replayed = [i for i in ids if i.startswith("k-") and i != "k-end"]
        self.assertGreater(len(replayed), self.total // 2)
        print("%d alerts journalled, %d of them from the replay, %d seen live"
              % (len(alerts), len(replayed), len(received)))


class TestSlowConsumer(DeliveryTest):
    """Consumers that sleep through thousands of alerts miss them live, and
    get every one back, in order and once, from the catch-up endpoint."""

    extra_config = "publish:\n  sndhwm: 16\n"
    args = ("--metrics", "127.0.0.1:0")
    n = 10000

    def test_stopped_consumers_recover_every_alert_through_catch_up(self):
        base = "http://127.0.0.1:%d" % http_port(self.daemon)
        tail_out = os.path.join(self.daemon.dir, "tail.jsonl")
        probe_out = os.path.join(self.daemon.dir, "probe.txt")
        tail = start_tail(self.daemon, self.feed, tail_out, "--json", "--catchup",
                          self.daemon.catchup)
        self.procs.append(tail)
        # The C helper, with a receive high-water mark of one message.
        probe = start_consumer(self.feed, probe_out,
                               [PROBE, self.daemon.publish, self.daemon.catchup, "-", "1"],
                               stderr=subprocess.PIPE)
        self.procs.append(probe)
        for p in (tail, probe):
            p.send_signal(signal.SIGSTOP)
        half = self.n // 2
        for payload in positives("s", half):
            self.feed.send(payload)
        # Nothing can reach the sleeping consumers: their pipes fill, and
        # what does not fit is dropped for them alone.
        wait_journal(self.daemon, half)
        m = parse(curl(base + "/metrics")[2])
        self.assertGreaterEqual(value(m, "newsalertd_alerts_published_total", tag="aid"), half)
        for p in (tail, probe):
            p.send_signal(signal.SIGCONT)
        # The rest while they wake up and catch up.
        for payload in positives("s", self.n - half, half):
            self.feed.send(payload)
        # A gap is only seen when a later alert arrives: end markers until
        # both have printed one.
        deadline = time.monotonic() + LONG
        k = 0
        while True:
            k += 1
            self.feed.send(article("end-%d" % k, *POSITIVE))
            if all(printed(path, "end-") for path in (tail_out, probe_out)):
                break
            self.assertLess(time.monotonic(), deadline, "the consumers never caught up")
            time.sleep(0.5)
        wait_quiet(tail_out)
        wait_quiet(probe_out)
        want = ["s-%d" % i for i in range(self.n)]

        alerts = tail_alerts(tail_out)
        seqs = [a["seq"] for a in alerts]
        self.assertEqual(seqs, sorted(set(seqs)), "newsalert tail: out of order or repeated")
        ids = [a["article_id"] for a in alerts if a["article_id"].startswith("s-")]
        self.assertEqual(len(ids), len(want), "newsalert tail: " + missing(ids, want))
        self.assertEqual(ids, want)

        lines = probe_lines(probe_out)
        seqs = [s for s, _, _ in lines]
        self.assertEqual(seqs, sorted(set(seqs)), "client.h: out of order or repeated")
        ids = [i for _, _, i in lines if i.startswith("s-")]
        self.assertEqual(len(ids), len(want), "client.h: " + missing(ids, want))
        self.assertEqual(ids, want)
        probe.send_signal(signal.SIGTERM)
        _, err = probe.communicate(timeout=WAIT)
        check_clean_exit("na-client-probe", probe.returncode, err)
        stats = dict(kv.split("=") for kv in err.split("stats ")[1].split())
        self.assertGreater(int(stats["gaps"]), 0, err)
        self.assertGreater(int(stats["caught_up"]), 0, err)

        m = parse(curl(base + "/metrics")[2])
        self.assertGreater(value(m, "newsalertd_catchup_alerts_total"), 0)


class Reader(threading.Thread):
    """A subscriber that reads as fast as alerts come, on a socket of its
    own (made in its thread): seq -> article id of every alert received."""

    def __init__(self, ctx, endpoint):
        super().__init__(daemon=True)
        self.ctx, self.endpoint = ctx, endpoint
        self.got = {}
        self.stop = threading.Event()

    def run(self):
        s = sub_socket(self.ctx, self.endpoint)
        try:
            while not self.stop.is_set():
                if s.poll(50):
                    a = alert_pb2.Alert.FromString(s.recv_multipart()[-1])
                    self.got.setdefault(a.seq, a.article_id)
        finally:
            s.close(0)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class TestStuckSubscriber(DeliveryTest):
    """One subscriber stops reading during a burst: it alone loses alerts,
    and gets them back from catch-up; a subscriber that reads receives
    every alert live, and the daemon's memory stays bounded."""

    # Room in each pipe for a second of the burst (the reading subscriber
    # is a Python thread on a shared machine), and far less than the burst.
    extra_config = "publish:\n  sndhwm: 2000\n"
    n = 8000

    def test_a_stuck_subscriber_costs_the_others_nothing(self):
        reader = Reader(self.ctx, self.daemon.publish)
        reader.start()
        self.addCleanup(reader.join)
        self.addCleanup(reader.stop.set)
        deadline = time.monotonic() + WAIT
        k = 0
        while not any(i.startswith("probe-reader") for i in reader.got.values()):
            self.assertLess(time.monotonic(), deadline, "the reader never subscribed")
            k += 1
            self.feed.send(probe_article("probe-reader-%d" % k))
            time.sleep(0.1)
        # The stuck one: newsalert tail, stopped with SIGSTOP while connected.
        out = os.path.join(self.daemon.dir, "stuck.jsonl")
        stuck = start_tail(self.daemon, self.feed, out, "--json", "--catchup",
                           self.daemon.catchup)
        self.procs.append(stuck)
        stuck.send_signal(signal.SIGSTOP)
        rss0 = rss_kib(self.daemon.proc.pid)
        # At a steady rate that a reading subscriber keeps up with.
        rate = 2000 / SCALE
        started = time.monotonic()
        for i, payload in enumerate(positives("b", self.n)):
            self.feed.send(payload)
            if i % 100 == 99:
                pause = started + (i + 1) / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        wait_journal(self.daemon, self.n)
        want = ["b-%d" % i for i in range(self.n)]
        deadline = time.monotonic() + LONG
        while sum(1 for i in reader.got.values() if i.startswith("b-")) < self.n:
            if time.monotonic() > deadline:
                got = [i for _, i in sorted(reader.got.items()) if i.startswith("b-")]
                self.fail("the reading subscriber was starved by the stuck one: "
                          + missing(got, want))
            time.sleep(0.05)
        got = [i for _, i in sorted(reader.got.items()) if i.startswith("b-")]
        self.assertEqual(got, want)
        seqs = sorted(s for s, i in reader.got.items() if i.startswith("b-"))
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + self.n)), "a gap live")
        rss1 = rss_kib(self.daemon.proc.pid)
        print("burst of %d: the reader got %d live; daemon RSS %d KiB before, %d KiB "
              "with the subscriber stuck" % (self.n, len(got), rss0, rss1))
        # The stuck one wakes up. No alert follows the burst: the heartbeat
        # tells it that it lost the end, and it repairs that from catch-up.
        stuck.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + LONG
        while not printed(out, '"b-%d"' % (self.n - 1)):
            self.assertLess(time.monotonic(), deadline, "the stuck subscriber never caught up")
            time.sleep(0.2)
        wait_quiet(out)
        ids = [a["article_id"] for a in tail_alerts(out) if a["article_id"].startswith("b-")]
        self.assertEqual(ids, want, "newsalert tail: " + missing(ids, want))


class TestHeartbeat(DeliveryTest):
    """The heartbeat on "~hb": where numbering stands, every interval, and
    never on an "alert." subscription."""

    extra_config = "publish:\n  heartbeat_ms: 200\n"

    def heartbeats(self, sock, n):
        got = []
        deadline = time.monotonic() + WAIT
        while len(got) < n:
            self.assertTrue(sock.poll(int(max(0, deadline - time.monotonic()) * 1000)),
                            "no heartbeat")
            topic, body = sock.recv_multipart()
            self.assertEqual(topic, b"~hb")
            got.append(alert_pb2.Heartbeat.FromString(body))
        return got

    def test_the_heartbeat_says_where_numbering_stands(self):
        hb = self.sub("~hb")
        alerts = self.sub("alert.")
        first = self.heartbeats(hb, 1)[0]
        self.assertEqual(first.last_seq, 0)
        self.assertEqual(first.interval_ms, 200)
        self.assertNotEqual(first.epoch, 0)
        sync_sub(self.feed, alerts)
        for payload in positives("h", 20):
            self.feed.send(payload)
        got = {}
        last = recv_until(alerts, "h-19", got)
        # A heartbeat sent after the last alert names it, and each topic's
        # last topic_seq.
        deadline = time.monotonic() + WAIT
        while True:
            beat = self.heartbeats(hb, 1)[0]
            if beat.last_seq == last.seq:
                break
            self.assertLess(beat.last_seq, last.seq)
            self.assertLess(time.monotonic(), deadline, "the heartbeat never caught up")
        self.assertEqual(beat.epoch, last.epoch)
        topics = {t.topic: t.seq for t in beat.topics}
        for t in last.topics:
            self.assertEqual(topics[t.topic], t.seq)
        # Beats keep coming about every 200 ms, and none reaches "alert.".
        t0 = time.monotonic()
        self.heartbeats(hb, 5)
        self.assertLess(time.monotonic() - t0, 5 * 0.2 * 10)
        while alerts.poll(300):
            topic = alerts.recv_multipart()[0]
            self.assertTrue(topic.startswith(b"alert."), topic)


class TestHostileHeartbeat(unittest.TestCase):
    """A publisher that is not newsalertd sends the C client (client.h, as
    na-client-probe) heartbeats that are not Heartbeats: each is counted as
    invalid, and the client goes on to receive the next alert."""

    def test_malformed_heartbeats_are_counted_and_survived(self):
        ctx = zmq.Context()
        d = tempfile.mkdtemp(prefix="na-test-")
        pub = ctx.socket(zmq.XPUB)
        pub.setsockopt(zmq.LINGER, 0)
        try:
            endpoint = "ipc://%s/alerts" % d
            pub.bind(endpoint)
            probe = subprocess.Popen([PROBE, endpoint, "ipc://%s/catchup" % d, "-", "0",
                                      "1", "5000"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
            try:
                subscribed = set()
                deadline = time.monotonic() + WAIT
                while not {b"\x01alert.", b"\x01~hb"} <= subscribed:
                    self.assertLess(time.monotonic(), deadline, "the client never subscribed")
                    if pub.poll(100):
                        subscribed.add(pub.recv())
                bad = [b"\xff\xff\xff", b"\x0a\xff", b"", b"\x08" + b"\xff" * 11,
                       b"\x1a\x05~hb", os.urandom(64)]
                for body in bad:
                    pub.send_multipart([b"~hb", body])
                good = alert_pb2.Alert(seq=1, epoch=7, article_id="after-the-garbage",
                                       topic="alert.aid", topic_seq=1)
                pub.send_multipart([b"alert.aid", good.SerializeToString()])
                out, err = probe.communicate(timeout=WAIT)
            finally:
                if probe.poll() is None:
                    probe.kill()
                    probe.communicate()
            check_clean_exit("na-client-probe", probe.returncode, err)
            self.assertEqual(probe.returncode, 0, err)
            self.assertEqual(out.split(), ["1", "7", "after-the-garbage"])
            m = re.search(r"invalid=(\d+)", err)
            self.assertIsNotNone(m, err)
            # Some of the bytes may parse as a Heartbeat (protobuf accepts
            # an empty message): the rest must be counted, none may crash.
            self.assertGreaterEqual(int(m.group(1)), 3, err)
        finally:
            pub.close(0)
            ctx.term()
            shutil.rmtree(d, ignore_errors=True)


class TestLateConsumer(DeliveryTest):
    n = 5000

    def test_a_consumer_that_starts_late_gets_everything_with_since_0(self):
        for payload in positives("l", self.n):
            self.feed.send(payload)
        wait_journal(self.daemon, self.n)
        want = ["l-%d" % i for i in range(self.n)]

        r = tool("tail", "--connect", self.daemon.publish, "--catchup", self.daemon.catchup,
                 "--since", "0", "--json", "--count", self.n)
        self.assertEqual(r.returncode, 0, r.stderr)
        alerts = [load_json(x) for x in r.stdout.splitlines()]
        self.assertEqual([a["seq"] for a in alerts], list(range(1, self.n + 1)))
        self.assertEqual([a["article_id"] for a in alerts], want)

        out = os.path.join(self.daemon.dir, "probe.txt")
        with open(out, "w") as f:
            r = subprocess.run([PROBE, self.daemon.publish, self.daemon.catchup, "0", "0",
                                str(self.n)], stdout=f, stderr=subprocess.PIPE, text=True,
                               timeout=LONG)
        check_clean_exit("na-client-probe", r.returncode, r.stderr)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = probe_lines(out)
        self.assertEqual([s for s, _, _ in lines], list(range(1, self.n + 1)))
        self.assertEqual([i for _, _, i in lines], want)
        self.assertIn("caught_up=%d" % self.n, r.stderr)


class TestJournalDamage(DeliveryTest):
    """Damage to the journal's files between runs: the daemon starts, says
    what it cut or skipped, and goes on alerting above the old numbers."""

    # Small segments (the least allowed): several files of about 40 records.
    extra_config = "journal:\n  segment_bytes: 65536\n"
    start = False

    def segments(self):
        j = journal_dir(self.daemon)
        return sorted(os.path.join(j, n) for n in os.listdir(j)
                      if n.startswith("seg-") and n.endswith(".naj"))

    def run_once(self, tag, n=0):
        """Starts the daemon, sends n articles and one more, returns the last
        one's alert and the start-up log, and stops the daemon."""
        self.start_daemon()
        epoch, _ = journal_line(self.daemon)
        log = self.daemon.text()
        consumer = self.sub("alert.aid")
        sync_sub(self.feed, consumer)
        got = {}
        for payload in positives(tag, n):
            self.feed.send(payload)
        self.feed.send(article(tag + "-last", *POSITIVE))
        last = recv_until(consumer, tag + "-last", got)
        self.assertEqual(self.daemon.stop(), 0)
        consumer.close(0)
        self.socks.remove(consumer)
        return epoch, last, log

    def journal_seqs(self):
        return [seq for seq, _ in self.journal_pairs()]

    def journal_pairs(self):
        rc, alerts, err = read_journal(self.daemon)
        self.assertEqual(rc, 0, err)
        return [(a["seq"], a["article_id"]) for a in alerts]

    def test_truncated_newest_segment(self):
        rnd = seeded(self)
        epoch0, _, _ = self.run_once("fill", 250)
        # Inside the header, inside a record, on a record boundary, anywhere.
        for round_, where in enumerate(("header", "record", "boundary", "any")):
            before = self.journal_pairs()
            newest = self.segments()[-1]
            size = os.path.getsize(newest)
            _, _, records = parse_segment(newest)
            self.assertGreater(len(records), 0)
            bounds, off = [32], 32
            for _, _, payload in records:
                off += 24 + len(payload)
                bounds.append(off)
            if where == "header":
                cut = rnd.randrange(0, 32)
            elif where == "record":
                i = rnd.randrange(len(records))
                cut = rnd.randrange(bounds[i] + 1, bounds[i + 1])
            elif where == "boundary":   # 32: the header alone is left
                cut = rnd.choice(bounds[:-1])
            else:
                cut = rnd.randrange(0, size)
            os.truncate(newest, cut)
            epoch, last, log = self.run_once("t%d" % round_, 30)
            self.assertEqual(epoch, epoch0)
            name = os.path.basename(newest)
            if cut < 32:
                # A warning, or for an empty file (a crash between creating
                # it and writing its header looks the same) information.
                self.assertIn("journal: %s: incomplete header (%d bytes); removed"
                              % (name, cut), log)
            elif cut not in bounds:
                partial = cut - max(b for b in bounds if b < cut)
                self.assertRegex(log, r"warning: journal: %s: torn tail at offset %d "
                                 r"\(a partial record\): cut %d bytes"
                                 % (name, cut - partial, partial))
            # What is left of the journal reads back, and the new alerts are
            # numbered above every alert it ever held, cut or not: a
            # consumer may hold the cut ones, and (epoch, seq) names one
            # alert for good.
            after = self.journal_pairs()
            old = set(before)
            kept = [p for p in after if p in old]
            self.assertEqual(kept, before[:len(kept)], "not a prefix of the journal")
            self.assertEqual([s for s, _ in after[len(kept):]],
                             list(range(before[-1][0] + 1, last.seq + 1)))
            if len(kept) < len(before):
                # From the first seq the cut lost: past what is kept, and
                # not before the newest segment's first seq (its name), since
                # a gap below it (seqs an earlier round reserved and never
                # wrote) was reported in that round.
                first = int(name[len("seg-"):-len(".naj")])
                lost = max(kept[-1][0] + 1 if kept else 1, first)
                self.assertIn("seqs %d-%d were reserved" % (lost, before[-1][0]), log)
            self.assertEqual(last.epoch, epoch0)

    def flip(self, path, rnd):
        _, _, records = parse_segment(path)
        i = rnd.randrange(1, len(records) - 1)     # not the first, not the last
        off = 32 + sum(24 + len(p) for _, _, p in records[:i])
        at = off + 24 + rnd.randrange(len(records[i][2]))
        with open(path, "r+b") as f:
            f.seek(at)
            b = f.read(1)
            f.seek(at)
            f.write(bytes([b[0] ^ 0xff]))
        return off, records[i][0]

    def test_flipped_bytes_in_the_middle_of_segments(self):
        rnd = seeded(self)
        epoch0, fill_last, _ = self.run_once("fill", 250)
        segs = self.segments()
        self.assertGreater(len(segs), 3)
        high = max(self.journal_seqs())
        # An older segment and the newest one.
        for path in (segs[1], segs[-1]):
            off, seq = self.flip(path, rnd)
            epoch, last, log = self.run_once("f-%d" % seq)
            self.assertEqual(epoch, epoch0)
            self.assertIn("warning: journal: %s: damaged record at offset %d (a bad CRC)"
                          % (os.path.basename(path), off), log)
            self.assertIn("skipped", log)
            # Numbering goes on above everything ever written, readable or not.
            self.assertGreater(last.seq, high)
            high = last.seq
            seqs = self.journal_seqs()
            self.assertNotIn(seq, seqs)
            self.assertEqual(seqs[-1], last.seq)
            self.assertEqual(seqs, sorted(set(seqs)))
        r = tool("journal", journal_dir(self.daemon))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("damaged record", r.stderr)


class TestReloadStorm(DeliveryTest):
    """SIGHUP every 100 ms during a long replay: no article lost, none
    alerted twice."""

    start = False
    n = 50000

    def feed_file(self, n):
        """A recorded feed of n articles from the labelled corpus, each with a
        unique id; returns its path and the ids `newsalert tag` alerts."""
        corpus = labelled_articles()
        jsonl = os.path.join(self.daemon.dir, "storm.jsonl")
        with open(jsonl, "w") as f:
            for i in range(n):
                kw, _ = corpus[i % len(corpus)]
                f.write(json.dumps(dict(kw, id="%s-r%d" % (kw["id"], i))) + "\n")
        path = os.path.join(self.daemon.dir, "storm.feed")
        r = tool("pack", jsonl, "-o", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = tool("tag", path, "--rules", RULES)
        self.assertEqual(r.returncode, 0, r.stderr)
        expected = [json.loads(x)["article_id"] for x in r.stdout.splitlines()]
        return path, expected

    def test_sighup_every_100ms_during_a_replay(self):
        path, expected = self.feed_file(self.n)
        self.assertGreater(len(expected), self.n // 2)
        # The replayed feed comes from newsalert replay on an endpoint of its
        # own; the test's feed socket only sends probes.
        replay_ep = "ipc://%s/replay" % self.daemon.dir
        self.start_daemon("--feed", replay_ep)
        consumer = self.sub()
        sync_sub(self.feed, consumer)
        live = {}
        stop = threading.Event()
        hups = [0]

        def storm():
            while not stop.wait(0.1):
                self.daemon.signal(signal.SIGHUP)
                hups[0] += 1
        replay = subprocess.Popen([NEWSALERT, "replay", path, "--bind", replay_ep,
                                   "--max-rate", "--wait-subscribers", "1"],
                                  stderr=subprocess.PIPE, text=True)
        self.procs.append(replay)
        t = threading.Thread(target=storm)
        t.start()
        started = time.monotonic()
        try:
            recv_until(consumer, expected[-1], live, timeout=240)
        finally:
            stop.set()
            t.join()
        took = time.monotonic() - started
        self.assertEqual(replay.wait(WAIT), 0)
        self.assertEqual(self.daemon.stop(), 0)
        log = self.daemon.text()
        print("%d articles, %d alerts in %.1f s, %d SIGHUPs, %d reloads" % (
            self.n, len(expected), took, hups[0], log.count("reloaded:")))
        self.assertGreaterEqual(log.count("reloaded:"), 5, "the storm never happened")
        self.assertNotRegex(log, r"stopped: rejected")
        # Live: every expected article once, nothing else but the probes.
        ids = [a.article_id for _, a in sorted(live.items())
               if not a.article_id.startswith("probe-")]
        self.assertEqual(len(ids), len(set(ids)), "an article alerted twice")
        self.assertEqual(ids, expected)
        # The journal agrees.
        rc, alerts, err = read_journal(self.daemon)
        self.assertEqual(rc, 0, err)
        ids = [a["article_id"] for a in alerts if not a["article_id"].startswith("probe-")]
        self.assertEqual(ids, expected)

    def test_a_sighup_is_served_between_batches_of_a_backlog(self):
        # Rules of our own, so that a reload can switch aid off; and no
        # model, which reads words and would fire aid whatever its rules say.
        rules = os.path.join(self.daemon.dir, "rules")
        shutil.copytree(RULES, rules)
        with open(self.daemon.config) as f:
            text = f.read()
        text = re.sub(r"(?m)^  model: .*$", '  model: ""', text.replace(RULES, rules))
        with open(self.daemon.config, "w") as f:
            f.write(text)
        self.start_daemon()
        aid, alliance = self.sub("alert.aid"), self.sub("alert.alliance")
        sync_sub(self.feed, aid)
        sync_sub(self.feed, alliance)
        drain(aid, {}, 0.5)
        n = 20000
        # The daemon is stopped while n articles queue up; SIGHUP comes with
        # a rules change that stops aid from firing, before it runs again.
        self.daemon.signal(signal.SIGSTOP)
        for payload in positives("b", n):
            self.feed.send(payload)
        aid_yaml = os.path.join(rules, "aid.yaml")
        with open(aid_yaml) as f:
            original = f.read()
        with open(aid_yaml, "w") as f:
            f.write(re.sub(r"(?m)^threshold: .*$", "threshold: 1000", original))
        self.daemon.signal(signal.SIGHUP)
        self.daemon.signal(signal.SIGCONT)
        recv_until(alliance, "b-%d" % (n - 1), {})
        self.daemon.wait_log("reloaded:")
        got = {}
        drain(aid, got, 0.5)
        # The reload comes between two batches of the backlog, not after it:
        # only the first batch or two were tagged under the old rules.
        self.assertLessEqual(len(got), 4 * 256, "%d of %d articles were tagged before "
                             "the pending SIGHUP was served" % (len(got), n))

    def test_sighups_during_slow_reloads_are_coalesced(self):
        # No rules cache (a file where its directory would go): every reload
        # compiles the rules, which takes hundreds of milliseconds.
        os.makedirs(self.daemon.state_dir)
        with open(os.path.join(self.daemon.state_dir, "cache"), "w") as f:
            f.write("not a directory\n")
        self.start_daemon()
        consumer = self.sub("alert.aid")
        sync_sub(self.feed, consumer)
        compile_ms = float(re.search(r"rules: compiled in ([\d.]+) ms",
                                     self.daemon.text()).group(1))
        signals = 20
        for _ in range(signals):
            self.daemon.signal(signal.SIGHUP)
            time.sleep(0.1)
        self.feed.send(article("after-storm", *POSITIVE))
        recv_until(consumer, "after-storm", {})
        # Let any reload still due run, then count.
        self.assertEqual(self.daemon.stop(), 0)
        reloads = self.daemon.text().count("reloaded:")
        self.assertGreaterEqual(reloads, 1)
        self.assertLessEqual(reloads, signals)
        if compile_ms > 300:
            # SIGHUPs that came during a reload made one more, not one each.
            self.assertLess(reloads, signals * 2 // 3,
                            "%d reloads for %d SIGHUPs (compile %.0f ms)"
                            % (reloads, signals, compile_ms))


class TestPublisherRestart(DeliveryTest):
    args = ("--metrics", "127.0.0.1:0")

    def test_the_daemon_reconnects_and_counts_what_it_missed(self):
        base = "http://127.0.0.1:%d" % http_port(self.daemon)
        consumer = self.sub("alert.aid")
        sync_sub(self.feed, consumer)
        got = {}

        def wire(seq):
            return article("w-%d" % seq, *POSITIVE, source="wire", feed_seq=seq)
        for s in range(1, 101):
            self.feed.send(wire(s))
        recv_until(consumer, "w-100", got)

        # The publisher goes away and comes back on the same endpoint; what
        # it publishes before the daemon has reconnected is lost.
        self.feed.sock.close(0)
        self.feed = Feed(self.ctx, self.daemon.feed)
        for s in range(101, 111):
            self.feed.send(wire(s))
        self.feed.wait_subscriber()
        for s in range(111, 201):
            self.feed.send(wire(s))
        recv_until(consumer, "w-200", got)
        alerted = {int(a.article_id[2:]) for a in got.values() if a.article_id.startswith("w-")}
        self.assertTrue(set(range(111, 201)) <= alerted)
        missed = 200 - len(alerted)
        m = parse(curl(base + "/metrics")[2])
        self.assertEqual(value(m, "newsalertd_feed_gaps_total", source="wire"), missed)
        self.assertGreaterEqual(value(m, "newsalertd_feed_disconnects_total"), 1)
        self.assertEqual(value(m, "newsalertd_feed_endpoints_connected"), 1)


class TestFullDisk(DeliveryTest):
    """The state directory on a small tmpfs that is filled up under the
    daemon, twice: first freed while the daemon holds the batch it could
    not journal, then kept full across a stop. An independent consumer
    (live alerts and heartbeats on one socket, then a full catch-up) checks
    that every published seq is journalled, none names two alerts, and
    that every article is alerted once it can be. Needs root (mount)."""

    extra_config = ("journal:\n  fsync: always\n  segment_bytes: 262144\n"
                    "publish:\n  heartbeat_ms: 200\n")
    args = ("--metrics", "127.0.0.1:0")
    start = False

    def mount_tmpfs(self):
        os.makedirs(self.daemon.state_dir)
        if os.geteuid() != 0:
            self.skipTest("the full-disk test mounts a tmpfs: run it as root")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0750", "tmpfs",
                            self.daemon.state_dir], capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs here (%s): the full-disk test needs "
                          "CAP_SYS_ADMIN" % r.stderr.strip())
        # Before the daemon's cleanup (cleanups run last first); lazy, since
        # a daemon that failed the test may still hold files there.
        self.addCleanup(subprocess.run, ["umount", "-l", self.daemon.state_dir])

    def fill(self):
        """Fills the tmpfs to the last byte; returns the filler's path."""
        path = os.path.join(self.daemon.state_dir, "filler")
        with open(path, "wb", buffering=0) as f:
            for chunk in (65536, 4096, 512, 1):
                try:
                    while True:
                        f.write(b"\0" * chunk)
                except OSError as e:
                    self.assertEqual(e.errno, errno.ENOSPC, e)
        return path

    def health(self):
        status, _, body = curl(self.base + "/healthz")
        return status, json.loads(body)["status"]

    def wait_health(self, want_status, timeout=LONG):
        deadline = time.monotonic() + timeout
        while True:
            got = self.health()
            if got[0] == want_status:
                return got
            self.assertLess(time.monotonic(), deadline, "/healthz stayed %r" % (got,))
            time.sleep(0.05)

    def metric(self, name):
        return value(parse(curl(self.base + "/metrics")[2]), name)

    def consume(self, sock, timeout=0.0):
        """Live alerts into self.live ((epoch, seq) -> article id) and
        heartbeats checked against them: a heartbeat may not announce a
        seq that no alert before it on the socket has had."""
        while sock.poll(int(timeout * 1000)):
            frames = sock.recv_multipart()
            timeout = 0
            if frames[0] == b"~hb":
                hb = alert_pb2.Heartbeat.FromString(frames[-1])
                self.heartbeats += 1
                top = max((s for e, s in self.live if e == hb.epoch), default=0)
                self.assertLessEqual(hb.last_seq, max(top, self.skipped_to),
                                     "a heartbeat announced a seq never published")
                continue
            a = alert_pb2.Alert.FromString(frames[-1])
            key = (a.epoch, a.seq)
            self.assertEqual(self.live.setdefault(key, a.article_id), a.article_id,
                             "seq %d of epoch %d named two alerts" % (a.seq, a.epoch))

    def alerted(self):
        return set(self.live.values())

    def send_until_alerted(self, sock, ids):
        deadline = time.monotonic() + LONG
        while not set(ids) <= self.alerted():
            self.assertLess(time.monotonic(), deadline,
                            "not alerted: %s" % sorted(set(ids) - self.alerted())[:5])
            self.consume(sock, 0.1)

    def test_full_disk_holds_the_batch_and_loses_nothing(self):
        self.mount_tmpfs()
        self.start_daemon()
        self.base = "http://127.0.0.1:%d" % http_port(self.daemon)
        self.live, self.heartbeats, self.skipped_to = {}, 0, 0
        sock = self.sub("alert.")
        sock.setsockopt(zmq.SUBSCRIBE, b"~hb")
        self.consume(sock, 0.5)   # joined: heartbeats arrive
        sent = []

        def send(prefix, n):
            for i in range(n):
                aid = "%s-%03d" % (prefix, i)
                self.feed.send(article(aid, *POSITIVE))
                sent.append(aid)
            return sent[-n:]

        # 1. Served normally.
        self.send_until_alerted(sock, send("before", 20))
        self.assertEqual(self.health()[0], 200)

        # 2. The disk fills: the next batch is held, the feed paused.
        filler = self.fill()
        during = send("full", 100)
        status, what = self.wait_health(503)
        self.assertEqual(what, "journal failing")
        self.assertGreater(self.metric("newsalertd_journal_held_alerts"), 0)
        self.assertEqual(self.metric("newsalertd_journal_holds_total"), 1)
        errors_then = self.metric("newsalertd_journal_errors_total")
        hb_then = self.heartbeats
        time.sleep(3.5)   # three retries or more, all refused
        self.consume(sock)
        self.assertGreaterEqual(self.metric("newsalertd_journal_errors_total"),
                                errors_then + 3)
        self.assertEqual(self.health(), (503, "journal failing"))
        self.assertFalse(set(during) <= self.alerted(), "alerted without a journal")
        self.assertLessEqual(self.heartbeats - hb_then, 1, "heartbeats while held")
        # One line for the hold, and failures rate-limited, not one a retry.
        self.assertLessEqual(self.daemon.text().count("error: journal"), 8,
                             self.daemon.text())

        # 3. Room again: the held batch goes in and out, the feed resumes.
        os.unlink(filler)
        self.wait_health(200)
        self.send_until_alerted(sock, during)
        self.daemon.wait_log("journal: writable again after")
        self.assertEqual(self.metric("newsalertd_journal_held_alerts"), 0)

        # 4. Full again, and a stop while it is: non-zero, nothing published.
        filler = self.fill()
        lost = send("stopped", 30)
        self.wait_health(503)
        self.consume(sock, 0.3)
        self.assertEqual(self.daemon.stop(), 1)
        self.assertIn("journal: still failing at stop", self.daemon.text())
        unpublished = set(lost) - self.alerted()
        self.assertTrue(unpublished, "every article alerted although the journal was full")

        first_run = sorted(s for _, s in self.live)

        # 5. A restart with room: the feed replays what was never alerted.
        # The stop could not write journal.meta down to the last seq used,
        # so numbering goes on above the seqs reserved then (docs/journal.md):
        # a jump, which heartbeats may announce, but no seq used twice.
        os.unlink(filler)
        self.start_daemon()
        self.base = "http://127.0.0.1:%d" % http_port(self.daemon)
        m = re.search(r"numbering continues after seq (\d+)", self.daemon.text())
        self.skipped_to = int(m.group(1)) if m else 0
        # The consumer is back (a heartbeat came) before anything is sent.
        hb, deadline = self.heartbeats, time.monotonic() + LONG
        while self.heartbeats == hb:
            self.assertLess(time.monotonic(), deadline, "no heartbeat after the restart")
            self.consume(sock, 0.1)
        for aid in sorted(unpublished):
            self.feed.send(article(aid, *POSITIVE))
        after = send("after", 20)
        self.send_until_alerted(sock, sorted(unpublished) + after)
        self.consume(sock, 0.5)

        # The independent check: catch-up from the start has every seq the
        # consumer saw live, with the same article, and no seq twice.
        journal = {}
        for r in self.catchup().ask(since=0):
            if r.kind == ALERT:
                a = r.alert
                self.assertNotIn((r.epoch, a.seq), journal, "seq %d twice" % a.seq)
                journal[(r.epoch, a.seq)] = a.article_id
            else:
                self.assertEqual(r.kind, END)
        self.assertEqual(len({e for e, _ in journal}), 1, "the epoch changed")
        for key, aid in self.live.items():
            self.assertEqual(journal.get(key), aid, "published, not journalled: %r" % (key,))
        seqs = sorted(s for _, s in journal)
        self.assertEqual(first_run, list(range(1, len(first_run) + 1)),
                         "a hole in the numbering")
        second = [s for s in seqs if s > first_run[-1]]
        self.assertEqual(seqs, first_run + second)
        self.assertGreater(second[0], self.skipped_to)
        self.assertEqual(second, list(range(second[0], second[0] + len(second))),
                         "a hole in the numbering after the restart")
        self.assertEqual(set(sent), set(journal.values()), "an article never alerted")
        print("full disk: %d alerts published, %d delivered live, %d repaired, "
              "%d lost, %d seqs reused" % (len(journal), len(self.live),
                                           len(journal) - len(self.live),
                                           len(set(sent) - set(journal.values())), 0))


class TestMalformedFlood(DeliveryTest):
    n = 10000
    kinds = ["malformed_protobuf", "missing_id", "empty_text", "invalid_utf8", "frame_count"]

    def test_every_fifth_message_malformed(self):
        frames = dict(MALFORMED)
        consumer = self.sub("alert.aid")
        sync_sub(self.feed, consumer)
        valid, reasons = [], []
        for i in range(self.n):
            if i % 5 == 4:
                reason = self.kinds[(i // 5) % len(self.kinds)]
                reasons.append(reason)
                self.feed.send_frames(frames[reason])
            else:
                valid.append("v-%d" % i)
                self.feed.send(article(valid[-1], *POSITIVE))
        got = {}
        recv_until(consumer, valid[-1], got)
        self.assertEqual(self.daemon.stop(), 0)
        ids = [a.article_id for _, a in sorted(got.items()) if a.article_id.startswith("v-")]
        self.assertEqual(ids, valid)
        rc, alerts, err = read_journal(self.daemon)
        self.assertEqual(rc, 0, err)
        self.assertEqual([a["article_id"] for a in alerts
                          if a["article_id"].startswith("v-")], valid)
        r = tool("quarantine", os.path.join(self.daemon.state_dir, "quarantine"), "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        entries = [json.loads(x) for x in r.stdout.splitlines()]
        self.assertEqual([e["reason"] for e in entries], reasons)
        for e in entries:
            want = frames[e["reason"]]
            self.assertEqual(e["frames"], [len(f) for f in want])
        log = self.daemon.text()
        for kind in self.kinds:
            self.assertIn("stopped: rejected %s: %d\n" % (kind, reasons.count(kind)), log)


class CatchupTest(DeliveryTest):
    """A journal of corpus articles with known tags, for catch-up requests."""

    count = 60

    def fill(self, prefix="c"):
        corpus = [(kw, tags) for kw, tags in labelled_articles() if tags]
        self.tags_of = {}
        for i in range(self.count):
            kw, tags = corpus[(i * 7) % len(corpus)]
            aid = "%s-%d" % (prefix, i)
            self.tags_of[aid] = tags
            self.feed.send(corpus_article(kw, aid))
        wait_journal(self.daemon, self.count)
        rc, self.alerts, err = read_journal(self.daemon)
        self.assertEqual(rc, 0, err)
        self.epoch = self.alerts[0]["epoch"]

    def check_stream(self, replies, want_seqs):
        *alerts, end = replies
        self.assertEqual(end.kind, END, end)
        self.assertTrue(all(r.kind == ALERT for r in alerts))
        self.assertEqual([r.alert.seq for r in alerts], want_seqs)
        self.assertEqual(end.count, len(want_seqs))
        self.assertEqual({r.epoch for r in replies}, {self.epoch})
        for r in alerts:
            a = r.alert
            self.assertEqual(a.topic, "")
            self.assertEqual(sorted(t.tag for t in a.tags), self.tags_of[a.article_id])
            self.assertEqual(sorted(t.topic for t in a.topics),
                             ["alert." + t for t in self.tags_of[a.article_id]])
        return end

    def error(self, client, frames):
        client.sock.send_multipart(frames)
        r = client.replies(WAIT)
        self.assertEqual(len(r), 1)
        self.assertEqual(r[0].kind, ERROR, r[0])
        return r[0].error


class TestCatchupProtocol(CatchupTest):
    def test_since_until_and_tags(self):
        self.fill()
        c = self.catchup()
        end = self.check_stream(c.ask(since=0), list(range(1, self.count + 1)))
        self.assertEqual((end.last_seq, end.oldest_seq), (self.count, 1))
        self.check_stream(c.ask(since=10, until=20), list(range(11, 21)))
        self.check_stream(c.ask(since=self.count), [])
        self.check_stream(c.ask(since=self.count + 1000), [])
        by_seq = {a["seq"]: self.tags_of[a["article_id"]] for a in self.alerts}
        for tags in (["summit"], ["aid", "alliance"], ["alliance"]):
            want = [s for s, t in sorted(by_seq.items()) if set(t) & set(tags)]
            self.assertTrue(0 < len(want) < self.count, tags)
            self.check_stream(c.ask(since=0, tags=tags), want)
            want = [s for s in want if 5 < s <= 50]
            self.check_stream(c.ask(since=5, until=50, tags=tags), want)

    def test_refused_requests(self):
        self.fill()
        c = self.catchup()
        req = catchup_pb2.CatchupRequest

        def bad(**kw):
            return self.error(c, [req(**kw).SerializeToString()])
        self.assertEqual(bad(tags=["weather"]), "unknown tag 'weather'")
        self.assertEqual(bad(tags=["aid", "weather"]), "unknown tag 'weather'")
        self.assertEqual(bad(since_seq=20, until_seq=10), "until_seq 10 is below since_seq 20")
        self.assertEqual(bad(since_seq=0, until_seq=10 ** 12),
                         "the range 0..1000000000000 is larger than 100000000 alerts")
        self.assertEqual(bad(since_seq=5, until_seq=5 + 10 ** 12),
                         "the range 5..1000000000005 is larger than 100000000 alerts")
        not_a_request = "not a newsalert.v1.CatchupRequest"
        self.assertEqual(self.error(c, [b"\xff\xff\xff\xff"]), not_a_request)
        self.assertEqual(self.error(c, [b"\x0a\x03abc"]), not_a_request)  # field 1 as a string
        self.assertEqual(self.error(c, [article("x", *POSITIVE)]), not_a_request)
        one = req(since_seq=1).SerializeToString()
        self.assertEqual(self.error(c, [one, one]), "expected one frame: a CatchupRequest")
        self.assertEqual(self.error(c, [b"", one]), "expected one frame: a CatchupRequest")
        # The same client is served normally afterwards.
        self.check_stream(c.ask(since=self.count - 3), list(range(self.count - 2,
                                                                  self.count + 1)))
        # And the daemon still alerts.
        consumer = self.sub("alert.aid")
        sync_sub(self.feed, consumer)


class TestCatchupFairness(CatchupTest):
    count = 4000
    extra_config = "catchup:\n  max_clients: 2\n"

    def test_a_huge_stream_does_not_hold_up_others_or_the_feed(self):
        self.fill()
        consumer = self.sub("alert.aid")
        sync_sub(self.feed, consumer)
        # A asks for all of it and does not read: the daemon can only send
        # what A's pipe takes, and must keep A's stream waiting, not the loop.
        a = self.catchup(rcvhwm=10)
        a.request(since=0)
        b = self.catchup()
        last = self.alerts[-1]["seq"]
        self.check_stream(b.ask(since=last - 10, until=last), list(range(last - 9, last + 1)))
        self.feed.send(article("fresh", *POSITIVE))
        recv_until(consumer, "fresh", {})
        # Two streams at once at most: with A and another blocked one open, a
        # third client is told to try again.
        d = self.catchup(rcvhwm=10)
        d.request(since=0)
        self.assertTrue(d.sock.poll(int(WAIT * 1000)), "D's stream never started")
        c = self.catchup()
        c.request(since=0)
        busy = c.replies(WAIT)
        self.assertEqual([r.kind for r in busy], [ERROR])
        self.assertIn("busy", busy[0].error)
        # A reads at last, and gets everything, to the newest alert.
        replies = a.replies()
        *alerts, end = replies
        self.assertEqual(end.kind, END)
        seqs = [r.alert.seq for r in alerts]
        self.assertEqual(seqs, list(range(1, end.last_seq + 1)))
        self.assertEqual(end.count, len(seqs))
        self.assertGreater(end.last_seq, last)   # the probes and "fresh"
        *alerts, end = d.replies()
        self.assertEqual([r.alert.seq for r in alerts], list(range(1, end.last_seq + 1)))
        # With A and D done, C is served.
        r = c.ask(since=0, until=3)
        self.assertEqual([x.kind for x in r], [ALERT, ALERT, ALERT, END])


class TestCatchupRetention(DeliveryTest):
    # Segments of 64 KiB (the least allowed), 256 KiB in all: about half of
    # 400 alerts of 1.5 KB are deleted.
    extra_config = "journal:\n  segment_bytes: 65536\n  max_bytes: 262144\n"
    n = 400

    def test_gone_then_the_rest(self):
        for payload in positives("g", self.n):
            self.feed.send(payload)
        wait_journal(self.daemon, self.n)
        rc, alerts, err = read_journal(self.daemon)
        self.assertEqual(rc, 0, err)
        oldest = alerts[0]["seq"]
        self.assertGreater(oldest, 1)
        self.assertIn("alerts after seq 0 are gone", err)
        c = Catchup(self.ctx, self.daemon.catchup)
        self.socks.append(c.sock)
        for since in (0, oldest - 2):
            r = c.ask(since=since)
            self.assertEqual(len(r), 1)
            self.assertEqual(r[0].kind, GONE, r[0])
            self.assertEqual(r[0].oldest_seq, oldest)
            self.assertEqual(r[0].epoch, alerts[0]["epoch"])
            self.assertIsNone(c.recv(0.3), "nothing follows GONE")
        r = c.ask(since=oldest - 1)
        *got, end = r
        self.assertEqual(end.kind, END)
        self.assertEqual([x.alert.seq for x in got], list(range(oldest, self.n + 1)))
        self.assertEqual((end.count, end.oldest_seq, end.last_seq),
                         (self.n - oldest + 1, oldest, self.n))
        # newsalert tail says so, and prints what is left.
        t = tool("tail", "--connect", self.daemon.publish, "--catchup", self.daemon.catchup,
                 "--since", "0", "--json", "--count", self.n - oldest + 1)
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assertIn("alerts 1 to %d are no longer in the daemon's journal" % (oldest - 1),
                      t.stderr)
        self.assertEqual([load_json(x)["seq"] for x in t.stdout.splitlines()],
                         list(range(oldest, self.n + 1)))


class TestRestart(CatchupTest):
    count = 30

    def test_topic_numbers_seq_epoch_and_dedup_survive_a_restart(self):
        self.fill("r")
        first = {a["article_id"]: a for a in self.alerts}
        self.assertEqual(self.daemon.stop(), 0)
        self.start_daemon()
        epoch, seq = journal_line(self.daemon)
        self.assertEqual((epoch, seq), (self.epoch, self.count))
        consumer = self.sub()
        live = {}
        sync_sub(self.feed, consumer, live)
        # The same articles again: all duplicates, no alert.
        corpus = [(kw, tags) for kw, tags in labelled_articles() if tags]
        for i in range(self.count):
            kw, _ = corpus[(i * 7) % len(corpus)]
            self.feed.send(corpus_article(kw, "r-%d" % i))
        # A new revision of one of them is an update of its first alert.
        kw, tags = corpus[0]
        self.feed.send(corpus_article(kw, "r-0", revision=1))
        self.feed.send(article("after", *POSITIVE))
        recv_until(consumer, "after", live)
        ids = [a.article_id for a in live.values() if not a.article_id.startswith("probe-")]
        self.assertEqual(sorted(ids), ["after", "r-0"])
        update = [a for a in live.values() if a.article_id == "r-0"][0]
        self.assertEqual(update.revision, 1)
        self.assertEqual(update.update_of, first["r-0"]["seq"])
        self.assertEqual(self.daemon.stop(), 0)
        self.assertIn("stopped: ", self.daemon.text())
        # Across both runs, each topic is numbered 1, 2, 3... and seq too.
        rc, alerts, err = read_journal(self.daemon)
        self.assertEqual(rc, 0, err)
        self.assertEqual([a["seq"] for a in alerts], list(range(1, len(alerts) + 1)))
        self.assertEqual({a["epoch"] for a in alerts}, {self.epoch})
        per_topic = {}
        for a in alerts:
            for t in a["topics"]:
                per_topic.setdefault(t["topic"], []).append(t["seq"])
        self.assertEqual(set(per_topic), {"alert.aid", "alert.alliance", "alert.summit"})
        for topic, seqs in per_topic.items():
            self.assertEqual(seqs, list(range(1, len(seqs) + 1)), topic)
        # Live copies carry the same numbers as the journal.
        by_seq = {a["seq"]: a for a in alerts}
        for s, a in live.items():
            self.assertEqual({t.topic: t.seq for t in a.topics},
                             {t["topic"]: t["seq"] for t in by_seq[s]["topics"]})
            self.assertEqual(a.topic_seq, {t.topic: t.seq for t in a.topics}[a.topic])


if __name__ == "__main__":
    unittest.main(verbosity=2)
