#!/usr/bin/env bash
# Single-member RESP throughput and memory per key, weftd against Redis 7.0.15, same machine,
# same run (DESIGN.md §11). docs/benchmarks.md explains the method and records results.
#
#   bench/resp_throughput.sh [WEFTD] [--weft-kind weft|redis] [--redis-bin PATH]
#       [--rounds N] [--requests-p1 N] [--requests-p16 N] [--mset-divisor N] [--keys N]
#       [--weft-args "ARGS"] [--skip-throughput] [--skip-memory]
#
# WEFTD defaults to build/release/bin/weftd. --weft-kind redis starts WEFTD as a redis-server
# (to check this script's plumbing with redis-server against itself).
#
# Throughput: `redis-benchmark -h 127.0.0.1 -p PORT -c 50 -n N -t TEST -P P -r 1000000 --csv`
# for TEST in set, get, incr, mset and P in 1, 16; N is --requests-p1 (200,000) or
# --requests-p16 (1,000,000), divided by --mset-divisor (10) for MSET, whose every request
# writes 10 keys. Both servers run during the whole throughput phase; for each round, test and
# pipeline depth the two servers run back to back, the first one alternating between rounds
# (A/B, then B/A, ...), so machine drift hits both alike. Each cell of the table is the median
# over --rounds (3) rounds.
#
# Memory per key: a fresh server of each kind, then exactly --keys (1,000,000) distinct keys
# `key:%08d` with 100-byte values, sent by `redis-cli --pipe` from the same generated RESP
# stream; used_memory (INFO memory) and VmRSS (/proc/PID/status) before and after give bytes per
# key.
#
# The Markdown report goes to stdout, progress to stderr. Every step runs under `timeout`; the
# servers are stopped on every exit (SIGTERM, then SIGKILL after 10 s).
set -uo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
readonly script_dir repo_dir
readonly kPython=/usr/bin/python3
readonly kStartTimeoutS=20
readonly kStopTimeoutS=10
readonly kBenchTimeoutS=300
readonly kLoadTimeoutS=300
readonly kValueBytes=100

usage() {
  sed -n '5,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

weft_bin=$repo_dir/build/release/bin/weftd
weft_kind=weft
redis_bin=/usr/bin/redis-server
rounds=3
requests_p1=200000
requests_p16=1000000
mset_divisor=10
keys=1000000
weft_args=""
do_throughput=1
do_memory=1
while [ $# -gt 0 ]; do
  case $1 in
    --weft-kind) weft_kind=${2:?}; shift 2 ;;
    --redis-bin) redis_bin=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --requests-p1) requests_p1=${2:?}; shift 2 ;;
    --requests-p16) requests_p16=${2:?}; shift 2 ;;
    --mset-divisor) mset_divisor=${2:?}; shift 2 ;;
    --keys) keys=${2:?}; shift 2 ;;
    --weft-args) weft_args=${2?}; shift 2 ;;
    --skip-throughput) do_throughput=0; shift ;;
    --skip-memory) do_memory=0; shift ;;
    -h | --help) usage 0 ;;
    -*) echo "resp_throughput: unknown option '$1'" >&2; usage ;;
    *) weft_bin=$1; shift ;;
  esac
done

die() {
  echo "resp_throughput: $*" >&2
  exit 1
}
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

case $weft_kind in weft | redis) ;; *) die "--weft-kind must be weft or redis" ;; esac
for n in "$rounds" "$requests_p1" "$requests_p16" "$mset_divisor" "$keys"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "'$n' is not a positive integer"
done
[ -x "$weft_bin" ] || die "weftd '$weft_bin' is not executable (build it: scripts/build release)"
[ -x "$redis_bin" ] || die "redis-server '$redis_bin' is not executable"
for tool in redis-benchmark redis-cli timeout awk "$kPython"; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is missing (scripts/setup installs it)"
done

work_dir=$(mktemp -d /tmp/weft-bench.XXXXXX) || die "mktemp failed"
readonly work_dir

