#!/usr/bin/python3
"""The tagger's matchers side by side, in one run on one machine: the phrase
matcher (fixed phrases on word tokens, Vectorscan for the rest; the default)
against --regex-only (every pattern through Vectorscan, as before the
phrase matcher), and optionally against another build's `newsalert`
(--previous BIN, say the commit before the phrase matcher).

For short (~500 B), bench-sized (~2 KB) and long (~8 KB) articles it reports

  - instructions per article in na_tagger_tag alone (callgrind
    --toggle-collect), the rules alone and with the model;
  - the tagger's MB/s as `newsalert tag -q` reports it (median of --runs);
  - how the cost grows with the rule set: the rules doubled with synthetic
    terms of the same shapes (fixed phrases, alternations, a few regexes).

Counts are deterministic; MB/s is noisy, which is why each figure is a
ratio of two runs made one after the other.

    bench/matcher_bench.py --build BUILD [--previous BIN] [--runs N] [--out FILE]
"""
import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
# (name, body size, articles under callgrind, articles for MB/s: some 10 MB)
SIZES = [("short", 500, 600, 20000), ("bench", 2048, 300, 5000), ("long", 8192, 100, 1200)]


def log(msg):
    print("matcher_bench: " + msg, file=sys.stderr, flush=True)


def corpus(work, newsalert, size, count):
    jsonl = os.path.join(work, "c%d-%d.jsonl" % (size, count))
    feed = os.path.join(work, "c%d-%d.feed" % (size, count))
    subprocess.run([sys.executable, os.path.join(HERE, "make_corpus.py"),
                    os.path.join(SRC, "tests", "corpus", "labelled.jsonl"), str(size),
                    str(count), jsonl], check=True)
    subprocess.run([newsalert, "pack", jsonl, "-o", feed], check=True,
                   stdout=subprocess.DEVNULL)
    text = 0
    with open(jsonl, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            text += len(d["body"].encode()) + len(d["headline"].encode())
    return {"feed": feed, "count": count, "bytes": text / count}


def tag_cmd(newsalert, feed, rules, extra):
    return [newsalert, "tag", feed, "--config", "/dev/null", "--rules", rules,
            "--actors", os.path.join(SRC, "config", "actors.yaml"), "-q"] + extra


def instructions(work, cmd, name):
    """Instructions callgrind counts inside na_tagger_tag for cmd."""
    out = os.path.join(work, "callgrind." + name)
    subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                    "--toggle-collect=na_tagger_tag"] + cmd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out, encoding="utf-8") as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + out)


def mb_s(cmds, runs):
    """The median MB/s of each command, the commands taking turns."""
    rates = [[] for _ in cmds]
    for _ in range(runs):
        for i, cmd in enumerate(cmds):
            p = subprocess.run(cmd, capture_output=True, text=True, check=True)
            m = re.search(r"tagger (\d+) MB/s", p.stderr)
            rates[i].append(int(m.group(1)))
    return [statistics.median(r) for r in rates]


