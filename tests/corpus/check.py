#!/usr/bin/env python3
"""Checks labelled corpus files (JSON Lines) against the corpus schema and
prints their make-up: items, long-form pieces, negatives, hard negatives.

usage: check.py FILE...   (exit 1 when any line is malformed)

The first corpus, tests/corpus/labelled.jsonl, predates the region, form
and negative fields: for its lines they are derived (form from the body's
length, region "unrecorded", negatives "unrated") rather than required.
"""
import json
import os
import re
import sys
from collections import Counter

TAGS = {"alliance", "aid", "summit"}
STYLES = {"flash", "update", "analysis", "feature", "opinion", "longform"}
REQUIRED = {"id": str, "source": str, "url": str, "headline": str, "body": str,
            "published_at_ms": int, "language": str, "authors": list,
            "labels": list, "region": str, "style": str, "form": str,
            "negative": str}


def words(text):
    return len(re.findall(r"\S+", text))


def derive_first(d):
    """Fills the fields that the first corpus never had."""
    d = dict(d)
    body = d.get("body") if isinstance(d.get("body"), str) else ""
    long_form = 350 <= words(body) <= 1000 and body.count("\n") >= 3
    d.setdefault("region", "unrecorded")
    d.setdefault("form", "long" if long_form else "short")
    labels = d.get("labels") if isinstance(d.get("labels"), list) else []
    d.setdefault("negative", "none" if labels else "unrated")
    return d


def check_item(d, first=False):
    errs = []
    for key, typ in REQUIRED.items():
        if key not in d:
            errs.append("missing %s" % key)
        elif not isinstance(d[key], typ):
            errs.append("%s is not %s" % (key, typ.__name__))
    if errs:
        return errs
    if not set(d["labels"]) <= TAGS or len(set(d["labels"])) != len(d["labels"]):
        errs.append("labels must be distinct, from %s" % sorted(TAGS))
    if d["style"] not in STYLES:
        errs.append("style must be one of %s" % sorted(STYLES))
    n = words(d["body"])
    if d["form"] == "long":
        if not 350 <= n <= 1000:
            errs.append("long-form body has %d words (350-1000)" % n)
        if d["body"].count("\n") < 3:
            errs.append("long-form body needs several paragraphs")
    elif d["form"] == "short":
        if n > 349 and not first or n < 12:
            errs.append("short body has %d words (12-349)" % n)
    else:
        errs.append("form must be short or long")
    if d["labels"] and d["negative"] != "none":
        errs.append("a labelled item has negative 'none'")
    if not d["labels"] and d["negative"] not in (("easy", "hard", "unrated") if first else ("easy", "hard")):
        errs.append("an unlabelled item has negative 'easy' or 'hard'")
    if not d["headline"].strip() or "\n" in d["headline"]:
        errs.append("headline must be one non-empty line")
    if d["language"] != "en":
        errs.append("language must be en")
    return errs


def main(paths):
    bad = 0
    ids = set()
    stats = Counter()
    labels = Counter()
    regions = Counter()
    for path in paths:
        first = os.path.basename(path) == "labelled.jsonl"
        with open(path, encoding="utf-8") as f:
            for no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                except ValueError as e:
                    print("%s:%d: not JSON: %s" % (path, no, e))
                    bad += 1
                    continue
                if isinstance(d, dict) and first:
                    d = derive_first(d)
                errs = check_item(d, first) if isinstance(d, dict) else ["not an object"]
                if not errs and d["id"] in ids:
                    errs.append("duplicate id %s" % d["id"])
                for e in errs:
                    print("%s:%d: %s" % (path, no, e))
                if errs:
                    bad += 1
                    continue
                ids.add(d["id"])
                stats["items"] += 1
                stats[d["form"]] += 1
                if not d["labels"]:
                    stats["negative"] += 1
                    stats["hard"] += d["negative"] == "hard"
                for t in d["labels"]:
                    labels[t] += 1
                regions[d["region"]] += 1
    n = stats["items"] or 1
    print("%d items: %d long-form, %d short; %d negatives (%.0f%%), %d hard (%.0f%% of negatives)"
          % (stats["items"], stats["long"], stats["short"], stats["negative"],
             100.0 * stats["negative"] / n, stats["hard"],
             100.0 * stats["hard"] / (stats["negative"] or 1)))
    print("labels: " + ", ".join("%s %d" % kv for kv in sorted(labels.items())))
    print("regions: " + ", ".join("%s %d" % kv for kv in regions.most_common()))
    if bad:
        print("%d malformed line(s)" % bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
