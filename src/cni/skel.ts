/**
 * The CNI protocol: environment, stdin, version negotiation, and exactly one JSON document on
 * stdout (a result, version info, or an error). Plugins supply the commands; nothing here shapes.
 */
import { readEnv, type CniEnv } from './env.ts';
import { CniError, ErrorCode } from './errors.ts';
import { decodeStdin } from './stdin.ts';
import { isSupportedVersion, LATEST_VERSION, SUPPORTED_VERSIONS, versionAtLeast } from './version.ts';

export interface CommandContext {
  readonly env: CniEnv;
  /** The whole process environment (tcqos's own variables, e.g. TCQOS_STATE_DIR, live here). */
  readonly vars: NodeJS.ProcessEnv;
  readonly cniVersion: string;
  readonly config: Record<string, unknown>;
  /** prevResult exactly as received (undefined when absent). */
  readonly rawPrevResult: string | undefined;
}

export interface PluginCommands {
  /** Returns the result document to print (a chained plugin's is its prevResult). */
  add(context: CommandContext): Promise<string>;
  check(context: CommandContext): Promise<void>;
  del(context: CommandContext): Promise<void>;
  status(context: CommandContext): Promise<void>;
  gc(context: CommandContext): Promise<void>;
  /** Turns anything a command threw into a CNI error, logging what the user should not see. */
  describeFailure(error: unknown, context: Partial<CommandContext>): CniError;
}

export interface ProcessIo {
  readonly env: NodeJS.ProcessEnv;
  readStdin(): Promise<Buffer>;
  writeStdout(text: string): void;
}

/** The lowest cniVersion each command exists in. */
const INTRODUCED_IN: Record<string, string> = { CHECK: '0.4.0', STATUS: '1.1.0', GC: '1.1.0' };

/** Runs one CNI invocation; resolves to the process exit code. */
export async function runCni(io: ProcessIo, commands: PluginCommands): Promise<number> {
  let cniVersion = LATEST_VERSION;
  const context: { -readonly [K in keyof CommandContext]?: CommandContext[K] } = {};
  try {
    const env = readEnv(io.env);
    context.env = env;
    context.vars = io.env;
    const stdin = await io.readStdin();
    if (env.command === 'VERSION') {
      const asked = stdin.length ? String((decodeStdin(stdin).config['cniVersion'] as string | undefined) ?? '') : '';
      io.writeStdout(JSON.stringify({ cniVersion: isSupportedVersion(asked) ? asked : LATEST_VERSION, supportedVersions: SUPPORTED_VERSIONS }));
      return 0;
    }
    const { config, rawPrevResult } = decodeStdin(stdin);
    const asked = config['cniVersion'];
    if (typeof asked !== 'string' || asked === '') {
      throw new CniError(ErrorCode.incompatibleVersion, 'cniVersion is not set in the network configuration');
    }
    // DEL goes through whatever the version: refusing it would stop the runtime's chain before
    // the plugins before tcqos release their addresses and interfaces.
    if (!isSupportedVersion(asked) && env.command !== 'DEL') {
      throw new CniError(ErrorCode.incompatibleVersion, `cniVersion ${JSON.stringify(asked)} is not supported`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
    }
    if (isSupportedVersion(asked)) cniVersion = asked;
    const introduced = INTRODUCED_IN[env.command];
    if (introduced && !versionAtLeast(cniVersion, introduced)) {
      throw new CniError(ErrorCode.incompatibleVersion, `cniVersion ${cniVersion} does not allow ${env.command} (it needs ${introduced} or later)`);
    }
    Object.assign(context, { cniVersion, config, rawPrevResult });
    const ready = context as CommandContext;
    switch (env.command) {
      case 'ADD':
        io.writeStdout(await commands.add(ready));
        return 0;
      case 'CHECK':
        await commands.check(ready);
        return 0;
      case 'DEL':
        await commands.del(ready);
        return 0;
      case 'STATUS':
        await commands.status(ready);
        return 0;
      case 'GC':
        await commands.gc(ready);
        return 0;
    }
  } catch (thrown) {
    const error = thrown instanceof CniError ? thrown : commands.describeFailure(thrown, context);
    io.writeStdout(
      JSON.stringify({ cniVersion, code: error.code, msg: error.message, ...(error.details ? { details: error.details } : {}) }),
    );
    return 1;
  }
}
