/**
 * GETs against the agent's endpoint over HTTP or HTTPS, as a scraper or a probe makes them: a
 * bearer token if given, and the agent's certificate trusted when the test knows it (else not
 * verified, as Prometheus' insecure_skip_verify). Each answer carries its wall time.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface AgentEndpoint {
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly port: number;
  /** The agent's certificate (PEM), to verify it by; absent: not verified. */
  readonly ca?: string;
}

export interface Answer {
  readonly status: number;
  readonly text: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** From the request's start to the answer's last byte. */
  readonly ms: number;
}

export function agentGet(endpoint: AgentEndpoint, path: string, options: { token?: string; timeoutMs?: number } = {}): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const headers = options.token ? { authorization: `Bearer ${options.token}` } : {};
    const common = { host: endpoint.host, port: endpoint.port, path, method: 'GET', headers, timeout: options.timeoutMs ?? 10_000, agent: false as const };
    const request =
      endpoint.scheme === 'https'
        ? httpsRequest({ ...common, ...(endpoint.ca ? { ca: endpoint.ca } : { rejectUnauthorized: false }) })
        : httpRequest(common);
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: response.headers, ms: performance.now() - started }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${path}: no answer within ${options.timeoutMs ?? 10_000} ms`)));
    request.on('error', reject);
    request.end();
  });
}
