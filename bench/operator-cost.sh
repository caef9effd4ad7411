#!/usr/bin/env bash
# What the operator's reads cost per attachment: `tcqos stats --prometheus` (one read of every
# counter) and `tcqos top --once` (two reads, rates between them) at N attachments, against `tcqos list`
# (no process: the start-up and the registry alone). Per run: wall, user and system CPU of tcqos and
# its children (GNU time); once per command, the processes started (strace, counted apart: it slows
# what it traces). Needs root and dist/tcqos (BIN= for another build).
#
#   bash bench/operator-cost.sh 10 100        # attachment counts; RUNS=5 runs of each by default
#
# Everything lives in namespaces tqop2-* (removed at the end), addresses in 198.18.101.0/24 (never
# used for traffic: the pods' veths stay inside their namespace), the registry in a temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/dist/tcqos}
RUNS=${RUNS:-5}
[[ $EUID -eq 0 ]] || { echo "bench/operator-cost.sh: needs root" >&2; exit 1; }
[[ -x $BIN ]] || { echo "bench/operator-cost.sh: $BIN missing (bash scripts/build.sh)" >&2; exit 1; }
command -v strace >/dev/null || { echo "bench/operator-cost.sh: needs strace" >&2; exit 1; }
counts=("${@:-10 100}")
read -r -a counts <<<"${counts[*]}"

remove_namespaces() {
  local ns
  for ns in $(ip netns list | awk '$1 ~ /^tqop2-/ {print $1}'); do ip netns del "$ns" 2>/dev/null || true; done
}
remove_namespaces
work=$(mktemp -d /tmp/tqop2-bench.XXXXXX)
trap 'remove_namespaces; rm -rf "$work"' EXIT
ip netns add tqop2-run

# Pod i: a veth pair inside its own namespace, shaped both ways with two classes each (as the
# scrape measurements of issue 16: two classes each way).
add_pod() {
  local i=$1 ns=tqop2-p$1
  ip netns add "$ns"
  ip -n "$ns" link add eth0 type veth peer name eth0p
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set eth0p up
  printf '{"cniVersion":"1.1.0","name":"bench","type":"tcqos","egress":{"rate":"50mbit","classes":[{"name":"db","rate":"20mbit","peers":["198.18.101.3/32"]}]},"ingress":{"rate":"40mbit","classes":[{"name":"db","rate":"10mbit","peers":["198.18.101.3/32"]}]},"prevResult":{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","mac":"02:00:00:00:00:01","sandbox":"/var/run/netns/%s"}],"ips":[{"address":"198.18.101.2/24","interface":0}]}}' "$ns" |
    ip netns exec tqop2-run env -i CNI_COMMAND=ADD CNI_CONTAINERID="bench$i" CNI_NETNS="/var/run/netns/$ns" CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin TCQOS_STATE_DIR="$work/state" "$BIN" >/dev/null
}

# Median of the numbers on standard input.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

measure() {
  local n=$1 label=$2
  shift 2
  local walls=() cpus=()
  for _ in $(seq 1 "$RUNS"); do
    read -r wall user sys < <(ip netns exec tqop2-run env -i TCQOS_STATE_DIR="$work/state" /usr/bin/time -f '%e %U %S' "$BIN" "$@" 2>&1 >/dev/null | tail -1)
    walls+=("$wall")
    cpus+=("$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')")
  done
  ip netns exec tqop2-run env -i TCQOS_STATE_DIR="$work/state" strace -f -qq -e trace=execve -o "$work/strace" "$BIN" "$@" >/dev/null 2>&1 || true
  # processes: the pids strace saw, less tcqos itself (nsenter execs tc in its own process)
  local started
  started=$(($(grep 'execve(' "$work/strace" | awk '{ print $1 }' | sort -u | wc -l) - 1))
  local wall cpu
  wall=$(printf '%s\n' "${walls[@]}" | median)
  cpu=$(printf '%s\n' "${cpus[@]}" | median)
  awk -v n="$n" -v label="$label" -v wall="$wall" -v cpu="$cpu" -v started="$started" 'BEGIN {
    printf "%4d  %-26s  wall %6.2f s  cpu %6.2f s  (%5.1f ms per attachment)  processes started %4d (%.1f per attachment)\n", n, label, wall, cpu, cpu * 1000 / n, started, started / n
  }'
}

have=0
echo "tcqos: $BIN; medians of $RUNS runs; processes started: nsenter, which becomes tc in the same process"
for n in "${counts[@]}"; do
  while ((have < n)); do
    have=$((have + 1))
    add_pod "$have"
  done
  measure "$n" 'list (no process)' list
  measure "$n" 'stats --prometheus' stats --prometheus
  measure "$n" 'top --once (two reads)' top --once --interval 0.2
done
