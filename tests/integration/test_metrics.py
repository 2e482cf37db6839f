"""newsalertd's HTTP endpoint: /metrics scraped with curl and checked against
the traffic sent and with promtool, /healthz, errors, garbage requests, and
turning the server off."""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

import zmq

from harness import BIN, NEGATIVES, POSITIVE, WAIT, Daemon, DaemonTest, article
from test_daemon import MALFORMED

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """Samples of a text exposition: {(name, frozenset of labels): value}."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def delta(before, after, name, **labels):
    """How much a sample grew between two scrapes (from 0 if it was absent)."""
    return value(after, name, **labels) - before.get((name, frozenset(labels.items())), 0)


def curl(url, *args):
    """(HTTP status, headers, body) of a request made with curl."""
    r = subprocess.run(["curl", "--silent", "--show-error", "--max-time", str(int(WAIT)),
                        "--include", *args, url],
                       capture_output=True, timeout=WAIT + 5)
    assert r.returncode == 0, "curl %s failed: %s" % (url, r.stderr.decode())
    head, _, body = r.stdout.decode().partition("\r\n\r\n")
    status = int(head.split()[1])
    headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
    return status, {k.lower(): v for k, v in headers.items()}, body


def http_port(daemon):
    daemon.wait_log("http: listening on")
    return int(re.search(r"http: listening on 127\.0\.0\.1:(\d+)", daemon.text()).group(1))


def listening_tcp_ports(pid):
    """TCP ports that process pid listens on, from /proc."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:   # 0A: LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


