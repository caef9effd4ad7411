/**
 * Shell completion, kubectl's way: the script `tcqos completion bash|zsh` prints is a few lines that
 * ask the binary itself (`tcqos __complete -- WORD...`, the last word the one being completed) and offer
 * what it answers, so commands, flags and values (container ids and interfaces from the registry)
 * are known in one place. The answer ":files" asks the shell for file names.
 */
import { UsageError } from '../cli/errors.ts';
import type { OptionValues, Subcommand } from '../cli/runner.ts';
import { Registry, stateDirFrom } from '../state/registry.ts';

/** Every subcommand, the completion commands included (given by src/cli/bundle.ts). */
export type CommandTable = () => readonly Subcommand[];

export const FILES = ':files';

/** Flags whose value names a file or a directory. */
const PATH_FLAGS = new Set(['config', 'output', 'state-dir', 'kubeconfig', 'settings', 'source', 'bin-dir', 'conf-dir']);

/** Positional arguments of the commands that take them. */
const POSITIONALS: Record<string, (table: CommandTable) => readonly string[]> = {
  validate: () => [FILES],
  completion: () => ['bash', 'zsh'],
  help: (table) => table().map((command) => command.name),
};

/** What the registry knows, for --container and --ifname. */
export interface RegistryView {
  containerIds(): string[];
  ifnames(): string[];
}

export function registryView(stateDir: string): RegistryView {
  const records = () => new Registry(stateDir).list().records;
  return {
    containerIds: () => [...new Set(records().map((record) => record.containerId))].sort(),
    ifnames: () => [...new Set(records().map((record) => record.ifname))].sort(),
  };
}

/**
 * The candidates for the last of `words` (the words after "tcqos"; the last one may be empty):
 * one per line for the shell, which keeps those starting with what was typed.
 */
export function completions(words: readonly string[], table: CommandTable, view: (stateDir: string | undefined) => RegistryView): string[] {
  const visible = table().filter((command) => !command.name.startsWith('_'));
  if (words.length <= 1) return [...visible.map((command) => command.name), 'help', 'version'];
  const [name, ...rest] = words;
  const current = rest[rest.length - 1] ?? '';
  const previous = rest[rest.length - 2];
  if (name === 'help') return rest.length === 1 ? [...POSITIONALS['help']!(table)] : [];
  const command = visible.find((candidate) => candidate.name === name);
  if (!command) return [];
  const flag = previous?.startsWith('--') ? previous.slice(2) : undefined;
  if (flag !== undefined && command.options[flag]?.type === 'string') {
    if (PATH_FLAGS.has(flag)) return [FILES];
    const choices = command.choices?.[flag];
    if (choices) return [...choices];
    const stateDirAt = rest.indexOf('--state-dir');
    const registry = () => view(stateDirAt >= 0 ? rest[stateDirAt + 1] : undefined);
    if (flag === 'container') return registry().containerIds();
    if (flag === 'ifname') return registry().ifnames();
    return [];
  }
  if (current.startsWith('-') || !command.allowPositionals) {
    const given = new Set(rest.slice(0, -1));
    return [...Object.keys(command.options).map((option) => `--${option}`).filter((option) => !given.has(option) || command.options[option.slice(2)]?.multiple), '--help'];
  }
  return [...(POSITIONALS[command.name]?.(table) ?? [])];
}

const BASH = `# bash completion for tcqos: source <(tcqos completion bash), or save it in
# /etc/bash_completion.d/tcqos. The binary itself answers ("tcqos __complete -- WORD...").
_tcqos() {
  local cur=\${COMP_WORDS[COMP_CWORD]} out
  out=$("\${COMP_WORDS[0]}" __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return 0
  if [[ $out == "${FILES}" ]]; then
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    return 0
  fi
  mapfile -t COMPREPLY < <(compgen -W "$out" -- "$cur")
}
complete -F _tcqos tcqos
`;

const ZSH = `#compdef tcqos
# zsh completion for tcqos: source <(tcqos completion zsh) after compinit, or save it as _tcqos in a
# directory of $fpath. The binary itself answers ("tcqos __complete -- WORD...").
_tcqos() {
  local out
  out=$("\${words[1]}" __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null) || return 1
  if [[ $out == "${FILES}" ]]; then
    _files
    return
  fi
  local -a candidates
  candidates=("\${(@f)out}")
  compadd -a candidates
}
if [[ $funcstack[1] == _tcqos ]]; then
  _tcqos "$@"
else
  compdef _tcqos tcqos
fi
`;

const USAGE = `Usage: tcqos completion bash|zsh

Prints a shell completion script: subcommands, flags, and container ids and interfaces from the
registry for --container and --ifname.

  bash   source <(tcqos completion bash)     (or save it in /etc/bash_completion.d/tcqos)
  zsh    source <(tcqos completion zsh)      (after compinit; or save it as _tcqos in $fpath)

Exit status: 0 printed, 2 bad usage.
`;

export const completionCommand: Subcommand = {
  name: 'completion',
  summary: 'print a bash or zsh completion script',
  usage: USAGE,
  options: {},
  allowPositionals: true,
  async run(_values, positionals, io) {
    const shell = positionals[0];
    if (positionals.length !== 1 || (shell !== 'bash' && shell !== 'zsh')) throw new UsageError('name the shell: bash or zsh');
    io.writeStdout(shell === 'bash' ? BASH : ZSH);
    return 0;
  },
};

/** The hidden command the scripts call; it never fails loudly (a shell would print the error mid-line). */
export function completeCommand(table: CommandTable): Subcommand {
  return {
    name: '__complete',
    summary: 'candidates for shell completion (used by the completion scripts)',
    usage: 'Usage: tcqos __complete -- WORD... (the completion scripts call it)\n',
    options: {},
    allowPositionals: true,
    async run(_values: OptionValues, positionals, io) {
      const view = (stateDir: string | undefined) => registryView(stateDir ?? stateDirFrom(io.env));
      let candidates: string[];
      try {
        candidates = completions(positionals, table, view);
      } catch {
        candidates = [];
      }
      io.writeStdout(candidates.length ? `${candidates.join('\n')}\n` : '');
      return 0;
    },
  };
}
