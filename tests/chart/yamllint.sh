#!/usr/bin/env bash
# yamllint (strict: warnings fail) on the plain YAML of the packaging: the
# chart's Chart.yaml, values.yaml and ci/*-values.yaml, and deploy/*.yaml.
# Chart templates are Go templates, not YAML, until Helm renders them.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
chart=$root/helm/sockdiag-exporter
command -v yamllint >/dev/null || { echo "yamllint missing (apt-get install yamllint)"; exit 1; }
files=("$chart/Chart.yaml" "$chart/values.yaml" "$chart"/ci/*-values.yaml "$root"/deploy/*.yaml)
yamllint -s -c "$chart/.yamllint" "${files[@]}"
echo "yamllint: ${#files[@]} files clean"
