"""The systemd unit: `systemd-analyze security --offline=true` must rate it
at NA_MAX_EXPOSURE (1.5) or lower, and `systemd-analyze verify` must have
nothing to say about it. The unit's settings that other parts rely on are
there: a RuntimeDirectory= of the daemon's name (for ipc:///run/newsalertd/
endpoints; check_runtime_dir.py runs the daemon in it), and restart rules
that match the daemon's exit codes: the built binary is run into a usage
error, a bad config and a runtime failure, and the codes it gives for the
first two (64, 78) must be in RestartPreventExitStatus=, the third must not
(Restart=on-failure restarts it).

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

    failures += check_settings(text)
    failures += check_exit_codes(text, binary)

    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


def settings(text):
    """The unit's assignments by name; the ones read here appear once."""
    kv = {}
    for name, value in re.findall(r"^(\w+)=(.*)$", text, re.M):
        kv[name] = value.strip()
    return kv


def check_settings(text):
    kv = settings(text)
    failures = []
    if kv.get("RuntimeDirectory") != "newsalertd":
        failures.append("RuntimeDirectory= is %r, not 'newsalertd': ipc:///run/newsalertd/ "
                        "endpoints cannot be bound" % kv.get("RuntimeDirectory"))
    mode = kv.get("RuntimeDirectoryMode", "0755")
    if not re.fullmatch(r"0?[0-7]{3}", mode) or int(mode, 8) & 0o022:
        failures.append("RuntimeDirectoryMode=%s lets others write into /run/newsalertd" % mode)
    print("runtime directory: /run/%s, mode %s" % (kv.get("RuntimeDirectory"), mode))
    return failures


def check_exit_codes(text, binary):
    """Each failure the daemon can meet at start, run for real: what it
    exits with decides whether systemd tries again."""
    kv = settings(text)
    failures = []
    prevent = set(kv.get("RestartPreventExitStatus", "").split())
    if kv.get("Restart") != "on-failure":
        failures.append("Restart= is %r, not on-failure" % kv.get("Restart"))
    tmp = tempfile.mkdtemp(prefix="na-exit-")
    try:
        bad = os.path.join(tmp, "bad.yaml")
        with open(bad, "w") as f:
            f.write("feed:\n  endpoints: [tcp://127.0.0.1:1]\n  no_such_key: 1\n")
        good = os.path.join(tmp, "good.yaml")
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        with open(good, "w") as f:
            f.write("rules:\n  dir: %s\n  actors: %s\n  model: %s\nstate:\n  dir: %s\n"
                    % (os.path.join(src, "config", "rules"),
                       os.path.join(src, "config", "actors.yaml"),
                       os.path.join(src, "config", "tagger.model"),
                       os.path.join(tmp, "state")))
        # (what, argv, the code it must exit with, may systemd restart it)
        cases = (
            ("a usage error", [binary, "--no-such-option"], 64, False),
            ("a config with an unknown key", [binary, "-c", bad], 78, False),
            ("a missing config file", [binary, "-c", os.path.join(tmp, "none.yaml")], 78,
             False),
            ("a publish endpoint that cannot be bound",
             [binary, "-c", good, "--metrics", "off", "--catchup", "off",
              "--publish", "ipc://%s/no/such/dir/alerts" % tmp], 1, True),
        )
        for what, argv, want, restart in cases:
            try:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            except subprocess.TimeoutExpired:
                failures.append("newsalertd with %s did not exit" % what)
                continue
            print("%s: exit %d (%s)" % (what, r.returncode,
                                        "restarted" if str(r.returncode) not in prevent
                                        else "not restarted"))
            if r.returncode != want:
                failures.append("newsalertd with %s exited %d, not %d:\n%s"
                                % (what, r.returncode, want, r.stderr))
            elif (str(want) in prevent) == restart:
                failures.append("exit %d (%s) %s in RestartPreventExitStatus=%s"
                                % (want, what, "is" if restart else "is not",
                                   " ".join(sorted(prevent))))
    finally:
        shutil.rmtree(tmp)
    return failures


if __name__ == "__main__":
    sys.exit(main())
