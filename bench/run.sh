#!/usr/bin/env bash
# Runs the benchmarks in a private network namespace and prints markdown.
#   bench/run.sh [EXPORTER_BINARY] [--sizes=10000,100000,1000000] [--repeat=N] [--destinations=N]
# Needs root. Installs prometheus-node-exporter (Debian) for the comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/release/src/sockdiag_exporter}
shift || true
bench=$(dirname "$(dirname "$bin")")/bench/sockdiag_bench
[ -x "$bench" ] || { echo "build first: make release" >&2; exit 1; }
if ! command -v prometheus-node-exporter >/dev/null; then
  apt-get install -y -qq --no-install-recommends prometheus-node-exporter >/dev/null
fi
echo "# $(date -u +%F) $(uname -r), $(nproc) cores, $(prometheus-node-exporter --version 2>&1 | head -1)"
exec unshare -n sh -c 'ip link set lo up && exec "$@"' _ \
  "$bench" --exporter="$bin" --node-exporter="$(command -v prometheus-node-exporter)" \
  --sizes=10000,100000,1000000 --netns=100x1000 --repeat=41 --destinations=64 "$@"
