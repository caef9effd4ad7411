/**
 * A configuration problem, tied to the field it concerns (e.g. "egress.classes[1].rate") and, for
 * documents that are not the network configuration, to where they came from (e.g. "annotation
 * tcqos.io/policy"), so the message says which of the pod's or the admin's inputs to fix.
 */
import { oneLine } from './quote.ts';

export class ConfigError extends Error {
  readonly field: string;
  readonly problem: string;
  readonly source: string | undefined;
  constructor(field: string, problem: string, source?: string) {
    // Fields can be keys a pod wrote, problems quote values: whatever they hold, the message is one line.
    super(oneLine([source, field, problem].filter(Boolean).join(': ')));
    this.field = field;
    this.problem = problem;
    this.source = source;
  }

  /** The same problem, said of a document that came from `source`. */
  from(source: string): ConfigError {
    return new ConfigError(this.field, this.problem, source);
  }
}

/** Runs a unit or CIDR parser and ties any complaint to the field. */
export function atField<T>(name: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(name, (error as Error).message);
  }
}

/** Runs `work`; a ConfigError it throws is said of the document that came from `source`. */
export function atSource<T>(source: string, work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw error instanceof ConfigError && error.source === undefined ? error.from(source) : error;
  }
}
