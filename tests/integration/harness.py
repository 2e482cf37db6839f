"""Test harness for newsalertd integration tests: the real binaries, real
ZeroMQ sockets on loopback, and Article/Alert messages encoded by an
independent protobuf implementation (Python's, from the project's .proto
files compiled with protoc at test time)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import zmq

BIN = os.environ["NA_BIN"]
SRC = os.environ["NA_SOURCE_DIR"]
SEED = os.path.join(SRC, "tests", "corpus", "seed-article.txt")

_proto_dir = tempfile.mkdtemp(prefix="na-proto-")
subprocess.run(["protoc", "--proto_path=" + os.path.join(SRC, "proto"),
                "--python_out=" + _proto_dir,
                "newsalert/v1/article.proto", "newsalert/v1/alert.proto",
                "newsalert/v1/catchup.proto"], check=True)
sys.path.insert(0, _proto_dir)
from newsalert.v1 import alert_pb2, article_pb2, catchup_pb2  # noqa: E402

# Generous bounds for waiting on events; a test that needs them has failed.
# The sanitizer build sets NA_TEST_WAIT_SCALE: under ASan's allocator the
# daemon compiles its rules several times slower, and the machine is shared.
WAIT = 20.0 * float(os.environ.get("NA_TEST_WAIT_SCALE", "1"))

# In the ASan + UBSan build (NA_SANITIZE) a report ends the process, but a
# test that only looks at alerts would not notice: every test also checks
# the daemon's stderr and how it ended.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")
CRASH_SIGNALS = (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE)


def check_clean_exit(what, returncode, stderr):
    """Fails when stderr holds a sanitizer report or the process crashed."""
    for marker in SANITIZER_MARKERS:
        if marker in stderr:
            raise AssertionError("%s printed a sanitizer report:\n%s" % (what, stderr))
    if returncode is not None and -returncode in CRASH_SIGNALS:
        raise AssertionError("%s died of signal %d:\n%s" % (what, -returncode, stderr))


# The 64-bit integers in the tools' JSON (alerts, journal entries, unpacked
# articles, quarantine entries): decimal strings, as protobuf's JSON
# mapping writes int64 and uint64, so that a reader whose numbers are
# doubles cannot round them above 2^53.
JSON_INT64_KEYS = ("seq", "topic_seq", "epoch", "published_at_ms", "received_at_ms",
                   "feed_seq", "update_of", "journal_time_ms", "time_ns", "_time_ns")


def load_json(line):
    """One line of a tool's JSON output, its 64-bit fields (which must be
    strings of digits) turned into ints for the test to compare."""
    o = json.loads(line)

    def ints(d):
        for k in JSON_INT64_KEYS:
            if k in d:
                if not isinstance(d[k], str) or not d[k].lstrip("-").isdigit():
                    raise AssertionError("%s: expected a decimal string, got %r in %s"
                                         % (k, d[k], line))
                d[k] = int(d[k])
    ints(o)
    for t in o.get("topics", []) if isinstance(o.get("topics"), list) else []:
        ints(t)
    return o


def seed_article(article_id="seed-1"):
    with open(SEED, encoding="utf-8") as f:
        headline, body = f.read().split("\n", 1)
    return article(article_id, headline, body.strip("\n"))


def article(article_id, headline, body, **kw):
    a = article_pb2.Article(id=article_id, source=kw.pop("source", "test"),
                            url="https://example.org/" + article_id,
                            headline=headline, body=body, language="en",
                            published_at_ms=1720180000000, **kw)
    return a.SerializeToString()


POSITIVE = ("NATO allies pledge military aid package at Washington summit",
            "NATO leaders meeting at their annual summit in Washington pledged a new military "
            "aid package for Ukraine, including air defence systems. Allies also reaffirmed "
            "that Ukraine's path to NATO membership is irreversible.")

NEGATIVES = [
    ("Hearing aid makers report strong sales",
     "Demand for hearing aids rose again this quarter, the company said. First aid kits sold well too."),
    ("Climbers reach the summit of Everest",
     "A team of climbers reached the summit of Everest on Tuesday after a long summit push."),
    ("Star Alliance adds a new member airline",
     "The Star Alliance airline alliance said a regional carrier would join next spring."),
    ("Tech summit draws record crowd",
     "The web summit opened with keynotes on software packages and cloud tools."),
]


def merge_sections(parts):
    """Joins config fragments of top-level sections ("name:" then indented
    keys), each section once: the daemon refuses a duplicate key, so a
    test's extra "catchup:" must go into the harness's own."""
    sections, order = {}, []
    for text in parts:
        name = None
        for line in text.splitlines():
            if not line.strip():
                continue
            if not line[0].isspace():
                name = line.rstrip()
                if name not in sections:
                    sections[name] = []
                    order.append(name)
            else:
                sections[name].append(line)
    return "".join(n + "\n" + "".join(l + "\n" for l in sections[n]) for n in order)


class Daemon:
    """A newsalertd process on fresh loopback ports, with its stderr kept."""

    # The HTTP server is off unless a test asks for it: its default port is
    # fixed, and tests run in parallel.
    def __init__(self, config_dir=None, extra_config="", status_interval_ms=0,
                 metrics="off"):
        self.dir = tempfile.mkdtemp(prefix="na-test-")
        rules = os.path.join(config_dir or os.path.join(SRC, "config"), "rules")
        actors = os.path.join(config_dir or os.path.join(SRC, "config"), "actors.yaml")
        self.config = os.path.join(self.dir, "newsalertd.yaml")
        parts = ["rules:\n  dir: %s\n  actors: %s\n" % (rules, actors)]
        # The model beside the rules, as `newsalert tag --rules DIR` finds
        # it, so that the daemon and the offline tagger agree.
        model = os.path.join(os.path.dirname(rules), "tagger.model")
        if os.path.exists(model):
            parts.append("rules:\n  model: %s\n" % model)
        parts.append("log:\n  status_interval_ms: %d\n" % status_interval_ms)
        if metrics is not None:
            parts.append("metrics:\n  listen: \"%s\"\n" % metrics)
        # State and the catch-up socket of this daemon alone.
        parts.append("state:\n  dir: %s\n" % self.state_dir)
        parts.append("catchup:\n  endpoint: %s\n" % self.catchup)
        parts.append(extra_config)
        with open(self.config, "w") as f:
            f.write(merge_sections(parts))
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.proc = None

    # ipc endpoints in the test's own directory: unlike a "free" TCP port,
    # they cannot be taken by a test running in parallel.
    @property
    def feed(self):
        return "ipc://%s/feed" % self.dir

    @property
    def publish(self):
        return "ipc://%s/alerts" % self.dir

    @property
    def catchup(self):
        return "ipc://%s/catchup" % self.dir

    @property
    def state_dir(self):
        return os.path.join(self.dir, "state")

    def command(self, *args):
        return [os.path.join(BIN, "newsalertd"), "-c", self.config, "--feed", self.feed,
                "--publish", self.publish] + list(args)

    def start(self, *args, env=None, prefix=()):
        """Starts newsalertd (through the command prefix, if any)."""
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(list(prefix) + self.command(*args), stderr=self.log,
                                     env=env)
        return self

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("newsalertd did not stop on SIGTERM")
        return self.proc.returncode

    def text(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, needle, count=1, timeout=WAIT):
        """Waits until needle has appeared count times in the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.text().count(needle) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError("%r not in the daemon's log:\n%s" % (needle, self.text()))

    def cleanup(self):
        try:
            returncode = self.stop()
            if self.proc is not None:
                check_clean_exit("newsalertd", returncode, self.text())
        finally:
            if self.proc is not None:
                self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)


