#!/usr/bin/env node
// The tcqos executable: wires the real process to src/main. Built into a V8 startup snapshot
// (scripts/build.sh), where the modules are already loaded when a runtime starts it.
import { readSync } from 'node:fs';
import { isatty } from 'node:tty';
import { startupSnapshot } from 'node:v8';
import { MAX_STDIN_BYTES } from '../src/cni/stdin.ts';
import { main, warmUp } from '../src/main.ts';
import { warmUpToolRunner } from '../src/netns/exec.ts';

/** Reads stdin up to one byte past the limit, so an oversized config is refused, not buffered whole. */
async function readStdin(): Promise<Buffer> {
  // isatty, not process.stdin.isTTY: touching process.stdin makes fd 0 non-blocking, and every
  // read before the runtime writes would then fail with EAGAIN.
  if (isatty(0)) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  // Made here, not at load: this module's top level runs while the startup snapshot is built.
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let total = 0;
  const chunk = Buffer.alloc(65536);
  for (;;) {
    let count: number;
    try {
      count = readSync(0, chunk, 0, chunk.length, null);
    } catch (error) {
      // A parent that hands over a non-blocking pipe: sleep (without burning CPU) and retry.
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 2);
        continue;
      }
      if ((error as NodeJS.ErrnoException).code === 'EOF') break;
      throw error;
    }
    if (count === 0) break;
    chunks.push(Buffer.from(chunk.subarray(0, count)));
    total += count;
    if (total > MAX_STDIN_BYTES) break;
  }
  return Buffer.concat(chunks);
}

function run(): void {
  main({
    argv: process.argv.slice(2),
    env: process.env,
    readStdin,
    writeStdout: (text) => process.stdout.write(text),
    writeStderr: (text) => process.stderr.write(text),
  }).then(
    (exitCode) => {
      process.exitCode = exitCode;
    },
    (error: unknown) => {
      // main turns every failure into a CNI error; reaching here is a bug, reported without stdout.
      process.stderr.write(`tcqos: ${String(error)}\n`);
      process.exitCode = 1;
    },
  );
}

if (startupSnapshot.isBuildingSnapshot()) {
  warmUp();
  warmUpToolRunner();
  startupSnapshot.setDeserializeMainFunction(run);
} else {
  run();
}
