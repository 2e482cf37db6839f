"""The Python client package (clients/python, `newsalert`) against the real
daemon: subscribing by tag, gaps repaired from catch-up and checked against
a full catch-up, a daemon whose journal starts over, CURVE with key files,
garbage on the heartbeat topic, the example, and pip."""

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

PKG = os.path.join(os.environ["NA_SOURCE_DIR"], "clients", "python")
# Before the harness: the package's own newsalert.v1 (the same protos) is
# then the one every module uses.
sys.path.insert(0, PKG)

import zmq  # noqa: E402
import zmq.auth  # noqa: E402

import newsalert  # noqa: E402
from harness import (POSITIVE, SRC, WAIT, Feed, article, probe_article,  # noqa: E402
                     seed_article)
from test_curve import CurveDaemon, keygen  # noqa: E402
from test_delivery import (LONG, Catchup, DeliveryTest, corpus_article, labelled_articles,  # noqa: E402
                           missing, wait_journal)

ALL_TAGS = {"aid", "alliance", "summit"}


def take(client, n=None, until_id=None, timeout=LONG, quiet=None):
    """Alerts from client: n of them, or up to the one for until_id, then (with
    quiet) whatever follows until quiet seconds pass without one."""
    got = []
    deadline = time.monotonic() + timeout
    while n is None or len(got) < n:
        if time.monotonic() > deadline:
            raise AssertionError("the client stopped at %d alerts (%s); stats %s" % (
                len(got), got[-1].article_id if got else "-", client.stats))
        a = client.next(0.2)
        if a is not None:
            got.append(a)
            if until_id is not None and a.article_id == until_id:
                break
    while quiet:
        a = client.next(quiet)
        if a is None:
            break
        got.append(a)
    return got


def sync(feed, client, prefix="probe-py"):
    """Sends probes until the client yields one; returns the alerts so far."""
    got = []
    deadline = time.monotonic() + WAIT
    k = 0
    while not any(a.article_id.startswith(prefix) for a in got):
        if time.monotonic() > deadline:
            raise AssertionError("the client never received a probe; stats %s"
                                 % client.stats)
        k += 1
        feed.send(probe_article("%s-%d-%d" % (prefix, os.getpid(), k)))
        a = client.next(0.2)
        while a is not None:
            got.append(a)
            a = client.next(0.05)
    return got


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
        out.append(("%s-%d" % (prefix, i), corpus_article(g[i % len(g)], "%s-%d" % (prefix, i))))
    return out


def full_catchup(test, since, tags):
    """(seq, article_id) of every journalled alert after since with one of
    tags, straight from the catch-up endpoint."""
    c = test.catchup()
    *alerts, end = c.ask(since=since, tags=list(tags))
    test.assertEqual(end.kind, 2, end)   # END
    return [(r.alert.seq, r.alert.article_id) for r in alerts]


class TestGenerated(unittest.TestCase):
    """The committed *_pb2.py are what protoc makes of proto/ today."""

    def test_generated_classes_are_current(self):
        out = tempfile.mkdtemp(prefix="na-pb2-")
        try:
            subprocess.run([os.path.join(PKG, "regen-proto"), out], check=True, timeout=WAIT)
            gen = os.path.join(out, "newsalert", "v1")
            names = sorted(f for f in os.listdir(gen) if f.endswith("_pb2.py"))
            self.assertEqual(names, ["alert_pb2.py", "article_pb2.py", "catchup_pb2.py"])
            for f in names:
                self.assertTrue(filecmp.cmp(os.path.join(gen, f),
                                            os.path.join(PKG, "newsalert", "v1", f),
                                            shallow=False),
                                "clients/python/newsalert/v1/%s is stale: run "
                                "clients/python/regen-proto" % f)
        finally:
            shutil.rmtree(out, ignore_errors=True)


class PyClientTest(DeliveryTest):
    def client(self, **kw):
        kw.setdefault("catchup", self.daemon.catchup)
        c = newsalert.Client(self.daemon.publish, context=self.ctx, **kw)
        self.addCleanup(c.close)
        return c


