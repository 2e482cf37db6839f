"""newsalertd end to end: real process, real sockets, real protobuf bytes."""

import signal
import subprocess
import tempfile
import os
import shutil
import re
import time
import unittest

from harness import (BIN, NEGATIVES, POSITIVE, WAIT, DaemonTest, Daemon, alert_pb2,  # noqa: F401
                     article, check_clean_exit, seed_article)


class TestTopics(DaemonTest):
    def test_seed_article_reaches_each_tag_subscriber_with_evidence(self):
        self.feed.send(seed_article("seed-1"))
        seqs = set()
        for tag in self.tags:
            topic, a = self.subs[tag].recv_until("seed-1")[-1]
            self.assertEqual(topic, "alert." + tag)
            self.assertEqual(a.topic, topic)
            self.assertEqual(sorted(t.tag for t in a.tags), ["aid", "alliance", "summit"])
            for t in a.tags:
                self.assertGreaterEqual(t.score, t.threshold)
                self.assertTrue(0.5 <= t.confidence <= 1.0)
                self.assertTrue(t.evidence, "no evidence for " + t.tag)
                for e in t.evidence:
                    text = a.headline if e.field == alert_pb2.FIELD_HEADLINE else None
                    if text is not None:
                        self.assertEqual(text.encode()[e.start:e.end].decode(), e.sentence)
                    self.assertIn(e.term, e.sentence)
            codes = {x.code for x in a.actors}
            self.assertTrue({"NATO", "USA", "UKR", "RUS"} <= codes, codes)
            seqs.add(a.seq)
        self.assertEqual(len(seqs), 1, "one article, one global seq across its topics")

    def test_negatives_produce_nothing(self):
        for i, (h, b) in enumerate(NEGATIVES):
            self.feed.send(article("neg-%d" % i, h, b))
        self.feed.send(article("after-negatives", *POSITIVE))
        for tag in self.tags:
            got = self.subs[tag].recv_until("after-negatives")
            self.assertEqual([a.article_id for _, a in got], ["after-negatives"])

    def test_each_topic_numbers_its_messages_without_gaps(self):
        ids = ["n-%d" % i for i in range(20)]
        for i in ids:
            self.feed.send(article(i, *POSITIVE))
        for tag in self.tags:
            got = self.subs[tag].recv_until(ids[-1])
            topic_seqs = [a.topic_seq for _, a in got]
            self.assertEqual(topic_seqs, list(range(topic_seqs[0], topic_seqs[0] + len(got))))
            seqs = [a.seq for _, a in got]
            self.assertEqual(seqs, sorted(seqs))

    def test_single_frame_articles_are_accepted(self):
        self.feed.send_frames([article("single", *POSITIVE)])
        self.assertEqual(self.subs["aid"].recv_until("single")[-1][1].article_id, "single")


MALFORMED = [
    ("malformed_protobuf", [b"news", b"\xff\xff\xff\xff not a protobuf"]),
    ("missing_id", [b"news", article("", *POSITIVE)]),
    ("empty_text", [b"news", article("empty", "", "")]),
    ("invalid_utf8", [b"news", article("bad-utf8", "headline", "body \x01\x01").replace(
        b"body \x01\x01", b"body \xc3\x28")]),
    ("frame_count", [b"news", b"extra", article("three-frames", *POSITIVE)]),
    # Over max_body_bytes (512 KiB) but under the socket's hard cap.
    ("oversize", [b"news", article("big", "big", "aid " * 140000)]),
    ("too_many_authors", [b"news", article("authors", *POSITIVE, authors=["a"] * 100)]),
]


class TestBadInput(DaemonTest):
    def test_each_malformed_message_is_rejected_counted_and_the_next_one_served(self):
        for reason, frames in MALFORMED:
            self.feed.send_frames(frames)
            ok = "after-" + reason
            self.feed.send(article(ok, *POSITIVE))
            got = self.subs["aid"].recv_until(ok)
            self.assertEqual([a.article_id for _, a in got], [ok], reason)
        self.assertEqual(self.daemon.stop(), 0)
        log = self.daemon.text()
        for reason, _ in MALFORMED:
            self.assertIn("stopped: rejected %s: 1\n" % reason, log)
            self.assertIn("rejected (%s)" % reason, log)


class TestBurst(DaemonTest):
    tags = ("aid",)

    def test_burst_while_the_loop_is_stopped_is_fully_processed(self):
        # A stopped process is the busiest loop there is: 10,000 articles
        # queue up in the socket and must all come out once it runs again.
        self.daemon.signal(signal.SIGSTOP)
        n = 10000
        for i in range(n):
            self.feed.send(article("b-%d" % i, *POSITIVE))
        self.daemon.signal(signal.SIGCONT)
        got = self.subs["aid"].recv_until("b-%d" % (n - 1), timeout=120)
        burst = [a.article_id for _, a in got if a.article_id.startswith("b-")]
        self.assertEqual(burst, ["b-%d" % i for i in range(n)])


