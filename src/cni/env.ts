/** The CNI_* environment, validated before anything reaches ip or tc. */
import { IFNAME_PATTERN, IFNAME_RULE } from '../config/names.ts';
import { CniError, ErrorCode } from './errors.ts';

export const CNI_COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof CNI_COMMANDS)[number];

export interface CniEnv {
  readonly command: CniCommand;
  readonly containerId: string;
  /** Empty for DEL when the runtime has already removed the netns. */
  readonly netns: string;
  readonly ifname: string;
  readonly args: Readonly<Record<string, string>>;
}

/** The spec's container id: alphanumerics, then also `_`, `.` and `-`. */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$/;
const NETNS_PATH = /^\/[^\0\n\r]{1,4095}$/;

function invalid(variable: string, problem: string): CniError {
  return new CniError(ErrorCode.invalidEnvironment, `${variable} ${problem}`);
}

function parseArgs(text: string): Record<string, string> {
  const args: Record<string, string> = {};
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const at = pair.indexOf('=');
    if (at <= 0) throw invalid('CNI_ARGS', `has ${JSON.stringify(pair)}, which is not KEY=VALUE`);
    args[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return args;
}

export function readEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env['CNI_COMMAND'];
  if (!command) throw invalid('CNI_COMMAND', 'is not set');
  if (!(CNI_COMMANDS as readonly string[]).includes(command)) {
    throw invalid('CNI_COMMAND', `${JSON.stringify(command)} is not one of ${CNI_COMMANDS.join(', ')}`);
  }
  const cniCommand = command as CniCommand;
  const needsAttachment = cniCommand === 'ADD' || cniCommand === 'DEL' || cniCommand === 'CHECK';
  const containerId = env['CNI_CONTAINERID'] ?? '';
  const netns = env['CNI_NETNS'] ?? '';
  const ifname = env['CNI_IFNAME'] ?? '';
  if (needsAttachment) {
    if (!containerId) throw invalid('CNI_CONTAINERID', 'is not set');
    if (!CONTAINER_ID.test(containerId)) throw invalid('CNI_CONTAINERID', 'may hold only letters, digits, "_", "." and "-"');
    if (!ifname) throw invalid('CNI_IFNAME', 'is not set');
    if (!IFNAME_PATTERN.test(ifname)) {
      throw invalid('CNI_IFNAME', `${JSON.stringify(ifname)} is not an interface name tcqos accepts (${IFNAME_RULE})`);
    }
    if (cniCommand !== 'DEL' && !netns) throw invalid('CNI_NETNS', 'is not set');
    if (netns && !NETNS_PATH.test(netns)) throw invalid('CNI_NETNS', 'must be an absolute path');
  }
  return { command: cniCommand, containerId, netns, ifname, args: parseArgs(env['CNI_ARGS'] ?? '') };
}