class Feed:
    """The upstream publisher: an XPUB, so we can see the daemon subscribe."""

    def __init__(self, ctx, endpoint):
        self.sock = ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.bind(endpoint)

    def wait_subscriber(self, timeout=WAIT):
        """Waits for a subscribe (b"\\x01..."), skipping unsubscribes."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                raise AssertionError("the daemon never subscribed to the feed")
            if self.sock.recv()[:1] == b"\x01":
                return

    def send(self, payload, topic=b"news"):
        self.sock.send_multipart([topic, payload])

    def send_frames(self, frames):
        self.sock.send_multipart(frames)


class Subscriber:
    def __init__(self, ctx, endpoint, prefix):
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        self.sock.connect(endpoint)

    def recv(self, timeout=WAIT):
        if not self.sock.poll(int(timeout * 1000)):
            return None
        frames = self.sock.recv_multipart()
        assert len(frames) == 2, frames
        a = alert_pb2.Alert()
        a.ParseFromString(frames[1])
        return frames[0].decode(), a

    def recv_until(self, article_id, timeout=WAIT):
        """Every alert up to and including the one for article_id."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(max(0.0, deadline - time.monotonic()))
            if m is None:
                raise AssertionError("no alert for %s; got %s" % (
                    article_id, [a.article_id for _, a in got]))
            got.append(m)
            if m[1].article_id == article_id:
                return got


