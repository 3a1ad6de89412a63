#!/usr/bin/env bash
# Runs units of Redis's own Tcl test suite (7.0.15, from Debian's source package) in external
# mode against a server this script starts, and sums up the results.
#
#   tests/compat/run_redis_tcl.sh --server-bin PATH [--server-kind weft|redis]
#       [--units "unit/type/string unit/expire ..."] [--build-dir DIR]
#       [--unit-timeout SEC] [--start-timeout SEC] [--skipfile FILE]
#
# For each unit: start a fresh server on a free loopback port, wait for PING with a deadline, run
#   ./runtest --host 127.0.0.1 --port N --singledb --clients 1 --durable --ignore-encoding
#             --timeout SEC --skipfile <skipfile.txt without comments> --single UNIT
# under `timeout`, stop the server, and count the suite's `[ok]`, `[err]`, `[exception]`, `[skip]`
# (skipfile) and `[ignore]` (tags such as external:skip) lines. Prints per-unit and total counts
# and ends with exactly one line `N passed, N failed`: passed = ok, failed = err + exception +
# units that did not run to their end (timeout, crash, suite error). Exits non-zero when anything
# failed or nothing passed. --skipfile /dev/null runs every test, to see what a new command
# would unlock. docs/design/compat.md explains the choices.
set -uo pipefail

readonly kDefaultUnits="unit/type/string unit/type/incr unit/expire unit/keyspace unit/protocol"
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/../.." && pwd)
readonly script_dir repo_dir

usage() {
  sed -n '5,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

server_bin=""
server_kind=""
units=$kDefaultUnits
build_dir=$repo_dir/build/redis-tcl
unit_timeout_s=280 # five units stay under the ctest TIMEOUT of 1500 s
start_timeout_s=20
skipfile=$script_dir/skipfile.txt
while [ $# -gt 0 ]; do
  case $1 in
    --server-bin) server_bin=${2:?}; shift 2 ;;
    --server-kind) server_kind=${2:?}; shift 2 ;;
    --units) units=${2:?}; shift 2 ;;
    --build-dir) build_dir=${2:?}; shift 2 ;;
    --unit-timeout) unit_timeout_s=${2:?}; shift 2 ;;
    --start-timeout) start_timeout_s=${2:?}; shift 2 ;;
    --skipfile) skipfile=${2:?}; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "run_redis_tcl: unknown argument '$1'" >&2; usage ;;
  esac
done

# Every early exit still ends with the line CI reads.
fail_setup() {
  echo "run_redis_tcl: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}

[ -n "$server_bin" ] || fail_setup "--server-bin is required"
[ -x "$server_bin" ] || fail_setup "server binary '$server_bin' is not executable"
if [ -z "$server_kind" ]; then
  case $(basename "$server_bin") in
    redis-server*) server_kind=redis ;;
    *) server_kind=weft ;;
  esac
fi
case $server_kind in weft | redis) ;; *) fail_setup "--server-kind must be weft or redis" ;; esac
command -v tclsh8.6 >/dev/null 2>&1 || command -v tclsh8.5 >/dev/null 2>&1 ||
  fail_setup "runtest needs tclsh 8.5 or 8.6 (Debian package tcl)"
[ -r "$skipfile" ] || fail_setup "cannot read skipfile '$skipfile'"

mkdir -p "$build_dir" || fail_setup "cannot create $build_dir"
build_dir=$(cd "$build_dir" && pwd)
source_dir=$("$script_dir/fetch_redis_tests.sh" "$build_dir" | tail -n1) ||
  fail_setup "fetching Redis's test suite failed"
[ -f "$source_dir/tests/test_helper.tcl" ] || fail_setup "no test suite in '$source_dir'"

run_dir=$build_dir/runs/$server_kind
rm -rf "$run_dir"
mkdir -p "$run_dir"

# runtest would take the skipfile's comment lines for test names, so it gets the names only.
effective_skipfile=$run_dir/skipfile.effective
grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$skipfile" |
  sed -e 's/[[:space:]]*$//' >"$effective_skipfile"

server_pid=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    local deadline=$((SECONDS + 10))
    while kill -0 "$server_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null
  fi
  wait "$server_pid" 2>/dev/null
  server_pid=""
}
trap stop_server EXIT
trap 'stop_server; echo "run_redis_tcl: interrupted" >&2; echo "0 passed, 1 failed"; exit 1' INT TERM

# True when something accepts connections on the loopback port $1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True when the server on port $1 answers PING with +PONG.
server_pongs() {
  local reply=""
  {
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 2 reply <&3
    exec 3>&-
  } 2>/dev/null
  [ "${reply%$'\r'}" = "+PONG" ]
}