# Servers by name (weft, redis): pid and port.
declare -A server_pid=() server_port=()

free_port() {
  "$kPython" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# start_server NAME KIND BINARY: starts it on a free loopback port and waits for PING.
start_server() {
  local name=$1 kind=$2 binary=$3 attempt port pid deadline
  local dir=$work_dir/$name
  mkdir -p "$dir"
  for attempt in 1 2 3; do
    port=$(free_port) || die "no free port"
    if [ "$kind" = redis ]; then
      "$binary" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        --dir "$dir" --logfile "" >>"$dir/server.log" 2>&1 &
    else
      # shellcheck disable=SC2086 # --weft-args is a list of flags, split on purpose
      "$binary" --port "$port" --bind 127.0.0.1 $weft_args >>"$dir/server.log" 2>&1 &
    fi
    pid=$!
    server_pid[$name]=$pid
    server_port[$name]=$port
    deadline=$((SECONDS + kStartTimeoutS))
    while [ $SECONDS -lt $deadline ] && kill -0 "$pid" 2>/dev/null; do
      if [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null)" = PONG ]; then
        log "$name ($kind, $binary) pid $pid on port $port"
        return 0
      fi
      sleep 0.1 # polling period of the readiness check
    done
    if kill -0 "$pid" 2>/dev/null; then
      stop_server "$name"
      die "$name did not answer PING within ${kStartTimeoutS}s; log: $(tail -5 "$dir/server.log")"
    fi
    wait "$pid" 2>/dev/null
    unset "server_pid[$name]"
    log "$name exited at start (attempt $attempt; port $port taken?)"
  done
  die "$name would not start; log: $(tail -5 "$dir/server.log")"
}

stop_server() {
  local name=$1 pid deadline
  pid=${server_pid[$name]:-}
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    deadline=$((SECONDS + kStopTimeoutS))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) ignored SIGTERM for ${kStopTimeoutS}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null
    fi
  fi
  wait "$pid" 2>/dev/null
  unset "server_pid[$name]"
}

