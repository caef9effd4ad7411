/**
 * The agent's HTTP endpoint: /metrics for Prometheus, /healthz for the kubelet's probes. Nothing
 * else is served; nothing here changes state.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.ts';
import type { ListenAddress } from './settings.ts';

export interface Health {
  readonly ok: boolean;
  /** One line: why (not) healthy. */
  readonly detail: string;
}

export interface AgentServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

export async function serve(listen: ListenAddress, metrics: Registry, health: () => Health, log: Logger): Promise<AgentServer> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/healthz') {
      const { ok, detail } = health();
      response.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' }).end(`${detail}\n`);
    } else if (path === '/metrics') {
      metrics.metrics().then(
        (text) => response.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (error: unknown) => {
          log.error({ error: (error as Error).message }, 'collecting metrics failed');
          response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`collecting metrics failed: ${(error as Error).message}\n`);
        },
      );
    } else {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics or /healthz\n');
    }
  });
  await listenOn(server, listen);
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // a scraper's keep-alive connection must not hold the shutdown up
        server.closeAllConnections();
      }),
  };
}

function listenOn(server: Server, listen: ListenAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
