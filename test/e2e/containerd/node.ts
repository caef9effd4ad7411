/**
 * A private "Kubernetes node" for one test file: Debian's containerd (CRI plugin) on its own socket,
 * root and state, started inside the runner namespace (`nsenter --net`, which keeps the host's mount
 * namespace, so its mounts stay visible to the teardown), with a CNI bin dir holding the reference
 * plugins and dist/tcqos, one conflist, and the locally built pause image imported.
 *
 * Everything lives in one temp dir (tqctr-ctr-*). stop() asks the daemon to exit, then removes what
 * is left by force; an 'exit' hook does the same if the test process ends first, and the next run
 * removes the leftovers of a killed one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TCQOS_BINARY } from '../../helpers/plugin.ts';
import { must, run } from '../../helpers/run.ts';
import { containerdConfig, daemonPaths, type DaemonPaths } from './config.ts';
import { CriClient, type PodPlacement } from './cri.ts';
import { buildPauseArchive, PAUSE_IMAGE } from './pause-image.ts';
import { cgroupParentOf, DIR_PREFIX, forceTeardown, removeLeftoverDaemons } from './teardown.ts';

const CONTAINERD = '/usr/bin/containerd';
const REFERENCE_PLUGINS = ['macvlan', 'host-local', 'loopback'];
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

function listed(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** overlayfs where the temp dir's filesystem takes it, else the native (copying) snapshotter. */
async function workingSnapshotter(dir: string): Promise<string> {
  const probe = join(dir, 'overlay-probe');
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((name) => join(probe, name)) as [string, string, string, string];
  for (const path of [lower, upper, work, merged]) mkdirSync(path, { recursive: true });
  const mounted = await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
  if (mounted.exitCode !== 0) return 'native';
  await must('umount', [merged]);
  return 'overlayfs';
}

export class ContainerdNode {
  readonly dir: string;
  readonly paths: DaemonPaths;
  /** host-local's dataDir: one file per allocated address. */
  readonly ipamDir: string;
  /** tcqos's registry (TCQOS_STATE_DIR). */
  readonly tcqosStateDir: string;
  readonly tcqosLogFile: string;
  /** Pods' log dir and cgroup parent (both named after this node's dir). */
  readonly placement: PodPlacement;
  readonly daemonLog: string;
  private snapshotter = 'overlayfs';
  private daemon: ChildProcess | undefined;
  private client: CriClient | undefined;
  private readonly onExit = (): void => forceTeardown(this.dir);

  constructor() {
    removeLeftoverDaemons();
    this.dir = mkdtempSync(DIR_PREFIX);
    process.once('exit', this.onExit);
    this.paths = daemonPaths(this.dir);
    this.ipamDir = join(this.dir, 'ipam');
    this.tcqosStateDir = join(this.dir, 'tcqos-state');
    this.tcqosLogFile = join(this.dir, 'tcqos.log');
    this.placement = { logDirectory: join(this.dir, 'pods'), cgroupParent: cgroupParentOf(this.dir) };
    this.daemonLog = join(this.dir, 'containerd.log');
    for (const path of [this.paths.cniBinDir, this.paths.cniConfDir, this.ipamDir, this.tcqosStateDir, this.placement.logDirectory]) mkdirSync(path);
    for (const plugin of REFERENCE_PLUGINS) symlinkSync(`/usr/lib/cni/${plugin}`, join(this.paths.cniBinDir, plugin));
    symlinkSync(TCQOS_BINARY, join(this.paths.cniBinDir, 'tcqos'));
  }

  /** The one conflist containerd loads (written before start: the CRI plugin reads it at init). */
  writeConflist(conflist: object): void {
    writeFileSync(join(this.paths.cniConfDir, '10-tqctr.conflist'), JSON.stringify(conflist, null, 2));
  }

  get cri(): CriClient {
    if (!this.client) throw new Error('containerd is not started');
    return this.client;
  }

  /** ctr against this daemon, in the CRI plugin's namespace. */
  private ctr(args: readonly string[], timeoutMs = 60_000): Promise<string> {
    return must('ctr', ['--address', this.paths.socket, '--namespace', 'k8s.io', ...args], { timeoutMs });
  }

