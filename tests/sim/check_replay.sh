#!/usr/bin/env bash
# The same seed twice must give the same trace hash: a run is a function of its seed.
#   check_replay.sh WEFT_SIM
set -uo pipefail
sim=$1
status=0
for seed in 1 12345 987654321; do
  first=$("$sim" --seed "$seed" | grep '^trace ')
  second=$("$sim" --seed "$seed" | grep '^trace ')
  if [ -z "$first" ] || [ "$first" != "$second" ]; then
    echo "seed $seed: '$first' then '$second'"
    status=1
  else
    echo "seed $seed: $first twice"
  fi
done
exit $status
