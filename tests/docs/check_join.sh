#!/usr/bin/env bash
# Tests the kube_pod_info join that docs/kubernetes.md documents: the query
# in the doc's promql block must equal the recording rule's expression
# (whitespace aside), and promtool must find the rule's results right on
# series shaped like two nodes' exporters and kube-state-metrics.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
doc=$here/../../docs/kubernetes.md
command -v promtool >/dev/null || { echo "promtool missing (apt-get install prometheus)"; exit 1; }
norm() { tr -d ' \n'; }
in_doc=$(awk '/^```promql$/ {on=1; next} /^```$/ {on=0} on' "$doc" | norm)
in_rule=$(awk '/expr: \|/ {on=1; next} on' "$here/kube_pod_info_join.rules.yaml" | norm)
if [ -z "$in_doc" ] || [ "$in_doc" != "$in_rule" ]; then
  echo "FAIL: the promql block of docs/kubernetes.md differs from kube_pod_info_join.rules.yaml"
  exit 1
fi
cd "$here"
promtool test rules kube_pod_info_join.test.yaml
