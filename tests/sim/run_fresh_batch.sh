#!/usr/bin/env bash
# Runs COUNT fresh simulator seeds derived from the commit under test, so every commit tries
# different ones and a rerun of the same commit tries the same ones.
#   run_fresh_batch.sh WEFT_SIM SOURCE_DIR COUNT [WEFT_SIM_OPTION...]
set -euo pipefail
sim=$1 source=$2 count=$3
shift 3
if commit=$(git -C "$source" rev-parse HEAD 2>/dev/null); then
  base=$(( 16#${commit:0:7} % 1000000000 ))
  echo "fresh seeds from commit ${commit:0:12}: ${base}..$((base + count - 1))"
else
  base=$(( $(date +%s) % 1000000000 ))
  echo "no git checkout: fresh seeds from the clock: ${base}..$((base + count - 1))"
fi
exec "$sim" --seeds "${base}..$((base + count - 1))" "$@" --jobs "$(nproc)" --timeout 300
