#!/usr/bin/env bash
# Paired before/after runs of the join under load (bench/join.sh, no Redis baseline): N pairs,
# each the AFTER binary then the BEFORE one, so that both see the same drift of a shared
# machine. Prints each run's join line and its writers' "during" row; logs go to LOG_DIR.
#
# Usage: bench/join_pairs.sh AFTER_WEFT BEFORE_WEFT N [weft demo options...]
#   e.g. bench/join_pairs.sh build/release/bin/weft /work/baseline/build/release/bin/weft 4 \
#          --keys 3000000 --rate 10000 --before 5 --after 5
set -euo pipefail
cd "$(dirname "$0")/.."
after=$1 before=$2 pairs=$3
shift 3
log_dir=${LOG_DIR:-$(mktemp -d)}
echo "logs in $log_dir"
for i in $(seq 1 "$pairs"); do
  for side in after before; do
    weft=$after
    [ "$side" = before ] && weft=$before
    log="$log_dir/$side-$i.log"
    NO_REDIS=1 bench/join.sh "$weft" "$@" >"$log" 2>&1 || { echo "$side $i: FAILED (see $log)"; continue; }
    grep -q 'demo: OK' "$log" || echo "$side $i: the demo did not end OK (see $log)"
    echo "$side $i: $(grep -m1 '^join:' "$log")"
    echo "$side $i: $(grep -m1 '^phase' "$log")"
    echo "$side $i: $(grep -m1 '^during' "$log")"
  done
done
