#!/usr/bin/env bash
# Lints a real scrape with promtool: starts the exporter in a private network
# namespace with a small population, scrapes it and pipes the exposition
# through `promtool check metrics`, which must print nothing and exit 0.
set -euo pipefail
bin=${1:?usage: check_metrics.sh EXPORTER_BINARY}
command -v promtool >/dev/null || { echo "promtool missing (apt-get install prometheus)"; exit 1; }

exec unshare -n bash -euo pipefail -c '
bin=$1
ip link set lo up
out=$(mktemp -d)
trap "kill \$pid 2>/dev/null || true; rm -rf $out" EXIT
"$bin" --web.listen-address=127.0.0.1:10061 --poll.interval=200ms 2>"$out/stderr" &
pid=$!
for _ in $(seq 100); do
  curl -sf -o /dev/null 127.0.0.1:10061/-/ready && break
  sleep 0.1
done
curl -sf 127.0.0.1:10061/metrics >"$out/metrics"
# prometheus-cpp 1.0.1 always adds its exposer_* self metrics; its summary
# prints NaN quantiles before the first scrape, which is valid exposition.
if ! promtool check metrics <"$out/metrics" >"$out/lint" 2>&1 || [ -s "$out/lint" ]; then
  echo "promtool check metrics reported problems:"; cat "$out/lint"; exit 1
fi
grep -c "^sockdiag_" "$out/metrics" | sed "s/^/sockdiag samples: /"
echo "promtool check metrics: clean"
' _ "$bin"
