"""Integration tests of `newsalert journal` and `newsalert quarantine`: the
real tool on journals and quarantines written by libnewsalert (through the
na-fixture test program), damaged here on purpose. The journal's on-disk
format is also checked against docs/journal.md by an independent reader
below (with its own CRC-32C), and the alerts are decoded with Python's
protobuf runtime."""

import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

from harness import BIN, WAIT, alert_pb2, load_json

NEWSALERT = os.path.join(BIN, "newsalert")
FIXTURE = os.path.join(BIN, "na-fixture")


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def parse_segment(path):
    """The documented segment layout: a 32-byte header, then records of
    u32 length | u32 CRC-32C | u64 seq | i64 time_ms | payload."""
    with open(path, "rb") as f:
        data = f.read()
    magic, version, hsize, hcrc, epoch, first = struct.unpack_from("<8sHHIQQ", data, 0)
    assert magic == b"NAJRNL\0\0", magic
    assert version == 1 and hsize == 32
    zeroed = data[:12] + b"\0\0\0\0" + data[16:32]
    assert crc32c(zeroed) == hcrc, "header CRC"
    records, off = [], 32
    while off < len(data):
        length, crc = struct.unpack_from("<II", data, off)
        body = data[off + 8:off + 8 + length]
        assert len(body) == length and crc32c(body) == crc, "record CRC at %d" % off
        seq, time_ms = struct.unpack_from("<Qq", body, 0)
        records.append((seq, time_ms, body[16:]))
        off += 8 + length
    return epoch, first, records


def run(*args, timeout=WAIT):
    return subprocess.run([NEWSALERT] + list(args), capture_output=True, text=True,
                          timeout=timeout)


class ToolTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="na-tools-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def fixture(self, kind, name, *args):
        path = os.path.join(self.dir, name)
        subprocess.run([FIXTURE, kind, path] + [str(a) for a in args], check=True,
                       timeout=WAIT)
        return path

    def segments(self, journal):
        return sorted(os.path.join(journal, n) for n in os.listdir(journal)
                      if n.startswith("seg-") and n.endswith(".naj"))


