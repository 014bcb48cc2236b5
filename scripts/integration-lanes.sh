#!/usr/bin/env bash
# The integration tests in their two lanes (vitest.config.ts), each lane a vitest process of its own, side by side:
# one vitest process runs its projects one after the other on this 2-core machine. Each line says its lane.
set -uo pipefail
cd "$(dirname "$0")/.."
rcs=$(mktemp -d)
trap 'rm -rf "$rcs"' EXIT
for lane in a b; do
  ( (npx vitest run --project "integration-$lane" 2>&1; echo $? > "$rcs/$lane") | sed -u "s/^/[$lane] /" ) &
done
wait
status=0
for lane in a b; do
  rc=$(cat "$rcs/$lane" 2>/dev/null || echo 1)
  echo "integration-$lane: exit $rc"
  [ "$rc" = 0 ] || status=1
done
exit $status
