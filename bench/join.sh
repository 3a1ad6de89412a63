#!/usr/bin/env bash
# The join under load (DESIGN.md §11), with loopback TCP measured by iperf3 in the same run as
# the reference for the image rate.
#
# Then, in the same run, the Redis 7 baseline with the same keys, rate and --before
# (bench/join_redis.sh), unless NO_REDIS=1.
#
# Usage: bench/join.sh [weft binary] [weft demo options...]
#   e.g. bench/join.sh build/release/bin/weft --keys 3000000 --rate 10000 --before 5 --after 5
set -euo pipefail
cd "$(dirname "$0")/.."
weft="${1:-build/release/bin/weft}"
shift || true

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
server=$!
sleep 0.5
bps=$(iperf3 -c 127.0.0.1 -p "$port" -t 5 -J | /usr/bin/python3 -c \
  'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))')
wait "$server" 2>/dev/null || true
echo "iperf3 loopback: $((bps / 8 / 1000000)) MB/s"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(date -u +%Y-%m-%d)"
echo "=== weft demo $*"
"$weft" demo "$@"

if [ "${NO_REDIS:-0}" != 1 ]; then
  redis_args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --keys|--rate|--before) redis_args+=("$1" "$2"); shift 2 ;;
      *) shift ;;
    esac
  done
  echo "=== Redis baseline ${redis_args[*]}"
  bench/join_redis.sh "$weft" "${redis_args[@]}"
fi