class TestGracefulStop(DaemonTest):
    tags = ("aid",)

    def test_articles_received_before_sigterm_are_published(self):
        self.daemon.signal(signal.SIGSTOP)
        n = 500
        for i in range(n):
            self.feed.send(article("s-%d" % i, *POSITIVE))
        # The daemon gets SIGTERM while its socket holds all 500 articles.
        self.daemon.signal(signal.SIGTERM)
        self.daemon.signal(signal.SIGCONT)
        got = self.subs["aid"].recv_until("s-%d" % (n - 1))
        self.assertEqual(len([1 for _, a in got if a.article_id.startswith("s-")]), n)
        self.assertEqual(self.daemon.proc.wait(WAIT), 0)


class TestReload(DaemonTest):
    # alliance too: the positive still fires it while aid is switched off,
    # which tells when the daemon has handled that article.
    tags = ("aid", "alliance")

    def setUp(self):
        import shutil
        import tempfile
        self.cfg = tempfile.mkdtemp(prefix="na-rules-")
        shutil.copytree(os.path.join(os.environ["NA_SOURCE_DIR"], "config", "rules"),
                        os.path.join(self.cfg, "rules"))
        shutil.copy(os.path.join(os.environ["NA_SOURCE_DIR"], "config", "actors.yaml"), self.cfg)
        self.config_dir = self.cfg
        super().setUp()

    def test_bad_rules_on_sighup_keep_the_old_ones_and_good_rules_apply(self):
        import re
        aid = os.path.join(self.cfg, "rules", "aid.yaml")
        original = open(aid).read()

        def with_threshold(value):
            return re.sub(r"(?m)^threshold: .*$", "threshold: " + value, original)
        with open(aid, "w") as f:
            f.write(with_threshold("-1"))
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("reload failed")
        self.assertIn("aid.yaml", self.daemon.text())
        self.feed.send(article("after-bad-reload", *POSITIVE))
        self.subs["aid"].recv_until("after-bad-reload")
        # A valid change: a very high threshold, so the positive stops firing.
        with open(aid, "w") as f:
            f.write(with_threshold("1000"))
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("reloaded:", 1)
        self.feed.send(article("not-aid-any-more", *POSITIVE))
        # Only once it has been tagged may the rules change again; otherwise
        # the next reload can overtake it in the daemon's loop.
        self.subs["alliance"].recv_until("not-aid-any-more")
        with open(aid, "w") as f:
            f.write(original)
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("reloaded:", 2)
        self.feed.send(article("aid-again", *POSITIVE))
        got = self.subs["aid"].recv_until("aid-again")
        self.assertEqual([a.article_id for _, a in got], ["aid-again"])


