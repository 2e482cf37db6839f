"""What gets installed, and that it works from where it lands.

  check_install.py tree BUILD_DIR SOURCE_DIR
      `DESTDIR=<scratch> cmake --install BUILD_DIR`, then check the tree.
  check_install.py deb DEB_BUILD_DIR SOURCE_DIR
      `./bootstrap deb` (a /usr build and `cpack -G DEB`), which makes two
      packages, newsalertd and libnewsalert-dev. Check their control fields
      (name, section, version, the maintainer; newsalertd's Depends covering
      every shared library the binaries load, libnewsalert-dev's the -dev
      packages its pkg-config file requires; conffiles for everything under
      /etc), that each file is in the package it belongs to, each package's
      DEP-5 copyright and gzip -9n changelog, the .proto files under
      /usr/share/newsalertd/proto; `dpkg -x` both into one scratch root and
      check that tree; then lintian must report no error or warning (the
      overrides shipped in packaging/debian each say why).

Checking a tree: every expected file is there (binaries, the shipped
config and rules, the unit, the man pages (gzipped), the headers with the generated
protobuf-c ones, libnewsalert.a, newsalert.pc), the unit and the man pages
name the installed paths, the installed newsalertd defaults to the
installed config and accepts it with --check-config, and a small C program
builds against the installed library with only `pkg-config --cflags --libs
newsalert` and tags an article with the installed rules.

Exit 0 pass, 1 fail."""

import glob
import gzip
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
             os.path.join(lay["mandir"], "man8", "newsalertd.8.gz"),
             os.path.join(lay["mandir"], "man5", "newsalertd.yaml.5.gz"),
             os.path.join(lay["mandir"], "man1", "newsalert.1.gz"),
             os.path.join(lay["libdir"], "libnewsalert.a"),
             os.path.join(lay["libdir"], "pkgconfig", "newsalert.pc"),
             os.path.join(lay["includedir"], "newsalert", "v1", "article.pb-c.h"),
             os.path.join(lay["includedir"], "newsalert", "v1", "alert.pb-c.h")]
    for p in sorted(glob.glob(os.path.join(src, "proto", "newsalert", "v1", "*.proto"))):
        files.append(os.path.join(lay["datadir"], "newsalertd", "proto", "newsalert", "v1",
                                  os.path.basename(p)))
    for pkg in ("newsalertd", "libnewsalert-dev"):
        for d in ("copyright", "changelog.gz"):
            files.append(os.path.join(lay["datadir"], "doc", pkg, d))
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
    with gzip.open(at(os.path.join(lay["mandir"], "man8", "newsalertd.8.gz")), "rt") as f:
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


MAINTAINER = "newsalertd maintainers <maintainers@newsalertd.org>"
# Package name, Section, and the paths that belong in it (prefixes; every
# file must fall under one of them, and each package's own doc directory).
PACKAGES = {
    "newsalertd": ("net", ("/usr/bin/", "/etc/newsalertd/", "/lib/systemd/system/",
                           "/usr/lib/systemd/system/", "/usr/share/man/",
                           "/usr/share/newsalertd/proto/")),
    "libnewsalert-dev": ("libdevel", ("/usr/include/newsalert/", "/usr/lib/")),
}


def dev_requirements(pcfile):
    """The Debian packages that hold what newsalert.pc requires: the .pc
    files of its Requires: modules and liblinear's header (it has no .pc)."""
    with open(pcfile) as f:
        m = re.search(r"^Requires:(.*)$", f.read(), re.M)
    mods = m.group(1).replace(",", " ").split() if m else []
    files = ["/usr/include/linear.h"]
    for mod in mods:
        d = run(["pkg-config", "--variable=pcfiledir", mod]).stdout.strip()
        files.append(os.path.join(d, mod + ".pc"))
    pkgs = {}
    for f in files:
        r = run(["dpkg-query", "-S", f], check=False)
        if r.returncode != 0:
            fail("no Debian package holds %s, which newsalert.pc needs" % f)
        else:
            pkgs[r.stdout.split(":")[0].strip()] = f
    return pkgs


