#!/usr/bin/env python3
"""Prints newsalertd's alerts for some tags, in order, none lost: gaps are
repaired from the daemon's catch-up endpoint.

    subscribe.py [--alerts EP] [--catchup EP] [--count N] [TAG...]

With PYTHONPATH=clients/python from a source tree, or after
`pip install ./clients/python`."""

import argparse

import newsalert

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("tags", nargs="*", help="tags to follow (none: every tag)")
p.add_argument("--alerts", default="tcp://127.0.0.1:5556")
p.add_argument("--catchup", default="tcp://127.0.0.1:5557")
p.add_argument("--server-key", help="the daemon's .pub, for CURVE")
p.add_argument("--key", help="our .key, whose .pub the daemon allows")
p.add_argument("--count", type=int, help="stop after N alerts")
args = p.parse_args()

with newsalert.Client(args.alerts, catchup=args.catchup, tags=args.tags,
                      server_key=args.server_key, client_key=args.key) as client:
    for n, alert in enumerate(client, 1):
        tags = ",".join(t.tag for t in alert.tags)
        print("%d %s [%s] %s" % (alert.seq, alert.article_id, tags, alert.headline),
              flush=True)
        for warning in client.warnings():
            print("warning:", warning, flush=True)
        if n == args.count:
            break
