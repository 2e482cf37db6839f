"""Sharding by source: a feed that publishes each article on the topic
"news.<source>.", two newsalertd that each subscribe (feed.topics) to half
of the sources, and consumers that follow both and merge by alert key
(`newsalert tail` with two --connect, and the Python MultiClient). A third
daemon that takes the whole feed, and `newsalert tag` offline, say what the
two shards together must have alerted: no more, no less, each key once.

A topic prefix must end with the separator: "news.AP" is a prefix of
"news.APX." too, and a shard subscribed to it takes both sources
(TestPrefixPitfall shows it)."""

import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

# The client package before the harness, whose generated newsalert.v1
# would otherwise stand for the whole newsalert package.
sys.path.insert(0, os.path.join(os.environ["NA_SOURCE_DIR"], "clients", "python"))

import newsalert  # noqa: E402,F401  (test_pair's MultiConsumer drives it)
import zmq  # noqa: E402

from harness import POSITIVE, WAIT, Daemon, article, check_clean_exit, load_json
from test_delivery import (LONG, NEWSALERT, SCALE, corpus_article, labelled_articles,
                           read_journal, wait_journal)
from test_pair import MultiConsumer, assert_each_key_once, keys_of


def topic_of(source):
    """The feed's topic for an article of source: the separator at the end
    keeps one source's prefix from matching another's."""
    return ("news.%s." % source).encode()


def topics_config(sources):
    """A feed section subscribing to each source's topic."""
    return "feed:\n  topics: [%s]\n" % ", ".join(
        json.dumps(topic_of(s).decode()) for s in sources)


def split_sources(corpus):
    """The corpus's sources in two sets of about the same number of
    articles: the largest first, each to the lighter shard."""
    counts = collections.Counter(kw["source"] for kw, _ in corpus)
    shards, load = (set(), set()), [0, 0]
    for source, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])):
        i = 0 if load[0] <= load[1] else 1
        shards[i].add(source)
        load[i] += n
    return shards


def wait_subscriptions(feed, wanted, timeout=WAIT):
    """Waits on the feed's XPUB until every prefix in wanted is subscribed."""
    got = set()
    deadline = time.monotonic() + timeout
    while not wanted <= got:
        left = deadline - time.monotonic()
        if left <= 0 or not feed.poll(int(left * 1000)):
            raise AssertionError("never subscribed: %s" % sorted(wanted - got))
        m = feed.recv()
        if m[:1] == b"\x01":
            got.add(m[1:])
    return got


