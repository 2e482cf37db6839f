#!/usr/bin/python3
"""Fan-out, measured: 1, 10 and 100 subscribers of one newsalertd, direct
and through `newsalert proxy`, side by side in one run on the same feed.
Direct and proxied runs alternate for each subscriber count, so both see
the same machine; the medians are printed as a table.

    bench/proxy_bench.py [--build DIR] [--runs N] [--count N] [--rate R]
                         [--subscribers 1,10,100] [--size BYTES] [--no-model]
                         [--quick]

Each run: na-bench-gen publishes --count articles into a fresh daemon on
TCP loopback; every subscriber is an na-bench-sink (SUB to "alert."). Two
workloads per set-up:
  - full speed: alerts/s that reach each subscriber (every copy, one per
    tag, from the generator's first send to the subscriber's last
    message), their sum over the subscribers, and the alerts lost;
  - --rate articles/s: latency from the generator's send to the
    subscriber's receipt of the article's first alert (p50 and p99, the
    median over the subscribers), so the proxy's hop is what differs.
Not part of ctest; ./bootstrap bench-proxy runs it.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from run import WAIT, Bench, log, tcp  # noqa: E402


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        return m.group(1).strip() if m else "unknown CPU"
    except OSError:
        return "unknown CPU"


class ProxyBench(Bench):
    def start_proxy(self, upstream, bind):
        self.proxy_log = os.path.join(self.work, "proxy.log")
        p = subprocess.Popen([os.path.join(self.bin, "newsalert"), "proxy", "--alerts",
                              upstream, "--bind-alerts", bind, "--catchup", "off",
                              "--bind-catchup", "off"], stderr=open(self.proxy_log, "w"))
        deadline = time.monotonic() + WAIT
        while "newsalert proxy: running" not in open(self.proxy_log).read():
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the proxy did not start: " + open(self.proxy_log).read())
            time.sleep(0.05)
        return p

    def fan_run(self, corpus, subscribers, via_proxy, count, rate=0):
        """Generator -> daemon [-> proxy] -> `subscribers` sinks, once."""
        gen_ep, probe_ep, pub_ep = tcp(), tcp(), tcp()
        probe = self.ctx.socket(zmq.XPUB)
        probe.bind(probe_ep)
        daemon = self.start_daemon([gen_ep, probe_ep], pub_ep)
        procs, sinks = [daemon], []
        try:
            if not probe.poll(WAIT * 1000):
                raise RuntimeError("the daemon never subscribed")
            probe.recv()
            target = pub_ep
            if via_proxy:
                target = tcp()
                procs.append(self.start_proxy(pub_ep, target))
            pos = corpus["positive"]
            n = len(pos)
            expect = (count // n) * sum(pos) + sum(pos[:count % n])
            for _ in range(subscribers):
                s = subprocess.Popen(
                    [os.path.join(self.bbin, "na-bench-sink"), "--connect", target,
                     "--expect", str(expect), "--max-n", str(count), "--idle", "10"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                os.set_blocking(s.stderr.fileno(), False)
                sinks.append([s, b""])
            # Probes until every sink has one: every subscription is live
            # (through the proxy, up to the daemon) before the clock starts.
            deadline = time.monotonic() + WAIT * 2
            while not all(b"ready" in e for _, e in sinks):
                if time.monotonic() > deadline:
                    raise RuntimeError("the sinks never received a probe")
                probe.send_multipart([b"news", self.probe_article()])
                time.sleep(0.05)
                for pair in sinks:
                    pair[1] += pair[0].stderr.read() or b""
            gen_args = [os.path.join(self.bbin, "na-bench-gen"), "--feed", corpus["feed"],
                        "--bind", gen_ep, "--count", str(count)]
            if rate:
                gen_args += ["--rate", str(rate)]
            gen = subprocess.Popen(gen_args, stdout=subprocess.PIPE, text=True)
            g = json.loads(gen.communicate(timeout=3600)[0])
            res = []
            for s, _ in sinks:
                r = json.loads(s.communicate(timeout=3600)[0].decode())
                # Alert copies of the run: the probes carry no mark.
                r["alerts"] = r["copies"] - r["foreign"]
                secs = max(1e-9, (r["last_recv_ns"] - g["first_send_ns"]) / 1e9)
                r["alerts_per_s"] = r["alerts"] / secs if r["received"] else 0.0
                res.append(r)
            return {"expected": expect, "sinks": res}
        finally:
            for s, _ in sinks:
                if s.poll() is None:
                    s.kill()
                    s.wait()
            for p in reversed(procs):
                self.stop(p)
            probe.close(0)

    def run_all(self):
        a = self.args
        corpus = self.corpus(a.size)
        self.warm_up()
        rows = []
        for n in a.subscribers:
            fig = {}
            for r in range(a.runs):
                for via in (False, True):
                    full = self.fan_run(corpus, n, via, a.count)
                    lat = self.fan_run(corpus, n, via, a.latency_count, rate=a.rate)
                    fig.setdefault(via, []).append((full, lat))
                    log("%d subscribers %s run %d: %.0f alerts/s each, p99 %.0f us" % (
                        n, "proxy" if via else "direct", r,
                        statistics.median(x["alerts_per_s"] for x in full["sinks"]),
                        statistics.median(x["p99_us"] for x in lat["sinks"])))
            for via in (False, True):
                runs = fig[via]
                rows.append({
                    "subscribers": n, "path": "proxy" if via else "direct",
                    "each": statistics.median(statistics.median(
                        x["alerts_per_s"] for x in f["sinks"]) for f, _ in runs),
                    "total": statistics.median(sum(
                        x["alerts_per_s"] for x in f["sinks"]) for f, _ in runs),
                    "lost": max(sum(f["expected"] - x["received"] for x in f["sinks"])
                                for f, _ in runs),
                    "lat_lost": max(sum(l["expected"] - x["received"] for x in l["sinks"])
                                    for _, l in runs),
                    "p50": statistics.median(statistics.median(
                        x["p50_us"] for x in l["sinks"]) for _, l in runs),
                    "p99": statistics.median(statistics.median(
                        x["p99_us"] for x in l["sinks"]) for _, l in runs),
                    "p99_worst": statistics.median(max(
                        x["p99_us"] for x in l["sinks"]) for _, l in runs),
                })
        return rows


def table(rows, args):
    out = ["| subscribers | path | alerts/s per subscriber | alerts/s, all | lost at full "
           "speed | p50 us at %d/s | p99 us at %d/s | worst subscriber's p99 | "
           "p99 vs direct |" % (args.rate, args.rate),
           "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    direct = {r["subscribers"]: r for r in rows if r["path"] == "direct"}
    for r in rows:
        d = direct[r["subscribers"]]
        ratio = r["p99"] / d["p99"] if d["p99"] else 0
        out.append("| %d | %s | %.0f | %.0f | %d | %.0f | %.0f | %.0f | %.2f |" % (
            r["subscribers"], r["path"], r["each"], r["total"], r["lost"], r["p50"],
            r["p99"], r["p99_worst"], ratio))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description="newsalert proxy fan-out benchmark")
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", type=int, default=10000,
                    help="articles of the full-speed workload")
    ap.add_argument("--latency-count", type=int, default=4000,
                    help="articles of the fixed-rate workload")
    ap.add_argument("--rate", type=int, default=1000, help="articles/s for the latency")
    ap.add_argument("--subscribers", default="1,10,100")
    ap.add_argument("--size", type=int, default=2048, help="body bytes")
    ap.add_argument("--no-model", action="store_true")
    ap.add_argument("--quick", action="store_true", help="one run, a fifth of the articles")
    args = ap.parse_args()
    args.subscribers = [int(x) for x in args.subscribers.split(",")]
    if args.quick:
        args.runs, args.count, args.latency_count = 1, args.count // 5, args.latency_count // 5
    # What run.Bench reads.
    args.daemon_config = ""
    b = ProxyBench(args)
    try:
        rows = b.run_all()
    finally:
        b.ctx.term()
    print("newsalert proxy fan-out: %s, %d cores, %d runs (medians), %d B bodies, "
          "%d articles at full speed, %d at %d/s" % (
              cpu_model(), os.cpu_count(), args.runs, args.size, args.count,
              args.latency_count, args.rate))
    print(table(rows, args))


if __name__ == "__main__":
    main()
