"""CURVE on both sides of newsalertd, end to end on 127.0.0.1 tcp: allowed
and refused consumers, a feed publisher with the wrong key, key files and
their checks, and the newsalert tool's key options. Every "receives
nothing" test also shows an allowed peer receiving in the same run."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import zmq
import zmq.auth

from harness import BIN, POSITIVE, WAIT, Daemon, Feed, article

CLI = os.path.join(BIN, "newsalert")
# Long enough for a refused connection to have delivered, had it not been refused.
QUIET = 1.0


def keygen(directory, name):
    """NAME.key/NAME.pub via `newsalert keygen`; returns (public, secret) as
    pyzmq reads them back, which checks the format's interoperability."""
    r = subprocess.run([CLI, "keygen", os.path.join(directory, name)],
                       capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 0, r.stderr
    pub, sec = zmq.auth.load_certificate(os.path.join(directory, name + ".key"))
    assert r.stdout.strip() == pub.decode()
    return pub, sec


def stopped_count(log, what):
    m = re.search(r"stopped: %s: (\d+)" % re.escape(what), log)
    return int(m.group(1)) if m else 0


class CurveDaemon(Daemon):
    """A daemon whose alerts are on 127.0.0.1 tcp (port chosen by the
    kernel, read back from the log) and whose feeds are given."""

    def __init__(self, extra_config, feeds):
        super().__init__(extra_config=extra_config)
        self.feeds = feeds
        self.alerts = None

    @property
    def feed(self):
        return self.feeds[0]

    @property
    def publish(self):
        return "tcp://127.0.0.1:*"

    def start(self, *args):
        more = []
        for f in self.feeds[1:]:
            more += ["--feed", f]
        super().start(*(more + list(args)))
        self.wait_log("publish: alerts on tcp://127.0.0.1:")
        self.alerts = re.search(r"publish: alerts on (tcp://127\.0\.0\.1:\d+)",
                                self.text()).group(1)
        return self


def curve_sub(ctx, endpoint, server_pub, keys=None, prefix="alert."):
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    if server_pub is not None:
        pub, sec = keys if keys else zmq.curve_keypair()
        s.curve_serverkey = server_pub
        s.curve_publickey = pub
        s.curve_secretkey = sec
    s.setsockopt(zmq.SUBSCRIBE, prefix.encode())
    s.connect(endpoint)
    return s


def recv_alert(sock, timeout):
    if not sock.poll(int(timeout * 1000)):
        return None
    from harness import alert_pb2
    frames = sock.recv_multipart()
    a = alert_pb2.Alert()
    a.ParseFromString(frames[-1])
    return a


class CurveTest(unittest.TestCase):
    """A daemon with CURVE on its alerts: server key pair, and an allow dir
    with alice (made by `newsalert keygen`) and carol (made by pyzmq)."""

    def setUp(self):
        self.ctx = zmq.Context()
        self.keys = tempfile.mkdtemp(prefix="na-keys-")
        self.allow = os.path.join(self.keys, "allow")
        os.mkdir(self.allow)
        self.server = keygen(self.keys, "server")
        self.alice = keygen(self.keys, "alice")
        self.mallory = keygen(self.keys, "mallory")
        shutil.copy(os.path.join(self.keys, "alice.pub"), self.allow)
        pub_file, sec_file = zmq.auth.create_certificates(self.keys, "carol")
        self.carol = zmq.auth.load_certificate(sec_file)
        # pyzmq names its public certificate NAME.key; the allow dir takes *.pub.
        shutil.copy(pub_file, os.path.join(self.allow, "carol.pub"))
        self.feed_sock = self.ctx.socket(zmq.XPUB)
        self.feed_sock.setsockopt(zmq.SNDHWM, 0)
        self.feed_sock.bind("tcp://127.0.0.1:*")
        self.feed = Feed.__new__(Feed)
        self.feed.sock = self.feed_sock
        self.daemon = CurveDaemon(
            "publish:\n  curve:\n    secret_key: %s\n    allow_dir: %s\n"
            % (os.path.join(self.keys, "server.key"), self.allow),
            [self.feed_sock.getsockopt(zmq.LAST_ENDPOINT).decode()])
        self.daemon.start()
        self.feed.wait_subscriber()
        self.socks = []
        self.n = 0

    def tearDown(self):
        for s in self.socks:
            s.close(0)
        self.feed_sock.close(0)
        self.daemon.cleanup()
        self.ctx.term()
        shutil.rmtree(self.keys, ignore_errors=True)

    def sub(self, keys=None, server_pub=None, plain=False):
        s = curve_sub(self.ctx, self.daemon.alerts,
                      None if plain else (server_pub or self.server[0]), keys)
        self.socks.append(s)
        return s

    def deliver(self, good, *also):
        """Sends positive articles until `good` (and each of `also`) has one
        (they subscribed), then one more, marked; returns the marked article's
        id after `good` got it."""
        deadline = time.monotonic() + WAIT
        waiting = [good] + list(also)
        while waiting:
            self.assertLess(time.monotonic(), deadline, "an allowed subscriber got nothing")
            self.n += 1
            self.feed.send(article("probe-%d" % self.n, *POSITIVE))
            waiting = [s for s in waiting if recv_alert(s, 0.2) is None]
        self.n += 1
        marker = "marked-%d" % self.n
        self.feed.send(article(marker, *POSITIVE))
        while True:
            a = recv_alert(good, WAIT)
            self.assertIsNotNone(a, "no alert for " + marker)
            if a.article_id == marker:
                return marker

    def assert_gets_nothing(self, sock):
        self.assertIsNone(recv_alert(sock, QUIET), "a refused subscriber got an alert")

    def auth_failures_at_stop(self):
        self.assertEqual(self.daemon.stop(), 0)
        return stopped_count(self.daemon.text(), "auth failures")


class TestCurveAlerts(CurveTest):
    def test_1_allowed_keys_receive_alerts(self):
        alice = self.sub(self.alice)
        carol = self.sub(self.carol)  # a pyzmq certificate in the allow dir
        marker = self.deliver(alice, carol)
        while True:
            a = recv_alert(carol, WAIT)
            self.assertIsNotNone(a, "carol (a pyzmq certificate) got no alert for " + marker)
            if a.article_id == marker:
                break
        self.assertIn("auth: ZAP handler on inproc://zeromq.zap.01, 2 allowed", self.daemon.text())
        self.assertEqual(self.auth_failures_at_stop(), 0)

    def test_2_unknown_key_receives_nothing_and_is_counted(self):
        mallory = self.sub(self.mallory)
        self.daemon.wait_log("auth: denied: a client key that is not in "
                             "publish.curve.allow_dir: peer 127.0.0.1, key %s..."
                             % self.mallory[0].decode()[:8])
        alice = self.sub(self.alice)
        self.deliver(alice)
        self.assert_gets_nothing(mallory)
        self.assertGreaterEqual(self.auth_failures_at_stop(), 1)
        log = self.daemon.text()
        self.assertNotIn(self.server[1].decode(), log)
        self.assertNotIn(self.mallory[1].decode(), log)

    def catchup_client(self, keys=None, plain=False):
        from harness import catchup_pb2
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        if not plain:
            pub, sec = keys
            s.curve_serverkey = self.server[0]
            s.curve_publickey = pub
            s.curve_secretkey = sec
        s.connect(self.daemon.catchup)
        self.socks.append(s)
        s.send(catchup_pb2.CatchupRequest(since_seq=0).SerializeToString())
        return s

    def test_catchup_endpoint_is_curve_with_the_same_allowlist(self):
        from harness import catchup_pb2
        alice = self.sub(self.alice)
        marker = self.deliver(alice)
        mallory = self.catchup_client(self.mallory)
        plain = self.catchup_client(plain=True)
        good = self.catchup_client(self.alice)
        ids = []
        while True:
            self.assertTrue(good.poll(int(WAIT * 1000)), "no catch-up reply for alice")
            r = catchup_pb2.CatchupReply()
            r.ParseFromString(good.recv())
            if r.kind != catchup_pb2.CatchupReply.KIND_ALERT:
                self.assertEqual(r.kind, catchup_pb2.CatchupReply.KIND_END)
                break
            ids.append(r.alert.article_id)
        self.assertIn(marker, ids)
        self.assertFalse(mallory.poll(int(QUIET * 1000)), "an unknown key got a reply")
        self.assertFalse(plain.poll(0), "a plain client got a reply")
        self.assertGreaterEqual(self.auth_failures_at_stop(), 2)

    def test_3_plain_subscriber_receives_nothing(self):
        plain = self.sub(plain=True)
        # libzmq reports a mechanism mismatch, or only the closed connection.
        self.daemon.wait_log("auth: publish: handshake refused on %s: " % self.daemon.alerts)
        alice = self.sub(self.alice)
        self.deliver(alice)
        self.assert_gets_nothing(plain)
        self.assertGreaterEqual(self.auth_failures_at_stop(), 1)

    def test_4_wrong_server_key_receives_nothing(self):
        wrong = self.sub(self.alice, server_pub=self.mallory[0])
        self.daemon.wait_log("auth: publish: handshake refused on %s: " % self.daemon.alerts)
        alice = self.sub(self.alice)
        self.deliver(alice)
        self.assert_gets_nothing(wrong)
        self.assertGreaterEqual(self.auth_failures_at_stop(), 1)


class TestCurveReload(CurveTest):
    def test_5_removed_key_and_sighup_refuse_new_connections(self):
        first = self.sub(self.alice)
        self.deliver(first)
        os.unlink(os.path.join(self.allow, "alice.pub"))
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("reloaded: 1 allowed consumer key(s)")
        again = self.sub(self.alice)
        self.daemon.wait_log("key %s..." % self.alice[0].decode()[:8])
        carol = self.sub(self.carol)
        self.deliver(carol)
        self.assert_gets_nothing(again)
        self.assertGreaterEqual(self.auth_failures_at_stop(), 1)

    def test_a_bad_allowlist_on_sighup_keeps_the_old_one(self):
        with open(os.path.join(self.allow, "broken.pub"), "w") as f:
            f.write("curve\n    public-key = \"too short\"\n")
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("reload failed")
        self.assertIn("broken.pub:2: public-key: expected 40 Z85 characters", self.daemon.text())
        os.unlink(os.path.join(self.allow, "broken.pub"))
        shutil.rmtree(self.allow)
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("reload failed", 2)
        self.assertIn("publish.curve.allow_dir: No such file or directory", self.daemon.text())
        # Still the allowlist from the start: alice gets in.
        self.deliver(self.sub(self.alice))
        self.assertEqual(self.auth_failures_at_stop(), 0)


class TestCurveFeed(unittest.TestCase):
    def test_6_a_feed_publisher_with_the_wrong_key_is_not_accepted(self):
        ctx = zmq.Context()
        keys = tempfile.mkdtemp(prefix="na-keys-")
        try:
            feed_pub, feed_sec = keygen(keys, "feed")
            keygen(keys, "daemon")
            bad_pub, bad_sec = keygen(keys, "impostor")

            def publisher(secret):
                s = ctx.socket(zmq.XPUB)
                s.setsockopt(zmq.LINGER, 0)
                s.curve_server = True
                s.curve_secretkey = secret
                s.bind("tcp://127.0.0.1:*")
                return s
            good, bad = publisher(feed_sec), publisher(bad_sec)
            good_ep = good.getsockopt(zmq.LAST_ENDPOINT).decode()
            bad_ep = bad.getsockopt(zmq.LAST_ENDPOINT).decode()
            d = CurveDaemon("feed:\n  curve:\n    server_key: %s\n    secret_key: %s\n"
                            % (os.path.join(keys, "feed.pub"), os.path.join(keys, "daemon.key")),
                            [good_ep, bad_ep])
            # The alerts are plain here: only the feed side is under test.
            d.start()
            try:
                self.assertTrue(good.poll(int(WAIT * 1000)), "the daemon never subscribed")
                good.recv()
                d.wait_log("auth: feed: handshake with the publisher failed: closed by the "
                           "publisher (not the feed.curve.server_key publisher, or it refused "
                           "our key): peer " + bad_ep)
                # The impostor never sees the daemon subscribe: what it sends goes nowhere.
                self.assertFalse(bad.poll(int(QUIET * 1000)))
                sub = curve_sub(ctx, d.alerts, None)
                deadline = time.monotonic() + WAIT
                got = set()
                i = 0
                while "genuine" not in {x.split("-")[0] for x in got}:
                    self.assertLess(time.monotonic(), deadline, "no alert from the genuine feed")
                    i += 1
                    bad.send_multipart([b"news", article("forged-%d" % i, *POSITIVE)])
                    good.send_multipart([b"news", article("genuine-%d" % i, *POSITIVE)])
                    a = recv_alert(sub, 0.2)
                    if a is not None:
                        got.add(a.article_id)
                while True:
                    a = recv_alert(sub, QUIET)
                    if a is None:
                        break
                    got.add(a.article_id)
                self.assertFalse([x for x in got if x.startswith("forged")], got)
                sub.close(0)
                self.assertEqual(d.stop(), 0)
                self.assertGreaterEqual(stopped_count(d.text(), "auth failures"), 1)
                self.assertIn("feed: connected to %s (CURVE)" % good_ep, d.text())
            finally:
                d.cleanup()
                good.close(0)
                bad.close(0)
        finally:
            ctx.term()
            shutil.rmtree(keys, ignore_errors=True)


class FeedReconnectDaemon(Daemon):
    """A daemon with a CURVE feed on one ipc endpoint and /metrics on."""

    def __init__(self, extra_config):
        super().__init__(extra_config=extra_config, metrics="127.0.0.1:0")

    @property
    def feed(self):
        return "ipc://%s/curve-feed" % self.dir


class TestCurveFeedReconnect(unittest.TestCase):
    """One endpoint, held in turn by a plain publisher, a CURVE publisher with
    another key and the genuine one: each failed handshake is followed by a
    reconnect, so the genuine publisher is reached without a restart."""

    def test_failed_handshakes_do_not_cut_the_feed_off(self):
        from test_metrics import curl, http_port, parse, value
        ctx = zmq.Context()
        keys = tempfile.mkdtemp(prefix="na-keys-")
        socks = []
        d = None
        try:
            keygen(keys, "feed")
            keygen(keys, "daemon")
            _, feed_sec = zmq.auth.load_certificate(os.path.join(keys, "feed.key"))
            _, bad_sec = keygen(keys, "impostor")
            d = FeedReconnectDaemon(
                "feed:\n  curve:\n    server_key: %s\n    secret_key: %s\n"
                % (os.path.join(keys, "feed.pub"), os.path.join(keys, "daemon.key")))

            def publisher(secret):
                s = ctx.socket(zmq.XPUB)
                s.setsockopt(zmq.LINGER, 0)
                if secret is not None:
                    s.curve_server = True
                    s.curve_secretkey = secret
                deadline = time.monotonic() + WAIT
                while True:  # the last holder's close is asynchronous
                    try:
                        s.bind(d.feed)
                        break
                    except zmq.ZMQError:
                        self.assertLess(time.monotonic(), deadline, "cannot bind " + d.feed)
                        time.sleep(0.05)
                socks.append(s)
                return s

            def metric(name):
                return value(parse(curl(base + "/metrics")[2]), name)

            def wait_metric(name, above):
                deadline = time.monotonic() + WAIT
                while metric(name) <= above:
                    self.assertLess(time.monotonic(), deadline, "%s stayed at %d" % (name, above))
                    time.sleep(0.1)
                return metric(name)

            plain = publisher(None)
            t0 = time.monotonic()
            d.start()
            base = "http://127.0.0.1:%d" % http_port(d)
            # The plain peer and the CURVE client disagree on the mechanism.
            d.wait_log("feed: handshake with the publisher failed: security mechanism mismatch")
            fails = wait_metric("newsalertd_auth_failures_total", 0)
            wait_metric("newsalertd_feed_reconnects_total", 0)
            # Retried, and not only once: the daemon keeps at it.
            fails = wait_metric("newsalertd_auth_failures_total", fails)
            self.assertFalse(plain.poll(0), "a plain peer saw the daemon subscribe")
            plain.close(0)

            impostor = publisher(bad_sec)
            fails = wait_metric("newsalertd_auth_failures_total", fails)
            fails = wait_metric("newsalertd_auth_failures_total", fails)
            self.assertFalse(impostor.poll(0), "the impostor saw the daemon subscribe")
            impostor.close(0)

            good = publisher(feed_sec)
            self.assertTrue(good.poll(int(WAIT * 1000)), "the daemon never came back")
            good.recv()
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.SUBSCRIBE, b"alert.")
            sub.connect(d.publish)
            socks.append(sub)
            deadline = time.monotonic() + WAIT
            i = 0
            while True:
                self.assertLess(time.monotonic(), deadline, "no alert from the genuine feed")
                i += 1
                good.send_multipart([b"news", article("genuine-%d" % i, *POSITIVE)])
                a = recv_alert(sub, 0.2)
                if a is not None:
                    self.assertTrue(a.article_id.startswith("genuine-"))
                    break
            d.wait_log("feed: connected to %s (CURVE)" % d.feed)
            reconnects = metric("newsalertd_feed_reconnects_total")
            elapsed = time.monotonic() - t0
            # At least the one after the plain peer's protocol error, which
            # libzmq never retries itself (a closed connection it may).
            self.assertGreaterEqual(reconnects, 1)
            # Backed off: at most one reconnect a second.
            self.assertLessEqual(reconnects, elapsed + 1, "reconnects in %.1f s" % elapsed)
            self.assertEqual(value(parse(curl(base + "/metrics")[2]),
                                 "newsalertd_feed_endpoints_connected"), 1)
            self.assertEqual(d.stop(), 0)
            self.assertRegex(d.text(), r"stopped: feed reconnects: \d+")
        finally:
            for s in socks:
                s.close(0)
            if d is not None:
                d.cleanup()
            ctx.term()
            shutil.rmtree(keys, ignore_errors=True)


