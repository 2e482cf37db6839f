"""`newsalert proxy` between a real newsalertd and real consumers: alerts
byte for byte as they come direct, tag subscriptions honoured upstream,
catch-up relayed to the daemon per consumer, `newsalert tail` and the C
client through it, a consumer that stops reading repaired through it,
CURVE on both sides, its counters, its usage errors and its stop."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

import zmq
import zmq.auth

from harness import (BIN, NEGATIVES, POSITIVE, WAIT, Daemon, Feed, article, catchup_pb2,
                     alert_pb2, check_clean_exit, load_json, start_consumer, wait_quiet)

CLI = os.path.join(BIN, "newsalert")
PROBE = os.path.join(BIN, "na-client-probe")
LONG = 6 * WAIT
# Long enough for a refused connection to have delivered, had it not been refused.
QUIET = 1.0
ALERT = catchup_pb2.CatchupReply.KIND_ALERT


class Proxy:
    """A `newsalert proxy` process for one daemon, on ipc endpoints of its own
    directory, with /metrics on a port the kernel picks."""

    def __init__(self, daemon, *args, upstream_alerts=None, upstream_catchup=None):
        self.dir = tempfile.mkdtemp(prefix="na-proxy-")
        self.alerts = "ipc://%s/alerts" % self.dir
        self.catchup = "ipc://%s/catchup" % self.dir
        self.log_path = os.path.join(self.dir, "proxy.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [CLI, "proxy", "--alerts", upstream_alerts or daemon.publish,
             "--catchup", upstream_catchup or daemon.catchup,
             "--bind-alerts", self.alerts, "--bind-catchup", self.catchup,
             "--metrics", "127.0.0.1:0"] + list(args), stderr=self.log)
        self.wait_log("newsalert proxy: running")
        self.metrics_url = re.search(r"metrics: (http://\S+/metrics)", self.text()).group(1)

    def text(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, needle, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError("%r not in the proxy's log:\n%s" % (needle, self.text()))

    def metrics(self):
        """{(name, labels): value} of /metrics."""
        with urllib.request.urlopen(self.metrics_url, timeout=WAIT) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            m = re.match(r"([a-z_]+)(\{[^}]*\})? (\S+)$", line)
            assert m, line
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("newsalert proxy did not stop on SIGTERM")
        return self.proc.returncode

    def cleanup(self):
        try:
            rc = self.stop()
            check_clean_exit("newsalert proxy", rc, self.text())
        finally:
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)


def raw_sub(ctx, endpoint, prefix="alert.", keys=None, server_pub=None):
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVHWM, 0)
    if server_pub is not None:
        pub, sec = keys if keys else zmq.curve_keypair()
        s.curve_serverkey, s.curve_publickey, s.curve_secretkey = server_pub, pub, sec
    s.setsockopt(zmq.SUBSCRIBE, prefix.encode())
    s.connect(endpoint)
    return s


def recv_frames(sock, timeout):
    if not sock.poll(int(timeout * 1000)):
        return None
    return sock.recv_multipart()


def article_id(frames):
    a = alert_pb2.Alert()
    a.ParseFromString(frames[-1])
    return a.article_id


def frames_until(sock, marker, timeout=WAIT):
    """Every message up to and including the first alert for article marker."""
    got, deadline = [], time.monotonic() + timeout
    while True:
        f = recv_frames(sock, max(0.0, deadline - time.monotonic()))
        if f is None:
            raise AssertionError("no alert for %s; got %d messages" % (marker, len(got)))
        got.append(f)
        if f[0] != b"~hb" and article_id(f) == marker:
            return got


def catchup(ctx, endpoint, since=0, tags=(), keys=None, server_pub=None, dealer=None):
    """Every reply to one request, as bytes, up to the END/GONE/ERROR."""
    d = dealer or ctx.socket(zmq.DEALER)
    if dealer is None:
        d.setsockopt(zmq.LINGER, 0)
        if server_pub is not None:
            pub, sec = keys if keys else zmq.curve_keypair()
            d.curve_serverkey, d.curve_publickey, d.curve_secretkey = server_pub, pub, sec
        d.connect(endpoint)
    d.send(catchup_pb2.CatchupRequest(since_seq=since, tags=list(tags)).SerializeToString())
    replies = []
    try:
        while True:
            if not d.poll(int(WAIT * 1000)):
                raise AssertionError("no catch-up reply from %s after %d" % (endpoint,
                                                                            len(replies)))
            raw = d.recv()
            replies.append(raw)
            r = catchup_pb2.CatchupReply()
            r.ParseFromString(raw)
            if r.kind != ALERT:
                return replies
    finally:
        if dealer is None:
            d.close(0)


def kinds(replies):
    out = []
    for raw in replies:
        r = catchup_pb2.CatchupReply()
        r.ParseFromString(raw)
        out.append(r)
    return out


class ProxyTest(unittest.TestCase):
    """A daemon, its feed, and a proxy in front of it."""

    extra_config = ""
    proxy_args = ()

    def setUp(self):
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.term)
        self.socks = []
        self.addCleanup(lambda: [s.close(0) for s in self.socks])
        self.daemon = Daemon(extra_config=self.extra_config)
        self.addCleanup(self.daemon.cleanup)
        self.feed = Feed(self.ctx, self.daemon.feed)
        self.socks.append(self.feed.sock)
        self.daemon.start()
        self.feed.wait_subscriber()
        self.proxy = self.start_proxy()
        self.probes = 0

    def start_proxy(self, *args, **kw):
        p = Proxy(self.daemon, *(tuple(self.proxy_args) + args), **kw)
        self.addCleanup(p.cleanup)
        return p

    def sub(self, endpoint, prefix="alert.", **kw):
        s = raw_sub(self.ctx, endpoint, prefix, **kw)
        self.socks.append(s)
        return s

    def sync(self, *socks):
        """Probe articles until every socket has received one (its
        subscription has reached the daemon, through the proxy or not), then
        a marker that each one reads up to, so all start level."""
        pending = set(range(len(socks)))
        deadline = time.monotonic() + WAIT
        while pending:
            self.assertLess(time.monotonic(), deadline, "subscribers never synced")
            self.probes += 1
            self.feed.send(article("probe-%d" % self.probes, *POSITIVE))
            for i in list(pending):
                if recv_frames(socks[i], 0.2) is not None:
                    pending.discard(i)
        marker = "sync-%d" % self.probes
        self.feed.send(article(marker, *POSITIVE))
        for s in socks:
            frames_until(s, marker)


class TestRelay(ProxyTest):
    def test_alerts_arrive_byte_for_byte_as_direct(self):
        direct, proxied = self.sub(self.daemon.publish), self.sub(self.proxy.alerts)
        self.sync(direct, proxied)
        for i in range(60):
            if i % 3 == 2:
                self.feed.send(article("n-%d" % i, *NEGATIVES[i % len(NEGATIVES)]))
            else:
                self.feed.send(article("p-%d" % i, *POSITIVE))
        self.feed.send(article("end", *POSITIVE))
        want = frames_until(direct, "end")
        got = frames_until(proxied, "end")
        self.assertEqual(len(want), 40 * 3 + 3, "three tags for each positive")
        self.assertEqual(got, want)

    def test_heartbeats_pass_with_the_daemons_epoch(self):
        direct, proxied = self.sub(self.daemon.publish, "~hb"), self.sub(self.proxy.alerts, "~hb")
        hbs = []
        for s in (direct, proxied):
            f = recv_frames(s, WAIT)
            self.assertIsNotNone(f, "no heartbeat")
            self.assertEqual(f[0], b"~hb")
            hb = alert_pb2.Heartbeat()
            hb.ParseFromString(f[1])
            hbs.append(hb)
        self.assertNotEqual(hbs[0].epoch, 0)
        self.assertEqual(hbs[1].epoch, hbs[0].epoch, "a proxy relays, it never renumbers")

    def test_a_tag_subscription_is_honoured_through_the_proxy(self):
        every = self.sub(self.proxy.alerts)
        aid = self.sub(self.proxy.alerts, "alert.aid")
        direct_aid = self.sub(self.daemon.publish, "alert.aid")
        self.sync(every, aid, direct_aid)
        for i in range(20):
            self.feed.send(article("t-%d" % i, *POSITIVE))
        self.feed.send(article("end", *POSITIVE))
        got = frames_until(aid, "end")
        self.assertEqual({f[0] for f in got}, {b"alert.aid"})
        self.assertEqual(got, frames_until(direct_aid, "end"))
        self.assertEqual({f[0] for f in frames_until(every, "end")},
                         {b"alert.aid", b"alert.alliance", b"alert.summit"})

    def test_catch_up_through_the_proxy_is_the_daemons(self):
        direct = self.sub(self.daemon.publish)
        self.sync(direct)
        for i in range(30):
            self.feed.send(article("c-%d" % i, *POSITIVE))
        self.feed.send(article("end", *POSITIVE))
        frames_until(direct, "end")
        want = catchup(self.ctx, self.daemon.catchup)
        got = catchup(self.ctx, self.proxy.catchup)
        self.assertGreater(len(want), 31)
        self.assertEqual(got, want)
        # With tags and a range, and a refusal passed through as the daemon's.
        self.assertEqual(catchup(self.ctx, self.proxy.catchup, since=10, tags=["aid"]),
                         catchup(self.ctx, self.daemon.catchup, since=10, tags=["aid"]))
        refused = kinds(catchup(self.ctx, self.proxy.catchup, tags=["no-such-tag"]))
        self.assertEqual(refused[-1].kind, catchup_pb2.CatchupReply.KIND_ERROR)
        self.assertIn("unknown tag", refused[-1].error)

    def test_consumers_of_one_proxy_keep_their_own_catch_up_streams(self):
        """The daemon keeps one stream per ROUTER identity; two consumers
        through one proxy must not replace each other's."""
        direct = self.sub(self.daemon.publish)
        self.sync(direct)
        for i in range(300):
            self.feed.send(article("k-%d" % i, *POSITIVE))
        self.feed.send(article("end", *POSITIVE))
        frames_until(direct, "end")
        want = catchup(self.ctx, self.daemon.catchup)
        dealers = []
        for _ in range(2):
            d = self.ctx.socket(zmq.DEALER)
            d.setsockopt(zmq.LINGER, 0)
            d.connect(self.proxy.catchup)
            self.socks.append(d)
            dealers.append(d)
        req = catchup_pb2.CatchupRequest(since_seq=0).SerializeToString()
        for d in dealers:
            d.send(req)
        got = [[], []]
        deadline = time.monotonic() + LONG
        while any(not g or kinds(g[-1:])[0].kind == ALERT for g in got):
            self.assertLess(time.monotonic(), deadline, "the streams never ended")
            for i, d in enumerate(dealers):
                while d.poll(0):
                    got[i].append(d.recv())
            time.sleep(0.01)
        self.assertEqual(got[0], want)
        self.assertEqual(got[1], want)

    def test_counters_move_and_match_libzmqs_at_the_stop(self):
        proxied = self.sub(self.proxy.alerts)
        self.sync(proxied)
        before = self.proxy.metrics()
        for i in range(25):
            self.feed.send(article("m-%d" % i, *POSITIVE))
        self.feed.send(article("end", *POSITIVE))
        frames_until(proxied, "end")
        catchup(self.ctx, self.proxy.catchup, since=1)
        m = self.proxy.metrics()
        down = ("newsalert_proxy_messages_total", '{direction="down"}')
        self.assertGreaterEqual(m[down] - before[down], 26 * 3)
        self.assertGreaterEqual(m[("newsalert_proxy_alerts_total", "")]
                                - before[("newsalert_proxy_alerts_total", "")], 26 * 3)
        self.assertGreater(m[("newsalert_proxy_bytes_total", '{direction="down"}')],
                           before[("newsalert_proxy_bytes_total", '{direction="down"}')])
        self.assertGreaterEqual(m[("newsalert_proxy_messages_total", '{direction="up"}')], 1)
        self.assertGreaterEqual(
            m[("newsalert_proxy_subscriptions_total", '{kind="subscribe"}')], 1)
        self.assertEqual(m[("newsalert_proxy_catchup_messages_total", '{direction="up"}')], 1)
        self.assertGreater(m[("newsalert_proxy_catchup_messages_total",
                               '{direction="down"}')], 26)
        self.assertEqual(m[("newsalert_proxy_catchup_clients", "")], 1)
        # The heartbeat passes at publish.heartbeat_ms (1 s by default), once
        # a consumer subscribes to it.
        self.sub(self.proxy.alerts, "~hb")
        deadline = time.monotonic() + WAIT
        while ("newsalert_proxy_heartbeat_age_seconds", "") not in m:
            self.assertLess(time.monotonic(), deadline, "no heartbeat counted")
            time.sleep(0.2)
            m = self.proxy.metrics()
        self.assertGreater(m[("newsalert_proxy_heartbeats_total", "")], 0)
        if shutil.which("promtool"):
            with urllib.request.urlopen(self.proxy.metrics_url, timeout=WAIT) as r:
                lint = subprocess.run(["promtool", "check", "metrics"], input=r.read(),
                                      capture_output=True, timeout=WAIT)
            self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
        # SIGTERM: a clean stop, whose summary agrees with libzmq's count.
        self.assertEqual(self.proxy.stop(), 0, self.proxy.text())
        text = self.proxy.text()
        ours = int(re.search(r"stopped: (\d+) messages down", text).group(1))
        theirs = int(re.search(r"libzmq: (\d+) messages from the daemon", text).group(1))
        self.assertGreaterEqual(ours, 26 * 3)
        self.assertEqual(ours, theirs, text)
        ups = int(re.search(r"messages down .*?, (\d+) up;", text).group(1))
        self.assertEqual(ups, int(re.search(r"(\d+) to it", text).group(1)), text)
        self.assertNotIn("warning: the capture counted", text)


