/**
 * Debian's Prometheus server and node_exporter for tests, on loopback only: each started on a free
 * 127.0.0.1 port with its own temporary directory, stopped by its pid (SIGTERM, then SIGKILL) with the
 * directory removed — by `stop()` in afterAll, and by an exit hook if a test run dies before that.
 * Also a small reader of the text exposition format, so tests compare series, not lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PROMETHEUS = '/usr/bin/prometheus';
export const NODE_EXPORTER = '/usr/bin/prometheus-node-exporter';
export const PROMTOOL = '/usr/bin/promtool';

// ---------------------------------------------------------------------------------------------
// Daemons: spawn, wait until an URL answers, stop.

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

class Daemon {
  private output = '';
  private readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private readonly dir: string;
  readonly address: string;

  private constructor(child: ChildProcess, dir: string, address: string) {
    this.child = child;
    this.dir = dir;
    this.address = address;
    running.add(child);
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-8_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      child.once('error', (error) => {
        this.output += `\n${error.message}`;
        resolve(null);
      });
      child.once('exit', (code) => resolve(code));
    });
    void this.exited.then(() => running.delete(child));
  }

  /**
   * Starts `file` with the args `argsFor(port)` on a free loopback port until `readyPath` answers 200.
   * The port is free when picked but could be taken before the daemon binds it: then it tries again.
   */
  static async start(name: string, file: string, dir: string, argsFor: (address: string) => string[], readyPath: string): Promise<Daemon> {
    for (let attempt = 1; ; attempt++) {
      const address = `127.0.0.1:${await freeLoopbackPort()}`;
      const daemon = new Daemon(spawn(file, argsFor(address), { stdio: ['ignore', 'pipe', 'pipe'] }), dir, address);
      const ready = await daemon.waitReady(`http://${address}${readyPath}`, 30_000);
      if (ready) return daemon;
      await daemon.kill();
      if (attempt === 3 || !/address already in use/i.test(daemon.output)) {
        await rm(dir, { recursive: true, force: true });
        throw new Error(`${name} (${file}) did not become ready on ${address}:\n${daemon.output}`);
      }
    }
  }

  /** The tail of what the daemon printed, for failure messages. */
  get log(): string {
    return this.output;
  }

  private async waitReady(url: string, timeoutMs: number): Promise<boolean> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    const deadline = Date.now() + timeoutMs;
    while (!exited && Date.now() < deadline) {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
        await response.arrayBuffer();
        if (response.ok) return true;
      } catch {
        // Not listening yet.
      }
      await sleep(100);
    }
    return false;
  }

  private async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) {
      this.child.kill('SIGTERM');
      const stopped = await Promise.race([this.exited.then(() => true), sleep(5_000).then(() => false)]);
      if (!stopped) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
  }

  async stop(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no TCP port from the kernel');
  return address.port;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function getText(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const body = await response.text();
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${body}`);
  return body;
}

// ---------------------------------------------------------------------------------------------
// node_exporter with the textfile collector alone.

export interface NodeExporter {
  /** host:port, to give Prometheus as a target. */
  readonly address: string;
  /** What a scrape returns now. */
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/** node_exporter serving the `*.prom` files of `textfileDir`, and nothing else of the host. */
export async function startNodeExporter(textfileDir: string): Promise<NodeExporter> {
  const dir = await mkdtemp(join(tmpdir(), 'tqmet-nodeexp-'));
  const daemon = await Daemon.start(
    'node_exporter',
    NODE_EXPORTER,
    dir,
    (address) => ['--collector.disable-defaults', '--collector.textfile', `--collector.textfile.directory=${textfileDir}`, `--web.listen-address=${address}`],
    '/metrics',
  );
  return {
    address: daemon.address,
    metrics: () => getText(`http://${daemon.address}/metrics`),
    stop: () => daemon.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// Prometheus server.

export interface ScrapeJob {
  readonly job: string;
  /** host:port of each endpoint. */
  readonly targets: readonly string[];
  /** Default /metrics. */
  readonly metricsPath?: string;
  /** Default http. */
  readonly scheme?: 'http' | 'https';
  /** Sent as `Authorization: Bearer TOKEN`. */
  readonly bearerToken?: string;
  /** Accept any serving certificate (a self-signed one, as the agent makes by default). */
  readonly insecureSkipVerify?: boolean;
}

/** One series of an instant vector: its labels (with job and instance) and value. */
export interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PrometheusServer {
  readonly url: string;
  /** An instant query now; throws unless Prometheus answers with a vector. */
  query(promql: string): Promise<Series[]>;
  /** Polls `promql` until it returns series that satisfy `until` (default: any); the failure names the targets' health. */
  waitForSeries(promql: string, options?: { timeoutMs?: number; until?: (series: Series[]) => boolean }): Promise<Series[]>;
  stop(): Promise<void>;
}

/** Prometheus scraping `jobs` every `scrapeIntervalSeconds` (default 1), storing into a temporary directory. */
export async function startPrometheus(jobs: readonly ScrapeJob[], options: { scrapeIntervalSeconds?: number } = {}): Promise<PrometheusServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tqmet-prom-'));
  const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    scrape_configs: jobs.map((job) => ({
      job_name: job.job,
      metrics_path: job.metricsPath ?? '/metrics',
      ...(job.scheme ? { scheme: job.scheme } : {}),
      ...(job.bearerToken ? { authorization: { type: 'Bearer', credentials: job.bearerToken } } : {}),
      ...(job.insecureSkipVerify ? { tls_config: { insecure_skip_verify: true } } : {}),
      static_configs: [{ targets: job.targets }],
    })),
  };
  // JSON is YAML.
  await writeFile(join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
  const daemon = await Daemon.start(
    'prometheus',
    PROMETHEUS,
    dir,
    (address) => [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${address}`],
    '/-/ready',
  );
  const url = `http://${daemon.address}`;

  const query = async (promql: string): Promise<Series[]> => {
    const body = JSON.parse(await getText(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`)) as {
      status: string;
      error?: string;
      data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    if (body.status !== 'success' || body.data?.resultType !== 'vector') throw new Error(`query ${promql}: ${body.error ?? JSON.stringify(body.data)}`);
    return body.data.result.map((item) => ({ labels: item.metric, value: Number(item.value[1]) }));
  };

  const targetHealth = async (): Promise<string> => {
    const body = JSON.parse(await getText(`${url}/api/v1/targets`)) as {
      data: { activeTargets: { scrapeUrl: string; health: string; lastError: string }[] };
    };
    return body.data.activeTargets.map((t) => `${t.scrapeUrl}: ${t.health}${t.lastError ? ` (${t.lastError})` : ''}`).join('\n');
  };

  return {
    url,
    query,
    async waitForSeries(promql, { timeoutMs = 30_000, until = (series: Series[]) => series.length > 0 } = {}) {
      const deadline = Date.now() + timeoutMs;
      let last: Series[] = [];
      while (Date.now() < deadline) {
        last = await query(promql);
        if (until(last)) return last;
        await sleep(250);
      }
      throw new Error(
        `no satisfying answer to ${promql} within ${timeoutMs} ms; last: ${JSON.stringify(last)}\n` +
          `targets:\n${await targetHealth()}\nprometheus log tail:\n${daemon.log}`,
      );
    },
    stop: () => daemon.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// The text exposition format, read back.

export interface ExposedFamily {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly samples: Series[];
}

/**
 * Families by name, in the order exposed. Enough of the format for what prom-client and node_exporter
 * print (HELP, TYPE, samples with labels, no timestamps); a line it cannot read throws.
 */
export function parseExposition(text: string): Map<string, ExposedFamily> {
  const families = new Map<string, { name: string; help: string; type: string; samples: Series[] }>();
  const family = (name: string) => {
    let found = families.get(name);
    if (found === undefined) families.set(name, (found = { name, help: '', type: 'untyped', samples: [] }));
    return found;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (kind === 'HELP') family(name).help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      else family(name).type = rest;
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) throw new Error(`not a sample line: ${line}`);
    const [, name, labelText = '', value] = sample as unknown as [string, string, string | undefined, string];
    const labels: Record<string, string> = {};
    for (const match of labelText.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    // A summary's or histogram's samples carry suffixes; tcqos exposes neither, so the name is the family's.
    family(name).samples.push({ labels, value: Number(value) });
  }
  return families;
}
