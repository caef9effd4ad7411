/**
 * The Grafana dashboard (deploy/grafana/tcqos-dashboard.json) without Grafana (it cannot be installed
 * here): its structure as Grafana reads it, its variables, the metric names its queries use (each one
 * tcqos or its agent exports), and every query parsed by promtool. test/integration/dashboard.test.ts
 * evaluates every query against Prometheus scraping the agent.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/agent/metrics.ts';
import { FAMILIES } from '../../src/metrics/families.ts';
import { PROMTOOL } from '../helpers/prometheus.ts';
import { run } from '../helpers/run.ts';

interface Target {
  refId: string;
  expr: string;
  legendFormat: string;
  datasource: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}

const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/tcqos-dashboard.json', import.meta.url), 'utf8')) as {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: unknown; definition?: string; allValue?: string }> };
  __inputs: Array<{ type: string; pluginId: string }>;
};
const queried = dashboard.panels.filter((panel) => panel.type !== 'row');
const dir = mkdtempSync(join(tmpdir(), 'tcqos-dashboard-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A query with the dashboard's variables set as "All" would set them, and Grafana's rate window. */
function expand(expr: string, rateInterval = '1m'): string {
  return expr
    .replaceAll('$__rate_interval', rateInterval)
    .replaceAll('$instance', '.*')
    .replaceAll('$namespace', '.*')
    .replaceAll('$pod', '.*')
    .replaceAll('$direction', 'egress|ingress');
}

describe('the dashboard', () => {
  it('is a Grafana dashboard with a Prometheus data source chosen on import', () => {
    expect(dashboard).toMatchObject({ uid: 'tcqos-pod-bandwidth', schemaVersion: expect.any(Number) });
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ type: 'datasource', pluginId: 'prometheus' })]);
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
  });

  it('has rows for pods and classes, uplinks and the agent, and panels that do not overlap within 24 columns', () => {
    expect(dashboard.panels.filter((p) => p.type === 'row').map((p) => p.title)).toEqual(['Pods and classes', 'Uplinks', 'Agent']);
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    const cells = new Set<string>();
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++) {
        for (let column = x; column < x + w; column++) {
          expect(cells.has(`${row},${column}`), `${panel.title} overlaps at ${row},${column}`).toBe(false);
          cells.add(`${row},${column}`);
        }
      }
    }
  });

  it('has panels that each say what they show, query the chosen data source, and name their series', () => {
    for (const panel of queried) {
      expect(panel.description?.length, panel.title).toBeGreaterThan(30);
      expect(panel.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets!) {
        expect(target.datasource).toEqual(panel.datasource);
        expect(target.legendFormat, `${panel.title} ${target.refId}`).toMatch(/\{\{/);
      }
      expect(new Set(panel.targets!.map((t) => t.refId)).size).toBe(panel.targets!.length);
    }
  });

  it('uses only variables it defines (and Grafana\'s rate window), and picks pods by namespace and node', () => {
    const defined = new Set(dashboard.templating.list.map((v) => v.name));
    const texts = [...queried.flatMap((p) => p.targets!.map((t) => t.expr)), ...dashboard.templating.list.map((v) => v.definition ?? '')];
    for (const text of texts) {
      for (const [, name] of text.matchAll(/\$(\w+)/g)) if (name !== '__rate_interval') expect(defined.has(name!), `$${name} in ${text}`).toBe(true);
    }
    expect(dashboard.templating.list.find((v) => v.name === 'pod')?.definition).toBe('label_values(tcqos_class_bytes_total{instance=~"$instance", pod_namespace=~"$namespace"}, pod)');
  });

  it('queries only metrics that tcqos or its agent export', async () => {
    const agentRegistry = new Registry();
    new AgentMetrics(agentRegistry);
    const exported = new Set([...FAMILIES.map((f) => f.name), ...(await agentRegistry.getMetricsAsJSON()).flatMap((m) => (String(m.type) === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name])), 'up']);
    const used = new Set(queried.flatMap((p) => p.targets!.flatMap((t) => [...t.expr.matchAll(/\b(tcqos_[a-z_]+|up)\{/g)].map((m) => m[1]!))));
    for (const name of used) expect(exported.has(name), name).toBe(true);
    // every family a panel is meant to show is shown somewhere
    for (const name of ['tcqos_class_bytes_total', 'tcqos_class_drops_total', 'tcqos_class_backlog_bytes', 'tcqos_uplink_guaranteed_bytes_per_second', 'tcqos_agent_reconciles_total', 'tcqos_agent_errors_total', 'tcqos_agent_watch_restarts_total']) {
      expect(used.has(name), name).toBe(true);
    }
  });

  it('has queries promtool parses, variables set as "All" would set them', async () => {
    const rules = queried.flatMap((panel) => panel.targets!.map((target, at) => ({ record: `tcqos:dashboard:panel${panel.id}_${at}`, expr: expand(target.expr) })));
    const file = join(dir, 'rules.json');
    // JSON is YAML.
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
    const checked = await run(PROMTOOL, ['check', 'rules', file]);
    expect(checked.exitCode, checked.stdout + checked.stderr).toBe(0);
    expect(checked.stdout).toMatch(new RegExp(`SUCCESS: ${rules.length} rules found`));
  });
});
