"""The newsalert CLI's operator commands against the real daemon: tail's
JSON (live and caught up alike, 64-bit values as strings), tail's checks of
its tags and endpoint, replay's wait for a subscriber, wait-ready on
/healthz and top on /metrics."""

import json
import os
import re
import socket
import subprocess
import time
import unittest

import zmq

from harness import (BIN, POSITIVE, WAIT, Daemon, DaemonTest, article, check_clean_exit,
                     load_json, seed_article)

NEWSALERT = os.path.join(BIN, "newsalert")


def run(*args, timeout=WAIT):
    return subprocess.run([NEWSALERT] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class TestTailJson(DaemonTest):
    """An alert printed live and the same alert fetched from catch-up are
    the same JSON object; 64-bit fields are strings, 32-bit ones numbers."""

    def test_live_and_caught_up_alerts_print_the_same_fields(self):
        live = subprocess.Popen([NEWSALERT, "tail", "--connect", self.daemon.publish,
                                 "--catchup", self.daemon.catchup, "--json", "--count", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # tail is subscribed once the daemon sees its subscription: the
        # daemon's own probe round trip (sync) proves the path.
        self.sync()
        time.sleep(0.3)
        self.feed.send(seed_article("seed-1"))
        self.feed.send(article("after", *POSITIVE))
        out, err = live.communicate(timeout=WAIT)
        self.assertEqual(live.returncode, 0, err)
        live_lines = [x for x in out.splitlines() if "probe-" not in x]
        self.assertEqual(len(live_lines), 2, out)
        # The same two from the journal, through catch-up alone (after the
        # probes and sync markers), until 2 s pass without another.
        r = run("tail", "--connect", self.daemon.publish, "--catchup", self.daemon.catchup,
                "--json", "--since", "0", "--timeout", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        caught = [x for x in r.stdout.splitlines() if "probe-" not in x]
        by_id = {json.loads(x)["article_id"]: json.loads(x) for x in caught}
        for line in live_lines:
            a = json.loads(line)
            b = by_id[a["article_id"]]
            self.assertEqual(sorted(a), sorted(b), "the same fields")
            self.assertEqual(a, b, "the same values")
            # One topic and its number, chosen the same way on both paths.
            self.assertTrue(a["topic"].startswith("alert."))
            self.assertIn({"topic": a["topic"], "seq": a["topic_seq"]}, a["topics"])
            for k in ("seq", "topic_seq", "epoch", "published_at_ms", "received_at_ms",
                      "feed_seq", "update_of"):
                self.assertIsInstance(a[k], str, k)
                self.assertRegex(a[k], r"^-?\d+$", k)
            self.assertIsInstance(a["revision"], int)
            self.assertIsInstance(a["tags"][0]["evidence"][0]["start"], int)
        # The epoch (nanoseconds since 1970 at the daemon's start) is above
        # 2^53: as a JSON number it would not survive a double.
        epoch = int(json.loads(live_lines[0])["epoch"])
        self.assertGreater(epoch, 2 ** 53)
        self.assertEqual(load_json(live_lines[0])["epoch"], epoch)


class TestTailChecks(DaemonTest):
    def test_unknown_tag_is_an_error_naming_it(self):
        t0 = time.monotonic()
        r = run("tail", "--connect", self.daemon.publish, "--catchup", self.daemon.catchup,
                "--tag", "aid", "--tag", "no_such_tag", "--timeout", "10")
        self.assertEqual(r.returncode, 64, r.stderr)
        self.assertIn("unknown tag 'no_such_tag'", r.stderr)
        self.assertLess(time.monotonic() - t0, 5, "said at once, not after the timeout")

    def test_known_tags_are_accepted(self):
        r = run("tail", "--connect", self.daemon.publish, "--catchup", self.daemon.catchup,
                "--tag", "aid", "--tag", "summit", "--timeout", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("unknown tag", r.stderr)
        self.assertNotIn("nothing answers", r.stderr)

    def test_silent_endpoint_is_reported_and_tail_keeps_trying(self):
        # Nothing listens at these endpoints until the second daemon starts.
        d = Daemon()
        try:
            t = subprocess.Popen([NEWSALERT, "tail", "--connect", d.publish, "--catchup",
                                  d.catchup, "--json", "--count", "1"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            t0 = time.monotonic()
            line = t.stderr.readline()
            self.assertIn("nothing answers at %s" % d.publish, line)
            self.assertIn("Still trying", line)
            self.assertLess(time.monotonic() - t0, 6)
            self.assertIsNone(t.poll(), "tail gave up")
            # The daemon comes up: tail says so and prints its alert.
            d.start()
            ctx = zmq.Context()
            try:
                from harness import Feed
                feed = Feed(ctx, d.feed)
                feed.wait_subscriber()
                self.assertIn("answers now", t.stderr.readline())
                deadline = time.monotonic() + WAIT
                out = ""
                while time.monotonic() < deadline and t.poll() is None:
                    feed.send(seed_article("late-%d" % int(time.monotonic() * 1000)))
                    time.sleep(0.2)
                out, err = t.communicate(timeout=WAIT)
                self.assertEqual(t.returncode, 0, err)
                self.assertIn('"article_id":"late-', out)
                feed.sock.close(0)
            finally:
                ctx.destroy(0)
        finally:
            if t.poll() is None:
                t.kill()
                t.wait()
            d.cleanup()

    def test_no_warning_when_the_daemon_answers(self):
        r = run("tail", "--connect", self.daemon.publish, "--catchup", "off", "--timeout", "4")
        self.assertEqual(r.returncode, 0, r.stderr)
        # The heartbeat (every second by default) is the sign of life.
        self.assertNotIn("nothing answers", r.stderr)


class TestReplayWait(DaemonTest):
    """replay does not publish into the void without saying so."""

    def feed_file(self, n=3):
        src = os.path.join(self.daemon.dir, "a.jsonl")
        with open(src, "w") as f:
            for i in range(n):
                f.write(json.dumps({"id": "r-%d" % i, "headline": POSITIVE[0],
                                    "body": POSITIVE[1]}) + "\n")
        out = os.path.join(self.daemon.dir, "a.feed")
        r = run("pack", src, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        return out

    def test_without_subscriber_it_waits_then_warns(self):
        path = self.feed_file()
        ep = "ipc://%s/nobody" % self.daemon.dir
        t0 = time.monotonic()
        r = run("replay", path, "--bind", ep, "--max-rate", "--timeout", "1.5")
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("waiting up to 2 s for a subscriber on %s" % ep, r.stderr)
        self.assertIn("no subscriber on %s after 2 s" % ep, r.stderr)
        self.assertIn("the 3 messages went nowhere", r.stderr)
        self.assertGreaterEqual(took, 1.4)

    def test_no_wait_still_warns_at_the_end(self):
        path = self.feed_file()
        ep = "ipc://%s/nobody2" % self.daemon.dir
        t0 = time.monotonic()
        r = run("replay", path, "--bind", ep, "--max-rate", "-w", "0")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertNotIn("waiting", r.stderr)
        self.assertIn("no subscriber was seen on %s: the 3 messages went nowhere" % ep,
                      r.stderr)

    def test_explicit_wait_that_fails_is_an_error(self):
        path = self.feed_file()
        r = run("replay", path, "--bind", "ipc://%s/nobody3" % self.daemon.dir,
                "-w", "1", "--timeout", "0.5")
        self.assertEqual(r.returncode, 1)
        self.assertIn("1 subscriber(s) did not arrive within", r.stderr)

    def test_a_subscriber_that_comes_late_gets_everything(self):
        # The daemon is up and retrying its connection before replay binds
        # the endpoint, so it comes only after the bind (at its next
        # reconnect); by default replay waits for it, so no article is lost
        # and nothing is warned about. (Started first because under ASan
        # its start takes longer than replay's default wait.)
        path = self.feed_file(5)
        d = Daemon()
        try:
            ep = d.feed
            d.start()
            d.wait_log("ready:")
            rp = subprocess.Popen([NEWSALERT, "replay", path, "--bind", ep, "--max-rate"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            r_out, r_err = rp.communicate(timeout=WAIT)
            self.assertEqual(rp.returncode, 0, r_err)
            self.assertNotIn("warning", r_err)
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                if self._alerted(d) >= 5:
                    break
                time.sleep(0.1)
            self.assertEqual(self._alerted(d), 5, d.text())
        finally:
            d.cleanup()

    @staticmethod
    def _alerted(d):
        r = run("journal", os.path.join(d.state_dir, "journal"), "--json")
        return len([x for x in r.stdout.splitlines() if '"r-' in x])


class HttpDaemonTest(unittest.TestCase):
    """A daemon with its HTTP endpoint on a free port, and no feed yet."""

    def setUp(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.daemon = Daemon(metrics="127.0.0.1:%d" % self.port)
        self.ctx = zmq.Context()

    def tearDown(self):
        self.ctx.destroy(0)
        self.daemon.cleanup()


class TestWaitReady(HttpDaemonTest):
    def test_nothing_listening_times_out_with_the_reason(self):
        t0 = time.monotonic()
        r = run("wait-ready", "--url", self.url, "--timeout", "1")
        self.assertEqual(r.returncode, 1)
        self.assertLess(time.monotonic() - t0, 4)
        self.assertIn("not ready within 1.0 s", r.stderr)
        self.assertIn("connection", r.stderr)

    def test_not_ready_until_a_feed_connects(self):
        self.daemon.start()
        # Up (the HTTP server listens once the rules are compiled, which
        # under ASan takes seconds), but no feed publisher yet: 503, and
        # wait-ready says so.
        self.daemon.wait_log("http: listening on")
        r = run("wait-ready", "--url", self.url, "--timeout", "2")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("last answer: HTTP 503", r.stderr)
        # wait-ready started before the feed comes returns once it does.
        w = subprocess.Popen([NEWSALERT, "wait-ready", "--url", self.url + "/healthz",
                              "--timeout", str(WAIT)], stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        self.assertIsNone(w.poll(), "ready before any feed")
        from harness import Feed
        feed = Feed(self.ctx, self.daemon.feed)
        feed.wait_subscriber()
        _, err = w.communicate(timeout=WAIT)
        self.assertEqual(w.returncode, 0, err)
        self.assertIn("is ready", err)

    def test_bad_url_is_a_usage_error(self):
        for url in ("ftp://127.0.0.1:1/", "127.0.0.1:9464", "http://"):
            r = run("wait-ready", "--url", url)
            self.assertEqual(r.returncode, 64, url)
            self.assertIn("--url: expected http://HOST[:PORT][/PATH]", r.stderr)
        r = run("wait-ready", "--timeout", "soon")
        self.assertEqual(r.returncode, 64)
        self.assertIn("--timeout: expected seconds", r.stderr)


class TestTop(HttpDaemonTest):
    def test_once_prints_a_frame_from_metrics(self):
        self.daemon.start()
        from harness import Feed
        feed = Feed(self.ctx, self.daemon.feed)
        feed.wait_subscriber()
        self.assertEqual(run("wait-ready", "--url", self.url, "-q").returncode, 0)
        feed.send(seed_article("seed-1"))
        feed.send_frames([b"news", b"\xff\xfenot protobuf"])
        # The counters move once the daemon has handled both.
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            r = run("top", "--url", self.url, "--once")
            self.assertEqual(r.returncode, 0, r.stderr)
            if re.search(r"received 2\b", r.stdout):
                break
            time.sleep(0.1)
        frame = r.stdout
        self.assertNotIn("\033", frame, "no escapes in --once")
        self.assertRegex(frame, r"received 2\b")
        self.assertRegex(frame, r"alerted 1\b")
        for tag in ("aid", "alliance", "summit"):
            self.assertRegex(frame, r"\n  %s +1\b" % tag)
        self.assertRegex(frame, r"Rejects, by reason\n  [a-z_]+ +1\b")
        self.assertIn("feeds 1 of 1 connected", frame)
        self.assertRegex(frame, r"state ok")
        self.assertRegex(frame, r"last seq 1\b")
        self.assertRegex(frame, r"p50 \d+\.\d{3} ms")
        feed.sock.close(0)

    def test_non_tty_output_is_one_frame(self):
        self.daemon.start()
        # stdout is a pipe: one frame, then exit, even without --once (the
        # first tries may come before the daemon listens).
        deadline = time.monotonic() + WAIT
        while True:
            r = run("top", "--url", self.url, timeout=10)
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.count("newsalertd top"), 1)

    def test_unreachable_metrics_is_an_error(self):
        r = run("top", "--url", self.url, "--once")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot read 127.0.0.1:%d/metrics" % self.port, r.stderr)

    def test_live_view_quits_on_q_and_restores_the_terminal(self):
        self.daemon.start()
        self.live_view(lambda pid, fd: os.write(fd, b"q"))

    def test_live_view_quits_on_ctrl_c_and_restores_the_terminal(self):
        self.daemon.start()
        # Ctrl-C on a terminal: the line discipline sends SIGINT.
        self.live_view(lambda pid, fd: os.write(fd, b"\x03"))

    def live_view(self, quit):
        import pty
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(NEWSALERT, [NEWSALERT, "top", "--url", self.url, "--interval", "0.2"])
        out = b""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and out.count(b"newsalertd top") < 2:
            out += os.read(fd, 65536)
        self.assertGreaterEqual(out.count(b"newsalertd top"), 2, "it refreshes")
        self.assertIn(b"\033[?1049h", out)  # the alternate screen
        quit(pid, fd)
        rest = b""
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                rest += chunk
        except OSError:
            pass
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        self.assertIn(code, (0, 1), "a clean exit, not killed by the signal")
        self.assertTrue((out + rest).endswith(b"\033[?25h\033[?1049l"),
                        "cursor and screen restored")
        os.close(fd)


if __name__ == "__main__":
    unittest.main()
