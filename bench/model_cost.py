#!/usr/bin/python3
"""What the learned layer costs end to end: the daemon with its model
against the same daemon with --no-model (the rules alone), and optionally
against another build's daemon with the model (--previous BUILD, say the
commit before a change), all in one run, taking turns, on the same corpus,
generator and sink as bench/run.py.

For 1, 2 and 4 KB articles it reports the median articles/s of each
configuration, the daemon's CPU per article (all its threads), and

  cost = 1 - (articles/s with the model) / (articles/s without it)

with the same ratio over CPU per article beside it, which the machine's
noise moves less.

    bench/model_cost.py --build BUILD [--previous BUILD] [--runs N] [--out FILE]
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402  (the benchmark's harness: processes, corpus, sink)

SRC = os.path.dirname(HERE)


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def positives(bin_dir, feed, count, model):
    """Which articles of the feed alert, with this build and setting."""
    cmd = [os.path.join(bin_dir, "newsalert"), "tag", feed, "--rules",
           os.path.join(SRC, "config", "rules")] + ([] if model else ["--no-model"])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    alerted = {json.loads(line)["article_id"] for line in out.splitlines()}
    return ["bench-%d" % i in alerted for i in range(count)]


def daemon_us(cpu):
    return sum(role["us"] for role in cpu.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--previous", help="another build directory, measured with its model")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default="1024,2048,4096")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "model_cost.md"))
    args = ap.parse_args()

    hargs = argparse.Namespace(build=args.build, runs=args.runs, quick=False, no_model=False,
                               daemon_config="", long=0)
    b = run.Bench(hargs)
    configs = [("model", os.path.join(os.path.abspath(args.build), "bin"), True),
               ("no-model", os.path.join(os.path.abspath(args.build), "bin"), False)]
    if args.previous:
        configs.append(("previous", os.path.join(os.path.abspath(args.previous), "bin"), True))
    rows = []
    try:
        b.warm_up()
        for size in [int(x) for x in args.sizes.split(",")]:
            corpus = b.corpus(size)
            count = max(2000, min(100000, int(40e6 / size)))
            pos = {name: positives(bin_dir, corpus["feed"], corpus["count"], model)
                   for name, bin_dir, model in configs}
            runs = {name: [] for name, _, _ in configs}
            for r in range(args.runs):
                for name, bin_dir, model in configs:
                    b.bin = bin_dir
                    b.args.no_model = not model
                    s = b.one_run("daemon", dict(corpus, positive=pos[name]), count)
                    if s["received"] != s["expected"]:
                        run.log("%s %dB run %d: %d of %d arrived" % (
                            name, size, r, s["received"], s["expected"]))
                    runs[name].append(s)
                    run.log("%5d B %-9s run %d: %8.0f articles/s, %.1f us CPU" % (
                        size, name, r, s["articles_per_s"], daemon_us(s["cpu"])))
            fig = {name: {"articles_per_s": statistics.median(x["articles_per_s"] for x in v),
                          "us": statistics.median(daemon_us(x["cpu"]) for x in v)}
                   for name, v in runs.items()}
            rows.append({"size": size, "count": count, **fig})
    finally:
        b.ctx.destroy(0)
        shutil.rmtree(b.work, ignore_errors=True)

    lines = ["# The learned layer's end-to-end cost", "",
             "`bench/model_cost.py --runs %d%s` on %s, %d CPUs. Each cell is the median "
             "of %d runs; the configurations took turns. cost = 1 - with / without "
             "(articles/s), and the same over the daemon's CPU per article."
             % (args.runs, " --previous BUILD" if args.previous else "", cpu_model(),
                os.cpu_count(), args.runs), ""]
    head = ["size", "articles", "model art/s", "no-model art/s", "cost (art/s)",
            "model us/art", "no-model us/art", "cost (CPU)"]
    if args.previous:
        head += ["previous art/s", "previous us/art", "model / previous (art/s)"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for row in rows:
        m, n = row["model"], row["no-model"]
        cells = ["%d B" % row["size"], str(row["count"]), "%.0f" % m["articles_per_s"],
                 "%.0f" % n["articles_per_s"],
                 "%.1f%%" % (100 * (1 - m["articles_per_s"] / n["articles_per_s"])),
                 "%.1f" % m["us"], "%.1f" % n["us"], "%.1f%%" % (100 * (1 - n["us"] / m["us"]))]
        if args.previous:
            p = row["previous"]
            cells += ["%.0f" % p["articles_per_s"], "%.1f" % p["us"],
                      "%.2f" % (m["articles_per_s"] / p["articles_per_s"])]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
