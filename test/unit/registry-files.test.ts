/**
 * The registry's files as root writes them: a state directory others could write is refused, temp
 * files are created exclusively under names nobody can guess and never through a symlink, records
 * are not read through one, and a killed writer's temp file is dropped by its age, or at once by
 * the next holder of its record's lock.
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AttachmentRecord } from '../../src/state/record.ts';
import { ABANDONED_TEMP_MS, Registry } from '../../src/state/registry.ts';
import { checkPrivateDir, ensurePrivateDir, UnsafeStateDirError } from '../../src/state/state-dir.ts';
import { dropUplinkTemps } from '../../src/state/uplinks.ts';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'tcqos-registry-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function record(containerId: string): AttachmentRecord {
  const now = new Date().toISOString();
  return { version: 1, containerId, ifname: 'eth0', netns: '/var/run/netns/x', network: 'net', config: {}, policy: {}, sources: {}, classIds: {}, createdAt: now, updatedAt: now };
}

const mode = (path: string) => lstatSync(path).mode & 0o7777;

describe('the state directory', () => {
  it('is created 0700 with its records directory, and records are 0600', () => {
    const stateDir = join(root, 'state', 'tcqos');
    new Registry(stateDir).write(record('c1'));
    expect(mode(join(root, 'state'))).toBe(0o700);
    expect(mode(stateDir)).toBe(0o700);
    expect(mode(join(stateDir, 'attachments'))).toBe(0o700);
    expect(mode(join(stateDir, 'attachments', 'eth0@c1.json'))).toBe(0o600);
    expect(readdirSync(join(stateDir, 'attachments'))).toEqual(['eth0@c1.json']);
  });

  it("one made 0755 by root (a DaemonSet's DirectoryOrCreate) is used as it is", () => {
    const stateDir = join(root, 'tcqos');
    mkdirSync(stateDir, { mode: 0o755 });
    chmodSync(stateDir, 0o755);
    const registry = new Registry(stateDir);
    registry.write(record('c1'));
    expect(registry.list().records).toHaveLength(1);
    expect(mode(stateDir)).toBe(0o755);
  });

  it.each([
    ['writable by others', 0o757, /state directory .*\/tcqos is writable by others \(mode 0757\): chmod go-w it/],
    ['writable by its group', 0o775, /is writable by its group \(mode 0775\)/],
    ['writable by both, even sticky', 0o1777, /is writable by its group and others \(mode 1777\)/],
  ])('one %s is refused, for reading and for writing', (_name, bits, message) => {
    const stateDir = join(root, 'tcqos');
    mkdirSync(stateDir);
    chmodSync(stateDir, bits);
    expect(() => new Registry(stateDir).write(record('c1'))).toThrow(message);
    expect(() => new Registry(stateDir).list()).toThrow(UnsafeStateDirError);
    expect(existsSync(join(stateDir, 'attachments'))).toBe(false);
  });

  it('one owned by another user is refused', () => {
    const stateDir = join(root, 'tcqos');
    mkdirSync(stateDir, { mode: 0o700 });
    chownSync(stateDir, 65534, 65534);
    expect(() => new Registry(stateDir).write(record('c1'))).toThrow(/state directory .*\/tcqos belongs to uid 65534, not root: chown it/);
  });

  it('a symlink is refused, even to a good directory', () => {
    const real = join(root, 'real');
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, join(root, 'tcqos'));
    expect(() => new Registry(join(root, 'tcqos')).write(record('c1'))).toThrow(/state directory .*\/tcqos is a symlink/);
    expect(readdirSync(real)).toEqual([]);
  });

  it('a records directory planted as a symlink is refused', () => {
    const stateDir = join(root, 'tcqos');
    mkdirSync(stateDir, { mode: 0o700 });
    mkdirSync(join(root, 'elsewhere'), { mode: 0o700 });
    symlinkSync(join(root, 'elsewhere'), join(stateDir, 'attachments'));
    expect(() => new Registry(stateDir).write(record('c1'))).toThrow(/attachments is a symlink/);
    expect(readdirSync(join(root, 'elsewhere'))).toEqual([]);
  });

  it('a directory on the way that others may write is refused unless it is sticky', () => {
    const open = join(root, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(() => ensurePrivateDir(join(open, 'tcqos'))).toThrow(/open, on the way to the state directory, is writable by its group and others \(mode 0777\)/);
    chmodSync(open, 0o1777);
    expect(() => ensurePrivateDir(join(open, 'tcqos'))).not.toThrow();
  });

  it('a missing one is nothing to trust yet: reading finds no record, and makes nothing', () => {
    const stateDir = join(root, 'none');
    expect(() => checkPrivateDir(stateDir)).not.toThrow();
    expect(new Registry(stateDir).list()).toEqual({ records: [], problems: [] });
    expect(existsSync(stateDir)).toBe(false);
  });
});

describe('temp files and records', () => {
  it('a symlink planted where a pid-named temp file would go is never written through', () => {
    const stateDir = join(root, 'tcqos');
    const registry = new Registry(stateDir);
    registry.write(record('c1'));
    const victim = join(root, 'victim');
    writeFileSync(victim, 'untouched');
    // The old temp name (`<record>.<pid>.tmp`) was predictable: anyone able to write there could
    // point it at a file of their choosing, and root would write the record into it.
    symlinkSync(victim, join(stateDir, 'attachments', `eth0@c1.json.${process.pid}.tmp`));
    registry.write(record('c1'));
    expect(readFileSync(victim, 'utf8')).toBe('untouched');
    expect(lstatSync(join(stateDir, 'attachments', 'eth0@c1.json')).isFile()).toBe(true);
  });

  it('temp files get a new random name each write', async () => {
    // Observe the names: keep the rename from happening by making the target a directory.
    const stateDir = join(root, 'tcqos');
    const registry = new Registry(stateDir);
    registry.write(record('c0'));
    mkdirSync(join(stateDir, 'attachments', 'eth0@c1.json'));
    for (let i = 0; i < 3; i++) expect(() => registry.write(record('c1'))).toThrow(/EISDIR|ENOTEMPTY|EEXIST|is a directory/i);
    const temps = readdirSync(join(stateDir, 'attachments')).filter((name) => name.endsWith('.tmp'));
    expect(temps).toHaveLength(3);
    for (const name of temps) {
      expect(name).toMatch(/^eth0@c1\.json\.[0-9a-f]{16}\.tmp$/);
      expect(name).not.toContain(String(process.pid));
      expect(mode(join(stateDir, 'attachments', name))).toBe(0o600);
    }
  });

  it('a record that is a symlink is reported, not followed', () => {
    const stateDir = join(root, 'tcqos');
    const registry = new Registry(stateDir);
    registry.write(record('c1'));
    const elsewhere = join(root, 'elsewhere.json');
    writeFileSync(elsewhere, JSON.stringify(record('c2')));
    symlinkSync(elsewhere, join(stateDir, 'attachments', 'eth0@c2.json'));
    const { records, problems } = registry.list();
    expect(records.map((r) => r.containerId)).toEqual(['c1']);
    expect(problems).toEqual([`${stateDir}/attachments/eth0@c2.json: a symlink, not a record`]);
  });

  it('a FIFO or a directory named like a record is reported at once, never read (a FIFO would block the reader)', () => {
    const stateDir = join(root, 'tcqos');
    const registry = new Registry(stateDir);
    registry.write(record('c1'));
    execFileSync('mkfifo', [join(stateDir, 'attachments', 'eth0@c2.json')]);
    mkdirSync(join(stateDir, 'attachments', 'eth0@c3.json'));
    const { records, problems } = registry.list();
    expect(records.map((r) => r.containerId)).toEqual(['c1']);
    expect(problems).toEqual([`${stateDir}/attachments/eth0@c2.json: not a regular file, not a record`, `${stateDir}/attachments/eth0@c3.json: not a regular file, not a record`]);
  });

  it("a holder of a record's lock drops that record's temp files at once, and no other file", () => {
    const stateDir = join(root, 'tcqos');
    const registry = new Registry(stateDir);
    registry.write(record('c1'));
    const dir = join(stateDir, 'attachments');
    const names = {
      killedWriter: 'eth0@c1.json.0123456789abcdef.tmp',
      anotherRecords: 'eth0@c10.json.0123456789abcdef.tmp',
      notOurName: 'eth0@c1.json.notrandomatall.tmp',
    };
    for (const name of Object.values(names)) writeFileSync(join(dir, name), '{');
    expect(registry.dropTempsOf({ containerId: 'c1', ifname: 'eth0' })).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(['eth0@c1.json', names.anotherRecords, names.notOurName].sort());
  });

  it("a holder of an uplink's lock drops the temp files of that uplink's record and classifier object", () => {
    const dir = join(root, 'tcqos', 'uplinks');
    mkdirSync(dir, { recursive: true });
    const names = ['up0.json.0123456789abcdef.tmp', 'up0.classifier.o.fedcba9876543210.tmp', 'up1.json.0123456789abcdef.tmp', 'up0.json'];
    for (const name of names) writeFileSync(join(dir, name), '{');
    dropUplinkTemps(join(root, 'tcqos'), 'up0');
    expect(readdirSync(dir).sort()).toEqual(['up0.json', 'up1.json.0123456789abcdef.tmp']);
  });

  it('abandoned temp files are dropped by their age, not by whose pid they name', () => {
    const stateDir = join(root, 'tcqos');
    const registry = new Registry(stateDir);
    registry.write(record('c1'));
    const dir = join(stateDir, 'attachments');
    const old = join(dir, 'eth0@c1.json.1.tmp'); // pid 1 is alive in every namespace
    const young = join(dir, 'eth0@c2.json.0123456789abcdef.tmp');
    writeFileSync(old, '{');
    writeFileSync(young, '{');
    const past = (Date.now() - ABANDONED_TEMP_MS - 5_000) / 1000;
    utimesSync(old, past, past);
    expect(registry.dropAbandonedTemps()).toBe(1);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(young)).toBe(true);
    expect(registry.dropAbandonedTemps(Date.now() + ABANDONED_TEMP_MS + 1_000)).toBe(1);
    expect(readdirSync(dir)).toEqual(['eth0@c1.json']);
    expect(statSync(join(dir, 'eth0@c1.json')).isFile()).toBe(true);
  });
});