def synthetic_rules(work, rules):
    """The rules with as many synthetic terms again, of the same shapes."""
    rng = random.Random(2026)
    out = os.path.join(work, "rules2x")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(rules, out)
    syll = ["ka", "lo", "mi", "ren", "tu", "vos", "zan", "pe", "dri", "qua", "sel", "bor"]

    def word():
        return "".join(rng.choice(syll) for _ in range(rng.randrange(2, 4)))

    for name in sorted(os.listdir(out)):
        path = os.path.join(out, name)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        n_terms = text.count("\n  - {", text.index("terms:"), text.index("exclude:")
                             if "exclude:" in text else len(text))
        extra = []
        for k in range(n_terms):
            shape = k % 4
            if shape == 0:
                extra.append("  - {phrase: %s %s, weight: 1}" % (word(), word()))
            elif shape == 1:
                extra.append("  - {regex: '\\b(%s|%s|%s) (%s|%s)\\b', weight: 1}" % (
                    word(), word(), word(), word(), word()))
            elif shape == 2:
                extra.append("  - {regex: '\\b%s(s|ed|ing)?\\b', weight: 1}" % word())
            else:
                extra.append("  - {regex: '\\b%s \\w{1,12} %s\\b', weight: 1}" % (word(), word()))
        at = text.index("\nexclude:") if "\nexclude:" in text else len(text)
        text = text[:at] + "\n" + "\n".join(extra) + text[at:]
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--previous", help="another build's newsalert, measured beside")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "matcher.md"))
    args = ap.parse_args()
    newsalert = os.path.join(args.build, "bin", "newsalert")
    rules = os.path.join(SRC, "config", "rules")
    if not shutil.which("valgrind"):
        sys.exit("matcher_bench: valgrind is needed for the instruction counts")
    variants = [("phrases", newsalert, []), ("regex-only", newsalert, ["--regex-only"])]
    if args.previous:
        variants.append(("previous", args.previous, []))
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    lint = subprocess.run([newsalert, "lint", rules, "--paths"], capture_output=True,
                          text=True).stdout
    paths = [l for l in lint.splitlines() if l.startswith("paths:")]
    rows, scale = [], []
    with tempfile.TemporaryDirectory() as work:
        rules2 = synthetic_rules(work, rules)
        for label, size, count, big in SIZES:
            c = corpus(work, newsalert, size, count)
            row = {"corpus": label, "bytes": c["bytes"], "articles": count}
            for name, binary, extra in variants:
                for model in (False, True):
                    m = [] if model else ["--no-model"]
                    key = "%s%s" % (name, "+model" if model else "")
                    log("%s, %s: callgrind" % (label, key))
                    n = instructions(work, tag_cmd(binary, c["feed"], rules, extra + m),
                                     "%s.%s" % (label, key))
                    row[key + " instr"] = n / count
            log("%s: MB/s" % label)
            cb = corpus(work, newsalert, size, big)
            rates = mb_s([tag_cmd(binary, cb["feed"], rules, extra + ["--no-model"])
                          for _, binary, extra in variants], args.runs)
            for (name, _, _), rate in zip(variants, rates):
                row[name + " MB/s"] = rate
            rows.append(row)
            if label == "bench":
                for name, binary, extra in variants[:2]:
                    one = row[name + " instr"]
                    two = instructions(work, tag_cmd(binary, c["feed"], rules2,
                                                     extra + ["--no-model"]), "2x." + name)
                    scale.append((name, one, two / count))
    lines = ["# The tagger's matchers, side by side", "",
             "CPU: %s. Rules: the shipped ones; %s." % (cpu, paths[0][7:] if paths else "?"),
             "Instructions are callgrind's count inside `na_tagger_tag` per article",
             "(`newsalert tag -q`, the rules alone unless marked +model); MB/s is the",
             "tagger's own figure (`newsalert tag -q`, CPU time of the tagging alone) on",
             "some 10 MB of articles of the same size, median of %d runs taken in turns," % args.runs,
             "the rules alone.", ""]
    names = [v[0] for v in variants]
    head = ["corpus", "bytes/article"]
    for n in names:
        head += ["%s instr" % n, "%s +model" % n, "%s MB/s" % n]
    head += ["phrases / regex-only (instr)", "phrases / regex-only (+model)"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in rows:
        cells = [r["corpus"], "%.0f" % r["bytes"]]
        for n in names:
            cells += ["%.0f" % r[n + " instr"], "%.0f" % r[n + "+model instr"],
                      "%.0f" % r[n + " MB/s"]]
        cells += ["%.2f" % (r["phrases instr"] / r["regex-only instr"]),
                  "%.2f" % (r["phrases+model instr"] / r["regex-only+model instr"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Rules doubled with synthetic terms (fixed phrases, alternations, inflections",
              "and a `\\w` regex in turn), on the bench corpus, the rules alone:", "",
              "| matcher | instr/article, shipped rules | doubled | growth |",
              "|---|---|---|---|"]
    for name, one, two in scale:
        lines.append("| %s | %.0f | %.0f | %.2f× |" % (name, one, two, two / one))
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
