"""Multi-process clusters for the integration tests: a real etcd on loopback and weftd members
that join through it (DESIGN.md §6, §8). Everything is started by the test and stopped by it,
on 127.0.0.1 with free ports; every wait is bounded.

  etcd = Etcd().start()
  m1 = Member("m1", etcd, secret_file).start()      # bootstraps the region
  m2 = Member("m2", etcd, secret_file).start()      # joins it
  wait_active(m2)
"""

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import redis

import harness
from harness import free_port, wait_until, _die_with_parent

ETCD_BIN = "/usr/bin/etcd"


class Etcd:
    """A throwaway single-node etcd on free loopback ports.

    Fault injection for the registry itself: stop() then restart() is an outage that keeps the
    data (the same data directory and ports, as an operator restarting etcd); freeze() and thaw()
    hang it instead (SIGSTOP, SIGCONT: connections are accepted by the kernel and never answered).
    Note that a frozen etcd expires every lease whose TTL passed as soon as it is thawed, while a
    restarted one extends every lease by its TTL (etcd 3.4).
    """

    def __init__(self):
        self.dir = None
        self.process = None
        self.client_port = None
        self.peer_port = None
        self.frozen = False

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="weft-it-etcd-")
        for _ in range(5):
            self.client_port, self.peer_port = free_port(), free_port()
            self._launch()
            try:
                wait_until(self._healthy, 15, "etcd health")
                return self
            except AssertionError:
                self.stop()
        raise AssertionError("etcd did not start")

    def restart(self, timeout_s=30):
        """Starts etcd again on its data directory and ports after stop(); returns once healthy."""
        assert self.process.poll() is not None, "etcd is still running"
        self._launch()
        wait_until(self._healthy, timeout_s, "etcd healthy again on port %d" % self.client_port)
        return self

    def _launch(self):
        client = "http://127.0.0.1:%d" % self.client_port
        peer = "http://127.0.0.1:%d" % self.peer_port
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [ETCD_BIN, "--name", "it", "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", "it=" + peer, "--log-level", "error"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent)
        log.close()

    def _healthy(self):
        if self.process.poll() is not None:
            raise AssertionError("etcd exited")
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/health" % self.client_port,
                                        timeout=1) as response:
                return b"true" in response.read()
        except OSError:
            return False

    @property
    def url(self):
        return "etcd://127.0.0.1:%d" % self.client_port

    @property
    def log_path(self):
        return os.path.join(self.dir, "etcd.log")

    def freeze(self):
        """SIGSTOP: etcd keeps its sockets open and answers nothing until thaw()."""
        os.kill(self.process.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self, timeout_s=30):
        """SIGCONT after freeze(); returns once etcd answers its health check again."""
        os.kill(self.process.pid, signal.SIGCONT)
        self.frozen = False
        wait_until(self._healthy, timeout_s, "etcd healthy again after SIGCONT")

    def stop(self, graceful=False):
        """Ends the process (SIGKILL, or SIGTERM as an operator's `systemctl stop` sends);
        its data directory stays for restart()."""
        if self.process is None or self.process.poll() is not None:
            return
        if self.frozen:
            # A stopped process acts on SIGKILL alone; SIGCONT first, so that TERM works too.
            self.process.send_signal(signal.SIGCONT)
            self.frozen = False
        if graceful:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
                return
            except subprocess.TimeoutExpired:
                pass
        self.process.kill()
        self.process.wait(timeout=10)

    def cleanup(self):
        self.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def write_secret(directory, text="integration-test-cluster-secret-0123456789"):
    path = os.path.join(directory, "secret")
    with open(path, "w") as f:
        f.write(text + "\n")
    return path


