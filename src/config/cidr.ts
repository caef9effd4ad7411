/**
 * Peer CIDRs: parsed with ip-num into the network address and prefix that u32 filters match on.
 * ip-num takes ~10 ms to load, so it is loaded (loadCidrSupport) only for configs that list CIDRs.
 */
import { atField } from './errors.ts';
import { quote } from './quote.ts';

type IpNum = typeof import('ip-num');
let ipNum: IpNum | undefined;

export async function loadCidrSupport(): Promise<void> {
  ipNum ??= await import('ip-num');
}

export interface Cidr {
  readonly family: 4 | 6;
  /** Network address with host bits cleared. */
  readonly network: bigint;
  readonly prefix: number;
  /** Canonical text, e.g. "198.18.0.0/15". */
  readonly text: string;
}

export class CidrError extends Error {}

const MAPPED_MESSAGE = 'is an IPv4-mapped IPv6 address, which never appears on the wire: write the IPv4 CIDR instead';

export function parseCidr(text: string): Cidr {
  if (!ipNum) throw new Error('parseCidr called before loadCidrSupport');
  const { IPv4CidrRange, IPv6CidrRange, Validator } = ipNum;
  if (/^::ffff:\d+\.\d+\.\d+\.\d+/i.test(text)) throw new CidrError(`${quote(text)} ${MAPPED_MESSAGE}`);
  const withPrefix = text.includes('/') ? text : text.includes(':') ? `${text}/128` : `${text}/32`;
  if (text.includes(':')) {
    const [valid] = Validator.isValidIPv6CidrNotation(withPrefix);
    if (!valid || text.includes('%')) throw new CidrError(`${quote(text)} is not a valid IPv6 CIDR`);
    const range = IPv6CidrRange.fromCidr(withPrefix);
    const prefix = Number(range.cidrPrefix.getValue());
    const network = range.getFirst().getValue();
    if (network >> 32n === 0xffffn) {
      throw new CidrError(`${quote(text)} ${MAPPED_MESSAGE}`);
    }
    return { family: 6, network, prefix, text: `${range.getFirst().toString()}/${prefix}` };
  }
  const [valid] = Validator.isValidIPv4CidrNotation(withPrefix);
  if (!valid) throw new CidrError(`${quote(text)} is not a valid IPv4 CIDR`);
  const range = IPv4CidrRange.fromCidr(withPrefix);
  const prefix = Number(range.cidrPrefix.getValue());
  return { family: 4, network: range.getFirst().getValue(), prefix, text: `${range.getFirst().toString()}/${prefix}` };
}

/** A list of CIDRs from the field `field`; a bad one is named by its index. */
export function parseCidrList(field: string, list: readonly string[]): Cidr[] {
  return list.map((text, index) => atField(`${field}[${index}]`, () => parseCidr(text)));
}

/** The CIDR of a network address (host bits clear) and prefix, its text as parseCidr writes it. */
export function cidrOf(family: 4 | 6, network: bigint, prefix: number): Cidr {
  if (!ipNum) throw new Error('cidrOf called before loadCidrSupport');
  const address = family === 4 ? new ipNum.IPv4(network) : new ipNum.IPv6(network);
  return { family, network, prefix, text: `${address.toString()}/${prefix}` };
}
