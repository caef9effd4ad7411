/**
 * The one hand-written JSON reader, for the two things JSON.parse cannot do:
 * - tc repeats keys inside one object (a u32 filter prints one "match" member per key): JSON.parse
 *   would keep only the last; `parseJsonSequence` turns repeats into arrays, and reads the several
 *   documents a `tc -j -batch` run prints one after another;
 * - a chained CNI plugin must pass prevResult on byte for byte: `memberText` finds the source text
 *   of one top-level member (skipping values without building them, so a large prevResult costs
 *   little), where re-serialising a parsed value could change numbers, escapes or key order.
 * Everything else is JSON.parse's job.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A number, true, false or null, matched where the reader stands (sticky: no copy of the text). */
const LITERAL = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

class Reader {
  readonly text: string;
  at = 0;

  constructor(text: string) {
    this.text = text;
  }

  fail(): never {
    throw new SyntaxError(`JSON that cannot be read near offset ${this.at}`);
  }

  space(): void {
    while (this.at < this.text.length && ' \t\n\r'.includes(this.text[this.at]!)) this.at++;
  }

  /** Past a string starting at the cursor; returns its source text. */
  string(): string {
    const start = this.at;
    for (this.at++; this.at < this.text.length && this.text[this.at] !== '"'; this.at++) if (this.text[this.at] === '\\') this.at++;
    this.at++;
    return this.text.slice(start, this.at);
  }

  /** Past one value; builds it unless `build` is false (then undefined). */
  value(build: boolean): JsonValue | undefined {
    this.space();
    if (!build) return this.skip();
    const c = this.text[this.at];
    if (c === '{') return this.object(build);
    if (c === '[') return this.array();
    if (c === '"') return JSON.parse(this.string()) as string;
    LITERAL.lastIndex = this.at;
    const literal = LITERAL.exec(this.text);
    if (!literal) return this.fail();
    this.at += literal[0].length;
    return JSON.parse(literal[0]) as JsonValue;
  }

  /** Past one value without building it, by counting brackets: any depth, no recursion. */
  skip(): undefined {
    const first = this.text[this.at];
    if (first === '"') {
      this.string();
      return undefined;
    }
    if (first !== '{' && first !== '[') {
      while (this.at < this.text.length && !',}] \t\n\r'.includes(this.text[this.at]!)) this.at++;
      return undefined;
    }
    let depth = 0;
    for (; this.at < this.text.length; this.at++) {
      const c = this.text[this.at];
      if (c === '"') {
        this.string();
        this.at--;
      } else if (c === '{' || c === '[') {
        depth++;
      } else if ((c === '}' || c === ']') && --depth === 0) {
        this.at++;
        return undefined;
      }
    }
    return undefined;
  }

  array(): JsonValue[] {
    const items: JsonValue[] = [];
    this.at++;
    this.space();
    if (this.text[this.at] === ']') return this.at++, items;
    for (;;) {
      items.push(this.value(true)!);
      this.space();
      if (this.text[this.at] === ']') return this.at++, items;
      if (this.text[this.at++] !== ',') this.fail();
    }
  }

  /** Calls `member` with each member's key and the source span of its value. */
  object(build: boolean, member?: (key: string, start: number, end: number) => void): { [key: string]: JsonValue } | undefined {
    const members: { [key: string]: JsonValue } = {};
    const repeated = new Set<string>();
    this.at++;
    this.space();
    if (this.text[this.at] === '}') return this.at++, build ? members : undefined;
    for (;;) {
      this.space();
      const key = JSON.parse(this.string()) as string;
      this.space();
      if (this.text[this.at++] !== ':') this.fail();
      this.space();
      const start = this.at;
      const value = this.value(build);
      member?.(key, start, this.at);
      if (build) {
        if (Object.hasOwn(members, key)) {
          if (!repeated.has(key)) members[key] = [members[key]!];
          repeated.add(key);
          (members[key] as JsonValue[]).push(value!);
        } else {
          Object.defineProperty(members, key, { value, enumerable: true, writable: true, configurable: true });
        }
      }
      this.space();
      if (this.text[this.at] === '}') return this.at++, build ? members : undefined;
      if (this.text[this.at++] !== ',') this.fail();
    }
  }
}

/** The JSON documents printed one after another (repeated keys as arrays). */
export function parseJsonSequence(text: string): JsonValue[] {
  const reader = new Reader(text);
  const values: JsonValue[] = [];
  for (reader.space(); reader.at < text.length; reader.space()) values.push(reader.value(true)!);
  return values;
}

/** Exactly one document (repeated keys as arrays). */
export function parseJson(text: string): JsonValue {
  const values = parseJsonSequence(text);
  if (values.length !== 1) throw new SyntaxError(`${values.length} JSON documents where one was expected`);
  return values[0]!;
}

/**
 * The source text of one member of a top-level object already known to be valid JSON; a key that
 * appears twice resolves to its last occurrence, as JSON.parse does.
 */
export function memberText(text: string, key: string): string | undefined {
  const reader = new Reader(text);
  reader.space();
  let found: string | undefined;
  reader.object(false, (name, start, end) => {
    if (name === key) found = text.slice(start, end);
  });
  return found;
}
