/**
 * `tcqos install` / `tcqos uninstall` run as the built binary on temporary bin and conf dirs: what
 * each conflist becomes, that nothing is rewritten twice, that uninstall gives back the original
 * bytes, and that a binary which cannot run on the node never reaches a conflist.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TCQOS_BINARY } from '../helpers/plugin.ts';
import { run, type Ran } from '../helpers/run.ts';

const BANDWIDTH = { type: 'bandwidth', capabilities: { bandwidth: true }, ingressRate: 100_000_000, ingressBurst: 1_000_000, egressRate: 50_000_000, egressBurst: 500_000 };
const CAPABILITIES = { bandwidth: true, 'io.kubernetes.cri.pod-annotations': true };
const FILES: Readonly<Record<string, string>> = {
  // indented by four, as some distributions write them: the rewrite keeps that
  '10-ptp-bandwidth.conflist': `${JSON.stringify({ cniVersion: '1.0.0', name: 'ptp-bw', plugins: [{ type: 'ptp', ipam: { type: 'host-local', subnet: '198.18.65.0/24' } }, BANDWIDTH, { type: 'portmap', capabilities: { portMappings: true } }] }, null, 4)}\n`,
  '20-bridge.conflist': JSON.stringify({ cniVersion: '0.4.0', name: 'bridge-plain', plugins: [{ type: 'bridge', bridge: 'tqins0' }] }),
  '30-broken.conflist': '{"cniVersion": "1.0.0", "name": "broken", "plugins": [',
  '99-loopback.conf': '{"cniVersion": "0.3.1", "name": "lo", "type": "loopback"}\n',
};

let root: string;
let binDir: string;
let confDir: string;

function tcqos(...args: string[]): Promise<Ran> {
  return run(TCQOS_BINARY, args, { timeoutMs: 60_000 });
}
const install = (...extra: string[]) => tcqos('install', '--bin-dir', binDir, '--conf-dir', confDir, ...extra);
const uninstall = () => tcqos('uninstall', '--bin-dir', binDir, '--conf-dir', confDir);

function lines(result: Ran): string[] {
  return result.stdout.split('\n');
}

interface FileState {
  readonly bytes: string;
  readonly mode: number;
  readonly mtimeMs: number;
}

/** Every file of a directory with its bytes, mode and mtime: what "nothing changed" compares. */
function snapshot(dir: string): Record<string, FileState> {
  return Object.fromEntries(
    readdirSync(dir).sort().map((name) => {
      const path = join(dir, name);
      const { mode, mtimeMs } = statSync(path);
      return [name, { bytes: readFileSync(path).toString('base64'), mode: mode & 0o7777, mtimeMs }];
    }),
  );
}

function conflist(name: string): { plugins: Record<string, unknown>[] } {
  return JSON.parse(readFileSync(join(confDir, name), 'utf8')) as { plugins: Record<string, unknown>[] };
}

/** Small C programs that fail the way tcqos would on a node without its libraries. */
function buildBrokenExecutables(dir: string): Record<string, string> {
  const gcc = (...args: string[]) => execFileSync('gcc', args, { cwd: dir, stdio: 'pipe', timeout: 60_000 });
  writeFileSync(join(dir, 'lib.c'), 'int tqins_fn(void) { return 0; }\n');
  writeFileSync(join(dir, 'main.c'), 'int tqins_fn(void);\nint main(void) { return tqins_fn(); }\n');
  writeFileSync(join(dir, 'plain.c'), 'int main(void) { return 0; }\n');
  // needs a library that is not there (as libstdc++.so.6 on a node without it)
  gcc('-shared', '-fPIC', '-o', 'libtqins-missing.so.1', '-Wl,-soname,libtqins-missing.so.1', 'lib.c');
  gcc('-o', 'needs-library', 'main.c', '-L.', '-l:libtqins-missing.so.1');
  rmSync(join(dir, 'libtqins-missing.so.1'));
  // needs a symbol version the library found at run time lacks (as GLIBC_2.28 on an old glibc)
  writeFileSync(join(dir, 'new.map'), 'TQINS_9.9 { global: tqins_fn; local: *; };\n');
  writeFileSync(join(dir, 'old.map'), 'TQINS_1.0 { global: tqins_fn; local: *; };\n');
  gcc('-shared', '-fPIC', '-o', 'libtqinsver.so', '-Wl,-soname,libtqinsver.so', '-Wl,--version-script=new.map', 'lib.c');
  gcc('-o', 'needs-version', 'main.c', '-L.', '-ltqinsver', `-Wl,-rpath,${join(dir, 'old')}`);
  execFileSync('mkdir', [join(dir, 'old')]);
  gcc('-shared', '-fPIC', '-o', 'old/libtqinsver.so', '-Wl,-soname,libtqinsver.so', '-Wl,--version-script=old.map', 'lib.c');
  // names a dynamic loader the node does not have (as glibc's on a musl-based node)
  gcc('-o', 'needs-loader', 'plain.c', '-Wl,--dynamic-linker=/nonexistent/ld-tqins.so.2');
  writeFileSync(join(dir, 'garbage'), 'not a program\n');
  chmodSync(join(dir, 'garbage'), 0o755);
  return Object.fromEntries(['needs-library', 'needs-version', 'needs-loader', 'garbage'].map((name) => [name, join(dir, name)]));
}

