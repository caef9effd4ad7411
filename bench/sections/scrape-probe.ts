/**
 * The scrape bench's client, run inside the runner namespace next to the agent (test/helpers/
 * child-rpc.ts): timed GETs of /metrics, and /healthz polled at a fixed pace, each answer timed from
 * request to last byte, with a fresh connection (TLS handshake included) every time.
 *
 *   node scrape-probe.ts '{"scheme": "https", "host": "127.0.0.1", "port": 9190}'
 */
import { serveCalls } from '../../test/helpers/child-rpc.ts';
import { agentGet, type AgentEndpoint } from '../../test/helpers/agent-client.ts';

const endpoint = JSON.parse(process.argv[2] ?? '{}') as AgentEndpoint;

const probe = {
  /** One GET: status, wall ms, bytes. */
  async get(path: string, token?: string): Promise<{ status: number; ms: number; bytes: number }> {
    const answer = await agentGet(endpoint, path, token ? { token } : {});
    return { status: answer.status, ms: answer.ms, bytes: Buffer.byteLength(answer.text) };
  },
  /** GETs `path` every `intervalMs` for `durationMs`, one at a time; the wall ms of each (-1: failed). */
  async poll(path: string, durationMs: number, intervalMs: number, token?: string): Promise<number[]> {
    const times: number[] = [];
    const end = Date.now() + durationMs;
    while (Date.now() < end) {
      const started = Date.now();
      try {
        const answer = await agentGet(endpoint, path, { ...(token ? { token } : {}), timeoutMs: 10_000 });
        times.push(answer.status === 200 ? answer.ms : -1);
      } catch {
        times.push(-1);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, intervalMs - (Date.now() - started))));
    }
    return times;
  },
};

serveCalls(probe, { ready: true }, () => undefined);
