#!/usr/bin/env bash
# long_run.sh BUILD_DIR SECONDS TARGET...: the long fuzz runs recorded in
# docs/fuzzing.md. Prints one markdown row per target.
set -euo pipefail
build=$1 seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
for target in "$@"; do
  work=$(mktemp -d)
  cp -r "$here/corpus/${target#fuzz_}"/. "$work"/ 2>/dev/null || true
  log=$(mktemp)
  start=$(date +%s)
  "$build/tests/fuzz/$target" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/" "$work" >"$log" 2>&1 || true
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  crashes=$(find "$work" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  echo "| $target | ${took} s | ${execs:-?} | ${cov:-?} | $(ls "$work" | wc -l) | $crashes |"
  [ "$crashes" -eq 0 ] || find "$work" -maxdepth 1 -name 'crash-*' -exec cp {} /tmp/ \;
  rm -rf "$work" "$log"
done
