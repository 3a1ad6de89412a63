"""Faults of the membership itself (DESIGN.md §6): etcd unreachable for a minute under load.

"The registry being unreachable freezes membership (nobody joins, leaves or is expelled) but not
the data: members keep serving what stays safe (reads, async writes, sync writes that every group
member acknowledges) and resume membership on their own when it returns. A member decides it has
lost its place only from the registry's answer, never from its own clock alone."

So after a 60 s etcd outage, with a sync writer on every member throughout: every member served
reads during it, every member is ACTIVE again within 60 s of etcd's return in the same process
(nobody restarted anything), the digests are equal and no acknowledged write is missing.

A failure lists everything that went wrong at once: which member refused which read and why,
which writer stopped on which error, each member's region state and failure reason from INFO
replication, and how many acknowledged writes each member lacks (or that it refuses to be read).
"""

import threading
import time

import harness
import redis
from cluster_harness import ClusterTestCase, Writer, wait_quiet
from harness import wait_until

OUTAGE_S = 60
RECOVERY_S = 60         # from etcd answering again to every member ACTIVE
READ_EVERY_S = 5        # a GET on every member this often during the outage
TICK_S = 0.5            # INFO replication of every member this often during the outage
PRELOAD_KEYS = 5_000
PRELOAD_VALUE = b"v" * 100  # what ClusterTestCase.preload writes


