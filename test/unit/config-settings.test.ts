import { describe, expect, it } from 'vitest';
import { BASE_CONFIG, refusal } from '../helpers/config.ts';
import { IFNAME_PATTERN, isInterfaceName } from '../../src/config/names.ts';
import { normalizeConfig } from '../../src/config/normalize.ts';

const base = BASE_CONFIG;

describe('settings', () => {
  it('uplink: its name and capacity in bits per second', async () => {
    const { settings } = await normalizeConfig({ ...base, uplink: { name: 'eth0.100', capacity: '10gbit' } });
    expect(settings.uplink).toEqual({ name: 'eth0.100', capacity: 10e9 });
  });

  it('stateDir and the log settings', async () => {
    const { settings } = await normalizeConfig({ ...base, stateDir: '/run/tcqos-test', logFile: '/var/log/tcqos.log' });
    expect(settings).toEqual({ hostSide: true, stateDir: '/run/tcqos-test', logFile: '/var/log/tcqos.log', logLevel: 'info' });
  });

  it('none given: warn level to stderr, no state dir, no uplink', async () => {
    expect((await normalizeConfig(base)).settings).toEqual({ hostSide: true, logLevel: 'warn' });
  });

  it.each([
    [{ uplink: { name: 'eth0' } }, /^uplink\.capacity: is required$/],
    [{ uplink: { capacity: '1gbit' } }, /^uplink\.name: is required$/],
    [{ uplink: { name: 'eth0; reboot', capacity: '1gbit' } }, /^uplink\.name: is not an interface name \(1-15 of A-Z a-z 0-9 _ \. -, starting with a letter or digit\)$/],
    [{ uplink: { name: 'a-very-long-name0', capacity: '1gbit' } }, /^uplink\.name: is not an interface name/],
    [{ uplink: { name: 'eth0', capacity: '10gbps' } }, /^uplink\.capacity: "10gbps": in tc "gbps" means BYTES per second/],
    [{ stateDir: 'run/tcqos' }, /^stateDir: must be an absolute path$/],
    [{ stateDir: '/sys/fs/tcqos' }, /^stateDir: must not be under \/proc, \/sys or \/dev$/],
    [{ stateDir: '/run/../proc/tcqos' }, /^stateDir: must not be under \/proc, \/sys or \/dev$/],
    [{ logFile: '/var/../dev/tty1' }, /^logFile: must not be under \/proc, \/sys or \/dev$/],
  ])('%j is refused', async (extra, message) => {
    expect(await refusal(extra)).toMatch(message);
  });
});

describe('the interface-name rule', () => {
  it.each(['eth0', 'net1', 'eth0.100', 'veth_a-b', 'a'.repeat(15), '0'])('%s is a name', (name) => {
    expect(isInterfaceName(name)).toBe(true);
  });

  it.each(['', '-eth0', '.x', 'a'.repeat(16), 'eth0\n', 'eth 0', 'eth/0', 'é'])('%j is not', (name) => {
    expect(isInterfaceName(name)).toBe(false);
    expect(IFNAME_PATTERN.test(name)).toBe(false);
  });
});
