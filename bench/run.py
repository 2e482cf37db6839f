#!/usr/bin/python3
"""newsalertd's benchmark: the daemon against a bare one-thread ZeroMQ
forwarder, measured side by side in one run with the same load generator
and sink, so that ratios mean something on a shared, noisy machine.

    bench/run.py [--build DIR] [--runs N] [--long N] [--quick]

Writes bench/results/latest.md (and latency.png with gnuplot). Python only
orchestrates; the generator (na-bench-gen), the sink (na-bench-sink) and the
forwarder (na-bench-forwarder) are C programs in bench/.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
WAIT = 60
# Seconds between the end of a throughput run and the daemon's RSS reading.
SETTLE = 2


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tcp():
    return "tcp://127.0.0.1:%d" % free_port()


def callgrind_total(out):
    """The instructions a callgrind output file counted."""
    with open(out) as f:
        return int(re.search(r"^summary:\s+(\d+)", f.read(), re.M).group(1))


def alert_seq(payload):
    """seq, field 1 of a packed Alert, which the daemon writes first."""
    if payload[:1] != b"\x08":
        raise ValueError("not an Alert that starts with its seq")
    seq, shift = 0, 0
    for b in payload[1:11]:
        seq |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return seq
    raise ValueError("bad varint")


def thread_cpu(pid):
    """CPU time (ns, from schedstat), the part of it spent in the kernel
    (clock ticks, from stat) and minor page faults of each thread of pid,
    summed by role: the process's first thread ("main": the daemon's loop,
    the forwarder's relay), its ZeroMQ I/O thread(s), and the rest."""
    out = {}
    for task in os.listdir("/proc/%d/task" % pid):
        base = "/proc/%d/task/%s/" % (pid, task)
        try:
            with open(base + "comm") as f:
                name = f.read().strip()
            with open(base + "schedstat") as f:
                ns = int(f.read().split()[0])
            with open(base + "stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue    # the thread ended meanwhile
        role = ("main" if int(task) == pid else
                "zmq_io" if name.startswith("ZMQbg/IO") else "other")
        acc = out.setdefault(role, [0, 0, 0, 0])
        acc[0] += ns
        acc[1] += int(fields[11])       # utime, ticks
        acc[2] += int(fields[12])       # stime, ticks
        acc[3] += int(fields[7])        # minflt
    return out


def cpu_per_article(before, after, count):
    """Per role: microseconds of CPU per article, the kernel's share of it,
    and minor page faults per article, between two thread_cpu readings."""
    res = {}
    for role, a in after.items():
        b = before.get(role, [0, 0, 0, 0])
        ticks = (a[1] - b[1]) + (a[2] - b[2])
        res[role] = {"us": (a[0] - b[0]) / 1e3 / count,
                     "kernel_share": (a[2] - b[2]) / ticks if ticks else 0.0,
                     "minflt": (a[3] - b[3]) / count}
    return res


def median_cpu(runs):
    """The median over runs of each figure of cpu_per_article."""
    roles = {role for x in runs for role in x["cpu"]}
    return {role: {k: statistics.median(x["cpu"].get(role, {}).get(k, 0) for x in runs)
                   for k in ("us", "kernel_share", "minflt")} for role in sorted(roles)}


def debian_version():
    try:
        with open("/etc/debian_version") as f:
            return "Debian " + f.read().strip()
    except OSError:
        return "unknown distribution"


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.bin = os.path.join(self.build, "bin")
        self.bbin = os.path.join(self.build, "bench")
        self.work = tempfile.mkdtemp(prefix="na-bench-")
        self.ctx = zmq.Context()
        self.results = {}
        self.probe_article = self.make_probe()
        self.warm_cache = None

    # ---- inputs ----
    def make_probe(self):
        sys.path.insert(0, self.work)
        subprocess.run(["protoc", "--proto_path=" + os.path.join(SRC, "proto"),
                        "--python_out=" + self.work, "newsalert/v1/article.proto"], check=True)
        from newsalert.v1 import article_pb2
        self.probes = 0

        def probe():
            # Each probe its own id: the daemon drops repeats of an id.
            self.probes += 1
            return article_pb2.Article(
                id="probe-%d" % self.probes, source="bench",
                headline="NATO allies pledge military aid at summit",
                body="NATO leaders at the summit pledged a new military aid package for "
                     "Ukraine.", language="en").SerializeToString()
        return probe

    def corpus(self, size, count=1000):
        """A packed feed of `count` articles with ~size-byte bodies, and for
        each position whether the daemon alerts on it."""
        jsonl = os.path.join(self.work, "c%d.jsonl" % size)
        feed = os.path.join(self.work, "c%d.feed" % size)
        subprocess.run([sys.executable, os.path.join(HERE, "make_corpus.py"),
                        os.path.join(SRC, "tests", "corpus", "labelled.jsonl"), str(size),
                        str(count), jsonl], check=True)
        subprocess.run([os.path.join(self.bin, "newsalert"), "pack", jsonl, "-o", feed],
                       check=True)
        tagged = subprocess.run(self.tag_cmd(feed), capture_output=True, text=True, check=True)
        alerted = {json.loads(line)["article_id"] for line in tagged.stdout.splitlines()}
        positive = ["bench-%d" % i in alerted for i in range(count)]
        text = sum(len(json.loads(line)["body"].encode()) + len(json.loads(line)["headline"])
                   for line in open(jsonl, encoding="utf-8"))
        return {"feed": feed, "positive": positive, "text_bytes": text, "count": count}

    def tag_cmd(self, feed, *extra):
        return ([os.path.join(self.bin, "newsalert"), "tag", feed,
                 "--rules", os.path.join(SRC, "config", "rules")] +
                (["--no-model"] if self.args.no_model else []) + list(extra))

    # ---- processes ----
    def start_daemon(self, feeds, publish, extra_config="", state=None, prefix=()):
        cfg = os.path.join(self.work, "newsalertd.yaml")
        with open(cfg, "w") as f:
            f.write("rules:\n  dir: %s\n  actors: %s\n" % (
                os.path.join(SRC, "config", "rules"), os.path.join(SRC, "config", "actors.yaml")))
            # The shipped setup: the learned layer beside the rules.
            if not self.args.no_model:
                f.write("  model: %s\n" % os.path.join(SRC, "config", "tagger.model"))
            f.write("log:\n  status_interval_ms: 0\n")
            f.write("metrics:\n  listen: \"off\"\n")
            f.write("catchup:\n  endpoint: ipc://%s/catchup\n" % self.work)
            f.write(extra_config or self.args.daemon_config.replace("\\n", "\n"))
        self.daemon_log = os.path.join(self.work, "daemon.log")
        # A fresh journal for every run unless told otherwise, with the
        # compiled-rules cache of a previous start, as a restarted service
        # has it (the cold start is measured on its own).
        if state is None:
            state = tempfile.mkdtemp(prefix="state-", dir=self.work)
            if self.warm_cache and os.path.isdir(self.warm_cache):
                shutil.copytree(self.warm_cache, os.path.join(state, "cache"))
        args = list(prefix) + [os.path.join(self.bin, "newsalertd"), "-c", cfg, "--publish", publish,
                "--state-dir", state]
        for ep in feeds:
            args += ["--feed", ep]
        return subprocess.Popen(args, stderr=open(self.daemon_log, "w"))

    def start_forwarder(self, feeds, publish):
        args = [os.path.join(self.bbin, "na-bench-forwarder"), "--bind", publish]
        for ep in feeds:
            args += ["--connect", ep]
        return subprocess.Popen(args)

    @staticmethod
    def stop(p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(WAIT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    @staticmethod
    def rss_kib(pid, field):
        with open("/proc/%d/status" % pid) as f:
            m = re.search(r"^%s:\s+(\d+) kB" % field, f.read(), re.M)
        return int(m.group(1))

    def one_run(self, target, corpus, count, rate=0, during=None):
        """Generator -> target -> sink once. Returns the sink's and the
        generator's figures plus the target's peak RSS."""
        gen_ep, probe_ep, pub_ep = tcp(), tcp(), tcp()
        probe = self.ctx.socket(zmq.XPUB)
        probe.bind(probe_ep)
        if target == "forwarder":
            proc = self.start_forwarder([gen_ep, probe_ep], pub_ep)
        else:
            # "daemon-2threads": the same daemon with a second tagging thread.
            extra = self.args.daemon_config.replace("\\n", "\n")
            if target == "daemon-2threads":
                extra += "\ntagger:\n  threads: 2\n"
            proc = self.start_daemon([gen_ep, probe_ep], pub_ep, extra_config=extra)
        try:
            if not probe.poll(WAIT * 1000):
                raise RuntimeError("%s never subscribed" % target)
            probe.recv()
            pos = corpus["positive"]
            n = len(pos)
            # The forwarder passes everything on; the daemon alerts on the
            # positives, which the generator sends round-robin.
            expect = count if target == "forwarder" else (
                (count // n) * sum(pos) + sum(pos[:count % n]))
            sink = subprocess.Popen(
                [os.path.join(self.bbin, "na-bench-sink"), "--connect", pub_ep, "--expect",
                 str(expect), "--max-n", str(count), "--idle", "10"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.monotonic() + WAIT
            os.set_blocking(sink.stderr.fileno(), False)
            err = b""
            while b"ready" not in err:
                if time.monotonic() > deadline:
                    raise RuntimeError("the sink never received a probe")
                probe.send_multipart([b"news", self.probe_article()])
                time.sleep(0.05)
                err += sink.stderr.read() or b""
            gen_args = [os.path.join(self.bbin, "na-bench-gen"), "--feed", corpus["feed"],
                        "--bind", gen_ep, "--count", str(count)]
            if rate:
                gen_args += ["--rate", str(rate)]
            # The target is already connected to gen_ep and will subscribe
            # as soon as the generator binds it.
            cpu_before = thread_cpu(proc.pid)
            gen = subprocess.Popen(gen_args, stdout=subprocess.PIPE, text=True)
            if during:
                during(proc, gen)
            g = json.loads(gen.communicate(timeout=3600)[0])
            s = json.loads(sink.communicate(timeout=3600)[0].decode())
            s["cpu"] = cpu_per_article(cpu_before, thread_cpu(proc.pid), count)
            s["expected"] = expect
            s["peak_rss_kib"] = self.rss_kib(proc.pid, "VmHWM")
            s["rss_kib"] = self.rss_kib(proc.pid, "VmRSS")
            if target != "forwarder":
                # What the daemon holds once the burst is over: it hands
                # the feed queue's memory back a second after a burst.
                time.sleep(SETTLE)
                s["settled_rss_kib"] = self.rss_kib(proc.pid, "VmRSS")
                # The tagging threads it ran with, as its start-up line says.
                m = re.search(r"ready: .*?(\d+) tagging thread", open(self.daemon_log).read())
                s["threads"] = int(m.group(1)) if m else 0
            s["seconds"] = (s["last_recv_ns"] - g["first_send_ns"]) / 1e9
            s["articles_per_s"] = count / s["seconds"] if s["seconds"] > 0 else 0
            s["send_rate"] = count / max(1e-9, (g["last_send_ns"] - g["first_send_ns"]) / 1e9)
            return s
        finally:
            self.stop(proc)
            probe.close(0)

    def warm_up(self):
        """One start to fill the compiled-rules cache the runs copy."""
        state = tempfile.mkdtemp(prefix="warm-", dir=self.work)
        probe_ep = tcp()
        probe = self.ctx.socket(zmq.XPUB)
        probe.bind(probe_ep)
        proc = self.start_daemon([probe_ep], tcp(), state=state)
        try:
            if not probe.poll(WAIT * 1000):
                raise RuntimeError("the daemon never subscribed")
        finally:
            self.stop(proc)
            probe.close(0)
        self.warm_cache = os.path.join(state, "cache")

    # ---- workloads ----
    def throughput(self):
        rows = []
        for size in self.args.sizes:
            corpus = self.corpus(size)
            count = max(2000, min(100000, int(40e6 / size))) // (10 if self.args.quick else 1)
            figures = {}
            # At 2 KB, also what a second tagging thread buys, in the same run.
            targets = ("forwarder", "daemon") + (("daemon-2threads",) if size == 2048 else ())
            for target in targets:
                runs = []
                for r in range(self.args.runs):
                    s = self.one_run(target, corpus, count)
                    if s["received"] != s["expected"]:
                        log("%s %dB run %d: %d of %d arrived" % (
                            target, size, r, s["received"], s["expected"]))
                    runs.append(s)
                figures[target] = {
                    "articles_per_s": statistics.median(x["articles_per_s"] for x in runs),
                    "peak_rss_kib": max(x["peak_rss_kib"] for x in runs),
                    "settled_rss_kib": max(x.get("settled_rss_kib", 0) for x in runs),
                    "threads": max(x.get("threads", 0) for x in runs),
                    "lost": sum(x["expected"] - x["received"] for x in runs),
                    "cpu": median_cpu(runs),
                }
                log("throughput %5d B %-9s %8.0f articles/s" % (
                    size, target, figures[target]["articles_per_s"]))
            rows.append({"size": size, "count": count, **figures,
                         "ratio": figures["daemon"]["articles_per_s"]
                         / figures["forwarder"]["articles_per_s"]})
        self.results["throughput"] = rows

    def latency(self):
        corpus = self.corpus(2048)
        rows = []
        for rate in self.args.rates:
            count = int(rate * (1 if self.args.quick else 3))
            figures = {}
            for target in ("forwarder", "daemon"):
                runs = [self.one_run(target, corpus, count, rate=rate)
                        for _ in range(self.args.runs)]
                figures[target] = {k: statistics.median(x[k] for x in runs)
                                   for k in ("p50_us", "p99_us", "p999_us", "max_us")}
                figures[target]["cpu"] = median_cpu(runs)
                figures[target]["lost"] = sum(x["expected"] - x["received"] for x in runs)
                log("latency %6d/s %-9s p50 %8.1f us  p99 %8.1f us" % (
                    rate, target, figures[target]["p50_us"], figures[target]["p99_us"]))
            rows.append({"rate": rate, **figures})
        self.results["latency"] = rows

    def long_rss(self):
        corpus = self.corpus(2048)
        count = self.args.long
        samples = []

        def sample(proc, gen):
            while gen.poll() is None:
                try:
                    samples.append((time.monotonic(), self.rss_kib(proc.pid, "VmRSS")))
                except OSError:
                    break
                time.sleep(1)

        s = self.one_run("daemon", corpus, count, rate=self.args.long_rate, during=sample)
        tenth = samples[len(samples) // 10] if samples else (0, 0)
        self.results["long"] = {
            "count": count, "rate": self.args.long_rate, "received": s["received"],
            "expected": s["expected"], "peak_rss_kib": s["peak_rss_kib"],
            "rss_at_10pct_kib": tenth[1], "rss_end_kib": s["rss_kib"],
            "samples": samples[::max(1, len(samples) // 20)],
        }
        log("long run: %d articles, RSS %d KiB at 10%%, %d KiB at the end, peak %d KiB" % (
            count, tenth[1], s["rss_kib"], s["peak_rss_kib"]))

    def startup_and_reload(self):
        starts, reloads = [], []
        # One state directory throughout, as a service has: the first start
        # compiles the rules (cold), the later ones read the cached database.
        state = tempfile.mkdtemp(prefix="state-", dir=self.work)
        for run in range(self.args.runs + 1):
            probe_ep, pub_ep = tcp(), tcp()
            probe = self.ctx.socket(zmq.XPUB)
            probe.bind(probe_ep)
            t0 = time.monotonic()
            proc = self.start_daemon([probe_ep], pub_ep, state=state)
            ok = probe.poll(WAIT * 1000)
            if run == 0:
                self.results["cold_startup_ms"] = (time.monotonic() - t0) * 1e3
            else:
                starts.append(time.monotonic() - t0)
            try:
                assert ok, "the daemon never subscribed"
                probe.recv()
                for _ in range(3):
                    before = open(self.daemon_log).read().count("reloaded")
                    t0 = time.monotonic()
                    proc.send_signal(signal.SIGHUP)
                    while open(self.daemon_log).read().count("reloaded") == before:
                        if time.monotonic() - t0 > WAIT:
                            raise RuntimeError("no reload")
                        time.sleep(0.001)
                    reloads.append(time.monotonic() - t0)
            finally:
                self.stop(proc)
                probe.close(0)
        self.results["startup_ms"] = statistics.median(starts) * 1e3
        self.results["reload_ms"] = statistics.median(reloads) * 1e3
        log("start-up %.0f ms, reload %.0f ms (medians)" % (
            self.results["startup_ms"], self.results["reload_ms"]))

        # No article lost while reloading: a paced load with SIGHUP every 100 ms.
        corpus = self.corpus(2048)

        def hup(proc, gen):
            while gen.poll() is None:
                proc.send_signal(signal.SIGHUP)
                time.sleep(0.1)

        s = self.one_run("daemon", corpus, 10000, rate=2000, during=hup)
        self.results["reload_under_load"] = {"received": s["received"], "expected": s["expected"]}
        log("reloads under load: %d of %d alerts" % (s["received"], s["expected"]))

    def tag_offline(self):
        corpus = self.corpus(2048, 5000)
        rates = []
        for _ in range(self.args.runs):
            p = subprocess.run(self.tag_cmd(corpus["feed"], "-q"), capture_output=True,
                               text=True, check=True)
            m = re.search(r"([\d.]+) MB of text, tagger (\d+) MB/s", p.stderr)
            rates.append(float(m.group(2)))
        self.results["tag_mb_s"] = statistics.median(rates)
        log("newsalert tag: %.0f MB/s (median)" % self.results["tag_mb_s"])

    def empty_feed(self):
        """A packed feed of no articles: the run a callgrind count subtracts."""
        path = os.path.join(self.work, "empty.feed")
        if not os.path.exists(path):
            open(os.path.join(self.work, "empty.jsonl"), "w").close()
            subprocess.run([os.path.join(self.bin, "newsalert"), "pack",
                            os.path.join(self.work, "empty.jsonl"), "-o", path], check=True)
        return path

    def callgrind(self):
        if not shutil.which("valgrind"):
            log("valgrind not installed; skipping instruction counts")
            return
        corpus = self.corpus(2048, 200)
        empty = self.empty_feed()
        counts = {}
        for name, feed in (("empty", empty), ("feed", corpus["feed"])):
            out = os.path.join(self.work, "callgrind.%s" % name)
            subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
                           + self.tag_cmd(feed, "-q"), capture_output=True, check=True)
            counts[name] = callgrind_total(out)
        per = (counts["feed"] - counts["empty"]) / corpus["count"]
        self.results["callgrind"] = {"per_article": per, "articles": corpus["count"],
                                     "bytes_per_article": corpus["text_bytes"] / corpus["count"],
                                     "startup": counts["empty"]}
        log("callgrind: %.0f instructions per article (%.0f per byte)" % (
            per, per / (corpus["text_bytes"] / corpus["count"])))

    def callgrind_daemon(self):
        """Instructions per article of the whole daemon (receive, decode,
        dedup, tag, journal, publish): a run that replays the corpus over
        the feed socket, less one that replays nothing."""
        if not shutil.which("valgrind"):
            log("valgrind not installed; skipping the daemon's instruction counts")
            return
        corpus = self.corpus(2048, 2000)
        empty = self.empty_feed()
        counts = {}
        for name, feed, alerts in (("empty", empty, 0),
                                   ("feed", corpus["feed"], sum(corpus["positive"]))):
            out = os.path.join(self.work, "callgrind.daemon.%s" % name)
            feed_ep, pub_ep = tcp(), tcp()
            sub = self.ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.SUBSCRIBE, b"alert.")
            sub.setsockopt(zmq.RCVHWM, 0)
            sub.connect(pub_ep)
            proc = self.start_daemon([feed_ep], pub_ep, prefix=[
                "valgrind", "--tool=callgrind", "--callgrind-out-file=" + out])
            try:
                subprocess.run([os.path.join(self.bin, "newsalert"), "replay", feed, "--bind",
                                feed_ep, "--rate", "1000", "--wait-subscribers", "1",
                                "--timeout", "120"], check=True, capture_output=True)
                # The last alert out (seq, the Alert's field 1, counts the
                # alerted articles from 1 in a fresh state directory): the
                # daemon is done. Waiting for the last seq rather than for
                # every alert lets this socket miss the first ones, which it
                # does when it joins after the daemon, slowed by callgrind on
                # a busy machine, has already published them.
                last = 0
                while last < alerts:
                    if not sub.poll(WAIT * 1000):
                        raise RuntimeError(
                            "the daemon under callgrind stopped alerting at seq %d of %d; "
                            "its log ends:\n%s" % (last, alerts,
                                                    open(self.daemon_log).read()[-2000:]))
                    last = max(last, alert_seq(sub.recv_multipart()[1]))
            finally:
                self.stop(proc)
                sub.close(0)
            counts[name] = callgrind_total(out)
        per = (counts["feed"] - counts["empty"]) / corpus["count"]
        self.results["callgrind_daemon"] = {"per_article": per, "articles": corpus["count"],
                                            "bytes_per_article":
                                                corpus["text_bytes"] / corpus["count"]}
        log("callgrind: newsalertd %.0f instructions per article" % per)

    # ---- report ----
    def report(self):
        out_dir = os.path.join(HERE, "results")
        os.makedirs(out_dir, exist_ok=True)
        r = self.results
        cpu = "unknown CPU"
        try:
            with open("/proc/cpuinfo") as f:
                cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
        except (OSError, AttributeError):
            pass
        lines = ["# newsalertd benchmark", "",
                 "Run on %s: %s, %d cores, %s, Linux %s. Each figure is the median of %d runs; "
                 "the forwarder is a one-thread SUB->PUB relay with no decoding, measured in "
                 "the same run with the same generator and sink, over TCP on loopback." % (
                     datetime.date.today().isoformat(), cpu, os.cpu_count(),
                     debian_version(), platform.release(),
                     self.args.runs), "",
                 "Command: `%s`" % " ".join(["bench/run.py"] + sys.argv[1:]), ""]
        if "throughput" in r:
            lines += ["## Throughput (full speed, about half the articles positive)", "",
                      "| body | articles | forwarder articles/s | newsalertd articles/s | ratio "
                      "| newsalertd peak RSS | RSS %g s after | lost |" % SETTLE,
                      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for x in r["throughput"]:
                lines.append("| %d B | %d | %.0f | %.0f | %.1f%% | %.1f MiB | %.1f MiB | %d |" % (
                    x["size"], x["count"], x["forwarder"]["articles_per_s"],
                    x["daemon"]["articles_per_s"], 100 * x["ratio"],
                    x["daemon"]["peak_rss_kib"] / 1024, x["daemon"]["settled_rss_kib"] / 1024,
                    x["daemon"]["lost"]))
            for x in r["throughput"]:
                if "daemon-2threads" in x:
                    two = x["daemon-2threads"]["articles_per_s"]
                    n = x["daemon"]["threads"]
                    lines += ["", "With `tagger.threads: 2` (%d B bodies): %.0f articles/s, "
                              "%.1f%% of the forwarder and %.2fx the default (%d tagging "
                              "thread%s)." % (
                                  x["size"], two, 100 * two / x["forwarder"]["articles_per_s"],
                                  two / x["daemon"]["articles_per_s"], n,
                                  "" if n == 1 else "s")]
            lines.append("")
        if "latency" in r:
            lines += ["## Latency at fixed rates (2 KB bodies), microseconds", "",
                      "| rate/s | fwd p50 | fwd p99 | fwd p99.9 | fwd max | nad p50 | nad p99 "
                      "| nad p99.9 | nad max | p99 ratio |",
                      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
            with open(os.path.join(out_dir, "latency.dat"), "w") as dat:
                dat.write("# rate fwd_p50 fwd_p99 fwd_p999 nad_p50 nad_p99 nad_p999\n")
                for x in r["latency"]:
                    f, d = x["forwarder"], x["daemon"]
                    lines.append("| %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f "
                                 "| %.2f |" % (x["rate"], f["p50_us"], f["p99_us"], f["p999_us"],
                                               f["max_us"], d["p50_us"], d["p99_us"],
                                               d["p999_us"], d["max_us"],
                                               d["p99_us"] / max(f["p99_us"], 1e-9)))
                    dat.write("%d %f %f %f %f %f %f\n" % (
                        x["rate"], f["p50_us"], f["p99_us"], f["p999_us"], d["p50_us"],
                        d["p99_us"], d["p999_us"]))
            lines += ["", "![latency percentiles against rate](latency.png)", ""]
            self.plot(out_dir)
        cpu_rows = [("%d B bodies, full speed" % x["size"], x) for x in r.get("throughput", [])]
        cpu_rows += [("%d/s, 2 KB bodies" % x["rate"], x) for x in r.get("latency", [])]
        cpu_rows = [(label, x) for label, x in cpu_rows
                    if "cpu" in x["forwarder"] and "cpu" in x["daemon"]]
        if cpu_rows:
            def cell(c, role):
                v = c.get(role)
                return "%.1f (%.0f%%)" % (v["us"], 100 * v["kernel_share"]) if v else "-"
            lines += ["## Where the CPU goes", "",
                      "Microseconds of CPU per article in each thread of the forwarder and of "
                      "newsalertd, from the generator's start to the sink's last message "
                      "(`/proc/PID/task/*/schedstat`); in brackets the kernel's share "
                      "(`stat`), then the ZeroMQ I/O threads' minor page faults per article. "
                      "The generator and the sink share the same two cores.", "",
                      "| workload | fwd relay | fwd ZeroMQ I/O | nad loop | nad ZeroMQ I/O "
                      "| nad other threads | I/O faults fwd / nad |",
                      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for label, x in cpu_rows:
                f, d = x["forwarder"]["cpu"], x["daemon"]["cpu"]
                lines.append("| %s | %s | %s | %s | %s | %s | %.2f / %.2f |" % (
                    label, cell(f, "main"), cell(f, "zmq_io"), cell(d, "main"),
                    cell(d, "zmq_io"), cell(d, "other"),
                    f.get("zmq_io", {}).get("minflt", 0), d.get("zmq_io", {}).get("minflt", 0)))
            lines.append("")
        other = []
        if "startup_ms" in r:
            other.append("| start-up with the shipped rules, first start: compiling "
                         "(spawn to feed subscription) | %.0f ms |" % r["cold_startup_ms"])
            other.append("| start-up with the shipped rules, later starts: cached database "
                         "(spawn to feed subscription) | %.0f ms |" % r["startup_ms"])
            other.append("| reload (SIGHUP to 'reloaded' in the log) | %.0f ms |" % r["reload_ms"])
            u = r["reload_under_load"]
            other.append("| alerts during SIGHUP every 100 ms at 2,000/s | %d of %d |" % (
                u["received"], u["expected"]))
        if "tag_mb_s" in r:
            other.append("| `newsalert tag` offline, 2 KB bodies | %.0f MB/s |" % r["tag_mb_s"])
        if "callgrind" in r:
            c = r["callgrind"]
            other.append("| instructions per article (callgrind, `newsalert tag`, %d articles "
                         "of %.0f bytes) | %.0f (%.0f per byte) |" % (
                             c["articles"], c["bytes_per_article"], c["per_article"],
                             c["per_article"] / c["bytes_per_article"]))
        if "callgrind_daemon" in r:
            c = r["callgrind_daemon"]
            other.append("| instructions per article (callgrind, the whole `newsalertd`: "
                         "%d articles of %.0f bytes over the feed socket) | %.0f |" % (
                             c["articles"], c["bytes_per_article"], c["per_article"]))
        if "long" in r:
            g = r["long"]
            other.append("| RSS over %d articles at %d/s: at 10%% / at the end / peak "
                         "| %.1f / %.1f / %.1f MiB (%d of %d alerts) |" % (
                             g["count"], g["rate"], g["rss_at_10pct_kib"] / 1024,
                             g["rss_end_kib"] / 1024, g["peak_rss_kib"] / 1024, g["received"],
                             g["expected"]))
        if other:
            lines += ["## Other figures", "", "| what | figure |", "| --- | ---: |"] + other + [""]
        with open(os.path.join(out_dir, "latest.md"), "w") as f:
            f.write("\n".join(lines))
        with open(os.path.join(out_dir, "latest.json"), "w") as f:
            json.dump(r, f, indent=1)
        print("\n".join(lines))

    def plot(self, out_dir):
        if not shutil.which("gnuplot"):
            log("gnuplot not installed; no plot")
            return
        script = """set terminal pngcairo size 800,500
set output '%(dir)s/latency.png'
set title 'newsalertd vs a bare ZeroMQ forwarder: latency against rate'
set xlabel 'articles per second'
set ylabel 'latency (microseconds)'
set logscale y
set key top left
plot '%(dir)s/latency.dat' using 1:2 with linespoints title 'forwarder p50', \\
     '' using 1:3 with linespoints title 'forwarder p99', \\
     '' using 1:5 with linespoints title 'newsalertd p50', \\
     '' using 1:6 with linespoints title 'newsalertd p99', \\
     '' using 1:7 with linespoints title 'newsalertd p99.9'
""" % {"dir": out_dir}
        subprocess.run(["gnuplot"], input=script, text=True, check=False)


def main():
    ap = argparse.ArgumentParser(description="newsalertd benchmark")
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--long", type=int, default=5000000,
                    help="articles in the RSS-over-time run (0: skip)")
    ap.add_argument("--long-rate", type=int, default=20000)
    ap.add_argument("--quick", action="store_true", help="smaller counts, for a smoke test")
    ap.add_argument("--daemon-config", default="",
                    help="YAML appended to the daemon's config (\\n for newlines), "
                         "e.g. 'journal:\\n  fsync: always'")
    ap.add_argument("--no-model", action="store_true",
                    help="the rules alone, without the learned layer")
    ap.add_argument("--rates", default="1000,5000,10000",
                    help="comma-separated rates for the latency runs")
    ap.add_argument("--only", action="append", default=[],
                    help="throughput, latency, startup, tag, callgrind, callgrind_daemon, "
                         "long")
    args = ap.parse_args()
    args.sizes = [1024, 2048, 4096, 16384]
    args.rates = [int(x) for x in args.rates.split(",")]
    b = Bench(args)
    steps = {"throughput": b.throughput, "latency": b.latency, "startup": b.startup_and_reload,
             "tag": b.tag_offline, "callgrind": b.callgrind,
             "callgrind_daemon": b.callgrind_daemon, "long": b.long_rss}
    try:
        b.warm_up()
        for name, step in steps.items():
            if (args.only and name not in args.only) or (name == "long" and not args.long):
                continue
            step()
        b.report()
    finally:
        b.ctx.destroy(0)
        shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()
