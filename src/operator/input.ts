/**
 * A JSON document the operator hands in, from a file or standard input ("-"). What is wrong with it
 * is a content error (exit 1, one line): a file that cannot be read, text that is not JSON.
 */
import { readFile } from 'node:fs/promises';
import { OperatorError } from '../cli/errors.ts';
import type { CliIo } from '../cli/runner.ts';
import { oneLine } from '../cli/runner.ts';

const READ_PROBLEMS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
};

/** The text of `source` (a path, or "-" for standard input); `what` names it in messages ("--config x"). */
export async function readSource(source: string, io: CliIo, what: string): Promise<string> {
  try {
    return source === '-' ? (await io.readStdin()).toString('utf8') : await readFile(source, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    throw new OperatorError(`cannot read ${what}: ${READ_PROBLEMS[code] ?? oneLine((error as Error).message)}`);
  }
}

/** `text` parsed as JSON; the parser's words locate the mistake, on one line. */
export function parseDocument(text: string, what: string): unknown {
  if (!text.trim()) throw new OperatorError(`${what} is empty`);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new OperatorError(`${what} is not valid JSON (${oneLine((error as Error).message)})`);
  }
}

/** Reads and parses in one step. */
export async function readDocument(source: string, io: CliIo, what: string): Promise<unknown> {
  return parseDocument(await readSource(source, io, what), what);
}
