#!/usr/bin/env python3
"""Gives every labelled article its fixed split, in place:
  tests/corpus/labelled.jsonl  the first corpus: "tune" becomes train,
                               "holdout" becomes dev
  tests/corpus/pool/*.jsonl    train or dev, from the SHA-256 of the id
                               (a quarter dev), so the split never depends
                               on file order
  tests/corpus/test/*.jsonl    test: written blind, before any tuning, and
                               frozen; test/SHA256SUMS records the files
With --check, changes nothing and exits 1 when a line's split is not the
one it should be.

usage: split.py [--check]
"""
import glob
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def want_split(path, d):
    rel = os.path.relpath(path, HERE)
    if rel.startswith("test" + os.sep):
        return "test"
    if rel == "labelled.jsonl":
        old = d.get("split")
        return {"tune": "train", "holdout": "dev"}.get(old, old)
    digest = hashlib.sha256(d["id"].encode("utf-8")).digest()
    return "dev" if digest[0] < 64 else "train"


def main(argv):
    check = "--check" in argv
    files = [os.path.join(HERE, "labelled.jsonl")]
    files += sorted(glob.glob(os.path.join(HERE, "pool", "*.jsonl")))
    files += sorted(glob.glob(os.path.join(HERE, "test", "*.jsonl")))
    wrong = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        out = []
        for no, line in enumerate(lines, 1):
            d = json.loads(line)
            split = want_split(path, d)
            if d.get("split") != split:
                wrong += 1
                if check:
                    print("%s:%d: split %r, should be %r" % (path, no, d.get("split"), split))
            d["split"] = split
            out.append(json.dumps(d, ensure_ascii=False))
        if not check:
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(out) + "\n")
    return 1 if check and wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