# Starts the server on a free port below the kernel's ephemeral range (runtest's own test-server
# port sits near 21079, so 22000-31999 is used) and waits until it answers PING. A port taken
# between the probe and the bind makes the server exit, and another port is tried.
# Sets server_pid and server_port; returns non-zero when no server came up.
start_server() {
  local name=$1 attempt port data_dir log
  for attempt in 1 2 3 4 5; do
    port=$((22000 + RANDOM % 10000))
    port_in_use "$port" && continue
    data_dir=$run_dir/$name.data
    log=$run_dir/$name.server.log
    rm -rf "$data_dir"
    mkdir -p "$data_dir"
    if [ "$server_kind" = redis ]; then
      # Debian's Redis refuses DEBUG by default; runtest sends `DEBUG LOG "### Starting test"`
      # before every test (errors ignored), and with DEBUG allowed from loopback those markers
      # land in the server log. No RDB, no AOF, and any file a test makes stays in data_dir.
      (cd "$data_dir" && exec "$server_bin" --port "$port" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$data_dir" --daemonize no --enable-debug-command local) \
        >"$log" 2>&1 &
    else
      (cd "$data_dir" && exec "$server_bin" --port "$port" --bind 127.0.0.1) >"$log" 2>&1 &
    fi
    server_pid=$!
    local deadline=$((SECONDS + start_timeout_s))
    while [ $SECONDS -lt $deadline ]; do
      if server_pongs "$port"; then
        server_port=$port
        return 0
      fi
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "run_redis_tcl: server on port $port gave no PONG within ${start_timeout_s}s" >&2
      stop_server
      return 1
    fi
    wait "$server_pid" 2>/dev/null
    server_pid=""
    echo "run_redis_tcl: server exited at start on port $port (attempt $attempt):" >&2
    tail -n 5 "$log" >&2
  done
  return 1
}

# Counts lines of a runtest log that start with the status $2 ("ok", "err", ...).
count_status() { grep -c -E "^\[$2\]: " "$1"; }

total_ok=0 total_err=0 total_exception=0 total_skip=0 total_ignore=0 total_aborted=0
summary=()
for unit in $units; do
  name=${unit//\//_}
  log=$run_dir/$name.log
  : >"$log"
  echo "=== $unit ($server_kind: $server_bin)"
  aborted=0
  note=""
  if ! start_server "$name"; then
    aborted=1
    note="server did not start (log: $run_dir/$name.server.log)"
  else
    # TERM=dumb keeps runtest's output free of colour codes; --clients 1 runs the unit's tests
    # in order on one connection stack, as external mode needs.
    (cd "$source_dir" && TERM=dumb timeout --kill-after=10 "$unit_timeout_s" ./runtest \
      --host 127.0.0.1 --port "$server_port" --singledb --clients 1 --durable \
      --ignore-encoding --timeout 120 --skipfile "$effective_skipfile" --single "$unit") \
      2>&1 | tee "$log" | grep -E '^\[(ok|err|exception|skip|ignore)\]: |^\[TIMEOUT\]|^\*\*\* '
    runtest_status=${PIPESTATUS[0]}
    server_alive=1
    kill -0 "$server_pid" 2>/dev/null || server_alive=0
    stop_server
    if ! grep -q -E "^\[[0-9]+/[0-9]+ done\]: $unit " "$log"; then
      aborted=1
      if [ "$runtest_status" -eq 124 ] || [ "$runtest_status" -eq 137 ]; then
        note="timed out after ${unit_timeout_s}s"
      else
        note="did not finish (runtest exit $runtest_status)"
      fi
    elif [ "$runtest_status" -ne 0 ] && ! grep -q -E '^\[(err|exception)\]: ' "$log"; then
      aborted=1
      note="runtest exit $runtest_status with no failed test"
    fi
    if [ "$server_alive" -eq 0 ]; then
      aborted=1
      note="${note:+$note; }server died during the unit (log: $run_dir/$name.server.log)"
    fi
  fi
  ok=$(count_status "$log" ok)
  err=$(count_status "$log" err)
  exception=$(count_status "$log" exception)
  skip=$(count_status "$log" skip)
  ignore=$(count_status "$log" ignore)
  # An exception stops the unit, so it already counts as that unit's failure.
  [ "$exception" -gt 0 ] && aborted=0
  total_ok=$((total_ok + ok))
  total_err=$((total_err + err))
  total_exception=$((total_exception + exception))
  total_skip=$((total_skip + skip))
  total_ignore=$((total_ignore + ignore))
  total_aborted=$((total_aborted + aborted))
  line=$(printf '%-18s ok %3d  err %3d  exception %d  skip %3d  ignore %3d' \
    "$unit" "$ok" "$err" "$exception" "$skip" "$ignore")
  [ -n "$note" ] && line="$line  ($note)"
  summary+=("$line")
  echo "$line"
done

# A skipfile entry that skipped nothing is stale or misspelt; worth a look, not a failure.
if [ "$units" = "$kDefaultUnits" ] && [ -s "$effective_skipfile" ]; then
  skipped_names=$(sed -n -E 's/^\[skip\]: (.*)$/\1/p' "$run_dir"/*.log | sort -u)
  while IFS= read -r entry; do
    grep -qxF -- "$entry" <<<"$skipped_names" ||
      echo "run_redis_tcl: warning: skipfile entry matched no test: $entry" >&2
  done <"$effective_skipfile"
fi

echo
echo "Redis 7.0.15 Tcl suite, external mode, against $server_kind ($server_bin); logs in $run_dir"
printf '%s\n' "${summary[@]}"
printf '%-18s ok %3d  err %3d  exception %d  skip %3d  ignore %3d  units not finished %d\n' \
  total "$total_ok" "$total_err" "$total_exception" "$total_skip" "$total_ignore" "$total_aborted"
failed=$((total_err + total_exception + total_aborted))
echo "$total_ok passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$total_ok" -gt 0 ]
