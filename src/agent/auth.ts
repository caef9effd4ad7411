/**
 * Who may read /metrics, decided by the API server as controller-runtime's secure metrics and
 * kube-rbac-proxy do: the request's bearer token is authenticated with a TokenReview, and its user
 * authorized with a SubjectAccessReview for `get` on the non-resource URL (RBAC's nonResourceURLs:
 * ["/metrics"]). No token: 401; a token the API server does not know: 401; a known user without
 * that grant: 403. Decisions are kept for a while per token (a scraper sends the same one every
 * few seconds): allowed for a minute, refused for ten seconds; failures to ask are not kept.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../log.ts';
import type { KubeApi } from './kube.ts';

export type Decision = { readonly status: 200; readonly user: string } | { readonly status: 401 | 403 | 500; readonly reason: string };

const ALLOWED_TTL_MS = 60_000;
const REFUSED_TTL_MS = 10_000;
/** Tokens remembered at most: a flood of random tokens cannot grow the agent's memory. */
const MAX_CACHED = 256;

export class ApiServerAuthorizer {
  private readonly api: Pick<KubeApi, 'reviewToken' | 'reviewAccess'>;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly cache = new Map<string, { readonly decision: Decision; readonly until: number }>();

  constructor(api: Pick<KubeApi, 'reviewToken' | 'reviewAccess'>, log: Logger, now: () => number = Date.now) {
    this.api = api;
    this.log = log;
    this.now = now;
  }

  /** May the request with this Authorization header `get` `path`? */
  async decide(authorization: string | undefined, path: string): Promise<Decision> {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    if (!token) return { status: 401, reason: 'a bearer token is required (Authorization: Bearer TOKEN)' };
    const key = createHash('sha256').update(`${path}\0${token}`).digest('hex');
    const cached = this.cache.get(key);
    if (cached && cached.until > this.now()) return cached.decision;
    let decision: Decision;
    try {
      decision = await this.ask(token, path);
    } catch (error) {
      const message = (error as Error).message.split('\n')[0];
      this.log.warn({ path, error: message }, 'could not ask the API server whether a request may read metrics');
      return { status: 500, reason: `could not check the token with the API server: ${message}` };
    }
    this.cache.delete(key);
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, { decision, until: this.now() + (decision.status === 200 ? ALLOWED_TTL_MS : REFUSED_TTL_MS) });
    if (decision.status !== 200) this.log.info({ path, status: decision.status, reason: decision.reason }, 'refused a request for metrics');
    return decision;
  }

  private async ask(token: string, path: string): Promise<Decision> {
    const user = await this.api.reviewToken(token);
    if (!user) return { status: 401, reason: 'the API server does not authenticate this token' };
    if (!(await this.api.reviewAccess(user, path, 'get'))) {
      return { status: 403, reason: `${user.username} may not get ${path} (grant it the nonResourceURLs ["${path}"], verb get)` };
    }
    return { status: 200, user: user.username };
  }
}
