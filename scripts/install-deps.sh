#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the tests and `make run` need,
# only those missing. Run as root (apt-get). Nothing else is downloaded.
set -euo pipefail

# Build
packages=(g++ clang libclang-rt-14-dev cmake ninja-build pkg-config make git
          prometheus-cpp-dev libcivetweb-dev libmnl-dev catch2)
# Tests: iproute2 (ip, ss), nftables and conntrack for conntrack tests,
# prometheus (promtool + server) for exposition and end-to-end checks, curl.
packages+=(iproute2 nftables conntrack prometheus curl libcap2-bin procps)
# Monitoring checks: python3-yaml for the dashboard/alert scripts; Node.js and
# npm (only if absent) for the dashboard schema tooling in tools/.
packages+=(python3-yaml)
command -v npm >/dev/null || packages+=(nodejs npm)
# Last step, also when no package is missing: tools/ npm packages, once per lock file.
npm_tools="$(dirname "$0")/../tools/npm-ci.sh"

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exec "$npm_tools"
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
exec "$npm_tools"
