#!/usr/bin/env bash
# Lints the Dockerfile with both npm linters (tools/): dockerfilelint, whose
# exit status is its issue count, and dockerfile-utils, which exits 1 only
# on errors, so any "Warning" line it prints fails here too. First proves on
# tests/data/Dockerfile.bad that each linter still reports problems.
#
# Usage: lint_dockerfile.sh DOCKERFILE
set -euo pipefail
dockerfile=$(realpath "${1:?usage: lint_dockerfile.sh DOCKERFILE}")
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/tools/node_modules/.bin
if [ ! -x "$bin/dockerfilelint" ] || [ ! -x "$bin/dockerfile-utils" ]; then
  echo "npm tools missing: run scripts/install-deps.sh (npm ci in tools/)"; exit 1
fi

# lint FILE: prints every finding of both linters; status 1 if any.
lint() {
  local rc=0 out
  out=$("$bin/dockerfilelint" -o cli "$1" 2>&1) || rc=1
  if [ $rc -ne 0 ]; then echo "dockerfilelint:"; echo "$out"; fi
  out=$("$bin/dockerfile-utils" lint "$1" 2>&1) || rc=1
  if grep -qiE 'warning|error' <<<"$out"; then echo "dockerfile-utils:"; echo "$out"; rc=1; fi
  return $rc
}

bad=$root/tests/data/Dockerfile.bad
for linter in dockerfilelint "dockerfile-utils lint"; do
  # shellcheck disable=SC2086 # the linter's name and subcommand split on purpose
  if out=$("$bin"/$linter "$bad" 2>&1) && ! grep -qiE 'warning|error' <<<"$out"; then
    echo "FAIL: $linter reports nothing on $bad"; exit 1
  fi
done
echo "both linters flag tests/data/Dockerfile.bad"

if ! lint "$dockerfile"; then
  echo "FAIL: $dockerfile has lint findings"; exit 1
fi
echo "$dockerfile: dockerfilelint and dockerfile-utils clean"
