#!/usr/bin/python3
"""Sharding by source, measured: one newsalertd subscribed to every
source's topic against two newsalertd that each subscribe to half of them,
in one run, on the same generated feed (na-bench-gen --source-topics, one
topic "news.<source>." per article). Runs alternate between the two set-ups
so that both see the same machine; the medians are printed as a table.

    bench/shard_bench.py [--build DIR] [--runs N] [--count N] [--size BYTES]
                         [--no-model] [--quick]

End to end: from the generator's first send to the last alert at the sink
(one na-bench-sink per daemon, as a consumer merging the shards would
follow each). CPU per article is every newsalertd thread's CPU time over
the articles sent; the generator's and the sinks' own CPU is shown too,
because on a small machine they compete with the daemons for the cores.
Not part of ctest; ./bootstrap bench-shard runs it.
"""
import argparse
import collections
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from run import WAIT, log, tcp, thread_cpu  # noqa: E402

TOPIC = "news."


def topic_of(source):
    return "%s%s." % (TOPIC, source)


def cpu_ns(readings):
    """CPU time in ns of all the threads in a thread_cpu reading."""
    return sum(v[0] for v in readings.values())


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        return m.group(1).strip() if m else "unknown CPU"
    except OSError:
        return "unknown CPU"


class ShardBench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.bin = os.path.join(self.build, "bin")
        self.bbin = os.path.join(self.build, "bench")
        self.work = tempfile.mkdtemp(prefix="na-shard-bench-")
        self.ctx = zmq.Context()
        self.warm_cache = None
        self.daemons = 0

    def corpus(self):
        """The packed feed, and for each article its source and whether the
        daemon alerts on it."""
        size, n = self.args.size, 1000
        jsonl = os.path.join(self.work, "corpus.jsonl")
        feed = os.path.join(self.work, "corpus.feed")
        subprocess.run([sys.executable, os.path.join(HERE, "make_corpus.py"),
                        os.path.join(SRC, "tests", "corpus", "labelled.jsonl"), str(size),
                        str(n), jsonl], check=True)
        subprocess.run([os.path.join(self.bin, "newsalert"), "pack", jsonl, "-o", feed],
                       check=True)
        tagged = subprocess.run(
            [os.path.join(self.bin, "newsalert"), "tag", feed,
             "--rules", os.path.join(SRC, "config", "rules")] +
            (["--no-model"] if self.args.no_model else []),
            capture_output=True, text=True, check=True)
        alerted = {json.loads(line)["article_id"] for line in tagged.stdout.splitlines()}
        with open(jsonl, encoding="utf-8") as f:
            sources = [json.loads(line)["source"] for line in f]
        return {"feed": feed, "sources": sources,
                "positive": ["bench-%d" % i in alerted for i in range(n)]}

    @staticmethod
    def split(sources, k):
        """k sets of sources with about the same number of articles each:
        the largest source first, each to the lightest shard."""
        counts = collections.Counter(sources)
        shards, load = [set() for _ in range(k)], [0] * k
        for source, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])):
            i = load.index(min(load))
            shards[i].add(source)
            load[i] += n
        return shards

    def start_daemon(self, feeds, publish, topics, state=None, threads=0):
        self.daemons += 1
        d = os.path.join(self.work, "d%d" % self.daemons)
        os.makedirs(d)
        cfg = os.path.join(d, "newsalertd.yaml")
        with open(cfg, "w") as f:
            f.write("rules:\n  dir: %s\n  actors: %s\n" % (
                os.path.join(SRC, "config", "rules"), os.path.join(SRC, "config", "actors.yaml")))
            if not self.args.no_model:
                f.write("  model: %s\n" % os.path.join(SRC, "config", "tagger.model"))
            f.write("feed:\n  topics: [%s]\n" % ", ".join(json.dumps(t) for t in topics))
            if threads:
                f.write("tagger:\n  threads: %d\n" % threads)
            f.write("log:\n  status_interval_ms: 0\n")
            f.write("metrics:\n  listen: \"off\"\n")
            f.write("catchup:\n  endpoint: ipc://%s/catchup\n" % d)
        if state is None:
            state = os.path.join(d, "state")
            os.makedirs(state)
            if self.warm_cache and os.path.isdir(self.warm_cache):
                shutil.copytree(self.warm_cache, os.path.join(state, "cache"))
        args = [os.path.join(self.bin, "newsalertd"), "-c", cfg, "--publish", publish,
                "--state-dir", state]
        for ep in feeds:
            args += ["--feed", ep]
        log_path = os.path.join(d, "daemon.log")
        p = subprocess.Popen(args, stderr=open(log_path, "w"))
        p.log_path = log_path
        return p

    @staticmethod
    def stop(p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(WAIT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def warm_up(self, topics):
        """One start to fill the compiled-rules cache that every run copies,
        as a restarted service has it."""
        state = os.path.join(self.work, "warm")
        os.makedirs(state)
        ep = tcp()
        probe = self.ctx.socket(zmq.XPUB)
        probe.bind(ep)
        p = self.start_daemon([ep], tcp(), topics, state=state)
        try:
            if not probe.poll(WAIT * 1000):
                raise RuntimeError("the daemon never subscribed")
        finally:
            self.stop(p)
            probe.close(0)
        self.warm_cache = os.path.join(state, "cache")

    def one_run(self, corpus, shards, count, threads=0):
        """Generator -> len(shards) daemons -> one sink each."""
        gen_ep, probe_ep = tcp(), tcp()
        probe = self.ctx.socket(zmq.XPUB)
        probe.bind(probe_ep)
        procs, sinks = [], []
        pos, srcs = corpus["positive"], corpus["sources"]
        n = len(pos)
        try:
            pubs = []
            for shard in shards:
                pubs.append(tcp())
                procs.append(self.start_daemon([gen_ep, probe_ep], pubs[-1],
                                               sorted(topic_of(s) for s in shard),
                                               threads=threads))
            # Every daemon has subscribed to all of its topics.
            wanted = {topic_of(s).encode() for shard in shards for s in shard}
            got = set()
            deadline = time.monotonic() + WAIT
            while not wanted <= got:
                left = deadline - time.monotonic()
                if left <= 0 or not probe.poll(int(left * 1000)):
                    raise RuntimeError("the daemons never subscribed")
                m = probe.recv()
                if m[:1] == b"\x01":
                    got.add(m[1:])
            expects = []
            for shard, pub in zip(shards, pubs):
                mine = [pos[i] and srcs[i] in shard for i in range(n)]
                expect = (count // n) * sum(mine) + sum(mine[:count % n])
                expects.append(expect)
                sink = subprocess.Popen(
                    [os.path.join(self.bbin, "na-bench-sink"), "--connect", pub,
                     "--expect", str(expect), "--max-n", str(count), "--idle", "10"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                os.set_blocking(sink.stderr.fileno(), False)
                sink.err = b""
                sinks.append(sink)
            # Probes (no mark, so the sinks count them apart) until each
            # sink has one from its daemon.
            deadline = time.monotonic() + WAIT
            while any(b"ready" not in s.err for s in sinks):
                if time.monotonic() > deadline:
                    raise RuntimeError("a sink never received a probe")
                for shard, s in zip(shards, sinks):
                    if b"ready" not in s.err:
                        probe.send_multipart([topic_of(min(shard)).encode(), self.probe()])
                time.sleep(0.05)
                for s in sinks:
                    s.err += s.stderr.read() or b""
            cpu_before = [thread_cpu(p.pid) for p in procs]
            children_before = children_cpu_s()
            gen = subprocess.Popen(
                [os.path.join(self.bbin, "na-bench-gen"), "--feed", corpus["feed"],
                 "--bind", gen_ep, "--count", str(count), "--subscribers", str(len(wanted)),
                 "--source-topics", TOPIC], stdout=subprocess.PIPE, text=True)
            g = json.loads(gen.communicate(timeout=3600)[0])
            outs = [json.loads(s.communicate(timeout=3600)[0].decode()) for s in sinks]
            daemon_ns = sum(cpu_ns(thread_cpu(p.pid)) - cpu_ns(b)
                            for p, b in zip(procs, cpu_before))
            helpers_s = children_cpu_s() - children_before
            last = max(o["last_recv_ns"] for o in outs)
            seconds = (last - g["first_send_ns"]) / 1e9
            threads = []
            for p in procs:
                m = re.search(r"ready: .*?(\d+) tagging thread", open(p.log_path).read())
                threads.append(int(m.group(1)) if m else 0)
            return {
                "articles_per_s": count / seconds if seconds > 0 else 0,
                "seconds": seconds,
                "daemon_us": daemon_ns / 1e3 / count,
                "helpers_us": helpers_s * 1e6 / count,
                "cores_busy": (daemon_ns / 1e9 + helpers_s) / seconds if seconds > 0 else 0,
                "received": sum(o["received"] for o in outs),
                "expected": sum(expects),
                "per_shard": [o["received"] for o in outs],
                "threads": threads,
            }
        finally:
            for s in sinks:
                if s.poll() is None:
                    s.kill()
                    s.wait()
            for p in procs:
                self.stop(p)
            probe.close(0)

    def probe(self):
        self.probes = getattr(self, "probes", 0) + 1
        from newsalert.v1 import article_pb2
        return article_pb2.Article(
            id="probe-%d" % self.probes, source="bench",
            headline="NATO allies pledge military aid at summit",
            body="NATO leaders at the summit pledged a new military aid package for Ukraine.",
            language="en").SerializeToString()

    def run(self):
        subprocess.run(["protoc", "--proto_path=" + os.path.join(SRC, "proto"),
                        "--python_out=" + self.work, "newsalert/v1/article.proto"], check=True)
        sys.path.insert(0, self.work)
        corpus = self.corpus()
        count = self.args.count // (10 if self.args.quick else 1)
        one, two = self.split(corpus["sources"], 1), self.split(corpus["sources"], 2)
        # The other way to give one daemon a second core, for comparison:
        # a second tagging thread (tagger.threads), on one journal.
        setups = {"1 shard": (one, 0), "1 shard, tagger.threads 2": (one, 2),
                  "2 shards": (two, 0)}
        self.warm_up(sorted(topic_of(s) for s in one[0]))
        runs = {k: [] for k in setups}
        for r in range(self.args.runs):
            for k, (shards, threads) in setups.items():
                x = self.one_run(corpus, shards, count, threads)
                if x["received"] != x["expected"]:
                    log("%s, run %d: %d of %d alerts arrived"
                        % (k, r, x["received"], x["expected"]))
                log("%-26s run %d: %8.0f articles/s, %6.1f us CPU/article in the "
                    "daemon(s), %.2f cores busy" % (k, r, x["articles_per_s"], x["daemon_us"],
                                                     x["cores_busy"]))
                runs[k].append(x)
        self.report(corpus, setups, runs, count)

    def report(self, corpus, setups, runs, count):
        med = {k: {f: statistics.median(x[f] for x in v)
                   for f in ("articles_per_s", "daemon_us", "helpers_us", "cores_busy")}
               for k, v in runs.items()}
        arts = collections.Counter(corpus["sources"])
        lines = [
            "# Sharding by source: 1 vs 2 shards",
            "",
            "%s, %d CPUs (os.cpu_count), %s; %d articles of ~%d-byte bodies at full speed "
            "from one na-bench-gen (topic news.<source>., %d sources), median of %d runs "
            "each, alternating; \"vs 1 shard\" is the median of each run's ratio to the "
            "1-shard run before it." % (cpu_model(), os.cpu_count(), time.strftime("%Y-%m-%d"),
                                    count, self.args.size, len(arts), self.args.runs),
            "",
            "| set-up | sources per daemon | tagging threads | articles/s | range "
            "| vs 1 shard | daemon CPU us/article | gen+sinks CPU us/article | cores busy "
            "| alerts |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        base = runs["1 shard"]
        for k, (shards, _) in setups.items():
            # The ratio to the 1-shard run just before, run by run: the
            # machine's load drifts less between neighbours than over all.
            ratio = statistics.median(x["articles_per_s"] / b["articles_per_s"]
                                      for x, b in zip(runs[k], base))
            rates = [x["articles_per_s"] for x in runs[k]]
            m = med[k]
            got = sum(x["received"] for x in runs[k])
            want = sum(x["expected"] for x in runs[k])
            lines.append("| %s | %s | %s | %.0f | %.0f-%.0f | %.2fx | %.1f | %.1f | %.2f "
                         "| %d of %d |" % (
                k, " / ".join("%d (%d%% of articles)" % (
                    len(s), round(100 * sum(arts[x] for x in s) / len(corpus["sources"])))
                    for s in shards),
                " / ".join(str(t) for t in runs[k][0]["threads"]),
                m["articles_per_s"], min(rates), max(rates), ratio, m["daemon_us"],
                m["helpers_us"], m["cores_busy"], got, want))
        lines.append("")
        print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description="newsalertd: 1 vs 2 shards by source")
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", type=int, default=20000, help="articles per run")
    ap.add_argument("--size", type=int, default=2048, help="body size in bytes")
    ap.add_argument("--no-model", action="store_true",
                    help="the rules alone, without the learned layer")
    ap.add_argument("--quick", action="store_true", help="a tenth of the articles")
    args = ap.parse_args()
    b = ShardBench(args)
    try:
        b.run()
    finally:
        b.ctx.destroy(0)
        shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()
