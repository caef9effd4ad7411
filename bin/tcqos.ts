#!/usr/bin/env node
// The tcqos executable: wires the real process to src/main. Built into a V8 startup snapshot
// (scripts/build.sh), where the modules are already loaded when a runtime starts it.
import { readSync } from 'node:fs';
import { isatty } from 'node:tty';
import { startupSnapshot } from 'node:v8';
import { MAX_STDIN_BYTES } from '../src/cni/stdin.ts';
import { logsWritten } from '../src/log.ts';
import { main } from '../src/main.ts';
import { warmUpToolRunner } from '../src/netns/runner.ts';
import { warmUpCniPaths } from '../src/warm-up.ts';

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

/** Writes that must have reached their pipe or file before the process exits. */
const pendingWrites: Promise<void>[] = [];

function writeFully(stream: NodeJS.WriteStream, text: string): void {
  // resolves on error too (a runtime that closed its end): there is nobody left to tell
  pendingWrites.push(new Promise((resolve) => stream.write(text, () => resolve())));
}

/**
 * Exits as soon as the output and the logs are out: letting Node wind down on its own (closing
 * handles, freeing the heap) cost ~2 ms per ADD, measured.
 */
async function exitWhenWritten(exitCode: number): Promise<never> {
  await Promise.all([...pendingWrites, logsWritten()]);
  process.exit(exitCode);
}

function run(): void {
  main({
    argv: process.argv.slice(2),
    env: process.env,
    readStdin,
    writeStdout: (text) => writeFully(process.stdout, text),
    writeStderr: (text) => writeFully(process.stderr, text),
  }).then(exitWhenWritten, (error: unknown) => {
    // main turns every failure into a CNI error; reaching here is a bug, reported without stdout.
    writeFully(process.stderr, `tcqos: ${String(error)}\n`);
    return exitWhenWritten(1);
  });
}

if (startupSnapshot.isBuildingSnapshot()) {
  // Settles before the snapshot is taken (Node takes it once the event loop is empty).
  void warmUpCniPaths().then(warmUpToolRunner);
  startupSnapshot.setDeserializeMainFunction(run);
} else {
  run();
}
