#!/usr/bin/env bash
# Builds chart-render (the stand-in for `helm template`) with Debian's Go
# toolchain and Debian's Go library packages only: GOPATH mode over
# /usr/share/gocode, no module proxy, nothing downloaded, nothing vendored.
#   build.sh OUT_BINARY [test]    "test" also runs the engine's Go tests
set -euo pipefail
out=${1:?usage: build.sh OUT_BINARY [test]}
src=$(cd "$(dirname "$0")" && pwd)
command -v go >/dev/null || { echo "chart-render: go missing (apt-get install golang-go)" >&2; exit 1; }
for pkg in github.com/Masterminds/sprig sigs.k8s.io/yaml gopkg.in/yaml.v3 \
           github.com/xeipuuv/gojsonschema github.com/gobwas/glob github.com/BurntSushi/toml; do
  [ -d "/usr/share/gocode/src/$pkg" ] || {
    echo "chart-render: /usr/share/gocode/src/$pkg missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
mkdir -p "$(dirname "$out")"
cache=$(cd "$(dirname "$out")" && pwd)/chart-render-gocache
export GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= GOTOOLCHAIN=local \
       GOCACHE="$cache" CGO_ENABLED=0
cd "$src"
go vet .
go build -o "$out" .
if [ "${2:-}" = test ]; then go test -count=1 .; fi
