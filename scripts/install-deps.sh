#!/usr/bin/env bash
# Installs what is missing, only that: Debian 12 packages (apt-get, needs
# root), then the npm tools of the non-C++ checks (tools/package-lock.json).
# Nothing else is downloaded.
#   install-deps.sh        everything `make test` needs
#   install-deps.sh run    only what building and running need (`make run`)
set -euo pipefail
mode=${1:-test}

# Build (clang + compiler-rt for the libFuzzer targets).
packages=(g++ clang libclang-rt-14-dev cmake ninja-build pkg-config make git
          prometheus-cpp-dev libcivetweb-dev libmnl-dev catch2)
# Web: the TLS terminator (OpenSSL 3), the web config file (libyaml), bcrypt
# for basic auth (libxcrypt).
packages+=(libssl-dev libyaml-dev libcrypt-dev)
if [ "$mode" = test ]; then
# Tests: iproute2 (ip, ss), nftables and conntrack for conntrack tests,
# prometheus (promtool + server) for exposition and end-to-end checks, curl.
packages+=(iproute2 nftables conntrack prometheus curl libcap2-bin procps)
# Web tests: throwaway CAs and certificates (openssl), load (wrk), reduced
# capabilities (setpriv, in util-linux).
packages+=(openssl wrk util-linux)
# Monitoring and packaging checks: python3 + python3-yaml for the dashboard,
# alert and population scripts; yamllint for chart values and manifests;
# Node.js and npm (only if absent) for the npm tools in tools/.
packages+=(python3 python3-yaml yamllint)
# The chart's renderer (tools/chart-render, a stand-in for `helm template`):
# Debian's Go toolchain and its packages of the libraries Helm uses, built in
# GOPATH mode from /usr/share/gocode with nothing downloaded.
packages+=(golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev
           golang-gopkg-yaml.v3-dev golang-github-xeipuuv-gojsonschema-dev
           golang-github-gobwas-glob-dev golang-github-burntsushi-toml-dev)
command -v npm >/dev/null || packages+=(nodejs npm)
# Image test only (tests/image, CTest label "image"): podman builds and runs
# the Dockerfile with runc; debootstrap makes the Debian base images, since no
# container registry is reachable.
packages+=(podman buildah runc debootstrap)
fi

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

# npm tools of the non-C++ checks, reinstalled only when the lock changed.
[ "$mode" = test ] || exit 0
exec "$(dirname "$0")/../tools/npm-ci.sh"
