#!/usr/bin/env bash
# Build cnidriver (a minimal cnitool equivalent, see main.go) fully offline
# against Debian's packaged libcni source. No Go module downloads.
#
# usage: test/e2e/cnidriver/build.sh [output-path]
#   default output: test/e2e/cnidriver/cnidriver (next to this script)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/cnidriver}"
gopath=/usr/share/gocode
libcni_src="$gopath/src/github.com/containernetworking/cni/libcni"

if ! command -v go >/dev/null 2>&1 || [ ! -d "$libcni_src" ] || [ ! -d /usr/lib/cni ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends golang-go golang-github-appc-cni-dev containernetworking-plugins
fi

mkdir -p "$(dirname "$out")"
# GOPATH mode: resolve github.com/containernetworking/cni from /usr/share/gocode.
# CGO off: static binary, no gcc needed. GOCACHE under /tmp: works as root/CI
# where $HOME may be unset or read-only.
GO111MODULE=off GOPATH="$gopath" GOFLAGS= CGO_ENABLED=0 \
  GOCACHE="${GOCACHE:-/tmp/cnidriver-gocache}" \
  go build -o "$out" "$here/main.go"
echo "built $out" >&2
