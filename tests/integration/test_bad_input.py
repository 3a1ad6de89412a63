#!/usr/bin/python3
"""Bad input never hurts anyone else (STYLE.md "Errors"; DESIGN.md §8).

Each test misbehaves on one connection (malformed RESP, oversized frames, stalls, floods of
connections, a client that never reads, abrupt closes) while a Bystander, a second and
well-behaved client on its own thread, keeps writing and reading its own keys. Every test checks
what the misbehaving connection gets (Redis 7.0.15's exact error, then a close, or nothing),
that the bystander saw only correct answers, quickly, during and after, and that the server is
still running.

    /usr/bin/python3 tests/integration/test_bad_input.py --server-kind weft|redis --server-bin PATH
"""

import select
import socket
import struct
import threading
import time

import harness
from harness import RespError, ServerTestCase, encode_command, wait_until

MIB = 1024 * 1024

# A bystander round trip slower than this fails the test. Generous: the machine may be busy
# with builds; a server that lets one connection block the others takes far longer.
BYSTANDER_LATENCY_S_MAX = 2.0

# SO_LINGER on with a zero timeout: close() sends a reset instead of a FIN.
LINGER_RESET = struct.pack("ii", 1, 0)


class Bystander:
    """A well-behaved client on its own thread: SET then GET of its own keys, in a loop.

    Use as a context manager around the misbehaviour; then call check(test). The loop is
    bounded by `iterations_max` and by `duration_s_max`.
    """

    def __init__(self, server, name="bystander", iterations_max=1_000_000, duration_s_max=300):
        self.server = server
        self.name = name
        self.iterations_max = iterations_max
        self.duration_s_max = duration_s_max
        self.iterations = 0
        self.latency_s_max = 0.0
        self.errors = []
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self._client = self.server.raw(timeout_s=30)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        self.wait_progress(10, 10.0)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=60)
        self._client.close()
        return False

    def _run(self):
        deadline = time.monotonic() + self.duration_s_max
        c = self._client
        try:
            while (not self._stop.is_set() and self.iterations < self.iterations_max
                   and time.monotonic() < deadline):
                i = self.iterations
                key = "%s:%d" % (self.name, i % 64)
                value = b"%d" % i
                start = time.monotonic()
                set_reply = c.call("SET", key, value)
                get_reply = c.call("GET", key)
                self.latency_s_max = max(self.latency_s_max, time.monotonic() - start)
                if set_reply != "OK" or get_reply != value:
                    self.errors.append("iteration %d: SET -> %r, GET -> %r"
                                       % (i, set_reply, get_reply))
                    return
                self.iterations += 1
        except Exception as e:  # recorded and reported by check()
            self.errors.append("iteration %d: %r" % (self.iterations, e))

    def wait_progress(self, count, timeout_s):
        """Waits until `count` more round trips have completed (proves liveness *now*)."""
        target = self.iterations + count
        wait_until(lambda: self.iterations >= target or self.errors
                   or not self._thread.is_alive(), timeout_s,
                   "bystander to complete %d more round trips" % count)
        if self.errors:
            raise AssertionError("bystander failed: %s" % self.errors[:3])
        if self.iterations < target:
            raise AssertionError("bystander stopped after %d round trips" % self.iterations)

    def check(self, test):
        test.assertEqual(self.errors, [], "bystander saw wrong answers")
        test.assertGreater(self.iterations, 0)
        test.assertLess(self.latency_s_max, BYSTANDER_LATENCY_S_MAX,
                        "bystander's slowest round trip (%d round trips)" % self.iterations)


class BadInputTestCase(ServerTestCase):

    def setUp(self):
        super().setUp()
        self.admin = self.raw()
        self.assertEqual(self.admin.call("FLUSHALL"), "OK")

    def assert_protocol_error_then_close(self, data, error):
        """Sends data on a new connection; expects exactly `-error\\r\\n` and then a close."""
        reply, closed = harness.raw_exchange(self.server.port, data, timeout_s=5.0)
        self.assertEqual(reply, b"-" + error.encode() + b"\r\n")
        self.assertTrue(closed, "the server must close the connection after a protocol error")

    def assert_well(self, bystander):
        """After the misbehaviour: bystander fine and still fast, admin client answers."""
        bystander.wait_progress(50, 10.0)
        bystander.check(self)
        self.assertEqual(self.admin.call("PING"), "PONG")
        self.assertTrue(self.server.alive())

    def client_names(self):
        listing = self.admin.call("CLIENT", "LIST").decode()
        names = []
        for line in listing.splitlines():
            for field in line.split(" "):
                if field.startswith("name="):
                    names.append(field[5:])
        return names

    def connected_clients(self):
        info = self.admin.call("INFO", "clients").decode()
        for line in info.split("\r\n"):
            if line.startswith("connected_clients:"):
                return int(line.split(":")[1])
        raise AssertionError("no connected_clients in INFO clients")