class MembershipFaultsTest(ClusterTestCase):
    # Each test stops or freezes etcd: it gets its own.
    etcd_per_test = True

    def test_etcd_outage_of_60_s_loses_nothing_and_needs_no_restart(self):
        """etcd stopped as an operator stops it (SIGTERM) and started again 60 s later on the
        same data directory and ports: meanwhile connections to it are refused. A restarted
        etcd extends every lease by its TTL, so a member that never gave its lease up (it kept
        renewing) finds it alive again."""
        self.run_outage(
            "etcd stopped (SIGTERM) for %d s, then restarted on the same data and ports" % OUTAGE_S,
            lambda: self.etcd.stop(graceful=True), self.etcd.restart, expect_rejoins=False)

    def test_etcd_frozen_for_60_s_loses_nothing_and_needs_no_restart(self):
        """etcd hung for 60 s (SIGSTOP, then SIGCONT): connections are accepted by the kernel
        and never answered, so requests time out instead of being refused. Thawed, etcd 3.4
        expires at once every lease whose TTL passed while it was frozen (it did so in a manual
        check even with a keep-alive queued), so every member loses its registration at once,
        by the registry's answer this time: the group re-forms from the members' own data and
        they rejoin in place (DESIGN §6), still with no restart and no acknowledged write lost."""
        self.run_outage("etcd frozen (SIGSTOP) for %d s, then thawed (SIGCONT)" % OUTAGE_S,
                        self.etcd.freeze, self.etcd.thaw, expect_rejoins=True)

    def run_outage(self, how, interrupt_etcd, resume_etcd, expect_rejoins):
        """`expect_rejoins`: etcd ends every lease when it comes back, so every member must
        rejoin in place (and the test proves that path, not only the quiet one); otherwise
        nobody may."""
        members = self.cluster_of(3)
        self.preload(members[0], PRELOAD_KEYS)
        wait_quiet(members)
        pids = {m.name: m.process.pid for m in members}
        # The reply timeout outlasts the outage, so that a write held during it is not counted
        # as in doubt; a refused one ends its writer (Writer.failure).
        writers = [Writer(m, "w%d" % i, max_ops=2_000_000, max_s=OUTAGE_S + RECOVERY_S + 120,
                          reply_timeout_s=OUTAGE_S + 30)
                   for i, m in enumerate(members, 1)]
        quiet_refused_writers(self)
        for w in writers:
            w.start()
            # After tearDown's member cleanup, so a writer held in a reply ends with its member.
            self.addCleanup(w.stop)
        wait_until(lambda: all(w.ops > 0 for w in writers), 30, "a first write by every writer")

        ops_before = [w.ops for w in writers]
        outage_started = time.monotonic()
        interrupt_etcd()
        outage = self.observe_outage(members, writers, outage_started)
        ops_during = [w.ops - before for w, before in zip(writers, ops_before)]
        ops_second_half = [w.ops - half for w, half in zip(writers, outage["ops_at_half"])]
        resume_etcd()
        back = time.monotonic()

        def settled():
            views = [region_view(m) for m in members]
            rejoined = all(v["rejoins"] > 0 for v in views) or not expect_rejoins
            return (rejoined and all(v["state"] == "ACTIVE" for v in views)) or \
                any(m.process.poll() is not None for m in members)
        try:
            wait_until(settled, RECOVERY_S, "every member ACTIVE", interval_s=0.2)
        except AssertionError:
            pass
        waited_s = time.monotonic() - back
        for w in writers:
            w.stop()

        problems = []
        for m in members:
            ok, refused = outage["reads"][m.name]
            if refused:
                problems.append("%s refused %d of %d reads during the outage, the first at %s"
                                % (m.name, len(refused), ok + len(refused), refused[0]))
        for w, during, second_half in zip(writers, ops_during, ops_second_half):
            if w.failure is not None:
                problems.append("writer %s on %s was refused a write: %s"
                                % (w.prefix, w.member.name, w.failure))
            elif second_half == 0:
                # Long past any lease TTL: writes acknowledged early on prove nothing.
                problems.append("writer %s on %s had no sync write acknowledged in the second "
                                "half of the outage, with all 3 members up and connected (%d "
                                "in its first half)" % (w.prefix, w.member.name, during))
        views = {m.name: region_view(m) for m in members}
        for m in members:
            view = views[m.name]
            if expect_rejoins and view["rejoins"] == 0:
                problems.append("%s never rejoined, though etcd ended its lease" % m.name)
            elif not expect_rejoins and view["rejoins"] != 0:
                problems.append("%s rejoined %d time(s), though its lease never ended"
                                % (m.name, view["rejoins"]))
            if m.process.poll() is not None:
                problems.append("%s exited with status %s" % (m.name, m.process.returncode))
            elif m.process.pid != pids[m.name] or \
                    view["process_id"] not in (None, str(pids[m.name])):
                problems.append("%s is not the process it was: pid %s before, %s now"
                                % (m.name, pids[m.name], view["process_id"]))
            if view["state"] != "ACTIVE":
                problems.append(
                    "%s is not ACTIVE %.0f s after etcd was back: %s; it left ACTIVE %s; "
                    "its log: %s"
                    % (m.name, waited_s, view_text(view),
                       outage["left_active"].get(m.name, "after the outage"),
                       first_line_with(m, "LOST ITS LEASE") or "(no LOST ITS LEASE)"))
        all_active = all(v["state"] == "ACTIVE" for v in views.values())
        if all_active:
            try:
                wait_quiet(members)
            except AssertionError as e:
                problems.append("members ACTIVE but replication did not drain: %s" % e)
        problems += lost_writes(members, writers, all_active)

        summary = ("%s; 3 members (lease TTL 2 s), a sync writer on each: %d of %d reads "
                   "served during the outage; writes acknowledged in its first/second half %s; "
                   "rejoins %s; %s %.1f s after etcd was back"
                   % (how, sum(ok for ok, _ in outage["reads"].values()),
                      sum(ok + len(refused) for ok, refused in outage["reads"].values()),
                      ", ".join("%s %d/%d" % (w.prefix, during - second, second) for w, during,
                                second in zip(writers, ops_during, ops_second_half)),
                      "/".join(str(v["rejoins"]) for v in views.values()),
                      "all ACTIVE" if all_active else "not all ACTIVE", waited_s))
        print(summary)
        if problems:
            self.fail("%s\n%d problem(s):\n  - %s" % (summary, len(problems),
                                                     "\n  - ".join(problems)))
        self.assert_converged(members, writers)

    def observe_outage(self, members, writers, started):
        """Until OUTAGE_S after `started`: a GET of a preloaded key on every member every
        READ_EVERY_S, and each member's region state every TICK_S.

        Returns {"reads": {name: (ok count, [failure text])},
                 "left_active": {name: "+<s> s into the outage, as <state>"},
                 "ops_at_half": [each writer's ops OUTAGE_S / 2 into the outage]}."""
        clients = {m.name: m.client(timeout=5) for m in members}
        reads = {m.name: (0, []) for m in members}
        left_active = {}
        ops_at_half = None
        next_read = started
        deadline = started + OUTAGE_S
        n = 0
        while True:
            now = time.monotonic()
            at = "+%.1f s" % (now - started)
            if now >= next_read:
                next_read += READ_EVERY_S
                for m in members:
                    key = "pre:%d" % (n * 997 % PRELOAD_KEYS)
                    n += 1
                    ok, refused = reads[m.name]
                    try:
                        value = clients[m.name].get(key)
                        if value == PRELOAD_VALUE:
                            ok += 1
                        else:
                            refused.append("%s: GET %s returned %r" % (at, key, value))
                    except redis.exceptions.RedisError as e:
                        refused.append("%s: GET %s: %s: %s" % (at, key, type(e).__name__, e))
                        clients[m.name] = m.client(timeout=5)  # a timed-out one is unusable
                    reads[m.name] = (ok, refused)
            for m in members:
                if m.name not in left_active:
                    view = region_view(m)
                    if view["state"] != "ACTIVE":
                        left_active[m.name] = "%s into the outage, as %s" % (
                            at, view["state"])
            if ops_at_half is None and now >= started + OUTAGE_S / 2:
                ops_at_half = [w.ops for w in writers]
            if now >= deadline:
                break
            # The outage's length is the fault being injected, not a synchronization.
            time.sleep(max(0.0, min(TICK_S, deadline - time.monotonic())))
        return {"reads": reads, "left_active": left_active, "ops_at_half": ops_at_half}


