/**
 * Peers as few filters as they can be, and a bound on how many filters a direction asks for.
 *
 * A class's peers become one u32 filter each (times its ports), and every packet walks the filters
 * until one matches: a 184 KB annotation asked for about a million of them (524,288 took 34.7 s and
 * 1.47 GB in one ADD; 98,304 cost a core of softirq at 20 Mbit/s). So a class's peers are merged
 * first (a peer inside another one of the same list is dropped; two halves of one block become the
 * block), and a direction asking for more than LIMITS.maxFiltersPerDirection is refused.
 */
import { cidrOf, type Cidr } from './cidr.ts';
import { ConfigError } from './errors.ts';
import type { DirectionPolicy } from './policy.ts';
import { LIMITS } from './units.ts';

/** The same addresses in the fewest CIDRs, per family, sorted by family, address and prefix. */
export function mergePeers(peers: readonly Cidr[]): Cidr[] {
  return [4, 6].flatMap((family) => mergeFamily(peers.filter((peer) => peer.family === family), family === 4 ? 32 : 128));
}

function mergeFamily(peers: readonly Cidr[], width: number): Cidr[] {
  if (peers.length === 0) return [];
  const family = peers[0]!.family;
  // By prefix length: the blocks not inside a block already kept (shortest prefixes first).
  const kept: Array<Set<bigint>> = Array.from({ length: width + 1 }, () => new Set<bigint>());
  const inside = (network: bigint, prefix: number) => {
    for (let p = 0; p <= prefix; p++) if (kept[p]!.has(blockOf(network, p, width))) return true;
    return false;
  };
  for (const peer of [...peers].sort((a, b) => a.prefix - b.prefix)) {
    if (!inside(peer.network, peer.prefix)) kept[peer.prefix]!.add(peer.network);
  }
  // Two halves of one block become the block, from the longest prefixes up (a merged block may
  // meet its own other half one level up). Nothing kept can contain the merged block: it would
  // have contained both halves.
  for (let prefix = width; prefix > 0; prefix--) {
    const half = 1n << BigInt(width - prefix);
    for (const network of [...kept[prefix]!]) {
      if ((network & half) !== 0n || !kept[prefix]!.has(network | half)) continue;
      kept[prefix]!.delete(network);
      kept[prefix]!.delete(network | half);
      kept[prefix - 1]!.add(network);
    }
  }
  return kept
    .flatMap((networks, prefix) => [...networks].map((network) => ({ network, prefix })))
    .sort((a, b) => (a.network === b.network ? a.prefix - b.prefix : a.network < b.network ? -1 : 1))
    .map(({ network, prefix }) => cidrOf(family, network, prefix));
}

function blockOf(network: bigint, prefix: number, width: number): bigint {
  const hostBits = BigInt(width - prefix);
  return (network >> hostBits) << hostBits;
}

/** The u32 filters a direction's rules become: one per peer and port (the catch-all aside). */
export function filterCount(policy: DirectionPolicy): number {
  return policy.rules.reduce((sum, rule) => sum + rule.peers.length * Math.max(1, rule.ports.length), 0);
}

/** Refuses a direction that asks for more filters than LIMITS.maxFiltersPerDirection, naming `field`. */
export function checkFilterCount(policy: DirectionPolicy, field: string, what = 'peers x ports'): void {
  const count = filterCount(policy);
  if (count > LIMITS.maxFiltersPerDirection) {
    throw new ConfigError(field, `ask for ${count} filters (${what}, after merging peers), more than the ${LIMITS.maxFiltersPerDirection} a direction may have`);
  }
}