class TestTail(ProxyTest):
    def test_tail_through_the_proxy_prints_what_tail_direct_does(self):
        direct = self.sub(self.daemon.publish)
        self.sync(direct)
        for i in range(15):
            self.feed.send(article("tl-%d" % i, *POSITIVE))
        self.feed.send(article("end", *POSITIVE))
        frames_until(direct, "end")
        runs = []
        for alerts, cu in ((self.daemon.publish, self.daemon.catchup),
                           (self.proxy.alerts, self.proxy.catchup)):
            r = subprocess.run([CLI, "tail", "--connect", alerts, "--catchup", cu,
                                "--since", "0", "--json", "--timeout", "1.5"],
                               capture_output=True, text=True, timeout=LONG)
            self.assertEqual(r.returncode, 0, r.stderr)
            runs.append([load_json(line) for line in r.stdout.splitlines()])
        ids = [a["article_id"] for a in runs[1]]
        self.assertIn("tl-0", ids)
        self.assertEqual(ids[-1], "end")
        self.assertEqual(runs[1], runs[0])

    def test_live_tail_through_the_proxy(self):
        out = os.path.join(self.proxy.dir, "tail.jsonl")
        tail = start_consumer(self.feed, out, [CLI, "tail", "--connect", self.proxy.alerts,
                                               "--catchup", self.proxy.catchup, "--json",
                                               "--tag", "summit"], last_probe=True)
        self.addCleanup(lambda: tail.poll() is None and tail.kill())
        for i in range(10):
            self.feed.send(article("lv-%d" % i, *POSITIVE))
        deadline = time.monotonic() + WAIT
        while True:
            with open(out) as f:
                alerts = [load_json(line) for line in f if line.strip()]
            if any(a["article_id"] == "lv-9" for a in alerts):
                break
            self.assertLess(time.monotonic(), deadline, "tail never printed lv-9")
            time.sleep(0.05)
        live = [a for a in alerts if a["article_id"].startswith("lv-")]
        self.assertEqual([a["article_id"] for a in live], ["lv-%d" % i for i in range(10)])
        self.assertEqual({a["topic"] for a in live}, {"alert.summit"})
        tail.send_signal(signal.SIGINT)
        tail.wait(WAIT)
        self.assertEqual(tail.returncode, 0)