def quiet_refused_writers(test):
    """For the rest of `test`, a Writer that ends on an error reply (Writer.failure) prints no
    traceback: the failure message reports it. Any other exception in a thread still prints."""
    default_hook = threading.excepthook

    def hook(args):
        if isinstance(args.thread, Writer) and args.exc_value is args.thread.failure:
            return
        default_hook(args)
    threading.excepthook = hook
    test.addCleanup(setattr, threading, "excepthook", default_hook)


def first_line_with(member, text):
    """The first line of the member's log containing `text`, without its date and time."""
    try:
        for line in member.log_text().splitlines():
            if text in line:
                return line.split(" ", 2)[-1]
    except OSError:
        pass
    return None


def region_view(member):
    """The member's region state, phase and failure reason (INFO replication) and process_id
    (INFO server), with the error in `state` when it does not answer."""
    view = {"state": None, "phase": None, "failure": None, "process_id": None, "rejoins": 0}
    try:
        replication = member.replication()
        region = replication["region0"]
        view.update(state=region.get("state"), phase=region.get("phase"),
                    failure=replication.get("region0_failure"),
                    rejoins=int(region.get("rejoins", 0)))
        for line in member.info_text("server").splitlines():
            if line.startswith("process_id:"):
                view["process_id"] = line.split(":", 1)[1].strip()
    except (OSError, KeyError, redis.exceptions.RedisError) as e:
        view["state"] = "no answer to INFO (%s: %s)" % (type(e).__name__, e)
    return view


def view_text(view):
    text = "state=%s phase=%s" % (view["state"], view["phase"])
    if view["failure"]:
        text += " failure=%r" % view["failure"]
    return text


def lost_writes(members, writers, all_active):
    """One problem per member that lacks acknowledged writes or refuses to be read."""
    problems = []
    acked = sum(len(w.acked) for w in writers)
    for m in members:
        try:
            lost = [entry for w in writers for entry in w.lost_on(m)]
        except redis.exceptions.RedisError as e:
            problems.append("the %d keys acknowledged to the writers cannot be checked on "
                            "%s: it refuses reads: %s" % (acked, m.name, e))
            continue
        if lost:
            key, expected, found = lost[0]
            problems.append("%s lacks %d of %d acknowledged writes%s (e.g. %s: acknowledged %r, "
                            "found %r)" % (m.name, len(lost), acked,
                                           "" if all_active else " (before convergence)",
                                           key, expected, found))
    return problems


if __name__ == "__main__":
    harness.main()
