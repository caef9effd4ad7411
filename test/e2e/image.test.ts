/**
 * The image as the DaemonSet runs it: built offline by scripts/build-image.sh, then run by podman
 * to do the init container's `tcqos install` into host directories bind-mounted from a temporary
 * dir. Images, containers and podman's state all live under that temporary dir, removed after.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TCQOS_BINARY } from '../helpers/plugin.ts';
import { must, run, type Ran } from '../helpers/run.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const IMAGE = `localhost/tcqos-test:tqins-${process.pid}`;
const BANDWIDTH = { type: 'bandwidth', capabilities: { bandwidth: true }, ingressRate: 20_000_000, ingressBurst: 200_000, egressRate: 10_000_000, egressBurst: 100_000 };
const CONFLIST = `${JSON.stringify({ cniVersion: '1.0.0', name: 'tqins-net', plugins: [{ type: 'ptp', ipam: { type: 'host-local', subnet: '198.18.66.0/24' } }, BANDWIDTH] }, null, 2)}\n`;

let root: string;
let env: Record<string, string>;

/** podman on this machine (TRAPS.md): runc, cgroupfs, explicit ulimits; state kept under root. */
function podman(args: readonly string[], timeoutMs = 120_000): Promise<Ran> {
  return execa(
    'podman',
    ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', '--tmpdir', join(root, 'libpod'), ...args],
    { env, reject: false, timeout: timeoutMs, stdin: 'ignore' },
  ).then((result) => ({ exitCode: result.exitCode ?? 124, stdout: String(result.stdout), stderr: String(result.stderr) }));
}

/** A container as the init container runs: no network, no capabilities, a read-only image. */
function runImage(args: readonly string[], mounts: Readonly<Record<string, string>> = {}, entrypoint?: string): Promise<Ran> {
  return podman([
    'run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024',
    '--read-only', '--cap-drop', 'ALL',
    ...Object.entries(mounts).flatMap(([host, inside]) => ['--volume', `${host}:${inside}`]),
    ...(entrypoint ? ['--entrypoint', entrypoint] : []),
    IMAGE, ...args,
  ]);
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tqins-image-'));
  writeFileSync(join(root, 'storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${root}/storage"\nrunroot = "${root}/run"\n`);
  env = { ...(process.env as Record<string, string>), CONTAINERS_STORAGE_CONF: join(root, 'storage.conf') };
  const built = await execa('bash', [join(REPO, 'scripts/build-image.sh'), IMAGE], { env, reject: false, timeout: 300_000 });
  if (built.exitCode !== 0) throw new Error(`scripts/build-image.sh failed: ${String(built.stderr)}`);
}, 320_000);

afterAll(async () => {
  if (!root) return;
  await podman(['rmi', '--force', IMAGE]);
  rmSync(root, { recursive: true, force: true });
});

describe('the tcqos image', () => {
  it('runs tcqos install into host directories, chaining the conflist and copying a binary that runs on the host', async () => {
    const host = join(root, 'host');
    mkdirSync(join(host, 'bin'), { recursive: true });
    mkdirSync(join(host, 'net.d'));
    writeFileSync(join(host, 'net.d', '10-tqins.conflist'), CONFLIST);

    const result = await runImage(['install', '--bin-dir', '/host/bin', '--conf-dir', '/host/net.d'], {
      [join(host, 'bin')]: '/host/bin',
      [join(host, 'net.d')]: '/host/net.d',
    });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const version = (await must(TCQOS_BINARY, ['version'])).trim();
    expect(result.stdout.split('\n')).toEqual([
      `/host/bin/tcqos: installed (${version})`,
      '/host/net.d/10-tqins.conflist: replaced bandwidth by tcqos (kept capabilities, ingressRate, ingressBurst, egressRate, egressBurst)',
    ]);

    expect(readFileSync(join(host, 'bin', 'tcqos')).equals(readFileSync(TCQOS_BINARY))).toBe(true);
    expect((await run(join(host, 'bin', 'tcqos'), ['version'])).stdout.trim()).toBe(version);
    const chained = JSON.parse(readFileSync(join(host, 'net.d', '10-tqins.conflist'), 'utf8')) as { plugins: unknown[] };
    expect(chained.plugins[1]).toEqual({ ...BANDWIDTH, type: 'tcqos', capabilities: { bandwidth: true, 'io.kubernetes.cri.pod-annotations': true } });
    expect(readFileSync(join(host, 'net.d', '10-tqins.conflist.tcqos-orig'), 'utf8')).toBe(CONFLIST);

    const undone = await runImage(['uninstall', '--bin-dir', '/host/bin', '--conf-dir', '/host/net.d'], {
      [join(host, 'bin')]: '/host/bin',
      [join(host, 'net.d')]: '/host/net.d',
    });
    expect(undone.exitCode).toBe(0);
    expect(readdirSync(join(host, 'bin'))).toEqual([]);
    expect(readdirSync(join(host, 'net.d'))).toEqual(['10-tqins.conflist']);
    expect(readFileSync(join(host, 'net.d', '10-tqins.conflist'), 'utf8')).toBe(CONFLIST);
  });

  it('carries ip, tc and nsenter with their libraries, for the agent', async () => {
    for (const [tool, args, printed] of [
      ['/usr/sbin/ip', ['-V'], /^ip utility, iproute2/],
      ['/usr/sbin/tc', ['-V'], /^tc utility, iproute2/],
      ['/usr/bin/nsenter', ['--version'], /^nsenter from util-linux/],
    ] as const) {
      const result = await runImage(args, {}, tool);
      expect(result.exitCode, `${tool}: ${result.stderr}`).toBe(0);
      expect(result.stdout).toMatch(printed);
    }
  });
});
