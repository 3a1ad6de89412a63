#!/usr/bin/env bash
# `weft demo --provider`: the joiner copies from the member named, and a name that is not a
# member is refused before anything starts (exit 2, usage).
#   demo_provider_test.sh WEFT
set -uo pipefail
weft=$1
# Two names: a random provider would match both by chance one time in nine.
for provider in m2 m3; do
  out=$("$weft" demo --keys 2000 --rate 200 --before 0.3 --after 0.3 --provider $provider 2>&1)
  rc=$?
  if [ $rc -ne 0 ] || ! grep -q "provider $provider," <<<"$out" || ! grep -q '^demo: OK' <<<"$out"; then
    echo "--provider $provider: exit $rc, expected a join from $provider ending 'demo: OK':"
    echo "$out" | tail -20
    exit 1
  fi
done
out=$("$weft" demo --keys 2000 --provider m9 2>&1)
rc=$?
if [ $rc -ne 2 ] || ! grep -q 'no such member' <<<"$out"; then
  echo "--provider m9: exit $rc, expected 2 and 'no such member':"
  echo "$out" | tail -5
  exit 1
fi
echo "demo --provider: ok"
