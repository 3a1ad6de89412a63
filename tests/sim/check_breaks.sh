#!/usr/bin/env bash
# The checkers can fail: for each deliberate break in BREAKS_FILE, its scenario (or the first
# seed of its range; `membership-seeds` plans include membership faults) must fail with the
# break and pass without it. Prints the seed and the
# oracle that caught each.
#   check_breaks.sh WEFT_SIM BREAKS_FILE
set -uo pipefail
sim=$1 file=$2
status=0
oracle_of() {
  grep -m1 -E '^  (events|read|durability|bounds|liveness|complete|convergence|counters|repair|pre-image|image|single writer|cut|scenario):' |
    sed -E 's/^ +//' | cut -c1-150
}
while read -r name kind what _; do
  case "$name" in ''|'#'*) continue ;; esac
  faults=()
  if [ "$kind" = membership-seeds ]; then
    faults=(--membership-faults)  # plans that also lose leases, stall members, take etcd away
    kind=seeds
  fi
  if [ "$kind" = seeds ]; then
    batch=$("$sim" --seeds "$what" "${faults[@]}" --jobs "$(nproc)" --break "$name" --until-failure 2>&1)
    seed=$(echo "$batch" | grep -m1 '^FAILED seed' | sed -E 's/FAILED seed ([0-9]+).*/\1/')
    if [ -z "$seed" ]; then
      echo "break $name: NOT caught by any seed in $what"
      status=1
      continue
    fi
    target=(--seed "$seed" "${faults[@]}")
    label="seed $seed${faults[*]:+ (membership faults)}"
  else
    target=(--scenario "$what")
    label="scenario $what"
  fi
  broken=$("$sim" "${target[@]}" --break "$name" 2>&1)
  broken_status=$?
  "$sim" "${target[@]}" >/dev/null 2>&1
  clean_status=$?
  if [ $broken_status -ne 0 ] && [ $clean_status -eq 0 ]; then
    echo "break $name: caught by $label: $(echo "$broken" | oracle_of)"
  else
    echo "break $name: $label exits $broken_status with the break, $clean_status without"
    status=1
  fi
done < "$file"
exit $status
