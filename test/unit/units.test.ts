import { describe, expect, it } from 'vitest';
import { formatRate, parseRate, parseSize } from '../../src/config/units.ts';

describe('rates are bits per second', () => {
  it.each([
    [40_000_000, 40_000_000],
    ['40mbit', 40_000_000],
    ['1gbit', 1_000_000_000],
    ['1.5mbit', 1_500_000],
    ['500kbit', 500_000],
    ['10M', 10_000_000],
    ['10m', 10_000_000],
    ['1G', 1_000_000_000],
    ['100k', 100_000],
    ['1Mi', 1_048_576],
    ['8000bit', 8000],
    ['8000', 8000],
  ])('%s is %i bit/s', (input, bits) => {
    expect(parseRate(input)).toBe(bits);
  });

  it.each([
    ['5mbps', /BYTES per second.*"40mbit"/],
    ['5kbps', /BYTES per second.*"40kbit"/],
    ['100bps', /BYTES per second/],
    ['10 furlongs', /unknown rate unit "furlongs"/],
    ['fast', /not a number/],
    ['-5mbit', /not a number/],
    [0, /below the lowest/],
    [7999, /below the lowest/],
    [1e30, /above the highest/],
    [Number.NaN, /not a finite rate/],
    ['1000gbit', /above the highest/],
  ])('%s is refused (%s)', (input, message) => {
    expect(() => parseRate(input as string | number)).toThrow(message);
  });
});

describe('sizes: integers are bits (as in the reference plugin), strings carry their unit', () => {
  it.each([
    [8000, 1000],
    [12, 2],
    ['64kbit', 8000],
    ['1mbit', 125000],
    ['1500b', 1500],
    ['64KiB', 65536],
    ['4MiB', 4194304],
  ])('%s is %i bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  it.each([
    ['64kb', /tc reads "kb" as kibibytes: write "64KiB" for bytes or "64kbit" for bits/],
    ['1m', /"1MiB" for bytes or "1mbit"/],
    ['10 parsecs', /unknown size unit/],
    [0, /not a positive size/],
    [2 ** 35, /burst cannot be more than 4GB/],
  ])('%s is refused', (input, message) => {
    expect(() => parseSize(input as string | number)).toThrow(message);
  });
});

describe('formatRate', () => {
  it.each([
    [40_000_000, '40mbit'],
    [1_000_000_000, '1gbit'],
    [12_345, '12345bit'],
    [500_000, '500kbit'],
  ])('%i reads %s', (bits, text) => expect(formatRate(bits)).toBe(text));
});
