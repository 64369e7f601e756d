#!/usr/bin/env bash
# run_fuzzer.sh BUILD_DIR TARGET SECONDS
# Replays the committed corpus (regressions must not crash), then fuzzes for
# SECONDS in a scratch copy of it. Fails on any crash, leak or timeout.
set -euo pipefail
build=$1 target=$2 seconds=$3
here=$(cd "$(dirname "$0")" && pwd)
bin=$build/tests/fuzz/$target
[ -x "$bin" ] || { echo "$bin missing: build the fuzz preset (make fuzz-build)"; exit 1; }
corpus=$here/corpus/${target#fuzz_}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$corpus"/. "$work"/ 2>/dev/null || true
"$bin" -runs=0 "$corpus" >/dev/null 2>&1 || { echo "corpus replay crashed"; "$bin" -runs=0 "$corpus"; exit 1; }
# The fuzzer's own exit status is not trusted alone: artifacts decide.
"$bin" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work" >"$work.log" 2>&1 || true
grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done)" "$work.log" || true
rm -f "$work.log"
found=$(find "$work" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
         -o -name 'oom-*' \) -print)
if [ -n "$found" ]; then
  echo "fuzzer found a failure:"
  for f in $found; do echo "$f"; od -A x -t x1z "$f" | head -20; "$bin" "$f" 2>&1 | tail -30; done
  exit 1
fi
