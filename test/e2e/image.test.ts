/**
 * The image as the DaemonSet runs it: built offline by scripts/build-image.sh, then run by podman
 * to do the init container's `tcqos install` into host directories bind-mounted from a temporary
 * dir. Images, containers and podman's state all live under that temporary dir, removed after.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TCQOS_BINARY } from '../helpers/plugin.ts';
import { Podman } from '../helpers/podman.ts';
import { must, run, type Ran } from '../helpers/run.ts';

const IMAGE = `localhost/tcqos-test:tqins-${process.pid}`;
const BANDWIDTH = { type: 'bandwidth', capabilities: { bandwidth: true }, ingressRate: 20_000_000, ingressBurst: 200_000, egressRate: 10_000_000, egressBurst: 100_000 };
const CONFLIST = `${JSON.stringify({ cniVersion: '1.0.0', name: 'tqins-net', plugins: [{ type: 'ptp', ipam: { type: 'host-local', subnet: '198.18.66.0/24' } }, BANDWIDTH] }, null, 2)}\n`;

let podman: Podman;

/** A container as the init container runs: no network, no capabilities, a read-only image. */
function runImage(args: readonly string[], mounts: Readonly<Record<string, string>> = {}, entrypoint?: string): Promise<Ran> {
  return podman.run([
    'run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024',
    '--read-only', '--cap-drop', 'ALL',
    ...Object.entries(mounts).flatMap(([host, inside]) => ['--volume', `${host}:${inside}`]),
    ...(entrypoint ? ['--entrypoint', entrypoint] : []),
    IMAGE, ...args,
  ]);
}

beforeAll(async () => {
  podman = new Podman('tqins');
  await podman.buildImage(IMAGE);
}, 320_000);

afterAll(async () => {
  await podman?.remove(IMAGE);
});

describe('the tcqos image', () => {
  it('runs tcqos install into host directories, chaining the conflist and copying a binary that runs on the host', async () => {
    const host = join(podman.root, 'host');
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

  it('carries ip, tc, nsenter and flock with their libraries, for the agent', async () => {
    for (const [tool, args, printed] of [
      ['/usr/sbin/ip', ['-V'], /^ip utility, iproute2/],
      ['/usr/sbin/tc', ['-V'], /^tc utility, iproute2/],
      ['/usr/bin/nsenter', ['--version'], /^nsenter from util-linux/],
      ['/usr/bin/flock', ['--version'], /^flock from util-linux/],
    ] as const) {
      const result = await runImage(args, {}, tool);
      expect(result.exitCode, `${tool}: ${result.stderr}`).toBe(0);
      expect(result.stdout).toMatch(printed);
    }
  });
});
