#!/usr/bin/env bash
# Installs the npm tooling of tools/ (package-lock.json, exactly) with
# `npm ci`, only when tools/node_modules is missing or was installed from a
# different lock file. Called by scripts/install-deps.sh and by the checks
# that use the tools, so `ctest` alone works too.
set -euo pipefail
cd "$(dirname "$0")"
# One installer at a time (parallel ctest runs): lock this script itself.
exec 9<npm-ci.sh
flock 9
command -v npm >/dev/null || { echo "npm-ci: npm is missing (Node.js 20+)" >&2; exit 1; }
stamp=node_modules/.sockdiag-lock-stamp
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
echo "npm-ci: installing tools/ from package-lock.json"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
cp package-lock.json "$stamp"
