"""Golden-feed tests: the real daemon on loopback, a packed feed replayed into
it at full speed with `newsalert replay --max-rate`, every alert collected
with `newsalert tail --json`, and the result compared with the expected
alerts in tests/feeds/<name>.jsonl.

Expected alerts are normalised so that neither time nor the warm-up matters:
seq is counted from the feed's first alert, and receive times and the epoch
are left out. Set NA_UPDATE_GOLDEN=1 to rewrite the expected files from the
daemon's output (then review the diff before committing it)."""

import difflib
import json
import os
import re
import signal
import subprocess
import unittest

import zmq

from harness import BIN, SRC, WAIT, Daemon, Feed, load_json, start_tail, wait_quiet

FEEDS = os.environ["NA_FEEDS"]
GOLDEN = os.path.join(SRC, "tests", "feeds")
NEWSALERT = os.path.join(BIN, "newsalert")


def normalise(alert, base_seq):
    """The parts of an alert that depend only on the feed and the rules."""
    return {
        "seq": alert["seq"] - base_seq + 1,
        "id": alert["article_id"],
        "source": alert["source"],
        "revision": alert["revision"],
        "feed_seq": alert["feed_seq"],
        "update_of": alert["update_of"] - base_seq + 1 if alert["update_of"] else 0,
        "priority": alert["priority"],
        "tags": [{
            "tag": t["tag"],
            "score": round(t["score"], 3),
            "confidence": round(t["confidence"], 3),
            "priority": t["priority"],
            "evidence": [[e["field"], e["start"], e["end"], e["term"]] for e in t["evidence"]],
        } for t in alert["tags"]],
        "actors": [a["code"] for a in alert.get("actors", [])],
    }


def first_difference(want, got):
    """Names the first differing alert and its differing fields."""
    for i, (w, g) in enumerate(zip(want, got)):
        if w != g:
            w, g = json.loads(w), json.loads(g)
            keys = sorted(k for k in set(w) | set(g) if w.get(k) != g.get(k))
            return "first difference: alert %d (%s), fields %s" % (i + 1, w.get("id"), ", ".join(keys))
    return "first difference: alert %d is %s" % (
        min(len(want), len(got)) + 1, "missing" if len(want) > len(got) else "unexpected")


