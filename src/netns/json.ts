/**
 * A JSON reader for tc's output, which repeats keys inside one object (a u32 filter prints one
 * "match" member per key). JSON.parse would keep only the last; here repeated keys become arrays.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export function parseTcJson(text: string): JsonValue {
  const values = parseTcJsonSequence(text);
  if (values.length !== 1) throw new SyntaxError(`tc printed ${values.length} JSON documents where one was expected`);
  return values[0]!;
}

/** The JSON documents a `tc -j -batch` run prints one after another (one per command that succeeded). */
export function parseTcJsonSequence(text: string): JsonValue[] {
  let at = 0;
  const fail = (): never => {
    throw new SyntaxError(`tc printed JSON that cannot be read near offset ${at}`);
  };
  const space = (): void => {
    while (at < text.length && ' \t\n\r'.includes(text[at]!)) at++;
  };
  const value = (): JsonValue => {
    space();
    const c = text[at];
    if (c === '{') return object();
    if (c === '[') return array();
    if (c === '"') return string();
    const literal = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(at, at + 40));
    if (!literal) return fail();
    at += literal[0].length;
    return JSON.parse(literal[0]) as JsonValue;
  };
  const string = (): string => {
    const start = at;
    for (at++; at < text.length && text[at] !== '"'; at++) if (text[at] === '\\') at++;
    at++;
    return JSON.parse(text.slice(start, at)) as string;
  };
  const array = (): JsonValue[] => {
    const items: JsonValue[] = [];
    at++;
    space();
    if (text[at] === ']') return at++, items;
    for (;;) {
      items.push(value());
      space();
      if (text[at] === ']') return at++, items;
      if (text[at++] !== ',') fail();
    }
  };
  const object = (): { [key: string]: JsonValue } => {
    const members: { [key: string]: JsonValue } = {};
    const repeated = new Set<string>();
    at++;
    space();
    if (text[at] === '}') return at++, members;
    for (;;) {
      space();
      const key = string();
      space();
      if (text[at++] !== ':') fail();
      const member = value();
      if (key in members) {
        if (!repeated.has(key)) members[key] = [members[key]!];
        repeated.add(key);
        (members[key] as JsonValue[]).push(member);
      } else {
        members[key] = member;
      }
      space();
      if (text[at] === '}') return at++, members;
      if (text[at++] !== ',') fail();
    }
  };
  const values: JsonValue[] = [];
  for (space(); at < text.length; space()) values.push(value());
  return values;
}
