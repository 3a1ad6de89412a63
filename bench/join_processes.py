#!/usr/bin/python3
"""Join benchmark across processes (DESIGN.md §11): etcd + 3 weftd members + a joiner, each its
own process, so that the provider's memory growth during the join can be read from its
/proc/PID/status. Preloads with redis-benchmark (pipelined SETs over a random key space), runs
a bounded background write load (redis-benchmark, SET, 1 client per member), starts a fourth
member and samples the provider's RSS every 20 ms until the joiner is ACTIVE.

Usage: bench/join_processes.py --weftd build/release/bin/weftd [--keys 1000000]
Prints one line per measure; docs/benchmarks.md records the runs.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import harness  # noqa: E402
from cluster_harness import Etcd, Member, wait_active, wait_quiet, write_secret  # noqa: E402


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weftd", required=True)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--value-size", type=int, default=100)
    args = parser.parse_args()
    harness.Options.binary = os.path.abspath(args.weftd)
    harness.Options.kind = "weft"

    etcd = Etcd().start()
    work = tempfile.mkdtemp(prefix="weft-bench-")
    secret = write_secret(work)
    members = []
    load = []
    try:
        for i in range(3):
            m = Member("m%d" % (i + 1), etcd, secret, "bench",
                       []).start()
            wait_active(m)
            members.append(m)
        m1 = members[0]
        started = time.monotonic()
        subprocess.run(["redis-benchmark", "-p", str(m1.port), "-t", "set", "-n",
                        str(args.keys * 2), "-r", str(args.keys), "-d", str(args.value_size),
                        "-P", "64", "-c", "4", "-q"], check=True, stdout=subprocess.DEVNULL)
        keys = m1.client().dbsize()
        print("preload: %d keys x %d B in %.1f s" % (keys, args.value_size,
                                                     time.monotonic() - started))
        wait_quiet(members, timeout_s=300)
        provider = members[1]
        for m in members:
            load.append(subprocess.Popen(
                ["redis-benchmark", "-p", str(m.port), "-t", "set", "-n", "400000",
                 "-r", "100000", "-d", str(args.value_size), "-c", "1", "-q"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)
        base = rss(provider.process.pid)
        peak = base
        joiner = Member("m4", etcd, secret, "bench",
                        ["--provider",
                         provider.name]).start()
        joined_at = time.monotonic()
        while True:
            peak = max(peak, rss(provider.process.pid))
            region = joiner.region()
            if region.get("state") == "ACTIVE" and region.get("phase") == "none":
                break
            if time.monotonic() - joined_at > 600:
                raise SystemExit("the join did not finish in 600 s")
            time.sleep(0.02)
        region = joiner.region()
        print("join: %s ms (registry to ACTIVE and flushed), %s entries, %.1f MB, image rate "
              "%.1f MB/s, attempts %s, post-image changes %s" %
              (region["join_ms"], region["entries"], int(region["bytes"]) / 1e6,
               int(region["rate_bps"]) / 1e6, region["join_attempts"],
               region.get("postimage_changes", "?")))
        print("provider RSS: %.1f MB before, %.1f MB peak during the join: +%.1f MB" %
              (base / 1e6, peak / 1e6, (peak - base) / 1e6))
        for p in load:
            p.terminate()
            p.wait()
        load = []
        members.append(joiner)
        wait_quiet(members, timeout_s=120)
        digests = {m.name: m.digest() for m in members}
        print("digests: %s -> %s" % (digests, "equal" if len(set(digests.values())) == 1
                                      else "DIFFERENT"))
    finally:
        for p in load:
            p.kill()
        for m in members:
            m.cleanup()
        etcd.cleanup()


if __name__ == "__main__":
    main()