class TestShardBySource(unittest.TestCase):
    rounds = 2          # copies of the corpus, each under new ids
    revised_every = 5   # every fifth alerting article is sent again as revision 2

    def setUp(self):
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.term)
        self.dir = tempfile.mkdtemp(prefix="na-shard-")
        self.feed_ep = "ipc://%s/feed" % self.dir
        self.corpus = labelled_articles()
        self.sources = split_sources(self.corpus)
        self.a = Daemon(extra_config=topics_config(self.sources[0]))
        self.b = Daemon(extra_config=topics_config(self.sources[1]))
        self.whole = Daemon()   # feed.topics [""]: the unsharded daemon
        for d in (self.a, self.b, self.whole):
            self.addCleanup(d.cleanup)
        self.feed = self.ctx.socket(zmq.XPUB)
        self.feed.setsockopt(zmq.SNDHWM, 0)
        self.feed.bind(self.feed_ep)
        self.addCleanup(self.feed.close, 0)

    def test_two_shards_alert_what_one_daemon_does_each_key_once(self):
        for s in self.sources:
            self.assertGreater(len(s), 1)
        for d in (self.a, self.b, self.whole):
            d.start("--feed", self.feed_ep)
        wanted = {topic_of(s) for s in self.sources[0] | self.sources[1]} | {b""}
        wait_subscriptions(self.feed, wanted)
        for d in (self.a, self.b, self.whole):
            d.wait_log("ready:")

        # The messages, and the keys `newsalert tag` says they make.
        messages, expected, revised, alerting = [], set(), [], 0
        for r in range(self.rounds):
            for kw, tags in self.corpus:
                aid = "shard-%d-%s" % (r, kw["id"])
                messages.append((topic_of(kw["source"]), corpus_article(kw, aid)))
                base = "%s/%s/" % (kw["source"], aid)
                expected |= {base + "0#" + t for t in tags}
                if tags:
                    alerting += 1
                    if alerting % self.revised_every == 0:
                        revised.append((kw, aid, tags))
        # Revisions come after every first version, on the same topic.
        for kw, aid, tags in revised:
            messages.append((topic_of(kw["source"]), corpus_article(kw, aid, revision=2)))
            expected |= {"%s/%s/2#%s" % (kw["source"], aid, t) for t in tags}
        self.assertGreater(len(revised), 10)

        quiet = 5.0 * SCALE
        out_path = os.path.join(self.dir, "tail.jsonl")
        out = open(out_path, "w")
        err = open(os.path.join(self.dir, "tail.err"), "w+")
        self.addCleanup(err.close)
        tail = subprocess.Popen(
            [NEWSALERT, "tail", "--json", "--since", "0", "--timeout", str(quiet),
             "--connect", self.a.publish, "--catchup", self.a.catchup,
             "--connect", self.b.publish, "--catchup", self.b.catchup],
            stdout=out, stderr=err)
        out.close()
        self.addCleanup(lambda: tail.poll() is None and tail.kill())
        multi = MultiConsumer([(self.a.publish, self.a.catchup),
                               (self.b.publish, self.b.catchup)], quiet)
        multi.start()
        self.addCleanup(multi.stop.set)

        for topic, payload in messages:
            self.feed.send_multipart([topic, payload])
        multi.stop.set()
        tail.wait(LONG)
        multi.join(LONG)
        self.assertFalse(multi.is_alive(), "the Python consumer never went quiet")
        self.assertIsNone(multi.error)
        err.seek(0)
        tail_err = err.read()
        check_clean_exit("newsalert tail", tail.returncode, tail_err)
        self.assertEqual(tail.returncode, 0, tail_err)
        for d in (self.a, self.b, self.whole):
            self.assertEqual(d.stop(), 0, d.text())

        journals = []
        for d in (self.a, self.b, self.whole):
            rc, alerts, jerr = read_journal(d)
            self.assertEqual(rc, 0, jerr)
            journals.append(alerts)
        ja, jb, jw = ({k: al for al in j for k in keys_of(al)} for j in journals)

        # Each shard journalled its own sources' articles, and only those.
        for name, j, mine in (("A", journals[0], self.sources[0]),
                              ("B", journals[1], self.sources[1])):
            strays = {al["source"] for al in j} - mine
            self.assertEqual(strays, set(), "shard %s alerted other shards' sources" % name)
        self.assertEqual(set(ja), {k for k in expected if k.split("/")[0] in self.sources[0]})
        self.assertEqual(set(jb), {k for k in expected if k.split("/")[0] in self.sources[1]})
        # Together: what the unsharded daemon alerted, and what the offline
        # tagger says, with the same tags and evidence.
        self.assertEqual(set(ja) | set(jb), set(jw))
        self.assertEqual(set(jw), expected)
        self.assertEqual(set(ja) & set(jb), set())
        for k, al in list(ja.items()) + list(jb.items()):
            self.assertEqual(al["tags"], jw[k]["tags"], k)

        # A revision lands on its first version's shard, which links it.
        for j, journal in ((ja, journals[0]), (jb, journals[1])):
            first = {(al["source"], al["article_id"]): al["seq"]
                     for al in journal if al["revision"] == 0}
            revs = [al for al in journal if al["revision"] == 2]
            self.assertGreater(len(revs), 0)
            for al in revs:
                self.assertEqual(al["update_of"], first[(al["source"], al["article_id"])],
                                 "revision 2 of %s not linked in its shard" % al["article_id"])
        # Each shard numbers its own alerts: both start at 1.
        for journal in journals[:2]:
            self.assertEqual(sorted(al["seq"] for al in journal)[:1], [1])

        with open(out_path) as f:
            lines = [load_json(line) for line in f]
        tail_keys = [k for al in lines for k in keys_of(al)]
        from_daemon = collections.Counter(al["daemon"] for al in lines)
        for name, keys in (("newsalert tail", tail_keys), ("MultiClient", multi.keys)):
            assert_each_key_once(self, name, keys, expected, source="shard")
        # Both shards fed both consumers.
        self.assertEqual(set(from_daemon), {self.a.publish, self.b.publish})
        self.assertEqual(set(multi.sources), {0, 1})
        print("%d messages, %d keys: shard A %d sources %d keys, shard B %d sources %d keys; "
              "tail took %s" % (len(messages), len(expected), len(self.sources[0]), len(ja),
                                len(self.sources[1]), len(jb), dict(from_daemon)))


