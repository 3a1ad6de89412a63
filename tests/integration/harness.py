"""Shared fixture for weft's integration tests: starts a server, talks raw RESP, reads RSS.

Every test file runs against a server process it starts itself, so files are independent and
ctest may run them in parallel. The server under test is weftd or, to validate the tests
themselves, Debian's redis-server 7.0.15 (a test that passes on Redis is the specification):

    /usr/bin/python3 tests/integration/test_commands.py \
        --server-kind weft|redis --server-bin PATH [unittest options, test names]

Without flags, WEFT_SERVER_KIND and WEFT_SERVER_BIN are read from the environment. The kind
defaults to `redis` when the binary is called redis-server*, otherwise `weft`.

Rules every test here follows (STYLE.md, "Tests"):
  - the server listens on a free loopback port, is ready when it answers PING, and is always
    stopped: SIGTERM, then SIGKILL after a deadline. It is also started with PR_SET_PDEATHSIG so
    that it dies with the test process if ctest kills that on timeout;
  - no sleep is a synchronization: wait_until() polls a condition against a deadline;
  - every loop is bounded in count and in time.

Only the standard library and redis-py 4.3.4 (Debian's python3-redis) are used; run with
/usr/bin/python3.
"""

import argparse
import ctypes
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import redis

REPO_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_WEFT_BIN = os.path.join(REPO_DIR, "build", "release", "bin", "weftd")
DEFAULT_REDIS_BIN = "/usr/bin/redis-server"

SERVER_START_TIMEOUT_S = 20.0
SERVER_STOP_TIMEOUT_S = 10.0
SOCKET_TIMEOUT_S = 10.0


class Options:
    """Which server the tests run against; filled in by main() before unittest runs."""

    kind = None
    binary = None


def _parse_server_options(argv):
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--server-kind", choices=("weft", "redis"),
                        default=os.environ.get("WEFT_SERVER_KIND") or None)
    parser.add_argument("--server-bin", default=os.environ.get("WEFT_SERVER_BIN") or None)
    known, rest = parser.parse_known_args(argv)
    binary = known.server_bin
    kind = known.server_kind
    if kind is None:
        kind = "redis" if binary and os.path.basename(binary).startswith("redis-server") else "weft"
    if binary is None:
        binary = DEFAULT_REDIS_BIN if kind == "redis" else DEFAULT_WEFT_BIN
    return kind, binary, rest


def main():
    """Entry point of every test file: strips the server options, then runs unittest."""
    kind, binary, rest = _parse_server_options(sys.argv[1:])
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        sys.stderr.write("server binary '%s' is not an executable file\n" % binary)
        sys.exit(2)
    Options.kind = kind
    Options.binary = binary
    sys.stderr.write("integration: server kind %s, binary %s\n" % (kind, binary))
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


def is_redis():
    return Options.kind == "redis"


# ---------------------------------------------------------------------------------------------
# Waiting, ports, process facts


def wait_until(predicate, timeout_s, what, interval_s=0.02):
    """Polls predicate() until it returns a true value, which is returned.

    Fails with AssertionError naming `what` when timeout_s passes first. The interval is only a
    polling period, never a synchronization by itself.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout_s, what))
        time.sleep(interval_s)


def free_port():
    """A loopback TCP port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid):
    """Resident set size of process `pid` (VmRSS of /proc/PID/status), in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                value, unit = line.split()[1:3]
                assert unit == "kB", line
                return int(value) * 1024
    raise AssertionError("no VmRSS in /proc/%d/status" % pid)


def raise_open_file_limit(wanted):
    """Raises this process's RLIMIT_NOFILE soft limit to `wanted` (capped at the hard limit).

    Returns the new soft limit. Servers started afterwards inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Runs in the child between fork and exec: if the test process is killed (ctest timeout),
    # the kernel sends the server SIGKILL instead of leaving it behind on its port.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# ---------------------------------------------------------------------------------------------
# The server under test


