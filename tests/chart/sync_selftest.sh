#!/usr/bin/env bash
# Proves that `scripts/sync-chart-files.sh --check` catches drift: on a
# scratch tree it must fail for a missing, a differing and an extra chart
# copy, and pass once the script has synced the tree; a new rules file or
# dashboard in dashboards/ is picked up with no list to edit.
set -euo pipefail
sync=$(cd "$(dirname "$0")/../.." && pwd)/scripts/sync-chart-files.sh
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/dashboards" "$tree/helm/sockdiag-exporter/files/dashboards" "$tree/helm/sockdiag-exporter/files/rules"
files=$tree/helm/sockdiag-exporter/files

expect_check() {  # expect_check pass|fail WHAT
  local out rc=0
  out=$("$sync" --check "$tree" 2>&1) || rc=$?
  if [ "$1" = pass ] && [ $rc -ne 0 ]; then echo "FAIL: $2: --check failed:"; echo "$out"; exit 1; fi
  if [ "$1" = fail ] && [ $rc -eq 0 ]; then echo "FAIL: $2: --check passed:"; echo "$out"; exit 1; fi
  if [ "$1" = pass ]; then echo "ok: $2: --check passes"; else echo "ok: $2: --check fails"; fi
}

expect_check pass "empty dashboards/ and no chart copies"
printf 'groups: []\n' >"$tree/dashboards/alerts.yaml"
printf '{"title": "a"}\n' >"$tree/dashboards/overview.json"
expect_check fail "sources without chart copies"
"$sync" "$tree" >/dev/null
expect_check pass "after sync"
if [ ! -f "$files/rules/alerts.yaml" ] || [ ! -f "$files/dashboards/overview.json" ]; then
  echo "FAIL: sync copied nothing"; exit 1
fi
printf '{"title": "b"}\n' >"$tree/dashboards/overview.json"
expect_check fail "a changed dashboard"
"$sync" "$tree" >/dev/null
printf 'groups: [] # edited in the chart\n' >"$files/rules/alerts.yaml"
expect_check fail "a chart copy edited by hand"
"$sync" "$tree" >/dev/null
printf '{}\n' >"$files/dashboards/stale.json"
expect_check fail "a chart copy whose source is gone"
"$sync" "$tree" >/dev/null
[ ! -e "$files/dashboards/stale.json" ] || { echo "FAIL: sync kept a stale copy"; exit 1; }
rm "$tree/dashboards/alerts.yaml"
expect_check fail "alerts.yaml removed from dashboards/"
"$sync" "$tree" >/dev/null
expect_check pass "after the removal synced"
printf 'groups: []\n' >"$tree/dashboards/recording-rules.yaml"
printf '{"title": "f"}\n' >"$tree/dashboards/fleet.json"
expect_check fail "a new rules file and a new dashboard"
"$sync" "$tree" >/dev/null
if [ ! -f "$files/rules/recording-rules.yaml" ] || [ ! -f "$files/dashboards/fleet.json" ]; then
  echo "FAIL: sync did not copy the new files"; exit 1
fi
expect_check pass "after the final sync"
