#!/usr/bin/env bash
# Keeps the Helm chart's copies of the rules and dashboards identical to their
# single source in dashboards/, whatever files are added there:
#   dashboards/*.yaml  (Prometheus rules files: alerts, recording rules)
#                      ->  helm/sockdiag-exporter/files/rules/*.yaml
#   dashboards/*.json  ->  helm/sockdiag-exporter/files/dashboards/*.json
# (Helm's .Files can only read inside the chart, and a packaged chart must
# carry real files, hence copies rather than symlinks.)
#
# Usage: sync-chart-files.sh [--check] [ROOT]
#   without --check: copies, and deletes chart copies whose source is gone;
#   --check: changes nothing, lists every difference, exits 1 if any.
# ROOT is the repository root (default: this script's parent directory).
set -euo pipefail

check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
src=$root/dashboards
dst=$root/helm/sockdiag-exporter/files

# Pairs "source|copy" for every file that exists on either side.
pairs() {
  local f
  for f in "$src"/*.yaml "$dst"/rules/*.yaml; do
    [ -e "$f" ] && echo "$src/$(basename "$f")|$dst/rules/$(basename "$f")"
  done
  for f in "$src"/*.json "$dst"/dashboards/*.json; do
    [ -e "$f" ] && echo "$src/$(basename "$f")|$dst/dashboards/$(basename "$f")"
  done
  return 0
}

differences=0
compared=0
while IFS='|' read -r from to; do
  [ -n "$from" ] || continue
  compared=$((compared + 1))
  rel_from=${from#"$root"/}
  rel_to=${to#"$root"/}
  if [ ! -e "$from" ]; then
    if [ $check = 1 ]; then
      echo "extra: $rel_to has no source $rel_from"; differences=$((differences + 1))
    else
      rm -f "$to"; echo "removed $rel_to"
    fi
  elif [ ! -e "$to" ] || ! cmp -s "$from" "$to"; then
    if [ $check = 1 ]; then
      if [ -e "$to" ]; then echo "differs: $rel_to from $rel_from"; else echo "missing: $rel_to (copy of $rel_from)"; fi
      differences=$((differences + 1))
    else
      mkdir -p "$(dirname "$to")"; cp "$from" "$to"; echo "copied $rel_from -> $rel_to"
    fi
  fi
done < <(pairs | sort -u)

if [ $check = 1 ]; then
  if [ $differences -gt 0 ]; then
    echo "chart copies drifted from dashboards/ ($differences file(s)): run scripts/sync-chart-files.sh"
    exit 1
  fi
  echo "chart copies match dashboards/: $compared file(s) compared"
fi