def check_doc(root, pkg, version):
    """/usr/share/doc/PKG: a DEP-5 copyright and changelog.gz (gzip -9n,
    Debian changelog format, of this version)."""
    doc = os.path.join(root, "usr", "share", "doc", pkg)
    try:
        with open(os.path.join(doc, "copyright")) as f:
            text = f.read()
    except OSError as e:
        fail("%s: no copyright: %s" % (pkg, e))
        return
    if not text.startswith("Format: https://www.debian.org/doc/packaging-manuals/"
                           "copyright-format/1.0/"):
        fail("%s: the copyright file is not in the machine-readable format" % pkg)
    if not re.search(r"^Files: \*$", text, re.M) or not re.search(r"^License: ISC$", text,
                                                                  re.M):
        fail("%s: the copyright file has no 'Files: *' under 'License: ISC'" % pkg)
    path = os.path.join(doc, "changelog.gz")
    try:
        with open(path, "rb") as f:
            head = f.read(10)
    except OSError as e:
        fail("%s: no changelog.gz: %s" % (pkg, e))
        return
    # RFC 1952: FLG bit 3 is FNAME, bytes 4-7 MTIME; -n leaves both out.
    if head[:2] != b"\x1f\x8b" or head[3] & 0x08 or head[4:8] != b"\0\0\0\0":
        fail("%s: changelog.gz was not made with gzip -n (name or time in it)" % pkg)
    work = tempfile.mkdtemp(prefix="na-changelog-")
    try:
        plain = os.path.join(work, "changelog")
        with open(plain, "wb") as f:
            f.write(gzip.decompress(open(path, "rb").read()))
        r = run(["dpkg-parsechangelog", "-l", plain, "-S", "Version"], check=False)
        if r.returncode != 0 or r.stdout.strip() != version:
            fail("%s: the changelog's latest version is %r, not %s: %s"
                 % (pkg, r.stdout.strip(), version, r.stderr.strip()))
    finally:
        shutil.rmtree(work)


def check_overrides(root, pkg):
    """Every lintian override in the package says why, in a comment above
    it."""
    path = os.path.join(root, "usr", "share", "lintian", "overrides", pkg)
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [line.rstrip("\n") for line in f]
    # Overrides in one block (no blank line between) share its comment.
    said = False
    for line in lines:
        if not line.strip():
            said = False
        elif line.startswith("#"):
            said = True
        elif not said:
            fail("%s: lintian override %r has no comment saying why" % (pkg, line))


