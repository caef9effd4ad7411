/**
 * The agent's endpoint: /metrics for Prometheus, /healthz for the kubelet's probes. Over HTTPS when
 * /metrics is protected (the default): /healthz stays open to anyone, /metrics asks the authorizer
 * (a bearer token the API server vouches for). Over plain HTTP, on a loopback address only, when
 * it is not. Nothing here changes state, and no handler waits on a child process: /metrics serves
 * text read in the background.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.ts';
import type { Decision } from './auth.ts';
import type { ServingCertificate } from './tls.ts';
import type { ListenAddress } from './settings.ts';

export interface Health {
  readonly ok: boolean;
  /** One line: why (not) healthy. */
  readonly detail: string;
}

export interface Endpoints {
  health(): Health;
  /** The text of /metrics. */
  metrics(): Promise<string>;
  readonly metricsContentType: string;
  /** Decides who may read /metrics; absent: anyone who can connect (loopback only). */
  readonly authorize?: (authorization: string | undefined, path: string) => Promise<Decision>;
}

export interface AgentServer {
  readonly address: AddressInfo;
  readonly scheme: 'http' | 'https';
  close(): Promise<void>;
}

const TEXT = { 'content-type': 'text/plain; charset=utf-8' };

export async function serve(listen: ListenAddress, tls: ServingCertificate | undefined, endpoints: Endpoints, log: Logger): Promise<AgentServer> {
  const handler = (request: IncomingMessage, response: ServerResponse) => {
    void handle(request, response, endpoints, log).catch((error: unknown) => {
      log.error({ error: (error as Error).message }, 'answering a request failed');
      if (!response.headersSent) response.writeHead(500, TEXT);
      response.end();
    });
  };
  const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler) : createHttpServer(handler);
  await listenOn(server, listen);
  return {
    address: server.address() as AddressInfo,
    scheme: tls ? 'https' : 'http',
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // a scraper's keep-alive connection must not hold the shutdown up
        server.closeAllConnections();
      }),
  };
}

async function handle(request: IncomingMessage, response: ServerResponse, endpoints: Endpoints, log: Logger): Promise<void> {
  const path = (request.url ?? '/').split('?')[0]!;
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD' }).end();
  } else if (path === '/healthz') {
    const { ok, detail } = endpoints.health();
    response.writeHead(ok ? 200 : 503, TEXT).end(`${detail}\n`);
  } else if (path === '/metrics') {
    const decision = endpoints.authorize ? await endpoints.authorize(request.headers.authorization, path) : undefined;
    if (decision && decision.status !== 200) {
      const headers = decision.status === 401 ? { ...TEXT, 'www-authenticate': 'Bearer realm="tcqos-agent"' } : TEXT;
      response.writeHead(decision.status, headers).end(`${decision.reason}\n`);
      return;
    }
    let text: string;
    try {
      text = await endpoints.metrics();
    } catch (error) {
      log.error({ error: (error as Error).message }, 'rendering metrics failed');
      response.writeHead(500, TEXT).end(`rendering metrics failed: ${(error as Error).message}\n`);
      return;
    }
    response.writeHead(200, { 'content-type': endpoints.metricsContentType }).end(text);
  } else {
    response.writeHead(404, TEXT).end('not found: try /metrics or /healthz\n');
  }
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
