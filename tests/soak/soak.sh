#!/usr/bin/env bash
# Soak test: the real exporter under >= 5,000 TCP connections/s of churn on
# loopback and 10 concurrent scrapers, in a private network namespace the
# soak tool creates (bench/sockdiag_soak.cc documents what it does and asserts).
#
#   tests/soak/soak.sh EXPORTER_BINARY [DURATION_SECONDS] [sockdiag_soak flags...]
#
# DURATION defaults to 120 (the CTest variant, label "soak"). The recorded
# 30-minute run (bench/README.md, "Soak"):
#   tests/soak/soak.sh build/release/src/sockdiag_exporter 1800 --require-rate
# Without --require-rate a machine too slow or too busy for the target rate is
# reported, not failed; correctness criteria always fail the run.
#
# The tool is BUILD/bench/sockdiag_soak next to the exporter's build, or
# $SOCKDIAG_SOAK. The exporter log and a per-second timeline (CSV) go to a
# temporary directory, kept in $SOAK_OUT_DIR when set. Needs root and ss.
# Exit status: 0 pass, 1 fail, 2 setup error.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 EXPORTER_BINARY [DURATION_SECONDS] [sockdiag_soak flags...]" >&2
  exit 2
fi
bin=$1
duration=${2:-120}
shift
[ $# -gt 0 ] && shift
tool=${SOCKDIAG_SOAK:-$(dirname "$(dirname "$bin")")/bench/sockdiag_soak}
[ -x "$bin" ] || { echo "soak: exporter $bin not built" >&2; exit 2; }
[ -x "$tool" ] || { echo "soak: $tool not built" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "soak: needs root (private network namespace)" >&2; exit 2; }
command -v ss >/dev/null || { echo "soak: ss (iproute2) missing" >&2; exit 2; }

if [ -n "${SOAK_OUT_DIR:-}" ]; then
  out=$SOAK_OUT_DIR
  mkdir -p "$out"
else
  out=$(mktemp -d /tmp/sockdiag-soak.XXXXXX)
  trap 'rm -rf "$out"' EXIT
fi

# The tool bounds itself (alarm at duration + 180 s; the exporter dies with
# it); timeout is the outer bound.
rc=0
timeout --kill-after=20 $((duration + 240)) "$tool" --exporter="$bin" --duration="$duration" \
  --exporter-log="$out/exporter.log" --csv="$out/timeline.csv" "$@" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "--- exporter log, last 20 lines ($out/exporter.log)"
  tail -n 20 "$out/exporter.log" 2>/dev/null || true
fi
exit "$rc"