class TestModelReload(DaemonTest):
    """The model beside the rules is in service, named in every alert, and a
    SIGHUP reloads it like the rules: a damaged one is refused and the
    running one kept, a new one replaces it."""

    tags = ("aid",)

    def setUp(self):
        import shutil
        src = os.path.join(os.environ["NA_SOURCE_DIR"], "config")
        self.cfg = tempfile.mkdtemp(prefix="na-model-")
        shutil.copytree(os.path.join(src, "rules"), os.path.join(self.cfg, "rules"))
        shutil.copy(os.path.join(src, "actors.yaml"), self.cfg)
        shutil.copy(os.path.join(src, "tagger.model"), self.cfg)
        self.model = os.path.join(self.cfg, "tagger.model")
        self.config_dir = self.cfg
        super().setUp()

    def tearDown(self):
        import shutil
        super().tearDown()
        shutil.rmtree(self.cfg, ignore_errors=True)

    def version_of(self, article_id):
        self.feed.send(article(article_id, *POSITIVE))
        _, alert = self.subs["aid"].recv_until(article_id)[-1]
        return alert.model

    def test_a_model_reloads_and_a_damaged_one_is_refused(self):
        first = re.search(r"model ([0-9a-f]{16}):", self.daemon.text())
        self.assertIsNotNone(first, self.daemon.text())
        self.assertEqual(self.version_of("before"), first.group(1))
        # Damaged: cut in half. The reload fails and names the file.
        good = open(self.model, "rb").read()
        with open(self.model, "wb") as f:
            f.write(good[:len(good) // 2])
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("reload failed")
        self.assertIn("tagger.model: damaged or truncated", self.daemon.text())
        self.assertEqual(self.version_of("after-bad"), first.group(1))
        # A model trained otherwise (n-grams in at least 5 train articles).
        corpus = os.path.join(os.environ["NA_SOURCE_DIR"], "tests", "corpus", "labelled.jsonl")
        r = subprocess.run([os.path.join(BIN, "newsalert"), "train", corpus, "-q",
                            "--rules", os.path.join(self.cfg, "rules"), "--min-df", "5",
                            "-o", self.model], capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("reloaded:")
        second = re.search(r"reloaded: .* model ([0-9a-f]{16})", self.daemon.text())
        self.assertIsNotNone(second, self.daemon.text())
        self.assertNotEqual(second.group(1), first.group(1))
        self.assertEqual(self.version_of("after-good"), second.group(1))


class TestSighupDuringStart(unittest.TestCase):
    def test_a_sighup_before_the_daemon_is_up_is_a_reload_once_it_is(self):
        # A fresh state directory: the first start compiles the rules, which
        # takes a few hundred milliseconds before the loop's handler exists.
        d = Daemon()
        self.addCleanup(d.cleanup)
        d.start()
        deadline = time.monotonic() + WAIT
        blocked = False
        while not blocked and time.monotonic() < deadline and d.proc.poll() is None:
            try:
                with open("/proc/%d/status" % d.proc.pid) as f:
                    mask = re.search(r"^SigBlk:\s*([0-9a-f]+)", f.read(), re.M)
            except OSError:
                break
            blocked = mask is not None and int(mask.group(1), 16) & (1 << (signal.SIGHUP - 1))
            if not blocked:
                time.sleep(0.001)
        self.assertTrue(blocked, "SIGHUP was never held back during start-up:\n" + d.text())
        self.assertNotIn("ready:", d.text())
        d.signal(signal.SIGHUP)
        d.wait_log("ready:")
        d.wait_log("reloaded:")
        self.assertIsNone(d.proc.poll())
        self.assertEqual(d.stop(), 0)


class TestCommandLine(unittest.TestCase):
    def run_daemon(self, *args):
        r = subprocess.run([os.path.join(BIN, "newsalertd")] + list(args),
                           capture_output=True, text=True, timeout=WAIT)
        check_clean_exit("newsalertd " + " ".join(args), r.returncode, r.stderr)
        return r

    def test_help_version_and_usage_errors(self):
        r = self.run_daemon("--help")
        self.assertEqual(r.returncode, 0)
        for opt in ("--config", "--feed", "--publish", "--check-config", "--log-level",
                    "--version", "--help"):
            self.assertIn(opt, r.stdout)
        r = self.run_daemon("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^newsalertd \d+\.\d+\.\d+")
        self.assertEqual(self.run_daemon("--no-such-option").returncode, 64)
        self.assertEqual(self.run_daemon("--log-level", "loud").returncode, 64)
        self.assertEqual(self.run_daemon("stray").returncode, 64)

    def test_check_config_accepts_the_shipped_config(self):
        r = self.run_daemon("-c", os.path.join(os.environ["NA_SOURCE_DIR"], "config",
                                               "newsalertd.yaml"), "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ok", r.stdout)

    def config_error(self, text):
        d = Daemon()
        try:
            with open(d.config, "w") as f:
                f.write(text)
            r = self.run_daemon("-c", d.config, "--check-config")
            self.assertEqual(r.returncode, 78, r.stderr)
            return r.stderr
        finally:
            d.cleanup()

    def test_bad_config_names_file_line_and_key_and_exits_78(self):
        err = self.config_error("feed:\n  endpoints: [tcp://127.0.0.1:1]\n  bogus: 1\n")
        self.assertRegex(err, r"newsalertd\.yaml:3: unknown key 'feed\.bogus'")
        err = self.config_error("feed:\n  rcvhwm: lots\n")
        self.assertRegex(err, r"newsalertd\.yaml:2: feed\.rcvhwm: expected an integer")
        err = self.config_error("feed: [unclosed\n")
        self.assertRegex(err, r"newsalertd\.yaml:\d+: ")
        err = self.config_error("rules:\n  dir: /nonexistent/rules\n")
        self.assertIn("/nonexistent/rules", err)
        err = self.config_error("log:\n  level: loud\n")
        self.assertRegex(err, r"newsalertd\.yaml:2: log\.level")

    def test_duplicate_keys_are_refused_with_both_lines(self):
        err = self.config_error("feed:\n  rcvhwm: 5\n  batch: 2\n  rcvhwm: 6\n")
        self.assertRegex(err, r"newsalertd\.yaml:4: duplicate key 'rcvhwm' \(first at line 2\)")
        err = self.config_error("log:\n  level: info\nlog:\n  level: debug\n")
        self.assertRegex(err, r"newsalertd\.yaml:3: duplicate key 'log'")

    def test_endpoints_are_checked_and_the_key_named(self):
        for text, why in (
                ("feed:\n  endpoints: [tcp://127.0.0.1:1, tpc://x:1]\n",
                 r":2: feed\.endpoints: 'tpc://x:1': transport 'tpc' is not supported"),
                ("feed:\n  endpoints: tcp://feed.example.org\n",
                 r":2: feed\.endpoints: .*the port is missing"),
                ("feed:\n  endpoints: tcp://127.0.0.1:*\n",
                 r":2: feed\.endpoints: .*a connect needs a real port"),
                ("publish:\n  endpoint: tcp://127.0.0.1:65536\n",
                 r":2: publish\.endpoint: .*not a number from 1 to 65535"),
                ("publish:\n  endpoint: tcp://::1:5556\n",
                 r":2: publish\.endpoint: .*IPv6 address goes in brackets"),
                ("catchup:\n  endpoint: inproc://catchup\n",
                 r":2: catchup\.endpoint: .*inproc:// reaches only this process"),
                ("catchup:\n  endpoint: \"ipc://\"\n",
                 r":2: catchup\.endpoint: .*the ipc path is missing")):
            self.assertRegex(self.config_error(text), r"newsalertd\.yaml" + why)
        # The command line gets the same checks, as usage errors.
        d = Daemon()
        try:
            for opt, value in (("--feed", "tcp://host"), ("--publish", "udp://x:1"),
                               ("--catchup", "tcp://a b:1")):
                r = self.run_daemon("-c", d.config, "--check-config", opt, value)
                self.assertEqual(r.returncode, 64, (opt, value, r.stderr))
                self.assertIn("newsalertd: %s: '%s': " % (opt, value), r.stderr)
            r = self.run_daemon("-c", d.config, "--check-config", "--feed", "tcp://[::1]:5555",
                                "--feed", "ipc:///run/newsalertd/feed", "--publish",
                                "tcp://*:*", "--catchup", "off")
            self.assertEqual(r.returncode, 0, r.stderr)
            # The empty catch-up endpoint is "none", as "off" is.
            r = self.run_daemon("-c", d.config, "--check-config", "--catchup", "")
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            d.cleanup()

    def test_a_config_of_only_comments_is_all_defaults(self):
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(os.environ["NA_SOURCE_DIR"], "config")
            shutil.copytree(os.path.join(src, "rules"), os.path.join(d, "rules"))
            shutil.copy(os.path.join(src, "actors.yaml"), d)
            path = os.path.join(d, "newsalertd.yaml")
            for text in ("# nothing set here\n\n# all defaults\n", "", "---\n"):
                with open(path, "w") as f:
                    f.write(text)
                r = self.run_daemon("-c", path, "--check-config")
                self.assertEqual(r.returncode, 0, (text, r.stderr))
                self.assertIn("ok (3 tags", r.stdout)

    def test_log_lines_carry_the_time_unless_journald_stamps_them(self):
        import datetime
        for journald in (False, True):
            d = Daemon()
            try:
                env = dict(os.environ)
                env.pop("JOURNAL_STREAM", None)
                if journald:
                    env["JOURNAL_STREAM"] = "8:12345"
                d.start(env=env)
                d.wait_log("ready:")
                self.assertEqual(d.stop(), 0)
                lines = d.text().splitlines()
                self.assertGreater(len(lines), 3)
                for line in lines:
                    if journald:
                        self.assertRegex(line, r"^<[3-7]>[a-z]", line)
                        continue
                    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z "
                                 r"newsalertd: (error|warning|info|debug): ", line)
                    self.assertIsNotNone(m, line)
                    when = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
                    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
                    self.assertLess(abs((now - when).total_seconds()), 300, line)
            finally:
                d.cleanup()

    def test_a_relative_state_dir_on_the_command_line_is_the_shells(self):
        d = Daemon()
        try:
            cwd = os.path.join(d.dir, "cwd")
            os.mkdir(cwd)
            log = open(d.log_path, "w")
            d.log = log
            d.proc = subprocess.Popen(d.command("--state-dir", "rel-state"), stderr=log, cwd=cwd)
            d.wait_log("ready:")
            self.assertEqual(d.stop(), 0)
            self.assertTrue(os.path.isdir(os.path.join(cwd, "rel-state", "journal")), d.text())
        finally:
            d.cleanup()

    def test_a_missing_config_file_exits_78(self):
        r = self.run_daemon("-c", "/nonexistent/newsalertd.yaml")
        self.assertEqual(r.returncode, 78)
        self.assertIn("/nonexistent/newsalertd.yaml", r.stderr)

    def test_an_empty_required_path_exits_78(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "newsalertd.yaml")
            for key, text in (("rules.dir", "rules:\n  dir:\n"),
                              ("rules.actors", "rules:\n  actors: \"\"\n"),
                              ("state.dir", "state:\n  dir: \"\"\n")):
                with open(path, "w") as f:
                    f.write(text)
                r = self.run_daemon("-c", path, "--check-config")
                self.assertEqual(r.returncode, 78, key)
                self.assertIn("%s must not be empty" % key, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
