/**
 * u32 match keys for "remote peer, protocol, port", written as raw (value, mask, offset) words
 * relative to the network header. The same words go into the tc batch and are what CHECK expects
 * to read back. Offsets assume no IPv4 options and no IPv6 extension headers, as tc's own
 * `match ip dport` does.
 */
import type { Cidr } from '../config/cidr.ts';
import type { Protocol } from '../config/policy.ts';
import type { U32Key } from '../tc/types.ts';

/** Which end of the packet the remote peer is: destination on egress, source on ingress. */
export type PeerSide = 'dst' | 'src';

const PROTOCOL_NUMBERS: Record<Protocol, { 4: number; 6: number }> = {
  tcp: { 4: 6, 6: 6 },
  udp: { 4: 17, 6: 17 },
  sctp: { 4: 132, 6: 132 },
  icmp: { 4: 1, 6: 58 },
  icmpv6: { 4: 1, 6: 58 },
};

const IPV4 = { src: 12, dst: 16, protocol: { offset: 8, shift: 16 }, ports: 20 };
const IPV6 = { src: 8, dst: 24, protocol: { offset: 4, shift: 8 }, ports: 40 };

function prefixMask(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

export function addressKeys(cidr: Cidr, side: PeerSide): U32Key[] {
  if (cidr.family === 4) {
    const mask = prefixMask(cidr.prefix);
    return [{ value: (Number(cidr.network) & mask) >>> 0, mask, offset: IPV4[side] }];
  }
  const keys: U32Key[] = [];
  for (let word = 0; word < 4; word++) {
    const bits = Math.min(32, Math.max(0, cidr.prefix - 32 * word));
    if (bits === 0 && word > 0) break;
    const value = Number((cidr.network >> BigInt(96 - 32 * word)) & 0xffffffffn);
    const mask = prefixMask(bits);
    keys.push({ value: (value & mask) >>> 0, mask, offset: IPV6[side] + 4 * word });
  }
  return keys;
}

export function protocolKey(protocol: Protocol, family: 4 | 6): U32Key {
  const layout = family === 4 ? IPV4.protocol : IPV6.protocol;
  return { value: (PROTOCOL_NUMBERS[protocol][family] << layout.shift) >>> 0, mask: (0xff << layout.shift) >>> 0, offset: layout.offset };
}

/** The remote port: destination port (low half of the word) on egress, source port on ingress. */
export function portKey(port: number, family: 4 | 6, side: PeerSide): U32Key {
  const offset = family === 4 ? IPV4.ports : IPV6.ports;
  return side === 'dst'
    ? { value: port, mask: 0x0000ffff, offset }
    : { value: (port << 16) >>> 0, mask: 0xffff0000, offset };
}

/** Matches every packet: the ingress redirect (this kernel has no matchall). */
export const MATCH_ALL: U32Key = { value: 0, mask: 0, offset: 0 };

export function formatKey(key: U32Key): string {
  const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;
  return `match u32 ${hex(key.value)} ${hex(key.mask)} at ${key.offset}`;
}

/** A MAC address ("02:ab:…") as its six bytes; throws on anything else (it reaches a tc line as numbers only). */
export function macBytes(mac: string): number[] {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) throw new Error(`not a MAC address: ${JSON.stringify(mac)}`);
  return mac.split(':').map((byte) => Number.parseInt(byte, 16));
}

/**
 * The frame's source (egress) or destination (ingress) MAC, in the 4-byte-aligned words u32 reads
 * relative to the network header: the Ethernet header is the 14 bytes before it, so the
 * destination starts at -14 (words at -16 and -12) and the source at -8 (words at -8 and -4).
 */
export function macKeys(mac: string, side: 'src' | 'dst'): U32Key[] {
  const [a, b, c, d, e, f] = macBytes(mac) as [number, number, number, number, number, number];
  const word = (w: number, x: number, y: number, z: number) => ((w << 24) | (x << 16) | (y << 8) | z) >>> 0;
  return side === 'dst'
    ? [
        { value: word(0, 0, a, b), mask: 0x0000ffff, offset: -16 },
        { value: word(c, d, e, f), mask: 0xffffffff, offset: -12 },
      ]
    : [
        { value: word(a, b, c, d), mask: 0xffffffff, offset: -8 },
        { value: word(e, f, 0, 0), mask: 0xffff0000, offset: -4 },
      ];
}