class TestPrefixPitfall(unittest.TestCase):
    """ZeroMQ matches a subscription as a byte prefix of the first frame:
    "news.AP" takes "news.APX." as well, "news.AP." does not."""

    def setUp(self):
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.term)
        self.dir = tempfile.mkdtemp(prefix="na-prefix-")
        self.feed_ep = "ipc://%s/feed" % self.dir
        self.bare = Daemon(extra_config='feed:\n  topics: ["news.AP"]\n')
        self.sep = Daemon(extra_config='feed:\n  topics: ["news.AP."]\n')
        for d in (self.bare, self.sep):
            self.addCleanup(d.cleanup)
        self.feed = self.ctx.socket(zmq.XPUB)
        self.feed.setsockopt(zmq.SNDHWM, 0)
        self.feed.bind(self.feed_ep)
        self.addCleanup(self.feed.close, 0)

    def test_a_prefix_without_separator_takes_other_sources(self):
        for d in (self.bare, self.sep):
            d.start("--feed", self.feed_ep)
        wait_subscriptions(self.feed, {b"news.AP", b"news.AP."})
        for d in (self.bare, self.sep):
            d.wait_log("ready:")
        # Two sources, one a prefix of the other, then a last AP article
        # that both daemons take: once it is journalled, all before it is.
        for aid, source in (("ap-1", "AP"), ("apx-1", "APX"), ("ap-2", "AP")):
            self.feed.send_multipart([topic_of(source), article(aid, *POSITIVE, source=source)])
        wait_journal(self.bare, 3)
        wait_journal(self.sep, 2)
        for d in (self.bare, self.sep):
            self.assertEqual(d.stop(), 0, d.text())
        got = {}
        for name, d in (("bare", self.bare), ("sep", self.sep)):
            rc, alerts, jerr = read_journal(d)
            self.assertEqual(rc, 0, jerr)
            got[name] = sorted((al["source"], al["article_id"]) for al in alerts)
        self.assertEqual(got["bare"], [("AP", "ap-1"), ("AP", "ap-2"), ("APX", "apx-1")])
        self.assertEqual(got["sep"], [("AP", "ap-1"), ("AP", "ap-2")])


class TestMovedSource(unittest.TestCase):
    """What a source moved to another shard loses: the shard it moves to
    has not seen its articles, so a revision is not linked to its first
    version (update_of 0), and a repeat of an article the old shard alerted
    is alerted again (a consumer following both drops it by its key, within
    the dedup window)."""

    def setUp(self):
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.term)
        self.dir = tempfile.mkdtemp(prefix="na-moved-")
        self.feed_ep = "ipc://%s/feed" % self.dir
        self.old = Daemon(extra_config=topics_config(["AP"]))
        self.new = Daemon(extra_config=topics_config(["BB", "AP"]))
        for d in (self.old, self.new):
            self.addCleanup(d.cleanup)
        self.feed = self.ctx.socket(zmq.XPUB)
        self.feed.setsockopt(zmq.SNDHWM, 0)
        self.feed.bind(self.feed_ep)
        self.addCleanup(self.feed.close, 0)

    def send(self, aid, revision=0):
        self.feed.send_multipart([topic_of("AP"),
                                  article(aid, *POSITIVE, source="AP", revision=revision)])

    def test_revision_after_a_move_is_not_linked(self):
        self.old.start("--feed", self.feed_ep)
        wait_subscriptions(self.feed, {topic_of("AP")})
        self.old.wait_log("ready:")
        self.send("ap-1")
        self.send("ap-1", revision=1)
        self.send("ap-2")
        wait_journal(self.old, 3)
        self.assertEqual(self.old.stop(), 0, self.old.text())
        # The move: AP is now the new shard's, and the old one is gone.
        self.new.start("--feed", self.feed_ep)
        wait_subscriptions(self.feed, {topic_of("AP"), topic_of("BB")})
        self.new.wait_log("ready:")
        self.send("ap-1", revision=2)
        self.send("ap-2")              # a repeat of what the old shard alerted
        wait_journal(self.new, 2)
        self.assertEqual(self.new.stop(), 0, self.new.text())

        def alerts(d):
            rc, got, err = read_journal(d)
            self.assertEqual(rc, 0, err)
            return {(al["article_id"], al["revision"]): al for al in got}
        old, new = alerts(self.old), alerts(self.new)
        # On its own shard, a revision is linked to the first version ...
        self.assertEqual(sorted(old), [("ap-1", 0), ("ap-1", 1), ("ap-2", 0)])
        self.assertEqual(old[("ap-1", 1)]["update_of"], old[("ap-1", 0)]["seq"])
        # ... on the shard it moved to, it is not, and the repeat is alerted
        # again, under the same key as the old shard's.
        self.assertEqual(sorted(new), [("ap-1", 2), ("ap-2", 0)])
        self.assertEqual(new[("ap-1", 2)]["update_of"], 0)
        self.assertEqual(keys_of(old[("ap-2", 0)]), keys_of(new[("ap-2", 0)]))


if __name__ == "__main__":
    unittest.main()