class TestJournalTool(ToolTest):
    def test_format_matches_the_documentation(self):
        j = self.fixture("journal", "j", 30, 400)
        segs = self.segments(j)
        self.assertGreater(len(segs), 3)
        seqs, epochs = [], set()
        for path in segs:
            epoch, first, records = parse_segment(path)
            epochs.add(epoch)
            self.assertEqual(os.path.basename(path), "seg-%020d.naj" % first)
            self.assertEqual(records[0][0], first)
            for seq, time_ms, payload in records:
                a = alert_pb2.Alert.FromString(payload)
                self.assertEqual(a.seq, seq)
                self.assertEqual(a.epoch, epoch)
                self.assertEqual(time_ms, 1720000000000 + seq)
                seqs.append(seq)
        self.assertEqual(seqs, list(range(1, 31)))
        self.assertEqual(len(epochs), 1)

    def test_lists_alerts_as_text_and_json(self):
        j = self.fixture("journal", "j", 30, 400)
        r = run("journal", j)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 30)
        self.assertRegex(lines[2], r"^#3 +2024-07-03T09:46:40\.003Z  alliance\(0\.75\) "
                                   r"summit\(0\.50\)  Headline 3$")
        r = run("journal", j, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        alerts = [load_json(line) for line in r.stdout.splitlines()]
        self.assertEqual([a["seq"] for a in alerts], list(range(1, 31)))
        self.assertEqual(alerts[5]["headline"], "Headline 6")
        self.assertEqual(alerts[5]["article_id"], "a-6")
        self.assertEqual([t["tag"] for t in alerts[5]["tags"]], ["aid", "summit"])
        self.assertEqual(alerts[5]["journal_time_ms"], 1720000000006)
        epoch, _, _ = parse_segment(self.segments(j)[0])
        self.assertEqual({a["epoch"] for a in alerts}, {epoch})

    def test_since(self):
        j = self.fixture("journal", "j", 30, 400)
        r = run("journal", j, "--since", "25", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([load_json(x)["seq"] for x in r.stdout.splitlines()],
                         [26, 27, 28, 29, 30])
        r = run("journal", j, "--since", "30")
        self.assertEqual((r.returncode, r.stdout), (0, ""))

    def test_single_segment_file(self):
        j = self.fixture("journal", "j", 30, 400)
        seg = self.segments(j)[1]
        _, first, records = parse_segment(seg)
        r = run("journal", seg, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([load_json(x)["seq"] for x in r.stdout.splitlines()],
                         [s for s, _, _ in records])

    def test_torn_tail_is_reported_and_left_alone(self):
        j = self.fixture("journal", "j", 30, 400)
        newest = self.segments(j)[-1]
        size = os.path.getsize(newest)
        os.truncate(newest, size - 5)
        r = run("journal", j, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("torn tail", r.stderr)
        self.assertIn("not cut", r.stderr)
        self.assertEqual([load_json(x)["seq"] for x in r.stdout.splitlines()],
                         list(range(1, 30)))
        # Read-only: the daemon, not the tool, repairs the journal.
        self.assertEqual(os.path.getsize(newest), size - 5)

    def test_damaged_middle_is_skipped(self):
        j = self.fixture("journal", "j", 30, 400)
        seg = self.segments(j)[1]
        _, first, records = parse_segment(seg)
        self.assertGreaterEqual(len(records), 2)
        with open(seg, "r+b") as f:
            f.seek(32 + 24 + 2)  # the first record's payload
            b = f.read(1)
            f.seek(32 + 24 + 2)
            f.write(bytes([b[0] ^ 0x01]))
        r = run("journal", j, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(os.path.basename(seg) + ": damaged record at offset 32", r.stderr)
        self.assertIn("bad CRC", r.stderr)
        seqs = [load_json(x)["seq"] for x in r.stdout.splitlines()]
        lost = [s for s, _, _ in records]
        self.assertEqual(seqs, [s for s in range(1, 31) if s not in lost])

    def test_gone_after_retention(self):
        # 1 KB cap: the oldest segments are deleted as the fixture writes.
        j = self.fixture("journal", "j", 30, 300, 1000)
        r = run("journal", j, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        seqs = [load_json(x)["seq"] for x in r.stdout.splitlines()]
        self.assertGreater(seqs[0], 1)
        self.assertEqual(seqs, list(range(seqs[0], 31)))
        self.assertIn("alerts after seq 0 are gone (retention); the oldest available is %d"
                      % seqs[0], r.stderr)

    def test_a_payload_that_is_not_an_alert_fails(self):
        j = self.fixture("journal", "j", 3)
        seg = self.segments(j)[0]
        with open(seg, "ab") as f:
            body = struct.pack("<Qq", 4, 0) + b"\xff\xff\xff"
            f.write(struct.pack("<II", len(body), crc32c(body)) + body)
        r = run("journal", j)
        self.assertEqual(r.returncode, 1)
        self.assertIn("seq 4: 3 bytes that are not a valid newsalert.v1.Alert", r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 3)

    def test_usage_and_errors(self):
        r = run("journal", "--help")
        self.assertEqual(r.returncode, 0)
        for opt in ("--since", "--json", "--help"):
            self.assertIn(opt, r.stdout)
        self.assertEqual(run("journal").returncode, 64)
        self.assertEqual(run("journal", "a", "b").returncode, 64)
        self.assertEqual(run("journal", self.dir, "--since", "x").returncode, 64)
        self.assertEqual(run("journal", self.dir, "--since", "-1").returncode, 64)
        self.assertEqual(run("journal", self.dir, "--bogus").returncode, 64)
        r = run("journal", os.path.join(self.dir, "missing"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("No such file or directory", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "missing")))
        self.assertIn("journal", run("--help").stdout)


class TestQuarantineTool(ToolTest):
    def test_lists_entries(self):
        q = self.fixture("quarantine", "q", 6)
        r = run("quarantine", q)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 6)
        self.assertRegex(lines[0], r"^2001-09-09T01:46:40\.000000001Z  malformed_protobuf +"
                                   r"2 frames  20 bytes$")
        self.assertIn("missing_id", lines[1])
        r = run("quarantine", q, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        entries = [load_json(x) for x in r.stdout.splitlines()]
        self.assertEqual([e["time_ns"] for e in entries],
                         [10**18 + i for i in range(1, 7)])
        self.assertEqual(entries[3], {"time_ns": 10**18 + 4, "reason": "missing_id",
                                      "frames": [4, 16], "bytes": 20})

    def test_pack_gives_a_replayable_feed(self):
        q = self.fixture("quarantine", "q", 12, 200)  # several files
        self.assertGreater(len(os.listdir(q)), 2)
        feed = os.path.join(self.dir, "out.feed")
        r = run("quarantine", q, "--pack", feed)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("12 entries written", r.stderr)
        r = run("unpack", feed)
        self.assertEqual(r.returncode, 0, r.stderr)
        recs = [load_json(x) for x in r.stdout.splitlines()]
        self.assertEqual(len(recs), 12)
        for i, rec in enumerate(recs, 1):
            self.assertEqual(rec["_frames"], ["news", "not an article %d" % i])
            self.assertEqual(rec["_time_ns"], 10**18 + i)

    def test_damaged_files_are_reported_and_skipped(self):
        q = self.fixture("quarantine", "q", 12, 200)
        files = sorted(os.listdir(q))
        first = os.path.join(q, files[0])
        os.truncate(first, os.path.getsize(first) - 3)
        second = os.path.join(q, files[1])
        with open(second, "r+b") as f:
            f.write(b"X")
        r = run("quarantine", q, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(files[0] + ": a truncated entry", r.stderr)
        self.assertIn(files[1] + ": not a quarantine file (bad header)", r.stderr)
        times = [load_json(x)["time_ns"] - 10**18 for x in r.stdout.splitlines()]
        self.assertEqual(times[-1], 12)
        self.assertEqual(times, sorted(times))
        self.assertLess(len(times), 12)
        self.assertGreater(len(times), 0)

    def test_usage_and_errors(self):
        r = run("quarantine", "--help")
        self.assertEqual(r.returncode, 0)
        for opt in ("--json", "--pack", "--help"):
            self.assertIn(opt, r.stdout)
        self.assertEqual(run("quarantine").returncode, 64)
        self.assertEqual(run("quarantine", self.dir, "--json", "--pack", "x").returncode,
                         64)
        self.assertEqual(run("quarantine", self.dir, "--bogus").returncode, 64)
        self.assertEqual(run("quarantine", os.path.join(self.dir, "missing")).returncode,
                         1)
        q = self.fixture("quarantine", "q", 1)
        r = run("quarantine", q, "--pack", os.path.join(self.dir, "no", "such", "f"))
        self.assertEqual(r.returncode, 1)


if __name__ == "__main__":
    unittest.main()
