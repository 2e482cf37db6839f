#!/usr/bin/python3
"""Writes mixed.jsonl: COUNT articles drawn from the labelled corpus, each
with its own id, in a fixed pseudo-random order, so the same build always
produces the same feed. Usage: mixed.py LABELLED.jsonl OUT.jsonl [COUNT]"""
import json
import random
import sys

FIELDS = ("source", "url", "headline", "body", "language", "authors")


def main():
    src, out = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    with open(src, encoding="utf-8") as f:
        articles = [json.loads(line) for line in f if line.strip()]
    rng = random.Random(20240705)
    t0 = 1720180000000
    # feed_seq counts each source's articles on its own, as the daemon's
    # feed_gaps reads it: one counter per source, not one for the feed.
    per_source = {}
    with open(out, "w", encoding="utf-8") as f:
        for i in range(count):
            a = rng.choice(articles)
            row = {"id": "mixed-%04d" % (i + 1)}
            row.update((k, a[k]) for k in FIELDS if k in a)
            row["published_at_ms"] = t0 + i * 1000
            source = row.get("source", "")
            per_source[source] = per_source.get(source, 0) + 1
            row["feed_seq"] = per_source[source]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
