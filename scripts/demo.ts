/**
 * `make demo`: the seed's policy (conf/seed-macvlan.conflist) on a real macvlan pod, through libcni
 * with the reference macvlan and host-local plugins, then configured vs measured iperf3 throughput
 * per class in both directions. Everything lives in namespaces named tqdemo-* that are removed at
 * the end (also on Ctrl-C or failure); addresses are the conflist's 198.18.0.0/24.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repo = new URL('..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'tcqos-demo-'));
const driver = join(repo, 'build', 'cnidriver');
const RUNNER = 'tqdemo-runner';
const POD = 'tqdemo-pod';
const PEERS = [
  { netns: 'tqdemo-db', address: '198.18.0.3', cls: 'db', mbit: 40 },
  { netns: 'tqdemo-other', address: '198.18.0.4', cls: 'rest', mbit: 10 },
];
const NAMESPACES = [RUNNER, POD, ...PEERS.map((p) => p.netns)];

function sh(file: string, args: string[], input?: string): string {
  const result = spawnSync(file, args, { input, encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')}: ${result.stderr || result.stdout}`);
  return result.stdout;
}

function removeNamespaces(): void {
  for (const netns of NAMESPACES) spawnSync('ip', ['netns', 'del', netns], { stdio: 'ignore' });
}

function cleanup(): void {
  removeNamespaces();
  rmSync(work, { recursive: true, force: true });
}

function libcni(command: 'add' | 'check' | 'del', conflist: string): string {
  return sh('ip', ['netns', 'exec', RUNNER, 'env', `CNI_PATH=/usr/lib/cni:${repo}dist`, `CNI_CACHE_DIR=${work}/cache`,
    driver, command, conflist, `/var/run/netns/${POD}`, 'eth0', 'tcqos-demo']);
}

/** Both peers at once, one direction; returns receiver-side Mbit/s per peer. */
async function measure(direction: 'egress' | 'ingress'): Promise<number[]> {
  const servers = PEERS.map((peer, i) =>
    spawn('ip', ['netns', 'exec', peer.netns, 'iperf3', '-s', '-1', '-p', String(5201 + i)], { stdio: 'ignore' }),
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  const clients = PEERS.map(
    (peer, i) =>
      new Promise<number>((resolve, reject) => {
        const args = ['netns', 'exec', POD, 'iperf3', '-c', peer.address, '-p', String(5201 + i), '-t', '5', '-O', '1', '-J'];
        if (direction === 'ingress') args.push('-R');
        const client = spawn('ip', args);
        let out = '';
        client.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        client.on('close', () => {
          try {
            resolve((JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e6);
          } catch {
            reject(new Error(`iperf3 failed: ${out.slice(0, 300)}`));
          }
        });
      }),
  );
  try {
    return await Promise.all(clients);
  } finally {
    for (const server of servers) server.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => (cleanup(), process.exit(130)));
  removeNamespaces(); // leftovers of an interrupted earlier demo
  sh('bash', [join(repo, 'test/e2e/cnidriver/build.sh'), driver]);

  // The conflist users copy, with the macvlan parent and IPAM state pointed at the demo's own.
  const conflist = JSON.parse(readFileSync(join(repo, 'conf/seed-macvlan.conflist'), 'utf8'));
  conflist.plugins[0].master = 'demo0';
  conflist.plugins[0].ipam.dataDir = join(work, 'ipam');
  const conflistPath = join(work, 'seed.conflist');
  writeFileSync(conflistPath, JSON.stringify(conflist));

  for (const netns of NAMESPACES) sh('ip', ['netns', 'add', netns]);
  sh('ip', ['-n', RUNNER, 'link', 'add', 'name', 'demo0', 'type', 'veth', 'peer', 'name', 'demo1']);
  for (const link of ['demo0', 'demo1']) sh('ip', ['-n', RUNNER, 'link', 'set', link, 'up']);
  for (const peer of PEERS) {
    sh('ip', ['-n', RUNNER, 'link', 'add', 'link', 'demo0', 'name', 'peer', 'netns', peer.netns, 'type', 'macvlan', 'mode', 'bridge']);
    sh('ip', ['-n', peer.netns, 'addr', 'add', `${peer.address}/24`, 'dev', 'peer']);
    sh('ip', ['-n', peer.netns, 'link', 'set', 'peer', 'up']);
  }

  console.log('ADD  macvlan + host-local + tcqos (conf/seed-macvlan.conflist) through libcni');
  const result = JSON.parse(libcni('add', conflistPath)) as { ips: Array<{ address: string }> };
  console.log(`     pod eth0 got ${result.ips[0]?.address}`);
  libcni('check', conflistPath);
  console.log('CHECK passed\n');
  console.log(sh('ip', ['netns', 'exec', POD, 'tc', 'class', 'show', 'dev', 'eth0']));

  console.log('class   direction  configured  measured (TCP goodput)  ratio  (exact shaping at MTU 1500: 95.6%)');
  for (const direction of ['egress', 'ingress'] as const) {
    const measured = await measure(direction);
    PEERS.forEach((peer, i) => {
      const mbit = measured[i]!;
      console.log(
        `${peer.cls.padEnd(7)} ${direction.padEnd(10)} ${`${peer.mbit} Mbit/s`.padEnd(11)} ${`${mbit.toFixed(2)} Mbit/s`.padEnd(23)} ${((mbit / peer.mbit) * 100).toFixed(1)}%`,
      );
    });
  }
  libcni('del', conflistPath);
  console.log('\nDEL  done; removing the demo namespaces');
}

main()
  .catch((error: unknown) => {
    console.error(`demo failed: ${(error as Error).message}`);
    process.exitCode = 1;
  })
  .finally(cleanup);
