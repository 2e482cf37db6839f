"""What gets installed, and that it works from where it lands.

  check_install.py tree BUILD_DIR SOURCE_DIR
      `DESTDIR=<scratch> cmake --install BUILD_DIR`, then check the tree.
  check_install.py deb DEB_BUILD_DIR SOURCE_DIR
      `./bootstrap deb` (a /usr build and `cpack -G DEB`), then check the
      package's control fields (name, section, maintainer, Depends covering
      every shared library the binaries load, conffiles for everything
      under /etc), `dpkg -x` it into a scratch root and check that tree.

Checking a tree: every expected file is there (binaries, the shipped
config and rules, the unit, the man pages, the headers with the generated
protobuf-c ones, libnewsalert.a, newsalert.pc), the unit and the man pages
name the installed paths, the installed newsalertd defaults to the
installed config and accepts it with --check-config, and a small C program
builds against the installed library with only `pkg-config --cflags --libs
newsalert` and tags an article with the installed rules.

Exit 0 pass, 1 fail."""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

problems = []


def fail(msg):
    problems.append(msg)
    print("FAIL: " + msg)


def run(argv, env=None, check=True):
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        raise SystemExit("FAIL: %s exited %d:\n%s%s" % (" ".join(argv), r.returncode,
                                                       r.stdout, r.stderr))
    return r


def layout(build):
    with open(os.path.join(build, "install", "layout.txt")) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line)


def expected_files(src, lay):
    conf = lay["confdir"]
    files = [os.path.join(lay["bindir"], "newsalertd"),
             os.path.join(lay["bindir"], "newsalert"),
             os.path.join(conf, "newsalertd.yaml"),
             os.path.join(conf, "actors.yaml"),
             os.path.join(lay["unitdir"], "newsalertd.service"),
             os.path.join(lay["mandir"], "man8", "newsalertd.8"),
             os.path.join(lay["mandir"], "man5", "newsalertd.yaml.5"),
             os.path.join(lay["mandir"], "man1", "newsalert.1"),
             os.path.join(lay["libdir"], "libnewsalert.a"),
             os.path.join(lay["libdir"], "pkgconfig", "newsalert.pc"),
             os.path.join(lay["includedir"], "newsalert", "v1", "article.pb-c.h"),
             os.path.join(lay["includedir"], "newsalert", "v1", "alert.pb-c.h")]
    for r in sorted(glob.glob(os.path.join(src, "config", "rules", "*.yaml"))):
        files.append(os.path.join(conf, "rules", os.path.basename(r)))
    for h in sorted(glob.glob(os.path.join(src, "include", "newsalert", "*.h"))):
        files.append(os.path.join(lay["includedir"], "newsalert", os.path.basename(h)))
    return files


def check_tree(root, src, lay):
    at = lambda p: root + p  # noqa: E731  (paths in the layout are absolute)
    for f in expected_files(src, lay):
        if not os.path.isfile(at(f)):
            fail("not installed: " + f)
    for b in ("newsalertd", "newsalert"):
        if not os.access(at(os.path.join(lay["bindir"], b)), os.X_OK):
            fail("not executable: " + os.path.join(lay["bindir"], b))
    if problems:
        return
    config = os.path.join(lay["confdir"], "newsalertd.yaml")

    # The unit and the man pages name this install's paths.
    with open(at(os.path.join(lay["unitdir"], "newsalertd.service"))) as f:
        unit = f.read()
    want = "ExecStart=%s -c %s\n" % (os.path.join(lay["bindir"], "newsalertd"), config)
    if want not in unit:
        fail("the installed unit lacks %r" % want.strip())
    with open(at(os.path.join(lay["mandir"], "man8", "newsalertd.8"))) as f:
        if config not in f.read():
            fail("the installed newsalertd.8 does not name " + config)

    # The installed daemon defaults to the installed config, and takes it.
    daemon = at(os.path.join(lay["bindir"], "newsalertd"))
    out = run([daemon, "--help"]).stdout
    if "(default %s)" % config not in out:
        fail("newsalertd --help does not default to %s:\n%s" % (config, out))
    out = run([daemon, "--check-config", "-c", at(config)]).stdout
    print("installed config: " + out.strip())
    if not re.search(r": ok \(\d+ tags", out):
        fail("--check-config of the installed config said: " + out)

    # A consumer builds with pkg-config alone, against the installed tree.
    pcdir = at(os.path.join(lay["libdir"], "pkgconfig"))
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir + os.pathsep + os.environ.get(
        "PKG_CONFIG_PATH", ""))
    pc = ["pkg-config", "--define-variable=prefix=" + at(lay["prefix"])]
    flags = run(pc + ["--cflags", "--libs", "newsalert"], env=env).stdout.split()
    print("pkg-config --cflags --libs newsalert: " + " ".join(flags))
    work = tempfile.mkdtemp(prefix="na-consumer-")
    try:
        exe = os.path.join(work, "consumer")
        cc = os.environ.get("CC", "cc")
        r = run([cc, "-std=c11", "-Wall", "-Werror", "-o", exe,
                 os.path.join(src, "tests", "packaging", "consumer.c")] + flags,
                env=env, check=False)
        if r.returncode != 0:
            fail("the consumer does not build against the installed library:\n"
                 + r.stdout + r.stderr)
            return
        r = run([exe, at(os.path.join(lay["confdir"], "rules")),
                 at(os.path.join(lay["confdir"], "actors.yaml"))], check=False)
        print("consumer: " + (r.stdout + r.stderr).strip())
        if r.returncode != 0 or "aid" not in r.stdout:
            fail("the consumer did not tag its article with the installed rules")
    finally:
        shutil.rmtree(work)