def lintian(paths):
    """lintian on the packages: no error or warning stands, nor an override
    that no longer matches anything (an explanation of nothing)."""
    if shutil.which("lintian") is None:
        fail("lintian is not installed (Debian package lintian; ./bootstrap deps "
             "installs it)")
        return
    r = run(["lintian", "--no-cfg", "--display-level", ">=pedantic", "--display-info",
             "--pedantic"] + paths, check=False)
    out = (r.stdout + r.stderr).strip()
    print("lintian: exit %d%s" % (r.returncode, (":\n" + out) if out else ", nothing to say"))
    for line in out.splitlines():
        m = re.match(r"^([EW]): (\S+): (\S+)", line) or re.match(
            r"^([IPX]): (\S+): (unused-override|mismatched-override)\b", line)
        if m:
            fail("lintian: " + line)


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
    version = lay["version"]
    debs = {"newsalertd": path}
    dev = sorted(glob.glob(os.path.join(os.path.dirname(path),
                                        "libnewsalert-dev_%s_*.deb" % version)))
    if len(dev) != 1:
        fail("not one libnewsalert-dev_%s_*.deb beside %s: %s" % (version, path, dev))
        return
    debs["libnewsalert-dev"] = dev[0]
    print("package: " + dev[0])

    fields = {}
    for pkg, deb_path in debs.items():
        def field(f, deb_path=deb_path):
            return run(["dpkg-deb", "-f", deb_path, f]).stdout.strip()
        fields[pkg] = field
        section = PACKAGES[pkg][0]
        for f, want in (("Package", pkg), ("Section", section), ("Maintainer", MAINTAINER),
                        ("Version", version)):
            if field(f) != want:
                fail("%s: %s is %r, not %r" % (pkg, f, field(f), want))
        if not field("Description"):
            fail("%s: no Description" % pkg)

    depends = fields["newsalertd"]("Depends")
    print("newsalertd Depends: " + depends)
    dep_names = {d.strip().split()[0] for d in re.split(r"[,|]", depends) if d.strip()}
    bins = [os.path.join(build, "bin", b) for b in ("newsalertd", "newsalert")]
    needed = needed_packages(bins)
    print("the binaries need: " + " ".join(sorted(needed)))
    for pkg, lib in sorted(needed.items()):
        if pkg not in dep_names:
            fail("newsalertd: Depends lacks %s (for %s)" % (pkg, lib))

    root = tempfile.mkdtemp(prefix="na-deb-")
    try:
        for pkg, deb_path in debs.items():
            control = os.path.join(root, "DEBIAN-" + pkg)
            run(["dpkg-deb", "-e", deb_path, control])
            files = sorted(p[1:] for p in run(["dpkg-deb", "-c", deb_path]).stdout.split()
                           if p.startswith("./") and not p.endswith("/"))
            own = PACKAGES[pkg][1] + ("/usr/share/doc/%s/" % pkg,
                                      "/usr/share/lintian/overrides/%s" % pkg)
            for f in files:
                if not f.startswith(own):
                    fail("%s ships %s, which belongs elsewhere" % (pkg, f))
            etc = [f for f in files if f.startswith("/etc/")]
            conffiles_path = os.path.join(control, "conffiles")
            conffiles = []
            if os.path.exists(conffiles_path):
                with open(conffiles_path) as f:
                    conffiles = sorted(line.strip() for line in f if line.strip())
            if conffiles != etc:
                fail("%s: conffiles %s are not its /etc files %s" % (pkg, conffiles, etc))
            run(["dpkg-deb", "-x", deb_path, root])
            print("%s: %d files, extracted into %s" % (pkg, len(files), root))
            check_doc(root, pkg, version)
            check_overrides(root, pkg)
        for script in ("postinst", "prerm", "postrm"):
            if not os.access(os.path.join(root, "DEBIAN-newsalertd", script), os.X_OK):
                fail("newsalertd: no executable %s maintainer script" % script)

        # libnewsalert-dev brings what its pkg-config file requires.
        dev_depends = fields["libnewsalert-dev"]("Depends")
        print("libnewsalert-dev Depends: " + dev_depends)
        dev_names = {d.strip().split()[0] for d in re.split(r"[,|]", dev_depends)
                     if d.strip()}
        pcfile = root + os.path.join(lay["libdir"], "pkgconfig", "newsalert.pc")
        for pkg, what in sorted(dev_requirements(pcfile).items()):
            if pkg not in dev_names:
                fail("libnewsalert-dev: Depends lacks %s (for %s)" % (pkg, what))

        # The wire contract, as committed.
        protos = sorted(glob.glob(os.path.join(src, "proto", "newsalert", "v1", "*.proto")))
        for p in protos:
            shipped = root + os.path.join(lay["datadir"], "newsalertd", "proto", "newsalert",
                                          "v1", os.path.basename(p))
            if not os.path.isfile(shipped) or open(shipped).read() != open(p).read():
                fail("newsalertd: %s is not shipped as committed" % shipped[len(root):])

        check_tree(root, src, lay)
        with open(os.path.join(src, "systemd", "newsalertd.service")) as f:
            committed = f.read()
        with open(root + os.path.join(lay["unitdir"], "newsalertd.service")) as f:
            if f.read() != committed:
                fail("the packaged unit differs from systemd/newsalertd.service")
    finally:
        shutil.rmtree(root)
    lintian([debs["newsalertd"], debs["libnewsalert-dev"]])


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