class TestSubscribe(PyClientTest):
    def test_the_seed_article_by_tag(self):
        c = self.client(tags=["aid"])
        sync(self.feed, c)
        self.feed.send(seed_article("seed-py"))
        a = take(c, until_id="seed-py", timeout=WAIT)[-1]
        self.assertIsInstance(a, newsalert.alert_pb2.Alert)
        self.assertEqual({t.tag for t in a.tags}, ALL_TAGS)
        for t in a.tags:
            self.assertTrue(t.evidence, t)
            self.assertTrue(all(e.sentence for e in t.evidence), t)
        self.assertEqual(_topics_of(a), {"alert.aid", "alert.alliance", "alert.summit"})
        self.assertEqual(c.stats.duplicates, 0)   # one tag: one copy per alert

    def test_only_the_tags_asked_for(self):
        c = self.client(tags=["summit"])
        sync(self.feed, c)
        arts = mixed_articles("t", 30)
        for _, payload in arts:
            self.feed.send(payload)
        self.feed.send(article("t-end", *POSITIVE))
        got = take(c, until_id="t-end")
        self.assertTrue(all("summit" in {t.tag for t in a.tags} for a in got))
        seqs = [a.seq for a in got]
        self.assertEqual(seqs, sorted(set(seqs)))
        want = [i for s, i in full_catchup(self, got[0].seq - 1, ["summit"])]
        self.assertEqual([a.article_id for a in got], want)

    def test_history_then_live(self):
        for _, payload in mixed_articles("h", 40):
            self.feed.send(payload)
        wait_journal(self.daemon, 40)
        c = self.client(tags=["aid", "alliance"], since=0)
        got = sync(self.feed, c)
        want = full_catchup(self, 0, ["aid", "alliance"])
        self.assertEqual([(a.seq, a.article_id) for a in got[:len(want)]], want)
        self.assertGreater(c.stats.caught_up, 0)

    def test_a_bad_tag_is_refused_by_name(self):
        c = self.client(tags=["weather"], since=0)
        with self.assertRaises(newsalert.CatchupRefused) as e:
            c.next(WAIT)
        self.assertIn("unknown tag 'weather'", str(e.exception))


class TestBusy(PyClientTest):
    """A daemon with room for one catch-up stream, taken by a client that
    does not read: the Python client is told "busy", asks again, and gets
    its history whole once the other has gone."""

    extra_config = "catchup:\n  max_clients: 1\n"
    n = 2000

    def test_busy_is_asked_again(self):
        for _, payload in mixed_articles("b", self.n):
            self.feed.send(payload)
        wait_journal(self.daemon, self.n)
        blocker = Catchup(self.ctx, self.daemon.catchup, rcvhwm=10)
        self.socks.append(blocker.sock)
        blocker.request(since=0)
        self.assertIsNotNone(blocker.recv(WAIT), "the other stream never started")
        c = self.client(since=0)
        self.assertIsNone(c.next(1.5))
        blocker.sock.close(0)   # the daemon drops its stream at the next send
        got = take(c, n=self.n)
        self.assertEqual([a.seq for a in got], list(range(1, self.n + 1)))
        self.assertGreaterEqual(c.stats.requests, 2, c.stats)


def _topics_of(a):
    return {t.topic for t in a.topics}


