"""Multi-process clusters through a real etcd: joins under write load, kill -9 of the provider
and of the joiner, deletes and expiries racing the image, two joins at once, an empty region,
16 MiB values, bad peers on the peer port, and the change events a joiner delivers while the
image and the live changes race (DESIGN.md §5, §6; issue 3's test list).

Every check after a load: all digests equal (WEFT.DIGEST) and every acknowledged write is
present with its last acknowledged value (single-writer keys) on every member.
"""

import os
import signal
import socket
import struct
import tempfile
import threading
import time

import harness
import redis
from cluster_harness import ClusterTestCase, Writer, wait_active, wait_quiet, write_secret
from harness import wait_until


class ClusterTest(ClusterTestCase):
    def test_join_under_load_converges(self):
        m1, m2, m3 = self.cluster_of(3)
        self.preload(m1, 20_000)
        writers = [Writer(m, "w%d" % i) for i, m in enumerate((m1, m2, m3))]
        for w in writers:
            w.start()
        time.sleep(0.5)
        m4 = self.member("m4")
        wait_active(m4)
        time.sleep(0.5)
        for w in writers:
            w.stop()
        self.assertTrue(all(w.ops > 0 for w in writers))
        region = m4.region()
        self.assertGreater(int(region["entries"]), 20_000, region)
        self.assertEqual(region["members"], "4")
        self.assert_converged([m1, m2, m3, m4], writers)
        # INFO replication shows every channel with its counters.
        channels = [v for k, v in m1.replication().items() if k.startswith("channel")]
        self.assertTrue(any(c["dir"] == "out" and int(c["sent"]) > 0 for c in channels))
        self.assertTrue(any(c["dir"] == "in" and int(c["received"]) > 0 for c in channels))

    def test_provider_killed_during_image_join_completes_from_another(self):
        # m1 streams its image slowly, so the kill lands in the middle of it.
        m1 = self.member("m1", "--image-rate-limit", "1mb")
        wait_active(m1)
        m2 = self.member("m2")
        wait_active(m2)
        m3 = self.member("m3")
        wait_active(m3)
        self.preload(m1, 30_000)
        writers = [Writer(m, "w%d" % i) for i, m in enumerate((m1, m2, m3))]
        for w in writers:
            w.start()
        m4 = self.member("m4", "--provider", "m1")
        wait_until(lambda: m4.region().get("phase") == "image" and
                   int(m4.region().get("entries", "0")) > 0, 30, "the image from m1")
        m1.kill()
        wait_active(m4, timeout_s=60)
        time.sleep(0.3)
        for w in writers:
            w.stop()
        self.assertEqual(m4.region()["join_attempts"], "2")
        survivors = [m2, m3, m4]
        wait_until(lambda: all(m.region()["members"] == "3" for m in survivors), 20,
                   "m1 dropped from the group")
        self.assert_converged(survivors, writers)

    def test_joiner_killed_others_keep_serving_and_drop_it(self):
        m1, m2 = self.member("m1", "--image-rate-limit", "1mb"), None
        wait_active(m1)
        m2 = self.member("m2")
        wait_active(m2)
        self.preload(m1, 30_000)
        m3 = self.member("m3", "--provider", "m1")
        wait_until(lambda: m3.region().get("phase") == "image", 30, "m3's image")
        writers = [Writer(m, "w%d" % i) for i, m in enumerate((m1, m2))]
        for w in writers:
            w.start()
        time.sleep(0.2)
        m3.kill()
        wait_until(lambda: all(m.region()["members"] == "2" for m in (m1, m2)), 20,
                   "the dead joiner dropped")
        ops_before = [w.ops for w in writers]
        time.sleep(1.0)
        for w in writers:
            w.stop()
        # Writes went on after the joiner died (nothing waits on it), none failed.
        for w, before in zip(writers, ops_before):
            self.assertGreater(w.ops, before)
            self.assertEqual(w.errors, 0)
            self.assertLess(w.max_latency_s, 5.0)
        self.assert_converged([m1, m2], writers)

    def test_deletes_and_expiries_racing_the_image_never_resurrect(self):
        m1 = self.member("m1", "--image-rate-limit", "4mb")
        wait_active(m1)
        m2 = self.member("m2")
        wait_active(m2)
        writers = [Writer(m, "d%d" % i, keys=2000, delete_every=3, expire_every=5)
                   for i, m in enumerate((m1, m2))]
        # Fill the key space first so that the image carries what the deletes remove.
        for w in writers:
            w.max_ops = 4000
            w.start()
        for w in writers:
            w.join(timeout=60)
        writers = [Writer(m, "d%d" % i, keys=2000, delete_every=3, expire_every=5)
                   for i, m in enumerate((m1, m2))]
        for w in writers:
            w.start()
        m3 = self.member("m3", "--provider", "m1")
        wait_active(m3)
        for w in writers:
            w.stop()
        time.sleep(0.2)  # let the 50 ms expiries pass
        members = [m1, m2, m3]
        self.assert_converged(members, writers)
        for w in writers:
            deleted = [k for k, v in w.acked.items() if v is None and k not in w.in_doubt]
            self.assertTrue(deleted)
            for m in members:
                values = m.client().mget(deleted)
                self.assertEqual(values, [None] * len(deleted), m.name)

    def test_two_joins_at_once(self):
        m1, m2 = self.cluster_of(2)
        self.preload(m1, 10_000)
        writers = [Writer(m, "w%d" % i) for i, m in enumerate((m1, m2))]
        for w in writers:
            w.start()
        j1 = self.member("j1")
        j2 = self.member("j2")
        wait_active(j1)
        wait_active(j2)
        for w in writers:
            w.stop()
        self.assert_converged([m1, m2, j1, j2], writers)

    def test_join_of_an_empty_region(self):
        (m1,) = self.cluster_of(1)
        m2 = self.member("m2")
        wait_active(m2)
        self.assertEqual(m2.client().dbsize(), 0)
        m2.client().set("after", "join")
        wait_quiet([m1, m2])
        self.assertEqual(m1.client().get("after"), b"join")

    def test_sixteen_mib_values_in_image_and_live(self):
        m1, m2 = self.cluster_of(2)
        big = os.urandom(16 << 20)
        for i in range(3):
            m1.client(timeout=30).set("big:image:%d" % i, big)
        m3 = self.member("m3")
        m1.client(timeout=30).set("big:live", big[::-1])
        wait_active(m3)
        self.assert_converged([m1, m2, m3])
        self.assertEqual(m3.client(timeout=30).get("big:image:2"), big)
        self.assertEqual(m3.client(timeout=30).get("big:live"), big[::-1])

    def test_bad_peers_are_refused_without_harm(self):
        m1, m2 = self.cluster_of(2)
        # Garbage, an HTTP request, a truncated frame, and silence on the peer port.
        payloads = [os.urandom(4096), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                    struct.pack("<BBHII", 1, 1, 0, 1000, 0) + b"x" * 10]
        for payload in payloads:
            with socket.create_connection(("127.0.0.1", m1.peer_port), timeout=5) as s:
                s.sendall(payload)
                time.sleep(0.1)
        silent = socket.create_connection(("127.0.0.1", m1.peer_port), timeout=5)
        # A member with the wrong secret registers, but every member refuses its handshakes:
        # it can never join, so it goes FAILED and leaves the group instead of rejoining again
        # and again (each time, the others' sync writes would wait for it).
        other_dir = tempfile.mkdtemp(prefix="weft-it-wrong-")
        wrong = self.member("intruder", secret=write_secret(other_dir, "a-different-secret-xyz!!"))
        wait_until(lambda: wrong.region()["state"] == "FAILED", 30, "the intruder FAILED")
        self.assertIn("refuses this member's handshake", wrong.replication()["region0_failure"])
        with self.assertRaises(redis.exceptions.ResponseError):
            wrong.client().get("k")  # it never received the data
        wait_until(lambda: m1.region()["members"] == "2", 20, "the intruder gone from the group")
        # The members go on replicating, every sync write acknowledged.
        writer = Writer(m1, "after-bad", max_ops=300, reply_timeout_s=30)
        writer.start()
        writer.join(timeout=60)
        self.assertEqual(wrong.region()["state"], "FAILED")
        self.assertEqual(m1.region()["members"], "2")
        wrong.kill()
        silent.close()
        self.assertEqual(writer.errors, 0)
        self.assertEqual(writer.ops, 300)
        self.assert_converged([m1, m2], [writer])
        log = m1.log_text()
        self.assertIn("refused peer connection", log)
        self.assertIn("secret", log)
        self.assertIn("failed to prove it knows the cluster secret", wrong.log_text())

    def test_member_stalled_past_its_lease_never_serves_stale_and_rejoins_in_place(self):
        def serves(member):
            try:
                return member.client().set("probe", "1")
            except redis.exceptions.ResponseError as refused:
                self.assertIn("CLUSTERDOWN", str(refused))
                return False

        m1, m2 = self.cluster_of(2)
        # The default lease (5 s) is longer than the read guard's silence timeout (3 s), so a
        # member stops serving before its lease can end. (The other tests' 2 s leases are
        # shorter: there a dropped member may serve for the rest of the 3 s bound.)
        m3 = self.member("m3", "--lease-ttl", "5")
        wait_active(m3)
        self.preload(m1, 2_000)
        # A stall longer than the lease: a GC-like pause, or a partition.
        os.kill(m3.process.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: m1.region()["members"] == "2", 30, "m3 dropped by the others")
            # While m3 was silent and still in the group, m1 and m2 refused requests too (the
            # read guard cannot tell who is cut off); they serve again once m3 is gone.
            wait_until(lambda: serves(m1), 10, "m1 serving again")
            writer = Writer(m1, "while-m3-stalled", max_ops=500)
            writer.start()
            writer.join(timeout=60)
        finally:
            os.kill(m3.process.pid, signal.SIGCONT)
        # m3 missed those writes. From the moment it wakes it either refuses a read or answers
        # with the acknowledged value: never from its stale copy (DESIGN.md §6, the read guard).
        last_key = "while-m3-stalled:499"
        client = m3.client()
        refusals = answers = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                value = client.get(last_key)
            except (redis.exceptions.ResponseError, redis.exceptions.BusyLoadingError) as refused:
                # redis-py keeps "CLUSTERDOWN" in the message, but drops "LOADING" from it.
                self.assertTrue(isinstance(refused, redis.exceptions.BusyLoadingError) or
                                "CLUSTERDOWN" in str(refused), str(refused))
                refusals += 1
            else:
                self.assertEqual(value, writer.acked[last_key], "m3 served a stale copy")
                answers += 1
                if m3.region()["state"] == "ACTIVE":
                    break
            time.sleep(0.02)
        self.assertGreater(refusals, 0, "m3 served before it had rejoined")
        self.assertGreater(answers, 0, "m3 did not rejoin within 60 s")
        # It rejoined in place, on its own: no restart.
        self.assertGreaterEqual(int(m3.region()["rejoins"]), 1)
        self.assertIn("rejoining the group in place", m3.log_text())
        self.assertEqual(writer.errors, 0)
        for member in (m1, m2, m3):
            wait_active(member)
        self.assert_converged([m1, m2, m3], [writer])

    def test_peer_too_far_behind_is_expelled_and_rejoins_in_place(self):
        # Async, so m1's writes go on while m2 takes nothing from one lane.
        m1 = self.member("m1", "--region", "default:async", "--peer-backlog-limit", "64kb")
        wait_active(m1)
        m2 = self.member("m2", "--region", "default:async", "--enable-debug-command")
        wait_active(m2)
        m2.client().execute_command("DEBUG", "HOLD-LANE", "m1", "backlog:0", "ON")
        client = m1.client()
        for i in range(400):
            client.set("backlog:%d" % i, b"x" * 1024)
        wait_until(lambda: "expelled member m2" in m1.log_text(), 30, "m2 expelled")

        def release_hold():
            # The hold outlives m2's rejoin; m2 names m1 again once it has entered again.
            try:
                m2.client().execute_command("DEBUG", "HOLD-LANE", "m1", "backlog:0", "OFF")
                return True
            except redis.exceptions.ResponseError as error:
                self.assertIn("no member named", str(error))
                return False
        wait_until(release_hold, 30, "the held lane released")
        # m1 never waited for m2: its writes all went through.
        client.set("after", "expel")
        self.assertEqual(client.get("after"), b"expel")
        self.assertEqual(client.dbsize(), 401)
        # m2 learns it is out of the group and takes a fresh copy through the join protocol.
        wait_until(lambda: "rejoining the group in place" in m2.log_text(), 30, "m2 rejoining")
        wait_until(lambda: m2.region()["state"] == "ACTIVE" and m1.region()["members"] == "2",
                   60, "m2 ACTIVE again")
        self.assertGreaterEqual(int(m2.region()["rejoins"]), 1)
        self.assertEqual(m2.client().get("backlog:399"), b"x" * 1024)
        self.assert_converged([m1, m2])

    def events(self, member, key):
        """DEBUG EVENTS: [(old, new, (stamp, origin))] for `key`, in delivery order."""
        reply = member.client().execute_command("DEBUG", "EVENTS", key)
        events = []
        for old, new, version, origin in reply:
            stamp = int(version.split(b":")[0], 16)
            events.append((old, new, (stamp, int(origin, 16))))
        return events

    def assert_event_chain(self, member, key):
        """Per key, each event's old value is the previous event's new value, the versions
        increase, and the last event left the value the member holds now."""
        events = self.events(member, key)
        for previous, event in zip(events, events[1:]):
            self.assertEqual(event[0], previous[1], "%s on %s: %r" % (key, member.name, events))
            self.assertGreater(event[2], previous[2], "%s: versions %r" % (key, events))
        if events:
            self.assertEqual(events[-1][1], member.client().get(key), key)
        return len(events)

    def test_change_the_image_delivers_first_still_gives_one_event_with_the_pre_image(self):
        m1, m2, m3 = self.cluster_of(3)
        self.preload(m1, 5_000)
        key = "raced:key"
        m1.client().set(key, b"before")
        m4 = self.member("m4", "--provider", "m2", "--enable-debug-command",
                         "--debug-hold-phase", "image", "--debug-event-log", "2000000")
        wait_until(lambda: m4.region().get("held") == "image", 30, "m4 stabilized, held before the image")
        # From here every change reaches m4 live, as the post-image store's event.
        writers = [Writer(m, "w%d" % i, keys=300, max_s=60) for i, m in ((2, m2), (3, m3))]
        for w in writers:
            w.start()
        control = m4.client()
        control.execute_command("DEBUG", "HOLD-LANE", "m1", key, "ON")
        # m1's sync write waits for m4's acknowledgement, which the held lane delays.
        outcome = {}
        writer = threading.Thread(
            target=lambda: outcome.update(reply=m1.client(timeout=60).set(key, b"after")))
        writer.start()
        wait_until(lambda: m2.client().get(key) == b"after", 20, "the change applied on m2")
        # m2's image now carries the new value; the live change still waits in the held lane.
        control.execute_command("DEBUG", "HOLD-PHASE", "image", "OFF")
        wait_until(lambda: m4.region()["phase"] == "flush", 60,
                   "the image incorporated (the join waits for m1's JoinFlush behind the change)")
        self.assertTrue(writer.is_alive(), "m1 answered %r before m4 applied the change" % outcome)
        self.assertEqual(self.events(m4, key), [], "the image gave an event")
        control.execute_command("DEBUG", "HOLD-LANE", "m1", key, "OFF")
        writer.join(timeout=60)
        self.assertIs(outcome.get("reply"), True)
        wait_active(m4)
        # Exactly one event, with the sender's pre-image as its old value.
        events = self.events(m4, key)
        self.assertEqual([(old, new) for old, new, _ in events], [(b"before", b"after")])
        # Later changes chain on: old value = the previous event's new value.
        m3.client().set(key, b"third")
        m4.client().set(key, b"fourth")
        for w in writers:
            w.stop()
        self.assertTrue(all(w.ops > 0 for w in writers))
        self.assert_converged([m1, m2, m3, m4], writers)
        events = self.events(m4, key)
        self.assertEqual([(old, new) for old, new, _ in events],
                         [(b"before", b"after"), (b"after", b"third"), (b"third", b"fourth")])
        # The writers' keys changed during and after the join: every key's events chain.
        chained = sum(self.assert_event_chain(m4, k) for w in writers for k in w.acked)
        self.assertGreater(chained, 0)


if __name__ == "__main__":
    harness.main()