class TestSlowConsumer(ProxyTest):
    """A consumer of the proxy that stops reading loses alerts at the
    proxy's --sndhwm, and in the end has every one of them, repaired
    through the proxy's catch-up: the same as a full catch-up direct."""

    proxy_args = ("--sndhwm", "16")
    n = 3000

    def test_a_stopped_consumer_repairs_through_the_proxy(self):
        out = os.path.join(self.proxy.dir, "probe.txt")
        probe = start_consumer(self.feed, out, [PROBE, self.proxy.alerts, self.proxy.catchup,
                                                "-", "1"], stderr=subprocess.PIPE)
        self.addCleanup(lambda: probe.poll() is None and probe.kill())
        probe.send_signal(signal.SIGSTOP)
        for i in range(self.n):
            self.feed.send(article("s-%d" % i, *POSITIVE))
        # All of them in the daemon's journal while the consumer sleeps.
        last = "s-%d" % (self.n - 1)
        deadline = time.monotonic() + LONG
        while last not in [r.alert.article_id for r in kinds(
                catchup(self.ctx, self.daemon.catchup, since=self.n - 10))]:
            self.assertLess(time.monotonic(), deadline, "the daemon never had " + last)
            time.sleep(0.2)
        probe.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + LONG
        k = 0
        while True:
            k += 1
            self.feed.send(article("end-%d" % k, *POSITIVE))
            with open(out) as f:
                if "end-" in f.read():
                    break
            self.assertLess(time.monotonic(), deadline, "the consumer never caught up")
            time.sleep(0.5)
        wait_quiet(out)
        probe.send_signal(signal.SIGTERM)
        _, err = probe.communicate(timeout=WAIT)
        check_clean_exit("na-client-probe", probe.returncode, err)
        with open(out) as f:
            lines = [(int(s), int(e), i) for s, e, i in (line.split() for line in f)]
        seqs = [s for s, _, _ in lines]
        self.assertEqual(seqs, sorted(set(seqs)), "out of order or repeated")
        # Everything the daemon journalled from the consumer's first alert on.
        full = [r.alert for r in kinds(catchup(self.ctx, self.daemon.catchup,
                                               since=seqs[0] - 1)) if r.kind == ALERT]
        full = [(a.seq, a.article_id) for a in full if a.seq <= seqs[-1]]
        self.assertEqual([(s, i) for s, _, i in lines], full)
        stats = dict(kv.split("=") for kv in err.split("stats ")[1].split())
        self.assertGreater(int(stats["gaps"]), 0, "nothing was lost live: " + err)
        self.assertGreater(int(stats["caught_up"]), 0, err)


