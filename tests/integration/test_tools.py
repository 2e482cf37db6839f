"""The newsalert tool, end to end: pack/unpack, record, replay, tail and tag,
run as real processes on real sockets and real files, including truncated
and damaged recorded feeds and usage errors."""

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import zmq

from harness import (BIN, NEGATIVES, POSITIVE, SRC, WAIT, Daemon, Feed, alert_pb2, article,
                     article_pb2, load_json, seed_article, start_tail, wait_quiet)

NEWSALERT = os.path.join(BIN, "newsalert")
FEEDS = os.environ["NA_FEEDS"]
CORPUS = os.path.join(SRC, "tests", "corpus")
RULES = ["--rules", os.path.join(SRC, "config", "rules")]
HEADER = 16


def run(*args, **kw):
    return subprocess.run([NEWSALERT] + list(args), capture_output=True, text=True,
                          timeout=kw.pop("timeout", 120), **kw)


def unpack(path):
    p = run("unpack", path)
    return p, [json.loads(line) for line in p.stdout.splitlines()]


def record_ends(path):
    """Byte offsets where each record of a recorded feed ends."""
    with open(path, "rb") as f:
        data = f.read()
    ends, at = [], HEADER
    while at < len(data):
        at += 4 + int.from_bytes(data[at:at + 4], "little")
        ends.append(at)
    assert at == len(data)
    return data, ends


class ToolTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="na-tools-")
        self.ctx = zmq.Context()

    def tearDown(self):
        self.ctx.destroy(0)
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def endpoint(self, name):
        return "ipc://" + self.path(name)


