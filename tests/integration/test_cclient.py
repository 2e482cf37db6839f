"""The C client (include/newsalert/client.h), as na-client-probe, against the
real daemon and against a fake one in Python whose every message the test
chooses: gaps repaired and checked against a full catch-up, with one, two
and every tag; a daemon whose journal starts over; a client whose first
message is a heartbeat; a gap of one tag found after another tag's higher
seq; and a catch-up endpoint that answers an abandoned request late."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import zmq

from harness import POSITIVE, WAIT, alert_pb2, article, check_clean_exit, start_consumer, \
    wait_quiet
from newsalert.v1 import catchup_pb2  # noqa: E402  (compiled by the harness)
from test_delivery import (LONG, PROBE, DeliveryTest, corpus_article, labelled_articles,
                           missing, positives, probe_lines, wait_journal)

ALERT = catchup_pb2.CatchupReply.KIND_ALERT
END = catchup_pb2.CatchupReply.KIND_END


def mixed_articles(prefix, n):
    """n corpus articles with known tags, cycling through every tag set the
    corpus has, so that alerts of one tag and of several interleave."""
    by_tags = {}
    for kw, tags in labelled_articles():
        if tags:
            by_tags.setdefault(tuple(tags), []).append(kw)
    groups = sorted(by_tags.values(), key=len)
    out = []
    for i in range(n):
        g = groups[i % len(groups)]
        out.append(corpus_article(g[i % len(g)], "%s-%d" % (prefix, i)))
    return out


def stats_of(err):
    """The counters na-client-probe prints last, as a dict of ints."""
    line = [x for x in err.splitlines() if x.startswith("stats ")]
    if not line:
        raise AssertionError("no stats line from na-client-probe:\n" + err)
    return {k: int(v) for k, v in (kv.split("=") for kv in line[-1].split()[1:])}


def wait_printed(path, pred, what, proc=None, timeout=LONG, step=None):
    """Waits until pred(lines printed so far) holds; step() runs between looks."""
    deadline = time.monotonic() + timeout
    while True:
        lines = probe_lines(path)
        if pred(lines):
            return lines
        if proc is not None and proc.poll() is not None:
            raise AssertionError("na-client-probe ended before %s" % what)
        if time.monotonic() > deadline:
            raise AssertionError("na-client-probe never printed %s; printed %s"
                                 % (what, [s for s, _, _ in lines][-20:]))
        if step:
            step()
        else:
            time.sleep(0.05)


class ProbeTest(DeliveryTest):
    def probe(self, *opts, since="-", rcvhwm=0, idle_ms=600000, consume=True):
        """Starts na-client-probe OPTS ALERTS CATCHUP SINCE RCVHWM 0 IDLE_MS;
        with consume, once it has printed a probe alert (start_consumer)."""
        self.out = os.path.join(self.daemon.dir, "probe-%d.txt" % len(self.procs))
        self.err = self.out + ".err"
        cmd = [PROBE] + list(opts) + [self.daemon.publish, self.daemon.catchup, since,
                                      str(rcvhwm), "0", str(idle_ms)]
        err = open(self.err, "w")
        try:
            if consume:
                p = start_consumer(self.feed, self.out, cmd, stderr=err)
            else:
                with open(self.out, "w") as out:
                    p = subprocess.Popen(cmd, stdout=out, stderr=err)
        finally:
            err.close()
        self.procs.append(p)
        return p

    def finish(self, p):
        """Stops the probe; its stats."""
        p.send_signal(signal.SIGCONT)
        p.send_signal(signal.SIGTERM)
        p.wait(WAIT)
        with open(self.err) as f:
            err = f.read()
        check_clean_exit("na-client-probe", p.returncode, err)
        self.assertEqual(p.returncode, 0, err)
        return stats_of(err), err

    def full_catchup(self, since, tags):
        """(seq, article_id) of every journalled alert after since with one
        of tags, straight from the catch-up endpoint."""
        c = self.catchup()
        *alerts, end = c.ask(since=since, tags=list(tags))
        self.assertEqual(end.kind, END, end)
        return [(r.alert.seq, r.alert.article_id) for r in alerts]


class TestGap(ProbeTest):
    """A client that stops reading, and then reads slower than alerts come,
    through pipes of 16 messages at the daemon and one at the client: its
    losses, including the end of the burst that only the heartbeat shows,
    come back from catch-up, and what it prints is exactly what a full
    catch-up gives, in order, once. With several tags this needs the gap of
    one tag asked for from below the higher seqs of another."""

    extra_config = "publish:\n  sndhwm: 16\n  heartbeat_ms: 200\n"
    n = 3000

    def check(self, tags, *opts):
        p = self.probe(*(["--tag=" + t for t in tags] + list(opts)), rcvhwm=1)
        start = probe_lines(self.out)[0][0] - 1
        arts = mixed_articles("g", self.n)
        half = self.n // 2
        # Not reading at all: the pipes fill and the rest is dropped.
        p.send_signal(signal.SIGSTOP)
        for payload in arts[:half]:
            self.feed.send(payload)
        wait_journal(self.daemon, start + half)
        # Reading a little between sends: drops and receipts interleave.
        for i in range(half, self.n, 25):
            for payload in arts[i:i + 25]:
                self.feed.send(payload)
            p.send_signal(signal.SIGCONT)
            time.sleep(0.002)
            p.send_signal(signal.SIGSTOP)
        p.send_signal(signal.SIGCONT)
        # No alert after the burst: the heartbeat shows its lost end.
        wait_journal(self.daemon, start + self.n)
        want = self.full_catchup(start, tags)
        wait_printed(self.out, lambda lines: len(lines) >= len(want), "every alert", p)
        wait_quiet(self.out, 1.0)
        stats, err = self.finish(p)
        lines = probe_lines(self.out)
        seqs = [s for s, _, _ in lines]
        self.assertEqual(seqs, sorted(set(seqs)), "out of order or repeated")
        self.assertEqual([(s, i) for s, _, i in lines], want,
                         missing(seqs, [s for s, _ in want]))
        self.assertGreater(stats["gaps"], 0, err)
        self.assertGreater(stats["caught_up"], 0, err)
        self.assertEqual(stats["unrepaired"], 0, err)
        print("%s: %s" % (tags or "all tags", err.splitlines()[-1]))

    def test_one_tag(self):
        self.check(["aid"])

    def test_two_tags(self):
        self.check(["aid", "summit"])

    def test_every_tag(self):
        self.check([])

    def test_two_tags_polled_by_the_caller(self):
        # na_client_sockets, na_client_timer_ms and na_client_next(c, 0), as
        # a program that waits on many clients drives them.
        self.check(["aid", "summit"], "--poll")


class TestNewEpoch(ProbeTest):
    """The daemon restarts with its journal gone: a new epoch, numbered from
    1 again. The client says so and prints the new epoch's alerts from its
    first, including those published before it was connected again."""

    extra_config = "publish:\n  sndhwm: 16\n  heartbeat_ms: 200\n"

    def test_a_journal_that_starts_over(self):
        tags = ["aid", "summit"]
        p = self.probe("--tag=aid", "--tag=summit", rcvhwm=1)
        old_epoch = probe_lines(self.out)[-1][1]
        self.assertEqual(self.daemon.stop(), 0)
        shutil.rmtree(self.daemon.state_dir)
        self.start_daemon()
        # Not read while they come: most are lost live, and repaired.
        p.send_signal(signal.SIGSTOP)
        for payload in mixed_articles("e", 600):
            self.feed.send(payload)
        self.feed.send(article("e-end", *POSITIVE))
        wait_journal(self.daemon, 400)
        p.send_signal(signal.SIGCONT)
        lines = wait_printed(self.out, lambda lines: any(i == "e-end" for _, _, i in lines),
                             "e-end", p)
        wait_quiet(self.out, 0.5)
        stats, err = self.finish(p)
        lines = probe_lines(self.out)
        after = [(s, e, i) for s, e, i in lines if e != old_epoch]
        self.assertTrue(after)
        self.assertEqual(len({e for _, e, _ in after}), 1, after[:5])
        want = self.full_catchup(0, tags)
        self.assertEqual([(s, i) for s, _, i in after], want,
                         missing([s for s, _, _ in after], [s for s, _ in want]))
        self.assertEqual(stats["restarts"], 1, err)
        self.assertGreater(stats["caught_up"], 0, err)
        self.assertIn("started over", err)


class TestBusy(ProbeTest):
    """A daemon with room for one catch-up stream, taken by a client that
    does not read: the C client is told "busy", asks again, and gets its
    history whole once the other has gone."""

    extra_config = "catchup:\n  max_clients: 1\n"
    n = 2000

    def test_busy_is_asked_again(self):
        for payload in mixed_articles("b", self.n):
            self.feed.send(payload)
        wait_journal(self.daemon, self.n)
        blocker = self.catchup(rcvhwm=10)
        blocker.request(since=0)
        self.assertIsNotNone(blocker.recv(WAIT), "the other stream never started")
        p = self.probe(since="0", consume=False)
        time.sleep(1.5)    # nothing may come while the daemon says busy
        self.assertIsNone(p.poll(), open(self.err).read())
        self.assertEqual(probe_lines(self.out), [])
        blocker.sock.close(0)   # the daemon drops its stream at the next send
        self.socks.remove(blocker.sock)
        wait_printed(self.out, lambda lines: len(lines) >= self.n, "the history", p)
        stats, err = self.finish(p)
        self.assertEqual([s for s, _, _ in probe_lines(self.out)], list(range(1, self.n + 1)))
        self.assertGreaterEqual(stats["requests"], 2, err)


class TestIdleStart(ProbeTest):
    """A client that starts while the daemon is idle receives a heartbeat
    first: it starts where the heartbeat says numbering stands, so it fetches
    nothing when nothing is lost, and never the journal before it."""

    extra_config = "publish:\n  heartbeat_ms: 200\n"

    def test_first_a_heartbeat_then_alerts(self):
        for payload in positives("old", 20):
            self.feed.send(payload)
        wait_journal(self.daemon, 20)
        p = self.probe("--tag=aid", "--tag=summit", "--note-heartbeat", consume=False)
        deadline = time.monotonic() + WAIT
        while "heartbeat seen" not in open(self.err).read():
            self.assertLess(time.monotonic(), deadline, "no heartbeat reached the client")
            self.assertIsNone(p.poll(), open(self.err).read())
            time.sleep(0.05)
        self.assertEqual(probe_lines(self.out), [], "an alert came before the heartbeat")
        for payload in positives("new", 10):
            self.feed.send(payload)
        wait_printed(self.out, lambda lines: any(i == "new-9" for _, _, i in lines), "new-9", p)
        wait_quiet(self.out, 0.5)
        stats, err = self.finish(p)
        lines = probe_lines(self.out)
        self.assertEqual([i for _, _, i in lines], ["new-%d" % k for k in range(10)])
        self.assertEqual([s for s, _, _ in lines], list(range(21, 31)))
        self.assertEqual((stats["requests"], stats["caught_up"]), (0, 0), err)


class FakeDaemon:
    """A publisher and a catch-up endpoint in the test's hands: an XPUB and a
    ROUTER on ipc, a journal of Alerts to serve, and every request kept as
    (routing id, since, until)."""

    def __init__(self, test, epoch=7):
        self.ctx = zmq.Context()
        test.addCleanup(self.ctx.term)
        self.dir = tempfile.mkdtemp(prefix="na-fake-")
        test.addCleanup(shutil.rmtree, self.dir, True)
        self.alerts, self.catchup = "ipc://%s/alerts" % self.dir, "ipc://%s/catchup" % self.dir
        self.pub = self.ctx.socket(zmq.XPUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub.bind(self.alerts)
        test.addCleanup(self.pub.close, 0)
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(self.catchup)
        test.addCleanup(self.router.close, 0)
        self.epoch = epoch
        self.journal = {}   # seq -> Alert
        self.requests = []

    def add(self, seq, **topics):
        """An alert on the topics alert.<tag>=topic_seq, kept in the journal."""
        a = alert_pb2.Alert(seq=seq, epoch=self.epoch, article_id="a-%d" % seq,
                            topics=[alert_pb2.TopicSeq(topic="alert." + t, seq=k)
                                    for t, k in sorted(topics.items())])
        self.journal[seq] = a
        return a

    def wait_subscribed(self, topics, timeout=WAIT):
        seen = set()
        deadline = time.monotonic() + timeout
        while not set(topics) <= seen:
            if time.monotonic() > deadline:
                raise AssertionError("the client never subscribed to %s" % topics)
            if self.pub.poll(100):
                m = self.pub.recv()
                if m[:1] == b"\x01":
                    seen.add(m[1:].decode())

    def publish(self, seq):
        a = self.journal[seq]
        for t in a.topics:
            copy = alert_pb2.Alert()
            copy.CopyFrom(a)
            copy.topic = t.topic
            copy.topic_seq = t.seq
            self.pub.send_multipart([t.topic.encode(), copy.SerializeToString()])

    def heartbeat(self, last_seq, **topics):
        hb = alert_pb2.Heartbeat(epoch=self.epoch, last_seq=last_seq, interval_ms=1000,
                                 topics=[alert_pb2.TopicSeq(topic="alert." + t, seq=k)
                                         for t, k in sorted(topics.items())])
        self.pub.send_multipart([b"~hb", hb.SerializeToString()])

    def reply(self, ident, **kw):
        r = catchup_pb2.CatchupReply(epoch=self.epoch, **kw)
        self.router.send_multipart([ident, r.SerializeToString()])

    def answer(self, ident, since, until, tags):
        """What the daemon would send for the request."""
        n = 0
        for seq in sorted(self.journal):
            a = self.journal[seq]
            if seq <= since or (until and seq > until):
                continue
            if tags and not {"alert." + t for t in tags} & {t.topic for t in a.topics}:
                continue
            self.reply(ident, kind=ALERT, alert=a)
            n += 1
        self.reply(ident, kind=END, count=n, last_seq=max(self.journal))

    def serve(self, handle=None, timeout=0.02):
        """Takes the requests waiting; handle(ident, request) answers each
        (default: as the daemon would)."""
        while self.router.poll(int(timeout * 1000)):
            ident, body = self.router.recv_multipart()
            r = catchup_pb2.CatchupRequest.FromString(body)
            self.requests.append((ident, r.since_seq, r.until_seq))
            if handle is None:
                self.answer(ident, r.since_seq, r.until_seq, list(r.tags))
            else:
                handle(ident, r)
            timeout = 0


class FakeTest(unittest.TestCase):
    def probe(self, fake, *opts):
        self.out = os.path.join(fake.dir, "probe.txt")
        self.err = self.out + ".err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            p = subprocess.Popen([PROBE] + list(opts) + [fake.alerts, fake.catchup, "-", "0",
                                                         "0", "600000"],
                                 stdout=out, stderr=err)
        self.addCleanup(self.reap, p)
        return p

    def reap(self, p):
        if p.poll() is None:
            p.kill()
        p.wait()

    def finish(self, p):
        p.send_signal(signal.SIGTERM)
        p.wait(WAIT)
        with open(self.err) as f:
            err = f.read()
        check_clean_exit("na-client-probe", p.returncode, err)
        self.assertEqual(p.returncode, 0, err)
        return stats_of(err), err

    def seqs(self):
        return [s for s, _, _ in probe_lines(self.out)]

    def wait_seq(self, fake, seq, handle=None):
        return wait_printed(self.out, lambda lines: any(s == seq for s, _, _ in lines),
                            "seq %d" % seq, timeout=WAIT,
                            step=lambda: fake.serve(handle))


class TestHeartbeatFirst(FakeTest):
    """The first message is a heartbeat at seq 50; the next alert, 53, shows
    a gap: the client asks for 51 and 52 alone, not for the journal from 1."""

    def test_the_heartbeat_is_the_starting_point(self):
        fake = FakeDaemon(self)
        for s in range(1, 61):
            fake.add(s, aid=s)
        p = self.probe(fake)
        fake.wait_subscribed(["alert.", "~hb"])
        fake.heartbeat(50, aid=50)
        fake.publish(53)
        self.wait_seq(fake, 53)
        fake.serve(timeout=0.3)
        stats, err = self.finish(p)
        self.assertEqual(self.seqs(), [51, 52, 53], err)
        self.assertEqual([(s, u) for _, s, u in fake.requests], [(50, 52)], err)
        self.assertEqual((stats["requests"], stats["caught_up"]), (1, 2), err)


class TestGapBelowAnotherTag(FakeTest):
    """Two tags followed: aid's alert 11 is lost live, summit's 12 arrives,
    then aid's 13 shows the gap in aid's numbering. 12 must wait (nothing
    proves that no aid alert came before it), and the gap is asked for from
    10, below 12, so that 11 comes back before 12."""

    def test_the_gap_is_asked_from_the_frontier(self):
        fake = FakeDaemon(self)
        fake.add(10, aid=5)
        fake.add(11, aid=6)
        fake.add(12, summit=3)
        fake.add(13, aid=7)
        p = self.probe(fake, "--tag=aid", "--tag=summit", "--hold-ms=60000")
        fake.wait_subscribed(["alert.aid", "alert.summit", "~hb"])
        fake.heartbeat(9, aid=4, summit=2)
        fake.publish(10)
        self.wait_seq(fake, 10)
        fake.publish(12)
        fake.publish(13)
        self.wait_seq(fake, 13)
        fake.serve(timeout=0.3)
        stats, err = self.finish(p)
        self.assertEqual(self.seqs(), [10, 11, 12, 13], err)
        self.assertEqual([(s, u) for _, s, u in fake.requests], [(10, 12)], err)
        self.assertEqual(stats["gaps"], 1, err)


class TestLateAnswer(FakeTest):
    """A catch-up endpoint that does not answer the request for a gap: the
    client asks again, each time on a new DEALER, gives the gap up after the
    third, and goes on. The answer to the abandoned request then comes late,
    just before the answer to the next gap's request: it must not be taken
    for that one's (it would claim the next gap empty)."""

    def test_a_late_end_is_not_the_next_answer(self):
        fake = FakeDaemon(self)
        for s in range(1, 10):
            fake.add(s, aid=s)
        silent = []

        def handle(ident, r):
            if r.until_seq == 4:   # the first gap: never answered in time
                silent.append(ident)
                return
            for old in silent:     # ... but late, before the next answer
                fake.reply(old, kind=END, count=0, last_seq=4)
            fake.answer(ident, r.since_seq, r.until_seq, list(r.tags))

        p = self.probe(fake, "--catchup-timeout-ms=300")
        fake.wait_subscribed(["alert.", "~hb"])
        fake.publish(1)
        self.wait_seq(fake, 1, handle)
        fake.publish(5)
        self.wait_seq(fake, 5, handle)
        fake.publish(9)
        self.wait_seq(fake, 9, handle)
        fake.serve(handle, timeout=0.3)
        stats, err = self.finish(p)
        self.assertEqual(self.seqs(), [1, 5, 6, 7, 8, 9], err)
        first = [i for i, s, u in fake.requests if (s, u) == (1, 4)]
        self.assertEqual(len(first), 3, fake.requests)
        self.assertEqual(len(set(first)), 3, "a retry reused the DEALER")
        self.assertNotIn(fake.requests[-1][0], first, "the next request reused a DEALER")
        self.assertEqual((stats["timeouts"], stats["unrepaired"]), (3, 1), err)
        self.assertIn("did not answer", err)


class TestBadOptions(unittest.TestCase):
    """What na_client_new refuses, it names."""

    def test_bad_tags_are_named(self):
        for args, want in ((["--tag=a.b"], "'a.b' is not a tag name"),
                           (["--tag=~hb"], "'~hb' is not a tag name"),
                           (["--tag="], "'' is not a tag name")):
            r = subprocess.run([PROBE] + args + ["ipc:///nonexistent/a", "ipc:///nonexistent/c"],
                               capture_output=True, text=True, timeout=WAIT)
            self.assertEqual(r.returncode, 64, r.stderr)
            self.assertIn(want, r.stderr)
            check_clean_exit("na-client-probe", r.returncode, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
