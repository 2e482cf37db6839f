"""The man pages against the programs.

  check_man.py lint MANDIR
      `mandoc -T lint` on every page: no message at all, except remarks
      that a page named in .Xr is not in this machine's man database.
  check_man.py options MANDIR BINDIR
      Every long option printed by `newsalertd --help` and `newsalert SUB
      --help` (for every subcommand `newsalert --help` lists) must have an
      .It entry in newsalertd(8) or in the subcommand's .Ss section of
      newsalert(1), those of `newsalert --help` must be mentioned in
      newsalert(1), and every key of `newsalertd --help-config`
      in newsalertd.yaml(5); and what the pages document as an option or a
      key must still exist. Nothing is listed here by hand, so options and
      keys that later changes add are caught too.

Exit 0 pass, 1 fail."""

import os
import re
import shutil
import subprocess
import sys

PAGES = ["newsalertd.8", "newsalertd.yaml.5", "newsalert.1"]
LONG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


def lint(mandir):
    mandoc = shutil.which("mandoc")
    if mandoc is None:
        print("FAIL: mandoc is not installed (Debian package mandoc; "
              "./bootstrap deps installs it)")
        return 1
    bad = 0
    for page in PAGES:
        r = subprocess.run([mandoc, "-T", "lint", "-W", "all", os.path.join(mandir, page)],
                           capture_output=True, text=True)
        msgs = [m for m in (r.stdout + r.stderr).splitlines()
                if "mandoc.db" not in m and "referenced manual not found" not in m]
        print("%s: %s" % (page, "clean" if not msgs else "%d messages" % len(msgs)))
        for m in msgs:
            print("  " + m)
        bad += len(msgs)
    return 1 if bad else 0


def run(*argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("FAIL: %s exited %d: %s" % (" ".join(argv), r.returncode, r.stderr))
    return r.stdout


def help_options(text):
    return set(LONG.findall(text))


def documented_options(src):
    """Long options in mdoc source: `Fl Fl name` (and a literal --name)."""
    return set(re.findall(r"\bFl Fl ([a-z][a-z0-9-]*)", src)) | set(LONG.findall(src))


def item_options(src):
    """Long options a page lists as its own, in .It lines."""
    found = set()
    for line in src.splitlines():
        if line.startswith(".It "):
            found |= set(re.findall(r"\bFl Fl ([a-z][a-z0-9-]*)", line))
    return found


def sections(src):
    """The .Ss subsections of a page, by name."""
    out, name = {}, None
    for line in src.splitlines():
        if line.startswith(".Sh "):
            name = None
        elif line.startswith(".Ss "):
            name = line[4:].strip()
            out[name] = ""
        elif name is not None:
            out[name] += line + "\n"
    return out


def options(mandir, bindir):
    daemon = os.path.join(bindir, "newsalertd")
    tool = os.path.join(bindir, "newsalert")
    read = lambda p: open(os.path.join(mandir, p), encoding="utf-8").read()  # noqa: E731
    problems = []

    # newsalertd(8)
    page = read("newsalertd.8")
    have = help_options(run(daemon, "--help"))
    for o in sorted(have - item_options(page)):
        problems.append("newsalertd.8 has no .It entry for --%s (in newsalertd --help)" % o)
    for o in sorted(item_options(page) - have):
        problems.append("newsalertd.8 documents --%s, which newsalertd --help lacks" % o)
    print("newsalertd: %d options checked" % len(have))

    # newsalertd.yaml(5)
    page = read("newsalertd.yaml.5")
    keys = set(re.findall(r"^\s+([a-z_]+(?:\.[a-z_]+)+)\s", run(daemon, "--help-config"), re.M))
    if not keys:
        problems.append("newsalertd --help-config printed no keys")
    items = set(re.findall(r"^\.It Sy ([a-z_]+(?:\.[a-z_]+)+)\b", page, re.M))
    for k in sorted(keys - items):
        problems.append("newsalertd.yaml.5 has no '.It Sy %s' (in newsalertd --help-config)" % k)
    for k in sorted(items - keys):
        problems.append("newsalertd.yaml.5 documents %s, which --help-config lacks" % k)
    print("newsalertd.yaml: %d keys checked" % len(keys))

    # newsalert(1): the top level, then each subcommand in its own .Ss.
    page = read("newsalert.1")
    top = run(tool, "--help")
    subs = re.findall(r"^  ([a-z][a-z0-9-]*)\s{2,}\S", top.split("Commands:", 1)[-1], re.M)
    if not subs:
        problems.append("newsalert --help lists no subcommands")
    for o in sorted(help_options(top) - documented_options(page)):
        problems.append("newsalert.1 does not document --%s (in newsalert --help)" % o)
    ss = sections(page)
    for sub in subs:
        text = run(tool, sub, "--help")
        have = help_options(text)
        if sub not in ss:
            problems.append("newsalert.1 has no '.Ss %s' section for the subcommand" % sub)
            continue
        for o in sorted(have - item_options(ss[sub])):
            problems.append("newsalert.1, section %s, has no .It entry for --%s "
                            "(in newsalert %s --help)" % (sub, o, sub))
        for o in sorted(item_options(ss[sub]) - have):
            problems.append("newsalert.1, section %s, documents --%s, which "
                            "newsalert %s --help lacks" % (sub, o, sub))
    for name in sorted(set(ss) - set(subs)):
        problems.append("newsalert.1 has a section %s, which is not a subcommand" % name)
    print("newsalert: %d subcommands checked (%s)" % (len(subs), " ".join(subs)))

    for p in problems:
        print("FAIL: " + p)
    return 1 if problems else 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "lint":
        return lint(sys.argv[2])
    if len(sys.argv) == 4 and sys.argv[1] == "options":
        return options(sys.argv[2], sys.argv[3])
    print(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main())