class MalformedRespTest(BadInputTestCase):

    def test_count_that_is_not_a_number(self):
        with Bystander(self.server) as b:
            self.assert_protocol_error_then_close(
                b"*abc\r\n", "ERR Protocol error: invalid multibulk length")
            self.assert_well(b)

    def test_negative_bulk_length(self):
        with Bystander(self.server) as b:
            self.assert_protocol_error_then_close(
                b"*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length")
            self.assert_protocol_error_then_close(
                b"*2\r\n$3\r\nGET\r\n$abc\r\n", "ERR Protocol error: invalid bulk length")
            self.assert_well(b)

    def test_dollar_line_outside_a_multibulk_is_an_inline_command(self):
        with Bystander(self.server) as b:
            c = self.raw()
            c.send(b"$-5\r\n")
            self.assertEqual(c.read_reply(),
                             RespError("ERR unknown command '$-5', with args beginning with: "))
            self.assertEqual(c.call("PING"), "PONG", "an unknown command keeps the connection")
            self.assert_well(b)

    def test_garbage_where_a_bulk_header_belongs(self):
        with Bystander(self.server) as b:
            self.assert_protocol_error_then_close(
                b"*3\r\n$3\r\nSET\r\nXgarbage\r\n", "ERR Protocol error: expected '$', got 'X'")
            self.assert_well(b)

    def test_replies_before_the_error_are_sent(self):
        with Bystander(self.server) as b:
            reply, closed = harness.raw_exchange(
                self.server.port,
                encode_command("SET", "before", "1") + encode_command("PING") + b"*x\r\n"
                + encode_command("SET", "after", "1"))
            self.assertEqual(reply, b"+OK\r\n+PONG\r\n-ERR Protocol error: invalid multibulk "
                             b"length\r\n")
            self.assertTrue(closed)
            self.assertEqual(self.admin.call("GET", "before"), b"1")
            self.assertIsNone(self.admin.call("GET", "after"),
                              "nothing after the bad frame is executed")
            self.assert_well(b)

    def test_bulk_length_over_512_mb(self):
        with Bystander(self.server) as b:
            self.assert_protocol_error_then_close(
                b"*1\r\n$536870913\r\n", "ERR Protocol error: invalid bulk length")
            self.assert_protocol_error_then_close(
                b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$9999999999\r\n",
                "ERR Protocol error: invalid bulk length")
            self.assert_well(b)

    def test_inline_request_over_64_kb_without_newline(self):
        with Bystander(self.server) as b:
            self.assert_protocol_error_then_close(
                b"x" * (70 * 1024), "ERR Protocol error: too big inline request")
            self.assert_well(b)

    def test_unbalanced_quotes_in_inline_request(self):
        with Bystander(self.server) as b:
            self.assert_protocol_error_then_close(
                b'SET "foo bar\r\n', "ERR Protocol error: unbalanced quotes in request")
            self.assert_protocol_error_then_close(
                b"SET 'foo\r\n", "ERR Protocol error: unbalanced quotes in request")
            self.assertIsNone(self.admin.call("GET", '"foo'))
            self.assert_well(b)

    def test_many_bad_connections_in_a_row(self):
        bad_inputs = [b"*abc\r\n", b"*1\r\n$-5\r\n", b"*2\r\n$3\r\nGET\r\nX\r\n",
                      b'GET "unterminated\r\n', b"*1\r\n$536870913\r\n"]
        with Bystander(self.server) as b:
            deadline = time.monotonic() + 60
            for i in range(200):
                self.assertLess(time.monotonic(), deadline)
                reply, closed = harness.raw_exchange(self.server.port,
                                                     bad_inputs[i % len(bad_inputs)], 5.0)
                self.assertTrue(reply.startswith(b"-ERR Protocol error: "), reply)
                self.assertTrue(closed)
            self.assert_well(b)


