import { describe, expect, it } from 'vitest';
import { SUPPORTED_VERSIONS } from '../../src/cni/version.ts';
import { ATTACHMENT_ENV, callMain } from '../helpers/main.ts';

const prevResult = (version: string) => ({
  cniVersion: version,
  interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/var/run/netns/x' }],
  ips: [{ address: '198.18.0.2/24', interface: 0 }],
});

describe.each(SUPPORTED_VERSIONS)('CNI protocol at cniVersion %s', (version) => {
  it('VERSION lists every supported version and echoes the asked one', async () => {
    const result = await callMain({ CNI_COMMAND: 'VERSION' }, JSON.stringify({ cniVersion: version }));
    expect(result.exitCode).toBe(0);
    expect(result.json).toEqual({ cniVersion: version, supportedVersions: [...SUPPORTED_VERSIONS] });
  });

  it('ADD with nothing to shape passes prevResult on byte for byte', async () => {
    // Odd but valid JSON: spacing, escapes, a float written as 1.0 and a big integer survive untouched.
    const raw = `{ "cniVersion" : "${version}", "interfaces":[{"name":"eth0","sandbox":"/var/run/netns/x","mac":"02:00:00:00:00:01"}],
      "ips": [ {"address":"198.18.0.2/24","interface":0} ], "dns": {"options":["ndots:\\u0035"]}, "x-weight": 1.0, "x-big": 12345678901234567890 }`;
    const stdin = `{"cniVersion":"${version}","name":"n","type":"tcqos","prevResult":${raw}}`;
    const result = await callMain({ CNI_COMMAND: 'ADD', ...ATTACHMENT_ENV }, stdin);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(raw);
  });

  it('ADD without prevResult is a configuration error', async () => {
    const result = await callMain(
      { CNI_COMMAND: 'ADD', ...ATTACHMENT_ENV },
      JSON.stringify({ cniVersion: version, name: 'n', type: 'tcqos', egressRate: 1000000, egressBurst: 100000 }),
    );
    expect(result.exitCode).not.toBe(0);
    expect(result.json).toMatchObject({ cniVersion: version, code: 7 });
    expect(String(result.json?.['msg'])).toMatch(/prevResult/);
  });

  it('ADD whose prevResult lacks CNI_IFNAME in the sandbox is refused', async () => {
    const result = await callMain(
      { CNI_COMMAND: 'ADD', ...ATTACHMENT_ENV, CNI_IFNAME: 'net1' },
      JSON.stringify({ cniVersion: version, name: 'n', type: 'tcqos', egressRate: 1000000, egressBurst: 100000, prevResult: prevResult(version) }),
    );
    expect(result.json).toMatchObject({ code: 7 });
    expect(String(result.json?.['msg'])).toMatch(/no interface "net1" inside the pod sandbox/);
  });

  it('an invalid config field is named in a code 7 error', async () => {
    const result = await callMain(
      { CNI_COMMAND: 'ADD', ...ATTACHMENT_ENV },
      JSON.stringify({ cniVersion: version, name: 'n', type: 'tcqos', egress: { rate: '5mbps' }, prevResult: prevResult(version) }),
    );
    expect(result.exitCode).toBe(1);
    expect(result.json).toMatchObject({ cniVersion: version, code: 7 });
    expect(String(result.json?.['msg'])).toMatch(/egress\.rate: .*BYTES per second/);
  });

  it('CHECK exists from 0.4.0, STATUS and GC from 1.1.0', async () => {
    for (const [command, since] of [['CHECK', '0.4.0'], ['STATUS', '1.1.0'], ['GC', '1.1.0']] as const) {
      const result = await callMain({ CNI_COMMAND: command, ...ATTACHMENT_ENV }, JSON.stringify({ cniVersion: version, name: 'n', type: 'tcqos' }));
      const allowed = SUPPORTED_VERSIONS.indexOf(version) >= SUPPORTED_VERSIONS.indexOf(since);
      if (allowed) expect(result.json?.['code'], `${command} at ${version}`).not.toBe(1);
      else expect(result.json, `${command} at ${version}`).toMatchObject({ code: 1 });
    }
  });
});