class GoldenFeed(unittest.TestCase):
    # One tagging thread: every article is tagged as it comes.
    extra_config = "tagger:\n  threads: 1\n"

    def setUp(self):
        self.ctx = zmq.Context()
        self.daemon = Daemon(extra_config=self.extra_config)
        self.tail = None

    def tearDown(self):
        if self.tail and self.tail.poll() is None:
            self.tail.kill()
            self.tail.wait()
        self.daemon.cleanup()
        self.ctx.destroy(0)

    def collect(self, feed_name):
        """Replays FEEDS/<feed_name>.feed; returns (alerts as dicts, daemon log)."""
        d = self.daemon
        replay_ep = "ipc://%s/replay" % d.dir
        probe = Feed(self.ctx, d.feed)
        d.start("--feed", replay_ep)
        probe.wait_subscriber()

        out_path = os.path.join(d.dir, "alerts.jsonl")
        self.tail = start_tail(d, probe, out_path, "--json")

        replay = subprocess.run(
            [NEWSALERT, "replay", os.path.join(FEEDS, feed_name + ".feed"), "--bind", replay_ep,
             "--max-rate", "--wait-subscribers", "1", "--timeout", str(int(WAIT))],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(replay.returncode, 0, replay.stderr)
        self.assertEqual(replay.stderr, "", "replay must be quiet when stderr is not a terminal")

        # A graceful stop publishes everything received before it; tail has
        # the rest once its output stops growing.
        self.assertEqual(d.stop(), 0, d.text())
        wait_quiet(out_path)
        self.tail.send_signal(signal.SIGINT)
        self.assertEqual(self.tail.wait(WAIT), 0)
        probe.sock.close(0)

        alerts = [load_json(line) for line in self.read(out_path).splitlines()]
        return [a for a in alerts if not a["article_id"].startswith("probe-")], d.text()

    @staticmethod
    def read(path):
        with open(path) as f:
            return f.read()

    def check_golden(self, feed_name):
        alerts, log = self.collect(feed_name)
        base = alerts[0]["seq"] if alerts else 0
        got = [json.dumps(normalise(a, base), ensure_ascii=False, sort_keys=True) for a in alerts]
        path = os.path.join(GOLDEN, feed_name + ".jsonl")
        if os.environ.get("NA_UPDATE_GOLDEN"):
            with open(path, "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in got))
        with open(path, encoding="utf-8") as f:
            want = f.read().splitlines()
        if got != want:
            diff = list(difflib.unified_diff(want, got, "expected " + path, "daemon", lineterm="", n=1))
            self.fail("alerts differ from %s (%d expected, %d received):\n%s\n%s" % (
                path, len(want), len(got), first_difference(want, got), "\n".join(diff[:80])))
        return alerts, log

    @staticmethod
    def rejected(log):
        """The reject counts by reason, from the daemon's final status lines."""
        return {k: int(v) for k, v in re.findall(r"stopped: rejected ([a-z_]+): (\d+)", log)}

    def test_seed_and_negatives(self):
        alerts, _ = self.check_golden("seed")
        self.assertEqual([a["article_id"] for a in alerts], ["seed-0001"])
        self.assertEqual(sorted(t["tag"] for t in alerts[0]["tags"]), ["aid", "alliance", "summit"])

    def test_mixed_thousand(self):
        alerts, log = self.check_golden("mixed")
        ids = [a["article_id"] for a in alerts]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual([a["seq"] - alerts[0]["seq"] for a in alerts], list(range(len(alerts))))
        self.assertRegex(log, r"stopped: \d+ received")

    def test_malformed_interleaved(self):
        alerts, log = self.check_golden("malformed")
        with open(os.path.join(SRC, "tests", "corpus", "malformed.jsonl")) as f:
            rows = [json.loads(line) for line in f]
        valid = [r["id"] for r in rows if not any(k.startswith("_") for k in r)
                 and r["id"].startswith("lab-")]
        # The malformed lines cost the valid ones nothing: the alerts are
        # those of valid articles, in feed order, and as many as the golden
        # file says (what the tagger makes of them is the golden's business;
        # they are all positives, so most of them alert).
        ids = [a["article_id"] for a in alerts]
        self.assertEqual(ids, [v for v in valid if v in set(ids)])
        self.assertGreaterEqual(len(ids), 0.8 * len(valid))
        self.assertEqual(sum(self.rejected(log).values()), len(rows) - len(valid))

    def test_duplicate_ids_and_revisions(self):
        alerts, log = self.check_golden("revisions")
        got = [(a["article_id"], a["source"], a["revision"]) for a in alerts]
        # Repeats of a (source, id, revision) and stale revisions give nothing;
        # the same id from another source is another article.
        self.assertEqual(got, [("rev-1", "wire", 0), ("rev-1", "wire", 1),
                               ("rev-1", "other-wire", 0), ("rev-2", "wire", 1),
                               ("rev-1", "wire", 2)])
        seq = {k: a["seq"] for k, a in zip(got, alerts)}
        self.assertEqual([a["update_of"] for a in alerts],
                         [0, seq[("rev-1", "wire", 0)], 0, 0, seq[("rev-1", "wire", 1)]])


class GoldenFeedParallel(GoldenFeed):
    """The same feeds and the same expected alerts with four tagging threads:
    a feed replayed at full speed queues up, so the daemon tags it in rounds,
    and the alerts must come out exactly as they do from one thread."""
    extra_config = "tagger:\n  threads: 4\n"

    def test_mixed_thousand(self):
        super().test_mixed_thousand()
        self.assertRegex(self.daemon.text(), r"stopped: tagged in parallel: [1-9]\d* rounds "
                                             r"on 4 threads")


if __name__ == "__main__":
    unittest.main()
