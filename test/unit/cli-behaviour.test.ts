/**
 * The operator CLI's manners, through src/main as the binary calls it: exit codes (0 done, 1 refused,
 * failed or nothing found, 2 bad usage), one-line messages without the parser's words, help, the
 * bare invocation in a terminal, and content errors in --config and validate's input.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/main.ts';

const dir = mkdtempSync(join(tmpdir(), 'tcqos-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function tcqos(argv: string[], options: { env?: Record<string, string>; stdin?: string; terminal?: boolean } = {}) {
  let stdout = '';
  let stderr = '';
  const exitCode = await main({
    argv,
    env: { TCQOS_STATE_DIR: join(dir, 'state'), ...options.env },
    stdinIsTerminal: options.terminal ?? false,
    readStdin: async () => Buffer.from(options.stdin ?? ''),
    writeStdout: (text) => void (stdout += text),
    writeStderr: (text) => void (stderr += text),
  });
  return { exitCode, stdout, stderr };
}

/** Every failure is one line on stderr, naming the command. */
function expectOneLine(stderr: string, command: string) {
  expect(stderr.endsWith('\n')).toBe(true);
  expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(stderr).toMatch(new RegExp(`^tcqos${command ? ` ${command}` : ''}: `));
}

describe('run bare', () => {
  it('in a terminal: says what it is, its version and the CNI versions, as the reference plugins do (exit 0)', async () => {
    const ran = await tcqos([], { terminal: true });
    expect(ran).toMatchObject({ exitCode: 0, stdout: '' });
    expect(ran.stderr).toMatch(/^CNI tcqos plugin v\d+\.\d+\.\d+\nCNI protocol versions supported: 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0\n/);
  });

  it('with standard input not a terminal, or CNI_COMMAND set: a CNI plugin answering in CNI JSON', async () => {
    const piped = await tcqos([], { terminal: false });
    expect(piped.exitCode).not.toBe(0);
    expect(JSON.parse(piped.stdout)).toMatchObject({ code: expect.any(Number), msg: expect.stringMatching(/CNI_COMMAND/) });
    const version = await tcqos([], { terminal: true, env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"1.0.0"}' });
    expect(JSON.parse(version.stdout)).toMatchObject({ cniVersion: '1.0.0', supportedVersions: expect.arrayContaining(['1.1.0']) });
    const withArgs = await tcqos(['list'], { env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"1.0.0"}' });
    expect(JSON.parse(withArgs.stdout)).toMatchObject({ cniVersion: '1.0.0' });
  });
});

describe('help', () => {
  it.each([['-h'], ['--help'], ['help']])('tcqos %s lists every command (exit 0)', async (flag) => {
    const ran = await tcqos([flag]);
    expect(ran.exitCode).toBe(0);
    for (const command of ['list', 'stats', 'top', 'update', 'validate', 'schema', 'gc', 'completion', 'agent']) expect(ran.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    expect(ran.stdout).not.toMatch(/__complete/);
  });

  it('help COMMAND and COMMAND -h print the command\'s usage', async () => {
    const viaHelp = await tcqos(['help', 'stats']);
    const viaFlag = await tcqos(['stats', '-h']);
    expect(viaHelp).toEqual(viaFlag);
    expect(viaFlag.stdout).toMatch(/^Usage: tcqos stats/);
  });

  it('an unknown command is one line, with a guess (exit 2)', async () => {
    const ran = await tcqos(['stast']);
    expect(ran.exitCode).toBe(2);
    expectOneLine(ran.stderr, '');
    expect(ran.stderr).toMatch(/unknown command "stast" \(did you mean stats\?\)/);
  });
});

describe('flags', () => {
  it('a value starting with a dash is a value, refused in tcqos\'s words (exit 2)', async () => {
    const ran = await tcqos(['stats', '--interval', '-1']);
    expect(ran.exitCode).toBe(2);
    expectOneLine(ran.stderr, 'stats');
    expect(ran.stderr).toMatch(/--interval takes seconds from 0 to 60, not "-1"/);
    expect(ran.stderr).not.toMatch(/ambiguous|argument|option/i);
  });

  it.each([
    [['stats', '--bogus'], /unknown flag --bogus/],
    [['stats', '--contaner', 'x'], /unknown flag --contaner \(did you mean --container\?\)/],
    [['stats', '--container'], /--container needs a value/],
    [['stats', '--json=yes'], /--json takes no value/],
    [['list', 'extra'], /unexpected argument "extra"/],
    [['update', '--container', 'a'], /--container, --ifname and --config are all required/],
    [['validate'], /name one FILE/],
    [['completion', 'fish'], /name the shell: bash or zsh/],
    [['top', '--sort', 'speed'], /--sort is one of name, rate, use, drops, backlog, not "speed"/],
    [['validate', '--kind', 'yaml', '-'], /--kind is one of conflist, entry, annotation, not "yaml"/],
  ])('%j: bad usage, one line (exit 2)', async (argv, message) => {
    const ran = await tcqos(argv);
    expect(ran.exitCode).toBe(2);
    expectOneLine(ran.stderr, argv[0]!);
    expect(ran.stderr).toMatch(message);
    expect(ran.stderr).toMatch(new RegExp(`see "tcqos ${argv[0]} --help"`));
  });
});

describe('content errors and nothing found: one line, exit 1', () => {
  it('stats --container naming no attachment', async () => {
    const ran = await tcqos(['stats', '--container', 'nope']);
    expect(ran.exitCode).toBe(1);
    expectOneLine(ran.stderr, 'stats');
    expect(ran.stderr).toMatch(/no attachment of container nope is registered/);
  });

  it('update with invalid JSON on standard input, whatever its line breaks', async () => {
    const ran = await tcqos(['update', '--container', 'a', '--ifname', 'eth0', '--config', '-'], { stdin: '{\n  "egress": {\n' });
    expect(ran.exitCode).toBe(1);
    expectOneLine(ran.stderr, 'update');
    expect(ran.stderr).toMatch(/--config - is not valid JSON \(/);
  });

  it('update with a missing file names it, without the system\'s error code', async () => {
    const ran = await tcqos(['update', '--container', 'a', '--ifname', 'eth0', '--config', join(dir, 'missing.json')]);
    expect(ran.exitCode).toBe(1);
    expectOneLine(ran.stderr, 'update');
    expect(ran.stderr).toMatch(/cannot read --config .*missing\.json: no such file$/m);
    expect(ran.stderr).not.toMatch(/ENOENT/);
  });

  it('update of an attachment nobody registered', async () => {
    const ran = await tcqos(['update', '--container', 'nope', '--ifname', 'eth0', '--config', '-'], { stdin: '{"egress":{"rate":"1mbit"}}' });
    expect(ran.exitCode).toBe(1);
    expectOneLine(ran.stderr, 'update');
    expect(ran.stderr).toMatch(/no attachment nope\/eth0/);
  });
});

describe('tcqos validate', () => {
  const file = (name: string, content: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };

  it('accepts the example conflists and prints the policy each shapes with (exit 0)', async () => {
    for (const name of ['seed-macvlan.conflist', 'bandwidth-dropin.conflist', 'kubernetes-annotations.conflist']) {
      const ran = await tcqos(['validate', new URL(`../../conf/${name}`, import.meta.url).pathname]);
      expect(ran.exitCode, ran.stderr).toBe(0);
      expect(ran.stdout).toMatch(/: valid conflist \(plugins\[\d\]\): egress /);
    }
  });

  it('tells a conflist, an entry and an annotation apart, each checked by ADD\'s rules', async () => {
    const entry = await tcqos(['validate', '-'], { stdin: JSON.stringify({ type: 'tcqos', egress: { rate: '40mbit' }, logLevel: 'info' }) });
    expect(entry).toMatchObject({ exitCode: 0 });
    expect(entry.stdout).toMatch(/valid entry: egress 40 Mbit\/s/);
    const annotation = await tcqos(['validate', '-'], { stdin: JSON.stringify({ egress: { rate: '40mbit', classes: [{ name: 'db', rate: '10mbit', peers: ['10.0.0.0/8'] }] } }) });
    expect(annotation.stdout).toMatch(/valid annotation: egress 40 Mbit\/s: db 10 Mbit\/s/);
    const conflist = await tcqos(['validate', file('net.conflist', { cniVersion: '1.0.0', name: 'net', plugins: [{ type: 'macvlan' }, { type: 'tcqos', ingress: { rate: '5mbit' } }] })]);
    expect(conflist.stdout).toMatch(/valid conflist \(plugins\[1\]\): ingress 5 Mbit\/s/);
  });

  it.each([
    ['an entry with a mistyped key', { type: 'tcqos', egres: { rate: '1mbit' } }, undefined, /egres: unknown key, did you mean "egress"\?/],
    ['an annotation over its own rate', { egress: { rate: '10mbit', classes: [{ name: 'a', rate: '20mbit' }] } }, undefined, /annotation tcqos\.io\/policy: egress\.classes\[0\]\.rate: 20mbit is above/],
    ['a bad unit', { egress: { rate: '10mbitt' } }, 'entry', /egress\.rate: "10mbitt": unknown rate unit/],
    ['a conflist without tcqos', { cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'macvlan' }] }, undefined, /no plugin of type "tcqos"/],
    ['a conflist whose entry is refused', { cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'tcqos', egress: { rate: 'fast' } }] }, undefined, /plugins\[0\]: egress\.rate/],
    ['not JSON', '{"egress": ', undefined, /is not valid JSON/],
  ])('refuses %s in one line (exit 1)', async (_label, document, kind, message) => {
    const ran = await tcqos(['validate', ...(kind ? ['--kind', kind] : []), file('doc.json', document)]);
    expect(ran.exitCode).toBe(1);
    expectOneLine(ran.stderr, 'validate');
    expect(ran.stderr).toMatch(message);
  });
});