class TestGap(PyClientTest):
    """A client that stops reading, and then reads slower than alerts come,
    through pipes of 16 messages at the daemon and one at the client: its
    losses, including the end of the burst that only the heartbeat shows,
    come back from catch-up, and what it yields is exactly what a full
    catch-up gives, in order, once."""

    extra_config = "publish:\n  sndhwm: 16\n  heartbeat_ms: 200\n"
    n = 3000

    def check(self, tags):
        c = self.client(tags=tags, rcvhwm=1)
        got = sync(self.feed, c)
        start = got[0].seq - 1
        arts = mixed_articles("g", self.n)
        half = self.n // 2
        # Not reading at all: the pipes fill and the rest is dropped.
        for _, payload in arts[:half]:
            self.feed.send(payload)
        wait_journal(self.daemon, got[-1].seq + half)
        # Reading a little between sends: drops and receipts interleave.
        for i in range(half, self.n, 25):
            for _, payload in arts[i:i + 25]:
                self.feed.send(payload)
            for _ in range(3):
                a = c.next(0)
                if a is not None:
                    got.append(a)
        # No alert after the burst: the heartbeat shows its lost end.
        deadline = time.monotonic() + LONG
        want_all = None
        while True:
            a = c.next(0.5)
            if a is not None:
                got.append(a)
                continue
            want_all = full_catchup(self, start, tags)
            if len(got) >= len(want_all) and not c.busy():
                break
            self.assertLess(time.monotonic(), deadline,
                            "the client never caught up: %s; stats %s" % (
                                missing([x.seq for x in got], [s for s, _ in want_all]),
                                c.stats))
        seqs = [a.seq for a in got]
        self.assertEqual(seqs, sorted(set(seqs)), "out of order or repeated")
        self.assertEqual([(a.seq, a.article_id) for a in got], want_all,
                         missing(seqs, [s for s, _ in want_all]))
        self.assertGreater(c.stats.gaps, 0, c.stats)
        self.assertGreater(c.stats.caught_up, 0, c.stats)
        self.assertEqual(c.stats.unrepaired, 0, c.stats)
        if tags:
            for a in got:
                self.assertTrue(set(tags) & {t.tag for t in a.tags}, a.article_id)
        print("%s: %s" % (tags or "all tags", c.stats))

    def test_one_tag(self):
        self.check(["aid"])

    def test_two_tags(self):
        self.check(["aid", "summit"])

    def test_every_tag(self):
        self.check([])


class TestNewEpoch(PyClientTest):
    """The daemon restarts with its journal gone: a new epoch, numbered from
    1 again. The client says so and yields the new epoch's alerts from its
    first, including those published before it was connected again."""

    extra_config = "publish:\n  sndhwm: 16\n  heartbeat_ms: 200\n"

    def test_a_journal_that_starts_over(self):
        c = self.client(tags=["aid", "summit"], rcvhwm=1)
        got = sync(self.feed, c)
        old_epoch = got[-1].epoch
        self.assertEqual(self.daemon.stop(), 0)
        shutil.rmtree(self.daemon.state_dir)
        self.start_daemon()
        # Not read while they come: most are lost live, and repaired.
        arts = mixed_articles("e", 600)
        for _, payload in arts:
            self.feed.send(payload)
        self.feed.send(article("e-end", *POSITIVE))
        wait_journal(self.daemon, 400)
        after = [a for a in take(c, until_id="e-end") if a.epoch != old_epoch]
        self.assertTrue(after)
        new_epoch = after[0].epoch
        self.assertNotEqual(new_epoch, old_epoch)
        self.assertEqual({a.epoch for a in after}, {new_epoch})
        want = full_catchup(self, 0, ["aid", "summit"])
        self.assertEqual([(a.seq, a.article_id) for a in after], want,
                         missing([a.seq for a in after], [s for s, _ in want]))
        self.assertEqual(c.stats.restarts, 1)
        self.assertGreater(c.stats.caught_up, 0, c.stats)
        self.assertTrue(any("started over" in w for w in c.warnings()))


