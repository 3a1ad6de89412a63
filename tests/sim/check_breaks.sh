#!/usr/bin/env bash
# The checkers can fail: each deliberate break in BREAKS_FILE must make its seed (or scenario)
# fail, and the same seed must pass without the break. Prints the oracle that caught each.
#   check_breaks.sh WEFT_SIM BREAKS_FILE
set -uo pipefail
sim=$1 file=$2
status=0
while read -r name kind what _; do
  case "$name" in ''|'#'*) continue ;; esac
  if [ "$kind" = seed ]; then target=(--seed "$what"); else target=(--scenario "$what"); fi
  broken=$("$sim" "${target[@]}" --break "$name" 2>&1)
  broken_status=$?
  clean=$("$sim" "${target[@]}" 2>&1)
  clean_status=$?
  oracle=$(echo "$broken" | grep -m1 -E '^  (events|read|durability|bounds|liveness|complete|convergence|counters|repair|pre-image|image|single writer|cut|scenario):' | sed -E 's/^ +//' | cut -c1-150)
  if [ $broken_status -ne 0 ] && [ $clean_status -eq 0 ]; then
    echo "break $name: caught by $kind $what: $oracle"
  else
    echo "break $name: $kind $what exits $broken_status with the break, $clean_status without"
    status=1
  fi
done < "$file"
exit $status