class StallsAndAbruptClosesTest(BadInputTestCase):

    def test_half_a_frame_then_a_stall(self):
        with Bystander(self.server) as b:
            staller = self.raw()
            self.assertEqual(staller.call("CLIENT", "SETNAME", "staller"), "OK")
            frame = encode_command("SET", "stalled-key", "stalled-value")
            staller.send(frame[:len(frame) - 7])
            # Others keep being served for a good while (proved by bystander progress, not by
            # a sleep), and the server keeps the stalled connection open.
            b.wait_progress(500, 30.0)
            self.assertIn("staller", self.client_names())
            self.assertIsNone(self.admin.call("GET", "stalled-key"))
            staller.send(frame[len(frame) - 7:])
            self.assertEqual(staller.read_reply(), "OK")
            self.assertEqual(self.admin.call("GET", "stalled-key"), b"stalled-value")
            self.assert_well(b)

    def test_many_stalled_half_frames(self):
        with Bystander(self.server) as b:
            stallers = []
            for i in range(100):
                s = self.raw()
                s.send(b"*3\r\n$3\r\nSET\r\n$%d\r\nhalf:%d\r\n$1000\r\nabc" % (
                    len(b"half:%d" % i), i))
                stallers.append(s)
            b.wait_progress(200, 30.0)
            wait_until(lambda: self.connected_clients() >= 102, 10.0, "100 stalled clients")
            for s in stallers:
                s.close()
            self.assertEqual(self.admin.call("KEYS", "half:*"), [])
            self.assert_well(b)

    def test_peer_closes_mid_frame(self):
        with Bystander(self.server) as b:
            baseline = self.connected_clients()
            partial = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc"
            deadline = time.monotonic() + 60
            for i in range(200):
                self.assertLess(time.monotonic(), deadline)
                s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
                s.sendall(partial[:1 + i % len(partial)])
                if i % 2:
                    # Reset instead of an orderly close.
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                s.close()
            wait_until(lambda: self.connected_clients() <= baseline, 10.0,
                       "the server to drop 200 closed connections")
            self.assertEqual(self.admin.call("EXISTS", "k"), 0)
            self.assert_well(b)

    def test_peer_closes_while_a_large_reply_is_being_sent(self):
        self.assertEqual(self.admin.call("SET", "big", b"x" * (8 * MIB)), "OK")
        with Bystander(self.server) as b:
            for i in range(20):
                s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
                s.sendall(encode_command("GET", "big") * 4)
                s.recv(1000)
                if i % 2:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                s.close()
            self.assert_well(b)


