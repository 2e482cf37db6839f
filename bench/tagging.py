#!/usr/bin/python3
"""Tagging quality and the learned layer's cost, side by side in one run.

    bench/tagging.py [--build DIR] [--split test]

On one split of the labelled corpus (test by default: the frozen split that
nothing was tuned on) it reports per-tag F1, long-form macro F1 and the
hard-negative false-positive rate for three taggers:
  - the rules alone (newsalert eval --no-model),
  - the learned layer (the shipped config/tagger.model),
  - a plain TF-IDF (word 1-2-grams) + logistic-regression baseline from
    scikit-learn, trained on the same train and dev lines as the model, its
    C chosen the same way: holding out one corpus file at a time.
Then what the learned layer costs: the tagger's throughput over the corpus
with and without the model (best of five, same process order), and the
model's load time from the daemon's start-up log.

Writes bench/results/tagging.md.
"""
import argparse
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
CORPUS = os.path.join(SRC, "tests", "corpus")
TAGS = ("aid", "alliance", "summit")


def corpus_files():
    return ([os.path.join(CORPUS, "labelled.jsonl")] +
            sorted(glob.glob(os.path.join(CORPUS, "pool", "*.jsonl"))) +
            sorted(glob.glob(os.path.join(CORPUS, "test", "*.jsonl"))))


