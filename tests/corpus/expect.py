#!/usr/bin/env python3
"""Runs a command and compares its standard output with a file, printing a
unified diff when they differ. usage: expect.py EXPECTED -- COMMAND..."""
import difflib
import subprocess
import sys


def main(argv):
    expected, cmd = argv[1], argv[3:]
    r = subprocess.run(cmd, capture_output=True, text=True)
    want = open(expected, encoding="utf-8").read()
    if r.stdout == want:
        return 0
    sys.stdout.writelines(difflib.unified_diff(
        want.splitlines(True), r.stdout.splitlines(True), expected, "output"))
    sys.stderr.write(r.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
