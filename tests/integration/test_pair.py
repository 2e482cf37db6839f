"""An active-active pair: two newsalertd on one feed, each with its own
journal and epoch, followed together by consumers that hand each alert key
out once (`newsalert tail` with two --connect, on the C library's merge.h,
and the Python package's MultiClient). One daemon is killed with SIGKILL in
the middle of a burst and started again later; both consumers must end
with every alert key exactly once, checked against the two journals."""

import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

PKG = os.path.join(os.environ["NA_SOURCE_DIR"], "clients", "python")
sys.path.insert(0, PKG)

import zmq  # noqa: E402

import newsalert  # noqa: E402
from harness import WAIT, Daemon, check_clean_exit, load_json  # noqa: E402
from test_delivery import (LONG, NEWSALERT, SCALE, Publisher, corpus_article,  # noqa: E402
                           labelled_articles, read_journal, seeded)

# Fields that are the daemon's own (its numbering, its clock), not the
# tagger's: the rest of an alert must be the same from either daemon.
PER_DAEMON = {"seq", "epoch", "topic", "topic_seq", "topics", "received_at_ms",
              "update_of", "journal_time_ms"}


def keys_of(alert):
    """The alert keys of an alert given as a dict (tool JSON)."""
    base = "%s/%s/%d" % (alert["source"].replace("%", "%25").replace("/", "%2F"),
                         alert["article_id"].replace("%", "%25").replace("/", "%2F"),
                         alert["revision"])
    return [base + "#" + t["tag"] for t in alert["tags"]]


def assert_each_key_once(test, name, keys, truth, source="daemon"):
    """Asserts that a consumer got every key of truth once and no other."""
    counts = collections.Counter(keys)
    dup = {k: n for k, n in counts.items() if n > 1}
    lost = truth - set(counts)
    extra = set(counts) - truth
    print("%s: %d keys, %d lost, %d duplicated, %d unknown"
          % (name, len(keys), len(lost), len(dup), len(extra)))
    test.assertEqual(dup, {}, "%s: keys delivered more than once" % name)
    test.assertEqual(lost, set(), "%s: keys lost" % name)
    test.assertEqual(extra, set(), "%s: keys no %s journalled" % (name, source))


class MultiConsumer(threading.Thread):
    """The Python MultiClient, run until stop is set and it has been idle
    (and not busy) for `quiet` seconds."""

    def __init__(self, daemons, quiet):
        super().__init__(daemon=True)
        self.daemons, self.quiet = daemons, quiet
        self.keys = []
        self.sources = collections.Counter()
        self.stop = threading.Event()
        self.error = None
        self.stats = None

    def run(self):
        try:
            with newsalert.MultiClient(self.daemons, since=0) as m:
                last = time.monotonic()
                while True:
                    r = m.next(0.2)
                    if r is not None:
                        a, i = r
                        self.keys.extend(newsalert.alert_key(a) + "#" + t.tag
                                         for t in a.tags)
                        self.sources[i] += 1
                        last = time.monotonic()
                        continue
                    m.warnings()
                    if (self.stop.is_set() and not m.busy()
                            and time.monotonic() - last > self.quiet):
                        break
                self.stats = (m.delivered, m.duplicates,
                              [c.stats for c in m.clients])
        except Exception as e:  # reported by the test
            self.error = e