class TestCurve(unittest.TestCase):
    """CURVE on the alerts and the catch-up endpoint, with the key files of
    `newsalert keygen`: an allowed key receives and catches up; a key the
    daemon does not know receives nothing, in the same run."""

    QUIET = 1.5

    def setUp(self):
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.term)
        self.keys = tempfile.mkdtemp(prefix="na-keys-")
        self.addCleanup(shutil.rmtree, self.keys, True)
        allow = os.path.join(self.keys, "allow")
        os.mkdir(allow)
        for name in ("server", "alice", "mallory"):
            keygen(self.keys, name)
        shutil.copy(self.k("alice.pub"), allow)
        feed_sock = self.ctx.socket(zmq.XPUB)
        feed_sock.setsockopt(zmq.SNDHWM, 0)
        feed_sock.bind("tcp://127.0.0.1:*")
        self.addCleanup(feed_sock.close, 0)
        self.feed = Feed.__new__(Feed)
        self.feed.sock = feed_sock
        self.daemon = CurveDaemon(
            "publish:\n  curve:\n    secret_key: %s\n    allow_dir: %s\n"
            % (self.k("server.key"), allow),
            [feed_sock.getsockopt(zmq.LAST_ENDPOINT).decode()])
        self.addCleanup(self.daemon.cleanup)
        self.daemon.start()
        self.feed.wait_subscriber()

    def k(self, name):
        return os.path.join(self.keys, name)

    def client(self, key, **kw):
        c = newsalert.Client(self.daemon.alerts, catchup=self.daemon.catchup,
                             server_key=self.k("server.pub"), client_key=self.k(key),
                             context=self.ctx, **kw)
        self.addCleanup(c.close)
        return c

    def test_allowed_key_receives_and_catches_up_and_a_wrong_one_does_not(self):
        alice = self.client("alice.key", tags=["aid"])
        mallory = self.client("mallory.key", tags=["aid"])
        got = sync(self.feed, alice)
        self.assertIsNone(mallory.next(self.QUIET))
        self.assertEqual(mallory.stats.heartbeats, 0)
        # History through the CURVE catch-up endpoint.
        late = self.client("alice.key", tags=["aid"], since=0)
        history = take(late, until_id=got[-1].article_id)
        self.assertEqual([a.seq for a in history], list(range(1, got[-1].seq + 1)))
        self.assertGreater(late.stats.caught_up, 0)
        self.assertIn("publish.curve.allow_dir", self.daemon.text())

    def test_key_files_are_checked(self):
        os.chmod(self.k("alice.key"), 0o644)
        with self.assertRaises(newsalert.KeyFileError) as e:
            self.client("alice.key")
        self.assertIn("alice.key: holds a secret key but its mode is 0644", str(e.exception))
        with self.assertRaises(newsalert.KeyFileError) as e:
            self.client("alice.pub")
        self.assertIn("alice.pub: no curve secret-key", str(e.exception))
        with self.assertRaises(newsalert.KeyFileError) as e:
            self.client("nowhere.key")
        self.assertIn("nowhere.key: No such file or directory", str(e.exception))
        # pyzmq's zmq.auth writes the same format (its secret file as NAME.key_secret).
        pub_file, sec_file = zmq.auth.create_certificates(self.keys, "carol")
        os.chmod(sec_file, 0o600)
        self.assertEqual(newsalert.load_certificate(sec_file, need_secret=True),
                         tuple(k.decode() for k in zmq.auth.load_certificate(sec_file)))
        self.assertEqual(newsalert.load_certificate(pub_file),
                         (zmq.auth.load_certificate(pub_file)[0].decode(), None))
        bad = self.k("bad.pub")
        with open(bad, "w") as f:
            f.write("curve\n    public-key = \"too short\"\n")
        with self.assertRaises(newsalert.KeyFileError) as e:
            newsalert.Client(self.daemon.alerts, server_key=bad, context=self.ctx)
        self.assertIn("bad.pub:2: public-key: expected 40 Z85 characters", str(e.exception))


