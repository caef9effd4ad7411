/**
 * The errors a subcommand fails with, each carrying its exit status. The executable holds two
 * bundles (the CNI path and the operator side, src/cli/bundle.ts), each with its own copy of these
 * classes, so a failure is recognised by its `exitCode`, never by `instanceof`.
 */

export const EXIT = { done: 0, failed: 1, usage: 2 } as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure whose one-line message is for the user, with the exit status it ends the command with. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** Bad flags or arguments: what is wrong and what to write instead (exit 2). */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}

/** The operation failed or was refused: what and what to do (exit 1). */
export class OperatorError extends CliError {
  constructor(message: string) {
    super(message, EXIT.failed);
  }
}

/** The exit status a thrown value asks for, whichever bundle's class made it; undefined for anything else. */
export function exitCodeOf(error: unknown): ExitCode | undefined {
  const code = (error as { exitCode?: unknown } | null)?.exitCode;
  return code === EXIT.failed || code === EXIT.usage ? code : undefined;
}