class Member:
    """One weftd process in a cluster."""

    def __init__(self, name, etcd, secret_file, cluster, extra_args=()):
        self.name = name
        self.etcd = etcd
        self.secret_file = secret_file
        self.cluster = cluster
        self.extra_args = list(extra_args)
        self.port = None
        self.peer_port = None
        self.process = None
        self.dir = tempfile.mkdtemp(prefix="weft-it-%s-" % name)
        self.log_path = os.path.join(self.dir, "weftd.log")

    def start(self):
        self.port, self.peer_port = free_port(), free_port()
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [harness.Options.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--peer-port", str(self.peer_port), "--name", self.name,
             "--registry", self.etcd.url, "--cluster", self.cluster,
             "--secret-file", self.secret_file, "--io-threads", "1", "--shards", "64"] +
            ([] if "--lease-ttl" in self.extra_args else ["--lease-ttl", "2"]) +
            list(self.extra_args),
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent)
        log.close()
        wait_until(self._answers, 20, "%s answering PING" % self.name, interval_s=0.05)
        return self

    def _answers(self):
        if self.process.poll() is not None:
            raise AssertionError("%s exited with %s:\n%s" % (self.name, self.process.returncode,
                                                            self.log_tail()))
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def client(self, timeout=10):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout,
                           decode_responses=False)

    def replication(self):
        """INFO replication as {line key: {field: value}} plus plain 'key: value' lines."""
        text = self.info_text("replication")
        info = {}
        for line in text.splitlines():
            if ":" not in line or line.startswith("#"):
                continue
            key, value = line.split(":", 1)
            if "=" in value:
                info[key] = dict(field.split("=", 1) for field in value.split(","))
            else:
                info[key] = value
        return info

    def info_text(self, section):
        """INFO <section> as text (redis-py would parse it into nested dicts)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            request = "*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n" % (len(section), section)
            s.sendall(request.encode())
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("closed")
                data += chunk
            header, _, rest = data.partition(b"\r\n")
            if not header.startswith(b"$"):
                raise OSError("INFO answered %r" % header)
            size = int(header[1:])
            while len(rest) < size:
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("closed")
                rest += chunk
            return rest[:size].decode()

    def region(self):
        return self.replication()["region0"]

    def digest(self):
        return self.client().execute_command("WEFT.DIGEST")

    def kill(self):
        """kill -9."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines=60):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return "(no log)"

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


def wait_active(member, timeout_s=60):
    def active():
        try:
            region = member.region()
        except (redis.exceptions.RedisError, OSError):
            return False
        if region.get("state") == "FAILED":
            raise AssertionError("%s failed to join:\n%s" % (member.name, member.log_tail()))
        return region.get("state") == "ACTIVE" and region.get("phase") == "none"
    wait_until(active, timeout_s, "%s ACTIVE" % member.name, interval_s=0.05)


def wait_quiet(members, timeout_s=30):
    """Until every outbound channel of every member is acknowledged (lag 0)."""
    def quiet():
        for member in members:
            for key, value in member.replication().items():
                if key.startswith("channel") and value.get("dir") == "out" and \
                        value.get("lag") not in (None, "0"):
                    return False
        return True
    wait_until(quiet, timeout_s, "replication to drain", interval_s=0.05)


