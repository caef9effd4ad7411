/**
 * What tcqos keeps about an enforced uplink itself (not about an attachment on it): that it
 * installed the uplink's tree, so a clsact it left empty when an install was interrupted is still
 * known as its own, and which root qdisc the uplink had before, so the last DEL can be seen to leave
 * it as found. One file per uplink under `<stateDir>/uplinks`, written before anything is installed
 * and removed after the tree is gone, by holders of the uplink's lock only.
 */
import { rmSync } from 'node:fs';
import { dropTempsOf, readJsonFile, writeAtomically } from './files.ts';
import { ensurePrivateDir } from './state-dir.ts';

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
  const read = readJsonFile(path(stateDir, name), 'an uplink install', 64 * 1024);
  const value = 'value' in read ? (read.value as Partial<UplinkInstall> | null) : undefined;
  return typeof value?.foundRoot === 'string' ? (value as UplinkInstall) : undefined;
}

export function writeUplinkInstall(stateDir: string, install: UplinkInstall): void {
  ensurePrivateDir(`${stateDir}/uplinks`);
  writeAtomically(path(stateDir, install.name), `${JSON.stringify(install)}\n`);
}

/** Removes the temp files of the uplink's files left by writers killed before their rename: for holders of the uplink's lock. */
export function dropUplinkTemps(stateDir: string, name: string): void {
  dropTempsOf(path(stateDir, name));
  dropTempsOf(classifierObjectPath(stateDir, name));
}

export function removeUplinkInstall(stateDir: string, name: string): void {
  rmSync(path(stateDir, name), { force: true });
}

/** Where the uplink's classifier object is written for tc to load. */
export function classifierObjectPath(stateDir: string, name: string): string {
  return `${stateDir}/uplinks/${name}.classifier.o`;
}