cleanup() {
  local name
  for name in "${!server_pid[@]}"; do stop_server "$name"; done
  rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kind_of() { if [ "$1" = weft ]; then echo "$weft_kind"; else echo redis; fi; }
binary_of() { if [ "$1" = weft ]; then echo "$weft_bin"; else echo "$redis_bin"; fi; }

# bench_once NAME TEST PIPELINE REQUESTS: prints requests per second, or "nan" on failure.
bench_once() {
  local name=$1 test=$2 pipeline=$3 requests=$4 out rps
  if ! kill -0 "${server_pid[$name]}" 2>/dev/null; then
    log "$name is not running"
    echo nan
    return
  fi
  out=$(timeout "$kBenchTimeoutS" redis-benchmark -h 127.0.0.1 -p "${server_port[$name]}" \
    -c 50 -n "$requests" -t "$test" -P "$pipeline" -r 1000000 --csv 2>"$work_dir/bench.err")
  rps=$(awk -F'"' 'NR == 2 { print $4 }' <<<"$out")
  if [[ ! $rps =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
    log "redis-benchmark -t $test -P $pipeline against $name failed: $(tail -3 "$work_dir/bench.err") $out"
    echo nan
    return
  fi
  echo "$rps"
}

# median VALUES...: the median of numbers ("nan" when any is nan).
median() {
  printf '%s\n' "$@" | sort -g | awk '
    /nan/ { bad = 1 } { v[NR] = $1 }
    END {
      if (bad || NR == 0) { print "nan"; exit }
      if (NR % 2) printf "%.0f\n", v[(NR + 1) / 2]
      else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == "nan" || b == "nan" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

# info_field NAME SECTION FIELD
info_field() {
  timeout 10 redis-cli -h 127.0.0.1 -p "${server_port[$1]}" INFO "$2" |
    tr -d '\r' | awk -F: -v f="$3" '$1 == f { print $2 }'
}

rss_bytes() {
  awk '$1 == "VmRSS:" { print $2 * 1024 }' "/proc/${server_pid[$1]}/status"
}

machine_report() {
  local cpu
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  echo "## RESP throughput and memory per key: weftd vs Redis"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) CPUs ($cpu), kernel $(uname -r), $(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo) RAM, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
  echo "- weft: \`$weft_bin\` (kind $weft_kind)$([ -n "$weft_args" ] && echo ", args \`$weft_args\`"), repository $(git -C "$repo_dir" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- redis: \`$redis_bin\` ($("$redis_bin" --version | awk '{ print $3 }'))"
  echo "- client: $(redis-benchmark --version 2>/dev/null | head -1 || echo redis-benchmark)"
  if [ "$weft_kind" = redis ]; then
    echo
    echo "**Plumbing check: the \"weft\" column is a redis-server, not weftd.**"
  fi
  busy_warning
  echo
}

# Prints a warning when the machine is busy: other work moves the numbers far more than any
# difference between the servers (a redis-vs-redis run at load 5 on 2 CPUs spread 0.6-1.8x).
busy_warning() {
  local busy
  busy=$(awk -v cpus="$(nproc)" '{ print ($1 > 0.25 * cpus) ? "yes" : "no" }' /proc/loadavg)
  if [ "$busy" = yes ]; then
    echo
    echo "**Warning: load average $(cut -d' ' -f1 /proc/loadavg) on $(nproc) CPUs: the machine is busy and these numbers are mostly noise. Record results on an idle machine.**"
  fi
}

throughput_report() {
  local tests=(set get incr mset) pipelines=(1 16)
  local round test pipeline requests first second name rps
  declare -A samples=()
  local started=$SECONDS
  start_server weft "$weft_kind" "$weft_bin"
  start_server redis redis "$redis_bin"
  for ((round = 1; round <= rounds; round++)); do
    if ((round % 2)); then first=weft second=redis; else first=redis second=weft; fi
    for pipeline in "${pipelines[@]}"; do
      for test in "${tests[@]}"; do
        if [ "$pipeline" = 1 ]; then requests=$requests_p1; else requests=$requests_p16; fi
        [ "$test" = mset ] && requests=$((requests / mset_divisor))
        for name in "$first" "$second"; do
          rps=$(bench_once "$name" "$test" "$pipeline" "$requests")
          samples[$name,$test,$pipeline]+="$rps "
          log "round $round/$rounds $test -P $pipeline -n $requests: $name $rps ops/s"
        done
      done
    done
  done
  stop_server weft
  stop_server redis

  echo "### Throughput (redis-benchmark, 50 clients, -r 1000000, median of $rounds rounds)"
  echo
  echo "| test | pipeline | requests | weft ops/s | redis ops/s | weft/redis |"
  echo "|---|---|---|---|---|---|"
  local weft_median redis_median
  for pipeline in "${pipelines[@]}"; do
    for test in "${tests[@]}"; do
      if [ "$pipeline" = 1 ]; then requests=$requests_p1; else requests=$requests_p16; fi
      [ "$test" = mset ] && requests=$((requests / mset_divisor))
      # shellcheck disable=SC2086 # the samples are a space-separated list
      weft_median=$(median ${samples[weft,$test,$pipeline]})
      # shellcheck disable=SC2086
      redis_median=$(median ${samples[redis,$test,$pipeline]})
      echo "| ${test^^}$([ "$test" = mset ] && echo " (10 keys)") | $pipeline | $requests | $weft_median | $redis_median | $(ratio "$weft_median" "$redis_median") |"
    done
  done
  echo
  echo "Every round (ops/s, in run order):"
  echo
  echo '```'
  for pipeline in "${pipelines[@]}"; do
    for test in "${tests[@]}"; do
      printf '%-5s -P %-2s weft: %s| redis: %s\n' "$test" "$pipeline" \
        "${samples[weft,$test,$pipeline]}" "${samples[redis,$test,$pipeline]}"
    done
  done
  echo '```'
  echo
  echo "Throughput phase took $((SECONDS - started)) s."
  echo
}

# load_keys NAME: SET of exactly $keys distinct keys with 100-byte values through redis-cli --pipe.
load_keys() {
  local name=$1 out
  out=$(awk -v n="$keys" -v bytes="$kValueBytes" 'BEGIN {
      pad = sprintf("%*s", bytes - 10, ""); gsub(/ /, "v", pad)
      for (i = 0; i < n; i++) {
        k = sprintf("key:%08d", i); v = sprintf("%010d%s", i, pad)
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
      }
    }' | timeout "$kLoadTimeoutS" redis-cli -h 127.0.0.1 -p "${server_port[$name]}" --pipe 2>&1)
  if ! grep -q "errors: 0, replies: $keys\$" <<<"$out"; then
    log "loading $keys keys into $name failed: $out"
    return 1
  fi
}

memory_report() {
  local name before_used before_rss after_used after_rss dbsize
  declare -A used_per_key=() rss_per_key=() used_mb=() rss_mb=()
  for name in weft redis; do
    start_server "$name" "$(kind_of "$name")" "$(binary_of "$name")"
    before_used=$(info_field "$name" memory used_memory)
    before_rss=$(rss_bytes "$name")
    log "loading $keys keys of $kValueBytes bytes into $name"
    if load_keys "$name"; then
      dbsize=$(timeout 10 redis-cli -h 127.0.0.1 -p "${server_port[$name]}" DBSIZE)
      after_used=$(info_field "$name" memory used_memory)
      after_rss=$(rss_bytes "$name")
      if [ "$dbsize" = "$keys" ] && [[ $before_used =~ ^[0-9]+$ && $after_used =~ ^[0-9]+$ ]]; then
        used_per_key[$name]=$(awk -v a="$after_used" -v b="$before_used" -v n="$keys" \
          'BEGIN { printf "%.1f", (a - b) / n }')
        used_mb[$name]=$(awk -v a="$before_used" -v b="$after_used" \
          'BEGIN { printf "%.1f -> %.1f", a / 1048576, b / 1048576 }')
      else
        log "$name: DBSIZE $dbsize, used_memory '$before_used' -> '$after_used'"
      fi
      rss_per_key[$name]=$(awk -v a="$after_rss" -v b="$before_rss" -v n="$keys" \
        'BEGIN { printf "%.1f", (a - b) / n }')
      rss_mb[$name]=$(awk -v a="$before_rss" -v b="$after_rss" \
        'BEGIN { printf "%.1f -> %.1f", a / 1048576, b / 1048576 }')
    fi
    stop_server "$name"
  done
  echo "### Memory per key ($keys keys \`key:%08d\`, $kValueBytes-byte values, redis-cli --pipe)"
  echo
  echo "| measure | weft bytes/key | redis bytes/key | weft/redis | weft MB | redis MB |"
  echo "|---|---|---|---|---|---|"
  echo "| used_memory growth | ${used_per_key[weft]:-nan} | ${used_per_key[redis]:-nan} | $(ratio "${used_per_key[weft]:-nan}" "${used_per_key[redis]:-nan}") | ${used_mb[weft]:-n/a} | ${used_mb[redis]:-n/a} |"
  echo "| RSS growth | ${rss_per_key[weft]:-nan} | ${rss_per_key[redis]:-nan} | $(ratio "${rss_per_key[weft]:-nan}" "${rss_per_key[redis]:-nan}") | ${rss_mb[weft]:-n/a} | ${rss_mb[redis]:-n/a} |"
  echo
}

main() {
  local started=$SECONDS
  machine_report
  [ "$do_throughput" = 1 ] && throughput_report
  [ "$do_memory" = 1 ] && memory_report
  echo "Total run time: $((SECONDS - started)) s; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
}

main
