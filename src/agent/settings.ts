/**
 * The agent's settings: flags win over the settings file (the DaemonSet's ConfigMap), which wins
 * over the environment and the defaults. Everything is checked here, once, with messages naming
 * the flag or the file and key.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { BackoffSettings } from './backoff.ts';
import { UsageError } from '../cli/errors.ts';
import { stateDirFrom } from '../state/registry.ts';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Who may read /metrics. kubernetes: HTTPS, and a bearer token the API server authenticates
 * (TokenReview) and authorizes for GET on the non-resource URL /metrics (SubjectAccessReview).
 * none: plain HTTP to anyone who can connect, so only on a loopback address.
 */
export type MetricsAuth = 'kubernetes' | 'none';

export interface AgentSettings {
  readonly node: string;
  readonly listen: ListenAddress;
  /** A kubeconfig file; absent: the pod's service account in a pod, else $KUBECONFIG or ~/.kube/config. */
  readonly kubeconfig?: string;
  readonly stateDir: string;
  readonly logLevel: string;
  /** Waits between failed list/watch attempts. */
  readonly relistBackoff: BackoffSettings;
  /** Every pod is converged on its desired state this often: drift is healed within one period. */
  readonly resyncSeconds: number;
  /** Registry records whose netns is gone are dropped this often. */
  readonly gcSeconds: number;
  /** The API server ends each watch after this long; the agent resumes it from the last resourceVersion. */
  readonly watchTimeoutSeconds: number;
  /** Pods converged at once (never two workers on one pod). */
  readonly workers: number;
  /** Waits before a pod that failed is tried again: doubling from the first to the cap, per pod. */
  readonly retryBackoff: BackoffSettings;
  /** The counters /metrics serves are read in the background this often. */
  readonly metricsRefreshSeconds: number;
  readonly metricsAuth: MetricsAuth;
  /** A serving certificate and key (PEM) for /metrics, e.g. from a Secret; absent: a self-signed one made at start. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
}

export interface AgentFlags {
  readonly node?: string;
  readonly listen?: string;
  readonly kubeconfig?: string;
  readonly settings?: string;
  readonly stateDir?: string;
}

export const DEFAULT_LISTEN = '0.0.0.0:9190';
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const METRICS_AUTH: readonly MetricsAuth[] = ['kubernetes', 'none'];

/** What the settings file may hold; every key optional. */
interface SettingsFile {
  listen?: string;
  logLevel?: string;
  stateDir?: string;
  relistBackoff?: { initialSeconds?: number; maxSeconds?: number };
  resyncSeconds?: number;
  gcSeconds?: number;
  watchTimeoutSeconds?: number;
  workers?: number;
  retryBackoff?: { initialSeconds?: number; maxSeconds?: number };
  metricsRefreshSeconds?: number;
  metricsAuth?: MetricsAuth;
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

const FILE_KEYS = [
  'listen',
  'logLevel',
  'stateDir',
  'relistBackoff',
  'resyncSeconds',
  'gcSeconds',
  'watchTimeoutSeconds',
  'workers',
  'retryBackoff',
  'metricsRefreshSeconds',
  'metricsAuth',
  'tlsCertFile',
  'tlsKeyFile',
];

export function resolveSettings(flags: AgentFlags, env: NodeJS.ProcessEnv): AgentSettings {
  const file = flags.settings === undefined ? {} : readSettingsFile(flags.settings);
  const where = (key: string) => `settings ${flags.settings}: ${key}`;
  const node = flags.node ?? env['NODE_NAME'];
  if (!node) throw new UsageError('no node name: pass --node NAME or set NODE_NAME (the DaemonSet sets it from spec.nodeName)');
  const listenText = flags.listen ?? file.listen ?? DEFAULT_LISTEN;
  const listen = parseListen(listenText, flags.listen !== undefined ? '--listen' : where('listen'));
  const relistBackoff = backoffOf(file.relistBackoff, { initialSeconds: 1, maxSeconds: 30 }, 'relistBackoff', where);
  const retryBackoff = backoffOf(file.retryBackoff, { initialSeconds: 0.05, maxSeconds: 300 }, 'retryBackoff', where);
  const metricsAuth = file.metricsAuth ?? 'kubernetes';
  if (metricsAuth === 'none' && !isLoopback(listen.host)) {
    throw new UsageError(
      `${flags.listen !== undefined ? '--listen' : where('listen')}: ${listenText} with metricsAuth "none" would serve every pod's counters to anyone who can reach it: ` +
        'listen on a loopback address (127.0.0.1:PORT) or keep metricsAuth "kubernetes"',
    );
  }
  if ((file.tlsCertFile === undefined) !== (file.tlsKeyFile === undefined)) throw new UsageError(`${where('tlsCertFile and tlsKeyFile')}: give both or neither`);
  if (file.tlsCertFile !== undefined && metricsAuth === 'none') throw new UsageError(`${where('tlsCertFile')}: only with metricsAuth "kubernetes" (HTTPS)`);
  return {
    node,
    listen,
    ...(flags.kubeconfig !== undefined ? { kubeconfig: flags.kubeconfig } : {}),
    // the plugin's rule (TCQOS_STATE_DIR, then the configured stateDir, then /run/tcqos), a flag first
    stateDir: flags.stateDir ?? stateDirFrom(env, file.stateDir),
    logLevel: file.logLevel ?? 'info',
    relistBackoff,
    resyncSeconds: file.resyncSeconds ?? 60,
    gcSeconds: file.gcSeconds ?? 60,
    watchTimeoutSeconds: file.watchTimeoutSeconds ?? 300,
    workers: file.workers ?? 8,
    retryBackoff,
    metricsRefreshSeconds: file.metricsRefreshSeconds ?? 5,
    metricsAuth,
    ...(file.tlsCertFile !== undefined && file.tlsKeyFile !== undefined ? { tls: { certFile: file.tlsCertFile, keyFile: file.tlsKeyFile } } : {}),
  };
}

/** "HOST:PORT", an IPv6 host in brackets ("[::]:9190"). */
export function parseListen(text: string, where: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    throw new UsageError(`${where}: ${JSON.stringify(text)} is not HOST:PORT (e.g. 0.0.0.0:9190 or [::]:9190)`);
  }
  return { host: match[1] ?? match[2]!, port };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

function backoffOf(value: SettingsFile['relistBackoff'], defaults: BackoffSettings, name: string, where: (key: string) => string): BackoffSettings {
  const backoff = { initialSeconds: value?.initialSeconds ?? defaults.initialSeconds, maxSeconds: value?.maxSeconds ?? defaults.maxSeconds };
  if (backoff.maxSeconds < backoff.initialSeconds) throw new UsageError(where(`${name}.maxSeconds is below ${name}.initialSeconds`));
  return backoff;
}

function readSettingsFile(path: string): SettingsFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`settings ${path}: ${(error as Error).message.split('\n')[0]}`);
  }
  const fail = (problem: string): never => {
    throw new UsageError(`settings ${path}: ${problem}`);
  };
  if (!isObject(parsed)) fail('expected a JSON object');
  const file = parsed as Record<string, unknown>;
  for (const key of Object.keys(file)) {
    if (!FILE_KEYS.includes(key)) fail(`unknown key ${JSON.stringify(key)} (known: ${FILE_KEYS.join(', ')})`);
  }
  for (const key of ['listen', 'stateDir', 'logLevel', 'metricsAuth', 'tlsCertFile', 'tlsKeyFile'] as const) {
    if (file[key] !== undefined && typeof file[key] !== 'string') fail(`${key}: expected a string`);
  }
  if (file['logLevel'] !== undefined && !LOG_LEVELS.includes(file['logLevel'] as string)) {
    fail(`logLevel: expected one of ${LOG_LEVELS.join(', ')}`);
  }
  if (file['metricsAuth'] !== undefined && !METRICS_AUTH.includes(file['metricsAuth'] as MetricsAuth)) {
    fail(`metricsAuth: expected one of ${METRICS_AUTH.map((value) => JSON.stringify(value)).join(', ')}`);
  }
  for (const key of ['stateDir', 'tlsCertFile', 'tlsKeyFile']) {
    if (file[key] !== undefined && !(file[key] as string).startsWith('/')) fail(`${key}: expected an absolute path`);
  }
  for (const key of ['resyncSeconds', 'gcSeconds', 'watchTimeoutSeconds', 'metricsRefreshSeconds']) positive(file[key], key, fail);
  const workers = file['workers'];
  if (workers !== undefined && !(Number.isInteger(workers) && (workers as number) >= 1 && (workers as number) <= 64)) fail('workers: expected a whole number from 1 to 64');
  for (const name of ['relistBackoff', 'retryBackoff']) {
    const backoff = file[name];
    if (backoff === undefined) continue;
    if (!isObject(backoff)) fail(`${name}: expected an object {"initialSeconds": N, "maxSeconds": N}`);
    for (const key of Object.keys(backoff as object)) {
      if (key !== 'initialSeconds' && key !== 'maxSeconds') fail(`${name}: unknown key ${JSON.stringify(key)}`);
    }
    positive((backoff as Record<string, unknown>)['initialSeconds'], `${name}.initialSeconds`, fail);
    positive((backoff as Record<string, unknown>)['maxSeconds'], `${name}.maxSeconds`, fail);
  }
  return file as SettingsFile;
}

function positive(value: unknown, key: string, fail: (problem: string) => never): void {
  if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
    fail(`${key}: expected a number of seconds above 0`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
