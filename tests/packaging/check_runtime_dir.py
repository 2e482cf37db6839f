"""An ipc:// endpoint under /run/newsalertd works with the unit's settings.

systemd is not running on a build machine, so this does by hand what the
unit asks of it: in a private mount namespace (unshare), /run becomes an
empty tmpfs, the unit's RuntimeDirectory= is made with its
RuntimeDirectoryMode= and given to an unprivileged user (as DynamicUser=
would), and newsalertd runs as that user with the unit's UMask=, publishing
and serving catch-up on ipc:///run/newsalertd/. An article sent on the feed
must come back as an alert read from the ipc socket, the sockets must be
the daemon's own and closed to other users, and the same daemon without the
runtime directory must fail to start (so the directory is what makes it
work).

Usage: check_runtime_dir.py UNIT NEWSALERTD_BINARY SOURCE_DIR
Exit 0 pass, 1 fail, 77 skip (not root, or no mount namespaces here)."""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

# A uid and gid from systemd's dynamic range (61184-65519), as DynamicUser=
# would pick; no file on the host belongs to them.
UID = GID = 61917
WAIT = 30.0


def unit_settings(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    kv = dict(re.findall(r"^(RuntimeDirectory|RuntimeDirectoryMode|UMask|DynamicUser)=(.*)$",
                         text, re.M))
    return kv


def outside(unit, binary, src):
    if os.geteuid() != 0:
        print("SKIP: needs root, to make a mount namespace and run as another user")
        return 77
    unshare = shutil.which("unshare")
    if unshare is None:
        print("SKIP: unshare (util-linux) is not installed")
        return 77
    probe = subprocess.run([unshare, "--mount", "--propagation", "private", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        print("SKIP: no mount namespace here: " + probe.stderr.strip())
        return 77
    r = subprocess.run([unshare, "--mount", "--propagation", "private", sys.executable,
                        os.path.abspath(__file__), "--inside", unit, binary, src])
    return r.returncode


def article(pb, article_id):
    with open(os.path.join(os.environ["NA_SOURCE_DIR"], "tests", "corpus",
                           "seed-article.txt"), encoding="utf-8") as f:
        headline, body = f.read().split("\n", 1)
    return pb.Article(id=article_id, source="test", url="https://example.org/" + article_id,
                      headline=headline, body=body.strip("\n"), language="en",
                      published_at_ms=1720180000000).SerializeToString()


def start(binary, config, feed, publish, catchup, umask):
    def as_service_user():
        os.setgroups([])
        os.setgid(GID)
        os.setuid(UID)
        os.umask(umask)

    return subprocess.Popen([binary, "-c", config, "--feed", feed, "--publish", publish,
                             "--catchup", catchup, "--metrics", "off"],
                            stderr=subprocess.PIPE, text=True, preexec_fn=as_service_user)


def inside(unit, binary, src):
    failures = []
    kv = unit_settings(unit)
    name = kv.get("RuntimeDirectory", "").strip()
    if not name:
        print("FAIL: %s has no RuntimeDirectory=" % unit)
        return 1
    if kv.get("DynamicUser", "").strip() != "yes":
        failures.append("the unit has no DynamicUser=yes: the checks below assume one")
    mode = int(kv.get("RuntimeDirectoryMode", "0755"), 8)
    umask = int(kv.get("UMask", "0022"), 8)
    print("unit: RuntimeDirectory=%s mode %04o, UMask=%04o" % (name, mode, umask))

    # Python's protobuf runtime for the messages, from the project's .proto.
    os.environ["NA_SOURCE_DIR"] = src
    gen = tempfile.mkdtemp(prefix="na-proto-")
    subprocess.run(["protoc", "--proto_path=" + os.path.join(src, "proto"),
                    "--python_out=" + gen, "newsalert/v1/article.proto",
                    "newsalert/v1/alert.proto"], check=True)
    sys.path.insert(0, gen)
    from newsalert.v1 import alert_pb2, article_pb2  # noqa: E402
    import zmq  # noqa: E402

    # Nothing of the host's /run is seen or touched from here on.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run"], check=True)
    rundir = os.path.join("/run", name)
    work = "/run/na-check"
    os.mkdir(work, 0o755)
    state = os.path.join(work, "state")
    os.mkdir(state, 0o750)
    os.chown(state, UID, GID)
    config = os.path.join(work, "newsalertd.yaml")
    with open(config, "w") as f:
        f.write("rules:\n  dir: %s\n  actors: %s\n  model: %s\nstate:\n  dir: %s\n" % (
            os.path.join(src, "config", "rules"), os.path.join(src, "config", "actors.yaml"),
            os.path.join(src, "config", "tagger.model"), state))
    os.chmod(config, 0o644)
    publish = "ipc://%s/alerts" % rundir
    catchup = "ipc://%s/catchup" % rundir

    ctx = zmq.Context()
    feed = ctx.socket(zmq.XPUB)
    feed.setsockopt(zmq.LINGER, 0)
    feed.bind("tcp://127.0.0.1:*")
    feed_ep = feed.getsockopt(zmq.LAST_ENDPOINT).decode()

    # Without the runtime directory: /run is root's, so the bind must fail
    # and the daemon must exit at start, with a runtime failure (1) that
    # names the endpoint, not a config error.
    p = start(binary, config, feed_ep, publish, catchup, umask)
    try:
        _, err = p.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        failures.append("without %s the daemon did not fail at start" % rundir)
    else:
        print("without %s: exit %d: %s" % (rundir, p.returncode, err.strip().splitlines()[-1:]))
        if p.returncode == 0 or rundir not in err:
            failures.append("without %s the daemon exited %d, and said:\n%s"
                            % (rundir, p.returncode, err))

    # With it, as systemd makes it.
    os.mkdir(rundir)
    os.chmod(rundir, mode)
    os.chown(rundir, UID, GID)
    p = start(binary, config, feed_ep, publish, catchup, umask)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"alert.")
    try:
        deadline = time.monotonic() + WAIT
        # The daemon subscribes to the feed once it is up, after it bound.
        while True:
            left = deadline - time.monotonic()
            if p.poll() is not None or left <= 0:
                raise RuntimeError("the daemon never subscribed to the feed (exit %s):\n%s"
                                   % (p.poll(), p.stderr.read() if p.poll() is not None
                                      else ""))
            if feed.poll(100) and feed.recv()[:1] == b"\x01":
                break
        for sock in ("alerts", "catchup"):
            st = os.lstat(os.path.join(rundir, sock))
            print("%s/%s: mode %04o, uid %d" % (rundir, sock, stat.S_IMODE(st.st_mode),
                                                st.st_uid))
            if not stat.S_ISSOCK(st.st_mode) or st.st_uid != UID:
                failures.append("%s/%s is not a socket of the service user" % (rundir, sock))
            if st.st_mode & ~umask & 0o777 != st.st_mode & 0o777:
                failures.append("%s/%s has mode %04o, wider than UMask=%04o allows"
                                % (rundir, sock, stat.S_IMODE(st.st_mode), umask))
        sub.connect(publish)
        # A slow joiner: send until the first alert arrives.
        got = None
        n = 0
        while got is None and time.monotonic() < deadline:
            n += 1
            feed.send_multipart([b"news", article(article_pb2, "rundir-%d" % n)])
            if sub.poll(300):
                got = sub.recv_multipart()
        if got is None:
            failures.append("no alert on %s" % publish)
        else:
            a = alert_pb2.Alert()
            a.ParseFromString(got[-1])
            print("alert on %s: topic %s, article %s" % (publish, got[0].decode(),
                                                          a.article_id))
            if not a.article_id.startswith("rundir-"):
                failures.append("the alert is for %r" % a.article_id)
    except RuntimeError as e:
        failures.append(str(e))
    finally:
        if p.poll() is None:
            p.terminate()
        try:
            _, err = p.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            failures.append("the daemon did not stop on SIGTERM")
        sub.close()
        feed.close()
        ctx.term()
        shutil.rmtree(gen, ignore_errors=True)
    if p.returncode != 0:
        failures.append("the daemon exited %d:\n%s" % (p.returncode, err))

    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


def main():
    args = sys.argv[1:]
    if args[:1] == ["--inside"]:
        return inside(*args[1:])
    if len(args) != 3:
        print(__doc__)
        return 64
    return outside(os.path.abspath(args[0]), os.path.abspath(args[1]), os.path.abspath(args[2]))


if __name__ == "__main__":
    sys.exit(main())