class Writer(threading.Thread):
    """Writes keys it alone owns ("<prefix>:<n>") to one member, in a bounded loop, and
    remembers the last acknowledged value of each key (None after an acknowledged DEL).

    A write whose reply never came (connection lost) is in doubt: its key may hold the new or
    the previous value. Stops after `max_ops` or `max_s` seconds or stop().
    """

    def __init__(self, member, prefix, keys=500, max_ops=200_000, max_s=60, delete_every=0,
                 expire_every=0, value_size=32, reply_timeout_s=5):
        super().__init__(daemon=True)
        self.reply_timeout_s = reply_timeout_s
        self.member, self.prefix, self.keys = member, prefix, keys
        self.max_ops, self.max_s = max_ops, max_s
        self.delete_every, self.expire_every = delete_every, expire_every
        self.value_size = value_size
        self.acked = {}          # key -> last acknowledged value (None: deleted)
        self.in_doubt = {}       # key -> set of values that may be there
        self.expiring = set()    # keys last written with a short TTL
        self.ops = 0
        self.errors = 0
        self.failure = None      # the error reply that ended run(), if one did
        self.max_latency_s = 0.0
        self._halt = threading.Event()

    def stop(self):
        self._halt.set()
        self.join(timeout=30)

    def run(self):
        client = self.member.client(timeout=self.reply_timeout_s)
        deadline = time.monotonic() + self.max_s
        n = 0
        while not self._halt.is_set() and self.ops < self.max_ops and time.monotonic() < deadline:
            key = "%s:%d" % (self.prefix, n % self.keys)
            n += 1
            value = ("%s#%d:" % (key, n)).encode().ljust(self.value_size, b".")
            started = time.monotonic()
            try:
                if self.delete_every and n % self.delete_every == 0:
                    client.delete(key)
                    self.acked[key] = None
                    self.expiring.discard(key)
                elif self.expire_every and n % self.expire_every == 0:
                    client.set(key, value, px=50)
                    self.acked[key] = value
                    self.expiring.add(key)
                else:
                    client.set(key, value)
                    self.acked[key] = value
                    self.expiring.discard(key)
                self.ops += 1
                self.max_latency_s = max(self.max_latency_s, time.monotonic() - started)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                self.errors += 1
                self.in_doubt.setdefault(key, set()).add(value)
                time.sleep(0.05)
                try:
                    client = self.member.client(timeout=self.reply_timeout_s)
                except Exception:
                    pass
                if not self.member.process or self.member.process.poll() is not None:
                    return  # its member is gone
            except redis.exceptions.ResponseError as e:
                if "LOADING" not in str(e):
                    self.failure = e
                    raise
                self.errors += 1
                time.sleep(0.01)

    def lost_on(self, member):
        """The acknowledged writes `member` does not hold: [(key, expected, found)], where found
        is neither the last acknowledged value nor one in doubt. Raises redis errors (a member
        that refuses reads cannot be checked)."""
        client = member.client()
        keys = [k for k in self.acked if k not in self.expiring]
        lost = []
        for start in range(0, len(keys), 500):
            batch = keys[start:start + 500]
            values = client.mget(batch)
            for key, found in zip(batch, values):
                expected = self.acked[key]
                if found != expected and found not in self.in_doubt.get(key, ()):
                    lost.append((key, expected, found))
        return lost

    def check_on(self, member):
        """Every acknowledged write is there with its last acknowledged value."""
        lost = self.lost_on(member)
        if lost:
            key, expected, found = lost[0]
            raise AssertionError("%s on %s: expected %r, found %r (%d of %d acknowledged keys "
                                 "wrong)" % (key, member.name, expected, found, len(lost),
                                             len(self.acked)))
        return len([k for k in self.acked if k not in self.expiring])


class ClusterTestCase(unittest.TestCase):
    """Base class of the cluster tests: a fresh cluster name per test (its registry keys never
    meet another test's), members started through member() and always stopped, their logs
    printed when the test failed.

    One etcd serves the whole class; a class whose tests stop or freeze etcd sets
    `etcd_per_test` and gets its own in every test instead.
    """

    etcd = None
    etcd_per_test = False

    @classmethod
    def setUpClass(cls):
        if not cls.etcd_per_test:
            cls.etcd = Etcd().start()
        cls.dir = tempfile.mkdtemp(prefix="weft-it-cluster-")
        cls.secret = write_secret(cls.dir)

    @classmethod
    def tearDownClass(cls):
        if cls.etcd:
            cls.etcd.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        if self.etcd_per_test:
            self.etcd = Etcd()
            # Cleanups run after tearDown, so etcd outlives the members that use it.
            self.addCleanup(self.etcd.cleanup)
            self.etcd.start()
        self.cluster = "it-%s-%d" % (self._testMethodName[-20:].replace("_", "-"),
                                     random.getrandbits(32))
        self.members = []

    def tearDown(self):
        for member in self.members:
            if self._failed():
                print("--- log of %s ---\n%s" % (member.name, member.log_tail()))
            member.cleanup()

    def _failed(self):
        outcome = self._outcome
        if hasattr(outcome, "errors"):  # Python < 3.11
            return any(error for _, error in outcome.errors)
        result = outcome.result
        return any(test is self for test, _ in result.errors + result.failures)

    def member(self, name, *args, secret=None):
        member = Member(name, self.etcd, secret or self.secret, self.cluster, args).start()
        self.members.append(member)
        return member

    def cluster_of(self, count):
        members = []
        for i in range(count):
            m = self.member("m%d" % (i + 1))
            wait_active(m)
            members.append(m)
        return members

    def preload(self, member, keys, value_size=100, prefix="pre"):
        client = member.client()
        pipe = client.pipeline(transaction=False)
        for i in range(keys):
            pipe.set("%s:%d" % (prefix, i), b"v" * value_size)
            if i % 1000 == 999:
                pipe.execute()
        pipe.execute()

    def assert_converged(self, members, writers=()):
        wait_quiet(members)
        digests = {m.name: m.digest() for m in members}
        self.assertEqual(len(set(digests.values())), 1, "digests differ: %s" % digests)
        for writer in writers:
            for m in members:
                writer.check_on(m)
