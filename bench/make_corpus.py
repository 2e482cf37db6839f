#!/usr/bin/python3
"""Writes COUNT benchmark articles as JSON lines with bodies of about SIZE
bytes, half of them positive: a positive is a labelled positive article
padded with paragraphs of labelled negatives; a negative is negatives only.
Deterministic for a given corpus, size and count.

    make_corpus.py LABELLED.jsonl SIZE COUNT OUT.jsonl
"""
import json
import random
import sys


def main():
    src, size, count, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    with open(src, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    pos = [r for r in rows if r["labels"]]
    neg = [r for r in rows if not r["labels"]]
    rng = random.Random(size)
    with open(out, "w", encoding="utf-8") as f:
        for i in range(count):
            base = rng.choice(pos if i % 2 == 0 else neg)
            parts = [base["body"]]
            length = len(base["body"].encode())
            while length < size:
                filler = rng.choice(neg)["body"]
                parts.append(filler)
                length += len(filler.encode()) + 1
            body = "\n".join(parts)
            # Trim to about SIZE bytes at a paragraph or sentence end.
            raw = body.encode()
            if len(raw) > size * 1.1:
                cut = raw[:size].rfind(b". ")
                body = raw[:cut + 1 if cut > 0 else size].decode(errors="ignore")
            f.write(json.dumps({
                "id": "bench-%d" % i, "source": base["source"], "url": base["url"],
                "headline": base["headline"], "body": body,
                "published_at_ms": 1720180000000 + i, "language": "en",
                "authors": base.get("authors", []), "feed_seq": i + 1,
            }, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