class DaemonTest(unittest.TestCase):
    """Starts a daemon, a feed and subscribers to the three tags, and makes
    sure every subscription is live before a test begins (by sending probe
    articles until each subscriber has seen one), so nothing waits on sleep."""

    tags = ("aid", "alliance", "summit")
    extra_config = ""
    config_dir = None
    args = ()                # extra command-line arguments for newsalertd
    metrics = "off"          # metrics.listen in the config file
    status_interval_ms = 0   # log.status_interval_ms in the config file
    env = None               # environment of newsalertd (None: the test's own)
    prefix = ()              # a command that execs newsalertd (e.g. a shell)

    def start_args(self):
        """Extra newsalertd arguments; the daemon's directory exists by now."""
        return ()

    def setUp(self):
        # Cleanups rather than tearDown: they also run when setUp fails, so
        # a daemon that never came up is still stopped and checked, and no
        # open socket holds up the context at exit. They run last first.
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.term)
        self.daemon = Daemon(self.config_dir, self.extra_config, metrics=self.metrics,
                             status_interval_ms=self.status_interval_ms)
        self.addCleanup(self.daemon.cleanup)
        self.feed = Feed(self.ctx, self.daemon.feed)
        self.addCleanup(self.feed.sock.close, 0)
        self.subs = {}
        self.addCleanup(self.close_subscribers)
        self.daemon.start(*(tuple(self.args) + tuple(self.start_args())), env=self.env,
                          prefix=self.prefix)
        self.feed.wait_subscriber()
        self.subs = {t: Subscriber(self.ctx, self.daemon.publish, "alert." + t) for t in self.tags}
        self.probes = 0
        self.sync()

    def close_subscribers(self):
        for s in self.subs.values():
            s.sock.close(0)

    def sync(self):
        """Sends probes until every subscriber has received one, then drains."""
        pending = set(self.tags)
        deadline = time.monotonic() + WAIT
        while pending:
            self.assertLess(time.monotonic(), deadline, "subscribers never synced")
            self.probes += 1
            pid = "probe-%d" % self.probes
            self.feed.send(article(pid, *POSITIVE))
            for t in list(pending):
                m = self.subs[t].recv(0.2)
                if m is not None:
                    pending.discard(t)
        marker = "sync-%d" % self.probes
        self.feed.send(article(marker, *POSITIVE))
        for t in self.tags:
            self.subs[t].recv_until(marker)


def probe_article(probe_id):
    """A positive article whose id also starts its headline, so that both
    JSON and readable output show it."""
    return article(probe_id, probe_id + ": " + POSITIVE[0], POSITIVE[1])


def start_consumer(feed, out_path, cmd, stderr=None, last_probe=False):
    """Starts a consumer process (cmd) printing alerts to out_path, and returns
    it once its subscription is live: probe articles are sent on feed until it
    prints one. With last_probe, one more probe follows and is waited for, so
    that none is still in flight afterwards. Probe ids start with "probe-"
    (callers drop those alerts) and carry the process id, so that consumers
    started one after the other are not sent ids the daemon already saw."""
    out = open(out_path, "w")
    proc = subprocess.Popen(cmd, stdout=out, stderr=stderr, text=True)
    out.close()

    def printed(needle):
        with open(out_path) as f:
            return needle in f.read()

    def wait_for(needle, what):
        while not printed(needle):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError("%s never received %s" % (cmd[0], what))
            yield

    n = 0
    deadline = time.monotonic() + WAIT
    for _ in wait_for("probe-", "a probe"):
        n += 1
        feed.send(probe_article("probe-c%d-%d" % (proc.pid, n)))
        time.sleep(0.1)
    if last_probe:
        last = "probe-last-%d" % proc.pid
        feed.send(probe_article(last))
        for _ in wait_for(last, "the last probe"):
            time.sleep(0.02)
    return proc


def start_tail(daemon, feed, out_path, *args):
    """start_consumer for `newsalert tail --connect <daemon> ARGS`, with a last
    probe; args must let the probes through (no --count, no narrow --tag)."""
    return start_consumer(feed, out_path, [os.path.join(BIN, "newsalert"), "tail",
                                           "--connect", daemon.publish] + list(args),
                          last_probe=True)


def wait_quiet(path, quiet=0.5, timeout=60):
    """Waits until the file at path has not grown for `quiet` seconds."""
    size, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        now = os.path.getsize(path)
        if now != size:
            size, since = now, time.monotonic()
        time.sleep(0.05)
