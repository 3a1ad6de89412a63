#!/usr/bin/env bash
# Baseline for bench/join.sh: the same join under write load with Redis 7 (Debian's
# redis-server). A master and two replicas hold the preloaded keys; `weft load` writes at a
# fixed open-loop rate to the master (Redis replicas take no writes); after --before seconds a
# third replica is started (REPLICAOF: fork, RDB transfer, load) and the time until it reports
# a finished sync is taken. The load's "during" phase runs from the join to the end of the load,
# so it covers the sync and what follows.
#
# Usage: bench/join_redis.sh [weft binary] [--keys N] [--rate R] [--before S] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
weft="${1:-build/release/bin/weft}"
shift || true
keys=3000000 rate=10000 before=5 seconds=60
while [ $# -gt 0 ]; do
  case "$1" in
    --keys) keys=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --before) before=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
work=$(mktemp -d /tmp/weft-redis-join.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_redis() {  # port [replicaof-port]
  local dir="$work/$1"
  mkdir -p "$dir"
  local args=(--port "$1" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir"
              --enable-debug-command yes --repl-diskless-sync no --logfile "$dir/log")
  [ $# -ge 2 ] && args+=(--replicaof 127.0.0.1 "$2")
  redis-server "${args[@]}" &
  pids+=($!)
  for _ in $(seq 1 100); do
    redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "redis-server on $1 did not start" >&2
  exit 1
}

synced() {  # port: the replica finished its sync
  local info
  info=$(redis-cli -p "$1" info replication 2>/dev/null | tr -d '\r')
  grep -q '^master_link_status:up' <<<"$info" && grep -q '^master_sync_in_progress:0' <<<"$info"
}

echo "$(redis-server --version | cut -d' ' -f1-3); machine: $(nproc) cores, $(date -u +%Y-%m-%d)"
master=$(free_port)
start_redis "$master"
redis-cli -p "$master" debug populate "$keys" key 100 >/dev/null
for _ in 1 2; do
  port=$(free_port)
  start_redis "$port" "$master"
  until synced "$port"; do sleep 0.2; done
done
echo "master + 2 replicas hold $(redis-cli -p "$master" dbsize) keys x 100 B"

# 24 connections, as many as weft demo's writers (8 per member on 3 members).
"$weft" load -m "127.0.0.1:$master" --rate "$rate" --connections 24 --seconds "$seconds" \
  --keys 100000 --first-phase before --phase "during@$before" >"$work/load.txt" 2>&1 &
load=$!
sleep "$before"
full_before=$(redis-cli -p "$master" info stats | tr -d '\r' | awk -F: '/^sync_full/ {print $2}')
joiner=$(free_port)
started=$(date +%s.%N)
start_redis "$joiner" "$master"
# The sync may outlast the load (Redis needed > 55 s for 10 M keys here): keep timing it, up to
# ten minutes, after the writers stop.
deadline=$(( $(date +%s) + seconds + 600 ))
until synced "$joiner"; do
  if [ "$(date +%s)" -gt "$deadline" ]; then
    echo "join: the replica had not finished its sync $((seconds + 600)) s after REPLICAOF"
    break
  fi
  sleep 0.05
done
finished=$(date +%s.%N)
synced "$joiner" && echo "join: $(/usr/bin/python3 -c "print(f'{$finished - $started:.2f}')") s" \
  "(REPLICAOF to master_sync_in_progress:0), $(redis-cli -p "$joiner" dbsize) keys," \
  "full syncs for it: $(( $(redis-cli -p "$master" info stats | tr -d '\r' | awk -F: '/^sync_full/ {print $2}') - full_before ))"
wait "$load" || true
cat "$work/load.txt"
