#!/usr/bin/env bash
# Installs what building, testing and the demo need on a fresh Debian machine, and nothing twice:
# Debian packages (iproute2, util-linux, iperf3, the reference CNI plugins, Go + libcni source for
# the e2e driver, hyperfine for benchmarks; containerd + runc and a static libc for the pod
# sandbox tests; Prometheus and node_exporter for the metrics tests; buildah + podman for the
# image; tmux and zsh for the live view and shell completion tests; strace for the lock tests) and
# the npm dependencies (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need() { # need COMMAND-OR-PATH PACKAGE
  if [[ "$1" == /* ]]; then [[ -e "$1" ]] || missing+=("$2"); else command -v "$1" >/dev/null 2>&1 || missing+=("$2"); fi
}
need tc iproute2
need nsenter util-linux
need iperf3 iperf3
need hyperfine hyperfine
need go golang-go
need /usr/share/gocode/src/github.com/containernetworking/cni/libcni golang-github-appc-cni-dev
need /usr/lib/cni/macvlan containernetworking-plugins
need /usr/lib/cni/host-local containernetworking-plugins
need containerd containerd
need runc runc
need /usr/lib/x86_64-linux-gnu/libc.a libc6-dev
need gcc gcc
need prometheus prometheus
need promtool prometheus
need prometheus-node-exporter prometheus-node-exporter
need buildah buildah
need podman podman
need tmux tmux
need zsh zsh
need strace strace
need setpriv util-linux
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