def keygen(directory, name):
    r = subprocess.run([CLI, "keygen", os.path.join(directory, name)],
                       capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 0, r.stderr
    return zmq.auth.load_certificate(os.path.join(directory, name + ".key"))


class TestCurve(ProxyTest):
    """CURVE on both sides: the daemon serves only the proxy's key; the
    proxy serves only alice's. mallory and a plain consumer get nothing."""

    def setUp(self):
        self.keys = tempfile.mkdtemp(prefix="na-keys-")
        self.addCleanup(shutil.rmtree, self.keys, True)
        for d in ("daemon-allow", "proxy-allow"):
            os.mkdir(os.path.join(self.keys, d))
        self.daemon_key = keygen(self.keys, "daemon")
        keygen(self.keys, "up")
        self.proxy_key = keygen(self.keys, "proxy")
        self.alice = keygen(self.keys, "alice")
        self.mallory = keygen(self.keys, "mallory")
        shutil.copy(os.path.join(self.keys, "up.pub"), os.path.join(self.keys, "daemon-allow"))
        shutil.copy(os.path.join(self.keys, "alice.pub"),
                    os.path.join(self.keys, "proxy-allow"))
        self.extra_config = ("publish:\n  curve:\n    secret_key: %s\n    allow_dir: %s\n"
                             % (os.path.join(self.keys, "daemon.key"),
                                os.path.join(self.keys, "daemon-allow")))
        k = lambda n: os.path.join(self.keys, n)
        self.proxy_args = ("--curve-server-key", k("daemon.pub"), "--curve-key", k("up.key"),
                           "--curve-secret-key", k("proxy.key"),
                           "--curve-allow-dir", k("proxy-allow"))
        super().setUp()

    def test_alice_is_served_and_mallory_refused(self):
        server = self.proxy_key[0]
        alice = self.sub(self.proxy.alerts, keys=self.alice, server_pub=server)
        mallory = self.sub(self.proxy.alerts, keys=self.mallory, server_pub=server)
        plain = self.sub(self.proxy.alerts)
        self.sync(alice)
        self.feed.send(article("secret", *POSITIVE))
        self.assertEqual(article_id(frames_until(alice, "secret")[-1]), "secret")
        self.assertIsNone(recv_frames(mallory, QUIET))
        self.assertIsNone(recv_frames(plain, 0))
        # Catch-up through the proxy with alice's key; nothing for mallory.
        replies = kinds(catchup(self.ctx, self.proxy.catchup, keys=self.alice,
                                server_pub=server))
        self.assertIn("secret", [r.alert.article_id for r in replies if r.kind == ALERT])
        d = self.ctx.socket(zmq.DEALER)
        d.setsockopt(zmq.LINGER, 0)
        d.curve_serverkey, d.curve_publickey, d.curve_secretkey = server, *self.mallory
        d.connect(self.proxy.catchup)
        self.socks.append(d)
        d.send(catchup_pb2.CatchupRequest(since_seq=0).SerializeToString())
        self.assertFalse(d.poll(int(QUIET * 1000)))
        self.assertGreater(self.proxy.metrics()[("newsalert_proxy_auth_failures_total", "")], 0)
        self.assertIn("auth: denied", self.proxy.text())

    def test_a_proxy_whose_key_the_daemon_does_not_allow_relays_nothing(self):
        k = lambda n: os.path.join(self.keys, n)
        wrong = Proxy(self.daemon, "--curve-server-key", k("daemon.pub"),
                      "--curve-key", k("mallory.key"),
                      "--curve-secret-key", k("proxy.key"),
                      "--curve-allow-dir", k("proxy-allow"))
        self.addCleanup(wrong.cleanup)
        server = self.proxy_key[0]
        good = self.sub(self.proxy.alerts, keys=self.alice, server_pub=server)
        bad = self.sub(wrong.alerts, keys=self.alice, server_pub=server)
        self.sync(good)
        self.feed.send(article("only-good", *POSITIVE))
        frames_until(good, "only-good")
        self.assertIsNone(recv_frames(bad, QUIET))
        self.assertIn("auth: denied", self.daemon.text())


class TestUsage(unittest.TestCase):
    def run_proxy(self, *args):
        return subprocess.run([CLI, "proxy"] + list(args), capture_output=True, text=True,
                              timeout=WAIT)

    def test_help(self):
        r = self.run_proxy("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--bind-alerts", r.stdout)
        self.assertIn("proxy", self.run_proxy_list())

    def run_proxy_list(self):
        return subprocess.run([CLI, "--help"], capture_output=True, text=True).stdout

    def test_bad_arguments_exit_64_with_a_reason(self):
        d = tempfile.mkdtemp(prefix="na-proxy-usage-")
        self.addCleanup(shutil.rmtree, d, True)
        ok = ["--alerts", "ipc://%s/a" % d, "--bind-alerts", "ipc://%s/b" % d,
              "--catchup", "off", "--bind-catchup", "off"]
        with open(os.path.join(d, "not-a-key"), "w") as f:
            f.write("nothing here\n")
        cases = [
            ([], "--alerts and --bind-alerts are required"),
            (["--alerts", "ipc://%s/a" % d], "--alerts and --bind-alerts are required"),
            (["--alerts", "tcp://nohost", "--bind-alerts", "ipc://%s/b" % d,
              "--catchup", "off", "--bind-catchup", "off"], "--alerts: 'tcp://nohost'"),
            (["--alerts", "ipc://%s/a" % d, "--bind-alerts", "udp://x:1"],
             "--bind-alerts: 'udp://x:1'"),
            (ok + ["--sndhwm", "0"], "--sndhwm: expected a number from 1"),
            (ok + ["--rcvhwm", "lots"], "--rcvhwm: expected a number"),
            (ok + ["--metrics", "localhost:9"], "--metrics: expected ADDR:PORT"),
            (ok + ["--curve-secret-key", os.path.join(d, "not-a-key")],
             "--curve-secret-key and --curve-allow-dir go together"),
            (ok + ["--curve-key", os.path.join(d, "not-a-key")],
             "--curve-key needs --curve-server-key"),
            (ok + ["--curve-server-key", os.path.join(d, "not-a-key")], "not-a-key"),
            (ok + ["--curve-secret-key", os.path.join(d, "missing.key"),
                   "--curve-allow-dir", d], "missing.key"),
            (["--alerts", "ipc://%s/a" % d, "--bind-alerts", "ipc://%s/b" % d],
             "--catchup: no default for"),
            (ok + ["--frobnicate"], "unrecognized option"),
            (ok + ["extra"], "unexpected argument 'extra'"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                r = self.run_proxy(*args)
                self.assertEqual(r.returncode, 64, r.stderr)
                self.assertIn(needle, r.stderr)
                self.assertTrue(r.stderr.startswith("newsalert proxy: "), r.stderr)

    def test_plain_off_the_machine_is_warned_about_and_sigint_stops_it(self):
        log = tempfile.NamedTemporaryFile(mode="w+", prefix="na-proxy-", suffix=".log")
        self.addCleanup(log.close)
        p = subprocess.Popen([CLI, "proxy", "--alerts", "ipc:///tmp/na-none/a",
                              "--bind-alerts", "tcp://*:*", "--catchup", "off",
                              "--bind-catchup", "off"], stderr=log)
        deadline = time.monotonic() + WAIT
        while "newsalert proxy: running" not in open(log.name).read():
            self.assertIsNone(p.poll(), open(log.name).read())
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        self.assertEqual(p.wait(WAIT), 0)
        text = open(log.name).read()
        self.assertIn("warning: tcp://*:* is not loopback and CURVE is off", text)
        self.assertIn("warning: no catch-up relay", text)
        self.assertIn("newsalert proxy: stopped:", text)

    def test_a_bind_that_fails_is_a_runtime_failure(self):
        r = self.run_proxy("--alerts", "ipc:///tmp/na-none/a", "--bind-alerts",
                           "ipc:///nonexistent-dir/alerts", "--catchup", "off",
                           "--bind-catchup", "off")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot bind ipc:///nonexistent-dir/alerts", r.stderr)


if __name__ == "__main__":
    unittest.main()
