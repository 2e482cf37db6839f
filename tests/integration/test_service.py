"""newsalertd under a service manager: the sd_notify protocol (READY, STATUS,
WATCHDOG, RELOADING, STOPPING) seen from our own NOTIFY_SOCKET, as systemd
would see it."""

import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import unittest

from harness import POSITIVE, WAIT, DaemonTest, article

HAVE_SYSTEMD = os.environ.get("NA_HAVE_SYSTEMD", "0") == "1"

# A short watchdog, so that many pings fall within any test; the daemon pings
# every half of it.
WATCHDOG_USEC = 200000


class Notifications:
    """An AF_UNIX datagram socket standing in for systemd's notify socket;
    every datagram is kept, in order, as a dict of its KEY=VALUE lines.

    A thread reads it all the time, as systemd does: sd_notify blocks the
    sender while the receiver's queue is full (net.unix.max_dgram_qlen may be
    as low as 10), so a reader that only looked now and then would stall the
    daemon's loop."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages = []
        self.next = 0   # where the next wait() starts looking
        self.cond = threading.Condition()
        self.done = False
        self.reader = threading.Thread(target=self._read_all, daemon=True)
        self.reader.start()

    def _read_all(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines()
                          if "=" in line)
            with self.cond:
                self.messages.append(fields)
                self.cond.notify_all()

    def wait(self, predicate, what, start=None, timeout=WAIT):
        """Waits for a datagram that satisfies predicate, among those after
        the one last returned (or from index start), and returns it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            i = self.next if start is None else start
            while True:
                while i < len(self.messages):
                    i += 1
                    if predicate(self.messages[i - 1]):
                        self.next = i
                        return self.messages[i - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s notification; the last ones: %s"
                                         % (what, self.messages[-8:]))
                self.cond.wait(left)

    def settle(self, quiet):
        """Waits until nothing has come for quiet seconds."""
        with self.cond:
            while self.cond.wait(quiet):
                pass

    def index(self, predicate, start=0):
        with self.cond:
            for i in range(start, len(self.messages)):
                if predicate(self.messages[i]):
                    return i
        return -1

    def close(self):
        self.done = True
        self.reader.join()
        self.sock.close()


def has(key, value="1"):
    return lambda m: m.get(key) == value


def status_received(n):
    """A STATUS line that reports at least n articles received."""
    def check(m):
        words = m.get("STATUS", "").split()
        return "received," in words and int(words[words.index("received,") - 1]) >= n
    return check


class NotifyTest(DaemonTest):
    """A daemon with NOTIFY_SOCKET and WATCHDOG_USEC in its environment."""

    tags = ("aid",)
    watchdog_pid = None   # WATCHDOG_PID, when set

    def setUp(self):
        self.notify_dir = tempfile.mkdtemp(prefix="na-notify-")
        self.notes = Notifications(self.notify_dir)
        self.env = dict(os.environ, NOTIFY_SOCKET=self.notes.path,
                        WATCHDOG_USEC=str(WATCHDOG_USEC))
        self.env.pop("WATCHDOG_PID", None)
        if self.watchdog_pid is not None:
            self.env["WATCHDOG_PID"] = str(self.watchdog_pid)
        super().setUp()

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.notes.close()
            shutil.rmtree(self.notify_dir, ignore_errors=True)

    def reload(self):
        self.daemon.signal(signal.SIGHUP)
        self.notes.wait(has("RELOADING"), "RELOADING=1")
        return self.notes.wait(has("READY"), "READY=1 after the reload")

    def stop(self):
        self.daemon.signal(signal.SIGTERM)
        self.notes.wait(has("STOPPING"), "STOPPING=1")
        self.assertEqual(self.daemon.proc.wait(WAIT), 0)
        self.notes.settle(0.05)