  /**
   * Starts containerd inside `runner` (a netns name) with `pluginEnv` added to its environment (libcni
   * hands its environment to every plugin), imports the pause image and waits for the CRI service.
   */
  async start(runner: string, pluginEnv: Readonly<Record<string, string>> = {}): Promise<void> {
    const installed = await run(CONTAINERD, ['--version']);
    if (installed.exitCode !== 0) {
      throw new Error(`${CONTAINERD} --version failed (exit ${installed.exitCode}${installed.stderr ? `: ${installed.stderr.trim()}` : ''}): this suite needs the Debian packages containerd and runc (make deps installs them)`);
    }
    this.snapshotter = await workingSnapshotter(this.dir);
    const archive = await buildPauseArchive(this.dir);
    const config = join(this.dir, 'config.toml');
    writeFileSync(config, containerdConfig(this.paths, PAUSE_IMAGE, this.snapshotter));

    const log = openSync(this.daemonLog, 'a');
    this.daemon = spawn('nsenter', [`--net=/var/run/netns/${runner}`, CONTAINERD, '--config', config], {
      stdio: ['ignore', log, log],
      // Nothing of the test process (NODE_OPTIONS, vitest's variables) reaches containerd or the plugins.
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...pluginEnv },
    });
    closeSync(log);
    await this.waitForSocket();
    await this.ctr(['images', 'import', '--snapshotter', this.snapshotter, archive]);
    this.client = new CriClient(this.paths.socket);
    await this.client.version();
  }

  private async waitForSocket(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.daemon?.exitCode !== null) throw new Error(`containerd exited at start: ${this.logTail()}`);
      if ((await run('ctr', ['--address', this.paths.socket, 'version'], { timeoutMs: 5_000 })).exitCode === 0) return;
      await sleep(100);
    }
    throw new Error(`containerd did not answer on ${this.paths.socket} within ${START_TIMEOUT_MS} ms: ${this.logTail()}`);
  }

  // ---- what the node holds, read directly (not through tcqos or containerd) ----

  /** Addresses host-local holds for `network` (one file per address). */
  allocated(network: string): string[] {
    return listed(join(this.ipamDir, network)).filter((name) => name !== 'lock' && !name.startsWith('last_reserved_ip'));
  }

  /** Every file in tcqos's state dir, relative to it (records and locks). */
  tcqosStateFiles(): string[] {
    return readdirSync(this.tcqosStateDir, { recursive: true, withFileTypes: true })
      .filter((entry) => !entry.isDirectory())
      .map((entry) => relative(this.tcqosStateDir, join(entry.parentPath, entry.name)))
      .sort();
  }

  /** One file of the state dir (as tcqosStateFiles names it), parsed. */
  tcqosRecord(file: string): Record<string, unknown> {
    return JSON.parse(readFileSync(join(this.tcqosStateDir, file), 'utf8')) as Record<string, unknown>;
  }

  /** The pods' network namespaces containerd has mounted (netns_mounts_under_state_dir). */
  podNetnsMounts(): string[] {
    return listed(join(this.paths.state, 'io.containerd.grpc.v1.cri', 'netns'));
  }

  /** tcqos's log lines (pino JSON) about one container. */
  tcqosLog(containerId: string): Array<{ level: number; msg: string }> {
    let text = '';
    try {
      text = readFileSync(this.tcqosLogFile, 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as { level: number; msg: string; containerId?: string })
      .filter((line) => line.containerId === containerId);
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(this.daemonLog, 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no containerd log)';
    }
  }

  /** Asks containerd to exit (SIGTERM, bounded), then removes whatever is left by force. */
  async stop(): Promise<void> {
    this.client?.close();
    const daemon = this.daemon;
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      const exited = new Promise((resolve) => daemon.once('exit', resolve));
      daemon.kill('SIGTERM');
      await Promise.race([exited, sleep(STOP_TIMEOUT_MS)]);
    }
    forceTeardown(this.dir);
    process.removeListener('exit', this.onExit);
  }
}
