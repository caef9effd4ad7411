/**
 * Messages that repeat what a user or a pod wrote stay one printable line: a CNI error's `msg`, a
 * log line, a Kubernetes Event. JSON.stringify escapes C0 controls but leaves DEL, the C1 controls
 * (U+0085 is a line break to some readers) and U+2028/U+2029 (line and paragraph separators) as
 * they are; these are escaped too.
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

function escape(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** A value quoted for a message: JSON text, nothing unprintable left. */
export function quote(value: unknown): string {
  return (JSON.stringify(value) ?? String(value)).replace(UNPRINTABLE, escape);
}

/** `text` with every unprintable character escaped (\u000a for a line feed): one line, always. */
export function oneLine(text: string): string {
  return text.replace(UNPRINTABLE, escape);
}