class TestCurveToolchain(unittest.TestCase):
    """replay serves the feed with CURVE, the daemon is its client and a
    CURVE server to tail and record, which use their own keys."""

    def test_replay_daemon_tail_and_record_with_curve(self):
        keys = tempfile.mkdtemp(prefix="na-keys-")
        allow = os.path.join(keys, "allow")
        os.mkdir(allow)
        procs = []
        try:
            for name in ("feed", "daemon", "server", "alice"):
                keygen(keys, name)
            shutil.copy(os.path.join(keys, "alice.pub"), allow)
            k = lambda name: os.path.join(keys, name)  # noqa: E731
            ctx = zmq.Context()
            probe = ctx.socket(zmq.XPUB)
            probe.bind("tcp://127.0.0.1:*")
            feed_ep = probe.getsockopt(zmq.LAST_ENDPOINT).decode()
            probe.close(0)  # a free port for replay, nothing else binds it here
            ctx.term()
            d = CurveDaemon("feed:\n  curve:\n    server_key: %s\n    secret_key: %s\n"
                            "publish:\n  curve:\n    secret_key: %s\n    allow_dir: %s\n"
                            % (k("feed.pub"), k("daemon.key"), k("server.key"), allow),
                            [feed_ep])
            d.start()
            # --since 0: the replay's later passes are duplicates the daemon
            # drops, so an alert of the first pass that tail subscribed too
            # late for (a slow start, the sanitizer build) comes from the
            # journal, through CURVE like the rest.
            tail = subprocess.Popen([CLI, "tail", "--connect", d.alerts, "--json", "--count", "1",
                                     "--since", "0", "--catchup", d.catchup,
                                     "--curve-server-key", k("server.pub"),
                                     "--curve-key", k("alice.key")],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(tail)
            out = os.path.join(keys, "recorded.feed")
            record = subprocess.Popen([CLI, "record", "--feed", feed_ep, "-o", out, "--count", "3",
                                       "--curve-server-key", k("feed.pub")],
                                      stderr=subprocess.PIPE, text=True)
            procs.append(record)
            feed = os.path.join(os.environ["NA_FEEDS"], "sample.feed")
            # Loops until tail has its alert: tail may subscribe after the first pass.
            replay = subprocess.Popen([CLI, "replay", feed, "--bind", feed_ep, "--max-rate",
                                       "--loop", "1000", "--wait-subscribers", "2",
                                       "--curve-key", k("feed.key")],
                                      stderr=subprocess.PIPE, text=True)
            procs.append(replay)
            tail_out, tail_err = tail.communicate(timeout=120)
            self.assertEqual(tail.returncode, 0, tail_err)
            self.assertIn('"tags"', tail_out)
            self.assertEqual(record.wait(timeout=120), 0, record.stderr.read())
            r = subprocess.run([CLI, "unpack", out], capture_output=True, text=True, timeout=WAIT)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(len(r.stdout.splitlines()), 3)
            replay.send_signal(signal.SIGINT)
            replay.wait(timeout=WAIT)
            self.assertEqual(d.stop(), 0)
            self.assertIn("feed: connected to %s (CURVE)" % feed_ep, d.text())
            self.assertEqual(stopped_count(d.text(), "auth failures"), 0)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            if "d" in locals():
                d.cleanup()
            shutil.rmtree(keys, ignore_errors=True)

    def test_tools_refuse_bad_key_files(self):
        keys = tempfile.mkdtemp(prefix="na-keys-")
        try:
            keygen(keys, "me")
            os.chmod(os.path.join(keys, "me.key"), 0o644)
            r = subprocess.run([CLI, "tail", "--curve-server-key", os.path.join(keys, "me.pub"),
                                "--curve-key", os.path.join(keys, "me.key"), "-T", "1"],
                               capture_output=True, text=True, timeout=WAIT)
            self.assertEqual(r.returncode, 64)
            self.assertIn("me.key: holds a secret key but its mode is 0644", r.stderr)
            for cmd in ("tail", "record", "replay"):
                r = subprocess.run([CLI, cmd, "--help"], capture_output=True, text=True,
                                   timeout=WAIT)
                self.assertIn("--curve-key", r.stdout)
        finally:
            shutil.rmtree(keys, ignore_errors=True)


class TestKeys(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="na-keys-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_keygen_writes_a_0600_secret_and_never_overwrites(self):
        name = os.path.join(self.dir, "k")
        r = subprocess.run([CLI, "keygen", name], capture_output=True, text=True,
                           timeout=WAIT, preexec_fn=lambda: os.umask(0))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.stat(name + ".key").st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(name + ".pub").st_mode & 0o777, 0o644)
        pub, sec = zmq.auth.load_certificate(name + ".key")
        self.assertEqual(zmq.auth.load_certificate(name + ".pub"), (pub, None))
        self.assertEqual(zmq.curve_public(sec), pub)
        text = open(name + ".key").read()
        self.assertRegex(text, r'(?m)^curve\n    public-key = "%s"\n    secret-key = "' %
                         re.escape(pub.decode()))
        self.assertNotIn(sec.decode(), open(name + ".pub").read())
        before = open(name + ".key").read()
        r = subprocess.run([CLI, "keygen", name], capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(open(name + ".key").read(), before)
        self.assertEqual(subprocess.run([CLI, "keygen"], capture_output=True).returncode, 64)

    def start_78(self, config):
        """Both --check-config and a real start must refuse with exit 78."""
        path = os.path.join(self.dir, "newsalertd.yaml")
        src = os.environ["NA_SOURCE_DIR"]
        with open(path, "w") as f:
            f.write("rules:\n  dir: %s/config/rules\n  actors: %s/config/actors.yaml\n"
                    % (src, src))
            f.write(config)
        errs = []
        for extra in (["--check-config"], []):
            r = subprocess.run([os.path.join(BIN, "newsalertd"), "-c", path,
                                "--feed", "ipc://%s/feed" % self.dir,
                                "--publish", "ipc://%s/alerts" % self.dir] + extra,
                               capture_output=True, text=True, timeout=WAIT)
            self.assertEqual(r.returncode, 78, r.stderr)
            errs.append(r.stderr)
        return "\n".join(errs)

    def test_7_secret_key_permissions_and_malformed_keys_exit_78(self):
        pub, sec = keygen(self.dir, "server")
        keygen(self.dir, "other")
        allow = os.path.join(self.dir, "allow")
        os.mkdir(allow)
        key = os.path.join(self.dir, "server.key")
        publish = "publish:\n  curve:\n    secret_key: %s\n    allow_dir: %s\n"
        for mode in (0o640, 0o604, 0o660):
            os.chmod(key, mode)
            err = self.start_78(publish % (key, allow))
            self.assertIn("%s: holds a secret key but its mode is %04o" % (key, mode), err)
            self.assertNotIn(sec.decode(), err)
        os.chmod(key, 0o600)
        # Malformed: a key one character short, a character outside Z85.
        text = open(key).read()
        bad = os.path.join(self.dir, "bad.key")
        for broken in (text.replace(pub.decode(), pub.decode()[:-1]),
                       text.replace(pub.decode(), "~" + pub.decode()[1:])):
            fd = os.open(bad, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, broken.encode())
            os.close(fd)
            err = self.start_78(publish % (bad, allow))
            self.assertRegex(err, re.escape(bad) + r":\d+: public-key: expected 40 Z85")
            self.assertNotIn(sec.decode(), err)
        # A secret key that is not the public key's.
        other_pub = zmq.auth.load_certificate(os.path.join(self.dir, "other.pub"))[0]
        fd = os.open(bad, os.O_WRONLY | os.O_TRUNC)
        os.write(fd, text.replace(pub.decode(), other_pub.decode()).encode())
        os.close(fd)
        err = self.start_78(publish % (bad, allow))
        self.assertIn("does not match the public-key", err)
        # A public certificate where the secret one is needed.
        err = self.start_78(publish % (os.path.join(self.dir, "server.pub"), allow))
        self.assertIn("no curve secret-key", err)
        # The allowlist: missing, or with a malformed certificate.
        err = self.start_78(publish % (key, os.path.join(self.dir, "nowhere")))
        self.assertIn("nowhere: publish.curve.allow_dir: No such file or directory", err)
        with open(os.path.join(allow, "x.pub"), "w") as f:
            f.write("not a certificate\n")
        err = self.start_78(publish % (key, allow))
        self.assertIn("x.pub:1: expected 'name = \"value\"'", err)
        with open(os.path.join(allow, "x.pub"), "w") as f:
            f.write("metadata\n    name = \"x\"\n")
        err = self.start_78(publish % (key, allow))
        self.assertIn("x.pub: no curve public-key", err)
        os.unlink(os.path.join(allow, "x.pub"))
        # Half a CURVE setup is a config error, not a silent plain socket.
        err = self.start_78("publish:\n  curve:\n    secret_key: %s\n" % key)
        self.assertIn("publish.curve.secret_key and publish.curve.allow_dir go together", err)
        err = self.start_78("feed:\n  curve:\n    server_key: %s\n"
                            % os.path.join(self.dir, "server.pub"))
        self.assertIn("feed.curve.server_key and feed.curve.secret_key go together", err)
        # The feed's keys get the same checks.
        os.chmod(key, 0o644)
        err = self.start_78("feed:\n  curve:\n    server_key: %s\n    secret_key: %s\n"
                            % (os.path.join(self.dir, "other.pub"), key))
        self.assertIn("mode is 0644", err)


class TestPlainWarning(unittest.TestCase):
    def run_briefly(self, *args, config=""):
        d = Daemon(extra_config=config)
        try:
            log = open(d.log_path, "w")
            p = subprocess.Popen([os.path.join(BIN, "newsalertd"), "-c", d.config] + list(args),
                                 stderr=log)
            d.proc, d.log = p, log
            d.wait_log("ready:")
            self.assertEqual(d.stop(), 0)
            return d.text()
        finally:
            d.cleanup()

    def test_non_loopback_endpoints_without_curve_are_warned_about(self):
        d = tempfile.mkdtemp(prefix="na-plain-")
        try:
            log = self.run_briefly("--feed", "tcp://192.0.2.1:5555", "--feed", "ipc://%s/f" % d,
                                   "--publish", "tcp://0.0.0.0:*")
            self.assertIn("warning: feed endpoint tcp://192.0.2.1:5555 is not loopback and "
                          "CURVE is off", log)
            self.assertIn("warning: publish endpoint tcp://0.0.0.0:* is not loopback", log)
            self.assertNotIn("ipc://%s/f is not loopback" % d, log)
            log = self.run_briefly("--feed", "tcp://127.0.0.2:5555", "--feed", "tcp://[::1]:5555",
                                   "--feed", "tcp://localhost:5555",
                                   "--publish", "tcp://127.0.0.1:*")
            self.assertNotIn("not loopback", log)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