@unittest.skipUnless(HAVE_SYSTEMD, "newsalertd was built without libsystemd")
class TestNotify(NotifyTest):
    status_interval_ms = 100

    def test_ready_status_watchdog_reloading_stopping_in_order(self):
        # setUp has seen the daemon subscribe and serve probes, so READY has
        # been sent: it comes once sockets are up and rules compiled.
        ready = self.notes.wait(has("READY"), "READY=1")
        self.assertIs(self.notes.messages[0], ready, "READY=1 comes first")
        self.assertIn("tags loaded", ready.get("STATUS", ""))
        self.assertIn("watchdog: pinging every 100 ms", self.daemon.text())

        n = 25
        for i in range(n):
            self.feed.send(article("svc-%d" % i, *POSITIVE))
        self.subs["aid"].recv_until("svc-%d" % (n - 1))
        sent = n + self.probes + 1
        status = self.notes.wait(status_received(sent), "STATUS with %d received" % sent)
        self.assertRegex(status["STATUS"],
                         r"^\d+\.\d articles/s, %d received, %d alerts, 0 rejected$"
                         % (sent, sent))
        self.notes.wait(has("WATCHDOG"), "WATCHDOG=1 before the reload")
        after = self.reload()
        self.assertIn("reloaded", after.get("STATUS", ""))
        self.notes.wait(has("WATCHDOG"), "WATCHDOG=1 after the reload")
        self.stop()

        m = self.notes.messages
        reloading = self.notes.index(has("RELOADING"))
        second_ready = self.notes.index(has("READY"), reloading + 1)
        stopping = self.notes.index(has("STOPPING"))
        pings = [i for i, x in enumerate(m) if x.get("WATCHDOG") == "1"]
        self.assertTrue(0 < reloading < second_ready < stopping, m)
        self.assertTrue(any(0 < i < reloading for i in pings), m)
        self.assertTrue(any(second_ready < i < stopping for i in pings), m)
        self.assertTrue(m[reloading].get("MONOTONIC_USEC", "").isdigit(), m[reloading])
        self.assertEqual([i for i, x in enumerate(m) if "READY" in x], [0, second_ready], m)
        self.assertEqual([i for i, x in enumerate(m) if "STOPPING" in x], [stopping], m)

    def test_a_failed_reload_is_framed_the_same_way(self):
        with open(self.daemon.config, "a") as f:
            f.write("bogus: 1\n")
        after = self.reload()
        self.assertIn("reload failed", after.get("STATUS", ""))
        self.stop()


@unittest.skipUnless(HAVE_SYSTEMD, "newsalertd was built without libsystemd")
class TestWatchdogOwnPid(NotifyTest):
    # A shell that sets WATCHDOG_PID to its own pid, then execs newsalertd,
    # which keeps that pid: what systemd does for a service's main process.
    prefix = ("/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', "sh")

    def test_pings_when_watchdog_pid_is_the_daemons_own(self):
        self.notes.wait(has("READY"), "READY=1")
        self.notes.wait(has("WATCHDOG"), "WATCHDOG=1")
        self.stop()


@unittest.skipUnless(HAVE_SYSTEMD, "newsalertd was built without libsystemd")
class TestWatchdogOtherPid(NotifyTest):
    watchdog_pid = 1

    def test_no_pings_when_watchdog_pid_is_another_process(self):
        self.notes.wait(has("READY"), "READY=1")
        # Reload round trips for a second (and at least two): that spans ten
        # ping periods, so pings would have shown up in between.
        deadline = time.monotonic() + 1.0
        reloads = 0
        while time.monotonic() < deadline or reloads < 2:
            self.reload()
            reloads += 1
        self.stop()
        self.assertEqual([m for m in self.notes.messages if "WATCHDOG" in m], [])
        self.assertNotIn("watchdog:", self.daemon.text())


@unittest.skipIf(HAVE_SYSTEMD, "newsalertd was built with libsystemd")
class TestWithoutSystemd(NotifyTest):
    def test_a_build_without_libsystemd_sends_nothing(self):
        self.feed.send(article("quiet", *POSITIVE))
        self.subs["aid"].recv_until("quiet")
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("reloaded:")
        self.assertEqual(self.daemon.stop(), 0)
        self.notes.settle(0.2)
        self.assertEqual(self.notes.messages, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