class TestActiveActive(unittest.TestCase):
    total = 10000
    rate = int(2000 / SCALE)

    def setUp(self):
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.term)
        self.a, self.b = Daemon(), Daemon()
        self.addCleanup(self.a.cleanup)
        self.addCleanup(self.b.cleanup)
        self.dir = tempfile.mkdtemp(prefix="na-pair-")
        self.feed = "ipc://%s/feed" % self.dir

    def start(self, d):
        if d.proc is not None:
            d.log.close()
        d.start("--feed", self.feed)
        d.wait_log("ready:")

    def test_kill_9_one_of_two_and_every_key_arrives_once(self):
        rnd = seeded(self)
        corpus = labelled_articles()
        payloads, alerting = [], set()
        for i in range(self.total):
            kw, tags = corpus[i % len(corpus)]
            aid = "pair-%d-%s" % (i, kw["id"])
            payloads.append(corpus_article(kw, aid))
            if tags:
                alerting.add(aid)
        kill_at = rnd.randrange(self.total // 5, 2 * self.total // 5)
        restart_at = rnd.randrange(3 * self.total // 5, 4 * self.total // 5)

        self.start(self.a)
        self.start(self.b)
        quiet = 4.0 * SCALE
        out = open(os.path.join(self.dir, "tail.jsonl"), "w")
        err = open(os.path.join(self.dir, "tail.err"), "w+")
        self.addCleanup(err.close)
        tail = subprocess.Popen(
            [NEWSALERT, "tail", "--json", "--since", "0", "--timeout", str(quiet),
             "--connect", self.a.publish, "--catchup", self.a.catchup,
             "--endpoint", self.b.publish, "--catchup", self.b.catchup],
            stdout=out, stderr=err)
        self.addCleanup(lambda: tail.poll() is None and tail.kill())
        multi = MultiConsumer([(self.a.publish, self.a.catchup),
                               (self.b.publish, self.b.catchup)], quiet)
        multi.start()
        self.addCleanup(multi.stop.set)

        publisher = Publisher(self.ctx, self.feed, payloads, self.rate)
        publisher.start()
        self.addCleanup(publisher.join)
        self.addCleanup(publisher.stop.set)
        self.assertTrue(publisher.bound.wait(WAIT))

        def wait_sent(n):
            deadline = time.monotonic() + LONG
            while publisher.sent < n and publisher.is_alive():
                self.assertLess(time.monotonic(), deadline, "the replay stalled")
                time.sleep(0.005)
            self.assertIsNone(publisher.error)

        wait_sent(kill_at)
        self.b.proc.kill()
        self.b.proc.wait()
        wait_sent(restart_at)
        self.start(self.b)
        publisher.join(LONG)
        self.assertFalse(publisher.is_alive(), "the replay never ended")
        self.assertIsNone(publisher.error)
        multi.stop.set()

        tail.wait(LONG)
        multi.join(LONG)
        self.assertFalse(multi.is_alive(), "the Python consumer never went quiet")
        self.assertIsNone(multi.error)
        err.seek(0)
        tail_err = err.read()
        check_clean_exit("newsalert tail", tail.returncode, tail_err)
        self.assertEqual(tail.returncode, 0, tail_err)
        out.close()
        self.assertEqual(self.a.stop(), 0, self.a.text())
        self.assertEqual(self.b.stop(), 0, self.b.text())

        journals = []
        for d in (self.a, self.b):
            rc, alerts, jerr = read_journal(d)
            self.assertEqual(rc, 0, jerr)
            journals.append({k: al for al in alerts for k in keys_of(al)})
        ja, jb = journals
        truth = set(ja) | set(jb)
        # Together the two alerted every article that tags: while one was
        # down the other had it, and an article sent before the slower one
        # had connected went to the first. (Only the pair promises that.)
        self.assertEqual({k.split("/")[1] for k in truth}, alerting)
        # The other one really missed a stretch: its journal lacks keys.
        missed = set(ja) - set(jb)
        self.assertGreater(len(missed), 0)

        # Tagging is the same on both: every field but their own numbering.
        both = set(ja) & set(jb)
        self.assertGreater(len(both), len(truth) // 4)
        for k in both:
            x = {f: v for f, v in ja[k].items() if f not in PER_DAEMON}
            y = {f: v for f, v in jb[k].items() if f not in PER_DAEMON}
            self.assertEqual(x, y, "the two daemons tagged %s differently" % k)

        with open(out.name) as f:
            lines = [load_json(line) for line in f]
        tail_keys = [k for al in lines for k in keys_of(al)]
        from_daemon = collections.Counter(al["daemon"] for al in lines)
        for name, keys in (("newsalert tail", tail_keys), ("MultiClient", multi.keys)):
            assert_each_key_once(self, name, keys, truth)
        print("%d articles at %d/s; daemon B killed after %d and restarted after %d; "
              "%d keys (%d only in A's journal); tail took %s; %s"
              % (self.total, self.rate, kill_at, restart_at, len(truth), len(missed),
                 dict(from_daemon), tail_err.strip().splitlines()[-1:]))
        self.assertIn(self.a.publish, from_daemon)


if __name__ == "__main__":
    unittest.main()


class TestSeveralUsage(unittest.TestCase):
    """tail's options for several daemons: bad values exit 64, named."""

    def tail(self, *args):
        return subprocess.run([NEWSALERT, "tail"] + list(args), capture_output=True,
                              text=True, timeout=WAIT)

    def test_bad_options_are_named(self):
        two = ["--connect", "ipc:///tmp/na-x-a", "--connect", "ipc:///tmp/na-x-b"]
        cases = [
            (two + ["--dedup-window", "0"], "--dedup-window"),
            (two + ["--dedup-window", "many"], "--dedup-window"),
            (two + ["--dedup-window", "-5"], "--dedup-window"),
            (two + ["--catchup", "ipc:///tmp/na-x-c"], "one per daemon"),
            (["--connect", "ipc:///tmp/na-x-a", "--catchup", "ipc:///tmp/a",
              "--catchup", "ipc:///tmp/b"], "one per daemon"),
            (sum((["--connect", "ipc:///tmp/na-x-%d" % i] for i in range(17)), []),
             "at most 16 daemons"),
            (two + ["--since", "0"], "--since needs a catch-up endpoint"),
        ]
        for args, needle in cases:
            r = self.tail(*args)
            self.assertEqual(r.returncode, 64, (args, r.stderr))
            self.assertIn(needle, r.stderr, args)
            self.assertEqual(r.stdout, "")

    def test_a_silent_daemon_does_not_hold_up_the_other(self):
        d = Daemon()
        self.addCleanup(d.cleanup)
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        feed = ctx.socket(zmq.XPUB)
        self.addCleanup(feed.close, 0)
        feed.bind(d.feed)
        d.start()
        d.wait_log("ready:")
        silent = "ipc://%s/nobody" % tempfile.mkdtemp(prefix="na-silent-")
        tail = subprocess.Popen(
            [NEWSALERT, "tail", "--json", "--count", "1", "--since", "0",
             "--connect", d.publish, "--catchup", d.catchup,
             "--connect", silent, "--catchup", silent + "-catchup"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: tail.poll() is None and tail.kill())
        from harness import seed_article
        feed.send_multipart([b"news", seed_article("pair-seed")])
        out, err = tail.communicate(timeout=LONG)
        self.assertEqual(tail.returncode, 0, err)
        a = load_json(out.splitlines()[0])
        self.assertEqual(a["article_id"], "pair-seed")
        self.assertEqual(a["daemon"], d.publish)
        self.assertEqual(a["key"], "test/pair-seed/0")
