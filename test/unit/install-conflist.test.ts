import { describe, expect, it } from 'vitest';
import { chainTcqos, ConflistParseError, parseConflist, TCQOS_CAPABILITIES, type ChainOutcome } from '../../src/operator/conflist.ts';

const PTP = { type: 'ptp', ipam: { type: 'host-local', subnet: '198.18.65.0/24' } };
const BANDWIDTH = { type: 'bandwidth', capabilities: { bandwidth: true }, ingressRate: 100_000_000, ingressBurst: 1_000_000, egressRate: 50_000_000, egressBurst: 500_000 };

function conflistText(plugins: object[], extra: object = {}, indent = 2): string {
  return `${JSON.stringify({ cniVersion: '1.0.0', name: 'net', ...extra, plugins }, null, indent)}\n`;
}

async function chain(text: string): Promise<ChainOutcome> {
  return chainTcqos(text, parseConflist(text));
}

function pluginsOf(outcome: ChainOutcome): Record<string, unknown>[] {
  if (!('text' in outcome)) throw new Error(`expected a rewrite, got ${JSON.stringify(outcome)}`);
  return (JSON.parse(outcome.text) as { plugins: Record<string, unknown>[] }).plugins;
}

describe('chaining tcqos into a conflist', () => {
  it('appends tcqos with both capabilities when there is no bandwidth entry', async () => {
    const outcome = await chain(conflistText([PTP]));
    expect(outcome.kind).toBe('added');
    expect(pluginsOf(outcome)).toEqual([PTP, { type: 'tcqos', capabilities: TCQOS_CAPABILITIES }]);
  });

  it('replaces the reference bandwidth entry in place, keeping its keys and adding the annotations capability', async () => {
    const portmap = { type: 'portmap', capabilities: { portMappings: true } };
    const outcome = await chain(conflistText([PTP, BANDWIDTH, portmap]));
    expect(outcome).toMatchObject({ kind: 'replaced-bandwidth', keptKeys: ['capabilities', 'ingressRate', 'ingressBurst', 'egressRate', 'egressBurst'] });
    expect(pluginsOf(outcome)).toEqual([PTP, { ...BANDWIDTH, type: 'tcqos', capabilities: TCQOS_CAPABILITIES }, portmap]);
  });

  it("accepts the Go-cased keys the reference plugin reads (tcqos renames them the same way)", async () => {
    const outcome = await chain(conflistText([PTP, { type: 'bandwidth', IngressRate: 1_000_000, IngressBurst: 100_000 }]));
    expect(outcome.kind).toBe('replaced-bandwidth');
  });

  it('keeps the rest of the document and its indentation and final newline', async () => {
    const text = conflistText([PTP], { disableCheck: true }, 4);
    const outcome = await chain(text);
    if (!('text' in outcome)) throw new Error('expected a rewrite');
    expect(outcome.text).toMatch(/^\{\n {4}"cniVersion"/);
    expect(outcome.text.endsWith('}\n')).toBe(true);
    expect(JSON.parse(outcome.text)).toMatchObject({ cniVersion: '1.0.0', name: 'net', disableCheck: true });
    const oneLine = JSON.stringify({ cniVersion: '0.4.0', name: 'n', plugins: [PTP] });
    const compact = await chain(oneLine);
    expect('text' in compact && compact.text).toBe(JSON.stringify({ cniVersion: '0.4.0', name: 'n', plugins: [PTP, { type: 'tcqos', capabilities: TCQOS_CAPABILITIES }] }));
  });

  it('leaves a conflist that already chains tcqos alone: chaining its own output changes nothing', async () => {
    for (const plugins of [[PTP], [PTP, BANDWIDTH]]) {
      const first = await chain(conflistText(plugins));
      if (!('text' in first)) throw new Error('expected a rewrite');
      expect(await chain(first.text)).toEqual({ kind: 'already-chained' });
    }
  });

  it('refuses a cniVersion tcqos does not speak', async () => {
    const outcome = await chain(conflistText([PTP], { cniVersion: '0.2.0' }));
    expect(outcome.kind).toBe('refused');
    expect('reason' in outcome && outcome.reason).toMatch(/cniVersion "0.2.0" is not one tcqos speaks/);
  });

  it('refuses a bandwidth entry with a key tcqos would reject at ADD, naming the key', async () => {
    const outcome = await chain(conflistText([PTP, { ...BANDWIDTH, ingresRate: 5 }]));
    expect(outcome.kind).toBe('refused');
    expect('reason' in outcome && outcome.reason).toMatch(/bandwidth entry is not a valid tcqos entry \(ingresRate: unknown key/);
  });

  it.each([
    ['not JSON', '{"plugins": [', /not JSON/],
    ['an array', '[]', /not a JSON object/],
    ['without plugins', '{"cniVersion": "1.0.0", "name": "x", "type": "bridge"}', /no "plugins" list/],
    ['with a plugin that is not an object', '{"plugins": ["bridge"]}', /no "plugins" list/],
  ])('refuses to parse a document %s', (_what, text, message) => {
    expect(() => parseConflist(text)).toThrow(ConflistParseError);
    expect(() => parseConflist(text)).toThrow(message);
  });
});
