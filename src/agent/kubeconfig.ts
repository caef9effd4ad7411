/**
 * Where the agent's API credentials come from, found explicitly, in kubectl's order: the flag; the
 * pod's service account when running in a pod; $KUBECONFIG; ~/.kube/config. The official client's
 * own search ends on http://localhost:8080 when it finds nothing, so an agent started without
 * credentials would retry a server that does not exist, forever; here it stops and says where it
 * looked instead.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { OperatorError } from '../cli/errors.ts';

/** Where an in-cluster pod finds its service account (the client reads it from there). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface LoadedKubeConfig {
  readonly config: KubeConfig;
  /** Where the credentials came from, for logs: "the pod's service account" or "kubeconfig /path". */
  readonly source: string;
  /** The API server's URL. */
  readonly server: string;
}

export function loadKubeConfig(file: string | undefined, env: NodeJS.ProcessEnv, home: string = homedir()): LoadedKubeConfig {
  const config = new KubeConfig();
  let source: string;
  if (file !== undefined) {
    loadFile(config, file, file);
    source = `kubeconfig ${file}`;
  } else if (env['KUBERNETES_SERVICE_HOST']) {
    if (!existsSync(`${SERVICE_ACCOUNT_DIR}/token`)) {
      throw new OperatorError(
        `KUBERNETES_SERVICE_HOST is set (running in a pod), but there is no service account token at ${SERVICE_ACCOUNT_DIR}/token: ` +
          'the pod needs its service account token mounted (automountServiceAccountToken), or pass --kubeconfig FILE',
      );
    }
    config.loadFromCluster();
    source = `the pod's service account (${SERVICE_ACCOUNT_DIR})`;
  } else if (env['KUBECONFIG']) {
    const files = env['KUBECONFIG'].split(delimiter).filter(Boolean);
    const missing = files.filter((path) => !existsSync(path));
    if (missing.length === files.length) {
      throw new OperatorError(`no kubeconfig: $KUBECONFIG names ${files.join(', ')}, and none of them exists (pass --kubeconfig FILE)`);
    }
    const present = files.filter((path) => existsSync(path));
    loadFile(config, present[0]!, `$KUBECONFIG ${present[0]}`);
    for (const path of present.slice(1)) {
      const more = new KubeConfig();
      loadFile(more, path, `$KUBECONFIG ${path}`);
      config.mergeConfig(more, true);
    }
    source = `kubeconfig ${present.join(delimiter)} (from $KUBECONFIG)`;
  } else {
    const path = join(home, '.kube', 'config');
    if (!existsSync(path)) {
      throw new OperatorError(
        `no kubeconfig found: no --kubeconfig flag, not in a pod (KUBERNETES_SERVICE_HOST is not set), $KUBECONFIG is not set, and ${path} does not exist; ` +
          'pass --kubeconfig FILE',
      );
    }
    loadFile(config, path, path);
    source = `kubeconfig ${path}`;
  }
  const cluster = config.getCurrentCluster();
  if (!cluster?.server) throw new OperatorError(`${source}: its current context names no cluster with a server`);
  return { config, source, server: cluster.server };
}

function loadFile(config: KubeConfig, path: string, what: string): void {
  try {
    config.loadFromFile(path);
  } catch (error) {
    throw new OperatorError(`cannot load the kubeconfig ${what}: ${(error as Error).message.split('\n')[0]}`);
  }
}