let broken: Record<string, string>;

beforeAll(() => {
  if (!existsSync(TCQOS_BINARY)) throw new Error(`${TCQOS_BINARY} is missing: run "bash scripts/build.sh" first`);
  root = mkdtempSync(join(tmpdir(), 'tqins-'));
  const programs = join(root, 'programs');
  execFileSync('mkdir', [programs]);
  broken = buildBrokenExecutables(programs);
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

let testCase = 0;
beforeEach(() => {
  const dir = join(root, `case-${++testCase}`);
  binDir = join(dir, 'bin');
  confDir = join(dir, 'net.d');
  execFileSync('mkdir', ['-p', binDir, confDir]);
  for (const [name, text] of Object.entries(FILES)) writeFileSync(join(confDir, name), text);
  chmodSync(join(confDir, '10-ptp-bandwidth.conflist'), 0o600);
});

describe('tcqos install', () => {
  it('copies the binary and chains every conflist: bandwidth replaced with its keys, tcqos appended elsewhere', async () => {
    const before = snapshot(confDir);
    const result = await install();
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual([
      `${binDir}/tcqos: installed (tcqos ${(await tcqos('version')).stdout.trim().split(' ')[1]})`,
      `${confDir}/10-ptp-bandwidth.conflist: replaced bandwidth by tcqos (kept capabilities, ingressRate, ingressBurst, egressRate, egressBurst)`,
      `${confDir}/20-bridge.conflist: added tcqos`,
      expect.stringMatching(new RegExp(`^${confDir}/30-broken.conflist: unparseable \\(not JSON: .*\\), left as is$`)),
      `${confDir}/99-loopback.conf: a single-plugin config cannot chain tcqos, left as is (turn it into a .conflist to shape its pods)`,
    ]);

    expect(readdirSync(binDir)).toEqual(['tcqos']); // no temporary file left behind
    expect(statSync(join(binDir, 'tcqos')).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(binDir, 'tcqos')).equals(readFileSync(TCQOS_BINARY))).toBe(true);
    expect((await run(join(binDir, 'tcqos'), ['version'])).stdout).toMatch(/^tcqos /);

    expect(conflist('10-ptp-bandwidth.conflist').plugins).toEqual([
      { type: 'ptp', ipam: { type: 'host-local', subnet: '198.18.65.0/24' } },
      { ...BANDWIDTH, type: 'tcqos', capabilities: CAPABILITIES },
      { type: 'portmap', capabilities: { portMappings: true } },
    ]);
    expect(readFileSync(join(confDir, '10-ptp-bandwidth.conflist'), 'utf8')).toMatch(/^\{\n {4}"cniVersion"/);
    expect(conflist('20-bridge.conflist').plugins).toEqual([{ type: 'bridge', bridge: 'tqins0' }, { type: 'tcqos', capabilities: CAPABILITIES }]);

    const after = snapshot(confDir);
    expect(after['10-ptp-bandwidth.conflist']?.mode).toBe(0o600);
    expect(after['30-broken.conflist']).toEqual(before['30-broken.conflist']);
    expect(after['99-loopback.conf']).toEqual(before['99-loopback.conf']);
    // the originals, byte for byte, beside the conflists install rewrote (and only those)
    expect(after['10-ptp-bandwidth.conflist.tcqos-orig']).toEqual({ ...before['10-ptp-bandwidth.conflist'], mtimeMs: expect.any(Number) });
    expect(after['20-bridge.conflist.tcqos-orig']?.bytes).toBe(before['20-bridge.conflist']?.bytes);
    expect(Object.keys(after)).toHaveLength(6);
  });

  it('changes nothing when run again: no file rewritten, bytes and mtimes as they were', async () => {
    expect((await install()).exitCode).toBe(0);
    const conf = snapshot(confDir);
    const bin = snapshot(binDir);
    const again = await install();
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain(`${binDir}/tcqos: already installed`);
    expect(lines(again)).toContain(`${confDir}/10-ptp-bandwidth.conflist: already chained`);
    expect(lines(again)).toContain(`${confDir}/20-bridge.conflist: already chained`);
    expect(snapshot(confDir)).toEqual(conf);
    expect(snapshot(binDir)).toEqual(bin);
  });

  it('chains only the conflists --network names, and fails without changing anything for a name no conflist has', async () => {
    const before = snapshot(confDir);
    const unknown = await install('--network', 'bridge-plain', '--network', 'no-such-network');
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr.trim()).toBe(`tcqos install: no conflist in ${confDir} can take tcqos for network "no-such-network"; nothing changed`);
    expect(snapshot(confDir)).toEqual(before);
    expect(readdirSync(binDir)).toEqual([]);

    const selected = await install('--network', 'bridge-plain');
    expect(selected.exitCode).toBe(0);
    expect(lines(selected)).toContain(`${confDir}/10-ptp-bandwidth.conflist: network "ptp-bw" not selected, left as is`);
    expect(lines(selected)).toContain(`${confDir}/20-bridge.conflist: added tcqos`);
    expect(snapshot(confDir)['10-ptp-bandwidth.conflist']).toEqual(before['10-ptp-bandwidth.conflist']);
    expect(conflist('20-bridge.conflist').plugins.at(-1)).toEqual({ type: 'tcqos', capabilities: CAPABILITIES });
  });

  it('removes the temporary copies an interrupted install left behind', async () => {
    const leftovers = [join(binDir, '.tcqos.tcqos-tmp.1.0a1b2c3d'), join(confDir, '.20-bridge.conflist.tcqos-tmp.1.0a1b2c3d')];
    for (const path of leftovers) writeFileSync(path, 'half a copy');
    expect((await install()).exitCode).toBe(0);
    expect(readdirSync(binDir)).toEqual(['tcqos']);
    expect(readdirSync(confDir).filter((name) => name.startsWith('.'))).toEqual([]);
  });

  it('--dry-run says what it would do and writes nothing', async () => {
    const before = snapshot(confDir);
    const result = await install('--dry-run');
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`${binDir}/tcqos: would be installed`);
    expect(lines(result)).toContain(`${confDir}/20-bridge.conflist: added tcqos (dry run: not written)`);
    expect(snapshot(confDir)).toEqual(before);
    expect(readdirSync(binDir)).toEqual([]);
  });

  it.each([
    ['needs a library the node lacks', 'needs-library', 'libtqins-missing.so.1 is missing (tcqos is not static: it needs glibc >= 2.28, libstdc++ and libgcc_s)'],
    ['needs a newer symbol version than the node has', 'needs-version', "TQINS_9.9 not found in libtqinsver.so: the node's libraries are too old"],
    ['names a dynamic loader the node lacks', 'needs-loader', 'its dynamic loader /nonexistent/ld-tqins.so.2 is missing'],
  ])('refuses a binary that %s, says what is missing, and touches no conflist', async (_what, program, reason) => {
    const before = snapshot(confDir);
    const result = await install('--source', broken[program]!);
    expect(result.exitCode).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(`tcqos install: ${binDir}/tcqos cannot run on this node: ${reason}`);
    expect(result.stderr.trim()).toMatch(/; nothing changed$/);
    expect(readdirSync(binDir)).toEqual([]);
    expect(snapshot(confDir)).toEqual(before);
  });

  it('refuses a file that is no executable at all before copying it', async () => {
    const before = snapshot(confDir);
    const result = await install('--source', broken['garbage']!);
    expect(result.exitCode).toBe(1);
    expect(result.stderr.trim()).toBe(`tcqos install: ${broken['garbage']} cannot be installed: not an ELF executable; nothing changed`);
    expect(readdirSync(binDir)).toEqual([]);
    expect(snapshot(confDir)).toEqual(before);
  });

  it('answers bad usage with exit 2 and one line', async () => {
    const result = await tcqos('install', '--conf-dir', confDir);
    expect(result.exitCode).toBe(2);
    expect(result.stderr.trim()).toBe("tcqos install: --bin-dir DIR is required (the runtime's CNI plugin directory, e.g. /opt/cni/bin) (see \"tcqos install --help\")");
  });
});