class Server:
    """One server process on a free loopback port.

    start() returns once the server answers PING (any reply counts, so a server with
    requirepass is ready when it answers -NOAUTH). stop() always ends the process. The
    arguments that differ per kind are given separately: `redis_args` only for redis-server,
    `weft_args` only for weftd.
    """

    def __init__(self, requirepass=None, redis_args=(), weft_args=()):
        self.kind = Options.kind
        self.binary = Options.binary
        self.requirepass = requirepass
        self.redis_args = list(redis_args)
        self.weft_args = list(weft_args)
        self.port = None
        self.process = None
        self.dir = None
        self.log_path = None
        self._log = None

    @property
    def pid(self):
        return self.process.pid

    def command_line(self, port):
        if self.kind == "redis":
            argv = [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--daemonize", "no", "--dir", self.dir,
                    "--logfile", ""]
            if self.requirepass is not None:
                argv += ["--requirepass", self.requirepass]
            return argv + self.redis_args
        argv = [self.binary, "--port", str(port), "--bind", "127.0.0.1"]
        if self.requirepass is not None:
            argv += ["--requirepass", self.requirepass]
        return argv + self.weft_args

    def start(self, attempts=5):
        self.dir = tempfile.mkdtemp(prefix="weft-it-%s-" % self.kind)
        self.log_path = os.path.join(self.dir, "server.log")
        last_error = None
        for _ in range(attempts):
            port = free_port()
            self._log = open(self.log_path, "ab")
            self.process = subprocess.Popen(
                self.command_line(port), cwd=self.dir, stdin=subprocess.DEVNULL,
                stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
            self.port = port
            try:
                self._wait_ready()
                return self
            except AssertionError as e:
                last_error = e
                if self.process.poll() is None:
                    # Running but silent: not a port race; give up with the log.
                    self.stop()
                    break
                # Exited during start, most likely the port was taken between probe and bind.
                self._log.close()
                self._log = None
        raise AssertionError("server did not start: %s\n--- server log ---\n%s"
                             % (last_error, self.log_tail()))

    def _ping_once(self):
        if self.process.poll() is not None:
            raise AssertionError("server exited with status %s during start"
                                 % self.process.returncode)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                data = s.recv(64)
                return data.startswith(b"+PONG") or data.startswith(b"-NOAUTH")
        except OSError:
            return False

    def _wait_ready(self):
        wait_until(self._ping_once, SERVER_START_TIMEOUT_S, "PING on port %d" % self.port,
                   interval_s=0.05)

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        """SIGTERM, then SIGKILL after SERVER_STOP_TIMEOUT_S. Returns the exit status."""
        status = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=SERVER_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    sys.stderr.write("server pid %d ignored SIGTERM for %.0f s; SIGKILL\n"
                                     % (self.process.pid, SERVER_STOP_TIMEOUT_S))
                    self.process.kill()
                    self.process.wait(timeout=SERVER_STOP_TIMEOUT_S)
            status = self.process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return status

    def cleanup(self):
        self.stop()
        if self.dir and os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def rss_bytes(self):
        return rss_bytes(self.pid)

    def client(self, **kwargs):
        """A redis-py client (bytes replies) on this server."""
        kwargs.setdefault("socket_timeout", SOCKET_TIMEOUT_S)
        kwargs.setdefault("password", self.requirepass)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def raw(self, timeout_s=SOCKET_TIMEOUT_S):
        """A RespClient (raw socket, exact replies) on this server."""
        return RespClient("127.0.0.1", self.port, timeout_s)

    def redis_cli(self, *args, stdin=None, timeout_s=30.0):
        """Runs `redis-cli -p PORT ARGS...`; returns the CompletedProcess (bytes stdout)."""
        argv = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port)]
        if self.requirepass is not None:
            argv += ["--no-auth-warning", "-a", self.requirepass]
        return subprocess.run(argv + [str(a) for a in args], input=stdin,
                              capture_output=True, timeout=timeout_s, check=False)


class ServerTestCase(unittest.TestCase):
    """Base class: one server per test class, started in setUpClass, always stopped.

    Subclasses may set `requirepass`, `redis_args` and `weft_args`.
    """

    requirepass = None
    redis_args = ()
    weft_args = ()
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.requirepass, cls.redis_args, cls.weft_args)
        # Registered before start() so that a half-started server is stopped too.
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()

    def setUp(self):
        self.assertTrue(self.server.alive(), "server died earlier:\n" + self.server.log_tail())

    def tearDown(self):
        # A test that crashed the server must fail by itself, not the next one.
        if not self.server.alive():
            self.fail("server exited (status %s) during %s\n--- server log ---\n%s"
                      % (self.server.process.returncode, self.id(), self.server.log_tail()))

    def client(self, **kwargs):
        c = self.server.client(**kwargs)
        self.addCleanup(c.close)
        return c

    def raw(self, timeout_s=SOCKET_TIMEOUT_S):
        c = self.server.raw(timeout_s)
        self.addCleanup(c.close)
        return c