class MetricsTest(DaemonTest):
    # The config file says off and the command line turns it on, on a port
    # the kernel picks (and the log names): no race for a "free" port.
    args = ("--metrics", "127.0.0.1:0")

    def setUp(self):
        super().setUp()
        self.base = "http://127.0.0.1:%d" % http_port(self.daemon)

    def scrape(self):
        status, headers, body = curl(self.base + "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        return body


class TestMetrics(MetricsTest):
    def test_counters_match_the_traffic_and_promtool_accepts_the_format(self):
        before = parse(self.scrape())
        self.assertEqual(value(before, "newsalertd_feed_endpoints_connected"), 1)

        # N good articles from two sources, with gaps in one's feed_seq;
        # every malformed kind once; negatives that fire no tag.
        seqs_a = [1, 2, 3, 7, 8, 10]       # 3 missing after 3, 1 after 8
        seqs_b = [5, 6]
        good = ([article("a-%d" % s, *POSITIVE, source="wire-a", feed_seq=s) for s in seqs_a]
                + [article("b-%d" % s, *POSITIVE, source="wire-b", feed_seq=s) for s in seqs_b]
                + [article("unnumbered", *POSITIVE, source="wire-c")])
        for payload in good:
            self.feed.send(payload)
        for _, frames in MALFORMED:
            self.feed.send_frames(frames)
        for i, (h, b) in enumerate(NEGATIVES):
            self.feed.send(article("neg-%d" % i, h, b))
        self.feed.send(article("last", *POSITIVE))
        for tag in self.tags:
            self.subs[tag].recv_until("last")

        text = self.scrape()
        after = parse(text)

        n_good = len(good) + 1
        n_bad = len(MALFORMED)
        self.assertEqual(delta(before, after, "newsalertd_articles_received_total"),
                         n_good + n_bad + len(NEGATIVES))
        self.assertEqual(delta(before, after, "newsalertd_articles_decoded_total"),
                         n_good + len(NEGATIVES))
        for reason, _ in MALFORMED:
            self.assertEqual(
                delta(before, after, "newsalertd_articles_rejected_total", reason=reason), 1,
                reason)
        self.assertEqual(delta(before, after, "newsalertd_articles_untagged_total"),
                         len(NEGATIVES))
        self.assertEqual(delta(before, after, "newsalertd_articles_alerted_total"), n_good)
        for tag in self.tags:
            self.assertEqual(
                delta(before, after, "newsalertd_alerts_published_total", tag=tag), n_good, tag)
        self.assertEqual(value(after, "newsalertd_feed_gaps_total", source="wire-a"), 4)
        self.assertEqual(value(after, "newsalertd_feed_gaps_total", source="wire-b"), 0)
        self.assertNotIn(("newsalertd_feed_gaps_total", frozenset({("source", "wire-c")})),
                         after, "articles without feed_seq are not tracked")
        self.assertEqual(value(after, "newsalertd_reloads_total", result="ok"), 0)
        self.assertEqual(value(after, "newsalertd_rules_loaded"), 3)
        self.assertEqual(value(after, "newsalertd_feed_endpoints_configured"), 1)
        self.assertEqual(value(after, "newsalertd_build_info", version=self.version()), 1)

        # The histogram counts every message and its buckets add up.
        h = "newsalertd_article_processing_seconds"
        self.assertEqual(delta(before, after, h + "_count"), n_good + n_bad + len(NEGATIVES))
        buckets = sorted((float(dict(k[1])["le"]), v) for k, v in after.items()
                         if k[0] == h + "_bucket")
        self.assertEqual(buckets[-1], (float("inf"), value(after, h + "_count")))
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))
        self.assertGreater(value(after, h + "_sum"), 0)

        r = subprocess.run(["promtool", "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout + r.stderr, "", "promtool lint findings")

    def test_the_sample_feed_reports_no_gaps(self):
        """feed_seq counts each source's articles on its own: the bundled
        sample feed, numbered so, must show no gap for any source."""
        path = os.path.join(os.environ["NA_SOURCE_DIR"], "tests", "corpus", "sample.jsonl")
        with open(path, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        rows = [r for r in rows if r.get("feed_seq")]
        self.assertGreater(len(rows), 20)
        for r in rows:
            self.feed.send(article(r["id"], r["headline"], r["body"], source=r["source"],
                                   feed_seq=r["feed_seq"]))
        self.sync()
        m = parse(self.scrape())
        gaps = {dict(k[1])["source"]: v for k, v in m.items()
                if k[0] == "newsalertd_feed_gaps_total"}
        self.assertEqual(set(gaps), {r["source"] for r in rows})
        self.assertEqual({s: v for s, v in gaps.items() if v}, {})

    def version(self):
        out = subprocess.run([os.path.join(BIN, "newsalertd"), "--version"],
                             capture_output=True, text=True, check=True).stdout
        return out.split()[1]

    def test_reloads_are_counted_by_result(self):
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("reloaded:")
        with open(self.daemon.config, "a") as f:
            f.write("bogus: 1\n")
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("reload failed")
        m = parse(self.scrape())
        self.assertEqual(value(m, "newsalertd_reloads_total", result="ok"), 1)
        self.assertEqual(value(m, "newsalertd_reloads_total", result="failed"), 1)

    def test_connected_endpoints_follow_the_feed(self):
        self.assertEqual(value(parse(self.scrape()), "newsalertd_feed_endpoints_connected"), 1)
        self.feed.sock.close(0)
        deadline = time.monotonic() + WAIT
        while value(parse(self.scrape()), "newsalertd_feed_endpoints_connected") != 0:
            self.assertLess(time.monotonic(), deadline, "the disconnect was never counted")
            time.sleep(0.05)
        self.daemon.wait_log("feed: disconnected from")
        # With no feed there is nothing to alert on: not ready, and why.
        status, _, body = curl(self.base + "/healthz")
        self.assertEqual(status, 503, body)
        h = json.loads(body)
        self.assertEqual((h["status"], h["ready"], h["feed"]["connected"]),
                         ("no feed connected", False, 0))
        from harness import Feed
        self.feed = Feed(self.ctx, self.daemon.feed)
        self.addCleanup(self.feed.sock.close, 0)  # or the context never terminates
        self.feed.wait_subscriber()
        self.assertEqual(value(parse(self.scrape()), "newsalertd_feed_endpoints_connected"), 1)
        self.assertEqual(curl(self.base + "/healthz")[0], 200)

    def test_subscriber_connections_are_counted(self):
        name = "newsalertd_publish_connections"
        # The set-up's subscribers, one per tag.
        self.assertEqual(value(parse(self.scrape()), name), len(self.tags))
        extra = self.ctx.socket(zmq.SUB)
        extra.connect(self.daemon.publish)
        deadline = time.monotonic() + WAIT
        while value(parse(self.scrape()), name) != len(self.tags) + 1:
            self.assertLess(time.monotonic(), deadline, "the new subscriber was never counted")
            time.sleep(0.05)
        extra.close(0)
        while value(parse(self.scrape()), name) != len(self.tags):
            self.assertLess(time.monotonic(), deadline, "the closed one was never uncounted")
            time.sleep(0.05)


class TestReadyFile(unittest.TestCase):
    """--ready-file appears once the daemon serves and names the endpoints
    that '*' and port 0 resolved to: a test can start from it alone, with
    no log to read, and it is gone after the stop."""

    def test_the_ready_file_says_where_to_connect_and_goes_at_exit(self):
        from harness import Feed, Subscriber
        d = Daemon()
        self.addCleanup(d.cleanup)
        ready = os.path.join(d.dir, "ready.json")
        d.start("--publish", "tcp://127.0.0.1:*", "--catchup", "tcp://127.0.0.1:*",
                "--metrics", "127.0.0.1:0", "--ready-file", ready)
        deadline = time.monotonic() + WAIT
        while not os.path.exists(ready):
            self.assertIsNone(d.proc.poll(), d.text())
            self.assertLess(time.monotonic(), deadline, "no ready file")
            time.sleep(0.02)
        with open(ready) as f:
            info = json.load(f)
        self.assertEqual(info["pid"], d.proc.pid)
        self.assertRegex(info["epoch"], r"^[1-9]\d*$")   # 64 bits: a string
        for key in ("publish", "catchup"):
            self.assertRegex(info[key], r"^tcp://127\.0\.0\.1:[1-9]\d*$")
        self.assertRegex(info["metrics"], r"^127\.0\.0\.1:[1-9]\d*$")
        # Not ready until a feed connects; then an alert comes out where the
        # file said.
        url = "http://%s/healthz" % info["metrics"]
        self.assertEqual(curl(url)[0], 503)
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        feed = Feed(ctx, d.feed)
        self.addCleanup(feed.sock.close, 0)
        sub = Subscriber(ctx, info["publish"], "alert.aid")
        self.addCleanup(sub.sock.close, 0)
        feed.wait_subscriber()
        while curl(url)[0] != 200:
            self.assertLess(time.monotonic(), deadline, "never ready")
            time.sleep(0.05)
        while sub.recv(0.2) is None:
            self.assertLess(time.monotonic(), deadline, "no alert where the file said")
            feed.send(article("ready-%d" % int(time.monotonic() * 1000), *POSITIVE))
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(ready), "the ready file outlived the daemon")
        self.assertFalse(os.path.exists(ready + ".tmp"))

    def test_an_unwritable_ready_file_is_a_runtime_error(self):
        d = Daemon()
        self.addCleanup(d.cleanup)
        d.start("--ready-file", "/nonexistent/dir/ready.json")
        self.assertEqual(d.proc.wait(WAIT), 1)
        self.assertIn("--ready-file: cannot write /nonexistent/dir/ready.json", d.text())


class TestReloadRestartKeys(MetricsTest):
    """A reload applies what it can and names, in the log and a counter,
    each key it cannot: those read only when the sockets, files and timers
    are made. What the command line set is not the file's to change."""

    def test_keys_read_at_start_are_named_and_counted(self):
        name = "newsalertd_reload_ignored_keys_total"
        self.assertEqual(value(parse(self.scrape()), name), 0)
        with open(self.daemon.config) as f:
            text = f.read()
        # publish.endpoint and metrics.listen differ from the command line's,
        # which wins, so they are not news; log.level applies now.
        text = text.replace('listen: "off"', 'listen: "127.0.0.1:9"')
        text = text.replace("log:\n", "log:\n  level: debug\n", 1)
        text += ("publish:\n  endpoint: tcp://127.0.0.1:1\n  sndhwm: 77\n"
                 "journal:\n  fsync: never\n")
        with open(self.daemon.config, "w") as f:
            f.write(text)
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("reloaded:")
        log = self.daemon.text()
        for key in ("publish.sndhwm", "journal.fsync"):
            self.assertIn("reload: %s changed in the file but is read only at start" % key, log)
        for key in ("publish.endpoint", "metrics.listen", "feed.endpoints", "log.level"):
            self.assertNotIn("reload: %s changed" % key, log)
        self.assertEqual(value(parse(self.scrape()), name), 2)
        # The running daemon still serves on its own sockets.
        self.feed.send(article("after-reload", *POSITIVE))
        self.subs["aid"].recv_until("after-reload")
        # Each reload says it again while the file still differs.
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("reloaded:", 2)
        self.assertEqual(value(parse(self.scrape()), name), 4)


class TestHealthAndErrors(MetricsTest):
    tags = ("aid",)

    def test_healthz_is_200_with_json(self):
        status, headers, body = curl(self.base + "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        h = json.loads(body)
        self.assertEqual((h["status"], h["ready"]), ("ok", True))
        self.assertEqual(h["rules"]["tags"], 3)
        self.assertTrue(h["rules"]["loaded"])
        self.assertGreater(h["rules"]["patterns"], 0)
        self.assertEqual(h["feed"], {"endpoints": 1, "connected": 1})
        self.assertEqual(h["journal"], {"state": "ok", "held_alerts": 0})
        self.assertEqual(h["model"]["loaded"], os.path.exists(
            os.path.join(os.environ["NA_SOURCE_DIR"], "config", "tagger.model")))
        self.assertEqual(h["publish"]["connections"], len(self.tags))

    def test_unknown_paths_are_404_and_other_methods_405(self):
        for path in ("/", "/metrics/extra", "/health", "/%00"):
            self.assertEqual(curl(self.base + path)[0], 404, path)
        status, headers, _ = curl(self.base + "/metrics", "-X", "POST", "--data", "x=1")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET, HEAD")
        self.assertEqual(curl(self.base + "/healthz", "-X", "DELETE")[0], 405)
        self.assertEqual(curl(self.base + "/metrics?debug=1")[0], 200)

    def test_garbage_and_idle_connections_do_not_stop_the_daemon(self):
        port = int(self.base.rsplit(":", 1)[1])
        idle = socket.create_connection(("127.0.0.1", port))
        idle.sendall(b"GET /metr")         # and then nothing: a stalled client
        for junk in (b"\x00\xff\xfe garbage\r\n\r\n",
                     b"GET /metrics HTTP/1.1\r\n" + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n",
                     b"POST /metrics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nxx",
                     b"BREW /pot HTTP/1.1\r\n\r\n",
                     b"\r\n" * 1000):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.settimeout(WAIT)
                reply = b""
                # The daemon may answer and close before all the junk is
                # written or before our shutdown: a reset or ENOTCONN then
                # is the daemon refusing it, which is what is tested.
                try:
                    s.sendall(junk)
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                try:
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        reply += chunk
                except ConnectionResetError:
                    pass
                if reply:
                    self.assertRegex(reply, rb"^HTTP/1\.[01] [45]\d\d ", junk[:20])
        # With the stalled client still connected, everything else goes on.
        self.assertEqual(curl(self.base + "/healthz")[0], 200)
        self.feed.send(article("after-garbage", *POSITIVE))
        self.subs["aid"].recv_until("after-garbage")
        self.assertIsNone(self.daemon.proc.poll())
        idle.close()


class TestJournalSyncs(MetricsTest):
    tags = ("aid",)
    extra_config = "journal:\n  fsync: interval\n  fsync_interval_ms: 20\n"

    def test_interval_syncs_run_in_the_background_and_are_counted(self):
        name = "newsalertd_journal_syncs_total"
        before = value(parse(self.scrape()), name)   # the set-up's probes may count
        deadline = time.monotonic() + WAIT
        i = 0
        while True:
            i += 1
            self.feed.send(article("bgsync-%d" % i, *POSITIVE))
            self.subs["aid"].recv_until("bgsync-%d" % i)
            if value(parse(self.scrape()), name) > before:
                break
            self.assertLess(time.monotonic(), deadline, "no background sync counted")
            time.sleep(0.03)
        after = parse(self.scrape())
        self.assertEqual(value(after, "newsalertd_journal_errors_total"), 0)


class TestParallelTagging(MetricsTest):
    tags = ("aid",)
    extra_config = "tagger:\n  threads: 3\n"

    def test_a_burst_is_tagged_in_rounds_and_comes_out_in_order(self):
        before = parse(self.scrape())
        self.assertEqual(value(before, "newsalertd_tagging_threads"), 3)

        # The burst waits in the socket while the daemon is stopped, so it is
        # read in batches and tagged in rounds. In it: negatives, and right
        # after one article a copy of it and then a revision of it.
        expect = []
        self.daemon.signal(signal.SIGSTOP)
        try:
            for i in range(150):
                aid = "burst-%d" % i
                if i % 3 == 2:
                    self.feed.send(article(aid, *NEGATIVES[i % len(NEGATIVES)]))
                    continue
                self.feed.send(article(aid, *POSITIVE))
                expect.append((aid, 0))
                if i == 40:
                    self.feed.send(article(aid, *POSITIVE))
                    self.feed.send(article(aid, *POSITIVE, revision=1))
                    expect.append((aid, 1))
            self.feed.send(article("burst-end", *POSITIVE))
            expect.append(("burst-end", 0))
        finally:
            self.daemon.signal(signal.SIGCONT)
        got = [a for _, a in self.subs["aid"].recv_until("burst-end")]

        self.assertEqual([(a.article_id, a.revision) for a in got], expect)
        self.assertEqual([a.seq - got[0].seq for a in got], list(range(len(got))))
        revised = [a for a in got if a.article_id == "burst-40"]
        self.assertEqual([a.update_of for a in revised], [0, revised[0].seq])
        after = parse(self.scrape())
        self.assertEqual(delta(before, after, "newsalertd_articles_duplicate_total"), 1)
        self.assertEqual(delta(before, after, "newsalertd_articles_untagged_total"), 50)
        self.assertGreater(delta(before, after, "newsalertd_tagging_rounds_total"), 0)


class TestMemoryAfterBurst(MetricsTest):
    tags = ("aid",)
    extra_config = "feed:\n  batch: 16\n"
    args = MetricsTest.args + ("--log-level", "debug")   # says when a trim is skipped

    def trims(self):
        return value(parse(self.scrape()), "newsalertd_memory_trims_total")

    def wait_trims(self, n):
        deadline = time.monotonic() + WAIT
        while self.trims() < n and time.monotonic() < deadline:
            time.sleep(0.2)
        memory = [l for l in self.daemon.text().splitlines() if "memory:" in l]
        self.assertEqual(self.trims(), n, "\n".join(memory))

    def test_the_heap_is_handed_back_once_a_burst_has_drained(self):
        samples = parse(self.scrape())
        self.assertGreater(value(samples, "process_resident_memory_bytes"), 1 << 20)
        # A trickle, one article at a time, is no burst.
        for i in range(3):
            self.feed.send(article("trickle-%d" % i, *POSITIVE))
            self.subs["aid"].recv_until("trickle-%d" % i)
        time.sleep(1.5)
        self.assertEqual(self.trims(), 0)

        # Articles come much faster than they are tagged, so some 40 MB
        # wait in the feed queue, which is the heap. A second after the
        # queue has drained, the heap is handed back, once.
        body = " ".join([NEGATIVES[0][1]] * 22)
        burst = [article("flood-%d" % i, NEGATIVES[0][0], body) for i in range(20000)]
        for a in burst:
            self.feed.send(a)
        self.feed.send(article("flood-end", *POSITIVE))
        self.subs["aid"].recv_until("flood-end")
        self.wait_trims(1)
        time.sleep(1.5)
        self.assertEqual(self.trims(), 1)

        # A burst of short articles, queued while the daemon is stopped,
        # drains in full batches too, but it grows the heap by far less than
        # 4 MiB, and the last trim is seconds old: not worth holding the loop
        # for.
        self.daemon.signal(signal.SIGSTOP)
        try:
            for i in range(300):
                self.feed.send(article("burst-%d" % i, *POSITIVE))
        finally:
            self.daemon.signal(signal.SIGCONT)
        self.assertEqual(len(self.subs["aid"].recv_until("burst-299")), 300)
        self.daemon.wait_log("a burst has drained")
        self.assertEqual(self.trims(), 1)


class TestHealthWhileStopping(MetricsTest):
    tags = ("aid",)
    # A stop waits until the feed is quiet, for at most linger_ms.
    extra_config = "publish:\n  linger_ms: 60000\n"

    def test_healthz_is_503_while_stopping(self):
        import http.client
        stop = threading.Event()

        def keep_feeding():
            i = 0
            while not stop.is_set():
                i += 1
                self.feed.send(article("busy-%d" % i, *NEGATIVES[0]))
                time.sleep(0.002)

        sender = threading.Thread(target=keep_feeding)
        sender.start()
        try:
            self.daemon.signal(signal.SIGTERM)
            self.daemon.wait_log("stopping once the feed is quiet")
            conn = http.client.HTTPConnection("127.0.0.1", int(self.base.rsplit(":", 1)[1]),
                                              timeout=WAIT)
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            body = json.loads(r.read())
            conn.close()
        finally:
            stop.set()
            sender.join()
        self.assertEqual(r.status, 503)
        self.assertEqual(body["status"], "stopping")
        self.assertEqual(self.daemon.proc.wait(WAIT), 0)


class TestDisabled(unittest.TestCase):
    def run_daemon(self, metrics, *args):
        d = Daemon(metrics=metrics)
        self.addCleanup(d.cleanup)
        import zmq
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        from harness import Feed
        feed = Feed(ctx, d.feed)
        self.addCleanup(feed.sock.close, 0)
        d.start(*args)
        feed.wait_subscriber()     # up and running
        return d

    def test_off_in_the_config_means_no_listening_socket(self):
        d = self.run_daemon("off")
        d.wait_log("http: disabled")
        self.assertEqual(listening_tcp_ports(d.proc.pid), set())
        self.assertEqual(d.stop(), 0)

    def test_metrics_off_on_the_command_line_overrides_the_config(self):
        d = self.run_daemon("127.0.0.1:0", "--metrics", "off")
        d.wait_log("http: disabled")
        self.assertEqual(listening_tcp_ports(d.proc.pid), set())
        self.assertEqual(d.stop(), 0)

    def test_the_listening_port_is_the_one_logged(self):
        d = self.run_daemon("127.0.0.1:0")
        self.assertEqual(listening_tcp_ports(d.proc.pid), {http_port(d)})
        self.assertEqual(d.stop(), 0)


class TestListenOption(unittest.TestCase):
    def newsalertd(self, *args):
        return subprocess.run([os.path.join(BIN, "newsalertd")] + list(args),
                              capture_output=True, text=True, timeout=WAIT)

    def test_help_and_help_config_document_it(self):
        self.assertIn("--metrics ADDR:PORT", self.newsalertd("--help").stdout)
        self.assertRegex(self.newsalertd("--help-config").stdout,
                         r"metrics\.listen\s+127\.0\.0\.1:9464\s")

    def test_bad_addresses_are_usage_or_config_errors(self):
        for bad in ("9464", "localhost:9464", "127.0.0.1:", "127.0.0.1:99999", "::1:9464",
                    "127.0.0.1:12x"):
            r = self.newsalertd("--metrics", bad, "--check-config")
            self.assertEqual(r.returncode, 64, bad)
            self.assertIn("--metrics", r.stderr)
        d = Daemon(metrics="127.0.0.1:http")
        try:
            r = self.newsalertd("-c", d.config, "--check-config")
            self.assertEqual(r.returncode, 78)
            self.assertRegex(r.stderr, r"newsalertd\.yaml:\d+: metrics\.listen: expected")
            r = self.newsalertd("-c", d.config, "--metrics", "[::1]:0", "--check-config")
            self.assertEqual(r.returncode, 78, "the file is read before the override")
        finally:
            d.cleanup()

    def test_a_port_in_use_fails_the_start(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            d = Daemon()
            try:
                d.start("--metrics", "127.0.0.1:%d" % s.getsockname()[1])
                self.assertEqual(d.proc.wait(WAIT), 1)
                self.assertIn("http: cannot listen on 127.0.0.1:", d.text())
            finally:
                d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
