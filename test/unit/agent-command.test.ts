/** `tcqos agent`'s flags, settings file and their precedence, through src/main as the binary calls it. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../src/agent/kubeconfig.ts';
import { parseListen, resolveSettings } from '../../src/agent/settings.ts';
import { UsageError } from '../../src/cli/errors.ts';
import { callMain } from '../helpers/main.ts';

const dir = mkdtempSync(join(tmpdir(), 'tcqos-agent-command-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function settingsFile(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('tcqos agent flags', () => {
  it('--help names every flag and the settings keys', async () => {
    const result = await callMain({}, '', ['agent', '--help']);
    expect(result.exitCode).toBe(0);
    for (const flag of ['--node NAME', '--listen HOST:PORT', '--kubeconfig FILE', '--settings FILE', '--state-dir DIR', 'relistBackoff', '/healthz', '/metrics']) {
      expect(result.stdout).toContain(flag);
    }
  });

  it('needs a node name, from --node or NODE_NAME (exit 2)', async () => {
    const result = await callMain({}, '', ['agent']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/^tcqos agent: no node name: pass --node NAME or set NODE_NAME \(the DaemonSet sets it from spec\.nodeName\)/);
  });

  it('refuses an unknown flag and a bad --listen (exit 2)', async () => {
    expect((await callMain({}, '', ['agent', '--nodes', 'a'])).exitCode).toBe(2);
    const result = await callMain({ NODE_NAME: 'a' }, '', ['agent', '--listen', '9190']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/^tcqos agent: --listen: "9190" is not HOST:PORT \(e\.g\. 0\.0\.0\.0:9190 or \[::\]:9190\)/);
  });

  it('fails with the kubeconfig named when it cannot be read (exit 1)', async () => {
    const result = await callMain({ NODE_NAME: 'a' }, '', ['agent', '--kubeconfig', join(dir, 'missing'), '--listen', '127.0.0.1:0']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/^tcqos agent: cannot load the kubeconfig .*missing: ENOENT/);
  });

  it('fails, saying where it looked, when $KUBECONFIG names no file (exit 1) instead of trying localhost:8080', async () => {
    const result = await callMain({ NODE_NAME: 'a', KUBECONFIG: join(dir, 'nope') }, '', ['agent', '--listen', '127.0.0.1:0']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe(`tcqos agent: no kubeconfig: $KUBECONFIG names ${join(dir, 'nope')}, and none of them exists (pass --kubeconfig FILE)\n`);
  });
});

describe('finding the kubeconfig', () => {
  it('names every place it looked when there is none', () => {
    expect(() => loadKubeConfig(undefined, {}, join(dir, 'home'))).toThrow(
      `no kubeconfig found: no --kubeconfig flag, not in a pod (KUBERNETES_SERVICE_HOST is not set), $KUBECONFIG is not set, and ${join(dir, 'home', '.kube', 'config')} does not exist; pass --kubeconfig FILE`,
    );
  });

  it('says what is missing in a pod without its service account token', () => {
    expect(() => loadKubeConfig(undefined, { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }, dir)).toThrow(
      /^KUBERNETES_SERVICE_HOST is set \(running in a pod\), but there is no service account token at \/var\/run\/secrets\/kubernetes\.io\/serviceaccount\/token/,
    );
  });

  it('uses ~/.kube/config and says so', () => {
    const home = join(dir, 'home-with-config');
    mkdirSync(join(home, '.kube'), { recursive: true });
    writeFileSync(
      join(home, '.kube', 'config'),
      JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: { server: 'https://10.1.2.3:6443' } }], users: [{ name: 'u', user: {} }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x' }),
    );
    const loaded = loadKubeConfig(undefined, {}, home);
    expect(loaded.source).toBe(`kubeconfig ${join(home, '.kube', 'config')}`);
    expect(loaded.server).toBe('https://10.1.2.3:6443');
  });
});

describe('agent settings', () => {
  it('defaults: NODE_NAME, 0.0.0.0:9190, TCQOS_STATE_DIR else /run/tcqos', () => {
    expect(resolveSettings({}, { NODE_NAME: 'n1' })).toEqual({
      node: 'n1',
      listen: { host: '0.0.0.0', port: 9190 },
      stateDir: '/run/tcqos',
      logLevel: 'info',
      relistBackoff: { initialSeconds: 1, maxSeconds: 30 },
      resyncSeconds: 60,
      gcSeconds: 60,
      watchTimeoutSeconds: 300,
      workers: 8,
      retryBackoff: { initialSeconds: 0.05, maxSeconds: 300 },
      metricsRefreshSeconds: 5,
      metricsAuth: 'kubernetes',
    });
    expect(resolveSettings({}, { NODE_NAME: 'n1', TCQOS_STATE_DIR: '/tmp/state' }).stateDir).toBe('/tmp/state');
  });

  it('flags win over the settings file, which wins over the environment', () => {
    const file = settingsFile('agent.json', {
      listen: '127.0.0.1:9300',
      logLevel: 'debug',
      stateDir: '/var/lib/tcqos',
      relistBackoff: { initialSeconds: 0.5, maxSeconds: 10 },
      resyncSeconds: 30,
      gcSeconds: 120,
      watchTimeoutSeconds: 600,
      workers: 2,
      retryBackoff: { initialSeconds: 0.2, maxSeconds: 60 },
      metricsRefreshSeconds: 10,
      tlsCertFile: '/etc/tcqos/tls/tls.crt',
      tlsKeyFile: '/etc/tcqos/tls/tls.key',
    });
    expect(resolveSettings({ settings: file }, { NODE_NAME: 'n1' })).toEqual({
      node: 'n1',
      listen: { host: '127.0.0.1', port: 9300 },
      stateDir: '/var/lib/tcqos',
      logLevel: 'debug',
      relistBackoff: { initialSeconds: 0.5, maxSeconds: 10 },
      resyncSeconds: 30,
      gcSeconds: 120,
      watchTimeoutSeconds: 600,
      workers: 2,
      retryBackoff: { initialSeconds: 0.2, maxSeconds: 60 },
      metricsRefreshSeconds: 10,
      metricsAuth: 'kubernetes',
      tls: { certFile: '/etc/tcqos/tls/tls.crt', keyFile: '/etc/tcqos/tls/tls.key' },
    });
    const flagged = resolveSettings({ settings: file, node: 'n2', listen: '[::1]:9400', stateDir: '/srv/state', kubeconfig: '/k' }, { NODE_NAME: 'n1', TCQOS_STATE_DIR: '/tmp/env' });
    expect(flagged).toMatchObject({ node: 'n2', listen: { host: '::1', port: 9400 }, stateDir: '/srv/state', kubeconfig: '/k' });
    // the environment's state dir wins over the file's, as for the plugin
    expect(resolveSettings({ settings: file }, { NODE_NAME: 'n1', TCQOS_STATE_DIR: '/tmp/env' }).stateDir).toBe('/tmp/env');
  });

  it.each([
    ['not JSON', '{', /^settings .*: (Expected|Unexpected)/],
    ['an array', [], /expected a JSON object$/],
    ['an unknown key', { listen: '0.0.0.0:1', resync: 5 }, /unknown key "resync" \(known: listen, logLevel/],
    ['a bad log level', { logLevel: 'loud' }, /logLevel: expected one of trace, debug/],
    ['a relative stateDir', { stateDir: 'run/tcqos' }, /stateDir: expected an absolute path$/],
    ['zero seconds', { resyncSeconds: 0 }, /resyncSeconds: expected a number of seconds above 0$/],
    ['a cap below the first wait', { relistBackoff: { initialSeconds: 5, maxSeconds: 1 } }, /relistBackoff.maxSeconds is below relistBackoff.initialSeconds$/],
    ['a bad listen address', { listen: 'localhost' }, /listen: "localhost" is not HOST:PORT/],
    ['no workers', { workers: 0 }, /workers: expected a whole number from 1 to 64$/],
    ['a retry cap below its first wait', { retryBackoff: { initialSeconds: 5, maxSeconds: 1 } }, /retryBackoff.maxSeconds is below retryBackoff.initialSeconds$/],
    ['an unknown metricsAuth', { metricsAuth: 'basic' }, /metricsAuth: expected one of "kubernetes", "none"$/],
    ['unprotected metrics on every address', { metricsAuth: 'none' }, /listen: 0\.0\.0\.0:9190 with metricsAuth "none" would serve every pod's counters to anyone/],
    ['a certificate without its key', { tlsCertFile: '/etc/tls.crt' }, /tlsCertFile and tlsKeyFile: give both or neither$/],
  ])('refuses a settings file with %s, naming the file', (_what, content, message) => {
    const file = settingsFile('bad.json', content);
    let thrown: unknown;
    try {
      resolveSettings({ settings: file }, { NODE_NAME: 'n1' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(UsageError);
    expect((thrown as Error).message).toContain(file);
    expect((thrown as Error).message).toMatch(message);
  });

  it.each([
    ['0.0.0.0:9190', { host: '0.0.0.0', port: 9190 }],
    ['[::]:9190', { host: '::', port: 9190 }],
    ['node.example:80', { host: 'node.example', port: 80 }],
  ])('reads the listen address %s', (text, address) => {
    expect(parseListen(text, '--listen')).toEqual(address);
  });

  it.each(['::1:9190', '0.0.0.0', '0.0.0.0:99999', ':9190'])('refuses the listen address %s', (text) => {
    expect(() => parseListen(text, '--listen')).toThrow(UsageError);
  });
});
