"""The phrase matcher against Vectorscan alone: the real `newsalert tag`, once
as shipped (fixed phrases matched on word tokens) and once with
--regex-only (every pattern through Vectorscan, the matcher the phrase
matcher replaced), must print the very same alerts, evidence offsets,
actors and explanations, on every corpus in tests/ and on a packed feed of
100,000 generated articles built to hit the edges: case, accents, hyphens
and odd spacing, words glued together or cut, the long s and the Kelvin
sign."""

import glob
import hashlib
import json
import os
import random
import subprocess
import tempfile
import unittest

from harness import BIN, SRC

NEWSALERT = os.path.join(BIN, "newsalert")
FEEDS = os.environ["NA_FEEDS"]
RULES = os.path.join(SRC, "config", "rules")
N_GENERATED = 100_000


def tag(path, *args):
    """`newsalert tag` on path with the shipped rules and model."""
    run = subprocess.run(
        [NEWSALERT, "tag", path, "--config", "/dev/null", "--rules", RULES, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if run.returncode != 0:
        raise AssertionError("newsalert tag %s %s: exit %d: %s" % (
            path, " ".join(args), run.returncode, run.stderr.decode(errors="replace")))
    return run.stdout


def first_difference(a, b):
    la, lb = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            return "line %d:\n  phrases: %s\n  regex:   %s" % (
                i + 1, x[:400].decode(errors="replace"), y[:400].decode(errors="replace"))
    return "%d lines against %d" % (len(la), len(lb))


def corpus_sentences():
    """Every sentence of the labelled corpus, the raw material."""
    out = []
    files = [os.path.join(SRC, "tests", "corpus", "labelled.jsonl")]
    files += sorted(glob.glob(os.path.join(SRC, "tests", "corpus", "pool", "*.jsonl")))
    for path in files:
        with open(path, encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                out.append(d["headline"])
                for para in d["body"].split("\n"):
                    out.extend(s for s in para.replace("? ", "?\n").replace(". ", ".\n").split("\n") if s)
    return out


SWAPS = [(" ", "-"), ("-", " "), (" ", "  "), (" ", "\n"), (" ", "\t"), (" ", " -\n "),
         (" ", ""), ("e", "\u00e9"), ("E", "\u00c9"), ("'", "\u2019"), ("s", "\u017f"),
         ("k", "\u212a"), ("a", "\u00e5"), (" ", "\u00a0"), (".", ""), ("U.S.", "U.S"),
         (" ", " x"), (" ", "_"), ("-", "\u2013")]


def mangle(rng, s):
    """One sentence, bent at a few places."""
    r = rng.random()
    if r < 0.1:
        s = s.upper()
    elif r < 0.2:
        s = s.lower()
    elif r < 0.25:
        s = s.title()
    for _ in range(rng.randrange(4)):
        a, b = rng.choice(SWAPS)
        at = s.find(a, rng.randrange(len(s) + 1))
        if at >= 0:
            s = s[:at] + b + s[at + len(a):]
    if rng.random() < 0.1:
        cut = rng.randrange(len(s) + 1)
        s = s[:cut]
    return s


def generate(path, n, seed=20261208):
    rng = random.Random(seed)
    sentences = corpus_sentences()
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            k = rng.randrange(1, 12)
            body = []
            for _ in range(k):
                body.append(mangle(rng, rng.choice(sentences)))
                body.append(rng.choice([" ", " ", " ", "\n", "\n\n", "  "]))
            f.write(json.dumps({
                "id": "gen-%06d" % i,
                "source": rng.choice(["wire-a", "wire-b", "wire-c"]),
                "url": "https://example.org/gen/%d" % i,
                "headline": mangle(rng, rng.choice(sentences)),
                "body": "".join(body).strip(),
                "published_at_ms": 1_700_000_000_000 + i * 1000,
                "language": "en",
                "authors": [],
            }, ensure_ascii=False) + "\n")


class TestPhraseMatcher(unittest.TestCase):
    def assert_same(self, path, *args):
        fast, slow = tag(path, *args), tag(path, "--regex-only", *args)
        self.assertTrue(fast, "%s: no output" % path)
        if fast != slow:
            self.fail("%s: the phrase matcher and Vectorscan differ at %s" % (
                path, first_difference(fast, slow)))
        return fast

    def test_corpora(self):
        """Every labelled corpus and feed in tests/, explained match by match."""
        paths = sorted(glob.glob(os.path.join(SRC, "tests", "corpus", "*.jsonl")))
        paths += sorted(glob.glob(os.path.join(SRC, "tests", "corpus", "pool", "*.jsonl")))
        paths += sorted(glob.glob(os.path.join(SRC, "tests", "corpus", "test", "*.jsonl")))
        paths += sorted(glob.glob(os.path.join(FEEDS, "*.feed")))
        self.assertGreater(len(paths), 30)
        for path in paths:
            with self.subTest(path=os.path.relpath(path, SRC)):
                self.assert_same(path, "--explain")
        # The rules alone choose their evidence differently from the model.
        self.assert_same(os.path.join(SRC, "tests", "corpus", "labelled.jsonl"),
                         "--no-model", "--explain")

    def test_generated_feed(self):
        """100,000 generated articles, packed into a recorded feed."""
        with tempfile.TemporaryDirectory() as tmp:
            jsonl, feed = os.path.join(tmp, "gen.jsonl"), os.path.join(tmp, "gen.feed")
            generate(jsonl, N_GENERATED)
            subprocess.run([NEWSALERT, "pack", jsonl, "-o", feed], check=True,
                           stdout=subprocess.DEVNULL)
            out = self.assert_same(feed)
            # Enough of them are alerts, with evidence and actors, for the
            # comparison to mean something.
            alerts = out.count(b"\n")
            self.assertGreater(alerts, N_GENERATED // 10)
            self.assertIn(b'"actors"', out)
            digest = hashlib.sha256(out).hexdigest()[:16]
            print("generated feed: %d articles, %d alerts, sha256 %s" % (N_GENERATED, alerts, digest))


if __name__ == "__main__":
    unittest.main()