def load(*splits):
    out = []
    for path in corpus_files():
        with open(path, encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                if d.get("split") in splits:
                    d["_file"] = os.path.basename(path)
                    out.append(d)
    return out


def is_long(d):
    if "form" in d:
        return d["form"] == "long"
    return len(d["body"].split()) >= 350


def scores(items, predicted):
    """Per-tag F1, macro F1, long-form macro F1, hard-negative FP rate."""
    def f1(subset, tag):
        tp = fp = fn = 0
        for d, got in subset:
            want = tag in d["labels"]
            has = tag in got
            tp += want and has
            fp += has and not want
            fn += want and not has
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    pairs = list(zip(items, predicted))
    long_pairs = [p for p in pairs if is_long(p[0])]
    hard = [p for p in pairs if not p[0]["labels"] and p[0].get("negative") == "hard"]
    per = {t: f1(pairs, t) for t in TAGS}
    return {
        "per": per,
        "macro": sum(per.values()) / len(TAGS),
        "long": sum(f1(long_pairs, t) for t in TAGS) / len(TAGS) if long_pairs else 0,
        "hard_fp": sum(1 for _, g in hard if g) / len(hard) if hard else 0,
        "n": len(pairs), "n_long": len(long_pairs), "n_hard": len(hard),
    }


def tool_predictions(newsalert, items, model_args):
    """The tags `newsalert tag` gives each item, in order."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False,
                                     encoding="utf-8") as f:
        for d in items:
            f.write(json.dumps({k: d[k] for k in ("id", "source", "url", "headline", "body",
                                                   "published_at_ms", "language", "authors")},
                               ensure_ascii=False) + "\n")
        path = f.name
    try:
        r = subprocess.run([newsalert, "tag", path, "--rules",
                            os.path.join(SRC, "config", "rules")] + model_args,
                           capture_output=True, text=True, check=True)
    finally:
        os.unlink(path)
    got = {}
    for line in r.stdout.splitlines():
        a = json.loads(line)
        got[a["article_id"]] = {t["tag"] for t in a["tags"]}
    return [got.get(d["id"], set()) for d in items]


def baseline(train, test):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold, cross_val_predict

    def text(d):
        return d["headline"] + "\n" + d["body"]
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    xtr = vec.fit_transform([text(d) for d in train])
    xte = vec.transform([text(d) for d in test])
    groups = [d["_file"] for d in train]
    folds = GroupKFold(n_splits=len(set(groups)))
    pred = [set() for _ in test]
    for tag in TAGS:
        ytr = [tag in d["labels"] for d in train]
        best = None
        for c in (1, 4, 16, 64, 256):
            lr = LogisticRegression(C=c, max_iter=2000)
            f = f1_score(ytr, cross_val_predict(lr, xtr, ytr, groups=groups, cv=folds))
            if best is None or f > best[0]:
                best = (f, c)
        m = LogisticRegression(C=best[1], max_iter=2000).fit(xtr, ytr)
        for i, y in enumerate(m.predict(xte)):
            if y:
                pred[i].add(tag)
    return pred


def throughput(newsalert, feed, model_args, runs=5):
    best = 0.0
    for _ in range(runs):
        r = subprocess.run([newsalert, "tag", feed, "-q", "--rules",
                            os.path.join(SRC, "config", "rules")] + model_args,
                           capture_output=True, text=True, check=True)
        m = re.search(r"tagger ([0-9.]+) MB/s", r.stderr)
        best = max(best, float(m.group(1)))
    return best


def model_load_ms(build):
    """Starts the daemon on the shipped config and reads its model line."""
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.Popen([os.path.join(build, "bin", "newsalertd"), "-c",
                              os.path.join(SRC, "config", "newsalertd.yaml"),
                              "--state-dir", tmp, "--feed", "ipc://%s/feed" % tmp],
                             stderr=subprocess.PIPE, text=True)
        ms = None
        deadline = time.monotonic() + 30
        for line in p.stderr:
            m = re.search(r"model [0-9a-f]+: \d+ features, loaded in ([0-9.]+) ms", line)
            if m:
                ms = float(m.group(1))
            if "ready:" in line or time.monotonic() > deadline:
                break
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        return ms


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--split", default="test", choices=("dev", "test"))
    args = ap.parse_args()
    newsalert = os.path.join(args.build, "bin", "newsalert")
    items = load(args.split)
    rows = [
        ("rules alone", scores(items, tool_predictions(newsalert, items, ["--no-model"]))),
        ("learned layer", scores(items, tool_predictions(newsalert, items, []))),
        ("TF-IDF + LR", scores(items, baseline(load("train", "dev"), items))),
    ]
    out = ["# Tagging on the %s split" % args.split, "",
           "%d articles, %d long-form, %d hard negatives. Command: `bench/tagging.py "
           "--split %s`." % (rows[0][1]["n"], rows[0][1]["n_long"], rows[0][1]["n_hard"],
                             args.split), "",
           "| tagger | aid F1 | alliance F1 | summit F1 | macro F1 | long-form macro F1 "
           "| hard-negative FP |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, s in rows:
        out.append("| %s | %.3f | %.3f | %.3f | **%.3f** | %.3f | %.1f%% |" % (
            name, s["per"]["aid"], s["per"]["alliance"], s["per"]["summit"], s["macro"],
            s["long"], 100 * s["hard_fp"]))
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = os.path.join(tmp, "all.jsonl")
        with open(jsonl, "w", encoding="utf-8") as f:
            for split in ("train", "dev", "test"):
                for d in load(split):
                    f.write(json.dumps({k: d[k] for k in (
                        "id", "source", "url", "headline", "body", "published_at_ms",
                        "language", "authors")}, ensure_ascii=False) + "\n")
        feed = os.path.join(tmp, "all.feed")
        subprocess.run([newsalert, "pack", jsonl, "-o", feed], check=True,
                       capture_output=True)
        rules_mb = throughput(newsalert, feed, ["--no-model"])
        model_mb = throughput(newsalert, feed, [])
    load_ms = model_load_ms(args.build)
    out += ["", "## What the learned layer costs", "",
            "`newsalert tag -q` over the whole corpus, best of five: rules alone %.1f MB/s, "
            "with the model %.1f MB/s (%.2fx)." % (rules_mb, model_mb, model_mb / rules_mb),
            "The daemon loads the shipped model in %s ms." % (
                "%.1f" % load_ms if load_ms is not None else "?")]
    text = "\n".join(out) + "\n"
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "tagging.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
