#!/usr/bin/env bash
# Builds the tcqos image offline, from scratch: dist/tcqos, ip, tc, nsenter and flock, every shared library
# they load and the dynamic loader, copied from this machine into an empty root. No base image is
# pulled (deploy/Containerfile is the equivalent for builds that can pull one).
#
#   bash scripts/build.sh && bash scripts/build-image.sh [IMAGE]
#
# IMAGE defaults to localhost/tcqos:VERSION (VERSION as `dist/tcqos version` prints it), the name
# deploy/tcqos.yaml uses. The image goes to buildah's storage; CONTAINERS_STORAGE_CONF names
# another storage.conf (the tests build into a temporary one).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=dist/tcqos
if [[ ! -x $binary ]]; then
  echo "build-image: $binary is missing: run bash scripts/build.sh first" >&2
  exit 1
fi
version=$("$binary" version | cut -d' ' -f2)
image=${1:-localhost/tcqos:$version}

rootfs=$(mktemp -d)
container=
cleanup() {
  if [[ -n $container ]]; then buildah rm "$container" >/dev/null; fi
  rm -rf "$rootfs"
}
trap cleanup EXIT

# The same search as the plugin's (src/netns/tools.ts): wherever this machine keeps a tool.
find_tool() {
  local dir
  for dir in /usr/sbin /sbin /usr/bin /bin; do
    if [[ -x $dir/$1 ]]; then echo "$dir/$1"; return; fi
  done
  echo "build-image: $1 not found (install ${2})" >&2
  exit 1
}

# put SOURCE [TARGET]: a regular file (symlinks followed) at TARGET in the image, mode kept.
put() {
  install -D -m "$(stat -L -c %a "$1")" "$1" "$rootfs${2:-$1}"
}

ip=$(find_tool ip iproute2)
tc=$(find_tool tc iproute2)
nsenter=$(find_tool nsenter util-linux)
# the attachment and uplink locks: flock(2) taken by util-linux's flock on tcqos's open file
flock=$(find_tool flock util-linux)
put "$binary" /usr/bin/tcqos
put "$ip" /usr/sbin/ip
put "$tc" /usr/sbin/tc
put "$nsenter" /usr/bin/nsenter
put "$flock" /usr/bin/flock
# Shared libraries at the paths ldd resolves them to, and the loader: the image has no
# ld.so.cache, and the loader's built-in directories are the ones ldd names here.
for program in "$binary" "$ip" "$tc" "$nsenter" "$flock"; do
  ldd "$program" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
done | sort -u | while read -r library; do put "$library"; done
# ip and tc read their name tables (protocols, realms, ematch kinds) from here when present.
if [[ -d /etc/iproute2 ]]; then
  mkdir -p "$rootfs/etc"
  cp -rL /etc/iproute2 "$rootfs/etc/"
fi
install -d -m 1777 "$rootfs/tmp"

container=$(buildah from scratch)
buildah copy --quiet "$container" "$rootfs/" / >/dev/null
buildah config \
  --entrypoint '["/usr/bin/tcqos"]' --cmd '' \
  --env PATH=/usr/sbin:/usr/bin \
  --label org.opencontainers.image.title=tcqos \
  --label "org.opencontainers.image.version=$version" \
  "$container"
buildah commit --quiet --rm "$container" "$image" >/dev/null
container=
echo "built $image ($(du -sh "$rootfs" | cut -f1) from scratch)"
