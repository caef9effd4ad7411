import { describe, expect, it } from 'vitest';
import { BASE_CONFIG, refusal } from '../helpers/config.ts';
import { IFNAME_PATTERN, isInterfaceName } from '../../src/config/names.ts';
import { normalizeConfig } from '../../src/config/normalize.ts';
import { guaranteeable } from '../../src/config/policy.ts';

const base = BASE_CONFIG;

describe('settings', () => {
  it('uplink: its name and capacity in bits per second; by default 5% reserved, a quarter of the rest per attachment, not enforced', async () => {
    const { settings } = await normalizeConfig({ ...base, uplink: { name: 'eth0.100', capacity: '10gbit' } });
    expect(settings.uplink).toEqual({ name: 'eth0.100', capacity: 10e9, reserve: 500e6, maxGuaranteePerAttachment: 2375e6, enforce: false });
    expect(guaranteeable(settings.uplink!)).toBe(9.5e9);
  });

  it('uplink: reserve, maxGuaranteePerAttachment and enforce as given', async () => {
    const uplink = { name: 'eth1', capacity: '1gbit', reserve: '100mbit', maxGuaranteePerAttachment: '900mbit', enforce: true };
    const { settings } = await normalizeConfig({ ...base, uplink });
    expect(settings.uplink).toEqual({ name: 'eth1', capacity: 1e9, reserve: 100e6, maxGuaranteePerAttachment: 900e6, enforce: true });
  });

  it('uplink: a small capacity still reserves the lowest shapeable rate', async () => {
    const { settings } = await normalizeConfig({ ...base, uplink: { name: 'eth1', capacity: '100kbit' } });
    expect(settings.uplink).toMatchObject({ reserve: 8_000, maxGuaranteePerAttachment: 23_000 });
  });

  it('cgroupRoot: kubelet\'s --cgroup-root', async () => {
    expect((await normalizeConfig({ ...base, cgroupRoot: '/kube' })).settings.cgroupRoot).toBe('/kube');
    expect((await normalizeConfig({ ...base, cgroupRoot: '/' })).settings.cgroupRoot).toBe('/');
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
    [{ uplink: { name: 'eth0', capacity: '1gbit', reserve: '1gbit' } }, /^uplink\.reserve: 1gbit must be below uplink\.capacity 1gbit$/],
    [{ uplink: { name: 'eth0', capacity: '8kbit' } }, /^uplink\.reserve: 8kbit \(the default, 5% and at least 8kbit\) must be below uplink\.capacity 8kbit$/],
    [{ uplink: { name: 'eth0', capacity: '1gbit', reserve: 'lots' } }, /^uplink\.reserve: "lots" is not a number/],
    [
      { uplink: { name: 'eth0', capacity: '1gbit', maxGuaranteePerAttachment: '1gbit' } },
      /^uplink\.maxGuaranteePerAttachment: 1gbit is above what the uplink can guarantee \(capacity 1gbit - reserve 50mbit = 950mbit\)$/,
    ],
    [{ uplink: { name: 'eth0', capacity: '1gbit', enforce: 'yes' } }, /^uplink\.enforce: must be boolean$/],
    [{ cgroupRoot: 'kube' }, /^cgroupRoot: must be an absolute path of plain names/],
    [{ cgroupRoot: '/kube pods' }, /^cgroupRoot: must be an absolute path of plain names/],
    [{ cgroupRoot: '/kube/../..' }, /^cgroupRoot: must not hold "\." or "\.\." components$/],
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