class BinaryAndHugeValuesTest(BadInputTestCase):

    def test_nul_bytes_and_empty_keys(self):
        with Bystander(self.server) as b:
            c = self.raw()
            keys = [b"", b"\x00", b"\x00\x00", b"a\x00b", b"\r\n", b"\x00\r\n\x00"]
            for i, key in enumerate(keys):
                self.assertEqual(c.call("SET", key, b"\x00value\x00%d" % i), "OK")
            for i, key in enumerate(keys):
                self.assertEqual(c.call("GET", key), b"\x00value\x00%d" % i, repr(key))
            self.assertEqual(c.call("EXISTS", *keys), len(keys))
            self.assertEqual({k for k in self.admin.call("KEYS", "*")
                              if not k.startswith(b"bystander:")}, set(keys))
            self.assertEqual(c.call("DEL", *keys), len(keys))
            self.assert_well(b)

    def test_64_mib_value(self):
        value = bytes(range(251)) * (64 * MIB // 251) + b"end"
        with Bystander(self.server) as b:
            c = self.raw(timeout_s=120)
            self.assertEqual(c.call("SET", "huge", value), "OK")
            b.wait_progress(50, 10.0)
            self.assertEqual(c.call("STRLEN", "huge"), len(value))
            self.assertEqual(c.call("GET", "huge"), value)
            self.assertEqual(c.call("GETRANGE", "huge", "-3", "-1"), b"end")
            self.assertEqual(c.call("DEL", "huge"), 1)
            self.assert_well(b)


class ManyIdleConnectionsTest(BadInputTestCase):
    """10,000 idle connections: all accepted, others still served fast, memory bounded."""

    IDLE_CONNECTIONS = 10_000
    # Both servers default to maxclients 10000, which counts every client, this test's own two
    # included; both get the same headroom.
    redis_args = ("--maxclients", "10050")
    weft_args = ("--maxclients", "10050")
    RSS_BYTES_MAX = 256 * MIB

    @classmethod
    def setUpClass(cls):
        # The test process holds 10,000 sockets; the server, started next, inherits the limit.
        wanted = cls.IDLE_CONNECTIONS + 500
        got = harness.raise_open_file_limit(wanted)
        if got < wanted:
            raise AssertionError("need RLIMIT_NOFILE >= %d for this test, the hard limit allows "
                                 "%d (ulimit -Hn)" % (wanted, got))
        super().setUpClass()

    def test_ten_thousand_idle_connections(self):
        rss_before = self.server.rss_bytes()
        idle = []
        self.addCleanup(lambda: [s.close() for s in idle])
        with Bystander(self.server) as b:
            baseline = self.connected_clients()
            deadline = time.monotonic() + 120
            for i in range(self.IDLE_CONNECTIONS):
                if time.monotonic() > deadline:
                    self.fail("opened only %d connections in 120 s" % i)
                idle.append(socket.create_connection(("127.0.0.1", self.server.port),
                                                     timeout=10))
            # A refused connection gets an error reply and a close, both readable: stop
            # waiting as soon as one shows up and report what it got.
            poller = select.poll()
            by_fd = {}
            for s in idle:
                poller.register(s.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
                by_fd[s.fileno()] = s
            target = baseline + self.IDLE_CONNECTIONS
            wait_until(lambda: self.connected_clients() >= target or poller.poll(0), 60.0,
                       "the server to accept %d connections" % self.IDLE_CONNECTIONS)
            events = poller.poll(0)
            if events:
                data, _ = harness.read_until_close(by_fd[events[0][0]], 1.0)
                self.fail("%d of %d idle connections were refused or closed (the test holds "
                          "%d more); the first one got %r"
                          % (len(events), self.IDLE_CONNECTIONS, baseline, data[:200]))
            self.assertGreaterEqual(self.connected_clients(), target)

            latencies = []
            for i in range(200):
                start = time.monotonic()
                self.assertEqual(self.admin.call("SET", "probe", i), "OK")
                self.assertEqual(self.admin.call("GET", "probe"), b"%d" % i)
                latencies.append(time.monotonic() - start)
            latencies.sort()
            b.wait_progress(100, 10.0)

            # Every 100th idle connection still works.
            for s in idle[::100]:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
            for s in idle[::100]:
                s.settimeout(10)
                self.assertEqual(s.recv(100), b"+PONG\r\n")

            rss_with_idle = self.server.rss_bytes()
            print("\n  %s: RSS %.1f MB before, %.1f MB with %d idle connections; "
                  "SET+GET p50 %.2f ms, max %.2f ms"
                  % (self.server.kind, rss_before / MIB, rss_with_idle / MIB,
                     self.IDLE_CONNECTIONS, latencies[len(latencies) // 2] * 1000,
                     latencies[-1] * 1000))
            self.assertLess(latencies[len(latencies) // 2], 0.1, "median SET+GET round trip")
            self.assertLess(latencies[-1], BYSTANDER_LATENCY_S_MAX, "slowest SET+GET round trip")
            self.assertLess(rss_with_idle, self.RSS_BYTES_MAX)

            for s in idle:
                s.close()
            idle.clear()
            wait_until(lambda: self.connected_clients() <= baseline, 60.0,
                       "the server to notice 10,000 closed connections")
            self.assert_well(b)


class ConnectionFloodTest(BadInputTestCase):
    """More connections than maxclients at once: exactly the excess is refused, in Redis's words."""

    ALLOWED_EXTRA = 20
    FLOOD = 30

    def test_connections_over_maxclients_are_refused_exactly(self):
        a = self.admin
        with Bystander(self.server) as b:
            limit = self.connected_clients() + self.ALLOWED_EXTRA
            self.assertEqual(a.call("CONFIG", "SET", "maxclients", str(limit)), "OK")
            self.addCleanup(a.call, "CONFIG", "SET", "maxclients", "10000")
            flood = []
            self.addCleanup(lambda: [s.close() for s in flood])
            for _ in range(self.FLOOD):
                flood.append(socket.create_connection(("127.0.0.1", self.server.port),
                                                      timeout=10))
            outcomes = []
            for s in flood:
                try:
                    s.sendall(encode_command("PING"))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                data = b""
                while not data.endswith(b"\r\n"):
                    try:
                        chunk = s.recv(100)
                    except ConnectionResetError:
                        chunk = b""
                    if not chunk:
                        break
                    data += chunk
                outcomes.append(data)
            refused = [d for d in outcomes if d != b"+PONG\r\n"]
            self.assertEqual(len(refused), self.FLOOD - self.ALLOWED_EXTRA, outcomes)
            for d in refused:
                self.assertEqual(d, b"-ERR max number of clients reached\r\n")
            for s, d in zip(flood, outcomes):
                if d != b"+PONG\r\n":
                    self.assertEqual(harness.read_until_close(s, 5.0), (b"", True))
            self.assert_well(b)


class ClientThatNeverReadsTest(BadInputTestCase):
    """A client pipelines GET of a 1 MiB value and never reads: the output limit drops it."""

    HARD_LIMIT_BYTES = 64 * MIB
    RSS_GROWTH_BYTES_MAX = 3 * HARD_LIMIT_BYTES
    # 1 GiB of replies: 16 times the hard limit, plenty for the limit to trip, and bounded so
    # that a server without one grows by at most that much instead of eating the machine.
    COMMANDS_MAX = 1024
    DURATION_S_MAX = 60

    def test_output_buffer_limit_disconnects_a_client_that_never_reads(self):
        a = self.admin
        # Redis takes the same CONFIG SET as its --client-output-buffer-limit flag.
        self.assertEqual(a.call("CONFIG", "SET", "client-output-buffer-limit",
                                "normal 64mb 32mb 10"), "OK")
        self.assertEqual(a.call("SET", "bigkey", b"v" * MIB), "OK")
        rss_before = self.server.rss_bytes()
        rss_peak = rss_before

        greedy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(greedy.close)
        # A small receive window, so the kernel buffers little and the server's own output
        # buffer has to grow.
        greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        greedy.settimeout(10)
        greedy.connect(("127.0.0.1", self.server.port))
        greedy.sendall(encode_command("CLIENT", "SETNAME", "greedy"))
        self.assertEqual(greedy.recv(100), b"+OK\r\n")
        greedy.setblocking(False)

        one_get = encode_command("GET", "bigkey")
        pending = one_get * self.COMMANDS_MAX
        bytes_total = len(pending)
        dropped = False
        with Bystander(self.server) as b:
            deadline = time.monotonic() + self.DURATION_S_MAX
            next_check = 0.0
            while time.monotonic() < deadline:
                if pending:
                    try:
                        pending = pending[greedy.send(pending):]
                    except BlockingIOError:
                        select.select([], [greedy], [], 0.05)
                    except (BrokenPipeError, ConnectionResetError):
                        dropped = True
                        break
                else:
                    time.sleep(0.01)  # polling period; the exit condition is checked below
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + 0.05
                    rss_peak = max(rss_peak, self.server.rss_bytes())
                    if "greedy" not in self.client_names():
                        dropped = True
                        break
            rss_peak = max(rss_peak, self.server.rss_bytes())
            sent_commands = (bytes_total - len(pending)) // len(one_get)
            self.assertTrue(dropped, "the server kept a client that never reads for %d s "
                            "(%d GETs of 1 MiB sent)" % (self.DURATION_S_MAX, sent_commands))
            wait_until(lambda: "greedy" not in self.client_names(), 10.0,
                       "the greedy client to be gone from CLIENT LIST")
            # What the greedy socket can still read ends in a close, well short of what it
            # asked for.
            greedy.setblocking(True)
            data, closed = harness.read_until_close(greedy, 30.0, limit_bytes=512 * MIB)
            self.assertTrue(closed, "the greedy connection must end in a close")
            self.assertLess(len(data), sent_commands * MIB)
            print("\n  %s: greedy client dropped after %d GETs sent, %.1f MB read; RSS %.1f MB "
                  "before, peak %.1f MB" % (self.server.kind, sent_commands, len(data) / MIB,
                                            rss_before / MIB, rss_peak / MIB))
            self.assertLess(rss_peak - rss_before, self.RSS_GROWTH_BYTES_MAX,
                            "RSS growth while a client never reads")
            self.assert_well(b)


if __name__ == "__main__":
    harness.main()