class TestHostileHeartbeat(unittest.TestCase):
    """A publisher that is not newsalertd sends heartbeats that are not
    Heartbeats: each is counted as invalid, and the next alert comes out."""

    def test_garbage_on_the_heartbeat_topic(self):
        ctx = zmq.Context()
        d = tempfile.mkdtemp(prefix="na-test-")
        pub = ctx.socket(zmq.XPUB)
        pub.setsockopt(zmq.LINGER, 0)
        try:
            endpoint = "ipc://%s/alerts" % d
            pub.bind(endpoint)
            c = newsalert.Client(endpoint, catchup="ipc://%s/catchup" % d, tags=["aid"],
                                 context=ctx)
            try:
                subscribed = set()
                deadline = time.monotonic() + WAIT
                while not {b"\x01alert.aid", b"\x01~hb"} <= subscribed:
                    self.assertLess(time.monotonic(), deadline, "the client never subscribed")
                    c.next(0)
                    if pub.poll(100):
                        subscribed.add(pub.recv())
                bad = [b"\xff\xff\xff", b"\x0a\xff", b"", b"\x08" + b"\xff" * 11,
                       b"\x1a\x05~hb", os.urandom(64)]
                for body in bad:
                    pub.send_multipart([b"~hb", body])
                pub.send_multipart([b"~hb"])              # no body at all
                # A topic that the prefix subscription "alert.aid" takes too.
                other = newsalert.alert_pb2.Alert(seq=1, epoch=7, article_id="aidx",
                                                  topic="alert.aidx", topic_seq=1)
                pub.send_multipart([b"alert.aidx", other.SerializeToString()])
                good = newsalert.alert_pb2.Alert(
                    seq=1, epoch=7, article_id="after-the-garbage", topic="alert.aid",
                    topic_seq=1, topics=[newsalert.alert_pb2.TopicSeq(topic="alert.aid",
                                                                      seq=1)])
                pub.send_multipart([b"alert.aid", good.SerializeToString()])
                a = c.next(WAIT)
                self.assertIsNotNone(a, c.stats)
                self.assertEqual((a.seq, a.epoch, a.article_id), (1, 7, "after-the-garbage"))
                # Some of the bytes may parse as a Heartbeat (protobuf takes
                # an empty message), but not with an epoch: all are counted.
                self.assertGreaterEqual(c.stats.invalid, 6, c.stats)
                self.assertEqual(c.stats.heartbeats, 0, c.stats)
            finally:
                c.close()
        finally:
            pub.close(0)
            ctx.term()
            shutil.rmtree(d, ignore_errors=True)


class TestExample(DeliveryTest):
    def test_the_example_prints_alerts(self):
        out = os.path.join(self.daemon.dir, "example.txt")
        env = dict(os.environ, PYTHONPATH=PKG)
        cmd = [sys.executable, os.path.join(SRC, "examples", "python", "subscribe.py"),
               "--alerts", self.daemon.publish, "--catchup", self.daemon.catchup,
               "--count", "1", "aid"]
        f = open(out, "w")
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.PIPE, text=True, env=env)
        f.close()
        self.procs.append(proc)
        deadline = time.monotonic() + WAIT
        k = 0
        while proc.poll() is None:
            self.assertLess(time.monotonic(), deadline, "the example never printed an alert")
            k += 1
            self.feed.send(probe_article("probe-ex-%d" % k))
            time.sleep(0.1)
        self.assertEqual(proc.returncode, 0, proc.stderr.read())
        with open(out) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 1, lines)
        seq, aid, tags = lines[0].split()[:3]
        self.assertGreater(int(seq), 0)
        self.assertTrue(aid.startswith("probe-ex-"), lines)
        self.assertEqual(sorted(tags.strip("[]").split(",")), sorted(ALL_TAGS))

    def test_pip_installs_the_package(self):
        tmp = tempfile.mkdtemp(prefix="na-pip-")
        self.addCleanup(shutil.rmtree, tmp, True)
        src = os.path.join(tmp, "src")
        shutil.copytree(PKG, src, ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                                "__pycache__"))
        target = os.path.join(tmp, "site")
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps",
                            "--no-build-isolation", "--no-index", "--target", target, src],
                           capture_output=True, text=True, timeout=LONG)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = subprocess.run([sys.executable, "-c",
                            "import newsalert, sys; print(newsalert.__file__); "
                            "print(newsalert.catchup_pb2.CatchupRequest(since_seq=3))"],
                           capture_output=True, text=True, timeout=WAIT, cwd=tmp,
                           env=dict(os.environ, PYTHONPATH=target))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith(os.path.join(target, "newsalert")), r.stdout)
        self.assertIn("since_seq: 3", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
