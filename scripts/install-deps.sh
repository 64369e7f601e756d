#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the tests and `make run` need,
# only those missing. Run as root (apt-get). Nothing else is downloaded.
set -euo pipefail

# Build
packages=(g++ cmake ninja-build pkg-config make git
          prometheus-cpp-dev libcivetweb-dev libmnl-dev catch2)
# Tests: iproute2 (ip, ss), nftables and conntrack for conntrack tests,
# prometheus (promtool + server) for exposition and end-to-end checks, curl.
packages+=(iproute2 nftables conntrack prometheus curl libcap2-bin procps)
# Packaging checks: yamllint (chart values, manifests); python3 for the image
# test's socket population. Node.js (preinstalled) runs the npm tools below.
packages+=(yamllint python3)
# Image test only (tests/image, CTest label "image"): podman builds and runs
# the Dockerfile with runc; debootstrap makes the Debian base images, since no
# container registry is reachable.
packages+=(podman buildah runc debootstrap)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm tools of the non-C++ checks (tools/package.json, locked): reinstalled
# only when the lock file changed since the last install.
tools=$(cd "$(dirname "$0")/../tools" && pwd)
if [ -f "$tools/package-lock.json" ] &&
   ! cmp -s "$tools/package-lock.json" "$tools/node_modules/.installed-lock.json"; then
  command -v npm >/dev/null || { echo "install-deps: npm missing (Node.js 20+)" >&2; exit 1; }
  echo "install-deps: npm ci in tools/"
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$tools/package-lock.json" "$tools/node_modules/.installed-lock.json"
fi