class TestPackUnpack(ToolTest):
    def test_round_trip_keeps_every_field_and_names_malformed_messages(self):
        src = os.path.join(CORPUS, "malformed.jsonl")
        out = self.path("m.feed")
        p = run("pack", src, "-o", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        p, rows = unpack(out)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(src) as f:
            want = [json.loads(line) for line in f]
        self.assertEqual(len(rows), len(want))
        for got, w in zip(rows, want):
            if not w.get("id", "").startswith("lab-"):
                # _raw, _frames, and articles the daemon would reject.
                self.assertIn("_reject", got)
                continue
            for k in ("id", "source", "url", "headline", "body", "published_at_ms", "language"):
                if w.get(k):
                    # int64 as a string, as in protobuf's JSON mapping.
                    want_v = str(w[k]) if k == "published_at_ms" else w[k]
                    self.assertEqual(got.get(k), want_v, k)
            self.assertEqual(got["_topic"], "news")

    def test_bad_json_line_names_file_and_line(self):
        src = self.path("bad.jsonl")
        with open(src, "w") as f:
            f.write('{"id": "a", "headline": "h", "body": "b"}\n{"id": "b", "headline": \n')
        p = run("pack", src, "-o", self.path("bad.feed"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("bad.jsonl:2:", p.stderr)

    def test_wrong_field_type_is_a_clear_error(self):
        src = self.path("type.jsonl")
        with open(src, "w") as f:
            f.write('{"id": "a", "headline": "h", "body": "b", "revision": "two"}\n')
        p = run("pack", src, "-o", self.path("t.feed"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("revision", p.stderr)


class TestRecordedFeedFiles(ToolTest):
    def test_truncation_at_any_offset_keeps_the_whole_records(self):
        data, ends = record_ends(os.path.join(FEEDS, "revisions.feed"))
        cuts = sorted(set(list(range(0, HEADER + 2)) + [e + d for e in ends for d in (-1, 0, 1)]
                          + list(range(HEADER, len(data), 97))))
        for cut in (c for c in cuts if c <= len(data)):
            path = self.path("cut.feed")
            with open(path, "wb") as f:
                f.write(data[:cut])
            p, rows = unpack(path)
            if cut < HEADER:
                self.assertEqual(p.returncode, 1, "cut %d" % cut)
                self.assertIn("not a recorded feed" if cut < 8 else "truncated header", p.stderr)
                continue
            whole = sum(1 for e in ends if e <= cut)
            self.assertEqual(p.returncode, 0, "cut %d: %s" % (cut, p.stderr))
            self.assertEqual(len(rows), whole, "cut %d" % cut)
            if cut in ends or cut == HEADER:
                self.assertEqual(p.stderr, "", "cut %d" % cut)
            else:
                self.assertIn("warning", p.stderr)
                self.assertIn("truncated record at offset %d" % ([HEADER] + ends)[whole], p.stderr)

    def test_damage_wrong_magic_and_version_are_errors(self):
        data, ends = record_ends(os.path.join(FEEDS, "revisions.feed"))
        cases = {
            "magic": b"NOTAFEED" + data[8:],
            "version": data[:8] + (9).to_bytes(2, "little") + data[10:],
            "length": data[:ends[1]] + (0x7fffffff).to_bytes(4, "little") + data[ends[1] + 4:],
        }
        for name, blob in cases.items():
            path = self.path(name + ".feed")
            with open(path, "wb") as f:
                f.write(blob)
            for cmd in (["unpack", path], ["tag", path, "-q"] + RULES):
                p = run(*cmd)
                self.assertEqual(p.returncode, 1, (name, cmd, p.stderr))
            p, rows = unpack(path)
            self.assertIn({"magic": "bad magic", "version": "version 9 is not supported",
                           "length": "damaged record at offset %d" % ends[1]}[name], p.stderr)
            if name == "length":
                self.assertEqual(len(rows), 2)

    def test_a_missing_file_is_a_runtime_error(self):
        for cmd in ("unpack", "tag"):
            p = run(cmd, self.path("nope.feed"), *(RULES if cmd == "tag" else []))
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("nope.feed", p.stderr)


class TestRecord(ToolTest):
    def publisher(self):
        pub = self.ctx.socket(zmq.XPUB)
        pub.bind(self.endpoint("feed"))
        return pub

    def wait_subscription(self, pub):
        self.assertTrue(pub.poll(int(WAIT * 1000)), "record never subscribed")
        return pub.recv()

    def test_records_topics_payloads_and_times_in_order(self):
        pub = self.publisher()
        out = self.path("rec.feed")
        rec = subprocess.Popen([NEWSALERT, "record", "--feed", self.endpoint("feed"), "-o", out,
                                "--count", "30"], stderr=subprocess.PIPE, text=True)
        self.wait_subscription(pub)
        sent = []
        for i in range(30):
            topic = b"news" if i % 2 else b"wire"
            payload = article("rec-%d" % i, "Headline %d" % i, "Body %d" % i)
            pub.send_multipart([topic, payload])
            sent.append((topic.decode(), "rec-%d" % i))
        self.assertEqual(rec.wait(WAIT), 0, rec.stderr.read())
        p, rows = unpack(out)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([(r["_topic"], r["id"]) for r in rows], sent)
        times = [r["_time_ns"] for r in rows]
        self.assertEqual(times, sorted(times))

    def test_topic_filter(self):
        pub = self.publisher()
        out = self.path("news.feed")
        rec = subprocess.Popen([NEWSALERT, "record", "--feed", self.endpoint("feed"), "-o", out,
                                "--topic", "news", "--count", "5"])
        self.assertEqual(self.wait_subscription(pub), b"\x01news")
        for i in range(10):
            pub.send_multipart([b"news" if i % 2 else b"other", article("t-%d" % i, "h", "b")])
        self.assertEqual(rec.wait(WAIT), 0)
        _, rows = unpack(out)
        self.assertEqual([r["id"] for r in rows], ["t-1", "t-3", "t-5", "t-7", "t-9"])

    def test_sigint_leaves_a_valid_file(self):
        pub = self.publisher()
        out = self.path("int.feed")
        rec = subprocess.Popen([NEWSALERT, "record", "--feed", self.endpoint("feed"), "-o", out],
                               stderr=subprocess.PIPE, text=True)
        self.wait_subscription(pub)
        for i in range(20):
            pub.send_multipart([b"news", article("s-%d" % i, "h", "b")])
        time.sleep(0.5)
        rec.send_signal(signal.SIGINT)
        self.assertEqual(rec.wait(WAIT), 0, rec.stderr.read())
        p, rows = unpack(out)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertEqual([r["id"] for r in rows], ["s-%d" % i for i in range(20)])

    def test_duration_stops_it(self):
        self.publisher()
        out = self.path("dur.feed")
        p = subprocess.run([NEWSALERT, "record", "--feed", self.endpoint("feed"), "-o", out,
                            "--duration", "0.3"], timeout=WAIT)
        self.assertEqual(p.returncode, 0)
        p, rows = unpack(out)
        self.assertEqual((p.returncode, rows), (0, []))

    def test_messages_with_too_many_frames_are_clipped_and_counted(self):
        pub = self.publisher()
        out = self.path("frames.feed")
        rec = subprocess.Popen([NEWSALERT, "record", "--feed", self.endpoint("feed"), "-o", out,
                                "--count", "2"], stderr=subprocess.PIPE, text=True)
        self.wait_subscription(pub)
        pub.send_multipart([b"f%d" % i for i in range(70)])
        pub.send_multipart([b"news", article("after", "h", "b")])
        self.assertEqual(rec.wait(WAIT), 0)
        self.assertIn("1 messages had more than 64 frames", rec.stderr.read())
        _, rows = unpack(out)
        self.assertEqual(len(rows[0]["_frames"]), 64)
        self.assertEqual(rows[0]["_frames"][63], "f63")
        self.assertEqual(rows[1]["id"], "after")


class TestReplay(ToolTest):
    def subscribe(self):
        sub = self.ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(self.endpoint("replay"))
        return sub

    def drain(self, sub, n):
        got = []
        for _ in range(n):
            self.assertTrue(sub.poll(int(WAIT * 1000)), "only %d of %d arrived" % (len(got), n))
            got.append(sub.recv_multipart())
        self.assertFalse(sub.poll(200), "more messages than the feed holds")
        return got

    def test_replays_every_message_in_order_with_its_frames(self):
        feed = os.path.join(FEEDS, "malformed.feed")
        _, rows = unpack(feed)
        sub = self.subscribe()
        p = run("replay", feed, "--bind", self.endpoint("replay"), "--max-rate",
                "--wait-subscribers", "1", "--loop", "2")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        got = self.drain(sub, 2 * len(rows))
        for i, frames in enumerate(got):
            row = rows[i % len(rows)]
            if "_frames" in row:
                self.assertEqual([f.decode("utf-8", "replace") for f in frames], row["_frames"])
            else:
                self.assertEqual(frames[0].decode(), row["_topic"])
                a = article_pb2.Article()
                a.ParseFromString(frames[1])
                self.assertEqual(a.id, row["id"])

    def test_truncated_feed_sends_the_whole_records_and_warns(self):
        data, ends = record_ends(os.path.join(FEEDS, "revisions.feed"))
        path = self.path("cut.feed")
        with open(path, "wb") as f:
            f.write(data[:ends[4] + 10])
        sub = self.subscribe()
        p = run("replay", path, "--bind", self.endpoint("replay"), "--max-rate",
                "--wait-subscribers", "1")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("truncated record", p.stderr)
        self.assertEqual(len(self.drain(sub, 5)), 5)

    def test_rate_limits_the_pace(self):
        sub = self.subscribe()
        started = time.monotonic()
        p = run("replay", os.path.join(FEEDS, "revisions.feed"), "--bind",
                self.endpoint("replay"), "--rate", "40", "--wait-subscribers", "1")
        self.assertEqual(p.returncode, 0, p.stderr)
        # Ten messages at 40/s cannot take less than 9/40 s (a lower bound
        # only: a slow machine may take longer).
        self.assertGreaterEqual(time.monotonic() - started, 9 / 40)
        self.assertEqual(len(self.drain(sub, 10)), 10)

    def test_progress_on_a_terminal(self):
        try:
            master, slave = pty.openpty()
        except OSError as e:  # e.g. a chroot without /dev/pts
            self.skipTest("no pseudo-terminal here: %s" % e)
        sub = self.subscribe()
        p = subprocess.Popen([NEWSALERT, "replay", os.path.join(FEEDS, "mixed.feed"), "--bind",
                              self.endpoint("replay"), "--rate", "2000",
                              "--wait-subscribers", "1"], stderr=slave)
        os.close(slave)
        out = b""
        while True:
            r, _, _ = select.select([master], [], [], WAIT)
            if not r:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        self.assertEqual(p.wait(WAIT), 0)
        os.close(master)
        text = out.decode(errors="replace")
        self.assertIn("100.0%", text)
        self.assertRegex(text, r"\r\d+ messages +\d+/s +\d+\.\d% .*ETA")
        self.assertEqual(len(self.drain(sub, 1000)), 1000)

    def test_no_subscriber_times_out(self):
        p = run("replay", os.path.join(FEEDS, "seed.feed"), "--bind", self.endpoint("replay"),
                "--wait-subscribers", "1", "--timeout", "0.5")
        self.assertEqual(p.returncode, 1)
        self.assertIn("subscri", p.stderr)


class TestTail(unittest.TestCase):
    """tail against the real daemon."""

    def setUp(self):
        self.ctx = zmq.Context()
        self.daemon = Daemon()
        self.feed = Feed(self.ctx, self.daemon.feed)
        self.daemon.start()
        self.feed.wait_subscriber()
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.feed.sock.close(0)
        self.daemon.cleanup()
        self.ctx.destroy(0)

    def tail(self, name, *args):
        path = os.path.join(self.daemon.dir, name)
        t = start_tail(self.daemon, self.feed, path, *args)
        self.procs.append(t)
        return t, path

    def finish(self, t, path):
        wait_quiet(path)
        t.send_signal(signal.SIGINT)
        self.assertEqual(t.wait(WAIT), 0)
        with open(path) as f:
            return [line for line in f.read().splitlines() if "probe-" not in line]

    def test_json_prints_each_article_once_with_all_its_tags(self):
        t, path = self.tail("all.jsonl", "--json")
        self.feed.send(seed_article("seed-1"))
        for i, (h, b) in enumerate(NEGATIVES):
            self.feed.send(article("neg-%d" % i, h, b))
        self.feed.send(article("after", *POSITIVE))
        lines = self.finish(t, path)
        alerts = [json.loads(line) for line in lines]
        self.assertEqual([a["article_id"] for a in alerts], ["seed-1", "after"])
        self.assertEqual(sorted(x["tag"] for x in alerts[0]["tags"]), ["aid", "alliance", "summit"])
        self.assertTrue(alerts[0]["tags"][0]["evidence"][0]["sentence"])

    def test_readable_lines_show_seq_tags_headline_and_evidence(self):
        t, path = self.tail("text.txt")
        self.feed.send(seed_article("seed-1"))
        self.feed.send(article("after", *POSITIVE))
        lines = self.finish(t, path)
        # The alert's own line (an evidence line may quote the same sentence).
        at = [i for i, line in enumerate(lines)
              if line.startswith("#") and "The US and its NATO allies" in line]
        self.assertEqual(len(at), 1, lines)
        first = lines[at[0]]
        self.assertRegex(first, r"^#\d+ +\w+\(\d\.\d\d\) \w+\(\d\.\d\d\) \w+\(\d\.\d\d\)  The US")
        for tag in ("aid", "alliance", "summit"):
            self.assertRegex(first, tag + r"\(\d\.\d\d\)")
        self.assertRegex(lines[at[0] + 1], r'^ +(aid|alliance|summit): ".+"$')
        self.assertRegex(lines[at[0] + 2], r"^ +actors: .*NATO")

    def test_tag_filter_and_count(self):
        path = os.path.join(self.daemon.dir, "aid.jsonl")
        # A second tail on every tag tells when the subscription is live.
        t_all, all_path = self.tail("all.jsonl", "--json")
        with open(path, "w") as out:
            t = subprocess.Popen([NEWSALERT, "tail", "--connect", self.daemon.publish, "--tag",
                                  "alliance", "--json", "--count", "2"], stdout=out)
        self.procs.append(t)
        # Warm up the filtered tail with alliance-only articles.
        deadline = time.monotonic() + WAIT
        n = 0
        while os.path.getsize(path) == 0:
            self.assertLess(time.monotonic(), deadline)
            n += 1
            self.feed.send(article("warm-%d" % n, "Finland joins NATO",
                                   "Finland became the alliance's 31st member on Tuesday, "
                                   "completing its accession to NATO."))
            time.sleep(0.1)
        self.feed.send(article("aid-only", "EU approves 50 billion euro aid package for Ukraine",
                               "The European Union approved a 50 billion euro financial aid "
                               "package for Ukraine."))
        self.feed.send(seed_article("seed-1"))
        self.assertEqual(t.wait(WAIT), 0)
        with open(path) as f:
            alerts = [json.loads(line) for line in f]
        self.assertEqual(len(alerts), 2)
        self.assertTrue(alerts[0]["article_id"].startswith("warm-"))
        self.assertEqual(alerts[1]["article_id"], "seed-1")
        self.assertEqual(alerts[1]["topic"], "alert.alliance")
        # The aid-only article did alert, on its own topic.
        self.assertIn('"aid-only"', "\n".join(self.finish(t_all, all_path)))

    def test_count_not_reached_before_timeout_fails(self):
        p = subprocess.run([NEWSALERT, "tail", "--connect", self.daemon.publish, "--count", "3",
                            "--timeout", "0.5"], capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(p.returncode, 1)
        self.assertIn("0 of 3 alerts arrived", p.stderr)


class TestTag(ToolTest):
    def test_seed_feed_gives_one_alert_with_three_tags(self):
        p = run("tag", os.path.join(FEEDS, "seed.feed"), *RULES)
        self.assertEqual(p.returncode, 0, p.stderr)
        alerts = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual([a["article_id"] for a in alerts], ["seed-0001"])
        self.assertEqual(sorted(t["tag"] for t in alerts[0]["tags"]), ["aid", "alliance", "summit"])
        self.assertIn("10 articles, 1 alerts, 0 rejected", p.stderr)

    def test_explain_shows_weights_vetoes_scores_and_verdicts(self):
        src = self.path("x.jsonl")
        with open(src, "w") as f:
            f.write(json.dumps({"id": "hear", "headline": "Hearing aid makers report strong sales",
                                "body": "Demand for hearing aids rose again this quarter."}) + "\n")
            with open(os.path.join(SRC, "tests", "corpus", "seed-article.txt")) as s:
                head, body = s.read().split("\n", 1)
            f.write(json.dumps({"id": "seed", "headline": head, "body": body}) + "\n")
        p = run("tag", src, "--explain", *RULES)
        self.assertEqual(p.returncode, 0, p.stderr)
        hear, seed = p.stdout.split("article seed:")
        self.assertIn("vetoed", hear)
        self.assertRegex(hear, r"aid: score 0\.00, threshold 3\.00 -> does not fire")
        for tag in ("aid", "alliance", "summit"):
            self.assertRegex(seed, tag + r": score \d+\.\d\d, threshold \d\.\d\d -> FIRES")
        self.assertRegex(seed, r'counted +\w+ +"[^"]+" +weight')

    def test_rejects_are_counted_not_fatal(self):
        p = run("tag", os.path.join(FEEDS, "malformed.feed"), "-q", *RULES)
        self.assertEqual(p.returncode, 0, p.stderr)
        # The alerts are the golden file's (the daemon is held to the same
        # file in test_feeds): the 9 malformed lines change nothing.
        with open(os.path.join(SRC, "tests", "feeds", "malformed.jsonl")) as f:
            golden = sum(1 for line in f if line.strip())
        self.assertIn("29 articles, %d alerts, 9 rejected" % golden, p.stderr)


ALL_COMMANDS = ("tail", "replay", "record", "pack", "unpack", "tag", "eval", "train",
                "keygen", "journal", "quarantine", "test", "lint")


class TestUsage(unittest.TestCase):
    COMMANDS = ("pack", "unpack", "replay", "record", "tail", "tag", "eval", "train", "test",
                "lint")

    def test_help_and_bad_options(self):
        for cmd in self.COMMANDS:
            p = run(cmd, "--help")
            self.assertEqual(p.returncode, 0, cmd)
            self.assertIn("Usage: newsalert " + cmd, p.stdout)
            p = run(cmd, "--no-such-option")
            self.assertEqual(p.returncode, 64, cmd)
            self.assertIn("Usage:", p.stderr)
            self.assertIn("no-such-option", p.stderr, cmd)
        self.assertEqual(run().returncode, 64)
        self.assertEqual(run("frobnicate").returncode, 64)
        self.assertEqual(run("--help").returncode, 0)

    def test_version_for_the_tool_and_every_subcommand(self):
        p = run("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^newsalert \d+\.\d+\.\d+\n$")
        for cmd in ALL_COMMANDS:
            p = run(cmd, "--version")
            self.assertEqual(p.returncode, 0, (cmd, p.stderr))
            self.assertRegex(p.stdout, r"^newsalert %s \d+\.\d+\.\d+\n$" % cmd)

    def test_bad_values_are_usage_errors(self):
        cases = [
            ["tail", "--count", "zero"], ["tail", "--timeout", "-1"],
            ["record", "--feed", "ipc:///tmp/x", "-o", "/tmp/x", "--count", "0"],
            ["replay", "x.feed", "--bind", "ipc:///tmp/x", "--speed", "0"],
            ["replay", "x.feed"], ["record", "-o", "x.feed"], ["pack", "in.jsonl"],
            ["tag"], ["tag", "a.feed", "b.feed"], ["test", "a.feed"], ["lint"],
            ["eval", "--min-f1", "high", "x.jsonl"], ["train", "x.jsonl"],
            ["train", "--min-df", "0", "-o", "m", "x.jsonl"],
            ["train", "--hard-weight", "0", "-o", "m", "x.jsonl"],
            ["train", "--hard-weight", "101", "-o", "m", "x.jsonl"],
            ["train", "--hard-weight", "2x", "-o", "m", "x.jsonl"],
        ]
        for c in cases:
            p = run(*c)
            self.assertEqual(p.returncode, 64, (c, p.stderr))
            self.assertTrue(p.stderr.strip(), c)

    def test_a_typo_in_an_enumerated_value_names_the_allowed_ones(self):
        corpus = os.path.join(CORPUS, "eval-fixture.jsonl")
        p = run("eval", corpus, "--split", "tset", *RULES)
        self.assertEqual(p.returncode, 64, p.stderr)
        self.assertIn("'tset'", p.stderr)
        for allowed in ("train", "dev", "test"):
            self.assertIn(allowed, p.stderr)
        self.assertEqual(p.stdout, "")

    def test_short_options_mean_the_same_in_every_subcommand(self):
        """Every "-X, --long" in the subcommands' help: one letter, one long option."""
        seen = {}
        clashes = []
        top = run("--help").stdout.split("Commands:", 1)[1]
        commands = re.findall(r"^  ([a-z][a-z-]*)\s{2,}\S", top, re.M)
        self.assertIn("test", commands)
        self.assertIn("lint", commands)
        for cmd in commands:
            p = run(cmd, "--help")
            self.assertEqual(p.returncode, 0, cmd)
            for letter, long in re.findall(r"^\s+-(\w), --([\w-]+)", p.stdout, re.M):
                if letter in seen and seen[letter][1] != long:
                    clashes.append("-%s: %s --%s, %s --%s" % (letter, seen[letter][0],
                                                             seen[letter][1], cmd, long))
                seen.setdefault(letter, (cmd, long))
        self.assertEqual(clashes, [])
        # The long options that scripts use are kept.
        for cmd, long in (("tag", "--rules"), ("eval", "--split"), ("eval", "--compare"),
                          ("train", "--min-df"), ("tag", "--config"), ("test", "--update")):
            self.assertIn(long, run(cmd, "--help").stdout, cmd)


def make_config_dir(root, model=True):
    """A configuration as an installation has it: newsalertd.yaml with
    rules.dir, rules.actors and rules.model relative to the file."""
    shutil.copytree(os.path.join(SRC, "config", "rules"), os.path.join(root, "rules"))
    shutil.copy(os.path.join(SRC, "config", "actors.yaml"), root)
    lines = ["rules:", "  dir: rules", "  actors: actors.yaml"]
    if model:
        shutil.copy(os.path.join(SRC, "config", "tagger.model"), root)
        lines.append("  model: tagger.model")
    path = os.path.join(root, "newsalertd.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


class TestRulesFromConfig(ToolTest):
    """tag, eval and train find the rules through the configuration, as the
    daemon does, whatever the current directory holds."""

    def test_config_resolves_rules_and_model_relative_to_the_file(self):
        conf = make_config_dir(self.path("etc"))
        # A decoy config/rules in the current directory must not be used.
        os.makedirs(self.path("cwd/config/rules"))
        with open(self.path("cwd/config/rules/bad.yaml"), "w") as f:
            f.write("tag: [not, a, tag]\n")
        feed = os.path.join(FEEDS, "mixed.feed")
        p = run("tag", feed, "--config", conf, cwd=self.path("cwd"))
        self.assertEqual(p.returncode, 0, p.stderr)
        q = run("tag", feed, *RULES)
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertEqual(p.stdout, q.stdout)
        self.assertTrue(p.stdout)
        # rules.model is honoured: without it the rules alone decide.
        no_model = make_config_dir(self.path("etc2"), model=False)
        r = run("tag", feed, "--config", no_model, cwd=self.path("cwd"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, run("tag", feed, *RULES, "--no-model").stdout)
        self.assertNotEqual(r.stdout, p.stdout)

    def test_eval_and_train_take_the_config(self):
        conf = make_config_dir(self.path("etc"))
        corpus = os.path.join(CORPUS, "eval-fixture.jsonl")
        p = run("eval", corpus, "--config", conf, "-q", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, run("eval", corpus, *RULES, "-q").stdout)
        p = run("train", corpus, "--config", conf, "-o", self.path("m"), "-q",
                cwd=self.dir)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        self.assertNotIn("rules", p.stderr.lower().split("line")[0] if p.returncode else "")

    def test_hard_negatives_are_counted_and_weighted(self):
        corpus = os.path.join(CORPUS, "pool", "gen4-europe-global.jsonl")
        with open(corpus) as f:
            lines = [json.loads(l) for l in f if l.strip()]
        hard = sum(1 for d in lines if d["negative"] == "hard" and not d["labels"])
        self.assertGreater(hard, 0)
        models = []
        for weight in ("1", "4"):
            out = self.path("w%s.model" % weight)
            p = run("train", corpus, *RULES, "-o", out, "-q", "--hard-weight", weight)
            self.assertEqual(p.returncode, 0, p.stderr)
            m = re.search(r"^hard negatives given any tag: (\d+) of (\d+) \(", p.stdout, re.M)
            self.assertIsNotNone(m, p.stdout)
            self.assertEqual(int(m[2]), hard)
            self.assertLessEqual(int(m[1]), hard)
            with open(out, "rb") as f:
                models.append(f.read())
        # The weight enters the fit: another weight, another model.
        self.assertNotEqual(models[0], models[1])

    def test_a_missing_or_bad_config_is_named(self):
        feed = os.path.join(FEEDS, "seed.feed")
        p = run("tag", feed, "--config", self.path("nope.yaml"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("nope.yaml", p.stderr)
        with open(self.path("bad.yaml"), "w") as f:
            f.write("rules:\n  dri: rules\n")
        p = run("tag", feed, "--config", self.path("bad.yaml"))
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"bad\.yaml:2: .*dri")

    def test_throughput_is_measured_on_the_tagging_alone(self):
        p = run("tag", os.path.join(FEEDS, "mixed.feed"), "-q", *RULES)
        self.assertEqual(p.returncode, 0, p.stderr)
        m = re.search(r"([\d.]+) MB of text, tagger (\d+) MB/s, (\d+) articles/s \(CPU time "
                      r"of the tagging alone: ([\d.]+) s for (\d+) articles\)", p.stderr)
        self.assertIsNotNone(m, p.stderr)
        mb, mbs, rate, s, n = float(m[1]), int(m[2]), int(m[3]), float(m[4]), int(m[5])
        self.assertGreater(n, 0)
        self.assertGreater(s, 0)
        # s is printed to the millisecond: the rates lie within what its
        # rounding allows (and their own rounding to a whole number).
        lo, hi = s + 0.0005, max(s - 0.0005, 1e-6)
        self.assertGreaterEqual(rate, n / lo - 1)
        self.assertLessEqual(rate, n / hi + 1)
        self.assertGreaterEqual(mbs, mb / lo * 0.99 - 1)
        self.assertLessEqual(mbs, mb / hi * 1.01 + 1)
        # The CPU time of tagging alone is less than the command's own.
        t = subprocess.run(["/usr/bin/time", "-f", "%U %S", NEWSALERT, "tag",
                            os.path.join(FEEDS, "mixed.feed"), "-q", *RULES],
                           capture_output=True, text=True) if os.path.exists("/usr/bin/time") else None
        if t is not None and t.returncode == 0:
            user, sys_ = map(float, t.stderr.strip().splitlines()[-1].split())
            self.assertLess(s, user + sys_ + 0.01)


def write_rules(root, files, actors=True):
    os.makedirs(os.path.join(root, "rules"))
    for name, text in files.items():
        with open(os.path.join(root, "rules", name), "w") as f:
            f.write(text)
    if actors:
        shutil.copy(os.path.join(SRC, "config", "actors.yaml"), root)
    return os.path.join(root, "rules")


class TestLint(ToolTest):
    def test_each_kind_of_warning_names_file_line_and_reason(self):
        rules = write_rules(self.dir, {"aid.yaml": "\n".join([
            "tag: aid",
            "threshold: 3.0",
            "terms:",
            "  - {phrase: 'military aid', weight: 3}",       # 4: clean
            "  - {regex: '\\baid\\s+\\w+\\b', weight: 1}",  # 5: unbounded
            "  - {regex: '\\bpledged .+ aid\\b', weight: 1}",  # 6: unbounded
            "  - {phrase: 'aid convoy', weight: 0}",         # 7: weight 0
            "  - {phrase: 'hearing aid', weight: 2}",        # 8: vetoed
            "  - {phrase: 'Military aid', weight: 1}",       # 9: shadowed by 4
            "exclude:",
            "  - {regex: '\\bhearing[- ]aids?\\b'}",          # 11
            ""])})
        p = run("lint", rules)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        out = p.stdout
        self.assertRegex(out, r"aid\.yaml:5: aid: .*unbounded repeat")
        self.assertRegex(out, r"aid\.yaml:6: aid: .*unbounded repeat")
        self.assertRegex(out, r"aid\.yaml:7: aid: .*weight 0")
        self.assertRegex(out, r"aid\.yaml:8: aid: .*never fire.*aid\.yaml:11")
        self.assertRegex(out, r"aid\.yaml:9: aid: .*shadowed.*aid\.yaml:4")
        self.assertNotRegex(out, r"aid\.yaml:4:")
        self.assertIn("5 warnings", out)

    def test_clean_rules_exit_0_and_a_single_file_can_be_linted(self):
        # Repeats that a word ends ("cop" and its number, a capitalised name)
        # are no warning.
        rules = write_rules(self.dir, {"aid.yaml": "tag: aid\nthreshold: 3.0\nterms:\n"
                                       "  - {phrase: 'military aid', weight: 3}\n"
                                       "  - {regex: '\\bcop\\d* aid\\b', weight: 1}\n"
                                       "  - {regex: '\\b[A-Z][a-z]+ aid\\b', weight: 1}\n"})
        p = run("lint", rules)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("0 warnings", p.stdout)
        p = run("lint", os.path.join(rules, "aid.yaml"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_a_pattern_that_matches_empty_text_is_refused_with_its_line(self):
        # Vectorscan refuses it when the rules load, so the daemon would not
        # start: an error (65), not a warning.
        rules = write_rules(self.dir, {"aid.yaml": "tag: aid\nthreshold: 3.0\nterms:\n"
                                       "  - {phrase: 'military aid', weight: 3}\n"
                                       "  - {regex: '\\b(aid)?\\b', weight: 1}\n"})
        p = run("lint", rules)
        self.assertEqual(p.returncode, 65, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"aid\.yaml:5: .*empty")
        # And one that can never match, likewise.
        with open(os.path.join(rules, "aid.yaml"), "w") as f:
            f.write("tag: aid\nthreshold: 3.0\nterms:\n"
                    "  - {phrase: 'military aid', weight: 3}\n"
                    "  - {regex: 'aid\\Bxx\\b\\B', weight: 1}\n")
        p = run("lint", rules)
        self.assertEqual(p.returncode, 65, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"aid\.yaml:5: .*never match")

    def test_unparseable_rules_exit_65_with_file_and_line(self):
        rules = write_rules(self.dir, {"aid.yaml": "tag: aid\nthreshold: 3.0\nterms:\n"
                                       "  - {regex: '(unclosed', weight: 3}\n"})
        p = run("lint", rules)
        self.assertEqual(p.returncode, 65, p.stdout + p.stderr)
        self.assertIn("aid.yaml:4", p.stderr)

    def test_shipped_rules_lint_clean(self):
        p = run("lint", os.path.join(SRC, "config", "rules"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("0 warnings", p.stdout)


class TestGoldenTest(ToolTest):
    """newsalert test: the daemon's path offline, against expected alerts."""

    def test_update_then_match_then_a_readable_diff_on_mismatch(self):
        feed = os.path.join(FEEDS, "revisions.feed")
        expected = self.path("revisions.expected.jsonl")
        p = run("test", feed, expected, "--update", *RULES)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(expected) as f:
            alerts = [load_json(line) for line in f]   # 64-bit values as strings
        # Dedup and update_of as the daemon does them (tests/feeds/revisions.jsonl).
        with open(os.path.join(SRC, "tests", "feeds", "revisions.jsonl")) as f:
            golden = [json.loads(line) for line in f]
        self.assertEqual([(a["article_id"], a["source"], a["revision"], a["seq"], a["update_of"])
                          for a in alerts],
                         [(g["id"], g["source"], g["revision"], g["seq"], g["update_of"])
                          for g in golden])
        for a in alerts:
            for k in ("epoch", "received_at_ms", "topic", "topic_seq", "topics"):
                self.assertNotIn(k, a)
        p = run("test", feed, expected, *RULES)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("all %d alerts match" % len(alerts), p.stdout)
        # Output of `newsalert tag` is a valid expectation too.
        tag = run("tag", feed, *RULES)
        with open(self.path("from-tag.jsonl"), "w") as f:
            f.write(tag.stdout)
        p = run("test", feed, self.path("from-tag.jsonl"), *RULES)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # One changed score and one lost alert: both named, exit 1.
        alerts[1]["tags"][0]["score"] = 99.5
        with open(expected, "w") as f:
            for a in alerts[:-1]:
                f.write(json.dumps(a) + "\n")
        p = run("test", feed, expected, *RULES)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"alert 2 \(article rev-1\):\n  tags\[0\]\.score:\n"
                                   r"    - expected 99\.5\n    \+ got +[\d.]+\n")
        self.assertRegex(p.stdout, r"alert 5 \(article rev-1\): unexpected")
        self.assertIn("2 of 5 alerts differ", p.stdout)

    def test_bad_expected_file_is_named(self):
        with open(self.path("bad.jsonl"), "w") as f:
            f.write("{\"seq\": 1}\nnot json\n")
        p = run("test", os.path.join(FEEDS, "seed.feed"), self.path("bad.jsonl"), *RULES)
        self.assertEqual(p.returncode, 1)
        self.assertIn("bad.jsonl:2", p.stderr)


def comparable(alert, base):
    """An alert without what depends on the run: seq and update_of counted
    from the first alert, epoch, receive time and topics left out."""
    a = {k: v for k, v in alert.items()
         if k not in ("epoch", "received_at_ms", "topic", "topic_seq", "topics")}
    a["seq"] = int(a["seq"]) - base + 1
    a["update_of"] = int(a["update_of"]) - base + 1 if int(a.get("update_of", 0)) else 0
    return a


class TestTagIsTheDaemon(unittest.TestCase):
    """The real daemon on a recorded feed, its alerts collected with
    `newsalert tail --json`, against `newsalert tag` and `newsalert test` on
    the same file and the same configuration: field by field."""

    FEEDS = ("revisions", "malformed", "mixed")

    def collect(self, feed_name):
        ctx = zmq.Context()
        d = Daemon(extra_config="tagger:\n  threads: 1\n")
        tail = None
        try:
            replay_ep = "ipc://%s/replay" % d.dir
            probe = Feed(ctx, d.feed)
            d.start("--feed", replay_ep)
            probe.wait_subscriber()
            out_path = os.path.join(d.dir, "alerts.jsonl")
            tail = start_tail(d, probe, out_path, "--json")
            replay = subprocess.run(
                [NEWSALERT, "replay", os.path.join(FEEDS, feed_name + ".feed"), "--bind",
                 replay_ep, "--max-rate", "--wait-subscribers", "1", "--timeout",
                 str(int(WAIT))], capture_output=True, text=True, timeout=120)
            self.assertEqual(replay.returncode, 0, replay.stderr)
            self.assertEqual(d.stop(), 0, d.text())
            wait_quiet(out_path)
            tail.send_signal(signal.SIGINT)
            self.assertEqual(tail.wait(WAIT), 0)
            probe.sock.close(0)
            with open(out_path) as f:
                alerts = [json.loads(line) for line in f if line.strip()]
            alerts = [a for a in alerts if not a["article_id"].startswith("probe-")]
            # The daemon's own configuration, for the offline side.
            config = os.path.join(self.dir, feed_name + ".yaml")
            shutil.copy(d.config, config)
            return alerts, config
        finally:
            if tail and tail.poll() is None:
                tail.kill()
                tail.wait()
            d.cleanup()
            ctx.destroy(0)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="na-equiv-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_tag_and_test_give_what_the_daemon_publishes(self):
        for name in self.FEEDS:
            with self.subTest(feed=name):
                daemon, config = self.collect(name)
                self.assertTrue(daemon, name)
                feed = os.path.join(FEEDS, name + ".feed")
                p = run("tag", feed, "--config", config)
                self.assertEqual(p.returncode, 0, p.stderr)
                offline = [json.loads(line) for line in p.stdout.splitlines()]
                want = [comparable(a, int(daemon[0]["seq"])) for a in daemon]
                got = [comparable(a, int(offline[0]["seq"])) for a in offline]
                self.assertEqual(len(got), len(want), name)
                for i, (w, g) in enumerate(zip(want, got)):
                    self.assertEqual(sorted(w), sorted(g), (name, i))
                    for k in w:
                        self.assertEqual(g[k], w[k], "%s alert %d (%s): %s" % (
                            name, i + 1, w["article_id"], k))
                # The daemon's alerts are the expectation `newsalert test` meets.
                expected = os.path.join(self.dir, name + ".expected.jsonl")
                with open(expected, "w") as f:
                    for a in daemon:
                        f.write(json.dumps(a) + "\n")
                t = run("test", feed, expected, "--config", config)
                self.assertEqual(t.returncode, 0, t.stdout + t.stderr)


if __name__ == "__main__":
    unittest.main()