describe('tcqos list and gc on a registry with a stale record', () => {
  it('marks the attachment whose netns is gone, in the table and in JSON, and counts it in no uplink total', async () => {
    const stateDir = join(dir, 'stale-state');
    const base = {
      version: 1,
      ifname: 'eth0',
      network: 'net',
      config: {},
      policy: { egress: { rate: 40_000_000, ceil: 40_000_000, classes: [{ name: 'default', rate: 40_000_000, ceil: 40_000_000, priority: 0, unshaped: false }], defaultClass: 'default', rules: [] } },
      sources: { egress: 'config' },
      classIds: { egress: { default: 16 } },
      uplink: { name: 'up0', capacity: 100_000_000 },
      createdAt: '2026-12-03T00:00:00Z',
      updatedAt: '2026-12-03T00:00:00Z',
    };
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(stateDir, 'attachments'), { recursive: true });
    // A live netns file tcqos can stat (its own namespace will do for listing), and one that is gone.
    writeFileSync(join(stateDir, 'attachments', 'eth0@live.json'), JSON.stringify({ ...base, containerId: 'live', netns: '/proc/self/ns/net', pod: { namespace: 'a', name: 'z' } }));
    writeFileSync(join(stateDir, 'attachments', 'eth0@gone.json'), JSON.stringify({ ...base, containerId: 'gone', netns: join(dir, 'no-such-netns'), pod: { namespace: 'a', name: 'b' } }));
    const env = { TCQOS_STATE_DIR: stateDir };
    const listed = await tcqos(['list'], { env });
    expect(listed.exitCode).toBe(0);
    const rows = listed.stdout.split('\n');
    expect(rows[0]).toMatch(/STALE$/);
    // Sorted by pod: a/b (stale) before a/z.
    expect(rows[1]).toMatch(/^gone\s+a\/b .* yes$/);
    expect(rows[2]).toMatch(/^live\s+a\/z .* no$/);
    expect(listed.stdout).toMatch(/up0\s+100 Mbit\/s\s+0 bit\/s\s+no\s+40 Mbit\/s \(40\.0%\)/);
    expect(listed.stderr).toMatch(/1 stale attachment .* "tcqos gc" drops its record/);
    const json = JSON.parse((await tcqos(['list', '--json'], { env })).stdout) as { attachments: Array<{ containerId: string; stale: boolean }>; uplinks: Array<{ egress: number }> };
    expect(json.attachments.map((a) => [a.containerId, a.stale])).toEqual([['gone', true], ['live', false]]);
    expect(json.uplinks[0]!.egress).toBe(40_000_000);

    const updated = await tcqos(['update', '--container', 'gone', '--ifname', 'eth0', '--config', '-'], { env, stdin: '{}' });
    expect(updated.exitCode).toBe(1);
    expect(updated.stderr).toMatch(/gone\/eth0 is stale: its network namespace .* is gone; "tcqos gc" drops its record/);

    expect((await tcqos(['gc', '--dry-run'], { env })).stdout).toBe(`would drop gone/eth0 (a/b): network namespace ${join(dir, 'no-such-netns')} is gone\n`);
    const collected = await tcqos(['gc'], { env });
    expect(collected).toMatchObject({ exitCode: 0, stdout: `dropped gone/eth0 (a/b): network namespace ${join(dir, 'no-such-netns')} was gone\n` });
    expect(await tcqos(['gc'], { env })).toMatchObject({ exitCode: 0, stdout: 'nothing to drop\n' });
    expect(JSON.parse((await tcqos(['list', '--json'], { env })).stdout).attachments.map((a: { containerId: string }) => a.containerId)).toEqual(['live']);
  });
});