describe('CNI protocol errors', () => {
  const config = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'tcqos' });

  it.each([
    ['no CNI_COMMAND', {}, /CNI_COMMAND is not set/],
    ['an unknown CNI_COMMAND', { CNI_COMMAND: 'FROB' }, /CNI_COMMAND "FROB" is not one of/],
    ['ADD without CNI_CONTAINERID', { CNI_COMMAND: 'ADD', ...ATTACHMENT_ENV, CNI_CONTAINERID: '' }, /CNI_CONTAINERID is not set/],
    ['a container id with a slash', { CNI_COMMAND: 'ADD', ...ATTACHMENT_ENV, CNI_CONTAINERID: 'a/b' }, /CNI_CONTAINERID may hold only/],
    ['ADD without CNI_NETNS', { CNI_COMMAND: 'ADD', ...ATTACHMENT_ENV, CNI_NETNS: '' }, /CNI_NETNS is not set/],
    ['a relative CNI_NETNS', { CNI_COMMAND: 'CHECK', ...ATTACHMENT_ENV, CNI_NETNS: 'netns/x' }, /CNI_NETNS must be an absolute path/],
    ['ADD without CNI_IFNAME', { CNI_COMMAND: 'ADD', ...ATTACHMENT_ENV, CNI_IFNAME: '' }, /CNI_IFNAME is not set/],
    ['an interface name with a newline', { CNI_COMMAND: 'ADD', ...ATTACHMENT_ENV, CNI_IFNAME: 'eth0\nqdisc' }, /CNI_IFNAME "eth0\\nqdisc" is not an interface name/],
    ['an interface name of 16 characters', { CNI_COMMAND: 'DEL', ...ATTACHMENT_ENV, CNI_IFNAME: 'abcdefghijklmnop' }, /is not an interface name/],
    ['an interface name "..', { CNI_COMMAND: 'DEL', ...ATTACHMENT_ENV, CNI_IFNAME: '..' }, /is not an interface name/],
    ['malformed CNI_ARGS', { CNI_COMMAND: 'DEL', ...ATTACHMENT_ENV, CNI_ARGS: 'IgnoreUnknown=1;oops' }, /CNI_ARGS has "oops"/],
  ])('%s is error code 4', async (_name, env, message) => {
    const result = await callMain(env as Record<string, string>, config);
    expect(result.exitCode).toBe(1);
    expect(result.json).toMatchObject({ code: 4 });
    expect(String(result.json?.['msg'])).toMatch(message);
  });

  it.each([
    ['truncated JSON', '{"cniVersion":"1.0.0",'],
    ['not JSON at all', 'hello'],
    ['a JSON array', '[1,2]'],
    ['a JSON string', '"x"'],
    ['empty stdin', ''],
  ])('%s on stdin is error code 6', async (_name, stdin) => {
    const result = await callMain({ CNI_COMMAND: 'ADD', ...ATTACHMENT_ENV }, stdin);
    expect(result.json).toMatchObject({ code: 6 });
  });

  it('stdin over 1 MiB is refused with code 6', async () => {
    const result = await callMain({ CNI_COMMAND: 'ADD', ...ATTACHMENT_ENV }, Buffer.alloc(1024 * 1024 + 1, ' '));
    expect(result.json).toMatchObject({ code: 6 });
    expect(String(result.json?.['msg'])).toMatch(/more than the 1048576 accepted/);
  });

  it.each([['0.2.0'], ['2.0.0'], ['']])('cniVersion "%s" is error code 1', async (version) => {
    const result = await callMain({ CNI_COMMAND: 'ADD', ...ATTACHMENT_ENV }, JSON.stringify({ cniVersion: version, type: 'tcqos' }));
    expect(result.json).toMatchObject({ code: 1 });
  });

  it('DEL at a cniVersion tcqos does not speak still succeeds, so the rest of the chain can clean up', async () => {
    const result = await callMain({ CNI_COMMAND: 'DEL', ...ATTACHMENT_ENV }, JSON.stringify({ cniVersion: '0.2.0', type: 'tcqos' }));
    expect(result).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('VERSION with empty stdin answers with the latest version', async () => {
    const result = await callMain({ CNI_COMMAND: 'VERSION' }, '');
    expect(result.json?.['cniVersion']).toBe('1.1.0');
  });

  it('errors are one JSON document on stdout and nothing else', async () => {
    const result = await callMain({ CNI_COMMAND: 'ADD', ...ATTACHMENT_ENV }, '{');
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    expect(Object.keys(result.json ?? {}).sort()).toEqual(['cniVersion', 'code', 'details', 'msg']);
  });

  it('DEL of an attachment whose netns is gone succeeds with empty stdout', async () => {
    const result = await callMain({ CNI_COMMAND: 'DEL', ...ATTACHMENT_ENV }, config);
    expect(result).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('DEL with an empty CNI_NETNS succeeds', async () => {
    const result = await callMain({ CNI_COMMAND: 'DEL', ...ATTACHMENT_ENV, CNI_NETNS: '' }, config);
    expect(result).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it.each([
    ['that does not exist', '/var/run/netns/tcqos-unit-does-not-exist', /does not exist/],
    ['that is a file, not a netns', '/etc/hostname', /is not a network namespace/],
    ["that is the plugin's own netns", '/proc/self/ns/net', /refusing to shape the host/],
  ])('ADD into a CNI_NETNS %s is error code 4', async (_case, netns, message) => {
    const result = await callMain(
      { CNI_COMMAND: 'ADD', ...ATTACHMENT_ENV, CNI_NETNS: netns },
      JSON.stringify({
        cniVersion: '1.0.0', type: 'tcqos', egressRate: 1e6, egressBurst: 1e5,
        prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/x' }] },
      }),
    );
    expect(result.json).toMatchObject({ code: 4 });
    expect(String(result.json?.['msg'])).toMatch(message);
  });

  it('without CNI_COMMAND the binary is the operator tool', async () => {
    expect((await callMain({}, '', ['version'])).stdout).toMatch(/^tcqos \d+\.\d+\.\d+/);
    expect((await callMain({}, '', ['frobnicate'])).exitCode).toBe(2);
  });
});
