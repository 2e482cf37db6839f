"""The systemd unit: `systemd-analyze security --offline=true` must rate it
at NA_MAX_EXPOSURE (1.5) or lower, and `systemd-analyze verify` must have
nothing to say about it.

verify checks that ExecStart= names an executable, so it runs on a copy of
the unit whose ExecStart= points at the binary just built; --man=no because
the man pages of Documentation= are not installed on a build machine
(the man page tests check them instead).

Usage: check_unit.py UNIT NEWSALERTD_BINARY
Exit 0 pass, 1 fail, 77 skip (systemd-analyze is not installed)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

MAX_EXPOSURE = float(os.environ.get("NA_MAX_EXPOSURE", "1.5"))


def main():
    unit, binary = sys.argv[1], os.path.abspath(sys.argv[2])
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("SKIP: systemd-analyze is not installed (Debian package systemd; "
              "./bootstrap deps installs it)")
        return 77
    failures = []

    # Exposure. The offline mode reads the unit file alone, no manager needed.
    r = subprocess.run([analyze, "security", "--offline=true", "--no-pager", unit],
                       capture_output=True, text=True)
    out = r.stdout + r.stderr
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", out)
    if m is None:
        failures.append("no 'Overall exposure level' in systemd-analyze security "
                        "output (exit %d):\n%s" % (r.returncode, out))
    else:
        level = float(m.group(1))
        print("exposure %.1f (at most %.1f allowed)" % (level, MAX_EXPOSURE))
        if level > MAX_EXPOSURE:
            weak = [line.strip() for line in out.splitlines() if "\u2717" in line]
            failures.append("exposure %.1f is above %.1f; what counts against it:\n  %s"
                            % (level, MAX_EXPOSURE, "\n  ".join(weak)))

    # Verification, on a copy that runs the built binary.
    with open(unit, encoding="utf-8") as f:
        text = f.read()
    if not re.search(r"^ExecStart=\S*/newsalertd ", text, re.M):
        failures.append("ExecStart= does not run newsalertd")
    text = re.sub(r"^ExecStart=\S*/newsalertd ", "ExecStart=%s " % binary, text, flags=re.M)
    tmp = tempfile.mkdtemp(prefix="na-unit-")
    try:
        copy = os.path.join(tmp, os.path.basename(unit))
        with open(copy, "w", encoding="utf-8") as f:
            f.write(text)
        r = subprocess.run([analyze, "verify", "--man=no", copy],
                           capture_output=True, text=True)
        out = (r.stdout + r.stderr).strip()
        print("verify: exit %d%s" % (r.returncode, (", said:\n" + out) if out else ", silent"))
        # Other units on the machine may draw remarks of their own; any
        # remark about ours, or a failure, fails the test.
        ours = [line for line in out.splitlines() if os.path.basename(unit) in line]
        if r.returncode != 0 or ours:
            failures.append("systemd-analyze verify is not clean (exit %d):\n%s"
                            % (r.returncode, out))
    finally:
        shutil.rmtree(tmp)

    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
