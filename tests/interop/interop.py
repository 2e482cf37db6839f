#!/usr/bin/python3
"""Interoperability check: an independent protobuf implementation talks to
newsalertd.

Uses only Debian's python3-zmq, python3-protobuf and protoc: the project's
.proto files are compiled here, Articles are encoded by Python's protobuf
runtime and published on a ZeroMQ PUB socket, and the daemon's alerts are
decoded by the same runtime. Nothing of newsalertd's own code is used except
the daemon binary, so this is also a worked example for consumers in any
language.

    interop.py --daemon build/bin/newsalertd --source-dir .

exits 0 when every check passes and 1 (with the reason) otherwise.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import zmq

TIMEOUT = 20.0


def compile_protos(source_dir, out_dir):
    proto = os.path.join(source_dir, "proto")
    subprocess.run(["protoc", "--proto_path=" + proto, "--python_out=" + out_dir,
                    "newsalert/v1/article.proto", "newsalert/v1/alert.proto"], check=True)
    sys.path.insert(0, out_dir)
    from newsalert.v1 import alert_pb2, article_pb2
    return article_pb2, alert_pb2


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", required=True, help="path to the newsalertd binary")
    ap.add_argument("--source-dir", required=True, help="the project's source tree")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="na-interop-")
    daemon = None
    ctx = zmq.Context()
    try:
        article_pb2, alert_pb2 = compile_protos(args.source_dir, work)
        feed_ep, alert_ep = "ipc://%s/feed" % work, "ipc://%s/alerts" % work
        config = os.path.join(work, "newsalertd.yaml")
        rules = os.path.join(args.source_dir, "config", "rules")
        with open(config, "w") as f:
            f.write("feed:\n  endpoints: [%s]\npublish:\n  endpoint: %s\n" % (feed_ep, alert_ep))
            f.write("catchup:\n  endpoint: ipc://%s/catchup\nstate:\n  dir: %s/state\n"
                    % (work, work))
            f.write("metrics:\n  listen: \"off\"\n")
            f.write("rules:\n  dir: %s\n  actors: %s\n" % (
                rules, os.path.join(args.source_dir, "config", "actors.yaml")))

        # The feed publisher is ours; the daemon connects to it.
        pub = ctx.socket(zmq.XPUB)
        pub.bind(feed_ep)
        daemon = subprocess.Popen([args.daemon, "-c", config], stderr=open(
            os.path.join(work, "daemon.log"), "w"))
        check(pub.poll(int(TIMEOUT * 1000)), "the daemon never subscribed to the feed")
        check(pub.recv()[:1] == b"\x01", "expected a subscription message")

        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"alert.")
        sub.connect(alert_ep)

        with open(os.path.join(args.source_dir, "tests", "corpus", "seed-article.txt")) as f:
            headline, body = f.read().split("\n", 1)

        def seed(i):
            a = article_pb2.Article(
                id="interop-%d" % i, source="interop", url="https://example.org/interop",
                headline=headline, body=body.strip(), published_at_ms=1720180000000,
                language="en", authors=["Interop Desk"], feed_seq=i, revision=0)
            return a.SerializeToString()

        # Publish until the subscription is live (PUB/SUB drops messages
        # sent before a subscriber has joined).
        got = None
        deadline = time.monotonic() + TIMEOUT
        i = 0
        while got is None:
            check(time.monotonic() < deadline, "no alert arrived")
            i += 1
            pub.send_multipart([b"news", seed(i)])
            if sub.poll(200):
                got = sub.recv_multipart()

        topic, payload = got
        alert = alert_pb2.Alert()
        alert.ParseFromString(payload)
        check(topic.decode() == alert.topic, "the topic frame and Alert.topic differ")
        check(alert.article_id.startswith("interop-"), "wrong article id %r" % alert.article_id)
        check(alert.source == "interop" and alert.headline == headline, "article fields lost")
        check(alert.seq > 0 and alert.topic_seq > 0 and alert.epoch > 0, "sequence fields unset")
        tags = {t.tag: t for t in alert.tags}
        check(set(tags) == {"aid", "alliance", "summit"}, "tags %s" % sorted(tags))
        for t in tags.values():
            check(t.score >= t.threshold > 0, "%s: score below threshold" % t.tag)
            check(0 < t.confidence <= 1, "%s: confidence out of range" % t.tag)
            check(len(t.evidence) > 0, "%s: no evidence" % t.tag)
            for e in t.evidence:
                text = headline if e.field == alert_pb2.FIELD_HEADLINE else body.strip()
                raw = text.encode()
                # The sentence may be cut short (max_evidence_bytes), never altered.
                check(raw[e.start:e.end].startswith(e.sentence.encode()),
                      "%s: evidence offsets do not select the sentence" % t.tag)
                check(raw[e.term_start:e.term_end].decode() == e.term,
                      "%s: term offsets do not select the term" % t.tag)
                check(e.start <= e.term_start < e.term_end <= e.end,
                      "%s: the term is outside its sentence" % t.tag)
        check(any(a.code == "NATO" for a in alert.actors), "NATO not among the actors")
        # The re-encoding by this runtime is byte-identical: standard proto3.
        check(alert.SerializeToString() == payload, "re-encoding differs from the daemon's bytes")
        print("interop: ok: alert %d on %s with tags %s, decoded by Python protobuf %s"
              % (alert.seq, topic.decode(), ", ".join(sorted(tags)),
                 __import__("google.protobuf").protobuf.__version__))
        return 0
    except AssertionError as e:
        print("interop: FAILED: %s" % e, file=sys.stderr)
        if daemon is not None:
            with open(os.path.join(work, "daemon.log")) as f:
                sys.stderr.write(f.read())
        return 1
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(TIMEOUT)
        ctx.destroy(0)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