# ---------------------------------------------------------------------------------------------
# Raw RESP


class RespError:
    """An error reply, returned (not raised) so tests compare its exact text."""

    def __init__(self, message):
        self.message = message

    def __eq__(self, other):
        return isinstance(other, RespError) and other.message == self.message

    def __hash__(self):
        return hash(self.message)

    def __repr__(self):
        return "RespError(%r)" % self.message


class Verbatim(bytes):
    """RESP3 verbatim string; .format holds the three-letter format."""

    format = None


class Push(list):
    """RESP3 push message."""


class ConnectionClosed(Exception):
    pass


def encode_command(*args):
    """RESP multibulk encoding of args (str, bytes or int)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a).encode()
        elif isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespClient:
    """A blocking RESP2/RESP3 client on a raw socket, for exact replies and bad input.

    Replies decode as: simple string -> str, bulk string -> bytes, integer -> int, null -> None,
    array/set -> list, map -> dict (a list of pairs when keys are unhashable), error -> RespError,
    double -> float, boolean -> bool, big number -> int, verbatim -> Verbatim, push -> Push.
    """

    def __init__(self, host, port, timeout_s=SOCKET_TIMEOUT_S):
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        self.raw_received = bytearray()  # every byte read, for tests that check encodings
        self.keep_raw = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def settimeout(self, timeout_s):
        self.sock.settimeout(timeout_s)

    def send(self, data):
        self.sock.sendall(data)

    def send_command(self, *args):
        self.sock.sendall(encode_command(*args))

    def call(self, *args):
        self.send_command(*args)
        return self.read_reply()

    def pipeline(self, commands):
        """Sends every command in one write, then reads one reply per command."""
        self.sock.sendall(b"".join(encode_command(*c) for c in commands))
        return [self.read_reply() for _ in commands]

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionClosed("server closed the connection")
        if self.keep_raw:
            self.raw_received += data
        self.buffer += data

    def _line(self):
        while True:
            i = self.buffer.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buffer[:i])
                del self.buffer[:i + 2]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buffer) < n + 2:
            self._fill()
        data = bytes(self.buffer[:n])
        assert self.buffer[n:n + 2] == b"\r\n", "bulk not followed by CRLF"
        del self.buffer[:n + 2]
        return data

    def read_reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "replace")
        if kind == b"-":
            return RespError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"(":
            return int(rest)
        if kind == b",":
            return float(rest)
        if kind == b"#":
            return rest == b"t"
        if kind == b"_":
            return None
        if kind in (b"$", b"="):
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n)
            if kind == b"=":
                v = Verbatim(data[4:])
                v.format = data[:3].decode()
                return v
            return data
        if kind in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return None
            items = [self.read_reply() for _ in range(n)]
            return Push(items) if kind == b">" else items
        if kind == b"%":
            pairs = [(self.read_reply(), self.read_reply()) for _ in range(int(rest))]
            try:
                return dict(pairs)
            except TypeError:
                return pairs
        if kind == b"|":
            for _ in range(int(rest)):
                self.read_reply()
                self.read_reply()
            return self.read_reply()
        raise AssertionError("unexpected reply line %r" % line)


def read_until_close(sock, timeout_s, limit_bytes=1 << 26):
    """Reads from sock until the peer closes it or timeout_s passes.

    Returns (data, closed) where closed is True on orderly close or reset. Stops reading after
    limit_bytes.
    """
    deadline = time.monotonic() + timeout_s
    data = bytearray()
    while len(data) < limit_bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bytes(data), False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(1 << 16)
        except socket.timeout:
            return bytes(data), False
        except (ConnectionResetError, BrokenPipeError):
            return bytes(data), True
        if not chunk:
            return bytes(data), True
        data += chunk
    return bytes(data), False


def raw_exchange(port, data, timeout_s=2.0):
    """Connects, sends data, reads until close or timeout_s. Returns (reply, closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(data)
        return read_until_close(s, timeout_s)
