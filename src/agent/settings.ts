/**
 * The agent's settings: flags win over the settings file (the DaemonSet's ConfigMap), which wins
 * over the environment and the defaults. Everything is checked here, once, with messages naming
 * the flag or the file and key.
 */
import { readFileSync } from 'node:fs';
import type { BackoffSettings } from './backoff.ts';
import { UsageError } from '../cli/errors.ts';
import { stateDirFrom } from '../state/registry.ts';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface AgentSettings {
  readonly node: string;
  readonly listen: ListenAddress;
  /** A kubeconfig file; absent: in-cluster config when KUBERNETES_SERVICE_HOST is set, else the default one. */
  readonly kubeconfig?: string;
  readonly stateDir: string;
  readonly logLevel: string;
  /** Waits between failed list/watch attempts. */
  readonly relistBackoff: BackoffSettings;
  /** Every pod is looked at again this often (a failed apply is retried; nothing is re-applied unchanged). */
  readonly resyncSeconds: number;
  /** Registry records whose netns is gone are dropped this often. */
  readonly gcSeconds: number;
  /** The API server ends each watch after this long; the agent resumes it from the last resourceVersion. */
  readonly watchTimeoutSeconds: number;
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

/** What the settings file may hold; every key optional. */
interface SettingsFile {
  listen?: string;
  logLevel?: string;
  stateDir?: string;
  relistBackoff?: { initialSeconds?: number; maxSeconds?: number };
  resyncSeconds?: number;
  gcSeconds?: number;
  watchTimeoutSeconds?: number;
}

const FILE_KEYS = ['listen', 'logLevel', 'stateDir', 'relistBackoff', 'resyncSeconds', 'gcSeconds', 'watchTimeoutSeconds'];

export function resolveSettings(flags: AgentFlags, env: NodeJS.ProcessEnv): AgentSettings {
  const file = flags.settings === undefined ? {} : readSettingsFile(flags.settings);
  const node = flags.node ?? env['NODE_NAME'];
  if (!node) throw new UsageError('no node name: pass --node NAME or set NODE_NAME (the DaemonSet sets it from spec.nodeName)');
  const listenText = flags.listen ?? file.listen ?? DEFAULT_LISTEN;
  const backoff = file.relistBackoff ?? {};
  const relistBackoff = { initialSeconds: backoff.initialSeconds ?? 1, maxSeconds: backoff.maxSeconds ?? 30 };
  if (relistBackoff.maxSeconds < relistBackoff.initialSeconds) {
    throw new UsageError(`settings ${flags.settings}: relistBackoff.maxSeconds is below relistBackoff.initialSeconds`);
  }
  return {
    node,
    listen: parseListen(listenText, flags.listen !== undefined ? '--listen' : `settings ${flags.settings}: listen`),
    ...(flags.kubeconfig !== undefined ? { kubeconfig: flags.kubeconfig } : {}),
    // the plugin's rule (TCQOS_STATE_DIR, then the configured stateDir, then /run/tcqos), a flag first
    stateDir: flags.stateDir ?? stateDirFrom(env, file.stateDir),
    logLevel: file.logLevel ?? 'info',
    relistBackoff,
    resyncSeconds: file.resyncSeconds ?? 60,
    gcSeconds: file.gcSeconds ?? 60,
    watchTimeoutSeconds: file.watchTimeoutSeconds ?? 300,
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
  for (const key of ['listen', 'stateDir', 'logLevel'] as const) {
    if (file[key] !== undefined && typeof file[key] !== 'string') fail(`${key}: expected a string`);
  }
  if (file['logLevel'] !== undefined && !LOG_LEVELS.includes(file['logLevel'] as string)) {
    fail(`logLevel: expected one of ${LOG_LEVELS.join(', ')}`);
  }
  if (file['stateDir'] !== undefined && !(file['stateDir'] as string).startsWith('/')) fail('stateDir: expected an absolute path');
  for (const key of ['resyncSeconds', 'gcSeconds', 'watchTimeoutSeconds']) positive(file[key], key, fail);
  const backoff = file['relistBackoff'];
  if (backoff !== undefined) {
    if (!isObject(backoff)) fail('relistBackoff: expected an object {"initialSeconds": N, "maxSeconds": N}');
    for (const key of Object.keys(backoff as object)) {
      if (key !== 'initialSeconds' && key !== 'maxSeconds') fail(`relistBackoff: unknown key ${JSON.stringify(key)}`);
    }
    positive((backoff as Record<string, unknown>)['initialSeconds'], 'relistBackoff.initialSeconds', fail);
    positive((backoff as Record<string, unknown>)['maxSeconds'], 'relistBackoff.maxSeconds', fail);
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
