/** Output for people: rates and sizes in human units, and columns aligned. */

function scaled(value: number, units: readonly string[], base: number): string {
  let unit = 0;
  let amount = value;
  while (Math.abs(amount) >= base && unit < units.length - 1) {
    amount /= base;
    unit++;
  }
  const digits = unit === 0 || amount >= 100 ? 0 : amount >= 10 ? 1 : 2;
  return `${Number(amount.toFixed(digits))} ${units[unit]}`;
}

/** 40000000 -> "40 Mbit/s" (decimal prefixes, as rates are configured). */
export function humanRate(bitsPerSecond: number): string {
  return scaled(bitsPerSecond, ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'], 1000);
}

/** 1234567 -> "1.23 MB". */
export function humanBytes(bytes: number): string {
  return scaled(bytes, ['B', 'kB', 'MB', 'GB', 'TB', 'PB'], 1000);
}

/** Rows under a header, each column as wide as its widest cell. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