describe('tcqos uninstall', () => {
  it('puts back every conflist byte for byte and removes the binary, also after a second install', async () => {
    const before = snapshot(confDir);
    expect((await install()).exitCode).toBe(0);
    expect((await install()).exitCode).toBe(0);
    const result = await uninstall();
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(lines(result)).toContain(`${confDir}/10-ptp-bandwidth.conflist: restored`);
    expect(lines(result)).toContain(`${confDir}/20-bridge.conflist: restored`);
    expect(lines(result)).toContain(`${binDir}/tcqos: removed`);
    const after = snapshot(confDir);
    expect(Object.keys(after)).toEqual(Object.keys(before));
    for (const [name, state] of Object.entries(before)) {
      expect(after[name]?.bytes, name).toBe(state.bytes);
      expect(after[name]?.mode, name).toBe(state.mode);
    }
    expect(readdirSync(binDir)).toEqual([]);
  });

  it('leaves a conflist edited since install, names it, and keeps the binary it still needs', async () => {
    expect((await install()).exitCode).toBe(0);
    const path = join(confDir, '20-bridge.conflist');
    const edited = readFileSync(path, 'utf8').replace('"tqins0"', '"tqins1"');
    writeFileSync(path, edited);
    const result = await uninstall();
    expect(result.exitCode).toBe(1);
    expect(lines(result)).toContain(`${confDir}/10-ptp-bandwidth.conflist: restored`);
    expect(lines(result)).toContain(`${path}: changed since install, left as is (the original is in ${path}.tcqos-orig)`);
    expect(result.stderr.trim()).toBe(`tcqos uninstall: kept ${binDir}/tcqos: tcqos is still chained in ${path} (remove it there, then run uninstall again)`);
    expect(readFileSync(path, 'utf8')).toBe(edited);
    expect(readdirSync(binDir)).toEqual(['tcqos']);
  });
});
