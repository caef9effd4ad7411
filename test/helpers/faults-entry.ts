/**
 * The test build of the plugin (build/tcqos-faults.cjs, run by the embedded Node): the shipped
 * executable with deterministic faults read from TCQOS_FAULT, for the robustness tests and the soak.
 * "kill:<point>" SIGKILLs the process at that point of a use case; "fail-line:<n>" puts a line tc
 * must refuse at position n of the next tc batch. The shipped binary cannot read TCQOS_FAULT at all.
 */
import { readFileSync } from 'node:fs';
import type { Faults } from '../../src/netns/faults.ts';
import { NO_FAULTS } from '../../src/netns/faults.ts';
import { main } from '../../src/main.ts';

export function faultsFrom(fault: string | undefined): Faults {
  if (!fault) return NO_FAULTS;
  const position = /^fail-line:(\d+)$/.exec(fault)?.[1];
  return {
    killAt: (point) => {
      if (fault === `kill:${point}`) process.kill(process.pid, 'SIGKILL');
    },
    intoBatch: (lines) => {
      if (position === undefined) return lines;
      const at = Math.min(Number(position), lines.length);
      return [...lines.slice(0, at), 'qdisc add dev tcqos-fault-injected root htb', ...lines.slice(at)];
    },
  };
}

const stdin = readFileSync(0);
main(
  {
    argv: process.argv.slice(2),
    env: process.env,
    readStdin: async () => stdin,
    writeStdout: (text) => process.stdout.write(text),
    writeStderr: (text) => process.stderr.write(text),
  },
  { faults: faultsFrom(process.env['TCQOS_FAULT']) },
).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`tcqos: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
