/**
 * What tcqos keeps about an enforced uplink itself (not about an attachment on it): that it
 * installed the uplink's tree, so a clsact it left empty when an install was interrupted is still
 * known as its own, and which root qdisc the uplink had before, so the last DEL can be seen to leave
 * it as found. One file per uplink under `<stateDir>/uplinks`, written before anything is installed
 * and removed after the tree is gone, by holders of the uplink's lock only.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

export interface UplinkInstall {
  readonly name: string;
  /** The root qdisc the uplink had when tcqos first installed its tree ("kind handle"). */
  readonly foundRoot: string;
  readonly installedAt: string;
}

function path(stateDir: string, name: string): string {
  return `${stateDir}/uplinks/${name}.json`;
}

export function readUplinkInstall(stateDir: string, name: string): UplinkInstall | undefined {
  try {
    const value = JSON.parse(readFileSync(path(stateDir, name), 'utf8')) as UplinkInstall;
    return typeof value.foundRoot === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

export function writeUplinkInstall(stateDir: string, install: UplinkInstall): void {
  mkdirSync(`${stateDir}/uplinks`, { recursive: true, mode: 0o700 });
  const target = path(stateDir, install.name);
  const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(temp, `${JSON.stringify(install)}\n`, { mode: 0o600, flag: 'wx' });
  renameSync(temp, target);
}

export function removeUplinkInstall(stateDir: string, name: string): void {
  rmSync(path(stateDir, name), { force: true });
}

/** Where the uplink's classifier object is written for tc to load. */
export function classifierObjectPath(stateDir: string, name: string): string {
  return `${stateDir}/uplinks/${name}.classifier.o`;
}