def tree(build, src):
    lay = layout(build)
    root = tempfile.mkdtemp(prefix="na-install-")
    try:
        run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=root))
        print("installed into DESTDIR=%s, prefix %s" % (root, lay["prefix"]))
        check_tree(root, src, lay)
    finally:
        shutil.rmtree(root)


def needed_packages(binaries):
    """The Debian packages that hold the shared libraries the binaries name
    in their ELF NEEDED entries (what dpkg-shlibdeps must have covered)."""
    pkgs = {}
    for b in binaries:
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^]]+)\]",
                            run(["readelf", "-d", b]).stdout)
        paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", run(["ldd", b]).stdout, re.M))
        for soname in needed:
            lib = paths.get(soname)
            if lib is None:
                fail("%s needs %s, which ldd does not find" % (b, soname))
                continue
            r = None
            # Merged /usr: dpkg may know the file under /lib or /usr/lib.
            for p in (lib, os.path.realpath(lib), re.sub(r"^/usr", "", lib),
                      "/usr" + lib):
                r = run(["dpkg-query", "-S", p], check=False)
                if r.returncode == 0:
                    break
            if r.returncode == 0:
                pkgs[r.stdout.split(":")[0].strip()] = soname
            else:
                fail("no Debian package holds %s, which %s loads" % (lib, b))
    return pkgs


def deb(build, src):
    for tool in ("dpkg-deb", "dpkg-shlibdeps", "cpack", "file", "readelf"):
        if shutil.which(tool) is None:
            print("FAIL: %s is not installed (packages dpkg-dev, file, cmake; "
                  "./bootstrap deps installs them)" % tool)
            return
    r = run(["sh", os.path.join(src, "bootstrap"), "deb"],
            env=dict(os.environ, DEB_BUILD_DIR=build))
    path = r.stdout.strip().splitlines()[-1]
    print("package: " + path)
    if not os.path.isfile(path):
        fail("bootstrap deb printed %r, which is not a file" % path)
        return
    lay = layout(build)
    if lay["bindir"] != "/usr/bin" or lay["confdir"] != "/etc/newsalertd":
        fail("the package's layout is not Debian's: %s" % lay)

    field = lambda f: run(["dpkg-deb", "-f", path, f]).stdout.strip()  # noqa: E731
    for f, want in (("Package", "newsalertd"), ("Section", "net")):
        if field(f) != want:
            fail("%s is %r, not %r" % (f, field(f), want))
    for f in ("Maintainer", "Description", "Version"):
        if not field(f):
            fail("no %s field" % f)
    depends = field("Depends")
    print("Depends: " + depends)
    dep_names = {d.strip().split()[0] for d in re.split(r"[,|]", depends) if d.strip()}
    bins = [os.path.join(build, "bin", b) for b in ("newsalertd", "newsalert")]
    needed = needed_packages(bins)
    print("the binaries need: " + " ".join(sorted(needed)))
    for pkg, lib in sorted(needed.items()):
        if pkg not in dep_names:
            fail("Depends lacks %s (for %s)" % (pkg, lib))

    root = tempfile.mkdtemp(prefix="na-deb-")
    try:
        control = os.path.join(root, "DEBIAN")
        run(["dpkg-deb", "-e", path, control])
        with open(os.path.join(control, "conffiles")) as f:
            conffiles = sorted(line.strip() for line in f if line.strip())
        etc = sorted(p for p in run(["dpkg-deb", "-c", path]).stdout.split()
                     if p.startswith("./etc/") and not p.endswith("/"))
        if conffiles != [p[1:] for p in etc]:
            fail("conffiles %s are not the package's /etc files %s" % (conffiles, etc))
        for script in ("postinst", "prerm", "postrm"):
            if not os.access(os.path.join(control, script), os.X_OK):
                fail("no executable %s maintainer script" % script)
        run(["dpkg-deb", "-x", path, root])
        print("extracted into " + root)
        check_tree(root, src, lay)
        with open(os.path.join(src, "systemd", "newsalertd.service")) as f:
            committed = f.read()
        with open(root + os.path.join(lay["unitdir"], "newsalertd.service")) as f:
            if f.read() != committed:
                fail("the packaged unit differs from systemd/newsalertd.service")
    finally:
        shutil.rmtree(root)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("tree", "deb"):
        print(__doc__)
        return 64
    build, src = os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    (tree if sys.argv[1] == "tree" else deb)(build, src)
    if problems:
        print("%d problems" % len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
